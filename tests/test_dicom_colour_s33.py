"""DICOM colour shown as a viewer shows it (review s33_dcmcolour): the ICC Profile (0028,2000), a slide's optical
path profile, palettes whose 8-bit entries come in 16-bit words, Supplemental Palette Color LUTs, and no double
YCbCr conversion of JPEG frames."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageCms
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit

import builders as b
from medimg.sources import Blob, Context, ImageItem, Limits

VL_PHOTO = "1.2.840.10008.5.1.4.1.1.77.1.4"  # VL Photographic Image Storage (dermoscopy, clinical photos)


def image(data: bytes, **limits) -> np.ndarray:
    found = list(Context(Limits(**limits)).open_blob(Blob("x.dcm", data, name="x.dcm")))
    assert isinstance(found[0], ImageItem), found
    return np.asarray(found[0].image).astype(float)


def photo(w: int = 96, h: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([128 + 120 * np.sin(x / 9.0), 128 + 120 * np.cos(y / 7.0), (x * 255 // (w - 1) + y * 2) % 256], -1)
    rgb[h // 4:h // 2, w // 4:w // 2] = (200, 40, 40)  # a saturated patch, where gamuts differ most
    return rgb.astype(np.uint8)


def rgb_dicom(arr: np.ndarray, **extra) -> bytes:
    ds = b.dicom_dataset(ExplicitVRLittleEndian, VL_PHOTO, "XC")
    ds.Rows, ds.Columns = arr.shape[:2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = arr.tobytes()
    for key, value in extra.items():
        setattr(ds, key, value)
    return b.dicom_bytes(ds)


def in_srgb(arr: np.ndarray, icc: bytes) -> np.ndarray:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    transform = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(icc)), srgb, "RGB", "RGB",
                                        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    return np.asarray(transform.apply(Image.fromarray(arr, "RGB"))).astype(float)


def test_a_colour_image_with_an_icc_profile_is_shown_in_srgb():
    """PS3.3 C.11.15: the ICC Profile says what the stored RGB values mean; a dermoscopy or endoscopy camera's
    wide-gamut numbers drawn as sRGB are too dull (mean 27 grey levels off before the fix)."""
    stored, wide = photo(), b.wide_gamut_icc()
    assert np.abs(image(rgb_dicom(stored, ICCProfile=wide)) - in_srgb(stored, wide)).max() <= 1
    # an sRGB profile, or one that cannot be read, leaves the stored values as they are
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for icc in (srgb, b"not a profile" * 20, wide[:200]):
        assert np.array_equal(image(rgb_dicom(stored, ICCProfile=icc)), stored)


def test_a_palette_colour_image_with_an_icc_profile_is_shown_in_srgb():
    idx = (np.arange(96 * 64).reshape(64, 96) % 256).astype(np.uint8)
    lut = np.stack([np.arange(256), 255 - np.arange(256), np.arange(256) * 7 % 256], -1).astype(np.uint8)
    data = pydicom.dcmread(io.BytesIO(palette_dicom(idx, lut.astype(np.uint16), 8, "u1")))
    data.ICCProfile = b.wide_gamut_icc()
    assert np.abs(image(b.dicom_bytes(data)) - in_srgb(lut[idx], b.wide_gamut_icc())).max() <= 1


def _slide(icc: bytes | None) -> bytes:
    tile, frames = 64, []
    whole = photo(256, 256)
    for r in range(4):
        for c in range(4):
            buf = io.BytesIO()
            Image.fromarray(whole[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile]).save(buf, "JPEG", quality=95)
            frames.append(buf.getvalue())
    data = b.jpeg_slide_dicom(frames, 4, tile, spacing_mm=0.00025)
    if icc is None:
        return data
    ds = pydicom.dcmread(io.BytesIO(data))
    path = pydicom.Dataset()
    path.OpticalPathIdentifier, path.ICCProfile = "1", icc
    ds.OpticalPathSequence = [path]
    return b.dicom_bytes(ds)


@pytest.mark.parametrize("all_frames", [False, True])
def test_a_slides_optical_path_icc_profile_is_applied(all_frames):
    """A whole-slide image keeps its ICC profile in the Optical Path Sequence (PS3.3 C.8.12.5); scanners' profiles
    are far from sRGB. Before the fix the field came out as stored (mean 27 grey levels off)."""
    wide = b.wide_gamut_icc()
    plain = image(_slide(None), all_frames=all_frames).astype(np.uint8)
    assert np.abs(image(_slide(wide), all_frames=all_frames) - in_srgb(plain, wide)).max() <= 1


def palette_dicom(idx: np.ndarray, lut: np.ndarray, bits: int, stored: str) -> bytes:
    ds = b.dicom_dataset(ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.6.1", "US")
    ds.Rows, ds.Columns = idx.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "PALETTE COLOR"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = idx.tobytes()
    for i, colour in enumerate(("Red", "Green", "Blue")):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [len(lut), 0, bits])
        setattr(ds, f"{colour}PaletteColorLookupTableData", lut[:, i].astype(stored).tobytes())
        ds[f"{colour}PaletteColorLookupTableData"].VR = "OW"
    return b.dicom_bytes(ds)


def test_a_palette_of_8_bit_entries_each_in_a_16_bit_word_keeps_its_colours():
    """Some writers store 8-bit palette entries (descriptor's third value 8) one per 16-bit word (the note in
    PS3.3 C.7.6.3.1.5): the values are 0..255, not 0..65535. Before the fix the image was almost black."""
    idx = (np.arange(96 * 64).reshape(64, 96) % 256).astype(np.uint8)
    lut = np.stack([np.arange(256), 255 - np.arange(256), np.arange(256) * 7 % 256], -1).astype(np.uint16)
    assert np.array_equal(image(palette_dicom(idx, lut, 8, "<u2")), lut[idx])
    # 16-bit entries and 8-bit entries packed in bytes as before
    assert np.array_equal(image(palette_dicom(idx, lut * 257, 16, "<u2")), lut[idx])
    assert np.array_equal(image(palette_dicom(idx, lut, 8, "u1")), lut[idx])


@pytest.mark.parametrize("presentation", ["COLOR", "MIXED"])
def test_a_supplemental_palette_colours_the_stored_values_in_its_range(presentation):
    """PS3.3 C.7.6.19 and C.8.16.2.1.1.1: a MONOCHROME2 image with Pixel Presentation COLOR or MIXED and a
    palette (a perfusion or fusion map over CT/MR) shows stored values in the palette's range in its colours and
    the rest in grey. Before the fix the whole image was grey."""
    grey = (np.arange(96 * 64).reshape(64, 96) % 4096).astype(np.uint16)
    ds = b.dicom_dataset(ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.2.1", "CT")
    ds.Rows, ds.Columns = grey.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelPresentation = 1, "MONOCHROME2", presentation
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = grey.tobytes()
    ramp = np.rint(np.linspace(0, 65535, 1024)).astype("<u2")
    for colour, values in (("Red", ramp), ("Green", np.zeros(1024, "<u2")), ("Blue", ramp[::-1])):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [1024, 3072, 16])
        setattr(ds, f"{colour}PaletteColorLookupTableData", values.tobytes())
        ds[f"{colour}PaletteColorLookupTableData"].VR = "OW"
    got = image(b.dicom_bytes(ds))
    inside = grey >= 3072
    shown = np.rint(np.stack([ramp, np.zeros(1024), ramp[::-1]], -1) / 65535 * 255)[np.clip(grey - 3072, 0, 1023)]
    assert got.shape == (64, 96, 3)
    assert np.array_equal(got[inside], shown[inside])
    outside = got[~inside]
    assert np.array_equal(outside[:, 0], outside[:, 1]) and np.array_equal(outside[:, 0], outside[:, 2])
    assert np.abs(outside[:, 0] - np.rint(grey[~inside] / 4095 * 255)).max() <= 1  # the grey pipeline's range
    ds.GreenPaletteColorLookupTableData = bytes(100)  # a palette that cannot be read: the grey image
    assert np.array_equal(image(b.dicom_bytes(ds)), np.rint(grey / 4095 * 255))


def test_ybr_jpeg_frames_are_converted_to_rgb_once():
    """Every YCbCr baseline-JPEG test file of pydicom's, single frame, multi-frame and as slide tiles, against
    Pillow's decoding of the same codestream (libjpeg converts YCbCr itself; a second conversion would be far
    off)."""
    checked = 0
    for path in sorted(b.dicom_dir().glob("*.dcm")):
        ds = pydicom.dcmread(path, force=True)
        syntax = getattr(ds, "file_meta", pydicom.Dataset()).get("TransferSyntaxUID")
        if syntax != JPEGBaseline8Bit or "YBR" not in str(ds.get("PhotometricInterpretation", "")):
            continue
        n = int(ds.get("NumberOfFrames", 1) or 1)
        frame = list(generate_frames(ds.PixelData, number_of_frames=n))[n // 2]
        want = np.asarray(Image.open(io.BytesIO(frame)).convert("RGB")).astype(float)
        assert np.abs(image(path.read_bytes()) - want).mean() < 1, path.name
        checked += 1
    assert checked >= 4
    # the same frame three times (pydicom's multi-frame path), and as the tiles of a slide (Pillow's)
    buf = io.BytesIO()
    Image.fromarray(photo()).save(buf, "JPEG", quality=95, subsampling=1)
    want = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).astype(float)
    ds = b.dicom_dataset(JPEGBaseline8Bit, VL_PHOTO, "XC")
    ds.Rows, ds.Columns, ds.NumberOfFrames = 64, 96, 3
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "YBR_FULL_422", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([buf.getvalue()] * 3)
    ds["PixelData"].VR = "OB"
    assert np.abs(image(b.dicom_bytes(ds)) - want).mean() < 1
