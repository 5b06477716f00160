"""A tar's detached headers (.mhd, .nhdr, NIfTI/Analyze .hdr) read with their data files, as in a folder or zip
(a 7z's too, read as a compressed tar is).

A tar is read once, in archive order, from a stream, and its order is the folder listing's (either half may
come first). A header that comes first waits (it is small) until its data file comes in the same folder; a
data file that comes first (`.raw`, `.zraw`, `.img`, `.dat`, each maybe `.gz`) waits for a header naming it,
its bytes kept: at most `max_input_bytes` of such data files at once in a compressed tar (the oldest goes on
as a member of its own past that), while a plain tar's are read again from the archive's bytes. The two are
given one after the other where the second came: the header with a `sibling` giving those bytes (charged to
`zip_max_bytes` as the stream read them; a second header's read of them is charged again, as a zip's is), the
data file as the note a folder gives it. Whatever still waits at the end goes on as it is. Of a path given
again, the k-th header reads the k-th data file of its name (its turn), as in a zip (in a plain tar also when another
header of that turn read it first); a header with no data file of its turn reads the first. Only a .hdr reads a gzipped data file (`files.data_file_names`).
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


def _noted(name: str, names: tuple[str, ...]) -> bool:
    """Whether a data file `name` that a header looks for by `names` is only a note, as archive._header_of says."""
    from .files import data_stem

    return data_stem(name) != name and name in names


@dataclass
class _Waiting:
    at: int  # its place in the archive
    part: Blob
    done: bool  # done by an earlier run: read for the other half, not given again
    turn: int  # the k-th member of its path in the archive
    names: tuple[str, ...] = ()  # a header's data file, as it looks it up (files.data_file_names)
    span: tuple[int, int] | None = None  # a plain tar's data file: where its bytes lie (none kept here)
    sibling: Callable[[str], bytes] | None = None  # a data file read by a header: how the next header reads it


def paired(parts: Iterator[Union[Item, Blob]], archive: Blob, ctx: Context, seen: Seen,
           compressed: bool) -> Iterator[Union[Item, Blob]]:
    """The walk's parts with each detached header given its data file (`Blob.sibling`) and that file's row the
    note naming the header. Of a path given again, the k-th header reads the k-th data file of its name, as in a
    zip; a header with no data file of its turn reads the first."""
    from .files import SNIFF_BYTES, data_file_names

    cap = ctx.limits.max_input_bytes
    headers: dict[tuple[str, str], list[_Waiting]] = {}  # by (folder, the data file they name)
    data: OrderedDict[tuple[str, str, int], _Waiting] = OrderedDict()  # by (folder, name, turn), oldest first
    turns: dict[tuple[str, str], int] = {}
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

    served: dict[str, partial] = {}  # a plain tar's data files, by path: one for all the headers that read it

    read_by_turn: dict[tuple[str, str, int], Callable[[str], bytes]] = {}  # data files paired, by (folder, name, turn)

    def pair(header: _Waiting, found: _Waiting) -> Iterator[Union[Item, Blob]]:
        if found.sibling is None:
            path = found.part.origin[prefix:]
            if found.span is not None:
                if path not in served:
                    served[path] = partial(_sliced, _Reads(found.part.budget, ctx), archive.data, *found.span,
                                           found.part.name)
                found.sibling = served[path]
            else:
                found.sibling = partial(_given, _Reads(found.part.budget, ctx), found.part.data, found.part.name)
        if found.turn and found.span is not None:  # a plain tar's: read again from the archive, nothing kept
            read_by_turn.setdefault((*key(found.part), found.turn), found.sibling)
        yield from give(header, found.sibling)

    def missing(header: Blob, names: tuple[str, ...], why: str = _ABSENT, turn: int = 0) -> Callable[[str], bytes]:
        folder = key(header)[0]
        for name in names:  # the data file of its turn, already read by another header of that turn (a.mhd, a.nhdr)
            if (folder, name, turn) in read_by_turn:
                return read_by_turn[(folder, name, turn)]
        for name in names:
            path = f"{folder}/{name}" if folder else name
            if path in seen.why:
                return partial(_missing, seen.why[path])
            if path in seen.spans and not compressed:  # a plain tar's member read before, not kept
                if path not in served:
                    served[path] = partial(_sliced, _Reads(header.budget, ctx), archive.data, *seen.spans[path], name)
                return served[path]
        return partial(_missing, why)

    def gone(found: _Waiting, header: str) -> None:
        if compressed:  # a compressed archive's data file is not kept for a header that comes after it
            seen.why[found.part.origin[prefix:]] = (
                f"read with {header}, which came before this header, and not kept (a compressed archive is read "
                "once): give each header its own data file")

    def wait(w: _Waiting) -> Iterator[Union[Item, Blob]]:
        """A data file kept for a header to come, within `cap` bytes: past that the oldest goes on as it is."""
        nonlocal held
        data[(*key(w.part), w.turn)] = w
        held += len(w.part.data)
        while held > cap and data:  # the oldest goes on as a member of its own
            _, old = data.popitem(last=False)
            held -= len(old.part.data)
            seen.why.setdefault(old.part.origin[prefix:], (
                f"it came more than the max_input_bytes cap of {cap:,} of data files before its header in this "
                "archive, which are not all kept; give both files together"))
            yield from give(old)

    for part in parts:
        at += 1
        if not isinstance(part, Blob) or not pairable(part.name) or part.depth != archive.depth + 1:
            yield part  # (a member of an archive within, paired there)
            continue
        done = ctx.skip is not None and ctx.skip(part.origin)
        folder, name = key(part)
        turn = turns[(folder, name)] = turns.get((folder, name), 0) + 1
        names = data_file_names(part.data[:SNIFF_BYTES], name) if name.lower().endswith(_HEADERS) else ()
        if names and _named(names[0]):
            header = _Waiting(at, part, done, turn, names)
            for candidate in names:
                found = data.pop((folder, candidate, turn), None)
                if found is not None:  # its data file came first and waited
                    held -= len(found.part.data)
                    gone(found, name)
                    yield from pair(header, found)
                    if _noted(found.part.name, names):
                        if not found.done:
                            yield _note(found.part.origin, name)
                    else:
                        yield from give(found)
                    break
            else:
                if header_bytes + len(part.data) > HEADERS_HELD:
                    yield from give(header, missing(part, names, f"not in the archive before it, and headers "
                                                    f"waiting for theirs already take {HEADERS_HELD:,} bytes"))
                else:
                    header_bytes += len(part.data)
                    for candidate in dict.fromkeys(names):  # found by whichever of them comes
                        headers.setdefault((folder, candidate), []).append(header)
            continue
        span = seen.spans.get(part.origin[prefix:]) if not compressed else None
        mine = _Waiting(at, part, done, turn, span=span)
        waiting, later = [], []  # headers that came first: of this data file's turn, and of a later one
        for h in headers.get((folder, name), []):
            (waiting if h.turn == turn else later if h.turn > turn else []).append(h)
        for h in waiting:  # no longer waiting under any of the names it looks for
            for candidate in dict.fromkeys(h.names):
                left = [w for w in headers.pop((folder, candidate), []) if w is not h]
                if left:
                    headers[(folder, candidate)] = left
        if waiting:  # given now, where their data file came
            gone(mine, waiting[0].part.name)
            for header in waiting:
                header_bytes -= len(header.part.data)
                yield from pair(header, mine)
            if _noted(name, waiting[0].names):
                if not done:
                    yield _note(part.origin, waiting[0].part.name)
            else:
                yield from give(mine)
            if compressed and turn == 1 and later:  # kept for a header given again whose own data file may not come
                yield from wait(_Waiting(at, part, True, 0, sibling=mine.sibling))
            continue
        if not name.lower().removesuffix(".gz").endswith(_DATA):
            yield from give(mine)
            continue
        if span is not None:
            part.data = b""  # read again from the archive when it is given
        yield from wait(mine)
    rest = list({id(w): w for ws in headers.values() for w in ws}.values()) + [w for w in data.values() if w.turn]
    for w in sorted(rest, key=lambda w: w.at):
        if w.names:
            first = next((data[k] for c in w.names if (k := (*key(w.part)[:1], c, 0)) in data), None)
            yield from give(w, first.sibling if first is not None else missing(w.part, w.names, turn=w.turn))
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
