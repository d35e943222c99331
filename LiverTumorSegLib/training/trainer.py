"""The training loop: batches made on the device, AdamW with a one-cycle / cosine / plateau schedule,
bf16 autocast and channels_last wherever the hardware computes bf16 (GPUs, CPUs with AMX or
AVX512-BF16), DistributedDataParallel under `torchrun`, validation on the held-out cases every epoch
(in memory, through the engine), checkpoints every few minutes, an optional time limit that sets the
number of steps, an optional start from a trained model's weights, and export of the final epoch."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..atomic import atomic_write_json, atomic_write_text
from ..errors import LiverTumorSegError
from ..inference import resolve_device, training_precision
from ..inference.devices import describe_cpu
from ..metrics import summarize
from ..model.card import ModelCard
from ..model.export import export_model
from ..model.network import build_network
from ..reporting.figures import save_dice_bars, save_training_curves
from ..resources import REPOSITORY_ROOT
from .augment import AugmentSpec
from .batches import BatchSampler, SamplingSpec
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainingConfig
from .dataset import Case, cache_case, find_cases, split_cases
from .lesion_shapes import load_lesion_shapes
from .lineage import Lineage, initial_weights
from .losses import border_negative_weights, segmentation_loss
from .synthetic_tumors import LesionSpec
from .validation import HeldOutCase, load_held_out, validate, validation_row

PROBE_WARMUP_STEPS = 3
PROBE_SECONDS = 10.0
PROBE_SHARE = 0.1  # of the time limit, at most
EXPORT_RESERVE_SECONDS = 20.0


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

    def from_main(self, value: Any) -> Any:
        """Rank 0's value on every rank."""
        if self.world_size == 1:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]


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


@dataclass
class StepPlan:
    """How many steps the run makes and how they were chosen. The first `probe_steps` (time-limited
    runs only) run at the schedule's starting rate while throughput is measured; the schedule covers
    the rest."""

    total_steps: int
    epochs: int
    probe_steps: int = 0
    chosen_by: str = "config"

    @property
    def scheduled_steps(self) -> int:
        return self.total_steps - self.probe_steps

    def epoch_end(self, epoch: int) -> int:
        """The step that ends an epoch (the probe belongs to the first epoch)."""
        return self.probe_steps + round(epoch * self.scheduled_steps / self.epochs)

    def epoch_of(self, step: int) -> int | None:
        """The epoch that ends at `step`, if one does."""
        for epoch in range(1, self.epochs + 1):
            if self.epoch_end(epoch) == step:
                return epoch
        return None


def plan_by_time(limit_seconds: float, elapsed_seconds: float, seconds_per_step: float,
                 reserve_seconds: float, probe_steps: int, epochs: int) -> StepPlan:
    """The most steps that end, with validation and export, inside the time limit (at least one per
    epoch after the probe)."""
    available = limit_seconds - elapsed_seconds - reserve_seconds
    steps = max(epochs, int(available / seconds_per_step))
    return StepPlan(probe_steps + steps, epochs, probe_steps,
                    f"--time-limit {limit_seconds / 60:g} min: {1 / seconds_per_step:.2f} steps/s "
                    f"measured, {reserve_seconds:.0f} s kept for validation and export")


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainingConfig, total_steps: int):
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.learning_rate,
                                                   total_steps=max(1, total_steps), pct_start=0.1)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=2)
    raise ValueError(f"Unknown schedule '{config.schedule}'; use onecycle, cosine or plateau.")


def starting_learning_rate(config: TrainingConfig) -> float:
    """The rate the schedule starts from (one-cycle starts at max / 25, its default)."""
    return config.learning_rate / 25.0 if config.schedule == "onecycle" else config.learning_rate


def uses_channels_last(device: torch.device, precision: str) -> bool:
    """Channels-last layout: on GPUs, and on CPUs that train in bf16 (their fast kernels want it)."""
    return device.type == "cuda" or precision == "bf16"


@dataclass
class TrainingStep:
    """One optimisation step on a batch that is already on the device: augment was done by the
    sampler; forward under bf16 autocast where `precision` says so, loss in float32, update."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    config: TrainingConfig
    device: torch.device
    class_weights: torch.Tensor
    precision: str = "fp32"  # `inference.training_precision` decides it

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The step's loss, left on the device (reading it would wait for the GPU)."""
        bf16 = self.precision == "bf16"
        if uses_channels_last(self.device, self.precision):
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = self.model(images)
        pixel_weights = None
        if self.config.border_negative_weight != 1.0:
            band = round(self.config.border_band_mm / self.config.input.pixel_size_mm)
            pixel_weights = border_negative_weights(labels, band, self.config.border_negative_weight)
        loss = segmentation_loss(self.config.loss, logits, labels, self.class_weights, pixel_weights)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()


def _precision_note(step: TrainingStep) -> str:
    layout = ", channels_last" if uses_channels_last(step.device, step.precision) else ""
    return ("bf16 autocast" if step.precision == "bf16" else "float32") + layout


def _hardware(device: torch.device, world_size: int) -> str:
    if device.type == "cuda":
        return f"{world_size} x {torch.cuda.get_device_name(device)}"
    return f"{world_size} x CPU ({describe_cpu()})"


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPOSITORY_ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@dataclass
class _Split:
    train: list[Case]
    held_out: list[Case]
    description: str


def _split(config: TrainingConfig, data_dir: Path, folds: int, fold: int,
           validation: tuple[str, ...]) -> _Split:
    cases = find_cases(data_dir, exclude=config.excluded_cases)
    if folds == 1 and not validation:
        return _Split(cases, [], "all cases (no held-out validation)")
    train, held = split_cases(cases, config.seed, folds, fold, validation)
    return _Split(train, held, f"explicit validation list {list(validation)}" if validation else
                  f"fold {fold} of {folds} (patient-level, seed {config.seed})")


@dataclass
class _RunLog:
    """The run's text log (`train.log`, appended, so a killed run's folder tells what happened),
    its per-epoch rows (`training_log.csv` and the curves) and its timing."""

    output_dir: Path
    echo: Callable[[str], None]
    main: bool = True  # only rank 0 of a distributed run logs
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds_before: float = 0.0  # training time of earlier sessions of a resumed run
    started: float = field(default_factory=time.perf_counter)

    @property
    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def say(self, message: str) -> None:
        if not self.main:
            return
        self.echo(message)
        with open(self.output_dir / "train.log", "a", encoding="utf-8") as handle:
            handle.write(message + "\n")

    def add_row(self, row: dict[str, Any]) -> None:
        self.history.append(row)
        columns = list(dict.fromkeys(k for r in self.history for k in r))
        lines = [",".join(columns)] + [",".join("" if r.get(c) is None else str(r[c]) for c in columns)
                                       for r in self.history]
        atomic_write_text(self.output_dir / "training_log.csv", "\n".join(lines) + "\n")
        save_training_curves(self.output_dir / "training_curves.png", self.history)
        self.say(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in row.items() if k in _LOGGED))


_LOGGED = ("epoch", "step", "train_loss", "lr", "seconds", "val_liver_dice", "val_tumor_dice")


@dataclass
class _Run:
    """Everything a training run holds while it runs: data, network, optimizer, schedule, plan,
    position and log; and what it does each step, at each epoch's end and at a checkpoint."""

    config: TrainingConfig
    dist: Distributed
    split: _Split
    sampler: BatchSampler
    network: torch.nn.Module
    model: torch.nn.Module  # the network, wrapped for DistributedDataParallel when there are ranks
    optimizer: torch.optim.Optimizer
    step_fn: TrainingStep
    held_out: list[HeldOutCase]
    log: _RunLog
    lineage: Lineage
    plan: StepPlan | None = None
    scheduler: Any = None
    step: int = 0
    losses: list[torch.Tensor] = field(default_factory=list)
    metrics: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def start(cls, config: TrainingConfig, split: _Split, dist: Distributed, run_log: _RunLog,
              init_weights: Path | None = None) -> _Run:
        """Cache the training cases (rank 0 first), put them on the device and build the network
        (from a trained model's card when `init_weights` names one)."""
        if dist.main:
            cached = [cache_case(c, run_log.output_dir / "cache") for c in split.train]
        dist.barrier()
        if not dist.main:
            cached = [cache_case(c, run_log.output_dir / "cache") for c in split.train]
        torch.manual_seed(config.seed + dist.rank)
        shapes = load_lesion_shapes(config.lesion_shapes) if config.lesion_shapes else None
        if shapes is not None:
            run_log.say(f"real lesion shapes: {shapes.source}, for a share of "
                        f"{config.real_shape_rate:g} of the synthetic lesions")
        sampler = BatchSampler(cached, config.input, SamplingSpec(
            crop_size=config.crop_size, sampling=tuple(config.sampling.items()),
            synthetic_tumor_rate=config.synthetic_tumor_rate), dist.device,
            seed=config.seed * 1000 + dist.rank, augment=AugmentSpec() if config.augment else None,
            lesions=LesionSpec(real_shape_rate=config.real_shape_rate if shapes else 0.0),
            shapes=shapes)
        if init_weights is not None:
            network, lineage = initial_weights(init_weights, config)
        else:
            network, lineage = build_network(config.architecture, config.input.in_channels), Lineage()
        precision = training_precision(dist.device)
        network = network.to(dist.device)
        if uses_channels_last(dist.device, precision):
            network = network.to(memory_format=torch.channels_last)
        model = (torch.nn.parallel.DistributedDataParallel(
            network, device_ids=[dist.device.index] if dist.device.type == "cuda" else None)
            if dist.world_size > 1 else network)
        optimizer = torch.optim.AdamW(model.parameters(), lr=starting_learning_rate(config),
                                      weight_decay=config.weight_decay)
        step_fn = TrainingStep(model, optimizer, config, dist.device,
                               torch.tensor(config.class_weights, device=dist.device), precision)
        held_out = load_held_out(split.held_out) if dist.main else []
        run_log.say(f"network {lineage.describe_start()}; precision {precision}")
        return cls(config, dist, split, sampler, network, model, optimizer, step_fn, held_out, run_log,
                   lineage)

    def next_loss(self) -> torch.Tensor:
        self.model.train()
        return self.step_fn(*self.sampler(self.config.batch_size))

    def set_plan(self, plan: StepPlan) -> None:
        self.plan = plan
        self.scheduler = make_scheduler(self.optimizer, self.config, plan.scheduled_steps)
        self.log.say(f"plan: {plan.total_steps} steps in {plan.epochs} epochs ({plan.chosen_by})")

    def train_step(self) -> None:
        """One step; at an epoch's end, log it and validate."""
        self.losses.append(self.next_loss())
        self.step += 1
        if self.step > self.plan.probe_steps and self.config.schedule != "plateau":
            self.scheduler.step()
        epoch = self.plan.epoch_of(self.step)
        if epoch is not None:
            self.metrics = _end_epoch(self, epoch)
            self.losses = []

    def state(self) -> dict[str, Any]:
        """What a checkpoint holds (besides where the run came from)."""
        return {"config": self.config.to_dict(), "step": self.step, "plan": asdict(self.plan),
                "model": self.network.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "sampler": self.sampler.state_dict(),
                "epoch_losses": [float(value) for value in self.losses],
                "history": self.log.history, "seconds": self.log.seconds,
                "lineage": dataclasses.asdict(self.lineage)}

    def restore(self, state: dict[str, Any]) -> None:
        self.set_plan(StepPlan(**state["plan"]))  # the scheduler first: creating one resets the rate
        self.step, self.log.history = state["step"], state["history"]
        self.network.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.dist.world_size == 1:  # other ranks' data order is not kept (documented)
            self.sampler.load_state_dict(state["sampler"])
        self.losses = [torch.tensor(value, device=self.dist.device) for value in state["epoch_losses"]]
        self.lineage = Lineage(**state["lineage"])
        self.log.say(f"resumed at step {self.step} of {self.plan.total_steps}")


def train(config: TrainingConfig, data_dir: Path, output_dir: Path, device: str = "auto",
          folds: int = 5, fold: int = 0, validation: tuple[str, ...] = (),
          time_limit_minutes: float | None = None, checkpoint_minutes: float = 10.0,
          resume: bool = False, init_weights: Path | None = None, command: str | None = None,
          log: Callable[[str], None] = print) -> ModelCard | None:
    """Train and export the final epoch (rank 0 returns its card; other ranks return None).

    `folds=1` trains on every case. `time_limit_minutes` measures throughput first and plans the
    steps so that training, validation and export end inside the limit. `resume` continues the
    run in `output_dir` from its checkpoint with its own config, split and plan. `init_weights`
    (a model card) starts from that model's weights with a fresh optimizer; the card's architecture
    and input must equal the config's. `command` is recorded in the card."""
    if resume and init_weights is not None:
        raise LiverTumorSegError("--init-weights starts a new run from a trained model and --resume "
                                 "continues a run from its checkpoint; give one of them.")
    dist = setup_distributed(device)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    state = load_checkpoint(output_dir) if resume else None
    if state is not None:
        config = TrainingConfig.from_dict(state["config"])
        folds, fold, validation = state["folds"], state["fold"], tuple(state["validation"])
    run_log = _RunLog(output_dir, log, dist.main, seconds_before=state["seconds"] if state else 0.0)
    split = _split(config, Path(data_dir), folds, fold, validation)
    run_log.say(f"{'resuming' if state else 'training'} on {[c.name for c in split.train]}, "
                f"validating on {[c.name for c in split.held_out]}")
    run = _Run.start(config, split, dist, run_log, None if state else init_weights)
    if state is not None:
        run.restore(state)
    elif time_limit_minutes:
        run.set_plan(_probe_and_plan(run, time_limit_minutes * 60.0))
    else:
        run.set_plan(StepPlan(config.epochs * config.steps_per_epoch, config.epochs))
    origin = {"folds": folds, "fold": fold, "validation": list(validation),
              "command": command if state is None else state.get("command")}
    last_checkpoint = time.perf_counter()
    while run.step < run.plan.total_steps:
        run.train_step()
        if dist.main and time.perf_counter() - last_checkpoint >= checkpoint_minutes * 60.0:
            save_checkpoint(output_dir, {**origin, **run.state()})
            last_checkpoint = time.perf_counter()
            run_log.say(f"checkpoint saved at step {run.step} of {run.plan.total_steps}: continue "
                        f"with `livertumorseg train {data_dir} --resume {output_dir}`")
    dist.barrier()
    return _export_final(run, origin["command"]) if dist.main else None


def _probe_and_plan(run: _Run, limit_seconds: float) -> StepPlan:
    """Train a few steps at the schedule's starting rate while timing them, time one validation,
    and plan the steps that fit the limit (the probe's steps count as made)."""
    for _ in range(PROBE_WARMUP_STEPS):
        float(run.next_loss())
    probe_seconds = min(PROBE_SECONDS, PROBE_SHARE * limit_seconds)
    started, timed = time.perf_counter(), 0
    # Every rank makes as many probe steps as rank 0 decides (their steps are collective).
    while not run.dist.from_main(timed >= 3 and time.perf_counter() - started >= probe_seconds):
        run.next_loss()
        timed += 1
    float(run.next_loss())  # wait for the device, so the time covers every step
    timed += 1
    seconds_per_step = (time.perf_counter() - started) / timed
    validation_seconds = 0.0
    if run.dist.main and run.held_out:
        began = time.perf_counter()
        validate(run.network, run.config, run.held_out, run.dist.device)
        validation_seconds = time.perf_counter() - began
    run.step = PROBE_WARMUP_STEPS + timed
    reserve = EXPORT_RESERVE_SECONDS + validation_seconds * (run.config.epochs + 1)
    return run.dist.from_main(plan_by_time(limit_seconds, run.log.seconds, seconds_per_step,
                                           reserve, run.step, run.config.epochs))


def _end_epoch(run: _Run, epoch: int) -> dict[str, dict]:
    """Log the epoch, validate on the held-out cases (rank 0) and step a plateau schedule."""
    metrics: dict[str, dict] = {}
    row: dict[str, Any] = {"epoch": epoch, "step": run.step,
                           "train_loss": float(torch.stack(run.losses).mean()) if run.losses else None,
                           "lr": run.optimizer.param_groups[0]["lr"], "seconds": round(run.log.seconds, 1)}
    if run.dist.main:
        if run.held_out:
            metrics = validate(run.network, run.config, run.held_out, run.dist.device)
            row.update(validation_row(metrics))
        run.log.add_row(row)
    run.dist.barrier()
    if run.config.schedule == "plateau":
        # Every rank steps with rank 0's score, so learning rates stay equal.
        run.scheduler.step(run.dist.from_main(row.get("val_liver_dice", -(row["train_loss"] or 0.0))))
    return metrics


def _export_final(run: _Run, command: str | None) -> ModelCard:
    """Export the network as it is after the last step, with its training record (its parent and
    the chain of runs that led to it included) and the final epoch's held-out metrics (never the
    best epoch's: that would select on the test cases)."""
    config, split, plan, metrics, dist, run_log = (run.config, run.split, run.plan, run.metrics,
                                                   run.dist, run.log)
    output_dir = run_log.output_dir
    evaluation: dict[str, Any] = {"exported_epoch": plan.epochs, "selection": "final epoch"}
    if metrics:
        evaluation["held_out_per_case"] = {
            name: {s: {k: m[s][k] for k in ("dice", "hd95_mm", "assd_mm")} for s in ("liver", "tumor")}
            | {"lesions": m["lesions"]} for name, m in metrics.items()}
        evaluation["held_out_summary"] = summarize(metrics)
        save_dice_bars(output_dir / "validation_dice.png", metrics)
        atomic_write_json(output_dir / "validation_metrics.json", metrics)
    samples_per_second = round(plan.total_steps * config.batch_size * dist.world_size
                               / max(run_log.seconds, 1e-9), 1)
    this_run = {"run": run.lineage.describe_start(), "command": command, "git_commit": _git_commit(),
                "hardware": _hardware(dist.device, dist.world_size),
                "precision": _precision_note(run.step_fn), "steps": plan.total_steps,
                "batch_size": config.batch_size, "crop_size": config.crop_size,
                "schedule": f"{config.schedule}, learning rate {config.learning_rate:g}",
                "training_seconds": round(run_log.seconds, 1), "samples_per_second": samples_per_second}
    training = {
        **({"parent": run.lineage.parent} if run.lineage.parent else {}),
        "chain": [*run.lineage.ancestors, this_run],
        "cases": [c.name for c in split.train],
        "licences": {c.name: c.terms for c in split.train},
        "validation_cases": [c.name for c in split.held_out],
        "split": split.description,
        "epochs": plan.epochs,
        "steps": plan.total_steps,
        "steps_chosen_by": plan.chosen_by,
        "hardware": this_run["hardware"],
        "precision": this_run["precision"],
        "training_seconds": this_run["training_seconds"],
        "samples_per_second": samples_per_second,
        "git_commit": this_run["git_commit"],
        "hyperparameters": config.hyperparameters(),
        "sampling": "per sample: a case uniformly, then a tumor slice with p=sampling.tumor, a liver "
                    "slice with p=sampling.liver, else any slice; crops centred near the liver 80% "
                    "of the time",
        "augmentation": "rotation, scaling, translation, elastic grid, contrast, brightness, gamma, "
                        "noise, blur; no left-right flips (the liver's side is anatomy)",
    }
    card = export_model(run.network, output_dir, config.name, config.architecture, config.input,
                        config.inference, config.postprocessing, training, evaluation)
    run_log.say(f"exported the final epoch: {card.path}")
    return card
