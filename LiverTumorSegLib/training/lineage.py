"""Where a training run starts from, and the runs its weights descend from.

`--init-weights CARD.json` starts a run from a trained model (a group fine-tuning the bundled model
on its own cases, or the bundled model continued on a CPU). The card's network must be the run's:
its architecture and input spec must equal the config's, else the run stops before anything is
trained, naming each difference. The new model's card records its parent (name and weights'
SHA-256) and the chain of runs that led to it, oldest first, the new run last.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import LiverTumorSegError
from ..model.card import ModelCard, load_model_card
from ..model.network import load_network
from .config import TrainingConfig


@dataclass
class Lineage:
    """The parent a run started from (None: random initialisation) and the runs before it."""

    parent: dict[str, str] | None = None
    ancestors: list[dict[str, Any]] = field(default_factory=list)

    def describe_start(self) -> str:
        if self.parent is None:
            return "from random initialisation"
        return (f"started from {self.parent['name']} (weights {self.parent['weights_sha256'][:12]}…, "
                "optimizer fresh)")


def card_differences(card: ModelCard, config: TrainingConfig) -> list[str]:
    """Each field of the architecture and input spec in which the card and the config differ."""
    differences = []
    for section in ("architecture", "input"):
        ours, theirs = getattr(card, section), getattr(config, section)
        for item in dataclasses.fields(ours):
            in_card, in_config = getattr(ours, item.name), getattr(theirs, item.name)
            if in_card != in_config:
                differences.append(f"{section}.{item.name} is {_show(in_card)} in the card and "
                                   f"{_show(in_config)} in the run's config")
    return differences


def _show(value: Any) -> str:
    if isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
        return "[" + ", ".join(str(dataclasses.asdict(v)) for v in value) + "]"
    return repr(value)


def initial_weights(card_path: Path, config: TrainingConfig) -> tuple[torch.nn.Module, Lineage]:
    """The network of a trained model's card, float32 in train mode, checked against the config,
    and the lineage the new run inherits from it."""
    card = load_model_card(card_path)
    differences = card_differences(card, config)
    if differences:
        raise LiverTumorSegError(
            f"--init-weights {card_path}: the card's network is not the one this run trains: "
            + "; ".join(differences) + ". Train with a config whose architecture and input equal the "
            "card's (the bundled model's is Resources/Model/training_config.json), or leave out "
            "--init-weights to start from random weights.")
    network = load_network(card).float().train()
    parent = {"name": card.name, "weights_sha256": card.weights_sha256, "card": str(card_path)}
    return network, Lineage(parent, card.training.get("chain") or [_run_of(card)])


def _run_of(card: ModelCard) -> dict[str, Any]:
    """One chain entry for a card that records no chain (made before cards recorded one)."""
    training = card.training
    return {"run": training.get("status") or training.get("split") or "training run",
            **{key: training[key] for key in ("command", "git_commit", "hardware", "steps")
               if key in training},
            "weights_sha256": card.weights_sha256}
