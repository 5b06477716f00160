"""DICOM (review s40): a file cut off before its pixel data is an error, not an "object without pixel data" note;
native pixel data cut short says the file is cut off; a greyscale JPEG frame pydicom's decoders refuse is read by
libjpeg-turbo; every file of pydicom's test folder gives a record."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian

import builders as b
from medimg.sources import Blob, Context, ImageItem, ItemError, Limits, open_input


def items(data: bytes, name: str = "x.dcm", **limits) -> list:
    return list(Context(Limits(**limits)).open_blob(Blob(name, data, name=name)))


def errors(got: list) -> list[ItemError]:
    return [g for g in got if isinstance(g, ItemError) and not g.skipped]


def element_ends(data: bytes) -> set[int]:
    """Where each top-level element (file meta included) of a whole file ends: the cuts a reader cannot tell from a
    complete file without pixel data."""
    ds = pydicom.dcmread(io.BytesIO(data))
    raw = [e for part in (ds.file_meta, ds) for e in part.elements() if hasattr(e, "value_tell")]
    return {e.value_tell + e.length for e in raw} | {132}


# ------------------------------------------------------------------ cut off before the pixel data


@pytest.mark.parametrize("name", ["MR_small.dcm", "rtplan.dcm", "test-SR.dcm"])
def test_a_file_cut_off_before_its_pixel_data_is_an_error_not_a_note(name):
    # a header cut short was "DICOM object without pixel data (MR Image Storage)", skipped: a CT copied in part from
    # a PACS export vanished from the results unless --show-skipped was given
    data = b.dicom_file(name).read_bytes()
    pixels = data.find(b"\xe0\x7f\x10\x00")
    end = pixels if pixels > 0 else len(data) - 1
    ends = element_ends(data)
    cuts = [cut for cut in range(140, end, 7) if cut not in ends]
    assert len(cuts) > 20
    for cut in cuts:
        got = items(data[:cut])
        assert len(got) == 1 and isinstance(got[0], ItemError), (cut, got)
        assert not got[0].skipped and "cut off" in got[0].error, (cut, got[0].error)


def test_the_cut_off_error_names_the_element_and_not_a_sop_class_cut_short():
    data = b.dicom_file("rtplan_truncated.dcm").read_bytes()  # pydicom's own truncated plan
    (got,) = items(data)
    assert not got.skipped
    assert got.error == "DICOM file (RT Plan Storage) is cut off inside the value of element (300A,00B0)"
    whole = b.dicom_file("MR_small.dcm").read_bytes()
    sop = whole.find(b"\x08\x00\x16\x00UI")  # (0008,0016): its value cut to "1.2.840.1" would name no class
    (cut,) = items(whole[:sop + 8 + 9])
    assert cut.error == "DICOM file is cut off inside the value of element (0008,0016)"
    meta_end = 144 + int.from_bytes(whole[140:144], "little")  # past (0002,0000) and the group length it gives
    (meta_only,) = items(whole[:meta_end])  # the file meta, then nothing
    assert not meta_only.skipped and meta_only.error == "DICOM file (MR Image Storage) is cut off before its dataset"


def test_a_file_cut_off_inside_a_sequence_or_a_header_says_so():
    # pydicom raises there: OSError "No tag to read…" and struct.error read "not a readable DICOM file (error)"
    ecg = b.dicom_file("waveform_ecg.dcm").read_bytes()
    (got,) = items(ecg[:100_000])  # inside the waveform sequence
    assert not got.skipped and got.error == "DICOM file is cut off inside an element; not read"
    mr = b.dicom_file("MR_small.dcm").read_bytes()
    pixels = mr.find(b"\xe0\x7f\x10\x00")
    (got,) = items(mr[:pixels + 10])  # the pixel data's 12-byte header cut after 10
    assert not got.skipped and got.error == "DICOM file is cut off inside an element; not read"


def test_a_whole_object_without_pixel_data_is_still_a_note():
    for name in ("rtplan.dcm", "test-SR.dcm", "waveform_ecg.dcm", "dicomdirtests/DICOMDIR"):
        (got,) = items(b.dicom_file(name).read_bytes())
        # a DICOMDIR given as bytes without its files is an error saying so (session 44), still not "cut off"
        assert (got.skipped or got.error.startswith("A DICOMDIR")) and "cut off" not in got.error, (name, got.error)
    data = b.dicom_file("MR_small.dcm").read_bytes()
    boundary = max(end for end in element_ends(data) if end < data.find(b"\xe0\x7f\x10\x00"))
    (got,) = items(data[:boundary])  # cut between two elements: nothing tells it from a header-only object
    assert got.skipped and got.error == "DICOM object without pixel data (MR Image Storage)"


# ------------------------------------------------------------------ native pixel data cut short


def test_native_pixel_data_cut_short_says_the_file_is_cut_off():
    # was pydicom's "The number of bytes of pixel data is less than expected (8130 vs 8192 bytes) - the dataset may
    # be corrupted, have an invalid group 0028 element value, or the transfer syntax may be incorrect"
    (got,) = items(b.dicom_file("MR_truncated.dcm").read_bytes())
    assert isinstance(got, ItemError) and not got.skipped
    assert got.error == "DICOM file is cut off inside its pixel data, before the end of its first frame"
    whole = b.dicom_file("MR_small.dcm").read_bytes()
    start = whole.find(b"\xe0\x7f\x10\x00") + 12
    (got,) = items(whole[:start])  # the element's header whole, none of its 8,192 bytes: was "of length 0"
    assert got.error == "DICOM file is cut off inside its pixel data, before the end of its first frame"


def test_a_native_cine_cut_off_says_so_and_shows_its_whole_frames():
    ds = b.dicom_dataset(ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.12.1", "XA")
    ds.Rows, ds.Columns, ds.NumberOfFrames = 32, 40, 9
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    cells = np.random.default_rng(3).integers(0, 4096, (9, 32, 40), dtype=np.uint16)
    ds.PixelData = cells.tobytes()
    data = b.dicom_bytes(ds)
    cut = data[:len(data) - 4 * 32 * 40 * 2 - 100]  # 4 whole frames and part of a fifth lost
    got = items(cut, all_frames=True)
    (error,) = errors(got)
    assert error.error == ("DICOM pixel data holds 4 whole frames, but the file is cut off inside its pixel data; "
                           "only those are read")  # it said "but the file declares 9 frames"
    assert [g.locator for g in got if isinstance(g, ImageItem)] == ["frame 1", "frame 2", "frame 3", "frame 4"]
    whole = [g for g in items(data, all_frames=True) if isinstance(g, ImageItem)]
    for mine, theirs in zip([g for g in got if isinstance(g, ImageItem)], whole):
        assert np.array_equal(np.asarray(mine.image), np.asarray(theirs.image))


def test_a_cut_off_file_in_a_zip_is_an_error_row_for_its_member():
    data = b.dicom_file("CT_small.dcm").read_bytes()
    archive = b.zip_bytes([("study/whole.dcm", data), ("study/cut.dcm", data[:700])])
    got = list(Context(Limits()).open_blob(Blob("export.zip", archive, name="export.zip")))
    assert [type(g).__name__ for g in got] == ["ImageItem", "ItemError"], got
    assert got[1].origin == "export.zip:study/cut.dcm" and not got[1].skipped and "cut off" in got[1].error


# ------------------------------------------------------------------ a JPEG frame pydicom's decoders refuse


def test_a_12_bit_lossy_jpeg_that_pylibjpeg_refuses_is_read_as_libjpeg_reads_it():
    # NEMA's NM1_JPLY: its scan header gives a progressive scan's spectral range, at which pylibjpeg stops (error
    # -1038) and libjpeg-based viewers only warn; it was "could not decode DICOM pixel data"
    (got,) = items(b.dicom_file("JPEG-lossy.dcm").read_bytes())
    assert isinstance(got, ImageItem), got
    (fixed,) = items(b.dicom_file("JPGExtended.dcm").read_bytes())  # pydicom's fixed copy of the same file
    assert got.image.size == fixed.image.size == (256, 1024)
    diff = np.abs(np.asarray(got.image).astype(int) - np.asarray(fixed.image).astype(int))
    assert diff.max() <= 2 and np.asarray(got.image).std() > 10


def test_a_frame_that_fails_with_its_scan_header_set_right_too_is_still_an_error():
    from pydicom.encaps import encapsulate, generate_frames

    ds = pydicom.dcmread(b.dicom_file("JPEG-lossy.dcm"))
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    assert frame.count(b"\xff\xc4") == 1
    ds.PixelData = encapsulate([frame.replace(b"\xff\xc4", b"\xff\xe5")])  # its Huffman tables made an APP5
    got = items(b.dicom_bytes(ds))
    assert len(got) == 1 and isinstance(got[0], ItemError) and "could not decode" in got[0].error, got


# ------------------------------------------------------------------ pydicom's whole test folder


NOT_IMAGES = {  # files of pydicom's test folder that hold no image of a patient, and why
    "ExplVR_BigEndNoMeta.dcm": "without pixel data", "ExplVR_LitEndNoMeta.dcm": "without pixel data",
    "UN_sequence.dcm": "without pixel data", "empty_charset_LEI.dcm": "without pixel data",
    "priv_SQ.dcm": "without pixel data", "no_meta_group_length.dcm": "without pixel data",
    "reportsi.dcm": "without pixel data", "reportsi_with_empty_number_tags.dcm": "without pixel data",
    "rtplan.dcm": "without pixel data", "rtstruct.dcm": "without pixel data", "test-SR.dcm": "without pixel data",
    "waveform_ecg.dcm": "without pixel data", "badVR.dcm": "dose grid", "rtdose.dcm": "dose grid",
    "rtdose_1frame.dcm": "dose grid", "rtdose_expb.dcm": "dose grid", "rtdose_expb_1frame.dcm": "dose grid",
    "rtdose_rle.dcm": "dose grid", "rtdose_rle_1frame.dcm": "dose grid",
    "liver_1frame.dcm": "segmentation", "liver_expb_1frame.dcm": "segmentation",
}
BROKEN = {  # damaged on purpose: an error each, saying why
    "MR_truncated.dcm": "cut off inside its pixel data", "rtplan_truncated.dcm": "cut off inside the value",
    "JPEG2000-embedded-sequence-delimiter.dcm": "JPEG 2000 frame says it is",
    "meta_missing_tsyntax.dcm": "without valid Rows/Columns", "nested_priv_SQ.dcm": "without valid Rows/Columns",
    "no_meta.dcm": "not readable as one",  # a stray byte before its dataset: pydicom reads tag (0820,0500)
}


def test_every_dicom_file_of_pydicoms_test_folder_gives_an_image_or_says_why_not():
    folder = b.dicom_dir()
    names = sorted(p.name for p in folder.glob("*.dcm"))
    if "MR_small.dcm" not in names:
        pytest.skip("pydicom's test files are not installed")
    for name in names:
        got = list(open_input(str(folder / name)))
        assert got, name
        images = [g for g in got if isinstance(g, ImageItem)]
        if name in NOT_IMAGES:
            assert not images and len(got) == 1 and got[0].skipped and NOT_IMAGES[name] in got[0].error, (name, got)
        elif name in BROKEN:
            assert not images and len(got) == 1 and not got[0].skipped and BROKEN[name] in got[0].error, (name, got)
        else:
            assert images and not errors(got), (name, got)
