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


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 6-connected component of a boolean mask (empty stays empty)."""
    from scipy import ndimage

    components, count = ndimage.label(mask, structure=CONNECTIVITY)
    if count <= 1:
        return components > 0
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    return components == int(np.argmax(sizes))
