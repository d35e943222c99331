"""Wall time and peak memory of `livertumorseg segment` on the full-resolution CT cases.

Each case runs in a fresh process (model load included, as a user runs it); peak RSS comes from the
child's resource usage, peak GPU memory from torch inside the child. Results go to
`benchmarks/results/segment_<device>.json` and a Markdown table on stdout.

Without bundled weights the benchmark uses a randomly initialised network of the shipped architecture
and input spec (`Resources/Model/training_config.json`) whose liver logit is biased so that it calls
the whole body liver: the fine pass then covers every slice and the whole field of view, the worst
case for speed. The output of that network is not a segmentation and is not scored.

    python benchmarks/segment_speed_memory.py [--device cpu|cuda] [--cases ircadb_17 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CASES = ("ircadb_17", "ircadb_07", "chaos_ct3", "totalseg_example")
sys.path.insert(0, str(REPO))

CHILD = """
import json, sys, time, warnings
started = time.perf_counter()
import torch
from pathlib import Path
from LiverTumorSegLib.pipeline import Segmenter
from LiverTumorSegLib.workflow import segment_file
warnings.simplefilter("ignore")
card, ct, out, device = sys.argv[1:5]
segmenter = Segmenter(card, device=device)
result, _ = segment_file(segmenter, Path(ct), Path(out))
if segmenter.device.type == "cuda":
    torch.cuda.synchronize()
gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if segmenter.device.type == "cuda" else None
print(json.dumps({"total_seconds": time.perf_counter() - started,
                  "model_load_seconds": segmenter.load_seconds,
                  "segment_seconds": result.statistics["seconds"],
                  "device": result.statistics["device"], "gpu_peak_mib": gpu_peak}))
"""


def benchmark_model(directory: Path, card: Path | None) -> tuple[Path, str]:
    """The given or bundled model card, or a worst-case random network of the shipped architecture."""
    from LiverTumorSegLib.resources import BUNDLED_MODEL_CARD, TRAINING_CONFIG

    if card is not None:
        return card, f"trained weights ({card})"
    if BUNDLED_MODEL_CARD.is_file():
        return BUNDLED_MODEL_CARD, "bundled weights"
    import torch

    from LiverTumorSegLib.model.card import Architecture, InferenceSpec, InputSpec
    from LiverTumorSegLib.model.export import export_model
    from LiverTumorSegLib.model.network import build_network

    config = json.loads(TRAINING_CONFIG.read_text())
    architecture = Architecture.from_dict(config["architecture"])
    spec = InputSpec.from_dict(config["input"])
    torch.manual_seed(0)
    network = build_network(architecture, spec.in_channels)
    with torch.no_grad():
        network.segmentation_head[0].bias[1] += 50.0  # liver everywhere: fine pass on everything
    card = export_model(network, directory, "benchmark-random-resnet50", architecture, spec,
                        inference=InferenceSpec.from_dict(config["inference"]))
    return card.path, ("random ResNet50 U-Net of the shipped architecture, biased to call the whole "
                       "body liver (worst case: fine pass over every slice and the full field of view)")


def run_case(card: Path, ct: Path, device: str) -> dict:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", CHILD, str(card), str(ct), out, device],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   cwd=REPO)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        stdout, stderr = process.stdout.read(), process.stderr.read()
    if status != 0:
        raise RuntimeError(f"{ct.name} failed:\n{stderr}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update(wall_seconds=round(wall, 2), peak_rss_mib=round(usage.ru_maxrss / 1024, 1))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--cases", nargs="+", default=list(CASES))
    parser.add_argument("--data", type=Path, default=DATA, help="folder of <case>_ct.nii.gz files")
    parser.add_argument("--model", type=Path, help="model card (default: bundled, else worst case)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    import nibabel as nib
    import torch

    with tempfile.TemporaryDirectory() as model_dir:
        card, model_kind = benchmark_model(Path(model_dir), args.model)
        rows = {}
        for case in args.cases:
            ct = args.data / f"{case}_ct.nii.gz"
            if not ct.is_file():
                print(f"skipping {case}: {ct} not found", file=sys.stderr)
                continue
            rows[case] = {"shape": list(nib.load(str(ct)).shape), **run_case(card, ct, args.device)}
            print(case, rows[case], file=sys.stderr)
    report = {"model": model_kind, "data": str(args.data), "device_requested": args.device, "cpu_count": os.cpu_count(),
              "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
              "python": platform.python_version(), "machine": platform.machine(),
              "date": time.strftime("%Y-%m-%d"), "cases": rows}
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / f"segment_{args.device}.json").write_text(json.dumps(report, indent=2) + "\n")
    print("| case | shape | total s (incl. load) | model load s | segment s | peak RSS MiB | peak GPU MiB |")
    print("|---|---|---|---|---|---|---|")
    for case, r in rows.items():
        print(f"| {case} | {'x'.join(map(str, r['shape']))} | {r['wall_seconds']:.1f} | "
              f"{r['model_load_seconds']:.1f} | {r['segment_seconds']:.1f} | {r['peak_rss_mib']:.0f} | "
              f"{'-' if r['gpu_peak_mib'] is None else round(r['gpu_peak_mib'])} |")


if __name__ == "__main__":
    main()
