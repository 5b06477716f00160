"""Inputs a byte-level and structured fuzz of this session's parsers (review s43_fuzz) found mishandled, each built
here at its smallest: a metafile strip of no width, an EMF+ bitmap of no known format, a JPEG 2000 tile with fewer
levels than its main header says, a deep JPEG far too short for the size its header gives, a zip end record whose
disk number is ZIP64's 0xFFFF."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input
from test_emf_s43 import SCAN, dib, emf, stretchdib, stretchdibits, wmf


def items(data: bytes, name: str, **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


@pytest.mark.parametrize("kind", ["emf", "wmf"])
def test_a_bitmap_painted_zero_wide_beside_another_is_not_a_crash(kind):
    """A record painting a bitmap into a rectangle of no width, at the edge of another's, was joined with it as a
    strip and divided by its width: "image: could not read: its data is damaged or cut short", both bitmaps lost."""
    records = (stretchdibits(dib(SCAN), 0, 0, 0, 120), stretchdibits(dib(SCAN), 0, 0, 90, 120)) if kind == "emf" \
        else (stretchdib(dib(SCAN), 0, 0, 0, 120), stretchdib(dib(SCAN), 0, 0, 90, 120))
    got = items(emf(*records) if kind == "emf" else wmf(*records), f"x.{kind}")
    assert [type(i) for i in got] == [ImageItem, ImageItem], got
    assert all(i.image.size == (90, 120) for i in got)


def test_a_jpeg_2000_tile_with_fewer_levels_than_its_main_header_is_still_read_reduced():
    """A tile-part header's COD may give a tile fewer levels than the main header's; the reduced decode asked
    OpenJPEG to drop more levels than the tile has, and the image was "corrupt or truncated JPEG2000 image: broken
    data stream" while it decodes whole."""
    w, h = 1600, 1200
    y, x = np.mgrid[0:h, 0:w]
    out = io.BytesIO()
    Image.fromarray(np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 90)], -1).astype(np.uint8)).save(
        out, "JPEG2000", num_resolutions=3)  # 2 levels
    data = bytearray(out.getvalue())
    cod = data.index(b"\xff\x52")
    segment = bytes(data[cod:cod + 2 + int.from_bytes(data[cod + 2:cod + 4], "big")])
    data[cod + 9] = 5  # the main header says 5 levels; the tile's own COD (its 2) follows its SOT
    sot = data.index(b"\xff\x90")
    data[sot + 6:sot + 10] = (int.from_bytes(data[sot + 6:sot + 10], "big") + len(segment)).to_bytes(4, "big")
    data[sot + 12:sot + 12] = segment
    [item] = items(bytes(data), "t.j2k", decode_side=128)
    assert isinstance(item, ImageItem), item
    assert item.image.size == (400, 300) and item.full_size == (1600, 1200)  # 1/4: the tile's 2 levels


@pytest.mark.parametrize("lossless", [False, True])
def test_a_deep_jpeg_far_too_short_for_its_size_is_not_decoded(lossless):
    """A 12-bit JPEG whose frame header says 65535×1400 in 2 KB was decoded twice by libjpeg (filled with grey):
    1-2 s and 175 MB for a file cut short."""
    imagecodecs = pytest.importorskip("imagecodecs")
    y, x = np.mgrid[0:96, 0:128]
    a = ((x * 30 + y * 3) % 4096).astype(np.uint16)
    data = bytearray(imagecodecs.jpeg8_encode(a * 16, lossless=True, bitspersample=16) if lossless
                     else imagecodecs.jpeg8_encode(a, bitspersample=12, level=95))
    sof = data.index(b"\xff\xc3" if lossless else b"\xff\xc1")
    [whole] = items(bytes(data), "ct.jpg")
    assert isinstance(whole, ImageItem), whole  # as written, it reads
    data[sof + 5:sof + 9] = (1400).to_bytes(2, "big") + (65535).to_bytes(2, "big")
    [got] = items(bytes(data), "ct.jpg")
    assert isinstance(got, ItemError) and not got.skipped
    assert "cannot hold its 65535×1400 pixels" in got.error and got.error.endswith("not decoded"), got.error


def test_a_zip_whose_end_record_says_disk_0xffff_is_read_not_called_a_split_part():
    """0xFFFF in the end record's disk fields means "see the ZIP64 record" (some writers put it in every field of a
    ZIP64 archive); zipfile reads such a zip, and it was refused as "the last of 65536 parts of a split zip"."""
    import struct

    from test_archive_s43 import PNG, zip_of

    data = bytearray(zip_of({"a.png": PNG}))
    end = data.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 4, 0xFFFF, 0xFFFF)
    got = items(bytes(data), "x.zip")
    assert [(i.origin, type(i)) for i in got] == [("x.zip:a.png", ImageItem)], got
    # with a ZIP64 locator counting 3 disks, it is the last of 3 parts
    locator = b"PK\x06\x07" + struct.pack("<IQI", 2, 0, 3)
    [part] = items(bytes(data[:end]) + locator + bytes(data[end:]), "x.zip")
    assert isinstance(part, ItemError) and part.error.startswith("the last of 3 parts of a split zip"), part


def test_an_emf_plus_bitmap_of_no_known_format_says_so_not_none():
    """An EMF+ Image object whose stream is no picture format was "corrupt or truncated None image"."""
    from test_emf_s43 import emf_plus_image

    for payload in (b"", b"\x89PNG", b"x" * 50):
        got = items(emf(*emf_plus_image(1, payload)), "p.emf", min_side=1)
        assert [i.error for i in got] == [f"bitmap not read: its {len(payload)} bytes are not a picture medimg reads "
                                          "(damaged or cut short)"], got
