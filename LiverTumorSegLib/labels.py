"""Label values, class names and mask geometry shared by every module (one home for all).

Importing this module needs only numpy, so the Slicer module can read a model card before scipy or
torch are installed.
"""

from __future__ import annotations

import numpy as np

BACKGROUND, LIVER, TUMOR = 0, 1, 2
CLASS_NAMES = ("background", "liver", "tumor")

# 6-connectivity (faces only) in 3D: the definition of one lesion / one liver component everywhere.
CONNECTIVITY = np.zeros((3, 3, 3), dtype=bool)
CONNECTIVITY[1, 1, :] = CONNECTIVITY[1, :, 1] = CONNECTIVITY[:, 1, 1] = True


def boundary(mask: np.ndarray) -> np.ndarray:
    """Voxels of a 2D or 3D mask that touch the outside (face connectivity)."""
    from scipy import ndimage

    return mask & ~ndimage.binary_erosion(mask)


def bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """The smallest box holding every True voxel, None for an empty mask."""
    box = []
    for axis in range(mask.ndim):
        present = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        if not len(present):
            return None
        box.append(slice(int(present[0]), int(present[-1]) + 1))
    return tuple(box)


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """6-connected components of a mask, numbered from 1, in 16-bit labels when they fit (half the
    memory of scipy's default) and 32-bit otherwise."""
    from scipy import ndimage

    try:
        return ndimage.label(mask, structure=CONNECTIVITY, output=np.uint16)
    except RuntimeError:  # more components than 16 bits hold
        return ndimage.label(mask, structure=CONNECTIVITY, output=np.int32)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 6-connected component of a boolean mask (empty stays empty); labelled inside the
    mask's bounding box only, so memory follows the object, not the array."""
    out = np.zeros(mask.shape, dtype=bool)
    box = bounding_box(mask)
    if box is None:
        return out
    components, count = label_components(mask[box])
    if count <= 1:
        out[box] = components > 0
        return out
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    out[box] = components == int(np.argmax(sizes))
    return out
