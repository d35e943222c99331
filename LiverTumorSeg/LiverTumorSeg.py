"""3D Slicer module: segment the liver and liver tumors in a CT with the LiverTumorSeg engine.

This file only binds the panel and Slicer to `LiverTumorSegLib`; every computation lives there.
"""

import os
import sys
from typing import Annotated, Optional

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

# In a source checkout the engine sits beside this module's folder; when installed, beside this file.
_CHECKOUT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if not os.path.isdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "LiverTumorSegLib")) \
        and _CHECKOUT_ROOT not in sys.path:
    sys.path.append(_CHECKOUT_ROOT)

from LiverTumorSegLib import resources  # noqa: E402  (path set up above)
from LiverTumorSegLib.dependencies import TORCH_IMPORTS, missing_requirements  # noqa: E402
from LiverTumorSegLib.errors import ModelError  # noqa: E402
from LiverTumorSegLib.mrml.logic import MrmlSegmentationLogic  # noqa: E402
from LiverTumorSegLib.panel.background_run import (  # noqa: E402
    BackgroundSegmentation,
    Cancelled,
    Failed,
    Progress,
    RunEvent,
)
from LiverTumorSegLib.panel.installer import (  # noqa: E402
    SlicerInstallPrompt,
    SlicerPackageTools,
    ensure_dependencies,
)

DEVICES = {"Auto": "auto", "GPU": "cuda", "CPU": "cpu"}
TITLE = "Liver Tumor Segmentation"
# Set on a parameter node once its post-processing values came from the model card (a new node gets
# the card's values; a node the user already edited, or saved with a scene, keeps its own).
CARD_DEFAULTS_ATTRIBUTE = "LiverTumorSeg.PostprocessingFromCard"


def _modelCardSummary() -> str:
    """What the bundled model is, what trained it and how accurate it is, for the help text."""
    if not resources.BUNDLED_MODEL_CARD.is_file():
        return ("<p><b>No trained model is installed in this build.</b> The bundled weights come from "
                "the project's training pipeline; see the README.</p>")
    from LiverTumorSegLib.model.card import load_model_card
    from LiverTumorSegLib.reporting.model_summary import model_card_summary

    return "".join(f"<p>{line}</p>" for line in model_card_summary(
        load_model_card(resources.BUNDLED_MODEL_CARD)))


class LiverTumorSeg(ScriptedLoadableModule):
    """Module description shown in Slicer's module list and help panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = TITLE
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["LiverTumorSeg developers"]
        self.parent.helpText = (
            "<p>Segments the liver and liver tumors in an abdominal CT (Hounsfield units) with a 2.5D "
            "ResNet50 U-Net that runs on the GPU when there is one and on the CPU otherwise. Output: "
            "<i>Liver</i> and <i>Tumor</i> segments with standard terminology, and a table with liver "
            "volume, tumor count, tumor burden and per-lesion volume, diameters and position.</p>"
            + _modelCardSummary() +
            "<p>For research use only; not a medical device. Check every result.</p>")
        self.parent.icon = qt.QIcon(str(resources.MODULE_ICON))
        self.parent.acknowledgementText = (
            "Training and test CT: 3D-IRCADb-01 (IRCAD, CC BY-NC-ND 4.0), CHAOS challenge, LiTS / "
            "Medical Segmentation Decathlon Task03 (CC BY-SA 4.0), TotalSegmentator example CT. "
            "Network: segmentation-models-pytorch.")


@parameterNodeWrapper
class LiverTumorSegParameterNode:
    """The panel's state, saved with the scene."""

    inputVolume: vtkMRMLScalarVolumeNode
    outputSegmentation: vtkMRMLSegmentationNode
    device: Annotated[str, Choice(list(DEVICES))] = "Auto"
    minimumLesionVolume: Annotated[float, WithinRange(0.0, 100000.0)] = 100.0
    keepLargestLiver: bool = True
    closingRadius: Annotated[float, WithinRange(0.0, 20.0)] = 0.0


class LiverTumorSegWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel. Inference runs in a `BackgroundSegmentation` (a worker thread); a timer polls it,
    shows its progress and applies the result to MRML on the main thread, so Slicer never freezes and
    Apply becomes Cancel meanwhile."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._run: Optional[BackgroundSegmentation] = None
        self._runNodes = (None, None)  # input volume and output segmentation of the run
        self._timer = qt.QTimer()
        self._timer.setInterval(100)
        self._timer.connect("timeout()", self._poll)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(str(resources.MODULE_UI))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LiverTumorSegLogic()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.show3DButton.connect("clicked(bool)", self.onShow3D)
        self._disableUnavailableGpu()
        self.ui.progressBar.hide()
        self.initializeParameterNode()

    def _disableUnavailableGpu(self) -> None:
        """Grey out GPU when torch is missing or sees no CUDA device (checked without importing
        torch when it is not installed)."""
        available = False
        if not missing_requirements(TORCH_IMPORTS):
            import torch

            available = torch.cuda.is_available()
        if not available:
            gpu = self.ui.deviceComboBox.findText("GPU")
            self.ui.deviceComboBox.setItemData(gpu, 0, qt.Qt.UserRole - 1)  # greys the item out
            self.ui.deviceComboBox.setItemData(gpu, "No CUDA GPU is usable by PyTorch here.",
                                               qt.Qt.ToolTipRole)

    def cleanup(self) -> None:
        self._cancelRun()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)

    def onSceneStartClose(self, caller, event) -> None:
        self._cancelRun()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            first = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if first and not first.IsA("vtkMRMLLabelMapVolumeNode"):
                self._parameterNode.inputVolume = first

    def setParameterNode(self, parameterNode: Optional[LiverTumorSegParameterNode]) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
            self._updateButtons()

    def _updateButtons(self, caller=None, event=None) -> None:
        running = self._run is not None
        self.ui.applyButton.text = "Cancel" if running else "Apply"
        self.ui.applyButton.toolTip = ("Stop the segmentation; nothing is changed." if running else
                                       "Segment the liver and liver tumors.")
        self.ui.applyButton.enabled = running or bool(self._parameterNode and
                                                      self._parameterNode.inputVolume)
        for widget in (self.ui.inputsCollapsibleButton, self.ui.advancedCollapsibleButton):
            widget.enabled = not running

    # ---- running ------------------------------------------------------------------------------
    def onApplyButton(self) -> None:
        if self._run is not None:
            self._run.cancel()
            self.ui.statusLabel.text = "Cancelling..."
            return
        if not self.logic.ensureDependencies():
            return
        parameters = self._parameterNode
        try:
            volume = self.logic.volumeFromNode(parameters.inputVolume)
            postprocessing = self.logic.postprocessingOptions(
                parameters.minimumLesionVolume, parameters.keepLargestLiver, parameters.closingRadius)
        except Exception as exc:  # noqa: BLE001 - show any engine error to the user
            slicer.util.errorDisplay(str(exc), windowTitle=TITLE)
            return
        self._run = BackgroundSegmentation(self.logic, volume, DEVICES[parameters.device], postprocessing)
        self._runNodes = (parameters.inputVolume, parameters.outputSegmentation)
        self.ui.progressBar.value = 0
        self.ui.progressBar.show()
        self.ui.statusLabel.text = "Loading the model..."
        self._updateButtons()
        self._run.start()
        self._timer.start()

    def _poll(self) -> None:
        """Main thread: show the run's progress; apply its result to MRML when it has ended."""
        if self._run is None:
            self._timer.stop()
            return
        for event in self._run.poll():
            if isinstance(event, Progress):
                self.ui.progressBar.value = int(100 * event.fraction)
                self.ui.statusLabel.text = event.message
            else:
                self._endRun()
                self._showOutcome(event)

    def _showOutcome(self, event: RunEvent) -> None:
        """Main thread: the run's final event: a message, or its result applied to MRML."""
        if isinstance(event, Cancelled):
            self.ui.statusLabel.text = "Cancelled; nothing was changed."
        elif isinstance(event, Failed):
            self.ui.statusLabel.text = "Failed."
            slicer.util.errorDisplay(str(event.error), windowTitle=TITLE)
        else:
            inputNode, outputNode = self._runNodes
            with slicer.util.tryWithErrorDisplay("Could not store the segmentation.", waitCursor=True):
                node = self.logic.applyResult(event.result, inputNode, outputNode)
                self._parameterNode.outputSegmentation = node
                self._showResults(node, event.result.statistics)

    def _endRun(self) -> None:
        self._timer.stop()
        self._run = None
        self.ui.progressBar.hide()
        self._updateButtons()

    def _cancelRun(self) -> None:
        if self._run is not None:
            self._run.stop()
            self._endRun()

    def _showResults(self, segmentationNode, statistics: dict) -> None:
        from LiverTumorSegLib.mrml.table import STATISTICS_TABLE_ROLE

        table = segmentationNode.GetNodeReference(STATISTICS_TABLE_ROLE)
        self.ui.resultsTableView.setMRMLTableNode(table)
        self.ui.statusLabel.text = (
            f"Liver {statistics['liver_volume_ml']:.0f} mL, {statistics['tumor_count']} tumor(s), "
            f"burden {statistics['tumor_burden_percent']:.1f}% ({statistics['seconds']:.1f} s on "
            f"{statistics['device']})")
        for warning in statistics.get("warnings", []):
            slicer.util.warningDisplay(warning, windowTitle=TITLE)

    def onShow3D(self) -> None:
        node = self._parameterNode.outputSegmentation if self._parameterNode else None
        if node is not None:
            node.CreateClosedSurfaceRepresentation()
            layoutManager = slicer.app.layoutManager()
            if layoutManager.threeDWidget(0):
                layoutManager.threeDWidget(0).threeDView().resetFocalPoint()


class LiverTumorSegLogic(ScriptedLoadableModuleLogic, MrmlSegmentationLogic):
    """The Slicer module's logic: the engine's `MrmlSegmentationLogic` bound to `slicer.mrmlScene`,
    plus the panel's parameter node and the installation of missing packages.

    Console use: `LiverTumorSeg.LiverTumorSegLogic().process(slicer.util.getNode("CT"))`.
    """

    def __init__(self, modelCard=None) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        MrmlSegmentationLogic.__init__(self, slicer.mrmlScene, modelCard)

    def getParameterNode(self) -> LiverTumorSegParameterNode:
        """The panel's parameter node; a new one starts from the loaded model card's post-processing."""
        node = super().getParameterNode()
        parameters = LiverTumorSegParameterNode(node)
        if not node.GetAttribute(CARD_DEFAULTS_ATTRIBUTE):
            try:
                card = self.card
            except ModelError:  # no usable model: Apply says so; the panel keeps its defaults
                return parameters
            parameters.minimumLesionVolume = card.postprocessing.min_lesion_volume_mm3
            parameters.keepLargestLiver = card.postprocessing.keep_largest_liver
            parameters.closingRadius = card.postprocessing.closing_radius_mm
            node.SetAttribute(CARD_DEFAULTS_ATTRIBUTE, card.name)
        return parameters

    def ensureDependencies(self, askConfirmation: bool = True) -> bool:
        """Install missing packages after asking, on the main thread, never replacing Slicer's."""
        return ensure_dependencies(SlicerPackageTools(), SlicerInstallPrompt(), askConfirmation)


class LiverTumorSegTest(ScriptedLoadableModuleTest):
    """Reload and Test: segment Slicer's CTLiver sample (or the embedded sample) and check segments,
    terminology, colours, geometry, segment-ID stability and the statistics table. The checks are
    `LiverTumorSegLib.mrml.selftest.run_self_test`, which pytest also runs headless."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_LiverTumorSeg_selfTest()

    def test_LiverTumorSeg_selfTest(self):
        from LiverTumorSegLib.mrml.selftest import run_self_test

        self.delayDisplay("Starting the self-test")
        ct, labelPath = self._input()
        report = run_self_test(slicer.mrmlScene, ct, labelPath)
        statistics = report["statistics"]
        self.delayDisplay(f"Liver {statistics['liver_volume_ml']:.0f} mL, "
                          f"{statistics['tumor_count']} tumor(s); checks passed")

    def _input(self):
        """Slicer's CTLiver sample (a volume node) when it can be downloaded, else the embedded
        demo sample (a file, with its reference label)."""
        try:
            import SampleData

            node = SampleData.downloadSample("CTLiver")
            if node is not None:
                return node, None
        except Exception:  # noqa: BLE001 - offline: use the embedded sample
            pass
        return str(resources.SAMPLE_CT), str(resources.SAMPLE_LABEL)
