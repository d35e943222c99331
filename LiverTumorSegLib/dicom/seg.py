"""Write the segmentation of a DICOM series as a DICOM Segmentation (highdicom): `Liver` and `Tumor`
segments coded as in Slicer (`segments.py`), every source slice referenced, patient and study taken
over from the source, the algorithm named with its version, and any warning of the run carried along.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import __version__
from ..atomic import atomic_output
from ..segments import OUTPUT_SEGMENTS, Code, SegmentStyle
from .series import DicomSeries

if TYPE_CHECKING:  # highdicom and pydicom are imported where they are used
    from highdicom.seg import Segmentation
    from pydicom.dataset import Dataset

ALGORITHM_NAME = "LiverTumorSeg"
SERIES_DESCRIPTION = "LiverTumorSeg liver and tumors"
_LO_LENGTH = 64  # DICOM LO values (SeriesDescription, ContentDescription) hold 64 characters


def frame_of_reference(series: DicomSeries) -> tuple[str, str | None]:
    """The series' FrameOfReferenceUID, or one generated from its SeriesInstanceUID (the same on
    every run) together with the warning to give about it."""
    if series.frame_of_reference_uid:
        return series.frame_of_reference_uid, None
    from pydicom.uid import generate_uid

    uid = str(generate_uid(entropy_srcs=[series.series_instance_uid, "FrameOfReferenceUID"]))
    return uid, (f"The series has no FrameOfReferenceUID; the DICOM SEG uses the generated {uid}, so "
                 "viewers that match a segmentation to its images by frame of reference may not "
                 "overlay it.")


def _concept(code: Code):
    from highdicom.sr import CodedConcept

    return CodedConcept(code.value, code.scheme, code.meaning)


def _segment(style: SegmentStyle, algorithm, description: str):
    import highdicom as hd

    codes = style.codes
    segment = hd.seg.SegmentDescription(
        segment_number=style.label, segment_label=style.name,
        segmented_property_category=_concept(codes.category),
        segmented_property_type=_concept(codes.type),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
        anatomic_regions=[_concept(codes.anatomic_region)] if codes.anatomic_region else None,
        display_color=hd.color.CIELabColor.from_rgb(*style.colour_rgb))
    segment.SegmentDescription = description
    return segment


def build_dicom_seg(series: DicomSeries, labels: np.ndarray, frame_uid: str, model_name: str,
                    model_sha256: str,
                    warnings: list[str]) -> tuple[Segmentation, dict[str, str | bool]]:
    """The DICOM SEG of `labels` (on the series' volume grid: 1 liver, 2 tumor) in the frame of
    reference `frame_uid`, and what the statistics record about it."""
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    sources = []
    for header in series.headers:
        source = copy.deepcopy(header)
        source.FrameOfReferenceUID = frame_uid
        sources.append(source)
    algorithm = hd.AlgorithmIdentificationSequence(
        name=ALGORITHM_NAME, family=codes.cid7162.ArtificialIntelligence,
        version=f"{__version__}, model {model_name}"[:_LO_LENGTH])
    description = (f"Automatic segmentation by {ALGORITHM_NAME} {__version__} (model {model_name}); "
                   "research use only, check every result.")
    if warnings:
        description += " WARNINGS: " + " ".join(warnings)
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=np.ascontiguousarray(labels.transpose(2, 1, 0)),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[_segment(s, algorithm, f"{s.contents}. {description}"[:1024])
                              for s in OUTPUT_SEGMENTS],
        series_instance_uid=generate_uid(), series_number=99, sop_instance_uid=generate_uid(),
        instance_number=1, manufacturer=ALGORITHM_NAME, manufacturer_model_name=model_name[:_LO_LENGTH],
        software_versions=__version__, device_serial_number=model_sha256[:16],
        content_description=(f"WARNING: {warnings[0]}" if warnings else
                             "Automatic liver and liver tumor segmentation")[:_LO_LENGTH],
        content_label="LIVERTUMORSEG")
    seg.SeriesDescription = f"{SERIES_DESCRIPTION} (WARNINGS)" if warnings else SERIES_DESCRIPTION
    return seg, {"seg_sop_instance_uid": str(seg.SOPInstanceUID),
            "seg_series_instance_uid": str(seg.SeriesInstanceUID),
            "source_series_instance_uid": series.series_instance_uid,
            "frame_of_reference_uid": frame_uid,
            "frame_of_reference_uid_generated": frame_uid != series.frame_of_reference_uid}


def save_dataset(path: Path, dataset: Dataset) -> None:
    """Write a DICOM dataset (with its file meta information) atomically."""
    with atomic_output(path) as tmp:
        dataset.save_as(tmp, enforce_file_format=True)
