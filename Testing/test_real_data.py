"""Integration on the real CT in ../shared/data (skipped with a reason when it is absent)."""

import numpy as np
import pytest
from conftest import FULL_RESOLUTION_CASES, data_case

from LiverTumorSegLib.inputs import read_volume
from LiverTumorSegLib.metrics import evaluate_case
from LiverTumorSegLib.pipeline import Segmenter
from LiverTumorSegLib.statistics import compute_statistics
from LiverTumorSegLib.volume.checks import check_ct_intensities
from LiverTumorSegLib.volume.orientation import plan_reorientation


@pytest.mark.parametrize("case", FULL_RESOLUTION_CASES + ("lits117_crop", "tiny64"))
def test_real_ct_passes_checks_and_liver_lies_on_patients_right(case, manifest):
    ct_path, label_path = data_case(case)
    ct, label = read_volume(ct_path), read_volume(label_path)
    assert list(ct.array.shape) == manifest[case]["shape"]
    check_ct_intensities(ct.array)
    plan = plan_reorientation(label.array.shape, label.affine)
    canonical = plan.to_canonical(label.array)
    i_of_liver = np.argwhere(canonical[::2, ::2, ::2] > 0)[:, 0].mean() * 2
    if case in FULL_RESOLUTION_CASES:  # truthful DICOM-derived affines
        assert i_of_liver > canonical.shape[0] / 2, "canonical i runs to the right: liver on the right"


@pytest.mark.parametrize("case", FULL_RESOLUTION_CASES)
def test_reference_label_statistics_match_manifest_counts(case, manifest):
    ct_path, label_path = data_case(case)
    ct, label = read_volume(ct_path), read_volume(label_path)
    plan = plan_reorientation(label.array.shape, label.affine)
    stats = compute_statistics(plan.to_canonical(label.array), plan.canonical_affine,
                               plan.to_canonical(ct.array))
    counts = manifest[case]["label_voxels"]
    voxel_ml = float(np.prod(manifest[case]["spacing_mm"])) / 1000
    liver_voxels = counts.get("1", 0) + counts.get("2", 0)
    assert stats["liver_volume_ml"] == pytest.approx(liver_voxels * voxel_ml, rel=1e-3)
    assert stats["tumor_volume_ml"] == pytest.approx(counts.get("2", 0) * voxel_ml, rel=1e-3)
    if case != "totalseg_example":  # that scan holds 20 slices of the liver only
        assert 800 < stats["liver_volume_ml"] < 3500, "an adult liver"
    if case == "ircadb_17":
        assert stats["tumor_count"] >= 2
        assert all(lesion["mean_hu"] < 150 for lesion in stats["lesions"])


def test_reference_against_itself_scores_perfectly(manifest):
    _, label_path = data_case("ircadb_17")
    label = read_volume(label_path)
    scores = evaluate_case(label.array, label.array, label.spacing)
    assert scores["liver"]["dice"] == 1.0 and scores["tumor"]["hd95_mm"] == 0.0
    assert scores["lesions"]["lesion_recall"] == 1.0


def test_full_resolution_case_keeps_its_grid(liver_everywhere_card):
    ct_path, _ = data_case("chaos_ct3")
    volume = read_volume(ct_path)
    result = Segmenter(liver_everywhere_card, device="cpu").segment(volume)
    assert result.labels.shape == volume.array.shape
    np.testing.assert_array_equal(result.affine, volume.affine)
    # a network that calls everything liver yields one body-sized component after post-processing
    assert 0 < result.statistics["liver_volume_ml"] < np.prod(volume.array.shape) * 0.727 ** 2 * 2 / 1000
