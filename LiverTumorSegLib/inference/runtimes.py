"""Which runtime runs the network: OpenVINO on the CPU when installed, PyTorch otherwise."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import warnings
from typing import Protocol

import torch

from ..errors import LiverTumorSegError
from ..model.card import ModelCard
from . import RUNTIME_CHOICES
from .devices import describe_device
from .torch_runtime import TorchPredictor


class Predictor(Protocol):
    """What the pipeline needs from a runtime."""

    device: torch.device

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities (N, classes, H, W), float32, on `device`."""

    def describe(self) -> str:
        """Device, precision and runtime, for logs and statistics."""


def build_predictor(card: ModelCard, device: torch.device, precision: str = "auto",
                    runtime: str = "auto") -> Predictor:
    """The predictor for a verified model card: `auto` is OpenVINO on the CPU when installed
    (falling back to PyTorch with a warning that says why) and PyTorch on GPUs."""
    from ..model.network import load_network

    if runtime not in RUNTIME_CHOICES:
        raise LiverTumorSegError(f"Unknown runtime '{runtime}'; choose one of "
                                 f"{', '.join(RUNTIME_CHOICES)}.")
    if runtime == "openvino" and device.type != "cpu":
        raise LiverTumorSegError("The OpenVINO runtime runs on the CPU only; use device 'cpu' or "
                                 "runtime 'torch'.")
    if device.type == "cpu" and runtime != "torch":
        from .openvino_runtime import OpenVinoPredictor, RuntimeUnavailable

        try:
            return OpenVinoPredictor(card, precision)
        except RuntimeUnavailable as exc:
            if runtime == "openvino":
                raise LiverTumorSegError(f"{exc}.") from exc
            warnings.warn(f"{exc}; running the network with PyTorch instead (slower on the CPU).",
                          stacklevel=2)
    return TorchPredictor(load_network(card), device, precision)


def describe_runtime(device: torch.device, runtime: str = "auto") -> str:
    """Which runtime and precision `build_predictor` would use here, without loading anything."""
    openvino = (device.type == "cpu" and runtime != "torch"
                and importlib.util.find_spec("openvino") is not None)
    name = (f"OpenVINO {importlib.metadata.version('openvino')}" if openvino
            else f"PyTorch {torch.__version__}")
    note = "" if openvino or device.type != "cpu" else " (install openvino for faster CPU inference)"
    return describe_device(device, runtime=name) + note
