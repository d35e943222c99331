"""File-level workflow shared by the command line, the demo and the benchmarks: read a CT (a NIfTI or
NRRD file, or a DICOM series folder), segment it, and write `<name>_seg.nii.gz`, `<name>_stats.json`
and optionally `<name>_overlay.png` and `<name>_seg.dcm` (DICOM SEG)."""

from __future__ import annotations

import contextlib
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from .atomic import atomic_write_json
from .errors import OutputError
from .inputs import CaseInput, case_name, check_dicom_seg_inputs, read_input
from .model.card import ModelCard, PostprocessingSpec
from .reporting.figures import save_overlay_montage
from .volume.checks import as_scalar_3d
from .volume.io import write_boxed_nifti, write_label_nifti

if TYPE_CHECKING:  # the pipeline imports torch: this module must not, so reading can start first
    from .pipeline import CancelCheck, ProgressCallback, SegmentationResult, Segmenter


@dataclass(frozen=True)
class CaseOutputs:
    """Where the outputs of one input go."""

    segmentation: Path
    statistics: Path
    overlay: Path
    dicom_seg: Path
    probabilities: Path

    @classmethod
    def for_input(cls, input_path: Path, output_dir: Path) -> CaseOutputs:
        stem = case_name(Path(input_path))
        return cls(output_dir / f"{stem}_seg.nii.gz", output_dir / f"{stem}_stats.json",
                   output_dir / f"{stem}_overlay.png", output_dir / f"{stem}_seg.dcm",
                   output_dir / f"{stem}_probabilities.nii.gz")


def ensure_writable_directory(path: Path) -> None:
    """Create `path` if needed and prove it is writable, before any long computation."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise OutputError(f"Cannot write to the output folder {path} ({exc.strerror}); choose a "
                          "folder you can write to with -o.") from exc


@contextlib.contextmanager
def output_directory(path: Path) -> Iterator[Path]:
    """`ensure_writable_directory`, and on leaving remove the folders it created that are still
    empty, so that a run that wrote nothing leaves no folder behind."""
    path = Path(path)
    created = [folder for folder in (path, *path.parents) if not folder.exists()]
    try:
        ensure_writable_directory(path)
        yield path
    finally:
        for folder in created:  # deepest first; stop at the first one that holds something
            try:
                folder.rmdir()
            except OSError:
                break


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
                 progress: ProgressCallback | None = None, cancel: CancelCheck = None,
                 dicom_seg: bool = False, series_uid: str | None = None,
                 probabilities: bool = False) -> tuple[SegmentationResult, CaseOutputs]:
    """Read, segment and write one input (see `read_input` and `segment_input`)."""
    if dicom_seg:
        check_dicom_seg_inputs([Path(input_path)])
    return segment_input(segmenter, read_input(input_path, series_uid), output_dir, overlay, force,
                         postprocessing, progress, cancel, dicom_seg, probabilities)


def segment_input(segmenter: Segmenter, case: CaseInput, output_dir: Path, overlay: bool = False,
                  force: bool = False, postprocessing: PostprocessingSpec | None = None,
                  progress: ProgressCallback | None = None, cancel: CancelCheck = None,
                  dicom_seg: bool = False,
                  probabilities: bool = False) -> tuple[SegmentationResult, CaseOutputs]:
    """Segment an input already read and write its outputs; each output appears whole or not at all.
    `dicom_seg` also writes a DICOM SEG, which needs a DICOM series as input; `probabilities` the
    liver and tumour probability map (`probabilities.py`) on the input's grid."""
    series = case.series
    reading_notes = series.warnings if series is not None else []
    for note in reading_notes:  # files a DICOM series left out
        warnings.warn(note, stacklevel=2)
    result = segmenter.segment(case.volume, force=force, postprocessing=postprocessing,
                               progress=progress, cancel=cancel, probabilities=probabilities,
                               name=str(case.path),
                               intensity_note=series.intensity_note if series is not None else None)
    result.statistics["input"] = str(case.path)
    result.statistics["warnings"].extend(reading_notes)
    outputs = CaseOutputs.for_input(case.path, Path(output_dir))
    write_case_outputs(case, result, outputs, segmenter.card, overlay, dicom_seg)
    return result, outputs


def write_case_outputs(case: CaseInput, result: SegmentationResult, outputs: CaseOutputs,
                       card: ModelCard, overlay: bool = False, dicom_seg: bool = False) -> None:
    """Write a result's files (the command line's, and the web app's exports): labels, statistics,
    the probability map when the result has one, and on request the overlay and a DICOM SEG (which
    needs a DICOM series as input); each output appears whole or not at all."""
    input_path, series, volume = case.path, case.series, case.volume
    statistics = result.statistics
    seg_dataset = None
    if series is not None:
        statistics["dicom"] = {"series_instance_uid": series.series_instance_uid,
                               "frame_of_reference_uid": series.frame_of_reference_uid,
                               "skipped": series.skipped}
    if dicom_seg:
        from .dicom.seg import build_dicom_seg, frame_of_reference

        frame_uid, note = frame_of_reference(series)
        if note:
            warnings.warn(note, stacklevel=2)
            statistics["warnings"].append(note)
        seg_dataset, record = build_dicom_seg(series, result.labels, frame_uid, card.name,
                                              card.weights_sha256, statistics["warnings"])
        statistics["dicom"].update(record)
    write_label_nifti(outputs.segmentation, result.labels, volume.affine)
    if result.probabilities is not None:
        from .probabilities import DESCRIPTION

        found = result.probabilities
        write_boxed_nifti(outputs.probabilities, found.shape, found.region, found.values,
                          volume.affine, DESCRIPTION)
    if seg_dataset is not None:
        from .dicom.seg import save_dataset

        save_dataset(outputs.dicom_seg, seg_dataset)
    atomic_write_json(outputs.statistics, statistics)
    if overlay:
        save_overlay_montage(outputs.overlay, as_scalar_3d(volume.array), result.labels,
                             volume.affine, title=case_name(input_path))
