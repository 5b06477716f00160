"""Detached headers in tars (OASIS ships Analyze .hdr/.img pairs in .tar.gz): the header is read with its data
file whichever comes first, as in a folder or zip, and the data file's row is the note naming its header. Before,
the header was an error ("detached header … give both files together") and the data file a generic note. The
first test covers 7z archives too (solid, and one block for each member); test_7z_pairs_s36.py has the rest."""
from __future__ import annotations

import gzip
import io

import nibabel as nib
import numpy as np
import py7zr
import pytest
from PIL import Image

from builders import tar_bytes
from medimg.sources import Blob, ImageItem, Limits, input_tasks, open_input

MODES = [("w", "e.tar"), ("w:gz", "e.tgz")]


def seven(members: list[tuple[str, bytes]], solid: str = "solid") -> bytes:
    """A 7z of the members in this order: one solid block, or (appending) one block for each member."""
    out = io.BytesIO()
    if solid == "solid":
        with py7zr.SevenZipFile(out, "w") as z:
            for name, data in members:
                z.writestr(data, name)
    else:
        for k, (name, data) in enumerate(members):
            out.seek(0)
            with py7zr.SevenZipFile(out, "a" if k else "w") as z:
                z.writestr(data, name)
        blocks = len(py7zr.SevenZipFile(io.BytesIO(out.getvalue())).header.main_streams.unpackinfo.folders)
        assert blocks == len(members)
    return out.getvalue()


def pack(members, mode) -> bytes:
    """A tar ("w", "w:gz") or a 7z ("7z-solid", "7z-blocks": one block for each member) of the members in order."""
    return seven(members, mode[3:]) if mode.startswith("7z") else tar_bytes(members, mode)


def items_of(data: bytes, name: str, **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def voxels(seed: int, side: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (side, side), dtype=np.uint8)


def mhd(stem: str, side: int = 32, data_file: str = "") -> bytes:
    return (f"ObjectType = Image\nNDims = 2\nDimSize = {side} {side}\nElementType = MET_UCHAR\n"
            f"ElementDataFile = {data_file or stem + '.raw'}\n").encode()


def nhdr(stem: str, side: int = 32) -> bytes:
    return (f"NRRD0004\ntype: uint8\ndimension: 2\nsizes: {side} {side}\nencoding: gzip\n"
            f"data file: {stem}.raw.gz\n\n").encode()


def analyze(tmp_path, seed: int) -> tuple[bytes, bytes]:
    nib.AnalyzeImage(voxels(seed)[:, :, None].astype(np.int16), np.eye(4)).to_filename(tmp_path / f"a{seed}.hdr")
    return (tmp_path / f"a{seed}.hdr").read_bytes(), (tmp_path / f"a{seed}.img").read_bytes()


def pairs(kind: str, tmp_path, seed: int = 1) -> tuple[tuple[str, bytes], tuple[str, bytes]]:
    """(header, data file) members of one detached pair, in folder `s`."""
    if kind == "mhd":
        return ("s/v.mhd", mhd("v")), ("s/v.raw", voxels(seed).tobytes())
    if kind == "nhdr":
        return ("s/v.nhdr", nhdr("v")), ("s/v.raw.gz", gzip.compress(voxels(seed).tobytes()))
    hdr, img = analyze(tmp_path, seed)
    return ("s/a.hdr", hdr), ("s/a.img", img)


@pytest.mark.parametrize("mode,name", [*MODES, ("7z-solid", "e.7z"), ("7z-blocks", "e.7z")])
@pytest.mark.parametrize("first", ["header", "data"])
@pytest.mark.parametrize("kind", ["mhd", "nhdr", "analyze"])
def test_a_detached_header_is_read_with_its_data_file_whichever_comes_first(kind, first, mode, name, tmp_path):
    header, data = pairs(kind, tmp_path)
    png = io.BytesIO()
    Image.fromarray(np.full((64, 64), 90, np.uint8)).save(png, "PNG")
    members = [header, data] if first == "header" else [data, header]
    items = items_of(pack([("s/0.png", png.getvalue()), *members, ("s/z.png", png.getvalue())], mode), name)
    by = {i.origin: i for i in items}
    assert len(items) == 4, items
    image = by[f"{name}:{header[0]}"]
    assert isinstance(image, ImageItem), image
    for member, content in (header, data):  # the same pair in a folder on disk gives the same picture
        (tmp_path / member).parent.mkdir(exist_ok=True)
        (tmp_path / member).write_bytes(content)
    beside, = open_input(str(tmp_path / header[0]), Limits())
    assert np.array_equal(np.asarray(image.image), np.asarray(beside.image)), kind
    if kind != "analyze":  # nibabel turns Analyze's axes to RAS+
        assert np.array_equal(np.asarray(image.image.convert("L")), voxels(1)), kind
    note = by[f"{name}:{data[0]}"]
    assert note.skipped and note.error == f"skipped: the data file of {header[0].split('/')[-1]}, read with it"
    assert [i.origin for i in items][0] == f"{name}:s/0.png" and items[-1].origin == f"{name}:s/z.png"


@pytest.mark.parametrize("mode,name", MODES)
def test_many_pairs_in_either_order_each_read_their_own_data(mode, name):
    members = [(f"s/v{k}.raw", voxels(k, 16).tobytes()) for k in range(30)]  # every data file first
    members += [(f"s/v{k}.mhd", mhd(f"v{k}", 16)) for k in range(30)]
    members += [(f"t/v{k}.mhd", mhd(f"v{k}", 16)) for k in range(30)]  # every header first
    members += [(f"t/v{k}.raw", voxels(100 + k, 16).tobytes()) for k in range(30)]
    items = items_of(tar_bytes(members, mode), name)
    images = {i.origin: i for i in items if isinstance(i, ImageItem)}
    assert len(images) == 60 and len(items) == 120
    for k in range(30):
        for folder, seed in (("s", k), ("t", 100 + k)):
            got = np.asarray(images[f"{name}:{folder}/v{k}.mhd"].image.convert("L"))
            assert np.array_equal(got, voxels(seed, 16)), (folder, k)


@pytest.mark.parametrize("mode,name", MODES)
def test_a_header_whose_data_file_is_missing_says_so_as_in_a_zip(mode, name):
    members = [("s/v.mhd", mhd("v")), ("t/v.raw", voxels(1).tobytes())]  # another folder's v.raw: not its
    header, other = items_of(tar_bytes(members, mode), name)
    assert header.origin == f"{name}:s/v.mhd"
    assert "its data file v.raw: not in the same folder of the archive" in header.error
    assert other.skipped and "data file" not in other.error


def test_a_data_file_over_max_input_bytes_is_named_by_its_header_error():
    """In a plain tar the members after it are still read; its own row is the usual cap error."""
    big = voxels(1, 1000).tobytes()  # 1 MB
    png = io.BytesIO()
    Image.fromarray(np.full((64, 64), 90, np.uint8)).save(png, "PNG")
    for members in ([("s/v.mhd", mhd("v", 1000)), ("s/v.raw", big)], [("s/v.raw", big), ("s/v.mhd", mhd("v", 1000))]):
        items = items_of(tar_bytes(members + [("s/z.png", png.getvalue())], "w"), "e.tar", max_input_bytes=500_000)
        by = {i.origin: i for i in items}
        assert "its data file v.raw: over the max_input_bytes cap of 500,000" in by["e.tar:s/v.mhd"].error
        assert "over the max_input_bytes cap" in by["e.tar:s/v.raw"].error
        assert isinstance(by["e.tar:s/z.png"], ImageItem) and len(items) == 3


def test_in_a_compressed_tar_a_data_file_over_the_cap_ends_the_reading_and_its_header_says_why():
    big = voxels(1, 1000).tobytes()
    items = items_of(tar_bytes([("s/v.mhd", mhd("v", 1000)), ("s/v.raw", big)], "w:gz"), "e.tgz",
                     max_input_bytes=500_000)
    by = {i.origin: i for i in items}
    assert "the rest of the archive is not read" in by["e.tgz:s/v.raw"].error
    assert "its data file v.raw: member is 1,000,000 bytes, over the max_input_bytes" in by["e.tgz:s/v.mhd"].error


@pytest.mark.parametrize("mode,name", MODES)
@pytest.mark.parametrize("first", ["header", "data"])
def test_the_data_file_is_charged_to_zip_max_bytes_once(first, mode, name):
    """A 2.25 MB .raw under a 3 MB zip_max_bytes: charged twice, the archive would stop before z.png."""
    raw = voxels(1, 1500).tobytes()
    png = io.BytesIO()
    Image.fromarray(np.full((64, 64), 90, np.uint8)).save(png, "PNG")
    pair = [("s/v.mhd", mhd("v", 1500)), ("s/v.raw", raw)]
    members = (pair if first == "header" else pair[::-1]) + [("s/z.png", png.getvalue())]
    items = items_of(tar_bytes(members, mode), name, zip_max_bytes=3_000_000)
    by = {i.origin: i for i in items}
    assert by[f"{name}:s/v.mhd"].image.size == (1500, 1500)
    assert by[f"{name}:s/v.raw"].error == "skipped: the data file of v.mhd, read with it"
    assert by[f"{name}:s/z.png"].image.size == (64, 64) and len(items) == 3


def test_a_compressed_tar_keeps_at_most_max_input_bytes_of_data_files_waiting_for_headers():
    """Data files that come first are kept until their header comes; past max_input_bytes of them the oldest
    goes on as a member of its own, and its header, coming later, says why it was not read."""
    members = [(f"s/v{k}.raw", voxels(k, 200).tobytes()) for k in range(5)]  # 40 kB each
    members += [(f"s/v{k}.mhd", mhd(f"v{k}", 200)) for k in range(5)]
    items = items_of(tar_bytes(members, "w:gz"), "e.tgz", max_input_bytes=100_000)
    by = {i.origin: i for i in items}
    assert len(items) == 10
    for k in range(3):  # dropped while v3 and v4 came
        assert not by[f"e.tgz:s/v{k}.raw"].error.startswith("skipped: the data file")
        assert "came more than the max_input_bytes cap of 100,000 of data files before its header" in \
            by[f"e.tgz:s/v{k}.mhd"].error
    for k in (3, 4):
        assert by[f"e.tgz:s/v{k}.mhd"].image.size == (200, 200)
        assert by[f"e.tgz:s/v{k}.raw"].error == f"skipped: the data file of v{k}.mhd, read with it"
    plain = items_of(tar_bytes(members, "w"), "e.tar", max_input_bytes=100_000)  # read again from the archive
    assert sum(isinstance(i, ImageItem) for i in plain) == 5


@pytest.mark.parametrize("done_half", ["header", "data"])
def test_a_resumed_run_gives_the_half_not_done_of_a_pair(done_half, tmp_path):
    path = tmp_path / "e.tgz"
    path.write_bytes(tar_bytes([("s/v.raw", voxels(1).tobytes()), ("s/v.mhd", mhd("v"))], "w:gz"))
    done = {f"{path}:s/v.mhd"} if done_half == "header" else {f"{path}:s/v.raw"}
    item, = [i for task in input_tasks([path], Limits(), skip=done.__contains__) for i in task()]
    if done_half == "header":
        assert item.origin == f"{path}:s/v.raw" and item.error == "skipped: the data file of v.mhd, read with it"
    else:
        assert item.origin == f"{path}:s/v.mhd" and isinstance(item, ImageItem)


def test_headers_waiting_for_their_data_files_are_bounded(monkeypatch):
    """Past HEADERS_HELD bytes of headers waiting, a header is given at once and says its data file is not there."""
    from medimg.sources import tar_pairs

    monkeypatch.setattr(tar_pairs, "HEADERS_HELD", len(mhd("v0")) + 10)  # room for one
    members = [("s/v0.mhd", mhd("v0")), ("s/v1.mhd", mhd("v1")), ("s/v0.raw", voxels(0).tobytes()),
               ("s/v1.raw", voxels(1).tobytes())]
    items = items_of(tar_bytes(members, "w:gz"), "e.tgz")
    assert [i.origin for i in items] == ["e.tgz:s/v1.mhd", "e.tgz:s/v0.mhd", "e.tgz:s/v0.raw", "e.tgz:s/v1.raw"]
    assert "its data file v1.raw: not in the archive before it, and headers waiting for theirs already take" \
        in items[0].error
    assert isinstance(items[1], ImageItem) and items[2].error == "skipped: the data file of v0.mhd, read with it"
    assert items[3].skipped and "data file" not in items[3].error
