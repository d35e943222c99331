"""The training configuration: the model sections of a card plus the training hyperparameters.

`Resources/Model/training_config.json` holds the shipped recipe; its sections are parsed by the same
code as a model card's (`model.card.model_sections`), so training and inference read one format.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model.card import Architecture, InferenceSpec, InputSpec, PostprocessingSpec, model_sections

# Never trained on: the embedded demo sample (it must stay held out) and the unit-test volume.
EXCLUDED_CASES = ("lits117_crop", "tiny64")

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
    """Everything one training run needs."""

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
    lesion_shapes: str | None = None  # folder of label maps whose tumours shape synthetic lesions
    real_shape_rate: float = 0.5  # share of synthetic lesions shaped like a real one (with a folder)
    border_negative_weight: float = 1.0  # loss weight of non-tumour pixels near the liver's border
    border_band_mm: float = 10.0  # how near: within this distance of the liver's border
    augment: bool = True
    excluded_cases: tuple[str, ...] = EXCLUDED_CASES

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any) -> TrainingConfig:
        """From a training config or model card dictionary; `overrides` that are not None win."""
        values = {**data.get("training", {}), **model_sections(data)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["class_weights"] = tuple(values.get("class_weights", cls.class_weights))
        values["excluded_cases"] = tuple(values.get("excluded_cases", EXCLUDED_CASES))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"Unknown training settings {sorted(unknown)}; the known ones are "
                             f"{sorted(known)}.")
        return cls(**values)

    @classmethod
    def load(cls, path: Path, **overrides: Any) -> TrainingConfig:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")), **overrides)

    def to_dict(self) -> dict[str, Any]:
        """The same layout as the config file (model sections at the top, the rest in `training`)."""
        data = dataclasses.asdict(self)
        sections = {k: data.pop(k) for k in ("name", "architecture", "input", "inference",
                                             "postprocessing")}
        return {**sections, "training": data}

    def hyperparameters(self) -> dict[str, Any]:
        return self.to_dict()["training"]
