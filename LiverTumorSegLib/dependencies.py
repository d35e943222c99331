"""Which Python packages the engine needs, which are missing, and constraints that keep the packages
already installed (Slicer's own numpy, SimpleITK, VTK, an installed torch) exactly as they are."""

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
}
TORCH_IMPORTS = ("torch", "torchvision")
PROTECTED_DISTRIBUTIONS = ("numpy", "SimpleITK", "vtk", "torch", "torchvision", "scipy", "requests",
                           "pydicom", "Pillow", "packaging", "setuptools", "pip")


def missing_requirements(imports: tuple[str, ...] | None = None) -> list[str]:
    """Pip requirements of the engine's packages that cannot be imported here."""
    names = imports or tuple(REQUIREMENTS)
    return [REQUIREMENTS[name] for name in names if importlib.util.find_spec(name) is None]


def protective_constraints() -> str:
    """A pip constraints file pinning every protected distribution that is installed, so that
    installing the engine's packages can never upgrade or replace them."""
    lines = []
    for name in PROTECTED_DISTRIBUTIONS:
        try:
            lines.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return "\n".join(lines) + "\n"
