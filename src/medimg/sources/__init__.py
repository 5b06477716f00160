"""Bytes → images. `open_input` takes a path, folder, URL or bytes and yields ImageItem / ItemError."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .base import Blob, Context, ImageItem, Item, ItemError, Limits, SourcePlugin
from .registry import open_blob, plugins, register

__all__ = [
    "Blob", "Context", "ImageItem", "Item", "ItemError", "Limits", "SourcePlugin",
    "open_input", "open_inputs", "input_tasks", "open_blob", "plugins", "register", "is_url",
]


def is_url(text: str) -> bool:
    return isinstance(text, str) and text.lower().startswith(("http://", "https://"))


def open_input(source: str | os.PathLike | Blob, limits: Limits | None = None,
               ctx: Context | None = None) -> Iterator[Item]:
    """Every image in one input: a file, a folder (recursive), a URL, or a Blob of bytes.

    Never raises for bad input: problems come out as ItemError items.
    """
    ctx = ctx or Context(limits)
    if isinstance(source, Blob):
        yield from _capped(ctx.open_blob(source), source.origin, ctx)
        return
    text = os.fspath(source)
    if is_url(text):
        from .web import open_url

        yield from _capped(open_url(text, ctx), text, ctx)
        return
    path = Path(text)
    if path.is_dir():
        from .files import iter_folder

        yield from iter_folder(path, ctx)
        return
    from .files import read_file

    blob = read_file(path, ctx)
    if isinstance(blob, ItemError):
        yield blob
        return
    yield from _capped(ctx.open_blob(blob), blob.origin, ctx)


def open_inputs(sources: Iterable[str | os.PathLike | Blob], limits: Limits | None = None) -> Iterator[Item]:
    for task in input_tasks(sources, limits):
        yield from task()


def input_tasks(sources: Iterable[str | os.PathLike | Blob],
                limits: Limits | None = None) -> Iterator[Callable[[], Iterator[Item]]]:
    """The inputs as independent units of work, in input order, that may run concurrently.

    Each is a call that yields what open_input would for it: one per file, URL or Blob, and one per
    file inside a folder. Running them in order and chaining their items gives open_inputs.
    """
    ctx = Context(limits)
    for source in sources:
        if not isinstance(source, Blob) and not is_url(os.fspath(source)) and Path(os.fspath(source)).is_dir():
            from .files import folder_tasks

            yield from folder_tasks(os.fspath(source), ctx)
        else:
            yield partial(open_input, source, ctx=ctx)


def _capped(items: Iterator[Item], origin: str, ctx: Context) -> Iterator[Item]:
    """Stop after max_images_per_input images from one input, with a clear note."""
    cap = ctx.limits.max_images_per_input
    n = 0
    for item in items:
        if isinstance(item, ImageItem):
            n += 1
            if n > cap:
                yield ItemError(origin, "", f"stopped after {cap} images (max_images_per_input)", skipped=True)
                close = getattr(items, "close", None)
                if close:
                    close()
                return
        yield item
