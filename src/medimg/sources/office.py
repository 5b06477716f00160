"""Word, PowerPoint, Excel, Visio, OpenDocument, Apple iWork and EPUB files: which zip members are their pictures,
and where each is shown.

Only the pictures are read (`word|ppt|xl/media/…`, `Pictures/…`, iWork's `Data/…`, and any other part an OOXML
package's relationships call a picture: the Open XML SDK's `media/…`), and embedded Office documents and PDFs
(`…/embeddings/…`, but not a chart's own workbook). From the package's relationships (OOXML) or content.xml
(OpenDocument), each picture gets a place a user knows it by (`slide 3`, `header`, `sheet Findings`, `speaker notes
of slide 2`) and the crops it is shown with (`a:srcRect`: `views`, applied by files.py), an SVG with a raster
fallback is known as such (Office 2016+ and LibreOffice write both), and so is the original (an HD Photo) Office
2010+ keeps of a picture with artistic effects; pictures linked from outside the file are counted (never fetched;
one also saved in the file is read from its copy), and a password-protected OpenDocument file is told (`locked`).
These XML parts are read under their own caps (16 MB a part, 32 MB and 500,000 elements in all, no DOCTYPE); past
them, or when they are damaged, the pictures are still read, only without their places.
"""

from __future__ import annotations

import html
import posixpath
import re
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import unquote

_OOXML_PICTURES = re.compile(r"(word|ppt|xl|visio)/media/[^/]+$")  # .docx, .pptx, .xlsx, .vsdx
_ODF_PICTURES = re.compile(r"(?:Object [^/]+/)*Pictures/[^/]+$")  # .odt, .odp, .ods; a document embedded in one
_IWORK_PICTURES = re.compile(r"Data/[^/]+$")  # Pages, Keynote, Numbers 2013+ (zipped)
# an EPUB's pictures, by their names (its manifest's images), anywhere but META-INF
_EPUB_PICTURES = re.compile(r"(?!META-INF/)[^\x00]*\.(png|jpe?g|gif|webp|svg|bmp|tiff?|avif|jxl)$", re.I)
# an XHTML chapter's picture: `<img src="…">`, `<svg:image xlink:href="…">` (a tag's attributes: at most 4,000 bytes);
# not a `data-src` (a script's lazy picture, before its `src`)
_EPUB_IMAGE = re.compile(rb"""<(?:[\w-]+:)?(?:img|image)\s[^<>]{0,4000}?(?<![\w.-])(?:src|href)\s*=\s*["']([^"']*)["']""",
                         re.I)
# META-INF/encryption.xml's algorithms that obfuscate a font (IDPF's, Adobe's) rather than encrypt it
_OBFUSCATION = ("http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC")
_EMBEDDED = re.compile(r"(word|ppt|xl|visio)/embeddings/[^/]+\.(docx|docm|pptx|pptm|xlsx|xlsm|pdf)$", re.I)
_PART_CAP = 16 * 1024 * 1024  # bytes of one XML part read to place pictures
_ALL_CAP = 32 * 1024 * 1024  # and of all of them together
_MAX_ELEMENTS = 500_000  # elements of all the parts read (parsed without keeping a tree)
# a DOCTYPE or entity declaration, in UTF-8 and in UTF-16 (expat reads both); `_Events.doctype` refuses any other
_DOCTYPE = tuple(text.encode(code) for text in ("<!DOCTYPE", "<!ENTITY")
                 for code in ("utf-8", "utf-16-le", "utf-16-be"))
_MAX_VIEWS = 8  # different crops of one picture read as images of their own; past them, it is read as stored
Crop = tuple[float, float, float, float]  # the parts cut off left, top, right and bottom, as fractions of the side
_PERCENT = re.compile(r"\s*([+-]?[0-9]+)\s*|\s*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))\s*%\s*")  # 25000 or 25%
_MAX_DEPTH = 4  # parts between a picture and the slide, sheet or header showing it (a chart, a diagram)


@dataclass
class Office:
    """What an Office, OpenDocument or iWork file shows of its members."""

    pictures: re.Pattern
    kind: str = "office document"
    places: dict[str, str] = field(default_factory=dict)  # member → "slide 3", "slides 1–4, header"
    fallbacks: dict[str, str] = field(default_factory=dict)  # SVG member → the raster member shown instead
    originals: dict[str, str] = field(default_factory=dict)  # a picture's original before effects → the one shown
    locked: bool = False  # password-protected (an OpenDocument file's parts encrypted): nothing can be read
    linked: list[set[str]] = field(default_factory=list)  # places of pictures linked from outside the file
    embedded: set[str] = field(default_factory=set)  # embedded documents to open
    encrypted: set[str] = field(default_factory=set)  # an EPUB's members its DRM encrypts (META-INF/encryption.xml)
    obfuscated: set[str] = field(default_factory=set)  # and the fonts it obfuscates (not DRM; never pictures)
    # pictures the package's relationships point at outside `pictures`' folders (the Open XML SDK's `media/…`)
    images: set[str] = field(default_factory=set)
    # member → (place, crop) for each different crop it is shown with, when one of them crops it (`a:srcRect`)
    views: dict[str, tuple[tuple[str, Crop | None], ...]] = field(default_factory=dict)

    def reads(self, name: str) -> bool:
        return name not in self.obfuscated and (bool(self.pictures.match(name)) or name in self.embedded or
                                                name in self.images)


def survey(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], read: Callable) -> Office | None:
    """The Office file a zip is, else None. `read(zf, info, limit)` reads a member under a cap."""
    names = {i.filename for i in infos}
    if "[Content_Types].xml" in names and any(n.startswith(("word/", "ppt/", "xl/", "visio/")) for n in names):
        office = Office(_OOXML_PICTURES)
        try:
            _Package(zf, infos, read).place(office)
        except Exception:  # damaged XML: the pictures are still read, without their places
            pass
        return office
    if "Index/Document.iwa" in names or ("Index.zip" in names and any(n.startswith("Metadata/") for n in names)):
        return Office(_IWORK_PICTURES, "Apple iWork document")  # its previews (preview*.jpg) are left out
    first = infos[0]
    if first.filename == "mimetype" and first.file_size < 200:
        try:
            kind = read(zf, first, 200)
        except Exception:
            return None
        if kind.startswith(b"application/epub+zip"):
            office = Office(_EPUB_PICTURES, "EPUB e-book")
            try:
                _place_epub(zf, infos, read, office)
            except Exception:
                pass
            return office
        if not kind.startswith(b"application/vnd.oasis.opendocument"):
            return None
        office = Office(_ODF_PICTURES)
        try:
            office.locked = _odf_encrypted(zf, infos, read)
            _place_odf(zf, infos, read, office)
        except Exception:
            pass
        return office
    return None


class _Events:
    """ElementTree's parser target: each element's start (local name, attributes) and end, no tree kept."""

    def __init__(self) -> None:
        self.out: list[tuple[str, str, dict]] = []

    def start(self, tag: str, attrib: dict) -> None:
        self.out.append(("start", _local(tag), attrib))

    def end(self, tag: str) -> None:
        self.out.append(("end", _local(tag), {}))

    def doctype(self, name, pubid, system) -> None:  # called as `<!DOCTYPE` is read, in any encoding (UTF-16 too)
        raise _Refused("DOCTYPE")

    def close(self) -> None:
        pass


class _Refused(Exception):
    """A part declaring a DOCTYPE: its entities could expand into millions of elements within one chunk."""


def _events(zf: zipfile.ZipFile, info: zipfile.ZipInfo | None, read: Callable, spent: list[int]):
    """A part's elements as ("start" | "end", local name, attributes), parsed a chunk at a time without keeping a
    tree, until the parts read have given _MAX_ELEMENTS (`spent`: bytes and elements so far); none when the part
    is missing, over the caps or declares a DOCTYPE (an entity bomb); up to the damage when it is damaged."""
    if info is None or info.file_size > _PART_CAP or spent[0] + info.file_size > _ALL_CAP or spent[1] > _MAX_ELEMENTS:
        return
    try:
        data = read(zf, info, _PART_CAP)
    except Exception:
        return
    spent[0] += len(data)
    if any(mark in data for mark in _DOCTYPE):
        return
    target = _Events()
    parser = ET.XMLParser(target=target)
    try:
        for at in range(0, len(data), 1 << 16):
            if spent[1] > _MAX_ELEMENTS:
                return
            parser.feed(data[at:at + (1 << 16)])
            spent[1] += len(target.out)
            yield from target.out
            target.out.clear()
    except (ET.ParseError, _Refused):
        return


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _rid(attrib: dict) -> str | None:
    """A relationship id (`r:id`), told from a plain `id` by its namespace."""
    return next((v for k, v in attrib.items() if k.startswith("{") and k.endswith("}id")), None)


def _attr(attrib: dict, name: str) -> str | None:
    """An attribute by its local name, whatever its namespace (r:embed, xlink:href)."""
    return next((v for k, v in attrib.items() if _local(k) == name), None)


class _Package:
    """An Office Open XML package's parts and the relationships between them."""

    def __init__(self, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], read: Callable):
        self.zf, self.read, self.spent = zf, read, [0, 0]
        self._shown_above: dict[tuple[str, int], frozenset[str]] = {}  # (part, depth) → labels (`_above`)
        self.infos = {i.filename: i for i in infos if not i.is_dir()}
        self.rels: dict[str, dict[str, tuple[str, str, bool]]] = {}  # part → rId → (type, target, external)
        self.saved_links: set[tuple[str, str]] = set()  # (part, rId) of links whose picture is saved in the file too
        for name in self.infos:
            m = re.fullmatch(r"(.*?)_rels/([^/]*)\.rels", name)
            if m:
                self.rels[m.group(1) + m.group(2)] = self._rels(name, m.group(1))

    def _rels(self, name: str, folder: str) -> dict[str, tuple[str, str, bool]]:
        out = {}
        for event, tag, rel in _events(self.zf, self.infos[name], self.read, self.spent):
            rid, kind, target = rel.get("Id"), rel.get("Type", ""), rel.get("Target", "")
            if event != "start" or tag != "Relationship" or not rid:
                continue
            external = rel.get("TargetMode") == "External"
            if not external:
                target = unquote(target)
                target = posixpath.normpath(target.lstrip("/") if target.startswith("/") else folder + target)
            out[rid] = (kind.rsplit("/", 1)[-1], target, external)
        return out

    def place(self, office: Office) -> None:
        labels = self._labels()
        shown_by: dict[str, set[str]] = {}  # part → the parts pointing at it
        for part, rels in self.rels.items():
            for kind, target, external in rels.values():
                if not external:
                    shown_by.setdefault(target, set()).add(part)
        office.images = {t for rels in self.rels.values() for kind, t, external in rels.values()
                         if kind == "image" and not external and t in self.infos}
        for name in self.infos:
            if _EMBEDDED.match(name) and any(not p.startswith(("ppt/charts/", "word/charts/", "xl/charts/"))
                                             for p in shown_by.get(name, ())):
                office.embedded.add(name)  # a document put in this one (a chart's own workbook is left out)
            if office.reads(name) and (where := self._where(name, labels, shown_by)):
                office.places[name] = places(where)
        self._fallbacks(office, labels, shown_by)
        # pictures only linked (Word's and PowerPoint's "Link to File"); one also saved in the file ("Insert and
        # Link": its blip gives both) is read from its copy
        office.linked = [self._where(part, labels, shown_by, True) for part, rels in self.rels.items()
                         for rid, (kind, _, external) in rels.items()
                         if external and kind == "image" and (part, rid) not in self.saved_links]

    def _labels(self) -> dict[str, str]:
        """The parts a user knows: slides by their number in the show, sheets by name, headers, masters."""
        labels: dict[str, str] = {}
        main = next((t for k, t, ext in self.rels.get("", {}).values()  # Visio's: `document`
                     if k in ("officeDocument", "document") and not ext), "")
        if main:
            labels[main] = "document body" if main.startswith("word/") else ""
        shows = self.rels.get(main, {})
        n = 0
        # a show's or workbook's list of slides or sheets (a Word body, read here for nothing, spent the caps the
        # crops are read under: a long report's pictures were read uncropped)
        listed = main and not main.startswith("word/")
        for event, tag, attrib in _events(self.zf, self.infos.get(main), self.read, self.spent) if listed else ():
            rid = _rid(attrib) if event == "start" else None
            if tag == "sldId" and rid in shows and shows[rid][0] == "slide":  # the slides in the order shown
                n += 1
                labels[shows[rid][1]] = f"slide {n}"
            elif tag == "sheet" and rid in shows:
                labels[shows[rid][1]] = f"sheet {attrib.get('name', '')}".strip()
        # a Visio drawing's pages, in the order of its page list (pages.xml: each `Page` a `Rel` to its part)
        pages = next((t for k, t, ext in shows.values() if k == "pages" and not ext), None) if listed else None
        page_rels, n = self.rels.get(pages or "", {}), 0
        for event, tag, attrib in _events(self.zf, self.infos.get(pages or ""), self.read, self.spent):
            if event == "start" and tag == "Page":
                n += 1
            elif event == "start" and tag == "Rel" and (rid := _rid(attrib)) in page_rels:
                labels[page_rels[rid][1]] = f"page {n}"
        for part in self.infos:
            if part in labels:
                continue
            m = re.match(r"(?:ppt/(slides|slideLayouts|slideMasters|notesSlides|notesMasters|handoutMasters)/"
                         r"|word/(header|footer|footnotes|endnotes|comments)|(xl/(?:worksheets|chartsheets)/))", part)
            if m and m.group(1):
                labels[part] = {"slides": "slide", "slideLayouts": "slide layout", "slideMasters": "slide master",
                                "notesSlides": "speaker notes", "notesMasters": "notes master",
                                "handoutMasters": "handout master"}[m.group(1)]
            elif m and m.group(2):
                labels[part] = m.group(2)
            elif m:
                labels[part] = "sheet"
        for part, label in labels.items():  # the notes of a slide: that slide's
            if label == "speaker notes":
                slide = next((labels.get(t) for k, t, ext in self.rels.get(part, {}).values() if k == "slide"), None)
                if slide and slide.startswith("slide "):
                    labels[part] = f"speaker notes of {slide}"
        return {k: v for k, v in labels.items() if v}

    def _where(self, name: str, labels: dict[str, str], shown_by: dict[str, set[str]],
               itself: bool = False) -> set[str]:
        """The labelled parts that show a part (`itself`: or the part itself), through charts, drawings and
        diagrams in between."""
        found = set(self._above(name, _MAX_DEPTH, labels, shown_by))
        if itself and name in labels:
            found.add(labels[name])
        return found

    def _above(self, part: str, depth: int, labels: dict[str, str], shown_by: dict[str, set[str]]) -> frozenset[str]:
        """The labels of the parts that show `part` within `depth` steps through unlabelled ones, each (part, depth)
        worked out once: parts pointing at each other many times over (a crafted package) cost each of their
        relationships once a depth, not once a path."""
        key = (part, depth)
        if key not in self._shown_above:
            found: set[str] = set()
            for p in shown_by.get(part, ()):
                if p in labels:
                    found.add(labels[p])
                elif depth > 1:
                    found |= self._above(p, depth - 1, labels, shown_by)
            self._shown_above[key] = frozenset(found)
        return self._shown_above[key]

    def _fallbacks(self, office: Office, labels: dict[str, str], shown_by: dict[str, set[str]]) -> None:
        """SVG pictures with a raster fallback (`a:blip r:embed` of the PNG, its `asvg:svgBlip r:embed` the SVG),
        and the crop each picture is shown with (`a:srcRect` beside its blip), read in the parts that show one."""
        uses: dict[str, dict[Crop | None, set[str]]] = {}  # member → crop → places
        for part, rels in self.rels.items():
            shown = {rid: t for rid, (kind, t, ext) in rels.items() if not ext and kind == "image" and t in self.infos}
            if not shown:
                continue
            place = {labels[part]} if part in labels else set(self._above(part, _MAX_DEPTH - 1, labels, shown_by))
            raster, crop, seen = None, None, set()  # the r:embed of the blip being read, its crop; rIds met
            for event, tag, attrib in _events(self.zf, self.infos.get(part), self.read, self.spent):
                if tag == "blipFill" and event == "start":
                    raster, crop = None, None
                elif tag == "blip" and event == "start":
                    raster = _attr(attrib, "embed")
                    if raster in shown and (link := _attr(attrib, "link")):
                        self.saved_links.add((part, link))
                elif tag == "imagedata" and event == "start" and _rid(attrib) in shown:  # VML: r:id, r:href
                    self.saved_links.update((part, v) for k, v in attrib.items() if _local(k) == "href" and v in rels)
                elif tag == "srcRect" and event == "start":
                    crop = _crop(attrib)
                elif tag == "blipFill" and raster in shown:  # its end
                    seen.add(raster)
                    uses.setdefault(shown[raster], {}).setdefault(crop, set()).update(place)
                elif tag == "svgBlip" and event == "start" and raster in rels and _attr(attrib, "embed") in rels:
                    if rels[raster][1] in self.infos:
                        office.fallbacks[rels[_attr(attrib, "embed")][1]] = rels[raster][1]
                elif tag == "imgLayer" and event == "start" and raster in rels and _attr(attrib, "embed") in rels:
                    if rels[raster][1] in self.infos:  # Office 2010+'s original (an HD Photo) of a picture with effects
                        office.originals[rels[_attr(attrib, "embed")][1]] = rels[raster][1]
            for rid in shown.keys() - seen:  # pointed at otherwise (VML, a damaged part): shown as stored
                uses.setdefault(shown[rid], {}).setdefault(None, set()).update(place)
        for member, crops in uses.items():
            if any(crops) and len(crops) <= _MAX_VIEWS:
                office.views[member] = tuple(sorted(((places(where), crop) for crop, where in crops.items()),
                                                    key=lambda view: view[0]))


def _crop(attrib: dict) -> Crop | None:
    """`a:srcRect`'s l, t, r, b (thousandths of a percent cut off each side, or a percent with a trailing `%`, which
    Office reads too (MS-OI29500); negative: space added, not a crop), or None when it crops nothing or everything,
    or a side is unreadable."""
    sides = []
    for k in ("l", "t", "r", "b"):
        found = _PERCENT.fullmatch(attrib.get(k, "0"))
        if not found:
            return None
        value = float(found[1]) if found[1] is not None else float(found[2]) * 1000
        sides.append(min(max(value, 0), 100_000) / 100_000)
    if not any(sides) or sides[0] + sides[2] >= 1 or sides[1] + sides[3] >= 1:
        return None
    return tuple(sides)  # type: ignore[return-value]


def cropped(image, crop: Crop):
    """The part of `image` a document shows (`crop` as `_crop` gives it), at least one pixel each way."""
    w, h = image.size
    left, top = round(w * crop[0]), round(h * crop[1])
    right, bottom = max(round(w * (1 - crop[2])), left + 1), max(round(h * (1 - crop[3])), top + 1)
    return image.crop((left, top, min(right, w), min(bottom, h)))


def _place_odf(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], read: Callable, office: Office) -> None:
    """Places from an OpenDocument's content.xml (slides of a presentation or drawing, sheets by name), and the
    SVG pictures followed by a raster fallback in the same frame (as LibreOffice writes them)."""
    content = next((i for i in infos if i.filename == "content.xml"), None)
    found: dict[str, set[str]] = {}
    objects: dict[str, set[str]] = {}  # an embedded document's folder (`Object 1`) → where it is shown
    pages, body, frame = 0, "", None  # slides so far; presentation, drawing, spreadsheet or text; a frame's images
    stack: list[str | None] = [None]  # the place of each open element
    for event, tag, attrib in _events(zf, content, read, [0, 0]):
        if event == "end":
            stack.pop()
            if tag == "frame" and frame:
                if len(frame) > 1 and frame[0].lower().endswith(".svg"):  # LibreOffice: an SVG, then its PNG
                    office.fallbacks[frame[0]] = frame[1]
                frame = None
            continue
        where = stack[-1]
        if tag == "page":  # a slide (Impress) or a page (Draw)
            pages += 1
            where = f"{'page' if body == 'drawing' else 'slide'} {pages}"
        elif tag in ("presentation", "drawing", "spreadsheet", "text") and not body:
            body = tag
        elif tag == "table" and body == "spreadsheet" and where is None:
            where = f"sheet {_attr(attrib, 'name') or ''}".strip()
        elif tag == "frame":
            frame = []
        elif tag == "image" and (href := _attr(attrib, "href")):
            if frame is not None:
                frame.append(href)
            if re.match(r"[a-z][a-z0-9+.-]*:|\.\./|/", href, re.I):  # a URL, or a file beside the document
                office.linked.append({where} if where else set())
            elif where:
                found.setdefault(href, set()).add(where)
        elif tag == "object" and (href := _attr(attrib, "href")) and where:
            objects.setdefault(posixpath.normpath(unquote(href)), set()).add(where)
        stack.append(where)
    for info in infos:  # an embedded document's pictures (`Object 1/Pictures/…`): where that document is shown
        folder = info.filename.rsplit("/Pictures/", 1)[0] if "/Pictures/" in info.filename else ""
        if folder in objects and info.filename not in found:
            found[info.filename] = objects[folder]
    office.places.update({name: places(where) for name, where in found.items()})


def _place_epub(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], read: Callable, office: Office) -> None:
    """Each picture of an EPUB by the XHTML files showing it (`ch03.xhtml`: `<img src>`, SVG's `<image href>`),
    read under the caps on an Office file's XML (matched, not parsed: chapters declare a DOCTYPE and use HTML's
    entities); pictures named by URL are counted as linked (never fetched)."""
    found: dict[str, set[str]] = {}
    members = {i.filename for i in infos}
    spent, seen = 0, 0  # bytes of chapters read; pictures named in them (under _MAX_ELEMENTS, as elements are)
    drm = next((i for i in infos if i.filename == "META-INF/encryption.xml"), None)
    algorithm = ""
    for event, tag, attrib in _events(zf, drm, read, [0, 0]):
        if event == "start" and tag == "EncryptionMethod":
            algorithm = attrib.get("Algorithm", "")
        elif event == "start" and tag == "CipherReference" and (uri := attrib.get("URI")):
            # a font obfuscated (IDPF's or Adobe's algorithm: the first bytes XORed with the book's id) is no DRM
            (office.obfuscated if algorithm in _OBFUSCATION else office.encrypted).add(unquote(uri))
        elif event == "end" and tag == "EncryptedData":
            algorithm = ""
    for info in infos:
        if not re.search(r"\.x?html?$", info.filename, re.I) or info.filename.startswith("META-INF/"):
            continue
        if seen > _MAX_ELEMENTS:  # past it, pictures are read without places
            break
        if info.file_size > _PART_CAP or spent + info.file_size > _ALL_CAP:
            continue
        try:
            data = read(zf, info, _PART_CAP)
        except Exception:  # a damaged chapter: the others still place their pictures
            continue
        spent += len(data)
        folder, where = posixpath.dirname(info.filename), posixpath.basename(info.filename)
        shown = {where}  # one set for all the URLs of this chapter: a chapter of a million costs no million sets
        for m in _EPUB_IMAGE.finditer(data):
            seen += 1
            if seen > _MAX_ELEMENTS:
                break
            href = html.unescape(m[1].decode("utf-8", "replace")).strip()  # `R&amp;D.png` names R&D.png
            if href.startswith("data:"):
                continue
            if re.match(r"[a-z][a-z0-9+.-]*:|//", href, re.I):  # a URL: never fetched
                office.linked.append(shown)
            else:
                name = posixpath.normpath(posixpath.join(folder, unquote(href.split("#")[0])))
                if name in members:  # a name the book lacks places nothing (and costs no memory)
                    found.setdefault(name, set()).add(where)
    office.places.update({name: places(where) if len(where) < 4 else  # a logo in every chapter: three of them
                          f"{', '.join(sorted(where)[:3])} and {len(where) - 3} more" for name, where in found.items()})


def _odf_encrypted(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], read: Callable) -> bool:
    """Whether an OpenDocument file is password-protected: its manifest gives parts `encryption-data` (ODF 1.2+),
    or LibreOffice 7.5+'s whole package is one `encrypted-package` part."""
    if any(i.filename == "encrypted-package" for i in infos):
        return True
    manifest = next((i for i in infos if i.filename == "META-INF/manifest.xml"), None)
    return any(tag == "encryption-data" for _, tag, _ in _events(zf, manifest, read, [0, 0]))


def places(labels) -> str:
    """`slide 3`; several slides as `slides 1–3, 7` (a run of three or more as a range), a drawing's pages alike
    (`pages 2, 10`, in their order); other places after them (`slides 2, 4, slide master`)."""
    head, rest = [], set(labels)
    for kind in ("slide", "page"):
        mine = {x for x in rest if re.fullmatch(kind + r" \d+", x)}
        rest -= mine
        numbers = sorted(int(x.split()[1]) for x in mine)
        runs: list[list[int]] = []
        for n in numbers:
            if runs and runs[-1][-1] == n - 1:
                runs[-1].append(n)
            else:
                runs.append([n])
        shown = [f"{r[0]}–{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs]
        head += [f"{kind}{'s' * (len(numbers) > 1)} {', '.join(shown)}"] if numbers else []
    return ", ".join(head + sorted(rest))
