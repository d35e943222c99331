"""Run the network on batches of encoded slices: device and precision choice, batch-norm folding,
channels-last layout, and out-of-memory recovery."""

from __future__ import annotations

import warnings

import torch

from .errors import LiverTumorSegError

DEVICE_CHOICES = ("auto", "cpu", "cuda")
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


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


def cpu_has_fast_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 is 2 to 3 times
    faster than float32 for this network; elsewhere it would be slower, so float32 is used."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolve_precision(device: torch.device, precision: str = "auto") -> str:
    """`auto`: bf16 on GPUs that have it (else fp16) and on CPUs with native bf16, else fp32."""
    if precision not in PRECISION_CHOICES:
        raise LiverTumorSegError(f"Unknown precision '{precision}'; choose one of "
                                 f"{', '.join(PRECISION_CHOICES)}.")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def describe_device(device: torch.device, precision: str | None = None) -> str:
    """A human-readable device and precision, e.g. 'cuda (NVIDIA H100 80GB HBM3, bf16)' or
    'cpu (2 threads, bf16)'."""
    precision = precision or resolve_precision(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)}, {precision})"
    return f"cpu ({torch.get_num_threads()} threads, {precision})"


def fold_batch_norms(network: torch.nn.Module) -> torch.nn.Module:
    """The network with every convolution + batch norm pair folded into one convolution (eval mode,
    same outputs up to float rounding, fewer passes over memory). A network that cannot be traced
    is returned unchanged."""
    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(network.eval(), inplace=True)
    except Exception:  # noqa: BLE001 - tracing is an optimisation; any failure keeps the plain network
        return network


class SlicePredictor:
    """Softmax probabilities for batches of encoded slices. The network runs in the chosen precision
    (weights converted, not autocast) in channels-last layout. When the GPU runs out of memory the
    batch is split, and when even one slice does not fit the run continues on the CPU (a warning)."""

    def __init__(self, network: torch.nn.Module, device: torch.device, precision: str = "auto",
                 fold_batchnorm: bool = True):
        self.device = device
        self.precision = resolve_precision(device, precision)
        network = network.eval()
        self.network = self._prepare(fold_batch_norms(network) if fold_batchnorm else network)

    def _prepare(self, network: torch.nn.Module) -> torch.nn.Module:
        return network.to(self.device, _DTYPES[self.precision]).to(memory_format=torch.channels_last)

    def describe(self) -> str:
        return describe_device(self.device, self.precision)

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
        images = images.to(self.device, _DTYPES[self.precision], non_blocking=True)
        logits = self.network(images.contiguous(memory_format=torch.channels_last))
        return torch.softmax(logits.float(), dim=1)

    def _fall_back_to_cpu(self) -> None:
        warnings.warn("The GPU ran out of memory even for a single slice; continuing on the CPU "
                      "(slower). Close other GPU programs or use device 'cpu'.", stacklevel=3)
        self.device = torch.device("cpu")
        self.precision = resolve_precision(self.device)
        self.network = self._prepare(self.network.float())
