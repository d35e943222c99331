"""Test-time augmentation: the network also sees each batch shifted in-plane, and the class
probabilities of all views are averaged, each mapped back to the original pixels first.

Shifts only (no flips: the liver's side is anatomy; no scales: every view keeps the network's size
multiple). A shift that is not a multiple of the network's stride (32 pixels for a ResNet encoder)
shows it the slice on another alignment of its pooling grid. Pixels moved out of a view are not
predicted by it; each pixel averages the views that saw it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# `--tta`: two extra views, shifted by half the encoder's stride diagonally both ways.
DEFAULT_SHIFTS = ((16, 16), (-16, -16))


def shifted(images: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """The view whose pixel (i, j) is the original's (i + dx, j + dy); zeros (air) where that lies
    outside the image."""
    margin = max(abs(dx), abs(dy))
    padded = F.pad(images, (margin, margin, margin, margin))
    height, width = images.shape[-2:]
    return padded[..., margin + dx: margin + dx + height, margin + dy: margin + dy + width]


def predict_with_shifts(predict, images: torch.Tensor,
                        shifts: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """Probabilities (N, classes, H, W) of `predict` averaged over the original and each shifted
    view of `images` (N, C, H, W)."""
    total = predict(images)
    if not shifts:
        return total
    seen = torch.ones_like(total[:, :1])
    for dx, dy in shifts:
        view = predict(shifted(images, dx, dy))
        total = total + shifted(view, -dx, -dy)
        seen = seen + shifted(torch.ones_like(view[:, :1]), -dx, -dy)
    return total / seen
