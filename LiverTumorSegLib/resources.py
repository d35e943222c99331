"""Paths of the files shipped under `Resources/` (model, demo sample, UI, icons).

`Resources/` sits beside `LiverTumorSegLib/` both in a source checkout and where the Slicer extension
installs its scripted modules, so one relative path serves the command line and Slicer.
"""

from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
RESOURCES_DIR = REPOSITORY_ROOT / "Resources"
MODEL_DIR = RESOURCES_DIR / "Model"
BUNDLED_MODEL_CARD = MODEL_DIR / "model_card.json"
TRAINING_CONFIG = MODEL_DIR / "training_config.json"
SAMPLE_CT = RESOURCES_DIR / "Sample" / "lits117_crop_ct.nii.gz"
SAMPLE_LABEL = RESOURCES_DIR / "Sample" / "lits117_crop_label.nii.gz"
MODULE_UI = RESOURCES_DIR / "UI" / "LiverTumorSeg.ui"
MODULE_ICON = RESOURCES_DIR / "Icons" / "LiverTumorSeg.png"
