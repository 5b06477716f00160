"""DICOM pixel data stored otherwise than its transfer syntax says, as a gateway or archive that rewrote the one and
not the other leaves it: uncompressed pixels under a compressed syntax are read as uncompressed, and one bare
codestream (not in items) as its one frame; compressed items under an uncompressed syntax are an error saying so."""

from __future__ import annotations

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.encaps import encapsulate
from pydicom.uid import (UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                         JPEG2000TransferSyntaxes, JPEGLSTransferSyntaxes, JPEGTransferSyntaxes, MPEGTransferSyntaxes)

from .dicom_frames import ENCAPSULATED, NATIVE, JPEG_XL, frames_held

_ITEM = b"\xfe\xff\x00\xe0"  # the first item (offset table) of encapsulated pixel data
_JP2 = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
# what a bare codestream of each family starts with
_STARTS = {**{uid: (b"\xff\xd8",) for uid in JPEGTransferSyntaxes + JPEGLSTransferSyntaxes},
           **{uid: (b"\xff\x4f\xff\x51", _JP2) for uid in JPEG2000TransferSyntaxes}}


def stored_otherwise(ds: pydicom.Dataset, n: int) -> tuple[str | None, str | None]:
    """(note, error): how the pixel data was read against its transfer syntax, or why it cannot be; each None when
    it is stored as the syntax says (or the syntax is one this does not know, private or video)."""
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    elem = ds.get_item(0x7FE00010) if "PixelData" in ds else None
    value = ds.get("PixelData")
    if elem is None or not isinstance(value, (bytes, bytearray)):
        return None, None
    undefined = elem.length == 0xFFFFFFFF if isinstance(elem, RawDataElement) else elem.is_undefined_length
    name = UID(syntax).name
    if syntax in NATIVE and undefined:  # native pixels may begin with any bytes, so only the length tells
        return None, (f"DICOM pixel data is encapsulated (compressed), but its transfer syntax ({name}) is for "
                      f"uncompressed data; not decoded")
    if syntax not in ENCAPSULATED | JPEG_XL or syntax in MPEGTransferSyntaxes or undefined or value[:4] == _ITEM:
        return None, None
    if n == 1 and value.startswith(_STARTS.get(syntax, (b"\0\0no",))):
        ds.PixelData = encapsulate([bytes(value)])
        return f"pixel data is one {name} codestream not in items, as encapsulated data should be", None
    implicit, little = getattr(ds, "original_encoding", (False, True))
    meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                              ExplicitVRLittleEndian if little is not False else ExplicitVRBigEndian)
    if not frames_held(ds, n):
        meta.TransferSyntaxUID = syntax
        return None, (f"DICOM pixel data is not encapsulated, as its transfer syntax ({name}) requires, and holds "
                      f"less than one uncompressed frame; not decoded")
    return f"pixel data is uncompressed, though its transfer syntax says {name}", None
