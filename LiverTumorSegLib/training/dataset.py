"""Training data: find CT/label pairs, split by patient, cache canonical volumes, sample slices.

Two namings are read: `<case>_ct.nii.gz` + `<case>_label.nii.gz` (the project's data folder) and
LiTS's `volume-N.nii[.gz]` + `segmentation-N.nii[.gz]`. Volumes are brought to the engine's canonical
orientation from their affines (never by assuming an axis order) and cached as `.npy` files that are
memory-mapped, so a 131-case LiTS set trains without holding every volume in RAM.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputVolumeError
from ..labels import LIVER, TUMOR
from ..volume.checks import as_scalar_3d
from ..volume.io import read_volume_file
from ..volume.orientation import plan_reorientation

_PAIRED = re.compile(r"^(?P<case>.+)_ct\.nii(\.gz)?$")
_LITS = re.compile(r"^volume-(?P<number>\d+)\.nii(\.gz)?$")

# Cases whose label was made by a model, not a person: trained on, never scored as truth.
MODEL_MADE_LABELS = ("totalseg_example",)

# Terms of the sources named in ../shared/data/README.md, by case-name prefix.
SOURCE_TERMS = {
    "ircadb": "3D-IRCADb-01 (IRCAD), CC BY-NC-ND 4.0",
    "chaos": "CHAOS challenge data, under the CHAOS challenge's terms",
    "lits": "LiTS, CC BY-NC-SA 4.0 (MSD Task03 copy: CC BY-SA 4.0)",
    "totalseg": "TotalSegmentator repository test CT (label made by TotalSegmentator, not a person)",
}


@dataclass(frozen=True)
class Case:
    """One patient: CT and label files."""

    name: str
    ct: Path
    label: Path

    @property
    def label_is_truth(self) -> bool:
        return self.name not in MODEL_MADE_LABELS

    @property
    def terms(self) -> str:
        prefix = self.name.split("_")[0].split("-")[0].lower()
        return SOURCE_TERMS.get(prefix, "terms of its source (not recorded)")


def find_cases(folder: str | Path, exclude: tuple[str, ...] = ()) -> list[Case]:
    """All CT/label pairs in a folder (both namings), sorted by name, minus `exclude`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputVolumeError(f"{folder} is not a folder of CT/label pairs.")
    cases = []
    for path in sorted(folder.iterdir()):
        paired, lits = _PAIRED.match(path.name), _LITS.match(path.name)
        if paired:
            name = paired["case"]
            label = next((folder / f"{name}_label{s}" for s in (".nii.gz", ".nii")
                          if (folder / f"{name}_label{s}").is_file()), None)
        elif lits:
            name = f"lits-{lits['number']}"
            label = next((folder / f"segmentation-{lits['number']}{s}" for s in (".nii.gz", ".nii")
                          if (folder / f"segmentation-{lits['number']}{s}").is_file()), None)
        else:
            continue
        if label is not None and name not in exclude:
            cases.append(Case(name, path, label))
    if not cases:
        raise InputVolumeError(f"No CT/label pairs in {folder}: expected <case>_ct.nii.gz with "
                               "<case>_label.nii.gz, or volume-N.nii with segmentation-N.nii.")
    return cases


def split_cases(cases: list[Case], seed: int, folds: int = 5, fold: int = 0,
                validation: tuple[str, ...] = ()) -> tuple[list[Case], list[Case]]:
    """Patient-level split: an explicit validation list, or fold `fold` of a seeded k-fold.

    Cases whose label a model made are only ever trained on, never held out for scoring."""
    if validation:
        unknown = set(validation) - {c.name for c in cases}
        if unknown:
            raise InputVolumeError(f"Validation cases not found: {sorted(unknown)}.")
        held = [c for c in cases if c.name in validation]
        if not all(c.label_is_truth for c in held):
            raise InputVolumeError(f"{', '.join(MODEL_MADE_LABELS)} has a label made by a model; "
                                   "it cannot be scored as ground truth.")
    else:
        if not 0 <= fold < folds or folds < 2:
            raise InputVolumeError(f"Fold {fold} of {folds} does not exist.")
        order = sorted((c for c in cases if c.label_is_truth), key=lambda c: c.name)
        random.Random(seed).shuffle(order)
        held = order[fold::folds]
    train = [c for c in cases if c not in held]
    if not train:
        raise InputVolumeError("The split leaves no case to train on.")
    return train, held


CACHE_LAYOUT = "zxy-v2"  # bump when the cached arrays change, so stale caches are rebuilt
FOREGROUND_POINTS = 64


@dataclass
class CachedCase:
    """A case in canonical orientation with axial slices first (k, i, j), memory-mapped from the
    cache, so one 2.5D slab is one contiguous read."""

    name: str
    hu: np.ndarray  # int16 (k, i, j)
    labels: np.ndarray  # uint8 (k, i, j)
    spacing: tuple[float, float, float]  # canonical (i, j, k) spacing in mm
    liver_slices: np.ndarray
    tumor_slices: np.ndarray
    foreground: dict[int, np.ndarray]  # per liver slice, up to FOREGROUND_POINTS (i, j) label voxels


def cache_case(case: Case, cache_dir: Path) -> CachedCase:
    """Write (once) and memory-map the canonical HU and label arrays of a case."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    hu_path = cache_dir / f"{case.name}_hu_{CACHE_LAYOUT}.npy"
    label_path = cache_dir / f"{case.name}_labels_{CACHE_LAYOUT}.npy"
    meta_path = cache_dir / f"{case.name}_{CACHE_LAYOUT}.json"
    if not meta_path.is_file():
        ct, label = read_volume_file(case.ct), read_volume_file(case.label)
        ct_array, label_array = as_scalar_3d(ct.array), as_scalar_3d(label.array)
        if ct_array.shape != label_array.shape:
            raise InputVolumeError(f"{case.name}: CT {ct_array.shape} and label "
                                   f"{label_array.shape} differ in shape.")
        plan = plan_reorientation(ct_array.shape, ct.affine)
        slices_first = (2, 0, 1)
        hu = np.clip(plan.to_canonical(ct_array), -1024, 3071).astype(np.int16).transpose(slices_first)
        np.save(hu_path, np.ascontiguousarray(hu))
        labels = plan.to_canonical(np.asarray(label_array)).astype(np.uint8).transpose(slices_first)
        np.save(label_path, np.ascontiguousarray(labels))
        meta_path.write_text(json.dumps({"spacing": plan.canonical_spacing}))
    hu = np.load(hu_path, mmap_mode="r")
    labels = np.load(label_path, mmap_mode="r")
    highest = labels.max(axis=(1, 2))  # per axial slice: 0 nothing, 1 liver, 2 tumor
    liver_slices = np.flatnonzero(highest >= LIVER)
    rng = np.random.default_rng(len(liver_slices))
    foreground = {}
    for k in liver_slices:
        points = np.argwhere(labels[k] > 0)
        foreground[int(k)] = points[rng.choice(len(points), min(len(points), FOREGROUND_POINTS),
                                               replace=False)].astype(np.int32)
    return CachedCase(case.name, hu, labels, tuple(json.loads(meta_path.read_text())["spacing"]),
                      liver_slices, np.flatnonzero(highest == TUMOR), foreground)


def choose_slice(case: CachedCase, rng: np.random.Generator, sampling: dict[str, float]) -> int:
    """Sample an axial slice: with probability `sampling['tumor']` one with tumor, `['liver']` one
    with liver, else any slice (falling back when a case has no such slice)."""
    draw = rng.random()
    if draw < sampling["tumor"] and len(case.tumor_slices):
        return int(rng.choice(case.tumor_slices))
    if draw < sampling["tumor"] + sampling["liver"] and len(case.liver_slices):
        return int(rng.choice(case.liver_slices))
    return int(rng.integers(case.hu.shape[0]))
