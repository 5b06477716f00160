"""Records written as they arrive (JSONL, CSV, JSON, Parquet), and resuming a run from what it already wrote."""

from __future__ import annotations

import codecs
import contextlib
import csv
import errno
import io
import json
import os
import re
import stat
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import IO, Iterator, Mapping, NamedTuple

from .keyset import KeySet
from .lists import url_key
from .pipeline import RECORD_FIELDS, Record
from .sources import is_url

APPENDABLE = ("jsonl", "csv")


class RecordWriter:
    """Writes one record at a time, each flushed as it is written, so a long run keeps nothing in memory, a reader
    (`tail -f`, `| jq`) sees every row as it comes, and an interrupted run keeps what it did. JSON is a list:
    closing ends it, so even a stopped run leaves valid JSON. A file that cannot take a whole row (a full disk) is
    cut back to the last one (`_cut`).

    `labels` (the model's) adds every label's probability, the source format and its metadata: nested
    `probs`/`metadata` in JSON, `prob_<label>` columns and `metadata` as a JSON string in CSV. `threshold` (the
    run's) is written on every row after the rest, with the model (`stamp_fields`), so a file tells how its
    verdicts were made; None writes rows without them, as medimg did before (a file of that shape carried on)."""

    def __init__(self, stream: IO[str], fmt: str, header: bool = True, labels: list[str] | None = None,
                 threshold: float | None = None):
        self.stream, self.fmt, self.n, self.labels, self.threshold = stream, fmt, 0, labels, threshold
        self._appends = _appends(stream)  # None: not such a file
        self.whole = _file_end(stream, self._appends)  # where the last whole row ends, in a regular file (see _cut)
        self._sent: list[str] = []  # the text written after it, not flushed yet
        if fmt == "csv":
            self._line = io.StringIO()
            self._csv = csv.DictWriter(self._line, fieldnames=csv_fields(labels, threshold is not None))
            if header:
                self._csv.writeheader()
                self._send(self._taken())
        elif fmt == "json":
            self._send("[")

    def _taken(self) -> str:
        text = self._line.getvalue()
        self._line.seek(0)
        self._line.truncate()
        return text

    def _send(self, text: str) -> None:
        if self.whole is not None:
            if not self._sent:  # a row begins where the file ends now (a resumed run's tail may have been cut)
                self.whole = _file_end(self.stream, self._appends)
            self._sent.append(text)
        self.stream.write(text)

    def write(self, rec: Record) -> None:
        row = stamped(rec, self.labels, self.threshold)
        try:
            if self.fmt == "csv":
                if self.labels is not None:
                    probs, meta = row.pop("probs"), row.pop("metadata")
                    row.update({f"prob_{lb}": probs.get(lb) for lb in self.labels},
                               metadata=json.dumps(meta, ensure_ascii=False) if meta else None)
                self._csv.writerow({k: csv_cell(v) for k, v in row.items()})
                self._send(self._taken())
            elif self.fmt == "jsonl":
                self._send(json_line(row) + "\n")
            else:
                self._send(("," if self.n else "") + "\n" + json_line(row))
            self._flush()  # each row reaches the file or pipe now: `tail -f`, `| jq`, and a run killed keeps it
        except OSError:
            self._cut()
            raise
        self.n += 1

    def close(self) -> None:
        try:
            if self.fmt == "json":
                self._send("\n]\n")
            self._flush()
        except OSError:
            self._cut()
            raise

    def _flush(self) -> None:
        self.stream.flush()
        sent, self._sent = self._sent, []
        if self.whole is None or not sent:
            return
        data = "".join(sent).encode(self.stream.encoding, self.stream.errors or "strict")
        fd = self.stream.fileno()
        # an unbuffered stream (python -u, PYTHONUNBUFFERED=1: the standard output) drops the bytes a write did
        # not take (a disk filling up) without a word: written here, which raises why they could not be
        short = min(self.whole + len(data) - os.lseek(fd, 0, os.SEEK_CUR), len(data))
        while short > 0:
            short -= os.write(fd, data[-short:])
        self.whole += len(data)

    def _cut(self) -> None:
        """After a write to a file failed (a full disk, a quota, an I/O error): the file cut back to its last whole
        row, with JSON's `]` when there is room, so the rows kept read whole (`jq`, pandas), and the rest of the
        row the stream still holds sent to /dev/null (its file descriptor's from now on), where closing it writes
        it. A write to a pipe is left as it is."""
        if self.whole is None:
            return
        fd, end = self.stream.fileno(), self.whole
        self.whole = None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, end)
            if self.fmt == "json":  # its `]`, in the room the cut row's bytes left (a bare `]` when 1 or 2 bytes)
                for close in (b"\n]\n", b"]") if self.n else (b"[]\n", b"[]"):
                    os.lseek(fd, end, os.SEEK_SET)
                    if os.write(fd, close) == len(close):
                        break
                    os.ftruncate(fd, end)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)


def _appends(stream: IO[str]) -> bool | None:
    """Whether `stream` is a regular file opened to append (`>> file`), when it is one (not a pipe, a terminal or
    a StringIO) on a system whose text streams write a line end as it is (POSIX), else None. Only a text file
    written through its own descriptor (not a stream whose `fileno()` is another's, as Jupyter's standard output
    gives) in UTF-8 (whose text encodes alike a row at a time: not utf-8-sig's or UTF-16's BOM again)."""
    buffer = getattr(stream, "buffer", None)
    if os.linesep != "\n" or not isinstance(stream, io.TextIOWrapper) or \
            not isinstance(getattr(buffer, "raw", buffer), io.FileIO):
        return None
    try:
        if codecs.lookup(stream.encoding).name != "utf-8":
            return None
        import fcntl

        fd = stream.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND)
    except (ImportError, OSError, ValueError, AttributeError, LookupError):
        return None


def _file_end(stream: IO[str], appends: bool | None) -> int | None:
    """Where `stream` writes next, when `_appends` says it is such a file (asked once: a row's start is asked for
    each row, and three system calls and an encoding's look-up a row made 100,000 JSONL rows 1.3 times as long to
    write), else None."""
    if appends is None:
        return None
    try:
        fd = stream.fileno()
        return os.fstat(fd).st_size if appends else os.lseek(fd, 0, os.SEEK_CUR)  # `>>`: at its end, wherever it points
    except (OSError, ValueError, AttributeError):
        return None


# file systems whose flock is a mandatory byte-range lock (Linux's SMB client to a server without Unix extensions:
# Windows, most NAS): the run's own writes and reads through its other handle would be refused (EACCES)
NO_FLOCK = ("cifs", "smb3", "smbfs")


def fs_type(fd: int) -> str | None:
    """The type of the file system the open file `fd` is on (Linux: /proc/self/mountinfo, by device), or None."""
    dev = os.fstat(fd).st_dev
    want = f"{os.major(dev)}:{os.minor(dev)}"
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as lines:
            for line in lines:
                fields, _, rest = line.partition(" - ")
                if fields.split()[2:3] == [want] and rest.split():
                    return rest.split()[0]
    except OSError:
        pass
    return None


def exclusive(fd: int, busy: str) -> bool:
    """Lock the open file `fd` (flock, exclusive, not waiting): True when it is locked; False, `fd` closed, where
    it cannot be (a file system without locks, Windows); ValueError(busy), `fd` closed, when another run holds it."""
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except (ImportError, OSError) as exc:
        os.close(fd)
        if getattr(exc, "errno", None) in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise ValueError(busy) from None
        return False


class OutputLock:
    """An exclusive lock (flock) on classify's --out file, held until the run ends, so a second classify writing
    the same file (a --resume started while the first still runs, under nohup) is refused before it cuts or
    appends to it; two writers had interleaved and lost rows. The file is made (empty) when it is not there yet,
    as the run would make it. A path that is not a regular file (/dev/stdout, a pipe, /dev/null) is not locked,
    nor a file on a file system without locks, or on an SMB share (`NO_FLOCK`). ValueError when another run holds
    it."""

    def __init__(self, path: Path):
        self.fd: int | None = None
        for _ in range(5):  # a Parquet file carried on is replaced by a new one: lock the file the name holds
            try:
                if path.exists() and not path.is_file():
                    return
                fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)
            except OSError:
                return  # the run says why it cannot write it
            if fs_type(fd) in NO_FLOCK:
                os.close(fd)
                return
            if not exclusive(fd, f"{path} is being written by another medimg classify (a run still going, a "
                                 "--resume started again too soon): wait for it to end, or give another --out"):
                return
            with contextlib.suppress(OSError):
                if os.path.samestat(os.fstat(fd), os.stat(path)):
                    self.fd = fd
                    return
            os.close(fd)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    __del__ = release


class FolderLock:
    """An exclusive lock (flock on the folder itself, so no file is added to it) on an output folder, held until
    the run ends: a second `command` run into it (a --resume started while the first still runs) is refused
    before it reads, deletes or adds anything there. ValueError when another run holds it. Where folders cannot
    be locked (Windows, a share without locks) the folder is used unlocked."""

    def __init__(self, out: Path, command: str):
        self.fd: int | None = None
        try:
            fd = os.open(out, os.O_RDONLY)
        except OSError:
            return
        # extract and scale lock folders alike: the one holding it may be either
        if exclusive(fd, f"{out} is being written by another medimg run (an extract or a scale still going, a "
                         f"--resume started again too soon): wait for it to end, or give this {command} another "
                         "folder"):
            self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    __del__ = release


PARQUET_ROWS = 1000  # records in each Parquet row group, written once it fills: all a long run holds
PARQUET_EXTRA = ("writing Parquet needs pyarrow: pip install pyarrow (from a checkout: .venv/bin/pip install "
                 "pyarrow), or install medimg with the scale extra (pip install 'medimg[scale]'), which brings it")


def parquet_missing() -> str | None:
    """Why Parquet cannot be written here (no pyarrow), or None."""
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return PARQUET_EXTRA
    return None


def stamp_fields(labels: list[str] | None = None) -> list[str]:
    """The fields `classify` writes after a record's own, saying how its verdict was made: the model's name and
    release (`--full` has it already; none on an error's row) and the threshold (every row)."""
    return ["threshold"] if labels is not None else ["model", "threshold"]


def stamped(rec: Record, labels: list[str] | None, threshold: float | None) -> dict:
    """The record's row as `classify` writes it: --full's fields when `labels` are given, then `stamp_fields`
    when `threshold` is."""
    row = rec.to_dict(full=labels is not None)
    if threshold is not None:
        row.setdefault("model", rec.model)
        row["threshold"] = float(threshold)
    return row


def parquet_schema(labels: list[str] | None = None, stamp: bool = False):
    """The JSONL record's fields as Parquet columns, in its order and with its types: booleans, numbers and text,
    null where JSON has null. `labels` adds --full's fields: `probs` a struct of every label's probability,
    `metadata` JSON text (its keys differ from file to file), as in CSV; `scale`'s Parquet files too. `stamp`
    adds `classify`'s `stamp_fields` last."""
    import pyarrow as pa

    types = {"medical": pa.bool_(), "confidence": pa.float64(), "p_medical": pa.float64(), "width": pa.int64(),
             "height": pa.int64(), "skipped": pa.bool_()}
    names = list(RECORD_FIELDS) if labels is None else RECORD_FIELDS + ["skipped", "format", "source", "model",
                                                                         "metadata"]
    fields = [(name, types.get(name, pa.string())) for name in names]
    if labels is not None:
        fields.append(("probs", pa.struct([(lb, pa.float64()) for lb in labels])))
    if stamp:
        fields += [(name, pa.float64() if name == "threshold" else pa.string()) for name in stamp_fields(labels)]
    return pa.schema(fields)


class ParquetRecordWriter:
    """Writes records to a Parquet file as RecordWriter does to text: a row group each PARQUET_ROWS records, as
    they come, so a long run holds no more than that. Closing writes the rest and the file's footer, so a run
    stopped by Ctrl-C or SIGTERM leaves a readable file with every record so far. Names are text as in CSV (a
    name's bytes that are not UTF-8 are U+FFFD). `threshold` as for RecordWriter."""

    def __init__(self, stream: IO[bytes], labels: list[str] | None = None, rows: int | None = None,
                 threshold: float | None = None):
        import pyarrow.parquet as pq

        self.labels, self.n, self.rows, self.pending, self.threshold = labels, 0, rows or PARQUET_ROWS, [], threshold
        self.schema = parquet_schema(labels, threshold is not None)
        self._writer = pq.ParquetWriter(stream, self.schema)

    def write(self, rec: Record) -> None:
        row = stamped(rec, self.labels, self.threshold)
        if self.labels is not None:  # none, or {} (an error's row in JSONL): null
            meta = row["metadata"]
            row["metadata"] = json.dumps(meta, ensure_ascii=False) if meta else None
            row["probs"] = row["probs"] or None
        self.pending.append({k: readable(v) for k, v in row.items()})
        self.n += 1
        if len(self.pending) >= self.rows:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self.pending:
            rows, self.pending = self.pending, []
            self._writer.write_table(pa.Table.from_pylist(rows, schema=self.schema))

    def close(self) -> None:
        try:
            self._flush()
        finally:
            self._writer.close()


class ParquetCarriedOn(ParquetRecordWriter):
    """Carries on the Parquet file at `path` (a file without rows has no `tail`) with its rows before
    `tail.start` (`resume_parquet`), and the last input's after them unless `tail` says they go (decided before
    the first record is written; they stay when none is): they are copied a row group at a time into a new file
    beside it, the new records follow, and closing puts that file in the old one's place at once (on Ctrl-C or
    SIGTERM too). Until then the old file is as it was, and it stays so when the new one cannot be written whole
    (a full disk)."""

    def __init__(self, path: Path, tail: Tail | None, labels: list[str] | None = None, rows: int | None = None,
                 threshold: float | None = None):
        self.path = Path(os.path.realpath(path))  # a link is followed: the file it names is replaced
        self.tail, self.tail_copied = tail, False
        fd, name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".resuming")
        self.temp, self.stream = Path(name), os.fdopen(fd, "wb")
        try:
            os.chmod(self.temp, stat.S_IMODE(self.path.stat().st_mode))
            super().__init__(self.stream, labels, rows, threshold)
            # read now: an unreadable one is said now
            self.tail_rows = self._copy(tail.start, tail.rows) if tail else []
        except BaseException:
            self._drop()
            raise

    def _copy(self, stop: int, end: int) -> list:
        """Copy the first `stop` rows, and return those from `stop` to `end` (the tail's) as tables."""
        old, at, rest = _parquet_file(self.path), 0, []
        for i in range(old.num_row_groups):
            size = old.metadata.row_group(i).num_rows
            if at < end:
                try:
                    group = old.read_row_group(i)
                except (OSError, ValueError) as exc:  # pyarrow's errors are both
                    raise ValueError(f"{self.path} cannot be resumed: its row group {i + 1} cannot be read "
                                     f"({exc}); it is left as it is") from None
                if at < stop:
                    self._writer.write_table(group.slice(0, stop - at))
                if at + size > stop:
                    rest.append(group.slice(max(stop - at, 0)))
            at += size
        return rest

    def write(self, rec: Record) -> None:
        self._copy_tail()
        super().write(rec)

    def _copy_tail(self) -> None:
        if not self.tail_copied:
            self.tail_copied = True
            # they stay (or nothing was written, so nothing said they go)
            if self.tail is not None and not self.tail.redo:
                for table in self.tail_rows:
                    self._writer.write_table(table)
            self.tail_rows = []

    def close(self) -> None:
        try:
            self._copy_tail()
            super().close()
            self.stream.flush()
            os.fsync(self.stream.fileno())
            self.stream.close()
        except BaseException:
            self._drop()
            raise
        os.replace(self.temp, self.path)

    def _drop(self) -> None:
        if getattr(self, "_writer", None) is not None:  # before its stream: it would write to a closed file later
            with contextlib.suppress(Exception):
                self._writer.close()
        with contextlib.suppress(OSError):
            self.stream.close()
        with contextlib.suppress(OSError):
            self.temp.unlink()


def _parquet_file(path: Path):
    """The Parquet file at `path` opened (its footer read), or ValueError saying why it cannot be resumed."""
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (OSError, ValueError) as exc:  # ArrowInvalid is a ValueError
        raise ValueError(f"{path} cannot be resumed: it is not a whole Parquet file ({exc}). A run stopped by "
                         "kill -9 or a crash never wrote the footer that says where its rows are, so none can be "
                         "read; it is left as it is: run again without --resume (which replaces it), or give "
                         "another --out") from None


def _same_columns(path: Path, schema, labels: list[str] | None) -> None:
    """Refuse (ValueError) a Parquet file whose columns are not those this run writes: written with other
    --full settings, by a model with other labels, or not by medimg. Rows with or without `stamp_fields` are
    both medimg's (without: written before it wrote them)."""
    if any(schema.equals(parquet_schema(labels, stamp), check_metadata=False) for stamp in (True, False)):
        return
    names = schema.names
    if names[:len(RECORD_FIELDS)] != RECORD_FIELDS:
        raise ValueError(f"{path} is not a medimg Parquet file (its columns are {', '.join(names)}); not "
                         "resuming, so nothing in it is lost")
    if ("probs" in names) != (labels is not None):
        raise ValueError(f"{path} was written {'with' if 'probs' in names else 'without'} --full: resume it the "
                         "same way, so every row has the same fields")
    if "probs" in names:
        probs = schema.field("probs").type
        had = [probs.field(i).name for i in range(probs.num_fields)] if hasattr(probs, "num_fields") else []
        if had != labels:
            raise ValueError(f"{path} holds the probabilities of the labels {', '.join(had)}, not this model's "
                             f"{', '.join(labels)}: resume with the --model the run began with")
    raise ValueError(f"{path} has other columns or types than medimg writes; not resuming, so nothing in it is "
                     "lost")


def _parquet_rows(path: Path, parquet) -> Iterator[tuple[str, dict]]:
    """(input, row) for each row of a Parquet output, with the fields resume looks at, a row group at a time."""
    columns = [c for c in ("input", *_FIRST, "verdict", "model", "source") if c in parquet.schema_arrow.names]
    for i in range(parquet.num_row_groups):
        try:
            group = parquet.read_row_group(i, columns=columns).to_pylist()
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path} cannot be resumed: its row group {i + 1} cannot be read ({exc}); it is left "
                             "as it is") from None
        for row in group:
            yield str(row["input"]), row


_SURROGATE = re.compile("[\ud800-\udfff]")


def readable(value):
    """A file name that is not UTF-8 (its bytes kept as surrogates) with U+FFFD for those bytes: how CSV and the
    table show it, as the web app and the API do, so every output is valid UTF-8."""
    return _SURROGATE.sub("\ufffd", value) if isinstance(value, str) else value


# C0 and C1 controls (ESC starts a terminal's escape sequences, C1's CSI too) and the bidi overrides that make a
# name read in another order than its characters (`x\u202egnp.exe` shows as `xexe.png`), and the line and
# paragraph separators (U+2028, U+2029), which a terminal shows as nothing, shifting the table's border
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028-\u202e\u2066-\u2069]")


def shown(value: str, keep: str = "") -> str:
    """Text for a terminal: `readable`, with every control character but those in `keep` written as its escape
    (`\\x1b`, `\\n`, `\\u202e`), so a name cannot move the cursor, recolour, retitle or clear the terminal,
    nor break a table's row."""
    return _CONTROLS.sub(lambda m: m[0] if m[0] in keep else m[0].encode("unicode_escape").decode("ascii"),
                         readable(value))


def csv_cell(value):
    """A value as a CSV cell: readable text, and booleans as JSON (and `scale`'s Arrow) write them, true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return readable(value)


# DEL and C1 controls, which json writes as they are, and the line and paragraph separators, which json writes
# as they are too but str.splitlines() and JavaScript before ES2019 take for the end of a line
_C1 = re.compile("[\x7f-\x9f\u2028\u2029]")


def json_line(row: dict) -> str:
    """One row as JSON, on one line for every reader; a file name that is not UTF-8 (its bytes kept as
    surrogates) is written escaped (\\udcXX), which is ASCII and reads back in Python as the same name."""
    text = json.dumps(row, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(row)
    return _C1.sub(lambda m: f"\\u{ord(m[0]):04x}", text)  # json escapes C0 controls, not C1 (CSI, U+009B)


def open_output(path: Path, append: bool):
    """The output file (valid UTF-8: see readable and json_line)."""
    return open(path, "a" if append else "w", encoding="utf-8", newline="")


def csv_fields(labels: list[str] | None = None, stamp: bool = False) -> list[str]:
    """CSV's columns: the record's, --full's when `labels` are given (`scale` writes those), then `classify`'s
    `stamp_fields` when `stamp`."""
    extra = stamp_fields(labels) if stamp else []
    if labels is None:
        return list(RECORD_FIELDS) + extra
    return (RECORD_FIELDS + ["skipped", "format", "source", "model"] + [f"prob_{lb}" for lb in labels] +
            ["metadata"] + extra)


def stamped_file(path: Path, fmt: str, line: str) -> bool:
    """Whether an earlier run's output at `path` (whose `head_line` is `line`) has `stamp_fields` (a file a medimg
    before them wrote has not), so rows added to it take its shape; a missing or empty file is written with them."""
    if not path.exists() or path.stat().st_size == 0:
        return True
    if fmt == "parquet":
        with contextlib.suppress(ValueError):
            return "threshold" in _parquet_file(path).schema_arrow.names
        return True  # not resumable: resume_parquet says why
    if fmt == "csv":
        return "threshold" in csv_header(line)
    row = first_row(line)
    return row is None or "threshold" in row


_FIRST = ("locator", "width", "height", "p_medical")  # what a record is told by from a row of another input's


def _same_record(row: dict | None, rec: Record) -> bool:
    """Whether `row`, as any format wrote it, says what `rec` says (p_medical to 4 decimals: rows keep 6)."""
    def seen(value) -> str:
        return "" if value is None else str(value)

    if row is None or any(seen(row.get(f)) != seen(getattr(rec, f)) for f in ("locator", "width", "height")):
        return False
    p = row.get("p_medical")
    if p in (None, "") or rec.p_medical is None:
        return p in (None, "") and rec.p_medical is None
    return abs(float(p) - rec.p_medical) < 1e-4


class Tail:
    """The rows of the last input in an earlier run's output (from row `start` on, of `rows` whole rows): it may
    have stopped part-way (a PDF with more images to come), or the run may have finished. Which is decided by
    the first record this run writes (`settle`): when it comes from the input as given that those rows came
    from, or that holds it, the input is read again, so its rows go (`redo`); otherwise (a finished run carried
    on with new inputs) they stay and it counts as done. A name CSV or Parquet wrote with U+FFFD is another
    input's too (caf\\udce8.png, caf\\udce9.png): `rec` is from the same one only when it says what the first row
    says (`first`)."""

    def __init__(self, path: Path, fmt: str, start: int, rows: int, name: str, source: str | None,
                 first: dict | None = None):
        self.path, self.fmt, self.start, self.rows, self.name, self.source = path, fmt, start, rows, name, source
        self.first = first
        self.redo: bool | None = None  # not settled yet

    def _names(self, written: str | None, name: str | None, rec: Record) -> bool:
        """Whether `name` is `written`, and not just another name written the same (U+FFFD) unlike the first row."""
        if written is None or name is None or name not in Spellings([written]):
            return False
        return Spellings([written])._has(name) or _same_record(self.first, rec)

    def read_again(self, rec: Record) -> bool:
        """Whether this run reads the input again, `rec` being the first record it writes: the same input, the
        input as given its rows name (`source`, written with --full), or a folder or container it is in."""
        if self._names(self.name, rec.input, rec) or self._names(self.source, rec.source, rec):
            return True
        given = rec.source or rec.input
        if self.name.startswith(given + ":"):  # a member of the zip, mailbox, … given
            return True
        return not is_url(given) and not is_url(self.name) and _file_key(self.name).startswith(_file_key(given) + "/")

    def settle(self, rec: Record) -> bool:
        """Decide at `rec`, the first record this run writes; True when the rows go. A JSONL or CSV file is cut
        here (nothing of this run is in it yet); a Parquet file is carried on by `ParquetCarriedOn`."""
        if self.redo is None:
            self.redo = self.read_again(rec)
            if self.redo and self.fmt != "parquet":
                _truncate(self.path, self.fmt, self.start)
        return self.redo


def resume(path: Path, fmt: str, threshold: float | None = None,
           model: str | None = None) -> tuple[Counter[str], set[str], Tail | None]:
    """What an earlier run already wrote to `path`, so this run can carry on: (done, written, tail).

    `done` are the inputs to pass over without opening (a file, zip member or URL whose rows are all in), with
    how many rows each has (see `Claims`);
    `written` every input with rows in the file, so a record for one of them is not written again (the
    members of a zip fetched by URL, which is fetched again; a container's own note). The last input in
    the file may have stopped part-way (a PDF with more images to come): `tail` (see Tail) holds its rows
    until the first record this run writes says whether they go. A cut-off last line goes at once. Rows of one
    input are contiguous (the pipeline keeps input order). A missing or empty file is a fresh start; a
    file that is not a medimg output of this format is refused (ValueError), never cut. So is one whose
    verdicts say it was written at another `threshold` than this run's, or whose rows name another `model`
    (rows written with every field do; when one is given).
    """
    if fmt not in APPENDABLE:
        raise ValueError("resuming needs --format jsonl, csv or parquet (rows that can be carried on)")
    if not path.exists() or path.stat().st_size == 0:
        return Counter(), set(), None
    found = scan_rows(path, fmt, threshold, model)
    return found.done, found.written, found.tail(path, fmt)


def scan_rows(path: Path, fmt: str, threshold: float | None = None, model: str | None = None) -> _Found:
    """What an earlier run's JSONL or CSV rows in `path` hold (`_Found`: the inputs done, those written, where the
    last input's rows begin), its cut-off last line cut off: what `resume` reads, and `extract --resume` of its
    manifest."""
    found = _scan(path, _rows(path, fmt), threshold, model)
    _truncate(path, fmt, found.rows)  # a cut-off last line
    return found


def resume_parquet(path: Path, labels: list[str] | None = None, threshold: float | None = None,
                   model: str | None = None) -> tuple[Counter[str], set[str], Tail | None]:
    """`resume` for a Parquet file, which is never cut nor appended to: `ParquetCarriedOn` copies its rows
    before `tail.start` into a new file, and the tail's too unless they go. It is read a row group at a time, and
    refused (ValueError), never changed, when it is not whole (no footer: a run killed with kill -9) or has other
    columns than `labels` give (--full, another model)."""
    if not path.exists() or path.stat().st_size == 0:
        return Counter(), set(), None
    parquet = _parquet_file(path)
    _same_columns(path, parquet.schema_arrow, labels)
    found = _scan(path, _parquet_rows(path, parquet), threshold, model)
    return found.done, found.written, found.tail(path, "parquet")


class _Found(NamedTuple):
    done: Counter  # input → its rows
    written: set
    keep: int  # the rows before the last input's
    rows: int  # whole rows
    last: str | None  # the last input
    source: str | None  # its rows' `source`, when written
    first: dict | None  # its first row

    def tail(self, path: Path, fmt: str) -> Tail | None:
        return None if self.last is None else Tail(path, fmt, self.keep, self.rows, self.last, self.source,
                                                   self.first)


def _scan(path: Path, rows: Iterator[tuple[str, dict]], threshold: float | None, model: str | None) -> _Found:
    """What an earlier run's rows hold (`_Found`): see `resume`."""
    keep, done, written, last, source, n, first = 0, Counter(), set(), None, None, 0, None
    bounds, models = Thresholds(), set()
    for n, (name, fields) in enumerate(rows, 1):
        if threshold is not None or model is not None:
            bounds.add(fields)
            models.add(fields.get("model") or model)  # an error's row names none
        if name != last:
            if last is not None:
                written.add(last)
                if not name.startswith(last + ":"):  # not a container's note followed by its members
                    done[last] += n - 1 - keep
            keep, last, source, first = n - 1, name, fields.get("source") or None, fields
    same_run(path, models, bounds, model, threshold,
             "so that every row comes from the same model and every verdict stands at one threshold")
    return _Found(done, written, keep, n, last, source, first)


def same_run(where, models: set, bounds: Thresholds, model: str | None, threshold: float | None, then: str) -> None:
    """Refuse (ValueError) to add rows to `where` when its rows name another model than `model` (`models`, as
    written) or have verdicts that `threshold` would change (`bounds`); None checks nothing."""
    if model is not None and models - {model}:
        raise ValueError(f"{where} holds rows of model {', '.join(sorted(models - {model}))}, not {model}: resume "
                         f"with the --model the run began with, {then}")
    if threshold is not None and not bounds.allow(threshold):
        raise ValueError(f"the verdicts in {where} were written at a threshold {bounds} (as far as their "
                         f"p_medical tells), and {threshold:g} would change some: resume with the --threshold (and "
                         f"--model) the run began with, {then}")


class Thresholds:
    """The thresholds that the verdicts of rows seen so far agree with: `medical` says t ≤ p_medical,
    `non-medical` t ≤ 1 − p_medical, `uncertain` t > max(p, 1 − p). Rows keep p to 6 decimals, so a tie is
    given the benefit of the doubt."""

    def __init__(self):
        self.above, self.up_to = 0.5, 1.0  # the threshold is over `above` and at most `up_to`
        self.uncertain = False

    def add(self, row: dict) -> None:
        try:
            p, verdict = float(row.get("p_medical")), row.get("verdict")
        except (TypeError, ValueError):
            return  # an error or a note: no verdict
        if verdict == "medical":
            self.up_to = min(self.up_to, p + 1e-6)
        elif verdict == "non-medical":
            self.up_to = min(self.up_to, 1 - p + 1e-6)
        elif verdict == "uncertain":
            self.above, self.uncertain = max(self.above, max(p, 1 - p) - 1e-6), True

    def allow(self, threshold: float) -> bool:
        t = max(threshold, 1 - threshold)
        return t <= self.up_to and (t > self.above or not self.uncertain)

    def __str__(self) -> str:
        if self.uncertain and self.above >= self.up_to:
            return "that changed part-way (no one threshold agrees with all of them)"
        high = f"at most {self.up_to:.6g}"
        return f"over {self.above:.6g} and {high}" if self.uncertain else f"of {high}"


HEAD_BYTES = 1 << 20  # a medimg row is shorter, but for a data: URI's


def head_line(path: Path) -> str:
    """The first line of `path`, with its line end when whole (at most HEAD_BYTES; "" for a missing file): read
    once by --resume, it tells the format medimg wrote the file in (`written_as`), a CSV's columns, a JSONL's first
    row (`first_row`)."""
    try:
        with open(path, "rb") as f:
            line = f.readline(HEAD_BYTES)
            if not line.endswith(b"\n") and line.startswith(_ROW_START.encode()):  # a row of a data: URI over
                line += f.readline()  # HEAD_BYTES (its input and source whole): read whole, as resuming does
            return line.decode("utf-8", "surrogateescape")
    except OSError:
        return ""


def written_as(line: str) -> str | None:
    """The format medimg wrote a file in, told by its `head_line`: "parquet", "jsonl" or "csv" (None for a file none
    of them starts so, or a missing one), so --resume of a file in another format says which."""
    if line.startswith("PAR1"):
        return "parquet"
    line = line.rstrip("\r\n")
    if line.startswith("{"):
        with contextlib.suppress(ValueError):
            if "locator" in json.loads(line):
                return "jsonl"
    if csv_header(line)[:len(RECORD_FIELDS)] == RECORD_FIELDS:
        return "csv"
    return None


def same_format(path: Path, fmt: str, line: str) -> None:
    """Refuse (ValueError) to carry on `path`, whose `head_line` is `line`, as `fmt` when medimg wrote it in another
    format (a JSONL file named .csv, or given --format csv): read as `fmt` it would look like someone else's file,
    or a crashed run's."""
    was = written_as(line)
    if was is not None and was != fmt:
        raise ValueError(f"{path} holds medimg {_FORMAT_NAMES[was]} rows, not {_FORMAT_NAMES.get(fmt, fmt)}: "
                         f"resume it with --format {was}, the format it was written in")


_FORMAT_NAMES = {"jsonl": "JSONL", "csv": "CSV", "parquet": "Parquet"}


def first_row(line: str) -> dict | None:
    """An earlier JSONL output's first row, from its `head_line` (None when it is not a whole medimg row: a missing
    or empty file, a cut-off line; `resume` says what is wrong with one that is not ours)."""
    if not line.endswith("\n"):
        return None
    with contextlib.suppress(ValueError):
        row = json.loads(line)
        if isinstance(row, dict) and "locator" in row:
            return row
    return None


def csv_header(line: str) -> list[str]:
    """A CSV's column names, from its `head_line`."""
    with contextlib.suppress(csv.Error):  # a field over the csv module's limit (128 KB): not a medimg CSV
        return next(csv.reader([line.rstrip("\r\n")]), [])
    return []


_ROW_START = '{"input": '  # how each row medimg writes begins (`json_line`)


def _rows(path: Path, fmt: str) -> Iterator[tuple[str, dict]]:
    """(input, row) for each complete row, stopping at the last line if it is cut off. A complete row that is
    not a medimg record is a ValueError: the file is someone else's, or another format's."""
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        if fmt == "jsonl":
            for n, line in enumerate(f, 1):
                if not line.endswith("\n"):
                    if n == 1 and not (line.startswith(_ROW_START) or _ROW_START.startswith(line)):
                        raise ValueError(f"{path} is not a medimg JSONL file (it starts {line[:60]!r}); not resuming, "
                                         "so nothing in it is lost")  # one JSON of someone else's, no line end
                    return  # the last line, cut off by a stopped run
                try:
                    rec = json.loads(line)
                    if "locator" not in rec:
                        raise KeyError("locator")
                    yield str(rec["input"]), rec
                except (ValueError, KeyError, TypeError):
                    raise ValueError(f"line {n} of {path} is not a medimg JSONL record ({line[:60]!r}); "
                                     "not resuming, so nothing in it is lost") from None
            return
        reader = csv.DictReader(f)
        try:
            fields = reader.fieldnames
        except csv.Error as exc:  # a field over the csv module's limit (128 KB)
            raise ValueError(f"{path} is not a medimg CSV (its header cannot be read: {exc})") from None
        if (fields or [])[:len(RECORD_FIELDS)] != RECORD_FIELDS:
            raise ValueError(f"{path} is not a medimg CSV (its header is {fields})")
        bad = None  # a row with too few or too many fields: the cut-off last row, or not ours
        held = None  # the row read last: cut off when the file does not end with a line's end
        try:
            for row in reader:
                if bad is not None:
                    raise ValueError(f"a row before the last of {path} is not a whole medimg row; not "
                                     "resuming, so nothing in it is lost")
                if None in row.values() or None in row:
                    bad = row
                    continue
                if held is not None:
                    yield held["input"], held
                held = row
        except csv.Error:  # the rest cannot be read: the row before it is whole
            bad = True
        if held is not None and (bad is not None or _ends_a_line(path)):  # a bad row came after it: it is whole
            yield held["input"], held


def _ends_a_line(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.seek(0, os.SEEK_END) > 0 and f.seek(-1, os.SEEK_END) >= 0 and f.read(1) == b"\n"


def _inputs(path: Path, fmt: str) -> Iterator[str]:
    for name, _ in _rows(path, fmt):
        yield name


def _truncate(path: Path, fmt: str, keep: int) -> None:
    """Cut `path` after its first `keep` rows, in place: no copy (a nearly full disk can still be resumed) and
    the file keeps its mode. Nothing is done when there is nothing after them."""
    with open(path, "rb") as f:
        start, pos = 0, 0

        def lines() -> Iterator[str]:
            nonlocal pos
            for line in f:
                pos += len(line)
                yield line.decode("utf-8", "surrogateescape")

        rows = lines() if fmt == "jsonl" else csv.reader(lines())
        if fmt == "csv":
            next(rows, None)  # the header
            start = pos
        for i, _ in enumerate(rows):  # a CSV row may span lines: the reader takes no more than it needs
            if i == keep:
                break
            start = pos
    if start < path.stat().st_size:
        os.truncate(path, start)


def no_room(exc: BaseException) -> bool:
    """Whether `exc` says the output's disk (or quota) is full: the run stops there, its output whole."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def cannot_write(exc: BaseException) -> bool:
    """Whether `exc` says the output cannot be written any more: no room, or a disk or share that failed, went
    read-only or refuses now. Every write after it would fail too, so the run stops, its output whole."""
    return no_room(exc) or isinstance(exc, OSError) and exc.errno in (
        errno.EIO, errno.EROFS, errno.ESTALE, errno.EACCES, errno.EPERM)


class Claims:
    """Which names a name as CSV and Parquet wrote it stands for: bytes of a name that are not UTF-8 are U+FFFD
    there, so caf\\udce8.png and caf\\udce9.png are both caf\\ufffd.png. The first names met (in the order the earlier
    run met them, when it is run again) are taken as the ones written, no more of them than it has rows (an input
    has one at least); any other is read, where it was passed over unread."""

    def __init__(self, rows: Mapping[str, int]):
        self.rows = Counter()  # by the name's key: however a path is spelled
        for name, n in rows.items():
            if "\ufffd" in name:
                self.rows[self._key(name)] += n
        self.taken: dict[str, set[str]] = {}
        self.others: set[str] = set()  # names known not to be the ones written (`other`)
        self.lock = threading.Lock()  # a nested archive's members are asked about from a worker thread

    @staticmethod
    def _key(name: str) -> str:
        return name if is_url(name) else _file_key(name)

    def take(self, shown: str, name: str) -> bool:
        """Whether `name`, written as `shown`, is one of the names written."""
        key, mine = self._key(shown), self._key(name)
        with self.lock:
            if mine in self.others:
                return False
            taken = self.taken.setdefault(key, set())
            if mine not in taken and len(taken) < (self.rows[key] or 1):
                taken.add(mine)
            return mine in taken

    def other(self, name: str) -> None:
        """`name` is not one of the names written (an earlier run's last input kept, this one read instead)."""
        with self.lock:
            self.others.add(self._key(name))


class Spellings(set):
    """Inputs an earlier run wrote, matched however a path is spelled now (scans/a.png, ./scans/a.png and
    /abs/scans/a.png are one file, for runs started in the same folder) and a URL however it is spelled
    (`url_key`: HTTP://Host:80/a is http://host/a; `fragments` keeps `#…` apart, as --render does). A name
    written with U+FFFD (CSV, Parquet) stands for as many names as `claims` allows, all of them without it."""

    def __init__(self, names, fragments: bool = False, claims: Claims | None = None):
        super().__init__(names)  # as written: JSONL keeps a name's bytes that are not UTF-8, CSV has U+FFFD for them
        self._url_key = lambda url: url_key(readable(url), fragments)  # one that is not UTF-8 is not fetched
        # the keys as 16-byte digests: as text they took ~190 bytes a name (a million-row --resume, 0.5 GB more)
        self.keys = KeySet([self._key(n) for n in self])
        self.claims = claims

    def _key(self, name) -> str:
        return "u" + self._url_key(name) if is_url(name) else "f" + _file_key(name)

    def add(self, name) -> None:
        super().add(name)
        self.keys.add_new([self._key(name)])

    def __contains__(self, name) -> bool:
        # the name, or as CSV and Parquet wrote it; never two names made one (JSONL's M\udcf6ller is not M\udcfcller)
        if self._has(name):
            return True
        shown = readable(name)
        if shown == name or not self._has(shown):
            return False
        return self.claims is None or self.claims.take(shown, name)

    def _has(self, name) -> bool:
        if super().__contains__(name):
            return True
        return self._key(name) in self.keys


def _file_key(name: str) -> str:
    """The name from / with `.` and doubled slashes gone; `..` is kept (beside a link it is another folder,
    and in a zip member's name it is not a folder at all)."""
    parts = os.path.join(os.getcwd(), name).split("/")
    return "/".join(p for p in parts if p not in ("", "."))
