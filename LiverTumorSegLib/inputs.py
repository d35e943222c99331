"""What kind of input is this, and how is it read: a NIfTI or NRRD file (`volume.io`) or a DICOM
series folder (`dicom`). The one place that knows both readers; neither reader imports it.

Needs no torch, so the command line reads the first input while the model loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .errors import InputVolumeError, LiverTumorSegError
from .volume.io import VOLUME_SUFFIXES, read_volume_file, volume_stem
from .volume.space import Volume


def case_name(path: Path) -> str:
    """What a case's outputs are named after: a series folder's name, or a file's stem."""
    return path.name if path.is_dir() else volume_stem(path)


def expand_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """The cases that `segment` inputs stand for: a file is one case; a folder stands for every
    NIfTI/NRRD volume directly inside it, for itself when it holds DICOM files, and for each
    subfolder (one level deep) that holds DICOM files. A folder with none of these stays one case,
    which its reading refuses. Two cases with the same name are refused before anything runs."""
    from .dicom.discovery import series_folders

    cases: list[Path] = []
    for item in map(Path, inputs):
        if not item.is_dir():
            cases.append(item)
            continue
        found = sorted(p for p in item.iterdir()
                       if p.is_file() and p.name.lower().endswith(VOLUME_SUFFIXES))
        cases.extend(found + series_folders(item) or [item])
    names = [case_name(p) for p in cases]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise LiverTumorSegError(f"Several inputs would write the same outputs ({', '.join(clashes)}); "
                                 "segment them into different output folders, or rename them.")
    return cases


def check_dicom_seg_inputs(cases: Sequence[Path]) -> None:
    """A DICOM SEG references its source series: refuse it for NIfTI/NRRD inputs."""
    files = [str(path) for path in cases if not path.is_dir()]
    if files:
        raise InputVolumeError(f"--dicom-seg needs DICOM series as inputs, but {', '.join(files)} "
                               "has no source series for a DICOM SEG to reference; leave out "
                               "--dicom-seg or give the DICOM series folder.")


@dataclass
class CaseInput:
    """One input read into memory: its volume and, for a DICOM series, the series (for the SEG)."""

    path: Path
    volume: Volume
    series: Any = None  # dicom.series.DicomSeries


def read_input(input_path: Path, series_uid: str | None = None) -> CaseInput:
    """Read a NIfTI/NRRD file or a DICOM series folder (`series_uid` picks one series of a folder
    holding several). Needs no torch, so a caller can read while the model loads."""
    input_path = Path(input_path)
    if input_path.is_dir():
        from .dicom.series import read_series

        series = read_series(input_path, series_uid)
        return CaseInput(input_path, series.volume, series)
    return CaseInput(input_path, read_volume_file(input_path))


def read_volume(path: str | Path, series_uid: str | None = None) -> Volume:
    """The CT volume of a NIfTI or NRRD file, or of the DICOM series in a folder."""
    return read_input(Path(path), series_uid).volume
