"""DICOM grey levels: one decoded frame and its dataset in, an 8-bit image out (`to_image`). The modality LUT or
rescale, the VOI LUT or window (or the CT window for a CT without one), padding, MONOCHROME1 and Presentation LUT
inversion, and the palettes (palette colour, supplemental, enhanced) are applied a strip of rows at a time, so a
frame at the pixel cap never has a float copy. `strips` and `to_uint8` serve nifti.py too.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pydicom
from PIL import Image
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut
from pydicom.uid import UID, ExplicitVRBigEndian

from ..levels import CT_WINDOW, looks_like_hu
from . import dicom_segments as segments

STRIP = 1 << 21  # values converted at a time: float64 copies of a whole 100 Mpx frame would take gigabytes


class BadLut(ValueError):
    """A palette or VOI lookup table whose descriptor and data disagree."""


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
            or int_or(ds.get("BitsStored"), 16) <= 8 or _window(ds, index)[0] is not None \
            or str(ds.get("PhotometricInterpretation", "")).strip().upper() not in ("MONOCHROME1", "MONOCHROME2"):
        return False
    step = max(1, int(np.ceil(np.sqrt(arr.size / CT_SAMPLE))))
    values = _modality(arr[::step, ::step], ds, index)
    finite = np.isfinite(values)
    return looks_like_hu(values if finite.all() else values[finite])  # a copy only when some value is not


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
        top = float(2 ** int_or(ds.get("BitsStored"), 8) - 1)
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
        if lo < 0 <= hi and str(ds.get("Modality", "")).strip().upper() == "PT":
            lo = 0.0  # PET activity (its Rescale Intercept is 0, PS3.3 C.8.9.4) below zero is noise or a stand-in
            # value such as -32768: drawn black, so that one such pixel cannot turn the background grey
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
    bits = int_or(ds.RedPaletteColorLookupTableDescriptor[2], 16)
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
    count, bits = int_or(desc[0], 0) or 65536, int_or(desc[2], 16)
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
    first, count = int_or(ds.RedPaletteColorLookupTableDescriptor[1], 0), \
        int_or(ds.RedPaletteColorLookupTableDescriptor[0], 0) or 65536
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
        bits = int_or(assigned[0].get("BitsMappedToColorLookupTable"), 0)
        stored = int_or(ds.get("BitsStored"), 16)
        if not 1 <= bits <= 16 or (path == "PRIMARY_SINGLE" and stored > bits):
            return None, why.format(f"{bits} bits mapped")
        luts = _palette_luts(item, ds) if rgb == "TABLE" else None
    except Exception:
        return None, why.format("incomplete or invalid")
    return {"pvalues": path == "PRIMARY_PVALUES", "bits": bits, "weight": min(max(weight, 0.0), 1.0),
            "luts": luts}, None


def _palette_luts(item: pydicom.Dataset, ds: pydicom.Dataset) -> tuple[int, np.ndarray, float]:
    """(first value mapped, entries × R G B, largest entry) of a palette's plain Red/Green/Blue data."""
    count, first, bits = (int_or(v, 0) for v in item.RedPaletteColorLookupTableDescriptor)
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
    if center is None or width is None or not (np.isfinite(center) and np.isfinite(width)):
        return None, 0.0, 0.0  # a damaged header's NaN or infinity drew every pixel alike (black, or mid-grey)
    function = str(voi.get("VOILUTFunction", "LINEAR")).strip().upper()
    if function == "LINEAR_EXACT" and width > 0:
        # PS3.3 C.11.2.1.3.2: any width above 0 (a float map's, e.g. an ADC map's 0.002 mm²/s), no half-value shift
        return (lambda v: np.clip((v - center) / width + 0.5, 0.0, 1.0)), 0.0, 1.0
    if width >= 1:
        # PS3.3 C.11.2.1.2: LINEAR window, mapped straight to 0..1
        if function == "SIGMOID":
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


def int_or(value, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default
