"""Pixel fidelity (review s33): the pixels a source gives are the ones a reader or a browser shows."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pymupdf
import pytest
from PIL import Image, ImageCms, ImageDraw

import builders as b
from medimg.model.preprocess import to_rgb
from medimg.sources import files, pdf
from medimg.sources.base import Blob, Context, ImageItem, Limits

W, H = 96, 64


def _photo() -> Image.Image:
    """Gradients with two blocks: every channel spans its range, and neither a flip nor a turn leaves it alone."""
    x, y = np.linspace(0, 1, W)[None, :], np.linspace(0, 1, H)[:, None]
    arr = np.stack([255 * x.repeat(H, 0), 255 * y.repeat(W, 1), 255 * (1 - x) * (1 - y)], -1)
    img = Image.fromarray(arr.astype(np.uint8), "RGB")
    ImageDraw.Draw(img).rectangle([4, 4, 30, 14], fill=(255, 255, 0))
    ImageDraw.Draw(img).rectangle([W - 20, H - 20, W - 6, H - 6], fill=(0, 0, 0))
    return img


def _one_image_page(image_dict: str, data: bytes, extra: list) -> bytes:
    """A page of the image's own size in points, drawing image object 5 over all of it (more objects from 6)."""
    return b.pdf_objects([
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {W} {H}] /Resources << /XObject << /Im1 5 0 R >> >> "
        "/Contents 4 0 R >>",
        b.pdf_stream("", f"q {W} 0 0 {H} 0 0 cm /Im1 Do Q".encode()),
        b.pdf_stream(f"/Type /XObject /Subtype /Image /Width {W} /Height {H} {image_dict}", data),
        *extra,
    ])


def _page_pixels(data: bytes) -> np.ndarray:
    """The page as MuPDF renders it at 72 dpi: one pixel per image pixel."""
    doc = pymupdf.open(stream=data, filetype="pdf")
    pix = doc[0].get_pixmap(dpi=72, alpha=False)
    return np.asarray(Image.frombytes("RGB", (pix.width, pix.height), pix.samples), dtype=float)


@pytest.mark.parametrize("mode, profile", [
    ("RGB", b"not a profile" * 20),                    # garbage
    ("RGB", b.wide_gamut_icc()[:200]),                  # a real profile cut short
    ("L", b"x" * 300),
    ("CMYK", b"not a profile" * 20),
])
def test_a_pdf_image_whose_icc_profile_is_broken_comes_out_as_the_page_shows_it(mode, profile):
    """MuPDF ignores a profile LittleCMS cannot read and shows the image in the device colours of its /N; its
    warnings about the profile are no damage to the image, so the image is not lost as an error."""
    n = len(mode)
    data = _one_image_page("/ColorSpace [/ICCBased 6 0 R] /BitsPerComponent 8", _photo().convert(mode).tobytes(),
                           [b.pdf_stream(f"/N {n}", profile)])
    items = list(pdf.open_pdf(Blob("t.pdf", data), Context(Limits())))
    assert [type(i) for i in items] == [ImageItem], [getattr(i, "error", "") for i in items]
    ours = np.asarray(to_rgb(items[0].image), dtype=float)
    assert np.abs(ours - _page_pixels(data)).max() <= 1


def _png_with(png: bytes, *chunks: tuple[bytes, bytes]) -> bytes:
    """`png` with these chunks put before its first IDAT."""
    at = png.index(b"IDAT") - 4
    added = b"".join(struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d)) for k, d in chunks)
    return png[:at] + added + png[at:]


def _srgb_encode(linear: np.ndarray) -> np.ndarray:
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)


def _item(data: bytes) -> ImageItem:
    (item,) = files.open_image(Blob("x.png", data), Context(Limits()))
    assert isinstance(item, ImageItem), item
    return item


@pytest.mark.parametrize("gamma", [1.0, 0.55556, 0.3])
@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P"])
def test_a_pngs_gama_chunk_is_applied_as_browsers_apply_it(gamma, mode):
    """gAMA says how the stored numbers were encoded: Chromium decodes them with it and shows them in sRGB (a
    linear PNG, gamma 1.0, looks much lighter than its numbers read as sRGB). Alpha stays as it is."""
    photo = _photo()
    if mode == "RGBA":
        photo.putalpha(Image.fromarray(np.tile(np.linspace(0, 255, W), (H, 1)).astype(np.uint8)))
    stored = photo.quantize(64) if mode == "P" else photo.convert(mode)
    data = _png_with(b.encode(stored, "PNG"), (b"gAMA", struct.pack(">I", round(gamma * 100000))))
    values = np.asarray(stored.convert("RGBA" if mode == "RGBA" else "RGB"), dtype=float)
    shown = values.copy()
    shown[..., :3] = np.round(255 * _srgb_encode(np.power(values[..., :3] / 255, 1 / gamma)))
    if mode == "RGBA":  # alpha after the colours, as the page blends them: on white
        alpha = values[..., 3:] / 255
        shown = shown[..., :3] * alpha + 255 * (1 - alpha)
    ours = np.asarray(to_rgb(_item(data).image), dtype=float)
    assert np.abs(ours - shown).max() <= 1


@pytest.mark.parametrize("also", [(b"sRGB", b"\0"), (b"iCCP", b"srgb\0\0" + zlib.compress(
    ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())), None])
def test_a_gama_chunk_near_srgbs_or_beside_an_srgb_or_iccp_chunk_changes_nothing(also):
    """An sRGB or iCCP chunk overrides gAMA; a gamma within 5 % of 1/2.2 is sRGB's (libpng's and Chromium's
    reading); a colour key still names the stored values."""
    photo = _photo()
    gamma = 1.0 if also else 0.46
    data = _png_with(b.encode(photo, "PNG", transparency=(0, 0, 0)), *[c for c in (also,) if c],
                     (b"gAMA", struct.pack(">I", round(gamma * 100000))))
    ours = np.asarray(to_rgb(_item(data).image), dtype=float)
    assert ours[H - 15, W - 15].tolist() == [255, 255, 255]  # the black block is the key: transparent
    ours[H - 20:H - 5, W - 20:W - 5] = 0
    assert np.abs(ours - np.asarray(photo, dtype=float)).max() <= 1


def test_a_colour_keyed_png_with_a_gama_chunk_keeps_its_key():
    photo = _photo()
    data = _png_with(b.encode(photo, "PNG", transparency=(255, 255, 0)), (b"gAMA", struct.pack(">I", 100000)))
    ours = np.asarray(to_rgb(_item(data).image), dtype=float)
    assert (ours[5:14, 5:30] == 255).all()  # the yellow block, keyed
    assert np.abs(ours[H - 15, W - 15]).max() == 0  # black stays black
    assert ours[40, 2, 0] > 8  # a dark red is lighter than its number


def _cmyk_profile(tmp_path) -> bytes:
    """MuPDF's own CMYK profile (a LUT-based printer profile, as Photoshop embeds in CMYK JPEGs), taken from the
    PSD MuPDF writes."""
    path = tmp_path / "cmyk.psd"
    pymupdf.Pixmap(pymupdf.csCMYK, pymupdf.IRect(0, 0, 2, 2), False).save(str(path))
    psd = path.read_bytes()
    at = psd.index(b"8BIM\x04\x0f") + 6  # the ICC profile's image resource: empty name, then its length
    at += 2 if psd[at] == 0 else 1 + psd[at] + (psd[at] + 1) % 2
    (size,) = struct.unpack(">I", psd[at:at + 4])
    return psd[at + 4:at + 4 + size]


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_a_cmyk_image_with_a_printer_profile_is_converted_relative_colorimetric_as_chromium_does(tmp_path, fmt):
    """A LUT-based profile has other tables for each intent; Chromium converts by the relative colorimetric ones
    (measured: within 1 level on average, against 4.4 by the perceptual ones)."""
    profile = _cmyk_profile(tmp_path)
    data = b.encode(_photo().convert("CMYK"), fmt, icc_profile=profile)
    item = _item(data)
    stored = Image.open(io.BytesIO(data))  # the numbers a JPEG holds are not quite the ones it was given
    cmyk = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    srgb = ImageCms.createProfile("sRGB")

    def converted(intent) -> np.ndarray:
        transform = ImageCms.buildTransform(cmyk, srgb, "CMYK", "RGB", renderingIntent=intent)
        return np.asarray(ImageCms.applyTransform(stored, transform), dtype=float)
    ours = np.asarray(item.image, dtype=float)
    assert np.abs(ours - converted(ImageCms.Intent.RELATIVE_COLORIMETRIC)).max() <= 1
    assert np.abs(ours - converted(ImageCms.Intent.PERCEPTUAL)).mean() > 2
