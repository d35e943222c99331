"""Training throughput: samples/s of the data pipeline alone and of the whole training step.

Both are measured in steady state: after a warm-up, in windows of a fixed length; the median of the
windows is reported. The data pipeline is `BatchSampler` (slabs read on the device, synthetic
lesions, encoding by the engine's encoder, crops, augmentation); the training step adds forward,
loss, backward and the AdamW update, exactly as `livertumorseg train` runs them (bf16 autocast and
channels-last where the hardware computes bf16). Results go to
`benchmarks/results/training_throughput_<device>_<batch>x<crop>.json` and a Markdown table on stdout.
Run it with nothing else running.

    python benchmarks/training_throughput.py [--device cpu|cuda] [--batch-size 8 --crop-size 192]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from LiverTumorSegLib.atomic import atomic_write_json  # noqa: E402
from LiverTumorSegLib.inference import resolve_device, training_precision  # noqa: E402
from LiverTumorSegLib.inference.devices import describe_cpu  # noqa: E402
from LiverTumorSegLib.model.network import build_network  # noqa: E402
from LiverTumorSegLib.reporting.tables import markdown_table  # noqa: E402
from LiverTumorSegLib.resources import TRAINING_CONFIG  # noqa: E402
from LiverTumorSegLib.training.augment import AugmentSpec  # noqa: E402
from LiverTumorSegLib.training.batches import BatchSampler, SamplingSpec  # noqa: E402
from LiverTumorSegLib.training.config import TrainingConfig, parse_architecture  # noqa: E402
from LiverTumorSegLib.training.dataset import cache_case, find_cases  # noqa: E402
from LiverTumorSegLib.training.trainer import (  # noqa: E402
    TrainingStep,
    starting_learning_rate,
    uses_channels_last,
)


# Targets (samples/s) by device type, batch and crop: data pipeline alone, whole training step.
TARGETS = {("cpu", 8, 192): (30.0, 7.0), ("cuda", 32, 256): (3000.0, 1000.0)}


def target_record(measured: float, target: float | None) -> dict:
    """The target, whether it is met, and by how much it is exceeded or missed (in %)."""
    if target is None:
        return {"target_samples_per_second": None}
    return {"target_samples_per_second": target, "target_met": measured >= target,
            "versus_target_percent": round(100.0 * (measured / target - 1.0), 1)}


def windows(work: Callable[[], torch.Tensor | None], batch_size: int, device: torch.device,
            warmup_seconds: float, window_seconds: float, count: int) -> list[float]:
    """Samples/s of `work` (one batch per call) in `count` windows after a warm-up."""
    def wait() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    started = time.perf_counter()
    while time.perf_counter() - started < warmup_seconds:
        work()
    wait()
    rates = []
    for _ in range(count):
        began, batches = time.perf_counter(), 0
        while time.perf_counter() - began < window_seconds:
            work()
            batches += 1
        wait()
        rates.append(batches * batch_size / (time.perf_counter() - began))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cases", nargs="+", help="default: every training case of the folder")
    parser.add_argument("--arch", help="architecture (default: the shipped config's)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--crop-size", type=int)
    parser.add_argument("--warmup-seconds", type=float, default=10.0)
    parser.add_argument("--window-seconds", type=float, default=20.0)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()

    device = resolve_device(args.device)
    config = TrainingConfig.load(TRAINING_CONFIG, batch_size=args.batch_size,
                                 crop_size=args.crop_size,
                                 architecture=parse_architecture(args.arch) if args.arch else None)
    found = find_cases(args.data) if args.cases else find_cases(args.data, exclude=config.excluded_cases)
    cases = [c for c in found if not args.cases or c.name in args.cases]
    with tempfile.TemporaryDirectory() as cache:
        cached = [cache_case(c, Path(cache)) for c in cases]
        sampler = BatchSampler(cached, config.input, SamplingSpec(
            crop_size=config.crop_size, sampling=tuple(config.sampling.items()),
            synthetic_tumor_rate=config.synthetic_tumor_rate), device, seed=0, augment=AugmentSpec())
        timing = dict(batch_size=config.batch_size, device=device, warmup_seconds=args.warmup_seconds,
                      window_seconds=args.window_seconds, count=args.windows)
        pipeline = windows(lambda: sampler(config.batch_size), **timing)

        precision = training_precision(device)
        network = build_network(config.architecture, config.input.in_channels).to(device)
        if uses_channels_last(device, precision):
            network = network.to(memory_format=torch.channels_last)
        optimizer = torch.optim.AdamW(network.parameters(), lr=starting_learning_rate(config))
        step = TrainingStep(network.train(), optimizer, config, device,
                            torch.tensor(config.class_weights, device=device), precision)
        training = windows(lambda: step(*sampler(config.batch_size)), **timing)

    targets = TARGETS.get((device.type, config.batch_size, config.crop_size), (None, None))
    name = (torch.cuda.get_device_name(device) if device.type == "cuda" else
            f"CPU, {torch.get_num_threads()} threads ({describe_cpu()})")
    report = {
        "device": name, "torch": torch.__version__, "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"), "cases": [c.name for c in cases],
        "architecture": f"{config.architecture.name}:{config.architecture.encoder_name}",
        "batch_size": config.batch_size, "crop_size": config.crop_size, "precision": precision,
        "synthetic_tumor_rate": config.synthetic_tumor_rate, "augmentation": True,
        "warmup_seconds": args.warmup_seconds, "window_seconds": args.window_seconds,
        "data_pipeline": {"windows_samples_per_second": [round(r, 1) for r in pipeline],
                          "median_samples_per_second": round(statistics.median(pipeline), 1),
                          **target_record(statistics.median(pipeline), targets[0])},
        "training_step": {"windows_samples_per_second": [round(r, 1) for r in training],
                          "median_samples_per_second": round(statistics.median(training), 1),
                          "median_steps_per_second": round(statistics.median(training)
                                                           / config.batch_size, 2),
                          **target_record(statistics.median(training), targets[1])},
    }
    name_parts = f"{args.device}_{config.batch_size}x{config.crop_size}"
    atomic_write_json(args.output / f"training_throughput_{name_parts}.json", report)
    print(markdown_table(
        ["device", "cases", "batch x crop", "data pipeline samples/s", "training step samples/s (steps/s)"],
        [[name, len(cases), f"{config.batch_size} x {config.crop_size}",
          f"{report['data_pipeline']['median_samples_per_second']}",
          f"{report['training_step']['median_samples_per_second']} "
          f"({report['training_step']['median_steps_per_second']})"]]))

if __name__ == "__main__":
    main()
