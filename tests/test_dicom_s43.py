"""DICOM (review s43): pixel data stored otherwise than its transfer syntax says (a gateway that rewrote the one and
not the other) is read as it is stored, or named as the reason it cannot be."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (ExplicitVRLittleEndian, JPEG2000Lossless, JPEGBaseline8Bit, JPEGLSLossless,
                         JPEGLosslessSV1, RLELossless)

import builders as b
from medimg.sources import Blob, Context, ImageItem, ItemError, Limits

CT = "1.2.840.10008.5.1.4.1.1.2"


def items(data: bytes, name: str = "x.dcm", **limits) -> list:
    return list(Context(Limits(**limits)).open_blob(Blob(name, data, name=name)))


def hounsfield(shift: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[0:64, 0:64]
    hu = np.where((yy - 32) ** 2 + (xx - 32 - shift) ** 2 < 24 ** 2, 40, -1000).astype(np.int16)
    hu[24:36, 24 + shift:36 + shift] = 900
    return hu


def ct(pixels: bytes, frames: int = 1) -> pydicom.Dataset:
    ds = b.dicom_dataset(ExplicitVRLittleEndian, CT, "CT")
    ds.Rows = ds.Columns = 64
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = pixels
    ds["PixelData"].VR = "OW"
    return ds


def labelled(ds: pydicom.Dataset, syntax: str) -> bytes:
    """The dataset written as it is stored, behind a file meta that names `syntax` (as a gateway leaves it)."""
    data = b.dicom_bytes(ds)
    meta_end = 144 + int.from_bytes(data[140:144], "little")
    meta = pydicom.dcmread(io.BytesIO(data)).file_meta
    meta.TransferSyntaxUID = syntax
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    out.write(bytes(128) + b"DICM")
    write_file_meta_info(out, meta, enforce_standard=False)
    return out.getvalue() + data[meta_end:]


def grey(item: ImageItem) -> np.ndarray:
    return np.asarray(item.image.convert("L"))


@pytest.mark.parametrize("syntax", [JPEGBaseline8Bit, JPEGLosslessSV1, JPEG2000Lossless, RLELossless])
def test_uncompressed_pixels_under_a_compressed_transfer_syntax_are_read_as_uncompressed(syntax):
    # was "could not decode DICOM pixel data (…): ValueError: Found unexpected tag (FC18,FC18) instead of
    # (FFFE,E000) when parsing the Basic Offset Table item": pydicom parses the pixels as items
    plain = items(b.dicom_bytes(ct(hounsfield().tobytes())))[0]
    (got,) = items(labelled(ct(hounsfield().tobytes()), syntax))
    assert isinstance(got, ImageItem), got
    assert np.array_equal(grey(got), grey(plain))
    assert got.metadata["note"].startswith("pixel data is uncompressed, though its transfer syntax says")


def test_an_uncompressed_cine_under_a_compressed_transfer_syntax_keeps_its_frames():
    frames = np.stack([hounsfield(shift) for shift in (-8, 0, 8)]).tobytes()
    got = items(labelled(ct(frames, frames=3), JPEGLosslessSV1), all_frames=True)
    assert [g.locator for g in got] == ["frame 1", "frame 2", "frame 3"]
    assert all(isinstance(g, ImageItem) for g in got)
    plain = items(b.dicom_bytes(ct(frames, frames=3)), all_frames=True)
    assert all(np.array_equal(grey(a), grey(p)) for a, p in zip(got, plain))


def test_one_bare_codestream_not_in_items_is_read_as_the_frame():
    imagecodecs = pytest.importorskip("imagecodecs", reason="imagecodecs (a dependency) encodes the codestreams")
    hu = hounsfield()
    plain = grey(items(b.dicom_bytes(ct(hu.tobytes())))[0])
    for syntax, stream in ((JPEGLSLossless, imagecodecs.jpegls_encode(hu.view(np.uint16))),
                           (JPEG2000Lossless, imagecodecs.jpeg2k_encode(hu, level=0, codecformat="J2K"))):
        ds = ct(stream)
        ds["PixelData"].VR = "OB"
        (got,) = items(labelled(ds, syntax))
        assert isinstance(got, ImageItem), (syntax, got)
        assert np.array_equal(grey(got), plain), syntax
        assert "codestream not in items" in got.metadata["note"]


def test_pixels_that_fit_neither_reading_say_so():
    ds = ct(hounsfield().tobytes()[:1000])  # neither a codestream nor one whole uncompressed frame
    (got,) = items(labelled(ds, JPEGBaseline8Bit))
    assert isinstance(got, ItemError) and not got.skipped
    assert got.error == ("DICOM pixel data is not encapsulated, as its transfer syntax (JPEG Baseline (Process 1)) "
                         "requires, and holds less than one uncompressed frame; not decoded")


def test_compressed_items_under_an_uncompressed_transfer_syntax_say_so():
    # was "… ValueError: The number of bytes of pixel data is less than expected (1278 vs 8192 bytes) - the dataset
    # may be corrupted, have an invalid group 0028 element value, or the transfer syntax may be incorrect"
    ds = ct(b"")
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.PixelData = encapsulate([pydicom.pixels.encoders.RLELosslessEncoder.encode(
        hounsfield(), rows=64, columns=64, samples_per_pixel=1, bits_allocated=16, bits_stored=16,
        photometric_interpretation="MONOCHROME2", pixel_representation=1, number_of_frames=1,
        byteorder="<")])
    ds["PixelData"].VR = "OB"
    assert isinstance(items(b.dicom_bytes(ds))[0], ImageItem)  # as labelled, it reads
    (got,) = items(labelled(ds, ExplicitVRLittleEndian))
    assert isinstance(got, ItemError) and not got.skipped
    assert got.error == ("DICOM pixel data is encapsulated (compressed), but its transfer syntax (Explicit VR Little "
                         "Endian) is for uncompressed data; not decoded")


def test_pixel_data_stored_as_its_syntax_says_has_no_note():
    for data in (b.dicom_bytes(ct(hounsfield().tobytes())), b.dicom_file("MR_small_RLE.dcm").read_bytes(),
                 b.dicom_file("JPEG2000.dcm").read_bytes()):
        (got,) = items(data)
        assert isinstance(got, ImageItem) and "note" not in got.metadata


# ------------------------------------------------------------------ Image Pixel elements left out (ACR-NEMA era files)


@pytest.mark.parametrize("left_out, note", [
    ("PhotometricInterpretation", "PhotometricInterpretation (MONOCHROME2 assumed)"),
    ("SamplesPerPixel", "SamplesPerPixel (1 assumed)"),
    ("BitsStored", "BitsStored (16 assumed)"),
])
def test_an_image_pixel_element_left_out_is_assumed_as_the_rest_implies(left_out, note):
    # was "could not decode DICOM pixel data (Explicit VR Little Endian): AttributeError: Missing required element:
    # (0028,0004) 'Photometric Interpretation'" (pydicom's decoders need every one)
    plain = grey(items(b.dicom_bytes(ct(hounsfield().tobytes())))[0])
    ds = ct(hounsfield().tobytes())
    delattr(ds, left_out)
    (got,) = items(b.dicom_bytes(ds))
    assert isinstance(got, ImageItem), got
    assert np.array_equal(grey(got), plain)
    assert got.metadata["note"] == f"the file leaves out {note}"


def test_a_missing_pixel_representation_is_not_guessed():
    # signed values read as unsigned would be another picture: still pydicom's error, which names the element
    ds = ct(hounsfield().tobytes())
    del ds.PixelRepresentation
    (got,) = items(b.dicom_bytes(ds))
    assert isinstance(got, ItemError) and "(0028,0103) 'Pixel Representation'" in got.error


def test_an_rgb_image_without_samples_per_pixel_is_not_guessed():
    ds = ct(np.zeros((64, 64, 3), np.uint8).tobytes())
    ds.PhotometricInterpretation, ds.BitsAllocated, ds.BitsStored, ds.HighBit = "RGB", 8, 8, 7
    ds.PixelRepresentation, ds.PlanarConfiguration = 0, 0
    del ds.SamplesPerPixel
    (got,) = items(b.dicom_bytes(ds))
    assert isinstance(got, ItemError) and "Samples per Pixel" in got.error
