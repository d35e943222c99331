"""File-level workflow shared by the command line, the demo and the benchmarks: read a CT, segment it,
write `<stem>_seg.nii.gz`, `<stem>_stats.json` and optionally `<stem>_overlay.png`."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import OutputError
from .model.card import PostprocessingSpec
from .pipeline import CancelCheck, ProgressCallback, SegmentationResult, Segmenter
from .reporting.figures import save_overlay_montage
from .volume.checks import as_scalar_3d
from .volume.io import Volume, atomic_write_json, read_volume, volume_stem, write_label_nifti


@dataclass(frozen=True)
class CaseOutputs:
    """Where the outputs of one input go."""

    segmentation: Path
    statistics: Path
    overlay: Path

    @classmethod
    def for_input(cls, input_path: Path, output_dir: Path) -> CaseOutputs:
        stem = volume_stem(input_path)
        return cls(output_dir / f"{stem}_seg.nii.gz", output_dir / f"{stem}_stats.json",
                   output_dir / f"{stem}_overlay.png")


def ensure_writable_directory(path: Path) -> None:
    """Create `path` if needed and prove it is writable, before any long computation."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise OutputError(f"Cannot write to the output folder {path} ({exc.strerror}); choose a "
                          "folder you can write to with -o.") from exc


def segment_and_score(segmenter: Segmenter, cases: list[tuple[str, Path, Path]],
                      output_dir: Path) -> dict[str, dict]:
    """Segment each (name, CT, reference label) case into `output_dir` and score it."""
    from .evaluation import evaluate_files

    pairs = []
    for name, ct, label in cases:
        _, outputs = segment_file(segmenter, ct, output_dir)
        pairs.append((name, outputs.segmentation, label))
    return evaluate_files(pairs)


def segment_file(segmenter: Segmenter, input_path: Path, output_dir: Path, overlay: bool = False,
                 force: bool = False, postprocessing: PostprocessingSpec | None = None,
                 progress: ProgressCallback | None = None,
                 cancel: CancelCheck = None) -> tuple[SegmentationResult, CaseOutputs]:
    """Segment one file and write its outputs; each output appears whole or not at all."""
    volume: Volume = read_volume(input_path)
    result = segmenter.segment(volume, force=force, postprocessing=postprocessing,
                               progress=progress, cancel=cancel)
    outputs = CaseOutputs.for_input(Path(input_path), Path(output_dir))
    result.statistics["input"] = str(input_path)
    write_label_nifti(outputs.segmentation, result.labels, volume.affine)
    atomic_write_json(outputs.statistics, result.statistics)
    if overlay:
        save_overlay_montage(outputs.overlay, as_scalar_3d(volume.array), result.labels,
                             volume.affine, title=volume_stem(input_path))
    return result, outputs
