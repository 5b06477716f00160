"""Ray Data job: a list of inputs (URLs, paths) → one row per image, written as JSONL/Parquet/CSV.

Each actor loads the model once and runs the ordinary pipeline on its share of inputs, so the
job inherits every limit and per-item error of the sources. The list is read once, as a stream, into
a file beside the output (every machine of a cluster reads its share there), so the driver holds only
a 16-byte digest per entry (to do each once) and a place per batch, not the list. Rows stream to the output folder
as blocks finish; each row names the list entry it came from (`source`), so `resume` can pass over the
entries already written by an earlier, stopped run.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import math
import numbers
import os
import shutil
import tempfile
import threading
from array import array
from collections import Counter
from dataclasses import asdict
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..keyset import DIGEST, KeySet, digests
from ..output import FolderLock, csv_fields, parquet_schema
from ..pipeline import MAX_WORKERS, RECORD_FIELDS, check_threshold
from ..sources import Limits
from ..sources.base import EMPTY_FILE

# a JSONL row's fields (a Parquet file's columns): classify --full's, then how many rows the entry gave
COLUMNS = RECORD_FIELDS + ["skipped", "format", "source", "model", "metadata", "probs", "source_rows"]
# an earlier medimg's columns, probs and metadata JSON text in every format: read to resume, never written
TEXT_COLUMNS = RECORD_FIELDS + ["skipped", "format", "metadata", "probs", "source", "model", "source_rows"]
SUFFIXES = {"jsonl": ".json", "parquet": ".parquet", "csv": ".csv"}  # the files Ray writes
# images an actor's pipeline gives the model a call (classify's --batch-size). An actor runs CALLS_PER_ACTOR batches
# at once, each holding up to 4 × this many prepared images and the model about 1.5 MB an image while it runs a call
# (docs/cli.md): past 256 that is over 1.5 GB an actor (one CPU), for no speed on a CPU
BATCH_SIZE, MAX_BATCH_SIZE = 32, 256
log = logging.getLogger(__name__)


def schema(labels: list[str], fmt: str = "parquet"):
    """The rows' columns in `fmt`, as classify --full writes them (`output.parquet_schema`: `probs` a struct of
    every label's probability, `metadata` JSON text; in CSV `prob_<label>` columns, as `output.csv_fields`), then
    `source_rows`. JSONL is written from the Parquet columns (`JsonLines`)."""
    import pyarrow as pa

    full = parquet_schema(labels)
    if fmt == "csv":
        types = dict(zip(full.names, full.types))
        full = pa.schema([(c, types.get(c, pa.float64())) for c in csv_fields(labels)])  # prob_<label>: doubles
    return full.append(pa.field("source_rows", pa.int64()))


class ClassifyInputs:
    """Ray actor: classify every input in a batch; one output row per image or error, with the columns of
    `schema(labels, fmt)` (`labels`: the driver's model's, which every actor's must have). A process that dies
    (killed for memory, a reader's crash) is started again and its blocks retried by Ray, without end: a batch
    under way then is read one entry at a time, alone, and an entry under way at a second death is a DIED row."""

    def __init__(self, entries: str, labels: list[str], fmt: str = "jsonl", model_dir: str | None = None,
                 limits: dict | None = None, threshold: float | None = None, threads: int = 1, workers: int = 4,
                 covered: dict[str, list[str]] | None = None, batch_size: int = BATCH_SIZE):
        from ..model import Classifier
        from ..scratch import remove_left_behind

        with contextlib.suppress(OSError):  # the work folders an actor killed on this machine left (a zipped slide's)
            remove_left_behind()
        self.covered = covered or {}  # a DICOMDIR entry → the files it lists that other entries read (`dicomdirs`)

        self.entries = entries  # the file of list entries (Spill) a batch's places point into
        # Why this machine cannot run the job, raised by every call rather than here: Ray restarts an actor whose
        # constructor raises (for tens of seconds) and hands its error back as text; a call's comes back whole.
        self.refused: ValueError | None = None
        try:
            self.clf = Classifier.load(model_dir, threads=threads)
        except (OSError, ValueError) as exc:  # an OSError too: a missing model is no full disk (write_failure)
            self.refused = ValueError(f"{model_dir or 'the default model'}: cannot load the model on this machine "
                                      f"({exc}); every machine needs the same --model")
            return
        if self.clf.labels != list(labels):  # a cluster machine with another model in that folder
            self.refused = ValueError(f"the model here has labels {self.clf.labels}, the job's {list(labels)}: "
                                      "every machine needs the same --model")
        self.labels, self.csv = list(labels), fmt == "csv"
        self.schema = schema(self.labels, fmt)
        self.limits = Limits(**(limits or {}))
        self.threshold = threshold
        self.workers = workers
        self.batch_size = batch_size
        tries = Path(entries + TRIES)  # made by the driver beside the entries (Spill.tries)
        self.tries = tries if tries.is_dir() else None
        self.gate = threading.Condition()  # careful: a batch that runs alone in this process (`_careful`)
        self.running, self.careful, self.waiting = 0, False, 0

    def __call__(self, batch: dict[str, np.ndarray]):
        import pyarrow as pa

        from ..pipeline import Record

        if self.refused is not None:
            raise self.refused
        found: dict[str, list[dict]] = {}
        for start, size in zip(batch["start"], batch["size"]):
            inputs = read_entries(self.entries, int(start), int(size))
            mark = self.tries / str(int(start)) if self.tries else None
            if mark is None or not mark.exists():
                if mark is not None:
                    mark.touch()  # removed once done: still there, it was under way when this process died
                with self._shared():
                    self._classify(inputs, found)
            else:  # an earlier try of this batch was under way when its process died: one entry at a time
                with self._alone():
                    for i, entry in enumerate(inputs):
                        one = mark.with_name(f"{mark.name}.{i}")
                        if one.exists():  # the process died reading this entry, alone
                            rec = Record(input=entry, locator="", error=DIED, source=entry)
                            found.setdefault(entry, []).append(self.row(rec))
                            continue
                        one.touch()
                        self._classify([entry], found)
                        one.unlink()
            if mark is not None:
                mark.unlink(missing_ok=True)
        rows = []
        for group in found.values():
            for d in group:  # how many rows the entry gave: resuming tells a whole entry from a cut-off one
                d["source_rows"] = len(group)
                rows.append(d)
        return pa.Table.from_pylist(rows, schema=self.schema)

    def _classify(self, inputs: list[str], found: dict[str, list[dict]]) -> None:
        """Each input's rows into `found`. One pipeline for them all: its threads open several at once."""
        from ..pipeline import classify

        for s in inputs:
            found.setdefault(s, [])
        given = None
        if any(s in self.covered for s in inputs):  # as in one classify run: each of the export's files read once
            from ..sources.dicomdir import Given, file_key

            given = Given()
            given.files.update(k for s in inputs for p in self.covered.get(s, ()) if (k := file_key(p)) is not None)
        records = classify(inputs, classifier=self.clf, limits=self.limits, batch_size=self.batch_size,
                           threshold=self.threshold, workers=self.workers, seen=given)
        for rec in records:
            found.setdefault(rec.source, []).append(self.row(rec))

    @contextlib.contextmanager
    def _shared(self):
        """A batch run beside the actor's others (but not beside a careful one)."""
        with self.gate:
            self.gate.wait_for(lambda: not self.careful and not self.waiting)
            self.running += 1
        try:
            yield
        finally:
            with self.gate:
                self.running -= 1
                self.gate.notify_all()

    @contextlib.contextmanager
    def _alone(self):
        """A careful batch: nothing else runs in this process, so the entry under way when it dies is the cause."""
        with self.gate:
            self.waiting += 1
            self.gate.wait_for(lambda: not self.careful and not self.running)
            self.waiting -= 1
            self.careful = True
        try:
            yield
        finally:
            with self.gate:
                self.careful = False
                self.gate.notify_all()

    def row(self, rec) -> dict:
        """A record as classify --full writes it to Parquet (or CSV), its names escaped as `_text` says."""
        d = rec.to_dict(full=True)
        d["metadata"] = json.dumps(d["metadata"], ensure_ascii=False) if d["metadata"] else None
        d["probs"] = d["probs"] or None  # every label's probability; none on an error's row
        d["input"], d["source"] = _text(d["input"]), _text(rec.source)
        if self.csv:
            probs = d.pop("probs") or {}
            d.update({f"prob_{lb}": probs.get(lb) for lb in self.labels})
        return d


# beside the entries' file: a file per batch under way (its place), and per entry of a batch done one at a time
TRIES = ".tries"
DIED = ("the worker process died while reading this input (out of memory, or a crash in a reader it uses), "
        "and again when it was read alone: not read a third time")


class Spill:
    """List entries written to a hidden file in the output folder, one JSON string a line (a name that is not
    UTF-8 keeps its bytes as surrogates; a newline in a name stays in its line), and the place of every
    `per` entries, which Ray carries instead of the entries themselves."""

    PREFIX, SUFFIX = ".medimg-inputs-", ".list"

    def __init__(self, folder: Path, per: int):
        for old in folder.glob(f"{self.PREFIX}*{self.SUFFIX}"):  # left by a job killed outright (SIGKILL)
            old.unlink(missing_ok=True)
        for old in folder.glob(f"{self.PREFIX}*{self.SUFFIX}{TRIES}"):
            shutil.rmtree(old, ignore_errors=True)
        fd, name = tempfile.mkstemp(prefix=self.PREFIX, suffix=self.SUFFIX, dir=folder)
        self.path = Path(name)
        self.file = os.fdopen(fd, "wb")
        self.per = per
        self.starts, self.sizes = array("q"), array("q")  # where each batch of `per` entries is, in bytes
        self.count = 0
        self._start = 0
        self.covered: dict[str, list[str]] = {}  # spill_new's `dicomdirs`

    def add(self, entry: str) -> None:
        if self.count % self.per == 0:
            self._close_batch()
        self.file.write(json.dumps(entry).encode("ascii") + b"\n")
        self.count += 1

    def _close_batch(self) -> None:
        end = self.file.tell()
        if end > self._start:
            self.starts.append(self._start)
            self.sizes.append(end - self._start)
        self._start = end

    def close(self) -> None:
        if not self.file.closed:
            self._close_batch()
            self.file.close()

    def drop(self, marked: Callable[[list[str]], list[bool]], chunk: int = 16384) -> int:
        """Write the entries again without those `marked` (asked `chunk` at a time); how many were dropped."""
        self.close()
        old = self.path
        fd, name = tempfile.mkstemp(prefix=self.PREFIX, suffix=self.SUFFIX, dir=old.parent)
        self.path, self.file = Path(name), os.fdopen(fd, "wb")
        self.starts, self.sizes, self.count, self._start = array("q"), array("q"), 0, 0
        dropped = 0
        try:
            with open(old, "rb") as f:
                while part := [json.loads(line) for line in islice(f, chunk)]:
                    for entry, inside in zip(part, marked(part)):
                        dropped += bool(inside)
                        if not inside:
                            self.add(entry)
        finally:
            old.unlink(missing_ok=True)
        self.close()
        return dropped

    def places(self) -> list[dict[str, int]]:
        """Each batch's place (start, size), as Ray's items."""
        return [{"start": a, "size": b} for a, b in zip(self.starts, self.sizes)]

    @property
    def tries(self) -> Path:
        """The folder of the marks of batches and entries under way (`ClassifyInputs`: a process that died)."""
        return Path(str(self.path) + TRIES)

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
        shutil.rmtree(self.tries, ignore_errors=True)


def read_entries(path: str, start: int, size: int) -> list[str]:
    """The list entries a batch's place points to in a Spill's file."""
    with open(path, "rb") as f:
        f.seek(start)
        return [json.loads(line) for line in f.read(size).splitlines()]


def _text(value: str | None) -> str | None:
    """A name for the output files: its bytes that are not UTF-8 written as \\xNN (Arrow takes no surrogates)."""
    if value is None:
        return None
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def read_inputs(list_file: str | Path, column: str | None = None) -> list[str]:
    """The entries of a list: one per line (blank lines and # comments ignored), or the cells of `column` in a
    .csv/.tsv/.jsonl/.parquet table (see `medimg.lists`). Rows name their entry (`source`), to join back on."""
    from ..lists import open_list

    return list(open_list(str(list_file), column))


def run(inputs: Iterable[str], out: str | Path, fmt: str = "jsonl", model_dir: str | None = None,
        limits: Limits | None = None, threshold: float | None = None, concurrency: int = 2,
        inputs_per_batch: int = 16, address: str | None = None, resume: bool = False,
        workers: int = 4, plan: dict | None = None, on_start: Callable[[], object] | None = None,
        tally: Callable[[str, str], str | None] | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Classify `inputs` with Ray Data and write the rows to `out` (a folder); returns the rows written.

    Each of the `concurrency` actors works on CALLS_PER_ACTOR batches of `inputs_per_batch` inputs at a time,
    and opens `workers` inputs of each batch at once (threads: fetching waits on the network, decoding
    releases the GIL), giving the model `batch_size` images a call (1 to MAX_BATCH_SIZE). `resume` passes over the
    inputs whose rows an earlier run already wrote to `out` (files cut off by a stop are deleted first, and
    their inputs done again); without it, rows are added to what is there. An input listed twice is done once.
    `plan`, when given, is filled with how many entries were run and passed over, and how many of the rows
    written are images, errors and skipped notes (`images`, `errors`, `skipped`; `empty` of those are empty
    files); `on_start` is called once Ray is up (whose own handlers take SIGTERM: a caller may take it back
    there). `tally(error, kind)`, when given, names what a written row's error or note counts as (a cap), and
    `plan["tally"]` counts the rows by those names. `inputs` is read once, as it goes: a list file's lines need not fit in memory."""
    fmt = fmt.lower()
    if fmt not in SUFFIXES:
        raise ValueError("the format must be jsonl, parquet or csv (--format)")
    if concurrency < 1 or workers < 1 or inputs_per_batch < 1:  # said now, not by Ray once it is up
        raise ValueError("concurrency, workers and inputs_per_batch must be at least 1 (--concurrency, --workers)")
    if workers > MAX_WORKERS:  # each actor's classify() refuses it, once Ray is up
        raise ValueError(f"workers must be at most {MAX_WORKERS}, not {workers} (--workers)")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
            or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be a whole number from 1 to {MAX_BATCH_SIZE}, not {batch_size!r} "
                         "(--batch-size)")
    check_threshold(threshold)  # as each actor's classify() would, once Ray is up
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # held by the driver until the job ends, before anything there is read or deleted: a second run into the
    # folder would delete this one's list file (its actors then fail) and, resuming, its files being written
    lock = FolderLock(out, "scale")
    try:
        return _locked(inputs, out, fmt, model_dir, limits, threshold, concurrency, inputs_per_batch, address,
                       resume, workers, plan, on_start, tally, int(batch_size))
    finally:
        lock.release()


def _locked(inputs, out: Path, fmt: str, model_dir, limits, threshold, concurrency: int, inputs_per_batch: int,
            address, resume: bool, workers: int, plan, on_start, tally, batch_size: int) -> int:
    others = [f for f in SUFFIXES if f != fmt and _files(out, f)]
    if resume and others:  # its rows would be done again, in another format beside them
        raise ValueError(f"{out} holds {others[0]} output: resume with --format {others[0]}, or give a new folder")
    from ..model import Classifier

    clf = Classifier.load(model_dir, threads=1)  # its labels are the rows' probs columns
    if resume:
        done = done_inputs(out, fmt, clf.release, clf.threshold if threshold is None else threshold)
    else:
        done = KeySet()
    spill = Spill(out, inputs_per_batch)
    try:
        return _run(spill, inputs, done, out, fmt, model_dir, clf.labels, limits, threshold, concurrency,
                    inputs_per_batch, address, workers, plan, on_start, tally, batch_size)
    finally:
        spill.remove()


def _run(spill: Spill, inputs: Iterable[str], done: KeySet, out: Path, fmt: str, model_dir, labels: list[str],
         limits, threshold, concurrency: int, inputs_per_batch: int, address, workers: int, plan: dict | None,
         on_start, tally=None, batch_size: int = BATCH_SIZE) -> int:
    import ray

    given = spill_new(spill, inputs, done, limits)
    if plan is not None:
        plan.update(run=spill.count, passed_over=given - spill.count, images=0, errors=0, skipped=0)
    if not spill.count:
        return 0
    if not ray.is_initialized():
        _reachable(address)
        _start_ray(ray, address)
    if on_start is not None:
        on_start()
    # blocks of at most ~8 actor batches: each output file, and what a stop loses, stays small
    blocks = min(len(spill.starts), max(concurrency * 4, math.ceil(spill.count / (inputs_per_batch * 8))))
    spill.tries.mkdir()
    ds = ray.data.from_items(spill.places(), override_num_blocks=blocks)
    ds.context.raise_original_map_exception = True  # an actor's error comes back itself (job_error), not wrapped
    ds = ds.map_batches(
        ClassifyInputs,
        batch_size=1,  # one place: inputs_per_batch entries
        batch_format="numpy",
        **_actors(concurrency),
        num_cpus=1,
        fn_constructor_kwargs={"entries": str(spill.path), "labels": labels, "fmt": fmt, "model_dir": model_dir,
                               "limits": asdict(limits) if limits else None,
                               "threshold": threshold, "workers": workers, "batch_size": batch_size,
                               "covered": spill.covered or None},
    )
    before = set(_files(out, fmt))
    # writing takes no CPU of its own: with the actors holding every core, files still appear as blocks finish
    kw = {"ray_remote_args": {"num_cpus": 0}, "concurrency": min(WRITERS, blocks)}
    if fmt == "jsonl":  # Ray's write_json would leave metadata a string
        from .jsonl import JsonLines

        ds.write_datasink(JsonLines(str(out)), **kw)
    else:
        {"parquet": ds.write_parquet, "csv": ds.write_csv}[fmt](str(out), **kw)
    kinds, named = Counter(), Counter()
    for p in _files(out, fmt):
        if p not in before:
            for _, _, kind, row in _read(p, fmt):
                kinds[kind] += 1
                if tally is not None and kind != "image":
                    named[tally(row["error"], kind)] += 1
    named.pop(None, None)
    if plan is not None:
        plan.update(images=kinds["image"], errors=kinds["error"], skipped=kinds["skipped"] + kinds["empty"],
                    empty=kinds["empty"], **({"tally": named} if tally is not None else {}))
    return sum(kinds.values())


def spill_new(spill: Spill, inputs: Iterable[str], done: KeySet, limits: Limits | None = None) -> int:
    """Write to `spill` each entry of `inputs` once (`lists.once_many`), but those in `done`, and but a file
    in a folder or a member of an archive that is an entry too (`lists.inside_given`: its folder does it,
    whichever comes first); returns how many entries there were, each counted once."""
    from ..lists import inside_given, once_many
    from ..sources import is_url

    given, seen, paths, indexes = 0, KeySet(), False, []
    cwd = os.getcwd()
    for part in once_many(inputs, seen=seen):
        given += len(part)
        written = np.zeros(len(part), bool)
        if len(done):  # as the rows write them (a name's bytes that are not UTF-8 escaped), however spelled
            names = [_text(e) for e in part]
            written = done.contains([_spelled(n) for n in names])
            # a relative path is also the absolute one it names here, as rows from a list of absolute paths say it
            rel = [i for i, n in enumerate(names) if n and not n.startswith("/") and not is_url(n)]
            if rel:
                written[rel] |= done.contains([_spelled(os.path.join(cwd, names[i])) for i in rel])
        for entry, skip in zip(part, written):
            if not skip:
                spill.add(entry)
                paths = paths or not is_url(entry)
                if not is_url(entry) and os.path.basename(entry.rstrip("/")).upper() == "DICOMDIR":
                    indexes.append(entry)
    spill.close()
    if paths:  # only now is every folder known: the spill is read again (a list of URLs is not)
        given -= spill.drop(lambda part: inside_given(part, seen))
    spill.covered = dicomdirs(indexes, seen, (limits or Limits()).max_input_bytes)
    return given


def dicomdirs(entries: list[str], seen: KeySet, max_bytes: int) -> dict[str, list[str]]:
    """For each DICOMDIR entry (a CD's index, named so) not inside a folder given, the files it lists that other
    entries read: given themselves or in a folder given (`find cd -type f`, `cd/*`). Its actor passes over them,
    as one classify run does (`dicomdir.Given`): in other batches, they were read twice."""
    from ..lists import entry_key, inside_given
    from ..sources.dicomdir import find, is_dicomdir, listed

    covered: dict[str, list[str]] = {}
    for entry, inside in zip(entries, inside_given(entries, seen) if entries else []):
        path = Path(entry)
        try:
            with open(path, "rb") as f:
                if inside or not is_dicomdir(f.read(1024)):
                    continue
                f.seek(0)
                names = listed(f.read(max_bytes + 1), max_bytes)
        except Exception:  # unreadable or damaged: its actor says so
            continue
        beside = path.resolve().parent if path.is_symlink() else path.parent
        folders: dict = {}
        found = [str(p) for parts in names if not isinstance(p := find(beside, parts, folders), str)]
        if not found:
            continue
        given = seen.contains([entry_key(p) for p in found])
        held = inside_given(found, seen)
        if read := [p for p, a, b in zip(found, given, held) if a or b]:
            covered[entry] = read
    return covered


def write_failure(exc: BaseException) -> OSError | None:
    """The OSError that says the output cannot be written any more (`output.cannot_write`: a full disk, a failed
    share), when that is what ended the job."""
    from ..output import cannot_write

    return next((e for e in _chain(exc) if isinstance(e, OSError) and cannot_write(e)), None)


def refusal(exc: BaseException) -> str | None:
    """What the ValueError that ended the job says, raised in the driver or in an actor (a model that machine
    lacks, an option it refuses): Ray's wrapper says it with the actor's traceback, and Ray Data adds lines of
    retry advice to an actor's message (which is one line)."""
    from ray.exceptions import RayError

    inner = next((e for e in _chain(exc) if not isinstance(e, RayError)), None)  # past Ray's wrappers
    if not isinstance(inner, ValueError):
        return None
    return str(inner) if inner is exc else str(inner).split("\n", 1)[0]


@contextlib.contextmanager
def errors_to_log():
    """Ray Data's errors (a failed task's traceback, told twice: hundreds of lines) go to its log file alone
    (`<Ray's session folder>/logs/ray-data/`), not to the terminal, where the CLI says in a line what ended
    the job. Its progress and warnings still show."""
    import ray.data  # noqa: F401  (sets up the "ray.data" logger: a file and a console handler)

    def below_error(record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR

    console = [h for h in logging.getLogger("ray.data").handlers if h.name == "console"]
    for handler in console:
        handler.addFilter(below_error)
    try:
        yield
    finally:
        for handler in console:
            handler.removeFilter(below_error)


def _chain(exc: BaseException | None):
    """`exc`, then the errors it was raised from: Ray hands a task's error back wrapped (`RayTaskError`, whose
    `cause` is the error raised in the task; the wrapper itself carries no errno)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__


def _start_ray(ray, address: str | None) -> None:
    """ray.init, whose OSError (a HOME it may not write in: Ray keeps its token in ~/.ray) is said as Ray's: taken
    for --out's, it was "could not write: the rows … are in OUT; check the disk or share" (exit 74)."""
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, ignore_reinit_error=True)
        return
    except ConnectionError as exc:  # no cluster there (`--address auto` with none running): no folder's fault
        said = f"Ray could not connect to a cluster at --address {address}: {exc}"
    except OSError as exc:
        failed = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
        said = (f"Ray could not start ({failed}): it writes in HOME (its token, in .ray) and in TMPDIR (its "
                "session, in ray/); give the job a HOME and a TMPDIR it may write in")
    raise ValueError(said)  # raised outside the except: write_failure follows __context__ too


def _reachable(address: str | None, timeout: float = 10) -> None:
    """A cluster address (host:port, ray://host:port) that answers no connection is an error now: Ray itself
    keeps retrying for minutes. None and "auto" (a cluster on this machine) are left to Ray."""
    import socket

    if not address or address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot reach the Ray cluster at {address} ({exc}); check --address") from None


WRITERS = 2  # write tasks at once: zero-CPU tasks are otherwise unbounded, each a worker process of ~200 MB
CALLS_PER_ACTOR = 4  # batches an actor works on at once: a batch waiting on a dead host holds up only itself


def _actors(concurrency: int) -> dict:
    """map_batches arguments for `concurrency` actors, each running CALLS_PER_ACTOR batches at once (threads)."""
    import inspect

    from ray.data import ActorPoolStrategy

    # Ray ≥ 2.59 (2.53–2.58 have enable_true_multi_threading but not max_concurrent_calls_per_actor)
    if "max_concurrent_calls_per_actor" in inspect.signature(ActorPoolStrategy).parameters:
        return {"compute": ActorPoolStrategy(size=concurrency, max_concurrent_calls_per_actor=CALLS_PER_ACTOR,
                                             enable_true_multi_threading=True)}
    return {"concurrency": concurrency, "max_concurrency": CALLS_PER_ACTOR}  # a threaded actor


def done_inputs(out: str | Path, fmt: str, model: str | None = None, threshold: float | None = None) -> KeySet:
    """The list entries (`source`) with rows in the complete files of `out`, however spelled (`_spelled`:
    `./scans/a.png` is `scans/a.png`). A file a stop cut off is deleted (its inputs are
    done again); a file that is not this job's output is an error, never touched,
    and so is one whose rows name another `model` or have verdicts another `threshold` would change (when
    given): this run's rows would sit beside them. An entry's rows may be in several files (Ray splits a
    block past its size limit): they count together. Each file's rows are tallied as it is read, by digest
    (`keyset`), so a run of millions of rows is resumed in a few bytes a row."""
    from ..output import Thresholds, same_run

    files: dict[Path, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    keys: dict[Path, np.ndarray] = {}
    cut = {}
    bounds, models = Thresholds(), set()
    for path in _files(Path(out), fmt):
        try:
            rows = _read(path, fmt)
        except CutOff as exc:
            cut[path] = exc
            continue
        for _, _, _, row in rows:
            bounds.add(row)
            models.add(row.get("model") or model)  # an error's row names none
        files[path] = _tally(rows)
        keys[path] = np.unique(digests([_spelled(s) for s, _, _, _ in rows if s]))
    same_run(out, models, bounds, model, threshold, "or give a new folder")
    for path, why in cut.items():
        _drop(path, why)
    while True:  # an entry short of its rows loses every file that holds some of them
        every = np.concatenate([d for d, _, _ in files.values()]) if files else np.zeros(0, DIGEST)
        names, where = np.unique(every, return_inverse=True)
        total = np.bincount(where, weights=np.concatenate([n for _, n, _ in files.values()]) if files else None,
                            minlength=len(names)).astype(np.int64)
        short, at = {}, 0
        for path, (d, _, want) in files.items():
            have = total[where[at:at + len(d)]]
            at += len(d)
            lack = np.flatnonzero((want >= 0) & (have < want))
            if len(lack):
                short[path] = (d[lack[0]], int(have[lack[0]]))
        if not short:
            return KeySet.of_digests(np.unique(np.concatenate([keys[p] for p in files])) if files else names)
        for path, (digest, have) in short.items():
            _drop(path, f"{_named(path, fmt, digest)} has {have} of its rows")
            del files[path]


def _spelled(entry: str) -> str:
    """An entry however it is spelled: `lists.url_key` for a URL; a path without `.` segments and doubled
    slashes (its `..` kept), not made absolute, so a run resumed from another folder takes a relative path
    for no file of its own."""
    from ..lists import url_key
    from ..sources import is_url

    return url_key(entry) if is_url(entry) else str(Path(entry)) if entry else entry


def _tally(rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One output file's entries (their digests, sorted), how many rows each has there, and how many it gave
    in all (`source_rows`; -1 where not written)."""
    named = [(s, n) for s, n, _, _ in rows if s]
    d, where = np.unique(digests([s for s, _ in named]), return_inverse=True)
    want = np.full(len(d), -1, np.int64)
    for i, (_, n) in zip(where, named):
        if n is not None:
            want[i] = int(n)
    return d, np.bincount(where, minlength=len(d)), want


def _named(path: Path, fmt: str, digest) -> str:
    """The entry of an output file with this digest (read again: the tally keeps no names)."""
    return next(s for s, _, _, _ in _read(path, fmt) if s and digests([s])[0] == digest)


def _drop(path: Path, why) -> None:
    log.warning("resume: deleting %s, cut off (%s); its inputs are done again", path, why)
    path.unlink()


class CutOff(Exception):
    """An output file that a stopped run left incomplete."""


CHECKED = ("model", "p_medical", "verdict", "error")  # what resume compares with this run's model and
# threshold, and the error or note (`run`'s tally)


def _files(out: Path, fmt: str) -> list[Path]:
    return sorted(p for p in out.glob(f"*{SUFFIXES[fmt]}") if p.is_file()) if out.is_dir() else []


def _kind(error, skipped) -> str:
    """What a row is: an image classified, an error, a skipped note, or the note of an empty file (`empty`)."""
    if not error:
        return "image"
    if skipped not in (True, "True", "true"):
        return "error"
    return "empty" if error == EMPTY_FILE else "skipped"


def _read(path: Path, fmt: str) -> list[tuple[str | None, int | None, str, dict]]:
    """Each row's `source`, `source_rows`, kind (`_kind`) and its `model`, `p_medical` and `verdict`, in one
    output file. CutOff when a stop left it incomplete, ValueError when it is not this job's output or is an
    earlier medimg's (`_earlier`)."""
    not_ours = ValueError(f"{path} is not an output file of this job (no source column); move it away to resume")
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            found = pq.read_schema(path)
        except Exception as exc:
            raise CutOff(exc) from None
        names = found.names
        if "source" not in names:
            raise not_ours
        if "probs" in names and found.field("probs").type == pa.string():
            raise _earlier(path)
        table = pq.read_table(path, columns=[c for c in ("source", "source_rows", "skipped", *CHECKED)
                                             if c in names])
        column = lambda c: table.column(c).to_pylist() if c in names else [None] * len(table)  # noqa: E731
        kinds = [_kind(e, k) for e, k in zip(column("error"), column("skipped"))]
        checked = [dict(zip(CHECKED, values)) for values in zip(*(column(c) for c in CHECKED))]
        return list(zip(column("source"), column("source_rows"), kinds, checked))
    with open(path, encoding="utf-8", newline="") as f:
        if fmt == "jsonl":
            lines = f.read().split("\n")
            if lines == [""]:  # no block is written empty: its write failed at once (a full disk)
                raise CutOff("empty")
            if lines[-1]:
                raise CutOff("last line cut off")
            rows, older = [], False
            for line in lines[:-1]:
                try:
                    rec = json.loads(line)
                except ValueError:
                    raise CutOff("a line is not JSON") from None
                if not isinstance(rec, dict) or "source" not in rec:
                    raise not_ours
                older = older or isinstance(rec.get("probs"), str) or isinstance(rec.get("metadata"), str)
                rows.append((rec["source"], rec.get("source_rows"), _kind(rec.get("error"), rec.get("skipped")),
                             {c: rec.get(c) for c in CHECKED}))
            if older:  # a file cut off is deleted whatever its shape
                raise _earlier(path)
            return rows
        text = f.read()
        if "\n" not in text and _header_start(text):  # stopped before its header was whole (an empty file)
            raise CutOff("cut off in its header")
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if "source" not in (reader.fieldnames or []):
            raise not_ours
        if not text.endswith("\n"):
            raise CutOff("last row cut off")
        rows = []
        try:
            for row in reader:
                if None in row or None in row.values():
                    raise CutOff("last row cut off")
                kind = _kind(row.get("error"), row.get("skipped"))
                rows.append((row["source"], row.get("source_rows") or None, kind, {c: row.get(c) for c in CHECKED}))
        except csv.Error as exc:
            raise CutOff(exc) from None
        if "probs" in reader.fieldnames:  # prob_<label> columns now
            raise _earlier(path)
        return rows


def _earlier(path: Path) -> ValueError:
    """Why rows are not added beside an earlier medimg's (`probs` and `metadata` JSON text in every format): the
    folder would hold two shapes, and its Parquet files would no longer read as one table."""
    return ValueError(f"{path} was written by an earlier medimg, with probs as JSON text, and this one writes "
                      "them as classify --full does: resuming would mix the two in one folder. Finish the run "
                      "with the medimg that began it, or give a new folder")


def _header_start(text: str) -> bool:
    """Whether `text` is the start of this job's CSV header line (empty included), or of an earlier medimg's, up
    to `source`: a header cut off after it names its source column, and `_read` takes it as cut off then."""
    try:
        names = next(csv.reader([text]), [])
    except csv.Error:
        return False
    if not names:
        return True
    n = len(names)
    return any(n <= len(h) and names[:-1] == h[:n - 1] and h[n - 1].startswith(names[-1])
               for h in (csv_fields([]), TEXT_COLUMNS))  # csv_fields([]): classify's, without prob_<label>


__all__ = ["run", "read_inputs", "done_inputs", "write_failure", "refusal", "errors_to_log", "ClassifyInputs", "COLUMNS"]
