"""Saved web pages: an HTML file given as a file (or inside a folder) and the images it shows.

Relative image paths resolve against the HTML file's own folder and may not leave it; absolute
http(s) images are fetched through the guarded fetcher; data: URIs are decoded. An HTML file that
is not on disk (an upload, a zip member) can show only its data: and http(s) images; its relative ones are
skipped notes (the archive's or upload's images are read as inputs of their own).
"""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, unquote, urlsplit

from . import files, net, web
from .base import Blob, Context, Item, ItemError, SourcePlugin
from .html_cost import PageTooDeep
from .registry import register

LOCAL = "http://local-file.invalid/"  # a base that can never be fetched: marks relative references
# the page's folder goes under this, so a path from the site's root ("/img/a.png") stands out
FOLDER = "medimg-page.invalid/"
# and under levels of its own, so that a "../" more than the page's folder has (`../../../../etc/passwd`) is seen
# leaving it, as written, not cut at the root into a path from the site's root (`/etc/passwd`)
UP = "~/" * 32


_NAMES = (".html", ".htm", ".xhtml")
_TAGS = (b"<img", b"<picture", b"<figure", b"<div", b"<p>", b"<p ", b"<table", b"<a ", b"<section", b"<article")


def accepts(head: bytes, blob: Blob) -> bool:
    text = head[:1024].lstrip(b"\xef\xbb\xbf \t\r\n\x0c").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<meta", b"<!--")):
        return b"<html" in head.lower() or b"<body" in head.lower() or b"<img" in head.lower()
    if text.startswith(b"<?xml"):  # XHTML: a page after the XML declaration (not an SVG holding some XHTML)
        return text.partition(b"?>")[2].lstrip().startswith((b"<!doctype html", b"<html"))
    # a fragment named as a page (a figure saved on its own, an export): markup from its first byte
    return (blob.name or blob.origin).lower().endswith(_NAMES) and text.startswith(_TAGS)


def open_html(blob: Blob, ctx: Context) -> Iterator[Item]:
    folder = _folder_of(blob)
    # resolve against the real location, so "../x.png" is seen leaving the folder
    where = UP + ((folder.as_posix().strip("/") + "/").lstrip("/") if folder else "upload/")
    try:
        found = web.extract(blob.data, LOCAL + FOLDER + quote(where, errors="surrogateescape") + "page.html")
    except PageTooDeep as exc:
        yield ItemError(blob.origin, "", str(exc))
        return
    # one client for the page, its stylesheets then its images (a connection kept for both)
    fetcher = net.Fetcher(ctx.limits, ctx.cancel) if found or found.sheets else None
    try:
        yield from _read(blob, ctx, found, folder, where, fetcher)
    finally:
        if fetcher is not None:
            fetcher.close()


def _read(blob: Blob, ctx: Context, found: web.Found, folder: Path | None, where: str,
          fetcher: net.Fetcher | None) -> Iterator[Item]:
    # the backgrounds its stylesheets set (a saved page's `page_files/site.css`), after its images
    sheet_notes = _add_sheets(found, folder, where, ctx, blob.depth == 0, fetcher) if found.sheets else []
    for note in sheet_notes:
        yield ItemError(blob.origin, "", note, skipped=True)
    walked = sum(blob.walked and folder is not None and _in_walk(c.url, where) for c in found)
    if walked:  # a page read as a file of a folder given (a wget mirror): its files are read as the folder's
        kept = web.Found(c for c in found if not _in_walk(c.url, where))
        kept.passed, found = found.passed, kept
        yield ItemError(blob.origin, "", f"{walked} file{'s' * (walked != 1)} beside the page not read through it: "
                                         "each is read as a file of the folder given", skipped=True)
    # a link to a file beside the page taken only on a hint (`guess`: a saved listing's `IM000003`) is not read: the
    # files beside a saved page are read as files of their own when its folder is given (a wget mirror's files)
    local = sum(url.startswith(LOCAL) for url in found.passed)  # past the cap
    beside = local + sum(c.guess and c.url.startswith(LOCAL) for c in found)
    passed = len(found.passed) - local  # http(s) links past the cap
    if beside:
        found = [c for c in found if not (c.guess and c.url.startswith(LOCAL))]
        yield ItemError(blob.origin, "", f"{beside} link{'s' * (beside != 1)} to files beside the page without an "
                                         "image's name not read: give their folder to read them", skipped=True)
    remote = sum(_remote(c.url) for c in found) if ctx.unfetched else 0
    if remote:  # a page attached to an e-mail: fetching its images would tell the sender (a tracker) it was read
        kept = web.Found(c for c in found if not _remote(c.url))
        kept.passed, found = {u for u in found.passed if not _remote(u)}, kept
        yield ItemError(blob.origin, "", f"{remote} remote image{'s' * (remote != 1)} not fetched: {ctx.unfetched}, "
                                         "and a page in a message fetches nothing (remote images there are often "
                                         "trackers); give the page as a file of its own to read them", skipped=True)
    if not found:
        if not walked and not remote and not sheet_notes:
            yield ItemError(blob.origin, "", "no images referenced in this HTML file", skipped=True)
        return
    cap = ctx.limits.max_images_per_input
    # one file named twice (img/a.png and img/a.png?v=2, whose query means nothing on disk), or two files with
    # the same bytes, is one image: the second is a note naming the first, as on a web page
    seen = web.Seen()
    at = web.places(found[:cap])  # a thumbnail whose link leads to an image read is a note, as on a web page
    ahead: dict[int, Iterator[Item]] = {}

    def read(index: int, note: web.Note | None = None) -> Iterator[Item]:
        cand = found[index - 1]
        if cand.url.startswith(LOCAL):
            path = _path_of(cand.url)
            inside = path.startswith("/" + FOLDER)  # else "/img/a.png": from the root of a site not known here
            if inside:
                path = "/" + path[len(FOLDER) + 1:].lstrip("/")
                cand.url = os.path.relpath(path, "/" + where)  # shown in the locator
            else:
                cand.url = path  # as written
            if note or seen.written(cand):
                got = note
            elif inside and folder is not None and _disk(path) is None:
                got = f"refused '{cand.url}': it points outside the HTML file's folder"
            elif inside or folder is None:
                got = _read_local(folder, Path(_disk(path) or path), cand.url, ctx)
            else:
                got = f"'{path}' not read: it starts at the web site's root, which is not known for a saved page"
        else:
            got = note or (None if seen.written(cand) else web._download(cand, fetcher, ctx.limits.max_download_bytes))
        return web._emit(blob.origin, blob.origin, index, cand, got, ctx, seen=seen)

    yield from web.read_in_order(blob.origin, found, cap, at, seen, ahead, read)
    yield from web.guesses_note(blob.origin, passed)


class _SheetReader:
    """The fetcher `web_fetch.Stylesheets` reads a saved page's stylesheets through: those beside the page from
    disk, as its images are (inside its folder, regular files, capped); http(s) ones through the guarded fetcher,
    unless the page came in a message (`ctx.unfetched`)."""

    def __init__(self, folder: Path | None, where: str, ctx: Context, fetcher: net.Fetcher):
        self.folder, self.where, self.ctx, self.fetcher = folder, where, ctx, fetcher

    def fetch(self, url: str, accept=None, max_bytes: int | None = None, robots: bool = True) -> net.Fetched:
        if not url.startswith(LOCAL):
            if self.ctx.unfetched:
                raise net.FetchError(f"{web.short_url(url)} not fetched: {self.ctx.unfetched}")
            return self.fetcher.fetch(url, accept=accept, max_bytes=max_bytes, robots=robots)
        path = _path_of(url)
        if not path.startswith("/" + FOLDER):
            raise net.FetchError(f"'{path}' not read: it starts at the web site's root, which is not known for a "
                                 "saved page")
        path = "/" + path[len(FOLDER) + 1:].lstrip("/")
        rel = os.path.relpath(path, "/" + self.where)
        if self.folder is not None and _disk(path) is None:
            raise net.FetchError(f"refused '{rel}': it points outside the HTML file's folder")
        cap = max_bytes or self.ctx.limits.max_download_bytes
        got = _read_local(self.folder, Path(_disk(path) or path), rel,
                          Context(replace(self.ctx.limits, max_download_bytes=cap)))
        if not isinstance(got, Blob):
            raise net.FetchError(str(got))
        return net.Fetched(url, got.data, None)  # no type on disk: read as CSS, as a browser reads a local file


def _add_sheets(found: web.Found, folder: Path | None, where: str, ctx: Context, alone: bool,
                fetcher: net.Fetcher) -> list[str]:
    """Add to `found` the images its stylesheets set on its elements (as a web page's are read: at most MAX_SHEETS,
    @imports one level deep, the rules whose selectors match the page); the notes of those not read. `alone`: not
    in an archive (whose other files are read as its own), so sheets beside it that cannot be read are named."""
    from concurrent.futures import ThreadPoolExecutor

    notes = []
    if folder is None:  # an upload or archive member: the files beside it are read as inputs of their own
        beside = [_relative(url, where) for url in found.sheets if url.startswith(LOCAL)]
        found.sheets = [url for url in found.sheets if not url.startswith(LOCAL)]
        if beside and alone:
            notes.append(f"{len(beside)} stylesheet{'s' * (len(beside) != 1)} beside the page not read "
                         f"({', '.join(beside[:3])}{', …' * (len(beside) > 3)}): the HTML file is not in a folder on "
                         f"disk, so the backgrounds {'they set' if len(beside) != 1 else 'it sets'} are not read "
                         "(an image uploaded with it is classified as a file of its own)")
        if not found.sheets:
            return notes
    with ThreadPoolExecutor(2, "medimg-sheets") as pool:
        styles = web.Stylesheets(found, pool, _SheetReader(folder, where, ctx, fetcher), ctx.limits)
        found.extend(styles.candidates({web._same(c.url) for c in found}, ctx.cancel))
    return notes + styles.notes("not read")  # a file has no --render


def _relative(url: str, where: str) -> str:
    """A reference beside the page as it is written relative to the page (`case_files/site.css`)."""
    path = _path_of(url)
    if not path.startswith("/" + FOLDER):
        return path
    return os.path.relpath("/" + path[len(FOLDER) + 1:].lstrip("/"), "/" + where)


def _remote(url: str) -> bool:
    return url[:8].lower().startswith(("http://", "https://")) and not url.startswith(LOCAL)


def _disk(path: str) -> str | None:
    """The path on disk of a reference's path under the page's levels (`/~/…/~/tmp/a.png` -> `/tmp/a.png`); None
    for one that went up past them, out of every folder."""
    return path[len(UP):] if path.startswith("/" + UP) else None


def _path_of(url: str) -> str:
    """The file a reference names: its %-escapes are the bytes of the name on disk, which need not be UTF-8 (a
    Windows page's `caf%E9.png`, a folder of Latin-1 names): kept as surrogates, as Python gives such names."""
    return unquote(urlsplit(url).path, errors="surrogateescape")


def _in_walk(url: str, where: str) -> bool:
    """Whether a reference of the page is a file in its folder that a walk of the folder reads too: relative,
    inside the page's folder, through no hidden folder and not hidden itself (a walk leaves those out)."""
    if not url.startswith(LOCAL):
        return False
    path = _path_of(url)
    if not path.startswith("/" + FOLDER):
        return False
    rel = os.path.relpath("/" + path[len(FOLDER) + 1:].lstrip("/"), "/" + where)
    return not rel.startswith("..") and not any(files.is_hidden(part) for part in Path(rel).parts)


def _folder_of(blob: Blob) -> Path | None:
    """The folder of an HTML file read from disk: `files.read_file` gives it a reader of the files beside it,
    bound to that folder. An upload or archive member has none, whatever its name matches in the working
    folder."""
    beside = blob.sibling
    if isinstance(beside, partial) and beside.func is files._beside and beside.args:
        return Path(beside.args[0]).resolve()
    return None


def _read_local(folder: Path | None, path: Path, rel: str, ctx: Context) -> Blob | str:
    if folder is None:
        return web.Note(f"relative image '{rel}' not read: the HTML file is not in a folder on disk (an image in the "
                        "same archive or upload is classified as a file of its own)")
    try:
        path = path.resolve()
    except (OSError, RuntimeError) as exc:  # a symbolic link in a loop: Python 3.11-3.12 raise RuntimeError
        return f"could not read '{rel}': {exc}"
    if not path.is_relative_to(folder):
        return f"refused '{rel}': it points outside the HTML file's folder"
    cap = ctx.limits.max_download_bytes
    try:
        st = path.stat()
    except FileNotFoundError:
        return f"'{rel}' not found next to the HTML file"
    except OSError as exc:
        return f"could not read '{rel}': {exc.strerror or exc}"
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block the read forever, a device never end
        return f"'{rel}' is not a regular file; not read"
    if st.st_size > cap:
        return f"'{rel}' is {st.st_size} bytes, over the cap of {cap}"
    got = files.read_file(path, Context(replace(ctx.limits, max_input_bytes=cap)))  # regular files only, capped
    if isinstance(got, ItemError):
        return f"could not read '{rel}': {got.error}"
    return Blob(origin=str(path), data=got.data, name=rel, sibling=got.sibling)  # a header's data file beside it


register(SourcePlugin(name="html", accepts=accepts, open=open_html, priority=90))
