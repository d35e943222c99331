"""Read CT volumes (NIfTI, NRRD) with their voxel-to-RAS affine, and write outputs atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..errors import InputVolumeError, OutputError

NIFTI_SUFFIXES = (".nii.gz", ".nii")
NRRD_SUFFIXES = (".nrrd", ".nhdr")
VOLUME_SUFFIXES = NIFTI_SUFFIXES + NRRD_SUFFIXES

# Patient spaces (NRRD's names and DICOM's LPS) as sign flips from the named space to RAS.
_SPACE_TO_RAS = {
    "left-posterior-superior": (-1.0, -1.0, 1.0),
    "right-anterior-superior": (1.0, 1.0, 1.0),
    "left-anterior-superior": (-1.0, 1.0, 1.0),
    "LPS": (-1.0, -1.0, 1.0),
    "RAS": (1.0, 1.0, 1.0),
    "LAS": (-1.0, 1.0, 1.0),
}


@dataclass
class Volume:
    """A voxel array indexed (i, j, k) and the 4x4 affine mapping (i, j, k, 1) to RAS millimetres."""

    array: np.ndarray
    affine: np.ndarray

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))


def volume_stem(path: str | Path) -> str:
    """File name without its volume suffix: `case_ct.nii.gz` gives `case_ct`."""
    name = Path(path).name
    for suffix in VOLUME_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def read_volume(path: str | Path) -> Volume:
    """Read a NIfTI or NRRD volume, keeping its on-disk integer type where there is no scaling, or
    the one DICOM CT series in a folder (`LiverTumorSegLib.dicom.series.read_series`)."""
    path = Path(path)
    if path.is_dir():
        from ..dicom.series import read_series

        return read_series(path).volume
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
    if space not in _SPACE_TO_RAS:
        raise InputVolumeError(f"{path}: NRRD space '{space}' is not supported; save it in "
                               "LPS or RAS space.")
    directions = np.asarray(header.get("space directions", np.eye(3)), dtype=np.float64)
    directions = np.nan_to_num(directions)[-3:]  # drop a leading 'none' row of vector data
    origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=np.float64)
    return Volume(array=array, affine=ras_affine(space, directions, origin))


def ras_affine(space: str, axis_steps: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """The voxel-to-RAS affine of a grid given in a patient space (e.g. "LPS"): row n of
    `axis_steps` is the step of voxel axis n in that space (mm), `origin` the first voxel's centre."""
    flips = np.diag(_SPACE_TO_RAS[space])
    affine = np.eye(4)
    affine[:3, :3] = flips @ np.asarray(axis_steps, dtype=np.float64).T
    affine[:3, 3] = flips @ np.asarray(origin, dtype=np.float64)
    return affine


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial" +
                                        "".join(path.suffixes), dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"Cannot write to {path.parent} ({exc.strerror}); choose an output "
                          "folder you can write to.") from exc
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"Cannot write {path} ({exc.strerror or exc}).") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_csv(path: Path, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Write a CSV file atomically; None becomes an empty cell."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    atomic_write_text(path, buffer.getvalue())


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


def atomic_write_json(path: Path, data: object) -> None:
    """Write JSON atomically; NaN and infinity are refused (the engine reports them as null)."""
    import json

    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")
