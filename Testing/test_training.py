"""Training pipeline at small scale on the CPU: data, split, batches made like inference input,
synthetic tumors, augmentation, runs with checkpoints, resume and a time limit, final-epoch export,
the DDP path with two gloo processes, and the throughput benchmark as a smoke test."""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, data_case, tiny_training_config
from safetensors.torch import load_file

from LiverTumorSegLib.inputs import read_volume
from LiverTumorSegLib.labels import LIVER, TUMOR
from LiverTumorSegLib.model.card import load_model_card
from LiverTumorSegLib.pipeline import Segmenter
from LiverTumorSegLib.preprocessing import SliceEncoder, read_slices
from LiverTumorSegLib.training.augment import AugmentSpec, augment_batch
from LiverTumorSegLib.training.batches import BatchSampler, SamplingSpec
from LiverTumorSegLib.training.checkpoint import load_checkpoint
from LiverTumorSegLib.training.config import TrainingConfig, parse_architecture
from LiverTumorSegLib.training.dataset import Case, cache_case, find_cases, split_cases
from LiverTumorSegLib.training.synthetic_tumors import LesionSpec, insert_lesions
from LiverTumorSegLib.training.trainer import StepPlan, plan_by_time, train
from LiverTumorSegLib.volume.orientation import plan_reorientation


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    return tiny_training_config(tmp_path_factory.mktemp("config") / "config.json", epochs=2,
                                steps_per_epoch=8, batch_size=4, crop_size=64, learning_rate=0.003)


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


def _round_liver_slabs(count: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    grid = torch.stack(torch.meshgrid(torch.arange(96), torch.arange(96), indexing="ij"))
    liver = ((grid[0] - 48) ** 2 + (grid[1] - 48) ** 2) < 35 ** 2
    labels = torch.where(liver, LIVER, 0).to(torch.uint8).expand(count, 5, 96, 96).clone()
    hu = torch.where(labels == LIVER, 100.0, -50.0) + 5 * torch.randn(labels.shape, generator=generator)
    return hu, labels


def test_synthetic_lesions_land_inside_the_liver_and_change_the_label():
    hu, labels = _round_liver_slabs(10)
    new_hu, new_labels = hu.clone(), labels.clone()
    placed = insert_lesions(new_hu, new_labels, (0.8, 0.8, 2.0), torch.Generator().manual_seed(3),
                            LesionSpec(hyperdense_probability=0.0))
    assert placed.sum() >= 8
    tumor = new_labels == TUMOR
    assert torch.equal(tumor.flatten(1).any(1), placed)
    assert not (tumor & (labels != LIVER)).any(), "a lesion outside the liver"
    outside = labels != LIVER
    assert torch.equal(new_hu[outside], hu[outside]), "HU changed outside the liver"
    assert new_hu[tumor].mean() < hu[tumor].mean() - 10, "hypodense lesions"
    middle = tumor[:, 2].flatten(1).any(1)
    assert middle.sum() >= 8, "lesions centred on the middle (training) slice"


def test_lesions_are_reproducible_from_the_generator_and_need_a_liver():
    hu, labels = _round_liver_slabs(3)
    results = []
    for _ in range(2):
        h, lab = hu.clone(), labels.clone()
        insert_lesions(h, lab, (1, 1, 2), torch.Generator().manual_seed(7))
        results.append((h, lab))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
    empty = torch.zeros(2, 3, 20, 20)
    no_liver = torch.zeros(2, 3, 20, 20, dtype=torch.uint8)
    assert not insert_lesions(empty, no_liver, (1, 1, 1), torch.Generator().manual_seed(0)).any()
    assert not no_liver.any()


def test_a_training_crop_equals_the_engines_encoding_of_that_region(tiny_folder, tmp_path):
    """Training and inference share one encoder: without lesions and augmentation, a training crop
    is the engine's encoding of the crop's native region, as the fine pass encodes its box
    (tolerance 1e-6, float rounding). Crops smaller and larger than the image."""
    config = TrainingConfig.load(REPO / "Resources" / "Model" / "training_config.json")
    spec = config.input
    cached = cache_case(Case("case_a", tiny_folder / "case_a_ct.nii.gz",
                             tiny_folder / "case_a_label.nii.gz"), tmp_path)
    ct = read_volume(tiny_folder / "case_a_ct.nii.gz")
    orientation = plan_reorientation(ct.array.shape, ct.affine)
    canonical = orientation.to_canonical(np.asarray(ct.array))
    encoder = SliceEncoder.for_volume(canonical, orientation.canonical_spacing, spec, torch.device("cpu"))
    for crop in (16, 64):
        sampler = BatchSampler([cached], spec, SamplingSpec(crop_size=crop, synthetic_tumor_rate=0.0),
                               torch.device("cpu"), seed=5, augment=None)
        draws = sampler.draw(6)
        images, _ = sampler.make(draws)
        size = sampler.cases[0].region
        assert size[0] < canonical.shape[0] if crop == 16 else size[0] == canonical.shape[0]
        for n, draw in enumerate(draws):
            x, y = draw.corner
            slices, index = read_slices(canonical, [draw.slice], spec,
                                        (slice(x, x + size[0]), slice(y, y + size[1])))
            engine = encoder.encode_slices(slices)[index].flatten(1, 2)[0]
            expected = torch.nn.functional.pad(engine, (0, max(0, crop - engine.shape[-1]), 0,
                                                        max(0, crop - engine.shape[-2])))
            torch.testing.assert_close(images[n], expected[:, :crop, :crop], rtol=0, atol=1e-6)


def test_sampler_state_restores_the_same_batches(tiny_folder, tmp_path):
    config = TrainingConfig.load(REPO / "Resources" / "Model" / "training_config.json")
    cached = cache_case(Case("case_a", tiny_folder / "case_a_ct.nii.gz",
                             tiny_folder / "case_a_label.nii.gz"), tmp_path)
    sampler = BatchSampler([cached], config.input, SamplingSpec(crop_size=32), torch.device("cpu"),
                           seed=1)
    sampler(2)
    state = sampler.state_dict()
    first = sampler(3)
    sampler.load_state_dict(state)
    again = sampler(3)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])


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
    assert card.evaluation["selection"] == "final epoch"
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


def test_distributed_training_with_two_gloo_processes(tiny_folder, tiny_config, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
         "29533", "-m", "LiverTumorSegLib.cli", "train", str(tiny_folder), "-o", str(tmp_path),
         "--config", str(tiny_config), "--folds", "1", "--epochs", "1", "--steps-per-epoch", "2",
         "--device", "cpu"], capture_output=True, text=True, timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    card = load_model_card(tmp_path / "model_card.json")
    assert card.training["hardware"].startswith("2 x CPU")
    assert card.training["steps"] == 2
    rows = (tmp_path / "training_log.csv").read_text().splitlines()
    assert len(rows) == 2, "one epoch logged once, by rank 0 only"


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


class _Stop(Exception):
    pass


def test_a_resumed_run_follows_the_uninterrupted_run_exactly(tiny_folder, tiny_config, tmp_path):
    """Killed right after a checkpoint and resumed, a run ends with the very weights and learning
    rates of a run that was never interrupted."""
    config = TrainingConfig.load(tiny_config, epochs=2, steps_per_epoch=3, batch_size=2)
    whole = train(config, tiny_folder, tmp_path / "whole", device="cpu", folds=1, log=lambda _: None)

    def killed_after_step_4(message: str) -> None:
        if message.startswith("checkpoint saved at step 4"):
            raise _Stop

    with pytest.raises(_Stop):
        train(config, tiny_folder, tmp_path / "cut", device="cpu", folds=1, checkpoint_minutes=0,
              log=killed_after_step_4)
    assert load_checkpoint(tmp_path / "cut")["step"] == 4
    assert "--resume" in (tmp_path / "cut" / "train.log").read_text(), "the log says how to resume"
    resumed = train(replace(config, learning_rate=1.0), tiny_folder, tmp_path / "cut", device="cpu",
                    resume=True, log=lambda _: None)
    first, second = load_file(str(whole.weights_path)), load_file(str(resumed.weights_path))
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert (tmp_path / "whole" / "training_log.csv").read_text().split("\n")[0] == \
        (tmp_path / "cut" / "training_log.csv").read_text().split("\n")[0]
    lr = [[line.split(",")[3] for line in (tmp_path / d / "training_log.csv").read_text().split()[1:]]
          for d in ("whole", "cut")]
    assert lr[0] == lr[1]


def test_the_final_epoch_is_exported(tiny_folder, tiny_config, tmp_path):
    config = TrainingConfig.load(tiny_config, epochs=2, steps_per_epoch=2, batch_size=2)
    card = train(config, tiny_folder, tmp_path, device="cpu", folds=1, checkpoint_minutes=0,
                 log=lambda _: None)
    last = load_checkpoint(tmp_path)
    assert last["step"] == 4 == card.training["steps"]
    exported = load_file(str(card.weights_path))
    assert all(torch.equal(exported[k], v.half() if v.is_floating_point() else v)
               for k, v in last["model"].items())


def test_time_limit_planning_fits_the_steps_into_the_limit():
    plan = plan_by_time(limit_seconds=600, elapsed_seconds=40, seconds_per_step=0.05,
                        reserve_seconds=60, probe_steps=200, epochs=10)
    assert plan.total_steps == 200 + int((600 - 40 - 60) / 0.05)
    assert plan.scheduled_steps == plan.total_steps - 200
    assert [plan.epoch_end(e) for e in (1, 10)] == [200 + 1000, plan.total_steps]
    assert plan.epoch_of(1200) == 1 and plan.epoch_of(1201) is None
    hopeless = plan_by_time(60, 50, 1.0, 30, 5, 3)
    assert hopeless.total_steps == 5 + 3, "at least one step per epoch"
    assert StepPlan(6, 2).epoch_end(1) == 3


def test_a_time_limited_run_records_the_steps_it_chose(tiny_folder, tiny_config, tmp_path):
    result = run_cli("train", tiny_folder, "-o", tmp_path, "--config", tiny_config, "--folds", "1",
                     "--epochs", "2", "--batch-size", "2", "--device", "cpu", "--time-limit", "0.7")
    assert result.returncode == 0, result.stderr
    card = load_model_card(tmp_path / "model_card.json")
    assert card.training["steps_chosen_by"].startswith("--time-limit 0.7 min")
    assert f"plan: {card.training['steps']} steps" in (tmp_path / "train.log").read_text()
    rows = (tmp_path / "training_log.csv").read_text().splitlines()[1:]
    assert int(rows[-1].split(",")[1]) == card.training["steps"]


def test_resume_without_a_checkpoint_says_so(tiny_folder, tmp_path):
    result = run_cli("train", tiny_folder, "--resume", tmp_path)
    assert result.returncode == 2 and "No checkpoint to resume from" in result.stderr


def test_throughput_benchmark_runs(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "training_throughput.py"),
                             "--device", "cpu", "--data", str(Path(data_case("tiny64")[0]).parent),
                             "--cases", "tiny64", "--arch", "Unet:resnet18", "--batch-size", "2",
                             "--crop-size", "64", "--windows", "2", "--window-seconds", "0.5",
                             "--warmup-seconds", "0.2", "--output", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "training_throughput_cpu_2x64.json").read_text())
    assert report["batch_size"] == 2 and report["crop_size"] == 64
    for part in ("data_pipeline", "training_step"):
        assert len(report[part]["windows_samples_per_second"]) == 2
        assert report[part]["median_samples_per_second"] > 0
