"""Files attached to a PDF (portfolios, the EmbeddedFiles name tree, file-attachment annotations): real PDFs built
with PyMuPDF or by hand in each test, opened through the PDF source."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pymupdf
from PIL import Image

from builders import pdf_objects, pdf_stream
from medimg.sources import pdf, pdf_attached
from medimg.sources.base import Blob, Context, ImageItem, ItemError, Limits


def _jpeg(seed: int = 0, size: tuple = (200, 160)) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0]), dtype=np.uint8), "L").save(buf, "JPEG")
    return buf.getvalue()


def _report() -> bytes:
    """A one-page report with one key image."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((50, 60), "Findings: see key image.")
    page.insert_image(pymupdf.Rect(100, 100, 300, 260), stream=_jpeg(1))
    return doc.tobytes()


def _run(data: bytes, blob: Blob | None = None, **limits) -> list:
    return list(pdf.open_pdf(blob or Blob("folder.pdf", data), Context(Limits(**limits))))


def _portfolio(**files: bytes) -> pymupdf.Document:
    doc = pymupdf.open()
    doc.new_page().insert_text((50, 60), "This portfolio holds the study.")
    for name, data in files.items():
        doc.embfile_add(name, data, filename=name)
    return doc


def test_a_portfolios_files_are_opened_as_files_inside_the_pdf():
    items = _run(_portfolio(**{"ct.jpg": _jpeg(2), "report.pdf": _report()}).tobytes())
    images = [i for i in items if isinstance(i, ImageItem)]
    assert [(i.origin, i.locator, i.image.size) for i in images] == [
        ("folder.pdf", "attachment ct.jpg", (200, 160)),
        ("folder.pdf", "attachment report.pdf, page 1, image 1", (200, 160))]
    assert np.array_equal(np.asarray(images[0].image), np.asarray(Image.open(io.BytesIO(_jpeg(2)))))
    assert not [i for i in items if isinstance(i, ItemError)]  # no "no images found in the PDF": its files had


def test_an_encrypted_portfolio_opens_without_a_password_too():
    data = _portfolio(**{"ct.jpg": _jpeg(2)}).tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner",
                                                       permissions=0)
    images = [i for i in _run(data) if isinstance(i, ImageItem)]
    assert [(i.locator, i.image.size) for i in images] == [("attachment ct.jpg", (200, 160))]


def test_a_file_attached_to_a_page_is_opened():
    doc = pymupdf.open()
    page = doc.new_page()
    page.add_file_annot(pymupdf.Point(50, 50), _jpeg(3), "xray.jpg")
    images = [i for i in _run(doc.tobytes()) if isinstance(i, ImageItem)]
    assert [i.locator for i in images] == ["attachment xray.jpg"]


def test_a_name_tree_with_kids_is_followed_and_each_file_read_once():
    jpeg = _jpeg(4)
    data = pdf_objects([
        "<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles 5 0 R >> >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        pdf_stream("", b""),
        "<< /Kids [6 0 R 7 0 R 6 0 R] >>",  # the same kid twice: a loop read once
        "<< /Names [(a.jpg) 8 0 R] /Limits [(a.jpg) (a.jpg)] >>",
        "<< /Names [(b 1 0 R.jpg) << /Type /Filespec /UF (b.jpg) /EF << /F 9 0 R >> >>] >>",
        "<< /Type /Filespec /F (scans/a.jpg) /EF << /F 10 0 R >> >>",
        pdf_stream("/Type /EmbeddedFile", jpeg, compress=True),
        pdf_stream("/Type /EmbeddedFile", jpeg),
    ])
    images = [i for i in _run(data) if isinstance(i, ImageItem)]
    assert sorted(i.locator for i in images) == ["attachment a.jpg", "attachment b.jpg"]


def bomb_pdf() -> bytes:
    """A PDF attaching zeros.bin: 50 MB of zeros in about 50 KB of Flate."""
    bomb = zlib.compress(bytes(50_000_000), 9)
    return pdf_objects([
        "<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(zeros.bin) 5 0 R] >> >> >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        pdf_stream("", b""),
        "<< /Type /Filespec /F (zeros.bin) /EF << /F 6 0 R >> >>",
        f"<< /Type /EmbeddedFile /Filter /FlateDecode /Length {len(bomb)} >>\nstream\n".encode() + bomb
        + b"\nendstream",
    ])


def test_an_attachment_inflating_past_the_cap_is_refused_unread():
    data = bomb_pdf()
    errors = [i for i in _run(data, max_input_bytes=1_000_000) if isinstance(i, ItemError) and not i.skipped]
    assert [(e.locator, e.error) for e in errors] == [
        ("attachment zeros.bin", "attached file is over the max_input_bytes cap of 1,000,000 bytes; not read")]
    errors = [i for i in _run(data, zip_max_bytes=2_000_000) if isinstance(i, ItemError) and not i.skipped]
    assert [e.error for e in errors] == [
        "attached files inflate past the zip_max_bytes cap of 2,000,000; the rest are not opened"]


def test_attachments_obey_max_depth_and_the_image_cap():
    data = _portfolio(**{"ct.jpg": _jpeg(2)}).tobytes()
    items = _run(data, blob=Blob("deep.pdf", data, depth=1), max_depth=1)
    assert [(i.locator, i.error) for i in items if isinstance(i, ItemError) and not i.skipped] == [
        ("", "1 attached file(s) not opened: nested deeper than max_depth (1)")]
    doc = _portfolio(**{"ct.jpg": _jpeg(2), "mr.jpg": _jpeg(5)})
    doc[0].insert_image(pymupdf.Rect(100, 100, 300, 260), stream=_jpeg(6))
    images = [i for i in _run(doc.tobytes(), max_images_per_input=2) if isinstance(i, ImageItem)]
    assert [i.locator for i in images] == ["page 1, image 1", "attachment ct.jpg"]


def test_an_attached_file_that_is_no_image_is_a_skipped_note():
    items = _run(_portfolio(**{"notes.txt": b"plain words, no picture\n"}).tobytes())
    notes = [(i.locator, i.skipped) for i in items if isinstance(i, ItemError) and i.locator]
    assert notes == [("attachment notes.txt", True)]


def test_attached_files_past_the_image_cap_are_said_not_dropped():
    """Three attached JPEGs under max_images_per_input=2: the third was left out with nothing said (the input's cap
    note comes only with an image past the cap, and none came). Now the PDF's own cap note says it stopped."""
    items = _run(_portfolio(**{"a.jpg": _jpeg(2), "b.jpg": _jpeg(3), "c.jpg": _jpeg(4)}).tobytes(),
                 max_images_per_input=2)
    assert [i.locator for i in items if isinstance(i, ImageItem)] == ["attachment a.jpg", "attachment b.jpg"]
    assert [i.error for i in items if isinstance(i, ItemError)] == ["stopped after 2 images (max_images_per_input)"]
    items = _run(_portfolio(**{"a.jpg": _jpeg(2), "b.jpg": _jpeg(3)}).tobytes(), max_images_per_input=2)
    assert len(items) == 2 and all(isinstance(i, ImageItem) for i in items)  # all read: nothing to say


def test_attached_files_are_not_read_once_the_pages_reach_the_image_cap(monkeypatch):
    """Pages that give max_images_per_input images stop with the cap note; the attached files were still read and
    inflated (up to zip_max_bytes, under the MuPDF lock) only to be dropped."""
    doc = _portfolio(**{"ct.jpg": _jpeg(2)})
    doc[0].insert_image(pymupdf.Rect(100, 100, 300, 260), stream=_jpeg(1))
    read = []
    monkeypatch.setattr(pdf_attached, "_read", lambda *a: read.append(a) or b"")
    items = _run(doc.tobytes(), max_images_per_input=1)
    assert [i.locator for i in items if isinstance(i, ImageItem)] == ["page 1, image 1"]
    assert [i.error for i in items if isinstance(i, ItemError)] == ["stopped after 1 image (max_images_per_input)"]
    assert read == []


def test_listing_the_attached_files_looks_at_ten_objects_per_allowed_file():
    """A name tree (or a page's /Annots) listing one object 400,000 times took 11-17 s under the MuPDF lock, more
    for a larger file: only new files counted. Every object looked at counts now, ten per zip_max_entries + 1."""
    jpeg = _jpeg(4)

    def tree(repeats: int) -> bytes:
        return pdf_objects([
            "<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles 5 0 R >> >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
            pdf_stream("", b""),
            "<< /Kids [" + "6 0 R " * repeats + "7 0 R] >>",
            "<< /Names [(a.jpg) 8 0 R] >>",
            "<< /Names [(b.jpg) 9 0 R] >>",
            "<< /Type /Filespec /F (a.jpg) /EF << /F 10 0 R >> >>",
            "<< /Type /Filespec /F (b.jpg) /EF << /F 11 0 R >> >>",
            pdf_stream("/Type /EmbeddedFile", jpeg),
            pdf_stream("/Type /EmbeddedFile", jpeg),
        ])

    def listed(data: bytes) -> list:
        return sorted(i.locator for i in _run(data, zip_max_entries=2) if isinstance(i, ImageItem))

    assert listed(tree(3)) == ["attachment a.jpg", "attachment b.jpg"]  # a node listed again is read once
    assert listed(tree(40)) == ["attachment a.jpg"]  # 42 kids: past the 30 objects (zip_max_entries=2) looked at
    looked = []
    real = pdf_attached.mupdf.pdf_array_get
    pdf_attached.mupdf.pdf_array_get = lambda *a: looked.append(a) or real(*a)
    try:
        pdf_attached._filespecs(pymupdf.open(stream=tree(3000), filetype="pdf"), 1, 3)
    finally:
        pdf_attached.mupdf.pdf_array_get = real
    assert len(looked) <= 30, len(looked)
