"""Session 43's last commits read critically (s43_diffread4): an ordinary TIFF whose pixels begin "CR" is not a
Canon CR2; a JPEG 2000 whose tile-part headers run into each other is not walked in quadratic time."""

from __future__ import annotations

import io
import struct
import time

import numpy as np
from PIL import Image, TiffImagePlugin

from medimg.sources import jpeg2000
from medimg.sources.base import Blob, Context, ImageItem
from medimg.sources.registry import open_blob


def test_a_libtiff_tiff_whose_first_pixels_read_cr_is_an_image_not_a_cr2(monkeypatch):
    """libtiff (ImageMagick, GDAL, scanners) writes an uncompressed TIFF's pixels right after its header, so bytes
    8-9 are the first pixels. A grey scan whose first two pixels are 67, 82 ("CR") was taken for a Canon CR2 and
    refused: "camera RAW with no embedded preview". A CR2 says version 2 after "CR" and Canon in IFD0's Make."""
    a = np.full((300, 300), 120, np.uint8)
    a[0, :3] = [ord("C"), ord("R"), 2]
    monkeypatch.setattr(TiffImagePlugin, "WRITE_LIBTIFF", True)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "TIFF")
    data = buf.getvalue()
    assert data[8:11] == b"CR\x02", data[:16]
    (item,) = open_blob(Blob("scan.tif", data, name="scan.tif"), Context())
    assert isinstance(item, ImageItem) and item.image.size == (300, 300), item


def _chained_tile_parts(count: int) -> bytes:
    """A real 1024×1024 codestream's main header, then `count` tile-parts of 32 bytes, each one's header a COD
    whose length reaches into the next one's header (never at its SOD)."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((1024, 1024), np.uint8)).save(buf, "JPEG2000", irreversible=True)
    real = buf.getvalue()
    out = bytearray(real[:real.find(b"\xff\x90")])
    for _ in range(count):
        out += b"\xff\x90\x00\x0a" + struct.pack(">HIBB", 0, 32, 0, 1) + b"\xff\x52\x00\x1e" + bytes([5]) * 16
    return bytes(out + b"\xff\xd9")


def test_jpeg2000_tile_part_headers_are_read_only_within_their_tile_part():
    """Each tile-part's header was read on to the end of the file when its markers' lengths led past its own end:
    4,000 such tile-parts (128 KB) took 12 s, 64 K (2 MB) most of an hour. Now a header reads no further than its
    tile-part, and one not ending at its SOD makes the file decoded whole (no reduced level)."""
    data = _chained_tile_parts(4000)
    started = time.perf_counter()
    assert jpeg2000.main_header(data) is None
    assert time.perf_counter() - started < 1.0
    t0 = time.perf_counter()
    list(open_blob(Blob("x.j2k", data, name="x.j2k"), Context()))  # an error, or grey: but soon
    assert time.perf_counter() - t0 < 30


def test_jpeg2000_real_tiled_files_still_give_their_levels():
    a = (np.random.default_rng(0).random((600, 500)) * 255).astype(np.uint8)
    for options, levels in (({}, 5), ({"tile_size": (256, 256)}, 5), ({"tile_size": (128, 128), "num_resolutions": 3}, 2)):
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, "JPEG2000", **options)
        assert jpeg2000.main_header(buf.getvalue()) == (500, 600, 0, 0, levels), options
