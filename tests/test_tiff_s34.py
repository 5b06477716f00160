"""TIFF pages read through tifffile (sources/tiff.py), second round: tiles compressed as pictures (JPEG 2000, WebP,
JPEG XL) or LERC, read once each tile's own header names its tile's size (sources/tiff_tiles.py); CIE and ICC
Lab, 16-bit palettes and chroma-subsampled uncompressed YCbCr converted as viewers show them. Each file is built
here with tifffile and imagecodecs."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image

from medimg.sources import Blob, Context, ImageItem, ItemError, Limits
from medimg.sources.tiff import TiffPages

H, W = 48, 64
RAMP = np.tile(np.arange(W), (H, 1))
GREY16 = (RAMP * 1000).astype(np.uint16)
RGB = np.dstack([RAMP * 4, RAMP[:, ::-1] * 2, np.tile(np.arange(H)[:, None] * 5, (1, W))]).astype(np.uint8)
FLOAT = (RAMP / 7).astype(np.float32)
BIG = 2000  # the side a hostile tile claims


def tif(arr, **kw) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr, **kw)
    return buf.getvalue()


def one(data: bytes, **limits) -> ImageItem | ItemError:
    got = list(Context(Limits(**limits)).open_blob(Blob("x.tif", data, name="x.tif")))
    assert len(got) == 1, got
    return got[0]


def swapped(data: bytes, segment: bytes, k: int = 0, page: int = 0) -> bytes:
    """`data` with the k-th strip or tile of a page replaced by `segment` (appended; its offset and byte count
    rewritten)."""
    out = bytearray(data) + segment
    ifd = tifffile.TiffFile(io.BytesIO(data)).pages[page]
    codes = (324, 325) if ifd.is_tiled else (273, 279)
    for code, value in zip(codes, (len(data), len(segment))):
        tag = ifd.tags[code]
        assert k < tag.count
        form, size = {3: ("<H", 2), 4: ("<I", 4)}[tag.dtype]  # SHORT or LONG
        struct.pack_into(form, out, tag.valueoffset + size * k, value)
    return bytes(out)


def never(*args, **kwargs):
    raise AssertionError("decoded")


# (layout, bytes, what it must decode to): every one was refused or "decoder error -2" before
PICTURES = [
    ("JPEG 2000 16-bit grey", lambda: tif(GREY16, compression="jpeg2000"), GREY16),
    ("JPEG 2000 16-bit grey, tiles", lambda: tif(GREY16, compression="jpeg2000", tile=(32, 32)), GREY16),
    ("JPEG 2000 16-bit grey, strips, the last one shorter",
     lambda: tif(GREY16, compression="jpeg2000", rowsperstrip=20), GREY16),
    ("JPEG 2000 RGB", lambda: tif(RGB, compression="jpeg2000", photometric="rgb"), RGB),
    ("WebP RGB", lambda: tif(RGB, compression="webp", photometric="rgb"), RGB),
    ("WebP RGB, tiles", lambda: tif(RGB, compression="webp", photometric="rgb", tile=(32, 32)), RGB),
    ("JPEG XL RGB", lambda: tif(RGB, compression="jpegxl", photometric="rgb"), RGB),
    ("JPEG XL 16-bit grey (container)", lambda: tif(GREY16, compression="jpegxl"), GREY16),
    ("LERC float32", lambda: tif(FLOAT, compression="lerc"), FLOAT),
    ("LERC float32 in Zstandard", lambda: tif(FLOAT, compression="lerc", compressionargs={"compression": "zstd"}),
     FLOAT),
    ("LERC float32 in Deflate",
     lambda: tif(FLOAT, compression="lerc", compressionargs={"compression": "deflate"}), FLOAT),
]


@pytest.mark.parametrize("layout, build, pixels", PICTURES, ids=[p[0] for p in PICTURES])
def test_a_picture_coded_tiff_whose_tiles_name_their_own_size_is_read(layout, build, pixels):
    item = one(build())
    assert isinstance(item, ImageItem), item
    assert item.image.size == (W, H)
    assert np.array_equal(np.asarray(item.image), pixels)


def _bomb(codec: str) -> tuple[bytes, bytes]:
    """A one-strip TIFF whose strip is a 2000 × 2000 picture of the codec, and that strip."""
    big = np.zeros((BIG, BIG, 3), np.uint8)
    base = tif(RGB, compression=codec.lower().replace(" ", ""), photometric="rgb")
    if codec == "JPEG 2000":
        strip = imagecodecs.jpeg2k_encode(big)
    elif codec == "WebP":
        strip = imagecodecs.webp_encode(big, lossless=True)
    elif codec == "JPEG XL":
        strip = imagecodecs.jpegxl_encode(big, effort=1)
    else:
        base, strip = tif(FLOAT, compression="lerc"), imagecodecs.lerc_encode(np.zeros((BIG, BIG), np.float32))
    return swapped(base, strip), strip


@pytest.mark.parametrize("codec", ["JPEG 2000", "WebP", "JPEG XL", "LERC"])
def test_a_tile_naming_a_larger_picture_than_its_tile_is_refused_unread(codec, monkeypatch):
    data, strip = _bomb(codec)
    assert len(strip) < 5_000  # a few kilobytes claiming 4 million pixels (12 MB decoded, 16 MB for LERC)
    monkeypatch.setattr(tifffile.TiffPage, "asarray", never)
    item = one(data)
    assert isinstance(item, ItemError)
    assert item.error == f"{codec} strip 1 names 2,000×2,000 pixels, not its strip's 64×48; not decoded"


def test_a_tile_other_than_the_first_is_checked_too_and_at_the_image_edge_its_remainder_is_allowed(monkeypatch):
    data = tif(GREY16, compression="jpeg2000", tile=(48, 32))  # 64 × 48: two tiles of 32 × 48, each whole
    bad = swapped(data, imagecodecs.jpeg2k_encode(np.zeros((48, 40), np.uint16)), k=1)
    monkeypatch.setattr(tifffile.TiffPage, "asarray", never)
    assert one(bad).error == "JPEG 2000 tile 2 names 40×48 pixels, not its tile's 32×48; not decoded"
    strips = tif(GREY16, compression="jpeg2000", rowsperstrip=20)  # the third strip: 8 rows of 20
    bad = swapped(strips, imagecodecs.jpeg2k_encode(np.zeros((12, 64), np.uint16)), k=2)
    assert one(bad).error == "JPEG 2000 strip 3 names 64×12 pixels, not its strip's 64×20 or 64×8; not decoded"


def test_a_tile_with_more_samples_than_the_page_or_an_animation_is_refused(monkeypatch):
    monkeypatch.setattr(tifffile.TiffPage, "asarray", never)
    grey = tif(GREY16, compression="jpeg2000")
    item = one(swapped(grey, imagecodecs.jpeg2k_encode(np.zeros((H, W, 3), np.uint16))))
    assert item.error == "JPEG 2000 strip 1 names 3 sample(s) of 2 byte(s), the page 1 of 2; not decoded"
    frames = imagecodecs.jpegxl_encode(np.zeros((50, H, W, 3), np.uint8))  # libjxl would decode all 50
    item = one(swapped(tif(RGB, compression="jpegxl", photometric="rgb"), frames))
    assert item.error == "JPEG XL strip 1: an animation (every frame would be decoded); not decoded"


def test_an_ome_tiffs_planes_are_checked_too(monkeypatch):
    data = tif(np.stack([GREY16, GREY16[::-1]]), compression="jpeg2000", ome=True, metadata={"axes": "CYX"})
    assert isinstance(one(data), ImageItem)  # microscopy.py: both channels merged
    bad = swapped(data, imagecodecs.jpeg2k_encode(np.zeros((BIG, BIG), np.uint16)), page=1)
    monkeypatch.setattr(tifffile.TiffFile, "asarray", never)
    item = one(bad)
    assert isinstance(item, ItemError)
    assert item.error == "OME-TIFF: JPEG 2000 strip 1 names 2,000×2,000 pixels, not its strip's 64×48; not decoded"


def test_a_lerc_tile_whose_zstandard_or_deflate_wrapping_holds_more_than_its_tile_is_refused(monkeypatch):
    monkeypatch.setattr(tifffile.TiffPage, "asarray", never)
    blob = imagecodecs.lerc_encode(FLOAT)
    stuffed = blob + bytes(10_000_000)  # a true header, then 10 MB that imagecodecs would inflate first
    data = tif(FLOAT, compression="lerc", compressionargs={"compression": "zstd"})
    item = one(swapped(data, imagecodecs.zstd_encode(stuffed)))
    assert item.error.startswith("LERC strip 1: Zstandard wrapping over 28,672 bytes")
    data = tif(FLOAT, compression="lerc", compressionargs={"compression": "deflate"})
    item = one(swapped(data, zlib.compress(stuffed)))
    assert item.error == "LERC strip 1: Deflate wrapping over 28,672 bytes; not decoded"


LAB = np.dstack([RAMP * 4, np.full((H, W), 20), np.tile(np.arange(H)[:, None] - 24, (1, W))]).astype(np.int8)


def _pillows(data: bytes) -> np.ndarray:
    item = one(data)
    assert isinstance(item, ImageItem) and item.image.mode == "RGB", item
    return np.asarray(item.image)


def test_16bit_cielab_and_icclab_are_shown_as_pillow_shows_8bit_cielab():
    lab8 = LAB.view(np.uint8)
    expected = _pillows(tif(lab8, photometric="cielab"))  # Pillow reads this one itself
    assert one(tif(lab8, photometric="cielab")).metadata == {"mode": "LAB"}
    assert np.unique(expected.reshape(-1, 3), axis=0).shape[0] > 100  # colours, not a blank
    assert np.array_equal(_pillows(tif(lab8.astype(np.uint16) * 257, photometric="cielab")), expected)
    icc = lab8 ^ np.array([0, 0x80, 0x80], np.uint8)  # ICCLab: a*, b* offset by 128, not signed
    assert np.array_equal(_pillows(tif(icc, photometric=9)), expected)
    assert np.array_equal(_pillows(tif(icc.astype(np.uint16) * 257, photometric=9)), expected)


def test_a_16bit_palette_is_shown_through_its_colormap():
    index = (RAMP * 1000 + np.arange(H)[:, None]).astype(np.uint16)
    colormap = np.zeros((3, 65536), np.uint16)
    colormap[0], colormap[1], colormap[2] = np.arange(65536), 65535 - np.arange(65536), 0x4000
    got = _pillows(tif(index, photometric="palette", colormap=colormap))
    assert np.array_equal(got, np.moveaxis(colormap[:, index] >> 8, 0, -1))


def _subsampled(rgb: np.ndarray, h: int, v: int, **kw) -> bytes:
    """Uncompressed YCbCr, chroma subsampled h × v, written as TIFF 6.0 section 21 lays it out in each segment:
    blocks of h × v Y samples, then their Cb and Cr. tifffile writes full-size YCbCr (and YCbCrSubSampling 1, 1),
    whose segments are rewritten here in place (the packed data is smaller) and the tag set to h, v."""
    ycc = np.asarray(Image.fromarray(rgb, "RGB").convert("YCbCr"))  # JPEG's BT.601, TIFF's default
    out = bytearray(tif(ycc, photometric="ycbcr", **kw))
    page = tifffile.TiffFile(io.BytesIO(bytes(out))).pages[0]
    struct.pack_into("<HH", out, page.tags[530].valueoffset, h, v)
    tw, th = (page.tilewidth, page.tilelength) if page.is_tiled else (W, page.rowsperstrip)
    across = -(-W // tw)
    for n, offset in enumerate(page.dataoffsets):
        x, y = n % across * tw, n // across * th
        part = ycc[y:y + th, x:x + tw]
        part = np.pad(part, ((0, -len(part) % v if not page.is_tiled else th - len(part)),
                             (0, tw - part.shape[1]), (0, 0)), mode="edge")
        down, wide = part.shape[0] // v, part.shape[1] // h
        blocks = part.reshape(down, v, wide, h, 3)
        y_ = blocks[..., 0].transpose(0, 2, 1, 3).reshape(down, wide, v * h)
        chroma = blocks[..., 1:].mean((1, 3)).round().astype(np.uint8)
        packed = np.concatenate([y_, chroma], axis=-1).tobytes()
        out[offset:offset + len(packed)] = packed
    return bytes(out)


# colours constant over 4 × 4 blocks, so that subsampling loses nothing; the luma varies within them
BLOCKS = np.repeat(np.repeat(RGB[::4, ::4], 4, 0), 4, 1)
BLOCKS = np.clip(BLOCKS.astype(int) + (RAMP % 4 * 8)[..., None], 0, 255).astype(np.uint8)


@pytest.mark.parametrize("h, v, kw", [(2, 2, {}), (2, 1, {}), (4, 2, {}), (2, 2, {"rowsperstrip": 10}),
                                      (4, 4, {"tile": (16, 32)})])
def test_chroma_subsampled_uncompressed_ycbcr_is_the_rgb_it_encodes(h, v, kw):
    got = _pillows(_subsampled(BLOCKS, h, v, **kw))
    assert np.abs(got.astype(int) - BLOCKS).max() <= 6  # YCbCr's rounding, and luma varying within a block


def test_a_subsampled_ycbcr_strip_cut_short_is_an_error():
    data = _subsampled(BLOCKS, 2, 2)
    page = tifffile.TiffFile(io.BytesIO(data)).pages[0]
    out = bytearray(data)
    struct.pack_into("<I", out, page.tags[279].valueoffset, 100)  # StripByteCounts: 100 of 4,608 bytes
    assert isinstance(one(bytes(out)), ItemError)  # Pillow's error ("image file is truncated") stands
    item = TiffPages(bytes(out), "x.tif", Limits()).item(0, "")  # tifffile's reading, which files.py tried
    assert item.error == "corrupt or truncated TIFF image: segment 1 has 100 of its 4,608 bytes"


N = 2000
_RAMP = np.tile(np.arange(N, dtype=np.float32), (N, 1))
MEMORY = [  # (layout, bytes, peak allowed as a multiple of the decoded page); before: 3.6× and 3.3×
    ("five 16-bit channels, separate planes",
     lambda: tif(np.stack([(_RAMP * 30).astype(np.uint16)] * 5), planarconfig="separate", photometric="minisblack"),
     2.3),
    ("float32 RGB", lambda: tif(np.dstack([_RAMP, _RAMP[::-1], _RAMP.T]), photometric="rgb"), 2.6),
]


@pytest.mark.parametrize("layout, build, times", MEMORY, ids=[m[0] for m in MEMORY])
def test_a_large_page_takes_little_more_memory_than_its_decoded_samples(layout, build, times):
    data = build()
    page = tifffile.TiffFile(io.BytesIO(data)).pages[0]
    decoded = page.size * page.dtype.itemsize
    one(tif(np.zeros((8, 8), np.float16)))  # the sources' imports, outside the measure
    tracemalloc.start()
    try:
        item = one(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(item, ImageItem) and item.image.mode == "RGB"
    assert peak < times * decoded, f"{peak / decoded:.1f}× the decoded page"
