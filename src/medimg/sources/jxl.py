"""JPEG XL images (bare codestream or ISO-BMFF container) through imagecodecs' libjxl.

libjxl decodes a whole image at once, so the size is read here first from the codestream's SizeHeader
(a few bits after the signature) and `max_pixels` is checked before any pixel is decoded. The first frame
of an animation only (libjxl would decode every frame at once, and the frame count is not known before;
a small file can hold thousands); orientation applied by libjxl; 16-bit and float images are
scaled to 8 bits (grey 16-bit stays 16-bit, as for PNG).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
from PIL import Image

from .base import Blob, Context, ImageItem, Item, ItemError, SourcePlugin
from .registry import register

CODESTREAM = b"\xff\x0a"
CONTAINER = b"\x00\x00\x00\x0cJXL \x0d\x0a\x87\x0a"
_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}


def accepts(head: bytes, blob: Blob) -> bool:
    return head.startswith(CODESTREAM) or head.startswith(CONTAINER)


def codestream_start(data: bytes) -> bytes | None:
    """The first bytes of the codestream: the data itself, or from the container's jxlc/first jxlp box."""
    if data.startswith(CODESTREAM):
        return data[:64]
    pos = 0
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        head = 8
        if size == 1:  # 64-bit size follows
            size, head = int.from_bytes(data[pos + 8:pos + 16], "big"), 16
        if kind == b"jxlc":
            return data[pos + head:pos + head + 64]
        if kind == b"jxlp":
            return data[pos + head + 4:pos + head + 68]  # after the box's 4-byte index
        if size == 0 or size < head:
            return None
        pos += size
    return None


def size_of(code: bytes) -> tuple[int, int] | None:
    """(width, height) from a codestream's SizeHeader, or None when it is not one."""
    if not code.startswith(CODESTREAM):
        return None
    try:
        return _size(_Bits(code[2:]))
    except IndexError:
        return None


def _size(bits: "_Bits") -> tuple[int, int]:
    small = bits.read(1)
    height = (bits.read(5) + 1) * 8 if small else _u32(bits) + 1
    ratio = bits.read(3)
    if ratio == 0:
        width = (bits.read(5) + 1) * 8 if small else _u32(bits) + 1
    else:
        num, den = _RATIOS[ratio]
        width = height * num // den
    return width, height


def bits_per_sample(code: bytes) -> int | None:
    """The integer bits per sample the ImageMetadata after the SizeHeader gives (8 by default), None for float
    samples or a header cut short. imagecodecs hands a 10- or 12-bit image over as uint16 holding 0..1023 or
    0..4095, a 1-7 bit one as uint8 below 2**bits."""
    meta = metadata(code)
    return None if meta is None or meta[1] else meta[0]


def metadata(code: bytes) -> tuple[int, bool, bool, int] | None:
    """(bits per sample, float samples, animated, extra channels) from the ImageMetadata after the SizeHeader,
    or None for a header cut short."""
    bits = _Bits(code[2:])
    animated = False
    try:
        _size(bits)
        if bits.read(1):  # all_default
            return 8, False, False, 0
        if bits.read(1):  # extra_fields
            bits.read(3)  # orientation
            if bits.read(1):  # intrinsic size
                _size(bits)
            if bits.read(1):  # preview
                div8 = bits.read(1)
                for along in range(2):
                    if along and bits.read(3):  # a ratio: no width
                        break
                    if div8:
                        bits.read((0, 0, 5, 9)[bits.read(2)])
                    else:
                        bits.read((6, 8, 10, 12)[bits.read(2)])
            animated = bool(bits.read(1))
            if animated:  # ticks per second, loops, timecodes
                bits.read((0, 0, 10, 30)[bits.read(2)])
                bits.read((0, 0, 8, 10)[bits.read(2)])
                bits.read((0, 3, 16, 32)[bits.read(2)])
                bits.read(1)
        floating = bool(bits.read(1))
        if floating:
            choice = bits.read(2)
            depth = (32, 16, 24)[choice] if choice < 3 else bits.read(6) + 1
            bits.read(4)  # exponent bits
        else:
            choice = bits.read(2)
            depth = (8, 10, 12)[choice] if choice < 3 else bits.read(6) + 1
        bits.read(1)  # modular_16_bit_buffers
        choice = bits.read(2)
        extra = (0, 1, 2, 1)[choice] + bits.read((0, 0, 4, 12)[choice])
        return depth, floating, animated, extra
    except IndexError:
        return None


class _Bits:
    """Bits read least significant first, as JPEG XL packs them."""

    def __init__(self, data: bytes):
        self.value, self.pos = int.from_bytes(data, "little"), 0
        self.length = 8 * len(data)

    def read(self, n: int) -> int:
        if self.pos + n > self.length:
            raise IndexError("header cut short")
        v = (self.value >> self.pos) & ((1 << n) - 1)
        self.pos += n
        return v


def _u32(bits: _Bits) -> int:
    return bits.read((9, 13, 18, 30)[bits.read(2)])


def open_jxl(blob: Blob, ctx: Context) -> Iterator[Item]:
    origin, limits = blob.origin, ctx.limits
    code = codestream_start(blob.data)
    size = size_of(code) if code else None
    if size is None:
        yield ItemError(origin, "", "corrupt or truncated JPEG XL image: no size header")
        return
    w, h = size
    if w * h > limits.max_pixels:
        yield ItemError(origin, "", f"image is {w}×{h} = {w * h:,} pixels, over the max_pixels cap of "
                                    f"{limits.max_pixels:,}; not decoded")
        return
    try:
        import imagecodecs

        arr = imagecodecs.jpegxl_decode(blob.data, index=0)  # the first frame only: never a whole animation
    except ImportError:
        yield ItemError(origin, "", "JPEG XL needs the imagecodecs package, which is not installed")
        return
    except Exception as exc:
        yield ItemError(origin, "", f"corrupt or truncated JPEG XL image: {exc}")
        return
    if arr.ndim == 4:  # a decoder that gave every frame anyway
        arr = arr[0]
    depth = bits_per_sample(code)
    yield ImageItem(origin, "", _image(arr, depth), "JPEG XL", {"dtype": str(arr.dtype), "bits": depth})


def _image(a: np.ndarray, depth: int | None = None) -> Image.Image:
    """The decoded samples as a PIL image, integer ones of `depth` bits scaled to the full range of their type."""
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    full = 8 * a.itemsize if a.dtype.kind == "u" else None
    if full and depth and depth < full:  # 0..2**depth-1 in a wider type: stretched as a viewer shows it, in place
        top = (1 << depth) - 1
        lut = (np.arange(top + 1, dtype=np.uint32) * ((1 << full) - 1) // top).astype(a.dtype)
        a = a if a.flags.writeable else a.copy()
        np.minimum(a, top, out=a)
        rows = max(1, (1 << 20) // max(1, a[0].size))  # a strip at a time: the lookup's indices are 8 bytes each
        for top_row in range(0, len(a), rows):
            a[top_row:top_row + rows] = lut[a[top_row:top_row + rows]]
    if a.ndim == 2 and a.dtype == np.uint16:
        return Image.fromarray(a)  # I;16
    if a.dtype != np.uint8:
        top = 65535.0 if a.dtype == np.uint16 else 1.0
        a = (np.clip(np.nan_to_num(a.astype(np.float32) / top), 0, 1) * 255).astype(np.uint8)
    if a.ndim == 2:
        return Image.fromarray(a, "L")
    return Image.fromarray(a, {2: "LA", 3: "RGB", 4: "RGBA"}[a.shape[-1]])


register(SourcePlugin("jxl", accepts, open_jxl, priority=41))
