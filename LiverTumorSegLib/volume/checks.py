"""Checks that an input really is a 3D CT in Hounsfield units before anything runs on it."""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import InputVolumeError, IntensityError

AIR_HU = -500.0
MIN_AIR_FRACTION = 0.001
MAX_MEDIAN_HU = 500.0
SAMPLE_VOXELS = 1_000_000


def as_scalar_3d(array: np.ndarray, name: str = "The volume") -> np.ndarray:
    """Return `array` as a 3D scalar volume (dropping trailing length-1 axes) or raise."""
    if array.dtype.fields is not None:
        raise InputVolumeError(f"{name} is an RGB/structured image, not a CT; give a scalar "
                               "(grey-level) CT volume.")
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise InputVolumeError(f"{name} has {array.ndim} dimensions {tuple(array.shape)}; a 3D "
                               "scalar CT volume is needed (for a 4D series, pick one time point; "
                               "for an RGB image, use the original grey-level CT).")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise InputVolumeError(f"{name} has voxel type {array.dtype}; a numeric CT is needed.")
    if min(array.shape) == 0:
        raise InputVolumeError(f"{name} is empty (shape {tuple(array.shape)}).")
    return array


def check_ct_intensities(array: np.ndarray, force: bool = False, name: str = "The volume",
                         cause: str | None = None) -> None:
    """Refuse volumes with NaN/inf, constant volumes and intensities that are not CT HU.

    `name` names the input in messages (its file or folder); `cause` replaces the guess at why the
    values are not HU where the reader knows (e.g. a DICOM series without RescaleIntercept). With
    `force`, non-HU intensities only warn; without, `IntensityError` says what to convert, and
    each caller adds how it forces a run. Works on a strided subsample so that a large volume is
    never copied whole.
    """
    step = max(1, int(np.ceil((array.size / SAMPLE_VOXELS) ** (1 / 3))))
    sample = np.asarray(array[::step, ::step, ::step], dtype=np.float32)
    if np.issubdtype(array.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise InputVolumeError(f"{name} contains {bad} NaN or infinite voxels; fix or mask "
                                   "them (e.g. set them to -1024 HU) before segmenting.")
    low, high = float(array.min()), float(array.max())
    if low == high:
        raise InputVolumeError(f"{name} is constant (every voxel is {low:g}); it holds no image.")
    air_fraction = float(np.mean(sample <= AIR_HU))
    median = float(np.median(sample))
    if air_fraction < MIN_AIR_FRACTION or median > MAX_MEDIAN_HU:
        message = (f"{name} does not look like a CT in Hounsfield units (range {low:g} to {high:g}, "
                   f"median {median:g}, {100 * air_fraction:.2f}% of voxels at or below "
                   f"{AIR_HU:g} HU where a CT has air). "
                   + (cause or "It may be an MRI, or a CT stored without its rescale "
                               "slope/intercept."))
        if not force:
            raise IntensityError(message + " Convert it to Hounsfield units first.")
        warnings.warn(message + " Continuing because force was given.", stacklevel=2)


def check_slice_count(n_slices: int, context_slices: int) -> None:
    """The 2.5D input needs `2 * context + 1` axial slices at least."""
    needed = 2 * context_slices + 1
    if n_slices < needed:
        raise InputVolumeError(f"The volume has {n_slices} axial slice(s); the model reads "
                               f"{needed} neighbouring slices at a time, so at least {needed} "
                               "are needed.")


def check_affine(affine: np.ndarray) -> None:
    """The voxel-to-RAS matrix must be finite and invertible (non-zero voxel sizes)."""
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)) or \
            abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputVolumeError("The volume's voxel-to-world matrix (affine / IJK-to-RAS) is invalid: "
                               "not finite or with a zero voxel size. Fix the file's header (spacing "
                               "and direction) and try again.")
