"""Raster formats Pillow reads that were unrecognised content before: Photoshop PSD (a lab's figure as saved; its
composite image, however many layers), QOI, SGI, PCX, DDS, and TGA (no magic bytes: known by its name and
header). Each is read, held to max_pixels from its header, and a cut-short file is a clear error."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from PIL import Image

from medimg.sources import Limits, open_inputs


def _psd(composite: np.ndarray, layers: tuple[np.ndarray, ...] = ()) -> bytes:
    """A Photoshop file (version 1, 8-bit RGB, raw): `composite` (h×w×3) as its merged image and `layers` (each
    h×w×3, the whole canvas) as its layers."""
    h, w, _ = composite.shape
    out = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, h, w, 8, 3) + struct.pack(">II", 0, 0)  # no colours, resources
    if layers:
        recs, data = b"", b""
        for i, layer in enumerate(layers):
            name = bytes([2]) + f"L{i}".encode() + b"\0"  # a Pascal string padded to 4 bytes
            extra = struct.pack(">II", 0, 0) + name  # no mask, no blending ranges
            recs += struct.pack(">iiiiH", 0, 0, h, w, 3) + b"".join(struct.pack(">hI", c, 2 + h * w) for c in range(3))
            recs += b"8BIMnorm" + bytes([255, 0, 0, 0]) + struct.pack(">I", len(extra)) + extra
            data += b"".join(struct.pack(">H", 0) + layer[:, :, c].tobytes() for c in range(3))
        info = struct.pack(">h", len(layers)) + recs + data
        info += b"\0" * (len(info) % 2)
        out += struct.pack(">II", len(info) + 4, len(info)) + info
    else:
        out += struct.pack(">I", 0)
    return out + struct.pack(">H", 0) + b"".join(composite[:, :, c].tobytes() for c in range(3))


def _picture() -> np.ndarray:
    arr = np.zeros((40, 60, 3), np.uint8)
    arr[:, :30] = (200, 30, 30)
    arr[:, 30:] = (20, 40, 220)
    return arr


@pytest.mark.parametrize("name,fmt", [("x.tga", "TGA"), ("x.qoi", "QOI"), ("x.sgi", "SGI"), ("x.pcx", "PCX"),
                                      ("x.dds", "DDS"), ("x.ICB", "TGA")])
def test_a_pillow_format_is_read_with_its_pixels(tmp_path, name, fmt):
    path = tmp_path / name
    Image.fromarray(_picture()).save(path, fmt)
    (item,) = open_inputs([str(path)])
    assert getattr(item, "error", None) is None, item
    assert item.format == fmt and item.image.size == (60, 40), item
    assert np.array_equal(np.asarray(item.image.convert("RGB")), _picture())


def test_a_photoshop_file_gives_its_composite_once_however_many_layers(tmp_path):
    flat, layered = tmp_path / "flat.psd", tmp_path / "layered.psd"
    flat.write_bytes(_psd(_picture()))
    blank = np.zeros_like(_picture())
    layered.write_bytes(_psd(_picture(), (blank, blank + 90)))
    for limits in (Limits(), Limits(all_frames=True)):  # layers are not frames
        items = list(open_inputs([str(flat), str(layered)], limits))
        assert [i.origin for i in items] == [str(flat), str(layered)], items
        for item in items:
            assert item.format == "PSD" and item.locator == "", item
            assert np.array_equal(np.asarray(item.image.convert("RGB")), _picture())


def test_a_large_photoshop_document_is_a_clear_error(tmp_path):
    path = tmp_path / "big.psb"
    data = bytearray(_psd(_picture()))
    data[5] = 2  # version 2: PSB
    path.write_bytes(bytes(data))
    (item,) = open_inputs([str(path)])
    assert "(PSB) is not decoded" in item.error, item


def test_tga_is_known_by_its_name_only(tmp_path):
    """A TGA header is a few plausible numbers, so any file could pass for one: only a TGA name is read as one."""
    named, other = tmp_path / "x.tga", tmp_path / "x.bin"
    Image.fromarray(_picture()).save(named, "TGA")
    other.write_bytes(named.read_bytes())
    got, unknown = open_inputs([str(named), str(other)])
    assert got.format == "TGA", got
    assert "unrecognised content" in unknown.error, unknown


def test_the_pixel_cap_is_checked_from_the_header(tmp_path):
    huge = tmp_path / "huge.tga"  # 60000×60000 declared, 1 kB of pixels
    huge.write_bytes(bytes([0, 0, 2]) + bytes(9) + struct.pack("<HH", 60000, 60000) + bytes([24, 0]) + bytes(1000))
    small = tmp_path / "x.qoi"
    Image.fromarray(_picture()).save(small, "QOI")
    psd = tmp_path / "x.psd"
    psd.write_bytes(_psd(_picture()))
    items = list(open_inputs([str(huge), str(small), str(psd)], Limits(max_pixels=1000)))
    assert all("max_pixels" in i.error and "not decoded" in i.error for i in items), items


@pytest.mark.parametrize("name,fmt", [("x.tga", "TGA"), ("x.qoi", "QOI"), ("x.sgi", "SGI"), ("x.pcx", "PCX"),
                                      ("x.dds", "DDS"), ("x.psd", None)])
def test_a_cut_short_file_is_a_clear_error(tmp_path, name, fmt):
    path = tmp_path / name
    if fmt:
        Image.fromarray(_picture()).save(path, fmt)
    else:
        path.write_bytes(_psd(_picture()))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    (item,) = open_inputs([str(path)])
    assert "corrupt or truncated" in item.error or "could not read" in item.error, item  # QOI: when decoded


def test_a_misnamed_file_with_their_name_says_so(tmp_path):
    path = tmp_path / "scan.psd"
    path.write_bytes(b"this is not a Photoshop file at all" * 4)
    (item,) = open_inputs([str(path)])
    assert "named PSD but not readable" in item.error, item
