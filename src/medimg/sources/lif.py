"""Leica LIF projects (LAS X, confocal and widefield) through readlif.

A LIF file is a project holding many acquisitions (series); each is an image of its own, its channels
merged as `microscopy.py` merges a TIFF stack's (colours from each channel's LUT name, else ImageJ's),
its middle z-slice at the middle time point and middle mosaic tile (every z-slice with `all_frames`).
Files on disk are read in place, one plane at a time (up to `max_slide_bytes`); bytes from memory.
"""

from __future__ import annotations

import io
import struct
import xml.etree.ElementTree as ET
from typing import Iterator

import numpy as np

from .base import Blob, Context, ImageItem, Item, ItemError, Limits, SourcePlugin
from .microscopy import IMAGEJ_COLOURS, composite, image_names, xml_problem
from .quiet import hide_warnings
from .registry import register

hide_warnings(module=r"readlif(\.|$)")  # truncation is reported per item instead
LUT_COLOURS = {"red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1), "gray": (1, 1, 1), "grey": (1, 1, 1),
               "cyan": (0, 1, 1), "magenta": (1, 0, 1), "yellow": (1, 1, 0)}


def accepts(head: bytes, blob: Blob) -> bool:
    """The LIF magic, a memory mark, then the UTF-16 XML header of an LMS data container."""
    return head[:4] == b"\x70\x00\x00\x00" and head[8:9] == b"\x2a" and "<LMSDataContainerHeader" in \
        head[13:200].decode("utf-16-le", errors="ignore")


def open_lif(blob: Blob, ctx: Context) -> Iterator[Item]:
    yield from _read(io.BytesIO(blob.data), blob.origin, ctx.limits)


def open_lif_path(path: str, ctx: Context) -> Iterator[Item]:
    from .files import size_problem

    problem = size_problem(path, ctx.limits.max_slide_bytes, "max_slide_bytes", "LIF file")
    if problem:
        yield problem
        return
    yield from _read(path, path, ctx.limits)


def _read(source, origin: str, limits: Limits) -> Iterator[Item]:
    from readlif.reader import LifFile

    problem = _header_problem(source)
    if problem:
        yield ItemError(origin, "", f"LIF file not read: {problem}")
        return
    try:
        lif = LifFile(source)
    except Exception as exc:  # readlif's words for a file cut short: "unclosed token", "unpack requires …"
        yield ItemError(origin, "", f"not a readable LIF file: {_cut_short(source) or exc}")
        return
    if lif.num_images == 0:
        yield ItemError(origin, "", "LIF project holds no images", skipped=True)
        return
    luts = _lut_names(lif)
    names = image_names([str(info.get("name") or "").strip()[:120] for info in lif.image_list])
    for n in range(lif.num_images):
        info, name = lif.image_list[n], names[n]
        try:
            yield from _image(lif, n, info, name, luts[n] if luts else None, origin, limits)
        except Exception as exc:  # readlif's "not enough image data" for a file cut short
            yield ItemError(origin, name, f"could not read this image: {_cut_short(source) or exc}")


def _header_problem(source) -> str | None:
    """What is wrong with the XML header, read as readlif reads it, before readlif parses it (an entity
    expansion bomb there took 2.7 GB); None when fine or unreadable (readlif then says what is wrong)."""
    try:
        text = _header_text(source)
    except Exception:
        return None
    return xml_problem(text, "its XML header") if text is not None else None


def _header_text(source) -> str | None:
    if isinstance(source, str):
        with open(source, "rb") as f:
            return _read_header(f)
    try:
        return _read_header(source)
    finally:
        source.seek(0)


def _cut_short(source) -> str | None:
    """How a LIF file is cut short: it ends inside its XML header, or before the image data the header declares
    (its Memory sizes added up); None when it is not, or cannot be told."""
    try:
        f = open(source, "rb") if isinstance(source, str) else source
        try:
            f.seek(0)
            head = f.read(13)
            size = f.seek(0, io.SEEK_END)
            f.seek(13)
            end = 13 + struct.unpack("<I", head[9:13])[0] * 2
            if end > size:
                return f"the file is cut short: it ends inside its XML header ({size:,} bytes of its {end:,})"
            root = ET.fromstring(f.read(end - 13).decode("utf-16"))
        finally:
            if isinstance(source, str):
                f.close()
        declared = sum(int(m.get("Size", 0)) for m in root.iter("Memory"))
    except Exception:
        return None
    if end + declared > size:
        return (f"the file is cut short: its header declares {declared:,} bytes of image data, and "
                f"{size - end:,} bytes follow it")
    return None


def _read_header(f) -> str | None:
    """The UTF-16 XML header: magic 0x70 (4 bytes), length (4), memory mark 0x2A, chars (uint32), the text;
    None when the file does not start so."""
    head = f.read(13)
    if len(head) < 13 or head[:4] != b"\x70\x00\x00\x00" or head[8:9] != b"\x2a":
        return None
    size = f.seek(0, io.SEEK_END)
    f.seek(13)
    return f.read(min(struct.unpack("<I", head[9:13])[0] * 2, size - 13)).decode("utf-16")


def _image(lif, n: int, info: dict, name: str, luts: list[str] | None, origin: str, limits: Limits) -> Iterator[Item]:
    dims, channels, bits = info["dims"], int(info["channels"]), info["bit_depth"]
    if dims.x * dims.y * max(channels, 1) > limits.max_pixels:  # every channel of the plane is decoded
        yield ItemError(origin, name, f"image is {channels} channel(s) of {dims.x}×{dims.y} pixels, over the "
                                      f"max_pixels cap of {limits.max_pixels:,}; not decoded")
        return
    if not channels or max(bits) > 16:
        yield ItemError(origin, name, f"{channels} channels of {bits} bits: not readable here")
        return
    image = lif.get_image(n)
    colours = [LUT_COLOURS.get(str(lut).lower(), IMAGEJ_COLOURS[i % 7]) for i, lut in enumerate(luts or [])]
    if len(colours) != channels:
        colours = [IMAGEJ_COLOURS[i % len(IMAGEJ_COLOURS)] for i in range(channels)]
    zs = range(dims.z) if limits.all_frames else [dims.z // 2]
    meta = {"series": name, "dims": {"x": dims.x, "y": dims.y, "z": dims.z, "t": dims.t, "tiles": dims.m},
            "channels": channels, "bits": list(bits)}
    scale = info.get("scale") or (None,)
    if scale[0]:
        meta["um_per_px"] = round(1 / float(scale[0]), 4)
    for z in zs:
        planes = np.stack([np.asarray(image.get_frame(z=z, t=dims.t // 2, c=c, m=dims.m // 2)) for c in range(channels)])
        where = ", ".join(filter(None, [name, f"z {z + 1} of {dims.z}" if dims.z > 1 else "",
                                        f"t {dims.t // 2 + 1} of {dims.t}" if dims.t > 1 else ""]))
        yield ImageItem(origin, where, composite(planes, "YX", colours, microscope=True), "LIF", dict(meta))


def _lut_names(lif) -> list[list[str]] | None:
    """Each image's channel LUT names, in readlif's image order (None when the two orders cannot be matched)."""
    try:
        root = lif.xml_root if lif.xml_root is not None else ET.fromstring(lif.xml_header)
        found = [[c.attrib.get("LUTName", "") for c in el.findall("./Data/Image/ImageDescription/Channels/ChannelDescription")]
                 for el in root.iter("Element") if el.find("./Data/Image") is not None]
    except Exception:
        return None
    return found if len(found) == lif.num_images else None


register(SourcePlugin("lif", accepts, open_lif, priority=37, open_path=open_lif_path))
