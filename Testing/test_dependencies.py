"""Dependency detection used by the Slicer module before it offers to install anything."""

import importlib.metadata

from LiverTumorSegLib.dependencies import REQUIREMENTS, missing_requirements, protective_constraints


def test_nothing_missing_in_the_test_environment():
    assert missing_requirements() == []


def test_a_missing_package_is_named_by_its_pip_requirement(monkeypatch):
    monkeypatch.setitem(REQUIREMENTS, "surely_not_installed_pkg", "surely-not-installed-pkg>=1")
    assert missing_requirements(("surely_not_installed_pkg", "scipy")) == ["surely-not-installed-pkg>=1"]


def test_constraints_pin_installed_numpy_and_torch():
    lines = protective_constraints().splitlines()
    assert f"numpy=={importlib.metadata.version('numpy')}" in lines
    assert f"torch=={importlib.metadata.version('torch')}" in lines


def test_slicer_can_import_the_module_glue_without_torch():
    """Slicer imports the module at start-up, possibly before torch is installed: the engine pieces
    the module imports at top level must not pull in torch (or nibabel)."""
    import subprocess
    import sys

    code = ("import sys, LiverTumorSegLib.slicer_logic, LiverTumorSegLib.dependencies, "
            "LiverTumorSegLib.resources, LiverTumorSegLib.model.card; "
            "print(sorted(m for m in ('torch', 'nibabel', 'scipy') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
