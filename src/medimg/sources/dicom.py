"""DICOM files: pixel data to 8-bit images, with only technical tags kept (never patient identifiers)."""

from __future__ import annotations

import io
import re
import struct
import warnings
import zlib
from itertools import islice
from typing import Iterator

import numpy as np
import pydicom
from PIL import Image
from pydicom.pixels import (apply_color_lut, apply_modality_lut, apply_voi_lut, as_pixel_options, get_decoder,
                            pixel_array)
from pydicom.encaps import generate_fragments, generate_frames, get_frame
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (UID, AllTransferSyntaxes, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian,
                         ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000TransferSyntaxes, JPEGBaseline8Bit,
                         JPEGLSTransferSyntaxes, JPEGTransferSyntaxes, MPEGTransferSyntaxes)

from ..levels import CT_WINDOW, looks_like_hu
from . import dicom_segments as segments
from .base import Blob, Context, ImageItem, Item, ItemError, Limits, SourcePlugin, recoverable
from .registry import register

# Invalid values would otherwise be echoed in warnings and logs, and values may identify a patient.
# Module-level settings, because catch_warnings is not thread-safe.
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"  # a DICOMDIR
WHOLE_SLIDE = "1.2.840.10008.5.1.4.1.1.77.1.6"  # VL Whole Slide Microscopy Image Storage
# JPEG XL transfer syntaxes (lossless, JPEG recompression, lossy; DICOM 2024), decoded through imagecodecs
JPEG_XL = {"1.2.840.10008.1.2.4.110", "1.2.840.10008.1.2.4.111", "1.2.840.10008.1.2.4.112"}
# MPEG transfer syntaxes hold one video stream; the FFmpeg demuxers that may read it, in order.
VIDEO_FORMATS = {uid: (["mpegvideo", "mpeg", "mpegts"] if ".4.100" in uid or ".4.101" in uid else
                       ["hevc", "mpegts"] if uid.endswith((".107", ".108")) else ["h264", "mpegts"])
                 for uid in MPEGTransferSyntaxes}
# Objects whose pixel data is derived from images rather than an image of the patient, by SOP class or Modality.
DERIVED = {
    "1.2.840.10008.5.1.4.1.1.66.4": "segmentation masks", "1.2.840.10008.5.1.4.1.1.66.7": "label map masks",
    "SEG": "segmentation masks", "1.2.840.10008.5.1.4.1.1.481.2": "a radiotherapy dose grid",
    "RTDOSE": "a radiotherapy dose grid",
}
# Encapsulated syntaxes whose frames declare their own size, which a decoder allocates whatever Rows/Columns say
FRAME_HEADERS = {**{uid: "JPEG" for uid in JPEGTransferSyntaxes + JPEGLSTransferSyntaxes},
                 **{uid: "JPEG 2000" for uid in JPEG2000TransferSyntaxes}, **{uid: "JPEG XL" for uid in JPEG_XL}}
# Start-of-frame markers of JPEG (all processes) and JPEG-LS (SOF55): height and width follow
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
SLIDE_SAMPLE = 32  # frames of a slide looked at to find tissue
MAX_FIELD_TILES = 8  # tile widths across the field pasted together around that frame
_ENCAPSULATED = {uid for uid in AllTransferSyntaxes if UID(uid).is_encapsulated}
_NATIVE = set(AllTransferSyntaxes) - _ENCAPSULATED
# YBR kinds defined for one family of transfer syntaxes only, whose decoders convert them (PS3.3 C.7.6.3.1.2); in
# any other syntax pydicom returns their samples unconverted, and what they mean is not defined
_YBR_ONLY_IN = {"YBR_ICT": ("JPEG 2000", set(JPEG2000TransferSyntaxes)),
                "YBR_RCT": ("JPEG 2000", set(JPEG2000TransferSyntaxes)),
                "YBR_PARTIAL_420": ("MPEG video", set(MPEGTransferSyntaxes))}
STRIP = 1 << 21  # values converted at a time: float64 copies of a whole 100 Mpx frame would take gigabytes
_VRS = {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"OB", b"OD",
        b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM", b"UC", b"UI",
        b"UL", b"UN", b"UR", b"US", b"UT", b"UV"}
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
# Technical tags only: the rest of a header can hold names, IDs, dates and free text about a patient.
_KEEP = ["Modality", "BodyPartExamined", "PhotometricInterpretation", "Rows", "Columns", "NumberOfFrames",
         "BitsStored", "Manufacturer"]
# Value representations whose values may identify someone; they are scrubbed from error text.
_TEXT_VRS = {"PN", "LO", "SH", "LT", "ST", "UT", "UC", "DA", "DT", "TM", "AS", "AE", "UI"}


def accepts(head: bytes, blob: Blob) -> bool:
    if head[128:132] == b"DICM" or _no_preamble(head):
        return True
    return _looks_like_bare_dataset(head)


def _no_preamble(head: bytes) -> bool:
    """A file whose 128-byte preamble was cut off: DICM, then the file meta's group 0002, at byte 0."""
    return head[:4] == b"DICM" and head[4:6] == b"\x02\x00"


def _looks_like_bare_dataset(head: bytes) -> bool:
    """A dataset without preamble: its first elements parse as group 0002/0008 tags in order."""
    for order in ("little", "big"):
        pos, last, seen = 0, -1, 0
        while seen < 3 and pos + 8 <= len(head):
            group = int.from_bytes(head[pos:pos + 2], order)
            elem = int.from_bytes(head[pos + 2:pos + 4], order)
            if seen == 0 and group not in (0x0002, 0x0008):
                break
            tag = (group << 16) | elem
            if group % 2 or tag <= last:
                break
            vr = head[pos + 4:pos + 6]
            if vr in _VRS:
                if vr in _LONG_VRS:
                    length, pos = int.from_bytes(head[pos + 8:pos + 12], order), pos + 12
                else:
                    length, pos = int.from_bytes(head[pos + 6:pos + 8], order), pos + 8
            elif order == "little":  # implicit VR little endian
                length, pos = int.from_bytes(head[pos + 4:pos + 8], order), pos + 8
            else:
                break
            if length == 0xFFFFFFFF or length > 4096:
                break
            last, seen, pos = tag, seen + 1, pos + length
        if seen >= 3 or (seen >= 2 and pos + 8 > len(head)):  # no room left in the head for a third element
            return True
    return False


def open_dicom(blob: Blob, ctx: Context) -> Iterator[Item]:
    origin, limits = blob.origin, ctx.limits
    try:
        ds = _read(blob.data, limits.max_input_bytes)
    except _TooLarge as exc:
        yield ItemError(origin, "", str(exc))
        return
    except Exception as exc:
        yield ItemError(origin, "", f"not a readable DICOM file ({type(exc).__name__})")
        return
    _fill_transfer_syntax(ds)
    sop = _sop_name(ds)
    if ds.get("SOPClassUID") == ENCAPSULATED_PDF or "EncapsulatedDocument" in ds:
        yield from _encapsulated(ds, blob, ctx, sop)
        return
    cut = not _has_pixels(ds) and (whole := _whole_fragments(blob.data)) is not None
    if cut:  # pydicom leaves out encapsulated pixel data that the end of the file cuts off
        try:
            ds = _read(whole, limits.max_input_bytes)
            _fill_transfer_syntax(ds)
        except Exception:
            cut = False
    if not _has_pixels(ds):
        what = ("A DICOMDIR: the index of an export's files, whose images are read from those files"
                if _sop_uid(ds) == MEDIA_DIRECTORY else f"DICOM object without pixel data ({sop})")
        yield ItemError(origin, "", what, skipped=True)
        return
    derived = DERIVED.get(str(ds.get("SOPClassUID", ""))) or DERIVED.get(str(ds.get("Modality", "")).upper())
    if derived:  # pixels that are not a picture of the patient: masks, dose grids
        yield ItemError(origin, "", f"DICOM {sop}: {derived}, not an image (skipped)", skipped=True)
        return
    if _is_slide(ds) and (kind := _image_type(ds)) in ("LABEL", "OVERVIEW"):  # as slide.py leaves them out
        yield ItemError(origin, "", f"DICOM slide {kind.lower()} image not read (it may show the patient's name)",
                        skipped=True)
        return
    meta = metadata(ds)
    if note := enhanced_palette(ds)[1]:
        meta["note"] = note
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        n = max(_int(ds.get("NumberOfFrames"), 1), 1)
    except Exception:
        yield ItemError(origin, "", "DICOM image without valid Rows/Columns")
        return
    if rows * cols > limits.max_pixels:
        yield ItemError(origin, "", f"DICOM image is {cols}×{rows} = {rows * cols:,} pixels per frame, "
                                    f"over the max_pixels cap of {limits.max_pixels:,}; not decoded")
        return
    syntax = str(getattr(ds, "file_meta", pydicom.Dataset()).get("TransferSyntaxUID", ""))
    if syntax in VIDEO_FORMATS:  # an MPEG-2/H.264/HEVC stream (endoscopy, ultrasound, surgery)
        yield from _video(ds, origin, limits, meta, n, VIDEO_FORMATS[syntax])
        return
    declared, held = n, None if _is_slide(ds) else _frames_held(ds, n)
    if cut and held == 0:
        yield ItemError(origin, "", "DICOM file is cut off inside its pixel data, before the end of its first frame")
        return
    if held is not None and 0 < held < n:  # a file cut off, or a count that cannot be true: its whole frames
        why = "the file is cut off inside its pixel data" if cut else f"the file declares {n:,} frames"
        yield ItemError(origin, "", f"DICOM pixel data holds {held:,} whole frame{'s' * (held > 1)}, but {why}; "
                                    f"only {'those are' if held > 1 else 'that one is'} read")
        n = held
    if "NumberOfFrames" in ds:  # pydicom counts frames by it; 0, -4 or 'abc' is one frame
        ds.NumberOfFrames = n
    if limits.all_frames:
        frames = range(n)
    elif n > 1 and _is_slide(ds):
        problem = _slide_frames_problem(ds, n)
        if problem:
            yield ItemError(origin, "", f"DICOM slide {problem}; not decoded")
            return
        tiles = _Tiles(ds, n, limits.max_pixels)
        best = _most_tissue_frame(ds, n, meta, tiles)
        field = _slide_field(ds, best, n, limits.max_pixels, tiles)
        if field is not None:
            image, meta["field"] = field
            yield ImageItem(origin, f"field around frame {best + 1}", _in_srgb(image, ds), "DICOM", meta)
            return
        frames = [best]
    else:
        frames = [n // 2]
    failures = 0
    for i in frames:  # callers cap the count (max_images_per_input); frames decode lazily
        locator = f"frame {i + 1}" if declared > 1 else ""
        try:
            image = _in_srgb(to_image(_frame(ds, i, n, limits.max_pixels), ds, i), ds)
        except BadLut as exc:  # every frame shares it
            yield ItemError(origin, locator, f"could not decode DICOM pixel data: {exc}")
            return
        except BaseException as exc:  # a Rust decoder (RLE) panics on some damaged data
            if not recoverable(exc):
                raise
            ts = meta.get("TransferSyntax", "unknown transfer syntax")
            yield ItemError(origin, locator, f"could not decode DICOM pixel data ({ts}): {_scrub(exc, ds)}")
            failures += 1
            if failures >= 3 and len(frames) > i + 1:  # a broken header would fail every frame alike
                yield ItemError(origin, "", f"gave up after {failures} frames failed to decode", skipped=True)
                return
            continue
        yield ImageItem(origin, locator, image, "DICOM", dict(meta))


def _has_pixels(ds: pydicom.Dataset) -> bool:
    return any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))


# the Pixel Data element (7FE0,0010) of undefined length, explicit or implicit VR: encapsulated frames follow
_ENCAPSULATED_PIXELS = re.compile(rb"\xe0\x7f\x10\x00(?:O[BW]\x00\x00)?\xff\xff\xff\xff")


def _whole_fragments(data: bytes) -> bytes | None:
    """A file whose encapsulated pixel data the end cuts off, ended after its last whole item (offset table or
    fragment) instead, with the sequence delimiter; None when it has no encapsulated pixel data without its end."""
    start = max((m.end() for m in _ENCAPSULATED_PIXELS.finditer(data)), default=-1)
    if start < 0 or data.find(b"\xfe\xff\xdd\xe0", start) >= 0:
        return None
    pos = start
    while pos + 8 <= len(data) and data[pos:pos + 4] == b"\xfe\xff\x00\xe0":
        end = pos + 8 + int.from_bytes(data[pos + 4:pos + 8], "little")
        if end > len(data):
            break
        pos = end
    return data[:pos] + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"


def _icc_profile(ds: pydicom.Dataset) -> bytes | None:
    """The ICC Profile (0028,2000) of the dataset, else of a slide's first optical path that has one
    (PS3.3 C.11.15, C.8.12.5)."""
    icc = ds.get("ICCProfile")
    for path in [] if icc else ds.get("OpticalPathSequence") or []:
        if icc := path.get("ICCProfile"):
            break
    return bytes(icc) if isinstance(icc, (bytes, bytearray)) and icc else None


def _in_srgb(image: Image.Image, ds: pydicom.Dataset) -> Image.Image:
    """`image` converted from the file's ICC profile to sRGB, as an image file's embedded profile is (files.py);
    unchanged without one, or with an sRGB, broken or other-colour-space profile. Greyscale keeps its own pipeline."""
    if image.mode != "RGB":
        return image
    from .files import profile_to_srgb  # files.py imports this module when it loads

    return profile_to_srgb(image, _icc_profile(ds))


class BadLut(ValueError):
    """A palette or VOI lookup table whose descriptor and data disagree."""


class _TooLarge(ValueError):
    """A deflated dataset that inflates past max_input_bytes."""


def _read(data: bytes, max_bytes: int) -> pydicom.Dataset:
    """pydicom.dcmread, except that a Deflated Explicit VR Little Endian dataset is inflated here under
    `max_bytes`: pydicom would inflate it whole, and a small file can inflate to gigabytes."""
    if _no_preamble(data):  # pydicom finds DICM only after a preamble
        data = bytes(128) + data
    fp = io.BytesIO(data)
    try:
        preamble = read_preamble(fp, True)
        meta = _read_file_meta_info(fp)
    except Exception:
        meta = None
    if meta is None or meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
        return pydicom.dcmread(io.BytesIO(data), force=True)
    # the inflated dataset behind the same file meta, named as explicit VR little endian for pydicom
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    out.write((preamble or bytes(128)) + b"DICM")
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    write_file_meta_info(out, meta, enforce_standard=False)
    inflater, total, view = zlib.decompressobj(-zlib.MAX_WBITS), 0, memoryview(data)[fp.tell():]
    for start in range(0, len(view), 1 << 16):
        piece = view[start:start + (1 << 16)]
        while piece and not inflater.eof:
            chunk = inflater.decompress(piece, 1 << 20)
            total += len(chunk)
            if total > max_bytes:
                raise _TooLarge(f"deflated DICOM dataset inflates past the max_input_bytes cap of {max_bytes:,} "
                                f"bytes; not read")
            out.write(chunk)
            piece = inflater.unconsumed_tail
        if inflater.eof:
            break
    out.write(inflater.flush())  # at most a few bytes left once the input is used up
    out.seek(0)
    ds = pydicom.dcmread(out, force=True)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian  # as the file says; the pixels are native
    return ds


def _encapsulated(ds: pydicom.Dataset, blob: Blob, ctx: Context, sop: str) -> Iterator[Item]:
    """A PDF inside a DICOM file (scanned reports, referral letters) is opened like any PDF, its images
    keeping the DICOM file as their origin; other documents (CDA XML, 3-D models) are a skipped note."""
    doc = ds.get("EncapsulatedDocument")
    data = bytes(doc) if isinstance(doc, (bytes, bytearray)) else b""
    if b"%PDF" not in data[:1024]:
        yield ItemError(blob.origin, "", f"DICOM holds an encapsulated document ({sop}), not an image", skipped=True)
        return
    if blob.depth + 1 > ctx.limits.max_depth:
        yield ItemError(blob.origin, "", f"encapsulated PDF nested deeper than max_depth ({ctx.limits.max_depth})")
        return
    yield from ctx.open_blob(Blob(blob.origin, data.rstrip(b"\x00"), name="document.pdf", depth=blob.depth + 1))


def _frame(ds: pydicom.Dataset, index: int, n: int, max_pixels: int) -> np.ndarray:
    """Frame `index` decoded. A compressed frame's own header is read first: a decoder allocates the size
    the codestream declares, whatever Rows/Columns say, so a frame declaring another size is refused."""
    syntax = str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
    pi = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if pi in _YBR_ONLY_IN and syntax not in _YBR_ONLY_IN[pi][1]:
        raise ValueError(f"Photometric Interpretation {pi} is defined only for {_YBR_ONLY_IN[pi][0]} pixel data "
                         f"(PS3.3 C.7.6.3.1.2), so these samples' colours are unknown; not decoded")
    kind = FRAME_HEADERS.get(syntax)
    if kind is None:
        return _pixels(ds, index, n)
    if kind == "JPEG XL":
        frame = next(islice(generate_frames(ds.PixelData, number_of_frames=n), index, None), None)
        if frame is None:
            raise ValueError(f"no frame {index + 1} in the pixel data")
    else:
        frame = get_frame(ds.PixelData, index, number_of_frames=n)
    if kind == "JPEG 2000":
        _check_jp2_boxes(frame)
    _check_frame_size(kind, _frame_size(kind, frame), int(ds.Columns), int(ds.Rows), max_pixels)
    return _jxl_frame(ds, frame) if kind == "JPEG XL" else _pixels(ds, index, n)


def _pixels(ds: pydicom.Dataset, index: int, n: int) -> np.ndarray:
    """pydicom's pixel_array without its copies, which double a big frame: native pixels as a read-only view
    of the pixel data, a single compressed frame as the decoder's own buffer."""
    syntax = str(getattr(ds, "file_meta", pydicom.Dataset()).get("TransferSyntaxUID", ""))
    pi = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if pi == "YBR_PARTIAL_422" or (pi in ("YBR_FULL", "YBR_FULL_422") and _int(ds.get("BitsAllocated"), 8) > 8):
        return _ybr_pixels(ds, index if n > 1 else None, syntax, pi)
    if n == 1 and syntax in _ENCAPSULATED:
        try:
            decoder = get_decoder(syntax)
        except NotImplementedError:  # pixel_array says so in its own words
            decoder = None
        if decoder is not None:
            return next(decoder.iter_array(ds, **as_pixel_options(ds)))[0]
    if _int(ds.get("BitsAllocated"), 8) == 1 and syntax not in _ENCAPSULATED and syntax != ExplicitVRBigEndian:
        return _bit_frame(ds, index if n > 1 else 0)
    # a view only when no unused high bits need clearing (else pydicom warns, and copies anyway)
    whole = _int(ds.get("BitsStored"), 0) == _int(ds.get("BitsAllocated"), -1)
    # data past the declared frames is padding: pydicom would otherwise return it as more frames
    return pixel_array(ds, index=index if n > 1 else None, view_only=whole, allow_excess_frames=False)


def _ybr_pixels(ds: pydicom.Dataset, index: int | None, syntax: str, pi: str) -> np.ndarray:
    """A frame of YCbCr that pydicom does not turn into RGB, converted here by PS3.3 C.7.6.3.1.2's equations:
    YBR_FULL(_422) of more than 8 bits (pydicom converts 8 bits only), with the chroma offset and range
    scaled to Bits Stored, and the retired YBR_PARTIAL_422: native, limited range in YBR_FULL_422's layout; in a
    JPEG frame, the codestream's own full-range YCbCr, as libjpeg-based viewers show it."""
    native = syntax not in _ENCAPSULATED
    options = {"as_rgb": False, "allow_excess_frames": False}
    if pi == "YBR_PARTIAL_422" and native:  # its Y1 Y2 Cb Cr layout read as YBR_FULL_422's: upsampled, values kept
        options["photometric_interpretation"] = "YBR_FULL_422"
    arr, props = get_decoder(syntax).as_array(ds, index=index, **options)
    if str(props.get("photometric_interpretation", pi)) not in (pi, "YBR_FULL"):
        return arr  # the decoder has converted it
    return _ybr_to_rgb(arr, _int(ds.get("BitsStored"), 8 * arr.dtype.itemsize), pi == "YBR_PARTIAL_422" and native)


def _ybr_to_rgb(arr: np.ndarray, bits: int, partial: bool) -> np.ndarray:
    """Y, Cb, Cr samples of `bits` bits as R, G, B of the same bits, a strip of rows at a time. YBR_FULL: chroma
    centred on 2**(bits-1); YBR_PARTIAL: Y from 16 to 235, chroma 16 to 240 (in 8-bit units, scaled to `bits`)."""
    top, unit = float(2 ** bits - 1), 2.0 ** (bits - 8)
    out = arr if arr.flags.writeable else np.empty(arr.shape, arr.dtype)  # in place: each strip is read first
    for rows in strips(arr):
        ybr = arr[rows].astype(np.float64)
        y, cb, cr = ybr[..., 0], ybr[..., 1] - 128 * unit, ybr[..., 2] - 128 * unit
        if partial:
            y, cb, cr = (y - 16 * unit) * 255 / 219, cb * 255 / 224, cr * 255 / 224
        rgb = np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], -1)
        out[rows] = np.clip(np.rint(rgb), 0, top)
    return out


def _bit_frame(ds: pydicom.Dataset, index: int) -> np.ndarray:
    """Frame `index` of bit-packed pixels (BitsAllocated 1), unpacked here: a frame that starts inside a byte
    can end in one byte more than its own length in bytes, which pydicom does not read (nor can it give a view)."""
    rows, cols = int(ds.Rows), int(ds.Columns)
    start, count = index * rows * cols, rows * cols
    need = -(-(start % 8 + count) // 8)  # the bytes the frame's bits touch
    data = ds.PixelData
    if start // 8 + need > len(data):
        raise ValueError(f"the pixel data is too short to hold frame {index + 1}")
    bits = np.unpackbits(np.frombuffer(data, np.uint8, need, start // 8), bitorder="little")
    return bits[start % 8:start % 8 + count].reshape(rows, cols)


def _check_jp2_boxes(frame: bytes) -> None:
    """A frame in a JP2 wrapper: pydicom walks its boxes to the codestream as this does, and never ends
    when a box before it says length 0 (which means "to the end"), so such a frame is refused."""
    if not frame.startswith(b"\x00\x00\x00\x0cjP  "):
        return
    pos, extended = 12, None
    while pos < len(frame):
        if frame[pos + 4:pos + 8] == b"jp2c":
            return
        length = int.from_bytes(frame[pos:pos + 4], "big")
        if length == 1 and extended is None:  # an 8-byte length follows, which pydicom does not read
            extended = f"an extended-length box {frame[pos + 4:pos + 8]!r} at byte {pos}"
        if length == 0:
            box = extended or f"a box {frame[pos + 4:pos + 8]!r} at byte {pos} of length 0"
            raise ValueError(f"JPEG 2000 frame in a JP2 wrapper with {box} before the codestream, where pydicom's "
                             "walk of the boxes never ends; not decoded")
        pos += length


def _check_frame_size(kind: str, size: tuple[int, int] | None, cols: int, rows: int, max_pixels: int) -> None:
    if size is None:
        raise ValueError(f"{kind} frame without a readable size header; not decoded")
    w, h = size
    if (w, h) != (cols, rows):
        over = f", over the max_pixels cap of {max_pixels:,}" if w * h > max_pixels else ""
        raise ValueError(f"{kind} frame says it is {w}×{h} pixels{over}, not the {cols}×{rows} of "
                         f"Rows/Columns; not decoded")


def _frame_size(kind: str, frame: bytes) -> tuple[int, int] | None:
    """(width, height) from a frame's own header: JPEG SOFn, JPEG 2000 SIZ, JPEG XL SizeHeader."""
    if kind == "JPEG XL":
        from .jxl import codestream_start, size_of

        code = codestream_start(frame)
        return size_of(code) if code else None
    if kind == "JPEG 2000":  # SOC then SIZ: length, capabilities, then Xsiz, Ysiz, XOsiz, YOsiz
        pos = frame.find(b"\xff\x4f\xff\x51")  # at 0, or inside a JP2 wrapper
        if pos < 0 or pos + 24 > len(frame):
            return None
        xsiz, ysiz, x0, y0 = struct.unpack_from(">IIII", frame, pos + 8)
        return xsiz - x0, ysiz - y0
    if frame[:2] != b"\xff\xd8":  # JPEG, JPEG-LS: walk the marker segments to the frame header
        return None
    pos = 2
    while pos + 4 <= len(frame):
        if frame[pos] != 0xFF:
            return None
        marker = frame[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # no length
            pos += 2
            continue
        if marker in _SOF:
            if pos + 9 > len(frame):
                return None
            height, width = struct.unpack_from(">HH", frame, pos + 5)
            return width, height
        length = int.from_bytes(frame[pos + 2:pos + 4], "big")
        if marker in (0xD8, 0xD9, 0xDA) or length < 2:  # scan or end before any frame header
            return None
        pos += 2 + length
    return None


def _jxl_frame(ds: pydicom.Dataset, frame: bytes) -> np.ndarray:
    """A JPEG XL frame (pydicom has no decoder for it yet) through imagecodecs; the first frame of an
    animation only (libjxl would decode every one at once)."""
    import imagecodecs

    arr = imagecodecs.jpegxl_decode(frame, index=0)
    if arr.ndim == 4:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if int(ds.get("PixelRepresentation", 0)) == 1 and arr.dtype == np.uint16:
        arr = arr.view(np.int16)  # signed values stored as their 16 bits
    return arr


def _video(ds: pydicom.Dataset, origin: str, limits: Limits, meta: dict, n: int, formats: list[str]) -> Iterator[Item]:
    """The fragments of an MPEG transfer syntax's pixel data are one video stream, decoded by video.py."""
    from .video import read_video

    try:
        data = ds.PixelData
        if data[:4] != b"\xfe\xff\x00\xe0":
            raise ValueError("pixel data is not encapsulated")
        stream = b"".join(generate_fragments(data[8 + int.from_bytes(data[4:8], "little"):]))
    except Exception as exc:
        yield ItemError(origin, "", f"DICOM video without readable fragments: {_scrub(exc, ds)}")
        return
    rate = _float(ds.get("CineRate")) or (1000.0 / ms if (ms := _float(ds.get("FrameTime"))) else None)
    meta = {**meta, "fps": round(rate, 3)} if rate and rate < 1000 else meta  # the stream's own rate is a guess
    frames = read_video(io.BytesIO(stream), formats, origin, limits, "DICOM", meta, frame_count=n if n > 1 else None)
    for item in frames:
        if isinstance(item, ImageItem):  # an endoscope's profile applies to its video as to its stills
            item.image = _in_srgb(item.image, ds)
        yield item


def _is_slide(ds: pydicom.Dataset) -> bool:
    return ds.get("SOPClassUID") == WHOLE_SLIDE or ds.get("Modality") == "SM"


def _image_type(ds: pydicom.Dataset) -> str:
    """The third value of ImageType: for a slide, VOLUME, THUMBNAIL, LABEL or OVERVIEW (PS3.3 C.8.12.4.1.1)."""
    value = ds.get("ImageType")
    parts = list(value) if isinstance(value, (list, pydicom.multival.MultiValue)) else str(value or "").split("\\")
    return str(parts[2]).strip().upper() if len(parts) > 2 else ""


class _Tiles:
    """A slide's frames as RGB images. Baseline-JPEG YCbCr tiles (most DICOM slides) decode with Pillow,
    about 10× faster than through pydicom's per-frame path with its colour conversion in numpy."""

    def __init__(self, ds: pydicom.Dataset, n: int, max_pixels: int):
        self.ds, self.n, self.max_pixels, self.jpeg = ds, n, max_pixels, None
        pi = str(ds.get("PhotometricInterpretation", "")).strip().upper()
        syntax = getattr(ds, "file_meta", pydicom.Dataset()).get("TransferSyntaxUID")
        if syntax == JPEGBaseline8Bit and pi in ("YBR_FULL_422", "YBR_FULL"):
            try:
                self.jpeg = list(generate_frames(ds.PixelData, number_of_frames=n))
            except Exception:
                self.jpeg = None

    def rgb(self, i: int, reduce: int = 1) -> Image.Image:
        """Frame i, `reduce` times smaller on each side (a JPEG decodes that small by DCT scaling)."""
        if self.jpeg is not None and i < len(self.jpeg):
            with Image.open(io.BytesIO(self.jpeg[i])) as im:
                _check_frame_size("JPEG", im.size, int(self.ds.Columns), int(self.ds.Rows), self.max_pixels)
                if im.format == "JPEG" and im.mode == "RGB":
                    want = (im.width // reduce, im.height // reduce)
                    if reduce > 1:
                        im.draft("RGB", want)
                    return im.copy() if im.size == want else im.resize(want, Image.Resampling.BOX)
        full = to_image(_frame(self.ds, i, self.n, self.max_pixels), self.ds, i).convert("RGB")
        return full.reduce(reduce) if reduce > 1 else full


def _reduce_for(tw: int, th: int, most: float) -> int:
    """The largest of 8, 4, 2, 1 that is at most `most` and divides both tile sides."""
    return next(f for f in (8, 4, 2, 1) if f <= most and tw % f == 0 and th % f == 0)


def _most_tissue_frame(ds: pydicom.Dataset, n: int, meta: dict, tiles: _Tiles) -> int:
    """A slide's tiles are mostly glass: of up to SLIDE_SAMPLE evenly spread frames, the one with the most
    tissue (the middle frame when none decodes). Notes the choice in `meta`."""
    from .slide import tissue_mask

    best, best_share = n // 2, -1.0
    sample = sorted({int(round(i)) for i in np.linspace(0, n - 1, min(n, SLIDE_SAMPLE))})
    tw, th = int(ds.Columns), int(ds.Rows)
    for i in sample:
        try:
            rgb = np.asarray(tiles.rgb(i, _reduce_for(tw, th, 4)))  # a quarter size tells the tissue share
        except BaseException as exc:
            if not recoverable(exc):
                raise
            continue
        share = float(tissue_mask(rgb).mean())
        if share > best_share:
            best, best_share = i, share
    if best_share >= 0:
        meta["tile_choice"] = {"sampled": len(sample), "tissue_fraction": round(best_share, 3)}
    return best


def _slide_field(ds: pydicom.Dataset, centre: int, n: int, max_pixels: int,
                 tiles: _Tiles) -> tuple[Image.Image, dict] | None:
    """The tiles around frame `centre` pasted into one field as the OpenSlide source shows a slide: FIELD
    px at about FIELD_MPP µm/px (a quarter of full resolution when the file has no pixel spacing).
    None when the tile layout is unknown or the field is a single tile, or any tile fails to decode."""
    from .slide import FIELD, FIELD_MPP

    try:
        tw, th = int(ds.Columns), int(ds.Rows)
        width, height = int(ds.TotalPixelMatrixColumns), int(ds.TotalPixelMatrixRows)
        spacing = _pixel_spacing_um(ds)
        scale = FIELD_MPP / spacing if spacing else 4.0  # level pixels per field pixel
        cap = MAX_FIELD_TILES * max(tw, th)
        if FIELD * scale > cap:  # very fine pixels: fewer tiles, shown coarser than FIELD_MPP
            scale = cap / FIELD
        span = min(int(round(FIELD * scale)), width, height)  # the field's side in level pixels
        if scale < 1.0 or span <= max(tw, th) or span * span > max_pixels:
            return None
        sparse = _sparse_positions(ds, n)
        across, down = -(-width // tw), -(-height // th)
        cx, cy = sparse[centre] if sparse else (centre % across * tw, centre // across % down * th)
        x0 = min(max(cx + tw // 2 - span // 2, 0), width - span)
        y0 = min(max(cy + th // 2 - span // 2, 0), height - span)
        if sparse is None:  # TILED_FULL: only the grid cells the field covers, in the centre frame's plane
            first, places = centre // (across * down) * across * down, {}
            for r in range(y0 // th, min(-(-(y0 + span) // th), down)):
                for c in range(x0 // tw, min(-(-(x0 + span) // tw), across)):
                    if first + r * across + c < n:
                        places[first + r * across + c] = (c * tw, r * th)
        else:
            places = dict(enumerate(sparse))
        f = _reduce_for(tw, th, scale)  # tiles decode f times smaller, the field being smaller still
        canvas = Image.new("RGB", (-(-span // f),) * 2, (255, 255, 255))
        used, seen = 0, set()
        for i, (x, y) in places.items():
            if (x, y) not in seen and x + tw > x0 and x < x0 + span and y + th > y0 and y < y0 + span:
                seen.add((x, y))
                canvas.paste(tiles.rgb(i, f), ((x - x0) // f, (y - y0) // f))
                used += 1
    except Exception:
        return None
    side = max(1, round(span / scale))
    return (canvas if canvas.size == (side, side) else canvas.resize((side, side), Image.Resampling.BOX)), {
        "tiles": used, "left": x0, "top": y0, "side": span, "um_per_pixel": round(spacing * scale, 3) if spacing else None}


def _sparse_positions(ds: pydicom.Dataset, n: int) -> list[tuple[int, int]] | None:
    """Top-left corner of every frame in the total pixel matrix from the per-frame plane positions
    (TILED_SPARSE), one per item the file really holds; None without them, when frames lie row by row
    (TILED_FULL; further focal planes and optical paths repeat the grid at the same places)."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is None or len(per_frame) != n or "PlanePositionSlideSequence" not in per_frame[0]:
        return None
    out = []
    for group in per_frame:
        pos = group.PlanePositionSlideSequence[0]
        out.append((int(pos.ColumnPositionInTotalImagePixelMatrix) - 1,
                    int(pos.RowPositionInTotalImagePixelMatrix) - 1))
    return out


def _frames_held(ds: pydicom.Dataset, n: int) -> int | None:
    """How many of `n` frames the pixel data holds (at most `n`), or None when it cannot tell: whole native frames,
    or encapsulated fragments (a frame takes at least one)."""
    data = next((ds.get(k) for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData") if k in ds), None)
    if not isinstance(data, (bytes, bytearray)):
        return None
    syntax = str(getattr(ds, "file_meta", pydicom.Dataset()).get("TransferSyntaxUID", ""))
    if syntax in _ENCAPSULATED or syntax in JPEG_XL:
        held, pos = 0, 8 + int.from_bytes(data[4:8], "little")  # past the offset table
        while held < n and pos + 8 <= len(data) and data[pos:pos + 4] == b"\xfe\xff\x00\xe0":
            pos += 8 + int.from_bytes(data[pos + 4:pos + 8], "little")
            held += pos <= len(data)  # a whole fragment
        return held
    if syntax not in _NATIVE:  # a private or unknown syntax
        return None
    pi = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    samples = 2 if pi in ("YBR_FULL_422", "YBR_PARTIAL_422") else _int(ds.get("SamplesPerPixel"), 1)
    try:
        bits = int(ds.Rows) * int(ds.Columns) * max(samples, 1) * max(_int(ds.get("BitsAllocated"), 8), 1)
    except Exception:
        return None
    return min(n, len(data) * 8 // max(bits, 1))


def _slide_frames_problem(ds: pydicom.Dataset, n: int) -> str | None:
    """Why a slide's NumberOfFrames cannot be true, or None: more frames than its pixel data holds
    (an encapsulated frame takes at least one fragment), or than a TILED_FULL grid has places for."""
    held = _frames_held(ds, n)
    if held is not None and held < n:
        return f"declares {n:,} frames, more than its pixel data holds ({held:,})"
    if str(ds.get("DimensionOrganizationType", "")).upper() == "TILED_FULL" and _sparse_positions(ds, n) is None:
        try:
            across = -(-int(ds.TotalPixelMatrixColumns) // int(ds.Columns))
            down = -(-int(ds.TotalPixelMatrixRows) // int(ds.Rows))
        except Exception:
            return None
        planes = max(_int(ds.get("TotalPixelMatrixFocalPlanes"), 1), 1) * \
            max(_int(ds.get("NumberOfOpticalPaths"), 1), 1)
        if n > across * down * planes:
            return (f"declares {n:,} frames, more than its TILED_FULL grid of {across:,}×{down:,} tiles"
                    f"{f' × {planes:,} planes' if planes > 1 else ''} holds")
    return None


def _pixel_spacing_um(ds: pydicom.Dataset) -> float | None:
    """Pixel spacing in µm from the shared functional groups (mm in the file), None when absent or odd."""
    try:
        value = float(ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing[0]) * 1000.0
    except Exception:
        return None
    return value if 0.01 <= value <= 100.0 else None


def _fill_transfer_syntax(ds: pydicom.Dataset) -> None:
    """A dataset without file meta was read by guessing its encoding; the decoder needs it named."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if little is None:
        return
    if meta is None:
        ds.file_meta = meta = pydicom.dataset.FileMetaDataset()
    meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                              ExplicitVRLittleEndian if little else ExplicitVRBigEndian)


def metadata(ds: pydicom.Dataset) -> dict:
    """Technical tags only; nothing that names or dates a patient or a study. A value that does not look like
    its kind (a damaged length makes pydicom read the next elements, names and IDs, into it) is left out."""
    out: dict = {}
    for key in _KEEP:
        value = ds.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, int):
            out[key] = value
        elif (text := _plain(value, key)) is not None:
            out[key] = text
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts and _UID.fullmatch(str(ts)):
        out["TransferSyntax"] = ts.name
    uid = _sop_uid(ds)
    if uid:
        out["SOPClass"] = _sop_name(ds)
        out["SOPClassUID"] = uid  # the kind of object (CT image, slide…), not one that names anybody
    return out


_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_CODE = re.compile(r"[A-Z0-9 _]{1,16}")  # a CS value (PS3.5 6.2)


def _plain(value, key: str) -> str | None:
    """A kept tag's value as text, or None when it is not what its kind allows: codes (CS) of up to 16
    capitals, digits and spaces, numbers (IS), and other text of up to 64 printable characters."""
    parts = [str(v) for v in value] if isinstance(value, (list, pydicom.multival.MultiValue)) else [str(value)]
    vr = pydicom.datadict.dictionary_VR(key)
    for part in parts:
        if vr == "CS" and not _CODE.fullmatch(part.strip() or "X"):
            return None
        if len(part) > 64 or not part.isprintable():
            return None
    return "\\".join(parts) if len(parts) > 1 else parts[0]


def _sop_uid(ds: pydicom.Dataset) -> str | None:
    """The SOP class UID (the dataset's, else the file meta's) when it is a well-formed UID: at most 64
    digits and dots."""
    for uid in (ds.get("SOPClassUID"), getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", None)):
        text = str(uid) if uid else ""
        if len(text) <= 64 and _UID.fullmatch(text):
            return text
    return None


def strips(arr: np.ndarray) -> Iterator[slice]:
    """Slices of the first axis covering about STRIP values each."""
    rows = max(1, STRIP // max(1, int(np.prod(arr.shape[1:], dtype=np.int64))))
    for top in range(0, arr.shape[0] if arr.ndim else 0, rows):
        yield slice(top, top + rows)


BY_VALUE_MIN = 4096  # pixels in a frame from which the per-value path pays (it counts 2**bits values)


def to_image(arr: np.ndarray, ds: pydicom.Dataset, index: int = 0, *, by_value: bool = True) -> Image.Image:
    """One decoded frame as 8-bit L (greyscale: modality LUT, window, MONOCHROME1 or an INVERSE Presentation
    LUT inverted) or RGB (colour, palette colour, or greyscale with a supplemental palette).
    Converted a strip of rows at a time, so a frame at the pixel cap never has a float copy. An integer
    MONOCHROME frame of at most 16 bits is worked out once per stored value present in it, then looked up
    (`by_value`; the same pixels, see `_by_value`)."""
    ct = _ct_without_window(arr, ds, index)
    if by_value and arr.ndim == 2 and arr.dtype.kind in "iu" and arr.dtype.itemsize <= 2 \
            and arr.size >= BY_VALUE_MIN \
            and str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper() in ("MONOCHROME1",
                                                                                           "MONOCHROME2"):
        return _enhanced(arr, ds, _supplemental(arr, ds, _by_value(arr, ds, index, ct)))
    return _enhanced(arr, ds, _supplemental(arr, ds, _to_image(arr, ds, index, ct)))


CT_SAMPLE = 1 << 18  # stored values a frame's look (Hounsfield units or not) is judged from: all of a 512² frame


def _ct_without_window(arr: np.ndarray, ds: pydicom.Dataset, index: int) -> bool:
    """Whether a frame is a CT of more than 8 bits in Hounsfield units with no VOI LUT or window of its own: it is
    then shown in levels.CT_WINDOW, as the CTs the model learnt from are, rather than over its whole range (air
    grey, the body washed out). Judged from an even sample of the frame's modality values (levels.looks_like_hu),
    so a scout or a file whose rescale is missing keeps the whole range."""
    if str(ds.get("Modality", "")).strip().upper() != "CT" or arr.ndim != 2 or arr.dtype.kind not in "iuf" \
            or _int(ds.get("BitsStored"), 16) <= 8 or _window(ds, index)[0] is not None \
            or str(ds.get("PhotometricInterpretation", "")).strip().upper() not in ("MONOCHROME1", "MONOCHROME2"):
        return False
    step = max(1, int(np.ceil(np.sqrt(arr.size / CT_SAMPLE))))
    values = _modality(arr[::step, ::step], ds, index)
    return looks_like_hu(values[np.isfinite(values)])


def _modality(arr: np.ndarray, ds: pydicom.Dataset, index: int) -> np.ndarray:
    """Stored values through the modality LUT or rescale (an enhanced object's per-frame one), as float64."""
    if ds.get("ModalityLUTSequence"):
        return apply_modality_lut(arr, ds).astype(np.float64)
    rescale = ds if "RescaleSlope" in ds else _frame_group(ds, "PixelValueTransformationSequence", index) or ds
    slope, intercept = _num(rescale.get("RescaleSlope"), 1.0), _num(rescale.get("RescaleIntercept"), 0.0)
    if slope == 0 or not np.isfinite(slope):  # an invalid slope would make every pixel alike: read as 1
        slope = 1.0
    values = arr.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # a huge slope gives infinities, drawn as the range's ends
        if slope != 1.0:
            values *= slope
        if intercept and np.isfinite(intercept):
            values += intercept
    return values


def _by_value(arr: np.ndarray, ds: pydicom.Dataset, index: int, ct: bool = False) -> Image.Image:
    """`_to_image` of an integer greyscale frame of at most 16 bits, worked out over a single row holding each
    stored value present in the frame once, then looked up for every pixel: one integer pass over the frame
    instead of about eight float64 ones. The same pixels: every step of `_to_image` maps each value by
    itself (modality LUT or rescale, window or VOI LUT, padding, scaling, inversion), and what it works out
    over the whole frame depends only on which values are present — the range of the finite modality values,
    whether some but not all pixels are padding, the range of the values that are not padding."""
    unsigned = arr.dtype.str.replace("i", "u")  # the same bits as an index: '<i2' -> '<u2', '|i1' -> '|u1'
    bits, size = arr.view(unsigned), 1 << (8 * arr.dtype.itemsize)
    lo, hi = int(arr.min()), int(arr.max())
    counts = None
    for rows in strips(arr):  # how many pixels hold each bit pattern (a negative value's at its two's complement)
        part = np.bincount(bits[rows].ravel(), minlength=size if lo < 0 else hi + 1)
        counts = part if counts is None else counts + part
    # the values present, found between lo and hi only
    spans = [range(lo, min(hi, -1) + 1), range(max(lo, 0), hi + 1)]
    present = np.concatenate([np.flatnonzero(counts[span.start % size:span.stop % size or size]) + span.start
                              for span in spans if len(span)])
    row = np.asarray(_to_image(present.astype(arr.dtype)[None, :], ds, index, ct))[0]
    lut = np.zeros(size, np.uint8)
    lut[present.astype(arr.dtype).view(unsigned)] = row
    out = np.empty(arr.shape, np.uint8)
    for rows in strips(arr):
        out[rows] = np.take(lut, bits[rows])
    return Image.fromarray(out, "L")


def _to_image(arr: np.ndarray, ds: pydicom.Dataset, index: int = 0, ct: bool = False) -> Image.Image:
    """`to_image` of any frame, converted a strip of rows at a time; `ct`: shown in levels.CT_WINDOW."""
    pi = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if pi == "PALETTE COLOR":
        palette = _palette(ds)

        def colour(rows: slice) -> np.ndarray:
            try:
                rgb = apply_color_lut(arr[rows], palette)
            except Exception as exc:
                raise BadLut("the file's palette colour lookup table is invalid (its descriptor does not match "
                             "its data)") from exc
            return to_uint8(rgb[..., :3], 0.0, _palette_top(ds, rgb))
        return _rgb_image(arr, colour)
    if arr.ndim == 3:  # colour; pydicom has already turned YBR into RGB
        top = float(2 ** _int(ds.get("BitsStored"), 8) - 1)
        return _rgb_image(arr, lambda rows: to_uint8(arr[rows, :, :3], 0.0, top))
    whole: list[np.ndarray] = []  # an ordinary frame is one strip: its values are worked out once

    def modality(rows: slice) -> np.ndarray:
        if whole:
            return whole[0]
        values = _modality(arr[rows], ds, index)
        if arr.size <= STRIP:
            whole.append(values)
        return values

    # NaN and ±inf (float pixel data) are drawn as the ends of the finite range, so that one such pixel
    # cannot make the range NaN and the whole image black
    lowest, highest = _range(v[np.isfinite(v)] for v in map(modality, strips(arr))) or (0.0, 0.0)

    def finite(rows: slice) -> np.ndarray:
        return np.nan_to_num(modality(rows), nan=lowest, posinf=highest, neginf=lowest)

    window, lo, hi = _window(ds, index)
    if window is None and ct:  # PS3.3 leaves the choice to the viewer; padding is below the window, so black
        window, lo, hi = _ct_window, 0.0, 1.0
    pad = _padding_range(arr, ds) if window is None else None
    if pad is not None and sum(int(_pad_mask(arr[rows], pad).sum()) for rows in strips(arr)) in (0, arr.size):
        pad = None  # padding counts only when some pixels are padding and some are not
    if window is None:  # the range of the frame's pixels that are not padding (PS3.3 C.7.5.1.1.2)
        if pad is None:
            lo, hi = (lowest, highest) if arr.size else (0.0, 1.0)
        else:
            lo, hi = _range(finite(rows)[~_pad_mask(arr[rows], pad)] for rows in strips(arr))
    out = np.empty(arr.shape, np.uint8)
    for rows in strips(arr):
        values = finite(rows)
        if window is not None:
            values = window(values)
        elif pad is not None:  # padding drawn at the bottom of the range
            values = np.where(_pad_mask(arr[rows], pad), lo, values)
        out[rows] = to_uint8(values, lo, hi)
    # 0 is white in MONOCHROME1 (whose Presentation LUT Shape, when given, says INVERSE for that same
    # inversion), and in MONOCHROME2 drawn through an INVERSE Presentation LUT
    shape = str(ds.get("PresentationLUTShape", "")).strip().upper()
    if pi == "MONOCHROME1" or shape == "INVERSE":
        np.subtract(255, out, out=out)
    return Image.fromarray(out, "L")


def _palette_top(ds: pydicom.Dataset, rgb: np.ndarray) -> float:
    """The largest palette entry: 255 for 8-bit entries, also when each is in a 16-bit word (the descriptor's third
    value 8, the note in PS3.3 C.7.6.3.1.5), else 65535."""
    bits = _int(ds.RedPaletteColorLookupTableDescriptor[2], 16)
    return 255.0 if rgb.dtype.itemsize == 1 or bits <= 8 else float(2 ** min(bits, 16) - 1)


_PALETTE_COLOURS = ("Red", "Green", "Blue", "Alpha")


def _palette(ds: pydicom.Dataset) -> pydicom.Dataset:
    """The dataset's palette elements alone, for pydicom's apply_color_lut (which refuses a dataset saying
    PixelPresentation). Segmented data (PS3.3 C.7.9.2) is expanded here within a bound (dicom_segments.py): when it
    names more entries than the descriptor, its first ones are given as plain data (pydicom would expand them all:
    millions from a few bytes); when it cannot be expanded within the bound, it is left out (an invalid palette).
    Segmented data of 8-bit entries that, read as bytes (pydicom's reading), does not expand to the descriptor's
    number of entries, but read as 16-bit words expands to exactly that many entries of at most 255, is written by
    some as words: it is expanded so, as plain 8-bit data."""
    palette = pydicom.Dataset()
    for elem in ds:
        if "PaletteColorLookupTable" in elem.keyword:
            palette.add(elem)
    if hasattr(ds, "file_meta"):
        palette.file_meta = ds.file_meta
    desc = palette.get("RedPaletteColorLookupTableDescriptor")
    if not isinstance(desc, (list, pydicom.multival.MultiValue)) or len(desc) < 3 or \
            "SegmentedRedPaletteColorLookupTableData" not in palette:
        return palette
    count, bits = _int(desc[0], 0) or 65536, _int(desc[2], 16)
    syntax = getattr(ds, "file_meta", pydicom.Dataset()).get("TransferSyntaxUID")
    order = ">" if syntax is not None and UID(syntax) == ExplicitVRBigEndian else "<"
    data = {c: palette.get(f"Segmented{c}PaletteColorLookupTableData") for c in _PALETTE_COLOURS}
    data = {c: bytes(d) for c, d in data.items() if isinstance(d, (bytes, bytearray)) and d}
    luts = {c: segments.expand(d, order + ("B" if bits // 8 == 1 else "H"), count) for c, d in data.items()}
    if bits == 8 and not all(lut is not None and len(lut) == count for lut in luts.values()):
        words = {c: segments.expand(d, order + "H", count) for c, d in data.items()}
        if all(w is not None and len(w) == count and max(w) <= 255 for w in words.values()):
            return _as_plain_data(palette, words, count, np.uint8)
    if all(lut is not None and len(lut) <= count for lut in luts.values()):
        return palette  # pydicom's expansion is as short
    if any(lut is None for lut in luts.values()):
        luts = {}  # the data left out: an invalid palette
    return _as_plain_data(palette, luts, count, np.uint8 if bits == 8 else np.uint16)


def _as_plain_data(palette: pydicom.Dataset, luts: dict, count: int, kind) -> pydicom.Dataset:
    """The palette with its segmented data replaced by `luts`' first `count` entries as plain data."""
    for c in _PALETTE_COLOURS:
        palette.pop(f"Segmented{c}PaletteColorLookupTableData", None)
    for c, lut in luts.items():
        palette[f"{c}PaletteColorLookupTableData"] = pydicom.DataElement(
            f"{c}PaletteColorLookupTableData", "OW", np.asarray(lut[:count], kind).tobytes())
    return palette


def _supplemental(arr: np.ndarray, ds: pydicom.Dataset, image: Image.Image) -> Image.Image:
    """A greyscale frame with a Supplemental Palette Color LUT (Pixel Presentation COLOR or MIXED; PS3.3 C.7.6.19,
    C.8.16.2.1.1.1): stored values in the palette's range drawn in its colours, the rest in `image`'s grey."""
    if image.mode != "L" or arr.ndim != 2 or "RedPaletteColorLookupTableDescriptor" not in ds \
            or str(ds.get("PixelPresentation", "")).strip().upper() not in ("COLOR", "MIXED"):
        return image
    palette = _palette(ds)
    first, count = _int(ds.RedPaletteColorLookupTableDescriptor[1], 0), \
        _int(ds.RedPaletteColorLookupTableDescriptor[0], 0) or 65536
    try:
        apply_color_lut(arr[:1, :1], palette)
    except Exception:  # a broken palette: the grey image, as a viewer that cannot read it shows
        return image
    grey = np.asarray(image)

    def colour(rows: slice) -> np.ndarray:
        part, out = arr[rows], np.repeat(grey[rows, :, None], 3, axis=2)
        inside = (part >= first) & (part < first + count)
        if inside.any():
            rgb = apply_color_lut(part, palette)
            out[inside] = to_uint8(rgb[..., :3], 0.0, _palette_top(ds, rgb))[inside]
        return out
    return _rgb_image(arr, colour)


def enhanced_palette(ds: pydicom.Dataset) -> tuple[dict | None, str | None]:
    """How to draw a greyscale image through its Enhanced Palette Color Lookup Table Module (PS3.3 C.7.6.23), as
    (plan, None); (None, why it is drawn in grey) for the cases not handled; (None, None) without the module.
    Handled: one data path, its frames' stored values (PRIMARY_SINGLE) or P-values (PRIMARY_PVALUES: the grey
    pipeline's output) through the PRIMARY palette (RGB LUT Transfer Function TABLE or EQUAL_RGB), times a CONSTANT
    Blending LUT 1 weight. Not handled: two data paths blended (ultrasound tissue and flow), the high and low bits of
    one frame on two paths, alpha or table blending weights, and files with frames of several data types."""
    items = ds.get("EnhancedPaletteColorLookupTableSequence")
    if not items:
        return None, None
    why = "Enhanced Palette Color LUT not applied ({}): shown in grey"
    try:
        assigned, blend = list(ds.DataFrameAssignmentSequence), ds.BlendingLUT1Sequence[0]
        if len(assigned) != 1:
            return None, why.format("two data paths blended")
        path = str(assigned[0].DataPathAssignment).strip().upper()
        if path not in ("PRIMARY_SINGLE", "PRIMARY_PVALUES"):
            return None, why.format(f"data path {path}")
        if len({str(t.get("DataType", "")) for t in ds.get("ImageDataTypeSequence") or []}) > 1:
            return None, why.format("frames of several data types")
        item = next((i for i in items if str(i.get("DataPathID", "")).strip().upper() == "PRIMARY"), None)
        rgb = str(item.get("RGBLUTTransferFunction", "")).strip().upper() if item is not None else ""
        if rgb not in ("TABLE", "EQUAL_RGB"):
            return None, why.format("no PRIMARY palette")
        weight = _first(blend.get("BlendingWeightConstant"))
        if str(blend.get("BlendingLUT1TransferFunction", "")).strip().upper() != "CONSTANT" or weight is None:
            return None, why.format("a blending weight other than a constant")
        bits = _int(assigned[0].get("BitsMappedToColorLookupTable"), 0)
        stored = _int(ds.get("BitsStored"), 16)
        if not 1 <= bits <= 16 or (path == "PRIMARY_SINGLE" and stored > bits):
            return None, why.format(f"{bits} bits mapped")
        luts = _palette_luts(item, ds) if rgb == "TABLE" else None
    except Exception:
        return None, why.format("incomplete or invalid")
    return {"pvalues": path == "PRIMARY_PVALUES", "bits": bits, "weight": min(max(weight, 0.0), 1.0),
            "luts": luts}, None


def _palette_luts(item: pydicom.Dataset, ds: pydicom.Dataset) -> tuple[int, np.ndarray, float]:
    """(first value mapped, entries × R G B, largest entry) of a palette's plain Red/Green/Blue data."""
    count, first, bits = (_int(v, 0) for v in item.RedPaletteColorLookupTableDescriptor)
    count = count or 65536
    syntax = getattr(ds, "file_meta", pydicom.Dataset()).get("TransferSyntaxUID")
    word = ">u2" if syntax is not None and UID(syntax) == ExplicitVRBigEndian else "<u2"
    channels = []
    for colour in ("Red", "Green", "Blue"):
        data = bytes(item[f"{colour}PaletteColorLookupTableData"].value)
        values = np.frombuffer(data[:count], np.uint8) if len(data) in (count, count + 1) else \
            np.frombuffer(data[:2 * count], word)  # 8-bit entries in bytes, else one to a 16-bit word
        if len(values) != count:
            raise BadLut("palette data shorter than its descriptor")
        channels.append(values)
    return first, np.stack(channels, -1), float(2 ** min(max(bits, 8), 16) - 1)


def _enhanced(arr: np.ndarray, ds: pydicom.Dataset, image: Image.Image) -> Image.Image:
    """A greyscale frame drawn through its Enhanced Palette Color LUT, where `enhanced_palette` handles it."""
    if image.mode != "L" or arr.ndim != 2 or "EnhancedPaletteColorLookupTableSequence" not in ds:
        return image
    plan = enhanced_palette(ds)[0]
    if plan is None:
        return image
    grey, top_in = np.asarray(image), float(2 ** plan["bits"] - 1)

    def colour(rows: slice) -> np.ndarray:
        index = np.rint(grey[rows] / 255.0 * top_in) if plan["pvalues"] else arr[rows].astype(np.float64)
        if plan["luts"] is None:  # EQUAL_RGB: the input value on each channel
            return to_uint8(np.repeat(index[..., None], 3, axis=2) * plan["weight"], 0.0, top_in)
        first, lut, top = plan["luts"]
        rgb = lut[np.clip(index - first, 0, len(lut) - 1).astype(np.int64)]
        return to_uint8(rgb * plan["weight"], 0.0, top)
    return _rgb_image(arr, colour)


def _rgb_image(arr: np.ndarray, colour) -> Image.Image:
    """An RGB image pasted together from `colour(rows)`, uint8 RGB strips of `arr`."""
    image = Image.new("RGB", (arr.shape[1], arr.shape[0]))
    for rows in strips(arr):
        image.paste(Image.fromarray(np.ascontiguousarray(colour(rows)), "RGB"), (0, rows.start))
    return image


def _range(parts) -> tuple[float, float] | None:
    """The lowest and highest value in arrays `parts`, None when they are empty."""
    ends = [(float(part.min()), float(part.max())) for part in parts if part.size]
    return (min(e[0] for e in ends), max(e[1] for e in ends)) if ends else None


def _padding_range(arr: np.ndarray, ds: pydicom.Dataset) -> tuple[float, float] | None:
    """The stored values that are padding (PixelPaddingValue, up to PixelPaddingRangeLimit when given: the
    outside of a CT's field of view), or None."""
    pad = _first(ds.get("PixelPaddingValue"))
    if pad is None or arr.ndim != 2:
        return None
    limit = _first(ds.get("PixelPaddingRangeLimit"))
    return (pad, pad) if limit is None else (min(pad, limit), max(pad, limit))


def _pad_mask(part: np.ndarray, pad: tuple[float, float]) -> np.ndarray:
    return (part >= pad[0]) & (part <= pad[1])


def _window(ds: pydicom.Dataset, index: int):
    """(function of modality values, its lowest and highest output) for the VOI LUT or window in the file, or
    (None, 0, 0) when there is neither."""
    if "VOILUTSequence" in ds:
        bad = "the file's VOI lookup table is invalid (its descriptor does not match its data)"
        try:
            lut = _lut_values(ds.VOILUTSequence[0])
        except Exception as exc:
            raise BadLut(bad) from exc

        def voi(values: np.ndarray) -> np.ndarray:
            indices = np.rint(values).astype(np.int64)  # a LUT is indexed by whole stored values
            try:
                return apply_voi_lut(indices, ds, prefer_lut=True).astype(np.float64)
            except Exception as exc:
                raise BadLut(bad) from exc
        return voi, float(lut.min()), float(lut.max())
    voi = ds if "WindowCenter" in ds else _frame_group(ds, "FrameVOILUTSequence", index) or ds
    center, width = _first(voi.get("WindowCenter")), _first(voi.get("WindowWidth"))
    if center is not None and width is not None and width >= 1:
        # PS3.3 C.11.2.1.2: LINEAR window, mapped straight to 0..1
        if str(voi.get("VOILUTFunction", "LINEAR")).upper() == "SIGMOID":
            return (lambda v: 1.0 / (1.0 + np.exp(-4.0 * (v - center) / width))), 0.0, 1.0
        return (lambda v: np.clip((v - (center - 0.5)) / max(width - 1.0, 1.0) + 0.5, 0.0, 1.0)), 0.0, 1.0
    return None, 0.0, 0.0


def _ct_window(values: np.ndarray) -> np.ndarray:
    """Hounsfield units through levels.CT_WINDOW, to 0..1."""
    bottom, top = CT_WINDOW
    return np.clip((values - bottom) / (top - bottom), 0.0, 1.0)


def _frame_group(ds: pydicom.Dataset, keyword: str, index: int) -> pydicom.Dataset | None:
    """A functional group of an enhanced multi-frame object: this frame's own, else the shared one."""
    for groups, i in (("PerFrameFunctionalGroupsSequence", index), ("SharedFunctionalGroupsSequence", 0)):
        seq = ds.get(groups)
        if seq is not None and len(seq) > i:
            inner = seq[i].get(keyword)
            if inner:
                return inner[0]
    return None


def _num(value, default: float) -> float:
    number = _first(value)
    return default if number is None else number


def _lut_values(item: pydicom.Dataset) -> np.ndarray:
    data = item.LUTData
    if isinstance(data, bytes):  # read as OW
        return np.frombuffer(data, dtype="<u2" if int(item.LUTDescriptor[2]) > 8 else "u1").astype(np.float64)
    return np.atleast_1d(np.asarray(data, dtype=np.float64))


def to_uint8(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """`values` from lo..hi to 0..255, rounded; a strip of rows at a time."""
    out = np.empty(values.shape, np.uint8)
    for rows in strips(values):
        scaled = (values[rows].astype(np.float64) - lo) / max(hi - lo, 1e-9) * 255.0
        out[rows] = np.clip(np.rint(scaled), 0, 255)
    return out


def _first(value) -> float | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
            value = value[0]
        return float(value)
    except (TypeError, ValueError, IndexError):
        return None


def _float(value) -> float | None:
    """A positive finite number, or None."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if 0 < v < float("inf") else None


def _int(value, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _sop_name(ds: pydicom.Dataset) -> str:
    uid = _sop_uid(ds)
    if uid:
        return str(pydicom.uid.UID(uid).name or uid)
    given = ds.get("SOPClassUID") or getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", None)
    return "invalid SOP class UID" if given else "unknown SOP class"


def _scrub(exc: Exception, ds: pydicom.Dataset) -> str:
    """An exception's text with every textual header value removed, and kept short: pydicom's "all plugins
    failed" text becomes one line, each plugin's reason after its name, without object addresses."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if lines and lines[0].startswith("Unable to decode as exceptions were raised by all available plugins"):
        text = "no decoder could read it (" + "; ".join(lines[1:]) + ")"
    else:
        text = f"{type(exc).__name__}: {' '.join(lines)}"
    text = re.sub(r"\s*<[\w.]+ object at 0x[0-9a-f]+>", "", text)  # Pillow names the BytesIO it was given
    values = set()
    try:
        for elem in ds.iterall():
            if elem.VR in _TEXT_VRS | {"CS"} and elem.value not in (None, ""):
                parts = elem.value if isinstance(elem.value, (list, pydicom.multival.MultiValue)) else [elem.value]
                values.update(s for s in (str(p).strip() for p in parts) if len(s) >= 3
                              and (elem.VR != "CS" or not _CODE.fullmatch(s)))  # a code says who nobody is
    except Exception:  # a header pydicom cannot walk (an ambiguous VR it cannot resolve)
        if isinstance(exc, AttributeError):  # names a missing element or attribute, not a header value
            return text[:300]
        return f"{type(exc).__name__} (details left out: the header could not be read to remove its values)"
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, "[…]")
    return text if len(text) <= 300 else text[:299] + "…"


register(SourcePlugin("dicom", accepts, open_dicom, priority=10))
