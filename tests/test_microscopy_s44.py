"""Session 44 microscopy review: signed 16-bit RGB TIFFs, OME-TIFF stacks cut short, one-level slides read for
their overview a band at a time. Every file is built here with tifffile."""

from __future__ import annotations

import io

import numpy as np
import pytest

from medimg.sources import Blob, ImageItem, ItemError, open_input

tifffile = pytest.importorskip("tifffile")


def _items(data: bytes, name: str) -> list:
    return list(open_input(Blob(name, data, name=name)))


def _tif(arr, **kw) -> bytes:
    out = io.BytesIO()
    tifffile.imwrite(out, arr, **kw)
    return out.getvalue()


def test_signed_16bit_rgb_is_stretched_not_flat_grey():
    """A signed 16-bit RGB picture (values 0..2000, as MATLAB's int16 writes) was read from the type's lowest
    value: every pixel within a few levels of 128, a flat grey."""
    yy, xx = np.mgrid[0:128, 0:160]
    ramp = (xx * 12).astype(np.int16)  # 0 .. 1908
    rgb = np.stack([ramp, ramp // 2, np.zeros_like(ramp)], -1)
    rgb[64:] = 0  # the lower half black
    (item,) = _items(_tif(rgb, photometric="rgb"), "signed.tif")
    assert isinstance(item, ImageItem) and item.image.mode == "RGB"
    arr = np.asarray(item.image).astype(int)
    assert arr[:64, -4:, 0].min() > 240 and arr[64:].max() < 10  # the ramp's end white, black black
    assert arr[:64, -4:, 1].mean() > 100 and arr[:64, :, 2].max() < 10  # the colour kept: red, half green, no blue


def test_ome_stack_cut_short_names_the_missing_pages():
    """An OME-TIFF cut short loses its later IFDs and its OME-XML (written last): its first plane was the only
    item, and nothing said the file was cut."""
    planes = np.random.default_rng(0).integers(0, 4000, (2, 3, 96, 96)).astype(np.uint16)
    data = _tif(planes, metadata={"axes": "CZYX"}, ome=True)
    items = _items(data[:len(data) * 2 // 3], "cut.ome.tif")
    assert isinstance(items[0], ImageItem)
    notes = [i for i in items if isinstance(i, ItemError)]
    assert len(notes) == 1 and notes[0].locator == "page 2" and "the file ends before page 2" in notes[0].error


def test_one_level_slide_overview_read_a_band_at_a_time(tmp_path, monkeypatch):
    """A tiled TIFF of one level named .svs (OpenSlide's generic-tiff) had its whole base level read in one
    region for the overview (RGBA, then RGB copies: 500 MB for 36 Mpx); now a band of rows at a time."""
    openslide = pytest.importorskip("openslide")
    from medimg.sources import slide

    img = np.full((4096, 4096, 3), 240, np.uint8)
    img[2600:3600, 600:1600] = (190, 90, 170)  # tissue low on the left
    path = tmp_path / "one.svs"
    tifffile.imwrite(path, img, tile=(256, 256), photometric="rgb", compression="jpeg")
    asked = []
    real = openslide.OpenSlide.read_region

    def read_region(self, location, level, size):
        asked.append(size[0] * size[1])
        return real(self, location, level, size)

    monkeypatch.setattr(openslide.OpenSlide, "read_region", read_region)
    (item,) = open_input(str(path))
    assert isinstance(item, ImageItem), getattr(item, "error", item)
    assert max(asked) <= slide.BAND < 4096 * 4096
    x, y, side = item.metadata["field"]["x"], item.metadata["field"]["y"], item.metadata["field"]["size"]
    assert x <= 1100 <= x + side and y <= 3100 <= y + side  # the field is on the tissue
    assert item.locator == f"tissue field at 1/4 scale, at x {x}, y {y}"
    assert (np.asarray(item.image)[..., 1] < 120).mean() > 0.15  # tissue in it, not glass only


def test_subifd_pyramid_named_svs_is_read_by_its_levels(tmp_path):
    """OpenSlide's generic TIFF reads no SubIFDs: a libvips or bfconvert pyramid named .svs was one level to it,
    refused over max_pixels though its 1/4 level is small. Its levels are read as a pyramidal TIFF's now."""
    pytest.importorskip("openslide")
    from medimg.sources import Limits

    def tiles(n: int, tissue: tuple[int, int]):
        for ty in range(n // 256):
            for tx in range(n // 256):
                inside = tissue[0] <= tx * 256 < tissue[1] and tissue[0] <= ty * 256 < tissue[1]
                yield np.full((256, 256, 3), (180, 80, 160) if inside else (235, 235, 235), np.uint8)

    path = tmp_path / "pyramid.svs"
    with tifffile.TiffWriter(path) as tw:
        tw.write(tiles(8192, (2048, 4096)), shape=(8192, 8192, 3), dtype=np.uint8, tile=(256, 256),
                 photometric="rgb", compression="jpeg", subifds=1)
        tw.write(tiles(2048, (512, 1024)), shape=(2048, 2048, 3), dtype=np.uint8, tile=(256, 256),
                 photometric="rgb", compression="jpeg", subfiletype=1)
    (item,) = open_input(str(path), Limits(max_pixels=50_000_000))
    assert isinstance(item, ImageItem), getattr(item, "error", item)
    assert item.format == "pyramidal TIFF" and item.locator == "tissue field at 1/4 scale"
    assert item.full_size == (8192, 8192) and item.metadata["level"] == 1
    assert np.asarray(item.image)[..., 1].mean() < 120  # the tissue
