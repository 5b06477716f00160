"""Fetching what a page names, and telling repeats: a `Candidate` in, its bytes as a `Blob` out (or why not:
`_download`, never raising; a link taken on a hint is given up from its headers or first bytes), a page's external
stylesheets read for the images their rules set (`Stylesheets`), and `Seen`, which says when an image is one the
page gave already (the same URL or bytes, or the same picture at another size or crop). `classify` says what a
download is (a file a source reads, a page, an SVG drawing).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import contextlib
import functools
import hashlib
import re
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import chain
from urllib.parse import quote, unquote, unquote_to_bytes, urljoin, urlsplit

from . import css as sheets
from . import net, registry
from .base import Blob
from .charset import http_charset, known_codec
from .media import media_matches
from .net import short_url
from .prints import CROP_PAIRS, CROPS_PER_PICTURE, SAME_PICTURE, Print
from .web_page import DICOM_NAMES, LINK_NAMES, Candidate, Found, _resolve, _same

HTML_TYPES = ("text/html", "application/xhtml+xml")
HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<meta", b"<title", b"<!--")
XML_TYPES = ("text/xml", "application/xml")
_XHTML_ROOT = re.compile(rb"<html\b[^>]*\bxmlns\s*=\s*[\"']http://www\.w3\.org/1999/xhtml[\"']")
ACCEPT_IMAGE = "image/avif,image/webp,image/png,image/jpeg,image/*,application/dicom;q=0.9,*/*;q=0.5"


def classify(blob: Blob, page: bool = False) -> str | None:
    """"blob" (a registered source reads the bytes), "html", "svg", or None. A `page` (what a URL or a frame shows)
    sent as text/html is HTML, as a browser reads it, even one that starts with an inline <svg> (an icon sprite)."""
    text = blob.data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n\x0c").lower()
    ctype = blob.content_type
    if text.startswith((b"<svg", b"<?xml", b"<!doctype svg")) and b"<svg" in text and b"<html" not in text:
        return "html" if page and ctype == "text/html" else "svg"
    if ctype in HTML_TYPES and text.startswith(HTML_STARTS):  # even if it mentions "%PDF-1.7" near its top
        return "html"
    if ctype in XML_TYPES and _XHTML_ROOT.search(text):  # an old XHTML page sent as XML: browsers show it as one
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
                if matcher.ruled_out(prelude):  # before its URLs are written as a browser would (~0.4 ms each)
                    continue
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

    def notes(self, how: str = "found only with --render") -> list[str]:
        """Why sheets were not read, and rules not matched (the images they set are `how`); none when all were."""
        reasons = self.failed + ([f"{self.over} over the cap of {sheets.MAX_SHEETS} a page"] if self.over else [])
        reasons += [f"{self.deep} imported by an imported sheet"] if self.deep else []
        count = len(self.failed) + self.over + self.deep
        out = []
        if count:
            out.append(f"{count} external stylesheet{'s' if count > 1 else ''} not read ({'; '.join(reasons)}): a "
                       f"background image set there is {how}")
        if self.cut:
            out.append(f"{self.cut} stylesheet rules that name an image were not matched against the page (at most "
                       f"{sheets.MAX_RULES} are, within {sheets.MATCH_SECONDS:g} s): a background image they set is "
                       f"{how}")
        return out


def _read_sheet(url: str, fetcher: net.Fetcher, cap: int, charset: str) -> sheets.Sheet | str:
    """One stylesheet's rules that name an image and its @imports, their URLs resolved against where it came from
    (not the page); or why it was not read (never raises)."""
    try:
        if url[:5].lower() == "data:":
            data, ctype = decode_data_uri(url, cap)
            final, header = url, ctype
        else:
            got = fetcher.fetch(url, accept=ACCEPT_CSS, max_bytes=cap, robots=False)  # a sheet is not used itself
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


# _download and Seen (and _emit, places and thumbnail in web.py) are also used by html_file.py (saved pages on disk):
# keep their signatures.
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
    if _path(cand.url).lower().endswith(".svg"):
        return Blob(origin=cand.url, data=b"", name=_name(cand.url), content_type="image/svg+xml")
    refuse = functools.partial(_refuse_by_headers, _name(cand.url)) if cand.guess else None
    peek = functools.partial(_refuse_by_bytes, cand.url) if cand.guess else None
    try:
        got = fetcher.fetch(cand.url, accept=ACCEPT_IMAGE, refuse=refuse, peek=peek, peek_at=PEEK_BYTES)
    except net.RobotsTag as exc:  # respect_robots_tag: no error, the site asked
        return Note(str(exc))
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
        self._pictures: list[str] = []  # and the picture its URL names (`picture_url`)
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
            self._pictures.append(picture_url(cand.url))

    def resized(self, cand: Candidate, mark: Print | None) -> Note | None:
        """A note naming an image read before whose picture this one is, at another size or in another
        encoding: their prints match (the closest if several do) and one of the two is a page's second
        reference to its picture (og:image, a link, a CSS background). Two <img>s, two links or two
        backgrounds are never one picture by their pixels (the slices of a stack look alike), unless their URLs
        name one picture at two sizes (`picture_url`: a wiki's thumbnail, a Next.js resize)."""
        if mark is None:
            return None
        role = _role(cand.tag)
        cropped = self._crop_pairs(role, mark)
        best, closest = None, SAME_PICTURE
        picture = picture_url(cand.url)
        for n, (label, other_role, other) in enumerate(self._prints):
            if (role == other_role and role != "meta" and picture != self._pictures[n]
                    or (n not in cropped and other.reshaped(mark))):
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


# the URLs sites give one picture at other sizes: a MediaWiki thumbnail (`/thumb/a/ab/X.png/320px-X.png`), a
# WordPress size (`x-300x225.jpg`), a Next.js or Vercel resize (`/_next/image?url=%2Fx.png&w=640`)
_THUMB_NAME = re.compile(r"[0-9]px-.", re.S)  # a thumbnail's file name: `320px-X.png`, `page1-320px-X.jpg`
_SIZED = re.compile(r"^(.*)-[0-9]+x[0-9]+(\.[a-z0-9]+)$", re.I)
_RESIZERS = ("/_next/image", "/_vercel/image")


def picture_url(url: str, depth: int = 0) -> str:
    """The URL of the picture an image URL shows at some size (as `_same` writes it): a thumbnail's or resize's
    original (`picture_url` of `/_next/image?url=%2Fx.png&w=640` is that of `/x.png`), else the URL itself."""
    if url[:5].lower() == "data:":
        return url
    url = _same(url)
    head, _, query = url.partition("?")
    path = _path(head)
    if path.endswith(_RESIZERS) and depth < 2:
        inner = next((unquote(v) for k, _, v in (p.partition("=") for p in query.split("&")) if k == "url"), "")
        if inner:
            return picture_url(urljoin(url, inner), depth + 1)
    original = _wiki_original(head)
    if original is None and (m := _SIZED.match(head)):
        original = "".join(m.groups())
    return original + ("?" + query if query else "") if original is not None else url


def _wiki_original(head: str) -> str | None:
    """A MediaWiki thumbnail's original (`…/thumb/a/ab/X.png/320px-X.png` → `…/a/ab/X.png`: the last `/thumb/`
    with a folder after it taken out), else None. Found with str methods: a regex `(.*)/thumb(/.+)/…` tries every
    `/thumb` of the URL with every `/` after it (a crafted 12,000-character URL took a second, 100,000 a minute)."""
    if "\n" in head:
        return None
    folder, _, name = head.rpartition("/")
    at = folder.rfind("/thumb/", 0, len(folder) - 1)  # one that a folder's name (at least a character) follows
    return folder[:at] + folder[at + 6:] if at >= 0 and _THUMB_NAME.search(name) else None


# A page's second reference to a picture it shows: an <img> and its og:image, its "Download figure" link or a
# background of the same picture may be two sizes or encodings of one picture (see `Seen.resized`).
_ROLES = {"og:image": "meta", "twitter:image": "meta", "link": "meta", "itemprop": "meta", "json-ld": "meta",
          "a": "link", "style": "css", "css": "css", "background": "css", "noscript": "fallback",
          "replaced": "replaced"}


def _role(tag: str) -> str:
    return _ROLES.get(tag, "element")


def _url_key(url: str) -> str | None:
    """An image's URL as compared for repeats: http(s) as the browser writes it; a file path as it is; a data:
    URI none (its bytes are compared)."""
    if url[:5].lower() == "data:":
        return None
    return _same(url) if url[:8].lower().startswith(("http://", "https://")) else url


def decode_data_uri(uri: str, cap: int, field: str | None = None) -> tuple[bytes, str]:
    """(bytes, media type) of a data: URI, base64 or percent-encoded; ValueError if bad or over `cap` (named as
    the Limits `field` it is, when given, so that the command line can say the option that raises it)."""
    over = f"over the {field} cap of {cap:,} bytes" if field else f"cap {cap} bytes"
    header, comma, payload = uri[5:].partition(",")
    if not comma:
        raise ValueError("malformed data: URI (no comma)")
    params = [p.strip().lower() for p in header.split(";")]
    ctype = params[0] or "text/plain"
    if len(payload) > cap * 3 + 16:  # cheap check before decoding
        raise ValueError(f"data: URI too large ({len(payload):,} characters, {over})")
    try:
        if "base64" in params[1:]:
            data = _forgiving_base64(unquote(payload))
        else:
            data = unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"bad data: URI: {exc}") from None
    if len(data) > cap:
        raise ValueError(f"data: URI too large ({len(data):,} bytes, {over})")
    return data, ctype


def _forgiving_base64(text: str) -> bytes:
    """Base64 as browsers read a data: URI (the WHATWG's forgiving-base64): white space dropped, padding optional;
    any other character outside the alphabet fails it. Python's own skipped them: `!!!!` was an image of 0 bytes."""
    text = re.sub(r"[\t\n\f\r ]+", "", text)
    if len(text) % 4 == 0 and text.endswith("="):
        text = text[:-2] if text.endswith("==") else text[:-1]
    if len(text) % 4 != 1 and "=" not in text:  # strict: it raises for any character outside the alphabet
        with contextlib.suppress(ValueError):  # binascii.Error, or a character not ASCII
            return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    bad = re.search(r"[^A-Za-z0-9+/]", text)  # only then: over megabytes it took a fifth of the decoding's time
    if bad:
        raise ValueError(f"its base64 has {bad.group()!r} at character {bad.start() + 1}, outside the alphabet")
    if len(text) % 4 == 1:
        raise ValueError("its base64 is cut off (a length no base64 text has)")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _name(url: str) -> str:
    if url[:5].lower() == "data:":
        return ""
    return unquote(_path(url).rsplit("/", 1)[-1])


def _path(url: str) -> str:
    """The URL's path; also of one urlsplit refuses (an unclosed `[`: a saved page may store a picture by
    `http://[::1/a.png`), whose picture was lost, or the whole saved page with it."""
    try:
        return urlsplit(url).path
    except ValueError:
        return url.partition("?")[0].partition("#")[0]
