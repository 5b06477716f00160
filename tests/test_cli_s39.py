"""classify's files say how their verdicts were made: every row names the model and the threshold (as the web
page's CSV download does), so a CSV alone tells a run at 0.6 from one at 0.9, and `--resume` refuses to add
another model's or another threshold's rows even without --full. Files an older medimg wrote, without those
columns, are carried on in their own shape."""
import csv
import io
import json
import shutil

import pytest
from PIL import Image
from typer.testing import CliRunner

from medimg.cli import app
from medimg.pipeline import RECORD_FIELDS
from words import flat

runner = CliRunner()


def _folder(tmp_path, n=6):
    """n small PNGs, red (xray to the tiny model) and green (photo), and a file that is no image."""
    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(n):
        Image.new("RGB", (40, 40), (220, 10, 10) if i % 2 else (10, 220, 10)).save(folder / f"{i:02d}.png")
    (folder / "zz-bad.png").write_bytes(b"not an image")
    return folder


def _rows(path):
    if path.suffix == ".csv":
        return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    if path.suffix == ".json":
        return json.loads(path.read_text())
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in path.read_text().splitlines()]


def _other_model(tmp_path, tiny_model_dir):
    other = tmp_path / "other-model"
    shutil.copytree(tiny_model_dir, other)
    meta = json.loads((other / "labels.json").read_text())
    (other / "labels.json").write_text(json.dumps({**meta, "version": "tiny-2"}))
    return other


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json", ".parquet"])
@pytest.mark.parametrize("full", [False, True])
def test_every_row_names_its_model_and_threshold(tmp_path, tiny_model_dir, suffix, full):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    folder = _folder(tmp_path)
    out = tmp_path / f"r{suffix}"
    res = runner.invoke(app, ["classify", str(folder), "-o", str(out), "-t", "0.9", "--model", str(tiny_model_dir),
                              *(["--full"] if full else [])])
    assert res.exit_code == 0, res.output
    rows = _rows(out)
    assert len(rows) == 7
    assert list(rows[0])[:len(RECORD_FIELDS)] == RECORD_FIELDS  # the record's own columns first, as before
    assert list(rows[0])[-1] == "threshold"
    for row in rows:
        assert float(row["threshold"]) == 0.9
        assert (row["model"] or None) == (None if row["error"] else "tiny-test-model 0")  # an error: no model


def test_the_default_threshold_is_written_too(tmp_path, tiny_model_dir):
    folder = _folder(tmp_path, 2)
    out = tmp_path / "r.csv"
    assert runner.invoke(app, ["classify", str(folder), "-o", str(out), "--model", str(tiny_model_dir)]).exit_code == 0
    header = out.read_text().splitlines()[0].split(",")
    assert header == [*RECORD_FIELDS, "model", "threshold"]  # the web page's CSV download's columns
    assert {row["threshold"] for row in _rows(out)} == {"0.8"}  # the tiny model's own


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_resume_without_full_refuses_another_model(tmp_path, tiny_model_dir, suffix):
    """Before, rows without --full named no model: a run begun with one model was carried on with another, its
    rows mixed in one file with nothing to tell them apart."""
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    folder = _folder(tmp_path)
    out = tmp_path / f"r{suffix}"
    base = ["classify", str(folder), "-o", str(out), "-t", "0.8"]
    assert runner.invoke(app, [*base, "--model", str(tiny_model_dir)]).exit_code == 0
    whole = out.read_bytes()
    res = runner.invoke(app, [*base, "--model", str(_other_model(tmp_path, tiny_model_dir)), "--resume"])
    said = flat(res.output)
    assert res.exit_code == 2 and "holds rows of model tiny-test-model 0, not tiny-test-model tiny-2" in said, said
    assert out.read_bytes() == whole
    assert runner.invoke(app, [*base, "--model", str(tiny_model_dir), "--resume"]).exit_code == 0


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_rows_carried_on_at_another_threshold_say_which(tmp_path, tiny_model_dir, suffix):
    """--resume takes a threshold that changes no verdict written (the tiny model's p_medical is near 0 or 1, so
    no row tells 0.8 from 0.7); before, nothing in the file then said that its later verdicts were made at 0.7."""
    folder = _folder(tmp_path)
    out = tmp_path / f"r{suffix}"
    base = ["classify", str(folder), "-o", str(out), "--model", str(tiny_model_dir)]
    assert runner.invoke(app, [*base, "-t", "0.8"]).exit_code == 0
    out.write_text("".join(out.read_text().splitlines(keepends=True)[:3 + (suffix == ".csv")]))  # a stopped run
    res = runner.invoke(app, [*base, "-t", "0.7", "--resume"])
    assert res.exit_code == 0, res.output
    assert [float(r["threshold"]) for r in _rows(out)] == [0.8, 0.8] + [0.7] * 5


def _old_shape(path, full=False):
    """The file as a medimg before these columns wrote it: the same rows without `model` (unless --full) and
    `threshold`."""
    drop = ["threshold"] if full else ["model", "threshold"]
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(pq.read_table(path).drop_columns(drop), path)
    elif path.suffix == ".csv":
        rows = _rows(path)
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, [k for k in rows[0] if k not in drop])
            w.writeheader()
            w.writerows({k: v for k, v in r.items() if k not in drop} for r in rows)
    else:
        path.write_text("".join(json.dumps({k: v for k, v in r.items() if k not in drop}) + "\n"
                                for r in _rows(path)))


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
@pytest.mark.parametrize("full", [False, True])
def test_a_file_of_an_older_medimg_is_carried_on_in_its_shape(tmp_path, tiny_model_dir, suffix, full):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    folder = _folder(tmp_path)
    out = tmp_path / f"r{suffix}"
    flags = ["--model", str(tiny_model_dir), *(["--full"] if full else [])]
    assert runner.invoke(app, ["classify", str(folder), "-o", str(out), *flags]).exit_code == 0
    _old_shape(out, full)
    columns = list(_rows(out)[0])
    kept = _rows(out)[:3]
    # keep the first 3 rows, as a stopped run leaves them
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(pq.read_table(out).slice(0, 3), out)
    elif suffix == ".csv":
        out.write_text("".join(out.read_text().splitlines(keepends=True)[:4]))
    else:
        out.write_text("".join(out.read_text().splitlines(keepends=True)[:3]))
    res = runner.invoke(app, ["classify", str(folder), "-o", str(out), "--resume", *flags])
    assert res.exit_code == 0, res.output
    rows = _rows(out)
    assert [r["input"] for r in rows] == sorted(str(p) for p in folder.iterdir())
    assert all(list(r) == columns for r in rows)  # one shape in the whole file
    assert rows[:2] == kept[:2]
