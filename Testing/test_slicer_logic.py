"""The MRML logic with real Slicer classes (slicer-core, headless) and a small random model."""

import threading

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed (pip install slicer-core)")
import vtk  # noqa: E402  (after the importorskip)
from conftest import data_case, synthetic_ct  # noqa: E402

from LiverTumorSegLib.errors import CancelledError, InputVolumeError  # noqa: E402
from LiverTumorSegLib.evaluation import evaluate_files  # noqa: E402
from LiverTumorSegLib.inputs import read_volume  # noqa: E402
from LiverTumorSegLib.mrml.logic import SEGMENT_DESCRIPTION_TAG, MrmlSegmentationLogic  # noqa: E402
from LiverTumorSegLib.mrml.selftest import load_volume_node, run_self_test  # noqa: E402
from LiverTumorSegLib.mrml.table import STATISTICS_TABLE_ROLE, table_rows  # noqa: E402
from LiverTumorSegLib.pipeline import Segmenter  # noqa: E402
from LiverTumorSegLib.reporting.tables import TEXT_COLUMNS, statistics_rows  # noqa: E402
from LiverTumorSegLib.segments import LIVER_SEGMENT, TUMOR_SEGMENT  # noqa: E402
from LiverTumorSegLib.volume.space import Volume  # noqa: E402
from LiverTumorSegLib.workflow import segment_file  # noqa: E402


@pytest.fixture
def scene():
    return slicer.vtkMRMLScene()


@pytest.fixture
def logic(scene, random_card):
    return MrmlSegmentationLogic(scene, random_card)


def volume_node(scene, array_ijk, affine, cls="vtkMRMLScalarVolumeNode", name="CT"):
    node = scene.AddNewNodeByClass(cls, name)
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(array_ijk.transpose(2, 1, 0)))
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, affine[r, c])
    node.SetIJKToRASMatrix(matrix)
    return node


def _affine(spacing=(1.5, 1.5, 3.0)):
    affine = np.diag(list(spacing) + [1.0])
    affine[:3, 3] = (5.0, -7.0, 11.0)
    return affine


@pytest.mark.parametrize("case", ["tiny64", "lits117_crop"])
def test_self_test_scores_what_the_command_line_scores(scene, random_card, case, tmp_path):
    """The self-test's statistics and scores, read back through MRML, equal those of the file path
    (segment_file, then evaluate against the label file)."""
    ct, label = data_case(case)
    report = run_self_test(scene, ct, label, modelCard=random_card, device="cpu")
    result, outputs = segment_file(Segmenter(random_card, "cpu"), ct, tmp_path)
    expected = evaluate_files([(case, outputs.segmentation, label)])[case]
    for structure in ("liver", "tumor"):
        assert report["metrics"][structure]["counts"] == expected[structure]["counts"]
        assert report["metrics"][structure]["hd95_mm"] == pytest.approx(expected[structure]["hd95_mm"])
    assert report["metrics"]["lesions"] == expected["lesions"]
    for key in ("liver_volume_ml", "tumor_volume_ml", "tumor_count", "lesions"):
        assert report["statistics"][key] == result.statistics[key]


def test_self_test_on_a_full_resolution_case(scene, liver_everywhere_card):
    """A network that calls everything liver covers the whole true liver, read back through MRML on
    a 512 x 512 grid: the segments sit where the engine put them."""
    ct, label = data_case("chaos_ct3")
    report = run_self_test(scene, ct, label, modelCard=liver_everywhere_card, device="cpu")
    liver = report["metrics"]["liver"]
    assert liver["counts"]["truth"] > 0 and liver["recall"] == 1.0


def test_segments_equal_the_command_line_output(scene, logic, random_card, tmp_path):
    ct_path, _ = data_case("tiny64")
    result, outputs = segment_file(Segmenter(random_card, "cpu"), ct_path, tmp_path)
    node = load_volume_node(scene, ct_path)
    statistics = logic.process(node, device="cpu")
    segmentation = logic.lastSegmentationNode
    cli_labels = np.asarray(read_volume(outputs.segmentation).array)
    np.testing.assert_array_equal(logic.labelArray(segmentation, node), cli_labels)
    for key in ("liver_volume_ml", "tumor_volume_ml", "tumor_count", "tumor_burden_percent", "lesions"):
        assert statistics[key] == result.statistics[key]
    assert segmentation.GetName() == "tiny64_ct liver segmentation"


def test_table_rows_hold_the_engine_statistics(scene, logic):
    node = volume_node(scene, synthetic_ct(), _affine())
    statistics = logic.process(node, device="cpu")
    table = logic.lastSegmentationNode.GetNodeReference(STATISTICS_TABLE_ROLE)
    rows = table_rows(table)
    expected = statistics_rows(statistics)
    assert len(rows) == len(expected) == 2 + statistics["tumor_count"] + len(statistics["warnings"])
    for row, want in zip(rows, expected):
        for column, value in want.items():
            if isinstance(value, float):
                assert row[column] == pytest.approx(value)
            else:
                assert row[column] == (value if value is not None else ("" if column in
                                       TEXT_COLUMNS else None))
    assert "Volume (mL)" in rows[0] and "Longest axial diameter (mm)" in rows[0]
    # a re-run refreshes the same table instead of adding one
    logic.process(node, logic.lastSegmentationNode, device="cpu")
    assert scene.GetNodesByClass("vtkMRMLTableNode").GetNumberOfItems() == 1


def test_a_forced_run_shows_its_warning_at_the_top_of_the_table(scene, logic):
    mri_like = np.random.default_rng(0).integers(0, 900, (48, 40, 24)).astype(np.int16)
    statistics = logic.process(volume_node(scene, mri_like, _affine()), device="cpu", force=True)
    rows = table_rows(logic.lastSegmentationNode.GetNodeReference(STATISTICS_TABLE_ROLE))
    assert rows[0]["Structure"] == "WARNING"
    assert "does not look like a CT in Hounsfield units" in rows[0]["Warning"]
    assert [r["Warning"] for r in rows if r["Structure"] == "WARNING"] == statistics["warnings"]


def test_slicers_dicom_export_reads_the_codes_of_the_command_lines_seg(scene, logic):
    """Slicer's DICOM SEG export writes each segment's terminology entry: Slicer's own terminology
    logic must read from it the codes that the command line's DICOM SEG carries."""
    logic.process(volume_node(scene, synthetic_ct(), _affine()), device="cpu")
    segmentation = logic.lastSegmentationNode.GetSegmentation()
    terminologies = slicer.vtkSlicerTerminologiesModuleLogic()
    for style in (LIVER_SEGMENT, TUMOR_SEGMENT):
        entry = slicer.vtkSlicerTerminologyEntry()
        segment = segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName(style.name))
        assert terminologies.DeserializeTerminologyEntry(segment.GetTerminology(), entry)
        description = vtk.reference("")
        assert segment.GetTag(SEGMENT_DESCRIPTION_TAG, description)
        assert str(description) == style.contents, "the segment says what it holds"
        codes = style.codes
        read = {"category": entry.GetCategoryObject(), "type": entry.GetTypeObject(),
                "anatomic_region": entry.GetRegionObject()}
        for part, expected in (("category", codes.category), ("type", codes.type),
                               ("anatomic_region", codes.anatomic_region)):
            got = (read[part].GetCodingSchemeDesignator(), read[part].GetCodeValue())
            assert got == ((expected.scheme, expected.value) if expected else (None, None)), part


def test_other_segments_are_untouched_and_ids_stable(scene, logic):
    node = volume_node(scene, synthetic_ct(), _affine())
    segmentation_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "mine")
    segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(node)
    mine = np.zeros((48, 40, 24), np.uint8)
    mine[2:6, 2:6, 2:6] = 1
    slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
        MrmlSegmentationLogic._orientedImage(mine.transpose(2, 1, 0).copy(), _affine()),
        segmentation_node, segmentation_node.GetSegmentation().AddEmptySegment("kidney", "Kidney"),
        slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE)
    assert _segment_voxels(segmentation_node, "kidney") == 64
    logic.process(node, segmentation_node, device="cpu")
    segmentation = segmentation_node.GetSegmentation()
    liver_id = segmentation.GetSegmentIdBySegmentName("Liver")
    logic.process(node, segmentation_node, device="cpu")
    assert segmentation.GetSegmentIdBySegmentName("Liver") == liver_id
    assert segmentation.GetNumberOfSegments() == 3
    assert segmentation.GetSegment("kidney").GetName() == "Kidney"
    assert _segment_voxels(segmentation_node, "kidney") == 64


def _segment_voxels(segmentation_node, segment_id):
    from vtk.util.numpy_support import vtk_to_numpy

    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    image = segment.GetRepresentation(
        slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName())
    return int(np.count_nonzero(vtk_to_numpy(image.GetPointData().GetScalars())
                                == segment.GetLabelValue()))


@pytest.mark.parametrize("oblique", [False, True])
def test_flipped_and_oblique_ijk_to_ras(scene, logic, random_card, oblique):
    ct = synthetic_ct((40, 36, 24))
    affine = _affine()
    affine[:3, 0] *= -1          # i runs to the left
    affine[:3, [1, 2]] = affine[:3, [2, 1]]  # j and k swapped: slices are not along k
    if oblique:
        angle = np.radians(20)
        rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                             [0, 0, 1]])
        affine[:3, :3] = rotation @ affine[:3, :3]
    node = volume_node(scene, ct, affine)
    logic.process(node, device="cpu")
    expected = Segmenter(random_card, "cpu").segment(Volume(ct, affine)).labels
    np.testing.assert_array_equal(logic.labelArray(logic.lastSegmentationNode, node), expected)


def test_cancel_leaves_the_output_node_as_it_was(scene, logic):
    node = volume_node(scene, synthetic_ct(), _affine())
    segmentation_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "out")
    segmentation_node.GetSegmentation().AddEmptySegment("keep", "Keep")
    mtime = segmentation_node.GetMTime()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        logic.process(node, segmentation_node, device="cpu", cancelEvent=cancel)
    assert segmentation_node.GetSegmentation().GetNumberOfSegments() == 1
    assert segmentation_node.GetMTime() == mtime
    assert scene.GetNodesByClass("vtkMRMLTableNode").GetNumberOfItems() == 0


def test_bad_inputs_raise_and_change_nothing(scene, logic):
    ct = synthetic_ct()
    labelmap = volume_node(scene, (ct > 0).astype(np.uint8), _affine(), "vtkMRMLLabelMapVolumeNode")
    vector = scene.AddNewNodeByClass("vtkMRMLVectorVolumeNode", "rgb")
    empty = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    mri = volume_node(scene, np.abs(ct) + 50, _affine(), name="mri")
    count = scene.GetNumberOfNodes()
    for node, message in [(labelmap, "labelmap"), (vector, "not a scalar CT"),
                          (empty, "no image data"), (mri, "does not look like a CT"),
                          (None, "No input volume")]:
        with pytest.raises(InputVolumeError, match=message):
            logic.process(node, device="cpu")
    assert scene.GetNumberOfNodes() == count


def test_seg_nrrd_and_labelmap_exports_round_trip(scene, logic, tmp_path):
    node = volume_node(scene, synthetic_ct(), _affine())
    logic.process(node, device="cpu")
    segmentation_node = logic.lastSegmentationNode
    logic.exportSegmentation(segmentation_node, tmp_path / "out.seg.nrrd")
    reloaded = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "reloaded")
    storage = slicer.vtkMRMLSegmentationStorageNode()
    storage.SetFileName(str(tmp_path / "out.seg.nrrd"))
    assert storage.ReadData(reloaded)
    segmentation = reloaded.GetSegmentation()
    for style in (LIVER_SEGMENT, TUMOR_SEGMENT):
        segment = segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName(style.name))
        assert segment.GetTerminology() == style.terminology
    labels = logic.labelArray(segmentation_node, node)
    np.testing.assert_array_equal(logic.labelArray(reloaded, node), labels)
    logic.exportLabelmap(segmentation_node, node, tmp_path / "labels.nii.gz")
    exported = read_volume(tmp_path / "labels.nii.gz")
    np.testing.assert_array_equal(np.asarray(exported.array), labels)
    assert not list(tmp_path.glob("*.partial*"))


def test_probabilities_become_two_volume_nodes_named_after_the_input(scene, logic, random_card):
    ct_path, _ = data_case("tiny64")
    node = load_volume_node(scene, ct_path)
    volume = logic.volumeFromNode(node)
    expected = Segmenter(random_card, "cpu").segment(volume, probabilities=True).probabilities
    segmentation = None
    for _ in range(2):  # a re-run into the same segmentation refreshes the same nodes
        logic.process(node, segmentation, device="cpu", probabilities=True)
        segmentation = logic.lastSegmentationNode
        nodes = logic.probabilityNodes(logic.lastSegmentationNode)
        assert {name: n.GetName() for name, n in nodes.items()} == {
            "liver": "tiny64_ct liver probability", "tumor": "tiny64_ct tumor probability"}
        for name, probability in nodes.items():
            voxels = slicer.util.arrayFromVolume(probability).transpose(2, 1, 0)
            np.testing.assert_array_equal(voxels, expected.channel(name))
            matrix, reference = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
            probability.GetIJKToRASMatrix(matrix)
            node.GetIJKToRASMatrix(reference)
            assert all(matrix.GetElement(r, c) == reference.GetElement(r, c)
                       for r in range(4) for c in range(4))
    scalar_volumes = scene.GetNodesByClass("vtkMRMLScalarVolumeNode")
    assert scalar_volumes.GetNumberOfItems() == 3, "the CT and two probability nodes, no duplicates"
