"""Items earlier reviews left (session 38): an Office picture cropped in its document is read as the document shows
it; a JPEG cut short and followed by a marker is an error, not half grey; a run's progress is said to screen
readers (in test_a11y_s37's browser)."""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest
from PIL import Image

import builders as b
import test_ui_browser
from medimg.sources import Blob, Context, ImageItem, ItemError, Limits, open_input
from test_office_s37 import NS, rels, slide

# --- Office pictures' crops -----------------------------------------------------------------------------------


def screenshot() -> tuple[bytes, tuple[int, int, int, int]]:
    """A 400×300 screenshot (light window, a title bar) holding an X-ray at (100, 60)–(300, 240); as PNG."""
    shot = np.full((300, 400, 3), 235, np.uint8)
    shot[:30] = (40, 70, 160)
    xray = np.asarray(b.pattern((200, 180), "L", 7))
    shot[60:240, 100:300] = xray[..., None]
    return b.encode(Image.fromarray(shot), "PNG"), (100, 60, 300, 240)


def crop_attrs(box, size=(400, 300)) -> str:
    """The `a:srcRect` PowerPoint writes to show `box` of a picture of `size` (thousandths of a percent)."""
    w, h = size
    sides = (box[0] / w, box[1] / h, 1 - box[2] / w, 1 - box[3] / h)
    return " ".join(f'{k}="{round(v * 100_000)}"' for k, v in zip("ltrb", sides))


def pic(rid: str, crop: str = "") -> str:
    rect = f"<a:srcRect {crop}/>" if crop else "<a:srcRect/>"
    return (f'<p:pic><p:blipFill><a:blip r:embed="{rid}"/>{rect}<a:stretch><a:fillRect/></a:stretch></p:blipFill>'
            '</p:pic>')


def deck(slides: list[list[tuple[str, str, str]]], media: dict[str, bytes]) -> bytes:
    """A .pptx whose slide k shows, for each (rId, media name, crop attributes), that picture so cropped."""
    m = {"[Content_Types].xml": b"<Types/>", "_rels/.rels": rels(("rId1", "officeDocument", "ppt/presentation.xml")),
         "ppt/presentation.xml": (f'<p:presentation {NS}><p:sldIdLst>'
                                  + "".join(f'<p:sldId id="{256 + k}" r:id="rId{10 + k}"/>' for k in range(len(slides)))
                                  + "</p:sldIdLst></p:presentation>").encode(),
         "ppt/_rels/presentation.xml.rels": rels(*[(f"rId{10 + k}", "slide", f"slides/slide{k + 1}.xml")
                                                   for k in range(len(slides))])}
    for k, shown in enumerate(slides, 1):
        m[f"ppt/slides/slide{k}.xml"] = slide("".join(pic(rid, crop) for rid, _, crop in shown))
        m[f"ppt/slides/_rels/slide{k}.xml.rels"] = rels(*[(rid, "image", f"../media/{name}") for rid, name, _ in shown])
    m.update({f"ppt/media/{name}": data for name, data in media.items()})
    return b.zip_bytes(m)


def images(data: bytes, name: str) -> list[ImageItem]:
    got = list(Context(Limits()).open_blob(Blob(name, data, name=name)))
    return [i for i in got if isinstance(i, ImageItem)]


def test_a_screenshot_cropped_to_its_xray_on_a_slide_is_read_as_the_slide_shows_it():
    """PowerPoint's crop (`a:srcRect`, thousandths of a percent cut off each side) of a screenshot down to the X-ray
    in it: the record is the X-ray, 200×180, not the 400×300 window; the crop is in its metadata."""
    shot, box = screenshot()
    (item,) = images(deck([[("rId2", "image1.png", crop_attrs(box))]], {"image1.png": shot}), "talk.pptx")
    assert item.locator == "slide 1"
    assert item.image.size == (200, 180) and (item.width, item.height) == (200, 180)
    want = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB").crop(box))
    assert np.array_equal(np.asarray(item.image.convert("RGB")), want)
    assert item.metadata["crop"] == {"left": 0.25, "top": 0.2, "right": 0.25, "bottom": 0.2}


def test_one_picture_shown_whole_and_cropped_gives_both_and_an_empty_crop_changes_nothing():
    """The same picture on slide 1 as stored and on slide 2 cropped: two images, each placed; a picture with an
    empty `a:srcRect` (PowerPoint writes one for every picture) is read once, as stored."""
    shot, box = screenshot()
    plain = b.image_bytes("PNG", (90, 60))
    data = deck([[("rId2", "image1.png", ""), ("rId3", "image2.png", "")],
                 [("rId2", "image1.png", crop_attrs(box))]], {"image1.png": shot, "image2.png": plain})
    got = {(i.origin.split(":", 1)[1], i.locator): (i.image.size, i.metadata.get("crop")) for i in
           images(data, "talk.pptx")}
    assert got == {("ppt/media/image1.png", "slide 1"): ((400, 300), None),
                   ("ppt/media/image1.png", "slide 2"): ((200, 180), {"left": 0.25, "top": 0.2, "right": 0.25,
                                                                     "bottom": 0.2}),
                   ("ppt/media/image2.png", "slide 1"): ((90, 60), None)}


def test_a_cropped_picture_in_a_word_report_and_read_by_its_member_name_keeps_its_crop(tmp_path):
    """Word's `pic:blipFill` holds the same `a:srcRect`: an X-ray cropped to leave out its label. Given by its member
    name, the picture is read as the document shows it too."""
    xray = b.pattern((300, 200), "L", 3)
    drawn = ('<w:p><w:r><w:drawing><pic:pic xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture">'
             '<pic:blipFill><a:blip r:embed="rId5"/><a:srcRect b="20000"/><a:stretch/></pic:blipFill></pic:pic>'
             '</w:drawing></w:r></w:p>')
    w = f'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" {NS}'
    path = tmp_path / "report.docx"
    path.write_bytes(b.zip_bytes({
        "[Content_Types].xml": b"<Types/>", "_rels/.rels": rels(("rId1", "officeDocument", "word/document.xml")),
        "word/document.xml": f"<w:document {w}><w:body>{drawn}</w:body></w:document>".encode(),
        "word/_rels/document.xml.rels": rels(("rId5", "image", "media/image1.png")),
        "word/media/image1.png": b.encode(xray, "PNG")}))
    for given in (str(path), f"{path}:word/media/image1.png"):
        (item,) = [i for i in open_input(given) if isinstance(i, ImageItem)]
        assert (item.locator, item.image.size) == ("document body", (300, 160)), given
        assert np.array_equal(np.asarray(item.image), np.asarray(xray)[:160])


# --- JPEGs cut short ------------------------------------------------------------------------------------------


def photo() -> bytes:
    return b.encode(b.pattern((640, 480), "RGB", 4), "JPEG", quality=90)


def test_a_jpeg_cut_mid_scan_and_followed_by_a_marker_is_an_error_not_half_grey():
    """libjpeg fills the blocks a scan lacks with grey when a marker (an end marker written after the cut, another
    scan's header) stops the data, and Pillow says nothing: the record must not be that picture."""
    data = photo()
    for keep in (0.3, 0.6, 0.95):
        cut = data[:int(len(data) * keep)]
        for after in (b"\xff\xd9", b"\xff\xda\x00\x08"):
            (item,) = list(open_input(Blob("cut.jpg", cut + after, name="cut.jpg")))
            assert isinstance(item, ItemError), (keep, after)
            assert item.error.startswith("corrupt or truncated JPEG image") and "grey" in item.error


def test_whole_jpegs_ending_in_mid_grey_are_still_read():
    """A picture whose last block is mid-grey (a graphic's #808080 background; grey and colour) is whole: read."""
    for mode in ("RGB", "L"):
        img = Image.new(mode, (200, 120), (128,) * len(mode))
        img.paste(b.pattern((120, 60), mode, 2), (10, 10))
        for progressive in (False, True):
            data = b.encode(img, "JPEG", quality=95, progressive=progressive)
            (item,) = list(open_input(Blob("g.jpg", data, name="g.jpg")))
            assert isinstance(item, ImageItem), (mode, progressive, item)
            # and one with bytes after its end marker (a phone's trailer) too
            (item,) = list(open_input(Blob("g.jpg", data + b"trailer" * 9, name="g.jpg")))
            assert isinstance(item, ImageItem), (mode, progressive, item)



# --- a run's progress, said to screen readers -------------------------------------------------------------------

# test_ui_browser's server, browser and page (each skips, saying why, without Chromium or Playwright)
server, browser, page = test_ui_browser.server, test_ui_browser.browser, test_ui_browser.page

# what the page's polite status (#medimg-said) says, with when
HEARD = """() => { window.heard = []; const t0 = performance.now();
  new MutationObserver(() => { const text = document.querySelector('#medimg-said').innerText.trim();
    if (text) window.heard.push([performance.now() - t0, text]); })
  .observe(document.querySelector('#medimg-said'), {childList: true, subtree: true, characterData: true}); }"""


@pytest.mark.browser
def test_a_runs_progress_is_said_politely_every_few_seconds_and_not_after_its_end(page, tmp_path):
    """While a run goes (a file, then an address slow to come), the page's polite status says that it runs and how
    far it is, at most once in 5 s (Gradio's progress over the counts line is hidden from screen readers: its timer
    changes every 100 ms); once it ends, nothing more of it is said, and the results line (a polite live region)
    says the end."""
    from webserver import WebServer

    scan = tmp_path / "scan.png"
    scan.write_bytes(test_ui_browser.picture(5))
    test_ui_browser.upload(page, [scan])
    page.evaluate(HEARD)
    with WebServer() as web:
        test_ui_browser.run_slow(page, web)
        page.wait_for_function("() => window.heard.some(([, t]) => t.includes('1 image classified'))",
                               timeout=30_000)
        time.sleep(11)
        during = page.evaluate("() => window.heard")
        page.click("#stop")
        page.wait_for_function(f"document.querySelector('{test_ui_browser.COUNTS}').innerText.startsWith('Stopped')",
                               timeout=20_000)
        time.sleep(6)
        after = page.evaluate("() => window.heard")
    during = [(at, text) for at, text in during if "ready to run" not in text]  # said as the file came (or before)
    after = [(at, text) for at, text in after if "ready to run" not in text]
    said = [text for _, text in during]
    assert said and all(t.startswith("Running") for t in said), said
    assert "Running: 0/2 inputs read, 1 image classified." in said, said
    assert not any(re.search(r"\d+(\.\d+)?s\b|%", t) for t in said), said  # no timer, no percentage
    times = [at for at, _ in during]
    assert all(b - a >= 4900 for a, b in zip(times, times[1:])), during  # not flooded
    # nothing stale once it ended: only Stop's own note may be said after (its toast, said since s41_a11y)
    assert after[:len(during)] == during and all(t.startswith("Stopping") for _, t in after[len(during):]), after
    assert page.locator(test_ui_browser.COUNTS).get_attribute("aria-live") == "polite"
