"""Probability maps: the model's liver and tumour probabilities as uint8 (softmax x 255) on the
input's grid, from the Python API, the command line (`--probabilities`) and the Slicer logic. Their
argmax is the network's label before post-processing, each lesion's mean tumour value is its
`mean_confidence`, and they are 0 outside the region the fine pass ran on."""

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import data_case
from test_cli import run_cli

from LiverTumorSegLib.inputs import read_volume
from LiverTumorSegLib.labels import TUMOR, label_components
from LiverTumorSegLib.model.card import PostprocessingSpec
from LiverTumorSegLib.pipeline import Segmenter
from LiverTumorSegLib.probabilities import SCALE, quantize
from LiverTumorSegLib.resources import SAMPLE_CT

NO_POSTPROCESSING = PostprocessingSpec(keep_largest_liver=False, fill_liver_holes=False,
                                       tumor_inside_liver_only=False, min_lesion_volume_mm3=0.0,
                                       closing_radius_mm=0.0)


def _argmax(values: np.ndarray) -> np.ndarray:
    """The class (0 background, 1 liver, 2 tumor) a (..., 2) probability map says."""
    liver, tumor = values[..., 0].astype(np.int16), values[..., 1].astype(np.int16)
    return np.argmax(np.stack([SCALE - liver - tumor, liver, tumor], axis=-1), axis=-1)


def test_quantized_values_keep_the_chosen_class_ahead_even_at_near_ties():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(100_000, 3, generator=generator) * 3
    for a, b in ((0, 1), (1, 2), (0, 2)):  # near ties between every pair of classes
        logits[a::3, b] = logits[a::3, a] + 1e-4 * torch.randn(logits[a::3].shape[0],
                                                               generator=generator)
    probabilities = torch.softmax(logits, dim=1)[..., None]  # (N, 3, 1): one "pixel" each
    chosen = torch.argmax(probabilities, dim=1)
    values = quantize(probabilities, chosen)
    assert values.dtype == torch.uint8 and values.shape == (100_000, 2, 1)
    assert np.array_equal(_argmax(values[:, :, 0].numpy()), chosen[:, 0].numpy())
    error = (values.float() - probabilities[:, 1:] * SCALE).abs()
    assert error.max() <= 1.5 and error.mean() < 0.5, "within a step or so of softmax x 255"


@pytest.fixture(scope="module")
def sample():
    return read_volume(SAMPLE_CT)


@pytest.fixture(scope="module")
def segmenter():
    return Segmenter(None, device="cpu")


def test_the_maps_argmax_is_the_label_before_post_processing(sample, segmenter):
    result = segmenter.segment(sample, postprocessing=NO_POSTPROCESSING, probabilities=True)
    values = result.probabilities.array()
    assert values.shape == sample.array.shape + (2,) and values.dtype == np.uint8
    assert np.array_equal(_argmax(values), result.labels)
    assert np.count_nonzero(result.labels == TUMOR) > 0, "the sample has tumours to check"


def test_each_lesions_mean_tumor_value_is_its_mean_confidence(sample, segmenter):
    result = segmenter.segment(sample, probabilities=True)
    tumor = result.probabilities.channel("tumor").astype(float) / SCALE
    components, count = label_components(result.labels == TUMOR)
    assert count == result.statistics["tumor_count"] > 1
    ijk = np.argwhere(components > 0)
    centroids = {}
    for index in range(1, count + 1):
        points = ijk[components[tuple(ijk.T)] == index]
        mm = points.mean(axis=0) @ result.affine[:3, :3].T + result.affine[:3, 3]
        centroids[index] = (mm, tumor[tuple(points.T)].mean())
    for lesion in result.statistics["lesions"]:
        nearest = min(centroids.values(),
                      key=lambda c: np.linalg.norm(c[0] - lesion["centroid_ras_mm"]))
        assert np.linalg.norm(nearest[0] - lesion["centroid_ras_mm"]) < 0.01  # stats round to 0.01
        assert nearest[1] == pytest.approx(lesion["mean_confidence"], abs=0.005)


def test_the_map_is_zero_outside_the_fine_pass_region(segmenter):
    """A full-size CT: the fine pass covers the liver's box only; the map is 0 everywhere else."""
    volume = read_volume(data_case("chaos_ct3")[0])
    result = segmenter.segment(volume, probabilities=True)
    found = result.probabilities
    outside = np.ones(volume.array.shape, bool)
    outside[found.region] = False
    assert outside.any() and found.values.any()
    assert not found.array()[outside].any()
    assert found.values.shape[:3] == tuple(s.stop - s.start for s in found.region)


def test_the_command_line_writes_the_map_on_the_input_grid(sample, segmenter, tmp_path):
    result = run_cli("segment", SAMPLE_CT, "--probabilities", "-o", tmp_path, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    written = tmp_path / "lits117_crop_ct_probabilities.nii.gz"
    assert str(written) in result.stdout
    image = nib.load(written)
    assert image.get_data_dtype() == np.uint8 and image.shape == sample.array.shape + (2,)
    assert np.allclose(image.affine, sample.affine)
    assert np.isnan(image.header["scl_slope"]), "no scaling: the values are softmax x 255"
    assert b"softmax x 255" in image.header["descrip"].tobytes()
    expected = segmenter.segment(sample, probabilities=True).probabilities.array()
    assert np.array_equal(np.asanyarray(image.dataobj), expected)
