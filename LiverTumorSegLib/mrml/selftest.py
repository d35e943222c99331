"""Checks of the Slicer logic on a real CT, shared by Slicer's self-test and the headless pytest suite.

`run_self_test(scene, ct_path, label_path)` loads the CT into the scene, segments it twice, and checks
segments, names, terminology, colours, geometry, segment-ID stability, untouched foreign segments and
the statistics table. It returns what it measured; a failed check raises `AssertionError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..metrics import evaluate_case
from ..model.card import ModelCard
from ..reporting.tables import STATISTICS_COLUMNS, statistics_rows
from ..segments import OUTPUT_SEGMENTS
from .logic import MrmlSegmentationLogic
from .table import STATISTICS_TABLE_ROLE, table_rows


def load_volume_node(scene, path: str | Path, labelmap: bool = False):
    """Read a NIfTI/NRRD file into a new volume node through MRML storage (no slicer.app needed)."""
    import slicer

    node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode" if labelmap else
                                   "vtkMRMLScalarVolumeNode", Path(path).name.split(".")[0])
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(path))
    if not storage.ReadData(node):
        scene.RemoveNode(node)
        raise OSError(f"Could not read {path} into the scene.")
    return node


def run_self_test(scene, ct, label_path: str | Path | None = None,
                  modelCard: ModelCard | str | Path | None = None, device: str = "auto") -> dict:
    """Segment a CT (a file path or a scalar volume node already in `scene`) through the logic and
    check everything a Slicer user relies on."""
    logic = MrmlSegmentationLogic(scene, modelCard)
    volumeNode = ct if hasattr(ct, "GetImageData") else load_volume_node(scene, ct)
    segmentationNode = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "self-test")
    segmentationNode.CreateDefaultDisplayNodes()
    foreignId = segmentationNode.GetSegmentation().AddEmptySegment("", "Gallbladder", (0.2, 0.8, 0.2))

    statistics = logic.process(volumeNode, segmentationNode, device=device)
    segmentation = segmentationNode.GetSegmentation()
    ids = {style.name: segmentation.GetSegmentIdBySegmentName(style.name) for style in OUTPUT_SEGMENTS}
    for style in OUTPUT_SEGMENTS:
        segment = segmentation.GetSegment(ids[style.name])
        assert segment is not None, f"segment {style.name} missing"
        assert segment.GetTerminology() == style.terminology, f"{style.name} terminology"
        assert np.allclose(segment.GetColor(), style.colour_unit, atol=1e-3), f"{style.name} colour"
    assert segmentation.GetSegment(foreignId) is not None, "another segment was removed"
    geometry = segmentationNode.GetNodeReference(segmentationNode.GetReferenceImageGeometryReferenceRole())
    assert geometry is None or geometry.GetID() == volumeNode.GetID()
    labels = logic.labelArray(segmentationNode, volumeNode)
    voxel_ml = abs(np.linalg.det(logic.volumeFromNode(volumeNode).affine[:3, :3])) / 1000
    assert abs(np.count_nonzero(labels) * voxel_ml - statistics["liver_volume_ml"]) < 1e-3 + \
        1e-6 * statistics["liver_volume_ml"], "segments disagree with the statistics"

    table = segmentationNode.GetNodeReference(STATISTICS_TABLE_ROLE)
    assert table is not None, "statistics table missing"
    expected = statistics_rows(statistics)
    assert [r["Structure"] for r in table_rows(table)] == [r["Structure"] for r in expected]
    assert tuple(table_rows(table)[0]) == STATISTICS_COLUMNS

    again = logic.process(volumeNode, segmentationNode, device=device)
    assert {s.name: segmentation.GetSegmentIdBySegmentName(s.name) for s in OUTPUT_SEGMENTS} == ids, \
        "segment IDs changed on re-run"
    assert segmentation.GetNumberOfSegments() == 3, "re-run added segments"
    assert again["liver_volume_ml"] == statistics["liver_volume_ml"], "re-run is not deterministic"

    report: dict[str, Any] = {"statistics": statistics, "segment_ids": ids}
    if label_path is not None:
        import slicer

        truthNode = load_volume_node(scene, label_path, labelmap=True)
        truth = np.array(slicer.util.arrayFromVolume(truthNode).transpose(2, 1, 0))
        report["metrics"] = evaluate_case(labels, truth, tuple(truthNode.GetSpacing()))
    return report
