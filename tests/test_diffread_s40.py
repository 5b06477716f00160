"""Session 40's change to the sources, read line by line (s40_diffread): a zip rebuilt from its local headers
whose member after the good ones is not Deflate data, RTF pictures whose hex a line break splits mid-byte, a
single compressed file cut off inside its stream, and a DICOM file without pixels padded with zeros."""

from __future__ import annotations

import gzip
import io
import random
import struct
import zipfile

import pydicom
from PIL import Image

import builders as b
from medimg.sources import Blob, Context, ImageItem, ItemError, Limits

PNG = b.image_bytes("PNG", (80, 60))


def items(data: bytes, name: str) -> list:
    return list(Context(Limits()).open_blob(Blob(name, data, name=name)))


def images(got) -> list[str]:
    return [i.origin for i in got if isinstance(i, ImageItem)]


def errors(got) -> list[str]:
    return [i.error for i in got if isinstance(i, ItemError) and not i.skipped]


def test_a_streamed_member_that_is_not_deflate_data_stops_the_rebuild_after_the_members_found():
    """A zip without a central directory whose second member says Deflate with its sizes after its data, but holds
    bytes zlib refuses (damaged, or encrypted): zlib.error escaped the rebuild, and the whole zip was one error
    ('could not read: Error -3 …') though its first member was whole."""
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("a.png", PNG, compress_type=zipfile.ZIP_STORED)
    first = good.getvalue()[:good.getvalue().index(b"PK\x01\x02")]  # its local header and data, no directory
    name = b"b.png"
    bad = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0x08, 8, 0, 0, 0, 0, 0, len(name), 0) + name + b"\xff" * 200
    got = items(first + bad, "cut.zip")
    assert images(got) == ["cut.zip:a.png"]
    assert any("'b.png'" in e and "could not be found" in e for e in errors(got)), errors(got)


def test_an_rtf_picture_whose_hex_lines_split_a_byte_is_read():
    """RTF readers ignore line breaks anywhere in a picture's hex; a writer wrapping at an odd width splits a byte's
    two digits. bytes.fromhex refuses that, so such a picture was 'damaged … do not make whole bytes'."""
    hexes = PNG.hex()
    wrapped = "\r\n".join(hexes[i:i + 77] for i in range(0, len(hexes), 77))
    got = items(("{\\rtf1\\ansi report {\\pict\\pngblip\\picw80\\pich60 " + wrapped + "}}").encode(), "r.rtf")
    assert images(got) == ["r.rtf:picture-1.png"], errors(got)


def test_a_single_compressed_file_cut_off_is_said_to_be_cut_off():
    """Inflated.read now hands over what came before a cut (for tarfile); a lone .png.gz cut off then went to the
    PNG decoder, and the error blamed the picture ('corrupt or truncated PNG image') instead of the compression."""
    noise = Image.frombytes("L", (300, 200), random.Random(0).randbytes(300 * 200))  # so that the gzip is large
    out = io.BytesIO()
    noise.save(out, "PNG")
    data = gzip.compress(out.getvalue())
    got = items(data[:len(data) // 2], "scan.png.gz")
    assert images(got) == []
    assert len(errors(got)) == 1 and errors(got)[0].startswith("compressed data is corrupt"), errors(got)
    whole = items(gzip.compress(PNG), "scan.png.gz")  # a whole one still reads
    assert images(whole) == ["scan.png.gz"]


def test_a_whole_dicom_without_pixels_padded_with_a_few_zero_bytes_is_not_called_cut_off():
    """Fewer than 8 bytes after the last element were taken for the header of an element cut off; zeros there are
    padding (no element's tag is 0000,0000), so an RT Plan a tool padded with two NULs was an error ('is cut off
    inside an element's header') instead of the note every whole one gets. Other bytes there still are a cut."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.481.5"  # RT Plan Storage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.PatientName, ds.RTPlanLabel = "Anon", "PLAN1"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    whole = out.getvalue()
    for data in (whole, whole + b"\0\0"):
        got = items(data, "plan.dcm")
        assert errors(got) == [] and [i.error for i in got] == ["DICOM object without pixel data (RT Plan Storage)"]
    assert "cut off inside an element's header" in errors(items(whole + b"\x10\x00", "plan.dcm"))[0]
