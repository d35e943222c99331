"""Pack ../shared/data into a folder small enough to travel to a lent GPU machine (64 MiB a call).

Each usable training case is cropped (with its affine adjusted exactly) to the axial slab of the
liver plus a margin and to the body's in-plane box; HU below -900 (air, gas) become -1000 and the
rest are rounded to multiples of 4 HU (the scans' noise is 10 to 20 HU, and every window and the
histogram channel ignore air), which lets the files compress to about half. The demo sample and tiny64 are left
out: they are never trained on. Output: `<case>_ct.nii.gz` + `<case>_label.nii.gz`, readable by
`livertumorseg train`.

    python benchmarks/gpu/pack_training_data.py ../shared/data .pack/data
"""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from LiverTumorSegLib.inputs import read_volume  # noqa: E402
from LiverTumorSegLib.training.config import EXCLUDED_CASES  # noqa: E402
from LiverTumorSegLib.training.dataset import find_cases  # noqa: E402
from LiverTumorSegLib.volume.orientation import plan_reorientation  # noqa: E402

SLAB_MARGIN_MM = 40.0
BODY_MARGIN_MM = 10.0
AIR_FLOOR_HU = -900.0  # air and gas below this become -1000: every window and the histogram ignore it
HU_STEP = 4.0


def crop_box(ct: np.ndarray, labels: np.ndarray, spacing: tuple[float, ...],
             axial: int) -> tuple[slice, ...]:
    """Slices (input axes) around the liver slab along the axial axis and around the body in-plane."""
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        mask = (labels > 0) if axis == axial else (ct > -500)
        present = np.flatnonzero(mask.any(axis=other))
        margin = int(np.ceil((SLAB_MARGIN_MM if axis == axial else BODY_MARGIN_MM) / spacing[axis]))
        box.append(slice(max(0, present[0] - margin), min(ct.shape[axis], present[-1] + margin + 1)))
    return tuple(box)


def main(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for case in find_cases(source, exclude=EXCLUDED_CASES):
        ct, label = read_volume(case.ct), read_volume(case.label)
        axial = plan_reorientation(ct.array.shape, ct.affine).axes[2]  # input axis running S
        spacing = tuple(np.linalg.norm(ct.affine[:3, :3], axis=0))
        box = crop_box(np.asarray(ct.array), np.asarray(label.array), spacing, axial)
        affine = ct.affine.copy()
        affine[:3, 3] += ct.affine[:3, :3] @ np.array([b.start for b in box])
        hu = np.asarray(ct.array[box], dtype=np.float32)
        hu[hu < AIR_FLOOR_HU] = -1000.0
        hu = (np.round(hu / HU_STEP) * HU_STEP).astype(np.int16)
        nib.save(nib.Nifti1Image(hu, affine), str(target / f"{case.name}_ct.nii.gz"))
        nib.save(nib.Nifti1Image(np.asarray(label.array[box], dtype=np.uint8), affine),
                 str(target / f"{case.name}_label.nii.gz"))
        print(case.name, ct.array.shape, "->", hu.shape)
    total = sum(p.stat().st_size for p in target.iterdir()) / 2 ** 20
    print(f"{total:.1f} MiB in {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
