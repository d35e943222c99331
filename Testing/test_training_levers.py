"""The training levers against false lesions: synthetic lesions shaped (and sized) like real ones from
a bank of label maps, and extra loss weight on the non-tumour pixels along the liver's border."""

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import DATA_DIR

from LiverTumorSegLib.labels import LIVER, TUMOR, label_components
from LiverTumorSegLib.training.lesion_shapes import EXTENT, load_lesion_shapes
from LiverTumorSegLib.training.losses import border_negative_weights, segmentation_loss
from LiverTumorSegLib.training.synthetic_tumors import LesionSpec, insert_lesions


def _label_map(path, tumour_box, shape=(60, 60, 40), spacing=(1.0, 1.0, 2.0)):
    labels = np.zeros(shape, np.uint8)
    labels[5:55, 5:55, 2:38] = LIVER
    labels[tumour_box] = TUMOR
    nib.save(nib.Nifti1Image(labels, np.diag(list(spacing) + [1.0])), str(path))


def test_a_bank_shape_keeps_the_real_lesions_size_and_form(tmp_path):
    # A 24 x 8 x 8 mm bar (12 x 8 x 4 voxels at 2 x 1 x 2 mm... here 1 x 1 x 2 mm voxels).
    _label_map(tmp_path / "bar_label.nii.gz", (slice(18, 42), slice(26, 34), slice(18, 22)))
    bank = load_lesion_shapes(tmp_path)
    assert len(bank) == 1
    volume = 24 * 8 * 8.0
    assert float(bank.radii_mm[0]) == pytest.approx((3 * volume / (4 * np.pi)) ** (1 / 3), rel=0.01)
    inside = (bank.fields[0, 0] < 1).numpy()
    extents = [np.ptp(np.flatnonzero(inside.any(axis=tuple(a for a in range(3) if a != n))))
               for n in range(3)]
    assert extents[0] > 2 * extents[1] and extents[0] > 2 * extents[2], "the bar stays a bar"
    cube_mm = 2 * EXTENT * float(bank.radii_mm[0])
    assert (extents[0] + 1) / inside.shape[0] * cube_mm == pytest.approx(24, abs=3)


def test_real_shaped_lesions_take_the_banks_form(tmp_path):
    _label_map(tmp_path / "bar_label.nii.gz", (slice(18, 42), slice(26, 34), slice(18, 22)))
    bank = load_lesion_shapes(tmp_path)
    hu = torch.full((4, 9, 96, 96), 200.0)  # liver everywhere; bright ("vessels") but in the
    hu[:, :, 10:86, 10:86] = 60.0  # middle, so every lesion is centred away from the edges
    labels = torch.full((4, 9, 96, 96), LIVER, dtype=torch.uint8)
    spec = LesionSpec(real_shape_rate=1.0, max_lesions=1, real_scale=(1.0, 1.0), edge_mm=(0.5, 0.5))
    placed = insert_lesions(hu, labels, (1.0, 1.0, 2.0), torch.Generator().manual_seed(1), spec, bank)
    assert placed.all()
    for slab in labels:
        tumour = (slab == TUMOR).numpy()  # (slices, x, y): the 18 mm slab holds the whole 8 mm bar
        assert abs(tumour.sum() * 2.0 - 24 * 8 * 8) < 0.35 * 24 * 8 * 8, "the real size (mm3)"
        rows, columns = np.nonzero(tumour.any(axis=0))
        spread = np.linalg.eigvalsh(np.cov(np.stack([rows, columns])))
        assert spread[1] > 4 * spread[0], "an elongated lesion (turned in-plane), not a round one"


@pytest.mark.skipif(not (DATA_DIR / "ircadb_masks").is_dir(),
                    reason="../shared/data/ircadb_masks (real lesion label maps) is absent")
def test_the_real_bank_holds_the_ircadb_tumours():
    bank = load_lesion_shapes(DATA_DIR / "ircadb_masks")
    assert len(bank) >= 90
    assert float(bank.radii_mm.min()) >= (3 * 100 / (4 * np.pi)) ** (1 / 3) - 1e-3
    inside = (bank.fields < 1).float().mean(dim=(1, 2, 3, 4))
    sphere = 4 / 3 * np.pi / (2 * EXTENT) ** 3
    assert float(inside.min()) > 0.25 * sphere, "no shape is empty (or mostly cut off by its cube)"
    assert abs(float(inside.median()) - sphere) < 0.25 * sphere, "shapes hold their own volume"


def test_border_negatives_weigh_the_band_around_the_liver_but_not_tumour():
    labels = torch.zeros(1, 40, 40, dtype=torch.long)
    labels[0, 10:30, 10:30] = LIVER
    labels[0, 12:15, 12:15] = TUMOR  # a tumour by the border
    weights = border_negative_weights(labels, band_pixels=3, weight=5.0)[0]
    assert weights[10, 20] == 5.0 and weights[8, 20] == 5.0, "inside and outside the border"
    assert weights[20, 20] == 1.0 and weights[2, 2] == 1.0, "far from it"
    assert (weights[12:15, 12:15] == 1.0).all(), "tumour pixels keep their weight"
    logits = torch.randn(1, 3, 40, 40)
    classes = torch.tensor([1.0, 1.0, 3.0])
    plain = segmentation_loss("ce_dice", logits, labels, classes)
    ones = segmentation_loss("ce_dice", logits, labels, classes, torch.ones(1, 40, 40))
    assert torch.allclose(plain, ones), "weights of 1 are the plain loss"
    tumour_everywhere = torch.zeros(1, 3, 40, 40)
    tumour_everywhere[:, TUMOR] = 5.0
    assert segmentation_loss("ce_dice", tumour_everywhere, labels, classes, weights[None]) > \
        segmentation_loss("ce_dice", tumour_everywhere, labels, classes), \
        "calling the border tumour costs more"
    with pytest.raises(ValueError, match="ce_dice"):
        segmentation_loss("tversky", logits, labels, None, weights[None])


def test_real_shapes_are_components_of_the_label_maps(tmp_path):
    """Two tumours in one map, one below 100 mm3: only the other enters the bank."""
    labels_path = tmp_path / "two_label.nii.gz"
    _label_map(labels_path, (slice(18, 30), slice(26, 34), slice(18, 22)))
    image = nib.load(labels_path)
    labels = np.asarray(image.dataobj).copy()
    labels[40:43, 40:43, 30:32] = TUMOR  # 18 voxels of 2 mm3
    nib.save(nib.Nifti1Image(labels, image.affine), str(labels_path))
    assert label_components(labels == TUMOR)[1] == 2
    assert len(load_lesion_shapes(tmp_path)) == 1


def test_a_run_with_both_levers_records_them(tmp_path):
    import json
    import shutil
    import subprocess
    import sys

    from conftest import REPO, data_case

    from LiverTumorSegLib.model.card import load_model_card

    data, shapes = tmp_path / "data", tmp_path / "shapes"
    data.mkdir(), shapes.mkdir()
    ct, label = data_case("tiny64")
    shutil.copy(ct, data / "case_a_ct.nii.gz")
    shutil.copy(label, data / "case_a_label.nii.gz")
    _label_map(shapes / "bar_label.nii.gz", (slice(18, 42), slice(26, 34), slice(18, 22)))
    config = json.loads((REPO / "Resources" / "Model" / "training_config.json").read_text())
    config["architecture"] = {"name": "Unet", "encoder_name": "resnet18"}
    config["training"].update(epochs=1, steps_per_epoch=2, batch_size=2, crop_size=64,
                              synthetic_tumor_rate=1.0)
    (tmp_path / "config.json").write_text(json.dumps(config))
    result = subprocess.run(
        [sys.executable, "-m", "LiverTumorSegLib.cli", "train", str(data), "-o", str(tmp_path / "run"),
         "--config", str(tmp_path / "config.json"), "--folds", "1", "--device", "cpu",
         "--lesion-shapes", str(shapes), "--real-shape-rate", "0.7", "--border-negative-weight", "3"],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    card = load_model_card(tmp_path / "run" / "model_card.json")
    recorded = card.training["hyperparameters"]
    assert recorded["lesion_shapes"] == str(shapes) and recorded["real_shape_rate"] == 0.7
    assert recorded["border_negative_weight"] == 3.0
    assert "real lesion shapes: 1 tumours of 1 label maps" in (tmp_path / "run" / "train.log").read_text()
