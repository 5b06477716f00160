"""The page as a clinician or curator uses it (s48 review): `medimg serve` in real Chromium, with the server and
browser of test_ui_browser; and the counts line, in Python."""

from __future__ import annotations

import time

import pytest

import test_ui_browser
from medimg.pipeline import Record
from medimg.server.ui import _counts
from test_ui_browser import COUNTS, picture, run_and_wait, upload

server, browser, page = test_ui_browser.server, test_ui_browser.browser, test_ui_browser.page  # its fixtures

SHOWN = "sel => { const e = document.querySelector(sel); return !!e && e.checkVisibility({visibilityProperty: true}); }"


def _image(name: str) -> Record:
    return Record(input=name, locator="", label="photo", confidence=0.9, p_medical=0.05, verdict="non-medical",
                  width=10, height=10)


def test_an_input_cut_short_is_not_called_passed_over():
    """A 600-page PDF read to its 500-page cap: the counts line said "1 passed over (no image in it, or too small to
    matter)", so a curator would not look at why; it says the input was not read to its end."""
    cut = Record(input="atlas.pdf", locator="", error="read only the first 500 of 600 pages (max_pdf_pages)",
                 skipped=True)
    empty = Record(input="notes.txt", locator="", error="skipped: not an image or a supported container", skipped=True)
    text = _counts([_image("atlas.pdf"), cut], 0.6)
    assert "1 not read to the end (why: see below)" in text and "passed over" not in text, text
    text = _counts([_image("atlas.pdf"), cut, empty], 0.6)
    assert "1 not read to the end" in text and "1 passed over (no image in it" in text, text
    text = _counts([_image("a.png"), empty], 0.6)
    assert "not read to the end" not in text and "1 passed over" in text, text


@pytest.mark.browser
def test_a_new_runs_page_shows_none_of_the_last_runs_tables_while_it_goes(page, tmp_path):
    """While a second run went (files replaced), the gallery was under its progress but the last run's table, its
    problems and an opened image's details stayed on the page as they were, as if they were the new run's."""
    from webserver import WebServer

    good, broken = tmp_path / "knee.png", tmp_path / "broken.png"
    good.write_bytes(picture(2))
    broken.write_bytes(picture(3)[:200])
    upload(page, [good, broken])
    run_and_wait(page)
    page.locator("#gallery .thumbnail-item").first.click()
    page.wait_for_function(SHOWN, arg="#details", timeout=10_000)
    for part in ("#table", "#problems", "#details"):
        assert page.evaluate(SHOWN, part), part
    page.locator("#files button[aria-label=Clear]").first.click()
    # the files' clearing has been taken (a Run pressed while its event goes can be held back as a run going)
    page.wait_for_function("!document.querySelector('#ready')?.innerText.includes('ready to run')", timeout=30_000)
    with WebServer() as web:
        web.slow("/slow.png", b"x" * 2000, interval=0.1)
        page.fill("#url textarea", web.url("/slow.png"))
        page.click("#run")
        pressed = time.monotonic()
        deadline = pressed + 40
        while web.sent["/slow.png"] < 3 and time.monotonic() < deadline:  # the run is in its slow address
            if not web.hits["/slow.png"] and time.monotonic() - pressed > 10:
                page.click("#run")  # pressed again only when the press was held back (no request in 10 s)
                pressed = time.monotonic()
            time.sleep(0.1)
        assert web.sent["/slow.png"] >= 3, (web.hits, page.locator(COUNTS).inner_text())
        for part in ("#table", "#problems", "#details"):  # hidden while the run goes (the page may lag its start)
            page.wait_for_function(f"sel => !({SHOWN})(sel)", arg=part, timeout=10_000)
        page.click("#stop")
        page.wait_for_function(f"document.querySelector('{COUNTS}').innerText.startsWith('Stopped')",
                               timeout=20_000)
    # the new run's problem (its address, not read) shows again once the run is over
    page.wait_for_function(SHOWN, arg="#problems", timeout=10_000)
    assert "slow.png" in page.locator("#problems").inner_text()
