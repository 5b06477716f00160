"""Tar archives and compressed files, written here with the standard library."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import time

import pytest

import builders as b
from medimg.sources import Blob, ImageItem, Limits, input_tasks, open_input


def tar_bytes(members, mode="w:gz") -> bytes:
    """`members`: (name, bytes) files, or (name, "dir" | "symlink")."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if isinstance(data, bytes):
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE}[data]
                info.linkname = "/etc/passwd" if data == "symlink" else ""
                tf.addfile(info)
    return buf.getvalue()


def items_of(data: bytes, name="export.tar.gz", **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def study() -> list:
    ct = (b.dicom_dir() / "CT_small.dcm").read_bytes()
    return [("study", "dir"), ("study/1.dcm", ct), ("study/scan.png", b.image_bytes("PNG")),
            ("study/notes.txt", b"hello"), ("study/.DS_Store", b"\x00")]


@pytest.mark.parametrize("mode,name", [("w", "e.tar"), ("w:gz", "e.tgz"), ("w:bz2", "e.tar.bz2"), ("w:xz", "e.tar.xz")])
def test_members_are_inputs_in_every_compression(mode, name):
    items = items_of(tar_bytes(study(), mode), name)
    assert [(i.origin, type(i).__name__) for i in items] == [
        (f"{name}:study/1.dcm", "ImageItem"), (f"{name}:study/scan.png", "ImageItem"),
        (f"{name}:study/notes.txt", "ItemError")]
    assert items[0].format == "DICOM" and items[2].skipped


def test_each_member_is_a_unit_of_work(tmp_path):
    path = tmp_path / "e.tar.gz"
    path.write_bytes(tar_bytes(study()))
    assert [t.origin for t in input_tasks([path])] == [f"{path}:study/1.dcm", f"{path}:study/scan.png",
                                                         f"{path}:study/notes.txt"]


def test_single_compressed_files_are_opened_by_content():
    ct = (b.dicom_dir() / "CT_small.dcm").read_bytes()
    for pack, suffix in ((gzip.compress, "gz"), (bz2.compress, "bz2"), (lzma.compress, "xz")):
        item, = items_of(pack(ct), f"scan.dcm.{suffix}")
        assert isinstance(item, ImageItem) and item.format == "DICOM" and item.origin == f"scan.dcm.{suffix}"
    nii = items_of(gzip.compress(b.image_bytes("PNG")), "pic.png.gz")[0]
    assert nii.format == "PNG"


def test_unsafe_names_links_and_nesting():
    inner = tar_bytes([("deep.png", b.image_bytes("PNG"))])
    data = tar_bytes([("../evil.png", b.image_bytes("PNG")), ("/abs.png", b.image_bytes("PNG")),
                      ("link", "symlink"), ("inner.tar.gz", inner),
                      ("a.zip", b.zip_bytes([("z.png", b.image_bytes("PNG"))]))])
    items = items_of(data)
    got = [(i.origin, getattr(i, "error", "image")) for i in items]
    assert got[0][1].startswith("unsafe member name") and got[1][1].startswith("unsafe member name")
    assert got[2] == ("export.tar.gz:link", "a link or special file, not read")
    assert got[3] == ("export.tar.gz:inner.tar.gz:deep.png", "image")
    assert got[4] == ("export.tar.gz:a.zip:z.png", "image")
    nested = items_of(data, max_depth=0)
    assert any("max_depth" in getattr(i, "error", "") for i in nested)


def test_caps_and_bombs():
    pngs = [(f"{k}.png", b.image_bytes("PNG", size=(80, 60))) for k in range(5)]
    items = items_of(tar_bytes(pngs, "w"), "e.tar", zip_max_entries=3)
    assert len([i for i in items if isinstance(i, ImageItem)]) == 3 and "zip_max_entries" in items[-1].error
    items = items_of(tar_bytes([("big.bin", bytes(5000))] + pngs, "w"), "e.tar", max_input_bytes=4000)
    assert "max_input_bytes" in items[0].error and "not read" in items[0].error and len(items) == 6  # plain tar: passed over
    items = items_of(tar_bytes([("big.bin", bytes(5000))] + pngs), max_input_bytes=4000)
    assert len(items) == 1 and "the rest of the archive is not read" in items[0].error  # compressed: stop
    bomb = gzip.compress(bytes(300 * 1024 * 1024))  # 300 MB of zeros, 300 KB compressed
    started = time.monotonic()
    err, = items_of(bomb, "zeros.gz")
    assert "max_input_bytes" in err.error and time.monotonic() - started < 10
    tar_bomb = tar_bytes([("zeros.bin", bytes(300 * 1024 * 1024))])
    started = time.monotonic()
    err, = items_of(tar_bomb)
    assert "max_input_bytes" in err.error and time.monotonic() - started < 10


def test_damaged_archives_give_clear_errors():
    clean = tar_bytes(study())
    for _, data in b.damaged(clean, seed=9, n=60, start=10):
        b.assert_clear(items_of(data))


def test_headers_and_members_passed_over_count_against_the_budget():
    """A GNU long-name header declaring 1 GB, or a hidden 2 GB member, must not be inflated to be passed over."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2", format=tarfile.GNU_FORMAT) as tf:
        info = tarfile.TarInfo("x" * 200)
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
    data = buf.getvalue()
    assert items_of(data, "long.tar.bz2")  # a plain long name still works
    hidden = tar_bytes([(".cache/zeros.bin", bytes(64 * 1024 * 1024)), ("scan.png", b.image_bytes("PNG"))], "w:bz2")
    started = time.monotonic()
    items = items_of(hidden, "x.tar.bz2", max_input_bytes=1 << 20, zip_max_bytes=1 << 20)
    assert time.monotonic() - started < 5 and "the rest of the archive is not read" in items[0].error


def test_nested_archives_share_one_budget():
    inner = tar_bytes([("zeros.bin", bytes(5_000_000))])
    outer = tar_bytes([(f"part{k}.tar.gz", inner) for k in range(3)])
    items = items_of(outer, zip_max_bytes=6_000_000)
    assert sum("cap" in getattr(i, "error", "") for i in items) == 2


def test_concatenated_streams_are_read_whole():
    """pigz -i, pbzip2 and `cat a.gz b.gz` write several compressed streams one after another."""
    data = tar_bytes([(f"img{k}.png", b.image_bytes("PNG", size=(30 + k, 20))) for k in range(4)], "w")
    half = len(data) // 1024 // 2 * 1024
    for pack in (gzip.compress, bz2.compress, lzma.compress):
        items = items_of(pack(data[:half]) + pack(data[half:]), "x.tar.gz")
        assert [i.image.size for i in items] == [(30 + k, 20) for k in range(4)]
    png = b.image_bytes("PNG", size=(300, 200))
    item, = items_of(gzip.compress(png[:1000]) + gzip.compress(png[1000:]), "scan.png.gz")
    assert item.image.size == (300, 200)
