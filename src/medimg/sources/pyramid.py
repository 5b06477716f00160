"""Slide scans stored as TIFF pyramids (libvips, QuPath or bfconvert exports; OME-TIFF pyramids), for
microscopy.py: a pyramid over SCAN_SIDE a side is shown as slide.py and czi.py show slides, a 512 px tissue
field at about 1 µm/px around the window of an overview with the most tissue. Each region (the overview,
the field) is read from the pyramid level nearest its scale that fits `max_pixels`, decoding only the tiles
or strips it covers (found from the layout, never by walking a level's millions of tiny tiles; at most
MAX_SEGMENTS), each checked by its own header first (tiff_tiles.py). A level with a segment that does not decode
gives way to the next level that does, the damaged segment named.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from .slide import SCAN_SIDE
from .tiff_tiles import covering, covering_count, segment_name, segments, tiles_problem

OME_UNITS_UM = {"µm": 1.0, "μm": 1.0, "um": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6}
TAG_UNITS_UM = {2: 25_400.0, 3: 10_000.0}  # ResolutionUnit inch, centimetre
MAX_SEGMENTS = 65_536  # tiles one region may take (a 4,096² region of 16 px tiles): each is decoded in Python
MAX_TAG_UM = 10.0  # a resolution tag saying more µm per pixel is a print resolution (300 dpi: 85 µm), not a scan's


def plane_size(series) -> tuple[int, int]:
    axes, shape = series.axes, series.shape
    return shape[axes.index("X")], shape[axes.index("Y")]


def is_scan(series) -> bool:
    """A pyramid (levels) whose full-size image is over SCAN_SIDE a side, as CZI tells a slide scan."""
    return len(series.levels) > 1 and max(plane_size(series)) > SCAN_SIDE


def um_per_px(page, pixels: dict | None) -> float | None:
    """µm per pixel from the OME Pixels element's PhysicalSizeX (its attributes), else the page's XResolution in
    a ResolutionUnit of inch or centimetre; None when neither says a microscope's pixel size."""
    try:
        if pixels and pixels.get("PhysicalSizeX"):
            um = float(pixels["PhysicalSizeX"]) * OME_UNITS_UM[pixels.get("PhysicalSizeXUnit", "µm")]
            return um if 0.01 <= um <= 100 else None
        unit = TAG_UNITS_UM.get(int(page.tags.valueof(296, 2)))
        num, den = page.tags.valueof(282)
        um = unit * den / num if unit and num and den else None
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    return um if um and 0.01 <= um <= MAX_TAG_UM else None


class Damaged(ValueError):
    """A segment of a level that did not decode, named (`level 1 (4,096×3,072), tile 52 (column 4, row 3): …`)."""


def read(series, keys: list[int], rect: tuple[int, int, int, int], zoom: float, max_pixels: int,
         damaged: list[str] | None = None) -> tuple[np.ndarray, int, tuple[int, int]]:
    """The pages `keys` (channels) of `rect` (x, y, w, h in full-size pixels), from the coarsest level at least
    as fine as `zoom` asks whose region of every page fits `max_pixels` and MAX_SEGMENTS (a coarser one when not),
    of the full-size image's shape (within a pixel and 1 %): (planes stacked in the page's own layout, that level,
    the size the region is to be shown at). A level with a segment that does not decode gives way to the next
    that does (finer ones first, then coarser ones), each damaged one named in `damaged`."""
    x, y, w, h = rect
    sizes = [plane_size(lv) for lv in series.levels]
    base_w, base_h = sizes[0]
    shaped = [i for i, (lw, lh) in enumerate(sizes)
              if lw > 0 and abs(lh * base_w / lw - base_h) <= base_w / lw + base_h / 100]
    order = sorted(shaped, key=lambda i: -sizes[i][0])  # finest first; not a level of another shape (a damaged file)
    fine = [i for i in order if base_w / sizes[i][0] <= 1.001 / zoom]
    start = order.index(fine[-1]) if fine else 0

    def box(i: int) -> tuple[int, int, int, int]:
        ds = base_w / sizes[i][0]
        return (int(x / ds), int(y / ds), min(math.ceil((x + w) / ds), sizes[i][0]),
                min(math.ceil((y + h) / ds), sizes[i][1]))

    def fits(i: int) -> bool:
        x0, y0, x1, y1 = box(i)
        pixels = len(keys) * max(x1 - x0, 1) * max(y1 - y0, 1)
        return pixels <= max_pixels and _segments_in(series.levels[i], box(i)) <= MAX_SEGMENTS

    usable = [i for i in order[start:] if fits(i)]
    if not usable:
        raise ValueError(f"no pyramid level holds a {w:,}×{h:,} region within the max_pixels cap of {max_pixels:,} "
                         f"and {MAX_SEGMENTS:,} tiles")
    first = order.index(usable[0])
    finer = [i for i in reversed(order[:first]) if fits(i)]
    failed = []
    for i in [usable[0], *finer, *usable[1:]]:
        level = series.levels[i]
        pages = [level[k] for k in keys]
        try:
            regions = [_region(level.keyframe if p is None else p, box(i), max_pixels, p is None) for p in pages]
        except Damaged as exc:
            failed.append(f"level {i} ({sizes[i][0]:,}×{sizes[i][1]:,}), {exc}")
            continue
        if damaged is not None:
            damaged.extend(f for f in failed if f not in damaged)
        planes = regions[0][None] if len(regions) == 1 else np.stack(regions)  # one page (RGB): no copy
        return planes, i, (max(1, round(w * zoom)), max(1, round(h * zoom)))
    raise ValueError(f"{failed[0]}; no other level holds the region and decodes")


def _segments_in(level, box: tuple[int, int, int, int]) -> int:
    """How many segments of one page of the level the region covers, from its layout (0 when it has none)."""
    try:
        return covering_count(level.keyframe, box)
    except ValueError:  # tiles of no pixels: _region says so
        return 0


def shown(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    return image if image.size == size else image.resize(size, Image.LANCZOS, reducing_gap=2.0)  # reduced first: faster


def _region(page, box: tuple[int, int, int, int], max_pixels: int, blank: bool = False) -> np.ndarray:
    """The pixels of `box` (x0, y0, x1, y1) of one page, decoding only the segments it covers; a missing segment
    (or page: `blank`) is zeros, as tifffile leaves it. Raises Damaged naming a segment that does not decode."""
    key = page.keyframe
    x0, y0, x1, y1 = box
    s_sep, depth, _, _, s_contig = key.shaped
    if depth != 1:
        raise ValueError("tiles of several depths are not read")
    spans = [] if blank else [(n, full, at) for n, (_, _, full, _, at) in segments(page, covering(page, box))]
    if spans and spans[0][1][0] * spans[0][1][1] * s_contig > max_pixels:
        raise ValueError(f"segments of {spans[0][1][0]:,}×{spans[0][1][1]:,} pixels, over the max_pixels cap")
    problem = tiles_problem(page, {n for n, _, _ in spans})
    if problem:
        raise ValueError(problem)
    if box == (0, 0, key.imagewidth, key.imagelength) and not blank:
        try:
            return page.asarray(maxworkers=1)  # the whole page (an overview's level): tifffile's own loop, faster
        except Exception:  # a damaged segment: the loop below names it
            pass
    out = np.zeros((s_sep, y1 - y0, x1 - x0, s_contig), key.dtype)
    decode, fh = key.decode, page.parent.filehandle
    for n, _, _ in spans:
        count = page.databytecounts[n]
        if not count:
            continue
        fh.seek(page.dataoffsets[n])
        try:
            segment, (s, _, sy, sx, _), _ = decode(fh.read(count), n, jpegtables=key.jpegtables)
        except Exception as exc:
            raise Damaged(f"{segment_name(page, n)}: {exc}") from exc
        if segment is None:
            continue
        segment = segment[0]  # its depth of 1
        ya, yb = max(sy, y0), min(sy + segment.shape[0], y1)
        xa, xb = max(sx, x0), min(sx + segment.shape[1], x1)
        if ya < yb and xa < xb:
            out[s, ya - y0:yb - y0, xa - x0:xb - x0] = segment[ya - sy:yb - sy, xa - sx:xb - sx]
    if s_sep > 1:
        return out[..., 0]  # S, Y, X
    return out[0, ..., 0] if s_contig == 1 else out[0]  # Y, X or Y, X, S
