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


class Served(tuple):
    """(base URL, model info, the server's TMPDIR), and `stop()` to end it (at most once)."""

    def stop(self) -> None:
        proc = self.proc
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    """`medimg serve --allow-private` on a free port, with a TMPDIR of its own (so the test sees every temporary
    file it makes: Gradio's uploads, the page's session folders, the examples)."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium); .ci/run installs it")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    port = free_port()
    tmp = tmp_path_factory.mktemp("tmp")
    cmd = [sys.executable, "-m", "medimg.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--allow-private"]
    if not (ASSETS / "labels.json").exists():  # no shipped model in this checkout: the tiny test model
        cmd += ["--model", str(request.getfixturevalue("tiny_model_dir"))]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "TMPDIR": str(tmp)}
    env.pop("GRADIO_TEMP_DIR", None)
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
    served = Served((base, info, tmp))
    served.proc, served.log = proc, Path(log.name)
    yield served
    served.stop()
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
    # each file is in the list of uploaded files once it has reached the server (while it is on its way, its
    # name shows under "Uploading…", and a run started then would go without it)
    for p in paths:
        pg.locator("#files .file-preview").get_by_text(p.stem, exact=False).first.wait_for(timeout=30_000)
    pg.locator("#files .uploading").wait_for(state="detached", timeout=30_000)
    # and the line counting them has come (the page is laid out as it will stay)
    pg.wait_for_function("document.querySelector('#ready')?.innerText.includes(' ready to run')", timeout=30_000)


def run_and_wait(pg, button: str = "#run") -> None:
    pg.click(button)
    pg.wait_for_function("sel => /\\d+ images?\\b/.test(document.querySelector(sel).innerText)", arg=COUNTS,
                         timeout=RESULT_WAIT)
    want = re.search(r"(\d+) images?\b", pg.locator(COUNTS).inner_text()).group(1)
    pg.wait_for_function(f"document.querySelectorAll('#gallery .thumbnail-item').length == {want}",
                         timeout=10_000)


# the text of an element as the browser broke it into lines
LINES = """el => { const lines = []; let top = null;
    const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node; (node = walk.nextNode());) for (let i = 0; i < node.length; i++) {
        const range = document.createRange(); range.setStart(node, i); range.setEnd(node, i + 1);
        const rect = range.getClientRects()[0];
        if (!rect) continue;
        if (top === null || rect.top > top + 2) { lines.push(""); top = rect.top; }
        lines[lines.length - 1] += node.data[i]; }
    return lines; }"""


def rerun(pg) -> None:
    """Run again, and wait for the new run's thumbnails (the counts line says "images" all along)."""
    first = pg.locator("#gallery .thumbnail-item img").first.get_attribute("src")
    pg.click("#run")
    pg.wait_for_function("src => { const img = document.querySelector('#gallery .thumbnail-item img');"
                         " return img && img.getAttribute('src') !== src; }", arg=first, timeout=RESULT_WAIT)


def captions(pg) -> list[str]:
    return pg.locator("#gallery .thumbnail-item .caption-label").all_inner_texts()


def counts(pg) -> dict[str, int]:
    text = pg.locator(COUNTS).inner_text()
    out = {"images": int(re.search(r"(\d+) images?\b", text).group(1))}
    for kind in ("medical", "non-medical", "uncertain"):
        m = re.search(rf"(\d+) {kind}", text.replace("non-medical", "nonmed")) if kind == "medical" else \
            re.search(rf"(\d+) {kind}", text)
        out[kind] = int(m.group(1)) if m else 0
    return out


def check_caption(text: str, labels: list[str], source: str, p_medical: float | None = None) -> str:
    """A caption is "medical 99% · ultrasound 55% · where" (non-medical: how sure it is not medical; uncertain:
    "uncertain (medical 62%)"); returns the verdict."""
    sure, label_conf, where = (part.strip() for part in text.split("·", 2))
    # a whole percent, or with decimals when rounding would put it on the threshold (see test_rounding_…)
    m = re.fullmatch(r"(medical|non-medical) (\d{1,3}(?:\.\d+)?)%|uncertain \(medical (\d{1,3}(?:\.\d+)?)%\)", sure)
    assert m, text
    verdict = m.group(1) or "uncertain"
    if p_medical is not None:
        want = (1 - p_medical if verdict == "non-medical" else p_medical) * 100
        assert abs(float(m.group(2) or m.group(3)) - want) <= 0.5, text
    label, conf = label_conf.rsplit(" ", 1)
    assert label in labels and re.fullmatch(r"\d{1,3}%", conf), text
    assert where.startswith(source), text
    return verdict


def toasts(pg) -> list[str]:
    return pg.locator(".toast-body, [data-testid='toast-body']").all_inner_texts()


def no_error_badges(pg) -> bool:
    return pg.get_by_text("Error", exact=True).count() == 0


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_two_images_give_two_labelled_thumbnails_and_a_csv(page, server, tmp_path):
    base, info, tmp = server
    files = [tmp_path / "knee.png", tmp_path / "holiday.png"]
    for i, f in enumerate(files):
        f.write_bytes(picture(i + 1))
    upload(page, files)
    run_and_wait(page)
    caps = captions(page)
    assert len(caps) == 2
    assert counts(page)["images"] == 2
    # classified uploads are linked into the session's own folder (Gradio's shared upload area, where another
    # page may have uploaded the same file, keeps its own until its sweep)
    assert len([p for p in tmp.glob("medimg-pages-*/**/*") if p.name in ("knee.png", "holiday.png")]) == 2

    with page.expect_download() as dl:
        page.click("#csv")
    raw = Path(dl.value.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a byte-order mark: Excel then reads the CSV as UTF-8
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [r["input"] for r in rows] == ["knee.png", "holiday.png"]
    for r in rows:
        assert r["label"] in info["labels"] and r["verdict"] in ("medical", "non-medical", "uncertain")
        assert 0 <= float(r["confidence"]) <= 1 and r["error"] == ""
    # each caption shows how sure the model is that the image is medical (or not): the number the threshold
    # is held against, with the verdict the CSV gives
    for cap, r in zip(caps, rows):
        assert check_caption(cap, info["labels"], r["input"], float(r["p_medical"])) == r["verdict"]
    with page.expect_download() as dl:
        page.click("#json")
    doc = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
    assert [r["input"] for r in doc["results"]] == ["knee.png", "holiday.png"] and "note" not in doc

    # the files stay listed, so the same files can be run again (with other options)
    listed = page.locator("#files").inner_text()
    assert "knee" in listed and "holiday" in listed
    first = page.locator("#gallery .thumbnail-item img").first.get_attribute("src")
    page.click("#run")  # a new run's thumbnails are new files
    page.wait_for_function("src => { const img = document.querySelector('#gallery .thumbnail-item img');"
                           " return img && img.getAttribute('src') !== src; }", arg=first, timeout=RESULT_WAIT)
    page.wait_for_function("document.querySelectorAll('#gallery .thumbnail-item').length == 2", timeout=10_000)
    assert no_error_badges(page)
    # an example in between leaves them listed, and still there to run; the counts line says whose results
    # are shown: the example's (not the files listed), then the files' again
    page.click("button:has-text('Example: scans and photos')")
    page.wait_for_function("document.querySelectorAll('#gallery .thumbnail-item').length == 4", timeout=RESULT_WAIT)
    line = page.locator(COUNTS).inner_text()
    assert line.startswith("4 images in the example “scans and photos” (not your files) ·"), line
    assert "knee" in page.locator("#files").inner_text()
    page.click("#run")
    page.wait_for_function("document.querySelectorAll('#gallery .thumbnail-item').length == 2", timeout=RESULT_WAIT)
    assert no_error_badges(page) and [c.split(" · ")[-1] for c in captions(page)] == ["knee.png", "holiday.png"]
    assert page.locator(COUNTS).inner_text().startswith("2 images ·")
    assert page.outside == []


def test_threshold_and_filter_relabel_without_running_again(page, tmp_path):
    files = [tmp_path / f"img{i}.png" for i in range(4)]
    for i, f in enumerate(files):
        f.write_bytes(picture(i * 3 + 1))
    upload(page, files)
    # the list shows a few files: the line under it counts them all
    page.wait_for_function("document.querySelector('#ready')?.innerText.includes('4 files ready to run')",
                           timeout=10_000)
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


def test_rounding_never_shows_an_uncertain_image_as_sure_as_the_threshold(page, tmp_path):
    """An uncertain image's caption says how sure the model is with the decimals it needs to stay below the
    threshold: at 0.98, p(medical) 0.022 is "uncertain (medical 2.2%)", not "medical 2%" (which reads as
    non-medical 98%, at the threshold, as decided as a non-medical one). The same on the medical side (0.9675 at
    0.97: 96.8%, not 97%)."""
    files = [tmp_path / f"shot{i}.png" for i in range(1, 9)]
    for i, f in enumerate(files, 1):
        f.write_bytes(picture(i))
    upload(page, files)
    run_and_wait(page)
    with page.expect_download() as dl:
        page.click("#csv")
    rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_bytes().decode("utf-8-sig"))))
    # a threshold at which whole percents would show an uncertain image's number on the threshold itself
    cases = []
    for r in rows:
        p = float(r["p_medical"])
        shown = round(p * 100) / 100
        if 0.5 <= p < shown:
            cases.append((r["input"], p, shown))  # "uncertain (medical 97%)" at 0.97
        elif p < 0.5 and shown < p and 1 - shown >= 0.5:
            cases.append((r["input"], p, round(1 - shown, 2)))  # "uncertain (medical 2%)" at 0.98
    assert cases, [r["p_medical"] for r in rows]  # eight pictures: one rounds the wrong way at least
    name, p, t = cases[0]
    number = page.locator("#threshold input[type=number]")
    number.fill(f"{t:.2f}")
    number.press("Enter")
    page.wait_for_function(f"document.querySelector('{COUNTS}').innerText.includes('threshold {t:.2f}')",
                           timeout=20_000)
    cap = next(c for c in captions(page) if c.endswith(" · " + name))
    m = re.match(r"uncertain \(medical (\d{1,3}(?:\.\d+)?)%\)", cap)
    assert m, cap
    assert (1 - t) * 100 < float(m.group(1)) < t * 100, (cap, p, t)
    # the downloads say at which threshold their verdicts were given (the CSV has no column for it)
    for button in ("#csv", "#json"):
        with page.expect_download() as dl:
            page.click(button)
        got = dl.value.suggested_filename
        assert got == f"medimg-results-threshold-{t:g}.{button[1:]}", got


def test_an_opened_images_caption_is_not_under_the_thumbnails_on_a_phone(browser, server, tmp_path):
    """On a phone an opened image's caption wraps onto lines of its own (the file, the web address): the strip
    of thumbnails comes under it, not over its last lines, and the image keeps room above it, also when the
    gallery has a single row."""
    files = [tmp_path / "ward-7_chest-radiograph_follow-up_2026-11-30.png", tmp_path / "b.png"]
    for i, f in enumerate(files):
        f.write_bytes(picture(i + 2))
    ctx = browser.new_context(viewport={"width": 390, "height": 844})
    pg = ctx.new_page()
    pg.goto(server[0] + "/")
    pg.wait_for_selector("#run", timeout=30_000)
    upload(pg, files)
    run_and_wait(pg)
    pg.locator("#gallery .thumbnail-item").first.click()
    pg.wait_for_selector("#gallery .preview caption", timeout=10_000)
    pg.wait_for_timeout(500)
    box = pg.evaluate("""() => { const p = document.querySelector('#gallery .preview');
        const r = e => { const b = e.getBoundingClientRect(); return [b.top, b.bottom]; };
        return {caption: r(p.querySelector('caption')), thumbs: r(p.querySelector('.thumbnails')),
                image: r(p.querySelector('.media-button')), preview: r(p),
                lines: p.querySelector('caption').getClientRects().length,
                text: p.querySelector('caption').innerText}; }""")
    assert files[0].name.replace("-", "") in box["text"].replace("\n", "").replace("-", ""), box
    assert box["caption"][1] <= box["thumbs"][0] + 1, box  # the caption's last line above the thumbnails
    assert box["thumbs"][1] <= box["preview"][1] + 1, box
    assert box["image"][1] - box["image"][0] >= 200, box  # the image itself still shown, not squeezed out
    ctx.close()


def test_an_upload_swept_before_its_run_says_to_add_it_again(page, server, tmp_path):
    """Gradio deletes an upload 15 minutes after it came (docs/server.md): a file dropped, then run after a
    longer interruption, is still listed but gone. The page says so, by the file's name, and what to do; not
    that the file "was not uploaded to this page" with the server's path to it."""
    scan = tmp_path / "ward-round.png"
    scan.write_bytes(picture(4))
    upload(page, [scan])
    href = page.locator("#files a.download-link").first.get_attribute("href")
    kept = Path(href.split("file=", 1)[1])
    assert kept.name == scan.name and kept.is_file()
    kept.unlink()  # as Gradio's sweep of its upload area does
    page.click("#run")
    page.wait_for_function("[...document.querySelectorAll('.toast-body')].some(t => t.innerText.length > 40)",
                           timeout=20_000)  # the message, not only its title
    text = " ".join(toasts(page))
    assert "“ward-round.png” is no longer on the server" in text and "add it again" in text, text
    assert str(server[2]) not in text and "/tmp" not in text, text  # no path of the server's
    assert page.locator(COUNTS).inner_text() == "No results yet."


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
        other = web.add("/case2.html", '<html><body><img src="scan.png" alt="again"></body></html>')
        web.add("/my%20cases.html", '<html><body><img src="scan.png" alt="in a file share"></body></html>')
        spaced = web.url("/my cases.html")  # copied from a file share: a space in it, as browsers take it
        # several addresses, one per line or on one line each with its scheme; a space elsewhere is part of the
        # address (it was split into `…/my` and `https://cases.html`, looked up on the internet); a line that is
        # no address is a problem of its own
        page.fill("#url textarea, #url input", f"{url}  {other}\n{spaced}\nnot an address")
        run_and_wait(page)
        caps = captions(page)
        assert len(caps) == 4, page.locator(COUNTS).inner_text() + page.locator("#problems").inner_text()
        for cap in caps[:2]:
            check_caption(cap, info["labels"], url)
        check_caption(caps[2], info["labels"], other)
        assert web.hits["/case.html"] == 1 and web.hits["/case2.html"] == 1 and web.hits["/my%20cases.html"] == 1
        assert "“not an address” is not a web address" in page.locator("#problems").inner_text()
        assert page.input_value("#url textarea, #url input") == f"{url}\n{other}\n{spaced}\nnot an address"


def test_nothing_found_puts_the_reason_first(page, tmp_path):
    """No empty gallery between the counts line and the table that says why nothing was found."""
    bad = tmp_path / "broken.png"
    bad.write_bytes(picture(3)[:70])
    upload(page, [bad])
    run_and_wait(page)
    assert "0 images" in page.locator(COUNTS).inner_text()
    assert "1 could not be read (why: see below)" in page.locator(COUNTS).inner_text()
    page.locator("#problems").wait_for(state="visible", timeout=10_000)
    assert not page.locator("#gallery").is_visible()


def test_removing_one_of_two_uploads_of_one_name_renames_neither(page, tmp_path):
    """Two scan.png from different folders are scan.png and scan (2).png; with the first taken off the
    list, the other's results are still scan (2).png in the runs after."""
    first, second = tmp_path / "a" / "scan.png", tmp_path / "b" / "scan.png"
    for i, f in enumerate((first, second)):
        f.parent.mkdir()
        f.write_bytes(picture(i + 1, (140 + 160 * i, 100 + 100 * i)))  # 140×100, 300×200
    upload(page, [first, second])
    run_and_wait(page)
    assert [c.split(" · ")[-1] for c in captions(page)] == ["scan.png", "scan (2).png"]
    page.locator("#files .file-preview .label-clear-button").first.click()
    page.wait_for_function("document.querySelector('#ready')?.innerText.includes('1 file ready to run')",
                           timeout=10_000)
    for _ in range(2):
        rerun(page)
        page.wait_for_function("document.querySelectorAll('#gallery .thumbnail-item').length == 1", timeout=10_000)
        assert captions(page)[0].endswith(" · scan (2).png"), captions(page)
        row = page.locator("#table [role=row][data-index='0'] [role=gridcell]").all_inner_texts()
        assert [row[1].strip(), row[7].strip()] == ["scan (2).png", "300×200"], row


def test_a_broken_file_shows_a_plain_error(page, tmp_path):
    good, bad = tmp_path / "fine.png", tmp_path / "broken.png"
    good.write_bytes(picture(2))
    bad.write_bytes(picture(3)[:70])
    upload(page, [bad, good])
    run_and_wait(page)
    assert len(captions(page)) == 1
    problems = page.locator("#problems")
    problems.wait_for(state="visible", timeout=10_000)
    text = problems.inner_text()
    assert "broken.png" in text
    assert "Traceback" not in text and "Error:" not in page.locator("body").inner_text()
    assert "could not be read" in page.locator(COUNTS).inner_text()
    # the tables read well: images numbered from 1 (a failed item takes no number), numbers to 3 places,
    # every header on one line, the problem's columns wide enough to read
    cells = page.locator("#table [role=row][data-index='0'] [role=gridcell]").all_inner_texts()
    assert cells[0].strip() == "1" and cells[2].strip() in ("medical", "non-medical", "uncertain"), cells
    assert re.fullmatch(r"\d\.\d{3}", cells[4].strip()), cells
    lines = page.evaluate("""() => [...document.querySelectorAll('#table, #problems')].flatMap(t =>
        [...t.querySelectorAll('[role=columnheader] .header')].map(h => {
            const range = document.createRange(); range.selectNodeContents(h);
            return [h.innerText.trim(), new Set([...range.getClientRects()].map(r => Math.round(r.top))).size]; }))""")
    assert len(lines) == 11 and all(n == 1 for _, n in lines), lines
    widths = page.evaluate("() => [...document.querySelectorAll('#problems [role=columnheader]')].map(h => h.offsetWidth)")
    assert len(widths) == 3 and min(widths) >= 120, widths


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


def test_a_closed_page_leaves_nothing_behind(browser, server, tmp_path):
    """Thumbnails, downloads and kept uploads sit in the session's own folder (0700, files 0600), never in
    Gradio's cache, and go as soon as the page is closed."""
    base, tmp = server[0], server[2]
    ctx = browser.new_context(accept_downloads=True)
    pg = ctx.new_page()
    pg.goto(base + "/")
    pg.wait_for_selector("#run", timeout=30_000)
    scan = tmp_path / "scan.png"
    scan.write_bytes(picture(4))
    upload(pg, [scan])
    run_and_wait(pg)
    with pg.expect_download():
        pg.click("#csv")
    (pages,) = tmp.glob("medimg-pages-*")
    src = pg.locator("#gallery .thumbnail-item img").first.get_attribute("src")
    session = pages / re.search(re.escape(pages.name) + r"/([0-9a-f]+)/", src).group(1)
    names = {p.name for p in files_under(session)}
    assert {"00000.jpg", "medimg-results-threshold-0.6.csv", "medimg-results-threshold-0.6.json", "scan.png"} <= names
    for p in [session, *session.rglob("*")]:
        assert p.stat().st_mode & 0o777 == (0o700 if p.is_dir() else 0o600), p
    for root in (pages, *tmp.glob("medimg-uploads-*")):
        assert root.stat().st_mode & 0o777 == 0o700, root
    # Gradio copied nothing: every thumbnail, download and upload is only in the session's folder (but for the
    # upload in Gradio's own upload area, which Gradio deletes after UPLOAD_MAX_AGE)
    uploads = list(tmp.glob("medimg-uploads-*"))
    elsewhere = [p for p in files_under(tmp) if session not in p.parents and p.name in names
                 and not any(u in p.parents for u in uploads)]
    assert elsewhere == []

    ctx.close()
    deadline = time.monotonic() + 30
    while session.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not session.exists()


def test_a_closed_pages_session_is_not_in_the_log_and_cannot_be_replayed(browser, server, tmp_path):
    """The access log names no session hash (the heartbeat's path carried it); an event sent with the hash of
    a closed page shows nothing of its results and writes no download; the browser is told to keep no
    thumbnail or download in its cache."""
    from test_server_limits import Page, served_paths

    base, tmp = server[0], server[2]
    ctx = browser.new_context()
    pg = ctx.new_page()
    beats: list[str] = []
    kept: dict[str, str | None] = {}
    pg.on("request", lambda r: beats.append(r.url) if "/heartbeat/" in r.url else None)
    pg.on("response", lambda r: kept.__setitem__(r.url, r.headers.get("cache-control"))
          if "/gradio_api/file=" in r.url else None)
    pg.goto(base + "/")
    pg.wait_for_selector("#run", timeout=30_000)
    scan = tmp_path / "DOE_JANE_1970.png"
    scan.write_bytes(picture(5))
    upload(pg, [scan])
    run_and_wait(pg)
    pg.wait_for_function("[...document.querySelectorAll('#gallery .thumbnail-item img')]"
                         ".every(img => img.complete && img.naturalWidth > 0)", timeout=10_000)
    src = pg.locator("#gallery .thumbnail-item img").first.get_attribute("src")
    session = Path(re.search(r"file=(/.+?)/[0-9a-f]+/\d+\.jpg", src).group(1))
    assert session.is_dir() and tmp in session.parents
    session_hash = beats[0].rsplit("/", 1)[1]
    ctx.close()
    deadline = time.monotonic() + 30
    while session.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not session.exists()
    assert kept and set(kept.values()) == {"no-store"}, kept
    log = server.log.read_text()
    assert "/heartbeat/… HTTP" in log and session_hash not in log
    page = Page(base)
    page.hash = session_hash  # what a log reader would have sent, had the log named it
    answer = page.send("refresh", [None, 0.7, "all", None])
    assert "DOE_JANE" not in json.dumps(answer) and served_paths(answer) == [], answer
    assert not session.exists()


def test_closing_the_page_stops_its_run(browser, server):
    """A run still downloading when its page is closed stops then: nobody is left to see it."""
    from webserver import WebServer

    ctx = browser.new_context()
    pg = ctx.new_page()
    pg.goto(server[0] + "/")
    pg.wait_for_selector("#run", timeout=30_000)
    with WebServer() as web:
        web.slow("/slow.png", b"x" * 2000, interval=0.1)  # 200 s if read to the end
        pg.fill("#url textarea, #url input", web.url("/slow.png"))
        pg.click("#run")
        deadline = time.monotonic() + 60
        while web.sent["/slow.png"] < 5 and time.monotonic() < deadline:  # the download is under way
            time.sleep(0.1)
        assert web.sent["/slow.png"] >= 5, (web.hits, pg.locator(COUNTS).inner_text(), toasts(pg))
        ctx.close()
        deadline = time.monotonic() + 20
        last = -1
        while time.monotonic() < deadline and web.sent["/slow.png"] != last:  # until it stops growing
            last = web.sent["/slow.png"]
            time.sleep(1.5)
        assert web.sent["/slow.png"] == last < 400, last


def test_a_bad_threshold_or_an_empty_run_only_shows_a_toast(page):
    """A threshold typed outside 0.5–1 is brought back into range with a toast, and a run with nothing to
    run is a toast: the results on the page stay, with no error over them."""
    run_and_wait(page, "button:has-text('Example: scans and photos')")
    before = page.locator(COUNTS).inner_text()
    page.click("#run")
    page.wait_for_function("() => [...document.querySelectorAll('.toast-body, [data-testid=toast-body]')]"
                           ".some(t => t.innerText.includes('Drop one or more files'))", timeout=20_000)
    page.wait_for_timeout(500)
    assert len(captions(page)) == 4 and no_error_badges(page)
    assert page.locator(COUNTS).inner_text() == before

    number = page.locator("#threshold input[type=number]")
    for typed, used in (("1.5", "1.00"), ("0.2", "0.50")):
        number.fill(typed)
        number.press("Enter")
        page.wait_for_function(f"document.querySelector('{COUNTS}').innerText.includes('threshold {used}')",
                               timeout=20_000)
        page.wait_for_timeout(300)
        assert float(number.input_value()) == float(used)
        assert any(f"{float(used):g} is used instead of {typed}" in t for t in toasts(page)), toasts(page)
        assert len(captions(page)) == 4 and no_error_badges(page)


def test_files_refused_as_they_are_added_say_why_until_cleared(page, tmp_path):
    """A file over the server's size limit: Gradio adds none of the files dropped with it, and says why in a
    toast that goes after 10 s, leaving a box that says only "Error". The box keeps saying why."""
    from medimg.server.config import ServerConfig

    small, huge = tmp_path / "knee.png", tmp_path / "whole-study.dcm"
    small.write_bytes(picture(1))
    with open(huge, "wb") as f:  # sparse: nothing is written, and the browser refuses it by its size alone
        f.truncate(ServerConfig().max_upload_bytes + 1)
    page.locator("#files input[type=file]").set_input_files([str(small), str(huge)])
    refused = page.locator("#files [data-testid=status-tracker] .error")
    refused.filter(has_text="None of these files were added").wait_for(timeout=20_000)
    page.locator("[data-testid=toast-close]").first.click()  # as it goes by itself
    page.wait_for_function("!document.querySelector('[data-testid=toast-body]')", timeout=10_000)
    text = refused.inner_text()
    assert "whole-study.dcm" in text and "maximum allowed size" in text and "×" in text, text
    assert refused.get_attribute("role") == "alert"
    page.locator("#files button[aria-label=Clear]").click()
    upload(page, [small])
    assert page.locator("#ready").inner_text().strip() == "1 file ready to run"


def test_the_progress_is_never_full_while_a_run_goes(page):
    """One web page whose second image is slow: while it comes, the progress says how many images were
    classified, not "1/1 inputs" at 100% (the run looked finished, or stuck, for as long as the page took)."""
    from webserver import WebServer

    with WebServer() as web:
        web.add("/fast.png", picture(1), "image/png")
        web.slow("/slow.png", b"x" * 2000, interval=0.1)  # 200 s if read to the end
        web.add("/page.html", '<html><body><img src="fast.png"><img src="slow.png"></body></html>')
        page.fill("#url textarea, #url input", web.url("/page.html"))
        page.click("#run")
        deadline = time.monotonic() + 10
        while not web.hits["/page.html"] and time.monotonic() < deadline:
            time.sleep(0.1)
        if not web.hits["/page.html"]:  # a lost click (see test_one_run_at_a_time_…)
            page.click("#run")
        page.wait_for_function("document.querySelector('#counts')?.innerText.includes('1 image classified')",
                               timeout=30_000)
        shown = page.locator("#counts").inner_text()
        assert web.sent["/slow.png"] < 2000, shown  # still going
        assert "100" not in shown and "1/1" not in shown, shown
        page.click("#stop")
        page.wait_for_function(f"document.querySelector('{COUNTS}').innerText.startsWith('Stopped')",
                               timeout=20_000)
    assert counts(page)["images"] == 1


def run_slow(page, web) -> None:
    """Start a run of what is uploaded and an address `web` sends slowly (200 s if read to its end), once the
    address is asked for."""
    web.slow("/slow.png", b"x" * 2000, interval=0.1)
    page.fill("#url textarea, #url input", web.url("/slow.png"))
    page.click("#run")
    deadline = time.monotonic() + 10
    while not web.hits["/slow.png"] and time.monotonic() < deadline:
        time.sleep(0.1)
    if not web.hits["/slow.png"]:  # the click was lost (seen 1 run in 5 under load: no event reached the
        page.click("#run")          # server; a late font swap moving the button is the likely cause)


def test_one_run_at_a_time_and_stop_keeps_what_was_found(page, tmp_path):
    """The button and then Enter in the address box are two events: the second is told a run is going (the page
    beside the buttons, the server in a toast for an event sent anyway), not a second run that would take another
    job slot and delete the first run's kept uploads. Stop ends the run at once, with
    what it found so far, and the uploads stay listed for a re-run."""
    from webserver import WebServer

    scan = tmp_path / "scan.png"
    scan.write_bytes(picture(5))
    upload(page, [scan])
    with WebServer() as web:
        run_slow(page, web)
        deadline = time.monotonic() + 60
        while web.sent["/slow.png"] < 5 and time.monotonic() < deadline:  # the first run is under way
            time.sleep(0.1)
        assert web.sent["/slow.png"] >= 5, (web.hits, page.locator(COUNTS).inner_text(), toasts(page),
                                            page.input_value("#url textarea, #url input"))
        # the progress counts the images, and the inputs read to their end: none yet (scan.png has given its image,
        # but an input counts as read once the next one gives its first: the address has given nothing)
        page.wait_for_function("() => [...document.querySelectorAll('.progress-text')].some(e => "
                               "e.innerText.includes('0/2 inputs read')) && [...document.querySelectorAll("
                               "'.progress-level')].some(e => e.innerText.includes('1 image classified'))",
                               timeout=20_000)
        page.locator("#url textarea, #url input").press("Enter")  # the page says a run is going, and sends nothing
        page.wait_for_function("document.querySelector('#medimg-busy')?.textContent.includes('A run is going')",
                               timeout=20_000)
        # the server holds one run per page too: the event sent anyway (by a script, or a page that missed the run)
        page.evaluate("window.medimgRuns.going.clear()")
        page.locator("#url textarea, #url input").press("Enter")
        page.wait_for_function("() => [...document.querySelectorAll('.toast-body, [data-testid=toast-body]')]"
                               ".some(t => t.innerText.includes('Already running'))", timeout=20_000)
        page.evaluate("window.medimgRuns.going.add('run')")
        assert web.hits["/slow.png"] == 1
        # the threshold and filter changed while the run goes: its results follow them when they come
        number = page.locator("#threshold input[type=number]")
        number.fill("0.5")
        number.press("Enter")
        page.locator("#filter").get_by_text("non-medical", exact=True).click()
        page.click("#stop")
        page.wait_for_function(f"document.querySelector('{COUNTS}').innerText.startsWith('Stopped')",
                               timeout=20_000)
        page.wait_for_function(f"document.querySelector('{COUNTS}').innerText.includes('threshold 0.50')",
                               timeout=20_000)
        c = counts(page)
        page.wait_for_function(f"document.querySelectorAll('#gallery .thumbnail-item').length == {c['non-medical']}",
                               timeout=20_000)
        assert all(cap.startswith("non-medical") for cap in captions(page)), captions(page)
        page.locator("#filter").get_by_text("all", exact=True).click()
        page.wait_for_function("document.querySelectorAll('#gallery .thumbnail-item').length == 1", timeout=20_000)
        last, deadline = -1, time.monotonic() + 20
        while time.monotonic() < deadline and web.sent["/slow.png"] != last:  # until it stops growing
            last = web.sent["/slow.png"]
            time.sleep(1.5)
        assert web.sent["/slow.png"] == last < 400 and web.hits["/slow.png"] == 1
    assert counts(page)["images"] == 1 and len(captions(page)) == 1  # scan.png came first
    with page.expect_download() as dl:  # a stopped run's download says it may not hold everything
        page.click("#json")
    doc = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
    assert doc["note"] == "stopped with Stop: these are the results found until then", doc
    assert "scan" in page.locator("#files").inner_text()  # still listed, and still there to run again
    assert not [t for t in toasts(page) if "No such file" in t or "rror" in t], toasts(page)
    page.fill("#url textarea, #url input", "")
    run_and_wait(page)
    assert counts(page)["images"] == 1 and no_error_badges(page)


def test_readable_results_on_a_phone_and_for_a_screen_reader(browser, server, tmp_path):
    """Captions wrap (the file name shows), the verdict and the reason a file was passed over come first in
    their tables, the counts line is a polite live region, and the run button's text is readable (≥ 4.5:1)."""
    ctx = browser.new_context(viewport={"width": 390, "height": 844})
    pg = ctx.new_page()
    pg.goto(server[0] + "/")
    pg.wait_for_selector("#run", timeout=30_000)
    # set by the page's load event, which may come a moment after the button is drawn
    pg.wait_for_function(f"document.querySelector('{COUNTS}').getAttribute('aria-live') === 'polite'",
                         timeout=10_000)
    text_only = tmp_path / "minutes-of-the-meeting.pdf"
    import pymupdf

    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "No pictures here.")
    text_only.write_bytes(doc.tobytes())
    photo = tmp_path / "a-rather-long-file-name-of-a-scan.png"
    photo.write_bytes(picture(6))
    upload(pg, [text_only, photo])
    run_and_wait(pg)
    keys = pg.evaluate("() => [...document.querySelectorAll('[aria-label], [title]')].map(e => "
                       "e.getAttribute('aria-label') || e.getAttribute('title')).filter(t => /^[a-z_]+\\.[a-z_.]+$/.test(t))")
    assert keys == [], keys  # no control is named by an untranslated Gradio key such as common.upload
    line = pg.locator(COUNTS).inner_text()
    assert "1 image ·" in line and "1 passed over" in line, line
    cap = pg.locator("#gallery .thumbnail-item .caption-label").first
    assert cap.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), cap.inner_text()
    assert "a-rather-long-file-name-of-a-scan.png" in cap.inner_text()
    box = cap.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    pg.wait_for_function("document.querySelectorAll('#table [role=columnheader] .header').length == 8 && "
                         "document.querySelectorAll('#problems [role=columnheader] .header').length == 3 && "
                         "document.querySelector('#problems [role=row][data-index=\"0\"]')", timeout=10_000)
    heads = pg.locator("#table [role=columnheader] .header").all_inner_texts()
    assert [h.strip() for h in heads[:3]] == ["#", "file", "verdict"], heads
    heads = pg.locator("#problems [role=columnheader] .header").all_inner_texts()
    assert [h.strip() for h in heads] == ["file", "why", "where"], heads
    row = pg.locator("#problems [role=row][data-index='0'] [role=gridcell]").all_inner_texts()
    assert "minutes-of-the-meeting.pdf" in row[0] and "no images" in row[1].lower(), row
    ratio = pg.evaluate("""() => {
        const lum = c => { const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(v => v / 255).map(v =>
            v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
        const ratio = (fg, bg) => { const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
            return (a + 0.05) / (b + 0.05); };
        const run = getComputedStyle(document.querySelector('#run'));
        const info = getComputedStyle(document.querySelector('#threshold .info-text'));
        return [ratio(run.color, run.backgroundColor), ratio(info.color, 'rgb(255, 255, 255)')]; }""")
    assert min(ratio) >= 4.5, ratio  # the run button, and the threshold's help text on white
    ctx.close()


def test_what_a_screen_reader_hears_and_the_keyboard_does(browser, server, tmp_path):
    """From an accessibility audit (axe-core and by hand, WCAG 2.1 AA): the results line is the live region, not
    Gradio's progress timer beside it; no empty gallery box; a thumbnail is named by its caption, not "Thumbnail
    1 of 2"; "Show" is one radio group with a name (arrow keys move in it); "Add files" is one Tab stop; the
    upload box reads as its name says; no untranslated key is read out; a warning stays until closed."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    pg.goto(server[0] + "/")
    pg.wait_for_selector("#run", timeout=30_000)
    pg.wait_for_function(f"document.querySelector('{COUNTS}').getAttribute('role') === 'status'", timeout=10_000)
    assert pg.evaluate("() => document.querySelector('#counts').getAttribute('aria-live')") is None
    assert pg.evaluate("() => document.querySelector('#counts [data-testid=status-tracker]')"
                       ".getAttribute('aria-hidden')") == "true"
    assert not pg.locator("#gallery").is_visible()
    assert " ".join(pg.locator("#files").inner_text().split()).endswith("Click to upload - or - drop files")
    pg.click("#run")  # nothing to run: a warning, which stays
    pg.wait_for_function("() => [...document.querySelectorAll('.toast-body, [data-testid=toast-body]')]"
                         ".some(t => t.innerText.includes('Drop one or more files'))", timeout=10_000)
    warned = time.monotonic()
    files = [tmp_path / "knee.png", tmp_path / "chart.png"]
    for i, f in enumerate(files):
        f.write_bytes(picture(i + 20))
    upload(pg, files)
    outer = pg.locator('#files button[aria-label="Add files"]').first
    assert outer.evaluate("b => b.tabIndex") == -1 and outer.locator("button").get_attribute("aria-label") == \
        "Add files"
    run_and_wait(pg)
    names = pg.evaluate("() => [...document.querySelectorAll('#gallery .thumbnail-item')].map(b => "
                        "[b.getAttribute('aria-label'), b.querySelector('img').getAttribute('alt')])")
    caps = captions(pg)
    assert [n for n, _ in names] == [f"{c} (image {i} of 2)" for i, c in enumerate(caps, 1)], (names, caps)
    assert [alt for _, alt in names] == ["", ""]  # said once, by the button
    group = pg.locator("#filter")
    assert group.get_attribute("role") == "radiogroup"
    assert pg.evaluate("() => document.getElementById(document.getElementById('filter')"
                       ".getAttribute('aria-labelledby')).innerText.trim()") == "Show"
    assert set(pg.evaluate("() => [...document.querySelectorAll('#filter input[type=radio]')].map(r => r.name)")) \
        == {"medimg-filter"}
    group.locator("input[type=radio]").first.focus()
    pg.keyboard.press("ArrowRight")  # "all" → "medical": chosen, and the results follow
    ring = pg.evaluate("() => { const s = getComputedStyle(document.activeElement); "
                       "return [document.activeElement.value, s.outlineStyle, s.outlineWidth]; }")
    assert ring == ["medical", "solid", "2px"], ring  # the checked radio showed no focus at all
    ratios = pg.evaluate("""() => {
        const lum = c => { const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(v => v / 255).map(v =>
            v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
        const ratio = fg => (1.05) / (lum(fg) + 0.05);  // on white
        const url = document.querySelector('#url textarea, #url input');
        return [ratio(getComputedStyle(url, '::placeholder').color), ratio(getComputedStyle(url).borderTopColor),
                ratio(getComputedStyle(document.querySelector('#filter input[type=radio]')).borderTopColor)]; }""")
    assert ratios[0] >= 4.5 and min(ratios[1:]) >= 3, ratios  # placeholder text; the box's and radios' borders
    pg.wait_for_function("() => document.querySelector('#filter input[type=radio]:checked')?.value === 'medical'",
                         timeout=10_000)
    pg.wait_for_function(f"() => document.querySelector('{COUNTS}').innerText.includes('showing the ')",
                         timeout=10_000)
    assert "common." not in pg.evaluate("() => document.body.textContent")  # Gradio's status: "Done"
    time.sleep(max(0.0, 11 - (time.monotonic() - warned)))  # Gradio's toasts went after 10 s
    assert any("Drop one or more files" in t for t in toasts(pg)), toasts(pg)
    ctx.close()


def test_a_phone_shows_each_result_whole_and_scrolls_as_one_page(browser, server, tmp_path):
    """At 390 px each image's row shows its file on a line of its own and its verdict, label and p(medical)
    under it (and where in its file on a line of its own, when it has a place), all inside the table (nothing
    scrolls sideways); the captions wrap, a web address too; the gallery and the table scroll with the page, not in
    boxes of their own. At 1280 px the table keeps its
    eight columns and widths, and the gallery its height."""
    from webserver import WebServer

    files = []
    for i in range(8):
        files.append(tmp_path / f"series_{i}_axial.png")
        files[-1].write_bytes(picture(i + 1))
    with WebServer() as web:
        web.add("/a.png", picture(9), "image/png")
        web.add("/b.png", picture(10), "image/png")
        url = web.add("/cases/2024/chest-study-of-the-week.html",
                      '<html><body><img src="/a.png"><img src="/b.png"></body></html>')
        for width, height in ((390, 844), (1280, 800)):
            ctx = browser.new_context(viewport={"width": width, "height": height})
            pg = ctx.new_page()
            pg.goto(server[0] + "/")
            pg.wait_for_selector("#run", timeout=30_000)
            upload(pg, files)
            pg.fill("#url textarea, #url input", url)
            run_and_wait(pg)
            assert len(captions(pg)) == 10
            pg.wait_for_function("document.querySelectorAll('#table [role=row][data-index]').length == 10",
                                 timeout=10_000)
            if width == 1280:
                heads = pg.evaluate("() => [...document.querySelectorAll('#table [role=columnheader]')]"
                                    ".map(h => h.offsetWidth)")
                assert heads == [48, 200, 112, 112, 176, 112, 236, 104], heads
                # the confidence is the label's, not the verdict's: its header says so, shown whole
                names = pg.evaluate("() => [...document.querySelectorAll('#table [role=columnheader]')]"
                                    ".map(h => [h.innerText.replace(/\\s+/g, ' ').trim(), h.scrollWidth <= h.clientWidth + 1])")
                assert [n for n, _ in names][3:6] == ["label", "label confidence", "p(medical)"], names
                assert all(whole for _, whole in names), names
                assert pg.evaluate("getComputedStyle(document.querySelector('#gallery .grid-wrap')).maxHeight")\
                    == "640px"  # 80vh
                ctx.close()
                continue
            assert pg.evaluate("document.documentElement.scrollWidth") <= width
            # each row: the file, verdict, label and p(medical) shown whole within the table; the rest left out
            cells = pg.evaluate("""() => {
                const box = document.querySelector('#table .table-wrap').getBoundingClientRect();
                return [...document.querySelectorAll('#table [role=row][data-index]')].map(row =>
                    [...row.querySelectorAll('[role=gridcell]')].map(c => { const r = c.getBoundingClientRect();
                        return c.offsetWidth === 0 ? null : [c.innerText.trim(), r.left >= box.left - 1 &&
                            r.right <= box.right + 1 && c.scrollWidth <= c.clientWidth + 1, Math.round(r.top)];
                    })); }""")
            for row in cells:
                on_page = row[1][0] == url  # an image of the web page: where on it, on a line of its own (s38)
                assert [c is None for c in row] == [True, False, False, False, True, False, not on_page, True], row
                assert not on_page or (row[6][0].startswith("img #") and row[6][1] and row[6][2] > row[5][2]), row
                file, verdict, label, sure = (row[i] for i in (1, 2, 3, 5))
                assert all(c[1] for c in (file, verdict, label, sure)), row
                assert file[2] < verdict[2] == label[2] == sure[2], row  # the file on a line above the rest
                assert verdict[0] in ("medical", "non-medical", "uncertain") and re.fullmatch(r"\d\.\d{3}", sure[0])
            assert {row[1][0] for row in cells} >= {f.name for f in files}
            assert pg.evaluate("(() => { const v = document.querySelector('#table .virtual-table-viewport');"
                               " return v.scrollWidth <= v.clientWidth + 1; })()")
            heads = pg.evaluate("() => [...document.querySelectorAll('#table [role=columnheader]')]"
                                ".filter(h => h.offsetWidth > 0).map(h => h.innerText.trim())")
            assert heads == ["file", "verdict", "label", "p(medical)"], heads
            # every caption whole within its thumbnail, the web address too
            out = pg.evaluate("""() => [...document.querySelectorAll('#gallery .thumbnail-item')].map(item => {
                const cap = item.querySelector('.caption-label'), r = cap.getBoundingClientRect(),
                      box = item.getBoundingClientRect();
                return [cap.innerText, r.left >= box.left - 1 && r.right <= box.right + 1 && r.bottom <= box.bottom + 1
                        && cap.scrollWidth <= cap.clientWidth + 1]; })""")
            assert sum(url in text for text, _ in out) == 2 and all(whole for _, whole in out), out
            # no box to scroll in: a swipe over the gallery or the table scrolls the page
            assert pg.locator("#gallery").bounding_box()["height"] > 0.8 * height  # taller than its box was
            boxes = pg.evaluate("""() => [...document.querySelectorAll('#gallery *, #table *')].filter(e =>
                ['auto', 'scroll'].includes(getComputedStyle(e).overflowY) && e.scrollHeight > e.clientHeight + 1)
                .map(e => e.className)""")
            assert boxes == [], boxes
            ctx.close()


def test_file_names_wrap_where_they_may(page, tmp_path):
    """A long file name wraps after / _ - : or before a dot, not mid-word, in the table of images and in
    the table of problems; a name is shown as text, never as markup. One with nowhere to break (a DICOM UID)
    wraps inside an opened image's details, not past the box's right edge."""
    import zipfile

    long_name = tmp_path / "ultrasound_liverlongitudinal_2024-03-01.png"
    long_name.write_bytes(picture(2))
    uid = tmp_path / ("1.2.826.0.1.3680043.8.498." + "1049933852873457" * 9 + ".png")
    uid.write_bytes(picture(5))
    bad = tmp_path / "broken_transverse_sectionseries_0001.png"
    bad.write_bytes(picture(3)[:70])
    odd = "<img src=x onerror=window.pwned=1>.png"
    pack = tmp_path / "pack.zip"
    with zipfile.ZipFile(pack, "w") as z:
        z.writestr(odd, picture(4))
    upload(page, [long_name, bad, pack, uid])
    run_and_wait(page)
    page.wait_for_selector("#problems [role=row][data-index='0']", timeout=10_000)
    names = {}
    for table in ("#table", "#problems"):
        for cell in page.locator(f"{table} [role=row][data-index] [data-col='{1 if table == '#table' else 0}']").all():
            names[cell.inner_text().strip()] = cell.evaluate(LINES)
    assert set(names) == {long_name.name, bad.name, f"pack.zip:{odd}", uid.name}, names
    assert page.evaluate("window.pwned") is None
    for name in (long_name.name, bad.name):
        lines = names[name]
        assert "".join(lines) == name and len(lines) > 1, lines
        for line, after in zip(lines, lines[1:]):
            assert line[-1] in "/_-:" or after[0] == ".", lines
    page.locator("#gallery .thumbnail-item[aria-label*='1.2.826']").click()
    page.wait_for_function("document.querySelector('#details')?.innerText.includes('1.2.826')", timeout=10_000)
    value = page.locator("#details [role=row][data-index] [data-col='1']").first
    assert value.inner_text().strip() == uid.name and len(value.evaluate(LINES)) > 1
    box = page.locator("#details").bounding_box()
    cells = [c.bounding_box() for c in page.locator("#details [role=row] [data-col]").all()]
    assert cells and all(c["x"] + c["width"] <= box["x"] + box["width"] + 1 for c in cells), (box, cells)


def test_nothing_is_left_after_the_server_stops(server):
    """Last in this file: stopping the server removes every temporary file it made (Gradio's uploads, the
    pages' folders, the examples)."""
    tmp = server[2]
    assert list(tmp.glob("medimg-examples-*")) and list(tmp.glob("medimg-uploads-*"))
    server.stop()
    left = [p for p in files_under(tmp) if not p.name.startswith(".")]  # (onnxruntime's .ses is not ours)
    assert left == [] and not list(tmp.glob("medimg-*")), left
