"""A volume in patient space: voxels with their voxel-to-RAS affine, and the patient spaces in which
NRRD headers and DICOM series give their geometry (converted to RAS by one function).

Both readers, `volume.io` (NIfTI, NRRD) and `dicom` (series), build on this module; it imports
neither.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Patient spaces (NRRD's names and DICOM's LPS) as sign flips from the named space to RAS.
SPACE_TO_RAS = {
    "left-posterior-superior": (-1.0, -1.0, 1.0),
    "right-anterior-superior": (1.0, 1.0, 1.0),
    "left-anterior-superior": (-1.0, 1.0, 1.0),
    "LPS": (-1.0, -1.0, 1.0),
    "RAS": (1.0, 1.0, 1.0),
    "LAS": (-1.0, 1.0, 1.0),
}


@dataclass
class Volume:
    """A voxel array indexed (i, j, k) and the 4x4 affine mapping (i, j, k, 1) to RAS millimetres."""

    array: np.ndarray
    affine: np.ndarray

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))


def ras_affine(space: str, axis_steps: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """The voxel-to-RAS affine of a grid given in a patient space (e.g. "LPS"): row n of
    `axis_steps` is the step of voxel axis n in that space (mm), `origin` the first voxel's centre."""
    flips = np.diag(SPACE_TO_RAS[space])
    affine = np.eye(4)
    affine[:3, :3] = flips @ np.asarray(axis_steps, dtype=np.float64).T
    affine[:3, 3] = flips @ np.asarray(origin, dtype=np.float64)
    return affine
