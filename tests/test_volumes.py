"""MGH, NRRD and MetaImage volumes: nibabel's own .mgz, and volumes written here (nibabel, pynrrd, ITK's
MetaImage layout), shown the same way as the same volume stored as NIfTI."""

from __future__ import annotations

import bz2
import zlib
import gzip
import time
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest

from medimg.sources import ImageItem, ItemError, Limits, open_input
from test_nifti import NIB_DATA, head_volume, items, nifti
from medimg.sources import Blob
from medimg.sources.base import Context


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
    assert got.metadata["encoding"] == encoding and got.metadata["orientation"] == "RAS"  # the file's (gzip: raw)


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
    plain[:8, 5:] = 100  # and the first 8 columns (it came out mirrored, its first column on the right)
    (flat,) = open_input(write_nrrd(tmp_path, plain, "plain.nrrd"))
    shown = pixels(flat)
    assert flat.image.size == (50, 20) and shown[:5].min() == 255 and shown[5:].max() == 100
    assert (shown[5:, :8] == 100).all() and shown[5:, 8:].max() == 0
    # the header gives no orientation nor spacing: none is made up (was LPS, 1 mm voxels)
    assert flat.metadata["orientation"] == "none in the header (shown as stored)" and flat.metadata["voxel_mm"] is None
    (spaced,) = open_input(write_nrrd(tmp_path, plain, "spaced.nrrd", spacings=[0.5, 0.25]))
    assert spaced.metadata["orientation"].startswith("none") and spaced.metadata["voxel_mm"] == [0.5, 0.25, 1.0]


def test_nrrd_limits_and_bad_files(tmp_path):
    vol = head_volume()
    detached = tmp_path / "v.nhdr"
    nrrd.write(str(detached), vol, detached_header=True)
    (err,) = items(detached.read_bytes(), name="v.nhdr")  # bytes alone: the .raw.gz it names is never opened
    assert isinstance(err, ItemError) and "detached" in err.error

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
    # pynrrd's KeyError for a type it does not know, or a field that is not there, said as such
    (err,) = items(header.replace(b"uint8", b"int9"), name="odd.nrrd")
    assert err.error == "not a readable NRRD file: its header has a value pynrrd does not know: 'int9'"
    (err,) = items(header.replace(b"type: uint8\n", b""), name="untyped.nrrd")
    assert err.error == "not a readable NRRD file: its header has no 'type' field", err.error


@pytest.mark.timeout(60)
@pytest.mark.parametrize("encoding", ["raw", "ascii", "gzip", "bzip2"])
def test_nrrd_line_skip_past_the_data_is_refused_without_reading_line_by_line(encoding):
    """A `line skip` larger than the lines the data holds is refused up front (it once read a line per count:
    10**12 took hours); a line skip the data really has still works."""
    vol = np.arange(16, dtype=np.uint8).reshape(4, 4)
    body = {"raw": vol.tobytes("F"), "ascii": " ".join(map(str, vol.ravel("F"))).encode() + b"\n",
            "gzip": gzip.compress(vol.tobytes("F")), "bzip2": bz2.compress(vol.tobytes("F"))}[encoding]
    header = b"NRRD0004\ntype: uint8\ndimension: 2\nsizes: 4 4\nencoding: " + encoding.encode()
    start = time.monotonic()
    (err,) = items(header + b"\nline skip: 20000000\n\n" + body, name="skip.nrrd")
    assert isinstance(err, ItemError) and "line skip" in err.error and time.monotonic() - start < 2
    (err,) = items(header + b"\nline skip: 1000000000000\n\n" + body, name="skip.nrrd")
    assert isinstance(err, ItemError) and "line skip" in err.error
    (plain,) = items(header + b"\n\n" + body, name="plain.nrrd")
    (skipped,) = items(header + b"\nline skip: 2\n\nfirst note\nsecond note\n" + body, name="skip.nrrd")
    assert np.array_equal(pixels(skipped), pixels(plain))


@pytest.mark.parametrize("encoding", ["gzip", "bzip2"])
def test_nrrd_byte_skip_does_not_lift_the_inflation_cap(encoding):
    """Compressed data inflates at most max_input_bytes + 1 bytes whatever the `byte skip` (it was the cap plus
    the skip); a skip that with the voxels passes the cap is refused before inflating."""
    pack = gzip.compress if encoding == "gzip" else bz2.compress
    header = b"NRRD0004\ntype: uint8\ndimension: 2\nsizes: 4 4\nencoding: " + encoding.encode()
    bomb = pack(bytes(8_000_000))
    for skip in (b"1000000000000", b"1000000"):
        (err,) = items(header + b"\nbyte skip: " + skip + b"\n\n" + bomb, name="bomb.nrrd", max_input_bytes=1_000_000)
        assert isinstance(err, ItemError) and "byte skip" in err.error and "max_input_bytes" in err.error
    (err,) = items(header + b"\nbyte skip: 100\n\n" + bomb, name="bomb.nrrd", max_input_bytes=1_000_000)
    assert isinstance(err, ItemError) and "inflates past the max_input_bytes" in err.error
    vol = np.arange(16, dtype=np.uint8).reshape(4, 4)
    (plain,) = items(header + b"\n\n" + pack(vol.tobytes("F")), name="plain.nrrd")
    (skipped,) = items(header + b"\nbyte skip: 5\n\n" + pack(b"12345" + vol.tobytes("F")), name="skip.nrrd")
    assert np.array_equal(pixels(skipped), pixels(plain))


def test_nrrd_headers_of_too_many_lines_or_bytes_are_refused(tmp_path, monkeypatch):
    """pynrrd reads the header a line at a time in Python (99 million comment lines, 198 MB: 22-35 s), so the
    header is refused past MAX_HEADER_LINES lines or MAX_HEADER_BYTES bytes (limits lowered here); attached or
    detached, and headers under the limits still open."""
    from medimg.sources import nrrd_volume

    monkeypatch.setattr(nrrd_volume, "MAX_HEADER_LINES", 1000)
    monkeypatch.setattr(nrrd_volume, "MAX_HEADER_BYTES", 20_000)
    vol = np.arange(16, dtype=np.uint8).reshape(4, 4)
    fields = b"type: uint8\ndimension: 2\nsizes: 4 4\nencoding: raw\n"

    def nrrd_with(comments: bytes) -> bytes:
        return b"NRRD0004\n" + comments + fields + b"\n" + vol.tobytes("F")

    (err,) = items(nrrd_with(b"#\n" * 1000), name="many.nrrd")
    assert isinstance(err, ItemError) and err.error == ("not a readable NRRD file: header of more than 1,000 lines; "
                                                        "not opened")
    (err,) = items(nrrd_with(b"#" + b"x" * 20_000 + b"\n"), name="long.nrrd")
    assert isinstance(err, ItemError) and err.error == ("not a readable NRRD file: header longer than 20,000 bytes; "
                                                        "not opened")
    (plain,) = items(nrrd_with(b""), name="plain.nrrd")
    (noted,) = items(nrrd_with(b"# a note\n" * 900), name="noted.nrrd")
    assert np.array_equal(pixels(noted), pixels(plain))

    detached = tmp_path / "v.nhdr"
    nrrd.write(str(detached), vol, {"encoding": "raw"}, detached_header=True)
    (tmp_path / "noted.nhdr").write_bytes(detached.read_bytes().replace(b"\n", b"\n" + b"#\n" * 900, 1))
    (ok,) = open_input(tmp_path / "noted.nhdr")
    assert np.array_equal(pixels(ok), pixels(plain))
    header = detached.read_bytes()
    for comments in (b"#\n" * 1000, b"#" + b"x" * 20_000 + b"\n"):  # before and after the data file line
        for hostile in (header.replace(b"\n", b"\n" + comments, 1), header[:-1] + comments + b"\n"):
            (tmp_path / "many.nhdr").write_bytes(hostile)
            (err,) = open_input(tmp_path / "many.nhdr")
            assert isinstance(err, ItemError) and "not a readable NRRD file: header " in err.error, err.error
            assert err.error.endswith("; not opened")


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
    lines = ["ObjectType = Image", f"NDims = {nd}", "BinaryData = True", f"BinaryDataByteOrderMSB = {msb}",
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
    assert isinstance(err, ItemError) and "detached" in err.error  # bytes alone: the .raw it names is never opened
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
    marked = np.zeros((30, 20, 3), np.int16)
    marked[:6, :4] = 1000  # the first columns and rows, shown top left with or without a usable matrix
    for matrix in ("1 0 0 0 1 0 0 0 1", "0 0 0 0 0 0 0 0 0"):  # the unusable one came out mirrored
        shown = pixels(items(mha(marked, matrix=matrix), name="m.mha")[0])
        assert shown.shape == (20, 30) and (shown[:4, :6] > 200).all() and shown[4:].max() < 50, matrix
        assert shown[:, 6:].max() < 50, matrix


# ---------------------------------------------------------------- MINC


MINC_FILES = sorted(NIB_DATA.glob("*.mnc"))


@pytest.mark.parametrize("path", MINC_FILES, ids=[p.name for p in MINC_FILES])
def test_minc_looks_like_the_same_volume_as_nifti(path):
    """nibabel's MINC1 (NetCDF) and MINC2 (HDF5) test volumes, 3-D and 4-D (time first), against the same
    voxels and affine stored as NIfTI (time last)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img = (nib.Minc2Image if path.read_bytes()[:4] == b"\x89HDF" else nib.Minc1Image).from_filename(str(path))
        vol = np.asanyarray(img.dataobj)
    if vol.ndim == 4:
        vol = np.moveaxis(vol, 0, -1)
    (want,) = items(nifti(vol.astype(np.float32), img.affine))
    (got,) = open_input(path)
    assert got.format == "MINC" and got.locator == want.locator
    assert np.array_equal(pixels(got), pixels(want))
    (uploaded,) = items(path.read_bytes(), name=path.name)  # bytes alone: through a temporary file
    assert uploaded.origin == path.name and np.array_equal(pixels(uploaded), pixels(got))


def test_minc_is_told_from_other_netcdf_and_hdf5_files(tmp_path):
    h5py = pytest.importorskip("h5py")
    keras = tmp_path / "weights.h5"
    with h5py.File(keras, "w") as f:
        f.create_dataset("dense/kernel", data=np.zeros((4, 4), np.float32))
    climate = b"CDF\x01" + bytes(60)  # a NetCDF header without MINC's space dimensions
    for item in (*open_input(keras), *items(climate, name="air.nc")):
        assert isinstance(item, ItemError) and "MINC" not in item.error
    data = (NIB_DATA / "minc2_1_scale.mnc").read_bytes()
    (cut,) = items(data[: len(data) // 2], name="cut.mnc")
    assert isinstance(cut, ItemError) and "not a readable MINC2 file" in cut.error
    (big,) = items(data, name="v.mnc", max_input_bytes=10_000)
    assert isinstance(big, ItemError) and "max_input_bytes" in big.error


def minc1_with_attributes(path: Path, extra: int, on: str = "") -> Path:
    """nibabel's minc1_1_scale.mnc rewritten by its NetCDF writer with `extra` more attributes, global or on the
    variable `on`."""
    _netcdf_copy(NIB_DATA / "minc1_1_scale.mnc", path, version=1, edit=lambda dst: (
        dst.variables[on]._attributes if on else dst._attributes).update((f"a{i}", b"x") for i in range(extra)))
    return path


def test_minc1_with_too_many_netcdf_attributes_is_refused_before_nibabel_reads_it(tmp_path, monkeypatch):
    """nibabel's NetCDF reader makes Python objects of every attribute (8.5 million, 204 MB: 32 s, 1.5 GB), so the
    header's dimensions, variables and attributes are counted first and refused past MAX_NETCDF_ITEMS (lowered
    here); the same file under the limit still opens."""
    from medimg.sources import minc

    monkeypatch.setattr(minc, "MAX_NETCDF_ITEMS", 200)
    want = pixels(next(open_input(NIB_DATA / "minc1_1_scale.mnc")))
    for on in ("", "image"):
        crowded = minc1_with_attributes(tmp_path / f"crowded{on}.mnc", 150, on)
        (err,) = open_input(crowded)
        assert isinstance(err, ItemError) and err.error == (
            "MINC1 file with more than 200 NetCDF dimensions, variables and attributes; not opened")
        (uploaded,) = items(crowded.read_bytes(), name="crowded.mnc")
        assert isinstance(uploaded, ItemError) and "more than 200 NetCDF" in uploaded.error
        (fine,) = open_input(minc1_with_attributes(tmp_path / f"fine{on}.mnc", 100, on))
        assert np.array_equal(pixels(fine), want)



def test_minc_claiming_more_memory_than_there_is_is_a_plain_error(tmp_path, monkeypatch):
    """A MINC1 attribute claiming more bytes than the file holds is refused before nibabel reads it (it reads
    them at once: under a 3 GB address-space limit a fuzzed file gave "not a readable MINC1 file: MemoryError: ");
    a MemoryError from nibabel all the same is told in plain words."""
    data = minc1_with_attributes(tmp_path / "v.mnc", 1).read_bytes()
    value = b"a0\0\0" + (2).to_bytes(4, "big") + (1).to_bytes(4, "big") + b"x\0\0\0"  # name, type char, 1 of them
    assert data.count(value) == 1
    bad = tmp_path / "bad.mnc"
    bad.write_bytes(data.replace(value, value[:8] + (100_000_000).to_bytes(4, "big") + value[12:]))
    for err in (*open_input(bad), *items(bad.read_bytes(), name="bad.mnc")):
        assert isinstance(err, ItemError) and err.error == (
            "MINC1 file is damaged: its header claims a value of 100,000,000 bytes, more than the file holds; not "
            "opened")

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(nib.Minc2Image, "from_filename", no_memory)
    (err,) = open_input(NIB_DATA / "minc2_1_scale.mnc")
    assert err.error == "not a readable MINC2 file: the file is damaged (it claims more memory than is available)"

# ---------------------------------------------------------------- detached headers (.mhd, .nhdr)


def detached_mha(tmp_path: Path, vol: np.ndarray, data_file: str = "v.raw", compressed: bool = False,
                 write_data: bool = True) -> Path:
    """An ITK header/data pair: v.mhd naming `data_file`, written beside it."""
    whole = mha(vol, compressed=compressed, data_file=data_file)
    end = whole.index(b"ElementDataFile")
    end = whole.index(b"\n", end) + 1
    (tmp_path / "v.mhd").write_bytes(whole[:end])
    if write_data:
        (tmp_path / data_file).write_bytes(whole[end:])
    return tmp_path / "v.mhd"


def test_a_data_file_named_beside_its_header_is_a_note_not_an_error(tmp_path):
    """`find … | medimg classify --inputs-from -` names both halves of a pair: the header gives the slice, its
    data file a skipped note saying whose it is (it was an 'unrecognised content' error); a lone .raw is still
    an error."""
    from medimg.sources import open_inputs

    header = detached_mha(tmp_path, head_volume())
    img = nib.Nifti1Pair(head_volume().astype(np.int16), np.eye(4))
    nib.save(img, tmp_path / "p.hdr")  # writes p.hdr + p.img
    (tmp_path / "lone.raw").write_bytes(b"\x00\x01" * 500)
    got = list(open_inputs([str(header), str(tmp_path / "v.raw"), str(tmp_path / "p.hdr"), str(tmp_path / "p.img"),
                            str(tmp_path / "lone.raw")]))
    kinds = [(Path(i.origin).name, type(i).__name__, getattr(i, "skipped", None)) for i in got]
    assert kinds == [("v.mhd", "ImageItem", None), ("v.raw", "ItemError", True), ("p.hdr", "ImageItem", None),
                     ("p.img", "ItemError", True), ("lone.raw", "ItemError", False)]
    assert got[1].error == "skipped: the data file of v.mhd, read with it"
    assert got[3].error == "skipped: the data file of p.hdr, read with it"
    (tmp_path / "p.img.gz").write_bytes(gzip.compress((tmp_path / "p.img").read_bytes()))
    (tmp_path / "p.img").unlink()  # the .img.gz of a .hdr: gzipped, still its data file
    hdr, img_gz = open_inputs([str(tmp_path / "p.hdr"), str(tmp_path / "p.img.gz")])
    assert isinstance(hdr, ImageItem) and img_gz.error == "skipped: the data file of p.hdr, read with it"
    folder = list(open_input(tmp_path))  # in a folder walk too, the note says whose data it is
    assert any(i.origin.endswith("v.raw") and "data file of v.mhd" in i.error for i in folder
               if isinstance(i, ItemError))


def test_detached_headers_read_the_data_file_beside_them(tmp_path):
    """LUNA16-style .mhd/.raw pairs and 3D Slicer's .nhdr: the data file the header names is read when it
    lies beside the header on disk, and the slice is the one the attached file gives."""
    vol = head_volume()
    lps = vol[::-1, ::-1, :].copy()
    (want,) = items(mha(lps), name="v.mha")
    for compressed, data_file in ((False, "v.raw"), (True, "v.zraw")):
        folder = tmp_path / data_file.replace(".", "_")
        folder.mkdir()
        (got,) = open_input(detached_mha(folder, lps, data_file, compressed))
        assert got.format == "MetaImage" and got.metadata["data_file"] == data_file
        assert np.array_equal(pixels(got), pixels(want))

    (attached,) = open_input(write_nrrd(tmp_path, vol, "a.nrrd", space="RAS",
                                        **{"space directions": np.eye(3).tolist()}))
    for encoding in ("gzip", "raw"):
        header = tmp_path / f"v_{encoding}.nhdr"
        nrrd.write(str(header), vol, {"encoding": encoding, "space": "RAS", "space directions": np.eye(3).tolist()},
                   detached_header=True)
        (got,) = open_input(header)
        assert got.format == "NRRD" and got.metadata["data_file"].startswith(f"v_{encoding}.raw")
        assert np.array_equal(pixels(got), pixels(attached))

    # walking the folder: the header gives the slice, its data file is a skipped note, nothing fails
    walked = list(open_input(tmp_path / "v_raw"))
    images = [i for i in walked if isinstance(i, ImageItem)]
    assert [Path(i.origin).name for i in images] == ["v.mhd"]
    assert all(i.skipped for i in walked if isinstance(i, ItemError))


def test_detached_headers_never_read_other_paths(tmp_path):
    lps = head_volume()[::-1, ::-1, :].copy()
    secret = tmp_path / "secret.raw"
    secret.write_bytes(mha(lps)[-(40 * 30 * 20 * 2):])  # a file the right size, outside the header's folder
    inner = tmp_path / "inner"
    inner.mkdir()
    for name in ("../secret.raw", str(secret), "sub/v.raw", "..\\secret.raw"):
        (err,) = open_input(detached_mha(inner, lps, name, write_data=False))
        assert isinstance(err, ItemError) and "only a file beside the header" in err.error, name
    for name in ("LIST", "v%03d.raw 1 20 1"):
        (err,) = open_input(detached_mha(inner, lps, name, write_data=False))
        assert isinstance(err, ItemError) and "several files" in err.error
    (err,) = open_input(detached_mha(inner, lps, "gone.raw", write_data=False))
    assert isinstance(err, ItemError) and "gone.raw: file not found" in err.error
    (err,) = open_input(detached_mha(inner, lps), Limits(max_input_bytes=10_000))
    assert isinstance(err, ItemError) and "max_input_bytes" in err.error

    # the header's bytes alone, with nothing beside them: a clear error
    header = detached_mha(inner, lps).read_bytes()
    (err,) = items(header, name="v.mhd")
    assert isinstance(err, ItemError) and "give both files together" in err.error
    nhdr = tmp_path / "v.nhdr"
    nrrd.write(str(nhdr), lps, detached_header=True)
    (err,) = items(nhdr.read_bytes(), name="v.nhdr")
    assert isinstance(err, ItemError) and "give both files together" in err.error
    nhdr.write_bytes(nhdr.read_bytes().replace(b"data file: v.raw.gz", b"data file: ../v.raw.gz"))
    (err,) = open_input(nhdr)
    assert isinstance(err, ItemError) and "only a file beside the header" in err.error


def test_detached_headers_in_a_zip_read_the_member_beside_them(tmp_path):
    """In a zip, the data file is the member of the same name in the header's own folder of the archive."""
    import zipfile

    lps = head_volume()[::-1, ::-1, :].copy()
    (want,) = items(mha(lps), name="v.mha")
    header = detached_mha(tmp_path, lps)
    raw = (tmp_path / "v.raw").read_bytes()
    nhdr = tmp_path / "n.nhdr"
    nrrd.write(str(nhdr), lps, {"encoding": "gzip"}, detached_header=True)
    archive = tmp_path / "scans.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("case1/v.mhd", header.read_bytes())
        zf.writestr("case1/v.raw", raw)
        zf.writestr("case2/v.mhd", header.read_bytes())  # its v.raw is in another folder: not read
        zf.writestr("case3/n.nhdr", nhdr.read_bytes())
        zf.writestr("case3/n.raw.gz", (tmp_path / "n.raw.gz").read_bytes())
    got = {i.origin.split(":", 1)[1]: i for i in open_input(archive)}
    assert np.array_equal(pixels(got["case1/v.mhd"]), pixels(want))
    assert isinstance(got["case2/v.mhd"], ItemError) and "not in the same folder" in got["case2/v.mhd"].error
    (nrrd_want,) = open_input(nhdr)
    assert np.array_equal(pixels(got["case3/n.nhdr"]), pixels(nrrd_want))
    assert got["case1/v.raw"].skipped  # the data file itself: a note
    (big,) = [i for i in open_input(archive, Limits(max_input_bytes=20_000)) if i.origin.endswith("case1/v.mhd")]
    assert isinstance(big, ItemError) and "max_input_bytes" in big.error


def test_folder_walk_notes_unknown_files_without_reading_them_whole(tmp_path):
    """A LUNA16-style folder: each .mhd gives its slice, each big .raw beside it one skipped note — not an
    over-the-cap error, since a file no source takes from its first bytes is never read whole. A header
    longer than 4 KB is still recognised."""
    lps = head_volume()[::-1, ::-1, :].copy()
    detached_mha(tmp_path, lps)
    (tmp_path / "scan.bin").write_bytes(b"\x00\x17" * 1_500_000)  # 3 MB of voxels, no header
    long = mha(lps).replace(b"ObjectType = Image\n", b"ObjectType = Image\nComment = " + b"x" * 6000 + b"\n")
    (tmp_path / "long.mha").write_bytes(long)
    got = {Path(i.origin).name: i for i in open_input(tmp_path, Limits(max_input_bytes=1_000_000))}
    assert isinstance(got["v.mhd"], ImageItem) and isinstance(got["long.mha"], ImageItem)
    for name, why in (("v.raw", "the data file of v.mhd"), ("scan.bin", "not an image")):
        assert isinstance(got[name], ItemError) and got[name].skipped and why in got[name].error


def test_nifti_and_analyze_header_image_pairs(tmp_path):
    """A .hdr/.img pair (NIfTI-1 pair, or Analyze 7.5 as OASIS ships) reads the .img beside the .hdr, on disk,
    in a zip and among uploads, and shows what the same voxels and affine show as one .nii."""
    import zipfile

    vol = head_volume().astype(np.float32)
    for cls, name in ((nib.Nifti1Pair, "pair"), (nib.AnalyzeImage, "analyze")):
        img = cls(vol, np.diag([1.0, 1.0, 2.0, 1.0]))
        img.to_filename(str(tmp_path / f"{name}.img"))
        written = nib.load(str(tmp_path / f"{name}.hdr"))
        (want,) = items(nifti(np.asanyarray(written.dataobj), written.affine))
        (got,) = open_input(tmp_path / f"{name}.hdr")
        assert got.format == "NIfTI" and np.array_equal(pixels(got), pixels(want)), name
        archive = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.write(tmp_path / f"{name}.hdr", f"s/{name}.hdr")
            zf.write(tmp_path / f"{name}.img", f"s/{name}.img")
        zipped = [i for i in open_input(archive) if isinstance(i, ImageItem)]
        assert len(zipped) == 1 and np.array_equal(pixels(zipped[0]), pixels(want))

    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "pair.hdr").write_bytes((tmp_path / "pair.hdr").read_bytes())
    (err,) = open_input(alone / "pair.hdr")
    assert isinstance(err, ItemError) and "pair.img: file not found" in err.error
    (alone / "pair.img").write_bytes((tmp_path / "pair.img").read_bytes()[:1000])
    (cut,) = open_input(alone / "pair.hdr")
    assert isinstance(cut, ItemError) and "truncated" in cut.error
    gz = tmp_path / "gz"
    gz.mkdir()
    (gz / "pair.hdr").write_bytes((tmp_path / "pair.hdr").read_bytes())
    (gz / "pair.img.gz").write_bytes(gzip.compress((tmp_path / "pair.img").read_bytes()))
    (packed,) = open_input(gz / "pair.hdr")  # the .img gzip-compressed beside it
    (plain,) = open_input(tmp_path / "pair.hdr")
    assert np.array_equal(pixels(packed), pixels(plain))
    walked = list(open_input(tmp_path))
    assert all(i.skipped for i in walked if isinstance(i, ItemError) and i.origin.endswith(".img"))


def open_blob_items(data: bytes, name: str) -> list:
    return list(open_input(Blob(name, data, name=name), Limits()))


def test_nrrd_gzip_data_with_a_byte_skip_of_minus_one_is_the_last_bytes_inflated():
    """`byte skip: -1` with gzip encoding: the voxels are the last bytes of the inflated data, after any prefix."""
    vol = head_volume()
    header = (b"NRRD0004\ntype: int16\ndimension: 3\nsizes: 40 30 20\nendian: little\n"
              b"space: right-anterior-superior\nspace directions: (1,0,0) (0,1,0) (0,0,1)\n")
    voxels = np.asfortranarray(vol).tobytes(order="F")
    plain = header + b"encoding: raw\n\n" + voxels
    skipped = header + b"encoding: gzip\nbyte skip: -1\n\n" + gzip.compress(b"\x7f" * 1001 + voxels)
    (want,) = open_blob_items(plain, "plain.nrrd")
    (got,) = open_blob_items(skipped, "skipped.nrrd")
    assert np.array_equal(pixels(got), pixels(want))


def test_nrrd_rgba_colour_axis_gives_colour_slices(tmp_path):
    """An RGBA-color axis of 4 is read as colour (its alpha dropped), not as a list of 4 grey volumes."""
    rgba = np.zeros((4, 8, 6), np.uint8)
    rgba[1] = 200
    rgba[3] = 255
    (colour,) = open_input(write_nrrd(tmp_path, rgba, "rgba.nrrd", kinds=["RGBA-color", "domain", "domain"]))
    assert colour.image.mode == "RGB" and colour.image.size == (8, 6)
    assert colour.image.getpixel((0, 0)) == (0, 200, 0)


def test_metaimage_header_size_of_minus_one_takes_the_last_bytes():
    """`HeaderSize = -1`: the voxels are the file's last bytes, whatever comes between the header and them."""
    vol = head_volume()
    normal = mha(vol)
    head, _, raw = normal.partition(b"ElementDataFile = LOCAL\n")
    skipped = head.replace(b"ElementType", b"HeaderSize = -1\nElementType") + b"ElementDataFile = LOCAL\n" + \
        b"\x55" * 777 + raw
    (want,) = open_blob_items(normal, "v.mha")
    (got,) = open_blob_items(skipped, "v.mha")
    assert np.array_equal(pixels(got), pixels(want))


def _blob_items(data: bytes, name: str):
    return list(Context(Limits()).open_blob(Blob(name, data, name=name)))


def test_an_mgh_volume_with_oblong_voxels_is_shown_with_square_pixels_as_nifti_is():
    """Voxels 2 mm front to back: the axial slice is stretched to square pixels (40 × 60), as the same
    volume stored as NIfTI is, not drawn squashed (40 × 30)."""
    x, y, z = np.meshgrid(np.arange(40), np.arange(30), np.arange(20), indexing="ij")
    vol = ((((x - 20) / 16) ** 2 + ((y - 15) / 12) ** 2 < 1) * (100 + 5 * z)).astype(np.float32)
    affine = np.diag([1.0, 2.0, 1.0, 1.0])
    (a,) = _blob_items(nib.MGHImage(vol, affine).to_bytes(), "v.mgh")
    (b,) = _blob_items(nib.Nifti1Image(vol, affine).to_bytes(), "v.nii")
    assert isinstance(a, ImageItem) and a.format == "MGH" and a.metadata["voxel_mm"] == [1.0, 2.0, 1.0]
    assert a.image.size == b.image.size == (40, 60)
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_only_a_whole_mgh_header_of_a_known_kind_is_taken_for_mgh():
    """Version 1, a known voxel type (int16 included), sizes 1 .. 2**20 and the whole 284-byte header: else the
    file is not MGH. A volume cut short, by less than its header's 284 bytes too, is truncated."""
    import struct

    vol = (head_volume() * 100).astype(np.int16)
    data = nib.MGHImage(vol, np.eye(4)).to_bytes()
    (item,) = items(data, name="v.mgh")
    assert isinstance(item, ImageItem) and item.format == "MGH", item
    first = struct.unpack(">7i", data[:28])
    for changed in ({0: 2}, {5: 2}, {1: 0}, {2: (1 << 20) + 1}):  # version, type, a size of 0, a size over 2**20
        fields = [changed.get(i, v) for i, v in enumerate(first)]
        (err,) = items(struct.pack(">7i", *fields) + data[28:], name="v.mgh")
        # no source took it (an .mgh name promises an image: "named MGH but not readable as one, nor as any …")
        assert isinstance(err, ItemError) and "nor as any supported format" in err.error, (changed, err)
    small = nib.MGHImage(np.zeros((2, 2, 2), np.uint8), np.eye(4)).to_bytes()[:200]
    (err,) = items(small, name="v.mgh")
    assert isinstance(err, ItemError) and "nor as any supported format" in err.error
    (cut,) = items(data[:-100], name="v.mgh")
    assert isinstance(cut, ItemError) and "truncated" in cut.error, cut


def test_the_netcdf_item_count_includes_each_variables_dimension_ids(tmp_path, monkeypatch):
    """MAX_NETCDF_ITEMS counts dimensions, global attributes, variables, their dimension ids and attributes: a
    cap one below that sum refuses the file, the sum itself opens it."""
    from nibabel.externals.netcdf import netcdf_file

    from medimg.sources import minc

    path = NIB_DATA / "minc1_1_scale.mnc"
    f = netcdf_file(str(path), "r", mmap=False)
    total = len(f.dimensions) + len(f._attributes) + len(f.variables) + sum(
        len(v.dimensions) + len(v._attributes) for v in f.variables.values())
    f.close()
    monkeypatch.setattr(minc, "MAX_NETCDF_ITEMS", total - 1)
    (err,) = open_input(path)
    assert isinstance(err, ItemError) and f"more than {total - 1:,} NetCDF" in err.error
    monkeypatch.setattr(minc, "MAX_NETCDF_ITEMS", total)
    assert isinstance(next(open_input(path)), ImageItem)


def test_a_minc1_value_longer_than_the_rest_of_the_file_is_refused(tmp_path):
    """A value claiming more bytes than follow it (though fewer than the whole file) is refused."""
    data = minc1_with_attributes(tmp_path / "v.mnc", 1).read_bytes()
    value = b"a0\0\0" + (2).to_bytes(4, "big") + (1).to_bytes(4, "big") + b"x\0\0\0"
    at = data.index(value)
    claim = len(data) - 20  # under the file's size, over what is left after it
    bad = tmp_path / "bad.mnc"
    bad.write_bytes(data[:at + 8] + claim.to_bytes(4, "big") + data[at + 12:])
    (err,) = open_input(bad)
    assert err.error == (f"MINC1 file is damaged: its header claims a value of {claim:,} bytes, more than the file "
                         "holds; not opened")


def test_a_minc1_file_with_64_bit_offsets_is_read_like_the_classic_one(tmp_path):
    """NetCDF's 64-bit-offset variant (CDF\\x02) is MINC1 too: the same slice as the classic file."""
    _netcdf_copy(NIB_DATA / "minc1_1_scale.mnc", tmp_path / "v2.mnc", version=2)
    data = (tmp_path / "v2.mnc").read_bytes()
    assert data[:4] == b"CDF\x02"
    want = pixels(next(open_input(NIB_DATA / "minc1_1_scale.mnc")))
    assert np.array_equal(pixels(next(open_input(tmp_path / "v2.mnc"))), want)
    (item,) = items(data, name="v2.mnc")
    assert np.array_equal(pixels(item), want)


def _netcdf_copy(src_path, dst_path, version: int, edit=None) -> None:
    """A MINC1 file written again by nibabel's NetCDF writer, in NetCDF `version`; `edit(dst)` before it closes."""
    from nibabel.externals.netcdf import netcdf_file

    src = netcdf_file(str(src_path), "r", mmap=False)
    dst = netcdf_file(str(dst_path), "w", version=version)
    for name, size in src.dimensions.items():
        dst.createDimension(name, size)
    for name, var in src.variables.items():
        new = dst.createVariable(name, var.typecode(), var.dimensions)
        new._attributes.update(var._attributes)
        if var.shape:
            new[:] = var[:]
        else:
            new.data[()] = var.getValue()  # assignValue fails on scalars
    dst._attributes.update(src._attributes)
    if edit:
        edit(dst)
    dst.close(), src.close()


def _netcdf_header(global_count: int, variables: int) -> bytes:
    """A NetCDF classic header naming MINC's xspace: no global attributes but a count of `global_count`, then
    `variables` variables without dimensions or attributes."""
    def be(n: int) -> bytes:
        return n.to_bytes(4, "big", signed=True)

    def name(text: bytes) -> bytes:
        return be(len(text)) + text + b"\0" * (-len(text) % 4)
    head = b"CDF\x01" + be(0) + be(10) + be(1) + name(b"xspace") + be(5) + be(0) + be(global_count)
    head += be(11) + be(variables) + b"".join(name(b"v%d" % i) + be(0) + be(0) + be(0) + be(2) + be(0) + be(0)
                                              for i in range(variables))
    return head + b"\0" * 256


def test_a_negative_count_in_a_minc1_header_does_not_lift_the_item_cap(monkeypatch):
    """A damaged list claiming −10⁶ items must not lower the running count: 11 variables past a cap of 10 are
    still refused, and a header cut short is left for nibabel to describe."""
    from medimg.sources import minc

    monkeypatch.setattr(minc, "MAX_NETCDF_ITEMS", 10)
    for global_count in (0, -10**6):
        (err,) = items(_netcdf_header(global_count, 11), name="v.mnc")
        assert err.error == "MINC1 file with more than 10 NetCDF dimensions, variables and attributes; not opened"
    (cut,) = items(_netcdf_header(0, 11)[:40], name="v.mnc")
    assert cut.error.startswith("not a readable MINC1 file"), cut.error


def test_a_4d_minc_volume_takes_its_voxel_sizes_from_its_space_axes_not_time(tmp_path):
    """MINC keeps time first: the voxel sizes come from the three space axes after it (x steps of 5 mm against
    2 mm: a slice 2.5 times as wide as tall, in square pixels)."""
    _netcdf_copy(NIB_DATA / "minc1_4d.mnc", tmp_path / "wide.mnc", version=1,
                 edit=lambda dst: dst.variables["xspace"]._attributes.update(step=5.0))
    item = next(open_input(tmp_path / "wide.mnc"))
    assert isinstance(item, ImageItem) and 5.0 in item.metadata["voxel_mm"], item
    w, h = item.image.size
    assert max(w, h) / min(w, h) == pytest.approx(2.5, rel=0.1), (w, h)


def test_a_slicer_segmentation_nrrd_is_a_note_like_a_dicom_segmentation(tmp_path):
    """3D Slicer writes a segmentation (.seg.nrrd) with `Segment0_ID:=…` and `Segmentation_…:=…` lines: masks drawn
    on an image, a skipped note (both its 3D form and its form with a layer axis were read as black-and-white
    images)."""
    masks = np.zeros((40, 30, 20), np.uint8)
    masks[10:20, 10:20] = 1
    seg = {"Segment0_ID": "Segment_1", "Segment0_Name": "liver", "Segment0_LabelValue": "1",
           "Segmentation_MasterRepresentation": "Binary labelmap", "space": "left-posterior-superior",
           "space directions": np.eye(3)}
    (note,) = open_input(write_nrrd(tmp_path, masks, "liver.seg.nrrd", **seg))
    assert isinstance(note, ItemError) and note.skipped
    assert note.error == "NRRD holds a 3D Slicer segmentation (sizes [40, 30, 20]), not an image volume"
    layers = np.stack([masks, masks[::-1]])  # overlapping segments: one layer each, on a list axis first
    (note,) = open_input(write_nrrd(tmp_path, layers, "two.seg.nrrd", kinds=["list", "domain", "domain", "domain"],
                                    **{k: v for k, v in seg.items() if k != "space directions"},
                                    **{"space directions": [[np.nan] * 3, [1, 0, 0], [0, 1, 0], [0, 0, 1]]}))
    assert isinstance(note, ItemError) and note.skipped
    assert "3D Slicer segmentation (sizes [2, 40, 30, 20])" in note.error
    (plain,) = open_input(write_nrrd(tmp_path, masks, "mask.nrrd", space="left-posterior-superior",
                                     **{"space directions": np.eye(3)}))
    assert isinstance(plain, ImageItem)  # without Slicer's lines: read as ever


def test_an_eight_bit_2d_nrrd_or_metaimage_looks_like_its_png(tmp_path):
    """NRRD and MetaImage hold plain 2D pictures too: 8-bit ones are shown as stored, as the same picture as a PNG
    (levels 90-230 were stretched to 0-255)."""
    picture = np.random.default_rng(1).integers(90, 231, (20, 50)).astype(np.uint8)  # rows × columns
    (png,) = open_input(Blob("p.png", _png(picture)))
    (flat,) = open_input(write_nrrd(tmp_path, picture.T, "plain.nrrd"))  # first axis across, second down
    assert np.array_equal(pixels(flat), pixels(png))
    mha = (b"ObjectType = Image\nNDims = 2\nDimSize = 50 20\nElementType = MET_UCHAR\n"
           b"ElementDataFile = LOCAL\n" + picture.tobytes())
    (meta,) = open_input(Blob("p.mha", mha))
    assert np.array_equal(pixels(meta), pixels(png))


def _png(grey: np.ndarray) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(grey).save(out, "PNG")
    return out.getvalue()
