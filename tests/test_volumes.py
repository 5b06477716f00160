"""MGH, NRRD and MetaImage volumes: nibabel's own .mgz, and volumes written here (nibabel, pynrrd, ITK's
MetaImage layout), shown the same way as the same volume stored as NIfTI."""

from __future__ import annotations

import bz2
import zlib
import gzip
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest

from medimg.sources import ImageItem, ItemError, Limits, open_input
from test_nifti import NIB_DATA, head_volume, items, nifti


def pixels(item) -> np.ndarray:
    assert isinstance(item, ImageItem), getattr(item, "error", item)
    return np.asarray(item.image)


def write_nrrd(tmp_path: Path, vol: np.ndarray, name: str = "v.nrrd", **header) -> Path:
    path = tmp_path / name
    nrrd.write(str(path), vol, header or None)
    return path


# ---------------------------------------------------------------- MGH


def test_real_mgz_from_nibabel_and_its_uncompressed_twin(tmp_path):
    (packed,) = open_input(NIB_DATA / "test.mgz")
    assert packed.format == "MGH" and packed.locator == "slice 2 of 3, volume 2 of 2"
    assert packed.metadata["dims"] == [3, 4, 5, 2]
    raw = tmp_path / "test.mgh"
    raw.write_bytes(gzip.decompress((NIB_DATA / "test.mgz").read_bytes()))
    (plain,) = open_input(raw)
    assert np.array_equal(pixels(plain), pixels(packed))


def test_mgh_looks_like_the_same_volume_as_nifti():
    vol, affine = head_volume(), np.diag([1.0, 1.0, 1.0, 1.0])
    mgh = nib.MGHImage(vol.astype(np.float32), affine).to_bytes()
    (a,), (b,) = items(mgh, name="v.mgh"), items(nifti(vol.astype(np.float32), affine))
    assert a.format == "MGH" and np.array_equal(pixels(a), pixels(b))
    bright = np.argwhere(pixels(a) == 255)
    assert bright[:, 0].max() < 15 and bright[:, 1].max() < 20  # anterior at the top, patient's right on the left


def test_bad_mgh_files_give_clear_errors():
    data = nib.MGHImage(head_volume().astype(np.float32), np.eye(4)).to_bytes()
    (cut,) = items(data[:2000], name="v.mgh")
    assert isinstance(cut, ItemError) and "truncated" in cut.error
    bomb = gzip.compress(nib.MGHImage(np.zeros((256, 256, 64), np.float32), np.eye(4)).to_bytes())
    (big,) = items(bomb, name="v.mgz", max_input_bytes=1_000_000)
    assert isinstance(big, ItemError) and "max_input_bytes" in big.error and len(bomb) < 100_000
    (wide,) = items(data, name="v.mgh", max_pixels=100)
    assert isinstance(wide, ItemError) and "max_pixels" in wide.error


# ---------------------------------------------------------------- NRRD


@pytest.mark.parametrize("encoding", ["raw", "gzip", "bzip2", "ascii"])
def test_nrrd_in_every_encoding_looks_like_nifti(tmp_path, encoding):
    vol = head_volume()
    ras = write_nrrd(tmp_path, vol, space="right-anterior-superior", encoding=encoding,
                     **{"space directions": np.eye(3), "space origin": np.zeros(3)})
    (got,) = open_input(ras)
    (want,) = items(nifti(vol))
    assert got.format == "NRRD" and got.locator == "slice 11 of 20"
    assert np.array_equal(pixels(got), pixels(want))


def test_nrrd_orientation_comes_from_space_and_directions(tmp_path):
    vol = head_volume()
    (want,) = items(nifti(vol))
    # the same anatomy stored left-posterior-superior (both in-plane axes reversed) ...
    lps = write_nrrd(tmp_path, vol[::-1, ::-1, :].copy(), "lps.nrrd", space="left-posterior-superior",
                     **{"space directions": np.eye(3)})
    # ... and stored slice-first (z, x, y) with directions saying so
    zxy = write_nrrd(tmp_path, np.transpose(vol, (2, 0, 1)).copy(), "zxy.nrrd", space="RAS",
                     **{"space directions": np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], float)})
    for path in (lps, zxy):
        (got,) = open_input(path)
        assert np.array_equal(pixels(got), pixels(want)), path.name
    (lp,) = open_input(lps)
    assert lp.metadata["orientation"] == "LPS"


def test_nrrd_millimetres_colour_time_and_plain_2d(tmp_path):
    vol = head_volume()
    thick = write_nrrd(tmp_path, vol, "thick.nrrd", space="RAS", **{"space directions": np.diag([1.0, 2.0, 3.0])})
    (item,) = open_input(thick)
    assert item.image.size == (40, 60) and item.metadata["voxel_mm"] == [1.0, 2.0, 3.0]

    rgb = np.zeros((3, 8, 6), np.uint8)
    rgb[1] = 200
    (colour,) = open_input(write_nrrd(tmp_path, rgb, "rgb.nrrd", kinds=["RGB-color", "domain", "domain"]))
    assert colour.image.mode == "RGB" and colour.image.size == (8, 6) and colour.image.getpixel((0, 0)) == (0, 200, 0)

    series = np.stack([vol * (t + 1) for t in range(5)], axis=-1)
    nan = [np.nan] * 3
    got = list(open_input(write_nrrd(tmp_path, series, "t.nrrd", kinds=["space", "space", "space", "list"],
                                     space="RAS", **{"space directions": [[1, 0, 0], [0, 1, 0], [0, 0, 1], nan]})))
    assert [i.locator for i in got] == ["slice 11 of 20, volume 3 of 5"]

    plain = np.zeros((50, 20), np.uint8)
    plain[:, :5] = 255  # the first 5 rows: a 2D NRRD with no orientation shows as stored
    (flat,) = open_input(write_nrrd(tmp_path, plain, "plain.nrrd"))
    shown = pixels(flat)
    assert flat.image.size == (50, 20) and shown[:5].min() == 255 and shown[5:].max() == 0


def test_nrrd_limits_and_bad_files(tmp_path):
    vol = head_volume()
    detached = tmp_path / "v.nhdr"
    nrrd.write(str(detached), vol, detached_header=True)
    (err,) = open_input(detached)
    assert isinstance(err, ItemError) and "detached" in err.error  # the .raw it names is never opened

    big = write_nrrd(tmp_path, np.zeros((256, 256, 64), np.int16), "big.nrrd", encoding="gzip")
    (err,) = open_input(big, Limits(max_input_bytes=1_000_000))
    assert isinstance(err, ItemError) and "max_input_bytes" in err.error

    # a header that claims a small volume over gzip data that inflates far past the cap
    header = b"NRRD0004\ntype: uint8\ndimension: 2\nsizes: 10 10\nencoding: gzip\n\n"
    (err,) = items(header + gzip.compress(bytes(5_000_000)), name="bomb.nrrd", max_input_bytes=1_000_000)
    assert isinstance(err, ItemError) and "max_input_bytes" in err.error
    (err,) = items(header.replace(b"gzip", b"bzip2") + bz2.compress(bytes(10))[:20], name="cut.nrrd")
    assert isinstance(err, ItemError) and "NRRD" in err.error

    (err,) = open_input(write_nrrd(tmp_path, vol, "wide.nrrd"), Limits(max_pixels=500))
    assert isinstance(err, ItemError) and "max_pixels" in err.error
    raw = write_nrrd(tmp_path, vol, "cut.nrrd").read_bytes()
    (err,) = items(raw[:-100], name="cut.nrrd")
    assert isinstance(err, ItemError) and "NRRD" in err.error
    (err,) = items(b"NRRD0004\nthis is not a header\n\n", name="junk.nrrd")
    assert isinstance(err, ItemError) and "NRRD" in err.error


def test_volumes_in_a_folder(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "brain.mgz").write_bytes((NIB_DATA / "test.mgz").read_bytes())
    write_nrrd(folder, head_volume(), "ct.nrrd", space="RAS", **{"space directions": np.eye(3)})
    got = list(open_input(folder))
    assert sorted((Path(i.origin).name, i.format) for i in got) == [("brain.mgz", "MGH"), ("ct.nrrd", "NRRD")]


def test_a_single_coronal_or_sagittal_slice_is_shown_in_its_own_plane(tmp_path):
    """One slice whose affine says coronal (x: right, y: superior) or sagittal shows that plane, upright."""
    plane = np.zeros((40, 30), np.int16)
    plane[28:34, 20:26] = 1000  # high x (patient's right), high y (superior)
    coronal = np.array([[1.0, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])  # x→R, y→S, z→A
    for data, name in [(nifti(plane[:, :, None], coronal), "cor.nii"),
                       (write_nrrd(tmp_path, plane, "cor.nrrd", space="RAS",
                                   **{"space directions": [[1, 0, 0], [0, 0, 1]]}).read_bytes(), "cor.nrrd")]:
        (item,) = items(data, name=name)
        shown = pixels(item)
        assert item.image.size == (40, 30), name
        rows, cols = np.nonzero(shown == 255)
        assert rows.max() < 10 and cols.max() < 12, name  # superior at the top, patient's right on the left
    sagittal = np.array([[0, 0, 1.0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]])  # x→A, y→S, z→R
    (item,) = items(nifti(plane[:, :, None], sagittal))
    rows, cols = np.nonzero(pixels(item) == 255)
    assert item.image.size == (40, 30) and rows.max() < 10 and cols.max() < 12  # anterior on the left


# ---------------------------------------------------------------- MetaImage


def mha(vol: np.ndarray, compressed: bool = False, msb: bool = False, matrix: str = "1 0 0 0 1 0 0 0 1",
        spacing=None, channels: int = 1, data_file: str = "LOCAL", etype: str = "MET_SHORT") -> bytes:
    """A .mha file as ITK writes one: x fastest, LPS world; `vol` is indexed x, y, z (channels last)."""
    dims = vol.shape[:vol.ndim - (1 if channels > 1 else 0)]
    raw = np.ascontiguousarray(np.transpose(vol, tuple(range(len(dims) - 1, -1, -1)) + (
        (len(dims),) if channels > 1 else ()))).astype(vol.dtype.newbyteorder(">" if msb else "<")).tobytes()
    if compressed:
        raw = zlib.compress(raw)
    nd = len(dims)
    lines = [f"ObjectType = Image", f"NDims = {nd}", f"BinaryData = True", f"BinaryDataByteOrderMSB = {msb}",
             f"CompressedData = {compressed}"]
    if compressed:
        lines.append(f"CompressedDataSize = {len(raw)}")
    if nd == 3:
        lines += [f"TransformMatrix = {matrix}", "Offset = 0 0 0", "AnatomicalOrientation = RAI"]
    lines += [f"ElementSpacing = {' '.join(map(str, spacing or [1] * nd))}", f"DimSize = {' '.join(map(str, dims))}"]
    if channels > 1:
        lines.append(f"ElementNumberOfChannels = {channels}")
    lines += [f"ElementType = {etype}", f"ElementDataFile = {data_file}"]
    return ("\n".join(lines) + "\n").encode() + raw


def test_metaimage_looks_like_the_same_anatomy_as_nifti():
    vol = head_volume()
    (want,) = items(nifti(vol))
    lps = vol[::-1, ::-1, :].copy()  # ITK's world is LPS: x runs to the patient's left, y to the back
    for data in (mha(lps), mha(lps, compressed=True), mha(lps, msb=True),
                 # stored slice-first (z, x, y), the TransformMatrix giving each axis's direction in turn
                 mha(np.transpose(lps, (2, 0, 1)).copy(), matrix="0 0 1 1 0 0 0 1 0")):
        (got,) = items(data, name="v.mha")
        assert got.format == "MetaImage" and got.locator == "slice 11 of 20"
        assert np.array_equal(pixels(got), pixels(want))
    (thick,) = items(mha(lps, spacing=[1, 2, 3]), name="v.mha")
    assert thick.image.size == (40, 60) and thick.metadata["voxel_mm"] == [1.0, 2.0, 3.0]


def test_metaimage_2d_colour_and_bad_files():
    rgb = np.zeros((8, 6, 3), np.uint8)
    rgb[..., 1] = 200
    (colour,) = items(mha(rgb, channels=3, etype="MET_UCHAR"), name="c.mha")
    assert colour.image.mode == "RGB" and colour.image.size == (8, 6) and colour.image.getpixel((0, 0)) == (0, 200, 0)
    lps = head_volume()[::-1, ::-1, :].copy()
    (err,) = items(mha(lps, data_file="v.raw"), name="v.mhd")
    assert isinstance(err, ItemError) and "detached" in err.error  # the .raw it names is never opened
    (err,) = items(mha(lps)[:-100], name="cut.mha")
    assert isinstance(err, ItemError) and "truncated" in err.error
    (err,) = items(mha(lps, etype="MET_FANCY"), name="odd.mha")
    assert isinstance(err, ItemError) and "ElementType" in err.error
    (err,) = items(mha(np.zeros((256, 256, 64), np.int16), compressed=True), name="big.mha", max_input_bytes=1_000_000)
    assert isinstance(err, ItemError) and "max_input_bytes" in err.error
    header = b"ObjectType = Image\nNDims = 2\nDimSize = 10 10\nElementType = MET_UCHAR\nCompressedData = True\n" \
             b"ElementDataFile = LOCAL\n"
    (small,) = items(header + zlib.compress(bytes(5_000_000)), name="bomb.mha", max_input_bytes=1_000_000)
    assert isinstance(small, ImageItem) and small.image.size == (10, 10)  # inflated only as far as the header's size
    (wide,) = items(mha(lps), name="v.mha", max_pixels=100)
    assert isinstance(wide, ItemError) and "max_pixels" in wide.error
