"""DICOM series in, DICOM SEG out, on the real test series `../shared/data/dicom/ircadb_07` and on
series derived from it in tmp (a slab of its slices, changed the way real exports go wrong)."""

from __future__ import annotations

import copy
import csv
import json
import random
import shutil

import numpy as np
import pydicom
import pytest
from conftest import DATA_DIR, data_case, make_random_model
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless, generate_uid
from test_cli import run_cli

from LiverTumorSegLib.errors import DicomSeriesError, LiverTumorSegError, OutputError
from LiverTumorSegLib.inputs import case_name, expand_inputs, read_volume
from LiverTumorSegLib.segments import LIVER_SEGMENT, TUMOR_SEGMENT

SERIES = DATA_DIR / "dicom" / "ircadb_07"
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
ENHANCED_CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"


def real_series():
    if not (SERIES / "image_0").is_file():
        pytest.skip(f"the DICOM test series is not available: {SERIES} is absent")
    return SERIES


@pytest.fixture(scope="module")
def slab() -> list:
    """16 neighbouring slices from the middle of the test series (full datasets, in position
    order along the patient's z axis, which is this series' slice normal)."""
    headers = {path: pydicom.dcmread(path, stop_before_pixels=True) for path in real_series().iterdir()}
    ordered = sorted(headers, key=lambda p: float(headers[p].ImagePositionPatient[2]))
    return [pydicom.dcmread(path) for path in ordered[60:76]]


def write_series(folder, datasets, names=None):
    """Save `datasets` into `folder` as extension-less files; return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, dataset in enumerate(datasets):
        dataset.save_as(folder / (names[index] if names else f"slice_{index:03d}"),
                        enforce_file_format=True)
    return folder


def derived(slab, change=None):
    """Deep copies of the slab, with `change(index, dataset)` applied to each."""
    copies = [copy.deepcopy(ds) for ds in slab]
    for index, dataset in enumerate(copies):
        if change:
            change(index, dataset)
    return copies


def shrunk(slab, factor=4):
    """The slab at 1/`factor` of its in-plane resolution (same field of view): a fast input."""
    def shrink(_, ds):
        ds.PixelData = np.ascontiguousarray(ds.pixel_array[::factor, ::factor]).tobytes()
        ds.Rows, ds.Columns = ds.Rows // factor, ds.Columns // factor
        ds.PixelSpacing = [float(v) * factor for v in ds.PixelSpacing]
    return derived(slab, shrink)


def as_localizer(base, rows=None, orientation=None):
    """A localizer (scout) made from a real slice: ImageType LOCALIZER, its own SOPInstanceUID, and
    the size (keeping every other row or column) or the orientation of a scout."""
    ds = copy.deepcopy(base)
    ds.SOPInstanceUID, ds.ImageType = generate_uid(), ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    if rows:
        ds.PixelData = np.ascontiguousarray(ds.pixel_array[:: ds.Rows // rows]).tobytes()
        ds.Rows = rows
    if orientation:
        ds.ImageOrientationPatient = orientation
    return ds


def non_image(base, sop_class, modality, series_uid=None, pixels=False):
    """An object that is not an image, of the patient and study of a real slice: a bare header of
    `sop_class` or, with `pixels`, the slice itself relabelled (as a DICOM SEG holds pixels)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    if pixels:
        ds = copy.deepcopy(base)
    else:
        ds = Dataset()
        for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate"):
            setattr(ds, keyword, getattr(base, keyword))
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = sop_class, generate_uid(), modality
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = \
        ds.SOPClassUID, ds.SOPInstanceUID
    return ds


def read(folder):
    """The series of `folder` (volume, warnings and skipped objects)."""
    from LiverTumorSegLib.dicom.series import read_series

    return read_series(folder)


# ---- reading ----------------------------------------------------------------------------------

def test_the_series_reads_as_its_nifti_conversion_voxel_for_voxel():
    ct_path, _ = data_case("ircadb_07")
    nifti = read_volume(ct_path)
    dicom = read_volume(real_series())
    assert dicom.array.dtype == nifti.array.dtype
    np.testing.assert_array_equal(dicom.array, np.asarray(nifti.array))
    np.testing.assert_allclose(dicom.affine, nifti.affine, atol=1e-5)


def test_order_comes_from_positions_not_file_names_or_instance_numbers(tmp_path):
    source = real_series()
    files = sorted(source.iterdir())
    numbers = list(range(len(files)))
    random.Random(7).shuffle(numbers)
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    for path, number in zip(files, numbers):
        dataset = pydicom.dcmread(path)
        dataset.InstanceNumber = number
        dataset.save_as(shuffled / f"{generate_uid()[-12:]}", enforce_file_format=True)
    original, mixed = read_volume(source), read_volume(shuffled)
    np.testing.assert_array_equal(mixed.array, original.array)
    np.testing.assert_array_equal(mixed.affine, original.affine)


def test_rescale_slope_and_intercept_are_applied(slab, tmp_path):
    plain = read_volume(write_series(tmp_path / "plain", slab))

    def offset(_, ds):  # stored = HU + 4096 (unsigned), intercept -4096
        ds.PixelData = (ds.pixel_array.astype(np.int32) + 4096).astype(np.uint16).tobytes()
        ds.PixelRepresentation, ds.RescaleIntercept = 0, -4096

    def halved(_, ds):  # stored = 2 HU, slope 0.5
        ds.PixelData = (ds.pixel_array.astype(np.int16) * 2).tobytes()
        ds.RescaleSlope = 0.5

    for name, change in (("offset", offset), ("halved", halved)):
        volume = read_volume(write_series(tmp_path / name, derived(slab, change)))
        np.testing.assert_array_equal(volume.array, plain.array, err_msg=name)


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless],
                         ids=lambda uid: uid.name.split()[0])
def test_compressed_series_read_as_uncompressed(slab, tmp_path, syntax):
    plain = read_volume(write_series(tmp_path / "plain", slab))
    compressed = derived(slab[:4], lambda _, ds: ds.compress(syntax))
    volume = read_volume(write_series(tmp_path / "compressed", compressed))
    np.testing.assert_array_equal(volume.array, plain.array[:, :, :4])


def test_an_undecodable_transfer_syntax_is_named(slab, tmp_path, monkeypatch):
    from LiverTumorSegLib.dicom import series as series_module

    folder = write_series(tmp_path / "hevc", slab)
    hevc = "1.2.840.10008.1.2.4.107"
    real_read = pydicom.dcmread

    def as_hevc(*args, **kwargs):  # the headers say HEVC, as a video-compressed export would
        dataset = real_read(*args, **kwargs)
        dataset.file_meta.TransferSyntaxUID = hevc
        return dataset

    monkeypatch.setattr(pydicom, "dcmread", as_hevc)
    with pytest.raises(DicomSeriesError, match=r"HEVC/H.265 .*\(1\.2\.840\.10008\.1\.2\.4\.107\) "
                                               r"cannot be read by any pydicom plugin"):
        read_volume(folder)

    class NotInstalled:
        is_available = False

    monkeypatch.setattr(pydicom, "dcmread", real_read)
    monkeypatch.setattr("pydicom.pixels.get_decoder", lambda uid: NotInstalled())
    with pytest.raises(DicomSeriesError, match=r"Explicit VR Little Endian .* needs a decoder that "
                                               r"is not installed: pip install python-gdcm"):
        series_module.read_series(folder)


# ---- refusals ---------------------------------------------------------------------------------

def test_the_unchanged_slab_is_accepted(slab, tmp_path):
    """The control for every refusal below: the slab as it is reads fine."""
    assert read_volume(write_series(tmp_path / "slab", slab)).array.shape == (512, 512, 16)


def _tilt(index, ds):
    shift = index * 1.6 * np.tan(np.radians(10))  # 10 degrees of gantry tilt
    ds.ImagePositionPatient = [0.0, shift, float(ds.ImagePositionPatient[2])]


def _rotate_one(index, ds):
    if index == 5:
        angle = np.radians(5)
        ds.ImageOrientationPatient = [1, 0, 0, 0, np.cos(angle), np.sin(angle)]


def _shift_one(millimetres):
    def change(index, ds):
        if index == 8:
            ds.ImagePositionPatient = [0.0, 0.0, float(ds.ImagePositionPatient[2]) + millimetres]
    return change


@pytest.mark.parametrize("change, message", [
    (lambda i, ds: setattr(ds, "Modality", "MR"), "modality MR, not CT"),
    (_tilt, "gantry tilt of about 10.0 degrees"),
    (_shift_one(0.5), r"uneven slice spacing: the steps between neighbouring slices are 1\.10 mm "
                      r"\(1x\), 1\.60 mm \(13x\), 2\.10 mm \(1x\)"),
    (lambda i, ds: setattr(ds, "SOPClassUID", ENHANCED_CT_STORAGE) if i == 0 else None,
     r"Enhanced CT \(multi-frame\) DICOM is not supported"),
    (lambda i, ds: setattr(ds, "NumberOfFrames", 2) if i == 3 else None,
     "multi-frame DICOM is not supported"),
], ids=["not CT", "tilt", "uneven", "enhanced CT", "multi-frame"])
def test_series_that_cannot_be_segmented_are_refused(slab, tmp_path, change, message):
    folder = write_series(tmp_path / "series", derived(slab, change))
    with pytest.raises(DicomSeriesError, match=message) as refused:
        read_volume(folder)
    assert "\n" not in str(refused.value) and str(folder) in str(refused.value)


def test_spacing_jitter_within_the_stated_tolerance_is_accepted(slab, tmp_path):
    """0.1 mm + 5% of 1.6 mm = 0.18 mm: a slice 0.15 mm off is accepted, 0.25 mm is not."""
    read_volume(write_series(tmp_path / "ok", derived(slab, _shift_one(0.15))))
    with pytest.raises(DicomSeriesError, match="uneven slice spacing"):
        read_volume(write_series(tmp_path / "off", derived(slab, _shift_one(0.25))))


def test_uneven_spacing_shows_the_steps_that_occur_not_their_median(slab, tmp_path):
    """Steps alternating 1.60 and 2.40 mm (median 2.00 mm, a step that never occurs)."""
    z0 = float(slab[0].ImagePositionPatient[2])
    heights = z0 + np.concatenate([[0.0], np.cumsum([1.6, 2.4] * 7 + [1.6])])

    def alternate(index, ds):
        ds.ImagePositionPatient = [0.0, 0.0, float(heights[index])]

    with pytest.raises(DicomSeriesError) as refused:
        read_volume(write_series(tmp_path / "uneven", derived(slab, alternate)))
    message = str(refused.value)
    assert "steps between neighbouring slices are 1.60 mm (8x), 2.40 mm (7x)" in message
    assert "2.00" not in message


def test_a_missing_slice_is_refused_naming_its_neighbours(slab, tmp_path):
    folder = write_series(tmp_path / "gap", slab[:7] + slab[8:])
    with pytest.raises(DicomSeriesError, match=r"1 slice\(s\) missing, the first between "
                                               r"slice_006 \(.* mm\) and slice_007 \("):
        read_volume(folder)


# ---- what scanners and PACS put into series folders --------------------------------------------

@pytest.mark.parametrize("scout", [
    lambda base: as_localizer(base, rows=256),
    lambda base: as_localizer(base, orientation=[0, 1, 0, 0, 0, -1]),
    lambda base: non_image(as_localizer(base, rows=256), base.SOPClassUID, "CT", pixels=True),
], ids=["256x512 scout", "sagittal 512x512 scout", "scout series of its own"])
def test_a_localizer_is_left_out_with_a_warning(slab, tmp_path, scout):
    folder = write_series(tmp_path / "series", slab)
    scout(slab[0]).save_as(folder / "scout", enforce_file_format=True)
    series = read(folder)
    np.testing.assert_array_equal(series.volume.array, read_volume(write_series(
        tmp_path / "plain", slab)).array)
    assert series.warnings == [f"Left out {folder / 'scout'}: a localizer (scout) image, not a "
                               "slice of the CT series."]
    assert series.skipped == []


def test_a_folder_of_localizers_only_is_refused(slab, tmp_path):
    folder = write_series(tmp_path / "scouts", [as_localizer(ds) for ds in slab[:2]])
    with pytest.raises(DicomSeriesError, match=r"holds only localizer \(scout\) images "
                                               r"\(slice_000, slice_001\); give the folder of "
                                               r"the CT slices"):
        read_volume(folder)


def _off_grid(count, change):
    """`count` copies of real slices (new SOPInstanceUIDs) changed by `change`: not the stack's."""
    def images(slab):
        made = derived(slab[:count], change)
        for ds in made:
            ds.SOPInstanceUID = generate_uid()
        return made
    return images


def _half_size(_, ds):
    ds.PixelData, ds.Rows = np.ascontiguousarray(ds.pixel_array[::2]).tobytes(), ds.Rows // 2


def test_up_to_three_images_outside_the_stack_are_left_out(slab, tmp_path):
    folder = write_series(tmp_path / "series", slab)
    write_series(folder, _off_grid(3, _half_size)(slab), names=["x1", "x2", "x3"])
    series = read(folder)
    assert series.volume.array.shape == (512, 512, 16)
    assert series.warnings == [f"Left out {folder / name}: outside the stack of 16 slices "
                               "(Rows/Columns 256/512, not 512/512)."
                               for name in ("x1", "x2", "x3")]


def test_more_than_three_images_outside_the_stack_are_refused_by_name(slab, tmp_path):
    folder = write_series(tmp_path / "series", slab)
    write_series(folder, _off_grid(4, _half_size)(slab), names=["x1", "x2", "x3", "x4"])
    with pytest.raises(DicomSeriesError, match=r"4 images lie outside the stack of 16 slices .*: "
                                               r"x1, x2, x3 and 1 more; up to 3"):
        read_volume(folder)


@pytest.mark.parametrize("change, difference", [
    (_rotate_one, "another orientation"),
    (lambda i, ds: setattr(ds, "PixelSpacing", [0.9, 0.9]) if i == 5 else None,
     "PixelSpacing 0.9/0.9 mm, not 0.782/0.782 mm"),
], ids=["rotated", "pixel spacing"])
def test_a_slice_off_the_grid_leaves_a_gap_that_is_refused_with_it(slab, tmp_path, change,
                                                                   difference):
    """A slice of the stack on another grid is left out like a scout; the gap it leaves is refused,
    and the message says which file was left out and why."""
    folder = write_series(tmp_path / "series", derived(slab, change))
    with pytest.raises(DicomSeriesError) as refused:
        read_volume(folder)
    message = str(refused.value)
    assert "1 slice(s) missing, the first between slice_004" in message
    assert message.endswith(f"Left out {folder / 'slice_005'}: outside the stack of 15 slices "
                            f"({difference}).")


NON_IMAGES = [  # (SOP class, modality, in the CT series, with pixels, SOP class in words)
    ("1.2.840.10008.5.1.4.1.1.481.3", "RTSTRUCT", True, False, "RT Structure Set Storage"),
    ("1.2.840.10008.5.1.4.1.1.88.11", "SR", False, False, "Basic Text SR Storage"),
    (SEGMENTATION_STORAGE, "SEG", False, True, "Segmentation Storage"),
    ("1.2.840.10008.5.1.4.1.1.11.1", "PR", False, False,
     "Grayscale Softcopy Presentation State Storage"),
    ("1.2.840.10008.5.1.4.1.1.88.59", "KO", False, False, "Key Object Selection Document Storage"),
    ("1.2.840.10008.5.1.4.1.1.481.2", "RTDOSE", False, False, "RT Dose Storage"),
]


def test_objects_that_are_not_images_are_skipped_and_recorded(slab, tmp_path):
    folder = write_series(tmp_path / "series", slab)
    names = [f"object_{modality.lower()}" for _, modality, *_ in NON_IMAGES]
    write_series(folder, [non_image(slab[0], sop_class, modality,
                                    slab[0].SeriesInstanceUID if same_series else None, pixels)
                          for sop_class, modality, same_series, pixels, _ in NON_IMAGES], names)
    series = read(folder)
    assert series.volume.array.shape == (512, 512, 16) and series.warnings == []
    assert series.skipped == sorted(
        ({"file": str(folder / name), "sop_class": words}
         for name, (*_, words) in zip(names, NON_IMAGES)), key=lambda item: item["file"])


def test_a_folder_of_non_image_objects_only_is_refused(slab, tmp_path):
    folder = write_series(tmp_path / "report", [non_image(slab[0], *NON_IMAGES[1][:2])])
    with pytest.raises(DicomSeriesError, match=r"holds no DICOM images, only 1 other object\(s\) "
                                               r"\(Basic Text SR Storage\)"):
        read_volume(folder)


def _cut_before(path, keyword):
    """Cut a file off inside its header, just before the element `keyword`."""
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    data = path.read_bytes()
    path.write_bytes(data[:data.index((tag >> 16).to_bytes(2, "little")
                                      + (tag & 0xFFFF).to_bytes(2, "little"), 132)])


@pytest.mark.parametrize("keyword", ["SeriesInstanceUID", "SOPInstanceUID"])
def test_a_file_cut_off_in_its_header_is_refused_by_name(slab, tmp_path, keyword):
    folder = write_series(tmp_path / "series", slab)
    _cut_before(folder / "slice_007", keyword)
    with pytest.raises(DicomSeriesError) as refused:
        read_volume(folder)
    assert str(refused.value).startswith(
        f"{folder / 'slice_007'}: unreadable DICOM file: it has no {keyword}")


def test_an_exact_copy_is_left_out_with_a_warning(slab, tmp_path):
    folder = write_series(tmp_path / "copy", slab)
    shutil.copy(folder / "slice_004", folder / "slice_004_copy")
    series = read(folder)
    assert series.volume.array.shape == (512, 512, 16)
    assert series.warnings == [f"Left out {folder / 'slice_004_copy'}: an exact copy of "
                               f"{folder / 'slice_004'} (the same SOPInstanceUID and pixels)."]


def test_one_sop_instance_uid_with_different_pixels_is_refused_naming_both(slab, tmp_path):
    folder = write_series(tmp_path / "edited", slab)
    edited = copy.deepcopy(slab[4])
    edited.PixelData = (edited.pixel_array + 1).astype(edited.pixel_array.dtype).tobytes()
    write_series(folder, [edited], names=["slice_004_edited"])
    with pytest.raises(DicomSeriesError, match=r"slice_004 and slice_004_edited have the same "
                                               r"SOPInstanceUID .* but different pixels"):
        read_volume(folder)


def test_two_different_slices_at_one_position_are_refused_naming_both(slab, tmp_path):
    folder = write_series(tmp_path / "two_at_one", slab)
    second = copy.deepcopy(slab[4])
    second.SOPInstanceUID = generate_uid()
    write_series(folder, [second], names=["slice_004_recon2"])
    with pytest.raises(DicomSeriesError, match=r"two_at_one: slice_004 and slice_004_recon2 "
                                               r"are different slices at the same position "
                                               r"\(.* mm along the slice normal, 0\.00 mm apart\)"):
        read_volume(folder)


def test_several_series_are_listed_and_one_can_be_picked(slab, tmp_path):
    from LiverTumorSegLib.dicom.series import read_series

    other_uid = generate_uid()

    def split(index, ds):
        if index >= 12:
            ds.SeriesInstanceUID, ds.SeriesDescription = other_uid, "scout"

    folder = write_series(tmp_path / "two", derived(slab, split))
    with pytest.raises(DicomSeriesError) as refused:
        read_series(folder)
    message = str(refused.value)
    assert "holds 2 DICOM image series" in message and "--series UID" in message
    assert f"{slab[0].SeriesInstanceUID} 'no description' (12 images)" in message
    assert f"{other_uid} 'scout' (4 images)" in message
    picked = read_series(folder, slab[0].SeriesInstanceUID)
    assert picked.volume.array.shape[2] == 12
    with pytest.raises(DicomSeriesError, match="holds no image series 1.2.3"):
        read_series(folder, "1.2.3")


def test_a_folder_without_dicom_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not DICOM")
    with pytest.raises(DicomSeriesError, match="holds no DICOM files"):
        read_volume(tmp_path / "empty")


# ---- which folders are which inputs -----------------------------------------------------------

def test_folders_stand_for_series_and_series_subfolders(slab, tmp_path):
    batch = tmp_path / "studies"
    write_series(batch / "patient_a", slab[:4])
    write_series(batch / "patient_b", slab[4:8])
    (batch / "patient_c_notes").mkdir()
    (batch / "patient_c_notes" / "readme.txt").write_text("no images")
    write_series(batch / "patient_d_report", [non_image(slab[0], *NON_IMAGES[1][:2])])
    write_series(batch / "patient_e_scouts", [as_localizer(slab[0])])
    ct_path, _ = data_case("tiny64")
    shutil.copy(ct_path, batch / "tiny64_ct.nii.gz")
    assert [case_name(p) for p in expand_inputs([batch])] == ["tiny64_ct", "patient_a", "patient_b"]
    assert expand_inputs([batch / "patient_a"]) == [batch / "patient_a"]
    assert expand_inputs([tmp_path / "nothing_here"]) == [tmp_path / "nothing_here"]
    with pytest.raises(LiverTumorSegError, match=r"same outputs \(patient_a\)"):
        expand_inputs([batch, batch / "patient_a"])


# ---- segmenting the real series and its DICOM SEG ---------------------------------------------

@pytest.fixture(scope="module")
def bundled_segmenter():
    from LiverTumorSegLib.model.card import BUNDLED_MODEL_CARD
    from LiverTumorSegLib.pipeline import Segmenter

    if not BUNDLED_MODEL_CARD.is_file():
        pytest.skip("no bundled model in this checkout")
    return Segmenter(None, device="cpu")


@pytest.fixture(scope="module")
def round_trip(bundled_segmenter, tmp_path_factory):
    """The test series (with a DICOM SEG) and its NIfTI conversion, segmented by the bundled model."""
    from LiverTumorSegLib.workflow import segment_file

    series = real_series()
    ct_path, _ = data_case("ircadb_07")
    out = tmp_path_factory.mktemp("round_trip")
    with pytest.warns(UserWarning, match="no FrameOfReferenceUID"):
        dicom = segment_file(bundled_segmenter, series, out, dicom_seg=True)
    nifti = segment_file(bundled_segmenter, ct_path, out)
    return dicom, nifti


def test_dicom_and_nifti_give_the_same_segmentation_and_statistics(round_trip):
    (dicom, dicom_out), (nifti, nifti_out) = round_trip
    assert dicom_out.segmentation.name == "ircadb_07_seg.nii.gz"
    assert nifti_out.segmentation.name == "ircadb_07_ct_seg.nii.gz"
    assert np.count_nonzero(nifti.labels == 1) > 100_000, "the model found the liver"
    dicom_labels, nifti_labels = read_volume(dicom_out.segmentation), read_volume(nifti_out.segmentation)
    np.testing.assert_array_equal(np.asarray(dicom_labels.array), np.asarray(nifti_labels.array))
    np.testing.assert_allclose(dicom_labels.affine, nifti_labels.affine, atol=1e-5)
    written = json.loads(dicom_out.statistics.read_text())
    for key in ("liver_volume_ml", "liver_parenchyma_volume_ml", "tumor_volume_ml", "tumor_count",
                "tumor_burden_percent", "confidence", "lesions"):
        assert written[key] == nifti.statistics[key], key


def test_the_dicom_seg_reads_back_with_its_source(round_trip):
    import highdicom as hd

    (dicom, outputs), (nifti, _) = round_trip
    seg = hd.seg.segread(outputs.dicom_seg)
    sources = {p.name: pydicom.dcmread(p, stop_before_pixels=True) for p in real_series().iterdir()}
    first = next(iter(sources.values()))
    assert seg.SOPClassUID == SEGMENTATION_STORAGE
    assert str(seg.PatientName) == str(first.PatientName)
    assert seg.StudyInstanceUID == first.StudyInstanceUID
    segments = {s.SegmentNumber: s for s in seg.SegmentSequence}
    assert [(n, s.SegmentLabel) for n, s in sorted(segments.items())] == [(1, "Liver"), (2, "Tumor")]

    def code(sequence):
        return (sequence[0].CodingSchemeDesignator, sequence[0].CodeValue)

    liver, tumor = segments[1], segments[2]
    assert code(liver.SegmentedPropertyCategoryCodeSequence) == ("SCT", "123037004")
    assert code(liver.SegmentedPropertyTypeCodeSequence) == ("SCT", "10200004")
    assert code(tumor.SegmentedPropertyCategoryCodeSequence) == ("SCT", "49755003")
    assert code(tumor.SegmentedPropertyTypeCodeSequence) == ("SCT", "108369006")
    assert code(tumor.AnatomicRegionSequence) == ("SCT", "10200004")
    assert liver.SegmentationAlgorithmIdentificationSequence[0].AlgorithmName == "LiverTumorSeg"
    # Each segment says what it holds: Liver is the parenchyma, so a viewer's volume of it is
    # liver_parenchyma_volume_ml, not liver_volume_ml (the Slicer segments say the same).
    assert liver.SegmentDescription.startswith(LIVER_SEGMENT.contents)
    assert tumor.SegmentDescription.startswith(TUMOR_SEGMENT.contents)
    assert "parenchyma" in LIVER_SEGMENT.contents and "liver_volume_ml" in LIVER_SEGMENT.contents
    liver_voxels = np.count_nonzero(seg.get_volume(combine_segments=True).array == 1)
    voxel_ml = np.prod(np.linalg.norm(dicom.affine[:3, :3], axis=0)) / 1000.0
    assert liver_voxels * voxel_ml == pytest.approx(dicom.statistics["liver_parenchyma_volume_ml"],
                                                    abs=0.01)
    assert liver.SegmentAlgorithmType == "AUTOMATIC"

    referenced = {item.ReferencedSOPInstanceUID
                  for item in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == first.SeriesInstanceUID
    assert referenced == {ds.SOPInstanceUID for ds in sources.values()}, "every slice referenced"

    by_position = sorted(sources.values(), key=lambda ds: float(ds.ImagePositionPatient[2]))
    frames = seg.get_pixels_by_source_instance([ds.SOPInstanceUID for ds in by_position],
                                               combine_segments=True)
    np.testing.assert_array_equal(frames.transpose(2, 1, 0), nifti.labels)

    record = dicom.statistics["dicom"]
    assert record["frame_of_reference_uid_generated"] is True
    assert record["frame_of_reference_uid"] == seg.FrameOfReferenceUID
    assert record["seg_sop_instance_uid"] == seg.SOPInstanceUID
    assert any("no FrameOfReferenceUID" in w for w in dicom.statistics["warnings"])
    assert "WARNING" in seg.ContentDescription and "WARNINGS" in seg.SeriesDescription


# ---- the command line -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli_batch(slab, tmp_path_factory):
    """`segment` on a broken copy of a slab (a slice dropped) and then the real series, with a SEG:
    a refused first case does not stop the batch. The model finds no liver (the masks are checked
    with the bundled model above), so the batch's mechanics run at the speed of the coarse pass."""
    series = real_series()
    no_liver = make_random_model(tmp_path_factory.mktemp("no_liver_model"), background_bias=50.0,
                                 pixel_size_mm=6.0)
    broken = write_series(tmp_path_factory.mktemp("inputs") / "broken", slab[:7] + slab[8:])
    out = tmp_path_factory.mktemp("batch") / "out"
    result = run_cli("segment", broken, series, "--dicom-seg", "--model", no_liver.path,
                     "--device", "cpu", "-o", out)
    return result, out


def test_a_failed_series_does_not_stop_the_batch(cli_batch):
    result, out = cli_batch
    assert result.returncode == 2, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "ircadb_07_seg.dcm", "ircadb_07_seg.nii.gz", "ircadb_07_stats.json", "lesions.csv",
        "summary.csv"], "the failed case wrote nothing"
    assert "1 of 2 cases segmented; 1 failed:" in result.stdout
    assert any(line.startswith("error: broken: ") and "slice(s) missing" in line
               for line in result.stderr.splitlines())
    assert "warning: The series has no FrameOfReferenceUID" in result.stderr
    assert len([l for l in result.stderr.splitlines() if l.startswith("Model ")]) == 1, \
        "the model is built once, for the case after the refused one"


def test_the_batch_report_has_every_case_and_lesion(cli_batch):
    _, out = cli_batch
    summary = {row["case"]: row for row in csv.DictReader((out / "summary.csv").open())}
    assert set(summary) == {"ircadb_07", "broken"}
    assert summary["broken"]["status"] == "failed" and "missing" in summary["broken"]["error"]
    stats = json.loads((out / "ircadb_07_stats.json").read_text())
    done = summary["ircadb_07"]
    assert done["status"] == "ok" and done["error"] == ""
    assert float(done["liver_volume_ml"]) == pytest.approx(stats["liver_volume_ml"])
    assert int(done["tumor_count"]) == stats["tumor_count"]
    assert done["device"] == stats["device"] and float(done["seconds"]) == stats["seconds"]
    assert "no FrameOfReferenceUID" in done["warnings"]
    lesions = list(csv.DictReader((out / "lesions.csv").open()))
    assert len(lesions) == stats["tumor_count"]
    assert all(row["case"] == "ircadb_07" for row in lesions)
    assert [float(row["volume_ml"]) for row in lesions] == [l["volume_ml"] for l in stats["lesions"]]


def test_the_seg_of_the_command_line_references_the_whole_series(cli_batch):
    import highdicom as hd

    _, out = cli_batch
    seg = hd.seg.segread(out / "ircadb_07_seg.dcm")
    assert len(seg.get_source_image_uids()) == len(list(real_series().iterdir()))
    assert seg.SOPClassUID == SEGMENTATION_STORAGE


def test_a_forced_run_carries_its_warning_into_the_seg(random_card, slab, tmp_path):
    """Pick one series of a folder with --series; --force lets non-HU values through, and the
    warning then stands in the statistics, the printed summary and the DICOM SEG."""
    import highdicom as hd

    other_uid = generate_uid()

    def not_hu(_, ds):  # MRI-like values (no air) in a series that says it is CT
        ds.PixelData = (ds.pixel_array.astype(np.int16) + 2000).tobytes()
        ds.SeriesInstanceUID = other_uid

    folder = write_series(tmp_path / "study", shrunk(slab))
    write_series(folder, derived(shrunk(slab), not_hu), names=[f"b{i}" for i in range(16)])
    out = tmp_path / "out"
    result = run_cli("segment", folder, "--series", other_uid, "--force", "--dicom-seg", "--model",
                     random_card.path, "--device", "cpu", "-o", out)
    assert result.returncode == 0, result.stderr
    stats = json.loads((out / "study_stats.json").read_text())
    assert any("does not look like a CT" in w for w in stats["warnings"])
    assert f"WARNING: {folder} does not look like a CT" in result.stdout
    seg = hd.seg.segread(out / "study_seg.dcm")
    assert seg.ContentDescription.startswith(f"WARNING: {folder}"[:64])
    assert seg.SeriesDescription.endswith("(WARNINGS)")
    assert all("does not look like a CT" in s.SegmentDescription for s in seg.SegmentSequence)
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == other_uid


def test_force_does_not_override_a_non_ct_modality(random_card, slab, tmp_path):
    mr = derived(shrunk(slab), lambda i, ds: setattr(ds, "Modality", "MR"))
    folder = write_series(tmp_path / "mr", mr)
    result = run_cli("segment", folder, "--force", "--model", random_card.path, "-o",
                     tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {folder}: modality MR, not CT; the model segments CT only (--force does not "
        "change this).")
    assert not (tmp_path / "out").exists(), "nothing written, not even the folder"


def test_a_series_without_rescale_intercept_is_named_and_told_so(random_card, slab, tmp_path):
    """Stored values HU + 1024 without RescaleIntercept: the HU check names the folder,
    says what the headers lack, and gives the command line's --force, not the API's."""
    def unrescaled(_, ds):
        ds.PixelData = (ds.pixel_array.astype(np.int32) + 1024).clip(0).astype(np.uint16).tobytes()
        ds.PixelRepresentation = 0
        del ds.RescaleIntercept, ds.RescaleSlope

    folder = write_series(tmp_path / "no_intercept", derived(shrunk(slab), unrescaled))
    result = run_cli("segment", folder, "--model", random_card.path, "--device", "cpu", "-o",
                     tmp_path / "out")
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: {folder} does not look like a CT in Hounsfield units (range ")
    assert ("Its DICOM files have no RescaleIntercept, so their stored values were taken as "
            "Hounsfield units unchanged. Convert it to Hounsfield units first. If its values are "
            "right, pass --force to segment it anyway.") in line
    assert "force=True" not in result.stderr and "The volume" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_refused_single_input_exits_before_the_model_is_built(random_card, slab, tmp_path):
    folder = write_series(tmp_path / "cut", shrunk(slab))
    _cut_before(folder / "slice_007", "SeriesInstanceUID")
    result = run_cli("segment", folder, "--model", random_card.path, "--device", "cpu", "-o",
                     tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {folder / 'slice_007'}: unreadable DICOM file: it has no SeriesInstanceUID (cut "
        "off inside its header?); remove it or export the series again."], "no model was loaded"
    assert not (tmp_path / "out").exists()


def test_a_folder_as_exported_is_segmented_with_what_was_left_out_recorded(random_card, slab,
                                                                            tmp_path):
    """A scout, an RT structure set, a report series and a copied file beside the slices: the
    slices are segmented; the scout and the copy are warnings, the other objects `dicom.skipped`."""
    import highdicom as hd

    slices = shrunk(slab)
    folder = write_series(tmp_path / "export", slices)
    write_series(folder, [as_localizer(slices[0], orientation=[0, 1, 0, 0, 0, -1]),
                          non_image(slices[0], *NON_IMAGES[0][:2], slices[0].SeriesInstanceUID),
                          non_image(slices[0], *NON_IMAGES[1][:2])], ["scout", "rtstruct", "sr"])
    shutil.copy(folder / "slice_003", folder / "slice_003 (copy)")
    out = tmp_path / "out"
    result = run_cli("segment", folder, "--dicom-seg", "--model", random_card.path, "--device",
                     "cpu", "-o", out)
    assert result.returncode == 0, result.stderr
    stats = json.loads((out / "export_stats.json").read_text())
    assert stats["dicom"]["skipped"] == [
        {"file": str(folder / "rtstruct"), "sop_class": "RT Structure Set Storage"},
        {"file": str(folder / "sr"), "sop_class": "Basic Text SR Storage"}]
    left_out = [w for w in stats["warnings"] if w.startswith("Left out")]
    assert left_out == [
        f"Left out {folder / 'scout'}: a localizer (scout) image, not a slice of the CT series.",
        f"Left out {folder / 'slice_003 (copy)'}: an exact copy of {folder / 'slice_003'} (the "
        "same SOPInstanceUID and pixels)."]
    assert all(f"warning: {w}" in result.stderr and f"WARNING: {w}" in result.stdout
               for w in left_out)
    assert not any("rtstruct" in w or "/sr" in w for w in stats["warnings"])
    seg = hd.seg.segread(out / "export_seg.dcm")
    assert len(seg.get_source_image_uids()) == 16, "the SEG references the 16 slices only"


def test_dicom_seg_is_refused_for_nifti_inputs(tmp_path):
    ct_path, _ = data_case("tiny64")
    result = run_cli("segment", ct_path, "--dicom-seg", "-o", tmp_path / "out")
    assert result.returncode == 2 and "no source series for a DICOM SEG to reference" in result.stderr
    assert not (tmp_path / "out").exists()


# ---- atomic outputs ---------------------------------------------------------------------------

def test_a_seg_that_fails_while_being_written_leaves_nothing(tmp_path, monkeypatch):
    from pydicom.dataset import Dataset

    from LiverTumorSegLib.dicom.seg import save_dataset

    def fail_halfway(self, filename, **kwargs):
        with open(filename, "wb") as handle:
            handle.write(b"DICM partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Dataset, "save_as", fail_halfway)
    with pytest.raises(OutputError, match="No space left on device"):
        save_dataset(tmp_path / "case_seg.dcm", Dataset())
    assert list(tmp_path.iterdir()) == []
