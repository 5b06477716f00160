"""MetaImage files (.mha: ITK, 3D Slicer and grand-challenge volumes) as 8-bit axial slices.

A text header of `Key = Value` lines ends with `ElementDataFile = LOCAL`, and the voxels follow (zlib-
compressed when `CompressedData = True`). Shown like NIfTI (`nifti.axial_slices`): orientation from
`TransformMatrix` (the axes' direction vectors one after another, in ITK's LPS world), `ElementSpacing`
and `Offset`. A detached header (.mhd) names its data file (.raw, .zraw), read only when that is a bare
file name beside the header (`files.read_sibling`: same folder, zip folder or upload), never any other
path. Compressed data inflates up to `max_input_bytes`; sizes are checked from the header first. Parsed
here: the libraries that read MetaImage either weigh 50 MB (SimpleITK) or open any file a header names.
"""

from __future__ import annotations

import math
import re
import zlib
from typing import Iterator

import numpy as np

from .base import Blob, Context, Item, ItemError, SourcePlugin
from .files import read_sibling
from .inflate import inflate_into
from .nifti import axial_slices, rgb_voxels
from .registry import register

_TYPES = {"MET_CHAR": "i1", "MET_UCHAR": "u1", "MET_SHORT": "i2", "MET_USHORT": "u2", "MET_INT": "i4",
          "MET_UINT": "u4", "MET_LONG": "i8", "MET_ULONG": "u8", "MET_LONG_LONG": "i8", "MET_ULONG_LONG": "u8",
          "MET_FLOAT": "f4", "MET_DOUBLE": "f8"}
_FIRST_KEY = re.compile(rb"\s*(ObjectType|NDims|Comment|ObjectSubType)\s*=", re.I)
_MAX_HEADER = 64 * 1024
MAX_SIZE = (1 << 31) - 1  # the largest DimSize (MetaIO keeps sizes as C ints)


def accepts(head: bytes, blob: Blob) -> bool:
    if not _FIRST_KEY.match(head):
        return False
    header = blob.data[:_MAX_HEADER]
    return b"ElementDataFile" in header and b"DimSize" in header


def open_metaimage(blob: Blob, ctx: Context) -> Iterator[Item]:
    origin, limits = blob.origin, ctx.limits
    try:
        header, start = _header(blob.data)
        data, meta = blob.data, {}
        name = header["elementdatafile"]
        if name.upper() != "LOCAL":
            data, start, meta = read_sibling(name, blob), 0, {"data_file": name}
        voxels, shape, affine, zooms, dtype = _volume(data, header, start, limits.max_input_bytes)
    except (ValueError, KeyError, zlib.error) as exc:
        yield ItemError(origin, "", f"not a readable MetaImage file: {exc}")
        return
    meta |= {"datatype": dtype, "compressed": header.get("compresseddata", "false").lower() == "true"}
    nan = float("nan")
    yield from axial_slices(origin, voxels, shape, affine, zooms, (nan, nan), meta, "MetaImage", limits)


def data_file_named(head: bytes, name: str = "") -> str | None:
    """The data file a detached MetaImage header names (None for LOCAL data or other content); the
    header's own `name` does not matter here."""
    if not accepts(head[:4096], Blob("", head)):
        return None
    name = _header(head)[0]["elementdatafile"]
    return None if name.upper() == "LOCAL" else name


def utf8_or_latin1(raw: bytes) -> str:
    """A header's text: UTF-8 as ITK and pynrrd on Linux and macOS write a data file's name (`é.raw`), else Latin-1
    (it was Latin-1 always: a UTF-8 name came out as `Ã©.raw`, a file not found)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _header(data: bytes) -> tuple[dict[str, str], int]:
    """The header's fields (keys lower-cased) and where the voxels start (for LOCAL data)."""
    fields: dict[str, str] = {}
    pos = 0
    while pos < min(len(data), _MAX_HEADER):
        end = data.find(b"\n", pos)
        if end < 0:
            break
        line = utf8_or_latin1(data[pos:end]).strip()
        pos = end + 1
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        fields[key.lower()] = value
        if key.lower() == "elementdatafile":
            return fields, pos
    raise ValueError("no ElementDataFile line ends the header")


# the fields' names as MetaIO writes them, for errors (the header's keys are read in any case)
_NAMES = {k.lower(): k for k in ("NDims", "DimSize", "ElementType", "ElementSpacing", "ElementSize", "TransformMatrix",
                                 "Orientation", "Rotation", "Offset", "Position", "Origin")}


def _numbers(fields: dict[str, str], key: str, n: int, default: float | None = None) -> list[float]:
    text = fields.get(key)
    if text is None:
        if default is None:
            raise ValueError(f"header has no {_NAMES.get(key, key)}")
        return [default] * n
    values = [float(v) for v in text.split()]
    if len(values) < n:
        raise ValueError(f"{_NAMES.get(key, key)} has {len(values)} values, not {n}")
    return values


def _volume(data: bytes, fields: dict[str, str], start: int, cap: int):
    for key in ("ndims", "elementtype"):
        if key not in fields:
            raise ValueError(f"header has no {_NAMES[key]}")
    nd = int(fields["ndims"])
    if not 2 <= nd <= 4:
        raise ValueError(f"NDims {nd} is not 2, 3 or 4")
    sizes = _numbers(fields, "dimsize", nd)[:nd]
    if not all(1 <= v <= MAX_SIZE for v in sizes):  # C ints in MetaIO; 1e30 would overflow the byte count, inf int()
        raise ValueError(f"DimSize {' '.join(f'{v:g}' for v in sizes)} is not a size from 1 to {MAX_SIZE:,}")
    sizes = [int(v) for v in sizes]
    kind = _TYPES.get(fields.get("elementtype", "").upper())
    if kind is None:
        raise ValueError(f"ElementType {fields.get('elementtype')!r} is not supported")
    big = any(fields.get(k, "").lower() == "true" for k in ("binarydatabyteordermsb", "elementbyteordermsb"))
    dtype = np.dtype((">" if big else "<") + kind)
    channels = int(fields.get("elementnumberofchannels", "1"))
    if channels < 1:
        raise ValueError(f"ElementNumberOfChannels {channels}")
    total = math.prod(map(int, sizes)) * channels * dtype.itemsize
    if total > cap:
        raise ValueError(f"{'×'.join(map(str, sizes))} voxels of {channels * dtype.itemsize} bytes are over the "
                         f"max_input_bytes cap of {cap:,}")
    raw = memoryview(data)[start:]  # views: slicing bytes would copy the voxels
    if fields.get("compresseddata", "").lower() == "true":  # zlib or gzip streams, into one buffer of their size
        raw = inflate_into(raw, lambda: zlib.decompressobj(wbits=47), 0, total + 1)[0]
    skip = int(fields.get("headersize", "0"))
    raw = raw[len(raw) - total:] if skip == -1 else raw[max(skip, 0):]
    if len(raw) < total:
        raise ValueError(f"voxel data is truncated: {len(raw):,} of {total:,} bytes")
    flat = np.frombuffer(raw, dtype, count=total // dtype.itemsize)
    arr = flat.reshape(tuple(sizes[::-1]) + ((channels,) if channels > 1 else ()))
    arr = np.transpose(arr, tuple(range(nd - 1, -1, -1)) + ((nd,) if channels > 1 else ()))  # x, y, z[, t][, c]
    if channels >= 3:
        arr = rgb_voxels(arr)
    elif channels > 1:
        arr = arr[..., 0]
    spatial = min(nd, 3)
    spacing = _numbers(fields, "elementspacing", spatial, 1.0)[:spatial] if "elementspacing" in fields else \
        _numbers(fields, "elementsize", spatial, 1.0)[:spatial]
    spacing = [v if np.isfinite(v) and v != 0 else 1.0 for v in spacing]  # a spacing of 0 or NaN places nothing
    matrix = np.eye(3)
    for key in ("transformmatrix", "orientation", "rotation"):
        if key in fields:
            values = _numbers(fields, key, nd * nd)[:nd * nd]  # NDims × NDims: a 4-D file's fourth is time
            matrix[:spatial, :spatial] = np.array(values).reshape(nd, nd).T[:spatial, :spatial]  # columns: the axes
            break
    if spatial == 2:  # one slice: its normal is the third axis
        with np.errstate(all="ignore"):
            matrix[:, 2] = np.cross(matrix[:, 0], matrix[:, 1])
    offset = [0.0] * 3
    for key in ("offset", "position", "origin"):
        if key in fields:
            offset[:spatial] = _numbers(fields, key, spatial)[:spatial]
            break
    lps_to_ras = np.diag([-1.0, -1.0, 1.0])
    zooms = list(spacing) + [1.0] * (3 - spatial)
    affine = np.eye(4)
    with np.errstate(all="ignore"):  # inf or 1e308 in the header: NumPy's warnings would reach the console
        affine[:3, :3] = lps_to_ras @ matrix @ np.diag(zooms)
        affine[:3, 3] = lps_to_ras @ np.array(offset)
        if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            affine = np.diag([-zooms[0], -zooms[1], zooms[2], 1.0])  # no usable orientation: as stored (LPS, as ITK)
    if nd == 2:
        arr = arr[:, :, None]
    return arr, tuple(int(s) for s in arr.shape[:4]), affine, zooms, str(flat.dtype)


register(SourcePlugin("metaimage", accepts, open_metaimage, priority=18))
