"""Outlook's rich-text attachment (TNEF: `winmail.dat`, `application/ms-tnef`): the files packed in it.

Outlook sends a rich-text message as one `winmail.dat` part holding the message's attachments. Like a zip, it
is a container: each attached file is an input of its own (`letter.eml:winmail.dat:scan.jpg`), opened by
whichever source reads it; an attached message (a TNEF stream of its own) is opened in turn up to `max_depth`.
The layout read here (MS-OXTNEF): the signature 0x223E9F78 and a 2-byte key, then records, each a level byte
(1 message, 2 attachment), a 4-byte attribute id, a 4-byte length, the data and a 2-byte checksum (the sum of
the data's bytes), little-endian. An attachment starts at its attAttachRendData record; its bytes are in
attAttachData (or the MAPI property PR_ATTACH_DATA_BIN / _OBJ of its attAttachment record), its name in
PR_ATTACH_LONG_FILENAME (else PR_ATTACH_FILENAME, PR_DISPLAY_NAME, attAttachTitle). Every length is checked
against what is left: a cut or damaged file gives the attachments read before the damage and an error; data
that fails its checksum is an error for that attachment. Attachments are read under `max_input_bytes` each,
`zip_max_bytes` in all and `zip_max_entries` in count. The text of the message is left out.

Written here rather than with tnefparse (the pure-Python reader on PyPI, last released in 2021): it strips the
trailing zero bytes of an attachment held as PR_ATTACH_DATA_BIN (a black BMP of 14,454 bytes came out as 44),
gives a cut attachment without a word, only logs bad checksums, and copies the rest of the file for each record.
"""

from __future__ import annotations

import struct
from typing import Callable, Iterator, Union

import numpy as np

from .base import Blob, Budget, Context, Item, ItemError, SourcePlugin
from .registry import register

SIGNATURE = b"\x78\x9f\x3e\x22"  # 0x223E9F78, little-endian
WHAT = "Outlook rich-text attachment (TNEF, winmail.dat)"
MAX_RECORDS = 200_000  # Outlook writes about 8 a file; past this a file is damaged or made to be slow

# attributes (the low 16 bits of the id; the high ones give a type)
ATT_DATA, ATT_TITLE, ATT_REND, ATT_MAPI, ATT_OEM_CODEPAGE = 0x800F, 0x8010, 0x9002, 0x9005, 0x9007
# MAPI properties of an attachment
PR_DISPLAY_NAME, PR_ATTACH_DATA, PR_ATTACH_FILENAME, PR_ATTACH_LONG_FILENAME = 0x3001, 0x3701, 0x3704, 0x3707
PT_STRING8, PT_UNICODE, PT_BINARY, PT_OBJECT = 0x001E, 0x001F, 0x0102, 0x000D
_FIXED = {0x0001: 4, 0x0002: 4, 0x000B: 4, 0x0003: 4, 0x0004: 4, 0x000A: 4,  # null, 16-bit (padded), 32-bit
          0x0005: 8, 0x0006: 8, 0x0007: 8, 0x0014: 8, 0x0040: 8, 0x0048: 16}  # 64-bit, times, GUID
IID_IMESSAGE = bytes.fromhex("0703020000000000c000000000000046")  # an attached message: a TNEF stream follows


class Damaged(ValueError):
    pass


def accepts(head: bytes, blob: Blob) -> bool:
    return head.startswith(SIGNATURE) and len(head) >= 6


def split_tnef(blob: Blob, ctx: Context) -> Iterator[Callable[[], Iterator[Item]]]:
    from .files import member_units

    budget = blob.budget or Budget(ctx.limits.zip_max_bytes)
    yield from member_units(_files(blob, ctx, budget), ctx.no_fetching("it came in an Outlook winmail.dat"))


def _files(blob: Blob, ctx: Context, budget: Budget) -> Iterator[Union[Item, Blob]]:
    from .files import UniqueNames

    limits, origin = ctx.limits, blob.origin
    if blob.depth > limits.max_depth:
        yield ItemError(origin, "", f"{WHAT} nested deeper than max_depth ({limits.max_depth}); not opened")
        return
    names, count = UniqueNames(), 0
    records = _records(blob.data)
    attachments = _attachments(records)
    while True:
        try:
            found = next(attachments)
        except StopIteration:
            break
        except Damaged as exc:
            yield ItemError(origin, "", f"{WHAT} damaged: {exc}; the rest is not read")
            return
        count += 1
        if count > limits.zip_max_entries:
            yield ItemError(origin, "", f"{WHAT} has more than {limits.zip_max_entries:,} attachments, the "
                                        "zip_max_entries cap; the rest is not read")
            return
        name, data, problem = found
        where = f"{origin}:{names(name or f'attachment-{count}')}"
        if ctx.skip is not None and ctx.skip(where):  # done by an earlier run, or not the member asked for
            budget.left -= len(data or b"")  # charged, as a zip's, so a resumed run stops where a whole run does
            if budget.left < 0:
                return
            continue
        if problem:
            yield ItemError(where, "", problem)
            continue
        if not data:
            yield ItemError(where, "", "empty attachment (or a link to a file)", skipped=True)
            continue
        refused, stop = budget.refuse(where, len(data), limits, "attachments add up past")
        if refused:
            yield refused
            if stop:
                return
            continue
        yield Blob(where, bytes(data), name=name, depth=blob.depth + 1, budget=budget)
    if not count:
        yield ItemError(origin, "", f"{WHAT} without attached files (its text is left out)", skipped=True)


def _records(data: bytes) -> Iterator[tuple[int, int, memoryview, bool]]:
    """Each record as (level, attribute, data, checksum good); raises Damaged where the file stops making sense."""
    view, pos, n = memoryview(data), 6, 0
    while pos < len(data):
        n += 1
        if n > MAX_RECORDS:
            raise Damaged(f"more than {MAX_RECORDS:,} records")
        if len(data) - pos < 11:
            raise Damaged(f"cut off in the record at byte {pos:,}")
        level, attribute, length = struct.unpack_from("<BII", data, pos)
        if level not in (1, 2):
            raise Damaged(f"the record at byte {pos:,} has level {level} (not 1 or 2)")
        if length > len(data) - pos - 11:
            raise Damaged(f"the record at byte {pos:,} says {length:,} bytes, but {len(data) - pos - 11:,} are left "
                          "(cut off, or a wrong length)")
        body = view[pos + 9:pos + 9 + length]
        (checksum,) = struct.unpack_from("<H", data, pos + 9 + length)
        good = int(np.frombuffer(body, np.uint8).sum(dtype=np.uint64)) & 0xFFFF == checksum
        yield level, attribute & 0xFFFF, body, good
        pos += 11 + length


def _attachments(records: Iterator) -> Iterator[tuple[str, memoryview | None, str]]:
    """Each attachment as (name, bytes, problem), in order: the ones before a Damaged record (the one it cuts
    short too, when its data came whole before it), then it raises."""
    codepage, current = "cp1252", None
    try:
        for level, attribute, body, good in records:
            if level == 1:
                if attribute == ATT_OEM_CODEPAGE and len(body) >= 4 and good:
                    codepage = _codepage(int.from_bytes(body[:4], "little"))
                continue
            if attribute == ATT_REND or current is None:  # a new attachment (any attachment record starts one)
                if current is not None:
                    yield _done(current)
                current = {}
            if attribute == ATT_TITLE:
                current["title"] = _text(body, codepage)
            elif attribute == ATT_DATA:
                current["data"], current["data_good"] = body, good
            elif attribute == ATT_MAPI:
                current["props_good"] = good
                try:
                    _properties(body, codepage, current)
                except Damaged as exc:
                    current["props_error"] = str(exc)
    except Damaged:
        if current is not None and current.get("data") is not None:
            yield _done(current)
        raise
    if current is not None:
        yield _done(current)


def _done(att: dict) -> tuple[str, memoryview | None, str]:
    """(name, bytes, problem): data that fails its checksum, or whose property list is damaged, is not read."""
    from .email_file import safe_name

    name = next((safe_name(att[k]) for k in ("long", "short", "display", "title") if safe_name(att.get(k))), "")
    if att.get("data") is not None:  # attAttachData, as Outlook writes it
        data, problem = att["data"], "" if att["data_good"] else "its data fails TNEF's checksum"
    else:  # in the property list (PR_ATTACH_DATA_BIN / _OBJ)
        data = att.get("bin")
        problem = (f"its property list is damaged ({att['props_error']})" if "props_error" in att and data is None
                   else "" if att.get("props_good", True) else "its property list fails TNEF's checksum")
    return name, data, f"damaged attachment in {WHAT}: {problem}; not read" if problem else ""


def _properties(body: memoryview, codepage: str, out: dict) -> None:
    """The attachment's names and bytes from its MAPI property list, into `out` as they come (those before a
    damaged property are kept); raises Damaged on a length that does not fit or a type not known."""
    pos, end = 0, len(body)

    def take(size: int) -> memoryview:
        nonlocal pos
        if size > end - pos:
            raise Damaged(f"a property says {size:,} bytes at byte {pos:,} of {end:,}")
        pos += size
        return body[pos - size:pos]

    def u32() -> int:
        return int.from_bytes(take(4), "little")

    count = u32()
    if count > end // 8:  # each property takes at least 8 bytes
        raise Damaged(f"{count:,} properties in {end:,} bytes")
    for _ in range(count):
        ptype, pid = struct.unpack("<HH", take(4))
        if pid >= 0x8000:  # a named property: its GUID, then a number or a name
            take(16)
            if u32() == 0:
                take(4)
            else:
                size = u32()
                take(size + -size % 4)
        multi, ptype = ptype & 0x1000, ptype & ~0x1000
        if ptype in _FIXED:
            take(_FIXED[ptype] * (u32() if multi else 1))
            continue
        if ptype not in (PT_STRING8, PT_UNICODE, PT_BINARY, PT_OBJECT):
            raise Damaged(f"unknown property type {ptype:#06x}")
        values = u32()
        if values > end // 4:
            raise Damaged(f"{values:,} values in {end:,} bytes")
        for _ in range(values):
            size = u32()
            value = take(size)
            take(-size % 4)
            if multi:
                continue
            if pid == PR_ATTACH_DATA and ptype in (PT_BINARY, PT_OBJECT):
                if ptype == PT_OBJECT and bytes(value[:16]) == IID_IMESSAGE:
                    value = value[16:]  # an attached message: the TNEF stream after its interface id
                out["bin"] = value
            elif ptype in (PT_STRING8, PT_UNICODE):
                text = bytes(value).decode("utf-16-le", "replace") if ptype == PT_UNICODE else _text(value, codepage)
                key = {PR_ATTACH_LONG_FILENAME: "long", PR_ATTACH_FILENAME: "short", PR_DISPLAY_NAME: "display"}
                if pid in key:
                    out[key[pid]] = text.split("\x00", 1)[0]


def _text(value: memoryview, codepage: str) -> str:
    return bytes(value).split(b"\x00", 1)[0].decode(codepage, "replace")


def _codepage(number: int) -> str:
    import codecs

    try:
        return codecs.lookup("utf-8" if number == 65001 else f"cp{number}").name
    except LookupError:
        return "cp1252"


register(SourcePlugin("tnef", accepts, priority=23, split=split_tnef))
