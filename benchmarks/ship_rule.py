"""The model issue's ship rule, checked from `false_lesions.py` records.

A recipe trained on every case replaces the bundled weights only if all of these hold:
1. its left-out pair predicts fewer false lesions in total than the current recipe's pair (the
   left-out case of a pair record is its first case);
2. on the demo sample (`lits117_crop`) its liver and tumor Dice are each at least the bundled
   weights', and one of them is higher;
3. it finds every reference lesion that the bundled weights find on ircadb_17 and on the demo.

    python benchmarks/ship_rule.py --baseline-pair base_ircadb_07.json base_chaos_ct3.json \\
        --lever-pair shapes_ircadb_07.json shapes_chaos_ct3.json \\
        --bundled ship_bundled.json --candidate ship_shapes.json -o ship_rule.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from LiverTumorSegLib.atomic import atomic_write_json  # noqa: E402

DEMO = "lits117_crop"
MUST_FIND_ON = (DEMO, "ircadb_17")


def scored_cases(path: Path) -> tuple[list[str], dict]:
    """The case order and the per-case scores of a record's single model."""
    record = json.loads(path.read_text())
    if len(record["models"]) != 1:
        raise SystemExit(f"{path} holds {len(record['models'])} models; give one record per model.")
    (model,) = record["models"].values()
    return record["cases"], model["cases"]


def left_out_false_lesions(paths: list[Path]) -> dict[str, int]:
    """False lesions on each pair run's left-out case (its record's first case)."""
    counts = {}
    for path in paths:
        order, cases = scored_cases(path)
        counts[order[0]] = cases[order[0]]["false_lesions"]
    return counts


def check(baseline_pair: list[Path], lever_pair: list[Path], bundled: Path,
          candidate: Path) -> dict:
    """Each part of the rule with its numbers and whether it holds."""
    baseline, lever = left_out_false_lesions(baseline_pair), left_out_false_lesions(lever_pair)
    _, old = scored_cases(bundled)
    _, new = scored_cases(candidate)
    dice = {key: {"bundled": old[DEMO][key], "candidate": new[DEMO][key]}
            for key in ("liver_dice", "tumor_dice")}
    missed = {case: sorted(set(old[case]["reference_lesions_found"]) -
                           set(new[case]["reference_lesions_found"])) for case in MUST_FIND_ON}
    rules = {
        "fewer_false_lesions_left_out": {
            "baseline": baseline, "lever": lever,
            "holds": sum(lever.values()) < sum(baseline.values())},
        "demo_dice_not_lower_one_higher": {
            **dice, "holds": all(d["candidate"] >= d["bundled"] for d in dice.values()) and
            any(d["candidate"] > d["bundled"] for d in dice.values())},
        "finds_every_lesion_the_bundled_weights_find": {
            "lesions_found": {case: {"bundled": len(old[case]["reference_lesions_found"]),
                                     "candidate": len(new[case]["reference_lesions_found"])}
                              for case in MUST_FIND_ON},
            "missed_by_candidate": missed, "holds": not any(missed.values())},
    }
    return {"rules": rules, "ship": all(rule["holds"] for rule in rules.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-pair", nargs=2, type=Path, required=True)
    parser.add_argument("--lever-pair", nargs=2, type=Path, required=True)
    parser.add_argument("--bundled", type=Path, required=True)
    parser.add_argument("--candidate", type=Path, required=True)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    report = check(args.baseline_pair, args.lever_pair, args.bundled, args.candidate)
    report["records"] = {key: [str(p) for p in value] if isinstance(value, list) else str(value)
                         for key, value in vars(args).items() if key != "output"}
    atomic_write_json(args.output, report)
    for name, rule in report["rules"].items():
        print(f"{'holds' if rule['holds'] else 'FAILS'}: {name}: "
              f"{json.dumps({k: v for k, v in rule.items() if k != 'holds'})}")
    print(f"ship: {'yes' if report['ship'] else 'no'}; wrote {args.output}")


if __name__ == "__main__":
    main()
