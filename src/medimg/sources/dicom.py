"""DICOM files: pixel data to 8-bit images, with only technical tags kept (never patient identifiers).

This module reads the file and decides what it gives (its frames, a slide's field, a video, an encapsulated PDF, or a
note); dicom_frames.py decodes the frames and dicom_levels.py turns them into 8-bit images. Their names used
elsewhere (tests, nifti.py, benchmarks) stay importable from here.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import zlib
from typing import Iterator

import pydicom
from PIL import Image
from pydicom.dataelem import RawDataElement
from pydicom.encaps import generate_fragments
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ExplicitVRLittleEndian,
                         ImplicitVRLittleEndian, MPEGTransferSyntaxes)

from . import dicomdir
from .base import Blob, Context, ImageItem, Item, ItemError, Limits, SourcePlugin, recoverable
from .dicom_frames import (read_frame, frames_held, most_tissue_frame, slide_field, slide_frames_problem,
                           SlideTiles)
from .dicom_levels import BadLut, int_or, enhanced_palette, to_image
from .dicom_middle import middle_frame
from .dicom_syntax import stored_otherwise
from .quiet import hide_warnings, ours
from .registry import register

# also importable from here, as before the split (tests, nifti.py and benchmarks name them dicom.NAME)
from .dicom_levels import BY_VALUE_MIN, strips, to_uint8  # noqa: F401

# Invalid values would otherwise be echoed in warnings and logs, and values may identify a patient. pydicom's
# setting is the whole process's (it has no other); its warnings are hidden only while medimg reads (quiet.py).
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
hide_warnings(module=r"pydicom(\.|$)")


class _NoCharsetValues(logging.Filter):
    """pydicom logs the Specific Character Set it could not use as read ("Unknown encoding '…'"), and a damaged or
    odd file can hold anything there, a name too: a value that does not look like a character set's defined term
    (ISO_IR 100, ISO 2022 IR 87, GB18030, GBK) is left out, in what pydicom logs while medimg reads."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if ("encoding" in text or "Character Set" in text or "code extension" in text) and ours():
            text = _QUOTED.sub(lambda m: m[0] if _charset_like(m[1] or m[2] or "") else "'[…]'", text)
            text = re.sub(r"ignoring: (.*)$", lambda m: "ignoring: " + ", ".join(
                v if _charset_like(v) else "[…]" for v in m[1].split(", ")), text, flags=re.S)
            record.msg, record.args = text, ()
        return True


def _charset_like(value: str) -> bool:
    """A term or codec pydicom knows, or one of the defined terms' shape (capitals and a number: ISO_IR 999)."""
    return value in _CHARSETS or re.fullmatch(r"[A-Z][A-Z0-9 _-]{0,15}\d[A-Z0-9 _-]{0,6}", value) is not None


# a quoted value ends where pydicom's words go on (a name can hold a quote: O'Brien), else at the next quote
_QUOTED = re.compile(r"'(.*?)'(?= - | for | cannot |$)|'([^']*)'", re.S)
_CHARSETS = set(pydicom.charset.python_encoding) | set(pydicom.charset.python_encoding.values())
logging.getLogger("pydicom").addFilter(_NoCharsetValues())

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"  # a DICOMDIR
WHOLE_SLIDE = "1.2.840.10008.5.1.4.1.1.77.1.6"  # VL Whole Slide Microscopy Image Storage
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
    try:
        yield from _open_dicom(blob, ctx)
    except NotImplementedError as exc:  # pydicom converting an element whose VR bytes are garbled
        if not str(exc).startswith("Unknown Value Representation"):
            raise
        yield ItemError(blob.origin, "", f"damaged DICOM header: {str(exc)[:200]}; not read")


# the value sizes of fixed-size VRs: a value whose length is no multiple of it cannot be read as that VR
_VR_SIZES = {"AT": 4, "FL": 4, "FD": 8, "SL": 4, "SS": 2, "UL": 4, "US": 2, "SV": 8, "UV": 8, "OD": 8, "OF": 4,
             "OL": 4, "OV": 8, "OW": 2}

_SIZED = {*_VR_SIZES, None, "UN"}  # the VRs an element may be read by wrongly sized: None is implicit VR's


def _fit_vrs(ds: pydicom.Dataset) -> None:
    """An element whose VR's size does not fit its value (Modality "CT" written as UL, Rows as AT; in implicit VR or
    as UN, the dictionary's VR: a High Bit of 3 bytes) is read with its tag's VR from the dictionary when that fits,
    else as bytes: pydicom raises on reading it (its text quoting the value), and the whole file would be lost.
    Top-level elements, before any is converted."""
    for tag, elem in list(ds._dict.items()):
        # a VR of any size, or a value that fits its VR (most): no look-up (2 ms of a 258-element CT's read)
        if not isinstance(elem, RawDataElement) or not elem.value or elem.VR not in _SIZED or (
                elem.VR in _VR_SIZES and len(elem.value) % _VR_SIZES[elem.VR] == 0):
            continue
        try:
            known = pydicom.datadict.dictionary_VR(tag).split(" or ")[0]
        except KeyError:  # a private or unknown tag
            known = "OB"
        size = _VR_SIZES.get(known if elem.VR in (None, "UN") else elem.VR)
        if size and len(elem.value) % size:
            ds._dict[tag] = elem._replace(VR=known if len(elem.value) % _VR_SIZES.get(known, 1) == 0 else "OB")


def _open_dicom(blob: Blob, ctx: Context) -> Iterator[Item]:
    origin, limits = blob.origin, ctx.limits
    data = blob.data
    try:
        ds, byte_order = read(data, limits.max_input_bytes)
    except _TooLarge as exc:
        yield ItemError(origin, "", str(exc))
        return
    except Exception as exc:
        # pydicom unpacks an element's header from too few bytes left (struct.error), or finds no item tag left in a
        # sequence (OSError): the file ends there
        cut = isinstance(exc, struct.error) or isinstance(exc, OSError) and str(exc).startswith("No tag to read")
        yield ItemError(origin, "", "DICOM file is cut off inside an element; not read" if cut else
                        f"not a readable DICOM file ({type(exc).__name__})")
        return
    # before any element is looked at (which converts it); read adds a preamble when the file has none
    _fit_vrs(ds)
    where = _cut_before_pixels(ds, data, 128 * _no_preamble(data))
    _fill_transfer_syntax(ds)
    sop = _sop_name(ds)
    if ds.get("SOPClassUID") == ENCAPSULATED_PDF or "EncapsulatedDocument" in ds:
        yield from _encapsulated(ds, blob, ctx, sop, where)
        return
    cut = not _has_pixels(ds) and (whole := _whole_fragments(data)) is not None
    if cut:  # pydicom leaves out encapsulated pixel data that the end of the file cuts off
        try:
            ds = read(whole, limits.max_input_bytes)[0]
            _fill_transfer_syntax(ds)
        except Exception:
            cut = False
    if not _has_pixels(ds) and where:  # a damaged file, not an object without pixel data
        named = _sop_uid(ds) and not any(f"({tag})" in where for tag in ("0002,0002", "0008,0016"))  # not cut short
        yield ItemError(origin, "", f"DICOM file{f' ({sop})' if named else ''} is cut off {where}")
        return
    if not _has_pixels(ds):
        yield dicomdir.as_bytes_note(blob, ds) if _sop_uid(ds) == MEDIA_DIRECTORY else \
            ItemError(origin, "", f"DICOM object without pixel data ({sop})", skipped=True)
        return
    derived = DERIVED.get(str(ds.get("SOPClassUID", ""))) or DERIVED.get(str(ds.get("Modality", "")).upper())
    if derived:  # pixels that are not a picture of the patient: masks, dose grids
        yield ItemError(origin, "", f"DICOM {sop}: {derived}, not an image (skipped)", skipped=True)
        return
    cut = cut or _value_cut_short(_pixel_element(ds))  # native pixel data the end of the file cuts short
    if cut and not any(ds.get(k) for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        yield ItemError(origin, "", "DICOM file is cut off inside its pixel data, before the end of its first frame")
        return
    if not any(ds.get(k) for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):  # b"" reads as None
        yield ItemError(origin, "", "DICOM pixel data is empty (the element is there, of length 0): no image to show")
        return
    if _is_slide(ds) and (kind := _image_type(ds)) in ("LABEL", "OVERVIEW"):  # as slide.py leaves them out
        yield ItemError(origin, "", f"DICOM slide {kind.lower()} image not read (it may show the patient's name)",
                        skipped=True)
        return
    assumed = _fill_image_pixel(ds)  # old (ACR-NEMA) files leave out what the standard later required
    meta = metadata(ds)
    if note := "; ".join(filter(None, (byte_order, enhanced_palette(ds)[1], assumed))):
        meta["note"] = note
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        n = max(int_or(ds.get("NumberOfFrames"), 1), 1)
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
    note, wrong = stored_otherwise(ds, n)  # a gateway that rewrote the transfer syntax and not the pixel data
    if wrong:
        yield ItemError(origin, "", wrong)
        return
    if note:
        meta["note"] = f"{meta['note']}; {note}" if meta.get("note") else note
    declared, held = n, None if _is_slide(ds) else frames_held(ds, n)
    if cut and held == 0:
        yield ItemError(origin, "", "DICOM file is cut off inside its pixel data, before the end of its first frame")
        return
    if held is not None and 0 < held < n:  # a file cut off, or a count that cannot be true: its whole frames
        why = "the file is cut off inside its pixel data" if cut else f"the file declares {n:,} frames"
        yield ItemError(origin, "", f"DICOM pixel data holds {held:,} whole frame{'s' * (held > 1)}, but {why}; "
                                    f"only {'those are' if held > 1 else 'that one is'} read")
        n = held
    if "NumberOfFrames" in ds:  # pydicom counts frames by it; 0, -4 or 'abc' is one frame
        ds.add_new(0x00280008, "IS", n)  # as IS, whatever VR the file gave it (UI: an int would not do)
    if limits.all_frames:
        frames = range(n)
    elif n > 1 and _is_slide(ds):
        problem = slide_frames_problem(ds, n)
        if problem:
            yield ItemError(origin, "", f"DICOM slide {problem}; not decoded")
            return
        tiles = SlideTiles(ds, n, limits.max_pixels)
        best = most_tissue_frame(ds, n, meta, tiles)
        field = slide_field(ds, best, n, limits.max_pixels, tiles)
        if field is not None:
            image, meta["field"] = field
            yield ImageItem(origin, f"field around frame {best + 1}", _in_srgb(image, ds), "DICOM", meta)
            return
        frames = [best]
    else:
        frames = [middle_frame(ds, n)]  # the middle frame, or the middle slice of the middle time point
    items = _frame_items(ds, origin, meta, frames, n, declared, limits)
    if limits.all_frames and declared > 1:  # a frozen or looped cine's repeated frames: a note, not classified again
        from .repeats import distinct

        items = distinct(items, origin, "frame", limits.max_images_per_input)
    yield from items


def _frame_items(ds: pydicom.Dataset, origin: str, meta: dict, frames, n: int, declared: int,
                 limits: Limits) -> Iterator[Item]:
    failures = 0
    for i in frames:  # callers cap the count (max_images_per_input); frames decode lazily
        locator = f"frame {i + 1}" if declared > 1 else ""
        try:
            image = _in_srgb(to_image(read_frame(ds, i, n, limits.max_pixels), ds, i), ds)
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


_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # PixelData, FloatPixelData, DoubleFloatPixelData


def _pixel_element(ds: pydicom.Dataset):
    """The pixel data element as read (pydicom's raw element, unconverted), or None."""
    return next((ds.get_item(tag) for tag in _PIXEL_TAGS if tag in ds), None)


def _value_cut_short(elem) -> bool:
    """Whether an element read from the file holds fewer bytes than its length says: pydicom reads what is left
    when the file ends inside a value, without a word."""
    length, value = getattr(elem, "length", None), getattr(elem, "value", None)
    return isinstance(length, int) and length != 0xFFFFFFFF and isinstance(value, bytes) and len(value) < length


def _cut_before_pixels(ds: pydicom.Dataset, data: bytes, shift: int) -> str | None:
    """Where a file without pixel data ends inside an element (its header or its value), or None when its last
    element is whole. pydicom stops without a word when fewer bytes are left than an element's header, and reads
    a value cut short as it is. `data` is the file, read by pydicom `shift` bytes further on (a preamble added). A
    file meta with no dataset after it is cut off too."""
    meta = getattr(ds, "file_meta", None) or pydicom.Dataset()
    if meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        return None  # positions in the inflated dataset are not the file's
    last = max((e for part in (meta, ds) for e in part.elements()), key=_position, default=None)
    if last is None or _position(last) < 0:
        return None if len(ds) else "before its dataset"
    at = _position(last) - shift
    length = _declared_length(last, data, at, getattr(ds, "original_encoding", (False, True)))
    if length is not None and at + length > len(data):
        return f"inside the value of element {last.tag}"
    if length is not None and 0 < len(data) - at - length < 8 and data[at + length:].strip(b"\0"):  # zeros: padding
        return "inside an element's header"
    return None if len(ds) else "before its dataset"


def _position(elem) -> int:
    """Where an element's value starts in what pydicom read (-1 when not known): a raw element's value_tell, the
    file_tell of one pydicom converted as it read (the character set, an empty value, a sequence of undefined
    length)."""
    at = getattr(elem, "value_tell", None) if isinstance(elem, RawDataElement) else getattr(elem, "file_tell", None)
    return at if isinstance(at, int) else -1


def _declared_length(elem, data: bytes, at: int, encoding: tuple) -> int | None:
    """The length an element's header gives its value, which starts at byte `at` of `data`; None when undefined.
    A converted element's is read from its header (the file meta is explicit VR little endian)."""
    if isinstance(elem, RawDataElement):
        length = elem.length
    else:
        implicit, little = encoding if elem.tag.group != 2 else (False, True)
        wide = bool(implicit) or str(elem.VR).encode() in _LONG_VRS
        field = data[at - (4 if wide else 2):at] if at >= 4 else b""
        length = int.from_bytes(field, "little" if little is not False else "big") if field else None
    return None if length is None or length == 0xFFFFFFFF else length


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


_LITTLE, _BIG = b"1.2.840.10008.1.2.1", b"1.2.840.10008.1.2.2"  # explicit VR, the same length
_FIRST_GROUPS = (0x0004, 0x0008)  # a dataset starts with a DICOMDIR's group or the identifying group


def _byte_order_set_right(data: bytes, declared: bytes, start: int) -> tuple[bytes, str | None]:
    """`data` with its file meta's transfer syntax (`declared`, Explicit VR Little or Big Endian) set to the other
    byte order when the dataset after it (at `start`) is written in that one (its first tag reads as group 0008 only
    so: a writer that named the wrong syntax), and a note saying so; else `data` as it is and None. pydicom would
    read every tag byte-swapped, and stop at once. The same length: positions in it stay those of the file."""
    little, big = (int.from_bytes(data[start:start + 2], order) for order in ("little", "big"))
    if little != big and (little in _FIRST_GROUPS) != (big in _FIRST_GROUPS):
        found = _LITTLE if little in _FIRST_GROUPS else _BIG
        at = data.find(b"\x02\x00\x10\x00UI", 132, start)
        if found != declared and at > 0 and data[at + 8:at + 8 + len(declared)] == declared:
            said, read = ("big", "little") if declared == _BIG else ("little", "big")
            return (data[:at + 8] + found + data[at + 8 + len(found):],
                    f"its transfer syntax says explicit VR {said} endian, but the dataset is {read} endian: read so")
    return data, None


class _TooLarge(ValueError):
    """A deflated dataset that inflates past max_input_bytes."""


def read(data: bytes, max_bytes: int) -> tuple[pydicom.Dataset, str | None]:
    """pydicom.dcmread, and a note when the file meta names the wrong byte order (`_byte_order_set_right`: read in
    the dataset's own), except that a Deflated Explicit VR Little Endian dataset is inflated here under
    `max_bytes`: pydicom would inflate it whole, and a small file can inflate to gigabytes."""
    if _no_preamble(data):  # pydicom finds DICM only after a preamble
        data = bytes(128) + data
    fp = io.BytesIO(data)
    try:
        preamble = read_preamble(fp, True)
        meta = _read_file_meta_info(fp)
    except Exception:
        meta = None
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if syntax != DeflatedExplicitVRLittleEndian:
        note = None
        if syntax.encode() in (_LITTLE, _BIG):  # implicit VR, compressed: left to pydicom
            data, note = _byte_order_set_right(data, syntax.encode(), fp.tell())
        return pydicom.dcmread(io.BytesIO(data), force=True), note
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
    return ds, None


def _encapsulated(ds: pydicom.Dataset, blob: Blob, ctx: Context, sop: str, where: str | None) -> Iterator[Item]:
    """A PDF inside a DICOM file (scanned reports, referral letters) is opened like any PDF, its images
    keeping the DICOM file as their origin; other documents (CDA XML, 3-D models) are a skipped note. A file cut
    off (`where`, from `_cut_before_pixels`) is an error saying so, then what there is of its PDF is read."""
    doc = ds.get("EncapsulatedDocument")
    data = bytes(doc) if isinstance(doc, (bytes, bytearray)) else b""
    if where:  # else only MuPDF's repair note and its broken images would say it
        inside = "(0042,0011)" in where  # Encapsulated Document
        yield ItemError(blob.origin, "", f"DICOM file ({sop}) is cut off "
                        f"{'inside its encapsulated document' if inside else where}"
                        f"{'; what there is of its PDF is read' if b'%PDF' in data[:1024] else ''}")
    if b"%PDF" not in data[:1024]:
        if not where:
            yield ItemError(blob.origin, "", f"DICOM holds an encapsulated document ({sop}), not an image",
                            skipped=True)
        return
    if blob.depth + 1 > ctx.limits.max_depth:
        yield ItemError(blob.origin, "", f"encapsulated PDF nested deeper than max_depth ({ctx.limits.max_depth})")
        return
    yield from ctx.open_blob(Blob(blob.origin, data.rstrip(b"\x00"), name="document.pdf", depth=blob.depth + 1))


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


def _fill_image_pixel(ds: pydicom.Dataset) -> str | None:
    """Image Pixel elements a file leaves out, set to the value that alone fits the rest (one sample is
    MONOCHROME2; a monochrome or palette image has one sample; every allocated bit stored); a note naming them, or
    None. Values present, right or wrong, are left as they are, and so is a missing Pixel Representation (signed
    values read as unsigned would be another picture)."""
    set_ = []
    pi = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if "SamplesPerPixel" not in ds and (pi.startswith("MONOCHROME") or pi == "PALETTE COLOR" or
                                        not pi and not _three_samples_fit(ds)):
        ds.SamplesPerPixel = 1
        set_.append("SamplesPerPixel (1 assumed)")
    if "PhotometricInterpretation" not in ds and int_or(ds.get("SamplesPerPixel"), 0) == 1:
        ds.PhotometricInterpretation = "MONOCHROME2"
        set_.append("PhotometricInterpretation (MONOCHROME2 assumed)")
    if "BitsStored" not in ds and int_or(ds.get("BitsAllocated"), 0) > 0:
        ds.BitsStored = int_or(ds.BitsAllocated, 0)
        set_.append(f"BitsStored ({ds.BitsStored} assumed)")
    return f"the file leaves out {', '.join(set_)}" if set_ else None


def _three_samples_fit(ds: pydicom.Dataset) -> bool:
    """Whether uncompressed pixel data holds its frames three times over: a colour picture (RGB) as well as one
    sample, so neither is assumed (read as grey, its red, green and blue would be three pixels)."""
    value = ds.get("PixelData")
    if not isinstance(value, (bytes, bytearray)) or value[:4] == b"\xfe\xff\x00\xe0":  # compressed: its codec says
        return False
    frame = int_or(ds.get("Rows"), 0) * int_or(ds.get("Columns"), 0) * (-(-int_or(ds.get("BitsAllocated"), 0) // 8))
    return frame > 0 and len(value) >= 3 * frame * max(int_or(ds.get("NumberOfFrames"), 1), 1)


def metadata(ds: pydicom.Dataset) -> dict:
    """Technical tags only; nothing that names or dates a patient or a study. A value that does not look like
    its kind (a damaged length makes pydicom read the next elements, names and IDs, into it) is left out."""
    out: dict = {}
    for key in _KEEP:
        value = ds.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, int):
            out[key] = int(value)  # plain: pydicom's IS (NumberOfFrames) shows as the string '2' in a repr
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
    capitals, digits and spaces, whole numbers (IS), and other text of up to 64 printable characters."""
    parts = [str(v) for v in value] if isinstance(value, (list, pydicom.multival.MultiValue)) else [str(value)]
    vr = pydicom.datadict.dictionary_VR(key)
    for part in parts:
        if vr == "CS" and not _CODE.fullmatch(part.strip() or "X"):
            return None
        if vr == "IS" and not re.fullmatch(r"[+-]?\d{1,12}", part.strip()):  # NumberOfFrames: any text pydicom kept
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


def _float(value) -> float | None:
    """A positive finite number, or None."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if 0 < v < float("inf") else None


def _sop_name(ds: pydicom.Dataset) -> str:
    uid = _sop_uid(ds)
    if uid:
        return str(pydicom.uid.UID(uid).name or uid)
    given = ds.get("SOPClassUID") or getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", None)
    return "invalid SOP class UID" if given else "unknown SOP class"


def _scrub(exc: Exception, ds: pydicom.Dataset) -> str:
    """An exception's text with every textual header value removed, and kept short: pydicom's "all plugins
    failed" text becomes one line, each plugin's reason after its name, without object addresses. The values go
    before the text is cut into lines: a value a damaged length ran on over the next element holds that element's
    length bytes, and a form feed or line feed there would split the value (and its name) across two lines."""
    raw = str(exc)
    values = set()
    try:
        for elem in ds.iterall():
            if elem.VR in _TEXT_VRS | {"CS"} and elem.value not in (None, ""):
                parts = elem.value if isinstance(elem.value, (list, pydicom.multival.MultiValue)) else [elem.value]
                values.update(s for s in (str(p).strip() for p in parts) if len(s) >= 3
                              and (elem.VR != "CS" or not _CODE.fullmatch(s)))  # a code says who nobody is
    except Exception:  # a header pydicom cannot walk (an ambiguous VR it cannot resolve)
        if not isinstance(exc, AttributeError):  # that names a missing element or attribute, not a header value
            return f"{type(exc).__name__} (details left out: the header could not be read to remove its values)"
    for value in sorted(values, key=len, reverse=True):
        raw = raw.replace(value, "[…]")
    lines = [line.strip() for line in raw.splitlines() if line.strip()]
    if lines and lines[0].startswith("Unable to decode as exceptions were raised by all available plugins"):
        text = "no decoder could read it (" + "; ".join(lines[1:]) + ")"
    else:
        text = f"{type(exc).__name__}: {' '.join(lines)}"
    text = re.sub(r"\s*<[\w.]+ object at 0x[0-9a-f]+>", "", text)  # Pillow names the BytesIO it was given
    return text if len(text) <= 300 else text[:299] + "…"


register(SourcePlugin("dicom", accepts, open_dicom, priority=10))
