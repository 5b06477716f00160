"""The page's flows as a clinician or curator uses them (s45 review): `medimg serve` in real Chromium, with the
server and browser of test_ui_browser; and the names the page gives uploads, in Python."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pytest

import test_ui_browser
from medimg.server.ui import _given_name, _listed_now, _names
from test_ui_browser import COUNTS, captions, picture, run_and_wait, upload

server, browser, page = test_ui_browser.server, test_ui_browser.browser, test_ui_browser.page  # its fixtures

FILES = "() => [...document.querySelectorAll('#table [role=row][data-index] [data-col=\"1\"]')].map(c => c.innerText)"
PROBLEMS = """() => [...document.querySelectorAll('#problems [role=row][data-index]')]
  .map(r => [0, 1].map(i => r.querySelector(`[data-col="${i}"]`).innerText.trim()))"""
# each listed file's stem's lines (the boxes of its text, one a line) and its extension's box
PARTS = """() => [...document.querySelectorAll('#files .file-preview td.filename')].map(td => {
  const range = document.createRange(); range.selectNodeContents(td.querySelector('.stem'));
  const ext = td.querySelector('.ext').getBoundingClientRect();
  return {lines: [...range.getClientRects()].map(r => [r.top, r.right]), ext: [ext.top, ext.left]}; })"""


def test_a_name_with_a_double_quote_keeps_it():
    """Chromium sends a file's " as %22 in the upload's form (HTML's multipart encoding), and Gradio stores the file
    so: the table, captions and downloads said `patient %22A%22.png`."""
    assert _given_name(Path("/up/abc/patient %22A%22.png"), 'patient "A".png') == 'patient "A".png'
    assert _given_name(Path("/up/abc/patient A.png"), 'patient "A".png') == 'patient "A".png'  # a client's raw "
    assert _given_name(Path("/up/abc/other.png"), 'patient "A".png') == "other.png"


def test_a_file_added_twice_stays_listed_twice_under_its_names(tmp_path):
    """The same file added twice (or two files of one name and content: Gradio stores them at one path) ran as
    scan.png and scan (2).png; after the run the list held one of them, and a re-run called it scan (2).png."""
    upload_root, folder = tmp_path / "gradio", tmp_path / "session"
    p = upload_root / "abc123" / "scan.png"
    p.parent.mkdir(parents=True)
    p.write_bytes(picture(1))
    kept = []
    for name in _names([p, p], folder):
        kept.append(folder / "uploads-1" / f"as {name}" / "scan.png")
        kept[-1].parent.mkdir(parents=True)
        kept[-1].write_bytes(p.read_bytes())
    now = _listed_now([p, p], kept, [p, p], upload_root, folder)
    assert now == kept
    assert _names(now, folder) == ["scan.png", "scan (2).png"]


@pytest.mark.browser
def test_a_long_name_reads_whole_in_the_file_list_and_a_quote_stays_in_the_results(page, tmp_path):
    """A wrapped name's extension came after its first line ("patient_very_long_de.png", then the rest of the
    name under it), as if that were the file's name; it now ends the name's last line. A short name keeps its
    extension beside it, with no space. And a name with " goes by it in the results (not %22)."""
    long_name = 'patient "A" ' + "very_long_descriptive_name_" * 6 + "chest.png"
    files = [tmp_path / long_name, tmp_path / "knee.png"]
    for i, f in enumerate(files):
        f.write_bytes(picture(i + 1))
    upload(page, files)
    long_parts, short = page.evaluate(PARTS)
    lines = long_parts["lines"]
    assert len(lines) > 1, long_parts  # the name wraps in the list
    assert long_parts["ext"][0] >= lines[-1][0] - 1, long_parts  # on (or under) the last line, not beside the first
    assert len(short["lines"]) == 1 and abs(short["ext"][1] - short["lines"][0][1]) <= 1, short  # "knee.png"
    run_and_wait(page)
    page.wait_for_function("document.querySelectorAll('#table [role=row][data-index]').length == 2")
    assert sorted(c.replace("\n", "").replace("\u200b", "") for c in page.evaluate(FILES)) == sorted(
        [long_name, "knee.png"])
    assert sorted(c.rsplit(" · ", 1)[1] for c in captions(page)) == sorted([long_name, "knee.png"])


@pytest.mark.browser
def test_what_a_stopped_run_never_came_to_is_listed_as_not_read(page, tmp_path):
    """Stop in the middle of a batch: the files and addresses the run never came to were left out of the page and
    the downloads without a word ("Stopped: 1 image"), so a curator could not tell which to run again. Each now has
    a row of its own in the problems table and the CSV; what was found before stays shown."""
    from webserver import WebServer

    scan = tmp_path / "scan.png"
    scan.write_bytes(picture(5))
    upload(page, [scan])
    with WebServer() as web:
        web.slow("/slow.png", b"x" * 2000, interval=0.1)
        web.add("/after.png", picture(6), "image/png")
        slow, after = web.url("/slow.png"), web.url("/after.png")
        page.fill("#url textarea", f"{slow}\n{after}")
        page.click("#run")
        deadline = time.monotonic() + 30
        while web.sent["/slow.png"] < 3 and time.monotonic() < deadline:  # the run is in its slow address
            time.sleep(0.1)
        assert web.sent["/slow.png"] >= 3, page.locator(COUNTS).inner_text()
        page.click("#stop")
        page.wait_for_function(f"document.querySelector('{COUNTS}').innerText.startsWith('Stopped')",
                               timeout=20_000)
    page.wait_for_function("document.querySelectorAll('#problems [role=row][data-index]').length == 2",
                           timeout=10_000)
    rows = [[c.replace("\u200b", "") for c in r] for r in page.evaluate(PROBLEMS)]
    why = "not read: the run was stopped before it"
    assert rows == [[slow, why], [after, why]]
    page.wait_for_function("document.querySelectorAll('#gallery .thumbnail-item').length == 1", timeout=10_000)
    assert [c.rsplit(" · ", 1)[1] for c in captions(page)] == ["scan.png"]
    assert "2 could not be read" in page.locator(COUNTS).inner_text()
    with page.expect_download() as dl:
        page.click("#csv")
    got = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text(encoding="utf-8-sig"))))
    assert [(r["input"], r["error"]) for r in got] == [("scan.png", ""), (slow, rows[0][1]), (after, rows[1][1])]
