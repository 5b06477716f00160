"""What every source yields, the limits they obey, and the registry they join."""

from __future__ import annotations

import contextlib
import copy
import functools
import numbers
import re
import struct
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import partial
from typing import Any, Callable, Iterator, Protocol, Union, get_args, get_type_hints

import numpy as np

from PIL import Image

from .. import __version__

# A signalling NaN (float bits 7f800001…, as a damaged file may hold) makes numpy warn "invalid value encountered
# in cast" when the sources widen floats to float64; they map NaN to levels themselves, so it was only printed noise.
warnings.filterwarnings("ignore", "invalid value encountered in cast", RuntimeWarning, r"medimg\.sources\.")


EMPTY_FILE = "skipped: empty file"  # the note of a 0-byte file in a folder or archive (the CLI counts them)
HIDDEN_ONLY = "archive holds no files (hidden ones are left out)"  # the note of a zip, tar or 7z of only those


@dataclass
class ImageItem:
    """One decoded image and where it came from."""

    origin: str  # the file or URL the image came from (the file inside a folder or zip)
    locator: str  # where inside the origin: "page 3, image 2", "frame 12", "img #7 https://…"
    image: Image.Image
    format: str | None = None  # source format: PNG, JPEG, DICOM, PDF-embedded JPEG, …
    metadata: dict[str, Any] = field(default_factory=dict)
    full_size: tuple[int, int] | None = None  # the stored size when `image` was decoded smaller

    @property
    def width(self) -> int:
        """The stored width (full_size's when `image` was decoded smaller)."""
        return self.full_size[0] if self.full_size else self.image.width

    @property
    def height(self) -> int:
        """The stored height (full_size's when `image` was decoded smaller)."""
        return self.full_size[1] if self.full_size else self.image.height


@dataclass
class ItemError:
    """An item that could not be turned into an image, or was skipped on purpose."""

    origin: str
    locator: str
    error: str  # a clear, human reason
    skipped: bool = False  # True for deliberate skips (decoration below the size floor, SVG, …)


Item = Union[ImageItem, ItemError]


@dataclass
class Limits:
    """Every cap and timeout the sources obey, all configurable; checked when made (a wrong type raises
    TypeError, a number below its floor ValueError, naming the field).

    Network: connect_timeout, read_timeout (seconds between bytes), total_timeout (one download, seconds, not
    counting a wait for max_per_host), max_download_bytes (one downloaded resource), max_redirects,
    max_concurrency (one page's images fetched at once), max_per_host (requests to one host at once from this
    process, every run in it together; a fetch waits for its turn, within its input's input_timeout),
    allow_private (fetch loopback, private and link-local addresses), offline (fetch nothing: URLs, or remote
    images a saved page shows), respect_robots_tag (an image or page whose X-Robots-Tag header says noai,
    noimageai, noindex, noimageindex or none is not read: a note naming it), user_agent (the User-Agent sent,
    `medimg/<version>`; operators crawling at scale should set their own, with a contact address).

    Files: max_input_bytes (one input file or archive member), max_slide_bytes (whole-slide files on disk,
    read a region at a time), max_video_bytes (videos on disk, read only around the frames shown),
    video_timeout (seconds reading one video), input_timeout (seconds `classify` and `extract` give one input — a
    file, an archive member, a URL with the images its page shows — from its start, not counting time it waits for
    the run to take its images; None or 0: no limit), max_pixels (checked from the header before decoding),
    max_images_per_input (each file in a folder or zip is an input of its own), max_pdf_pages.

    Archives: zip_max_entries (entries of one archive; one archive and all nested in it may list TREE_ENTRIES
    times that together), zip_max_bytes (uncompressed bytes in one archive and all nested in it), max_depth
    (archives in archives).

    What is read: min_side (PDF and web images, and pictures a message's text shows or an SVG or a metafile embeds,
    with a shorter side are decoration), all_frames (every GIF or DICOM frame and volume slice, a video's frame a second, instead of the
    first or middle one), decode_side (JPEGs may decode at 1/2, 1/4 or 1/8 scale, JPEG 2000 images at 1/2, 1/4, …, while both sides
    stay at least this; None or 0: full size; classify() sets it from the model's input size unless given), render (web pages
    through headless Chromium), max_browser_memory (bytes a render's Chromium processes may use together before it is killed).
    """

    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0
    max_download_bytes: int = 50 * 1024 * 1024
    max_input_bytes: int = 200 * 1024 * 1024
    max_slide_bytes: int = 20 * 1024**3
    max_video_bytes: int = 20 * 1024**3
    video_timeout: float = 60.0
    input_timeout: float | None = 600.0
    max_pixels: int = 100_000_000
    max_images_per_input: int = 1000
    max_pdf_pages: int = 500
    max_redirects: int = 5
    max_concurrency: int = 8
    max_per_host: int = 8
    allow_private: bool = False
    offline: bool = False
    min_side: int = 64
    all_frames: bool = False
    decode_side: int | None = None
    zip_max_entries: int = 10_000
    zip_max_bytes: int = 1024 * 1024 * 1024
    max_depth: int = 3
    render: bool = False
    max_browser_memory: int = 2 * 1024**3
    respect_robots_tag: bool = False
    user_agent: str = f"medimg/{__version__}"

    def __post_init__(self):  # `Limits(allow_private="no")` was true until it reached classify()
        check_limits(self)


TREE_ENTRIES = 10  # an archive and every archive nested in it may list this many times zip_max_entries together


class Budget:
    """Uncompressed bytes still allowed for one top-level container (zip, tar, message) and everything nested
    in it: members carry it on, so a container inside a container draws from the same `zip_max_bytes`. So do
    the entries of its archives (zip, tar, 7z), TREE_ENTRIES × `zip_max_entries` in all: else each archive in an
    archive could list that many again, millions of rows from a few MB (a dataset of 50 patients' zips of 300
    slices each still reads whole)."""

    def __init__(self, left: int):
        self.left = left
        self.entries: int | None = None  # entries still allowed, set by the first archive to take some

    def entries_refused(self, n: int, limits: Limits) -> str | None:
        """Take `n` archive entries; when there are not that many left, why not (and none are taken)."""
        tree = TREE_ENTRIES * limits.zip_max_entries
        if self.entries is None:
            self.entries = tree
        if n > self.entries:
            return (f"{n:,} entr{'ies' if n > 1 else 'y'}, over the {self.entries:,} left of the {tree:,} "
                    f"({TREE_ENTRIES} × the zip_max_entries cap) that an archive and the archives in it may list "
                    "together")
        self.entries -= n
        return None

    def refuse(self, where: str, size: int, limits: Limits, past: str) -> tuple[ItemError | None, bool]:
        """A member of `size` bytes: (None, False) and drawn from the budget when it fits; else (its error, whether
        the container's rest stops: past `zip_max_bytes`, said as "`past` the … cap"). Over `max_input_bytes` it
        alone is not read."""
        if size > limits.max_input_bytes:
            return ItemError(where, "", f"attachment is {size:,} bytes, over the max_input_bytes cap of "
                                        f"{limits.max_input_bytes:,}; not read"), False
        if size > self.left:
            return ItemError(where, "", f"{past} the zip_max_bytes cap of {limits.zip_max_bytes:,}; the rest is "
                                        "not read"), True
        self.left -= size
        return None, False


@dataclass
class Blob:
    """Bytes to open, with the name people know them by: `Blob(origin="scan.dcm", data=upload)`.

    `origin` is the name its records carry (a file name, URL or "archive.zip:inner/path"); `data` the bytes
    (a bytearray or memoryview is copied). `name` (a file name, default: the origin's) and `content_type` (an
    HTTP one) are hints only, as the content is sniffed; `depth` is how deep in archives it lies (0: given
    alone). The other fields are set by medimg's own readers for the files inside a container."""

    origin: str  # file path, URL, or "archive.zip:inner/path"
    data: bytes
    name: str = ""  # file name or URL path, a hint only: content is sniffed
    content_type: str | None = None  # from HTTP, a hint only
    depth: int = 0  # archive nesting
    # The bytes of a file beside this one, by bare name (in the same folder on disk, the same zip, tar or 7z
    # folder, the same request's uploads), for a header whose data lies in a second file; raises ValueError.
    sibling: Callable[[str], bytes] | None = field(default=None, repr=False, compare=False)
    data_of: str | None = None  # the header this file holds the data of (read with it, so only a note here)
    budget: Budget | None = field(default=None, repr=False, compare=False)  # set on the members of a container
    # found walking a folder given as an input, whose other files are inputs of their own (a saved page's pictures)
    walked: bool = field(default=False, repr=False, compare=False)
    # where the file around it shows it (an Office picture's `slide 3`), put before its items' own locators
    locator: str = ""
    # each (place, crop) the file around it shows it with, when it crops it somewhere (an Office picture's
    # `a:srcRect`: office.Crop): its images are given once a view, cropped as shown; errors once, at `locator`
    views: tuple[tuple[str, tuple[float, float, float, float] | None], ...] = field(default=(), repr=False,
                                                                              compare=False)

    def __post_init__(self):
        if not isinstance(self.origin, str):
            raise TypeError(f"Blob's origin must be a str (the name its records carry), not {self.origin!r}")
        if isinstance(self.data, (memoryview, bytearray)):  # the sources slice and sniff bytes; a copy, as
            self.data = bytes(self.data)  # classify reads ahead while the caller may clear or refill its buffer
        elif not isinstance(self.data, bytes):
            raise TypeError(f"Blob's data must be bytes, bytearray or memoryview, not {type(self.data).__name__}")
        if self.name is None:  # no name: the origin's is used
            self.name = ""
        for key, kinds, wanted in _BLOB_HINTS:
            value = getattr(self, key)
            if not isinstance(value, kinds) or isinstance(value, bool):
                raise TypeError(f"Blob's {key} must be {wanted}, not {value!r}")
        if self.depth < 0:
            raise ValueError(f"Blob's depth must be {_BLOB_HINTS[2][2]}, not {self.depth!r}")
        self.depth = int(self.depth)
        if self.sibling is not None and not callable(self.sibling):
            raise TypeError(f"Blob's sibling must be a function of a file name giving its bytes, or None, "
                            f"not {self.sibling!r}")

    def __repr__(self) -> str:  # its size, not its bytes: a repr in an error message or a notebook stays short
        more = "".join(f", {k}={getattr(self, k)!r}" for k in ("name", "content_type", "depth", "data_of", "locator")
                       if getattr(self, k) not in ("", None, 0))
        return f"Blob(origin={self.origin!r}, data=<{len(self.data):,} bytes>{more})"


# Blob's hints, checked when it is made (a wrong type failed deep inside a source, or passed unseen)
_BLOB_HINTS = (
    ("name", (str,), "a str (a file name or URL path), or None"),
    ("content_type", (str, type(None)), "a str (a MIME type such as 'image/png') or None"),
    ("depth", (numbers.Integral,), "a whole number ≥ 0 (how deep in archives it lies)"),
    ("data_of", (str, type(None)), "a str (the name of the header it holds the data of) or None"),
    ("budget", (Budget, type(None)), "a Budget or None (set by the containers)"),
    ("locator", (str,), "a str (where the file around it shows it, such as 'slide 3')"),
)


def as_limits(limits) -> Limits:
    """A Limits with every field of the right type: the one given, one made from a dict, or the defaults;
    a bad one raises TypeError or ValueError saying what it takes."""
    if limits is None:
        return Limits()
    if isinstance(limits, Mapping):
        names = [f.name for f in fields(Limits)]
        unknown = [k for k in limits if k not in names]
        if unknown:
            raise TypeError(f"limits has no field {', '.join(map(repr, unknown))}; its fields are {', '.join(names)}")
        limits = Limits(**limits)
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be a Limits, a dict of its fields, or None, not {limits!r}")
    check_limits(limits)  # again: a field may have been set after it was made
    return limits


def check_limits(limits: Limits) -> None:
    """Raise TypeError or ValueError, naming the field, if a field of `limits` is not what it takes."""
    for name, kind in _limit_kinds().items():
        _check_limit(name, getattr(limits, name), kind)


@functools.cache
def _limit_kinds() -> dict:
    return get_type_hints(Limits)


_KIND_WORDS = {bool: "True or False", int: "a whole number ≥ 0", float: "a number ≥ 0", str: "a string",
               type(None): "None"}
# caps at which nothing could be read at all (the CLI's options start at 1 too)
AT_LEAST_ONE = {"max_pixels", "max_images_per_input", "max_pdf_pages", "max_concurrency", "max_per_host"}
# caps at which an input is read only in part, said in a skipped note ("… (max_pdf_pages)")
PART_CAPS = ("max_pdf_pages", "max_images_per_input")


def more(n: int, noun: str) -> str:
    """`1 more image was` / `3 more images were`: the start of a cap's note on what it left unread."""
    return f"{n} more {noun} was" if n == 1 else f"{n} more {noun}s were"


def cut_short(note: str | None) -> bool:
    """A skipped note saying an input was not read to its end (a cap, its time ran out, or damage MuPDF
    repaired past)."""
    return bool(note) and (any(f"({cap}" in note for cap in PART_CAPS) or "out of time" in note
                           or "(video_timeout)" in note or "parts of it may be missing" in note)


def _check_limit(name: str, value, kind) -> None:
    """A field of Limits: a flag True or False, a whole number (an int field) or any number (a float one) at
    least 0 (1 for AT_LEAST_ONE), a string; None where allowed."""
    allowed = get_args(kind) or (kind,)
    wanted = " or ".join(_KIND_WORDS[k] for k in allowed)
    if name in AT_LEAST_ONE:
        wanted = wanted.replace("≥ 0", "≥ 1")
    if value is None and type(None) in allowed:
        return
    if bool in allowed:
        fits = isinstance(value, (bool, np.bool_))
    elif int in allowed or float in allowed:
        whole = float not in allowed  # 0.5 images or 2.7 pages is no cap anyone meant
        fits = isinstance(value, numbers.Integral if whole else numbers.Real) and not isinstance(value, bool)
        if fits and not value >= (1 if name in AT_LEAST_ONE else 0):  # (NaN too)
            raise ValueError(f"limits.{name} must be {wanted}, not {value!r}")
    else:
        fits = isinstance(value, allowed)
    if not fits:
        raise TypeError(f"limits.{name} must be {wanted}, not {value!r}")


class AnyOf:
    """Set when any of its events is (the `is_set` that a Fetcher's cancel needs)."""

    def __init__(self, *events):
        self.events = [e for e in events if e is not None]

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events)


_reading = threading.local()  # .stop: set once the unit this thread is reading is given up on (out of time)


@contextlib.contextmanager
def reading_unit(stop):
    """While this thread reads one unit of work: `Context.cancel`, taken on it, is also set once `stop` is, so
    the unit's downloads and renders end when the run gives up on it, not at their own timeouts."""
    before = getattr(_reading, "stop", None)
    _reading.stop = stop
    try:
        yield
    finally:
        _reading.stop = before


class Context:
    """What a source may use while opening a blob: the limits and a way to open nested blobs."""

    def __init__(self, limits: Limits | None = None, cancel: threading.Event | None = None,
                 skip: Callable[[str], bool] | None = None):
        self.limits = limits or Limits()
        self.run_cancel = cancel  # once set, downloads in progress stop at their next chunk (the caller gave up)
        self.skip = skip  # members done by an earlier run (resuming): archives pass over them without reading
        self.unfetched: str | None = None  # why a page opened here fetches no remote image (it came in an e-mail)
        self.given = None  # the run's dicomdir.Given: a DICOMDIR given with its folders reads each file once

    @property
    def cancel(self):
        """The run's cancel, and the unit's being read on this thread (reading_unit) when there is one: taken
        here, it may be handed to other threads (a page's image downloads, a browser)."""
        unit = getattr(_reading, "stop", None)
        if unit is None:
            return self.run_cancel
        return AnyOf(self.run_cancel, unit)

    @cancel.setter
    def cancel(self, value) -> None:
        self.run_cancel = value  # the run's (a caller's Event); the unit's is still added as it is read

    def no_fetching(self, why: str) -> Context:
        """This context for the files in a message: a page among them (an attached .html) fetches no remote image,
        as the message's own body does not (they are often trackers); `why` is said in its note."""
        if self.unfetched:
            return self
        other = copy.copy(self)
        other.unfetched = why
        return other

    def open_blob(self, blob: Blob) -> Iterator[Item]:
        from . import registry

        yield from registry.open_blob(blob, self)


class Source(Protocol):
    name: str

    def accepts(self, head: bytes, blob: Blob) -> bool: ...

    def open(self, blob: Blob, ctx: Context) -> Iterator[Item]: ...


class CallerError(BaseException):
    """An exception the caller's own code raised (`skip`), carried past the handlers that turn a bad input's
    exceptions into errors for that input (a BaseException, so `except Exception` lets it by), for the
    caller to get `exc` itself."""

    def __init__(self, exc: BaseException):
        super().__init__(exc)
        self.exc = exc


def recoverable(exc: BaseException) -> bool:
    """Whether an exception is one bad input's doing, to be reported for that input alone. That includes a
    panic in a Rust decoder (pyo3's PanicException derives from BaseException, not Exception); not Ctrl-C,
    an exit, a generator being closed, or the caller's own code failing."""
    return not isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit, CallerError))


# What a decoder raises from its own code when the data runs out or makes no sense (an unpack of too few bytes, an
# index past the end): its text speaks of Python, not of the file.
_INTERNAL = (IndexError, KeyError, TypeError, AttributeError, ZeroDivisionError, OverflowError, struct.error)
_INTERNAL_TEXT = re.compile(r"(not enough|too many) values to unpack|unpack requires a buffer|index out of range")


def reason(exc: BaseException, internal: str = "its data is damaged or cut short") -> str:
    """Why a library could not read an input, in words a user can read: its first line, or, for an error from
    inside its own code, `internal`."""
    lines = str(exc).strip().splitlines()
    if isinstance(exc, MemoryError):
        return "not enough memory to read it"
    if isinstance(exc, _INTERNAL) or not lines or _INTERNAL_TEXT.search(lines[0]):
        return internal
    return lines[0][:300]


def unit(origin: str | None, fn: Callable[..., Iterator[Item]], *args) -> Callable[[], Iterator[Item]]:
    """A unit of work, `fn(*args)`, that says which input it reads (`.origin`: the file, member or URL its
    items come from; None for notes about a folder), so a caller can pass over inputs already done."""
    task = partial(fn, *args)
    task.origin = origin
    task.holds = _held(args)
    return task


def _held(args) -> dict[int, int]:
    """The byte strings a unit keeps alive until it has run, as {id: size}: its blobs' bytes, and the archive a
    zip member's `sibling` reads its header's data file from (shared by all its members: counted once)."""
    out: dict[int, int] = {}
    for a in args:
        if isinstance(a, Blob):
            for data in (a.data, *getattr(a.sibling, "args", ())):
                if isinstance(data, (bytes, bytearray)):
                    out[id(data)] = len(data)
    return out


@dataclass
class SourcePlugin:
    """A registered source: `accepts` looks at the first bytes, `open` yields items."""

    name: str
    accepts: Callable[[bytes, Blob], bool]
    open: Callable[[Blob, Context], Iterator[Item]] | None = None  # None for a container: its split, chained
    priority: int = 50  # lower is tried first
    # A container (zip) may also split itself into independent units of work, one per member, which
    # the pipeline runs concurrently; chaining them in order gives what `open` yields.
    split: Callable[[Blob, Context], Iterator[Callable[[], Iterator[Item]]]] | None = None
    # A source that reads a file on disk itself, lazily and without the max_input_bytes cap (whole-slide
    # images of several GB). Files it accepts (from their first bytes and name) are handed over by path.
    open_path: Callable[[str, Context], Iterator[Item]] | None = None

    def __post_init__(self):
        if self.open is None:
            if self.split is None:
                raise ValueError(f"source {self.name!r} needs open or split")
            self.open = partial(_chained, self.split)


def _chained(split, blob: Blob, ctx: Context) -> Iterator[Item]:
    """A container's items: its units of work run one after another."""
    for task in split(blob, ctx):
        yield from task()
