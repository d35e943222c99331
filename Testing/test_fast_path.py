"""The fast inference path against the reference path (plain network, float32, PyTorch, no folded
batch norms), the OpenVINO runtime and its cache, the fallback when it is missing, and memory."""

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import REPO, data_case, synthetic_ct

from LiverTumorSegLib.errors import LiverTumorSegError
from LiverTumorSegLib.inference import TorchPredictor, build_predictor
from LiverTumorSegLib.inference.openvino_runtime import OpenVinoPredictor, cache_root
from LiverTumorSegLib.inputs import read_volume
from LiverTumorSegLib.metrics import overlap_metrics
from LiverTumorSegLib.pipeline import Segmenter

GIB = 2 ** 30


@pytest.mark.parametrize("runtime", ["openvino", "torch"])
def test_in_fp32_the_fast_path_gives_the_reference_labels(random_card, runtime):
    volume = read_volume(data_case("tiny64")[0])
    reference = Segmenter.reference(random_card).segment(volume).labels
    fast = Segmenter(random_card, device="cpu", precision="fp32", runtime=runtime)
    assert runtime.lower() in fast.predictor.describe().lower()
    labels = fast.segment(volume).labels
    assert len(np.unique(reference)) > 1, "the reference must not be trivial"
    np.testing.assert_array_equal(labels, reference)


@pytest.mark.slow
def test_in_bf16_the_liver_mask_agrees_with_the_reference_on_a_real_case():
    volume = read_volume(data_case("chaos_ct3")[0])
    reference = Segmenter.reference().segment(volume).labels
    fast = Segmenter(None, device="cpu", precision="bf16").segment(volume).labels
    assert overlap_metrics(fast > 0, reference > 0, volume.spacing)["dice"] >= 0.995


def test_without_openvino_the_engine_falls_back_to_torch_and_says_so(random_card, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now fails
    with pytest.warns(UserWarning, match="OpenVINO is not installed.*PyTorch"):
        predictor = build_predictor(random_card, torch.device("cpu"))
    assert isinstance(predictor, TorchPredictor) and "PyTorch" in predictor.describe()
    with pytest.raises(LiverTumorSegError, match="OpenVINO is not installed"):
        build_predictor(random_card, torch.device("cpu"), runtime="openvino")


def test_the_converted_model_is_cached_and_verified(random_card, tmp_path, monkeypatch):
    monkeypatch.setenv("LIVERTUMORSEG_CACHE", str(tmp_path))
    first = OpenVinoPredictor(random_card)
    [entry] = (tmp_path / "openvino").iterdir()
    assert entry.name.startswith(random_card.weights_sha256[:24])
    conversions = []
    convert = OpenVinoPredictor._convert
    monkeypatch.setattr(OpenVinoPredictor, "_convert",
                        staticmethod(lambda ov, card: conversions.append(1) or convert(ov, card)))
    images = torch.rand(2, random_card.input.in_channels, 64, 64)
    again = OpenVinoPredictor(random_card)
    assert conversions == [], "a valid cache entry is loaded, not converted again"
    torch.testing.assert_close(again.predict(images), first.predict(images))
    with open(entry / "model.bin", "r+b") as handle:  # a damaged cache entry
        handle.seek(1000)
        handle.write(b"\x00" * 64)
    OpenVinoPredictor(random_card)
    assert conversions == [1], "a changed cache entry is converted again"


def test_openvino_refuses_a_gpu(random_card):
    with pytest.raises(LiverTumorSegError, match="CPU only"):
        build_predictor(random_card, torch.device("cuda"), runtime="openvino")


def test_memory_of_segment_stays_bounded_on_a_long_volume(liver_everywhere_card, tmp_path):
    """A 1,200-slice volume in a fresh `segment` process: peak RSS within twice the target of 1.5 GiB
    plus 3 bytes per voxel (a whole-volume float copy of a larger case would break it; this is a
    bound, not a timing). The untrained model calls everything liver: the worst case."""
    slab = synthetic_ct((256, 256, 40))
    array = np.concatenate([slab] * 30, axis=2)
    path = tmp_path / "long_ct.nii"
    nib.save(nib.Nifti1Image(array, np.diag([1.5, 1.5, 1.5, 1.0])), str(path))
    code = ("import json, resource, sys; from LiverTumorSegLib.cli import main; status = main(sys.argv[1:]); "
            "print(json.dumps({'status': status, 'peak': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))")
    result = subprocess.run([sys.executable, "-c", code, "segment", str(path), "-o", str(tmp_path / "out"),
                             "--model", str(liver_everywhere_card.path), "--device", "cpu", "--force"],
                            capture_output=True, text=True, timeout=900, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["status"] == 0
    target = 1.5 * GIB + 3 * array.size
    assert report["peak"] * 1024 <= 2 * target, f"peak RSS {report['peak'] / 2 ** 20:.2f} GiB"
    assert (tmp_path / "out" / "long_ct_seg.nii.gz").is_file()


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LIVERTUMORSEG_CACHE", str(tmp_path / "x"))
    assert cache_root() == tmp_path / "x"
    monkeypatch.delenv("LIVERTUMORSEG_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "livertumorseg"
