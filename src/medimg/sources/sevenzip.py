"""7-Zip archives (.7z), read member by member into memory with py7zr (never extracted to disk).

Datasets are often shared as 7z. A 7z is a container like a zip: every member is an input of its own
(`set.7z:study/1.dcm`), with the same caps: `zip_max_entries`, `max_input_bytes` per member, `zip_max_bytes` in
all, `max_depth` of nesting. Members of a solid block can only be had in order, so one thread inflates the
archive once, front to back, and hands the members over one at a time. Every byte it inflates counts against
the archive's budget, kept or passed over (a member over its cap, one a resumed run has done),
as in a tar, and it stops at its next write when the reader stops or the run is cancelled. py7zr's Deflate and
Zstandard decoders inflate a whole block of input whatever the size asked for (a 33 KB archive, or its packed
header, could make gigabytes): they are replaced by ones that stop at it; Deflate64's cannot be, so it is refused,
and so is PPMd, whose decoder crashes the whole process on damaged data. Members are handed to py7zr by their
place in the archive, not their names: py7zr renames a second member of the same name (here it is
`a (2).png`, as in a zip), and would inflate a directory, socket or unsafe name that holds data unseen
(uncounted) to reach a later member. A detached header is read with its data file from the same folder,
whichever comes first, as in a compressed tar (`tar_pairs`).
"""

from __future__ import annotations

import io
import queue
import re
import threading
from typing import Callable, Iterator, Union

from .base import HIDDEN_ONLY, Blob, Budget, Context, Item, ItemError, SourcePlugin
from .registry import JOIN, register, split_part
from .tar_pairs import Seen, pairable, paired

MAGIC = b"7z\xbc\xaf\x27\x1c"
MAX_ENTRIES = 1 << 16  # entries a 7z header may list, whatever zip_max_entries allows
_HANDOFF_WAIT = 0.1  # seconds between checks that the reader is still there
_CHUNK = 1 << 20  # bytes py7zr inflates at a time (it would take up to all free memory less 256 MB)


def accepts(head: bytes, blob: Blob) -> bool:
    return head.startswith(MAGIC)


def split_7z(blob: Blob, ctx: Context) -> Iterator[Callable[[], Iterator[Item]]]:
    """The archive as independent units of work in archive order: one per member, one per note."""
    from .files import member_units

    yield from member_units(_paired(blob, ctx), ctx)


def _paired(blob: Blob, ctx: Context) -> Iterator[Union[Item, Blob]]:
    """`_walk` with each detached header given its data file from the same folder, as in a compressed tar."""
    seen = Seen()  # why a member was not read, for a header naming it

    def why(where: str, text: str) -> None:
        seen.why[where[len(blob.origin) + 1:]] = text

    return paired(_walk(blob, ctx, why), blob, ctx, seen, compressed=True)


def _py7zr():
    import py7zr
    from py7zr import archiveinfo, compressor
    from py7zr.properties import FILTER_DEFLATE, FILTER_DEFLATE64, FILTER_PPMD, FILTER_ZSTD

    classes = compressor.algorithm_class_map
    if not getattr(classes[FILTER_DEFLATE][1], "bounded", False):
        classes[FILTER_DEFLATE] = (classes[FILTER_DEFLATE][0], _bounded(compressor, "deflate"))
        classes[FILTER_ZSTD] = (classes[FILTER_ZSTD][0], _bounded(compressor, "zstd"))
        classes[FILTER_DEFLATE64] = (classes[FILTER_DEFLATE64][0], _refused("Deflate64", "its decoder takes no bound"))
        # pyppmd segfaults on a damaged model size: one such archive would end the batch, or the server
        classes[FILTER_PPMD] = (classes[FILTER_PPMD][0], _refused("PPMd", "its decoder can crash on damaged data"))

    # py7zr's own header caps allow an 8M-entry list (~500 bytes each as it reads them: 1.5M took 770 MB and
    # 40 s) from a 256 MB decoded header; these keep it to tens of MB before our zip_max_entries check.
    archiveinfo.MAX_NUMFILES = min(archiveinfo.MAX_NUMFILES, MAX_ENTRIES)
    archiveinfo.MAX_SUBSTREAMS = min(archiveinfo.MAX_SUBSTREAMS, MAX_ENTRIES)
    archiveinfo.MAX_HEADER_SIZE = min(archiveinfo.MAX_HEADER_SIZE, 64 << 20)
    archiveinfo.read_utf16 = _read_name  # a name that is not valid UTF-16 must not lose the whole archive
    py7zr.py7zr.get_memory_limit = _CHUNK.__int__  # inflate a megabyte at a time, not hundreds
    return py7zr


def _bounded(compressor, method: str):
    """A py7zr decoder class that makes no more than the size asked for each call, keeping the input it has not
    used (Deflate: zlib's unconsumed tail; Zstandard: the decoder's own buffer)."""
    if method == "deflate":
        class Bounded(compressor.DeflateDecompressor):
            def decompress(self, data, max_length: int = -1) -> bytes:
                inflater = self._decompressor
                return inflater.decompress(inflater.unconsumed_tail + bytes(data), max(max_length, 0))
    else:
        class Bounded(compressor.ZstdDecompressor):
            def decompress(self, data, max_length: int = -1) -> bytes:
                return self.decompressor.decompress(data, max_length)
    Bounded.bounded = True
    return Bounded


def _refused(method: str, why: str):
    """A py7zr decoder class that refuses to start."""
    from py7zr.exceptions import UnsupportedCompressionMethodError

    class Refused:
        def __init__(self, *args, **kwargs):
            raise UnsupportedCompressionMethodError(None, f"7z archive compressed with {method}, which is not "
                                                          f"inflated here ({why}); not read")
    return Refused


def _read_name(file) -> str:
    """A NUL-ended UTF-16 name, with U+FFFD for what does not decode."""
    from py7zr.exceptions import Bad7zFile

    raw = bytearray()
    while (ch := file.read(2)) != b"\0\0":
        if len(ch) < 2 or len(raw) > 1 << 17:
            raise Bad7zFile("archive header cut short in a member's name")
        raw += ch
    return raw.decode("utf-16-le", errors="replace")


def _walk(blob: Blob, ctx: Context, why: Callable[[str, str], None]) -> Iterator[Union[Item, Blob]]:
    """Notes about the archive and the members to open (as Blobs), in archive order; `why(where, text)` is told
    why a member over its cap was not read."""
    from .files import UniqueNames, is_hidden

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
        part = f"; if it is the first part of a split archive, it is {JOIN}" if split_part(blob.name or origin) else ""
        cut = _cut(blob.data)
        text = (cut + ("" if part else " (download it again?)")) if cut else _first_line(exc)
        yield ItemError(origin, "", f"not a readable 7z archive: {text}{part}")
        return
    with archive:
        try:
            infos, files = archive.list(), archive.files
        except Exception as exc:  # an entry both a directory and a file, say
            yield ItemError(origin, "", f"not a readable 7z archive: {_first_line(exc)}")
            return
        if len(infos) > limits.zip_max_entries:
            yield ItemError(origin, "", f"archive has {len(infos):,} entries, over the zip_max_entries cap "
                                        f"of {limits.zip_max_entries:,}; not opened")
            return
        if not any(not i.is_directory for i in infos):
            yield ItemError(origin, "", "archive holds no files", skipped=True)
            return
        if over := budget.entries_refused(len(infos), limits):
            yield ItemError(origin, "", f"archive not opened: {over}")
            return
        if archive.needs_password():
            yield ItemError(origin, "", "encrypted archive; not read")
            return
        done = False  # a member not hidden met (read, refused or done by an earlier run)
        plan: list = []  # in archive order: notes, and the keys (places in the archive) of members to read
        wanted: dict[str, tuple[str, str]] = {}  # member key → (where: origin:name, its file name)
        paths = [[p for p in re.split(r"[\\/]", i.filename) if p and p != "."] for i in infos]
        names = UniqueNames("/".join(parts) for parts, entry in zip(paths, files) if not entry.is_directory)
        for i, info in enumerate(infos):
            name, entry, parts = info.filename, files[i], paths[i]
            if entry.is_directory or entry.is_socket or entry.is_junction or not parts:
                continue
            if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts:
                plan.append(ItemError(f"{origin}:{name}", "", "unsafe member name (absolute path or '..'); not read"))
                continue
            if any(is_hidden(p) for p in parts):
                continue
            where = f"{origin}:{names('/'.join(parts))}"  # a name given again: `a (2).png`
            done = True
            if info.is_symlink:
                plan.append(ItemError(where, "", "a link, not read", skipped=True))
            elif ctx.skip is not None and not pairable(parts[-1]) and ctx.skip(where):  # done by an earlier run
                pass
            elif info.uncompressed > limits.max_input_bytes:
                why(where, f"over the max_input_bytes cap of {limits.max_input_bytes:,}")
                plan.append(ItemError(where, "", f"member is {info.uncompressed:,} bytes, over the max_input_bytes "
                                                 f"cap of {limits.max_input_bytes:,}; not read"))
            else:
                plan.append(str(i))
                wanted[str(i)] = (where, parts[-1])
        if not wanted:
            yield from plan if done or plan else [ItemError(origin, "", HIDDEN_ONLY, skipped=True)]  # as a folder says
            return
        # an entry is inflated only when a kept one comes after it in its solid block (or it is kept itself),
        # whatever it is (a directory or an unsafe name that holds data too), and every byte of it is charged
        folders = [id(f.folder) if f.folder is not None else None for f in files]
        last_kept = {}  # solid block → the place of its last member kept
        for key in wanted:
            last_kept[folders[int(key)]] = int(key)
        keys = {i: str(i) if str(i) in wanted else "" for i, f in enumerate(files)
                if str(i) in wanted or not f.emptystream and last_kept.get(folders[i], -1) > i}
        members = _members(archive, keys, ctx, budget)
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
                    name, data = got
                    if isinstance(data, _Spent):
                        yield ItemError(origin, "", f"archive inflates past the zip_max_bytes cap of "
                                                    f"{limits.zip_max_bytes:,}; the rest is not read")
                        return
                    if isinstance(data, Exception):
                        yield ItemError(origin, "", _failed(data))
                        return
                    early[name] = data
                if entry not in early:
                    if ctx.cancel is not None and ctx.cancel.is_set():
                        return  # the run was stopped
                    yield ItemError(wanted[entry][0], "", "member missing from the archive's data; not read")
                    continue
                data = early.pop(entry)
                where, name = wanted[entry]
                member = Blob(where, data, name=name, depth=blob.depth + 1, budget=budget)
                if accepts(data[:6], member):
                    if member.depth > limits.max_depth:
                        yield ItemError(where, "", f"archive nested deeper than max_depth ({limits.max_depth}); "
                                                   "not opened")
                        continue
                    yield from _paired(member, ctx)  # nested archives share the outer budget
                else:
                    yield member
        finally:
            members.close()


def _failed(exc: Exception) -> str:
    from py7zr.exceptions import ArchiveError, CrcError, UnsupportedCompressionMethodError

    if isinstance(exc, UnsupportedCompressionMethodError):
        said = exc.args[-1] if exc.args else ""
        if isinstance(said, str) and said.startswith("7z archive compressed with"):  # one we refuse (_refused)
            return said
        return "7z archive uses a compression method py7zr cannot inflate; not read"
    if isinstance(exc, CrcError) and len(exc.args) == 3:
        why = f"checksum mismatch in {exc.args[2]}"
    elif isinstance(exc, (ArchiveError, OSError, EOFError, ValueError)) or type(exc).__name__ == "LZMAError":
        why = _first_line(exc)
    else:  # a decoder's own failure (pyppmd raises SystemError with its internals in the text)
        why = "its compressed data could not be inflated"
    return f"7z archive damaged or cut short: {why}; the rest is not read"


class _Stopped(Exception):
    """The reader went away or the run was cancelled: inflating stops at the next write."""


class _Spent(Exception):
    """The archive inflated past its byte budget."""


def _members(archive, keys: dict[int, str], ctx: Context,
             budget: Budget) -> Iterator[tuple[str, Union[bytes, Exception]]]:
    """(key, bytes) of the entries `keys` gives a key (entry index → key, or "" for one inflated only to reach a
    later one), in archive order, inflated by one thread that waits for each to be taken before it goes on;
    every byte inflated is charged to `budget`; ("", exception) once if the archive turns out damaged or over
    budget."""
    from py7zr.io import MemIO, Py7zIO, WriterFactory

    handoff: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    done: list = []  # the member inflated last, handed over once its checksum has passed (py7zr checks it
    # after closing the member: the next member's start, or the end of the archive, says it passed)

    asked = threading.Semaphore(0)  # the reader wants the next member: until then nothing is inflated, so
    # what the reader spends on a member (a nested archive) is charged before the next member's bytes

    def give(entry) -> None:
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=_HANDOFF_WAIT)
                return
            except queue.Full:
                continue
        raise _Stopped()

    def wait() -> None:
        while not asked.acquire(timeout=_HANDOFF_WAIT):
            if stop.is_set():
                raise _Stopped()

    class Member(Py7zIO):
        def __init__(self, name: str):
            self.name, self.buffer = name, bytearray() if name else None  # None: passed over

        def write(self, s) -> int:
            if stop.is_set() or (ctx.cancel is not None and ctx.cancel.is_set()):
                raise _Stopped()
            budget.left -= len(s)
            if budget.left < 0:
                raise _Spent()
            if self.buffer is not None:
                self.buffer += s
            return len(s)

        def read(self, size=None) -> bytes:
            return b""

        def seek(self, offset: int, whence: int = 0) -> int:
            return 0

        def flush(self) -> None:
            pass

        def size(self) -> int:
            return len(self.buffer or b"")

        def close(self) -> None:  # the member is inflated
            if self.buffer is not None:
                done.append((self.name, bytes(self.buffer)))
                self.buffer = None

    def checked() -> None:
        while done:
            give(done.pop(0))
            wait()

    class Members(WriterFactory):
        def create(self, filename: str) -> Py7zIO:
            checked()
            return Member(filename)

    def run() -> None:
        try:
            wait()
            # py7zr's extract() with its naming left out: each entry is registered by its place, and those left
            # out are never inflated (none comes before a registered one in its block)
            factory = Members()
            for i, entry in enumerate(archive.files):
                archive.worker.register_filelike(entry.id, MemIO(keys[i], factory) if i in keys else None)
            archive.worker.extract(archive.fp, None, parallel=False)
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
            asked.release()  # once for each member wanted
            while True:
                try:
                    entry = handoff.get(timeout=_HANDOFF_WAIT)
                    break
                except queue.Empty:
                    if not thread.is_alive() and handoff.empty():
                        return
            if entry is None:
                return
            yield entry
    finally:
        stop.set()
        thread.join()


def _cut(data: bytes) -> str | None:
    """Why a 7z cut short cannot be read, from its start header: py7zr's "next header size 23 exceeds the archive
    size" says neither that nor that the list of members, kept at the end, is what is missing."""
    if len(data) < 32:
        return None
    offset, size = int.from_bytes(data[12:20], "little"), int.from_bytes(data[20:28], "little")
    if 32 + offset + size <= len(data) or offset + size > 1 << 48:  # whole, or no sizes at all: damage
        return None
    return (f"cut short: {len(data):,} bytes of the {32 + offset + size:,} its start says it has, and a 7z keeps the "
            "list of its members at its end, so none can be read")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


register(SourcePlugin("7z", accepts, priority=22, split=split_7z))
