"""Finding figures on a PDF page (called by `pdf.py`, under its MuPDF lock).

`_bbox_log(page, deadline)` runs the page through MuPDF once and returns its bbox log (kind and box of
everything drawn, unrotated page space), why MuPDF was stopped, if it was ("steps": more than
PAGE_MAX_STEPS drawing steps; "time": past the deadline; "wide": a line over MAX_LINE_WIDTH wide; "dashes":
dashed lines MuPDF would cut into more than PAGE_MAX_DASHES dashes), each image's box with the part of it its
clips' boxes leave visible (and the share of that part clips of other shapes leave), the opaque paint that may hide
an image drawn before them (`_LogDevice.covers`: fills, strokes, block glyphs, shadings and unmasked images, each
with what it paints), and the colour each stencil image mask is painted in (`_LogDevice.inks`).
`_figure_rects(page, log, image_rects, floor,
cap)` takes that log and returns the regions of vector drawings that look like figures, each as
(pymupdf.Rect, shape signature); `_Paint(log, page_rect).over(region)` says what rendering a region costs.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
import time

import numpy as np

from .mupdf_import import pymupdf  # without its layout-analysis package (see there)
from pymupdf import mupdf  # noqa: E402

CLUSTER_TOL = 6.0  # points: drawings closer than this belong to the same figure
MAX_CLUSTER_RECTS = 20_000  # pages with more drawing pieces are clustered on a coarser grid
MAX_SWEEPS = 32  # clustering passes; more are needed only by contrived layouts (each pass merges what touches)
THIN = 2.0  # points: a drawing thinner than this (and 4x as long) is a rule or table line
PAGE_MAX_STEPS = 200_000  # drawing calls (paths, text, images, clips: a form XObject is one) MuPDF may make for
# one page while it is read; past this (nested forms drawn millions of times) its figures are not looked for
PAGE_MAX_IMAGES = 2_000  # images drawn on one page; past this, as past PAGE_MAX_STEPS (a scan in strips has
# hundreds; a page drawing one image thousands of times is made to cost time matching them to their places)
CELL_TOL = 2.0  # points: box edges this close are one column or row line of a table
TEXT_MARGIN = 8.0  # points: short text this close to a figure is part of it (axis labels) ...
LABEL_EMS = 1.5  # ... or this many of its font size (at most 2 * TEXT_MARGIN) for a label no larger than the
# body text and not in a paragraph: tick labels set a little further out
MAX_RASTERS = 1_000  # covers of a page that are not rectangles whose paint is found by drawing them (at 1 pixel a
# point, at most 256 pixels a side: about 0.2 ms each); past this, or past RASTER_PIXELS, each counts by its box
RASTER_PIXELS = 4_000_000  # pixels (a byte each, kept for the page) those drawings may take on one page
MAX_TEXT_RASTERS = 200  # texts over images drawn to look for block glyphs on one page; past this text is no cover
# (a page's text laid over a background picture is drawn, each line, and let be)
MAX_LINE_WIDTH = 100_000.0  # points: MuPDF draws a round join or cap of a line this wide in some hundreds of pieces
# (at 300 dpi); one 1e16 points wide in about 100 million, and one 1e30 wide never ends. Past this, as past
# PAGE_MAX_STEPS, the page is not drawn
PAGE_MAX_DASHES = 1_000_000  # dashes a page's dashed strokes may be cut into (their length over their pattern's):
# MuPDF cuts a stroke into all of them to draw it, and a wide one into every one it crosses, about 1 s and 100 MB a
# million; a line 10 billion points long dashed every 5 points took 6 GB and never ended. Past this, as past
# PAGE_MAX_STEPS, the page is not drawn (no covers found, no figure rendered)
MAX_CLIP_DRAWS = 2_000  # clips that are no rectangles (an ellipse, a star, text) drawn on one page to find how much
# of each image under them they leave (at 1 pixel a point, at most CLIP_SIDE pixels a side; about 0.5 ms each); past
# this, images are judged by their clips' boxes
CLIP_SIDE = 128
CLIP_DEPTH = 8  # of such clips nested deeper (MuPDF allows about 1,000), the innermost this many are drawn
BLOCK_TEXT = 0.5  # share of its box a text's glyphs paint from which it hides what is under it (a run of block
# glyphs typed over a name); letters paint 15-30 % of theirs, and leave the image as it is


class _LogDevice(mupdf.FzDevice2):
    """Records what Page.get_bboxlog() gives (kind and box of everything drawn, unrotated page space), and
    stops MuPDF (the cookie's abort) after PAGE_MAX_STEPS calls, PAGE_MAX_IMAGES images or past the deadline
    (time.monotonic()).
    Clips and groups count too: every form XObject drawn is a clip, so nested forms repeating one another
    stop early."""

    def __init__(self, deadline: float):
        super().__init__()
        self.log: list = []
        self.shown: list = []  # (image box, the part of it inside the clips' boxes, place in the log, share of that
        # part the clips that are no rectangles leave visible), unrotated page space
        self.clips: list = [(-math.inf, -math.inf, math.inf, math.inf)]  # the clip stack's boxes
        self.shapes: list = [None]  # along the clip stack: the clips in force that are no rectangles, as a chain
        # (clip, the chain before it, shares found under it) of functions that clip a device as each did (an ellipse,
        # a polygon, a turned box, text in clipping mode, a stroke)
        self.clip_draws = 0
        self.masks: list = []  # areas of soft masks being drawn (each becomes a clip at end_mask)
        self.soft: list = [False]  # along the clip stack: whether a soft mask is in force
        self.plain: list = [True]  # per group: whether what is drawn shows as it is (normal blend, opaque; not a
        # soft mask's content, not a pattern's cell)
        self.covers: list = []  # (place in the log, box within the clips, look, paint) of opaque paint over images:
        # the look is its colour (and the shape it paints), a number of its own for an image or shading; paint is
        # None when it fills its box (a rectangle, an image, a shading), else (coverage 0-255 a pixel, x0, y0, pixel
        # size in points)
        self.reach: tuple = ()  # the box of all images' visible parts so far: only fills there may cover one
        self.shown_parts: list = []  # the images' visible parts so far (as an array in `parts`, for `_meets`)
        self.parts = self._room = np.zeros((0, 4))
        self.rasters, self.texts, self.pixels = 0, 0, 0  # covers drawn to find what they paint (paths, texts)
        self.inks: list = []  # (box, colour as 0-255 RGB on white) of each stencil image mask painted
        self.steps, self.stopped, self.deadline, self.images, self.dashes = 0, "", deadline, 0, 0.0
        self.cookie = mupdf.FzCookie()
        for name in ("fill_path", "stroke_path", "fill_text", "stroke_text", "ignore_text", "fill_shade",
                     "fill_image", "fill_image_mask", "clip_path", "clip_stroke_path", "clip_text",
                     "clip_stroke_text", "clip_image_mask", "pop_clip", "begin_group", "end_group", "begin_mask",
                     "end_mask", "begin_tile", "end_tile"):
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

    def add(self, kind: str, r) -> tuple:
        self.step()
        box = (r.x0, r.y0, r.x1, r.y1)
        self.log.append((kind, box))
        return box

    def fill_path(self, ctx, path, even_odd, ctm, colorspace, color, alpha, params):
        box = self.over(self.add("fill-path", mupdf.ll_fz_bound_path(path, None, ctm)), alpha)
        if not box:
            return
        if mupdf.ll_fz_path_is_rect(path, ctm):
            self.covers.append((len(self.log) - 1, box, _rgb(colorspace, color), None))
        else:  # an ellipse, an arrowhead, a rounded box: what it paints
            self.paint(box, colorspace, color,
                       lambda dev: mupdf.ll_fz_fill_path(dev, path, even_odd, ctm, colorspace, color, 1, params))

    def over(self, box: tuple, alpha: float) -> tuple | None:
        """The part of paint just logged, within the clips, over the images drawn before it, if it hides what
        is under it (opaque, normal blend, no soft mask); None if not, or if it reaches none."""
        if not self.reach or alpha < 1 or not self.plain[-1] or self.soft[-1]:
            return None
        box = _meet(_meet(box, self.reach), self.clips[-1])
        return box if box[2] > box[0] and box[3] > box[1] and self._meets(box) else None

    def _meets(self, box: tuple) -> bool:
        """Whether the box meets an image's visible part (not only the gap between two images)."""
        if len(self.shown_parts) == 1:
            return True  # the reach is that part
        n, have = len(self.shown_parts), len(self.parts)
        if have < n:  # the new parts added to an array that doubles when full: remade at every image, 2,000 icons on
            if len(self._room) < n:  # a page took 1 s in copies alone
                self._room = np.concatenate([self.parts, np.zeros((max(n, 64), 4))])
            self._room[have:n] = self.shown_parts[have:]
            self.parts = self._room[:n]
        p = self.parts
        return bool(((p[:, 0] < box[2]) & (box[0] < p[:, 2]) & (p[:, 1] < box[3]) & (box[1] < p[:, 3])).any())

    def paint(self, box: tuple, colorspace, color, draw, text: bool = False) -> None:
        """A cover that is not a rectangle: `draw(device)` paints it on a pixel grid over its box (within the
        clips and the images' reach), and what it paints there is kept, with its colour; past MAX_RASTERS or
        RASTER_PIXELS a page's covers count by their boxes. A text is kept only if it paints BLOCK_TEXT of that
        box, and past MAX_TEXT_RASTERS not looked at."""
        place = len(self.log) - 1
        s = max(1.0, (box[2] - box[0]) / 256, (box[3] - box[1]) / 256)  # points a pixel
        x0, y0 = math.floor(box[0] / s), math.floor(box[1] / s)
        x1, y1 = max(math.ceil(box[2] / s), x0 + 1), max(math.ceil(box[3] / s), y0 + 1)
        spent = self.texts >= MAX_TEXT_RASTERS if text else self.rasters >= MAX_RASTERS
        if spent or self.pixels + (x1 - x0) * (y1 - y0) > RASTER_PIXELS:
            if not text:
                self.covers.append((place, box, _rgb(colorspace, color), None))
            return
        self.texts, self.rasters = self.texts + text, self.rasters + (not text)
        try:
            pix = mupdf.fz_new_pixmap_with_bbox(mupdf.FzColorspace(), mupdf.FzIrect(x0, y0, x1, y1),
                                                mupdf.FzSeparations(), 1)  # coverage only
            mupdf.fz_clear_pixmap(pix)
            dev = mupdf.fz_new_draw_device(mupdf.FzMatrix(1 / s, 0, 0, 1 / s, 0, 0), pix)
            try:
                draw(dev.m_internal)
            finally:
                mupdf.fz_close_device(dev)
            a = np.frombuffer(mupdf.fz_pixmap_samples_memoryview(pix), dtype=np.uint8)
            a = a.reshape(y1 - y0, pix.stride())[:, :x1 - x0].copy()
        except Exception:  # MuPDF could not draw it alone: a shape by its box, a text not at all
            if not text:
                self.covers.append((place, box, _rgb(colorspace, color), None))
            return
        if (a.mean() < 255 * BLOCK_TEXT) if text else not a.any():
            return
        self.pixels += a.size
        shape = hashlib.blake2b((a >> 4).tobytes(), digest_size=6).hexdigest()
        self.covers.append((place, box, f"{_rgb(colorspace, color)}:{shape}", (a, x0 * s, y0 * s, s)))

    def stroke_path(self, ctx, path, stroke, ctm, colorspace, color, alpha, params):
        box = self.over(self.add("stroke-path", mupdf.ll_fz_bound_path(path, stroke, ctm)), alpha)
        self._stroke(stroke, ctm, path)
        if box and not self.stopped:  # a line, a circle, a frame: what its stroke paints
            self.paint(box, colorspace, color,
                       lambda dev: mupdf.ll_fz_stroke_path(dev, path, stroke, ctm, colorspace, color, 1, params))

    def fill_text(self, ctx, text, ctm, colorspace, color, alpha, params):
        box = self.over(self.add("fill-text", mupdf.ll_fz_bound_text(text, None, ctm)), alpha)
        if box:  # letters leave the image as it is; glyphs that fill their box (a run of █) hide what is under
            self.paint(box, colorspace, color, text=True,
                       draw=lambda dev: mupdf.ll_fz_fill_text(dev, text, ctm, mupdf.ll_fz_device_gray(), (0,), 1,
                                                              params))

    def stroke_text(self, ctx, text, stroke, ctm, *args):
        self.add("stroke-text", mupdf.ll_fz_bound_text(text, stroke, ctm))
        self._stroke(stroke, ctm)

    def ignore_text(self, ctx, text, ctm):
        self.add("ignore-text", mupdf.ll_fz_bound_text(text, None, ctm))

    def fill_shade(self, ctx, shade, ctm, alpha, *args):
        box = self.over(self.add("fill-shade", mupdf.ll_fz_bound_shade(shade, ctm)), alpha)
        if box:  # a shading fills its box within the clips
            self.covers.append((len(self.log) - 1, box, f"shade {next(_IMAGE_COVERS)}", None))

    def _image(self) -> None:
        self.images += 1
        if self.images > PAGE_MAX_IMAGES and not self.stopped:
            self.stopped = "images"
            self.cookie.set_abort()

    def fill_image(self, ctx, image, ctm, alpha, *args):
        self._image()
        box = self.add("fill-image", mupdf.ll_fz_transform_rect(mupdf.fz_unit_rect, ctm))
        cover = self.over(box, alpha)
        if cover and image.mask is None and not image.use_colorkey:
            self.covers.append((len(self.log) - 1, cover, f"image {next(_IMAGE_COVERS)}", None))  # never taken for
            # another
        part = _meet(box, self.clips[-1])
        self.shown.append((box, part, len(self.log) - 1, self._share(part, ctm)))
        if part[2] > part[0] and part[3] > part[1]:
            self.reach = _union([self.reach, part]) if self.reach else part
            self.shown_parts.append(part)

    def fill_image_mask(self, ctx, image, ctm, colorspace, color, alpha, *args):
        self._image()
        box = self.add("fill-imgmask", mupdf.ll_fz_transform_rect(mupdf.fz_unit_rect, ctm))
        rgb = _rgb(colorspace, color)
        if rgb:  # the ink, as it shows on white (a pattern's has no one colour: black, as before)
            self.inks.append((box, tuple(round(255 * (1 - alpha + alpha * float(v))) for v in rgb.split(","))))

    def _push(self, r, soft: bool = False, shape=None) -> None:
        self.step()
        self.clips.append(_meet((r.x0, r.y0, r.x1, r.y1), self.clips[-1]))
        self.soft.append(soft or self.soft[-1])
        self.shapes.append((shape, self.shapes[-1], {}) if shape else self.shapes[-1])

    def _share(self, part: tuple, ctm) -> float:
        """The share of the image (its unit square moved by ctm) within its part (inside the clips' boxes) that
        the clips in force that are no rectangles leave visible, found by drawing it over that part with and without
        them (at most CLIP_SIDE pixels a side; the innermost CLIP_DEPTH): 1.0 when there are none, past MAX_CLIP_DRAWS,
        or when MuPDF cannot draw them alone (the part is judged by its box, as before)."""
        w, h = part[2] - part[0], part[3] - part[1]
        if not self.shapes[-1] or not (w > 0 and h > 0) or not math.isfinite(w + h):
            return 1.0
        found, key = self.shapes[-1][2], (part, ctm.a, ctm.b, ctm.c, ctm.d, ctm.e, ctm.f)
        if key not in found:  # one image drawn at one place many times: drawn once
            found[key] = self._draw_share(part, ctm)
        return found[key]

    def _draw_share(self, part: tuple, ctm) -> float:
        w, h = part[2] - part[0], part[3] - part[1]
        shapes, chain = [], self.shapes[-1]
        while chain and len(shapes) < CLIP_DEPTH:
            shapes.append(chain[0])
            chain = chain[1]
        if self.clip_draws + len(shapes) > MAX_CLIP_DRAWS or self.stopped:
            return 1.0
        self.clip_draws += len(shapes)
        cols, rows = max(1, min(CLIP_SIDE, math.ceil(w))), max(1, min(CLIP_SIDE, math.ceil(h)))
        sx, sy = cols / w, rows / h  # the part fills the pixmap
        to_pixels = mupdf.FzMatrix(sx, 0, 0, sy, -part[0] * sx, -part[1] * sy)
        square, m = mupdf.fz_new_path(), mupdf.FzMatrix(ctm)
        mupdf.fz_rectto(square, 0, 0, 1, 1)
        upright = ctm.b == 0 and ctm.c == 0  # the image fills the part: no need to draw it without the clips
        painted = [255.0 * rows * cols] if upright else []
        try:
            for clips in ((shapes,) if upright else ((), shapes)):
                pix = mupdf.fz_new_pixmap_with_bbox(mupdf.FzColorspace(), mupdf.FzIrect(0, 0, cols, rows),
                                                    mupdf.FzSeparations(), 1)  # coverage only
                mupdf.fz_clear_pixmap(pix)
                dev = mupdf.fz_new_draw_device(to_pixels, pix)
                try:
                    for clip in clips:
                        clip(dev)
                    mupdf.ll_fz_fill_path(dev.m_internal, square.m_internal, 0, m.internal(),
                                          mupdf.ll_fz_device_gray(), _BLACK, 1, _PARAMS.internal())
                    for _ in clips:
                        mupdf.fz_pop_clip(dev)
                finally:
                    mupdf.fz_close_device(dev)
                a = np.frombuffer(mupdf.fz_pixmap_samples_memoryview(pix), dtype=np.uint8)
                painted.append(float(a.reshape(rows, pix.stride())[:, :cols].sum(dtype=np.int64)))
        except Exception:
            return 1.0
        return min(1.0, painted[1] / painted[0]) if painted[0] > 0 else 1.0

    def clip_path(self, ctx, path, even_odd, ctm, *args):
        shape = None
        if not mupdf.ll_fz_path_is_rect(path, ctm):  # an ellipse, a rounded box, a polygon, a turned rectangle
            kept, m = mupdf.FzPath(mupdf.ll_fz_keep_path(path)), mupdf.FzMatrix(ctm)
            shape = lambda dev: mupdf.fz_clip_path(dev, kept, even_odd, m, _INFINITE)  # noqa: E731
        self._push(mupdf.ll_fz_bound_path(path, None, ctm), shape=shape)

    def clip_stroke_path(self, ctx, path, stroke, ctm, *args):
        self._stroke(stroke, ctm, path)
        kept, line, m = (mupdf.FzPath(mupdf.ll_fz_keep_path(path)),
                         mupdf.FzStrokeState(mupdf.ll_fz_keep_stroke_state(stroke)), mupdf.FzMatrix(ctm))
        self._push(mupdf.ll_fz_bound_path(path, stroke, ctm),
                   shape=lambda dev: mupdf.fz_clip_stroke_path(dev, kept, line, m, _INFINITE))

    def _stroke(self, stroke, ctm, path=None) -> None:
        """Stops MuPDF at a line over MAX_LINE_WIDTH wide ("wide") or once the page's dashed lines are cut into
        more than PAGE_MAX_DASHES dashes ("dashes"): drawing them would not end."""
        if self.stopped:
            return
        stretch = math.hypot(ctm.a, ctm.b, ctm.c, ctm.d)  # at least the matrix's largest stretch (also when singular)
        if not stroke.linewidth * stretch <= MAX_LINE_WIDTH:  # NaN too
            self.stopped = "wide"
        elif stroke.dash_len > 0 and path is not None:
            self.dashes += _dashes(path, stroke)
            if not self.dashes <= PAGE_MAX_DASHES:
                self.stopped = "dashes"
        if self.stopped:
            self.cookie.set_abort()

    def clip_text(self, ctx, text, ctm, *args):
        kept, m = mupdf.FzText(mupdf.ll_fz_keep_text(text)), mupdf.FzMatrix(ctm)
        self._push(mupdf.ll_fz_bound_text(text, None, ctm),
                   shape=lambda dev: mupdf.fz_clip_text(dev, kept, m, _INFINITE))

    def clip_stroke_text(self, ctx, text, stroke, ctm, *args):
        self._stroke(stroke, ctm)
        kept, line, m = (mupdf.FzText(mupdf.ll_fz_keep_text(text)),
                         mupdf.FzStrokeState(mupdf.ll_fz_keep_stroke_state(stroke)), mupdf.FzMatrix(ctm))
        self._push(mupdf.ll_fz_bound_text(text, stroke, ctm),
                   shape=lambda dev: mupdf.fz_clip_stroke_text(dev, kept, line, m, _INFINITE))

    def clip_image_mask(self, ctx, image, ctm, *args):  # an image's own mask (/SMask, /Mask), drawn around it:
        self._push(mupdf.ll_fz_transform_rect(mupdf.fz_unit_rect, ctm))  # its alpha channel, not a crop

    def begin_mask(self, ctx, area, *args):
        self.step()
        self.masks.append(area)
        self.plain.append(False)  # the mask's content: not seen

    def end_mask(self, ctx, *args):
        if len(self.plain) > 1:
            self.plain.pop()
        if self.masks:
            self._push(self.masks.pop(), soft=True)
        else:
            self.step()
            self.clips.append(self.clips[-1])
            self.soft.append(True)
            self.shapes.append(self.shapes[-1])

    def pop_clip(self, ctx, *args):
        if len(self.clips) > 1:
            self.clips.pop()
            self.soft.pop()
            self.shapes.pop()

    def begin_group(self, ctx, area, colorspace, isolated, knockout, blendmode, alpha):
        self.step()
        self.plain.append(self.plain[-1] and blendmode == 0 and alpha >= 1)

    def end_group(self, ctx):
        if len(self.plain) > 1:
            self.plain.pop()

    def begin_tile(self, ctx, *args):
        self.step()
        self.plain.append(False)  # a pattern's cell: its fills repeat over a shape, not over their own box
        return 0

    def end_tile(self, ctx):
        if len(self.plain) > 1:
            self.plain.pop()


_IMAGE_COVERS = itertools.count()
_INFINITE = mupdf.FzRect(mupdf.FzRect.Fixed_INFINITE)  # no scissor: a clip replayed as it was drawn
_PARAMS = mupdf.FzColorParams()
_BLACK = mupdf.new_floats(1)  # a grey colour (float array) for fills on a coverage-only pixmap
mupdf.floats_setitem(_BLACK, 0, 0.0)


def _dashes(path, stroke) -> float:
    """How many dashes MuPDF cuts a dashed stroke into: its length (the control polygon's, for curves) over its
    pattern's, times the pattern's dashes; 0 for a pattern MuPDF draws solid (under 0.01 long)."""
    n = stroke.dash_len
    pattern = sum(abs(mupdf.floats_getitem(stroke.dash_list, k)) for k in range(n))
    if not pattern >= 0.01:
        return 0.0
    walker = _Length()
    mupdf.fz_walk_path(mupdf.FzPath(mupdf.ll_fz_keep_path(path)), walker, walker.m_internal)
    return walker.total * n / pattern


class _Length(mupdf.FzPathWalker2):
    """A path's length: its segments', curves by their control polygon (never shorter than the curve)."""

    def __init__(self):
        super().__init__()
        self.total, self.at, self.start = 0.0, (0.0, 0.0), (0.0, 0.0)
        for name in ("moveto", "lineto", "curveto", "closepath"):  # MuPDF makes the other kinds of these
            getattr(self, f"use_virtual_{name}")()

    def _to(self, *points) -> None:
        x, y = self.at
        for px, py in points:
            self.total += math.hypot(px - x, py - y)
            x, y = px, py
        self.at = (x, y)

    def moveto(self, ctx, x, y):
        self.at = self.start = (x, y)

    def lineto(self, ctx, x, y):
        self._to((x, y))

    def curveto(self, ctx, x1, y1, x2, y2, x3, y3):
        self._to((x1, y1), (x2, y2), (x3, y3))

    def closepath(self, ctx):
        self._to(self.start)


def _rgb(colorspace, color) -> str:
    """A fill's colour as RGB ("" when it has none that converts: a pattern)."""
    if not colorspace:
        return ""
    try:
        rgb = mupdf.FzColorspace(mupdf.FzColorspace.Fixed_RGB)
        params = mupdf.FzColorParams()  # named, so it lives through the call
        return ",".join(f"{v:.3f}" for v in mupdf.ll_fz_convert_color(colorspace, color, rgb.m_internal, None,
                                                                      params.internal())[:3])
    except Exception:
        return ""


def _meet(a: tuple, b: tuple) -> tuple:
    """The intersection of two boxes (x1 < x0 or y1 < y0 when they do not meet)."""
    return max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])


def _bbox_log(page: pymupdf.Page, deadline: float) -> tuple[list, str, list, list, list]:
    """The page's bbox log, as Page.get_bboxlog() gives it; "" or why MuPDF was stopped ("steps", "time");
    (box, part within the clips' boxes, place in the log, share of it the clips that are no rectangles leave) of
    every image drawn; (place in the log, box, look, paint) of the opaque paint over images drawn before them; and
    (box, RGB) of the ink of every stencil image mask painted."""
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
    return dev.log, dev.stopped, dev.shown, dev.covers, dev.inks


def _figure_rects(page: pymupdf.Page, log: list, image_rects: list, floor: int, cap: int,
                  pieces: list = ()) -> list[tuple]:
    """Regions of vector drawings that look like figures, each with a shape signature; at most `cap`.

    `pieces` are the boxes of images too small to count alone, or tiling one rectangle with others: they are
    ink too, so a scan stored as strips or a picture cut into tiles comes together as one figure, while a lone
    icon stays too small.
    Boxes are plain (x0, y0, x1, y1) tuples in unrotated page space, like the bbox log. Drawings are
    clipped to the page first: what lies outside it (cut off by the CropBox) is no part of a figure.
    """
    page_rect = tuple(page.rect * page.derotation_matrix)
    n_paths = sum(1 for kind, _ in log if kind in ("fill-path", "stroke-path"))
    # the paths' geometry; on a page with very many, their boxes in the bbox log serve instead (None)
    drawings = None if n_paths > MAX_CLUSTER_RECTS else page.get_cdrawings() if n_paths else []
    ink = _ink(log, page_rect, drawings)
    ink += [c for c in (_clip(tuple(r), page_rect) for r in pieces) if c is not None]
    if not ink:
        return []
    images = _Grid([tuple(r) for r in image_rects])
    tiles = _Grid([tuple(r) for r in pieces])
    regions = []
    words = lines = fills = None
    body = 0.0
    # in reading order, top to bottom and, at one height (within 10 pt), left to right: figure 1 is the first
    # a reader meets (clusters come out in order of x)
    for box, members in sorted(_cluster(ink, CLUSTER_TOL), key=lambda g: (round(g[0][1] / 10), g[0][0])):
        w, h = box[2] - box[0], box[3] - box[1]
        if min(w, h) < floor / 2 or max(w, h) < floor:
            continue
        if all(_is_rule(m) for m in members) and _coverage(box, tiles.near(box)) < 0.5:
            continue  # only rules: table grids, underlines, frames made of lines (not a scan in strips 2 pt high)
        if _coverage(box, images.near(_grow(box, 2))) >= 0.5:
            continue  # an embedded image with marks on it: the image is reported already
        if words is None:  # word boxes, not the bbox log's text boxes: TeX text objects can span a page
            found_words, found_lines, body, said = _words_and_lines(page)
            words, lines = _Grid(found_words), _Grid([line[0] for line in found_lines], found_lines)
        text = _coverage(box, words.near(_grow(box, 2)))
        if text > 0.35 and _coverage(box, tiles.near(box)) < 0.5:
            continue  # a shaded or framed text box (not a scan in strips under its OCR text)
        if len(members) == 1 and text > 0 and not tiles.near(box):
            continue  # one box or band with text on it: a header band, a "key points" box, a button
        if text > 0 and drawings and not tiles.near(box):
            if fills is None:
                fills = _Grid([tuple(d["rect"]) for d in drawings], drawings, corner=True)
            if _cell_table(members, words.near(_grow(box, 2)), fills.near(box)):
                continue  # a table drawn one box per cell (as Word and LibreOffice export them)
        region = _clip(_with_labels(box, lines.near(_grow(box, 4 * TEXT_MARGIN)), body), page_rect)
        if region is None:
            continue
        regions.append(region)
        if len(regions) >= cap:
            break
    if not regions:
        return []
    drawn = _Grid([r for _, r in log], log, corner=True)
    shapes = _Grid([tuple(d["rect"]) for d in drawings or ()], drawings or [], corner=True)
    texts = _Grid([w[:4] for w in said], said, corner=True)
    return [(pymupdf.Rect(region), _signature(region, drawn, shapes, texts)) for region in _merged(regions)]


def _merged(regions: list) -> list:
    """Regions that overlap once grown by their labels (the panels of one figure, each taking in its
    neighbour's titles and ticks) as one, so no part of a figure is shown twice; in the order of their first.
    A sweep along x finds the overlaps (near-linear on a page of many), and again until nothing merges."""
    out = list(regions)
    while True:
        group = list(range(len(out)))

        def root(k: int) -> int:
            while group[k] != k:
                group[k] = k = group[group[k]]
            return k

        order = sorted(range(len(out)), key=lambda k: out[k][0])
        live: list[int] = []
        for k in order:
            a = out[k]
            live = [m for m in live if out[m][2] > a[0]]  # still reaching past a's left edge
            for m in live:
                b = out[m]
                if a[1] < b[3] and b[1] < a[3]:  # areas overlap (not just touch)
                    group[root(m)] = root(k)
            live.append(k)
        firsts: dict[int, int] = {}
        for k in range(len(out)):
            firsts.setdefault(root(k), k)
        if len(firsts) == len(out):
            return out
        parts: dict[int, list] = {}
        for k in range(len(out)):
            parts.setdefault(root(k), []).append(out[k])
        out = [_union(parts[r]) for r in sorted(firsts, key=firsts.get)]


def _is_rule(box: tuple) -> bool:
    """Long and thin, like a table line or an underline (a dot of a scatter plot is not)."""
    w, h = box[2] - box[0], box[3] - box[1]
    return min(w, h) <= THIN and max(w, h) >= 4 * THIN


def _ink(log: list, page_rect: tuple, drawings: list | None) -> list[tuple]:
    """Boxes of visible vector drawings, shadings and stencil masks, without page backgrounds, clipped to
    the page (what lies wholly outside it is left out).

    Path boxes come from get_cdrawings (exact geometry plus half the line width; the bbox log pads
    strokes by the miter limit). Pages with very many paths (`drawings` None) use the cheaper bbox log instead.
    """
    page_area = (page_rect[2] - page_rect[0]) * (page_rect[3] - page_rect[1])
    ink = [tuple(r) for kind, r in log if kind == "fill-imgmask"]  # 1-bit scans: keep any size
    paths = [tuple(r) for kind, r in log if kind == "fill-shade"]
    if drawings is None:
        paths += [tuple(r) for kind, r in log if kind in ("fill-path", "stroke-path")]
    else:
        for d in drawings:
            x0, y0, x1, y1 = d["rect"]
            stroked = "s" in d["type"] and d.get("color") is not None and (d.get("stroke_opacity") or 0) > 0
            filled = ("f" in d["type"] and d.get("fill") is not None and (d.get("fill_opacity") or 0) > 0
                      and min(d["fill"]) < 0.97)  # white fills are invisible on paper
            if stroked and not filled and _ruled(d.get("items") or ()):  # a table's rules drawn as one path
                half = (d.get("width") or 1.0) / 2
                paths += [(min(a[0], b[0]) - half, min(a[1], b[1]) - half, max(a[0], b[0]) + half,
                           max(a[1], b[1]) + half) for _, a, b in d["items"]]
            elif stroked:
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


def _ruled(items) -> bool:
    """Whether a path is two or more separate straight lines, each level or upright (rules, a grid): each is
    then ink of its own, so a table drawn as one path is seen as the rules it is, not as one box. Lines that
    mostly run on from one another are a curve (a step plot, a Kaplan-Meier curve), kept whole."""
    if len(items) < 2 or not all(it[0] == "l" and (abs(it[1][0] - it[2][0]) < 0.01 or abs(it[1][1] - it[2][1]) < 0.01)
                                 for it in items):
        return False
    joined = sum(1 for a, b in zip(items, items[1:]) if abs(a[2][0] - b[1][0]) < 0.01 and abs(a[2][1] - b[1][1]) < 0.01)
    return 2 * joined < len(items) - 1


def _cell_table(members: list, words: list, drawings: list) -> bool:
    """Whether the boxes of a cluster (rules aside) are the cells of a table: they tile a grid of columns and
    rows, each grid cell once (an outer frame aside), most of them one cell each (a few merged), at least four
    cells, words in most of them, and no more than three fill colours (white, a header's grey, a band). Bars of
    a chart stand apart or rise to different heights, so they leave grid cells empty; a heat map has no words in
    its cells, or many colours."""
    boxes = list({tuple(round(v * 2) / 2 for v in m) for m in members if not _is_rule(m)})
    if len(boxes) < 4:
        return False
    xs, ys = _lines([v for b in boxes for v in (b[0], b[2])]), _lines([v for b in boxes for v in (b[1], b[3])])
    cells = (len(xs) - 1) * (len(ys) - 1)
    if cells < 4 or cells > 8 * len(boxes):  # too few to be a table, or too many for these boxes to fill
        return False
    count = np.zeros((len(ys) - 1, len(xs) - 1), dtype=int)
    single = 0
    for b in boxes:
        i0, i1, j0, j1 = _at(xs, b[0]), _at(xs, b[2]), _at(ys, b[1]), _at(ys, b[3])
        if i1 <= i0 or j1 <= j0:
            return False  # thinner than a column or a row: a mark, not a cell
        if (i0, j0, i1, j1) == (0, 0, len(xs) - 1, len(ys) - 1):
            continue  # the table's frame
        count[j0:j1, i0:i1] += 1
        single += i1 - i0 == 1 and j1 - j0 == 1
    if (count != 1).any() or 2 * single < len(boxes):
        return False
    spoken = np.zeros_like(count, dtype=bool)  # grid cells with a word's middle in them
    for w in words:
        i, j = _at(xs, (w[0] + w[2]) / 2, 0.0), _at(ys, (w[1] + w[3]) / 2, 0.0)
        if 0 <= i < len(xs) - 1 and 0 <= j < len(ys) - 1:
            spoken[j, i] = True
    with_words = sum(1 for b in boxes if spoken[_at(ys, b[1]):_at(ys, b[3]), _at(xs, b[0]):_at(xs, b[2])].any())
    x0, y0, x1, y1 = _grow(_union(boxes), CELL_TOL)
    colours = {tuple(d["fill"]) for d in drawings if "f" in d["type"] and d.get("fill") is not None
               and x0 <= d["rect"][0] and y0 <= d["rect"][1] and d["rect"][2] <= x1 and d["rect"][3] <= y1}
    return 2 * with_words >= len(boxes) and len(colours) <= 3


def _lines(values: list) -> list:
    """The distinct column (or row) lines among box edges: values within CELL_TOL of the one before are one."""
    out, last = [], -math.inf
    for v in sorted(values):
        if v - last > CELL_TOL:
            out.append(v)
        last = v
    return out


def _at(lines: list, v: float, tol: float = CELL_TOL) -> int:
    """The index of the last line at or before v (within tol)."""
    return bisect.bisect_right(lines, v + tol) - 1


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


def _words_and_lines(page: pymupdf.Page) -> tuple[list, list, float, list]:
    """Word boxes; text lines as (box, font size, box of its block); the body text's size (the size most
    characters are set in); and the words as (x0, y0, x1, y1, text)."""
    textpage = page.get_textpage(flags=pymupdf.TEXTFLAGS_WORDS)  # as get_text("words") makes it
    words, lines, blocks, said = [], {}, {}, []
    for x0, y0, x1, y1, text, block, line, _ in page.get_text("words", textpage=textpage):
        words.append((x0, y0, x1, y1))
        said.append((x0, y0, x1, y1, text))
        lines.setdefault((block, line), []).append((x0, y0, x1, y1))
        blocks.setdefault(block, []).append((x0, y0, x1, y1))
    sizes, chars = {}, {}
    for block in textpage.extractDICT()["blocks"]:
        for n, line in enumerate(block.get("lines", ())):
            for span in line["spans"]:
                key = (block["number"], n)
                sizes[key] = max(sizes.get(key, 0.0), span["size"])
                chars[round(span["size"], 1)] = chars.get(round(span["size"], 1), 0) + len(span["text"].strip())
    body = max(chars, key=chars.get) if chars else 0.0
    return words, [(_union(v), sizes.get(key, 0.0), _union(blocks[key[0]])) for key, v in lines.items()], body, said


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


def _with_labels(box: tuple, lines: list, body: float = 0.0) -> tuple:
    """The figure box grown by short text lines within TEXT_MARGIN of it (tick labels), then once more by
    short lines within TEXT_MARGIN of that (axis titles, beyond the tick labels). `lines` are (box, font size,
    box of its block), as `_words_and_lines` gives them.

    Lines as wide as most of the figure are body text or captions and stay out. A line no larger than the
    body text (`body`, its size) whose block is short too (a label, not a paragraph's last line) may be
    LABEL_EMS of its size away."""
    x0, y0, x1, y1 = box

    def short(t: tuple) -> bool:
        return t[2] - t[0] <= 0.6 * (x1 - x0) and t[3] - t[1] <= 0.6 * (y1 - y0)

    def near(line: tuple, b: tuple) -> bool:
        t, size, block = line
        m = TEXT_MARGIN
        if size <= body + 0.1 and short(block):
            m = min(max(m, LABEL_EMS * size), 2 * TEXT_MARGIN)
        return t[0] < b[2] + m and b[0] - m < t[2] and t[1] < b[3] + m and b[1] - m < t[3]

    labels = [line[0] for line in lines if short(line[0]) and near(line, box)]
    if not labels:
        return box
    grown = _union([box, *labels])
    return _union([grown, *(line[0] for line in lines if short(line[0]) and near(line, grown))])


def _signature(region: tuple, drawn: _Grid, shapes: _Grid, texts: _Grid) -> str:
    """What is drawn inside the region, relative to its corner: the boxes of its marks, the geometry and colours
    of its paths and its words. Equal for a repeated vector logo; two plots of one layout differ by their curves
    or their words (their boxes alone were equal)."""
    x0, y0, x1, y1 = region

    def inside(r) -> bool:
        return r[0] >= x0 and r[1] >= y0 and r[2] <= x1 and r[3] <= y1

    def at(v) -> str:  # a point or a rect relative to the corner; anything else as it is
        if isinstance(v, (tuple, list)) and len(v) in (2, 4) and all(isinstance(c, (int, float)) for c in v):
            return ",".join(f"{c - (x0 if k % 2 == 0 else y0):.1f}" for k, c in enumerate(v))
        return str(v)

    parts = sorted(f"{kind}:{at(r)}" for kind, r in drawn.near(region) if inside(r))
    parts += sorted(f"{d.get('type')}/{d.get('color')}/{d.get('fill')}/{d.get('width')}:"
                    + " ".join(f"{it[0]}({' '.join(at(v) for v in it[1:])})" for it in d.get("items", ()))
                    for d in shapes.near(region) if inside(tuple(d["rect"])))
    parts += sorted(f"{w[4]}@{at(w[:2])}" for w in texts.near(region) if inside(w[:4]))
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
