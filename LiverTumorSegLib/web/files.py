"""The app's files: a private workspace removed at exit, uploads streamed into it under a size
limit, `.zip` archives unpacked into it, and the cases a `--data` folder offers.

No name that comes from a browser ever chooses a path: uploads are stored under a cleaned base name
in a folder the server picked, and `--data` cases are chosen by their index in the server's list.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputVolumeError, LiverTumorSegError
from ..volume.io import VOLUME_SUFFIXES

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]")
_CHUNK = 1 << 20


class UploadError(LiverTumorSegError):
    """An upload was refused (too large, no file, a damaged or unsafe archive)."""


def safe_name(name: str) -> str:
    """The base name of an uploaded file with anything but letters, digits, `._ -` replaced by
    `_`; leading dots are dropped, so the result is never empty, `..`, hidden or a path."""
    base = re.split(r"[\\/]", str(name))[-1]
    cleaned = _UNSAFE.sub("_", base).lstrip(". ").strip()
    return cleaned[:200] or "upload"


class Workspace:
    """A private temporary folder (mode 0700) for uploads and exports, removed by `close`."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="livertumorseg-web-"))
        os.chmod(self.root, 0o700)
        self._counter = 0

    def new_folder(self, kind: str) -> Path:
        """A new empty folder `kind-N` inside the workspace."""
        self._counter += 1
        folder = self.root / f"{kind}-{self._counter}"
        folder.mkdir()
        return folder

    def close(self) -> None:
        """Remove the workspace and everything in it."""
        shutil.rmtree(self.root, ignore_errors=True)


class UploadBatch:
    """The files of one upload, streamed to disk one by one, at most `limit_bytes` in all."""

    def __init__(self, folder: Path, limit_bytes: int):
        self.folder = folder
        self.limit_bytes = limit_bytes
        self.received = 0
        self.names: list[str] = []

    async def receive(self, name: str, chunks: AsyncIterator[bytes]) -> Path:
        """Write one file from its chunks; over the limit, remove what was written and refuse."""
        target = self.folder / safe_name(name)
        stem, suffix = target.name, ""
        for known in (*VOLUME_SUFFIXES, ".zip"):
            if stem.lower().endswith(known):
                stem, suffix = stem[: -len(known)], stem[-len(known):]
                break
        copy = 1
        while target.exists():  # two uploaded files with the same cleaned name
            copy += 1
            target = self.folder / f"{stem}_{copy}{suffix}"
        try:
            with open(target, "wb") as handle:
                async for chunk in chunks:
                    self.received += len(chunk)
                    if self.received > self.limit_bytes:
                        raise UploadError(
                            f"The upload is larger than the server's limit of "
                            f"{self.limit_bytes // (1 << 20)} MB; upload fewer or smaller files, or "
                            "ask for a larger --max-upload-mb.")
                    handle.write(chunk)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        self.names.append(target.name)
        return target


def unpack_zip(archive: Path, destination: Path, limit_bytes: int) -> None:
    """Extract `archive` into `destination`, keeping only member names that stay inside it and
    refusing archives that unpack to more than `limit_bytes`; the archive itself is removed."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = [m for m in bundle.infolist() if not m.is_dir()]
            if sum(m.file_size for m in members) > limit_bytes:
                raise UploadError(f"{archive.name} unpacks to more than the server's limit of "
                                  f"{limit_bytes // (1 << 20)} MB; upload a smaller archive.")
            for member in members:
                parts = [safe_name(p) for p in re.split(r"[\\/]", member.filename)
                         if p not in ("", ".", "..")]
                if not parts or parts[0].startswith("__MACOSX"):
                    continue
                target = destination.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(member) as source, open(target, "wb") as handle:
                    shutil.copyfileobj(source, handle, _CHUNK)
    except zipfile.BadZipFile as exc:
        raise UploadError(f"{archive.name} is not a readable .zip archive ({exc}); zip the DICOM "
                          "series again, or upload its files.") from exc
    finally:
        archive.unlink(missing_ok=True)


@dataclass(frozen=True)
class DataEntry:
    """A case a `--data` folder offers: its path and how the page lists it."""

    path: Path
    label: str


def data_entries(root: Path) -> list[DataEntry]:
    """Every NIfTI/NRRD file and DICOM series folder under `root` (symbolic links that lead
    outside `root` are left out), listed by their path relative to `root`."""
    from ..dicom.discovery import dicom_files

    root = root.resolve()
    entries: list[DataEntry] = []
    for folder, subfolders, files in os.walk(root):
        here = Path(folder)
        subfolders.sort()
        if not _inside(here, root):
            subfolders.clear()
            continue
        volumes = sorted(here / f for f in files if f.lower().endswith(VOLUME_SUFFIXES)
                         and _inside(here / f, root))
        entries += [DataEntry(p, str(p.relative_to(root))) for p in volumes]
        if dicom_files(here):
            entries.append(DataEntry(here, f"{here.relative_to(root)}/ (DICOM series)"
                                     if here != root else "./ (DICOM series)"))
    return entries


def _inside(path: Path, root: Path) -> bool:
    return path.resolve() == root or root in path.resolve().parents


def check_data_folder(path: str | Path) -> Path:
    """The `--data` folder, resolved, or an error naming what is wrong with it."""
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise InputVolumeError(f"--data {path} is not a folder; give the folder whose CT volumes "
                               "and DICOM series the app should offer.")
    return folder
