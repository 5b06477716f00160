"""Camera RAW files (DNG, CR2, CR3, NEF, ARW, ORF, RW2, RAF, PEF, …): the largest JPEG preview the camera embedded.

The sensor data itself needs LibRaw, which medimg does not use; but nearly every RAW file carries a JPEG the camera
made of the same shot, often full-size. It is looked for where each family keeps it: in a TIFF-like file (DNG, CR2,
NEF, ARW, ORF, PEF, RW2, …) as JPEGInterchangeFormat/Length, a JPEG-compressed strip (Compression 6 or 7, not CFA or
LinearRaw data) or a JPEG tag value (RW2's JpgFromRaw) in IFD0, its chain, SubIFDs, the EXIF IFD and the MakerNote
(Nikon's PreviewIFD, Olympus's CameraSettings, Pentax's preview tags); in a CR3 (ISO BMFF) in its PRVW and THMB boxes
and its tracks' first samples; in a RAF at the offset its header gives. Each candidate's JPEG header gives its size;
lossless JPEG (raw data) and other SOFs are passed over. The largest 8-bit one within `max_pixels` whose sides reach
`min_side` is decoded as a JPEG file is, turned upright by the RAW's own Orientation tag when it has one.
The walk is bounded: at most MAX_IFDS IFDs, each read once (a chain that loops ends), MAX_ENTRIES entries in one,
heif.MAX_BOXES boxes.
"""

from __future__ import annotations

import struct
from typing import Iterator

from PIL import Image

from . import heif
from .base import Blob, Context, ImageItem, Item, ItemError, SourcePlugin
from .registry import register

MAX_IFDS = 64  # IFDs read in one file (a camera's have a handful to a few dozen)
MAX_ENTRIES = 4096  # entries in one IFD; an IFD claiming more is not read
MAX_SEGMENTS = 256  # JPEG marker segments read before the frame header
NO_PREVIEW = "camera RAW with no embedded preview: convert it to DNG/JPEG/TIFF"
NO_DNG_PREVIEW = "camera RAW with no embedded preview: export it as JPEG or TIFF"  # a DNG told to become a DNG

# TIFF-based RAW files, by name: a TIFF so named is read as RAW even when its first IFDs do not say it
RAW_NAMES = {".dng": "DNG", ".cr2": "CR2", ".nef": "NEF", ".nrw": "NRW", ".arw": "ARW", ".srf": "SRF", ".sr2": "SR2",
             ".orf": "ORF", ".rw2": "RW2", ".rwl": "RWL", ".pef": "PEF", ".srw": "SRW", ".3fr": "3FR", ".erf": "ERF",
             ".kdc": "KDC", ".dcr": "DCR", ".mos": "MOS", ".iiq": "IIQ", ".mef": "MEF"}
_RAW_PHOTOMETRIC = {32803, 34892}  # CFA, LinearRaw: sensor data, not a picture
_VIEWABLE_SOF = {0xC0, 0xC1, 0xC2}  # baseline, extended, progressive Huffman (8-bit only); C3 is lossless: raw data
_OTHER_SOF = {0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_SUB_IFDS = (330, 34665)  # SubIFDs, ExifIFD
# (start tag, length tag) pairs naming a preview's bytes; in a MakerNote also Olympus's and Pentax's own
_PAIRS = ((513, 514), (0x0101, 0x0102), (0x0005, 0x0004))
_MAKER_SUB_IFDS = (0x0011, 0x2020)  # Nikon PreviewIFD, Olympus CameraSettings


def raw_kind(data: bytes, name: str) -> str | None:
    """The RAW family a file is ("DNG", "CR3", …) by its first bytes (and, for a plain TIFF header, its IFD0, its
    SubIFDs or its name), or None."""
    if data[:16] == b"FUJIFILMCCD-RAW ":
        return "RAF"
    if data[4:12] == b"ftypcrx ":
        return "CR3"
    if data[:4] in (b"IIRO", b"IIRS", b"MMOR"):
        return "ORF"
    if data[:4] == b"IIU\x00":
        return "RW2"
    if data[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    tiff = _Tiff(data)
    ifd0 = tiff.entries(tiff.first)
    if data[8:11] == b"CR\x02" and _make(data, ifd0).startswith(b"Canon"):  # not a TIFF whose pixels start "CR"
        return "CR2"
    if 50706 in ifd0:  # DNGVersion
        return "DNG"
    lower = name.lower().split("?")[0]
    named = next((v for k, v in RAW_NAMES.items() if lower.endswith(k)), None)
    if named:
        return named
    subs = [tiff.entries(o) for o in tiff.ints(ifd0.get(330))[:8]]
    if any(tiff.int(e.get(262)) in _RAW_PHOTOMETRIC for e in [ifd0, *subs]):
        return "RAW"
    return None


def _make(data: bytes, ifd: dict) -> bytes:
    """IFD0's Make (ASCII), b"" when it has none."""
    typ, count, at = ifd.get(271, (0, 0, 0))
    return data[at:at + min(count, 64)] if typ == 2 else b""


def _accepts(head: bytes, blob: Blob) -> bool:
    return raw_kind(blob.data, blob.name or blob.origin) is not None


class _Tiff:
    """Reads IFD entries of a TIFF-like file without trusting any offset."""

    def __init__(self, data: bytes, base: int = 0, order: str | None = None):
        self.data, self.base = data, base
        self.order = order or ("<" if data[base:base + 2] == b"II" else ">")
        self.first = self._u32(base + 4)

    def _u32(self, at: int) -> int:
        return struct.unpack_from(self.order + "I", self.data, at)[0] if 0 <= at <= len(self.data) - 4 else 0

    def entries(self, offset: int) -> dict[int, tuple[int, int, int]]:
        """{tag: (type, count, where its value is in the file)} of the IFD at `offset` (from base); {} when it
        is not there."""
        at, data, o = self.base + offset, self.data, self.order
        if offset <= 0 or at + 2 > len(data):
            return {}
        n = struct.unpack_from(o + "H", data, at)[0]
        if n == 0 or n > MAX_ENTRIES or at + 2 + 12 * n > len(data):
            return {}
        out = {}
        for i in range(n):
            e = at + 2 + 12 * i
            tag, typ, count = struct.unpack_from(o + "HHI", data, e)
            size = _TYPE_SIZES.get(typ, 1) * count
            out.setdefault(tag, (typ, count, e + 8 if size <= 4 else self.base + self._u32(e + 8)))
        return out

    def ints(self, entry: tuple[int, int, int] | None, most: int = 64) -> list[int]:
        """An entry's first `most` values as integers (BYTE, SHORT, LONG or IFD), [] for other types."""
        if entry is None:
            return []
        typ, count, at = entry
        fmt = {1: "B", 3: "H", 4: "I", 13: "I", 16: "Q"}.get(typ)
        count = min(count, most)
        if fmt is None or at < 0 or at + struct.calcsize(fmt) * count > len(self.data):
            return []
        return list(struct.unpack_from(f"{self.order}{count}{fmt}", self.data, at))

    def int(self, entry: tuple[int, int, int] | None) -> int | None:
        values = self.ints(entry, 1)
        return values[0] if values else None


def _tiff_candidates(data: bytes, tiff: _Tiff) -> tuple[list[tuple[int, int]], int | None]:
    """(start, length) of each JPEG a TIFF-like RAW points to, and its IFD0's Orientation."""
    found: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    todo = [(tiff, tiff.first, True, False)]  # (reader, offset, follow the chain, in a MakerNote)
    orientation = tiff.int(tiff.entries(tiff.first).get(274))
    while todo and len(seen) < MAX_IFDS:
        reader, offset, chain, maker = todo.pop(0)
        if (reader.base, offset) in seen:
            continue
        seen.add((reader.base, offset))
        entries = reader.entries(offset)
        pairs = _PAIRS if maker else _PAIRS[:1]
        for start_tag, length_tag in pairs:
            start, length = reader.int(entries.get(start_tag)), reader.int(entries.get(length_tag))
            if start and length:
                found.append((reader.base + start, length))
        compression, photometric = reader.int(entries.get(259)), reader.int(entries.get(262))
        if compression in (6, 7) and photometric not in _RAW_PHOTOMETRIC:
            strips, counts = reader.ints(entries.get(273), 1), reader.ints(entries.get(279), 4096)
            if strips and counts:  # the strips of one JPEG, one after the other
                found.append((reader.base + strips[0], sum(counts)))
        elif compression == 1 and photometric == 2 and not maker:  # a DNG's thumbnail: 8-bit RGB, uncompressed
            rgb = _rgb_strips(reader, entries)
            if rgb is not None:
                found.append(rgb)
        for typ, count, at in entries.values():  # a JPEG as a tag's value (RW2's JpgFromRaw, Sony's PreviewImage)
            if typ == 7 and count > 4 and data[at:at + 3] == b"\xff\xd8\xff":
                found.append((at, count))
        subs = _SUB_IFDS + (_MAKER_SUB_IFDS if maker else ())
        todo += [(reader, o, False, maker) for tag in subs for o in reader.ints(entries.get(tag))]
        note = entries.get(37500)  # MakerNote
        if note is not None:
            inner = _maker_note(data, note[2], tiff)
            if inner is not None:
                todo.append((inner[0], inner[1], False, True))
        if chain:
            nxt = _next_ifd(reader, offset)
            if nxt:
                todo.append((reader, nxt, True, maker))
    return found, orientation


def _rgb_strips(reader: _Tiff, entries: dict) -> tuple | None:
    """("rgb", width, height, strip offsets, strip lengths) of an uncompressed chunky 8-bit RGB IFD, or None."""
    w, h = reader.int(entries.get(256)), reader.int(entries.get(257))
    if not w or not h or reader.ints(entries.get(258), 4) not in ([8, 8, 8], [8]) \
            or reader.int(entries.get(277)) != 3 or reader.int(entries.get(284)) not in (None, 1):
        return None
    strips, counts = reader.ints(entries.get(273), 65536), reader.ints(entries.get(279), 65536)
    if not strips or len(strips) != len(counts) or sum(counts) < w * h * 3:
        return None
    return "rgb", w, h, tuple(reader.base + s for s in strips), tuple(counts)


def _next_ifd(reader: _Tiff, offset: int) -> int:
    at = reader.base + offset
    if at + 2 > len(reader.data):
        return 0
    n = struct.unpack_from(reader.order + "H", reader.data, at)[0]
    return reader._u32(at + 2 + 12 * n)


def _maker_note(data: bytes, at: int, tiff: _Tiff) -> tuple[_Tiff, int] | None:
    """(reader, IFD offset) of a MakerNote's IFD, by its vendor's header, or None."""
    head = data[at:at + 16]
    if head.startswith(b"Nikon\x00"):  # a TIFF header of its own at +10; offsets from it
        inner = _Tiff(data, at + 10)
        return inner, inner.first
    if head.startswith((b"OLYMPUS\x00", b"OM SYSTEM")):  # offsets from the note's start
        skip = 8 if head.startswith(b"OLYMPUS") else 12
        order = "<" if data[at + skip:at + skip + 2] == b"II" else ">"
        return _Tiff(data, at, order), skip + 4
    if head.startswith((b"OLYMP\x00", b"AOC\x00")):  # offsets from the file's TIFF header
        ifd = 8 if head.startswith(b"OLYMP") else 6
        return tiff, at - tiff.base + ifd
    if head.startswith(b"PENTAX \x00"):
        order = "<" if data[at + 8:at + 10] == b"II" else ">"
        return _Tiff(data, at, order), 10
    if head[:2].isalpha():  # another vendor's header not known here
        return None
    return tiff, at - tiff.base  # Canon, Sony: a bare IFD, file offsets


def _boxes(data: bytes, start: int, end: int, count: list[int]) -> Iterator[tuple[bytes, int, int]]:
    try:
        yield from heif._boxes(data, start, end, count)
    except heif.TooManyBoxes:  # what was found so far stands
        return


_BOX_PARENTS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


def _cr3_candidates(data: bytes) -> tuple[list[tuple[int, int]], int | None]:
    """(start, length) of a CR3's JPEGs (PRVW, THMB, each track's first sample), and CMT1's Orientation."""
    found: list[tuple[int, int]] = []
    orientation = None
    count = [0]
    todo = [(0, len(data))]
    while todo and count[0] < heif.MAX_BOXES:
        start, end = todo.pop()
        first = sizes = None
        for kind, body, stop in _boxes(data, start, end, count):
            if kind in _BOX_PARENTS:
                todo.append((body, stop))
            elif kind == b"uuid":  # Canon's boxes (CMT1…, THMB) and the preview's (PRVW) after a 16-byte uuid
                todo.append((body + 16, stop))
                if data[body + 28:body + 32] == b"PRVW":  # 8 bytes more before PRVW
                    todo.append((body + 24, stop))
            elif kind in (b"PRVW", b"THMB"):
                soi = data.find(b"\xff\xd8\xff", body, min(stop, body + 64))
                if soi >= 0:
                    found.append((soi, stop - soi))
            elif kind == b"CMT1" and orientation is None:  # the RAW's IFD0, a TIFF
                tiff = _Tiff(data, body)
                orientation = tiff.int(tiff.entries(tiff.first).get(274))
            elif kind in (b"co64", b"stco") and stop - body >= 16:
                first = int.from_bytes(data[body + 8:body + (16 if kind == b"co64" else 12)], "big")
            elif kind == b"stsz" and stop - body >= 12:
                size, n = struct.unpack_from(">II", data, body + 4)
                sizes = size or (int.from_bytes(data[body + 12:body + 16], "big") if n and stop - body >= 16 else 0)
        if first and sizes:
            found.append((first, sizes))
    return found, orientation


def _raf_candidates(data: bytes) -> tuple[list[tuple[int, int]], int | None]:
    """The JPEG a RAF's header points to (its offset and length at bytes 84 and 88); its orientation is its own."""
    if len(data) < 92:
        return [], None
    return [struct.unpack_from(">II", data, 84)], None


def jpeg_size(data: bytes, start: int, length: int) -> tuple[int, int] | str | None:
    """(width, height) from the frame header of the JPEG at `start`, a note when it is not an 8-bit picture
    (lossless or 12-bit: sensor data), or None when no JPEG is there."""
    end = min(len(data), start + length)
    if start < 0 or data[start:start + 3] != b"\xff\xd8\xff":
        return None
    at = start + 2
    for _ in range(MAX_SEGMENTS):
        if at + 4 > end or data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        size = int.from_bytes(data[at + 2:at + 4], "big")
        if marker in _VIEWABLE_SOF or marker in _OTHER_SOF:
            if at + 9 > end:
                return None
            bits, h, w = data[at + 4], *struct.unpack_from(">HH", data, at + 5)
            if marker in _OTHER_SOF or bits != 8:
                return "sensor data"
            return (w, h) if w and h else None
        if marker in (0xD9, 0xDA) or size < 2:
            return None
        at += 2 + size
    return None


def _orientation_set(jpeg: bytes, orientation: int) -> bytes:
    """The JPEG with an EXIF block saying `orientation` put first, so it is the one Pillow reads (its own, if
    any, comes after and is not)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    block = exif.tobytes()
    return jpeg[:2] + b"\xff\xe1" + (len(block) + 2).to_bytes(2, "big") + block + jpeg[2:]


def open_raw(blob: Blob, ctx: Context) -> Iterator[Item]:
    """A camera RAW file's largest embedded preview, upright; an error when it has none to show."""
    data, origin, limits = blob.data, blob.origin, ctx.limits
    kind = raw_kind(data, blob.name or origin) or "RAW"
    tiff = None
    if kind == "CR3":
        found, orientation = _cr3_candidates(data)
    elif kind == "RAF":
        found, orientation = _raf_candidates(data)
    else:
        tiff = _Tiff(data)
        found, orientation = _tiff_candidates(data, tiff)
    usable, small, big = [], None, None
    for where in dict.fromkeys(found):
        if where[0] == "rgb":
            size = where[1:3]
        else:
            start, length = where
            size = jpeg_size(data, start, length) if 0 < length <= limits.max_input_bytes else None
        if not isinstance(size, tuple):
            continue
        w, h = size
        if w * h > limits.max_pixels:
            big = big if big and big[0] * big[1] >= w * h else size
        elif min(w, h) < limits.min_side:
            small = small if small and small[0] * small[1] >= w * h else size
        else:
            usable.append((w * h, where))
    if not usable:
        cut = None if small or big else _cut_short(data, found, tiff)
        yield ItemError(origin, "", f"{kind} RAW file is cut off ({len(data):,} bytes): {cut}; copy it again whole"
                        if cut else _none_shown(kind, small, big, limits))
        return
    first_error = None
    for _, where in sorted(usable, key=lambda u: u[0], reverse=True):
        item = _shown(data, where, orientation, blob, ctx)
        if isinstance(item, ImageItem):
            item.format = kind
            item.metadata["note"] = (f"the camera's embedded preview ({item.width}×{item.height}) of a {kind} RAW "
                                     "file; its sensor data is not decoded")
            if orientation:
                item.metadata["orientation"] = orientation
            yield item
            return
        if item is not None:
            first_error = first_error or (item, where)
    if first_error is not None:
        item, where = first_error
        cut = _cut_short(data, [where], None)
        item.error = f"{kind} RAW file is cut off ({len(data):,} bytes): {cut}; copy it again whole" if cut else \
            f"{kind} RAW file's embedded preview: {item.error}"
        yield item
    else:
        yield ItemError(origin, "", NO_DNG_PREVIEW if kind == "DNG" else NO_PREVIEW)


# Pillow's transposes for EXIF orientations 2..8
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}


def _shown(data: bytes, where: tuple, orientation: int | None, blob: Blob, ctx: Context) -> Item | None:
    """One preview decoded and upright: a JPEG as a JPEG file is (files.open_image), RGB strips as they are."""
    from .files import open_image

    if where[0] == "rgb":
        _, w, h, strips, counts = where
        pixels = _first_bytes(data, strips, counts, w * h * 3)
        if len(pixels) < w * h * 3:
            return ItemError(blob.origin, "", "its RGB preview's strips run past the end of the file")
        image = Image.frombytes("RGB", (w, h), pixels[:w * h * 3])
        turned = image.transpose(_TRANSPOSE[orientation]) if orientation in _TRANSPOSE else image
        return ImageItem(blob.origin, "", turned, None, {"mode": "RGB"})
    start, length = where
    jpeg = data[start:start + length]
    if orientation and 1 <= orientation <= 8:
        jpeg = _orientation_set(jpeg, orientation)
    items = list(open_image(Blob(blob.origin, jpeg, name="preview.jpg"), ctx))
    return items[0] if items else None


def _first_bytes(data: bytes, starts: tuple, lengths: tuple, need: int) -> bytes:
    """The first `need` bytes of the strips (fewer when they run out): never more, whatever lengths they claim."""
    parts, got = [], 0
    for start, length in zip(starts, lengths):
        if got >= need:
            break
        part = data[start:start + min(length, need - got)]
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _cut_short(data: bytes, found: list, tiff: _Tiff | None) -> str | None:
    """What of a RAW file with no preview shown lies past its end (a copy stopped part way), or None."""
    if any(w[0] != "rgb" and w[0] < len(data) < w[0] + w[1] for w in found):
        return "its embedded preview runs past the end"
    if tiff is not None and tiff.base + tiff.first + 2 + 12 > len(data):
        return "its first IFD (the list of what it holds) lies past the end"
    return None


def _none_shown(kind: str, small, big, limits) -> str:
    text = f"{NO_DNG_PREVIEW if kind == 'DNG' else NO_PREVIEW} ({kind}"
    if big:
        w, h = big
        return text + f"; its preview of {w}×{h} = {w * h:,} pixels is over the max_pixels cap of " \
                      f"{limits.max_pixels:,}; not decoded)"
    if small:
        return text + f"; only a {small[0]}×{small[1]} thumbnail, under min_side {limits.min_side})"
    return text + ")"


register(SourcePlugin("camera-raw", _accepts, open_raw, priority=34))
