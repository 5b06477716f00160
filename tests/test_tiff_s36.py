"""TIFFs as a pathology lab has them (session 36): pyramids written without OME metadata (libvips, QuPath,
bfconvert), JPEG tiles checked against their tile's size before tifffile decodes them, and what a whole-slide
image's label and macro pictures become. Every file is built here with tifffile, imagecodecs and Pillow."""

from __future__ import annotations

import io
import struct
import tracemalloc

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image

from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input
from medimg.sources.tiff_tiles import tiles_problem


def tissue(w: int, h: int) -> np.ndarray:
    """Glass with one pink ellipse of tissue left of centre."""
    img = np.full((h, w, 3), 244, np.uint8)
    yy, xx = np.ogrid[0:h, 0:w]
    img[((yy - h * 0.5) / (h * 0.3)) ** 2 + ((xx - w * 0.4) / (w * 0.25)) ** 2 < 1] = (226, 150, 198)
    return img


def pyramid(base: np.ndarray, subifds: bool = False, compression: str = "jpeg") -> bytes:
    """The image and its levels at 1/4, 1/16, 1/64 as a libvips or QuPath pyramid: reduced-resolution pages after
    it, or (`subifds`) its SubIFDs; no OME or ImageJ metadata."""
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf, bigtiff=True) as tw:
        kw = dict(tile=(256, 256), compression=compression, photometric="rgb", metadata=None)
        tw.write(base, subifds=3 if subifds else None, **kw)
        for d in (4, 16, 64):
            tw.write(np.ascontiguousarray(base[::d, ::d]), subfiletype=1, **kw)
    return buf.getvalue()


def items(data: bytes, **limits) -> list:
    return list(open_input(Blob("slide.tif", data, name="slide.tif"), Limits(**limits)))


def traced(data: bytes) -> tuple[list, int]:
    """The items of `data`, and the peak of memory traced while reading them (the readers' imports before)."""
    items(pyramid(np.zeros((64, 64, 3), np.uint8)))
    tracemalloc.start()
    try:
        got = items(data)
        return got, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("subifds", [False, True], ids=["reduced pages", "SubIFDs"])
def test_a_pyramid_without_ome_metadata_is_one_item_from_one_level_never_its_base(subifds):
    base = tissue(8192, 6144)
    got, peak = traced(pyramid(base, subifds))
    # before: four items, the 8192 × 6144 base decoded whole among them (SubIFDs: the base alone)
    (item,) = got
    assert isinstance(item, ImageItem), item
    # a slide scan (session 38): a tissue field at 1/4 scale (no resolution), from the 1/4 level
    assert item.format == "pyramidal TIFF" and item.locator == "tissue field at 1/4 scale"
    assert item.image.size == (512, 512) and item.full_size == (8192, 6144)
    assert item.metadata["level"] == 1 and item.metadata["levels"] == 4
    x, y = item.metadata["field"]["x"], item.metadata["field"]["y"]
    shown = np.asarray(item.image).astype(int)
    assert np.abs(shown - base[y:y + 2048:4, x:x + 2048:4]).mean() < 3  # the level's pixels, JPEG's YCbCr as RGB
    assert peak < 60e6, f"{peak / 1e6:.0f} MB"  # the base is 151 MB decoded; the level shown 9 MB


def test_a_pyramid_of_100000_px_a_side_is_read_from_a_level_within_the_cap_never_its_base():
    """A 10-gigapixel base (its tiles left out: tifffile would read them as blank) and levels down to 1/256."""
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf, bigtiff=True) as tw:
        tw.write((b"" for _ in range(98 * 98)), shape=(100_000, 100_000, 3), dtype=np.uint8, tile=(1024, 1024),
                 compression="zlib", photometric="rgb", metadata=None)
        for side in (25_000, 6_250, 1_562, 390):
            kw = dict(tile=(256, 256), compression="zlib", photometric="rgb", subfiletype=1, metadata=None)
            if side == 1_562:
                tw.write(tissue(side, side), **kw)
            else:
                tw.write((b"" for _ in range((-(-side // 256)) ** 2)), shape=(side, side, 3), dtype=np.uint8, **kw)
    data = buf.getvalue()
    assert len(data) < 300_000
    got, peak = traced(data)
    (item,) = got  # before: "image is 10,000,000,000 pixels, over the max_pixels cap", and no level read
    assert isinstance(item, ImageItem), item
    # a slide scan (session 38): the tissue found in the 1562 px level, the field read from the 25,000 px level
    assert item.image.size == (512, 512) and item.full_size == (100_000, 100_000)
    x, y, side = (item.metadata["field"][k] for k in ("x", "y", "size"))
    assert side == 2048 and tissue(1562, 1562)[round((y + 1024) / 64), round((x + 1024) / 64)][1] == 150
    assert item.metadata["level"] == 1 and not np.asarray(item.image).any()  # that level's tiles left out: blank
    assert peak < 40e6, f"{peak / 1e6:.0f} MB"
    (small,) = items(data, max_pixels=1_000_000)  # the overview from the largest level within the cap instead
    assert small.image.size == (512, 512) and small.metadata["level"] == 1


def test_pages_each_with_a_thumbnail_and_plain_multi_page_tiffs_are_still_read_page_by_page():
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tw:
        for k in range(3):  # a scanned document: each page, then its reduced-resolution thumbnail
            tw.write(np.full((800, 600), 40 * k + 20, np.uint8), photometric="minisblack")
            tw.write(np.full((200, 150), 40 * k + 20, np.uint8), photometric="minisblack", subfiletype=1)
    got = items(buf.getvalue())
    assert [i.locator for i in got] == [f"page {n}" for n in range(1, 7)]
    assert [i.image.size for i in got[:2]] == [(600, 800), (150, 200)] and got[2].image.getpixel((0, 0)) == 60
    plain = io.BytesIO()
    tifffile.imwrite(plain, np.stack([tissue(300, 200)] * 3), photometric="rgb")
    assert [i.locator for i in items(plain.getvalue())] == ["page 1", "page 2", "page 3"]
    # a pyramid still becomes one item among these: the detection is what this test bounds
    assert len(items(pyramid(tissue(1024, 768)))) == 1


def swapped(data: bytes, segment: bytes, k: int = 0, page: int = 0) -> bytes:
    """`data` with the k-th tile of a page replaced by `segment` (appended; its offset and byte count rewritten)."""
    out = bytearray(data) + segment
    ifd = tifffile.TiffFile(io.BytesIO(data)).pages[page]
    for code, value in zip((324, 325), (len(data), len(segment))):
        tag = ifd.tags[code]
        form, size = {3: ("<H", 2), 4: ("<I", 4), 16: ("<Q", 8)}[tag.dtype]
        struct.pack_into(form, out, tag.valueoffset + size * k, value)
    return bytes(out)


BIG = 8000  # the side a hostile JPEG tile claims: 64 MB of grey decoded from a tile of about 1 MB


@pytest.fixture(scope="module")
def big_jpeg() -> bytes:
    return imagecodecs.jpeg8_encode(np.zeros((BIG, BIG), np.uint8), level=10)


def test_a_jpeg_tile_naming_a_larger_picture_than_its_tile_is_refused_unread(big_jpeg):
    grey = np.tile(np.arange(256, dtype=np.uint8), (256, 1))
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.stack([grey, grey.T]), ome=True, metadata={"axes": "CYX"}, tile=(128, 128),
                     compression="jpeg")
    data = buf.getvalue()
    (good,) = items(data)
    assert isinstance(good, ImageItem) and good.format == "OME-TIFF"  # JPEG tiles naming their own size are read
    got, peak = traced(swapped(data, big_jpeg, k=3, page=1))
    (item,) = got  # before: the 8000 × 8000 tile decoded (64 MB), then tifffile's shape error
    assert isinstance(item, ItemError)
    assert item.error == (f"OME-TIFF: JPEG tile 4 names {BIG:,}×{BIG:,} pixels, not its tile's 128×128; "
                          "not decoded")
    assert peak < 20e6, f"{peak / 1e6:.0f} MB"
    level = tifffile.TiffFile(io.BytesIO(pyramid(tissue(1024, 768)))).pages[1]  # the level a pyramid shows
    assert tiles_problem(level) is None


def test_jpeg_strips_with_shared_tables_are_checked_by_their_own_frame_header(big_jpeg):
    """libtiff (Pillow) keeps the Huffman and quantisation tables in JPEGTables: each strip names its size only."""
    buf = io.BytesIO()
    Image.fromarray(tissue(300, 200)).save(buf, "TIFF", compression="jpeg")  # one strip of 8 rows a time, or so
    data = buf.getvalue()
    page = tifffile.TiffFile(io.BytesIO(data)).pages[0]
    assert 347 in page.tags and page.is_subsampled is not None  # JPEGTables
    assert tiles_problem(page) is None
    rows = page.rowsperstrip
    k = len(page.dataoffsets) - 1  # the last strip, shorter when the rows do not divide evenly
    out = bytearray(data) + big_jpeg
    for code, value in zip((273, 279), (len(data), len(big_jpeg))):
        tag = page.tags[code]
        form, size = {3: ("<H", 2), 4: ("<I", 4)}[tag.dtype]
        struct.pack_into(form, out, tag.valueoffset + size * k, value)
    bad = tifffile.TiffFile(io.BytesIO(bytes(out))).pages[0]
    last = 200 - rows * k
    edge = "" if last == rows else f" or 300×{last}"
    assert tiles_problem(bad) == (f"JPEG strip {k + 1} names {BIG:,}×{BIG:,} pixels, not its strip's 300×{rows}{edge}; "
                                  "not decoded")


def test_a_slides_label_and_macro_are_named_in_its_metadata_never_shown(tmp_path):
    w, h = 2048, 1536
    desc = f"Aperio Image Library v12.0.15 \r\n{w}x{h} [0,0 {w}x{h}] (256x256) JPEG/RGB Q=70|AppMag = 20|MPP = 0.5"
    img = tissue(w, h)
    path = tmp_path / "case.svs"
    with tifffile.TiffWriter(path) as tw:
        tw.write(img, tile=(256, 256), compression="jpeg", photometric="rgb", description=desc, metadata=None)
        tw.write(np.ascontiguousarray(img[::8, ::8]), compression="jpeg", photometric="rgb", rowsperstrip=16,
                 description=f"Aperio Image Library v12.0.15 \r\n{w}x{h} -> 256x192", metadata=None)
        tw.write(np.ascontiguousarray(img[::4, ::4]), tile=(256, 256), compression="jpeg", photometric="rgb",
                 description=desc, metadata=None)
        tw.write(np.full((400, 600, 3), 20, np.uint8), compression="lzw", photometric="rgb", subfiletype=1,
                 rowsperstrip=16, description="Aperio Image Library v12.0.15\r\nlabel 600x400", metadata=None)
        tw.write(np.full((400, 1200, 3), 20, np.uint8), compression="jpeg", photometric="rgb", subfiletype=9,
                 rowsperstrip=16, description="Aperio Image Library v12.0.15\r\nmacro 1200x400", metadata=None)
    (item,) = open_input(path)  # one tissue field: the label (a barcode, often the patient's name) is no item
    assert isinstance(item, ImageItem) and item.format == "WSI (aperio)"
    assert item.metadata["associated_images"] == ["label", "macro", "thumbnail"]
    assert np.asarray(item.image).mean() > 150  # tissue and glass, not the dark label


def test_a_pyramid_on_disk_over_max_input_bytes_is_read_in_place_as_an_ome_tiff_is(tmp_path):
    path = tmp_path / "exported.tif"  # libvips and QuPath name them .tif; nothing in the first bytes says pyramid
    path.write_bytes(pyramid(tissue(4800, 3600)))
    (item,) = open_input(path, Limits(max_input_bytes=100_000))  # before: "over the max_input_bytes cap"
    assert isinstance(item, ImageItem), item
    assert item.format == "pyramidal TIFF" and item.full_size == (4800, 3600)
    assert item.locator == "tissue field at 1/4 scale" and item.image.size == (512, 512)  # a slide scan (session 38)
    (err,) = open_input(path, Limits(max_input_bytes=100_000, max_slide_bytes=100_000))
    assert isinstance(err, ItemError) and "over the max_input_bytes cap" in err.error
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, tissue(600, 400), photometric="rgb")
    (err,) = open_input(plain, Limits(max_input_bytes=100_000))  # not a pyramid: read whole, so refused
    assert isinstance(err, ItemError) and "over the max_input_bytes cap" in err.error


def test_a_strip_tiff_with_a_reduced_thumbnail_page_stays_two_pages_turned_upright():
    """A camera's or scanner's TIFF: the picture in strips, its orientation tag, then a quarter-size thumbnail."""
    picture = tissue(400, 300)
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tw:
        tw.write(picture, photometric="rgb", extratags=[(274, 3, 1, 6, True)])  # Orientation 6: turn 90° clockwise
        tw.write(np.ascontiguousarray(picture[::4, ::4]), photometric="rgb", subfiletype=1)
    got = items(buf.getvalue())
    assert [(i.locator, i.format, i.image.size) for i in got] == [("page 1", "TIFF", (300, 400)),
                                                                 ("page 2", "TIFF", (100, 75))]
