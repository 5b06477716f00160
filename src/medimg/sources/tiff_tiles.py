"""TIFF tiles and strips compressed as pictures (JPEG, JPEG 2000, WebP, JPEG XL) or as LERC, checked before
tifffile decodes them (sources/tiff.py, and microscopy.py for stacks and pyramids).

Their decoders make an image of the size their own stream names, not the tile's: a WebP tile of 50 bytes may
claim 16383 × 16383 pixels, a LERC one of 70 bytes 4000 × 4000 floats, a JPEG one of 4 MB 16000 × 16000 pixels.
So every segment's own header is read first (JPEG's frame header, JPEG 2000's SIZ marker, WebP's VP8/VP8L/VP8X
header, JPEG XL's SizeHeader and ImageMetadata, each LERC2 blob's header, inside its Deflate or Zstandard wrapping
undone within a bound) and the page is refused when a segment names another size than its tile's (or than the
part of it inside the image, at the right and bottom edges), more samples than the page's, or wider ones, or
(JPEG XL) an animation, whose frames would all be decoded.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from . import jxl

J2K = {33004, 33005, 34712}  # 33003 is Aperio's YCbCr: read by the slide reader (.svs), not here
WEBP, JPEGXL, LERC = {50001}, {50002, 52546}, {34887}
CHECKED = J2K | WEBP | JPEGXL | LERC  # tiff.py decodes these once checked
JPEG = {7}  # tiff.py leaves JPEG pages to Pillow (libtiff checks each tile's size); stacks and pyramids decode them
NAMES = {7: "JPEG", **dict.fromkeys(J2K, "JPEG 2000"), **dict.fromkeys(WEBP, "WebP"),
         **dict.fromkeys(JPEGXL, "JPEG XL"), **dict.fromkeys(LERC, "LERC")}
_LERC_TYPES = (1, 1, 2, 2, 4, 4, 4, 8)  # a LERC2 sample's bytes: char, byte, short, ushort, int, uint, float, double


def tiles_problem(page, only: set[int] | None = None) -> str | None:
    """Why the page's picture-coded segments (those numbered in `only`, when given) must not be decoded, from their
    own headers; None when each names its tile's size (or the page is not compressed so). `page` may be a TiffFrame
    of a stack (microscopy.py): its layout is its keyframe's."""
    key = getattr(page, "keyframe", None) or page
    compression = int(key.compression)
    if compression not in CHECKED | JPEG:
        return None
    name, fh = NAMES[compression], page.parent.filehandle
    kind = "tile" if key.is_tiled else "strip"
    if min(_segment_size(key)) < 1:  # a TileLength of 0: segments() cannot lay the page out
        return f"{name} page's {kind}s are {'×'.join(f'{v:,}' for v in _segment_size(key))} pixels; not decoded"
    samples = 1 if int(key.planarconfig) == 2 else int(key.samplesperpixel)
    itemsize = np.dtype(key.dtype).itemsize
    for n, (offset, count, full, edge, _) in segments(page, only):
        if not count:
            continue  # a missing segment: tifffile leaves it blank
        fh.seek(offset)
        data = fh.read(count)
        try:
            got = _header(compression, data, full[0] * full[1] * samples * itemsize)
        except (IndexError, struct.error, zlib.error, ValueError) as exc:
            got = f"unreadable header ({exc})"
        if isinstance(got, str):
            return f"{name} {kind} {n + 1}: {got}; not decoded"
        w, h, channels, width = got
        if (w, h) not in (full, edge):
            return (f"{name} {kind} {n + 1} names {w:,}×{h:,} pixels, not its {kind}'s {full[0]:,}×{full[1]:,}"
                    f"{'' if edge == full else f' or {edge[0]:,}×{edge[1]:,}'}; not decoded")
        if channels > samples or width > itemsize:
            return (f"{name} {kind} {n + 1} names {channels} sample(s) of {width} byte(s), the page {samples} of "
                    f"{itemsize}; not decoded")
    return None


def segments(page, only=None):
    """(n, (offset, byte count, its tile's (w, h), the part of that inside the image, where that starts (x, y))) for
    each of the page's segments, or those numbered in `only` (in order: a level of millions of tiny tiles is not
    walked for a few)."""
    key = getattr(page, "keyframe", None) or page
    width, length = key.imagewidth, key.imagelength
    tw, th = _segment_size(key)
    if tw < 1 or th < 1:
        raise ValueError(f"{'tile' if key.is_tiled else 'strip'}s of {tw}×{th} pixels")
    across, down = -(-width // tw), -(-length // th)
    offsets, counts = page.dataoffsets, page.databytecounts
    for i in range(len(offsets)) if only is None else sorted(n for n in only if 0 <= n < len(offsets)):
        j = i % (across * down)  # separate planes: each plane's segments in turn
        x, y = j % across * tw, j // across * th
        yield i, (offsets[i], counts[i], (tw, th), (min(tw, width - x), min(th, length - y)), (x, y))


def covering(page, box: tuple[int, int, int, int]) -> list[int]:
    """The numbers of the segments (of every plane) that `box` (x0, y0, x1, y1) touches, found from the layout
    alone."""
    across, down, cols, rows, planes = _grid(page, box)
    return [p * across * down + r * across + c for p in range(planes) for r in rows for c in cols]


def covering_count(page, box: tuple[int, int, int, int]) -> int:
    """How many segments `covering` gives, without listing them."""
    _, _, cols, rows, planes = _grid(page, box)
    return len(cols) * len(rows) * planes


def _grid(page, box: tuple[int, int, int, int]) -> tuple[int, int, range, range, int]:
    """(segments across, down, the columns and rows of them that `box` touches, planes)."""
    key = getattr(page, "keyframe", None) or page
    tw, th = _segment_size(key)
    if tw < 1 or th < 1:
        raise ValueError(f"{'tile' if key.is_tiled else 'strip'}s of {tw}×{th} pixels")
    across, down = -(-key.imagewidth // tw), -(-key.imagelength // th)
    x0, y0, x1, y1 = box
    cols = range(max(x0 // tw, 0), min(-(-x1 // tw), across))
    rows = range(max(y0 // th, 0), min(-(-y1 // th), down))
    return across, down, cols, rows, max(len(page.dataoffsets) // (across * down), 1)


def segment_name(page, n: int) -> str:
    """`tile 52 (column 4, row 3)` or `strip 7`, counted from 1."""
    key = getattr(page, "keyframe", None) or page
    if not key.is_tiled:
        return f"strip {n + 1}"
    tw, th = _segment_size(key)
    across, down = -(-key.imagewidth // tw), -(-key.imagelength // th)
    j = n % max(across * down, 1)
    return f"tile {n + 1} (column {j % across + 1}, row {j // across + 1})"


def damaged_segment(pages) -> str | None:
    """The first segment of the pages (None: a missing page) that does not decode, named with tifffile's reason
    (`page 2, tile 52 (column 4, row 3): …` when there are several pages); None when every one decodes. Each is
    decoded in turn, so only once a page as a whole would not."""
    for k, page in enumerate(pages):
        if page is None:
            continue
        key, fh = page.keyframe, page.parent.filehandle
        for n, (offset, count, _, _, _) in segments(page):
            if not count:
                continue
            fh.seek(offset)
            try:
                key.decode(fh.read(count), n, jpegtables=key.jpegtables)
            except Exception as exc:
                return f"{f'page {k + 1}, ' if len(pages) > 1 else ''}{segment_name(page, n)}: {exc}"
    return None


def _segment_size(key) -> tuple[int, int]:
    if key.is_tiled:
        return key.tilewidth, key.tilelength
    return key.imagewidth, min(key.rowsperstrip or key.imagelength, key.imagelength)


def _header(compression: int, data: bytes, tile_bytes: int) -> tuple[int, int, int, int] | str:
    """(width, height, samples, bytes a sample) the segment's own header names, or what is wrong with it."""
    if compression in JPEG:
        return _jpeg(data)
    if compression in J2K:
        return _j2k(data)
    if compression in WEBP:
        return _webp(data)
    if compression in JPEGXL:
        return _jxl(data)
    return _lerc(data, 2 * tile_bytes + 4096)


def _jpeg(data: bytes) -> tuple[int, int, int, int] | str:
    """From the frame header (SOF) of a JPEG stream, whose tables may be the page's JPEGTables: imagecodecs
    decodes the size it names whatever shape tifffile asks for."""
    if data[:2] != b"\xff\xd8":
        return "not a JPEG stream"
    pos = 2
    while data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:  # a fill byte
            pos += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD7:  # no length
            pos += 2
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOF0–15, not DHT, JPG, DAC
            bits, h, w, components = struct.unpack(">BHHB", data[pos + 4:pos + 10])
            return w, h, components, 1 if bits <= 8 else 2
        elif marker == 0xDA:  # the scan starts: no frame header before it
            break
        else:
            pos += 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
    return "no JPEG frame header"


def _j2k(data: bytes) -> tuple[int, int, int, int] | str:
    """From the SIZ marker of a JPEG 2000 codestream, bare or in a JP2 file's jp2c box."""
    code = data if data.startswith(b"\xff\x4f") else _jp2_codestream(data)
    if code is None or code[2:4] != b"\xff\x51":
        return "no JPEG 2000 SIZ marker"
    xsiz, ysiz, xo, yo = struct.unpack(">4I", code[8:24])
    (components,) = struct.unpack(">H", code[40:42])
    bits = max((code[42 + 3 * k] & 0x7F) + 1 for k in range(components)) if components else 0
    return xsiz - xo, ysiz - yo, components, 1 if bits <= 8 else 2 if bits <= 16 else 4


def _jp2_codestream(data: bytes) -> bytes | None:
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        head = 8
        if size == 1:
            (size,), head = struct.unpack(">Q", data[pos + 8:pos + 16]), 16
        if kind == b"jp2c":
            return data[pos + head:]
        if size < head:
            return None
        pos += size
    return None


def _webp(data: bytes) -> tuple[int, int, int, int] | str:
    """From the first chunk after RIFF/WEBP: VP8X's canvas, VP8L's or VP8's frame size."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return "not a WebP stream"
    chunk, body = data[12:16], data[20:32]
    if chunk == b"VP8X":
        w, h = int.from_bytes(body[4:7], "little") + 1, int.from_bytes(body[7:10], "little") + 1
        return w, h, 4 if body[0] & 0x10 else 3, 1
    if chunk == b"VP8L" and body[0] == 0x2F:
        bits = int.from_bytes(body[1:5], "little")
        return (bits & 0x3FFF) + 1, (bits >> 14 & 0x3FFF) + 1, 4 if bits >> 28 & 1 else 3, 1
    if chunk == b"VP8 " and body[3:6] == b"\x9d\x01\x2a":
        return int.from_bytes(body[6:8], "little") & 0x3FFF, int.from_bytes(body[8:10], "little") & 0x3FFF, 3, 1
    return f"WebP chunk {chunk!r} is not an image header"


def _jxl(data: bytes) -> tuple[int, int, int, int] | str:
    """From the SizeHeader and ImageMetadata (jxl.py); the colour channels are not counted (one at least), the
    extra ones are."""
    code = jxl.codestream_start(data)
    size = jxl.size_of(code) if code else None
    meta = jxl.metadata(code) if size else None
    if meta is None:
        return "no JPEG XL size header"
    depth, floating, animated, extra = meta
    if animated:
        return "an animation (every frame would be decoded)"
    return size[0], size[1], 1 + extra, 4 if floating else 1 if depth <= 8 else 2


def _zstd():
    """Python's Zstandard module (3.14), or its backport (which py7zr requires before 3.14)."""
    try:
        from compression import zstd
    except ImportError:
        from backports import zstd
    return zstd


def _lerc(data: bytes, bound: int) -> tuple[int, int, int, int] | str:
    """From each LERC2 blob's header (bands are blobs one after another), after undoing a Deflate or Zstandard
    wrapping (LercParameters) within `bound` bytes, as imagecodecs' lerc_decode undoes it before decoding."""
    if data[:4] == b"\x28\xb5\x2f\xfd":
        unzstd = _zstd().ZstdDecompressor()  # its output grows as it comes: a 4 kB tile never takes `bound` bytes
        try:
            data = unzstd.decompress(data, max_length=bound + 1)
        except Exception as exc:
            return f"Zstandard wrapping damaged ({exc})"
        if len(data) > bound or not unzstd.eof:
            return f"Zstandard wrapping over {bound:,} bytes or damaged"
    elif data[:1] == b"\x78":
        inflate = zlib.decompressobj()
        data = inflate.decompress(data, bound)
        if inflate.unconsumed_tail:
            return f"Deflate wrapping over {bound:,} bytes"
    sizes, bands, width, pos = set(), 0, 0, 0
    while data[pos:pos + 6] == b"Lerc2 ":
        (version,) = struct.unpack("<i", data[pos + 6:pos + 10])
        at = pos + 10 + 4 * (version >= 3)  # after the checksum
        ints = struct.unpack(f"<{6 + (version >= 4)}i", data[at:at + 4 * (6 + (version >= 4))])
        rows, cols = ints[:2]
        depth = ints[2] if version >= 4 else 1
        blob, kind = ints[-2:]
        if not 0 <= kind < len(_LERC_TYPES) or blob <= 0 or depth < 1:
            return "damaged LERC2 header"
        sizes.add((cols, rows))
        bands, width, pos = bands + depth, max(width, _LERC_TYPES[kind]), pos + blob
        if len(sizes) > 1 or bands > 64:
            return "LERC2 bands of different sizes, or over 64"
    if not sizes:
        return "not a LERC2 blob"
    (w, h), = sizes
    return w, h, bands, width
