"""Read one DICOM CT series into a `Volume`: refuse what cannot be segmented, sort the slices along
their normal, apply RescaleSlope/RescaleIntercept, and keep the headers a DICOM SEG refers to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DicomSeriesError
from ..volume.space import Volume
from .discovery import read_headers
from .geometry import slice_stack

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_ENHANCED_CT = {"1.2.840.10008.5.1.4.1.1.2.1": "Enhanced CT",
                "1.2.840.10008.5.1.4.1.1.2.2": "Legacy Converted Enhanced CT"}
_REQUIRED = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns")
# pylibjpeg-openjpeg reads HTJ2K; python-gdcm reads every other compressed transfer syntax.
_IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"  # what a file without file meta information holds
_HTJ2K = ("1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203")


@dataclass
class DicomSeries:
    """A CT series read from `folder`: the volume (axes: column, row, slice) and the slices'
    headers (no pixel data) in the volume's slice order."""

    folder: Path
    volume: Volume
    headers: list[Dataset]

    @property
    def series_instance_uid(self) -> str:
        return str(self.headers[0].SeriesInstanceUID)

    @property
    def frame_of_reference_uid(self) -> str | None:
        return self.headers[0].get("FrameOfReferenceUID") or None


def read_series(folder: str | Path, series_uid: str | None = None) -> DicomSeries:
    """Read the CT series in `folder` (or the series `series_uid` of it)."""
    folder = Path(folder)
    members = read_headers(folder, series_uid)
    headers = [header for _, header in members]
    _check_ct_slices(headers, folder)
    stack = slice_stack(np.array([[float(v) for v in h.ImageOrientationPatient] for h in headers]),
                        np.array([[float(v) for v in h.ImagePositionPatient] for h in headers]),
                        tuple(float(v) for v in headers[0].PixelSpacing), str(folder))
    paths = [members[i][0] for i in stack.order]
    headers = [headers[i] for i in stack.order]
    return DicomSeries(folder, Volume(_read_pixels(paths, headers), stack.affine), headers)


def _check_ct_slices(headers: list[Dataset], folder: Path) -> None:
    """Single-frame CT slices of one size, pixel spacing and transfer syntax that can be decoded."""
    modalities = sorted({str(h.get("Modality", "") or "none") for h in headers})
    if modalities != ["CT"]:
        raise DicomSeriesError(f"{folder}: modality {', '.join(modalities)}, not CT; the model "
                               "segments CT only (--force does not change this).")
    for header in headers:
        sop_class = str(header.get("SOPClassUID", ""))
        if sop_class in _ENHANCED_CT or int(header.get("NumberOfFrames", 1) or 1) > 1:
            kind = f"{_ENHANCED_CT[sop_class]} (multi-frame)" if sop_class in _ENHANCED_CT \
                else "multi-frame"
            raise DicomSeriesError(f"{folder}: {kind} DICOM is not supported; convert "
                                   "it to a single-frame CT series or to NIfTI (e.g. dcm2niix) first.")
        if sop_class != CT_IMAGE_STORAGE:
            raise DicomSeriesError(f"{folder}: SOP class {sop_class} is not CT Image Storage; give "
                                   "the folder of the CT image slices.")
        missing = [name for name in _REQUIRED if name not in header]
        if missing:
            raise DicomSeriesError(f"{folder}: a slice lacks {', '.join(missing)}; the geometry of "
                                   "the series is unknown, so it cannot be segmented.")
    for name in ("Rows", "Columns", "PixelSpacing"):
        values = {tuple(np.atleast_1d(np.asarray(h.get(name), dtype=float))) for h in headers}
        if len(values) > 1:
            raise DicomSeriesError(f"{folder}: the slices differ in {name}; give a series of "
                                   "slices on one grid.")
    for syntax in {str(h.file_meta.get("TransferSyntaxUID", _IMPLICIT_VR_LITTLE_ENDIAN))
                   for h in headers}:
        _check_decodable(syntax, folder)


def _check_decodable(syntax: str, folder: Path) -> None:
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


def _read_pixels(paths: list[Path], headers: list[Dataset]) -> np.ndarray:
    """Stored values times RescaleSlope plus RescaleIntercept, as (column, row, slice); int16 while
    the rescaled values are whole numbers that fit, else float32."""
    import pydicom

    rescale = [(float(h.get("RescaleSlope", 1) or 1), float(h.get("RescaleIntercept", 0) or 0))
               for h in headers]
    whole = all(slope == 1 and intercept.is_integer() for slope, intercept in rescale)
    array = np.empty((int(headers[0].Columns), int(headers[0].Rows), len(paths)),
                     dtype=np.int16 if whole else np.float32)
    for k, (path, (slope, intercept)) in enumerate(zip(paths, rescale)):
        try:
            stored = pydicom.dcmread(path, force=True).pixel_array
        except Exception as exc:  # noqa: BLE001 - a damaged file is named, not guessed at
            raise DicomSeriesError(f"{path}: its pixel data cannot be read ({type(exc).__name__}: "
                                   f"{exc}); export the series again.") from exc
        if stored.shape != (array.shape[1], array.shape[0]):
            raise DicomSeriesError(f"{path}: pixel data of shape {stored.shape} where "
                                   f"{array.shape[1]}x{array.shape[0]} grey levels are expected; "
                                   "give a grey-level CT series.")
        values = stored.T.astype(np.float64) * slope + intercept
        if array.dtype == np.int16 and (values.min() < -32768 or values.max() > 32767):
            array = array.astype(np.float32)
        array[:, :, k] = values
    return array
