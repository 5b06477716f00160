"""Session 46's second read of its own changes (review s46_diffread1): the byte-order fix on a DICOMDIR given alone
and its cost on every DICOM file, the HTTP Refresh header in the docs and errors."""

from __future__ import annotations

import pydicom
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info

import builders as b
from medimg.sources import Blob, ImageItem, open_input
from medimg.sources import dicom
from test_dicom_s46 import written_in


def test_a_dicomdir_in_the_other_byte_order_than_its_syntax_says_lists_its_files(tmp_path):
    """The export's DICOMDIR written big endian under a file meta saying little endian: a DICOM file so written
    was read (with a note), but the DICOMDIR given alone was "A DICOMDIR listing no files: nothing to read"."""
    root = b.dicom_export(tmp_path)
    ds = pydicom.dcmread(root / "DICOMDIR")
    out = DicomBytesIO()
    out.write(bytes(128) + b"DICM")
    out.is_little_endian, out.is_implicit_VR = True, False
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    write_file_meta_info(out, ds.file_meta, enforce_standard=True)
    out.is_little_endian = False
    write_dataset(out, ds)
    (root / "DICOMDIR").write_bytes(out.getvalue())
    got = list(open_input(str(root / "DICOMDIR")))
    assert sum(isinstance(g, ImageItem) for g in got) == 31, got[-1]


def test_a_file_as_its_syntax_says_has_its_meta_read_once_not_twice(monkeypatch):
    """The check of the byte order parsed every DICOM file's meta with pydicom before `_read` did it again (0.18 ms
    a file, 4 % of reading a small CT slice): `read` parses it once, for the check and the read (session 47)."""
    calls = []
    real = dicom._read_file_meta_info
    monkeypatch.setattr(dicom, "_read_file_meta_info", lambda fp: calls.append(1) or real(fp))
    for order, says in [("little", pydicom.uid.ExplicitVRLittleEndian), ("big", pydicom.uid.ExplicitVRBigEndian)]:
        data, _ = written_in(order, False, says)
        ds, note = dicom.read(data, 1 << 30)
        assert note is None and ds.file_meta.TransferSyntaxUID == says and "PixelData" in ds
    assert len(calls) == 2
    implicit = b.dicom_bytes(b.dicom_dataset(pydicom.uid.ImplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.2", "CT"))
    assert dicom.read(implicit, 1 << 30)[1] is None and len(calls) == 3
    data, _ = written_in("big", False, pydicom.uid.ExplicitVRLittleEndian)  # a misnamed one is still set right
    ds, note = dicom.read(data, 1 << 30)
    assert note and ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRBigEndian and "PixelData" in ds
    assert len(calls) == 4


def test_a_refresh_a_browser_refuses_leaves_the_next_one_to_be_followed():
    """HTML's shared declarative refresh steps return before a page 'will declaratively refresh' when the URL does
    not parse or is a javascript: one, so the next refresh is the one followed (as it was before the header came
    in, session 46). One that parses, to anywhere, is the one taken (`#top`, `mailto:`: the page stays)."""
    from medimg.sources.web_page import extract

    page, nxt = "http://127.0.0.1:9/p", "http://127.0.0.1:9/next"
    then = '<meta http-equiv="refresh" content="0; url=/next">'
    for first in ["0; url=javascript:void(0)", "0; URL='JavaScript:go()'", "0; url=http://[::1/x"]:
        assert extract(f'<meta http-equiv="refresh" content="{first}">{then}', page).refresh == nxt, first
        assert extract(then, page, refresh=first).refresh == nxt, first
    for first in ["0; url=#top", "0; url=mailto:a@example.org", "30"]:
        assert extract(f'<meta http-equiv="refresh" content="{first}">{then}', page).refresh is None, first
        assert extract(then, page, refresh=first).refresh is None, first


def _windowed(center, width, function: str):
    import numpy as np

    ds = b.dicom_dataset(pydicom.uid.ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.7", "OT")
    ds.Rows, ds.Columns = 64, 64
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.arange(4096, dtype=np.uint16).tobytes()
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = center, width, function
    (got,) = open_input(Blob("x.dcm", b.dicom_bytes(ds), name="x.dcm"))
    return np.asarray(got.image)


def test_a_window_of_nan_or_infinity_is_no_window():
    """A damaged header's window centre NaN or infinity (or width infinity) drew every pixel alike, black or
    mid-grey, for the model to classify; like a rescale slope so damaged, it is read as no window: the frame's
    range is drawn."""
    for function in ("LINEAR", "LINEAR_EXACT"):
        for center, width in (("nan", 100), ("inf", 100), (2000, "inf"), ("-inf", 1e-3)):
            got = _windowed(center, width, function)
            assert got.min() == 0 and got.max() == 255, (function, center, width)
    assert _windowed(2000, 10, "LINEAR_EXACT").max() == 255 and _windowed(2000, 10, "LINEAR_EXACT").min() == 0
