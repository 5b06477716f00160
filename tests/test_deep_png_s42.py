"""16-bit colour PNGs holding a 10- to 14-bit camera's values (0..4095 for 12 bits): Pillow gives their top 8
bits, nearly black (at most 15 of 255); they are read with libpng (imagecodecs) and shown by the depth they reach,
as 16-bit colour TIFF pages are. A PNG that uses its 16 bits is left as Pillow reads it."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from medimg.sources import open_inputs

imagecodecs = pytest.importorskip("imagecodecs", reason="imagecodecs (a dependency) is not installed")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _with_chunk(png: bytes, kind: bytes, body: bytes) -> bytes:
    """`png` with one more chunk just before its first IDAT."""
    at = png.index(b"IDAT") - 4
    return png[:at] + _chunk(kind, body) + png[at:]


def _twelve_bit(h: int = 40, w: int = 60, channels: int = 3) -> np.ndarray:
    arr = np.zeros((h, w, channels), np.uint16)
    arr[..., 0] = np.linspace(0, 4095, w, dtype=np.uint16)[None, :]  # red: a ramp over 12 bits
    arr[..., 1] = 2048
    arr[..., 2] = 1000
    if channels == 4:
        arr[..., 3] = 65535
        arr[:, :10, 3] = 0  # the left 10 columns clear
    return arr


def _read(tmp_path, data: bytes, name: str = "cam.png"):
    path = tmp_path / name
    path.write_bytes(data)
    (item,) = open_inputs([str(path)])
    assert not hasattr(item, "error"), item
    return item


def test_a_12_bit_camera_rgb_png_is_shown_by_its_own_depth(tmp_path):
    item = _read(tmp_path, imagecodecs.png_encode(_twelve_bit()))
    arr = np.asarray(item.image)
    assert item.image.mode == "RGB" and item.metadata["bits"] == 16
    assert arr[..., 0].max() == 255 and arr[..., 0].min() == 0  # the ramp spans 0..255 (it was 0..15)
    assert abs(int(arr[0, 0, 1]) - 128) <= 1 and abs(int(arr[0, 0, 2]) - 1000 // 16) <= 1


def test_alpha_of_a_deep_rgba_png_is_kept(tmp_path):
    item = _read(tmp_path, imagecodecs.png_encode(_twelve_bit(channels=4)))
    arr = np.asarray(item.image)
    assert item.image.mode == "RGBA"
    assert (arr[:, :10, 3] == 0).all() and (arr[:, 10:, 3] == 255).all()
    assert arr[:, 10:, 0].max() == 255


def test_a_16_bit_colour_key_still_makes_its_pixels_clear(tmp_path):
    arr = _twelve_bit()
    arr[:5] = (7, 7, 7)  # the key colour, in the top 5 rows
    png = _with_chunk(imagecodecs.png_encode(arr), b"tRNS", struct.pack(">HHH", 7, 7, 7))
    image = _read(tmp_path, png).image
    alpha = np.asarray(image.convert("RGBA"))[..., 3]
    assert (alpha[:5] == 0).all() and (alpha[5:] == 255).all()


def test_the_orientation_of_a_deep_png_is_followed(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # turned 90° clockwise to view
    png = _with_chunk(imagecodecs.png_encode(_twelve_bit(40, 60)), b"eXIf", exif.tobytes())
    image = _read(tmp_path, png).image
    assert image.size == (40, 60)
    assert np.asarray(image)[..., 0].max() == 255


def test_a_png_that_uses_its_16_bits_is_read_as_before(tmp_path):
    arr = _twelve_bit().astype(np.uint32) * 16  # the same picture scaled to 16 bits, as PNG's spec asks
    image = _read(tmp_path, imagecodecs.png_encode(arr.astype(np.uint16))).image
    ramp = np.asarray(image)[0, :, 0]
    assert ramp.max() == 255 and ramp.min() == 0
    dim = arr.astype(np.uint16)
    dim[..., 0] //= 8  # a dark 16-bit picture (its brightest red at 1/8 of white, reaching 13 bits)...
    dim[..., 1:] = 40000  # ...whose other colours reach 16 bits: a dark red, not a camera's 13 bits
    image = _read(tmp_path, imagecodecs.png_encode(dim), "dark.png").image
    assert np.asarray(image)[..., 0].max() == (4095 * 16 // 8) >> 8
