"""Images clipped to shapes other than rectangles (s36): an ellipse, a circle, a polygon, a star, a frame with a
hole, text in clipping mode. They were judged by the clip's bounding box, so an image clipped to an ellipse that
fills its box came out whole, hidden corners (and a name written there) included."""

from __future__ import annotations

import math

import numpy as np
import pymupdf
import pytest

from builders import pdf_objects, pdf_stream, raw_pdf
from medimg.sources import pdf
from medimg.sources.base import Blob, Context, ImageItem, ItemError, Limits

K = 0.5523  # Bézier handles of a quarter ellipse


def _picture(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A smooth picture with a black "name" in its top-left corner (60 x 30 px)."""
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([128 + 100 * np.sin(x / 9 + seed), 128 + 100 * np.cos(y / 13), (x + y) % 256], -1)
    a = a.clip(0, 255).astype(np.uint8)
    a[:30, :60] = 0
    return a


def _image(w: int, h: int, seed: int = 0) -> bytes:
    keys = f"/Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceRGB /BitsPerComponent 8"
    return pdf_stream(keys, _picture(w, h, seed).tobytes(), compress=True)


def _ellipse(cx: float, cy: float, rx: float, ry: float) -> str:
    return (f"{cx + rx} {cy} m {cx + rx} {cy + K * ry} {cx + K * rx} {cy + ry} {cx} {cy + ry} c "
            f"{cx - K * rx} {cy + ry} {cx - rx} {cy + K * ry} {cx - rx} {cy} c "
            f"{cx - rx} {cy - K * ry} {cx - K * rx} {cy - ry} {cx} {cy - ry} c "
            f"{cx + K * rx} {cy - ry} {cx + rx} {cy - K * ry} {cx + rx} {cy} c h ")


def _rounded(x: float, y: float, w: float, h: float, r: float) -> str:
    k = r * (1 - K)
    return (f"{x + r} {y} m {x + w - r} {y} l {x + w - k} {y} {x + w} {y + k} {x + w} {y + r} c "
            f"{x + w} {y + h - r} l {x + w} {y + h - k} {x + w - k} {y + h} {x + w - r} {y + h} c "
            f"{x + r} {y + h} l {x + k} {y + h} {x} {y + h - k} {x} {y + h - r} c "
            f"{x} {y + r} l {x} {y + k} {x + k} {y} {x + r} {y} c h ")


def _star(cx: float, cy: float, outer: float, inner: float, n: int = 5) -> str:
    points = [(cx + (outer, inner)[i % 2] * math.sin(math.pi * i / n), cy + (outer, inner)[i % 2]
               * math.cos(math.pi * i / n)) for i in range(2 * n)]
    return f"{points[0][0]:.2f} {points[0][1]:.2f} m " + " ".join(f"{x:.2f} {y:.2f} l" for x, y in points[1:]) + " h "


WIDE = "300 0 0 200 100 400 cm /Im1 Do"  # 300 x 200 px over x 100-400, y 400-600 (page top 192-392)
SQUARE = "200 0 0 200 100 400 cm /Im1 Do"  # 200 x 200 px over x 100-300, y 400-600
RESOURCES = "<< /XObject << /Im1 5 0 R >> /Font << /F1 6 0 R >> >>"
FONT = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold >>"

SHAPES = {  # name: (image size, content, the box of what is seen, top-left corner hidden)
    "ellipse filling the box": ((300, 200), f"q {_ellipse(250, 500, 150, 100)}W n {WIDE} Q", (100, 192, 400, 392),
                                True),
    "circle in a square image": ((200, 200), f"q {_ellipse(200, 500, 100, 100)}W n {SQUARE} Q", (100, 192, 300, 392),
                                 True),
    "diamond": ((300, 200), f"q 250 400 m 400 500 l 250 600 l 100 500 l h W n {WIDE} Q", (100, 192, 400, 392), True),
    "star over the box": ((200, 200), f"q {_star(200, 500, 130, 75)}W n {SQUARE} Q", (100, 192, 300, 392), True),
    "rectangle then ellipse": ((300, 200), f"q 100 400 290 200 re W n {_ellipse(250, 500, 150, 100)}W n {WIDE} Q",
                               (100, 192, 390, 392), True),
    "frame with a hole (even-odd)": ((300, 200), f"q 100 400 300 200 re {_ellipse(250, 500, 60, 60)}W* n {WIDE} Q",
                                     (100, 192, 400, 392), False),
    "text in clipping mode": ((300, 200), f"q BT 7 Tr /F1 250 Tf 90 400 Td (WM) Tj ET {WIDE} Q", None, False),
}


def _run(data: bytes) -> list:
    return list(pdf.open_pdf(Blob("clipped.pdf", data), Context(Limits())))


def _difference(data: bytes, item: ImageItem) -> float:
    """Mean |difference| (0-255) between the item's pixels and the page's render of its box at its resolution."""
    page = pymupdf.open("pdf", data)[item.metadata["page"] - 1]
    box = pymupdf.Rect(item.metadata["bbox"])
    z = item.image.width / box.width
    seen = page.get_pixmap(clip=box, matrix=pymupdf.Matrix(z, z), alpha=False)
    shown = np.frombuffer(seen.samples, np.uint8).reshape(seen.h, seen.w, 3).astype(float)
    got = np.asarray(item.image.convert("RGB").resize((seen.w, seen.h))).astype(float)
    return float(np.abs(shown - got).mean())


@pytest.mark.parametrize("name", list(SHAPES))
def test_an_image_clipped_to_a_shape_that_hides_a_tenth_of_it_comes_out_as_the_page_shows_it(name):
    """Each shape's bounding box is (nearly) the image's own, so the image came out whole (its stored pixels,
    32-68 grey levels from the page on average, the name in the corner included). Now it is rendered as seen."""
    size, content, box, corner_hidden = SHAPES[name]
    data = raw_pdf(content.encode(), RESOURCES, [_image(*size), FONT])
    items = _run(data)
    assert [i for i in items if isinstance(i, ItemError)] == []
    (item,) = items
    assert item.locator == "page 1, image 1 (cropped, rendered)", name
    assert item.metadata.get("rendered") is True and "xref" not in item.metadata
    if box is not None:
        assert max(abs(a - b) for a, b in zip(item.metadata["bbox"], box)) < 1, item.metadata["bbox"]
    assert _difference(data, item) < 3, name
    if corner_hidden:  # the name written in the corner the shape hides does not come out
        corner = np.asarray(item.image.convert("L"))[:6, :6]
        assert corner.min() > 240, corner


def test_shapes_that_hide_little_leave_the_image_whole_and_the_others_crop_it():
    """On one page: a rounded box with 10-point corners (0.1 % hidden) and 40-point corners (2.3 %), a path whose
    hole is filled back by the nonzero rule, and a picture turned 30 degrees inside a form whose box (a turned
    rectangle) is the picture's own edge: all four come out as the embedded images, as before. A fifth, clipped
    to an ellipse, is rendered as seen (it came out whole before)."""
    turned = pdf_stream("/Type /XObject /Subtype /Form /BBox [0 0 150 100] /Resources << /XObject << /Im4 8 0 R >> >>",
                        b"q 150 0 0 100 0 0 cm /Im4 Do Q")
    content = (f"q {_rounded(20, 650, 150, 100, 10)}W n 150 0 0 100 20 650 cm /Im1 Do Q "
               f"q {_rounded(220, 650, 150, 100, 40)}W n 150 0 0 100 220 650 cm /Im2 Do Q "
               f"q 420 650 150 100 re {_ellipse(495, 700, 30, 30)}W n 150 0 0 100 420 650 cm /Im3 Do Q "
               f"q 0.866 0.5 -0.5 0.866 120 380 cm /Fm1 Do Q "
               f"q {_ellipse(445, 450, 75, 50)}W n 150 0 0 100 370 400 cm /Im5 Do Q")
    resources = ("<< /XObject << /Im1 5 0 R /Im2 6 0 R /Im3 7 0 R /Fm1 9 0 R /Im5 10 0 R >> >>")
    data = raw_pdf(content.encode(), resources,
                   [_image(150, 100, 1), _image(150, 100, 2), _image(150, 100, 3), _image(150, 100, 4), turned,
                    _image(150, 100, 5)])
    items = _run(data)
    assert [i for i in items if isinstance(i, ItemError)] == []
    whole = [i for i in items if "xref" in i.metadata]
    assert sorted(i.metadata["xref"] for i in whole) == [5, 6, 7, 8], [i.locator for i in items]
    assert all(not i.metadata.get("rendered") for i in whole)
    (cropped,) = [i for i in items if i.metadata.get("rendered")]
    assert cropped.locator.endswith("(cropped, rendered)")
    assert max(abs(a - b) for a, b in zip(cropped.metadata["bbox"], (370, 292, 520, 392))) < 1
    assert _difference(data, cropped) < 3


def test_one_image_under_two_shapes_is_rendered_once_for_each_shape():
    """The same image clipped to an ellipse on pages 1 and 3 and to a diamond on page 2, each over the whole of
    its box: two renders (the ellipse's listing pages 1 and 3), not one embedded image for the three pages."""
    contents = [f"q {_ellipse(250, 500, 150, 100)}W n {WIDE} Q",
                f"q 250 400 m 400 500 l 250 600 l 100 500 l h W n {WIDE} Q",
                f"q {_ellipse(250, 500, 150, 100)}W n {WIDE} Q"]
    n = len(contents)
    objects = ["<< /Type /Catalog /Pages 2 0 R >>",
               f"<< /Type /Pages /Kids [{' '.join(f'{3 + k} 0 R' for k in range(n))}] /Count {n} >>"]
    objects += [f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im1 "
                f"{3 + 2 * n} 0 R >> >> /Contents {3 + n + k} 0 R >>" for k in range(n)]
    objects += [pdf_stream("", c.encode()) for c in contents] + [_image(300, 200)]
    data = pdf_objects(objects)
    items = _run(data)
    assert [i for i in items if isinstance(i, ItemError)] == []
    assert [(i.locator, i.metadata["pages"]) for i in items] == [
        ("page 1, image 1 (cropped, rendered)", [1, 3]), ("page 2, image 1 (cropped, rendered)", [2])]
    assert all(_difference(data, i) < 3 for i in items)
