"""Zip archives: members in memory, origins, nesting, zip-slip names, bombs, entry caps, encryption."""

from __future__ import annotations

import time
import zipfile

import numpy as np
import pytest

import builders as b
from medimg.sources import Blob, Context, ImageItem, ItemError, Limits, input_tasks, open_input


def items(data: bytes, name: str = "a.zip", **limits):
    return list(Context(Limits(**limits)).open_blob(Blob(name, data, name=name)))


def summary(got):
    return [(i.origin, i.locator, type(i).__name__) for i in got]


def test_members_are_opened_with_member_origins(tmp_path):
    data = b.zip_bytes({
        "scans/ct.dcm": b.dicom_file("CT_small.dcm").read_bytes(),
        "photo.jpg": b.image_bytes("PNG", (20, 10)),  # a PNG by content, whatever the name
        "pages.tif": b.multipage_tiff([(8, 8), (9, 9)]),
    })
    path = tmp_path / "bundle.zip"
    path.write_bytes(data)
    got = list(open_input(path))
    assert summary(got) == [
        (f"{path}:scans/ct.dcm", "", "ImageItem"),
        (f"{path}:photo.jpg", "", "ImageItem"),
        (f"{path}:pages.tif", "page 1", "ImageItem"),
        (f"{path}:pages.tif", "page 2", "ImageItem"),
    ]
    assert got[0].format == "DICOM" and got[1].format == "PNG" and got[1].image.size == (20, 10)


def test_stored_members_work_too():
    got = items(b.zip_bytes({"x.png": b.image_bytes("PNG")}, compression=zipfile.ZIP_STORED))
    assert summary(got) == [("a.zip:x.png", "", "ImageItem")]


def test_hidden_and_macos_litter_are_ignored_other_files_noted():
    got = items(b.zip_bytes({
        "__MACOSX/._x.png": b"\x00\x05\x16\x07junk",
        "dir/.DS_Store": b"\x00\x00\x00\x01Bud1",
        "readme.txt": b"hello",
        "dir/": b"",
        "x.png": b.image_bytes("PNG"),
    }))
    assert summary(got) == [("a.zip:readme.txt", "", "ItemError"), ("a.zip:x.png", "", "ImageItem")]
    assert got[0].skipped


def test_nested_zips_within_max_depth():
    inner = b.zip_bytes({"deep/img.gif": b.animated_gif(2)})
    outer = b.zip_bytes({"inner.zip": inner, "top.png": b.image_bytes("PNG")})
    assert summary(items(outer)) == [("a.zip:inner.zip:deep/img.gif", "frame 1", "ImageItem"),
                                     ("a.zip:top.png", "", "ImageItem")]
    got = items(outer, max_depth=0)
    assert summary(got) == [("a.zip:inner.zip", "", "ItemError"), ("a.zip:top.png", "", "ImageItem")]
    assert "max_depth" in got[0].error


def test_deep_nesting_stops_at_max_depth():
    data = b.zip_bytes({"img.png": b.image_bytes("PNG")})
    for level in range(5):
        data = b.zip_bytes({f"l{level}.zip": data})
    got = items(data, max_depth=3)
    assert len(got) == 1 and isinstance(got[0], ItemError) and "max_depth" in got[0].error
    assert got[0].origin == "a.zip:l4.zip:l3.zip:l2.zip:l1.zip"
    got = items(data, max_depth=5)
    assert len(got) == 1 and isinstance(got[0], ImageItem)
    assert got[0].origin == "a.zip:l4.zip:l3.zip:l2.zip:l1.zip:l0.zip:img.png"


@pytest.mark.parametrize("name", ["../evil.png", "/etc/evil.png", "ok/../../evil.png", "C:/evil.png",
                                  "..\\evil.png", "\\evil.png"])
def test_zip_slip_names_are_refused(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    got = items(b.zip_bytes([(name, b.image_bytes("PNG")), ("fine.png", b.image_bytes("PNG"))]))
    assert summary(got) == [(f"a.zip:{name}", "", "ItemError"), ("a.zip:fine.png", "", "ImageItem")]
    assert "unsafe" in got[0].error and not got[0].skipped
    assert list(tmp_path.iterdir()) == [] and not list(tmp_path.parent.glob("evil.png"))


@pytest.fixture(scope="module")
def zero_bomb():
    return b.zero_bomb(200 * 1024 * 1024, extra={"after.png": b.image_bytes("PNG")})


def test_zip_bomb_member_cap(zero_bomb):
    assert len(zero_bomb) < 1024 * 1024
    start = time.monotonic()
    got = items(zero_bomb, max_input_bytes=5 * 1024 * 1024)
    assert time.monotonic() - start < 5
    assert summary(got) == [("a.zip:zeros.bin", "", "ItemError"), ("a.zip:after.png", "", "ImageItem")]
    assert "max_input_bytes" in got[0].error


def test_zip_bomb_with_a_lying_declared_size(zero_bomb):
    # the header claims 1 KB: the declared-size check passes, the bounded read still stops it
    lying = b.set_declared_size(zero_bomb, "zeros.bin", 1024)
    got = items(lying, max_input_bytes=5 * 1024 * 1024)
    assert isinstance(got[0], ItemError) and got[0].origin == "a.zip:zeros.bin"
    assert isinstance(got[-1], ImageItem) and got[-1].origin == "a.zip:after.png"



_BOMB_METHODS = [pytest.param(zipfile.ZIP_BZIP2, id="bzip2"), pytest.param(zipfile.ZIP_LZMA, id="lzma")]


@pytest.fixture(scope="module")
def method_bombs():
    """A bzip2 and an LZMA zip of 64 MB of zeros (a few KB each), with a picture after it."""
    zeros = bytes(64 * 1024 * 1024)
    return {method: b.zip_bytes([("zeros.bin", zeros), ("after.png", b.image_bytes("PNG"))], compression=method)
            for method in (zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)}


def peak_of(fn):
    """fn() and the peak of Python's allocations while it ran (a second time: imports are done)."""
    import tracemalloc

    fn()
    tracemalloc.start()
    try:
        return fn(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("method", _BOMB_METHODS)
def test_bzip2_and_lzma_members_stop_at_their_cap(method_bombs, method):
    # zipfile gives these decompressors all it reads with no bound on the output: one read made all 64 MB
    bomb = method_bombs[method]
    assert len(bomb) < 64 * 1024
    got, peak = peak_of(lambda: items(bomb, zip_max_bytes=2 * 1024 * 1024))
    assert summary(got) == [("a.zip:zeros.bin", "", "ItemError")]
    assert "zip_max_bytes" in got[0].error and peak < 16 * 1024 * 1024
    lying = b.set_declared_size(bomb, "zeros.bin", 1000)  # passes the declared-size check
    got, peak = peak_of(lambda: items(lying))
    assert summary(got) == [("a.zip:zeros.bin", "", "ItemError"), ("a.zip:after.png", "", "ImageItem")]
    assert "CRC" in got[0].error and peak < 16 * 1024 * 1024


@pytest.mark.parametrize("method", _BOMB_METHODS)
def test_bzip2_and_lzma_members_are_read(method):
    png = b.image_bytes("PNG", (20, 10))
    got = items(b.zip_bytes([("x.png", png), ("empty.bin", b"")], compression=method))
    assert summary(got) == [("a.zip:x.png", "", "ImageItem"), ("a.zip:empty.bin", "", "ItemError")]
    assert got[0].image.size == (20, 10)
    data = bytearray(b.zip_bytes([("x.png", png)], compression=method))
    data[data.find(b"PK\x01\x02") + 16] ^= 1  # the CRC the central directory gives
    got = items(bytes(data))
    assert isinstance(got[0], ItemError) and "CRC" in got[0].error


def test_total_uncompressed_cap_stops_the_archive():
    four_mb = bytes(4 * 1024 * 1024)
    data = b.zip_bytes([(f"z{i}.bin", four_mb) for i in range(5)] + [("late.png", b.image_bytes("PNG"))])
    got = items(data, zip_max_bytes=10 * 1024 * 1024)
    errors = [i for i in got if isinstance(i, ItemError)]
    assert "zip_max_bytes" in errors[-1].error and errors[-1].origin == "a.zip:z2.bin"
    assert not any(isinstance(i, ImageItem) for i in got), "nothing after the cap is read"
    # the same archive is fine under a bigger cap: its zeros are noted, its image is found
    got = items(data, zip_max_bytes=30 * 1024 * 1024)
    assert [i.origin for i in got if isinstance(i, ImageItem)] == ["a.zip:late.png"]


def test_total_cap_is_shared_with_nested_archives():
    four_mb = bytes(4 * 1024 * 1024)
    inner = b.zip_bytes([(f"z{i}.bin", four_mb) for i in range(2)])
    data = b.zip_bytes([("one.zip", inner), ("two.zip", inner)])
    got = items(data, zip_max_bytes=12 * 1024 * 1024)
    assert any("zip_max_bytes" in i.error for i in got if isinstance(i, ItemError))


def test_too_many_entries():
    data = b.zip_bytes([(f"f{i}.txt", b"x") for i in range(50)])
    got = items(data, zip_max_entries=10)
    assert len(got) == 1 and isinstance(got[0], ItemError) and "zip_max_entries" in got[0].error
    assert len(items(data, zip_max_entries=50)) == 50


def test_too_many_entries_even_when_the_count_lies():
    data = bytearray(b.zip_bytes([(f"f{i}.txt", b"x") for i in range(50)]))
    end = data.rfind(b"PK\x05\x06")
    data[end + 8:end + 12] = (1).to_bytes(2, "little") * 2  # claim one entry
    got = items(bytes(data), zip_max_entries=10)
    assert len(got) == 1 and isinstance(got[0], ItemError) and "zip_max_entries" in got[0].error


def test_the_zip64_end_record_is_checked_whatever_the_classic_one_says(monkeypatch):
    """zipfile reads the ZIP64 end record whenever its locator is there: a classic record claiming one entry
    must not let it parse the real directory before the entry cap refuses it."""
    data = b.zip_bytes([(f"f{i}.txt", b"x") for i in range(200)])
    for honest in (b.zip64_end(data), b.zip64_end(data, classic=(0xFFFF, 0xFFFFFFFF))):  # "see ZIP64" markers
        assert len(items(honest, zip_max_entries=200)) == 200

    def never(*args, **kwargs):
        raise AssertionError("zipfile parsed the directory")

    monkeypatch.setattr(zipfile, "ZipFile", never)
    (err,) = items(b.zip64_end(data, classic=(1, 46)), zip_max_entries=50)
    assert isinstance(err, ItemError) and "lists 200 entries" in err.error
    (err,) = items(b.zip64_end(data, classic=(1, 46), entries=1), zip_max_entries=5)
    assert isinstance(err, ItemError) and "directory is" in err.error and "zip_max_entries" in err.error


def test_data_files_read_beside_headers_draw_from_the_archive_budget(monkeypatch):
    """Headers (.mhd) naming one data file each read it through Blob.sibling: every read is drawn from the
    archive's zip_max_bytes, so many headers cannot inflate one member again and again."""
    from medimg.sources import archive

    header = b"ObjectType = Image\nNDims = 2\nDimSize = 1024 1024\nElementType = MET_UCHAR\nElementDataFile = d.raw\n"
    data = b.zip_bytes([("d.raw", bytes(1024 * 1024))] + [(f"h{k}.mhd", header) for k in range(10)])
    inflated = []
    read = archive._read

    def counted(zf, info, limit):
        out = read(zf, info, limit)
        inflated.append(len(out))
        return out

    monkeypatch.setattr(archive, "_read", counted)
    got = items(data, zip_max_bytes=3_500_000)
    images = [i for i in got if isinstance(i, ImageItem)]
    refused = [i for i in got if isinstance(i, ItemError) and "zip_max_bytes" in i.error]
    # d.raw (a data file of another stem, a note since s38) is not inflated by the walk too: three reads fit
    assert [i.origin for i in images] == ["a.zip:h0.mhd", "a.zip:h1.mhd", "a.zip:h2.mhd"] and len(refused) == 7
    assert sum(inflated) < 3_500_000
    monkeypatch.setattr(archive, "_read", read)
    assert len([i for i in items(data) if isinstance(i, ImageItem)]) == 10  # under the default cap, all of them


def test_encrypted_members_are_errors():
    data = b.mark_encrypted(b.zip_bytes({"secret.png": b.image_bytes("PNG")}))
    got = items(data)
    assert summary(got) == [("a.zip:secret.png", "", "ItemError")] and got[0].error.startswith("encrypted member")


def test_corrupt_archive():
    got = items(b"PK\x03\x04" + bytes(range(256)) * 4)
    assert len(got) == 1 and isinstance(got[0], ItemError) and "zip" in got[0].error


def test_corrupt_member_does_not_stop_the_rest():
    data = bytearray(b.zip_bytes({"bad.png": b.image_bytes("PNG", (64, 64)), "good.png": b.image_bytes("PNG")}))
    start = data.find(b"PK\x03\x04") + 30 + len("bad.png")
    data[start + 20:start + 40] = bytes(20)  # damage the deflate stream of the first member
    got = items(bytes(data))
    assert summary(got)[-1] == ("a.zip:good.png", "", "ImageItem")
    assert isinstance(got[0], ItemError) and got[0].origin == "a.zip:bad.png"


def test_empty_archive_is_noted():
    got = items(b.zip_bytes({}))
    assert len(got) == 1 and got[0].skipped and "no files" in got[0].error


def test_member_images_are_the_real_pixels():
    png = b.image_bytes("PNG", (32, 16))
    got = items(b.zip_bytes({"p.png": png}))
    from PIL import Image
    import io

    assert np.array_equal(np.asarray(got[0].image), np.asarray(Image.open(io.BytesIO(png))))



def _mixed_members(n: int = 24) -> dict[str, bytes]:
    """Big, small, broken and non-image members interleaved, so later members can finish first."""
    members = {}
    for i in range(n):
        if i % 6 == 5:
            members[f"m{i:02d}.txt"] = b"not an image"
        elif i % 6 == 4:
            members[f"m{i:02d}.png"] = b"\x89PNG\r\n\x1a\n" + bytes(40)
        else:
            side = 1200 if i % 3 == 0 else 16
            members[f"m{i:02d}.png"] = b.image_bytes("PNG", (side, side))
    return members


def test_a_zip_splits_into_one_unit_of_work_per_member_and_chaining_them_is_opening_it(tmp_path):
    members = _mixed_members(12)
    members["inner.zip"] = b.zip_bytes({"deep.png": b.image_bytes("PNG")})
    path = tmp_path / "a.zip"
    path.write_bytes(b.zip_bytes(members))
    tasks = list(input_tasks([path]))
    assert len(tasks) == 13  # 12 members + the nested zip's one
    chained = [i for t in tasks for i in t()]
    assert summary(chained) == summary(open_input(path)) == summary(items(path.read_bytes(), name=str(path)))
    assert summary(chained)[-1] == (f"{path}:inner.zip:deep.png", "", "ImageItem")
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "x.zip").write_bytes(path.read_bytes())
    assert len(list(input_tasks([folder]))) == 13  # a zip found in a folder splits as well


def test_zip_members_decoded_concurrently_come_out_in_archive_order(tiny_classifier):
    from medimg.pipeline import classify

    data = b.zip_bytes(_mixed_members())
    runs = [[(r.input, r.locator, r.error, r.width) for r in
             classify([Blob("a.zip", data, name="a.zip")], classifier=tiny_classifier, workers=w, batch_size=4)]
            for w in (1, 4)]
    assert runs[0] == runs[1] and len(runs[0]) == 24
    assert [r[0] for r in runs[0][:3]] == ["a.zip:m00.png", "a.zip:m01.png", "a.zip:m02.png"]
    assert runs[0][4][2] and runs[0][5][2].startswith("skipped")


def test_each_member_is_an_input_of_its_own_for_the_image_cap(tmp_path):
    path = tmp_path / "many.zip"
    members = {f"i{k:02d}.png": b.image_bytes("PNG", (20, 20)) for k in range(10)}
    members["pages.tif"] = b.multipage_tiff([(8, 8)] * 5)
    path.write_bytes(b.zip_bytes(members))
    got = list(open_input(path, Limits(max_images_per_input=3)))
    assert sum(isinstance(i, ImageItem) for i in got) == 13  # ten images + three of the TIFF's five pages
    assert got[-1].origin == f"{path}:pages.tif" and got[-1].skipped and "max_images_per_input" in got[-1].error


def test_a_container_that_fails_while_splitting_stops_only_itself(monkeypatch, tmp_path):
    from functools import partial

    from medimg.sources import archive, registry

    def broken(blob, ctx):
        yield partial(iter, (ItemError(blob.origin, "first", "seen"),))
        raise RuntimeError("bad directory")

    monkeypatch.setattr(registry, "_PLUGINS", [p if p.name != "zip" else archive.SourcePlugin(
        p.name, p.accepts, p.open, p.priority, split=broken) for p in registry.plugins()])
    path = tmp_path / "a.zip"
    path.write_bytes(b.zip_bytes({"x.png": b.image_bytes("PNG")}))
    png = tmp_path / "b.png"
    png.write_bytes(b.image_bytes("PNG"))
    got = [i for t in input_tasks([path, png]) for i in t()]
    assert [(i.origin, getattr(i, "error", None)) for i in got] == [
        (str(path), "seen"), (str(path), "zip: could not read: bad directory"), (str(png), None)]


def test_office_documents_give_their_pictures_only(tmp_path):
    """A .docx/.pptx/.odt is a zip: its pictures come out, the XML parts and the page thumbnail do not."""
    png, jpg = b.image_bytes("PNG", (80, 60)), b.image_bytes("JPEG", (90, 70))
    docx = b.zip_bytes({"[Content_Types].xml": b"<Types/>", "_rels/.rels": b"<Relationships/>",
                        "word/document.xml": b"<w:document/>", "word/media/image1.png": png,
                        "word/media/image2.jpeg": jpg, "docProps/thumbnail.jpeg": jpg,
                        "word/embeddings/sheet.xlsx": b.zip_bytes({"[Content_Types].xml": b"<Types/>"})})
    got = items(docx, name="report.docx")
    assert summary(got) == [("report.docx", "", "ItemError"), ("report.docx:word/media/image1.png", "", "ImageItem"),
                            ("report.docx:word/media/image2.jpeg", "", "ImageItem")]
    assert got[0].skipped and "5 parts" in got[0].error
    pptx = b.zip_bytes({"[Content_Types].xml": b"<Types/>", "ppt/slides/slide1.xml": b"<p:sld/>",
                        "ppt/media/image3.png": png})
    assert [i.origin for i in items(pptx, name="talk.pptx") if isinstance(i, ImageItem)] == ["talk.pptx:ppt/media/image3.png"]
    odt = b.zip_bytes([("mimetype", b"application/vnd.oasis.opendocument.text"), ("content.xml", b"<office/>"),
                       ("Pictures/10000000.png", png), ("Thumbnails/thumbnail.png", png)])
    got = items(odt, name="letter.odt")
    assert [i.origin for i in got if isinstance(i, ImageItem)] == ["letter.odt:Pictures/10000000.png"]
    # a plain zip that merely holds a file of that name stays a plain zip
    plain = b.zip_bytes({"[Content_Types].xml": b"<Types/>", "scans/a.png": png})
    assert summary(items(plain)) == [("a.zip:[Content_Types].xml", "", "ItemError"), ("a.zip:scans/a.png", "", "ImageItem")]
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "report.docx").write_bytes(docx)
    assert sum(isinstance(i, ImageItem) for i in open_input(folder)) == 2


def test_members_an_earlier_run_did_are_not_inflated_again(monkeypatch, tmp_path):
    """Resuming a run over a big zip or tar: the members already written are passed over before they are read."""
    import io
    import tarfile

    from medimg.sources import archive, input_tasks

    inflated = []
    real = archive._read
    monkeypatch.setattr(archive, "_read", lambda zf, info, limit: inflated.append(info.filename) or real(zf, info, limit))
    z = tmp_path / "z.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for name in ("a.png", "b.png", "c.png"):
            zf.writestr(name, b.image_bytes("PNG", (70, 70)))
    t = tmp_path / "t.tar"
    with tarfile.open(t, "w") as tf:
        for name in ("a.png", "b.png", "c.png"):
            info = tarfile.TarInfo(name)
            data = b.image_bytes("PNG", (70, 70))
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    done = {f"{z}:a.png", f"{z}:b.png", f"{t}:a.png"}
    items = [i for task in input_tasks([str(z), str(t)], Limits(), skip=done.__contains__) for i in task()]
    assert inflated == ["c.png"]
    assert [i.origin for i in items] == [f"{z}:c.png", f"{t}:b.png", f"{t}:c.png"]


def test_a_resumed_run_stops_in_a_big_zip_where_a_whole_run_does(tmp_path):
    """Members passed over as done still count against zip_max_bytes, so resuming never reads past the point
    where the whole run said 'the rest of the archive is not read'."""
    from medimg.sources import input_tasks

    z = tmp_path / "big.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("a.png", b.image_bytes("PNG", (70, 70)))
        for i in range(3):
            zf.writestr(f"fill{i}.bin", b"\0" * 40_000, compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("z.png", b.image_bytes("PNG", (70, 70)))
    limits = Limits(zip_max_bytes=100_000)
    whole = [i for task in input_tasks([str(z)], limits) for i in task()]
    assert [i.origin.split(":")[1] for i in whole] == ["a.png", "fill0.bin", "fill1.bin", "fill2.bin"]
    assert "the rest of the archive is not read" in whole[-1].error
    done = {i.origin for i in whole}
    again = [i for task in input_tasks([str(z)], limits, skip=done.__contains__) for i in task()]
    assert again == []  # not z.png, which the whole run never reached


def test_a_member_declaring_more_than_max_input_bytes_is_refused_without_inflating(zero_bomb, monkeypatch):
    from medimg.sources import archive

    read, inflated = archive._read, []

    def counted(zf, info, limit):
        inflated.append(info.filename)
        return read(zf, info, limit)

    monkeypatch.setattr(archive, "_read", counted)
    got = items(zero_bomb, max_input_bytes=5 * 1024 * 1024)
    assert got[0].origin == "a.zip:zeros.bin" and "declares 209,715,200 bytes" in got[0].error
    assert "zeros.bin" not in inflated and "after.png" in inflated


def test_a_plain_zip_with_a_word_folder_is_not_taken_for_an_office_document():
    """Only a zip with [Content_Types].xml is a Word/PowerPoint/Excel file: a zip of folders that happen to be
    named word/ or ppt/ has every member read."""
    data = b.zip_bytes([("word/scan.png", b.image_bytes("PNG")), ("ppt/slide.png", b.image_bytes("PNG")),
                        ("top.png", b.image_bytes("PNG"))])
    assert summary(items(data)) == [("a.zip:word/scan.png", "", "ImageItem"), ("a.zip:ppt/slide.png", "", "ImageItem"),
                                    ("a.zip:top.png", "", "ImageItem")]


def test_an_lzma_member_declaring_a_4_gb_dictionary_is_read_in_a_process_with_an_address_space_limit(tmp_path):
    """The dictionary size an LZMA member declares is not trusted (no match reaches further back than the bytes made
    so far): a member claiming 4 GB is still read where the address space is limited (ulimit -v)."""
    import struct
    import subprocess
    import sys
    import zipfile

    data = bytearray(b.zip_bytes([("x.png", b.image_bytes("PNG"))], compression=zipfile.ZIP_LZMA))
    name_len, extra_len = struct.unpack("<HH", data[26:30])
    props = 30 + name_len + extra_len + 4  # after LZMA's version and properties size
    data[props + 1:props + 5] = struct.pack("<I", 0xFFFFFFFF)
    (tmp_path / "big-dict.zip").write_bytes(bytes(data))
    script = (
        "import resource, sys\n"
        "from medimg.sources import Blob, Context, Limits\n"
        "vm = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
        "resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 30), vm + (1 << 30)))\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "got = list(Context(Limits()).open_blob(Blob('a.zip', data, name='a.zip')))\n"
        "print([(i.origin, type(i).__name__, getattr(i, 'error', None)) for i in got])\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "big-dict.zip")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[('a.zip:x.png', 'ImageItem', None)]", done.stdout


def test_a_member_of_exactly_max_input_bytes_is_read():
    """max_input_bytes is the most a member may hold: one of exactly that size is read, one byte less of cap is not."""
    png = b.image_bytes("PNG")
    data = b.zip_bytes([("x.png", png)])
    assert summary(items(data, max_input_bytes=len(png))) == [("a.zip:x.png", "", "ImageItem")]
    (got,) = items(data, max_input_bytes=len(png) - 1)
    assert "max_input_bytes" in got.error


def test_windows_backslash_names_are_folders(tmp_path):
    """Zips from Windows tools (PowerShell 5's Compress-Archive) write `study\\ct.mhd`: members are named with
    slashes as tar and 7z members are, a folder of them can be asked for, and a header finds its data file
    in its own folder (it looked for `ct.raw` at the top)."""
    header = b"ObjectType = Image\nNDims = 2\nDimSize = 8 8\nElementType = MET_UCHAR\nElementDataFile = ct.raw\n"
    data = b.zip_bytes([("study\\ct.mhd", header), ("study\\ct.raw", bytes(range(64))),
                        ("study\\x\\scan.png", b.image_bytes("PNG"))])
    got = items(data)
    assert summary(got)[0] == ("a.zip:study/ct.mhd", "", "ImageItem")
    assert summary(got)[2] == ("a.zip:study/x/scan.png", "", "ImageItem")
    path = tmp_path / "a.zip"
    path.write_bytes(data)
    images = [i for i in open_input(f"{path}:study/x/") if isinstance(i, ImageItem)]
    assert [i.origin for i in images] == [f"{path}:study/x/scan.png"]
