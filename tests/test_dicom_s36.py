"""DICOM from every modality, as a hospital exports it (review s36): frame counts the pixel data does not bear out,
files cut off inside their pixel data, rescale slopes that would blank an image."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit

import builders as b
from medimg.sources import Blob, Context, ImageItem, ItemError, Limits

US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"


def items(data: bytes, name: str = "x.dcm", **limits):
    return list(Context(Limits(**limits)).open_blob(Blob(name, data, name=name)))


def frames(count: int, rows: int = 32, cols: int = 40) -> list[np.ndarray]:
    """8-bit frames that differ from one another: a bright disc whose brightness grows frame by frame."""
    y, x = np.mgrid[:rows, :cols]
    r = np.hypot(y - rows / 2, x - cols / 2) / (min(rows, cols) / 2)
    return [(np.clip(1 - r, 0, 1) * (60 + 40 * k)).astype(np.uint8) for k in range(count)]


def native(pixels: bytes, number_of_frames=None, rows: int = 32, cols: int = 40) -> pydicom.Dataset:
    ds = b.dicom_dataset(ExplicitVRLittleEndian, US_MULTIFRAME, "US")
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, cols, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if number_of_frames is not None:
        ds.NumberOfFrames = number_of_frames
    ds.PixelData = pixels
    return ds


def jpeg_cine(shown: list[np.ndarray]) -> pydicom.Dataset:
    """An ultrasound cine of baseline-JPEG frames, one fragment each."""
    def jpeg(arr: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=95)
        return buf.getvalue()

    ds = b.dicom_dataset(JPEGBaseline8Bit, US_MULTIFRAME, "US")
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = *shown[0].shape, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.NumberOfFrames = len(shown)
    ds.PixelData = encapsulate([jpeg(f) for f in shown])
    ds["PixelData"].VR = "OB"
    return ds


def images(got) -> list[ImageItem]:
    return [g for g in got if isinstance(g, ImageItem)]


def notes(got) -> list[ItemError]:
    return [g for g in got if isinstance(g, ItemError)]


@pytest.mark.parametrize("number_of_frames", [None, 0, 1])
def test_pixel_data_past_a_single_frame_is_padding_not_more_frames(number_of_frames):
    # pydicom returns the excess as more frames by default, which was drawn as a 40×3 "RGB" strip
    shown = frames(3)
    got = items(b.dicom_bytes(native(np.stack(shown).tobytes(), number_of_frames)))
    assert len(got) == 1 and isinstance(got[0], ImageItem), got
    assert got[0].locator == "" and got[0].image.mode == "L" and got[0].image.size == (40, 32)
    assert np.array_equal(np.asarray(got[0].image), np.asarray(Image.fromarray(shown[0]).point(
        lambda v: round(v / shown[0].max() * 255))))


def test_a_multiframe_file_whose_pixel_data_is_short_shows_its_whole_frames_and_says_so():
    # a transfer cut off: 10 frames declared, 6 whole ones held (and part of the 7th)
    shown = frames(10)
    data = b.dicom_bytes(native(np.stack(shown).tobytes()[:32 * 40 * 6 + 500], 10))
    got = items(data)
    note, = notes(got)
    assert not note.skipped and "holds 6 whole frames" in note.error and "declares 10 frames" in note.error
    image, = images(got)
    assert image.locator == "frame 4"  # the middle of the frames held
    every = images(items(data, all_frames=True))
    assert [i.locator for i in every] == [f"frame {k}" for k in range(1, 7)]
    for k, item in enumerate(every):  # each frame drawn over its own range
        assert np.array_equal(np.asarray(item.image) > 0, shown[k] > 0)
        assert np.asarray(item.image).max() == 255


def test_one_whole_frame_left_is_still_named_as_a_frame_of_the_file():
    shown = frames(3)
    got = items(b.dicom_bytes(native(np.stack(shown).tobytes()[:32 * 40 + 10], 3)))
    assert "holds 1 whole frame," in notes(got)[0].error
    image, = images(got)
    assert image.locator == "frame 1"


@pytest.mark.parametrize("declared", [7, 2**31 - 1, 10**12])
@pytest.mark.parametrize("kind", ["native", "jpeg"])
def test_a_frame_count_past_the_pixel_data_is_capped_at_the_frames_held(declared, kind):
    shown = frames(3)
    ds = native(np.stack(shown).tobytes(), declared) if kind == "native" else jpeg_cine(shown)
    ds.NumberOfFrames = declared
    got = items(b.dicom_bytes(ds))
    note, = notes(got)
    assert f"declares {declared:,} frames" in note.error and "holds 3 whole frames" in note.error
    image, = images(got)
    ds.NumberOfFrames = 3
    expected, = items(b.dicom_bytes(ds))
    assert image.locator == expected.locator == "frame 2"
    assert np.array_equal(np.asarray(image.image), np.asarray(expected.image))


@pytest.mark.parametrize("value", ["-4", "abc"])
def test_an_invalid_frame_count_reads_the_one_frame(value):
    shown = frames(1)
    data = b.dicom_bytes(native(shown[0].tobytes(), 1000))
    element = b"\x28\x00\x08\x00IS\x04\x00"  # (0028,0008) IS, 4 bytes
    assert data.count(element + b"1000") == 1
    data = data.replace(element + b"1000", element + value.ljust(4).encode())  # pydicom would not write it
    got = items(data)
    assert len(got) == 1 and isinstance(got[0], ImageItem), got
    assert np.array_equal(np.asarray(got[0].image) > 0, shown[0] > 0)


def test_a_cine_cut_off_inside_its_pixel_data_shows_its_whole_frames():
    # pydicom leaves out encapsulated pixel data whose end is missing: it was "an object without pixel data"
    shown = frames(3)
    whole = b.dicom_bytes(jpeg_cine(shown))
    cut = whole[:-200]  # inside the third frame's fragment
    got = items(cut, all_frames=True)
    note = notes(got)[0]
    assert not note.skipped and "cut off" in note.error and "holds 2 whole frames" in note.error
    assert [i.locator for i in images(got)] == ["frame 1", "frame 2"]
    full = images(items(whole, all_frames=True))
    for mine, theirs in zip(images(got), full):
        assert np.array_equal(np.asarray(mine.image), np.asarray(theirs.image))


def test_a_cine_cut_off_inside_its_first_frame_is_an_error_not_a_skip():
    shown = frames(3)
    whole = b.dicom_bytes(jpeg_cine(shown))
    start = whole.rfind(b"\xfe\xff\x00\xe0", 0, whole.find(b"\xff\xd8"))  # the first fragment's item
    got = items(whole[:start + 100])
    assert len(got) == 1 and isinstance(got[0], ItemError) and not got[0].skipped, got
    assert "cut off inside its pixel data" in got[0].error


def test_frames_that_all_fail_to_decode_are_given_up_after_three():
    ds = jpeg_cine(frames(6))
    ds.PixelData = encapsulate([b"\xff\xd8 not a JPEG frame " + bytes([k]) for k in range(6)])
    got = items(b.dicom_bytes(ds), all_frames=True)
    assert [g.locator for g in got] == ["frame 1", "frame 2", "frame 3", ""], got
    assert all(isinstance(g, ItemError) for g in got) and "gave up after 3 frames" in got[-1].error


def pet(slope: str, window: tuple[float, float] | None = None) -> bytes:
    ds = b.dicom_dataset(ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.128", "PT")
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 32, 40, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.PixelData = (frames(1)[0].astype(np.int16) * 120 - 40).tobytes()
    ds.RescaleSlope, ds.RescaleIntercept = slope, "0"
    if window:
        ds.WindowCenter, ds.WindowWidth = f"{window[0]:.6g}", f"{window[1]:.6g}"
    return b.dicom_bytes(ds)


@pytest.mark.parametrize("slope", ["0", "nan", "inf"])
def test_a_rescale_slope_of_zero_or_not_a_number_is_read_as_one(slope):
    # with it every pixel had the same value (or none), and the image was black
    image, = items(pet(slope))
    expected, = items(pet("1"))
    assert np.asarray(expected.image).std() > 50
    assert np.array_equal(np.asarray(image.image), np.asarray(expected.image))


def test_a_large_rescale_slope_is_applied_before_the_window():
    # PET in Bq/ml: a slope of thousands, the window in the same units; a slope left out would show it black
    image, = items(pet("1234.5678", (1234.5678 * 2500, 1234.5678 * 3000)))
    expected, = items(pet("1", (2500, 3000)))
    assert np.asarray(expected.image).std() > 50
    assert np.abs(np.asarray(image.image).astype(int) - np.asarray(expected.image)).max() <= 1


@pytest.mark.parametrize("name", ["DICOMDIR", "DICOMDIR-bigEnd", "DICOMDIR-implicit"])
def test_a_dicomdir_is_a_skip_that_says_it_is_the_index(name):
    # a CD or USB export's index: "DICOM object without pixel data (Media Storage Directory Storage)" said little
    data = b.dicom_file(f"dicomdirtests/{name}").read_bytes()
    got = items(data, name)
    # given as bytes without the files it lists, an error saying how to send them (session 44)
    assert len(got) == 1 and not got[0].skipped, got
    assert got[0].error.startswith("A DICOMDIR (the index of a CD or USB export) given without the 31 files")


def test_an_object_without_pixel_data_still_names_its_kind():
    ds = b.dicom_dataset(ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.88.59", "KO")
    got = items(b.dicom_bytes(ds))
    assert len(got) == 1 and got[0].skipped
    assert got[0].error == "DICOM object without pixel data (Key Object Selection Document Storage)"
