"""7-Zip archives (.7z), read member by member into memory with py7zr (never extracted to disk).

Datasets are often shared as 7z. A 7z is a container like a zip: every member is an input of its own
(`set.7z:study/1.dcm`), with the same caps: `zip_max_entries`, `max_input_bytes` per member, `zip_max_bytes` in
all, `max_depth` of nesting. Sizes are checked from the header before anything is inflated (py7zr never writes
more than a member's declared size). Members of a solid block can only be had in order, so one thread inflates
the archive once, front to back, and hands the members over one at a time; it stops when the reader stops.
"""

from __future__ import annotations

import io
import queue
import re
import threading
from typing import Callable, Iterator, Union

from .base import Blob, Budget, Context, Item, ItemError, SourcePlugin
from .registry import register

MAGIC = b"7z\xbc\xaf\x27\x1c"
MAX_ENTRIES = 1 << 16  # entries a 7z header may list, whatever zip_max_entries allows
_HANDOFF_WAIT = 0.1  # seconds between checks that the reader is still there


def accepts(head: bytes, blob: Blob) -> bool:
    return head.startswith(MAGIC)


def split_7z(blob: Blob, ctx: Context) -> Iterator[Callable[[], Iterator[Item]]]:
    """The archive as independent units of work in archive order: one per member, one per note."""
    from .files import member_units

    yield from member_units(_walk(blob, ctx), ctx)


def _py7zr():
    import py7zr
    from py7zr import archiveinfo

    # py7zr's own header caps allow an 8M-entry list (~500 bytes each as it reads them: 1.5M took 770 MB and
    # 40 s) from a 256 MB decoded header; these keep it to tens of MB before our zip_max_entries check.
    archiveinfo.MAX_NUMFILES = min(archiveinfo.MAX_NUMFILES, MAX_ENTRIES)
    archiveinfo.MAX_SUBSTREAMS = min(archiveinfo.MAX_SUBSTREAMS, MAX_ENTRIES)
    archiveinfo.MAX_HEADER_SIZE = min(archiveinfo.MAX_HEADER_SIZE, 64 << 20)
    return py7zr


def _walk(blob: Blob, ctx: Context) -> Iterator[Union[Item, Blob]]:
    """Notes about the archive and the members to open (as Blobs), in archive order."""
    from .files import is_hidden

    limits, origin = ctx.limits, blob.origin
    if blob.depth > limits.max_depth:
        yield ItemError(origin, "", f"archive nested deeper than max_depth ({limits.max_depth}); not opened")
        return
    budget = blob.budget or Budget(limits.zip_max_bytes)
    py7zr = _py7zr()
    try:
        archive = py7zr.SevenZipFile(io.BytesIO(blob.data), mode="r")
    except py7zr.PasswordRequired:
        yield ItemError(origin, "", "encrypted archive (its file list too); not read")
        return
    except py7zr.UnsupportedCompressionMethodError as exc:
        yield ItemError(origin, "", _failed(exc))
        return
    except Exception as exc:
        yield ItemError(origin, "", f"not a readable 7z archive: {_first_line(exc)}")
        return
    with archive:
        infos = archive.list()
        if len(infos) > limits.zip_max_entries:
            yield ItemError(origin, "", f"archive has {len(infos):,} entries, over the zip_max_entries cap "
                                        f"of {limits.zip_max_entries:,}; not opened")
            return
        if not any(not i.is_directory for i in infos):
            yield ItemError(origin, "", "archive holds no files", skipped=True)
            return
        if archive.needs_password():
            yield ItemError(origin, "", "encrypted archive; not read")
            return
        plan: list = []  # in archive order: notes, and the names of members to read
        wanted: dict[str, str] = {}  # member name → where (origin:name)
        written: dict[str, str] = {}  # the name py7zr hands a member over by → member name
        seen: set[str] = set()
        left = budget.left  # declared sizes: py7zr never inflates a member past its own
        for info in infos:
            name = info.filename
            parts = [p for p in re.split(r"[\\/]", name) if p and p != "."]
            where = f"{origin}:{'/'.join(parts)}"
            out = _output_name(name)
            if out is None or name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts:
                plan.append(ItemError(where, "", "unsafe member name (absolute path or '..'); not read"))
                continue
            if info.is_directory or not parts or any(is_hidden(p) for p in parts) or where in seen:
                continue
            seen.add(where)
            if info.is_symlink:
                plan.append(ItemError(where, "", "a link, not read", skipped=True))
                continue
            if ctx.skip is not None and ctx.skip(where):  # done by an earlier run: inflated in passing, not
                left -= info.uncompressed  # kept, and charged as then, so a resumed run stops where a whole one does
                budget.left -= info.uncompressed
                if left < 0:
                    break
                continue
            if info.uncompressed > limits.max_input_bytes:
                plan.append(ItemError(where, "", f"member is {info.uncompressed:,} bytes, over the max_input_bytes "
                                                 f"cap of {limits.max_input_bytes:,}; not read"))
                continue
            left -= info.uncompressed
            if left < 0:
                plan.append(ItemError(where, "", f"archive holds more than the zip_max_bytes cap of "
                                                 f"{limits.zip_max_bytes:,}; the rest is not read"))
                break
            plan.append(name)
            wanted[name] = where
            written[out] = name
        members = _members(archive, list(wanted), ctx) if wanted else iter(())
        early: dict[str, bytes] = {}  # members py7zr hands over before their turn (empty ones come first)
        try:
            for entry in plan:
                if isinstance(entry, ItemError):
                    yield entry
                    continue
                while entry not in early:
                    got = next(members, None)
                    if got is None:
                        break
                    out, data = got
                    if isinstance(data, Exception):
                        yield ItemError(origin, "", _failed(data))
                        return
                    if written.get(out) in wanted:  # (a second member of the same name is dropped)
                        early[written.pop(out)] = data
                where = wanted.pop(entry)
                data = early.pop(entry, None)
                if data is None:
                    yield ItemError(where, "", "member missing from the archive's data; not read")
                    continue
                budget.left -= len(data)
                member = Blob(where, data, name=entry.rsplit("/", 1)[-1], depth=blob.depth + 1, budget=budget)
                if accepts(data[:6], member):
                    if member.depth > limits.max_depth:
                        yield ItemError(where, "", f"archive nested deeper than max_depth ({limits.max_depth}); "
                                                   "not opened")
                        continue
                    yield from _walk(member, ctx)  # nested archives share the outer budget
                else:
                    yield member
        finally:
            members.close() if hasattr(members, "close") else None


def _failed(exc: Exception) -> str:
    from py7zr.exceptions import CrcError, UnsupportedCompressionMethodError

    if isinstance(exc, UnsupportedCompressionMethodError):
        return "7z archive uses a compression method py7zr cannot inflate; not read"
    why = (f"checksum mismatch in {exc.args[2]}" if isinstance(exc, CrcError) and len(exc.args) == 3
           else _first_line(exc))
    return f"7z archive damaged or cut short: {why}; the rest is not read"


def _output_name(name: str) -> str | None:
    """The name py7zr hands a member over by (None for one it refuses, which would stop the whole archive)."""
    from py7zr.helpers import get_sanitized_output_path

    try:
        return get_sanitized_output_path(name, None).as_posix()
    except Exception:
        return None


class _Stopped(Exception):
    """The reader went away: inflating stops at the next write."""


def _members(archive, names: list[str], ctx: Context) -> Iterator[tuple[str, Union[bytes, Exception]]]:
    """(name, bytes) of the named members in archive order, inflated by one thread that waits for each to be
    taken before it goes on; (name, exception) once if the archive turns out damaged."""
    from py7zr.io import Py7zIO, WriterFactory

    handoff: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    done: list = []  # the member inflated last, handed over once its checksum has passed (py7zr checks it
    # after closing the member: the next member's start, or the end of the archive, says it passed)

    def give(entry) -> None:
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=_HANDOFF_WAIT)
                return
            except queue.Full:
                continue
        raise _Stopped()

    class Member(Py7zIO):
        def __init__(self, filename: str):
            self.filename, self.buffer = filename, bytearray()

        def write(self, s) -> int:
            if stop.is_set() or (ctx.cancel is not None and ctx.cancel.is_set()):
                raise _Stopped()
            self.buffer += s
            return len(s)

        def read(self, size=None) -> bytes:
            return b""

        def seek(self, offset: int, whence: int = 0) -> int:
            return 0

        def flush(self) -> None:
            pass

        def size(self) -> int:
            return len(self.buffer)

        def close(self) -> None:  # the member is inflated
            done.append((self.filename, bytes(self.buffer)))
            self.buffer = bytearray()

    def checked() -> None:
        while done:
            give(done.pop(0))

    class Members(WriterFactory):
        def create(self, filename: str) -> Py7zIO:
            checked()
            return Member(filename)

    def run() -> None:
        try:
            archive.extract(targets=names, factory=Members())
            checked()
            give(None)
        except _Stopped:
            return
        except Exception as exc:
            try:
                give(("", exc))
            except _Stopped:
                return

    thread = threading.Thread(target=run, name="medimg-7z", daemon=True)
    thread.start()
    try:
        while True:
            try:
                entry = handoff.get(timeout=_HANDOFF_WAIT)
            except queue.Empty:
                if not thread.is_alive() and handoff.empty():
                    return
                continue
            if entry is None:
                return
            yield entry
    finally:
        stop.set()
        thread.join()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


register(SourcePlugin("7z", accepts, priority=22, split=split_7z))
