"""Detached headers in 7z archives: the header is read with its data file from the same folder whichever comes
first, as in a folder, zip or tar, and the data file's row is the note naming its header. Before, the header was
an error ("detached header … give both files together") and the data file a generic note. Both orders for
each kind of header are in test_tar_pairs_s36.py, with the tars."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from medimg.sources import Blob, ImageItem, Limits, input_tasks, open_input
from test_tar_pairs_s36 import mhd, seven, voxels

SOLID = ["solid", "blocks"]


def items_of(data: bytes, name: str = "e.7z", **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def png() -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((64, 64), 90, np.uint8)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("solid", SOLID)
def test_many_pairs_in_either_order_each_read_their_own_data(solid):
    members = [(f"s/v{k}.raw", voxels(k, 16).tobytes()) for k in range(12)]  # every data file first
    members += [(f"s/v{k}.mhd", mhd(f"v{k}", 16)) for k in range(12)]
    members += [(f"t/v{k}.mhd", mhd(f"v{k}", 16)) for k in range(12)]  # every header first
    members += [(f"t/v{k}.raw", voxels(100 + k, 16).tobytes()) for k in range(12)]
    items = items_of(seven(members, solid))
    images = {i.origin: i for i in items if isinstance(i, ImageItem)}
    assert len(images) == 24 and len(items) == 48
    for k in range(12):
        for folder, seed in (("s", k), ("t", 100 + k)):
            got = np.asarray(images[f"e.7z:{folder}/v{k}.mhd"].image.convert("L"))
            assert np.array_equal(got, voxels(seed, 16)), (folder, k)


def test_a_header_is_not_given_a_data_file_from_another_folder_or_archive():
    """A header at the top of a 7z inside the 7z took the outer archive's top-level v.raw."""
    inner = seven([("v.mhd", mhd("v"))])
    items = items_of(seven([("inner.7z", inner), ("v.raw", voxels(1).tobytes()), ("s/w.mhd", mhd("w")),
                            ("t/w.raw", voxels(2).tobytes())]))
    by = {i.origin: i for i in items}
    assert len(items) == 4
    assert "its data file v.raw: not in the same folder of the archive" in by["e.7z:inner.7z:v.mhd"].error
    assert "its data file w.raw: not in the same folder of the archive" in by["e.7z:s/w.mhd"].error
    for data_file in ("e.7z:v.raw", "e.7z:t/w.raw"):
        assert by[data_file].skipped and "data file" not in by[data_file].error


def test_a_pair_inside_a_nested_7z_is_read():
    inner = seven([("v.raw", voxels(3).tobytes()), ("v.mhd", mhd("v"))])
    items = items_of(seven([("inner.7z", inner), ("z.png", png())]))
    assert [i.origin for i in items] == ["e.7z:inner.7z:v.mhd", "e.7z:inner.7z:v.raw", "e.7z:z.png"]
    assert np.array_equal(np.asarray(items[0].image.convert("L")), voxels(3))
    assert items[1].error == "skipped: the data file of v.mhd, read with it"


@pytest.mark.parametrize("first", ["header", "data"])
def test_a_data_file_over_max_input_bytes_is_named_by_its_header_error(first):
    big = voxels(1, 1000).tobytes()  # 1 MB
    pair = [("s/v.mhd", mhd("v", 1000)), ("s/v.raw", big)]
    items = items_of(seven((pair if first == "header" else pair[::-1]) + [("s/z.png", png())]),
                     max_input_bytes=500_000)
    by = {i.origin: i for i in items}
    assert "its data file v.raw: over the max_input_bytes cap of 500,000" in by["e.7z:s/v.mhd"].error
    assert "over the max_input_bytes cap" in by["e.7z:s/v.raw"].error
    assert isinstance(by["e.7z:s/z.png"], ImageItem) and len(items) == 3


@pytest.mark.parametrize("solid", SOLID)
@pytest.mark.parametrize("first", ["header", "data"])
def test_the_data_file_is_charged_to_zip_max_bytes_once(first, solid):
    """A 2.25 MB .raw under a 3 MB zip_max_bytes: charged twice, the archive would stop before z.png."""
    pair = [("s/v.mhd", mhd("v", 1500)), ("s/v.raw", voxels(1, 1500).tobytes())]
    members = (pair if first == "header" else pair[::-1]) + [("s/z.png", png())]
    items = items_of(seven(members, solid), zip_max_bytes=3_000_000)
    by = {i.origin: i for i in items}
    assert by["e.7z:s/v.mhd"].image.size == (1500, 1500)
    assert by["e.7z:s/v.raw"].error == "skipped: the data file of v.mhd, read with it"
    assert by["e.7z:s/z.png"].image.size == (64, 64) and len(items) == 3


def test_at_most_max_input_bytes_of_data_files_wait_for_their_headers():
    """Past max_input_bytes of data files kept for headers to come, the oldest goes on as a member of its own, and
    its header, coming later, says why it was not read."""
    members = [(f"s/v{k}.raw", voxels(k, 200).tobytes()) for k in range(5)]  # 40 kB each
    members += [(f"s/v{k}.mhd", mhd(f"v{k}", 200)) for k in range(5)]
    items = items_of(seven(members), max_input_bytes=100_000)
    by = {i.origin: i for i in items}
    assert len(items) == 10
    for k in range(3):  # dropped while v3 and v4 came
        assert not by[f"e.7z:s/v{k}.raw"].error.startswith("skipped: the data file")
        assert "came more than the max_input_bytes cap of 100,000 of data files before its header" in \
            by[f"e.7z:s/v{k}.mhd"].error
    for k in (3, 4):
        assert by[f"e.7z:s/v{k}.mhd"].image.size == (200, 200)
        assert by[f"e.7z:s/v{k}.raw"].error == f"skipped: the data file of v{k}.mhd, read with it"


@pytest.mark.parametrize("done_half", ["header", "data"])
def test_a_resumed_run_gives_the_half_not_done_of_a_pair(done_half, tmp_path):
    path = tmp_path / "e.7z"
    path.write_bytes(seven([("s/v.raw", voxels(1).tobytes()), ("s/v.mhd", mhd("v")), ("s/z.png", png())]))
    done = {f"{path}:s/v.mhd", f"{path}:s/z.png"} if done_half == "header" else {f"{path}:s/v.raw"}
    got = [i for task in input_tasks([path], Limits(), skip=done.__contains__) for i in task()]
    if done_half == "header":
        item, = got
        assert item.origin == f"{path}:s/v.raw" and item.error == "skipped: the data file of v.mhd, read with it"
    else:
        assert [i.origin for i in got] == [f"{path}:s/v.mhd", f"{path}:s/z.png"]
        assert isinstance(got[0], ImageItem) and got[0].image.size == (32, 32)
