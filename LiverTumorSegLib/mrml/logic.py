"""`MrmlSegmentationLogic`: the engine on a Slicer scene. Volume node in, `Liver` and `Tumor` segments
and a statistics table out. Needs only Slicer's MRML classes, so it runs inside Slicer and headless
with `slicer-core`. (The Slicer module's `LiverTumorSegLogic` is this class bound to `slicer.mrmlScene`.)

The work splits in three steps so that a GUI can run the middle one off the main thread:
`volumeFromNode` (main thread, reads MRML), `compute` (any thread, no MRML), `applyResult` (main thread,
writes MRML). `process` runs the three in a row. Nothing in the scene changes before `applyResult`, so
an error or a cancel leaves the output node exactly as it was.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..atomic import atomic_output
from ..errors import InputVolumeError, OutputError
from ..model.card import ModelCard, PostprocessingSpec, resolve_model_card
from ..segments import OUTPUT_SEGMENTS, SegmentStyle
from ..volume.space import Volume
from .table import write_statistics_table

# The segment tag that says what a segment holds (`segments.SegmentStyle.contents`).
SEGMENT_DESCRIPTION_TAG = "Description"
# Node reference roles from a segmentation node to its probability volume nodes, by channel.
PROBABILITY_ROLES = {"liver": "LiverTumorSegLiverProbability",
                     "tumor": "LiverTumorSegTumorProbability"}

if TYPE_CHECKING:  # the pipeline imports torch; Slicer must be able to import this module without it
    from ..pipeline import CancelCheck, SegmentationResult, Segmenter


def _slicer():
    import slicer  # imported lazily so that the engine never needs Slicer

    return slicer


def _matrix_to_numpy(matrix) -> np.ndarray:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _numpy_to_matrix(array: np.ndarray):
    import vtk

    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(array[r, c]))
    return matrix


def _segmentations_logic(slicer, scene):
    """Inside Slicer, the Segmentations module's own logic; headless, a new one on `scene` (it needs
    the scene before it can create labelmap representations)."""
    modules = getattr(slicer, "modules", None)
    if modules is not None and hasattr(modules, "segmentations") and \
            getattr(slicer, "mrmlScene", None) is scene:
        return modules.segmentations.logic()
    logic = slicer.vtkSlicerSegmentationsModuleLogic()
    logic.SetMRMLScene(scene)
    return logic


class MrmlSegmentationLogic:
    """Segments a CT volume node of `scene` into `Liver` and `Tumor` segments with a statistics table,
    with the model of `modelCard` (a card, its path, or None for the bundled model)."""

    def __init__(self, scene, modelCard: ModelCard | str | Path | None = None):
        slicer = _slicer()
        self.lastSegmentationNode = None
        self.scene = scene
        self.modelCard = modelCard
        self._card: ModelCard | None = None
        self._segmenters: dict[str, Segmenter] = {}
        self._lock = threading.Lock()
        self._segmentationsLogic = _segmentations_logic(slicer, scene)

    # ---- step 1: read the input (main thread) -------------------------------------------------
    def volumeFromNode(self, inputVolumeNode) -> Volume:
        """Voxels (as an i, j, k copy) and the IJK-to-RAS matrix of a scalar CT volume node."""
        slicer = _slicer()
        if inputVolumeNode is None:
            raise InputVolumeError("No input volume was selected; choose a CT volume.")
        if inputVolumeNode.IsA("vtkMRMLLabelMapVolumeNode"):
            raise InputVolumeError(f"'{inputVolumeNode.GetName()}' is a labelmap, not a CT; choose "
                                   "the CT volume itself.")
        if not inputVolumeNode.IsA("vtkMRMLScalarVolumeNode") or inputVolumeNode.IsA(
                "vtkMRMLVectorVolumeNode"):
            raise InputVolumeError(f"'{inputVolumeNode.GetName()}' is a "
                                   f"{inputVolumeNode.GetClassName()}, not a scalar CT volume.")
        imageData = inputVolumeNode.GetImageData()
        if imageData is None or imageData.GetNumberOfPoints() == 0:
            raise InputVolumeError(f"'{inputVolumeNode.GetName()}' holds no image data.")
        if imageData.GetNumberOfScalarComponents() != 1:
            raise InputVolumeError(f"'{inputVolumeNode.GetName()}' has "
                                   f"{imageData.GetNumberOfScalarComponents()} components per voxel "
                                   "(colour?); a grey-level CT is needed.")
        import vtk

        voxels = np.array(slicer.util.arrayFromVolume(inputVolumeNode).transpose(2, 1, 0))
        matrix = vtk.vtkMatrix4x4()
        inputVolumeNode.GetIJKToRASMatrix(matrix)
        return Volume(voxels, _matrix_to_numpy(matrix))

    def volumeNodeFromVolume(self, volume: Volume, name: str):
        """A new scalar volume node of the scene holding `volume` (voxels copied, IJK-to-RAS from
        its affine, default display nodes): the inverse of `volumeFromNode`."""
        node = self.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
        _slicer().util.updateVolumeFromArray(
            node, np.ascontiguousarray(np.asarray(volume.array).transpose(2, 1, 0)))
        node.SetIJKToRASMatrix(_numpy_to_matrix(volume.affine))
        node.CreateDefaultDisplayNodes()
        return node

    # ---- the model --------------------------------------------------------------------------
    @property
    def card(self) -> ModelCard:
        """The model card this logic segments with, read once (raises `ModelError` if unusable)."""
        with self._lock:
            if self._card is None:
                self._card = resolve_model_card(self.modelCard)
            return self._card

    def postprocessingOptions(self, minimumLesionVolume: float | None = None,
                              keepLargestLiver: bool | None = None,
                              closingRadius: float | None = None) -> PostprocessingSpec:
        """The card's post-processing with the panel's choices; a choice left as None keeps the
        card's value, and the card's other steps are always kept."""
        return self.card.postprocessing.with_overrides(
            min_lesion_volume_mm3=minimumLesionVolume, keep_largest_liver=keepLargestLiver,
            closing_radius_mm=closingRadius)

    # ---- step 2: compute (any thread) ---------------------------------------------------------
    def segmenter(self, device: str = "auto") -> Segmenter:
        """The loaded model for a device, loaded once and kept."""
        from ..pipeline import Segmenter

        card = self.card
        with self._lock:
            if device not in self._segmenters:
                self._segmenters[device] = Segmenter(card, device=device)
            return self._segmenters[device]

    def compute(self, volume: Volume, device: str = "auto",
                progressCallback: Callable[[float, str], None] | None = None,
                cancelEvent: CancelCheck | None = None, force: bool = False,
                postprocessing: PostprocessingSpec | None = None,
                probabilities: bool = False) -> SegmentationResult:
        """Run the engine; touches no MRML, so it may run on a worker thread. `probabilities`: also
        compute the liver and tumour probability map (written by `applyResult`)."""
        return self.segmenter(device).segment(volume, force=force, postprocessing=postprocessing,
                                              progress=progressCallback, cancel=cancelEvent,
                                              probabilities=probabilities)

    # ---- step 3: write the output (main thread) -----------------------------------------------
    def applyResult(self, result: SegmentationResult, inputVolumeNode,
                    outputSegmentationNode=None):
        """Write the `Liver` and `Tumor` segments and the statistics table (and, when the result has
        them, the probability volume nodes); return the segmentation node.

        Only the two segments named `Liver` and `Tumor` are replaced (their IDs kept); every other
        segment of the node is left untouched.
        """
        slicer = _slicer()
        if outputSegmentationNode is None:
            outputSegmentationNode = self.scene.AddNewNodeByClass(
                "vtkMRMLSegmentationNode", f"{inputVolumeNode.GetName()} liver segmentation")
            outputSegmentationNode.CreateDefaultDisplayNodes()
        outputSegmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(inputVolumeNode)
        outputSegmentationNode.SetAndObserveTransformNodeID(inputVolumeNode.GetTransformNodeID())
        segmentation = outputSegmentationNode.GetSegmentation()
        labelsKji = np.ascontiguousarray(result.labels.transpose(2, 1, 0))
        for style in OUTPUT_SEGMENTS:
            segmentId = self._segmentFor(segmentation, style)
            image = self._orientedImage(labelsKji == style.label, result.affine)
            if not slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
                    image, outputSegmentationNode, segmentId,
                    slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE, image.GetExtent()):
                raise OutputError(f"Could not write the {style.name} segment into "
                                  f"'{outputSegmentationNode.GetName()}'.")
        write_statistics_table(self.scene, result.statistics, outputSegmentationNode)
        if result.probabilities is not None:
            self._writeProbabilities(result, inputVolumeNode, outputSegmentationNode)
        return outputSegmentationNode

    def probabilityNodes(self, segmentationNode) -> dict[str, Any]:
        """The probability volume nodes of a segmentation node, by channel ('liver', 'tumor')."""
        nodes = {name: segmentationNode.GetNodeReference(role)
                 for name, role in PROBABILITY_ROLES.items()}
        return {name: node for name, node in nodes.items() if node is not None}

    def _writeProbabilities(self, result: SegmentationResult, inputVolumeNode, segmentationNode):
        """One scalar volume node per channel on the input's grid (uint8, softmax x 255), named
        after the input and referenced by the segmentation node, so a re-run refreshes them."""
        import vtk

        slicer = _slicer()
        matrix = vtk.vtkMatrix4x4()
        inputVolumeNode.GetIJKToRASMatrix(matrix)
        existing = self.probabilityNodes(segmentationNode)
        for name, role in PROBABILITY_ROLES.items():
            node = existing.get(name) or self.scene.AddNewNodeByClass(
                "vtkMRMLScalarVolumeNode", f"{inputVolumeNode.GetName()} {name} probability")
            segmentationNode.SetNodeReferenceID(role, node.GetID())
            slicer.util.updateVolumeFromArray(
                node, np.ascontiguousarray(result.probabilities.channel(name).transpose(2, 1, 0)))
            node.SetIJKToRASMatrix(matrix)
            node.SetAndObserveTransformNodeID(inputVolumeNode.GetTransformNodeID())

    @staticmethod
    def _segmentFor(segmentation, style: SegmentStyle) -> str:
        segmentId = segmentation.GetSegmentIdBySegmentName(style.name)
        if not segmentId:
            segmentId = segmentation.AddEmptySegment(style.name, style.name, style.colour_unit)
        segment = segmentation.GetSegment(segmentId)
        segment.SetColor(*style.colour_unit)
        segment.SetTerminology(style.terminology)
        segment.SetTag(SEGMENT_DESCRIPTION_TAG, style.contents)
        return segmentId

    @staticmethod
    def _orientedImage(maskKji: np.ndarray, ijkToRas: np.ndarray):
        import vtk
        from vtk.util import numpy_support

        slicer = _slicer()
        image = slicer.vtkOrientedImageData()
        image.SetDimensions(maskKji.shape[2], maskKji.shape[1], maskKji.shape[0])
        image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
        numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())[:] = maskKji.ravel()
        image.SetImageToWorldMatrix(_numpy_to_matrix(ijkToRas))
        return image

    # ---- all three in a row -------------------------------------------------------------------
    def process(self, inputVolumeNode, outputSegmentationNode=None, device: str = "auto",
                progressCallback: Callable[[float, str], None] | None = None,
                cancelEvent: CancelCheck | None = None, force: bool = False,
                postprocessing: PostprocessingSpec | None = None,
                probabilities: bool = False) -> dict[str, Any]:
        """Segment `inputVolumeNode`; return the statistics dictionary the CLI writes as JSON.
        `probabilities`: also write the liver and tumour probability volume nodes."""
        volume = self.volumeFromNode(inputVolumeNode)
        result = self.compute(volume, device, progressCallback, cancelEvent, force, postprocessing,
                              probabilities)
        self.lastSegmentationNode = self.applyResult(result, inputVolumeNode, outputSegmentationNode)
        return result.statistics

    # ---- exports ------------------------------------------------------------------------------
    def exportSegmentation(self, segmentationNode, path: str | Path) -> None:
        """Save the segmentation as `.seg.nrrd` (segments, colours and terminology kept)."""
        slicer = _slicer()
        storage = slicer.vtkMRMLSegmentationStorageNode()
        with atomic_output(Path(path)) as tmp:
            storage.SetFileName(str(tmp))
            if not storage.WriteData(segmentationNode):
                raise OutputError(f"Could not write {path}.")

    def _labelmapNode(self, segmentationNode, referenceVolumeNode):
        """A temporary labelmap node (Liver = 1, Tumor = 2) on the reference grid; caller removes it."""
        import vtk

        segmentation = segmentationNode.GetSegmentation()
        ids = vtk.vtkStringArray()
        for style in OUTPUT_SEGMENTS:
            ids.InsertNextValue(segmentation.GetSegmentIdBySegmentName(style.name))
        labelmap = self.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__export__")
        if not self._segmentationsLogic.ExportSegmentsToLabelmapNode(segmentationNode, ids, labelmap,
                                                                     referenceVolumeNode):
            self.scene.RemoveNode(labelmap)
            raise OutputError(f"Could not export '{segmentationNode.GetName()}' to a labelmap.")
        return labelmap

    def labelArray(self, segmentationNode, referenceVolumeNode) -> np.ndarray:
        """The Liver/Tumor segments as one (i, j, k) uint8 array on the reference volume's grid."""
        labelmap = self._labelmapNode(segmentationNode, referenceVolumeNode)
        try:
            return np.array(_slicer().util.arrayFromVolume(labelmap).transpose(2, 1, 0), np.uint8)
        finally:
            self.scene.RemoveNode(labelmap)

    def exportLabelmap(self, segmentationNode, referenceVolumeNode, path: str | Path) -> None:
        """Save Liver = 1 and Tumor = 2 as a labelmap (NIfTI or NRRD) on the reference volume grid."""
        labelmap = self._labelmapNode(segmentationNode, referenceVolumeNode)
        try:
            storage = _slicer().vtkMRMLVolumeArchetypeStorageNode()
            with atomic_output(Path(path)) as tmp:
                storage.SetFileName(str(tmp))
                if not storage.WriteData(labelmap):
                    raise OutputError(f"Could not write {path}.")
        finally:
            self.scene.RemoveNode(labelmap)
