"""Training checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint holds the weights, the optimizer and scheduler states, the step, the planned number of
steps, the random states of the batch sampler and the log so far. It is written atomically (a killed
run leaves the previous checkpoint intact) and read back with `torch.load(weights_only=True)`, so
loading one never runs pickled code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_output
from ..errors import LiverTumorSegError

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT = 1


def checkpoint_path(output_dir: Path) -> Path:
    return Path(output_dir) / CHECKPOINT_FILE


def save_checkpoint(output_dir: Path, state: dict[str, Any]) -> Path:
    """Write `state` (tensors, numbers, strings, lists and dicts) as the run's checkpoint."""
    path = checkpoint_path(output_dir)
    with atomic_output(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)
    return path


def load_checkpoint(output_dir: Path) -> dict[str, Any]:
    """The checkpoint of a run folder, or a clear error when there is none or it is unusable."""
    path = checkpoint_path(output_dir)
    if not path.is_file():
        raise LiverTumorSegError(f"No checkpoint to resume from in {output_dir} ({CHECKPOINT_FILE} "
                                 "is missing); a run writes one every --checkpoint-minutes.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means an unusable file
        raise LiverTumorSegError(f"The checkpoint {path} cannot be read ({exc}).") from exc
    if state.get("format") != FORMAT:
        raise LiverTumorSegError(f"The checkpoint {path} has format {state.get('format')}; this "
                                 f"version reads format {FORMAT}.")
    return state
