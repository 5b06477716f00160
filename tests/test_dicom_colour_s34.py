"""DICOM colour gaps left by review s33 (review s34_dcm): the Enhanced Palette Color LUT's single data path, the ICC
profile of DICOM video, YBR_FULL of more than 8 bits, the retired YBR_PARTIAL_422, YBR kinds refused outside their
transfer syntax, and 8-bit segmented palettes written in 16-bit words."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import generate_frames
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, MPEG4HP41, RLELossless

import builders as b
from medimg.sources import Blob, Context, ImageItem, ItemError, Limits
from test_dicom_colour_s33 import in_srgb, photo

VL_PHOTO = "1.2.840.10008.5.1.4.1.1.77.1.4"
US_VOLUME = "1.2.840.10008.5.1.4.1.1.6.2"  # Enhanced US Volume, which may carry an Enhanced Palette Color LUT


def items(data: bytes, **limits) -> list:
    return list(Context(Limits(**limits)).open_blob(Blob("x.dcm", data, name="x.dcm")))


def image(data: bytes) -> np.ndarray:
    found = items(data)
    assert isinstance(found[0], ImageItem), found
    return np.asarray(found[0].image).astype(float)


def colour_dicom(pi: str, samples: np.ndarray, bits: int, stored: int | None = None, syntax=ExplicitVRLittleEndian):
    ds = b.dicom_dataset(syntax, VL_PHOTO, "XC")
    ds.Rows, ds.Columns = 64, 96
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, pi, 0
    stored = stored or bits
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, stored, stored - 1, 0
    ds.PixelData = samples.tobytes()
    return ds


def full_ybr(rgb: np.ndarray, bits: int) -> np.ndarray:
    """PS3.3 C.7.6.3.1.2's YBR_FULL equations, the chroma offset 2**(bits-1) for `bits`-bit samples."""
    r, g, b_ = np.moveaxis(rgb.astype(float), -1, 0)
    off = 2 ** (bits - 1)
    ybr = np.stack([.299 * r + .587 * g + .114 * b_, -.1687 * r - .3313 * g + .5 * b_ + off,
                    .5 * r - .4187 * g - .0813 * b_ + off], -1)
    return np.clip(np.rint(ybr), 0, 2 ** bits - 1)


@pytest.mark.parametrize("stored", [16, 12])
def test_ybr_full_of_more_than_8_bits_is_converted(stored):
    """pydicom converts only 8-bit YBR_FULL ("uint16 not supported"); before, such a file was a decode error."""
    want = photo().astype(float)
    top = 2 ** stored - 1
    samples = full_ybr(want / 255 * top, stored).astype("<u2")
    assert np.abs(image(b.dicom_bytes(colour_dicom("YBR_FULL", samples, 16, stored))) - want).max() <= 1
    # the same samples RLE-compressed (pydicom's encoder takes RGB only: labelled YBR_FULL afterwards)
    ds = colour_dicom("RGB", samples, 16, stored)
    ds.compress(RLELossless, samples, encoding_plugin="pydicom")
    ds.PhotometricInterpretation = "YBR_FULL"
    assert np.abs(image(b.dicom_bytes(ds)) - want).max() <= 1


def test_native_ybr_partial_422_is_converted_from_limited_range():
    """The retired YBR_PARTIAL_422: Y1 Y2 Cb Cr per pixel pair, as YBR_FULL_422, in 16..235 / 16..240. pydicom neither
    reads that layout nor converts it: before, a decode error ("less than expected")."""
    rgb = photo().astype(float)
    r, g, b_ = np.moveaxis(rgb, -1, 0)
    y = .2568 * r + .5041 * g + .0979 * b_ + 16
    cb = -.1482 * r - .2910 * g + .4392 * b_ + 128
    cr = .4392 * r - .3678 * g - .0714 * b_ + 128
    pairs = np.stack([y[:, 0::2], y[:, 1::2], (cb[:, 0::2] + cb[:, 1::2]) / 2, (cr[:, 0::2] + cr[:, 1::2]) / 2], -1)
    pairs = np.clip(np.rint(pairs), 0, 255).astype(np.uint8)
    got = image(b.dicom_bytes(colour_dicom("YBR_PARTIAL_422", pairs, 8)))
    # expected: the inverse equations on the stored (subsampled) values, each chroma pair on both pixels
    yy = (pairs[..., :2].reshape(64, 96) - 16.0) * 255 / 219
    cbb, crr = ((np.repeat(pairs[..., k], 2, axis=1) - 128.0) * 255 / 224 for k in (2, 3))
    want = np.clip(np.rint(np.stack([yy + 1.402 * crr, yy - .344136 * cbb - .714136 * crr, yy + 1.772 * cbb], -1)),
                   0, 255)
    assert np.abs(got - want).max() <= 1
    assert np.abs(got - rgb).mean() < 3  # and close to the picture, but for the halved chroma


def test_a_jpeg_labelled_ybr_partial_422_is_converted_once():
    """A baseline JPEG labelled with the retired YBR_PARTIAL_422 holds the codestream's own (full-range) YCbCr:
    converted as libjpeg converts it. Before, pydicom left it unconverted (91 grey levels off on average)."""
    ds = pydicom.dcmread(b.dicom_file("SC_rgb_dcmtk_+eb+cy+np.dcm"))
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    want = np.asarray(Image.open(io.BytesIO(frame)).convert("RGB")).astype(float)
    ds.PhotometricInterpretation = "YBR_PARTIAL_422"
    assert np.abs(image(b.dicom_bytes(ds)) - want).mean() < 1


@pytest.mark.parametrize("pi", ["YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420"])
def test_ybr_kinds_outside_their_transfer_syntax_are_refused(pi):
    """YBR_ICT and YBR_RCT are defined for JPEG 2000 only, YBR_PARTIAL_420 for MPEG: natively pydicom returns the
    samples unconverted, which were shown as if RGB (wrong colours). Now a clear decode error."""
    data = b.dicom_bytes(colour_dicom(pi, full_ybr(photo(), 8).astype(np.uint8), 8))
    err, = items(data)
    assert isinstance(err, ItemError) and f"{pi} is defined only for" in err.error


def test_icc_profile_of_dicom_video_is_applied():
    """A video endoscope's ICC Profile (0028,2000) applies to its MPEG/H.264 frames as to its still images."""
    from test_video import video_dicom

    plain = video_dicom(MPEG4HP41, "libx264", frames=12)
    ds = pydicom.dcmread(io.BytesIO(plain))
    ds.ICCProfile = b.wide_gamut_icc()
    shown, stored = items(b.dicom_bytes(ds))[0], items(plain)[0]
    assert isinstance(shown, ImageItem) and isinstance(stored, ImageItem)
    base = np.asarray(stored.image)
    assert np.abs(np.asarray(shown.image).astype(float) - in_srgb(base, b.wide_gamut_icc())).max() <= 1
    assert np.abs(in_srgb(base, b.wide_gamut_icc()) - base).mean() > 3  # the profile does change these pixels


# ---------------------------------------------------------------- palettes

SEGMENTS = {"Red": [0, 1, 0, 1, 255, 255], "Green": [0, 1, 255, 1, 255, 0],
            "Blue": [0, 2, 0, 0, 1, 127, 254, 1, 127, 0]}  # discrete and linear segments, 256 entries each
SEGMENTED_LUT = np.stack([np.arange(256), 255 - np.arange(256), np.r_[0, np.arange(0, 255, 2), np.arange(252, -1, -2)]],
                         -1)


def segmented_palette_dicom(idx: np.ndarray, syntax, stored: str) -> bytes:
    ds = b.dicom_dataset(syntax, "1.2.840.10008.5.1.4.1.1.6.1", "US")
    ds.Rows, ds.Columns = idx.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "PALETTE COLOR"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = idx.tobytes()
    for colour, words in SEGMENTS.items():
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 8])
        data = np.asarray(words, stored).tobytes()
        keyword = f"Segmented{colour}PaletteColorLookupTableData"
        ds[keyword] = pydicom.DataElement(keyword, "OW", data + bytes(len(data) % 2))
    return b.dicom_bytes(ds)


@pytest.mark.parametrize("syntax,stored", [(ExplicitVRLittleEndian, "<u2"), (ExplicitVRBigEndian, ">u2")])
def test_an_8_bit_segmented_palette_in_16_bit_words_keeps_its_colours(syntax, stored):
    """PS3.3 C.7.9.2 with 8-bit entries (descriptor's third value 8) written one opcode, length or entry per 16-bit
    word: read as bytes (pydicom's reading) it does not expand to the descriptor's 256 entries, read as words it does
    exactly. Before, "the palette is invalid". Segments written as bytes keep pydicom's reading."""
    idx = (np.arange(96 * 64).reshape(64, 96) % 256).astype(np.uint8)
    assert np.array_equal(image(segmented_palette_dicom(idx, syntax, stored)), SEGMENTED_LUT[idx])
    assert np.array_equal(image(segmented_palette_dicom(idx, ExplicitVRLittleEndian, "u1")), SEGMENTED_LUT[idx])


def enhanced_us(grey: np.ndarray, bits: int, path: str, lut: np.ndarray | None, weight: float = 1.0,
                second: bool = False, **extra) -> pydicom.Dataset:
    """An Enhanced US Volume-like frame with an Enhanced Palette Color LUT (PS3.3 C.7.6.23): one data path."""
    ds = b.dicom_dataset(ExplicitVRLittleEndian, US_VOLUME, "US")
    ds.Rows, ds.Columns = grey.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = 8 if grey.dtype == np.uint8 else 16
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, 0
    ds.PixelData = grey.tobytes()
    assign = pydicom.Dataset()
    assign.DataType, assign.DataPathAssignment, assign.BitsMappedToColorLookupTable = "TISSUE_INTENSITY", path, 8
    ds.DataFrameAssignmentSequence = [assign] + ([assign] if second else [])
    blend = pydicom.Dataset()
    blend.BlendingLUT1TransferFunction, blend.BlendingWeightConstant = "CONSTANT", weight
    ds.BlendingLUT1Sequence = [blend]
    palette = pydicom.Dataset()
    palette.DataPathID, palette.RGBLUTTransferFunction, palette.AlphaLUTTransferFunction = "PRIMARY", "TABLE", "NONE"
    for i, colour in enumerate(("Red", "Green", "Blue")):
        setattr(palette, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        palette[f"{colour}PaletteColorLookupTableData"] = pydicom.DataElement(
            f"{colour}PaletteColorLookupTableData", "OW", lut[:, i].astype("<u2").tobytes())
    ds.EnhancedPaletteColorLookupTableSequence = [palette]
    for key, value in extra.items():
        setattr(ds, key, value)
    return ds


HOT = np.stack([np.minimum(np.arange(256) * 3, 255), np.clip(np.arange(256) * 3 - 255, 0, 255),
                np.clip(np.arange(256) * 3 - 510, 0, 255)], -1) * 257  # a hot-iron-like ramp in 16-bit entries


def test_an_enhanced_palette_with_one_data_path_colours_the_stored_values():
    """PRIMARY_SINGLE: stored values index the PRIMARY palette, scaled by the CONSTANT blending weight. Before,
    the image was grey."""
    grey = (np.arange(96 * 64).reshape(64, 96) % 256).astype(np.uint8)
    found = items(b.dicom_bytes(enhanced_us(grey, 8, "PRIMARY_SINGLE", HOT)))
    assert isinstance(found[0], ImageItem) and "note" not in found[0].metadata
    assert np.array_equal(np.asarray(found[0].image), HOT[grey] // 257)
    half = image(b.dicom_bytes(enhanced_us(grey, 8, "PRIMARY_SINGLE", HOT, weight=0.5)))
    assert np.abs(half - np.rint(HOT[grey] / 257 * 0.5)).max() <= 1


def test_an_enhanced_palette_on_p_values_follows_the_window():
    """PRIMARY_PVALUES: the grey pipeline's output (here a window on 12-bit values) indexes the palette."""
    grey = (np.arange(96 * 64).reshape(64, 96) % 4096).astype("<u2")
    ds = enhanced_us(grey, 12, "PRIMARY_PVALUES", HOT, WindowCenter=2048, WindowWidth=1024)
    shown = np.rint(np.clip((grey - 2047.5) / 1023 + 0.5, 0, 1) * 255).astype(int)  # C.11.2.1.2's window
    assert np.array_equal(image(b.dicom_bytes(ds)), HOT[shown] // 257)


def test_an_enhanced_palette_that_blends_two_paths_is_noted_and_grey():
    """Two data paths (tissue and flow) blended are not drawn: the image stays grey and says why."""
    grey = (np.arange(96 * 64).reshape(64, 96) % 256).astype(np.uint8)
    found = items(b.dicom_bytes(enhanced_us(grey, 8, "PRIMARY_SINGLE", HOT, second=True)))
    assert isinstance(found[0], ImageItem) and found[0].image.mode == "L"
    assert found[0].metadata["note"] == "Enhanced Palette Color LUT not applied (two data paths blended): shown in grey"
