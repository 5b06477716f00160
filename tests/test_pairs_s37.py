"""Header/data-file pairing read the same way in a folder, a zip, a tar (plain and gzipped), a 7z and a request's
uploads, with real files written here.

- Only a NIfTI/Analyze `.hdr` reads a gzipped data file (`a.img.gz`, when there is no `a.img`), as nibabel and
  nifti_clib do. An `.mhd`'s `ElementDataFile` and an `.nhdr`'s `data file:` are opened by that exact name (MetaIO,
  pynrrd). Before, an `.mhd` naming `v.raw` with only `v.raw.gz` beside it gave two rows that contradict each
  other: the header "its data file v.raw: not found" and `v.raw.gz` "skipped: the data file of v.mhd, read with
  it" (so v.raw.gz was never read at all); and beside both `a.img` and `a.img.gz`, `a.img.gz` was called the data
  file of `a.hdr`, which reads `a.img`.
- Of a path given twice, the k-th header reads the k-th data file of its name in a tar or 7z as in a zip: before,
  `a.raw, a.raw, a.mhd` read the second a.raw in a tar or 7z and the first in a zip, and `a.mhd, a.mhd, a.raw,
  a.raw` read the first a.raw for both headers in a tar or 7z, the k-th for the k-th in a zip.
"""
from __future__ import annotations

import gzip
import io
import tarfile
import warnings
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from medimg.sources import ImageItem, Limits, input_tasks
from medimg.sources.base import Context
from medimg.sources.files import blobs_together

NOTE = "skipped: the data file of {}, read with it"
KINDS = ["folder", "zip", "tar", "tgz", "7z"]
ARCHIVES = ["zip", "tar", "tgz", "7z"]


def voxels(seed: int, side: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (side, side), dtype=np.uint8)


def mhd(data_file: str, side: int = 16) -> bytes:
    return (f"ObjectType = Image\nNDims = 2\nDimSize = {side} {side}\nElementType = MET_UCHAR\n"
            f"ElementDataFile = {data_file}\n").encode()


def nhdr(data_file: str, encoding: str = "raw") -> bytes:
    return (f"NRRD0004\ntype: uint8\ndimension: 2\nsizes: 16 16\nencoding: {encoding}\n"
            f"data file: {data_file}\n\n").encode()


def analyze(tmp_path: Path, seed: int, side: int = 16) -> tuple[bytes, bytes]:
    """An Analyze 7.5 .hdr and its .img, written by nibabel."""
    out = tmp_path / f"made{seed}"
    out.mkdir(exist_ok=True)
    nib.AnalyzeImage(voxels(seed, side)[:, :, None].astype(np.int16), np.eye(4)).to_filename(out / "a.hdr")
    return (out / "a.hdr").read_bytes(), (out / "a.img").read_bytes()


def png() -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((64, 64), 90, np.uint8)).save(out, "PNG")
    return out.getvalue()


def write(kind: str, members: list[tuple[str, bytes]], tmp_path: Path) -> Path:
    """The members, in this order, as files in a folder or in an archive (a name may be given twice in one)."""
    where = tmp_path / {"folder": "f", "zip": "e.zip", "tar": "e.tar", "tgz": "e.tgz", "7z": "e.7z"}[kind]
    if kind == "folder":
        where.mkdir()
        for name, data in members:
            assert not (where / name).exists()
            (where / name).write_bytes(data)
    elif kind == "zip":
        with warnings.catch_warnings(), zipfile.ZipFile(where, "w", zipfile.ZIP_DEFLATED) as z:
            warnings.simplefilter("ignore")  # a name given twice, on purpose
            for name, data in members:
                z.writestr(name, data)
    elif kind in ("tar", "tgz"):
        with tarfile.open(where, "w:gz" if kind == "tgz" else "w") as t:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    else:
        py7zr = pytest.importorskip("py7zr", reason="py7zr is needed to write a 7z")
        with py7zr.SevenZipFile(where, "w") as z:
            for name, data in members:
                z.writestr(data, name)
    return where


def rows(kind: str, members: list[tuple[str, bytes]], tmp_path: Path, **limits) -> dict:
    """Every row of the folder or archive, by its member name (`a (2).raw` for the second a.raw)."""
    where = write(kind, members, tmp_path)
    sep = "/" if kind == "folder" else ":"
    got = {}
    for task in input_tasks([where], limits=Limits(**limits)):
        for item in task():
            got[item.origin.removeprefix(f"{where}{sep}")] = item
    return got


def uploads(members: list[tuple[str, bytes]]) -> dict:
    """The members as one request's uploads."""
    files = [(name, (lambda data: lambda n: data if n < 0 else data[:n])(data), None) for name, data in members]
    ctx = Context(Limits())
    return {i.origin: i for blob in blobs_together(files, Limits().max_input_bytes) for i in ctx.open_blob(blob)}


def pixels(item) -> np.ndarray:
    assert isinstance(item, ImageItem), item
    return np.asarray(item.image.convert("L"))


def same_picture(item, seed: int, side: int = 16) -> bool:
    """Whether an Analyze row is the slice of voxels(seed): shown as the radiological view turns it (transposed,
    rows upside down) and windowed, so the same greys in the same order."""
    got, want = pixels(item).astype(int), voxels(seed, side).T[::-1]
    return got.shape == want.shape and np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.99


# --- the .gz rule -------------------------------------------------------------------------------------------------

def order(members: list, first: str) -> list:
    return members if first == "header" else members[::-1]


@pytest.mark.parametrize("first", ["header", "data"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("header", ["mhd", "nhdr"])
def test_an_mhd_or_nhdr_does_not_read_a_gzipped_copy_of_the_data_file_it_names(header, kind, first, tmp_path):
    made = mhd("v.raw") if header == "mhd" else nhdr("v.raw")
    by = rows(kind, order([(f"v.{header}", made), ("v.raw.gz", gzip.compress(voxels(1).tobytes()))], first),
              tmp_path)
    assert sorted(by) == [f"v.{header}", "v.raw.gz"]
    assert "its data file v.raw: " in by[f"v.{header}"].error
    assert by["v.raw.gz"].error != NOTE.format(f"v.{header}")  # read as a file of its own: not the header's
    assert "data file" not in by["v.raw.gz"].error


def test_an_mhd_does_not_claim_a_gzipped_copy_among_uploads():
    by = uploads([("v.mhd", mhd("v.raw")), ("v.raw.gz", gzip.compress(voxels(1).tobytes()))])
    assert "its data file v.raw: not among the files given with it" in by["v.mhd"].error
    assert "data file" not in by["v.raw.gz"].error


@pytest.mark.parametrize("first", ["header", "data"])
@pytest.mark.parametrize("kind", KINDS)
def test_an_nhdr_naming_its_gzipped_data_file_reads_it(kind, first, tmp_path):
    """The name the header gives is the one read, .gz or not (a guard: this was right before)."""
    by = rows(kind, order([("v.nhdr", nhdr("v.raw.gz", "gzip")), ("v.raw.gz", gzip.compress(voxels(2).tobytes()))],
                          first), tmp_path)
    assert np.array_equal(pixels(by["v.nhdr"]), voxels(2))
    assert by["v.raw.gz"].error == NOTE.format("v.nhdr")


@pytest.mark.parametrize("first", ["header", "data"])
@pytest.mark.parametrize("kind", KINDS)
def test_an_analyze_header_reads_its_gzipped_image(kind, first, tmp_path):
    """A guard: a .hdr with only a.img.gz beside it reads that, and a.img.gz is its note."""
    hdr, img = analyze(tmp_path, 3)
    by = rows(kind, order([("a.hdr", hdr), ("a.img.gz", gzip.compress(img))], first), tmp_path)
    assert same_picture(by["a.hdr"], 3)
    assert by["a.img.gz"].error == NOTE.format("a.hdr")


@pytest.mark.parametrize("kind", KINDS)
def test_beside_both_img_and_img_gz_the_img_is_the_analyze_header_s_data_file(kind, tmp_path):
    """The .hdr reads a.img; a.img.gz is a file of its own, not a second 'data file of a.hdr' never read."""
    hdr, img = analyze(tmp_path, 4)
    _, other = analyze(tmp_path, 5)
    by = rows(kind, [("a.hdr", hdr), ("a.img", img), ("a.img.gz", gzip.compress(other))], tmp_path)
    assert same_picture(by["a.hdr"], 4)
    assert by["a.img"].error == NOTE.format("a.hdr")
    assert "data file" not in by["a.img.gz"].error


def test_beside_both_img_and_img_gz_among_uploads_only_the_img_is_the_header_s(tmp_path):
    hdr, img = analyze(tmp_path, 4)
    _, other = analyze(tmp_path, 5)
    by = uploads([("a.hdr", hdr), ("a.img", img), ("a.img.gz", gzip.compress(other))])
    assert same_picture(by["a.hdr"], 4)
    assert by["a.img"].error == NOTE.format("a.hdr")
    assert "data file" not in by["a.img.gz"].error


@pytest.mark.parametrize("kind", ARCHIVES)
def test_a_gzipped_image_read_by_its_header_is_charged_to_zip_max_bytes_once(kind, tmp_path):
    """A guard: 200 KB of a.img.gz under a budget that holds it once: charged twice, z.png after it is not read."""
    hdr, img = analyze(tmp_path, 6, side=320)
    gz = gzip.compress(img)
    members = [("a.hdr", hdr), ("a.img.gz", gz), ("z.png", png())]
    by = rows(kind, members, tmp_path, zip_max_bytes=sum(len(d) for _, d in members) + len(gz) // 2)
    assert same_picture(by["a.hdr"], 6, 320)
    assert by["a.img.gz"].error == NOTE.format("a.hdr")
    assert isinstance(by["z.png"], ImageItem), by["z.png"]


# --- a path given twice -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ARCHIVES)
def test_a_data_file_given_twice_before_its_header_pairs_the_first_everywhere(kind, tmp_path):
    by = rows(kind, [("a.raw", voxels(1).tobytes()), ("a.raw", voxels(2).tobytes()), ("a.mhd", mhd("a.raw"))],
              tmp_path)
    assert sorted(by) == ["a (2).raw", "a.mhd", "a.raw"]
    assert np.array_equal(pixels(by["a.mhd"]), voxels(1))
    assert by["a.raw"].error == NOTE.format("a.mhd")
    assert "data file" not in by["a (2).raw"].error


@pytest.mark.parametrize("kind", ARCHIVES)
def test_two_headers_then_two_data_files_of_one_name_pair_by_turn_everywhere(kind, tmp_path):
    header = mhd("a.raw")
    by = rows(kind, [("a.mhd", header), ("a.mhd", header), ("a.raw", voxels(1).tobytes()),
                     ("a.raw", voxels(2).tobytes())], tmp_path)
    assert np.array_equal(pixels(by["a.mhd"]), voxels(1))
    assert np.array_equal(pixels(by["a (2).mhd"]), voxels(2))
    assert by["a.raw"].error == by["a (2).raw"].error == NOTE.format("a.mhd")


@pytest.mark.parametrize("kind", ARCHIVES)
def test_two_headers_before_one_data_file_both_read_it(kind, tmp_path):
    """A guard for the turn rule: a header with no data file of its turn reads the first, in a compressed archive
    too (its data file is kept for it)."""
    header = mhd("a.raw")
    by = rows(kind, [("a.mhd", header), ("a.mhd", header), ("a.raw", voxels(1).tobytes()), ("z.png", png())],
              tmp_path)
    assert np.array_equal(pixels(by["a.mhd"]), voxels(1))
    assert np.array_equal(pixels(by["a (2).mhd"]), voxels(1))
    assert by["a.raw"].error == NOTE.format("a.mhd") and isinstance(by["z.png"], ImageItem)


@pytest.mark.parametrize("kind", ["tar", "tgz", "7z"])
def test_a_data_file_given_twice_and_two_headers_after_in_a_stream(kind, tmp_path):
    """a.raw, a.raw, a.mhd, a.mhd: each header its own, as in a zip (before: the first a.raw was given up as a
    member of its own when the second came, and the first header read the second)."""
    header = mhd("a.raw")
    by = rows(kind, [("a.raw", voxels(1).tobytes()), ("a.raw", voxels(2).tobytes()), ("a.mhd", header),
                     ("a.mhd", header)], tmp_path)
    assert np.array_equal(pixels(by["a.mhd"]), voxels(1))
    assert np.array_equal(pixels(by["a (2).mhd"]), voxels(2))
    assert by["a.raw"].error == by["a (2).raw"].error == NOTE.format("a.mhd")


# --- memory -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["tgz", "7z"])
def test_a_compressed_archive_does_not_keep_every_paired_data_file_to_its_end(kind, tmp_path):
    """Each data file read with its header is let go once they are given: before, a compressed tar or 7z kept all
    of them until the end of the archive (50 pairs of 4 MiB in a 0.8 MB tgz: 443 MB peak, 253 MB now)."""
    import tracemalloc

    side, pairs = 512, 16  # 256 KiB a data file
    header = mhd("v.raw", side)
    members = [m for k in range(pairs) for m in ((f"s{k}/v.mhd", header), (f"s{k}/v.raw", bytes([k]) * side * side))]
    where = write(kind, members, tmp_path)
    for task in input_tasks([where]):  # once untraced: the modules it imports are not counted, nor slowed
        list(task())
    held = []
    tracemalloc.start()
    try:
        for task in input_tasks([where]):
            for _ in task():
                pass
            held.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert len(held) == 2 * pairs
    grew = max(held) - min(held[:2])  # after the first pair: the archive's bytes and the walk's own are there
    assert grew < 6 * side * side, [round(h / 2**20, 2) for h in held]  # 256 KiB more for each pair before
