"""The four views (axial, coronal, sagittal, 3D) of trame-slicer on the app's scene: what a case and
its segmentation look like in them, CT window presets, and centring the views on a point."""

from __future__ import annotations

from dataclasses import dataclass

from trame_slicer.core import LayoutManager, SlicerApp
from trame_slicer.segmentation import SegmentationOpacityEnum
from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition
from vtkmodules.vtkCommonCore import vtkCommand

LAYOUT_ID = "LiverTumorSeg"


@dataclass(frozen=True)
class WindowPreset:
    """A CT display window in Hounsfield units."""

    label: str
    width: float
    level: float


WINDOW_PRESETS = {"abdomen": WindowPreset("Abdomen", 400.0, 50.0),
                  "liver": WindowPreset("Liver", 150.0, 30.0)}
# How segments look in the slice views; applied through the Segment Editor's display settings,
# which own the segmentation's display node once it is being edited.
SEGMENT_STYLES = {"outline_fill": SegmentationOpacityEnum.BOTH,
                  "outline": SegmentationOpacityEnum.OUTLINE, "fill": SegmentationOpacityEnum.FILL}


def quad_layout() -> Layout:
    """Axial and 3D on top, coronal and sagittal below."""
    return Layout(LayoutDirection.Vertical, [
        Layout(LayoutDirection.Horizontal, [ViewLayoutDefinition.axial_view(),
                                            ViewLayoutDefinition.threed_view()]),
        Layout(LayoutDirection.Horizontal, [ViewLayoutDefinition.coronal_view(),
                                            ViewLayoutDefinition.sagittal_view()])])


class CaseViews:
    """Shows the open case and its segmentation in the views of `slicer_app`."""

    def __init__(self, slicer_app: SlicerApp, layout_manager: LayoutManager):
        self.app = slicer_app
        layout_manager.register_layout(LAYOUT_ID, quad_layout())
        layout_manager.set_layout(LAYOUT_ID)
        # A view is fitted to the case once it has its size in the page, which comes with its
        # first resize (a case opened before any page showed the views would not fit otherwise).
        self._unfitted: set[str] = set()
        for view in self.app.view_manager.get_views():
            view.interactor().AddObserver(vtkCommand.WindowResizeEvent,
                                          lambda *_, view=view: self._fit_once(view))

    @property
    def slice_views(self) -> list:
        return self.app.view_manager.get_slice_views()

    def show_volume(self, volume_node, preset: str = "abdomen") -> None:
        """The CT in every slice view, the three slice planes in 3D, the views fitted to it."""
        display = volume_node.GetDisplayNode()
        display.SetAndObserveColorNodeID("vtkMRMLColorTableNodeGrey")
        self.set_window(volume_node, preset)
        self.app.display_manager.show_volume_in_slice_background(volume_node)
        self.app.display_manager.show_volume_in_slice_foreground(None)
        for view in self.slice_views:
            view.set_visible_in_3d(True)
        self.reset()

    def reset(self) -> None:
        """Fit every view to the data now, and each again at its next resize."""
        self._unfitted = {view.get_singleton_tag() for view in self.app.view_manager.get_views()}
        self.app.display_manager.reset_views()

    def _fit_once(self, view) -> None:
        if view.get_singleton_tag() in self._unfitted:
            self._unfitted.discard(view.get_singleton_tag())
            view.reset_view()

    @staticmethod
    def set_window(volume_node, preset: str) -> None:
        """Apply a window preset of `WINDOW_PRESETS` to the CT."""
        window = WINDOW_PRESETS[preset]
        display = volume_node.GetDisplayNode()
        display.SetAutoWindowLevel(False)
        display.SetWindowLevel(window.width, window.level)

    def show_segmentation(self) -> None:
        """Make room for the segment surfaces in 3D: the slice planes leave the 3D view (each slice
        view's 3D button brings its plane back) and the camera fits the scene."""
        for view in self.slice_views:
            view.set_visible_in_3d(False)
        for view in self.app.view_manager.get_threed_views():
            view.reset_view()

    def centre_on(self, ras: tuple[float, float, float]) -> None:
        """Move every slice view to `ras` and put it in the middle; aim the 3D camera at it."""
        for view in self.slice_views:
            view.get_view_node().JumpSliceByCentering(*ras)
        for view in self.app.view_manager.get_threed_views():
            view.set_focal_point(*ras)
            view.schedule_render()

    def view_centres(self) -> dict[str, list[float]]:
        """Where the middle of each slice view lies, in RAS millimetres (read back from MRML)."""
        centres = {}
        for view in self.slice_views:
            node = view.get_view_node()
            matrix = node.GetSliceToRAS()
            centres[node.GetName()] = [round(matrix.GetElement(r, 3), 2) for r in range(3)]
        return centres
