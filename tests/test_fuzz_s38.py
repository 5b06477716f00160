"""What fuzzing session 38's change found (s38_fuzz): a zip member named `.`, a zip whose end-record search starts
inside its directory, Office crops written as percents, JPEGs cut short that were read half grey (fill bytes
before the marker after the cut, a cut just before a restart marker)."""

from __future__ import annotations

import struct
import zlib

import pytest

import builders as b
from medimg.sources import Blob, Context, ImageItem, ItemError, Limits, open_input
from test_left_s38 import deck

# --- zips ---------------------------------------------------------------------------------------------------------


def zip_of(members: list[tuple[bytes, bytes, int]], comment: bytes = b"") -> bytes:
    """A stored zip of (name bytes, data, general-purpose flags), written by hand so names and flags are as given."""
    out, central = bytearray(), bytearray()
    for name, data, flags in members:
        crc, off = zlib.crc32(data), len(out)
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, flags, 0, 0, 0x21, crc, len(data), len(data),
                           len(name), 0) + name + data
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, flags, 0, 0, 0x21, crc, len(data),
                               len(data), len(name), 0, 0, 0, 0, 0, off) + name
    return bytes(out + central + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members),
                                             len(central), len(out), len(comment)) + comment)


def read(data: bytes, name: str) -> list:
    return list(open_input(Blob(name, data, name=name), Limits()))


def test_a_zip_member_named_dot_is_passed_over_and_the_rest_is_read():
    """A member named `.` (or `./.`) has no parts once `.` folders are left out: the walk took its last part and
    the whole archive became one error ('list index out of range'); it is a hidden name, passed over as before."""
    png = b.image_bytes("PNG", (20, 10))
    for dot in (b".", b"./."):
        got = read(zip_of([(dot, b"x", 0), (b"a.png", png, 0), (b"./b.png", png, 0)]), "t.zip")
        assert [(i.origin, type(i).__name__) for i in got] == [("t.zip:a.png", "ImageItem"),
                                                                ("t.zip:b.png", "ImageItem")], got


def test_a_name_falsely_flagged_utf8_is_read_when_the_end_record_search_starts_inside_the_directory():
    """zipfile looks for the end record of an archive with a comment by reading from 64 KiB before its end: when
    that read starts at a directory entry, it was taken for the directory, and the flag of a name not in UTF-8 was
    then cleared in another member's local header: that member was lost ('utf-8' codec can't decode)."""
    pngs = [b.image_bytes("PNG", (16 + k, 9)) for k in range(3)]
    members = [(b"a.png", pngs[0], 0), (b"caf\xe9.png", pngs[1], 0x800), (b"c.png", pngs[2], 0)]
    plain = zip_of(members)
    start = struct.unpack_from("<I", plain, len(plain) - 6)[0]
    second = plain.index(b"PK\x01\x02", start + 1) - start
    data = zip_of(members, comment=b"x" * (65536 - (len(plain) - 22 - start) + second))
    assert data[len(data) - 65558:].startswith(b"PK\x01\x02")  # where zipfile's search reads from
    got = read(data, "t.zip")
    assert [(i.origin, type(i).__name__) for i in got] == [
        ("t.zip:a.png", "ImageItem"), ("t.zip:caf\u0398.png", "ImageItem"), ("t.zip:c.png", "ImageItem")], got


# --- Office crops -------------------------------------------------------------------------------------------------


def test_an_office_crop_written_as_a_percent_is_applied():
    """`a:srcRect l="25%"` (ST_Percentage's other form, which Office reads: MS-OI29500) was taken for no crop; an
    unreadable value (NaN%, 1e3, a non-ASCII digit) still leaves the picture as stored, without an error."""
    pic = b.image_bytes("PNG", (400, 200))
    shown = [("rId2", "image1.png", 'l="25%" r="12.5%"'), ("rId3", "image1.png", 't="nan%"'),
             ("rId4", "image1.png", 'b="1e3"'), ("rId5", "image1.png", 'b="\u0663000"')]
    got = list(Context(Limits()).open_blob(Blob("t.pptx", deck([shown], {"image1.png": pic}), name="t.pptx")))
    assert not [g for g in got if isinstance(g, ItemError) and not g.skipped]
    sizes = sorted(i.image.size for i in got if isinstance(i, ImageItem))
    assert sizes == [(250, 200), (400, 200)], sizes


# --- JPEGs cut short and followed by a marker ----------------------------------------------------------------------


def one(data: bytes):
    (item,) = read(data, "cut.jpg")
    return item


def scan_markers(data: bytes) -> list[tuple[int, int]]:
    """(offset, n) of each restart marker RSTn in a JPEG's scan data."""
    start = data.index(b"\xff\xda")
    return [(k, data[k + 1] - 0xD0) for k in range(start, len(data) - 1)
            if data[k] == 0xFF and 0xD0 <= data[k + 1] <= 0xD7]


def test_a_cut_jpeg_followed_by_fill_bytes_and_an_end_marker_is_an_error():
    """`FF FF D9` (a fill byte, then the end marker) after a cut: the check put its bytes between the two FFs,
    where the decoder never reads them, and took the half-grey picture for whole."""
    data = b.encode(b.pattern((200, 120), "RGB", 5), "JPEG", quality=90, subsampling=0)
    for keep in (0.5, 0.9):
        item = one(data[:int(len(data) * keep)] + b"\xff\xff\xd9")
        assert isinstance(item, ItemError) and "grey" in item.error, (keep, item)


@pytest.mark.parametrize("wanted", [6, 7, 0, 3])
def test_a_jpeg_cut_just_before_the_restart_marker_it_needs_next_is_an_error(wanted):
    """A file cut right before its RST6 or RST7 (no end marker: Pillow calls it truncated, and the end marker is
    added only when the scan is whole): libjpeg left the check's first restart marker (RST0, one or two ahead of the
    one it wanted) and filled the rest with grey both times, so the cut picture was read half grey."""
    data = b.encode(b.pattern((64, 48), "L", 12), "JPEG", quality=85, restart_marker_blocks=2)
    for at in [k for k, n in scan_markers(data) if n == wanted]:
        item = one(data[:at])
        assert isinstance(item, ItemError), (at, len(data), item)
