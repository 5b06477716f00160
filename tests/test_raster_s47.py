"""Session 47: ordinary raster files as users upload them."""
import io
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from medimg.sources import Blob, open_input
from medimg.sources.base import ImageItem, ItemError
from test_diffread_s37 import MEASURE  # a subprocess that reads two files and gives the second's peak memory


def _items(name, data, **limits):
    return list(open_input(Blob(origin=name, data=data, name=name), limits or None))


def _pillow(data):
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im)


def test_ten_bit_ppm_is_decoded_fast_and_as_pillow_scales_it():
    # maxval 1023 or 4095 (a 10- or 12-bit export): Pillow's decoder scaled each sample in Python, 10 s a
    # megapixel of colour
    rng = np.random.default_rng(1)
    small = rng.integers(0, 1024, (30, 50, 3)).astype(">u2")
    small[0, 0] = (1023, 2000, 0)  # over maxval: as maxval
    data = b"P6\n50 30\n1023\n" + small.tobytes()
    [item] = _items("a.ppm", data)
    assert isinstance(item, ImageItem) and item.image.mode == "RGB"
    assert np.array_equal(np.asarray(item.image), _pillow(data))
    big = b"P6\n1000 1000\n1023\n" + rng.integers(0, 1024, (1000, 1000, 3)).astype(">u2").tobytes()
    start = time.monotonic()
    [item] = _items("b.ppm", big)
    assert isinstance(item, ImageItem) and item.image.size == (1000, 1000)
    assert time.monotonic() - start < 4  # 10 s before, 0.1 s now


def test_twelve_bit_pgm_keeps_its_levels():
    grey = np.arange(0, 4096, 4, dtype=">u2").reshape(32, 32)
    data = b"P5\n32 32\n4095\n" + grey.tobytes()
    [item] = _items("a.pgm", data)
    assert isinstance(item, ImageItem) and item.metadata["mode"] == "I"
    assert np.array_equal(np.asarray(item.image).astype(np.int64), _pillow(data).astype(np.int64))
    low = b"P5\n4 2\n15\n" + bytes([0, 1, 7, 15, 16, 3, 0, 15])
    [item] = _items("c.pgm", low)
    assert np.array_equal(np.asarray(item.image), _pillow(low))


def test_ten_bit_ppm_cut_short_is_an_error():
    data = b"P6\n50 30\n1023\n" + bytes(50 * 30 * 6 - 7)
    [item] = _items("a.ppm", data)
    assert isinstance(item, ItemError)
    assert item.error == "corrupt or truncated PPM image: not enough image data"


def _apng(frames, **kw):
    out = io.BytesIO()
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:], **kw)
    return out.getvalue()


def _framed(colour):
    im = Image.new("RGB", (40, 30), colour)
    im.paste((255, 255, 255), (0, 0, 10, 10))  # not one colour: not a blank frame
    return im


def test_apng_default_image_outside_the_animation_is_not_shown():
    # IDAT before the first fcTL: a fallback for viewers without APNG; browsers play the animation only
    red, green, blue = _framed((255, 0, 0)), _framed((0, 255, 0)), _framed((0, 0, 255))
    data = _apng([red, green, blue], default_image=True)
    [item] = _items("a.png", data)
    assert item.locator == "frame 1" and item.metadata["frames"] == 2
    assert item.image.getpixel((30, 20)) == (0, 255, 0)
    items = _items("a.png", data, all_frames=True)
    assert [(i.locator, i.image.getpixel((30, 20))) for i in items] == [("frame 1", (0, 255, 0)),
                                                                        ("frame 2", (0, 0, 255))]
    [item] = _items("b.png", _apng([red, green], default_image=True))  # an animation of one frame
    assert item.locator == "" and item.image.getpixel((30, 20)) == (0, 255, 0)


def test_apng_whose_default_image_is_its_first_frame_is_unchanged():
    data = _apng([_framed((255, 0, 0)), _framed((0, 255, 0))])
    [item] = _items("a.png", data)
    assert item.locator == "frame 1" and item.metadata["frames"] == 2
    assert item.image.getpixel((30, 20)) == (255, 0, 0)


def _saved(fmt, **kw):
    rng = np.random.default_rng(2)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (120, 160, 3)).astype(np.uint8)).save(out, fmt, **kw)
    return out.getvalue()


def test_webp_cut_short_says_so():
    data = _saved("WEBP")  # Pillow's words were "could not create decoder object", wherever it was cut
    for cut in (60, len(data) // 2, len(data) - 1):
        [item] = _items("a.webp", data[:cut])
        assert item.error == (f"corrupt or truncated WEBP image: its RIFF header gives {len(data):,} bytes, "
                              f"the file has {cut:,}: the file is truncated")


def test_avif_cut_short_says_where():
    data = _saved("AVIF")  # Pillow's words were "Pillow cannot read it" (libheif names the box for a HEIC itself)
    [item] = _items("a.avif", data[:len(data) // 2])
    assert isinstance(item, ItemError)
    assert item.error == (f"corrupt or truncated AVIF image: its 'mdat' box ends at byte {len(data):,}, past the "
                          f"end of the file ({len(data) // 2:,} bytes): the file is truncated")
    [item] = _items("whole.avif", data + b"\0" * 100)  # bytes after the boxes: read as before
    assert isinstance(item, ImageItem)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="peak RSS is read from /proc")
def test_a_still_png_is_held_once_not_copied(tmp_path):
    """A still picture's decoded pixels were copied to be turned upright even when they need no turning: a 100 Mpx
    RGB PNG peaked at 866 MB over the start, 485 MB now (Pillow keeps RGB in 4 bytes a pixel)."""
    side = 4000
    im = Image.new("RGB", (side, side), (20, 120, 200))
    im.paste((250, 250, 0), (0, 0, side // 2, side // 3))
    small, big = tmp_path / "small.png", tmp_path / "big.png"
    im.resize((64, 64)).save(small)
    im.save(big, compress_level=1)
    done = subprocess.run([sys.executable, "-c", MEASURE, str(small), str(big)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["read"] == [True]
    assert found["grew"] < 1.5 * side * side * 4, found["grew"] / 1e6  # one copy: 64 MB; two before


def test_a_still_picture_turned_upright_or_with_a_profile_is_right_and_the_frames_stay_apart():
    ex = Image.Exif()
    ex[0x0112] = 6  # turned: its own pixels
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    im.paste((0, 0, 255), (0, 0, 10, 20))
    out = io.BytesIO()
    im.save(out, "PNG", exif=ex.tobytes())
    [item] = _items("a.png", out.getvalue())
    assert item.image.size == (20, 40) and item.image.getpixel((10, 2)) == (0, 0, 255)
    frames = [Image.new("RGB", (40, 30), c) for c in ((255, 0, 0), (0, 255, 0))]
    for f in frames:
        f.paste((255, 255, 255), (0, 0, 10, 10))
    items = _items("b.png", _apng(frames), all_frames=True)  # each frame's item keeps its own pixels
    assert [i.image.getpixel((30, 20)) for i in items] == [(255, 0, 0), (0, 255, 0)]


def _tga32(alpha, alpha_bits):
    import struct

    px = np.zeros((30, 40, 4), np.uint8)  # BGRA, top row first
    px[..., 2] = 200
    px[:, :20, 0] = 200
    px[..., 3] = alpha
    return struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, 40, 30, 32, 0x20 | alpha_bits) + px.tobytes()


def test_a_32_bit_tga_whose_alpha_is_all_zero_is_opaque():
    # its fourth byte unused (0): Pillow reads it as alpha, and the picture came out all white
    for bits in (0, 8):
        [item] = _items("a.tga", _tga32(0, bits))
        assert item.image.mode == "RGB" and item.image.getpixel((5, 5)) == (200, 0, 200), bits
    [item] = _items("b.tga", _tga32(255, 8))  # a real alpha stays
    assert item.image.mode == "RGBA" and item.image.getpixel((30, 5)) == (200, 0, 0, 255)
