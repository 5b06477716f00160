"""Volumes (session 40 review): Analyze/NIfTI pairs whose names are in upper case (BRAIN.HDR + BRAIN.IMG, as DOS-era
and Windows tools wrote them) or whose extensions differ in case, an upper-case MetaImage pair's data file, the plane
a single sagittal or coronal slice names, and header sizes too big to count; every file written here (by nibabel,
or MetaImage/NRRD headers by hand), in a folder, a zip, a tar, a 7z and among uploads."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import medimg
from medimg.sources import ImageItem, open_input
from test_pairs_s37 import KINDS, NOTE, analyze, mhd, order, rows, same_picture, uploads, voxels


def pair_rows(kind: str, members: list, tmp_path) -> dict:
    return uploads(members) if kind == "uploads" else rows(kind, members, tmp_path)


@pytest.mark.parametrize("first", ["header", "data"])
@pytest.mark.parametrize("kind", KINDS + ["uploads"])
def test_an_upper_case_analyze_pair_is_read_together(kind, first, tmp_path):
    """BRAIN.HDR reads BRAIN.IMG, as nibabel and nifti_clib look (the .img in the case of the .hdr's extension):
    before, it looked for BRAIN.img only ("file not found") and BRAIN.IMG was a row of its own."""
    hdr, img = analyze(tmp_path, 3)
    by = pair_rows(kind, order([("BRAIN.HDR", hdr), ("BRAIN.IMG", img)], first), tmp_path)
    assert same_picture(by["BRAIN.HDR"], 3)
    assert by["BRAIN.IMG"].error == NOTE.format("BRAIN.HDR")
    (tmp_path / "gz").mkdir()
    by = pair_rows(kind, order([("SCAN.HDR", hdr), ("SCAN.IMG.GZ", gzip.compress(img))], first), tmp_path / "gz")
    assert same_picture(by["SCAN.HDR"], 3)
    assert by["SCAN.IMG.GZ"].error == NOTE.format("SCAN.HDR")


@pytest.mark.parametrize("kind", KINDS + ["uploads"])
def test_a_pair_whose_extensions_differ_in_case_is_read_as_on_windows_and_macos(kind, tmp_path):
    """a.hdr + a.IMG (a pair copied from a system whose names ignore case, where every reader opens it): read
    together, the .img's row the header's note. Before: "its data file a.img: file not found"."""
    hdr, img = analyze(tmp_path, 6)
    by = pair_rows(kind, [("a.hdr", hdr), ("a.IMG", img), ("B.HDR", hdr), ("B.img", img)], tmp_path)
    assert same_picture(by["a.hdr"], 6) and same_picture(by["B.HDR"], 6)
    assert by["a.IMG"].error == NOTE.format("a.hdr") and by["B.img"].error == NOTE.format("B.HDR")


@pytest.mark.parametrize("kind", KINDS)
def test_beside_an_img_in_either_case_the_header_reads_the_one_in_its_own_case(kind, tmp_path):
    """On a system where names keep their case, a.hdr with both a.img and a.IMG reads a.img (nibabel's choice); a.IMG
    is a file of its own, not a second data file. (A tar is read as a stream: there, as with a.img.gz, a header that
    comes first takes the first of its files to come after it.)"""
    hdr, img = analyze(tmp_path, 4)
    _, other = analyze(tmp_path, 5)
    by = rows(kind, [("a.IMG", other), ("a.img", img), ("a.hdr", hdr)], tmp_path)
    assert same_picture(by["a.hdr"], 4)
    assert by["a.img"].error == NOTE.format("a.hdr")
    assert "data file" not in by["a.IMG"].error


def test_a_missing_img_is_named_in_the_header_s_case(tmp_path):
    hdr, _ = analyze(tmp_path, 3)
    (tmp_path / "BRAIN.HDR").write_bytes(hdr)
    (got,) = open_input(tmp_path / "BRAIN.HDR")
    assert got.error == "not a readable Analyze file: its data file BRAIN.IMG: file not found"


@pytest.mark.parametrize("kind", KINDS)
def test_an_upper_case_metaimage_data_file_is_its_header_s_note(kind, tmp_path):
    """BRAIN.MHD naming BRAIN.RAW: the .RAW was a row of its own ("not an image"), as its suffix was matched in
    lower case only."""
    data = voxels(7).tobytes()
    by = rows(kind, [("BRAIN.MHD", mhd("BRAIN.RAW")), ("BRAIN.RAW", data)], tmp_path)
    assert isinstance(by["BRAIN.MHD"], ImageItem)
    assert by["BRAIN.RAW"].error == NOTE.format("BRAIN.MHD")


def test_a_single_sagittal_or_coronal_slice_names_its_plane(tmp_path):
    """Shown in its own plane (superior at the top), and its metadata says which: it said "axial" for every slice."""
    vol = np.zeros((20, 24, 16), np.int16)
    vol[:, :, 12:] = 400  # superior
    cases = {"sag": (vol[10:11], "sagittal"), "cor": (vol[:, 12:13], "coronal"), "ax": (vol[:, :, 8:9], "axial"),
             "vol": (vol, "axial")}
    for name, (voxels_, plane) in cases.items():
        nib.save(nib.Nifti1Image(voxels_, np.diag([-2.0, -2.0, 3.0, 1.0])), tmp_path / f"{name}.nii")
        (got,) = open_input(tmp_path / f"{name}.nii")
        assert got.metadata["plane"] == plane, name
        if name in ("sag", "cor"):
            top = np.asarray(got.image)[: got.image.height // 4]
            assert top.mean() > 200, name  # superior at the top


def test_a_metaimage_size_too_big_to_count_is_its_error(tmp_path):
    """DimSize = 1e30 overflowed the byte count (numpy's "Python int too large to convert to C long", no word of
    MetaImage); a size whose product wraps past 2^64 was reported by a failed reshape."""
    for size in ("1e30 1 1", "3 6148914691236517206 1"):
        (tmp_path / "a.mha").write_bytes(f"ObjectType = Image\nNDims = 3\nDimSize = {size}\nElementType = MET_UCHAR\n"
                                         "ElementDataFile = LOCAL\n".encode() + bytes(64))
        (got,) = open_input(tmp_path / "a.mha")
        assert got.error.startswith("not a readable MetaImage file: DimSize ") and "is not a size from 1 to" in \
            got.error, got.error


def test_an_nrrd_size_too_big_to_count_leaves_no_warning_on_stderr(tmp_path):
    """pynrrd casts `sizes: 1e30` with numpy's RuntimeWarning, which was printed in the middle of a batch's output."""
    path = tmp_path / "a.nrrd"
    path.write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nendian: little\nsizes: 1e30 10 10\nencoding: raw\n\n"
                     + bytes(200))
    code = f"from medimg.sources import open_input; print(list(open_input({str(path)!r}))[0].error)"
    env = {**os.environ, "PYTHONPATH": str(Path(medimg.__file__).parents[1])}  # this checkout's medimg
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.stdout.startswith("not a readable NRRD file"), done
    assert "Warning" not in done.stderr, done.stderr
