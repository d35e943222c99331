"""Segment one CT volume end to end: check, orient, coarse pass, fine pass, post-process, measure.

Speed on the CPU comes from running the network at full resolution only where the liver is: a
coarse pass on every n-th axial slice finds the liver, then the fine pass covers only the liver's slab
and in-plane bounding box (plus a margin). Slices are encoded per batch, and labels, confidences,
post-processing and statistics exist only inside that box, so memory is the input, one uint8 output
and what the box needs.
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
from .inference import Predictor, TorchPredictor, build_predictor, resolve_device
from .inference.test_time import predict_with_shifts
from .labels import LIVER, largest_component
from .model.card import ModelCard, PostprocessingSpec, resolve_model_card
from .model.network import load_network
from .postprocessing import postprocess
from .preprocessing import SliceEncoder, from_model_grid, read_slices
from .probabilities import CHANNELS, ProbabilityMap, quantize
from .statistics import compute_statistics
from .volume.checks import as_scalar_3d, check_affine, check_ct_intensities, check_slice_count
from .volume.orientation import plan_reorientation
from .volume.space import Volume

ProgressCallback = Callable[[float, str], None]
_PACKAGE_DIR = str(Path(__file__).resolve().parent)


class _EventLike(Protocol):
    def is_set(self) -> bool: ...


CancelCheck = Union[Callable[[], bool], _EventLike, None]


@dataclass
class SegmentationResult:
    """Labels on the input's own grid (0 background, 1 liver, 2 tumor) and their statistics; with
    `probabilities` asked for, also the liver and tumour probability map."""

    labels: np.ndarray
    affine: np.ndarray
    statistics: dict
    warnings: list[str] = field(default_factory=list)
    probabilities: ProbabilityMap | None = None


@dataclass(frozen=True)
class LiverBox:
    """The part of the canonical volume the fine pass covers: an in-plane box and an axial slab.
    Labels and confidences exist only inside it; outside, everything is background."""

    x: slice
    y: slice
    z: slice

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return self.x, self.y, self.z

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(s.stop - s.start for s in self.slices)  # type: ignore[return-value]

    def affine(self, canonical_affine: np.ndarray) -> np.ndarray:
        """Voxel-to-RAS affine of the box's own voxel grid."""
        affine = canonical_affine.copy()
        affine[:3, 3] += affine[:3, :3] @ np.array([s.start for s in self.slices], dtype=float)
        return affine

    @classmethod
    def whole(cls, shape: tuple[int, ...]) -> LiverBox:
        return cls(slice(0, shape[0]), slice(0, shape[1]), slice(0, shape[2]))


@dataclass
class _BoxPrediction:
    """What the fine pass produced in its box (canonical axes, uint8): raw labels, the chosen
    class's confidence (0..255) and, when asked for, the quantized liver and tumour probabilities
    (box shape + (2,))."""

    box: LiverBox
    labels: np.ndarray
    confidence: np.ndarray
    probabilities: np.ndarray | None = None

    @classmethod
    def zeros(cls, box: LiverBox, probabilities: bool) -> _BoxPrediction:
        """All background in `box` (and zero probabilities, when asked for)."""
        return cls(box, np.zeros(box.shape, np.uint8), np.zeros(box.shape, np.uint8),
                   np.zeros(box.shape + (len(CHANNELS),), np.uint8) if probabilities else None)


def _cancel_requested(cancel: CancelCheck) -> bool:
    if cancel is None:
        return False
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    return bool(cancel())


class Segmenter:
    """A loaded model ready to segment volumes; load once, segment many."""

    def __init__(self, card: ModelCard | str | Path | None = None, device: str = "auto",
                 precision: str = "auto", runtime: str = "auto", predictor: Predictor | None = None,
                 tta_shifts: tuple[tuple[int, int], ...] = ()):
        """`precision`: see `inference.resolve_precision`; `runtime`: see `inference.build_predictor`;
        `predictor`: run this one instead of building one from the card's weights (training
        validates an in-memory network this way; `reference` uses it too); `tta_shifts`: in-plane
        shifts (model pixels) of the extra views the fine pass averages (`inference.test_time`)."""
        started = time.perf_counter()
        self.tta_shifts = tuple(tuple(shift) for shift in tta_shifts)
        self.card = resolve_model_card(card)
        self.predictor = predictor or build_predictor(self.card, resolve_device(device), precision,
                                                      runtime)
        self.device = self.predictor.device
        self.load_seconds = time.perf_counter() - started

    @classmethod
    def reference(cls, card: ModelCard | str | Path | None = None) -> Segmenter:
        """The reference path the fast paths are checked against: the plain network (batch norms
        not folded) in float32, in PyTorch, on the CPU."""
        card = resolve_model_card(card)
        return cls(card, predictor=TorchPredictor(load_network(card), torch.device("cpu"), "fp32",
                                                  fold_batchnorm=False))

    def segment(self, volume: Volume, force: bool = False,
                postprocessing: PostprocessingSpec | None = None,
                progress: ProgressCallback | None = None,
                cancel: CancelCheck = None, probabilities: bool = False,
                name: str = "The volume", intensity_note: str | None = None) -> SegmentationResult:
        """Segment `volume`; raise `InputVolumeError` for bad input, `CancelledError` on cancel.
        `probabilities`: also return the liver and tumour probability map (`probabilities.py`).
        `name` (e.g. the input's file or folder) and `intensity_note` (what its reader knows about
        its values) go into the messages of the HU check (`check_ct_intensities`)."""
        started = time.perf_counter()
        report = progress or (lambda fraction, message: None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            array = as_scalar_3d(volume.array)
            check_affine(volume.affine)
            check_ct_intensities(array, force=force, name=name, cause=intensity_note)
            orientation = plan_reorientation(array.shape, volume.affine)
            canonical = orientation.to_canonical(array)
            check_slice_count(canonical.shape[2], self.card.input.context_slices)
            spacing = orientation.canonical_spacing
            predicted = self._predict(canonical, spacing, report, cancel, probabilities)
            box = predicted.box
            report(0.92, "Cleaning up the segmentation")
            labels = postprocess(predicted.labels, spacing,
                                 postprocessing or self.card.postprocessing)
            report(0.96, "Measuring liver and lesions")
            statistics = compute_statistics(labels, box.affine(orientation.canonical_affine),
                                            canonical[box.slices], predicted.confidence)
        # Keep the engine's own warnings (obliquity, no liver, forced input, GPU fallback).
        messages = [str(w.message) for w in caught if str(w.filename).startswith(_PACKAGE_DIR)]
        for message in messages:
            warnings.warn(message, stacklevel=2)
        statistics.update(device=self.predictor.describe(),
                          seconds=round(time.perf_counter() - started, 3),
                          model=self.card.name, warnings=messages)
        if self.tta_shifts:
            statistics["test_time_shifts_px"] = [list(shift) for shift in self.tta_shifts]
        output = np.zeros(array.shape, dtype=np.uint8)
        orientation.to_canonical(output)[box.slices] = labels
        probability_map = None if predicted.probabilities is None else ProbabilityMap(
            array.shape, orientation.input_region(box.slices),
            orientation.from_canonical(predicted.probabilities))
        report(1.0, "Done")
        return SegmentationResult(output, volume.affine, statistics, messages, probability_map)

    def _predict(self, canonical: np.ndarray, spacing: tuple[float, float, float],
                 report: ProgressCallback, cancel: CancelCheck, probabilities: bool = False
                 ) -> _BoxPrediction:
        """The fine pass's box and what it predicted there (see `_BoxPrediction`)."""
        spec = self.card.inference
        encoder = SliceEncoder.for_volume(canonical, spacing, self.card.input, self.predictor.device)
        n_slices, step = canonical.shape[2], spec.coarse_slice_step
        box = LiverBox.whole(canonical.shape)
        if step > 1 and n_slices >= 3 * step:
            coarse = sorted(set(range(0, n_slices, step)) | {n_slices - 1})
            liver = np.zeros(canonical.shape[:2] + (len(coarse),), dtype=bool)

            def keep_liver(first: int, scores: torch.Tensor) -> None:
                chosen = torch.argmax(scores, dim=1).cpu().numpy()
                liver[:, :, first: first + len(chosen)] = np.moveaxis(chosen >= LIVER, 0, -1)

            self._run_slices(encoder, canonical, coarse, box, keep_liver, report, cancel, 0.0, 0.3,
                             "Finding the liver")
            found = self._liver_box(liver, coarse, step, spacing, canonical.shape)
            if found is None:
                report(0.9, "No liver found")
                warnings.warn("No liver was found in this volume; the segmentation is empty.",
                              stacklevel=2)
                return _BoxPrediction.zeros(LiverBox(slice(0, 1), slice(0, 1), slice(0, 1)),
                                            probabilities)
            box = found
        kept = _BoxPrediction.zeros(box, probabilities)

        def keep_all(first: int, scores: torch.Tensor) -> None:
            best, chosen = torch.max(scores, dim=1)
            where = slice(first, first + len(chosen))
            kept.labels[:, :, where] = np.moveaxis(chosen.to(torch.uint8).cpu().numpy(), 0, -1)
            kept.confidence[:, :, where] = np.moveaxis(
                (best * 255.0).round_().to(torch.uint8).cpu().numpy(), 0, -1)
            if kept.probabilities is not None:  # (N, 2, x, y) to (x, y, N, 2)
                values = quantize(scores, chosen).cpu().numpy()
                kept.probabilities[:, :, where] = values.transpose(2, 3, 0, 1)

        self._run_slices(encoder, canonical, list(range(box.z.start, box.z.stop)), box, keep_all,
                         report, cancel, 0.3, 0.9, "Segmenting liver and tumors", self.tta_shifts)
        return kept

    def _run_slices(self, encoder: SliceEncoder, canonical: np.ndarray, slice_indices: list[int],
                    box: LiverBox, write: Callable[[int, torch.Tensor], None],
                    report: ProgressCallback, cancel: CancelCheck, start: float, stop: float,
                    message: str, shifts: tuple[tuple[int, int], ...] = ()) -> None:
        """Predict the given slices inside the box's in-plane region, batch by batch; `write`
        receives the batch's position in `slice_indices` and its class probabilities (slices,
        classes, x, y) on the box's native grid, averaged over the shifted views `shifts` asks for."""
        region = (box.x, box.y)
        grid = encoder.grid((box.shape[0], box.shape[1]))
        batch_size = self.card.inference.batch_size
        for first in range(0, len(slice_indices), batch_size):
            if _cancel_requested(cancel):
                raise CancelledError("Cancelled by the user; nothing was written.")
            batch = slice_indices[first: first + batch_size]
            slices, slabs = read_slices(canonical, batch, self.card.input, region)
            images = encoder.encode_slices(slices)[slabs].flatten(1, 2)
            scores = predict_with_shifts(self.predictor.predict, images, shifts)
            write(first, from_model_grid(scores, grid))
            done = (first + len(batch)) / len(slice_indices)
            report(start + (stop - start) * done,
                   f"{message} ({first + len(batch)}/{len(slice_indices)} slices)")
        if _cancel_requested(cancel):
            raise CancelledError("Cancelled by the user; nothing was written.")

    def _liver_box(self, liver_stack: np.ndarray, sampled: list[int], step: int,
                   spacing: tuple[float, float, float], shape: tuple[int, ...]) -> LiverBox | None:
        """Bounding box (with margin) of the largest liver component seen by the coarse pass."""
        spec = self.card.inference
        liver = largest_component(liver_stack)
        step_mm = step * spacing[2]
        if np.count_nonzero(liver) * spacing[0] * spacing[1] * step_mm / 1000.0 < spec.coarse_min_liver_ml:
            return None
        found = ndimage.find_objects(liver.view(np.uint8))[0]
        low, high = [b.start for b in found], [b.stop - 1 for b in found]
        margin = [int(np.ceil(spec.roi_margin_mm / s)) for s in spacing]
        x, y = (slice(max(0, low[a] - margin[a]), min(shape[a], high[a] + margin[a] + 1)) for a in (0, 1))
        z_low = max(0, sampled[low[2]] - step - margin[2])
        z_high = min(shape[2], sampled[high[2]] + step + margin[2] + 1)
        return LiverBox(x, y, slice(z_low, z_high))
