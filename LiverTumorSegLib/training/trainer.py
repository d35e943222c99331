"""The training loop: AdamW with a one-cycle / cosine / plateau schedule, bf16 autocast and
channels_last on GPU, DistributedDataParallel under `torchrun`, validation every epoch through the
engine's own inference and post-processing (per-case 3D Dice at native resolution), best checkpoint
by mean liver/tumor Dice, CSV log and PNG plots, fp16 safetensors + model card export."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..inference import resolve_device
from ..metrics import summarize
from ..model.card import Architecture, InferenceSpec, InputSpec, ModelCard, PostprocessingSpec
from ..model.export import export_model
from ..model.network import build_network
from ..pipeline import Segmenter
from ..reporting.figures import save_dice_bars, save_training_curves
from ..resources import REPOSITORY_ROOT
from ..volume.io import atomic_write_json
from ..workflow import segment_and_score
from .augment import AugmentSpec, augment_batch
from .dataset import Case, cache_case, find_cases, split_cases
from .losses import segmentation_loss
from .sampler import SamplingSpec, SliceSampler

ARCHITECTURES = {
    "unet-resnet50": Architecture("Unet", "resnet50"),
    "deeplabv3plus-resnet101": Architecture("DeepLabV3Plus", "resnet101"),
    "unet-vgg16": Architecture("Unet", "vgg16"),
}


def parse_architecture(name: str) -> Architecture:
    """A preset (unet-resnet50, deeplabv3plus-resnet101, unet-vgg16) or `Class:encoder`."""
    if name in ARCHITECTURES:
        return ARCHITECTURES[name]
    if ":" in name:
        family, encoder = name.split(":", 1)
        return Architecture(family, encoder)
    raise ValueError(f"Unknown architecture '{name}'; use one of {', '.join(ARCHITECTURES)} or "
                     "Class:encoder (a segmentation-models-pytorch class and encoder).")


@dataclass
class TrainingConfig:
    """Everything one training run needs; `Resources/Model/training_config.json` holds the shipped one."""

    name: str
    architecture: Architecture
    input: InputSpec
    inference: InferenceSpec = field(default_factory=InferenceSpec)
    postprocessing: PostprocessingSpec = field(default_factory=PostprocessingSpec)
    seed: int = 17
    epochs: int = 30
    steps_per_epoch: int = 200
    batch_size: int = 32
    crop_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "onecycle"
    loss: str = "ce_dice"
    class_weights: tuple[float, float, float] = (1.0, 1.0, 3.0)
    sampling: dict[str, float] = field(default_factory=lambda: {"tumor": 0.3, "liver": 0.5})
    synthetic_tumor_rate: float = 0.5
    augment: bool = True
    num_workers: int = 4
    excluded_cases: tuple[str, ...] = ("lits117_crop", "tiny64")

    @classmethod
    def load(cls, path: Path, **overrides: Any) -> TrainingConfig:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        values = dict(data.get("training", {}))
        values.update(name=data["name"], architecture=Architecture.from_dict(data["architecture"]),
                      input=InputSpec.from_dict(data["input"]),
                      inference=InferenceSpec.from_dict(data.get("inference", {})),
                      postprocessing=PostprocessingSpec.from_dict(data.get("postprocessing", {})))
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["class_weights"] = tuple(values["class_weights"])
        values["excluded_cases"] = tuple(values["excluded_cases"])
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def hyperparameters(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("name", "architecture", "input", "inference", "postprocessing"):
            data.pop(key)
        return data


@dataclass
class Distributed:
    """Rank information; world size 1 when not launched by torchrun."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()


def setup_distributed(device: str) -> Distributed:
    """Join the process group torchrun set up (NCCL on GPUs, gloo on CPUs), or run alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    resolved = resolve_device(device)
    if world_size == 1:
        return Distributed(device=resolved)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if resolved.type == "cuda":
        torch.cuda.set_device(local_rank)
        resolved = torch.device("cuda", local_rank)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if resolved.type == "cuda" else "gloo")
    return Distributed(torch.distributed.get_rank(), world_size, resolved)


def _hardware(device: torch.device, world_size: int) -> str:
    if device.type == "cuda":
        return f"{world_size} x {torch.cuda.get_device_name(device)}"
    return f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPOSITORY_ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _scheduler(optimizer: torch.optim.Optimizer, config: TrainingConfig, total_steps: int):
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.learning_rate,
                                                   total_steps=total_steps, pct_start=0.1)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=2)
    raise ValueError(f"Unknown schedule '{config.schedule}'; use onecycle, cosine or plateau.")


def validate(card: ModelCard, cases: list[Case], device: torch.device, work_dir: Path) -> dict[str, dict]:
    """Per-case metrics of a model through the engine (segment the CT, score against its label)."""
    return segment_and_score(Segmenter(card, device=device.type),
                             [(c.name, c.ct, c.label) for c in cases], work_dir)


def _training_record(config: TrainingConfig, train_cases: list[Case], held_out: list[Case],
                     split: str, epochs_run: int, hardware: str, seconds: float) -> dict[str, Any]:
    return {
        "cases": [c.name for c in train_cases],
        "licences": {c.name: c.terms for c in train_cases},
        "validation_cases": [c.name for c in held_out],
        "split": split,
        "epochs": epochs_run,
        "steps": epochs_run * config.steps_per_epoch,
        "hardware": hardware,
        "training_seconds": round(seconds, 1),
        "git_commit": _git_commit(),
        "hyperparameters": config.hyperparameters(),
        "sampling": "per sample: a case uniformly, then a tumor slice with p=sampling.tumor, a liver "
                    "slice with p=sampling.liver, else any slice; crops centred near the liver 80% "
                    "of the time",
        "augmentation": "rotation, scaling, translation, elastic grid, contrast, brightness, gamma, "
                        "noise, blur; no left-right flips (the liver's side is anatomy)",
    }


@dataclass
class _TrainingStep:
    """One optimisation step: augment on the device, forward in bf16 on GPU, loss, update."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    config: TrainingConfig
    device: torch.device
    class_weights: torch.Tensor
    generator: torch.Generator
    augment: AugmentSpec = field(default_factory=AugmentSpec)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        images, labels = images.to(self.device, non_blocking=True), labels.to(self.device)
        if self.config.augment:
            images, labels = augment_batch(images, labels, self.augment, self.generator)
        autocast = torch.bfloat16 if self.device.type == "cuda" else None
        if self.device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=autocast, enabled=autocast is not None):
            logits = self.model(images)
        loss = segmentation_loss(self.config.loss, logits, labels, self.class_weights)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.config.schedule != "plateau":
            self.scheduler.step()
        return float(loss.detach())


def _single_threaded_worker(_: int) -> None:
    """Loader workers run in parallel already; one torch thread each avoids oversubscription."""
    torch.set_num_threads(1)


def _record_validation(row: dict[str, Any], metrics: dict[str, dict]) -> float:
    """Add mean and per-case Dice to a log row; return the score that picks the best epoch."""
    summary = summarize(metrics)
    score = 0.5 * (summary["liver"]["mean_dice"] + summary["tumor"]["mean_dice"])
    row.update(val_liver_dice=summary["liver"]["mean_dice"],
               val_tumor_dice=summary["tumor"]["mean_dice"], val_score=score)
    row.update({f"{name}_{s}_dice": m[s]["dice"] for name, m in metrics.items()
                for s in ("liver", "tumor")})
    return score


def train(config: TrainingConfig, data_dir: Path, output_dir: Path, device: str = "auto",
          folds: int = 5, fold: int = 0, validation: tuple[str, ...] = (),
          log: Callable[[str], None] = print) -> ModelCard | None:
    """Train, validate every epoch on the held-out cases, export the best model (rank 0 returns its
    card; other ranks return None). `folds=1` trains on every case and keeps the last epoch."""
    started = time.perf_counter()
    dist = setup_distributed(device)
    torch.manual_seed(config.seed + dist.rank)
    output_dir = Path(output_dir)
    cases = find_cases(data_dir, exclude=config.excluded_cases)
    if folds == 1 and not validation:
        train_cases, held_out, split = cases, [], "all cases (no held-out validation)"
    else:
        train_cases, held_out = split_cases(cases, config.seed, folds, fold, validation)
        split = (f"explicit validation list {list(validation)}" if validation else
                 f"fold {fold} of {folds} (patient-level, seed {config.seed})")
    if dist.main:
        log(f"training on {[c.name for c in train_cases]}, validating on {[c.name for c in held_out]}")
        cached = [cache_case(c, output_dir / "cache") for c in train_cases]
    dist.barrier()
    if not dist.main:
        cached = [cache_case(c, output_dir / "cache") for c in train_cases]

    sampling = SamplingSpec(crop_size=config.crop_size, sampling=tuple(config.sampling.items()),
                            synthetic_tumor_rate=config.synthetic_tumor_rate)
    stream = SliceSampler(cached, config.input, sampling, seed=config.seed * 1000 + dist.rank)
    loader = torch.utils.data.DataLoader(stream, batch_size=config.batch_size,
                                         num_workers=config.num_workers,
                                         worker_init_fn=_single_threaded_worker,
                                         pin_memory=dist.device.type == "cuda",
                                         persistent_workers=config.num_workers > 0)
    batches = iter(loader)

    network = build_network(config.architecture, config.input.in_channels).to(dist.device)
    if dist.device.type == "cuda":
        network = network.to(memory_format=torch.channels_last)
    model = (torch.nn.parallel.DistributedDataParallel(
        network, device_ids=[dist.device.index] if dist.device.type == "cuda" else None)
        if dist.world_size > 1 else network)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    scheduler = _scheduler(optimizer, config, config.epochs * config.steps_per_epoch)
    step = _TrainingStep(model, optimizer, scheduler, config, dist.device,
                         torch.tensor(config.class_weights, device=dist.device),
                         torch.Generator().manual_seed(config.seed + dist.rank))
    history: list[dict[str, Any]] = []
    best: tuple[float, int, dict] | None = None
    for epoch in range(1, config.epochs + 1):
        model.train()
        losses = [step(*next(batches)) for _ in range(config.steps_per_epoch)]
        row: dict[str, Any] = {"epoch": epoch, "step": epoch * config.steps_per_epoch,
                               "train_loss": float(np.mean(losses)),
                               "lr": optimizer.param_groups[0]["lr"],
                               "seconds": round(time.perf_counter() - started, 1)}
        if dist.main:
            candidate = export_model(network, output_dir / "candidate", config.name,
                                     config.architecture, config.input, config.inference,
                                     config.postprocessing)
            metrics = (validate(candidate, held_out, dist.device, output_dir / "validation")
                       if held_out else {})
            score = _record_validation(row, metrics) if metrics else float(epoch)
            if best is None or score > best[0]:
                best = (score, epoch, metrics)
                shutil.rmtree(output_dir / "best", ignore_errors=True)
                shutil.copytree(output_dir / "candidate", output_dir / "best")
            history.append(row)
            _write_log(output_dir, history)
            log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in row.items() if not k.startswith(tuple(c.name for c in held_out))))
        dist.barrier()
        if config.schedule == "plateau":
            # Every rank steps with rank 0's validation score, so learning rates stay equal.
            score_of_rank0 = [row.get("val_score", -row["train_loss"])]
            if dist.world_size > 1:
                torch.distributed.broadcast_object_list(score_of_rank0, src=0)
            scheduler.step(score_of_rank0[0])
    dist.barrier()
    if not dist.main:
        return None
    return _export_best(config, output_dir, best, train_cases, held_out, split,
                        _hardware(dist.device, dist.world_size), time.perf_counter() - started,
                        history)


def _write_log(output_dir: Path, history: list[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(k for row in history for k in row))
    with open(output_dir / "training_log.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(history)
    save_training_curves(output_dir / "training_curves.png", history)


def _export_best(config: TrainingConfig, output_dir: Path, best: tuple[float, int, dict],
                 train_cases: list[Case], held_out: list[Case], split: str, hardware: str,
                 seconds: float, history: list[dict[str, Any]]) -> ModelCard:
    score, epoch, metrics = best
    network = build_network(config.architecture, config.input.in_channels)
    from safetensors.torch import load_file

    state = load_file(str(output_dir / "best" / f"{config.name}.safetensors"))
    network.load_state_dict({k: v.float() for k, v in state.items()})
    evaluation: dict[str, Any] = {"best_epoch": epoch}
    if metrics:
        evaluation["held_out_per_case"] = {
            name: {s: {k: m[s][k] for k in ("dice", "hd95_mm", "assd_mm")} for s in ("liver", "tumor")}
            | {"lesions": m["lesions"]} for name, m in metrics.items()}
        evaluation["held_out_summary"] = summarize(metrics)
        save_dice_bars(output_dir / "validation_dice.png", metrics)
        atomic_write_json(output_dir / "validation_metrics.json", metrics)
    training = _training_record(config, train_cases, held_out, split, len(history), hardware, seconds)
    card = export_model(network, output_dir, config.name, config.architecture, config.input,
                        config.inference, config.postprocessing, training, evaluation)
    for scratch in ("candidate", "best"):
        shutil.rmtree(output_dir / scratch, ignore_errors=True)
    return card
