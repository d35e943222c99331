"""Metrics against values computed by hand."""

import math

import numpy as np
import pytest

from LiverTumorSegLib import metrics
from LiverTumorSegLib.labels import boundary, label_components
from LiverTumorSegLib.metrics import (
    evaluate_case,
    lesion_detection,
    overlap_metrics,
    overlapping_lesions,
    summarize,
    surface_distances,
)


def test_known_overlap():
    truth = np.zeros((10, 10, 10), bool)
    pred = np.zeros((10, 10, 10), bool)
    truth[0:4, 0:5, 0:5] = True   # 100 voxels
    pred[2:6, 0:5, 0:5] = True    # 100 voxels, 50 shared
    m = overlap_metrics(pred, truth, (1.0, 1.0, 1.0))
    assert m["dice"] == pytest.approx(0.5)
    assert m["iou"] == pytest.approx(50 / 150)
    assert m["voe"] == pytest.approx(1 - 50 / 150)
    assert m["rvd"] == pytest.approx(0.0)
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(0.5)
    assert m["pixel_accuracy"] == pytest.approx(1 - 100 / 1000)
    assert m["psnr_db"] == pytest.approx(-10 * math.log10(0.1))


def test_distances_of_shifted_slabs():
    truth = np.zeros((20, 20, 20), bool)
    truth[5:15, 5:15, 5:15] = True
    pred = np.roll(truth, 2, axis=0)
    m = overlap_metrics(pred, truth, (1.0, 1.0, 1.0))
    assert m["hd95_mm"] == pytest.approx(2.0)
    assert 0 < m["assd_mm"] <= 2.0
    scaled = overlap_metrics(pred, truth, (3.0, 1.0, 1.0))
    assert scaled["hd95_mm"] == pytest.approx(6.0)


def test_empty_conventions():
    empty = np.zeros((4, 4, 4), bool)
    full = np.ones((4, 4, 4), bool)
    both = overlap_metrics(empty, empty, (1, 1, 1))
    assert both["dice"] == 1.0 and both["hd95_mm"] == 0.0 and both["psnr_db"] is None
    one = overlap_metrics(full, empty, (1, 1, 1))
    assert one["dice"] == 0.0 and one["hd95_mm"] is None and one["rvd"] is None


def test_lesion_detection_counts_components():
    truth = np.zeros((30, 30, 30), bool)
    pred = np.zeros((30, 30, 30), bool)
    truth[2:5, 2:5, 2:5] = truth[10:13, 10:13, 10:13] = truth[20:23, 20:23, 20:23] = True
    pred[3:6, 3:6, 3:6] = True          # hits lesion 1
    pred[11, 11, 11] = True             # hits lesion 2
    pred[25:28, 2:4, 2:4] = True        # false positive
    d = lesion_detection(pred, truth)
    assert (d["lesions_true"], d["lesions_predicted"], d["lesions_found"]) == (3, 3, 2)
    assert d["lesion_recall"] == pytest.approx(2 / 3)
    assert d["lesion_precision"] == pytest.approx(2 / 3)
    assert d["lesion_f1"] == pytest.approx(2 / 3)


def test_overlapping_lesions_keep_the_whole_volumes_numbers():
    """The numbers name the same lesions as the whole volume's components, although the work is done
    inside the lesions' bounding box (here it starts far from the origin)."""
    truth = np.zeros((40, 40, 40), bool)
    pred = np.zeros((40, 40, 40), bool)
    truth[20:23, 30:33, 30:33] = truth[26:29, 22:25, 22:25] = truth[34:37, 34:37, 20:23] = True
    pred[27, 23, 23] = pred[35, 35, 21] = True  # hit the second and the third
    pred[20, 22, 22] = True                     # false positive, first in raster order
    found, matched, n_truth, n_pred = overlapping_lesions(pred, truth)
    whole, _ = label_components(truth)
    assert list(found) == sorted({int(whole[27, 23, 23]), int(whole[35, 35, 21])})
    assert whole[20, 30, 30] not in found
    assert list(matched) == [2, 3] and (n_truth, n_pred) == (3, 3)


def test_global_dice_pools_voxels():
    a = np.zeros((10, 10, 10), np.uint8)
    a[:5] = 1
    b = a.copy()
    b[:5, :, :5] = 0  # case 2 misses half its liver
    cases = {"one": evaluate_case(a, a, (1, 1, 1)), "two": evaluate_case(b, a, (1, 1, 1))}
    summary = summarize(cases)
    assert summary["liver"]["mean_dice"] == pytest.approx((1 + 2 * 250 / 750) / 2)
    assert summary["liver"]["global_dice"] == pytest.approx(2 * 750 / (1000 + 750))
    assert summary["tumor"]["mean_dice"] == 1.0  # no tumor anywhere: empty-empty scores 1


def _surface_distances_on_the_whole_grid(a, b, spacing):
    """The plain definition, without cropping: the oracle for `surface_distances`."""
    from scipy import ndimage

    sa, sb = boundary(a), boundary(b)
    return np.concatenate([ndimage.distance_transform_edt(~sb, sampling=spacing)[sa],
                           ndimage.distance_transform_edt(~sa, sampling=spacing)[sb]])


def _blob(shape, centre, radii):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii)) <= 1.0


@pytest.mark.parametrize("centres", [((20, 25, 12), (24, 22, 14)),   # inside the grid
                                     ((0, 25, 12), (3, 47, 23)),     # touching the grid's faces
                                     ((10, 10, 5), (40, 40, 20))])   # apart
def test_cropped_surface_distances_equal_the_whole_grid_ones(centres):
    shape, spacing = (48, 50, 24), (0.7, 0.8, 2.5)
    a, b = _blob(shape, centres[0], (9, 12, 6)), _blob(shape, centres[1], (7, 6, 4))
    np.testing.assert_array_equal(surface_distances(a, b, spacing),
                                  _surface_distances_on_the_whole_grid(a, b, spacing))


def test_cropped_scores_equal_the_whole_grid_ones_on_a_real_case():
    from conftest import data_case

    from LiverTumorSegLib.inputs import read_volume

    _, label_path = data_case("lits117_crop")  # its liver touches the faces of the crop
    label = read_volume(label_path)
    truth = np.asarray(label.array) > 0
    pred = np.roll(truth, (3, -2, 1), axis=(0, 1, 2))
    np.testing.assert_array_equal(surface_distances(pred, truth, label.spacing),
                                  _surface_distances_on_the_whole_grid(pred, truth, label.spacing))


def test_distance_transforms_cover_only_the_masks_box(monkeypatch):
    """What makes scoring fast: the distance transforms run on the box of both masks, not on the
    whole grid."""
    seen = []
    transform = metrics.ndimage.distance_transform_edt
    monkeypatch.setattr(metrics.ndimage, "distance_transform_edt",
                        lambda image, **kw: seen.append(image.shape) or transform(image, **kw))
    a = np.zeros((200, 200, 100), bool)
    b = np.zeros_like(a)
    a[50:60, 70:90, 40:45] = True
    b[55:70, 75:80, 42:50] = True
    overlap_metrics(a, b, (1.0, 1.0, 1.0))
    assert seen == [(20, 20, 10)] * 2
