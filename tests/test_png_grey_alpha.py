"""A 16-bit grey PNG with alpha reaches the model as the same picture without alpha does (review s35): its grey
stretched by its percentiles over the opaque pixels, not cut to its top 8 bits."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import tifffile
from PIL import Image

from medimg.model.preprocess import resize_rgb, to_rgb
from medimg.sources import open_input
from medimg.sources.base import Blob, Limits


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png16(arr: np.ndarray, exif: bytes | None = None) -> bytes:
    """A 16-bit PNG of grey (H×W) or grey and alpha (H×W×2); an eXIf chunk after the pixels when given."""
    h, w = arr.shape[:2]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))
    colour = 0 if arr.ndim == 2 else 4
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw)) + (_chunk(b"eXIf", exif) if exif else b"") + _chunk(b"IEND", b""))


def _image(data: bytes, name: str = "x.png") -> Image.Image:
    items = list(open_input(Blob(origin=name, data=data, name=name), Limits()))
    assert len(items) == 1 and hasattr(items[0], "image"), items
    return items[0].image


def _twelve_bits() -> np.ndarray:
    """A 12-bit ramp with a bright block, as a detector or a PACS export writes it in 16 bits."""
    g = (np.add.outer(np.arange(48), np.arange(80)) * 4095 // 126).astype(np.uint16)
    g[10:20, 50:70] = 4095
    return g


def test_a_12_bit_grey_png_with_an_opaque_alpha_reaches_the_model_as_the_one_without_alpha():
    g = _twelve_bits()
    plain = resize_rgb(_image(_png16(g)), 128).astype(int)
    with_alpha = resize_rgb(_image(_png16(np.dstack([g, np.full_like(g, 65535)]))), 128).astype(int)
    assert plain.max() == 255  # stretched: the ramp spans the levels
    assert np.abs(with_alpha - plain).max() <= 1  # was the top 8 bits, 0..15: a black square


def test_a_16_bit_grey_png_with_alpha_shows_as_the_same_tiff_page_does():
    g = _twelve_bits()
    alpha = np.full_like(g, 65535)
    alpha[:, :8] = 0  # a transparent margin whose stored grey is the brightest value: it must not set the stretch
    g[:, :8] = 65535
    arr = np.dstack([g, alpha])
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr, photometric="minisblack", extrasamples=[2])
    png = np.asarray(to_rgb(_image(_png16(arr)))).astype(int)
    tif = np.asarray(to_rgb(_image(buf.getvalue(), "x.tif"))).astype(int)
    assert np.abs(png - tif).max() <= 1
    assert (png[:, :8] == 255).all()  # the margin laid on white
    assert png[:, 8:].max() == 255 and png[:, 8:].min() == 0  # the opaque part over the whole range


def test_a_16_bit_grey_png_with_alpha_is_turned_by_its_exif_orientation_after_the_pixels():
    g = np.zeros((20, 40), np.uint16)
    g[:, :10] = 4000  # a bright band on the left; orientation 6 turns it to the top
    exif = Image.Exif()
    exif[0x0112] = 6
    img = _image(_png16(np.dstack([g, np.full_like(g, 65535)]), exif.tobytes()))
    assert img.size == (20, 40)
    grey = np.asarray(img.convert("L"))
    assert (grey[:10] == 255).all() and (grey[10:] == 0).all()


def test_a_16_bit_grey_png_with_alpha_is_turned_by_its_xmp_orientation():
    g = np.zeros((20, 40), np.uint16)
    g[:, :10] = 4000
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
    data = _png16(np.dstack([g, np.full_like(g, 65535)]))
    itxt = _chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp)
    at = data.index(b"IDAT") - 4
    img = _image(data[:at] + itxt + data[at:])
    assert img.size == (20, 40)
    grey = np.asarray(img.convert("L"))
    assert (grey[:10] == 255).all() and (grey[10:] == 0).all()
