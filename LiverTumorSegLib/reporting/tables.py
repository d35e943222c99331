"""Plain-text tables for the terminal."""

from __future__ import annotations

from typing import Any, Sequence


def format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(format_value(v) for v in value) + ")"
    return str(value)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns aligned with two spaces, a rule under the header."""
    cells = [[str(h) for h in headers]] + [[format_value(v) for v in row] for row in rows]
    widths = [max(len(row[c]) for row in cells) for c in range(len(headers))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def statistics_summary(name: str, stats: dict) -> str:
    """The volumes, burden and lesion list of one segmentation."""
    head = (f"{name}: liver {stats['liver_volume_ml']:.1f} mL, {stats['tumor_count']} tumor(s) "
            f"{stats['tumor_volume_ml']:.2f} mL, burden {stats['tumor_burden_percent']:.2f}%, "
            f"confidence {format_value(stats['confidence'])}, {stats['seconds']:.1f} s on "
            f"{stats['device']}")
    if not stats["lesions"]:
        return head
    rows = [[l["id"], l["volume_ml"], l["longest_axial_diameter_mm"], l["max_diameter_mm"],
             l["size_category"], l["mean_hu"], l["mean_confidence"], l["centroid_ras_mm"]]
            for l in stats["lesions"]]
    return head + "\n" + text_table(
        ["lesion", "volume mL", "axial diam mm", "3D diam mm", "size", "mean HU", "confidence",
         "centroid RAS mm"], rows)
