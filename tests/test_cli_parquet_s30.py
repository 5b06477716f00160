"""`classify --format parquet` (or --out x.parquet): the JSONL record's columns and types, written in row groups
as records come, a readable file after Ctrl-C, and clear refusals (no pyarrow, standard output). --resume is
in test_more_s30.py."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image
from typer.testing import CliRunner

from builders import zip_bytes
from medimg.cli import app
from webserver import WebServer
from words import flat

pq = pytest.importorskip("pyarrow.parquet")
runner = CliRunner()


def png(color=(200, 30, 30), size=(100, 80)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def inputs(folder) -> list[str]:
    folder.mkdir()
    (folder / "red.png").write_bytes(png())
    (folder / "set.zip").write_bytes(zip_bytes({"scans/a.png": png((250, 5, 5)), "b.png": png((5, 5, 250))}))
    (folder / "broken.png").write_bytes(png((1, 2, 3))[:30])
    return [str(folder / n) for n in ("red.png", "set.zip", "broken.png")]


def jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("full", [False, True])
def test_parquet_has_the_jsonl_records_columns_and_types(tmp_path, tiny_model_dir, full):
    """Same rows, same columns in the same order, booleans as booleans, numbers as numbers, `error` null when
    there is none; with --full, `probs` a struct of every label and `metadata` JSON text (as in CSV)."""
    ins = inputs(tmp_path / "in")
    base = ["classify", *ins, "--model", str(tiny_model_dir), *(["--full"] if full else [])]
    assert runner.invoke(app, [*base, "--out", str(tmp_path / "r.jsonl")]).exit_code == 0
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "r.parquet")])  # the format from the suffix
    assert res.exit_code == 0, res.output
    want = jsonl(tmp_path / "r.jsonl")
    table = pq.read_table(tmp_path / "r.parquet")
    assert table.column_names == list(want[0]) and len(want) == 4
    types = {f.name: str(f.type) for f in table.schema}
    assert {k: types[k] for k in ("medical", "confidence", "p_medical", "width", "height", "error")} == {
        "medical": "bool", "confidence": "double", "p_medical": "double", "width": "int64", "height": "int64",
        "error": "string"}
    got = table.to_pylist()
    if full:
        assert types["skipped"] == "bool" and types["probs"].startswith("struct<")
        for row in got:
            row["metadata"] = json.loads(row["metadata"]) if row["metadata"] else None
        for w in want:  # an error's {} in JSONL is null here
            w["metadata"], w["probs"] = w["metadata"] or None, w["probs"] or None
    assert got == want
    assert [r["error"] is None for r in got] == [True, True, True, False]
    res = runner.invoke(app, [*base, "-f", "parquet", "--out", str(tmp_path / "named.bin")])  # or from --format
    assert res.exit_code == 0 and pq.read_table(tmp_path / "named.bin").equals(table)


def test_parquet_is_written_a_row_group_at_a_time_as_records_come(tmp_path, tiny_model_dir, monkeypatch):
    """Memory stays bounded: no more than a row group's records are held, each group written once it fills."""
    from medimg import output
    from medimg.pipeline import Record

    monkeypatch.setattr(output, "PARQUET_ROWS", 2)
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.png").write_bytes(png((200, i * 40, 10)))
    res = runner.invoke(app, ["classify", str(folder), "--model", str(tiny_model_dir),
                              "-o", str(tmp_path / "r.parquet")])
    assert res.exit_code == 0, res.output
    meta = pq.ParquetFile(tmp_path / "r.parquet").metadata
    assert meta.num_rows == 5 and [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [2, 2, 1]

    buf = io.BytesIO()
    writer = output.ParquetRecordWriter(buf)
    for i in range(5):
        writer.write(Record(input=f"{i}.png", locator="", p_medical=0.5))
        assert len(writer.pending) == (i + 1) % 2  # written once two are in
    writer.close()
    assert [r["input"] for r in pq.read_table(io.BytesIO(buf.getvalue())).to_pylist()] == [f"{i}.png" for i in range(5)]


def test_a_stopped_parquet_run_leaves_a_readable_file_with_the_rows_so_far(tmp_path, tiny_model_dir):
    """Ctrl-C closes the writer: the rows so far and the footer are written, so the file reads (exit 130)."""
    (tmp_path / "a.png").write_bytes(png())
    out = tmp_path / "r.parquet"
    with WebServer() as srv:
        srv.slow("/slow.png", png(), interval=0.5)
        proc = subprocess.Popen([sys.executable, "-m", "medimg.cli", "classify", str(tmp_path / "a.png"),
                                 srv.url("/slow.png"), "--model", str(tiny_model_dir), "--allow-private",
                                 "--batch-size", "1", "--out", str(out)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not srv.hits["/slow.png"] and time.monotonic() < deadline:  # in the middle of the slow fetch
            time.sleep(0.1)
        # the files before it are classified by now, on a busy machine too (the slow image takes ~100 s: one
        # byte each 0.5 s); their rows wait in the writer's row group
        time.sleep(5)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=30)
    said = flat(proc.stderr.read().decode())
    assert rc == 130 and "stopped: 1 image classified, 0 errors in" in said, said
    assert "--resume with the same --out carries it on" in said
    rows = pq.read_table(out).to_pylist()
    assert [r["input"] for r in rows] == [str(tmp_path / "a.png")] and rows[0]["error"] is None


def test_without_pyarrow_parquet_is_refused_naming_the_extra(tmp_path, tiny_model_dir, monkeypatch):
    (tmp_path / "a.png").write_bytes(png())
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    res = runner.invoke(app, ["classify", str(tmp_path / "a.png"), "--model", str(tiny_model_dir),
                              "--out", str(tmp_path / "r.parquet")])
    said = flat(res.output)
    assert res.exit_code == 2 and "needs pyarrow" in said and "medimg[scale]" in said, said
    assert not (tmp_path / "r.parquet").exists()


def test_parquet_goes_to_a_file(tmp_path, tiny_model_dir):
    (tmp_path / "a.png").write_bytes(png())
    base = ["classify", str(tmp_path / "a.png"), "--model", str(tiny_model_dir)]
    for out in ([], ["--out", "-"]):
        res = runner.invoke(app, [*base, "-f", "parquet", *out])
        assert res.exit_code == 2 and "Parquet is written to a file" in flat(res.output), res.output
