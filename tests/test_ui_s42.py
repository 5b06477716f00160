"""The page's workflows as a clinician or data curator uses them (s42 review): `medimg serve` in real Chromium, with
the server and browser of test_ui_browser."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

import test_ui_browser
from test_ui_browser import captions, picture, rerun, run_and_wait, upload

server, browser, page = test_ui_browser.server, test_ui_browser.browser, test_ui_browser.page  # its fixtures

pytestmark = pytest.mark.browser

FILES = "() => [...document.querySelectorAll('#table [role=row][data-index] [data-col=\"1\"]')].map(c => c.innerText)"


def test_results_go_by_the_files_own_names_even_where_gradio_stores_them_otherwise(page, tmp_path):
    """Gradio stores an upload under a name of at most 200 bytes, without ? ! $ { } : * " < > |: the table, the
    captions and the downloads said "knee L x-ray.png" (and a long Japanese name cut short), names found nowhere in
    the user's folder, where the API and the CLI give the file's own. They now go by the name the browser sent,
    in a re-run too."""
    names = ["knee {L} x-ray?!.png", "胸部X線_正面像_" + "経過観察" * 16 + ".png"]  # the second: 215 bytes
    assert len(names[1].encode()) > 200
    files = []
    for i, name in enumerate(names):
        files.append(tmp_path / name)
        files[-1].write_bytes(picture(i + 1))
    upload(page, files)
    run_and_wait(page)
    for _ in range(2):  # the run, then a re-run of the files the page kept
        page.wait_for_function("document.querySelectorAll('#table [role=row][data-index]').length == 2")
        assert sorted(c.replace("\n", "").replace("\u200b", "") for c in page.evaluate(FILES)) == sorted(names)
        assert sorted(c.rsplit(" · ", 1)[1] for c in captions(page)) == sorted(names)
        with page.expect_download() as dl:
            page.click("#csv")
        rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text(encoding="utf-8-sig"))))
        assert sorted(r["input"] for r in rows) == sorted(names)
        rerun(page)


def test_files_added_or_removed_while_a_run_goes_stay_so_when_it_ends(browser, server, tmp_path):
    """The file box stays open while a run goes, and a curator adds the next files (or removes one) meanwhile; when
    the run ended, the page put back the list the run had started with: the files added were gone without a word,
    and one removed came back. The list is now as the user left it (the run's own files swapped for the copies
    kept for a re-run), and a re-run reads it. (A page of its own, as in test_ui_s39: the `page` fixture's routing
    holds a run's event stream.)"""
    from test_ui_s39 import start_slow
    from test_ui_browser import COUNTS
    from webserver import WebServer

    files = {name: tmp_path / f"{name}.png" for name in ("first", "added", "also_added")}
    for i, f in enumerate(files.values()):
        f.write_bytes(picture(i + 1))
    ctx = browser.new_context()
    pg = ctx.new_page()
    pg.goto(server[0] + "/")
    pg.wait_for_selector("#run", timeout=30_000)
    listed = ("() => [...document.querySelectorAll('#files .file-preview .filename')]"
              ".map(e => e.innerText.replace(/\\s/g, ''))")
    upload(pg, [files["first"]])
    with WebServer() as web:
        start_slow(pg, web)  # the run reads first.png and then a slow download
        pg.locator("#files input[type=file]").set_input_files([str(files["added"]), str(files["also_added"])])
        pg.wait_for_function("document.querySelector('#ready')?.innerText.includes('3 files ready')", timeout=30_000)
        pg.locator("#files .file-preview tr", has_text="first").get_by_role("button", name="Remove first.png").click()
        pg.wait_for_function("document.querySelector('#ready')?.innerText.includes('2 files ready')", timeout=30_000)
        pg.click("#stop")
        pg.wait_for_function(f"document.querySelector('{COUNTS}').innerText.startsWith('Stopped')", timeout=30_000)
    pg.wait_for_timeout(500)  # the run's end has reached the file list
    assert pg.evaluate(listed) == ["added.png", "also_added.png"]
    pg.fill("#url textarea", "")
    pg.click("#run")
    pg.wait_for_function(f"document.querySelector('{COUNTS}').innerText.startsWith('2 images')", timeout=60_000)
    assert sorted(c.rsplit(" · ", 1)[1] for c in captions(pg)) == ["added.png", "also_added.png"]
    ctx.close()
