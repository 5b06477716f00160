"""Outlook messages (.msg): the files attached to them, through olefile.

A .msg is a compound file (OLE2): each attachment is a storage holding its file name and its bytes, and an
attached message is a storage of the same kind. Like an e-mail or a zip, the message is a container split
into units of work: each attached file is an input of its own (`message.msg:scan.dcm`), opened by
whichever source reads it; attached messages are walked up to `max_depth`. The message text is left out
with one note. Other compound files (Word, Excel and PowerPoint 97–2003, installers) are one skipped note
that says what they are. Attachments are read under `max_input_bytes` each and `zip_max_bytes` in all.
"""

from __future__ import annotations

import io
import logging
import re
from typing import Callable, Iterator, Union

from .base import Blob, Context, Item, ItemError, SourcePlugin, unit
from .registry import register

MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ATTACH = "__attach_version1.0_#"
DATA, EMBEDDED = "__substg1.0_37010102", "__substg1.0_3701000D"
NAMES = ("3707", "3704")  # PidTagAttachLongFilename, PidTagAttachFilename
LEGACY = {"WordDocument": "a Word 97–2003 document", "Workbook": "an Excel 97–2003 workbook",
          "Book": "an Excel 5 workbook", "PowerPoint Document": "a PowerPoint 97–2003 presentation"}

logging.getLogger("olefile").addHandler(logging.NullHandler())  # defects are reported per item instead


SUFFIXES = (".msg", ".doc", ".dot", ".xls", ".xlt", ".ppt", ".pps", ".pot")


def accepts(head: bytes, blob: Blob) -> bool:
    """A compound file named as a message or a legacy Office file. Installers, thumbnail caches and other
    compound files (often large) stay unread notes in folder walks."""
    return head.startswith(MAGIC) and (blob.name or blob.origin).lower().endswith(SUFFIXES)


def open_msg(blob: Blob, ctx: Context) -> Iterator[Item]:
    for task in split_msg(blob, ctx):
        yield from task()


def split_msg(blob: Blob, ctx: Context) -> Iterator[Callable[[], Iterator[Item]]]:
    from .files import open_capped

    for part in _message(blob, ctx):
        yield (unit(part.origin, open_capped, part, ctx, True) if isinstance(part, Blob)
               else unit(part.origin, iter, (part,)))


def _message(blob: Blob, ctx: Context) -> Iterator[Union[Item, Blob]]:
    import olefile

    origin = blob.origin
    try:
        ole = olefile.OleFileIO(io.BytesIO(blob.data))
        entries = ole.listdir(streams=True, storages=True)
    except Exception as exc:
        yield ItemError(origin, "", f"not a readable compound (OLE) file: {exc}")
        return
    with ole:
        top = {e[0] for e in entries}
        if not any(name.startswith("__substg1.0_") for name in top):
            kind = next((what for key, what in LEGACY.items() if key in top), "a compound (OLE) file")
            yield ItemError(origin, "", f"{kind}, not an Outlook message: pictures in this legacy format are "
                                        "not read (saved as .docx, .xlsx or .pptx they are)", skipped=True)
            return
        yield from _attachments(ole, entries, [], blob, ctx, [ctx.limits.zip_max_bytes], blob.depth)
        yield ItemError(origin, "", "Outlook message: its text left out; remote images in it are not fetched",
                        skipped=True)


def _attachments(ole, entries: list[list[str]], prefix: list[str], blob: Blob, ctx: Context, budget: list[int],
                 depth: int) -> Iterator[Union[Item, Blob]]:
    limits, n = ctx.limits, len(prefix)
    storages = sorted({e[n] for e in entries if len(e) > n + 1 and e[:n] == prefix and e[n].startswith(ATTACH)})
    seen: set[str] = set()
    for i, storage in enumerate(storages, 1):
        path = prefix + [storage]
        name = _name(ole, path) or f"attachment-{i}"
        where = f"{blob.origin}:{name}" if name not in seen else f"{blob.origin}:{name} (attachment {i})"
        seen.add(name)
        if ole.exists(path + [EMBEDDED]):
            if depth + 1 > limits.max_depth:
                yield ItemError(where, "", f"messages nested deeper than max_depth ({limits.max_depth}); not opened")
                continue
            yield from _attachments(ole, entries, path + [EMBEDDED], blob, ctx, budget, depth + 1)
            continue
        if not ole.exists(path + [DATA]):
            yield ItemError(where, "", "attachment without data (a link or an embedded OLE object); not read",
                            skipped=True)
            continue
        size = ole.get_size(path + [DATA])
        if size > limits.max_input_bytes:
            yield ItemError(where, "", f"attachment is {size:,} bytes, over the max_input_bytes cap of "
                                       f"{limits.max_input_bytes:,}; not read")
            continue
        if size > budget[0]:
            yield ItemError(where, "", f"message holds more than the zip_max_bytes cap of {limits.zip_max_bytes:,}; "
                                       "the rest is not read")
            return
        budget[0] -= size
        try:
            data = ole.openstream(path + [DATA]).read(size)
        except Exception as exc:
            yield ItemError(where, "", f"could not read the attachment: {exc}")
            continue
        if not data:
            yield ItemError(where, "", "empty attachment", skipped=True)
            continue
        yield Blob(where, data, name=name, depth=depth + 1)


def _name(ole, path: list[str]) -> str:
    """The attachment's file name (long, else 8.3; Unicode or 8-bit), without any folder it claims."""
    for tag in NAMES:
        for kind, encoding in (("001F", "utf-16-le"), ("001E", "cp1252")):
            stream = path + [f"__substg1.0_{tag}{kind}"]
            if ole.exists(stream):
                try:
                    text = ole.openstream(stream).read(1024).decode(encoding, errors="replace").rstrip("\x00")
                except Exception:
                    continue
                base = re.split(r"[\\/]", text)[-1].strip().strip(".")[:200]
                if base:
                    return base
    return ""


register(SourcePlugin("outlook", accepts, open_msg, priority=22, split=split_msg))
