"""Session 48's archive review: members named inside compressed archives (`set.zip.gz:b.png`)."""

import bz2
import gzip
import io
import tarfile
import zipfile
import zlib

import pytest

from builders import image_bytes, zip_bytes
from medimg.sources import Blob, ImageItem, ItemError, open_input




def test_a_member_of_a_compressed_zip_is_given_once_without_a_not_found_error(tmp_path):
    """A zip gzipped whole (`set.zip.gz`) is read as the zip; one of its members named as its rows name it gave
    that member and then an error that the archive holds no such member (a folder in it: its members, then the
    same error), since the content of a compressed file was taken for a note about the archive."""
    png = image_bytes("PNG", (64, 64))
    zipped = zip_bytes({"d/a.png": png, "b.png": png}, zipfile.ZIP_STORED)
    (tmp_path / "set.zip.gz").write_bytes(gzip.compress(zipped))
    (tmp_path / "set.zip.bz2").write_bytes(bz2.compress(zipped))
    for name in ("set.zip.gz", "set.zip.bz2"):
        path = tmp_path / name
        items = list(open_input(f"{path}:b.png"))
        assert [(type(i), i.origin) for i in items] == [(ImageItem, f"{path}:b.png")], items
        items = list(open_input(f"{path}:d"))
        assert [(type(i), i.origin) for i in items] == [(ImageItem, f"{path}:d/a.png")], items
        (item,) = open_input(f"{path}:c.png")  # not there: the error alone
        assert isinstance(item, ItemError) and item.origin == f"{path}:c.png" and "no member 'c.png'" in item.error


def test_a_member_named_in_a_compressed_single_file_is_only_the_error(tmp_path):
    """`scan.png.gz:x` (no members: a compressed picture) gave the picture's row as well as the error."""
    path = tmp_path / "scan.png.gz"
    path.write_bytes(gzip.compress(image_bytes("PNG", (64, 64))))
    (item,) = open_input(f"{path}:x")
    assert isinstance(item, ItemError) and item.origin == f"{path}:x" and "no member 'x'" in item.error, item


def _zeros_gz(size: int) -> bytes:
    return gzip.compress(b"\0" * size, compresslevel=9)


def test_compressed_files_in_an_archive_count_what_they_inflate_past_their_cap():
    """A .gz member inflating past max_input_bytes is refused, but what it inflated was not charged to the archive:
    a zip of such members (or one member listed many times by its directory) inflated max_input_bytes for each,
    past zip_max_bytes many times over (20 of 210 MB each: 24 s). Now the archive's cap stops it."""
    gz = _zeros_gz(3 << 20)  # 3 MB of zeros: over a 1 MB max_input_bytes
    zipped = zip_bytes({f"b{i}.png.gz": gz for i in range(20)}, zipfile.ZIP_STORED)
    limits = {"max_input_bytes": 1 << 20, "zip_max_bytes": 4 << 20}
    items = list(open_input(Blob("bombs.zip", zipped, name="bombs.zip"), limits))
    assert 3 <= len(items) <= 6, [i.error for i in items]  # about zip_max_bytes / max_input_bytes of them
    assert all("max_input_bytes cap" in i.error for i in items[:3]), items
    assert "zip_max_bytes cap of 4,194,304" in items[-1].error and "the rest" in items[-1].error, items[-1]
    assert "zip_max_bytes cap of 4,194,304" in items[-2].error, items[-2]  # the cap, not what was left of it
    # a corrupt one counts what it gave before the damage too; a small good one is read as before
    good = zip_bytes({"a.png.gz": gzip.compress(image_bytes("PNG", (64, 64))), "b.png": image_bytes("PNG", (64, 64))},
                     zipfile.ZIP_STORED)
    assert all(isinstance(i, ImageItem) for i in open_input(Blob("ok.zip", good, name="ok.zip"), limits))


def _tar_of_four() -> tuple[bytes, list[int]]:
    png = image_bytes("PNG", (64, 64))
    out, starts = io.BytesIO(), []
    with tarfile.open(fileobj=out, mode="w") as tf:
        for n in range(4):
            info = tarfile.TarInfo(f"{n}.png")
            info.size = len(png)
            starts.append(out.tell())
            tf.addfile(info, io.BytesIO(png))
    return out.getvalue(), starts


def _gzip_cut(data: bytes) -> bytes:
    """`data` gzipped as a download cut off there would be: a stream with no end."""
    co = zlib.compressobj(6, zlib.DEFLATED, 31)
    return co.compress(data) + co.flush(zlib.Z_SYNC_FLUSH)


def test_a_plain_tar_cut_at_or_inside_a_header_says_so():
    """A tar cut where a member's header starts (or inside it) gave the members before, and not a word that the
    rest is missing: tarfile ends quietly there, though a tar ends with blocks of zeros."""
    data, starts = _tar_of_four()
    for cut in (starts[3], starts[3] + 100):
        items = list(open_input(Blob("x.tar", data[:cut], name="x.tar")))
        assert [i.origin for i in items if isinstance(i, ImageItem)] == [f"x.tar:{n}.png" for n in range(3)]
        (error,) = [i for i in items if isinstance(i, ItemError)]
        assert error.origin == "x.tar" and not error.skipped, error
        assert error.error.startswith("tar archive cut short or damaged after 3 entries: it ends at byte "
                                      f"{cut:,} without the blocks of zeros a tar ends with"), error
    junk = data[:starts[3]] + b"\x07" * 2048  # not a header: damage, said the same way
    (error,) = [i for i in open_input(Blob("x.tar", junk, name="x.tar")) if isinstance(i, ItemError)]
    assert f"not a tar header at byte {starts[3]:,}" in error.error, error
    zeros = starts[3] + 512 + -(-len(image_bytes("PNG", (64, 64))) // 512) * 512  # the last member's end: the zeros
    assert len(data) - zeros >= 1024 and not data[zeros:].strip(b"\0")
    for whole in (data, data[:zeros + 100]):  # whole, or cut in its end's zeros: all read, no error
        items = list(open_input(Blob("x.tar", whole, name="x.tar")))
        assert all(isinstance(i, ImageItem) for i in items) and len(items) == 4, items


def test_a_cut_compressed_tar_counts_the_members_read_and_names_the_one_it_ends_inside():
    """Cut in a header the count was one short ("after 2 entries" with 3 read); cut inside a member it did not say
    which, as a zip's error does."""
    data, starts = _tar_of_four()
    items = list(open_input(Blob("x.tar.gz", _gzip_cut(data[:starts[3] + 100]), name="x.tar.gz")))
    assert len([i for i in items if isinstance(i, ImageItem)]) == 3
    assert items[-1].error.startswith("tar archive cut short or damaged after 3 entries: "), items[-1]
    assert "inside member" not in items[-1].error
    items = list(open_input(Blob("x.tar.gz", _gzip_cut(data[:starts[2] + 1000]), name="x.tar.gz")))
    assert len([i for i in items if isinstance(i, ImageItem)]) == 2
    assert items[-1].error.startswith("tar archive cut short or damaged after 2 entries: "), items[-1]
    assert items[-1].error.endswith("; it ends inside member 2.png, not read"), items[-1]


def test_a_cut_7z_says_it_is_cut_short():
    """py7zr's "next header size 23 exceeds the archive size" was all a 7z cut short said."""
    py7zr = pytest.importorskip("py7zr")
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w") as z:
        z.writestr(image_bytes("PNG", (64, 64)), "a.png")
    data = out.getvalue()
    for cut in (40, len(data) // 2, len(data) - 1):
        (item,) = open_input(Blob("x.7z", data[:cut], name="x.7z"))
        assert item.error == (f"not a readable 7z archive: cut short: {cut:,} bytes of the {len(data):,} its start says "
                              "it has, and a 7z keeps the list of its members at its end, so none can be read (download "
                              "it again?)"), item
    (item,) = open_input(Blob("x.7z.001", data[:40], name="x.7z.001"))  # a split archive's first part: join them
    assert "cut short" in item.error and "download" not in item.error and "split archive" in item.error, item
    (item,) = open_input(Blob("x.7z", data))
    assert isinstance(item, ImageItem)


def test_an_unsafe_tar_or_7z_member_is_named_as_it_is_not_as_the_safe_member_beside_it():
    """A tar's or 7z's `/abs.png` was named `x.tar:abs.png`, the name of the member `abs.png` beside it (two rows of
    one input name, and `x.tar:abs.png` given alone answered with the refusal); a zip names it `x.zip:/abs.png`."""
    png = image_bytes("PNG", (64, 64))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        for name in ("/abs.png", "abs.png", "d/../../up.png"):
            info = tarfile.TarInfo(name)
            info.size = len(png)
            tf.addfile(info, io.BytesIO(png))
    got = [(i.origin, type(i)) for i in open_input(Blob("x.tar", out.getvalue(), name="x.tar"))]
    assert got == [("x.tar:/abs.png", ItemError), ("x.tar:abs.png", ImageItem), ("x.tar:d/../../up.png", ItemError)]
    py7zr = pytest.importorskip("py7zr")
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w") as z:
        z.writestr(png, "\\abs.png")  # py7zr writes no name starting with a slash; a backslash is (py7zr lists it as /)
        z.writestr(png, "abs.png")
    got = [(i.origin, type(i)) for i in open_input(Blob("x.7z", out.getvalue(), name="x.7z"))]
    assert got == [("x.7z:/abs.png", ItemError), ("x.7z:abs.png", ImageItem)], got


def test_a_zip_cut_inside_a_member_header_says_so_plainly():
    """Cut inside a local header, a zip said "it ends inside member a member's header, not read", and "1 member
    found by their own headers"."""
    png = image_bytes("PNG", (64, 64))
    data = zip_bytes({"a.png": png, "b.png": png}, zipfile.ZIP_STORED)
    second = data.find(b"PK\x03\x04", 4)
    (note, item) = open_input(Blob("s.zip", data[:second + 10], name="s.zip"))
    assert note.error.endswith("(File is not a zip file; cut short?): 1 member found by its own header; it ends "
                               "inside the header of the member after them"), note
    assert isinstance(item, ImageItem) and item.origin == "s.zip:a.png"
    (note,) = open_input(Blob("s.zip", data[:10], name="s.zip"))
    assert note.error.endswith("; it ends inside its first member's header"), note
    note = next(open_input(Blob("s.zip", data[:second + 40], name="s.zip")))  # in b.png's data: named, as before
    assert "1 member found by its own header; it ends inside member 'b.png', not read" in note.error, note


def test_archive_formats_not_read_are_named_with_what_unpacks_them(tmp_path):
    """A RAR (or cpio, LZ4, lzip, .Z, .lzma) file was "unrecognised content" given alone, and in a folder or zip
    the note of a file that is no image: a RAR of scans passed over without a word on what it is."""
    cases = {"scans.rar": (b"Rar!\x1a\x07\x01\x00" + bytes(200), "RAR archive", "unrar x"),
             "old.rar": (b"Rar!\x1a\x07\x00" + bytes(200), "RAR archive", "unrar x"),
             "set.cpio": (b"070701" + b"0" * 200, "cpio archive", "cpio -idv"),
             "a.png.lz4": (b"\x04\x22\x4d\x18" + bytes(200), "LZ4 file", "lz4 -d"),
             "a.tar.lz": (b"LZIP\x01" + bytes(200), "lzip file", "lzip -d"),
             "a.png.Z": (b"\x1f\x9d\x90" + bytes(200), "Unix compress (.Z) file", "uncompress"),
             "a.png.lzma": (b"\x5d\x00\x00\x80\x00" + bytes(200), "LZMA (.lzma) file", "xz -d")}
    for name, (data, kind, unpack) in cases.items():
        (item,) = open_input(Blob(name, data, name=name))
        assert isinstance(item, ItemError) and not item.skipped and item.error.startswith(f"{kind}: "), item
        assert unpack in item.error, item
    zipped = zip_bytes({"in/scans.rar": cases["scans.rar"][0]}, zipfile.ZIP_STORED)
    (item,) = open_input(Blob("x.zip", zipped, name="x.zip"))
    assert item.origin == "x.zip:in/scans.rar" and not item.skipped and item.error.startswith("RAR archive: "), item
    (tmp_path / "scans.rar").write_bytes(cases["scans.rar"][0])
    (item,) = open_input(tmp_path)
    assert not item.skipped and item.error.startswith("RAR archive: "), item
    for name, data in (("x.bin", b"\x1f\x9d" + bytes(200)), ("x.dat", b"\x5d" + bytes(200))):  # 1-2 byte magic alone
        (item,) = open_input(Blob(name, data, name=name))
        assert item.error.startswith("unrecognised content"), item


def test_inflating_holds_the_output_about_once():
    """bzip2, xz and Zstandard gave a whole read's worth in one piece, copied into the output: twice the bytes at
    once (a bomb refused at max_input_bytes peaked at 545 MB, 350 MB now)."""
    import lzma
    import tracemalloc

    from medimg.sources.base import Budget
    from medimg.sources.inflate import Inflated

    size = 24 << 20
    for packed in (bz2.compress(bytes(size)), lzma.compress(bytes(size)), gzip.compress(bytes(size))):
        tracemalloc.start()
        try:
            out = Inflated(packed, Budget(size + 1)).read()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert len(out) == size and peak < size * 1.3 + (10 << 20), (packed[:3], peak)  # + xz's 8 MB dictionary
        del out
