"""Where the slices of a DICOM series lie: sort them along the slice normal, refuse stacks that are not
one evenly spaced block of parallel, untilted slices, and build the voxel-to-RAS affine.

Tolerances (README, "DICOM input"): direction cosines may differ by 0.001 between slices; each step
between neighbouring slices may differ from the median step by 0.1 mm + 5% of it; no slice may be
shifted in-plane from the stack's axis by more than half a pixel (gantry tilt).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DicomSeriesError
from ..volume.space import ras_affine

ORIENTATION_TOLERANCE = 1e-3
STEP_TOLERANCE_MM = 0.1
STEP_TOLERANCE_FRACTION = 0.05


@dataclass(frozen=True)
class SliceStack:
    """The slices' order along the normal (indices into the input lists) and the stack's affine,
    whose voxel axes are DICOM column, row and slice (as the NIfTI conversion of a series)."""

    order: np.ndarray
    affine: np.ndarray


def slice_stack(orientations: np.ndarray, positions: np.ndarray, pixel_spacing: tuple[float, float],
                name: str) -> SliceStack:
    """Sort slices given their ImageOrientationPatient (n, 6), ImagePositionPatient (n, 3) and
    PixelSpacing (row spacing, column spacing); raise `DicomSeriesError` for a stack that is not a
    regular grid."""
    orientations = np.asarray(orientations, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.float64)
    if len(positions) < 2:
        raise DicomSeriesError(f"{name}: the series has {len(positions)} slice; a 3D CT series of "
                               "many slices is needed.")
    spread = float(np.abs(orientations - orientations[0]).max())
    if spread > ORIENTATION_TOLERANCE:
        raise DicomSeriesError(f"{name}: the slices are not parallel (ImageOrientationPatient "
                               f"differs by up to {spread:.3f} between slices); give a series of "
                               "parallel slices, or resample it to one grid.")
    row, column = orientations[0, :3], orientations[0, 3:]
    row, column = row / np.linalg.norm(row), column / np.linalg.norm(column)
    normal = np.cross(row, column)
    order = np.argsort(positions @ normal, kind="stable")
    positions = positions[order]
    _check_steps(positions @ normal, name)
    _check_tilt(positions, normal, min(pixel_spacing), name)
    steps = np.stack([row * pixel_spacing[1], column * pixel_spacing[0],
                      (positions[-1] - positions[0]) / (len(positions) - 1)])
    return SliceStack(order, ras_affine("LPS", steps, positions[0]))


def _check_steps(distances: np.ndarray, name: str) -> None:
    """Refuse duplicate positions, missing slices and uneven spacing (distances sorted, mm)."""
    steps = np.diff(distances)
    if not np.any(steps > STEP_TOLERANCE_MM):
        raise DicomSeriesError(f"{name}: all {len(distances)} slices lie at the same position; "
                               "this is not a 3D series.")
    median = float(np.median(steps[steps > STEP_TOLERANCE_MM]))
    tolerance = STEP_TOLERANCE_MM + STEP_TOLERANCE_FRACTION * median
    duplicates = np.flatnonzero(steps <= tolerance)
    if len(duplicates):
        raise DicomSeriesError(
            f"{name}: {len(duplicates)} duplicate slice(s): two slices at "
            f"{distances[duplicates[0]]:.2f} mm along the slice normal; remove the duplicates (a "
            "second reconstruction, or a copied file) or export the series again.")
    multiples = np.round(steps / median)
    gaps = np.flatnonzero((multiples >= 2) & (np.abs(steps - multiples * median) <= tolerance))
    if len(gaps):
        first = gaps[0]
        raise DicomSeriesError(
            f"{name}: {int(np.sum(multiples[gaps] - 1))} slice(s) missing, the first between "
            f"{distances[first]:.2f} and {distances[first + 1]:.2f} mm along the slice normal (the "
            f"others are {median:.2f} mm apart); the series is incomplete: export it again.")
    uneven = np.abs(steps - median) > tolerance
    if np.any(uneven):
        raise DicomSeriesError(
            f"{name}: uneven slice spacing (steps from {steps.min():.2f} to {steps.max():.2f} mm; "
            f"allowed: the median {median:.2f} mm ± {tolerance:.2f} mm, i.e. "
            f"{STEP_TOLERANCE_MM:g} mm + {100 * STEP_TOLERANCE_FRACTION:g}%); resample the series "
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
