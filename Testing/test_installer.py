"""Installing missing packages inside Slicer, run headless with a fake environment, fake installers and
fake Slicer modules."""

import sys
import threading
import types
from pathlib import Path

import pytest

from LiverTumorSegLib.dependencies import DICOM_IMPORTS, ENGINE_IMPORTS, REQUIREMENTS, TORCH_IMPORTS
from LiverTumorSegLib.panel.installer import (
    SlicerInstallPrompt,
    SlicerPackageTools,
    ensure_dependencies,
)


class FakeEnvironment:
    """Which packages are 'installed'; the fake tools install by removing names from `missing`.
    With `pydicom_conflict`, the DICOM packages are left out of the plan, as `dependencies` does
    beside a Slicer whose pydicom is too old."""

    def __init__(self, missing, pydicom_conflict=None):
        self.missing = set(missing)
        self.pydicom_conflict = pydicom_conflict

    def find_missing(self, imports=None):
        names = imports or tuple(REQUIREMENTS)
        return [REQUIREMENTS[name] for name in names if name in self.missing]

    def plan(self):
        imports = ENGINE_IMPORTS if self.pydicom_conflict else None
        return self.find_missing(imports), self.pydicom_conflict

    def ensure(self, tools, prompt, **options):
        return ensure_dependencies(tools, prompt, find_missing=self.find_missing, plan=self.plan,
                                   **options)


class FakeTools:
    def __init__(self, environment, pip_installs=True, fail=None):
        self.environment, self.pip_installs, self.fail = environment, pip_installs, fail
        self.calls = []

    def install_torch(self):
        self.calls.append(("torch",))
        if self.fail:
            raise RuntimeError(self.fail)
        self.environment.missing -= set(TORCH_IMPORTS)

    def pip_install(self, requirements, constraints_file):
        self.calls.append(("pip", list(requirements), Path(constraints_file).read_text()))
        if self.pip_installs:
            self.environment.missing -= {n for n, r in REQUIREMENTS.items() if r in requirements}


class FakePrompt:
    def __init__(self, answer=True):
        self.answer, self.questions, self.errors = answer, [], []

    def confirm(self, message):
        self.questions.append(message)
        return self.answer

    def show_error(self, message):
        self.errors.append(message)


def test_nothing_missing_asks_nothing_and_installs_nothing():
    environment = FakeEnvironment([])
    tools, prompt = FakeTools(environment), FakePrompt()
    assert environment.ensure(tools, prompt)
    assert tools.calls == [] and prompt.questions == []


def test_asks_first_and_a_no_installs_nothing():
    environment = FakeEnvironment(["scipy", "torch"])
    tools, prompt = FakeTools(environment), FakePrompt(answer=False)
    assert not environment.ensure(tools, prompt)
    assert tools.calls == []
    assert "torch" in prompt.questions[0] and REQUIREMENTS["scipy"] in prompt.questions[0]


def test_torch_first_then_the_rest_by_pip_under_constraints_that_pin_numpy():
    import importlib.metadata

    environment = FakeEnvironment(["torch", "torchvision", "scipy", "nibabel"])
    tools, prompt = FakeTools(environment), FakePrompt()
    assert environment.ensure(tools, prompt)
    assert [c[0] for c in tools.calls] == ["torch", "pip"]
    assert sorted(tools.calls[1][1]) == sorted([REQUIREMENTS["scipy"], REQUIREMENTS["nibabel"]]), \
        "torch is not installed by pip"
    assert f"numpy=={importlib.metadata.version('numpy')}" in tools.calls[1][2].splitlines()
    assert prompt.errors == []


def test_without_asking_when_told_so():
    environment = FakeEnvironment(["scipy"])
    tools, prompt = FakeTools(environment), FakePrompt(answer=False)
    assert environment.ensure(tools, prompt, ask=False)
    assert prompt.questions == [] and [c[0] for c in tools.calls] == ["pip"]


def test_a_failed_install_is_shown_and_stops():
    environment = FakeEnvironment(["torch", "scipy"])
    tools, prompt = FakeTools(environment, fail="no PyTorch extension"), FakePrompt()
    assert not environment.ensure(tools, prompt)
    assert [c[0] for c in tools.calls] == ["torch"]
    assert prompt.errors == ["Installing Python packages failed: no PyTorch extension"]


def test_packages_still_missing_after_pip_are_named():
    environment = FakeEnvironment(["scipy"])
    tools, prompt = FakeTools(environment, pip_installs=False), FakePrompt()
    assert not environment.ensure(tools, prompt)
    assert prompt.errors == [f"These packages are still missing: {REQUIREMENTS['scipy']}"]


def test_dicom_packages_that_need_another_pydicom_are_left_out_with_a_logged_reason(caplog):
    reason = "highdicom needs pydicom>=3 but pydicom 2.4 is installed"
    environment = FakeEnvironment(["scipy", *DICOM_IMPORTS], pydicom_conflict=reason)
    tools, prompt = FakeTools(environment), FakePrompt()
    with caplog.at_level("WARNING"):
        assert environment.ensure(tools, prompt), "segmenting needs no DICOM package"
    assert tools.calls[0][1] == [REQUIREMENTS["scipy"]]
    assert reason in caplog.text and prompt.errors == []


def test_refuses_to_run_off_the_main_thread():
    environment = FakeEnvironment(["scipy"])
    tools, raised = FakeTools(environment), []

    def install():
        try:
            environment.ensure(tools, FakePrompt())
        except RuntimeError as exc:
            raised.append(str(exc))

    worker = threading.Thread(target=install)
    worker.start()
    worker.join()
    assert raised and "main thread" in raised[0] and tools.calls == []


# ---- the real Slicer tools, against fake Slicer modules ---------------------------------------------
@pytest.fixture
def fake_slicer(monkeypatch):
    """A fake `slicer` package with `util` (records pip_install and message boxes)."""
    calls = []
    util = types.SimpleNamespace(
        pip_install=lambda args: calls.append(("pip_install", args)),
        confirmOkCancelDisplay=lambda message, windowTitle: calls.append(("confirm", message)) or True,
        errorDisplay=lambda message, windowTitle: calls.append(("error", message)))
    module = types.ModuleType("slicer")
    module.util = util
    monkeypatch.setitem(sys.modules, "slicer", module)
    monkeypatch.setitem(sys.modules, "slicer.pydeps", None)  # Slicer before 5.11: no pydeps
    return module, calls


def test_before_slicer_5_11_pip_install_gets_the_constraints_file(fake_slicer, tmp_path):
    _, calls = fake_slicer
    SlicerPackageTools().pip_install(["scipy>=1.10", "nibabel>=5.0"], tmp_path / "c.txt")
    assert calls == [("pip_install", ["scipy>=1.10", "nibabel>=5.0", "-c", str(tmp_path / "c.txt")])]


def test_slicer_5_11_and_newer_use_pydeps_pip_ensure(fake_slicer, monkeypatch, tmp_path):
    from packaging.requirements import Requirement

    module, calls = fake_slicer
    pydeps = types.ModuleType("slicer.pydeps")
    pydeps.pip_ensure = lambda requirements, constraints, requester: calls.append(
        ("pip_ensure", requirements, constraints, requester))
    module.pydeps = pydeps
    monkeypatch.setitem(sys.modules, "slicer.pydeps", pydeps)
    SlicerPackageTools().pip_install(["scipy>=1.10"], tmp_path / "c.txt")
    assert calls == [("pip_ensure", [Requirement("scipy>=1.10")], str(tmp_path / "c.txt"),
                      "LiverTumorSeg")]


@pytest.mark.parametrize("installed", [True, False])
def test_torch_comes_from_the_pytorch_extension(monkeypatch, installed):
    asked = []

    class Logic:
        def installTorch(self, askConfirmation):
            asked.append(askConfirmation)
            return object() if installed else None

    monkeypatch.setitem(sys.modules, "PyTorchUtils", types.SimpleNamespace(PyTorchUtilsLogic=Logic))
    if installed:
        SlicerPackageTools().install_torch()
    else:
        with pytest.raises(RuntimeError, match="could not install torch"):
            SlicerPackageTools().install_torch()
    assert asked == [False], "the user was asked once already, by ensure_dependencies"


def test_without_the_pytorch_extension_the_user_is_told_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "PyTorchUtils", None)
    with pytest.raises(RuntimeError, match="'PyTorch' extension"):
        SlicerPackageTools().install_torch()


def test_the_prompt_uses_slicer_message_boxes(fake_slicer):
    _, calls = fake_slicer
    prompt = SlicerInstallPrompt()
    assert prompt.confirm("install?") is True
    prompt.show_error("failed")
    assert calls == [("confirm", "install?"), ("error", "failed")]


def test_an_optional_speed_package_that_fails_to_install_does_not_fail_the_install(caplog):
    environment = FakeEnvironment(["scipy", "openvino"])

    class OpenVinoFails(FakeTools):
        def pip_install(self, requirements, constraints_file):
            if REQUIREMENTS["openvino"] in requirements:
                self.calls.append(("pip", list(requirements), ""))
                raise RuntimeError("no wheel for this platform")
            super().pip_install(requirements, constraints_file)

    tools, prompt = OpenVinoFails(environment), FakePrompt()
    assert environment.ensure(tools, prompt)
    assert [call[1] for call in tools.calls] == [[REQUIREMENTS["scipy"]], [REQUIREMENTS["openvino"]]]
    assert prompt.errors == [] and "PyTorch on the CPU instead" in caplog.text
