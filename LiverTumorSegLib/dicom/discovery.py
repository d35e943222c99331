"""Which files of a folder are DICOM, which of them are images, which folders hold image series,
and which series of a folder to read (one, or the one named with `--series`). Objects that are not
images (structure sets, reports, segmentations, presentation states...) are set aside, never counted
as series."""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DicomSeriesError
from ..volume.io import VOLUME_SUFFIXES

if TYPE_CHECKING:  # pydicom is imported where it is used, so that importing this module is cheap
    from pydicom.dataset import Dataset

_PREAMBLE_BYTES = 132
_IDENTITY = ("SOPInstanceUID", "SeriesInstanceUID")  # without them a file belongs nowhere


@dataclass
class FolderSeries:
    """The image files of the series to read, each (path, header without pixels) in file-name
    order, with the localizer-only series beside it when it was the one series to pick; and the
    folder's objects that are not images, each {"file", "sop_class" in words}."""

    images: list[tuple[Path, Dataset]]
    skipped: list[dict[str, str]]


def _looks_like_dicom(path: Path) -> bool:
    """'DICM' after the 128-byte preamble; else (old files without one) a header with SOP UIDs."""
    try:
        with open(path, "rb") as handle:
            if handle.read(_PREAMBLE_BYTES)[128:] == b"DICM":
                return True
        import pydicom

        with warnings.catch_warnings():  # pydicom guessing at a file that is not DICOM
            warnings.simplefilter("ignore")
            header = pydicom.dcmread(path, stop_before_pixels=True, force=True,
                                     specific_tags=["SOPClassUID", "SOPInstanceUID"])
        return "SOPClassUID" in header and "SOPInstanceUID" in header
    except Exception:  # noqa: BLE001 - anything unreadable is simply not DICOM
        return False


def sop_class_name(header: Dataset) -> str:
    """The object's SOP class in words (its UID where pydicom does not know it)."""
    from pydicom.uid import UID

    uid = str(header.get("SOPClassUID", "") or "")
    return UID(uid).name if uid else "no SOP class"


def is_image(header: Dataset) -> bool:
    """An image a CT series can be made of: an image storage class, or pixels (Rows and Columns)
    of any class but a segmentation."""
    name = sop_class_name(header)
    return "Segmentation" not in name and (
        "Image Storage" in name or ("Rows" in header and "Columns" in header))


def is_localizer(header: Dataset) -> bool:
    """A localizer (scout): LOCALIZER among the values of ImageType."""
    values = header.get("ImageType") or []
    if isinstance(values, str):  # a single value
        values = [values]
    return any(str(value).strip().upper() == "LOCALIZER" for value in values)


def dicom_files(folder: Path) -> list[Path]:
    """DICOM files directly inside `folder` (volume files and DICOMDIR left out), sorted by name."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.upper() != "DICOMDIR"
                  and not p.name.lower().endswith(VOLUME_SUFFIXES) and _looks_like_dicom(p))


def _may_be_a_slice(path: Path) -> bool:
    """Anything but a complete non-image object or a localizer (what is damaged counts: its
    reading refuses it by name)."""
    try:
        header = _read_header(path)
    except DicomSeriesError:
        return True
    return is_image(header) and not is_localizer(header)


def series_folders(folder: Path) -> list[Path]:
    """The folder itself when it holds DICOM slices, and each subfolder (one level deep) that does;
    a folder of localizers and non-image objects only (reports, structure sets) is none."""
    def holds_slices(path: Path) -> bool:
        return any(_may_be_a_slice(p) for p in dicom_files(path))

    found = [folder] if holds_slices(folder) else []
    return found + sorted(p for p in folder.iterdir() if p.is_dir() and holds_slices(p))


def _read_header(path: Path) -> Dataset:
    """The header of one DICOM file without its pixels; a file that cannot be read or that lacks
    SOPInstanceUID or SeriesInstanceUID (e.g. cut off inside its header) is refused by name."""
    import pydicom

    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception as exc:  # noqa: BLE001 - a damaged file is named, not guessed at
        raise DicomSeriesError(f"{path}: unreadable DICOM file ({type(exc).__name__}: {exc}); "
                               "remove it or export the series again.") from exc
    missing = [name for name in _IDENTITY if not header.get(name)]
    if missing:
        raise DicomSeriesError(f"{path}: unreadable DICOM file: it has no {' or '.join(missing)} "
                               "(cut off inside its header?); remove it or export the series "
                               "again.")
    return header


def _group_files(files: list[Path]) -> tuple[dict[str, list[tuple[Path, Dataset]]],
                                             list[dict[str, str]]]:
    """The image files' (path, header) by SeriesInstanceUID, and the non-image objects (file and
    SOP class in words)."""
    by_series: dict[str, list[tuple[Path, Dataset]]] = defaultdict(list)
    skipped: list[dict[str, str]] = []
    for path in files:
        header = _read_header(path)
        if is_image(header):
            by_series[str(header.SeriesInstanceUID)].append((path, header))
        else:
            skipped.append({"file": str(path), "sop_class": sop_class_name(header)})
    return by_series, skipped


def _candidates(by_series: dict[str, list[tuple[Path, Dataset]]]
                ) -> dict[str, list[tuple[Path, Dataset]]]:
    """The image series that can be segmented: all but those of localizers only."""
    return {uid: members for uid, members in by_series.items()
            if not all(is_localizer(header) for _, header in members)}


def read_folder(folder: Path, series_uid: str | None = None) -> FolderSeries:
    """The image files of the one image series in `folder`, or of the series `series_uid`, and the
    folder's non-image objects. Series of localizers only are no candidates; several candidates
    without a choice are refused, each listed."""
    files = dicom_files(folder)
    if not files:
        raise DicomSeriesError(f"{folder} holds no DICOM files; give a folder of DICOM slices, a "
                               "folder of such folders, or NIfTI/NRRD files.")
    by_series, skipped = _group_files(files)
    if not by_series:
        kinds = sorted({item["sop_class"] for item in skipped})
        raise DicomSeriesError(f"{folder} holds no DICOM images, only {len(skipped)} other "
                               f"object(s) ({', '.join(kinds)}); give the folder of the CT slices.")
    if series_uid is not None:
        if series_uid not in by_series:
            raise DicomSeriesError(f"{folder} holds no image series {series_uid}; it holds "
                                   f"{_list_series(by_series)}.")
        return FolderSeries(by_series[series_uid], skipped)
    candidates = _candidates(by_series)
    if len(candidates) > 1:
        raise DicomSeriesError(f"{folder} holds {len(candidates)} DICOM image series: "
                               f"{_list_series(candidates)}; pick one with --series UID.")
    return FolderSeries(sorted((m for members in by_series.values() for m in members),
                               key=lambda member: member[0]), skipped)


def series_choices(folder: Path) -> list[tuple[str, str]]:
    """Each image series of `folder` that can be segmented, as (SeriesInstanceUID, the line
    `segment` lists it with when it refuses a folder of several series), sorted by UID."""
    by_series, _ = _group_files(dicom_files(folder))
    return [(uid, _list_series({uid: members}))
            for uid, members in sorted(_candidates(by_series).items())]


def _list_series(by_series: dict[str, list[tuple[Path, Dataset]]]) -> str:
    """`UID 'description' (N images)` for each series, separated by semicolons."""
    parts = []
    for uid, members in sorted(by_series.items()):
        description = str(members[0][1].get("SeriesDescription", "") or "no description")
        parts.append(f"{uid} '{description}' ({len(members)} images)")
    return "; ".join(parts)
