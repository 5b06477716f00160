"""Zeiss CZI files written here by pylibCZIrw (libCZI): fluorescence z-stacks, brightfield, a slide scan."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

import builders as b
from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input

pyczi = pytest.importorskip("pylibCZIrw.czi")


def squares(c: int, shape=(300, 400)) -> np.ndarray:
    a = np.random.default_rng(c).integers(0, 40, shape, dtype=np.uint16)
    a[20 + 60 * c:60 + 60 * c, 20 + 80 * c:80 + 80 * c] = 3000
    return a


def at(image, c: int) -> tuple:
    return tuple(int(v) for v in np.asarray(image.convert("RGB"))[40 + 60 * c, 50 + 80 * c])


def fluorescence(path, channels=3, zs=3, colours=None) -> str:
    with pyczi.create_czi(str(path), exist_ok=True) as w:
        for z in range(zs):
            for c in range(channels):
                w.write(squares(c)[..., None], plane={"C": c, "Z": z, "T": 0})
        settings = None
        if colours:
            settings = {c: pyczi.ChannelDisplaySettingsDataClass(True, pyczi.TintingMode.Color, pyczi.Rgb8Color(
                np.uint8(r), np.uint8(g), np.uint8(b)), 0.0, 1.0) for c, (r, g, b) in enumerate(colours)}
        w.write_metadata("cells", channel_names={c: f"ch{c}" for c in range(channels)}, scale_x=0.2e-6,
                         scale_y=0.2e-6, display_settings=settings)
    return str(path)


def test_fluorescence_z_stack_is_one_composite_of_the_middle_slice(tmp_path):
    item, = list(open_input(fluorescence(tmp_path / "cells.czi")))
    assert isinstance(item, ImageItem) and item.format == "CZI" and item.locator == "z 2 of 3"
    assert item.image.mode == "RGB" and item.image.size == (400, 300) and item.full_size is None
    red, green, blue = (at(item.image, c) for c in range(3))
    assert red[0] > 200 and red[1] < 60 and green[1] > 200 and green[0] < 60 and blue[2] > 200 and blue[1] < 60
    assert item.metadata["channels"] == 3 and item.metadata["um_per_px"] == 0.2
    items = list(open_input(tmp_path / "cells.czi", Limits(all_frames=True)))
    assert [i.locator for i in items] == ["z 1 of 3", "z 2 of 3", "z 3 of 3"]


def test_display_colours_from_the_file(tmp_path):
    item, = list(open_input(fluorescence(tmp_path / "c.czi", channels=2, zs=1, colours=[(255, 0, 255), (0, 255, 255)])))
    magenta, cyan = at(item.image, 0), at(item.image, 1)
    assert magenta[0] > 200 and magenta[2] > 200 and magenta[1] < 60
    assert cyan[1] > 200 and cyan[2] > 200 and cyan[0] < 60
    assert item.locator == ""


def test_brightfield_bgr_comes_out_rgb(tmp_path):
    rgb = np.zeros((200, 300, 3), np.uint8)
    rgb[:, :150] = (220, 40, 40)
    rgb[:, 150:] = (40, 40, 220)
    with pyczi.create_czi(str(tmp_path / "he.czi"), exist_ok=True) as w:
        w.write(np.ascontiguousarray(rgb[..., ::-1]), plane={"C": 0})  # libCZI stores BGR
    item, = list(open_input(tmp_path / "he.czi"))
    px = np.asarray(item.image)
    assert tuple(px[100, 50]) == (220, 40, 40) and tuple(px[100, 250]) == (40, 40, 220)
    assert item.metadata["pixel_types"] == ["Bgr24"]


def test_slide_scan_gives_a_tissue_field(tmp_path):
    """A 6000 × 4500 brightfield scan at 0.5 µm/px: a 512 px field, 512 µm wide, inside the tissue."""
    scan = np.full((4500, 6000, 3), 240, np.uint8)
    scan[2500:4200, 3800:5800] = (150, 80, 170)  # tissue, bottom right (as BGR)
    path = tmp_path / "scan.czi"
    with pyczi.create_czi(str(path), exist_ok=True) as w:
        for y in range(0, 4500, 1500):
            for x in range(0, 6000, 2000):
                w.write(np.ascontiguousarray(scan[y:y + 1500, x:x + 2000]), plane={"C": 0}, location=(x, y))
        w.write_metadata("scan", scale_x=0.5e-6, scale_y=0.5e-6)
    item, = list(open_input(path))
    assert item.image.size == (512, 512) and (item.width, item.height) == (6000, 4500)
    assert item.locator == "tissue field 512 µm wide"
    f = item.metadata["field"]
    assert 3800 <= f["x"] and f["x"] + f["size"] <= 5800 and 2500 <= f["y"] and f["y"] + f["size"] <= 4200
    assert np.asarray(item.image).mean(axis=(0, 1))[1] < 120  # tissue, not glass


def test_bytes_go_through_a_temporary_file(tmp_path):
    data = open(fluorescence(tmp_path / "cells.czi"), "rb").read()
    item, = list(open_input(Blob("upload.czi", data)))
    assert item.origin == "upload.czi" and item.format == "CZI"


def test_without_the_extra_a_czi_file_is_one_clear_error(tmp_path, monkeypatch):
    path = fluorescence(tmp_path / "cells.czi")
    monkeypatch.setitem(sys.modules, "pylibCZIrw", None)
    err, = list(open_input(path))
    assert isinstance(err, ItemError) and "pip install 'medimg[czi]'" in err.error


def test_damaged_files_give_clear_errors(tmp_path):
    clean = open(fluorescence(tmp_path / "cells.czi"), "rb").read()
    started = time.monotonic()
    for _, data in b.damaged(clean, seed=11, n=60, start=16, cut_every=3):
        b.assert_clear(list(open_input(Blob("bad.czi", data))))
    assert time.monotonic() - started < 60


def directory_entries(data: bytes) -> list[tuple[int, int]]:
    """(where each sub-block directory entry starts, where its sub-block segment starts)."""
    import struct

    (directory,) = struct.unpack_from("<q", data, 32 + 52)
    (count,) = struct.unpack_from("<i", data, directory + 32)
    at, found = directory + 160, []
    for _ in range(count):
        (position,) = struct.unpack_from("<q", data, at + 6)
        found.append((at, position))
        at += 32 + 20 * struct.unpack_from("<i", data, at + 28)[0]
    return found


def open_in_child(path) -> subprocess.CompletedProcess:
    code = "import sys\nfrom medimg.sources import open_input\nfor i in open_input(sys.argv[1]): print(repr(i))"
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("where, count", [("sub-block", -65531), ("sub-block", -16), ("directory", -1),
                                          ("directory", 0x7FFFFFFF)])
def test_sub_block_naming_an_impossible_number_of_dimensions_is_refused(tmp_path, where, count):
    """libCZI takes a sub-block's own DimensionCount of -65531 as within its cap of 40, and does not check a
    directory entry's at all: then the process dies (SIGSEGV or SIGBUS), a whole batch or server with it.
    Found by mutating files; run in a child here."""
    import struct

    data = bytearray(open(fluorescence(tmp_path / "cells.czi", channels=2, zs=1), "rb").read())
    entry, block = directory_entries(data)[1]
    struct.pack_into("<i", data, (block + 76) if where == "sub-block" else (entry + 28), count)
    (tmp_path / "bad.czi").write_bytes(data)
    run = open_in_child(tmp_path / "bad.czi")
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])
    said = f"sub-block 2 at byte {block}" if where == "sub-block" else "sub-block directory entry 2"
    assert f"not a readable CZI file: {said} names {count} dimensions; not read" in run.stdout


def test_bounding_box_of_millions_of_channels_is_refused_before_listing_them(tmp_path):
    """A directory entry whose channel index is 0x0F000000 makes the box span 251,658,240 channels: a list
    of them (and pylibCZIrw's pixel_types, a dict of them) took 15 GB and minutes."""
    import struct

    data = bytearray(open(fluorescence(tmp_path / "cells.czi", channels=2, zs=1), "rb").read())
    entry, _ = directory_entries(data)[0]
    names = [bytes(data[entry + 32 + 20 * k:entry + 33 + 20 * k]) for k in range(data[entry + 28])]
    struct.pack_into("<i", data, entry + 32 + 20 * names.index(b"C") + 4, 0x0F000000)
    started = time.monotonic()
    (err,) = list(open_input(Blob("wide.czi", bytes(data))))
    assert isinstance(err, ItemError) and err.error == ("CZI has 251,658,240 channels: too many to merge within the "
                                                        "max_pixels cap of 100,000,000; not decoded")
    assert time.monotonic() - started < 10


def test_sub_block_claiming_more_memory_than_there_is_is_told_in_plain_words(tmp_path):
    """A sub-block whose data size says 1 PB: libCZI's std::bad_alloc came out as the error."""
    import struct

    data = bytearray(open(fluorescence(tmp_path / "cells.czi", channels=2, zs=1), "rb").read())
    _, block = directory_entries(data)[1]
    struct.pack_into("<q", data, block + 40, 1 << 50)  # after the segment header, metadata and attachment sizes
    err, = list(open_input(Blob("bad.czi", bytes(data))))
    assert err.error == "could not read the CZI image: the file is damaged (it claims more memory than is available)"
