"""Evaluate predicted label files against reference label files, case by case."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .atomic import atomic_write_csv, atomic_write_json
from .errors import InputVolumeError
from .metrics import STRUCTURES, evaluate_case, summarize
from .reporting.figures import save_dice_bars
from .volume.checks import as_scalar_3d
from .volume.io import VOLUME_SUFFIXES, read_volume_file, volume_stem

_ROLE_SUFFIX = re.compile(r"(_seg|_label|_labels|_pred|_prediction|_truth|_gt|_ct|_mask)+$", re.I)
_LITS_PREFIX = re.compile(r"^(volume|segmentation)-", re.I)
METRIC_COLUMNS = ("dice", "iou", "voe", "rvd", "assd_mm", "hd95_mm", "precision", "recall",
                  "pixel_accuracy", "psnr_db")
LESION_COLUMNS = ("lesions_true", "lesions_predicted", "lesions_found", "lesion_recall",
                  "lesion_precision", "lesion_f1")


def case_name(path: Path) -> str:
    """Case name shared by a prediction and its truth: `case_ct_seg.nii.gz` and
    `case_label.nii.gz` give `case`; LiTS `volume-7` and `segmentation-7` give `lits-7`."""
    stem = _ROLE_SUFFIX.sub("", volume_stem(path))
    return _LITS_PREFIX.sub("lits-", stem)


def _volume_files(folder: Path) -> dict[str, Path]:
    files = sorted(p for p in folder.iterdir() if p.name.lower().endswith(VOLUME_SUFFIXES))
    return {case_name(p): p for p in files}


def match_cases(pred: Path, truth: Path) -> list[tuple[str, Path, Path]]:
    """Pairs (case, prediction, truth): two files, or two folders matched by case name."""
    pred, truth = Path(pred), Path(truth)
    if pred.is_file() and truth.is_file():
        return [(case_name(truth), pred, truth)]
    if pred.is_dir() and truth.is_dir():
        predictions, truths = _volume_files(pred), _volume_files(truth)
        common = sorted(set(predictions) & set(truths))
        if not common:
            raise InputVolumeError(f"No case in {pred} matches one in {truth}; name files like "
                                   "<case>_seg.nii.gz and <case>_label.nii.gz.")
        return [(name, predictions[name], truths[name]) for name in common]
    raise InputVolumeError(f"--pred and --truth must be two files or two folders ({pred}, {truth}).")


def evaluate_files(pairs: list[tuple[str, Path, Path]]) -> dict[str, dict]:
    """Metrics per case; prediction and truth must share one grid."""
    cases = {}
    for name, pred_path, truth_path in pairs:
        pred, truth = read_volume_file(pred_path), read_volume_file(truth_path)
        pred_labels, truth_labels = as_scalar_3d(pred.array), as_scalar_3d(truth.array)
        if pred_labels.shape != truth_labels.shape or not np.allclose(pred.affine, truth.affine,
                                                                      atol=1e-3):
            raise InputVolumeError(f"{pred_path} and {truth_path} are not on the same voxel grid "
                                   f"(shapes {pred_labels.shape} and {truth_labels.shape}); "
                                   "evaluate predictions written for that very CT.")
        cases[name] = evaluate_case(np.asarray(pred_labels), np.asarray(truth_labels), truth.spacing)
    return cases


def evaluation_rows(cases: dict[str, dict]) -> tuple[list[str], list[list]]:
    """One row per case: liver metrics, tumor metrics, lesion detection."""
    headers = ["case"] + [f"{s}_{m}" for s in STRUCTURES for m in METRIC_COLUMNS] + list(LESION_COLUMNS)
    rows = [[name] + [c[s][m] for s in STRUCTURES for m in METRIC_COLUMNS]
            + [c["lesions"][k] for k in LESION_COLUMNS] for name, c in cases.items()]
    return headers, rows


def write_evaluation(output_dir: Path, cases: dict[str, dict], prefix: str = "evaluation") -> dict:
    """Write `<prefix>.csv`, `<prefix>.json` and `<prefix>_dice.png`; return the summary."""
    summary = summarize(cases)
    headers, rows = evaluation_rows(cases)
    output_dir = Path(output_dir)
    atomic_write_csv(output_dir / f"{prefix}.csv", headers, rows)
    atomic_write_json(output_dir / f"{prefix}.json", {"cases": cases, "summary": summary})
    save_dice_bars(output_dir / f"{prefix}_dice.png", cases)
    return summary
