"""The pixel data of DICOM slices: whether an installed pydicom plugin decodes a transfer syntax,
the stored values of one file (named when they cannot be read), and a stack of slices in Hounsfield
units (RescaleSlope and RescaleIntercept applied per slice)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DicomSeriesError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"  # what a file without file meta information holds
# pylibjpeg-openjpeg reads HTJ2K; python-gdcm reads every other compressed transfer syntax.
_HTJ2K = ("1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203")


def check_decodable(syntax: str, folder: Path) -> None:
    """Refuse a transfer syntax that no installed pydicom plugin decodes, naming what would."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    name = syntax if UID(syntax).name == syntax else f"{UID(syntax).name} ({syntax})"
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise DicomSeriesError(f"{folder}: transfer syntax {name} cannot be read by any pydicom "
                               "plugin; decompress the series first (e.g. gdcmconv --raw, or "
                               "dcmtk's dcmdjpeg).") from None
    if not decoder.is_available:
        package = "pylibjpeg-openjpeg" if syntax in _HTJ2K else "python-gdcm"
        raise DicomSeriesError(f"{folder}: transfer syntax {name} needs a decoder that is not "
                               f"installed: pip install {package}.")


def stored_pixels(path: Path) -> np.ndarray:
    """The stored values of a single-frame file, (row, column); refused by name when unreadable."""
    import pydicom

    try:
        return pydicom.dcmread(path, force=True).pixel_array
    except Exception as exc:  # noqa: BLE001 - a damaged file is named, not guessed at
        raise DicomSeriesError(f"{path}: its pixel data cannot be read ({type(exc).__name__}: "
                               f"{exc}); export the series again.") from exc


def read_hu_stack(paths: list[Path], headers: list[Dataset]) -> np.ndarray:
    """Stored values times RescaleSlope plus RescaleIntercept, as (column, row, slice); int16 while
    the rescaled values are whole numbers that fit, else float32."""
    rescale = [(float(h.get("RescaleSlope", 1) or 1), float(h.get("RescaleIntercept", 0) or 0))
               for h in headers]
    whole = all(slope == 1 and intercept.is_integer() for slope, intercept in rescale)
    array = np.empty((int(headers[0].Columns), int(headers[0].Rows), len(paths)),
                     dtype=np.int16 if whole else np.float32)
    for k, (path, (slope, intercept)) in enumerate(zip(paths, rescale)):
        stored = stored_pixels(path)
        if stored.shape != (array.shape[1], array.shape[0]):
            raise DicomSeriesError(f"{path}: pixel data of shape {stored.shape} where "
                                   f"{array.shape[1]}x{array.shape[0]} grey levels are expected; "
                                   "give a grey-level CT series.")
        values = stored.T.astype(np.float64) * slope + intercept
        if array.dtype == np.int16 and (values.min() < -32768 or values.max() > 32767):
            array = array.astype(np.float32)
        array[:, :, k] = values
    return array
