"""False lesions, case by case: what each model predicts on each case, lesion by lesion.

For the model issue's protocol (left-out runs, levers, ship rule): every predicted lesion with its
volume, longest axial diameter, mean and highest tumour probability, distance of its centre from the
liver's border, and whether it overlaps a reference lesion (found) or not (false); per case the
liver and tumour Dice, the lesion counts and which reference lesions were found (their numbers as
6-connected components of the reference label, so that models can be compared lesion by
lesion). Models are given as NAME=CARD (`bundled` for the bundled model); cases by name from
`--data` (and `lits117_crop` from `Resources/Sample`, its header as shipped). `--tta` segments
with test-time augmentation; `--min-lesion-confidence P` also says which predicted lesions a
lesion-level decision at P would drop.

    python benchmarks/false_lesions.py --models base07=runs/base-ircadb_07/model_card.json \
        --cases ircadb_07 lits117_crop -o benchmarks/results/part3/base07.json
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from LiverTumorSegLib.atomic import atomic_write_json  # noqa: E402
from LiverTumorSegLib.inference.test_time import DEFAULT_SHIFTS  # noqa: E402
from LiverTumorSegLib.inputs import read_volume  # noqa: E402
from LiverTumorSegLib.labels import TUMOR, label_components  # noqa: E402
from LiverTumorSegLib.metrics import evaluate_case, overlapping_lesions  # noqa: E402
from LiverTumorSegLib.pipeline import Segmenter  # noqa: E402
from LiverTumorSegLib.reporting.tables import markdown_table  # noqa: E402
from LiverTumorSegLib.resources import SAMPLE_CT, SAMPLE_LABEL  # noqa: E402


def case_files(name: str, data: Path) -> tuple[Path, Path]:
    if name == "lits117_crop":
        return SAMPLE_CT, SAMPLE_LABEL
    return data / f"{name}_ct.nii.gz", data / f"{name}_label.nii.gz"


def predicted_lesions(labels: np.ndarray, truth: np.ndarray, tumor_probability: np.ndarray,
                      affine: np.ndarray, statistics: dict) -> list[dict]:
    """Each predicted lesion of the statistics (matched to its component by centroid) with whether
    it is found or false, its highest tumour probability and how deep its centre lies inside the
    predicted liver (mm from the liver's border)."""
    spacing = tuple(float(s) for s in np.linalg.norm(affine[:3, :3], axis=0))
    components, count = label_components(labels == TUMOR)
    depth = ndimage.distance_transform_edt(labels > 0, sampling=spacing)
    measured = []
    for index, box in enumerate(ndimage.find_objects(components), start=1):
        lesion = components[box] == index
        centre = np.asarray(ndimage.center_of_mass(lesion)) + [s.start for s in box]
        measured.append((centre @ affine[:3, :3].T + affine[:3, 3], {
            "found": bool((truth[box][lesion] == TUMOR).any()),
            "max_tumor_probability": round(float(tumor_probability[box][lesion].max()) / 255.0, 3),
            "depth_in_liver_mm": round(float(depth[tuple(np.round(centre).astype(int))]), 1)}))
    assert count == len(statistics["lesions"])
    rows = []
    for lesion in statistics["lesions"]:
        _, row = min(measured, key=lambda m: np.linalg.norm(m[0] - lesion["centroid_ras_mm"]))
        rows.append({key: lesion[key] for key in ("volume_ml", "longest_axial_diameter_mm",
                                                  "mean_confidence", "centroid_ras_mm")} | row)
    return rows


def score(segmenter: Segmenter, name: str, data: Path, min_confidence: float | None) -> dict:
    ct_path, label_path = case_files(name, data)
    volume = read_volume(ct_path)
    truth = np.asarray(read_volume(label_path).array)
    result = segmenter.segment(volume, probabilities=True)
    metrics = evaluate_case(result.labels, truth, volume.spacing)
    lesions = predicted_lesions(result.labels, truth, result.probabilities.channel("tumor"),
                                volume.affine, result.statistics)
    found, _, _, _ = overlapping_lesions(result.labels == TUMOR, truth == TUMOR)
    row = {"liver_dice": round(metrics["liver"]["dice"], 4),
           "tumor_dice": round(metrics["tumor"]["dice"], 4),
           "lesions_true": metrics["lesions"]["lesions_true"],
           "lesions_found": metrics["lesions"]["lesions_found"],
           "reference_lesions_found": [int(number) for number in found],
           "lesions_predicted": len(lesions),
           "false_lesions": sum(not lesion["found"] for lesion in lesions),
           "lesions": lesions, "seconds": result.statistics["seconds"]}
    if min_confidence is not None:
        kept = [lesion for lesion in lesions if lesion["mean_confidence"] >= min_confidence]
        row["with_min_lesion_confidence"] = {
            "threshold": min_confidence, "lesions_predicted": len(kept),
            "false_lesions": sum(not lesion["found"] for lesion in kept),
            "true_predictions_dropped": sum(lesion["found"] for lesion in lesions) -
            sum(lesion["found"] for lesion in kept)}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True, metavar="NAME=CARD")
    parser.add_argument("--cases", nargs="+", required=True)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--tta", action="store_true")
    parser.add_argument("--min-lesion-confidence", type=float)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    report: dict = {"cases": args.cases, "tta": args.tta, "models": {}}
    for item in args.models:
        name, card = item.split("=", 1)
        segmenter = Segmenter(None if card == "bundled" else Path(card), device="cpu",
                              tta_shifts=DEFAULT_SHIFTS if args.tta else ())
        report["models"][name] = {"card": card, "weights_sha256": segmenter.card.weights_sha256,
                                  "cases": {case: score(segmenter, case, args.data,
                                                        args.min_lesion_confidence)
                                            for case in args.cases}}
    atomic_write_json(args.output, report)
    rows = []
    for name, model in report["models"].items():
        for case, row in model["cases"].items():
            false = [lesion for lesion in row["lesions"] if not lesion["found"]]
            rows.append([name, case, f"{row['liver_dice']:.3f}", f"{row['tumor_dice']:.3f}",
                         f"{row['lesions_found']}/{row['lesions_true']}", row["lesions_predicted"],
                         row["false_lesions"],
                         ", ".join(f"{lesion['volume_ml'] * 1000:.0f}" for lesion in false) or "-"])
    print(markdown_table(["model", "case", "liver Dice", "tumor Dice", "found", "predicted",
                          "false", "false lesions' volumes (mm³)"], rows))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
