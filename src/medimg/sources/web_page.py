"""Finding the images a web page names: the page's HTML in, its image references out (`extract` returns a `Found`
list of `Candidate`s in page order, resolved against <base href>, with the stylesheets to read for its
backgrounds). Parsing only, no network: web_fetch.py fetches what this finds, web.py walks the page.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable, Iterable
from urllib.parse import unquote, urljoin, urlsplit

import httpx
from selectolax.lexbor import LexborHTMLParser

from . import css as sheets
from . import registry
from .charset import page_charset, query_in
from .css import css_urls
from .html_cost import PageTooDeep, nesting_problem
from .media import largest, media_matches, parse_srcset

# an <img>'s full-size picture, named beside its thumbnail (PubMed Central's `src-large`, Jetpack's and the block
# gallery's original): read instead of the thumbnail, as the image its link leads to is
FULL_SRC = ("src-large", "data-orig-file", "data-full-url")
LAZY_SRCSET = ("data-srcset", "data-lazy-srcset")
LAZY_SRC = ("data-src", "data-original", "data-lazy-src", "data-lazy", "data-original-src",
            "data-hi-res-src", "data-full-src", "data-large-src", "data-echo", "data-url")
META_TAGS = {"og:image": "og:image", "og:image:url": "og:image", "og:image:secure_url": "og:image",
             "twitter:image": "twitter:image", "twitter:image:src": "twitter:image"}
# schema.org's picture of a page's thing (an article's, a case's), in microdata; JSON-LD's is read by `_ld_images`
ITEMPROP_IMAGE = "image"
LD_IMAGES = 20  # image URLs read from a page's JSON-LD blocks (an article gives its picture in 1 to 3 crops)
LD_CHARS = 1_000_000  # a JSON-LD block longer is not parsed
LD_DEPTH = 32  # levels of a JSON-LD block looked into
_CSS_NOT_IMAGES = re.compile(r"@font-face\s*+\{[^}]*+\}?|@import[^;]*;?|(?<=[{;\s])(?:cursor|behavior)\s*:[^;}]*",
                             re.I)
LAZY_BACKGROUND = ("data-bg", "data-background", "data-background-image")  # lazysizes and kin
IMAGE_TAGS = ("img", "amp-img", "amp-anim")  # AMP's <img>s
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
    tag: str  # img, picture, og:image, twitter:image, itemprop, json-ld, link, style, video
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
    pixel: bool = False  # an <img> its markup sizes 1 x 1 or less: a tracking pixel, whose failure loses no picture


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
    refresh: str | None = None  # where its <meta http-equiv=refresh> sends a browser (another page), if anywhere
    refreshed = False  # a refresh was read (a browser takes the first that parses, even one to the page itself)

    @property
    def stylesheets(self) -> int:
        return len(self.sheets)


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


def extract(html: bytes | str, page_url: str, content_type: str | None = None,
            alternatives: bool = False, inner: bool = False, refresh: str | None = None) -> Found:
    """Image references in page order, resolved against <base href> and without duplicates; with `alternatives`
    (for comparing with a rendered page), each one's other URLs and placeholders too. An `<iframe srcdoc>`'s
    page is read in its place (`inner`: that page, whose own srcdoc frames are not read). `refresh` is the
    answer's HTTP `Refresh` header: it goes before a `<meta http-equiv=refresh>`, as the HTML standard has it
    (Chromium lets a later one with a delay as short win).
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
    if refresh is not None:
        found.refresh, found.refreshed = _refresh(refresh, page_url, charset, page_url)
    folder = _folder_listing(tree, page_url)  # a web server's listing: its files without a type's name are read too
    dicom_page = _says_dicom(tree.css_first("title"), tree.css_first("h1"))  # its `.ima` and `.dic` links too
    data_links = _data_links(tree, base, charset)  # `x.raw`: read with its header `x.mhd` when the page links both
    said: dict[int, bool] = {}  # whether the element around a `.ima` link says DICOM, by element
    seen: set[str] = set()
    found.passed = set()
    sources: dict[int, str | None] = {}  # each <picture>'s chosen <source>, worked out once
    offers: dict[int, tuple[list[str], list[str]]] = {}  # and the URLs its sources offer (lazy, plain)
    # the pictures schema.org data names (JSON-LD, microdata): after the page's elements, so that an <img> showing
    # one keeps its place, tag and alt
    named: list[tuple[str, str]] = []

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

    for node in _nodes(tree.root):
        tag, attrs = node.tag, node.attributes
        first = len(found)
        if attrs.get("class"):  # what a stylesheet's selector needs on the page
            found.classes.update(attrs["class"].lower().split())
        if attrs.get("id"):
            found.ids.add(attrs["id"].lower())
        if tag in IMAGE_TAGS:
            parent = node.parent
            if parent is not None and parent.tag == "picture":
                if parent.mem_id not in sources:
                    sources[parent.mem_id] = _source_choice(parent)
                add(sources[parent.mem_id] or _img_choice(attrs),  # a <noscript>'s: a lazy <img>'s fallback too
                    "noscript" if _link_around(parent, "noscript") else "picture", _attr(attrs, "alt"),
                    lambda a=attrs, p=parent: _alternatives(a, *picture_urls(p)),
                    lambda a=attrs, p=parent: _placeholders(a, *picture_urls(p)))
            else:  # a <noscript>'s: the fallback of a lazy <img> beside it, often of another size (`Seen.resized`)
                add(_img_choice(attrs), "noscript" if _link_around(node, "noscript") else "img", _attr(attrs, "alt"),
                    lambda a=attrs: _alternatives(a), lambda a=attrs: _placeholders(a))
                if len(found) > first and _pixel(attrs):
                    found[-1].pixel = True
        elif tag == "picture" and not any(c.tag == "img" for c in _children(node)):
            add(_source_choice(node), "picture", others=lambda p=node: _alternatives({}, *picture_urls(p)))
        elif tag == "meta":
            key = (_attr(attrs, "property") or _attr(attrs, "name")).strip().lower()
            if _attr(attrs, "http-equiv").strip().lower() == "refresh" and not found.refreshed:
                found.refresh, found.refreshed = _refresh(_attr(attrs, "content"), base, charset, page_url)
            elif key in META_TAGS:
                add(_attr(attrs, "content"), META_TAGS[key])
            elif _attr(attrs, "itemprop").strip() == ITEMPROP_IMAGE:
                named.append((_attr(attrs, "content"), "itemprop"))
        elif tag == "link" and "image_src" in _attr(attrs, "rel").lower().split():
            add(_attr(attrs, "href"), "link")
        elif tag == "link" and _attr(attrs, "itemprop").strip() == ITEMPROP_IMAGE:
            named.append((_attr(attrs, "href"), "itemprop"))
        elif tag == "script" and _attr(attrs, "type").strip().lower() == "application/ld+json":
            room = LD_IMAGES - sum(t == "json-ld" for _, t in named)
            named.extend((url, "json-ld") for url in _ld_images(node.text(deep=True) or "", room))
        elif tag == "iframe" and "srcdoc" in attrs and not inner:  # its own page, written in the attribute
            found.scripts += _add_inner(found, _attr(attrs, "srcdoc"), base, alternatives, seen)
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
        elif tag == "style" and media_matches(_attr(attrs, "media")):  # not a print one
            css = node.text(deep=True) or ""
            if "@import" in css.lower():  # external stylesheets too
                for url in sheets.imports(sheets.strip_comments(css), media_matches):
                    sheet(url)
            # as a browser shows them on a desktop screen: not in comments, nor in an @media block for a phone or
            # print, nor one a later declaration of the rule overrides
            css_urls(sheets.cascaded(_CSS_NOT_IMAGES.sub(" ", sheets.strip_comments(css)), media_matches), add)
        elif tag == "script" and _runs(_attr(attrs, "type")):
            found.scripts += 1
        elif tag == "link" and _applies(attrs):
            sheet(_attr(attrs, "href"))
        if _attr(attrs, "background"):  # <body background=…>, old tables
            add(_attr(attrs, "background"), "background")
        if _attr(attrs, "data-bgset").strip():  # lazysizes' bgset: `a.jpg 300w, b.jpg 1024w [media] | …`
            add(_bgset_choice(_attr(attrs, "data-bgset")), "style")
        for name in LAZY_BACKGROUND:
            text = _attr(attrs, name).strip()
            if "url(" in text.lower():
                css_urls(text, add)
            elif "/" in text or "." in text:  # a URL, not a colour or "none"
                add(text, "style")
        style = attrs.get("style")
        if style and ("url(" in style.lower() or "image-set(" in style.lower()):
            css_urls(sheets.cascaded(sheets.strip_comments(style)), add)
        if tag in IMAGE_TAGS:  # after the thumbnail: the full image its link leads to
            full, guess = _linked_file(_link_around(node), base, charset, folder, dicom_page, said)
            if full:
                add(full, "a", _attr(attrs, "alt"), guess=guess)
                if len(found) > first and found[first].tag in ("img", "picture", "noscript"):
                    found[first].full = full  # the thumbnail: a note if that image is read
    for raw, tag in named:
        add(raw, tag)
    found.tree = tree if found.sheets else None
    return found


# its delay (ASCII digits and dots) ends at a `;`, `,`, a space or the end: `5x; url=/a` and `1e3; url=/a` send
# nowhere, as in a browser (they were read as going to `x; url=/a`, a 404); spaces are ASCII ones only
_REFRESH = re.compile(r"""[\t\n\f\r ]*[0-9.]+(?:[\t\n\f\r ]*[;,]|[\t\n\f\r ]|\Z)[\t\n\f\r ]*"""
                      r"""(?:url[\t\n\f\r ]*=[\t\n\f\r ]*)?(?P<q>["']?)(?P<url>.*)""", re.I | re.S)


def _refresh(content: str, base: str, charset: str, page_url: str) -> tuple[str | None, bool]:
    """The page a refresh (`<meta>` or header) sends the browser to, and whether a browser takes it, so that later
    ones are not read (the HTML standard's shared declarative refresh steps): its content parses, and so does the
    URL it names, if any, which is no javascript: one. Such a first one was taken, and the page's next <meta>
    refresh, the one a browser follows, never read. It goes nowhere when it names the page itself or a data: URL
    (browsers refuse a page's going there: it was an error row 'only http and https URLs are fetched')."""
    url = _refresh_url(content)
    if url is None:  # a reload of the page itself, or no refresh at all
        return None, _REFRESH.match(content) is not None
    try:
        taken = urlsplit(urljoin(base, _URL_NOISE.sub("", url))).scheme.lower() != "javascript"
    except ValueError:  # `http://[::1`
        taken = False
    went = _resolve(url, base, charset)
    web = went is not None and went[:5].lower() != "data:"
    return (went if web and _same(went) != _same(page_url) else None), taken


def _refresh_url(content: str) -> str | None:
    """The URL a <meta http-equiv=refresh> content names (`0; url='/next.html'`, `5, /next`), as the HTML spec
    reads it; None when it names none (a page that reloads itself)."""
    m = _REFRESH.match(content)
    url = m.group("url") if m else ""
    if m and m.group("q") and m.group("q") in url:  # a quoted URL ends at its quote
        url = url[:url.index(m.group("q"))]
    return url.strip() or None


def _add_inner(found: Found, html: str, base: str, alternatives: bool, seen: set[str]) -> int:
    """Add the images of an `<iframe srcdoc>`'s page (resolved against the page's base, as a browser does) to
    `found`, in its place; the number of its scripts that run. Its stylesheets and embedded pages are not read
    (one level of frames, as for an iframe's `src`); one nested too deep is passed over."""
    try:
        page = extract(html, base, alternatives=alternatives, inner=True)
    except PageTooDeep:
        return 0
    for cand in page:
        if cand.tag in ("iframe", "frame", "object", "embed") or cand.url in seen:
            continue
        if cand.guess and found.guesses >= MAX_GUESSES:  # the page's cap holds for its frames' links too
            found.passed.add(cand.url)
            continue
        seen.add(cand.url)
        found.guesses += cand.guess
        found.append(cand)
    found.passed |= page.passed
    return page.scripts


# keys of a JSON-LD thing whose pictures are not its own: a logo, a thumbnail, and the people and organisations
# around it (an article's author's avatar, its publisher's logo)
_LD_NOT_THE_THING = frozenset(("logo", "thumbnail", "contentUrl", "url", "author", "creator", "contributor", "editor",
                               "publisher", "sourceOrganization", "provider", "brand", "copyrightHolder"))


def _ld_images(text: str, room: int) -> list[str]:
    """The image URLs a JSON-LD block names, in order, at most `room`: schema.org `image` (a URL, a list, an
    ImageObject's `contentUrl` or `url`) of any thing, and any other ImageObject's; not a `logo`, a `thumbnail` or
    those of its author, publisher and other people and organisations (`_LD_NOT_THE_THING`). A block that is no JSON, or longer than LD_CHARS, names none."""
    if room <= 0 or len(text) > LD_CHARS:
        return []
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return []
    urls: list[str] = []

    def walk(node, depth: int, picture: bool) -> None:
        if depth > LD_DEPTH or len(urls) >= room:
            return
        if isinstance(node, str):
            if picture:
                urls.append(node)
        elif isinstance(node, list):
            for value in node:
                walk(value, depth + 1, picture)
        elif isinstance(node, dict):
            kind = node.get("@type")
            if picture or kind == "ImageObject" or isinstance(kind, list) and "ImageObject" in kind:
                url = node.get("contentUrl") or node.get("url")
                if isinstance(url, str):
                    urls.append(url)
            for key, value in node.items():
                if key == "image":
                    walk(value, depth + 1, True)
                elif isinstance(value, (dict, list)) and key not in _LD_NOT_THE_THING:
                    walk(value, depth + 1, False)

    walk(data, 0, False)
    return [url.strip() for url in urls[:room] if url.strip()]


def _nodes(root) -> Iterable:
    """The page's elements in order, and those of each declarative shadow root (`<template shadowrootmode=open>`,
    or closed: a web component rendered on the server, which a browser shows) right where it stands. Other
    <template>s are inert: a browser loads none of their images."""
    walks = [root.traverse(include_text=False)] if root is not None else []
    while walks:
        node = next(walks[-1], None)
        if node is None:
            walks.pop()
            continue
        yield node
        if (node.tag == "template" and hasattr(node, "template_fragments")  # selectolax 1.0 and later
                and _attr(node.attributes, "shadowrootmode").strip().lower() in ("open", "closed")):
            walks += [fragment.traverse(include_text=False) for fragment in node.template_fragments()[:1]]


_SIZE = re.compile(r"(\d+(?:\.\d*)?)\s*(?:px)?", re.I)  # on the stripped value: one \s*, no quadratic backtracking


def _pixel(attrs: dict) -> bool:
    """Whether an <img>'s width and height attributes both say at most 1 px (an analytics or ad beacon's
    `<img width=1 height=1>`)."""
    sizes = [_SIZE.fullmatch(_attr(attrs, name).strip()) for name in ("width", "height")]
    return all(m is not None and float(m.group(1)) <= 1 for m in sizes)


# `this.media='all'`, `this.rel="stylesheet"` in a <link>'s onload: a stylesheet loaded without blocking the page
# (`media=print` or `rel=preload as=style` until it has come), which a browser then applies
_ONLOAD_SETS = re.compile(r"""\b(media|rel)\s*=(?!=)\s*(["'])(.*?)\2""", re.I)


def _applies(attrs: dict) -> bool:
    """Whether a <link> is a stylesheet a browser applies to a screen: not an alternate one, not disabled, not
    for print; with what its onload sets (its media, its rel) once it has loaded."""
    rel, media = _attr(attrs, "rel"), _attr(attrs, "media")
    for name, _, value in _ONLOAD_SETS.findall(_attr(attrs, "onload")[:1000]):
        if name.lower() == "rel":
            rel = value
        else:
            media = value
    rel = rel.lower().split()
    return ("stylesheet" in rel and "alternate" not in rel and "disabled" not in attrs
            and bool(_attr(attrs, "href").strip()) and media_matches(media))


def _runs(kind: str) -> bool:
    """Whether a <script> of this type runs (JavaScript, a module), not data (JSON-LD, a template)."""
    kind = kind.strip().lower()
    return not kind or kind == "module" or "javascript" in kind or "ecmascript" in kind


LINK_DEPTH = 16  # levels looked up for the link around an image: a gallery's markup, not a whole deep page


def _linked_file(link, base: str, charset: str, folder: str | None,
                 dicom_page: bool = False, said: dict[int, bool] | None = None) -> tuple[str | None, bool]:
    """(URL, guess) of the file an <a> leads to: guess False when its name is an image file's (a folder listing's
    `scan1.dcm`, a "full size" link, a thumbnail's full image; `LINK_NAMES`, in any case), True when only a hint
    says it is a file (`_file_hint`), or a DICOM file (`_dicom_hint`); (None, False) for other links."""
    url = _resolve(link.attributes.get("href") if link is not None else None, base, charset)  # once: urljoin is slow
    if not url or url[:5].lower() == "data:":
        return None, False
    if urlsplit(url).path.lower().endswith(LINK_NAMES):
        return url, False
    if _file_hint(link, url, folder) or _dicom_hint(link, url, folder, dicom_page, said):
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
    """A full-size picture named beside it first (`FULL_SRC`), then lazy-load attributes (the plain ones are then
    placeholders), then srcset, then src."""
    for name in FULL_SRC:
        if _attr(attrs, name).strip():
            return _attr(attrs, name)
    for name in LAZY_SRCSET:
        best = largest(_attr(attrs, name))
        if best:
            return best
    for name in LAZY_SRC:
        if _attr(attrs, name).strip():
            return _attr(attrs, name)
    return largest(_attr(attrs, "srcset"), _attr(attrs, "src")) or _attr(attrs, "src")


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
    lazy += [_attr(attrs, name) for name in (*FULL_SRC, *LAZY_SRC) if _attr(attrs, name).strip()]
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


# a set's `[media]` at its end; it starts at a `[` (no `\s*` before it, and no `[` inside it, so that a search
# from each `[` or space of a long attribute does not run on to its end: quadratic)
_BGSET_MEDIA = re.compile(r"\[([^\[\]]*)\]\s*$")


def _bgset_choice(bgset: str) -> str | None:
    """The background lazysizes' bgset plugin sets: of its `|`-separated sets, the first whose `[media]` holds (or
    that has none), its largest candidate."""
    for option in bgset.split("|")[:MAX_ALTERNATIVES]:
        m = _BGSET_MEDIA.search(option)
        if m is None or media_matches(m.group(1)):
            return largest(option[:m.start()] if m else option)
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
