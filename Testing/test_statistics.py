"""Statistics against hand-computed volumes, diameters and positions of synthetic spheres."""

import numpy as np
import pytest

from LiverTumorSegLib.statistics import compute_statistics, size_category


def _ball(shape, centre, radius_vox):
    grid = np.indices(shape).astype(float)
    return sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius_vox ** 2


def test_sphere_volumes_diameters_and_centroid():
    spacing = np.array([0.5, 0.5, 1.0])
    affine = np.diag(list(spacing) + [1.0])
    affine[:3, 3] = [-50.0, 20.0, 100.0]
    shape = (120, 120, 60)
    labels = np.zeros(shape, dtype=np.uint8)
    # an isotropic grid in mm needs anisotropic radii in voxels: use a box-shaped liver and a
    # physical sphere of radius 10 mm built in mm coordinates
    labels[10:110, 10:110, 5:55] = 1
    mm = np.indices(shape).astype(float) * spacing[:, None, None, None]
    centre_mm = np.array([30.0, 30.0, 30.0])
    sphere = sum((m - c) ** 2 for m, c in zip(mm, centre_mm)) <= 10.0 ** 2
    labels[sphere] = 2
    hu = np.where(labels == 2, 30, 100).astype(np.int16)
    stats = compute_statistics(labels, affine, hu)

    voxel_ml = 0.25 / 1000
    assert stats["liver_volume_ml"] == pytest.approx(100 * 100 * 50 * voxel_ml, rel=1e-6)
    assert stats["tumor_volume_ml"] == pytest.approx(4 / 3 * np.pi * 1000 / 1000, rel=0.03)
    assert stats["liver_parenchyma_volume_ml"] == pytest.approx(
        stats["liver_volume_ml"] - stats["tumor_volume_ml"], abs=1e-3)
    assert stats["tumor_count"] == 1
    assert stats["tumor_burden_percent"] == pytest.approx(
        100 * stats["tumor_volume_ml"] / stats["liver_volume_ml"], rel=1e-3)
    lesion = stats["lesions"][0]
    assert lesion["max_diameter_mm"] == pytest.approx(20.0, abs=1.0)
    assert lesion["longest_axial_diameter_mm"] == pytest.approx(20.0, abs=1.0)
    assert lesion["centroid_ras_mm"] == pytest.approx(list(centre_mm + affine[:3, 3]), abs=0.05)
    assert lesion["mean_hu"] == 30
    expected_band = "20-50 mm" if lesion["longest_axial_diameter_mm"] >= 20 else "10-20 mm"
    assert lesion["size_category"] == expected_band
    assert stats["confidence"] is None


def test_lesions_sorted_by_volume_with_confidence():
    labels = np.zeros((60, 60, 30), dtype=np.uint8)
    labels[5:55, 5:55, 2:28] = 1
    labels[_ball(labels.shape, (15, 15, 15), 3)] = 2
    labels[_ball(labels.shape, (40, 40, 15), 6)] = 2
    confidence = np.full(labels.shape, 200, dtype=np.uint8)
    stats = compute_statistics(labels, np.eye(4), np.zeros(labels.shape, np.int16), confidence)
    volumes = [lesion["volume_ml"] for lesion in stats["lesions"]]
    assert stats["tumor_count"] == 2 and volumes == sorted(volumes, reverse=True)
    assert [lesion["id"] for lesion in stats["lesions"]] == [1, 2]
    assert stats["lesions"][0]["max_diameter_mm"] == pytest.approx(12.0, abs=0.01)
    assert stats["lesions"][0]["mean_confidence"] == pytest.approx(200 / 255, abs=1e-4)
    assert stats["confidence"] == pytest.approx(200 / 255, abs=1e-4)


def test_oblique_affine_measures_in_millimetres():
    labels = np.zeros((30, 30, 30), dtype=np.uint8)
    labels[5:25, 5:25, 5:25] = 1
    labels[10:20, 15, 15] = 2  # a 10-voxel line along i
    angle = np.radians(30)
    affine = np.eye(4)
    affine[:3, :3] = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                               [0, 0, 1]]) @ np.diag([2.0, 1.0, 1.0])
    stats = compute_statistics(labels, affine, np.zeros(labels.shape, np.int16))
    assert stats["lesions"][0]["max_diameter_mm"] == pytest.approx(18.0)  # 9 gaps of 2 mm
    assert stats["liver_volume_ml"] == pytest.approx(8000 * 2 / 1000)


def test_empty_liver():
    stats = compute_statistics(np.zeros((5, 5, 5), np.uint8), np.eye(4), np.zeros((5, 5, 5)))
    assert stats["liver_volume_ml"] == 0 and stats["tumor_count"] == 0
    assert stats["tumor_burden_percent"] == 0 and stats["lesions"] == []


@pytest.mark.parametrize("diameter, band", [(5, "<10 mm"), (10, "10-20 mm"), (19.9, "10-20 mm"),
                                            (20, "20-50 mm"), (50, ">50 mm")])
def test_size_bands(diameter, band):
    assert size_category(diameter) == band
