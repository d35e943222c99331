"""Turn axial CT slices into network input, exactly as the model card's `InputSpec` says.

This is the only place where windows, the histogram channel, 2.5D context and in-plane resampling
are implemented; training and inference both call it. Work is done per batch of slices, so a large
volume is never copied whole as float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .model.card import InputSpec

HISTOGRAM_SAMPLE_VOXELS = 1_000_000
BODY_HU = -500.0
LOOKUP_HU = (-1024, 3071)


def window_to_unit(hu: np.ndarray, low: float, high: float) -> np.ndarray:
    """Clip Hounsfield units to [low, high] and scale to [0, 1] (float32)."""
    out = (np.asarray(hu, dtype=np.float32) - np.float32(low)) / np.float32(high - low)
    return np.clip(out, 0.0, 1.0, out=out)


def histogram_edges(volume: np.ndarray, bins: int) -> np.ndarray:
    """Edges of `bins` equal-count intensity bins (frequency-histogram scaling) of a volume.

    Only body voxels (above `BODY_HU`) count, so the bins do not depend on how much air the field
    of view holds (a tight crop and a full scan of the same body get about the same bins)."""
    step = max(1, int(np.ceil((volume.size / HISTOGRAM_SAMPLE_VOXELS) ** (1 / 3))))
    sample = np.asarray(volume[::step, ::step, ::step], dtype=np.float32).ravel()
    body = sample[sample > BODY_HU]
    edges = np.quantile(body if body.size else sample, np.linspace(0.0, 1.0, bins + 1))
    return np.maximum.accumulate(edges.astype(np.float32))


def histogram_lookup(edges: np.ndarray) -> np.ndarray:
    """Lookup table from integer HU (`LOOKUP_HU` range) to [0, 1] through equal-count bins."""
    levels = np.linspace(0.0, 1.0, len(edges), dtype=np.float32)
    return np.interp(np.arange(LOOKUP_HU[0], LOOKUP_HU[1] + 1), edges, levels).astype(np.float32)


def equalize(hu: np.ndarray, lookup: np.ndarray) -> np.ndarray:
    """Histogram equalisation to [0, 1]: HU rounded to integers, clipped to `LOOKUP_HU`, looked up
    (several times faster than interpolating every voxel)."""
    values = np.asarray(hu)
    if not np.issubdtype(values.dtype, np.integer):
        values = np.rint(values)
    index = np.clip(values, LOOKUP_HU[0], LOOKUP_HU[1]).astype(np.int32) - LOOKUP_HU[0]
    return lookup[index]


@dataclass(frozen=True)
class ModelGrid:
    """How a native in-plane region maps to the network's pixel grid."""

    native_size: tuple[int, int]
    resampled_size: tuple[int, int]
    padded_size: tuple[int, int]


def model_grid(native_size: tuple[int, int], spacing_xy: tuple[float, float],
               spec: InputSpec) -> ModelGrid:
    """The resampled size at the model's pixel size, padded up to the network's size multiple."""
    resampled = tuple(max(1, int(round(n * s / spec.pixel_size_mm)))
                      for n, s in zip(native_size, spacing_xy))
    m = spec.size_multiple
    padded = tuple(int(np.ceil(n / m) * m) for n in resampled)
    return ModelGrid(tuple(native_size), resampled, padded)  # type: ignore[arg-type]


class SliceEncoder:
    """Builds network input for chosen axial slices of one canonical volume (i, j, k = R, A, S)."""

    def __init__(self, volume: np.ndarray, spacing: tuple[float, float, float], spec: InputSpec,
                 edges: np.ndarray | None = None):
        """`edges`: histogram bins computed on the whole volume, for an encoder of a sub-block."""
        self.volume = volume
        self.spacing_xy = (float(spacing[0]), float(spacing[1]))
        self.spec = spec
        self.lookup = None
        if spec.histogram_channel:
            self.lookup = histogram_lookup(edges if edges is not None
                                           else histogram_edges(volume, spec.histogram_bins))

    def grid(self, region: tuple[slice, slice] | None = None) -> ModelGrid:
        return model_grid(self._region_size(region), self.spacing_xy, self.spec)

    def _region_size(self, region: tuple[slice, slice] | None) -> tuple[int, int]:
        x, y = region or (slice(None), slice(None))
        return (len(range(*x.indices(self.volume.shape[0]))),
                len(range(*y.indices(self.volume.shape[1]))))

    def native_channels(self, slice_indices: list[int] | np.ndarray,
                        region: tuple[slice, slice] | None = None) -> np.ndarray:
        """Float32 array (N, C, x, y) at native resolution; edge slices repeat for 2.5D context."""
        x, y = region or (slice(None), slice(None))
        n_slices = self.volume.shape[2]
        per_slice = self.spec.channels_per_slice
        context = self.spec.context_slices
        size = self._region_size(region)
        out = np.empty((len(slice_indices), self.spec.in_channels) + size, dtype=np.float32)
        for row, k in enumerate(slice_indices):
            for offset in range(-context, context + 1):
                hu = self.volume[x, y, int(np.clip(k + offset, 0, n_slices - 1))]
                first = (offset + context) * per_slice
                for w, window in enumerate(self.spec.windows):
                    out[row, first + w] = window_to_unit(hu, window.low, window.high)
                if self.lookup is not None:
                    out[row, first + len(self.spec.windows)] = equalize(hu, self.lookup)
        return out

    def encode(self, slice_indices: list[int] | np.ndarray,
               region: tuple[slice, slice] | None = None) -> torch.Tensor:
        """Network input (N, C, H, W) on the model's padded pixel grid."""
        channels = torch.from_numpy(self.native_channels(slice_indices, region))
        return to_model_grid(channels, self.grid(region))


def to_model_grid(images: torch.Tensor, grid: ModelGrid) -> torch.Tensor:
    """Resample (N, C, x, y) images to the model pixel size (bilinear) and zero-pad."""
    if tuple(images.shape[-2:]) != grid.resampled_size:
        images = F.interpolate(images, size=grid.resampled_size, mode="bilinear",
                               align_corners=False, antialias=True)
    return _pad_to_grid(images, grid)


def _pad_to_grid(images: torch.Tensor, grid: ModelGrid) -> torch.Tensor:
    pad_x = grid.padded_size[0] - grid.resampled_size[0]
    pad_y = grid.padded_size[1] - grid.resampled_size[1]
    return F.pad(images, (0, pad_y, 0, pad_x))


def from_model_grid(scores: torch.Tensor, grid: ModelGrid) -> torch.Tensor:
    """Undo `to_model_grid` on network outputs (N, K, H, W): crop the padding, resample back."""
    scores = scores[..., : grid.resampled_size[0], : grid.resampled_size[1]]
    if tuple(scores.shape[-2:]) != grid.native_size:
        scores = F.interpolate(scores, size=grid.native_size, mode="bilinear", align_corners=False)
    return scores


def labels_to_model_grid(labels: np.ndarray, grid: ModelGrid) -> torch.Tensor:
    """Resample (N, x, y) label slices to the model grid (nearest), padded with background."""
    tensor = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.uint8))[:, None].float()
    if tuple(tensor.shape[-2:]) != grid.resampled_size:
        tensor = F.interpolate(tensor, size=grid.resampled_size, mode="nearest-exact")
    return _pad_to_grid(tensor, grid)[:, 0].long()
