"""Archives (s43): self-extracting zips, the parts of split archives, hard links in a tar, pre-POSIX (v7) tars."""

from __future__ import annotations

import gzip
import io
import random
import struct
import tarfile
import zipfile

import py7zr

import builders as b
from medimg.sources import Blob, Context, ImageItem, ItemError, Limits, open_inputs

PNG = b.image_bytes("PNG", (80, 60))


def items(data: bytes, name: str, **limits):
    return list(Context(Limits(**limits)).open_blob(Blob(name, data, name=name)))


def rows(got):
    return [(i.origin, "image" if isinstance(i, ImageItem) else "note" if i.skipped else "error") for i in got]


def zip_of(members: dict) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


# ---------------------------------------------------------------- self-extracting zips

STUB = b"MZ\x90\x00" + bytes(70_000)  # a Windows program's start, longer than the 64 KB a folder's files are sniffed by


def appended(prefix: bytes, members: dict) -> bytes:
    """A zip written after `prefix` with its offsets from the start of the file, as `zip -A` leaves them."""
    out = io.BytesIO(prefix)
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def test_a_self_extracting_zip_gives_its_members():
    members = {"study/a.png": PNG, "b.png": PNG}
    for data in (STUB + zip_of(members),  # offsets from the zip's own start, as `cat stub a.zip` leaves them
                 appended(STUB, members),
                 appended(b"#!/bin/sh\nexec unzip \"$0\"\n", members),
                 appended(b"\x7fELF\x02\x01\x01" + bytes(3000), members)):
        assert rows(items(data, "study.exe")) == [("study.exe:study/a.png", "image"), ("study.exe:b.png", "image")]


def test_a_self_extracting_zip_in_a_folder_and_named_as_a_member(tmp_path):
    (tmp_path / "study.exe").write_bytes(STUB + zip_of({"study/a.png": PNG}))
    (tmp_path / "tool.exe").write_bytes(STUB)  # a program with no zip in it: a note, as before
    got = list(open_inputs([tmp_path]))
    assert rows(got) == [(f"{tmp_path}/study.exe:study/a.png", "image"), (f"{tmp_path}/tool.exe", "note")]
    one, = open_inputs([f"{tmp_path}/study.exe:study/a.png"])
    assert isinstance(one, ImageItem)


def test_a_zip_after_an_image_is_still_the_image():
    data = PNG + zip_of({"x.png": PNG})  # a picture with a zip appended (only a program's head makes it a zip)
    got = items(data, "photo.png")
    assert len(got) == 1 and isinstance(got[0], ImageItem) and got[0].format == "PNG"


# ---------------------------------------------------------------- split archives

def split_zip(members: dict, at: int) -> tuple[bytes, bytes]:
    """(.z01, .zip) of a zip split in two as `zip -s` splits it: the first part starts with the spanning
    signature, and the last part's end record is on the second disk."""
    data = zip_of(members)
    first, last = b"PK\x07\x08" + data[:at], bytearray(data[at:])
    end = last.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", last, end + 4, 1, 1)  # this disk, the disk the directory starts on
    return first, bytes(last)


def test_the_parts_of_a_split_zip_say_what_to_do(tmp_path):
    first, last = split_zip({"a.png": PNG, "b.png": PNG}, 300)
    for data, name, which in ((first, "set.z01", "the first part"), (last, "set.zip", "the last of 2 parts")):
        got, = items(data, name)
        assert not got.skipped and got.error.startswith(f"{which} of a split zip archive") and "join" in got.error
    (tmp_path / "set.z01").write_bytes(first)
    (tmp_path / "set.z02").write_bytes(b"\x8a" * 100)  # a middle part: anything
    (tmp_path / "set.zip").write_bytes(last)
    got = list(open_inputs([tmp_path]))
    assert rows(got) == [(f"{tmp_path}/set.z01", "error"), (f"{tmp_path}/set.z02", "note"),
                         (f"{tmp_path}/set.zip", "error")]
    assert got[1].error.startswith("part 2 of a split archive") and "join its parts" in got[2].error
    middle, = items(b"\x8a" * 100, "set.z02")  # given alone: an error saying so
    assert not middle.skipped and middle.error.startswith("part 2 of a split archive")


def test_7z_volumes_say_they_are_parts():
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w") as z:
        z.writestr(random.Random(7).randbytes(100_000), "noise.bin")  # does not shrink
    data = out.getvalue()
    first, = items(data[:30_000], "set.7z.001")
    assert first.error.startswith("not a readable 7z archive") and "first part of a split archive" in first.error
    second, = items(data[30_000:60_000], "set.7z.002")
    assert second.error.startswith("part 2 of a split archive")
    whole = items(data, "set.7z.001")  # one volume only: the whole archive
    assert rows(whole) == [("set.7z.001:noise.bin", "note")]


def test_the_first_volume_of_a_zip_says_it_is_one():
    data = zip_of({"a.png": PNG, "b.png": b.image_bytes("PNG", (90, 70))})
    got = items(data[:len(data) * 2 // 3], "set.zip.001")
    assert rows(got)[1:] == [("set.zip.001:a.png", "image")]
    assert "first part of a split archive" in got[0].error


# ---------------------------------------------------------------- tar

def test_a_hard_link_in_a_tar_names_its_file():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tf:
        info = tarfile.TarInfo("scans/a.png")
        info.size = len(PNG)
        tf.addfile(info, io.BytesIO(PNG))
        link = tarfile.TarInfo("scans/b.png")
        link.type, link.linkname = tarfile.LNKTYPE, "scans/a.png"
        tf.addfile(link)
    got = items(out.getvalue(), "s.tgz")
    assert rows(got) == [("s.tgz:scans/a.png", "image"), ("s.tgz:scans/b.png", "note")]
    assert got[1].error == "a hard link to scans/a.png (the same file, read under that name), not read again"


def test_a_v7_tar_is_read():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name in ("d/a.png", "b.png"):
            info = tarfile.TarInfo(name)
            info.size = len(PNG)
            tf.addfile(info, io.BytesIO(PNG))
    data = bytearray(out.getvalue())
    for at in (0, 512 + (len(PNG) + 511) // 512 * 512):  # the old format: no magic, the checksum made again
        head = data[at:at + 512]
        head[257:512] = bytes(255)
        head[148:156] = b" " * 8
        head[148:156] = b"%06o\0 " % sum(head)
        data[at:at + 512] = head
    assert data[257:262] != b"ustar"
    for blob, name in ((bytes(data), "old.tar"), (gzip.compress(bytes(data)), "old.tar.gz")):
        assert rows(items(blob, name)) == [(f"{name}:d/a.png", "image"), (f"{name}:b.png", "image")]
    noise = bytearray(bytes(range(256)) * 2)
    assert not any(isinstance(i, ImageItem) for i in items(bytes(noise), "x.bin"))
    assert isinstance(items(bytes(noise), "x.bin")[0], ItemError)
