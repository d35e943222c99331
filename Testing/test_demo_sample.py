"""The demo sample: its header carries the spacing its anatomy supports, and the bundled model
segments it as it segments a real scan.

`lits117_crop` was cropped to the liver and resampled to 128³ by a third party; its true spacing is
unknown. `benchmarks/demo_sample_geometry.py` estimates it from the vertebrae and the aorta
(never from a segmentation), and that estimate is what the header stores
(Resources/Sample/ATTRIBUTION.md).
"""

import importlib.util

import numpy as np
import pytest
from scipy import ndimage

from LiverTumorSegLib.inputs import read_volume
from LiverTumorSegLib.pipeline import Segmenter
from LiverTumorSegLib.resources import REPOSITORY_ROOT, SAMPLE_CT, SAMPLE_LABEL
from LiverTumorSegLib.volume.orientation import plan_reorientation

pytestmark = pytest.mark.slow

# Axial slices (canonical k) where the right kidney lies against the liver's right lobe: where the
# interim model, shown the sample at 1 mm, outlined only a quarter of the liver.
KIDNEY_SLICES = slice(33, 63)


def _geometry_script():
    path = REPOSITORY_ROOT / "benchmarks" / "demo_sample_geometry.py"
    spec = importlib.util.spec_from_file_location("demo_sample_geometry", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sample():
    return read_volume(SAMPLE_CT), read_volume(SAMPLE_LABEL)


def test_the_header_stores_the_spacing_estimated_from_anatomy(sample):
    ct, label = sample
    spacing, measurements, _ = _geometry_script().estimate_spacing(ct.array)
    assert set(measurements) >= {"vertebral_level_height", "aorta_diameter"}
    assert np.allclose(ct.spacing, spacing, atol=1e-4), (ct.spacing, spacing)
    assert np.allclose(label.affine, ct.affine), "the label lies on the CT's grid"


def test_the_outline_takes_in_the_lobe_beside_the_kidney_and_leaves_the_kidney_out(sample):
    ct, label = sample
    liver = Segmenter(None, device="cpu").segment(ct).labels > 0
    plan = plan_reorientation(liver.shape, ct.affine)
    liver, truth = plan.to_canonical(liver), plan.to_canonical(np.asarray(label.array) > 0)
    predicted, reference = liver[:, :, KIDNEY_SLICES], truth[:, :, KIDNEY_SLICES]
    covered = np.count_nonzero(predicted & reference) / np.count_nonzero(reference)
    assert covered >= 0.9, f"only {covered:.0%} of the reference liver beside the kidney outlined"
    near_truth = ndimage.binary_dilation(truth, iterations=2)[:, :, KIDNEY_SLICES]
    outside = np.count_nonzero(predicted & ~near_truth)
    assert outside <= 0.01 * np.count_nonzero(predicted), "the outline spills onto the kidney"
