"""`LiverTumorSegLib` keeps its promise: the engine runs without Qt or Slicer; only the `mrml`
subpackage works on Slicer scenes."""

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


def test_no_engine_module_imports_qt_or_slicer_when_imported():
    offenders = {str(p.relative_to(PACKAGE)): sorted(_module_level_imports(p) & set(SLICER_SIDE))
                 for p in PACKAGE.rglob("*.py")}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_engine_segments_with_qt_and_slicer_absent(random_card, tmp_path):
    """Every module outside `mrml/` imports, and the command line segments, in an interpreter where
    importing slicer, qt, ctk or vtk fails."""
    import nibabel as nib

    ct = tmp_path / "body_ct.nii.gz"
    nib.save(nib.Nifti1Image(synthetic_ct(), np.diag([1.5, 1.5, 3.0, 1.0])), str(ct))
    engine = sorted(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(
        ".__init__") for p in PACKAGE.rglob("*.py") if "mrml" not in p.parts)
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
