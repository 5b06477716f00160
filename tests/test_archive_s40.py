"""Archives (s40): zip symlinks, zips without a readable central directory, entries shared by nested archives,
drive-letter names in a tar, Zstandard tarballs and files."""

from __future__ import annotations

import io
import stat
import zipfile

import py7zr
import pytest

import builders as b
from medimg.sources import Blob, Context, ImageItem, ItemError, Limits
from medimg.sources.base import TREE_ENTRIES

PNG = b.image_bytes("PNG", (80, 60))


def items(data: bytes, name: str = "a.zip", **limits):
    return list(Context(Limits(**limits)).open_blob(Blob(name, data, name=name)))


def rows(got):
    return [(i.origin, "image" if isinstance(i, ImageItem) else "note" if i.skipped else "error") for i in got]


def errors(got):
    return [i.error for i in got if isinstance(i, ItemError) and not i.skipped]


def directory_at(data: bytes) -> int:
    return data.index(b"PK\x01\x02")


class _Pipe(io.RawIOBase):
    """An unseekable file: zipfile then writes each member's sizes after its data (a data descriptor)."""

    def __init__(self):
        self.data = bytearray()

    def writable(self):
        return True

    def write(self, chunk):
        self.data += chunk
        return len(chunk)


def streamed_zip(members: dict, compression: int) -> bytes:
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression) as zf:
        for name, data in members.items():
            with zf.open(name, "w") as f:
                f.write(data)
    return bytes(pipe.data)


# ---------------------------------------------------------------- zip symlinks


def test_a_zipped_symlink_is_a_note_not_its_target_path_read_as_content():
    """`zip -y` (and macOS's Archive Utility) keep a symlink as a member holding the path it points to: it was
    read as content, `link.png` an error (\"named PNG but not readable\"), where a tar or 7z notes the link."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("d/g.png", PNG)
        for name, target in (("d/link.png", b"g.png"), ("d/pw", b"/etc/passwd")):
            info = zipfile.ZipInfo(name)
            info.create_system, info.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
        info = zipfile.ZipInfo("d/plain.png")  # a Unix regular file's mode, and a zip made elsewhere (no mode)
        info.create_system, info.external_attr = 3, (stat.S_IFREG | 0o644) << 16
        zf.writestr(info, PNG)
        zf.writestr(zipfile.ZipInfo("d/windows.png"), PNG)
    got = items(buf.getvalue())
    assert rows(got) == [("a.zip:d/g.png", "image"), ("a.zip:d/link.png", "note"), ("a.zip:d/pw", "note"),
                         ("a.zip:d/plain.png", "image"), ("a.zip:d/windows.png", "image")]
    assert got[1].error == "a link or special file, not read"


# ---------------------------------------------------------------- no readable central directory


def test_a_zip_cut_short_gives_the_members_before_the_cut():
    """A download cut short has no central directory: its whole content was one error; now the members whose
    bytes are all there are read from their own headers, and one error names the member it ends inside."""
    whole = b.zip_bytes({"a.png": PNG, "b.png": b.image_bytes("PNG", (70, 50), seed=1),
                         "c.png": b.image_bytes("PNG", (90, 40), seed=2)})
    cut = whole[:whole.index(b"c.png") + 200]
    got = items(cut)
    assert rows(got) == [("a.zip", "error"), ("a.zip:a.png", "image"), ("a.zip:b.png", "image")]
    assert "without a readable central directory" in got[0].error and "2 members" in got[0].error
    assert "ends inside member 'c.png'" in got[0].error
    assert got[2].image.size == (70, 50)


def test_a_zip_whose_directory_is_garbled_is_read_from_its_local_headers():
    whole = b.zip_bytes({"a.png": PNG, "sub/b.dcm": b.bare_dicom()})
    at = directory_at(whole)
    garbled = whole[:at] + b"\xff" * (len(whole) - at - 22) + whole[-22:]  # the end record kept
    assert rows(items(garbled)) == [("a.zip", "error"), ("a.zip:a.png", "image"), ("a.zip:sub/b.dcm", "image")]


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_a_streamed_zip_without_its_directory_finds_each_members_end(compression):
    """Members whose sizes come after their data (`zip -` from a pipe, Java's ZipOutputStream): a Deflate one
    ends where its stream does, a stored one at the descriptor giving its own length."""
    data = streamed_zip({"a.png": PNG, "b.png": PNG, "c.txt": b"PK\x07\x08 not a descriptor"}, compression)
    got = items(data[:directory_at(data)])
    assert rows(got) == [("a.zip", "error"), ("a.zip:a.png", "image"), ("a.zip:b.png", "image"),
                         ("a.zip:c.txt", "note")]
    cut = data[:data.index(b"b.png") + 300]  # inside the second member
    assert rows(items(cut)) == [("a.zip", "error"), ("a.zip:a.png", "image")]


def test_finding_members_without_a_directory_keeps_to_the_caps():
    many = b.zip_bytes({f"{i}.txt": b"x" for i in range(30)})
    got = items(many[:directory_at(many)], zip_max_entries=20)
    assert "over the zip_max_entries cap of 20; not opened" in errors(got)[-1]
    assert not any(isinstance(i, ImageItem) for i in got)
    bomb = streamed_zip({"zeros.bin": bytes(30 << 20), "a.png": PNG}, zipfile.ZIP_DEFLATED)
    got = items(bomb[:directory_at(bomb)], zip_max_bytes=10 << 20)
    assert rows(got) == [("a.zip", "error")]
    assert "finding the end of member 'zeros.bin' inflates past the zip_max_bytes cap" in got[0].error


def test_an_encrypted_member_found_by_its_header_is_still_an_encrypted_member():
    whole = b.mark_encrypted(b.zip_bytes({"a.png": PNG}))
    assert errors(items(whole[:directory_at(whole)]))[-1] == "encrypted member; not read"


# ---------------------------------------------------------------- entries shared by nested archives


def test_archives_in_an_archive_share_its_entry_cap():
    """Each nested archive could list zip_max_entries again: 100 zips of 100 zips of 100 files (242 KB) gave a
    million rows in 155 s. An archive and those in it now list TREE_ENTRIES × zip_max_entries together."""
    assert TREE_ENTRIES == 10
    inner = b.zip_bytes({f"{i}.png": PNG for i in range(4)})
    middle = b.zip_bytes({f"{k}.zip": inner for k in range(5)})
    outer = b.zip_bytes({f"m{k}.zip": middle for k in range(5)})
    # 50 in all: the outer 5 (45 left), m0 5 + 5 × 4 (20 left), m1 5 + 3 × 4 (3 left); then none fits
    got = items(outer, zip_max_entries=5)
    assert sum(isinstance(i, ImageItem) for i in got) == 20 + 12
    refused = [i for i in got if isinstance(i, ItemError)]
    assert [i.origin for i in refused] == ["a.zip:m1.zip:3.zip", "a.zip:m1.zip:4.zip", "a.zip:m2.zip",
                                           "a.zip:m3.zip", "a.zip:m4.zip"]
    assert "4 entries, over the 3 left of the 50 (10 × the zip_max_entries cap) that an archive and the " \
           "archives in it may list together" in refused[0].error
    assert sum(isinstance(i, ImageItem) for i in items(outer, zip_max_entries=16)) == 100


def test_tars_and_7z_files_in_an_archive_share_its_entry_cap():
    tar = b.tar_bytes({f"{i}.png": PNG for i in range(4)})
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as z:
        for i in range(4):
            z.writestr(PNG, f"{i}.png")
    middle = b.zip_bytes({"a.tar": tar, "b.7z": buf.getvalue(), "c.tar": tar})
    outer = b.zip_bytes({f"m{k}.zip": middle for k in range(4)})
    # 40 in all: the outer 4, m0 and m1 3 + 12 each (6 left), m2 3 and its a.tar 3 of 4; then nothing
    got = items(outer, zip_max_entries=4)
    assert sum(isinstance(i, ImageItem) for i in got) == 12 + 12 + 3
    bad = {i.origin: i.error for i in got if isinstance(i, ItemError)}
    assert "the rest of the archive is not read" in bad["a.zip:m2.zip:a.tar"]
    assert "over the 0 left" in bad["a.zip:m2.zip:b.7z"]


def test_office_files_in_a_zip_take_only_the_parts_they_read():
    """A Word file is a zip of many parts; only its pictures count against the shared cap, so a zip of
    documents is not refused for their XML parts."""
    parts = {"[Content_Types].xml": b"<Types/>", "_rels/.rels": b"<Relationships/>",
             "word/document.xml": b"<w:document/>", "word/styles.xml": b"<w:styles/>",
             "word/settings.xml": b"<w:settings/>", "word/media/image1.png": PNG}
    folder = b.zip_bytes({f"report{k}.docx": b.zip_bytes(parts) for k in range(4)})
    docs = b.zip_bytes({f"ward{k}.zip": folder for k in range(4)})
    # 4 + 4 × (4 documents + 4 pictures) = 36 of 60; 6 parts a document would be 116
    got = items(docs, zip_max_entries=6)
    assert sum(isinstance(i, ImageItem) for i in got) == 16 and not errors(got)


# ---------------------------------------------------------------- tar names, Zstandard


def test_a_tar_member_named_with_a_drive_letter_is_unsafe_as_in_a_zip_or_7z():
    got = items(b.tar_bytes({"C:/win/a.png": PNG, "ok.png": PNG}), name="a.tar")
    assert rows(got) == [("a.tar:C:/win/a.png", "error"), ("a.tar:ok.png", "image")]
    assert rows(items(b.zip_bytes({"C:/win/a.png": PNG}))) == [("a.zip:C:/win/a.png", "error")]


def zstd():
    try:
        from compression import zstd as module
    except ImportError:
        from backports import zstd as module
    return module


def test_zstandard_tarballs_and_files_are_read():
    """`tar --zstd` (.tar.zst) and a single .zst file were unrecognised content."""
    tar = b.tar_bytes({"scans/a.png": PNG, "scans/b.dcm": b.bare_dicom()})
    got = items(zstd().compress(tar), name="set.tar.zst")
    assert rows(got) == [("set.tar.zst:scans/a.png", "image"), ("set.tar.zst:scans/b.dcm", "image")]
    two_frames = zstd().compress(PNG[:100]) + zstd().compress(PNG[100:])  # as `cat` makes them
    got = items(two_frames, name="a.png.zst")
    assert rows(got) == [("a.png.zst", "image")] and got[0].image.size == (80, 60)


def test_a_zstandard_bomb_stops_at_the_cap_and_a_cut_one_gives_what_it_holds():
    bomb = zstd().compress(bytes(40 << 20))
    assert "inflates past the max_input_bytes cap" in errors(items(bomb, name="z.bin.zst", max_input_bytes=8 << 20))[0]
    tar = b.tar_bytes({"a.png": PNG, "b.png": b.image_bytes("PNG", (70, 50), seed=1)})
    frames = b"".join(zstd().compress(tar[i:i + 4096]) for i in range(0, len(tar), 4096))
    got = items(frames[:len(frames) * 3 // 4], name="a.tar.zst")
    assert rows(got)[0] == ("a.tar.zst:a.png", "image") and "cut short" in got[-1].error


def test_a_cut_tarball_gives_the_member_that_ends_just_before_the_cut():
    """tarfile reads 10 KB at a time: a read the cut fell in raised and dropped the bytes before the cut, so a
    member ending in the last 10 KB before it was lost though all its bytes were there."""
    import gzip

    tar = b.tar_bytes({"a.png": PNG, "b.png": b.image_bytes("PNG", (70, 50), seed=1)})
    tgz = gzip.compress(tar, compresslevel=0, mtime=0)  # stored blocks: the cut lands where it is asked to
    cut = tgz[:tgz.index(b"b.png") + 600]  # a.png whole, b.png's header and a little of its data
    got = items(cut, name="a.tgz")
    assert rows(got) == [("a.tgz:a.png", "image"), ("a.tgz", "error")]
    assert "cut short or damaged after 1 entries" in got[-1].error


def test_a_header_in_a_zip_cut_short_reads_its_data_file_from_the_members_found():
    header = b"ObjectType = Image\nNDims = 2\nDimSize = 64 48\nElementType = MET_UCHAR\nElementDataFile = d.raw\n"
    whole = b.zip_bytes([("d.raw", bytes(range(256)) * 12), ("h.mhd", header), ("c.png", PNG)])
    got = items(whole[:whole.index(b"c.png") + 100])
    assert rows(got) == [("a.zip", "error"), ("a.zip:d.raw", "note"), ("a.zip:h.mhd", "image")]
    assert got[2].image.size == (64, 48)


def test_a_zstandard_frame_needing_a_window_over_128_mb_is_refused_by_name():
    frame = b"\x28\xb5\x2f\xfd" + b"\x00" + bytes([20 << 3]) + b"\x09\x00\x00" + b"x"  # a 1 GB window, one raw byte
    got = items(frame, name="big.bin.zst")
    assert errors(got) == ["compressed file needs a Zstandard window over 128 MB to inflate (zstd --long=28 and up); "
                           "not read"]
