"""Preprocessing: windows, histogram equalisation, 2.5D slabs, model-grid resampling (torch, on the
CPU here: the GPU runs the same code)."""

import numpy as np
import pytest
import torch

from LiverTumorSegLib.model.card import InputSpec, Window
from LiverTumorSegLib.preprocessing import (LOOKUP_HU, SliceEncoder, from_model_grid, histogram_edges,
                                            histogram_lookup, labels_to_model_grid, model_grid,
                                            read_slices)


def read_slabs(volume, slice_indices, spec, region=None):
    """Slabs (N, slices, x, y) as training builds them, from the slices inference reads."""
    slices, index = read_slices(volume, slice_indices, spec, region)
    return slices[index]

TWO_WINDOWS = (Window("a", 0, 200), Window("b", 100, 200))


def test_channels_equal_the_window_and_histogram_definitions():
    """Oracle in numpy: clip((HU - low) / width, 0, 1) per window, and the equal-count lookup of
    the HU rounded and clipped to the lookup range."""
    rng = np.random.default_rng(0)
    volume = rng.integers(-1500, 3500, (12, 10, 3)).astype(np.int16)
    spec = InputSpec(windows=TWO_WINDOWS, histogram_channel=True, context_slices=0)
    lookup = histogram_lookup(histogram_edges(volume, spec.histogram_bins))
    channels = SliceEncoder(spec, (1.0, 1.0), torch.device("cpu"), lookup).native_channels(
        read_slices(volume, [1], spec)[0]).numpy()[0]
    hu = volume[:, :, 1].astype(np.float32)
    for n, window in enumerate(TWO_WINDOWS):
        expected = np.clip((hu - np.float32(window.low)) / np.float32(window.width), 0, 1)
        np.testing.assert_array_equal(channels[n], expected)
    np.testing.assert_array_equal(channels[2], lookup[np.clip(volume[:, :, 1], *LOOKUP_HU) - LOOKUP_HU[0]])


def test_float_hu_is_rounded_before_the_histogram_lookup():
    spec = InputSpec(windows=(), histogram_channel=True, context_slices=0)
    lookup = np.linspace(0, 1, LOOKUP_HU[1] - LOOKUP_HU[0] + 1, dtype=np.float32)
    encoder = SliceEncoder(spec, (1.0, 1.0), torch.device("cpu"), lookup)
    as_float = encoder.native_channels(torch.tensor([[[10.4, 10.6, -5000.0]]]))
    as_int = encoder.native_channels(torch.tensor([[[10, 11, -1024]]], dtype=torch.int16))
    assert torch.equal(as_float, as_int)


def test_histogram_equalisation_gives_equal_count_bins():
    rng = np.random.default_rng(0)
    volume = rng.exponential(100.0, size=(40, 40, 40)).astype(np.int16)
    edges = histogram_edges(volume, bins=10)
    spec = InputSpec(windows=(), histogram_channel=True, context_slices=0)
    encoder = SliceEncoder(spec, (1.0, 1.0), torch.device("cpu"), histogram_lookup(edges))
    scaled = encoder.native_channels(torch.from_numpy(volume).permute(2, 0, 1)).numpy()
    counts, _ = np.histogram(scaled, bins=10, range=(0, 1))
    assert counts.min() > 0.8 * counts.mean() and counts.max() < 1.2 * counts.mean()
    assert np.all(np.diff(edges) >= 0)


def test_slabs_and_channels_follow_context_then_windows_and_repeat_edge_slices():
    spec = InputSpec(windows=TWO_WINDOWS, histogram_channel=False, context_slices=1)
    volume = np.stack([np.full((4, 4), hu) for hu in (-100, 0, 100)], axis=2).astype(np.int16)
    slabs = read_slabs(volume, [0, 2], spec)
    assert slabs[:, :, 0, 0].tolist() == [[-100, -100, 0], [0, 100, 100]]
    channels = SliceEncoder(spec, (1, 1), torch.device("cpu")).native_channels(
        slabs.flatten(0, 1)).reshape(2, -1, 4, 4)
    assert channels.shape == (2, spec.in_channels, 4, 4) == (2, 6, 4, 4)
    # slice 0: context (0, 0, 1) because slice -1 repeats slice 0; window a of -100 HU is 0.0
    np.testing.assert_allclose(channels[0, :, 0, 0], [0.0, 0.0, 0.0, 0.0, 0.5, 0.0])
    # slice 2: context (1, 2, 2); window b of 100 HU is 0.5
    np.testing.assert_allclose(channels[1, :, 0, 0], [0.5, 0.0, 1.0, 0.5, 1.0, 0.5])


def test_slabs_read_a_region_of_any_strided_view():
    volume = np.arange(6 * 5 * 4, dtype=np.int16).reshape(6, 5, 4)
    view = volume[::-1].transpose(1, 0, 2)  # what canonical orientation makes of an input
    spec = InputSpec(context_slices=1)
    slabs = read_slabs(view, [3], spec, (slice(1, 4), slice(2, 5)))
    np.testing.assert_array_equal(slabs[0].numpy(), np.moveaxis(view[1:4, 2:5, [2, 3, 3]], -1, 0))


def test_encoding_each_slice_once_equals_encoding_every_slab():
    """Inference encodes each slice once and gathers the slabs; training encodes slabs: same input."""
    spec = InputSpec(windows=TWO_WINDOWS, histogram_channel=True, context_slices=1, pixel_size_mm=1.7)
    volume = np.random.default_rng(3).integers(-1000, 400, (40, 36, 9)).astype(np.int16)
    encoder = SliceEncoder.for_volume(volume, (1.0, 1.0, 2.0), spec, torch.device("cpu"))
    slices, index = read_slices(volume, [0, 1, 2, 8], spec)
    assert len(slices) == 6  # slices 0 to 3, 7 and 8, each read once
    gathered = encoder.encode_slices(slices)[index].flatten(1, 2)
    torch.testing.assert_close(gathered, encoder.encode(slices[index]), rtol=0, atol=0)


def test_a_histogram_spec_needs_the_volume_lookup():
    with pytest.raises(ValueError, match="lookup"):
        SliceEncoder(InputSpec(histogram_channel=True), (1, 1), torch.device("cpu"))


def test_model_grid_resamples_to_pixel_size_and_pads_to_multiple():
    spec = InputSpec(pixel_size_mm=1.5, size_multiple=32)
    grid = model_grid((512, 400), (0.75, 0.75), spec)
    assert grid.resampled_size == (256, 200)
    assert grid.padded_size == (256, 224)


def test_encode_and_decode_shapes_round_trip():
    spec = InputSpec(pixel_size_mm=2.0, histogram_channel=True)
    volume = np.random.default_rng(0).integers(-1000, 400, (50, 30, 5)).astype(np.int16)
    encoder = SliceEncoder.for_volume(volume, (1.0, 1.0, 3.0), spec, torch.device("cpu"))
    images = encoder.encode(read_slabs(volume, [1, 2], spec, (slice(5, 45), slice(0, 30))))
    grid = encoder.grid((40, 30))
    assert tuple(images.shape) == (2, spec.in_channels) + grid.padded_size
    assert images[:, :, grid.resampled_size[0]:].abs().sum() == 0  # zero padding
    decoded = from_model_grid(torch.zeros((2, 3) + grid.padded_size), grid)
    assert tuple(decoded.shape[-2:]) == (40, 30)


def test_label_resampling_keeps_classes_and_pads_background():
    spec = InputSpec(pixel_size_mm=2.0)
    labels = torch.zeros((1, 40, 40), dtype=torch.uint8)
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
