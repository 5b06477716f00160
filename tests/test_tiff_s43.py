"""Session 43 TIFF review: stacks whose channels pass max_pixels together, files cut short, 8-bit palettes,
metadata-only TIFFs. Every file is built here with tifffile or Pillow."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input

tifffile = pytest.importorskip("tifffile")


def _items(data: bytes, name: str = "x.tif", **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def _tif(arr, **kw) -> bytes:
    out = io.BytesIO()
    tifffile.imwrite(out, arr, **kw)
    return out.getvalue()


def _pages(n: int, **kw) -> bytes:
    """n grey 8-bit pages of 320 × 256, each IFD written before its strip (as tifffile writes pages apart)."""
    yy, xx = np.mgrid[0:256, 0:320]
    out = io.BytesIO()
    with tifffile.TiffWriter(out) as tw:
        for i in range(n):
            tw.write(((xx + yy + 20 * i) % 256).astype(np.uint8), contiguous=False, **kw)
    return out.getvalue()


def _cells(shape: tuple[int, int], spot: tuple[int, int]) -> np.ndarray:
    """A fluorescence channel: dim noise with one bright square at `spot` (row, column)."""
    plane = np.random.default_rng(spot[0] * 7 + spot[1]).integers(90, 110, shape).astype(np.uint16)
    y, x = spot
    plane[y:y + 40, x:x + 40] = 4000
    return plane


@pytest.mark.parametrize("kind", ["ome", "imagej"])
def test_channels_over_the_cap_together_are_read_one_at_a_time_and_averaged_down(kind):
    # 3 channels of 5000 × 300 px (1.5 M each, 4.5 M together) under a 2 M cap: no level fits all three at once
    # (a tile scan saved without a pyramid). Before: an error, "no smaller level within the max_pixels cap".
    spots = [(20, 200), (150, 2400), (240, 4800)]
    stack = np.stack([_cells((300, 5000), s) for s in spots])
    if kind == "ome":
        data, name = _tif(stack, ome=True, metadata={"axes": "CYX"}), "scan.ome.tif"
    else:
        data, name = _tif(stack, imagej=True, metadata={"axes": "CYX", "mode": "composite"}), "scan.tif"
    items = _items(data, name, max_pixels=2_000_000)
    assert len(items) == 1 and isinstance(items[0], ImageItem), items
    item = items[0]
    assert item.image.size == (2500, 150)  # averaged down to 4096 px a side: blocks of 2 × 2
    assert item.full_size == (5000, 300) or item.metadata["shape"] == [3, 300, 5000]
    rgb = np.asarray(item.image.convert("RGB")).astype(int)
    for k, (y, x) in enumerate(spots):  # each channel's square in its own colour (ImageJ's red, green, blue)
        pixel = rgb[(y + 20) // 2, (x + 20) // 2]
        assert pixel[k] > 200 and all(pixel[j] < 60 for j in range(3) if j != k), (k, pixel)
    assert rgb.mean() < 40  # the dark field stays dark


def test_channels_each_over_the_cap_are_still_refused():
    stack = np.stack([_cells((300, 5000), (20, 200))] * 2)
    items = _items(_tif(stack, ome=True, metadata={"axes": "CYX"}), "scan.ome.tif", max_pixels=1_000_000)
    assert len(items) == 1 and isinstance(items[0], ItemError)
    assert "max_pixels" in items[0].error and items[0].error.endswith("for even one of them; not decoded")


def test_a_page_cut_short_says_the_file_is_truncated_and_where():
    data = _pages(5, compression="zlib")
    cut = data[:int(len(data) * 0.3)]  # page 1 whole; page 2's IFD, its strip cut; page 3's IFD gone
    items = _items(cut)
    assert isinstance(items[0], ImageItem) and items[0].locator == "page 1"
    assert [i.locator for i in items[1:]] == ["page 2", "page 3"]
    assert items[1].error.startswith("corrupt or truncated TIFF image: its strip 1 ends at byte ")
    assert items[1].error.endswith(f"past the end of the file ({len(cut):,} bytes): the file is truncated")
    assert items[2].error.startswith("the file ends before page 3: its IFD would be at byte ")  # not "Missing dimensions"


@pytest.mark.parametrize("kw", [{"compression": "jpeg"}, {"tile": (64, 64), "compression": "zlib"}, {}])
def test_a_single_page_cut_short_names_its_strip_or_tile(kw):
    yy, xx = np.mgrid[0:256, 0:320]
    rgb = np.dstack([(xx % 256), (yy % 256), ((xx + yy) % 256)]).astype(np.uint8)
    data = _tif(rgb, photometric="rgb", **kw)
    items = _items(data[:len(data) // 2])
    assert len(items) == 1 and isinstance(items[0], ItemError)
    assert "past the end of the file" in items[0].error and items[0].error.endswith("the file is truncated")
    assert ("tile " if "tile" in kw else "strip ") in items[0].error  # JPEG before: "decoder error -2"


def test_an_ome_tiff_cut_before_its_xml_gives_its_pages_and_the_cut():
    # tifffile writes the OME-XML last: cut short, the first IFD's description points past the end, and Pillow ends
    # the chain there. Before: one item, no error, the other planes lost without a word.
    plane = np.mgrid[0:256, 0:320][1].astype(np.uint16) * 10
    data = _tif(np.stack([plane + k for k in range(10)]), ome=True, metadata={"axes": "ZYX"}, compression="zlib")
    items = _items(data[:int(len(data) * 0.3)], "z.ome.tif")
    good = [i for i in items if isinstance(i, ImageItem)]
    bad = [i for i in items if isinstance(i, ItemError)]
    assert [i.locator for i in good] == ["page 1", "page 2", "page 3"]
    assert [i.locator for i in bad] == ["page 4", "page 5"]
    assert "the file is truncated" in bad[0].error and bad[1].error.startswith("the file ends before page 5")


def test_a_page_chain_looping_back_still_ends():
    data = bytearray(_pages(1))
    count = struct.unpack_from("<H", data, 8)[0]
    struct.pack_into("<I", data, 8 + 2 + 12 * count, 8)  # the one page's next IFD: itself
    items = _items(bytes(data))
    assert len(items) == 1 and isinstance(items[0], ImageItem)
    data = bytearray(_pages(3))
    offsets = [p.offset for p in tifffile.TiffFile(io.BytesIO(bytes(data))).pages]
    count = struct.unpack_from("<H", data, offsets[2])[0]
    struct.pack_into("<I", data, offsets[2] + 2 + 12 * count, offsets[0])  # page 3 → page 1
    assert [i.locator for i in _items(bytes(data))] == ["page 1", "page 2", "page 3"]


def test_a_palette_whose_colormap_holds_8_bit_values_is_not_black():
    # Older writers store 8-bit values in the 16-bit ColorMap; Pillow takes their top 8 bits (all 0).
    index = np.mgrid[0:64, 0:256][1].astype(np.uint8)
    colormap = np.stack([np.arange(256), 255 - np.arange(256), np.full(256, 128)]).astype(np.uint16)
    items = _items(_tif(index, photometric="palette", colormap=colormap))
    assert len(items) == 1 and isinstance(items[0], ImageItem)
    rgb = np.asarray(items[0].image.convert("RGB"))
    assert rgb[10, 200].tolist() == [200, 55, 128]


def test_a_16_bit_palette_is_still_read_by_its_top_bits():
    index = np.mgrid[0:64, 0:256][1].astype(np.uint8)
    colormap = np.stack([np.arange(256) * 257] * 3).astype(np.uint16)
    items = _items(_tif(index, photometric="palette", colormap=colormap))
    assert np.asarray(items[0].image.convert("L"))[5, 200] == 200


def test_a_tiff_of_exif_metadata_alone_says_it_holds_no_image():
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    raw = exif.tobytes()
    items = _items(raw[6:] if raw.startswith(b"Exif") else raw)
    assert len(items) == 1 and isinstance(items[0], ItemError)
    assert items[0].error.startswith("TIFF holds no image: no ImageWidth or ImageLength tag")
