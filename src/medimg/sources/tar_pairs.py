"""A tar's detached headers (.mhd, .nhdr, NIfTI/Analyze .hdr) read with their data files, as in a folder or zip
(a 7z's too, read as a compressed tar is).

A tar is read once, in archive order, from a stream, and its order is the folder listing's (either half may
come first). A header that comes first waits (it is small) until its data file comes in the same folder; a
data file that comes first (`.raw`, `.zraw`, `.img`, `.dat`, each maybe `.gz`) waits for a header naming it,
its bytes kept: at most `max_input_bytes` of such data files at once in a compressed tar (the oldest goes on
as a member of its own past that), while a plain tar's are read again from the archive's bytes. The two are
given one after the other where the second came: the header with a `sibling` giving those bytes (charged to
`zip_max_bytes` as the stream read them; a second header's read of them is charged again, as a zip's is), the
data file as the note a folder gives it. Whatever still waits at the end goes on as it is.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Iterator, Union

from .base import Blob, Budget, Context, Item, ItemError

HEADERS_HELD = 16 << 20  # bytes of headers waiting for their data files at once
_HEADERS = (".mhd", ".nhdr", ".hdr")
_DATA = (".raw", ".zraw", ".img", ".dat")
_ABSENT = "not in the same folder of the archive"


@dataclass
class Seen:
    """What the walk learns for the headers: where a plain tar's members lie, and why a member was not read
    (by its path in the archive)."""

    spans: dict[str, tuple[int, int]] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)


def pairable(name: str) -> bool:
    """Whether a member may be a detached header or the data file one names (read even when done before)."""
    low = name.lower()
    return low.endswith(_HEADERS) or low.removesuffix(".gz").endswith(_DATA)


def _noted(name: str, named: str) -> bool:
    """Whether a data file `name` that a header names (`named`) is only a note, as archive._header_of says."""
    from .files import data_stem

    return data_stem(name) != name and name in (named, named + ".gz")


@dataclass
class _Waiting:
    at: int  # its place in the archive
    part: Blob
    done: bool  # done by an earlier run: read for the other half, not given again
    named: str = ""  # a header's data file
    span: tuple[int, int] | None = None  # a plain tar's data file: where its bytes lie (none kept here)


def paired(parts: Iterator[Union[Item, Blob]], archive: Blob, ctx: Context, seen: Seen,
           compressed: bool) -> Iterator[Union[Item, Blob]]:
    """The walk's parts with each detached header given its data file (`Blob.sibling`) and that file's row the
    note naming the header."""
    from .files import SNIFF_BYTES, data_file_named

    cap = ctx.limits.max_input_bytes
    headers: dict[tuple[str, str], list[_Waiting]] = {}  # by (folder, the data file they name)
    data: OrderedDict[tuple[str, str], _Waiting] = OrderedDict()  # data files waiting, oldest first
    held = header_bytes = at = 0
    prefix = len(archive.origin) + 1

    def key(blob: Blob) -> tuple[str, str]:
        path = blob.origin[prefix:]
        return path.rpartition("/")[0], blob.name

    def give(w: _Waiting, sibling=None) -> Iterator[Union[Item, Blob]]:
        if w.done:
            return
        blob = w.part
        if w.span is not None:
            start, size = w.span
            blob = Blob(blob.origin, archive.data[start:start + size], name=blob.name, depth=blob.depth,
                        budget=blob.budget)
        if sibling is not None:
            blob.sibling = sibling
        yield blob

    served: dict[str, partial] = {}  # by the data file's path: one for all the headers that read it

    def pair(header: _Waiting, found: _Waiting) -> Iterator[Union[Item, Blob]]:
        path = found.part.origin[prefix:]
        if path not in served:
            reads = _Reads(found.part.budget, ctx)
            if found.span is not None:
                served[path] = partial(_sliced, reads, archive.data, *found.span, found.part.name)
            else:
                served[path] = partial(_given, reads, found.part.data, found.part.name)
        yield from give(header, served[path])

    def missing(header: Blob, named: str, why: str = _ABSENT) -> Callable[[str], bytes]:
        folder = key(header)[0]
        for name in (named, named + ".gz"):
            path = f"{folder}/{name}" if folder else name
            if path in seen.why:
                return partial(_missing, seen.why[path])
            if path in seen.spans and not compressed:  # a plain tar's member read before, not kept
                if path not in served:
                    served[path] = partial(_sliced, _Reads(header.budget, ctx), archive.data, *seen.spans[path], name)
                return served[path]
        return partial(_missing, why)

    def gone(folder: str, name: str, header: str) -> None:
        if compressed:  # a compressed archive's data file is not kept for a header that comes after it
            seen.why[f"{folder}/{name}" if folder else name] = (
                f"read with {header}, which came before this header, and not kept (a compressed archive is read "
                "once): give each header its own data file")

    for part in parts:
        at += 1
        if not isinstance(part, Blob) or not pairable(part.name) or part.depth != archive.depth + 1:
            yield part  # (a member of an archive within, paired there)
            continue
        done = ctx.skip is not None and ctx.skip(part.origin)
        folder, name = key(part)
        named = _named(data_file_named(part.data[:SNIFF_BYTES], name)) if name.lower().endswith(_HEADERS) else None
        if named:
            header = _Waiting(at, part, done, named)
            for candidate in (named, named + ".gz"):
                found = data.pop((folder, candidate), None)
                if found is not None:  # its data file came first and waited
                    held -= len(found.part.data)
                    gone(folder, candidate, name)
                    yield from pair(header, found)
                    if _noted(found.part.name, named):
                        if not found.done:
                            yield _note(found.part.origin, name)
                    else:
                        yield from give(found)
                    break
            else:
                if header_bytes + len(part.data) > HEADERS_HELD:
                    yield from give(header, missing(part, named, f"not in the archive before it, and headers "
                                                    f"waiting for theirs already take {HEADERS_HELD:,} bytes"))
                else:
                    header_bytes += len(part.data)
                    headers.setdefault((folder, named), []).append(header)
            continue
        span = seen.spans.get(part.origin[prefix:]) if not compressed else None
        mine = _Waiting(at, part, done, span=span)
        waiting = headers.pop((folder, name), None) or headers.pop((folder, name.removesuffix(".gz")), None)
        if waiting:  # headers that came first: given now, where their data file came
            gone(folder, name, waiting[0].part.name)
            for header in waiting:
                header_bytes -= len(header.part.data)
                yield from pair(header, mine)
            if _noted(name, waiting[0].named):
                if not done:
                    yield _note(part.origin, waiting[0].part.name)
            else:
                yield from give(mine)
            continue
        if not name.lower().removesuffix(".gz").endswith(_DATA):
            yield from give(mine)
            continue
        if span is not None:
            part.data = b""  # read again from the archive when it is given
        if (before := data.pop((folder, name), None)) is not None:  # a path given again (tar -r): the one before
            held -= len(before.part.data)  # goes on as a member of its own
            yield from give(before)
        data[(folder, name)] = mine
        held += len(part.data)
        while held > cap and data:  # the oldest goes on as a member of its own
            (old_folder, old_name), old = data.popitem(last=False)
            held -= len(old.part.data)
            path = f"{old_folder}/{old_name}" if old_folder else old_name
            seen.why[path] = (f"it came more than the max_input_bytes cap of {cap:,} of data files before its "
                              "header in this archive, which are not all kept; give both files together")
            yield from give(old)
    rest = [w for ws in headers.values() for w in ws] + list(data.values())
    for w in sorted(rest, key=lambda w: w.at):
        if w.named:
            yield from give(w, missing(w.part, w.named))
        else:
            yield from give(w)


def _named(named: str | None) -> str | None:
    """A header's data file when it is a bare file name of one file (else files.read_sibling says why not)."""
    if not named:
        return None
    named = named.strip()
    if "%" in named or named.upper().startswith("LIST") or os.path.basename(named) != named or "\\" in named:
        return None
    return named if named not in ("", ".", "..") else None


def _note(origin: str, header: str) -> ItemError:
    return ItemError(origin, "", f"skipped: the data file of {header}, read with it", skipped=True)


class _Reads:
    """The headers' reads of one data file. The walk charged its bytes to the archive's budget once; each read
    after the first is charged again, as a zip's are, so headers naming one data file cannot read it past
    zip_max_bytes (the reads come from the workers' threads)."""

    def __init__(self, budget: Budget | None, ctx: Context):
        self.budget, self.cap, self.count, self.lock = budget, ctx.limits.zip_max_bytes, 0, threading.Lock()

    def charge(self, size: int) -> None:
        with self.lock:
            self.count += 1
            if self.count > 1 and self.budget is not None:
                if size > self.budget.left:
                    raise ValueError(f"the archive has used up its zip_max_bytes cap of {self.cap:,}")
                self.budget.left -= size


def _given(reads: _Reads, data: bytes, name: str, wanted: str) -> bytes:
    """`Blob.sibling` of a header paired in the walk: its data file's bytes, kept from the walk's read."""
    if wanted != name:
        raise ValueError(_ABSENT)
    reads.charge(len(data))
    return data


def _sliced(reads: _Reads, archive: bytes, start: int, size: int, name: str, wanted: str) -> bytes:
    """`Blob.sibling` of a header in a plain tar: its data file's bytes, where they lie in the archive."""
    if wanted != name:
        raise ValueError(_ABSENT)
    reads.charge(size)
    return archive[start:start + size]


def _missing(why: str, wanted: str) -> bytes:
    raise ValueError(why)
