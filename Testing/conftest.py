"""Shared fixtures: the real CT folder (skipped when absent) and small randomly initialised models.

A random model exercises the mechanics only; its output is never presented as a segmentation.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from LiverTumorSegLib.model.card import Architecture, InferenceSpec, InputSpec, Window
from LiverTumorSegLib.model.export import export_untrained_model

REPO = Path(__file__).resolve().parents[1]
# Converted models (OpenVINO) go to a cache of this test session, not the user's.
os.environ["LIVERTUMORSEG_CACHE"] = tempfile.mkdtemp(prefix="livertumorseg-test-cache-")
DATA_DIR = REPO.parent / "shared" / "data"
FULL_RESOLUTION_CASES = ("ircadb_17", "ircadb_07", "chaos_ct3", "totalseg_example")


def data_case(name: str) -> tuple[Path, Path]:
    """CT and label paths of a case in ../shared/data, or skip the test with the reason."""
    ct, label = DATA_DIR / f"{name}_ct.nii.gz", DATA_DIR / f"{name}_label.nii.gz"
    if not ct.is_file():
        pytest.skip(f"real CT case {name} not available: {DATA_DIR} is absent")
    return ct, label


def tiny_training_config(path: Path, **training) -> Path:
    """The shipped training config for a ResNet18 at tiny scale, with `training` overrides."""
    data = json.loads((REPO / "Resources" / "Model" / "training_config.json").read_text())
    data["name"] = "tiny-test"
    data["architecture"] = {"name": "Unet", "encoder_name": "resnet18"}
    data["training"].update(training)
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """tiny64 under both namings: `case_a_ct/_label` and LiTS `volume-3/segmentation-3`."""
    import shutil

    ct, label = data_case("tiny64")
    folder = tmp_path_factory.mktemp("tiny_data")
    shutil.copy(ct, folder / "case_a_ct.nii.gz")
    shutil.copy(label, folder / "case_a_label.nii.gz")
    shutil.copy(ct, folder / "volume-3.nii.gz")
    shutil.copy(label, folder / "segmentation-3.nii.gz")
    return folder


@pytest.fixture(scope="session")
def manifest() -> dict:
    path = DATA_DIR / "manifest.json"
    if not path.is_file():
        pytest.skip(f"real CT data not available: {DATA_DIR} is absent")
    return json.loads(path.read_text())


def make_random_model(directory: Path, encoder: str = "resnet18", liver_bias: float = 0.0,
                      background_bias: float = 0.0, **input_changes):
    """An untrained ResNet18 U-Net with a 2.5D, two-window + histogram input spec (see
    `export_untrained_model` for the biases)."""
    spec = InputSpec(**{"windows": (Window("liver", 60, 400), Window("wide", 40, 1500)),
                        "histogram_channel": True, "context_slices": 1, "pixel_size_mm": 1.5,
                        **input_changes})
    return export_untrained_model(directory, Architecture("Unet", encoder), spec,
                                  InferenceSpec(batch_size=4, coarse_slice_step=4),
                                  liver_bias=liver_bias, background_bias=background_bias)


@pytest.fixture(scope="session")
def random_card(tmp_path_factory):
    return make_random_model(tmp_path_factory.mktemp("random_model"))


@pytest.fixture(scope="session")
def liver_everywhere_card(tmp_path_factory):
    return make_random_model(tmp_path_factory.mktemp("liver_model"), liver_bias=50.0)


def synthetic_ct(shape=(48, 40, 24), seed=0) -> np.ndarray:
    """A body-like int16 CT: air outside, soft tissue ellipse, a brighter 'liver' blob inside."""
    rng = np.random.default_rng(seed)
    i, j, k = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    ct = np.full(shape, -1000.0)
    ct[(i / 0.9) ** 2 + (j / 0.8) ** 2 < 1] = 40
    ct[((i - 0.3) / 0.4) ** 2 + (j / 0.4) ** 2 + (k / 0.7) ** 2 < 1] = 100
    return (ct + rng.normal(0, 10, shape)).astype(np.int16)
