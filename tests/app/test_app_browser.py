"""``irframe app`` in a real headless browser (Chromium driven by Playwright).

The app is started on a free localhost port with a tiny checkpoint saved in ``tmp_path``; the test
uploads an image as a person would, presses Restore, checks that the before/after slider shows two
loaded images, downloads the result and compares it with :func:`irframe.nn.inference.restore` on
the same input (bit for bit, 8- and 16-bit), and checks the messages bad uploads get. The page
must not ask anything of the network beyond the app itself.

Skipped, with the reason, where Gradio, Playwright or a Chromium binary is missing. CI installs them
(``apt-get install chromium``; ``pip install -e ".[app]" playwright``; never ``playwright install``,
which downloads a browser build of its own). ``IRFRAME_CHROMIUM`` names another binary.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import cv2
import numpy as np
import pytest

from tests.app.test_app import TINY_SR, expected, save_model, write_png

pytest.importorskip("gradio", reason='Gradio is not installed (pip install "irframe[app]")')
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
CHROMIUM = os.environ.get("IRFRAME_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM:
    pytest.skip("no Chromium binary (apt-get install chromium, or set IRFRAME_CHROMIUM)", allow_module_level=True)

# slow: a browser and a web server (~15 s); Gradio's own pandas deprecations are not ours
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning")]

LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 30_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        try:
            chromium = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        except Exception as exc:  # a binary Playwright cannot drive (too old, broken install)
            pytest.skip(f"Chromium at {CHROMIUM} does not start under Playwright: {str(exc).splitlines()[0]}")
        yield chromium
        chromium.close()


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Any, Path]]:
    """The app on a free port with one tiny x2 model; ``(running app, checkpoint)``."""
    from irframe.app import serve

    checkpoint = save_model(tmp_path, TINY_SR)
    slider = getattr(request, "param", "auto")
    app = serve([str(checkpoint)], port=free_port(), block=False, slider=slider, log=lambda _: None)
    try:
        yield app, checkpoint
    finally:
        app.close()


def open_page(browser: Any, url: str) -> tuple[Any, list[str]]:
    """A fresh page on ``url`` once the model is described; also the hosts it asked for other than the app's."""
    page = browser.new_page(accept_downloads=True)
    page.set_default_timeout(TIMEOUT_MS)
    app_host = urlparse(url).netloc
    elsewhere: list[str] = []
    page.on("request", lambda r: elsewhere.append(r.url) if urlparse(r.url).netloc not in (app_host, "") and
            not r.url.startswith(("data:", "blob:")) else None)
    page.goto(url)
    page.wait_for_selector("#irframe-model-info >> text=SRVGGNetCompact")
    return page, elsewhere


def run(page: Any, image: Path) -> str:
    """Upload ``image``, press Restore and return the status line once it is written."""
    page.set_input_files("#irframe-upload input[type=file]", str(image))
    page.wait_for_selector(f"#irframe-upload >> text={image.stem}")  # uploaded to the server
    page.click("#irframe-run")
    page.wait_for_function(
        "() => /restored|Could not/.test(document.querySelector('#irframe-status').innerText)", timeout=TIMEOUT_MS
    )
    return str(page.inner_text("#irframe-status"))


def download(page: Any, folder: Path) -> Path:
    with page.expect_download() as info:
        page.click("#irframe-download a[download]")
    path = folder / info.value.suggested_filename
    info.value.save_as(path)
    return path


def loaded_images(page: Any, selector: str, count: int = 2) -> list[int]:
    """Natural widths of the images under ``selector``, once at least ``count`` of them have loaded."""
    page.wait_for_function(
        "([sel, n]) => { const imgs = [...document.querySelectorAll(sel + ' img')];"
        " return imgs.length >= n && imgs.every(i => i.complete && i.naturalWidth > 0); }",
        arg=[selector, count],
    )
    return list(page.eval_on_selector_all(f"{selector} img", "els => els.map(e => e.naturalWidth)"))


def test_restore_in_the_browser(browser: Any, served: tuple[Any, Path], tmp_path: Path) -> None:
    app, checkpoint = served
    page, elsewhere = open_page(browser, app.url)
    photo = write_png(tmp_path / "photo.png", (40, 56, 3))
    status = run(page, photo)
    assert "restored photo.png: 56 x 40 -> 112 x 80" in status, status
    assert len(loaded_images(page, "#irframe-compare")) >= 2  # the slider's before and after

    got = download(page, tmp_path / "downloads")
    assert got.name == "photo_tiny.png"
    out = cv2.imread(str(got), cv2.IMREAD_UNCHANGED)
    model = app.cache.get(str(checkpoint)).model  # the app's own, cached
    np.testing.assert_array_equal(out[:, :, ::-1], expected(model, photo, 8))

    # 16 bits in, 16 bits out, at full resolution
    page, _ = open_page(browser, app.url)
    deep = write_png(tmp_path / "deep.png", (24, 20, 3), np.uint16)
    assert "16-bit RGB PNG" in run(page, deep)
    out = cv2.imread(str(download(page, tmp_path / "downloads16")), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (48, 40, 3)
    np.testing.assert_array_equal(out[:, :, ::-1], expected(model, deep, 16))

    # not an image: Gradio refuses the upload by its name, and the app one whose content is not an image
    page, _ = open_page(browser, app.url)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    page.set_input_files("#irframe-upload input[type=file]", str(notes))
    page.wait_for_selector("text=Invalid file type: notes.txt")
    broken = tmp_path / "broken.png"
    broken.write_text("not an image, whatever the name says")
    status = run(page, broken)
    assert "Could not restore" in status and "broken.png: cannot decode image" in status, status
    assert page.locator("#irframe-download a[download]").count() == 0
    assert elsewhere == [], f"the page asked for other hosts: {elsewhere}"


@pytest.mark.parametrize("served", ["html"], indirect=True)
def test_html_slider_for_gradio_without_image_slider(browser: Any, served: tuple[Any, Path], tmp_path: Path) -> None:
    app, _ = served
    page, _ = open_page(browser, app.url)
    assert "restored photo.png" in run(page, write_png(tmp_path / "photo.png", (20, 24, 3)))
    assert loaded_images(page, "#irframe-compare .irframe-compare") == [48, 48]
    slider = page.locator("#irframe-compare input[type=range]")
    slider.evaluate("e => { e.value = 20; e.dispatchEvent(new Event('input', {bubbles: true})); }")
    clip = page.eval_on_selector("#irframe-compare .irframe-before", "e => e.style.clipPath")
    assert clip.replace("px", "") == "inset(0 80% 0 0)"
