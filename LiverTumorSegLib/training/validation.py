"""Validation during training: the held-out cases segmented by the engine itself, in memory.

The network is rounded to fp16 exactly as the export will store it, wrapped in the engine's
`Segmenter` (same encoding, coarse/fine passes and post-processing as a user gets), and each case is
scored in 3D at its native resolution. The held-out volumes are read once; nothing is written.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from ..inference import TorchPredictor
from ..metrics import evaluate_case, summarize
from ..model.card import ModelCard
from ..pipeline import Segmenter
from ..volume.checks import as_scalar_3d
from ..volume.io import read_volume_file
from ..volume.space import Volume
from .config import TrainingConfig
from .dataset import Case


@dataclass
class HeldOutCase:
    """A held-out CT and its reference labels, in memory."""

    name: str
    volume: Volume
    truth: np.ndarray


def load_held_out(cases: list[Case]) -> list[HeldOutCase]:
    """Read each held-out case once."""
    return [HeldOutCase(c.name, read_volume_file(c.ct),
                        np.asarray(as_scalar_3d(read_volume_file(c.label).array)))
            for c in cases]


def as_exported(network: torch.nn.Module) -> torch.nn.Module:
    """A copy of the network with its weights rounded to fp16 and back, as export stores them."""
    exported = copy.deepcopy(network).float().eval()
    with torch.no_grad():
        for tensor in exported.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half())
    return exported


def validate(network: torch.nn.Module, config: TrainingConfig, cases: list[HeldOutCase],
             device: torch.device) -> dict[str, dict]:
    """Per-case metrics of the network (as exported) through the engine."""
    card = ModelCard(name=config.name, architecture=config.architecture, input=config.input,
                     weights_file="", weights_sha256="", inference=config.inference,
                     postprocessing=config.postprocessing)
    segmenter = Segmenter(card, predictor=TorchPredictor(as_exported(network), device))
    return {case.name: evaluate_case(segmenter.segment(case.volume).labels, case.truth,
                                     case.volume.spacing) for case in cases}


def validation_row(metrics: dict[str, dict]) -> dict[str, float]:
    """Mean and per-case Dice for a log row."""
    summary = summarize(metrics)
    row = {"val_liver_dice": summary["liver"]["mean_dice"],
           "val_tumor_dice": summary["tumor"]["mean_dice"]}
    row.update({f"{name}_{s}_dice": m[s]["dice"] for name, m in metrics.items()
                for s in ("liver", "tumor")})
    return row
