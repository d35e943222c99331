"""The network in OpenVINO on the CPU: faster than PyTorch there (fused layers, bf16 kernels), and
once converted it loads without importing segmentation-models-pytorch.

The model card's verified weights are converted once to OpenVINO's format and cached under the
user's cache folder, keyed by the weights' SHA-256 and the OpenVINO version; a sidecar file records
the hashes of the converted files, which are checked at every load (a changed or broken cache entry
is converted again). Needs the optional `openvino` package.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from ..model.card import ModelCard
from ..model.network import file_sha256, load_network, verified_weights
from .devices import describe_device, resolve_precision

_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
_CONVERSION_SIZE = 64


class RuntimeUnavailable(RuntimeError):
    """The runtime cannot be used here (not installed, or it failed to load the model)."""


def cache_root() -> Path:
    """`LIVERTUMORSEG_CACHE`, else `$XDG_CACHE_HOME/livertumorseg`, else `~/.cache/livertumorseg`."""
    if os.environ.get("LIVERTUMORSEG_CACHE"):
        return Path(os.environ["LIVERTUMORSEG_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "livertumorseg"


def _openvino():
    try:
        import openvino
    except ImportError as exc:
        raise RuntimeUnavailable("OpenVINO is not installed (pip install openvino)") from exc
    return openvino


class OpenVinoPredictor:
    """Softmax probabilities for batches of encoded slices, computed by OpenVINO on the CPU."""

    def __init__(self, card: ModelCard, precision: str = "auto"):
        """Load (converting once, then from the cache) the network of a verified model card."""
        ov = _openvino()
        self.device = torch.device("cpu")
        self.precision = resolve_precision(self.device, precision)
        self.version = ov.__version__.split("-")[0]
        model = self._cached_model(ov, card)
        try:
            self.compiled = ov.Core().compile_model(model, "CPU", {
                "INFERENCE_PRECISION_HINT": _HINTS[self.precision],
                "INFERENCE_NUM_THREADS": torch.get_num_threads()})
        except RuntimeError as exc:
            raise RuntimeUnavailable(f"OpenVINO could not compile the model ({exc})") from exc

    def describe(self) -> str:
        return describe_device(self.device, self.precision, f"OpenVINO {self.version}")

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Probabilities (N, classes, H, W), float32, on the CPU."""
        logits = self.compiled(np.ascontiguousarray(images.float().numpy()))[0]
        return torch.softmax(torch.from_numpy(np.asarray(logits)), dim=1)

    def _cached_model(self, ov, card: ModelCard):
        """The converted network from the cache, converting (and caching) it when needed."""
        weights_sha256 = verified_weights(card)[1]
        entry = cache_root() / "openvino" / f"{weights_sha256[:24]}-ov{self.version}"
        if not self._valid_entry(entry, weights_sha256):
            model = self._convert(ov, card)
            if not self._store(ov, model, entry, weights_sha256):
                return model  # no writable cache: the same model, converted again next time
        return ov.Core().read_model(str(entry / "model.xml"))

    @staticmethod
    def _valid_entry(entry: Path, weights_sha256: str) -> bool:
        """Whether the cache entry holds the conversion of these weights, unchanged."""
        try:
            meta = json.loads((entry / "meta.json").read_text())
            return meta["weights_sha256"] == weights_sha256 and all(
                file_sha256(entry / name) == digest for name, digest in meta["files"].items())
        except (OSError, ValueError, KeyError, TypeError):
            return False

    @staticmethod
    def _convert(ov, card: ModelCard):
        network = load_network(card)
        example = torch.zeros(1, card.input.in_channels, _CONVERSION_SIZE, _CONVERSION_SIZE)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # the converter's tracing talks about itself
            model = ov.convert_model(network, example_input=example)
        model.reshape([-1, card.input.in_channels, -1, -1])
        return model

    @staticmethod
    def _store(ov, model, entry: Path, weights_sha256: str) -> bool:
        """Write the converted model into the cache atomically (float32, so folded weights stay as
        converted); False when the cache cannot be written."""
        staging = None
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
            ov.save_model(model, str(staging / "model.xml"), compress_to_fp16=False)
            files = {name: file_sha256(staging / name) for name in ("model.xml", "model.bin")}
            (staging / "meta.json").write_text(json.dumps({"weights_sha256": weights_sha256,
                                                           "files": files}))
            shutil.rmtree(entry, ignore_errors=True)
            os.replace(staging, entry)
            return True
        except OSError:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            return False
