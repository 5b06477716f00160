"""PDF source: images covered by boxes drawn over them (crude redactions) come out as seen; tables drawn one box
per cell (Word, LibreOffice) are not figures. PDFs built with PyMuPDF (or by hand) in each test."""

from __future__ import annotations

import io
import random
import zlib

import numpy as np
import pymupdf
import pytest
from PIL import Image, ImageDraw

from builders import pdf_stream, raw_pdf
from test_pdf_damaged import _cut_in_colour_space
from medimg.sources import pdf
from medimg.sources.base import Blob, Context, ImageItem


def _run(data: bytes) -> list:
    return list(pdf.open_pdf(Blob("test.pdf", data), Context()))


def _images(items: list) -> list[ImageItem]:
    return [i for i in items if isinstance(i, ImageItem)]


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _xray() -> Image.Image:
    """A grey 400 x 400 'X-ray' with a patient's name burnt in at its top left (pure white, pixels 20-180 x 20-50)."""
    img = Image.fromarray(np.tile(np.linspace(40, 160, 400, dtype=np.uint8), (400, 1)), "L")
    ImageDraw.Draw(img).rectangle([20, 20, 180, 50], fill=255)
    return img


def _page_with_xray(doc: pymupdf.Document) -> pymupdf.Page:
    page = doc.new_page()
    page.insert_image(pymupdf.Rect(100, 100, 300, 300), stream=_png(_xray()))  # 0.5 pt a pixel
    return page


def test_an_image_covered_by_an_opaque_box_comes_out_as_the_reader_sees_it():
    """A black bar, a white box or another picture laid over the name burnt into an X-ray: what is under them
    must not come out, so the image is rendered as seen (noted in its metadata). So is the same X-ray with an
    arrow, a letter and a scale bar drawn on it (since session 34: the reader sees the arrow; what still leaves an
    image as it is is in test_pdf_covers.py)."""
    doc = pymupdf.open()
    _page_with_xray(doc).draw_rect(pymupdf.Rect(105, 105, 195, 130), color=None, fill=(0, 0, 0))
    _page_with_xray(doc).draw_rect(pymupdf.Rect(105, 105, 195, 130), color=None, fill=(1, 1, 1))
    page = _page_with_xray(doc)
    page.insert_image(pymupdf.Rect(105, 105, 195, 130), stream=_png(Image.new("RGB", (90, 25), (0, 0, 200))))
    page = _page_with_xray(doc)  # figure annotations: a thin arrow, a letter, a thin scale bar
    page.draw_line((150, 200), (230, 250), color=(1, 1, 0), width=1.5)
    page.draw_polyline([(230, 250), (220, 249), (225, 241), (230, 250)], color=None, fill=(1, 1, 0), closePath=True)
    page.insert_text((270, 290), "A", fontsize=14, color=(1, 1, 1))
    page.draw_rect(pymupdf.Rect(220, 285, 280, 287), color=None, fill=(1, 1, 1))
    items = _images(_run(doc.tobytes()))
    assert [(i.locator, i.metadata["pages"]) for i in items] == [
        ("page 1, image 1 (covered, rendered)", [1]), ("page 2, image 1 (covered, rendered)", [2]),
        ("page 3, image 1 (covered, rendered)", [3]), ("page 4, image 1 (covered, rendered)", [4])]
    black, white, picture, annotated = items
    for item in (black, white, picture):
        assert item.metadata["covered"] is True and item.metadata["rendered"] is True
        assert item.metadata["note"] == "covered in part on the page: rendered as seen"
        assert item.metadata["bbox"] == [100, 100, 300, 300] and 380 <= item.image.width <= 420
    scale = black.image.width / 200  # pixels a point
    name = tuple(round(v * scale) for v in (12, 12, 88, 23))  # the name's place, inside the bar
    assert np.asarray(black.image.convert("L").crop(name)).max() < 30  # black: no trace of the name
    assert np.asarray(picture.image.crop(name)).reshape(-1, 3).mean(axis=0)[2] > 150  # the blue picture
    assert 80 < np.asarray(black.image.convert("L").crop((20, 300, 380, 380))).mean() < 120  # the rest: the X-ray
    assert annotated.metadata["covered"] is True
    r, g, b = np.asarray(annotated.image.convert("RGB"))[round(125 * scale), round(90 * scale)]  # on the arrow
    assert r > 200 and g > 200 and b < 60


def test_boxes_that_hide_nothing_leave_the_embedded_image():
    """Not covers: a see-through box (fill opacity 0.4), a box in a blend mode (Multiply), a box drawn before the
    image (its background), a picture with transparency laid over it, and a small box just over its edge. The
    black bar after them still is."""
    pixels = zlib.compress(_xray().tobytes())
    xray = pdf_stream("/Type /XObject /Subtype /Image /Width 400 /Height 400 /ColorSpace /DeviceGray "
                      "/BitsPerComponent 8 /Filter /FlateDecode", pixels)
    resources = "<< /XObject << /Im 5 0 R >> /ExtGState << /See 6 0 R /Mul 7 0 R >> >>"
    extra = [xray, "<< /ca 0.4 >>", "<< /BM /Multiply >>"]
    draw = b"q 200 0 0 200 100 492 cm /Im Do Q "  # the X-ray at (100, 100)-(300, 300), page y down
    bar = b"0 0 0 rg 105 662 90 25 re f "  # over the name: (105, 105)-(195, 130)
    harmless = [
        draw + b"q /See gs " + bar + b"Q ",
        draw + b"q /Mul gs " + bar + b"Q ",
        bar + draw,
        draw + b"1 1 1 rg 280 480 14 14 re f ",  # a box behind a panel letter, reaching 2 pt over the image's edge
    ]
    for content in harmless:
        (item,) = _images(_run(raw_pdf(content, resources, extra)))
        assert item.locator == "page 1, image 1" and item.image.size == (400, 400), content
    (item,) = _images(_run(raw_pdf(draw + bar, resources, extra)))
    assert item.locator == "page 1, image 1 (covered, rendered)"

    doc = pymupdf.open()  # a picture with an alpha channel over it (a soft mask): see-through, not a cover
    overlay = Image.new("RGBA", (90, 25), (0, 0, 200, 90))
    _page_with_xray(doc).insert_image(pymupdf.Rect(105, 105, 195, 130), stream=_png(overlay))
    assert [i.locator for i in _images(_run(doc.tobytes())) if i.image.size == (400, 400)] == ["page 1, image 1"]


def test_the_same_image_covered_the_same_way_on_several_pages_is_rendered_once():
    doc = pymupdf.open()
    for _ in range(3):
        _page_with_xray(doc).draw_rect(pymupdf.Rect(105, 105, 195, 130), color=None, fill=(0, 0, 0))
    _page_with_xray(doc).draw_rect(pymupdf.Rect(200, 250, 290, 290), color=None, fill=(0, 0, 0))  # elsewhere
    assert [(i.locator, i.metadata["pages"]) for i in _images(_run(doc.tobytes()))] == [
        ("page 1, image 1 (covered, rendered)", [1, 2, 3]), ("page 4, image 1 (covered, rendered)", [4])]


def _word_table(page: pymupdf.Page, x: float = 72, y: float = 100) -> None:
    """5 rows of 4 cells, each cell a rectangle of its own (its border stroked), the header row filled grey, as
    Word and LibreOffice export a table; a word or number in every cell."""
    for r in range(5):
        for c in range(4):
            cell = pymupdf.Rect(x + 110 * c, y + 20 * r, x + 110 * (c + 1), y + 20 * (r + 1))
            page.draw_rect(cell, color=(0, 0, 0), width=0.5, fill=(0.8, 0.8, 0.8) if r == 0 else None)
            page.insert_text((cell.x0 + 4, cell.y1 - 6), f"Group {c}" if r == 0 else f"{3.1 * r + c:.1f} mg",
                             fontsize=9)


def test_a_table_drawn_one_box_per_cell_is_not_a_figure_but_charts_and_heat_maps_are():
    """A table of 20 cell boxes with text in each is no figure; a bar chart (bars standing on an axis at different
    heights, tick and value labels) and a heat map (a grid of coloured cells, no words) still are. Also a table
    whose cells are filled, not stroked."""
    doc = pymupdf.open()
    page = doc.new_page()
    _word_table(page)
    page.insert_text((72, 230), "Table 1. Doses by group.", fontsize=10)
    page.draw_line((150, 500), (450, 500), width=1)  # a bar chart: axes, bars, labels
    page.draw_line((150, 300), (150, 500), width=1)
    for k in range(5):
        x = 165 + 55 * k
        page.draw_rect(pymupdf.Rect(x, 480 - 35 * k, x + 40, 500), color=(0, 0, 0), width=0.5, fill=(0.2, 0.4, 0.8))
        page.insert_text((x + 10, 512), f"G{k}", fontsize=8)
        page.insert_text((x + 12, 476 - 35 * k), f"{5 * k + 2}", fontsize=8)
    for k in range(5):
        page.insert_text((132, 503 - 40 * k), f"{10 * k}", fontsize=8)
    page = doc.new_page()
    rnd = random.Random(3)
    for r in range(10):  # a heat map
        for c in range(10):
            v = rnd.random()
            page.draw_rect(pymupdf.Rect(150 + 20 * c, 200 + 20 * r, 170 + 20 * c, 220 + 20 * r), color=None,
                           fill=(v, 0.3, 1 - v))
    page = doc.new_page()
    for r in range(4):  # a table of filled cells (white lines between them), no borders
        for c in range(3):
            cell = pymupdf.Rect(72 + 130 * c, 100 + 22 * r, 72 + 130 * (c + 1), 100 + 22 * (r + 1))
            page.draw_rect(cell, color=None, fill=(0.6, 0.7, 0.9) if r == 0 else (0.92, 0.94, 0.98))
            page.insert_text((cell.x0 + 6, cell.y1 - 7), f"row {r} col {c}", fontsize=9)
    figs = _images(_run(doc.tobytes()))
    assert [f.locator for f in figs] == ["page 1, figure 1 (rendered)", "page 2, figure 1 (rendered)"]
    assert figs[0].metadata["bbox"][1] > 280  # the chart, not the table above it


# --- left-overs: turned images, stencils in colour, twin charts on one page, damaged images in their place -------

def _turned_xray(boxes: bytes) -> bytes:
    """The X-ray drawn 200 pt a side turned 30 degrees (its unit square's corner at (200, 300), PDF space), then
    `boxes`. Its bounding box is (100, 300)-(373.2, 573.2); the corners of that box are empty page."""
    pixels = zlib.compress(_xray().tobytes())
    xray = pdf_stream("/Type /XObject /Subtype /Image /Width 400 /Height 400 /ColorSpace /DeviceGray "
                      "/BitsPerComponent 8 /Filter /FlateDecode", pixels)
    cos, sin = 200 * np.cos(np.pi / 6), 200 * np.sin(np.pi / 6)
    draw = f"q {cos:.4f} {sin:.4f} {-sin:.4f} {cos:.4f} 200 300 cm /Im Do Q ".encode()
    return raw_pdf(draw + boxes, "<< /XObject << /Im 5 0 R >> >>", [xray])


def test_a_box_beside_a_turned_image_in_its_bounding_box_hides_nothing_of_it():
    """A black box in the empty corner of a turned image's bounding box (1.6 % of that box, none of the image)
    leaves the embedded image as it is; one over the image itself still makes it covered."""
    corner = b"0 0 0 rg 100 300 30 40 re f "  # the triangle left empty below the image's left corner
    (item,) = _images(_run(_turned_xray(corner)))
    assert item.locator == "page 1, image 1" and item.image.size == (400, 400)
    over = b"0 0 0 rg 220 420 40 30 re f "  # on the image, near its middle
    (item,) = _images(_run(_turned_xray(corner + over)))
    assert item.locator == "page 1, image 1 (covered, rendered)" and item.metadata["covered"] is True
    doc = pymupdf.open(stream=_turned_xray(corner))  # the same on a page turned a quarter (/Rotate 90)
    doc[0].set_rotation(90)
    assert [i.locator for i in _images(_run(doc.tobytes()))] == ["page 1, image 1"]


def _stencil(ink: bytes) -> bytes:
    """A 1-bit /ImageMask (a signature's strokes: bars on a checkerboard, 400 x 300) painted with the fill colour
    `ink` (a PDF colour operator) at (100, 192)-(500, 492)."""
    w, h = 400, 300
    bits = np.zeros((h, w), dtype=bool)
    bits[(np.arange(h)[:, None] // 40 + np.arange(w)[None, :] // 40) % 2 == 1] = True
    mask = pdf_stream(f"/Type /XObject /Subtype /Image /Width {w} /Height {h} /ImageMask true /BitsPerComponent 1 "
                      "/Decode [1 0]", np.packbits(bits, axis=1).tobytes(), compress=True)
    return raw_pdf(b"q " + ink + b" 400 0 0 300 100 300 cm /M1 Do Q", "<< /XObject << /M1 5 0 R >> >>", [mask])


def test_a_stencil_mask_painted_in_a_colour_comes_out_in_that_colour_on_white():
    """A 1-bit image mask is ink: where its bits are set the page shows the fill colour it is painted with (red or
    blue ink of a scanned signature, a logo), white elsewhere. It came out black on white whatever the colour."""
    (item,) = _images(_run(_stencil(b"0.8 0.1 0.1 rg")))
    assert item.locator == "page 1, image 1" and item.image.size == (400, 300) and item.image.mode == "RGB"
    pixels = np.asarray(item.image).reshape(-1, 3)
    assert {tuple(p) for p in np.unique(pixels, axis=0)} == {(204, 26, 26), (255, 255, 255)}
    page = pymupdf.open(stream=_stencil(b"0.8 0.1 0.1 rg"))[0]
    seen = page.get_pixmap(clip=pymupdf.Rect(100, 192, 500, 492), alpha=False)  # as the reader sees it
    seen = np.asarray(Image.frombytes("RGB", (seen.width, seen.height), seen.samples), dtype=float)
    assert np.abs(seen - np.asarray(item.image, dtype=float)).mean() < 25
    (black,) = _images(_run(_stencil(b"0 g")))  # black ink: black on white, in grey as before
    assert black.image.mode == "L" and set(np.unique(np.asarray(black.image))) == {0, 255}


def _chart(page: pymupdf.Page, x: float, y: float) -> None:
    """A bar chart with tick labels, the same wherever it is drawn."""
    page.draw_rect(pymupdf.Rect(x, y, x + 200, y + 150), color=(0, 0, 0), width=1)
    for k in range(4):
        page.draw_rect(pymupdf.Rect(x + 20 + 45 * k, y + 120 - 25 * k, x + 50 + 45 * k, y + 150), color=None,
                       fill=(0.2, 0.4, 0.8))
        page.insert_text((x + 30 + 45 * k, y + 162), f"G{k}", fontsize=8)


@pytest.mark.parametrize("bad", [0, 1, 2, 3])
def test_a_damaged_image_is_numbered_where_the_page_draws_it(bad):
    """A photo MuPDF cannot load (its colour space cut off with the end of the file) is an error in its own place
    among the page's images: every photo keeps the number it has in the intact file (the damaged one came last,
    so the photos after it moved up one)."""
    intact, cut, xref = _cut_in_colour_space([(200, 160), (210, 160), (220, 160), (230, 160)], bad)
    whole = {i.metadata["xref"]: i.locator for i in _images(_run(intact))}
    items = [i for i in _run(cut) if i.locator]
    assert [i.locator for i in items] == [f"page 1, image {k}" for k in (1, 2, 3, 4)]
    assert [whole[i.metadata["xref"]] if isinstance(i, ImageItem) else i.error for i in items] == [
        f"page 1, image {k + 1}" if k != bad else items[k].error for k in range(4)]
    assert items[bad].error.startswith(f"could not decode embedded image (xref {xref})")
