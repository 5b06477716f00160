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


def huge_size_tar(pax: bool) -> bytes:
    """A plain tar whose first member declares 2**63-1 bytes (base-256 size field), or 10**20 through a pax header."""
    data = bytearray(tar_bytes([("a.png", b.image_bytes("PNG")), ("b.png", b.image_bytes("PNG"))], "w"))
    if pax:
        body = b"30 size=99999999999999999999\n"
        info = tarfile.TarInfo("././@PaxHeader")
        info.type, info.size = tarfile.XHDTYPE, len(body)
        return info.tobuf(format=tarfile.USTAR_FORMAT)[:512] + body.ljust(512, b"\0") + bytes(data)
    data[124:136] = b"\x80\x00\x00\x00" + (2**63 - 1).to_bytes(8, "big")
    data[148:156] = b" " * 8
    data[148:156] = ("%06o\0 " % sum(data[:512])).encode()
    return bytes(data)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pax", [False, True])
def test_a_member_running_past_the_end_of_a_plain_tar_ends_the_reading(pax):
    """tarfile would pass over it one 10 KB block at a time, for ever."""
    err, = items_of(huge_size_tar(pax), "e.tar")
    assert "past the end of the archive" in err.error and "the rest of the archive is not read" in err.error


def streams(pack, n: int, content: bytes) -> bytes:
    return pack(b"") * n + pack(content)


def test_many_empty_compressed_streams_are_refused():
    """Millions of empty gzip members (20 bytes each) took a minute to walk; as inflate.gunzip does for NIfTI, over 1,024
    streams holding under 1 KB each are refused."""
    png = b.image_bytes("PNG")
    started = time.monotonic()
    err, = items_of(streams(lambda d: gzip.compress(d, mtime=0), 200_000, png), "scan.png.gz")
    assert "over 1,024 compressed streams" in err.error and time.monotonic() - started < 5
    for pack in (bz2.compress, lzma.compress):
        err, = items_of(streams(pack, 2000, png), "scan.png.bz2")
        assert "over 1,024 compressed streams" in err.error
    err, = items_of(streams(gzip.compress, 2000, tar_bytes([("scan.png", png)], "w")))
    assert "over 1,024 compressed streams" in err.error
    data = tar_bytes([("zeros.bin", bytes(4 << 20)), ("scan.png", png)], "w")  # 2,048 streams of 2 KB: fine
    items = items_of(b"".join(gzip.compress(data[k:k + 2048]) for k in range(0, len(data), 2048)))
    assert [type(i).__name__ for i in items] == ["ItemError", "ImageItem"]


def pax_header(size: int) -> bytes:
    """A pax header of `size` bytes of `6 a=b` records: tarfile parses them one by one in Python."""
    body = b"6 a=b\n" * (size // 6)
    info = tarfile.TarInfo("././@PaxHeader")
    info.type, info.size = tarfile.XHDTYPE, len(body)
    return info.tobuf(format=tarfile.USTAR_FORMAT)[:512] + body + bytes(-len(body) % 512)


def test_oversized_pax_and_long_name_headers_are_refused(monkeypatch):
    from medimg.sources import tar

    info, image = tarfile.TarInfo("a.png"), b.image_bytes("PNG")
    info.size = len(image)
    member = info.tobuf(format=tarfile.USTAR_FORMAT) + image + bytes(-len(image) % 512)
    png = member + bytes(1024)
    for data in (pax_header(2 << 20) + png, pax_header(600_000) + pax_header(600_000) + png):  # one, or two together
        err, = items_of(gzip.compress(data), "x.tar.gz")
        assert "pax or long-name headers" in err.error and "not read" in err.error
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tf:
        info = tarfile.TarInfo("x" * (2 << 20))
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
    err, = items_of(buf.getvalue(), "long.tar.gz")
    assert "pax or long-name headers" in err.error
    item, = items_of(tar_bytes([("é/" + "y" * 300 + ".png", b.image_bytes("PNG"))], "w:gz"))  # a real pax header
    assert isinstance(item, ImageItem)
    monkeypatch.setattr(tar, "HEADERS_MAX", 100_000)  # so many members, each under the cap, add up
    many = (pax_header(30_000) + member) * 5 + bytes(1024)
    items = items_of(gzip.compress(many), "x.tar.gz")
    assert len(items) == 4 and "headers take over 100,000 bytes in all" in items[-1].error


def test_a_plain_tar_cut_in_the_last_members_padding_is_read():
    """Only the 512-byte padding after the last member is missing: its data is all there, and is read."""
    png = b.image_bytes("PNG")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for i in range(2):
            info = tarfile.TarInfo(f"{i}.png")
            info.size = len(png)
            tf.addfile(info, io.BytesIO(png))
    first = 512 + (len(png) + 511) // 512 * 512
    got = list(open_input(Blob("cut.tar", buf.getvalue()[:first + 512 + len(png)], name="cut.tar")))
    assert [i.origin for i in got if isinstance(i, ImageItem)] == ["cut.tar:0.png", "cut.tar:1.png"], got


def test_a_zip_inside_a_tar_counts_as_nesting_too():
    data = tar_bytes([("a.zip", b.zip_bytes([("z.png", b.image_bytes("PNG"))]))])
    (err,) = items_of(data, max_depth=0)
    assert err.origin == "export.tar.gz:a.zip" and "nested deeper than max_depth (0)" in err.error
    (img,) = items_of(data, max_depth=1)
    assert img.origin == "export.tar.gz:a.zip:z.png"


def test_compressed_files_inside_a_tar_draw_from_its_budget():
    gz = gzip.compress(bytes(5_000_000))  # 5 MB of zeros each, 5 KB compressed
    data = tar_bytes([(f"part{k}.bin.gz", gz) for k in range(3)], "w")
    items = items_of(data, "e.tar", zip_max_bytes=12_000_000)
    over = [i for i in items if "zip_max_bytes" in getattr(i, "error", "")]
    assert [i.origin for i in over] == ["e.tar:part2.bin.gz"]  # 5 + 5 MB fit, the third does not
    assert len(items_of(data, "e.tar", zip_max_bytes=16_000_000)) == 3 and not any(
        "zip_max_bytes" in getattr(i, "error", "") for i in items_of(data, "e.tar", zip_max_bytes=16_000_000))


def test_dot_dot_between_backslashes_is_an_unsafe_name_too():
    """A tar written on Windows may name members with backslashes: ..\\evil.png is refused as ../evil.png is."""
    data = tar_bytes([("..\\evil.png", b.image_bytes("PNG")), ("ok\\..\\..\\x.png", b.image_bytes("PNG")),
                      ("fine.png", b.image_bytes("PNG"))])
    got = items_of(data)
    assert [i.error.startswith("unsafe member name") for i in got[:2]] == [True, True], got
    assert isinstance(got[2], ImageItem) and got[2].origin == "export.tar.gz:fine.png" and len(got) == 3


def test_zero_padding_after_the_last_compressed_stream_is_ignored():
    """A .gz written to tape or by some tools ends with zero padding after its stream (gzip: "trailing garbage
    ignored"): the content is read, and a tarball so padded is read whole."""
    import gzip

    ct = (b.dicom_dir() / "CT_small.dcm").read_bytes()
    item, = items_of(gzip.compress(ct) + bytes(512), "scan.dcm.gz")
    assert isinstance(item, ImageItem) and item.format == "DICOM"
    got = items_of(tar_bytes([("a.png", b.image_bytes("PNG")), ("b.png", b.image_bytes("PNG"))]) + bytes(10240))
    assert [i.origin for i in got if isinstance(i, ImageItem)] == ["export.tar.gz:a.png", "export.tar.gz:b.png"], got


def test_gunzip_gives_one_byte_past_its_limit_so_the_caller_can_tell_it_was_passed():
    """inflate.gunzip stops once more than `limit` bytes came out and returns them (limit + 1), never raising for it;
    a stream cut off gives what it holds."""
    import gzip

    from medimg.sources.inflate import gunzip

    content = bytes(range(256)) * 40
    packed = gzip.compress(content)
    assert gunzip(packed, 100) == content[:101]
    assert gunzip(packed, len(content)) == content
    assert content.startswith(gunzip(packed[:len(packed) // 2], len(content)))


def test_a_damaged_image_in_a_gz_is_an_error_named_by_the_name_inside():
    """scan.png.gz holds scan.png: a damaged PNG in it is an error (named PNG but not readable), as a damaged
    scan.png is, not a skipped note about some unknown file."""
    import gzip

    item, = items_of(gzip.compress(b"\x89PNG not really" * 50), "scan.png.gz")
    assert item.error.startswith("named PNG but not readable") and not item.skipped, item



def sparse_tar(members, mode: str = "w") -> bytes:
    """A tar of (name, bytes) files and (name, pieces, size) GNU sparse files (pax format 0.1, as GNU tar --sparse
    writes): (offset, bytes) pieces stored, holes between them, `size` bytes in all."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.PAX_FORMAT) as tf:
        for name, *rest in members:
            info = tarfile.TarInfo(name)
            if len(rest) == 2:
                pieces, size = rest
                info.pax_headers = {"GNU.sparse.map": ",".join(f"{at},{len(d)}" for at, d in pieces),
                                    "GNU.sparse.size": str(size)}
                stored = b"".join(d for _, d in pieces)
            else:
                stored = rest[0]
            info.size = len(stored)
            tf.addfile(info, io.BytesIO(stored))
    return buf.getvalue()


@pytest.mark.parametrize("mode,name", [("w", "e.tar"), ("w:gz", "e.tgz")])
def test_a_sparse_member_is_read_with_its_holes_and_the_reading_goes_on(mode, name):
    """A sparse file's size is the whole file's, far more than it stores: a plain tar took it to run past its end
    and read nothing more."""
    png = b.image_bytes("PNG")
    data = sparse_tar([("disk/sparse.png", [(0, png)], 3_000_000), ("disk/next.png", png)], mode)
    items = items_of(data, name)
    assert [(i.origin, type(i).__name__) for i in items] == [(f"{name}:disk/sparse.png", "ImageItem"),
                                                              (f"{name}:disk/next.png", "ImageItem")]


def test_the_holes_of_sparse_members_count_against_the_archive_budget():
    """Holes are bytes made from nothing: only the stored pieces were charged, so a small tar of sparse files, each
    under the budget, made far more than zip_max_bytes in all."""
    png = b.image_bytes("PNG")
    data = sparse_tar([(f"disk/{i}.png", [(0, png)], 3_000_000) for i in range(3)], "w:gz")
    first, err = items_of(data, zip_max_bytes=5_000_000)
    assert isinstance(first, ImageItem) and first.origin == "export.tar.gz:disk/0.png"
    assert err.origin == "export.tar.gz:disk/1.png" and "zip_max_bytes" in err.error
    assert "the rest is not read" in err.error


@pytest.mark.timeout(30)
def test_a_sparse_member_in_many_pieces_is_read_in_time():
    """tarfile joins a sparse file's pieces with `+=`: 4,000 pieces over 40 MB took minutes."""
    pieces = [(i * 10_000, b"x") for i in range(4000)]
    start = time.monotonic()
    err, = items_of(sparse_tar([("disk/sparse.bin", pieces, 40_000_000)], "w:gz"))
    assert err.origin == "export.tar.gz:disk/sparse.bin" and err.skipped
    assert time.monotonic() - start < 20


def test_a_resumed_run_charges_the_holes_of_the_sparse_members_it_passes_over(tmp_path):
    """As the zip source charges a member done before by its size: a resumed run stops where a whole run does."""
    png = b.image_bytes("PNG")
    path = tmp_path / "e.tgz"
    path.write_bytes(sparse_tar([(f"disk/{i}.png", [(0, png)], 3_000_000) for i in range(3)], "w:gz"))
    done = {f"{path}:disk/0.png"}
    tasks = input_tasks([path], Limits(zip_max_bytes=5_000_000), skip=done.__contains__)
    err, = [item for task in tasks for item in task()]
    assert err.origin == f"{path}:disk/1.png" and "zip_max_bytes" in err.error


def test_a_sparse_map_claiming_more_than_its_size_gives_no_budget_back():
    """A sparse member's holes were charged as size - stored: a map claiming 900 kB of pieces in a 1-byte file
    gave 900 kB back, each such 200-byte .tgz doubling what the archive around it could still inflate. A map can
    only charge now: the outer tar stops at its 3 MB member as it does without them."""
    def hostile(claim: int) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tf:
            info = tarfile.TarInfo("disk/x.bin")
            info.pax_headers = {"GNU.sparse.map": f"0,{claim}", "GNU.sparse.size": "1"}
            info.size = 1
            tf.addfile(info, io.BytesIO(b"x"))
        return buf.getvalue()

    big = gzip.compress(bytes(3_000_000))
    data = tar_bytes([(f"in{k}.tgz", hostile(900_000)) for k in range(4)] + [("big.bin.gz", big)], "w")
    items = items_of(data, "e.tar", zip_max_bytes=1_000_000)
    over = [i for i in items if "zip_max_bytes" in getattr(i, "error", "")]
    assert [i.origin for i in over] == ["e.tar:big.bin.gz"], items


@pytest.mark.timeout(20)
@pytest.mark.parametrize("mode,name", [("w", "e.tar"), ("w:gz", "e.tgz")])
def test_a_sparse_member_whose_pax_size_runs_far_past_the_data_stops_the_reading(mode, name):
    """Only the map's pieces were checked against the end of the data and the caps, but tarfile goes on to the
    next header where the pax size puts it, passing over it a block at a time: a pax size of 100 GB took 19 s, one
    of 10^15 bytes would take days. The reading stops there now, as for any member past the end."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("disk/x.bin")
        info.pax_headers = {"GNU.sparse.map": "0,1", "GNU.sparse.size": "1", "size": str(10**15)}
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
        info = tarfile.TarInfo("next.txt")
        info.size = 5
        tf.addfile(info, io.BytesIO(b"hello"))
    err, = items_of(buf.getvalue(), name)
    assert err.origin == f"{name}:disk/x.bin" and err.error.startswith("member is 1,000,000,000,000,000 bytes, ")
    assert err.error.endswith("; the rest of the archive is not read")
