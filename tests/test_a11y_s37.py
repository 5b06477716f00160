"""The page from the keyboard alone and with a screen reader (s37 review): `medimg serve` in real Chromium, with
the server and browser of test_ui_browser."""

from __future__ import annotations

import re
import time

import pytest

import test_ui_browser
from test_ui_browser import picture, run_and_wait, upload

server, browser, page = test_ui_browser.server, test_ui_browser.browser, test_ui_browser.page  # its fixtures

pytestmark = pytest.mark.browser

# the focused element: [its classes, its name]
FOCUSED = """() => { const e = document.activeElement;
  return [e.className.toString(), e.getAttribute('aria-label') || e.innerText.trim()]; }"""
SAID = "text => document.querySelector('#medimg-said')?.innerText === text"


def pictures(tmp_path, n: int) -> list:
    files = [tmp_path / f"scan{i}.png" for i in range(1, n + 1)]
    for i, f in enumerate(files):
        f.write_bytes(picture(i + 30))
    return files


def listed(pg) -> list[str]:
    return [t.strip() for t in pg.locator("#files .file-preview .stem").all_inner_texts()]


def test_files_added_and_removed_from_the_keyboard_keep_the_focus_in_the_file_box(page, tmp_path):
    """Enter (and Space) on the drop box opens the file chooser; once the files are in, the focus is on "Add
    files" (it went to the page's start) and "3 files ready to run" is said; Enter on a file's × removes that
    file alone and the focus goes to the next file's ×, "Add files" when one file is left (it has no ×), and the
    drop box after Clear."""
    files = pictures(tmp_path, 3)
    # Playwright takes over file choosers only once a listener is set: without one, the first Enter's chooser
    # (opened on keydown) may come before it does and be missed
    page.on("filechooser", lambda chooser: None)
    box = page.locator("#files button.upload-container")
    for key in ("Space", "Enter"):
        box.focus()
        with page.expect_file_chooser(timeout=5_000) as chooser:
            page.keyboard.press(key)
    chooser.value.set_files([str(f) for f in files])
    page.wait_for_function("document.querySelector('#ready')?.innerText.includes('3 files ready to run')",
                           timeout=30_000)
    page.wait_for_function("() => document.activeElement.matches('#files button.upload-container')"
                           " && document.activeElement.getAttribute('aria-label') === 'Add files'", timeout=10_000)
    page.wait_for_function(SAID, arg="3 files ready to run", timeout=10_000)

    page.locator("#files .label-clear-button").nth(1).focus()
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('#files .file-preview .stem').length == 2", timeout=10_000)
    page.wait_for_function("() => document.activeElement === document.querySelectorAll('#files .label-clear-button')"
                           "[1]", timeout=10_000)
    time.sleep(1)  # nothing more goes: the key's click did not press the × the focus moved to
    assert listed(page) == ["scan1", "scan3"]
    page.wait_for_function(SAID, arg="2 files ready to run", timeout=10_000)

    page.keyboard.press("Space")  # scan3's ×: one file left, which has none
    page.wait_for_function("document.querySelectorAll('#files .file-preview .stem').length == 1", timeout=10_000)
    page.wait_for_function("() => document.activeElement.getAttribute('aria-label') === 'Add files'", timeout=10_000)
    assert listed(page) == ["scan1"]

    page.locator("#files button[aria-label=Clear]").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.activeElement.getAttribute('aria-label') === "
                           "'Click to upload or drop files'", timeout=10_000)


def test_help_is_said_with_the_threshold_and_the_file_box(page):
    """The threshold's help is its slider's and number box's description (aria-describedby), and the file box's
    label (which files) the drop box's; the arrow keys move the slider by its step."""
    from playwright.sync_api import expect

    help_text = re.compile(r"^Below this, an image is 'uncertain'.*re-labels instantly\.$")
    page.wait_for_function("document.querySelector('#threshold input[type=range]')?.hasAttribute('aria-describedby')",
                           timeout=10_000)
    slider = page.get_by_role("slider", name=re.compile("How sure before saying medical or not"))
    expect(slider).to_have_accessible_description(help_text)
    expect(page.get_by_role("spinbutton", name=re.compile("How sure"))).to_have_accessible_description(help_text)
    expect(page.get_by_role("button", name="Click to upload or drop files")).to_have_accessible_description(
        re.compile(r"^Files: images, DICOM, .*zip, 7z, tar$"))
    slider.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert slider.input_value() == "0.62"
    page.wait_for_function("document.querySelector('#threshold input[type=number]').value === '0.62'",
                           timeout=10_000)


def test_an_image_opened_and_closed_from_the_keyboard(page, tmp_path):
    """The results' section titles are headings; a thumbnail's focus ring is plain to see; Enter on one opens it,
    its details are said to be under the gallery (they came silently); while it is open the grid it covers is out
    of the Tab order (each image was two Tab stops, one hidden); Esc, or Close, puts the focus back on the
    thumbnail of the image shown (it went to the page's start); the downloads work from the keyboard."""
    upload(page, pictures(tmp_path, 3))
    run_and_wait(page)
    page.wait_for_function("document.querySelector('#table [role=heading]')", timeout=10_000)
    heads = [h.strip() for h in page.get_by_role("heading", level=2).all_inner_texts()]
    assert heads[0].startswith("Images found") and "All images" in heads, heads

    page.focus("#json")
    seen = []
    for _ in range(6):  # on from the downloads to the gallery's thumbnails (the second is named by its caption)
        page.keyboard.press("Tab")
        seen.append(page.evaluate(FOCUSED)[1])
        if seen[-1].endswith("scan2.png (image 2 of 3)"):
            break
    name = seen[-1]
    assert name.endswith("scan2.png (image 2 of 3)"), seen
    ring = page.evaluate("() => { const s = getComputedStyle(document.activeElement);"
                         " return [s.outlineStyle, s.outlineWidth, s.outlineColor]; }")
    assert ring == ["solid", "3px", "rgb(29, 78, 216)"], ring  # was Chrome's 1 px, half under the gallery's label
    page.keyboard.press("Enter")
    page.wait_for_selector("#gallery .preview", timeout=10_000)
    page.wait_for_function("() => document.activeElement.matches('#gallery .preview .thumbnail-item')", timeout=10_000)
    assert page.evaluate(FOCUSED)[1] == name  # named by its caption, not "Thumbnail 2 of 3"
    page.wait_for_function(SAID, arg="Details of scan2.png shown under the gallery.", timeout=10_000)
    page.keyboard.press("ArrowRight")
    page.wait_for_function(SAID, arg="Details of scan3.png shown under the gallery.", timeout=10_000)

    page.locator("#gallery .preview button[aria-label=Fullscreen]").focus()
    stops = []
    for _ in range(10):
        page.keyboard.press("Tab")
        if not page.evaluate("() => !!document.activeElement.closest('#gallery')"):
            break
        stops.append(page.evaluate(FOCUSED))
    assert [c.split()[0] for c, _ in stops] == ["icon-button", "media-button"] + ["thumbnail-item"] * 3, stops
    assert not any("thumbnail-lg" in c for c, _ in stops), stops

    page.locator("#gallery .preview .thumbnail-item").nth(2).focus()
    page.keyboard.press("Escape")
    page.wait_for_selector("#gallery .preview", state="detached", timeout=10_000)
    page.wait_for_function("() => document.activeElement === document.querySelectorAll('#gallery .thumbnail-lg')[2]",
                           timeout=10_000)
    page.keyboard.press("Enter")  # open again, and close with Close
    page.wait_for_selector("#gallery .preview", timeout=10_000)
    page.locator("#gallery .preview button[aria-label=Close]").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#gallery .preview", state="detached", timeout=10_000)
    page.wait_for_function("() => document.activeElement === document.querySelectorAll('#gallery .thumbnail-lg')[2]",
                           timeout=10_000)

    for button, ext in (("#csv", "csv"), ("#json", "json")):
        page.focus(button)
        with page.expect_download(timeout=10_000) as download:
            page.keyboard.press("Enter")
        assert download.value.suggested_filename == f"medimg-results-threshold-0.6.{ext}"
