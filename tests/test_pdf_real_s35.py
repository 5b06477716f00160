"""PDFs as real tools write them (s35): grey images stored by MuPDF carry its sGray ICC profile."""

from __future__ import annotations

import io

import numpy as np
import pymupdf
from PIL import Image

from medimg.sources import pdf
from medimg.sources.base import Blob, Context, ImageItem, Limits


def _grey_scan(size: int = 1600) -> bytes:
    """A grey JPEG holding every grey level (a ramp), with a dark block top left."""
    ramp = np.tile(np.linspace(0, 255, size).astype(np.uint8), (size, 1))
    ramp[:200, :200] = 10
    buf = io.BytesIO()
    Image.fromarray(ramp, "L").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _images(data: bytes, **limits) -> list[ImageItem]:
    return [i for i in pdf.open_pdf(Blob("scan.pdf", data), Context(Limits(**limits))) if isinstance(i, ImageItem)]


def test_a_grey_jpeg_with_mupdfs_sgray_profile_is_decoded_by_pillow_with_the_same_values():
    jpeg = _grey_scan()
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_image(page.rect, stream=jpeg)
    xref = page.get_images(full=True)[0][0]
    assert "sGray" in pymupdf.Pixmap(doc, xref).colorspace.name  # as MuPDF stores every grey image
    data = doc.tobytes()
    # decoded by Pillow (not MuPDF), so a big scan decodes at a fraction of its size when the model wants less
    [small] = _images(data, decode_side=200)
    assert (small.image.mode, small.image.size, small.full_size) == ("L", (200, 200), (1600, 1600))
    draft = Image.open(io.BytesIO(jpeg))
    draft.draft("L", (200, 200))
    assert np.array_equal(np.asarray(small.image), np.asarray(draft))
    # and at full size the values are those MuPDF shows on the page (its conversion from sGray changes none)
    [full] = _images(data)
    shown = pymupdf.Pixmap(pymupdf.csGRAY, pymupdf.Pixmap(doc, xref))
    assert full.image.size == (1600, 1600)
    assert np.array_equal(np.asarray(full.image), np.frombuffer(shown.samples, np.uint8).reshape(1600, 1600))
