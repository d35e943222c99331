"""Synthetic liver lesions in the spirit of Hu et al., CVPR 2023 ("Label-Free Liver Tumor
Segmentation"): distorted-ellipsoid shapes, textures from scaled-up Gaussian noise, mostly hypodense
(some hyperdense) intensities relative to the surrounding parenchyma, placed in liver parenchyma away
from bright vessels, blended smoothly at the edge. The label becomes 2 where the lesion is placed.
Optionally, a share of the lesions takes its shape and size from a bank of real lesions
(`lesion_shapes.py`), turned, mirrored and scaled a little.

Lesions are built in 3D millimetres on whole 2.5D slabs, so the context slices of a training sample
see one consistent lesion. Everything runs in torch on the batch's device, a whole batch of slabs at
a time (one lesion per slab per round).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..labels import LIVER, TUMOR
from .lesion_shapes import EXTENT, LesionShapeBank

DISTORTION_CELLS = 4
TEXTURE_GRID = 16


@dataclass(frozen=True)
class LesionSpec:
    """Ranges lesions are drawn from."""

    diameter_mm: tuple[float, float] = (5.0, 50.0)
    hypodense_delta_hu: tuple[float, float] = (-90.0, -20.0)
    hyperdense_delta_hu: tuple[float, float] = (15.0, 50.0)
    hyperdense_probability: float = 0.2
    texture_sigma_hu: tuple[float, float] = (6.0, 20.0)
    vessel_margin_hu: float = 40.0
    edge_mm: tuple[float, float] = (0.5, 2.5)
    distortion: float = 0.18
    max_lesions: int = 3
    min_parenchyma_voxels: int = 50
    real_shape_rate: float = 0.0  # share of lesions shaped (and sized) like a real one of the bank
    real_scale: tuple[float, float] = (0.75, 1.33)  # a real lesion's size is scaled by this much

    @property
    def max_reach_mm(self) -> float:
        """How far from its centre the largest lesion can reach: an ellipsoid's longest semi-axis
        with the distortion's margin, or a real shape's cube (at most the largest diameter), plus
        the blended edge."""
        ellipsoid = self.diameter_mm[1] / 2 * 1.3 * 1.4
        real = EXTENT * self.diameter_mm[1] / 2 if self.real_shape_rate > 0 else 0.0
        return max(ellipsoid, real) + self.edge_mm[1]


def _uniform(low: float, high: float, shape: tuple[int, ...], generator: torch.Generator,
             device: torch.device) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator, device=device)


def _smooth_noise(position: torch.Tensor, cells: torch.Tensor, grid: int, generator: torch.Generator
                  ) -> torch.Tensor:
    """Gaussian noise on a coarse grid, scaled up (trilinear) to the voxels at `position` (B, S, X,
    Y, 3; each coordinate in [-1, 1] across the lesion's box), with `cells` (B,) grid cells across
    the box; normalised to unit variance over the box."""
    batch = position.shape[0]
    coarse = torch.randn((batch, 1, grid, grid, grid), generator=generator, device=position.device)
    scale = (cells / grid).view(batch, 1, 1, 1, 1)
    field = F.grid_sample(coarse, position * scale, mode="bilinear", padding_mode="border",
                          align_corners=True)[:, 0]
    inside = (position.abs() <= 1.0).all(dim=-1)
    count = inside.flatten(1).sum(1).clamp_min(1).view(batch, 1, 1, 1)
    mean = (field * inside).flatten(1).sum(1).view(batch, 1, 1, 1) / count
    std = (((field - mean) * inside) ** 2).flatten(1).sum(1).view(batch, 1, 1, 1).div(count).sqrt()
    return (field - mean) / (std + 1e-6)


def insert_lesions(hu: torch.Tensor, labels: torch.Tensor, spacing: tuple[float, float, float],
                   generator: torch.Generator, spec: LesionSpec = LesionSpec(),
                   shapes: LesionShapeBank | None = None) -> torch.Tensor:
    """Insert between one and `spec.max_lesions` lesions into each slab, in place.

    `hu` (B, S, X, Y) float HU and `labels` (B, S, X, Y) uint8 are whole 2.5D slabs whose middle
    slice is the training slice; `spacing` is (x, y, slice) in mm; `shapes`, on the slabs' device,
    serves the real-shaped share (`spec.real_shape_rate`). Returns per slab whether at least one
    lesion was placed (a slab without parenchyma in its middle slice gets none)."""
    counts = torch.randint(1, spec.max_lesions + 1, (hu.shape[0],), generator=generator,
                           device=hu.device)
    placed = torch.zeros(hu.shape[0], dtype=torch.bool, device=hu.device)
    for round_ in range(spec.max_lesions):
        placed |= _insert_one(hu, labels, spacing, generator, spec, counts > round_, shapes)
    return placed


@dataclass
class _RealShapes:
    """The real-shape choices of one round: which slabs take a real shape, which one, its radius
    (mm, real times a scale) and its mirroring."""

    chosen: torch.Tensor  # (B,) bool
    index: torch.Tensor  # (B,) into the bank
    radius: torch.Tensor  # (B,) mm
    signs: torch.Tensor  # (B, 3) of ±1: mirror along u, v, slice

    def distance(self, shapes: LesionShapeBank, u: torch.Tensor, v: torch.Tensor, dz: torch.Tensor,
                 radius: torch.Tensor) -> torch.Tensor:
        """The chosen shapes' normalised distance at in-plane offsets u, v and slice offset dz
        (mm, broadcastable to (B, S, X, Y)): 1 on the surface, below 1 inside."""
        scale = (EXTENT * radius).view(-1, 1, 1, 1)
        shape = torch.broadcast_shapes(u.shape, v.shape, dz.shape)
        # grid_sample order for a (D, H, W) = (i, j, k) cube: (k, j, i)
        grid = torch.stack([(self.signs[:, 2].view(-1, 1, 1, 1) * dz / scale).expand(shape),
                            (self.signs[:, 1].view(-1, 1, 1, 1) * v / scale).expand(shape),
                            (self.signs[:, 0].view(-1, 1, 1, 1) * u / scale).expand(shape)], dim=-1)
        return F.grid_sample(shapes.fields[self.index], grid, mode="bilinear",
                             padding_mode="border", align_corners=True)[:, 0]


def _draw_real_shapes(shapes: LesionShapeBank, batch: int, spec: LesionSpec,
                      generator: torch.Generator, device: torch.device) -> _RealShapes:
    chosen = torch.rand(batch, generator=generator, device=device) < spec.real_shape_rate
    index = torch.randint(len(shapes), (batch,), generator=generator, device=device)
    scale = _uniform(*spec.real_scale, (batch,), generator, device)
    radius = (shapes.radii_mm[index] * scale).clamp(max=spec.diameter_mm[1] / 2)
    signs = torch.randint(0, 2, (batch, 3), generator=generator, device=device) * 2.0 - 1.0
    return _RealShapes(chosen, index, radius, signs)


def _lesion_box(centre_px: torch.Tensor, half: int, size: int) -> torch.Tensor:
    """Indices (B, L) of a window of L = min(size, 2 * half + 1) pixels holding each centre's
    neighbourhood, shifted to lie inside the image (so no index repeats)."""
    length = min(size, 2 * half + 1)
    start = (centre_px - half).clamp(0, size - length)
    return start[:, None] + torch.arange(length, device=centre_px.device)


def _insert_one(hu: torch.Tensor, labels: torch.Tensor, spacing: tuple[float, float, float],
                generator: torch.Generator, spec: LesionSpec, active: torch.Tensor,
                shapes: LesionShapeBank | None = None) -> torch.Tensor:
    """One lesion in each active slab (see `insert_lesions`); returns where one was placed.

    The lesion is computed only in the in-plane box its largest possible extent fits (the same
    size for every slab, so the batch stays one tensor), not over the whole slab."""
    batch, depth, size_x, size_y = hu.shape
    device, middle = hu.device, depth // 2
    liver = labels == LIVER
    middle_hu, middle_liver = hu[:, middle], liver[:, middle]
    # Parenchyma level from every other voxel of the middle slice (a median needs no more).
    sample = torch.where(middle_liver[:, ::2, ::2], middle_hu[:, ::2, ::2], float("nan"))
    median = sample.flatten(1).nanmedian(dim=1).values.view(batch, 1, 1)
    bright = (middle_hu > median + spec.vessel_margin_hu).float()[:, None]
    vessels = F.max_pool2d(bright, kernel_size=5, stride=1, padding=2)[:, 0] > 0
    candidates = (middle_liver & ~vessels).flatten(1)
    usable = active & (liver.flatten(1).sum(1) >= spec.min_parenchyma_voxels) & candidates.any(1)
    weights = torch.where(usable[:, None], candidates.float(), torch.ones_like(candidates.float()))
    flat = torch.multinomial(weights, 1, generator=generator)[:, 0]
    sx, sy, sz = spacing

    def draw(low: float, high: float, *shape: int) -> torch.Tensor:
        return _uniform(low, high, (batch, *shape), generator, device)

    radius = torch.exp(draw(math.log(spec.diameter_mm[0] / 2), math.log(spec.diameter_mm[1] / 2)))
    real = None
    if shapes is not None and spec.real_shape_rate > 0:
        real = _draw_real_shapes(shapes, batch, spec, generator, device)
        radius = torch.where(real.chosen, real.radius, radius)
    semi_axes = radius[:, None] * draw(0.7, 1.3, 3)
    centre_x, centre_y = flat // size_y, flat % size_y
    centre = torch.stack([centre_x.float() * sx, centre_y.float() * sy,
                          (middle + draw(-0.4, 0.4) * radius / sz) * sz], dim=1)
    reach = semi_axes.max(dim=1).values * 1.4 + spec.edge_mm[1]
    if real is not None:
        reach = torch.where(real.chosen, EXTENT * radius, reach)
    ix = _lesion_box(centre_x, math.ceil(spec.max_reach_mm / sx), size_x)  # (B, Lx)
    iy = _lesion_box(centre_y, math.ceil(spec.max_reach_mm / sy), size_y)  # (B, Ly)
    dx = (ix * sx).view(batch, 1, -1, 1) - centre[:, 0].view(-1, 1, 1, 1)
    dy = (iy * sy).view(batch, 1, 1, -1) - centre[:, 1].view(-1, 1, 1, 1)
    dz = (torch.arange(depth, device=device) * sz).view(1, -1, 1, 1) - centre[:, 2].view(-1, 1, 1, 1)
    angle = draw(0.0, math.pi).view(-1, 1, 1, 1)
    u = torch.cos(angle) * dx + torch.sin(angle) * dy
    v = torch.cos(angle) * dy - torch.sin(angle) * dx
    a, b, c = (semi_axes[:, n].view(-1, 1, 1, 1) for n in range(3))
    distance = torch.sqrt((u / a) ** 2 + (v / b) ** 2 + (dz / c) ** 2)

    shape = (batch, depth, ix.shape[1], iy.shape[1])
    r = reach.view(-1, 1, 1, 1)
    position = torch.stack([(dy / r).expand(shape), (dx / r).expand(shape), (dz / r).expand(shape)],
                           dim=-1)  # grid_sample order: width (y), height (x), depth (slice)
    distortion_cells = torch.full((batch,), float(DISTORTION_CELLS), device=device)
    distance = distance + spec.distortion * _smooth_noise(position, distortion_cells,
                                                          DISTORTION_CELLS, generator)
    if real is not None:
        distance = torch.where(real.chosen.view(-1, 1, 1, 1),
                               real.distance(shapes, u, v, dz, radius), distance)
    # The box of every slab, as indices into the slabs: (B, S, Lx, Ly) after broadcasting.
    box = (torch.arange(batch, device=device).view(-1, 1, 1, 1),
           torch.arange(depth, device=device).view(1, -1, 1, 1), ix[:, None, :, None],
           iy[:, None, None, :])
    edge = (draw(*spec.edge_mm) / radius).view(-1, 1, 1, 1)
    alpha = ((1.0 - distance) / edge + 0.5).clamp(0.0, 1.0) * liver[box] * usable.view(-1, 1, 1, 1)

    hyper = torch.rand(batch, generator=generator, device=device) < spec.hyperdense_probability
    delta = torch.where(hyper, draw(*spec.hyperdense_delta_hu), draw(*spec.hypodense_delta_hu))
    texture_cells = (radius / 2).clamp(3, TEXTURE_GRID)
    texture = _smooth_noise(position, texture_cells, TEXTURE_GRID, generator) \
        * draw(*spec.texture_sigma_hu).view(-1, 1, 1, 1)
    # Shift the parenchyma under the lesion rather than replacing it, so the scan's own noise stays.
    hu[box] = hu[box] + alpha * (delta.view(-1, 1, 1, 1) + texture)
    lesion = alpha > 0.5
    labels[box] = labels[box].masked_fill(lesion, TUMOR)
    return lesion.flatten(1).any(1)
