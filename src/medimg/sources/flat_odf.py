"""Flat OpenDocument files (`.fodt`, `.fodp`, `.fods`, `.fodg`: LibreOffice's "Flat XML" formats): the pictures
they hold.

A flat OpenDocument file is the zipped format's parts in one XML document (`<office:document>`), each picture
kept in base64 in an `<office:binary-data>` element instead of a `Pictures/` member. Like an RTF, the document is a
container: each picture is an input of its own (`report.fodt:picture-2.png`, numbered in the document's order),
placed as the zipped format's are (`slide 3`, `page 2`, `sheet Findings`), opened by whichever source reads it.
An SVG followed in its frame by a raster copy (as LibreOffice writes both) is read through that copy. The text is
left out with one note. The XML is read a megabyte at a time without keeping a tree (a DOCTYPE is refused: entity
bombs); pictures are read under `max_input_bytes` each, `zip_max_bytes` in all and `zip_max_entries` in count.
A damaged document gives the pictures before the damage, then an error saying where it is.
"""

from __future__ import annotations

import binascii
import re
import xml.etree.ElementTree as ET
from typing import Callable, Iterator, Union

from .base import Blob, Budget, Context, Item, ItemError, SourcePlugin
from .registry import register

_NS = b"urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_ROOT = re.compile(rb"<([A-Za-z_][\w.-]*:)?document[\s>]")
_MIMETYPE = re.compile(rb"mimetype=[\"']application/vnd\.oasis\.opendocument\.([a-z-]+)")
_SNIFF = 16 * 1024  # the root element's namespace declarations (LibreOffice writes about 3 KB of them)
_FEED = 1 << 20
_KINDS = {"text": "text document", "presentation": "presentation", "spreadsheet": "spreadsheet",
          "graphics": "drawing", "drawing": "drawing"}


def _root(data: bytes) -> re.Match | None:
    """The root element, when it is an OpenDocument's `document` (after the XML declaration and comments)."""
    text = data[:_SNIFF]
    if _NS not in text:  # most XML and HTML: a plain find, where the search below tried every tag (~0.2 ms a file)
        return None
    m = _ROOT.search(text)
    if m is None or _NS not in text[m.start():] or not text.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return None
    before = text[:m.start()]  # only the declaration, processing instructions and comments come before it
    if re.sub(rb"<\?.*?\?>|<!--.*?-->|\s|\xef\xbb\xbf|<!DOCTYPE.*", b"", before, flags=re.S):  # refused later
        return None
    return m


def accepts(head: bytes, blob: Blob) -> bool:
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") and _root(blob.data) is not None


def split_flat_odf(blob: Blob, ctx: Context) -> Iterator[Callable[[], Iterator[Item]]]:
    from .files import member_units

    yield from member_units(_pictures(blob, ctx), ctx)


class _Reader:
    """ElementTree's parser target: the pictures (place, mime type, base64 text or None when over the cap) as their
    elements end, and each one's frame, no tree kept."""

    def __init__(self, cap: int):
        self.cap = cap  # base64 characters kept of one picture
        self.out: list[tuple[str, str, list[str] | None, int]] = []  # (place, mime type, base64, frame number)
        self.stack: list[str] = [""]  # the place of each open element
        self.body, self.pages, self.frames = "", 0, 0
        self.text: list[str] | None = None  # base64 of the picture being read (None: not in one, or over the cap)
        self.size, self.mime, self.inside = 0, "", False

    def start(self, tag: str, attrib: dict) -> None:
        name, where = tag.rsplit("}", 1)[-1], self.stack[-1]
        if name == "page":  # a slide (Impress) or a page (Draw)
            self.pages += 1
            where = f"{'page' if self.body == 'drawing' else 'slide'} {self.pages}"
        elif name in ("presentation", "drawing", "spreadsheet", "text") and not self.body:
            self.body = name
        elif name == "table" and self.body == "spreadsheet" and not where:
            where = f"sheet {_attr(attrib, 'name') or ''}".strip()
        elif name == "frame":
            self.frames += 1
        elif name == "image":
            self.mime = _attr(attrib, "mime-type") or ""
        elif name == "binary-data":
            self.inside, self.text, self.size = True, [], 0
        self.stack.append(where)

    def data(self, text: str) -> None:
        if self.inside and self.text is not None:
            self.size += len(text)
            if self.size > self.cap:  # over max_input_bytes: not kept, only counted
                self.text = None
            else:
                self.text.append(text)

    def end(self, tag: str) -> None:
        where, name = self.stack.pop(), tag.rsplit("}", 1)[-1]
        if name == "binary-data" and self.inside:
            self.out.append((where, self.mime, self.text, self.frames))
            self.inside, self.text = False, None
        elif name == "image":
            self.mime = ""

    def doctype(self, name, pubid, system) -> None:
        raise _Refused()

    def close(self) -> None:
        pass


class _Refused(Exception):
    pass


def _attr(attrib: dict, name: str) -> str | None:
    return next((v for k, v in attrib.items() if k.rsplit("}", 1)[-1] == name), None)


def _pictures(blob: Blob, ctx: Context) -> Iterator[Union[Item, Blob]]:
    from .files import image_kind

    origin, limits, data = blob.origin, ctx.limits, blob.data
    budget = blob.budget or Budget(limits.zip_max_bytes)
    root = _root(data)
    kind = _MIMETYPE.search(data[:_SNIFF])
    what = f"flat OpenDocument {_KINDS.get(kind.group(1).decode() if kind else '', 'file')}"
    if root is None or re.search(rb"<!(DOCTYPE|ENTITY)", data[:root.start()]):
        yield ItemError(origin, "", f"{what} declares a DOCTYPE (entities could expand without end); not read")
        return
    reader = _Reader(limits.max_input_bytes * 4 // 3 + 4096)
    parser = ET.XMLParser(target=reader)
    found, svg = 0, None  # pictures given; an SVG held until its frame shows whether a raster copy follows it
    damage = ""
    for at in [*range(0, len(data), _FEED), None]:  # each megabyte, then the end (a cut-off file is damage)
        if ctx.cancel is not None and ctx.cancel.is_set():
            return  # the run gave up on it (input_timeout): millions of elements take a while
        try:
            if at is None:
                parser.close()
            else:
                parser.feed(data[at:at + _FEED])
        except _Refused:
            damage = "declares a DOCTYPE (entities could expand without end); the rest is not read"
        except (ET.ParseError, LookupError, ValueError) as exc:  # LookupError: an encoding Python does not know
            damage = f"is cut off or damaged ({exc}); the rest is not read"
        for place, mime, text, frame in reader.out:
            found += 1
            if found > limits.zip_max_entries:
                if svg is not None:  # within the cap: its frame's copy, if any, is not
                    yield svg[2]
                yield ItemError(origin, "", f"{what} holds more than the zip_max_entries cap of "
                                            f"{limits.zip_max_entries:,} pictures; the rest are not read")
                return
            if text is None:
                yield ItemError(f"{origin}:picture-{found}", place, f"picture is over the max_input_bytes cap of "
                                                                    f"{limits.max_input_bytes:,}; not read")
                continue
            try:
                picture = binascii.a2b_base64("".join(text))
            except (binascii.Error, ValueError):
                yield ItemError(f"{origin}:picture-{found}", place, "damaged picture: its base64 does not decode; "
                                                                    "not read")
                continue
            named = (image_kind(picture[:64]) or ("svg" if "svg" in mime else "bin")).lower()
            where = f"{origin}:picture-{found}.{named}"
            # the raster copy of the SVG before it in the same frame, when it can be read in its place (not empty,
            # damaged or past the zip_max_bytes cap: the SVG is read then)
            if svg is not None and svg[1] == frame and picture and named not in ("svg", "bin") \
                    and len(picture) <= budget.left + len(svg[2].data):
                yield ItemError(svg[0], place, f"skipped: an SVG picture, shown through its raster copy "
                                               f"picture-{found}.{named}, which is read instead", skipped=True)
                budget.left += len(svg[2].data)
                svg = None
            elif svg is not None:
                yield svg[2]
                svg = None
            if not picture:
                yield ItemError(where, place, "empty picture", skipped=True)
                continue
            if len(picture) > budget.left:
                yield ItemError(where, place, f"pictures add up past the zip_max_bytes cap of "
                                              f"{limits.zip_max_bytes:,}; the rest are not read")
                return
            budget.left -= len(picture)
            member = Blob(where, picture, name=where.rsplit(":", 1)[1], depth=blob.depth + 1, budget=budget,
                          locator=place)
            if named == "svg" and frame:
                svg = (where, frame, member)
            else:
                yield member
        reader.out.clear()
        if damage:
            break
    if svg is not None:
        yield svg[2]
    if damage:
        yield ItemError(origin, "", f"{what} {damage}")
    note = f"{what}: its text left out" + ("; no pictures found" if not found and not damage else "")
    yield ItemError(origin, "", note, skipped=True)


register(SourcePlugin("flat-odf", accepts, priority=39, split=split_flat_odf))
