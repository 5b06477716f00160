"""The bitmaps a Windows metafile (EMF, WMF) holds.

The drawing itself is not drawn. What is read of it are the bitmaps its records paint, as Word, RTF writers and
report generators keep a pasted scan or photo: in EMF, EMR_STRETCHDIBITS, EMR_SETDIBITSTODEVICE, EMR_BITBLT,
EMR_STRETCHBLT, EMR_ALPHABLEND and EMR_TRANSPARENTBLT records, and the Image objects of EMF+ records (in comment
records; when there are any, the GDI records, a copy of the drawing for older readers, are left out); in WMF,
META_STRETCHDIB, META_DIBSTRETCHBLT, META_DIBBITBLT and META_SETDIBTODEV records. Each holds a device-independent
bitmap (a DIB: its header and colours, then its bits; BI_JPEG and BI_PNG ones a whole JPEG or PNG), which is read
as the BMP it is with a file header put before it; an EMF+ bitmap is a PNG, JPEG, … stream, or 24- or 32-bit pixels.
Windows often paints one picture as strips or tiles: bitmaps whose destination rectangles abut and together fill a
rectangle are joined into one picture (at the resolution of the sharpest piece, under `max_pixels`; over it, each
piece is read alone). Each picture is at `emf, bitmap #N` (`wmf, …`), one with a side under `min_side` a
decoration note, as in an SVG; at most `max_images_per_input` bitmaps are looked at, MAX_RECORDS records read, and
a record whose size is wrong (0, or past the end) ends the reading. A metafile without bitmaps is a note.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field, replace
from typing import Iterator

from PIL import Image

from .base import Blob, Context, ImageItem, Item, ItemError, more

MAX_RECORDS = 1_000_000
NOTE = "{} is not drawn (a Windows metafile: vector drawing skipped)"
# EMF blit records: where (xDest, yDest, cxDest, cyDest), (offBmiSrc … cbBitsSrc) and UsageSrc are, where
# (xSrc, ySrc) and (cxSrc, cySrc) are or None, and their least size
_EMF_BLTS = {76: (24, 84, 80, None, 100), 77: (24, 84, 80, (44, 100), 108), 114: (24, 84, 80, (44, 100), 108),
             116: (24, 84, 80, (44, 100), 108)}
_STRETCHDIBITS, _SETDIBITSTODEVICE, _COMMENT, _EOF = 81, 80, 70, 14
_SETMAPMODE, _SETWINDOWEXT, _SETVIEWPORTEXT = 17, 9, 11
_PLUS_OBJECT, _PLUS_IMAGE = 0x4008, 5
# EMF+ pixel formats read as raw pixels: (Pillow mode, raw mode, bytes a pixel)
_PLUS_PIXELS = {0x0026200A: ("RGBA", "BGRA", 4), 0x000E200B: ("RGBA", "BGRa", 4), 0x00022009: ("RGB", "BGRX", 4),
                0x00021808: ("RGB", "BGR", 3)}
# WMF record functions: offset of the DIB, of (yDest, xDest), of (destHeight, destWidth) or None (the bitmap's),
# of (srcHeight, srcWidth, ySrc, xSrc) or None
_WMF_BLTS = {0x0F43: (28, 24, 20, 12), 0x0B41: (26, 22, 18, 10), 0x0940: (22, 18, 14, None),
             0x0D33: (24, 20, 16, None)}
_DIB_HEADERS = (12, 40, 52, 56, 64, 108, 124)
_READ = ["BMP", "PNG", "JPEG", "GIF", "TIFF", "WEBP"]


@dataclass
class Piece:
    """One bitmap a record paints: its picture (a BMP, PNG, JPEG, … file, or pixels), where it goes and which part
    of the bitmap is shown."""
    data: bytes | None
    pixels: Image.Image | None = None
    rect: tuple[int, int, int, int] | None = None  # destination, logical units: x0, y0, x1, y1 (x0 < x1, y0 < y1)
    flip: tuple[bool, bool] = (False, False)  # mirrored (left-right, top-bottom) on the device
    source: tuple[int, int, int, int] | None = None  # xSrc, ySrc, cxSrc, cySrc in the bitmap's pixels
    bottom_up: bool = True
    ydir: int = 1  # -1 where logical y grows upwards (MM_LOMETRIC, …): strips are stacked the other way
    error: str = ""


@dataclass
class Scan:
    pieces: list[Piece]
    total: int = 0  # bitmaps found, kept or not
    problem: str = ""  # why the records were not read to their end
    plus: bool = False  # read from EMF+ objects
    seen: set = field(default_factory=set)  # what was kept already: a bitmap painted twice is one picture

    def add(self, piece: Piece, key, keep: int) -> None:
        if key in self.seen:
            return
        self.seen.add(key)
        self.total += 1
        if len(self.pieces) < keep:
            self.pieces.append(piece)


def has_bitmaps(data: bytes) -> bool:
    """Whether a metafile paints any bitmap (for containers that otherwise count it as a drawing)."""
    kind = metafile_kind(data)
    return bool(kind and scan(data, kind, 1).total)


def metafile_kind(data: bytes) -> str | None:
    from .files import image_kind

    kind = image_kind(data[:64])
    return kind if kind in ("EMF", "WMF") else None


def scan(data: bytes, kind: str, keep: int) -> Scan:
    """The first `keep` bitmaps a metafile paints, in record order."""
    return _emf(data, keep) if kind == "EMF" else _wmf(data, keep)


# ---------------------------------------------------------------- DIBs

def dib_file(bmi: bytes, bits: bytes) -> tuple[bytes | None, bool, str]:
    """A DIB's header and colours, and its bits, as a file Pillow reads (a BMP with its file header; a BI_JPEG or
    BI_PNG one's own stream), whether its rows go bottom-up, and why not when it cannot be."""
    size = int.from_bytes(bmi[:4], "little") if len(bmi) >= 4 else 0
    if size not in _DIB_HEADERS or len(bmi) < size:
        return None, True, "its bitmap header is damaged"
    if size == 12:
        return b"BM" + (14 + len(bmi) + len(bits)).to_bytes(4, "little") + bytes(4) + \
            (14 + len(bmi)).to_bytes(4, "little") + bmi + bits, True, ""
    height = int.from_bytes(bmi[8:12], "little", signed=True)
    compression = int.from_bytes(bmi[16:20], "little")
    if compression in (4, 5):  # BI_JPEG, BI_PNG: the bits are the whole file
        return bits, True, ""
    return b"BM" + (14 + len(bmi) + len(bits)).to_bytes(4, "little") + bytes(4) + \
        (14 + len(bmi)).to_bytes(4, "little") + bmi + bits, height > 0, ""


def split_dib(dib: bytes) -> tuple[bytes, bytes]:
    """A packed DIB (header, masks, colours, bits in one run, as WMF and Office keep it) split into its header and
    colours, and its bits."""
    size = int.from_bytes(dib[:4], "little") if len(dib) >= 4 else 0
    if size == 12:
        bits = int.from_bytes(dib[10:12], "little")
        return dib[:12 + 3 * (1 << bits if bits <= 8 else 0)], dib[12 + 3 * (1 << bits if bits <= 8 else 0):]
    if size < 40:
        return dib, b""
    bits = int.from_bytes(dib[14:16], "little")
    compression = int.from_bytes(dib[16:20], "little")
    colours = int.from_bytes(dib[32:36], "little")
    masks = {3: 12, 6: 16}.get(compression, 0) if size == 40 else 0
    palette = 4 * min(colours or (1 << bits if bits <= 8 else 0), 1 << 16)
    end = size + masks + palette
    return dib[:end], dib[end:]


def _piece(bmi: bytes, bits: bytes, rect: tuple[int, int, int, int], source, state: tuple[int, int],
           start_scan: tuple[int, int] | None = None) -> Piece:
    """A piece from a DIB, its destination (x, y, width, height, signed) and its source rectangle."""
    x, y, w, h = rect
    xdir, ydir = state
    flip = (w * xdir < 0, h * ydir < 0)
    box = (min(x, x + w), min(y, y + h), max(x, x + w), max(y, y + h))
    if start_scan is not None and len(bmi) >= 12 and int.from_bytes(bmi[:4], "little") >= 40:
        # SetDIBitsToDevice: the bits hold `scans` rows from `first`; the header says the whole bitmap's height
        first, scans = start_scan
        height = int.from_bytes(bmi[8:12], "little", signed=True)
        if 0 < scans < abs(height):
            bmi = bmi[:8] + (scans if height > 0 else -scans).to_bytes(4, "little", signed=True) + bmi[12:]
            source = None
    data, bottom_up, why = dib_file(bmi, bits)
    return Piece(data, rect=box, flip=flip, source=source, bottom_up=bottom_up, ydir=ydir, error=why)


# ---------------------------------------------------------------- EMF

def _emf(data: bytes, keep: int) -> Scan:
    out, plus = Scan([]), Scan([])
    maps = _Mapping()
    objects: dict[int, bytearray] = {}
    for rtype, pos, size in _records(data, 0, out, wmf=False):
        end = pos + size
        if rtype in (_STRETCHDIBITS, _SETDIBITSTODEVICE) or rtype in _EMF_BLTS:
            got = _emf_blt(data, pos, end, rtype, maps.state())
            if got is not None:
                out.add(got, (hash(got.data), got.rect), keep)
        elif rtype == _COMMENT and size >= 16 and data[pos + 12:pos + 16] == b"EMF+":
            length = int.from_bytes(data[pos + 8:pos + 12], "little")
            _emf_plus(data, pos + 16, min(end, pos + 12 + length), objects, plus, keep)
        else:
            maps.emf(rtype, data, pos, size)
    if plus.total:  # the EMF+ objects are the pictures; the GDI records draw them again for older readers
        plus.problem = out.problem
        return plus
    return out


def _emf_blt(data: bytes, pos: int, end: int, rtype: int, state) -> Piece | None:
    i32 = lambda at: int.from_bytes(data[pos + at:pos + at + 4], "little", signed=True)  # noqa: E731
    need = {_STRETCHDIBITS: 80, _SETDIBITSTODEVICE: 76}.get(rtype) or _EMF_BLTS[rtype][4]
    if end - pos < need:
        return None
    start_scan = None
    if rtype in (_STRETCHDIBITS, _SETDIBITSTODEVICE):
        at_bmi, at_usage = 48, 64
        xs, ys, cxs, cys = (i32(a) for a in (32, 36, 40, 44))
        if rtype == _STRETCHDIBITS:
            rect = (i32(24), i32(28), i32(72), i32(76))
        else:
            rect = (i32(24), i32(28), cxs, cys)
            start_scan = (i32(68), i32(72))
        source = (xs, ys, cxs, cys)
    else:
        at_rect, at_bmi, at_usage, at_src, _ = _EMF_BLTS[rtype]
        rect = tuple(i32(at_rect + 4 * k) for k in range(4))
        source = None if at_src is None else (i32(at_src[0]), i32(at_src[0] + 4), i32(at_src[1]), i32(at_src[1] + 4))
    off_bmi, cb_bmi, off_bits, cb_bits = (int.from_bytes(data[pos + at_bmi + 4 * k:pos + at_bmi + 4 * k + 4], "little")
                                          for k in range(4))
    if cb_bmi == 0:  # a pattern or a fill, no bitmap
        return None
    if off_bmi + cb_bmi > end - pos or off_bits + cb_bits > end - pos:
        return Piece(None, error="its bitmap lies past the end of its record (damaged)")
    if int.from_bytes(data[pos + at_usage:pos + at_usage + 4], "little") == 1:
        return Piece(None, error="its colours are indices into the drawing's palette (DIB_PAL_COLORS); not read")
    bmi, bits = data[pos + off_bmi:pos + off_bmi + cb_bmi], data[pos + off_bits:pos + off_bits + cb_bits]
    return _piece(bmi, bits, rect, source, state, start_scan)


def _emf_plus(data: bytes, pos: int, end: int, objects: dict[int, bytearray], out: Scan, keep: int) -> None:
    """The EMF+ records of one comment: its Image objects (joined from their continued parts) into `out`."""
    while pos + 12 <= end:
        rtype, flags, size, length = struct.unpack_from("<HHII", data, pos)
        if size < 12 or pos + size > end:
            break
        body = data[pos + 12:pos + 12 + min(length, size - 12)]
        if rtype == _PLUS_OBJECT and (flags >> 8) & 0x7F == _PLUS_IMAGE:
            ident = flags & 0xFF
            if flags & 0x8000:  # continued: its total size, then this part
                total = int.from_bytes(body[:4], "little")
                part = objects.setdefault(ident, bytearray())
                if len(part) + len(body) - 4 <= max(total, 0):
                    part += body[4:]
                if len(part) >= total:
                    _plus_image(bytes(objects.pop(ident)), out, keep)
            else:
                objects.pop(ident, None)
                _plus_image(body, out, keep)
        pos += size


def _plus_image(body: bytes, out: Scan, keep: int) -> None:
    if len(body) < 8 or int.from_bytes(body[4:8], "little") != 1:  # 2: a metafile within, not opened in turn
        return
    out.plus = True
    key = hash(body)
    if key in out.seen or len(out.pieces) >= keep:  # counted, not decoded
        out.add(Piece(None), key, keep)
    elif len(body) < 28:
        out.add(Piece(None, error="its EMF+ bitmap is cut short (damaged)"), key, keep)
    elif (fields := struct.unpack_from("<iiiII", body, 8))[4] == 1:  # a PNG, JPEG, GIF, TIFF, … stream
        out.add(Piece(body[28:]), key, keep)
    else:
        width, height, stride, fmt, _ = fields
        mode = _PLUS_PIXELS.get(fmt)
        if mode is None:
            out.add(Piece(None, error=f"its EMF+ bitmap's pixel format 0x{fmt:08X} is not read"), key, keep)
        elif width <= 0 or height <= 0 or stride < width * mode[2] or len(body) < 28 + stride * height:
            out.add(Piece(None, error=f"its EMF+ bitmap of {width}×{height} pixels is damaged"), key, keep)
        else:
            out.add(Piece(None, pixels=Image.frombuffer(mode[0], (width, height), body[28:28 + stride * height],
                                                        "raw", mode[1], stride, 1)), key, keep)


class _Mapping:
    """Which way logical x and y grow on the device, as the mapping mode and extents records set it."""

    def __init__(self):
        self.mode, self.window, self.viewport = 1, (1, 1), (1, 1)

    def state(self) -> tuple[int, int]:
        if 2 <= self.mode <= 6:  # MM_LOMETRIC … MM_TWIPS: y grows upwards
            return 1, -1
        if self.mode in (7, 8):
            sign = lambda v: -1 if v < 0 else 1  # noqa: E731
            return (sign(self.window[0]) * sign(self.viewport[0]), sign(self.window[1]) * sign(self.viewport[1]))
        return 1, 1

    def emf(self, rtype: int, data: bytes, pos: int, size: int) -> None:
        if rtype == _SETMAPMODE and size >= 12:
            self.mode = int.from_bytes(data[pos + 8:pos + 12], "little")
        elif rtype in (_SETWINDOWEXT, _SETVIEWPORTEXT) and size >= 16:
            ext = struct.unpack_from("<ii", data, pos + 8)
            if rtype == _SETWINDOWEXT:
                self.window = ext
            else:
                self.viewport = ext

    def wmf(self, func: int, data: bytes, pos: int, size: int) -> None:
        if func == 0x0103 and size >= 8:
            self.mode = int.from_bytes(data[pos + 6:pos + 8], "little")
        elif func in (0x020C, 0x020E) and size >= 10:
            y, x = struct.unpack_from("<hh", data, pos + 6)
            if func == 0x020C:
                self.window = (x, y)
            else:
                self.viewport = (x, y)


# ---------------------------------------------------------------- WMF

def _wmf(data: bytes, keep: int) -> Scan:
    out, maps = Scan([]), _Mapping()
    pos = 22 if data[:4] == b"\xd7\xcd\xc6\x9a" else 0  # the placeable header
    if pos + 18 > len(data):
        return out
    pos += 2 * max(9, int.from_bytes(data[pos + 2:pos + 4], "little"))
    for func, pos, size in _records(data, pos, out, wmf=True):
        if func in _WMF_BLTS and not (func in (0x0B41, 0x0940) and size // 2 == (func >> 8) + 3):
            got = _wmf_blt(data, pos, size, func, maps.state())
            if got is not None:
                out.add(got, (hash(got.data), got.rect), keep)
        else:
            maps.wmf(func, data, pos, size)
    return out


def _records(data: bytes, pos: int, out: Scan, wmf: bool) -> Iterator[tuple[int, int, int]]:
    """(type, start, size in bytes) of each record from `pos` to the end record (EMF's EMR_EOF, WMF's META_EOF);
    a record whose size is wrong (under its header, or past the end), or one past MAX_RECORDS, ends the walk with
    `out.problem` saying why. An EMF record starts with its type and size in bytes, a WMF one with its size in
    16-bit words and its function."""
    head, records = 6 if wmf else 8, 0
    while pos + head <= len(data):
        if wmf:
            words, rtype = struct.unpack_from("<IH", data, pos)
            size = 2 * words
        else:
            rtype, size = struct.unpack_from("<II", data, pos)
        if size < head or pos + size > len(data):
            out.problem = f"a record at byte {pos:,} says it is {size:,} bytes long (damaged)"
            return
        records += 1
        if records > MAX_RECORDS:
            out.problem = f"more than {MAX_RECORDS:,} records"
            return
        if rtype == (0 if wmf else _EOF):
            return
        yield rtype, pos, size
        pos += size


def _wmf_blt(data: bytes, pos: int, size: int, func: int, state) -> Piece | None:
    at_dib, at_dest, at_size, at_src = _WMF_BLTS[func]
    if size < at_dib + 40:
        return None
    i16 = lambda at: int.from_bytes(data[pos + at:pos + at + 2], "little", signed=True)  # noqa: E731
    usage = pos + (10 if func == 0x0F43 else 6)
    if func in (0x0F43, 0x0D33) and data[usage:usage + 2] == b"\x01\x00":
        return Piece(None, error="its colours are indices into the drawing's palette (DIB_PAL_COLORS); not read")
    bmi, bits = split_dib(data[pos + at_dib:pos + size])
    y, x = i16(at_dest), i16(at_dest + 2)
    h, w = i16(at_size), i16(at_size + 2)
    source = None if at_src is None else (i16(at_src + 6), i16(at_src + 4), i16(at_src + 2), i16(at_src))
    start_scan = (i16(10), i16(8)) if func == 0x0D33 else None
    return _piece(bmi, bits, (x, y, w, h), source, state, start_scan)


# ---------------------------------------------------------------- pieces joined into pictures

def groups(pieces: list[Piece]) -> list[list[Piece]]:
    """The pieces, those whose destinations abut and together fill a rectangle joined, in the order of each
    picture's first piece."""
    parent = list(range(len(pieces)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    placed = [i for i, p in enumerate(pieces)  # a destination of no width or height is no strip of a picture
              if p.rect is not None and p.data is not None and p.rect[0] < p.rect[2] and p.rect[1] < p.rect[3]]
    for a, i in enumerate(placed):
        for j in placed[a + 1:]:
            if pieces[i].ydir == pieces[j].ydir and _abut(pieces[i].rect, pieces[j].rect):
                parent[root(j)] = root(i)
    found: dict[int, list[Piece]] = {}
    for i, p in enumerate(pieces):
        found.setdefault(root(i), []).append(p)
    out = []
    for group in found.values():
        if len(group) == 1 or _fills(group):
            out.append(group)
        else:
            out.extend([p] for p in group)
    return out


def _abut(a, b, tol: int = 1) -> bool:
    """Whether two rectangles share an edge (within `tol` units) along a stretch of it."""
    side = (abs(a[2] - b[0]) <= tol or abs(b[2] - a[0]) <= tol) and min(a[3], b[3]) - max(a[1], b[1]) > tol
    top = (abs(a[3] - b[1]) <= tol or abs(b[3] - a[1]) <= tol) and min(a[2], b[2]) - max(a[0], b[0]) > tol
    return side or top


def _fills(group: list[Piece]) -> bool:
    box = _box(group)
    area = (box[2] - box[0]) * (box[3] - box[1])
    covered = sum((p.rect[2] - p.rect[0]) * (p.rect[3] - p.rect[1]) for p in group)
    return area > 0 and abs(covered - area) <= 0.02 * area


def _box(group: list[Piece]) -> tuple[int, int, int, int]:
    return (min(p.rect[0] for p in group), min(p.rect[1] for p in group), max(p.rect[2] for p in group),
            max(p.rect[3] for p in group))


# ---------------------------------------------------------------- reading

def open_metafile(blob: Blob, ctx: Context, kind: str) -> Iterator[Item]:
    """The bitmaps a metafile paints, each picture at `emf, bitmap #N`; else the metafile note."""
    origin, limits = blob.origin, ctx.limits
    cap = limits.max_images_per_input
    found = scan(blob.data, kind, cap)
    if not found.pieces:
        yield ItemError(origin, "", NOTE.format(kind), skipped=True)
        return
    label = "EMF+" if found.plus else kind
    for n, group in enumerate(groups(found.pieces), 1):
        where = f"{label.lower()}, bitmap #{n}"
        for item in _picture(group, blob, ctx, where, label):
            if isinstance(item, ImageItem) and min(item.width, item.height) < limits.min_side:
                item = ItemError(origin, item.locator, f"decoration: {item.width}x{item.height} is below min_side "
                                                f"{limits.min_side}", skipped=True)
            yield item
    if found.total > cap:
        yield ItemError(origin, "", f"{more(found.total - cap, 'bitmap')} not read (max_images_per_input = {cap})",
                        skipped=True)
    if found.problem:
        yield ItemError(origin, "", f"{kind} read in part: {found.problem}; the records after it are not read")


def _picture(group: list[Piece], blob: Blob, ctx: Context, where: str, label: str) -> Iterator[Item]:
    origin, limits = blob.origin, ctx.limits
    if len(group) == 1:
        yield _decoded(group[0], blob, ctx, where, label)
        return
    box = _box(group)
    sizes = [_size(p) for p in group]
    scales_x = [s[0] / (p.rect[2] - p.rect[0]) for s, p in zip(sizes, group)]
    scales_y = [s[1] / (p.rect[3] - p.rect[1]) for s, p in zip(sizes, group)]
    scale_x, scale_y = max(scales_x), max(scales_y)
    width, height = round((box[2] - box[0]) * scale_x), round((box[3] - box[1]) * scale_y)
    why = ""
    if min(scales_x + scales_y) <= 0 or max(scale_x / min(scales_x), scale_y / min(scales_y)) > 2:
        # not one picture's resolution (or a piece of no size)
        why = "are not of one resolution"
    elif not 0 < width * height <= limits.max_pixels:
        why = f"would join to {width}×{height} pixels, over the max_pixels cap of {limits.max_pixels:,}"
    if why:  # each piece alone, each under the cap
        yield ItemError(origin, where, f"{len(group)} bitmaps painted side by side {why}; read one by one",
                        skipped=True)
        for k, p in enumerate(group, 1):
            yield _decoded(p, blob, ctx, f"{where}, piece {k}", label)
        return
    canvas, fmt, errors = None, None, []
    for k, p in enumerate(group, 1):
        item = _decoded(p, blob, ctx, where, label)
        if isinstance(item, ItemError):
            errors.append(f"piece {k}: {item.error}")
            continue
        im = item.image
        if canvas is None:
            mode = "L" if im.mode in ("1", "L") else "RGBA" if "A" in im.mode or "transparency" in im.info else "RGB"
            canvas, fmt = Image.new(mode, (width, height), 255 if mode == "L" else (255,) * len(mode)), item.format
        elif canvas.mode == "L" and im.mode not in ("1", "L"):  # a grey piece first, a colour one after it
            canvas = canvas.convert("RGB")
        elif canvas.mode == "RGB" and ("A" in im.mode or "transparency" in im.info):
            canvas = canvas.convert("RGBA")
        left = round((p.rect[0] - box[0]) * scale_x)
        top = round((p.rect[1] - box[1] if p.ydir > 0 else box[3] - p.rect[3]) * scale_y)
        size = (max(1, round((p.rect[2] - p.rect[0]) * scale_x)), max(1, round((p.rect[3] - p.rect[1]) * scale_y)))
        im = im.convert(canvas.mode) if im.mode != canvas.mode else im  # a palette's transparency kept as alpha
        canvas.paste(im if im.size == size else im.resize(size, Image.Resampling.BILINEAR), (left, top))
    if canvas is None:
        yield ItemError(origin, where, "; ".join(errors))
        return
    if errors:
        yield ItemError(origin, where, f"{len(errors)} of its {len(group)} pieces not read ({'; '.join(errors)})")
    yield ImageItem(origin, where, canvas, fmt, {"pieces": len(group)})


def _size(p: Piece) -> tuple[int, int]:
    """A piece's size in pixels, as shown (its source rectangle when that is a part of it), from its header."""
    w, h = _header_size(p.data)
    if p.source and _inside(p.source, w, h):
        return abs(p.source[2]), abs(p.source[3])
    return w, h


def _header_size(data: bytes | None) -> tuple[int, int]:
    if not data:
        return 1, 1
    try:
        with Image.open(io.BytesIO(data), formats=_READ) as im:
            return im.size
    except Exception:
        return 1, 1


def _inside(src, w: int, h: int) -> bool:
    x, y, cx, cy = src
    return cx > 0 and cy > 0 and x >= 0 and y >= 0 and x + cx <= w and y + cy <= h and (cx, cy) != (w, h)


def _decoded(p: Piece, blob: Blob, ctx: Context, where: str, label: str) -> Item:
    """One piece decoded: cropped to the part its record shows, mirrored as painted."""
    from .files import image_kind, open_image

    origin = blob.origin
    if p.error:
        return ItemError(origin, where, f"bitmap not read: {p.error}")
    kind = image_kind(p.data[:4096]) if p.data is not None else "pixels"
    if kind in ("EMF", "WMF", "SVG"):  # not opened in turn
        return ItemError(origin, where, "skipped: a drawing within the drawing", skipped=True)
    if kind is None:  # was "corrupt or truncated None image"
        return ItemError(origin, where, f"bitmap not read: its {len(p.data):,} bytes are not a picture medimg reads "
                                        "(damaged or cut short)")
    if p.pixels is not None and p.pixels.width * p.pixels.height > ctx.limits.max_pixels:
        w, h = p.pixels.size
        return ItemError(origin, where, f"bitmap is {w}×{h} = {w * h:,} pixels, over the max_pixels cap of "
                                        f"{ctx.limits.max_pixels:,}; not decoded")
    if p.pixels is not None:
        item: Item = ImageItem(origin, where, p.pixels.convert("RGBA" if "A" in p.pixels.mode else "RGB"), "raw")
    else:
        items = open_image(Blob(origin=origin, data=p.data, depth=blob.depth), ctx)
        item = next(items, None) or ItemError(origin, where, "bitmap not read: no picture in it")
        items.close()
        if isinstance(item, ItemError):
            return replace(item, locator=where, error=f"bitmap not read: {item.error}", skipped=item.skipped)
    item.locator = where
    item.format = f"{label}/{item.format}"  # EMF/BMP, EMF+/PNG, WMF/BMP
    im = item.image
    if p.source and not item.full_size and _inside(p.source, *im.size):
        x, y, cx, cy = p.source
        top = im.height - y - cy if p.bottom_up else y
        im = im.crop((x, top, x + cx, top + cy))
    if p.flip[0]:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if p.flip[1]:
        im = im.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    if im is not item.image:
        item.image, item.full_size = im, None
    return item
