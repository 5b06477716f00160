"""Whole slides exported as pyramidal TIFFs (session 38): a libvips `tiffsave --pyramid --tile`, QuPath or bfconvert
export of a slide scan is shown as slide.py and czi.py show slides, a 512 px tissue field at about 1 µm/px, read
from the pyramid level nearest that scale; a small pyramid (a microscope image) is still shown whole. Every file is
built here with tifffile and imagecodecs, the tissue drawn with numpy (pink tissue, purple nuclei, on glass)."""

from __future__ import annotations

import io
import time
import tracemalloc

import numpy as np
import pytest

from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input
from medimg.sources.slide import tissue_mask

tifffile = pytest.importorskip("tifffile")
imagecodecs = pytest.importorskip("imagecodecs")

GLASS, PINK, PURPLE = (243, 243, 243), (232, 168, 205), (110, 60, 150)
BLOB = (0.66, 0.6, 0.2, 0.26)  # the tissue: an ellipse's centre and radii, as fractions of the slide's sides


def inside(x, y, w: int, h: int, blob=BLOB):
    cx, cy, rx, ry = blob
    return ((x - cx * w) / (rx * w)) ** 2 + ((y - cy * h) / (ry * h)) ** 2 < 1


def stained(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Pink tissue dotted with purple nuclei (3 px discs, a few every 1000 pixels)."""
    img = np.full((h, w, 3), PINK, np.uint8)
    ys, xs = np.nonzero(np.random.default_rng(seed).random((h, w)) < 0.004)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            if dx * dx + dy * dy <= 5:
                img[np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)] = PURPLE
    return img


def slide(w: int, h: int) -> np.ndarray:
    """Glass with one ellipse of tissue right of centre, and a small piece at the top left."""
    img = np.full((h, w, 3), GLASS, np.uint8)
    yy, xx = np.ogrid[0:h, 0:w]
    mask = inside(xx, yy, w, h) | inside(xx, yy, w, h, (0.15, 0.2, 0.04, 0.05))
    img[mask] = stained(h, w)[mask]
    return img


def pyramid(base: np.ndarray, subifds: bool = False, um: float | None = None, ome: bool = False,
            extra: list | None = None, dpi: int | None = None) -> bytes:
    """The image and its halvings down to under 1000 px, as libvips or QuPath write them: reduced-resolution pages
    after it, or (`subifds`) its SubIFDs; JPEG tiles of 256 px; `um` µm/px in XResolution (per centimetre, as
    libvips writes it), or as OME PhysicalSizeX (`ome`), or `dpi`; `extra` (array, OME metadata) images after it."""
    levels = []
    while max((levels or [base])[-1].shape[:2]) >= 1000:
        levels.append(np.ascontiguousarray((levels or [base])[-1][::2, ::2]))
    buf = io.BytesIO()
    kw = dict(tile=(256, 256), compression="jpeg", photometric="rgb")
    res = {} if ome or um is None else dict(resolution=(1e4 / um, 1e4 / um), resolutionunit="CENTIMETER")
    res = dict(resolution=(dpi, dpi), resolutionunit="INCH") if dpi else res
    meta = ({"axes": "YXS", "Name": "slide"} | ({"PhysicalSizeX": um, "PhysicalSizeY": um} if um else {})
            if ome else None)
    with tifffile.TiffWriter(buf, bigtiff=True, ome=ome) as tw:
        tw.write(base, subifds=len(levels) if subifds else None, metadata=meta, **res, **kw)
        for level in levels:
            tw.write(level, subfiletype=1, metadata=None, **kw)
        for array, extra_meta in extra or []:
            tw.write(array, photometric="rgb", metadata=extra_meta)
    return buf.getvalue()


def items(data: bytes, name: str = "slide.tif", **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def traced(data: bytes, **limits) -> tuple[list, int]:
    """The items of `data`, and the peak of memory traced while reading them (the readers imported before)."""
    items(pyramid(slide(600, 400)))
    tracemalloc.start()
    try:
        got = items(data, **limits)
        return got, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def tissue_share(item) -> float:
    return float(tissue_mask(np.asarray(item.image)).mean())


@pytest.fixture(scope="module")
def base() -> np.ndarray:
    return slide(6144, 4608)


@pytest.mark.parametrize("subifds", [False, True], ids=["reduced pages", "SubIFDs"])
def test_an_exported_slide_scan_is_a_tissue_field_at_1_um_a_pixel(base, subifds):
    """0.5 µm/px (a 20× scan): the field is 1024 px of the base, 512 µm, read from the level at 1 µm/px."""
    (item,) = items(pyramid(base, subifds, um=0.5))
    # before: the whole slide from its 3072 px level, a pink blob on white that the model called a graphic
    assert isinstance(item, ImageItem), item
    assert item.format == "pyramidal TIFF" and item.locator == "tissue field 512 µm wide"
    assert item.image.size == (512, 512) and item.full_size == (6144, 4608)
    meta = item.metadata
    assert meta["um_per_px"] == 0.5 and meta["level"] == 1 and meta["levels"] == 4
    x, y, side = meta["field"]["x"], meta["field"]["y"], meta["field"]["size"]
    assert side == 1024 and inside(x + side / 2, y + side / 2, 6144, 4608)  # in the big piece of tissue
    assert tissue_share(item) > 0.95
    level = base[::2, ::2][y // 2:y // 2 + 512, x // 2:x // 2 + 512]
    assert np.abs(np.asarray(item.image).astype(int) - level).mean() < 12  # that level's pixels, through JPEG


def test_without_a_resolution_the_field_is_at_a_quarter_scale_as_a_slide_without_mpp(base):
    (item,) = items(pyramid(base))
    assert item.locator == "tissue field at 1/4 scale" and item.image.size == (512, 512)
    assert item.metadata["field"]["size"] == 2048 and item.metadata["level"] == 2
    assert item.metadata["um_per_px"] is None and tissue_share(item) > 0.9


def test_a_print_resolution_is_not_taken_for_a_microscope_s(base):
    """Pillow and many editors write 72 or 300 dpi: 85 µm/px would make the field the slide's full pixels."""
    (item,) = items(pyramid(base, dpi=300))
    assert item.locator == "tissue field at 1/4 scale" and item.metadata["um_per_px"] is None


def test_a_bfconvert_ome_slide_is_a_field_from_its_physical_size_and_its_label_a_note(base):
    label = np.full((120, 300, 3), 255, np.uint8)
    label[40:60, 20:280] = 0  # the printed name
    data = pyramid(base, subifds=True, um=0.25, ome=True, extra=[(label, {"Name": "label image"})])
    field, note = items(data, "slide.ome.tif")
    assert isinstance(field, ImageItem) and field.format == "OME-TIFF"
    assert field.locator == "slide, tissue field 512 µm wide" and field.image.size == (512, 512)
    assert field.metadata["um_per_px"] == 0.25 and field.metadata["field"]["size"] == 2048
    assert field.metadata["level"] == 2 and tissue_share(field) > 0.9
    assert isinstance(note, ItemError) and note.skipped and note.locator == "label image"


def test_a_small_pyramid_is_still_shown_whole():
    """A microscope image of 3000 × 2000 with two smaller levels: under the scan size, the whole image."""
    (item,) = items(pyramid(slide(3000, 2000), um=0.5))
    assert item.format == "pyramidal TIFF" and item.locator == "" and "field" not in item.metadata
    assert item.image.size == (3000, 2000) and item.metadata["level"] == 0


def test_a_field_s_region_over_max_pixels_at_every_level_is_an_error_not_a_crash(base):
    (err,) = items(pyramid(base, um=0.5), max_pixels=100_000)  # the smallest level, 768 × 576, is over it
    assert isinstance(err, ItemError)
    assert "no pyramid level holds a 6,144×4,608 region within the max_pixels cap of 100,000" in err.error


T = 512  # the tiles of the 100,000 px pyramid


def jpeg(tile: np.ndarray) -> bytes:
    """A tile as libvips writes them: YCbCr JPEG, chroma subsampled 2 × 2."""
    return imagecodecs.jpeg8_encode(tile, level=85, colorspace="RGB", outcolorspace="YCBCR", subsampling=(2, 2))


RECT = (0.3, 0.3, 0.99, 0.67)  # the tissue of the 100,000 px pyramid: tiles whose centre is in it (as fractions)


def on_tissue(x, y, side: int) -> np.ndarray:
    return (x >= RECT[0] * side) & (x < RECT[2] * side) & (y >= RECT[1] * side) & (y < RECT[3] * side)


def shared_tiles(sides: list[int], um: float, tissue_at: dict[int, bytes] | None = None) -> bytes:
    """A JPEG-tiled pyramid whose levels are `sides` px square, every tile present: the tiles whose centre is in
    RECT point to one stained tile's bytes (or, for a level in `tissue_at`, to those bytes), the others to one
    glass tile's, as a file of a few MB can hold a 100,000 px slide."""
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf, bigtiff=True) as tw:
        for n, side in enumerate(sides):
            k = -(-side // T)
            kw = dict(shape=(side, side, 3), dtype=np.uint8, tile=(T, T), photometric="ycbcr", compression="jpeg",
                      metadata=None)
            res = dict(resolution=(1e4 / um, 1e4 / um), resolutionunit="CENTIMETER") if n == 0 else {}
            tw.write((b"" for _ in range(k * k)), subfiletype=1 if n else 0, **res, **kw)
    out = bytearray(buf.getvalue())
    blobs = {"glass": jpeg(np.full((T, T, 3), GLASS, np.uint8)), "tissue": jpeg(stained(T, T))}
    where = {}
    for name, blob in blobs.items():
        where[name] = (len(out), len(blob))
        out += blob
    for n, page in enumerate(tifffile.TiffFile(io.BytesIO(bytes(out))).pages):
        side, k = page.imagewidth, -(-page.imagewidth // T)
        centre = (np.arange(k) + 0.5) * T
        on = on_tissue(centre[None, :], centre[:, None], side).ravel()
        if n in (tissue_at or {}):
            where[n] = (len(out), len(tissue_at[n]))
            out += tissue_at[n]
        offsets = np.where(on, where.get(n, where["tissue"])[0], where["glass"][0])
        counts = np.where(on, where.get(n, where["tissue"])[1], where["glass"][1])
        for code, values in ((324, offsets), (325, counts)):
            tag = page.tags[code]
            form = {4: "<u4", 16: "<u8"}[tag.dtype]
            out[tag.valueoffset:tag.valueoffset + values.size * np.dtype(form).itemsize] = values.astype(form).tobytes()
    return bytes(out)


SIDES = [100_000, 25_000, 6_250, 1_562, 390]


def test_a_100000_px_jpeg_pyramid_gives_its_field_from_a_few_tiles_in_bounded_memory():
    data = shared_tiles(SIDES, um=0.25)
    assert len(data) < 2_000_000
    got, peak = traced(data)
    (item,) = got  # before: the 1562 px level whole (a 64× overview)
    assert isinstance(item, ImageItem), item
    assert item.locator == "tissue field 512 µm wide" and item.image.size == (512, 512)
    assert item.full_size == (100_000, 100_000) and item.metadata["level"] == 1  # 1 µm/px: the 25,000 px level
    x, y, side = (item.metadata["field"][k] for k in ("x", "y", "size"))
    assert side == 2048 and on_tissue(x + side / 2, y + side / 2, 100_000)
    assert tissue_share(item) > 0.95
    assert peak < 40e6, f"{peak / 1e6:.0f} MB"  # the 25,000 px level is 1.9 GB decoded, the base 30 GB


def test_a_field_tile_naming_a_larger_picture_is_refused_unread():
    big = imagecodecs.jpeg8_encode(np.zeros((8000, 8000), np.uint8), level=10)  # 64 MB decoded
    got, peak = traced(shared_tiles(SIDES, um=0.25, tissue_at={1: big}))
    (err,) = got
    assert isinstance(err, ItemError)
    assert "names 8,000×8,000 pixels, not its tile's 512×512; not decoded" in err.error
    assert peak < 40e6, f"{peak / 1e6:.0f} MB"


def test_a_damaged_slide_pyramid_gives_clear_items_never_a_crash():
    """Cut short or with bytes overwritten: mostly its tile offsets and byte counts, which this file is made of."""
    import builders as b

    clean = shared_tiles(SIDES, um=0.25)
    started = time.monotonic()
    for k, data in b.damaged(clean, seed=38, n=24, flips=(1, 20, 300)):
        b.assert_clear(items(data, all_frames=k % 4 == 1))
    assert time.monotonic() - started < 30
