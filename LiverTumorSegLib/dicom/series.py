"""Read one DICOM CT series into a `Volume`: pick its image files (`discovery`), leave out
localizers, stray images and exact copies (`selection`), refuse what cannot be segmented, sort the
slices along their normal (`geometry`), apply RescaleSlope/RescaleIntercept (`pixels`), and keep the
headers a DICOM SEG refers to, the reading's warnings and the objects set aside."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DicomSeriesError
from ..volume.space import Volume
from .discovery import read_folder, sop_class_name
from .geometry import slice_stack
from .pixels import IMPLICIT_VR_LITTLE_ENDIAN, check_decodable, read_hu_stack
from .selection import drop_copies, drop_localizers, largest_stack

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_ENHANCED_CT = {"1.2.840.10008.5.1.4.1.1.2.1": "Enhanced CT",
                "1.2.840.10008.5.1.4.1.1.2.2": "Legacy Converted Enhanced CT"}
_GEOMETRY = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns")


@dataclass
class DicomSeries:
    """A CT series read from `folder`: the volume (axes: column, row, slice), the slices' headers
    (no pixel data) in the volume's slice order, the reading's warnings (files left out) and the
    objects of the folder that are not images, each {"file", "sop_class"}."""

    folder: Path
    volume: Volume
    headers: list[Dataset]
    warnings: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def series_instance_uid(self) -> str:
        return str(self.headers[0].SeriesInstanceUID)

    @property
    def frame_of_reference_uid(self) -> str | None:
        return self.headers[0].get("FrameOfReferenceUID") or None

    @property
    def intensity_note(self) -> str | None:
        """Why the values may not be Hounsfield units, where the headers say so."""
        if any("RescaleIntercept" not in header for header in self.headers):
            return ("Its DICOM files have no RescaleIntercept, so their stored values were taken "
                    "as Hounsfield units unchanged.")
        return None


def read_series(folder: str | Path, series_uid: str | None = None) -> DicomSeries:
    """Read the CT series in `folder` (or the series `series_uid` of it)."""
    folder = Path(folder)
    found = read_folder(folder, series_uid)
    images, notes = drop_localizers(found.images, folder)
    _check_slice_files(images)
    images, strays = largest_stack(images, folder)
    _check_ct(images, folder)
    images, copies = drop_copies(images, folder)
    headers = [header for _, header in images]
    try:
        stack = slice_stack([float(v) for v in headers[0].ImageOrientationPatient],
                            np.array([[float(v) for v in h.ImagePositionPatient] for h in headers]),
                            tuple(float(v) for v in headers[0].PixelSpacing), str(folder),
                            [path.name for path, _ in images])
    except DicomSeriesError as exc:  # a slice left out may be the one the stack misses
        if not strays:
            raise
        raise DicomSeriesError(f"{exc} {' '.join(strays)}") from None
    paths = [images[i][0] for i in stack.order]
    headers = [headers[i] for i in stack.order]
    return DicomSeries(folder, Volume(read_hu_stack(paths, headers), stack.affine), headers,
                       notes + strays + copies, found.skipped)


def _check_slice_files(images: list[tuple[Path, Dataset]]) -> None:
    """Single-frame images with the geometry a stack needs; the first file that is not is named."""
    for path, header in images:
        sop_class = str(header.get("SOPClassUID", ""))
        if sop_class in _ENHANCED_CT or int(header.get("NumberOfFrames", 1) or 1) > 1:
            kind = f"{_ENHANCED_CT[sop_class]} (multi-frame)" if sop_class in _ENHANCED_CT \
                else "multi-frame"
            raise DicomSeriesError(f"{path}: {kind} DICOM is not supported; convert the series "
                                   "to single-frame CT slices or to NIfTI (e.g. dcm2niix) first.")
        missing = [name for name in _GEOMETRY if name not in header]
        if missing:
            raise DicomSeriesError(f"{path}: the slice lacks {', '.join(missing)}; the geometry "
                                   "of the series is unknown, so it cannot be segmented.")


def _check_ct(images: list[tuple[Path, Dataset]], folder: Path) -> None:
    """CT Image Storage slices whose transfer syntax can be decoded."""
    headers = [header for _, header in images]
    modalities = sorted({str(h.get("Modality", "") or "none") for h in headers})
    if modalities != ["CT"]:
        raise DicomSeriesError(f"{folder}: modality {', '.join(modalities)}, not CT; the model "
                               "segments CT only (--force does not change this).")
    for path, header in images:
        if str(header.get("SOPClassUID", "")) != CT_IMAGE_STORAGE:
            raise DicomSeriesError(f"{path}: SOP class {sop_class_name(header)} is not CT Image "
                                   "Storage; give the folder of the CT image slices.")
    for syntax in {str(h.file_meta.get("TransferSyntaxUID", IMPLICIT_VR_LITTLE_ENDIAN))
                   for h in headers}:
        check_decodable(syntax, folder)
