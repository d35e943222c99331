"""Files the web tests upload: a DICOM `.zip` holding two series."""

from __future__ import annotations

from pathlib import Path


def two_series_zip(folder: Path, slices: int) -> Path:
    """A `.zip` of two DICOM series of `slices` slices each (the first slices of the real test
    series, and copies of them under a second SeriesInstanceUID), written into `folder`."""
    import zipfile

    import pydicom
    import pytest
    from pydicom.uid import generate_uid

    from conftest import DATA_DIR

    series = DATA_DIR / "dicom" / "ircadb_07"
    if not (series / "image_0").is_file():
        pytest.skip(f"the DICOM test series is not available: {series} is absent")
    archive, second = folder / "two_series.zip", generate_uid()
    with zipfile.ZipFile(archive, "w") as bundle:
        for index in range(slices):
            bundle.write(series / f"image_{index}", f"export/image_{index}")
            dataset = pydicom.dcmread(series / f"image_{index}")
            dataset.SeriesInstanceUID, dataset.SOPInstanceUID = second, generate_uid()
            dataset.SeriesDescription = "second reconstruction"
            copy = folder / f"copy_{index}"
            dataset.save_as(copy)
            bundle.write(copy, f"export/copy_{index}")
    return archive

