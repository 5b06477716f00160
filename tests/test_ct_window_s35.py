"""A CT in Hounsfield units that carries no window of its own (most NIfTI CT, DICOM CT without WindowCenter/Width)
is shown in a wide CT window (W 1500, L -350), as the CTs the model learnt from are shown; MR, PET, 8-bit pictures
and DICOMs with their own window are shown as before."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pydicom
import pytest

import builders as b
from medimg.sources import Blob, Context, ImageItem, Limits
from medimg.sources import dicom as dicom_source


def items(data: bytes, name: str):
    return list(Context(Limits()).open_blob(Blob(name, data, name=name)))


def one_image(data: bytes, name: str) -> np.ndarray:
    (got,) = items(data, name)
    assert isinstance(got, ImageItem), got
    return np.asarray(got.image).astype(int)


def hu_slice(seed: int = 0) -> np.ndarray:
    """96 × 96 Hounsfield units: padding -3024 outside a round field of view, air, a body of fat and soft tissue
    with lungs, a bone and a metal clip, with scanner noise (so more than 256 levels)."""
    y, x = np.mgrid[:96, :96]
    hu = np.full((96, 96), -1000.0)
    body = ((x - 48) / 40) ** 2 + ((y - 48) / 30) ** 2 < 1
    hu[body] = -100
    hu[((x - 48) / 36) ** 2 + ((y - 48) / 26) ** 2 < 1] = 40
    hu[(((x - 33) / 10) ** 2 + ((y - 46) / 14) ** 2 < 1) | (((x - 63) / 10) ** 2 + ((y - 46) / 14) ** 2 < 1)] = -850
    hu[66:72, 44:52] = 1200
    hu[40:42, 47:49] = 3000
    hu += np.random.default_rng(seed).normal(0, 20, hu.shape)
    hu = np.maximum(np.rint(hu), -1024)
    hu[np.hypot(x - 47.5, y - 47.5) > 47] = -3024
    return hu.astype(np.int16)


def in_ct_window(hu: np.ndarray) -> np.ndarray:
    return np.rint(np.clip((hu.astype(float) + 1100) / 1500, 0, 1) * 255).astype(int)


def by_percentiles(values: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(values.astype(float), (0.5, 99.5))
    return np.rint(np.clip((values.astype(float) - lo) / (hi - lo), 0, 1) * 255).astype(int)


def nifti(plane: np.ndarray, dtype=None, inter: float | None = None) -> bytes:
    """One axial slice as a RAS volume of three, shown back as `plane` (anterior at the top, right on the left)."""
    vol = np.repeat(plane[::-1, ::-1].T[:, :, None], 3, axis=2)
    img = nib.Nifti1Image(vol.astype(dtype or vol.dtype), np.eye(4))
    if inter is not None:
        img.header.set_slope_inter(1.0, inter)
    return img.to_bytes()


def ct_dicom(hu: np.ndarray, modality: str = "CT", **tags) -> bytes:
    sop = "1.2.840.10008.5.1.4.1.1.2" if modality == "CT" else "1.2.840.10008.5.1.4.1.1.4"
    ds = b.dicom_dataset(pydicom.uid.ExplicitVRLittleEndian, sop, modality)
    ds.Rows, ds.Columns = hu.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    for key, value in tags.items():
        setattr(ds, key, value)
    ds.PixelData = (hu.astype(np.int32) + 1024).astype(np.int16).tobytes()
    return b.dicom_bytes(ds)


def test_a_ct_volume_without_a_window_is_shown_in_a_ct_window():
    """int16 HU, uint16 with scl_inter -1024 and float32 alike: padding and air black, lungs dark grey, soft
    tissue light grey, bone and metal white; the same pixels the window gives, not the slice's percentiles."""
    hu = hu_slice()
    unsigned = (hu.astype(np.int32) + 1024).clip(0)  # its padding is -1024, as air
    for data, want in ((nifti(hu), in_ct_window(hu)), (nifti(hu, np.float32), in_ct_window(hu)),
                       (nifti(unsigned, np.uint16, inter=-1024), in_ct_window(unsigned - 1024))):
        got = one_image(data, "ct.nii")
        assert np.abs(got - want).max() <= 1
        assert got[0, 0] <= 13 and got[48, 5] <= 20 and got[48, 33] < 60  # padding, air, lung
        assert 185 <= got[58, 48] <= 200 and got[68, 48] == 255 and got[41, 48] == 255  # tissue, bone, metal


def test_only_slices_in_hounsfield_units_get_the_ct_window():
    """MR (positive), PET (float SUV), an 8-bit picture stored as int16 with a -1024 offset (256 levels at most)
    and an MR phase map (spread from -4096 to 4095) keep the percentile stretch; uint8 voxels stay as stored."""
    rng = np.random.default_rng(1)
    hu = hu_slice()
    assert np.abs(one_image(nifti(hu), "ct.nii") - in_ct_window(hu)).max() <= 1
    mr = np.clip(hu.astype(float) + 1024, 0, None) * 0.8 + rng.normal(0, 5, hu.shape)
    pet = np.abs(rng.normal(0, 1, hu.shape)) * 4
    eight = (np.clip(hu.astype(float) + 1024, 0, 2047) // 8 * 8 - 1024)
    phase = np.rint(rng.uniform(-4096, 4095, hu.shape))
    for values, dtype in ((mr, np.int16), (pet, np.float32), (eight, np.int16), (phase, np.int16)):
        plane = values.astype(dtype)
        assert np.abs(one_image(nifti(plane), "v.nii") - by_percentiles(plane)).max() <= 1
    grey = (np.arange(96 * 96).reshape(96, 96) % 200 + 20).astype(np.uint8)
    assert np.array_equal(one_image(nifti(grey), "v.nii"), grey)


def test_a_ct_dicom_without_a_window_is_shown_in_a_ct_window():
    """Modality CT with no window or VOI LUT: the CT window, on both conversion paths. A window in the file still
    wins; an MR, or a CT whose values are not Hounsfield units (a scout), keeps the whole range."""
    hu = hu_slice()
    got = one_image(ct_dicom(hu), "ct.dcm")
    assert np.abs(got - in_ct_window(hu)).max() <= 1
    ds = dicom_source.read(ct_dicom(hu), 1 << 30)[0]
    arr = dicom_source.read_frame(ds, 0, 1, 1 << 30)
    assert np.array_equal(np.asarray(dicom_source.to_image(arr, ds, by_value=False)), got.astype(np.uint8))
    own = one_image(ct_dicom(hu, WindowCenter=40, WindowWidth=400), "ct.dcm")
    assert np.abs(own - np.rint(np.clip((hu - 39.5) / 399 + 0.5, 0, 1) * 255)).max() <= 1
    mr = one_image(ct_dicom(hu, modality="MR"), "mr.dcm")  # stored values of the MR: hu + 1024, whole range
    stored = hu.astype(float) + 1024
    assert np.abs(mr - np.rint((stored - stored.min()) / (stored.max() - stored.min()) * 255)).max() <= 1
    scout = np.rint(np.random.default_rng(2).uniform(0, 3000, hu.shape)).astype(np.int16)
    got = one_image(ct_dicom(scout), "scout.dcm")
    assert got.min() == 0 and got.max() == 255 and np.abs(got - in_ct_window(scout)).mean() > 20


@pytest.mark.parametrize("name", ["CT_small.dcm"])
def test_pydicoms_ct_without_a_window_is_shown_in_the_ct_window(name):
    """pydicom's CT_small (HU from -896 to 1167, no window) in the CT window, not over its whole range."""
    ds = pydicom.dcmread(b.dicom_file(name))
    assert "WindowCenter" not in ds
    hu = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    got = one_image(b.dicom_file(name).read_bytes(), name)
    assert np.abs(got - in_ct_window(hu)).max() <= 1
