"""Zeiss CZI files (ZISRAW: Axioscan slides, LSM/Apotome/widefield images) through libCZI (pylibCZIrw).

pylibCZIrw is the `czi` extra (its wheel pulls in cmake); without it a CZI file is one clear error.
Channels are merged as `microscopy.py` merges a TIFF stack's (colours from the file's display settings,
else ImageJ's); a brightfield (BGR) image is shown as it is. The item is the middle z-slice at the middle
time point (every z-slice with `all_frames`). An image up to SCAN_SIDE pixels a side is shown whole; a
slide scan larger than that is shown as `slide.py` shows slides: a 512 px field at about 1 µm/px around
the window of an overview with the most tissue, read from the pyramid. Each scene of a CZI of several (a
plate's wells, a slide's tissue sections) is an item of its own. Files on disk are read in place
(up to `max_slide_bytes`); bytes go through a temporary file, as libCZI reads only files.
"""

from __future__ import annotations

import os
import struct
from typing import Iterator

import numpy as np
from PIL import Image

from ..scratch import work_folder
from .base import Blob, Context, ImageItem, Item, ItemError, Limits, SourcePlugin
from .microscopy import IMAGEJ_COLOURS, composite, levels
from .registry import register
from .slide import SCAN_SIDE, field_words, tissue_field

MAGIC = b"ZISRAWFILE"
OVERVIEW = 1024  # longest side of the overview read to find tissue
MAX_DIMENSIONS = 40  # libCZI's own cap on the dimensions a sub-block names


def accepts(head: bytes, blob: Blob) -> bool:
    return head.startswith(MAGIC)


def open_czi(blob: Blob, ctx: Context) -> Iterator[Item]:
    with work_folder() as tmp:
        path = os.path.join(tmp, "image.czi")
        with open(path, "wb") as f:
            f.write(blob.data)
        for item in open_czi_path(path, ctx):
            item.origin = blob.origin
            yield item


def open_czi_path(path: str, ctx: Context) -> Iterator[Item]:
    from .files import size_problem

    problem = size_problem(path, ctx.limits.max_slide_bytes, "max_slide_bytes", "CZI file")
    if problem:
        yield problem
        return
    try:
        from pylibCZIrw import czi as pyczi
    except ImportError:
        yield ItemError(path, "", "Zeiss CZI files need the czi extra: pip install 'medimg[czi]' (from a "
                                  "checkout: .venv/bin/pip install -e '.[czi]')")
        return
    problem = _crashing_subblock(path)
    if problem:
        yield ItemError(path, "", f"not a readable CZI file: {problem}; not read")
        return
    opened = False
    try:
        with pyczi.open_czi(path) as reader:
            opened = True
            yield from _items(reader, path, ctx.limits)
    except Exception as exc:
        what = "could not read the CZI image" if opened else "not a readable CZI file"
        # libCZI's std::bad_alloc: a sub-block claiming more than any memory
        why = "the file is damaged (it claims more memory than is available)" if isinstance(exc, MemoryError) else exc
        if "Not enough data read" in str(why):  # libCZI's words for a read past the end
            why = f"the file is cut short or damaged (it ends at byte {os.path.getsize(path):,}): {why}"
        yield ItemError(path, "", f"{what}: {why}")


def _crashing_subblock(path: str) -> str | None:
    """What libCZI would crash on rather than refuse: a sub-block directory entry, or a sub-block's own copy of
    it, naming a negative number of dimensions, or more than libCZI's 40 in the directory (the process died
    with SIGSEGV or SIGBUS). Everything else damaged libCZI reports itself, so a layout this walk cannot
    follow is left to it."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(32 + 68)  # segment header, then version, GUIDs, file part, directory position
        if len(head) < 100:
            return None
        (directory,) = struct.unpack_from("<q", head, 32 + 52)
        if not 0 < directory <= size - 160:
            return None
        f.seek(directory)
        segment = f.read(160)  # segment header, EntryCount, 124 reserved bytes
        if not segment.startswith(b"ZISRAWDIRECTORY"):
            return None
        (count,) = struct.unpack_from("<i", segment, 32)
        blocks = []
        for number in range(1, max(0, min(count, (size - directory) // 32)) + 1):
            entry = f.read(32)  # schema, pixel type, file position, file part, ..., DimensionCount
            if len(entry) < 32 or entry[:2] != b"DV":
                return None
            position, part = struct.unpack_from("<qi", entry, 6)
            (dims,) = struct.unpack_from("<i", entry, 28)
            if not 0 <= dims <= MAX_DIMENSIONS:
                return f"sub-block directory entry {number} names {dims} dimensions"
            f.seek(20 * dims, os.SEEK_CUR)
            if part == 0 and 0 <= position <= size - 80:
                blocks.append((number, position))
        for number, position in blocks:
            f.seek(position)
            block = f.read(80)  # segment header, sizes, then the sub-block's own directory entry
            if block.startswith(b"ZISRAWSUBBLOCK") and block[48:50] == b"DV":
                (dims,) = struct.unpack_from("<i", block, 76)
                if not 0 <= dims <= MAX_DIMENSIONS:
                    return f"sub-block {number} at byte {position} names {dims} dimensions"
    return None


def _items(reader, origin: str, limits: Limits) -> Iterator[Item]:
    box = reader.total_bounding_box
    rect = reader.total_bounding_rectangle
    x0, y0, w, h = rect.x, rect.y, rect.w, rect.h
    if w <= 0 or h <= 0:
        yield ItemError(origin, "", "CZI file without image data")
        return
    c_lo, c_hi = box.get("C", (0, 1))
    if c_hi - c_lo < 1:
        yield ItemError(origin, "", "CZI file without channels")
        return
    per_plane = limits.max_pixels // (c_hi - c_lo)  # every channel of the shown plane is decoded
    if per_plane < 64 * 64:
        yield ItemError(origin, "", f"CZI has {c_hi - c_lo:,} channels: too many to merge within the max_pixels "
                                    f"cap of {limits.max_pixels:,}; not decoded")
        return
    channels = list(range(c_lo, c_hi))
    meta_doc = _metadata(reader)  # parsed once: a plate's XML names every well, and it is parsed whole
    shown = (_pixel_um(meta_doc), _colours(meta_doc, len(channels)),
             {c: reader.get_channel_pixel_type(c) for c in channels})  # reader.pixel_types counts from 0
    scenes = sorted((reader.scenes_bounding_rectangle or {}).items())
    if len(scenes) < 2:
        yield from _region(reader, (x0, y0, w, h), None, "", channels, shown, origin, limits)
        return
    for n, (scene, r) in enumerate(scenes):  # a plate's wells, a slide's tissue sections: each an item
        name = f"scene {n + 1} of {len(scenes)}"
        try:
            yield from _region(reader, (r.x, r.y, r.w, r.h), scene, name, channels, shown, origin, limits)
        except Exception as exc:
            yield ItemError(origin, name, f"could not read the CZI image: {exc}")


def _region(reader, rect, scene: int | None, name: str, channels: list[int], shown: tuple, origin: str,
            limits: Limits) -> Iterator[Item]:
    """The items of the whole image, or of one scene: its middle z-slice (every one with all_frames), whole or
    as a tissue field. `shown`: the file's µm per pixel, channel colours and pixel types."""
    x0, y0, w, h = rect
    box = reader.total_bounding_box
    per_plane = limits.max_pixels // len(channels)
    z_lo, z_hi = box.get("Z", (0, 1))
    t_lo, t_hi = box.get("T", (0, 1))
    zs = list(range(z_lo, z_hi)) if limits.all_frames else [(z_lo + z_hi) // 2]
    t = (t_lo + t_hi) // 2
    um, colours, kinds = shown
    brightfield = str(kinds.get(channels[0], "")).startswith("Bgr")

    def read(roi, zoom: float, z: int) -> Image.Image:
        planes = [np.asarray(reader.read(roi=roi, plane={"C": c, "Z": z, "T": t}, scene=scene, zoom=zoom))
                  for c in channels]
        if brightfield:
            bgr = planes[0][..., :3]
            rgb = bgr[..., ::-1] if bgr.dtype == np.uint8 else levels(bgr[..., ::-1])
            return Image.fromarray(np.ascontiguousarray(rgb), "RGB")
        return composite(np.stack([p[..., 0] for p in planes]), "YX", colours, microscope=True)

    meta = {"dimensions": [w, h], "channels": len(channels), "z": z_hi - z_lo, "t": t_hi - t_lo,
            "pixel_types": sorted({str(v) for v in kinds.values()}), "um_per_px": round(um, 4) if um else None}
    field = None
    if max(w, h) > SCAN_SIDE:
        mid = (z_lo + z_hi) // 2
        field = tissue_field(lambda roi, zoom: read(roi, zoom, mid), (x0, y0, w, h), um, per_plane, OVERVIEW)
        meta["field"] = {"x": field[0][0], "y": field[0][1], "size": field[0][2]}
    for z in zs:
        where = ", ".join(filter(None, [f"z {z - z_lo + 1} of {z_hi - z_lo}" if z_hi - z_lo > 1 else "",
                                        f"t {t - t_lo + 1} of {t_hi - t_lo}" if t_hi - t_lo > 1 else ""]))
        locator = ", ".join(filter(None, [name, where]))
        if field is not None:
            roi, zoom = field
            locator = ", ".join(filter(None, [name, field_words(roi[2], um), where]))
        else:
            zoom = min(1.0, (per_plane / (w * h)) ** 0.5)
            roi = (x0, y0, w, h)
        image = read(roi, zoom, z)
        yield ImageItem(origin, locator, image, "CZI", dict(meta), full_size=(w, h) if image.size != (w, h) else None)


def _metadata(reader) -> dict:
    try:
        return reader.metadata["ImageDocument"]["Metadata"] or {}
    except Exception:
        return {}


def _pixel_um(meta: dict) -> float | None:
    try:
        items = meta["Scaling"]["Items"]["Distance"]
        items = items if isinstance(items, list) else [items]
        metres = float(next(d["Value"] for d in items if d.get("@Id") == "X"))
    except Exception:
        return None
    um = metres * 1e6
    return um if 0.01 <= um <= 100 else None


def _colours(meta: dict, n: int) -> list[tuple[float, float, float]]:
    """Each channel's display colour ("#AARRGGBB" in the display settings), else ImageJ's defaults."""
    default = [IMAGEJ_COLOURS[i % len(IMAGEJ_COLOURS)] for i in range(n)]
    try:
        chans = meta["DisplaySetting"]["Channels"]["Channel"]
        chans = chans if isinstance(chans, list) else [chans]
        found = [str(c["Color"]).lstrip("#")[-6:] for c in chans]
        colours = [tuple(int(v[i:i + 2], 16) / 255 for i in (0, 2, 4)) for v in found]
    except Exception:
        return default
    return colours if len(colours) == n and all(any(c) for c in colours) else default


register(SourcePlugin("czi", accepts, open_czi, priority=36, open_path=open_czi_path))
