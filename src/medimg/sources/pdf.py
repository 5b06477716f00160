"""PDF source: every embedded image once (with all its pages and positions), plus vector figures rendered.

Rules, in the order they apply:
- Embedded images are decoded by MuPDF (`Pixmap(doc, xref)`), so Decode arrays, ICC/CMYK (including
  inverted Adobe CMYK JPEGs), Indexed and colour-key masks come out as on the page. CMYK and other
  non-gray/non-RGB colour spaces are converted to RGB; a soft mask (/SMask) or stencil /Mask becomes
  the alpha channel (output mode RGBA/LA: composite on white to see the page; one cut off or missing in a
  damaged file is left out, as the page draws the image without it). Plain gray/RGB JPEGs
  with nothing on top are decoded by Pillow instead (same pixels, twice as fast), and plain 8-bit gray/RGB
  Flate images are inflated by zlib (outside the MuPDF lock). A 1-bit stencil
  image drawn on its own (some scans, a signature, a logo) comes out in the ink its first placement paints it
  with, on white (mode L when black or grey, else RGB). The image is turned and
  flipped the way its placement draws it (quarter turns, mirrors, page /Rotate).
- The same image is reported once: by xref, and by content (raw stream digest, with its colour space, Decode,
  colour key and mask) for copies stored under different xrefs. `metadata["pages"]` lists every page it is drawn on.
- Decoration: an image is skipped when its shorter pixel side is below `limits.min_side`, or when even
  its largest placement is shorter than `min_side / 2` points (about 11 mm at 64). Skips are counted in
  one `ItemError(skipped=True)` per PDF.
- Figures: clusters of vector drawings (paths, shadings) whose box is at least `min_side / 2` points
  on the shorter side and `min_side` on the longer, not mostly covered by an embedded image, not
  just thin rules (tables, underlines), not mostly words (text boxes) and not a table drawn one box per cell
  are rendered at 150 dpi
  (`rendered: true`), with the short text lines next to them (axis labels). Identical vector figures
  on many pages (vector logos) are rendered once. Only what lies on the visible page (CropBox) counts.
- Pieces: images too small to stand alone, or tiling one rectangle edge to edge (`_tiled`), count as drawing,
  so a scan stored as strips or a picture cut into tiles is one rendered figure; an image shown only as a
  piece of one is not reported alone; one also drawn alone is reported there (a thumbnail on an earlier page
  does not take its place). An image its own mask hides everywhere shows nothing: a skipped note.
- Inline images (no xref) are rendered from their page region at about their own resolution (of the denser
  side), once per distinct image. So is the part seen of an image that a clip (of any shape, by what it leaves:
  an ellipse filling the image's box hides a fifth of it) or the page edge crops (`cropped`), or that opaque paint
  drawn after it hides in part (`covered`: a box laid over a name, an arrow or a circle drawn on a photo, by what
  each really paints; see `_Visible.hidden`; a turned or skewed image is judged by the parallelogram it fills), so
  what the reader cannot see never comes out. One painted over whole, or under
  another image without a mask drawn at its very place, is not reported (`_under_another`).
- Caps: `max_pdf_pages` pages (a skipped note says how many were left), `max_images_per_input`
  images, `max_pixels` per embedded image (checked before decoding against the largest size its data
  asks for: the dictionary's, a JPEG 2000 codestream's, a JBIG2 page or region, its /SMask or /Mask)
  and per inline image. A page that makes MuPDF draw more than `PAGE_MAX_STEPS` times (nested form
  XObjects), draws more than `PAGE_MAX_IMAGES` images, strokes a line over `MAX_LINE_WIDTH` wide or dashes lines
  into more than `PAGE_MAX_DASHES` dashes (MuPDF would draw either without end), or holds an inline image over `max_pixels` in its
  content stream, form XObjects or tiling patterns (found before MuPDF runs it: MuPDF decodes an inline image
  to find its end), is not searched for figures; its images are listed from its resources (one note for a run of such
  pages: `_fold`). A region over an
  image too large to decode is not rendered; one drawn over very often (`RENDER_MAX_PAINT`) is rendered
  at a lower dpi. `PDF_SECONDS` of MuPDF work per PDF (half of it for finding, then decoding and
  rendering), checked between steps.
- Damage: an image MuPDF cannot load (its colour space lost when the file was cut short, say) is drawn
  nowhere; it is listed without its place (numbered where the page's content draws it, `_drawn_at`) and
  decoding it is an error of its own, while the page's other images come out (a plain gray or RGB JPEG whose
  colour space object is lost comes out in its own colours: `_own_colours`). A page whose images cannot be placed at all has them listed without their places (no
  figures), with one error. A PDF MuPDF had to repair (on opening, or when an object was looked up) gets one
  skipped note at its end: what the damage took leaves no error behind. One MuPDF cannot open (cut off inside a
  dictionary) is opened up to its last whole object (`_cut_at_an_object`); one with no readable pages left gives the
  image objects it still holds, without their pages (`_orphans`).

- Attached files (a portfolio's, EmbeddedFiles, paperclip annotations) are opened after the pages, like files
  inside the PDF (`pdf_attached.py`), outside the lock; their images count towards `max_images_per_input`.

Finding figures on a page is in `pdf_figures.py`; the pixel size an image's data asks for (and matching
the images drawn on a page to their xrefs) in `pdf_sizes.py`; attached files in `pdf_attached.py`.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import io
import math
import os
import re
import threading
import time
import zlib
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Generator, Iterator

import numpy as np
from PIL import Image

from .mupdf_import import pymupdf  # without its layout-analysis package (see there)

from .base import Blob, Context, ImageItem, Item, ItemError, SourcePlugin
from .files import allow_pixels, draft_jpeg, stored_size
from .pdf_figures import (MAX_LINE_WIDTH, PAGE_MAX_DASHES, PAGE_MAX_IMAGES, PAGE_MAX_STEPS, _bbox_log, _figure_rects,
                          _Paint)
from .pdf_attached import Attached, attached_files, attachments, open_attached
from .pdf_sizes import _jbig2_size, _Near, _pixel_size, _place_images, _problem  # noqa: F401  (_jbig2_size: tests)
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


def _fresh_lock() -> None:
    """In a forked child: a thread of the parent's that held the lock (or waited for it) is not there to hand it on,
    and the child's PDFs waited for it forever (a multiprocessing 'fork' pool started while medimg ran)."""
    global _MUPDF_LOCK
    _MUPDF_LOCK = _TurnLock()


os.register_at_fork(after_in_child=_fresh_lock)
pymupdf.TOOLS.mupdf_display_errors(False)
pymupdf.TOOLS.mupdf_display_warnings(False)

RENDER_DPI = 150  # figures are rendered at this resolution ...
RENDER_MAX_SIDE = 2000  # ... unless that makes the longer side exceed this many pixels
PDF_SECONDS = 120.0  # MuPDF work on one PDF, waiting for another PDF's turn not counted; pass 1 gets half
RENDER_MAX_PAINT = 1e10  # pixels painted (every drawing over a region, by its box) for one render; past this the
RENDER_MIN_DPI = 24  # region is rendered at a lower dpi, and below this one not at all
FILTERS = {
    "DCTDecode": "JPEG", "JPXDecode": "JPEG2000", "JBIG2Decode": "JBIG2", "CCITTFaxDecode": "CCITT",
    "FlateDecode": "FLATE", "LZWDecode": "LZW", "RunLengthDecode": "RLE", "": "uncompressed",
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
    ink: tuple = ()  # a stencil mask's colour (RGB) where it is reported; black when unknown
    problem: str = ""  # why it must not be decoded (too large)
    placements: int = 0
    in_figures: int = 0  # placements that are pieces of a rendered figure (a strip of a scan, a tile)
    at_piece: bool = False  # reported where it is drawn as a piece in no figure, until it is drawn alone
    order: float = 0.0  # where it comes among the images of the page it is reported on (in drawing order)


@dataclass
class _Pending:
    """An embedded JPEG whose header Pillow has read, or a plain Flate image's raw stream (`image` is then the
    function that inflates it); `resolve` decodes it without MuPDF (so outside the lock), or, when that fails,
    lets MuPDF decide under the lock while the document is still open."""

    image: Image.Image | Callable[[], Image.Image]
    finish: Callable[[Image.Image], Item]
    fallback: Callable[[], Item]

    def resolve(self) -> Item:
        try:
            if not isinstance(self.image, Image.Image):
                self.image = self.image()
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
    inline: bool = False  # an image rendered from its region: inline (no xref) or cropped
    cropped: bool = False  # an image that a clip or the page edge cuts: only the part seen is rendered
    covered: bool = False  # an image that opaque fills drawn after it hide in part: rendered as seen
    native: tuple = ()  # pixel size of an inline image (of the part seen, if cropped), along the page's x and y
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
    images = 0
    try:
        while True:
            with _MUPDF_LOCK, clock:
                item = next(steps, None)
            if item is None:
                return
            if item is _PAUSE:
                continue
            if isinstance(item, Attached):  # a file attached to the PDF, opened outside the lock, within the cap
                if images >= ctx.limits.max_images_per_input:  # more files, no room: said, not dropped unsaid
                    yield from _cap_note(blob.origin, ctx.limits.max_images_per_input, 0, 0)
                    return
                for found in open_attached(item, blob, ctx):
                    images += isinstance(found, ImageItem)
                    yield found
                continue
            item = item.resolve() if isinstance(item, _Pending) else item
            images += isinstance(item, ImageItem)
            yield item
    finally:
        with _MUPDF_LOCK:
            steps.close()


def _open_pdf(blob: Blob, ctx: Context, clock: _Clock) -> Iterator[Item]:
    origin = blob.origin
    try:
        doc = pymupdf.open(stream=blob.data, filetype="pdf")
    except Exception as exc:
        doc = _cut_at_an_object(blob.data)
        if doc is None:
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
            if doc.is_repaired:  # cut off before its page tree (kept in an object stream at the end, say): the
                yield from _orphans(doc, blob.data, origin, ctx, clock)  # images whole before the cut come out
            else:
                yield ItemError(origin, "", "broken PDF: no readable pages")
            return
        attached = attached_files(doc, min(count, ctx.limits.max_pdf_pages), ctx)
        capped = yield from _extract(doc, count, origin, ctx, clock, bool(attached))
        if doc.is_repaired:  # a broken xref table, found on opening or when an object was looked up
            yield ItemError(origin, "", "damaged PDF, repaired by MuPDF: parts of it may be missing", skipped=True)
        if not capped:  # the pages gave max_images_per_input images (and said so): no file is read for nothing
            yield from attachments(doc, attached, blob, ctx)  # read here, opened by open_pdf
    finally:
        doc.close()
        pymupdf.TOOLS.reset_mupdf_warnings()
        # MuPDF keeps the images it decoded in its store after their document is closed, where nothing can use
        # them again: in a process that runs for weeks they would grow it to its 256 MB of pixels (and as much
        # again of what they hang on to). Emptying it (under the lock) costs another open PDF only a decode again.
        pymupdf.TOOLS.store_shrink(100)


CUT_TRIES = 4  # "endobj"s from the end a PDF MuPDF cannot open is cut at, each one a repair of the whole file


def _cut_at_an_object(data: bytes) -> pymupdf.Document | None:
    """A PDF MuPDF cannot open, opened up to the end of its last whole object (None if that fails too): MuPDF's
    repair gives up on a file that ends inside an object's dictionary, which a download cut short does at one
    point in five of a text-heavy PDF (every page lost, not only what the cut took). The last "endobj" may be a
    word in that dictionary (a title's), so the few before it are tried too."""
    end = len(data)
    for _ in range(CUT_TRIES):
        end = data.rfind(b"endobj", 0, end)
        if end < 0:
            return None
        try:
            return pymupdf.open(stream=memoryview(data)[:end + len(b"endobj")], filetype="pdf")
        except Exception:
            continue
    return None


def _extract(doc: pymupdf.Document, count: int, origin: str, ctx: Context, clock: _Clock,
             attached: bool = False) -> Generator[Item, None, bool]:
    """The pages' images and figures (`attached`: files attached to the PDF follow, so no "no images" note);
    returns True when it stopped at max_images_per_input."""
    limits = ctx.limits
    npages = min(count, limits.max_pdf_pages)
    images: dict[int, _Image] = {}  # canonical xref -> image
    by_content: dict[str, list[int]] = {}  # content digest -> canonical xrefs (`_canonical`)
    streams: dict = {}  # xref -> digest of a stream a colour space names (a profile shared by many); images' values
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
            xref = canonical[item[0]] = _canonical(doc, item, size, images, by_content, check(item), streams)
        return images[xref]

    def listed(items: list, pno: int, order: float = 0.0) -> None:
        """Images registered without their place (`order`: where the page draws them, if known): decoded, or each
        an error of its own, in pass 2."""
        for item in items:
            img = register(item, pixel_size(item))
            if pno + 1 not in img.pages:
                img.pages.append(pno + 1)
            if not img.first_page:
                img.first_page, img.order = pno + 1, order

    loads: dict[int, str | None] = {}  # xref → why MuPDF cannot load the image (None: it can)

    form_problems: dict[int, tuple] = {}  # form or pattern xref → (inline image over the cap or "", what it names)
    # Pass 1: where every image and figure is, so each is reported once with all its pages.
    for pno in range(npages):
        if pno:
            yield _PAUSE  # other PDFs' steps may run here
        if clock.used() > PDF_SECONDS / 2:
            out_of_time, npages = f"read only the first {pno} of {count} pages", pno
            break
        try:
            page = doc.load_page(pno)
            huge = _inline_over_cap(doc, page, limits.max_pixels, form_problems)
            if huge:  # MuPDF decodes an inline image to find its end, on every run of the page
                log, stopped, shown, covers, inks = [], huge, [], [], []
            else:
                log, stopped, shown, covers, inks = _bbox_log(page, time.monotonic() + PDF_SECONDS / 2 - clock.used())
            if stopped == "time":
                out_of_time, npages = f"read only the first {pno} of {count} pages", pno
                break
            if stopped:  # nested forms, millions of drawings or thousands of images: no figures, no places
                why = (f"more than {PAGE_MAX_IMAGES:,} images drawn" if stopped == "images"
                       else f"more than {PAGE_MAX_STEPS:,} drawing steps" if stopped == "steps"
                       else f"dashed lines of more than {PAGE_MAX_DASHES:,} dashes" if stopped == "dashes"
                       else f"a line over {MAX_LINE_WIDTH:,.0f} points wide" if stopped == "wide" else stopped)
                errors.append(ItemError(origin, f"page {pno + 1}", f"{why}: figures not looked for, images listed "
                                        "without their place", skipped=stopped in ("images", "steps", "dashes", "wide")))
                listed(page.get_images(full=True), pno)
                continue
            has_images = any(kind in ("fill-image", "fill-imgmask") for kind, _ in log) or page.get_images()
            try:
                placed, broken = (_place_images(doc, page, log, check, pixel_size, limits.max_pixels, loads)
                                  if has_images else ([], []))
            except Exception as exc:  # a damaged image MuPDF stumbles on: the others still come out, unplaced
                errors.append(ItemError(origin, f"page {pno + 1}", f"could not place its images ({_short(exc)}): "
                                        "figures not looked for, images listed without their place"))
                listed(page.get_images(full=True), pno)
                continue
        except Exception as exc:
            errors.append(ItemError(origin, f"page {pno + 1}", f"could not read page: {_short(exc)}"))
            continue
        image_rects = []  # unrotated page space, like the bbox log
        pieces = []  # placements too small to be images of their own, or tiling one rectangle: strips of a scan, tiles
        rot = page.rotation_matrix  # to the page as shown; metadata and clips use that space
        visible_part = _Visible(shown, tuple(page.rect * page.derotation_matrix), covers, log,
                                late=lambda: clock.used() > PDF_SECONDS / 2)
        tiled = _tiled([tuple(info["bbox"]) for info, _ in placed])
        inked = _Near([box for box, _ in inks], [rgb for _, rgb in inks]) if inks else None
        spots = (_Near([tuple(info["bbox"]) for info, _ in placed], list(range(len(placed)))), {})
        for n, (info, item) in enumerate(placed):
            box = tuple(info["bbox"])
            if inked is not None:  # a stencil mask: the colour it is painted in here
                info["ink"] = next(iter(inked.find(box)), ())
            rect = pymupdf.Rect(box) * rot
            seen_part = visible_part(box)
            if seen_part is None:  # wholly off the page or clipped away: nobody sees it
                continue
            small = min(info["width"], info["height"]) < limits.min_side
            # a few pixels stretched over a large box are a colour or a background, not part of a picture
            dense = min(info["width"] / max(rect.width, 1e-3), info["height"] / max(rect.height, 1e-3)) >= 0.25
            piece = dense and (small or min(rect.width, rect.height) < limits.min_side / 2 or n in tiled)
            try:
                covers, share = ([], 0.0) if piece else visible_part.hidden(box, seen_part, info["transform"])
            except _Late:  # many images under many boxes: pass 1's time ran out on this page
                out_of_time = f"read only the first {pno} of {count} pages"
                break
            if share >= visible_part.WHOLE or not piece and _under_another(placed, spots, n, visible_part):
                image_rects.append(pymupdf.Rect(seen_part))  # what hides it is no figure either, as over a cover
                continue  # wholly painted over, or another image without a mask drawn over it at its very place
            if piece:  # a strip or tile: what shows of it is part of a figure
                # named by content: copies of one image under two xrefs make one figure, as they are one image
                name = str(register(item, (info["width"], info["height"])).xref) if item else (
                    info.get("digest") or b"").hex()
                pieces.append((seen_part, item, name, info, rect))
                if item is None and n in tiled:
                    continue  # an inline tile: the figure shows it
            elif seen_part != box or covers or visible_part.shaped(box) < 1:  # cropped by a clip (of any shape)
                # or the page edge, or covered in part by boxes laid over it: what is seen, rendered
                _cropped(info, item, pymupdf.Rect(seen_part), pno, rot, figures, by_shape, refused,
                         check, limits.max_pixels, covers, visible_part.shaped(box))
                image_rects.append(pymupdf.Rect(seen_part))
                continue
            else:
                image_rects.append(pymupdf.Rect(box))
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
                                              native=_along_page((info["width"], info["height"]), info, rot))
                figures.setdefault(pno, []).append(fig)
                continue
            img = register(item, (info["width"], info["height"]))
            img.placements += 1
            if check(item):
                refused.setdefault(pno, []).append(rect)
            if pno + 1 not in img.pages:
                img.pages.append(pno + 1)
            if (not img.bbox or img.at_piece) and not piece:  # a piece's place is its figure's, unless it is in
                _place(img, pno, rect, info, rot)  # none (below); a place where it is drawn alone comes first
            img.max_short_side = max(img.max_short_side, min(rect.width, rect.height))
        if out_of_time:
            npages = pno
            break
        drawn_at = _drawn_at(page, broken, placed) if broken else {}
        for item in broken:  # images MuPDF cannot load, so drawn nowhere: each an error of its own in pass 2,
            try:  # numbered where the page draws it
                listed([item], pno, drawn_at[item[0]])
            except Exception as exc:
                errors.append(ItemError(origin, f"page {pno + 1}", f"could not decode embedded image (xref {item[0]}): "
                                                                   f"{_short(exc)}"))
        try:
            found = _figure_rects(page, log, image_rects, limits.min_side, limits.max_images_per_input,
                                  [box for box, *_ in pieces])
        except Exception as exc:
            errors.append(ItemError(origin, f"page {pno + 1}", f"could not look for figures: {_short(exc)}"))
            found = []
        for box, item, _, info, rect in pieces:  # a piece inside a figure is shown there, not skipped as a decoration
            if item is None:
                continue
            img, piece = register(item, ()), pymupdf.Rect(box)
            if any(abs(piece & region) >= 0.9 * abs(piece) for region, _ in found):
                img.in_figures += 1
            elif not img.bbox:  # a thumbnail: reported there unless it is drawn alone on a later page
                _place(img, pno, rect, info, rot)
                img.at_piece = True
        for rect, sig in found:
            # the images it is made of, too: each page of a scan stored as strips has strips of its own
            sig += ",".join(name for box, _, name, *_ in pieces
                            if abs(pymupdf.Rect(box) & rect) >= 0.9 * abs(pymupdf.Rect(box)))
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
    for found in first_on.values():
        found.sort(key=lambda img: img.order)  # in drawing order (a damaged image in its place, not last)
    yield from _fold(errors)
    floor = limits.min_side
    yielded, skipped, said = 0, [0], bool(errors)
    cap, last = limits.max_images_per_input, -1  # last: the page of the last image given
    for pno in range(npages):
        for item in _page_items(doc, pno, first_on.get(pno + 1, []), figures.get(pno, []), refused.get(pno, []),
                                origin, limits, skipped):
            if callable(item):  # an image or figure: cut only when one more is there (not at exactly the cap)
                if yielded >= cap:
                    yield from _cap_note(origin, cap, skipped[0], floor)
                    if last == npages - 1 and count > npages and not out_of_time:  # on the last page read: both
                        yield _pages_note(origin, npages, count)
                    return True
                item = item()
            yield item
            said = True
            if isinstance(item, (ImageItem, _Pending)):
                yielded, last = yielded + 1, pno
            if clock.used() > PDF_SECONDS:
                if skipped[0]:
                    yield _skip_note(origin, skipped[0], floor)
                yield ItemError(origin, "", f"stopped on page {pno + 1}: out of time ({PDF_SECONDS:g} s of work "
                                            "per PDF)", skipped=True)
                return
    # the cap reached with files attached (not read: more, past it), or on the last page read with more pages left
    # (the images cap would stop it there too: both said)
    capped = yielded >= cap and (attached or last == npages - 1 and count > npages and not out_of_time)
    skipped = skipped[0]
    if capped:
        yield from _cap_note(origin, cap, skipped, floor)
    elif skipped:
        yield _skip_note(origin, skipped, floor)
    elif not said and not attached:
        yield ItemError(origin, "", "no images found in the PDF", skipped=True)
    if out_of_time:
        yield ItemError(origin, "", f"{out_of_time}: out of time ({PDF_SECONDS:g} s of work per PDF)", skipped=True)
    elif count > npages:
        yield _pages_note(origin, npages, count)
    return capped


_OBJECT = re.compile(rb"(?<![0-9])([0-9]{1,7})[ \t\r\n\f\0]+[0-9]+[ \t\r\n\f\0]+obj\b")


def _orphans(doc: pymupdf.Document, data: bytes, origin: str, ctx: Context, clock: _Clock) -> Iterator[Item]:
    """A repaired PDF with no readable pages (a download cut off before its page tree, which a PDF with object
    streams keeps at its end): the image objects MuPDF found, each once (by content), not a mask of another,
    as decoded (no page, so no place or turn), numbered in file order; an error says the pages are lost.
    Only the numbers written `N 0 obj` in the file are looked at (an image is a stream, never in an object
    stream): the xref table runs to the highest number, and a 10 KB file naming object 8,000,000 took 60 s."""
    limits = ctx.limits
    found, masks = [], set()
    last = doc.xref_length()
    numbers = sorted({n for n in (int(m.group(1)) for m in _OBJECT.finditer(data)) if 0 < n < last})
    for i, xref in enumerate(numbers, 1):
        if i % 1000 == 0:
            yield _PAUSE
            if clock.used() > PDF_SECONDS / 2:
                break
        try:
            if doc.xref_get_key(xref, "Subtype") != ("name", "/Image"):
                continue
            keys = {k: doc.xref_get_key(xref, k) for k in ("SMask", "Mask", "Width", "Height", "BitsPerComponent",
                                                           "ColorSpace", "Filter")}
        except Exception:
            continue
        for k in ("SMask", "Mask"):
            if keys[k][0] == "xref":
                masks.add(int(keys[k][1].split()[0]))
        smask = int(keys["SMask"][1].split()[0]) if keys["SMask"][0] == "xref" else 0
        size = [int(float(keys[k][1])) if keys[k][0] in ("int", "float") else 0
                for k in ("Width", "Height", "BitsPerComponent")]
        space = re.match(r"\[?\s*/(\w+)", keys["ColorSpace"][1])
        filt = re.match(r"\[?\s*/(\w+)", keys["Filter"][1])
        found.append((xref, smask, *size, space.group(1) if space else "", "", "", filt.group(1) if filt else "", 0))
    found = [item for item in found if item[0] not in masks]
    yield ItemError(origin, "", "broken PDF: no readable pages" + (
        " (cut off or damaged): images read from the objects left, without their pages" if found else ""))
    images: dict[int, _Image] = {}
    by_content: dict = {}
    problems: dict = {}
    number = yielded = skipped = 0
    for i, item in enumerate(found, 1):
        if i % 100 == 0:
            yield _PAUSE  # other PDFs' steps may run here
        if clock.used() > PDF_SECONDS:
            yield ItemError(origin, "", f"stopped: out of time ({PDF_SECONDS:g} s of work per PDF)", skipped=True)
            break
        size = _pixel_size(doc, {}, item)
        xref = _canonical(doc, item, size, images, by_content, _problem(doc, problems, limits.max_pixels, item))
        if xref != item[0]:  # a copy of an image already read
            continue
        if min(size) < limits.min_side:
            skipped += 1
            continue
        if yielded >= limits.max_images_per_input:
            yield from _cap_note(origin, limits.max_images_per_input, skipped, limits.min_side)
            return
        number += 1
        out = _image_item(doc, images[xref], origin, f"image {number} (object {xref}, its page lost)",
                          limits.max_pixels, limits.decode_side)
        yielded += isinstance(out, (ImageItem, _Pending))
        yield out
    if skipped:
        yield _skip_note(origin, skipped, limits.min_side)


def _under_another(placed: list, spots: tuple, n: int, visible: _Visible) -> bool:
    """Whether another image (not this one drawn again) is the last drawn at placement n's place (within 1
    point), and has no mask: it hides this one whole (a labelled copy laid over the original). `spots` files the
    placements (stencil masks too) by box, as `_Visible.on_top` files the log's, with the last at each box found."""
    box = tuple(placed[n][0]["bbox"])
    if not visible.on_top(box):
        return False
    near, last = spots
    if box not in last:  # one image drawn at one place thousands of times: looked up once
        last[box] = max(near.find(box), default=n)
    top = last[box]
    if top == n:
        return False

    def name(k: int):
        i, it = placed[k]
        return it[0] if it else (i.get("digest") or (i["width"], i["height"]))
    return name(top) != name(n)


def _fold(errors: list[ItemError]) -> list[ItemError]:
    """The same skipped note on consecutive pages (an atlas, each page over PAGE_MAX_IMAGES) is one note, its
    locator `pages 3–62`, not one a page."""
    out: list[ItemError] = []
    first = last = 0
    for err in errors:
        page = int(err.locator[5:]) if err.skipped and re.fullmatch(r"page \d+", err.locator) else 0
        prev = out[-1] if out else None
        if page and last and prev.error == err.error and page == last + 1:
            last = page
            out[-1] = dataclasses.replace(prev, locator=f"pages {first}–{last}")
            continue
        first = last = page
        out.append(err)
    return out


def _pages_note(origin: str, npages: int, count: int) -> ItemError:
    return ItemError(origin, "", f"read only the first {npages} of {count} pages (max_pdf_pages)", skipped=True)


def _cropped(info: dict, item: tuple | None, part: pymupdf.Rect, pno: int, rot: pymupdf.Matrix, figures: dict,
             by_shape: dict, refused: dict, check: Callable, max_pixels: int, covers: list = (),
             shaped: float = 1.0) -> None:
    """A stand-alone image that a clip or the page edge crops, or that `covers` (boxes laid over it) hide in
    part: its visible part becomes a region to render, once for the same part of the same image (with the same
    covers over it, and clipped to a shape that leaves the same share, `shaped`, of it) wherever it is drawn."""
    to_image = ~pymupdf.Matrix(info["transform"])  # page space to the image's own unit square
    uv = part * to_image  # the part in the image's unit square
    du, dv = min(1.0, abs(uv.width)), min(1.0, abs(uv.height))
    native = _along_page((max(1, round(info["width"] * du)), max(1, round(info["height"] * dv))), info, rot)
    name = item[0] if item is not None else (info.get("digest") or b"").hex()
    key = f"cropped:{name}:{min(uv.x0, uv.x1):.3f}:{min(uv.y0, uv.y1):.3f}:{du:.3f}:{dv:.3f}"
    key += f":{shaped:.3f}" if shaped < 1 else ""
    key += "".join(f":{look}@" + ",".join(f"{v:.3f}" for v in place)  # where each cover lies on the image, and
                   for (_, look), place in zip(covers, _in_image(covers, to_image)))  # its colour
    seen = by_shape.get(key) if name else None
    if seen is not None:
        if pno + 1 not in seen.pages:
            seen.pages.append(pno + 1)
        return
    fig = _Figure(pno, part * rot, [pno + 1], inline=True, cropped=True, covered=bool(covers), native=native)
    if name:
        by_shape[key] = fig
    figures.setdefault(pno, []).append(fig)
    if (item is not None and check(item)) or info["width"] * info["height"] > max_pixels:
        refused.setdefault(pno, []).append(part * rot)  # rendering it would decode it whole


def _place(img: _Image, pno: int, rect: pymupdf.Rect, info: dict, rot: pymupdf.Matrix) -> None:
    """Where the image is reported: its first placement that is not a piece of a figure."""
    img.first_page, img.bbox, img.order, img.at_piece = pno + 1, tuple(rect), info["number"], False
    img.transform = tuple(pymupdf.Matrix(info["transform"]) * rot)
    img.ink = info.get("ink", ())


def _along_page(size: tuple, info: dict, rot: pymupdf.Matrix) -> tuple:
    """An image's pixel size along the page's x and y (as shown): swapped when its placement turns it a quarter."""
    a, b, c, d = tuple(pymupdf.Matrix(info["transform"]) * rot)[:4]
    return size if abs(a) + abs(d) >= abs(b) + abs(c) else size[::-1]


_DO = re.compile(rb"/([^\s/\[\]()<>{}%]+)\s*Do\b")


def _drawn_at(page: pymupdf.Page, broken: list, placed: list) -> dict:
    """Where each image MuPDF cannot load (so draws nowhere) comes among the page's images, by xref: by the order
    the page's content stream draws them, just after the image drawn before it (that one's number, as
    get_image_info numbers them, plus 0.5), or first; last (inf) if the page's own content does not draw it (a
    form does) or cannot be read."""
    at = {item[0]: math.inf for item in broken}
    names = {item[7]: item[0] for item in broken if not item[9]}  # those the page itself names
    if not names:
        return at
    try:
        content = page.read_contents()
    except Exception:
        return at
    numbers: dict[str, list] = {}  # name → numbers of its placements drawn by the page itself, in order
    for info, it in placed:
        if it is not None and not it[9]:
            numbers.setdefault(it[7], []).append(info["number"])
    before, done = -1.0, {}
    for name in (n.decode("latin-1") for n in _DO.findall(content)):
        if name in names and at[names[name]] == math.inf:
            at[names[name]] = before + 0.5
        done[name] = done.get(name, 0) + 1
        if done[name] <= len(numbers.get(name, ())):
            before = numbers[name][done[name] - 1]
    return at


TILE_TOL = 0.5  # points: images whose boxes meet this closely along a whole edge are pieces of one picture


def _tiled(boxes: list) -> set[int]:
    """The boxes (by index) that tile one rectangle with others: each meets a neighbour edge to edge (within
    TILE_TOL), side by side at the same height or one above the other at the same width, and together they cover
    their union (no hole, no L shape), being strips (3 times as long as wide) or four or more. A scan stored as
    strips, a picture cut into tiles; two or three photos edge to edge, photos with a gap between them, or
    panels with white space, are left alone."""
    t = TILE_TOL
    drawn: dict[tuple, list] = {}  # one box drawn more than once counts once
    for i, box in enumerate(boxes):
        if math.isfinite(sum(box)) and box[2] - box[0] > t and box[3] - box[1] > t:
            drawn.setdefault(tuple(round(v, 1) for v in box), []).append(i)
    distinct = list(drawn)
    group = list(range(len(distinct)))

    def root(i: int) -> int:
        while group[i] != i:
            group[i] = i = group[group[i]]
        return i

    for lo, hi, s0, s1 in ((0, 2, 1, 3), (1, 3, 0, 2)):  # left against right edges, then top against bottom
        order = sorted(range(len(distinct)), key=lambda i: distinct[i][lo])
        starts = [distinct[i][lo] for i in order]
        for i, box in enumerate(distinct):
            for j in order[bisect.bisect_left(starts, box[hi] - t):bisect.bisect_right(starts, box[hi] + t)]:
                if abs(box[s0] - distinct[j][s0]) <= t and abs(box[s1] - distinct[j][s1]) <= t:
                    group[root(j)] = root(i)
    members: dict[int, list] = {}
    for i, box in enumerate(distinct):
        members.setdefault(root(i), []).append(box)
    out = set()
    for found in members.values():
        thin = all(max(b[2] - b[0], b[3] - b[1]) >= 3 * min(b[2] - b[0], b[3] - b[1]) for b in found)
        if len(found) < 2 or (len(found) < 4 and not thin):
            continue  # two or three photos side by side with no gap are panels; strips, or a grid of 4+, pieces
        union = _area((min(b[0] for b in found), min(b[1] for b in found), max(b[2] for b in found),
                       max(b[3] for b in found)))
        # overlaps along the shared edges (within TILE_TOL) are allowed; a hole is a whole piece missing
        if abs(union - sum(_area(b) for b in found)) <= t * sum(b[2] - b[0] + b[3] - b[1] for b in found):
            out.update(i for b in found for i in drawn[b])
    return out


def _area(r: tuple) -> float:
    return max(0.0, r[2] - r[0]) * max(0.0, r[3] - r[1])


class _Visible:
    """The part of an image's box (unrotated page space) that its clips and the page leave visible: the box
    itself when whole (or when the log has no record of it), None when nothing of it shows. `hidden` says
    which opaque paint drawn after it covers it."""

    CROPPED = 0.9  # below this share of its area seen, an image counts as cropped
    COVERED = 0.001  # from this share of its visible part painted over (an arrow or a circle on a photo), covered
    WHOLE = 0.99  # from this share painted over, nothing of it is seen

    def __init__(self, shown: list, page_rect: tuple, covers: list = (), log: list = (),
                 late: Callable[[], bool] | None = None):
        self.page_rect = page_rect
        self.late = late  # True once the PDF's time is up: `hidden` then raises _Late
        best: dict = {}  # drawn more than once at this very place: judged by its most visible placement
        for drawn, part, _, share in shown:
            if drawn not in best or _area(part) * share > _area(best[drawn][0]) * best[drawn][1]:
                best[drawn] = (part, share)
        self.parts = _Near(list(best), list(best.values()))  # hundreds on a page, maybe
        # the last placement that shows at each place (of any image: one drawn just over another is judged with
        # it, and `on_top` tells whether it hides the other whole): paint drawn after it is drawn after the others
        self.places = self.tops = None
        if covers:
            last = {drawn: place for drawn, part, place, _ in shown if part[2] > part[0] and part[3] > part[1]}
            self.places = _Near(list(last), list(last.values()))
            tops = {box: k for k, (kind, box) in enumerate(log) if kind in ("fill-image", "fill-imgmask")}
            self.tops = _Near(list(tops), list(tops.values()))  # the last image or stencil mask at each place
        self.found: dict = {}
        self.covers = np.array([(n, *box) for n, box, *_ in covers], dtype=float).reshape(-1, 5)
        self.looks = [c[2] for c in covers]
        self.paints = [c[3] for c in covers]
        self.opaque = {c[0] for c in covers if c[2].startswith("image ")}  # places of images without a mask

    def __call__(self, box: tuple) -> tuple | None:
        seen = self._seen(box)
        if seen is None:
            return None
        part, whole = seen[0], seen[2]
        if whole:
            return box  # whole, however thin (a scan stored in strips a row high)
        return None if part[2] - part[0] < 1 or part[3] - part[1] < 1 else part  # cropped to a sliver: nothing to see

    def shaped(self, box: tuple) -> float:
        """The share of the visible part's box that clips of other shapes than rectangles (an ellipse, a star,
        text) leave visible when the image is cropped (1.0 when no such clip is in force, or it counts as whole)."""
        seen = self._seen(box)
        return seen[1] if seen is not None and not seen[2] else 1.0

    def _seen(self, box: tuple) -> tuple | None:
        """The part of the image's box inside its clips' boxes and the page, the share of that part the clips of
        other shapes leave, and whether that leaves CROPPED of the box or more (it counts as whole); None if
        nothing of it shows."""
        parts = self.parts.find(box)
        # drawn more than once about here: judged by its most visible placement
        seen, share = max(parts, key=lambda p: _area(p[0]) * p[1]) if parts else (box, 1.0)
        x0, y0 = max(seen[0], self.page_rect[0]), max(seen[1], self.page_rect[1])
        x1, y1 = min(seen[2], self.page_rect[2]), min(seen[3], self.page_rect[3])
        if x1 - x0 <= 0 or y1 - y0 <= 0 or share <= 0:
            return None
        area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)
        return (x0, y0, x1, y1), share, (x1 - x0) * (y1 - y0) * share >= self.CROPPED * area

    def on_top(self, box: tuple) -> bool:
        """Whether the last image drawn at this place (within 1 point) is one without a mask (not a stencil
        mask either), which hides whatever other image is drawn there before it."""
        tops = self.tops.find(box) if self.tops is not None else []
        return bool(tops) and max(tops) in self.opaque

    def hidden(self, box: tuple, part: tuple, transform: tuple = ()) -> tuple[list, float]:
        """The opaque paint drawn after the image (fills and strokes of any shape, block glyphs, shadings, images
        without a mask) over its visible part, as (box cut to that part, look), if it paints at least COVERED of
        that part ([] if less: a dot, a hairline, a frame on its edge); and the share it paints. Drawn more than
        once here: judged by its last placement that shows, the least covered. An image turned or skewed by its
        `transform` (to page space) is judged by the parallelogram it fills, not its bounding box."""
        places = self.places.find(box) if self.places is not None else []
        if not places:
            return [], 0.0
        key = (max(places), part)
        if key not in self.found:  # one image drawn here thousands of times: worked out once
            self.found[key] = self._over(part, max(places), transform)
        return self.found[key]

    def _over(self, part: tuple, place: int, transform: tuple = ()) -> tuple[list, float]:
        """The paint drawn after the placement (`place`, in the log) over the part, if it hides enough of it."""
        c = self.covers
        x0, y0 = np.maximum(c[:, 1], part[0]), np.maximum(c[:, 2], part[1])
        x1, y1 = np.minimum(c[:, 3], part[2]), np.minimum(c[:, 4], part[3])
        on = np.flatnonzero((c[:, 0] > place) & (x1 > x0) & (y1 > y0))
        if not len(on):
            return [], 0.0
        boxes = [tuple(b) for b in np.stack([x0, y0, x1, y1], axis=1)[on]]
        share, touching = _painted(part, boxes, [self.paints[k] for k in on], transform, self.late)
        if share < self.COVERED:
            return [], share
        return [(boxes[k], self.looks[on[k]]) for k in touching], share


EDGE = 2.0  # points: paint this close to an image's edge (a frame stroked on it, a neighbour's edge) hides nothing


class _Late(Exception):
    """The PDF's time ran out while covers were measured (`_painted` looks every LATE_EVERY covers)."""


LATE_EVERY = 256


def _painted(part: tuple, boxes: list, paints: list, transform: tuple = (),
             late: Callable[[], bool] | None = None) -> tuple[float, list]:
    """The share of an image's visible `part` that covers paint, and which of them paint any of it (by index).
    Each cover is its box cut to the part and its paint (None: it fills the box; else coverage a pixel, as
    `_LogDevice.paint` keeps it). Measured on a grid of 1 point (coarser past 512 points a side): each cell counts
    the most any cover paints of it (the share of it a box covers, or the coverage of a drawn cover's pixel at its
    centre). Cells within EDGE of the part's or the image's edges do not count (the image is its unit square moved
    by `transform`: a turned image is the parallelogram it fills, and a box in an empty corner of its bounding box
    hides nothing of it). `late()` is asked every LATE_EVERY covers, and True raises _Late (each cover is a few
    array operations: 10,000 boxes over each of 100 images took 99 s)."""
    s = max(1.0, (part[2] - part[0]) / 512, (part[3] - part[1]) / 512)
    xs, ys = np.arange(part[0] + s / 2, part[2], s), np.arange(part[1] + s / 2, part[3], s)
    inside = (((ys > part[1] + EDGE) & (ys < part[3] - EDGE))[:, None]
              & ((xs > part[0] + EDGE) & (xs < part[2] - EDGE))[None, :])
    if transform and inside.any():
        a, b, c, d = transform[:4]
        eu, ev = EDGE / max(math.hypot(a, b), 1e-6), EDGE / max(math.hypot(c, d), 1e-6)
        m = ~pymupdf.Matrix(transform)  # page space to the image's unit square
        x, y = np.meshgrid(xs, ys)
        u, v = x * m.a + y * m.c + m.e, x * m.b + y * m.d + m.f
        inside &= (u > eu) & (u < 1 - eu) & (v > ev) & (v < 1 - ev)
    if not inside.any():
        return 0.0, []
    hit = np.zeros(inside.shape, dtype=np.float32)
    touching = []
    for k, (box, paint) in enumerate(zip(boxes, paints)):  # the grid's cells each cover meets
        if late is not None and k % LATE_EVERY == LATE_EVERY - 1 and late():
            raise _Late
        i0, i1 = np.searchsorted(xs + s / 2, box[0], side="right"), np.searchsorted(xs - s / 2, box[2])
        j0, j1 = np.searchsorted(ys + s / 2, box[1], side="right"), np.searchsorted(ys - s / 2, box[3])
        if i1 <= i0 or j1 <= j0:
            continue
        if paint is None:  # the share of each cell inside the box
            fx = np.clip(np.minimum(xs[i0:i1] + s / 2, box[2]) - np.maximum(xs[i0:i1] - s / 2, box[0]), 0, s) / s
            fy = np.clip(np.minimum(ys[j0:j1] + s / 2, box[3]) - np.maximum(ys[j0:j1] - s / 2, box[1]), 0, s) / s
            value = np.outer(fy, fx).astype(np.float32)
        else:  # the cover's pixel under each point (its share of that pixel painted)
            cover, px, py, size = paint
            ci = np.clip(((xs[i0:i1] - px) / size).astype(int), 0, cover.shape[1] - 1)
            cj = np.clip(((ys[j0:j1] - py) / size).astype(int), 0, cover.shape[0] - 1)
            value = cover[np.ix_(cj, ci)].astype(np.float32) / 255
        if (value[inside[j0:j1, i0:i1]] > 0).any():
            touching.append(k)
            hit[j0:j1, i0:i1] = np.maximum(hit[j0:j1, i0:i1], value)
    return float(hit[inside].sum() / inside.sum()), touching


def _in_image(covers: list, m: pymupdf.Matrix) -> list:
    """The covers' boxes moved by m (page space to an image's unit square), all at once: thousands of them (a
    table's cells over a page-wide picture) cost little."""
    if not covers:
        return []
    b = np.array([c for c, _ in covers], dtype=float)
    x, y = b[:, [0, 0, 2, 2]], b[:, [1, 3, 1, 3]]  # each box's corners
    u, v = x * m.a + y * m.c + m.e, x * m.b + y * m.d + m.f
    return np.stack([u.min(1), v.min(1), u.max(1), v.max(1)], axis=1).tolist()


def _page_items(doc: pymupdf.Document, pno: int, images: list[_Image], figures: list[_Figure], refused: list,
                origin: str, limits, skipped: list[int]) -> Iterator[Item]:
    """One page's images and figures, in order, each a function that decodes or renders it (so a caller at its
    cap knows one more is there without that work); notes as they are. Counts decorations in skipped[0].
    A region over an image too large to decode is not rendered (MuPDF would decode it)."""
    floor = limits.min_side
    n_img = n_fig = 0
    for img in images:
        if img.placements and img.in_figures >= img.placements:  # every placement is a piece of a figure
            continue
        if min(img.width, img.height) < floor or (img.bbox and img.max_short_side < floor / 2):
            skipped[0] += 1
            continue
        n_img += 1
        yield partial(_image_item, doc, img, origin, f"page {pno + 1}, image {n_img}", limits.max_pixels,
                      limits.decode_side)
    for fig in figures:
        if fig.inline:
            if min(fig.native) < floor or min(fig.rect.width, fig.rect.height) < floor / 2:
                skipped[0] += 1
                continue
            n_img += 1
            kind = "covered" if fig.covered else "cropped" if fig.cropped else "inline"
            locator = f"page {pno + 1}, image {n_img} ({kind}, rendered)"
            w, h = fig.native
            if w * h > limits.max_pixels:
                what = "image" if fig.cropped else "inline image"
                yield ItemError(origin, locator, f"{what} too large: {w}x{h} pixels (max_pixels {limits.max_pixels})")
                continue
        else:
            n_fig += 1
            locator = f"page {pno + 1}, figure {n_fig} (rendered)"
        if any(fig.rect.intersects(box) for box in refused):
            yield ItemError(origin, locator, "not rendered: it overlaps an image too large to decode")
            continue
        yield partial(_render, doc, fig, origin, locator, limits.max_pixels)


def _cap_note(origin: str, cap: int, skipped: int, floor: int) -> Iterator[ItemError]:
    if skipped:
        yield _skip_note(origin, skipped, floor)
    yield ItemError(origin, "", f"stopped after {cap} image{'s' * (cap != 1)} (max_images_per_input)", skipped=True)


def _skip_note(origin: str, skipped: int, floor: int) -> ItemError:
    noun = "image" if skipped == 1 else "images"
    return ItemError(origin, "", f"skipped {skipped} {noun} smaller than {floor} px (decoration)", skipped=True)


def _canonical(doc: pymupdf.Document, item: tuple, size: tuple, images: dict, by_content: dict,
               problem: str, streams: dict | None = None) -> int:
    """The xref that stands for this image's content (first one seen with the same bytes, colour space, colour key
    and decoding parameters). Those three are compared only between images whose bytes match (`_values`): most
    images' bytes are their own, and reading the three cost 10 % of a PDF of 2,500 small images."""
    xref, smask, width, height = item[0], item[1], item[2], item[3]
    if smask and doc.xref_get_key(xref, "SMask")[0] == "null" and doc.xref_get_key(xref, "Mask")[0] != "xref":
        smask = 0
    streams = {} if streams is None else streams
    h = hashlib.md5(f"{width}x{height}/{item[4]}/{item[5]}/{item[6]}/{item[8]}/".encode())
    try:
        h.update(doc.xref_get_key(xref, "Decode")[1].encode())
        h.update(doc.xref_stream_raw(xref) or b"")
        if smask:
            h.update(doc.xref_stream_raw(smask) or b"")
        digest = h.hexdigest()
    except Exception:
        digest = f"unreadable {xref}"  # unreadable stream: keep it apart, decoding will report it
    same = by_content.setdefault(digest, [])  # the canonical xrefs of these bytes, one for each colour space, …
    if same:
        values = _values(doc, xref, streams)
        for other in same:
            if values is not None and _values(doc, other, streams) == values:
                return other
    same.append(xref)
    images[xref] = _Image(xref, smask, size[0], size[1], _format(doc, xref, item[8]), item[5], problem=problem)
    return xref


def _values(doc: pymupdf.Document, xref: int, cache: dict) -> bytes | None:
    """The digests of an image's colour space, colour key (Mask) and DecodeParms, kept in `cache` by ("values",
    xref); None when they cannot be read (the image is kept apart)."""
    key = ("values", xref)
    if key not in cache:
        try:  # the same data under another palette, profile or colour key: another image
            cache[key] = b"".join(_value_digest(doc, xref, k, cache) for k in ("ColorSpace", "Mask", "DecodeParms"))
        except Exception:
            cache[key] = None
    return cache[key]


_REF = re.compile(r"\b(\d+)\s+\d+\s+R\b")


def _value_digest(doc: pymupdf.Document, xref: int, key: str, cache: dict, most: int = 16) -> bytes:
    """MD5 of the value of `key` in an object's dictionary with the objects it names written in their place (a
    palette or profile stream by its data), at most `most` of them: a colour space written inline, or as an object
    of its own (once or twice), gives the same digest. Stream digests are kept in `cache`."""
    seen: set[int] = set()

    def expand(text: str) -> str:
        return _REF.sub(named, text)

    def named(m: re.Match) -> str:
        n = int(m.group(1))
        if n in seen or len(seen) >= most:  # a loop, or too many: left a bare reference
            return "R"
        seen.add(n)
        text = expand(doc.xref_object(n, compressed=True))
        if doc.xref_is_stream(n):
            if n not in cache:
                cache[n] = hashlib.md5(doc.xref_stream_raw(n) or b"").hexdigest()
            text += f" stream {cache[n]}"
        return text

    return hashlib.md5(expand(doc.xref_get_key(xref, key)[1]).encode()).digest()


def _format(doc: pymupdf.Document, xref: int, first: str) -> str:
    """The image's coding, from the last of its filters (PyMuPDF names the first: an ASCII wrapper, maybe)."""
    if first in FILTERS and first not in ("FlateDecode", "LZWDecode", "RunLengthDecode"):  # these may wrap a JPEG
        return FILTERS[first]
    try:
        kind, value = doc.xref_get_key(xref, "Filter")
        if kind == "xref":  # the filter (or its array) is an object of its own
            value = doc.xref_object(int(value.split()[0]), compressed=True)
        names = re.findall(r"/(\w+)", value)
    except Exception:
        names = []
    names = [n for n in names if not n.startswith("ASCII")]
    if not names:  # none that could be read: PyMuPDF's own name for it
        return FILTERS.get(first, "other") if first else FILTERS[""]
    return FILTERS.get(names[-1], "other")


def _image_item(doc: pymupdf.Document, img: _Image, origin: str, locator: str, max_pixels: int,
                decode_side: int | None = None) -> Item | _Pending:
    if img.problem or img.width * img.height > max_pixels:
        return ItemError(origin, locator, img.problem or f"embedded image too large: {img.width}x{img.height} "
                                                         f"pixels (max_pixels {max_pixels})")
    allow_pixels(max_pixels)  # a cap raised past Pillow's own (--max-pixels): Pillow's bomb check follows it
    image = _plain_jpeg(doc, img, decode_side) if img.filter == "JPEG" else _plain_flate(doc, img)
    if image is not None:
        return _Pending(image, partial(_finish, img, origin, locator), partial(_mupdf_item, doc, img, origin, locator))
    return _mupdf_item(doc, img, origin, locator)


def _mupdf_item(doc: pymupdf.Document, img: _Image, origin: str, locator: str) -> Item:
    pymupdf.TOOLS.store_shrink(100)  # decode afresh: a cached decode would hide MuPDF's warnings
    # MuPDF drops a warning equal to the one before (counting repeats); flushing lets this decode's through
    pymupdf.mupdf.fz_flush_warnings()
    pymupdf.TOOLS.reset_mupdf_warnings()
    try:
        image = _decode(doc, img.xref, img.smask, img.ink)
    except Exception as exc:
        image = _own_colours(doc, img)
        if image is None:
            return ItemError(origin, locator, f"could not decode embedded image (xref {img.xref}): {_short(exc)}")
        return _finish(img, origin, locator, image)
    problem = _decode_problem(pymupdf.TOOLS.mupdf_warnings())
    if problem:  # MuPDF pads broken or cut-off data with black: that is not the image
        return ItemError(origin, locator, f"could not decode embedded image (xref {img.xref}): {problem}")
    return _finish(img, origin, locator, image)


def _own_colours(doc: pymupdf.Document, img: _Image) -> Image.Image | None:
    """A plain JPEG whose colour space object is lost (a file cut off before the profile its images share, or the
    object stream holding it): MuPDF cannot load it, though the JPEG says its own colours; decoded by Pillow when
    gray or RGB. None for any other image."""
    if img.filter != "JPEG" or img.smask:
        return None
    try:
        kind, value = doc.xref_get_key(img.xref, "ColorSpace")
        if kind != "xref" or any(doc.xref_get_key(img.xref, key)[0] != "null" for key in ("Decode", "Mask")):
            return None
        try:
            if doc.xref_object(int(value.split()[0]), compressed=True) != "null":
                return None  # there, so MuPDF failed on something else
        except Exception:
            pass  # in an object stream that is lost
        image = Image.open(io.BytesIO(doc.xref_stream_raw(img.xref)))
        if image.format != "JPEG" or image.mode not in ("L", "RGB") or image.size != (img.width, img.height):
            return None
        image.load()  # a JPEG cut off raises
        return image
    except Exception:
        return None


def _finish(img: _Image, origin: str, locator: str, image: Image.Image) -> Item:
    decoded = image.size
    if image.mode in ("RGBA", "LA") and image.getchannel("A").getextrema()[1] == 0:
        # its mask hides all of it: the page shows nothing there (a spacer, an overlay), so nothing comes out
        return ItemError(origin, locator, f"embedded image (xref {img.xref}) is transparent everywhere: nothing of it "
                                          "shows", skipped=True)
    image = _orient(image, img.transform)
    meta = {"page": img.first_page or None,  # None: its page lost (`_orphans`)
            "bbox": [round(v, 2) for v in img.bbox] if img.bbox else None, "xref": img.xref,
            "pages": list(img.pages), "colorspace": img.colorspace,
            "smask": bool(img.smask) and image.mode in ("RGBA", "LA")}  # a mask left out (damaged) is not one
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
        if _plain_components(doc, img.xref) is None:  # MuPDF converts it as the page shows it
            return None
        # size is capped by max_pixels already; Pillow's DecompressionBombWarning is hidden by files' module-level
        # filter (catch_warnings here, on a reading thread, put back the whole process's filters as they were
        # when it began: a filter the program, or a module medimg imported, added meanwhile was lost)
        image = Image.open(io.BytesIO(doc.xref_stream_raw(img.xref)))
        if image.format != "JPEG" or image.mode not in ("L", "RGB") or image.size != (img.width, img.height):
            return None
        draft_jpeg(image, decode_side)
        return image
    except Exception:  # truncated or odd: MuPDF decides and reports
        return None


def _plain_flate(doc: pymupdf.Document, img: _Image) -> Callable[[], Image.Image] | None:
    """An 8-bit gray or RGB Flate image with nothing on top (no mask, Decode array, parameters or other
    filter): its raw stream, read now, and the function that inflates it later (`_Pending.resolve`).
    Anything else: None."""
    if img.filter != "FLATE" or img.smask:
        return None
    try:
        if not re.fullmatch(r"\[?\s*/FlateDecode\s*\]?", doc.xref_get_key(img.xref, "Filter")[1]):
            return None
        if any(doc.xref_get_key(img.xref, key)[0] != "null" for key in ("Decode", "DecodeParms", "Mask", "SMask")):
            return None
        if [doc.xref_get_key(img.xref, key)[1] for key in ("BitsPerComponent", "Width", "Height")] != [
                "8", str(img.width), str(img.height)]:
            return None
        n = _plain_components(doc, img.xref)
        if n is None:  # MuPDF converts it as the page shows it
            return None
        return partial(_inflate, doc.xref_stream_raw(img.xref), "L" if n == 1 else "RGB", (img.width, img.height))
    except Exception:  # odd: MuPDF decides and reports
        return None


def _inflate(raw: bytes, mode: str, size: tuple[int, int]) -> Image.Image:
    """The pixels of a plain Flate image; a stream that inflates to more or fewer bytes than its size takes, or
    that is cut off or damaged, raises (MuPDF then decides)."""
    expected = size[0] * size[1] * len(mode)
    inflater = zlib.decompressobj()
    data = inflater.decompress(raw, expected)  # never more than the image takes
    if len(data) != expected or not inflater.eof:
        raise ValueError("Flate stream does not match the image's size")
    return Image.frombuffer(mode, size, data, "raw", mode, 0, 1)


def _plain_components(doc: pymupdf.Document, xref: int) -> int | None:
    """The colour components (1 or 3) of an image whose /ColorSpace shows its numbers as they are: DeviceGray,
    DeviceRGB, or an ICC profile that says it is sRGB or sGray (`_standard_profile`; and whose own colour space
    agrees with its /N); None for any other (MuPDF converts it as the page shows it)."""
    kind, value = doc.xref_get_key(xref, "ColorSpace")
    if kind == "xref":
        kind, value = "array", doc.xref_object(int(value.split()[0]), compressed=True)
    if kind == "name":
        return {"/DeviceGray": 1, "/DeviceRGB": 3}.get(value)
    found = re.fullmatch(r"\s*\[\s*/ICCBased\s+(\d+)\s+0\s+R\s*\]\s*", value) if kind == "array" else None
    if not found:
        return None
    n = int(doc.xref_get_key(int(found.group(1)), "N")[1])
    data = doc.xref_stream(int(found.group(1)))
    if data[16:20] != {1: b"GRAY", 3: b"RGB "}.get(n):
        return None
    from PIL import ImageCms

    described = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(data)))
    return n if _standard_profile(described, n) else None


def _standard_profile(described: str, n: int) -> bool:
    """Whether an ICC profile, by its description, shows samples as they are: sRGB, or for grey sGray (the grey
    of sRGB, which MuPDF writes for every grey image it stores, as PyMuPDF's insert_image does: MuPDF's own
    conversion from it to device grey changes no value)."""
    name = described.lower().replace(" ", "")
    return "srgb" in name or (n == 1 and "sgray" in name)


# MuPDF's words about a colour profile LittleCMS cannot read or link: it then shows the image in the device colours
# of its /N (or converts it its own faster way), as the page does, so they are no damage to the image
_COLOUR_MANAGEMENT = re.compile(r"\bl?cms|\bICC\b|colou?r conversion", re.IGNORECASE)


def _decode_problem(warnings: str) -> str:
    lines = [w.strip() for w in warnings.splitlines() if w.strip() and not _COLOUR_MANAGEMENT.search(w)]
    bad = [w for w in lines if "error" in w.lower()] or [
        w for w in lines if "truncated" in w.lower() or "premature end" in w.lower()]
    return _short(Exception(bad[0])) if bad else ""


def _decode(doc: pymupdf.Document, xref: int, smask: int, ink: tuple = ()) -> Image.Image:
    pix = pymupdf.Pixmap(doc, xref)
    if pix.colorspace is None:  # a stencil mask drawn on its own: ink where alpha is set
        return _inked(Image.frombytes("L", (pix.width, pix.height), pix.samples), ink)
    name, n = pix.colorspace.name, pix.n - pix.alpha
    if not _plain_colours(name, n):  # CMYK, Lab, Separation, an ICC profile, … (a grey profile stays grey)
        pix = pymupdf.Pixmap(pymupdf.csGRAY if n == 1 and name.startswith("ICCBased(") else pymupdf.csRGB, pix)
    resize_mask = None
    mask = _mask(doc, smask) if smask else None
    if mask is not None:
        if pix.alpha:
            pix = pymupdf.Pixmap(pix, 0)
        if (mask.width, mask.height) == (pix.width, pix.height):
            pix = pymupdf.Pixmap(pix, mask)
        else:
            resize_mask = Image.frombytes("L", (mask.width, mask.height), mask.samples)
    return _to_pil(pix, resize_mask)


def _mask(doc: pymupdf.Document, smask: int) -> pymupdf.Pixmap | None:
    """The image's soft or stencil mask; None when it cannot be loaded (its object cut off or missing in a
    damaged file), as the page then draws the image without it."""
    try:
        return pymupdf.Pixmap(doc, smask)
    except Exception:
        return None


def _inked(alpha: Image.Image, ink: tuple) -> Image.Image:
    """A stencil mask's coverage painted in its ink (RGB; black if none) on white, as the page shows it: grey
    (mode L) for black or grey ink, else RGB."""
    r, g, b = ink or (0, 0, 0)
    if r == g == b:
        return Image.eval(alpha, lambda a: 255 - a * (255 - r) // 255)
    a = np.asarray(alpha, dtype=np.float32)[..., None] / 255
    rgb = 255 - a * (255 - np.array([r, g, b], dtype=np.float32))
    return Image.fromarray(np.round(rgb).astype(np.uint8), "RGB")


def _plain_colours(name: str, n: int) -> bool:
    """Whether samples in MuPDF's colour space `name` are shown as they are: device RGB or grey, or an sRGB
    or sGray profile (another ICC profile, a wide-gamut one say, is converted as the page's rendering converts it)."""
    if name in ("DeviceRGB", "DeviceGray"):
        return True
    return n in (1, 3) and name.startswith("ICCBased(") and _standard_profile(name, n)


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


def _render(doc: pymupdf.Document, fig: _Figure, origin: str, locator: str, max_pixels: int = 10**8) -> Item:
    rect = fig.rect
    if fig.inline:  # at the image's own resolution along the side that has more of it, within sane bounds
        per_point = max(fig.native[0] / max(rect.width, 1.0), fig.native[1] / max(rect.height, 1.0))
        dpi = min(300.0, max(72.0, 72.0 * per_point))
    else:
        dpi = RENDER_DPI
    dpi = min(dpi, 72.0 * RENDER_MAX_SIDE / max(rect.width, rect.height, 1.0))
    if fig.paint * (dpi / 72.0) ** 2 > RENDER_MAX_PAINT:  # drawn over and over: fewer pixels, or none
        dpi = 72.0 * math.sqrt(RENDER_MAX_PAINT / fig.paint)
        if dpi < RENDER_MIN_DPI:
            times = fig.paint / max(abs(rect), 1.0)
            return ItemError(origin, locator, f"not rendered: drawn over about {times:,.0f} times")
    # a fractional zoom, below 1 dpi for a huge page; never over RENDER_MAX_SIDE a side or max_pixels
    zoom = min(dpi / 72.0, math.sqrt(max_pixels / max(rect.width * rect.height, 1e-6)))
    for _ in range(4):  # the pixmap's box is the region's rounded outwards: shrink until that fits too
        box = (rect * pymupdf.Matrix(zoom, zoom)).irect
        side, area = max(box.width, box.height, 1), max(box.width * box.height, 1)
        if side <= RENDER_MAX_SIDE and area <= max_pixels:
            break
        zoom *= 0.99 * min(1.0, RENDER_MAX_SIDE / side, math.sqrt(max_pixels / area))
    else:
        return ItemError(origin, locator, f"not rendered: {box.width}x{box.height} pixels even at the lowest zoom "
                                          f"(max_pixels {max_pixels})")
    try:
        pix = doc.load_page(fig.page).get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), clip=rect, alpha=False)
        image = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
    except Exception as exc:
        return ItemError(origin, locator, f"could not render region: {_short(exc)}")
    if all(lo == hi == 255 for lo, hi in image.getextrema()):  # the page's white alone: what it draws is hidden
        return ItemError(origin, locator, "rendered region is white everywhere: nothing of it shows", skipped=True)
    dpi = 72.0 * zoom
    meta = {"page": fig.page + 1, "bbox": [round(v, 2) for v in rect], "pages": list(fig.pages),
            "rendered": True, "dpi": int(dpi + 1e-6) if dpi >= 1 else round(dpi, 4)}
    if fig.inline:
        meta["inline"] = True
    if fig.covered:
        meta["covered"] = True
        meta["note"] = "covered in part on the page: rendered as seen"
    return ImageItem(origin, locator, image, "PDF/rendered", meta)


_BI_ID = re.compile(rb"\b(?:BI|ID)\b")  # an inline image's start and the start of its data
_INLINE_W = re.compile(rb"/W(?:idth)?\s+(\d+)")
_INLINE_H = re.compile(rb"/H(?:eight)?\s+(\d+)")


def _inline_over_cap(doc: pymupdf.Document, page: pymupdf.Page, max_pixels: int, forms: dict) -> str:
    """Why the page must not be run ("" if it may): an inline image over max_pixels in its content stream, in a
    form XObject it draws or in a tiling pattern of its resources or of those forms and patterns (`forms` keeps
    each stream's answer, and what its resources name, across pages). MuPDF finds the end of an inline image's
    data by decoding it, each time the page is run (a 30,000² inline JPEG in a 53 KB fuzzed file: 10 s and 1 GB
    a run)."""
    try:
        found = _inline_in(page.read_contents(), max_pixels)
        # forms drawn by the page and its forms, patterns of the page; then what their resources name, each once
        todo, seen = [x for x, *_ in page.get_xobjects()] + _named(doc, page.xref, "Pattern"), set()
        while todo and not found:
            xref = todo.pop()
            if xref in seen:
                continue
            seen.add(xref)
            if xref not in forms:
                image = doc.xref_get_key(xref, "Subtype")[1] == "/Image"
                forms[xref] = ("", []) if image else (_inline_in(doc.xref_stream(xref) or b"", max_pixels),
                                                      _named(doc, xref, "XObject") + _named(doc, xref, "Pattern"))
            found, named = forms[xref]
            todo += named
    except Exception:
        return ""  # MuPDF says what is wrong when it runs the page
    return found


def _named(doc: pymupdf.Document, xref: int, kind: str) -> list[int]:
    """The objects named in Resources/kind (Pattern, XObject) of a page, form or pattern."""
    what, value = doc.xref_get_key(xref, "Resources/" + kind)
    if what == "xref":  # the dictionary is an object of its own
        what, value = "dict", doc.xref_object(int(value.split()[0]))
    named = [int(x) for x in re.findall(r"(\d+) 0 R", value)] if what == "dict" else []
    return [x for x in named if 0 < x < doc.xref_length()]  # a broken reference is passed over


def _inline_in(content: bytes, max_pixels: int) -> str:
    for head in _inline_heads(content):
        w, h = _INLINE_W.search(head), _INLINE_H.search(head)
        if w and h and int(w.group(1)) * int(h.group(1)) > max_pixels:
            return (f"an inline image of {int(w.group(1))}x{int(h.group(1))} pixels, over the max_pixels cap of "
                    f"{max_pixels:,}")
    return ""


def _inline_heads(content: bytes) -> Iterator[bytes]:
    """What each inline image's BI … ID holds (at most 4,096 bytes), in one pass: a regular expression tried
    from each BI read up to 4,096 bytes on (a stream of 1 MB of `BI ` took over 30 s)."""
    words = [(m.group(), m.start(), m.end()) for m in _BI_ID.finditer(content)]
    next_id, found = [None] * len(words), None
    for i in range(len(words) - 1, -1, -1):  # for each word, the first ID from it on
        found = i if words[i][0] == b"ID" else found
        next_id[i] = found
    i = 0
    while i < len(words):
        word, _, end = words[i]
        j = next_id[i + 1] if word == b"BI" and i + 1 < len(words) else None
        if j is not None and words[j][1] - end <= 4096:
            yield content[end:words[j][1]]
            i = j + 1
        else:
            i += 1


def _short(exc: Exception) -> str:
    """MuPDF's reason in one line: an error raised inside our device comes wrapped by SWIG ("Director error:
    <class …>: code=5: …" and a traceback), and MuPDF puts "code=N: " before its own text."""
    text = str(exc).strip() or type(exc).__name__
    inner = re.search(r"Director error: <class '[\w.]+'>: (.*)", text)
    if inner:
        text = inner.group(1)
    text = re.sub(r"^(code=\d+: )+", "", text.splitlines()[0].strip()) or type(exc).__name__
    if "exception stack overflow" in text:
        text = "drawings nested too deep for MuPDF (exception stack overflow)"
    return text if len(text) <= 200 else text[:197] + "..."


register(SourcePlugin(name="pdf", accepts=accepts, open=open_pdf, priority=20))
