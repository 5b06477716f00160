"""JPEG XL: images encoded here with imagecodecs' libjxl, bare and in the ISO-BMFF container."""

from __future__ import annotations

import numpy as np
import pytest

from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input
from medimg.sources.jxl import codestream_start, size_of

imagecodecs = pytest.importorskip("imagecodecs")


def encode(a: np.ndarray) -> bytes:
    return imagecodecs.jpegxl_encode(a, level=95)


def box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def container(code: bytes, split: bool = False) -> bytes:
    boxes = box(b"JXL ", b"\x0d\x0a\x87\x0a") + box(b"ftyp", b"jxl \x00\x00\x00\x00jxl ")
    if split:  # jxlp boxes: a 4-byte index, the last one's top bit set
        half = len(code) // 2
        return boxes + box(b"jxlp", (0).to_bytes(4, "big") + code[:half]) + box(
            b"jxlp", (1 | 1 << 31).to_bytes(4, "big") + code[half:])
    return boxes + box(b"jxlc", code)


def items_of(data: bytes, **limits) -> list:
    return list(open_input(Blob("x.jxl", data, name="x.jxl"), Limits(**limits)))


def picture(h=120, w=160) -> np.ndarray:
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2] = (200, 30, 30)
    a[:, w // 2:] = (30, 30, 200)
    return a


@pytest.mark.parametrize("shape", [(120, 160), (64, 24), (1000, 333), (8, 8), (77, 1234)])
def test_size_header_matches_the_image(shape):
    code = encode(np.zeros(shape, np.uint8))
    assert size_of(codestream_start(code)) == (shape[1], shape[0])
    assert size_of(codestream_start(container(code))) == (shape[1], shape[0])


@pytest.mark.parametrize("wrap", ["bare", "jxlc", "jxlp"])
def test_rgb_image_bare_and_in_containers(wrap):
    code = encode(picture())
    data = {"bare": code, "jxlc": container(code), "jxlp": container(code, split=True)}[wrap]
    item, = items_of(data)
    assert isinstance(item, ImageItem) and item.format == "JPEG XL" and item.image.size == (160, 120)
    px = np.asarray(item.image)
    assert abs(int(px[60, 20, 0]) - 200) < 10 and abs(int(px[60, 140, 2]) - 200) < 10


def test_grey_sixteen_bit_alpha_and_animation():
    grey16 = (np.arange(64 * 80, dtype=np.uint16).reshape(64, 80) * 10)
    item, = items_of(encode(grey16))
    assert item.image.mode == "I;16" and item.image.size == (80, 64)
    rgba = np.dstack([picture(40, 50), np.full((40, 50, 1), 128, np.uint8)])
    item, = items_of(encode(rgba))
    assert item.image.mode == "RGBA"
    anim = encode(np.stack([picture(40, 50), picture(40, 50)[:, ::-1], picture(40, 50)]))
    first, = items_of(anim)  # the first frame only, even with all_frames: the frame count is unknown beforehand
    assert first.image.size == (50, 40) and np.asarray(first.image)[20, 5, 0] > 150
    assert len(items_of(anim, all_frames=True)) == 1
    from medimg.sources.jxl import bits_per_sample

    assert bits_per_sample(codestream_start(anim)) == 8  # read past the animation header


def test_pixel_cap_is_checked_from_the_header():
    """A codestream claiming 1,000,000 × 1,000,000 pixels is refused before libjxl sees it."""
    bits = [0] + [1, 1] + [(999_999 >> i) & 1 for i in range(30)] + [1, 0, 0]  # big, 30-bit height, ratio 1:1
    value = sum(b << i for i, b in enumerate(bits))
    bomb = b"\xff\x0a" + value.to_bytes(8, "little") + bytes(32)
    assert size_of(bomb) == (1_000_000, 1_000_000)
    err, = items_of(bomb)
    assert isinstance(err, ItemError) and "max_pixels" in err.error
    err, = items_of(encode(picture()), max_pixels=1000)
    assert isinstance(err, ItemError) and "max_pixels" in err.error


def test_damaged_files_give_clear_errors():
    code = encode(picture())
    for data in (code[:3], code[: len(code) // 2], container(code)[:40], b"\xff\x0a" + bytes(200)):
        err, = items_of(data)
        assert isinstance(err, ItemError) and err.error.startswith("corrupt or truncated JPEG XL image: ")


@pytest.mark.parametrize("depth", [10, 12, 16])
def test_high_bit_depths_fill_the_range_as_a_viewer_shows_them(depth):
    """libjxl hands a 10- or 12-bit image over as uint16 holding 0..1023 or 0..4095: scaled by the header's
    bits per sample, not by 65535 (which drew a 10-bit picture almost black)."""
    from medimg.model.preprocess import to_rgb
    from medimg.sources.jxl import bits_per_sample

    top = (1 << depth) - 1
    rgb = np.zeros((64, 96, 3), np.uint16)
    rgb[:, :48] = (round(0.75 * top), round(0.75 * top), 0)  # a 75 % yellow bar, then 12.5 % grey
    rgb[:, 48:] = round(0.125 * top)
    code = imagecodecs.jpegxl_encode(rgb, lossless=True, bitspersample=depth)
    grey = imagecodecs.jpegxl_encode(rgb[..., 0].copy(), lossless=True, bitspersample=depth)
    assert bits_per_sample(codestream_start(code)) == depth == bits_per_sample(codestream_start(grey))
    (item,) = items_of(code)
    got = np.asarray(item.image, dtype=float)
    assert np.abs(got[:, :48] - (191, 191, 0)).max() <= 1 and np.abs(got[:, 48:] - 32).max() <= 1
    (item,) = items_of(grey)
    shown = np.asarray(to_rgb(item.image), dtype=float)[..., 0]
    assert item.image.mode == "I;16" and np.asarray(item.image).max() > 0.7 * 65535
    assert shown[:, :48].mean() > shown[:, 48:].mean() + 100


def test_eight_bit_and_float_headers():
    from medimg.sources.jxl import bits_per_sample

    assert bits_per_sample(codestream_start(encode(picture()))) == 8
    floats = imagecodecs.jpegxl_encode(np.random.default_rng(0).random((32, 32, 3), dtype=np.float32))
    assert bits_per_sample(codestream_start(floats)) is None


class _BitWriter:
    """Bits written least significant first, as JPEG XL packs them."""

    def __init__(self):
        self.value, self.n = 0, 0

    def put(self, v: int, n: int) -> "_BitWriter":
        assert 0 <= v < 1 << n
        self.value |= v << self.n
        self.n += n
        return self

    def bytes(self) -> bytes:
        return b"\xff\x0a" + self.value.to_bytes(-(-self.n // 8), "little")


@pytest.mark.parametrize("shape", [(100, 120), (48, 64), (64, 96), (72, 128), (64, 80), (32, 64)])
def test_size_header_of_every_aspect_ratio(shape):
    code = encode(np.zeros(shape, np.uint8))
    assert size_of(codestream_start(code)) == (shape[1], shape[0])


def test_a_size_header_that_ends_the_data_exactly_is_read():
    """small = 0, a height in 18 bits, a ratio: 24 bits, the data's last."""
    code = _BitWriter().put(0, 1).put(2, 2).put(1000 - 1, 18).put(1, 3).bytes()
    assert len(code) == 5 and size_of(code) == (1000, 1000)


@pytest.mark.parametrize("depth", [5, 13, 16])
def test_bits_per_sample_after_every_optional_field_of_the_metadata(depth):
    """An intrinsic size, a preview and an animation header (each in its widest form) come before the bit depth."""
    from medimg.sources.jxl import bits_per_sample

    w = _BitWriter().put(1, 1).put(7, 5).put(1, 3)  # SizeHeader: 64 × 64
    w.put(0, 1).put(1, 1).put(5, 3)  # not all_default; extra fields; orientation
    w.put(1, 1).put(0, 1).put(3, 2).put(123456789, 30).put(0, 3).put(3, 2).put(987654321, 30)  # intrinsic size
    w.put(1, 1).put(0, 1).put(3, 2).put(4000, 12).put(0, 3).put(3, 2).put(3000, 12)  # preview, not div8
    w.put(1, 1).put(3, 2).put((1 << 30) - 5, 30).put(3, 2).put(999, 10).put(3, 2).put((1 << 32) - 7, 32).put(1, 1)
    w.put(0, 1).put(3, 2).put(depth - 1, 6)  # integer samples of `depth` bits
    assert bits_per_sample(w.bytes()) == depth


def test_containers_with_64_bit_box_sizes_and_edge_cases_of_the_samples():
    """A box may give its size in 64 bits; the pixel cap holds at exactly the image's pixels; a one-channel
    array and 10-bit samples over 1023 (lossy overshoot) are shown, not refused."""
    from medimg.sources.jxl import _image

    code = encode(picture())
    ftyp = (1).to_bytes(4, "big") + b"ftyp" + (16 + 12).to_bytes(8, "big") + b"jxl \x00\x00\x00\x00jxl "
    data = box(b"JXL ", b"\x0d\x0a\x87\x0a") + ftyp + box(b"jxlc", code)
    assert size_of(codestream_start(data)) == (160, 120)
    (item,) = items_of(data, max_pixels=160 * 120)
    assert isinstance(item, ImageItem) and item.image.size == (160, 120)
    assert _image(np.full((4, 5, 1), 7, np.uint8)).mode == "L"
    assert np.asarray(_image(np.array([[0, 1023, 1100]], np.uint16), 10)).tolist() == [[0, 65535, 65535]]
