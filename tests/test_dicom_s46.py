"""DICOM review, session 46: LINEAR_EXACT windows, Encapsulated Uncompressed, a byte order its syntax misnames."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

import builders as b
from medimg.sources import Blob, Context, ImageItem, Limits


def items(data: bytes, **limits):
    return list(Context(Limits(**limits)).open_blob(Blob("x.dcm", data, name="x.dcm")))


def adc_map(width: float, function: str = "LINEAR_EXACT") -> tuple[bytes, np.ndarray]:
    """A Parametric Map of float ADC values (0 .. 0.0047 mm²/s) whose shared frame VOI says centre 0.001, `width`."""
    ds = b.dicom_dataset(pydicom.uid.ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.30", "MR")
    ds.Rows, ds.Columns, ds.NumberOfFrames = 64, 80, 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.BitsAllocated = 1, "MONOCHROME2", 32
    yy, xx = np.mgrid[0:64, 0:80]
    adc = (xx * 0.00005 + yy * 0.00001).astype(np.float32)
    ds.FloatPixelData = adc.tobytes()
    voi = Dataset()
    voi.WindowCenter, voi.WindowWidth, voi.VOILUTFunction = 0.001, width, function
    shared = Dataset()
    shared.FrameVOILUTSequence = [voi]
    ds.SharedFunctionalGroupsSequence, ds.PerFrameFunctionalGroupsSequence = [shared], [Dataset()]
    return b.dicom_bytes(ds), adc.astype(np.float64)


def test_a_linear_exact_window_narrower_than_one_is_applied():
    """PS3.3 C.11.2.1.3.2: LINEAR_EXACT takes any width above 0, as a float map's window is (an ADC map's
    0.002 mm²/s); it was ignored, and the map drawn over its whole range instead."""
    data, adc = adc_map(0.002)
    got = items(data)
    assert len(got) == 1 and isinstance(got[0], ImageItem), got
    expected = np.rint(np.clip((adc - 0.001) / 0.002 + 0.5, 0, 1) * 255)
    assert np.abs(np.asarray(got[0].image, float) - expected).max() <= 1


def test_a_linear_exact_window_has_no_half_value_shift():
    """LINEAR_EXACT is (x − c) / w + 0.5, not LINEAR's (x − (c − 0.5)) / (w − 1) + 0.5: with a whole-number
    width the two differ, and the centre value is drawn mid-grey."""
    ds = b.dicom_dataset(pydicom.uid.ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.7", "OT")
    ds.Rows, ds.Columns = 64, 64
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    values = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    ds.PixelData = values.tobytes()
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = 2000, 10, "LINEAR_EXACT"
    got = np.asarray(items(b.dicom_bytes(ds))[0].image, float)
    expected = np.rint(np.clip((values - 2000.0) / 10 + 0.5, 0, 1) * 255)
    assert got.ravel()[2000] == expected.ravel()[2000] == 128
    assert np.abs(got - expected).max() <= 1


def test_a_zero_or_negative_linear_exact_width_is_no_window():
    """A width of 0 (or below) is not a window: the map is drawn over its whole range."""
    data, adc = adc_map(0.0)
    got = np.asarray(items(data)[0].image, float)
    expected = np.rint((adc - adc.min()) / (adc.max() - adc.min()) * 255)
    assert np.abs(got - expected).max() <= 1


def encapsulated_uncompressed(frames: np.ndarray, photometric: str = "MONOCHROME2") -> bytes:
    """Encapsulated Uncompressed Explicit VR Little Endian (PS3.5 A.4.11): each frame's native bytes a fragment."""
    from pydicom.encaps import encapsulate

    ds = b.dicom_dataset("1.2.840.10008.1.2.1.98", "1.2.840.10008.5.1.4.1.1.7", "OT")
    ds.NumberOfFrames, ds.Rows, ds.Columns = frames.shape[:3]
    ds.SamplesPerPixel = 3 if photometric == "RGB" else 1
    if photometric == "RGB":
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    bits = 8 * frames.dtype.itemsize
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    ds.PixelData = encapsulate([frame.tobytes() for frame in frames])
    ds["PixelData"].VR = "OB"
    return b.dicom_bytes(ds)


def test_encapsulated_uncompressed_frames_are_read():
    """pydicom 3.0 has no decoder for the 2022 Encapsulated Uncompressed syntax: every such file was an error
    ("… is not supported"), though each fragment is simply one frame's native pixels."""
    frames = np.stack([np.roll(np.arange(40 * 50, dtype=np.uint16).reshape(40, 50), 7 * i, axis=1) for i in range(3)])
    got = items(encapsulated_uncompressed(frames), all_frames=True)
    assert [g.locator for g in got] == ["frame 1", "frame 2", "frame 3"], got
    for frame, item in zip(frames, got):
        expected = np.rint((frame - frame.min()) / float(frame.max() - frame.min()) * 255)
        assert np.abs(np.asarray(item.image, float) - expected).max() <= 1
    rgb = np.random.default_rng(1).integers(0, 256, (1, 30, 20, 3), dtype=np.uint8)
    (item,) = items(encapsulated_uncompressed(rgb, "RGB"))
    assert item.image.mode == "RGB" and (np.asarray(item.image) == rgb[0]).all()
    assert item.metadata["TransferSyntax"] == "Encapsulated Uncompressed Explicit VR Little Endian"


def test_an_encapsulated_uncompressed_fragment_too_short_is_an_error():
    frames = np.zeros((1, 40, 50), np.uint16)
    data = encapsulated_uncompressed(frames)
    short = data.replace(frames.tobytes(), frames.tobytes()[:1000])
    short = short.replace((4000).to_bytes(4, "little"), (1000).to_bytes(4, "little"))  # the fragment's own length
    (got,) = items(short)
    assert not isinstance(got, ImageItem) and "could not decode" in got.error, got


def written_in(order: str, implicit: bool, says: str) -> tuple[bytes, np.ndarray]:
    """A CT file whose dataset is written in `order` byte order (implicit VR or not), its file meta saying `says`."""
    ds = b.dicom_dataset(says, "1.2.840.10008.5.1.4.1.1.2", "CT")
    ds.Rows, ds.Columns = 40, 50
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    values = (np.arange(40 * 50) % 4000).astype(np.uint16).reshape(40, 50)
    ds.PixelData = values.astype(">u2" if order == "big" else "<u2").tobytes()
    return raw_file(ds, order, implicit), values


def raw_file(ds, order: str, implicit: bool) -> bytes:
    """`ds` written in `order` byte order (implicit VR or not) whatever its file meta's transfer syntax says."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info

    out = DicomBytesIO()
    out.write(bytes(128) + b"DICM")
    out.is_little_endian, out.is_implicit_VR = True, False
    write_file_meta_info(out, ds.file_meta, enforce_standard=True)
    out.is_little_endian, out.is_implicit_VR = order == "little", implicit
    write_dataset(out, ds)
    return out.getvalue()


@pytest.mark.parametrize("order, implicit, says", [
    ("little", True, pydicom.uid.ExplicitVRBigEndian),
    ("little", False, pydicom.uid.ExplicitVRBigEndian),
    ("big", False, pydicom.uid.ExplicitVRLittleEndian),
])
def test_a_dataset_in_the_other_byte_order_than_its_syntax_says_is_read(order, implicit, says):
    """A writer that named the wrong byte order: every tag read byte-swapped, this was the error "DICOM file
    (CT Image Storage) is cut off inside the value of element (0800,1600)" (no file was cut off)."""
    data, values = written_in(order, implicit, says)
    got = items(data)
    assert len(got) == 1 and isinstance(got[0], ImageItem), got
    expected = np.rint((values - values.min()) / float(values.max() - values.min()) * 255)
    assert np.abs(np.asarray(got[0].image, float) - expected).max() <= 1
    assert f"but the dataset is {order} endian" in got[0].metadata["note"]


def test_a_dataset_in_the_byte_order_its_syntax_says_has_no_note():
    data, _ = written_in("big", False, pydicom.uid.ExplicitVRBigEndian)
    (got,) = items(data)
    assert isinstance(got, ImageItem) and "note" not in got.metadata, got


def test_an_encapsulated_uncompressed_file_cut_off_keeps_its_whole_frames():
    """Its fragments are counted as any encapsulated syntax's: cut off inside frame 2 of 3, frame 1 is read, with
    the error saying so (the syntax was taken for an unknown one, and frame 2 failed as 0 bytes long)."""
    frames = np.stack([np.full((40, 50), i + 5, np.uint16) for i in range(3)])
    data = encapsulated_uncompressed(frames)
    got = items(data[:-(8 + 4008 + 1000)])  # the delimiter, frame 3's item, and the end of frame 2's
    assert [type(g).__name__ for g in got] == ["ItemError", "ImageItem"], got
    assert "holds 1 whole frame, but the file is cut off inside its pixel data" in got[0].error
    assert got[1].locator == "frame 1"


def test_native_pixels_under_the_encapsulated_uncompressed_syntax_are_read_with_a_note():
    ds = b.dicom_dataset("1.2.840.10008.1.2.1.98", "1.2.840.10008.5.1.4.1.1.7", "OT")
    ds.Rows, ds.Columns = 40, 50
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = (np.arange(2000) % 256).astype(np.uint8).tobytes()
    (got,) = items(raw_file(ds, "little", False))
    assert isinstance(got, ImageItem) and "pixel data is uncompressed" in got.metadata["note"], got
