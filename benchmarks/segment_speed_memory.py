"""Speed and memory of segmentation, against the targets of the speed issue.

Cases:
- "CPU case": ircadb_17 (512x512x119).
- "GPU case": ircadb_07 (512x512x151) continued to 200 slices by appending its last 49 slices in
  reverse order (built here, written as .nii.gz).
- "long cases": the same construction carried on to 600 and 1,200 slices.

Measured, each the median of `--runs` runs after one warm-up run (warm disk cache):
- the whole `livertumorseg segment` process (start, imports, read .nii.gz, load the model, segment,
  write outputs) in a fresh process: wall seconds, peak RSS (GiB) and, on CUDA, peak GPU memory;
- model load in-process: building the predictor from the card (read, verify the hash, load into the
  runtime), without imports or CUDA start-up;
- the engine in memory: array and affine in, labels and statistics out (what Slicer's logic runs);
- on the CPU, when `slicer-core` is installed: the Slicer logic from a volume node to segments and a
  statistics table.

Results go to `benchmarks/results/segment_<device>[_probabilities][_tta].json` and a Markdown table
on stdout.

    python benchmarks/segment_speed_memory.py [--device cpu|cuda] [--cases cpu gpu long600 long1200]
        [--probabilities] [--tta]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))
GIB = 2 ** 30

CLI_CHILD = """
import json, os, sys, time
started = time.perf_counter()
from LiverTumorSegLib.cli import main
status = main(sys.argv[1:])
import torch
gpu = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_initialized() else None
print(json.dumps({"status": status, "seconds_in_python": time.perf_counter() - started, "gpu_peak_gib": gpu}))
sys.stdout.flush()
os._exit(status)  # as the console script `livertumorseg` exits
"""

ENGINE_CHILD = """
import json, statistics, sys, time, warnings
warnings.simplefilter("ignore")
import torch
from LiverTumorSegLib.pipeline import Segmenter
from LiverTumorSegLib.inputs import read_volume
from LiverTumorSegLib.inference.test_time import DEFAULT_SHIFTS
card, ct, device, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
card = None if card == "bundled" else card
shifts = DEFAULT_SHIFTS if sys.argv[5:] == ["--tta"] else ()
Segmenter(card, device=device)  # warm: conversion cache, CUDA start-up, kernels
loads = []
for _ in range(runs):
    loads.append(Segmenter(card, device=device).load_seconds)
segmenter = Segmenter(card, device=device, tta_shifts=shifts)
volume = read_volume(ct)
segmenter.segment(volume)
seconds = []
for _ in range(runs):
    if segmenter.device.type == "cuda":
        torch.cuda.synchronize()
    began = time.perf_counter()
    result = segmenter.segment(volume)
    if segmenter.device.type == "cuda":
        torch.cuda.synchronize()
    seconds.append(time.perf_counter() - began)
print(json.dumps({"model_load_seconds": statistics.median(loads),
                  "engine_in_memory_seconds": statistics.median(seconds),
                  "runtime": segmenter.predictor.describe(),
                  "tumor_count": result.statistics["tumor_count"]}))
"""

SLICER_CHILD = """
import json, statistics, sys, time, warnings
warnings.simplefilter("ignore")
import slicer
from LiverTumorSegLib.mrml.logic import MrmlSegmentationLogic
from LiverTumorSegLib.mrml.selftest import load_volume_node
card, ct, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
scene = slicer.vtkMRMLScene()
logic = MrmlSegmentationLogic(scene, None if card == "bundled" else card)
node = load_volume_node(scene, ct)
logic.process(node, device="cpu")
seconds = []
for _ in range(runs):
    began = time.perf_counter()
    logic.process(node, device="cpu")
    seconds.append(time.perf_counter() - began)
print(json.dumps({"slicer_logic_seconds": statistics.median(seconds)}))
"""


def build_case(source: Path, slices: int, path: Path, pad_in_plane: int = 0) -> Path:
    """The source CT continued to `slices` slices by mirroring its end back and forth; with
    `pad_in_plane`, a cropped CT (the packed data of a GPU call) is first padded with air to that
    size in-plane."""
    import nibabel as nib
    import numpy as np

    image = nib.load(str(source))
    array = np.asanyarray(image.dataobj)
    if pad_in_plane:
        pad = [(0, max(0, pad_in_plane - n)) for n in array.shape[:2]] + [(0, 0)]
        array = np.pad(array, pad, constant_values=-1000)
    forward = list(range(array.shape[2]))
    period = forward + forward[::-1]  # 151 slices, then the last ones in reverse order, and so on
    order = (period * (slices // len(period) + 1))[:slices]
    extended = np.ascontiguousarray(array[:, :, order])
    nib.save(nib.Nifti1Image(extended, image.affine, image.header), str(path))
    return path


def run_child(code: str, args: list[str], env: dict | None = None) -> tuple[dict, float, float]:
    """Run a child Python; return its last JSON line, its wall seconds and its peak RSS in GiB."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=REPO,
                               env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stdout, stderr = process.stdout.read(), process.stderr.read()
    if status != 0:
        raise RuntimeError(f"child failed:\n{stderr[-3000:]}")
    return json.loads(stdout.strip().splitlines()[-1]), wall, usage.ru_maxrss * 1024 / GIB


def measure(ct: Path, card: str, device: str, runs: int, slicer_logic: bool,
            outputs: list[str]) -> dict:
    voxels = 1
    import nibabel as nib

    for n in nib.load(str(ct)).shape:
        voxels *= n
    command = ["segment", str(ct), "--device", device, *outputs] + \
        ([] if card == "bundled" else ["--model", card])
    with tempfile.TemporaryDirectory() as out:
        process = [run_child(CLI_CHILD, command + ["-o", out]) for _ in range(runs + 1)][1:]  # first: warm-up
    engine, _, _ = run_child(ENGINE_CHILD, [card, str(ct), device, str(runs)]
                             + [o for o in outputs if o == "--tta"])
    row = {
        "shape": list(nib.load(str(ct)).shape),
        "process_seconds": statistics.median(p[1] for p in process),
        "process_seconds_runs": [round(p[1], 2) for p in process],
        "peak_rss_gib": statistics.median(p[2] for p in process),
        "rss_target_gib": 1.5 + 3 * voxels / GIB,
        "gpu_peak_gib": process[0][0]["gpu_peak_gib"],
        **engine,
    }
    if slicer_logic:
        logic, _, _ = run_child(SLICER_CHILD, [card, str(ct), str(runs)])
        row.update(logic)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--cases", nargs="+", default=["cpu", "gpu", "long600", "long1200"])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--model", help="model card (default: the bundled model)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pad-in-plane", type=int, default=0, metavar="N",
                        help="pad cropped source CTs with air to N x N in-plane (packed data)")
    parser.add_argument("--probabilities", action="store_true",
                        help="the segment process also writes the probability map "
                             "(results: segment_<device>_probabilities.json)")
    parser.add_argument("--tta", action="store_true",
                        help="segment with test-time augmentation (in-plane shifts; results: "
                             "segment_<device>_tta.json; no Slicer logic row)")
    parser.add_argument("--note", help="recorded in the JSON, e.g. what else ran on the machine")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    import importlib.util

    import torch

    from LiverTumorSegLib.atomic import atomic_write_json
    from LiverTumorSegLib.inference.devices import describe_cpu
    from LiverTumorSegLib.reporting.tables import markdown_table

    card = args.model or "bundled"
    options = [option for option, chosen in (("--probabilities", args.probabilities),
                                             ("--tta", args.tta)) if chosen]
    slicer_logic = (args.device == "cpu" and not args.tta
                    and importlib.util.find_spec("slicer") is not None)
    rows = {}
    with tempfile.TemporaryDirectory() as work:
        sources = {"cpu": (args.data / "ircadb_17_ct.nii.gz", None),
                   "gpu": (args.data / "ircadb_07_ct.nii.gz", 200),
                   "long600": (args.data / "ircadb_07_ct.nii.gz", 600),
                   "long1200": (args.data / "ircadb_07_ct.nii.gz", 1200)}
        for name in args.cases:
            source, slices = sources[name]
            ct = source if slices is None else build_case(source, slices, Path(work) / f"{name}_ct.nii.gz",
                                                          args.pad_in_plane)
            rows[name] = measure(ct, card, args.device, args.runs, slicer_logic and name == "cpu",
                                 options)
            print(name, rows[name], file=sys.stderr)
    device_name = (torch.cuda.get_device_name(0) if args.device == "cuda" else
                   f"CPU ({describe_cpu()})")
    report = {"device": device_name, "model": card, "runs": args.runs, "date": time.strftime("%Y-%m-%d"),
              "torch": torch.__version__, "python": platform.python_version(),
              "segment_outputs": "labels, statistics" + (", probability map" if args.probabilities
                                                         else ""),
              "segment_options": options,
              **({"note": args.note} if args.note else {}), "cases": rows}
    suffix = "".join("_" + option.removeprefix("--") for option in options)
    atomic_write_json(args.output / f"segment_{args.device}{suffix}.json", report)
    print(f"Device: {device_name}; runtime: {next(iter(rows.values()))['runtime'] if rows else '-'}")
    print(markdown_table(
        ["case", "shape", "whole process s", "engine in memory s", "model load s",
         "peak RSS GiB (target)", "peak GPU GiB"],
        [[name, "x".join(map(str, r["shape"])), f"{r['process_seconds']:.1f}",
          f"{r['engine_in_memory_seconds']:.2f}", f"{r['model_load_seconds']:.2f}",
          f"{r['peak_rss_gib']:.2f} ({r['rss_target_gib']:.2f})",
          "-" if r["gpu_peak_gib"] is None else f"{r['gpu_peak_gib']:.2f}"] for name, r in rows.items()]))
    if "slicer_logic_seconds" in rows.get("cpu", {}):
        print(f"Slicer logic (slicer-core volume node to segments and table), CPU case: "
              f"{rows['cpu']['slicer_logic_seconds']:.1f} s")


if __name__ == "__main__":
    main()
