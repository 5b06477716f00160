"""Sources register here, the way Pillow's format plugins do: first bytes in, items out."""

from __future__ import annotations

import threading
from typing import Iterator

from .base import Blob, Context, Item, ItemError, SourcePlugin, recoverable

HEAD_BYTES = 4096
_PLUGINS: list[SourcePlugin] = []


def register(plugin: SourcePlugin) -> SourcePlugin:
    _PLUGINS[:] = [p for p in _PLUGINS if p.name != plugin.name] + [plugin]
    _PLUGINS.sort(key=lambda p: p.priority)
    return plugin


def plugins() -> list[SourcePlugin]:
    _load_builtin()
    return list(_PLUGINS)


def find(blob: Blob) -> SourcePlugin | None:
    head = blob.data[:HEAD_BYTES]
    for plugin in plugins():
        try:
            if plugin.accepts(head, blob):
                return plugin
        except BaseException as exc:  # a broken sniffer must not hide the others
            if not recoverable(exc):
                raise
            continue
    return None


def open_blob(blob: Blob, ctx: Context) -> Iterator[Item]:
    """Open one blob with the first source that accepts it; never raises."""
    if blob.data_of:  # named by a header given with it (even when compressed, as an .img.gz)
        yield ItemError(blob.origin, "", f"skipped: the data file of {blob.data_of}, read with it", skipped=True)
        return
    plugin = find(blob)
    if plugin is None:
        yield ItemError(blob.origin, "", "the file is empty" if not blob.data else
                        f"unrecognised content: not an image, document or archive medimg reads ({_describe(blob.data)})")
        return
    try:
        yield from plugin.open(blob, ctx)
    except BaseException as exc:  # one bad input never stops the rest (a decoder's panic included)
        if not recoverable(exc):
            raise
        yield ItemError(blob.origin, "", f"{plugin.name}: could not read: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _describe(data: bytes) -> str:
    """Its size and first bytes: as text when they are printable, else in hex."""
    head = data[:8]
    shown = (f"“{head.decode('ascii')}”" if all(32 <= c < 127 for c in head)
             else " ".join(f"{c:02x}" for c in head))
    return f"{len(data):,} bytes, starting {shown}"


_loaded = False
_loading = threading.RLock()  # threads must not see a half-filled registry (the importing one may re-enter)


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    with _loading:
        if not _loaded:
            from . import files, html_file, pdf, web  # noqa: F401  (each registers itself on import)

            _loaded = True
