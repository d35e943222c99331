"""Build the network a model card describes, and load or save its weights as verified safetensors.

Weights are never unpickled: they are read with `safetensors` only after their SHA-256 matches the card.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ..errors import ModelError
from ..labels import CLASS_NAMES
from .card import Architecture, ModelCard


def build_network(architecture: Architecture, in_channels: int) -> torch.nn.Module:
    """A randomly initialised segmentation-models-pytorch network (no pretrained download).

    Built inside `with torch.device("meta"):` it allocates nothing, which `load_network` uses to
    skip the random initialisation of weights that are about to be replaced."""
    import segmentation_models_pytorch as smp

    try:
        factory = getattr(smp, architecture.name)
    except AttributeError as exc:
        raise ModelError(f"Unknown architecture '{architecture.name}' in the model card; "
                         "use a segmentation-models-pytorch class name such as Unet.") from exc
    return factory(encoder_name=architecture.encoder_name, encoder_weights=None,
                   in_channels=in_channels, classes=len(CLASS_NAMES))


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified_weights(card: ModelCard) -> tuple[bytes, str]:
    """The bytes of the card's weights file and their SHA-256, after checking it is the card's."""
    weights = card.weights_path
    if not weights.is_file():
        raise ModelError(f"The weights file {weights} named by the model card is missing; "
                         "reinstall the extension or re-export the model.")
    try:
        data = weights.read_bytes()  # read once: the bytes that are hashed are the bytes loaded
    except OSError as exc:
        raise ModelError(f"The weights file {weights} named by the model card cannot be read "
                         f"({exc.strerror}); reinstall the extension or re-export the model.") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != card.weights_sha256:
        raise ModelError(f"The weights file {weights} does not match the model card (SHA-256 "
                         f"{actual[:12]}… instead of {card.weights_sha256[:12]}…): it is truncated "
                         "or was changed. Reinstall the extension or re-export the model.")
    return data, actual


def load_network(card: ModelCard) -> torch.nn.Module:
    """Build the card's network and load its verified weights (float32, eval mode, on the CPU)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    data, _ = verified_weights(card)
    with torch.device("meta"):
        network = build_network(card.architecture, card.input.in_channels)
    try:
        network.load_state_dict({k: v.float() for k, v in load(data).items()}, assign=True)
    except (SafetensorError, RuntimeError, OSError) as exc:
        raise ModelError(f"The weights in {card.weights_path} do not fit the architecture in the "
                         f"model card ({str(exc).splitlines()[0]}).") from exc
    return network.eval()


def save_network_weights(network: torch.nn.Module, path: Path) -> str:
    """Write the network's weights as fp16 safetensors; return the file's SHA-256."""
    from safetensors.torch import save_file

    from ..atomic import atomic_output

    state = {k: v.detach().to("cpu", torch.float16).contiguous()
             if v.is_floating_point() else v.detach().cpu().contiguous()
             for k, v in network.state_dict().items()}
    with atomic_output(Path(path)) as tmp:
        save_file(state, str(tmp))
    return file_sha256(Path(path))
