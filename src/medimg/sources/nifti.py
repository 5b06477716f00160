"""NIfTI-1/2 volumes (.nii, .nii.gz: MRI, CT and PET research data) as 8-bit axial slices.

The middle axial slice (of the middle volume of a 4D series, of the b0 of a diffusion series with a .bval file
beside it; 5-7D: the volumes after the first three axes as one series), or every axial slice with `all_frames`
(a 2D series of thick sagittal or coronal slices: in its own plane, as its DICOM files show it), shown the
radiological way: anterior at the top, the patient's right on the image's left, square
pixels in millimetres. Which array axis is axial comes from the affine, so a volume stored in any
axis order looks the same. Grey levels: the header's cal_min/cal_max when set, else 8-bit voxels as
stored (as a PNG of them is shown) unless all are dim (a label map), a slice in Hounsfield units (a CT: air
near -1000) in a wide CT window (W 1500, L -350), and other wider ones between the slice's 0.5–99.5
percentiles. An Analyze file with a negative x voxel size is stored left to right (SPM's mark). A .nii.gz
inflates in memory up to `max_input_bytes` (a series too big for that: up to the volume shown); the pixel cap is checked from the header before any voxel is
read, and a file shorter than its header says is refused. A label map (intent label or neuroname) is a
note, as DICOM segmentations are. Only technical header fields are kept (no description).
A NIfTI or Analyze 7.5 `.hdr` is read with the `.img` (or `.img.gz`) of the same name beside it
(`files.read_sibling`), in the case of its extension first (BRAIN.HDR: BRAIN.IMG), then in the other.
"""

from __future__ import annotations

import io
import math
import re
import struct
import zlib
from pathlib import Path
from typing import Iterator

import nibabel as nib
import numpy as np
from nibabel.fileholders import FileHolder
from numpy.lib import recfunctions
from PIL import Image

from ..levels import CT_WINDOW, looks_like_hu
from .base import Blob, Context, ImageItem, Item, ItemError, Limits, SourcePlugin
from .dicom import strips, to_uint8
from .inflate import GZIP as _GZIP
from .inflate import Refused, gunzip
from .quiet import WhileReading, hide_warnings
from .registry import register

# nibabel reports the header fields it repairs on its own stderr handler, and warns of odd extensions and of
# numbers that overflow in a damaged affine; a damaged file is reported by its item's error instead, never on the
# console; only while medimg reads (quiet.py): a program's own use of nibabel still gets them.
nib.imageglobals.logger.addFilter(WhileReading())
hide_warnings(module=r"nibabel(\.|$)")

MAX_STRETCH = 8  # a slice is stretched at most this much along one axis to make pixels square (else the other shrinks)
DIM_UINT8 = 64  # 8-bit slices whose brightest voxel is under this are stretched: labels, masks
SAMPLE = 1 << 22  # pixels a slice's percentiles are taken from: all of a slice up to 2048 × 2048


# Analyze 7.5 datatype codes → bits per voxel
_ANALYZE_BITS = {2: 8, 4: 16, 8: 32, 16: 32, 32: 64, 64: 64, 128: 24, 256: 8, 512: 16, 768: 32}


def _kind(first: bytes) -> str | None:
    """'nifti1', 'nifti2', 'pair1'/'pair2' (a NIfTI .hdr whose voxels are in a separate .img) or 'analyze'
    (an Analyze 7.5 .hdr, which has no magic: told by its size, dims and a datatype its bitpix matches)."""
    if len(first) < 348:
        return None
    for order in "<>":
        size = struct.unpack(order + "i", first[:4])[0]
        if size == 348 and first[344:348] in (b"n+1\0", b"ni1\0"):
            return "nifti1" if first[345:346] == b"+" else "pair1"
        if size == 540 and len(first) >= 8 and first[4:8] in (b"n+2\0", b"ni2\0"):
            return "nifti2" if first[5:6] == b"+" else "pair2"
        if size == 348:
            dims = struct.unpack(order + "8h", first[40:56])
            datatype, bitpix = struct.unpack(order + "2h", first[70:74])
            if 2 <= dims[0] <= 7 and all(d >= 1 for d in dims[1:dims[0] + 1]) and \
                    _ANALYZE_BITS.get(datatype) == bitpix:
                return "analyze"
    return None


def first_bytes(data: bytes, n: int = 544) -> bytes:
    if data[:2] == _GZIP:
        try:
            return gunzip(data[:65536], n)[:n]
        except (zlib.error, Refused):
            return b""
    return data[:n]


def unpack(data: bytes, cap: int, what: str) -> bytes:
    """The bytes themselves, or their content when gzip-compressed; ValueError when corrupt or inflating
    past `cap`."""
    if data[:2] != _GZIP:
        return data
    try:
        out = gunzip(data, cap)
    except zlib.error as exc:
        raise ValueError(f"{what} is not readable gzip data ({exc})") from None
    except Refused as exc:
        raise ValueError(f"{what} {exc}; not read") from None
    if len(out) > cap:
        raise ValueError(f"{what} inflates past the max_input_bytes cap of {cap:,} bytes; not read")
    return out


def _offset_problem(data: bytes, kind: str | None) -> str | None:
    """NIfTI-1 stores vox_offset as a float: NaN or infinity there makes nibabel fail with a cryptic message."""
    if kind not in ("nifti1", "pair1"):
        return None
    order = "<" if struct.unpack("<i", data[:4])[0] == 348 else ">"
    offset = struct.unpack_from(order + "f", data, 108)[0]
    if not np.isfinite(offset) or offset < 0:
        return f"its voxel data offset (vox_offset) is {offset}, not a byte position"
    return None


def _usable_intercept(data: bytes, kind: str | None) -> bytes:
    """The header with a NaN or infinite scl_inter beside a usable scl_slope read as 0, as nifti_clib (FSL, AFNI, ITK)
    reads it; nibabel refuses the whole file ("Valid slope but invalid intercept"). Such a file is copied once."""
    if kind not in ("nifti1", "pair1", "nifti2", "pair2"):
        return data
    order = "<" if struct.unpack("<i", data[:4])[0] in (348, 540) else ">"
    at, size = (176, "d") if kind in ("nifti2", "pair2") else (112, "f")
    slope, inter = struct.unpack_from(order + size * 2, data, at)
    if not (np.isfinite(slope) and slope != 0) or np.isfinite(inter):
        return data
    fixed = bytearray(data)
    struct.pack_into(order + size, fixed, at + struct.calcsize(size), 0.0)
    return bytes(fixed)


MAX_EXTENSIONS = 1000  # header extensions (DICOM, AFNI, JSON sidecars: real files carry a few)


def _extensions_problem(data: bytes, kind: str | None) -> str | None:
    """Header extensions past MAX_EXTENSIONS: nibabel makes an object of each while reading the header (12 million
    8-byte ones, a 374 KB .nii.gz, took 40 s and 2 GB), so they are counted here first."""
    if kind not in ("nifti1", "pair1", "nifti2", "pair2"):
        return None
    order = "<" if struct.unpack("<i", data[:4])[0] in (348, 540) else ">"
    two = kind in ("nifti2", "pair2")
    at = 544 if two else 352
    if data[at - 4:at - 3] in (b"", b"\0"):  # no extensions
        return None
    end = len(data)
    if kind in ("nifti1", "nifti2"):  # they end where the voxels start
        offset = struct.unpack_from(order + ("q" if two else "f"), data, 168 if two else 108)[0]
        end = min(end, int(offset)) if np.isfinite(offset) else end
    n = 0
    while at + 8 <= end:
        size = struct.unpack_from(order + "i", data, at)[0]
        if size < 16:  # not an extension: nibabel says what is wrong
            break
        n += 1
        if n > MAX_EXTENSIONS:
            return f"more than {MAX_EXTENSIONS:,} header extensions"
        at += size
    return None


def accepts(head: bytes, blob: Blob) -> bool:
    if head[:2] != _GZIP and len(head) < 348:
        return False
    return _kind(first_bytes(blob.data)) is not None


def open_nifti(blob: Blob, ctx: Context) -> Iterator[Item]:
    origin, limits = blob.origin, ctx.limits
    try:
        head = _series_head(blob.data, limits.max_input_bytes)  # a series too big to inflate whole: its header
        data = head if head is not None else unpack(blob.data, limits.max_input_bytes, "NIfTI volume")
    except ValueError as exc:
        yield ItemError(origin, "", str(exc))
        return
    kind = _kind(data[:544])
    problem = _offset_problem(data, kind) or _extensions_problem(data, kind)
    if problem:
        yield ItemError(origin, "", f"not a readable NIfTI file: {problem}")
        return
    data = _usable_intercept(data, kind)
    try:
        if kind in PAIRS:  # a .hdr: the voxels are in the .img beside it
            img = _pair(kind, data, _image_data(image_file_names(blob.name or origin), blob), limits.max_input_bytes)
        else:
            img = (nib.Nifti2Image if kind == "nifti2" else nib.Nifti1Image).from_bytes(data)
        shape = tuple(int(s) for s in img.shape)
    except Exception as exc:
        what = "Analyze" if kind == "analyze" else "NIfTI"
        yield ItemError(origin, "", f"not a readable {what} file: {exc}")
        return
    hdr = img.header
    intent = int(hdr["intent_code"]) if "intent_code" in hdr else 0  # Analyze 7.5 has none
    if 3000 <= intent < 3100:  # CIFTI matrices, surfaces
        yield ItemError(origin, "", f"NIfTI holds a matrix or surface data (intent code {intent}, dims {shape}), "
                                    "not an image volume", skipped=True)
        return
    if len(shape) > 4 and (intent in PER_VOXEL or shape[3] == 1):  # the 5th axis holds a vector's components
        yield ItemError(origin, "", f"NIfTI holds a vector per voxel (a displacement or direction field; intent "
                                    f"code {intent}, dims {shape}), not an image volume", skipped=True)
        return
    if len(shape) < 2 or min(shape) < 1:
        yield ItemError(origin, "", f"NIfTI volume has no image plane (dims {shape})")
        return
    if intent in LABEL_INTENTS:  # as DICOM segmentations: masks drawn on an image, not an image
        yield ItemError(origin, "", f"NIfTI holds a label map (intent code {intent}, dims {shape}), not an image "
                                    "volume", skipped=True)
        return
    if kind not in PAIRS and head is None:  # a pair's .img was checked by _pair, a big series' volume below
        need = int(img.dataobj.offset) + math.prod(map(int, shape)) * hdr.get_data_dtype().itemsize
        if len(data) < need:
            yield ItemError(origin, "", f"NIfTI volume is truncated: {len(data):,} bytes, its header needs {need:,}")
            return
    zooms = list(hdr.get_zooms()[:3])
    dtype = hdr.get_data_dtype()
    kind_name = ("RGBA32" if len(dtype.names) > 3 else "RGB24") if dtype.names else str(dtype)
    meta = {"dims": list(shape), "datatype": kind_name}
    voxels = img.dataobj
    if len(shape) > 4:  # 5-7D (echoes, …): the volumes after the first three axes counted as one series, as stored
        shape = shape[:3] + (math.prod(map(int, shape[3:])),)
        voxels = voxels.reshape(shape)
    volume = None
    if len(shape) == 4 and shape[3] > 1:
        volume, b = b0_volume(_bvalues(blob, shape[3]))
        if volume is not None:
            meta["b_value"] = b
    if head is not None:  # only the volume shown is inflated and kept
        volume = shape[3] // 2 if volume is None else volume
        try:
            voxels = _one_volume(blob.data, img, shape, volume, limits)
        except (ValueError, zlib.error, Refused) as exc:
            said = str(exc) if isinstance(exc, ValueError) else f"NIfTI volume is not readable gzip data ({exc})"
            yield ItemError(origin, "", said)
            return
    cal = (float(hdr["cal_min"]), float(hdr["cal_max"])) if "cal_min" in hdr else (0.0, 0.0)
    affine = img.affine
    if kind == "analyze" and _x_size(data) < 0:  # SPM's mark of x stored left to right (nibabel drops the sign)
        affine = np.diag([-1.0, 1.0, 1.0, 1.0]) @ affine
    yield from axial_slices(origin, voxels, shape, affine, zooms, cal, meta, "NIfTI", limits, volume)


def _series_head(data: bytes, cap: int) -> bytes | None:
    """The header and extensions of a gzipped NIfTI series (4-D and up) whose voxels inflate past `cap`, of which
    only the volume shown is then read (`_one_volume`); None for any other file, read whole."""
    if data[:2] != _GZIP:
        return None
    first = first_bytes(data)
    kind = _kind(first)
    if kind not in ("nifti1", "nifti2"):
        return None
    try:
        size = 540 if kind == "nifti2" else 348
        hdr = (nib.Nifti2Header if kind == "nifti2" else nib.Nifti1Header).from_fileobj(io.BytesIO(first[:size]))
        shape, offset = hdr.get_data_shape(), int(hdr.get_data_offset())
        voxels = math.prod(map(int, shape)) * hdr.get_data_dtype().itemsize
    except Exception:  # nibabel says what is wrong when it reads the file whole
        return None
    if len(shape) < 4 or math.prod(map(int, shape[3:])) < 2 or offset + voxels <= cap or not size <= offset <= cap:
        return None
    return gunzip(data, offset)[:offset]


class _OneVolume:
    """The voxels of a series of which only volume `t` was read, indexed as (x, y, z, t)."""

    def __init__(self, proxy, t: int):
        self.proxy, self.t = proxy, t

    def __getitem__(self, index: tuple):
        if index[3] != self.t:
            raise IndexError(f"only volume {self.t + 1} was read")
        return self.proxy[tuple(index[:3])]


def _one_volume(data: bytes, img, shape: tuple[int, ...], t: int, limits: Limits) -> _OneVolume:
    """Volume `t` of a gzipped series too big to inflate whole: the bytes before it inflated and dropped (at most
    `zip_max_bytes` in all, as from an archive), its own kept (at most `max_input_bytes`)."""
    from nibabel.arrayproxy import ArrayProxy

    from .base import Budget
    from .inflate import Inflated

    hdr = img.header
    dtype = hdr.get_data_dtype()
    size = math.prod(map(int, shape[:3])) * dtype.itemsize
    if size > limits.max_input_bytes:
        raise ValueError(f"NIfTI series: one volume is {size:,} bytes, over the max_input_bytes cap of {limits.max_input_bytes:,}; "
                         "not read")
    start = int(img.dataobj.offset) + t * size
    if start + size > limits.zip_max_bytes:
        raise ValueError(f"NIfTI series: volume {t + 1} of {shape[3]} ends {start + size:,} bytes in, past the zip_max_bytes cap "
                         f"of {limits.zip_max_bytes:,} on inflating; not read")
    stream = Inflated(data, Budget(start + size), cut_ok=True)
    while (at := stream.out) < start and stream.read(min(start - at, 1 << 22)):  # dropped a piece at a time
        pass
    raw = stream.read(size) if stream.out == start else b""
    if len(raw) < size:
        raise ValueError(f"NIfTI volume is truncated: volume {t + 1} of {shape[3]} needs {start + size:,} bytes "
                         f"inflated, the data ends sooner")
    slope, inter = hdr.get_slope_inter()
    spec = (shape[:3], dtype, 0, 1.0 if slope is None else slope, 0.0 if inter is None else inter)
    return _OneVolume(ArrayProxy(io.BytesIO(raw), spec), t)


def _x_size(header: bytes) -> float:
    """An Analyze 7.5 header's pixdim[1] as stored, sign and all."""
    order = "<" if struct.unpack("<i", header[:4])[0] == 348 else ">"
    return struct.unpack_from(order + "f", header, 80)[0]


PER_VOXEL = {1004, 1005, 1006, 1007, 1008, 1009, 1010}  # (sym)matrix, dispvect, vector, pointset, triangle, quaternion


def _bvalues(blob: Blob, volumes: int) -> list[float] | None:
    """The b-values of a diffusion series from the file beside it (dcm2niix and BIDS: the same name with .bval; FSL:
    `bvals`), when it lists one number per volume; None otherwise."""
    from .files import read_sibling

    name = Path(blob.name or blob.origin).name
    stem = re.sub(r"(?i)\.(nii(\.gz)?|hdr)$", "", name)
    for candidate in (stem + ".bval", "bvals"):
        try:
            text = read_sibling(candidate, blob)
        except (ValueError, OSError):
            continue
        try:
            values = [float(v) for v in text[:1 << 20].decode("ascii").split()]
        except ValueError:  # UnicodeDecodeError is one too
            continue
        if len(values) == volumes and all(np.isfinite(values)):
            return values
    return None


def b0_volume(bvalues: list[float] | None) -> tuple[int | None, float | None]:
    """The first volume of the lowest b-value (the b0 that viewers open a diffusion series at), and that b-value;
    (None, None) unless the b-values differ."""
    if not bvalues or min(bvalues) == max(bvalues):
        return None, None
    low = min(bvalues)
    return bvalues.index(low), round(low, 3)


LABEL_INTENTS = {1002, 1003}  # NIFTI_INTENT_LABEL, NIFTI_INTENT_NEURONAME: segmentations, atlas parcels
PAIRS = {"pair1": nib.Nifti1Pair, "pair2": nib.Nifti2Pair, "analyze": nib.AnalyzeImage}


def image_file_named(head: bytes, name: str) -> tuple[str, ...]:
    """The names a NIfTI/Analyze .hdr called `name` looks its voxels up by (`image_file_names`); empty for a
    single-file NIfTI or other content."""
    return image_file_names(name) if _kind(first_bytes(head)) in PAIRS else ()


def image_file_names(header_name: str) -> tuple[str, ...]:
    """The files that may hold a .hdr's voxels, in the order they are looked for: the same name with .img, then
    .img.gz, in the case of the header's extension (BRAIN.HDR: BRAIN.IMG, as nibabel and nifti_clib look), then
    in the other case (a pair copied from Windows or macOS, where brain.hdr opens brain.IMG)."""
    name = Path(header_name).name
    stem = name[:-len(".hdr")] if name.lower().endswith(".hdr") else Path(name).stem
    lower = (stem + ".img", stem + ".img.gz")
    upper = (stem + ".IMG", stem + ".IMG.GZ")
    return upper + lower if name.endswith(".HDR") else lower + upper


def _image_data(names: tuple[str, ...], blob: Blob) -> bytes:
    """The voxels beside a .hdr: the first of `names` there (its .img, or its gzip-compressed .img.gz when only
    that is there); the first one's error when none is."""
    from .files import read_sibling

    first = None
    for name in names:
        try:
            return read_sibling(name, blob)
        except ValueError as exc:
            first = first or exc
    raise first


def _pair(kind: str, header: bytes, image: bytes, cap: int):
    """A header/image pair as one nibabel image; the .img may be gzip-compressed."""
    image = unpack(image, cap, "the .img file")
    maps = {"header": FileHolder(fileobj=io.BytesIO(header)), "image": FileHolder(fileobj=io.BytesIO(image))}
    img = PAIRS[kind].from_file_map(maps)
    hdr = img.header
    need = int(hdr.get_data_offset()) + math.prod(map(int, img.shape)) * hdr.get_data_dtype().itemsize
    if len(image) < need:
        raise ValueError(f"the .img is truncated: {len(image):,} bytes, its header needs {need:,}")
    return img


def axial_slices(origin: str, voxels, shape: tuple[int, ...], affine: np.ndarray, zooms: list, cal: tuple[float, float],
                 meta: dict, fmt: str, limits: Limits, volume: int | None = None) -> Iterator[Item]:
    """The middle axial slice of a 2-4D volume (of the middle volume of 4D, or of `volume`), or every axial slice with
    `all_frames`; a single slice, or a 2D series of thick slices (`_thick_axis`), in its own plane.

    `voxels` is indexed like a (x, y, z[, t]) array (nibabel's dataobj reads only the slice asked for),
    `affine` maps voxel indices to RAS+ millimetres, `zooms` are the voxel sizes along the first three axes.
    """
    spatial = shape[:3] + (1,) * (3 - min(len(shape), 3))
    zooms = [float(z) if np.isfinite(z) and z > 0 else 1.0 for z in list(zooms[:3]) + [1.0] * 3][:3]
    flat = [i for i in range(3) if spatial[i] == 1]  # a single slice is shown in its own plane
    through = flat[-1] if len(flat) == 1 else None if flat else _thick_axis(zooms)  # so is a 2D series
    axial, rows_axis, cols_axis, flip_rows, flip_cols = _layout(affine, through)
    if spatial[rows_axis] * spatial[cols_axis] > limits.max_pixels:
        yield ItemError(origin, "", f"{fmt} slices are {spatial[cols_axis]}×{spatial[rows_axis]} voxels, over the "
                                    f"max_pixels cap of {limits.max_pixels:,}; not read")
        return
    n, volumes = spatial[axial], (shape[3] if len(shape) == 4 else 1)
    t = volumes // 2 if volume is None else volume
    try:
        codes = nib.aff2axcodes(affine)
        orientation = "".join(codes) if None not in codes else "unknown (invalid affine)"  # an axis in no direction
    except Exception:  # NaN or degenerate affine: _layout shows the stored order
        orientation = "unknown (invalid affine)"
    meta = {"dims": list(shape), "voxel_mm": [round(z, 4) for z in zooms],
            "orientation": orientation, **meta, "plane": _plane(affine, axial)}
    for k in (range(n) if limits.all_frames else [n // 2]):  # callers cap the count
        locator = f"slice {k + 1} of {n}" if n > 1 else ""
        if volumes > 1:
            locator = f"{locator}, volume {t + 1} of {volumes}".lstrip(", ")
        try:
            index: list = [slice(None)] * 3
            index[axial] = k
            if len(shape) == 4:
                index.append(t)
            plane = np.asarray(voxels[tuple(index[:len(shape)])])
            if rows_axis > cols_axis:  # what is left is in array order: make it rows × columns
                plane = np.swapaxes(plane, 0, 1)
            plane = plane[::-1 if flip_rows else 1, ::-1 if flip_cols else 1]
            image = _to_image(plane, cal)
            image = _square_pixels(image, zooms[rows_axis], zooms[cols_axis], limits.max_pixels)
        except Exception as exc:
            yield ItemError(origin, locator, f"could not read {fmt} voxels: {exc}")
            return
        yield ImageItem(origin, locator, image, fmt, dict(meta))


THICK = 3.0  # slices at least this many times as thick as the voxels across them: a 2D series, shown in its plane


def _thick_axis(zooms: list[float]) -> int | None:
    """The axis of a 2D series' slices: the one whose voxels are at least THICK times as long as along either other
    axis (a sagittal series of 4 mm slices, 0.5 mm in plane), which is then shown in the plane it was acquired in,
    as its DICOM files show it; None for a 3D volume (near-isotropic voxels), shown axially."""
    axis = int(np.argmax(zooms))
    others = [z for i, z in enumerate(zooms) if i != axis]
    return axis if zooms[axis] >= THICK * max(others) else None


def _layout(affine: np.ndarray, through: int | None = None) -> tuple[int, int, int, bool, bool]:
    """(slice axis, axis shown as rows, axis shown as columns, flip rows, flip columns) from the affine.

    The slice axis is the one closest to superior-inferior, or `through` when given (the one axis of a
    single slice, the slice axis of a 2D series). Rows run superior (else anterior) at the top; columns put the patient's right (else
    anterior) on the left, as radiology viewers show axial, coronal and sagittal planes.
    """
    try:
        ornt = nib.io_orientation(affine)
        world = [int(w) if np.isfinite(w) else -1 for w in ornt[:, 0]]
        if sorted(world) != [0, 1, 2]:
            raise ValueError("degenerate affine")
        axial = world.index(2) if through is None else through
        rows, cols = sorted((i for i in range(3) if i != axial), key=lambda i: -world[i])
        # flip when the index runs towards the side shown first (top: S or A; left: R or A)
        return axial, rows, cols, bool(ornt[rows, 1] > 0), bool(ornt[cols, 1] > 0)
    except Exception:  # no usable orientation: the stored order
        if through is not None and through != 2:
            rows, cols = [i for i in (1, 0, 2) if i != through][:2]
            return through, rows, cols, False, False
        return 2, 1, 0, True, False


def _plane(affine: np.ndarray, axis: int) -> str:
    """The plane of the slices through array axis `axis`: axial, coronal or sagittal by the world axis it runs
    closest to (a single slice is shown in its own plane); axial when the affine says none."""
    try:
        world = nib.io_orientation(affine)[axis, 0]
    except Exception:
        return "axial"
    return {0: "sagittal", 1: "coronal"}.get(int(world), "axial") if np.isfinite(world) else "axial"


def rgb_voxels(channels_last: np.ndarray) -> np.ndarray:
    """Voxels with a last axis of 3-4 colour channels as RGB records (as NIfTI stores RGB24), 0-255; a strip
    of the first axis at a time."""
    rgb = channels_last[..., :3]
    unit = rgb.dtype.kind == "f" and np.nanmax(rgb) <= 1.0
    out = np.empty(rgb.shape[:-1], dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    for rows in strips(rgb):
        part = rgb[rows] * 255.0 if unit else rgb[rows]
        part = np.clip(np.nan_to_num(part), 0, 255).astype(np.uint8)
        out[rows] = recfunctions.unstructured_to_structured(part, names=["R", "G", "B"])
    return out


def _to_image(plane: np.ndarray, cal: tuple[float, float]) -> Image.Image:
    """A slice as 8-bit L (RGB for colour voxels), converted a strip of rows at a time: a slice at the pixel
    cap never has a float copy."""
    if plane.dtype.names:  # RGB24 / RGBA32 voxels
        image = Image.new("RGB", (plane.shape[1], plane.shape[0]))
        for rows in strips(plane):
            part = plane[rows]
            rgb = np.stack([part[name] for name in plane.dtype.names[:3]], axis=-1)
            image.paste(Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB"), (0, rows.start))
        return image
    values = np.abs(plane) if np.iscomplexobj(plane) else plane
    lo, hi = cal
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):  # 8-bit voxels are grey levels already, as in a PNG,
        # unless all are dim (a mask or label map: 0, 1, 2…), which viewers stretch as they do wider voxels
        grey = values.dtype == np.uint8 and values.size and int(values.max()) >= DIM_UINT8
        lo, hi = (0.0, 255.0) if grey else _default_levels(values)
    out = np.empty(values.shape, np.uint8)
    for rows in strips(values):
        part = values[rows].astype(np.float64)
        out[rows] = to_uint8(np.nan_to_num(part, nan=lo, posinf=hi, neginf=lo), lo, hi)
    return Image.fromarray(out, "L")


def _default_levels(values: np.ndarray) -> tuple[float, float]:
    """A CT's window (levels.CT_WINDOW) when the slice looks like Hounsfield units, else the 0.5 and 99.5
    percentiles of the finite values: of every pixel of a slice up to SAMPLE pixels, of an even grid of about
    SAMPLE pixels over a bigger one (as good, and no float copy of the whole slice)."""
    step = max(1, int(np.ceil(np.sqrt(values.size / SAMPLE))))
    sample = values[::step, ::step].astype(np.float64) if values.ndim == 2 else values.astype(np.float64)
    ok = np.isfinite(sample)
    finite = sample if ok.all() else sample[ok]
    if not finite.size:
        return 0.0, 1.0
    if looks_like_hu(finite):
        return CT_WINDOW
    lo, hi = np.percentile(finite, (0.5, 99.5), overwrite_input=True)
    return float(lo), float(hi)


def _square_pixels(image: Image.Image, row_mm: float, col_mm: float, max_pixels: int) -> Image.Image:
    """Stretch the coarser axis so that a pixel is as tall as it is wide in millimetres; past MAX_STRETCH, the
    finer axis is shrunk by the rest (a sagittal 0.4 × 5 mm series seen axially keeps its shape)."""
    if abs(row_mm - col_mm) <= 0.01 * max(row_mm, col_mm):
        return image
    w, h = image.size
    ratio = max(row_mm, col_mm) / min(row_mm, col_mm)
    grow, shrink = min(ratio, MAX_STRETCH), max(ratio / MAX_STRETCH, 1.0)
    if row_mm > col_mm:
        w, h = max(1, round(w / shrink)), round(h * grow)
    else:
        w, h = round(w * grow), max(1, round(h / shrink))
    if w * h > max_pixels:
        return image
    return image.resize((w, h), Image.BILINEAR)


register(SourcePlugin("nifti", accepts, open_nifti, priority=15))
