"""The case open in the app and what was done to it, on a Slicer scene, with no browser and no trame:
open a case, segment it in the background, read edits back, export the results.

MRML is read and written only by the caller's thread (the server's event loop); the engine's compute
step runs on the worker thread of `panel.background_run`, as in the Slicer panel. The statistics of
an edited segmentation come from the engine's own `statistics_of_labels`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..atomic import atomic_write_csv
from ..errors import LiverTumorSegError
from ..inputs import CaseInput, case_name
from ..mrml.logic import MrmlSegmentationLogic
from ..mrml.table import STATISTICS_TABLE_ROLE
from ..panel.background_run import BackgroundSegmentation, Finished, RunEvent
from ..reporting.batch import LESION_COLUMNS, CaseOutcome, lesion_rows
from ..statistics import statistics_of_labels
from ..workflow import CaseOutputs, write_case_outputs

if TYPE_CHECKING:
    from ..pipeline import SegmentationResult


# Travels with edited results wherever the run's warnings go (the table, the stats JSON, the DICOM
# SEG's descriptions), so that nobody takes an edited segmentation for the model's own.
EDITED_NOTE = ("Edited by hand in the web app after the automatic segmentation; the numbers are "
               "measured on the edited segments.")


@dataclass(frozen=True)
class CaseInfo:
    """What the page shows about the open case."""

    name: str
    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    source: str

    @classmethod
    def of(cls, case: CaseInput, source: str) -> CaseInfo:
        spacing = np.linalg.norm(case.volume.affine[:3, :3], axis=0)
        return cls(case_name(case.path), tuple(int(n) for n in case.volume.array.shape[:3]),
                   tuple(round(float(s), 3) for s in spacing), source)


class CaseSession:
    """One case on `logic`'s scene: its volume node, its segmentation and its statistics."""

    def __init__(self, logic: MrmlSegmentationLogic, device: str = "auto"):
        self.logic = logic
        self.scene = logic.scene
        self.device = device
        self.case: CaseInput | None = None
        self.info: CaseInfo | None = None
        self.volume_node = None
        self.segmentation_node = None
        self.result: SegmentationResult | None = None
        self.statistics: dict | None = None
        self.edited = False
        self.run: BackgroundSegmentation | None = None

    # ---- opening a case ---------------------------------------------------------------------
    def open(self, case: CaseInput, source: str):
        """Replace the open case by `case` (read by `inputs.read_input`); return its volume node."""
        if self.running:
            raise LiverTumorSegError("A segmentation is running; cancel it before opening another "
                                     "case.")
        self.close()
        info = CaseInfo.of(case, source)
        node = self.logic.volumeNodeFromVolume(case.volume, info.name)
        self.case, self.info, self.volume_node = case, info, node
        return node

    def close(self) -> None:
        """Remove the open case's nodes from the scene and forget its results."""
        if self.run is not None:
            self.run.stop()
            self.run = None
        self._remove_segmentation()
        if self.volume_node is not None and self.scene.IsNodePresent(self.volume_node):
            self.scene.RemoveNode(self.volume_node)
        self.case = self.info = self.volume_node = None

    def _remove_segmentation(self) -> None:
        node = self.segmentation_node
        if node is not None and self.scene.IsNodePresent(node):
            table = node.GetNodeReference(STATISTICS_TABLE_ROLE)
            if table is not None:
                self.scene.RemoveNode(table)
            self.scene.RemoveNode(node)
        self.segmentation_node = self.result = self.statistics = None
        self.edited = False

    # ---- segmenting -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.run is not None and not self.run.ended

    def start(self, force: bool = False) -> None:
        """Start segmenting the open case on a worker thread (`poll` reports how it goes);
        `force` segments values that do not look like CT (a warning remains), as `--force`."""
        if self.volume_node is None:
            raise LiverTumorSegError("No case is open; open the demo, upload a CT or pick one "
                                     "from the list first.")
        if self.running:
            return
        volume = self.logic.volumeFromNode(self.volume_node)
        self.run = BackgroundSegmentation(self.logic, volume, self.device, force=force)
        self.run.start()

    def cancel(self) -> None:
        """Ask the running segmentation to stop; nothing in the scene changes."""
        if self.run is not None:
            self.run.cancel()

    def poll(self) -> list[RunEvent]:
        """The run's events since the last poll; a finished result is applied to the scene here,
        on the caller's thread."""
        if self.run is None:
            return []
        events = self.run.poll()
        for event in events:
            if isinstance(event, Finished):
                self._apply(event.result)
        if self.run.ended:
            self.run = None
        return events

    def _apply(self, result: SegmentationResult) -> None:
        result.statistics["input"] = self.info.source
        self.segmentation_node = self.logic.applyResult(result, self.volume_node,
                                                        self.segmentation_node)
        self.result, self.statistics, self.edited = result, result.statistics, False

    # ---- edits ------------------------------------------------------------------------------
    def current_labels(self) -> np.ndarray:
        """The `Liver` and `Tumor` segments as they are now (edits included), on the CT's grid."""
        return self.logic.labelArray(self.segmentation_node, self.volume_node)

    def statistics_for(self, labels: np.ndarray) -> tuple[dict, bool]:
        """The statistics of `labels` and whether they differ from the run's segmentation (any
        thread: no MRML). Unedited, the run's own statistics, confidence included."""
        if np.array_equal(labels, self.result.labels):
            return self.result.statistics, False
        statistics = statistics_of_labels(labels, self.case.volume)
        for key in ("device", "seconds", "model", "input"):
            statistics[key] = copy.deepcopy(self.result.statistics.get(key))
        statistics["warnings"] = [*self.result.statistics["warnings"], EDITED_NOTE]
        statistics["edited"] = True
        return statistics, True

    def set_statistics(self, statistics: dict, edited: bool) -> None:
        """Show `statistics` (from `statistics_for`) as the case's numbers."""
        self.statistics, self.edited = statistics, edited

    # ---- exports ----------------------------------------------------------------------------
    def export(self, folder: Path) -> dict[str, Path]:
        """Write every result file of the case, edits included, into `folder`: the label map, the
        `.seg.nrrd`, the stats JSON, the lesion CSV and, for DICOM input, the DICOM SEG."""
        if self.result is None:
            raise LiverTumorSegError("Nothing to export yet; segment the case first.")
        labels = self.current_labels()
        from ..pipeline import SegmentationResult

        result = SegmentationResult(labels, self.case.volume.affine,
                                    copy.deepcopy(self.statistics))
        outputs = CaseOutputs.for_input(self.case.path, folder)
        dicom = self.case.series is not None
        write_case_outputs(self.case, result, outputs, self.logic.card, dicom_seg=dicom)
        name = case_name(self.case.path)
        files = {"labels": outputs.segmentation, "statistics": outputs.statistics}
        files["segmentation"] = folder / f"{name}.seg.nrrd"
        self.logic.exportSegmentation(self.segmentation_node, files["segmentation"])
        files["lesions"] = folder / f"{name}_lesions.csv"
        atomic_write_csv(files["lesions"], LESION_COLUMNS,
                         lesion_rows([CaseOutcome(name, self.case.path, result.statistics)]))
        if dicom:
            files["dicom_seg"] = outputs.dicom_seg
        return files
