"""Names, label values, colours, terminology and contents of the two output segments (one place
for all). `Liver` holds the parenchyma only; the whole liver is `Liver` and `Tumor` together.

The terminology is kept as Slicer's terminology entry string; `SegmentStyle.codes` reads the coded
concepts out of it for writers that need them one by one (the DICOM SEG).
"""

from __future__ import annotations

from dataclasses import dataclass

from .labels import LIVER, TUMOR


@dataclass(frozen=True)
class Code:
    """One coded concept: coding scheme designator, code value and code meaning."""

    scheme: str
    value: str
    meaning: str


@dataclass(frozen=True)
class SegmentCodes:
    """The coded concepts of a segment's terminology (anatomic region None when not given)."""

    category: Code
    type: Code
    anatomic_region: Code | None


def _code(field: str) -> Code | None:
    scheme, value, meaning = field.split("^")
    return Code(scheme, value, meaning) if value else None


@dataclass(frozen=True)
class SegmentStyle:
    """How one label value appears as a segment (Slicer segment or DICOM SEG segment)."""

    name: str
    label: int
    colour_rgb: tuple[int, int, int]
    terminology: str
    contents: str  # what the segment holds, said wherever it is written (Slicer, DICOM SEG)

    @property
    def colour_unit(self) -> tuple[float, float, float]:
        return tuple(c / 255.0 for c in self.colour_rgb)  # type: ignore[return-value]

    @property
    def codes(self) -> SegmentCodes:
        """Category, type and anatomic region parsed from the terminology entry string
        (`context~category~type~type modifier~anatomic context~region~region modifier`)."""
        fields = self.terminology.split("~")
        category, segment_type = _code(fields[1]), _code(fields[2])
        if category is None or segment_type is None:
            raise ValueError(f"The terminology of segment {self.name} has no category or type.")
        return SegmentCodes(category, segment_type, _code(fields[5]) if len(fields) > 5 else None)


LIVER_SEGMENT = SegmentStyle(
    name="Liver", label=LIVER, colour_rgb=(221, 130, 101),
    contents="Liver parenchyma without the tumours (label 1); the whole liver, whose volume the "
             "statistics report as liver_volume_ml, is Liver and Tumor together",
    terminology="Segmentation category and type - 3D Slicer General Anatomy list"
                "~SCT^123037004^Anatomical Structure~SCT^10200004^Liver~^^~~^^~^^")
TUMOR_SEGMENT = SegmentStyle(
    name="Tumor", label=TUMOR, colour_rgb=(60, 220, 90),
    contents="Every liver tumour (label 2), inside the liver; each 6-connected component is one "
             "lesion of the statistics",
    terminology="Segmentation category and type - DICOM master list"
                "~SCT^49755003^Morphologically Altered Structure~SCT^108369006^Neoplasm~^^"
                "~Anatomic codes - DICOM master list~SCT^10200004^Liver~^^")
OUTPUT_SEGMENTS = (LIVER_SEGMENT, TUMOR_SEGMENT)
