"""Spacing-aware clean-up of a raw label map (0 background, 1 liver, 2 tumor)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .labels import TUMOR, bounding_box, label_components, largest_component
from .model.card import PostprocessingSpec


def ellipsoid_structure(radius_mm: float, spacing: tuple[float, float, float]) -> np.ndarray:
    """A ball of `radius_mm` on an anisotropic voxel grid (at least the centre voxel)."""
    half = [int(np.floor(radius_mm / s)) for s in spacing]
    grids = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    distance = sum((g * s / radius_mm) ** 2 for g, s in zip(grids, spacing)) if radius_mm > 0 else 0
    return np.asarray(distance <= 1.0)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with every background region that does not reach the array's border filled
    (6-connected background, as `scipy.ndimage.binary_fill_holes`, in one labelling pass)."""
    background, _ = label_components(~mask)
    border = np.concatenate([np.take(background, index, axis=axis).ravel()
                             for axis in range(mask.ndim) for index in (0, -1)])
    outside = np.zeros(background.max() + 1, dtype=bool)
    outside[border] = True
    return mask | ~outside[background]  # label 0 is the mask itself


def _closing(mask: np.ndarray, ball: np.ndarray) -> np.ndarray:
    """Binary closing as if the mask continued with background beyond the array's edges (the
    array may be a crop of a larger volume)."""
    pad = [(h // 2, h // 2) for h in ball.shape]
    closed = ndimage.binary_closing(np.pad(mask, pad), structure=ball)
    return closed[tuple(slice(p, p + n) for (p, _), n in zip(pad, mask.shape))]


def remove_small_components(mask: np.ndarray, min_voxels: float) -> np.ndarray:
    """Drop 6-connected components with fewer than `min_voxels` voxels (in place; returns `mask`)."""
    box = bounding_box(mask)
    if box is None:
        return mask
    components, _ = label_components(mask[box])
    sizes = np.bincount(components.ravel())
    for index, found in enumerate(ndimage.find_objects(components), start=1):
        if found is not None and sizes[index] < min_voxels:
            inner = tuple(slice(b.start + f.start, b.start + f.stop) for b, f in zip(box, found))
            mask[inner][components[found] == index] = False
    return mask


def postprocess(labels: np.ndarray, spacing: tuple[float, float, float],
                spec: PostprocessingSpec) -> np.ndarray:
    """Apply the enabled steps in order: closing, largest liver, 3D hole filling, tumor inside
    liver, small-lesion removal. Returns a new uint8 label map."""
    organ = labels > 0
    tumor = labels == TUMOR
    if spec.closing_radius_mm > 0:
        ball = ellipsoid_structure(spec.closing_radius_mm, spacing)
        organ = _closing(organ, ball)
        tumor = _closing(tumor, ball) & organ
    if spec.keep_largest_liver:
        organ = largest_component(organ)
    if spec.fill_liver_holes:
        organ = fill_holes(organ)
    if spec.tumor_inside_liver_only:
        tumor &= organ
    else:
        organ |= tumor
    if spec.min_lesion_volume_mm3 > 0:
        tumor = remove_small_components(tumor, spec.min_lesion_volume_mm3 / float(np.prod(spacing)))
    out = organ.astype(np.uint8)
    out[tumor] = TUMOR
    return out

