"""Segmentation losses: weighted cross-entropy + soft Dice (default) or Tversky."""

from __future__ import annotations

import torch
import torch.nn.functional as F

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


def segmentation_loss(name: str, logits: torch.Tensor, labels: torch.Tensor,
                      class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """The configured loss; `ce_dice` is weighted cross-entropy plus soft Dice."""
    if name == "ce_dice":
        return F.cross_entropy(logits.float(), labels, weight=class_weights) + dice_loss(logits, labels)
    if name == "tversky":
        return tversky_loss(logits, labels)
    raise ValueError(f"Unknown loss '{name}'; choose one of {', '.join(LOSSES)}.")
