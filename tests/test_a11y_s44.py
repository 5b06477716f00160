"""The threshold typed from the keyboard, and every warning said (s44 review): `medimg serve` in real Chromium,
with the server and browser of test_ui_browser."""

from __future__ import annotations

import pytest

import test_ui_browser
from test_ui_browser import COUNTS, run_and_wait, toasts

server, browser, page = test_ui_browser.server, test_ui_browser.browser, test_ui_browser.page  # its fixtures

pytestmark = pytest.mark.browser

WAIT = 60_000  # ms: a threshold change re-labels on the server (seconds on a busy machine)


def test_a_threshold_typed_key_by_key_is_the_one_used(page):
    """Each key in the number box sent its value: typing 0.75 sent 0, which the page set back to 0.5 with a
    warning while the rest was typed (the box then read 0.575); an emptied box put 0.6 in. Now what is typed is
    used (in range, as it goes), and a value out of range is set back only on Enter."""
    run_and_wait(page, "button:has-text('Example: scans and photos')")
    number = page.locator("#threshold input[type=number]")
    number.focus()
    page.keyboard.press("Control+a")
    page.keyboard.type("0.75", delay=120)
    page.wait_for_function(f"document.querySelector('{COUNTS}').innerText.includes('threshold 0.75')", timeout=WAIT)
    page.wait_for_timeout(1500)
    assert number.input_value() == "0.75"
    assert "threshold 0.75" in page.locator(COUNTS).inner_text()
    assert not toasts(page), toasts(page)

    page.keyboard.press("Backspace")  # emptied and typed anew
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    page.keyboard.type(".9", delay=120)  # ".9": no number until the 9
    page.wait_for_function(f"document.querySelector('{COUNTS}').innerText.includes('threshold 0.90')", timeout=WAIT)
    page.wait_for_timeout(1500)
    assert float(number.input_value()) == 0.9 and not toasts(page), toasts(page)

    page.keyboard.press("Control+a")
    page.keyboard.type("3")
    page.wait_for_timeout(1500)
    assert not toasts(page)  # not yet: it may be the start of something else
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.querySelector('{COUNTS}').innerText.includes('threshold 1.00')", timeout=WAIT)
    page.wait_for_function("() => document.querySelector('#threshold input[type=number]').value === '1'",
                           timeout=WAIT)
    assert any("1 is used instead of 3" in t for t in toasts(page)), toasts(page)


def test_a_second_warning_is_said_too(page):
    """Gradio shows a second warning in the toast of the first ("Warning (2)"): only the first was said."""
    page.wait_for_function("document.querySelector('#medimg-alert')?.getAttribute('role') === 'alert'",
                           timeout=10_000)
    page.locator("#run").focus()
    page.keyboard.press("Enter")  # nothing to run
    page.wait_for_function("document.querySelector('#medimg-alert').textContent.includes('Drop one or more files')",
                           timeout=WAIT)
    number = page.locator("#threshold input[type=number]")
    number.fill("1.5")
    number.press("Enter")
    page.wait_for_function("document.querySelector('#medimg-alert').textContent === "
                           "'Warning: The threshold goes from 0.5 to 1, so 1 is used instead of 1.5.'", timeout=WAIT)
    assert page.locator("[data-testid=toast-body]").count() == 1  # one toast, as Gradio groups them


def test_a_listed_files_link_and_remove_button_name_the_file(page, tmp_path):
    """In the file list each download link was read as its size ("477.0 B ⇣") and each × as "Remove this file":
    a keyboard or screen-reader user going by Tab heard neither which file it was."""
    from test_ui_browser import picture, upload

    files = [tmp_path / "knee.png", tmp_path / "chest x-ray.png"]
    for i, f in enumerate(files):
        f.write_bytes(picture(i + 40))
    upload(page, files)
    page.wait_for_function("document.querySelectorAll('#files a.download-link[aria-label^=Download]').length == 2",
                           timeout=10_000)
    names = page.evaluate("() => [...document.querySelectorAll('#files a.download-link, #files .label-clear-button')]"
                          ".map(e => e.getAttribute('aria-label'))")
    assert [n for n in names if n.startswith("Remove")] == ["Remove knee.png", "Remove chest x-ray.png"], names
    links = [n for n in names if n.startswith("Download")]
    assert len(links) == 2 and links[0].startswith("Download knee.png (") and links[0].endswith(" B)"), links
    assert "⇣" not in " ".join(links) and links[1].startswith("Download chest x-ray.png ("), links
