"""The page: a drawer to open, segment, correct and download a case; the four views; the statistics
and lesion table under them. Element classes `lts-*` name what a test or a user looks for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trame.widgets import html
from trame.widgets import vuetify3 as v3
from trame_vuetify.ui.vuetify3 import SinglePageWithDrawerLayout

from .editor import CorrectionPanel
from .views import SEGMENT_STYLES, WINDOW_PRESETS

if TYPE_CHECKING:
    from trame_slicer.core import LayoutManager

    from .app import LiverTumorSegWebApp

_ACCEPT = ".nii,.nii.gz,.gz,.nrrd,.nhdr,.raw,.zip,.dcm,application/dicom,*/*"
_STYLE_LABELS = {"outline_fill": "Outline + fill", "outline": "Outline", "fill": "Fill"}


def build_page(app: LiverTumorSegWebApp, layout_manager: LayoutManager) -> None:
    """Build the page of `app` (its handlers are the buttons' actions)."""
    with SinglePageWithDrawerLayout(app.server, full_height=True) as page:
        page.title.set_text("LiverTumorSeg")
        page.drawer.width = 430
        with page.toolbar:
            v3.VSpacer()
            html.Span("{{ lts_case ? lts_case.name : 'No case open' }}",
                      classes="text-body-2 mr-4 lts-case-name")
        with page.drawer:
            _messages(app)
            _open_card(app)
            _segment_card(app)
            with v3.VCard(v_show="lts_has_result", variant="flat", classes="ma-2"):
                v3.VCardTitle("Correct", classes="text-subtitle-1")
                with v3.VCardText():
                    app.correction_panel = CorrectionPanel()
            _download_card()
        with page.content:
            with html.Div(style="display: flex; flex-direction: column; height: 100%;"):
                with html.Div(style="height: 60vh; min-height: 320px; position: relative;",
                              classes="lts-views"):
                    layout_manager.initialize_layout_grid(page)
                _results(app)
        page.footer.hide()
    app.page = page


def _messages(app: LiverTumorSegWebApp) -> None:
    v3.VAlert(v_if="lts_error", text=("lts_error",), type="error", closable=True,
              density="compact", classes="ma-2 lts-error", click_close=app.clear_messages)
    v3.VAlert(v_if="lts_notice", text=("lts_notice",), type="info", closable=True,
              density="compact", classes="ma-2 lts-notice", click_close=app.clear_messages)
    v3.VProgressLinear(v_if="lts_busy", indeterminate=True, classes="mx-2")
    html.Div("{{ lts_busy }}", v_if="lts_busy", classes="mx-2 text-caption lts-busy")


def _open_card(app: LiverTumorSegWebApp) -> None:
    with v3.VCard(variant="flat", classes="ma-2"):
        v3.VCardTitle("Open a case", classes="text-subtitle-1")
        with v3.VCardText(classes="d-flex flex-column ga-2"):
            v3.VBtn("Demo sample", prepend_icon="mdi-flask-outline", classes="lts-open-demo",
                    click=app.open_demo, disabled=("lts_running",))
            with html.Label(classes="v-btn v-btn--variant-tonal pa-2 text-center lts-upload-label"):
                html.Span("Upload NIfTI / NRRD, DICOM files or a .zip")
                html.Input(type="file", multiple=True, accept=_ACCEPT, style="display: none;",
                           classes="lts-upload", disabled=("lts_running",),
                           change="window.ltsUpload($event.target.files); $event.target.value = ''")
            with html.Div(v_if="lts_has_data", classes="d-flex ga-2 align-center"):
                v3.VAutocomplete(v_model=("lts_data_pick",), items=("lts_data_items",),
                                 label="Server folder (--data)", density="compact",
                                 hide_details=True, classes="lts-data-pick")
                v3.VBtn("Open", classes="lts-open-data", click=app.open_data,
                        disabled=("lts_running || lts_data_pick === null",))
            with v3.VList(v_if="lts_choices.length", density="compact", classes="lts-choices"):
                v3.VListSubheader("Pick one")
                v3.VListItem(v_for="choice in lts_choices", key="choice.index",
                             title=("choice.label",), classes="lts-choice",
                             click=(app.open_choice, "[choice.index]"))
            with html.Div(v_if="lts_case", classes="text-caption lts-case-info"):
                html.Div("{{ lts_case.name }} ({{ lts_case.source }})")
                html.Div("size {{ lts_case.shape }} voxels, spacing {{ lts_case.spacing }} mm")
            with html.Div(v_if="lts_case", classes="d-flex ga-2 align-center flex-wrap"):
                with v3.VBtnToggle(v_model=("lts_preset",), mandatory=True, density="compact",
                                   variant="outlined", divided=True):
                    for key, preset in WINDOW_PRESETS.items():
                        v3.VBtn(preset.label, value=key, size="small", classes=f"lts-preset-{key}")
                with v3.VBtnToggle(v_model=("lts_segment_style",), mandatory=True,
                                   density="compact", variant="outlined", divided=True):
                    for key in SEGMENT_STYLES:
                        v3.VBtn(_STYLE_LABELS[key], value=key, size="small")
                v3.VBtn(icon="mdi-fit-to-screen-outline", size="small", variant="text",
                        click=app.reset_views, title="Fit the views to the case")


def _segment_card(app: LiverTumorSegWebApp) -> None:
    with v3.VCard(v_if="lts_case", variant="flat", classes="ma-2"):
        with v3.VCardText(classes="d-flex flex-column ga-2"):
            v3.VBtn("{{ lts_running ? 'Cancel' : 'Segment' }}", classes="lts-segment",
                    color=("lts_running ? 'warning' : 'primary'",),
                    prepend_icon=("lts_running ? 'mdi-stop' : 'mdi-play'",), click=app.segment)
            v3.VProgressLinear(v_if="lts_running", model_value=("lts_progress",), height=8,
                               color="primary", classes="lts-progress")
            html.Div("{{ lts_stage }}", v_if="lts_running", classes="text-caption lts-stage")
            v3.VCheckbox(v_model=("lts_force",), density="compact", hide_details=True,
                         disabled=("lts_running",), classes="lts-force",
                         label="Segment even if the values do not look like CT (a warning stays)")


def _download_card() -> None:
    with v3.VCard(v_if="lts_has_result", variant="flat", classes="ma-2"):
        v3.VCardTitle("Download", classes="text-subtitle-1")
        with v3.VCardText(classes="d-flex flex-column ga-1"):
            html.Div("The files carry your edits.", v_if="lts_edited", classes="text-caption")
            # Plain links with `download`: following a link away from the page would close its
            # connection to the server.
            html.A("{{ item.label }}", v_for="item in lts_downloads", key="item.kind",
                   href=("item.href",), download=("item.filename",),
                   classes=("`v-btn v-btn--variant-tonal v-btn--size-small pa-2 text-none"
                            " lts-download lts-download-${item.kind}`",))


def _results(app: LiverTumorSegWebApp) -> None:
    with html.Div(v_if="lts_has_result", classes="pa-2 lts-results",
                  style="height: calc(40vh - 64px); overflow: auto;"):
        v3.VAlert(v_for="warning in lts_warnings", key="warning", text=("warning",),
                  type="warning", density="compact", classes="mb-1 lts-warning")
        v3.VAlert(v_if="lts_edited", type="info", density="compact", classes="mb-1 lts-edited",
                  text="Edited results: these numbers are recomputed from your edited segments "
                       "(no model confidence for edited segments).")
        with html.Div(v_if="lts_centred_on", classes="text-caption mb-1 lts-centred"):
            html.Span("Views centred on {{ lts_centred_on }}; view centres (R, A, S mm): ")
            html.Span("{{ name }} {{ centre.join(', ') }}; ", v_for="(centre, name) in lts_centres",
                      key="name", classes="lts-centre")
        with v3.VTable(density="compact", classes="lts-table"):
            with html.Thead():
                with html.Tr():
                    html.Th("{{ column }}", v_for="column in lts_columns", key="column")
            with html.Tbody():
                with html.Tr(v_for="row in lts_rows", key="row.key", classes="lts-row",
                             style=("row['Centroid R (mm)'] !== null ? 'cursor: pointer' : ''",),
                             click=(app.centre_on_row, "[row.key]")):
                    html.Td("{{ row[column] === null ? '' : row[column] }}",
                            v_for="column in lts_columns", key="column")
