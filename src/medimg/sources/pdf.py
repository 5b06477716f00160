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
  on many pages (vector logos) are rendered once. Only what lies on the visible page (CropBox) counts.
- Inline images (no xref) are rendered from their page region at about their own resolution, once
  per distinct image.
- Caps: `max_pdf_pages` pages (a skipped note says how many were left), `max_images_per_input`
  images, `max_pixels` per embedded image (checked before decoding against the largest size its data
  asks for: the dictionary's, a JPEG 2000 codestream's, a JBIG2 page or region, its /SMask or /Mask)
  and per inline image. A page that makes MuPDF draw more than `PAGE_MAX_STEPS` times (nested form
  XObjects) is not searched for figures; its images are listed from its resources. A region over an
  image too large to decode is not rendered; one drawn over very often (`RENDER_MAX_PAINT`) is rendered
  at a lower dpi. `PDF_SECONDS` of MuPDF work per PDF (half of it for finding, then decoding and
  rendering), checked between steps.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import struct
import sys
import threading
import time
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
from pymupdf import mupdf  # noqa: E402

from .base import Blob, Context, ImageItem, Item, ItemError, SourcePlugin
from .files import draft_jpeg, stored_size
from .registry import register


class _TurnLock:
    """A reentrant lock handed over in the order threads ask for it: a plain lock lets the thread that just
    let go take it straight back, so a PDF pausing between pages would not let the others' steps in."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._tickets = self._serving = 0
        self._gone: set[int] = set()  # tickets whose threads stopped waiting (KeyboardInterrupt)
        self._owner, self._depth = None, 0

    def __enter__(self):
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return self
            ticket = self._tickets
            self._tickets += 1
            try:
                while ticket != self._serving:
                    self._cond.wait()
            except BaseException:
                if ticket == self._serving:
                    self._pass_on()
                else:
                    self._gone.add(ticket)
                raise
            self._owner, self._depth = me, 1
        return self

    def __exit__(self, *exc):
        with self._cond:
            self._depth -= 1
            if not self._depth:
                self._owner = None
                self._pass_on()

    def _pass_on(self) -> None:
        self._serving += 1
        while self._serving in self._gone:
            self._gone.discard(self._serving)
            self._serving += 1
        self._cond.notify_all()


_MUPDF_LOCK = _TurnLock()
pymupdf.TOOLS.mupdf_display_errors(False)
pymupdf.TOOLS.mupdf_display_warnings(False)

RENDER_DPI = 150  # figures are rendered at this resolution ...
RENDER_MAX_SIDE = 2000  # ... unless that makes the longer side exceed this many pixels
CLUSTER_TOL = 6.0  # points: drawings closer than this belong to the same figure
MAX_CLUSTER_RECTS = 20_000  # pages with more drawing pieces are clustered on a coarser grid
MAX_SWEEPS = 32  # clustering passes; more are needed only by contrived layouts (each pass merges what touches)
THIN = 2.0  # points: a drawing thinner than this (and 4x as long) is a rule or table line
PAGE_MAX_STEPS = 200_000  # drawing calls (paths, text, images, clips: a form XObject is one) MuPDF may make for
# one page while it is read; past this (nested forms drawn millions of times) its figures are not looked for
PDF_SECONDS = 120.0  # MuPDF work on one PDF, waiting for another PDF's turn not counted; pass 1 gets half
RENDER_MAX_PAINT = 1e10  # pixels painted (every drawing over a region, by its box) for one render; past this the
RENDER_MIN_DPI = 24  # region is rendered at a lower dpi, and below this one not at all
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
    bbox: tuple = ()  # empty while no placement is known (a page too complex to read lists its images only)
    transform: tuple = ()
    max_short_side: float = 0.0  # points, over all placements
    problem: str = ""  # why it must not be decoded (too large)


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
    paint: float = 0.0  # square points painted over the region (every drawing's box), for the render's cost


class _Clock:
    """Seconds of MuPDF work on one PDF: counted while it holds the lock, not while it waits for it."""

    def __init__(self):
        self.spent, self.since = 0.0, None

    def __enter__(self):
        self.since = time.monotonic()

    def __exit__(self, *exc):
        self.spent += time.monotonic() - self.since
        self.since = None

    def used(self) -> float:
        return self.spent + (time.monotonic() - self.since if self.since is not None else 0.0)


_PAUSE = object()  # yielded between pages of pass 1: open_pdf lets go of the lock there


def open_pdf(blob: Blob, ctx: Context) -> Iterator[Item]:
    """MuPDF is not thread-safe: every step of the extraction runs under one process-wide lock,
    released while the caller handles each item and between pages, so PDFs in several threads take
    turns. Embedded JPEGs, most of the work in scanned documents, are decoded by Pillow outside the
    lock, so those overlap."""
    clock = _Clock()
    steps = _open_pdf(blob, ctx, clock)
    try:
        while True:
            with _MUPDF_LOCK, clock:
                item = next(steps, None)
            if item is None:
                return
            if item is _PAUSE:
                continue
            yield item.resolve() if isinstance(item, _Pending) else item
    finally:
        with _MUPDF_LOCK:
            steps.close()


def _open_pdf(blob: Blob, ctx: Context, clock: _Clock) -> Iterator[Item]:
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
        try:
            count = doc.page_count
        except Exception as exc:  # e.g. a page tree claiming a billion pages
            yield ItemError(origin, "", f"broken PDF: unreadable page tree: {_short(exc)}")
            return
        if count == 0:
            yield ItemError(origin, "", "broken PDF: no readable pages")
            return
        yield from _extract(doc, count, origin, ctx, clock)
    finally:
        doc.close()
        pymupdf.TOOLS.reset_mupdf_warnings()


def _extract(doc: pymupdf.Document, count: int, origin: str, ctx: Context, clock: _Clock) -> Iterator[Item]:
    limits = ctx.limits
    npages = min(count, limits.max_pdf_pages)
    images: dict[int, _Image] = {}  # canonical xref -> image
    by_content: dict[str, int] = {}  # content digest -> canonical xref
    canonical: dict[int, int] = {}  # any xref -> canonical xref
    figures: dict[int, list[_Figure]] = {}  # page -> figures first seen there
    by_shape: dict[str, _Figure] = {}
    refused: dict[int, list] = {}  # page -> boxes of images too large to decode (renders must keep off them)
    problems: dict[int, str] = {}  # xref -> why it must not be decoded ("" if fine)
    check = partial(_problem, doc, problems, limits.max_pixels)
    pixel_size = partial(_pixel_size, doc, {})
    errors: list[ItemError] = []
    out_of_time = ""

    def register(item: tuple, size: tuple) -> _Image:
        xref = canonical.get(item[0])
        if xref is None:
            xref = canonical[item[0]] = _canonical(doc, item, size, images, by_content, check(item))
        return images[xref]

    # Pass 1: where every image and figure is, so each is reported once with all its pages.
    for pno in range(npages):
        if pno:
            yield _PAUSE  # other PDFs' steps may run here
        if clock.used() > PDF_SECONDS / 2:
            out_of_time, npages = f"read only the first {pno} of {count} pages", pno
            break
        try:
            page = doc.load_page(pno)
            log, stopped = _bbox_log(page, time.monotonic() + PDF_SECONDS / 2 - clock.used())
            if stopped == "time":
                out_of_time, npages = f"read only the first {pno} of {count} pages", pno
                break
            if stopped:  # nested forms or millions of drawings: no figures; images without their places
                errors.append(ItemError(origin, f"page {pno + 1}", f"more than {PAGE_MAX_STEPS:,} drawing steps: "
                                        "figures not looked for, images listed without their place", skipped=True))
                for item in page.get_images(full=True):
                    img = register(item, pixel_size(item))
                    if pno + 1 not in img.pages:
                        img.pages.append(pno + 1)
                    img.first_page = img.first_page or pno + 1
                continue
            has_images = any(kind in ("fill-image", "fill-imgmask") for kind, _ in log) or page.get_images()
            placed = _place_images(doc, page, log, check, pixel_size, limits.max_pixels) if has_images else []
        except Exception as exc:
            errors.append(ItemError(origin, f"page {pno + 1}", f"could not read page: {_short(exc)}"))
            continue
        image_rects = []  # unrotated page space, like the bbox log
        rot = page.rotation_matrix  # to the page as shown; metadata and clips use that space
        for info, item in placed:
            image_rects.append(pymupdf.Rect(info["bbox"]))
            rect = pymupdf.Rect(info["bbox"]) * rot
            if item is None:  # inline image: no xref to decode, so render its region (once)
                if info["width"] * info["height"] > limits.max_pixels:
                    refused.setdefault(pno, []).append(rect)
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
            img = register(item, (info["width"], info["height"]))
            if check(item):
                refused.setdefault(pno, []).append(rect)
            if pno + 1 not in img.pages:
                img.pages.append(pno + 1)
            if not img.bbox:
                img.first_page, img.bbox = pno + 1, tuple(rect)
                img.transform = tuple(pymupdf.Matrix(info["transform"]) * rot)
            img.max_short_side = max(img.max_short_side, min(rect.width, rect.height))
        try:
            found = _figure_rects(page, log, image_rects, limits.min_side, limits.max_images_per_input)
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
        if figures.get(pno):  # what a render of each will cost
            paint = _Paint(log, tuple(page.rect * page.derotation_matrix))
            for fig in figures[pno]:
                fig.paint = paint.over(tuple(fig.rect * page.derotation_matrix))

    # Pass 2: decode and render, page by page.
    first_on: dict[int, list[_Image]] = {}
    for img in images.values():
        if img.first_page:
            first_on.setdefault(img.first_page, []).append(img)
    yield from errors
    floor = limits.min_side
    yielded, skipped = 0, [0]
    for pno in range(npages):
        for item in _page_items(doc, pno, first_on.get(pno + 1, []), figures.get(pno, []), refused.get(pno, []),
                                origin, limits, skipped):
            yield item
            if isinstance(item, (ImageItem, _Pending)):
                yielded += 1
                if yielded >= limits.max_images_per_input:
                    yield from _cap_note(origin, limits.max_images_per_input, skipped[0], floor)
                    return
            if clock.used() > PDF_SECONDS:
                if skipped[0]:
                    yield _skip_note(origin, skipped[0], floor)
                yield ItemError(origin, "", f"stopped on page {pno + 1}: out of time ({PDF_SECONDS:g} s of work "
                                            "per PDF)", skipped=True)
                return
    skipped = skipped[0]
    if skipped:
        yield _skip_note(origin, skipped, floor)
    if out_of_time:
        yield ItemError(origin, "", f"{out_of_time}: out of time ({PDF_SECONDS:g} s of work per PDF)", skipped=True)
    elif count > npages:
        yield ItemError(origin, "", f"read only the first {npages} of {count} pages (max_pdf_pages)",
                        skipped=True)


def _page_items(doc: pymupdf.Document, pno: int, images: list[_Image], figures: list[_Figure], refused: list,
                origin: str, limits, skipped: list[int]) -> Iterator[Item]:
    """One page's images (decoded) and figures (rendered), in order; counts decorations in skipped[0].
    A region over an image too large to decode is not rendered (MuPDF would decode it)."""
    floor = limits.min_side
    n_img = n_fig = 0
    for img in images:
        if min(img.width, img.height) < floor or (img.bbox and img.max_short_side < floor / 2):
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
            w, h = fig.native
            if w * h > limits.max_pixels:
                yield ItemError(origin, locator, f"inline image too large: {w}x{h} pixels "
                                                 f"(max_pixels {limits.max_pixels})")
                continue
        else:
            n_fig += 1
            locator = f"page {pno + 1}, figure {n_fig} (rendered)"
        if any(fig.rect.intersects(box) for box in refused):
            yield ItemError(origin, locator, "not rendered: it overlaps an image too large to decode")
            continue
        yield _render(doc, fig, origin, locator)


def _cap_note(origin: str, cap: int, skipped: int, floor: int) -> Iterator[ItemError]:
    if skipped:
        yield _skip_note(origin, skipped, floor)
    yield ItemError(origin, "", f"stopped after {cap} images (max_images_per_input)", skipped=True)


def _skip_note(origin: str, skipped: int, floor: int) -> ItemError:
    noun = "image" if skipped == 1 else "images"
    return ItemError(origin, "", f"skipped {skipped} {noun} smaller than {floor} px (decoration)", skipped=True)


class _LogDevice(mupdf.FzDevice2):
    """Records what Page.get_bboxlog() gives (kind and box of everything drawn, unrotated page space), and
    stops MuPDF (the cookie's abort) after PAGE_MAX_STEPS calls or past the deadline (time.monotonic()).
    Clips and groups count too: every form XObject drawn is a clip, so nested forms repeating one another
    stop early."""

    def __init__(self, deadline: float):
        super().__init__()
        self.log: list = []
        self.steps, self.stopped, self.deadline = 0, "", deadline
        self.cookie = mupdf.FzCookie()
        for name in ("fill_path", "stroke_path", "fill_text", "stroke_text", "ignore_text", "fill_shade",
                     "fill_image", "fill_image_mask", "clip_path", "clip_stroke_path", "clip_text",
                     "clip_stroke_text", "clip_image_mask", "begin_group", "begin_mask"):
            getattr(self, f"use_virtual_{name}")()

    def step(self, *args) -> None:
        self.steps += 1
        if self.stopped:
            return
        if self.steps > PAGE_MAX_STEPS:
            self.stopped = "steps"
        elif time.monotonic() > self.deadline:
            self.stopped = "time"
        if self.stopped:
            self.cookie.set_abort()

    def add(self, kind: str, r) -> None:
        self.step()
        self.log.append((kind, (r.x0, r.y0, r.x1, r.y1)))

    def fill_path(self, ctx, path, even_odd, ctm, *args):
        self.add("fill-path", mupdf.ll_fz_bound_path(path, None, ctm))

    def stroke_path(self, ctx, path, stroke, ctm, *args):
        self.add("stroke-path", mupdf.ll_fz_bound_path(path, stroke, ctm))

    def fill_text(self, ctx, text, ctm, *args):
        self.add("fill-text", mupdf.ll_fz_bound_text(text, None, ctm))

    def stroke_text(self, ctx, text, stroke, ctm, *args):
        self.add("stroke-text", mupdf.ll_fz_bound_text(text, stroke, ctm))

    def ignore_text(self, ctx, text, ctm):
        self.add("ignore-text", mupdf.ll_fz_bound_text(text, None, ctm))

    def fill_shade(self, ctx, shade, ctm, *args):
        self.add("fill-shade", mupdf.ll_fz_bound_shade(shade, ctm))

    def fill_image(self, ctx, image, ctm, *args):
        self.add("fill-image", mupdf.ll_fz_transform_rect(mupdf.fz_unit_rect, ctm))

    def fill_image_mask(self, ctx, image, ctm, *args):
        self.add("fill-imgmask", mupdf.ll_fz_transform_rect(mupdf.fz_unit_rect, ctm))

    clip_path = clip_stroke_path = clip_text = clip_stroke_text = clip_image_mask = begin_group = begin_mask = step


def _bbox_log(page: pymupdf.Page, deadline: float) -> tuple[list, str]:
    """The page's bbox log, as Page.get_bboxlog() gives it, and "" or why MuPDF was stopped ("steps", "time")."""
    rotation = page.rotation
    if rotation:
        page.set_rotation(0)
    try:
        dev = _LogDevice(deadline)
        mupdf.fz_run_page(page.this, dev, mupdf.FzMatrix(), dev.cookie)
        mupdf.fz_close_device(dev)
    finally:
        if rotation:
            page.set_rotation(rotation)
    return dev.log, dev.stopped


def _place_images(doc: pymupdf.Document, page: pymupdf.Page, log: list, check: Callable[[tuple], str],
                  pixel_size: Callable[[tuple], tuple], max_pixels: int) -> list[tuple[dict, tuple | None]]:
    """Each image drawn on the page (info from MuPDF's device) with its get_images() item, None if inline.

    Matching is by pixel size as MuPDF decodes it (a JPEG 2000 at its codestream's size, whatever its
    dictionary says). Only when two of the page's images have the same size, or an inline image is drawn,
    are pixel digests needed; PyMuPDF decodes every drawn image for them, so they are left out when any
    image of the page is too large to decode (then twins match by size alone and inline repeats are not
    told apart), and of the listed images only the twins are decoded. Smooth shadings, which the text
    device also reports as images, are left out: only boxes the bbox log saw as images count.
    """
    drawn = _Near([r for kind, r in log if kind in ("fill-image", "fill-imgmask")])
    infos = [i for i in page.get_image_info() if drawn.has(i["bbox"])]
    items = page.get_images(full=True)
    by_size: dict[tuple, list] = {}
    for item in items:
        by_size.setdefault(pixel_size(item), []).append(item)
    twins = any(len(v) > 1 for v in by_size.values())
    inline = any((i["width"], i["height"]) not in by_size for i in infos)
    safe = not any(check(item) for item in items) and all(i["width"] * i["height"] <= max_pixels for i in infos)
    digests, by_digest = {}, {}
    if (twins or inline) and safe:
        digests = {i["number"]: i["digest"] for i in page.get_image_info(hashes=True)}
        for found in by_size.values():
            for item in found if len(found) > 1 else ():
                by_digest[pymupdf.Pixmap(doc, item[0]).digest] = item
    out = []
    for info in infos:
        found = by_size.get((info["width"], info["height"]))
        if found and len(found) > 1 and digests:
            item = by_digest.get(digests.get(info["number"]))
        else:
            item = found[0] if found else None
        if item is None and digests:  # inline images: their pixel digest tells repeats apart
            info["digest"] = digests.get(info["number"], b"")
        out.append((info, item))
    return out


class _Near:
    """Boxes filed by rounded corner, to tell whether a box is one of them (within 1 point) at once."""

    def __init__(self, boxes: list):
        self.keys: dict[tuple, list] = {}
        for b in boxes:
            if math.isfinite(b[0] + b[1] + b[2] + b[3]):
                self.keys.setdefault((round(b[0]), round(b[1])), []).append(b)

    def has(self, box) -> bool:
        if not math.isfinite(box[0] + box[1] + box[2] + box[3]):
            return False
        x, y = round(box[0]), round(box[1])
        return any(_same_box(box, b) for dx in (-1, 0, 1) for dy in (-1, 0, 1)
                   for b in self.keys.get((x + dx, y + dy), ()))


def _same_box(a, b, tol: float = 1.0) -> bool:
    return all(abs(u - v) <= tol for u, v in zip(a, b))


def _canonical(doc: pymupdf.Document, item: tuple, size: tuple, images: dict, by_content: dict,
               problem: str) -> int:
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
    images[xref] = _Image(xref, smask, size[0], size[1], FILTERS.get(item[8], item[8] or "RAW"), item[5],
                          problem=problem)
    return xref


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


def _image_item(doc: pymupdf.Document, img: _Image, origin: str, locator: str, max_pixels: int,
                decode_side: int | None = None) -> Item | _Pending:
    if img.problem or img.width * img.height > max_pixels:
        return ItemError(origin, locator, img.problem or f"embedded image too large: {img.width}x{img.height} "
                                                         f"pixels (max_pixels {max_pixels})")
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
    meta = {"page": img.first_page, "bbox": [round(v, 2) for v in img.bbox] if img.bbox else None, "xref": img.xref,
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


def _figure_rects(page: pymupdf.Page, log: list, image_rects: list, floor: int, cap: int) -> list[tuple]:
    """Regions of vector drawings that look like figures, each with a shape signature; at most `cap`.

    Boxes are plain (x0, y0, x1, y1) tuples in unrotated page space, like the bbox log. Drawings are
    clipped to the page first: what lies outside it (cut off by the CropBox) is no part of a figure.
    """
    page_rect = tuple(page.rect * page.derotation_matrix)
    ink = _ink(page, log, page_rect)
    if not ink:
        return []
    images = _Grid([tuple(r) for r in image_rects])
    out = []
    words = lines = drawn = None
    for box, members in _cluster(ink, CLUSTER_TOL):
        w, h = box[2] - box[0], box[3] - box[1]
        if min(w, h) < floor / 2 or max(w, h) < floor:
            continue
        if all(_is_rule(m) for m in members):
            continue  # only rules: table grids, underlines, frames made of lines
        if _coverage(box, images.near(_grow(box, 2))) >= 0.5:
            continue  # an embedded image with marks on it: the image is reported already
        if words is None:  # word boxes, not the bbox log's text boxes: TeX text objects can span a page
            words, lines = (_Grid(boxes) for boxes in _words_and_lines(page))
        if _coverage(box, words.near(_grow(box, 2))) > 0.35:
            continue  # a shaded or framed text box
        region = _clip(_with_labels(box, lines.near(_grow(box, TEXT_MARGIN))), page_rect)
        if region is None:
            continue
        drawn = drawn or _Grid([r for _, r in log], log, corner=True)
        out.append((pymupdf.Rect(region), _signature(region, drawn)))
        if len(out) >= cap:
            break
    return out


def _is_rule(box: tuple) -> bool:
    """Long and thin, like a table line or an underline (a dot of a scatter plot is not)."""
    w, h = box[2] - box[0], box[3] - box[1]
    return min(w, h) <= THIN and max(w, h) >= 4 * THIN


def _ink(page: pymupdf.Page, log: list, page_rect: tuple) -> list[tuple]:
    """Boxes of visible vector drawings, shadings and stencil masks, without page backgrounds, clipped to
    the page (what lies wholly outside it is left out).

    Path boxes come from get_cdrawings (exact geometry plus half the line width; the bbox log pads
    strokes by the miter limit). Pages with very many paths use the cheaper bbox log instead.
    """
    page_area = (page_rect[2] - page_rect[0]) * (page_rect[3] - page_rect[1])
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
    x0, y0, x1, y1 = page_rect
    inside = [r for r in ink if r[0] >= x0 and r[1] >= y0 and r[2] <= x1 and r[3] <= y1]
    if len(inside) < len(ink):  # clip the rest
        cut = (_clip(r, page_rect) for r in ink if not (r[0] >= x0 and r[1] >= y0 and r[2] <= x1 and r[3] <= y1))
        inside += [c for c in cut if c is not None and c[2] - c[0] + c[3] - c[1] > 0]
    return inside


def _clip(box: tuple, page_rect: tuple) -> tuple | None:
    """The part of box inside page_rect (may be a line), None if none."""
    x0, y0 = max(box[0], page_rect[0]), max(box[1], page_rect[1])
    x1, y1 = min(box[2], page_rect[2]), min(box[3], page_rect[3])
    return (x0, y0, x1, y1) if x1 >= x0 and y1 >= y0 else None


def _grow(box: tuple, m: float) -> tuple:
    return box[0] - m, box[1] - m, box[2] + m, box[3] + m


def _cluster(rects: list, tol: float) -> list[tuple]:
    """Group boxes into (bounding box, members): a box joins a group whose bounding box it touches
    (within tol); groups whose boxes then touch are merged, until nothing changes."""
    if len(rects) > MAX_CLUSTER_RECTS:  # e.g. dense scatter plots: snap to a grid and drop repeats
        s = 4.0
        rects = [(x0 * s, y0 * s, x1 * s, y1 * s) for x0, y0, x1, y1 in
                 {(r[0] // s, r[1] // s, r[2] // s + 1, r[3] // s + 1) for r in rects}]
    groups = [[r, [r]] for r in rects]
    for _ in range(MAX_SWEEPS):
        merged = _sweep(groups, tol)
        done = len(merged) == len(groups)
        groups = merged
        if done:
            break
    return [(box, members) for box, members in groups]


def _sweep(groups: list, tol: float) -> list:
    """One pass along x: each group joins the live groups (not yet left behind in x) its box touches.
    Live groups are filed by bands of y, so a box looks only at those beside it: work grows with the
    number of groups, not its square, even when all share one x (a column of dots)."""
    if not groups:
        return []
    top, bottom = min(g[0][1] for g in groups), max(g[0][3] for g in groups)
    band = max(4 * tol, (bottom - top) / 256)
    bands: dict[int, list] = {}
    out: list = []  # [box, members, lo, hi, n]: members None once absorbed; filed in bands lo..hi; n-th made

    def file(group: list, box: tuple) -> None:  # in the bands of box it is not filed in yet
        lo, hi = int((box[1] - top) // band), int((box[3] - top) // band)
        if group[2] <= lo and hi <= group[3]:
            return
        new = range(lo, hi + 1) if group[2] > group[3] else [*range(lo, group[2]), *range(group[3] + 1, hi + 1)]
        for b in new:
            bands.setdefault(b, []).append(group)
        group[2], group[3] = min(lo, group[2]), max(hi, group[3])

    for box, members in sorted(groups, key=lambda g: g[0][0]):
        hits: dict[int, list] = {}
        for b in range(int((box[1] - tol - top) // band), int((box[3] + tol - top) // band) + 1):
            filed = bands.get(b)
            if not filed:
                continue
            gone = False
            for g in filed:
                if g[1] is None or g[0][2] + tol < box[0]:  # absorbed, or left behind for good
                    gone = True
                elif g[0][1] - tol <= box[3] and box[1] - tol <= g[0][3]:
                    hits[g[4]] = g
            if gone:
                bands[b] = [g for g in filed if g[1] is not None and g[0][2] + tol >= box[0]]
        if not hits:
            group = [box, list(members), 0, -1, len(out)]
            file(group, box)
            out.append(group)
            continue
        main, *others = hits.values() if len(hits) == 1 else (hits[n] for n in sorted(hits))  # first made first
        m = main[0]
        main[1].extend(members)
        m = (min(m[0], box[0]), min(m[1], box[1]), max(m[2], box[2]), max(m[3], box[3]))
        for other in others:
            m = _union([m, other[0]])
            main[1].extend(other[1])
            other[1] = None  # absorbed
        main[0] = m
        file(main, m)
    return [[g[0], g[1]] for g in out if g[1] is not None]


def _union(boxes: list) -> tuple:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _words_and_lines(page: pymupdf.Page) -> tuple[list, list]:
    words, lines = [], {}
    for x0, y0, x1, y1, _, block, line, _ in page.get_text("words"):
        words.append((x0, y0, x1, y1))
        lines.setdefault((block, line), []).append((x0, y0, x1, y1))
    return words, [_union(v) for v in lines.values()]


class _Grid:
    """Boxes filed by the cells of a grid they touch, to find those near a box without scanning them all.
    A box over many cells is kept apart and always looked at; with `corner`, a box is filed by its top-left
    corner alone (enough to find the boxes inside a region). `items` go with the boxes, if given."""

    def __init__(self, boxes: list, items: list | None = None, cell: float = 32.0, corner: bool = False):
        self.items = boxes if items is None else items
        self.cell, self.cells, self.big = cell, {}, []
        for i, b in enumerate(boxes):
            if not math.isfinite(b[0] + b[1] + b[2] + b[3]):
                self.big.append(i)
                continue
            x0, y0 = int(b[0] // cell), int(b[1] // cell)
            x1, y1 = (x0, y0) if corner else (int(b[2] // cell), int(b[3] // cell))
            if (x1 - x0 + 1) * (y1 - y0 + 1) > 64:
                self.big.append(i)
                continue
            for x in range(x0, x1 + 1):
                for y in range(y0, y1 + 1):
                    self.cells.setdefault((x, y), []).append(i)

    def near(self, box: tuple) -> list:
        """The items whose boxes may touch box (a few more, never fewer), in their order."""
        x0, y0, x1, y1 = (int(v // self.cell) for v in box)
        if (x1 - x0 + 1) * (y1 - y0 + 1) > len(self.cells):
            return list(self.items)
        found = set(self.big)
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                found.update(self.cells.get((x, y), ()))
        return [self.items[i] for i in sorted(found)]


def _coverage(box: tuple, boxes: list) -> float:
    """Share of box covered by the union of boxes (on a 1-point grid; coarser for boxes over 1024 points)."""
    s = max(1.0, (box[2] - box[0]) / 1024, (box[3] - box[1]) / 1024)
    w, h = max(int((box[2] - box[0]) / s + 1), 1), max(int((box[3] - box[1]) / s + 1), 1)
    grid = np.zeros((h, w), dtype=bool)
    for b in boxes:
        x0, y0 = max(int((b[0] - box[0]) / s), 0), max(int((b[1] - box[1]) / s), 0)
        x1, y1 = min(int((b[2] - box[0]) / s + 1), w), min(int((b[3] - box[1]) / s + 1), h)
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


def _signature(region: tuple, drawn: _Grid) -> str:
    """What is drawn inside the region, relative to its corner: equal for a repeated vector logo."""
    x0, y0, x1, y1 = region
    parts = sorted(f"{kind}:{r[0] - x0:.1f},{r[1] - y0:.1f},{r[2] - x0:.1f},{r[3] - y0:.1f}"
                   for kind, r in drawn.near(region) if r[0] >= x0 and r[1] >= y0 and r[2] <= x1 and r[3] <= y1)
    return hashlib.md5(f"{x1 - x0:.1f}x{y1 - y0:.1f};{';'.join(parts)}".encode()).hexdigest()


class _Paint:
    """How much is painted over a region of a page, in square points: every drawing of the bbox log counted
    over each cell (of a 256 x 256 grid on the page) its box touches. MuPDF's rasteriser works through
    every path's box within the clip, so this is what a render costs (an overestimate for small marks)."""

    N = 256

    def __init__(self, log: list, page_rect: tuple):
        self.x, self.y = page_rect[0], page_rect[1]
        self.cw = max((page_rect[2] - page_rect[0]) / self.N, 1e-3)
        self.ch = max((page_rect[3] - page_rect[1]) / self.N, 1e-3)
        boxes = np.nan_to_num(np.array([r for _, r in log], dtype=float).reshape(-1, 4), posinf=1e9, neginf=-1e9)
        boxes = boxes[(boxes[:, 2] >= page_rect[0]) & (boxes[:, 0] <= page_rect[2]) & (boxes[:, 3] >= page_rect[1])
                      & (boxes[:, 1] <= page_rect[3]) & (boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])]
        x0, y0, x1, y1 = self._cells(boxes.T)
        diff = np.zeros((self.N + 1, self.N + 1))
        for ys, xs, sign in ((y0, x0, 1), (y0, x1, -1), (y1, x0, -1), (y1, x1, 1)):
            np.add.at(diff, (ys, xs), sign)
        self.count = diff.cumsum(axis=0).cumsum(axis=1)[: self.N, : self.N]

    def _cells(self, box) -> tuple:
        x0, y0, x1, y1 = box
        col = lambda x: np.clip((x - self.x) // self.cw, 0, self.N - 1).astype(int)  # noqa: E731
        row = lambda y: np.clip((y - self.y) // self.ch, 0, self.N - 1).astype(int)  # noqa: E731
        return col(x0), row(y0), col(x1) + 1, row(y1) + 1

    def over(self, region: tuple) -> float:
        x0, y0, x1, y1 = self._cells(np.array(region, dtype=float))
        return float(self.count[y0:y1, x0:x1].sum()) * self.cw * self.ch


def _render(doc: pymupdf.Document, fig: _Figure, origin: str, locator: str) -> Item:
    rect = fig.rect
    if fig.inline:  # at the image's own resolution, within sane bounds
        dpi = min(300.0, max(72.0, 72.0 * fig.native[0] / max(rect.width, 1.0)))
    else:
        dpi = RENDER_DPI
    dpi = min(dpi, 72.0 * RENDER_MAX_SIDE / max(rect.width, rect.height, 1.0))
    if fig.paint * (dpi / 72.0) ** 2 > RENDER_MAX_PAINT:  # drawn over and over: fewer pixels, or none
        dpi = 72.0 * math.sqrt(RENDER_MAX_PAINT / fig.paint)
        if dpi < RENDER_MIN_DPI:
            times = fig.paint / max(abs(rect), 1.0)
            return ItemError(origin, locator, f"not rendered: drawn over about {times:,.0f} times")
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
