"""The web app end to end in a real browser (Playwright driving Debian's headless Chromium): each test
starts `livertumorseg web` on 127.0.0.1, works the page as a user would, and stops the server.

The bundled model segments the demo sample here, and the command line segments the same file for
the expected values. A screenshot of every state goes to `LIVERTUMORSEG_TEST_ARTIFACTS` (default: a
`web-screenshots` folder under pytest's temporary directory).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trame_slicer", reason="the web extra is not installed: pip install -e '.[web]'")
pytest.importorskip("playwright", reason="the web extra is not installed: pip install -e '.[web]'")
CHROMIUM = Path(os.environ.get("LIVERTUMORSEG_CHROMIUM", "/usr/bin/chromium"))
if not CHROMIUM.is_file():
    pytest.skip(f"Chromium is not installed at {CHROMIUM}: apt-get install -y chromium",
                allow_module_level=True)

from conftest import DATA_DIR  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from web_server import Server  # noqa: E402
from web_uploads import two_series_zip  # noqa: E402

from LiverTumorSegLib.cli import main as cli_main  # noqa: E402
from LiverTumorSegLib.inputs import read_volume  # noqa: E402
from LiverTumorSegLib.labels import label_components  # noqa: E402
from LiverTumorSegLib.reporting.tables import WARNING_ROW, statistics_rows  # noqa: E402
from LiverTumorSegLib.resources import SAMPLE_CT  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUN_ONLY = ("seconds", "input")
SEGMENT_TIMEOUT_MS = 300_000
DEMO = "lits117_crop_ct"


# ---- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    folder = os.environ.get("LIVERTUMORSEG_TEST_ARTIFACTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("web-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def cli_demo(tmp_path_factory) -> Path:
    """`livertumorseg segment` on the demo sample and a copy of it (a batch, for `lesions.csv`)."""
    folder = tmp_path_factory.mktemp("cli_demo")
    copy = folder / "inputs" / "copy_ct.nii.gz"
    copy.parent.mkdir()
    shutil.copy(SAMPLE_CT, copy)
    assert cli_main(["segment", str(SAMPLE_CT), str(copy), "-o", str(folder / "out")]) == 0
    return folder / "out"


@pytest.fixture
def start_server():
    servers = []

    def start(*options: str) -> Server:
        servers.append(Server(*options))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="livertumorseg-chromium-"), executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS, headless=True, viewport={"width": 1400, "height": 900},
            accept_downloads=True)
        yield context
        context.close()


@pytest.fixture
def page(browser, start_server, request, artifacts):
    """A page on a fresh server (options from `@pytest.mark.parametrize('server_options', ...)`)."""
    options = getattr(request, "param", ())
    server = start_server(*options)
    tab = browser.new_page()
    tab.goto(server.url)
    tab.snap = lambda name: tab.screenshot(path=str(artifacts / f"{request.node.name}-{name}.png"))
    try:
        wait_for_views(tab)
    except Exception:
        tab.snap("not-ready")
        raise AssertionError("the page never showed the demo; server output:\n"
                             + "".join(server.output[-40:]))
    yield tab
    tab.close()


# ---- helpers ----------------------------------------------------------------------------------
def wait_for_views(page, name: str = DEMO) -> None:
    page.wait_for_function("document.querySelectorAll('img').length >= 4 && Array.from("
                           "document.querySelectorAll('img')).every(i => i.naturalWidth > 0)",
                           timeout=120_000)
    page.wait_for_function(f"(document.querySelector('.lts-case-name')?.innerText || '')"
                           f".includes('{name}')", timeout=120_000)


def view_contrast(page) -> list[float]:
    """Standard deviation of the grey values of each view's image (0 for a blank view)."""
    return page.evaluate("""() => Array.from(document.querySelectorAll('img')).map(img => {
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const context = canvas.getContext('2d');
        context.drawImage(img, 0, 0);
        const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
        let sum = 0, squares = 0, n = data.length / 4;
        for (let i = 0; i < data.length; i += 4) { sum += data[i]; squares += data[i] * data[i]; }
        return Math.sqrt(squares / n - (sum / n) ** 2);
    })""")


def segment(page) -> None:
    page.click(".lts-segment")
    page.wait_for_selector(".lts-row", timeout=SEGMENT_TIMEOUT_MS)
    page.wait_for_function("!document.querySelector('.lts-progress')", timeout=60_000)


def table(page) -> list[dict[str, str]]:
    return page.evaluate("""() => {
        const heads = Array.from(document.querySelectorAll('.lts-table thead th')).map(c => c.innerText.trim());
        return Array.from(document.querySelectorAll('.lts-table tbody tr')).map(row =>
            Object.fromEntries(Array.from(row.querySelectorAll('td')).map((c, i) => [heads[i], c.innerText.trim()])));
    }""")


def tumor_count(page) -> int:
    return int(next(r for r in table(page) if r["Structure"] == "Tumor (all)")["Count"])


def download(page, kind: str, folder: Path) -> Path:
    with page.expect_download(timeout=120_000) as info:
        page.click(f".lts-download-{kind}")
    target = folder / info.value.suggested_filename
    info.value.save_as(target)
    return target


def cli_stats(cli_demo: Path) -> dict:
    return json.loads((cli_demo / f"{DEMO}_stats.json").read_text())


def assert_table_equals(rows: list[dict[str, str]], statistics: dict) -> None:
    expected = [r for r in statistics_rows(statistics) if r["Structure"] != WARNING_ROW]
    assert [r["Structure"] for r in rows] == [r["Structure"] for r in expected]
    for row, want in zip(rows, expected):
        for column, cell in row.items():
            value = want[column]
            if value is None:
                assert cell == "", (row["Structure"], column)
            elif isinstance(value, str):
                assert cell == value, (row["Structure"], column)
            else:
                assert float(cell) == value, (row["Structure"], column)


def upload(page, *paths: Path) -> None:
    page.set_input_files(".lts-upload", [str(p) for p in paths])


# ---- tests ------------------------------------------------------------------------------------
def test_the_page_shows_the_demo_case_in_every_view(page):
    page.snap("demo-open")
    assert len(view_contrast(page)) == 4
    assert all(contrast > 10 for contrast in view_contrast(page)), "a view is blank"
    info = page.inner_text(".lts-case-info")
    assert "128 x 128 x 128" in info and "1.3 x 1.3 x 1.3 mm" in info


def test_segment_shows_liver_and_tumor_and_the_command_line_s_numbers(page, cli_demo):
    before = page.evaluate("document.querySelectorAll('img')[0].src")
    page.click(".lts-segment")
    page.wait_for_selector(".lts-progress", timeout=60_000)
    assert page.inner_text(".lts-segment").strip().upper() == "CANCEL"
    page.snap("running")
    page.wait_for_selector(".lts-row", timeout=SEGMENT_TIMEOUT_MS)
    page.wait_for_function("!document.querySelector('.lts-progress')", timeout=60_000)
    time.sleep(1)
    page.snap("segmented")
    assert page.inner_text(".lts-segment-liver").strip().upper() == "LIVER"
    assert page.inner_text(".lts-segment-tumor").strip().upper() == "TUMOR"
    assert page.evaluate("document.querySelectorAll('img')[0].src") != before
    assert_table_equals(table(page), cli_stats(cli_demo))


@pytest.mark.parametrize("page", [("--data", str(DATA_DIR))], indirect=True)
def test_cancel_leaves_the_scene_unchanged(page):
    if not (DATA_DIR / "ircadb_17_ct.nii.gz").is_file():
        pytest.skip(f"real CT case ircadb_17 not available: {DATA_DIR} is absent")
    page.click(".lts-data-pick")
    page.keyboard.type("ircadb_17_ct")
    page.get_by_role("option", name="ircadb_17_ct.nii.gz").click()
    page.click(".lts-open-data")
    wait_for_views(page, "ircadb_17_ct")
    page.snap("opened")
    page.click(".lts-segment")
    page.wait_for_selector(".lts-progress", timeout=60_000)
    page.click(".lts-segment")
    page.wait_for_selector(".lts-notice", timeout=SEGMENT_TIMEOUT_MS)
    page.snap("cancelled")
    assert "Cancelled; nothing was changed" in page.inner_text(".lts-notice")
    assert page.locator(".lts-row").count() == 0 and page.locator(".lts-download").count() == 0
    assert page.locator(".lts-segment-tumor").is_hidden(), "no segmentation to correct"
    assert page.inner_text(".lts-segment").strip().upper() == "SEGMENT"


def test_a_lesion_row_centres_the_views_on_it(page, cli_demo):
    segment(page)
    lesion = cli_stats(cli_demo)["lesions"][1]
    page.locator(".lts-row", has_text=f"Lesion {lesion['id']}").first.click()
    page.wait_for_selector(".lts-centre", timeout=30_000)
    page.snap("centred")
    centres = page.locator(".lts-centre").all_inner_texts()
    assert len(centres) == 3
    for text in centres:
        numbers = [float(n) for n in text.split(" ", 1)[1].strip(" ;").split(",")]
        assert numbers == pytest.approx(lesion["centroid_ras_mm"], abs=0.05), text


def _removable_lesion(cli_demo: Path) -> tuple[dict, np.ndarray]:
    """The largest lesion whose centroid lies deep inside it (so a click there hits it), and its
    voxels."""
    labels = read_volume(cli_demo / f"{DEMO}_seg.nii.gz")
    array = np.asarray(labels.array)
    components, _ = label_components(array == 2)
    inverse = np.linalg.inv(labels.affine)
    for lesion in cli_stats(cli_demo)["lesions"]:
        ijk = np.round(inverse @ np.array([*lesion["centroid_ras_mm"], 1.0]))[:3].astype(int)
        around = components[tuple(slice(c - 2, c + 3) for c in ijk)]
        if around.size and around.min() > 0 and np.all(around == around.flat[0]):
            return lesion, components == around.flat[0]
    pytest.fail("no lesion of the demo has its centroid inside it")


def test_islands_removes_one_lesion_from_table_stats_and_label_map(page, cli_demo, tmp_path):
    lesion, voxels = _removable_lesion(cli_demo)
    segment(page)
    count = tumor_count(page)
    page.locator(".lts-row", has_text=f"Lesion {lesion['id']}").first.click()
    page.wait_for_selector(".lts-centre", timeout=30_000)
    page.click(".lts-segment-tumor")
    page.click(".lts-effect-islands")
    page.get_by_text("Remove selected").click()
    time.sleep(1)
    box = page.locator("img").nth(0).bounding_box()  # the axial view, centred on the lesion
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 10, y)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.up()
    page.wait_for_selector(".lts-edited", timeout=60_000)
    page.wait_for_function(f"Array.from(document.querySelectorAll('.lts-row')).some(r => "
                           f"r.innerText.startsWith('Tumor (all)') && r.innerText.includes('\\t{count - 1}\\t'))",
                           timeout=60_000)
    page.snap("lesion-removed")
    assert tumor_count(page) == count - 1
    stats = json.loads(download(page, "statistics", tmp_path).read_text())
    assert stats["tumor_count"] == count - 1 and stats["edited"] is True
    web = np.asarray(read_volume(download(page, "labels", tmp_path)).array)
    cli = np.asarray(read_volume(cli_demo / f"{DEMO}_seg.nii.gz").array)
    np.testing.assert_array_equal(web != cli, voxels)
    assert not web[voxels].any()


def test_each_download_equals_the_command_line_output(page, cli_demo, tmp_path):
    import slicer

    from LiverTumorSegLib.mrml.logic import MrmlSegmentationLogic

    segment(page)
    page.snap("downloads")
    labels = download(page, "labels", tmp_path)
    assert labels.name == f"{DEMO}_seg.nii.gz"
    web, cli = read_volume(labels), read_volume(cli_demo / f"{DEMO}_seg.nii.gz")
    np.testing.assert_array_equal(np.asarray(web.array), np.asarray(cli.array))
    np.testing.assert_allclose(web.affine, cli.affine)
    stats = json.loads(download(page, "statistics", tmp_path).read_text())
    expected = cli_stats(cli_demo)
    assert {k: v for k, v in stats.items() if k not in RUN_ONLY} == \
        {k: v for k, v in expected.items() if k not in RUN_ONLY}
    with open(download(page, "lesions", tmp_path), newline="") as handle:
        rows = list(csv.reader(handle))
    with open(cli_demo / "lesions.csv", newline="") as handle:
        batch = list(csv.reader(handle))
    assert rows == [batch[0]] + [row for row in batch[1:] if row[0] == DEMO]
    segmentation = download(page, "segmentation", tmp_path)
    assert segmentation.name == f"{DEMO}.seg.nrrd"
    scene = slicer.vtkMRMLScene()
    logic = MrmlSegmentationLogic(scene)
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    storage = slicer.vtkMRMLSegmentationStorageNode()
    storage.SetFileName(str(segmentation))
    assert storage.ReadData(node)
    reference = logic.volumeNodeFromVolume(read_volume(SAMPLE_CT), "CT")
    np.testing.assert_array_equal(logic.labelArray(node, reference), np.asarray(cli.array))
    assert page.locator(".lts-download-dicom_seg").count() == 0, "no DICOM SEG for a NIfTI input"


def test_bad_uploads_each_give_their_message_and_the_page_goes_on(page, tmp_path):
    import nibabel

    labels = np.zeros((40, 40, 20), np.uint8)
    labels[10:30, 10:30, 5:15] = 1
    not_ct = tmp_path / "mask_ct.nii.gz"
    nibabel.save(nibabel.Nifti1Image(labels, np.diag([1.5, 1.5, 3.0, 1.0])), str(not_ct))
    upload(page, not_ct)
    wait_for_views(page, "mask_ct")
    page.click(".lts-segment")
    page.wait_for_selector(".lts-error", timeout=SEGMENT_TIMEOUT_MS)
    page.snap("not-ct")
    message = page.inner_text(".lts-error")
    assert "does not look like a CT in Hounsfield units" in message and "/tmp" not in message

    truncated = tmp_path / "truncated_ct.nii.gz"
    truncated.write_bytes(SAMPLE_CT.read_bytes()[: SAMPLE_CT.stat().st_size // 2])
    upload(page, truncated)
    page.wait_for_function("document.querySelector('.lts-error') && document.querySelector("
                           "'.lts-error').innerText.includes('truncated_ct')", timeout=120_000)
    page.snap("truncated")
    assert "cannot be read" in page.inner_text(".lts-error")

    upload(page, two_series_zip(tmp_path, 6))
    page.wait_for_selector(".lts-choice", timeout=120_000)
    page.snap("two-series")
    assert "holds 2 cases or series; pick one" in page.inner_text(".lts-notice")
    choices = page.locator(".lts-choice").all_inner_texts()
    assert len(choices) == 2 and all("(6 images)" in c for c in choices)
    page.locator(".lts-choice", has_text="second reconstruction").click()
    wait_for_views(page, "export")
    assert "512 x 512 x 6" in page.inner_text(".lts-case-info")

    shown = page.evaluate("Array.from(document.querySelectorAll('img')).map(i => i.src)")
    page.click(".lts-open-demo")
    wait_for_views(page)
    page.wait_for_function("previous => Array.from(document.querySelectorAll('img')).every("
                           "(img, i) => img.src !== previous[i])", arg=shown, timeout=60_000)
    time.sleep(2)  # the last frames of the fitted views
    page.snap("demo-again")
    assert all(contrast > 10 for contrast in view_contrast(page))


@pytest.mark.parametrize("page", [("--max-upload-mb", "1")], indirect=True)
def test_an_upload_over_the_limit_is_refused_and_the_page_goes_on(page):
    upload(page, SAMPLE_CT)  # 2.8 MB against a 1 MB limit
    page.wait_for_selector(".lts-error", timeout=120_000)
    page.snap("too-large")
    assert "larger than the server's limit of 1 MB" in page.inner_text(".lts-error")
    assert "lits117_crop_ct" in page.inner_text(".lts-case-name"), "the open case stays"
    segment(page)
    assert tumor_count(page) > 0
