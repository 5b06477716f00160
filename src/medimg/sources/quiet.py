"""The warnings and log records of the libraries medimg reads with, hidden while medimg reads (a damaged file is
reported by its item's error instead) and left as they are when the program calls those libraries itself: a
notebook's own nibabel or pydicom warnings still show after medimg has read a volume.

`warnings.catch_warnings` is not thread-safe, so the filters are the process's, but each matches only a warning
raised with medimg's code on the stack of the thread that raised it."""

from __future__ import annotations

import ctypes
import logging
import os
import re
import sys
import threading
import warnings


def ours() -> bool:
    """Whether this thread is inside medimg's code (a library called by medimg, not by the program itself). Asked
    from a filter's method: the stack is looked at from that method's caller up."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code is _THEIRS:  # in the program's own callback (`on_item`, `skip`): the program calls them
            return False
        if frame.f_globals.get("__name__", "").startswith("medimg."):
            return True
        frame = frame.f_back
    return False


def theirs(call, *args):
    """`call(*args)`, a callback of the program's that medimg calls: the libraries' warnings and logs inside it are
    the program's own, shown as they would be without medimg."""
    return call(*args)


_THEIRS = theirs.__code__


class _WhileReading:
    """A warnings filter's module pattern (the filter calls its `match` with the module the warning is from) that
    holds only inside medimg's code: the stack is looked at only for a warning from that module, so a program's own
    warnings cost no more. `pattern` and `flags` as a compiled one's, for a program that reads `warnings.filters`."""

    def __init__(self, module: str):
        self.regex = re.compile(module)
        self.pattern, self.flags = self.regex.pattern, self.regex.flags

    def match(self, name: str) -> bool:
        return self.regex.match(name) is not None and ours()

    def __repr__(self) -> str:
        return f"<while medimg reads: {self.pattern!r}>"


def hide_warnings(module: str, message: str = "", category: type[Warning] = Warning) -> None:
    """Ignore the warnings `warnings.filterwarnings` would match with these arguments, but only while medimg reads
    (and only from a `module` named: see _WhileReading)."""
    plain = ("ignore", re.compile(message, re.I) if message else None, category, re.compile(module), 0)
    warnings.filterwarnings("ignore", message, category, module)  # placed first (as `plain`), the caches reset
    warnings.filters[warnings.filters.index(plain)] = ("ignore", plain[1], category, _WhileReading(module), 0)


class WhileReading(logging.Filter):
    """A logger's filter that drops its records while medimg reads."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not ours()


class LastResortUnlessReading(logging.Handler):
    """On a library's logger, in place of Python's last resort (stderr, warnings and up, when the program set no
    handler up, which a handler here would otherwise stop): silent while medimg reads, the last resort else."""

    def emit(self, record: logging.LogRecord) -> None:
        if ours():
            return
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None:  # as Logger.callHandlers looks: any other handler the record reaches
            if any(not isinstance(h, LastResortUnlessReading) for h in logger.handlers):
                return
            logger = logger.parent if logger.propagate else None
        last = logging.lastResort
        if last is not None and record.levelno >= last.level:
            last.handle(record)


def quiet_logger(name: str) -> None:
    """What the library `name` logs is not printed while medimg reads; otherwise as if medimg were not there."""
    logger = logging.getLogger(name)
    if not any(isinstance(h, LastResortUnlessReading) for h in logger.handlers):  # once, a module reloaded too
        logger.addHandler(LastResortUnlessReading())


# libtiff (Pillow's TIFF decoder) prints its errors on stderr ("TIFFFillStrip: Read error on strip 0", "JPEGLib:
# Unsupported marker type") and Pillow gives the page anyway when its RGBA path reads on past them (a damaged JPEG
# strip came out half grey). While medimg reads, each error is kept for the thread instead (`libtiff_errors`).
_libtiff = threading.local()
_handlers: list | None = None  # the callbacks installed (kept alive), one a libtiff; [] when none was found


def _loaded_libtiffs() -> list[str]:
    """The paths of the libtiff libraries loaded in this process (Pillow's own copy in its wheel), by the maps."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            found = {line.split(None, 5)[-1].strip() for line in maps if "libtiff" in line}
    except OSError:
        return []
    return sorted(p for p in found if os.path.basename(p).startswith("libtiff") and os.path.isfile(p))


def quiet_libtiff() -> None:
    """Install the error handler on each libtiff loaded (once; Pillow must be imported first)."""
    global _handlers
    if _handlers is not None:
        return
    _handlers, paths = [], _loaded_libtiffs()
    if not paths:
        return
    kind = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p)
    libc = ctypes.CDLL(None)
    libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            lib.TIFFSetErrorHandler.restype = ctypes.c_void_p
            lib.TIFFSetErrorHandler.argtypes = [ctypes.c_void_p]
        except (OSError, AttributeError):
            continue
        before: list = []

        def on_error(module, fmt, args, before=before):
            try:
                reading = ours()
            except ValueError:  # no Python caller (a thread of the library's own)
                reading = False
            try:
                if not reading:  # the program's own call: as libtiff's handler before this one
                    if before:
                        before[0](module, fmt, args)
                    return
                text = ctypes.create_string_buffer(512)
                libc.vsnprintf(text, len(text), fmt, args)
                where = (module or b"").decode("utf-8", "replace")
                message = text.value.decode("utf-8", "replace")
                kept = libtiff_errors()
                if len(kept) < 16:  # a page's first few are enough to tell it
                    kept.append(f"{where}: {message}" if where else message)
            except Exception:
                pass

        handler = kind(on_error)
        previous = lib.TIFFSetErrorHandler(ctypes.cast(handler, ctypes.c_void_p))
        if previous:
            before.append(kind(previous))
        _handlers.append(handler)


def libtiff_errors() -> list[str] | None:
    """The libtiff errors this thread met while medimg read (the caller clears it); None when no handler is."""
    if not _handlers:
        return None
    if not hasattr(_libtiff, "errors"):
        _libtiff.errors = []
    return _libtiff.errors
