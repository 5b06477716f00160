"""--max-entries (s40_archives left it): a zip of more than 10,000 members (a CT series of thin slices) was refused
whole from the command line with no option to raise the cap, which only Python's Limits could."""

from __future__ import annotations

import io
import json
import zipfile

from PIL import Image
from typer.testing import CliRunner

from medimg.cli import app


def _zip(path, n: int) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (80, 70), (120, 40, 200)).save(buf, "PNG")
    with zipfile.ZipFile(path, "w") as z:
        for i in range(n):
            z.writestr(f"series/{i:03d}.png", buf.getvalue())


def _run(args):
    res = CliRunner().invoke(app, args)
    return res, [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


def test_the_entry_cap_is_an_option_and_the_summary_names_it(tmp_path, tiny_model_dir):
    series = tmp_path / "series.zip"
    _zip(series, 12)
    model = ["--model", str(tiny_model_dir), "--format", "jsonl"]
    res, rows = _run(["classify", str(series), "--max-entries", "10", *model])
    assert len(rows) == 1 and "over the zip_max_entries cap of 10" in rows[0]["error"], rows
    assert "--max-entries" in res.output, res.output
    res, rows = _run(["classify", str(series), "--max-entries", "12", *model])
    assert sum(bool(r.get("verdict")) for r in rows) == 12, res.output


def test_extract_takes_it_too(tmp_path):
    series = tmp_path / "series.zip"
    _zip(series, 3)
    res = CliRunner().invoke(app, ["extract", str(series), "--out", str(tmp_path / "out"), "--max-entries", "2"])
    rows = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and "zip_max_entries cap of 2" in rows[0]["error"], (rows, res.output)
