"""Volumes (session 43 review): a 2D series of thick sagittal or coronal slices is shown in its own plane, as its
DICOM files show it (it was resliced axially into a few stretched columns); a gzipped 4-D NIfTI series too big to
inflate whole shows the volume it would show, reading only up to it (it was an error); NRRD gzip/bzip2 and
MetaImage zlib voxels are inflated into one buffer (zlib's joined pieces held them twice). Every file is written
here: DICOM with pydicom, NIfTI and MGH with nibabel, NRRD with pynrrd, MetaImage by hand."""

from __future__ import annotations

import bz2
import gzip
import tracemalloc
import zlib

import nibabel as nib
import nrrd
import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input

# a CT series in DICOM's own plane: rows × columns of each slice, the slices' order along the normal
PLANES = {  # ImageOrientationPatient, (rows, columns, slices), (row mm, column mm, slice mm)
    "sagittal": ([0, 1, 0, 0, 0, -1], (96, 128, 12), (0.8, 0.8, 4.0)),
    "coronal": ([1, 0, 0, 0, 0, -1], (80, 112, 10), (0.6, 0.6, 3.0)),
    "axial": ([1, 0, 0, 0, 1, 0], (96, 128, 9), (0.7, 0.7, 5.0)),
}


def ct_series(plane: str):
    """(slices × rows × columns HU voxels, the voxel → LPS mm matrix of the (column, row, slice) array, IOP, sizes):
    a body with a bright bone marker by the first rows and a mid-grey one by the first columns, so that any flip or
    transpose shows."""
    iop, (r, c, s), (dy, dx, dz) = PLANES[plane]
    vol = np.full((s, r, c), -1000, np.int16)
    vol[:, r // 8: 7 * r // 8, c // 8: 7 * c // 8] = 40
    vol[:, r // 8: r // 8 + 10, c // 2: c // 2 + 6] = 1500
    vol[:, r // 2: r // 2 + 6, c // 8: c // 8 + 12] = 300
    vol += np.random.default_rng(0).integers(-80, 80, vol.shape, dtype=np.int16)  # HU noise: a CT's many levels
    row_dir, col_dir = np.array(iop[:3], float), np.array(iop[3:], float)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2] = row_dir * dx, col_dir * dy, np.cross(row_dir, col_dir) * dz
    return vol, lps, iop, (dy, dx, dz)


def dicom_slice(tmp_path, plane: str, k: int):
    vol, lps, iop, (dy, dx, dz) = ct_series(plane)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.Modality, ds.InstanceNumber = "CT", k + 1
    ds.ImageOrientationPatient, ds.ImagePositionPatient = iop, list(lps[:3, 2] * k)
    ds.PixelSpacing, ds.SliceThickness = [dy, dx], dz
    ds.Rows, ds.Columns = vol.shape[1:]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.RescaleIntercept, ds.RescaleSlope = 0, 1
    ds.PixelData = vol[k].tobytes()
    path = tmp_path / f"{plane}_{k}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def as_volumes(tmp_path, plane: str) -> dict:
    """The same series as NIfTI, MGH, NRRD (LPS) and MetaImage files."""
    vol, lps, _, zooms = ct_series(plane)
    arr = np.ascontiguousarray(np.transpose(vol, (2, 1, 0)))  # column, row, slice
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    paths = {"nii": tmp_path / f"{plane}.nii.gz", "mgz": tmp_path / f"{plane}.mgz",
             "nrrd": tmp_path / f"{plane}.nrrd", "mha": tmp_path / f"{plane}.mha"}
    nib.save(nib.Nifti1Image(arr, ras), paths["nii"])
    nib.save(nib.MGHImage(arr, ras), paths["mgz"])
    nrrd.write(str(paths["nrrd"]), arr, {"space": "left-posterior-superior", "space directions": lps[:3, :3].T,
                                         "space origin": [0.0, 0.0, 0.0]})
    units = lps[:3, :3] / np.array([zooms[1], zooms[0], zooms[2]])  # unit direction columns
    matrix = " ".join(f"{v:g}" for v in units.T.ravel())
    r, c = vol.shape[1:]
    paths["mha"].write_bytes((f"ObjectType = Image\nNDims = 3\nTransformMatrix = {matrix}\nOffset = 0 0 0\n"
                              f"ElementSpacing = {zooms[1]} {zooms[0]} {zooms[2]}\nDimSize = {c} {r} {len(vol)}\n"
                              "ElementType = MET_SHORT\nElementDataFile = LOCAL\n").encode() + vol.tobytes())
    return paths


@pytest.mark.parametrize("plane", ["sagittal", "coronal", "axial"])
def test_a_series_of_thick_slices_is_shown_in_its_own_plane_as_its_dicom_files_are(tmp_path, plane):
    """A sagittal CT of 12 slices of 4 mm (0.8 mm in plane) as NIfTI, MGH, NRRD or MetaImage shows its middle
    sagittal slice, the very picture its DICOM file of that slice shows (anterior on the left, superior at the top).
    Before, the volume was resliced axially: 12 columns stretched to a 48 × 77 mm picture of 60 × 96 px."""
    vol = ct_series(plane)[0]
    k = len(vol) // 2
    (want,) = open_input(dicom_slice(tmp_path, plane, k))
    for kind, path in as_volumes(tmp_path, plane).items():
        (got,) = open_input(path)
        assert isinstance(got, ImageItem), (kind, got)
        assert got.locator == f"slice {k + 1} of {len(vol)}", (kind, got.locator)
        assert got.metadata["plane"] == plane, kind
        assert got.image.size == want.image.size == vol.shape[:0:-1], kind
        assert np.array_equal(np.asarray(got.image), np.asarray(want.image)), kind


def test_a_near_isotropic_volume_acquired_sagittally_is_still_shown_axially():
    """A 3D sagittal acquisition (1 × 1 × 1.2 mm) is a volume, not a 2D series: shown axially, as before."""
    affine = np.array([[0, 0, -1.2, 0], [-1.0, 0, 0, 0], [0, -1.0, 0, 0], [0, 0, 0, 1]])  # axes: P, I, L
    vol = np.zeros((64, 48, 40), np.int16)
    vol[8:56, 8:40, 4:36] = 100
    img = nib.Nifti1Image(vol, affine)
    (item,) = open_input(Blob("sag3d.nii", img.to_bytes(), name="sag3d.nii"))
    assert item.metadata["plane"] == "axial" and item.locator == "slice 25 of 48"


def series_bytes(volumes: int = 40, slope: float = 0.5):
    """A gzipped 4-D NIfTI of 32 × 32 × 10 int16 volumes, volume t brighter with t, scaled by scl_slope."""
    vol = np.zeros((32, 32, 10, volumes), np.int16)
    for t in range(volumes):
        vol[4:28, 6:30, :, t] = 100 + 10 * t
    vol[5, 3, :, :] = 2000
    img = nib.Nifti1Image(vol, np.diag([-2.0, 2.0, 3.0, 1.0]))
    img.header.set_slope_inter(slope, -3.0)
    return vol, gzip.compress(img.to_bytes())


SMALL = 300_000  # a max_input_bytes under the series' 819,552 bytes, over one volume's 20,480


def test_a_gzipped_series_too_big_to_inflate_whole_shows_the_volume_it_would_show():
    """A 4-D .nii.gz inflating past max_input_bytes (an fMRI or DWI series of a few hundred MB) shows its middle
    volume, inflating only up to it, the same picture as when the whole series fits. Before: `NIfTI volume
    inflates past the max_input_bytes cap`. A multi-member gzip (pigz) reads alike."""
    vol, data = series_bytes()
    (whole,) = open_input(Blob("f.nii.gz", data, name="f.nii.gz"))
    (part,) = open_input(Blob("f.nii.gz", data, name="f.nii.gz"), Limits(max_input_bytes=SMALL))
    assert isinstance(part, ImageItem), part
    assert part.locator == whole.locator == "slice 6 of 10, volume 21 of 40"
    assert part.metadata == whole.metadata and part.metadata["dims"] == [32, 32, 10, 40]
    assert np.array_equal(np.asarray(part.image), np.asarray(whole.image))
    raw = gzip.decompress(data)
    pigz = gzip.compress(raw[:100_000]) + gzip.compress(raw[100_000:])
    (multi,) = open_input(Blob("f.nii.gz", pigz, name="f.nii.gz"), Limits(max_input_bytes=SMALL))
    assert np.array_equal(np.asarray(multi.image), np.asarray(whole.image))
    every = list(open_input(Blob("f.nii.gz", data, name="f.nii.gz"), Limits(max_input_bytes=SMALL, all_frames=True)))
    assert [i.locator for i in every] == [f"slice {k} of 10, volume 21 of 40" for k in range(1, 11)]


def test_a_big_diffusion_series_shows_its_b0_read_alone(tmp_path):
    """With its .bval beside it, the b0 (volume 1 here) is the one read."""
    vol, data = series_bytes(volumes=12)
    (tmp_path / "dwi.nii.gz").write_bytes(data)
    (tmp_path / "dwi.bval").write_text(" ".join(["1000"] * 3 + ["0"] + ["1000"] * 8))
    (item,) = open_input(tmp_path / "dwi.nii.gz", Limits(max_input_bytes=100_000))
    assert isinstance(item, ImageItem) and item.locator == "slice 6 of 10, volume 4 of 12"
    assert item.metadata["b_value"] == 0.0


def test_a_big_series_that_cannot_be_read_in_part_says_why():
    """One volume over max_input_bytes, a volume past zip_max_bytes of inflated bytes (a gzip bomb's claim), and
    data cut short are each an error saying so, without inflating the rest."""
    _, data = series_bytes()
    blob = Blob("f.nii.gz", data, name="f.nii.gz")
    (err,) = open_input(blob, Limits(max_input_bytes=10_000))
    assert isinstance(err, ItemError) and "one volume is 20,480 bytes, over the max_input_bytes cap" in err.error
    (err,) = open_input(blob, Limits(max_input_bytes=SMALL, zip_max_bytes=200_000))
    assert isinstance(err, ItemError) and "volume 21 of 40 ends 430,432 bytes in, past the zip_max_bytes" in err.error
    (err,) = open_input(Blob("f.nii.gz", data[:len(data) // 3], name="f.nii.gz"), Limits(max_input_bytes=SMALL))
    assert isinstance(err, ItemError) and err.error.startswith("NIfTI volume is truncated: volume 21 of 40")
    vol = np.zeros((16, 16, 4, 2), np.uint8)  # a 3-D file, or a series that fits, is read whole as before
    small = gzip.compress(nib.Nifti1Image(vol[..., 0], np.eye(4)).to_bytes())
    (err,) = open_input(Blob("v.nii.gz", small, name="v.nii.gz"), Limits(max_input_bytes=500))
    assert isinstance(err, ItemError) and "inflates past the max_input_bytes cap" in err.error


def compressed(kind: str, vol: np.ndarray) -> tuple[bytes, str]:
    """`vol` (column, row, slice int16) as a gzip or bzip2 NRRD, or a zlib MetaImage: (bytes, name)."""
    raw, sizes = vol.tobytes(order="F"), " ".join(map(str, vol.shape))
    if kind.startswith("nrrd"):
        enc = kind.split("-")[1]
        packed = gzip.compress(raw, 1) if enc == "gzip" else bz2.compress(raw, 1)
        return (f"NRRD0004\ntype: int16\ndimension: 3\nsizes: {sizes}\nendian: little\nencoding: {enc}\n\n".encode()
                + packed), "v.nrrd"
    return (f"ObjectType = Image\nNDims = 3\nDimSize = {sizes}\nElementType = MET_SHORT\nCompressedData = True\n"
            "ElementDataFile = LOCAL\n".encode() + zlib.compress(raw, 1)), "v.mha"


@pytest.mark.parametrize("kind", ["nrrd-gzip", "nrrd-bzip2", "mha-zlib"])
def test_compressed_nrrd_and_metaimage_voxels_are_held_once(kind):
    """The voxels of a 12 MB volume inflate into one buffer: the peak of Python's allocations (the compressed bytes
    aside) stays under 1.5 × the volume (1.3 measured). zlib's and bz2's own `decompress` join their pieces at the
    end: 2.0 × for MetaImage, 2.6 × for NRRD bzip2 before, 2.75 × for NRRD gzip (which copied the compressed
    bytes too)."""
    vol = np.random.default_rng(0).integers(0, 200, (256, 256, 96), dtype=np.int16)
    data, name = compressed(kind, vol)
    list(open_input(Blob(name, compressed(kind, vol[:8, :8, :2])[0], name=name)))  # imports done before measuring
    tracemalloc.start()
    try:
        (item,) = open_input(Blob(name, data, name=name))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(item, ImageItem) and item.locator == "slice 49 of 96", item
    assert peak < 1.5 * vol.nbytes, f"peak {peak / vol.nbytes:.2f} × the volume"


def test_volume_formats_not_read_are_errors_naming_them(tmp_path):
    """Philips PAR/REC, AFNI BRIK/HEAD and ECAT 7 (nibabel's own test files' first bytes) were each a skipped
    "not an image" note in a folder, so a research group's scans vanished from the results. Each header is now an
    error naming its format and a converter to NIfTI; the data files stay notes, and other files of those names
    (a Verilog .v, a text .head) too."""
    files = {"scan.PAR": b"# === DATA DESCRIPTION FILE ======================\n# CLINICAL TRYOUT\n",
             "scan.REC": bytes(range(256)) * 4,
             "epi+orig.HEAD": b"\ntype = string-attribute\nname = DATASET_NAME\ncount = 5\n'epi~\n",
             "epi+orig.BRIK": bytes(1024),
             "pet.v": b"MATRIX72v" + bytes(503),
             "adder.v": b"module adder(input a, input b, output s);\nendmodule\n",
             "notes.head": b"type = meeting\n"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    got = {item.origin.rsplit("/", 1)[-1]: item for item in open_input(tmp_path)}
    for name, fmt in (("scan.PAR", "Philips PAR/REC"), ("epi+orig.HEAD", "AFNI BRIK/HEAD"), ("pet.v", "ECAT 7 PET")):
        assert isinstance(got[name], ItemError) and not got[name].skipped, got[name]
        assert got[name].error.startswith(f"{fmt} file: a volume format medimg does not read; convert it to NIfTI")
    for name in ("scan.REC", "epi+orig.BRIK", "adder.v", "notes.head"):
        assert got[name].skipped and got[name].error == "skipped: not an image or a supported container", name
