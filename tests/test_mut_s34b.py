"""Mutation round on session 34's code (s34_mut2): each test here kills a mutant that the earlier tests let live
(tile header checks, TIFF colour, DICOM colour, crop matching, link rules, cancel, caches, covers). Files are built
here; pages are served on 127.0.0.1."""

from __future__ import annotations

import io
import struct

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image

from medimg.sources import ImageItem, ItemError

from test_tiff_s34 import GREY16, H, RGB, W, never, one, swapped, tif


# ---- tiff_tiles.py

@pytest.mark.parametrize("kw", [{"tile": (32, 32)}, {"rowsperstrip": 20}])
def test_separate_planes_of_picture_coded_segments_are_each_checked_as_one_sample(kw):
    planes = tif(np.moveaxis(RGB, -1, 0), compression="jpeg2000", photometric="rgb", planarconfig="separate", **kw)
    item = one(planes)  # the second and third planes' strips lie over the first's (a last one of 8 rows), not below
    assert isinstance(item, ImageItem), item
    assert np.array_equal(np.asarray(item.image), RGB)
    if "rowsperstrip" in kw:
        return
    bad = swapped(planes, imagecodecs.jpeg2k_encode(np.zeros((32, 32, 3), np.uint8)), k=0)
    assert one(bad).error == "JPEG 2000 tile 1 names 3 sample(s) of 1 byte(s), the page 1 of 1; not decoded"


def test_a_missing_tile_is_left_blank_not_taken_for_a_header_without_size():
    data = tif(GREY16, compression="jpeg2000", tile=(32, 32))
    page = tifffile.TiffFile(io.BytesIO(data)).pages[0]
    out = bytearray(data)
    for code in (324, 325):  # TileOffsets, TileByteCounts: the second tile's set to 0, as a writer leaves it
        tag = page.tags[code]
        form, size = {3: ("<H", 2), 4: ("<I", 4)}[tag.dtype]
        struct.pack_into(form, out, tag.valueoffset + size, 0)
    item = one(bytes(out))
    assert isinstance(item, ImageItem), item
    got = np.asarray(item.image)
    assert np.array_equal(got[:32, :32], GREY16[:32, :32]) and not got[:32, 32:].any()


def test_a_tile_of_wider_samples_than_the_page_is_refused():
    rgb = tif(RGB, compression="jpeg2000", photometric="rgb")
    item = one(swapped(rgb, imagecodecs.jpeg2k_encode(np.zeros((H, W, 3), np.uint16))))
    assert item.error == "JPEG 2000 strip 1 names 3 sample(s) of 2 byte(s), the page 3 of 1; not decoded"
    grey8 = tif((GREY16 >> 8).astype(np.uint8), compression="jpeg2000")  # 9 bits: two bytes a sample
    item = one(swapped(grey8, imagecodecs.jpeg2k_encode(np.zeros((H, W), np.uint16), bitspersample=9)))
    assert item.error == "JPEG 2000 strip 1 names 1 sample(s) of 2 byte(s), the page 1 of 1; not decoded"
    grey16 = tif(GREY16, compression="jpegxl")  # float JPEG XL: four bytes a sample
    item = one(swapped(grey16, imagecodecs.jpegxl_encode(np.zeros((H, W), np.float32))))
    assert item.error == "JPEG XL strip 1 names 1 sample(s) of 4 byte(s), the page 1 of 2; not decoded"


def test_a_jpeg_2000_strip_without_its_siz_marker_is_said_so():
    item = one(swapped(tif(RGB, compression="jpeg2000", photometric="rgb"), b"\xff\x4f" + bytes(60)))
    assert item.error == "JPEG 2000 strip 1: no JPEG 2000 SIZ marker; not decoded"


def _webp(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "WEBP", quality=90)  # lossy: VP8X (with alpha) or VP8, not imagecodecs' VP8L
    return buf.getvalue()


@pytest.mark.parametrize("samples, chunk", [(4, b"VP8X"), (3, b"VP8 ")])
def test_lossy_webp_tiles_naming_their_size_in_vp8x_or_vp8_are_read(samples, chunk):
    arr = np.dstack([RGB, np.full((H, W), 200, np.uint8)])[..., :samples]
    segment = _webp(arr)
    assert segment[12:16] == chunk
    data = swapped(tif(arr, compression="webp", photometric="rgb", extrasamples=[2] if samples == 4 else None),
                   segment)
    item = one(data)
    assert isinstance(item, ImageItem), item
    assert np.abs(np.asarray(item.image).astype(int) - arr).max() <= 12


def test_a_lerc_strip_of_several_values_a_pixel_counts_each_as_a_sample():
    from test_tiff_s34 import FLOAT

    deep = imagecodecs.lerc_encode(np.zeros((H, W, 3), np.float32))  # LERC2 v4: nDepth 3 in one blob
    item = one(swapped(tif(FLOAT, compression="lerc"), deep))
    assert item.error == "LERC strip 1 names 3 sample(s) of 4 byte(s), the page 1 of 4; not decoded"


def test_a_lerc_blob_of_no_length_is_a_damaged_header():
    from test_tiff_s34 import FLOAT

    blob = bytearray(imagecodecs.lerc_encode(FLOAT))
    version = struct.unpack_from("<i", blob, 6)[0]
    at = 10 + 4 * (version >= 3) + 4 * (5 if version >= 4 else 4)  # rows, cols, [depth,] valid, micro block, size
    struct.pack_into("<i", blob, at, 0)
    item = one(swapped(tif(FLOAT, compression="lerc"), bytes(blob)))
    assert item.error == "LERC strip 1: damaged LERC2 header; not decoded"


# ---- tiff.py: layouts refused before decoding (read as tifffile's pages: Pillow, tried first, has its own say)

def _page(data: bytes):
    from medimg.sources import Limits
    from medimg.sources.tiff import TiffPages

    return TiffPages(data, "x.tif", Limits()).item(0, "")


def _patched(data: bytes, code: int, form: str, *values) -> bytes:
    out = bytearray(data)
    struct.pack_into(form, out, tifffile.TiffFile(io.BytesIO(data)).pages[0].tags[code].valueoffset, *values)
    return bytes(out)


def _untagged(data: bytes, code: int) -> bytes:
    """The tag's entry renamed to a private code: the page no longer has it."""
    out = bytearray(data)
    struct.pack_into("<H", out, tifffile.TiffFile(io.BytesIO(data)).pages[0].tags[code].offset, 65000)
    return bytes(out)


def _ycbcr(arr: np.ndarray, **kw) -> bytes:
    """YCbCr samples written full size, the YCbCrSubSampling tag then set to 2 × 2."""
    return _patched(tif(arr, photometric="ycbcr", **kw), 530, "<HH", 2, 2)


YCC = np.asarray(Image.fromarray(RGB).convert("YCbCr"))
INDEX = (np.arange(H * W).reshape(H, W) % 256).astype(np.uint8)
COLORMAP = np.stack([np.arange(256) * 257, np.zeros(256), np.full(256, 0x8000)]).astype(np.uint16)
LAB = np.dstack([np.tile(np.arange(W) * 4, (H, 1)), np.full((H, W), 20),
                 np.tile(np.arange(H)[:, None] - 24, (1, W))]).astype(np.int8).view(np.uint8)
SUBSAMPLED = "chroma-subsampled YCbCr other than uncompressed 8-bit (or JPEG, which Pillow reads)"
REFUSED = {
    "32-bit CIELab": (lambda: tif(LAB.astype(np.uint32) << 24, photometric="cielab"), "CIELAB of 32-bit uint32 samples"),
    "half-float CIELab": (lambda: tif(LAB.astype(np.float16), photometric="cielab"), "CIELAB of 16-bit float16 samples"),
    "palette of 2 samples": (lambda: _patched(tif(np.dstack([INDEX, INDEX]), photometric="minisblack", extrasamples=[2],
                                                  extratags=[(320, "H", 768, COLORMAP.ravel(), True)]), 262, "<H", 3),
                             "palette with 2 sample(s)"),
    "palette without colormap": (lambda: _untagged(tif(INDEX, photometric="palette", colormap=COLORMAP), 320),
                                 "palette with 1 sample(s), no colormap"),
    "subsampled YCbCr, LZW": (lambda: _ycbcr(YCC, compression="lzw"), SUBSAMPLED),
    "subsampled YCbCr, 16-bit": (lambda: _ycbcr(YCC.astype(np.uint16) * 257), SUBSAMPLED),
    "subsampled YCbCr, separate planes": (lambda: _ycbcr(np.moveaxis(YCC, -1, 0), planarconfig="separate"), SUBSAMPLED),
    "subsampled YCbCr with alpha": (lambda: _ycbcr(np.dstack([YCC, YCC[..., :1]]), extrasamples=[2]), SUBSAMPLED),
    "YCbCr subsampled 1 × 2": (lambda: _patched(tif(YCC, photometric="ycbcr"), 530, "<HH", 1, 2),
                               "chroma subsampling 1×2"),
}


@pytest.mark.parametrize("layout", REFUSED)
def test_a_colour_layout_not_converted_here_is_refused_before_decoding(layout, monkeypatch):
    build, why = REFUSED[layout]
    data = build()
    monkeypatch.setattr(tifffile.TiffPage, "asarray", never)
    item = _page(data)
    assert isinstance(item, ItemError) and item.error == f"TIFF layout not supported: {why}"


def test_cielab_with_alpha_keeps_its_alpha_and_its_colours():
    plain = _page(tif(LAB, photometric="cielab"))
    item = _page(tif(np.dstack([LAB, np.full((H, W), 100, np.uint8)]), photometric="cielab", extrasamples=[2]))
    assert isinstance(item, ImageItem) and item.image.mode == "RGBA", item
    got = np.asarray(item.image)
    assert np.array_equal(got[..., :3], np.asarray(plain.image)) and (got[..., 3] == 100).all()


def test_16bit_lab_is_read_by_its_top_byte_whatever_its_low_byte():
    expected = np.asarray(_page(tif(LAB, photometric="cielab")).image)
    low = np.random.default_rng(3).integers(0, 256, LAB.shape, dtype=np.uint16)  # not the top byte again (× 257)
    item = _page(tif(LAB.astype(np.uint16) << 8 | low, photometric="cielab"))
    assert np.array_equal(np.asarray(item.image), expected)
    icc = (LAB ^ np.array([0, 0x80, 0x80], np.uint8)).astype(np.uint16) << 8 | low
    assert np.array_equal(np.asarray(_page(tif(icc, photometric=9)).image), expected)


def test_a_colormap_shorter_than_the_indices_gives_them_its_last_colour():
    colormap = np.stack([np.arange(16) * 4096, np.zeros(16), np.full(16, 0x8000)]).astype(np.uint16)  # 16 of 256
    data = _patched(tif(INDEX, photometric="minisblack", extratags=[(320, "H", 48, colormap.ravel(), True)]),
                    262, "<H", 3)  # then PhotometricInterpretation: palette
    item = _page(data)
    assert isinstance(item, ImageItem), item
    want = np.moveaxis(colormap >> 8, 0, -1)[np.minimum(INDEX, 15)]
    assert np.array_equal(np.asarray(item.image), want)


def test_subsampled_ycbcr_strips_with_their_exact_byte_counts_are_read_to_the_last_short_strip():
    from test_tiff_s34 import BLOCKS, _pillows, _subsampled

    data = bytearray(_subsampled(BLOCKS, 2, 2, rowsperstrip=10))  # strips of 10 rows, the last of 8
    tag = tifffile.TiffFile(io.BytesIO(bytes(data))).pages[0].tags[279]
    form, size = {3: ("<H", 2), 4: ("<I", 4)}[tag.dtype]
    for n in range(tag.count):  # each strip's count as a writer gives it: its blocks' bytes, not the full-size ones
        rows = min(10, H - 10 * n)
        struct.pack_into(form, data, tag.valueoffset + size * n, (W // 2) * -(-rows // 2) * 6)
    got = _pillows(bytes(data))
    assert np.abs(got.astype(int) - BLOCKS).max() <= 6


def test_ycbcr_taller_than_one_strip_of_conversion_is_converted_to_its_last_row():
    from medimg.levels import STRIP

    width = 2048
    rows = STRIP // width + 88  # two strips of conversion: 512 rows, then 88
    rng = np.random.default_rng(5)
    rgb = np.repeat(np.repeat(rng.integers(0, 256, (rows // 8 + 1, width // 8, 3), np.uint8), 8, 0), 8, 1)[:rows]
    ycc = np.asarray(Image.fromarray(rgb).convert("YCbCr"))
    item = _page(tif(ycc, photometric="ycbcr"))
    assert isinstance(item, ImageItem) and item.image.size == (width, rows), item
    want = np.asarray(Image.fromarray(ycc, "YCbCr").convert("RGB")).astype(int)
    assert np.abs(np.asarray(item.image).astype(int) - want).max() <= 2


def test_lerc_bands_of_different_sizes_are_said_so():
    from test_tiff_s34 import FLOAT

    bands = imagecodecs.lerc_encode(FLOAT) + imagecodecs.lerc_encode(FLOAT[:10])
    item = one(swapped(tif(np.dstack([FLOAT, FLOAT]), compression="lerc", photometric="minisblack",
                           planarconfig="contig"), bands))
    assert item.error == "LERC strip 1: LERC2 bands of different sizes, or over 64; not decoded"


def test_a_jpeg_2000_tile_whose_image_starts_past_its_origin_is_its_size_less_the_offset():
    code = bytearray(imagecodecs.jpeg2k_encode(GREY16, codecformat="j2k"))
    struct.pack_into(">8I", code, 8, W + 8, H + 8, 8, 8, W, H, 8, 8)  # SIZ: image and tile grid from (8, 8)
    item = one(swapped(tif(GREY16, compression="jpeg2000"), bytes(code)))
    assert isinstance(item, ImageItem), item
    assert np.array_equal(np.asarray(item.image), GREY16)


def test_min_is_white_channels_are_inverted_before_they_are_coloured():
    channels = np.stack([np.tile(np.arange(W, dtype=np.uint8) * 4, (H, 1)),
                         np.tile(np.arange(H, dtype=np.uint8)[:, None] * 5, (1, W))], -1)
    white = _page(tif(channels, photometric="miniswhite", extrasamples=[0]))
    black = _page(tif(255 - channels, photometric="minisblack", extrasamples=[0]))
    assert isinstance(white, ImageItem) and isinstance(black, ImageItem), (white, black)
    assert np.array_equal(np.asarray(white.image), np.asarray(black.image))


def test_an_alpha_sample_between_channels_is_alpha_wherever_it_lies():
    a = np.tile(np.arange(W, dtype=np.uint8) * 4, (H, 1))
    b = np.tile(np.arange(H, dtype=np.uint8)[:, None] * 5, (1, W))
    c = (a // 2 + b // 2).astype(np.uint8)
    alpha = np.full((H, W), 255, np.uint8)
    alpha[:, :8] = 0
    last = _page(tif(np.stack([a, b, c, alpha], -1), photometric="minisblack", extrasamples=[0, 0, 2]))
    middle = _page(tif(np.stack([a, b, alpha, c], -1), photometric="minisblack", extrasamples=[0, 2, 0]))
    assert isinstance(last, ImageItem) and isinstance(middle, ImageItem), (last, middle)
    assert np.array_equal(np.asarray(middle.image), np.asarray(last.image))


# ---- dicom.py: palettes and YCbCr

def _dicom_items(data: bytes) -> list:
    from medimg.sources import Blob, Context, Limits

    return list(Context(Limits()).open_blob(Blob("x.dcm", data, name="x.dcm")))


def test_segmented_words_over_255_are_not_taken_for_an_8_bit_palette():
    import test_dicom_colour_s34 as dc

    idx = (np.arange(96 * 64).reshape(64, 96) % 256).astype(np.uint8)
    segments = dict(dc.SEGMENTS, Red=[0, 1, 0, 1, 255, 300])  # expands to 256 entries, one of them 300
    old = dc.SEGMENTS
    dc.SEGMENTS = segments
    try:
        data = dc.segmented_palette_dicom(idx, dc.ExplicitVRLittleEndian, "<u2")
    finally:
        dc.SEGMENTS = old
    found = _dicom_items(data)
    assert isinstance(found[0], ItemError) and "palette colour lookup table is invalid" in found[0].error, found


def _enhanced(grey, bits, path="PRIMARY_SINGLE", **kw):
    import builders as b
    from test_dicom_colour_s34 import HOT, enhanced_us

    ds = enhanced_us(grey, bits, path, HOT, **kw)
    return ds, b


@pytest.mark.parametrize("case, why", [
    ("no weight", "a blending weight other than a constant"),
    ("12 bits stored, 8 mapped", "8 bits mapped"),
])
def test_an_enhanced_palette_the_frame_does_not_fit_is_noted_and_grey(case, why):
    if case == "no weight":
        ds, b = _enhanced((np.arange(96 * 64).reshape(64, 96) % 256).astype(np.uint8), 8)
        del ds.BlendingLUT1Sequence[0].BlendingWeightConstant
    else:
        ds, b = _enhanced((np.arange(96 * 64).reshape(64, 96) % 4096).astype("<u2"), 12)
    found = _dicom_items(b.dicom_bytes(ds))
    assert isinstance(found[0], ImageItem) and found[0].image.mode == "L", found
    assert found[0].metadata["note"] == f"Enhanced Palette Color LUT not applied ({why}): shown in grey"


GREY8 = (np.arange(96 * 64).reshape(64, 96) % 256).astype(np.uint8)


def _colours(ds, b) -> np.ndarray:
    found = _dicom_items(b.dicom_bytes(ds))
    assert isinstance(found[0], ImageItem) and "note" not in found[0].metadata, found
    return np.asarray(found[0].image)


def test_an_enhanced_palette_s_blending_weight_is_held_between_0_and_1():
    from test_dicom_colour_s34 import HOT

    assert np.array_equal(_colours(*_enhanced(GREY8, 8, weight=1.5)), HOT[GREY8] // 257)
    assert not _colours(*_enhanced(GREY8, 8, weight=-0.5)).any()


def test_an_equal_rgb_enhanced_palette_gives_each_value_as_its_grey_on_every_channel():
    ds, b = _enhanced(GREY8, 8)
    ds.EnhancedPaletteColorLookupTableSequence[0].RGBLUTTransferFunction = "EQUAL_RGB"  # its tables then unused
    assert np.array_equal(_colours(ds, b), np.repeat(GREY8[..., None], 3, axis=2))


def test_an_enhanced_palette_of_8_bit_entries_in_bytes_padded_to_even_length_is_read():
    ds, b = _enhanced(GREY8, 8)
    palette = ds.EnhancedPaletteColorLookupTableSequence[0]
    lut = np.stack([np.arange(255), 254 - np.arange(255), np.full(255, 77)], -1).astype(np.uint8)  # 255 entries
    for i, colour in enumerate(("Red", "Green", "Blue")):
        setattr(palette, f"{colour}PaletteColorLookupTableDescriptor", [255, 0, 8])
        palette[f"{colour}PaletteColorLookupTableData"] = pydicom_element(
            f"{colour}PaletteColorLookupTableData", "OB", lut[:, i].tobytes() + b"\0")
    assert np.array_equal(_colours(ds, b), lut[np.minimum(GREY8, 254)])


def test_an_enhanced_palette_maps_from_its_first_value_mapped():
    from test_dicom_colour_s34 import HOT

    ds, b = _enhanced(GREY8, 8)
    palette = ds.EnhancedPaletteColorLookupTableSequence[0]
    for colour in ("Red", "Green", "Blue"):
        setattr(palette, f"{colour}PaletteColorLookupTableDescriptor", [256, 16, 16])  # value 16 is entry 0
    assert np.array_equal(_colours(ds, b), HOT[np.clip(GREY8.astype(int) - 16, 0, 255)] // 257)


def test_native_16bit_ybr_full_422_is_converted():
    import builders as b
    from test_dicom_colour_s33 import photo
    from test_dicom_colour_s34 import colour_dicom, full_ybr, image

    rgb = np.repeat(photo()[:, ::2], 2, axis=1).astype(float)  # one colour a pixel pair: nothing lost to 4:2:2
    ybr = full_ybr(rgb / 255 * 65535, 16)
    pairs = np.stack([ybr[:, 0::2, 0], ybr[:, 1::2, 0], ybr[:, 0::2, 1], ybr[:, 0::2, 2]], -1).astype("<u2")
    ds = colour_dicom("YBR_FULL_422", pairs, 16)
    assert np.abs(image(b.dicom_bytes(ds)) - rgb).max() <= 1


def pydicom_element(keyword: str, vr: str, value: bytes):
    import pydicom

    return pydicom.DataElement(keyword, vr, value)


# ---- prints.py

def _print(cells: np.ndarray, width: int, height: int):
    from medimg.sources.prints import Print

    return Print(cells.astype(np.uint8), float(cells.std()), width, height, "PNG")


def test_likeness_of_two_prints_of_one_shape_is_none_past_same_picture_even_within_their_spread():
    from medimg.sources import prints

    ramp = np.arange(256).reshape(16, 16).astype(float)  # a spread of 74: SAME_SPREAD of it is about 3 levels
    a, b = _print(ramp, 100, 100), _print(np.clip(ramp + 2, 0, 255), 200, 200)
    assert a.gap(b) is not None and prints.SAME_PICTURE <= a.gap(b)  # close for the spread, not for a picture
    assert a.likeness(b) is None
    c = _print(np.clip(ramp + 0.6, 0, 255).round(), 200, 200)
    assert a.likeness(c) == (a.gap(c), "")


def test_a_print_gap_is_judged_by_the_flatter_print_s_spread():
    from medimg.sources import prints

    flat = 100 + (np.arange(256).reshape(16, 16) % 16 - 7.5) * 2.2  # a spread of about 10
    spotted = flat.copy()
    spotted[0, 0] += 120  # one cell far off: a spread of about 12.5
    a, b = _print(flat, 100, 100), _print(spotted, 200, 200)
    gap = float(np.abs(a.cells.astype(np.float32) - b.cells).mean())
    assert prints.SAME_SPREAD * a.spread < gap < prints.SAME_SPREAD * b.spread
    assert a.gap(b) is None and b.gap(a) is None


def test_of_two_crops_that_match_the_closer_one_is_named():
    from types import SimpleNamespace

    from medimg.sources.prints import picture_print

    def printed(arr):
        image = Image.fromarray(arr.astype(np.uint8))
        return picture_print(SimpleNamespace(image=image, width=image.width, height=image.height, format="PNG"))

    x, y = np.meshgrid(np.arange(100), np.arange(200))
    tall = 30 + x * 1.8 + y * 0.01  # a ramp across, a faint one down: every band of it nearly alike
    band = tall[50:150]  # its centre, square
    found = printed(tall).likeness(printed(band))
    assert found is not None and found[1] == "new centre" and found[0] < 0.5
    assert printed(tall).crops(printed(band)) and len(printed(tall).crops(printed(band))) == 2  # the top matches too


# ---- web.py: link rules

@pytest.fixture
def srv():
    from webserver import WebServer

    with WebServer() as server:
        yield server


def test_an_ima_link_is_read_when_the_page_s_heading_says_dicom(srv):
    from builders import dicom_file
    from test_web_duplicates import run
    from test_web_sizes import images

    srv.add("/s/IM0001.ima", dicom_file("CT_small.dcm").read_bytes())
    srv.add("/case.html", '<html><head><title>Case 12</title></head><body><h1>DICOM series</h1><table><tr><td>'
                          + "x " * 1000 + '</td><td><a href="/s/IM0001.ima">1</a></td></tr></table></body></html>')
    assert images(run(srv.url("/case.html"))) == [f"a #1 {srv.url('/s/IM0001.ima')}"]


def test_an_ima_link_under_a_download_path_is_read_on_a_page_that_says_nothing_of_dicom(srv):
    from builders import dicom_file
    from test_web_duplicates import run
    from test_web_sizes import images

    srv.add("/files/download/scan.ima", dicom_file("CT_small.dcm").read_bytes())
    srv.add("/s/other.ima", dicom_file("MR_small.dcm").read_bytes())
    srv.add("/page.html", '<html><head><title>Case 12</title></head><body><p>Files: '
                          '<a href="/files/download/scan.ima">scan</a> <a href="/s/other.ima">other</a></p></body></html>')
    assert images(run(srv.url("/page.html"))) == [f"a #1 {srv.url('/files/download/scan.ima')}"]
    assert srv.hits["/s/other.ima"] == 0


def test_a_hinted_link_to_an_svg_drawing_is_said_to_be_one(srv):
    from test_web_duplicates import notes, run

    drawing = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="9" height="9"/></svg>'
    srv.add("/dl/3", drawing + b" " * 70_000)  # application/octet-stream, no name: only its bytes tell
    srv.add("/files.html", '<a href="/dl/3" download>drawing</a>')
    assert notes(run(srv.url("/files.html"))) == [
        (f"a #1 {srv.url('/dl/3')}", f"a link to a SVG drawing, not an image (application/octet-stream, "
                                     f"{len(drawing) + 70_000} bytes)")]


def test_dicom_inside_a_longer_word_does_not_make_a_page_a_dicom_page(srv):
    from test_web_duplicates import run
    from test_web_sizes import images

    srv.add("/s/en_US.dic", b"word/S\n" * 1000, "text/plain")
    srv.add("/docs.html", '<html><head><title>pydicom developer notes</title></head><body><h1>Spelling</h1>'
                          '<p>The word list: <a href="/s/en_US.dic">en_US.dic</a></p></body></html>')
    assert images(run(srv.url("/docs.html"))) == [] and srv.hits["/s/en_US.dic"] == 0



# ---- classifier.predict(errors="return")

class Panic(BaseException):
    """What a Rust decoder's panic looks like from Python: not an Exception."""


def _failing(clf, monkeypatch, exc: BaseException):
    real = clf.prepare

    def prepare(im):
        if im.size == (7, 7):
            raise exc
        return real(im)
    monkeypatch.setattr(clf, "prepare", prepare)


def test_predict_returning_errors_still_lets_a_ctrl_c_through(tiny_classifier, monkeypatch):
    _failing(tiny_classifier, monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        tiny_classifier.predict([Image.new("RGB", (9, 9)), Image.new("RGB", (7, 7))], errors="return")


def test_predict_returns_a_decoder_panic_as_a_runtime_error_that_keeps_it(tiny_classifier, monkeypatch):
    panic = Panic("index out of bounds")
    _failing(tiny_classifier, monkeypatch, panic)
    good, bad = tiny_classifier.predict([Image.new("RGB", (9, 9)), Image.new("RGB", (7, 7))], errors="return")
    assert type(bad) is RuntimeError and str(bad) == "Panic: index out of bounds" and bad.__cause__ is panic
    assert len(bad.__notes__) == 1 and "1 of those given to predict" in bad.__notes__[0]  # which image it was
    assert bad.__traceback__ is None
    assert good.label


# ---- pipeline: cancel

def test_cancel_stops_a_download_while_the_caller_holds_the_stream_without_reading_it(tiny_classifier, tmp_path):
    """A server sets cancel from another thread while its loop is not asking for the next record: the downloads
    watch cancel itself, not only the stream's closing, so they stop then, not when the stream is next read."""
    import time

    from test_api_s34 import png
    from webserver import WebServer, settled

    from medimg.pipeline import classify
    from medimg.sources import Limits

    first = tmp_path / "first.png"
    first.write_bytes(png())
    cancel = __import__("threading").Event()
    with WebServer() as srv:
        srv.slow("/slow.png", png(size=(300, 300)), interval=0.05)  # a byte each 0.05 s
        srv.add("/page.html", '<html><body><img src="slow.png"></body></html>')
        limits = Limits(allow_private=True, total_timeout=120, read_timeout=60)
        records = classify([str(first), srv.url("/page.html")], classifier=tiny_classifier, limits=limits,
                           cancel=cancel)
        try:
            assert next(records).input == str(first)
            deadline = time.monotonic() + 30
            while srv.sent["/slow.png"] < 5 and time.monotonic() < deadline:
                time.sleep(0.02)
            cancel.set()  # the stream is not read meanwhile
            settled(lambda: srv.sent["/slow.png"], within=5)  # stopped: about 20 more bytes a second if not
        finally:
            records.close()


# ---- scratch.py

def test_every_kind_of_server_folder_a_killed_server_left_is_removed_and_a_held_one_stays(tmp_path, monkeypatch):
    import tempfile

    from medimg import scratch

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    left = [tmp_path / f"{prefix}dead" for prefix in scratch.PREFIXES]
    assert {p.name for p in left} >= {"medimg-uploads-dead", "medimg-pages-dead", "medimg-examples-dead",
                                      "medimg-matplotlib-dead"}
    for folder in left:
        folder.mkdir()
        (folder / "upload.png").write_bytes(b"x")
    (tmp_path / "medimg-notes").mkdir()  # not a server's
    held = scratch.private_folder("medimg-pages-")
    try:
        assert sorted(scratch.remove_left_behind()) == sorted(left)
        assert not any(p.exists() for p in left) and (tmp_path / "medimg-notes").is_dir() and held.is_dir()
    finally:
        scratch.remove(held)


# ---- training/ship.py

def test_clearing_a_run_s_assets_takes_its_whole_model_and_an_emptied_folder(tmp_path):
    from medimg.training.ship import clear_assets

    assets = tmp_path / "assets"
    assets.mkdir()
    for name in ("labels.json", "model.onnx", "head.npz"):  # a backbone+head model's three files
        (assets / name).write_bytes(b"earlier")
    clear_assets(assets)
    assert not assets.exists()  # nothing of the user's in it: the folder goes too
    assets.mkdir()
    (assets / "head.npz").write_bytes(b"earlier")
    (assets / "README.txt").write_text("mine")
    clear_assets(assets)
    assert sorted(p.name for p in assets.iterdir()) == ["README.txt"]
    clear_assets(tmp_path / "never made")  # no folder: nothing to do


# ---- training/dataset.py: the per-source cache

def test_a_source_cache_of_another_shape_is_decoded_again_not_used(tmp_path):
    from test_train_s34 import LAYOUT, _load, _same_as_decoded_afresh
    from test_training_inputs import corpus

    root = corpus(tmp_path / "data", LAYOUT)
    cache = tmp_path / "cache"
    assert _load(root, cache)[3] == 12
    victim = sorted(cache.glob("source-16-*.npz"))[0]
    np.savez(victim, x=np.zeros((2, 16, 16, 3), np.uint8), wh=np.zeros((2, 2), np.int32), bad="{}")  # 2 of 3 files
    x, wh, bad, n = _load(root, cache)
    assert n == 3  # that source decoded again
    _same_as_decoded_afresh(root, x, wh, bad)