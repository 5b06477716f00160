"""Fuzzing session 40's readers (s40_fuzz): the cases it found, each the smallest file that shows it."""

from __future__ import annotations

import struct

import builders as b
from medimg.sources import Blob, Context, ImageItem, ItemError, Limits

PNG = b.image_bytes("PNG", (80, 60))


def items(data: bytes, name: str, **limits) -> list:
    return list(Context(Limits(**limits)).open_blob(Blob(name, data, name=name)))


def rows(got) -> list[tuple[str, str]]:
    return [(i.origin, "image" if isinstance(i, ImageItem) else "note" if i.skipped else "error") for i in got]


def zstd():
    try:
        from compression import zstd as module
    except ImportError:
        from backports import zstd as module
    return module


def skippable(payload: bytes, kind: int = 0) -> bytes:
    """A Zstandard skippable frame (magic 0x184D2A50 to 0x184D2A5F): metadata a decoder passes over."""
    return struct.pack("<II", 0x184D2A50 + kind, len(payload)) + payload


def pzstd(data: bytes, parts: int = 2) -> bytes:
    """What `pzstd` writes: each frame after a skippable frame giving its compressed size."""
    step = -(-len(data) // parts)
    frames = [zstd().compress(data[i:i + step]) for i in range(0, len(data), step)]
    return b"".join(skippable(struct.pack("<I", len(f))) + f for f in frames)


def test_pzstd_files_with_their_skippable_frames_are_read():
    """pzstd (zstd's parallel tool) starts each frame with a skippable frame: its .tar.zst was 'unrecognised
    content' (the file starts 50 2a 4d 18, not Zstandard's 28 b5 2f fd), and a skippable frame between two
    frames ended the reading there ('cut short')."""
    tar = b.tar_bytes({"a.png": PNG, "b.png": b.image_bytes("PNG", (70, 50), seed=1)})
    assert rows(items(pzstd(tar), "set.tar.zst")) == [("set.tar.zst:a.png", "image"), ("set.tar.zst:b.png", "image")]
    half = len(tar) // 2
    between = zstd().compress(tar[:half]) + skippable(b"meta", 7) + zstd().compress(tar[half:])
    assert rows(items(between, "set.tar.zst")) == [("set.tar.zst:a.png", "image"), ("set.tar.zst:b.png", "image")]
    got = items(pzstd(PNG), "a.png.zst")
    assert rows(got) == [("a.png.zst", "image")] and got[0].image.size == (80, 60)


def test_many_skippable_frames_are_refused_as_many_empty_streams_are():
    trap = skippable(b"") * 5000 + zstd().compress(PNG)
    (got,) = items(trap, "a.png.zst")
    assert isinstance(got, ItemError) and "compressed streams holding under 1 KB each" in got.error


def test_a_dicom_element_with_a_damaged_value_representation_is_a_damaged_header():
    """Two bytes of an explicit-VR element's VR garbled ('UI' read as 'KS') made pydicom raise NotImplementedError
    when medimg looked at the element: it escaped the DICOM reader, caught by the last resort as 'dicom: could not
    read: …'. It is a damaged file, said as such."""
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage

    data = b.dicom_bytes(b.dicom_dataset(ExplicitVRLittleEndian, MRImageStorage, "MR"))
    at = data.index(b"\x08\x00\x16\x00UI")  # SOP Class UID
    (got,) = items(data[:at + 4] + b"KS" + data[at + 6:], "a.dcm")
    assert isinstance(got, ItemError) and not got.skipped
    assert got.error == "damaged DICOM header: Unknown Value Representation 'KS' in tag (0008,0016); not read"


def test_an_rtf_of_millions_of_empty_picture_groups_stops_at_the_step_cap_quickly():
    """Word's WMF copies (`\\nonshppict`) were passed over without counting against the step cap, and each `\\pict`
    found (two searches) was not counted at all: 32 MB of empty copies took 7.5 s, 200 MB would take a minute. Each
    picture group found is a step now, the cap is checked for copies too, and it is 1,000,000 steps (a real
    report's picture is about 20)."""
    import time

    from medimg.sources.rtf import MAX_TOKENS

    copies = b"{\\rtf1 " + b"{\\nonshppict{\\pict\\wmetafile8 00}}" * (MAX_TOKENS // 2) + b"}"
    started = time.process_time()  # CPU time: other processes on the machine do not count against it
    got = items(copies, "x.rtf")
    assert time.process_time() - started < 4
    assert rows(got) == [("x.rtf", "error"), ("x.rtf", "note")]
    assert f"take over {MAX_TOKENS:,} steps to read" in got[0].error and MAX_TOKENS <= 1_000_000
