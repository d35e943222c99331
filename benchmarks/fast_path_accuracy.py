"""Does the fast inference path change the segmentation? Fast path against the reference path on
every case of `../shared/data` that has a reference label.

Reference: the plain network in float32 on the CPU, no batch-norm folding (the engine as it was
before the speed work; its labels were checked identical to commit fd8f86a's on all five cases).
Fast: what `Segmenter` does by default on the given device (bf16 where the CPU or GPU has it,
folded batch norms, channels-last). Criteria (issue 8): liver-mask Dice between the two paths at
least 0.995; liver and tumor Dice against the truth changed by at most 0.002; on tumour-free cases
the same number of predicted lesions. Writes `benchmarks/results/fast_path_accuracy_<device>.json`.

    python benchmarks/fast_path_accuracy.py [--device cpu|cuda] [--model CARD.json]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from LiverTumorSegLib.atomic import atomic_write_json  # noqa: E402
from LiverTumorSegLib.inputs import read_volume  # noqa: E402
from LiverTumorSegLib.labels import TUMOR  # noqa: E402
from LiverTumorSegLib.metrics import evaluate_case, overlap_metrics  # noqa: E402
from LiverTumorSegLib.pipeline import Segmenter  # noqa: E402
from LiverTumorSegLib.reporting.tables import markdown_table  # noqa: E402
from LiverTumorSegLib.resources import SAMPLE_CT  # noqa: E402
from LiverTumorSegLib.training.dataset import find_cases  # noqa: E402

CRITERIA = {"min_liver_mask_dice": 0.995, "max_liver_dice_change": 0.002,
            "max_tumor_dice_change": 0.002}


def compare(reference: np.ndarray, fast: np.ndarray, truth: np.ndarray, spacing) -> dict:
    ref_scores, fast_scores = evaluate_case(reference, truth, spacing), evaluate_case(fast, truth, spacing)
    row = {"liver_mask_dice_fast_vs_reference": overlap_metrics(fast > 0, reference > 0, spacing)["dice"],
           "liver_dice_reference": ref_scores["liver"]["dice"], "liver_dice_fast": fast_scores["liver"]["dice"],
           "tumor_dice_reference": ref_scores["tumor"]["dice"], "tumor_dice_fast": fast_scores["tumor"]["dice"],
           "lesions_reference": ref_scores["lesions"]["lesions_predicted"],
           "lesions_fast": fast_scores["lesions"]["lesions_predicted"],
           "has_tumor": bool((truth == TUMOR).any())}
    row["passes"] = bool(
        row["liver_mask_dice_fast_vs_reference"] >= CRITERIA["min_liver_mask_dice"]
        and abs(row["liver_dice_fast"] - row["liver_dice_reference"]) <= CRITERIA["max_liver_dice_change"]
        and (not row["has_tumor"] or abs(row["tumor_dice_fast"] - row["tumor_dice_reference"])
             <= CRITERIA["max_tumor_dice_change"])
        and (row["has_tumor"] or row["lesions_fast"] == row["lesions_reference"]))
    return row


def labelled_cases(data: Path) -> list:
    """Every case with a reference label; the demo sample from `Resources/Sample`, whose header
    carries the orientation corrected from the anatomy (the raw copy in the data folder does not)."""
    sample = find_cases(SAMPLE_CT.parent)
    names = {c.name for c in sample}
    return [c for c in find_cases(data) + sample
            if c.label_is_truth and (c.name not in names or c in sample)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--model", type=Path, help="model card (default: the bundled model)")
    parser.add_argument("--runtime", default="auto", choices=("auto", "torch", "openvino"),
                        help="the fast path's runtime (default: what the engine picks)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    reference = Segmenter.reference(args.model)
    fast = Segmenter(args.model, device=args.device, runtime=args.runtime)
    rows = {}
    for case in labelled_cases(args.data):
        volume, truth = read_volume(case.ct), np.asarray(read_volume(case.label).array)
        rows[case.name] = compare(reference.segment(volume).labels, fast.segment(volume).labels,
                                  truth, volume.spacing)
        print(case.name, rows[case.name], file=sys.stderr)
    report = {"fast_path": fast.predictor.describe(), "reference_path": reference.predictor.describe()
              + ", batch norms not folded", "model": fast.card.name, "criteria": CRITERIA,
              "date": time.strftime("%Y-%m-%d"), "all_pass": all(r["passes"] for r in rows.values()),
              "cases": rows}
    suffix = "" if args.runtime == "auto" else f"_{args.runtime}"
    atomic_write_json(args.output / f"fast_path_accuracy_{args.device}{suffix}.json", report)
    print(f"fast path: {report['fast_path']}; reference: {report['reference_path']}")
    print(markdown_table(
        ["case", "liver-mask Dice fast vs reference", "liver Dice ref / fast", "tumor Dice ref / fast",
         "lesions ref / fast", "passes"],
        [[name, f"{r['liver_mask_dice_fast_vs_reference']:.4f}",
          f"{r['liver_dice_reference']:.4f} / {r['liver_dice_fast']:.4f}",
          f"{r['tumor_dice_reference']:.4f} / {r['tumor_dice_fast']:.4f}",
          f"{r['lesions_reference']} / {r['lesions_fast']}", "yes" if r["passes"] else "NO"]
         for name, r in rows.items()]))

if __name__ == "__main__":
    main()
