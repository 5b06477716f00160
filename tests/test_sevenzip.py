"""7-Zip archives: members in memory in archive order, caps from the header, encryption, damage, header bombs,
and the inflating thread ending with its reader."""

from __future__ import annotations

import io
import struct
import threading
import time
import tracemalloc
import zlib

import py7zr
import pytest
from PIL import Image

import builders as b
from medimg.sources import Blob, Context, Limits, input_tasks, open_input
import os


def seven(members: dict, **options) -> bytes:
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w", **options) as z:
        for name, data in members.items():
            z.writestr(data, name)
    return out.getvalue()


def items(data: bytes, name: str = "a.7z", **limits):
    return list(Context(Limits(**limits)).open_blob(Blob(name, data, name=name)))


def summary(got):
    return [(i.origin, i.locator, type(i).__name__) for i in got]


def test_members_are_inputs_in_archive_order_with_notes(tmp_path):
    path = tmp_path / "set.7z"
    path.write_bytes(seven({
        "scans/ct.dcm": b.dicom_file("CT_small.dcm").read_bytes(),
        "photo.jpg": b.image_bytes("PNG", (20, 10)),  # a PNG by content, whatever the name
        "pages.tif": b.multipage_tiff([(8, 8), (9, 9)]),
        "readme.txt": b"hello",
        "__MACOSX/._x.png": b"\x00\x05\x16\x07junk",
    }))
    got = list(open_input(path))
    assert summary(got) == [
        (f"{path}:scans/ct.dcm", "", "ImageItem"),
        (f"{path}:photo.jpg", "", "ImageItem"),
        (f"{path}:pages.tif", "page 1", "ImageItem"),
        (f"{path}:pages.tif", "page 2", "ImageItem"),
        (f"{path}:readme.txt", "", "ItemError"),
    ]
    assert got[0].format == "DICOM" and got[1].image.size == (20, 10) and got[-1].skipped
    assert [t.origin for t in input_tasks([str(path)], Limits())] == [i.origin for i in got if i.locator != "page 2"]


def test_member_pixels_come_through_unchanged():
    png = b.image_bytes("PNG", (33, 17))
    got = items(seven({"x.png": png}))
    assert got[0].image.tobytes() == b.pattern((33, 17)).tobytes()


def test_nested_archives_share_the_budget_and_stop_at_max_depth():
    inner = seven({"deep/img.png": b.image_bytes("PNG")})
    outer = seven({"inner.7z": inner, "inner.zip": b.zip_bytes({"z.png": b.image_bytes("PNG")}),
                   "top.png": b.image_bytes("PNG")})
    assert summary(items(outer)) == [("a.7z:inner.7z:deep/img.png", "", "ImageItem"),
                                     ("a.7z:inner.zip:z.png", "", "ImageItem"), ("a.7z:top.png", "", "ImageItem")]
    got = items(outer, max_depth=0)
    assert [i.error for i in got if i.origin == "a.7z:inner.7z"] == ["archive nested deeper than max_depth (0); "
                                                                      "not opened"]
    in_zip = items(b.zip_bytes({"x.7z": inner}), name="a.zip")
    assert summary(in_zip) == [("a.zip:x.7z:deep/img.png", "", "ImageItem")]


def test_a_members_cap_comes_from_the_header_and_the_budget_from_what_is_inflated():
    data = seven({"a.png": b.image_bytes("PNG"), "zeros.bin": b"\0" * 3_000_000, "z.png": b.image_bytes("PNG")})
    assert len(data) < 100_000
    got = items(data, max_input_bytes=1_000_000)
    assert summary(got) == [("a.7z:a.png", "", "ImageItem"), ("a.7z:zeros.bin", "", "ItemError"),
                            ("a.7z:z.png", "", "ImageItem")]
    assert "over the max_input_bytes cap of 1,000,000" in got[1].error
    got = items(data, zip_max_bytes=2_000_000)  # every byte inflated counts, as in a tar
    assert summary(got) == [("a.7z:a.png", "", "ImageItem"), ("a.7z", "", "ItemError")]
    assert got[1].error == "archive inflates past the zip_max_bytes cap of 2,000,000; the rest is not read"
    many = seven({f"m{i}.png": b"x" for i in range(12)})
    got = items(many, zip_max_entries=10)
    assert [i.error for i in got] == ["archive has 12 entries, over the zip_max_entries cap of 10; not opened"]


def test_encrypted_archives_are_notes():
    png = b.image_bytes("PNG")
    listed = seven({"x.png": png}, password="secret")
    hidden = seven({"x.png": png}, password="secret", header_encryption=True)
    assert [i.error for i in items(listed)] == ["encrypted archive; not read"]
    assert [i.error for i in items(hidden)] == ["encrypted archive (its file list too); not read"]


def test_damaged_archives_give_clear_errors_and_keep_what_was_whole():
    members = {f"m{i}.bin": bytes(range(256)) * 400 for i in range(3)}
    members["x.png"] = b.image_bytes("PNG")
    data = seven(members, filters=[{"id": py7zr.FILTER_COPY}])  # stored: damage stays local
    at = data.index(bytes(range(256)) * 4, 150_000)  # inside the second member
    broken = data[:at] + b"\xff" * 64 + data[at + 64:]
    got = items(broken)
    assert [i.origin for i in got] == ["a.7z:m0.bin", "a.7z"]  # the damaged member is never handed on
    assert got[-1].error == "7z archive damaged or cut short: checksum mismatch in m1.bin; the rest is not read"
    assert items(data[:-40])[0].error.startswith("not a readable 7z archive")
    assert items(data[:20])[0].error.startswith("not a readable 7z archive")


def test_an_unknown_compression_method_is_named_as_such():
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w", filters=[{"id": py7zr.FILTER_DEFLATE}]) as z:
        z.set_encoded_header_mode(False)
        z.writestr(b.image_bytes("PNG"), "x.png")
    data = out.getvalue()
    offset, size, _ = struct.unpack("<QQI", data[12:32])
    header = data[32 + offset:32 + offset + size].replace(b"\x04\x01\x08", b"\x04\x01\x7f", 1)  # Deflate → ?
    start = struct.pack("<QQI", offset, size, zlib.crc32(header))
    data = data[:8] + struct.pack("<I", zlib.crc32(start)) + start + data[32:32 + offset] + header
    assert [i.error for i in items(data)] == ["7z archive uses a compression method py7zr cannot inflate; not read"]


def test_a_header_declaring_millions_of_entries_is_refused_at_once():
    """A few header bytes saying 'a trillion files' must not make py7zr allocate a list that long."""
    header = b"\x01\x05" + b"\xff" + struct.pack("<Q", 1 << 40) + b"\x00\x00"
    start = struct.pack("<QQI", 0, len(header), zlib.crc32(header))
    data = py7zr.py7zr.MAGIC_7Z + b"\x00\x04" + struct.pack("<I", zlib.crc32(start)) + start + header
    tracemalloc.start()
    t = time.perf_counter()
    got = items(data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.perf_counter() - t < 5 and peak < 50_000_000
    assert len(got) == 1 and got[0].error.startswith("not a readable 7z archive")


def test_a_header_listing_more_entries_than_py7zr_should_hold_is_refused_before_it_holds_them():
    """Backed by real header bytes, py7zr would build a list of 1.5M entries (770 MB, 40 s) before the
    zip_max_entries check could see it; medimg lowers py7zr's own cap first."""
    def num(v):
        return b"\xff" + struct.pack("<Q", v)

    pad = 2_000_000  # a dummy property, so the header holds a byte for each entry it declares
    header = b"\x01\x05" + num(1_500_000) + b"\x19" + num(pad) + b"\0" * pad + b"\x00\x00"
    start = struct.pack("<QQI", 0, len(header), zlib.crc32(header))
    data = py7zr.py7zr.MAGIC_7Z + b"\x00\x04" + struct.pack("<I", zlib.crc32(start)) + start + header
    t = time.perf_counter()
    got = items(data)
    assert time.perf_counter() - t < 5
    assert [i.error for i in got] == ["not a readable 7z archive: numfiles value 1500000 exceeds limit 65536"]


def test_the_inflating_thread_ends_when_its_reader_stops():
    data = seven({f"m{i}.png": b.image_bytes("PNG", (80, 80)) for i in range(6)})
    stream = Context(Limits()).open_blob(Blob("a.7z", data, name="a.7z"))
    assert next(stream).origin == "a.7z:m0.png"
    assert any(t.name == "medimg-7z" for t in threading.enumerate())
    stream.close()
    assert not any(t.name == "medimg-7z" for t in threading.enumerate())


def test_members_an_earlier_run_did_are_passed_over(tmp_path):
    path = tmp_path / "s.7z"
    path.write_bytes(seven({n: b.image_bytes("PNG", (70, 70)) for n in ("a.png", "b.png", "c.png")}))
    done = {f"{path}:a.png", f"{path}:c.png"}
    got = [i for task in input_tasks([str(path)], Limits(), skip=done.__contains__) for i in task()]
    assert [i.origin for i in got] == [f"{path}:b.png"]


@pytest.mark.parametrize("workers", [1, 3])
def test_classify_reads_a_7z_like_a_folder(tiny_classifier, tmp_path, workers):
    from medimg.pipeline import classify

    path = tmp_path / "s.7z"
    path.write_bytes(seven({f"m{i:02}.png": b.image_bytes("PNG", (70, 70)) for i in range(10)} | {"n.txt": b"x"}))
    records = list(classify([str(path)], classifier=tiny_classifier, workers=workers, batch_size=4))
    assert [r.input for r in records] == [f"{path}:m{i:02}.png" for i in range(10)] + [f"{path}:n.txt"]
    assert all(r.label and not r.error for r in records[:10]) and records[-1].error.startswith("skipped")


@pytest.mark.parametrize("method", ["deflate", "zstd"])
def test_deflate_and_zstandard_blocks_inflate_no_more_than_asked(method):
    """py7zr's own Deflate and Zstandard decoders inflate a whole megabyte of input at once, whatever it makes
    (64 MB of zeros here, 3 GB from a 33 KB archive): medimg's stop at the size asked for."""
    from py7zr.properties import FILTER_DEFLATE, FILTER_ZSTD

    data = seven({"zeros.bin": b"\0" * 64_000_000, "a.png": b.image_bytes("PNG")},
                 filters=[{"id": {"deflate": FILTER_DEFLATE, "zstd": FILTER_ZSTD}[method]}])
    tracemalloc.start()
    got = items(data, max_input_bytes=10_000_000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert summary(got) == [("a.7z:zeros.bin", "", "ItemError"), ("a.7z:a.png", "", "ImageItem")]
    assert peak < 30_000_000, peak


def test_deflate64_whose_decoder_takes_no_bound_is_refused():
    from py7zr.properties import FILTER_DEFLATE64

    data = seven({"a.png": b.image_bytes("PNG")}, filters=[{"id": FILTER_DEFLATE64}])
    assert [i.error for i in items(data)] == ["7z archive compressed with Deflate64, which is not inflated here (its "
                                              "decoder takes no bound); not read"]


def test_ppmd_whose_decoder_crashes_on_damaged_data_is_refused():
    """pyppmd segfaults when a PPMd member's model size has been altered: the whole batch (or server) went."""
    from py7zr.properties import FILTER_PPMD

    data = seven({"a.png": b.image_bytes("PNG")}, filters=[{"id": FILTER_PPMD, "order": 6, "mem": 24}])
    assert [i.error for i in items(data)] == ["7z archive compressed with PPMd, which is not inflated here (its "
                                              "decoder can crash on damaged data); not read"]


def plain_header(members: dict) -> tuple[bytearray, int, int]:
    """An archive with an unencoded header (to edit), and where that header starts and how long it is."""
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w") as z:
        z.set_encoded_header_mode(False)
        for name, data in members.items():
            z.writestr(data, name)
    data = bytearray(out.getvalue())
    offset, size = struct.unpack("<QQ", data[12:28])
    return data, 32 + offset, size


def resealed(data: bytearray, start: int, size: int) -> bytes:
    data[28:32] = struct.pack("<I", zlib.crc32(data[start:start + size]))
    data[8:12] = struct.pack("<I", zlib.crc32(data[12:32]))
    return bytes(data)


def with_attributes(members: dict, first: int) -> bytes:
    """The archive with its first entry's attributes replaced by `first`."""
    data, start, size = plain_header(members)
    was = py7zr.SevenZipFile(io.BytesIO(bytes(data))).header.files_info.files[0]["attributes"]
    at = data.index(struct.pack("<I", was), start)
    data[at:at + 4] = struct.pack("<I", first)
    return resealed(data, start, size)


@pytest.fixture
def unseen(monkeypatch):
    """Bytes py7zr inflates into its NullIO (past our budget and cancel checks), counted."""
    import py7zr.io

    count = [0]
    write = py7zr.io.NullIO.write
    monkeypatch.setattr(py7zr.io.NullIO, "write", lambda self, data: count.__setitem__(0, count[0] + len(data))
                        or write(self, data))
    return count


@pytest.mark.parametrize("attributes", [0x10, 0xC1A48000], ids=["directory", "socket"])
def test_a_directory_or_socket_entry_holding_data_is_charged_when_inflated(attributes, unseen):
    """py7zr does not hand such an entry over, but inflates its data to reach a member after it: the data went
    past the budget uncounted, and the member was read."""
    data = with_attributes({"d": b"\0" * 30_000_000, "x.png": b.image_bytes("PNG")}, attributes)
    assert len(data) < 100_000
    assert py7zr.SevenZipFile(io.BytesIO(data)).files[0].is_directory == (attributes == 0x10)
    got = items(data, zip_max_bytes=10_000_000)
    assert [i.error for i in got] == ["archive inflates past the zip_max_bytes cap of 10,000,000; the rest is not read"]
    assert unseen[0] == 0
    assert summary(items(data, zip_max_bytes=50_000_000)) == [("a.7z:x.png", "", "ImageItem")]


def test_an_unsafe_names_data_is_charged_as_it_is_inflated(unseen):
    """It was charged its declared size, and then inflated whole (out of reach of the budget and of a cancel)."""
    data, start, size = plain_header({"ab/evil": b"\0" * 30_000_000, "x.png": b.image_bytes("PNG")})
    at = data.index("ab/evil".encode("utf-16-le"), start)
    data[at:at + 4] = "..".encode("utf-16-le")
    data = resealed(data, start, size)
    got = items(data, zip_max_bytes=10_000_000)
    assert summary(got) == [("a.7z:../evil", "", "ItemError"), ("a.7z", "", "ItemError")]
    assert "zip_max_bytes" in got[-1].error and unseen[0] == 0


def test_a_second_member_of_a_name_is_not_taken_for_another_member():
    """py7zr names the second x.png "x.png_0": it came out as the real x.png_0, whose pixels were lost. The
    second x.png is read too, as `x (2).png` (a zip's rule for a name given twice)."""
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w") as z:
        for colour, name in (("red", "x.png"), ("green", "x.png"), ("blue", "x.png_0")):
            png = io.BytesIO()
            Image.new("RGB", (4, 4), colour).save(png, "PNG")
            z.writestr(png.getvalue(), name)
    got = items(out.getvalue())
    assert [(i.origin, i.image.getpixel((0, 0))) for i in got] == [("a.7z:x.png", (255, 0, 0)),
                                                                   ("a.7z:x (2).png", (0, 128, 0)),
                                                                   ("a.7z:x.png_0", (0, 0, 255))]


def test_an_entry_that_is_both_a_directory_and_a_file_is_a_clear_error():
    data = with_attributes({"d": b"hello", "x.png": b.image_bytes("PNG")}, 0x81808030)
    (got,) = items(data)
    assert got.origin == "a.7z" and got.error.startswith("not a readable 7z archive: ")


def test_members_passed_over_in_a_solid_block_count_against_the_budget():
    """To reach a.png py7zr must inflate what comes before it: a member over its cap is inflated and charged,
    as in a tar, so a small archive cannot cost gigabytes of work."""
    zeros = b"\0" * 30_000_000
    data = seven({"big.bin": zeros, "a.png": b.image_bytes("PNG")})
    assert len(data) < 100_000
    got = items(data, max_input_bytes=10_000_000, zip_max_bytes=20_000_000)
    assert summary(got) == [("a.7z:big.bin", "", "ItemError"), ("a.7z", "", "ItemError")]
    assert got[-1].error == "archive inflates past the zip_max_bytes cap of 20,000,000; the rest is not read"
    out = io.BytesIO()  # the same name twice: the second, 30 MB, is over its cap, passed over but charged
    with py7zr.SevenZipFile(out, "w") as z:
        z.writestr(b.image_bytes("PNG"), "a.png")
        z.writestr(zeros, "a.png")
        z.writestr(b.image_bytes("PNG"), "b.png")
    got = items(out.getvalue(), max_input_bytes=10_000_000, zip_max_bytes=20_000_000)
    assert summary(got) == [("a.7z:a.png", "", "ImageItem"), ("a.7z:a (2).png", "", "ItemError"),
                            ("a.7z", "", "ItemError")]


def test_a_nested_archive_is_read_before_the_next_member_is_inflated():
    """The budget is spent in archive order, a nested archive's members before its outer archive's next one,
    as in a zip: the result never depends on which thread got there first."""
    six = b"\0" * 6_000_000
    inner = seven({"m.bin": six, "i.png": b.image_bytes("PNG")})
    outer = seven({"inner.7z": inner, "o.bin": six, "o.png": b.image_bytes("PNG")})
    for _ in range(3):
        got = items(outer, zip_max_bytes=10_000_000)
        assert summary(got) == [("a.7z:inner.7z:m.bin", "", "ItemError"), ("a.7z:inner.7z:i.png", "", "ImageItem"),
                                ("a.7z", "", "ItemError")]


def test_a_cancelled_run_leaves_no_missing_member_notes():
    data = seven({f"m{i}.png": b.image_bytes("PNG", (80, 80)) for i in range(6)})
    cancel = threading.Event()
    ctx = Context(Limits())
    ctx.cancel = cancel
    stream = ctx.open_blob(Blob("a.7z", data, name="a.7z"))
    assert next(stream).origin == "a.7z:m0.png"
    cancel.set()
    assert list(stream) == []


def test_a_name_that_is_not_utf16_is_shown_with_a_replacement_character():
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w") as z:
        z.set_encoded_header_mode(False)
        z.writestr(b.image_bytes("PNG"), "ab.png")
    data = out.getvalue()
    offset, size, _ = struct.unpack("<QQI", data[12:32])
    header = data[32 + offset:32 + offset + size].replace("ab.png".encode("utf-16-le"),
                                                          b"\x00\xd8" + "b.png".encode("utf-16-le"), 1)
    start = struct.pack("<QQI", offset, size, zlib.crc32(header))
    data = data[:8] + struct.pack("<I", zlib.crc32(start)) + start + data[32:32 + offset] + header
    assert summary(items(data)) == [("a.7z:\ufffdb.png", "", "ImageItem")]


def test_a_decoders_internal_failure_is_named_plainly():
    from medimg.sources.sevenzip import _failed

    text = _failed(SystemError("<method 'decode' of '_ppmd.Ppmd7Decoder' objects> returned NULL"))
    assert text == "7z archive damaged or cut short: its compressed data could not be inflated; the rest is not read"


def test_an_archive_listing_more_than_zip_max_entries_is_not_opened():
    data = seven({f"m{i}.png": b.image_bytes("PNG", (80, 80)) for i in range(5)})
    (err,) = items(data, zip_max_entries=4)
    assert err.error == "archive has 5 entries, over the zip_max_entries cap of 4; not opened"
    assert [i.origin for i in items(data, zip_max_entries=5)] == [f"a.7z:m{i}.png" for i in range(5)]


def test_a_drive_letter_name_is_unsafe():
    """C:/evil.png or C:evil.png names a place on a Windows drive: refused like an absolute path, as in a zip."""
    got = items(seven({"C:/evil.png": b.image_bytes("PNG"), "D:evil.png": b.image_bytes("PNG"),
                       "fine.png": b.image_bytes("PNG")}))
    assert [(i.origin, "unsafe member name" in getattr(i, "error", "")) for i in got] == [
        ("a.7z:C:/evil.png", True), ("a.7z:D:evil.png", True), ("a.7z:fine.png", False)], summary(got)


def test_a_symlink_member_is_a_note_and_its_target_is_not_read(tmp_path):
    """A symbolic link in a 7z holds its target's path as data: it is a skipped note, never read as a member."""
    os.symlink("/etc/passwd", tmp_path / "link")
    (tmp_path / "x.png").write_bytes(b.image_bytes("PNG"))
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w") as z:
        z.write(tmp_path / "link", "link")
        z.write(tmp_path / "x.png", "x.png")
    got = items(out.getvalue())
    assert summary(got) == [("a.7z:link", "", "ItemError"), ("a.7z:x.png", "", "ImageItem")], summary(got)
    assert got[0].error == "a link, not read" and got[0].skipped
