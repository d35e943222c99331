"""`LiverTumorSegLib` keeps its promise: the engine runs without Qt or Slicer; only the `mrml`
subpackage works on Slicer scenes. Data flows one way: reading volumes never reaches into DICOM, and
the rooms built on the engine (`mrml`, `panel`, `web`) are imported by nothing below them; `cli.py`
reaches the web app only inside its `web` command."""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import synthetic_ct

PACKAGE = Path(__file__).resolve().parents[1] / "LiverTumorSegLib"
SLICER_SIDE = ("slicer", "qt", "ctk", "vtk", "PyTorchUtils")


def _module_level_imports(path: Path) -> set[str]:
    """Top-level package names imported when the module is imported (not inside functions)."""
    names: set[str] = set()

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if isinstance(child, ast.Import):
                names.update(alias.name.split(".")[0] for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names.add(child.module.split(".")[0])
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return names


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (functions included), as absolute dotted names;
    `from X import Y` counts both X and X.Y (Y may be a submodule)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    if path.name == "__init__.py":
        package = ".".join(path.relative_to(PACKAGE.parent).parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _engine_files(under: str = "") -> list[Path]:
    return sorted((PACKAGE / under).rglob("*.py"))


def test_reading_a_volume_never_reaches_into_dicom():
    offenders = {str(p.relative_to(PACKAGE)): sorted(n for n in _imported_modules(p)
                                                     if n.startswith("LiverTumorSegLib.dicom"))
                 for p in _engine_files("volume")}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_rooms_above_the_engine_are_imported_by_nothing_below_them():
    """`mrml` and `panel` stand on the engine; `web` stands on both (the MRML logic and the
    background run). Only `cli.py`'s `web` command reaches the web app (next test)."""
    below = {"mrml": (), "panel": (), "web": ("mrml", "panel")}
    offenders = {}
    for path in _engine_files():
        room = path.relative_to(PACKAGE).parts[0]
        allowed = {room, *below.get(room, ())} | ({"web"} if path == PACKAGE / "cli.py" else set())
        reached = sorted(n for n in _imported_modules(path) for other in below
                         if other not in allowed and n.startswith(f"LiverTumorSegLib.{other}"))
        if reached:
            offenders[str(path.relative_to(PACKAGE))] = reached
    assert offenders == {}


def test_the_engine_top_level_holds_no_slicer_host_code():
    """Modules that talk to Slicer (even inside functions) live in `mrml/` or `panel/`."""
    offenders = {p.name: sorted(n for n in _imported_modules(p) if n.split(".")[0] in SLICER_SIDE)
                 for p in PACKAGE.glob("*.py")}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_no_engine_module_imports_qt_or_slicer_when_imported():
    offenders = {str(p.relative_to(PACKAGE)): sorted(_module_level_imports(p) & set(SLICER_SIDE))
                 for p in PACKAGE.rglob("*.py")}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_engine_segments_with_qt_and_slicer_absent(random_card, tmp_path):
    """Every module outside `mrml/` and `web/` (which run on Slicer's classes: slicer-core and
    trame-slicer) imports, and the command line segments, in an interpreter where importing slicer,
    qt, ctk or vtk fails."""
    import nibabel as nib

    ct = tmp_path / "body_ct.nii.gz"
    nib.save(nib.Nifti1Image(synthetic_ct(), np.diag([1.5, 1.5, 3.0, 1.0])), str(ct))
    engine = sorted(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(
        ".__init__") for p in PACKAGE.rglob("*.py") if not {"mrml", "web"} & set(p.parts))
    code = "\n".join([
        "import importlib, sys",
        f"for name in {SLICER_SIDE!r}: sys.modules[name] = None  # import fails",
        f"for module in {engine!r}: importlib.import_module(module)",
        "from LiverTumorSegLib.cli import main",
        f"sys.exit(main(['segment', {str(ct)!r}, '--model', {str(random_card.path)!r}, '-o', "
        f"{str(tmp_path / 'out')!r}, '--device', 'cpu']))"])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "body_ct_seg.nii.gz").is_file()


def test_the_command_line_imports_the_web_app_only_in_its_handler():
    assert not {n for n in _module_level_imports(PACKAGE / "cli.py")} & {"trame", "trame_slicer"}
    tree = ast.parse((PACKAGE / "cli.py").read_text(encoding="utf-8"))
    reaching = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
                and any(isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("web")
                        for inner in ast.walk(node))}
    assert reaching == {"command_web"}
