"""Streams sources into batched model calls; yields one typed Record per image or error."""

from __future__ import annotations

import atexit
import math
import numbers
import os
import queue
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Generator, Iterable, Iterator

import numpy as np
from PIL import Image

from .model import Classifier, verdict_for
from .model.classifier import check_threshold, shipped
from .model.preprocess import thumbnail
from .model.priors import apply_prior, dicom_evidence, format_prior
from .sources import Blob, ImageItem, ItemError, Limits, as_inputs, is_input, not_an_input, one_input_tasks
from .sources.dicomdir import Given
from .sources.quiet import theirs
from .sources.base import AnyOf, CallerError, as_limits, reading_unit

FLUSH_AFTER = 0.25  # seconds a part batch waits for the next image before it is classified as it is
RECORD_FIELDS = ["input", "locator", "label", "medical", "confidence", "p_medical", "verdict",
                 "width", "height", "error"]
# a URL's user:password@; tried from the start of a run of scheme characters only (from each `a.` of a long
# `a.a.a…` it took 4.8 s for 32 KB)
_PASSWORD = re.compile(r"(?<![a-z0-9+.-])([a-z0-9+.-]*+://[^/\s@:]*+):[^/\s@]*+@", re.IGNORECASE)


@dataclass
class Record:
    """One image found in an input, or one item that could not be read (`error` set; `skipped` for a note).

    `input` is the file, archive member or URL the image came from, `locator` where in it (`page 3, image 2`,
    `frame 12`; empty for a plain image file), `source` the input as given. `label` is the most likely kind,
    `confidence` its calibrated probability, `p_medical` the sum over the medical labels and `verdict`
    medical, non-medical or uncertain at the run's threshold. `probs` has every label's probability, `model`
    the model's name and release, `format` and `metadata` what the file said. `to_dict()` gives the fields
    the CLI writes (`full=True`: all of them), ready for json.dumps.
    """

    input: str
    locator: str
    label: str | None = None
    medical: bool | None = None
    confidence: float | None = None
    p_medical: float | None = None
    verdict: str | None = None
    width: int | None = None
    height: int | None = None
    error: str | None = None
    skipped: bool = False
    source: str | None = None  # the input given (path, URL or blob name) this record came from
    model: str | None = None  # the model's name and release, on a classified image's record
    format: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    probs: dict[str, float] = field(default_factory=dict)
    thumbnail: Image.Image | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:  # a URL's password is not repeated in every output
        if self.error and "@" in self.error:
            self.error = _PASSWORD.sub(r"\1:***@", self.error)
        if "@" in self.locator:  # a page's image named with its credentials
            self.locator = _PASSWORD.sub(r"\1:***@", self.locator)

    @property
    def ok(self) -> bool:
        """Whether it is an image classified (no `error`; a skipped note is not ok)."""
        return self.error is None

    def to_dict(self, full: bool = False) -> dict[str, Any]:
        """The record's fields, probabilities to 6 decimals (the record keeps them whole, so that a verdict
        worked out again, or a score, agrees with the one made)."""
        if not isinstance(full, bool):
            raise TypeError(f"full must be True or False, not {full!r}")
        d = {k: _six(getattr(self, k)) if k in ("confidence", "p_medical") else getattr(self, k)
             for k in RECORD_FIELDS}
        if full:
            d.update(skipped=self.skipped, format=self.format, source=self.source, model=self.model,
                     metadata=jsonable(self.metadata),
                     probs=None if self.probs is None else {lb: _six(v) for lb, v in self.probs.items()})
        return d

    def relabel(self, threshold: float) -> str | None:
        """The verdict at another threshold, without running the model again."""
        if threshold is None:  # a record does not know its model's own threshold
            raise TypeError("relabel needs a threshold between 0.5 and 1, not None (the model's own is "
                            "Classifier.threshold)")
        check_threshold(threshold)
        return None if self.p_medical is None else verdict_for(self.p_medical, threshold)


def _six(value):
    return None if value is None else round(float(value), 6)


_lock = threading.Lock()
_shared: dict[str | None, Classifier] = {}  # the shipped models loaded, by name (None: the default)


def default_classifier() -> Classifier:
    """The shipped model, loaded once per process."""
    return shipped_classifier(None)


def shipped_classifier(name: str | None) -> Classifier:
    """A shipped model by name ("fast"; None or "default": the default), loaded once per process."""
    name = None if name == "default" else name
    with _lock:
        if name not in _shared:
            _shared[name] = Classifier.load(name)
        return _shared[name]


LOOKAHEAD = 64  # inputs past the one being read that may be under way (at least; 8 per worker)
MAX_WORKERS = 256  # threads per run; more would only wait on each other (and a typo of 10**6 must not start them)
AHEAD_BYTES = 256 * 2**20  # bytes that units not yet done may hold (archive members read ahead); one always may
# threads a process starts in place of readers still stuck past input_timeout (in a decoder), all runs together; past
# it a run goes on with the threads it has left, and an input that no thread is free to read within input_timeout is
# an error (a stuck reader keeps its thread and its memory until its decoder returns)
MAX_SPARES = 16
_spares = [0]  # spare threads whose stuck reader has not returned yet
_spares_lock = threading.Lock()  # also orders a lane's start and end against its being given up on
# seconds a stream closed (a break, an exception, close()) waits for its threads to end, each at its next image: a
# daemon thread still inside a library when Python exits can hang the exit (h5py's lock: a MINC file) and leaves
# the temporary folder of the file it reads
STOP_WAIT = 2.0
_open_runs: set[threading.Event] = set()  # the `closed` of each stream begun and not closed yet


def _after_fork() -> None:
    """In a forked child: fresh locks (one held by a parent's thread, loading a model say, would never be let go)
    and no spare threads (the parent's are not in the child)."""
    global _lock, _spares_lock
    _lock, _spares_lock = threading.Lock(), threading.Lock()
    _spares[0] = 0


os.register_at_fork(after_in_child=_after_fork)


def default_workers() -> int:
    """Extraction threads: one per core, at most 4 (decoding is the bottleneck; Pillow's decoders and
    resizing and socket reads release the GIL)."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def classify(
    inputs: Iterable[str | os.PathLike[str] | Blob] | str | os.PathLike[str] | Blob,
    classifier: Classifier | str | os.PathLike[str] | None = None,
    limits: Limits | Mapping[str, Any] | None = None,
    batch_size: int = 32,
    threshold: float | None = None,
    thumbnails: int = 0,
    on_item: Callable[[Record], None] | None = None,
    workers: int | None = None,
    skip: Callable[[str], bool] | None = None,
    cancel: threading.Event | None = None,
    seen: Given | None = None,
) -> Generator[Record, None, None]:
    """Classify every image found in `inputs`, in input order.

    Each file, URL or blob (and each file in a folder) is opened and preprocessed by one of `workers`
    background threads (default: default_workers()); results come back in input order. Up to LOOKAHEAD
    (or 8 × workers) inputs past the one being read may be under way (so a dead host, waiting out its timeout,
    does not hold up the inputs after it), but together they hold at most 4 × `batch_size` prepared images,
    and the units not yet done (zip members are read as the archive is split) at most AHEAD_BYTES: decoding
    overlaps inference and memory stays bounded. The model takes about 1 MB an image more while it runs a batch
    (batch_size=1000 takes about 1 GB more than 32, and is no faster on a CPU). `thumbnails` > 0 keeps a
    thumbnail of that size (over twice the model's input, big JPEGs are decoded larger for it, and their
    probabilities can differ slightly).
    `threshold` (0.5 to 1) is the p_medical a verdict must reach to be medical, and 1 - threshold the most it may
    have to be non-medical (between: uncertain); default: the model's own (`Classifier.threshold`).
    `skip(origin)` passes over inputs already done (a file, zip member or URL; see sources.input_tasks).
    `on_item(record)` is called on the caller's thread just before each record comes out; if it raises, the
    exception comes out of the stream in that record's place and the run ends, as a `break` would end it.
    Once `cancel` is set (the caller gave up: a request timed out, a script's Ctrl-C handler), the run ends as
    closing the stream does: no record comes out after it (within 0.1 s, even while an input is still
    downloading or decoding), and downloads and threads stop. The stream just ends: `cancel.is_set()` tells a
    cancelled run from a finished one.
    Closing the stream (a `break`) returns once its threads have ended (at most STOP_WAIT s), and one still open
    when the program exits is closed then.
    One path, URL or Blob may be given alone instead of in a list. `inputs` is read, and `skip` called, on a
    background thread as the run goes (an iterator bound to the caller's thread, such as a sqlite cursor,
    should be made a list first); if either raises, the exception comes out of the stream in its place, after
    the records before it. `classifier` may be a shipped model's name ("fast"; loaded once per process) or a
    model folder (loaded here), and `limits` a dict of Limits' fields. A bad argument raises here, before the
    first record.
    `seen`: a `sources.dicomdir.Given` begun by the caller, so that a DICOMDIR's files that other runs read are
    passed over (`scale`'s actors: the files of a DICOMDIR entry that other entries of the list read); None: the
    run's own, empty.
    """
    inputs = as_inputs(inputs)
    limits = as_limits(limits)
    check_threshold(threshold)
    batch_size = _count("batch_size", batch_size, 1)
    thumbnails = _count("thumbnails", thumbnails, 0, " (0: none)")
    workers = default_workers() if workers is None else _count("workers", workers, 1,
                                                                 " or None (default_workers())", most=MAX_WORKERS)
    _check_function("on_item", on_item, "called with each Record")
    _check_function("skip", skip, "of an origin, True to pass over it (e.g. done.__contains__)")
    if cancel is not None and not callable(getattr(cancel, "is_set", None)):
        raise TypeError(f"cancel must be a threading.Event (anything with is_set()) or None, not {cancel!r}")
    if seen is not None and not isinstance(seen, Given):
        raise TypeError(f"seen must be a sources.dicomdir.Given or None, not {seen!r}")
    clf = _classifier(classifier)  # last: loading a model is the slow part
    return _records(inputs, clf, limits, batch_size, threshold, thumbnails, on_item, workers, _callers(skip), cancel,
                    seen)


def _callers(skip: Callable[[str], bool] | None) -> Callable[[str], bool] | None:
    """The caller's `skip`, its exceptions carried past the sources' handlers (which would make them an error
    for that input) to the caller."""
    if skip is None:
        return None

    def ask(origin: str) -> bool:
        try:
            return theirs(skip, origin)
        except BaseException as exc:  # a SystemExit too: on a worker thread it would only end that thread
            raise CallerError(exc) from exc
    return ask


def _classifier(classifier) -> Classifier:
    """The Classifier given, the shipped one for None, or the model a name or folder names."""
    if classifier is None:
        return default_classifier()
    if isinstance(classifier, Classifier):
        return classifier
    if not isinstance(classifier, (str, os.PathLike)):
        raise TypeError(f"classifier must be a Classifier (Classifier.load(...)), a shipped model's name such as "
                        f"'fast', a model folder, or None, not {classifier!r}")
    try:
        if isinstance(classifier, str) and shipped(classifier):  # loaded once, as the default is
            return shipped_classifier(classifier)
        return Classifier.load(classifier)
    except FileNotFoundError as exc:  # it names the shipped models
        raise ValueError(f"classifier: {exc}") from None


def _count(name: str, value, least: int, also: str = "", most: int | None = None) -> int:
    """A whole number at least `least` (and at most `most`; not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a whole number ≥ {least}{also}, not {value!r}")
    if value < least:
        raise ValueError(f"{name} must be a whole number ≥ {least}{also}, not {value}")
    if most is not None and value > most:
        raise ValueError(f"{name} must be at most {most}, not {value}")
    return int(value)


def _check_function(name: str, fn, what: str) -> None:
    if fn is not None and not callable(fn):
        raise TypeError(f"{name} must be a function {what}, or None, not {fn!r}")


def _records(inputs, clf, limits, batch_size, threshold, thumbnails, on_item, workers, skip,
             cancel, seen: Given | None = None) -> Iterator[Record]:
    """classify's stream of records (its arguments checked)."""
    t = clf.threshold if threshold is None else threshold
    if limits.decode_side is None:  # big JPEGs decode at a reduced scale that still leaves 2× the model's input
        limits = replace(limits, decode_side=max(2 * clf.input_size, thumbnails))
    closed = threading.Event()
    stop = AnyOf(closed, cancel)  # what the threads and downloads watch: the stream closed or the run cancelled
    lanes: queue.Queue = queue.Queue(maxsize=max(8 * workers, LOOKAHEAD))  # a queue of items per input, in order
    ahead = threading.Semaphore(4 * batch_size)  # prepared images held by inputs after the one being read
    head: list[queue.Queue | None] = [None]  # the lane being read, whose items never wait for room
    held = [0]  # bytes held by units not yet done (zip members are read as the archive is split)
    owners: dict[int, int] = {}  # how many units not yet done hold each byte string (by id)
    held_change = threading.Condition()
    jobs: queue.Queue = queue.Queue()  # FIFO: an input never waits for a thread behind a later one
    END = object()
    limit = limits.input_timeout  # seconds one input may take (None or 0: no limit)
    dropped: list[_Lane] = []  # inputs given up on (out of time) whose readers have not ended yet
    alone = [0]  # of those, readers stuck in this run's threads with no spare in their place (MAX_SPARES reached)
    stalled = [0.0]  # since when every one of this run's threads has been so stuck (0: not so); see waiting_left

    def put(q: queue.Queue, x) -> bool:
        while not stop.is_set():
            try:
                q.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def room(lane: _Lane) -> bool | None:
        """Wait for room for one more image ahead of the reader: True with a token taken (to be given back
        when the image is read), False when `lane` is the one being read; None once stopped."""
        while not stop.is_set() and not lane.dropped:
            if head[0] is lane:
                return False
            if ahead.acquire(timeout=0.1):
                return True
        return None

    def hold(holds: dict[int, int]) -> bool:
        """Wait until a unit's byte strings ({id: size}; one held by units before it costs nothing more) fit in
        AHEAD_BYTES (when nothing is held, any unit does); False once stopped."""
        with held_change:
            while held[0] and held[0] + sum(n for k, n in holds.items() if k not in owners) > AHEAD_BYTES:
                if stop.is_set():
                    return False
                held_change.wait(0.1)
            for k, n in holds.items():
                held[0] += n if k not in owners else 0
                owners[k] = owners.get(k, 0) + 1
            return True

    def release(holds: dict[int, int]) -> None:
        with held_change:
            for k, n in holds.items():
                owners[k] -= 1
                if not owners[k]:
                    del owners[k]
                    held[0] -= n
            held_change.notify_all()

    def run(lane: _Lane, source: str) -> None:
        try:
            with _spares_lock:
                if lane.dropped:  # given up on before a thread was free to read it
                    lane.task = None
                    return
                lane.began = time.monotonic()
                lane.thread = threading.current_thread()
                task, lane.task = lane.task, None
            for item in task():
                if lane.dropped:  # out of time (input_timeout): the reader is closed
                    return
                rec, arr = _prepare(item, clf, thumbnails)
                rec.source = source
                lane.pause()  # waiting for the run to take it (room, a full lane) is not the input's time
                token = room(lane) if arr is not None else False
                done = token is not None and put(lane, (rec, arr, token))
                lane.resume()
                if not done:
                    return
        except BaseException as exc:  # the sources never should raise; if they do, say so (and keep the thread)
            if isinstance(exc, CallerError):  # `skip` raised (splitting a nested zip): the caller gets it here
                put(lane, _Raise(exc.exc))
                return
            # an exit or Ctrl-C raised by a reader's own code too (no signal reaches this thread): an error for this
            # input, as any other (raised here, it ended the thread: one worker hung the run, more lost the row)
            put(lane, (Record(input=source, locator="", error=f"internal error: {type(exc).__name__}: {exc}",
                              source=source), None, False))
        finally:
            with _spares_lock:
                lane.ended = True  # read to its end (or stopped): never given up on now
                if lane.spared:
                    _spares[0] -= 1
                elif lane.stuck:
                    alone[0] -= 1
            unhold(lane)
            put(lane, END)

    def unhold(lane: _Lane) -> None:
        with held_change:
            if not lane.released:
                lane.released = True
                release(lane.holds)

    def work() -> None:
        while not stop.is_set():  # a closed stream ends its threads, even while the inputs' iterator blocks
            try:
                job = jobs.get(timeout=0.1)
            except queue.Empty:
                continue
            if job is None:
                return
            with reading_unit(job[0]):  # its downloads and renders stop once it is given up on
                run(*job)
            if job[0].spared:  # a new thread took this one's place when its input ran out of time
                return

    def drop(lane: _Lane) -> Record:
        """Give up on the input being read (out of time): its reader stops at its next image (one stuck inside
        a decoder goes on in its thread until it returns), another thread takes its place (while fewer than
        MAX_SPARES do so in the process), and its bytes no longer count against AHEAD_BYTES. Its error record."""
        with _spares_lock:
            lane.dropped = True
            lane.stuck = bool(lane.began) and not lane.ended
            if lane.stuck and _spares[0] < MAX_SPARES:
                _spares[0] += 1
                lane.spared = True
            elif lane.stuck:
                alone[0] += 1
            lane.task = None  # one not begun never will be: its bytes go now, not when a thread is free
        unhold(lane)
        if lane.began:  # a reader may still put items in its lane (drain)
            dropped.append(lane)
        if lane.spared:
            thread(work, "medimg-extract-spare").start()
        if not lane.began:
            error = (f"not read: no thread was free to read it within the input_timeout of {limit:g} s (every one "
                     f"of this run's is stuck in an input given up on, and {MAX_SPARES} spare threads are at work)")
        else:
            error = (f"reading it took longer than the input_timeout of {limit:g} s: stopped there"
                     + (f" ({lane.images} image{'s' * (lane.images != 1)} found before it kept)" if lane.images else ""))
        return Record(input=lane.origin or lane.source, locator="", source=lane.source, error=error)

    def drain() -> None:
        """What readers of dropped inputs still put in their lanes, passed over (their room tokens given back)."""
        for gone in list(dropped):
            while True:
                try:
                    got = gone.get_nowait()
                except queue.Empty:
                    break
                if got is END:
                    dropped.remove(gone)
                    break
                if isinstance(got, tuple) and got[2]:
                    ahead.release()

    def failed(source: str, error: str) -> queue.Queue:
        lane = _Lane(source)
        lane.put((Record(input=source, locator="", error=error, source=source), None, False))
        lane.put(END)
        return lane

    def raising(exc: BaseException) -> queue.Queue:
        lane = _Lane("")
        lane.put(_Raise(exc))
        return lane

    def given_inputs() -> Iterator:
        """The caller's inputs; their iterable raising ends the run with that exception, in its place."""
        me = threading.current_thread()
        while True:
            me.medimg_in_callers = True  # in the caller's iterator (a queue's get, say): not waited for (_join)
            try:
                given = next(inputs)
            except StopIteration:
                return
            except BaseException as exc:  # a SystemExit too: on this thread it would end the run as if done
                raise CallerError(exc) from exc
            finally:
                me.medimg_in_callers = False
            yield given

    seen = Given() if seen is None else seen  # a DICOMDIR given with its export's folders or files: each file read once

    def dispatch() -> None:
        try:
            for given in given_inputs():
                if not is_input(given):  # e.g. a NaN from a table's empty cell, or a file's bytes: one short error
                    if not put(lanes, failed(*not_an_input(given))):
                        return
                    continue
                source = given.origin if isinstance(given, Blob) else os.fspath(given)
                try:
                    for task in one_input_tasks(given, limits, skip, cancel=stop, seen=seen):  # limits checked above
                        lane = _Lane(source, getattr(task, "holds", {}), maxsize=max(batch_size, 8))
                        lane.origin = getattr(task, "origin", None)  # a zip member's own name
                        lane.task = task
                        if not hold(lane.holds) or not put(lanes, lane):
                            return
                        jobs.put((lane, source))
                except CallerError:
                    raise
                except BaseException as exc:  # splitting this input failed (an exit a library raised too, which
                    # ended the run as if done): an error for it, then the next input
                    if not put(lanes, failed(source, f"internal error: {type(exc).__name__}: {exc}")):
                        return
        except CallerError as exc:  # the inputs' iterable or `skip` raised: the caller gets it in its place
            put(lanes, raising(exc.exc))
        except BaseException as exc:
            put(lanes, failed("", f"internal error: {type(exc).__name__}: {exc}"))
        finally:
            put(lanes, END)
            for _ in range(workers):
                jobs.put(None)

    ours: list[threading.Thread] = []  # this run's threads, spares too

    def thread(target: Callable[[], None], name: str) -> threading.Thread:
        th = threading.Thread(target=target, name=name, daemon=True)
        th.medimg_cancel = cancel  # see run_threads
        ours.append(th)
        return th

    threads = [thread(dispatch, "medimg-inputs")] + [thread(work, f"medimg-extract-{i}") for i in range(workers)]
    _open_runs.add(closed)
    pending: list[tuple[Record, np.ndarray | None]] = []
    images = 0  # of them with pixels for the model
    lane: _Lane | None = None  # the input being read; None between inputs
    try:
        for th in threads:  # one that cannot start (the process's thread limit) stops those started before it
            th.start()
        while True:
            drain()
            q = lanes if lane is None else lane
            wait = FLUSH_AFTER if pending else None  # a part batch waits a moment for more, then goes out
            if lane is not None and limit and not lane.ended:  # its time: see _Lane.left
                stalled[0] = (stalled[0] or time.monotonic()) if alone[0] >= workers else 0.0
                left = lane.left(limit) if lane.began else waiting_left(stalled[0], limit)
                if left <= 0 and lane.empty():  # what it made so far is read first
                    pending.append((drop(lane), None))
                    yield from _emit(clf, pending, t, on_item, cancel)
                    pending, images = [], 0
                    lane = head[0] = None
                    continue
                if left > 0:
                    wait = left if wait is None else min(wait, left)
            if dropped and wait is None:
                wait = 0.5
            try:
                got = _get(q, wait, cancel)
            except queue.Empty:
                if pending:  # a slow input never holds back the images before it
                    yield from _emit(clf, pending, t, on_item, cancel)
                    pending, images = [], 0
                continue
            if got is _CANCELLED:
                return
            if lane is None:
                if got is END:
                    break
                lane = head[0] = got
                lane.first = time.monotonic()
                lane.base = lane.waited(lane.first)
                continue
            if got is END:
                lane = head[0] = None
                continue
            if isinstance(got, _Raise):  # what came before it goes out first
                yield from _emit(clf, pending, t, on_item, cancel)
                pending = []
                raise got.exc
            rec, arr, token = got
            lane.images += arr is not None
            if token:
                ahead.release()
            if arr is None and not pending:  # an error or a note with no image before it: out at once
                yield from _emit(clf, [(rec, arr)], t, on_item, cancel)
                continue
            pending.append((rec, arr))
            images += arr is not None
            if images >= batch_size or len(pending) >= 4 * batch_size:
                yield from _emit(clf, pending, t, on_item, cancel)
                pending, images = [], 0
        yield from _emit(clf, pending, t, on_item, cancel)
    finally:
        closed.set()  # threads blocked on a full queue give up within 0.1 s; a download in progress at its next chunk
        _open_runs.discard(closed)
        if cancel is None or not cancel.is_set():  # a cancelled stream ends at once (the caller has run_threads)
            stuck = {gone.thread for gone in dropped}  # readers given up on, still in a decoder: not waited for
            _join([th for th in ours if th not in stuck], STOP_WAIT)


def _join(threads: list[threading.Thread], wait: float) -> None:
    """Wait at most `wait` s in all for `threads` to end (those started, but the caller's own and one waiting on
    the caller's inputs iterator, which may block for good)."""
    end = time.monotonic() + wait
    for th in threads:
        if th.ident is not None and th is not threading.current_thread() and not getattr(th, "medimg_in_callers", 0):
            th.join(max(0.0, end - time.monotonic()))


@atexit.register
def _stop_runs_at_exit() -> None:
    """At exit, end the streams never closed (one kept in a variable) and wait (STOP_WAIT) for every run's threads:
    Python stops daemon threads wherever they are, inside a library's lock too (see STOP_WAIT)."""
    for closed in list(_open_runs):
        closed.set()
    _join([th for th in threading.enumerate() if hasattr(th, "medimg_cancel")], STOP_WAIT)  # every run's


def run_threads(cancel: threading.Event) -> list[threading.Thread]:
    """The threads a run given `cancel` started that are still alive. Closed or cancelled, a run's stream ends at
    once, but a reader inside a decoder goes on until the decoder returns: a caller that must not start more work
    meanwhile (the server's job slots) waits for these (its readers, spares too: each names the run's `cancel`)."""
    if cancel is None:
        return []
    return [th for th in threading.enumerate() if getattr(th, "medimg_cancel", None) is cancel and th.is_alive()]


def waiting_left(stalled: float, limit: float) -> float:
    """Seconds an input not begun may still wait for a thread: while one may come free, as long as it takes (1 s at a
    time); once every thread of the run is stuck in an input given up on with no spare in its place (`stalled`: since
    when), input_timeout from then for all the inputs waiting, not for each in turn (N inputs would wait N times)."""
    return stalled + limit - time.monotonic() if stalled else 1.0


class _Lane(queue.Queue):
    """One input unit's items, in order, as its reader makes them; with when its reading began and when it came
    first in line (time.monotonic), how long its reader waited for the run to take its items, its images so far,
    whether it was read to its end (`ended`) and whether it was given up on (out of time)."""

    def __init__(self, source: str, holds: dict[int, int] | None = None, maxsize: int = 0):
        super().__init__(maxsize)
        self.source, self.holds, self.origin = source, holds or {}, None
        self.began = self.first = self.base = 0.0
        self.paused = (0.0, 0.0)  # (seconds waited before, when the wait going on began or 0): set in one go
        self.images, self.dropped, self.released, self.ended = 0, False, False, False
        self.stuck = self.spared = False  # given up on while its reader ran; a spare thread took its place
        self.task: Callable[[], Iterator] | None = None  # its unit of work, until a thread takes it
        self.thread: threading.Thread | None = None  # the thread reading it, once begun

    def pause(self) -> None:
        self.paused = (self.paused[0], time.monotonic())

    def resume(self) -> None:
        total, since = self.paused
        self.paused = (total + time.monotonic() - since, 0.0)

    def is_set(self) -> bool:
        """Given up on (the stop its reader's downloads watch: sources.base.reading_unit)."""
        return self.dropped

    def waited(self, now: float) -> float:
        total, since = self.paused
        return total + (now - since if since else 0.0)

    def left(self, limit: float) -> float:
        """Seconds left of `limit`, counted from its start or from when it came first, whichever is later, less
        the time its reader waited for the run (a slow consumer, inference, the inputs before it); 1 s while it
        has not begun."""
        if not self.began:
            return 1.0
        now = time.monotonic()
        return max(self.began, self.first) + limit + self.waited(now) - self.base - now


@dataclass
class _Raise:
    """In a lane: the caller's own code raised `exc` there; the reader raises it."""
    exc: BaseException


_CANCELLED = object()  # what _get gives once the run's cancel is set


def _get(q: queue.Queue, wait: float | None, cancel) -> Any:
    """The next thing in `q`, waiting at most `wait` s (None: as long as it takes; then queue.Empty), or
    _CANCELLED once `cancel` is set (looked at every 0.1 s while waiting)."""
    if cancel is None:
        return q.get(timeout=wait)
    end = None if wait is None else time.monotonic() + wait
    while not cancel.is_set():
        left = 0.1 if end is None else min(0.1, end - time.monotonic())
        if left <= 0:
            raise queue.Empty
        try:
            return q.get(timeout=left)
        except queue.Empty:
            continue
    return _CANCELLED


def _emit(clf: Classifier, pending: list, t: float, on_item: Callable[[Record], None] | None,
          cancel=None) -> Iterator[Record]:
    if cancel is not None and cancel.is_set():  # nothing more once the caller gave up
        return
    for rec in _run_batch(clf, pending, t):
        if cancel is not None and cancel.is_set():
            return
        if on_item:
            theirs(on_item, rec)
        yield rec


def _prepare(item: ImageItem | ItemError, clf: Classifier, thumb: int) -> tuple[Record, np.ndarray | None]:
    if isinstance(item, ItemError):
        return Record(input=item.origin, locator=item.locator, error=item.error, skipped=item.skipped), None
    rec = Record(input=item.origin, locator=item.locator, width=item.width, height=item.height,
                 format=item.format, metadata=item.metadata)
    try:
        arr = clf.prepare(item.image)
        if thumb:
            im = thumbnail(item.image, thumb)
            im.info = {}  # no EXIF, XMP or comment of the file's: Pillow writes a JPEG's comment into the page's JPEG
            rec.thumbnail = im
    except Exception as exc:
        rec.error = f"could not prepare image: {exc}"
        return rec, None
    return rec, arr


def _run_batch(clf: Classifier, pending: list[tuple[Record, np.ndarray | None]], t: float) -> list[Record]:
    arrays = [a for _, a in pending if a is not None]
    if arrays:
        probs = clf.probabilities_from_array(np.stack(arrays))
        rows = iter(probs)
        for rec, a in pending:
            if a is None:
                continue
            row = next(rows)
            prior, said = dicom_evidence(rec.metadata, clf.labels, clf.medical_labels) if rec.metadata else (None, "")
            if prior is not None:
                row = apply_prior(row, prior)
                rec.metadata = {**rec.metadata, "evidence": f"image + {said}"}
            elif (prior := format_prior(rec.format, clf.labels, clf.medical_labels, rec.metadata)) is not None:
                row = apply_prior(row, prior)
                rec.metadata = {**(rec.metadata or {}), "evidence": f"image + file format {rec.format}"}
            try:
                pred = clf.prediction(row, t)
            except ValueError as exc:  # NaN from the model: an error row, not a label picked from nothing
                rec.error = f"could not classify image: {exc}"
                continue
            rec.label, rec.medical, rec.verdict = pred.label, pred.medical, pred.verdict
            rec.confidence, rec.p_medical, rec.probs = pred.confidence, pred.p_medical, dict(pred.probs)
            rec.model = clf.release
    return [rec for rec, _ in pending]


def summarize(records: Iterable[Record]) -> dict[str, Any]:
    """Counts by verdict and label, plus errors and deliberate skips."""
    s: dict[str, Any] = {"images": 0, "errors": 0, "skipped": 0, "verdicts": {}, "labels": {}}
    for r in records:
        if r.error is not None:
            s["skipped" if r.skipped else "errors"] += 1
            continue
        s["images"] += 1
        s["verdicts"][r.verdict] = s["verdicts"].get(r.verdict, 0) + 1
        s["labels"][r.label] = s["labels"].get(r.label, 0) + 1
    return s


def jsonable(v):
    """Metadata as plain JSON values (a record's, extract's manifest rows): keys as text, tuples as lists, NaN and
    infinities as null, anything else not JSON's own as its text."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):  # a damaged header's NaN: JSON has no such number
        return None
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


__all__ = ["Record", "RECORD_FIELDS", "classify", "summarize", "default_classifier", "default_workers",
           "check_threshold"]
