"""Where the slices of a DICOM series lie: sort them along the slice normal, refuse stacks that are not
one evenly spaced block of untilted slices, and build the voxel-to-RAS affine. Refusals name the
files concerned.

Tolerances (README, "DICOM input"): direction cosines may differ by 0.001 between slices (images
beyond it are outside the stack, `selection`); each step between neighbouring slices may differ from
the median step by 0.1 mm + 5% of it; no slice may be shifted in-plane from the stack's axis by more
than half a pixel (gantry tilt).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import DicomSeriesError
from ..volume.space import ras_affine

ORIENTATION_TOLERANCE = 1e-3
STEP_TOLERANCE_MM = 0.1
STEP_TOLERANCE_FRACTION = 0.05
_STEP_SIZES_SHOWN = 6


@dataclass(frozen=True)
class SliceStack:
    """The slices' order along the normal (indices into the input lists) and the stack's affine,
    whose voxel axes are DICOM column, row and slice (as the NIfTI conversion of a series)."""

    order: np.ndarray
    affine: np.ndarray


def slice_stack(orientation: Sequence[float], positions: np.ndarray,
                pixel_spacing: tuple[float, float], name: str, files: Sequence[str]) -> SliceStack:
    """Sort parallel slices given their common ImageOrientationPatient (6 values), their
    ImagePositionPatient (n, 3), PixelSpacing (row spacing, column spacing) and file names (for the
    messages); raise `DicomSeriesError` for a stack that is not a regular grid."""
    positions = np.asarray(positions, dtype=np.float64)
    if len(positions) < 2:
        raise DicomSeriesError(f"{name}: the series has {len(positions)} slice; a 3D CT series of "
                               "many slices is needed.")
    orientation = np.asarray(orientation, dtype=np.float64)
    row, column = orientation[:3], orientation[3:]
    row, column = row / np.linalg.norm(row), column / np.linalg.norm(column)
    normal = np.cross(row, column)
    order = np.argsort(positions @ normal, kind="stable")
    positions = positions[order]
    _check_steps(positions @ normal, [files[i] for i in order], name)
    _check_tilt(positions, normal, min(pixel_spacing), name)
    steps = np.stack([row * pixel_spacing[1], column * pixel_spacing[0],
                      (positions[-1] - positions[0]) / (len(positions) - 1)])
    return SliceStack(order, ras_affine("LPS", steps, positions[0]))


def _step_sizes(steps: np.ndarray) -> str:
    """The step sizes that occur (to 0.01 mm), each with how often: the most frequent ones, in
    increasing order."""
    sizes, counts = np.unique(np.round(steps, 2), return_counts=True)
    shown = sorted(np.argsort(-counts, kind="stable")[:_STEP_SIZES_SHOWN])
    text = ", ".join(f"{sizes[i]:.2f} mm ({counts[i]}x)" for i in shown)
    others = len(sizes) - len(shown)
    return text + (f" and {others} other step size(s)" if others else "")


def _check_steps(distances: np.ndarray, files: list[str], name: str) -> None:
    """Refuse slices at one position, missing slices and uneven spacing (distances sorted, mm;
    `files` in the same order)."""
    steps = np.diff(distances)
    if not np.any(steps > STEP_TOLERANCE_MM):
        raise DicomSeriesError(f"{name}: all {len(distances)} slices lie at the same position; "
                               "this is not a 3D series.")
    median = float(np.median(steps[steps > STEP_TOLERANCE_MM]))
    tolerance = STEP_TOLERANCE_MM + STEP_TOLERANCE_FRACTION * median
    same = np.flatnonzero(steps <= tolerance)
    if len(same):
        first = same[0]
        more = f" ({len(same) - 1} more such pair(s))" if len(same) > 1 else ""
        raise DicomSeriesError(
            f"{name}: {files[first]} and {files[first + 1]} are different slices at the same "
            f"position ({distances[first]:.2f} mm along the slice normal, {steps[first]:.2f} mm "
            f"apart){more}; remove one of each pair (a second reconstruction, or a copy saved "
            "under a new SOPInstanceUID) or export the series again.")
    multiples = np.round(steps / median)
    gaps = np.flatnonzero((multiples >= 2) & (np.abs(steps - multiples * median) <= tolerance))
    if len(gaps):
        first = gaps[0]
        raise DicomSeriesError(
            f"{name}: {int(np.sum(multiples[gaps] - 1))} slice(s) missing, the first between "
            f"{files[first]} ({distances[first]:.2f} mm) and {files[first + 1]} "
            f"({distances[first + 1]:.2f} mm along the slice normal; the others are {median:.2f} "
            "mm apart); the series is incomplete: export it again.")
    if np.any(np.abs(steps - median) > tolerance):
        raise DicomSeriesError(
            f"{name}: uneven slice spacing: the steps between neighbouring slices are "
            f"{_step_sizes(steps)}, where every step must be the same within "
            f"{STEP_TOLERANCE_MM:g} mm + {100 * STEP_TOLERANCE_FRACTION:g}%; resample the series "
            "to even spacing first.")


def _check_tilt(positions: np.ndarray, normal: np.ndarray, pixel_mm: float, name: str) -> None:
    """Refuse slices shifted in-plane from the first slice's normal by more than half a pixel."""
    offsets = positions - positions[0]
    along = offsets @ normal
    in_plane = np.linalg.norm(offsets - np.outer(along, normal), axis=1)
    if in_plane.max() > pixel_mm / 2:
        degrees = float(np.degrees(np.arctan2(in_plane[-1], abs(along[-1]))))
        raise DicomSeriesError(
            f"{name}: gantry tilt of about {degrees:.1f} degrees (slices shifted in-plane by up to "
            f"{in_plane.max():.1f} mm along the stack, more than half a pixel); resample the series "
            "to a rectangular grid first (e.g. dcm2niix corrects gantry tilt).")
