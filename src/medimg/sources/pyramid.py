"""Slide scans stored as TIFF pyramids (libvips, QuPath or bfconvert exports; OME-TIFF pyramids), for
microscopy.py: a pyramid over SCAN_SIDE a side is shown as slide.py and czi.py show slides, a 512 px tissue
field at about 1 µm/px around the window of an overview with the most tissue. Each region (the overview,
the field) is read from the pyramid level nearest its scale that fits `max_pixels`, decoding only the tiles
or strips it covers, each checked by its own header first (tiff_tiles.py).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from .slide import SCAN_SIDE
from .tiff_tiles import segments, tiles_problem

OME_UNITS_UM = {"µm": 1.0, "μm": 1.0, "um": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6}
TAG_UNITS_UM = {2: 25_400.0, 3: 10_000.0}  # ResolutionUnit inch, centimetre
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


def read(series, keys: list[int], rect: tuple[int, int, int, int], zoom: float, max_pixels: int,
         ) -> tuple[np.ndarray, int, tuple[int, int]]:
    """The pages `keys` (channels) of `rect` (x, y, w, h in full-size pixels), from the coarsest level at least
    as fine as `zoom` asks whose region of every page fits `max_pixels` (a coarser one when not), of the full-size
    image's shape (within a pixel and 1 %): (planes stacked in the page's own layout, that level, the size the
    region is to be shown at)."""
    x, y, w, h = rect
    sizes = [plane_size(lv) for lv in series.levels]
    base_w, base_h = sizes[0]
    shaped = [i for i, (lw, lh) in enumerate(sizes)
              if lw > 0 and abs(lh * base_w / lw - base_h) <= base_w / lw + base_h / 100]
    order = sorted(shaped, key=lambda i: -sizes[i][0])  # finest first; not a level of another shape (a damaged file)
    fine = [i for i in order if base_w / sizes[i][0] <= 1.001 / zoom]
    start = order.index(fine[-1]) if fine else 0
    for i in order[start:]:
        ds = base_w / sizes[i][0]
        box = (int(x / ds), int(y / ds), min(math.ceil((x + w) / ds), sizes[i][0]),
               min(math.ceil((y + h) / ds), sizes[i][1]))
        if len(keys) * max(box[2] - box[0], 1) * max(box[3] - box[1], 1) <= max_pixels:
            break
    else:
        raise ValueError(f"no pyramid level holds a {w:,}×{h:,} region within the max_pixels cap of {max_pixels:,}")
    level = series.levels[i]
    pages = [level[k] for k in keys]
    regions = [_region(level.keyframe if p is None else p, box, max_pixels, p is None) for p in pages]
    planes = regions[0][None] if len(regions) == 1 else np.stack(regions)  # one page (RGB): no copy
    return planes, i, (max(1, round(w * zoom)), max(1, round(h * zoom)))


def shown(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    return image if image.size == size else image.resize(size, Image.LANCZOS, reducing_gap=2.0)  # reduced first: faster


def _region(page, box: tuple[int, int, int, int], max_pixels: int, blank: bool = False) -> np.ndarray:
    """The pixels of `box` (x0, y0, x1, y1) of one page, decoding only the segments it covers; a missing segment
    (or page: `blank`) is zeros, as tifffile leaves it."""
    key = page.keyframe
    x0, y0, x1, y1 = box
    s_sep, depth, _, _, s_contig = key.shaped
    if depth != 1:
        raise ValueError("tiles of several depths are not read")
    spans = [] if blank else [(n, full, at) for n, (_, _, full, _, at) in enumerate(segments(page))
                              if at[0] < x1 and at[0] + full[0] > x0 and at[1] < y1 and at[1] + full[1] > y0]
    if spans and spans[0][1][0] * spans[0][1][1] * s_contig > max_pixels:
        raise ValueError(f"segments of {spans[0][1][0]:,}×{spans[0][1][1]:,} pixels, over the max_pixels cap")
    problem = tiles_problem(page, {n for n, _, _ in spans})
    if problem:
        raise ValueError(problem)
    if box == (0, 0, key.imagewidth, key.imagelength) and not blank:
        return page.asarray(maxworkers=1)  # the whole page (an overview's level): tifffile's own loop, faster
    out = np.zeros((s_sep, y1 - y0, x1 - x0, s_contig), key.dtype)
    decode, fh = key.decode, page.parent.filehandle
    for n, _, _ in spans:
        count = page.databytecounts[n]
        if not count:
            continue
        fh.seek(page.dataoffsets[n])
        segment, (s, _, sy, sx, _), _ = decode(fh.read(count), n, jpegtables=key.jpegtables)
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
