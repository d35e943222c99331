"""The model card: one JSON file that configures the network, its input and its post-processing.

Training writes it, inference reads it; preprocessing takes every parameter from `InputSpec`, so the
two can never drift apart. The card also records where the weights are and their SHA-256, the data the
model was trained on (with licences) and its evaluation figures.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text
from ..errors import ModelError
from ..labels import CLASS_NAMES
from ..resources import BUNDLED_MODEL_CARD


class _FromDict:
    """`from_dict` for flat dataclasses read from JSON (unknown keys raise TypeError)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        return cls(**data)


@dataclass(frozen=True)
class Window:
    """A CT display window in Hounsfield units."""

    name: str
    level: float
    width: float

    @property
    def low(self) -> float:
        return self.level - self.width / 2.0

    @property
    def high(self) -> float:
        return self.level + self.width / 2.0


@dataclass(frozen=True)
class InputSpec:
    """How a CT is turned into network input (shared by training and inference)."""

    windows: tuple[Window, ...] = (Window("liver", 60.0, 400.0),)
    histogram_channel: bool = False
    histogram_bins: int = 256
    context_slices: int = 1
    pixel_size_mm: float = 1.5
    size_multiple: int = 32

    @property
    def channels_per_slice(self) -> int:
        return len(self.windows) + int(self.histogram_channel)

    @property
    def in_channels(self) -> int:
        return self.channels_per_slice * (2 * self.context_slices + 1)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSpec:
        values = dict(data)
        values["windows"] = tuple(Window(**w) for w in values.get("windows", []))
        if not values["windows"] and not values.get("histogram_channel"):
            raise ModelError("The model card's input has no window and no histogram channel.")
        return cls(**values)


@dataclass(frozen=True)
class InferenceSpec(_FromDict):
    """How the volume is traversed: a coarse pass on every n-th slice finds the liver, then a fine pass
    runs only on the liver's slab and bounding box (plus a margin)."""

    batch_size: int = 8
    coarse_slice_step: int = 4
    roi_margin_mm: float = 25.0
    coarse_min_liver_ml: float = 20.0


@dataclass(frozen=True)
class PostprocessingSpec(_FromDict):
    """Spacing-aware clean-up of the raw label map; each step can be switched off."""

    keep_largest_liver: bool = True
    fill_liver_holes: bool = True
    tumor_inside_liver_only: bool = True
    min_lesion_volume_mm3: float = 100.0
    closing_radius_mm: float = 0.0

    def with_overrides(self, min_lesion_volume_mm3: float | None = None,
                       keep_largest_liver: bool | None = None,
                       closing_radius_mm: float | None = None) -> PostprocessingSpec:
        """This spec with a user's choices (command-line options, the Slicer panel); a choice left
        as None keeps this spec's value."""
        choices = {"min_lesion_volume_mm3": min_lesion_volume_mm3,
                   "keep_largest_liver": keep_largest_liver, "closing_radius_mm": closing_radius_mm}
        return replace(self, **{name: value for name, value in choices.items() if value is not None})


@dataclass(frozen=True)
class Architecture(_FromDict):
    """A segmentation-models-pytorch network: `smp.<name>(encoder_name, in_channels, classes)`."""

    name: str = "Unet"
    encoder_name: str = "resnet50"


def model_sections(data: dict[str, Any]) -> dict[str, Any]:
    """The name, architecture, input, inference and post-processing of a model card or a training
    config (both hold these sections); raises KeyError or TypeError when one is malformed."""
    return {"name": data["name"],
            "architecture": Architecture.from_dict(data["architecture"]),
            "input": InputSpec.from_dict(data["input"]),
            "inference": InferenceSpec.from_dict(data.get("inference", {})),
            "postprocessing": PostprocessingSpec.from_dict(data.get("postprocessing", {}))}


# The keys a model card must have, and what each holds (said when one is missing).
REQUIRED_CARD_KEYS = {
    "name": "the model's name, a string",
    "architecture": 'the network, e.g. {"name": "Unet", "encoder_name": "resnet50"}',
    "input": "how a CT becomes network input: its CT windows, histogram channel, neighbouring "
             "slices and pixel size",
    "weights_file": "the name of the .safetensors weights file beside the card",
    "weights_sha256": "the SHA-256 of that weights file, 64 hexadecimal digits",
}


@dataclass(frozen=True)
class ModelCard:
    """Everything needed to rebuild, run and judge one trained model."""

    name: str
    architecture: Architecture
    input: InputSpec
    weights_file: str
    weights_sha256: str
    classes: tuple[str, ...] = CLASS_NAMES
    inference: InferenceSpec = field(default_factory=InferenceSpec)
    postprocessing: PostprocessingSpec = field(default_factory=PostprocessingSpec)
    training: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    path: Path | None = field(default=None, compare=False)

    @property
    def weights_path(self) -> Path:
        base = self.path.parent if self.path is not None else Path.cwd()
        return base / self.weights_file

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("path")
        data["classes"] = list(self.classes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | None = None) -> ModelCard:
        where = f" {path}" if path else ""
        if not isinstance(data, dict):
            raise ModelError(f"The model card{where} is not a JSON object; restore the original file.")
        missing = [f"'{key}' ({meaning})" for key, meaning in REQUIRED_CARD_KEYS.items()
                   if key not in data]
        if missing:
            raise ModelError(f"The model card{where} lacks {' and '.join(missing)}; re-export it "
                             "with `livertumorseg train` or restore the original file.")
        try:
            card = cls(
                **model_sections(data),
                weights_file=data["weights_file"],
                weights_sha256=data["weights_sha256"],
                classes=tuple(data.get("classes", CLASS_NAMES)),
                training=data.get("training", {}),
                evaluation=data.get("evaluation", {}),
                path=path,
            )
        except (KeyError, TypeError) as exc:
            raise ModelError(f"The model card{where} is malformed ({exc}); re-export it with "
                             "`livertumorseg train` or restore the original file.") from exc
        if card.classes != CLASS_NAMES:
            raise ModelError(f"The model card's classes are {list(card.classes)}; this program "
                             f"needs {list(CLASS_NAMES)}.")
        return card

    def save(self, path: Path) -> None:
        """Write the card as JSON (atomically)."""
        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2) + "\n")


def load_model_card(path: str | Path) -> ModelCard:
    """Read a model card JSON file; raise `ModelError` with a clear message when it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"No model card at {path}.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"The model card {path} cannot be read as JSON ({exc}).") from exc
    return ModelCard.from_dict(data, path=path)


def resolve_model_card(card: ModelCard | str | Path | None = None) -> ModelCard:
    """The given card (object or path), or the bundled one; says plainly when none is installed."""
    if isinstance(card, ModelCard):
        return card
    if card is None:
        if not BUNDLED_MODEL_CARD.is_file():
            raise ModelError(f"No model is installed: {BUNDLED_MODEL_CARD} does not exist. The "
                             "bundled weights come from training (README, 'Training the model'); "
                             "pass a model card you trained (--model CARD.json).")
        card = BUNDLED_MODEL_CARD
    return load_model_card(card)
