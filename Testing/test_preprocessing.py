"""Preprocessing: windows, histogram equalisation, 2.5D channels, model-grid resampling."""

import numpy as np
import pytest
import torch

from LiverTumorSegLib.model.card import InputSpec, Window
from LiverTumorSegLib.preprocessing import (SliceEncoder, equalize, from_model_grid, histogram_edges,
                                            histogram_lookup, labels_to_model_grid, model_grid,
                                            window_to_unit)


def test_window_clips_and_scales():
    out = window_to_unit(np.array([-1000, -140, 60, 260, 3000]), low=-140, high=260)
    np.testing.assert_allclose(out, [0, 0, 0.5, 1, 1])
    assert out.dtype == np.float32


def test_histogram_equalisation_gives_equal_count_bins():
    rng = np.random.default_rng(0)
    volume = rng.exponential(100.0, size=(40, 40, 40)).astype(np.float32)
    edges = histogram_edges(volume, bins=10)
    scaled = equalize(volume, histogram_lookup(edges))
    counts, _ = np.histogram(scaled, bins=10, range=(0, 1))
    assert counts.min() > 0.8 * counts.mean() and counts.max() < 1.2 * counts.mean()
    assert np.all(np.diff(edges) >= 0)


def test_channels_follow_context_then_windows_and_repeat_edge_slices():
    spec = InputSpec(windows=(Window("a", 0, 200), Window("b", 100, 200)), histogram_channel=False,
                     context_slices=1)
    volume = np.stack([np.full((4, 4), hu) for hu in (-100, 0, 100)], axis=2).astype(np.int16)
    channels = SliceEncoder(volume, (1, 1, 1), spec).native_channels([0, 2])
    assert channels.shape == (2, spec.in_channels, 4, 4) == (2, 6, 4, 4)
    # slice 0: context (0, 0, 1) because slice -1 repeats slice 0; window a of -100 HU is 0.0
    np.testing.assert_allclose(channels[0, :, 0, 0], [0.0, 0.0, 0.0, 0.0, 0.5, 0.0])
    # slice 2: context (1, 2, 2); window b of 100 HU is 0.5
    np.testing.assert_allclose(channels[1, :, 0, 0], [0.5, 0.0, 1.0, 0.5, 1.0, 0.5])


def test_model_grid_resamples_to_pixel_size_and_pads_to_multiple():
    spec = InputSpec(pixel_size_mm=1.5, size_multiple=32)
    grid = model_grid((512, 400), (0.75, 0.75), spec)
    assert grid.resampled_size == (256, 200)
    assert grid.padded_size == (256, 224)


def test_encode_and_decode_shapes_round_trip():
    spec = InputSpec(pixel_size_mm=2.0, histogram_channel=True)
    volume = np.random.default_rng(0).integers(-1000, 400, (50, 30, 5)).astype(np.int16)
    encoder = SliceEncoder(volume, (1.0, 1.0, 3.0), spec)
    region = (slice(5, 45), slice(0, 30))
    images = encoder.encode([1, 2], region)
    grid = encoder.grid(region)
    assert tuple(images.shape) == (2, spec.in_channels) + grid.padded_size
    decoded = from_model_grid(torch.zeros((2, 3) + grid.padded_size), grid)
    assert tuple(decoded.shape[-2:]) == (40, 30)


def test_label_resampling_keeps_classes_and_pads_background():
    spec = InputSpec(pixel_size_mm=2.0)
    labels = np.zeros((1, 40, 40), dtype=np.uint8)
    labels[0, 10:30, 10:30] = 1
    labels[0, 18:22, 18:22] = 2
    grid = model_grid((40, 40), (1.0, 1.0), spec)
    out = labels_to_model_grid(labels, grid)
    assert tuple(out.shape) == (1, 32, 32)
    assert set(out.unique().tolist()) == {0, 1, 2}
    assert int((out[0, 20:, :] > 0).sum()) == 0  # padding is background
    assert (out == 1).sum().item() == pytest.approx(100, rel=0.1)


def test_histogram_bins_ignore_the_amount_of_air():
    rng = np.random.default_rng(1)
    body = rng.normal(40, 60, (30, 30, 10)).astype(np.float32)
    padded = np.full((60, 60, 10), -1000.0, np.float32)
    padded[15:45, 15:45] = body
    np.testing.assert_allclose(histogram_edges(padded, 16), histogram_edges(body, 16), atol=15)
