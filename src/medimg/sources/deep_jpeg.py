"""JPEGs of more than 8 bits a sample (12-bit extended, 9-16 bit lossless), which Pillow refuses ("cannot handle
12-bit layers"), decoded by libjpeg-turbo through imagecodecs. They come from DICOM pixel data saved as `.jpg`
(CT and MR are often lossless 12 or 16 bits) and from some endoscopy and microscopy exports.

Grey stays 16-bit (I;16, stretched by the model as a 16-bit PNG is); colour is shown by its bit depth in 8 bits.
The size is checked against `max_pixels` from the frame header before decoding, EXIF orientation is applied, and a
file cut short is an error: libjpeg fills what is missing with grey without a word.
"""

from __future__ import annotations

import zlib

import numpy as np
from PIL import Image, ImageOps

from .base import ImageItem, Item, ItemError, Limits, reason


def frame_header(data: bytes) -> tuple[int, int, int, int, int] | None:
    """(SOF marker, bits a sample, height, width, components) of a JPEG's frame header, or None when the markers
    before it cannot be walked."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # fill, a stray RST, TEM: no length
            pos += 1 if marker == 0xFF else 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # the frame header (not DHT, JPG, DAC)
            if pos + 10 > len(data):
                return None
            h, w = int.from_bytes(data[pos + 5:pos + 7], "big"), int.from_bytes(data[pos + 7:pos + 9], "big")
            return marker, data[pos + 4], h, w, data[pos + 9]
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return None


def is_deep(data: bytes) -> bool:
    """Whether a JPEG's samples have more than 8 bits (Pillow reads 8 only)."""
    header = frame_header(data)
    return header is not None and header[1] > 8


def read(data: bytes, origin: str, limits: Limits) -> Item:
    """The picture of a JPEG of more than 8 bits a sample, or an error saying why not. A file too short for its
    pixels (Huffman-coded sequential JPEG takes at least 2 bits an 8×8 block, lossless at least 1 bit a sample; a
    margin of 8 and 2 times over that) is one cut short, not decoded."""
    from .files import arithmetic_coded, last_scan_end, scan_pad

    marker, bits, h, w, _ = frame_header(data)
    if w * h > limits.max_pixels:
        return ItemError(origin, "", f"image is {w}×{h} = {w * h:,} pixels, over the max_pixels cap of "
                                     f"{limits.max_pixels:,}; not decoded")
    least = {0xC1: w * h // 2048, 0xC3: w * h // 16}.get(marker, 0)
    if len(data) < least:  # libjpeg would fill it all with grey, twice, in seconds and a frame's memory
        return ItemError(origin, "", f"corrupt or truncated {bits}-bit JPEG image: {len(data):,} bytes cannot hold "
                                     f"its {w}×{h} pixels (at least {least:,}); not decoded")
    try:
        import imagecodecs

        a = imagecodecs.jpeg8_decode(data)
        stop, restarts = last_scan_end(data)
        # bytes put where the decoder stops reading change the picture only when data was missing (files.py);
        # decoded again over the first picture, kept as its CRC: one picture's memory at a time, not two
        whole = arithmetic_coded(data)
        if not whole:
            digest = zlib.crc32(a)
            imagecodecs.jpeg8_decode(data[:stop] + scan_pad(restarts) + data[stop:], out=a)
            whole = zlib.crc32(a) == digest
    except ImportError:
        return ItemError(origin, "", f"a {bits}-bit JPEG needs the imagecodecs package, which is not installed")
    except Exception as exc:
        return ItemError(origin, "", f"corrupt or truncated {bits}-bit JPEG image: "
                                     f"{reason(exc, 'libjpeg cannot decode it')}")
    if not whole:
        return ItemError(origin, "", f"corrupt or truncated {bits}-bit JPEG image: its data stops before the "
                                     "picture ends; the rest would be grey")
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        image = Image.fromarray(a.astype(np.uint16, copy=False))  # I;16: stretched by the model, as 16-bit grey PNGs are
    else:
        np.right_shift(a, bits - 8, out=a)  # by its bit depth, in place
        a = a.astype(np.uint8)[..., :3]  # the 16-bit picture let go before Pillow's copy is made
        image = Image.fromarray(a, "RGB")
    exif = _exif(data)
    if exif:
        image.info["exif"] = exif
        image = ImageOps.exif_transpose(image)
    return ImageItem(origin, "", image, "JPEG", {"mode": image.mode, "frames": 1, "bits": bits})


def _exif(data: bytes) -> bytes | None:
    """The Exif block of the file's first APP1 segment (as Pillow keeps it in `info`), or None."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF and data[pos + 1] not in (0xDA, 0xD9):
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if data[pos + 1] == 0xE1 and data[pos + 4:pos + 10] == b"Exif\0\0":
            return data[pos + 4:pos + 2 + length]
        pos += 2 + length
    return None
