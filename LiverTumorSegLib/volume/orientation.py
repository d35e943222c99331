"""Bring any voxel grid to the canonical RAS orientation by axis permutations and flips only.

In the canonical array, index i runs towards the patient's right, j towards anterior and k towards
superior, so `array[:, :, k]` is an axial slice with a fixed in-plane orientation. Only exact axis
permutations and flips are applied (no interpolation), so mapping a result back is voxel-exact.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

OBLIQUE_WARNING_DEGREES = 30.0


@dataclass(frozen=True)
class Reorientation:
    """The permutation and flips that take an input array to canonical RAS, and back."""

    input_shape: tuple[int, ...]
    input_affine: np.ndarray
    axes: tuple[int, int, int]  # canonical axis n is input axis axes[n]
    flips: tuple[bool, bool, bool]  # canonical axis n is reversed
    obliquity_degrees: float

    def to_canonical(self, array: np.ndarray) -> np.ndarray:
        """A view of `array` (input order; trailing axes beyond the third kept) in canonical order."""
        view = np.transpose(array, self.axes + tuple(range(3, array.ndim)))
        slices = tuple(slice(None, None, -1) if f else slice(None) for f in self.flips)
        return view[slices]

    def from_canonical(self, array: np.ndarray) -> np.ndarray:
        """A contiguous copy of `array` (canonical order; trailing axes kept) in the input's order.
        Works on the whole grid and on any box of it."""
        slices = tuple(slice(None, None, -1) if f else slice(None) for f in self.flips)
        order = tuple(int(a) for a in np.argsort(self.axes)) + tuple(range(3, array.ndim))
        return np.ascontiguousarray(np.transpose(array[slices], order))

    def input_region(self, canonical: tuple[slice, slice, slice]) -> tuple[slice, slice, slice]:
        """Where a box of the canonical grid (slices with start and stop) lies on the input grid."""
        region: list[slice] = [slice(0)] * 3
        for n, (box, flipped) in enumerate(zip(canonical, self.flips)):
            length = self.input_shape[self.axes[n]]
            region[self.axes[n]] = slice(length - box.stop, length - box.start) if flipped else box
        return tuple(region)  # type: ignore[return-value]

    @property
    def canonical_affine(self) -> np.ndarray:
        """Voxel-to-RAS affine of the canonical array."""
        affine = self.input_affine[:, list(self.axes) + [3]].copy()
        shape = np.asarray(self.input_shape)[list(self.axes)]
        for n, flipped in enumerate(self.flips):
            if flipped:
                affine[:3, 3] += affine[:3, n] * (shape[n] - 1)
                affine[:3, n] *= -1
        return affine

    @property
    def canonical_spacing(self) -> tuple[float, float, float]:
        return tuple(float(s) for s in np.linalg.norm(self.canonical_affine[:3, :3], axis=0))


def plan_reorientation(shape: tuple[int, ...], affine: np.ndarray) -> Reorientation:
    """Find the axis permutation and flips that best align the grid with RAS.

    Warns when the grid is more than `OBLIQUE_WARNING_DEGREES` away from the nearest axes, since the
    model then sees tilted slices.
    """
    affine = np.asarray(affine, dtype=np.float64)
    directions = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    axes, flips = _nearest_axes(directions)
    cosines = [abs(directions[world, axes[world]]) for world in range(3)]
    obliquity = float(np.degrees(np.arccos(np.clip(min(cosines), -1.0, 1.0))))
    if obliquity > OBLIQUE_WARNING_DEGREES:
        warnings.warn(f"The volume is oblique: its axes are up to {obliquity:.0f} degrees from the "
                      "nearest patient axes. The model sees tilted slices and may be less accurate; "
                      "resample the volume to an axial grid for best results.", stacklevel=2)
    return Reorientation(tuple(int(s) for s in shape), affine, axes, flips, obliquity)


def _nearest_axes(directions: np.ndarray) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]]:
    """Assign each world axis (R, A, S) to the voxel axis whose direction is closest to it."""
    remaining = [0, 1, 2]
    chosen: dict[int, int] = {}
    # Assign the best-aligned pair first so that a strongly oblique grid still gets a permutation.
    for _ in range(3):
        world, voxel = max(((w, v) for w in range(3) if w not in chosen for v in remaining),
                           key=lambda wv: abs(directions[wv[0], wv[1]]))
        chosen[world] = voxel
        remaining.remove(voxel)
    axes = tuple(chosen[w] for w in range(3))
    flips = tuple(bool(directions[w, chosen[w]] < 0) for w in range(3))
    return axes, flips  # type: ignore[return-value]
