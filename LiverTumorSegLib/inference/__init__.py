"""Running the network: where (device), in which precision, and with which runtime.

On a GPU the network runs in PyTorch (`torch_runtime`); on the CPU in OpenVINO when it is installed
(`openvino_runtime`, faster there), else in PyTorch (`runtimes.build_predictor` chooses). Both
predictors take encoded slices and return class probabilities, so the pipeline does not care which
one runs. The choices below import nothing; the rest loads torch on first use, so that the command
line can start reading its input while torch loads.
"""

from importlib import import_module

DEVICE_CHOICES = ("auto", "cpu", "cuda")
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16")
RUNTIME_CHOICES = ("auto", "torch", "openvino")

_EXPORTS = {
    "cpu_has_fast_bf16": "devices", "describe_device": "devices", "resolve_device": "devices",
    "resolve_precision": "devices", "training_precision": "devices", "TorchPredictor": "torch_runtime",
    "fold_batch_norms": "torch_runtime", "Predictor": "runtimes", "build_predictor": "runtimes",
    "describe_runtime": "runtimes",
}
__all__ = ["DEVICE_CHOICES", "PRECISION_CHOICES", "RUNTIME_CHOICES", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
