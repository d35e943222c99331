"""Segmentation losses: weighted cross-entropy + soft Dice (default) or Tversky, and the optional
extra weight on the non-tumour pixels along the liver's border (where false lesions appear)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..labels import TUMOR

LOSSES = ("ce_dice", "tversky")


def _soft_counts(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per-class soft true positives, false positives and false negatives over the batch."""
    probabilities = torch.softmax(logits.float(), dim=1)
    one_hot = F.one_hot(labels, probabilities.shape[1]).permute(0, 3, 1, 2).float()
    dims = (0, 2, 3)
    tp = (probabilities * one_hot).sum(dims)
    fp = (probabilities * (1 - one_hot)).sum(dims)
    fn = ((1 - probabilities) * one_hot).sum(dims)
    return tp, fp, fn


def dice_loss(logits: torch.Tensor, labels: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - mean soft Dice of the foreground classes (liver, tumor)."""
    tp, fp, fn = _soft_counts(logits, labels)
    dice = (2 * tp + smooth) / (2 * tp + fp + fn + smooth)
    return 1.0 - dice[1:].mean()


def tversky_loss(logits: torch.Tensor, labels: torch.Tensor, alpha: float = 0.7, beta: float = 0.3,
                 smooth: float = 1.0) -> torch.Tensor:
    """1 - mean Tversky index of the foreground classes; alpha weighs false positives, beta false
    negatives (alpha 0.7, beta 0.3 as in the seed method)."""
    tp, fp, fn = _soft_counts(logits, labels)
    index = (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)
    return 1.0 - index[1:].mean()


def border_negative_weights(labels: torch.Tensor, band_pixels: int, weight: float) -> torch.Tensor:
    """Per-pixel loss weights (B, H, W): `weight` for pixels that are not tumour and lie within
    `band_pixels` of the border of the liver (liver or tumour label), inside or outside it; 1
    elsewhere."""
    organ = (labels > 0).float()[:, None]
    size = 2 * band_pixels + 1
    dilated = F.max_pool2d(organ, size, stride=1, padding=band_pixels)
    eroded = 1.0 - F.max_pool2d(1.0 - organ, size, stride=1, padding=band_pixels)
    near_border = (dilated - eroded)[:, 0] > 0
    return torch.where(near_border & (labels != TUMOR), weight, 1.0)


def segmentation_loss(name: str, logits: torch.Tensor, labels: torch.Tensor,
                      class_weights: torch.Tensor | None = None,
                      pixel_weights: torch.Tensor | None = None) -> torch.Tensor:
    """The configured loss; `ce_dice` is weighted cross-entropy plus soft Dice. `pixel_weights`
    (B, H, W) weigh each pixel's cross-entropy on top of its class weight (ce_dice only)."""
    if name == "ce_dice":
        if pixel_weights is None:
            cross_entropy = F.cross_entropy(logits.float(), labels, weight=class_weights)
        else:
            per_pixel = F.cross_entropy(logits.float(), labels, reduction="none")
            weights = pixel_weights * (class_weights[labels] if class_weights is not None else 1.0)
            cross_entropy = (per_pixel * weights).sum() / weights.sum()
        return cross_entropy + dice_loss(logits, labels)
    if pixel_weights is not None:
        raise ValueError("Pixel weights (the border negative weight) work with the ce_dice loss only.")
    if name == "tversky":
        return tversky_loss(logits, labels)
    raise ValueError(f"Unknown loss '{name}'; choose one of {', '.join(LOSSES)}.")
