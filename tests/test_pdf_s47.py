"""PDFs as users give them (s47): a download cut off before its page tree; pages of many small icons."""

from __future__ import annotations

import io
import types

import numpy as np
import pymupdf
from PIL import Image

from medimg.sources import pdf, pdf_figures
from medimg.sources.base import Blob, Context, ImageItem, Limits


def _photo(w: int, h: int, k: int) -> np.ndarray:
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None]
    a[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    a[..., 2] = 60 * k
    return a


def _encoded(a: np.ndarray, kind: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(a).save(out, kind, quality=95)
    return out.getvalue()


def _icons(n: int) -> bytes:
    """One page drawing n distinct 8 × 8 grey icons (each its own xref, all the same size) in a grid."""
    doc = pymupdf.open()
    page = doc.new_page(width=600, height=800)
    names, content = [], []
    for i in range(n):
        xref = doc.get_new_xref()
        doc.update_object(xref, "<</Type/XObject/Subtype/Image/Width 8/Height 8/BitsPerComponent 8"
                                "/ColorSpace/DeviceGray>>")
        doc.update_stream(xref, i.to_bytes(2, "big") * 32)
        names.append(f"/I{i} {xref} 0 R")
        content.append(f"q 6 0 0 6 {10 + (i % 80) * 7} {10 + (i // 80) * 7} cm /I{i} Do Q")
    stream = doc.get_new_xref()
    doc.update_object(stream, "<<>>")
    doc.update_stream(stream, "\n".join(content).encode())
    doc.xref_set_key(page.xref, "Resources", "<</XObject<<" + " ".join(names) + ">>>>")
    doc.xref_set_key(page.xref, "Contents", f"{stream} 0 R")
    return doc.tobytes()


def test_a_pdf_cut_off_before_its_page_tree_still_gives_the_images_stored_whole():
    # a PDF 1.5+ keeps its page objects in an object stream, written at the end: a download cut short loses every
    # page, while the images before the cut are whole. Before, the file was only "broken PDF: no readable pages"
    doc = pymupdf.open()
    for k in range(3):
        page = doc.new_page(width=500, height=400)
        page.insert_image(pymupdf.Rect(50, 50, 450, 350), stream=_encoded(_photo(200, 150, k), ("PNG", "JPEG")[k % 2]))
        page.insert_image(pymupdf.Rect(50, 360, 70, 380), stream=_encoded(_photo(16, 16, k), "PNG"))  # an icon
    for xref in range(1, doc.xref_length()):
        if doc.xref_get_key(xref, "Subtype")[1] == "/Image":
            doc.xref_set_key(xref, "ColorSpace", "/DeviceRGB")  # as most writers put it (not a shared object)
    data = doc.tobytes(use_objstms=1)
    starts = sorted(data.index(f"\n{x} 0 obj".encode()) for x in range(1, 40) if f"\n{x} 0 obj".encode() in data)
    cut = data[:starts[starts.index(data.index(b"\n19 0 obj")) + 1] - 1000]  # in image 3's data
    assert pymupdf.open(stream=cut, filetype="pdf").page_count == 0  # the pages are gone
    items = list(pdf.open_pdf(Blob("cut.pdf", cut), Context(Limits())))
    images = [i for i in items if isinstance(i, ImageItem)]
    errors = [(i.locator, i.error, i.skipped) for i in items if not isinstance(i, ImageItem)]
    assert [i.locator for i in images] == ["image 1 (object 5, its page lost)", "image 2 (object 13, its page lost)"]
    assert np.array_equal(np.asarray(images[0].image), _photo(200, 150, 0))  # the PNG, exact
    assert np.abs(np.asarray(images[1].image).astype(int) - _photo(200, 150, 1)).mean() < 2  # the JPEG
    assert images[0].metadata["page"] is None and images[0].metadata["pages"] == []
    assert errors[0] == ("", "broken PDF: no readable pages (cut off or damaged): images read from the objects left, "
                             "without their pages", False)
    assert errors[1][0] == "image 3 (object 19, its page lost)" and "could not decode" in errors[1][1]
    assert errors[2] == ("", "skipped 2 images smaller than 64 px (decoration)", True)  # the icons before the cut
    assert len(errors) == 3
    # a repaired file that holds no image stays one error
    empty = b"%PDF-1.4\n1 0 obj <</Type/Catalog>> endobj\ntrailer <</Root 1 0 R>>"  # no xref: repaired
    items = list(pdf.open_pdf(Blob("x.pdf", empty), Context(Limits())))
    assert [(i.locator, i.error) for i in items] == [("", "broken PDF: no readable pages")]


def test_a_pdf_cut_off_inside_an_object_dictionary_is_read_up_to_its_last_whole_object():
    # MuPDF's repair gave up on a file ending inside a dictionary: one cut in five of a text-heavy PDF lost every
    # page ("broken PDF that could not be repaired"); it is now opened up to its last "endobj", and repaired
    doc = pymupdf.open()
    for k in range(4):
        page = doc.new_page(width=595, height=842)
        for j in range(30):
            page.insert_text((50, 50 + j * 18), f"Line {j} of page {k}: the quick brown fox", fontsize=10)
        page.insert_image(pymupdf.Rect(100, 500, 400, 800), stream=_encoded(_photo(300, 300, k), "JPEG"))
    data = doc.tobytes()
    at = data.index(b"/Type/Page", data.index(b"\n20 0 obj"))  # just inside a later page's dictionary
    try:  # MuPDF alone cannot open it
        pymupdf.open(stream=data[:at], filetype="pdf")
        raise AssertionError("MuPDF opened it")
    except pymupdf.FileDataError:
        pass
    items = list(pdf.open_pdf(Blob("cut.pdf", data[:at]), Context(Limits())))
    images = [i for i in items if isinstance(i, ImageItem)]
    assert [i.locator for i in images][:1] == ["page 1, image 1"] and len(images) >= 1
    assert np.abs(np.asarray(images[0].image).astype(int) - _photo(300, 300, 0)).mean() < 2
    assert [(i.error, i.skipped) for i in items if not isinstance(i, ImageItem)] == [
        ("damaged PDF, repaired by MuPDF: parts of it may be missing", True)]
    # nothing whole in it: the error as before
    items = list(pdf.open_pdf(Blob("cut.pdf", data[:30]), Context(Limits())))
    assert [i.error for i in items] == ["broken PDF that could not be repaired: Failed to open stream"]


def test_a_page_of_same_size_icons_gets_one_handle_on_the_document(monkeypatch):
    # matching icons of one size to their xrefs loaded each through a new handle on the document, and letting go
    # of each made MuPDF look through its store: 1,900 icons took 10 s, now 3 s
    calls = []
    real = pymupdf.mupdf.pdf_document_from_fz_document
    monkeypatch.setattr(pymupdf.mupdf, "pdf_document_from_fz_document", lambda d: calls.append(1) or real(d))
    items = list(pdf.open_pdf(Blob("icons.pdf", _icons(300)), Context(Limits())))
    assert [i.error for i in items if not isinstance(i, ImageItem)] == [
        "skipped 300 images smaller than 64 px (decoration)"]
    assert len(calls) < 20, len(calls)  # before: one an icon (300 and more)


def test_finding_what_covers_an_image_does_not_copy_every_image_drawn_before_it(monkeypatch):
    # each image drawn may cover those before it: their boxes were copied into a new array at every image
    # (quadratic: 2,000 icons on a page cost 1 s in copies); the array now grows by doubling
    rows = []
    counted = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})

    def count(f):
        def wrapped(*args, **kw):
            out = f(*args, **kw)
            rows.append(np.size(out))
            return out
        return wrapped

    counted.array, counted.concatenate = count(np.array), count(np.concatenate)
    monkeypatch.setattr(pdf_figures, "np", counted)
    page = pymupdf.open(stream=_icons(1000), filetype="pdf")[0]
    log, stopped, shown, *_ = pdf_figures._bbox_log(page, float("inf"))
    assert not stopped and len(shown) == 1000
    assert sum(rows) < 50 * 1000, sum(rows)  # before: about 2 million numbers


def test_a_jpeg_whose_colour_space_object_is_lost_comes_out_in_its_own_colours():
    # the ICC colour space its images share is lost (its object damaged, or in an object stream cut off): MuPDF
    # cannot load the image, so it was an error, though a JPEG says its own colours. A Flate image stays an error
    doc = pymupdf.open()
    for k, kind in enumerate(("JPEG", "PNG")):
        page = doc.new_page(width=500, height=400)
        page.insert_image(pymupdf.Rect(50, 50, 450, 350), stream=_encoded(_photo(200, 150, k), kind))
    data = doc.tobytes()
    assert doc.xref_get_key(5, "ColorSpace") == ("xref", "7 0 R") and b"\n7 0 obj\n[/ICCBased" in data  # shared
    items = list(pdf.open_pdf(Blob("x.pdf", data.replace(b"\n7 0 obj", b"\n7 0 bad")), Context(Limits())))
    images = [i for i in items if isinstance(i, ImageItem)]
    assert [i.locator for i in images] == ["page 1, image 1"]
    assert images[0].image.mode == "RGB"
    assert np.abs(np.asarray(images[0].image).astype(int) - _photo(200, 150, 0)).mean() < 2
    errors = [(i.locator, i.error) for i in items if not isinstance(i, ImageItem)]
    assert errors == [
        ("page 2, image 1", "could not decode embedded image (xref 11): could not parse color space (7 0 R)"),
        ("", "damaged PDF, repaired by MuPDF: parts of it may be missing")]
