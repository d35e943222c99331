"""Install the engine's missing Python packages inside Slicer, the way Slicer users need it: ask first,
install on the main thread, torch through the PyTorch extension (which picks a build for the GPU and
driver), everything else by pip under constraints that keep Slicer's own packages as they are.

`ensure_dependencies` holds the steps and talks to Slicer only through two small interfaces,
`InstallPrompt` (the user) and `PackageTools` (the installers), so tests run it headless with fakes.
`SlicerInstallPrompt` and `SlicerPackageTools` are the real ones; they import Slicer's modules only when
called, inside Slicer.
"""

from __future__ import annotations

import importlib
import logging
import tempfile
import threading
from pathlib import Path
from typing import Callable, Optional, Protocol

from ..dependencies import (
    ENGINE_IMPORTS,
    REQUIREMENTS,
    SPEED_IMPORTS,
    TORCH_IMPORTS,
    missing_requirements,
    protective_constraints,
    requirements_to_install,
)

TITLE = "Liver Tumor Segmentation"
MissingCheck = Callable[[Optional[tuple[str, ...]]], list[str]]
InstallPlan = Callable[[], tuple[list[str], Optional[str]]]


OPTIONAL_REQUIREMENTS = tuple(REQUIREMENTS[name] for name in SPEED_IMPORTS)


class InstallPrompt(Protocol):
    """How the installer talks to the user."""

    def confirm(self, message: str) -> bool: ...

    def show_error(self, message: str) -> None: ...


class PackageTools(Protocol):
    """How the installer installs packages."""

    def install_torch(self) -> None: ...

    def pip_install(self, requirements: list[str], constraints_file: Path) -> None: ...


def ensure_dependencies(tools: PackageTools, prompt: InstallPrompt, ask: bool = True,
                        find_missing: MissingCheck = missing_requirements,
                        plan: InstallPlan = requirements_to_install) -> bool:
    """Install the missing packages after asking; True when the engine's packages are all there.

    `plan` says what to install (DICOM packages are left out, with a logged reason, when they would
    need another pydicom than Slicer's). Torch comes first (through `tools.install_torch`), then the
    rest by pip with a constraints file that pins every protected package already installed, torch
    included. Failures are shown to the user and give False. Must run on the main thread (Slicer's
    installers need it).
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("Python packages must be installed on the main thread.")
    missing, left_out = plan()
    if left_out:
        logging.getLogger(__name__).warning(left_out)
    if not missing:
        return True
    if ask and not prompt.confirm(
            f"{TITLE} needs these Python packages, which are not installed: {', '.join(missing)}. "
            "Install them now? (This can take several minutes; packages that Slicer ships are not "
            "changed.)"):
        return False
    try:
        if find_missing(TORCH_IMPORTS):
            tools.install_torch()
            importlib.invalidate_caches()
        remaining = [r for r in missing if r in find_missing(None)]
        optional = [r for r in remaining if r in OPTIONAL_REQUIREMENTS]
        with tempfile.TemporaryDirectory() as scratch:
            constraints = Path(scratch) / "LiverTumorSeg-constraints.txt"
            constraints.write_text(protective_constraints(), encoding="utf-8")
            if len(remaining) > len(optional):
                tools.pip_install([r for r in remaining if r not in optional], constraints)
            _install_optional(tools, optional, constraints)
        importlib.invalidate_caches()
    except Exception as exc:  # noqa: BLE001 - tell the user what failed
        prompt.show_error(f"Installing Python packages failed: {exc}")
        return False
    still = find_missing(ENGINE_IMPORTS)
    if still:
        prompt.show_error("These packages are still missing: " + ", ".join(still))
    return not still


def _install_optional(tools: PackageTools, requirements: list[str], constraints: Path) -> None:
    """Packages the engine runs without (OpenVINO: faster on the CPU): a failed install is logged,
    and the engine says at run time which runtime it uses instead."""
    if not requirements:
        return
    try:
        tools.pip_install(requirements, constraints)
    except Exception as exc:  # noqa: BLE001 - optional: never fails the install
        logging.getLogger(__name__).warning(
            "Could not install %s (%s); the network runs with PyTorch on the CPU instead (slower).",
            ", ".join(requirements), exc)


class SlicerInstallPrompt:
    """Slicer's message boxes."""

    def confirm(self, message: str) -> bool:
        import slicer

        return bool(slicer.util.confirmOkCancelDisplay(message, windowTitle="Install packages"))

    def show_error(self, message: str) -> None:
        import slicer

        slicer.util.errorDisplay(message, windowTitle=TITLE)


class SlicerPackageTools:
    """Slicer's installers: the PyTorch extension's `PyTorchUtils` for torch; `slicer.pydeps.pip_ensure`
    (Slicer 5.11 and newer) or else `slicer.util.pip_install` for the rest."""

    def install_torch(self) -> None:
        try:
            import PyTorchUtils
        except ImportError as exc:
            raise RuntimeError("PyTorch is not installed. Install the 'PyTorch' extension from the "
                               "Extensions Manager, restart Slicer, and try again.") from exc
        if PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False) is None:
            raise RuntimeError("The PyTorch extension could not install torch for this computer.")

    def pip_install(self, requirements: list[str], constraints_file: Path) -> None:
        try:
            import slicer.pydeps as pydeps
        except ImportError:
            pydeps = None
        if pydeps is not None:
            from packaging.requirements import Requirement

            pydeps.pip_ensure([Requirement(r) for r in requirements], constraints=str(constraints_file),
                              requester="LiverTumorSeg")
        else:
            import slicer

            slicer.util.pip_install([*requirements, "-c", str(constraints_file)])
