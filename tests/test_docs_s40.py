"""What the docs say of session 40's changes is what the code does: the caps formats.md states in words (the
entries an archive tree shares, a rebuilt zip's tries, the RTF step cap, Zstandard's window), --input-timeout's
default wherever it is quoted, the messages the docs quote (cut-off DICOM files, cut and refused .zst files, an
RTF's pictures, Netpbm's format, classify's first notes, the server's wrong-token warning, its access-log line,
Stop while a run waits), and the names architecture.md gives."""

from __future__ import annotations

import importlib
import io
import logging
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medimg.sources import Blob, ItemError, Limits, open_input

ROOT = Path(__file__).resolve().parents[1]


def _doc(name: str) -> str:
    return " ".join((ROOT / name).read_text(encoding="utf-8").split())  # lines joined: a phrase may wrap anywhere


def _said(doc: str, pattern: str) -> re.Match:
    said = re.search(pattern, _doc(doc))
    assert said, f"{doc}: {pattern}"
    return said


def _errors(source) -> list[str]:
    return [i.error for i in open_input(source) if isinstance(i, ItemError)]


def _png(side: int = 80) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(side).integers(0, 255, (side, side, 3), dtype=np.uint8)).save(out, "PNG")
    return out.getvalue()


def _jpeg(side: int = 80) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(side).integers(0, 255, (side, side, 3), dtype=np.uint8)).save(out, "JPEG")
    return out.getvalue()


@pytest.mark.parametrize("pattern, module, name", [
    (r"in at most ([\d,]+) steps \(groups, braces and words", "sources.rtf", "MAX_TOKENS"),
    (r"among the first ([\d,]+) descriptor signatures after its start", "sources.zip_rebuild", "MAX_TRIES"),
    (r"Over ([\d,]+) streams \(skippable frames counted\)", "sources.inflate", "MAX_STREAMS"),
    (r"with those nested in it, (\d+) × as many", "sources.base", "TREE_ENTRIES"),
])
def test_the_caps_formats_md_states_in_words_are_the_codes(pattern, module, name):
    number = int(_said("docs/formats.md", pattern).group(1).replace(",", ""))
    assert number == getattr(importlib.import_module(f"medimg.{module}"), name)


def test_the_entries_an_archive_tree_shares_are_the_number_formats_md_gives():
    from medimg.sources.base import TREE_ENTRIES

    said = _said("docs/formats.md", r"and so are entries, ten times `zip_max_entries` \(([\d,]+)\)")
    assert TREE_ENTRIES == 10
    assert int(said.group(1).replace(",", "")) == TREE_ENTRIES * Limits().zip_max_entries


def test_input_timeout_s_default_reads_the_same_in_cli_md_the_help_and_limits():
    from typer.testing import CliRunner

    from medimg.cli import app, make_limits

    default = Limits().input_timeout
    row = _said("docs/cli.md", r"\| `--input-timeout` \| classify, extract, scale \| (\d+) s \(0: no limit\) \|")
    bullet = _said("docs/cli.md", r"`--input-timeout`: seconds reading one input \([^)]*: (\d+)\)")
    assert float(row.group(1)) == float(bullet.group(1)) == default == 600
    shown = " ".join(CliRunner().invoke(app, ["classify", "--help"], env={"COLUMNS": "300"}).output.split())
    assert re.search(rf"\(default {int(default)}; 0: no limit\)", shown), shown
    assert make_limits(input_timeout=0).input_timeout is None  # "0: no limit"
    assert make_limits(input_timeout=5).input_timeout == 5


def _dicom(tmp_path: Path) -> bytes:
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.StudyDescription = "CT", "HEAD" * 10
    ds.Rows = ds.Columns = 64
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.SamplesPerPixel, ds.PixelRepresentation = 7, 1, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(range(256)) * 16
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_the_cut_off_dicom_errors_formats_md_quotes_are_the_ones_given(tmp_path):
    whole = _dicom(tmp_path)
    value = whole.find(b"HEAD" * 10)
    pixels = whole.find(b"\xe0\x7f\x10\x00")
    cuts = {"in_value": whole[:value + 20], "in_header": whole[:value + 40 + 3], "in_pixels": whole[:pixels + 1012]}
    errors = {}
    for name, data in cuts.items():
        (tmp_path / f"{name}.dcm").write_bytes(data)
        errors[name] = _errors(tmp_path / f"{name}.dcm")
    said = _said("docs/formats.md", r"it is an error \(`([^`]+)`\), not \"without pixel data\"").group(1)
    assert errors["in_pixels"] == [said]
    quoted = _said("docs/formats.md", r"in its value or its header \((`[^`]+`, `[^`]+`)\)").group(1)
    in_value, in_header = re.findall(r"`([^`]+)`", quoted)
    assert errors["in_value"] == [in_value]
    assert errors["in_header"] == [in_value.split(" is cut off ")[0] + " is cut off " + in_header.lstrip("… ")]


def test_the_zstandard_messages_formats_md_quotes_are_the_ones_given(tmp_path):
    from medimg.sources.inflate import _zstd

    zstd = _zstd()
    (tmp_path / "a.png.zst").write_bytes(zstd.compress(_png()))
    assert [type(i).__name__ for i in open_input(tmp_path / "a.png.zst")] == ["ImageItem"]
    whole = zstd.compress(os.urandom(50_000))
    (tmp_path / "cut.bin.zst").write_bytes(whole[:len(whole) // 2])
    quoted = _said("docs/formats.md", r"an error saying so \(`([^`…]+)…`\)").group(1)
    assert _errors(tmp_path / "cut.bin.zst")[0].startswith(quoted)

    window = _said("docs/formats.md", r"needs a window over (\d+) MB \(`zstd (--long=\d+)` or more")
    wide = zstd.ZstdCompressor(options={zstd.CompressionParameter.window_log: 28})  # zstd --long=28
    (tmp_path / "wide.bin.zst").write_bytes(wide.compress(b"x" * 1000) + wide.flush())
    (error,) = _errors(tmp_path / "wide.bin.zst")
    assert f"window over {window.group(1)} MB" in error and f"zstd {window.group(2)}" in error


def test_an_rtf_s_pictures_are_named_as_formats_md_shows(tmp_path):
    example = _said("docs/formats.md", r"each PNG, JPEG or DIB picture is an input \(`report\.rtf:(picture-\d+\.jpg)`")
    rtf = (b"{\\rtf1\\ansi Findings {\\pict\\pngblip " + _png().hex().encode() + b"}\n"
           b"{\\*\\shppict{\\pict\\jpegblip\n" + _jpeg().hex().encode() + b"}}{\\nonshppict{\\pict\\wmetafile8 0102}}}")
    (tmp_path / "report.rtf").write_bytes(rtf)
    items = list(open_input(tmp_path / "report.rtf"))
    names = [i.origin.rsplit(":", 1)[1] for i in items if not isinstance(i, ItemError)]
    assert names == ["picture-1.png", example.group(1)]
    (note,) = [i for i in items if isinstance(i, ItemError)]
    assert note.skipped and "text left out" in note.error and "1 WMF copy" in note.error


def test_netpbm_files_have_the_format_formats_md_says():
    fmt = _said("docs/formats.md", r"and grey PFM; format `(\w+)`, as Pillow names them all").group(1)
    got = []
    for mode, ext in (("L", "pgm"), ("RGB", "ppm"), ("1", "pbm")):
        out = io.BytesIO()
        Image.new(mode, (70, 70), 1).save(out, "PPM")
        got += [i.format for i in open_input(Blob(f"a.{ext}", out.getvalue())) if not isinstance(i, ItemError)]
    assert got == [fmt] * 3


def test_the_rebuilt_zip_s_error_names_the_member_it_ends_inside(tmp_path):
    _said("docs/formats.md", r"one error on the zip says so and names the member it ends inside")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for i in range(3):
            z.writestr(f"a{i}.png", _png(100 + i))
    data = out.getvalue()
    (tmp_path / "cut.zip").write_bytes(data[:data.find(b"a2.png") + 200])
    items = list(open_input(tmp_path / "cut.zip"))
    assert [i.origin.rsplit(":", 1)[1] for i in items if not isinstance(i, ItemError)] == ["a0.png", "a1.png"]
    (error,) = [i.error for i in items if isinstance(i, ItemError)]
    assert "without a readable central directory" in error and "ends inside member 'a2.png'" in error


def test_the_first_notes_and_errors_cli_md_quotes_are_the_ones_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    note = _said("docs/cli.md", r"the first skipped notes are named after it, `empty/: ([^`]+)`").group(1)
    assert _errors("empty/") == [note]
    error = _said("docs/cli.md", r"names the first five errors \(`nosuch\.png: ([^`]+)`").group(1)
    assert _errors("nosuch.png") == [error]


def test_the_wrong_token_warning_server_md_quotes_is_the_one_logged(caplog):
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from medimg.server.app import LOG_FORMAT
    from medimg.server.auth import TokenAuth

    line = _said("docs/server.md", r"`(WARNING medimg\.server: a wrong access token from [\d.]+ was refused)`").group(1)
    client = TestClient(TokenAuth(Starlette(), "right"))
    with caplog.at_level(logging.WARNING, logger="medimg.server"):
        assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    (record,) = [r for r in caplog.records if r.name == "medimg.server"]
    logged = logging.Formatter(LOG_FORMAT).format(record)
    assert logged.endswith(" " + re.sub(r"from [\d.]+", "from testclient", line)), logged


def test_the_access_log_line_server_md_shows_is_in_serve_s_format():
    """The format `medimg serve` gives uvicorn (built in a process of its own: it sets up logging)."""
    shown = _said("docs/server.md", r"An access-log line reads `… (INFO uvicorn\.access: [^`]+ \d+ ms)`").group(1)
    code = ("from medimg.server.app import uvicorn_config; "
            "print(uvicorn_config(None, '127.0.0.1', 1).log_config['formatters']['access']['fmt'])")
    fmt = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}).stdout.strip()
    assert fmt == "%(asctime)s %(levelname)s %(name)s: %(message)s %(took)s", fmt
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 0, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:50628", "POST", "/api/classify", "1.1", 200), None)
    record.took = "1843 ms"
    assert logging.Formatter(fmt).format(record).endswith(" " + shown)


def test_the_stop_before_start_message_server_md_quotes_is_the_page_s():
    start, end = _said("docs/server.md", r"keeps it from starting \(\"(Stopped before it started) … (nothing was "
                                         r"read\.)\"\)").groups()
    source = (ROOT / "src" / "medimg" / "server" / "ui.py").read_text(encoding="utf-8")
    assert re.search(rf'"{re.escape(start)} \([^"]*\): {re.escape(end)}"', source)


@pytest.mark.parametrize("module, names", [("cli", ["_Group", "_Command", "_stopped_cleanly"]),
                                           ("server.app", ["Timed"])])
def test_the_names_architecture_md_gives_exist(module, names):
    text = _doc("docs/architecture.md")
    for name in names:
        assert f"`{name}`" in text, name
        assert hasattr(importlib.import_module(f"medimg.{module}"), name), name


def test_architecture_md_says_what_the_new_modules_take_and_return():
    text = _doc("docs/architecture.md")
    assert "`zip_rebuild.py` takes the bytes of a zip whose central directory is missing or damaged and returns" in text
    assert "`rtf.py` (the PNG, JPEG and DIB pictures of an RTF document's `\\pict` groups" in text
