"""The warnings and log records of the libraries medimg reads with, hidden while medimg reads (a damaged file is
reported by its item's error instead) and left as they are when the program calls those libraries itself: a
notebook's own nibabel or pydicom warnings still show after medimg has read a volume.

`warnings.catch_warnings` is not thread-safe, so the filters are the process's, but each matches only a warning
raised with medimg's code on the stack of the thread that raised it."""

from __future__ import annotations

import logging
import re
import sys
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
