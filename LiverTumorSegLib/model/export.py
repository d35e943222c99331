"""Write a trained network as fp16 safetensors plus its model card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .card import Architecture, InferenceSpec, InputSpec, ModelCard, PostprocessingSpec
from .network import build_network, save_network_weights


def export_model(network: torch.nn.Module, directory: Path, name: str, architecture: Architecture,
                 input_spec: InputSpec, inference: InferenceSpec | None = None,
                 postprocessing: PostprocessingSpec | None = None,
                 training: dict[str, Any] | None = None,
                 evaluation: dict[str, Any] | None = None,
                 card_name: str = "model_card.json") -> ModelCard:
    """Save `<directory>/<name>.safetensors` and the card that verifies it; return the card."""
    directory = Path(directory)
    weights_file = f"{name}.safetensors"
    sha256 = save_network_weights(network, directory / weights_file)
    if training and training.get("chain"):  # its last run is the one that made these weights
        training = {**training, "chain": [*training["chain"][:-1],
                                          {**training["chain"][-1], "weights_sha256": sha256}]}
    card = ModelCard(name=name, architecture=architecture, input=input_spec,
                     weights_file=weights_file, weights_sha256=sha256,
                     inference=inference or InferenceSpec(),
                     postprocessing=postprocessing or PostprocessingSpec(),
                     training=training or {}, evaluation=evaluation or {},
                     path=directory / card_name)
    card.save(directory / card_name)
    return card


def export_untrained_model(directory: Path, architecture: Architecture, input_spec: InputSpec,
                           inference: InferenceSpec | None = None, liver_bias: float = 0.0,
                           background_bias: float = 0.0, seed: int = 0) -> ModelCard:
    """A randomly initialised network exported like a trained one, for tests and benchmarks of the
    machinery (its output is never a segmentation).

    `liver_bias` added to the liver logit makes it call (almost) everything liver, so the fine pass
    covers the whole body: the worst case for speed. `background_bias` makes it find nothing, so
    only the coarse pass runs."""
    torch.manual_seed(seed)
    network = build_network(architecture, input_spec.in_channels)
    with torch.no_grad():
        network.segmentation_head[0].bias[1] += liver_bias
        network.segmentation_head[0].bias[0] += background_bias
    return export_model(network, directory, f"untrained-{architecture.encoder_name}", architecture,
                        input_spec, inference=inference)
