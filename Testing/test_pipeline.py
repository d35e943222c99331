"""The segmentation pipeline with a small random model: geometry, orientation, progress, cancel,
GPU out-of-memory recovery and bounded memory. Outputs of a random model are checked for shape and
consistency only, never as a segmentation."""

import threading
import tracemalloc

import numpy as np
import pytest
import torch
from conftest import data_case, synthetic_ct
from statistics_checks import assert_statistics_describe

from LiverTumorSegLib.errors import CancelledError, InputVolumeError
from LiverTumorSegLib.inference import TorchPredictor
from LiverTumorSegLib.inputs import read_volume
from LiverTumorSegLib.pipeline import Segmenter
from LiverTumorSegLib.volume.space import Volume


@pytest.fixture(scope="module")
def segmenter(random_card):
    return Segmenter(random_card, device="cpu")


def _affine(spacing=(1.5, 1.5, 3.0)):
    affine = np.diag(list(spacing) + [1.0])
    affine[:3, 3] = (-30.0, 12.0, 7.0)
    return affine


def test_output_matches_input_grid_on_real_tiny_case(segmenter):
    ct_path, _ = data_case("tiny64")
    volume = read_volume(ct_path)
    result = segmenter.segment(volume)
    assert result.labels.shape == volume.array.shape and result.labels.dtype == np.uint8
    np.testing.assert_array_equal(result.affine, volume.affine)
    assert set(np.unique(result.labels)) <= {0, 1, 2}
    assert_statistics_describe(result.statistics, result.labels, volume.affine)
    assert result.statistics["device"].startswith("cpu") and result.statistics["seconds"] > 0


@pytest.mark.parametrize("axes, flips", [((2, 0, 1), (True, False, False)),
                                         ((1, 2, 0), (False, True, True)),
                                         ((0, 1, 2), (True, True, False))])
def test_permuted_and_flipped_input_gives_the_same_segmentation(segmenter, axes, flips):
    ct = synthetic_ct((40, 36, 24))
    reference = segmenter.segment(Volume(ct, _affine()))
    # Store the same scan with another axis order and direction: voxel n of axis a of the new
    # array is voxel n (or its mirror) of axis axes[a] of the original.
    moved = np.transpose(ct, axes)
    affine = _affine()[:, list(axes) + [3]]
    for axis, flipped in enumerate(flips):
        if flipped:
            moved = np.flip(moved, axis)
            affine[:3, 3] += affine[:3, axis] * (moved.shape[axis] - 1)
            affine[:3, axis] *= -1
    result = segmenter.segment(Volume(np.ascontiguousarray(moved), affine))
    expected = np.transpose(reference.labels, axes)
    for axis, flipped in enumerate(flips):
        if flipped:
            expected = np.flip(expected, axis)
    np.testing.assert_array_equal(result.labels, expected)
    assert result.statistics["liver_volume_ml"] == reference.statistics["liver_volume_ml"]


def test_oblique_input_maps_back_to_its_own_grid_with_a_warning(segmenter):
    ct = synthetic_ct((40, 36, 24))
    angle = np.radians(35)
    affine = _affine()
    affine[:3, :3] = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0],
                               [-np.sin(angle), 0, np.cos(angle)]]) @ affine[:3, :3]
    with pytest.warns(UserWarning, match="35 degrees"):
        result = segmenter.segment(Volume(ct, affine))
    assert result.labels.shape == ct.shape
    assert any("oblique" in w for w in result.warnings)


def test_progress_is_monotonic_and_completes(segmenter):
    seen = []
    segmenter.segment(Volume(synthetic_ct(), _affine()), progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(seen) > 3


def test_cancel_between_batches(segmenter):
    cancel = threading.Event()
    calls = []

    def progress(fraction, message):
        calls.append(fraction)
        cancel.set()

    with pytest.raises(CancelledError):
        segmenter.segment(Volume(synthetic_ct(), _affine()), progress=progress, cancel=cancel)
    assert len(calls) == 1
    with pytest.raises(CancelledError):
        segmenter.segment(Volume(synthetic_ct(), _affine()), cancel=lambda: True)


def test_bad_input_is_refused_before_inference(segmenter):
    with pytest.raises(InputVolumeError, match="at least 3"):
        segmenter.segment(Volume(synthetic_ct((40, 36, 2)), _affine()))
    with pytest.raises(InputVolumeError, match="does not look like a CT"):
        segmenter.segment(Volume(np.abs(synthetic_ct()) + 100, _affine()))


class _OutOfMemoryAbove(torch.nn.Module):
    """Stands in for a GPU network that runs out of memory on batches above a size."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit, self.batches = limit, []

    def forward(self, images):
        if len(images) > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        self.batches.append(len(images))
        return torch.zeros(len(images), 3, *images.shape[2:])


def test_out_of_memory_splits_batches():
    network = _OutOfMemoryAbove(limit=2)
    probabilities = TorchPredictor(network, torch.device("cpu")).predict(torch.zeros(7, 1, 8, 8))
    assert probabilities.shape == (7, 3, 8, 8)
    assert max(network.batches) <= 2 and sum(network.batches) == 7


def test_out_of_memory_on_one_slice_falls_back_to_cpu_with_warning():
    network = _OutOfMemoryAbove(limit=0)
    predictor = TorchPredictor(network, torch.device("cpu"))

    def forward_once_fails(images, _original=network.forward):
        network.forward = lambda x: torch.zeros(len(x), 3, *x.shape[2:])
        return _original(images)

    network.forward = forward_once_fails
    with pytest.warns(UserWarning, match="continuing on the CPU"):
        out = predictor.predict(torch.zeros(1, 1, 8, 8))
    assert out.shape == (1, 3, 8, 8) and predictor.device.type == "cpu"


def test_memory_stays_bounded_on_a_large_volume(liver_everywhere_card):
    """Slices are encoded per batch, so numpy's peak (uint8 labels and confidence, and the int32
    component maps of post-processing included) stays well below the three float32 copies of
    the volume that whole-volume preprocessing would need, even though the fine pass covers every
    voxel."""
    segmenter = Segmenter(liver_everywhere_card, device="cpu")
    ct = synthetic_ct((320, 320, 64))
    tracemalloc.start()
    segmenter.segment(Volume(ct, _affine((1.5, 1.5, 2.0))))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2.5 * ct.size * 4


def test_shifted_views_map_back_onto_their_pixels():
    from LiverTumorSegLib.inference.test_time import predict_with_shifts, shifted

    images = torch.rand(2, 3, 64, 64)
    view = shifted(images, 5, -3)
    assert torch.equal(view[:, :, 0, 10], images[:, :, 5, 7])
    assert not view[:, :, -5:].any(), "pixels beyond the image are air (0)"

    def pointwise(batch):  # a network that sees each pixel alone: shifting cannot change it
        return torch.softmax(batch * 4.0, dim=1)

    plain = pointwise(images)
    averaged = predict_with_shifts(pointwise, images, ((16, 16), (-16, -16), (5, -3)))
    torch.testing.assert_close(averaged, plain, rtol=0, atol=1e-6)

    def position(batch):  # a "network" that answers with each pixel's row: every view differs
        rows = torch.arange(batch.shape[-2], dtype=torch.float32).view(1, 1, -1, 1)
        return rows.expand(batch.shape[0], 1, -1, batch.shape[-1])

    mixed = predict_with_shifts(position, images, ((16, 0),))
    assert mixed[0, 0, 20, 0] == (20 + 4) / 2, "the original row 20 and the view's row 4"
    assert mixed[0, 0, 5, 0] == 5, "a pixel only the original saw (the view starts at row 16)"


def test_test_time_shifts_are_recorded_and_change_the_fine_pass_only(random_card):
    volume = Volume(synthetic_ct(), np.diag([1.5, 1.5, 3.0, 1.0]))
    plain = Segmenter(random_card, device="cpu").segment(volume)
    tta = Segmenter(random_card, device="cpu", tta_shifts=((16, 16),)).segment(volume)
    assert tta.statistics["test_time_shifts_px"] == [[16, 16]]
    assert "test_time_shifts_px" not in plain.statistics
    assert tta.labels.shape == plain.labels.shape
