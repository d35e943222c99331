"""Names, label values, colours and terminology of the two output segments (one place for all)."""

from __future__ import annotations

from dataclasses import dataclass

from .labels import LIVER, TUMOR


@dataclass(frozen=True)
class SegmentStyle:
    """How one label value appears as a Slicer segment."""

    name: str
    label: int
    colour_rgb: tuple[int, int, int]
    terminology: str

    @property
    def colour_unit(self) -> tuple[float, float, float]:
        return tuple(c / 255.0 for c in self.colour_rgb)  # type: ignore[return-value]


LIVER_SEGMENT = SegmentStyle(
    name="Liver", label=LIVER, colour_rgb=(221, 130, 101),
    terminology="Segmentation category and type - 3D Slicer General Anatomy list"
                "~SCT^123037004^Anatomical Structure~SCT^10200004^Liver~^^~~^^~^^")
TUMOR_SEGMENT = SegmentStyle(
    name="Tumor", label=TUMOR, colour_rgb=(60, 220, 90),
    terminology="Segmentation category and type - DICOM master list"
                "~SCT^49755003^Morphologically Altered Structure~SCT^108369006^Neoplasm~^^"
                "~Anatomic codes - DICOM master list~SCT^10200004^Liver~^^")
OUTPUT_SEGMENTS = (LIVER_SEGMENT, TUMOR_SEGMENT)
