"""Evaluation metrics for one structure (liver or tumor) of one case, and over a set of cases.

Conventions (REFERENCE.md section 4): empty truth and empty prediction score Dice/IoU 1 and distances
0; a distance with exactly one side empty is undefined (None). PSNR treats the masks as images with
peak 1 and is None (infinite) when they agree everywhere.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .labels import TUMOR, boundary, bounding_box, label_components

STRUCTURES = {"liver": lambda labels: labels > 0, "tumor": lambda labels: labels == TUMOR}


def surface_distances(a: np.ndarray, b: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Distances (mm) from each surface voxel of `a` to the surface of `b`, and back, concatenated.

    Computed on the bounding box of both masks: nothing of either lies outside it and every voxel
    just outside it is empty, so surfaces and distances are those of the whole grid, while the
    distance transforms, the costly part, cover the box only."""
    box = bounding_box(a | b)
    if box is not None:
        a, b = a[box], b[box]
    sa, sb = boundary(a), boundary(b)
    to_b = ndimage.distance_transform_edt(~sb, sampling=spacing)[sa]
    to_a = ndimage.distance_transform_edt(~sa, sampling=spacing)[sb]
    return np.concatenate([to_b, to_a])


def overlap_metrics(pred: np.ndarray, truth: np.ndarray,
                    spacing: tuple[float, ...]) -> dict[str, float | None]:
    """Dice, IoU, VOE, RVD, ASSD, HD95, precision, recall, pixel accuracy and PSNR of two masks."""
    pred, truth = pred.astype(bool), truth.astype(bool)
    tp = int(np.count_nonzero(pred & truth))
    n_pred, n_truth = int(np.count_nonzero(pred)), int(np.count_nonzero(truth))
    union = n_pred + n_truth - tp
    errors = union - tp
    both_empty = n_pred == 0 and n_truth == 0
    dice = 1.0 if both_empty else 2.0 * tp / (n_pred + n_truth)
    iou = 1.0 if both_empty else tp / union
    if both_empty:
        assd, hd95 = 0.0, 0.0
    elif n_pred == 0 or n_truth == 0:
        assd, hd95 = None, None
    else:
        distances = surface_distances(pred, truth, spacing)
        assd, hd95 = float(distances.mean()), float(np.percentile(distances, 95))
    mse = errors / pred.size
    return {
        "dice": dice,
        "iou": iou,
        "voe": 1.0 - iou,
        "rvd": (n_pred - n_truth) / n_truth if n_truth else (0.0 if n_pred == 0 else None),
        "assd_mm": assd,
        "hd95_mm": hd95,
        "precision": tp / n_pred if n_pred else (1.0 if both_empty else 0.0),
        "recall": tp / n_truth if n_truth else (1.0 if both_empty else 0.0),
        "pixel_accuracy": 1.0 - mse,
        "psnr_db": None if mse == 0 else -10.0 * math.log10(mse),
    }


def detection_scores(found: int, true: int, matched: int, predicted: int) -> dict:
    """Lesion recall (found / true), precision (matched predictions / predicted) and F1."""
    recall = found / true if true else None
    precision = matched / predicted if predicted else None
    f1 = (2 * precision * recall / (precision + recall)
          if recall is not None and precision is not None and precision + recall > 0 else None)
    return {"lesions_true": true, "lesions_predicted": predicted, "lesions_found": found,
            "predictions_matched": matched, "lesion_recall": recall,
            "lesion_precision": precision, "lesion_f1": f1}


def overlapping_lesions(pred_tumor: np.ndarray, truth_tumor: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The numbers of the reference lesions that a predicted lesion overlaps by at least one voxel,
    of the predicted lesions that overlap a reference one, and both lesion counts. Lesions are
    components (`label_components`) numbered in raster order of the whole volume."""
    box = bounding_box(pred_tumor | truth_tumor)
    if box is not None:  # every component lies inside the box, in the same raster order
        pred_tumor, truth_tumor = pred_tumor[box], truth_tumor[box]
    pred_components, n_pred = label_components(pred_tumor)
    truth_components, n_truth = label_components(truth_tumor)
    overlap = (pred_components > 0) & (truth_components > 0)
    return (np.unique(truth_components[overlap]), np.unique(pred_components[overlap]),
            n_truth, n_pred)


def lesion_detection(pred_tumor: np.ndarray, truth_tumor: np.ndarray) -> dict:
    """Lesion-wise detection: components matched when they overlap by at least one voxel."""
    found, matched, n_truth, n_pred = overlapping_lesions(pred_tumor, truth_tumor)
    return detection_scores(len(found), n_truth, len(matched), n_pred)


def evaluate_case(pred_labels: np.ndarray, truth_labels: np.ndarray,
                  spacing: tuple[float, ...]) -> dict:
    """All metrics of one case: per structure, plus lesion detection and voxel counts for pooling."""
    if pred_labels.shape != truth_labels.shape:
        raise ValueError(f"Prediction shape {pred_labels.shape} differs from truth "
                         f"{truth_labels.shape}; both must be on the same grid.")
    result: dict = {}
    for name, select in STRUCTURES.items():
        pred, truth = select(pred_labels), select(truth_labels)
        result[name] = overlap_metrics(pred, truth, spacing)
        result[name]["counts"] = {"intersection": int(np.count_nonzero(pred & truth)),
                                  "pred": int(np.count_nonzero(pred)),
                                  "truth": int(np.count_nonzero(truth))}
    result["lesions"] = lesion_detection(pred_labels == TUMOR, truth_labels == TUMOR)
    return result


def summarize(cases: dict[str, dict]) -> dict:
    """Mean per-case metrics, global (pooled) Dice and pooled lesion detection over a set of cases."""
    summary: dict = {}
    for name in STRUCTURES:
        per_case = [case[name] for case in cases.values()]
        means = {}
        for key in per_case[0] if per_case else []:
            if key == "counts":
                continue
            values = [c[key] for c in per_case if c[key] is not None]
            means[f"mean_{key}"] = float(np.mean(values)) if values else None
        counts = [c["counts"] for c in per_case]
        denominator = sum(c["pred"] + c["truth"] for c in counts)
        means["global_dice"] = (2.0 * sum(c["intersection"] for c in counts) / denominator
                                if denominator else 1.0)
        summary[name] = means
    totals = {key: sum(case["lesions"][key] for case in cases.values())
              for key in ("lesions_found", "lesions_true", "predictions_matched", "lesions_predicted")}
    summary["lesions"] = detection_scores(totals["lesions_found"], totals["lesions_true"],
                                          totals["predictions_matched"], totals["lesions_predicted"])
    return summary
