"""`medimg extract`: every image in the inputs written as a numbered PNG, with a row of manifest.jsonl each.

Units of work (sources.input_tasks: a file, a file in a folder, a zip member, a URL) are read by worker threads,
which save their images as PNG under temporary names; the caller's thread takes the units in input order,
renames each PNG to the next number and writes its row, so names and order are those of one thread.
"""

from __future__ import annotations

import json
import os
import queue
import re
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from PIL import Image

from .output import FolderLock
from .sources import ImageItem, ItemError, Limits, as_limits, is_url, one_input_tasks
from .sources.dicomdir import Given
from .sources.base import reading_unit

MANIFEST = "manifest.jsonl"
PART = ".part-"  # temporary PNGs a worker wrote; renamed to their number once their row is written
NUMBERED = re.compile(r"(\d{6,})\.png")  # 000001.png … (more digits past 999999)
MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "I;16")  # PNG stores these as they are
STOP_WAIT = 2.0  # seconds a stopped run waits for its workers to finish their current item
DESKTOP = {".DS_Store", "._.DS_Store", "Thumbs.db", "desktop.ini"}  # what Finder and Explorer write in a folder shown


@dataclass
class Folder:
    """What an output folder already holds: nothing for a fresh run, or what a stopped run kept."""

    number: int = 0  # the highest PNG number kept (the next is number + 1)
    rows: int = 0  # manifest rows kept
    done_sources: set = field(default_factory=set)  # inputs as given whose rows are all in: passed over whole
    last_source: set = field(default_factory=set)  # the input as given the stopped run was writing: read again
    # the rows of its last file, member or URL (it may have stopped in it): from where in the manifest, their PNGs
    # and the number the run goes on from if they stay. They go (the file is read again) when last_source is
    # the first input this run writes; they stay when it is another (a finished run carried on with new inputs)
    undo_at: int | None = None
    undo_files: list = field(default_factory=list)
    undo_input: str | None = None
    number_kept: int = 0
    done: set = field(default_factory=set)  # of its files, members and URLs, those whose rows are all in
    written: set = field(default_factory=set)  # of them, every one with rows in (a container's own note)
    passed: int = 0  # files, members and URLs whose rows are all in, of every input as given: passed over
    given: Given = field(default_factory=Given)  # what its inputs passed over whole read (a DICOMDIR, its folders)
    lock: _Lock | None = field(default=None, repr=False, compare=False)  # held until extract ends


class _Lock(FolderLock):
    """extract's lock on its output folder (`output.FolderLock`)."""

    def __init__(self, out: Path):
        super().__init__(out, "extract")


def prepare(out: Path, resume: bool) -> Folder:
    """Make `out` ready to write into: a new or empty folder (DESKTOP files aside); with `resume`, one a stopped
    extract wrote, whose unfinished last input, cut-off last line, stray PNGs and temporary files are removed.
    ValueError (nothing changed) for a folder with other content, or with a manifest medimg extract did not write."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file: give a new or empty folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a read-only place (/sys), a file on the way: said as the other refusals are
        raise ValueError(f"{out} cannot be made: {exc.strerror or exc}; give a new or empty folder in a place "
                         "that can be written") from None
    lock = _Lock(out)  # before looking in it: a second run into it is refused, whatever the first has written
    try:
        folder = _prepare(out, resume)
    except BaseException:
        lock.release()
        raise
    folder.lock = lock
    return folder


def _prepare(out: Path, resume: bool) -> Folder:
    if all(p.name in DESKTOP for p in out.iterdir()):  # a new folder opened in Finder is empty
        _writable(out)
        return Folder()
    if not resume:
        raise ValueError(f"{out} is not an empty folder: give a new or empty one, so no earlier output is "
                         "overwritten or mixed in (or --resume to carry on a stopped extract there)")
    manifest = out / MANIFEST
    if not manifest.is_file():
        raise ValueError(f"{out} has no {MANIFEST}: not a folder medimg extract wrote; not resuming, so nothing "
                         "in it is changed")
    last_source = _check_manifest(manifest)
    from .output import Spellings, scan_rows  # as classify --resume reads its rows

    found = scan_rows(manifest, "jsonl")  # a cut-off last line goes; the last input's rows wait (see Folder)
    done, written, undo = set(found.done), found.written, found.keep  # undo: where the last input begins
    last = Spellings([last_source] if last_source is not None else [])  # however it was spelled in each run
    kept = Folder(last_source=last, passed=len(done))
    sources, files, images, tail, at = set(), set(), 0, set(), 0
    every, all_images = set(), 0  # with the last input's rows
    dicom, others = set(), {}  # DICOM files given alone; the files and members the other inputs read
    with open(manifest, "rb") as f:
        for n, raw in enumerate(f):
            row = json.loads(raw.decode("utf-8", "surrogateescape"))
            if "file" in row:
                every.add(row["file"])
            all_images += "file" in row or str(row.get("error", "")).startswith("could not write PNG")
            if n >= undo:
                if n == undo:
                    kept.undo_at, kept.undo_input = at, row["input"]
                kept.undo_files += [row["file"]] if "file" in row else []
                continue
            at += len(raw)
            sources.add(row["source"])
            if row["input"] == row["source"]:
                if row.get("format") == "DICOM":
                    dicom.add(row["source"])
            elif not is_url(row["source"]):  # a folder's files and an archive's members are not kept: not needed
                held = others.setdefault(row["source"], [])
                if not row["input"].startswith((row["source"] + ":", row["source"].rstrip(os.sep) + os.sep)):
                    held.append(row["input"])
            if row["source"] in last:  # the inputs of the last input as given (rows are in input order)
                tail.add(row["input"])
            else:
                tail = set()
            if "file" in row:
                files.add(row["file"])
            images += "file" in row or str(row.get("error", "")).startswith("could not write PNG")
            kept.rows += 1
    def highest(names, count):
        return max([count, *(int(m.group(1)) for name in names if (m := NUMBERED.fullmatch(name)))])
    kept.number = highest(files, images)  # a PNG that could not be written took its number too
    kept.number_kept = highest(every, all_images)
    for p in out.iterdir():  # PNGs without a row (a stop between the two) and temporary ones
        if p.name.startswith(PART) or (NUMBERED.fullmatch(p.name) and p.name not in every):
            p.unlink(missing_ok=True)
    kept.done_sources = Spellings(s for s in sources if s not in last)
    kept.done = Spellings(done & tail)
    kept.given = _given_before(dicom, others, kept.done_sources)
    kept.written = Spellings(written & tail)
    return kept


def _given_before(dicom: set, others: dict, done) -> Given:
    """What the inputs passed over whole (done) read, as `Given` would have it had they been read in this run: so
    that a DICOMDIR given with its export's folders or files, one of them done, does not read the others' files again
    (or they its own) when the run is carried on."""
    from .sources.dicomdir import file_key, is_dicomdir

    given = Given()
    given.later = [source for source in dicom if source in done]
    for source, inputs in others.items():
        if source not in done:
            continue
        if os.path.isdir(source):
            given.folders.add(os.path.realpath(source))
            continue
        try:
            with open(source, "rb") as f:
                if not is_dicomdir(f.read(1024)):  # an archive, an e-mail, a page: its rows name what it held
                    continue
        except OSError:
            continue
        given.listed.update(key for name in inputs if (key := file_key(name)) is not None)
    return given


def _writable(out: Path) -> None:
    """ValueError for a folder that cannot be written in (permission denied, a read-only file system): a usage
    error before the run, not a run stopped at its first PNG with --resume to carry it on."""
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"{out} cannot be written in (permission denied or a read-only file system)")


def _check_manifest(path: Path) -> str | None:
    """The `source` of the last whole row; ValueError if a whole row is not one medimg extract writes."""
    last = None
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        for n, line in enumerate(f, 1):
            if not line.endswith("\n"):
                break  # cut off by a stopped run: dropped
            try:
                row = json.loads(line)
                ours = all(isinstance(row.get(k), str) for k in ("input", "locator", "source")) and (
                    "file" in row or row.get("error") is not None)
            except ValueError:
                ours = False
            if not ours:
                raise ValueError(f"line {n} of {path} is not a medimg extract row ({line[:60]!r}); not resuming, "
                                 "so nothing in the folder is changed")
            last = row["source"]
    return last


def extract(sources: Iterable[str], out: Path, limits: Limits | None = None, workers: int = 1,
            folder: Folder | None = None, passed_over: Callable[[str], bool] | None = None,
            ) -> Iterator[tuple[dict, bool]]:
    """Write every image in `sources` into `out` (made ready by `prepare`) as {n:06d}.png, with its row in
    manifest.jsonl; yields (row, whether it is an image) as each is written, in input order.

    `workers` threads read the units of work; at most 2 × workers + 4 of them are under way past the one being
    written, so a dead host waiting out its timeout holds up the writing of later rows, not their reading.
    Closing the stream before its end (Ctrl-C, SIGTERM) stops the workers (downloads give up at their next
    chunk), removes the temporary PNGs and leaves the manifest ending with a whole line, every PNG in it.
    `passed_over(origin)` passes over a file, member or URL (besides the run's own PNGs)."""
    from .output import json_line
    from .pipeline import AHEAD_BYTES, waiting_left

    folder = folder or Folder()
    limits = as_limits(limits)
    mine = str(out.resolve())
    def own(origin: str) -> bool:
        """Whether `origin` is one of the run's own PNGs (a URL is not a path; a name that cannot be resolved,
        a symlink loop or a NUL, is not ours: its reader says what is wrong with it), or `passed_over`."""
        if passed_over is not None and passed_over(origin):
            return True
        try:
            return not is_url(origin) and any(str(Path(name).resolve()).startswith(mine + "/")  # a member: its file
                                              for name in (origin, origin.split(":", 1)[0]))  # (a folder may hold ':')
        except (OSError, ValueError, RuntimeError):
            return False
    manifest = open(out / MANIFEST, "ab", buffering=0)  # one write per row: a stop leaves whole lines
    state = _Written(number=folder.number, pos=manifest.seek(0, os.SEEK_END))
    cancel = threading.Event()
    jobs: queue.Queue = queue.Queue()
    threads: list[threading.Thread] = []  # those started (a spare is added when one is given up on)
    ahead: deque = deque()  # (future, source, held bytes {id: size}, unit) in input order
    alone: list[_Unit] = []  # units given up on whose readers were stuck with no spare in their place
    stalled = [0.0]  # since when every one of the run's threads has been so stuck (0: not so)
    held: dict[int, int] = {}  # bytes the units under way keep alive (a zip member's data), each counted once
    owners: dict[int, int] = {}  # how many of those units keep each one
    finished = False

    def submit(task, source: str) -> None:
        fut: Future = Future()
        holds = getattr(task, "holds", {})
        for k, n in holds.items():
            held[k] = n
            owners[k] = owners.get(k, 0) + 1
        unit = _Unit(cancel)
        unit.origin = getattr(task, "origin", None)
        unit.fn = lambda: _save_unit(task, source, out, unit)
        ahead.append((fut, source, holds, unit))
        jobs.put((fut, unit))

    def result(fut: Future, source: str, unit: _Unit) -> list:
        """The unit's rows; an error row instead once it has gone on past input_timeout (from its start, or
        from when it came first in line): it stops at its next item, and a new thread takes its place (while
        fewer than pipeline.MAX_SPARES do so in the process). One not begun waits for a thread to come free,
        unless every one of the run's is stuck with no spare: then it too is an error, input_timeout after they all
        were (one wait for all the units waiting, not one each)."""
        limit, first = limits.input_timeout, time.monotonic()
        while limit:
            alone[:] = [u for u in alone if not u.ended]
            stalled[0] = (stalled[0] or time.monotonic()) if len(alone) >= workers else 0.0
            if unit.began:
                left = max(unit.began, first) + limit - time.monotonic()
            else:
                left = waiting_left(stalled[0], limit)
            if left <= 0 and not fut.done():
                error = _give_up(fut, unit, limit, threads, jobs)
                if error is not None:
                    if unit.stuck and not unit.spared:
                        alone.append(unit)
                    return [({"input": unit.origin or source, "locator": "", "source": source, "error": error},
                             None, False)]
            try:
                return fut.result(timeout=max(left, 0.05))
            except FutureTimeout:
                continue
        return fut.result()

    def write_head() -> Iterator[tuple[dict, bool]]:
        fut, source, holds, unit = ahead.popleft()
        results = result(fut, source, unit)
        for k in holds:
            owners[k] -= 1
            if not owners[k]:
                del owners[k], held[k]
        again = source in folder.last_source  # a resumed input: its rows already in are not written twice
        for row, part, image in results:  # (a stop mid-unit leaves the rest to _stop)
            if again and row["input"] in folder.written:
                if part:
                    Path(part).unlink(missing_ok=True)
                continue
            yield _write_row(row, part, image, out, manifest, state, json_line), image

    seen = folder.given  # a DICOMDIR given with its export's folders or files: each file read once (resumed too)
    try:
        for i in range(workers):  # one that cannot start (the process's thread limit) stops those started before it
            threads.append(threading.Thread(target=_work, args=(jobs,), name=f"medimg-extract-{i}", daemon=True))
            try:
                threads[-1].start()
            except BaseException:
                threads.pop()
                raise
        for given in sources:
            source = os.fspath(given)
            if source in folder.done_sources:
                continue
            skip = own
            if folder.undo_at is not None:  # the first input written: the last input's rows go, or stay
                _undo(folder, source in folder.last_source, manifest, state, out)
            if source in folder.last_source:  # its files and members done before are passed over
                skip = lambda origin: own(origin) or origin in folder.done  # noqa: E731
            for task in _units(given, limits, skip, cancel, seen):
                while ahead and (len(ahead) >= 2 * workers + 4 or sum(held.values()) > AHEAD_BYTES):
                    yield from write_head()
                submit(task, source)
                while ahead and ahead[0][0].done():  # rows ready: written now, not after the next split
                    yield from write_head()
        while ahead:
            yield from write_head()
        finished = True
    finally:
        cancel.set()
        for _ in threads:
            jobs.put(None)
        if not finished:
            _stop(ahead, threads, out, manifest, state)
        manifest.close()
        if folder.lock is not None:
            folder.lock.release()


def _undo(folder: Folder, redo: bool, manifest, state: _Written, out: Path) -> None:
    """Remove the rows and PNGs of the earlier run's last input, to read it again (`redo`), or keep them: it is
    then passed over as done, and numbers go on after its PNGs."""
    if redo:
        os.truncate(manifest.fileno(), folder.undo_at)
        state.pos = folder.undo_at
        for name in folder.undo_files:
            (out / name).unlink(missing_ok=True)
    else:
        from .output import Spellings

        state.number = folder.number_kept
        folder.done = Spellings([*folder.done, folder.undo_input])
        folder.written = Spellings([*folder.written, folder.undo_input])
    folder.undo_at = None


def _units(given, limits: Limits, skip, cancel: threading.Event, seen=None) -> Iterator:
    """input_tasks for one input; splitting it failing is an error row, then the next input."""
    try:
        yield from one_input_tasks(given, limits, skip=skip, cancel=cancel, seen=seen)  # limits checked once
    except Exception as exc:
        error = ItemError(os.fspath(given), "", f"internal error: {exc}")
        yield lambda: iter([error])


@dataclass
class _Written:
    number: int  # the last PNG number given
    pos: int  # the manifest's length after the last row written whole
    pending: Path | None = None  # a PNG renamed to its number whose row is being written
    line: bytes = b""  # that row


def _write_row(row: dict, part: str | None, image: bool, out: Path, manifest, state: _Written,
               json_line: Callable[[dict], str]) -> dict:
    """Give an image the next number, rename its PNG to it and write its row (in that order: a stop between
    the two is undone by _stop)."""
    if image:
        state.number += 1
        name = f"{state.number:06d}.png"
        if part:
            state.pending = out / name  # before the rename, so a stop right after it still knows
            os.replace(part, out / name)
            png = row.pop("_png")
            row = {**row, "file": name, **png}
    line = (json_line(row) + "\n").encode("utf-8")  # json_line escapes what is not UTF-8
    state.line = line
    view = memoryview(line)
    while view:
        view = view[manifest.write(view):]
    state.pending, state.line = None, b""  # before pos: a stop in between drops the row, keeps no PNG claim
    state.pos += len(line)
    return row


def _stop(ahead: deque, threads: list, out: Path, manifest, state: _Written) -> None:
    """After a stop: wait briefly for the workers' current items, remove every temporary PNG, and undo a row
    half done (its PNG renamed but its line not written whole)."""
    for fut, _, _, _ in ahead:
        fut.cancel()  # not started: never will be
    for th in threads:
        th.join(STOP_WAIT / max(1, len(threads)))
    for p in out.glob(PART + "*"):
        p.unlink(missing_ok=True)
    size = os.fstat(manifest.fileno()).st_size
    if state.line and size == state.pos + len(state.line):  # the stop came just after the row was written
        state.pending = None
    elif size != state.pos:
        os.truncate(manifest.fileno(), state.pos)
    if state.pending is not None:
        state.pending.unlink(missing_ok=True)


class _Unit(threading.Event):
    """One unit's stop: set when the run stops (`run`) or the unit is given up on (out of time); with when its
    reading began (time.monotonic; 0 before)."""

    def __init__(self, run: threading.Event):
        super().__init__()
        self.run, self.began, self.origin = run, 0.0, None
        self.fn: Callable[[], list] | None = None  # its work, until a thread takes it
        self.ended = self.stuck = self.spared = False  # read to its end; given up on while read; a thread in its place

    def is_set(self) -> bool:
        return super().is_set() or self.run.is_set()


def _give_up(fut: Future, unit: _Unit, limit: float, threads: list, jobs: queue.Queue) -> str | None:
    """Give up on a unit out of time: one being read stops at its next item (one stuck inside a decoder goes on
    in its thread until it returns) and, while fewer than pipeline.MAX_SPARES do so in the process, a new thread
    takes its place; one not begun never will be. Its error; None when it has just ended (its rows are due)."""
    from . import pipeline

    with pipeline._spares_lock:  # the process's spare budget, shared with classify
        if unit.ended:
            return None
        if not unit.began and fut.cancel():  # no thread was free to take it: its bytes go now
            unit.fn = None
            return (f"not read: no thread was free to read it within the input_timeout of {limit:g} s (every one of "
                    f"this run's is stuck in an input given up on, and {pipeline.MAX_SPARES} spare threads are at "
                    "work)")
        unit.set()
        unit.stuck = True
        if pipeline._spares[0] < pipeline.MAX_SPARES:
            pipeline._spares[0] += 1
            unit.spared = True
    fut.add_done_callback(_discard)  # it may end before it sees `unit`: its PNGs go then
    if unit.spared:
        threads.append(threading.Thread(target=_work, args=(jobs,), name="medimg-extract-spare", daemon=True))
        threads[-1].start()
    return f"reading it took longer than the input_timeout of {limit:g} s: stopped there (nothing from it is written)"


def _discard(fut: Future) -> None:
    """The temporary PNGs of a unit given up on."""
    if not fut.cancelled() and fut.exception() is None:
        for _, part, _ in fut.result():
            if part:
                Path(part).unlink(missing_ok=True)


def _work(jobs: queue.Queue) -> None:
    from . import pipeline

    while (job := jobs.get()) is not None:
        fut, unit = job
        if not fut.set_running_or_notify_cancel():
            continue  # given up on before a thread was free to read it
        fn, unit.fn = unit.fn, None
        rows, error = None, None
        try:
            with reading_unit(unit):  # its downloads and renders stop once it is given up on
                rows = fn()
        except BaseException as exc:
            error = exc
        with pipeline._spares_lock:
            unit.ended = True  # never given up on now
            if unit.spared:
                pipeline._spares[0] -= 1
        if error is None:
            fut.set_result(rows)
        else:
            fut.set_exception(error)
        if unit.spared:  # a new thread has taken this one's place
            return


def _save_unit(task, source: str, out: Path, cancel: _Unit) -> list[tuple[dict, str | None, bool]]:
    """Run one unit of work, saving each image as a temporary PNG in `out`: [(row, PNG or None, image?)].
    Once `cancel` is set it stops between items and removes its PNGs."""
    cancel.began = time.monotonic()
    results: list[tuple[dict, str | None, bool]] = []
    items = task()
    try:
        for item in items:
            if cancel.is_set():
                break
            results.append(_save(item, source, out))
    except Exception as exc:  # the sources never should raise; if they do, an error row, and the next unit
        from .output import cannot_write

        if cannot_write(exc):  # the output's disk is full or failed: the run stops (see extract)
            raise
        origin = getattr(task, "origin", None) or source
        results.append(({"input": origin, "locator": "", "source": source,
                         "error": f"internal error: {type(exc).__name__}: {exc}"}, None, False))
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()
        if cancel.is_set():
            for _, part, _ in results:
                if part:
                    Path(part).unlink(missing_ok=True)
    return results


def _storable(img):
    """`img` in a mode PNG stores: 16-bit greyscale in either byte order, and 32-bit integers within 0–65535, as
    16-bit PNG; other 32-bit integers and floats as the 8-bit grey the model is given (scaled by percentiles: as
    RGB they were clipped to black or white); the rest as RGBA or RGB."""
    if img.mode in MODES:
        return img
    if img.mode in ("I;16B", "I;16L", "I"):
        import numpy as np

        arr = np.asarray(img)
        if img.mode != "I" or (arr.size and arr.min() >= 0 and arr.max() <= 65535):
            return Image.fromarray(arr.astype("<u2"))  # I;16 (Pillow's convert("I;16") clips at 255)
    if img.mode in ("I", "F"):
        from .model.preprocess import to_rgb

        return to_rgb(img).convert("L")
    return img.convert("RGBA" if "A" in img.mode else "RGB")


def _profile(img) -> bytes | None:
    """The image's ICC profile when PNG allows it with the image's colours: GRAY for grey, RGB for colour and
    palette. A CMYK JPEG's profile that could not be applied (its pixels were converted to RGB plainly), or an RGB
    profile on a grey image, is left out: a viewer would read the PNG's colours through the wrong profile."""
    icc = img.info.get("icc_profile")
    fits = b"GRAY" if img.mode in ("1", "L", "LA", "I;16") else b"RGB "
    return icc if icc and bytes(icc[16:20]) == fits else None


def _save(item, source: str, out: Path) -> tuple[dict, str | None, bool]:
    row = {"input": item.origin, "locator": item.locator, "source": source}
    if not isinstance(item, ImageItem):
        row["error"] = item.error
        if item.skipped:
            row["skipped"] = True
        return row, None, False
    part = out / f"{PART}{uuid.uuid4().hex}.png"
    try:
        img = _storable(item.image)
        img.save(part, "PNG", icc_profile=_profile(img))
    except Exception as exc:
        part.unlink(missing_ok=True)
        from .output import cannot_write

        if cannot_write(exc):  # every PNG after it would fail too, and its row would count as done
            raise
        row["error"] = f"could not write PNG: {exc}"
        return row, None, True
    from .pipeline import jsonable

    row["_png"] = {"width": item.width, "height": item.height, "format": item.format,
                   **({"metadata": jsonable(item.metadata)} if item.metadata else {})}  # pages, bbox, url, …
    return row, str(part), True
