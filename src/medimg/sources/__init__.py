"""Bytes → images. `open_input` takes a path, folder, URL or bytes and yields ImageItem / ItemError."""

from __future__ import annotations

import io
import os
import reprlib
import sys
import threading
from collections.abc import Mapping
from typing import Any, Callable, Generator, Iterable, Iterator

from .base import Blob, Context, ImageItem, Item, ItemError, Limits, SourcePlugin, as_limits, unit
from .registry import open_blob, plugins, register

__all__ = [
    "Blob", "Context", "ImageItem", "Item", "ItemError", "Limits", "SourcePlugin",
    "open_input", "open_inputs", "input_tasks", "one_input_tasks", "as_inputs", "as_limits", "open_blob", "plugins", "register", "is_url",
]


def is_url(text: str) -> bool:
    return isinstance(text, str) and text.lower().startswith(("http://", "https://"))


def open_input(source: str | os.PathLike[str] | Blob, limits: Limits | Mapping[str, Any] | None = None,
               ctx: Context | None = None) -> Generator[Item, None, None]:
    """Every image in one input: a file, a folder (recursive), a URL, or a Blob of bytes.

    Never raises for bad input: problems come out as ItemError items. Folders and zip archives are
    containers: each file in them is an input of its own (its own max_images_per_input). `limits` may be a
    dict of Limits' fields. A bad argument raises here, before the first item.
    """
    if not is_input(source):
        why = not_an_input(source)[1] if not isinstance(source, (list, tuple)) else "open_inputs takes several"
        raise TypeError(f"open_input takes one path, URL or Blob: {why}")
    if ctx is not None and not isinstance(ctx, Context):
        raise TypeError(f"ctx must be a Context or None (limits go in `limits`), not {ctx!r}")
    ctx = ctx or Context(as_limits(limits))
    return (item for task in _tasks(source, ctx) for item in task())


def open_inputs(sources: Iterable[str | os.PathLike[str] | Blob] | str | os.PathLike[str] | Blob,
                limits: Limits | Mapping[str, Any] | None = None) -> Generator[Item, None, None]:
    """Every image in each input, in input order (one path, URL or Blob may be given alone)."""
    return (item for task in input_tasks(sources, limits) for item in task())


def as_inputs(inputs) -> Iterator:
    """An iterator over the inputs (one path, URL or Blob alone is a list of one); raises TypeError for bytes,
    an open file or anything not iterable."""
    if isinstance(inputs, (str, os.PathLike, Blob)):  # one input, not the characters of a path
        return iter([inputs])
    if _open_file(inputs):
        raise TypeError(f"the inputs are paths, URLs or Blobs, not an open file; {OPEN_FILE}")
    if isinstance(inputs, (bytes, bytearray, memoryview)):
        raise TypeError("the inputs are paths, URLs or Blobs; wrap bytes as Blob(origin=name, data=...)")
    if getattr(inputs, "columns", None) is not None:  # a DataFrame: iterating it gives its column names
        raise TypeError("the inputs are a table: give its column of paths, URLs or Blobs (df[\"path\"])")
    if getattr(getattr(inputs, "dtype", None), "kind", "O") == "S":  # h5py's, np.loadtxt(dtype="S")'s
        raise TypeError("the inputs are an array of byte strings: give paths as str (inputs.astype(str), or "
                        "os.fsdecode each one)")
    if getattr(getattr(inputs, "dtype", None), "kind", "O") not in "OU" and hasattr(inputs, "__array__"):
        raise TypeError("the inputs are paths, URLs or Blobs, not an array of pixels; an image in memory goes to "
                        "Classifier.predict (as a PIL image)")
    if _a_picture(inputs):
        raise TypeError(f"the inputs are paths, URLs or Blobs, not a PIL image; {IN_MEMORY}")
    try:
        return iter(inputs)
    except TypeError:
        raise TypeError(f"inputs must be a path, URL or Blob, or an iterable of them, not {inputs!r}") from None


IN_MEMORY = "an image in memory goes to Classifier.predict (as a PIL image)"
OPEN_FILE = "give its path (f.name), or its bytes as Blob(origin=name, data=f.read())"


def _open_file(value) -> bool:
    """An open file or file-like object (BytesIO, an upload's file): read, not iterated by lines."""
    return isinstance(value, io.IOBase) or (callable(getattr(value, "read", None)) and not isinstance(value, Blob))


def _a_picture(value) -> bool:
    """A PIL image, or an array of numbers (pixels): an image in memory, not an input."""
    pil = sys.modules.get("PIL.Image")  # not loaded: it cannot be one
    if pil is not None and isinstance(value, pil.Image):
        return True
    return hasattr(value, "__array__") and getattr(getattr(value, "dtype", None), "kind", "O") in "biufc"


def input_tasks(sources: Iterable[str | os.PathLike[str] | Blob], limits: Limits | None = None,
                skip: Callable[[str], bool] | None = None,
                cancel: threading.Event | None = None) -> Iterator[Callable[[], Iterator[Item]]]:
    """The inputs as independent units of work, in input order, that may run concurrently.

    Each is a call that yields what open_input would for part of an input: one per file, URL or Blob,
    one per file inside a folder and one per member of a zip. Chaining them in order gives open_inputs.
    Each has an `origin` (the file, member or URL its items come from); units whose origin `skip`
    accepts are left out (resuming a run: a zip is still read, its members already done are not opened).
    Once `cancel` is set (the caller gave up), downloads in progress stop at their next chunk.
    """
    return _input_tasks(as_inputs(sources), as_limits(limits), skip, cancel)


def one_input_tasks(source: str | os.PathLike[str] | Blob, limits: Limits, skip: Callable[[str], bool] | None = None,
                    cancel: threading.Event | None = None, seen=None) -> Iterator[Callable[[], Iterator[Item]]]:
    """input_tasks for one input, `limits` checked by the caller once for the run (classify, extract): checked
    again for each input, their 27 fields made passing over 100,000 inputs done (a resumed run) take 10-16 s,
    not 2.5 s. `seen`: the run's dicomdir.Given, one for all its inputs (a DICOMDIR given with its folders)."""
    return _input_tasks(iter([source]), limits, skip, cancel, seen)


def _input_tasks(sources: Iterator, limits: Limits, skip, cancel, seen=None) -> Iterator[Callable[[], Iterator[Item]]]:
    from .dicomdir import Given

    skip = _asked_once(skip)
    ctx = Context(limits, cancel, skip)
    ctx.given = Given() if seen is None else seen
    for source in sources:
        for task in _tasks(source, ctx, skip):
            origin = getattr(task, "origin", None)
            if skip is None or origin is None or not skip(origin):
                yield task


def _asked_once(skip: Callable[[str], bool] | None) -> Callable[[str], bool] | None:
    """`skip` with its last answer kept: a file or member is asked about as it is found, then as a unit of work."""
    if skip is None:
        return None
    last: list = [None, False]
    lock = threading.Lock()  # a nested zip is split by the worker thread that opens it

    def once(origin: str) -> bool:
        with lock:
            if origin != last[0]:
                last[:] = origin, bool(skip(origin))
            return last[1]
    return once


def _tasks(source: str | os.PathLike[str] | Blob, ctx: Context,
           skip: Callable[[str], bool] | None = None) -> Iterator[Callable[[], Iterator[Item]]]:
    from .files import archive_member, blob_tasks, file_tasks, folder_tasks, member_tasks

    if isinstance(source, Blob):
        yield from blob_tasks(source, ctx)
        return
    if not is_input(source):
        name, why = not_an_input(source)
        yield unit(name, lambda: iter([ItemError(name, "", why)]))
        return
    text = os.fspath(source)
    if not text.strip():  # not the current folder
        why = f"an empty path{'' if not text else ' (only white space)'}: give a file, folder or URL"
        yield unit(text, lambda: iter([ItemError(text, "", why)]))
        return
    # a picture's bytes in its name (an img src copied from a page), as pages' are read; a Path names a file
    if isinstance(source, str) and text[:5].lower() == "data:":
        yield unit(text, _open_data_uri, text, ctx)
        return
    if text[:6].lower() == "file:/":  # a file URI names a local file (file:///a, or file:/a as Java writes it)
        path, why = _file_uri(text)
        if why:
            yield unit(text, lambda: iter([ItemError(text, "", why)]))
            return
        text = path
    if text != text.strip() and is_url(text.strip()) and not os.path.lexists(text):
        text = text.strip()  # a URL pasted with a space or newline, as the HTTP API takes one
    if is_url(text):
        yield unit(text, _open_url, text, ctx)
    elif _other_scheme(text):
        why = f"only http and https URLs are fetched, not {_other_scheme(text)}:// (for a local file give its path)"
        yield unit(text, lambda: iter([ItemError(text, "", why)]))
    elif os.path.isdir(text):  # False for a name too long to look up (Path.is_dir raises): its reader says so
        if ctx.given is not None:  # a DICOMDIR given after it passes over the files it holds (open_input's ctx: none)
            ctx.given.folders.add(os.path.realpath(text))
        yield from folder_tasks(text, ctx, skip)
    elif (member := archive_member(text)) is not None:  # `scans.zip:ct/1.dcm`, as the archive's rows name it
        yield from member_tasks(*member, ctx)
    else:
        yield from file_tasks(text, ctx, skip=skip)


def _other_scheme(text: str) -> str | None:
    """The scheme of a URL that is not http(s) (ftp, s3, …), unless a local file is named so."""
    scheme, sep, _ = text.partition("://")
    if sep and scheme and scheme[0].isalpha() and all(c.isalnum() or c in "+.-" for c in scheme) \
            and not os.path.lexists(text):
        return scheme.lower()
    return None


def _file_uri(uri: str) -> tuple[str, str | None]:
    """The path a file:// URI names, or why it names none here (another host's file)."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        return "", f"a file on another host ({parts.netloc}) cannot be read: give its path here, or an http(s) URL"
    return unquote(parts.path, errors="surrogateescape"), None


def is_input(value) -> bool:
    """A path (as str or a str PathLike), a URL or a Blob: what the sources open."""
    return isinstance(value, Blob) or isinstance(value, str) or (
        isinstance(value, os.PathLike) and isinstance(os.fspath(value), str))


def not_an_input(value) -> tuple[str, str]:
    """(a short name, the error) for something given as an input that is not a path, URL or Blob: bytes are
    named by their size, not printed."""
    kind = type(value).__name__
    if isinstance(value, (bytes, bytearray, memoryview)):
        short = len(value) <= 200 and b"\0" not in bytes(value)  # a path in bytes, perhaps: shown as it is
        return (repr(bytes(value)) if short else f"<{len(value):,} bytes>"), (
            f"{kind} given as an input: give a path as str (os.fsdecode), and wrap a file's bytes as "
            "Blob(origin=name, data=...) (medimg.sources.Blob)")
    if isinstance(value, os.PathLike):  # a path of bytes
        return repr(os.fspath(value))[:200], f"a path given as bytes ({kind}): give it as str"
    shown = reprlib.repr(value)
    hint = f"; {IN_MEMORY}" if _a_picture(value) else f"; an open file: {OPEN_FILE}" if _open_file(value) else ""
    return shown, f"not a path, URL or Blob: {shown} ({kind}){hint}"


def _open_data_uri(uri: str, ctx: Context) -> Iterator[Item]:
    """The images of a data: URI given as an input, decoded under max_download_bytes (a file named `data:…` is
    given as ./data:… or a Path)."""
    from .web_fetch import decode_data_uri

    try:
        data, ctype = decode_data_uri(uri, ctx.limits.max_download_bytes, "max_download_bytes")
    except ValueError as exc:
        yield ItemError(uri, "", f"{exc}; a file of that name is given as ./{uri}" if "no comma" in str(exc)
                        else str(exc))
        return
    yield from images_capped(open_blob(Blob(origin=uri, data=data, content_type=ctype), ctx), uri, ctx)


def _open_url(url: str, ctx: Context) -> Iterator[Item]:
    from .web import open_url

    yield from images_capped(open_url(url, ctx), url, ctx)


def images_capped(items: Iterator[Item], origin: str, ctx: Context) -> Iterator[Item]:
    """Stop after max_images_per_input images from one input, with a clear note."""
    cap = ctx.limits.max_images_per_input
    n = 0
    for item in items:
        if isinstance(item, ImageItem):
            n += 1
            if n > cap:
                yield ItemError(origin, "", f"stopped after {cap} image{'s' * (cap != 1)} "
                                                "(max_images_per_input)", skipped=True)
                close = getattr(items, "close", None)
                if close:
                    close()
                return
        yield item
