"""The web page in a real browser: `medimg serve` as a subprocess, driven by Playwright + Debian's chromium."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw

from medimg.model.classifier import ASSETS

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
RESULT_WAIT = 90_000  # ms
COUNTS = "#counts [data-testid=markdown]"  # the counts line itself, not the progress shown over it


def picture(seed: int, size=(140, 100)) -> bytes:
    img = Image.new("RGB", size, ((seed * 70) % 256, (seed * 130) % 256, (seed * 40) % 256))
    draw = ImageDraw.Draw(img)
    for i in range(5):
        draw.rectangle([i * 20, i * 12, i * 20 + 50, i * 12 + 35], outline=(255, 255, 255), width=3)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def pdf_with_images(n: int) -> bytes:
    import pymupdf

    doc = pymupdf.open()
    for i in range(n):
        if i % 2 == 0:
            page = doc.new_page(width=595, height=842)
        y = 80 + (i % 2) * 330
        page.insert_text((60, y - 12), f"Figure {i + 1}", fontsize=11)
        page.insert_image(pymupdf.Rect(60, y, 360, y + 220), stream=picture(i + 3, (180, 130)))
    data = doc.tobytes()
    doc.close()
    return data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    """`medimg serve --allow-private` on a free port; yields (base URL, model info, Gradio's temp dir)."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium); .ci/run installs it")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    port = free_port()
    gradio_tmp = tmp_path_factory.mktemp("gradio")
    cmd = [sys.executable, "-m", "medimg.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--allow-private"]
    if not (ASSETS / "labels.json").exists():  # no shipped model in this checkout: the tiny test model
        cmd += ["--model", str(request.getfixturevalue("tiny_model_dir"))]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(gradio_tmp)}
    log = open(tmp_path_factory.mktemp("log") / "serve.log", "w+")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    info = None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            info = httpx.get(base + "/api/health", timeout=2).json()["model"]
            break
        except (httpx.HTTPError, ValueError, KeyError):
            time.sleep(0.3)
    if info is None:
        proc.kill()
        log.seek(0)
        pytest.fail(f"medimg serve did not come up:\n{log.read()[-3000:]}")
    yield base, info, gradio_tmp
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    """A fresh page at 1280×800 that may reach nothing but the test's own 127.0.0.1 servers."""
    base = server[0]
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    pg = ctx.new_page()
    pg.outside = []  # requests that tried to leave 127.0.0.1

    def guard(route):
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "data:", "blob:")):
            route.continue_()
        else:
            pg.outside.append(url)
            route.abort()

    pg.route("**/*", guard)
    pg.goto(base + "/")
    pg.wait_for_selector("#run", timeout=30_000)
    yield pg
    ctx.close()


def upload(pg, paths: list[Path]) -> None:
    pg.locator("#files input[type=file]").set_input_files([str(p) for p in paths])
    for p in paths:  # each file is listed once it has reached the server
        pg.locator("#files").get_by_text(p.stem, exact=False).first.wait_for(timeout=30_000)


def run_and_wait(pg, button: str = "#run") -> None:
    pg.click(button)
    pg.wait_for_function("sel => /\\d+ images/.test(document.querySelector(sel).innerText)", arg=COUNTS,
                         timeout=RESULT_WAIT)
    want = re.search(r"(\d+) images", pg.locator(COUNTS).inner_text()).group(1)
    pg.wait_for_function(f"document.querySelectorAll('#gallery .thumbnail-item').length == {want}",
                         timeout=10_000)


def captions(pg) -> list[str]:
    return pg.locator("#gallery .thumbnail-item .caption-label").all_inner_texts()


def counts(pg) -> dict[str, int]:
    text = pg.locator(COUNTS).inner_text()
    out = {"images": int(re.search(r"(\d+) images", text).group(1))}
    for kind in ("medical", "non-medical", "uncertain"):
        m = re.search(rf"(\d+) {kind}", text.replace("non-medical", "nonmed")) if kind == "medical" else \
            re.search(rf"(\d+) {kind}", text)
        out[kind] = int(m.group(1)) if m else 0
    return out


def check_caption(text: str, labels: list[str], source: str) -> None:
    verdict, label_conf, where = (part.strip() for part in text.split("·", 2))
    assert verdict in ("medical", "non-medical", "uncertain"), text
    label, conf = label_conf.rsplit(" ", 1)
    assert label in labels and re.fullmatch(r"\d{1,3}%", conf), text
    assert where.startswith(source), text


def test_two_images_give_two_labelled_thumbnails_and_a_csv(page, server, tmp_path):
    base, info, gradio_tmp = server
    files = [tmp_path / "knee.png", tmp_path / "holiday.png"]
    for i, f in enumerate(files):
        f.write_bytes(picture(i + 1))
    upload(page, files)
    run_and_wait(page)
    caps = captions(page)
    assert len(caps) == 2
    check_caption(caps[0], info["labels"], "knee.png")
    check_caption(caps[1], info["labels"], "holiday.png")
    assert counts(page)["images"] == 2
    # the uploads were deleted from Gradio's upload area once classified
    assert not [p for p in gradio_tmp.rglob("*") if p.name in ("knee.png", "holiday.png")]

    with page.expect_download() as dl:
        page.click("#csv")
    rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text(encoding="utf-8"))))
    assert [r["input"] for r in rows] == ["knee.png", "holiday.png"]
    for r in rows:
        assert r["label"] in info["labels"] and r["verdict"] in ("medical", "non-medical", "uncertain")
        assert 0 <= float(r["confidence"]) <= 1 and r["error"] == ""
    with page.expect_download() as dl:
        page.click("#json")
    doc = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
    assert [r["input"] for r in doc["results"]] == ["knee.png", "holiday.png"]
    assert page.outside == []


def test_threshold_and_filter_relabel_without_running_again(page, tmp_path):
    files = [tmp_path / f"img{i}.png" for i in range(4)]
    for i, f in enumerate(files):
        f.write_bytes(picture(i * 3 + 1))
    upload(page, files)
    run_and_wait(page)
    number = page.locator("#threshold input[type=number]")
    number.fill("0.5")
    number.press("Enter")
    page.wait_for_function(f"document.querySelector('{COUNTS}').innerText.includes('threshold 0.50')",
                           timeout=20_000)
    c = counts(page)
    assert c["uncertain"] == 0 and c["medical"] + c["non-medical"] == 4
    page.locator("#filter").get_by_text("non-medical", exact=True).click()
    page.wait_for_timeout(300)
    page.wait_for_function(f"document.querySelectorAll('#gallery .thumbnail-item').length == {c['non-medical']}",
                           timeout=20_000)
    assert all(cap.startswith("non-medical") for cap in captions(page))


def test_pdf_images_show_their_pages(page, server, tmp_path):
    info = server[1]
    report = tmp_path / "report.pdf"
    report.write_bytes(pdf_with_images(3))
    upload(page, [report])
    run_and_wait(page)
    caps = captions(page)
    assert len(caps) == 3
    for cap in caps:
        check_caption(cap, info["labels"], "report.pdf")
    assert ["page 1" in caps[0], "page 1" in caps[1], "page 2" in caps[2]] == [True, True, True]
    table = page.locator("#table").inner_text()
    assert "pt" in table  # the position on the page is listed


def test_a_web_page_url_shows_its_images(page, server):
    from webserver import WebServer

    info = server[1]
    with WebServer() as web:
        web.add("/scan.png", picture(7), "image/png")
        web.add("/logo.png", picture(8), "image/png")
        url = web.add("/case.html", '<html><body><h1>Case 12</h1><img src="scan.png" alt="scan">'
                                    '<p>Findings.</p><img src="/logo.png" alt="logo"></body></html>')
        page.fill("#url textarea, #url input", url)
        run_and_wait(page)
        caps = captions(page)
        assert len(caps) == 2, page.locator(COUNTS).inner_text() + page.locator("#problems").inner_text()
        for cap in caps:
            check_caption(cap, info["labels"], url)
        assert web.hits["/case.html"] == 1


def test_a_broken_file_shows_a_plain_error(page, tmp_path):
    good, bad = tmp_path / "fine.png", tmp_path / "broken.png"
    good.write_bytes(picture(2))
    bad.write_bytes(picture(3)[:70])
    upload(page, [good, bad])
    run_and_wait(page)
    assert len(captions(page)) == 1
    problems = page.locator("#problems")
    problems.wait_for(state="visible", timeout=10_000)
    text = problems.inner_text()
    assert "broken.png" in text
    assert "Traceback" not in text and "Error:" not in page.locator("body").inner_text()
    assert "could not be read" in page.locator(COUNTS).inner_text()


def test_example_on_laptop_and_phone_offline_with_dicom_tags(browser, server):
    """The example runs with every non-local request blocked; screenshots at 1280×800 and 390×844."""
    base = server[0]
    ARTIFACTS.mkdir(exist_ok=True)
    for name, size in (("desktop", (1280, 800)), ("phone", (390, 844))):
        ctx = browser.new_context(viewport={"width": size[0], "height": size[1]})
        pg = ctx.new_page()
        outside: list[str] = []
        pg.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
            ("http://127.0.0.1:", "data:", "blob:")) else (outside.append(route.request.url), route.abort()))
        pg.goto(base + "/")
        pg.wait_for_selector("#run", timeout=30_000)
        run_and_wait(pg, "button:has-text('Example: scans and photos')")
        caps = captions(pg)
        assert len(caps) == 4 and any("CT_small.dcm" in c for c in caps)
        pg.wait_for_timeout(500)
        pg.screenshot(path=str(ARTIFACTS / f"ui-{name}.png"))  # what the screen shows after the run
        pg.screenshot(path=str(ARTIFACTS / f"ui-{name}-full.png"), full_page=True)
        assert pg.evaluate("document.documentElement.scrollWidth") <= size[0] + 1  # no sideways scrolling
        if name == "desktop":
            pg.locator("#gallery .thumbnail-item").first.click()
            details = pg.locator("#details")
            details.wait_for(state="visible", timeout=10_000)
            text = details.inner_text()
            assert "Modality" in text and "CT" in text
        assert outside == [], outside
        ctx.close()


def test_an_mhd_dropped_with_its_raw_shows_one_slice(page, server, tmp_path):
    """A LUNA16-style pair dropped together: the header finds its data file among the uploads, one slice is
    shown, and the .raw itself is no problem to report."""
    from test_volumes import detached_mha, head_volume

    info = server[1]
    header = detached_mha(tmp_path, head_volume())
    upload(page, [header, tmp_path / "v.raw"])
    run_and_wait(page)
    caps = captions(page)
    assert len(caps) == 1, page.locator(COUNTS).inner_text()
    check_caption(caps[0], info["labels"], "v.mhd")
    assert "could not be read" not in page.locator(COUNTS).inner_text()
