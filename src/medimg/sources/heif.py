"""The stored size of a HEIF or AVIF image, read from its boxes before any decoder sees it.

libheif reports the size after the clean-aperture crop (`clap`), which a crafted file can make tiny while its
`ispe` (the size decoded) is huge, and both libheif (1 G pixels) and libavif (16384²) refuse past limits of their
own with unclear words. So `max_pixels` is checked against the largest `ispe` in the file, each image item's size as
stored (the primary's or its grid's, a tile's, a thumbnail's, a depth or gain map's), before decoding.
"""

from __future__ import annotations

# the boxes holding the ispe properties, in order (meta has 4 bytes of version and flags before its boxes)
_PATH = ((b"meta", 4), (b"iprp", 0), (b"ipco", 0))
# boxes looked at in one file (a camera's has a few dozen): a file of millions of 8-byte boxes would take a minute
MAX_BOXES = 100_000


class TooManyBoxes(ValueError):
    pass


def _boxes(data: bytes, start: int, end: int, count: list[int]):
    """(type, body start, body end) of each box between start and end; stops at one that runs past end. `count`:
    the boxes looked at so far in the file, past MAX_BOXES a TooManyBoxes."""
    pos = start
    while pos + 8 <= end:
        count[0] += 1
        if count[0] > MAX_BOXES:
            raise TooManyBoxes(f"more than {MAX_BOXES:,} boxes")
        size, kind, head = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8], 8
        if size == 1:
            size, head = int.from_bytes(data[pos + 8:pos + 16], "big"), 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            return
        yield kind, pos + head, pos + size
        pos += size


def largest_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of the largest `ispe` in the file's meta box, or None when it has none; TooManyBoxes for a file
    of more than MAX_BOXES boxes on the way."""
    spans, count = [(0, len(data))], [0]
    for kind, skip in _PATH:  # meta/iprp/ipco, as HEIF places them: a fixed depth, whatever a file nests
        spans = [(body + skip, stop) for start, end in spans for k, body, stop in _boxes(data, start, end, count)
                 if k == kind]
    best = None
    for start, end in spans:
        for kind, body, stop in _boxes(data, start, end, count):
            if kind == b"ispe" and stop - body >= 12:
                size = int.from_bytes(data[body + 4:body + 8], "big"), int.from_bytes(data[body + 8:body + 12], "big")
                if best is None or size[0] * size[1] > best[0] * best[1]:
                    best = size
    return best
