"""Segmented palette colour lookup tables (DICOM PS3.3 C.7.9.2) expanded within a bound.

A few bytes of segments can name millions of entries: a linear segment names up to 65,535 in three words, and an
indirect one repeats up to 65,535 earlier segments, themselves indirect. pydicom expands them all into a Python
list (a 12 kB file named 160 million entries, 4 GB). Here the expansion stops once it passes the entries the
descriptor names (`limit`), after MAX_SEGMENTS segments, or past MAX_DEPTH indirect segments within one another;
otherwise it is pydicom's (`_expand_segmented_lut`), entry for entry.
"""

from __future__ import annotations

import struct

import numpy as np

MAX_SEGMENTS = 1_000_000  # segments read in all, indirect ones' included
MAX_DEPTH = 8  # indirect segments within one another


def expand(data: bytes, fmt: str, limit: int) -> list[int] | None:
    """`data` read as `fmt` ('<B', '>H'…) and expanded: all its entries when there are at most `limit`, else more
    than `limit` of them (the first ones); None when it cannot be expanded (as pydicom could not) or takes more
    than the bounds."""
    size = struct.calcsize(fmt[1])
    values = struct.unpack(f"{fmt[0]}{len(data) // size}{fmt[1]}", data[:len(data) // size * size])
    try:
        return _expand(values, 0, fmt, limit, [MAX_SEGMENTS], None, None, 0)
    except (IndexError, ValueError, ZeroDivisionError):
        return None


def _expand(data: tuple, base: int, fmt: str, limit: int, budget: list, nr_segments: int | None,
            last_value: int | None, depth: int) -> list[int]:
    """pydicom's expansion of data[base:], stopping once it has more than `limit` entries."""
    if depth > MAX_DEPTH:
        raise ValueError("indirect segments nested too deep")
    lut: list[int] = []
    offset, read = base, 0
    while offset + 1 < len(data) and len(lut) <= limit:
        budget[0] -= 1
        if budget[0] < 0:
            raise ValueError("too many segments")
        opcode, length = data[offset], data[offset + 1]
        offset += 2
        if opcode == 0:  # discrete
            lut.extend(data[offset:offset + length])
            offset += length
        elif opcode == 1:  # linear, from the last entry (or the indirect segment's)
            y0 = lut[-1] if lut else last_value
            if not y0 and not lut:
                raise ValueError("the first segment cannot be a linear segment")
            y1 = data[offset]
            offset += 1
            if y0 == y1:
                lut.extend([y1] * length)
            else:
                step = (y1 - y0) / length
                lut.extend(int(v) for v in np.around(np.linspace(y0 + step, y1, length)))
        elif opcode == 2:  # indirect: `length` segments from an offset (in entries of `fmt`, as pydicom reads it)
            if not lut:
                raise ValueError("the first segment cannot be an indirect segment")
            if "B" in fmt:
                ii = [data[offset + k] for k in ([3, 2, 1, 0] if "<" in fmt else [2, 3, 0, 1])]
                at = (ii[0] << 8 | ii[1]) << 16 | (ii[2] << 8 | ii[3])
                offset += 4
            else:
                at = data[offset + 1] << 16 | data[offset]
                offset += 2
            lut.extend(_expand(data, base + at, fmt, limit - len(lut), budget, length, lut[-1], depth + 1))
        else:
            raise ValueError(f"unknown segment type {opcode}")
        read += 1
        if read == nr_segments:
            break
    return lut
