"""Images near the pixel cap are converted to 8 bits without whole-frame float or RGBA copies: opening one
and preparing it for the model takes little memory beyond its decoded pixels (a 100 Mpx frame used to take
several GB). Peak RSS is measured in a fresh interpreter, since Pillow's buffers are not traced by tracemalloc."""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import builders as b

SIDE = 6000  # 36 Mpx: big enough for whole-frame copies to stand out, small enough to stay quick

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS is read from Linux /proc")

MEASURE = """
import json, sys
from medimg.model.preprocess import prepare
from medimg.sources import ImageItem, open_input

def run(path):
    found = []
    for item in open_input(path):
        assert isinstance(item, ImageItem), item.error
        prepare(item.image, 128)
        found.append([item.image.mode, list(item.image.size)])
    return found

def rss(field):  # VmRSS: now; VmHWM: the peak
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

run(sys.argv[1])  # the small file first: lazy imports and decoder set-up are not counted
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak starts again from here
except OSError:  # not allowed: the peak so far counts too, which only errs on the safe side
    pass
start = rss("VmRSS")
found = run(sys.argv[2])
print(json.dumps({"grew": rss("VmHWM") - start, "items": found}))
"""


def peak_growth(small: Path, big: Path) -> dict:
    """How far peak RSS rose while opening and preparing `big` (after doing `small` the same way)."""
    done = subprocess.run([sys.executable, "-c", MEASURE, str(small), str(big)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def gradient(side: int) -> np.ndarray:
    """int16 CT-like values: a ramp across with a step down the middle."""
    row = np.linspace(-1000, 2000, side).astype(np.int16)
    plane = np.repeat(row[None, :], side, axis=0)
    plane[side // 2:] //= 2
    return plane


def write_dicom(path: Path, side: int) -> Path:
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    ds = b.dicom_dataset(ExplicitVRLittleEndian, CTImageStorage, "CT")
    ds.Rows = ds.Columns = side
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.PixelData = gradient(side).tobytes()
    path.write_bytes(b.dicom_bytes(ds))
    return path


def write_nrrd(path: Path, side: int) -> Path:
    header = (f"NRRD0004\ntype: short\ndimension: 2\nsizes: {side} {side}\nendian: little\n"
              f"encoding: gzip\n\n").encode()
    path.write_bytes(header + gzip.compress(gradient(side).astype("<i2").tobytes(), compresslevel=1))
    return path


def write_png_rgba16(path: Path, side: int) -> Path:
    """A 16-bit RGBA PNG (Pillow reads it as 8-bit RGBA but cannot write one), half see-through."""
    row = np.empty((side, 4), ">u2")
    row[:, 0] = np.linspace(0, 65535, side)
    row[:, 1], row[:, 2] = 30000, 65535 - row[:, 0]
    row[:, 3] = np.where(np.arange(side) % 100 < 50, 65535, 20000)
    packer, same = zlib.compressobj(1), b"\x02" + bytes(row.nbytes)  # filter Up: each row as the one above
    data = packer.compress(b"\x00" + row.tobytes()) + b"".join(packer.compress(same) for _ in range(side - 1))
    data += packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", side, side, 16, 6, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def write_png_grey16(path: Path, side: int) -> Path:
    from PIL import Image

    Image.fromarray((gradient(side).astype(np.int32) + 1000).astype(np.uint16)).save(path, compress_level=1)
    return path


LIMIT = 12  # bytes a pixel: the file, the decoded pixels and the 8-bit image fit; the float copies took 20-50


def check(tmp_path: Path, write, suffix: str, mode: str) -> None:
    small = write(tmp_path / f"small{suffix}", 64)
    big = write(tmp_path / f"big{suffix}", SIDE)
    got = peak_growth(small, big)
    assert got["items"] == [[mode, [SIDE, SIDE]]]
    limit = LIMIT * SIDE * SIDE
    assert got["grew"] < limit, f"peak RSS grew {got['grew'] / 2**20:.0f} MB, over {limit / 2**20:.0f} MB"


def test_big_16bit_dicom_is_windowed_without_float_copies(tmp_path):
    check(tmp_path, write_dicom, ".dcm", "L")


def test_big_nrrd_slice_is_scaled_without_float_copies(tmp_path):
    check(tmp_path, write_nrrd, ".nrrd", "L")


def test_big_16bit_rgba_png_is_composited_on_white_in_strips(tmp_path):
    check(tmp_path, write_png_rgba16, ".png", "RGBA")


def test_big_16bit_greyscale_png_is_scaled_without_float_copies(tmp_path):
    check(tmp_path, write_png_grey16, ".png", "I;16")
