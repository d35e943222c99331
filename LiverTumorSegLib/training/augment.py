"""Batch augmentation on the device: one spatial warp (rotation, scaling, translation and a smooth
elastic grid deformation) applied identically to image and label, then intensity changes (contrast,
brightness, gamma, noise, blur) on the image only.

No left-right flips: the liver lies on the patient's right, and the spleen (similar in CT) on the
left. Flipped samples would teach the network that a liver may lie on either side, which invites
false positives in the spleen; the fixed canonical orientation makes flips unnecessary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentSpec:
    """Ranges of the random changes (probabilities per sample)."""

    rotation_degrees: float = 15.0
    scale: tuple[float, float] = (0.75, 1.33)
    translation: float = 0.05
    elastic_probability: float = 0.5
    elastic_magnitude: float = 0.03
    contrast: tuple[float, float] = (0.85, 1.15)
    brightness: float = 0.05
    gamma: tuple[float, float] = (0.8, 1.25)
    noise_sigma: float = 0.03
    blur_probability: float = 0.2


def spatial_grid(batch: int, height: int, width: int, spec: AugmentSpec,
                 generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Sampling grid (B, H, W, 2) of a random affine transform plus elastic displacement."""
    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(shape, generator=generator, device=device)

    angle = torch.deg2rad(uniform(-spec.rotation_degrees, spec.rotation_degrees, batch))
    scale = uniform(*spec.scale, batch)
    shift = uniform(-spec.translation, spec.translation, batch, 2)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, [batch, 1, height, width], align_corners=False)
    coarse = uniform(-1.0, 1.0, batch, 2, 5, 5) * spec.elastic_magnitude
    coarse = coarse * (torch.rand((batch, 1, 1, 1), generator=generator, device=device)
                       < spec.elastic_probability)
    displacement = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)
    return grid + displacement.permute(0, 2, 3, 1)


def augment_batch(images: torch.Tensor, labels: torch.Tensor, spec: AugmentSpec,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented copies of images (B, C, H, W) in [0, 1] and labels (B, H, W); `generator` lives on
    the images' device."""
    batch, _, height, width = images.shape
    device = images.device
    grid = spatial_grid(batch, height, width, spec, generator, device)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    labels = F.grid_sample(labels[:, None].float(), grid, mode="nearest", padding_mode="zeros",
                           align_corners=False)[:, 0].long()

    def per_sample(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand((batch, 1, 1, 1), generator=generator, device=device)

    images = (images - 0.5) * per_sample(*spec.contrast) + 0.5 + per_sample(-spec.brightness,
                                                                               spec.brightness)
    images = images.clamp(0.0, 1.0) ** per_sample(*spec.gamma)
    noise = torch.randn(images.shape, generator=generator, device=device)
    images = images + noise * per_sample(0.0, spec.noise_sigma)
    blur = per_sample(0.0, 1.0) < spec.blur_probability
    # Blur every image and keep it where chosen: selecting first would wait for the device.
    images = torch.where(blur, _gaussian_blur(images, sigma=0.8), images)
    return images.clamp(0.0, 1.0), labels


def _gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = 2
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    horizontal = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    images = F.conv2d(F.pad(images, (radius, radius, 0, 0), mode="replicate"), horizontal,
                      groups=channels)
    return F.conv2d(F.pad(images, (0, 0, radius, radius), mode="replicate"), vertical,
                    groups=channels)
