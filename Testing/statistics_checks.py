"""A check shared by the pipeline and command-line tests: statistics describe the labels they came
with, recomputed here independently of `LiverTumorSegLib.statistics`."""

import numpy as np
import pytest
from scipy import ndimage

from LiverTumorSegLib.labels import CONNECTIVITY, LIVER, TUMOR

ROUNDING = 1e-3  # the statistics round volumes to 0.001 mL


def assert_statistics_describe(statistics: dict, labels: np.ndarray, affine: np.ndarray) -> None:
    """Volumes, tumor count, lesion list and burden of `statistics` are those of `labels` on the
    grid `affine`."""
    voxel_ml = abs(np.linalg.det(affine[:3, :3])) / 1000.0
    liver_ml = np.count_nonzero(labels > 0) * voxel_ml
    tumor_ml = np.count_nonzero(labels == TUMOR) * voxel_ml
    _, count = ndimage.label(labels == TUMOR, structure=CONNECTIVITY)
    assert statistics["liver_volume_ml"] == pytest.approx(liver_ml, abs=ROUNDING)
    assert statistics["liver_parenchyma_volume_ml"] == pytest.approx(
        np.count_nonzero(labels == LIVER) * voxel_ml, abs=ROUNDING)
    assert statistics["tumor_volume_ml"] == pytest.approx(tumor_ml, abs=ROUNDING)
    assert statistics["tumor_count"] == count == len(statistics["lesions"])
    assert sum(lesion["volume_ml"] for lesion in statistics["lesions"]) == pytest.approx(
        tumor_ml, abs=ROUNDING * (count + 1))
    volumes = [lesion["volume_ml"] for lesion in statistics["lesions"]]
    assert volumes == sorted(volumes, reverse=True), "largest lesion first"
    assert statistics["tumor_burden_percent"] == pytest.approx(
        100.0 * tumor_ml / liver_ml if liver_ml else 0.0, abs=ROUNDING)
