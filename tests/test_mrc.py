"""Electron microscopy MRC files written here by mrcfile: micrographs, stacks, volumes, damage."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest

import builders as b
from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input

mrcfile = pytest.importorskip("mrcfile")


def mrc_bytes(data: np.ndarray, tmp_path, volume: bool = True, voxel: float = 1.06) -> bytes:
    path = tmp_path / "m.mrc"
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(data)
        if data.ndim == 3 and not volume:
            m.set_image_stack()
        m.voxel_size = voxel
    return path.read_bytes()


def planes(n=5, h=60, w=80) -> np.ndarray:
    """float32 planes of noise; plane i has a bright bar at x = 10 i near the top (row 5–10, y up in EM)."""
    a = np.random.default_rng(0).normal(0, 1, (n, h, w)).astype(np.float32)
    for i in range(n):
        a[i, 5:10, 10 * i:10 * i + 6] = 40
    return a


def bar_x(item: ImageItem) -> int:
    px = np.asarray(item.image)
    return int(np.argmax(px[-8] > 200))  # shown with y up: the rows near y = 0 are at the bottom


def items_of(data: bytes, name="m.mrc", **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def test_micrograph_volume_and_stack(tmp_path):
    item, = items_of(mrc_bytes(planes(1)[0], tmp_path))
    assert item.format == "MRC" and item.locator == "" and item.image.mode == "L" and item.image.size == (80, 60)
    assert bar_x(item) == 0 and item.metadata["voxel_size_angstrom"] == 1.06 and item.metadata["kind"] == "image"
    item, = items_of(mrc_bytes(planes(), tmp_path))
    assert item.locator == "plane 3 of 5" and bar_x(item) == 20 and item.metadata["kind"] == "volume"
    items = items_of(mrc_bytes(planes(), tmp_path, volume=False), all_frames=True)
    assert [bar_x(i) for i in items] == [0, 10, 20, 30, 40] and items[0].metadata["kind"] == "stack"


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.uint16, np.float16])
def test_modes(tmp_path, dtype):
    a = (planes(1)[0] * 3 + (100 if np.dtype(dtype).kind == "u" else 0)).astype(dtype)
    item, = items_of(mrc_bytes(a, tmp_path))
    assert bar_x(item) == 0 and item.metadata["dtype"] == np.dtype(dtype).name


def test_four_bit_mode(tmp_path):
    """Mode 101 packs two voxels a byte (counting electron detectors); mrcfile does not read it: a clear error."""
    a = np.zeros((60, 80), np.int8)
    a[5:10, 0:6] = 15
    item, = items_of(mrc_bytes(a, tmp_path))
    assert item.metadata["mode"] == 0
    path = tmp_path / "m.mrc"
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(a.astype(np.uint8))
        m.header.mode = 101
    data = bytearray(path.read_bytes()[:1024]) + bytes(((a[:, ::2] & 15) | (a[:, 1::2] << 4)).astype(np.uint8))
    err, = items_of(bytes(data))
    assert isinstance(err, ItemError) and err.error == "not a readable MRC file: Unrecognised mode '101'"


def test_big_file_on_disk_is_memory_mapped(tmp_path):
    path = tmp_path / "tomo.rec"
    path.write_bytes(mrc_bytes(planes(40, 256, 256), tmp_path))
    item, = list(open_input(path, Limits(max_input_bytes=10_000)))
    assert isinstance(item, ImageItem) and item.locator == "plane 21 of 40" and item.origin == str(path)
    err, = list(open_input(path, Limits(max_slide_bytes=10_000)))
    assert "max_slide_bytes" in err.error


def test_caps_complex_maps_and_damage(tmp_path):
    data = mrc_bytes(planes(), tmp_path)
    err, = items_of(data, max_pixels=100)
    assert isinstance(err, ItemError) and "max_pixels" in err.error
    fft, = items_of(mrc_bytes(np.zeros((16, 16), np.complex64), tmp_path))
    assert isinstance(fft, ItemError) and fft.skipped and "complex" in fft.error
    rng = random.Random(5)
    for k in range(60):
        bad = bytearray(data)
        if k % 2:
            bad = bad[:rng.randrange(216, len(bad))]
        else:
            for _ in range(rng.choice([1, 8, 50])):
                bad[rng.randrange(0, 1024)] = rng.randrange(256)
        bad[208:214] = b"MAP DA"
        b.assert_clear(items_of(bytes(bad)))  # only the header is damaged: a damaged body is just noise


def test_not_taken_for_other_files():
    from medimg.sources.mrc import accepts

    assert not accepts(bytes(1024), Blob("x", b""))
    assert not accepts(io.BytesIO(b"MAP ").getvalue(), Blob("x", b""))


def test_huge_extended_header_length_is_not_read(tmp_path):
    """nsymbt (byte 92) near 2^31 on a small file: refused from the header, without allocating what it claims."""
    import struct
    import tracemalloc

    data = bytearray(mrc_bytes(planes(1, 8, 8)[0], tmp_path))
    data[92:96] = struct.pack("<i", 2**28)
    path = tmp_path / "ext.mrc"
    path.write_bytes(bytes(data))
    for source in (path, Blob("ext.mrc", bytes(data), name="ext.mrc")):
        tracemalloc.start()
        try:
            err, = list(open_input(source, Limits()))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert isinstance(err, ItemError) and "cut short" in err.error and f"{2**28 + 1024 + 256:,}" in err.error
        assert peak < 20_000_000, peak
    short = tmp_path / "short.mrc"
    short.write_bytes(bytes(data[:600]))
    err, = list(open_input(short, Limits()))
    assert isinstance(err, ItemError) and "less than its 1,024-byte header" in err.error


def test_a_wrong_machine_stamp_is_read_in_the_byte_order_that_makes_sense(tmp_path):
    """A big-endian file stamped little-endian (they exist): read as mrcfile's permissive mode reads it."""
    import mrcfile

    path = tmp_path / "wrong_stamp.mrc"
    with mrcfile.new(path) as m:
        m.set_data(np.arange(64 * 48 * 3, dtype=np.float32).reshape(3, 48, 64).astype(">f4"))
    raw = bytearray(path.read_bytes())
    assert raw[212:214] == b"\x11\x11"
    raw[212:214] = b"\x44\x44"
    path.write_bytes(bytes(raw))
    for got in (list(open_input(path)), list(open_input(Blob("w.mrc", bytes(raw))))):
        assert len(got) == 1 and isinstance(got[0], ImageItem) and got[0].image.size == (64, 48), got


@pytest.mark.parametrize("signed_flag", [0, 1])
def test_imod_says_whether_its_bytes_are_unsigned(tmp_path, signed_flag):
    """IMOD's mode 0 holds unsigned bytes unless bit 0 of its flags says signed (mrcfile reads all as signed):
    a dark-to-bright ramp 0..255 must not wrap at 128."""
    import struct

    ramp = np.tile(np.arange(256, dtype=np.uint8), (64, 1))
    data = bytearray(mrc_bytes(ramp.view(np.int8), tmp_path))
    struct.pack_into("<ii", data, 152, 1146047817, signed_flag)  # "IMOD" and its flags
    (item,) = items_of(bytes(data))
    row = np.asarray(item.image, dtype=int)[32]
    if signed_flag:  # the same bytes as signed: 128..255 are the negative values, darker than 0..127
        assert row[200] < row[100]
    else:
        assert np.all(np.diff(row) >= 0) and row[0] < 5 and row[255] > 250


def test_unsigned_bytes_without_imod_stamp_are_read_as_unsigned(tmp_path):
    """A mode 0 micrograph of unsigned bytes from a writer that does not say so (no IMOD stamp): grey 60..200,
    read as signed, would put its brightest pixels (past 127) below its darkest."""
    rng = np.random.default_rng(7)
    grey = np.clip(130 + 30 * np.sin(np.arange(96) / 8)[None, :] + rng.normal(0, 4, (80, 96)), 0, 255).astype(np.uint8)
    (item,) = items_of(mrc_bytes(grey.view(np.int8), tmp_path))
    shown = np.asarray(item.image, dtype=float)[::-1]  # y up
    assert item.metadata["dtype"] == "uint8"
    assert np.corrcoef(shown.ravel(), grey.astype(float).ravel())[0, 1] > 0.95


def test_signed_bytes_crossing_zero_stay_signed(tmp_path):
    """A genuinely signed map (values -40..40 around zero) is not taken for unsigned bytes."""
    rng = np.random.default_rng(8)
    signed = np.clip(40 * np.sin(np.arange(96) / 8)[None, :] + rng.normal(0, 3, (80, 96)), -127, 127).astype(np.int8)
    (item,) = items_of(mrc_bytes(signed, tmp_path))
    shown = np.asarray(item.image, dtype=float)[::-1]
    assert item.metadata["dtype"] == "int8"
    assert np.corrcoef(shown.ravel(), signed.astype(float).ravel())[0, 1] > 0.95
