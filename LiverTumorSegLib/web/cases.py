"""What the user can open: the demo sample, an uploaded file, DICOM series or `.zip`, or a case of the
`--data` folder. Everything is read by the command line's own `inputs.read_input`, so the same
checks and refusals apply; a folder holding several cases or series is listed for the user to pick
one, each series listed as `segment` lists it when it refuses such a folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..inputs import CaseInput, read_input
from .files import data_entries


@dataclass(frozen=True)
class CaseChoice:
    """One case to open: a file or DICOM folder (and one series of it), with the page's label and
    the source written into the stats JSON's `input`."""

    label: str
    path: Path
    source: str
    series_uid: str | None = None

    def read(self) -> CaseInput:
        """Read the case as `livertumorseg segment` would."""
        return read_input(self.path, self.series_uid)


def choices_in(folder: Path, source: str) -> list[CaseChoice]:
    """The cases an uploaded or `--data` folder holds, at any depth (a `.zip` may nest its series):
    every NIfTI/NRRD file and DICOM series folder, a folder of several series listed per series.
    An empty list never comes back: a folder without any case stays one choice, whose reading
    names the problem."""
    from ..dicom.discovery import series_choices

    choices = []
    for entry in data_entries(folder):
        if entry.path.is_dir():
            series = series_choices(entry.path)
            if len(series) > 1:
                choices += [CaseChoice(line, entry.path, source, uid) for uid, line in series]
                continue
        choices.append(CaseChoice(entry.label, entry.path, source))
    return choices or [CaseChoice(folder.name, folder, source)]
