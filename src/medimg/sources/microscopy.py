"""Microscopy TIFFs (ImageJ hyperstacks, OME-TIFF): channels merged into one colour image, as Fiji shows them.

A fluorescence image is stored as one grey plane per channel, often 16-bit, often with z-slices and time
points; read page by page it would be many dim grey pictures. tifffile reads the layout (axes, pyramid
levels, channel colours) and decodes the planes (imagecodecs: LZW, JPEG, zstd, …). Each channel is
stretched to its 0.5–99.5 percentiles and added in its colour (the file's own, else ImageJ's red, green,
blue, grey, cyan, magenta, yellow; an OME channel without one gets its emission wavelength's, as the
Bio-Formats importer does). A dark-field channel (fluorescence: most pixels near black) goes up to its
brightest structure instead, so that a few cells in a dark field are not saturated white over grey noise.
The item is the middle z-slice at the middle time point (every z-slice with `all_frames`), read from the
largest pyramid level within MAX_SIDE × MAX_SIDE and `max_pixels` (channels that pass it only together: each
decoded alone and averaged down to MAX_SIDE and its share of max_pixels). A pyramid without such metadata (libvips,
QuPath, bfconvert: reduced-resolution pages or SubIFDs after one tiled full-size page) is read so too, as is one
written a level a page or (OME) a level an image, each a reduction of the one before. A pyramid
over SCAN_SIDE a side is a slide scan, shown as slide.py shows slides: a tissue field (pyramid.py). A level
with a tile that does not decode gives way to the next that does, with a note naming the tile.
A Zeiss LSM is read as a stack too (its channels are a page's planar samples; its thumbnail pages never shown).
Each image of an OME-TIFF of several (a plate's wells) is an item of its own; a converted slide's label and
macro pictures (named so by Bio-Formats) are notes, never shown.
Other TIFFs are left to the plain image source (every page).
"""

from __future__ import annotations

import collections
import functools
import io
import itertools
from typing import Iterator

import numpy as np
from PIL import Image

from .base import Blob, Context, ImageItem, Item, ItemError, Limits, SourcePlugin
from .quiet import quiet_logger
from .registry import register

quiet_logger("tifffile")  # its warnings go to the app's logging, not stderr

OME_SUFFIXES = (".ome.tif", ".ome.tiff", ".ome.btf", ".ome.tf2", ".ome.tf8")
LSM_SUFFIX = ".lsm"  # Zeiss LSM (510, 710, 880 confocals): a TIFF whose image pages each have a thumbnail page
MAX_SIDE = 4096  # a pyramid level up to this many pixels a side is enough to show the whole image
STRETCH_SAMPLE = 262_144  # pixels looked at to find a plane's percentiles
STRIP = 1 << 20  # pixels of a float plane stretched at a time
DARK_FIELD = 0.1  # a plane whose median is this far up to its brightest structure, or less, is dark-field
# ImageJ's unit= of a microscope's stack; ImageJ writes µm escaped, as the 6 characters \u00B5m (tifffile keeps them)
MICRONS = {"micron", "microns", "um", "µm", "\u03bcm", "\\u00b5m", "\\u03bcm", "nm", "nanometer", "nanometers"}
MAX_COLOUR_CHANNELS = 7  # more channels (spectral images) are averaged into grey
IMAGEJ_COLOURS = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 1), (0, 1, 1), (1, 0, 1), (1, 1, 0)]
EMISSION_COLOURS = [(400, 500, (0, 0, 1)), (500, 560, (0, 1, 0)), (560, 700.001, (1, 0, 0))]  # nm, as Bio-Formats
# OME-XML is checked before tifffile parses it. Real OME-XML is KBs to a few MB: Bio-Formats writes a TiffData
# and a Plane element per plane, ~150 bytes each, so a 20,000-plane screen is ~6 MB; 64 MB leaves a wide margin.
MAX_OME_XML = 64 << 20
MAX_PLANES = 1 << 22  # planes one OME or ImageJ image may declare: tifffile keeps a list entry for each (8 bytes)
PAGES_SLACK = 1024  # planes beyond 16 × the file's pages that an OME image in this file may declare
# A slide's extra pictures, by the names Bio-Formats gives them (as QuPath tells them): never shown, as a label
# shows the patient's name
ASSOCIATED = {"label", "label image", "macro", "macro image", "macro mask image", "overview", "overview image",
              "thumbnail", "thumbnail image"}
MIN_LEVELS = 3  # images (or pages) each a reduction of the one before that are taken for one pyramid's levels
MAX_LEVEL_PAGES = 64  # plain pages taken for levels at most: more is a document, not one image's pyramid
_CHOSEN = "ZTQIRHEVL"  # axes read at their middle (every Z with all_frames); C is merged; Y, X, S are the plane


def accepts(head: bytes, blob: Blob) -> bool:
    """OME-TIFF by name or description, ImageJ TIFF by description, Zeiss LSM by name: so that big files on disk
    are read in place."""
    from .files import image_kind

    if image_kind(head) != "TIFF":
        return False
    name = (blob.name or blob.origin).lower()
    return name.endswith(OME_SUFFIXES + (LSM_SUFFIX,)) or b"<OME" in head or b"ImageJ=" in head


def open_stack(blob: Blob, ctx: Context) -> Iterator[Item]:
    from .files import open_image  # it asks stack_items first, then reads pages

    yield from open_image(blob, ctx)


def open_stack_path(path: str, ctx: Context) -> Iterator[Item]:
    """A stack on disk is read in place (a pyramid of several GB: only the level shown), capped by
    max_slide_bytes; a TIFF that turns out not to be a stack is read whole under max_input_bytes."""
    from .files import open_capped, read_file, size_problem

    problem = size_problem(path, ctx.limits.max_slide_bytes, "max_slide_bytes", "microscopy file")
    if problem:
        yield problem
        return
    items = stack_items(path, ctx, path)
    if items is not None:
        yield from items
        return
    blob = read_file(path, ctx)
    if isinstance(blob, ItemError):
        yield blob
        return
    yield from open_capped(blob, ctx)


def stack_items(blob: Blob | str, ctx: Context, origin: str | None = None) -> Iterator[Item] | None:
    """The composite items of an ImageJ or OME TIFF (bytes, or a path) with channels, slices, time points or
    pyramid levels; None for any other TIFF (the caller reads its pages)."""
    try:
        import tifffile
    except ImportError:
        return None
    try:
        # _multifile=False: a multi-file OME-TIFF names other files (any path); they are never opened
        tif = tifffile.TiffFile(blob if isinstance(blob, str) else io.BytesIO(blob.data), _multifile=False)
    except Exception:  # Pillow's page reader says what is wrong with a broken TIFF
        return None
    origin = origin or blob.origin
    try:
        root = None
        if tif.is_ome:  # checked before tifffile parses the OME-XML (for tif.series)
            problem, root = _ome_check(tif)
            if problem:
                tif.close()
                return iter([ItemError(origin, "", f"OME-TIFF not read: {problem}")])
        lsm = tif.is_lsm and not (tif.is_imagej or tif.is_ome)  # its series: the images, its thumbnails apart
        pyramid = not (tif.is_imagej or tif.is_ome or lsm) and _may_be_pyramid(tif)
        if tif.is_imagej or tif.is_ome or lsm or pyramid:
            # the page chain walked once, which ends it where it loops: after ImageJ metadata it rejects,
            # tifffile's generic series read a chain looping back on itself for ever (a 4-page file)
            len(tif.pages)
        as_pages = pyramid and _levels_as_pages(tif)  # each level a full-size page: one series each
        pyramid = pyramid and (as_pages or _one_full_page(tif) or _aperio_layout(tif))
        if not (tif.is_imagej or tif.is_ome or lsm or pyramid) or not tif.series:
            tif.close()
            return None
        ome = tif.is_ome and all(s.kind == "ome" for s in tif.series)
        every = list(tif.series) if ome or as_pages else tif.series[:1]
        every = _levels_joined(every)
        multi = any(_is_stack(s, pyramid) for s in every)
        if len(every) > 1 and (multi or any(_associated(s) for s in every)):
            several, multi = every, True  # each OME image an item: a plate's wells, a converted slide's picture
        else:
            several, multi = None, lsm or _is_stack(tif.series[0], pyramid)  # an LSM's thumbnails never shown
    except Exception:
        multi = False
    if not multi:
        tif.close()
        return None
    if several is None:
        return _items(tif, [tif.series[0]], origin, ctx.limits, root)
    return _items(tif, several, origin, ctx.limits, root, named=True)


def _is_stack(series, pyramid: bool) -> bool:
    """Whether a series has channels, z-slices, time points or levels to read here (else: page by page)."""
    if pyramid:  # one image and its smaller levels; several full-size pages are read page by page
        return len(series.levels) > 1 and series.size == series.keyframe.size
    return any(ax in "CZT" and n > 1 for ax, n in zip(series.axes, series.shape)) or len(series.levels) > 1


def _levels_joined(every: list) -> list:
    """The series with a run of MIN_LEVELS or more images at the start that are one image's pyramid levels, each
    a reduction of the one before (as some writers store a pyramid: one image per level, no SubIFDs), joined as
    that image's levels; the others (a label, a macro picture) after it."""
    run = 1
    while run < len(every) and _reduces(every[run - 1], every[run]):
        run += 1
    if run < MIN_LEVELS:
        return every
    base = every[0]
    if len(base.levels) == 1:
        base.levels.extend(every[1:run])
    return [base, *every[run:]]


def _reduces(big, small) -> bool:
    """Whether `small` is `big` at a lower resolution: one level each, not a slide's extra picture, the same
    samples and axes, the same other sizes, each side 1.5 to 4 times smaller and the same shape (within a pixel
    and 1 %, as pyramid.read takes a level)."""
    if len(big.levels) > 1 or len(small.levels) > 1 or _associated(small) or _associated(big):
        return False
    if small.axes != big.axes or small.dtype != big.dtype:
        return False
    if [n for ax, n in zip(big.axes, big.shape) if ax not in "YX"] != [
            n for ax, n in zip(small.axes, small.shape) if ax not in "YX"]:
        return False
    return _smaller(_plane_size(big), _plane_size(small))


def _associated(series) -> bool:
    return str(series.name or "").strip().lower() in ASSOCIATED


def _may_be_pyramid(tif) -> bool:
    """Whether a TIFF may hold one image at several resolutions (a pyramid written by libvips, QuPath, bfconvert or
    a scanner's export), from its first two pages: the first has SubIFDs or the second is a reduced-resolution
    image (NewSubfileType 1); or from its pages laid out as an Aperio slide's (_aperio_layout). Tiled (a camera's
    TIFF with a thumbnail is not), and grey, RGB or JPEG's YCbCr: the levels are shown as a stack's planes are."""
    first = tif.pages.first
    if not first.is_tiled:
        return False
    if int(first.photometric) not in (1, 2) and (int(first.photometric), int(first.compression)) != (6, 7):
        return False  # MinIsWhite, a palette, uncompressed YCbCr: page by page, as Pillow shows them
    if first.subifds:
        return True
    try:
        second = tif.pages[1]
    except IndexError:
        return False
    return bool(second.subfiletype & 1) or (second.is_tiled and _page_reduces(first, second)) or _aperio_layout(tif)


def _aperio_layout(tif) -> bool:
    """Whether the pages are laid out as an Aperio slide's when its description does not say so (an anonymiser
    blanked it; OpenSlide then sees one level): the base, a smaller stripped thumbnail, tiled levels each a
    reduction of the one before, then only stripped pictures (label, macro), never shown."""
    pages = list(itertools.islice(tif.pages, MAX_LEVEL_PAGES + 1))
    if not 3 <= len(pages) <= MAX_LEVEL_PAGES or pages[1].is_tiled or not pages[2].is_tiled:
        return False
    if pages[1].imagewidth * pages[1].imagelength >= pages[0].imagewidth * pages[0].imagelength:
        return False
    levels = [pages[0]]
    for page in itertools.takewhile(lambda p: p.is_tiled, pages[2:]):
        if not _page_reduces(levels[-1], page):
            return False
        levels.append(page)
    return not any(p.is_tiled for p in pages[len(levels) + 1:])


def _levels_as_pages(tif) -> bool:
    """Whether every page is a reduction of the one before (a pyramid written one level a page, NewSubfileType
    0), MIN_LEVELS to a few dozen: a document's pages are of one size."""
    pages = list(itertools.islice(tif.pages, MAX_LEVEL_PAGES + 1))
    return MIN_LEVELS <= len(pages) <= MAX_LEVEL_PAGES and all(
        b.is_tiled and _page_reduces(a, b) for a, b in zip(pages, pages[1:]))


def _page_reduces(big, small) -> bool:
    return (big.dtype == small.dtype and big.samplesperpixel == small.samplesperpixel and big.imagedepth == 1
            and small.imagedepth == 1 and _smaller((big.imagewidth, big.imagelength),
                                                   (small.imagewidth, small.imagelength)))


def _smaller(big: tuple[int, int], small: tuple[int, int]) -> bool:
    """Whether `small` is `big` reduced: each side 1.5 to 4 times smaller, the same shape within a pixel and 1 %
    (as pyramid.read takes a level)."""
    (bw, bh), (sw, sh) = big, small
    if not (sw and sh and 1.5 <= bw / sw <= 4 and 1.5 <= bh / sh <= 4):
        return False
    return abs(sh * bw / sw - bh) <= bw / sw + bh / 100


def _one_full_page(tif) -> bool:
    """Whether every page after the first is a reduced-resolution one (levels, a label, a thumbnail): a document
    whose pages each have a thumbnail is read page by page."""
    return all(page.subfiletype & 1 for page in itertools.islice(tif.pages, 1, None))


def _ome_check(tif) -> tuple[str | None, object]:
    """(what is wrong with the OME-XML, None) or (None, its parsed root; None when it does not parse)."""
    import xml.etree.ElementTree as ET

    text = tif.pages.first.description
    problem = xml_problem(text, "its OME-XML", MAX_OME_XML)
    if problem:
        return problem, None
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None, None  # tifffile cannot parse it either: no OME series
    return _planes_problem(tif, root), root


def xml_problem(text: str, what: str, max_chars: int | None = None) -> str | None:
    """Why an XML text is not parsed: over max_chars, or declaring a DOCTYPE or entities (an entity expansion
    bomb; the formats read here never need a DTD). None when it is fine."""
    if max_chars is not None and len(text) > max_chars:
        return f"{what} is {len(text):,} characters, over the {max_chars:,} read"
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        return f"{what} declares a DOCTYPE or entities, which it never needs (an entity expansion bomb)"
    return None


def _planes_problem(tif, root) -> str | None:
    """Whether an OME image declares far more planes than the file holds: tifffile lists every declared plane
    (a 10 KB file declaring SizeT=3e8 took 4.8 GB)."""
    pages = functools.cache(lambda: len(tif.pages))  # counted only when needed: every page's offset is read
    for pixels in _all(root, "Image", "Pixels"):
        datas = _all(pixels, "TiffData")
        mine = [d for d in datas if _uuid(d) in (None, root.get("UUID")) or root.get("UUID") is None]
        counts = [_int(d.get("PlaneCount", d.get("NumPlanes", 0))) for d in mine]
        planes = max(_declared_planes(tif, pixels, mine), max(counts, default=0))
        local = len(mine) == len(datas)  # planes in other files: tifffile gives up on the OME series
        if planes > MAX_PLANES or (local and planes > PAGES_SLACK and planes > 16 * pages() + PAGES_SLACK):
            return f"its OME-XML declares {planes:,} planes in a file of {pages():,} pages"
    return None


def _declared_planes(tif, pixels, datas) -> int:
    """The planes tifffile will list for an OME Pixels element: its sizes over the pixels of its keyframe page
    (SizeZ × SizeC × SizeT when that page is one plane)."""
    order = pixels.get("DimensionOrder", "")
    sizes = [_int(pixels.get("Size" + ax, 0)) for ax in order]
    stacked = int(np.prod([max(n, 0) for n in sizes[2:]], dtype=object))
    whole = int(np.prod([max(n, 0) for n in sizes], dtype=object))
    keyframe = _keyframe_pixels(tif, datas, order, sizes)
    return max(stacked, whole // keyframe) if keyframe else stacked


def _keyframe_pixels(tif, datas, order: str, sizes: list[int]) -> int | None:
    """Pixels of the page tifffile takes as keyframe: page 0 when a TiffData names it, else the one at the
    first place (1 when unreadable: the worst case); None when no TiffData places a page (tifffile skips it)."""
    places = []
    for d in datas:
        first = [_int(d.get("First" + ax, 0)) for ax in reversed(order[2:])]
        try:
            places.append((int(np.ravel_multi_index(first, list(reversed(sizes[2:])))), _int(d.get("IFD", 0))))
        except ValueError:
            continue
    if not places:
        return None
    first_place = min(places)[0]
    ifds = [ifd for place, ifd in places if place == first_place]
    try:
        pages = [tif.pages.first] if 0 in [ifd for _, ifd in places] else [tif.pages[i] for i in ifds]
        return max(1, min(int(np.prod(p.shape, dtype=object)) for p in pages))
    except Exception:
        return 1


def _all(el, *path: str) -> list:
    """Children along path of local tag names (OME elements are namespaced)."""
    found = [el]
    for name in path:
        found = [c for e in found for c in e if isinstance(c.tag, str) and c.tag.rsplit("}", 1)[-1] == name]
    return found


def _uuid(data) -> str | None:
    uuids = _all(data, "UUID")
    return uuids[0].text if uuids else None


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0  # tifffile cannot read it either


def _items(tif, every: list, origin: str, limits: Limits, root, named: bool = False) -> Iterator[Item]:
    """The items of each series; with `named` (an OME-TIFF of several images) each one's locator starts with its
    name (else `image N`), and a slide's label, macro or thumbnail picture is a note."""
    kind = ("OME-TIFF" if tif.is_ome else "ImageJ TIFF" if tif.is_imagej else "Zeiss LSM" if tif.is_lsm
            else "pyramidal TIFF")
    images = _all(root, "Image") if root is not None else []
    names = image_names([str(series.name or "").strip()[:60] for series in every]) if named else [""] * len(every)
    with tif:
        for n, (series, name) in enumerate(zip(every, names)):
            if named and _associated(series):
                yield ItemError(origin, name, f"{kind} {name} not read (a slide's label or macro picture may show "
                                              f"the patient's name)", skipped=True)
                continue
            try:
                yield from _planes(tif, series, origin, limits, kind, _ome_image(images, every, n), name)
            except Exception as exc:
                yield ItemError(origin, name, f"could not read the {kind}: {exc}")


def image_names(names: list[str]) -> list[str]:
    """The locators of a file's images by their names: `image N` for one without a name, and `name (image N)` for a
    name several share (a plate's fields named by their well), so that no two images share one."""
    names = [name or f"image {n + 1}" for n, name in enumerate(names)]
    counts = collections.Counter(names)
    return [f"{name} (image {n + 1})" if counts[name] > 1 else name for n, name in enumerate(names)]


def _ome_image(images: list, every: list, n: int):
    """The OME Image element of the n-th series: by place when each image is a series, else by its own name;
    the first for the first series."""
    if len(images) == len(every):
        return images[n]
    same = [im for im in images if im.get("Name") == every[n].name]
    return same[0] if len(same) == 1 else images[0] if images and n == 0 else None


def _planes(tif, series, origin: str, limits: Limits, kind: str, image, name: str = "") -> Iterator[Item]:
    from . import pyramid
    from .tiff_tiles import tiles_problem

    base = _plane_size(series)
    n_channels = series.shape[series.axes.index("C")] if "C" in series.axes else 1
    planes = int(np.prod(series.shape, dtype=np.float64)) // max(base[0] * base[1], 1)
    if 0 in series.shape or planes > MAX_PLANES:  # ImageJ metadata tifffile takes as it is: 4,294,967,295 channels
        yield ItemError(origin, "", f"{kind} layout {series.axes} {tuple(series.shape)} has no pixels or more than "
                                    f"{MAX_PLANES:,} planes; not read")
        return
    scan = pyramid.is_scan(series)  # a slide scan: a tissue field, its regions read from the levels (pyramid.py)
    level = 0 if scan else _level(series, limits.max_pixels // max(n_channels, 1))  # every channel is decoded
    alone = level is None and n_channels > 1  # no level fits for all channels: each decoded alone, then reduced
    level = _level(series, limits.max_pixels) if alone else level
    if level is None or alone and series.kind == "lsm":  # an LSM's channels are one page's samples
        w, h = base
        yield ItemError(origin, "", f"{kind} is {n_channels} channel(s) of {w}×{h} pixels with no smaller level "
                                    f"within the max_pixels cap of {limits.max_pixels:,} for "
                                    f"{'even one of them' if alone else 'all of them'}; not decoded")
        return
    lv = series.levels[level]
    page_axes = lv.keyframe.axes
    # an LSM's channels are its pages' samples, stored planar (tifffile names them C in the series, S in a page)
    lsm = series.kind == "lsm"
    samples = lsm and "S" in page_axes and int(lv.keyframe.photometric) != 2
    lead_axes, lead_shape = lv.axes[:len(lv.axes) - len(page_axes)], lv.shape[:len(lv.axes) - len(page_axes)]
    if lv.axes[len(lead_axes):] != (page_axes.replace("S", "C") if lsm else page_axes):  # not mapped onto pages
        raise ValueError(f"unexpected axes {lv.axes}")
    if samples:
        channels = lv.keyframe.shape[page_axes.index("S")]
    else:
        channels = lead_shape[lead_axes.index("C")] if "C" in lead_axes else 1
    # a lone channel may be dark-field (see composite): a microscope's format, or ImageJ's in microns
    microscope = tif.is_ome or series.kind == "lsm" or _in_microns(tif)
    colours = _colours(tif, channels, image)
    zs = [0]
    if "Z" in lead_axes:
        nz = lead_shape[lead_axes.index("Z")]
        zs = list(range(nz)) if limits.all_frames else [nz // 2]
    meta = {"axes": series.axes, "shape": list(series.shape), "dtype": str(series.dtype), "channels": channels,
            "level": level, "levels": len(series.levels)}
    names = _channel_names(tif, channels, image)
    if names:
        meta["channel_names"] = names

    def page_keys(z: int) -> list[int]:
        """The pages of every channel of z-slice z (at the middle of the other axes)."""
        found = []
        for c in range(1 if samples else channels):
            index = tuple(c if ax == "C" else z if ax == "Z" else n // 2 for ax, n in zip(lead_axes, lead_shape))
            found.append(int(np.ravel_multi_index(index, lead_shape)) if lead_shape else 0)
        return found

    if scan:
        from .slide import field_words, tissue_field

        damaged: list[str] = []

        def read(z: int, rect, zoom: float) -> tuple[Image.Image, int]:
            planes, at, size = pyramid.read(series, page_keys(z), rect, zoom, limits.max_pixels, damaged)
            return pyramid.shown(composite(planes, page_axes, colours, microscope=microscope), size), at

        pixels = _all(image, "Pixels") if image is not None else []
        um = pyramid.um_per_px(lv.keyframe, pixels[0].attrib if pixels else None)
        rect, zoom = tissue_field(lambda r, zm: read(zs[len(zs) // 2], r, zm)[0], (0, 0, *base), um,
                                  limits.max_pixels // max(channels, 1))
        meta.update(um_per_px=round(um, 4) if um else None, field={"x": rect[0], "y": rect[1], "size": rect[2]})
        for z in zs:
            field, meta["level"] = read(z, rect, zoom)
            locator = ", ".join(filter(None, [name, field_words(rect[2], um), _locator(lead_axes, lead_shape, z)]))
            yield ImageItem(origin, locator, field, kind, dict(meta), full_size=base)
            if damaged:
                yield _damage_note(origin, locator, damaged, "read from the next level that decodes instead")
                damaged.clear()
        return
    for z in zs:
        keys = page_keys(z)
        locator = ", ".join(filter(None, [name, _locator(lead_axes, lead_shape, z)]))
        # Every page read, not just the keyframe: a later page may claim other sizes (the stack is
        # allocated from the first page's, and each page decodes at its own).
        pages = [lv[k] for k in keys]
        worst = max(pages, key=_page_pixels)
        if (1 if alone else len(keys)) * _page_pixels(worst) * (channels if samples else 1) > limits.max_pixels:
            w, h = worst.shape[worst.axes.index("X")], worst.shape[worst.axes.index("Y")]
            yield ItemError(origin, locator, f"{kind} has a page claiming {w:,}×{h:,} pixels, over the max_pixels "
                                             f"cap of {limits.max_pixels:,} for {len(keys)} channel(s); not decoded")
            continue
        problem = next(filter(None, (tiles_problem(p) for p in pages if p is not None)), None)
        if problem:  # a JPEG 2000, WebP, JPEG XL or LERC tile naming another size than its tile's
            yield ItemError(origin, locator, f"{kind}: {problem}")
            continue
        damaged: list[str] = []
        try:
            if alone:
                planes, used = _one_by_one(tif, series, level, keys, lead_shape, limits.max_pixels, damaged)
            else:
                planes, used = _whole_level(tif, series, level, keys, lead_shape, limits.max_pixels, damaged)
        except pyramid.Damaged as exc:
            yield ItemError(origin, locator, f"could not read the {kind}: {exc}")
            continue
        if samples:  # the one page's samples as the channels
            planes, shown_axes = np.moveaxis(planes[0], page_axes.index("S"), 0), page_axes.replace("S", "")
        else:
            shown_axes = page_axes
        image = composite(planes, shown_axes, colours, microscope=microscope)
        full = base if image.size != base else None
        yield ImageItem(origin, locator, image, kind, {**meta, "level": used}, full_size=full)
        if damaged:
            w, h = _plane_size(series.levels[used])
            yield _damage_note(origin, locator, damaged, f"read from level {used} ({w:,}×{h:,}) instead")


def _in_microns(tif) -> bool:
    """Whether an ImageJ TIFF's pixel size is in microns (or nm): a microscope's stack, not a CT or MR one (mm)."""
    unit = str((tif.imagej_metadata or {}).get("unit", "") if tif.is_imagej else "").strip().lower()
    return unit in MICRONS


def _whole_level(tif, series, level: int, keys: list[int], lead_shape: tuple, max_pixels: int,
                 damaged: list[str]) -> tuple[np.ndarray, int]:
    """The pages `keys` of a level, decoded whole, and that level; when a segment does not decode, the next smaller
    level that does, each damaged level named in `damaged` (pyramid.Damaged when none decodes)."""
    from . import pyramid
    from .tiff_tiles import damaged_segment, tiles_problem

    sizes = [_plane_size(lv) for lv in series.levels]
    area = sizes[level][0] * sizes[level][1]
    smaller = sorted((i for i, (w, h) in enumerate(sizes) if w * h < area), key=lambda i: -sizes[i][0] * sizes[i][1])
    for i in [level, *smaller]:
        lv = series.levels[i]
        pages = [lv[k] for k in keys]
        if i != level and (len(keys) * max(map(_page_pixels, pages)) > max_pixels
                           or any(tiles_problem(p) for p in pages if p is not None)):
            continue  # a smaller level claiming more pixels, or tiles of another size: not decoded
        try:
            planes = tif.asarray(series=series, level=i, **({"key": keys} if lead_shape else {}))
            return np.asarray(planes).reshape((len(keys),) + tuple(lv.keyframe.shape)), i
        except Exception as exc:
            where = damaged_segment(pages) or str(exc)
            damaged.append(f"level {i} ({sizes[i][0]:,}×{sizes[i][1]:,}), {where}" if len(sizes) > 1 else where)
    raise pyramid.Damaged(damaged[0] + ("; no smaller level decodes either" if len(sizes) > 1 else ""))


def _one_by_one(tif, series, level: int, keys: list[int], lead_shape: tuple, max_pixels: int,
                damaged: list[str]) -> tuple[np.ndarray, int]:
    """The pages `keys` of a level whose channels pass max_pixels together (a tile scan saved without a pyramid),
    each decoded alone (within it) and averaged down to MAX_SIDE a side, and the level read."""
    from . import pyramid

    planes, used = [], level
    for key in keys:
        plane, used = _whole_level(tif, series, level, [key], lead_shape, max_pixels, damaged)
        planes.append(_reduced(plane.reshape(plane.shape[-2:]), max_pixels // len(keys)))
        del plane
        if planes[-1].shape != planes[0].shape:
            raise pyramid.Damaged(f"{damaged[0]}; its channels decode at different levels")
    return np.stack(planes), used


def _reduced(plane: np.ndarray, max_pixels: int) -> np.ndarray:
    """A Y, X plane within MAX_SIDE a side and max_pixels (its share of the cap, so that all channels kept together
    pass it): blocks of k × k pixels averaged (the last rows or columns short of a block dropped), as its type."""
    k = -(-max(plane.shape) // MAX_SIDE)
    while min(plane.shape) // (k + 1) and (plane.shape[0] // k) * (plane.shape[1] // k) > max_pixels:
        k += 1
    if k == 1:
        return plane
    h, w = plane.shape[0] // k, plane.shape[1] // k
    mean = np.zeros((h, w), np.float32)
    for dy in range(k):  # strided views added up: several times faster than a mean over a reshaped view's axes
        for dx in range(k):
            mean += plane[dy:h * k:k, dx:w * k:k]
    mean *= 1 / (k * k)
    return np.rint(mean).astype(plane.dtype) if plane.dtype.kind in "iub" else mean.astype(plane.dtype)


def _damage_note(origin: str, locator: str, damaged: list[str], instead: str) -> ItemError:
    """A note beside an item read from another level than the one chosen, naming each damaged tile."""
    return ItemError(origin, locator, f"damaged tile: {'; '.join(damaged)}; {instead}", skipped=True)


def _page_pixels(page) -> int:
    """A page's pixels (samples not counted); 0 for a page missing from the series (read as zeros)."""
    if page is None:
        return 0
    return int(np.prod([n for ax, n in zip(page.axes, page.shape) if ax != "S"], dtype=object))


def _plane_size(series) -> tuple[int, int]:
    axes, shape = series.axes, series.shape
    return shape[axes.index("X")], shape[axes.index("Y")]


def _level(series, max_pixels: int) -> int | None:
    """The largest level within MAX_SIDE a side (else the smallest) that is within max_pixels."""
    sizes = [_plane_size(lv) for lv in series.levels]
    fits = [i for i, (w, h) in enumerate(sizes) if w * h <= max_pixels]
    if not fits:
        return None
    small = [i for i in fits if max(sizes[i]) <= MAX_SIDE]
    return min(small, key=lambda i: -sizes[i][0] * sizes[i][1]) if small else max(fits, key=lambda i: -max(sizes[i]))


def composite(planes: np.ndarray, page_axes: str, colours: list[tuple[float, float, float]],
              microscope: bool = False) -> Image.Image:
    """Channel planes (C, *page) → an 8-bit image: RGB samples kept, channels stretched and coloured. Channels
    that are dark-field go up to their brightest structure (_bounds): those of several, or a lone one when the
    format is a microscope's (`microscope`: OME, CZI, LIF, ImageJ in microns). A lone channel of another format
    may be a CT or MR stack saved by ImageJ, whose air with a small metal implant looks dark-field too."""
    if "S" in page_axes:
        s = page_axes.index("S")
        rgb = np.moveaxis(planes[0], s, -1)[..., :3]
        if rgb.shape[-1] == 1:
            rgb = rgb[..., 0]
        arr = rgb if rgb.dtype == np.uint8 else levels(rgb)
        return Image.fromarray(arr, "RGB" if arr.ndim == 3 else "L")
    planes = planes.reshape(planes.shape[0], *planes.shape[-2:])  # page axes Y, X
    if len(planes) == 1:
        return Image.fromarray(levels(planes[0], dark_field=microscope), "L")
    if len(planes) > MAX_COLOUR_CHANNELS:
        grey = np.zeros(planes.shape[1:], np.float32)
        for plane in planes:  # one channel at a time
            grey += stretch(plane, dark_field=True)
        # the mean stretched in turn: a structure bright in a few of 12 channels was 1/12 of white, on black
        return Image.fromarray(levels(grey, dark_field=True), "L")
    out = np.zeros((3,) + planes.shape[1:], np.uint16)  # one plane per colour component: no broadcast copies
    for plane, colour in zip(planes, colours):
        level = levels(plane, dark_field=True)
        for k, weight in enumerate(colour):
            w = round(float(weight) * 255)
            if w == 255:
                out[k] += level
            elif w:
                out[k] += (level.astype(np.uint16) * w) // 255
    rgb = np.minimum(out, 255, out=out).astype(np.uint8)
    return Image.merge("RGB", [Image.fromarray(component, "L") for component in rgb])


def stretch(plane: np.ndarray, dark_field: bool = False) -> np.ndarray:
    """Float32 in [0, 1]: the 0.5–99.5 percentiles of the plane's values to black and white (auto-contrast);
    with `dark_field`, a dark-field plane's brightest structure to white (see _bounds)."""
    bounds = _bounds(plane, dark_field)
    if bounds is None:
        return np.zeros(plane.shape, np.float32)
    return _stretched(plane, *bounds)


def _stretched(part: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Float32 in [0, 1]: lo to black, hi to white (NaN black, ±inf white or black)."""
    arr = part.astype(np.float32)
    if not np.issubdtype(part.dtype, np.integer):
        np.nan_to_num(arr, copy=False, nan=lo, posinf=hi, neginf=lo)
    arr -= lo
    arr *= 1.0 / max(hi - lo, 1e-6)
    return np.clip(arr, 0, 1, out=arr)


def levels(plane: np.ndarray, dark_field: bool = False) -> np.ndarray:
    """`stretch` as 8-bit grey levels; 8- and 16-bit planes through a lookup table, several times faster. Others
    (float, 32-bit) a strip of rows at a time: a float copy of a whole 94 Mpx micrograph and its temporaries
    took 1.5 GB."""
    bounds = _bounds(plane, dark_field)
    if bounds is None:
        return np.zeros(plane.shape, np.uint8)
    if plane.dtype not in (np.uint8, np.uint16, np.int8, np.int16):
        out = np.empty(plane.shape, np.uint8)
        rows = max(1, STRIP // max(plane[:1].size, 1))
        for top in range(0, len(plane), rows):
            out[top:top + rows] = _stretched(plane[top:top + rows], *bounds) * 255
        return out
    lo, hi = bounds
    info = np.iinfo(plane.dtype)
    values = np.arange(info.min, info.max + 1, dtype=np.float32)
    lut = (np.clip((values - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)
    if info.min:  # signed: the same bits read unsigned, top bit flipped, index from the smallest value
        index = plane.view(np.uint8 if info.bits == 8 else np.uint16) ^ (1 << (info.bits - 1))
        return lut[index]
    return lut[plane]  # not np.take, which first copies the indices as 8-byte integers


def _bounds(plane: np.ndarray, dark_field: bool = False) -> tuple[float, float] | None:
    """The 0.5 and 99.5 percentiles, from an even grid of at most about STRETCH_SAMPLE pixels (as good, much
    faster than all of them); None when no value is finite. With `dark_field`, a grey plane whose median is in
    the lowest DARK_FIELD of the way up to its brightest structure (fluorescence) goes up to that instead: Fiji shows
    such a plane from its minimum to its maximum, and a few cells in a dark field are under 0.5 % of the
    pixels, so the 99.5th percentile is background noise (the cells saturated white over grey noise)."""
    step = max(1, int(np.ceil(np.sqrt(plane.size / STRETCH_SAMPLE))))
    sample = (plane[::step, ::step] if plane.ndim >= 2 else plane[::step * step]).astype(np.float32)
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return None
    lo, mid, hi = np.percentile(finite, (0.5, 50, 99.5))
    if dark_field and sample.ndim == 2:
        top = _brightest_structure(np.where(np.isfinite(sample), sample, lo))
        if mid - lo <= DARK_FIELD * (top - lo):
            hi = max(hi, top)
    return float(lo), float(hi)


def _brightest_structure(sample: np.ndarray) -> float:
    """The brightest value that a whole 3 × 3 neighbourhood of the sample reaches: a lone hot pixel (a camera's,
    a cosmic ray) does not count, a cell does."""
    h, w = sample.shape
    if h < 3 or w < 3:
        return float(sample.max())
    low = sample[1:-1, 1:-1].copy()
    for dy in range(3):
        for dx in range(3):
            np.minimum(low, sample[dy:dy + h - 2, dx:dx + w - 2], out=low)
    return float(low.max())


def _colours(tif, channels: int, image) -> list[tuple[float, float, float]]:
    """Each channel's display colour: ImageJ LUTs, an LSM's ChannelColors or the OME image's Channel@Color (else
    its emission wavelength's), else ImageJ's defaults."""
    default = [IMAGEJ_COLOURS[i % len(IMAGEJ_COLOURS)] for i in range(channels)]
    try:
        if tif.is_imagej:
            luts = (tif.imagej_metadata or {}).get("LUTs")
            if luts is not None and len(luts) == channels:
                # each LUT's brightest entry: its last is black in an inverted one (the channel lost)
                found = [np.asarray(lut)[:3].astype(int) for lut in luts]
                found = [tuple(float(v) / 255 for v in lut[:, np.argmax(lut.sum(0))]) for lut in found]
                return [c if any(c) else default[i] for i, c in enumerate(found)]
        if tif.is_lsm:  # Zeiss's colours: R, G, B and a zero byte each
            found = (tif.lsm_metadata or {}).get("ChannelColors", {}).get("Colors", [])
            if len(found) == channels and all(any(c[:3]) for c in found):
                return [tuple(float(v) / 255 for v in c[:3]) for c in found]
        if tif.is_ome:
            found = _ome_channels(image)
            if len(found) == channels:
                colours = [_ome_colour(c) or default[i] for i, c in enumerate(found)]
                if all(any(c) for c in colours):
                    return colours
    except Exception:  # odd metadata: the default colours
        pass
    return default


def _ome_colour(channel: dict) -> tuple[float, float, float] | None:
    """An OME channel's Color (RGBA), else its colour by EmissionWavelength (in nm) as the Bio-Formats importer
    picks it (400–500 blue, 500–560 green, 560–700 red); None when it has neither."""
    if channel.get("Color") is not None:
        v = int(channel["Color"]) & 0xFFFFFFFF
        return (v >> 24 & 255) / 255, (v >> 16 & 255) / 255, (v >> 8 & 255) / 255
    try:
        wave = float(channel.get("EmissionWavelength"))
    except (TypeError, ValueError):
        return None
    return next((c for lo, hi, c in EMISSION_COLOURS if lo <= wave < hi), None)


def _channel_names(tif, channels: int, image) -> list[str] | None:
    try:
        if tif.is_ome:
            names = [str(c.get("Name", "")) for c in _ome_channels(image)]
        else:
            names = [str(n) for n in (tif.imagej_metadata or {}).get("Labels", [])][:channels]
    except Exception:
        return None
    # the first line only: ImageJ's slice label of a DICOM it opened is the file's name, then the header's text
    names = [(n.splitlines() or [""])[0].strip()[:40] for n in names]
    return names if len(names) == channels and any(names) else None


def _ome_channels(image) -> list[dict]:
    """The attributes of an OME Image element's channels (the XML parsed once, in _ome_check)."""
    pixels = _all(image, "Pixels") if image is not None else []
    return [c.attrib for c in _all(pixels[0], "Channel")] if pixels else []


def _locator(axes: str, shape: tuple, z: int) -> str:
    parts = []
    for ax, n in zip(axes, shape):
        if ax == "Z" and n > 1:
            parts.append(f"z {z + 1} of {n}")
        elif ax == "T" and n > 1:
            parts.append(f"t {n // 2 + 1} of {n}")
    return ", ".join(parts)


register(SourcePlugin("microscopy", accepts, open_stack, priority=38, open_path=open_stack_path))
