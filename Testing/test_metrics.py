"""Metrics against values computed by hand."""

import math

import numpy as np
import pytest

from LiverTumorSegLib.metrics import evaluate_case, lesion_detection, overlap_metrics, summarize


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
