"""File names as they really come, through every surface that names an input: names as long as the file system
allows (and longer), a name's `:x:` on the terminal, a CSV row's U+FFFD given back, and an upload named `..`."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import zipfile

import pytest
from PIL import Image
from typer.testing import CliRunner

from medimg.cli import app
from medimg.sources import ImageItem, open_input

runner = CliRunner()
linux = pytest.mark.skipif(sys.platform != "linux", reason="names of 255 bytes and ENAMETOOLONG as Linux has them")


def png(color=(200, 30, 30), size=(80, 80)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def read(path) -> list[tuple[str, str | None]]:
    """(origin, error) of every item an input gives."""
    return [(i.origin, None if isinstance(i, ImageItem) else i.error) for i in open_input(str(path))]


@linux
def test_a_file_named_as_long_as_linux_allows_does_not_end_the_folder(tmp_path):
    """Looking for the header of an unknown file of 252–255 bytes (`<name>.mhd` is then over 255) raised
    ENAMETOOLONG from Path.is_file, which ended the folder's walk: the folder was one `internal error` and the
    files after it were never read."""
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "a.png").write_bytes(png())
    long = "u" * 251 + ".xyz"  # 255 bytes, no source reads it
    (folder / long).write_bytes(b"not an image at all")
    (folder / "z.png").write_bytes(png((0, 0, 200)))
    got = read(folder)
    assert [origin for origin, _ in got] == [f"{folder}/a.png", f"{folder}/{long}", f"{folder}/z.png"]
    assert got[0][1] is None and got[2][1] is None
    assert "not an image" in got[1][1]


@linux
def test_a_zip_member_whose_row_name_is_over_255_bytes_is_read_back_alone(tmp_path):
    """`a.zip:<250-byte name>` is longer than a file name may be, so Path.is_dir() raised ENAMETOOLONG and the
    name a row gave could not be given back (`internal error: [Errno 36] File name too long`). A path too long
    for the file system is now an error of its own, saying so."""
    path = tmp_path / "w.zip"
    member = "y" * 250 + ".png"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, png())
        zf.writestr("other.png", png((0, 200, 0)))
    assert read(path) == [(f"{path}:{member}", None), (f"{path}:other.png", None)]
    assert read(f"{path}:{member}") == [(f"{path}:{member}", None)]
    too_long = tmp_path / ("a" * 300 + ".png")
    assert read(too_long) == [(str(too_long), "could not read file: File name too long")]


@linux
def test_an_out_or_list_name_too_long_is_a_usage_error(tmp_path, tiny_model_dir):
    """`--out <300 bytes>.jsonl` and `--inputs-from <300 bytes>.txt` ended in a traceback (exit 1) from pathlib's
    checks; now they are usage errors naming the problem (exit 2)."""
    (tmp_path / "a.png").write_bytes(png())
    long = str(tmp_path / ("o" * 300))
    res = runner.invoke(app, ["classify", str(tmp_path / "a.png"), "--model", str(tiny_model_dir), "-o",
                              long + ".jsonl"])
    assert res.exit_code == 2, res.output
    assert "Invalidvaluefor--out" in squeezed(res.output) and "Filenametoolong" in squeezed(res.output)
    res = runner.invoke(app, ["classify", "--inputs-from", long + ".txt", "--model", str(tiny_model_dir)])
    assert res.exit_code == 2, res.output
    assert "Invalidvaluefor--inputs-from" in squeezed(res.output) and "Filenametoolong" in squeezed(res.output)


def squeezed(text: str) -> str:
    """Typer's error box without its borders and spaces: a long name wraps across its lines."""
    return "".join(c for c in text if not c.isspace() and c not in "│╭╮╰╯─")


def test_a_names_colons_are_not_turned_into_emoji(tmp_path):
    """rich turned `:x:` and `:100:` in the names that messages print into ❌ and 💯: extract's errors after its
    summary said `w.zip❌y.png` for the member `w.zip:x:y.png`."""
    out = tmp_path / "out"
    res = runner.invoke(app, ["extract", str(tmp_path / "scan:100:x.png"), str(tmp_path / "study:brain:ct.png"),
                              "--out", str(out)])
    assert res.exit_code == 1, res.output
    text = " ".join(res.output.split())
    assert "scan:100:x.png: file not found" in text, text
    assert "study:brain:ct.png: file not found" in text, text
    assert "💯" not in res.output and "🧠" not in res.output


@pytest.mark.skipif(sys.platform != "linux", reason="a file name that is not UTF-8 is a Linux one")
def test_a_name_from_csv_output_that_lost_its_bytes_says_why_it_is_not_found(tmp_path, tiny_model_dir):
    """CSV (and Parquet) write U+FFFD for a name's bytes that are not UTF-8; that name given back (a CSV row as an
    --inputs-from list) was a bare `file not found`. Now the error says why, and the JSONL's name reads it."""
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "café.png".encode("latin-1").decode("utf-8", "surrogateescape")).write_bytes(png())
    res = runner.invoke(app, ["classify", str(folder), "--model", str(tiny_model_dir), "-o", str(tmp_path / "r.csv")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["classify", str(folder), "--model", str(tiny_model_dir), "-o",
                              str(tmp_path / "r.jsonl")])
    assert res.exit_code == 0, res.output
    for listed in ("r.csv", "r.jsonl"):
        out = tmp_path / f"again-{listed}.jsonl"
        res = runner.invoke(app, ["classify", "--inputs-from", str(tmp_path / listed), "--column", "input",
                                  "--model", str(tiny_model_dir), "-o", str(out)])
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert len(rows) == 1
        if listed == "r.csv":
            assert rows[0]["input"] == f"{folder}/caf\ufffd.png"
            assert rows[0]["error"].startswith("file not found; its name holds U+FFFD"), rows[0]
            assert "JSONL" in rows[0]["error"]
        else:
            assert rows[0]["error"] is None and rows[0]["input"] == f"{folder}/caf\udce9.png"


def test_an_upload_named_dot_dot_is_named_by_its_place(tiny_model_dir):
    """An upload's name is its base name, never a path; `..` (or `a/..`) was kept as the name `..`, which reads as
    the folder above, where `.` already became `upload-N`."""
    from fastapi.testclient import TestClient

    from medimg.server import ServerConfig, Worker, create_app

    cfg = ServerConfig(model_dir=str(tiny_model_dir))
    with TestClient(create_app(cfg, Worker(cfg), ui=False)) as client:
        body = b""
        for name in (b"..", b"a/..", b"ok.png"):
            body += (b"--XyZ\r\ncontent-disposition: form-data; name=\"files\"; filename=\"" + name +
                     b"\"\r\ncontent-type: image/png\r\n\r\n" + png() + b"\r\n")
        got = client.post("/api/classify", content=body + b"--XyZ--\r\n",
                          headers={"content-type": "multipart/form-data; boundary=XyZ"})
    assert got.status_code == 200, got.text
    assert [r["input"] for r in got.json()["results"]] == ["upload-1", "upload-2", "ok.png"]


@pytest.mark.skipif(sys.platform != "linux", reason="a file name that is not UTF-8 is a Linux one")
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_resume_from_csv_tells_apart_names_that_differ_in_bytes_that_are_not_utf8(tmp_path, tiny_model_dir, fmt):
    """CSV and Parquet write caf\\xe8.png and caf\\xe9.png both as caf\\ufffd.png, and --resume passed over every
    name so written: a run stopped after the first (or given it alone) never read the second, silently. Now such
    a name stands for as many inputs as it has rows, the first met; a finished run resumed adds nothing."""
    if fmt == "parquet":
        pytest.importorskip("pyarrow", reason="Parquet output needs pyarrow")
    folder = tmp_path / "latin1"
    folder.mkdir()
    first, second = (os.fsdecode(b"caf" + bytes([c]) + b".png") for c in (0xE8, 0xE9))
    (folder / first).write_bytes(png((200, 0, 0)))
    (folder / second).write_bytes(png((0, 0, 200)))
    (folder / "z.png").write_bytes(png((0, 200, 0)))
    out = tmp_path / f"r.{fmt}"

    def inputs() -> list[str]:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(out).column("input").to_pylist()
        return [row["input"] for row in csv.DictReader(out.open(newline="", encoding="utf-8"))]

    res = runner.invoke(app, ["classify", str(folder / first), str(folder / "z.png"), "--model", str(tiny_model_dir),
                              "-o", str(out)])
    assert res.exit_code == 0, res.output
    for _ in range(2):  # carried on; then again, when it is whole
        res = runner.invoke(app, ["classify", str(folder), "--model", str(tiny_model_dir), "-o", str(out),
                                  "--resume"])
        assert res.exit_code == 0, res.output
        assert sorted(inputs()) == sorted([f"{folder}/caf\ufffd.png"] * 2 + [f"{folder}/z.png"]), inputs()
