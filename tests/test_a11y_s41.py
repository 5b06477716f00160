"""The page in dark mode, at 320 px, from the keyboard and for a screen reader (s41 review): `medimg serve` in real
Chromium, with the server and browser of test_ui_browser."""

from __future__ import annotations

import pytest

import test_ui_browser
from test_ui_browser import picture, run_and_wait, upload

server, browser = test_ui_browser.server, test_ui_browser.browser  # its fixtures

pytestmark = pytest.mark.browser

# WCAG's contrast ratio of an element's text (or `prop`) against the first opaque background up its tree
RATIO = """([sel, prop]) => {
  const lum = c => { const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(v => v / 255).map(v =>
      v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const el = document.querySelector(sel);
  let bg = null;  /* a ring is drawn around the element: on its parent's background */
  for (let e = prop === "outlineColor" ? el.parentElement : el; e && !bg; e = e.parentElement) {
    const c = getComputedStyle(e).backgroundColor;
    if (!/rgba\\(.*, 0\\)$|transparent/.test(c)) bg = c;
  }
  const [a, b] = [lum(getComputedStyle(el)[prop || "color"]), lum(bg || "rgb(255, 255, 255)")].sort((x, y) => y - x);
  return Math.round((a + 0.05) / (b + 0.05) * 100) / 100; }"""


def _open(browser, base, **options):
    ctx = browser.new_context(**options)
    pg = ctx.new_page()
    pg.goto(base + "/")
    pg.wait_for_selector("#run", timeout=30_000)
    return ctx, pg


def test_dark_mode_text_is_readable(browser, server, tmp_path):
    """With the system in dark mode (Gradio follows it), the page's own greys were dark on dark: the threshold's
    help and its 0.5 1.44:1, the drop box's "or" 1.92:1; Run's white text on Gradio's dark orange 3.55:1, a listed
    file's size link 4.04:1. All are 4.5:1 or more now; the focus ring shows on the dark background (3:1)."""
    ctx, pg = _open(browser, server[0], color_scheme="dark")
    assert pg.evaluate("document.body.classList.contains('dark')")
    texts = ["#threshold .info-text", "#threshold .min_value", "#files .or", "#run"]
    ratios = {sel: pg.evaluate(RATIO, [sel, None]) for sel in texts}
    files = [tmp_path / "scan1.png", tmp_path / "scan2.png"]  # two: a single file has no × to remove it
    for i, f in enumerate(files):
        f.write_bytes(picture(i + 3))
    upload(pg, files)
    for sel in ("#files .download a", "#files .label-clear-button"):
        ratios[sel] = pg.evaluate(RATIO, [sel, None])
    assert min(ratios.values()) >= 4.5, ratios
    pg.locator("#filter input[type=radio]").first.focus()
    pg.keyboard.press("ArrowRight")
    assert pg.evaluate(RATIO, ["#filter input[type=radio]:focus-visible", "outlineColor"]) >= 3
    ctx.close()


def test_focus_shows_on_the_address_box_and_the_number_box(browser, server):
    """The address box's focus was a 3 px halo of #eff6ff on white (1.1:1; the page's grey border kept Gradio's
    focus colour off it), the number box's a 1 px orange ring (2.8:1): now a 2 px ring of 3:1 or more."""
    ctx, pg = _open(browser, server[0])
    for sel in ("#url textarea", "#threshold input[type=number]"):
        pg.locator("#run").focus()
        pg.keyboard.press("Tab")
        pg.locator(sel).focus()  # a text box shows its focus however it came (:focus-visible)
        ring = pg.evaluate("() => { const s = getComputedStyle(document.activeElement);"
                           " return [s.outlineStyle, parseFloat(s.outlineWidth)]; }")
        assert ring[0] == "solid" and ring[1] >= 2, (sel, ring)
        assert pg.evaluate(RATIO, [sel, "outlineColor"]) >= 3, sel
    ctx.close()


def test_a_warning_is_said_by_a_region_there_from_the_start(browser, server):
    """Gradio's toast is a new role=status added with its text in, which screen readers often skip: the warning
    is said by the page's own alert region (there before it), and the toast is no second live region."""
    ctx, pg = _open(browser, server[0])
    pg.wait_for_function("document.querySelector('#medimg-alert')?.getAttribute('role') === 'alert'", timeout=10_000)
    assert pg.locator("#medimg-alert").inner_text() == ""
    pg.locator("#run").focus()
    pg.keyboard.press("Enter")  # nothing to run
    pg.wait_for_function("document.querySelector('#medimg-alert').textContent === "
                         "'Warning: Drop one or more files, or enter a web address, first.'", timeout=10_000)
    toast = pg.locator("[data-testid=toast-body]").first
    assert toast.get_attribute("aria-live") is None and toast.get_attribute("role") is None
    ctx.close()


# at 320 px: boxes that overlap (label over buttons, label over thumbnails, caption over image)
OVERLAPS = """() => {
  const box = e => e.getBoundingClientRect();
  const over = (a, b) => { const r = box(a), s = box(b);
    return Math.max(0, Math.min(r.right, s.right) - Math.max(r.left, s.left)) > 1
        && Math.max(0, Math.min(r.bottom, s.bottom) - Math.max(r.top, s.top)) > 1; };
  const label = document.querySelector("#files > [data-testid=block-label]");
  const buttons = [...document.querySelectorAll("#files > .icon-button-wrapper button")].filter(b => b.offsetParent);
  const title = document.querySelector("#gallery > [data-testid=block-label]");
  const thumbs = [...document.querySelectorAll("#gallery .thumbnail-item")];
  return {labelOverButtons: !buttons.length || buttons.some(b => over(label, b)),
          titleOverImages: thumbs.some(t => over(title, t.querySelector("img"))),
          captionsOverImages: thumbs.filter(t => over(t.querySelector(".caption-label"), t.querySelector("img")))
                                    .map(t => t.getAttribute("aria-label"))}; }"""


def test_at_320_px_names_labels_and_images_are_whole(browser, server, tmp_path):
    """At 320 px (a phone, or 200 % zoom of a 640 px window), listed files showed as "s…png" (Gradio keeps 8rem for
    the size), the file box's label ran under its Add files and Clear buttons, the gallery's two-line title covered
    the first images' top, and a caption (drawn over its image) covered a whole image. Now: names whole and
    wrapped, nothing over anything, nothing scrolls sideways."""
    files = [tmp_path / "scan0.png", tmp_path / "series-17-axial-t2-weighted-follow-up-study.png"]
    for i, f in enumerate(files):
        f.write_bytes(picture(i + 50))
    ctx, pg = _open(browser, server[0], viewport={"width": 320, "height": 640})
    upload(pg, files)
    names = pg.evaluate("() => [...document.querySelectorAll('#files .file-preview .filename')].map(f => "
                        "[f.innerText.replace(/\\s+/g, ''), [...f.querySelectorAll('span')].every(s => "
                        "s.scrollWidth <= s.clientWidth + 1 && s.getBoundingClientRect().right <= "
                        "f.getBoundingClientRect().right + 1)])")
    assert sorted(n for n, _ in names) == sorted(f.name for f in files) and all(w for _, w in names), names
    run_and_wait(pg)
    pg.wait_for_function("[...document.querySelectorAll('#gallery .thumbnail-item img')].every(i => i.complete)",
                         timeout=10_000)
    seen = pg.evaluate(OVERLAPS)
    assert seen == {"labelOverButtons": False, "titleOverImages": False, "captionsOverImages": []}, seen
    assert pg.evaluate("document.documentElement.scrollWidth") <= 320
    ctx.close()
