"""The command line, run as a user runs it (subprocess), with a small random model."""

import csv
import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from conftest import data_case, synthetic_ct
from statistics_checks import assert_statistics_describe

from LiverTumorSegLib import cli
from LiverTumorSegLib.inputs import read_volume
from LiverTumorSegLib.model import card as card_module


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "LiverTumorSegLib.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


def _nifti(path, array, affine=None):
    nib.save(nib.Nifti1Image(array, np.eye(4) * 1.5 if affine is None else affine), str(path))
    return path


@pytest.fixture(scope="module")
def synthetic_input(tmp_path_factory):
    affine = np.diag([-1.5, -1.5, 3.0, 1.0])
    return _nifti(tmp_path_factory.mktemp("inputs") / "body_ct.nii.gz", synthetic_ct(), affine)


def test_segment_writes_aligned_outputs_and_statistics(random_card, tmp_path):
    ct_path, _ = data_case("tiny64")
    result = run_cli("segment", ct_path, "--model", random_card.path, "-o", tmp_path / "out",
                     "--overlay", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    seg = nib.load(str(tmp_path / "out" / "tiny64_ct_seg.nii.gz"))
    ct = nib.load(str(ct_path))
    assert seg.shape == ct.shape and seg.get_data_dtype() == np.uint8
    np.testing.assert_allclose(seg.affine, ct.affine, atol=1e-5)
    stats = json.loads((tmp_path / "out" / "tiny64_ct_stats.json").read_text())
    assert_statistics_describe(stats, np.asarray(seg.dataobj), seg.affine)
    assert stats["device"].startswith("cpu") and stats["seconds"] > 0
    assert stats["input"] == str(ct_path) and stats["model"] == random_card.name
    assert f"liver {stats['liver_volume_ml']:.1f} mL, {stats['tumor_count']} tumor(s)" in result.stdout
    assert (tmp_path / "out" / "tiny64_ct_overlay.png").read_bytes()[:4] == b"\x89PNG"


def test_a_folder_of_inputs_with_nrrd_gets_a_summary_table(random_card, synthetic_input, tmp_path):
    import nrrd

    folder = tmp_path / "scans"
    folder.mkdir()
    nrrd.write(str(folder / "scan.nrrd"), synthetic_ct(), {
        "space": "left-posterior-superior", "space directions": np.diag([1.5, 1.5, 3.0]),
        "space origin": np.zeros(3)})
    (folder / "notes.txt").write_text("not a volume")
    result = run_cli("segment", synthetic_input, folder, "--model", random_card.path,
                     "-o", tmp_path / "out", "--min-lesion-mm3", "0", "--closing-mm", "2")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "body_ct_seg.nii.gz", "body_ct_stats.json", "lesions.csv", "scan_seg.nii.gz",
        "scan_stats.json", "summary.csv"]
    assert "burden %" in result.stdout and "scan " in result.stdout
    assert "2 of 2 cases segmented." in result.stdout


def test_a_bad_input_fails_alone_with_one_clear_line(random_card, synthetic_input, tmp_path):
    flat = _nifti(tmp_path / "flat_ct.nii.gz", np.zeros((20, 20), np.int16))
    result = run_cli("segment", flat, synthetic_input, "--model", random_card.path, "-o",
                     tmp_path / "out")
    assert result.returncode == 2, "a failed case sets the exit status"
    assert any(line.startswith("error: flat_ct: The volume has 2 dimensions")
               for line in result.stderr.splitlines())
    assert "1 of 2 cases segmented; 1 failed:" in result.stdout
    assert "  flat_ct: The volume has 2 dimensions" in result.stdout
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["body_ct_seg.nii.gz", "body_ct_stats.json", "lesions.csv", "summary.csv"], \
        "the case after the failed one is done, the failed one leaves nothing"


def test_mri_needs_force_and_a_forced_run_says_so_everywhere(random_card, synthetic_input, tmp_path):
    mri = _nifti(tmp_path / "mri.nii.gz",
                 np.random.default_rng(0).integers(0, 900, (30, 30, 9)).astype(np.int16))
    refused = run_cli("segment", mri, "--model", random_card.path, "-o", tmp_path / "out")
    assert refused.returncode == 2 and "pass --force" in refused.stderr
    assert "force=True" not in refused.stderr
    forced = run_cli("segment", mri, synthetic_input, "--model", random_card.path, "-o",
                     tmp_path / "out", "--force")
    assert forced.returncode == 0 and "warning:" in forced.stderr
    warning = "does not look like a CT in Hounsfield units"
    stats = json.loads((tmp_path / "out" / "mri_stats.json").read_text())
    assert any(warning in w for w in stats["warnings"])
    summary = forced.stdout.split("\nbody_ct:")[0]
    assert "mri: liver" in summary and f"WARNING: {mri} {warning}" in summary
    rows = {row["case"]: row for row in csv.DictReader((tmp_path / "out" / "summary.csv").open())}
    assert warning in rows["mri"]["warnings"] and warning not in rows["body_ct"]["warnings"]


def test_tampered_weights_are_refused(random_card, tmp_path, synthetic_input):
    import shutil

    shutil.copy(random_card.path, tmp_path / "card.json")
    data = bytearray(random_card.weights_path.read_bytes())
    data[100] ^= 1
    (tmp_path / random_card.weights_file).write_bytes(bytes(data))
    result = run_cli("segment", synthetic_input, "--model", tmp_path / "card.json", "-o",
                     tmp_path / "out")
    assert result.returncode == 2 and "SHA-256" in result.stderr
    assert not (tmp_path / "out").exists()


def test_unwritable_output_folder(random_card, synthetic_input, tmp_path):
    (tmp_path / "file").write_text("x")
    result = run_cli("segment", synthetic_input, "--model", random_card.path, "-o",
                     tmp_path / "file" / "out")
    assert result.returncode == 2 and "Cannot write to the output folder" in result.stderr


def test_no_installed_model_is_said_plainly(monkeypatch, tmp_path, capsys, synthetic_input):
    monkeypatch.setattr(card_module, "BUNDLED_MODEL_CARD", tmp_path / "absent" / "model_card.json")
    assert cli.main(["segment", str(synthetic_input), "-o", str(tmp_path / "out" / "nested")]) == 2
    assert "No model is installed" in capsys.readouterr().err
    assert not (tmp_path / "out").exists(), "a failed run leaves no empty output folder"
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo"]) == 2
    assert "No model is installed" in capsys.readouterr().err
    assert not (tmp_path / "livertumorseg_demo").exists()
    (tmp_path / "mine").mkdir()
    assert cli.main(["demo", "-o", "mine"]) == 2
    assert (tmp_path / "mine").is_dir(), "a folder that was there before is left alone"
    assert cli.main(["info"]) == 0
    assert "No model is installed" in capsys.readouterr().out


def test_evaluate_folders(tmp_path):
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    truth.mkdir(), pred.mkdir()
    labels = np.zeros((20, 20, 10), np.uint8)
    labels[5:15, 5:15, 2:8] = 1
    labels[8:11, 8:11, 4:6] = 2
    _nifti(truth / "a_label.nii.gz", labels)
    _nifti(pred / "a_ct_seg.nii.gz", labels)
    shifted = np.roll(labels, 1, axis=0)
    _nifti(truth / "b_label.nii.gz", labels)
    _nifti(pred / "b_ct_seg.nii.gz", shifted)
    result = run_cli("evaluate", "--pred", pred, "--truth", truth, "-o", tmp_path / "eval")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert report["cases"]["a"]["liver"]["dice"] == 1.0
    assert 0.5 < report["cases"]["b"]["liver"]["dice"] < 1.0
    csv_lines = (tmp_path / "eval" / "evaluation.csv").read_text().splitlines()
    assert csv_lines[0].startswith("case,liver_dice") and len(csv_lines) == 3
    assert (tmp_path / "eval" / "evaluation_dice.png").is_file()
    assert "global Dice" in result.stdout


def test_evaluate_refuses_different_grids(tmp_path):
    _nifti(tmp_path / "p.nii.gz", np.zeros((4, 4, 4), np.uint8))
    _nifti(tmp_path / "t.nii.gz", np.zeros((4, 4, 5), np.uint8))
    result = run_cli("evaluate", "--pred", tmp_path / "p.nii.gz", "--truth", tmp_path / "t.nii.gz",
                     "-o", tmp_path / "eval")
    assert result.returncode == 2 and "same voxel grid" in result.stderr


def test_demo_and_info_with_a_given_model(random_card, tmp_path):
    demo = run_cli("demo", "--model", random_card.path, "-o", tmp_path / "demo", "--device", "cpu")
    assert demo.returncode == 0, demo.stderr
    from LiverTumorSegLib.evaluation import evaluate_files
    from LiverTumorSegLib.resources import SAMPLE_LABEL

    scores = evaluate_files([("demo", tmp_path / "demo" / "lits117_crop_ct_seg.nii.gz", SAMPLE_LABEL)])
    liver, tumor = scores["demo"]["liver"]["dice"], scores["demo"]["tumor"]["dice"]
    assert f"liver Dice {liver:.3f}, tumor Dice {tumor:.3f}" in demo.stdout, "the printed Dice is the file's"
    spacing = " x ".join(f"{s:g}" for s in read_volume(SAMPLE_LABEL).spacing)
    assert f"the header's {spacing} mm is an estimate from its anatomy" in demo.stdout
    assert "ATTRIBUTION.md" in demo.stdout
    info = run_cli("info", "--model", random_card.path)
    assert info.returncode == 0 and random_card.name in info.stdout and "would use: cpu" in info.stdout
