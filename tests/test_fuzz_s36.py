"""Hostile inputs found by fuzzing session 36's new input paths (review s36_fuzz): a zip member with no name lost
the whole zip, a DICOM file whose pixel data is empty and a pyramid whose tiles are 0 rows high gave Python errors
as their reasons. Each file is built here."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from pydicom.uid import ExplicitVRLittleEndian

import builders as b
from medimg.sources import Blob, ImageItem, ItemError, open_input


def rows(data: bytes, name: str) -> list:
    return list(open_input(Blob(name, data, name=name)))


def test_a_zip_member_with_no_name_is_a_note_and_the_others_are_read():
    """zipfile cuts a name at its first NUL byte; ZipInfo.is_dir() then fails on the empty name, and the zip's
    members were all lost: "zip: could not read: string index out of range"."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.png", b.image_bytes("PNG", size=(40, 30)))
        zf.writestr("NAMELESS", b"x" * 10)
        zf.writestr("c.png", b.image_bytes("PNG", size=(50, 30)))
    data = buf.getvalue().replace(b"NAMELESS", b"\0AMELESS")  # in the local header and the directory
    got = rows(data, "n.zip")
    assert [(i.origin, i.image.size) for i in got if isinstance(i, ImageItem)] == [("n.zip:a.png", (40, 30)),
                                                                                   ("n.zip:c.png", (50, 30))]
    (note,) = [i for i in got if isinstance(i, ItemError)]
    assert note.origin == "n.zip" and "1 member with no name" in note.error and not note.skipped


def test_dicom_pixel_data_of_length_zero_is_said_plainly():
    """pydicom reads an empty Pixel Data element as None: the reason given was "TypeError: object of type
    'NoneType' has no len()"."""
    ds = b.dicom_dataset(ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.3.1", "US")
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 32, 40, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = b""
    (item,) = rows(b.dicom_bytes(ds), "x.dcm")
    assert isinstance(item, ItemError) and not item.skipped
    assert item.error == "DICOM pixel data is empty (the element is there, of length 0): no image to show"


def test_a_pyramid_whose_tiles_are_zero_rows_high_says_so():
    """A JPEG pyramid without OME metadata whose base page's TileLength is 0: segments() divided by it, and the
    reason given was "integer division or modulo by zero"."""
    import struct

    import tifffile

    img = np.full((384, 512, 3), 244, np.uint8)
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tw:
        kw = dict(tile=(256, 256), compression="jpeg", photometric="rgb", metadata=None)
        tw.write(img, **kw)
        for d in (2, 4):
            tw.write(np.ascontiguousarray(img[::d, ::d]), subfiletype=1, **kw)
    data = bytearray(buf.getvalue())
    ifd = struct.unpack_from("<I", data, 4)[0]
    entry = next(ifd + 2 + 12 * e for e in range(struct.unpack_from("<H", data, ifd)[0])
                 if struct.unpack_from("<H", data, ifd + 2 + 12 * e)[0] == 323)  # TileLength of the base page
    struct.pack_into("<H", data, entry + 8, 0)
    got = rows(bytes(data), "slide.tif")
    assert [(i.locator, i.error) for i in got] == [("", "pyramidal TIFF: JPEG page's tiles are 256×0 pixels; "
                                                        "not decoded")]
