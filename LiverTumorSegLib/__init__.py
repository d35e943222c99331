"""LiverTumorSeg engine: liver and liver-tumor segmentation of abdominal CT, without Qt or Slicer.

Typical use::

    from LiverTumorSegLib import Segmenter, read_volume
    result = Segmenter().segment(read_volume("ct.nii.gz"))   # or read_volume("dicom/series_folder")
    result.labels, result.statistics

    from LiverTumorSegLib.workflow import segment_file     # files in, files out (DICOM SEG too)
    segment_file(Segmenter(), Path("dicom/series_folder"), Path("out"), dicom_seg=True)

Importing the package is cheap and needs no torch: the names below load their modules on first use,
so that Slicer can import the module (and offer to install torch) on a machine without it.

Two subpackages serve the Slicer module and are used only there: `mrml` (the engine on a Slicer
scene; it needs Slicer's MRML classes, or the PyPI `slicer-core` headless) and `panel` (the worker
thread the panel polls, and package installation through Slicer's own tools). Neither is imported by
the rest of the package.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "CancelledError": "errors", "DicomSeriesError": "errors", "InputVolumeError": "errors",
    "LiverTumorSegError": "errors", "ModelError": "errors", "OutputError": "errors",
    "DicomSeries": "dicom.series", "read_series": "dicom.series",
    "SegmentationResult": "pipeline", "Segmenter": "pipeline",
    "Volume": "volume.space", "read_volume": "inputs",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
