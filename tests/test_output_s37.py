"""The records people get back (review s37): one mixed input set through every surface gives the same fields,
types, numbers and nulls; JSONL stays one record a line; the page's CSV stays text in a spreadsheet whatever
separator it splits on; an empty run prints no empty table."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import medimg
from builders import image_bytes, pattern, zip_bytes
from medimg.cli import app
from medimg.model.classifier import ASSETS
from medimg.output import json_line, shown
from medimg.pipeline import RECORD_FIELDS, default_classifier
from medimg.server import ServerConfig, Worker, create_app
from medimg.server.export import CSV_FIELDS, to_csv, to_json
from medimg.server.ui import _write_exports

runner = CliRunner()
CT = Path(__import__("pydicom").__file__).parent / "data" / "test_files" / "CT_small.dcm"
# names a data-curation team meets: a comma, non-ASCII, a quote and a newline, a line separator, a formula
MEMBERS = ["a\u2028b.png", "c\u2029d.png", "scan;=SUM(1+1).png", 'q"uote\nnl.png', "Röntgen, links.jpg"]
FORMULA = re.compile("[\\s\"]*[=+\\-@\uff1d\uff0b\uff0d\uff20]")


def _pdf_with_two_images() -> bytes:
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    for i in range(2):
        buf = io.BytesIO()
        pattern((160, 120), seed=i + 1).save(buf, "PNG")
        page.insert_image(pymupdf.Rect(50, 60 + i * 300, 330, 270 + i * 300), stream=buf.getvalue())
    data = doc.tobytes()
    doc.close()
    return data


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """A PNG, a DICOM, a PDF with two images, a broken file and a zip of awkwardly named images."""
    if not CT.exists():
        pytest.skip(f"pydicom's test file {CT} is not installed")
    folder = tmp_path_factory.mktemp("mixed")
    (folder / "photo, ünïcode.png").write_bytes(image_bytes("PNG", (120, 90)))
    shutil.copy(CT, folder / "ct.dcm")
    (folder / "paper.pdf").write_bytes(_pdf_with_two_images())
    (folder / "broken.png").write_bytes(image_bytes("PNG")[:40])
    (folder / "bundle.zip").write_bytes(zip_bytes({n: image_bytes("JPEG" if n.endswith(".jpg") else "PNG",
                                                                  (70 + i, 50)) for i, n in enumerate(MEMBERS)}))
    return folder


NAMES = ["photo, ünïcode.png", "ct.dcm", "paper.pdf", "broken.png", "bundle.zip"]


@pytest.fixture(scope="module")
def model_dir(request):
    """The shipped model when it is in the package, else the tiny test model (mechanics only)."""
    if (ASSETS / "labels.json").exists():
        return None
    return request.getfixturevalue("tiny_model_dir")


def _cli(mixed: Path, model_dir, fmt: str, *extra: str) -> str:
    out = mixed.parent / f"{mixed.name}-out-{len(extra)}.{fmt}"
    model = ["--model", str(model_dir)] if model_dir else []
    here = os.getcwd()
    os.chdir(mixed)  # inputs named as the API names uploads: by their file names
    try:
        res = runner.invoke(app, ["classify", *NAMES, "-f", fmt, "-o", str(out), *model, *extra])
    finally:
        os.chdir(here)
    assert res.exit_code == 0, res.output
    return out.read_text(encoding="utf-8")


def _strict(text: str):
    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def _as_csv(value) -> str:
    """How a JSON value is written in the CLI's CSV: null empty, booleans true/false, numbers as JSON has them."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def test_every_surface_gives_the_same_records_field_by_field(mixed, model_dir, monkeypatch):
    """CLI json, jsonl and csv, the Python API, the HTTP API and the page's downloads, on one mixed input set:
    the same records in the same order, with the same field names, types, numbers (6 decimals) and nulls."""
    jsonl = _cli(mixed, model_dir, "jsonl")
    lines = jsonl.split("\n")
    assert lines[-1] == "" and len(jsonl.splitlines()) == len(lines) - 1  # one record a line, for every reader
    stamped = [_strict(line) for line in lines[:-1]]  # the CLI's files add the model and threshold to each row
    assert _strict(_cli(mixed, model_dir, "json")) == stamped
    from_jsonl = [{k: rec[k] for k in RECORD_FIELDS} for rec in stamped]
    from_json = [{k: rec[k] for k in RECORD_FIELDS} for rec in stamped]
    from_csv = list(csv.DictReader(io.StringIO(_cli(mixed, model_dir, "csv"), newline="")))

    monkeypatch.chdir(mixed)
    clf = medimg.Classifier.load(model_dir) if model_dir else None
    records = list(medimg.classify(NAMES, classifier=clf))
    from_python = [r.to_dict() for r in records]
    cfg = ServerConfig(model_dir=model_dir)
    client = TestClient(create_app(cfg, Worker(cfg), ui=False))
    files = [("files", (n, (mixed / n).read_bytes())) for n in NAMES]
    answer = client.post("/api/classify", files=files)
    assert answer.status_code == 200
    from_api = _strict(answer.text)["results"]

    # the PNG, the DICOM, the PDF's two images, the broken file's error, the zip's members
    assert len(from_jsonl) == 5 + len(MEMBERS)
    assert from_jsonl == from_json == from_python == from_api
    threshold = (medimg.Classifier.load(model_dir) if model_dir else default_classifier()).threshold
    assert [list(rec) for rec in stamped] == [CSV_FIELDS] * len(stamped)  # the page's CSV download's columns
    assert [(rec["model"], rec["threshold"]) for rec in stamped] == [(r.model, threshold) for r in records]
    for rec in from_jsonl:
        assert list(rec) == RECORD_FIELDS
        image = rec["error"] is None
        for k in ("label", "verdict"):
            assert isinstance(rec[k], str) if image else rec[k] is None
        assert isinstance(rec["medical"], bool) if image else rec["medical"] is None
        for k in ("confidence", "p_medical"):
            assert (isinstance(rec[k], float) and rec[k] == round(rec[k], 6)) if image else rec[k] is None
        for k in ("width", "height"):
            assert (type(rec[k]) is int and rec[k] > 0) if image else rec[k] is None
    assert [r["input"] for r in from_jsonl][-len(MEMBERS):] == [f"bundle.zip:{n}" for n in MEMBERS]
    assert sum(r["error"] is not None for r in from_jsonl) == 1

    # the CLI's CSV: every value as JSON has it (names kept as they are, the formula one too)
    assert [list(row) for row in from_csv] == [CSV_FIELDS] * len(from_jsonl)
    assert [{k: _as_csv(v) for k, v in rec.items()} for rec in stamped] == from_csv
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_csv(io.StringIO(_cli(mixed, model_dir, "csv")), keep_default_na=False)
    assert frame["input"].tolist() == [r["input"] for r in from_jsonl]
    assert frame["confidence"].replace("", math.nan).astype(float).round(6).tolist()[:3] == \
        [r["confidence"] for r in from_jsonl][:3]

    # --full: the CLI's JSONL, the Python API and the API with full=true, and the page's JSON download
    full = [_strict(line) for line in _cli(mixed, model_dir, "jsonl", "--full").splitlines()]
    assert [rec.pop("threshold") for rec in full] == [threshold] * len(full)  # last, after --full's fields
    api_full = _strict(client.post("/api/classify?full=true", files=files).text)["results"]
    assert full == [r.to_dict(full=True) for r in records] == api_full
    model = client.get("/api/health").json()["model"]
    page = _strict(to_json(records, model["threshold"], model))
    assert page["results"] == full and page["threshold"] == model["threshold"]

    # the page's CSV: the CLI's columns and values, model and threshold too; a formula made text
    page_csv = list(csv.DictReader(io.StringIO(to_csv(records, model["threshold"]), newline="")))
    assert list(page_csv[0]) == CSV_FIELDS
    for row, cli_row, rec in zip(page_csv, from_csv, full):
        assert row["model"] == (rec["model"] or "") and float(row["threshold"]) == model["threshold"]
        if "=" not in cli_row["input"]:
            assert row == cli_row
        else:
            assert row["input"] == "bundle.zip:scan;'=SUM(1+1).png"


def test_jsonl_keeps_one_record_a_line_with_line_separators_in_names(tmp_path):
    """A zip member named with U+2028 or U+2029 was written raw into JSONL, valid JSON but two lines to
    str.splitlines() (and to JavaScript before ES2019): a reader splitting the file so got halves of records.
    Now they are escaped (\\u2028) in classify's JSONL and JSON, extract's manifest and scale's JSONL (all
    output.json_line), and read back as the same name."""
    (tmp_path / "set.zip").write_bytes(zip_bytes({n: image_bytes("PNG", (64, 48)) for n in MEMBERS[:2]}))
    out = tmp_path / "r.jsonl"
    res = runner.invoke(app, ["classify", str(tmp_path / "set.zip"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text(encoding="utf-8")
    assert "\u2028" not in text and "\u2029" not in text and "\\u2028" in text
    assert [json.loads(line)["input"] for line in text.splitlines()] == [f"{tmp_path}/set.zip:{n}"
                                                                         for n in MEMBERS[:2]]
    res = runner.invoke(app, ["extract", str(tmp_path / "set.zip"), "--out", str(tmp_path / "x")])
    assert res.exit_code == 0, res.output
    manifest = (tmp_path / "x" / "manifest.jsonl").read_text(encoding="utf-8")
    assert [json.loads(line)["input"].split(":")[-1] for line in manifest.splitlines()] == MEMBERS[:2]
    assert json_line({"input": "x\u2029y"}) == '{"input": "x\\u2029y"}'


def test_the_table_shows_a_line_separator_as_its_escape():
    """A terminal draws U+2028 as nothing, so a name holding one pulled the table's border a column left."""
    assert shown("a\u2028b\u2029c.png") == "a\\u2028b\\u2029c.png"


def test_a_run_with_no_records_prints_no_empty_table(tmp_path):
    """A run that found nothing (an empty folder) printed an empty table's header and borders on standard
    output; now it prints nothing there, and the summary line on standard error says what happened."""
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["classify", str(tmp_path / "empty")])
    assert res.exit_code == 1 and res.stdout == "", res.stdout
    assert "0 images classified" in res.stderr
    table = tmp_path / "t.txt"
    res = runner.invoke(app, ["classify", str(tmp_path / "empty"), "-o", str(table)])
    assert res.exit_code == 1 and table.read_text(encoding="utf-8") == ""
    csv_out = tmp_path / "r.csv"  # a CSV keeps its header: a table with no rows that scripts can still read
    runner.invoke(app, ["classify", str(tmp_path / "empty"), "-o", str(csv_out)])
    assert csv_out.read_text(encoding="utf-8").strip() == ",".join(CSV_FIELDS)  # the record's, model, threshold


def _cells(text: str, sep: str) -> list[str]:
    """Every cell a spreadsheet splitting on `sep` may see: as a CSV reader with that delimiter reads the file,
    and split on `sep` and line ends alone, quotes ignored (a reader that does not take the file's quoting)."""
    cells = [c for row in csv.reader(io.StringIO(text, newline=""), delimiter=sep) for c in row]
    return cells + [c for line in re.split("\r\n|\n|\r", text) for c in line.split(sep)]


def test_the_pages_csv_stays_text_whatever_separator_a_spreadsheet_splits_on(tmp_path, model_dir):
    """The page's CSV made a cell starting with = text, but Excel set to `;` (the list separator where the
    decimal mark is a comma) splits `scan;=SUM(1+1).png` into `scan` and a formula (quoting every cell did not
    help: a quote counts only at a cell's start). Now a `'` goes before a formula's start after each comma,
    semicolon, tab or line end inside a cell too, and the full-width forms count (OWASP's CSV Injection)."""
    names = ["scan;=SUM(1+1).png", "a,+1.png", "tab\t@x.png", "new\n=1.png", "cr\r-1.png", "\uff1d1+1.png",
             'x;"=1.png', "x; =1.png", "photo, ünïcode.png"]
    clf = medimg.Classifier.load(model_dir) if model_dir else None
    uploads = [medimg.Blob(origin=n, data=image_bytes("PNG", (64, 48))) for n in names]  # as the page names them
    records = list(medimg.classify(uploads, classifier=clf))
    assert [r.input for r in records] == names and all(r.ok for r in records)
    csv_path, _ = _write_exports(records, 0.6, {"name": "m", "version": "1"}, tmp_path)
    text = csv_path.read_bytes().decode("utf-8-sig")
    for sep in (",", ";", "\t"):
        formulas = [c for c in _cells(text, sep) if FORMULA.match(c)]
        assert not formulas, (sep, formulas)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["input"] for r in rows] == [
        "scan;'=SUM(1+1).png", "a,'+1.png", "tab\t'@x.png", "new\n'=1.png", "cr\r'-1.png", "'\uff1d1+1.png",
        "x;'\"=1.png", "x;' =1.png", "photo, ünïcode.png"]  # a name with no formula in it is as it was
    assert [r["locator"] for r in rows] == [""] * len(names)


def test_the_pages_csv_marks_formulas_in_linear_time():
    """A regex lookahead over spaces after each separator made a cell of 32,000 line ends take ~18 s (the review's
    first version): the marks are found in one pass."""
    import time

    from medimg.server.export import safe_cell

    for cell in ("\n" * 200_000, "\t" * 200_000 + "=x", ";" + " " * 200_000 + "=x"):
        t = time.perf_counter()
        out = safe_cell(cell)
        assert time.perf_counter() - t < 2
        assert out.replace("'", "") == cell
    assert safe_cell(";" + " " * 9 + "=x") == ";'" + " " * 9 + "=x"
    assert safe_cell("\t" * 3 + "=x") == "'\t'\t'\t'=x"
