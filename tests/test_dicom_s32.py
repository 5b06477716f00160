"""DICOM from a PACS export (review s32): files whose preamble was cut off, bit-packed multi-frame objects."""

from __future__ import annotations

import logging

import numpy as np
import pydicom
from pydicom.pixels import pack_bits

import builders as b
from medimg.sources import Blob, Context, ImageItem, Limits


def items(data: bytes, name: str = "x.dcm", **limits):
    return list(Context(Limits(**limits)).open_blob(Blob(name, data, name=name)))


def test_a_file_whose_preamble_was_cut_off_is_read_as_the_whole_file():
    # some exporters leave out the 128-byte preamble but keep DICM and the file meta
    whole = b.dicom_file("CT_small.dcm").read_bytes()
    assert whole[128:132] == b"DICM"
    cut, = items(whole[128:], "IM0001")
    full, = items(whole, "IM0001")
    assert isinstance(cut, ImageItem), cut
    assert np.array_equal(np.asarray(cut.image), np.asarray(full.image))
    assert cut.metadata == full.metadata


def test_a_file_that_only_begins_with_the_letters_dicm_is_not_taken_for_dicom():
    """Without its preamble a DICOM file starts DICM and then the file meta's group 0002; a text that happens to
    begin with "DICM" is no DICOM file (mutation round s32_mut2)."""
    from medimg.sources.dicom import accepts

    whole = b.dicom_file("CT_small.dcm").read_bytes()
    text = b"DICM ward notes, 5 December: nothing to report\n" * 4
    assert accepts(whole[128:], Blob("IM0001", whole[128:], name="IM0001"))
    assert not accepts(text, Blob("notes", text, name="notes"))


def test_every_frame_of_single_bit_pixels_not_ending_on_a_byte_decodes(caplog):
    # Multi-frame Single Bit Secondary Capture (scanned pages): 257 × 203 bits a frame, so frames start inside bytes
    rng = np.random.default_rng(3)
    frames = (rng.random((4, 257, 203)) > 0.5).astype(np.uint8)
    ds = b.dicom_dataset(pydicom.uid.ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.7.1", "OT")
    ds.Rows, ds.Columns, ds.NumberOfFrames = 257, 203, 4
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 1, 0, 0
    ds.PixelData = pack_bits(frames.ravel())
    with caplog.at_level(logging.WARNING):
        got = items(b.dicom_bytes(ds), all_frames=True)
    assert not caplog.records, "pydicom's warning that bit-packed pixels cannot be a view"
    assert [g.locator for g in got] == ["frame 1", "frame 2", "frame 3", "frame 4"], got
    for frame, item in zip(frames, got):
        assert np.array_equal(np.asarray(item.image) // 255, frame)
