"""Tests from mutation testing session 47's new code (review s47_mut): each fails on a mutant the s47 tests let live."""

from __future__ import annotations

import base64
import email.message
import io

import numpy as np
import pymupdf
import pytest
from PIL import Image

import builders as b
from medimg.sources import pdf
from medimg.sources.base import Context
from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input

HEAD = ("From: a@example.org\r\nTo: b@example.org\r\nSubject: scans\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n")


def _items(data: bytes, name: str = "letter.eml") -> list:
    return list(open_input(Blob(name, data, name=name), Limits()))


def _png_part(disposition: str) -> str:
    png = base64.encodebytes(b.image_bytes("PNG", size=(90, 70))).decode().replace("\n", "\r\n")
    return ("--B\r\nContent-Type: image/png\r\n"
            f"Content-Disposition: attachment; {disposition}\r\nContent-Transfer-Encoding: base64\r\n\r\n{png}\r\n")


def test_an_rfc2231_name_split_inside_a_letter_is_read_in_the_charset_it_names():
    # Shift_JIS テスト.png split inside ス across two segments: Python makes the halves U+FFFD; the bytes read in
    # the charset the name gives (not UTF-8 and then Windows-1252, which made it mojibake)
    raw = (HEAD + 'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
           + _png_part("\r\n filename*0*=shift_jis''%83%65%83;\r\n filename*1*=%58%83%67.png") + "--B--\r\n").encode()
    assert [(i.origin, i.image.size) for i in _items(raw) if isinstance(i, ImageItem)] == [
        ("letter.eml:テスト.png", (90, 70))]


def test_a_file_that_is_one_message_rfc822_wrapper_is_no_forward():
    # the file itself is a message/rfc822 wrapper (a journal or a bounce): its message is the file's, not a forward
    inner = email.message.EmailMessage()
    inner["From"], inner["Subject"] = "gp@example.org", "scan"
    inner.set_content("see attached")
    inner.add_attachment(b.image_bytes("PNG", size=(90, 70)), "image", "png", filename="scan.png")
    top = email.message.EmailMessage()
    top["From"], top["Subject"] = "journal@example.org", "journal"
    top.set_content(inner)
    assert top.get_content_type() == "message/rfc822"
    assert [(i.origin, i.locator) for i in _items(top.as_bytes()) if isinstance(i, ImageItem)] == [
        ("letter.eml:scan.png", "")]


def test_an_empty_attachment_in_a_forward_says_the_forward_and_a_nameless_text_part_gets_no_suffix():
    inner = (HEAD + 'Content-Type: multipart/mixed; boundary="C"\r\n\r\n--C\r\nContent-Type: text/plain\r\n'
             "Content-Disposition: attachment\r\n\r\n\r\n--C--\r\n")
    raw = (HEAD + 'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\nContent-Type: message/rfc822\r\n\r\n'
           + inner + "--B--\r\n").encode()
    errors = [(i.origin, i.locator, i.error) for i in _items(raw) if isinstance(i, ItemError)]
    assert errors == [("letter.eml:part-1", "forwarded message 1", "empty attachment")]


def _grey(w: int, h: int, k: int) -> np.ndarray:
    a = np.zeros((h, w), np.uint8)
    a[:] = np.linspace(0, 255, w, dtype=np.uint8)[None]
    a[:, :10] = k
    return a


def test_a_pdf_cut_before_its_pages_gives_each_image_once_without_masks_and_keeps_the_cap():
    # objects 5 (a mask), 6 (masked by 5), 7 and 8 (the same pixels), 9; the page tree (in an object stream at the
    # end) cut off: the mask is not an image of its own, the copy comes out once, max_images_per_input holds
    doc = pymupdf.open()
    page = doc.new_page(width=500, height=400)

    def image(a: np.ndarray, extra: str = "") -> int:
        xref = doc.get_new_xref()
        doc.update_object(xref, f"<</Type/XObject/Subtype/Image/Width {a.shape[1]}/Height {a.shape[0]}"
                                f"/BitsPerComponent 8/ColorSpace/DeviceGray{extra}>>")
        doc.update_stream(xref, a.tobytes())
        return xref

    mask = image(_grey(120, 100, 0)[:, ::-1].copy())
    shown = [image(_grey(120, 100, 1), f"/SMask {mask} 0 R"), image(_grey(150, 100, 2)), image(_grey(150, 100, 2)),
             image(_grey(130, 100, 3))]
    assert [mask, *shown] == [5, 6, 7, 8, 9]
    content = doc.get_new_xref()
    doc.update_object(content, "<<>>")
    doc.update_stream(content, " ".join(f"q 100 0 0 100 {10 + i * 110} 10 cm /I{x} Do Q"
                                        for i, x in enumerate(shown)).encode())
    doc.xref_set_key(page.xref, "Resources", "<</XObject<<" + " ".join(f"/I{x} {x} 0 R" for x in shown) + ">>>>")
    doc.xref_set_key(page.xref, "Contents", f"{content} 0 R")
    data = doc.tobytes(use_objstms=1)
    cut = data[:data.index(b"endobj", data.index(b"\n9 0 obj")) + 6]
    assert pymupdf.open(stream=cut, filetype="pdf").page_count == 0
    items = list(pdf.open_pdf(Blob("cut.pdf", cut), Context(Limits())))
    assert [(i.locator, i.image.mode) for i in items if isinstance(i, ImageItem)] == [
        ("image 1 (object 6, its page lost)", "RGBA"), ("image 2 (object 7, its page lost)", "L"),
        ("image 3 (object 9, its page lost)", "L")]
    items = list(pdf.open_pdf(Blob("cut.pdf", cut), Context(Limits(max_images_per_input=1))))
    assert [i.locator for i in items if isinstance(i, ImageItem)] == ["image 1 (object 6, its page lost)"]
    assert items[-1].error == "stopped after 1 image (max_images_per_input)"


def _jpeg(mode: str, cut: int | None = None) -> bytes:
    a = np.zeros((150, 200, 3), np.uint8)
    a[..., 0] = np.linspace(0, 255, 200, dtype=np.uint8)[None]
    a[..., 1] = 90
    out = io.BytesIO()
    Image.fromarray(a).convert(mode).save(out, "JPEG", quality=95)
    return out.getvalue()[:cut]


@pytest.mark.parametrize("kind", ["rgb", "cmyk", "cut", "masked"])
def test_a_jpeg_whose_colour_space_is_lost_is_read_alone_only_when_it_says_all_of_its_colours(kind):
    # the JPEG read by Pillow in its own colours only when gray or RGB, whole, and with no soft mask to lose
    doc = pymupdf.open()
    page = doc.new_page(width=500, height=400)
    page.insert_image(pymupdf.Rect(50, 50, 450, 350), stream=_jpeg("RGB"))
    if kind in ("cmyk", "cut"):
        doc.update_stream(5, _jpeg("CMYK") if kind == "cmyk" else _jpeg("RGB", 3000), compress=0)
        doc.xref_set_key(5, "Filter", "/DCTDecode")
    if kind == "masked":
        mask = doc.get_new_xref()
        doc.update_object(mask, "<</Type/XObject/Subtype/Image/Width 200/Height 150/BitsPerComponent 8"
                                "/ColorSpace/DeviceGray>>")
        doc.update_stream(mask, bytes(range(200)) * 150)
        doc.xref_set_key(5, "SMask", f"{mask} 0 R")
    doc.xref_set_key(5, "ColorSpace", "99 0 R")  # an object the file does not have
    items = list(pdf.open_pdf(Blob("x.pdf", doc.tobytes()), Context(Limits())))
    if kind == "rgb":
        assert [(i.locator, i.image.mode) for i in items if isinstance(i, ImageItem)] == [("page 1, image 1", "RGB")]
    else:
        assert [(i.locator, i.error) for i in items] == [
            ("page 1, image 1", "could not decode embedded image (xref 5): could not parse color space (99 0 R)")]


def test_a_library_logger_without_handlers_prints_as_pythons_last_resort_does(capsys):
    # outside medimg, a quieted library's records reach stderr as Python's last resort has them: warnings and up,
    # not the info the program let through the logger's level without setting up a handler
    import logging

    import medimg.sources.microscopy  # noqa: F401  (quiets tifffile's logger)
    logger = logging.getLogger("tifffile")
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = False  # pytest's own handlers on the root logger are not the program's
    try:
        logger.info("an info line")
        logger.warning("a warning line")
    finally:
        logger.setLevel(level)
        logger.propagate = propagate
    err = capsys.readouterr().err
    assert "a warning line" in err and "an info line" not in err


def test_an_odd_pixel_cap_past_pillows_lets_an_image_of_exactly_the_cap_through(monkeypatch):
    # Pillow errors past twice its limit: half an odd cap rounded down (200,000,000 for 400,000,001) refused an
    # image of exactly 400,000,001 pixels the cap allows
    from medimg.sources.files import allow_pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # put back after the test
    allow_pixels(400_000_001)
    assert 2 * Image.MAX_IMAGE_PIXELS >= 400_000_001
    Image.MAX_IMAGE_PIXELS = 89_478_485
    allow_pixels(100_000_000)  # Pillow errors from 178,956,970: left as it is
    assert Image.MAX_IMAGE_PIXELS == 89_478_485


@pytest.mark.parametrize("pages, aperio", [
    (["tiled", "strips", "tiled", "strips"], True),  # base, thumbnail, a level, the label
    (["tiled", "tiled", "tiled", "strips"], False),  # a second page tiled: no thumbnail
    (["tiled", "strips", "tiled", "strips", "tiled"], False),  # a tiled page after the pictures: another image
    (["tiled", "big strips", "tiled", "strips"], False),  # the "thumbnail" as large as the base
])
def test_only_an_aperio_slides_layout_is_taken_for_one(tmp_path, pages, aperio):
    tifffile = pytest.importorskip("tifffile")
    from medimg.sources.microscopy import _aperio_layout
    sizes = {0: (1536, 2048), 1: (192, 256), 2: (384, 512), 3: (300, 300), 4: (1536, 2048)}
    with tifffile.TiffWriter(tmp_path / "x.tif") as tw:
        for i, how in enumerate(pages):
            h, w = {"tiled": (768, 1024), "big strips": (1536, 2048)}.get(how, sizes[i]) if i == 1 else sizes[i]
            tw.write(np.full((h, w, 3), 40 * i, np.uint8), tile=(256, 256) if how == "tiled" else None,
                     rowsperstrip=64 if how != "tiled" else None,
                     photometric="rgb", metadata=None)
    with tifffile.TiffFile(tmp_path / "x.tif") as tif:
        assert _aperio_layout(tif) is aperio


def _inverted_red() -> np.ndarray:
    lut = np.zeros((3, 256), np.uint8)
    lut[0] = np.arange(255, -1, -1)
    return lut


@pytest.mark.parametrize("lut, colour", [
    (np.zeros((3, 256), np.uint8), (0, 255, 0)),  # all black: ImageJ's second default colour (green)
    (_inverted_red(), (255, 0, 0)),  # inverted red: red, its brightest entry (not the default)
])
def test_an_imagej_channel_gets_its_luts_brightest_colour_or_the_default_when_black(tmp_path, lut, colour):
    tifffile = pytest.importorskip("tifffile")
    red = np.zeros((3, 256), np.uint8)
    red[0] = np.arange(256)
    first = np.zeros((128, 128), np.uint16) + 100
    first[10:30, 10:30] = 3000
    second = np.zeros((128, 128), np.uint16) + 100
    second[80:100, 80:100] = 3000  # a square only the second channel shows
    tifffile.imwrite(tmp_path / "two.tif", np.stack([first, second]), imagej=True,
                     metadata={"axes": "CYX", "mode": "composite", "LUTs": [red, lut]})
    (item,) = open_input(tmp_path / "two.tif")
    arr = np.asarray(item.image.convert("RGB")).astype(int)
    assert np.abs(arr[85:95, 85:95] - colour).max() < 60


def test_a_gradio_temp_dir_this_user_may_not_write_in_is_named(tmp_path, monkeypatch):
    # a folder that is there but not writable (another user's): made by no one, so only os.access can tell (the
    # tests may run as root, which may write anywhere: access is asked as the service's user would be answered)
    from medimg import scratch
    folder = tmp_path / "uploads"
    folder.mkdir()
    scratch._writable(str(folder), "GRADIO_TEMP_DIR")  # writable: no error
    monkeypatch.setattr(scratch.os, "access", lambda path, mode: False)
    with pytest.raises(OSError, match="GRADIO_TEMP_DIR .*uploads is not a folder this user .* may write in"):
        scratch._writable(str(folder), "GRADIO_TEMP_DIR")
