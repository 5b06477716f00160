"""Web pages: a URL that is an image, PDF or DICOM file is opened as such; an HTML page yields its images.

Every download goes through `net.Fetcher` (timeouts, byte cap, private-address guard). Images are
fetched concurrently (at most `max_concurrency` at once, a bounded window ahead of the reader) and
yielded in page order; each one is decoded by whichever registered source accepts its bytes. The page's external
stylesheets are fetched in the same pool, and the backgrounds they set for its elements come after its own images
(css.py reads them).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import hashlib
import re
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from typing import Callable, Iterable, Iterator
from urllib.parse import quote, unquote, unquote_to_bytes, urljoin, urlsplit

import httpx
from selectolax.lexbor import LexborHTMLParser

from . import css as sheets
from . import net, registry
from .base import Blob, Context, ImageItem, Item, ItemError
from .charset import http_charset, known_codec, page_charset, query_in
from .css import css_urls
from .html_cost import PageTooDeep, nesting_problem
from .media import largest, media_matches, parse_srcset
from .prints import CROP_PAIRS, CROPS_PER_PICTURE, SAME_PICTURE, Print, picture_print

HTML_TYPES = ("text/html", "application/xhtml+xml")
HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<meta", b"<title", b"<!--")
ACCEPT_PAGE = "text/html,application/xhtml+xml,image/*,application/pdf,application/dicom;q=0.9,*/*;q=0.8"
ACCEPT_IMAGE = "image/avif,image/webp,image/png,image/jpeg,image/*,application/dicom;q=0.9,*/*;q=0.5"
LAZY_SRCSET = ("data-srcset", "data-lazy-srcset")
LAZY_SRC = ("data-src", "data-original", "data-lazy-src", "data-lazy", "data-original-src",
            "data-hi-res-src", "data-full-src", "data-large-src", "data-echo", "data-url")
META_TAGS = {"og:image": "og:image", "og:image:url": "og:image", "og:image:secure_url": "og:image",
             "twitter:image": "twitter:image", "twitter:image:src": "twitter:image"}
_CSS_NOT_IMAGES = re.compile(r"@font-face\s*+\{[^}]*+\}?|@import[^;]*;?|(?<=[{;\s])(?:cursor|behavior)\s*:[^;}]*",
                             re.I)
LAZY_BACKGROUND = ("data-bg", "data-background", "data-background-image")  # lazysizes and kin
EMBEDDING = ("iframe", "frame", "object", "embed")  # tags whose URL may be a page of its own: its images are read
MAX_FRAMES = 10  # embedded pages read per page
FRAME_IMAGES = 100  # images read per embedded page
# a link named as a file the sources read as an image (a gallery's full image, a listing's `scan.nii.gz`); a linked PDF
# is a document of its own, not followed
LINK_NAMES = tuple(name for name in registry.IMAGE_NAMES if name != ".pdf")
# names DICOM files have that other files have too (Siemens's `.ima`; `.dic`, a dictionary's too): a link so named is
# read only when the page says it is DICOM (`_dicom_hint`), and given up unless its first bytes are an image's
DICOM_NAMES = (".ima", ".dic")
_DICOM_WORD = re.compile(r"(?<![a-z])dicom(?![a-z])", re.I)
NEARBY = 2000  # characters of the element around a link looked at for the word
# a detached MetaImage header and the names of its data files: a link to `x.mhd` is read only when the page links
# `x.raw` (or `x.zraw`) beside it too, and its data file only from the page's links; a `.raw` alone is no picture
HEADER_NAMES = (".mhd",)
DATA_NAMES = (".raw", ".zraw")
MAX_GUESSES = 20  # links read per page on a hint that they lead to a file (no image's name: `attachment.php?id=3`)
_LISTING_TITLE = re.compile(r"\s*(?:index of|directory listing for)\s+/", re.I)  # Apache, nginx, Python's server
_FILE_WORDS = re.compile(r"(?<![a-z])(?:download|attachment|getfile|dl)s?(?![a-z])")  # in a link's path or query
_FILE_KEY = re.compile(r"(?:^|[&;])file=")  # `?file=scan1`
_SCRIPTS = ("php", "asp", "aspx", "ashx", "jsp", "cgi", "pl", "py", "cfm", "do", "action")  # a program, not a type
_URL_NOISE = re.compile(r"[\t\n\r]")


@dataclass
class Candidate:
    """One image reference on a page (or, when rendered, an image the browser loaded)."""

    url: str  # absolute http(s) URL or a data: URI
    tag: str  # img, picture, og:image, twitter:image, link, style, video
    alt: str = ""
    data: bytes | None = None  # bytes already in hand (the browser's copy); else fetched
    content_type: str | None = None
    # every other URL the element may show its picture from (src, each srcset entry, a <picture>'s sources;
    # only the lazy-load ones when it has any): a rendered page that loaded one of them has this picture
    alternatives: tuple[str, ...] = ()
    # a lazy-load element's src and srcset (a placeholder until a script swaps the picture in); rendered reading only
    placeholders: tuple[str, ...] = ()
    full: str | None = None  # a thumbnail's: the image its link leads to
    guess: bool = False  # a link taken on a hint that it leads to a file, not on its name: what is no image is a note
    beside: tuple[str, ...] = ()  # a detached header's (`x.mhd`): the data files the page links beside it, to read


class Found(list):
    """A page's candidates, and what a static reading of it does apart: the scripts that run (unseen), and the
    external stylesheets (linked, or imported by a <style>) to read for the backgrounds of its elements, with the
    parsed page (`tree`) and its elements' classes and ids (lower case) to match their selectors against."""

    scripts = 0
    sheets: list[str] = ()  # the stylesheets' URLs, for a screen, in page order
    tree: LexborHTMLParser | None = None  # kept only when there are sheets
    classes: set[str] = frozenset()
    ids: set[str] = frozenset()
    charset = "utf-8"  # the page's, which its stylesheets fall back to
    guesses = 0  # links taken on a hint (`Candidate.guess`)
    passed: set[str] = frozenset()  # and the URLs of those past MAX_GUESSES, not taken

    @property
    def stylesheets(self) -> int:
        return len(self.sheets)


# --- entry point ------------------------------------------------------------------------------


def open_url(url: str, ctx: Context) -> Iterator[Item]:
    """Every image a URL leads to; problems come out as ItemError items, never as exceptions."""
    fetcher = net.Fetcher(ctx.limits, ctx.cancel)
    try:
        try:
            page = fetcher.fetch(url, accept=ACCEPT_PAGE)
        except net.FetchError as exc:
            yield ItemError(url, "", str(exc))
            return
        blob = Blob(origin=url, data=page.data, name=_name(page.url), content_type=page.content_type)
        kind = classify(blob)
        if kind == "svg":
            yield ItemError(url, "", "SVG is not rasterised (vector drawing skipped)", skipped=True)
        elif kind == "blob":
            yield from ctx.open_blob(blob)
        elif kind == "html" and ctx.limits.render:
            try:
                static = extract(page.data, page.url, page.headers.get("content-type"), alternatives=True)
            except Exception:  # the browser's view still counts
                static = []
            yield from _rendered(url, page.url, ctx, fetcher, static)
        elif kind == "html":
            try:
                found = extract(page.data, page.url, page.headers.get("content-type"))
            except PageTooDeep as exc:
                yield ItemError(url, "", str(exc))
                return
            except Exception as exc:  # never seen with lexbor, but one bad page must not stop a batch
                yield ItemError(url, "", f"could not parse the page: {type(exc).__name__}: {exc}")
                return
            yield from fetch_images(url, page.url, found, ctx, fetcher)
        else:
            yield ItemError(url, "", f"not a web page or an image: {page.content_type or 'no content type'}, "
                                     f"{len(page.data)} bytes starting {page.data[:16]!r}")
    finally:
        fetcher.close()


def _rendered(origin: str, page_url: str, ctx: Context, fetcher: net.Fetcher,
              static: list[Candidate] = ()) -> Iterator[Item]:
    """The images the rendered page loaded, then those the HTML names that it did not load (lazy images no
    script brought in, og:image), so rendering finds at least what the static reading does."""
    from . import browser

    try:
        found = browser.collect(page_url, ctx.limits, ctx.cancel)
    except Exception as exc:  # an unexpected browser failure still ends as one clear error
        said = str(exc) if isinstance(exc, browser.BrowserError) else f"rendering failed: {type(exc).__name__}: {exc}"
        # a render that broke down (a page still busy, a crash) still gives what the HTML names, as without
        # --render; not when the run was given up, or the browser cannot start here at all
        named = bool(static or getattr(static, "sheets", None))  # its stylesheets' images too
        fallback = named and not (ctx.cancel is not None and ctx.cancel.is_set()) and browser.available() is None
        yield ItemError(origin, "", said + ("; the images its HTML names are read without rendering" if fallback
                                            else ""))
        if fallback:  # the Found itself, not a list of it: its stylesheets are read as without --render
            yield from fetch_images(origin, page_url, static, ctx, fetcher)
        return
    # a lazy element's placeholder (a 1x1 GIF, a blur) is no picture of its own: the static reading took its lazy
    # URL. One that is also some element's picture is kept.
    pictures = {_same(u) for c in static for u in (c.url, *c.alternatives)}
    held = {_same(u) for c in static for u in c.placeholders} - pictures
    found = [c for c in found if _same(c.url) not in held]
    # an image loaded for no element (a <link rel=preload imagesrcset>'s choice) that is another size of a picture
    # an element shows is that picture again
    shown = {_same(c.url) for c in found if c.tag != "response"}
    element_of = {_same(u): c for c in static for u in (c.url, *c.alternatives)}

    def shown_in_another_size(cand: Candidate) -> bool:
        element = element_of.get(_same(cand.url))
        return element is not None and any(_same(u) in shown for u in (element.url, *element.alternatives))

    found = [c for c in found if c.tag != "response" or not shown_in_another_size(c)]
    loaded = {_same(c.url) for c in found}
    # an element whose picture the browser loaded under any of its URLs (another srcset candidate) is found
    missed = [c for c in static if not any(_same(u) in loaded for u in (c.url, *c.alternatives))]
    fulls = {_same(u): c.full for c in static if c.full for u in (c.url, *c.alternatives)}
    for cand in found:  # a thumbnail the browser showed: the image its link leads to, as the static reading has it
        cand.full = fulls.get(_same(cand.url))
    # an embedded page's images are among what the browser loaded: it is not read again (a PDF or image still is).
    # A plain list: the stylesheets' images are the browser's too, and are not read again either
    yield from fetch_images(origin, page_url, _fulls_after_thumbnails(found + missed), ctx, fetcher, frames=0)
    yield from guesses_note(origin, len(getattr(static, "passed", ())))


def _fulls_after_thumbnails(found: list[Candidate]) -> list[Candidate]:
    """The list with each full image a shown thumbnail links to moved right after it (the browser never loads
    them, so they come last): read just after its thumbnail, not held from there to the end of the page."""
    links = {}
    for cand in found:
        if cand.tag == "a":
            links.setdefault(_same(cand.url), cand)
    after: dict[int, Candidate] = {}  # id of a thumbnail → the full image that follows it
    moved: set[int] = set()
    for cand in found:
        full = links.get(_same(cand.full)) if cand.full else None
        if full is not None and full is not cand and id(full) not in moved:
            after[id(cand)] = full
            moved.add(id(full))
    out = []
    for cand in found:
        if id(cand) not in moved:
            out.append(cand)
            if id(cand) in after:
                out.append(after[id(cand)])
    return out


def _same(url: str) -> str:
    """A URL as the browser writes it (spaces and non-ASCII percent-encoded, `./` gone, `'` in the query
    encoded), to compare the two."""
    if url[:5].lower() == "data:":
        return url
    try:
        url = str(httpx.URL(url))
    except Exception:
        return url
    head, mark, query = url.partition("?")
    return head + mark + query.replace("'", "%27")


def classify(blob: Blob) -> str | None:
    """"blob" (a registered source reads the bytes), "html", "svg", or None."""
    text = blob.data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n\x0c").lower()
    ctype = blob.content_type
    if text.startswith((b"<svg", b"<?xml", b"<!doctype svg")) and b"<svg" in text and b"<html" not in text:
        return "svg"
    if ctype in HTML_TYPES and text.startswith(HTML_STARTS):  # even if it mentions "%PDF-1.7" near its top
        return "html"
    try:
        plugin = registry.find(blob)
    except ImportError:  # a source module is missing; HTML still works
        plugin = None
    if plugin is not None and plugin.name != "html":
        return "blob"
    if ctype == "image/svg+xml":
        return "svg"
    if ctype in HTML_TYPES or (ctype in (None, "application/octet-stream") and text.startswith(HTML_STARTS)):
        return "html"
    return None


# --- finding the images on a page -------------------------------------------------------------


def extract(html: bytes | str, page_url: str, content_type: str | None = None,
            alternatives: bool = False) -> Found:
    """Image references in page order, resolved against <base href> and without duplicates; with `alternatives`
    (for comparing with a rendered page), each one's other URLs and placeholders too.
    A page nested so deep that parsing it would take too long raises `PageTooDeep` instead."""
    charset = page_charset(html, content_type) if isinstance(html, bytes) else "utf-8"
    text = html.decode(charset, errors="replace") if isinstance(html, bytes) else html
    problem = nesting_problem(text)
    if problem:
        raise PageTooDeep(problem)
    tree = LexborHTMLParser(text)
    base = page_url
    base_node = tree.css_first("base[href]")
    if base_node is not None:
        try:
            base = urljoin(page_url, (base_node.attributes.get("href") or "").strip())
        except ValueError:  # e.g. "http://[oops/": browsers ignore a bad base and use the page's URL
            pass
    found = Found()
    found.sheets, found.classes, found.ids, found.charset = [], set(), set(), charset
    folder = _folder_listing(tree, page_url)  # a web server's listing: its files without a type's name are read too
    dicom_page = _says_dicom(tree.css_first("title"), tree.css_first("h1"))  # its `.ima` and `.dic` links too
    data_links = _data_links(tree, base, charset)  # `x.raw`: read with its header `x.mhd` when the page links both
    said: dict[int, bool] = {}  # whether the element around a `.ima` link says DICOM, by element
    seen: set[str] = set()
    found.passed = set()
    sources: dict[int, str | None] = {}  # each <picture>'s chosen <source>, worked out once
    offers: dict[int, tuple[list[str], list[str]]] = {}  # and the URLs its sources offer (lazy, plain)

    def add(raw: str | None, tag: str, alt: str = "", others: Callable[[], list[str]] | None = None,
            spare: Callable[[], list[str]] | None = None, guess: bool = False) -> None:
        url = _resolve(raw, base, charset)
        if url and url not in seen:
            if guess and found.guesses >= MAX_GUESSES:
                found.passed.add(url)
                return
            found.guesses += guess
            seen.add(url)
            others = others() if others and alternatives else ()
            other = {u: None for u in (_resolve(o, base, charset) for o in others)
                     if u and u != url and u[:5].lower() != "data:"}  # a data: placeholder is no picture
            spare = spare() if spare and alternatives else ()
            held = {u: None for u in (_resolve(o, base, charset) for o in spare) if u and u != url}
            found.append(Candidate(url, tag, alt, alternatives=tuple(other), placeholders=tuple(held), guess=guess))

    def sheet(raw: str | None) -> None:
        url = _resolve(raw, base, charset)
        if url and url not in found.sheets:
            found.sheets.append(url)

    def picture_urls(picture) -> tuple[list[str], list[str]]:
        if picture.mem_id not in offers:
            offers[picture.mem_id] = _source_urls(picture)
        return offers[picture.mem_id]

    root = tree.root
    for node in root.traverse(include_text=False) if root is not None else ():
        tag, attrs = node.tag, node.attributes
        first = len(found)
        if attrs.get("class"):  # what a stylesheet's selector needs on the page
            found.classes.update(attrs["class"].lower().split())
        if attrs.get("id"):
            found.ids.add(attrs["id"].lower())
        if tag == "img":
            parent = node.parent
            if parent is not None and parent.tag == "picture":
                if parent.mem_id not in sources:
                    sources[parent.mem_id] = _source_choice(parent)
                add(sources[parent.mem_id] or _img_choice(attrs), "picture", _attr(attrs, "alt"),
                    lambda a=attrs, p=parent: _alternatives(a, *picture_urls(p)),
                    lambda a=attrs, p=parent: _placeholders(a, *picture_urls(p)))
            else:  # a <noscript>'s: the fallback of a lazy <img> beside it, often of another size (`Seen.resized`)
                add(_img_choice(attrs), "noscript" if _link_around(node, "noscript") else "img", _attr(attrs, "alt"),
                    lambda a=attrs: _alternatives(a), lambda a=attrs: _placeholders(a))
        elif tag == "picture" and not any(c.tag == "img" for c in _children(node)):
            add(_source_choice(node), "picture", others=lambda p=node: _alternatives({}, *picture_urls(p)))
        elif tag == "meta":
            key = (_attr(attrs, "property") or _attr(attrs, "name")).strip().lower()
            if key in META_TAGS:
                add(_attr(attrs, "content"), META_TAGS[key])
        elif tag == "link" and "image_src" in _attr(attrs, "rel").lower().split():
            add(_attr(attrs, "href"), "link")
        elif tag == "video":  # its poster, then the clip itself (read as a video file is: its middle frame)
            add(_attr(attrs, "poster") or None, "video")
            add(_video_choice(node), "video")
        elif tag == "input" and _attr(attrs, "type").strip().lower() == "image":
            add(_attr(attrs, "src"), "input")
        elif tag == "object" and _attr(attrs, "data"):
            add(_attr(attrs, "data"), "object")
        elif tag in ("embed", "iframe", "frame") and _attr(attrs, "src"):
            add(_attr(attrs, "src"), tag)
        elif tag == "image":  # an <image> inside inline SVG
            add(_attr(attrs, "href") or _attr(attrs, "xlink:href"), "svg")
        elif tag == "a" and node.css_first("img, picture, video") is None:  # a listing's files (a thumbnail's: at
            url, guess = _linked_file(node, base, charset, folder, dicom_page, said)  # its img)
            data = () if url or not data_links[0] else _paired_data(_resolve(attrs.get("href"), base, charset),
                                                                      data_links)
            url = url or (_resolve(attrs.get("href"), base, charset) if data else None)
            if url:
                had = len(found)
                add(url, "a", " ".join((node.text(deep=True) or "").split())[:200], guess=guess)
                if data and len(found) > had:
                    found[-1].beside = data
        elif tag == "style":
            css = node.text(deep=True) or ""
            if "@import" in css.lower() and media_matches(_attr(attrs, "media")):  # external stylesheets too
                for url in sheets.imports(sheets.strip_comments(css), media_matches):
                    sheet(url)
            css_urls(_CSS_NOT_IMAGES.sub(" ", css), add)
        elif tag == "script" and _runs(_attr(attrs, "type")):
            found.scripts += 1
        elif tag == "link" and _applies(attrs):
            sheet(_attr(attrs, "href"))
        if _attr(attrs, "background"):  # <body background=…>, old tables
            add(_attr(attrs, "background"), "background")
        for name in LAZY_BACKGROUND:
            text = _attr(attrs, name).strip()
            if "url(" in text.lower():
                css_urls(text, add)
            elif "/" in text or "." in text:  # a URL, not a colour or "none"
                add(text, "style")
        style = attrs.get("style")
        if style and ("url(" in style.lower() or "image-set(" in style.lower()):
            css_urls(style, add)
        if tag == "img":  # after the thumbnail: the full image its link leads to
            full, guess = _linked_file(_link_around(node), base, charset, folder, dicom_page, said)
            if full:
                add(full, "a", _attr(attrs, "alt"), guess=guess)
                if len(found) > first and found[first].tag in ("img", "picture", "noscript"):
                    found[first].full = full  # the thumbnail: a note if that image is read
    found.tree = tree if found.sheets else None
    return found


def _applies(attrs: dict) -> bool:
    """Whether a <link> is a stylesheet a browser applies to a screen: not an alternate one, not disabled, not
    for print."""
    rel = _attr(attrs, "rel").lower().split()
    return ("stylesheet" in rel and "alternate" not in rel and "disabled" not in attrs
            and bool(_attr(attrs, "href").strip()) and media_matches(_attr(attrs, "media")))


def _runs(kind: str) -> bool:
    """Whether a <script> of this type runs (JavaScript, a module), not data (JSON-LD, a template)."""
    kind = kind.strip().lower()
    return not kind or kind == "module" or "javascript" in kind or "ecmascript" in kind


LINK_DEPTH = 16  # levels looked up for the link around an image: a gallery's markup, not a whole deep page


def _image_file(href: str | None, base: str, charset: str) -> str | None:
    """The URL a link leads to when its name is an image file's (a folder listing's `scan1.dcm`, a "full size"
    link, a thumbnail's full image; `LINK_NAMES`, in any case), else None."""
    url = _resolve(href, base, charset)
    return url if url and urlsplit(url).path.lower().endswith(LINK_NAMES) else None


def _linked_file(link, base: str, charset: str, folder: str | None,
                 dicom_page: bool = False, said: dict[int, bool] | None = None) -> tuple[str | None, bool]:
    """(URL, guess) of the file an <a> leads to: guess False when its name is an image file's, True when only a
    hint says it is a file (`_file_hint`), or a DICOM file (`_dicom_hint`); (None, False) for other links."""
    href = link.attributes.get("href") if link is not None else None
    url = _image_file(href, base, charset)
    if url:
        return url, False
    url = _resolve(href, base, charset)
    if url and url[:5].lower() != "data:" and (_file_hint(link, url, folder)
                                               or _dicom_hint(link, url, folder, dicom_page, said)):
        return url, True
    return None, False


def _data_links(tree: LexborHTMLParser, base: str, charset: str) -> tuple[set[str], dict[str, tuple[str, ...]]]:
    """The page's links to a detached header's data file (`DATA_NAMES`), as `_same` writes them: their stems (no
    query, no extension) and, by folder, the links in it (one tuple a folder, shared by its headers: a page of
    thousands of pairs costs no more than its links)."""
    urls = set()
    page_named = urlsplit(base).path.lower().endswith(DATA_NAMES)  # an empty href leads to the page itself
    for link in tree.css("a[href]"):
        href = link.attributes.get("href") or ""
        if not page_named and "raw" not in _URL_NOISE.sub("", href).lower():
            continue  # it cannot name a data file: not resolved (most of a page's links; urljoin is slow)
        url = _resolve(href, base, charset)
        if url and urlsplit(url).path.lower().endswith(DATA_NAMES):
            urls.add(_same(url))
    folders: dict[str, list[str]] = {}
    for u in sorted(urls):
        folders.setdefault(u.rpartition("/")[0] + "/", []).append(u)
    return {u.partition("?")[0].rpartition(".")[0] for u in urls}, {k: tuple(v) for k, v in folders.items()}


def _paired_data(url: str | None, data_links: tuple[set[str], dict[str, tuple[str, ...]]]) -> tuple[str, ...]:
    """For a link to a detached header (`HEADER_NAMES`: `x.mhd`) when the page links its data file too (`x.raw`
    or `x.zraw` beside it): the data files the page links in its folder (the header may name any of them);
    else ()."""
    path = urlsplit(url).path if url else ""
    if not path.lower().endswith(HEADER_NAMES):
        return ()
    stem = _same(url).partition("?")[0].rpartition(".")[0]
    stems, folders = data_links
    return folders.get(stem.rpartition("/")[0] + "/", ()) if stem in stems else ()


def _dicom_hint(link, url: str, folder: str | None, dicom_page: bool, said: dict[int, bool] | None = None) -> bool:
    """Whether a link named as a DICOM file by a name other files use too (`DICOM_NAMES`: Siemens's `.ima`,
    `.dic`) leads to one: the page's title or heading, the link's text or title, or the words of the element
    around it say "DICOM"; or it is a file of the folder a listing shows, or has a `download` attribute, or is a
    download endpoint (`/download/scan.ima`)."""
    parts = urlsplit(url)
    if not parts.path.lower().endswith(DICOM_NAMES):
        return False
    if (dicom_page or "download" in link.attributes
            or (folder and _same(url).partition("?")[0].rpartition("/")[0] + "/" == folder)
            or _FILE_WORDS.search(unquote(parts.path).lower()) or _FILE_WORDS.search(parts.query.lower())):
        return True
    around = link.parent
    if around is not None and said is not None:  # one element around thousands of links: its words read once
        if around.mem_id not in said:
            said[around.mem_id] = _says_dicom(around)
        near = said[around.mem_id]
    else:
        near = _says_dicom(around)
    return near or _says_dicom(link) or _DICOM_WORD.search(_attr(link.attributes, "title")) is not None


def _says_dicom(*nodes) -> bool:
    """Whether the text of any of these elements (None for none) names DICOM (its first NEARBY characters)."""
    return any(node is not None and node.tag not in ("body", "html")
               and _DICOM_WORD.search(_text_start(node)) is not None for node in nodes)


def _text_start(node, chars: int = NEARBY) -> str:
    """The first `chars` characters of the element's text (`text(deep=True)`'s), from at most `chars` of its
    nodes: not the whole text of an element around a whole page."""
    out, have = [], 0
    for n, part in enumerate(node.traverse(include_text=True)):
        if have >= chars or n > chars:
            break
        if part.tag == "-text":
            text = part.text_content or ""
            out.append(text)
            have += len(text)
    return "".join(out)[:chars]


def _file_hint(link, url: str, folder: str | None) -> bool:
    """Whether a link whose name is no image file's says it leads to a file: a `download` attribute, a file of the
    folder a listing shows (`IM000003`), a download endpoint (`attachment.php?id=3`, `/files/12/download`,
    `get?dl=1`). Never a folder, nor a name of another type (`report.pdf`, `data.zip`): only no type (a DICOM
    UID's numbers are none) or, but in a listing, a server's program (`.php`)."""
    parts = urlsplit(url)
    name = parts.path.rpartition("/")[2]
    kind = name.rpartition(".")[2].lower() if "." in name else ""
    untyped = not kind or kind.isdigit()
    if not name or not (untyped or kind in _SCRIPTS):
        return False
    if "download" in link.attributes:
        return True
    if folder and untyped and not parts.query and _same(url).rpartition("/")[0] + "/" == folder:
        return True
    query = parts.query.lower()
    return bool(_FILE_WORDS.search(unquote(parts.path).lower()) or _FILE_WORDS.search(query)
                or _FILE_KEY.search(query))


def _folder_listing(tree: LexborHTMLParser, page_url: str) -> str | None:
    """The page's folder (as `_same` writes it) when the page is a web server's listing of a folder (its title or
    heading "Index of /…", "Directory listing for /…"; IIS's first link "[To Parent Directory]"), else None."""
    heads = [tree.css_first(selector) for selector in ("title", "h1")]
    link = tree.css_first("a")
    if not (any(h is not None and _LISTING_TITLE.match(h.text() or "") for h in heads)
            or (link is not None and (link.text() or "").strip().lower() == "[to parent directory]")):
        return None
    return _same(page_url.partition("?")[0].rpartition("/")[0] + "/")


def _link_around(node, tag: str = "a", depth: int = LINK_DEPTH):
    """The nearest <a> (or other `tag`) around node, at most `depth` levels up, or None."""
    parent = node.parent
    for _ in range(depth):
        if parent is None or parent.tag in ("body", "html"):
            return None
        if parent.tag == tag:
            return parent
        parent = parent.parent
    return None


def _img_choice(attrs: dict) -> str | None:
    """Lazy-load attributes first (the plain ones are then placeholders), then srcset, then src."""
    for name in LAZY_SRCSET:
        best = largest(_attr(attrs, name))
        if best:
            return best
    for name in LAZY_SRC:
        if _attr(attrs, name).strip():
            return _attr(attrs, name)
    return largest(_attr(attrs, "srcset")) or _attr(attrs, "src")


MAX_ALTERNATIVES = 100  # URLs kept per element: a <picture> of thousands of sources costs no more


def _alternatives(attrs: dict, lazy: Iterable[str] = (), plain: Iterable[str] = ()) -> list[str]:
    """Every URL an <img> (with its <picture>'s sources: `lazy`, `plain`) may show: src and each srcset
    candidate, or, when any lazy-load attribute is there, only the lazy ones (src and srcset then hold a
    placeholder, which many elements share)."""
    own_lazy, own_plain = _offered(attrs)
    return ((own_lazy + list(lazy)) or (own_plain + list(plain)))[:MAX_ALTERNATIVES]


def _placeholders(attrs: dict, lazy: Iterable[str] = (), plain: Iterable[str] = ()) -> list[str]:
    """What an element with lazy-load URLs shows until a script swaps them in: its (and its <picture>'s) src and
    srcset; none without lazy ones."""
    own_lazy, own_plain = _offered(attrs)
    return (own_plain + list(plain))[:MAX_ALTERNATIVES] if own_lazy or lazy else []


def _source_urls(picture) -> tuple[list[str], list[str]]:
    """The URLs a <picture>'s raster <source>s offer: (lazy-load ones, plain ones), at most MAX_ALTERNATIVES."""
    lazy: list[str] = []
    plain: list[str] = []
    for source in _children(picture):
        if len(lazy) >= MAX_ALTERNATIVES and len(plain) >= MAX_ALTERNATIVES:
            break
        if source.tag == "source" and "svg" not in _attr(source.attributes, "type").lower():
            more_lazy, more_plain = _offered(source.attributes)
            lazy += more_lazy[:MAX_ALTERNATIVES - len(lazy)]
            plain += more_plain[:MAX_ALTERNATIVES - len(plain)]
    return lazy, plain


def _offered(attrs: dict) -> tuple[list[str], list[str]]:
    """An element's lazy-load URLs (data-srcset entries, data-src and kin) and its plain ones (srcset, src)."""
    lazy = [url for name in LAZY_SRCSET for url, _, _ in parse_srcset(_attr(attrs, name))]
    lazy += [_attr(attrs, name) for name in LAZY_SRC if _attr(attrs, name).strip()]
    plain = [url for url, _, _ in parse_srcset(_attr(attrs, "srcset"))] + [_attr(attrs, "src")]
    return lazy, [url for url in plain if url]


def _video_choice(video) -> str | None:
    """The clip a <video> plays: its src, else its first <source> of a video type (or none given) whose media
    holds; not a streaming playlist (HLS .m3u8, DASH .mpd), which is no file to read."""
    chosen = _attr(video.attributes, "src").strip() or None
    for source in _children(video) if chosen is None else ():
        attrs = source.attributes
        kind = _attr(attrs, "type").strip().lower()
        if (source.tag == "source" and _attr(attrs, "src").strip() and media_matches(_attr(attrs, "media"))
                and (not kind or kind.startswith("video/")) and not _STREAMING.search(kind)):
            chosen = _attr(attrs, "src").strip()
            break
    if chosen is None or _STREAMING.search(urlsplit(chosen).path):
        return None
    return chosen


_STREAMING = re.compile(r"\.(m3u8|mpd)$|mpegurl|dash\+xml", re.I)


def _source_choice(picture) -> str | None:
    """The first of a <picture>'s own <source> children a desktop browser would use: SVG sources and those
    whose `media` does not match the VIEWPORT (a phone's crop) are passed over."""
    for source in _children(picture):
        if source.tag != "source":
            continue
        attrs = source.attributes
        if "svg" in _attr(attrs, "type").lower() or not media_matches(_attr(attrs, "media")):
            continue
        best = largest(_attr(attrs, "data-srcset")) or largest(_attr(attrs, "srcset"))
        if best:
            return best
    return None


def _children(node):
    child = node.child
    while child is not None:
        yield child
        child = child.next


def _attr(attrs: dict, name: str) -> str:
    return attrs.get(name) or ""


def _resolve(raw: str | None, base: str, charset: str = "utf-8") -> str | None:
    raw = _URL_NOISE.sub("", (raw or "").strip())  # browsers drop tabs and newlines inside URLs
    if not raw or raw.startswith("#"):
        return None
    if raw[:5].lower() == "data:":
        return raw
    raw = raw.replace("\\", "/")  # in http(s) URLs browsers read a backslash as a slash
    try:
        url = urljoin(base, raw).partition("#")[0]
    except ValueError:
        return None
    return query_in(url, charset) if url[:8].lower().startswith(("http://", "https://")) else None


# --- downloading and decoding -----------------------------------------------------------------


def fetch_images(origin: str, page_url: str, found: list[Candidate], ctx: Context,
                 fetcher: net.Fetcher, frames: int = MAX_FRAMES, seen: Seen | None = None,
                 label: str = "") -> Iterator[Item]:
    """Download the candidates concurrently (bounded) and yield their items in page order; the first `frames`
    embedded pages (iframes, objects) are read for their images too. An image the page (or the page embedding
    this one: `seen`, `label` the frame's "iframe #2, ") already gave is a note naming the first."""
    if not found and not getattr(found, "sheets", None):
        yield from _no_images(origin, found)
        return
    limits = ctx.limits
    cap = max(0, limits.max_images_per_input)
    extra = max(0, len(found) - cap)
    page, found = found, list(found[:cap])  # the stylesheets' images are added to this copy
    not_read = ("its images are among those the browser loaded" if frames == 0 else
                f"only the first {frames} embedded pages of a page are read")
    workers = max(1, limits.max_concurrency)
    seen = Seen() if seen is None else seen
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="medimg-web")
    queue: deque[tuple[int, Candidate]] = deque()
    todo = iter(enumerate(found, 1))
    at = places(found)
    # the page's stylesheets, fetched first in the same pool; their images come after the page's own
    styles = Stylesheets(page, pool, fetcher, limits) if getattr(page, "sheets", None) else None
    pending = styles
    started: dict[int, Future] = {}  # downloads under way, by index (a thumbnail's full image: with the thumbnail)
    ahead: dict[int, Iterator[Item]] = {}  # items of a full image read before its turn, for its thumbnail
    # thumbnails whose full image comes within reach on the page: fetched only once that image is seen to give none
    # (a 404, a page), else they are notes and never downloaded
    waiting: set[int] = set()
    lock = threading.Lock()  # a waiting thumbnail is started from the thread its full image's download ended in

    def fetch(index: int, cand: Candidate) -> None:
        if seen.written(cand):  # read already (the page's own, in a frame): not fetched again
            started[index] = Future()
            started[index].set_result(None)
        else:
            started[index] = pool.submit(_download, cand, fetcher, limits.max_download_bytes)

    def release(index: int) -> None:
        """Start a waiting thumbnail's download, once."""
        with lock:
            if index in waiting:
                waiting.discard(index)
                fetch(index, found[index - 1])

    def after_full(index: int, future: Future) -> None:
        """Start a waiting thumbnail as soon as its full image's download brings no image's bytes."""
        got = None if future.cancelled() else future.result()
        if isinstance(got, str) or (isinstance(got, Blob) and classify(got) != "blob"):
            try:
                release(index)
            except RuntimeError:  # the page was given up: its pool is shut
                pass

    def start(index: int, cand: Candidate) -> None:
        if index in started or index in waiting:
            return
        j, name = at.get(_same(cand.full), (0, "")) if cand.full else (0, "")
        if not j or j == index or j > index + READ_AHEAD:  # no full image within reach: read as it is
            fetch(index, cand)
            return
        waiting.add(index)
        if j > index:
            start(j, found[j - 1])
        if j in started:
            started[j].add_done_callback(lambda future, i=index: after_full(i, future))
        elif j not in waiting and f"{label}{name}" not in seen.images:  # its turn passed without an image
            release(index)

    def fill() -> None:
        nonlocal todo, pending, extra
        if pending is not None:
            pending.poll()  # a sheet that came: its @imports are fetched now
        while len(queue) < 2 * workers:
            nxt = next(todo, None)
            if nxt is None:
                if pending is None or (queue and not pending.done()):  # waited for only when nothing else is
                    return
                more = pending.candidates({_same(c.url) for c in found}, ctx.cancel)
                room = max(0, cap - len(found))
                extra += max(0, len(more) - room)
                todo = iter(enumerate(more[:room], len(found) + 1))
                found.extend(more[:room])
                pending = None
                continue
            start(*nxt)
            queue.append(nxt)

    def full_image(j: int) -> Iterator[Item]:
        release(j)  # a thumbnail itself: read in full here
        return _emit(origin, page_url, j, found[j - 1], started[j].result(), ctx, True, seen, label)

    try:
        fill()
        while queue:
            index, cand = queue.popleft()
            fill()
            if index in ahead:
                started.pop(index)
                yield from ahead.pop(index)
                continue
            note = thumbnail(index, cand, at, seen, label, ahead, full_image)
            if note is not None:
                with lock:
                    waiting.discard(index)
                started.pop(index, None)
                yield from _emit(origin, page_url, index, cand, note, ctx, True, seen, label)
                continue
            release(index)  # a thumbnail whose full image gave none after all (a decoration, damaged bytes)
            got = started.pop(index).result()
            follow = True
            if cand.tag in EMBEDDING and isinstance(got, Blob) and classify(got) == "html":
                follow = not_read if frames <= 0 else True
                frames -= 1
            yield from _emit(origin, page_url, index, cand, got, ctx, follow, seen, label)
        if not found:
            yield from _no_images(origin, page)
        if extra:
            yield ItemError(origin, "", f"{extra} more images on the page were not fetched "
                                        f"(max_images_per_input = {cap})", skipped=True)
        yield from guesses_note(origin, len(getattr(page, "passed", ())))
        for note in styles.notes() if styles is not None else ():
            yield ItemError(origin, "", note, skipped=True)
    finally:
        fetcher.close()
        pool.shutdown(wait=False, cancel_futures=True)


def guesses_note(origin: str, more: int) -> Iterator[Item]:
    """A note for the links past MAX_GUESSES that may have led to files (`Found.passed`), when there are."""
    if more:
        yield ItemError(origin, "", f"{more} more link{'s' * (more != 1)} that may lead to files (a download, a "
                                    f"listing's file without a type) not fetched: at most {MAX_GUESSES} a page",
                        skipped=True)


def _no_images(origin: str, found: list[Candidate]) -> Iterator[Item]:
    """A note for a page without images, so it does not vanish from the results."""
    runs = " (the page runs scripts: --render may find images they add)" if getattr(found, "scripts", 0) else ""
    yield ItemError(origin, "", "no images found on the page" + runs, skipped=True)


ACCEPT_CSS = "text/css,*/*;q=0.1"


class Stylesheets:
    """A page's external stylesheets, fetched in its download pool (at most MAX_SHEETS, @imports one level deep,
    SHEET_BYTES each, through the page's Fetcher: its limits and address guard) and read for the images of the
    rules whose selectors match an element of the page."""

    def __init__(self, page: Found, pool: ThreadPoolExecutor, fetcher: net.Fetcher, limits) -> None:
        self.page, self.pool, self.fetcher = page, pool, fetcher
        self.cap = min(sheets.SHEET_BYTES, limits.max_download_bytes)
        self.entries: list[tuple[str, bool, Future]] = []  # (url, imported by another sheet, its reading)
        self.over = self.deep = self.cut = 0  # sheets past MAX_SHEETS, imports of imports, rules not matched
        self.failed: list[str] = []
        self._expanded = 0  # the entries whose imports were looked at, in order (so the cap is met the same way)
        for url in page.sheets:
            self._want(url, False, len(self.entries))

    def _want(self, url: str, imported: bool, at: int) -> bool:
        if any(url == known for known, _, _ in self.entries):
            return False
        if len(self.entries) >= sheets.MAX_SHEETS:
            self.over += 1
            return False
        future = self.pool.submit(_read_sheet, url, self.fetcher, self.cap, self.page.charset)
        self.entries.insert(at, (url, imported, future))
        return True

    def poll(self, wait: bool = False) -> None:
        """Look at the sheets that came, in order, and fetch what they import, placed before them (as the cascade
        reads them); with `wait`, until every sheet has come."""
        while self._expanded < len(self.entries):
            _, imported, future = self.entries[self._expanded]
            if not wait and not future.done():
                return
            got = future.result() if not future.cancelled() else None
            for nested in got.imports if isinstance(got, sheets.Sheet) and not imported else ():
                self._expanded += self._want(nested, True, self._expanded)  # lands before its sheet, which moves on
            self._expanded += 1

    def done(self) -> bool:
        self.poll()
        return all(future.done() for _, _, future in self.entries)

    def candidates(self, known: set[str], cancel=None) -> list[Candidate]:
        """The images of the rules whose selectors match an element of the page (`known`: URLs it has already),
        in the sheets' order; a rule the matcher's caps leave out, or one left when the run is given up, is counted."""
        self.poll(wait=True)
        matcher = sheets.Matcher(self.page.tree, self.page.classes, self.page.ids)
        out = []
        for url, imported, future in self.entries:
            got = future.result() if not future.cancelled() else f"not read: {url}: the page was given up"
            if isinstance(got, str):
                self.failed.append(got)
                continue
            self.deep += len(got.imports) if imported else 0
            for prelude, urls in got.rules:
                new = [u for u in urls if _same(u) not in known]
                if not new:
                    continue
                hit = None if cancel is not None and cancel.is_set() else matcher.matches(prelude)
                if hit is None:  # past the matcher's caps, or the run was given up
                    self.cut += 1
                elif hit:
                    for u in new:
                        if _same(u) not in known:
                            known.add(_same(u))
                            out.append(Candidate(u, "css"))
        return out

    def notes(self) -> list[str]:
        """Why sheets were not read, and rules not matched; none when all were."""
        reasons = self.failed + ([f"{self.over} over the cap of {sheets.MAX_SHEETS} a page"] if self.over else [])
        reasons += [f"{self.deep} imported by an imported sheet"] if self.deep else []
        count = len(self.failed) + self.over + self.deep
        out = []
        if count:
            out.append(f"{count} external stylesheet{'s' if count > 1 else ''} not read ({'; '.join(reasons)}): a "
                       "background image set there is found only with --render")
        if self.cut:
            out.append(f"{self.cut} stylesheet rules that name an image were not matched against the page (at most "
                       f"{sheets.MAX_RULES} are, within {sheets.MATCH_SECONDS:g} s): a background image they set is "
                       "found only with --render")
        return out


def _read_sheet(url: str, fetcher: net.Fetcher, cap: int, charset: str) -> sheets.Sheet | str:
    """One stylesheet's rules that name an image and its @imports, their URLs resolved against where it came from
    (not the page); or why it was not read (never raises)."""
    try:
        if url[:5].lower() == "data:":
            data, ctype = decode_data_uri(url, cap)
            final, header = url, ctype
        else:
            got = fetcher.fetch(url, accept=ACCEPT_CSS, max_bytes=cap)
            data, ctype, final = got.data, got.content_type, got.url
            header = next((v for k, v in got.headers.items() if k.lower() == "content-type"), None)
        if ctype not in (None, "text/css"):  # an error page, say: browsers apply only text/css
            return f"not a stylesheet: {short_url(url)} is {ctype}"
        sheet = sheets.read_sheet(data.decode(_sheet_charset(data, header, charset), errors="replace"),
                                  media_matches)
    except (net.FetchError, ValueError) as exc:
        return str(exc)
    except Exception as exc:  # a bug or an odd sheet costs this sheet only
        return f"could not read {short_url(url)}: {type(exc).__name__}: {exc}"
    resolved = [(prelude, [u for u in (_resolve(raw, final) for raw in urls) if u]) for prelude, urls in sheet.rules]
    sheet.rules = [(prelude, urls) for prelude, urls in resolved if urls]
    sheet.imports = [u for u in (_resolve(raw, final) for raw in sheet.imports) if u]
    return sheet


def _sheet_charset(data: bytes, content_type: str | None, fallback: str) -> str:
    """The encoding a stylesheet is read in: a byte-order mark, the HTTP charset, its `@charset`, else the
    page's."""
    for bom, charset in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            return charset
    told = known_codec(http_charset(content_type))
    if told:
        return told
    m = re.match(rb'@charset "([^"]*)";', data)
    at_rule = known_codec(m.group(1).decode("ascii", "replace")) if m else None
    if at_rule:  # a UTF-16 label written in ASCII bytes is a mistake: CSS reads the sheet as UTF-8 then
        return "utf-8" if codecs.lookup(at_rule).name.startswith("utf-16") else at_rule
    return fallback


def places(found: list[Candidate]) -> dict[str, tuple[int, str]]:
    """Each candidate's index and name ("a #20") by its URL, for finding a thumbnail's full image."""
    at: dict[str, tuple[int, str]] = {}
    for index, cand in enumerate(found, 1):
        if cand.tag not in EMBEDDING:
            at.setdefault(_same(cand.url), (index, f"{cand.tag} #{index}"))
    return at


READ_AHEAD = 8  # a thumbnail's full image is read ahead of its turn only this many places later


def thumbnail(index: int, cand: Candidate, at: dict[str, tuple[int, str]], seen: Seen, label: str,
              ahead: dict[int, Iterator[Item]], full_image: Callable[[int], Iterator[Item]]) -> Note | None:
    """A note for a thumbnail whose link led to an image that was read (the full picture is the one reported);
    None keeps the thumbnail (the link led to a page, a 404, a decoration). A full image later on the page is
    read now, up to its first image, by `full_image(j)`: its items wait in `ahead` for their turn."""
    j, name = at.get(_same(cand.full), (0, "")) if cand.full else (0, "")
    if not j or j == index or j > index + READ_AHEAD:  # far later: kept, not held in memory until its turn
        return None
    if j > index and j not in ahead:
        items = full_image(j)
        pulled: list[Item] = []
        for item in items:
            pulled.append(item)
            if isinstance(item, ImageItem):
                break
        ahead[j] = chain(pulled, items)
    return Note(f"thumbnail of {label}{name}") if f"{label}{name}" in seen.images else None


# _download and _emit (and places, thumbnail, Seen) are also used by html_file.py (saved pages on disk): keep their
# signatures.
def _download(cand: Candidate, fetcher: net.Fetcher, cap: int) -> Blob | str:
    """The candidate's bytes as a Blob, or a reason why not (never raises)."""
    try:
        return _get(cand, fetcher, cap)
    except Exception as exc:  # a bug or an odd URL costs this image only
        return f"could not fetch: {type(exc).__name__}: {exc}"


def _get(cand: Candidate, fetcher: net.Fetcher, cap: int) -> Blob | str:
    if cand.data is not None:
        return Blob(origin=cand.url, data=cand.data, name=_name(cand.url), content_type=cand.content_type)
    if cand.url[:5].lower() == "data:":
        try:
            data, ctype = decode_data_uri(cand.url, cap)
        except ValueError as exc:
            return str(exc)
        return Blob(origin=short_url(cand.url), data=data, content_type=ctype)
    if urlsplit(cand.url).path.lower().endswith(".svg"):
        return Blob(origin=cand.url, data=b"", name=_name(cand.url), content_type="image/svg+xml")
    refuse = functools.partial(_refuse_by_headers, _name(cand.url)) if cand.guess else None
    peek = functools.partial(_refuse_by_bytes, cand.url) if cand.guess else None
    try:
        got = fetcher.fetch(cand.url, accept=ACCEPT_IMAGE, refuse=refuse, peek=peek, peek_at=PEEK_BYTES)
    except net.FetchError as exc:
        return str(exc)
    except _NoPicture as exc:
        return Note(str(exc))
    # the URL it came from in the end: an embedded page's images resolve against it; the name the server gives the
    # file (`attachment.php?id=3` sends `scan.svs`), else the URL's
    beside = functools.partial(_data_file, cand.beside, got.url, fetcher, cap) if cand.beside else None
    return Blob(origin=got.url, data=got.data, name=_disposition_name(got.headers) or _name(got.url),
                content_type=got.content_type, sibling=beside)


def _data_file(linked: tuple[str, ...], header_url: str, fetcher: net.Fetcher, cap: int, name: str) -> bytes:
    """`Blob.sibling` of a header read from a page's link: the data file it names, fetched when the page links it
    beside the header (`Candidate.beside`); ValueError otherwise."""
    url = urljoin(header_url, quote(name))
    if _same(url) not in linked:
        raise ValueError("the page does not link it beside the header")
    try:
        return fetcher.fetch(url, accept="*/*", max_bytes=cap).data
    except net.FetchError as exc:
        raise ValueError(str(exc)) from None


class _NoPicture(Exception):
    """A link taken on a hint whose headers say it leads to no picture: given up before its body is read."""


# types of files medimg reads when given, but not from a page's link (`_not_an_image`); Content-Type → kind
_FILE_TYPES = {"application/pdf": "pdf", "application/zip": "zip", "application/x-zip-compressed": "zip",
               "application/x-tar": "tar", "application/x-7z-compressed": "7z", "message/rfc822": "e-mail",
               "application/vnd.ms-outlook": "Outlook"}
_READ_WHEN_GIVEN = {*_FILE_TYPES.values(), "video", "eml", "msg", "mp4", "mov", "webm", "mkv", "avi"}


def _refuse_by_headers(url_name: str, headers) -> None:
    """For a link taken on a hint (`Candidate.guess`): raise _NoPicture when the headers say the file is no
    picture — a PDF, an archive or message, a video or sound, or a name of another type (`data.zip`, `notes.txt`)
    from Content-Disposition — so a 50 MB zip behind `download?id=3` is not downloaded to be passed over."""
    ctype = (headers.get("content-type") or "").split(";")[0].strip().lower()
    name = _disposition_name(headers)
    suffix = name.rpartition(".")[2].lower() if "." in name else ""
    kind = _FILE_TYPES.get(ctype) or (ctype.partition("/")[0] if ctype.startswith(("video/", "audio/")) else "")
    if not kind and suffix and not suffix.isdigit() and not name.lower().endswith(LINK_NAMES + DICOM_NAMES):
        kind = suffix
    if kind:
        length = headers.get("content-length") or ""
        what = f"{name or url_name}: {ctype or 'unknown content'}" + (f", {length} bytes" if length.isdigit() else "")
        given = " (give its URL to read it)" if kind in _READ_WHEN_GIVEN else ""
        raise _NoPicture(f"a link to a {kind} file ({what}), not an image: not read{given}")


PEEK_BYTES = 64 * 1024  # a hinted link's first bytes, looked at as they come (as files.py sniffs a file on disk)


def _refuse_by_bytes(url: str, headers, head: bytes) -> None:
    """For a link taken on a hint: raise _NoPicture when its first PEEK_BYTES bytes are no image a source reads
    (a zip, a PDF, a video or text sent as application/octet-stream without a name), so the rest of a 50 MB
    download is not read only to be passed over."""
    ctype = (headers.get("content-type") or "").split(";")[0].strip().lower() or None
    got = Blob(origin=url, data=head, name=_disposition_name(headers) or _name(url), content_type=ctype)
    kind = classify(got)
    length = headers.get("content-length") or ""
    size = f"{int(length)} bytes" if length.isdigit() else f"not read past its first {len(head)} bytes"
    if kind in ("html", "svg"):
        what = "page" if kind == "html" else "SVG drawing"
        raise _NoPicture(f"a link to a {what}, not an image ({ctype or 'no content type'}, {size})")
    why = _not_an_image(got, kind, size)
    if why:
        raise _NoPicture(why)


def _disposition_name(headers: dict) -> str:
    """The file name a Content-Disposition header gives (`filename*=UTF-8''…` first), without folders; or ""."""
    value = next((v for k, v in headers.items() if k.lower() == "content-disposition"), "")
    m = re.search(r"filename\*\s*=\s*[\w-]*'[^']*'([^;\s]+)", value, re.I)
    name = unquote(m.group(1)) if m else ""
    if not name:
        m = re.search(r'filename\s*=\s*(?:"([^"]*)"|([^;\s]+))', value, re.I)
        name = (m.group(1) or m.group(2) or "") if m else ""
    return "".join(c for c in name if c.isprintable()).replace("\\", "/").rpartition("/")[2].strip()


class Note(str):
    """Why a candidate was not read, when that is no error (a skipped note)."""


def _emit(origin: str, page_url: str, index: int, cand: Candidate, got: Blob | str | None, ctx: Context,
          follow: bool | str = True, seen: Seen | None = None, label: str = "") -> Iterator[Item]:
    """One candidate's items. An embedded page is read for its images when `follow` is True; else `follow`
    says why not. With `seen` (the page's), an image read before on the page is a note naming the first
    (`got` is None when its URL was known to be read before it was fetched)."""
    shown = short_url(cand.url)
    locator = f"{cand.tag} #{index} {shown}"
    first = seen.written(cand) if seen is not None else None
    if first is not None:
        seen.images.add(f"{label}{cand.tag} #{index}")
        yield ItemError(origin, locator, first, skipped=True)
        return
    if got is None:  # never: a candidate is left unfetched only when `seen` knows its URL
        yield ItemError(origin, locator, "not fetched")
        return
    if isinstance(got, str):
        if cand.guess and not isinstance(got, Note):  # nothing said it was an image: a 404 there is no image lost
            got = Note(f"a link that may lead to a file, not read: {got}")
        yield ItemError(origin, locator, got, skipped=isinstance(got, Note))
        return
    kind = classify(got)
    if kind == "svg":
        yield ItemError(origin, locator, "SVG is not rasterised (vector drawing skipped)", skipped=True)
        return
    if kind == "html" and cand.tag in EMBEDDING:
        if follow is True:
            yield from _embedded(origin, locator, got, ctx, seen, f"{label}{cand.tag} #{index}, ")
        else:
            yield ItemError(origin, locator, f"an embedded page, not read: {follow}", skipped=True)
        return
    if kind != "blob" and cand.tag in ("object", "embed"):  # a plugin's content (Flash, a widget)
        yield ItemError(origin, locator, f"an embedded object that is not an image ({got.content_type or 'unknown'})",
                        skipped=True)
        return
    if kind == "html" and cand.tag == "a":  # a link named like an image that leads to a page (a wiki's File: page,
        # a forum's viewer): no image of the page is lost, so no error
        yield ItemError(origin, locator, f"a link to a page, not an image ({len(got.data)} bytes of HTML)",
                        skipped=True)
        return
    why = _not_an_image(got, kind) if cand.guess else None
    if why:
        yield ItemError(origin, locator, why, skipped=True)
        return
    if kind != "blob":
        yield ItemError(origin, locator, f"not an image: got {_what(got, kind)} ({len(got.data)} bytes)")
        return
    first = seen.fetched(cand, got) if seen is not None else None
    if first is not None:
        seen.images.add(f"{label}{cand.tag} #{index}")
        yield ItemError(origin, locator, first, skipped=True)
        return
    meta = {"url": shown, "alt": cand.alt, "tag": cand.tag, "page": page_url}
    floor = ctx.limits.min_side
    read = False
    for item in ctx.open_blob(got):
        where = f"{locator}, {item.locator}" if item.locator else locator
        if isinstance(item, ImageItem):
            if min(item.width, item.height) < floor:  # as in PDFs: a 120x18 wordmark, an 88x31 badge
                yield ItemError(origin, where, f"decoration: {item.width}x{item.height} is below min_side "
                                               f"{floor}", skipped=True)
                continue
            item.origin, item.locator = origin, where
            item.metadata = {**item.metadata, **meta}
            if not read and seen is not None:
                mark = picture_print(item)
                first = seen.resized(cand, mark)
                if first is not None:  # another size or encoding of a picture read before: not read further
                    seen.images.add(f"{label}{cand.tag} #{index}")
                    yield ItemError(origin, locator, first, skipped=True)
                    return
                seen.add(cand, got, f"{label}{cand.tag} #{index}", mark)
                read = True
            yield item
        else:
            yield ItemError(origin, where, item.error, item.skipped)


def _what(got: Blob, kind: str | None) -> str:
    """What a download that is no image holds, in words: an HTML page (an error page sent as image/png too), else
    its Content-Type."""
    if kind == "html":
        return "an HTML page"
    if got.data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n\x0c").lower().startswith(HTML_STARTS):
        return f"an HTML page sent as {got.content_type or 'no content type'}"
    return got.content_type or "unknown content"


def _not_an_image(got: Blob, kind: str | None, size: str = "") -> str | None:
    """Why a file a link led to on a hint (`Candidate.guess`) is not read, or None to read it: content that is no
    image (text, a document no source reads), or a PDF, video, archive or message: a file of its own, read when
    its URL is given, not a picture of the page (and a page's link to a PDF, video or archive by name is not
    followed). `size` tells the size when `got` holds only the first bytes."""
    what = f"{got.content_type or 'unknown content'}, {size or f'{len(got.data)} bytes'}"
    if kind != "blob":
        return f"a link to a file that is not an image ({what})"
    plugin = registry.find(got)
    if plugin is not None and (plugin.split is not None or plugin.name in ("pdf", "video")):
        named = f"{got.name}: " if got.name else ""
        return f"a link to a {plugin.name} file ({named}{what}), not an image: not read (give its URL to read it)"
    return None


def _embedded(origin: str, locator: str, page: Blob, ctx: Context, seen: Seen | None = None,
              label: str = "") -> Iterator[Item]:
    """The images of a page embedded in another (an iframe, an object): one level only (its own frames are
    not followed, so a page of frames cannot fan out), fetched as a page's are, under the same limits. An
    image the outer page gave already (`seen`) is a note; `label` names the frame in it ("iframe #2, ")."""
    if urlsplit(page.origin).scheme not in net.SCHEMES:
        yield ItemError(origin, locator, "an embedded page that is not on the web: not read", skipped=True)
        return
    try:
        # not its frames, nor its links that only may lead to files (`guess`): a page of frames does not fan out
        found = [c for c in extract(page.data, page.origin, page.content_type)
                 if c.tag not in EMBEDDING and not c.guess]
    except PageTooDeep as exc:
        yield ItemError(origin, locator, f"embedded {exc}")
        return
    except Exception as exc:  # one odd frame must not stop the page
        yield ItemError(origin, locator, f"could not parse the embedded page: {type(exc).__name__}: {exc}")
        return
    if not found:
        yield ItemError(origin, locator, "an embedded page without images", skipped=True)
        return
    found = found[:FRAME_IMAGES]
    for item in fetch_images(origin, page.origin, found, ctx, net.Fetcher(ctx.limits, ctx.cancel), frames=0,
                             seen=seen, label=label):
        item.locator = f"{locator}, {item.locator}" if item.locator else locator
        yield item


class Seen:
    """The images read so far on one page and the pages it embeds, so that one picture is one image: each
    one's URL as written, the URL it came from after redirects (a saved page's: the file), and a digest of its
    bytes, mapped to where it was first read ("img #3", "iframe #2, img #1"); and a 16×16 grey print of its
    first image, for the same picture at another size or in another encoding (`resized`). Only a candidate that
    gave an image is kept: a repeat of a 404, a decoration or an error is reported as the first was."""

    def __init__(self) -> None:
        self._first: dict[tuple[str, str], tuple[str, str]] = {}  # (kind, key) -> (label, how it was keyed)
        self.images: set[str] = set()  # the labels of candidates that gave an image, or a note naming one
        self._prints: list[tuple[str, str, Print]] = []  # (label, role, print) of each image read
        self.crop_pairs = 0  # pairs of pictures of different shapes compared crop by crop (at most CROP_PAIRS)

    def written(self, cand: Candidate) -> Note | None:
        """A note naming the first image with this candidate's URL (as written, or as an earlier one ended
        after redirects), or None. Known before fetching."""
        key = _url_key(cand.url)
        return self._note(cand, [("url", key, "written")]) if key is not None else None

    def fetched(self, cand: Candidate, blob: Blob) -> Note | None:
        """A note naming the first image that came from the same final URL or file, or has the same bytes."""
        return self._note(cand, self._keys(cand, blob))

    def add(self, cand: Candidate, blob: Blob, label: str, mark: Print | None = None) -> None:
        self.images.add(label)
        for kind, key, how in [("url", _url_key(cand.url), "written"), *self._keys(cand, blob)]:
            if key is not None:
                self._first.setdefault((kind, key), (label, how))
        if mark is not None:
            self._prints.append((label, _role(cand.tag), mark))

    def resized(self, cand: Candidate, mark: Print | None) -> Note | None:
        """A note naming an image read before whose picture this one is, at another size or in another
        encoding: their prints match (the closest if several do) and one of the two is a page's second
        reference to its picture (og:image, a link, a CSS background). Two <img>s, two links or two
        backgrounds are never one picture by their pixels: the slices of a stack look alike."""
        if mark is None:
            return None
        role = _role(cand.tag)
        cropped = self._crop_pairs(role, mark)
        best, closest = None, SAME_PICTURE
        for n, (label, other_role, other) in enumerate(self._prints):
            if role == other_role and role != "meta" or (n not in cropped and other.reshaped(mark)):
                continue
            found = other.likeness(mark)
            if found is not None and found[0] < closest:
                best, closest = (label, other, found[1]), found[0]
        if best is None:
            return None
        label, other, crop = best
        if crop.startswith("new "):  # this one is a crop of the picture read before
            why = f"a crop of it: {mark.width}x{mark.height}, its {crop[4:]} of {other.width}x{other.height}"
        elif crop:  # the one read before is a crop of this one's picture
            why = f"uncropped: {mark.width}x{mark.height}, of which {label} shows the {crop}"
        elif (other.width, other.height) != (mark.width, mark.height):
            why = f"another size: {mark.width}x{mark.height}, not {other.width}x{other.height}"
        elif mark.format != other.format:
            why = f"another encoding: {mark.format or 'unknown'}, not {other.format or 'unknown'}"
        else:  # saved again at the same size (another quality, other metadata)
            why = f"other bytes: {mark.format or 'unknown'} at the same size"
        return Note(f"same picture as {label} ({why})")

    def _crop_pairs(self, role: str, mark: Print) -> set[int]:
        """Which of the pictures read before, of another shape than `mark`'s, it is compared with crop by crop:
        the og:image and twitter:image ones and the CROPS_PER_PICTURE latest others, within the page's CROP_PAIRS
        (counted here)."""
        chosen: set[int] = set()
        others = 0
        metas = [n for n, (_, other_role, _) in enumerate(self._prints) if other_role == "meta"]
        latest = (n for n in range(len(self._prints) - 1, -1, -1) if self._prints[n][1] != "meta")
        for n in chain(metas, latest):
            if self.crop_pairs >= CROP_PAIRS:
                break
            other_role, other = self._prints[n][1:]
            if role == other_role and role != "meta" or not other.reshaped(mark):
                continue
            if other_role != "meta":
                if others >= CROPS_PER_PICTURE:
                    break
                others += 1
            chosen.add(n)
            self.crop_pairs += 1
        return chosen

    @staticmethod
    def _keys(cand: Candidate, blob: Blob) -> list[tuple[str, str | None, str]]:
        final = None if cand.url[:5].lower() == "data:" else _url_key(blob.origin)  # a data: origin is shortened
        return [("url", final, "final"), ("bytes", hashlib.sha256(blob.data).hexdigest(), "bytes")]

    def _note(self, cand: Candidate, keys: list[tuple[str, str | None, str]]) -> Note | None:
        for kind, key, how in keys:
            first = self._first.get((kind, key)) if key is not None else None
            if first is None:
                continue
            label, how_first = first
            if kind == "bytes":
                why = "the same bytes"
            else:
                web_url = cand.url[:8].lower().startswith(("http://", "https://"))
                why = ("the same URL" if web_url else "the same file") + (
                    " after redirects" if web_url and "final" in (how, how_first) else "")
            return Note(f"same image as {label} ({why})")
        return None


# A page's second reference to a picture it shows: an <img> and its og:image, its "Download figure" link or a
# background of the same picture may be two sizes or encodings of one picture (see `Seen.resized`).
_ROLES = {"og:image": "meta", "twitter:image": "meta", "link": "meta", "a": "link", "style": "css",
          "css": "css", "background": "css", "noscript": "fallback"}


def _role(tag: str) -> str:
    return _ROLES.get(tag, "element")


def _url_key(url: str) -> str | None:
    """An image's URL as compared for repeats: http(s) as the browser writes it; a file path as it is; a data:
    URI none (its bytes are compared)."""
    if url[:5].lower() == "data:":
        return None
    return _same(url) if url[:8].lower().startswith(("http://", "https://")) else url


def decode_data_uri(uri: str, cap: int) -> tuple[bytes, str]:
    """(bytes, media type) of a data: URI, base64 or percent-encoded; ValueError if bad or over `cap`."""
    header, comma, payload = uri[5:].partition(",")
    if not comma:
        raise ValueError("malformed data: URI (no comma)")
    params = [p.strip().lower() for p in header.split(";")]
    ctype = params[0] or "text/plain"
    if len(payload) > cap * 3 + 16:  # cheap check before decoding
        raise ValueError(f"data: URI too large ({len(payload)} characters, cap {cap} bytes)")
    try:
        if "base64" in params[1:]:
            text = re.sub(r"\s+", "", unquote(payload))
            data = base64.b64decode(text + "=" * (-len(text) % 4))
        else:
            data = unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"bad data: URI: {exc}") from None
    if len(data) > cap:
        raise ValueError(f"data: URI too large ({len(data)} bytes, cap {cap} bytes)")
    return data, ctype


def short_url(url: str) -> str:
    if url[:5].lower() == "data:":
        return f"{url.split(',', 1)[0]},… ({len(url)} characters)"
    return url


def _name(url: str) -> str:
    if url[:5].lower() == "data:":
        return ""
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])
