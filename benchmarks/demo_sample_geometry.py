"""The demo sample's voxel spacing, estimated from anatomy alone.

`lits117_crop` is LiTS volume 117 cropped to the liver and resampled to 128³ by a third party; its
true spacing is unknown and was stored as 1 mm. This script measures, in voxels, three structures
whose adult sizes are known well enough to scale the crop, and divides each typical size by its
measurement:

- the thoracolumbar vertebral level height (one vertebral body plus one disc): the period of the
  bone intensity along the spine, by autocorrelation;
- the vertebral body's transverse width and its anterior-posterior depth, on the slices through the
  middle of the bodies;
- the aorta's diameter, where it lies in front of the spine.

The spacing written into the sample's header is the median of these estimates, rounded to 0.05 mm,
isotropic. No segmentation result takes part: the estimate is never chosen by Dice. Reads the
sample's voxels only (its array axes: 0 anterior to posterior, 1 inferior to superior, 2 the
patient's right to left, see `Resources/Sample/ATTRIBUTION.md`), so running it again on the
re-headed sample gives the same numbers. Writes `benchmarks/results/demo_sample_geometry.json`.

    python benchmarks/demo_sample_geometry.py
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from scipy import ndimage, signal  # noqa: E402

from LiverTumorSegLib.atomic import atomic_write_json

# Typical adult sizes (mm) with the range that covers most adults. Vertebral bodies T11-L2:
from LiverTumorSegLib.inputs import read_volume  # noqa: E402
from LiverTumorSegLib.resources import SAMPLE_CT, SAMPLE_LABEL  # noqa: E402

# Typical adult sizes (mm) with the range that covers most adults. Vertebral bodies T11-L2:
# body height about 23-27 mm plus disc about 6-9 mm; end-plate width about 38-45 mm and depth about
# 28-34 mm (Panjabi et al., Spine 1991 and 1992). Abdominal aorta at the coeliac/renal level:
# about 18-23 mm (smaller in women).
TYPICAL_MM = {
    "vertebral_level_height": (32.0, (29.0, 36.0)),
    "vertebral_body_width": (41.0, (38.0, 45.0)),
    "vertebral_body_depth": (31.0, (28.0, 34.0)),
    "aorta_diameter": (20.5, (18.0, 23.0)),
}
BONE_HU = 150.0
VESSEL_HU = (110.0, 400.0)


def spine_centres(ct: np.ndarray) -> np.ndarray:
    """Per axial slice (axis 1), the (i, k) centre of the vertebral body: the deepest point of the
    bone mask (distance transform) in the posterior half of the crop, smoothed along the spine by a
    running median (on a disc's slice the deepest bone may be a rib)."""
    centres = []
    for j in range(ct.shape[1]):
        bone = ndimage.binary_fill_holes(ct[:, j, :] > BONE_HU)
        bone[: ct.shape[0] // 2] = False
        depth = ndimage.distance_transform_edt(bone)
        centres.append(np.unravel_index(np.argmax(depth), depth.shape))
    return np.round(ndimage.median_filter(np.array(centres, dtype=float), size=(9, 1),
                                          mode="nearest")).astype(int)


def level_height_voxels(ct: np.ndarray, centres: np.ndarray) -> float:
    """The period of the intensity along the spine (body bright, disc dark), by autocorrelation."""
    profile = np.array([ct[max(0, i - 3): i + 4, j, max(0, k - 3): k + 4].mean()
                        for j, (i, k) in enumerate(centres)])
    detrended = profile - ndimage.uniform_filter1d(profile, 41, mode="nearest")
    correlation = np.correlate(detrended, detrended, "full")[len(profile) - 1:]
    peaks, _ = signal.find_peaks(correlation / correlation[0])
    peaks = peaks[peaks >= 10]  # a vertebral level spans far more than 10 voxels at any plausible scale
    return float(peaks[np.argmax(correlation[peaks])])


def _run_length(line: np.ndarray, start: int) -> int:
    """Length of the run of True in `line` through `start`."""
    if not line[start]:
        return 0
    low = start - np.argmin(line[start::-1]) if not line[: start + 1].all() else 0
    high = start + np.argmin(line[start:]) if not line[start:].all() else len(line)
    return int(high - low)


def body_size_voxels(ct: np.ndarray, centres: np.ndarray) -> tuple[float, float]:
    """Median transverse width and anterior-posterior depth of the vertebral body through its
    centre, on slices whose centre is bony (not a disc) and away from the crop's edges."""
    widths, depths = [], []
    for j, (i, k) in enumerate(centres):
        bone = ndimage.binary_fill_holes(ct[:, j, :] > BONE_HU)
        if not bone[i, k] or k + 25 >= ct.shape[2] or i + 20 >= ct.shape[0]:
            continue
        widths.append(_run_length(bone[i, :], k))
        depths.append(_run_length(bone[:, k], i))
    return float(np.median(widths)), float(np.median(depths))


def aorta_diameter_voxels(ct: np.ndarray, centres: np.ndarray) -> tuple[float, float, int]:
    """Median equivalent diameter of the round vessel directly in front of the vertebral body, and
    the median ratio of its two in-plane extents (1 for a round cross-section)."""
    diameters, ratios = [], []
    for j, (i, k) in enumerate(centres):
        front = i - _run_length(ct[:, j, k] > BONE_HU, i) // 2  # the body's anterior edge
        vessel = (ct[:, j, :] > VESSEL_HU[0]) & (ct[:, j, :] < VESSEL_HU[1])
        vessel[front - 2:] = False  # only what lies in front of the body
        vessel = ndimage.binary_opening(vessel, iterations=1)
        labels, count = ndimage.label(vessel)
        best = None
        for index, found in enumerate(ndimage.find_objects(labels), start=1):
            if found is None:
                continue
            component = labels[found] == index
            extents = [s.stop - s.start for s in found]
            area = int(component.sum())
            centre_i, centre_k = (s.start + (s.stop - s.start) / 2 for s in found)
            round_ = area / (np.pi / 4 * extents[0] * extents[1])  # 1 for an ellipse filling its box
            near = abs(centre_k - k) < 20 and 0 < front - centre_i < 25
            if near and round_ > 0.85 and min(extents) >= 6 and (best is None or area > best[0]):
                best = (area, extents)
        if best is not None:
            diameters.append(2 * np.sqrt(best[0] / np.pi))
            ratios.append(best[1][0] / best[1][1])
    return float(np.median(diameters)), float(np.median(ratios)), len(diameters)


def estimate_spacing(ct: np.ndarray) -> tuple[float, dict[str, dict], dict]:
    """The isotropic spacing (mm) the anatomy of the sample's voxels supports, each measurement
    with the spacing it implies, and the aorta's roundness check."""
    ct = np.asarray(ct, dtype=np.float32)
    centres = spine_centres(ct)
    width, depth = body_size_voxels(ct, centres)
    aorta, aorta_ratio, aorta_slices = aorta_diameter_voxels(ct, centres)
    measured = {"vertebral_level_height": (level_height_voxels(ct, centres), "axis 1 (inferior-superior)"),
                "vertebral_body_width": (width, "axis 2 (right-left)"),
                "vertebral_body_depth": (depth, "axis 0 (anterior-posterior)"),
                "aorta_diameter": (aorta, "in-plane (axes 0 and 2)")}
    rows = {}
    for name, (voxels, axis) in measured.items():
        typical, (low, high) = TYPICAL_MM[name]
        rows[name] = {"voxels": round(voxels, 1), "axis": axis, "typical_mm": typical,
                      "typical_range_mm": [low, high], "spacing_mm": round(typical / voxels, 3),
                      "spacing_range_mm": [round(low / voxels, 3), round(high / voxels, 3)]}
    spacing = round(float(np.median([row["spacing_mm"] for row in rows.values()])) * 20) / 20
    return spacing, rows, {"slices_measured": aorta_slices,
                           "extent_ratio_axis0_to_axis2": round(aorta_ratio, 2)}


def main() -> None:
    spacing, rows, aorta = estimate_spacing(read_volume(SAMPLE_CT).array)
    liver_voxels = int(np.count_nonzero(np.asarray(read_volume(SAMPLE_LABEL).array) > 0))
    record = {
        "what": "the demo sample's voxel spacing estimated from anatomy (the true spacing is unknown)",
        "sample": str(SAMPLE_CT.relative_to(REPO)),
        "measurements": rows,
        "aorta": aorta,
        "estimates_mm": [row["spacing_mm"] for row in rows.values()],
        "spacing_mm": spacing,
        "rule": "median of the estimates, rounded to 0.05 mm, the same on every axis",
        "check_liver_volume_ml": round(liver_voxels * spacing ** 3 / 1000.0, 1),
        "check_note": "the reference label's whole liver at this spacing (adult livers hold about "
                      "1.2 to 2 L; this one holds large tumours); a check, not an input",
    }
    out = REPO / "benchmarks" / "results" / "demo_sample_geometry.json"
    atomic_write_json(out, record)
    for name, row in rows.items():
        print(f"{name}: {row['voxels']} voxels along {row['axis']}, typical {row['typical_mm']} mm "
              f"-> {row['spacing_mm']} mm ({row['spacing_range_mm'][0]}-{row['spacing_range_mm'][1]})")
    print(f"aorta extent ratio {aorta['extent_ratio_axis0_to_axis2']} over {aorta['slices_measured']} slices")
    print(f"spacing {spacing} mm; liver {record['check_liver_volume_ml']} mL; wrote {out}")


if __name__ == "__main__":
    main()
