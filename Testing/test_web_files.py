"""The web app's files: cleaned upload names, streamed uploads under a size limit, safe `.zip`
unpacking, and `--data` listings that show nothing outside the folder (no browser needed)."""

import asyncio
import os
import zipfile

import pytest

from LiverTumorSegLib.web.files import (
    UploadBatch,
    UploadError,
    Workspace,
    data_entries,
    safe_name,
    unpack_zip,
)


@pytest.mark.parametrize("given, stored", [
    ("ct.nii.gz", "ct.nii.gz"), ("../../etc/passwd", "passwd"), ("/abs/path/x.nrrd", "x.nrrd"),
    ("..", "upload"), ("", "upload"), (".hidden", "hidden"), ("a\\b\\c.dcm", "c.dcm"),
    ("na me;rm -rf.nii", "na me_rm -rf.nii")])
def test_uploaded_names_never_choose_a_path(given, stored):
    assert safe_name(given) == stored


async def _chunks(*parts: bytes):
    for part in parts:
        yield part


def test_uploads_stream_to_disk_and_stop_at_the_limit(tmp_path):
    batch = UploadBatch(tmp_path, limit_bytes=10)
    path = asyncio.run(batch.receive("../a.nii.gz", _chunks(b"12345", b"678")))
    assert path == tmp_path / "a.nii.gz" and path.read_bytes() == b"12345678"
    again = asyncio.run(batch.receive("a.nii.gz", _chunks(b"1")))
    assert again.name == "a_2.nii.gz", "a second file of the same name never overwrites the first"
    with pytest.raises(UploadError, match="larger than the server's limit"):
        asyncio.run(batch.receive("b.nii.gz", _chunks(b"12", b"34")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nii.gz", "a_2.nii.gz"], \
        "the refused file is removed"


def test_zip_members_stay_inside_the_destination(tmp_path):
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("../../evil.dcm", b"x")
        bundle.writestr("/abs/slice1.dcm", b"y")
        bundle.writestr("study/series/slice2.dcm", b"z")
        bundle.writestr("__MACOSX/._slice2.dcm", b"junk")
    destination = tmp_path / "out"
    destination.mkdir()
    unpack_zip(archive, destination, limit_bytes=1000)
    found = sorted(str(p.relative_to(destination)) for p in destination.rglob("*") if p.is_file())
    assert found == ["abs/slice1.dcm", "evil.dcm", "study/series/slice2.dcm"]
    assert not archive.exists(), "the archive is removed once unpacked"


def test_zip_bombs_and_broken_archives_are_refused(tmp_path):
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("zeros.dcm", b"\0" * 5000)
    with pytest.raises(UploadError, match="unpacks to more"):
        unpack_zip(archive, tmp_path, limit_bytes=1000)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(UploadError, match="not a readable .zip"):
        unpack_zip(broken, tmp_path, limit_bytes=1000)


def test_data_listing_shows_nothing_outside_the_folder(tmp_path):
    root, outside = tmp_path / "data", tmp_path / "private"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "a_ct.nii.gz").write_bytes(b"")
    (root / "sub" / "b.nrrd").write_bytes(b"")
    (root / "notes.txt").write_text("not a volume")
    (outside / "secret_ct.nii.gz").write_bytes(b"")
    os.symlink(outside / "secret_ct.nii.gz", root / "link_ct.nii.gz")
    os.symlink(outside, root / "linked_folder")
    assert [e.label for e in data_entries(root)] == ["a_ct.nii.gz", "sub/b.nrrd"]


def test_the_workspace_is_private_and_removed(tmp_path):
    workspace = Workspace()
    folder = workspace.new_folder("upload")
    assert folder.parent == workspace.root and oct(workspace.root.stat().st_mode)[-3:] == "700"
    workspace.close()
    assert not workspace.root.exists()
