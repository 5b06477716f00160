"""Session 47 microscopy review: slides and LIF projects cut short, float micrographs stretched a strip at a time,
ImageJ inverted LUTs, spectral stacks averaged into grey. Every file is built here."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from medimg.sources import Blob, ImageItem, ItemError, open_input
from medimg.sources.microscopy import composite, levels
from test_lif import lif_bytes, stack
from test_slide import write_slide

tifffile = pytest.importorskip("tifffile")


@pytest.mark.parametrize("cut", ["in a tile", "before an IFD"])
def test_slide_cut_short_says_so(tmp_path, cut):
    """OpenSlide said only "Unsupported or missing image file" for an .svs cut short (a download stopped)."""
    path = write_slide(tmp_path / "whole.svs", compression="jpeg")
    data = path.read_bytes()
    with tifffile.TiffFile(path) as tif:
        first, second = tif.pages[0], tif.pages[1]
        end = max(o + c for o, c in zip(first.dataoffsets, first.databytecounts))
        at = {"in a tile": end - 100, "before an IFD": second.offset}[cut]
    cut_path = tmp_path / "cut.svs"
    cut_path.write_bytes(data[:at])
    (item,) = open_input(cut_path)
    assert isinstance(item, ItemError)
    assert item.error.startswith("damaged slide: ") and "past the end of the file" in item.error
    assert ("its tile " if cut == "in a tile" else "the file ends before page 2") in item.error
    (whole,) = open_input(path)  # the same slide whole is read
    assert isinstance(whole, ImageItem)


def test_lif_cut_short_says_so():
    """readlif's words for a project cut short were "unclosed token", "unpack requires a buffer of 4 bytes" or
    "… this file does not appear to be truncated"."""
    data = lif_bytes([("Series001", stack())])
    header_end = 13 + int.from_bytes(data[9:13], "little") * 2
    for at, words in [(header_end - 100, "ends inside its XML header"),
                      (header_end + 10, "bytes of image data"), (header_end + 60, "bytes of image data")]:
        (item,) = open_input(Blob("cut.lif", data[:at]))
        assert isinstance(item, ItemError), at
        assert "the file is cut short" in item.error and words in item.error, item.error
    (whole,) = open_input(Blob("whole.lif", data))
    assert isinstance(whole, ImageItem)


def test_float_micrograph_is_stretched_a_strip_at_a_time():
    """A float plane (an EM micrograph: MRC mode 2, 94 Mpx for a K3 in super-resolution) was copied whole as
    float several times over (1.5 GB peak for 94 Mpx); the 8-bit result is the same."""
    rng = np.random.default_rng(0)
    plane = rng.normal(0, 1, (2000, 2000)).astype(np.float32)  # 16 MB
    plane[10, 10], plane[20, 20], plane[30] = np.nan, np.inf, -np.inf
    tracemalloc.start()
    try:
        out = levels(plane)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.dtype == np.uint8 and out.shape == plane.shape
    assert peak < plane.nbytes  # the 4 MB result and a strip's temporaries; before: over 3 × 16 MB
    assert out[10, 10] == 0 and out[20, 20] >= 254 and out[30].max() == 0  # NaN black, +inf white, -inf black
    assert 100 < out.mean() < 155 and out.std() > 40


def _cells(seed: int, n: int = 6, side: int = 128) -> np.ndarray:
    """A dark 16-bit field (camera offset 100, noise) with n bright cells."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side]
    img = 100 + rng.normal(0, 4, (side, side))
    for cy, cx in rng.integers(10, side - 10, (n, 2)):
        img += 3000 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 32)
    return img.astype(np.uint16)


def test_imagej_channel_with_an_inverted_lut_is_not_lost(tmp_path):
    """A channel's colour was its LUT's last entry: black for an inverted LUT, so the channel vanished."""
    red = np.zeros((3, 256), np.uint8)
    red[0] = np.arange(256)
    inverted = np.tile(np.arange(255, -1, -1, dtype=np.uint8), (3, 1))
    second = np.zeros((128, 128), np.uint16) + 100
    second[80:100, 80:100] = 3000  # a square only the second channel shows
    path = tmp_path / "two.tif"
    tifffile.imwrite(path, np.stack([_cells(1), second]), imagej=True,
                     metadata={"axes": "CYX", "mode": "composite", "LUTs": [red, inverted]})
    (item,) = open_input(path)
    assert isinstance(item, ImageItem) and item.format == "ImageJ TIFF"
    arr = np.asarray(item.image.convert("RGB")).astype(int)
    assert arr[85:95, 85:95, 1].min() > 200  # the second channel's square shows (white: its brightest entry)


def test_spectral_stack_average_is_stretched():
    """More than 7 channels are averaged into grey: a structure bright in 2 of 12 channels came out at 1/6 of
    white on black (the model sees the L image as it is)."""
    planes = np.stack([_cells(100 + c // 2, n=4) for c in range(12)])  # each cell bright in two channels
    image = composite(planes, "YX", [(1, 1, 1)] * 12)
    arr = np.asarray(image)
    assert image.mode == "L"
    assert arr.max() > 200 and np.percentile(arr, 99.9) > 150  # the brightest cells near white, not 42
    assert np.median(arr) < 30  # the background stays dark


def test_imagej_lone_channel_in_microns_is_shown_as_a_dark_field(tmp_path):
    """A lone ImageJ channel kept its percentiles (ImageJ stacks are often CT or MR): a Fiji z-stack of a few
    cells in a dark field came out as cells saturated white over grey noise. Its unit (micron) says microscope;
    one in mm stays as it was."""
    stack_ = np.stack([_cells(7 + z, n=2, side=400) for z in range(3)])  # the cells under 0.5 % of the pixels
    shown = {}
    for unit in ("micron", "mm"):
        path = tmp_path / f"{unit}.tif"
        tifffile.imwrite(path, stack_, imagej=True, resolution=(5, 5), metadata={"axes": "ZYX", "unit": unit})
        (item,) = open_input(path)
        assert isinstance(item, ImageItem) and item.locator == "z 2 of 3"
        shown[unit] = np.asarray(item.image)
    assert np.median(shown["micron"]) < 10 and shown["micron"].max() > 240  # black field, white cells
    assert np.median(shown["mm"]) > 25  # percentiles: the noise spread over the grey levels


def test_aperio_layout_without_its_description_is_read_by_its_levels(tmp_path):
    """An .svs whose description an anonymiser blanked is one level to OpenSlide (its generic TIFF): the base was
    refused over max_pixels, though its levels (after a stripped thumbnail page) are small. The label after them is
    never shown."""
    w, h = 6144, 4096
    img = np.full((h, w, 3), 244, np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    img[((yy - h * 0.5) / (h * 0.3)) ** 2 + ((xx - w * 0.35) / (w * 0.2)) ** 2 < 1] = (226, 150, 198)
    path = tmp_path / "anon.svs"
    with tifffile.TiffWriter(path) as tw:
        tw.write(img, tile=(256, 256), compression="zlib", photometric="rgb", metadata=None)
        tw.write(img[::32, ::32].copy(), compression="zlib", photometric="rgb", metadata=None)  # the thumbnail
        for d in (4, 16):
            tw.write(img[::d, ::d].copy(), tile=(256, 256), compression="zlib", photometric="rgb", metadata=None)
        tw.write(np.full((300, 300, 3), 30, np.uint8), compression="zlib", photometric="rgb", subfiletype=1,
                 metadata=None)  # the label
    for name in ("anon.svs", "anon.tif"):
        given = tmp_path / name
        if not given.exists():
            given.write_bytes(path.read_bytes())
        (item,) = open_input(given, {"max_pixels": 20_000_000})
        assert isinstance(item, ImageItem), getattr(item, "error", item)
        assert item.format == "pyramidal TIFF" and item.locator.startswith("tissue field")
        assert item.metadata["levels"] == 3 and item.full_size == (w, h)
        px = np.asarray(item.image.convert("RGB")).astype(int)
        assert np.abs(px - (226, 150, 198)).max(axis=2).mean() < 10  # tissue, not glass or the label's grey


def test_czi_cut_short_says_so(tmp_path):
    """libCZI's words alone ("Not enough data read at offset …") did not say the file was cut short."""
    pytest.importorskip("pylibCZIrw")
    from test_czi import fluorescence

    data = open(fluorescence(tmp_path / "cells.czi"), "rb").read()
    for at in (300, len(data) // 2, len(data) - 2000):
        cut = tmp_path / "cut.czi"
        cut.write_bytes(data[:at])
        (item,) = open_input(cut)
        assert isinstance(item, ItemError)
        assert f"the file is cut short or damaged (it ends at byte {at:,})" in item.error, item.error
