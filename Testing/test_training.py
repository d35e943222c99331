"""Training pipeline at small scale on the CPU: data, split, augmentation, synthetic tumors, a
two-epoch run on tiny64 and the DDP path with two gloo processes."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO, data_case
from LiverTumorSegLib.model.card import load_model_card
from LiverTumorSegLib.pipeline import Segmenter
from LiverTumorSegLib.labels import LIVER, TUMOR
from LiverTumorSegLib.training.augment import AugmentSpec, augment_batch
from LiverTumorSegLib.training.dataset import Case, find_cases, split_cases
from LiverTumorSegLib.training.synthetic_tumors import LesionSpec, insert_lesion
from LiverTumorSegLib.training.trainer import ARCHITECTURES, parse_architecture
from LiverTumorSegLib.model.network import build_network
from LiverTumorSegLib.volume.io import read_volume


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """tiny64 under both namings: `case_a_ct/_label` and LiTS `volume-3/segmentation-3`."""
    ct, label = data_case("tiny64")
    folder = tmp_path_factory.mktemp("tiny_data")
    shutil.copy(ct, folder / "case_a_ct.nii.gz")
    shutil.copy(label, folder / "case_a_label.nii.gz")
    shutil.copy(ct, folder / "volume-3.nii.gz")
    shutil.copy(label, folder / "segmentation-3.nii.gz")
    return folder


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    data = json.loads((REPO / "Resources" / "Model" / "training_config.json").read_text())
    data["name"] = "tiny-test"
    data["architecture"] = {"name": "Unet", "encoder_name": "resnet18"}
    data["training"].update(epochs=2, steps_per_epoch=8, batch_size=4, crop_size=64, num_workers=0,
                            learning_rate=0.003)
    path = tmp_path_factory.mktemp("config") / "config.json"
    path.write_text(json.dumps(data))
    return path


def test_both_namings_are_found_and_exclusions_respected(tmp_path, tiny_folder):
    names = [c.name for c in find_cases(tiny_folder)]
    assert names == ["case_a", "lits-3"]
    assert [c.name for c in find_cases(tiny_folder, exclude=("lits-3",))] == ["case_a"]
    (tmp_path / "lonely_ct.nii.gz").write_bytes(b"")  # no label: not a training case
    shutil.copy(tiny_folder / "case_a_ct.nii.gz", tmp_path / "b_ct.nii.gz")
    shutil.copy(tiny_folder / "case_a_label.nii.gz", tmp_path / "b_label.nii.gz")
    assert [c.name for c in find_cases(tmp_path)] == ["b"]


def test_patient_split_never_leaks_and_folds_partition_the_cases():
    cases = [Case(f"p{i}", None, None) for i in range(11)]
    held_out = []
    for fold in range(4):
        train, held = split_cases(cases, seed=3, folds=4, fold=fold)
        assert not {c.name for c in train} & {c.name for c in held}
        assert len(train) + len(held) == len(cases)
        held_out += [c.name for c in held]
    assert sorted(held_out) == sorted(c.name for c in cases)
    assert split_cases(cases, seed=3, folds=4, fold=1) == split_cases(cases, seed=3, folds=4, fold=1)
    train, held = split_cases(cases, seed=0, validation=("p2", "p5"))
    assert [c.name for c in held] == ["p2", "p5"] and len(train) == 9


def test_model_made_labels_are_never_held_out_for_scoring():
    cases = [Case(name, None, None) for name in ("a", "b", "totalseg_example")]
    for fold in range(2):
        train, held = split_cases(cases, seed=1, folds=2, fold=fold)
        assert "totalseg_example" in [c.name for c in train]
        assert "totalseg_example" not in [c.name for c in held]
    with pytest.raises(Exception, match="made by a model"):
        split_cases(cases, seed=1, validation=("totalseg_example",))


def test_augmentation_keeps_image_and_label_aligned():
    labels = torch.zeros(4, 64, 64, dtype=torch.long)
    labels[:, 10:40, 20:50] = 1
    labels[:, 25:32, 30:38] = 2
    images = torch.stack([labels.float() / 2, torch.rand(4, 64, 64)], dim=1)
    geometric_only = AugmentSpec(contrast=(1, 1), brightness=0, gamma=(1, 1), noise_sigma=0,
                                 blur_probability=0, elastic_probability=1.0)
    warped, warped_labels = augment_batch(images, labels, geometric_only,
                                          torch.Generator().manual_seed(1))
    assert not torch.equal(warped_labels, labels), "the warp changed nothing"
    recovered = torch.round(warped[:, 0] * 2).long()
    agreement = (recovered == warped_labels).float().mean()
    assert agreement > 0.97
    _, with_intensity = augment_batch(images, labels, AugmentSpec(), torch.Generator().manual_seed(2))
    assert set(with_intensity.unique().tolist()) <= {0, 1, 2}


def test_synthetic_lesions_land_inside_the_liver_and_change_the_label():
    rng = np.random.default_rng(0)
    shape = (96, 96, 5)
    labels = np.zeros(shape, np.uint8)
    grid = np.indices(shape[:2])
    liver_2d = ((grid[0] - 48) ** 2 + (grid[1] - 48) ** 2) < 35 ** 2
    labels[liver_2d] = LIVER
    hu = np.where(labels == LIVER, 100.0, -50.0).astype(np.float32) + rng.normal(0, 5, shape)
    placed = 0
    for seed in range(10):
        h, lab = hu.copy(), labels.copy()
        if insert_lesion(h, lab, (0.8, 0.8, 2.0), np.random.default_rng(seed),
                         LesionSpec(hyperdense_probability=0.0)):
            placed += 1
            tumor = lab == TUMOR
            assert tumor.any() and not (tumor & (labels != LIVER)).any()
            assert np.allclose(h[labels != LIVER], hu[labels != LIVER]), "HU changed outside the liver"
            assert h[tumor].mean() < hu[tumor].mean() - 10, "hypodense lesion"
    assert placed >= 8


def test_no_lesion_without_liver():
    hu = np.zeros((20, 20, 3), np.float32)
    labels = np.zeros((20, 20, 3), np.uint8)
    assert not insert_lesion(hu, labels, (1, 1, 1), np.random.default_rng(0))
    assert not labels.any()


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "LiverTumorSegLib.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=900)


def test_two_epochs_on_tiny64_decrease_the_loss_and_export_a_working_model(tiny_folder, tiny_config,
                                                                            tmp_path):
    result = run_cli("train", tiny_folder, "-o", tmp_path, "--config", tiny_config, "--validation",
                     "lits-3", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    log = (tmp_path / "training_log.csv").read_text().splitlines()
    header = log[0].split(",")
    losses = [float(line.split(",")[header.index("train_loss")]) for line in log[1:]]
    assert len(losses) == 2 and losses[1] < losses[0]
    card = load_model_card(tmp_path / "model_card.json")
    assert card.training["cases"] == ["case_a"] and card.training["validation_cases"] == ["lits-3"]
    assert "lits-3" in card.evaluation["held_out_per_case"]
    assert card.training["licences"]["case_a"]
    ct, _ = data_case("tiny64")
    segmentation = Segmenter(card, device="cpu").segment(read_volume(ct))
    assert segmentation.labels.shape == read_volume(ct).array.shape
    for artefact in ("training_curves.png", "validation_dice.png", "validation_metrics.json"):
        assert (tmp_path / artefact).is_file()


def test_baseline_and_architecture_options(tiny_folder, tiny_config, tmp_path):
    result = run_cli("train", tiny_folder, "-o", tmp_path, "--config", tiny_config, "--folds", "1",
                     "--baseline", "--epochs", "2", "--steps-per-epoch", "2", "--device", "cpu",
                     "--schedule", "plateau", "--loss", "tversky")
    assert result.returncode == 0, result.stderr
    card = load_model_card(tmp_path / "model_card.json")
    assert card.training["hyperparameters"]["schedule"] == "plateau"
    assert card.training["hyperparameters"]["loss"] == "tversky"
    assert card.input.in_channels == 1 and card.input.context_slices == 0
    assert card.training["hyperparameters"]["synthetic_tumor_rate"] == 0.0
    assert parse_architecture("Unet:resnet18").encoder_name == "resnet18"
    with pytest.raises(ValueError):
        parse_architecture("transformer")


@pytest.mark.parametrize("preset", ["deeplabv3plus-resnet101", "unet-vgg16"])
def test_comparison_architectures_build_and_run(preset):
    network = build_network(ARCHITECTURES[preset], in_channels=9).eval()
    with torch.no_grad():
        assert network(torch.zeros(1, 9, 64, 64)).shape == (1, 3, 64, 64)


def test_distributed_training_with_two_gloo_processes(tiny_folder, tiny_config, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
         "29533", "-m", "LiverTumorSegLib.cli", "train", str(tiny_folder), "-o", str(tmp_path),
         "--config", str(tiny_config), "--folds", "1", "--epochs", "1", "--steps-per-epoch", "2",
         "--device", "cpu"], capture_output=True, text=True, timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert load_model_card(tmp_path / "model_card.json").training["hardware"].startswith("CPU")


def test_evaluate_model_scores_every_case_of_a_folder(tiny_folder, random_card, tmp_path):
    result = run_cli("evaluate-model", tiny_folder, "--model", random_card.path, "-o", tmp_path,
                     "--device", "cpu")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "evaluation.json").read_text())
    assert sorted(report["cases"]) == ["case_a", "lits-3"]
    assert (tmp_path / "predictions" / "case_a_ct_seg.nii.gz").is_file()
    assert "mean liver Dice" in result.stdout


def test_losses_prefer_the_right_answer():
    from LiverTumorSegLib.training.losses import segmentation_loss

    labels = torch.zeros(2, 8, 8, dtype=torch.long)
    labels[:, 2:6, 2:6] = 1
    labels[:, 3:5, 3:5] = 2
    right = torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float() * 10
    wrong = torch.roll(right, 1, dims=1)
    for name in ("ce_dice", "tversky"):
        assert segmentation_loss(name, right, labels) < segmentation_loss(name, wrong, labels)
    with pytest.raises(ValueError):
        segmentation_loss("hinge", right, labels)
