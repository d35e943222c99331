"""Synthetic liver lesions in the spirit of Hu et al., CVPR 2023 ("Label-Free Liver Tumor
Segmentation"): distorted-ellipsoid shapes, textures from scaled-up Gaussian noise, mostly hypodense
(some hyperdense) intensities relative to the surrounding parenchyma, placed in liver parenchyma away
from bright vessels, blended smoothly at the edge. The label becomes 2 where the lesion is placed.

The lesion is built in 3D millimetres on a slab of neighbouring slices, so the 2.5D context of a
training sample sees one consistent lesion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..labels import LIVER, TUMOR


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
    max_lesions: int = 3


def _smooth_noise(shape: tuple[int, ...], cells: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise on a coarse grid scaled up (linearly) to `shape`: unit variance, smooth."""
    coarse = rng.standard_normal([max(2, cells)] * len(shape))
    field = ndimage.zoom(coarse, [s / c for s, c in zip(shape, coarse.shape)], order=1)
    field = field[tuple(slice(0, s) for s in shape)]
    return (field - field.mean()) / (field.std() + 1e-6)


def insert_lesion(hu: np.ndarray, labels: np.ndarray, spacing: tuple[float, float, float],
                  rng: np.random.Generator, spec: LesionSpec = LesionSpec()) -> bool:
    """Insert one lesion in place into a slab (i, j, k) whose middle slice holds liver.

    Returns False (and changes nothing) when the middle slice has no parenchyma to host a lesion.
    """
    middle = hu.shape[2] // 2
    liver = labels == LIVER
    parenchyma = hu[liver]
    if parenchyma.size < 50 or not liver[:, :, middle].any():
        return False
    median = float(np.median(parenchyma))
    vessels = ndimage.binary_dilation(hu[:, :, middle] > median + spec.vessel_margin_hu, iterations=2)
    candidates = np.argwhere(liver[:, :, middle] & ~vessels)
    if len(candidates) == 0:
        return False
    centre_ij = candidates[rng.integers(len(candidates))]
    low, high = np.log(spec.diameter_mm[0] / 2), np.log(spec.diameter_mm[1] / 2)
    radius = float(np.exp(rng.uniform(low, high)))
    semi_axes = radius * rng.uniform(0.7, 1.3, size=3)
    centre_mm = np.array([centre_ij[0] * spacing[0], centre_ij[1] * spacing[1],
                          (middle + rng.uniform(-0.4, 0.4) * radius / spacing[2]) * spacing[2]])

    reach = semi_axes.max() * 1.4 + spec.edge_mm[1]
    box = tuple(slice(max(0, int((c - reach) / s)), min(n, int((c + reach) / s) + 2))
                for c, s, n in zip(centre_mm, spacing, hu.shape))
    coords = np.meshgrid(*[np.arange(b.start, b.stop) * s for b, s in zip(box, spacing)],
                         indexing="ij")
    angle = rng.uniform(0, np.pi)
    dx, dy, dz = (coords[n] - centre_mm[n] for n in range(3))
    u, v = np.cos(angle) * dx + np.sin(angle) * dy, -np.sin(angle) * dx + np.cos(angle) * dy
    shape = dz.shape
    distortion = 0.18 * _smooth_noise(shape, 4, rng)
    distance = np.sqrt((u / semi_axes[0]) ** 2 + (v / semi_axes[1]) ** 2 + (dz / semi_axes[2]) ** 2)
    distance = distance + distortion
    edge = rng.uniform(*spec.edge_mm) / radius
    alpha = np.clip((1.0 - distance) / edge + 0.5, 0.0, 1.0) * liver[box]
    if not (alpha > 0.5).any():
        return False

    hyper = rng.random() < spec.hyperdense_probability
    delta = rng.uniform(*(spec.hyperdense_delta_hu if hyper else spec.hypodense_delta_hu))
    texture = _smooth_noise(shape, max(3, int(radius / 2)), rng) * rng.uniform(*spec.texture_sigma_hu)
    # Shift the parenchyma under the lesion rather than replacing it, so the scan's own noise stays.
    hu[box] += alpha * (delta + texture)
    labels[box][alpha > 0.5] = TUMOR
    return True


def add_synthetic_lesions(hu: np.ndarray, labels: np.ndarray, spacing: tuple[float, float, float],
                          rng: np.random.Generator, spec: LesionSpec = LesionSpec()) -> int:
    """Insert between one and `spec.max_lesions` lesions; return how many were placed."""
    return sum(insert_lesion(hu, labels, spacing, rng, spec)
               for _ in range(int(rng.integers(1, spec.max_lesions + 1))))
