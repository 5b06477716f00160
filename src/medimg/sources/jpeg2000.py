"""A large JPEG 2000 image decoded at a lower resolution level, as a large JPEG decodes at 1/2-1/8 scale: OpenJPEG
stops its wavelet at 1/2, 1/4, … (Pillow's `reduce`), about 30 times faster at 1/8 than the whole image.

The levels come from the codestream's main header and its tile-parts' headers (COD, COC: a tile may have fewer),
since OpenJPEG refuses to drop more levels than a component of a tile has; a file whose tile-parts cannot all be
walked (cut short, a wrong length) is decoded whole. Pillow rounds the reduced size to nearest while OpenJPEG rounds up, and refuses the decode when they
differ ("broken data stream"), so only a level where both agree is used.
"""

from __future__ import annotations

from PIL import Image

SOC_SIZ = b"\xff\x4f\xff\x51"
TILE_PARTS = 1 << 16  # tile-part headers read for their levels; a file with more is decoded whole


def main_header(data: bytes) -> tuple[int, int, int, int, int] | None:
    """(width, height, x offset, y offset, fewest levels of any component in any tile) from the first codestream's
    main header and tile-part headers, or None when they cannot all be read."""
    pos = data.find(SOC_SIZ, 0, 1 << 20)  # a JP2 box's codestream follows its header boxes
    if pos < 0 or pos + 42 > len(data):
        return None
    pos += 2
    width, height, x0, y0 = (int.from_bytes(data[pos + i:pos + i + 4], "big") for i in (6, 10, 14, 18))
    components = int.from_bytes(data[pos + 38:pos + 40], "big")
    levels, pos = _levels(data, pos, components, None)
    if levels is None:
        return None
    for _ in range(TILE_PARTS):  # each tile-part: SOT (its length from there), its header's markers, SOD, its data
        if data[pos:pos + 2] == b"\xff\xd9":  # EOC: every tile-part read
            return width - x0, height - y0, x0, y0, levels
        if data[pos:pos + 2] != b"\xff\x90" or pos + 12 > len(data):
            return None
        tile_part = int.from_bytes(data[pos + 6:pos + 10], "big")
        if 0 < tile_part < 14:
            return None
        # its header ends inside it (a header read on past it, into the next ones, made the walk quadratic)
        levels, end = _levels(data, pos + 12, components, levels, pos + tile_part if tile_part else len(data))
        if levels is None or data[end:end + 2] != b"\xff\x93":  # not at its SOD
            return None
        if tile_part == 0:  # the last tile-part, to the end
            return width - x0, height - y0, x0, y0, levels
        pos += tile_part
    return None


def _levels(data: bytes, pos: int, components: int, levels: int | None,
            end: int | None = None) -> tuple[int | None, int]:
    """The fewest levels of `levels` and what the COD and COC markers of a header from `pos` (read no further
    than `end`) give, and where the header ends (at SOT or SOD); None when a marker's length is wrong."""
    end = len(data) if end is None else min(end, len(data))
    while pos + 4 <= end and data[pos] == 0xFF and data[pos + 1] not in (0x90, 0x93):  # to SOT or SOD
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2:pos + 4], "big")
        at = {0x52: pos + 9, 0x53: pos + 5 + (1 if components < 257 else 2)}.get(marker)  # COD, COC: SPcod's first
        if at is not None and at < len(data):
            levels = data[at] if levels is None else min(levels, data[at])
        if length < 2:
            return None, pos
        pos += 2 + length
    return levels, pos


def reduce(im: Image.Image, data: bytes | None, decode_side: int | None) -> None:
    """Let a JPEG 2000 image decode at 1/2, 1/4, … scale while both sides stay ≥ decode_side."""
    if not decode_side or im.format != "JPEG2000" or data is None or min(im.size) < 2 * decode_side:
        return
    header = main_header(data)
    if header is None or header[:2] != im.size or header[2] or header[3]:  # offsets: other rounding
        return
    for r in range(header[4], 0, -1):
        power = 1 << r
        if min(im.size) // power >= decode_side and all(
                int((side + power // 2) / power) == -(-side // power) for side in im.size):
            im.reduce = r  # Pillow's JPEG 2000 option (its Image.reduce method is another thing)
            return
