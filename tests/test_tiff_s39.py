"""Pyramidal and tiled TIFFs (session 39): a damaged tile gives way to the next level that decodes, with a note naming
it (or names itself when there is none); a level of millions of tiny tiles is not walked for the few a region
takes; a pyramid written one image (OME) or one page per level is one item. Every file is built here with tifffile,
or (the 4-million-tile one, which tifffile takes minutes to write) with numpy in the TIFF layout tifffile reads."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest

from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input

tifffile = pytest.importorskip("tifffile")
pytest.importorskip("imagecodecs")

GLASS, PINK, PURPLE = (243, 243, 243), (232, 168, 205), (110, 60, 150)


def slide(w: int, h: int) -> np.ndarray:
    """Glass with an ellipse of pink tissue dotted with purple nuclei."""
    img = np.full((h, w, 3), GLASS, np.uint8)
    yy, xx = np.ogrid[0:h, 0:w]
    tissue = ((xx - w / 2) / (w / 3)) ** 2 + ((yy - h / 2) / (h / 3)) ** 2 < 1
    img[tissue] = PINK
    img[tissue & (np.random.default_rng(0).random((h, w)) < 0.01)] = PURPLE
    return img


def levels(base: np.ndarray, n: int) -> list[np.ndarray]:
    return [np.ascontiguousarray(base[:: 2**k, :: 2**k]) for k in range(n)]


def pyramid(base: np.ndarray, n: int = 4, um: float | None = 0.5, as_pages: bool = False) -> bytes:
    """Zlib tiles of 256 px; levels as reduced-resolution pages (NewSubfileType 1), or (`as_pages`) as plain pages."""
    buf = io.BytesIO()
    kw = dict(tile=(256, 256), compression="zlib", compressionargs={"level": 1}, photometric="rgb", metadata=None)
    with tifffile.TiffWriter(buf) as tw:
        for k, level in enumerate(levels(base, n)):
            res = dict(resolution=(1e4 / um, 1e4 / um), resolutionunit="CENTIMETER") if um and not k else {}
            tw.write(level, subfiletype=1 if k and not as_pages else 0, **res, **kw)
    return buf.getvalue()


def damaged(data: bytes, page: int, tile: int) -> bytes:
    """The file with one tile's bytes overwritten (no longer zlib)."""
    p = tifffile.TiffFile(io.BytesIO(data)).pages[page]
    offset, count = p.dataoffsets[tile], p.databytecounts[tile]
    out = bytearray(data)
    out[offset:offset + count] = (bytes(range(256)) * (count // 256 + 1))[:count]
    return bytes(out)


def items(data: bytes, name: str = "slide.tif", **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def images(got: list) -> list[ImageItem]:
    return [i for i in got if isinstance(i, ImageItem)]


def notes(got: list) -> list[ItemError]:
    return [i for i in got if isinstance(i, ItemError)]


def tile_at(data: bytes, page: int, x: int, y: int) -> int:
    p = tifffile.TiffFile(io.BytesIO(data)).pages[page]
    return y // p.tilelength * -(-p.imagewidth // p.tilewidth) + x // p.tilewidth


# A damaged tile


def test_a_damaged_tile_of_the_field_s_level_gives_way_to_the_next_level_with_a_note_naming_it():
    clean = pyramid(slide(5120, 3840))
    (item,) = items(clean)
    assert item.locator == "tissue field 512 µm wide" and item.metadata["level"] == 1
    x, y, side = (item.metadata["field"][k] for k in ("x", "y", "size"))
    n = tile_at(clean, 1, (x + side // 2) // 2, (y + side // 2) // 2)  # a tile in the middle of the field
    got = items(damaged(clean, 1, n))
    (field,) = images(got)  # before: the whole slide an error, "could not read the pyramidal TIFF: libdeflate…"
    assert field.locator == "tissue field 512 µm wide" and field.image.size == (512, 512)
    assert field.metadata["level"] != 1
    (note,) = notes(got)
    assert note.skipped and note.locator == field.locator
    column, row = n % 10 + 1, n // 10 + 1
    assert f"level 1 (2,560×1,920), tile {n + 1} (column {column}, row {row})" in note.error


def test_a_damaged_tile_of_the_overview_s_level_gives_way_too():
    clean = pyramid(slide(5120, 3840))
    got = items(damaged(clean, 2, 5))  # the 1280 px level the overview is read from
    assert len(images(got)) == 1, got
    (note,) = notes(got)
    assert note.skipped and "level 2 (1,280×960), tile 6 (column 1, row 2)" in note.error


def test_a_small_pyramid_s_damaged_level_is_shown_from_the_next_smaller_one():
    base = slide(3000, 2000)
    got = items(damaged(pyramid(base, 3), 0, 7))
    (item,) = images(got)  # before: an error for the whole image
    assert item.metadata["level"] == 1 and item.image.size == (1500, 1000)
    (note,) = notes(got)
    assert note.skipped and "level 0 (3,000×2,000), tile 8 (column 8, row 1)" in note.error
    assert "read from level 1 (1,500×1,000) instead" in note.error


def test_a_damaged_tile_with_no_other_level_is_named():
    rng = np.random.default_rng(1)
    stack = rng.integers(0, 4000, (2, 600, 600), dtype=np.uint16)
    buf = io.BytesIO()
    tifffile.imwrite(buf, stack, ome=True, tile=(256, 256), compression="zlib", metadata={"axes": "CYX"})
    (err,) = items(damaged(buf.getvalue(), 1, 4), "cells.ome.tif")
    assert isinstance(err, ItemError) and not err.skipped
    assert "page 2, tile 5 (column 2, row 2): " in err.error  # before: only libdeflate's words


def test_a_damaged_strip_of_one_z_slice_spares_the_others():
    rng = np.random.default_rng(2)
    buf = io.BytesIO()
    tifffile.imwrite(buf, rng.integers(0, 4000, (3, 300, 300), dtype=np.uint16), imagej=True, compression="zlib",
                     rowsperstrip=50, metadata={"axes": "ZYX"})
    got = items(damaged(buf.getvalue(), 1, 2), "stack.tif", all_frames=True)
    # before: one error without a locator, and the slices after it lost
    assert [i.locator for i in got] == ["z 1 of 3", "z 2 of 3", "z 3 of 3"]
    assert isinstance(got[1], ItemError) and "strip 3: " in got[1].error
    assert isinstance(got[0], ImageItem) and isinstance(got[2], ImageItem)


def test_a_plain_tiled_page_names_its_damaged_tile():
    base = slide(1200, 800)
    got = items(damaged(tifffile_bytes(base, tile=(256, 256), compression="zlib", photometric="rgb"), 0, 6))
    (err,) = got  # before: Pillow's "decoder error -2"
    assert isinstance(err, ItemError)
    assert "its tile 7 (column 2, row 2) does not decode" in err.error


def tifffile_bytes(arr: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr, **kw)
    return buf.getvalue()


# One image (OME) or one page per level


def test_an_ome_pyramid_of_one_image_per_level_is_one_slide():
    base = slide(5120, 3840)
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf, ome=True) as tw:
        for k, level in enumerate(levels(base, 4)):
            tw.write(level, tile=(256, 256), compression="zlib", compressionargs={"level": 1}, photometric="rgb",
                     metadata={"Name": f"resolution {k}", "PhysicalSizeX": 0.5 * 2**k, "PhysicalSizeY": 0.5 * 2**k})
    (item,) = items(buf.getvalue(), "slide.ome.tif")  # before: 4 pages, the 5120 px one decoded whole
    assert isinstance(item, ImageItem) and item.locator == "tissue field 512 µm wide"
    assert item.metadata["levels"] == 4 and item.metadata["level"] == 1 and item.full_size == (5120, 3840)


def test_a_small_ome_pyramid_of_one_image_per_level_and_its_label_is_one_image_and_a_note():
    base = slide(3000, 2000)
    label = np.full((200, 300, 3), 255, np.uint8)
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf, ome=True) as tw:
        for level in levels(base, 3):
            tw.write(level, tile=(256, 256), compression="zlib", photometric="rgb", metadata={"Name": "slide"})
        tw.write(label, photometric="rgb", metadata={"Name": "label image"})
    got = items(buf.getvalue(), "slide.ome.tif")
    assert [type(i).__name__ for i in got] == ["ImageItem", "ItemError"], got
    assert got[0].metadata["levels"] == 3 and got[0].image.size == (3000, 2000)
    assert got[1].skipped and got[1].locator == "label image"


def test_a_tiff_of_one_plain_page_per_level_is_one_item():
    got = items(pyramid(slide(3000, 2000), 4, as_pages=True))
    (item,) = got  # before: 4 pages
    assert item.format == "pyramidal TIFF" and item.metadata["levels"] == 4 and item.image.size == (3000, 2000)


def test_images_of_one_size_and_pages_of_one_size_stay_apart():
    rng = np.random.default_rng(3)
    wells = [rng.integers(0, 255, (300, 400), dtype=np.uint8) for _ in range(3)]
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf, ome=True) as tw:
        for k, well in enumerate(wells):
            tw.write(well, tile=(128, 128), metadata={"Name": f"Well A{k + 1}"})
    assert len(images(items(buf.getvalue(), "plate.ome.tif"))) == 3
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tw:
        for well in wells:
            tw.write(well, tile=(128, 128), metadata=None)
    assert [i.locator for i in items(buf.getvalue())] == ["page 1", "page 2", "page 3"]


# Millions of tiny tiles


def tiny_tiled(sides: list[int], um: float, tile: int = 16) -> bytes:
    """A grey BigTIFF pyramid of `sides` px square levels (reduced-resolution pages) of `tile` px tiles, every tile
    present and pointing to one zlib tile's bytes: 4 million tiles in a 50 MB file made in a second (tifffile
    writes one tile at a time: minutes)."""
    blob = zlib.compress(np.full((tile, tile), 200, np.uint8).tobytes())
    out = bytearray(b"II+\0" + struct.pack("<HHQ", 8, 0, 0))
    blob_at = len(out)
    out += blob
    offsets_of = []
    for side in sides:
        k = (-(-side // tile)) ** 2
        offsets_of.append(len(out))
        out += np.full(k, blob_at, "<u8").tobytes()
        offsets_of.append(len(out))
        out += np.full(k, len(blob), "<u4").tobytes()
    ifds, res = [], struct.unpack("<Q", struct.pack("<II", round(1e4 / um), 1))[0]  # px/cm, inside its entry
    for n, side in enumerate(sides):
        k = (-(-side // tile)) ** 2
        tags = [(254, 4, 1, 1 if n else 0), (256, 4, 1, side), (257, 4, 1, side), (258, 3, 1, 8), (259, 3, 1, 8),
                (262, 3, 1, 1), (277, 3, 1, 1), (282, 5, 1, res), (283, 5, 1, res), (296, 3, 1, 3),
                (322, 3, 1, tile), (323, 3, 1, tile), (324, 16, k, offsets_of[2 * n]),
                (325, 4, k, offsets_of[2 * n + 1])]
        ifds.append(len(out))
        out += struct.pack("<Q", len(tags))
        for code, kind, count, value in tags:
            out += struct.pack("<HHQQ", code, kind, count, value)
        out += struct.pack("<Q", 0)
    struct.pack_into("<Q", out, 8, ifds[0])
    for a, b in zip(ifds, ifds[1:]):
        struct.pack_into("<Q", out, a + 8 + 20 * 14, b)
    return bytes(out)


def cpu(data: bytes) -> tuple[list, float]:
    started = time.process_time()
    got = items(data)
    return got, time.process_time() - started


def test_a_level_of_millions_of_tiny_tiles_is_not_walked_for_the_field_s_few():
    data = tiny_tiled([32768, 16384, 8192, 4096, 2048, 1024], um=1.0)
    assert len(tifffile.TiffFile(io.BytesIO(data)).pages[0].dataoffsets) == 2048**2  # 4.2 million tiles
    small = tiny_tiled([2048, 1024], um=1.0)
    items(small)  # the readers imported
    (item,), took = cpu(data)
    _, took_small = cpu(small)
    assert isinstance(item, ImageItem) and item.locator == "tissue field 512 µm wide", item
    assert item.metadata["level"] == 0  # 1 µm/px: the base, whose 1,024 tiles in the field are decoded
    # measured: 0.1 s more than the 2048 px pyramid; before, 2.4 s more (the base's 4.2 million tiles walked)
    assert took - took_small < 1.0, f"{took:.2f} s of CPU, {took_small:.2f} s for a 2048 px pyramid"


def test_a_region_of_more_tiles_than_the_cap_is_read_from_a_coarser_level(monkeypatch):
    from medimg.sources import pyramid as pyr

    data = tiny_tiled([8192, 4096, 2048, 1024, 512, 256], um=1.0)
    (item,) = items(data)
    assert item.metadata["level"] == 0
    # the field's 1,024 tiles at the base are over it, its 256 at level 1 are not (the overview: 256 at 256 px)
    monkeypatch.setattr(pyr, "MAX_SEGMENTS", 1000)
    (item,) = items(data)
    assert isinstance(item, ImageItem) and item.metadata["level"] == 1
