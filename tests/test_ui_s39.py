"""The page as a user drives it (s39 review): a click while a run goes, Stop on a phone, the address box's Enter;
`medimg serve` in real Chromium, with the server and browser of test_ui_browser."""

from __future__ import annotations

import time

import pytest

import test_ui_browser
from test_ui_browser import COUNTS, picture, run_and_wait, toasts, upload

server, browser, page = test_ui_browser.server, test_ui_browser.browser, test_ui_browser.page  # its fixtures

pytestmark = pytest.mark.browser

NOTE = "document.querySelector('#medimg-busy')?.textContent || ''"  # the page's word beside Run and Stop
# where Stop is on the screen, and whether a click at its middle reaches it (nothing covers it)
STOP = """() => { const r = document.querySelector('#stop').getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return {top: r.top, bottom: r.bottom, height: innerHeight, reached: !!hit?.closest('#stop')}; }"""


def start_slow(pg, web, hits: int = 1) -> None:
    """Run what is listed with an address `web` sends slowly (200 s if read to its end); back once it is read."""
    web.slow("/slow.png", b"x" * 2000, interval=0.1)
    pg.fill("#url textarea", web.url("/slow.png"))
    pg.click("#run")
    deadline = time.monotonic() + 60
    while web.sent["/slow.png"] < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert web.hits["/slow.png"] == hits and web.sent["/slow.png"] >= 5, (web.hits, toasts(pg))


def test_run_while_a_run_goes_is_told_and_after_stop_it_runs(browser, server):
    """Run clicked (or Enter pressed) while a run went did nothing and said nothing: Gradio drops a click on an event
    still going. Now the page says a run is going. Run clicked right after Stop, before the stopped run has ended
    (about 50 ms), was dropped the same way: it now starts once that run has ended. (A page of its own: the
    `page` fixture's routing held the new run's event stream for seconds.)"""
    from webserver import WebServer

    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(server[0] + "/")
    page.wait_for_selector("#run", timeout=30_000)
    with WebServer() as web:
        start_slow(page, web)
        page.click("#run")
        page.wait_for_function(f"({NOTE}).includes('A run is going')", timeout=5_000)
        note = page.locator("#medimg-busy")
        assert note.get_attribute("role") == "status" and note.is_visible()
        page.locator("#url textarea").press("Enter")  # the same, and no line is added
        assert "\n" not in page.input_value("#url textarea")
        time.sleep(0.5)
        assert web.hits["/slow.png"] == 1 and not [t for t in toasts(page) if "Already" in t], toasts(page)

        page.click("#stop")
        page.click("#run")  # within a few ms of Stop: the stopped run has not ended yet
        deadline = time.monotonic() + 10
        while web.hits["/slow.png"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert web.hits["/slow.png"] == 2, (page.evaluate(NOTE), toasts(page))
        page.wait_for_function(f"({NOTE}) === ''", timeout=5_000)  # the note goes as the new run starts
        page.click("#stop")
        page.wait_for_function(f"document.querySelector('{COUNTS}').innerText.startsWith('Stopped')",
                               timeout=20_000)
        page.wait_for_timeout(600)
        assert web.hits["/slow.png"] == 2  # run once, not again and again
    ctx.close()


def test_a_phone_shows_the_progress_and_keeps_stop_on_the_screen(browser, server, tmp_path):
    """At 390×844, a second run's progress (over the results line) was below the screen, and a user who scrolled
    down to it had Stop above it, off the screen. Now Run scrolls to the progress, and while the run goes Stop
    stays at the screen's bottom right wherever the page is scrolled; it goes back to its place when the run ends."""
    from webserver import WebServer

    scan = tmp_path / "scan.png"
    scan.write_bytes(picture(3))
    ctx = browser.new_context(viewport={"width": 390, "height": 844})
    pg = ctx.new_page()
    pg.goto(server[0] + "/")
    pg.wait_for_selector("#run", timeout=30_000)
    upload(pg, [scan])
    run_and_wait(pg)  # results on the page: it is taller than the screen
    pg.evaluate("window.scrollTo(0, 0)")
    with WebServer() as web:
        start_slow(pg, web)
        pg.wait_for_timeout(1200)  # the smooth scroll
        progress = pg.locator("#counts [data-testid=status-tracker]").bounding_box()
        assert progress and 0 <= progress["y"] < 844, progress  # the progress is on the screen
        for y in ("document.body.scrollHeight", "0", "document.body.scrollHeight"):
            pg.evaluate(f"window.scrollTo(0, {y})")
            pg.wait_for_timeout(300)
            stop = pg.evaluate(STOP)
            assert stop["top"] >= 0 and stop["bottom"] <= stop["height"] and stop["reached"], (y, stop)
        box = pg.locator("#stop").bounding_box()
        pg.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # no scrolling first
        pg.wait_for_function(f"document.querySelector('{COUNTS}').innerText.startsWith('Stopped')",
                             timeout=20_000)
    pg.wait_for_function("!document.querySelector('#stop').hasAttribute('data-float')", timeout=5_000)
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    ctx.close()


def test_the_address_box_says_enter_runs_and_shift_enter_adds_a_line(page):
    """Enter in the address box runs, and a second line needs Shift+Enter: the label did not say so."""
    label = page.locator("#url label, #url [data-testid=block-info]").first.inner_text()
    assert "Enter runs" in label and "Shift+Enter" in label, label
    box = page.locator("#url textarea")
    box.fill("https://example.org/a.html")
    box.press("Shift+Enter")
    box.type("https://example.org/b.html")
    assert box.input_value() == "https://example.org/a.html\nhttps://example.org/b.html"
