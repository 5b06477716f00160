"""PDFs as users give them (s44): an image whose soft mask was cut off or is missing."""

from __future__ import annotations

import io

import numpy as np
import pymupdf
from PIL import Image

from medimg.sources import pdf, pdf_figures
from medimg.sources.base import Blob, Context, ImageItem, Limits


def _photo(w: int = 200, h: int = 150) -> np.ndarray:
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None]
    a[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    a[: h // 4, : w // 4] = (255, 0, 0)
    return a


def _png(a: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(a).save(out, "PNG")
    return out.getvalue()


def _masked(mask_ref: str | None = None) -> tuple[bytes, int]:
    """One page drawing a 200 × 150 photo (Flate RGB) at (50, 50)-(450, 350) under an opaque /SMask written after
    it (or under `mask_ref`, which names no object); the PDF and the offset where the mask's object starts."""
    doc = pymupdf.open()
    page = doc.new_page(width=500, height=400)
    content = doc.get_new_xref()
    doc.update_object(content, "<<>>")
    doc.update_stream(content, b"q 400 0 0 300 50 50 cm /I0 Do Q")
    xref, mask = doc.get_new_xref(), doc.get_new_xref()
    doc.update_object(xref, "<</Type/XObject/Subtype/Image/Width 200/Height 150/BitsPerComponent 8"
                            f"/ColorSpace/DeviceRGB/SMask {mask_ref or f'{mask} 0 R'}>>")
    doc.update_stream(xref, _photo().tobytes())
    doc.update_object(mask, "<</Type/XObject/Subtype/Image/Width 200/Height 150/BitsPerComponent 8"
                            "/ColorSpace/DeviceGray>>")
    doc.update_stream(mask, bytes([255]) * 200 * 150)
    doc.xref_set_key(page.xref, "Resources", f"<</XObject<</I0 {xref} 0 R>>>>")
    doc.xref_set_key(page.xref, "Contents", f"{content} 0 R")
    data = doc.tobytes()
    return data, data.index(f"\n{mask} 0 obj".encode())


def _shown(data: bytes) -> np.ndarray:
    page = pymupdf.open(stream=data, filetype="pdf")[0]
    pix = page.get_pixmap(clip=pymupdf.Rect(50, 50, 450, 350), matrix=pymupdf.Matrix(0.5, 0.5), alpha=False)
    return np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width, 3)


def test_an_image_whose_soft_mask_was_cut_off_still_comes_out_as_the_page_shows_it():
    # a download cut short just before the image's /SMask object: MuPDF repairs the file and draws the photo
    # without its mask. Before, decoding loaded the mask on its own and failed ("bad xref"): the image was lost
    whole, cut = _masked()
    for data in (whole[:cut], _masked("999 0 R")[0]):  # cut off; a reference to an object that is not there
        items = list(pdf.open_pdf(Blob("report.pdf", data), Context(Limits())))
        images = [i for i in items if isinstance(i, ImageItem)]
        assert [i.locator for i in images] == ["page 1, image 1"], items
        assert not [i for i in items if not isinstance(i, ImageItem) and not i.skipped]
        got = np.asarray(images[0].image)
        assert images[0].image.mode == "RGB" and np.array_equal(got, _photo())
        assert images[0].metadata["smask"] is False  # the mask it names was not applied
        assert np.abs(got.astype(int) - _shown(data)).mean() < 1  # as the page shows it
    # the whole file keeps its mask (an alpha channel)
    (image,) = [i for i in pdf.open_pdf(Blob("report.pdf", whole), Context(Limits())) if isinstance(i, ImageItem)]
    assert image.image.mode == "RGBA" and image.metadata["smask"] is True


def test_the_same_note_on_consecutive_pages_is_one_note(monkeypatch):
    monkeypatch.setattr(pdf_figures, "PAGE_MAX_IMAGES", 50)  # 2,000 in use: the same, only slower
    monkeypatch.setattr(pdf, "PAGE_MAX_IMAGES", 50)
    # an atlas whose pages each draw an icon more than PAGE_MAX_IMAGES times: one note for pages 1–4 (before, one a
    # page: 62 of them for a 100-page atlas), and the note of a page after a gap stays its own
    doc = pymupdf.open()
    icon = None
    content = b"".join(f"q 40 0 0 40 {10 + (i % 12) * 45} {10 + (i // 12) * 45} cm /Im Do Q\n".encode()
                       for i in range(pdf.PAGE_MAX_IMAGES + 1))
    for k in range(6):
        page = doc.new_page(width=600, height=800)
        if icon is None:
            icon = page.insert_image(pymupdf.Rect(0, 0, 1, 1), stream=_png(_photo(80, 80)))
        if k == 4:
            continue  # a page with no icons
        stream = doc.get_new_xref()
        doc.update_object(stream, "<<>>")
        doc.update_stream(stream, content)
        doc.xref_set_key(page.xref, "Resources", f"<</XObject<</Im {icon} 0 R>>>>")
        doc.xref_set_key(page.xref, "Contents", f"{stream} 0 R")
    items = list(pdf.open_pdf(Blob("atlas.pdf", doc.tobytes()), Context(Limits())))
    notes = [(i.locator, i.error) for i in items if not isinstance(i, ImageItem) and "images drawn" in i.error]
    why = "more than 50 images drawn: figures not looked for, images listed without their place"
    assert notes == [("pages 1–4", why), ("page 6", why)]
    assert len([i for i in items if isinstance(i, ImageItem)]) == 1  # the icon, once
