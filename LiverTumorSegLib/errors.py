"""Exceptions the engine raises for problems a user can act on.

Every message names the problem and what to do about it; the command line prints it as one line
and the Slicer module shows it in a dialog.
"""


class LiverTumorSegError(Exception):
    """Base class of every error the engine reports to a user."""


class InputVolumeError(LiverTumorSegError):
    """The input is not a CT volume the model can segment (shape, values, file)."""


class ModelError(LiverTumorSegError):
    """No usable model: card or weights missing, truncated or tampered with."""


class OutputError(LiverTumorSegError):
    """An output cannot be written."""


class CancelledError(LiverTumorSegError):
    """The user cancelled the run; nothing was written."""


class DicomSeriesError(InputVolumeError):
    """A DICOM folder or series the engine cannot segment (several series, gaps, tilt, not CT)."""


class IntensityError(InputVolumeError):
    """The values do not look like CT Hounsfield units: the one check that forcing the run
    (`force=True`, `--force` on the command line) turns into a warning."""
