"""PNG figures: an axial montage with liver and tumor outlines, and per-case Dice bar charts."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from ..segments import LIVER_SEGMENT, TUMOR_SEGMENT
from ..volume.orientation import plan_reorientation

LIVER_COLOUR = LIVER_SEGMENT.colour_unit
TUMOR_COLOUR = TUMOR_SEGMENT.colour_unit
DISPLAY_WINDOW_HU = (-160.0, 240.0)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def radiological_view(axial: np.ndarray) -> np.ndarray:
    """A canonical axial slice (i = right, j = anterior) as displayed by radiologists: patient's
    right on the image's left, anterior at the top."""
    return axial[::-1, ::-1].T


def save_overlay_montage(path: Path, hu: np.ndarray, labels: np.ndarray, affine: np.ndarray,
                         title: str, n_slices: int = 12) -> None:
    """Montage of axial slices through the liver with liver and tumor outlines."""
    plt = _pyplot()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the segmentation run already reported obliquity
        orientation = plan_reorientation(hu.shape, affine)
    hu_c, labels_c = orientation.to_canonical(hu), orientation.to_canonical(labels)
    spacing = orientation.canonical_spacing
    with_liver = np.flatnonzero((labels_c > 0).any(axis=(0, 1)))
    candidates = with_liver if len(with_liver) else np.arange(hu_c.shape[2])
    chosen = np.unique(candidates[np.linspace(0, len(candidates) - 1, n_slices).round().astype(int)])
    columns = 4
    rows = int(np.ceil(len(chosen) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows), squeeze=False)
    aspect = spacing[1] / spacing[0]
    for axis, k in zip(axes.ravel(), chosen):
        axis.imshow(radiological_view(hu_c[:, :, k]), cmap="gray", vmin=DISPLAY_WINDOW_HU[0],
                    vmax=DISPLAY_WINDOW_HU[1], aspect=aspect, interpolation="nearest")
        view = radiological_view(labels_c[:, :, k])
        for value, colour in ((0.5, LIVER_COLOUR), (1.5, TUMOR_COLOUR)):
            if view.max() > value:
                axis.contour(view > value, levels=[0.5], colors=[colour], linewidths=1.0)
        axis.set_title(f"slice {k}", fontsize=8)
    for axis in axes.ravel():
        axis.axis("off")
    figure.suptitle(f"{title}  (liver: orange, tumor: green; patient's right on the left)", fontsize=10)
    figure.tight_layout()
    _save(figure, path)


def save_dice_bars(path: Path, cases: dict[str, dict]) -> None:
    """Grouped bar chart of per-case liver and tumor Dice."""
    plt = _pyplot()
    names = list(cases)
    positions = np.arange(len(names))
    figure, axis = plt.subplots(figsize=(max(4.0, 1.2 * len(names) + 2), 4))
    for offset, structure, colour in ((-0.2, "liver", LIVER_COLOUR), (0.2, "tumor", TUMOR_COLOUR)):
        values = [cases[n][structure]["dice"] for n in names]
        bars = axis.bar(positions + offset, values, width=0.4, color=colour, label=structure)
        axis.bar_label(bars, fmt="%.2f", fontsize=7)
    axis.set_xticks(positions, names, rotation=30, ha="right")
    axis.set_ylim(0, 1.08)
    axis.set_ylabel("Dice (3D, per case)")
    axis.legend(loc="lower right")
    figure.tight_layout()
    _save(figure, path)


def save_training_curves(path: Path, history: list[dict]) -> None:
    """Training loss and validation Dice per epoch."""
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    figure, (loss_axis, dice_axis) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axis.plot(epochs, [row["train_loss"] for row in history], marker="o")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("training loss")
    for key, colour in (("val_liver_dice", LIVER_COLOUR), ("val_tumor_dice", TUMOR_COLOUR)):
        values = [row.get(key) for row in history]
        if any(v is not None for v in values):
            dice_axis.plot(epochs, values, marker="o", color=colour, label=key)
    dice_axis.set_xlabel("epoch")
    dice_axis.set_ylabel("held-out Dice (3D, per case mean)")
    dice_axis.set_ylim(0, 1)
    if dice_axis.get_lines():
        dice_axis.legend(loc="lower right")
    figure.tight_layout()
    _save(figure, path)


def _save(figure, path: Path) -> None:
    plt = _pyplot()
    with atomic_output(Path(path)) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
