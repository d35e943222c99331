"""Reading NIfTI and NRRD with their affines; atomic writes."""

import nibabel as nib
import nrrd
import numpy as np
import pytest
from conftest import synthetic_ct

from LiverTumorSegLib.atomic import atomic_output
from LiverTumorSegLib.errors import OutputError
from LiverTumorSegLib.inputs import read_volume
from LiverTumorSegLib.volume.io import volume_stem, write_label_nifti


def test_nrrd_lps_space_becomes_ras_affine(tmp_path):
    ct = synthetic_ct((10, 12, 8))
    directions = np.array([[0.7, 0, 0], [0, 0.7, 0], [0, 0, 2.5]])  # rows: axis directions (LPS)
    origin = np.array([10.0, 20.0, -30.0])
    nrrd.write(str(tmp_path / "ct.nrrd"), ct, {"space": "left-posterior-superior",
                                                "space directions": directions,
                                                "space origin": origin})
    volume = read_volume(tmp_path / "ct.nrrd")
    np.testing.assert_array_equal(volume.array, ct)
    expected = np.diag([-0.7, -0.7, 2.5, 1.0])
    expected[:3, 3] = [-10.0, -20.0, -30.0]
    np.testing.assert_allclose(volume.affine, expected)
    assert volume.spacing == pytest.approx((0.7, 0.7, 2.5))


def test_nifti_keeps_integer_type_and_affine(tmp_path):
    affine = np.diag([-0.8, -0.8, 1.6, 1.0])
    affine[:3, 3] = [100, 50, -20]
    nib.save(nib.Nifti1Image(synthetic_ct(), affine), str(tmp_path / "ct.nii.gz"))
    volume = read_volume(tmp_path / "ct.nii.gz")
    assert volume.array.dtype == np.int16
    np.testing.assert_allclose(volume.affine, affine)


def test_label_written_with_exact_affine(tmp_path):
    affine = np.array([[0.6, 0.1, 0, 5], [-0.1, 0.6, 0, 6], [0, 0, 2, 7], [0, 0, 0, 1]])
    labels = np.random.default_rng(0).integers(0, 3, (6, 7, 8)).astype(np.uint8)
    write_label_nifti(tmp_path / "x_seg.nii.gz", labels, affine)
    back = nib.load(str(tmp_path / "x_seg.nii.gz"))
    np.testing.assert_array_equal(np.asanyarray(back.dataobj), labels)
    np.testing.assert_allclose(back.affine, affine, atol=1e-6)
    assert back.get_data_dtype() == np.uint8


def test_failed_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="Cannot write"):
        with atomic_output(blocker / "sub" / "out.json"):
            pass


@pytest.mark.parametrize("name, stem", [("case_ct.nii.gz", "case_ct"), ("a.b.nii", "a.b"),
                                        ("scan.NRRD", "scan"), ("x.nhdr", "x")])
def test_volume_stem(name, stem):
    assert volume_stem(name) == stem
