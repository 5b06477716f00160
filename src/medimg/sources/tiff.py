"""TIFF pages Pillow cannot read, or reads as other numbers, read with tifffile (files.py hands them here).

Scientific and medical tools write layouts Pillow's TIFF table lacks: float16 grey, float or 32-bit RGB,
uncompressed YCbCr, 16-bit or float grey with alpha, MinIsWhite grey with alpha, 10- and 12-bit RGB, grey
with extra channels (fluorescence saved without ImageJ or OME metadata). Pillow also reads signed 8-bit grey
as unsigned and unsigned 32-bit grey as signed, uncompressed planar RGB of 16 bits as 8-bit samples, and a
palette whose ColorMap holds 8-bit values as black. A file cut short is named so (`past_end`, `ifd_past_end`).

Nothing is decoded before the header is checked: the page's pixels and a tile's against `max_pixels`, and
its decoded bytes against BYTES_PER_PIXEL × `max_pixels`. Compressions whose decoder fills a buffer of the tile's
size are decoded; so are JPEG 2000, WebP, JPEG XL and LERC tiles once each one's own header names its tile's
size (tiff_tiles.py); other picture codecs (JPEG XR, PNG) name their own size unchecked, so such a page stays an
error. 16-bit Lab, ICC Lab, 16-bit palettes and chroma-subsampled uncompressed YCbCr are converted too.

A page comes out as Pillow gives the pages it reads, for the model's usual treatment (model/preprocess.py):
grey as L, I;16 or F (which the model stretches by its percentiles), MinIsWhite inverted; RGB and YCbCr as
8-bit RGB (integers by their bit depth, as Pillow gives 16-bit RGB, or by the depth their values reach when
that is less and at most CAMERA_BITS: a 12-bit camera's; floats and signed integers stretched as the model
stretches grey); alpha kept, un-premultiplied, for the model to lay on white; several grey channels merged in
colour as microscopy.py merges a stack's. A file whose chain of pages points past its end is named cut short."""

from __future__ import annotations

import io
import itertools
from typing import Iterator

import numpy as np
from PIL import Image

from ..levels import STRIP, stretch_levels
from .base import ImageItem, Item, ItemError, Limits
from .files import profile_to_srgb
from .microscopy import IMAGEJ_COLOURS, composite
from .tiff_tiles import CHECKED, damaged_segment, segment_name, segments, tiles_problem

BYTES_PER_PIXEL = 4  # decoded bytes a page may take for each pixel max_pixels allows (Pillow's RGBA or F)
# none, LZW, Deflate (two codes), PackBits, LZMA, Zstandard (two codes): each decodes into a tile-sized buffer
DECODED = {1, 5, 8, 32946, 32773, 34925, 50000, 34926}
MINISWHITE, MINISBLACK, RGB, PALETTE, YCBCR, CIELAB, ICCLAB = 0, 1, 2, 3, 6, 8, 9
COLOUR = (RGB, YCBCR, CIELAB, ICCLAB)  # photometrics of three colour samples


class TiffPages:
    """One TIFF's pages through tifffile, parsed on first use."""

    def __init__(self, data: bytes, origin: str, limits: Limits):
        self.data, self.origin, self.limits = data, origin, limits
        self.tif = None
        self.opened = self.broken = False  # broken: a page's IFD could not be read, so neither can those after it
        self.offsets: dict[int, int] = {}  # each page's IFD offset, in order: a chain of pages that loops ends there
        self.end: int | None = None  # the pages there are, once the chain's end (or loop) is found

    def _page(self, index: int):
        """tifffile's page, or None when there is no such page or tifffile cannot parse the file; raises for
        a damaged IFD."""
        if not self.opened:
            self.opened = True
            try:
                import tifffile

                self.tif = tifffile.TiffFile(io.BytesIO(self.data), _multifile=False)
            except Exception:
                self.tif = None
        if self.tif is None or self.end is not None and index >= self.end:
            return None
        while len(self.offsets) <= index:  # each page before it first: tifffile's indexing follows a loop forever
            try:
                offset = self.tif.pages[len(self.offsets)].offset
            except IndexError:
                offset = None
            if offset is None or offset in self.offsets:
                self.end = len(self.offsets)
                return None
            self.offsets[offset] = len(self.offsets)
        return self.tif.pages[index]

    def has(self, index: int) -> bool:
        try:
            return self._page(index) is not None
        except Exception:
            return True  # a damaged page is still one

    def item(self, index: int, locator: str) -> Item | None:
        """The page as an item (or why not); None when there is no such page or tifffile cannot parse the file."""
        try:
            page = self._page(index)
        except Exception as exc:
            self.broken = True
            return ItemError(self.origin, locator, f"could not read page: {exc}")
        return None if page is None else page_item(page, self.origin, locator, self.limits)

    def after(self, start: int) -> Iterator[Item]:
        """Pages `start` on (`page N`), when there are any: those after the one where Pillow's reading of the chain
        ended (an IFD cut short)."""
        try:  # the chain walked first, reading only each IFD's next offset (it ends where it loops back)
            more = start > 0 and self.has(0) and self.tif is not None and len(self.tif.pages) > start
        except Exception:
            more = False
        if not more:
            return
        for i in itertools.count(start):
            item = self.item(i, f"page {i + 1}")
            if item is None:
                why = self.missing(i)
                if why:
                    yield ItemError(self.origin, f"page {i + 1}", why)
                return
            yield item
            if self.broken:
                return

    def cut(self, index: int) -> str | None:
        """Which strip or tile of page `index` runs past the end of the file (a file cut short), or None."""
        try:
            page = self._page(index)
        except Exception:
            return None
        return past_end(page) if page is not None else None

    def missing(self, index: int) -> str | None:
        """Why page `index` is not there when the page before it is: its IFD would start past the file's end (a
        file cut short); None when that is not why."""
        try:
            before = self._page(index - 1) if index else None
        except Exception:
            return None
        return ifd_past_end(before, len(self.data)) if before is not None else None

    def close(self) -> None:
        if self.tif is not None:
            self.tif.close()


def tiff_items(data: bytes, origin: str, limits: Limits, error: ItemError) -> Iterator[Item]:
    """Every page of a TIFF Pillow cannot open, one at a time (callers cap the count), `page N` when there are
    several; `error` (Pillow's) when tifffile cannot parse it either."""
    pages = TiffPages(data, origin, limits)
    try:
        several = pages.has(0) and pages.has(1)
        for i in itertools.count():
            item = pages.item(i, f"page {i + 1}" if several else "")
            if item is None:
                why = pages.missing(i) if i else None  # its next IFD past the file's end (a stack cut short)
                if i == 0 or why:
                    yield error if i == 0 else ItemError(origin, f"page {i + 1}", why)
                return
            yield item
            if pages.broken:
                return
    finally:
        pages.close()


def misread_by_pillow(im: Image.Image) -> bool:
    """Whether Pillow opened a TIFF page as other numbers: grey signed 8-bit as unsigned, unsigned 32-bit as
    signed; planar RGB of more than 8 bits, uncompressed (its own decoder reads each plane as 8-bit samples); a
    palette whose ColorMap holds 8-bit values (older writers'; Pillow takes each value's top 8 of 16 bits, all 0:
    a black picture)."""
    try:
        bits, formats = im.tag_v2.get(258, (1,)), im.tag_v2.get(339, (1,))
        bits, formats = tuple(np.atleast_1d(bits)), tuple(np.atleast_1d(formats))
        planar_raw = im.tag_v2.get(284) == 2 and max(bits) > 8 and any(t[0] == "raw" for t in im.tile)
        colormap = im.tag_v2.get(320) if im.tag_v2.get(262) == PALETTE else None
        eight_bit_map = bool(colormap) and max(colormap) < 256
    except Exception:
        return False
    return planar_raw or eight_bit_map or len(bits) == 1 and (bits, formats[:1]) in (((8,), (2,)), ((32,), (1,)))


def page_item(page, origin: str, locator: str, limits: Limits) -> Item:
    """One page as an ImageItem, or why not; refused from its header before anything is decoded."""
    try:
        problem = _problem(page, limits.max_pixels)
    except Exception as exc:
        problem = f"corrupt TIFF page: {exc}"
    if not problem:
        try:
            problem = tiles_problem(page)
        except Exception as exc:
            problem = f"corrupt TIFF page: {exc}"
    if problem:
        return ItemError(origin, locator, problem)
    try:
        image = _image(_subsampled(page) if page.is_subsampled else page.asarray(maxworkers=1), page)
        image = _upright(image, page)
        image = profile_to_srgb(image, _profile(page))
    except Exception as exc:
        cut = past_end(page)
        if cut:
            return ItemError(origin, locator, f"corrupt or truncated TIFF image: {cut}")
        where = damaged_segment([page]) if len(page.dataoffsets) > 1 else None
        if where:  # named: `tile 6 (column 6, row 1) does not decode (…)`
            segment, _, reason = where.partition(": ")
            return ItemError(origin, locator,
                             f"corrupt or truncated TIFF image: its {segment} does not decode ({reason})")
        return ItemError(origin, locator, f"corrupt or truncated TIFF image: {exc}")
    meta = {"mode": image.mode, "dtype": str(page.dtype), "samples": int(page.samplesperpixel)}
    if image.mode in ("RGB", "RGBA") and np.dtype(page.dtype) == np.uint16:
        meta["bits"] = 16  # as for Pillow's pages: the file's, its pixels here having 8 bits a channel
    return ImageItem(origin, locator, image, "TIFF", meta)


def ifd_past_end(page, size: int) -> str | None:
    """Why the page after `page` is not there: its IFD would start past the end of a file of `size` bytes (a file
    cut short); None when the chain ends there or goes on within the file."""
    try:
        t, fh = page.parent.tiff, page.parent.filehandle
        fh.seek(page.offset)
        n = int.from_bytes(fh.read(t.tagnosize), "little" if t.byteorder == "<" else "big")
        fh.seek(page.offset + t.tagnosize + n * t.tagsize)
        raw = fh.read(t.offsetsize)
    except Exception:
        return None
    at = int.from_bytes(raw, "little" if t.byteorder == "<" else "big") if len(raw) == t.offsetsize else size
    if at + t.tagnosize <= size:
        return None
    return (f"the file ends before page {page.index + 2}: its IFD would be at byte {at:,}, past the end of the "
            f"file ({size:,} bytes); truncated or damaged")


def past_end(page) -> str | None:
    """The first strip or tile whose bytes run past the end of the file (a download cut short), named; None when
    every one is within it."""
    try:
        size = page.parent.filehandle.size
        for n, (offset, count) in enumerate(zip(page.dataoffsets, page.databytecounts)):
            if count and offset + count > size:
                return (f"its {segment_name(page, n)} ends at byte {offset + count:,}, past the end of the file "
                        f"({size:,} bytes): the file is truncated")
    except Exception:
        return None
    return None


def _problem(page, max_pixels: int) -> str | None:
    """Why a page is not decoded, from its header alone; None when it may be."""
    w, h, depth = page.imagewidth, page.imagelength, max(page.imagedepth, 1)
    if w * h * depth > max_pixels:
        return f"image is {w}×{h} = {w * h:,} pixels, over the max_pixels cap of {max_pixels:,}; not decoded"
    if page.is_tiled and page.tilewidth * page.tilelength * max(page.tiledepth, 1) > max_pixels:
        return (f"image has tiles of {page.tilewidth:,}×{page.tilelength:,} pixels, over the max_pixels cap of "
                f"{max_pixels:,}; not decoded")
    if (w == 0 or h == 0) and (256 not in page.tags or 257 not in page.tags):
        return "TIFF holds no image: no ImageWidth or ImageLength tag (metadata only, such as an EXIF block)"
    if w == 0 or h == 0:
        return f"image has no pixels ({w}×{h})"
    layout = _layout_problem(page)
    if layout:
        return f"TIFF layout not supported: {layout}"
    samples = int(page.samplesperpixel)
    size = w * h * depth * samples * np.dtype(page.dtype).itemsize
    if size > BYTES_PER_PIXEL * max_pixels:
        return (f"image is {w}×{h} pixels of {samples} {page.dtype} sample(s), {size:,} bytes decoded: over the "
                f"{BYTES_PER_PIXEL} bytes a pixel of the max_pixels cap of {max_pixels:,}; not decoded")
    return None


def _layout_problem(page) -> str | None:
    compression = int(page.compression)
    if compression not in DECODED and compression not in CHECKED:
        name = getattr(page.compression, "name", compression)
        return (f"{name} compression (decoded here: none, LZW, Deflate, PackBits, LZMA, Zstandard; JPEG 2000, "
                f"WebP, JPEG XL and LERC with each tile's own size checked)")
    if page.dtype is None:
        return f"samples of SampleFormat {int(page.sampleformat)}, {page.bitspersample}-bit"
    if np.dtype(page.dtype).kind not in "biuf":
        return f"{page.dtype} samples"
    photometric = int(page.photometric)
    if photometric not in (MINISWHITE, MINISBLACK, PALETTE, *COLOUR):
        return f"photometric {getattr(page.photometric, 'name', photometric)}"
    if photometric in COLOUR and page.samplesperpixel < 3:
        return f"{page.photometric.name} with {page.samplesperpixel} sample(s)"
    if photometric in (CIELAB, ICCLAB) and (page.bitspersample not in (8, 16) or np.dtype(page.dtype).kind == "f"):
        return f"{page.photometric.name} of {page.bitspersample}-bit {page.dtype} samples"
    if photometric == PALETTE and (page.samplesperpixel != 1 or page.colormap is None):
        return f"palette with {page.samplesperpixel} sample(s){'' if page.colormap is not None else ', no colormap'}"
    if photometric == YCBCR and page.is_subsampled:
        h, v = page.subsampling
        if compression != 1 or page.bitspersample != 8 or page.samplesperpixel != 3 or int(page.planarconfig) != 1:
            return "chroma-subsampled YCbCr other than uncompressed 8-bit (or JPEG, which Pillow reads)"
        if h not in (1, 2, 4) or v not in (1, 2, 4) or v > h:
            return f"chroma subsampling {h}×{v}"
    if page.axes.replace("S", "") != "YX":
        return f"pages of axes {page.axes} (a volume)"
    return None


def _image(arr: np.ndarray, page) -> Image.Image:
    """The decoded samples as Pillow would give such a page (module docstring)."""
    arr = np.moveaxis(arr, page.axes.index("S"), -1) if "S" in page.axes else arr[..., None]
    arr = arr.view(np.uint8) if arr.dtype == bool else arr
    kind, bits, photometric = arr.dtype.kind, int(np.max(page.bitspersample)), int(page.photometric)
    whole = (0.0, 1.0) if kind == "f" else (0.0, float(_top(bits)))  # the type's range, for a blank page
    colours = 3 if photometric in COLOUR else 1
    extras = list(page.extrasamples) + [0] * arr.shape[-1]  # ExtraSamples: 1 associated, 2 unassociated alpha
    alpha_at = next((k for k in range(colours, arr.shape[-1]) if extras[k - colours] in (1, 2)), None)
    # RGB: its three samples; grey: every sample but alpha (more than one are channels, as a stack's)
    channels = range(3) if colours == 3 else [k for k in range(arr.shape[-1]) if k != alpha_at]
    planes = [arr[..., k] for k in channels]
    alpha = None
    if alpha_at is not None:
        alpha = alpha_levels(arr[..., alpha_at], kind, bits)
        if extras[alpha_at - colours] == 1:  # premultiplied: divided back out
            factor = np.maximum(alpha, 1, dtype=np.float32)
            factor = np.divide(255, factor, out=factor)  # once, in place, for every plane
            planes = [p * factor for p in planes[:-1]] + [np.multiply(planes[-1], factor, out=factor)]
            del factor  # the last plane now
    if photometric == MINISWHITE:
        planes = [1.0 - p if kind == "f" else -1 - p if kind == "i" else _top(bits) - p for p in planes]
    if photometric == YCBCR:
        image = _ycbcr_to_rgb(planes, page, bits)
    elif photometric in (CIELAB, ICCLAB):
        image = Image.fromarray(_lab8(planes, photometric), "LAB").convert("RGB")  # (merge would shift a*, b* by 128)
    elif photometric == PALETTE:
        image = Image.fromarray(_palette(planes[0], page.colormap), "RGB")
    elif colours == 3:
        keep = alpha > 0 if alpha is not None else None
        used = bits_reached(planes, kind, bits)
        # floats, and signed integers (a signed 16-bit picture's values fill a sliver of its type's range: read
        # from its lowest value it was flat grey), stretched as the model stretches grey
        rgb = stretch_levels(planes, whole, keep) if kind in "fi" else [to8(p, kind, used) for p in planes]
        image = Image.merge("RGB", [Image.fromarray(p, "L") for p in rgb])
    elif len(planes) > 1:  # fluorescence channels, each stretched and coloured
        untouched = alpha_at is None and photometric != MINISWHITE  # the planes are every sample of arr, as stored
        stack = np.moveaxis(arr, -1, 0) if untouched else np.stack(planes)  # a view: not a copy of each channel
        image = composite(stack, "YX", [IMAGEJ_COLOURS[k % 7] for k in range(len(planes))])
    else:
        image = _grey(planes[0], kind, bits, whole, alpha)
    if alpha is None:
        return image
    return Image.merge("LA" if image.mode == "L" else "RGBA", [*image.split(), Image.fromarray(alpha, "L")])


def _profile(page) -> bytes | None:
    """The page's ICC profile (InterColorProfile, tag 34675), or None; its pixels are converted to sRGB by it,
    as Pillow's pages' are."""
    tag = page.tags.get(34675)
    value = tag.value if tag is not None else None
    return bytes(value) if isinstance(value, (bytes, bytearray)) and value else None


def _upright(image: Image.Image, page) -> Image.Image:
    """The image turned by the page's Orientation tag, as Pillow's pages are (EXIF orientation)."""
    tag = page.tags.get(274)
    turn = _TURNS.get(int(tag.value) if tag is not None else 1)
    return image.transpose(turn) if turn is not None else image


_TURNS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
          5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
          8: Image.Transpose.ROTATE_90}


def _grey(plane: np.ndarray, kind: str, bits: int, whole: tuple[float, float],
          alpha: np.ndarray | None) -> Image.Image:
    """One grey plane: L when 8 bits or fewer, I;16 for up to 16, else F (the model stretches those two); with
    alpha, 16-bit and float grey are stretched here as the model would, its opaque pixels only."""
    if kind == "u" and bits <= 8:
        return Image.fromarray(to8(plane, kind, bits), "L")
    if alpha is not None:
        return Image.fromarray(stretch_levels([plane], whole, alpha > 0)[0], "L")
    if plane.dtype == np.uint16:
        return Image.fromarray(plane)  # I;16
    return Image.fromarray(plane.astype(np.float32))  # F


CAMERA_BITS = 14  # the deepest camera's samples (10, 12 or 14 bits): values reaching 15 bits are a dark image's


def bits_reached(planes: list[np.ndarray], kind: str, bits: int) -> int:
    """The bit depth unsigned colour samples of more than 8 bits reach (at least 8) when that is CAMERA_BITS or
    fewer: a 10-, 12- or 14-bit camera's values stored in 16 bits are shown by their own depth, as their top 8 bits
    of 16 are nearly black. A 16-bit photo that is merely dark (its brightest at a third of white) is left so."""
    if kind != "u" or bits <= 8:
        return bits
    reached = max(8, max(int(np.max(p)) for p in planes).bit_length())
    return min(bits, reached) if reached <= CAMERA_BITS else bits


def _top(bits: int) -> int:
    return (1 << bits) - 1


def to8(plane: np.ndarray, kind: str, bits: int) -> np.ndarray:
    """Integer samples as 8-bit levels of their bit depth's range: the top 8 bits (as Pillow gives 16-bit RGB),
    fewer bits spread over 0–255; signed ones from their lowest value."""
    if kind == "u" and plane.dtype.kind == "u" and bits >= 8:  # tifffile's samples never pass their bit depth
        return np.right_shift(plane, bits - 8, out=np.empty(plane.shape, np.uint8), casting="unsafe")  # no 16-bit copy
    values = plane.astype(np.float32)
    if kind == "i":
        values += 1 << (bits - 1)
    values *= 1 / (1 << (bits - 8)) if bits >= 8 else 255 / _top(bits)
    return np.clip(values, 0, 255, out=values).astype(np.uint8)


def alpha_levels(alpha: np.ndarray, kind: str, bits: int) -> np.ndarray:
    """Alpha samples as 8-bit levels: integers by their bit depth, floats from 0 to 1."""
    if kind != "f":
        return to8(np.maximum(alpha, 0), "u", bits - (kind == "i"))
    return np.round(np.clip(np.nan_to_num(alpha.astype(np.float32)), 0, 1) * 255).astype(np.uint8)


def _ycbcr_to_rgb(planes: list[np.ndarray], page, bits: int) -> Image.Image:
    """Y, Cb, Cr samples as an RGB image, by the file's ReferenceBlackWhite and YCbCrCoefficients (TIFF 6.0,
    section 21; their defaults are JPEG's full-range BT.601), a strip of rows at a time pasted into it."""
    top, mid = _top(bits), 1 << (bits - 1)
    ref = _rationals(page, 532, 6) or [0, top, mid, top, mid, top]
    red, green, blue = _rationals(page, 529, 3) or [0.299, 0.587, 0.114]
    scale = [(top if k == 0 else mid - 1) / max(ref[2 * k + 1] - ref[2 * k], 1e-6) for k in range(3)]
    length, width = planes[0].shape
    image = Image.new("RGB", (width, length))
    rows = max(1, STRIP // max(width, 1))
    for at in range(0, length, rows):
        y, cb, cr = [(p[at:at + rows].astype(np.float32) - ref[2 * k]) * scale[k] for k, p in enumerate(planes)]
        r = cr * (2 - 2 * red) + y
        b = cb * (2 - 2 * blue) + y
        g = (y - blue * b - red * r) / green
        strip = np.stack([to8(np.clip(c, 0, top), "u", bits) for c in (r, g, b)], axis=-1)
        image.paste(Image.fromarray(strip, "RGB"), (0, at))
    return image


def _lab8(planes: list[np.ndarray], photometric: int) -> np.ndarray:
    """L*, a*, b* samples (8 or 16-bit; CIELab's a*, b* signed, ICCLab's offset by half their range) as the
    H × W × 3 bytes of Pillow's LAB mode (a*, b* signed), which Pillow converts to sRGB as it does 8-bit CIELab
    TIFFs (LittleCMS, D50 white)."""
    shift = 8 * (planes[0].dtype.itemsize - 1)
    out = np.empty(planes[0].shape + (3,), np.uint8)
    for k, p in enumerate(planes[:3]):
        out[..., k] = p.view(p.dtype.str.replace("i", "u")) >> shift  # two's complement: the top byte is signed
        if k and photometric == ICCLAB:
            out[..., k] ^= 0x80
    return out


def _palette(index: np.ndarray, colormap: np.ndarray) -> np.ndarray:
    """Palette indices (up to 16 bits) as RGB through the ColorMap, a strip of rows at a time; a colormap whose
    values all fit 8 bits is taken as 8-bit (as libtiff takes it), a 16-bit one by its top bits."""
    lut = colormap.T.astype(np.uint16)
    lut = (lut if lut.max() < 256 else lut >> 8).astype(np.uint8)
    out = np.empty(index.shape + (3,), np.uint8)
    rows = max(1, STRIP // max(index.shape[1], 1))
    for at in range(0, index.shape[0], rows):
        out[at:at + rows] = lut[np.minimum(index[at:at + rows], len(lut) - 1)]
    return out


def _subsampled(page) -> np.ndarray:
    """Uncompressed 8-bit YCbCr with subsampled chroma (TIFF 6.0, section 21: blocks of h × v Y samples, then
    one Cb and one Cr) as Y, Cb, Cr samples at full size, each chroma sample over its block; from the segments'
    bytes, which tifffile does not decode."""
    h, v = page.subsampling
    out = np.zeros((page.imagelength, page.imagewidth, 3), np.uint8)
    fh = page.parent.filehandle
    for n, (offset, count, (sw, sh), (ew, eh), (x0, y0)) in segments(page):
        across, down = -(-sw // h), -(-(sh if page.is_tiled else eh) // v)
        need = across * down * (h * v + 2)
        fh.seek(offset)
        raw = np.frombuffer(fh.read(min(count, need)), np.uint8)
        if raw.size < need:
            raise ValueError(f"segment {n + 1} has {raw.size:,} of its {need:,} bytes")
        units = raw.reshape(down, across, h * v + 2)
        y = units[..., :h * v].reshape(down, across, v, h).transpose(0, 2, 1, 3).reshape(down * v, across * h)
        block = out[y0:y0 + eh, x0:x0 + ew]
        block[..., 0] = y[:eh, :ew]
        for k in (1, 2):
            block[..., k] = np.repeat(np.repeat(units[..., h * v + k - 1], v, 0), h, 1)[:eh, :ew]
    return out


def _rationals(page, code: int, n: int) -> list[float] | None:
    """A tag of n rationals as floats (tifffile gives them as numerator, denominator pairs); None when absent."""
    tag = page.tags.get(code)
    if tag is None:
        return None
    values = [float(v) for v in np.ravel(tag.value)]
    if len(values) == 2 * n:
        values = [a / b if b else 0.0 for a, b in zip(values[::2], values[1::2])]
    return values if len(values) == n else None
