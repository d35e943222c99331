"""Model card and weights: round trip, verification, refusal of missing/truncated/tampered files."""

import json
import shutil

import pytest
import torch

from LiverTumorSegLib.errors import ModelError
from LiverTumorSegLib.model.card import Architecture, InputSpec, load_model_card, resolve_model_card
from LiverTumorSegLib.model.export import export_model
from LiverTumorSegLib.model.network import build_network, load_network


def _copy_model(card, tmp_path):
    shutil.copy(card.path, tmp_path / card.path.name)
    shutil.copy(card.weights_path, tmp_path / card.weights_file)
    return tmp_path / card.path.name, tmp_path / card.weights_file


def test_export_then_load_gives_back_the_card_and_the_fp16_weights(tmp_path):
    torch.manual_seed(1)
    architecture = Architecture("Unet", "resnet18")
    network = build_network(architecture, InputSpec().in_channels)
    card = export_model(network, tmp_path, "round-trip", architecture, InputSpec())
    again = load_model_card(card.path)
    assert again == card
    loaded = load_network(again)
    assert not loaded.training
    original = network.state_dict()
    for name, value in loaded.state_dict().items():
        want = original[name].half().float() if original[name].is_floating_point() else original[name]
        assert torch.equal(value, want), name


def test_bundled_model_is_a_resnet50_unet_and_loads_its_own_weights():
    """README and the extension describe a ResNet50 U-Net; the bundled card must say so, and loading
    must put the file's tensors into the network, not leave it randomly initialised."""
    from safetensors.torch import load_file

    card = resolve_model_card(None)
    assert (card.architecture.name, card.architecture.encoder_name) == ("Unet", "resnet50")
    network = load_network(card).state_dict()
    stored = load_file(str(card.weights_path))
    assert set(stored) == set(network)
    for name, tensor in stored.items():
        assert torch.equal(network[name], tensor.to(network[name].dtype)), name


def test_missing_weights(random_card, tmp_path):
    card_path, weights = _copy_model(random_card, tmp_path)
    weights.unlink()
    with pytest.raises(ModelError, match="missing"):
        load_network(load_model_card(card_path))


def test_truncated_weights(random_card, tmp_path):
    card_path, weights = _copy_model(random_card, tmp_path)
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelError, match="does not match the model card"):
        load_network(load_model_card(card_path))


def test_tampered_weights_refused_even_when_same_size(random_card, tmp_path):
    card_path, weights = _copy_model(random_card, tmp_path)
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256"):
        load_network(load_model_card(card_path))


def test_pickled_weights_are_never_loaded(random_card, tmp_path):
    """A pickle with a matching hash still fails: weights are read only through safetensors."""
    card_path, weights = _copy_model(random_card, tmp_path)
    torch.save(build_network(random_card.architecture, random_card.input.in_channels).state_dict(),
               weights)
    from LiverTumorSegLib.model.network import file_sha256
    data = json.loads(card_path.read_text())
    data["weights_sha256"] = file_sha256(weights)
    card_path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="do not fit"):
        load_network(load_model_card(card_path))


def test_malformed_card(random_card, tmp_path):
    from LiverTumorSegLib.model.card import REQUIRED_CARD_KEYS

    path = tmp_path / "card.json"
    for key, meaning in REQUIRED_CARD_KEYS.items():
        data = json.loads(random_card.path.read_text())
        del data[key]
        path.write_text(json.dumps(data))
        with pytest.raises(ModelError) as raised:
            load_model_card(path)
        assert f"lacks '{key}' ({meaning})" in str(raised.value)
    path.write_text('{"name": "x"}')
    with pytest.raises(ModelError, match="'architecture' .* and 'input' .* and 'weights_file'"):
        load_model_card(path)
    path.write_text("[1, 2]")
    with pytest.raises(ModelError, match="not a JSON object"):
        load_model_card(path)
    data = json.loads(random_card.path.read_text())
    data["postprocessing"]["surprise"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="malformed .*surprise"):
        load_model_card(path)
    path.write_text("not json")
    with pytest.raises(ModelError, match="JSON"):
        load_model_card(path)
    with pytest.raises(ModelError, match="No model card"):
        load_model_card(tmp_path / "absent.json")


def test_card_summary_names_data_licences_and_held_out_accuracy(random_card):
    import dataclasses

    from LiverTumorSegLib.reporting.model_summary import model_card_summary

    card = dataclasses.replace(
        random_card,
        training={"licences": {"ircadb_07": "CC BY-NC-ND 4.0"}, "validation_cases": ["ircadb_17"],
                  "steps": 10, "hardware": "CPU", "split": "list"},
        evaluation={"held_out_summary": {"liver": {"mean_dice": 0.95}, "tumor": {"mean_dice": 0.5}}})
    text = "\n".join(model_card_summary(card))
    assert "ircadb_07 (CC BY-NC-ND 4.0)" in text
    assert "liver 0.950, tumor 0.500" in text and "resnet18" in text
