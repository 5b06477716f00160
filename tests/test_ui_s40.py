"""Stop pressed while the page's run waits for a job slot (s39 review left it): it said "Nothing is running." and
the run started later anyway. `medimg serve` in real Chromium, with the server and browser of test_ui_browser."""

from __future__ import annotations

import time

import pytest

import test_ui_browser
from test_ui_browser import COUNTS, picture, run_and_wait, toasts

server, browser = test_ui_browser.server, test_ui_browser.browser  # its fixtures

pytestmark = pytest.mark.browser


def _open(browser, base):
    ctx = browser.new_context()
    pg = ctx.new_page()
    pg.goto(base + "/")
    pg.wait_for_selector("#run", timeout=30_000)
    return ctx, pg


def _until(check, seconds: float, why) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, why()
        time.sleep(0.1)


def test_stop_while_waiting_for_a_slot_keeps_the_run_from_starting(browser, server):
    from webserver import WebServer

    pages = [_open(browser, server[0]) for _ in range(3)]
    (_, first), (_, second), (_, waiting) = pages
    with WebServer() as web:
        for i, pg in enumerate((first, second)):  # both job slots (max_jobs 2) taken by slow downloads
            web.slow(f"/slow{i}.png", b"x" * 2000, interval=0.1)
            pg.fill("#url textarea", web.url(f"/slow{i}.png"))
            pg.click("#run")
        _until(lambda: web.sent["/slow0.png"] >= 5 and web.sent["/slow1.png"] >= 5, 60, lambda: dict(web.sent))
        web.add("/scan.png", picture(3), "image/png")
        waiting.fill("#url textarea", web.url("/scan.png"))
        waiting.click("#run")
        time.sleep(1.0)  # it waits in Gradio's queue
        assert web.hits["/scan.png"] == 0
        waiting.click("#stop")
        waiting.wait_for_function("() => [...document.querySelectorAll('.toast-body, [data-testid=toast-body]')]"
                                  ".some(t => t.innerText.includes('Stopped before it started'))", timeout=10_000)
        assert not [t for t in toasts(waiting) if "Nothing is running" in t], toasts(waiting)
        for pg in (first, second):
            pg.click("#stop")
        for pg in (first, second):
            pg.wait_for_function(f"document.querySelector('{COUNTS}').innerText.startsWith('Stopped')",
                                 timeout=20_000)
        time.sleep(2.0)  # a slot is free: the stopped run would have read the address by now
        assert web.hits["/scan.png"] == 0, toasts(waiting)
        assert waiting.locator(COUNTS).inner_text().startswith("No results"), waiting.locator(COUNTS).inner_text()
        waiting.wait_for_function("!window.medimgRuns.going.size", timeout=10_000)
        run_and_wait(waiting)  # a new run on that page is not held
        assert web.hits["/scan.png"] == 1
        # Stop after a run has ended says so, and holds nothing back
        waiting.click("#stop")
        waiting.wait_for_function("() => [...document.querySelectorAll('.toast-body, [data-testid=toast-body]')]"
                                  ".some(t => t.innerText.includes('Nothing is running'))", timeout=10_000)
        waiting.click("#run")
        _until(lambda: web.hits["/scan.png"] == 2, 20, lambda: toasts(waiting))
    for ctx, _ in pages:
        ctx.close()
