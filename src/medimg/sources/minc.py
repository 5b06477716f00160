"""MINC volumes (.mnc: MNI/BrainWeb brain MRI; MINC1 is NetCDF, MINC2 is HDF5) as 8-bit axial slices.

Read with nibabel (MINC2 through h5py) and shown like NIfTI (`nifti.axial_slices`): the middle axial
slice, or every one with `all_frames`, orientation from the dimension cosines, per-slice scaling
applied by nibabel. Only a NetCDF file that names MINC's space dimensions, or an HDF5 file with a
`minc-2.0` group, is taken: other NetCDF/HDF5 files (climate data, Keras weights) are not MINC.
nibabel reads MINC by file name, so bytes (uploads, zip members) go through a temporary file;
a file on disk is read in place, only the slices shown; its voxels' bytes (as stored, uncompressed) are checked
against `max_input_bytes` first, as every volume's are.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from ..scratch import work_folder
from .base import Blob, Context, Item, ItemError, SourcePlugin
from .files import size_problem
from .nifti import axial_slices
from .quiet import hide_warnings
from .registry import register

_HDF5 = b"\x89HDF\r\n\x1a\n"
# nibabel warns of odd headers it works around; the item says what is wrong when it matters.
hide_warnings(module=r"nibabel\.minc")


def kind(head: bytes) -> str | None:
    """'MINC1', 'MINC2' or None from a file's first bytes."""
    if head[:3] == b"CDF" and head[3:4] in (b"\x01", b"\x02") and any(
            s in head for s in (b"xspace", b"yspace", b"zspace")):
        return "MINC1"
    if head[:8] == _HDF5 and b"minc-2.0" in head:
        return "MINC2"
    return None


def accepts(head: bytes, blob: Blob) -> bool:
    return kind(head) is not None


def open_minc_path(path: str, ctx: Context) -> Iterator[Item]:
    limits = ctx.limits
    problem = size_problem(path, limits.max_input_bytes, "max_input_bytes", "MINC file")
    if problem:
        yield problem
        return
    try:
        with open(path, "rb") as f:
            version = kind(f.read(4096))
            problem = _netcdf_problem(f) if version == "MINC1" else None
    except OSError as exc:
        yield ItemError(path, "", f"could not read file: {exc.strerror or exc}")
        return
    if problem:
        yield ItemError(path, "", problem)
        return
    try:
        import nibabel as nib

        cls = nib.Minc2Image if version == "MINC2" else nib.Minc1Image
        img = cls.from_filename(path)
        shape = tuple(int(s) for s in img.shape)
        affine, zooms = np.asarray(img.affine, float), list(img.header.get_zooms()[:3])
    except ImportError as exc:
        yield ItemError(path, "", f"{version} files need {exc.name}, which is not installed")
        return
    except MemoryError:
        yield ItemError(path, "", f"not a readable {version} file: the file is damaged (it claims more memory than is "
                                  "available)")
        return
    except Exception as exc:
        yield ItemError(path, "", f"not a readable {version} file: {type(exc).__name__}: {exc}")
        return
    need = math.prod(map(int, shape)) * np.dtype(img.get_data_dtype()).itemsize
    if need > limits.max_input_bytes:  # HDF5 gives unwritten chunks as zeros: a 200 KB file can claim 10,000³ voxels
        yield ItemError(path, "", f"MINC volume of {'×'.join(map(str, shape))} voxels is {need:,} bytes, over the "
                                  f"max_input_bytes cap of {limits.max_input_bytes:,}; not read")
        return
    voxels = img.dataobj
    if len(shape) == 4:  # MINC keeps time first; nibabel's affine covers the three space axes after it, and
        # gives their voxel sizes (its header's zooms for a 4-D file are not the space axes' after the time one)
        voxels, shape = _TimeLast(voxels), shape[1:] + shape[:1]
        zooms = [float(z) for z in np.linalg.norm(affine[:3, :3], axis=0)]
    meta = {"datatype": str(img.get_data_dtype()), "version": version}
    nan = float("nan")
    yield from axial_slices(path, voxels, shape, affine, zooms, (nan, nan), meta, "MINC", limits)


MAX_NETCDF_ITEMS = 100_000  # dimensions, variables, their dimension ids, attributes: real MINC1 files have hundreds
_NC_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 8}  # byte, char, short, int, float, double


class _Stop(Exception):
    pass


def _netcdf_problem(f) -> str | None:
    """Why nibabel must not read a NetCDF classic header, None if it may: more dimensions, variables, dimension
    ids and attributes than MAX_NETCDF_ITEMS (nibabel makes Python objects of each: 8.5 million attributes,
    204 MB: 32 s, 1.5 GB), or a name or value longer than the rest of the file (nibabel reads it at once: a
    MemoryError). A cut or odd header ends the walk; nibabel then says what is wrong."""
    count = 0
    end = f.seek(0, 2)

    def number() -> int:
        raw = f.read(4)
        if len(raw) < 4:
            raise _Stop
        return int.from_bytes(raw, "big", signed=True)

    def counted(n: int) -> int:
        nonlocal count
        count += max(n, 0)
        if count > MAX_NETCDF_ITEMS:
            raise _Stop(f"MINC1 file with more than {MAX_NETCDF_ITEMS:,} NetCDF dimensions, variables and "
                        "attributes; not opened")
        return max(n, 0)

    def skip(n: int) -> None:  # values are padded to 4 bytes
        if n > end - f.tell():
            raise _Stop(f"MINC1 file is damaged: its header claims a value of {n:,} bytes, more than the "
                        "file holds; not opened")
        f.seek(max(n, 0) + -max(n, 0) % 4, 1)

    def attributes() -> None:
        number()  # the list's tag
        for _ in range(counted(number())):
            skip(number())  # name
            size = _NC_SIZES.get(number())
            if size is None:
                raise _Stop
            skip(number() * size)

    try:
        f.seek(0)
        offset = 8 if f.read(4)[3:] == b"\x02" else 4
        number(), number()  # record count, the dimension list's tag
        for _ in range(counted(number())):  # dimensions: name, length
            skip(number())
            number()
        attributes()  # global
        number()  # the variable list's tag
        for _ in range(counted(number())):
            skip(number())
            f.seek(4 * counted(number()), 1)  # dimension ids
            attributes()
            f.seek(8 + offset, 1)  # type, size, data offset
    except _Stop as stop:
        return stop.args[0] if stop.args else None
    return None


class _TimeLast:
    """A (t, a, b, c) voxel proxy indexed as (a, b, c, t), reading only what is asked for."""

    def __init__(self, proxy):
        self.proxy = proxy

    def __getitem__(self, index: tuple):
        return self.proxy[(index[3],) + tuple(index[:3])]


def open_minc(blob: Blob, ctx: Context) -> Iterator[Item]:
    """Bytes (an upload, a zip member): nibabel reads MINC by name, so through a temporary file."""
    with work_folder() as tmp:
        path = os.path.join(tmp, Path(blob.name or "volume").stem[:50] + ".mnc")
        with open(path, "wb") as f:
            f.write(blob.data)
        for item in open_minc_path(path, ctx):
            item.origin = blob.origin
            yield item


register(SourcePlugin("minc", accepts, open_minc, priority=19, open_path=open_minc_path))
