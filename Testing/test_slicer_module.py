"""Static checks of the Slicer module: the .ui file, its bindings, and the CMake file lists.

The module itself needs Slicer's Qt, which CI lacks; its logic is the headless one tested with
slicer-core in test_slicer_logic.py.
"""

import ast
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from LiverTumorSegLib import resources
from LiverTumorSegLib.mrml.logic import MrmlSegmentationLogic

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


def test_module_has_the_template_classes_and_description(module_tree):
    classes = _classes(module_tree)
    assert {"LiverTumorSeg", "LiverTumorSegWidget", "LiverTumorSegLogic",
            "LiverTumorSegTest", "LiverTumorSegParameterNode"} <= set(classes)
    source = MODULE.read_text(encoding="utf-8")
    assert 'self.parent.title = "Liver Tumor Segmentation"' in source
    assert 'self.parent.categories = ["Segmentation"]' in source


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


def test_console_logic_delegates_to_existing_engine_methods():
    source = MODULE.read_text(encoding="utf-8")
    for method in ("process", "volumeFromNode", "compute", "applyResult"):
        assert callable(getattr(MrmlSegmentationLogic, method))
        assert f"self.logic.{method}" in source or method == "process"


def _cmake_list(path: Path, variable: str) -> list[str]:
    text = path.read_text(encoding="utf-8")
    match = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S)
    assert match, f"{variable} not set in {path}"
    return match.group(1).split()


def test_cmake_lists_every_runtime_file_and_nothing_absent():
    scripts = _cmake_list(REPO / "CMakeLists.txt", "LIVERTUMORSEG_ENGINE_SCRIPTS")
    listed_resources = _cmake_list(REPO / "CMakeLists.txt", "LIVERTUMORSEG_RESOURCES")
    module_scripts = _cmake_list(REPO / "LiverTumorSeg" / "CMakeLists.txt", "MODULE_PYTHON_SCRIPTS")
    runtime_scripts = sorted(str(p.relative_to(REPO)) for p in (REPO / "LiverTumorSegLib").rglob("*.py"))
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
