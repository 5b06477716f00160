"""DICOM frames: a dataset in, one frame's pixels out as an array (`read_frame`), each compressed frame's own header
checked against Rows/Columns before any decoder allocates what it declares; how many whole frames the pixel data
holds (`frames_held`); and for a whole-slide DICOM, the frame with the most tissue and the field of tiles around it
(`SlideTiles`, `most_tissue_frame`, `slide_field`). dicom.py decides which frames to read; dicom_levels.py turns them
into 8-bit images.
"""

from __future__ import annotations

import io
import struct
from itertools import islice

import numpy as np
import pydicom
from PIL import Image
from pydicom.encaps import encapsulate, generate_frames, get_frame
from pydicom.pixels import as_pixel_options, get_decoder, pixel_array
from pydicom.uid import (UID, AllTransferSyntaxes, ExplicitVRBigEndian, ExplicitVRLittleEndian, JPEG2000TransferSyntaxes,
                         JPEGBaseline8Bit, JPEGLSTransferSyntaxes, JPEGTransferSyntaxes, MPEGTransferSyntaxes)

from .base import recoverable
from .dicom_levels import int_or, strips, to_image

# JPEG XL transfer syntaxes (lossless, JPEG recompression, lossy; DICOM 2024), decoded through imagecodecs
JPEG_XL = {"1.2.840.10008.1.2.4.110", "1.2.840.10008.1.2.4.111", "1.2.840.10008.1.2.4.112"}
ENCAPSULATED_UNCOMPRESSED = "1.2.840.10008.1.2.1.98"  # Encapsulated Uncompressed Explicit VR Little Endian (2022)
# Encapsulated syntaxes whose frames declare their own size, which a decoder allocates whatever Rows/Columns say
FRAME_HEADERS = {**{uid: "JPEG" for uid in JPEGTransferSyntaxes + JPEGLSTransferSyntaxes},
                 **{uid: "JPEG 2000" for uid in JPEG2000TransferSyntaxes}, **{uid: "JPEG XL" for uid in JPEG_XL}}
# Start-of-frame markers of JPEG (all processes) and JPEG-LS (SOF55): height and width follow
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
SLIDE_SAMPLE = 32  # frames of a slide looked at to find tissue
MAX_FIELD_TILES = 8  # tile widths across the field pasted together around that frame
ENCAPSULATED = {uid for uid in AllTransferSyntaxes if UID(uid).is_encapsulated} | {ENCAPSULATED_UNCOMPRESSED}
NATIVE = set(AllTransferSyntaxes) - ENCAPSULATED
# YBR kinds defined for one family of transfer syntaxes only, whose decoders convert them (PS3.3 C.7.6.3.1.2); in
# any other syntax pydicom returns their samples unconverted, and what they mean is not defined
_YBR_ONLY_IN = {"YBR_ICT": ("JPEG 2000", set(JPEG2000TransferSyntaxes)),
                "YBR_RCT": ("JPEG 2000", set(JPEG2000TransferSyntaxes)),
                "YBR_PARTIAL_420": ("MPEG video", set(MPEGTransferSyntaxes))}


def read_frame(ds: pydicom.Dataset, index: int, n: int, max_pixels: int) -> np.ndarray:
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
    if kind == "JPEG XL":
        return _jxl_frame(ds, frame)
    try:
        return _pixels(ds, index, n)
    except Exception:
        fixed = _sequential_scans(frame) if syntax in _JPEG_PROCESSES else None
        if fixed is None:
            raise
        return _pixels(_alone(ds, fixed), 0, 1)


_JPEG_PROCESSES = set(JPEGTransferSyntaxes)  # JPEG baseline, extended (12-bit) and lossless, not JPEG-LS
_SEQUENTIAL_DCT = {0xC0, 0xC1, 0xC9}  # the frame headers of sequential DCT (Huffman, and arithmetic coding)
_IN_SCAN = {0x00, 0xFF, *range(0xD0, 0xD8)}  # stuffed bytes, fill bytes and restart markers inside a scan's data
_IMAGE_PIXEL = ("Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration",
                "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation")


def _sequential_scans(frame: bytes) -> bytes | None:
    """A sequential-DCT JPEG frame whose scan headers give other spectral selection or successive approximation
    values than a sequential scan's (Ss 0, Se 63, Ah Al 0), with those set; None for any other frame. libjpeg
    (DCMTK, GDCM) ignores them there with a warning, where pylibjpeg stops (error -1038): NEMA's NM1_JPLY (pydicom's
    JPEG-lossy.dcm) says Se 0, and so reads as pydicom's corrected copy of it."""
    out, pos, sequential, changed = bytearray(frame), 2, False, False
    while frame[:2] == b"\xff\xd8" and pos + 4 <= len(frame) and frame[pos] == 0xFF:
        marker, length = frame[pos + 1], int.from_bytes(frame[pos + 2:pos + 4], "big")
        if marker in (0xD9, 0xFF) or 0xD0 <= marker <= 0xD7:
            pos += 1 if marker == 0xFF else 2
            continue
        sequential |= marker in _SEQUENTIAL_DCT
        if marker == 0xDA:
            # past the component selectors: Ss, Se, then Ah and Al in one byte
            at = pos + 5 + 2 * frame[pos + 4] if pos + 4 < len(frame) else len(frame)
            if sequential and at + 3 <= len(frame) and frame[at:at + 3] != b"\x00\x3f\x00":
                out[at:at + 3], changed = b"\x00\x3f\x00", True
            pos += 2 + length
            while (pos := frame.find(b"\xff", pos)) >= 0 and pos + 1 < len(frame) and frame[pos + 1] in _IN_SCAN:
                pos += 1  # the entropy-coded data, to the next marker
            if pos < 0:
                break
            continue
        pos += 2 + length
    return bytes(out) if changed else None


def _alone(ds: pydicom.Dataset, frame: bytes) -> pydicom.Dataset:
    """A dataset of one encapsulated frame, `frame`, with `ds`'s Image Pixel attributes and transfer syntax."""
    one = pydicom.Dataset()
    one.file_meta = ds.file_meta
    for key in _IMAGE_PIXEL:
        if key in ds:
            one[key] = ds[key]
    one.PixelData = encapsulate([frame])
    return one


def _native(ds: pydicom.Dataset, frame: bytes) -> pydicom.Dataset:
    """A dataset of one frame of native pixels, `frame`, with `ds`'s Image Pixel attributes, as Explicit VR Little
    Endian (PS3.5 A.4.11: Encapsulated Uncompressed holds each frame so, in a fragment of its own)."""
    one = pydicom.Dataset()
    one.file_meta = pydicom.dataset.FileMetaDataset()
    one.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for key in _IMAGE_PIXEL:
        if key in ds:
            one[key] = ds[key]
    one.PixelData = frame
    return one


def _pixels(ds: pydicom.Dataset, index: int, n: int) -> np.ndarray:
    """pydicom's pixel_array without its copies, which double a big frame: native pixels as a read-only view
    of the pixel data, a single compressed frame as the decoder's own buffer."""
    syntax = str(getattr(ds, "file_meta", pydicom.Dataset()).get("TransferSyntaxUID", ""))
    if syntax == ENCAPSULATED_UNCOMPRESSED:  # pydicom has no decoder for it: each fragment is a frame's native bytes
        return _pixels(_native(ds, get_frame(ds.PixelData, index, number_of_frames=n)), 0, 1)
    pi = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if pi == "YBR_PARTIAL_422" or (pi in ("YBR_FULL", "YBR_FULL_422") and int_or(ds.get("BitsAllocated"), 8) > 8):
        return _ybr_pixels(ds, index if n > 1 else None, syntax, pi)
    if n == 1 and syntax in ENCAPSULATED:
        try:
            decoder = get_decoder(syntax)
        except NotImplementedError:  # pixel_array says so in its own words
            decoder = None
        if decoder is not None:
            return next(decoder.iter_array(ds, **as_pixel_options(ds)))[0]
    if int_or(ds.get("BitsAllocated"), 8) == 1 and syntax not in ENCAPSULATED and syntax != ExplicitVRBigEndian:
        return _bit_frame(ds, index if n > 1 else 0)
    allocated, stored = int_or(ds.get("BitsAllocated"), -1), int_or(ds.get("BitsStored"), 0)
    high = int_or(ds.get("HighBit"), stored - 1)
    plain = pi in ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB") and "PixelData" in ds
    if plain and syntax not in ENCAPSULATED and allocated in (8, 16, 32) and 0 < stored <= high < allocated:
        # the retired layout of PS3.5 8.1.1 (e.g. 12 bits stored, high bit 15: the value in the top bits, the low
        # ones unused), which pydicom does not read (it takes the low Bits Stored bits): the value moved down to
        # bit 0 here, its sign kept, by the same shifts pydicom uses to clear unused high bits
        cells = pixel_array(ds, index=index if n > 1 else None, view_only=True, correct_unused_bits=False,
                            allow_excess_frames=False)
        values = np.left_shift(cells, allocated - 1 - high)  # one copy, shifted back in place
        return np.right_shift(values, allocated - stored, out=values)
    # a view only when no unused high bits need clearing (else pydicom warns, and copies anyway)
    whole = stored == allocated
    # data past the declared frames is padding: pydicom would otherwise return it as more frames
    return pixel_array(ds, index=index if n > 1 else None, view_only=whole, allow_excess_frames=False)


def _ybr_pixels(ds: pydicom.Dataset, index: int | None, syntax: str, pi: str) -> np.ndarray:
    """A frame of YCbCr that pydicom does not turn into RGB, converted here by PS3.3 C.7.6.3.1.2's equations:
    YBR_FULL(_422) of more than 8 bits (pydicom converts 8 bits only), with the chroma offset and range
    scaled to Bits Stored, and the retired YBR_PARTIAL_422: native, limited range in YBR_FULL_422's layout; in a
    JPEG frame, the codestream's own full-range YCbCr, as libjpeg-based viewers show it."""
    native = syntax not in ENCAPSULATED
    options = {"as_rgb": False, "allow_excess_frames": False}
    if pi == "YBR_PARTIAL_422" and native:  # its Y1 Y2 Cb Cr layout read as YBR_FULL_422's: upsampled, values kept
        options["photometric_interpretation"] = "YBR_FULL_422"
    arr, props = get_decoder(syntax).as_array(ds, index=index, **options)
    if str(props.get("photometric_interpretation", pi)) not in (pi, "YBR_FULL"):
        return arr  # the decoder has converted it
    return _ybr_to_rgb(arr, int_or(ds.get("BitsStored"), 8 * arr.dtype.itemsize), pi == "YBR_PARTIAL_422" and native)


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


class SlideTiles:
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
        if self.jpeg is not None and i < len(self.jpeg) and self.jpeg[i][:3] == b"\xff\xd8\xff":
            # JPEG alone: Pillow decodes some formats (an icon) as it opens them, before their size is checked
            with Image.open(io.BytesIO(self.jpeg[i]), formats=["JPEG"]) as im:
                _check_frame_size("JPEG", im.size, int(self.ds.Columns), int(self.ds.Rows), self.max_pixels)
                if im.format == "JPEG" and im.mode == "RGB":
                    want = (im.width // reduce, im.height // reduce)
                    if reduce > 1:
                        im.draft("RGB", want)
                    return im.copy() if im.size == want else im.resize(want, Image.Resampling.BOX)
        full = to_image(read_frame(self.ds, i, self.n, self.max_pixels), self.ds, i).convert("RGB")
        return full.reduce(reduce) if reduce > 1 else full


def _reduce_for(tw: int, th: int, most: float) -> int:
    """The largest of 8, 4, 2, 1 that is at most `most` and divides both tile sides."""
    return next(f for f in (8, 4, 2, 1) if f <= most and tw % f == 0 and th % f == 0)


def most_tissue_frame(ds: pydicom.Dataset, n: int, meta: dict, tiles: SlideTiles) -> int:
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


def slide_field(ds: pydicom.Dataset, centre: int, n: int, max_pixels: int,
                 tiles: SlideTiles) -> tuple[Image.Image, dict] | None:
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


def frames_held(ds: pydicom.Dataset, n: int) -> int | None:
    """How many of `n` frames the pixel data holds (at most `n`), or None when it cannot tell: whole native frames,
    or encapsulated fragments (a frame takes at least one)."""
    data = next((ds.get(k) for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData") if k in ds), None)
    if not isinstance(data, (bytes, bytearray)):
        return None
    syntax = str(getattr(ds, "file_meta", pydicom.Dataset()).get("TransferSyntaxUID", ""))
    if syntax in ENCAPSULATED or syntax in JPEG_XL:
        held, pos = 0, 8 + int.from_bytes(data[4:8], "little")  # past the offset table
        while held < n and pos + 8 <= len(data) and data[pos:pos + 4] == b"\xfe\xff\x00\xe0":
            pos += 8 + int.from_bytes(data[pos + 4:pos + 8], "little")
            held += pos <= len(data)  # a whole fragment
        return held
    if syntax not in NATIVE:  # a private or unknown syntax
        return None
    pi = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    samples = 2 if pi in ("YBR_FULL_422", "YBR_PARTIAL_422") else int_or(ds.get("SamplesPerPixel"), 1)
    try:
        bits = int(ds.Rows) * int(ds.Columns) * max(samples, 1) * max(int_or(ds.get("BitsAllocated"), 8), 1)
    except Exception:
        return None
    return min(n, len(data) * 8 // max(bits, 1))


def slide_frames_problem(ds: pydicom.Dataset, n: int) -> str | None:
    """Why a slide's NumberOfFrames cannot be true, or None: more frames than its pixel data holds
    (an encapsulated frame takes at least one fragment), or than a TILED_FULL grid has places for."""
    held = frames_held(ds, n)
    if held is not None and held < n:
        return f"declares {n:,} frames, more than its pixel data holds ({held:,})"
    if str(ds.get("DimensionOrganizationType", "")).upper() == "TILED_FULL" and _sparse_positions(ds, n) is None:
        try:
            across = -(-int(ds.TotalPixelMatrixColumns) // int(ds.Columns))
            down = -(-int(ds.TotalPixelMatrixRows) // int(ds.Rows))
        except Exception:
            return None
        planes = max(int_or(ds.get("TotalPixelMatrixFocalPlanes"), 1), 1) * \
            max(int_or(ds.get("NumberOfOpticalPaths"), 1), 1)
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
