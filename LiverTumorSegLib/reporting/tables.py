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


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (for benchmark results and README); cells formatted as in `text_table`."""
    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(format_value(v) if not isinstance(v, str) else v for v in row) + " |"
              for row in rows]
    return "\n".join(lines)


def statistics_summary(name: str, stats: dict) -> str:
    """The volumes, burden, warnings and lesion list of one segmentation."""
    lines = [f"{name}: liver {stats['liver_volume_ml']:.1f} mL, {stats['tumor_count']} tumor(s) "
             f"{stats['tumor_volume_ml']:.2f} mL, burden {stats['tumor_burden_percent']:.2f}%, "
             f"confidence {format_value(stats['confidence'])}, {stats['seconds']:.1f} s on "
             f"{stats['device']}"]
    lines += [f"  WARNING: {warning}" for warning in stats.get("warnings", [])]
    if stats["lesions"]:
        columns = ("Structure", "Volume (mL)", "Longest axial diameter (mm)", "Max 3D diameter (mm)",
                   "Size category", "Mean HU", "Mean confidence")
        lesions = [row for row in statistics_rows(stats) if row["Structure"].startswith("Lesion")]
        lines.append(text_table(columns, [[row[c] for c in columns] for row in lesions]))
    return "\n".join(lines)


STATISTICS_COLUMNS = ("Structure", "Volume (mL)", "Parenchyma volume (mL)", "Count",
                      "Tumor burden (%)", "Longest axial diameter (mm)", "Max 3D diameter (mm)",
                      "Centroid R (mm)", "Centroid A (mm)", "Centroid S (mm)", "Mean HU",
                      "Mean confidence", "Size category", "Warning")
TEXT_COLUMNS = ("Structure", "Size category", "Warning")
WARNING_ROW = "WARNING"


def statistics_rows(stats: dict) -> list[dict[str, Any]]:
    """One row per warning of the run (first, so that a table shows them before any number), one
    for the liver, one for all tumors, one per lesion (columns: STATISTICS_COLUMNS; None where a
    column does not apply)."""
    rows = [{"Structure": WARNING_ROW, "Warning": warning} for warning in stats.get("warnings", [])]
    rows += [
        {"Structure": "Whole liver", "Volume (mL)": stats["liver_volume_ml"],
         "Parenchyma volume (mL)": stats["liver_parenchyma_volume_ml"],
         "Mean confidence": stats["confidence"]},
        {"Structure": "Tumor (all)", "Volume (mL)": stats["tumor_volume_ml"],
         "Count": stats["tumor_count"], "Tumor burden (%)": stats["tumor_burden_percent"]},
    ]
    for lesion in stats["lesions"]:
        r, a, s = lesion["centroid_ras_mm"]
        rows.append({"Structure": f"Lesion {lesion['id']}", "Volume (mL)": lesion["volume_ml"],
                     "Longest axial diameter (mm)": lesion["longest_axial_diameter_mm"],
                     "Max 3D diameter (mm)": lesion["max_diameter_mm"],
                     "Centroid R (mm)": r, "Centroid A (mm)": a, "Centroid S (mm)": s,
                     "Mean HU": lesion["mean_hu"], "Mean confidence": lesion["mean_confidence"],
                     "Size category": lesion["size_category"]})
    return [{column: row.get(column) for column in STATISTICS_COLUMNS} for row in rows]
