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

    modules = ("mrml.logic", "panel.background_run", "panel.installer", "dependencies", "errors",
               "resources", "model.card")
    code = ("import sys; " + "; ".join(f"import LiverTumorSegLib.{m}" for m in modules) +
            "; print(sorted(m for m in ('torch', 'nibabel', 'scipy') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_requirement_is_a_project_dependency():
    """The Slicer installer and pip install the same packages (pyproject's dependencies), but
    numpy, which every Slicer ships."""
    from pathlib import Path

    import tomllib
    from packaging.requirements import Requirement

    from LiverTumorSegLib.dependencies import REQUIREMENTS

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    declared = {Requirement(r).name.lower() for r in project["project"]["dependencies"]}
    assert {Requirement(r).name.lower() for r in REQUIREMENTS.values()} == declared - {"numpy"}


def _installed(versions):
    return lambda name: versions.get(name)


def test_slicers_older_pydicom_is_kept_and_dicom_packages_left_out(monkeypatch):
    from LiverTumorSegLib import dependencies

    monkeypatch.setattr(dependencies, "installed_version",
                        _installed({"pydicom": "2.4.4", "highdicom": None}))
    monkeypatch.setattr(dependencies, "missing_requirements",
                        lambda imports=None: [dependencies.REQUIREMENTS[n]
                                              for n in (imports or dependencies.REQUIREMENTS)
                                              if n in ("highdicom", "tqdm")])
    to_install, conflict = dependencies.requirements_to_install()
    assert to_install == ["tqdm"], "highdicom would need another pydicom: left out, tqdm still installed"
    assert "pydicom 2.4.4 is installed" in conflict and "pydicom>=3.0.1" in conflict
    assert "never replaces" in conflict


def test_an_installed_highdicom_is_checked_against_the_installed_pydicom(monkeypatch):
    from LiverTumorSegLib import dependencies

    monkeypatch.setattr(dependencies, "installed_version",
                        _installed({"pydicom": "3.0.2", "highdicom": "9.9"}))
    monkeypatch.setattr(dependencies.importlib.metadata, "requires",
                        lambda name: ["numpy>=1.19", "pydicom>=4.0",
                                      "pylibjpeg-libjpeg>=2.1; extra == 'libjpeg'"])
    assert "highdicom 9.9 needs pydicom>=4.0" in dependencies.pydicom_conflict()
    monkeypatch.setattr(dependencies.importlib.metadata, "requires", lambda name: ["pydicom>=3.0.1"])
    assert dependencies.pydicom_conflict() is None


def test_without_pydicom_the_dicom_packages_are_installed(monkeypatch):
    from LiverTumorSegLib import dependencies

    monkeypatch.setattr(dependencies, "installed_version", _installed({}))
    assert dependencies.pydicom_conflict() is None
    assert "pydicom==" not in dependencies.protective_constraints()


def test_this_environment_has_no_pydicom_conflict_and_pins_pydicom():
    from LiverTumorSegLib.dependencies import pydicom_conflict

    assert pydicom_conflict() is None
    assert f"pydicom=={importlib.metadata.version('pydicom')}" in protective_constraints().splitlines()
