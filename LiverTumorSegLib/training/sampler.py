"""Training samples: a 2.5D slab around a sampled slice, optional synthetic lesions in HU, encoded by
the engine's own `SliceEncoder` (so training sees exactly what inference sees), cropped around the
liver like the inference's fine pass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..model.card import InputSpec
from ..preprocessing import SliceEncoder, histogram_edges, labels_to_model_grid
from .dataset import CachedCase, choose_slice
from .synthetic_tumors import LesionSpec, add_synthetic_lesions


@dataclass(frozen=True)
class SamplingSpec:
    """What one training sample is made of."""

    crop_size: int = 256
    sampling: tuple[tuple[str, float], ...] = (("tumor", 0.3), ("liver", 0.5))
    synthetic_tumor_rate: float = 0.5
    liver_centred_crops: float = 0.8


class SliceSampler(torch.utils.data.IterableDataset):
    """Endless stream of (image C x S x S, label S x S) pairs from the cached cases."""

    def __init__(self, cases: list[CachedCase], spec: InputSpec, sampling: SamplingSpec, seed: int,
                 lesions: LesionSpec = LesionSpec()):
        super().__init__()
        self.cases, self.spec, self.sampling, self.seed, self.lesions = cases, spec, sampling, seed, lesions
        self._edges: dict[str, np.ndarray] = {}

    def __iter__(self):
        worker = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, worker.id if worker else 0])
        while True:
            yield self.sample(rng)

    def _case_edges(self, case: CachedCase) -> np.ndarray | None:
        if not self.spec.histogram_channel:
            return None
        if case.name not in self._edges:
            self._edges[case.name] = histogram_edges(case.hu, self.spec.histogram_bins)
        return self._edges[case.name]

    def sample(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """One sample (image, label) on the model grid, cropped to `crop_size`."""
        case = self.cases[int(rng.integers(len(self.cases)))]
        k = choose_slice(case, rng, dict(self.sampling.sampling))
        context = self.spec.context_slices
        depth = case.hu.shape[2]
        indices = np.clip(np.arange(k - context, k + context + 1), 0, depth - 1)
        hu = np.asarray(case.hu[:, :, indices], dtype=np.float32)
        labels = np.array(case.labels[:, :, indices])
        if rng.random() < self.sampling.synthetic_tumor_rate:
            add_synthetic_lesions(hu, labels, case.spacing, rng, self.lesions)
        encoder = SliceEncoder(hu, case.spacing, self.spec, edges=self._case_edges(case))
        image = encoder.encode([context])[0]
        grid = encoder.grid()
        label = labels_to_model_grid(labels[None, :, :, context], grid)[0]
        return crop_around_liver(image, label, self.sampling, rng)


def crop_around_liver(image: torch.Tensor, label: torch.Tensor, sampling: SamplingSpec,
                      rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A `crop_size` square, centred near the liver most of the time, zero-padded when needed."""
    size = sampling.crop_size
    _, height, width = image.shape
    foreground = torch.nonzero(label > 0)
    if len(foreground) and rng.random() < sampling.liver_centred_crops:
        centre = foreground[int(rng.integers(len(foreground)))].tolist()
    else:
        centre = [int(rng.integers(height)), int(rng.integers(width))]
    top = int(np.clip(centre[0] - size // 2 + rng.integers(-size // 4, size // 4 + 1), 0,
                      max(0, height - size)))
    left = int(np.clip(centre[1] - size // 2 + rng.integers(-size // 4, size // 4 + 1), 0,
                       max(0, width - size)))
    image = image[:, top: top + size, left: left + size]
    label = label[top: top + size, left: left + size]
    pad = (0, size - image.shape[2], 0, size - image.shape[1])
    return torch.nn.functional.pad(image, pad), torch.nn.functional.pad(label, pad)
