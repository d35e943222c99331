"""The Slicer module file: its .ui bindings and CMake lists (static), and its logic and its panel's run
cycle, imported headless on slicer-core's MRML with fakes for Slicer's Qt side (slicer_module_fakes).
"""

import ast
import dataclasses
import re
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from unittest.mock import MagicMock, PropertyMock

import numpy as np
import pytest

from LiverTumorSegLib import resources

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed (pip install slicer-core)")
from conftest import synthetic_ct  # noqa: E402  (after the importorskip)
from slicer_module_fakes import import_module_headless  # noqa: E402

from LiverTumorSegLib.inputs import read_volume  # noqa: E402
from LiverTumorSegLib.model import card as card_module  # noqa: E402
from LiverTumorSegLib.model.card import PostprocessingSpec  # noqa: E402
from LiverTumorSegLib.mrml.table import STATISTICS_TABLE_ROLE, table_rows  # noqa: E402
from LiverTumorSegLib.reporting.model_summary import model_card_summary  # noqa: E402
from LiverTumorSegLib.segments import OUTPUT_SEGMENTS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODULE = REPO / "LiverTumorSeg" / "LiverTumorSeg.py"


@pytest.fixture(scope="module")
def module_tree():
    return ast.parse(MODULE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def ui_root():
    return ElementTree.parse(resources.MODULE_UI).getroot()


def _classes(tree):
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def _parameter_fields(tree):
    node = _classes(tree)["LiverTumorSegParameterNode"]
    assert any(getattr(d, "id", None) == "parameterNodeWrapper" for d in node.decorator_list)
    return {item.target.id for item in node.body if isinstance(item, ast.AnnAssign)}


def test_every_widget_the_code_uses_exists_in_the_ui(ui_root):
    names = {w.get("name") for w in ui_root.iter("widget")}
    used = set(re.findall(r"self\.ui\.(\w+)", MODULE.read_text(encoding="utf-8")))
    assert used, "the widget code uses no widget?"
    assert used <= names, f"missing in the .ui: {used - names}"


def test_parameter_names_match_the_parameter_node(ui_root, module_tree):
    bound = {}
    for widget in ui_root.iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[prop.find("string").text] = widget.get("name")
    fields = _parameter_fields(module_tree)
    assert set(bound) == fields, f"unbound: {fields - set(bound)}, unknown: {set(bound) - fields}"


def test_device_choices_match_the_combo_box(ui_root, module_tree):
    combo = next(w for w in ui_root.iter("widget") if w.get("name") == "deviceComboBox")
    items = [i.find("property/string").text for i in combo.findall("item")]
    devices = next(node.value for node in module_tree.body if isinstance(node, ast.Assign)
                   and getattr(node.targets[0], "id", None) == "DEVICES")
    assert items == [key.value for key in devices.keys] == ["Auto", "GPU", "CPU"]


def _cmake_list(path: Path, variable: str) -> list[str]:
    text = path.read_text(encoding="utf-8")
    match = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S)
    assert match, f"{variable} not set in {path}"
    return match.group(1).split()


def test_cmake_lists_every_runtime_file_and_nothing_absent():
    scripts = _cmake_list(REPO / "CMakeLists.txt", "LIVERTUMORSEG_ENGINE_SCRIPTS")
    listed_resources = _cmake_list(REPO / "CMakeLists.txt", "LIVERTUMORSEG_RESOURCES")
    module_scripts = _cmake_list(REPO / "LiverTumorSeg" / "CMakeLists.txt", "MODULE_PYTHON_SCRIPTS")
    # The web app (LiverTumorSegLib/web) does not ship with the extension: it needs trame, and in
    # Slicer the module's own panel is the user interface (CMakeLists.txt says so too).
    runtime_scripts = sorted(str(p.relative_to(REPO)) for p in (REPO / "LiverTumorSegLib").rglob("*.py")
                             if "web" not in p.relative_to(REPO / "LiverTumorSegLib").parts)
    runtime_resources = sorted(str(p.relative_to(REPO)) for folder in ("UI", "Icons", "Model", "Sample")
                               for p in (REPO / "Resources" / folder).rglob("*") if p.is_file())
    assert sorted(scripts) == runtime_scripts
    assert sorted(listed_resources) == runtime_resources
    assert module_scripts == ["${MODULE_NAME}.py"]
    assert "add_subdirectory(LiverTumorSeg)" in (REPO / "CMakeLists.txt").read_text()


def test_extension_description_is_complete():
    text = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    for variable in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS",
                     "EXTENSION_DESCRIPTION", "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS",
                     "EXTENSION_DEPENDS"):
        assert re.search(rf'set\({variable} "[^"]+"\)', text), variable


# ---- the module imported headless -------------------------------------------------------------------
@pytest.fixture
def headless(monkeypatch):
    """(module, scene, messages): the module file imported on fakes of Slicer's Qt side."""
    return import_module_headless(monkeypatch)


def _ct_node(scene, array_ijk, name="CT"):
    import vtk

    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(array_ijk.transpose(2, 1, 0)))
    matrix = vtk.vtkMatrix4x4()
    for axis, spacing in enumerate((1.5, 1.5, 3.0)):
        matrix.SetElement(axis, axis, spacing)
    node.SetIJKToRASMatrix(matrix)
    return node


def test_module_description_carries_the_bundled_model_card(headless):
    module, _, _ = headless
    parent = MagicMock()
    module.LiverTumorSeg(parent)
    assert parent.title == "Liver Tumor Segmentation" and parent.categories == ["Segmentation"]
    for line in model_card_summary(card_module.resolve_model_card(None)):
        assert line in parent.helpText


def test_console_use_of_the_readme(headless, random_card, tmp_path):
    module, scene, _ = headless
    ct = _ct_node(scene, synthetic_ct())
    logic = module.LiverTumorSegLogic(random_card)
    stats = logic.process(ct, device="cpu")
    segmentation = logic.lastSegmentationNode
    assert segmentation.GetName() == "CT liver segmentation"
    assert scene.GetNodeByID(segmentation.GetID()) is segmentation, "added to slicer.mrmlScene"
    logic.exportSegmentation(segmentation, tmp_path / "CT.seg.nrrd")
    logic.exportLabelmap(segmentation, ct, tmp_path / "CT_labels.nii.gz")
    labels = np.asarray(read_volume(tmp_path / "CT_labels.nii.gz").array)
    voxel_ml = 1.5 * 1.5 * 3.0 / 1000
    assert np.count_nonzero(labels) * voxel_ml == pytest.approx(stats["liver_volume_ml"])
    assert (tmp_path / "CT.seg.nrrd").stat().st_size > 0


@pytest.fixture
def custom_card(random_card):
    """A card whose post-processing differs from `PostprocessingSpec()` in every field."""
    defaults = PostprocessingSpec()
    return dataclasses.replace(random_card, postprocessing=PostprocessingSpec(
        keep_largest_liver=not defaults.keep_largest_liver,
        fill_liver_holes=not defaults.fill_liver_holes,
        tumor_inside_liver_only=not defaults.tumor_inside_liver_only,
        min_lesion_volume_mm3=defaults.min_lesion_volume_mm3 + 150.0,
        closing_radius_mm=defaults.closing_radius_mm + 1.5))


def _panel_values(parameters):
    return (parameters.minimumLesionVolume, parameters.keepLargestLiver, parameters.closingRadius)


def test_a_new_panel_starts_from_the_loaded_card_and_keeps_later_edits(headless, custom_card):
    module, _, _ = headless
    logic = module.LiverTumorSegLogic(custom_card)
    spec = custom_card.postprocessing
    parameters = logic.getParameterNode()
    assert _panel_values(parameters) == (spec.min_lesion_volume_mm3, spec.keep_largest_liver,
                                         spec.closing_radius_mm)
    parameters.minimumLesionVolume = 7.0
    assert logic.getParameterNode().minimumLesionVolume == 7.0, "an edit survives re-entering"
    options = logic.postprocessingOptions(*_panel_values(logic.getParameterNode()))
    assert options == dataclasses.replace(spec, min_lesion_volume_mm3=7.0), \
        "the card's other steps are kept"


def test_without_an_installed_model_the_panel_keeps_its_defaults(headless, monkeypatch, tmp_path):
    module, _, _ = headless
    monkeypatch.setattr(card_module, "BUNDLED_MODEL_CARD", tmp_path / "absent" / "model_card.json")
    parameters = module.LiverTumorSegLogic().getParameterNode()
    defaults = PostprocessingSpec()
    assert _panel_values(parameters) == (defaults.min_lesion_volume_mm3, defaults.keep_largest_liver,
                                         defaults.closing_radius_mm)


def _panel(module, logic, inputNode):
    """The widget with a mocked .ui, its logic and parameter node, the input selected. Packages count
    as installed (the installer has its own tests), so an optional one missing here asks nothing."""
    widget = module.LiverTumorSegWidget()
    widget.ui = MagicMock(name="ui")
    logic.ensureDependencies = lambda: True
    widget.logic = logic
    widget._parameterNode = logic.getParameterNode()
    widget._parameterNode.inputVolume = inputNode
    return widget


def _poll_until_done(widget, timeout=120.0):
    deadline = time.monotonic() + timeout
    while widget._run is not None:
        assert time.monotonic() < deadline, "the run never ended"
        widget._poll()
        time.sleep(0.01)


def test_apply_runs_in_the_background_relays_progress_and_shows_the_result(headless, custom_card):
    module, scene, messages = headless
    logic = module.LiverTumorSegLogic(custom_card)
    computed = []
    compute = logic.compute
    logic.compute = lambda *args, **kwargs: computed.append(kwargs["postprocessing"]) or compute(
        *args, **kwargs)
    widget = _panel(module, logic, _ct_node(scene, synthetic_ct()))
    progress = PropertyMock()
    type(widget.ui.progressBar).value = progress
    widget.onApplyButton()
    assert widget.ui.applyButton.text == "Cancel"
    _poll_until_done(widget)

    assert messages.errors == []
    assert computed == [custom_card.postprocessing], "the panel's values, from the loaded card"
    values = [c.args[0] for c in progress.call_args_list]
    assert values[0] == 0 and values == sorted(values) and values[-1] == 100
    output = widget._parameterNode.outputSegmentation
    segmentation = output.GetSegmentation()
    assert [segmentation.GetNthSegment(i).GetName() for i in range(2)] == [
        s.name for s in OUTPUT_SEGMENTS]
    table = output.GetNodeReference(STATISTICS_TABLE_ROLE)
    widget.ui.resultsTableView.setMRMLTableNode.assert_called_once_with(table)
    liver_ml = table_rows(table)[0]["Volume (mL)"]
    assert widget.ui.statusLabel.text.startswith(f"Liver {liver_ml:.0f} mL")
    assert widget.ui.applyButton.text == "Apply"


def test_cancel_changes_nothing(headless, random_card):
    module, scene, messages = headless
    widget = _panel(module, module.LiverTumorSegLogic(random_card), _ct_node(scene, synthetic_ct()))
    widget.onApplyButton()
    widget.onApplyButton()  # the button reads Cancel now
    _poll_until_done(widget)
    assert widget.ui.statusLabel.text == "Cancelled; nothing was changed."
    assert scene.GetNodesByClass("vtkMRMLSegmentationNode").GetNumberOfItems() == 0
    assert widget._parameterNode.outputSegmentation is None and messages.errors == []


def test_an_engine_error_is_shown_and_changes_nothing(headless, random_card):
    module, scene, messages = headless
    mri = _ct_node(scene, (np.abs(synthetic_ct()) + 50).astype(np.int16), name="MRI")
    widget = _panel(module, module.LiverTumorSegLogic(random_card), mri)
    widget.onApplyButton()
    _poll_until_done(widget)
    assert widget.ui.statusLabel.text == "Failed."
    assert len(messages.errors) == 1 and "does not look like a CT" in messages.errors[0]
    assert scene.GetNodesByClass("vtkMRMLSegmentationNode").GetNumberOfItems() == 0
