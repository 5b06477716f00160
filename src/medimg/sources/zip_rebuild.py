"""A zip's central directory rebuilt from its local headers, for a zip whose directory is missing or damaged: a
download cut short, a zip still being written. Each member's header comes just before its data, so the members
can be found one after another from the start, as `zip -FF` and streaming readers find them.

A member written with its sizes after its data (a data descriptor: `zip -` from a pipe, Java's ZipOutputStream)
is found by inflating it to the end of its Deflate stream, its output counted and dropped; a stored one by the
descriptor that gives its own distance from the data. The scan stops at `max_entries` + 1 members (the caller
refuses that many), at `max_bytes` inflated in all, or at the first thing that is not a member.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

LOCAL, CENTRAL, END, DESCRIPTOR = b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"PK\x07\x08"
_STEP = 1 << 16  # compressed bytes inflated at a time while finding a member's end
MAX_TRIES = 4096  # descriptor signatures tried as a stored member's end (each a Python step: its data may hold many)


@dataclass
class Rebuilt:
    data: bytes  # the members found, then a directory listing them
    found: int  # members listed
    cut: str | None  # the name of a member the data ends inside, not listed
    why: str  # why the scan stopped where it did, when not at the end of the members


HEADER = "a member's header"  # what `cut` is when the data ends inside a local header, before any name


def rebuild(data: bytes, max_entries: int, max_bytes: int) -> Rebuilt | None:
    """The zip with a new central directory for the members its local headers give; None when it does not
    start with one."""
    if not data.startswith(LOCAL):
        return None
    at, rows, spent, cut, why = 0, [], 0, None, ""
    while data[at:at + 4] == LOCAL and len(rows) <= max_entries:
        if at + 30 > len(data):
            cut = HEADER
            break
        ver, flags, method, time, date, crc, csize, usize, nlen, elen = struct.unpack_from("<HHHHHIIIHH", data, at + 4)
        name, extra = data[at + 30:at + 30 + nlen], data[at + 30 + nlen:at + 30 + nlen + elen]
        start = at + 30 + nlen + elen
        shown = _name(name, flags, len(rows) + 1)
        if 0xFFFFFFFF in (csize, usize):  # ZIP64: the sizes are in its extra field
            sizes = _zip64_sizes(extra)
            if sizes is None:
                why = f"member {shown} has no usable ZIP64 sizes"
                break
            usize, csize = sizes
        end = start + csize
        if flags & 0x08:  # sizes after the data
            found = _ending(data, start, method, max_bytes - spent)
            if found == "cut":
                cut = shown
                break
            if found == "spent":
                why = f"finding the end of member {shown} inflates past the zip_max_bytes cap"
                break
            if found is None:
                why = f"the end of member {shown} (its sizes come after its data) could not be found"
                break
            csize, usize, crc, end, next_at = found
            spent += usize
        else:
            next_at = end
        if end > len(data):
            cut = shown
            break
        if max(csize, usize, at) >= 0xFFFFFFFF:
            why = f"member {shown} is too large to list"
            break
        rows.append(struct.pack("<4sHHHHHHIIIHHHHHII", CENTRAL, ver, ver, flags, method, time, date, crc, csize, usize,
                                nlen, len(_kept(extra)), 0, 0, 0, 0, at) + name + _kept(extra))
        at = next_at
    directory = b"".join(rows)
    return Rebuilt(data[:at] + directory + _end(len(rows), len(directory), at), len(rows), cut, why)


def _ending(data: bytes, start: int, method: int, max_bytes: int) -> tuple[int, int, int, int, int] | str | None:
    """(compressed size, size, CRC, end of data, where the next header starts) of a member whose sizes follow
    its data; "cut" when the data ends inside it, "spent" when it inflates past `max_bytes`, None when its end is
    not found."""
    if method == 8:
        dec, at, out, crc = zlib.decompressobj(-15), start, 0, 0
        while not dec.eof:
            piece = dec.unconsumed_tail or data[at:at + _STEP]
            if not dec.unconsumed_tail:
                at += len(piece)
            if not piece:
                return "cut"
            try:
                chunk = dec.decompress(piece, _STEP)
            except zlib.error:  # not Deflate data (damaged, or encrypted): its end cannot be found
                return None
            out += len(chunk)
            crc = zlib.crc32(chunk, crc)
            if out > max_bytes:
                return "spent"
        end = at - len(dec.unused_data)  # at the end, zlib keeps the rest in unconsumed_tail too
        return end - start, out, crc, end, _after_descriptor(data, end)
    if method == 0:  # the descriptor giving its own distance from the data marks the end
        view, running, done = memoryview(data), 0, start  # the CRC carried on from one candidate to the next
        at, tries = data.find(DESCRIPTOR, start), 0
        while at >= 0 and tries < MAX_TRIES:
            tries += 1
            running, done = zlib.crc32(view[done:at], running), at
            crc, csize = struct.unpack_from("<II", data, at + 4) if at + 12 <= len(data) else (None, None)
            if csize == at - start and running == crc:
                return csize, csize, crc, at, _after_descriptor(data, at)
            at = data.find(DESCRIPTOR, at + 1)
    return None


def _after_descriptor(data: bytes, end: int) -> int:
    """Where the next header starts after the descriptor at `end` (its signature optional; sizes of 4 or 8 bytes)."""
    at = end + 4 if data[end:end + 4] == DESCRIPTOR else end
    for size in (12, 20):
        if data[at + size:at + size + 4] in (LOCAL, CENTRAL, END) or at + size == len(data):
            return at + size
    return at + 12


def _zip64_sizes(extra: bytes) -> tuple[int, int] | None:
    at = 0
    while at + 4 <= len(extra):
        kind, size = struct.unpack_from("<HH", extra, at)
        if kind == 1 and size >= 16:
            return struct.unpack_from("<QQ", extra, at + 4)
        at += 4 + size
    return None


def _kept(extra: bytes) -> bytes:
    """The extra fields but ZIP64's (the rebuilt directory gives the sizes itself)."""
    out, at = b"", 0
    while at + 4 <= len(extra):
        kind, size = struct.unpack_from("<HH", extra, at)
        if kind != 1:
            out += extra[at:at + 4 + size]
        at += 4 + size
    return out


def _end(n: int, size: int, offset: int) -> bytes:
    """The end records: ZIP64's too when there are more members than the classic one counts."""
    if n < 0xFFFF:
        return struct.pack("<4sHHHHIIH", END, 0, 0, n, n, size, offset, 0)
    record = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, size, offset)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, offset + size, 1)
    return record + locator + struct.pack("<4sHHHHIIH", END, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)


def _name(raw: bytes, flags: int, number: int) -> str:
    """A member's name for a message, quoted (UTF-8 when its flag says so, else CP437, as zipfile reads it); its
    number instead when the name holds control characters: the bytes of a damaged header, not a name."""
    text = raw.decode("utf-8" if flags & 0x800 else "cp437", "replace")
    if any(c < " " or c == "\x7f" for c in text) or len(text) > 200:
        return f"#{number} (name unreadable)"
    return repr(text)
