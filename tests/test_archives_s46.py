"""Session 46's archive review: a tar of no files, and the cap on an archive's inflated bytes from the CLI."""

import gzip
import io
import json
import lzma
import tarfile
import zipfile

from typer.testing import CliRunner

from builders import image_bytes
from medimg.cli import app
from medimg.sources import Blob, ImageItem, ItemError, open_input
from words import flat

runner = CliRunner()


def _empty_tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w"):  # as `tar cf x.tar --files-from /dev/null`: 10,240 zero bytes
        pass
    return out.getvalue()


def test_a_tar_of_no_files_is_the_note_an_empty_zip_gets():
    """An empty tar is only its end, blocks of zeros: it was an error ("unrecognised content"), and compressed a
    note "not an image or a supported container", where an empty zip is the note "archive holds no files"."""
    empty = _empty_tar()
    assert len(empty) == 10240 and not empty.strip(b"\0")
    for name, data in (("none.tar", empty), ("none.tar.gz", gzip.compress(empty)), ("none.tgz", gzip.compress(empty)),
                       ("none.tar.xz", lzma.compress(empty))):
        (item,) = open_input(Blob(name, data, name=name))
        assert isinstance(item, ItemError) and item.skipped and item.error == "archive holds no files", (name, item)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("in/none.tar", empty)
        zf.writestr("in/a.png", image_bytes("PNG", (80, 80)))
    items = list(open_input(Blob("set.zip", zipped.getvalue(), name="set.zip")))
    assert [(i.origin, i.error) for i in items if isinstance(i, ItemError)] == [
        ("set.zip:in/none.tar", "archive holds no files")]
    assert [i.origin for i in items if isinstance(i, ImageItem)] == ["set.zip:in/a.png"]


def test_zeros_not_named_as_a_tar_are_not_called_an_empty_archive():
    for name in ("disk.img", "scan.dcm", "zeros.gz"):
        data = gzip.compress(b"\0" * 10240) if name.endswith(".gz") else b"\0" * 10240
        (item,) = open_input(Blob(name, data, name=name))
        assert isinstance(item, ItemError) and item.error != "archive holds no files", (name, item)
    data = _empty_tar()[:-1] + b"\1"  # a tar's name, but not only zeros: not read as a tar of none
    (item,) = open_input(Blob("x.tar", data, name="x.tar"))
    assert item.error != "archive holds no files"


def test_the_archive_byte_cap_is_an_option_and_its_errors_name_it(tmp_path, tiny_model_dir):
    """Past zip_max_bytes the rest of an archive is an error naming that cap, but the CLI had no option to
    change it, and said nothing after the summary, as it does for the other caps (--max-entries, …)."""
    path = tmp_path / "set.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("first.png", image_bytes("PNG", (80, 80)))  # an image classified: the run succeeds
        for i in range(3):
            zf.writestr(f"m{i}.bin", bytes(700 * 1024))  # 0.7 MB each, a few KB deflated
        zf.writestr("last.png", image_bytes("PNG", (80, 80)))
    base = ["classify", str(path), "--model", str(tiny_model_dir), "-f", "jsonl"]
    res = runner.invoke(app, base + ["--max-archive-mb", "1"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert [r["input"] for r in rows] == [f"{path}:first.png", f"{path}:m1.bin"]  # m0: a skipped note
    assert "archive inflates past the zip_max_bytes cap of 1,048,576" in rows[-1]["error"]
    assert "1 error over the zip_max_bytes cap (raise it with --max-archive-mb)" in flat(res.stderr)
    res = runner.invoke(app, base + ["--max-archive-mb", "3"])
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert res.exit_code == 0 and rows[-1]["input"] == f"{path}:last.png" and rows[-1]["error"] is None
    assert "cap" not in res.stderr
    res = runner.invoke(app, ["extract", str(path), "--out", str(tmp_path / "ex"), "--max-archive-mb", "1"])
    assert res.exit_code == 0 and "1 error over the zip_max_bytes cap (raise it with --max-archive-mb)" in \
        flat(res.stderr)
    assert runner.invoke(app, base + ["--max-archive-mb", "0"]).exit_code == 2


def test_a_member_of_a_method_not_inflated_here_is_named_by_it():
    """zipfile says "That compression method is not supported" for a Deflate64 (7-Zip) or Implode member: the row
    now names the method and what to do."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.png", image_bytes("PNG", (80, 80)))
        zf.writestr("b.png", image_bytes("PNG", (80, 80)))
    data = bytearray(out.getvalue())
    central = data.find(b"PK\x01\x02")
    data[8] = data[central + 10] = 9  # a.png's method, in its local header and its directory entry: Deflate64
    items = list(open_input(Blob("w.zip", bytes(data), name="w.zip")))
    assert isinstance(items[0], ItemError) and items[0].origin == "w.zip:a.png"
    assert items[0].error == ("member compressed with Deflate64 (method 9), which is not inflated here; not read "
                              "(zip it again with Deflate, the usual method)")
    assert isinstance(items[1], ImageItem) and items[1].origin == "w.zip:b.png"


def test_a_data_file_of_such_a_method_is_named_in_its_headers_error():
    header = b"ObjectType = Image\nNDims = 2\nDimSize = 64 64\nElementType = MET_UCHAR\nElementDataFile = a.raw\n"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("s/a.mhd", header)
        zf.writestr("s/a.raw", bytes(range(256)) * 16)
    data = bytearray(out.getvalue())
    local = data.find(b"PK\x03\x04", 4)
    central = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 4)
    data[local + 8] = data[central + 10] = 9  # a.raw: Deflate64
    items = list(open_input(Blob("m.zip", bytes(data), name="m.zip")))
    assert items[0].origin == "m.zip:s/a.mhd" and items[0].error.endswith(
        "its data file a.raw: compressed with Deflate64 (method 9), which is not inflated here")
    assert items[1].origin == "m.zip:s/a.raw" and items[1].skipped


def test_the_nesting_cap_is_an_option_and_its_errors_name_it(tmp_path, tiny_model_dir):
    """An archive nested past max_depth was an error naming a cap no option of the CLI changed."""
    data, name = image_bytes("PNG", (80, 80)), "x.png"
    for level in range(5):  # l3.zip:l2.zip:l1.zip:l0.zip:x.png, in deep.zip
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as zf:
            zf.writestr(name, data)
        data, name = out.getvalue(), f"l{level}.zip"
    path = tmp_path / "deep.zip"
    path.write_bytes(data)
    base = ["classify", str(path), "--model", str(tiny_model_dir), "-f", "jsonl"]
    res = runner.invoke(app, base)
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert [r["error"] for r in rows] == ["archive nested deeper than max_depth (3); not opened"]
    assert "1 error over the max_depth cap (raise it with --max-depth)" in flat(res.stderr)
    res = runner.invoke(app, base + ["--max-depth", "4"])
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert res.exit_code == 0 and [(r["input"], r["error"]) for r in rows] == [
        (f"{path}:l3.zip:l2.zip:l1.zip:l0.zip:x.png", None)]
    res = runner.invoke(app, base + ["--max-depth", "0"])
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert [(r["input"], r["error"]) for r in rows] == [
        (f"{path}:l3.zip", "archive nested deeper than max_depth (0); not opened")]
