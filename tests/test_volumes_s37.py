"""Volumes (session 37 review): the volume a viewer opens a diffusion series at, 5-D series, dim 8-bit label maps,
NRRD's -time spaces, 4-D MetaImage matrices, SPM's negative x voxel size and RGB NIfTI's datatype; every volume
written here by nibabel or pynrrd (MetaImage in ITK's layout)."""

from __future__ import annotations

import gzip
import shutil
import struct
import time
import tracemalloc
import zipfile

import nibabel as nib
import nrrd
import numpy as np
import pytest

from medimg.sources import ImageItem, ItemError, open_input
from test_nifti import NIB_DATA, head_volume, items, nifti
from test_volumes import mha, pixels


def dwi_volume(b_values: list[int]) -> np.ndarray:
    """A diffusion series: the b0 volumes bright (1000), the weighted ones dim (150)."""
    vol = (head_volume() > 0).astype(np.int16)
    return np.stack([vol * (1000 if b == 0 else 150) for b in b_values], axis=-1)


def test_a_diffusion_series_shows_its_b0_from_the_bval_file_beside_it(tmp_path):
    """dcm2niix and BIDS write name.bval beside name.nii.gz, FSL `bvals`: the first volume of the lowest b-value is the
    one viewers open the series at (it was the middle, diffusion-weighted one)."""
    b_values = [1000, 0, 1000, 1000, 1000, 0, 1000]
    nib.save(nib.Nifti1Image(dwi_volume(b_values), np.eye(4)), tmp_path / "sub-01_dwi.nii.gz")
    (tmp_path / "sub-01_dwi.bval").write_text(" ".join(map(str, b_values)) + "\n")
    (got,) = open_input(tmp_path / "sub-01_dwi.nii.gz")
    assert got.locator == "slice 11 of 20, volume 2 of 7" and got.metadata["b_value"] == 0.0
    assert pixels(got).max() == 255 and np.mean(pixels(got) == 255) > 0.3  # the bright b0, not the dim 150s
    fsl = tmp_path / "fsl"
    fsl.mkdir()
    nib.save(nib.Nifti1Image(dwi_volume(b_values), np.eye(4)), fsl / "data.nii.gz")
    (fsl / "bvals").write_text("\n".join(map(str, b_values)))
    zipped = tmp_path / "dwi.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.write(fsl / "data.nii.gz", "dwi/data.nii.gz")
        z.write(fsl / "bvals", "dwi/bvals")
    for source in (fsl / "data.nii.gz", zipped):
        (got,) = [it for it in open_input(source) if isinstance(it, ImageItem)]
        assert got.locator == "slice 11 of 20, volume 2 of 7", source
    (fsl / "bvals").write_text("0 1000")  # not one value per volume: not this series'
    (middle,) = open_input(fsl / "data.nii.gz")
    assert middle.locator == "slice 11 of 20, volume 4 of 7" and "b_value" not in middle.metadata


def test_a_slicer_diffusion_nrrd_shows_its_b0_from_its_gradients(tmp_path):
    b_values = [1000, 1000, 0, 1000, 1000]
    header = {"space": "left-posterior-superior", "kinds": ["list", "space", "space", "space"],
              "space directions": [[np.nan] * 3, [-1, 0, 0], [0, -1, 0], [0, 0, 1]], "DWMRI_b-value": "1000"}
    for i, b in enumerate(b_values):
        header[f"DWMRI_gradient_{i:04d}"] = "0 0 0" if b == 0 else "0 0.6 0.8"
    path = tmp_path / "dwi.nrrd"
    nrrd.write(str(path), np.moveaxis(dwi_volume(b_values), -1, 0).copy(), header)
    (got,) = open_input(path)
    assert got.locator == "slice 11 of 20, volume 3 of 5" and got.metadata["b_value"] == 0.0
    assert np.mean(pixels(got) == 255) > 0.3


def test_a_5d_series_is_shown_as_a_series_of_volumes_not_called_matrix_data():
    """(x, y, z, t, echo) without a vector or matrix intent: its volumes counted as stored (t fastest), the middle one
    shown; it was skipped as 'a matrix or surface data'."""
    vol = head_volume()
    series = np.stack([np.stack([vol + 100 * (t + 5 * e) for t in range(5)], -1) for e in range(3)], -1)
    (got,) = items(nifti(series))
    assert isinstance(got, ImageItem), got.error
    assert got.locator == "slice 11 of 20, volume 8 of 15" and got.metadata["dims"] == [40, 30, 20, 5, 3]
    (want,) = items(nifti(series[..., 2, 1]))  # volume 8 = t 3 of 5, echo 2 of 3
    assert np.array_equal(pixels(got), pixels(want))
    field = nib.Nifti1Image(np.zeros((8, 8, 4, 2, 3), np.float32), np.eye(4))
    field.header.set_intent("vector")
    (note,) = items(field.to_bytes())
    assert note.skipped and note.error.startswith("NIfTI holds a vector per voxel")


def test_an_eight_bit_label_map_without_an_intent_is_visible():
    """uint8 labels 0-3 (or a 0/1 mask) were shown as stored: a near-black picture. Dim 8-bit slices are stretched
    as viewers do; a picture's 8-bit grey levels stay as stored."""
    labels = np.zeros((40, 30, 20), np.uint8)
    labels[5:20, 5:20], labels[20:35, 10:25] = 1, 3
    for vol in (labels, (labels > 0).astype(np.uint8)):
        shown = pixels(items(nifti(vol))[0])
        assert shown.max() == 255 and len(np.unique(shown)) == len(np.unique(vol))
    picture = np.full((40, 30, 20), 90, np.uint8)
    picture[10:30] = 230
    shown = pixels(items(nifti(picture))[0])
    assert (shown.min(), shown.max()) == (90, 230)


def test_a_4d_nrrd_in_a_time_space_is_turned_like_its_3d_twin(tmp_path):
    """space: left-posterior-superior-time (directions of four values, the last time) was taken for RAS: the picture
    came out turned half round and said RAS."""
    lps = head_volume()[::-1, ::-1].copy()
    nrrd.write(str(tmp_path / "three.nrrd"), lps, {"space": "left-posterior-superior", "space directions": np.eye(3)})
    d = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [np.nan] * 4]
    nrrd.write(str(tmp_path / "four.nrrd"), np.stack([lps] * 3, -1),
               {"space": "left-posterior-superior-time", "space directions": d,
                "kinds": ["space", "space", "space", "time"]})
    (three,), (four,) = open_input(tmp_path / "three.nrrd"), open_input(tmp_path / "four.nrrd")
    assert four.metadata["orientation"] == three.metadata["orientation"] == "LPS"
    assert np.array_equal(pixels(four), pixels(three))


def test_a_4d_metaimage_reads_its_4_by_4_transform_matrix():
    """A 4-D .mha's TransformMatrix has 16 values: the first 9 were read as a 3 × 3 one (a transposed picture)."""
    lps = head_volume()[::-1, ::-1].copy()
    stored = np.transpose(lps, (1, 0, 2))  # y, x, z: the matrix says so
    (want,) = items(mha(stored.copy(), matrix="0 1 0 1 0 0 0 0 1"), name="v.mha")
    series = np.stack([stored] * 3, -1)
    raw = np.ascontiguousarray(np.transpose(series, (3, 2, 1, 0))).astype("<i2").tobytes()
    header = ["ObjectType = Image", "NDims = 4", "BinaryData = True", "BinaryDataByteOrderMSB = False",
              "TransformMatrix = 0 1 0 0 1 0 0 0 0 0 1 0 0 0 0 1", "Offset = 0 0 0 0", "ElementSpacing = 1 1 1 1",
              "DimSize = " + " ".join(map(str, series.shape)), "ElementType = MET_SHORT", "ElementDataFile = LOCAL"]
    (got,) = items(("\n".join(header) + "\n").encode() + raw, name="v.mha")
    assert got.locator == "slice 11 of 20, volume 2 of 3" and got.metadata["orientation"] == "PLS"
    assert np.array_equal(pixels(got), pixels(want))


def test_an_spm_analyze_file_with_a_negative_x_voxel_size_is_stored_left_to_right(tmp_path):
    """SPM marks an Analyze 7.5 file stored left to right (neurological) by a negative pixdim[1]; nibabel drops the
    sign and reads every Analyze file right to left. Without the sign the file reads as before."""
    vol = head_volume()
    nib.save(nib.AnalyzeImage(vol, np.diag([2.0, 2.0, 2.0, 1.0])), tmp_path / "las.hdr")
    (las,) = open_input(tmp_path / "las.hdr")
    header = bytearray((tmp_path / "las.hdr").read_bytes())
    struct.pack_into("<f", header, 80, -2.0)
    (tmp_path / "ras.hdr").write_bytes(header)
    (tmp_path / "ras.img").write_bytes((tmp_path / "las.img").read_bytes())
    (ras,) = open_input(tmp_path / "ras.hdr")
    assert (las.metadata["orientation"], ras.metadata["orientation"]) == ("LAS", "RAS")
    assert np.array_equal(pixels(ras), pixels(las)[:, ::-1])
    assert np.array_equal(pixels(ras), pixels(items(nifti(vol))[0]))  # the same voxels as a RAS NIfTI


def test_rgb_nifti_names_its_datatype():
    rgb = np.zeros((8, 6, 4), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    rgb["G"] = 200
    (got,) = items(nifti(rgb))
    assert got.image.mode == "RGB" and got.metadata["datatype"] == "RGB24"
    assert not isinstance(got, ItemError)


def test_a_nii_gz_is_inflated_without_a_second_copy():
    """The inflated pieces were joined at the end: two copies of the volume at once (a 200 MB gzip bomb peaked at
    570 MB of RSS). Now the inflated bytes are held once, with some slack."""
    size = 256 * 256 * 160 * 2
    data = gzip.compress(nifti(np.zeros((256, 256, 160), np.int16)), 1)
    items(nifti(np.zeros((4, 4, 4), np.int16)))  # imports done before counting
    tracemalloc.start()
    try:
        (got,) = items(data, name="v.nii.gz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got.locator == "slice 81 of 160"
    assert peak < 1.75 * size, f"{peak / size:.2f} times the volume's bytes"


def test_a_minc2_file_claiming_more_voxels_than_the_byte_cap_is_refused_before_reading(tmp_path):
    """HDF5 hands chunks never written back as zeros: nibabel's 200 KB small.mnc, its image made 10,000³ chunked,
    gave a 10,000 × 10,000 slice of zeros (15 s, 1.3 GB). Its voxels' bytes are now checked as every volume's are."""
    h5py = pytest.importorskip("h5py", reason="MINC2 needs h5py")
    path = tmp_path / "claims.mnc"
    shutil.copy(NIB_DATA / "small.mnc", path)
    n = 10_000
    with h5py.File(path, "r+") as f:
        group = f["minc-2.0/image/0"]
        attrs = dict(group["image"].attrs)
        del group["image"]
        image = group.create_dataset("image", shape=(n, n, n), dtype="i2", chunks=(1, 64, 64))
        image.attrs.update(attrs)
        for name in ("image-max", "image-min"):
            old = dict(group[name].attrs)
            del group[name]
            group.create_dataset(name, data=np.ones(n)).attrs.update(old)
        for dim in f["minc-2.0/dimensions"].values():
            dim.attrs["length"] = n
    assert path.stat().st_size < 1_000_000
    started = time.monotonic()
    (err,) = open_input(path)
    assert isinstance(err, ItemError) and err.error == (
        f"MINC volume of {n}×{n}×{n} voxels is {2 * n ** 3:,} bytes, over the max_input_bytes cap of 209,715,200; "
        "not read")
    assert time.monotonic() - started < 5
    (small,) = open_input(NIB_DATA / "small.mnc")
    assert isinstance(small, ImageItem)
