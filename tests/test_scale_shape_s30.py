"""`scale` writes its rows as `classify --full` does in each format (JSONL `probs` and `metadata` objects,
Parquet a `probs` struct, CSV `prob_<label>` columns), plus `source_rows`; `--resume` reads its files and
refuses to add them to a folder of an earlier medimg's rows (probs as JSON text)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from builders import zip_bytes
from words import flat

ray = pytest.importorskip("ray", reason="the scale extra (ray[data]) is not installed")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from medimg.cli import app  # noqa: E402
from medimg.pipeline import RECORD_FIELDS  # noqa: E402
from medimg.scale.ray_job import ClassifyInputs, done_inputs, run  # noqa: E402

runner = CliRunner()
# the columns an earlier medimg's scale wrote, probs and metadata JSON text in every format
EARLIER = RECORD_FIELDS + ["skipped", "format", "metadata", "probs", "source", "model", "source_rows"]


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def png(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (48, 40), color).save(buf, "PNG")
    return buf.getvalue()


def inputs(folder) -> list[str]:
    """An image, a zip of two (each row's source is the zip), and a broken file (an error's row)."""
    folder.mkdir()
    (folder / "red.png").write_bytes(png((250, 5, 5)))
    (folder / "set.zip").write_bytes(zip_bytes({"scans/a.png": png((5, 250, 5)), "b.png": png((5, 5, 250))}))
    (folder / "broken.png").write_bytes(png((1, 2, 3))[:30])
    return [str(folder / n) for n in ("red.png", "set.zip", "broken.png")]


def classified(ins, tmp_path, model, fmt) -> list[dict]:
    """classify --full's rows of `ins` in `fmt`, read back as `read` reads scale's (sorted), without the
    `threshold` that classify writes last (scale's rows have none)."""
    out = tmp_path / f"classify.{fmt}"
    res = runner.invoke(app, ["classify", *ins, "--model", str(model), "--full", "--format", fmt, "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = read(out, fmt)
    assert all(list(r)[-1] == "threshold" and float(r.pop("threshold")) == 0.8 for r in rows)  # the tiny model's
    return rows


def read(path, fmt) -> list[dict]:
    """The rows of a file, or of a folder's files, sorted by input and locator."""
    files = sorted(path.glob(f"*.{'json' if fmt == 'jsonl' else fmt}")) if path.is_dir() else [path]
    if fmt == "jsonl":
        rows = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    elif fmt == "csv":
        rows = [r for f in files for r in csv.DictReader(f.open(newline=""))]
    else:
        rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    return sorted(rows, key=lambda r: (r["input"], r["locator"]))


def cell(name, value):
    """A CSV cell as a value: Arrow writes 1.0 as 1, Python's csv as 1.0."""
    if value and (name.startswith("prob_") or name in ("confidence", "p_medical")):
        return float(value)
    return json.loads(value) if name == "metadata" and value else value


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv"])
def test_scale_rows_have_classify_full_shape_and_resume(tmp_path, tiny_model_dir, ray_local, fmt):
    """The same rows as classify --full, in its columns, order and types, then source_rows; a resumed job's
    files join the first run's as one table."""
    ins = inputs(tmp_path / "in")
    want = classified(ins, tmp_path, tiny_model_dir, fmt)
    out = tmp_path / "out"
    kw = {"fmt": fmt, "model_dir": str(tiny_model_dir), "concurrency": 1, "inputs_per_batch": 1}
    assert run(ins[:2], out, **kw) == 3
    plan: dict = {}
    assert run(ins, out, resume=True, plan=plan, **kw) == 1 and plan["passed_over"] == 2
    got = read(out, fmt)
    assert len(got) == len(want) == 4
    assert [int(r["source_rows"]) for r in got] == [1, 1, 2, 2]  # broken.png, red.png, the zip's two
    for g, w in zip(got, want):
        assert list(g) == list(w) + ["source_rows"]  # classify's columns in its order
        del g["source_rows"]
        if fmt == "csv":
            g, w = ({k: cell(k, v) for k, v in r.items()} for r in (g, w))
        if fmt == "jsonl":
            w["metadata"], w["probs"] = w["metadata"] or None, w["probs"] or None  # classify's {}: null here
        assert g == w
    error, image = got[0], got[1]
    assert error["error"] and not error["label"]
    if fmt == "jsonl":
        assert isinstance(image["probs"], dict) and isinstance(image["metadata"], dict)
        assert set(image["probs"]) == {"xray", "photo", "graphic"} and error["probs"] is None
        assert error["metadata"] is None
    if fmt == "csv":
        assert {"prob_xray", "prob_photo", "prob_graphic"} <= set(image) and "probs" not in image
        assert error["prob_xray"] == ""
    if fmt == "parquet":
        import pandas as pd
        import pyarrow.dataset as pds

        expected = pq.read_schema(tmp_path / "classify.parquet")
        expected = expected.remove(expected.get_field_index("threshold")).append(pa.field("source_rows", pa.int64()))
        for f in out.glob("*.parquet"):  # every file: classify's types, probs a struct of float64 per label
            assert pq.read_schema(f).equals(expected, check_metadata=False)
        table = pds.dataset(out).to_table()  # the folder, two runs' files, as one table
        assert table.num_rows == 4 and table.schema.equals(expected, check_metadata=False)
        frame = pd.read_parquet(out)
        assert len(frame) == 4 and max(p["photo"] for p in frame["probs"] if p is not None) > 0.9
        ray.data.read_parquet(str(out)).write_json(str(tmp_path / "ray"))  # Ray's own JSON of these files
        rows = [json.loads(line) for f in (tmp_path / "ray").iterdir() for line in f.read_text().splitlines()]
        assert sorted(type(r["probs"]).__name__ for r in rows) == ["NoneType", "dict", "dict", "dict"]


def earlier(out, fmt, probs='{"xray": 0.9, "photo": 0.05, "graphic": 0.05}') -> None:
    """A file as the earlier medimg wrote it: probs (and metadata) JSON text, columns in its order."""
    row = {c: None for c in EARLIER}
    row.update(input="a.png", locator="", label="xray", medical=True, confidence=0.9, p_medical=0.9,
               verdict="medical", skipped=False, source="a.png", model="tiny-test-model 0", source_rows=1,
               probs=probs, metadata=probs and '{"mode": "RGB"}')
    if fmt == "jsonl":
        (out / "old_000000.json").write_text(json.dumps(row) + "\n")
    elif fmt == "csv":
        with open(out / "old_000000.csv", "w", newline="") as f:
            w = csv.DictWriter(f, EARLIER)
            w.writeheader()
            w.writerow(row)
    else:
        types = {"medical": pa.bool_(), "skipped": pa.bool_(), "confidence": pa.float64(),
                 "p_medical": pa.float64(), "width": pa.int64(), "height": pa.int64(), "source_rows": pa.int64()}
        schema = pa.schema([(c, types.get(c, pa.string())) for c in EARLIER])
        pq.write_table(pa.Table.from_pylist([row], schema=schema), out / "old_000000.parquet")


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv"])
def test_resume_refuses_a_folder_of_an_earlier_medimgs_rows(tmp_path, tiny_model_dir, fmt):
    """Rows with probs as JSON text are an earlier medimg's: this run's beside them would leave two shapes in one
    folder (its Parquet files no longer one table), so resuming refuses, before deleting or running anything."""
    out = tmp_path / "out"
    out.mkdir()
    earlier(out, fmt)
    (out / f"cut.{'json' if fmt == 'jsonl' else fmt}").write_bytes(b"PAR1 cut off" if fmt == "parquet" else b'"in')
    files = {p: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ValueError, match="written by an earlier medimg, with probs as JSON text"):
        done_inputs(out, fmt)
    (listing := tmp_path / "list.txt").write_text("a.png\nb.png\n")
    res = runner.invoke(app, ["scale", str(listing), "--out", str(out), "--format", fmt, "--resume",
                              "--model", str(tiny_model_dir)])
    assert res.exit_code == 2 and "earlier medimg" in flat(res.output) and "Finish the run" in flat(res.output)
    assert {p: p.read_bytes() for p in out.iterdir()} == files


def test_resume_reads_an_earlier_medimgs_jsonl_of_errors_alone(tmp_path):
    """An earlier JSONL file of errors' rows alone (no probs, no metadata) is the same in both shapes: it is
    resumed. (Its Parquet schema, or its CSV header, still says probs is text.)"""
    out = tmp_path / "out"
    out.mkdir()
    earlier(out, "jsonl", probs=None)
    assert "a.png" in done_inputs(out, "jsonl") and "b.png" not in done_inputs(out, "jsonl")


def test_resume_deletes_a_csv_file_stopped_in_its_header(tmp_path):
    """Ray creates a file before it writes into it: a stop in the header (`source` now after `format`, then the
    prob_<label> columns) leaves a file cut off (deleted, its inputs done again), not another program's."""
    from medimg.output import csv_fields

    header = ",".join(f'"{c}"' for c in csv_fields(["xray", "photo"]) + ["source_rows"])
    for at in ('"sou', '"prob_xr', '"prob_photo","meta', '"source_ro'):
        (tmp_path / "a_000000.csv").write_text(header[:header.index(at) + len(at)])
        assert len(done_inputs(tmp_path, "csv")) == 0 and not list(tmp_path.iterdir())


def test_an_actor_with_other_labels_than_the_job_refuses_its_batches(tmp_path, tiny_model_dir):
    """Every file's probs columns are the driver's model's labels: a machine whose model has others says so,
    from each call (Ray restarts an actor that fails to start, and hands its error back only as text)."""
    actor = ClassifyInputs(str(tmp_path / "list"), ["xray", "photo"], model_dir=str(tiny_model_dir))
    with pytest.raises(ValueError, match="every machine needs the same --model"):
        actor({"start": [0], "size": [0]})
