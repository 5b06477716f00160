"""PDF source: what counts as drawn over an image (a cover), so that the image is rendered as the reader sees it:
shapes of any kind, strokes, runs of block glyphs and shadings by what they paint; not a frame on its edge,
hairlines, letters or dots; and an image drawn at the very place of another. PDFs built with PyMuPDF or by hand."""

from __future__ import annotations

import time
import zlib

import numpy as np
import pymupdf
import pytest
from PIL import Image, ImageDraw

from builders import pdf_stream, raw_pdf
from test_pdf_s30 import _images, _page_with_xray, _png, _run, _xray

RED = (1, 0, 0)
SHAPES = {  # each over the name burnt into the X-ray (page 110-190 x 110-125), or beside it
    "ellipse": lambda page: page.draw_oval(pymupdf.Rect(105, 100 + 5, 195, 130), color=None, fill=RED),
    "rounded box": lambda page: page.draw_rect(pymupdf.Rect(105, 105, 195, 130), color=None, fill=RED, radius=0.3),
    "thick line": lambda page: page.draw_line((108, 118), (192, 118), color=RED, width=16),
    "arrow": lambda page: (page.draw_line((150, 200), (230, 250), color=RED, width=1.5),
                           page.draw_polyline([(150, 200), (162, 201), (156, 210)], color=None, fill=RED,
                                              closePath=True)),
    "circle": lambda page: page.draw_circle((200, 220), 20, color=RED, width=1.5),
    "block glyphs": lambda page: page.insert_text((110, 124), "nnnnnn", fontsize=14, fontname="zadb", color=RED),
}
WHERE = {"arrow": (150, 200), "circle": (220, 220)}  # a point the shape paints (page); else (150, 118)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_shape_a_stroke_or_block_glyphs_drawn_over_an_image_come_out_with_it(shape):
    """An ellipse, a rounded box, a thick line, an arrow (line and head), a circle and a run of block glyphs
    (■■■■ typed over a name) drawn over an X-ray: the reader sees them, so the image is rendered as seen,
    with the shape in it in red. Before, only rectangles counted: the raw image came out without them."""
    doc = pymupdf.open()
    SHAPES[shape](_page_with_xray(doc))
    (item,) = _images(_run(doc.tobytes()))
    assert item.locator == "page 1, image 1 (covered, rendered)" and item.metadata["covered"] is True
    scale = item.image.width / 200  # pixels a point
    x, y = WHERE.get(shape, (150, 118))
    r, g, b = np.asarray(item.image.convert("RGB"))[round((y - 100) * scale), round((x - 100) * scale)]
    assert r > 200 and g < 60 and b < 60, (shape, r, g, b)


def test_a_frame_on_the_edge_hairlines_a_letter_and_a_dot_leave_the_image_but_a_circle_does_not():
    """A frame stroked on the image's edge (2 pt), crop marks (0.25 pt) reaching into its corners, a letter
    and a dot (3 pt across) together paint next to nothing of the X-ray that is not its edge: the embedded image
    comes out untouched. The same page with a circle drawn on the X-ray comes out rendered, frame and all."""
    doc = pymupdf.open()
    for circled in (False, True):
        page = _page_with_xray(doc)
        page.draw_rect(pymupdf.Rect(100, 100, 300, 300), color=(0, 0, 0), width=2)
        for x, y in ((100, 100), (300, 100), (100, 300), (300, 300)):
            page.draw_line((x - 12, y), (x + 12, y), color=(0, 0, 0), width=0.25)
            page.draw_line((x, y - 12), (x, y + 12), color=(0, 0, 0), width=0.25)
        page.insert_text((270, 290), "A", fontsize=14, color=(1, 1, 1))
        page.draw_circle((250, 150), 1.5, color=None, fill=(1, 1, 0))
        if circled:
            page.draw_circle((200, 220), 20, color=RED, width=1.5)
    plain, circled = _images(_run(doc.tobytes()))
    assert plain.locator == "page 1, image 1" and plain.format != "PDF/rendered" and "covered" not in plain.metadata
    assert np.array_equal(np.asarray(plain.image), np.asarray(_xray()))  # the embedded pixels
    assert circled.locator == "page 2, image 1 (covered, rendered)"


def test_see_through_or_underlying_paint_is_no_cover_and_an_opaque_shading_is():
    """Written by hand: an ellipse at fill opacity 0.4, an ellipse and a shading drawn before the image (under
    it) leave the embedded image; an axial shading clipped to a box over the name, drawn after it, hides the
    name, so the image is rendered."""
    pixels = zlib.compress(_xray().tobytes())
    xray = pdf_stream("/Type /XObject /Subtype /Image /Width 400 /Height 400 /ColorSpace /DeviceGray "
                      "/BitsPerComponent 8 /Filter /FlateDecode", pixels)
    shading = ("<< /ShadingType 2 /ColorSpace /DeviceRGB /Coords [105 0 195 0] /Function << /FunctionType 2 "
               "/Domain [0 1] /C0 [1 0 0] /C1 [0 0 1] /N 1 >> >>")
    resources = "<< /XObject << /Im 5 0 R >> /ExtGState << /See 6 0 R >> /Shading << /Sh 7 0 R >> >>"
    extra = [xray, "<< /ca 0.4 >>", shading]
    draw = b"q 200 0 0 200 100 492 cm /Im Do Q "  # the X-ray at (100, 100)-(300, 300), page y down
    k = 0.5523  # a Bezier circle's control points
    ellipse = (b"1 0 0 rg 150 674.5 m " + f"{150 + 45 * k:.2f} 674.5 195 {662 + 12.5 * k:.2f} 195 662 c ".encode()
               + f"195 {662 - 12.5 * k:.2f} {150 + 45 * k:.2f} 649.5 150 649.5 c ".encode()
               + f"{150 - 45 * k:.2f} 649.5 105 {662 - 12.5 * k:.2f} 105 662 c ".encode()
               + f"105 {662 + 12.5 * k:.2f} {150 - 45 * k:.2f} 674.5 150 674.5 c f ".encode())
    shade = b"q 105 662 90 25 re W n /Sh sh Q "  # over the name: (105, 105)-(195, 130)
    for content in (draw + b"q /See gs " + ellipse + b"Q ", ellipse + draw, shade + draw):
        (item,) = _images(_run(raw_pdf(content, resources, extra)))
        assert item.locator == "page 1, image 1" and item.image.size == (400, 400), content
    (item,) = _images(_run(raw_pdf(draw + ellipse, resources, extra)))
    assert item.locator == "page 1, image 1 (covered, rendered)"
    (item,) = _images(_run(raw_pdf(draw + shade, resources, extra)))
    assert item.locator == "page 1, image 1 (covered, rendered)"
    name = np.asarray(item.image.convert("RGB").crop((24, 24, 176, 46))).reshape(-1, 3).astype(int)
    assert (name.max(axis=1) - name.min(axis=1)).min() > 100  # red to blue everywhere: no white name left


def _labelled() -> Image.Image:
    """The X-ray's labelled copy: the name blacked out in its pixels, an arrow-like mark added."""
    img = _xray().convert("RGB")
    draw = ImageDraw.Draw(img)
    draw.rectangle([20, 20, 180, 50], fill=(0, 0, 0))
    draw.polygon([(200, 200), (260, 210), (230, 240)], fill=(255, 255, 0))
    return img


def _under_a_stencil() -> bytes:
    """Written by hand: an X-ray that itself covers a background picture, with a stencil mask (a label in one
    colour, /ImageMask) drawn at the X-ray's very place after it."""
    xray = pdf_stream("/Type /XObject /Subtype /Image /Width 400 /Height 400 /ColorSpace /DeviceGray "
                      "/BitsPerComponent 8 /Filter /FlateDecode", zlib.compress(_xray().tobytes()))
    back = pdf_stream("/Type /XObject /Subtype /Image /Width 300 /Height 300 /ColorSpace /DeviceRGB "
                      "/BitsPerComponent 8 /Filter /FlateDecode",
                      zlib.compress(np.full((300, 300, 3), (30, 90, 150), np.uint8).tobytes()))
    bits = np.zeros((400, 400), np.uint8)
    bits[200:260, 40:200] = 1  # the label's ink
    stencil = pdf_stream("/Type /XObject /Subtype /Image /Width 400 /Height 400 /ImageMask true "
                         "/BitsPerComponent 1 /Decode [1 0] /Filter /FlateDecode",
                         zlib.compress(np.packbits(bits, axis=1).tobytes()))
    content = (b"q 300 0 0 300 50 442 cm /Bg Do Q q 200 0 0 200 100 492 cm /Im Do Q "
               b"1 1 0 rg q 200 0 0 200 100 492 cm /St Do Q ")
    return raw_pdf(content, "<< /XObject << /Im 5 0 R /Bg 6 0 R /St 7 0 R >> >>", [xray, back, stencil])


def test_an_image_drawn_over_another_at_its_very_place_hides_it_unless_it_lets_it_show():
    """A labelled copy laid exactly over the original X-ray (as some editors export an edited figure): the reader
    sees only the copy, so only the copy comes out, and the name under it never does. A copy with transparency
    (a soft mask) lets the original show: both come out, as does an X-ray with a stencil mask (a label) drawn at its
    place. An X-ray under a larger black box shows nothing and is not reported; the same X-ray drawn twice at one
    place is one image."""
    doc = pymupdf.open()
    _page_with_xray(doc).insert_image(pymupdf.Rect(100, 100, 300, 300), stream=_png(_labelled()))
    see_through = _labelled().convert("RGBA")
    see_through.putalpha(0)  # see-through but for the mark
    ImageDraw.Draw(see_through).polygon([(200, 200), (260, 210), (230, 240)], fill=(255, 255, 0, 255))
    _page_with_xray(doc).insert_image(pymupdf.Rect(100, 100, 300, 300), stream=_png(see_through))
    _page_with_xray(doc).draw_rect(pymupdf.Rect(90, 90, 310, 310), color=None, fill=(0, 0, 0))
    page = _page_with_xray(doc)
    page.insert_image(pymupdf.Rect(100, 100, 300, 300), stream=_png(_xray()))
    page.insert_text((50, 400), "Figure 4.", fontsize=10)
    items = _images(_run(doc.tobytes()))
    assert [(i.locator, i.image.mode, i.metadata["pages"]) for i in items] == [
        ("page 1, image 1", "RGB", [1]), ("page 2, image 1", "L", [2, 4]), ("page 2, image 2", "RGBA", [2])]
    copy = np.asarray(items[0].image)
    assert copy[20:50, 20:180].max() == 0  # the copy, its name blacked out: the original's never comes out
    assert np.array_equal(np.asarray(items[1].image), np.asarray(_xray()))
    # a stencil mask drawn at an image's place lets it show: the X-ray still comes out (and the background it
    # covers, rendered, and the stencil)
    items = _images(_run(_under_a_stencil()))
    assert [(i.locator, i.image.size, i.image.mode) for i in items] == [
        ("page 1, image 1", (400, 400), "L"), ("page 1, image 2", (400, 400), "RGB"),
        ("page 1, image 3 (covered, rendered)", (300, 300), "RGB")]


def test_thousands_of_small_shapes_over_an_image_cost_little_and_hide_it():
    """3,000 hairline circles drawn over a photo: each one past the first 1,000 counts by its box, none is
    missed, and the page takes well under a second or two."""
    doc = pymupdf.open()
    page = _page_with_xray(doc)
    shape = page.new_shape()
    rng = np.random.default_rng(0)
    for x, y in rng.uniform(110, 290, size=(3000, 2)):
        shape.draw_circle((x, y), 1.0)
        shape.finish(color=(1, 1, 0), width=0.2)  # each a path of its own
    shape.commit()
    data = doc.tobytes()
    start = time.process_time()
    (item,) = _images(_run(data))
    assert time.process_time() - start < 3
    assert item.locator == "page 1, image 1 (covered, rendered)"
