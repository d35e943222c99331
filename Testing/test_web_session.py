"""The web app's state logic without a browser: a `CaseSession` on a slicer-core scene opens a case as
the command line reads it, segments it on a worker thread, leaves the scene alone on cancel, reads
edits back through the engine's statistics, and exports what `segment` writes."""

import copy
import csv
import json
import time

import numpy as np
import pydicom
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed (pip install slicer-core)")
from conftest import DATA_DIR, data_case  # noqa: E402
from web_uploads import two_series_zip

from LiverTumorSegLib.errors import InputVolumeError, LiverTumorSegError  # noqa: E402
from LiverTumorSegLib.inputs import read_input, read_volume  # noqa: E402
from LiverTumorSegLib.labels import label_components  # noqa: E402
from LiverTumorSegLib.mrml.logic import MrmlSegmentationLogic  # noqa: E402
from LiverTumorSegLib.mrml.table import STATISTICS_TABLE_ROLE  # noqa: E402
from LiverTumorSegLib.panel.background_run import Cancelled, Finished, Progress  # noqa: E402
from LiverTumorSegLib.pipeline import Segmenter  # noqa: E402
from LiverTumorSegLib.reporting.batch import LESION_COLUMNS, CaseOutcome, lesion_rows  # noqa: E402
from LiverTumorSegLib.statistics import statistics_of_labels  # noqa: E402
from LiverTumorSegLib.web.cases import choices_in  # noqa: E402
from LiverTumorSegLib.web.files import unpack_zip  # noqa: E402
from LiverTumorSegLib.web.session import EDITED_NOTE, CaseSession  # noqa: E402
from LiverTumorSegLib.workflow import segment_file  # noqa: E402

RUN_ONLY = ("seconds", "input")


@pytest.fixture
def session(random_card):
    case = CaseSession(MrmlSegmentationLogic(slicer.vtkMRMLScene(), random_card), device="cpu")
    yield case
    case.close()


def run_to_end(session, cancel_at_first_progress=False, timeout=300):
    session.start()
    events, started = [], time.monotonic()
    while session.run is not None and time.monotonic() - started < timeout:
        new = session.poll()
        events += new
        if cancel_at_first_progress and any(isinstance(e, Progress) for e in new):
            session.cancel()
        time.sleep(0.02)
    return events


def test_a_case_opens_as_the_command_line_reads_it(session):
    ct, _ = data_case("tiny64")
    node = session.open(read_input(ct), "data: tiny64_ct.nii.gz")
    volume = session.logic.volumeFromNode(node)
    expected = read_volume(ct)
    np.testing.assert_array_equal(volume.array, np.asarray(expected.array))
    np.testing.assert_allclose(volume.affine, expected.affine)
    assert (session.info.name, session.info.shape) == ("tiny64_ct", (64, 64, 33))
    assert session.info.spacing_mm == pytest.approx((0.664, 0.664, 5.0), abs=1e-3)


def test_segmenting_in_the_background_gives_the_command_line_result(session, random_card, tmp_path):
    ct, _ = data_case("tiny64")
    session.open(read_input(ct), "demo")
    events = run_to_end(session)
    assert any(isinstance(e, Progress) for e in events) and isinstance(events[-1], Finished)
    cli, outputs = segment_file(Segmenter(random_card, "cpu"), ct, tmp_path)
    np.testing.assert_array_equal(session.current_labels(), np.asarray(read_volume(
        outputs.segmentation).array))
    ours = {k: v for k, v in session.statistics.items() if k not in RUN_ONLY}
    assert ours == {k: v for k, v in cli.statistics.items() if k not in RUN_ONLY}
    assert session.statistics["input"] == "demo" and not session.edited


def test_cancel_changes_nothing(session):
    ct, _ = data_case("tiny64")
    session.open(read_input(ct), "demo")
    nodes_before = session.scene.GetNumberOfNodes()
    events = run_to_end(session, cancel_at_first_progress=True)
    assert isinstance(events[-1], Cancelled)
    assert session.segmentation_node is None and session.statistics is None
    assert session.scene.GetNumberOfNodes() == nodes_before
    assert session.scene.GetNodesByClass("vtkMRMLSegmentationNode").GetNumberOfItems() == 0


def test_an_edit_is_measured_by_the_engine_and_exported(session, liver_everywhere_card, tmp_path):
    """A liver-everywhere network on the demo gives no tumour; painting two lesions into the Tumor
    segment, then removing one, is measured by `statistics_of_labels` and carried by the exports."""
    ct, _ = data_case("tiny64")
    session.logic = MrmlSegmentationLogic(session.scene, liver_everywhere_card)
    session.open(read_input(ct), "demo")
    run_to_end(session)
    labels = session.current_labels()
    painted = labels.copy()
    painted[10:16, 10:16, 10:14] = 2
    painted[40:44, 40:44, 20:24] = 2
    assert session.statistics_for(labels) == (session.result.statistics, False), "unedited"
    edited = copy.copy(session.result)
    edited.labels, edited.statistics = painted, copy.deepcopy(session.result.statistics)
    session.logic.applyResult(edited, session.volume_node, session.segmentation_node)
    statistics, is_edited = session.statistics_for(session.current_labels())
    assert is_edited and statistics["tumor_count"] == 2 and statistics["edited"] is True
    assert statistics == {**statistics_of_labels(painted, session.case.volume),
                          **{k: statistics[k] for k in ("device", "seconds", "model", "warnings",
                                                        "input", "edited")}}
    assert statistics["warnings"] == [*session.result.statistics["warnings"], EDITED_NOTE]
    session.set_statistics(statistics, is_edited)
    files = session.export(tmp_path)
    np.testing.assert_array_equal(np.asarray(read_volume(files["labels"]).array), painted)
    written = json.loads(files["statistics"].read_text())
    assert written["tumor_count"] == 2 and written["edited"] is True
    with open(files["lesions"], newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == LESION_COLUMNS and len(rows) == 3


def test_exports_equal_the_command_line_outputs(session, random_card, tmp_path):
    ct, _ = data_case("tiny64")
    session.open(read_input(ct), "demo")
    run_to_end(session)
    files = session.export(tmp_path / "web")
    _, outputs = segment_file(Segmenter(random_card, "cpu"), ct, tmp_path / "cli")
    assert {p.name for p in files.values()} == {"tiny64_ct_seg.nii.gz", "tiny64_ct_stats.json",
                                                 "tiny64_ct.seg.nrrd", "tiny64_ct_lesions.csv"}
    web_labels, cli_labels = read_volume(files["labels"]), read_volume(outputs.segmentation)
    np.testing.assert_array_equal(np.asarray(web_labels.array), np.asarray(cli_labels.array))
    np.testing.assert_allclose(web_labels.affine, cli_labels.affine)
    web_stats = json.loads(files["statistics"].read_text())
    cli_stats = json.loads(outputs.statistics.read_text())
    assert {k: v for k, v in web_stats.items() if k not in RUN_ONLY} == \
        {k: v for k, v in cli_stats.items() if k not in RUN_ONLY}
    with open(files["lesions"], newline="") as handle:
        rows = list(csv.reader(handle))
    expected = lesion_rows([CaseOutcome("tiny64_ct", ct, cli_stats)])
    assert rows == [list(LESION_COLUMNS)] + [[str(v) for v in row] for row in expected]
    # The .seg.nrrd is the segmentation itself: read back, it gives the same label map.
    scene = slicer.vtkMRMLScene()
    reader = MrmlSegmentationLogic(scene, random_card)
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    storage = slicer.vtkMRMLSegmentationStorageNode()
    storage.SetFileName(str(files["segmentation"]))
    assert storage.ReadData(node)
    reference = reader.volumeNodeFromVolume(read_volume(ct), "CT")
    np.testing.assert_array_equal(reader.labelArray(node, reference), np.asarray(cli_labels.array))


def test_exports_write_a_fresh_stats_file_each_time(session, tmp_path):
    """Exporting twice never stacks run-time notes into the statistics (the DICOM frame note)."""
    ct, _ = data_case("tiny64")
    session.open(read_input(ct), "demo")
    run_to_end(session)
    first = json.loads(session.export(tmp_path / "a")["statistics"].read_text())
    second = json.loads(session.export(tmp_path / "b")["statistics"].read_text())
    assert first == second


def test_a_zip_of_two_series_lists_each_as_the_command_line_does(tmp_path):
    archive = two_series_zip(tmp_path, 8)
    destination = tmp_path / "upload"
    destination.mkdir()
    unpack_zip(archive, destination / "two_series", limit_bytes=1 << 30)
    choices = choices_in(destination / "two_series", "upload")
    assert len(choices) == 2 and all("(8 images)" in c.label for c in choices)
    with pytest.raises(InputVolumeError, match="holds 2 DICOM image series") as refused:
        read_input(destination / "two_series" / "export")
    for choice in choices:
        assert choice.label in str(refused.value), "listed as `segment` lists it"
    assert choices[1].read().volume.array.shape[2] == 8


def test_opening_during_a_run_is_refused(session):
    ct, _ = data_case("tiny64")
    session.open(read_input(ct), "demo")
    session.start()
    try:
        with pytest.raises(LiverTumorSegError, match="cancel it"):
            session.open(read_input(ct), "demo")
    finally:
        run_to_end(session)


def test_dicom_input_exports_a_dicom_seg(random_card, tmp_path):
    folder = DATA_DIR / "dicom" / "ircadb_07"
    if not (folder / "image_0").is_file():
        pytest.skip(f"the DICOM test series is not available: {folder} is absent")
    session = CaseSession(MrmlSegmentationLogic(slicer.vtkMRMLScene(), random_card), "cpu")
    session.open(read_input(folder), "data: dicom/ircadb_07/")
    run_to_end(session)
    files = session.export(tmp_path)
    seg = pydicom.dcmread(files["dicom_seg"])
    assert seg.Modality == "SEG" and files["dicom_seg"].name == "ircadb_07_seg.dcm"
    stats = json.loads(files["statistics"].read_text())
    assert stats["dicom"]["series_instance_uid"] == pydicom.dcmread(
        folder / "image_0").SeriesInstanceUID
    assert session.segmentation_node.GetNodeReference(STATISTICS_TABLE_ROLE) is not None
    session.close()


def test_statistics_of_labels_equal_the_pipeline_s_without_confidence(random_card):
    ct, label = data_case("tiny64")
    volume = read_volume(ct)
    result = Segmenter(random_card, "cpu").segment(volume)
    measured = statistics_of_labels(result.labels, volume)
    for key in ("liver_volume_ml", "liver_parenchyma_volume_ml", "tumor_volume_ml", "tumor_count",
                "tumor_burden_percent"):
        assert measured[key] == result.statistics[key]
    strip = [{k: v for k, v in lesion.items() if k != "mean_confidence"}
             for lesion in result.statistics["lesions"]]
    assert [{k: v for k, v in lesion.items() if k != "mean_confidence"}
            for lesion in measured["lesions"]] == strip
    assert measured["confidence"] is None
    truth = np.asarray(read_volume(label).array).astype(np.uint8)
    assert statistics_of_labels(truth, volume)["tumor_count"] == label_components(truth == 2)[1]


def test_an_out_of_memory_run_fails_with_one_message_and_changes_nothing(session, monkeypatch):
    from LiverTumorSegLib.cli import describe_error
    from LiverTumorSegLib.panel.background_run import Failed

    ct, _ = data_case("tiny64")
    session.open(read_input(ct), "demo")

    def out_of_memory(*_args, **_kwargs):
        raise MemoryError()

    monkeypatch.setattr(session.logic, "compute", out_of_memory)
    events = run_to_end(session)
    assert isinstance(events[-1], Failed) and session.segmentation_node is None
    message, _ = describe_error(events[-1].error)
    assert message.startswith("out of memory;")
