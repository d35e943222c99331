"""Correcting the segmentation with trame-slicer's Segment Editor: its logic and effect panels, shown
with the five effects a radiologist needs on `Liver` and `Tumor` (paint, erase, islands, scissors,
smoothing) and undo/redo; segments are picked, never added or deleted, so exports keep exactly the
two output segments."""

from __future__ import annotations

from trame.widgets import html
from trame.widgets.vuetify3 import VBtn, VBtnToggle, VDivider
from trame_slicer.app.ui import SegmentEditorUI
from trame_slicer.app.ui.segmentation import (
    DrawEffectUI,
    IslandsEffectUI,
    LogicalOperatorsEffectUI,
    PaintEffectUI,
    ScissorsEffectUI,
    SmoothingEffectUI,
    ThresholdEffectUI,
)
from trame_slicer.segmentation import (
    SegmentationEffectDraw,
    SegmentationEffectErase,
    SegmentationEffectIslands,
    SegmentationEffectLogicalOperators,
    SegmentationEffectNoTool,
    SegmentationEffectPaint,
    SegmentationEffectScissors,
    SegmentationEffectSmoothing,
    SegmentationEffectThreshold,
)

from ..segments import OUTPUT_SEGMENTS

OFFERED_EFFECTS = (
    ("View only", "mdi-cursor-default", SegmentationEffectNoTool),
    ("Paint", "mdi-brush", SegmentationEffectPaint),
    ("Erase", "mdi-eraser", SegmentationEffectErase),
    ("Islands", "mdi-scatter-plot", SegmentationEffectIslands),
    ("Scissors", "mdi-content-cut", SegmentationEffectScissors),
    ("Smoothing", "mdi-square-rounded-outline", SegmentationEffectSmoothing),
)
# Panels trame-slicer's editor logic binds to (every effect logic looks up its panel); the effects
# not offered never become active, so their panels never show.
_PANELS = ((SegmentationEffectPaint, PaintEffectUI), (SegmentationEffectErase, PaintEffectUI),
           (SegmentationEffectIslands, IslandsEffectUI), (SegmentationEffectScissors, ScissorsEffectUI),
           (SegmentationEffectSmoothing, SmoothingEffectUI), (SegmentationEffectDraw, DrawEffectUI),
           (SegmentationEffectThreshold, ThresholdEffectUI),
           (SegmentationEffectLogicalOperators, LogicalOperatorsEffectUI))


class CorrectionPanel(SegmentEditorUI):
    """The editor's panel: segment (Liver or Tumor), effect buttons, the active effect's options,
    undo and redo."""

    def _build_ui(self) -> None:
        segments = self._typed_state.name.segment_list
        with self:
            self.edit_ui._build_color_dialog()
            with html.Div(classes="d-flex align-center ga-2 mb-2"):
                html.Span("Segment", classes="text-body-2")
                with VBtnToggle(model_value=(segments.active_segment_id,), mandatory=True,
                                density="compact", variant="outlined", divided=True):
                    for style in OUTPUT_SEGMENTS:  # applyResult gives each segment its name as ID
                        VBtn(text=style.name, value=style.name, size="small",
                             classes=f"lts-segment-{style.name.lower()}",
                             style=f"color: rgb{style.colour_rgb};",
                             click=lambda name=style.name: self.select_segment_clicked(name))
            with html.Div(classes="d-flex flex-wrap ga-1 mb-2"):
                for name, icon, effect in OFFERED_EFFECTS:
                    VBtn(text=name, prepend_icon=icon, size="small",
                         classes=f"lts-effect-{name.split()[0].lower()}",
                         variant=(f"{self.is_active_effect(effect)[0]} ? 'flat' : 'tonal'",),
                         color=(f"{self.is_active_effect(effect)[0]} ? 'primary' : undefined",),
                         click=lambda effect=effect: self.effect_button_clicked(effect))
                VBtn(text="Undo", prepend_icon="mdi-undo", size="small", classes="lts-undo",
                     disabled=(f"!{self._typed_state.name.can_undo}",), click=self.undo_clicked)
                VBtn(text="Redo", prepend_icon="mdi-redo", size="small", classes="lts-redo",
                     disabled=(f"!{self._typed_state.name.can_redo}",), click=self.redo_clicked)
            VDivider(classes="mb-2")
            for effect, panel in _PANELS:
                self._register_effect_ui(effect, panel)
