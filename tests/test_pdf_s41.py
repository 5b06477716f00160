"""PDFs as users give them (s41): an image shown as a thumbnail before it is shown whole."""

from __future__ import annotations

import io

import numpy as np
import pymupdf
from PIL import Image

from medimg.sources import pdf
from medimg.sources.base import Blob, Context, ImageItem, Limits


def _run(data: bytes) -> list:
    return [i for i in pdf.open_pdf(Blob("report.pdf", data), Context(Limits())) if isinstance(i, ImageItem)]


def _photo() -> bytes:
    """An 800 × 600 JPEG whose top-left quarter is red (to tell how it is turned)."""
    a = np.zeros((600, 800, 3), np.uint8)
    a[..., 1] = np.linspace(0, 255, 800, dtype=np.uint8)[None]
    a[:150, :200] = (255, 0, 0)
    out = io.BytesIO()
    Image.fromarray(a).save(out, "JPEG", quality=90)
    return out.getvalue()


def test_an_image_shown_as_a_thumbnail_first_is_reported_where_it_is_shown_whole():
    # a summary page of thumbnails (each 24 × 18 points, too small to stand alone), then the image whole on page 2,
    # turned a quarter. Before, it was reported at the thumbnail (page 1, a 24-point bbox, as the thumbnail is
    # turned: not at all); the docs say an image also drawn alone elsewhere is reported where it is drawn alone
    doc = pymupdf.open()
    thumb = doc.new_page()
    xref = thumb.insert_image(pymupdf.Rect(50, 50, 74, 68), stream=_photo())
    doc.new_page().insert_image(pymupdf.Rect(50, 50, 350, 450), xref=xref, rotate=90)
    data = doc.tobytes()
    images = _run(data)
    assert len(images) == 1
    item = images[0]
    assert item.locator == "page 2, image 1"
    assert item.metadata["page"] == 2 and item.metadata["pages"] == [1, 2] and item.metadata["xref"] == xref
    assert item.metadata["bbox"] == [50.0, 50.0, 350.0, 450.0]
    assert item.image.size == (600, 800)  # turned as page 2 draws it
    page = pymupdf.open(stream=data, filetype="pdf")[1]
    shown = page.get_pixmap(matrix=pymupdf.Matrix(2, 2), clip=pymupdf.Rect(50, 50, 350, 450), alpha=False)
    shown = np.frombuffer(shown.samples, np.uint8).reshape(shown.height, shown.width, 3).astype(int)
    assert np.abs(np.asarray(item.image.convert("RGB")).astype(int) - shown).mean() < 3  # as page 2 shows it


def test_a_thumbnail_after_the_whole_image_leaves_it_where_it_is_shown_whole():
    # the other order (whole on page 1, a thumbnail on page 2): reported on page 1, as before
    doc = pymupdf.open()
    xref = doc.new_page().insert_image(pymupdf.Rect(50, 50, 450, 350), stream=_photo())
    doc.new_page().insert_image(pymupdf.Rect(100, 100, 124, 118), xref=xref)
    images = _run(doc.tobytes())
    assert [i.locator for i in images] == ["page 1, image 1"]
    assert images[0].metadata["bbox"] == [50.0, 50.0, 450.0, 350.0] and images[0].metadata["pages"] == [1, 2]


def _masked_page(doc: pymupdf.Document, alpha: int, size: tuple[int, int] = (400, 300),
                 drawn: tuple[int, int] = (400, 300)) -> None:
    """A page drawing a photo of `size` pixels (Flate RGB), `drawn` points large, under an /SMask that is `alpha`
    everywhere."""
    (w, h), (dw, dh) = size, drawn
    photo = np.asarray(Image.open(io.BytesIO(_photo())).resize((w, h)))
    page = doc.new_page(width=500, height=400)
    mask = doc.get_new_xref()
    doc.update_object(mask, f"<</Type/XObject/Subtype/Image/Width {w}/Height {h}/BitsPerComponent 8"
                            "/ColorSpace/DeviceGray>>")
    doc.update_stream(mask, bytes([alpha]) * (w * h))
    xref = doc.get_new_xref()
    doc.update_object(xref, f"<</Type/XObject/Subtype/Image/Width {w}/Height {h}/BitsPerComponent 8"
                            f"/ColorSpace/DeviceRGB/SMask {mask} 0 R>>")
    doc.update_stream(xref, photo.tobytes())
    content = doc.get_new_xref()
    doc.update_object(content, "<<>>")
    doc.update_stream(content, f"q {dw} 0 0 {dh} 50 50 cm /I0 Do Q".encode())
    doc.xref_set_key(page.xref, "Resources", f"<</XObject<</I0 {xref} 0 R>>>>")
    doc.xref_set_key(page.xref, "Contents", f"{content} 0 R")


def test_an_image_its_soft_mask_hides_everywhere_does_not_come_out_and_a_faint_one_does():
    # a photo kept under an /SMask of 0 (a spacer or an overlay): the page shows nothing there. Before, it came out
    # as an RGBA image transparent everywhere (blank white to the model), classified like any picture
    doc = pymupdf.open()
    _masked_page(doc, 0)
    _masked_page(doc, 8)  # a faint watermark (3 %): seen, so reported
    items = list(pdf.open_pdf(Blob("report.pdf", doc.tobytes()), Context(Limits())))
    images = [i for i in items if isinstance(i, ImageItem)]
    assert [i.locator for i in images] == ["page 2, image 1"] and images[0].image.mode == "RGBA"
    hidden = [i for i in items if not isinstance(i, ImageItem) and i.locator == "page 1, image 1"]
    assert len(hidden) == 1 and hidden[0].skipped and "transparent everywhere" in hidden[0].error


def test_a_small_image_hidden_everywhere_and_drawn_larger_is_no_blank_figure():
    """A small image drawn enlarged comes out rendered as a figure; hidden by its mask everywhere, that rendering
    was a white rectangle the model classified (s41_docs). Now a skipped note; a faint one still comes out."""
    doc = pymupdf.open()
    _masked_page(doc, 0, size=(64, 48), drawn=(200, 150))
    _masked_page(doc, 8, size=(64, 48), drawn=(200, 150))
    items = list(pdf.open_pdf(Blob("report.pdf", doc.tobytes()), Context(Limits())))
    images = [i for i in items if isinstance(i, ImageItem)]
    assert [i.locator.split(",")[0] for i in images] == ["page 2"], items
    hidden = [i for i in items if not isinstance(i, ImageItem) and i.locator.startswith("page 1")]
    assert len(hidden) == 1 and hidden[0].skipped and "nothing of it shows" in hidden[0].error, items
