"""The model's liver and tumour probabilities, as a map a user can load beside the labels.

Values are the softmax × 255 in uint8: channel 0 liver, channel 1 tumour; the background's is
255 − liver − tumour. Each is rounded to the nearest step, except where rounding would tie the
winning class with another: there the winner stays one step ahead, so that the argmax of
(255 − liver − tumour, liver, tumour) is exactly the label the network chose (before post-processing).
Outside the region the fine pass ran on, both channels are 0.

The map is kept as the box the fine pass covered (on the input's grid), never as a float copy of
the volume: `array()` builds the whole grid only when asked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

CHANNELS = ("liver", "tumor")
SCALE = 255
DESCRIPTION = "uint8 = softmax x 255; 4th axis: 0 liver, 1 tumor; 0 outside the region segmented"


def quantize(probabilities: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """(N, 2, ...) uint8 liver and tumour values of softmax probabilities (N, 3, ...) whose argmax
    classes are `chosen` (N, ...): rounded, then nudged by a step where rounding put the winner
    level with or behind another class (near decision boundaries only; see the module)."""
    values = (probabilities[:, 1:] * SCALE).round_().to(torch.int16)
    for _ in range(3):  # each pass moves a value by one step; rounding is off by 1.5 steps at most
        liver, tumor = values[:, 0], values[:, 1]
        derived = torch.argmax(torch.stack([SCALE - liver - tumor, liver, tumor], dim=1), dim=1)
        wrong = derived != chosen
        if not bool(wrong.any()):
            break
        raise_winner, lower_rival = wrong & (chosen > 0), wrong & (chosen == 0)
        for channel, label in ((0, 1), (1, 2)):  # raise a foreground winner, or lower the class
            values[:, channel] += ((raise_winner & (chosen == label)).to(torch.int16)  # that beat
                                   - (lower_rival & (derived == label)).to(torch.int16))  # background
    return values.clamp_(0, SCALE).to(torch.uint8)


@dataclass
class ProbabilityMap:
    """Liver and tumour probabilities (uint8, see the module) on a volume's grid, stored as the box
    the fine pass covered: `values` (box shape + (2,)) at `region` of a grid of `shape`."""

    shape: tuple[int, int, int]
    region: tuple[slice, slice, slice]
    values: np.ndarray

    def array(self) -> np.ndarray:
        """The whole map, (x, y, z, 2) uint8 (one byte per voxel and channel)."""
        full = np.zeros(tuple(self.shape) + (len(CHANNELS),), dtype=np.uint8)
        full[self.region] = self.values
        return full

    def channel(self, name: str) -> np.ndarray:
        """One channel ('liver' or 'tumor') on the whole grid, (x, y, z) uint8."""
        full = np.zeros(self.shape, dtype=np.uint8)
        full[self.region] = self.values[..., CHANNELS.index(name)]
        return full
