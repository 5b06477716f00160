"""Web pages saved as one file: MHTML (`.mhtml`/`.mht`, Chrome's and Edge's "Webpage, Single File", Word's and
Internet Explorer's web archives) and Safari's `.webarchive` (a binary property list).

Such a file holds the page's HTML and a copy of each resource the browser loaded, by its URL. The page's images are
read from those copies, in page order, as a web page's are (`img #3 https://…/fig3.jpg`); an image the page names
that the file does not hold is not fetched (a saved page is read as it was saved: one note counts them), and an
image the file holds that the HTML does not name (a stylesheet's background, one a script loaded) is read after
them (`resource #8 …`). A picture named by its Content-ID (`<img src="cid:image002@01DA">`, as Word and Outlook
save pages) is read in its place too (`img #2 cid:image002@01DA`).
"""

from __future__ import annotations

import plistlib
import re
from typing import Iterator
from urllib.parse import unquote, urldefrag

from . import web
from .base import Blob, Context, Item, ItemError, SourcePlugin
from .html_cost import PageTooDeep
from .registry import register
from .web_page import Candidate, _resolve

_MHT_NAMES = (".mht", ".mhtml")
_FILE = "http://saved-file.invalid"  # never fetched: every image here comes from the file


def accepts(head: bytes, blob: Blob) -> bool:
    if head.startswith(b"bplist00"):
        return b"WebMainResource" in blob.data
    top = head[:4096].lower()
    if top.startswith(b"from: <saved by blink>"):  # Chrome's first line; a long title can push the rest past the head
        return True
    if b"multipart/related" not in top:
        return False
    # Chrome and Edge write both headers; Word, Internet Explorer and others only a name ending so
    return (b"snapshot-content-location:" in top or b"<saved by blink>" in top
            or (blob.name or blob.origin).lower().endswith(_MHT_NAMES))


class _Saved:
    """A saved page: its HTML, the URL it came from, and the resources stored with it (URL -> (bytes, type))."""

    def __init__(self) -> None:
        self.html, self.url, self.charset = b"", "about:blank", None
        self.stored: dict[str, tuple[bytes, str | None]] = {}
        self.cut = False  # the file ends inside a part (an MHTML without its closing boundary)


def _webarchive(data: bytes) -> _Saved:
    archive = plistlib.loads(data, fmt=plistlib.FMT_BINARY)
    saved, stack, seen = _Saved(), [archive], set()
    main = archive.get("WebMainResource") if isinstance(archive, dict) else None
    if not isinstance(main, dict) or not isinstance(main.get("WebResourceData"), bytes):
        raise ValueError("a Safari web archive without its page")
    saved.html, saved.url = main["WebResourceData"], str(main.get("WebResourceURL") or saved.url)
    saved.charset = _text(main.get("WebResourceTextEncodingName"))
    while stack:  # the archive, then its frames' archives (their pages' images are resources of the whole)
        one = stack.pop()
        if not isinstance(one, dict) or id(one) in seen:  # a plist may name one archive many times, or itself
            continue
        seen.add(id(one))
        frame = one.get("WebMainResource")
        resources = _list(one.get("WebSubresources")) + ([frame] if one is not archive else [])
        for res in resources:
            if isinstance(res, dict) and isinstance(res.get("WebResourceData"), bytes) and res.get("WebResourceURL"):
                saved.stored.setdefault(str(res["WebResourceURL"]), (res["WebResourceData"],
                                                                     _text(res.get("WebResourceMIMEType"))))
        stack.extend(_list(one.get("WebSubframeArchives")))
    return saved


def _text(value) -> str | None:
    """A string the archive gives, else None: a MIME type of another type (a number, bytes) lost the whole file."""
    return value if isinstance(value, str) else None


def _list(value) -> list:
    """A list the archive gives, else none: a frame list of another type (a date) lost the page's own images."""
    return list(value) if isinstance(value, list) else []


def _mhtml(data: bytes, ctx: Context) -> _Saved:
    import email.errors

    from . import email_file

    msg = email_file._parse(data, email_file._Reading(ctx.limits.zip_max_entries))
    leaves = email_file._leaves(msg)
    start = str(msg.get_param("start", "", header="content-type") or "").strip("<>")
    root = next((p for p in leaves if start and email_file._cid(p) == start), None)
    root = root or next((p for p in leaves if p.get_content_type() in ("text/html", "application/xhtml+xml")), None)
    if root is None:
        raise ValueError("an MHTML file without an HTML page")
    saved = _Saved()
    saved.html = root.get_payload(decode=True) or b""
    saved.url = str(root.get("content-location") or msg.get("snapshot-content-location") or saved.url).strip()
    saved.charset = root.get_content_charset()
    saved.cut = any(isinstance(d, email.errors.CloseBoundaryNotFoundDefect)
                    for part in msg.walk() if part.is_multipart() for d in part.defects)
    for part in leaves:
        if part is root:
            continue
        body = email_file._payload(part) or b""
        cid = email_file._cid(part)
        for key in (str(part.get("content-location") or "").strip(), "cid:" + cid if cid else ""):
            if key:
                saved.stored.setdefault(key, (body, part.get_content_type()))
    return saved


def open_saved(blob: Blob, ctx: Context) -> Iterator[Item]:
    kind = "Safari web archive" if blob.data.startswith(b"bplist00") else "MHTML file"
    try:
        saved = _webarchive(blob.data) if kind.startswith("Safari") else _mhtml(blob.data, ctx)
        saved.html = _cid_refs(saved.html)  # read in page order, as other images
        found = web.extract(saved.html, _http(saved.url), f"text/html; charset={saved.charset}" if saved.charset else None,
                            alternatives=True)
    except PageTooDeep as exc:
        yield ItemError(blob.origin, "", str(exc))
        return
    except Exception as exc:  # a damaged or refused file is this input's error only
        yield ItemError(blob.origin, "", f"could not read this {kind}: {exc}")
        return
    if saved.cut:  # a download or copy stopped early: what the page names after the cut is lost, not left out
        yield ItemError(blob.origin, "", f"this {kind} is cut off: it ends inside a part, without its closing "
                                         "boundary (the resources after the cut are lost)")
    stored, used = saved.stored, set()
    keys: dict[str, str] = {}  # without the #fragment, which names no other file
    for url in stored:
        keys.setdefault(_key(_http(url) if url[:4].lower() != "cid:" else _CID_BASE + url[4:]), url)
    kept, missing = [], 0
    for cand in found:
        if cand.url[:5].lower() == "data:":
            kept.append(cand)
            continue
        held = [keys[k] for k in map(_key, map(_cid_form, (cand.url, *cand.alternatives))) if k in keys]
        if not held:  # a link's target, an image not loaded (lazy, another size): not in the file
            missing += not cand.guess
            continue
        url = held[0]
        used.update(held)  # its other sizes the file holds too (a page saved by Word): the same picture
        cand.url, (cand.data, cand.content_type) = url, stored[url]
        kept.append(cand)
    for url, (data, ctype) in stored.items():  # what the browser loaded besides: backgrounds, scripts' images
        if url not in used and url != saved.url and (ctype or "").startswith("image/"):
            kept.append(Candidate(url, "resource", data=data, content_type=ctype))
    if missing:
        yield ItemError(blob.origin, "", f"{missing} image{'s' * (missing != 1)} the page names {'are' if missing != 1 else 'is'} "
                                         f"not in the {kind} and not fetched (a saved page is read as saved)",
                        skipped=True)
    if not kept:
        yield ItemError(blob.origin, "", f"no images in this {kind}", skipped=True)
        return
    cap = ctx.limits.max_download_bytes
    seen = web.Seen()
    at = web.places(kept[:ctx.limits.max_images_per_input])
    ahead: dict[int, Iterator[Item]] = {}

    def read(index: int, note: web.Note | None = None) -> Iterator[Item]:
        cand = kept[index - 1]
        got = note
        if got is None and not seen.written(cand):
            got = (f"{len(cand.data)} bytes, over the cap of {cap}" if cand.data is not None and len(cand.data) > cap
                   else web._download(cand, None, cap))
        return web._emit(blob.origin, saved.url, index, cand, got, ctx,
                         follow=f"its images are read from the {kind}", seen=seen)

    yield from web.read_in_order(blob.origin, kept, ctx.limits.max_images_per_input, at, seen, ahead, read)


# `cid:` references (Word's and Outlook's pages name their pictures by Content-ID), given an http form for the
# page's reading, which resolves only http(s) URLs; their copies keep their `cid:` name
_CID_BASE = "http://content-id.invalid/"
_CID_REF = re.compile(rb"""((?:\bsrc|\bhref|\bbackground|\bposter|\bdata)\s*=\s*["']?\s*|url\(\s*["']?)cid:""", re.I)


_CID_SRCSET = re.compile(rb"""(\bsrcset\s*=\s*)(["'])(.*?)\2""", re.I | re.S)
_CID_CANDIDATE = re.compile(rb"(^|,)(\s*)cid:", re.I)


def _cid_refs(html: bytes) -> bytes:
    """The page with its `cid:` references (attributes, url(), each candidate of a srcset) in their http form."""
    html = _CID_REF.sub(rb"\1" + _CID_BASE.encode(), html)
    return _CID_SRCSET.sub(lambda m: m[1] + m[2] + _CID_CANDIDATE.sub(rb"\1\2" + _CID_BASE.encode(), m[3]) + m[2],
                           html)


def _cid_form(url: str) -> str:
    """A `cid:` reference's http form as its copy is keyed: unescaped, in lower case (as e-mail reading keeps
    Content-IDs); any other URL as it is."""
    return _CID_BASE + unquote(url[len(_CID_BASE):]).lower() if url.startswith(_CID_BASE) else url


def _key(url: str) -> str:
    """A URL as the page's references are resolved (%-escaped, without its #fragment), to find its copy."""
    return _resolve(url, url) or urldefrag(url)[0]


def _http(url: str) -> str:
    """A file: URL (a page Word or Internet Explorer saved) as an http one, which the page's reading resolves."""
    return _FILE + url[7:] if url[:7].lower() == "file://" else url


register(SourcePlugin(name="saved-page", accepts=accepts, open=open_saved, priority=84))
