"""A PNG grid of synthetic lesions next to real ones, to judge the synthesis by eye.

    python -m LiverTumorSegLib.training.preview DATA_DIR OUT.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from ..labels import TUMOR
from ..reporting.figures import DISPLAY_WINDOW_HU, TUMOR_COLOUR, _pyplot, _save, radiological_view
from .dataset import cache_case, find_cases
from .synthetic_tumors import insert_lesions

CROP_MM = 90.0


def _crop(hu: np.ndarray, labels: np.ndarray, centre: tuple[int, int], spacing) -> tuple:
    half = [int(CROP_MM / 2 / s) for s in spacing[:2]]
    box = tuple(slice(max(0, c - h), c + h) for c, h in zip(centre, half))
    return hu[box], labels[box]


def real_lesion_slices(cases, count: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Axial crops through the largest real lesions."""
    crops = []
    for case in cases:
        components, n = ndimage.label(case.labels == TUMOR)
        sizes = np.bincount(components.ravel())[1:]
        for index in np.argsort(sizes)[::-1][: count]:
            k, i, j = (int(round(c)) for c in ndimage.center_of_mass(components == index + 1))
            crops.append((f"real: {case.name}",) + _crop(np.asarray(case.hu[k]),
                                                         np.asarray(case.labels[k]), (i, j),
                                                         case.spacing))
    return crops[:count]


def synthetic_lesion_slices(case, count: int, seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Axial crops through lesions synthesised (by the training code) into a tumor-free liver."""
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    middle_third = case.liver_slices[len(case.liver_slices) // 4: -len(case.liver_slices) // 4]
    crops = []
    while len(crops) < count:
        k = int(rng.choice(middle_third))
        hu = torch.from_numpy(np.asarray(case.hu[k - 1: k + 2], dtype=np.float32))[None]
        labels = torch.from_numpy(np.array(case.labels[k - 1: k + 2]))[None]
        insert_lesions(hu, labels, case.spacing, generator)
        tumor = labels[0, 1].numpy() == TUMOR
        if tumor.any():
            i, j = (int(round(c)) for c in ndimage.center_of_mass(tumor))
            crops.append((f"synthetic: {case.name}",) + _crop(hu[0, 1].numpy(), labels[0, 1].numpy(),
                                                              (i, j), case.spacing))
    return crops


def save_lesion_preview(data_dir: Path, path: Path, count: int = 6, seed: int = 0) -> None:
    """Two rows of `count` crops each: real lesions, then synthetic ones."""
    cases = {c.name: c for c in find_cases(data_dir)}
    cache = Path(path).parent / ".preview_cache"
    real = [cache_case(cases[n], cache) for n in ("ircadb_17", "lits117_crop") if n in cases]
    host = cache_case(cases["ircadb_07"], cache)
    rows = [real_lesion_slices(real, count), synthetic_lesion_slices(host, count, seed)]
    plt = _pyplot()
    figure, axes = plt.subplots(2, count, figsize=(2.2 * count, 4.8), squeeze=False)
    for row, crops in zip(axes, rows):
        for axis, (title, hu, labels) in zip(row, crops):
            axis.imshow(radiological_view(hu), cmap="gray", vmin=DISPLAY_WINDOW_HU[0],
                        vmax=DISPLAY_WINDOW_HU[1])
            axis.contour(radiological_view(labels == TUMOR), levels=[0.5], colors=[TUMOR_COLOUR],
                         linewidths=0.6)
            axis.set_title(title, fontsize=7)
            axis.axis("off")
    figure.suptitle("Top: real lesions (reference labels). Bottom: synthetic lesions inserted into a "
                    "tumor-free liver.", fontsize=9)
    figure.tight_layout()
    _save(figure, Path(path))


if __name__ == "__main__":
    save_lesion_preview(Path(sys.argv[1]), Path(sys.argv[2]))
