"""Read NIfTI and NRRD volume files with their voxel-to-RAS affine; write label volumes as NIfTI.

A DICOM series folder is read by `dicom.series`; `inputs.read_volume` dispatches between the two."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from ..errors import InputVolumeError
from .space import SPACE_TO_RAS, Volume, ras_affine

NIFTI_SUFFIXES = (".nii.gz", ".nii")
NRRD_SUFFIXES = (".nrrd", ".nhdr")
VOLUME_SUFFIXES = NIFTI_SUFFIXES + NRRD_SUFFIXES


def volume_stem(path: str | Path) -> str:
    """File name without its volume suffix: `case_ct.nii.gz` gives `case_ct`."""
    name = Path(path).name
    for suffix in VOLUME_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def read_volume_file(path: str | Path) -> Volume:
    """Read a NIfTI or NRRD volume, keeping its on-disk integer type where there is no scaling."""
    path = Path(path)
    if path.is_dir():
        raise InputVolumeError(f"{path} is a folder; give a NIfTI or NRRD file here (a DICOM "
                               "series folder is read by LiverTumorSegLib.read_volume).")
    if not path.is_file():
        raise InputVolumeError(f"{path}: no such file.")
    name = path.name.lower()
    try:
        if name.endswith(NIFTI_SUFFIXES):
            return _read_nifti(path)
        if name.endswith(NRRD_SUFFIXES):
            return _read_nrrd(path)
    except InputVolumeError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure means an unusable file
        raise InputVolumeError(f"{path}: the file cannot be read ({type(exc).__name__}: {exc}); "
                               "it may be truncated or not a volume. Re-export it from the "
                               "scanner or viewer.") from exc
    raise InputVolumeError(f"{path}: unsupported file type; give a NIfTI (.nii, .nii.gz) or "
                           "NRRD (.nrrd, .nhdr) CT volume, or the folder of a DICOM series.")


def _read_nifti(path: Path) -> Volume:
    import nibabel as nib

    image = nib.load(str(path))
    array = np.asanyarray(image.dataobj)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    return Volume(array=array, affine=np.asarray(image.affine, dtype=np.float64))


def _read_nrrd(path: Path) -> Volume:
    import nrrd

    array, header = nrrd.read(str(path))
    space = header.get("space", "left-posterior-superior")
    if space not in SPACE_TO_RAS:
        raise InputVolumeError(f"{path}: NRRD space '{space}' is not supported; save it in "
                               "LPS or RAS space.")
    directions = np.asarray(header.get("space directions", np.eye(3)), dtype=np.float64)
    directions = np.nan_to_num(directions)[-3:]  # drop a leading 'none' row of vector data
    origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=np.float64)
    return Volume(array=array, affine=ras_affine(space, directions, origin))


def write_label_nifti(path: Path, labels: np.ndarray, affine: np.ndarray) -> None:
    """Write a uint8 label volume as NIfTI (sform and qform set to `affine`), atomically."""
    import nibabel as nib

    image = nib.Nifti1Image(labels.astype(np.uint8, copy=False), affine)
    image.header.set_xyzt_units("mm", "sec")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    with atomic_output(path) as tmp:
        # nibabel picks compression from the name, so keep '.nii.gz' at the end of the temporary.
        nib.save(image, str(tmp))


_NIFTI_DATA_OFFSET = 352  # a single-file NIfTI-1: 348-byte header, 4 bytes of extension flags


def write_boxed_nifti(path: Path, shape: tuple[int, int, int], region: tuple[slice, slice, slice],
                      values: np.ndarray, affine: np.ndarray, description: str) -> None:
    """Write, atomically, a uint8 NIfTI on a grid of `shape` (plus the trailing channel axes of
    `values`) that holds `values` inside `region` and 0 elsewhere, one plane at a time: the whole
    array never exists in memory. The header's description says what the values mean; no scaling
    (scl_slope) is set."""
    import gzip

    import nibabel as nib

    channels = values.shape[3:]
    header = nib.Nifti1Header()
    header.set_data_shape(tuple(shape) + channels)
    header.set_data_dtype(np.uint8)
    header.set_qform(affine, code=1)
    header.set_sform(affine, code=1)
    header.set_xyzt_units("mm", "sec")
    header["descrip"] = description.encode("ascii")[:79]
    header["vox_offset"] = _NIFTI_DATA_OFFSET
    plane = np.zeros(shape[:2], dtype=np.uint8)
    with atomic_output(Path(path)) as tmp, gzip.open(tmp, "wb", compresslevel=1) as handle:
        handle.write(header.binaryblock)
        handle.write(b"\0" * (_NIFTI_DATA_OFFSET - len(header.binaryblock)))  # no extensions
        for channel in np.ndindex(*channels):  # NIfTI order: x fastest, then y, z, channels
            for z in range(shape[2]):
                plane[:] = 0
                if region[2].start <= z < region[2].stop:
                    plane[region[0], region[1]] = values[(slice(None), slice(None),
                                                          z - region[2].start) + channel]
                handle.write(plane.tobytes(order="F"))
