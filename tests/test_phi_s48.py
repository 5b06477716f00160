"""s48 phi: DICOM inputs and the patient data in them (encapsulated PDFs cut short, a damaged DICOM video's error)."""

from __future__ import annotations

import io

import pytest

from medimg.sources import Blob
from medimg.sources.base import Context, ImageItem, ItemError, Limits

pydicom = pytest.importorskip("pydicom")
fitz = pytest.importorskip("fitz")

from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.encaps import encapsulate  # noqa: E402
from pydicom.uid import EncapsulatedPDFStorage, ExplicitVRLittleEndian, MPEG2MPML, generate_uid  # noqa: E402

NAME = "ZQXNAME^JOHN"


def _dataset(sop: str, syntax: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop, generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta, ds.preamble = meta, bytes(128)
    ds.SOPClassUID, ds.SOPInstanceUID = sop, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = NAME, "ZQXID123", "18770913"
    return ds


def _pdf_dicom() -> bytes:
    """An Encapsulated PDF Storage file: a scanned report of one page with one picture, the document last."""
    doc = fitz.open()
    page = doc.new_page()
    pix = fitz.Pixmap(fitz.csRGB, fitz.IRect(0, 0, 200, 200), False)
    pix.set_rect(pix.irect, (200, 30, 30))
    page.insert_image(fitz.Rect(100, 100, 300, 300), pixmap=pix)
    doc.set_metadata({"author": NAME})
    pdf = doc.tobytes()
    ds = _dataset(EncapsulatedPDFStorage, ExplicitVRLittleEndian)
    ds.Modality, ds.MIMETypeOfEncapsulatedDocument = "DOC", "application/pdf"
    ds.EncapsulatedDocument = pdf + b"\0" * (len(pdf) % 2)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _items(data: bytes) -> list:
    return list(Context(Limits()).open_blob(Blob("report.dcm", data, name="report.dcm")))


def test_a_whole_encapsulated_pdf_gives_its_picture_without_errors():
    items = _items(_pdf_dicom())
    assert [type(i) for i in items] == [ImageItem]


@pytest.mark.parametrize("share", [0.3, 0.7, 0.97])
def test_an_encapsulated_pdf_cut_off_says_the_dicom_file_is_cut(share):
    """Cut inside its document, the file was "damaged PDF, repaired by MuPDF" (a note) and an image error about a
    colour space: nothing said that the DICOM file itself ends early."""
    data = _pdf_dicom()
    items = _items(data[:int(len(data) * share)])
    cut = [i for i in items if isinstance(i, ItemError) and not i.skipped and "is cut off" in i.error]
    assert cut and cut[0].error.startswith("DICOM file (Encapsulated PDF Storage) is cut off inside its "
                                           "encapsulated document"), [i.error for i in items]
    assert not any(NAME in str(i) or "ZQXID" in str(i) for i in items)


def test_an_encapsulated_pdf_cut_before_its_document_is_not_called_a_document_that_is_no_image():
    data = _pdf_dicom()
    at = data.find(b"%PDF")
    items = _items(data[:at - 20])  # inside the element before the document, or the document's header
    assert any(isinstance(i, ItemError) and not i.skipped and "is cut off" in i.error for i in items), items
    assert not any("not an image" in i.error for i in items if isinstance(i, ItemError))


def test_a_dicom_video_ffmpeg_cannot_read_is_not_called_a_permission_problem():
    """FFmpeg's generic failure (-1) is EPERM: "Operation not permitted" sent users to check file permissions."""
    ds = _dataset("1.2.840.10008.5.1.4.1.1.77.1.1.1", MPEG2MPML)  # Video Endoscopic Image Storage
    ds.Modality, ds.Rows, ds.Columns, ds.SamplesPerPixel = "ES", 64, 64, 1
    ds.PhotometricInterpretation, ds.BitsAllocated, ds.BitsStored = "MONOCHROME2", 8, 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = encapsulate([f"{NAME} and no MPEG-2 stream".encode() * 10])
    ds["PixelData"].VR = "OB"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    items = _items(out.getvalue())
    errors = [i.error for i in items if isinstance(i, ItemError)]
    assert errors and not any("permitted" in e for e in errors), errors
    assert any("damaged" in e for e in errors), errors
    assert not any(NAME in e for e in errors)


def _multiframe_with(keyword: str, vr: str, value: bytes) -> bytes:
    """A 3-frame XA whose `keyword` holds `value` as written (pydicom would refuse to write it)."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    ds = _dataset("1.2.840.10008.5.1.4.1.1.12.1", ExplicitVRLittleEndian)  # X-Ray Angiographic Image Storage
    ds.Modality, ds.Rows, ds.Columns, ds.SamplesPerPixel = "XA", 32, 32, 1
    ds.PhotometricInterpretation, ds.BitsAllocated, ds.BitsStored = "MONOCHROME2", 8, 8
    ds.HighBit, ds.PixelRepresentation, ds.NumberOfFrames = 7, 0, 3
    ds.PixelData = bytes(range(256)) * 12
    tag = Tag(pydicom.datadict.tag_for_keyword(keyword))
    ds[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.parametrize("value", [NAME.encode(), b"ZQX DOE ", b"3ZQXDOE "])
def test_a_number_of_frames_that_is_no_number_stays_out_of_the_metadata(value):
    """Metadata keeps "only values that look like their kind": an IS value was kept as any short printable text."""
    items = _items(_multiframe_with("NumberOfFrames", "IS", value))
    images = [i for i in items if isinstance(i, ImageItem)]
    assert images, items
    assert not any("ZQX" in str(i.metadata) for i in images), [i.metadata for i in images]
    assert all("NumberOfFrames" not in i.metadata for i in images)


def test_a_number_of_frames_that_is_a_number_is_kept():
    items = _items(_multiframe_with("NumberOfFrames", "IS", b"3 "))
    assert [i.metadata["NumberOfFrames"] for i in items if isinstance(i, ImageItem)] == [3]


def _ct_with_vr(tag: bytes, vr: bytes) -> bytes:
    """A plain 8-bit CT of 32×32 whose element `tag` (its 4 bytes as written) is written with the VR `vr`, of the same
    2-byte length field: a wrong VR whose fixed size does not divide the value's length."""
    ds = _dataset("1.2.840.10008.5.1.4.1.1.2", ExplicitVRLittleEndian)
    ds.Modality, ds.Rows, ds.Columns, ds.SamplesPerPixel = "CT", 32, 32, 1
    ds.PhotometricInterpretation, ds.BitsAllocated, ds.BitsStored = "MONOCHROME2", 8, 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = bytes(range(256)) * 4
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    data = bytearray(out.getvalue())
    at = data.index(tag, 132)
    data[at + 4:at + 6] = vr
    return bytes(data)


@pytest.mark.parametrize("tag, vr, kept", [
    (b"\x08\x00\x60\x00", b"UL", {"Modality": "CT"}),  # "CT": 2 bytes, no 4-byte number
    (b"\x28\x00\x04\x00", b"FD", {"PhotometricInterpretation": "MONOCHROME2"}),  # 12 bytes
    (b"\x28\x00\x10\x00", b"UL", {"Rows": 32}),  # 2 bytes
    (b"\x28\x00\x10\x00", b"AT", {"Rows": 32}),
    (b"\x08\x00\x16\x00", b"FL", {"SOPClass": "CT Image Storage"}),  # 26 bytes
])
def test_a_wrong_vr_that_does_not_fit_its_value_still_gives_the_image(tag, vr, kept):
    """pydicom raised on reading the value ("Expected total bytes to be an even multiple of bytes per value. Instead
    received b'CT' …"): the whole file was lost, with the value's raw bytes in the error."""
    items = _items(_ct_with_vr(tag, vr))
    assert [type(i) for i in items] == [ImageItem], items
    assert items[0].image.size == (32, 32)
    assert kept.items() <= items[0].metadata.items(), items[0].metadata


def test_a_number_of_frames_written_as_a_uid_still_gives_the_middle_frame():
    """Setting the count read back into the element (an int into a UI element) failed: "its data is damaged"."""
    items = _items(_multiframe_with("NumberOfFrames", "UI", b"3 "))
    assert [(type(i), i.locator) for i in items] == [(ImageItem, "frame 2")], items


def test_an_implicit_vr_element_whose_length_does_not_fit_its_vr_is_no_reason_to_lose_the_file():
    """Implicit VR (or UN) takes the dictionary's VR: High Bit (US) of 3 bytes made pydicom raise on it."""
    ds = _dataset("1.2.840.10008.5.1.4.1.1.2", ExplicitVRLittleEndian)
    ds.Modality, ds.Rows, ds.Columns, ds.SamplesPerPixel = "CT", 32, 32, 1
    ds.PhotometricInterpretation, ds.BitsAllocated, ds.BitsStored = "MONOCHROME2", 8, 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = bytes(range(256)) * 4
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True, implicit_vr=True, little_endian=True)
    data = bytearray(out.getvalue())
    at = data.index(b"\x28\x00\x02\x01\x02\x00\x00\x00", 132)  # (0028,0102)
    data[at + 4:at + 10] = b"\x03\x00\x00\x00\x07\x00\x00"  # a value of 3 bytes
    items = _items(bytes(data))
    assert [type(i) for i in items] == [ImageItem], items
