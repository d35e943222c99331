"""Segment one CT volume end to end: check, orient, coarse pass, fine pass, post-process, measure.

Speed on the CPU comes from running the network at full resolution only where the liver is: a
coarse pass on every n-th axial slice finds the liver, then the fine pass covers only the liver's slab
and in-plane bounding box (plus a margin). Slices are encoded per batch, so memory stays bounded.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Union

import numpy as np
import torch
from scipy import ndimage

from .errors import CancelledError
from .inference import SlicePredictor, describe_device, resolve_device
from .model.card import ModelCard, PostprocessingSpec, resolve_model_card
from .model.network import load_network
from .labels import LIVER, largest_component
from .postprocessing import postprocess
from .preprocessing import SliceEncoder, from_model_grid
from .statistics import compute_statistics
from .volume.checks import as_scalar_3d, check_affine, check_ct_intensities, check_slice_count
from .volume.io import Volume
from .volume.orientation import Reorientation, plan_reorientation

ProgressCallback = Callable[[float, str], None]
_PACKAGE_DIR = str(Path(__file__).resolve().parent)


class _EventLike(Protocol):
    def is_set(self) -> bool: ...


CancelCheck = Union[Callable[[], bool], _EventLike, None]


@dataclass
class SegmentationResult:
    """Labels on the input's own grid (0 background, 1 liver, 2 tumor) and their statistics."""

    labels: np.ndarray
    affine: np.ndarray
    statistics: dict
    warnings: list[str] = field(default_factory=list)


def _cancel_requested(cancel: CancelCheck) -> bool:
    if cancel is None:
        return False
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    return bool(cancel())


class Segmenter:
    """A loaded model ready to segment volumes; load once, segment many."""

    def __init__(self, card: ModelCard | str | Path | None = None, device: str = "auto"):
        started = time.perf_counter()
        self.card = resolve_model_card(card)
        self.device = resolve_device(device)
        self.predictor = SlicePredictor(load_network(self.card), self.device)
        self.load_seconds = time.perf_counter() - started

    def segment(self, volume: Volume, force: bool = False,
                postprocessing: PostprocessingSpec | None = None,
                progress: ProgressCallback | None = None,
                cancel: CancelCheck = None) -> SegmentationResult:
        """Segment `volume`; raise `InputVolumeError` for bad input, `CancelledError` on cancel."""
        started = time.perf_counter()
        report = progress or (lambda fraction, message: None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            array = as_scalar_3d(volume.array)
            check_affine(volume.affine)
            check_ct_intensities(array, force=force)
            orientation = plan_reorientation(array.shape, volume.affine)
            canonical = orientation.to_canonical(array)
            check_slice_count(canonical.shape[2], self.card.input.context_slices)
            labels, confidence = self._predict(canonical, orientation, report, cancel)
            report(0.92, "Cleaning up the segmentation")
            spacing = orientation.canonical_spacing
            labels = postprocess(labels, spacing, postprocessing or self.card.postprocessing)
            report(0.96, "Measuring liver and lesions")
            statistics = compute_statistics(labels, orientation.canonical_affine, canonical, confidence)
        # Keep the engine's own warnings (obliquity, no liver, forced input, GPU fallback).
        messages = [str(w.message) for w in caught if str(w.filename).startswith(_PACKAGE_DIR)]
        for message in messages:
            warnings.warn(message, stacklevel=2)
        statistics.update(device=describe_device(self.predictor.device),
                          seconds=round(time.perf_counter() - started, 3),
                          model=self.card.name, warnings=messages)
        report(1.0, "Done")
        return SegmentationResult(orientation.from_canonical(labels), volume.affine, statistics,
                                  messages)

    def _predict(self, canonical: np.ndarray, orientation: Reorientation,
                 report: ProgressCallback, cancel: CancelCheck) -> tuple[np.ndarray, np.ndarray]:
        """Raw labels and confidence (uint8, canonical grid) from the coarse and fine passes."""
        spec = self.card.inference
        spacing = orientation.canonical_spacing
        encoder = SliceEncoder(canonical, spacing, self.card.input)
        labels = np.zeros(canonical.shape, dtype=np.uint8)
        confidence = np.zeros(canonical.shape, dtype=np.uint8)
        n_slices = canonical.shape[2]
        region: tuple[slice, slice] | None = None
        slab = range(n_slices)
        if spec.coarse_slice_step > 1 and n_slices >= 3 * spec.coarse_slice_step:
            coarse = sorted(set(range(0, n_slices, spec.coarse_slice_step)) | {n_slices - 1})
            self._run_slices(encoder, coarse, None, labels, confidence, report, cancel, 0.0, 0.3,
                             "Finding the liver")
            found = self._liver_region(labels, coarse, spacing)
            if found is None:
                report(0.9, "No liver found")
                warnings.warn("No liver was found in this volume; the segmentation is empty.",
                              stacklevel=2)
                return np.zeros_like(labels), confidence
            region, slab = found
            labels[:] = 0
            confidence[:] = 0
        self._run_slices(encoder, list(slab), region, labels, confidence, report, cancel, 0.3, 0.9,
                         "Segmenting liver and tumors")
        return labels, confidence

    def _run_slices(self, encoder: SliceEncoder, slice_indices: list[int],
                    region: tuple[slice, slice] | None, labels: np.ndarray, confidence: np.ndarray,
                    report: ProgressCallback, cancel: CancelCheck, start: float, stop: float,
                    message: str) -> None:
        grid = encoder.grid(region)
        x, y = region or (slice(None), slice(None))
        batch_size = self.card.inference.batch_size
        for first in range(0, len(slice_indices), batch_size):
            if _cancel_requested(cancel):
                raise CancelledError("Cancelled by the user; nothing was written.")
            batch = slice_indices[first: first + batch_size]
            probabilities = from_model_grid(self.predictor.predict(encoder.encode(batch, region)), grid)
            best, chosen = torch.max(probabilities, dim=1)
            for row, k in enumerate(batch):
                labels[x, y, k] = chosen[row].numpy()
                confidence[x, y, k] = (best[row] * 255.0).round().to(torch.uint8).numpy()
            done = (first + len(batch)) / len(slice_indices)
            report(start + (stop - start) * done, f"{message} ({first + len(batch)}/{len(slice_indices)} slices)")
        if _cancel_requested(cancel):
            raise CancelledError("Cancelled by the user; nothing was written.")

    def _liver_region(self, labels: np.ndarray, sampled: list[int],
                      spacing: tuple[float, float, float]) -> tuple[tuple[slice, slice], range] | None:
        """Bounding box (with margin) of the largest liver component seen by the coarse pass."""
        spec = self.card.inference
        stack = labels[:, :, sampled] >= LIVER
        liver = largest_component(stack)
        step_mm = spec.coarse_slice_step * spacing[2]
        if np.count_nonzero(liver) * spacing[0] * spacing[1] * step_mm / 1000.0 < spec.coarse_min_liver_ml:
            return None
        box = ndimage.find_objects(liver.view(np.uint8))[0]
        low, high = [b.start for b in box], [b.stop - 1 for b in box]
        shape = labels.shape
        margin = [int(np.ceil(spec.roi_margin_mm / s)) for s in spacing]
        x = slice(max(0, low[0] - margin[0]), min(shape[0], high[0] + margin[0] + 1))
        y = slice(max(0, low[1] - margin[1]), min(shape[1], high[1] + margin[1] + 1))
        z_low = max(0, sampled[low[2]] - spec.coarse_slice_step - margin[2])
        z_high = min(shape[2], sampled[high[2]] + spec.coarse_slice_step + margin[2] + 1)
        return (x, y), range(z_low, z_high)

