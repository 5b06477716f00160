"""Hostile inputs found by fuzzing session 35's new input paths (review s35_fuzz): ImageJ TIFFs read for
ever (a page chain looping back in tifffile; 4,294,967,295 channels of no rows), and files that made the
libraries print on stderr (an interlaced 16-bit grey+alpha PNG, a damaged TIFF, a float volume holding a
signalling NaN). Each file is built here."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import tifffile

import medimg
from medimg.sources import Blob, open_input
from test_png_grey_alpha import _chunk, _png16, _twelve_bits


PASSES = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def _interlaced_png16(arr: np.ndarray) -> bytes:
    """A 16-bit grey+alpha PNG stored interlaced (Adam7: seven passes of sub-images, each row unfiltered)."""
    h, w = arr.shape[:2]
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes()
                   for x0, y0, dx, dy in PASSES for row in arr[y0::dy, x0::dx] if row.size)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 4, 0, 0, 1))
            + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


def _grey_alpha() -> np.ndarray:
    grey = _twelve_bits()
    return np.stack([grey, np.full(grey.shape, 65535, np.uint16)], -1)


def _damaged_tiff() -> bytes:
    """A grey TIFF whose SamplesPerPixel says 49,409."""
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.full((8, 8), 90, np.uint8))
    data = bytearray(buf.getvalue())
    ifd = struct.unpack_from("<I", data, 4)[0]
    for k in range(struct.unpack_from("<H", data, ifd)[0]):
        at = ifd + 2 + 12 * k
        if struct.unpack_from("<H", data, at)[0] == 277:
            struct.pack_into("<H", data, at + 8, 49409)
            return bytes(data)
    raise AssertionError("no SamplesPerPixel tag")


def _signalling_nan_volume() -> bytes:
    """A float32 NIfTI volume with signalling NaNs (bits 7f800001) among its values."""
    vol = np.linspace(-1000, 1000, 64 * 64 * 3, dtype=np.float32).reshape(64, 64, 3)
    vol[10:20, 10:20] = np.array([0x7F800001], np.uint32).view(np.float32)[0]
    return nib.Nifti1Image(vol, np.eye(4)).to_bytes()


QUIET = {"an interlaced 16-bit grey+alpha PNG": ("x.png", lambda: _interlaced_png16(_grey_alpha())),
         "a TIFF with 49,409 samples a pixel": ("x.tif", _damaged_tiff),
         "a float volume with signalling NaNs": ("x.nii", _signalling_nan_volume)}


@pytest.mark.parametrize("case", list(QUIET))
def test_files_that_made_the_libraries_print_on_stderr_are_read_quietly(case, tmp_path):
    """libpng's warnings (through imagecodecs' logger), Pillow's logged TIFF errors and numpy's cast warning were
    printed on stderr, once per file or per process, by a program that set no logging up (the API used as a
    library, in a fresh interpreter as here; pytest's own handlers would hide it)."""
    name, build = QUIET[case]
    path = tmp_path / name
    path.write_bytes(build())
    code = "import sys; from medimg.sources import open_input; print(len(list(open_input(sys.argv[1]))))"
    run = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(Path(medimg.__file__).parents[1])})
    assert run.returncode == 0 and run.stdout.strip() == "1", run
    assert run.stderr == ""


def test_an_interlaced_16_bit_grey_alpha_png_shows_as_the_same_png_stored_plainly():
    arr = _grey_alpha()
    (plain,), (interlaced,) = (list(open_input(Blob(n, d))) for n, d in
                               [("p.png", _png16(arr)), ("i.png", _interlaced_png16(arr))])
    assert np.array_equal(np.asarray(plain.image), np.asarray(interlaced.image))
    assert np.asarray(interlaced.image)[..., 0].std() > 20  # stretched, not nearly black


def _imagej_chain_looping(channels: bytes = b"2147483648") -> bytes:
    """A 4-page ImageJ TIFF whose metadata tifffile rejects (`channels` of them) and whose last page's next-page
    offset points back at that page."""
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.arange(4 * 16 * 16, dtype=np.uint16).reshape(4, 16, 16), imagej=True,
                     metadata={"axes": "CYX"})
    data = bytearray(buf.getvalue())
    start = data.index(b"channels=4\n")
    end = data.index(b"\x00", start)  # the description keeps its length: "mode=grayscale" is cut short
    data[start:end] = data[start:end].replace(b"channels=4\n", b"channels=" + channels + b"\n")[:end - start]
    last = [p.offset for p in tifffile.TiffFile(io.BytesIO(bytes(data))).pages][-1]
    struct.pack_into("<I", data, last + 2 + 12 * struct.unpack_from("<H", data, last)[0], last)
    return bytes(data)


def test_an_imagej_tiff_with_bad_metadata_and_a_looping_page_chain_is_read(tmp_path):
    """tifffile's generic series, which it falls back to after ImageJ metadata it rejects, read a page chain that
    loops back on itself for ever (a fuzzed 132 KB stack never ended). The chain is now walked once first, which
    ends it at the loop; the four pages come out."""
    path = tmp_path / "stack.tif"
    path.write_bytes(_imagej_chain_looping())
    code = "import sys; from medimg.sources import open_input; print(len(list(open_input(sys.argv[1]))))"
    run = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(Path(medimg.__file__).parents[1])})
    assert run.returncode == 0 and run.stdout.strip() == "4", run


def _imagej_no_rows(channels: bytes = b"4294967295") -> bytes:
    """A 2-channel ImageJ TIFF whose first page has 0 rows and whose metadata claims `channels` channels."""
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.zeros((2, 16, 16), np.float32), imagej=True, metadata={"axes": "CYX"})
    data = bytearray(buf.getvalue())
    start = data.index(b"channels=2\n")
    end = data.index(b"\x00", start)
    data[start:end] = data[start:end].replace(b"channels=2\n", b"channels=" + channels + b"\n")[:end - start]
    ifd = struct.unpack_from("<I", data, 4)[0]
    for k in range(struct.unpack_from("<H", data, ifd)[0]):
        if struct.unpack_from("<H", data, ifd + 2 + 12 * k)[0] == 257:  # ImageLength
            struct.pack_into("<I", data, ifd + 2 + 12 * k + 8, 0)
    return bytes(data)


def test_an_imagej_tiff_claiming_4_billion_channels_of_no_rows_is_refused(tmp_path):
    """tifffile takes such a layout as it is (4,294,967,295 × 0 × 16): a list of a colour per channel was built
    for ever. Now a layout with no pixels or more than 2²² planes is an error."""
    path = tmp_path / "stack.tif"
    path.write_bytes(_imagej_no_rows())
    code = ("import sys; from medimg.sources import open_input; "
            "print(*[getattr(i, 'error', 'image') for i in open_input(sys.argv[1])], sep='\\n')")
    run = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(Path(medimg.__file__).parents[1])})
    assert run.returncode == 0, run
    assert "ImageJ TIFF layout CYX (4294967295, 0, 16) has no pixels or more than 4,194,304 planes" in run.stdout
