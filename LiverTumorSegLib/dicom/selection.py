"""Which images of a series make its stack of slices, as scanners export them. Left out, each with a
warning that names the file: every localizer (scout), up to `MAX_STRAY_IMAGES` other images outside
the stack (the largest group of images sharing orientation, Rows/Columns and PixelSpacing), and
exact copies of a slice (the same SOPInstanceUID and the same pixels). More images outside the
stack, and two different files under one SOPInstanceUID, are refused with their names."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DicomSeriesError
from .discovery import is_localizer
from .geometry import ORIENTATION_TOLERANCE
from .pixels import stored_pixels

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    Member = tuple[Path, Dataset]

MAX_STRAY_IMAGES = 3
_NAMED_FILES = 3  # a refusal names this many files, then gives the count of the others


def _few(names: list[str]) -> str:
    """The first `_NAMED_FILES` names, and how many more there are."""
    shown = ", ".join(names[:_NAMED_FILES])
    return shown + (f" and {len(names) - _NAMED_FILES} more" if len(names) > _NAMED_FILES else "")


def drop_localizers(images: list[Member], folder: Path) -> tuple[list[Member], list[str]]:
    """The images that are not localizers, and a warning for each one left out."""
    kept = [(path, header) for path, header in images if not is_localizer(header)]
    notes = [f"Left out {path}: a localizer (scout) image, not a slice of the CT series."
             for path, header in images if is_localizer(header)]
    if not kept:
        names = _few([path.name for path, _ in images])
        raise DicomSeriesError(f"{folder} holds only localizer (scout) images ({names}); give the "
                               "folder of the CT slices.")
    return kept, notes


def _grid(header: Dataset) -> tuple[np.ndarray, tuple[int, int], tuple[float, ...]]:
    """ImageOrientationPatient, (Rows, Columns) and PixelSpacing of an image."""
    return (np.array([float(v) for v in header.ImageOrientationPatient]),
            (int(header.Rows), int(header.Columns)),
            tuple(float(v) for v in header.PixelSpacing))


def _differences(grid: tuple, reference: tuple) -> list[str]:
    """How an image's grid differs from the stack's, in words."""
    (orientation, size, spacing), (stack_orientation, stack_size, stack_spacing) = grid, reference
    found = []
    if np.abs(orientation - stack_orientation).max() > ORIENTATION_TOLERANCE:
        found.append("another orientation")
    if size != stack_size:
        found.append(f"Rows/Columns {size[0]}/{size[1]}, not {stack_size[0]}/{stack_size[1]}")
    if spacing != stack_spacing:
        found.append(f"PixelSpacing {'/'.join(f'{v:g}' for v in spacing)} mm, not "
                     f"{'/'.join(f'{v:g}' for v in stack_spacing)} mm")
    return found


def largest_stack(images: list[Member], folder: Path) -> tuple[list[Member], list[str]]:
    """The largest group of images sharing orientation (within the tolerance), Rows/Columns and
    PixelSpacing, in the order given (the first of equal groups), and a warning for each image left
    out; more than `MAX_STRAY_IMAGES` outside it are refused."""
    grids = [_grid(header) for _, header in images]
    groups: list[list[int]] = []
    for index, grid in enumerate(grids):
        group = next((g for g in groups if not _differences(grid, grids[g[0]])), None)
        if group is None:
            groups.append([index])
        else:
            group.append(index)
    stack = max(groups, key=len)
    reference = grids[stack[0]]
    in_stack = set(stack)
    strays = [i for i in range(len(images)) if i not in in_stack]
    if len(strays) > MAX_STRAY_IMAGES:
        raise DicomSeriesError(
            f"{folder}: {len(strays)} images lie outside the stack of {len(stack)} slices (the "
            f"largest group sharing orientation, Rows/Columns and PixelSpacing): "
            f"{_few([images[i][0].name for i in strays])}; up to {MAX_STRAY_IMAGES} such images "
            "are left out, more mean the folder mixes series: give a folder holding one series of "
            "slices on one grid.")
    notes = [f"Left out {images[i][0]}: outside the stack of {len(stack)} slices "
             f"({', '.join(_differences(grids[i], reference))})." for i in strays]
    return [images[i] for i in stack], notes


def drop_copies(images: list[Member], folder: Path) -> tuple[list[Member], list[str]]:
    """One file per SOPInstanceUID (the first by name), and a warning for each exact copy left
    out; two files with one SOPInstanceUID and different pixels are refused, both named."""
    by_uid: dict[str, list[Member]] = defaultdict(list)
    for member in images:
        by_uid[str(member[1].SOPInstanceUID)].append(member)
    notes = []
    for uid, members in by_uid.items():
        if len(members) == 1:
            continue
        kept = members[0][0]
        pixels = stored_pixels(kept)
        for path, _ in members[1:]:
            if not np.array_equal(stored_pixels(path), pixels):
                raise DicomSeriesError(
                    f"{folder}: {kept.name} and {path.name} have the same SOPInstanceUID {uid} but "
                    "different pixels; remove the one that does not belong, or export the series "
                    "again.")
            notes.append(f"Left out {path}: an exact copy of {kept} (the same SOPInstanceUID and "
                         "pixels).")
    return [members[0] for members in by_uid.values()], notes
