"""MRC files (.mrc, .map, .mrcs, .st, .rec): electron microscopy micrographs, tilt series and volumes.

Read with mrcfile: bytes from memory, files on disk memory-mapped so only the planes shown are read (a
movie or tomogram of several GB is fine, up to `max_slide_bytes`). The item is the middle plane of a stack
or volume (every plane with `all_frames`), its grey levels stretched to the 0.5–99.5 percentiles, shown
with y up as EM viewers (IMOD, Chimera) show it. Mode 0 bytes are signed (MRC2014) unless IMOD's flags say
unsigned, or, without IMOD's stamp, they make a much smoother picture read as unsigned (EMAN2 writes them so).
Complex-valued maps (Fourier transforms) are a note.
"""

from __future__ import annotations

import io
import os
import struct
from typing import Iterator

import numpy as np
import mrcfile
import mrcfile.utils
from PIL import Image

from .base import Blob, Context, ImageItem, Item, ItemError, Limits, SourcePlugin
from .microscopy import levels
from .quiet import hide_warnings
from .registry import register

hide_warnings(module=r"mrcfile(\.|$)")  # damage is reported per item instead

_STAMPS = {b"\x44\x44", b"\x44\x41", b"\x11\x11", b"\x44\x00", b"\x11\x00"}  # little- and big-endian machine stamps


def accepts(head: bytes, blob: Blob) -> bool:
    """MRC2014 (and IMOD's MRC) say "MAP " at byte 208, followed by the machine stamp."""
    return len(head) >= 216 and head[208:212] == b"MAP " and head[212:214] in _STAMPS


def open_mrc(blob: Blob, ctx: Context) -> Iterator[Item]:
    from mrcfile.mrcinterpreter import MrcInterpreter

    try:
        problem = _header_problem(blob.data[:1024], len(blob.data), blob.origin, ctx.limits)
        mrc = None if problem else MrcInterpreter(io.BytesIO(blob.data), permissive=True)
    except Exception as exc:
        problem = ItemError(blob.origin, "", f"not a readable MRC file: {exc}")
    if problem:
        yield problem
        return
    yield from _planes(mrc, blob.origin, ctx.limits)


def open_mrc_path(path: str, ctx: Context) -> Iterator[Item]:
    from .files import size_problem

    problem = size_problem(path, ctx.limits.max_slide_bytes, "max_slide_bytes", "MRC file")
    if problem:
        yield problem
        return
    try:
        with open(path, "rb") as f:  # the header alone: mrcfile would read the extended header too
            head = f.read(1024)
        problem = _header_problem(head, os.path.getsize(path), path, ctx.limits)
        mrc = None if problem else mrcfile.mmap(path, mode="r", permissive=True)
    except Exception as exc:
        problem = ItemError(path, "", f"not a readable MRC file: {exc}")
    if problem:
        yield problem
        return
    with mrc:
        yield from _planes(mrc, path, ctx.limits)


def _plausible(head: bytes, order: str) -> bool:
    nx, ny, nz, mode = struct.unpack_from(order + "4i", head, 0)
    try:
        mrcfile.utils.dtype_from_mode(mode)
    except ValueError:
        return False
    return 0 < nx < 2**20 and 0 < ny < 2**20 and 0 < nz < 2**24


def _header_problem(head: bytes, size: int, origin: str, limits: Limits) -> ItemError | None:
    """Checked from the 1,024-byte header alone, before mrcfile reads (or pads) anything, the extended header
    (`nsymbt` bytes) included."""
    if len(head) < 1024:
        return ItemError(origin, "", f"MRC file is cut short: {len(head):,} bytes, less than its 1,024-byte header")
    stamped = "<" if head[212] == 0x44 else ">"  # machine stamp, checked by accepts
    # files in the wild carry the wrong stamp: the other byte order is taken when it alone gives a valid mode
    # and sizes (as mrcfile does)
    order = next((o for o in (stamped, ">" if stamped == "<" else "<") if _plausible(head, o)), stamped)
    nx, ny, nz, mode = struct.unpack_from(order + "4i", head, 0)
    nsymbt, = struct.unpack_from(order + "i", head, 92)
    if min(nx, ny, nz) <= 0:
        return ItemError(origin, "", f"MRC header gives no image size ({nx}×{ny}×{nz})")
    if nx * ny > limits.max_pixels:
        return ItemError(origin, "", f"MRC planes are {nx}×{ny} = {nx * ny:,} pixels, over the max_pixels cap of "
                                     f"{limits.max_pixels:,}; not decoded")
    try:
        itemsize = mrcfile.utils.dtype_from_mode(mode).itemsize
    except ValueError as exc:
        return ItemError(origin, "", f"not a readable MRC file: {exc}")
    if nsymbt < 0:
        return ItemError(origin, "", f"not a readable MRC file: extended header length {nsymbt} is negative")
    need = 1024 + nsymbt + nx * ny * nz * itemsize
    if need > size:
        return ItemError(origin, "", f"MRC file is cut short: its header needs {need:,} bytes, it has {size:,}")
    return None


IMOD_STAMP = 1146047817  # "IMOD" at byte 152 of a header IMOD wrote


def _imod_signed(header) -> bool | None:
    """Whether IMOD says its mode 0 bytes are signed (bit 0 of its flags, byte 156, set); None when IMOD did not
    write the header (mrcfile always reads mode 0 as signed, the MRC2014 rule)."""
    stamp, flags = np.frombuffer(header.tobytes()[152:160], dtype=header.nx.dtype)
    return bool(int(flags) & 1) if int(stamp) == IMOD_STAMP else None


def _smoother_unsigned(plane: np.ndarray) -> bool:
    """Whether a mode 0 plane's bytes read as unsigned make a smoother picture than as signed: other writers
    (EMAN2, old CCP4 programs) store unsigned bytes without saying so, and read as signed, their values past
    127 jump to the bottom. Only a clear difference counts (signed is the MRC2014 rule)."""
    step = max(1, int(np.ceil(np.sqrt(plane.size / 262_144))))
    sample = plane[::step, ::step]
    signed = np.abs(np.diff(sample.astype(np.int16), axis=-1)).sum()
    unsigned = np.abs(np.diff(sample.view(np.uint8).astype(np.int16), axis=-1)).sum()
    return unsigned * 2 < signed


def _planes(mrc, origin: str, limits: Limits) -> Iterator[Item]:
    header = mrc.header
    nx, ny, nz = int(header.nx), int(header.ny), int(header.nz)
    data = mrc.data
    if data is None or data.size == 0 or data.ndim < 2:
        yield ItemError(origin, "", "MRC file without image data (or its data is cut short)")
        return
    if np.iscomplexobj(data):
        yield ItemError(origin, "", "MRC file holds a complex-valued (Fourier) map, not an image", skipped=True)
        return
    stack = data.reshape((-1,) + data.shape[-2:])
    if int(header.mode) == 0:
        imod = _imod_signed(header)
        if imod is False or (imod is None and _smoother_unsigned(np.asarray(stack[len(stack) // 2]))):
            data = data.view(np.uint8)
            stack = data.reshape((-1,) + data.shape[-2:])
    n = len(stack)
    voxel = mrc.voxel_size
    meta = {"mode": int(header.mode), "dims": [nx, ny, nz], "dtype": str(data.dtype),
            "kind": "volume" if mrc.is_volume() else "stack" if n > 1 else "image",
            "voxel_size_angstrom": round(float(voxel.x), 4) if float(voxel.x) > 0 else None}
    for i in range(n) if limits.all_frames else [n // 2]:
        plane = np.asarray(stack[i])
        image = Image.fromarray(np.ascontiguousarray(levels(plane)[::-1]), "L")  # y up
        yield ImageItem(origin, f"plane {i + 1} of {n}" if n > 1 else "", image, "MRC", dict(meta))


register(SourcePlugin("mrc", accepts, open_mrc, priority=21, open_path=open_mrc_path))
