"""Single image files as people upload them (session 40): Netpbm files (mini-MIAS's mammograms are PGM), Windows
cursors read as the icons they are, BMPs whose alpha is all zero, and ICC profiles on palette and grey-with-alpha
images."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input
from medimg.model.preprocess import to_rgb


def items(data: bytes, name: str = "upload", **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def one_image(data: bytes, name: str = "upload") -> ImageItem:
    got = items(data, name)
    assert len(got) == 1 and isinstance(got[0], ImageItem), got
    return got[0]


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def corner() -> np.ndarray:
    """48×64 grey, a bright 10×10 corner at the top left (which way up the picture is)."""
    a = np.full((48, 64), 40, np.uint8)
    a[:10, :10] = 250
    return a


# ---------------------------------------------------------------- Netpbm


def test_netpbm_files_are_read_with_their_own_grey_levels_and_way_up():
    """PGM, PPM and PBM (and PFM's grey Pf) were 'unrecognised content': a mini-MIAS mammogram (8-bit binary PGM
    with a comment line) could not be classified at all. Now each is read as Pillow reads it, upright."""
    a = corner()
    cases = {
        "mdb001.pgm": b"P5\n# MIAS\n64 48\n255\n" + a.tobytes(),
        "twelve.pgm": b"P5\n64 48\n4095\n" + (a.astype(np.uint16) * 16).astype(">u2").tobytes(),
        "plain.pgm": b"P2\n64 48\n255\n" + " ".join(map(str, a.ravel())).encode(),
        "colour.ppm": b"P6 64 48 255\n" + np.dstack([a, a, a]).tobytes(),
        "mask.pbm": b"P4\n64 48\n" + np.packbits(a < 128, axis=1).tobytes(),  # 1 is black
        "depth.pfm": b"Pf\n64 48\n-1.0\n" + (a[::-1] / 255).astype("<f4").tobytes(),  # rows stored bottom up
    }
    for name, data in cases.items():
        item = one_image(data, name)
        assert item.format == "PPM" and item.image.size == (64, 48), (name, item)
        shown = np.asarray(to_rgb(item.image))[..., 0]
        assert shown[2, 2] > 200 and shown[30, 40] < 128, (name, shown[2, 2], shown[30, 40])


def test_netpbm_caps_and_damage_are_per_item_errors_and_text_is_not_taken_for_one():
    a = corner()
    (bomb,) = items(b"P5\n100000 100000\n255\n" + a.tobytes(), "bomb.pgm")
    assert isinstance(bomb, ItemError) and "max_pixels" in bomb.error and "not decoded" in bomb.error
    (cut,) = items((b"P5\n64 48\n255\n" + a.tobytes())[:1000], "cut.pgm")
    assert isinstance(cut, ItemError) and "truncated" in cut.error
    # a note that happens to start like a header is still not an image, given alone or in a folder
    (text,) = items(b"P1 is the first point of the plan\n", "plan.txt")
    assert isinstance(text, ItemError) and "unrecognised content" in text.error


def test_a_pgm_name_promises_an_image(tmp_path):
    """In a folder, content no source reads is a note, unless its name promises an image: a damaged `.pgm` is now
    an error to see, as a damaged `.png` is."""
    (tmp_path / "mdb002.pgm").write_bytes(b"not a picture at all")
    (item,) = list(open_input(str(tmp_path)))
    assert isinstance(item, ItemError) and not item.skipped and "named PGM" in item.error


# ---------------------------------------------------------------- cursors and BMP alpha


def cursor(icon: bytes) -> bytes:
    """A .cur made from an .ico: type 2, and each entry's planes and bit count fields holding a hotspot."""
    out = bytearray(icon)
    out[2] = 2
    for i in range(int.from_bytes(icon[4:6], "little")):
        out[6 + 16 * i + 4:6 + 16 * i + 8] = struct.pack("<HH", 5, 6)
    return bytes(out)


def clear_quarter(size: int = 64) -> Image.Image:
    """Opaque blue with its top-left quarter clear (red under it, which must not show)."""
    img = Image.new("RGBA", (size, size), (0, 128, 255, 255))
    img.paste((255, 0, 0, 0), (0, 0, size // 2, size // 2))
    return img


@pytest.mark.parametrize("bitmap", ["png", "bmp"])
def test_a_cursor_gives_its_largest_picture_with_its_transparency(bitmap):
    """Pillow's cursor reader could not read PNG pictures ('Truncated File Read'), and dropped a 32-bit picture's
    alpha when the file held several sizes (the clear corner showed red). A cursor is an icon with a hotspot: read
    as one, it gives its largest picture, clear where it is clear."""
    data = cursor(encode(clear_quarter(), "ICO", sizes=[(16, 16), (32, 32), (64, 64)], bitmap_format=bitmap))
    item = one_image(data, "pointer.cur")
    assert item.format == "CUR" and item.image.size == (64, 64)
    shown = np.asarray(to_rgb(item.image))
    assert shown[5, 5].tolist() == [255, 255, 255] and shown[60, 60].tolist() == [0, 128, 255]


def bmp(width: int, height: int, pixels: bytes, masks: tuple[int, int, int, int]) -> bytes:
    """A 32-bit BMP with a V5 header and bit masks (BI_BITFIELDS), rows bottom up."""
    info = struct.pack("<IiiHHIIiiII", 124, width, height, 1, 32, 3, len(pixels), 2835, 2835, 0, 0)
    info += struct.pack("<IIII", *masks) + bytes(124 - 56)
    offset = 14 + len(info)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + pixels


def test_a_bmp_whose_alpha_is_zero_everywhere_is_shown_opaque():
    """A BMP that gives an alpha mask but fills it with zeros was a clear rectangle (all white for the model);
    browsers show such a file opaque, as its writer meant. Real alpha stays."""
    left, right = bytes((0, 0, 255, 0)), bytes((0, 255, 0, 0))  # BGRA: red, green; alpha 0
    rows = (left * 8 + right * 8) * 4
    item = one_image(bmp(16, 4, rows, (0xFF0000, 0xFF00, 0xFF, 0xFF000000)), "export.bmp")
    shown = np.asarray(to_rgb(item.image))
    assert shown[1, 1].tolist() == [255, 0, 0] and shown[1, 14].tolist() == [0, 255, 0]
    some = (left * 8 + bytes((0, 255, 0, 255)) * 8) * 4  # the left half really clear
    shown = np.asarray(to_rgb(one_image(bmp(16, 4, some, (0xFF0000, 0xFF00, 0xFF, 0xFF000000)), "a.bmp").image))
    assert shown[1, 1].tolist() == [255, 255, 255] and shown[1, 14].tolist() == [0, 255, 0]


# ---------------------------------------------------------------- ICC profiles


@pytest.fixture(scope="module")
def profiles():
    cms = pytest.importorskip("imagecodecs", reason="imagecodecs builds the test's ICC profiles")
    p3 = cms.cms_profile("rgb", whitepoint=[0.3127, 0.3290, 1.0],
                         primaries=[0.680, 0.320, 1.0, 0.265, 0.690, 1.0, 0.150, 0.060, 1.0], gamma=2.2)
    return {"p3": bytes(p3), "linear_grey": bytes(cms.cms_profile("gray", gamma=1.0))}


def test_a_palette_png_with_a_profile_is_converted_as_its_rgb_twin_is(profiles):
    """A palette PNG's iCCP was ignored (only RGB, RGBA, CMYK and L were converted): its colours came out as the
    stored numbers while the same picture saved as RGB was converted. Now its palette is, tRNS kept."""
    picture = Image.new("RGB", (64, 48), (128, 64, 200))
    picture.paste((20, 160, 90), (32, 0, 64, 48))
    rgb = np.asarray(to_rgb(one_image(encode(picture, "PNG", icc_profile=profiles["p3"]), "a.png").image))
    palette = picture.quantize(4)
    item = one_image(encode(palette, "PNG", icc_profile=profiles["p3"], transparency=3), "a.png")
    assert item.image.mode == "P"
    shown = np.asarray(to_rgb(item.image))
    assert rgb[5, 5].tolist() != [128, 64, 200]  # the profile changes this colour
    assert np.abs(shown.astype(int) - rgb.astype(int)).max() <= 1


def test_grey_with_alpha_or_a_colour_key_gets_its_grey_profile(profiles):
    """A linear grey profile makes stored 128 show as sRGB 188. L was converted, LA and a keyed L (grey tRNS) were
    not (128): the same scan looked darker with an alpha channel. The key still marks its pixels clear."""
    grey = Image.new("L", (64, 48), 128)
    grey.paste(0, (0, 0, 8, 8))
    icc = profiles["linear_grey"]
    plain = np.asarray(to_rgb(one_image(encode(grey, "PNG", icc_profile=icc), "a.png").image))
    assert plain[20, 20].tolist() == [188] * 3
    for data in (encode(grey.convert("LA"), "PNG", icc_profile=icc),
                 encode(grey, "PNG", icc_profile=icc, transparency=0)):
        shown = np.asarray(to_rgb(one_image(data, "a.png").image))
        assert shown[20, 20].tolist() == [188] * 3, shown[20, 20]
    keyed = np.asarray(to_rgb(one_image(encode(grey, "PNG", icc_profile=icc, transparency=0), "a.png").image))
    assert keyed[2, 2].tolist() == [255] * 3  # clear, on white
