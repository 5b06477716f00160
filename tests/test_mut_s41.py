"""Tests (s41_mut): behaviours of session 41's new code that no test pinned, found by mutating it (each test here
failed on a mutant that every other test let through): the new rasters' headers (PCX, SGI, TGA), a PSD's frame count,
icons' own picture headers, 16-bit colour TIFFs shown by their depth, an LSM's black channel colours, a PDF image
drawn alone twice after a thumbnail and one barely seen under its mask, non-finite mean/std, an upload's file."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from medimg.sources import Blob, ImageItem, ItemError, Limits, open_inputs
from medimg.sources.base import Context
from medimg.sources.files import open_image
from test_more_rasters_s41 import _picture, _psd


def _saved(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_picture()).save(buf, fmt)
    return buf.getvalue()


def _with(data: bytes, at: int, value: bytes) -> bytes:
    return data[:at] + value + data[at + len(value):]


# one header field each that the format does not allow: the file is not taken for one (PCX and SGI by their
# bytes, TGA by its name too)
NOT_QUITE = [("pcx version", "PCX", "x.bin", 1, b"\x01"), ("pcx depth", "PCX", "x.bin", 3, b"\x03"),
             ("pcx window", "PCX", "x.bin", 4, struct.pack("<H", 100)),  # xmin past xmax (59)
             ("sgi bytes per channel", "SGI", "x.bin", 3, b"\x03"),
             ("tga colour map type", "TGA", "x.tga", 1, b"\x02"), ("tga depth", "TGA", "x.tga", 16, b"\x07"),
             ("tga width", "TGA", "x.tga", 12, b"\0\0")]


@pytest.mark.parametrize("what,fmt,name,at,value", NOT_QUITE, ids=[n[0] for n in NOT_QUITE])
def test_a_header_that_does_not_fit_the_format_is_not_taken_for_it(tmp_path, what, fmt, name, at, value):
    good = _saved(fmt)
    path = tmp_path / name
    path.write_bytes(_with(good, at, value))
    (item,) = open_inputs([str(path)])
    wanted = "named TGA but not readable" if name.endswith(".tga") else "unrecognised content"
    assert wanted in item.error, item


def test_a_photoshop_file_with_layers_is_one_frame():
    blank = np.zeros_like(_picture())
    data = _psd(_picture(), (blank, blank + 90))
    (item,) = open_inputs([Blob("l.psd", data, name="l.psd")])
    assert item.format == "PSD" and item.metadata["frames"] == 1, item.metadata  # not its layers + 1


def _icon(picture: bytes, side: int) -> bytes:
    return struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", side, side, 0, 0, 1, 24, len(picture), 22) + picture


@pytest.mark.parametrize("header", ["BITMAPCOREHEADER", "top-down BITMAPINFOHEADER"])
def test_an_icon_s_bitmap_is_measured_by_its_own_header_kind(header):
    """An old icon's picture with a 12-byte header (16-bit sides), or one stored top down (negative height):
    measured as Pillow reads them, their height halved for the mask, so a cap of exactly their pixels reads them."""
    side = 32
    row = bytes([30, 30, 200] * side)
    rows = (row + b"\0" * (-len(row) % 4)) * side + b"\0" * 4 * side  # pixels, then the AND mask
    if header == "BITMAPCOREHEADER":
        head = struct.pack("<IHHHH", 12, side, 2 * side, 1, 24)
    else:
        head = struct.pack("<IiiHHIIiiII", 40, side, -2 * side, 1, 24, 0, 0, 0, 0, 0, 0)
    data = _icon(head + rows, side)
    (item,) = open_image(Blob("a.ico", data, name="a.ico"), Context(Limits(max_pixels=side * side)))
    assert isinstance(item, ImageItem) and item.image.size == (side, side), item
    (item,) = open_image(Blob("a.ico", data, name="a.ico"), Context(Limits(max_pixels=side * side - 1)))
    assert isinstance(item, ItemError) and f"{side}×{side} = 1,024 pixels as stored" in item.error, item


def test_a_14_bit_camera_s_rgb_in_16_bits_is_shown_by_its_depth():
    """14 bits reach 63 of 255 in their top 8: still dim, so still shown by the depth reached (as 12 bits are)."""
    tifffile = pytest.importorskip("tifffile")
    from test_micro_s41 import brightfield

    rgb8 = brightfield()
    buf = io.BytesIO()
    tifffile.imwrite(buf, rgb8.astype(np.uint16) << 6 | 0x3F, photometric="rgb", metadata=None)
    (item,) = open_inputs([Blob("c.tif", buf.getvalue(), name="c.tif")])
    assert np.array_equal(np.asarray(item.image), rgb8)


def test_an_8_bit_picture_stored_in_16_bit_rgb_is_shown_as_its_values():
    """16-bit samples that stay under 256 are shown at 8 bits (as stored), not stretched up by the depth reached."""
    tifffile = pytest.importorskip("tifffile")
    dark = (np.arange(96 * 128 * 3).reshape(96, 128, 3) % 41).astype(np.uint16)  # 0–40
    buf = io.BytesIO()
    tifffile.imwrite(buf, dark, photometric="rgb", metadata=None)
    (item,) = open_inputs([Blob("d.tif", buf.getvalue(), name="d.tif")])
    assert np.array_equal(np.asarray(item.image), dark.astype(np.uint8))


def test_a_zeiss_lsm_whose_channel_colours_are_black_takes_imagej_s():
    """Some LSMs store black as every channel's colour: shown in ImageJ's colours, not as a black picture."""
    pytest.importorskip("tifffile")
    from test_micro_s41 import items_of, lsm

    (item,) = items_of(lsm(3, 3, [(0, 0, 0)] * 3), "black.lsm")
    arr = np.asarray(item.image).astype(int)
    assert arr[45, 15, 0] > 200 and arr[45, 15, 1] < 60 and arr[45, 35, 1] > 200 and arr[45, 35, 0] < 60


def test_an_image_drawn_alone_on_two_pages_after_a_thumbnail_is_reported_at_the_first():
    pymupdf = pytest.importorskip("pymupdf")
    from test_pdf_s41 import _photo, _run

    doc = pymupdf.open()
    xref = doc.new_page().insert_image(pymupdf.Rect(50, 50, 74, 68), stream=_photo())  # a thumbnail
    doc.new_page().insert_image(pymupdf.Rect(50, 50, 450, 350), xref=xref)
    doc.new_page().insert_image(pymupdf.Rect(100, 100, 300, 250), xref=xref)
    (item,) = _run(doc.tobytes())
    assert item.locator == "page 2, image 1" and item.metadata["pages"] == [1, 2, 3], item.metadata
    assert item.metadata["bbox"] == [50.0, 50.0, 450.0, 350.0]


def _masked(doc, alpha: int, grey: bool) -> None:
    """A page drawing a 400 × 300 picture (RGB or grey) under an /SMask that is `alpha` everywhere."""
    page = doc.new_page(width=500, height=400)
    mask = doc.get_new_xref()
    doc.update_object(mask, "<</Type/XObject/Subtype/Image/Width 400/Height 300/BitsPerComponent 8"
                            "/ColorSpace/DeviceGray>>")
    doc.update_stream(mask, bytes([alpha]) * (400 * 300))
    xref = doc.get_new_xref()
    space, n = ("DeviceGray", 1) if grey else ("DeviceRGB", 3)
    doc.update_object(xref, f"<</Type/XObject/Subtype/Image/Width 400/Height 300/BitsPerComponent 8"
                            f"/ColorSpace/{space}/SMask {mask} 0 R>>")
    doc.update_stream(xref, bytes(range(200)) * 2 * 300 * n)
    content = doc.get_new_xref()
    doc.update_object(content, "<<>>")
    doc.update_stream(content, b"q 400 0 0 300 50 50 cm /I0 Do Q")
    doc.xref_set_key(page.xref, "Resources", f"<</XObject<</I0 {xref} 0 R>>>>")
    doc.xref_set_key(page.xref, "Contents", f"{content} 0 R")


def test_a_grey_image_its_mask_hides_is_a_note_and_one_barely_seen_comes_out():
    pymupdf = pytest.importorskip("pymupdf")
    from medimg.sources import pdf

    doc = pymupdf.open()
    _masked(doc, 0, grey=True)  # grey with alpha: LA
    _masked(doc, 1, grey=False)  # the least alpha there is: not hidden
    items = list(pdf.open_pdf(Blob("r.pdf", doc.tobytes()), Context(Limits())))
    got = [(i.locator, type(i).__name__, getattr(i, "skipped", False)) for i in items]
    assert ("page 1, image 1", "ItemError", True) in got and ("page 2, image 1", "ImageItem", False) in got, got
    assert not any(isinstance(i, ImageItem) and i.locator.startswith("page 1") for i in items), got


@pytest.mark.parametrize("key, value", [("mean", [0.5, float("nan"), 0.5]), ("std", [0.5, float("inf"), 0.5])])
def test_a_mean_or_std_that_is_not_finite_is_refused(tmp_path, key, value):
    """A NaN mean made every probability NaN, an infinite std a channel all zeros: both refused on load."""
    from medimg.model import Classifier
    from test_realimg_s41 import _tiny

    with pytest.raises(ValueError, match=f"its {key} must be three numbers"):
        Classifier.load(_tiny(tmp_path / "m", **{key: value}))


def test_an_upload_s_file_given_to_classify_says_to_give_its_bytes(tiny_classifier):
    """A web framework's upload (Starlette's UploadFile: a read method, not an io object) is an open file too."""
    from starlette.datastructures import UploadFile

    from medimg import classify

    upload = UploadFile(io.BytesIO(_saved("PNG")), filename="scan.png")
    with pytest.raises(TypeError, match="not an open file"):
        list(classify(upload, classifier=tiny_classifier))
    (rec,) = classify([upload], classifier=tiny_classifier)
    assert rec.error.endswith("an open file: give its path (f.name), or its bytes as Blob(origin=name, "
                              "data=f.read())"), rec.error
