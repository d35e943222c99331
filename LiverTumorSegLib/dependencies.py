"""Which Python packages the engine needs, which are missing, and constraints that keep the packages
already installed (Slicer's own numpy, SimpleITK, VTK, pydicom, an installed torch) exactly as they
are."""

from __future__ import annotations

import importlib.metadata
import importlib.util

# import name -> pip requirement
REQUIREMENTS = {
    "torch": "torch",
    "torchvision": "torchvision",
    "segmentation_models_pytorch": "segmentation-models-pytorch>=0.3",
    "safetensors": "safetensors>=0.4",
    "nibabel": "nibabel>=5.0",
    "nrrd": "pynrrd>=1.0",
    "scipy": "scipy>=1.10",
    "tqdm": "tqdm",
    "matplotlib": "matplotlib>=3.7",
    "packaging": "packaging>=21",
    "pydicom": "pydicom>=3.0.1",
    "highdicom": "highdicom>=0.23",
    "gdcm": "python-gdcm>=3.0.10",
    "pylibjpeg": "pylibjpeg>=2.0",
    "openjpeg": "pylibjpeg-openjpeg>=2.0",
    "openvino": "openvino>=2024.0",
}
TORCH_IMPORTS = ("torch", "torchvision")
# Needed only for DICOM series input and DICOM SEG output (the command line), not to segment in Slicer.
DICOM_IMPORTS = ("pydicom", "highdicom", "gdcm", "pylibjpeg", "openjpeg")
# Optional for speed: OpenVINO runs the network faster on the CPU; without it PyTorch does (and the
# engine says so).
SPEED_IMPORTS = ("openvino",)
ENGINE_IMPORTS = tuple(name for name in REQUIREMENTS if name not in DICOM_IMPORTS + SPEED_IMPORTS)
PROTECTED_DISTRIBUTIONS = ("numpy", "SimpleITK", "vtk", "torch", "torchvision", "scipy", "requests",
                           "pydicom", "Pillow", "packaging", "setuptools", "pip")


def missing_requirements(imports: tuple[str, ...] | None = None) -> list[str]:
    """Pip requirements of the engine's packages that cannot be imported here."""
    names = imports or tuple(REQUIREMENTS)
    return [REQUIREMENTS[name] for name in names if importlib.util.find_spec(name) is None]


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution, None when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def pydicom_conflict() -> str | None:
    """Why DICOM support cannot be installed beside the installed pydicom (Slicer ships its own,
    which is never replaced): our pydicom requirement, and that of an installed highdicom, checked
    against the installed version. None when there is no conflict or no pydicom yet."""
    from packaging.requirements import Requirement

    version = installed_version("pydicom")
    if version is None:
        return None
    wanted = [("LiverTumorSeg", Requirement(REQUIREMENTS["pydicom"]))]
    highdicom = installed_version("highdicom")
    if highdicom is not None:
        wanted += [(f"highdicom {highdicom}", requirement) for requirement in
                   map(Requirement, importlib.metadata.requires("highdicom") or [])
                   if requirement.name == "pydicom" and requirement.marker is None]
    for owner, requirement in wanted:
        if not requirement.specifier.contains(version, prereleases=True):
            return (f"{owner} needs {requirement} but pydicom {version} is installed, and this "
                    "installer never replaces it: DICOM series input and DICOM SEG output are "
                    "unavailable here (segmenting is not affected).")
    return None


def requirements_to_install() -> tuple[list[str], str | None]:
    """The missing requirements to install, and why the DICOM ones were left out (None when they
    were not): they are left out when installing them would need another pydicom."""
    conflict = pydicom_conflict()
    imports = ENGINE_IMPORTS if conflict else tuple(REQUIREMENTS)
    return missing_requirements(imports), conflict


def protective_constraints() -> str:
    """A pip constraints file pinning every protected distribution that is installed, so that
    installing the engine's packages can never upgrade or replace them."""
    lines = [f"{name}=={version}" for name in PROTECTED_DISTRIBUTIONS
             if (version := installed_version(name)) is not None]
    return "\n".join(lines) + "\n"
