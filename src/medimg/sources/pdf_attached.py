"""Files attached to a PDF: a portfolio's files, the document's EmbeddedFiles name tree (followed through its
/Kids), and file-attachment annotations (the paperclip) on the pages read. Each is opened by whichever source
reads it, as a file inside the PDF: its items keep the PDF as their origin, their locator starting
`attachment NAME` (`attachment ct.jpg`, `attachment study.pdf, page 2, image 1`; a file in an attached archive
`attachment pack.zip:a/ct.png`).

Caps: at most `zip_max_entries` attachments, each at most `max_input_bytes` once inflated (read with a bounded
inflate, so a small bomb never grows in memory), all of them within `zip_max_bytes` (the budget a container
the PDF came in draws from), nested at most `max_depth` deep. A stream compressed otherwise than with Flate is
an error of its own; unknown content a skipped note, as a member of an archive.
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Iterator

import pymupdf
from pymupdf import mupdf

from .base import Blob, Budget, Context, Item, ItemError


@dataclass
class Attached:
    """One attached file: its name and bytes, or why it is not read."""

    name: str
    data: bytes = b""
    error: str = ""
    budget: Budget | None = None  # zip_max_bytes left, for containers inside it


def attached_files(doc: pymupdf.Document, npages: int, ctx: Context) -> list[tuple[str, int]] | Attached:
    """(name, stream xref) of the files attached to the document and to its first `npages` pages, each once (one
    more than `zip_max_entries` at most); an Attached error when they cannot be listed."""
    try:
        return _filespecs(doc, npages, ctx.limits.zip_max_entries + 1)
    except Exception as exc:  # a damaged name tree or annotation: the pages' images still come out
        return Attached("", error=f"could not list the attached files: {str(exc).splitlines()[0][:200]}")


def attachments(doc: pymupdf.Document, specs: list | Attached, blob: Blob, ctx: Context) -> Iterator[Attached]:
    """The files `attached_files` listed, read one at a time under the caps."""
    if isinstance(specs, Attached):
        yield specs
        return
    limits = ctx.limits
    budget = blob.budget or Budget(limits.zip_max_bytes)
    if specs and blob.depth + 1 > limits.max_depth:
        yield Attached("", error=f"{len(specs)} attached file(s) not opened: nested deeper than max_depth "
                                 f"({limits.max_depth})")
        return
    from .files import UniqueNames

    names = UniqueNames(name for name, _ in specs if name)  # a name given again: `a (2).png`, as in a zip
    for n, (name, stream) in enumerate(specs, 1):
        if n > limits.zip_max_entries:
            yield Attached("", error=f"more than {limits.zip_max_entries:,} attached files (zip_max_entries): "
                                     "the rest are not opened")
            return
        name = names(name or f"attachment-{n}")
        try:
            data = _read(doc, stream, min(limits.max_input_bytes, budget.left))
        except _Over:
            if budget.left < limits.max_input_bytes:
                yield Attached(name, error=f"attached files inflate past the zip_max_bytes cap of "
                                           f"{limits.zip_max_bytes:,}; the rest are not opened")
                return
            yield Attached(name, error=f"attached file is over the max_input_bytes cap of "
                                       f"{limits.max_input_bytes:,} bytes; not read")
            continue
        except Exception as exc:
            yield Attached(name, error=f"could not read the attached file: {str(exc).splitlines()[0][:200]}")
            continue
        budget.left -= len(data)
        yield Attached(name, data, budget=budget)


def open_attached(att: Attached, blob: Blob, ctx: Context) -> Iterator[Item]:
    """The items of one attached file, as found inside the PDF `blob`."""
    from .files import open_member

    where = f"attachment {att.name}" if att.name else ""
    if att.error:
        yield ItemError(blob.origin, where, att.error)
        return
    member = Blob(f"{blob.origin}:{att.name}", att.data, name=att.name, depth=blob.depth + 1,
                  budget=att.budget)
    for item in open_member(member, ctx):
        # a file inside an attached archive keeps its path: `attachment pack.zip:a/ct.png`
        inner = item.origin[len(member.origin):] if item.origin.startswith(member.origin + ":") else ""
        here = where + inner
        locator = f"{here}, {item.locator}" if item.locator else here
        yield dataclasses.replace(item, origin=blob.origin, locator=locator)


class _Over(Exception):
    """More bytes than the cap allows."""


def _filespecs(doc: pymupdf.Document, npages: int, most: int) -> list[tuple[str, int]]:
    """(name, stream xref) of each file in the EmbeddedFiles name tree, then of the file-attachment annotations on
    the first `npages` pages, each stream once; at most `most`, from at most 10 × `most` objects looked at."""
    pdf = mupdf.pdf_document_from_fz_document(doc.this)
    found: dict[int, str] = {}
    N = mupdf.pdf_new_name

    def add(spec) -> None:
        for key in ("F", "UF"):
            stream = mupdf.pdf_dict_getl(spec, N("EF"), N(key))
            if mupdf.pdf_is_stream(stream):
                break
        else:
            return
        names = [mupdf.pdf_to_text_string(mupdf.pdf_dict_get(spec, N(key))) for key in ("UF", "F")]
        name = next((re.split(r"[\\/]", n)[-1].strip()[:200] for n in names if n.strip()), "")
        found.setdefault(mupdf.pdf_to_num(stream), name)

    # objects looked at (name tree nodes, names, kids, annotations; the same one again too): a 2 MB name tree or
    # page listing one object 400,000 times took 11-17 s under the MuPDF lock, and the time grew with the size
    looks = 10 * most
    todo, seen = deque([mupdf.pdf_dict_getl(mupdf.pdf_trailer(pdf), N("Root"), N("Names"), N("EmbeddedFiles"))]), set()
    while todo and len(found) < most and looks > 0:
        node = todo.popleft()
        looks -= 1
        if mupdf.pdf_is_indirect(node):
            if mupdf.pdf_to_num(node) in seen:
                continue
            seen.add(mupdf.pdf_to_num(node))
        names, kids = mupdf.pdf_dict_get(node, N("Names")), mupdf.pdf_dict_get(node, N("Kids"))
        pairs = min(mupdf.pdf_array_len(names) // 2, looks)
        for i in range(pairs):
            add(mupdf.pdf_array_get(names, 2 * i + 1))
        looks -= pairs
        room = max(0, looks - len(todo))  # no more queued than can be looked at
        todo.extend(mupdf.pdf_array_get(kids, i) for i in range(min(mupdf.pdf_array_len(kids), room)))
    for pno in range(npages):
        if len(found) >= most or looks <= 0:
            break
        annots = mupdf.pdf_dict_get(mupdf.pdf_lookup_page_obj(pdf, pno), N("Annots"))
        count = min(mupdf.pdf_array_len(annots), looks)
        looks -= count + 1
        for i in range(count):
            annot = mupdf.pdf_array_get(annots, i)
            if mupdf.pdf_to_name(mupdf.pdf_dict_get(annot, N("Subtype"))) == "FileAttachment":
                add(mupdf.pdf_dict_get(annot, N("FS")))
    return [(name, stream) for stream, name in list(found.items())[:most]]


def _read(doc: pymupdf.Document, stream: int, cap: int) -> bytes:
    """The file's bytes: stored plain or Flate-compressed, inflated no further than `cap` (else _Over)."""
    filters = re.findall(r"/(\w+)", doc.xref_get_key(stream, "Filter")[1])
    raw = doc.xref_stream_raw(stream)
    if not filters:
        data = raw
    elif filters == ["FlateDecode"]:
        inflater = zlib.decompressobj()
        data = inflater.decompress(raw, cap + 1)
    else:
        raise ValueError(f"compressed with {'+'.join(filters)}, which is not read here")
    if len(data) > cap:
        raise _Over()
    return data
