"""Volumes (session 46 review). Every file is written here: NIfTI with nibabel, MetaImage by hand."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest

import medimg
from medimg.sources import Blob, ImageItem, ItemError, open_input

# nibabel's own test files' first bytes: a Philips PAR header, an AFNI header
UNREAD = {"scan.PAR": (b"# === DATA DESCRIPTION FILE ======================\n# CLINICAL TRYOUT\n", "Philips PAR/REC"),
          "epi+orig.HEAD": (b"\ntype = string-attribute\nname = DATASET_NAME\ncount = 5\n'epi~\n", "AFNI BRIK/HEAD")}


@pytest.mark.parametrize("name", sorted(UNREAD))
def test_a_format_not_read_is_named_given_alone_or_in_an_archive_as_in_a_folder(name, tmp_path):
    """Only a folder's files were told by more than their first 8 bytes: a PAR or AFNI header given alone, as
    an upload or in a zip was "unrecognised content" (or a skipped note), never the error naming its format."""
    data, fmt = UNREAD[name]
    (tmp_path / name).write_bytes(data)
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as z:
        z.writestr(name, data)
    (tmp_path / "scans.zip").write_bytes(packed.getvalue())
    for given in (tmp_path / name, Blob(name, data, name=name), tmp_path / "scans.zip"):
        (item,) = open_input(given)
        assert isinstance(item, ItemError) and not item.skipped, (given, item)
        assert item.error.startswith(f"{fmt} file: a "), (given, item.error)


def test_a_size_too_big_for_64_bits_is_refused_by_its_size_not_read_past(tmp_path):
    """The voxels' byte count was a 64-bit product, which wraps: a NIfTI-2 of 8×8×2^58 voxels needed "0" bytes, so
    it passed the truncated check and failed reading a slice at an offset past any file; a MetaImage of 65536^4
    voxels passed the max_input_bytes check and failed reshaping. Both are now refused by their sizes."""
    hdr = nib.Nifti2Header()
    hdr.set_data_dtype(np.uint8)
    hdr.set_data_shape((8, 8, 2**58))
    hdr["vox_offset"] = 544
    (item,) = open_input(Blob("big.nii", hdr.binaryblock + bytes(4 + 1000), name="big.nii"))
    assert isinstance(item, ItemError) and item.error.startswith("NIfTI volume is truncated: 1,544 bytes"), item
    mha = b"ObjectType = Image\nNDims = 4\nDimSize = 65536 65536 65536 65536\nElementType = MET_UCHAR\n" \
          b"ElementDataFile = LOCAL\n" + bytes(1000)
    (item,) = open_input(Blob("big.mha", mha, name="big.mha"))
    assert isinstance(item, ItemError) and "over the max_input_bytes cap" in item.error, item


@pytest.mark.parametrize("two", [False, True])
@pytest.mark.parametrize("pair", [False, True])
def test_a_nan_intercept_beside_a_slope_is_read_as_zero_as_nifti_clib_reads_it(two, pair, tmp_path):
    """scl_slope 2 with scl_inter NaN: FSL, AFNI and ITK (nifti_clib) read the intercept as 0; nibabel refused the
    whole file ("Valid slope but invalid intercept nan"). Shown now as with an intercept of 0."""
    vol = np.random.default_rng(0).integers(0, 1000, (24, 20, 5)).astype(np.int16)
    cls = (nib.Nifti2Pair if pair else nib.Nifti2Image) if two else (nib.Nifti1Pair if pair else nib.Nifti1Image)
    at, kind = (176, "<2d") if two else (112, "<2f")
    shown = {}
    for name, inter in (("zero", 0.0), ("nan", np.nan)):
        path = tmp_path / (f"{name}.hdr" if pair else f"{name}.nii")
        cls(vol, np.eye(4)).to_filename(path)
        raw = bytearray(path.read_bytes())  # nibabel writes no scaling of its own: set here
        struct.pack_into(kind, raw, at, 2.0, inter)
        path.write_bytes(raw)
        (item,) = [i for i in open_input(path) if not getattr(i, "skipped", False)]
        assert isinstance(item, ImageItem), item
        shown[name] = np.asarray(item.image)
    assert np.array_equal(shown["nan"], shown["zero"])


def _marker_volume() -> np.ndarray:
    vol = np.zeros((20, 30, 10), np.int16)
    vol[5:15, 5:20] = 300
    vol[2:5, 25:28] = 900  # by the first x, the last y: where it is shows any flip
    return vol


def _mha(vol: np.ndarray, extra: str = "") -> bytes:
    return (f"ObjectType = Image\nNDims = 3\nDimSize = 20 30 10\n{extra}ElementType = MET_SHORT\n"
            "ElementDataFile = LOCAL\n").encode() + vol.T.tobytes()


def test_a_spacing_of_zero_or_nan_and_null_directions_are_shown_as_stored(tmp_path):
    """A MetaImage with ElementSpacing 0 (or NaN) and an NRRD whose space directions are all zero were turned upside
    down from their own fallback (the second axis up, not down, as without them), and said `NoneNoneNone` as their
    orientation; a NaN spacing printed numpy's warnings."""
    vol = _marker_volume()
    shown = {}
    for name, data in (("plain.mha", _mha(vol)), ("zero.mha", _mha(vol, "ElementSpacing = 0 0 0\n")),
                       ("nan.mha", _mha(vol, "ElementSpacing = nan 1 1\n"))):
        (item,) = open_input(Blob(name, data, name=name))
        shown[name] = (np.asarray(item.image), item.metadata["orientation"])
    assert all(np.array_equal(image, shown["plain.mha"][0]) for image, _ in shown.values())
    assert {o for _, o in shown.values()} == {"LPS"}
    nrrd.write(str(tmp_path / "plain.nrrd"), vol)
    null = {"space": "left-posterior-superior", "space directions": np.zeros((3, 3))}
    nrrd.write(str(tmp_path / "zero.nrrd"), vol, null)
    (plain,), (zero,) = open_input(tmp_path / "plain.nrrd"), open_input(tmp_path / "zero.nrrd")
    assert np.array_equal(np.asarray(zero.image), np.asarray(plain.image))
    assert zero.metadata["orientation"] == plain.metadata["orientation"] == "none in the header (shown as stored)"


def test_an_affine_with_an_axis_in_no_direction_is_said_unknown(tmp_path):
    """aff2axcodes gives None for an axis whose column is zero: the orientation was `RNoneS` (or `NoneNoneNone`)."""
    img = nib.Nifti1Image(_marker_volume(), None)
    img.header.set_sform(np.diag([1.0, 0.0, 1.0, 1.0]), 1)  # no qform: nibabel cannot make one of it
    img.to_filename(tmp_path / "v.nii")
    (item,) = open_input(tmp_path / "v.nii")
    assert item.metadata["orientation"] == "unknown (invalid affine)", item.metadata


def test_a_damaged_volume_header_leaves_no_warning_on_stderr(tmp_path):
    """numpy's overflow and NaN warnings from a damaged affine (nibabel's io_orientation, MetaImage's matrix) and
    nibabel's own about odd extensions were printed in the middle of a batch's output."""
    with np.errstate(over="ignore"):  # nibabel warns here too, writing it
        nib.Nifti2Image(_marker_volume(), np.diag([1e200, 1.0, 1.0, 1.0])).to_filename(tmp_path / "a.nii")
    (tmp_path / "b.mha").write_bytes(_mha(_marker_volume(), "ElementSpacing = nan inf 1\n"))
    code = (f"from medimg.sources import open_input\nfor name in ('a.nii', 'b.mha'):\n"
            f"    print([type(i).__name__ for i in open_input({str(tmp_path)!r} + '/' + name)])")
    env = {**os.environ, "PYTHONPATH": str(Path(medimg.__file__).parents[1])}  # this checkout's medimg
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.stdout.split("\n")[:2] == ["['ImageItem']"] * 2, done
    assert "Warning" not in done.stderr, done.stderr


def test_header_mistakes_are_said_plainly():
    """An NRRD of `type: block` was "its data is damaged or cut short" (a division by its 0-byte voxels), a byte skip
    past the data said it holds "-99,999,800 bytes", a header line without a colon "not enough values to unpack"; a
    MetaImage TransformMatrix of 2 values said "NDims is 9", one without NDims or ElementType "'ndims'" or "ElementType
    None is not supported"."""
    head = b"NRRD0004\ntype: %s\ndimension: 2\nsizes: 4 4\nencoding: raw\n%s\n"
    cases = {"block.nrrd": head % (b"block", b"block size: 2\n") + bytes(64),
             "skip.nrrd": head % (b"uchar", b"byte skip: 100000000\n") + bytes(200),
             "line.nrrd": head % (b"uchar", b"Jane Doe\n") + bytes(16),
             "matrix.mha": _mha(_marker_volume(), "TransformMatrix = 1 0\n"),
             "ndims.mha": _mha(_marker_volume()).replace(b"NDims = 3\n", b""),
             "type.mha": _mha(_marker_volume()).replace(b"ElementType = MET_SHORT\n", b"")}
    said = {name: next(iter(open_input(Blob(name, data, name=name)))).error for name, data in cases.items()}
    assert said["block.nrrd"] == "not a readable NRRD file: type block holds opaque blocks of bytes, not voxels"
    assert said["skip.nrrd"] == "not a readable NRRD file: the data holds 0 bytes, its sizes need 16"
    assert said["matrix.mha"] == "not a readable MetaImage file: TransformMatrix has 2 values, not 9"
    assert said["ndims.mha"] == "not a readable MetaImage file: header has no NDims"
    assert said["type.mha"] == "not a readable MetaImage file: header has no ElementType"
    assert said["line.nrrd"] == "not a readable NRRD file: header line 6 is not a `field: value` line"
