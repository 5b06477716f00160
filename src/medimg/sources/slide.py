"""Whole-slide pathology images (Aperio .svs, Hamamatsu .ndpi, Leica .scn, Ventana .bif) via OpenSlide.

A slide is one image of up to gigapixels. What the model can judge is tissue as a microscope shows it,
so the item is one field of tissue: 512 px at about 1 µm per pixel (a 10× objective; a quarter of full
resolution when the slide does not say its pixel size), centred where the overview shows the most
tissue. Files on disk are read lazily by path (only the overview level and that field are decoded, so
`max_input_bytes` does not apply; `max_slide_bytes` does); uploaded bytes go through a temporary file.
The label and macro pictures are never read (they often show the patient's name; the metadata lists the
names of those the slide holds), and only technical properties are kept. A pyramid OpenSlide sees as one level
(its generic TIFF reads no SubIFDs) is read by microscopy.py as a pyramidal TIFF.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from ..scratch import work_folder
from .base import Blob, Context, ImageItem, Item, ItemError, SourcePlugin
from .registry import register

SUFFIXES = {".svs", ".ndpi", ".scn", ".bif"}
FIELD = 512  # pixels of the field handed to the model
FIELD_MPP = 1.0  # its µm per pixel when the slide knows its own
OVERVIEW = 512  # longest side of the overview used to find tissue
BAND = 1 << 22  # pixels of a level read at a time for the overview
MAX_IFDS = 1_000  # a slide has its levels and a few pictures (label, macro, thumbnail): tens of TIFF images
SCAN_SIDE = 4096  # a CZI or pyramidal TIFF larger than this a side is a slide scan: shown as a tissue field


def accepts(head: bytes, blob: Blob) -> bool:
    from .files import image_kind

    if image_kind(head) != "TIFF":
        return False
    return Path(blob.name or blob.origin).suffix.lower() in SUFFIXES or b"Aperio" in head


def open_slide_path(path: str, ctx: Context) -> Iterator[Item]:
    from .files import size_problem

    limits = ctx.limits
    problem = size_problem(path, limits.max_slide_bytes, "max_slide_bytes", "slide file")
    if problem:
        yield problem
        return
    problem = _tiff_problem(path, limits.max_pixels)
    if problem:
        yield ItemError(path, "", problem)
        return
    try:
        import openslide
    except Exception as exc:  # the native library failed to load on this platform
        yield ItemError(path, "", f"whole-slide images need OpenSlide, which did not load: {exc}")
        return
    try:
        slide = openslide.OpenSlide(path)
    except Exception as exc:  # OpenSlide says only "Unsupported or missing image file" for a file cut short
        cut = _cut_short(path)
        why = f"damaged slide: {cut}; not read" if cut else f"not a readable whole-slide image: {exc}"
        yield ItemError(path, "", why)
        return
    with slide:
        if slide.level_count == 1 and slide.properties.get(openslide.PROPERTY_NAME_VENDOR) == "generic-tiff":
            # OpenSlide's generic TIFF has no SubIFDs: a pyramid written so (libvips, bfconvert) is one level to
            # it, refused over max_pixels or read whole; microscopy.py reads its levels
            from .microscopy import stack_items

            items = stack_items(path, ctx, path)
            if items is not None:
                yield from items
                return
        try:
            yield _field(slide, path, limits.max_pixels)
        except Exception as exc:
            cut = _cut_short(path)
            yield ItemError(path, "", f"could not read the slide's pixels: {f'damaged slide: {cut}' if cut else exc}")


def open_slide(blob: Blob, ctx: Context) -> Iterator[Item]:
    """Bytes (an upload, a zip member): OpenSlide reads only files, so through a temporary one."""
    suffix = Path(blob.name or blob.origin).suffix.lower()
    with work_folder() as tmp:
        path = os.path.join(tmp, "slide" + (suffix if suffix in SUFFIXES else ".svs"))
        with open(path, "wb") as f:
            f.write(blob.data)
        for item in open_slide_path(path, ctx):
            item.origin = blob.origin
            yield item


def _tiff_problem(path: str, max_pixels: int) -> str:
    """Why OpenSlide must not open this TIFF ("" if it may), from its IFDs as tifffile reads them: OpenSlide
    allocates a tile's pixels, and a tile's bytes as the file says, with GLib, which ends the whole process
    when that fails (a damaged TileByteCounts of 4 GB, a TileWidth of 67 million)."""
    import tifffile

    size = os.path.getsize(path)
    try:
        with tifffile.TiffFile(path) as tif:
            for n, page in enumerate(tif.pages):
                if n >= MAX_IFDS:
                    return f"more than {MAX_IFDS:,} images in one TIFF: not a whole-slide image; not read"
                tiled = bool(page.tilewidth)
                w, h = (page.tilewidth, page.tilelength) if tiled else (page.imagewidth, page.rowsperstrip)
                if w * min(h, page.imagelength or h) > max_pixels:
                    return (f"{'tiles' if tiled else 'strips'} of {w:,}×{h:,} pixels in image {n + 1} of the slide, "
                            f"over the max_pixels cap of {max_pixels:,}; not read")
                counts = page.databytecounts
                if counts and max(counts) > size:
                    return (f"damaged slide: image {n + 1} claims a {'tile' if tiled else 'strip'} of {max(counts):,} "
                            f"bytes in a file of {size:,}; not read")
    except Exception as exc:
        return f"not a readable whole-slide image: {exc}"
    return ""


def _cut_short(path: str) -> str:
    """Where a TIFF slide OpenSlide could not read is cut short: a tile or strip, or the next IFD, past the end of
    the file; "" when none is. Asked only then: a slide cut in its label alone (after its levels) is read."""
    import tifffile

    from .tiff import ifd_past_end, past_end

    try:
        with tifffile.TiffFile(path) as tif:
            for n, page in enumerate(itertools.islice(tif.pages, MAX_IFDS)):
                cut = past_end(page)
                if cut:
                    return f"image {n + 1}: {cut}"
            if n_pages := len(tif.pages):  # tifffile ends the chain there without a word
                return ifd_past_end(tif.pages[n_pages - 1], os.path.getsize(path)) or ""
    except Exception:
        return ""
    return ""


def _field(slide, origin: str, max_pixels: int) -> Item:
    import openslide

    w, h = slide.dimensions
    small = slide.level_dimensions[-1]
    if small[0] * small[1] > max_pixels:
        return ItemError(origin, "", f"slide has no overview level within the max_pixels cap ({small[0]}×{small[1]} "
                                     f"at its smallest); not read")
    props = slide.properties
    mpp = _float(props.get(openslide.PROPERTY_NAME_MPP_X))
    downsample = max(FIELD_MPP / mpp, 1.0) if mpp else 4.0
    overview = _overview(slide, max_pixels)
    scale = w / overview.width  # level-0 pixels per overview pixel
    span = min(FIELD * downsample, w, h)  # the field's side in level-0 pixels
    cx, cy, tissue = most_tissue(np.asarray(overview), max(1, round(span / scale)))
    x0 = int(min(max(cx * scale - span / 2, 0), w - span))
    y0 = int(min(max(cy * scale - span / 2, 0), h - span))
    level = slide.get_best_level_for_downsample(max(span / FIELD, 1.0))
    while level < slide.level_count - 1 and (span / slide.level_downsamples[level]) ** 2 > max_pixels:
        level += 1  # a field wider than a level's jump (an odd MPP) is read from a smaller level
    side = max(1, round(span / slide.level_downsamples[level]))
    region = slide.read_region((x0, y0), level, (side, side))
    field = Image.new("RGB", region.size, "white")
    field.paste(region, mask=region.getchannel("A"))  # outside the scanned area is transparent
    if side > FIELD:
        field = field.resize((FIELD, FIELD), Image.BILINEAR)
    where = f"{round(span * mpp)} µm wide" if mpp else f"at 1/{downsample:g} scale,"
    meta = {
        "vendor": props.get(openslide.PROPERTY_NAME_VENDOR),
        "dimensions": [w, h], "levels": slide.level_count,
        "mpp": mpp, "objective_power": _float(props.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER)),
        "field": {"x": x0, "y": y0, "size": round(span), "downsample": round(downsample, 3)},
        "tissue_fraction": round(tissue, 3),
        "associated_images": sorted(slide.associated_images),  # their names only: a label may name the patient
    }
    return ImageItem(origin, f"tissue field {where} at x {x0}, y {y0}", field, f"WSI ({meta['vendor']})",
                     meta, full_size=(w, h))


def _overview(slide, max_pixels: int) -> Image.Image:
    """The slide within OVERVIEW px a side, as OpenSlide's get_thumbnail makes it, but from a level within
    max_pixels: get_thumbnail reads the whole level nearest its scale, which a slide with a big jump between
    levels (4× and 256× smaller than the base) makes one of gigapixels, though its smallest level is tiny."""
    import openslide

    w, h = slide.dimensions
    level = slide.get_best_level_for_downsample(max(w, h) / OVERVIEW)
    while level < slide.level_count - 1 and np.prod(slide.level_dimensions[level], dtype=float) > max_pixels:
        level += 1  # the smallest level is within the cap (checked before)
    background = "#" + slide.properties.get(openslide.PROPERTY_NAME_BACKGROUND_COLOR, "ffffff")
    lw, lh = slide.level_dimensions[level]
    # A level far larger than the overview (a slide of one level, or a big jump between levels: its RGBA and
    # RGB copies took 500 MB for 36 Mpx) is read a band of rows at a time, each band reduced k × k at once.
    k = max(1, int(max(lw, lh) / OVERVIEW)) if lw * lh > BAND else 1
    rows = max(k, BAND // max(lw, 1) // k * k)
    overview = Image.new("RGB", (-(-lw // k), -(-lh // k)), background)
    ds = slide.level_downsamples[level]
    for top in range(0, lh, rows):
        region = slide.read_region((0, round(top * ds)), level, (lw, min(rows, lh - top)))
        band = Image.new("RGB", region.size, background)
        band.paste(region, mask=region.getchannel("A"))
        del region
        overview.paste(band.reduce(k) if k > 1 else band, (0, top // k))
    overview.thumbnail((OVERVIEW, OVERVIEW), Image.LANCZOS)
    return overview


def tissue_mask(rgb: np.ndarray) -> np.ndarray:
    """Where an H × W × 3 slide image shows tissue: neither glass (bright, unsaturated) nor black padding."""
    r, g, b = (rgb[..., k].astype(np.int16) for k in range(3))  # a channel at a time: several times faster
    sat = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
    total = r + g + b  # three times the grey level
    return ((sat > 20) | (total < 600)) & (total > 75)


def most_tissue(rgb: np.ndarray, win: int) -> tuple[float, float, float]:
    """(x, y) centre, in overview pixels, of the win × win window with the most tissue, and its tissue share."""
    mask = tissue_mask(rgb)
    h, w = mask.shape
    win_y, win_x = min(win, h), min(win, w)
    total = np.pad(mask.cumsum(0, dtype=np.int32).cumsum(1, dtype=np.int32), ((1, 0), (1, 0)))  # half int64's memory
    sums = (total[win_y:, win_x:] - total[:-win_y, win_x:] - total[win_y:, :-win_x] + total[:-win_y, :-win_x])
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return x + win_x / 2, y + win_y / 2, float(sums[y, x]) / (win_x * win_y)


def tissue_field(read, rect: tuple[int, int, int, int], um: float | None, max_pixels: int,
                 overview: int = 1024) -> tuple[tuple[int, int, int, int], float]:
    """For a slide scan that is not an OpenSlide slide (CZI, pyramidal TIFF): the square region (x, y, side, side)
    of `rect` to show, FIELD px at about FIELD_MPP µm/px (1/4 scale when `um`, the scan's µm per pixel, is None),
    around the window of an overview with the most tissue, and the zoom that makes it FIELD px. `read(rect, zoom)`
    gives an image of a region at a zoom."""
    x0, y0, w, h = rect
    scale = min(overview / max(w, h), (max_pixels / (w * h)) ** 0.5)
    seen = np.asarray(read(rect, scale).convert("RGB"))
    span = int(min(FIELD * (max(FIELD_MPP / um, 1.0) if um else 4.0), w, h))
    per = w / seen.shape[1]  # scan pixels per overview pixel
    cx, cy, _ = most_tissue(seen, max(1, round(span / per)))
    fx = int(min(max(x0 + cx * per - span / 2, x0), x0 + w - span))
    fy = int(min(max(y0 + cy * per - span / 2, y0), y0 + h - span))
    zoom = min(1.0, FIELD / span, (max_pixels / (span * span)) ** 0.5)
    return (fx, fy, span, span), zoom


def field_words(span: int, um: float | None) -> str:
    """A field's locator words: its width, or its scale when the scan does not say its pixel size."""
    return f"tissue field {round(span * um)} µm wide" if um else "tissue field at 1/4 scale"


def _float(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) and v > 0 else None


register(SourcePlugin("slide", accepts, open_slide, priority=35, open_path=open_slide_path))
