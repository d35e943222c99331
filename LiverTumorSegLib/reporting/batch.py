"""The report over a batch of cases: `summary.csv` (one row per case, failed ones with their error)
and `lesions.csv` (one row per lesion, with its case)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_write_csv

STATISTICS_KEYS = ("liver_volume_ml", "liver_parenchyma_volume_ml", "tumor_volume_ml", "tumor_count",
                   "tumor_burden_percent", "confidence", "device", "seconds", "model")
SUMMARY_COLUMNS = ("case", "input", "status", *STATISTICS_KEYS, "warnings", "error")
LESION_KEYS = ("id", "volume_ml", "longest_axial_diameter_mm", "max_diameter_mm", "mean_hu",
               "mean_confidence", "size_category")
LESION_COLUMNS = ("case", *LESION_KEYS, "centroid_r_mm", "centroid_a_mm", "centroid_s_mm")
WARNING_SEPARATOR = " | "


@dataclass(frozen=True)
class CaseOutcome:
    """One case of a batch: its statistics when it succeeded, its error message when it failed."""

    name: str
    input: Path
    statistics: dict | None = None
    error: str | None = None


def summary_rows(outcomes: list[CaseOutcome]) -> list[list]:
    """Rows of `summary.csv` in SUMMARY_COLUMNS order."""
    rows = []
    for case in outcomes:
        stats = case.statistics or {}
        rows.append([case.name, str(case.input), "failed" if case.error else "ok",
                     *(stats.get(key) for key in STATISTICS_KEYS),
                     WARNING_SEPARATOR.join(stats.get("warnings", [])), case.error])
    return rows


def lesion_rows(outcomes: list[CaseOutcome]) -> list[list]:
    """Rows of `lesions.csv` in LESION_COLUMNS order, cases in batch order, lesions largest first."""
    return [[case.name, *(lesion[key] for key in LESION_KEYS), *lesion["centroid_ras_mm"]]
            for case in outcomes if case.statistics for lesion in case.statistics["lesions"]]


def write_batch_report(output_dir: Path, outcomes: list[CaseOutcome]) -> tuple[Path, Path]:
    """Write `summary.csv` and `lesions.csv` into `output_dir`, each atomically."""
    summary, lesions = Path(output_dir) / "summary.csv", Path(output_dir) / "lesions.csv"
    atomic_write_csv(summary, SUMMARY_COLUMNS, summary_rows(outcomes))
    atomic_write_csv(lesions, LESION_COLUMNS, lesion_rows(outcomes))
    return summary, lesions
