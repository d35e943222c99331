"""File-level workflow shared by the command line, the demo and the benchmarks: read a CT (a NIfTI or
NRRD file, or a DICOM series folder), segment it, and write `<name>_seg.nii.gz`, `<name>_stats.json`
and optionally `<name>_overlay.png` and `<name>_seg.dcm` (DICOM SEG)."""

from __future__ import annotations

import contextlib
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from .errors import InputVolumeError, LiverTumorSegError, OutputError
from .model.card import PostprocessingSpec
from .reporting.figures import save_overlay_montage
from .volume.checks import as_scalar_3d
from .volume.io import (VOLUME_SUFFIXES, Volume, atomic_write_json, read_volume, volume_stem,
                        write_label_nifti)

if TYPE_CHECKING:  # the pipeline imports torch: this module must not, so reading can start first
    from .pipeline import CancelCheck, ProgressCallback, SegmentationResult, Segmenter


def case_name(path: Path) -> str:
    """What a case's outputs are named after: a series folder's name, or a file's stem."""
    return path.name if path.is_dir() else volume_stem(path)


def expand_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """The cases that `segment` inputs stand for: a file is one case; a folder stands for every
    NIfTI/NRRD volume directly inside it, for itself when it holds DICOM files, and for each
    subfolder (one level deep) that holds DICOM files. A folder with none of these stays one case,
    which its reading refuses. Two cases with the same name are refused before anything runs."""
    from .dicom.discovery import series_folders

    cases: list[Path] = []
    for item in map(Path, inputs):
        if not item.is_dir():
            cases.append(item)
            continue
        found = sorted(p for p in item.iterdir()
                       if p.is_file() and p.name.lower().endswith(VOLUME_SUFFIXES))
        cases.extend(found + series_folders(item) or [item])
    names = [case_name(p) for p in cases]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise LiverTumorSegError(f"Several inputs would write the same outputs ({', '.join(clashes)}); "
                                 "segment them into different output folders, or rename them.")
    return cases


def check_dicom_seg_inputs(cases: Sequence[Path]) -> None:
    """A DICOM SEG references its source series: refuse it for NIfTI/NRRD inputs."""
    files = [str(path) for path in cases if not path.is_dir()]
    if files:
        raise InputVolumeError(f"--dicom-seg needs DICOM series as inputs, but {', '.join(files)} "
                               "has no source series for a DICOM SEG to reference; leave out "
                               "--dicom-seg or give the DICOM series folder.")


@dataclass(frozen=True)
class CaseOutputs:
    """Where the outputs of one input go."""

    segmentation: Path
    statistics: Path
    overlay: Path
    dicom_seg: Path

    @classmethod
    def for_input(cls, input_path: Path, output_dir: Path) -> CaseOutputs:
        stem = case_name(Path(input_path))
        return cls(output_dir / f"{stem}_seg.nii.gz", output_dir / f"{stem}_stats.json",
                   output_dir / f"{stem}_overlay.png", output_dir / f"{stem}_seg.dcm")


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


@dataclass
class CaseInput:
    """One input read into memory: its volume and, for a DICOM series, the series (for the SEG)."""

    path: Path
    volume: Volume
    series: Any = None  # dicom.series.DicomSeries


def read_input(input_path: Path, series_uid: str | None = None) -> CaseInput:
    """Read a NIfTI/NRRD file or a DICOM series folder (`series_uid` picks one series of a folder
    holding several). Needs no torch, so a caller can read while the model loads."""
    input_path = Path(input_path)
    if input_path.is_dir():
        from .dicom.series import read_series

        series = read_series(input_path, series_uid)
        return CaseInput(input_path, series.volume, series)
    return CaseInput(input_path, read_volume(input_path))


def segment_file(segmenter: Segmenter, input_path: Path, output_dir: Path, overlay: bool = False,
                 force: bool = False, postprocessing: PostprocessingSpec | None = None,
                 progress: ProgressCallback | None = None, cancel: CancelCheck = None,
                 dicom_seg: bool = False,
                 series_uid: str | None = None) -> tuple[SegmentationResult, CaseOutputs]:
    """Read, segment and write one input (see `read_input` and `segment_input`)."""
    if dicom_seg:
        check_dicom_seg_inputs([Path(input_path)])
    return segment_input(segmenter, read_input(input_path, series_uid), output_dir, overlay, force,
                         postprocessing, progress, cancel, dicom_seg)


def segment_input(segmenter: Segmenter, case: CaseInput, output_dir: Path, overlay: bool = False,
                  force: bool = False, postprocessing: PostprocessingSpec | None = None,
                  progress: ProgressCallback | None = None, cancel: CancelCheck = None,
                  dicom_seg: bool = False) -> tuple[SegmentationResult, CaseOutputs]:
    """Segment an input already read and write its outputs; each output appears whole or not at all.
    `dicom_seg` also writes a DICOM SEG, which needs a DICOM series as input."""
    input_path, series, volume = case.path, case.series, case.volume
    result = segmenter.segment(volume, force=force, postprocessing=postprocessing,
                               progress=progress, cancel=cancel)
    statistics = result.statistics
    statistics["input"] = str(input_path)
    outputs = CaseOutputs.for_input(input_path, Path(output_dir))
    seg_dataset = None
    if series is not None:
        statistics["dicom"] = {"series_instance_uid": series.series_instance_uid,
                               "frame_of_reference_uid": series.frame_of_reference_uid}
    if dicom_seg:
        from .dicom.seg import build_dicom_seg, frame_of_reference

        frame_uid, note = frame_of_reference(series)
        if note:
            warnings.warn(note, stacklevel=2)
            statistics["warnings"].append(note)
        seg_dataset, record = build_dicom_seg(series, result.labels, frame_uid, segmenter.card.name,
                                              segmenter.card.weights_sha256, statistics["warnings"])
        statistics["dicom"].update(record)
    write_label_nifti(outputs.segmentation, result.labels, volume.affine)
    if seg_dataset is not None:
        from .dicom.seg import save_dataset

        save_dataset(outputs.dicom_seg, seg_dataset)
    atomic_write_json(outputs.statistics, statistics)
    if overlay:
        save_overlay_montage(outputs.overlay, as_scalar_3d(volume.array), result.labels,
                             volume.affine, title=case_name(input_path))
    return result, outputs
