"""Clinical statistics of a liver/tumor label map: volumes, burden and per-lesion measurements.

Distances are measured between voxel centres in RAS millimetres (through the affine, so anisotropic
and oblique grids are handled). Axial diameters are taken within one axial slice of the canonical grid.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import pdist

from .labels import LIVER, TUMOR, boundary, label_components
from .volume.checks import as_scalar_3d
from .volume.orientation import plan_reorientation
from .volume.space import Volume

# Bands on the longest axial diameter (mm), lower bound included: [0, 10), [10, 20), [20, 50), [50, inf).
SIZE_CATEGORIES = ((10.0, "<10 mm"), (20.0, "10-20 mm"), (50.0, "20-50 mm"), (np.inf, ">50 mm"))


def size_category(diameter_mm: float) -> str:
    """The size band of a lesion's longest axial diameter."""
    return next(name for upper, name in SIZE_CATEGORIES if diameter_mm < upper)


def max_distance_mm(points_mm: np.ndarray) -> float:
    """Largest distance between any two points (convex hull first, so large sets stay fast)."""
    if len(points_mm) < 2:
        return 0.0
    if len(points_mm) > 8:
        try:
            points_mm = points_mm[ConvexHull(points_mm, qhull_options="QJ").vertices]
        except (QhullError, ValueError):
            pass
    return float(pdist(points_mm).max())


def _to_mm(affine: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def lesion_measurements(lesion: np.ndarray, offset: np.ndarray, affine: np.ndarray) -> dict:
    """Diameters and centroid of one lesion given as a cropped mask and its (i, j, k) offset."""
    surface = np.argwhere(boundary(lesion)) + offset
    axial = 0.0
    for local_k in range(lesion.shape[2]):
        in_slice = np.argwhere(boundary(lesion[:, :, local_k]))
        ijk = np.column_stack([in_slice, np.full(len(in_slice), local_k)]) + offset
        axial = max(axial, max_distance_mm(_to_mm(affine, ijk)))
    centroid = _to_mm(affine, np.asarray(ndimage.center_of_mass(lesion))[None] + offset)[0]
    return {
        "longest_axial_diameter_mm": axial,
        "max_diameter_mm": max_distance_mm(_to_mm(affine, surface)),
        "centroid_ras_mm": [round(float(c), 2) for c in centroid],
    }


def compute_statistics(labels: np.ndarray, affine: np.ndarray, hu: np.ndarray,
                       confidence: np.ndarray | None = None) -> dict:
    """Statistics of a canonical label map (axis 2 axial).

    `confidence` holds the model's softmax probability of the chosen class scaled to 0..255 (uint8).
    """
    voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
    organ = labels > 0
    tumor = labels == TUMOR
    liver_ml = float(np.count_nonzero(organ)) * voxel_ml
    tumor_ml = float(np.count_nonzero(tumor)) * voxel_ml
    components, count = label_components(tumor)
    lesions = []
    for index, box in enumerate(ndimage.find_objects(components), start=1):
        lesion = components[box] == index
        offset = np.array([s.start for s in box])
        measured = lesion_measurements(lesion, offset, affine)
        lesions.append({
            "id": index,
            "volume_ml": round(float(np.count_nonzero(lesion)) * voxel_ml, 4),
            "longest_axial_diameter_mm": round(measured["longest_axial_diameter_mm"], 2),
            "max_diameter_mm": round(measured["max_diameter_mm"], 2),
            "centroid_ras_mm": measured["centroid_ras_mm"],
            "mean_hu": round(float(np.asarray(hu[box])[lesion].mean()), 1),
            "mean_confidence": _mean_confidence(confidence, box, lesion),
            "size_category": size_category(measured["longest_axial_diameter_mm"]),
        })
    lesions.sort(key=lambda lesion: -lesion["volume_ml"])
    for new_id, lesion in enumerate(lesions, start=1):
        lesion["id"] = new_id
    return {
        "liver_volume_ml": round(liver_ml, 3),
        "liver_parenchyma_volume_ml": round(float(np.count_nonzero(labels == LIVER)) * voxel_ml, 3),
        "tumor_volume_ml": round(tumor_ml, 3),
        "tumor_count": count,
        "tumor_burden_percent": round(100.0 * tumor_ml / liver_ml, 3) if liver_ml else 0.0,
        "confidence": _mean_confidence(confidence, (slice(None),) * 3, organ),
        "size_categories": [name for _, name in SIZE_CATEGORIES],
        "lesions": lesions,
    }


def statistics_of_labels(labels: np.ndarray, volume: Volume) -> dict:
    """`compute_statistics` of a label map on `volume`'s own grid (an edited segmentation, say):
    oriented to canonical RAS as the pipeline does and measured inside the labels' bounding box, so
    an unedited segmentation gives the pipeline's numbers. There is no model confidence for a label
    map: `confidence` and each lesion's `mean_confidence` are None."""
    with warnings.catch_warnings():  # the pipeline already warned about an oblique grid
        warnings.simplefilter("ignore")
        orientation = plan_reorientation(labels.shape, volume.affine)
    canonical = orientation.to_canonical(labels)
    hu = orientation.to_canonical(as_scalar_3d(volume.array))
    found = ndimage.find_objects((canonical > 0).view(np.uint8))
    box = found[0] if found else (slice(0, 1),) * 3
    affine = orientation.canonical_affine.copy()
    affine[:3, 3] += affine[:3, :3] @ np.array([s.start for s in box], dtype=float)
    return compute_statistics(np.ascontiguousarray(canonical[box]), affine, hu[box])


def _mean_confidence(confidence: np.ndarray | None, box: tuple, mask: np.ndarray) -> float | None:
    if confidence is None or not mask.any():
        return None
    return round(float(confidence[box][mask].mean()) / 255.0, 4)
