"""A bank of real liver-lesion shapes, for synthetic lesions shaped like real ones.

Read from label maps without CT (`../shared/data/ircadb_masks`: about 110 tumours of 13 patients):
each 6-connected tumour component becomes a normalised distance field on a small cube, so that the
lesion synthesis can sample it exactly as it evaluates an ellipsoid. In the field, 1 is the lesion's
surface, values below 1 lie inside, above 1 outside; lengths are in units of the lesion's
equivalent radius (the radius of the sphere of its volume), over ±`EXTENT` radii around its centroid.
Each shape keeps its real equivalent radius, so the sizes are real too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from ..errors import InputVolumeError
from ..labels import TUMOR, label_components
from ..volume.checks import as_scalar_3d
from ..volume.io import read_volume_file
from ..volume.orientation import plan_reorientation

GRID = 32  # points along each side of a shape's cube
EXTENT = 2.5  # the cube spans ±EXTENT equivalent radii around the centroid
MIN_VOLUME_MM3 = 100.0  # the engine's smallest reported lesion


@dataclass
class LesionShapeBank:
    """Normalised distance fields (K, 1, GRID, GRID, GRID) and real equivalent radii (K,) in mm;
    axes of the cube: canonical i, j, k (patient right, anterior, superior)."""

    fields: torch.Tensor
    radii_mm: torch.Tensor
    source: str

    def __len__(self) -> int:
        return len(self.radii_mm)

    def to(self, device: torch.device) -> LesionShapeBank:
        return LesionShapeBank(self.fields.to(device), self.radii_mm.to(device), self.source)


def _distance_field(mask: np.ndarray, spacing: np.ndarray) -> tuple[np.ndarray, float]:
    """The normalised distance field of one lesion mask on the bank's cube, and its equivalent
    radius (mm)."""
    radius = float((3.0 * mask.sum() * np.prod(spacing) / (4.0 * np.pi)) ** (1.0 / 3.0))
    pad = int(np.ceil(EXTENT * radius / spacing.min())) + 1
    padded = np.pad(mask, pad)
    signed = (ndimage.distance_transform_edt(~padded, sampling=spacing)
              - ndimage.distance_transform_edt(padded, sampling=spacing))
    centre = np.asarray(ndimage.center_of_mass(padded))
    axis = np.linspace(-EXTENT * radius, EXTENT * radius, GRID)
    points = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"))  # mm offsets from the centroid
    coordinates = centre[:, None, None, None] + points / spacing[:, None, None, None]
    field = ndimage.map_coordinates(signed, coordinates.reshape(3, -1), order=1, mode="nearest")
    return (1.0 + field.reshape(GRID, GRID, GRID) / radius).astype(np.float32), radius


def load_lesion_shapes(folder: str | Path) -> LesionShapeBank:
    """Every tumour component of at least `MIN_VOLUME_MM3` in the label maps (`*_label.nii.gz`,
    label 2 = tumour) of a folder, in canonical orientation."""
    folder = Path(folder)
    paths = sorted(folder.glob("*_label.nii*"))
    fields, radii = [], []
    for path in paths:
        volume = read_volume_file(path)
        plan = plan_reorientation(volume.array.shape, volume.affine)
        tumour = plan.to_canonical(as_scalar_3d(np.asarray(volume.array))) == TUMOR
        spacing = np.asarray(plan.canonical_spacing)
        components, count = label_components(tumour)
        for index, found in enumerate(ndimage.find_objects(components), start=1):
            mask = components[found] == index
            if mask.sum() * np.prod(spacing) < MIN_VOLUME_MM3:
                continue
            field, radius = _distance_field(mask, spacing)
            fields.append(field)
            radii.append(radius)
    if not fields:
        raise InputVolumeError(f"No tumour of at least {MIN_VOLUME_MM3:g} mm³ in the label maps of "
                               f"{folder} (*_label.nii.gz with label 2 = tumour).")
    return LesionShapeBank(torch.from_numpy(np.stack(fields))[:, None],
                           torch.tensor(radii, dtype=torch.float32),
                           f"{len(fields)} tumours of {len(paths)} label maps in {folder}")
