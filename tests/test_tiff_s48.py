"""Session 48 (tiff): libtiff's errors, which Pillow's TIFF decoder printed on stderr and otherwise ignored; a DNG
without a preview."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import tifffile
from PIL import Image

from medimg.sources import Blob, ImageItem, ItemError, open_input


def _libtiff_loaded() -> bool:  # the handler is installed through /proc/self/maps (Linux)
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            return "libtiff" in maps.read()
    except OSError:
        return False


needs_libtiff = pytest.mark.skipif(not _libtiff_loaded(), reason="no libtiff found loaded (not Linux)")


def _picture() -> np.ndarray:
    y, x = np.mgrid[0:300, 0:400]
    return np.dstack([(x + y) % 256, x % 256, y % 256]).astype(np.uint8)


def _tiff(compression: str, pages: int = 1) -> bytes:
    out = io.BytesIO()
    tifffile.imwrite(out, np.stack([_picture()] * pages) if pages > 1 else _picture(), photometric="rgb",
                     compression=compression, metadata=None)
    return out.getvalue()


def _items(data: bytes, name: str = "a.tif") -> list:
    return list(open_input(Blob(name, data)))


@needs_libtiff
def test_a_damaged_jpeg_strip_is_an_error_not_a_half_grey_picture(capfd):
    data = bytearray(_tiff("jpeg"))
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        offset, count = tif.pages[0].dataoffsets[0], tif.pages[0].databytecounts[0]
    for i in range(offset + count // 3, offset + count // 3 + 200):  # bytes damaged inside the first strip
        data[i] ^= 0x5A
    assert isinstance(Image.open(io.BytesIO(bytes(data))).convert("RGB"), Image.Image)  # Pillow: no error
    capfd.readouterr()
    items = _items(bytes(data))
    assert len(items) == 1 and isinstance(items[0], ItemError), items
    assert items[0].error == "corrupt TIFF image: JPEGLib: Unsupported marker type 0x13"
    assert capfd.readouterr().err == ""  # libtiff's "JPEGLib: Unsupported marker type" not printed


@needs_libtiff
@pytest.mark.parametrize("compression", ["lzw", "jpeg"])
def test_a_cut_tiff_says_so_and_prints_nothing(capfd, compression):
    data = _tiff(compression, pages=3)
    capfd.readouterr()
    items = _items(data[: len(data) // 2])
    assert isinstance(items[0], ImageItem) and isinstance(items[1], ItemError), items
    assert items[1].error.endswith("the file is truncated")
    assert capfd.readouterr().err == ""  # libtiff's "TIFFFillStrip: Read error on strip 0" not printed


@needs_libtiff
def test_a_webp_tiff_is_read_and_prints_nothing(capfd):
    data = _tiff("webp")
    capfd.readouterr()
    items = _items(data)
    assert [type(i) for i in items] == [ImageItem] and items[0].image.size == (400, 300)
    assert capfd.readouterr().err == ""  # "WEBP compression support is not configured" not printed


@needs_libtiff
def test_the_programs_own_pillow_still_hears_libtiff(capfd):
    data = bytearray(_tiff("jpeg"))
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        offset, count = tif.pages[0].dataoffsets[0], tif.pages[0].databytecounts[0]
    for i in range(offset + count // 3, offset + count // 3 + 200):
        data[i] ^= 0x5A
    _items(bytes(data))  # the handler installed
    capfd.readouterr()
    Image.open(io.BytesIO(bytes(data))).load()  # not inside medimg: libtiff prints as it would without medimg
    assert "Unsupported marker" in capfd.readouterr().err


def test_a_dng_without_a_preview_is_not_told_to_become_a_dng():
    """A DNG of sensor data alone said "convert it to DNG/JPEG/TIFF"."""
    out = io.BytesIO()
    cfa = np.random.default_rng(0).integers(0, 4095, (120, 160)).astype(np.uint16)
    tifffile.imwrite(out, cfa, photometric=32803, extratags=[(50706, "B", 4, (1, 4, 0, 0), True),
                                                              (33421, "H", 2, (2, 2), True),
                                                              (33422, "B", 4, (0, 1, 1, 2), True)])
    (item,) = _items(out.getvalue(), "IMG_0001.dng")
    assert isinstance(item, ItemError), item
    assert item.error == "camera RAW with no embedded preview: export it as JPEG or TIFF (DNG)", item.error


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="peak memory read from /proc (Linux)")
def test_a_one_page_tiff_is_not_copied_once_decoded(tmp_path):
    """A TIFF's pages were each copied after decoding (a next page decodes into the same pixels), the last one too:
    a 9000 × 9000 RGB LZW TIFF peaked at 867 MB, now 558 MB. Measured in a process of its own."""
    import subprocess
    import sys

    row = np.dstack([np.arange(5000) // 20 % 256, np.arange(5000) // 30 % 256, np.arange(5000) // 40 % 256])
    tifffile.imwrite(tmp_path / "big.tif", np.repeat(row.astype(np.uint8), 5000, axis=0), photometric="rgb",
                     compression="zlib", rowsperstrip=64, metadata=None)  # a small file: the pixels are what counts
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, _picture(), photometric="rgb", compression="lzw", metadata=None)
    # VmHWM, the process's own peak (ru_maxrss carries over from the pytest process across exec)
    code = f"""
from medimg.sources import open_input
def peak():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
list(open_input({str(small)!r}))  # everything a read imports, loaded
before = peak()
(item,) = open_input({str(tmp_path / "big.tif")!r})
print(item.image.size, peak() - before)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    size, grown = out.stdout.split(")")
    assert size == "(5000, 5000"
    decoded_kb = 5000 * 5000 * 4 // 1024  # Pillow's RGB: 4 bytes a pixel
    assert int(grown) < 1.5 * decoded_kb, (int(grown), decoded_kb)  # was twice: the pixels and their copy


def test_every_page_keeps_its_own_pixels():
    """Only the last page shares what Pillow decoded; the pages before it are copies the next page cannot change."""
    planes = [np.full((60, 80, 3), v, np.uint8) for v in (10, 120, 240)]
    out = io.BytesIO()
    tifffile.imwrite(out, np.stack(planes), photometric="rgb", compression="lzw", metadata=None)
    got = _items(out.getvalue())
    assert [np.asarray(i.image)[0, 0, 0] for i in got] == [10, 120, 240], got
