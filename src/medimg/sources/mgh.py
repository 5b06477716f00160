"""FreeSurfer MGH volumes (.mgh, .mgz: brain MRI research data) as 8-bit axial slices.

Read with nibabel and shown like NIfTI (`nifti.axial_slices`): the middle axial slice, or every one
with `all_frames`, radiological orientation from the header's direction cosines, square pixels.
A .mgz inflates in memory up to `max_input_bytes`.
"""

from __future__ import annotations

import math
import struct
from typing import Iterator

from nibabel.freesurfer.mghformat import MGHImage

from .base import Blob, Context, Item, ItemError, SourcePlugin
from .nifti import axial_slices, first_bytes, unpack
from .registry import register

_GZIP = b"\x1f\x8b"
_HEADER = 284
_TYPES = {0, 1, 3, 4}  # uchar, int32, float32, int16


def _is_header(first: bytes) -> bool:
    """Whether the first bytes are an MGH header: version 1, sizes and frames ≥ 1, a known voxel type."""
    if len(first) < 28:
        return False
    version, *dims, kind, _dof = struct.unpack(">7i", first[:28])
    return version == 1 and kind in _TYPES and all(1 <= d <= 1 << 20 for d in dims)


def accepts(head: bytes, blob: Blob) -> bool:
    if head[:2] == _GZIP:
        return _is_header(first_bytes(blob.data, 28))
    return len(blob.data) >= _HEADER and _is_header(head)


def open_mgh(blob: Blob, ctx: Context) -> Iterator[Item]:
    origin, limits = blob.origin, ctx.limits
    try:
        data = unpack(blob.data, limits.max_input_bytes, "MGH volume")
    except ValueError as exc:
        yield ItemError(origin, "", str(exc))
        return
    try:
        img = MGHImage.from_bytes(data)
        shape = tuple(int(s) for s in img.shape)
    except Exception as exc:
        yield ItemError(origin, "", f"not a readable MGH file: {exc}")
        return
    hdr = img.header
    need = _HEADER + math.prod(map(int, shape)) * hdr.get_data_dtype().itemsize
    if len(data) < need:
        yield ItemError(origin, "", f"MGH volume is truncated: {len(data):,} bytes, its header needs {need:,}")
        return
    meta = {"datatype": str(hdr.get_data_dtype())}
    nan = float("nan")
    yield from axial_slices(origin, img.dataobj, shape, img.affine, list(hdr.get_zooms()[:3]), (nan, nan), meta,
                            "MGH", limits)


register(SourcePlugin("mgh", accepts, open_mgh, priority=16))
