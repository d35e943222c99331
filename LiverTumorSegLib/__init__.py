"""LiverTumorSeg engine: liver and liver-tumor segmentation of abdominal CT, without Qt or Slicer.

Typical use::

    from LiverTumorSegLib import Segmenter, read_volume
    result = Segmenter().segment(read_volume("ct.nii.gz"))
    result.labels, result.statistics
"""

from .errors import CancelledError, InputVolumeError, LiverTumorSegError, ModelError, OutputError
from .pipeline import SegmentationResult, Segmenter
from .volume.io import Volume, read_volume

__version__ = "0.1.0"

__all__ = ["CancelledError", "InputVolumeError", "LiverTumorSegError", "ModelError", "OutputError",
           "SegmentationResult", "Segmenter", "Volume", "read_volume", "__version__"]
