"""Training batches made on the training device, a whole batch at a time.

The cached cases live as int16/uint8 tensors on the device (or on the host when they do not fit).
For each batch: draw a case, a slice and a crop per sample (on the host, a few numbers), read only
the crop's native region of the 2.5D slabs, insert synthetic lesions in HU, encode the region with
the engine's own `SliceEncoder` (exactly as the engine encodes the region its fine pass covers), cut
it to the training size, and augment. Nothing loops over voxels in Python, no worker processes are
needed, and no work is spent outside the crop: on a CPU this is what makes the pipeline keep up
with the network.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..model.card import InputSpec
from ..preprocessing import SliceEncoder, histogram_edges, histogram_lookup, labels_to_model_grid, slab_offsets
from .augment import AugmentSpec, augment_batch
from .dataset import CachedCase, choose_slice
from .lesion_shapes import LesionShapeBank
from .synthetic_tumors import LesionSpec, insert_lesions

DEVICE_MEMORY_SHARE = 0.5  # cases go to the GPU when they take at most this share of its free memory


@dataclass(frozen=True)
class SamplingSpec:
    """What one training sample is made of."""

    crop_size: int = 256
    sampling: tuple[tuple[str, float], ...] = (("tumor", 0.3), ("liver", 0.5))
    synthetic_tumor_rate: float = 0.5
    liver_centred_crops: float = 0.8


@dataclass(frozen=True)
class SampleDraw:
    """The host-side choices of one sample."""

    case: int  # index into the sampler's cases
    slice: int  # axial slice (k) the sample is centred on
    synthetic: bool  # insert synthetic lesions
    corner: tuple[int, int]  # top-left (i, j) of the crop's native region on the canonical grid


@dataclass
class _DeviceCase:
    """One cached case as tensors (k, i, j), with its encoder and the size of the native region
    (i, j) that one training crop covers."""

    source: CachedCase
    hu: torch.Tensor
    labels: torch.Tensor
    encoder: SliceEncoder
    region: tuple[int, int]


def native_region(crop_size: int, spec: InputSpec, spacing_xy: tuple[float, float],
                  image_size: tuple[int, int]) -> tuple[int, int]:
    """Native pixels (i, j) whose encoding covers `crop_size` model pixels (the whole image where it
    is smaller)."""
    return tuple(min(n, math.ceil(crop_size * spec.pixel_size_mm / s))  # type: ignore[return-value]
                 for s, n in zip(spacing_xy, image_size))


def storage_device(cases: list[CachedCase], device: torch.device) -> torch.device:
    """The training device when every case fits in a share of its free memory, else the host."""
    if device.type != "cuda":
        return device
    needed = sum(c.hu.nbytes + c.labels.nbytes for c in cases)
    free, _ = torch.cuda.mem_get_info(device)
    return device if needed <= DEVICE_MEMORY_SHARE * free else torch.device("cpu")


class BatchSampler:
    """Endless training batches (images B x C x S x S, labels B x S x S) on one device.

    Random state: a numpy generator for the host-side draws and a torch generator on the device for
    lesions and augmentation; `state_dict` / `load_state_dict` save and restore both, so a resumed
    run draws exactly the batches an uninterrupted one would."""

    def __init__(self, cases: list[CachedCase], spec: InputSpec, sampling: SamplingSpec,
                 device: torch.device, seed: int, augment: AugmentSpec | None = AugmentSpec(),
                 lesions: LesionSpec = LesionSpec(), shapes: LesionShapeBank | None = None):
        """`shapes`: real lesion shapes for the share of synthetic lesions `lesions` says."""
        self.spec, self.sampling, self.device = spec, sampling, torch.device(device)
        self.augment, self.lesions = augment, lesions
        self.shapes = shapes.to(self.device) if shapes is not None else None
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        store = storage_device(cases, self.device)
        self.cases = [self._load(case, store) for case in cases]
        self.offsets = slab_offsets(spec)

    def _load(self, case: CachedCase, store: torch.device) -> _DeviceCase:
        lookup = (histogram_lookup(histogram_edges(case.hu, self.spec.histogram_bins))
                  if self.spec.histogram_channel else None)
        encoder = SliceEncoder(self.spec, case.spacing[:2], self.device, lookup)
        with warnings.catch_warnings():
            # The cache is memory-mapped read-only; it is only ever read (on the host, slab by slab).
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            hu, labels = torch.from_numpy(case.hu), torch.from_numpy(case.labels)
        region = native_region(self.sampling.crop_size, self.spec, case.spacing[:2], case.hu.shape[1:])
        return _DeviceCase(case, hu.to(store), labels.to(store), encoder, region)

    def __call__(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch on the device: images float32 in [0, 1], labels int64."""
        return self.make(self.draw(batch_size))

    def draw(self, batch_size: int) -> list[SampleDraw]:
        """The host-side choices of one batch, grouped by case."""
        picks = np.sort(self.rng.integers(len(self.cases), size=batch_size))
        sampling = dict(self.sampling.sampling)
        draws = []
        for index in picks:
            case = self.cases[index]
            k = choose_slice(case.source, self.rng, sampling)
            synthetic = bool(self.rng.random() < self.sampling.synthetic_tumor_rate)
            centred = bool(self.rng.random() < self.sampling.liver_centred_crops)
            corner = crop_corner(self._crop_centre(case.source, k, centred), case.region,
                                 case.source.hu.shape[1:], self.rng)
            draws.append(SampleDraw(int(index), k, synthetic, corner))
        return draws

    def make(self, draws: list[SampleDraw]) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of these draws: slabs read, lesions inserted, encoded, cropped, augmented."""
        images, labels = [], []
        for index in sorted({d.case for d in draws}):
            case_images, case_labels = self._case_samples(self.cases[index],
                                                          [d for d in draws if d.case == index])
            images.append(case_images)
            labels.append(case_labels)
        images, labels = torch.cat(images), torch.cat(labels)
        if self.augment is not None:
            images, labels = augment_batch(images, labels, self.augment, self.generator)
        return images, labels

    def _case_samples(self, case: _DeviceCase, draws: list[SampleDraw]
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        hu, slab_labels = (self._read_regions(volume, case, draws) for volume in (case.hu, case.labels))
        synthetic = np.flatnonzero([d.synthetic for d in draws])
        if len(synthetic):
            chosen = torch.from_numpy(synthetic).to(self.device)
            lesion_hu, lesion_labels = hu[chosen].float(), slab_labels[chosen]
            insert_lesions(lesion_hu, lesion_labels, case.source.spacing, self.generator, self.lesions,
                           self.shapes)
            hu = hu.float()
            hu[chosen], slab_labels[chosen] = lesion_hu, lesion_labels
        grid = case.encoder.grid(tuple(hu.shape[-2:]))
        images = case.encoder.encode(hu)
        labels = labels_to_model_grid(slab_labels[:, len(self.offsets) // 2], grid)
        return fit_to_crop(images, labels, self.sampling.crop_size)

    def _read_regions(self, volume: torch.Tensor, case: _DeviceCase, draws: list[SampleDraw]
                      ) -> torch.Tensor:
        """The 2.5D slabs of each draw's native region, (B, slices, i, j), on the device: one
        gather, wherever the case is stored. Edge slices repeat for the context."""
        slices = np.array([d.slice for d in draws])
        ks = np.clip(slices[:, None] + self.offsets, 0, volume.shape[0] - 1)
        corners = np.array([d.corner for d in draws])
        rows = corners[:, :1] + np.arange(case.region[0])
        columns = corners[:, 1:] + np.arange(case.region[1])
        index = [torch.from_numpy(a).to(volume.device) for a in
                 (ks[:, :, None, None], rows[:, None, :, None], columns[:, None, None, :])]
        return volume[index[0], index[1], index[2]].to(self.device, non_blocking=True)

    def _crop_centre(self, source: CachedCase, k: int, centred: bool) -> tuple[int, int] | None:
        """A crop centre (native pixels) at a liver voxel of the slice (when `centred` and the
        slice has one), else None: anywhere."""
        points = source.foreground.get(k)
        if not centred or points is None or not len(points):
            return None
        i, j = points[self.rng.integers(len(points))]
        return int(i), int(j)

    def state_dict(self) -> dict:
        return {"numpy": self.rng.bit_generator.state, "torch": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["numpy"]
        self.generator.set_state(state["torch"].cpu())


def crop_corner(centre: tuple[int, int] | None, region: tuple[int, int], size: tuple[int, int],
                rng: np.random.Generator) -> tuple[int, int]:
    """Top-left corner of a region around `centre` (anywhere when None), jittered by up to a
    quarter of the region and kept inside the image."""
    if centre is None:
        centre = (int(rng.integers(size[0])), int(rng.integers(size[1])))
    jitter = [rng.integers(-r // 4, r // 4 + 1) for r in region]
    return tuple(int(np.clip(c - r // 2 + d, 0, n - r))  # type: ignore[return-value]
                 for c, r, d, n in zip(centre, region, jitter, size))


def fit_to_crop(images: torch.Tensor, labels: torch.Tensor, size: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `size` x `size` model pixels of encoded regions (zero-padded where a region is
    smaller: images smaller than the crop)."""
    images, labels = images[..., :size, :size], labels[..., :size, :size]
    pad_x, pad_y = size - images.shape[-2], size - images.shape[-1]
    if pad_x or pad_y:
        images, labels = F.pad(images, (0, pad_y, 0, pad_x)), F.pad(labels, (0, pad_y, 0, pad_x))
    return images.contiguous(), labels.contiguous()
