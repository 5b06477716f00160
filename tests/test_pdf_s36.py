"""PDFs shaped like real articles and scans (s36): a scan stored in strips one or two pixel rows high."""

from __future__ import annotations

import io

import numpy as np
import pymupdf
import pytest
from PIL import Image

from medimg.sources import pdf
from medimg.sources.base import Blob, Context, ImageItem, ItemError, Limits


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def _picture(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([128 + 100 * np.sin(x / 9), 128 + 100 * np.cos(y / 13), (x + y) % 256], -1)
    return a.clip(0, 255).astype(np.uint8)


def _run(data: bytes) -> list:
    return list(pdf.open_pdf(Blob("scan.pdf", data), Context(Limits())))


def _striped(rows: int, height: float) -> tuple[bytes, pymupdf.Rect]:
    """A 300 x 240 px picture stored as strips `rows` pixel rows high, drawn over 300 x `height` points."""
    pic = _picture(240, 300)
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    n = 240 // rows
    for k in range(n):
        r = pymupdf.Rect(100, 100 + k * height / n, 400, 100 + (k + 1) * height / n)
        page.insert_image(r, stream=_png(pic[k * rows:(k + 1) * rows]), keep_proportion=False)
    return doc.tobytes(), pymupdf.Rect(100, 100, 400, 100 + height)


@pytest.mark.parametrize("rows, height", [(1, 200.0), (2, 180.0)])  # 240 strips 0.83 pt high; 120 strips 1.5 pt
def test_a_scan_stored_in_strips_a_row_or_two_high_comes_out_whole_as_the_page_shows_it(rows, height):
    """Strips under a point high were taken for nothing shown (the whole picture lost: "no images found"), and
    strips under 2 pt for table rules (the picture skipped as 120 decorations). Both are one figure."""
    data, area = _striped(rows, height)
    items = _run(data)
    assert [i.error for i in items if isinstance(i, ItemError)] == [], (rows, items)
    (fig,) = [i for i in items if isinstance(i, ImageItem)]
    assert fig.locator == "page 1, figure 1 (rendered)"
    box = pymupdf.Rect(fig.metadata["bbox"])
    assert max(abs(a - b) for a, b in zip(box, area)) < 2, (rows, box)
    # what reaches the model is what the page shows there
    page = pymupdf.open("pdf", data)[0]
    z = fig.image.width / box.width
    seen = page.get_pixmap(clip=box, matrix=pymupdf.Matrix(z, z))
    shown = np.frombuffer(seen.samples, np.uint8).reshape(seen.h, seen.w, seen.n)[..., :3].astype(float)
    got = np.asarray(fig.image.convert("RGB").resize((seen.w, seen.h))).astype(float)
    assert np.abs(shown - got).mean() < 3, rows


def test_thin_images_that_tile_nothing_stay_decorations():
    """A hairline image (600 x 1 px over 0.8 pt) vanished without a word; now it is a counted decoration. Ten
    rules made of images, 5 pt apart (a form's lines), are no figure: they cover too little of their area."""
    rule = _png(np.zeros((1, 600, 3), np.uint8))
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_image(pymupdf.Rect(50, 50, 550, 50.8), stream=rule, keep_proportion=False)
    thick = _png(np.full((2, 600, 3), 40, np.uint8))
    for k in range(10):
        page.insert_image(pymupdf.Rect(50, 300 + 5 * k, 550, 301.5 + 5 * k), stream=thick, keep_proportion=False)
    items = _run(doc.tobytes())
    assert [(type(i).__name__, i.error) for i in items] == [
        ("ItemError", "skipped 2 images smaller than 64 px (decoration)")]
