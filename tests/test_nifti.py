"""NIfTI volumes: real files from nibabel's wheel and volumes built here, in every storage orientation."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

import builders as b
from medimg.sources import Blob, Context, ImageItem, ItemError, Limits, open_input
from medimg.sources import nifti as nifti_source
import struct

NIB_DATA = Path(nib.__file__).parent / "tests" / "data"


def items(data: bytes, name: str = "v.nii", **limits):
    return list(Context(Limits(**limits)).open_blob(Blob(name, data, name=name)))


def head_volume() -> np.ndarray:
    """A 40 (x: left→right) × 30 (y: posterior→anterior) × 20 (z: inferior→superior) RAS volume:
    a dim ellipse with a bright block at the front right of every slice and a gradient along z."""
    x, y, z = np.meshgrid(np.arange(40), np.arange(30), np.arange(20), indexing="ij")
    vol = (((x - 20) / 16) ** 2 + ((y - 15) / 12) ** 2 < 1) * (100 + 5 * z)
    vol[28:34, 20:26, :] = 1000  # patient's right (high x), anterior (high y)
    return vol.astype(np.int16)


def nifti(vol: np.ndarray, affine: np.ndarray | None = None, zooms=None, cls=nib.Nifti1Image) -> bytes:
    img = cls(vol, np.eye(4) if affine is None else affine)
    if zooms is not None:
        img.header.set_zooms(zooms)
    return img.to_bytes()


def test_real_volumes_from_nibabel():
    got = list(open_input(NIB_DATA / "anatomical.nii"))
    assert len(got) == 1 and isinstance(got[0], ImageItem)
    item = got[0]
    assert (item.locator, item.format, item.image.mode, item.image.size) == ("slice 13 of 25", "NIfTI", "L", (33, 41))
    assert item.metadata == {"dims": [33, 41, 25], "voxel_mm": [2.0, 2.0, 2.0], "orientation": "LAS",
                             "datatype": ">i2", "plane": "axial"}
    assert np.asarray(item.image).std() > 20  # a brain, not a blank
    (fmri,) = open_input(NIB_DATA / "example4d.nii.gz")
    assert fmri.locator == "slice 13 of 24, volume 2 of 2" and fmri.image.size == (128, 96)
    (two,) = open_input(NIB_DATA / "example_nifti2.nii.gz")
    assert two.format == "NIfTI" and two.image.size == (32, 20)
    (dconn,) = open_input(NIB_DATA / "row_major.dconn.nii")
    assert isinstance(dconn, ItemError) and dconn.skipped and "not an image volume" in dconn.error


def test_the_slice_looks_the_same_whatever_the_storage_order():
    vol = head_volume()
    ras = items(nifti(vol))[0]
    shown = np.asarray(ras.image)
    assert ras.locator == "slice 11 of 20" and shown.shape == (30, 40)
    # anterior at the top, the patient's right on the image's left: the block is top left
    top_left, top_right = shown[4:10, 6:12], shown[4:10, 28:34]
    assert top_left.min() == 255 and top_right.max() < 255
    flipped = np.eye(4)
    flipped[0, 0], flipped[0, 3] = -1, 39  # stored right→left (LAS), same anatomy
    las = items(nifti(vol[::-1], flipped))[0]
    permuted = np.zeros((4, 4))
    permuted[2, 0] = permuted[0, 1] = permuted[1, 2] = permuted[3, 3] = 1  # stored as z, x, y
    szy = items(nifti(np.transpose(vol, (2, 0, 1)), permuted))[0]
    assert las.metadata["orientation"] == "LAS" and szy.metadata["orientation"] == "SRA"
    assert np.array_equal(np.asarray(las.image), shown)
    assert np.array_equal(np.asarray(szy.image), shown)


def test_compressed_volume_is_the_same_and_bombs_stop_at_the_byte_cap():
    data = nifti(head_volume())
    plain, packed = items(data)[0], items(gzip.compress(data), name="v.nii.gz")[0]
    assert np.array_equal(np.asarray(plain.image), np.asarray(packed.image))
    bomb = gzip.compress(nifti(np.zeros((256, 256, 64), np.int16)))
    (err,) = items(bomb, name="bomb.nii.gz", max_input_bytes=1_000_000)
    assert isinstance(err, ItemError) and "max_input_bytes" in err.error and len(bomb) < 50_000


def test_gzip_of_several_members_is_read_whole():
    """bgzip and `cat a.gz b.gz` write several gzip members: all are inflated, under the same byte cap."""
    data = nifti(head_volume())
    (plain,) = items(data)
    half = len(data) // 2
    for parts in ([data[:half], data[half:]], [data[:100], data[100:5000], data[5000:], b""]):
        (got,) = items(b"".join(gzip.compress(p) for p in parts), name="v.nii.gz")
        assert isinstance(got, ImageItem), got.error
        assert np.array_equal(np.asarray(got.image), np.asarray(plain.image))
    (err,) = items(gzip.compress(data) + gzip.compress(bytes(2_000_000)), name="bomb.nii.gz",
                   max_input_bytes=1_000_000)
    assert isinstance(err, ItemError) and "max_input_bytes" in err.error
    with pytest.raises(ValueError, match="over 1,024 compressed streams"):  # millions of empty members would take minutes
        nifti_source.unpack(gzip.compress(data[:1000]) + gzip.compress(b"") * 5000, 10**8, "NIfTI volume")


def test_pixels_are_made_square_in_millimetres():
    (item,) = items(nifti(head_volume(), zooms=(1.0, 2.0, 3.0)))
    assert item.image.size == (40, 60)  # 30 rows of 2 mm become 60 of 1 mm
    assert item.metadata["voxel_mm"] == [1.0, 2.0, 3.0]


def test_every_slice_with_all_frames_under_the_image_cap(tmp_path):
    path = tmp_path / "v.nii"
    path.write_bytes(nifti(head_volume()))
    got = list(open_input(path, Limits(all_frames=True)))
    assert [i.locator for i in got] == [f"slice {k} of 20" for k in range(1, 21)]
    means = [np.asarray(i.image, np.float64).mean() for i in got]
    assert means != sorted(means, reverse=True) and len(set(means)) > 1
    capped = list(open_input(path, Limits(all_frames=True, max_images_per_input=5)))
    assert len(capped) == 6 and capped[-1].skipped and "max_images_per_input" in capped[-1].error


def test_bad_volumes_give_clear_errors():
    data = nifti(head_volume())
    (cut,) = items(data[:2000])  # header intact, voxels missing
    assert isinstance(cut, ItemError) and "NIfTI" in cut.error
    (big,) = items(data, max_pixels=1000)
    assert isinstance(big, ItemError) and "max_pixels" in big.error
    pair = bytearray(data[:352])
    pair[344:348] = b"ni1\0"  # an Analyze-style .hdr: the voxels live in a separate .img
    (hdr,) = items(bytes(pair), name="v.hdr")
    assert isinstance(hdr, ItemError) and ".img" in hdr.error
    (broken,) = items(b"\x1f\x8b" + gzip.compress(data)[2:200], name="v.nii.gz")
    assert isinstance(broken, ItemError)


def test_float_volumes_with_nan_and_rgb_volumes():
    vol = head_volume().astype(np.float32)
    vol[0, 0, :] = np.nan
    (item,) = items(nifti(vol))
    assert item.image.mode == "L" and np.asarray(item.image).max() == 255
    rgb = np.zeros((8, 6, 3), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    rgb["G"] = 200
    (colour,) = items(nifti(rgb))
    assert colour.image.mode == "RGB" and colour.image.getpixel((0, 0)) == (0, 200, 0)


def test_nifti_in_a_zip_through_the_pipeline(tiny_classifier):
    from medimg.pipeline import classify

    data = b.zip_bytes({"study/t1.nii.gz": gzip.compress(nifti(head_volume())), "x.png": b.image_bytes("PNG")})
    recs = list(classify([Blob("s.zip", data, name="s.zip")], classifier=tiny_classifier))
    assert [(r.input, r.locator, r.error) for r in recs] == [("s.zip:study/t1.nii.gz", "slice 11 of 20", None),
                                                          ("s.zip:x.png", "", None)]
    assert recs[0].width == 40 and recs[0].height == 30 and recs[0].label is not None


def test_header_repairs_are_not_printed(caplog):
    """nibabel logs the header fields it fixes (to its own stderr handler); a batch run's console must stay
    clean: the item's error says what was wrong."""
    data = bytearray(nifti(head_volume()))
    data[108:112] = np.float32(264).tobytes()  # vox_offset inside the header: nibabel logs it, then refuses
    (bad,) = items(bytes(data))
    assert isinstance(bad, ItemError) and "vox offset" in bad.error
    data = bytearray(nifti(head_volume()))
    data[254:256] = np.int16(9986).tobytes()  # an invalid sform code: nibabel logs it, then repairs it
    (fixed,) = items(bytes(data))
    assert isinstance(fixed, ImageItem)
    assert not [r for r in caplog.records if r.name.startswith("nibabel")]


def test_a_nan_offset_is_a_plain_error_and_a_nan_affine_keeps_the_stored_order():
    import struct

    data = bytearray(nifti(head_volume()))
    struct.pack_into("<f", data, 108, float("nan"))  # vox_offset
    (got,) = items(bytes(data))
    assert got.error == "not a readable NIfTI file: its voxel data offset (vox_offset) is nan, not a byte position"
    data = bytearray(nifti(head_volume()))
    struct.pack_into("<hh", data, 252, 0, 1)  # qform_code 0, sform_code 1: the sform rows say where voxels are
    struct.pack_into("<f", data, 280, float("nan"))  # srow_x[0]
    (got,) = items(bytes(data))
    assert isinstance(got, ImageItem) and got.metadata["orientation"] == "unknown (invalid affine)"


def test_vector_fields_and_matrices_are_named_for_what_they_hold():
    field = nib.Nifti1Image(np.zeros((8, 8, 4, 1, 3), np.float32), np.eye(4))
    field.header.set_intent("vector")
    (note,) = items(field.to_bytes())
    assert note.skipped and note.error.startswith("NIfTI holds a vector per voxel")
    matrix = nib.Nifti1Image(np.zeros((1, 1, 1, 1, 20, 30), np.float32), np.eye(4))
    matrix.header["intent_code"] = 3001
    (note,) = items(matrix.to_bytes())
    assert note.skipped and note.error.startswith("NIfTI holds a matrix or surface data")


def with_extensions(n: int, cls=nib.Nifti1Image) -> bytes:
    """A volume whose header carries n comment extensions (16 bytes each), the voxels moved past them."""
    img = cls(head_volume(), np.eye(4))
    for i in range(n):
        img.header.extensions.append(nib.nifti1.Nifti1Extension(6, f"note {i}".encode().ljust(8, b"\0")))
    return img.to_bytes()


@pytest.mark.parametrize("cls", [nib.Nifti1Image, nib.Nifti2Image])
def test_millions_of_header_extensions_are_refused_before_nibabel_reads_them(cls):
    """nibabel makes an object of every extension as it reads the header: 12 million 8-byte ones (a 374 KB
    .nii.gz) took 40 s and 2 GB. A few, as real files carry, are read as ever."""
    items = list(open_input(Blob("few.nii", with_extensions(3, cls))))
    assert [type(i) for i in items] == [ImageItem], items
    (err,) = open_input(Blob("many.nii.gz", gzip.compress(with_extensions(1001, cls))))
    assert isinstance(err, ItemError) and err.error == "not a readable NIfTI file: more than 1,000 header extensions"


def test_one_extreme_voxel_does_not_darken_the_slice():
    """Without cal_min/cal_max the grey levels run between percentiles, so a single hot voxel leaves the rest
    of the slice as bright as before."""
    vol = head_volume()
    vol[0, 0, 10] = 30000  # in the middle slice, far outside the ellipse
    (item,) = items(nifti(vol))
    px = np.asarray(item.image)
    # row 29 - y (anterior at the top), column 39 - x (the patient's right on the left)
    assert px[29 - 22, 39 - 30] == 255  # the bright block (x 28-33, y 20-25) is white
    assert px[29 - 15, 39 - 20] > 20  # the ellipse's middle is grey, not near black


def test_a_very_thick_axis_is_stretched_at_most_eight_times_and_the_other_shrinks():
    """Square pixels in millimetres, but one axis is never stretched more than MAX_STRETCH (8) times: the rest of
    the ratio shrinks the other axis, so the slice keeps its shape (it was 40 × 240 px for 40 × 360 mm)."""
    (item,) = items(nifti(head_volume(), zooms=(1.0, 12.0, 12.0)))  # y and z as coarse: no 2D series, axial
    assert item.image.size == (27, 30 * 8)  # 40 mm × 360 mm


def test_a_sagittal_series_of_thick_slices_is_shown_in_its_own_plane():
    """A sagittal 2D series (0.5 mm in plane, 5 mm slices) is shown sagittally, as its DICOM files are: its middle
    slice of 256 × 256 px (s43; it was shown axially, 20 columns stretched into a 160 × 205 px picture)."""
    affine = np.array([[0, 0, 5.0, 0], [0.5, 0, 0, 0], [0, 0.5, 0, 0], [0, 0, 0, 1]])  # axes: A, S, R
    vol = np.zeros((256, 256, 20), np.int16)
    vol[64:192, 64:192, :] = 100
    (item,) = items(nifti(vol, affine))
    assert item.locator == "slice 11 of 20" and item.image.size == (256, 256)
    assert item.metadata["plane"] == "sagittal"


def test_a_truncated_volume_is_said_to_be_so_before_any_slice_is_read():
    """A .nii cut short, or whose header claims more volumes than it holds, is refused as truncated with the
    sizes (was nibabel's 'Whoops, not enough data in file' against a slice's locator)."""
    whole = nifti(head_volume())
    for data, name in ((whole[:len(whole) // 2], "cut.nii"), (gzip.compress(whole[:1000]), "cut.nii.gz")):
        (err,) = items(data, name)
        assert isinstance(err, ItemError) and err.locator == "", err
        assert err.error == f"NIfTI volume is truncated: {len(data) if name == 'cut.nii' else 1000:,} bytes, its " \
                            f"header needs {352 + 40 * 30 * 20 * 2:,}"
    claims = bytearray(whole)
    struct.pack_into("<8h", claims, 40, 4, 40, 30, 20, 30000, 1, 1, 1)  # 30,000 volumes
    (err,) = items(bytes(claims))
    assert err.error == f"NIfTI volume is truncated: {len(whole):,} bytes, its header needs {352 + 48000 * 30000:,}"


def test_eight_bit_voxels_are_shown_as_stored_as_their_png_is():
    """uint8 voxels are grey levels already: a slice of them is the same picture as a PNG of that slice (a CT crop
    of levels 90-230 was stretched to 0-255). cal_min/cal_max still set the levels, and scaled or wider voxels
    are still stretched by their percentiles."""
    rng = np.random.default_rng(0)
    picture = rng.integers(90, 231, (30, 40)).astype(np.uint8)  # rows × columns as shown
    vol = np.repeat(picture[::-1, ::-1].T[:, :, None], 5, axis=2)  # RAS: x runs right to left, y bottom to top
    (item,) = items(nifti(vol))
    png = io.BytesIO()
    Image.fromarray(picture).save(png, "PNG")
    (twin,) = open_input(Blob("p.png", png.getvalue()))
    assert np.array_equal(np.asarray(item.image), np.asarray(twin.image)) and np.asarray(item.image).min() == 90
    img = nib.Nifti1Image(vol, np.eye(4))
    img.header["cal_min"], img.header["cal_max"] = 90, 230
    (cal,) = items(img.to_bytes())
    assert np.asarray(cal.image).min() == 0 and np.asarray(cal.image).max() == 255
    (wide,) = items(nifti(vol.astype(np.int16)))
    assert np.asarray(wide.image).min() == 0 and np.asarray(wide.image).max() == 255


def test_a_label_map_is_a_note_like_a_dicom_segmentation():
    """A NIfTI whose intent says label map (or NeuroNames atlas) is masks drawn on an image: a skipped note. The
    same voxels without that intent are read as ever."""
    labels = np.zeros((40, 30, 20), np.uint8)
    labels[10:20, 10:20] = 1
    labels[20:30, 5:15] = 2
    for intent, code in (("label", 1002), ("neuroname", 1003)):
        img = nib.Nifti1Image(labels, np.eye(4))
        img.header.set_intent(intent)
        (note,) = items(img.to_bytes())
        assert isinstance(note, ItemError) and note.skipped
        assert note.error == f"NIfTI holds a label map (intent code {code}, dims (40, 30, 20)), not an image volume"
    (plain,) = items(nifti(labels))
    assert isinstance(plain, ImageItem)


def test_a_nan_affine_shows_the_slice_in_its_stored_order_rows_flipped():
    """An unusable affine shows the stored array: x across (not mirrored), y up, as a LAS volume is shown."""
    vol = head_volume()
    data = bytearray(nifti(vol))
    struct.pack_into("<hh", data, 252, 0, 1)  # qform_code 0, sform_code 1
    struct.pack_into("<f", data, 280, float("nan"))  # srow_x[0]
    (got,) = items(bytes(data))
    assert isinstance(got, ImageItem) and got.metadata["orientation"] == "unknown (invalid affine)"
    (las,) = items(nifti(vol, affine=np.diag([-1.0, 1.0, 1.0, 1.0])))
    assert np.array_equal(np.asarray(got.image), np.asarray(las.image))
