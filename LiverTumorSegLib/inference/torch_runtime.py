"""The network in PyTorch: converted precision (not autocast), channels-last layout, batch norms
folded into the convolutions, and out-of-memory recovery on GPUs. Runs on CUDA and on the CPU."""

from __future__ import annotations

import warnings

import torch

from .devices import describe_device, resolve_precision

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def fold_batch_norms(network: torch.nn.Module) -> torch.nn.Module:
    """The network with every convolution + batch norm pair folded into one convolution (eval mode,
    same outputs up to float rounding, fewer passes over memory). A network that cannot be traced
    is returned unchanged."""
    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(network.eval(), inplace=True)
    except Exception:  # noqa: BLE001 - tracing is an optimisation; any failure keeps the plain network
        return network


class TorchPredictor:
    """Softmax probabilities for batches of encoded slices, in channels-last layout. In float32 the
    batch norms are folded into the convolutions (the same result up to rounding, faster); in bf16
    or fp16 the network runs under autocast with its float32 weights unfolded (folded weights rounded
    to bf16 moved the liver mask by up to 5 % on the demo sample, see
    `benchmarks/fast_path_accuracy.py`). When the GPU runs out of memory the batch is split, and when
    even one slice does not fit the run continues on the CPU (a warning)."""

    def __init__(self, network: torch.nn.Module, device: torch.device, precision: str = "auto",
                 fold_batchnorm: bool = True):
        """`fold_batchnorm`: fold in float32 (False gives the plain reference network)."""
        self.device = device
        self.precision = resolve_precision(device, precision)
        network = network.float().eval()
        if fold_batchnorm and self.precision == "fp32":
            network = fold_batch_norms(network)
        self.network = network.to(self.device, memory_format=torch.channels_last)

    def describe(self) -> str:
        return describe_device(self.device, self.precision, f"PyTorch {torch.__version__}")

    @torch.inference_mode()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Probabilities (N, classes, H, W), float32, on `self.device`."""
        try:
            return self._forward(images)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            if len(images) > 1:
                half = len(images) // 2
                return torch.cat([self.predict(images[:half]), self.predict(images[half:])])
            self._fall_back_to_cpu()
            return self._forward(images)

    def _forward(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device, torch.float32, non_blocking=True)
        reduced = _DTYPES[self.precision] if self.precision != "fp32" else None
        with torch.autocast(self.device.type, dtype=reduced, enabled=reduced is not None):
            logits = self.network(images.contiguous(memory_format=torch.channels_last))
        return torch.softmax(logits.float(), dim=1)

    def _fall_back_to_cpu(self) -> None:
        warnings.warn("The GPU ran out of memory even for a single slice; continuing on the CPU "
                      "(slower). Close other GPU programs or use device 'cpu'.", stacklevel=3)
        self.device = torch.device("cpu")
        self.precision = resolve_precision(self.device)
        self.network = self.network.to(self.device)
