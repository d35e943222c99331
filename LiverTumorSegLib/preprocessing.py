"""Turn axial CT slices into network input, exactly as the model card's `InputSpec` says.

This is the only place where windows, the histogram channel, 2.5D context and in-plane resampling
are implemented. It runs in torch on whatever device the network uses, one batch of slabs at a time,
and training and inference both call it: inference on slabs read from the CT, training on slabs that
may carry synthetic lesions. A volume is never copied whole as float32.
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


def slab_offsets(spec: InputSpec) -> np.ndarray:
    """Slice offsets of one 2.5D slab, e.g. [-1, 0, 1] for one context slice."""
    return np.arange(-spec.context_slices, spec.context_slices + 1)


class SliceEncoder:
    """Encodes HU slabs of one volume (its in-plane spacing and histogram) on one device.

    A slab is the `2 * context + 1` neighbouring axial slices around the slice to segment, as a
    tensor (N, slices, x, y) in HU of any numeric type. The encoding is pointwise (windows, histogram
    lookup) at native resolution, then an antialiased bilinear resampling to the model's pixel size
    and zero padding to the network's size multiple.
    """

    def __init__(self, spec: InputSpec, spacing_xy: tuple[float, float], device: torch.device,
                 lookup: np.ndarray | torch.Tensor | None = None):
        """`lookup`: the volume's `histogram_lookup` (required when the spec has that channel)."""
        if spec.histogram_channel and lookup is None:
            raise ValueError("This input spec has a histogram channel: pass the volume's lookup.")
        self.spec = spec
        self.spacing_xy = (float(spacing_xy[0]), float(spacing_xy[1]))
        self.device = torch.device(device)
        self.lookup = (torch.as_tensor(lookup, dtype=torch.float32, device=self.device)
                       if spec.histogram_channel else None)
        self._bounds = torch.tensor([[w.low, w.high - w.low] for w in spec.windows],
                                    dtype=torch.float32).reshape(-1, 2)

    @classmethod
    def for_volume(cls, volume: np.ndarray, spacing: tuple[float, ...], spec: InputSpec,
                   device: torch.device) -> SliceEncoder:
        """An encoder whose histogram bins come from this (canonical) volume."""
        lookup = (histogram_lookup(histogram_edges(volume, spec.histogram_bins))
                  if spec.histogram_channel else None)
        return cls(spec, (spacing[0], spacing[1]), device, lookup)

    def grid(self, native_size: tuple[int, int]) -> ModelGrid:
        return model_grid(native_size, self.spacing_xy, self.spec)

    def native_channels(self, slices: torch.Tensor) -> torch.Tensor:
        """Float32 channels (M, channels per slice, x, y) of axial slices (M, x, y) at native
        resolution: every window, then the histogram channel."""
        hu = slices.to(self.device, torch.float32)
        out = torch.empty((hu.shape[0], self.spec.channels_per_slice) + tuple(hu.shape[1:]),
                          dtype=torch.float32, device=self.device)
        for w, (low, width) in enumerate(self._bounds.tolist()):
            torch.sub(hu, low, out=out[:, w]).div_(width).clamp_(0.0, 1.0)
        if self.lookup is not None:
            index = hu.round().clamp_(*LOOKUP_HU).sub_(LOOKUP_HU[0]).to(torch.int32)
            out[:, -1] = self.lookup[index]
        return out

    def encode_slices(self, slices: torch.Tensor) -> torch.Tensor:
        """Each axial slice (M, x, y) encoded on its own: (M, channels per slice, H, W) on the
        model's padded pixel grid."""
        return to_model_grid(self.native_channels(slices), self.grid(tuple(slices.shape[-2:])))

    def encode(self, slabs: torch.Tensor) -> torch.Tensor:
        """Network input (N, C, H, W) of slabs (N, slices, x, y): the slab's slices encoded, their
        channels stacked slice by slice."""
        encoded = self.encode_slices(slabs.flatten(0, 1))
        return encoded.view(slabs.shape[0], -1, *encoded.shape[-2:])


def read_slices(volume: np.ndarray, slice_indices: list[int] | np.ndarray, spec: InputSpec,
                region: tuple[slice, slice] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The axial slices the slabs around `slice_indices` need, each read once, as (M, x, y) in the
    volume's own type, and the (N, slices) index that builds the slabs from them. Edge slices repeat
    for the 2.5D context. Encoding each slice once and then gathering the slabs gives the same
    input as encoding every slab, with a third of the work."""
    x, y = region or (slice(None), slice(None))
    wanted = np.clip(np.asarray(slice_indices)[:, None] + slab_offsets(spec), 0, volume.shape[2] - 1)
    unique, inverse = np.unique(wanted, return_inverse=True)
    slices = np.stack([np.asarray(volume[x, y, k]) for k in unique])
    return torch.from_numpy(slices), torch.from_numpy(inverse.reshape(wanted.shape))


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


def labels_to_model_grid(labels: torch.Tensor, grid: ModelGrid) -> torch.Tensor:
    """Resample (N, x, y) label slices to the model grid (nearest), padded with background."""
    tensor = labels[:, None].float()
    if tuple(tensor.shape[-2:]) != grid.resampled_size:
        tensor = F.interpolate(tensor, size=grid.resampled_size, mode="nearest-exact")
    return _pad_to_grid(tensor, grid)[:, 0].long()
