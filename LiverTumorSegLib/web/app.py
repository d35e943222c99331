"""The web app: trame-slicer's scene and views, one `CaseSession` on them, and the handlers behind
every button of the page. Every handler runs on the server's event loop, which alone touches MRML;
reading a case, the engine's compute step and the statistics of an edit run on worker threads.

trame's state is shared by every tab of the server, so every tab shows and drives the same case.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from pathlib import Path
from typing import Any

from trame.app import TrameApp
from trame_slicer.app.logic import SegmentEditorLogic
from trame_slicer.core import LayoutManager, SlicerApp
from trame_slicer.rca_view import register_rca_factories

from ..cli import describe_error
from ..errors import LiverTumorSegError
from ..mrml.logic import MrmlSegmentationLogic
from ..panel.background_run import Cancelled, Failed, Finished, Progress
from ..reporting.tables import STATISTICS_COLUMNS, WARNING_ROW, statistics_rows
from ..resources import SAMPLE_CT
from .cases import CaseChoice, choices_in
from .files import (
    DataEntry,
    UploadBatch,
    UploadError,
    Workspace,
    data_entries,
    safe_name,
    unpack_zip,
)
from .page import build_page
from .routes import add_routes
from .session import CaseSession
from .views import SEGMENT_STYLES, CaseViews

POLL_SECONDS = 0.1
EDIT_SETTLE_SECONDS = 0.4
DOWNLOADS = (("labels", "Label map", "{}_seg.nii.gz"), ("segmentation", "Slicer segmentation",
                                                            "{}.seg.nrrd"),
             ("statistics", "Statistics", "{}_stats.json"), ("lesions", "Lesion table",
                                                             "{}_lesions.csv"),
             ("dicom_seg", "DICOM SEG", "{}_seg.dcm"))
TABLE_COLUMNS = tuple(c for c in STATISTICS_COLUMNS if c != "Warning")


class LiverTumorSegWebApp(TrameApp):
    """The page and its server side, for one server process."""

    def __init__(self, server=None, data_dir: Path | None = None, device: str = "auto",
                 max_upload_mb: int = 2048, model_card: str | Path | None = None):
        super().__init__(server)
        self.workspace = Workspace()
        self.max_upload_bytes = int(max_upload_mb) << 20
        self.data_dir = data_dir
        self.data: list[DataEntry] = []
        self.choices: list[CaseChoice] = []
        self.uploads: dict[str, UploadBatch] = {}
        self.download_token = secrets.token_urlsafe(16)
        self._export: tuple[int, dict[str, Path]] | None = None
        self._version = 0
        self._settle: asyncio.Task | None = None

        self.slicer_app = SlicerApp()
        register_rca_factories(self.slicer_app.view_manager, self.server)
        layout_manager = LayoutManager(self.slicer_app.scene, self.slicer_app.view_manager,
                                       self.server)
        self.views = CaseViews(self.slicer_app, layout_manager)
        self.session = CaseSession(MrmlSegmentationLogic(self.slicer_app.scene, model_card), device)
        self.editor = SegmentEditorLogic(self.server, self.slicer_app)  # effects and undo stack
        self.slicer_app.segmentation_editor.segmentation_modified.connect(self._on_edit)

        self._initial_state()
        self.server.enable_module({"serve": {"lts_web": str(Path(__file__).with_name("static"))},
                                   "scripts": ["lts_web/upload.js"]})
        self.server.controller.on_server_bind.add(self._bind_routes)
        for name in ("lts_upload_started", "lts_uploaded", "lts_upload_failed"):
            self.server.controller.trigger(name)(getattr(self, f"_{name[4:]}"))
        build_page(self, layout_manager)
        self.editor.set_ui(self.correction_panel)
        if data_dir is not None:
            self.refresh_data()

    # ---- state ------------------------------------------------------------------------------
    def _initial_state(self) -> None:
        state = self.state
        state.trame__title = "LiverTumorSeg"
        state.update({"lts_error": "", "lts_notice": "", "lts_busy": "", "lts_case": None,
                      "lts_choices": [], "lts_data_items": [], "lts_data_pick": None,
                      "lts_has_data": self.data_dir is not None, "lts_running": False, "lts_force": False,
                      "lts_progress": 0, "lts_stage": "", "lts_rows": [], "lts_warnings": [],
                      "lts_edited": False, "lts_has_result": False, "lts_downloads": [],
                      "lts_preset": "abdomen", "lts_segment_style": "outline_fill",
                      "lts_centres": {}, "lts_centred_on": "", "lts_columns": list(TABLE_COLUMNS)})
        state.change("lts_preset")(self._on_preset)
        state.change("lts_segment_style")(self._on_segment_style)

    def _report(self, exc: BaseException) -> None:
        """Show an error as one message; paths inside the private workspace show as file names."""
        message, _ = describe_error(exc)
        message = re.sub(re.escape(str(self.workspace.root)) + r"/(?:[^/\s]+/)*", "", message)
        with self.state:  # pushed to the page at once, from a task too
            self.state.update({"lts_error": message, "lts_busy": ""})

    def clear_messages(self) -> None:
        """Hide the error and notice banners."""
        self.state.update({"lts_error": "", "lts_notice": ""})

    # ---- opening a case ---------------------------------------------------------------------
    async def open_demo(self) -> None:
        """Open the embedded demo sample."""
        await self.open_choice_of(CaseChoice("demo sample", SAMPLE_CT, "demo sample lits117_crop"))

    def refresh_data(self) -> None:
        """List the cases of the `--data` folder again."""
        self.data = data_entries(self.data_dir)
        self.state.lts_data_items = [{"title": e.label, "value": i} for i, e in enumerate(self.data)]

    async def open_data(self) -> None:
        """Open the `--data` case picked in the list (chosen by index: the page sends no path)."""
        index = self.state.lts_data_pick
        if index is None or not 0 <= int(index) < len(self.data):
            self.state.lts_error = "Pick a case from the list first."
            return
        entry = self.data[int(index)]
        await self.offer(choices_in(entry.path, f"data: {entry.label}") if entry.path.is_dir()
                         else [CaseChoice(entry.label, entry.path, f"data: {entry.label}")])

    async def open_choice(self, index: int) -> None:
        """Open one of the cases or series listed after an upload or a `--data` pick."""
        if 0 <= int(index) < len(self.choices):
            await self.open_choice_of(self.choices[int(index)])

    async def offer(self, choices: list[CaseChoice]) -> None:
        """Open the only case, or list several for the user to pick one."""
        if len(choices) == 1:
            await self.open_choice_of(choices[0])
            return
        self.choices = choices
        with self.state:
            self.state.update({"lts_busy": "", "lts_choices": [
                {"label": c.label, "index": i} for i, c in enumerate(choices)],
                "lts_notice": f"This holds {len(choices)} cases or series; pick one."})

    async def open_choice_of(self, choice: CaseChoice) -> None:
        """Read a case on a worker thread (the command line's reading and checks), then show it."""
        if self.session.running:
            self.state.lts_error = "A segmentation is running; cancel it before opening another case."
            return
        with self.state:
            self.clear_messages()
            self.state.lts_busy = f"Reading {choice.label} ..."
        try:
            case = await asyncio.to_thread(choice.read)
            self.slicer_app.segmentation_editor.clear()
            node = self.session.open(case, choice.source)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one message in the page
            self._report(exc)
            return
        self.choices = []
        self.views.show_volume(node, self.state.lts_preset)
        info = self.session.info
        with self.state:  # after an await: push the changes to the page explicitly
            self.state.update({"lts_busy": "", "lts_choices": [], "lts_case": {
                "name": info.name, "source": info.source, "shape": " x ".join(map(str, info.shape)),
                "spacing": " x ".join(f"{s:g}" for s in info.spacing_mm)}})
            self._publish_statistics()

    # ---- uploads ----------------------------------------------------------------------------
    def _bind_routes(self, wslink_server: Any) -> None:
        add_routes(wslink_server.app, self._batch, self._export_file, self.download_token)

    def _batch(self, batch_id: str, folder: str) -> UploadBatch:
        if batch_id not in self.uploads:
            target = self.workspace.new_folder("upload") / (_folder_name(folder))
            target.mkdir()
            self.uploads[batch_id] = UploadBatch(target, self.max_upload_bytes)
        return self.uploads[batch_id]

    def _upload_started(self, count: int) -> None:
        self.clear_messages()
        self.state.lts_busy = f"Uploading {count} file(s) ..."

    def _upload_failed(self, batch_id: str, message: str) -> None:
        self.uploads.pop(batch_id, None)
        self.state.update({"lts_busy": "", "lts_error": message})

    async def _uploaded(self, batch_id: str) -> None:
        batch = self.uploads.pop(batch_id, None)
        if batch is None or not batch.names:
            self._report(UploadError("No file arrived; upload again."))
            return
        try:
            for name in list(batch.names):
                if name.lower().endswith(".zip"):
                    await asyncio.to_thread(unpack_zip, batch.folder / name,
                                            batch.folder / name[:-4], self.max_upload_bytes)
            choices = await asyncio.to_thread(choices_in, batch.folder,
                                              f"upload: {', '.join(batch.names[:3])}")
        except (UploadError, LiverTumorSegError) as exc:
            self._report(exc)
            return
        await self.offer(choices)

    # ---- segmenting -------------------------------------------------------------------------
    async def segment(self) -> None:
        """Start the segmentation of the open case, or cancel the one running."""
        if self.session.running:
            self.session.cancel()
            self.state.lts_stage = "Cancelling ..."
            return
        self.clear_messages()
        try:
            self.session.start(force=bool(self.state.lts_force))
        except Exception as exc:  # noqa: BLE001
            self._report(exc)
            return
        self.state.update({"lts_running": True, "lts_progress": 0, "lts_stage": "Starting ..."})
        asyncio.get_running_loop().create_task(self._watch_run())

    async def _watch_run(self) -> None:
        while self.session.run is not None:
            await asyncio.sleep(POLL_SECONDS)
            for event in self.session.poll():
                with self.state:
                    self._on_run_event(event)
        self.state.update({"lts_running": False})
        self.state.flush()

    def _on_run_event(self, event) -> None:
        if isinstance(event, Progress):
            self.state.update({"lts_progress": round(100 * event.fraction),
                               "lts_stage": event.message})
        elif isinstance(event, Finished):
            self._show_segmentation()
            self.state.update({"lts_stage": "Done", "lts_notice": ""})
        elif isinstance(event, Cancelled):
            self.state.update({"lts_stage": "", "lts_notice": "Cancelled; nothing was changed."})
        elif isinstance(event, Failed):
            self.state.lts_stage = ""
            self._report(event.error)

    def _show_segmentation(self) -> None:
        self.editor.on_volume_changed(self.session.volume_node)
        display = self.editor.data.segment_display  # the editor owns the segments' display
        display.show_3d = True
        display.opacity_3d.value = 1.0  # see-through surfaces are not drawn by the headless GL
        display.opacity_mode = SEGMENT_STYLES[self.state.lts_segment_style]
        self.slicer_app.segmentation_editor.set_surface_representation_enabled(True)
        self.views.show_segmentation()
        self._publish_statistics()

    # ---- statistics and edits ---------------------------------------------------------------
    def _publish_statistics(self) -> None:
        stats = self.session.statistics
        self._version += 1
        if stats is None:
            self.state.update({"lts_rows": [], "lts_warnings": [], "lts_edited": False,
                               "lts_has_result": False, "lts_downloads": []})
            return
        rows = [dict(row, key=i) for i, row in enumerate(statistics_rows(stats))
                if row["Structure"] != WARNING_ROW]
        kinds = [k for k in DOWNLOADS if k[0] != "dicom_seg" or self.session.case.series]
        self.state.update({
            "lts_rows": rows, "lts_warnings": list(stats.get("warnings", [])),
            "lts_edited": self.session.edited, "lts_has_result": True,
            "lts_downloads": [{"kind": kind, "filename": name.format(self.session.info.name),
                               "label": f"{label} ({name.format(self.session.info.name)})",
                               "href": f"lts/download/{self.download_token}/{kind}"}
                              for kind, label, name in kinds]})

    def _on_edit(self, *_args) -> None:
        if self.session.result is None or self.session.running:
            return
        if self._settle is not None:
            self._settle.cancel()
        self._settle = asyncio.get_event_loop().create_task(self._refresh_after_edit())

    async def _refresh_after_edit(self) -> None:
        await asyncio.sleep(EDIT_SETTLE_SECONDS)
        try:
            labels = self.session.current_labels()
            statistics, edited = await asyncio.to_thread(self.session.statistics_for, labels)
        except Exception as exc:  # noqa: BLE001
            self._report(exc)
            return
        with self.state:
            self.session.set_statistics(statistics, edited)
            self._publish_statistics()

    def centre_on_row(self, key: int) -> None:
        """Centre the views on the lesion of table row `key`."""
        row = next((r for r in self.state.lts_rows if r["key"] == key), None)
        if row is None or row["Centroid R (mm)"] is None:
            return
        ras = (row["Centroid R (mm)"], row["Centroid A (mm)"], row["Centroid S (mm)"])
        self.views.centre_on(ras)
        self.state.update({"lts_centres": self.views.view_centres(),
                           "lts_centred_on": f"{row['Structure']} at R {ras[0]:g}, A {ras[1]:g}, "
                                             f"S {ras[2]:g} mm"})

    # ---- display ----------------------------------------------------------------------------
    def _on_preset(self, lts_preset: str, **_) -> None:
        if self.session.volume_node is not None:
            self.views.set_window(self.session.volume_node, lts_preset)

    def _on_segment_style(self, lts_segment_style: str, **_) -> None:
        self.editor.data.segment_display.opacity_mode = SEGMENT_STYLES[lts_segment_style]

    def reset_views(self) -> None:
        """Fit every view to the case again."""
        self.views.reset()

    # ---- downloads --------------------------------------------------------------------------
    async def _export_file(self, kind: str) -> Path | None:
        if self.session.result is None or self.session.running:
            return None
        if self._export is None or self._export[0] != self._version:
            try:
                files = self.session.export(self.workspace.new_folder("export"))
            except Exception as exc:  # noqa: BLE001
                self._report(exc)
                return None
            self._export = (self._version, files)
        return self._export[1].get(kind)

    def close(self) -> None:
        """Stop a running segmentation and remove the workspace."""
        self.session.close()
        self.workspace.close()


def _folder_name(folder: str) -> str:
    """The folder an upload is stored in: the last part of the browser's folder, else `upload`."""
    parts = [p for p in folder.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return safe_name(parts[-1]) if parts else "upload"
