"""The results as written (session 46): what a run leaves in its output file when the file cannot take more."""
import csv
import io
import json
import os
import subprocess
import sys

import pytest

from builders import image_bytes

resource = pytest.importorskip("resource")  # POSIX: a file-size limit makes a write stop part-way, as a full disk does


def _images(folder, n: int) -> list[str]:
    names = []
    for i in range(n):
        (folder / f"{i:02d}.png").write_bytes(image_bytes(size=(40 + i, 40)))
        names.append(str(folder / f"{i:02d}.png"))
    return names


def _limited(limit: int):
    def preexec():  # Python ignores SIGXFSZ: a write past the limit is EFBIG, "no room" to medimg
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


def _env(**more) -> dict:
    """The environment of a run under a file-size limit: no bytecode written (Python would leave .pyc files cut
    at the limit, which break every later import of those modules)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONDONTWRITEBYTECODE": "1", **more}


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "json"])
def test_a_disk_that_fills_mid_row_leaves_the_rows_written_readable(tmp_path, tiny_model_dir, fmt):
    """A full disk (or quota, or file-size limit) usually takes part of a row before it refuses the rest: the
    file ended in half a row, so `jq`, pandas and json.load refused the whole file until a --resume cut it
    (JSON, which cannot be resumed, stayed broken). Now the file is cut back to its last whole row (JSON's `]`
    written in the room that leaves), every row counted as classified is in it, and --resume carries on."""
    files = _images(tmp_path, 12)
    out = tmp_path / f"r.{fmt}"
    cmd = [sys.executable, "-m", "medimg", "classify", *files, "--model", str(tiny_model_dir), "--out", str(out),
           "--workers", "1"]
    env = _env()
    done = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, timeout=300, env=env, preexec_fn=_limited(1000))
    assert done.returncode == 74, done.stderr
    assert "Traceback" not in done.stderr and "no room to write" in done.stderr
    n = int(done.stderr.split("no room to write: ")[1].split(" image")[0])
    assert 0 < n < 12, done.stderr
    text = out.read_bytes().decode("utf-8")
    if fmt == "jsonl":
        assert text.endswith("\n")
        rows = [json.loads(line) for line in text.splitlines()]
    elif fmt == "csv":
        assert text.endswith("\r\n")
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        assert all(len(row) == len(rows[0]) and None not in row.values() for row in rows)
    else:
        rows = json.loads(text)
    assert [r["input"] for r in rows] == files[:n]
    if fmt != "json":
        again = subprocess.run([*cmd, "--resume"], stderr=subprocess.PIPE, text=True, timeout=300, env=env)
        assert again.returncode == 0, again.stderr
        text = out.read_bytes().decode("utf-8")
        rows = [json.loads(line) for line in text.splitlines()] if fmt == "jsonl" else \
            list(csv.DictReader(io.StringIO(text, newline="")))
        assert [r["input"] for r in rows] == files


def test_a_new_parquet_file_the_disk_cut_off_is_not_said_to_resume(tmp_path, tiny_model_dir):
    """A full disk stopping a new Parquet file said "--resume with the same --out carries it on", but the file
    has no footer, so no row of it can be read and --resume refuses it. It now says to run again without
    --resume, and that run writes the file whole."""
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    files = _images(tmp_path, 3)
    out = tmp_path / "r.parquet"
    cmd = [sys.executable, "-m", "medimg", "classify", *files, "--model", str(tiny_model_dir), "--out", str(out)]
    env = _env()
    done = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, timeout=300, env=env, preexec_fn=_limited(200))
    said = " ".join(done.stderr.split())
    assert done.returncode == 74 and "Traceback" not in said, said
    assert "--resume with the same --out carries it on" not in said
    assert "has no row that can be read: run again without --resume once it can be written" in said, said
    again = subprocess.run([*cmd, "--resume"], stderr=subprocess.PIPE, text=True, timeout=300, env=env)
    assert again.returncode == 2, again.stderr  # as said: --resume cannot carry it on
    again = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, timeout=300, env=env)
    assert again.returncode == 0 and [r["input"] for r in pq.read_table(out).to_pylist()] == files


@pytest.mark.parametrize("append", [False, True])
@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_records_on_an_unbuffered_standard_output_into_a_file_that_fills_keep_whole_rows(tmp_path, tiny_model_dir,
                                                                                          fmt, append):
    """`PYTHONUNBUFFERED=1 medimg classify … -f jsonl > r.jsonl` (Docker images set it): Python's unbuffered
    standard output drops what a write to a full disk did not take without an error, so the row was cut, and
    the next row's error came too late to find it. The rows are whole, and with `>>` the lines already in the
    file are kept."""
    files = _images(tmp_path, 12)
    out = tmp_path / f"r.{fmt}"
    before = '{"earlier": 1}\n' if append and fmt == "jsonl" else ""
    out.write_text(before, encoding="utf-8")
    env = _env(PYTHONUNBUFFERED="1")
    with open(out, "a" if append else "w", encoding="utf-8") as f:
        done = subprocess.run([sys.executable, "-m", "medimg", "classify", *files, "--model", str(tiny_model_dir),
                               "-f", fmt, "--workers", "1"], stdout=f, stderr=subprocess.PIPE, text=True,
                              timeout=300, env=env, preexec_fn=_limited(1000))
    assert done.returncode == 74, done.stderr
    n = int(done.stderr.split("no room to write: ")[1].split(" image")[0])
    assert 0 < n < 12, done.stderr
    text = out.read_bytes().decode("utf-8")
    assert text.startswith(before)
    rows = json.loads(text) if fmt == "json" else [json.loads(line) for line in text[len(before):].splitlines()]
    assert [r["input"] for r in rows] == files[:n]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "json", "table"])
def test_records_on_a_standard_output_that_is_not_utf8_are_utf8(tmp_path, tiny_model_dir, fmt):
    """Where the standard output's encoding is not UTF-8 (a Latin-1 locale, Windows' code page for a pipe or a
    file, PYTHONIOENCODING), `classify … -f jsonl > r.jsonl` of a file named `Röntgen😀.png` or `肺.png`
    ended in a traceback (UnicodeEncodeError, exit 1) after the rows before it. Records are UTF-8, as every
    output file is; the table, meant for a terminal, shows what it cannot write as an escape."""
    names = ["Röntgen😀.png", "肺.png"]
    for name in names:
        (tmp_path / name).write_bytes(image_bytes())
    env = _env(PYTHONIOENCODING="latin-1")
    done = subprocess.run([sys.executable, "-m", "medimg", "classify", *names, "--model", str(tiny_model_dir),
                           "-f", fmt], cwd=tmp_path, capture_output=True, timeout=300, env=env)
    said = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0 and "Traceback" not in said, said
    if fmt == "table":
        text = done.stdout.decode("latin-1")
        assert "R\u00f6ntgen\\U0001f600.png" in text and "\\u80ba.png" in text, text
        return
    text = done.stdout.decode("utf-8")
    rows = (json.loads(text) if fmt == "json" else list(csv.DictReader(io.StringIO(text, newline=""))) if
            fmt == "csv" else [json.loads(line) for line in text.splitlines()])
    assert [r["input"] for r in rows] == names
