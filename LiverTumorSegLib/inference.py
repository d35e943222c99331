"""Run the network on batches of slices: device choice, mixed precision, out-of-memory recovery."""

from __future__ import annotations

import warnings
import torch

from .errors import LiverTumorSegError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA when a GPU is usable, else the CPU; `cuda` without a GPU is an error."""
    name = (name or "auto").lower()
    if name not in DEVICE_CHOICES:
        raise LiverTumorSegError(f"Unknown device '{name}'; choose one of {', '.join(DEVICE_CHOICES)}.")
    if name == "cuda" and not torch.cuda.is_available():
        raise LiverTumorSegError("A CUDA GPU was requested but none is usable here (torch "
                                 f"{torch.__version__}, CUDA build {torch.version.cuda}); use "
                                 "device 'cpu' or 'auto'.")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    """A human-readable device name, e.g. 'cuda (NVIDIA H100 80GB HBM3)' or 'cpu (2 threads)'."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    precision = "bf16" if autocast_dtype(device) else "fp32"
    return f"cpu ({torch.get_num_threads()} threads, {precision})"


def cpu_has_fast_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 autocast is ~2.5x
    faster than float32 for this network; elsewhere it would be slower, so float32 is used."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed-precision type for inference on `device` (None: plain float32)."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else None


class SlicePredictor:
    """Softmax probabilities for a batch of encoded slices, splitting batches when the GPU runs out
    of memory and falling back to the CPU (with a warning) when even one slice does not fit."""

    def __init__(self, network: torch.nn.Module, device: torch.device):
        self.device = device
        self.network = network.to(device).eval()
        if device.type == "cuda":
            self.network = self.network.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Probabilities (N, classes, H, W) as float32 on the CPU."""
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
        images = images.to(self.device, non_blocking=True)
        if self.device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        dtype = autocast_dtype(self.device)
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            logits = self.network(images)
        return torch.softmax(logits.float(), dim=1).cpu()

    def _fall_back_to_cpu(self) -> None:
        warnings.warn("The GPU ran out of memory even for a single slice; continuing on the CPU "
                      "(slower). Close other GPU programs or use device 'cpu'.", stacklevel=3)
        self.device = torch.device("cpu")
        self.network = self.network.to(self.device, memory_format=torch.contiguous_format).float()
