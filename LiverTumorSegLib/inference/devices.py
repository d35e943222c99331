"""Where and in which precision the network runs: device choice (CUDA when usable, else the CPU)
and precision choice (bf16 where the hardware computes it natively, else float32), for inference
and for training alike."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from ..errors import LiverTumorSegError
from . import DEVICE_CHOICES, PRECISION_CHOICES


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


def describe_cpu() -> str:
    """The CPU for benchmark records and model cards, e.g. 'AMD EPYC, 2 cores, AVX512-BF16' or
    'Intel(R) Xeon(R) Platinum 8480+, 2 cores, AMX, AVX512-BF16': its model name, the cores this
    process sees and the bf16 units it has (speeds differ several-fold between those)."""
    name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        name = names[0] if names else name
    units = [label for label, check in (("AMX", "_is_amx_tile_supported"),
                                        ("AVX512-BF16", "_is_avx512_bf16_supported"))
             if getattr(torch.cpu, check, lambda: False)()]
    return ", ".join([name, f"{os.cpu_count()} cores", *units])


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


def training_precision(device: torch.device) -> str:
    """The precision a training step runs in: bf16 autocast (with channels-last) wherever inference
    would pick bf16 (GPUs that have it, CPUs that compute it natively), else float32. Never fp16:
    training in fp16 would need loss scaling, which the trainer does not do."""
    return "bf16" if resolve_precision(device) == "bf16" else "fp32"


def describe_device(device: torch.device, precision: str | None = None, runtime: str = "PyTorch") -> str:
    """A human-readable device, precision and runtime, e.g. 'cuda (NVIDIA H100 80GB HBM3, bf16,
    PyTorch)' or 'cpu (2 threads, bf16, OpenVINO 2026.4.1)'."""
    precision = precision or resolve_precision(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)}, {precision}, {runtime})"
    return f"cpu ({torch.get_num_threads()} threads, {precision}, {runtime})"
