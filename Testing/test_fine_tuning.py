"""Training from a trained model (`--init-weights`) and the training step's precision, at small scale
on the CPU: the card's weights are what the run starts from, a card that does not fit is refused
with each difference named, the new card records its parent and the chain of runs, bf16 autocast
runs where the hardware computes bf16, and a run cannot both resume and start from weights."""

import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO, tiny_training_config

from LiverTumorSegLib.errors import LiverTumorSegError
from LiverTumorSegLib.inference import devices
from LiverTumorSegLib.model.card import load_model_card
from LiverTumorSegLib.model.export import export_model
from LiverTumorSegLib.model.network import build_network
from LiverTumorSegLib.training.config import TrainingConfig
from LiverTumorSegLib.training.lineage import initial_weights
from LiverTumorSegLib.training.trainer import TrainingStep, train


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    return tiny_training_config(tmp_path_factory.mktemp("config") / "config.json", epochs=1,
                                steps_per_epoch=2, batch_size=2, crop_size=64)


@pytest.fixture(scope="module")
def parent_card(tiny_config, tmp_path_factory):
    """A 'trained' tiny model: random weights exported with a card whose network is the config's."""
    config = TrainingConfig.load(tiny_config)
    torch.manual_seed(11)
    network = build_network(config.architecture, config.input.in_channels)
    chain = [{"run": "an earlier run", "git_commit": "abc", "hardware": "1 x test", "steps": 7}]
    return export_model(network, tmp_path_factory.mktemp("parent"), "tiny-parent",
                        config.architecture, config.input, training={"chain": chain})


def test_init_loads_exactly_the_cards_weights(parent_card, tiny_config):
    from safetensors.torch import load_file

    network, lineage = initial_weights(parent_card.path, TrainingConfig.load(tiny_config))
    stored = load_file(str(parent_card.weights_path))
    state = network.state_dict()
    assert state.keys() == stored.keys()
    assert all(torch.equal(state[k], v.to(state[k].dtype)) for k, v in stored.items())
    assert network.training and next(network.parameters()).dtype == torch.float32
    assert lineage.parent["weights_sha256"] == parent_card.weights_sha256


def test_a_card_that_does_not_fit_the_config_names_each_difference(parent_card, tiny_config):
    config = TrainingConfig.load(tiny_config)
    from dataclasses import replace

    other = replace(config, architecture=replace(config.architecture, encoder_name="resnet34"),
                    input=replace(config.input, pixel_size_mm=3.0, context_slices=2))
    with pytest.raises(LiverTumorSegError) as error:
        initial_weights(parent_card.path, other)
    message = str(error.value)
    for field in ("architecture.encoder_name", "input.pixel_size_mm", "input.context_slices"):
        assert field in message
    assert "'resnet18' in the card and 'resnet34' in the run's config" in message
    assert "architecture.name" not in message and "input.windows" not in message


def test_the_new_card_records_its_parent_and_the_chain(parent_card, tiny_config, tiny_folder,
                                                       tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "LiverTumorSegLib.cli", "train", str(tiny_folder), "-o", str(tmp_path),
         "--config", str(tiny_config), "--folds", "1", "--device", "cpu", "--init-weights",
         str(parent_card.path)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    card = load_model_card(tmp_path / "model_card.json")
    assert card.training["parent"] == {"name": "tiny-parent", "card": str(parent_card.path),
                                       "weights_sha256": parent_card.weights_sha256}
    *earlier, this_run = card.training["chain"]
    assert earlier == parent_card.training["chain"], "the parent's own chain comes first"
    assert this_run["weights_sha256"] == card.weights_sha256 != parent_card.weights_sha256
    assert this_run["run"].startswith("started from tiny-parent")
    assert "--init-weights" in this_run["command"] and this_run["steps"] == 2
    assert this_run["precision"] == card.training["precision"]
    assert "started from tiny-parent" in (tmp_path / "train.log").read_text()


def test_init_weights_with_resume_is_refused(parent_card, tiny_folder, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "LiverTumorSegLib.cli", "train", str(tiny_folder), "--resume",
         str(tmp_path), "--init-weights", str(parent_card.path)], capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 2
    assert "give one of them" in result.stderr and "--init-weights" in result.stderr
    with pytest.raises(LiverTumorSegError, match="give one of them"):
        train(TrainingConfig.load(REPO / "Resources" / "Model" / "training_config.json"),
              tiny_folder, tmp_path, device="cpu", resume=True, init_weights=parent_card.path)


@pytest.mark.parametrize("native_bf16", [True, False])
def test_training_runs_in_bf16_exactly_where_inference_does(monkeypatch, native_bf16):
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: native_bf16)
    cpu = torch.device("cpu")
    expected = "bf16" if native_bf16 else "fp32"
    assert devices.training_precision(cpu) == devices.resolve_precision(cpu) == expected

    network = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1))
    seen = {}
    network.register_forward_hook(lambda module, args, out: seen.update(
        dtype=out.dtype, channels_last=args[0].is_contiguous(memory_format=torch.channels_last)))
    step = TrainingStep(network, torch.optim.AdamW(network.parameters()),
                        TrainingConfig.load(REPO / "Resources" / "Model" / "training_config.json"),
                        cpu, torch.ones(3), devices.training_precision(cpu))
    loss = step(torch.rand(2, 2, 8, 8), torch.randint(0, 3, (2, 8, 8)))
    assert seen["dtype"] == (torch.bfloat16 if native_bf16 else torch.float32)
    assert seen["channels_last"] == native_bf16
    assert loss.dtype == torch.float32, "the loss is computed in float32"


def test_gpus_without_bf16_train_in_float32(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert devices.resolve_precision(torch.device("cuda")) == "fp16"
    assert devices.training_precision(torch.device("cuda")) == "fp32"


@pytest.mark.parametrize("amx, avx512_bf16, units", [
    (True, True, ", AMX, AVX512-BF16"), (False, True, ", AVX512-BF16"), (False, False, "")])
def test_the_cpu_record_names_its_bf16_units(monkeypatch, amx, avx512_bf16, units):
    """Cards and benchmark records name the CPU with the units that set its bf16 speed: the same
    code runs several times faster with AMX than without."""
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    text, ending = devices.describe_cpu(), f", {os.cpu_count()} cores{units}"
    assert text.endswith(ending) and text.removesuffix(ending).strip(), text
