"""TIFF layouts Pillow cannot read (or reads as other numbers), read through tifffile (sources/tiff.py): each
built here with tifffile, its pixels as the model is shown them, its caps checked from the header."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc

import numpy as np
import pytest
import tifffile
from PIL import Image

from medimg.model.preprocess import to_rgb
from medimg.sources import Blob, Context, ImageItem, ItemError, Limits, open_input

H, W = 48, 64
RAMP = np.tile(np.arange(W), (H, 1))


def tif(arr, **kw) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr, **kw)
    return buf.getvalue()


def pages(*arrays, **kw) -> bytes:
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as w:
        for arr in arrays:
            w.write(arr, photometric="rgb" if arr.ndim == 3 else "minisblack", **kw)
    return buf.getvalue()


def items(data: bytes, **limits) -> list:
    return list(Context(Limits(**limits)).open_blob(Blob("x.tif", data, name="x.tif")))


def one(data: bytes, **limits) -> ImageItem | ItemError:
    got = items(data, **limits)
    assert len(got) == 1, got
    return got[0]


def shown(item) -> np.ndarray:
    """What the model is given, as uint8 RGB."""
    assert isinstance(item, ImageItem), item
    return np.asarray(to_rgb(item.image))


def claiming(data: bytes, **tags: int) -> bytes:
    """`data` with the first page's LONG tags (ImageWidth=256, …) rewritten in place to claim other sizes."""
    codes = {"width": 256, "length": 257, "tile_width": 322, "tile_length": 323}
    out = bytearray(data)
    page = tifffile.TiffFile(io.BytesIO(data)).pages[0]
    for name, value in tags.items():
        tag = page.tags[codes[name]]
        assert tag.dtype == 4 and tag.count == 1
        struct.pack_into("<I", out, tag.valueoffset, value)
    return bytes(out)


ALPHA16 = np.full((H, W), 65535, np.uint16)
ALPHA16[:, :16] = 0  # the left quarter transparent
GREY16 = (RAMP * 1000).astype(np.uint16)
GREY8 = (RAMP * 4).astype(np.uint8)
ALPHA8 = (ALPHA16 >> 8).astype(np.uint8)

# (layout, bytes, the mode it is given as): every one was "corrupt or truncated TIFF image" before
LAYOUTS = [
    ("float16 grey", lambda: tif(RAMP.astype(np.float16)), "F"),
    ("float64 grey", lambda: tif(RAMP.astype(np.float64)), "F"),
    ("float16 grey, BigTIFF", lambda: tif(RAMP.astype(np.float16), bigtiff=True), "F"),
    ("float16 grey, tiled Deflate, floating-point predictor",
     lambda: tif(RAMP.astype(np.float16), tile=(16, 16), compression="zlib", predictor=3), "F"),
    ("float16 grey, LZW, floating-point predictor",
     lambda: tif(RAMP.astype(np.float16), compression="lzw", predictor=3), "F"),
    ("float16 grey, Zstandard, floating-point predictor",
     lambda: tif(RAMP.astype(np.float16), compression="zstd", predictor=3), "F"),
    ("float32 RGB", lambda: tif(np.stack([RAMP] * 3, -1).astype(np.float32), photometric="rgb"), "RGB"),
    ("float16 RGB", lambda: tif(np.stack([RAMP] * 3, -1).astype(np.float16), photometric="rgb"), "RGB"),
    ("float32 RGB, separate planes",
     lambda: tif(np.stack([RAMP] * 3).astype(np.float32), photometric="rgb", planarconfig="separate"), "RGB"),
    ("uint32 RGB", lambda: tif(np.stack([RAMP * 67_000_000] * 3, -1).astype(np.uint32), photometric="rgb"), "RGB"),
    ("12-bit RGB", lambda: tif(np.stack([RAMP * 60] * 3, -1).astype(np.uint16), photometric="rgb",
                               bitspersample=12), "RGB"),
    ("10-bit grey", lambda: tif((RAMP * 15).astype(np.uint16), bitspersample=10), "I;16"),
    ("uncompressed YCbCr", lambda: tif(np.stack([GREY8] * 3, -1), photometric="ycbcr", subsampling=(1, 1)), "RGB"),
    ("16-bit grey, unassociated alpha",
     lambda: tif(np.stack([GREY16, ALPHA16], -1), photometric="minisblack", extrasamples=[2]), "LA"),
    ("16-bit grey, associated alpha",
     lambda: tif(np.stack([GREY16, ALPHA16], -1), photometric="minisblack", extrasamples=[1]), "LA"),
    ("16-bit MinIsWhite grey, alpha",
     lambda: tif(np.stack([GREY16, ALPHA16], -1), photometric="miniswhite", extrasamples=[2]), "LA"),
    ("8-bit MinIsWhite grey, alpha",
     lambda: tif(np.stack([GREY8, ALPHA8], -1), photometric="miniswhite", extrasamples=[2]), "LA"),
    ("8-bit MinIsWhite grey, associated alpha",
     lambda: tif(np.stack([GREY8, ALPHA8], -1), photometric="miniswhite", extrasamples=[1]), "LA"),
    ("float32 grey, alpha",
     lambda: tif(np.stack([RAMP, ALPHA16 / 65535], -1).astype(np.float32), photometric="minisblack",
                 extrasamples=[2]), "LA"),
    ("8-bit grey, alpha, separate planes",
     lambda: tif(np.stack([GREY8, ALPHA8]), photometric="minisblack", planarconfig="separate",
                 extrasamples=[2]), "LA"),
    ("2 channels of 16 bits", lambda: tif(np.stack([GREY16, GREY16[:, ::-1]], -1), photometric="minisblack",
                                          extrasamples=[0]), "RGB"),
    ("2 channels of 16 bits, separate planes",
     lambda: tif(np.stack([GREY16, GREY16[:, ::-1]]), photometric="minisblack", planarconfig="separate"), "RGB"),
    ("5 channels of 16 bits, separate planes",
     lambda: tif(np.stack([GREY16] * 5), photometric="minisblack", planarconfig="separate"), "RGB"),
    ("5 channels of 8 bits", lambda: tif(np.stack([GREY8] * 5, -1), photometric="minisblack",
                                         planarconfig="contig"), "RGB"),
]


@pytest.mark.parametrize("layout, build, mode", LAYOUTS, ids=[layout for layout, _, _ in LAYOUTS])
def test_a_layout_pillow_cannot_read_is_read_through_tifffile(layout, build, mode):
    item = one(build())
    assert isinstance(item, ImageItem), item
    assert (item.format, item.image.mode, item.image.size, item.locator) == ("TIFF", mode, (W, H), "")
    assert item.metadata["mode"] == mode and item.metadata["dtype"]
    rgb = shown(item)
    assert rgb.shape == (H, W, 3) and rgb.max() > rgb.min()  # something to see, not a blank


def test_float16_grey_is_shown_as_the_same_ramp_in_float32_is():
    """Pillow reads float32 grey as F and the model stretches it; float16 now comes out the same."""
    ramp = RAMP.astype(np.float32) * 3.5 - 40
    assert np.array_equal(shown(one(tif(ramp.astype(np.float16)))), shown(one(tif(ramp))))


def test_the_float32_rgb_gradient_is_stretched_by_its_percentiles_together():
    """Float colour has no range of its own: its samples are stretched together by their 0.5–99.5 percentiles
    (as the model stretches float grey), so the balance between colours stays."""
    x = np.linspace(0, 1000, 201, dtype=np.float32)
    rgb = np.stack([np.tile(x, (10, 1)), np.tile(x[::-1], (10, 1)), np.full((10, 201), 500, np.float32)], -1)
    lo, hi = np.percentile(rgb, (0.5, 99.5))
    expected = np.clip((rgb - lo) / (hi - lo) * 255, 0, 255).astype(np.uint8)
    got = shown(one(tif(rgb, photometric="rgb")))
    assert np.abs(got.astype(int) - expected).max() <= 1
    assert got[0, 0].tolist() == [0, 255, 127] and got[0, -1].tolist() == [255, 0, 127]


def test_uncompressed_ycbcr_is_the_rgb_it_encodes():
    rgb = np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    ycbcr = np.asarray(Image.fromarray(rgb, "RGB").convert("YCbCr"))  # JPEG's full-range BT.601, TIFF's default
    item = one(tif(ycbcr, photometric="ycbcr", subsampling=(1, 1)))
    assert item.image.mode == "RGB"
    assert np.abs(np.asarray(item.image).astype(int) - rgb).max() <= 3


@pytest.mark.parametrize("extra", [1, 2], ids=["associated", "unassociated"])
def test_16bit_grey_with_alpha_is_stretched_over_its_opaque_pixels_and_laid_on_white(extra):
    stored = GREY16 if extra == 2 else (GREY16 * (ALPHA16 / 65535)).astype(np.uint16)  # premultiplied: the same
    got = shown(one(tif(np.stack([stored, ALPHA16], -1), photometric="minisblack", extrasamples=[extra])))[0, :, 0]
    assert (got[:16] == 255).all()  # transparent: white
    opaque = (RAMP[0, 16:] - 16) / (W - 17) * 255  # the opaque ramp alone, stretched
    assert np.abs(got[16:].astype(int) - opaque).max() <= 3 and got[16] <= 2 and got[-1] >= 253


def test_min_is_white_grey_with_alpha_is_inverted():
    for grey, alpha in [(GREY8, ALPHA8), (GREY16, ALPHA16)]:
        got = shown(one(tif(np.stack([grey, alpha], -1), photometric="miniswhite", extrasamples=[2])))[0, :, 0]
        assert (got[:16] == 255).all() and got[16] >= 190 and got[-1] <= 50
        assert (np.diff(got[16:].astype(int)) <= 0).all()  # dark where the stored numbers are high


def test_channels_are_merged_in_imagej_colours_as_a_stacks_are():
    """Two 16-bit channels with no ImageJ or OME metadata: red and green, each stretched, as microscopy.py
    merges a stack's channels."""
    got = shown(one(tif(np.stack([GREY16, GREY16[:, ::-1]]), photometric="minisblack", planarconfig="separate")))
    assert got[0, 0].tolist() == [0, 255, 0] and got[0, -1].tolist() == [255, 0, 0]
    assert (got[..., 2] == 0).all()


def test_12bit_rgb_is_scaled_by_its_bit_depth():
    item = one(tif(np.stack([RAMP * 60] * 3, -1).astype(np.uint16), photometric="rgb", bitspersample=12))
    assert np.asarray(item.image)[0, :, 0].tolist() == (RAMP[0] * 60 // 16).tolist()


def test_signed_8bit_and_large_unsigned_32bit_grey_are_read_as_the_numbers_they_are():
    """Pillow opens both but reads signed 8-bit as unsigned (-1 is white) and unsigned 32-bit as signed (over
    2³¹ is negative): the ramps came out as saw teeth."""
    for arr in [np.tile(np.arange(-64, 64, dtype=np.int8), (4, 1)),
                np.tile(np.arange(64, dtype=np.uint32) * 67_000_000, (4, 1))]:
        item = one(tif(arr))
        assert item.image.mode == "F"
        row = shown(item)[0, :, 0].astype(int)
        assert (np.diff(row) >= 0).all() and row[0] == 0 and row[-1] >= 250


def test_a_header_claiming_a_huge_image_is_refused_before_decoding():
    data = claiming(tif(RAMP.astype(np.float16)), width=65_000, length=65_000)
    tracemalloc.start()
    started = time.monotonic()
    item = one(data)
    took = time.monotonic() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert isinstance(item, ItemError)
    assert item.error == ("image is 65000×65000 = 4,225,000,000 pixels, over the max_pixels cap of 100,000,000; "
                          "not decoded")
    assert took < 2 and peak < 20 << 20


def test_the_pixel_cap_is_checked_before_tifffile_decodes(monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("decoded")

    monkeypatch.setattr(tifffile.TiffPage, "asarray", never)
    item = one(tif(RAMP.astype(np.float16)), max_pixels=W * H - 1)
    assert "over the max_pixels cap of 3,071; not decoded" in item.error
    # a tile claiming more than the cap, in an image within it
    data = claiming(tif(np.tile(RAMP, (2, 2)).astype(np.float16), tile=(32, 32)), tile_width=65_536,
                    tile_length=65_536)
    assert one(data).error == ("image has tiles of 65,536×65,536 pixels, over the max_pixels cap of 100,000,000; "
                               "not decoded")
    # within the pixel cap, but 5 float64 samples a pixel: 40 bytes a pixel against 4
    item = one(tif(np.stack([RAMP] * 5).astype(np.float64), photometric="minisblack", planarconfig="separate"),
               max_pixels=W * H)
    assert item.error == ("image is 64×48 pixels of 5 float64 sample(s), 122,880 bytes decoded: over the 4 bytes a "
                          "pixel of the max_pixels cap of 3,072; not decoded")


def test_a_damaged_tile_is_an_error_for_its_page_and_the_next_page_is_read():
    data = bytearray(pages(np.tile(RAMP, (2, 2)).astype(np.float16), RAMP.astype(np.float16), tile=(32, 32),
                           compression="zlib", predictor=3))
    page = tifffile.TiffFile(io.BytesIO(bytes(data))).pages[0]
    at, count = page.dataoffsets[1], page.databytecounts[1]
    data[at + 2:at + count] = b"\xff" * (count - 2)
    first, second = items(bytes(data))
    assert isinstance(first, ItemError) and first.locator == "page 1"
    assert first.error.startswith("corrupt or truncated TIFF image: ")
    assert isinstance(second, ImageItem) and second.locator == "page 2" and second.image.size == (W, H)


def test_a_truncated_file_or_an_unsupported_layout_is_a_clear_error():
    data = tif(RAMP.astype(np.float16))
    cut = one(data[:len(data) - 3000])
    assert isinstance(cut, ItemError) and cut.error.startswith("corrupt or truncated TIFF image: ")
    complex_ = one(tif(RAMP.astype(np.complex64)))
    assert complex_.error == "TIFF layout not supported: complex64 samples"
    jxr = one(tif(GREY16, compression="jpegxr"))  # a picture codec whose tiles' sizes are not checked: not decoded
    assert jxr.error == ("TIFF layout not supported: JPEGXR compression (decoded here: none, LZW, Deflate, "
                         "PackBits, LZMA, Zstandard; JPEG 2000, WebP, JPEG XL and LERC with each tile's own size "
                         "checked)")
    junk = one(b"II*\x00" + struct.pack("<I", 8) + b"\xff" * 200)  # neither Pillow nor tifffile can parse it
    assert junk.error == "corrupt or truncated TIFF image: Pillow cannot read it"


@pytest.mark.parametrize("all_frames", [False, True])
def test_every_page_is_read_with_or_without_all_frames_as_pillows_pages_are(all_frames):
    """TIFF pages are all read (all_frames is for animations and volumes), each `page N`, until the image cap."""
    data = pages(*[(RAMP + k).astype(np.float16) for k in range(4)])
    got = items(data, all_frames=all_frames)
    assert [i.locator for i in got] == ["page 1", "page 2", "page 3", "page 4"]
    assert all(isinstance(i, ImageItem) and i.image.mode == "F" for i in got)
    assert [float(np.asarray(i.image)[0, 0]) for i in got] == [0, 1, 2, 3]
    *images, note = open_input(Blob("x.tif", data, name="x.tif"), Limits(max_images_per_input=2,
                                                                         all_frames=all_frames))
    assert [i.locator for i in images] == ["page 1", "page 2"]
    assert note.skipped and note.error == "stopped after 2 images (max_images_per_input)"


def test_pages_pillow_cannot_read_among_pages_it_can():
    """Page 1 is Pillow's; the float16 and float RGB pages after it come through tifffile, in order."""
    data = pages(GREY8, RAMP.astype(np.float16), np.stack([RAMP] * 3, -1).astype(np.float32), GREY8[:, ::-1])
    got = items(data)
    assert [(i.locator, i.image.mode) for i in got] == [("page 1", "L"), ("page 2", "F"), ("page 3", "RGB"),
                                                        ("page 4", "L")]
    assert np.asarray(got[3].image)[0, 0] == GREY8[0, -1]


def test_a_chain_of_pages_that_loops_ends():
    """tifffile's page index follows a looping chain of IFDs for ever; the pages end where it comes back."""
    tags = [(256, 3, 1, 1), (257, 3, 1, 1), (258, 3, 1, 16), (259, 3, 1, 1), (262, 3, 1, 1), (273, 4, 1, 8),
            (278, 3, 1, 1), (279, 4, 1, 2), (339, 3, 1, 3)]  # 1×1 float16 grey pages sharing one strip
    out = bytearray(b"II*\x00" + struct.pack("<I", 10) + b"\x00\x3c")
    size = 2 + len(tags) * 12 + 4
    for k in range(3):
        out += struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", *t) for t in tags)
        out += struct.pack("<I", 10 if k == 2 else 10 + (k + 1) * size)  # the last page points back at the first
    got = items(bytes(out))
    assert [i.locator for i in got] == ["page 1", "page 2", "page 3"]
    assert all(isinstance(i, ImageItem) and np.asarray(i.image)[0, 0] == 1.0 for i in got)


def test_the_orientation_tag_turns_the_page_as_pillow_turns_its_pages():
    arr = np.zeros((20, 40), np.float32)
    arr[:5, :5] = 1
    for orientation in (3, 6, 8):
        ours = one(tif(arr.astype(np.float16), extratags=[(274, "H", 1, orientation, True)])).image
        pillows = one(tif(arr, extratags=[(274, "H", 1, orientation, True)])).image
        assert ours.size == pillows.size and np.array_equal(np.asarray(ours), np.asarray(pillows))


def test_a_float16_and_a_two_channel_tiff_are_classified_and_extracted(tmp_path, tiny_model_dir):
    """The whole way: `classify` gives each a row with no error, and `extract` saves what the model is shown."""
    import json

    from typer.testing import CliRunner

    from medimg.cli import app

    runner = CliRunner()
    (tmp_path / "f16.tif").write_bytes(tif(RAMP.astype(np.float16)))
    (tmp_path / "two.tif").write_bytes(tif(np.stack([GREY16, GREY16[:, ::-1]]), photometric="minisblack",
                                           planarconfig="separate"))
    out = tmp_path / "r.jsonl"
    res = runner.invoke(app, ["classify", str(tmp_path), "--model", str(tiny_model_dir), "-o", str(out)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["error"], r["width"], r["height"]) for r in rows] == [(None, W, H)] * 2
    res = runner.invoke(app, ["extract", str(tmp_path / "two.tif"), "--out", str(tmp_path / "x")])
    assert res.exit_code == 0, res.output
    with Image.open(tmp_path / "x" / "000001.png") as saved:
        assert saved.mode == "RGB" and saved.getpixel((0, 0)) == (0, 255, 0)


def test_a_page_read_with_tifffile_is_converted_from_its_icc_profile_as_pillows_pages_are():
    """Pillow's TIFF pages were converted from their embedded ICC profile to sRGB, tifffile's were not: a float
    RGB page from a wide-gamut camera came out duller than the same page as a 16-bit one."""
    import builders
    from PIL import ImageCms

    wide = builders.wide_gamut_icc()
    rng = np.random.default_rng(5)
    arr = np.stack([RAMP, RAMP[::-1], rng.integers(0, W, RAMP.shape)], -1).astype(np.float32)
    plain = shown(one(tif(arr, photometric="rgb")))
    got = shown(one(tif(arr, photometric="rgb", iccprofile=wide)))
    to_srgb = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(wide)), ImageCms.createProfile("sRGB"),
                                      "RGB", "RGB", renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    expected = np.asarray(to_srgb.apply(Image.fromarray(plain, "RGB"))).astype(int)
    assert np.abs(plain.astype(int) - expected).mean() > 5  # the profile matters here
    assert np.abs(got.astype(int) - expected).max() <= 1
