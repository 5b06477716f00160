"""PDF source: every embedded image once (with all its pages and positions), plus vector figures rendered.

Rules, in the order they apply:
- Embedded images are decoded by MuPDF (`Pixmap(doc, xref)`), so Decode arrays, ICC/CMYK (including
  inverted Adobe CMYK JPEGs), Indexed and colour-key masks come out as on the page. CMYK and other
  non-gray/non-RGB colour spaces are converted to RGB; a soft mask (/SMask) or stencil /Mask becomes
  the alpha channel (output mode RGBA/LA: composite on white to see the page). Plain gray/RGB JPEGs
  with nothing on top are decoded by Pillow instead (same pixels, twice as fast). A 1-bit stencil
  image drawn on its own (some scans) comes out as black on white (mode L). The image is turned and
  flipped the way its placement draws it (quarter turns, mirrors, page /Rotate).
- The same image is reported once: by xref, and by content (raw stream digest) for copies stored under
  different xrefs. `metadata["pages"]` lists every page it is drawn on.
- Decoration: an image is skipped when its shorter pixel side is below `limits.min_side`, or when even
  its largest placement is shorter than `min_side / 2` points (about 11 mm at 64). Skips are counted in
  one `ItemError(skipped=True)` per PDF.
- Figures: clusters of vector drawings (paths, shadings) whose box is at least `min_side / 2` points
  on the shorter side and `min_side` on the longer, not mostly covered by an embedded image, not
  just thin rules (tables, underlines) and not mostly words (text boxes) are rendered at 150 dpi
  (`rendered: true`), with the short text lines next to them (axis labels). Identical vector figures
  on many pages (vector logos) are rendered once.
- Inline images (no xref) are rendered from their page region at about their own resolution, once
  per distinct image.
- Caps: `max_pdf_pages` pages (a skipped note says how many were left), `max_images_per_input`
  images, `max_pixels` per embedded image (checked before decoding).
"""

from __future__ import annotations

import hashlib
import io
import re
import sys
import threading
import warnings
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Iterator

import numpy as np
from PIL import Image

# PyMuPDF 2 imports its layout-analysis package when installed (it is a dependency) and loads ONNX models
# on import: about 60 MB and extra threads in every process, for text layout this source never asks for.
# Unless the caller imported pymupdf first, it is left out.
if "pymupdf" not in sys.modules:
    sys.modules.setdefault("pymupdf.layout", None)
import pymupdf  # noqa: E402

from .base import Blob, Context, ImageItem, Item, ItemError, SourcePlugin
from .files import draft_jpeg, stored_size
from .registry import register

_MUPDF_LOCK = threading.RLock()
pymupdf.TOOLS.mupdf_display_errors(False)
pymupdf.TOOLS.mupdf_display_warnings(False)

RENDER_DPI = 150  # figures are rendered at this resolution ...
RENDER_MAX_SIDE = 2000  # ... unless that makes the longer side exceed this many pixels
CLUSTER_TOL = 6.0  # points: drawings closer than this belong to the same figure
MAX_CLUSTER_RECTS = 20_000  # pages with more drawing pieces are clustered on a coarser grid
THIN = 2.0  # points: a drawing thinner than this (and 4x as long) is a rule or table line
TEXT_MARGIN = 8.0  # points: short text this close to a figure is part of it (axis labels)
FILTERS = {
    "DCTDecode": "JPEG", "JPXDecode": "JPEG2000", "JBIG2Decode": "JBIG2", "CCITTFaxDecode": "CCITT",
    "FlateDecode": "FLATE", "LZWDecode": "LZW", "RunLengthDecode": "RLE", "": "RAW",
}


def accepts(head: bytes, blob: Blob) -> bool:
    return re.search(rb"%PDF-\d", head[:1024]) is not None


@dataclass
class _Image:
    """One distinct embedded image and every place it is drawn."""

    xref: int
    smask: int
    width: int
    height: int
    filter: str
    colorspace: str
    pages: list[int] = field(default_factory=list)
    first_page: int = 0
    bbox: tuple = ()
    transform: tuple = ()
    max_short_side: float = 0.0  # points, over all placements


@dataclass
class _Pending:
    """An embedded JPEG whose header Pillow has read; `resolve` decodes it without MuPDF (so outside the
    lock), or, when Pillow cannot, lets MuPDF decide under the lock while the document is still open."""

    image: Image.Image
    finish: Callable[[Image.Image], Item]
    fallback: Callable[[], Item]

    def resolve(self) -> Item:
        try:
            self.image.load()
        except Exception:
            with _MUPDF_LOCK:
                return self.fallback()
        return self.finish(self.image)


@dataclass
class _Figure:
    page: int
    rect: pymupdf.Rect
    pages: list[int]
    inline: bool = False
    native: tuple = ()  # pixel size of an inline image


def open_pdf(blob: Blob, ctx: Context) -> Iterator[Item]:
    """MuPDF is not thread-safe: every step of the extraction runs under one process-wide lock,
    released while the caller handles each item, so PDFs in several threads take turns. Embedded JPEGs,
    most of the work in scanned documents, are decoded by Pillow outside the lock, so those overlap."""
    steps = _open_pdf(blob, ctx)
    try:
        while True:
            with _MUPDF_LOCK:
                item = next(steps, None)
            if item is None:
                return
            yield item.resolve() if isinstance(item, _Pending) else item
    finally:
        with _MUPDF_LOCK:
            steps.close()


def _open_pdf(blob: Blob, ctx: Context) -> Iterator[Item]:
    origin = blob.origin
    try:
        doc = pymupdf.open(stream=blob.data, filetype="pdf")
    except Exception as exc:
        yield ItemError(origin, "", f"broken PDF that could not be repaired: {_short(exc)}")
        return
    try:
        if doc.needs_pass and not doc.authenticate(""):
            yield ItemError(origin, "", "encrypted PDF, password required")
            return
        if doc.page_count == 0:
            yield ItemError(origin, "", "broken PDF: no readable pages")
            return
        yield from _extract(doc, origin, ctx)
    finally:
        doc.close()
        pymupdf.TOOLS.reset_mupdf_warnings()


def _extract(doc: pymupdf.Document, origin: str, ctx: Context) -> Iterator[Item]:
    limits = ctx.limits
    npages = min(doc.page_count, limits.max_pdf_pages)
    images: dict[int, _Image] = {}  # canonical xref -> image
    by_content: dict[str, int] = {}  # content digest -> canonical xref
    canonical: dict[int, int] = {}  # any xref -> canonical xref
    figures: dict[int, list[_Figure]] = {}  # page -> figures first seen there
    by_shape: dict[str, _Figure] = {}
    errors: list[ItemError] = []

    # Pass 1: where every image and figure is, so each is reported once with all its pages.
    for pno in range(npages):
        try:
            page = doc.load_page(pno)
            log = page.get_bboxlog()
            has_images = any(kind in ("fill-image", "fill-imgmask") for kind, _ in log) or page.get_images()
            placed = _place_images(page, log) if has_images else []
        except Exception as exc:
            errors.append(ItemError(origin, f"page {pno + 1}", f"could not read page: {_short(exc)}"))
            continue
        image_rects = []  # unrotated page space, like the bbox log
        rot = page.rotation_matrix  # to the page as shown; metadata and clips use that space
        for info, item in placed:
            image_rects.append(pymupdf.Rect(info["bbox"]))
            rect = pymupdf.Rect(info["bbox"]) * rot
            if item is None:  # inline image: no xref to decode, so render its region (once)
                key = f"inline:{info.get('digest', b'').hex()}:{rect.width:.0f}x{rect.height:.0f}"
                seen = by_shape.get(key) if info.get("digest") else None
                if seen is not None:
                    if pno + 1 not in seen.pages:
                        seen.pages.append(pno + 1)
                    continue
                fig = by_shape[key] = _Figure(pno, rect, [pno + 1], inline=True,
                                              native=(info["width"], info["height"]))
                figures.setdefault(pno, []).append(fig)
                continue
            xref = canonical.get(item[0])
            if xref is None:
                xref = canonical[item[0]] = _canonical(doc, item, images, by_content)
            img = images[xref]
            if pno + 1 not in img.pages:
                img.pages.append(pno + 1)
            if not img.bbox:
                img.first_page, img.bbox = pno + 1, tuple(rect)
                img.transform = tuple(pymupdf.Matrix(info["transform"]) * rot)
            img.max_short_side = max(img.max_short_side, min(rect.width, rect.height))
        try:
            found = _figure_rects(page, log, image_rects, limits.min_side)
        except Exception as exc:
            errors.append(ItemError(origin, f"page {pno + 1}", f"could not look for figures: {_short(exc)}"))
            found = []
        for rect, sig in found:
            rect = rect * rot
            seen = by_shape.get(sig)
            if seen is not None:
                if pno + 1 not in seen.pages:
                    seen.pages.append(pno + 1)
                continue
            fig = by_shape[sig] = _Figure(pno, rect, [pno + 1])
            figures.setdefault(pno, []).append(fig)

    # Pass 2: decode and render, page by page.
    first_on: dict[int, list[_Image]] = {}
    for img in images.values():
        if img.bbox:
            first_on.setdefault(img.first_page, []).append(img)
    yield from errors
    floor = limits.min_side
    yielded, skipped = 0, [0]
    for pno in range(npages):
        for item in _page_items(doc, pno, first_on.get(pno + 1, []), figures.get(pno, []), origin, limits, skipped):
            yield item
            if isinstance(item, (ImageItem, _Pending)):
                yielded += 1
                if yielded >= limits.max_images_per_input:
                    yield from _cap_note(origin, limits.max_images_per_input, skipped[0], floor)
                    return
    skipped = skipped[0]
    if skipped:
        yield _skip_note(origin, skipped, floor)
    if doc.page_count > npages:
        yield ItemError(origin, "", f"read only the first {npages} of {doc.page_count} pages (max_pdf_pages)",
                        skipped=True)


def _page_items(doc: pymupdf.Document, pno: int, images: list[_Image], figures: list[_Figure], origin: str,
                limits, skipped: list[int]) -> Iterator[Item]:
    """One page's images (decoded) and figures (rendered), in order; counts decorations in skipped[0]."""
    floor = limits.min_side
    n_img = n_fig = 0
    for img in images:
        if min(img.width, img.height) < floor or img.max_short_side < floor / 2:
            skipped[0] += 1
            continue
        n_img += 1
        yield _image_item(doc, img, origin, f"page {pno + 1}, image {n_img}", limits.max_pixels,
                          limits.decode_side)
    for fig in figures:
        if fig.inline:
            if min(fig.native) < floor or min(fig.rect.width, fig.rect.height) < floor / 2:
                skipped[0] += 1
                continue
            n_img += 1
            locator = f"page {pno + 1}, image {n_img} (inline, rendered)"
        else:
            n_fig += 1
            locator = f"page {pno + 1}, figure {n_fig} (rendered)"
        yield _render(doc, fig, origin, locator)


def _cap_note(origin: str, cap: int, skipped: int, floor: int) -> Iterator[ItemError]:
    if skipped:
        yield _skip_note(origin, skipped, floor)
    yield ItemError(origin, "", f"stopped after {cap} images (max_images_per_input)", skipped=True)


def _skip_note(origin: str, skipped: int, floor: int) -> ItemError:
    noun = "image" if skipped == 1 else "images"
    return ItemError(origin, "", f"skipped {skipped} {noun} smaller than {floor} px (decoration)", skipped=True)


def _place_images(page: pymupdf.Page, log: list) -> list[tuple[dict, tuple | None]]:
    """Each image drawn on the page (info from MuPDF's device) with its get_images() item, None if inline.

    Matching is by pixel size; only when a page has two images of the same size does it fall back to
    PyMuPDF's pixel digests, which decode the images. Smooth shadings, which the text device also
    reports as images, are left out: only boxes the bbox log saw as images count.
    """
    drawn = [r for kind, r in log if kind in ("fill-image", "fill-imgmask")]
    infos = [i for i in page.get_image_info() if any(_same_box(i["bbox"], r) for r in drawn)]
    items = page.get_images(full=True)
    by_size: dict[tuple, list] = {}
    for item in items:
        by_size.setdefault((item[2], item[3]), []).append(item)
    if any(len(v) > 1 for v in by_size.values()):
        by_xref = {item[0]: item for item in items}
        return [(info, by_xref.get(info.get("xref", 0))) for info in page.get_image_info(xrefs=True)
                if any(_same_box(info["bbox"], r) for r in drawn)]
    out = []
    for info in infos:
        found = by_size.get((info["width"], info["height"]))
        out.append((info, found[0] if found else None))
    if any(item is None for _, item in out):  # inline images: their pixel digest tells repeats apart
        digests = {i["number"]: i["digest"] for i in page.get_image_info(hashes=True)}
        for info, item in out:
            if item is None:
                info["digest"] = digests.get(info["number"], b"")
    return out


def _same_box(a, b, tol: float = 1.0) -> bool:
    return all(abs(u - v) <= tol for u, v in zip(a, b))


def _canonical(doc: pymupdf.Document, item: tuple, images: dict, by_content: dict) -> int:
    """The xref that stands for this image's content (first one seen with the same bytes)."""
    xref, smask, width, height = item[0], item[1], item[2], item[3]
    if smask and doc.xref_get_key(xref, "SMask")[0] == "null" and doc.xref_get_key(xref, "Mask")[0] != "xref":
        smask = 0
    h = hashlib.md5(f"{width}x{height}/{item[4]}/{item[5]}/{item[6]}/{item[8]}/".encode())
    try:
        h.update(doc.xref_get_key(xref, "Decode")[1].encode())
        h.update(doc.xref_stream_raw(xref) or b"")
        if smask:
            h.update(doc.xref_stream_raw(smask) or b"")
    except Exception:
        h.update(str(xref).encode())  # unreadable stream: keep it apart, decoding will report it
    digest = h.hexdigest()
    if digest in by_content:
        return by_content[digest]
    by_content[digest] = xref
    images[xref] = _Image(xref, smask, width, height, FILTERS.get(item[8], item[8] or "RAW"), item[5])
    return xref


def _image_item(doc: pymupdf.Document, img: _Image, origin: str, locator: str, max_pixels: int,
                decode_side: int | None = None) -> Item | _Pending:
    if img.width * img.height > max_pixels:
        return ItemError(origin, locator, f"embedded image too large: {img.width}x{img.height} pixels "
                                          f"(max_pixels {max_pixels})")
    image = _plain_jpeg(doc, img, decode_side)
    if image is not None:
        return _Pending(image, partial(_finish, img, origin, locator), partial(_mupdf_item, doc, img, origin, locator))
    return _mupdf_item(doc, img, origin, locator)


def _mupdf_item(doc: pymupdf.Document, img: _Image, origin: str, locator: str) -> Item:
    pymupdf.TOOLS.store_shrink(100)  # decode afresh: a cached decode would hide MuPDF's warnings
    # MuPDF drops a warning equal to the one before (counting repeats); flushing lets this decode's through
    pymupdf.mupdf.fz_flush_warnings()
    pymupdf.TOOLS.reset_mupdf_warnings()
    try:
        image = _decode(doc, img.xref, img.smask)
    except Exception as exc:
        return ItemError(origin, locator, f"could not decode embedded image (xref {img.xref}): {_short(exc)}")
    problem = _decode_problem(pymupdf.TOOLS.mupdf_warnings())
    if problem:  # MuPDF pads broken or cut-off data with black: that is not the image
        return ItemError(origin, locator, f"could not decode embedded image (xref {img.xref}): {problem}")
    return _finish(img, origin, locator, image)


def _finish(img: _Image, origin: str, locator: str, image: Image.Image) -> ImageItem:
    decoded = image.size
    image = _orient(image, img.transform)
    meta = {"page": img.first_page, "bbox": [round(v, 2) for v in img.bbox], "xref": img.xref,
            "pages": list(img.pages), "colorspace": img.colorspace, "smask": bool(img.smask)}
    return ImageItem(origin, locator, image, f"PDF/{img.filter}", meta,
                     full_size=stored_size((img.width, img.height), decoded, image.size))


def _plain_jpeg(doc: pymupdf.Document, img: _Image, decode_side: int | None = None) -> Image.Image | None:
    """A gray or RGB JPEG with nothing on top (no mask, Decode array or parameters), opened by Pillow
    (header read, pixels decoded later by `_Pending.resolve`).

    About twice as fast as MuPDF's decoder for the same pixels, and with `decode_side` a big one decodes
    at 1/2–1/8 scale (both sides ≥ decode_side). Anything else, or any doubt: None.
    """
    if img.filter != "JPEG" or img.smask:
        return None
    try:
        if any(doc.xref_get_key(img.xref, key)[0] != "null" for key in ("Decode", "DecodeParms", "Mask")):
            return None
        with warnings.catch_warnings():  # size is capped by max_pixels already; stay quiet
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(doc.xref_stream_raw(img.xref)))
            if image.format != "JPEG" or image.mode not in ("L", "RGB") or image.size != (img.width, img.height):
                return None
            draft_jpeg(image, decode_side)
        return image
    except Exception:  # truncated or odd: MuPDF decides and reports
        return None


def _decode_problem(warnings: str) -> str:
    lines = [w.strip() for w in warnings.splitlines() if w.strip()]
    bad = [w for w in lines if "error" in w.lower()] or [
        w for w in lines if "truncated" in w.lower() or "premature end" in w.lower()]
    return _short(Exception(bad[0])) if bad else ""


def _decode(doc: pymupdf.Document, xref: int, smask: int) -> Image.Image:
    pix = pymupdf.Pixmap(doc, xref)
    if pix.colorspace is None:  # a stencil mask drawn on its own: ink where alpha is set
        alpha = Image.frombytes("L", (pix.width, pix.height), pix.samples)
        return Image.eval(alpha, lambda a: 255 - a)
    name = pix.colorspace.name
    keep = (pix.n - pix.alpha == 3 and "RGB" in name) or (pix.n - pix.alpha == 1 and "Gray" in name)
    if not keep:  # CMYK, Lab, Separation, DeviceN, ...
        pix = pymupdf.Pixmap(pymupdf.csRGB, pix)
    resize_mask = None
    if smask:
        mask = pymupdf.Pixmap(doc, smask)
        if pix.alpha:
            pix = pymupdf.Pixmap(pix, 0)
        if (mask.width, mask.height) == (pix.width, pix.height):
            pix = pymupdf.Pixmap(pix, mask)
        else:
            resize_mask = Image.frombytes("L", (mask.width, mask.height), mask.samples)
    return _to_pil(pix, resize_mask)


def _to_pil(pix: pymupdf.Pixmap, mask: Image.Image | None = None) -> Image.Image:
    size = (pix.width, pix.height)
    gray = pix.n - pix.alpha == 1
    if pix.alpha:  # MuPDF's alpha is premultiplied
        return Image.frombytes("RGBa", size, _gray_to_rgb(pix).samples if gray else pix.samples).convert("RGBA")
    image = Image.frombytes("L" if gray else "RGB", size, pix.samples)
    if mask is not None:
        image = image.convert("LA" if gray else "RGBA")
        image.putalpha(mask.resize(size, Image.Resampling.BILINEAR))
    return image


def _gray_to_rgb(pix: pymupdf.Pixmap) -> pymupdf.Pixmap:
    return pymupdf.Pixmap(pymupdf.csRGB, pix)


def _orient(image: Image.Image, transform: tuple) -> Image.Image:
    """Turn/flip the image the way its placement matrix draws it (page y grows downwards)."""
    if not transform:
        return image
    a, b, c, d = transform[:4]
    T = Image.Transpose
    if abs(a) + abs(d) >= abs(b) + abs(c):  # upright or mirrored
        ops = {(True, True): None, (False, True): T.FLIP_LEFT_RIGHT,
               (True, False): T.FLIP_TOP_BOTTOM, (False, False): T.ROTATE_180}[(a > 0, d > 0)]
    else:  # quarter turn: image columns run along the page's y axis
        ops = {(True, True): T.TRANSPOSE, (True, False): T.ROTATE_270,
               (False, True): T.ROTATE_90, (False, False): T.TRANSVERSE}[(b > 0, c > 0)]
    return image.transpose(ops) if ops is not None else image


def _figure_rects(page: pymupdf.Page, log: list, image_rects: list, floor: int) -> list[tuple]:
    """Regions of vector drawings that look like figures, each with a shape signature.

    Boxes are plain (x0, y0, x1, y1) tuples in unrotated page space, like the bbox log.
    """
    page_rect = page.rect * page.derotation_matrix
    ink = _ink(page, log, abs(page_rect))
    if not ink:
        return []
    images = [tuple(r) for r in image_rects]
    out = []
    words = lines = None
    for box, members in _cluster(ink, CLUSTER_TOL):
        w, h = box[2] - box[0], box[3] - box[1]
        if min(w, h) < floor / 2 or max(w, h) < floor:
            continue
        if all(_is_rule(m) for m in members):
            continue  # only rules: table grids, underlines, frames made of lines
        if _coverage(box, images) >= 0.5:
            continue  # an embedded image with marks on it: the image is reported already
        if words is None:  # word boxes, not the bbox log's text boxes: TeX text objects can span a page
            words, lines = _words_and_lines(page)
        if _coverage(box, words) > 0.35:
            continue  # a shaded or framed text box
        region = pymupdf.Rect(_with_labels(box, lines)) & page_rect
        out.append((region, _signature(tuple(region), log)))
    return out


def _is_rule(box: tuple) -> bool:
    """Long and thin, like a table line or an underline (a dot of a scatter plot is not)."""
    w, h = box[2] - box[0], box[3] - box[1]
    return min(w, h) <= THIN and max(w, h) >= 4 * THIN


def _ink(page: pymupdf.Page, log: list, page_area: float) -> list[tuple]:
    """Boxes of visible vector drawings, shadings and stencil masks, without page backgrounds.

    Path boxes come from get_cdrawings (exact geometry plus half the line width; the bbox log pads
    strokes by the miter limit). Pages with very many paths use the cheaper bbox log instead.
    """
    ink = [tuple(r) for kind, r in log if kind == "fill-imgmask"]  # 1-bit scans: keep any size
    n_paths = sum(1 for kind, _ in log if kind in ("fill-path", "stroke-path"))
    paths = [tuple(r) for kind, r in log if kind == "fill-shade"]
    if n_paths > MAX_CLUSTER_RECTS:
        paths += [tuple(r) for kind, r in log if kind in ("fill-path", "stroke-path")]
    elif n_paths:
        for d in page.get_cdrawings():
            x0, y0, x1, y1 = d["rect"]
            stroked = "s" in d["type"] and d.get("color") is not None and (d.get("stroke_opacity") or 0) > 0
            filled = ("f" in d["type"] and d.get("fill") is not None and (d.get("fill_opacity") or 0) > 0
                      and min(d["fill"]) < 0.97)  # white fills are invisible on paper
            if stroked:
                half = (d.get("width") or 1.0) / 2
                paths.append((x0 - half, y0 - half, x1 + half, y1 + half))
            elif filled:
                paths.append((x0, y0, x1, y1))
    for r in paths:
        w, h = r[2] - r[0], r[3] - r[1]
        if w < 0 or h < 0 or (w == 0 and h == 0):
            continue
        if w * h >= 0.5 * page_area:  # page backgrounds and page frames
            continue
        ink.append(r)
    return ink


def _cluster(rects: list, tol: float) -> list[tuple]:
    """Group boxes into (bounding box, members): a box joins a group whose bounding box it touches
    (within tol); groups whose boxes then touch are merged, until nothing changes."""
    if len(rects) > MAX_CLUSTER_RECTS:  # e.g. dense scatter plots: snap to a grid and drop repeats
        s = 4.0
        rects = [(x0 * s, y0 * s, x1 * s, y1 * s) for x0, y0, x1, y1 in
                 {(r[0] // s, r[1] // s, r[2] // s + 1, r[3] // s + 1) for r in rects}]
    groups = [[r, [r]] for r in rects]
    while True:
        merged = _sweep(groups, tol)
        if len(merged) == len(groups):
            return [(box, members) for box, members in merged]
        groups = merged


def _sweep(groups: list, tol: float) -> list:
    """One pass along x: each group joins the live groups its box touches. Work grows with the number
    of groups side by side at one x, not with their square."""
    out: list = []
    active: list = []
    for box, members in sorted(groups, key=lambda g: g[0][0]):
        active = [g for g in active if g[0][2] + tol >= box[0]]
        hits = [g for g in active if g[0][1] - tol <= box[3] and box[1] - tol <= g[0][3]]
        if not hits:
            group = [box, list(members)]
            out.append(group)
            active.append(group)
            continue
        main = hits[0]
        boxes = [main[0], box]
        main[1].extend(members)
        for other in hits[1:]:
            boxes.append(other[0])
            main[1].extend(other[1])
            other[1] = None  # absorbed
        main[0] = _union(boxes)
        active = [g for g in active if g[1] is not None]
    return [g for g in out if g[1] is not None]


def _union(boxes: list) -> tuple:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _words_and_lines(page: pymupdf.Page) -> tuple[list, list]:
    words, lines = [], {}
    for x0, y0, x1, y1, _, block, line, _ in page.get_text("words"):
        words.append((x0, y0, x1, y1))
        lines.setdefault((block, line), []).append((x0, y0, x1, y1))
    return words, [_union(v) for v in lines.values()]


def _coverage(box: tuple, boxes: list) -> float:
    """Share of box covered by the union of boxes (on a 1-point grid)."""
    w, h = max(int(box[2] - box[0] + 1), 1), max(int(box[3] - box[1] + 1), 1)
    grid = np.zeros((h, w), dtype=bool)
    for b in boxes:
        x0, y0 = max(int(b[0] - box[0]), 0), max(int(b[1] - box[1]), 0)
        x1, y1 = min(int(b[2] - box[0] + 1), w), min(int(b[3] - box[1] + 1), h)
        if x1 > x0 and y1 > y0:
            grid[y0:y1, x0:x1] = True
    return float(grid.mean())


def _with_labels(box: tuple, lines: list) -> tuple:
    """The figure box grown by short text lines within TEXT_MARGIN of it (tick and axis labels).

    Lines as wide as most of the figure are body text or captions and stay out."""
    m = TEXT_MARGIN
    x0, y0, x1, y1 = box
    out = [box]
    for t in lines:
        near = t[0] < x1 + m and x0 - m < t[2] and t[1] < y1 + m and y0 - m < t[3]
        if near and t[2] - t[0] <= 0.6 * (x1 - x0) and t[3] - t[1] <= 0.6 * (y1 - y0):
            out.append(t)
    return _union(out)


def _signature(region: tuple, log: list) -> str:
    """What is drawn inside the region, relative to its corner: equal for a repeated vector logo."""
    x0, y0, x1, y1 = region
    parts = sorted(f"{kind}:{r[0] - x0:.1f},{r[1] - y0:.1f},{r[2] - x0:.1f},{r[3] - y0:.1f}"
                   for kind, r in log if r[0] >= x0 and r[1] >= y0 and r[2] <= x1 and r[3] <= y1)
    return hashlib.md5(f"{x1 - x0:.1f}x{y1 - y0:.1f};{';'.join(parts)}".encode()).hexdigest()


def _render(doc: pymupdf.Document, fig: _Figure, origin: str, locator: str) -> Item:
    rect = fig.rect
    if fig.inline:  # at the image's own resolution, within sane bounds
        dpi = min(300.0, max(72.0, 72.0 * fig.native[0] / max(rect.width, 1.0)))
    else:
        dpi = RENDER_DPI
    dpi = min(dpi, 72.0 * RENDER_MAX_SIDE / max(rect.width, rect.height, 1.0))
    try:
        pix = doc.load_page(fig.page).get_pixmap(clip=rect, dpi=max(int(dpi), 1), alpha=False)
        image = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
    except Exception as exc:
        return ItemError(origin, locator, f"could not render region: {_short(exc)}")
    meta = {"page": fig.page + 1, "bbox": [round(v, 2) for v in rect], "pages": list(fig.pages),
            "rendered": True, "dpi": int(dpi)}
    if fig.inline:
        meta["inline"] = True
    return ImageItem(origin, locator, image, "PDF/rendered", meta)


def _short(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


register(SourcePlugin(name="pdf", accepts=accepts, open=open_pdf, priority=20))
