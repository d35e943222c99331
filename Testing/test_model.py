"""Model card and weights: round trip, verification, refusal of missing/truncated/tampered files."""

import json
import shutil

import pytest
import torch

from LiverTumorSegLib.errors import ModelError
from LiverTumorSegLib.model.card import Architecture, InputSpec, load_model_card
from LiverTumorSegLib.model.network import build_network, load_network


def _copy_model(card, tmp_path):
    shutil.copy(card.path, tmp_path / card.path.name)
    shutil.copy(card.weights_path, tmp_path / card.weights_file)
    return tmp_path / card.path.name, tmp_path / card.weights_file


def test_card_round_trip_and_weights_load(random_card):
    again = load_model_card(random_card.path)
    assert again == random_card
    network = load_network(again)
    reference = build_network(again.architecture, again.input.in_channels)
    assert set(network.state_dict()) == set(reference.state_dict())
    assert not network.training


def test_shipped_architecture_is_resnet50_unet():
    network = build_network(Architecture("Unet", "resnet50"), InputSpec().in_channels)
    parameters = sum(p.numel() for p in network.parameters())
    assert 32.0e6 < parameters < 33.0e6
    assert network.encoder.__class__.__name__ == "ResNetEncoder"


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


def test_malformed_card(tmp_path):
    path = tmp_path / "card.json"
    path.write_text('{"name": "x"}')
    with pytest.raises(ModelError, match="malformed"):
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
