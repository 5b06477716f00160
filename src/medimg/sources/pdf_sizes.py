"""The pixel size an embedded PDF image's data asks for (called by `pdf.py`, under its MuPDF lock).

`_pixel_size` gives an image's size as MuPDF decodes it (a JPEG 2000 at its codestream's size);
`_problem` gives why MuPDF must not decode it ("" if it may): more than max_pixels as its dictionary,
its JPEG 2000 or JBIG2 data, or its /SMask or /Mask asks for. `_place_images` matches the images drawn
on a page to their xrefs by that size (same-size twins by the image MuPDF loaded for each, else a digest of
their compressed data), and names the page's images MuPDF cannot load at all (a damaged dictionary), which no
page draws.
"""

from __future__ import annotations

import functools
import hashlib
import math
import struct
from typing import Callable

from .mupdf_import import pymupdf  # without its layout-analysis package (see there)


def _place_images(doc: pymupdf.Document, page: pymupdf.Page, log: list, check: Callable[[tuple], str],
                  pixel_size: Callable[[tuple], tuple], max_pixels: int,
                  loads: dict | None = None) -> tuple[list[tuple[dict, tuple | None]], list[tuple]]:
    """Each image drawn on the page (info from MuPDF's device) with its get_images() item, None if inline;
    and the page's items that MuPDF cannot load at all.

    Matching is by pixel size as MuPDF decodes it (a JPEG 2000 at its codestream's size, whatever its
    dictionary says). Only when two of the page's images have the same size, or an inline image is drawn,
    are digests needed: twins match by the very image MuPDF loaded for each (else by a digest of their
    compressed data, nothing decoded), inline images and twins MuPDF keeps no compressed data for by pixel digest,
    as does a page where two xrefs hold the same data. All this is left out when any image of the page is too
    large to decode (then twins match by size alone and inline repeats are not told apart). Smooth shadings, which the text
    device also reports as images, are left out: only boxes the bbox log saw as images count.

    An image MuPDF cannot load (its colour space or another object of its dictionary lost when the file was
    cut short, say) is drawn nowhere, so it matches nothing; of the items left unmatched, those not too large
    to load are tried (once per xref, the answer kept in `loads`), and the ones that fail are returned apart,
    for each to be an error of its own while the page's other images come out.
    """
    drawn = _Near([r for kind, r in log if kind in ("fill-image", "fill-imgmask")])
    infos = [i for i in page.get_image_info() if drawn.has(i["bbox"])]
    items = page.get_images(full=True)
    loads = {} if loads is None else loads
    by_size: dict[tuple, list] = {}
    for item in items:
        by_size.setdefault(pixel_size(item), []).append(item)
    twins = any(len(v) > 1 for v in by_size.values())
    inline = any((i["width"], i["height"]) not in by_size for i in infos)
    safe = not any(check(item) for item in items) and all(i["width"] * i["height"] <= max_pixels for i in infos)
    looked, matched, digests = (twins or inline) and safe, {}, {}
    if looked:
        twin_items = [item for found in by_size.values() if len(found) > 1 for item in found]
        by_key, loaded, by_object = {}, [], {}
        # one handle for all: each one let go made MuPDF look through its whole store (1 ms a twin, 2,000 icons)
        pdf = pymupdf.mupdf.pdf_document_from_fz_document(doc.this)
        for item in twin_items:
            try:
                image = _load(pdf, item[0])
                key = _image_key(image) or pymupdf.Pixmap(doc, item[0]).digest
            except Exception:  # MuPDF cannot load it (so no page draws it) or read its data: it matches nothing
                continue
            by_object[image.m_internal_value()] = (item, image)  # the image kept, so its address stays its own
            by_key[key] = item
            loaded.append(item)
        by_pixels = functools.cache(lambda: _pixel_keys(doc, loaded))
        pixels = functools.cache(lambda: by_pixels() if len(by_key) < len(loaded) else None)  # two xrefs, same data
        matched, digests = _block_keys(page, {i["number"] for i in infos}, by_size, by_key, pixels, by_pixels,
                                       by_object)
    out = []
    for info in infos:
        found = by_size.get((info["width"], info["height"]))
        if found and len(found) > 1 and looked:
            item = matched.get(info["number"])
        else:
            item = found[0] if found else None
        if item is None and looked:  # inline images: their pixel digest tells repeats apart
            info["digest"] = digests.get(info["number"], b"")
        out.append((info, item))
    placed = {item[0] for _, item in out if item is not None}
    broken, tried = [], set()
    for item in items:
        if item[0] in placed or item[0] in tried or check(item):
            continue
        tried.add(item[0])
        if _load_error(doc, item[0], item[8] == "JPXDecode", loads) is not None:
            broken.append(item)
    return out, broken


def _load_error(doc: pymupdf.Document, xref: int, jpx: bool, loads: dict) -> str | None:
    """Why MuPDF cannot load this image object (None if it can), kept in `loads` by xref. Loading reads its
    dictionary and colour space and keeps its compressed data, nothing decoded; but loading a JPEG 2000
    decodes it, so of one only the colour space its dictionary names, if any, is loaded."""
    if xref not in loads:
        m = pymupdf.mupdf
        try:
            pdf = m.pdf_document_from_fz_document(doc.this)
            obj = m.pdf_new_indirect(pdf, xref, 0)
            if not jpx:
                m.pdf_load_image(pdf, obj)
            else:
                space = m.pdf_dict_get(obj, m.PDF_ENUM_NAME_ColorSpace)
                if m.pdf_is_indirect(space) or not m.pdf_is_null(space):  # a reference to nothing is an error
                    m.pdf_load_colorspace(space)
            loads[xref] = None
        except Exception as exc:
            loads[xref] = str(exc) or type(exc).__name__
    return loads[xref]


def _pixel_keys(doc: pymupdf.Document, items: list) -> dict:
    """Pixel digest → item, for the items MuPDF can decode (one it cannot is matched to nothing)."""
    keys = {}
    for item in items:
        try:
            keys[pymupdf.Pixmap(doc, item[0]).digest] = item
        except Exception:
            pass
    return keys


def _block_keys(page: pymupdf.Page, numbers: set, by_size: dict, by_key: dict, pixels: Callable[[], dict | None],
                by_pixels: Callable[[], dict], by_object: dict) -> tuple[dict, dict]:
    """For the page's drawn image blocks (numbered as get_image_info numbers them): the twin each one is, and
    the pixel digest (as get_image_info(hashes=True) gives it) of each that is none, which is then matched by
    pixels as before (decoding the twins).

    A block drawing the very image MuPDF loaded for a twin (`by_object`: MuPDF keeps one loaded image per object
    while its store has room) is that twin: digests cannot tell apart the same samples under another palette,
    Decode array, colour key or ink, which two twins holding the same data (`pixels()`) sent all to pixels. Else
    the digest of its compressed data (`_image_key`) tells, or of its pixels."""
    m = pymupdf.mupdf
    matched, digests = {}, {}
    textpage = page.get_textpage(flags=pymupdf.TEXT_PRESERVE_IMAGES)  # kept: its blocks live in it
    for n, block in enumerate(textpage.this):
        if block.m_internal.type == m.FZ_STEXT_BLOCK_TEXT or n not in numbers:
            continue
        image = block.i_image()
        found = by_size.get((image.w(), image.h()))
        if found and len(found) == 1:
            continue
        item = by_object.get(image.m_internal_value(), (None,))[0] if found else None
        if item is not None:
            matched[n] = item
            continue
        keys = pixels()
        item = by_key.get(_image_key(image)) if found and keys is None else None
        if item is None:  # inline, or no compressed data: pixels tell
            digests[n] = _pixel_digest(image)
            item = (by_key if keys is None else keys).get(digests[n]) or (by_pixels().get(digests[n])
                                                                         if found else None)
        if item is not None:
            matched[n] = item
    return matched, digests


def _load(pdf, xref: int):
    """MuPDF's fz_image for an image object of the pdf_document (its dictionary read, its data kept compressed)."""
    m = pymupdf.mupdf
    return m.pdf_load_image(pdf, m.pdf_new_indirect(pdf, xref, 0))


def _image_key(image) -> bytes | None:
    """MD5 of an fz_image's compressed data with its size, components, depth, compression and colour space's
    name (17 bytes, so never a 16-byte pixel digest); None if MuPDF holds it decoded (JPEG 2000, say)."""
    m = pymupdf.mupdf
    data = m.fz_compressed_image_buffer(image)
    if not data.m_internal or not data.m_internal.buffer:
        return None
    space = image.m_internal.colorspace  # the same samples in another colour space (a spot ink) are another image
    name = m.fz_colorspace_name(m.FzColorspace(m.ll_fz_keep_colorspace(space))) if space else ""
    h = hashlib.md5(f"{image.w()}x{image.h()}/{image.n()}/{image.bpc()}/{data.m_internal.params.type}/{name}/".encode())
    h.update(m.FzBuffer(m.ll_fz_keep_buffer(data.m_internal.buffer)).fz_buffer_extract_copy())
    if image.m_internal.mask:  # the same data under another soft mask is another image
        mask = _image_key(m.FzImage(m.ll_fz_keep_image(image.m_internal.mask)))
        if mask is None:
            return None
        h.update(mask)
    return b"c" + h.digest()


def _pixel_digest(image) -> bytes:
    """MD5 of an fz_image's pixels at its own size, as get_image_info(hashes=True) computes it."""
    m = pymupdf.mupdf
    inf = m.FzIrect(pymupdf.FZ_MIN_INF_RECT, pymupdf.FZ_MIN_INF_RECT, pymupdf.FZ_MAX_INF_RECT, pymupdf.FZ_MAX_INF_RECT)
    pix, _, _ = m.fz_get_pixmap_from_image(image, inf, m.FzMatrix(image.w(), 0, 0, image.h(), 0, 0))
    return bytes(m.fz_md5_pixmap2(pix))


class _Near:
    """Boxes filed by rounded corner, to find those that are a given box (within 1 point) at once; `items`, if
    given, go with the boxes."""

    def __init__(self, boxes: list, items: list | None = None):
        self.keys: dict[tuple, dict] = {}  # rounded corner → {box: its items}: one box drawn often is one entry
        for b, item in zip(boxes, boxes if items is None else items):
            if math.isfinite(b[0] + b[1] + b[2] + b[3]):
                self.keys.setdefault((round(b[0]), round(b[1])), {}).setdefault(tuple(b), []).append(item)

    def _boxes(self, box):
        if not math.isfinite(box[0] + box[1] + box[2] + box[3]):
            return
        x, y = round(box[0]), round(box[1])
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for b, items in self.keys.get((x + dx, y + dy), {}).items():
                    if _same_box(box, b):
                        yield items

    def find(self, box) -> list:
        """The items of the boxes that are this box."""
        return [item for items in self._boxes(box) for item in items]

    def has(self, box) -> bool:
        return next(self._boxes(box), None) is not None


def _same_box(a, b, tol: float = 1.0) -> bool:
    return (abs(a[0] - b[0]) <= tol and abs(a[1] - b[1]) <= tol and abs(a[2] - b[2]) <= tol
            and abs(a[3] - b[3]) <= tol)


def _pixel_size(doc: pymupdf.Document, sizes: dict, item: tuple) -> tuple[int, int]:
    """An image's pixel size as MuPDF decodes it: a JPEG 2000's codestream size, else its dictionary's.
    Cached in sizes by xref."""
    if item[8] != "JPXDecode":
        return item[2], item[3]
    if item[0] not in sizes:
        try:
            sizes[item[0]] = _jpx_size(doc.xref_stream_raw(item[0]) or b"") or (item[2], item[3])
        except Exception:
            sizes[item[0]] = item[2], item[3]
    return sizes[item[0]]


def _problem(doc: pymupdf.Document, problems: dict, max_pixels: int, item: tuple) -> str:
    """Why MuPDF must not decode this image ("" if it may): more pixels than max_pixels, as its dictionary
    says or as its data would make MuPDF allocate (a JPEG 2000 codestream, a JBIG2 page or region), or
    a soft mask or stencil mask that large. Cached by xref."""
    xref = item[0]
    if xref not in problems:
        try:
            problems[xref] = _too_large(doc, xref, item[2], item[3], "embedded image", max_pixels)
            masks = [item[1]] if item[1] else []
            kind, value = doc.xref_get_key(xref, "Mask")
            if kind == "xref":
                masks.append(int(value.split()[0]))
            for mask in masks:
                if problems[xref]:
                    break
                w, h = (_int_key(doc, mask, key) for key in ("Width", "Height"))
                problems[xref] = _too_large(doc, mask, w, h, "embedded image's mask", max_pixels)
        except Exception:  # unreadable: decoding will say so
            problems[xref] = ""
    return problems[xref]


def _int_key(doc: pymupdf.Document, xref: int, key: str) -> int:
    kind, value = doc.xref_get_key(xref, key)
    try:
        return int(float(value)) if kind in ("int", "float") else 0
    except ValueError:
        return 0


def _too_large(doc: pymupdf.Document, xref: int, width: int, height: int, what: str, max_pixels: int) -> str:
    if width * height > max_pixels:
        return f"{what} too large: {width}x{height} pixels (max_pixels {max_pixels})"
    filters = doc.xref_get_key(xref, "Filter")[1]
    if "JPXDecode" in filters:
        w, h = _jpx_size(doc.xref_stream_raw(xref) or b"") or (0, 0)
        if w * h > max_pixels:
            return (f"{what} too large: {w}x{h} pixels in its JPEG 2000 data, {width}x{height} in the PDF "
                    f"(max_pixels {max_pixels})")
    elif "JBIG2Decode" in filters:
        data = doc.xref_stream_raw(xref) or b""
        kind, value = doc.xref_get_key(xref, "DecodeParms/JBIG2Globals")
        if kind == "xref":
            data = (doc.xref_stream_raw(int(value.split()[0])) or b"") + data
        w, h = _jbig2_size(data)
        if w * h > max_pixels:
            return (f"{what} too large: its JBIG2 data asks for {w}x{h} pixels, {width}x{height} in the PDF "
                    f"(max_pixels {max_pixels})")
    return ""


def _jpx_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a JPEG 2000 codestream's SIZ marker (after SOC), None if not found."""
    at = data.find(b"\xff\x4f\xff\x51")
    if at < 0 or len(data) < at + 24:
        return None
    x1, y1, x0, y0 = struct.unpack_from(">IIII", data, at + 8)
    return max(x1 - x0, 0), max(y1 - y0, 0)


JBIG2_REGIONS = {4, 6, 7, 20, 22, 23, 36, 38, 39, 40, 42, 43}  # segment types that start with region info


def _jbig2_size(data: bytes) -> tuple[int, int]:
    """The largest bitmap a JBIG2 stream (embedded organisation, as in PDF) makes its decoder allocate, as
    (width, height): its page (page information segment; a page of unknown height grows to its lowest
    stripe or region), any region, a halftone grid or a pattern dictionary's collective bitmap. Read from
    the segment headers alone; reading stops at a segment of unknown length. (0, 0) if none is found."""
    most, pages = (0, 0), {}
    pos, n = 0, len(data)
    while pos + 11 <= n:
        number, flags, refs = struct.unpack_from(">IBB", data, pos)
        pos += 5
        count = refs >> 5
        if count == 7:  # long form: 29-bit count, then a retention bit per referred segment and this one
            count = struct.unpack_from(">I", data, pos)[0] & 0x1FFFFFFF
            pos += 4 + (count + 8) // 8
        else:
            pos += 1
        pos += count * (1 if number <= 256 else 2 if number <= 65536 else 4) + (4 if flags & 0x40 else 1)
        if pos + 4 > n:
            break
        length = struct.unpack_from(">I", data, pos)[0]
        pos += 4
        body, kind = data[pos:pos + min(length, 32)], flags & 0x3F
        sizes = []
        if kind == 48 and len(body) >= 8:  # page information: width, height (0xffffffff: striped, unknown)
            w, h = struct.unpack_from(">II", body)
            pages[number] = [w, 0 if h == 0xFFFFFFFF else h, h == 0xFFFFFFFF]
            if len(body) >= 19 and h == 0xFFFFFFFF:
                pages[number][1] = struct.unpack_from(">H", body, 17)[0] & 0x7FFF  # first stripe
            sizes.append(tuple(pages[number][:2]))
        elif kind in JBIG2_REGIONS and len(body) >= 16:
            w, h, x, y = struct.unpack_from(">IIII", body)
            sizes.append((w, h))
            if kind in (20, 22, 23) and len(body) >= 26:  # halftone: its grid of gray values
                sizes.append(struct.unpack_from(">II", body, 18))
            for page in pages.values():
                if page[2]:
                    page[1] = max(page[1], y + h)
                    sizes.append(tuple(page[:2]))
        elif kind == 16 and len(body) >= 7:  # pattern dictionary: all patterns side by side
            pw, ph, gray = struct.unpack_from(">BBI", body, 1)
            sizes.append(((gray + 1) * pw, ph))
        elif kind == 50 and len(body) >= 4:  # end of stripe: a page of unknown height grows to this row
            row = struct.unpack_from(">I", body)[0]
            for page in pages.values():
                if page[2]:
                    page[1] = max(page[1], row + 1)
                    sizes.append(tuple(page[:2]))
        for size in sizes:
            if size[0] * size[1] > most[0] * most[1]:
                most = size
        if length == 0xFFFFFFFF:
            break
        pos += length
    return most
