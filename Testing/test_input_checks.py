"""Bad input: every case gets a clear error (or a warning with force)."""

import gzip

import nibabel as nib
import numpy as np
import pytest
from conftest import synthetic_ct

from LiverTumorSegLib.errors import InputVolumeError, IntensityError
from LiverTumorSegLib.inputs import read_volume
from LiverTumorSegLib.volume.checks import (
    as_scalar_3d,
    check_affine,
    check_ct_intensities,
    check_slice_count,
)


def test_two_dimensional_image():
    with pytest.raises(InputVolumeError, match="2 dimensions"):
        as_scalar_3d(np.zeros((10, 10)))


def test_four_dimensional_series():
    with pytest.raises(InputVolumeError, match="4 dimensions"):
        as_scalar_3d(np.zeros((10, 10, 10, 3)))


def test_trailing_singleton_axis_is_accepted():
    assert as_scalar_3d(np.zeros((4, 5, 6, 1))).shape == (4, 5, 6)


def test_rgb_image():
    rgb = np.zeros((4, 4, 4), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    with pytest.raises(InputVolumeError, match="RGB"):
        as_scalar_3d(rgb)


def test_empty_volume():
    with pytest.raises(InputVolumeError, match="empty"):
        as_scalar_3d(np.zeros((0, 4, 4)))


def test_constant_volume():
    with pytest.raises(InputVolumeError, match="constant"):
        check_ct_intensities(np.full((8, 8, 8), -1000, np.int16))


def test_nan_and_inf_voxels():
    ct = synthetic_ct().astype(np.float32)
    ct[0, 0, 0], ct[1, 1, 1] = np.nan, np.inf
    with pytest.raises(InputVolumeError, match="2 NaN or infinite"):
        check_ct_intensities(ct)


def test_mri_like_intensities_refused_and_forced_with_warning():
    mri = np.random.default_rng(0).integers(0, 1200, (32, 32, 16)).astype(np.int16)
    with pytest.raises(IntensityError, match="does not look like a CT") as refused:
        check_ct_intensities(mri)
    assert "force" not in str(refused.value), "each caller says how it forces a run"
    with pytest.warns(UserWarning, match="force"):
        check_ct_intensities(mri, force=True)


def test_the_hu_check_names_the_input_and_a_known_cause():
    mri = np.random.default_rng(0).integers(0, 1200, (32, 32, 16)).astype(np.int16)
    with pytest.raises(IntensityError) as refused:
        check_ct_intensities(mri, name="scans/knee.nrrd")
    assert str(refused.value).startswith("scans/knee.nrrd does not look like a CT")
    assert "It may be an MRI" in str(refused.value)
    with pytest.raises(IntensityError) as refused:
        check_ct_intensities(mri, name="series", cause="Its files lack RescaleIntercept.")
    assert "Its files lack RescaleIntercept." in str(refused.value)
    assert "It may be an MRI" not in str(refused.value)


def test_real_like_ct_passes():
    check_ct_intensities(synthetic_ct())


def test_too_few_slices():
    with pytest.raises(InputVolumeError, match="at least 5"):
        check_slice_count(3, context_slices=2)


def test_truncated_file(tmp_path):
    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(synthetic_ct(), np.eye(4)), str(path))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputVolumeError, match="cannot be read"):
        read_volume(path).array.sum()


def test_not_a_volume_file(tmp_path):
    path = tmp_path / "notes.nii.gz"
    path.write_bytes(gzip.compress(b"hello, not a nifti"))
    with pytest.raises(InputVolumeError, match="cannot be read"):
        read_volume(path)
    with pytest.raises(InputVolumeError, match="unsupported file type"):
        (tmp_path / "ct.png").write_bytes(b"x")
        read_volume(tmp_path / "ct.png")
    with pytest.raises(InputVolumeError, match="no such file"):
        read_volume(tmp_path / "absent.nii.gz")


@pytest.mark.parametrize("affine", [np.diag([1.0, 0.0, 1.0, 1.0]), np.full((4, 4), np.nan)])
def test_invalid_affine(affine):
    with pytest.raises(InputVolumeError, match="voxel-to-world matrix"):
        check_affine(affine)
