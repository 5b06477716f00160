"""The same picture in equivalent encodings reaches the model as the same pixels (review s38, real-world inputs)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from PIL import Image

from medimg.model.preprocess import resize_rgb
from medimg.sources import open_input
from medimg.sources.base import Blob, Limits

from test_png_grey_alpha import _png16


def _item(data: bytes, name: str):
    items = list(open_input(Blob(origin=name, data=data, name=name), Limits()))
    assert len(items) == 1 and hasattr(items[0], "image"), items
    return items[0].image


def _xray_like() -> np.ndarray:
    """8-bit grey levels that use only part of 0..255 (as most X-rays, CT and ultrasound exports do): a dark
    field, a brighter body, a few bright spots."""
    y, x = np.mgrid[0:96, 0:128]
    g = 40 + 120 * np.exp(-(((x - 64) / 40.0) ** 2 + ((y - 48) / 30.0) ** 2)) + 10 * np.sin(x / 3.0)
    g[20:24, 90:94] = 215
    return np.clip(g, 0, 255).astype(np.uint8)


def _png(im: Image.Image) -> bytes:
    b = io.BytesIO()
    im.save(b, "PNG")
    return b.getvalue()


@pytest.mark.parametrize("scale", [257, 256])
def test_sixteen_bit_copy_of_an_eight_bit_picture_is_that_picture(scale):
    """A 16-bit grey PNG or TIFF whose values are 8-bit levels widened (v × 257, as ImageMagick and im2uint16
    write them, or v << 8) is the 8-bit picture: it was stretched by its percentiles instead, so the model saw
    a contrast-boosted copy (up to 66 levels off on a chest X-ray; p_medical moved by up to 0.075)."""
    grey = _xray_like()
    want = resize_rgb(_item(_png(Image.fromarray(grey, "L")), "a.png"), 128)
    wide = grey.astype(np.uint16) * scale
    tif = io.BytesIO()
    Image.fromarray(wide).save(tif, "TIFF")  # I;16
    opaque = np.dstack([wide, np.full_like(wide, 65535)])  # with alpha too (PNG through libpng, TIFF tifffile)
    tif_alpha = io.BytesIO()
    tifffile.imwrite(tif_alpha, opaque, photometric="minisblack", extrasamples=["unassalpha"])
    for data, name in ((_png16(wide), "b.png"), (tif.getvalue(), "b.tif"), (_png16(opaque), "c.png"),
                       (tif_alpha.getvalue(), "c.tif")):
        got = resize_rgb(_item(data, name), 128)
        assert np.array_equal(got, want), (name, int(np.abs(got.astype(int) - want).max()))


def test_real_sixteen_bit_values_are_still_stretched():
    """12-bit values in 16 bits are no 8-bit picture: still stretched by their percentiles, not shown nearly black."""
    grey = _xray_like().astype(np.uint16) * 16 + 3  # 0..4095, not multiples of 256 or 257
    got = resize_rgb(_item(_png16(grey), "d.png"), 128)
    assert got.max() == 255 and got.min() == 0
