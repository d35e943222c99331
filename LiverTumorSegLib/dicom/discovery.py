"""Which files of a folder are DICOM, which folders hold a series, and which series of a folder to
read (one, or the one named with `--series`)."""

from __future__ import annotations

import warnings
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DicomSeriesError
from ..volume.io import VOLUME_SUFFIXES

if TYPE_CHECKING:  # pydicom is imported where it is used, so that importing this module is cheap
    from pydicom.dataset import Dataset

_PREAMBLE_BYTES = 132


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


def dicom_files(folder: Path) -> list[Path]:
    """DICOM files directly inside `folder` (volume files and DICOMDIR left out), sorted by name."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.upper() != "DICOMDIR"
                  and not p.name.lower().endswith(VOLUME_SUFFIXES) and _looks_like_dicom(p))


def series_folders(folder: Path) -> list[Path]:
    """The folder itself when it holds DICOM files, and each subfolder (one level deep) that does."""
    found = [folder] if dicom_files(folder) else []
    return found + sorted(p for p in folder.iterdir() if p.is_dir() and dicom_files(p))


def read_headers(folder: Path, series_uid: str | None = None) -> list[tuple[Path, Dataset]]:
    """The (path, header without pixels) of every file of the one series in `folder`, or of the
    series `series_uid`; several series without a choice are refused, each listed."""
    files = dicom_files(folder)
    if not files:
        raise DicomSeriesError(f"{folder} holds no DICOM files; give a folder of DICOM slices, a "
                               "folder of such folders, or NIfTI/NRRD files.")
    by_series = _headers_by_series(files)
    if series_uid is not None:
        if series_uid not in by_series:
            raise DicomSeriesError(f"{folder} holds no series {series_uid}; it holds "
                                   f"{_list_series(by_series)}.")
        return by_series[series_uid]
    if len(by_series) > 1:
        raise DicomSeriesError(f"{folder} holds {len(by_series)} DICOM series: "
                               f"{_list_series(by_series)}; pick one with --series UID.")
    return next(iter(by_series.values()))


def _headers_by_series(files: list[Path]) -> dict[str, list[tuple[Path, Dataset]]]:
    """The (path, header without pixels) of each file, grouped by SeriesInstanceUID."""
    import pydicom

    by_series: dict[str, list[tuple[Path, Dataset]]] = defaultdict(list)
    for path in files:
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        except Exception as exc:  # noqa: BLE001 - a damaged file is named, not guessed at
            raise DicomSeriesError(f"{path}: unreadable DICOM file ({type(exc).__name__}: {exc}); "
                                   "remove it or export the series again.") from exc
        by_series[str(header.get("SeriesInstanceUID", ""))].append((path, header))
    return by_series


def series_choices(folder: Path) -> list[tuple[str, str]]:
    """Each series directly in `folder` as (SeriesInstanceUID, the line `segment` lists it with
    when it refuses a folder of several series), sorted by UID."""
    return [(uid, _list_series({uid: members}))
            for uid, members in sorted(_headers_by_series(dicom_files(folder)).items())]


def _list_series(by_series: dict[str, list[tuple[Path, Dataset]]]) -> str:
    """`UID 'description' (N slices)` for each series, separated by semicolons."""
    parts = []
    for uid, members in sorted(by_series.items()):
        description = str(members[0][1].get("SeriesDescription", "") or "no description")
        parts.append(f"{uid or '(no SeriesInstanceUID)'} '{description}' ({len(members)} slices)")
    return "; ".join(parts)
