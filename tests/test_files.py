"""Image files and folders: every raster format, frames and pages, bombs, truncation, sniffing."""

from __future__ import annotations

import io
import os
import sys
import time
import tracemalloc

import numpy as np
import pytest
from PIL import Image

import builders as b
from medimg.sources import Blob, Context, ImageItem, ItemError, Limits, open_input, open_inputs
from medimg.sources.files import image_kind, iter_folder, read_file
from medimg.sources import registry
from medimg.sources.base import SourcePlugin


def items(data: bytes, name: str = "x", **limits):
    return list(Context(Limits(**limits)).open_blob(Blob(name, data, name=name)))


def one(data: bytes, name: str = "x", **limits):
    got = items(data, name, **limits)
    assert len(got) == 1, got
    return got[0]


@pytest.mark.parametrize("fmt, pil_format", [
    ("PNG", "PNG"), ("JPEG", "JPEG"), ("GIF", "GIF"), ("BMP", "BMP"), ("TIFF", "TIFF"), ("WEBP", "WEBP"),
    ("AVIF", "AVIF"), ("HEIF", "HEIF"), ("JPEG2000", "JPEG2000"),
])
def test_each_format_decodes_at_its_size(fmt, pil_format):
    item = one(b.image_bytes(fmt, (64, 48)))
    assert isinstance(item, ImageItem), item
    assert item.format == pil_format
    assert item.image.size == (64, 48)
    assert item.locator == ""
    # the pixels are the picture, not a blank: left edge dark red channel, right edge bright
    arr = np.asarray(item.image.convert("RGB"), dtype=float)
    assert arr[:, -8:, 0].mean() - arr[:, :8, 0].mean() > 100


def test_ico_opens_largest_size():
    data = b.encode(b.pattern((64, 64)), "ICO", sizes=[(16, 16), (48, 48)])
    item = one(data)
    assert isinstance(item, ImageItem) and item.format == "ICO" and item.image.size == (48, 48)


def test_png_alpha_is_kept():
    item = one(b.image_bytes("PNG", (32, 32), mode="RGBA"))
    assert item.image.mode == "RGBA"
    alpha = np.asarray(item.image)[..., 3]
    assert alpha[0].mean() < 20 and alpha[-1].mean() > 230


def test_sixteen_bit_png_is_kept_deep():
    arr = (np.arange(64 * 32, dtype=np.uint16).reshape(32, 64) * 30).astype(np.uint16)
    data = b.encode(Image.fromarray(arr), "PNG")
    item = one(data)
    assert item.image.mode.startswith("I")
    assert int(np.asarray(item.image).max()) == int(arr.max())


def test_exif_orientation_is_applied():
    item = one(b.jpeg_with_orientation((60, 40), orientation=6))
    assert item.image.size == (40, 60)


def test_big_jpeg_decodes_at_a_reduced_scale_when_allowed_and_keeps_its_size():
    data = b.image_bytes("JPEG", (2000, 1200), quality=90)
    full = one(data)
    assert full.image.size == (2000, 1200) and full.full_size is None
    small = one(data, decode_side=256)
    assert small.image.size == (500, 300)  # 1/4 scale: the smallest DCT scale with both sides ≥ 256
    assert (small.width, small.height) == (2000, 1200)
    ref = np.asarray(full.image.resize((128, 128), Image.BILINEAR, reducing_gap=2.0), np.float32)
    got = np.asarray(small.image.resize((128, 128), Image.BILINEAR, reducing_gap=2.0), np.float32)
    assert np.abs(ref - got).mean() < 3  # the same picture at the model's input size
    # quarter-turned by EXIF: upright pixels, upright stored size
    turned = one(b.jpeg_with_orientation((2000, 1200), orientation=6), decode_side=256)
    assert turned.image.size == (300, 500) and (turned.width, turned.height) == (1200, 2000)
    # other formats and small JPEGs decode in full
    assert one(b.image_bytes("PNG", (2000, 1200)), decode_side=256).image.size == (2000, 1200)
    assert one(b.image_bytes("JPEG", (500, 300)), decode_side=256).image.size == (500, 300)


def test_animated_gif_first_frame_by_default():
    got = items(b.animated_gif(3))
    assert len(got) == 1 and got[0].locator == "frame 1"
    assert got[0].image.convert("RGB").getpixel((5, 5)) == b.COLOURS[0]


def test_animated_gif_all_frames():
    got = items(b.animated_gif(3), all_frames=True)
    assert [i.locator for i in got] == ["frame 1", "frame 2", "frame 3"]
    assert [i.image.convert("RGB").getpixel((5, 5)) for i in got] == b.COLOURS[:3]


def test_an_animation_stops_at_a_frame_over_the_pixel_cap():
    """Reaching a GIF's next frame decodes the one before it (each is drawn over the last): a 2.7 KB fuzzed GIF
    with a 180-megapixel frame took 1.7 GB that way. So the frames after one over the cap are not read."""
    got = items(b.animated_gif(3, size=(100, 100)), all_frames=True, max_pixels=5000)
    assert len(got) == 1 and isinstance(got[0], ItemError) and got[0].locator == "frame 1"
    assert got[0].error.endswith("over the max_pixels cap of 5,000; not decoded; the frames after it are not read "
                                 "either (each is drawn over it)")
    (still,) = items(b.image_bytes("PNG", (100, 100)), max_pixels=5000)  # one picture: no frames to speak of
    assert still.error.endswith("over the max_pixels cap of 5,000; not decoded"), still.error


def test_multipage_tiff_every_page():
    sizes = [(40, 30), (50, 20), (16, 16)]
    got = items(b.multipage_tiff(sizes))
    assert [i.locator for i in got] == ["page 1", "page 2", "page 3"]
    assert [i.image.size for i in got] == sizes
    assert [i.image.convert("RGB").getpixel((2, 2)) for i in got] == b.COLOURS[:3]


def test_many_page_tiff_reads_only_the_pages_it_gives():
    """Pillow counts TIFF pages in quadratic time (40k pages: 17 s); pages are now read until the cap."""
    data = b.tiff_chain(40000)
    started = time.monotonic()
    got = list(open_input(Blob("pages.tif", data, name="pages.tif"), Limits(max_images_per_input=5)))
    assert [i.locator for i in got[:5]] == [f"page {k}" for k in range(1, 6)]
    assert isinstance(got[-1], ItemError) and got[-1].error == "stopped after 5 images (max_images_per_input)"
    assert time.monotonic() - started < 5
    *_, note = open_input(Blob("pages.tif", data, name="pages.tif"), Limits(max_images_per_input=1))
    assert note.error == "stopped after 1 image (max_images_per_input)"


def test_float_tiff_with_a_nan_pixel_is_not_black():
    from medimg.model.preprocess import to_rgb

    arr = np.tile(np.linspace(0, 1000, 64, dtype=np.float32), (48, 1))
    arr[3, 3], arr[4, 4] = np.nan, np.inf
    buf = io.BytesIO()
    Image.fromarray(arr, "F").save(buf, "TIFF")
    (item,) = items(buf.getvalue())
    rgb = np.asarray(to_rgb(item.image))
    assert rgb.max() == 255 and 100 < rgb.mean() < 160  # a ramp, as without the bad pixels



@pytest.mark.parametrize("mode", ["L", "RGB", "I;16"])
def test_a_colour_key_is_transparent_like_alpha(mode):
    """PNG tRNS in a grey, RGB or 16-bit grey image: the keyed pixels are composited on white, as palette ones."""
    from medimg.model.preprocess import resize_rgb, to_rgb

    grey = np.tile(np.linspace(40, 200, 128), (96, 1))
    arr = {"L": grey.astype(np.uint8), "RGB": np.dstack([grey, grey / 2, 255 - grey]).astype(np.uint8),
           "I;16": (grey * 257).astype(np.uint16)}[mode]
    arr[:, 64:] = 0  # the key colour: the right half is transparent
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG", transparency=(0, 0, 0) if mode == "RGB" else 0)
    (item,) = items(buf.getvalue())
    assert item.image.mode == mode and "transparency" in item.image.info
    rgb = np.asarray(to_rgb(item.image), dtype=float)
    assert rgb[:, 64:].min() == 255 and rgb[:, 8:56].mean() < 200
    small = resize_rgb(item.image, 16).astype(float)  # reduced a strip at a time
    assert small[:, 9:].min() > 250 and small[:, :7].mean() < 200


def test_a_16bit_rgb_pngs_colour_key_matches_the_8bit_pixels_pillow_gives():
    import struct
    import zlib

    import imagecodecs

    from medimg.model.preprocess import to_rgb

    arr = np.zeros((40, 60, 3), np.uint16)
    arr[:, :30] = (20000, 30000, 40000)
    arr[:, 30:] = (1000, 2000, 3000)  # the key: the right half is transparent
    data = imagecodecs.png_encode(arr)
    body = b"tRNS" + struct.pack(">HHH", 1000, 2000, 3000)
    at = data.index(b"IDAT") - 4
    data = data[:at] + struct.pack(">I", 6) + body + struct.pack(">I", zlib.crc32(body)) + data[at:]
    (item,) = items(data)
    rgb = np.asarray(to_rgb(item.image), dtype=float)
    assert rgb[:, 30:].min() == 255 and np.abs(rgb[:, :30].mean((0, 1)) - (78, 117, 156)).max() < 1


def _png(ihdr: tuple, *chunks: tuple[bytes, bytes]) -> bytes:
    """A PNG from IHDR (width, height, bit depth, colour type) and (type, data) chunks, IEND added."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    head = chunk(b"IHDR", struct.pack(">IIBBBBB", *ihdr, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + head + b"".join(chunk(*c) for c in chunks) + chunk(b"IEND", b"")


def test_a_16bit_rgb_apngs_colour_key_holds_in_every_frame():
    """Pillow carries `info` from frame to frame: the 16-bit key must not be shifted down again on frame 2."""
    import struct
    import zlib

    from medimg.model.preprocess import to_rgb

    key = (0x1234, 0x5678, 0x9ABC)
    row = b"\0" + struct.pack(">HHH", *key) * 2 + bytes(12)  # 4 px: keyed, keyed, black, black
    pixels = zlib.compress(row * 2)

    def fctl(seq: int) -> tuple[bytes, bytes]:
        return b"fcTL", struct.pack(">IIIIIHHBB", seq, 4, 2, 0, 0, 1, 10, 0, 0)
    data = _png((4, 2, 16, 2), (b"acTL", struct.pack(">II", 2, 0)), (b"tRNS", struct.pack(">HHH", *key)),
                fctl(0), (b"IDAT", pixels), fctl(1), (b"fdAT", struct.pack(">I", 2) + pixels))
    got = items(data, all_frames=True)
    # frame 2 holds frame 1's pixels: it is said to show exactly frame 1's picture, alpha and all (repeats.py)
    assert [it.locator for it in got] == ["frame 1", "frame 2"]
    assert isinstance(got[1], ItemError) and got[1].error == "the same picture as frame 1; not classified again"
    rgb = np.asarray(to_rgb(got[0].image))
    assert (rgb[:, :2] == 255).all() and (rgb[:, 2:] == 0).all(), rgb


@pytest.mark.parametrize("bits, key, decoded", [(1, 0, [0, 255]), (2, 1, [0, 85, 170, 255]),
                                                (4, 1, [0, 17, 34, 255])])
def test_a_low_bit_grey_pngs_colour_key_matches_the_8bit_pixels_pillow_gives(bits, key, decoded):
    """Pillow scales 2- and 4-bit grey up to 8 bits (2-bit 1 is 85) and leaves the key as stored; 1-bit it maps."""
    import struct
    import zlib

    from medimg.model.preprocess import to_rgb

    values = [0, 1, 2, (1 << bits) - 1][:len(decoded)]
    bitstring = "".join(format(v, f"0{bits}b") for v in values).ljust(8 * -(-len(values) * bits // 8), "0")
    row = b"\0" + int(bitstring, 2).to_bytes(len(bitstring) // 8, "big")
    data = _png((len(values), 1, bits, 0), (b"tRNS", struct.pack(">H", key)), (b"IDAT", zlib.compress(row)))
    grey = np.asarray(to_rgb(one(data, "g.png").image))[0, :, 0].tolist()
    assert grey == [255 if v == key else d for v, d in zip(values, decoded)]


@pytest.mark.parametrize("mode", ["I;16", "F"])
def test_a_16bit_or_float_min_is_white_tiff_is_not_inverted(mode):
    """PhotometricInterpretation 0 stores white as 0: Pillow inverts 1- and 8-bit data only."""
    from medimg.model.preprocess import to_rgb

    shown = np.zeros((48, 64))
    shown[:24, :32] = 0.9  # bright top-left quarter on black
    stored = (65535 * (1 - shown)).astype(np.uint16) if mode == "I;16" else (1 - shown).astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray(stored).save(buf, "TIFF", tiffinfo={262: 0})
    (item,) = items(buf.getvalue())
    rgb = np.asarray(to_rgb(item.image), dtype=float)[..., 0]
    assert item.image.mode == mode and rgb[:24, :32].mean() > 200 and rgb[24:].mean() < 50


@pytest.mark.parametrize("page", ["sparse ink", "blank", "float sparse ink", "float blank"])
def test_a_mostly_white_16bit_or_float_page_stays_white(page):
    """A page that is > 99.5 % one value: the 0.5 and 99.5 percentiles meet, so min/max or the type's range."""
    from medimg.model.preprocess import resize_rgb, to_rgb

    arr = np.ones((400, 400))
    if "ink" in page:
        arr[100:102, 80:320] = 0  # a line of text: 0.3 % of the pixels
    img = Image.fromarray(arr.astype(np.float32) if "float" in page else (arr * 65535).astype(np.uint16))
    buf = io.BytesIO()
    img.save(buf, "TIFF" if "float" in page else "PNG")
    (item,) = items(buf.getvalue())
    rgb = np.asarray(to_rgb(item.image), dtype=float)
    assert rgb[:100].min() == 255 and rgb[100:102, 80:320].max() == (0 if "ink" in page else 255)
    assert resize_rgb(item.image, 64).min() > (0 if "ink" in page else 250)
    assert resize_rgb(item.image, 64).mean() > 250


def test_an_embedded_icc_profile_is_converted_to_srgb():
    """A wide-gamut profile means other colours than the same numbers in sRGB: converted as viewers do."""
    from PIL import ImageCms

    wide, srgb = b.wide_gamut_icc(), ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    stored = b.pattern((512, 384))
    for fmt, side in [("PNG", None), ("JPEG", None), ("JPEG", 128)]:
        data = b.encode(stored, fmt, icc_profile=wide)
        item = one(data, decode_side=side)
        raw = Image.open(io.BytesIO(data))
        if side:
            raw.draft("RGB", (side, side))  # converted after the reduced decode, at its size
        shown = ImageCms.profileToProfile(raw, ImageCms.ImageCmsProfile(io.BytesIO(wide)), srgb)
        assert item.image.size == shown.size == ((256, 192) if side else (512, 384))
        assert np.array_equal(np.asarray(item.image), np.asarray(shown))
        assert np.abs(np.asarray(shown, float) - np.asarray(raw, float)).mean() > 10  # not the stored numbers
        assert "icc_profile" not in item.image.info  # it no longer claims the wide profile
    # an sRGB profile, a broken one and one for another colour space leave the stored numbers
    for icc in (srgb.tobytes(), b"not a profile" * 20, wide[:200], ImageCms.ImageCmsProfile(
            ImageCms.createProfile("LAB")).tobytes()):
        item = one(b.encode(stored, "PNG", icc_profile=icc))
        assert isinstance(item, ImageItem) and np.array_equal(np.asarray(item.image), np.asarray(stored))


def test_a_keyed_image_with_a_profile_is_converted_a_strip_at_a_time():
    """A colour-keyed RGB PNG with a wide-gamut profile: converted as RGBA strip by strip (1.2 Mpx here, two
    strips), each pixel as the whole-image conversion gives it, the keyed ones transparent."""
    from PIL import ImageCms

    wide = b.wide_gamut_icc()
    stored = np.asarray(b.pattern((400, 3000)).convert("RGB")).copy()
    stored[:, 300:] = (1, 2, 3)  # the key
    buf = io.BytesIO()
    Image.fromarray(stored).save(buf, "PNG", icc_profile=wide, transparency=(1, 2, 3))
    item = one(buf.getvalue())
    shown = ImageCms.profileToProfile(Image.fromarray(stored).convert("RGBA"),
                                      ImageCms.ImageCmsProfile(io.BytesIO(wide)),
                                      ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")))
    got = np.asarray(item.image)
    assert item.image.mode == "RGBA" and np.array_equal(got[..., :3], np.asarray(shown)[..., :3])
    assert got[:, 300:, 3].max() == 0 and got[:, :300, 3].min() == 255


def test_a_raised_pixel_cap_is_not_overruled_by_pillow():
    big = b.png_declaring(15000, 15000)  # 225 Mpx: over Pillow's own limit (2 × 89 Mpx)
    (err,) = items(big, max_pixels=400_000_000)
    assert "too many pixels" not in err.error  # read past the header: the (fake) data is what fails
    (err,) = items(big)
    assert "max_pixels" in err.error


def test_a_nul_in_a_path_is_an_error_for_that_input_only(tmp_path):
    good = tmp_path / "good.png"
    good.write_bytes(b.image_bytes("PNG"))
    got = list(open_inputs([str(tmp_path / "bad\0name.png"), str(good)]))
    assert isinstance(got[0], ItemError) and "null" in got[0].error and isinstance(got[1], ImageItem)


def test_pixel_bomb_header_is_refused_without_decoding():
    start = time.monotonic()
    item = one(b.png_declaring(100_000, 100_000))
    assert isinstance(item, ItemError) and not item.skipped
    assert "pixels" in item.error
    assert time.monotonic() - start < 2


def test_pixel_cap_is_checked_before_decoding():
    # 9000×9000 declared, under Pillow's own limit: only our header check stops it (the data is tiny,
    # so a decode attempt would fail with a different, truncation error).
    item = one(b.png_declaring(9000, 9000), max_pixels=50_000_000)
    assert isinstance(item, ItemError) and "max_pixels" in item.error and "81,000,000" in item.error


def test_low_pixel_cap_on_a_normal_image():
    assert isinstance(one(b.image_bytes("PNG", (100, 100)), max_pixels=10_000), ImageItem)
    item = one(b.image_bytes("PNG", (100, 100)), max_pixels=9_999)
    assert isinstance(item, ItemError) and "max_pixels" in item.error


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image_is_a_clear_error(fmt):
    data = b.image_bytes(fmt, (200, 200))
    item = one(b.truncated(data, 0.5))
    assert isinstance(item, ItemError) and not item.skipped
    assert "truncated" in item.error.lower()


def test_png_named_jpg_is_read_as_png(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(b.image_bytes("PNG", (30, 20)))
    got = list(open_input(path))
    assert len(got) == 1 and got[0].format == "PNG" and got[0].origin == str(path)


def test_svg_is_skipped_with_a_note():
    item = one(b.SVG)
    assert isinstance(item, ItemError) and item.skipped and "SVG" in item.error


def test_html_with_inline_svg_is_not_taken_for_svg():
    assert image_kind(b"<!DOCTYPE html><html><body><svg></svg></body></html>") is None
    assert image_kind(b"<svg xmlns='http://www.w3.org/2000/svg'/>") == "SVG"


def test_extension_is_ignored_for_non_images(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("just some text, not an image\n")
    got = list(open_input(path))
    assert len(got) == 1 and isinstance(got[0], ItemError) and not got[0].skipped
    # one text, given alone or found in a folder: the name promised a PNG, and what the file starts with
    (found,) = open_input(tmp_path)
    assert got[0].error == found.error == ("named PNG but not readable as one, nor as any supported format "
                                           "(damaged, or misnamed: 29 bytes, starting “just som”)")
    (plain,) = open_input(Blob("notes", path.read_bytes(), name="notes"))
    assert plain.error.startswith("unrecognised content: not an image, document or archive medimg reads (29 bytes")


def test_in_a_folder_or_zip_a_file_named_as_an_image_that_is_none_is_an_error_not_a_note(tmp_path):
    """A readme beside the scans is passed over with a note; a damaged or misnamed scan must not be."""
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "bad.png").write_bytes(bytes(range(256)) * 2)
    (folder / "study.nii.gz").write_bytes(b"not gzip at all")
    (folder / "readme.txt").write_text("scans of 2024")
    (folder / "set.zip").write_bytes(b.zip_bytes({"x.JPG": b"garbage bytes", "notes.md": b"# notes"}))
    got = {i.origin.replace(":", "/").rsplit("/", 1)[-1]: i for i in open_input(folder)}
    assert got["readme.txt"].skipped and got["notes.md"].skipped
    for name, kind in (("bad.png", "PNG"), ("study.nii.gz", "NII.GZ"), ("x.JPG", "JPG")):
        assert not got[name].skipped and got[name].error.startswith(f"named {kind} but not readable"), name


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    got = list(open_input(path))
    assert len(got) == 1 and isinstance(got[0], ItemError) and "empty" in got[0].error


def test_a_jpeg_pillow_cannot_open_says_so_plainly():
    err = one(b"\xff\xd8\xff" + bytes(100), "x.jpg")
    assert isinstance(err, ItemError) and "'MPO'" not in err.error and "JPEG" in err.error


def test_garbage_after_magic_is_an_error_not_a_crash():
    item = one(b"\x89PNG\r\n\x1a\n" + os.urandom(300))
    assert isinstance(item, ItemError) and "PNG" in item.error


# ---------------------------------------------------------------- read_file


def test_read_file_missing(tmp_path):
    err = read_file(tmp_path / "nope.png", Context())
    assert isinstance(err, ItemError) and "not found" in err.error


def test_read_file_refuses_oversize_before_reading(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(b.image_bytes("PNG", (64, 64)))
    size = path.stat().st_size
    assert not isinstance(read_file(path, Context(Limits(max_input_bytes=size))), ItemError)
    err = read_file(path, Context(Limits(max_input_bytes=size - 1)))
    assert isinstance(err, ItemError) and "max_input_bytes" in err.error


@pytest.mark.timeout(10)
def test_read_file_refuses_a_fifo_instead_of_blocking(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    err = read_file(fifo, Context())
    assert isinstance(err, ItemError) and "regular file" in err.error


# ---------------------------------------------------------------- folders


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "in"
    (root / "b_sub" / "deeper").mkdir(parents=True)
    (root / "__MACOSX").mkdir()
    (root / ".git").mkdir()
    (root / "a.png").write_bytes(b.image_bytes("PNG", (20, 10)))
    (root / "c.txt").write_text("hello")
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "__MACOSX" / "._a.png").write_bytes(b"\x00\x05\x16\x07")
    (root / ".git" / "x.png").write_bytes(b.image_bytes("PNG"))
    (root / "b_sub" / "pages.tif").write_bytes(b.multipage_tiff([(8, 8)] * 5))
    (root / "b_sub" / "deeper" / "photo.jpg").write_bytes(b.image_bytes("JPEG", (30, 30)))
    (root / "b_sub" / "deeper" / "broken.jpg").write_bytes(b.truncated(b.image_bytes("JPEG", (90, 90))))
    (root / "d.zip").write_bytes(b.zip_bytes({"in/z.gif": b.animated_gif(2)}))
    return root


def test_folder_is_recursive_sorted_and_skips_hidden(tree):
    got = list(open_input(tree))
    rel = [(os.path.relpath(i.origin.split(":")[0], tree), i.locator, type(i).__name__) for i in got]
    assert rel == [
        ("a.png", "", "ImageItem"),
        ("c.txt", "", "ItemError"),
        ("d.zip", "frame 1", "ImageItem"),
        ("b_sub/pages.tif", "page 1", "ImageItem"),
        ("b_sub/pages.tif", "page 2", "ImageItem"),
        ("b_sub/pages.tif", "page 3", "ImageItem"),
        ("b_sub/pages.tif", "page 4", "ImageItem"),
        ("b_sub/pages.tif", "page 5", "ImageItem"),
        ("b_sub/deeper/broken.jpg", "", "ItemError"),
        ("b_sub/deeper/photo.jpg", "", "ImageItem"),
    ]
    note = got[1]
    assert note.skipped, "a stray text file in a folder is a note, not an error"
    broken = got[8]
    assert not broken.skipped and "truncated" in broken.error.lower()
    assert got[2].origin == f"{tree / 'd.zip'}:in/z.gif"


def test_folder_caps_images_per_file_and_goes_on(tree):
    got = list(iter_folder(tree, Context(Limits(max_images_per_input=2))))
    tif = [i for i in got if i.origin.endswith("pages.tif")]
    assert [type(i).__name__ for i in tif] == ["ImageItem", "ImageItem", "ItemError"]
    assert tif[-1].skipped and "max_images_per_input" in tif[-1].error
    assert any(i.origin.endswith("photo.jpg") and isinstance(i, ImageItem) for i in got)


def test_unlistable_subfolder_is_reported(tree, monkeypatch):
    from medimg.sources import files

    real_walk = files.walk

    def walk(top, onerror):
        onerror(PermissionError(13, "Permission denied", str(tree / "locked")))
        yield from real_walk(top, onerror)

    monkeypatch.setattr(files, "walk", walk)
    got = list(iter_folder(tree, Context()))
    assert isinstance(got[0], ItemError) and got[0].origin == str(tree / "locked")
    assert "Permission denied" in got[0].error
    assert any(isinstance(i, ImageItem) for i in got)


def test_mpo_jpeg_is_one_picture_even_with_all_frames():
    # phone JPEGs carry gain maps or depth maps as extra MPO frames: they are not separate pictures
    big, extra = Image.new("RGB", (40, 30), "red"), Image.new("RGB", (20, 15), "blue")
    data = b.encode(big, "MPO", save_all=True, append_images=[extra])
    got = items(data, all_frames=True)
    assert len(got) == 1 and got[0].locator == "" and got[0].image.size == (40, 30)


def test_linked_folders_are_read_once_and_loops_end(tmp_path):
    """An export tree made of links to folders: each linked folder is read (os.walk passes over them by
    default, silently), a folder reached twice is read once, and a link back up is a note, not a loop."""
    (tmp_path / "scans").mkdir()
    (tmp_path / "scans" / "a.png").write_bytes(b.image_bytes("PNG"))
    (tmp_path / "scans" / "up").symlink_to("..")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "x").symlink_to("../scans")
    (tree / "y").symlink_to("../scans")
    got = [(type(i).__name__, os.path.relpath(i.origin, tmp_path), getattr(i, "skipped", False))
           for i in open_input(tree)]
    assert got == [("ImageItem", "tree/x/a.png", False), ("ItemError", "tree/x/up", True),  # above it (s44)
                   ("ItemError", "tree/y", True)]
    notes = [i.error for i in open_input(tree) if isinstance(i, ItemError)]
    assert notes[-1] == f"link to a folder read already ({os.path.realpath(tmp_path / 'scans')}); not read again"
    # a link sorting before the folder it names beside it (current -> 2024-05-01): the folder is read where it is
    (tmp_path / "scans" / "up").unlink()
    (tmp_path / "scans" / "0-latest").symlink_to("../scans")
    (tmp_path / "a-current").symlink_to("scans")
    got = [(type(i).__name__, os.path.relpath(i.origin, tmp_path)) for i in open_input(tmp_path)]
    assert ("ImageItem", "scans/a.png") in got and ("ItemError", "a-current") in got, got
    assert not any(origin.startswith(("a-current/", "scans/0-latest/")) for _, origin in got), got


def test_urls_of_other_schemes_say_so():
    """ftp://, s3:// … were taken for paths (Path even folds the //): "file not found" said nothing useful."""
    for url in ("ftp://host/scan.dcm", "s3://bucket/scan.dcm"):
        (err,) = open_input(url)
        scheme = url.split(":")[0]
        assert err.origin == url and err.error == (f"only http and https URLs are fetched, not {scheme}:// (for a "
                                                   "local file give its path)")


def test_an_empty_folder_gives_one_note(tmp_path):
    """A folder with no files (or hidden ones only) still gets a row saying so, as an empty zip does."""
    from medimg.sources import open_inputs

    (tmp_path / "empty" / "deeper").mkdir(parents=True)
    (tmp_path / "hidden").mkdir()
    (tmp_path / "hidden" / ".DS_Store").write_bytes(b"x")
    got = list(open_inputs([str(tmp_path / "empty"), str(tmp_path / "hidden")]))
    assert [(i.origin, i.skipped) for i in got] == [(str(tmp_path / "empty"), True), (str(tmp_path / "hidden"), True)]
    assert all("folder holds no files" in i.error for i in got)


def test_a_file_uri_is_read_as_its_path(tmp_path):
    from medimg.sources import open_inputs

    p = tmp_path / "a scan.png"
    p.write_bytes(b.image_bytes("PNG", (64, 48)))
    uri = p.as_uri()
    assert "%20" in uri
    local = uri.replace("file://", "file://localhost", 1)
    got = list(open_inputs([uri, local, "file://pacs.example.org/share/a.png"]))
    assert [type(i).__name__ for i in got] == ["ImageItem", "ImageItem", "ItemError"]
    assert got[0].origin == str(p) and "another host (pacs.example.org)" in got[2].error


def test_image_over_pillows_own_limit_names_the_max_pixels_cap():
    (err,) = items(b.png_declaring(100_000, 100_000))  # over 2 × Image.MAX_IMAGE_PIXELS: Pillow refuses it first
    assert err.error == "image is 10,000,000,000 pixels, over the max_pixels cap of 100,000,000; not decoded"


def test_unknown_content_is_described_in_words():
    """What a user sees for a file nothing reads: its size and first bytes as text or hex, never a bytes repr."""
    (empty,) = open_input(Blob("empty.png", b"", name="empty.png"))
    assert empty.error == "the file is empty"
    (text,) = open_input(Blob("notes.txt", b"just some notes", name="notes.txt"))
    assert text.error == ("unrecognised content: not an image, document or archive medimg reads (15 bytes, "
                          "starting “just som”)")
    (binary,) = open_input(Blob("blob.bin", bytes(range(200, 256)), name="blob.bin"))
    assert binary.error.endswith("(56 bytes, starting c8 c9 ca cb cc cd ce cf)")


def test_read_file_refuses_a_big_file_by_its_size_without_reading_it(tmp_path):
    path = tmp_path / "big.bin"
    with open(path, "wb") as f:
        f.truncate(64 * 1024 * 1024)  # sparse: no disk used, but 64 MB if read
    tracemalloc.start()
    try:
        err = read_file(path, Context(Limits(max_input_bytes=1024 * 1024)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(err, ItemError) and err.error == "file is 64.0 MB, over the max_input_bytes cap of 1.0 MB"
    assert peak < 8 * 1024 * 1024, f"{peak:,} bytes held to refuse it"
    small = tmp_path / "small.bin"
    small.write_bytes(bytes(1000))
    err = read_file(small, Context(Limits(max_input_bytes=999)))  # one byte over: refused by its size too
    assert isinstance(err, ItemError) and err.error == "file is 1,000 bytes, over the max_input_bytes cap of 999 bytes"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_read_file_caps_a_file_that_holds_more_than_its_stat_size():
    """A file that grew after stat (here a /proc file, which stats as 0 bytes) is still held to the cap."""
    err = read_file("/proc/self/maps", Context(Limits(max_input_bytes=100)))
    assert isinstance(err, ItemError) and err.error == "file is over the max_input_bytes cap of 100 bytes"


def test_macos_and_windows_litter_in_a_folder_is_left_out(tmp_path):
    """__MACOSX folders, Thumbs.db and desktop.ini in a folder are not read as inputs, even without a leading dot."""
    root = tmp_path / "in"
    (root / "__MACOSX").mkdir(parents=True)
    (root / "__MACOSX" / "copy.png").write_bytes(b.image_bytes("PNG", (20, 10)))
    (root / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))
    (root / "desktop.ini").write_text("[.ShellClassInfo]\nIconResource=x.ico,0\n")
    (root / "scan.png").write_bytes(b.image_bytes("PNG", (20, 10)))
    got = list(open_input(root))
    assert [(os.path.relpath(i.origin, root), type(i).__name__) for i in got] == [("scan.png", "ImageItem")]


def test_a_folder_that_cannot_be_listed_gives_only_its_listing_error(tmp_path):
    """A folder gone (or unreadable) when it is walked gives one listing error, not also an 'empty folder' note."""
    gone = tmp_path / "gone"
    got = list(iter_folder(gone, Context()))
    assert len(got) == 1, got
    assert isinstance(got[0], ItemError) and not got[0].skipped
    assert got[0].origin == str(gone) and got[0].error.startswith("could not list folder")


def test_a_sniffer_that_raises_does_not_hide_the_sources_after_it(monkeypatch):
    """A source whose `accepts` raises is passed over: the next source that accepts the bytes still opens them."""
    def broken(head, blob):
        raise ValueError("bad sniffer")

    plugin = SourcePlugin("broken", broken, lambda blob, ctx: iter(()), priority=0)
    monkeypatch.setattr(registry, "_PLUGINS", [plugin, *registry.plugins()])
    (item,) = open_input(Blob("a.png", b.image_bytes("PNG", (40, 30)), name="a.png"))
    assert isinstance(item, ImageItem) and item.format == "PNG"


def test_a_file_uri_in_capitals_or_a_local_path_named_like_a_url_is_read(tmp_path, monkeypatch):
    """URI schemes are case-insensitive (FILE:///…); a relative path that looks like ftp://… but names a file here
    is that file."""
    p = tmp_path / "a.png"
    p.write_bytes(b.image_bytes("PNG", (64, 48)))
    (item,) = open_inputs(["FILE://" + p.as_uri()[len("file://"):]])
    assert isinstance(item, ImageItem) and item.origin == str(p)
    (tmp_path / "ftp:" / "host").mkdir(parents=True)
    (tmp_path / "ftp:" / "host" / "scan.png").write_bytes(b.image_bytes("PNG", (64, 48)))
    monkeypatch.chdir(tmp_path)
    (item,) = open_inputs(["ftp://host/scan.png"])
    assert isinstance(item, ImageItem), item


def test_a_bytes_path_like_or_short_binary_bytes_are_one_error_naming_them_safely(tmp_path):
    """An os.DirEntry of a bytes scan is a path given as bytes: one error saying to give it as str. A short file's
    bytes (a tiny PNG, NULs and all) are named by their size, not printed."""
    p = tmp_path / "a.png"
    p.write_bytes(b.image_bytes("PNG", (64, 48)))
    (entry,) = os.scandir(os.fsencode(tmp_path))
    (err,) = open_inputs([entry])
    assert isinstance(err, ItemError) and "a path given as bytes (DirEntry): give it as str" in err.error
    tiny = b.image_bytes("PNG", (1, 1))
    assert len(tiny) <= 200 and b"\0" in tiny
    (err,) = open_inputs([tiny])
    assert isinstance(err, ItemError) and err.origin == f"<{len(tiny):,} bytes>"


def test_a_list_of_inputs_given_as_an_input_says_to_use_inputs_from(tmp_path):
    """A URL list or a table of paths given as an input (a common slip) is an error that names --inputs-from; other
    text, text with a few names in it, binary data, and the same list found in a folder (a note) do not."""
    hint = "it looks like a list of inputs, which the command line reads with --inputs-from"
    urls = tmp_path / "urls.txt"
    urls.write_text("# partner URLs\nhttp://127.0.0.1:8734/gallery.html\n\nhttps://example.org/a.png\n")
    table = Blob("list.csv", b"path,label\nscans/a.dcm,ct\n\"scans/b c.png\",xray\nexport.zip,\n", name="list.csv")
    (got,) = open_input(urls)
    assert not got.skipped and got.error.endswith("(77 bytes, starting “# partne”); " + hint), got.error
    (got,) = open_input(table)
    assert got.error.endswith(hint), got.error
    prose = b"Delivery notes.\nImages are in scans/a.png and in export.zip.\nCall us.\nThanks\n"
    for data in (prose, b"\x00\x01\x02\nhttp://a/b.png\n", b"a.png\n" + bytes(range(200, 256))):
        (got,) = open_input(Blob("notes", data, name="notes"))
        assert got.error.startswith("unrecognised content") and hint not in got.error, (data, got.error)
    (note,) = open_input(tmp_path)  # in a folder: a skipped note, as before
    assert note.skipped and hint not in note.error
