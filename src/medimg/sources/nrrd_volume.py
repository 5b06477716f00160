"""NRRD files (.nrrd: 3D Slicer and research volumes, also plain 2D images) as 8-bit axial slices.

Read with pynrrd and shown like NIfTI (`nifti.axial_slices`): the middle axial slice, or every one with
`all_frames`, radiological orientation from `space directions` and `space`, square pixels. An RGB(A)
colour axis gives colour slices, one list/time axis is read at its middle (a diffusion series at its b0).
Without any orientation the array is shown as stored (first axis across, second down). A detached header
(.nhdr) names its data file, read only when that is a bare file name beside the header (`files.read_sibling`:
same folder, zip folder or upload), never any other path. Gzip/bzip2 data inflates up to `max_input_bytes`. A 3D Slicer
segmentation (.seg.nrrd) is a note, as DICOM segmentations are.
"""

from __future__ import annotations

import bz2
import io
import math
import re
import zlib
from typing import Iterator

import nrrd
import numpy as np

from .base import Blob, Context, Item, ItemError, SourcePlugin
from .files import read_sibling
from .inflate import inflate_into
from .nifti import axial_slices, b0_volume, rgb_voxels
from .metaimage import utf8_or_latin1
from .quiet import hide_warnings
from .registry import register

# pynrrd casts `sizes: 1e30` to int with numpy's warning on stderr; the sizes are refused per item instead (hidden
# while medimg reads: quiet.py).
hide_warnings(r"nrrd\.", "invalid value encountered in cast", RuntimeWarning)

_SPACE_SIGNS = {  # world axes flipped to reach RAS+ (the -time spaces' fourth world axis is time)
    "left-posterior-superior": (-1, -1, 1), "lps": (-1, -1, 1),
    "left-anterior-superior": (-1, 1, 1), "las": (-1, 1, 1),
    "left-posterior-superior-time": (-1, -1, 1), "lpst": (-1, -1, 1),
    "left-anterior-superior-time": (-1, 1, 1), "last": (-1, 1, 1),
}
_TIME_SPACES = {"right-anterior-superior-time", "rast", "left-posterior-superior-time", "lpst",
                "left-anterior-superior-time", "last"}


def accepts(head: bytes, blob: Blob) -> bool:
    return head[:7] == b"NRRD000" and head[7:8].isdigit()


def open_nrrd(blob: Blob, ctx: Context) -> Iterator[Item]:
    origin, limits = blob.origin, ctx.limits
    meta = {}
    try:
        data = blob.data
        name = _data_file(data)
        if name is not None:
            data, meta = _attach(data, read_sibling(name, blob)), {"data_file": name}
        arr, header = _read(data, limits.max_input_bytes, limits.max_pixels)
        if _segmentation(header):  # as DICOM segmentations: masks drawn on an image, not an image
            yield ItemError(origin, "", f"NRRD holds a 3D Slicer segmentation (sizes {list(arr.shape)}), not an "
                                        "image volume", skipped=True)
            return
        with np.errstate(all="ignore"):  # inf or 1e308 in its directions: NumPy's warnings would reach the console
            voxels, shape, affine, zooms = _volume(arr, header)
        volume, b = b0_volume(_bvalues(header, shape[3])) if len(shape) == 4 else (None, None)
    except (ValueError, nrrd.NRRDError) as exc:
        yield ItemError(origin, "", f"not a readable NRRD file: {exc}")
        return
    except KeyError as exc:  # pynrrd looks a field or its value up: a missing `type`, an unknown `type: int9`
        what = str(exc.args[0] if exc.args else "")[:40]
        said = (f"its header has no {what!r} field" if what in _FIELDS
                else f"its header has a value pynrrd does not know: {what!r}")
        yield ItemError(origin, "", f"not a readable NRRD file: {said}")
        return
    meta |= {"datatype": str(arr.dtype), "encoding": str(header.get("encoding"))}
    if volume is not None:
        meta["b_value"] = b
    if not _oriented(header, arr.ndim):  # said as stored, not as a fact about the scan
        meta["orientation"] = "none in the header (shown as stored)"
        if header.get("spacings") is None:
            meta["voxel_mm"] = None
    nan = float("nan")
    yield from axial_slices(origin, voxels, shape, affine, zooms, (nan, nan), meta, "NRRD", limits, volume)


def _bvalues(header: dict, volumes: int) -> list[float] | None:
    """A diffusion NRRD's b-value per volume (3D Slicer's DWMRI_b-value and DWMRI_gradient_0000…: a gradient's
    squared length scales the b-value), when there is one gradient per volume; None otherwise."""
    try:
        b = float(header["DWMRI_b-value"])
        gradients = [np.asarray(str(header[f"DWMRI_gradient_{i:04d}"]).split()[:3], dtype=float)
                     for i in range(volumes)]
    except (KeyError, ValueError):
        return None
    values = [b * float(g @ g) for g in gradients]
    return values if np.all(np.isfinite(values)) else None


# pynrrd parses the header a line at a time in Python (99 million comment lines, 198 MB: 22 s CPU): real headers have
# tens of lines (a Slicer segmentation about ten per segment) and a few KB
MAX_HEADER_LINES = 200_000
_FIELDS = {"type", "dimension", "sizes", "encoding", "endian", "space", "space dimension", "space directions",
           "space origin", "kinds", "byte skip", "line skip", "data file", "spacings"}
MAX_HEADER_BYTES = 8 << 20
# the rest of the line, its blanks and CR trimmed after: a lazy match before [ \t]* tried the blanks again from
# each character (a line of 40,000 spaces took 57 s)
_DATA_FILE = re.compile(rb"^data ?file:[ \t]*+([^\n]*)", re.M)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def _check_header(lines: int, size: int) -> None:
    if size > MAX_HEADER_BYTES:
        raise ValueError(f"header longer than {MAX_HEADER_BYTES:,} bytes; not opened")
    if lines > MAX_HEADER_LINES:
        raise ValueError(f"header of more than {MAX_HEADER_LINES:,} lines; not opened")


def _header_lines(fh: io.BytesIO) -> Iterator[bytes]:
    """fh's lines for pynrrd's read_header, checked as they go (fh stays after the last line taken, where
    pynrrd's own seek would put it)."""
    lines = size = 0
    while line := fh.readline(MAX_HEADER_BYTES + 1 - size):
        lines, size = lines + 1, size + len(line)
        _check_header(lines, size)
        yield line


def _header_end(data: bytes) -> int:
    """Where the header's lines end: at the first blank line (or the end of a detached header), looked for in
    the first MAX_HEADER_BYTES only."""
    end = _BLANK_LINE.search(data, 0, MAX_HEADER_BYTES + 4)
    return end.start() if end else len(data)


def data_file_named(head: bytes, name: str = "") -> str | None:
    """The data file a detached NRRD header names (None for attached data or other content); the header's
    own `name` does not matter here."""
    return _data_file(head) if accepts(head, Blob("", head)) else None


def _data_file(data: bytes) -> str | None:
    """The data file a detached header names (None when the data is attached)."""
    found = _DATA_FILE.search(data, 0, min(_header_end(data), MAX_HEADER_BYTES))
    if not found:
        return None
    value = found.group(1)
    return utf8_or_latin1((value[:-1] if value.endswith(b"\r") else value).rstrip(b" \t"))


def _attach(header: bytes, data: bytes) -> bytes:
    """A detached header and its data file as one attached NRRD (line/byte skips apply to the data alike)."""
    head = header[:_header_end(header)]
    _check_header(head.count(b"\n") + 1, len(head))
    lines = [line for line in _DATA_FILE.sub(b"", head).splitlines() if line.strip()]
    return b"\n".join(lines) + b"\n\n" + data


def _read(data: bytes, cap: int, max_pixels: int) -> tuple[np.ndarray, dict]:
    """The voxels (first axis fastest, as the header lists them) and the header, every size checked first."""
    fh = io.BytesIO(data)
    try:
        header = nrrd.read_header(_header_lines(fh))
    except ValueError as exc:  # pynrrd splits each line at its colon, unpacking two parts
        if "unpack" not in str(exc):
            raise
        line = data.count(b"\n", 0, fh.tell() - 1) + 1  # the last line read; not quoted (it could be anything)
        raise ValueError(f"header line {line} is not a `field: value` line") from None
    if header.get("data file", header.get("datafile")) is not None:
        raise ValueError("detached header (.nhdr): the voxels are in other files, which are not opened")
    sizes = [int(s) for s in header.get("sizes", [])]
    if not sizes or min(sizes) < 1 or len(sizes) > 5:
        raise ValueError(f"unsupported sizes {sizes}")
    dtype = nrrd.reader._determine_datatype(header)
    if dtype.itemsize == 0:  # type: block, opaque records of `block size` bytes
        raise ValueError(f"type {header.get('type')} holds opaque blocks of bytes, not voxels")
    total = math.prod(map(int, sizes)) * dtype.itemsize
    if total > cap:
        raise ValueError(f"{'×'.join(map(str, sizes))} voxels of {dtype.itemsize} bytes are over the "
                         f"max_input_bytes cap of {cap:,}")
    plane = sorted(sizes, reverse=True)[:2]
    if plane[0] * (plane[1] if len(plane) > 1 else 1) > max_pixels:
        raise ValueError(f"a slice could be {plane[0]}×{plane[-1]} pixels, over the max_pixels cap of {max_pixels:,}")
    encoding = str(header.get("encoding", "")).lower()
    # skip the lines here, for every encoding: pynrrd reads them one by one, however many the header says
    lines = int(header.get("line skip", header.get("lineskip", 0)))
    fh.seek(_skip_lines(data, fh.tell(), lines))
    header = {k: v for k, v in header.items() if k not in ("line skip", "lineskip")}
    skip = int(header.get("byte skip", header.get("byteskip", 0)))
    if skip < -1:
        raise ValueError(f"byte skip of {skip:,} is not allowed")
    if encoding == "raw":  # read in place: pynrrd copies the voxels twice
        at = fh.tell()
        start = len(data) - total if skip == -1 else at + skip
        return _array(data, start if start >= at else -1, dtype, sizes), header
    if encoding in ("gzip", "gz", "bzip2", "bz2"):  # inflate here, capped, instead of pynrrd's unbounded loop
        packed = memoryview(data)[fh.tell():]
        if skip > 0 and skip + total > cap:  # the skipped bytes are inflated too: they count
            raise ValueError(f"byte skip of {skip:,} plus {total:,} bytes of voxels is over the max_input_bytes "
                             f"cap of {cap:,}")
        # the voxels alone, into one buffer: those after the skipped bytes, or with a byte skip of -1 the last
        # bytes (the stream's length counted first)
        make = (lambda: zlib.decompressobj(wbits=47)) if encoding.startswith("g") else bz2.BZ2Decompressor
        try:
            start = max(inflate_into(packed, make, 0, 0, cap)[1] - total, 0) if skip == -1 else skip
            raw, inflated = inflate_into(packed, make, start, total, cap)
        except (zlib.error, OSError, EOFError) as exc:
            raise ValueError(f"compressed data is corrupt ({exc})") from None
        if inflated > cap:
            raise ValueError(f"data inflates past the max_input_bytes cap of {cap:,} bytes")
        return _array(raw, 0, dtype, sizes), header
    return nrrd.read_data(header, fh, index_order="F"), header


def _array(buf: bytes, start: int, dtype: np.dtype, sizes: list[int]) -> np.ndarray:
    """The voxels at `start` of `buf` (-1: none), without a copy, indexed in the header's axis order (first
    axis fastest)."""
    need = math.prod(map(int, sizes)) * dtype.itemsize
    have = max(len(buf) - start, 0) if start >= 0 else 0
    if have < need:
        raise ValueError(f"the data holds {have:,} bytes, its sizes need {need:,}")
    return np.frombuffer(buf, dtype, need // dtype.itemsize, start).reshape(sizes[::-1]).T


def _skip_lines(data: bytes, at: int, n: int) -> int:
    """Where the data starts after a `line skip` of `n` lines from `at`; ValueError when the data has fewer."""
    if n < 0:
        raise ValueError(f"line skip of {n} is negative")
    step, asked = 1 << 16, n
    while n:
        end = min(at + step, len(data))
        found = data.count(b"\n", at, end)
        if found >= n:  # the n-th newline is in this stretch
            for _ in range(n):
                at = data.index(b"\n", at) + 1
            return at
        if end == len(data):
            raise ValueError(f"line skip of {asked:,} lines is more than the data holds")
        n, at = n - found, end
    return at


_SEGMENT = re.compile(r"Segment\d+_ID$|Segmentation_", re.I)


def _segmentation(header: dict) -> bool:
    """Whether the header is 3D Slicer's for a segmentation (.seg.nrrd): its `Segment0_ID:=…` or
    `Segmentation_…:=…` key-value lines."""
    return any(_SEGMENT.match(str(key)) for key in header)


def _oriented(header: dict, n: int) -> bool:
    """Whether the header places the voxels in space (`space directions` for every axis, those of its space axes
    independent), as `_volume` reads it."""
    dirs = header.get("space directions")
    if dirs is None or np.asarray(dirs, dtype=float).shape[0] != n:
        return False
    dirs = np.asarray(dirs, dtype=float)
    spatial = dirs[np.all(np.isfinite(dirs), axis=1)]
    return np.linalg.matrix_rank(spatial) == len(spatial) > 0


def _volume(arr: np.ndarray, header: dict) -> tuple[np.ndarray, tuple[int, ...], np.ndarray, list[float]]:
    """(voxels as x, y, z[, t], their shape, a voxel → RAS+ mm affine, voxel sizes) from the array and header."""
    n = arr.ndim
    kinds = [str(k).lower() for k in header.get("kinds", [])] + ["domain"] * n
    dirs = header.get("space directions")
    dirs = np.asarray(dirs, dtype=float) if dirs is not None else None
    if dirs is not None and dirs.shape[0] == n:
        spatial = [i for i in range(n) if np.all(np.isfinite(dirs[i]))]
    else:
        dirs = None
        spatial = [i for i in range(n) if kinds[i] in ("domain", "space")][:3]
    colour = [i for i in range(n) if i not in spatial and ("color" in kinds[i] or kinds[i] in ("3-vector", "4-vector"))
              and arr.shape[i] in (3, 4)]
    other = [i for i in range(n) if i not in spatial and i not in colour]
    if not 2 <= len(spatial) <= 3 or len(colour) > 1 or len(other) > 1:
        raise ValueError(f"unsupported layout: {n} axes of kinds {kinds[:n]}")
    arr = np.transpose(arr, spatial + other + colour)
    if colour:
        arr = rgb_voxels(arr)
    if len(spatial) == 2 and other:  # x, y, t: a z axis of one slice in between
        arr = arr[:, :, None, :]
    affine = np.eye(4)
    if dirs is not None:
        d = dirs[spatial]
        space = str(header.get("space", "")).lower()
        if space in _TIME_SPACES:  # the directions' fourth value is along time
            d = d[:, :3]
        if d.shape[1] == 3:
            d = d * np.array(_SPACE_SIGNS.get(space, (1, 1, 1)))
        full = np.zeros((3, 3))
        full[: d.shape[1], : len(spatial)] = d.T[:3]
        if len(spatial) == 2:  # one slice: its normal is the third axis
            normal = np.cross(full[:, 0], full[:, 1])
            full[:, 2] = normal / np.linalg.norm(normal) if np.linalg.norm(normal) > 0 else (0, 0, 1)
        affine[:3, :3] = full
        origin = header.get("space origin")
        origin = None if origin is None else list(origin)[:3]
        if origin is not None and len(origin) == 3 and np.all(np.isfinite(origin)):
            affine[:3, 3] = np.asarray(origin, dtype=float) * np.array(_SPACE_SIGNS.get(space, (1, 1, 1)))
        zooms = [float(np.linalg.norm(v)) for v in full.T]
    else:  # no orientation: show as stored (the first axis runs across, towards the left; the second down)
        spacings = list(header.get("spacings", [])) + [1.0] * n
        zooms = [float(spacings[i]) if np.isfinite(spacings[i]) and spacings[i] > 0 else 1.0 for i in spatial]
        zooms += [1.0] * (3 - len(zooms))
        affine[:3, :3] = np.diag([-zooms[0], -zooms[1], zooms[2]])
    if np.linalg.matrix_rank(affine[:3, :3]) < 3:  # as stored, as without directions
        zooms = [z if np.isfinite(z) and z > 0 else 1.0 for z in zooms]
        affine[:3, :3] = np.diag([-zooms[0], -zooms[1], zooms[2]])
    return arr, tuple(int(s) for s in arr.shape), affine, zooms


register(SourcePlugin("nrrd", accepts, open_nrrd, priority=17))
