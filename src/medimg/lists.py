"""Input lists for `classify --inputs-from` and `scale`: a text file with one input per line, or a table
(CSV, TSV, JSON Lines, Parquet) with a column of inputs, as data-curation teams keep their URL lists; with
`null`, names separated by NUL bytes (`find -print0`), which may hold newlines.

`open_list` checks the file and its column at once (a missing column is a ValueError naming the columns
there) and returns a generator that reads the entries as they are asked for.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import logging
import math
import os
import re
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import httpx

from .sources import is_url

if TYPE_CHECKING:
    from .keyset import KeySet

TABLES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
COLUMNS = ("url", "input", "path", "uri", "file", "filename")  # looked for, in this order, without --column
ROW_GROUP = 1024  # Parquet rows read at a time
CHUNK = 1 << 16  # bytes of a NUL-separated list read at a time
FIELD_LIMIT = 1 << 20  # a CSV cell may be this long (csv's default, 128 KB, is shorter than some data: URLs)
log = logging.getLogger(__name__)


def list_kind(name: str) -> str:
    """text, csv, tsv, jsonl or parquet, from the file name ('-' is standard input, read as text)."""
    return "text" if name == "-" else TABLES.get(Path(name).suffix.lower(), "text")


def open_list(name: str, column: str | None = None, strict: bool = False, null: bool = False) -> "Entries":
    """The entries of the list `name` ('-' for standard input), read lazily. For a table, the cells of
    `column` (default: the first of COLUMNS it has); blank cells are passed over. With `null`, names separated
    by NUL bytes, whatever the file's name. ValueError now when the file is not readable as its kind or has no
    such column, or is a text list holding NUL bytes (read it with `null`). A list that cannot be read on later
    (a damaged Parquet row group, a read error) ends there: its `failed` says so, and with `strict` it raises
    ValueError."""
    if null:
        if column is not None:
            raise ValueError(f"{name}: --column is for tables; --null reads names separated by NUL bytes")
        return Entries(name, _nul_separated(name), strict)
    return Entries(name, _open_list(name, column), strict)


class Entries:
    """A list's entries, read once as they are asked for; `failed` says why when it could not be read to its
    end (the run then has not done the entries after it)."""

    def __init__(self, name: str, entries: Iterator[str], strict: bool):
        self.name, self.strict = name, strict
        self.failed: str | None = None
        self._entries = self._read(entries)

    def __iter__(self) -> Iterator[str]:
        return self._entries

    def __next__(self) -> str:
        return next(self._entries)

    def _read(self, entries: Iterator[str]) -> Iterator[str]:
        count = 0
        try:
            for entry in entries:
                count += 1
                yield entry
        except Exception as exc:
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            self.failed = (f"{self.name}: could not be read past entry {count} ({why}); the entries after it were "
                           "not done")
            if self.strict:
                raise ValueError(self.failed) from None
            log.error("%s", self.failed)


def _open_list(name: str, column: str | None) -> Iterator[str]:
    kind = list_kind(name)
    if kind == "text":
        if column is not None:
            raise ValueError(f"{name}: --column is for tables (.csv, .tsv, .jsonl, .parquet); this is read as "
                             "one input per line")
        if _has_nul(name):
            raise ValueError(NUL_HINT.format(where="standard input" if name == "-" else name))
        return _lines(name)
    if kind == "parquet":
        return _parquet(name, column)
    encoding = _encoding(name)
    stream = open(name, encoding=encoding, errors=_errors(encoding), newline="")
    try:
        if kind == "jsonl":
            return _jsonl(name, stream, column)
        csv.field_size_limit(max(csv.field_size_limit(), FIELD_LIMIT))
        reader = csv.reader(stream, delimiter="\t" if kind == "tsv" else _delimiter(stream, column))
        try:
            header = next(reader, None)
            while header is not None and not any(c.strip() for c in header):  # blank lines before the header
                header = next(reader, None)
        except csv.Error as exc:
            raise ValueError(f"{name}: not readable as {kind.upper()} ({exc})") from None
        if not header:
            stream.close()
            return iter(())
        if column is None and len(header) == 1 and _known(header) is None:
            # one column and no header (find … > files.csv): a plain list, every line an input, the first too
            log.warning("%s: one column without a header: read as one input per line", name)
            stream.close()
            return _lines(name, unquote=True)
        index = header.index(_column(name, header, column))
    except BaseException:
        stream.close()
        raise
    return _cells(name, stream, reader, index, header[index])


def _delimiter(stream, column: str | None) -> str:
    """`,`, or `;` when the header splits on `;` into a column to read (what spreadsheets save as CSV where the
    decimal mark is a comma), and not on `,`; the stream is left at its start."""
    start = stream.tell()
    header = ""
    for line in stream:
        if line.strip():
            header = line
            break
    stream.seek(start)
    try:
        by_comma, by_semicolon = (next(csv.reader([header], delimiter=d), []) for d in ",;")
    except csv.Error:
        return ","
    found = (lambda names: column in names) if column is not None else (lambda names: _known(names) is not None)
    return ";" if found(by_semicolon) and not found(by_comma) else ","


def _column(name: str, have: list[str], column: str | None) -> str:
    if column is not None:
        if column not in have:
            raise ValueError(f"{name}: no column {column!r}; it has {_listed(have)}")
        return column
    known = _known(have)
    if known is not None:
        return known
    raise ValueError(f"{name}: no column named {', '.join(COLUMNS)}; give --column (it has {_listed(have)})")


def _known(have: list[str]) -> str | None:
    """The first of COLUMNS among the column names `have`, in any case (URL, Path)."""
    lower = {str(h).strip().lower(): h for h in reversed(have)}
    return next((lower[c] for c in COLUMNS if c in lower), None)


def _listed(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:20])
    return (shown + f" and {len(names) - 20} more") if len(names) > 20 else (shown or "no columns")


def once(entries: Iterable[str], fragments: bool = False) -> Iterator[str]:
    """Each input once, as first given: the same URL however it is spelled (`HTTP://Host:80/a/./b#top` is
    `http://host/a/b`), or the same path (`a.png`, `./a.png`, `scans//a.png`, `/home/me/a.png`): one input,
    whose rows a resumed run could not tell apart. `fragments` keeps `#…` apart (a rendered page may route
    on it)."""
    seen: set[str] = set()
    for entry in entries:
        key = entry_key(entry, fragments)
        if key not in seen:
            seen.add(key)
            yield entry


class Overlaps:
    """`once` for the CLI's inputs, and a file given alone and inside a folder given too (`classify scans/
    scans/a.png`, or `a/b/` then `a/`), or an archive's member given alone and with its archive (`a.zip
    a.zip:x.png`, either order), done once, where it comes first. `entries` drops an entry given before
    or inside a folder given before; `inside(origin)`, the runs' `skip`, passes over a file a folder holds that
    was given before, alone or in a folder of its own. Paths compare as `entry_key` spells them: a link is
    another name. Memory: one key per entry given (as `once`), none per file found."""

    def __init__(self, fragments: bool = False) -> None:
        self.fragments = fragments
        self.seen: set[str] = set()  # every entry given: URLs, files and folders
        self.dirs: set[str] = set()

    def entries(self, entries: Iterable[str]) -> Iterator[str]:
        for entry in entries:
            key = entry_key(entry, self.fragments)
            local = isinstance(entry, str) and bool(entry) and not is_url(entry)
            if key in self.seen or (local and (self._in_dir(key) or self._in_archive(entry))):
                continue
            yield entry
            # once its units were made (the caller asks for the next), so it does not pass itself over
            self.seen.add(key)
            if local and os.path.isdir(entry):
                self.dirs.add(key)

    def _in_dir(self, key: str) -> bool:
        return bool(self.dirs) and any(str(parent) in self.dirs for parent in Path(key).parents)

    def _in_archive(self, entry: str) -> bool:
        """Whether `entry` names a member of an archive given before (`a.zip`, then `a.zip:x.png`), or of a folder
        or archive in it given before (`a.zip:x/` or `a.zip:b.tar`, then `a.zip:x/1.png` or `a.zip:b.tar:c.png`)."""
        from .sources.files import archive_member

        found = archive_member(entry) if self.seen and ":" in entry else None
        return found is not None and any(entry_key(name) in self.seen for name in _holders(*found))

    def inside(self, origin: str) -> bool:
        if not self.seen or not origin or is_url(origin):
            return False
        key = entry_key(origin)
        # a folder's own note (empty, unreadable) is not passed over; an archive's member ("a.zip:x.png") is no
        # file, and only files on disk are in folders
        return (key in self.seen and key not in self.dirs) or (self._in_dir(key) and os.path.lexists(origin))


def once_many(entries: Iterable[str], fragments: bool = False, chunk: int = 65536,
              seen: "KeySet | None" = None) -> Iterator[list[str]]:
    """`once` for lists of millions (`scale`): the entries `chunk` at a time, each list holding those not
    given before, in order. The keys are kept as 16-byte digests (`keyset.KeySet`), not as text: in `seen`,
    when given, for `inside_given` once the list is read."""
    from itertools import islice

    from .keyset import KeySet

    seen, entries = KeySet() if seen is None else seen, iter(entries)
    while part := list(islice(entries, chunk)):
        new = seen.add_new([entry_key(e, fragments) for e in part])
        yield [e for e, n in zip(part, new) if n]


def inside_given(entries: list[str], seen: "KeySet") -> list[bool]:
    """`Overlaps` for `once_many`'s lists, read whole first (`scale`): whether each entry is a path inside a
    folder that is an entry too (`scans/` and `scans/a.png`, or `scans/ct/`, in either order), or a member of
    an archive that is (`a.zip`, `a.zip:x.png`), by `seen`, the keys of every entry. One look-up per folder
    the entries are in, not per entry; a folder is looked at on disk only when it is an entry itself."""
    from .sources.files import archive_member

    keys = [entry_key(e) if e and not is_url(e) else None for e in entries]
    folders: set[str] = set()
    for folder in {_up(k) for k in keys if k}:
        while folder not in folders:  # and those above it, each once
            folders.add(folder)
            folder = _up(folder)
    archives = {e: [entry_key(h) for h in _holders(*m)] for e in entries
                if ":" in e and not is_url(e) and (m := archive_member(e))}
    names = list(folders | {k for ks in archives.values() for k in ks})
    given = {n for n, found in zip(names, seen.contains(names) if names else []) if found}
    if not given:  # most lists: no entry holds another
        return [False] * len(entries)
    held: dict[str, bool] = {}  # folder → whether it is in (or is) a folder given

    def in_given(folder: str) -> bool:
        if folder not in held:
            up = _up(folder)
            held[folder] = (folder in given and os.path.isdir(folder)) or (up != folder and in_given(up))
        return held[folder]

    # a folder's own entry is not inside itself (`/`, or `.` run from `/`, is its own parent)
    return [bool(k) and ((_up(k) != k and in_given(_up(k))) or any(h in given for h in archives.get(e, ())))
            for e, k in zip(entries, keys)]


def _holders(archive: str, member: str) -> list[str]:
    """The entries that hold an archive's member: the archive, and each folder or archive in it above the member
    (`a.zip`, `a.zip:x` and `a.zip:x/in.zip` for `a.zip:x/in.zip:c.png`)."""
    cuts = [i for i, c in enumerate(member) if c in "/:" and 0 < i < len(member) - 1]
    return [archive, *(f"{archive}:{member[:i]}" for i in cuts)]


def _up(path: str) -> str:
    """The folder an absolute path (an `entry_key`) is in; the root's is the root."""
    return path.rpartition("/")[0] or "/"


def entry_key(entry: str, fragments: bool = False) -> str:
    """What makes two entries one input: `url_key` for a URL, a data: URI itself (its base64 may hold `//`), the
    absolute path (its `..` kept: links) else."""
    if not entry or entry[:5].lower() == "data:":
        return entry
    return url_key(entry, fragments) if is_url(entry) else _path_key(entry)


def _path_key(entry: str) -> str:
    """`str(Path.cwd() / entry)`, without pathlib's cost for a name it would leave as it is (most of a list):
    one without `//`, `.` parts or a slash at its end."""
    if "//" in entry or "/./" in entry or entry.startswith("./") or entry.endswith(("/", "/.")) or entry == ".":
        return str(Path.cwd() / entry)
    if entry[0] == "/":
        return entry
    cwd = os.getcwd()
    return (cwd if cwd != "/" else "") + "/" + entry


# a URL that httpx would leave as it is but for case, a default port and an empty path or query (most of a
# crawl's list): read with a regular expression, ten times faster than httpx.URL
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_SEGMENT = r"/(?:[A-Za-z0-9_~!$&'()*+,;=:@-][A-Za-z0-9._~!$&'()*+,;=:@-]*)?"  # none is `.` or `..`
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")
_PLAIN = re.compile(rf"(https?)://({_LABEL}(?:\.{_LABEL})*)(?::([1-9][0-9]{{0,4}}))?((?:{_SEGMENT})*)"
                    r"(\?[A-Za-z0-9._~!$&'()*+,;=:@/?-]*)?", re.IGNORECASE)


def url_key(url: str, fragment: bool = False) -> str:
    """A URL as the server sees it: scheme and host in lower case, no default port, dot segments resolved,
    an empty path as `/`, no empty `?`, and (unless `fragment`) no `#…`; the URL itself if it cannot be parsed."""
    plain = _PLAIN.fullmatch(url)
    ip_like = plain and plain[2].rpartition(".")[2].isdigit()  # then only a dotted quad as httpx reads it
    if plain and int(plain[3] or 1) <= 65535 and (not ip_like or _IPV4.fullmatch(plain[2])):
        scheme, host, port, path, query = plain.groups()
        scheme = scheme.lower()
        default = port is None or (scheme, int(port)) in (("http", 80), ("https", 443))
        netloc = host.lower() + ("" if default else ":" + port)
        return f"{scheme}://{netloc}{path or '/'}{'' if query == '?' else query or ''}"
    return _parsed_key(url, fragment)


def _parsed_key(url: str, fragment: bool) -> str:
    """url_key by httpx's parser, for every URL."""
    try:
        parsed = httpx.URL(url)
        scheme, port = parsed.scheme.lower(), parsed.port
        host = parsed.raw_host.decode("ascii").lower()
        path = parsed.raw_path.split(b"?", 1)[0].decode("ascii") or "/"
        query = parsed.query.decode("ascii")
    except (httpx.InvalidURL, ValueError, TypeError, UnicodeError):
        return url
    netloc = (parsed.userinfo.decode("ascii") + "@" if parsed.userinfo else "") + (f"[{host}]" if ":" in host else host)
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        netloc += f":{port}"
    text = f"{scheme}://{netloc}{path}" + (f"?{query}" if query else "")
    return text + (f"#{parsed.fragment}" if fragment and parsed.fragment else "")


def _entry(value) -> str | None:
    """A cell as an input: URLs trimmed, a path kept as it is (spaces are part of names); blank (or NaN) is
    None, and so is a list or an object, which is no input (named in a warning)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (list, tuple, dict)):
        log.warning("a cell holds a %s, not an input: passed over", type(value).__name__)
        return None
    text = value if isinstance(value, str) else str(value)
    if not text.strip():
        return None
    return text.strip() if is_url(text.strip()) else text


NUL_HINT = ("{where} holds NUL bytes: a list of names separated by NULs (find -print0) is read with --null (-0); "
            "without it, the list has one input per line")


_STDIN: list = []  # (sys.stdin, the reader of its bytes made for it)


def _stdin():
    """Standard input's bytes, through a reader of medimg's own (on a copy of its descriptor): a run stopped (Ctrl-C,
    a full disk) while the inputs' thread waited on sys.stdin's own made Python abort at exit, whose clean-up
    needs that reader's lock ("could not acquire lock for <stdin>", exit 134, not 130 or 74)."""
    if sys.stdin is None:  # started with it closed (<&-)
        raise OSError(errno.EBADF, "standard input is closed: there is no list to read")
    if _STDIN and _STDIN[0][0] is sys.stdin:
        return _STDIN[0][1]
    try:
        reader = open(os.dup(sys.stdin.fileno()), "rb")
    except (AttributeError, OSError, ValueError):  # no descriptor (a test's standard input): its own
        return sys.stdin.buffer
    _STDIN[:] = [(sys.stdin, reader)]
    return reader


def _head(name: str, size: int = CHUNK) -> bytes:
    """A list's first bytes: a file's, or what standard input has buffered (a named pipe or a device is not read
    ahead); b"" when they cannot be read now (said when the list is read)."""
    if name == "-":
        peek = getattr(_stdin(), "peek", None)
        return peek(size)[:size] if peek is not None else b""
    try:
        if not os.path.isfile(name):
            return b""
        with open(name, "rb") as f:
            return f.read(size)
    except OSError:
        return b""


def _encoding(name: str) -> str:
    """UTF-16 for a list that starts with its byte-order mark (Windows PowerShell 5 writes `> list.txt` so),
    else UTF-8 (with or without its mark)."""
    return "utf-16" if _head(name, 2) in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"


def _errors(encoding: str) -> str:
    """Names that are not UTF-8 keep their bytes, as the file system gives them; in UTF-16 a lone surrogate
    (which Windows allows in a name) becomes U+FFFD, so that entry alone is not found."""
    return "replace" if encoding == "utf-16" else "surrogateescape"


def _has_nul(name: str) -> bool:
    """Whether a text list's first bytes look like names separated by NULs (as many NULs as line ends); such
    lines further on are said as they are read. A stray NUL in a list of lines is that entry's error; a UTF-16
    list has NULs in every ASCII character and is read as UTF-16."""
    head = _head(name)
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return False
    return head.count(b"\0") >= max(1, head.count(b"\n"))


def _lines(name: str, unquote: bool = False) -> Iterator[str]:
    # names that are not UTF-8 keep their bytes (surrogateescape), as the file system gives them
    encoding = _encoding(name)
    stream = (io.TextIOWrapper(_stdin(), encoding=encoding, errors=_errors(encoding))
              if name == "-" else open(name, encoding=encoding, errors=_errors(encoding)))
    try:
        # a line at a time, each at most FIELD_LIMIT long: a list with no line end (/dev/zero) took all memory
        for number, line in enumerate(iter(partial(stream.readline, FIELD_LIMIT + 1), ""), 1):
            if len(line) > FIELD_LIMIT and not line.endswith("\n"):
                raise ValueError(f"line {number} is over {FIELD_LIMIT:,} characters long: not a list of inputs")
            if line.count("\0") > 1 or line.rstrip("\r\n").endswith("\0"):  # find -print0's names, not one odd entry
                raise ValueError(NUL_HINT.format(where=f"line {number}"))
            text = line.rstrip("\r\n")  # a `#` line is a comment (./#name is not)
            if unquote and len(text) > 1 and text[0] == text[-1] == '"':  # a CSV cell in quotes
                text = text[1:-1].replace('""', '"')
            if text.strip() and not text.lstrip().startswith("#"):
                yield _entry(text)
    finally:
        if name != "-":
            stream.close()


def _nul_separated(name: str) -> Iterator[str]:
    """Names separated (or ended) by NUL bytes, as `find -print0` and `xargs -0` have them: each taken as it
    is, newlines and a leading `#` too; empty ones are passed over. A list with lines and no NUL says so."""
    stream = _stdin() if name == "-" else open(name, "rb")
    read = getattr(stream, "read1", stream.read)  # what a pipe has, not a whole chunk: names as they come
    try:
        head, first = [], True  # the start of a name not yet ended
        while chunk := read(CHUNK):
            if first and b"\0" not in chunk and b"\n" in chunk:
                log.warning("%s: its first bytes hold a line end and no NUL: --null reads names separated by "
                            "NULs (find -print0); without it, one per line", name)
            first = False
            *names, rest = chunk.split(b"\0")
            if names:
                names[0] = b"".join(head) + names[0]
                head = []
                yield from _named(names)
            head.append(rest)
        yield from _named([b"".join(head)])
    finally:
        if name != "-":
            stream.close()


def _named(names: list[bytes]) -> Iterator[str]:
    for raw in names:
        entry = _entry(raw.decode("utf-8", "surrogateescape"))
        if entry is not None:
            yield entry


def _cells(name: str, stream, reader, index: int, key: str) -> Iterator[str]:
    blank = _Blanks(name, key, "line")
    with stream, blank:
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # the run goes on; the line is named
                log.warning("%s, line %d: passed over (%s)", name, reader.line_num, exc)
                continue
            entry = _entry(row[index]) if index < len(row) else None
            if entry is not None:
                yield entry
            elif any(c.strip() for c in row):  # a row without an input; a blank line is none
                blank.add(reader.line_num)


def _jsonl(name: str, stream, column: str | None) -> Iterator[str]:
    """JSON Lines: the key is chosen from the first object, as a CSV's from its header."""
    first = None
    for number, line in enumerate(stream, 1):
        if line.strip():
            first = _object(name, number, line)
            break
    if first is None:
        stream.close()
        return iter(())
    key = column if column is not None else _column(name, list(first), None)  # a given key: looked up per row

    def rows():
        with stream:
            yield number, first
            for n, line in enumerate(stream, number + 1):
                if line.strip():
                    try:
                        yield n, _object(name, n, line)
                    except ValueError as exc:  # the run goes on; the line is named
                        log.warning("%s: passed over (%s)", name, exc)

    def entries():
        found = 0
        blank = _Blanks(name, key, "line")
        with blank:
            for n, row in rows():
                entry = _entry(row.get(key))
                if entry is not None:
                    found += 1
                    yield entry
                else:
                    blank.add(n)
        if not found:
            log.warning("%s: no line has a value for %r", name, key)

    return entries()


class _Blanks:
    """The rows of a table list with no input in its column (blank, null, missing), said in one warning once the
    list has been read, with the first few row numbers: results can then be joined back to the list."""

    SHOWN = 5

    def __init__(self, name: str, key: str, unit: str):
        self.name, self.key, self.unit = name, key, unit
        self.count, self.first = 0, []

    def add(self, number: int) -> None:
        self.count += 1
        if len(self.first) < self.SHOWN:
            self.first.append(number)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.count and exc[0] is None:
            more = ", …" if self.count > len(self.first) else ""
            log.warning("%s: %d %s%s with no value in %r passed over (%s %s%s)", self.name, self.count, self.unit,
                        "s" * (self.count != 1), self.key, self.unit + "s" * (len(self.first) != 1),
                        ", ".join(map(str, self.first)), more)


def _object(name: str, number: int, line: str) -> dict:
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"{name}, line {number}: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name}, line {number}: not a JSON object")
    return value


def _parquet(name: str, column: str | None) -> Iterator[str]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError(f"{name}: reading a Parquet list needs pyarrow (pip install pyarrow; from a checkout: "
                         ".venv/bin/pip install pyarrow; or the scale extra)") from None
    try:
        table = pq.ParquetFile(name)
    except Exception as exc:
        raise ValueError(f"{name}: not a Parquet file ({exc})") from None
    key = _column(name, table.schema_arrow.names, column)
    kind = table.schema_arrow.field(key).type
    if pa.types.is_nested(kind):
        table.close()
        raise ValueError(f"{name}: column {key!r} holds {kind}, not one input per row")

    def rows():
        n, blank = 0, _Blanks(name, key, "row")
        with table, blank:
            for batch in table.iter_batches(batch_size=ROW_GROUP, columns=[key]):
                for value in batch.column(0).to_pylist():
                    n += 1
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", "surrogateescape")
                    entry = _entry(value)
                    if entry is not None:
                        yield entry
                    else:
                        blank.add(n)

    return rows()


__all__ = ["open_list", "list_kind", "TABLES", "COLUMNS"]
