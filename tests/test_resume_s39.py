"""`classify --resume` carrying on a finished run with new inputs kept the last input of that run: before, its rows
were removed "to be read again" (the run might have stopped part-way in it) but it was never read again, since it
was not among the new inputs, so they were lost. Now they go only when the first record the run writes is of that
input, of the input as given it came from, or of a folder or container it is in. Also: `-t nan` said "less than or
equal to 1", and `evaluate --predictions` rows now say their model and threshold as classify's rows do."""
import csv
import io
import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from medimg.cli import app
from words import flat

runner = CliRunner()
FORMATS = ["jsonl", "csv", "parquet"]


def _png(path, rgb):
    Image.new("RGB", (40, 40), rgb).save(path)


def _batches(tmp_path):
    """b1/ (two images) and b2/ (one)."""
    for name, files in (("b1", {"x.png": (220, 10, 10), "y.png": (10, 220, 10)}), ("b2", {"z.png": (200, 30, 30)})):
        (tmp_path / name).mkdir()
        for f, rgb in files.items():
            _png(tmp_path / name / f, rgb)
    return tmp_path / "b1", tmp_path / "b2"


def _pdf(path):
    """A PDF with two images, one a page: one input with two rows."""
    fitz = pytest.importorskip("fitz")
    doc = fitz.open()
    for rgb in ((220, 10, 10), (10, 220, 10)):
        buf = io.BytesIO()
        Image.new("RGB", (64, 64), rgb).save(buf, "PNG")
        doc.new_page(width=200, height=200).insert_image(fitz.Rect(10, 10, 150, 150), stream=buf.getvalue())
    doc.save(path)


def _rows(path):
    if path.suffix == ".csv":
        return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in path.read_text().splitlines()]


def _classify(tiny_model_dir, *args):
    res = runner.invoke(app, ["classify", *map(str, args), "--model", str(tiny_model_dir), "--workers", "1"])
    assert res.exit_code == 0, res.output
    return res


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("fmt", FORMATS)
def test_resume_with_new_inputs_keeps_the_last_input_of_a_finished_run(tmp_path, tiny_model_dir, fmt, full):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    b1, b2 = _batches(tmp_path)
    more = ["--full"] if full else []
    out, whole = tmp_path / f"r.{fmt}", tmp_path / f"whole.{fmt}"
    _classify(tiny_model_dir, b1, "-o", out, *more)
    res = _classify(tiny_model_dir, b2, "-o", out, "--resume", *more)
    _classify(tiny_model_dir, b1, b2, "-o", whole, *more)
    assert [r["input"] for r in _rows(out)] == [str(b1 / "x.png"), str(b1 / "y.png"), str(b2 / "z.png")]
    assert _rows(out) == _rows(whole)  # as one run over both
    assert "inputs passed over)" not in flat(res.output)  # none of this run's (session 44: the file's count, 2)
    assert f"the earlier run's last input, {b1 / 'y.png'}, is kept as written" in flat(res.output)  # said
    if fmt != "parquet":  # and the same command again changes nothing: b2/z.png, its last input, is done again
        before = out.read_bytes()
        _classify(tiny_model_dir, b1, b2, "-o", out, "--resume", *more)
        assert out.read_bytes() == before


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_resume_that_writes_nothing_loses_nothing(tmp_path, tiny_model_dir, fmt):
    """Only inputs already done given again (the first one alone): nothing written, nothing removed."""
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    b1, _ = _batches(tmp_path)
    out = tmp_path / f"r.{fmt}"
    _classify(tiny_model_dir, b1, "-o", out)
    rows = _rows(out)
    res = runner.invoke(app, ["classify", str(b1 / "x.png"), "-o", str(out), "--resume", "--model",
                              str(tiny_model_dir)])
    assert res.exit_code == 0, res.output  # a resumed run that passed inputs over is not a failure
    assert _rows(out) == rows and len(rows) == 2


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_input_stopped_part_way_is_still_done_again_whole(tmp_path, tiny_model_dir, fmt):
    """The same command again, after a stop in the middle of a PDF's images (its first row written): the PDF's
    rows go and it is read again, with new inputs after it or a new file in its folder before it."""
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    import shutil

    folder = tmp_path / "f"
    folder.mkdir()
    _png(folder / "a.png", (220, 10, 10))
    _pdf(folder / "m.pdf")
    _, b2 = _batches(tmp_path)
    whole = tmp_path / f"whole.{fmt}"
    _classify(tiny_model_dir, folder, "-o", whole)
    assert [r["input"] for r in _rows(whole)] == [str(folder / "a.png"), *[str(folder / "m.pdf")] * 2]
    _classify(tiny_model_dir, folder, "-o", whole, "--resume")  # the last input done again: the same rows
    assert len(_rows(whole)) == 3
    for case in ("same inputs, then new", "a new file before it"):
        out = tmp_path / f"stopped.{fmt}"
        _classify(tiny_model_dir, folder, "-o", tmp_path / f"full.{fmt}")
        shutil.copy(tmp_path / f"full.{fmt}", out)
        _cut_to(out, fmt, 2)  # a.png and the PDF's first image
        if case == "a new file before it":
            _png(folder / "b.png", (10, 220, 10))
            _classify(tiny_model_dir, folder, "-o", out, "--resume")
            want = ["a.png", "b.png", "m.pdf", "m.pdf"]
        else:
            _classify(tiny_model_dir, folder, b2, "-o", out, "--resume")
            want = ["a.png", "m.pdf", "m.pdf", "z.png"]
        got = _rows(out)
        assert [r["input"].rsplit("/", 1)[-1] for r in got] == want, case
        assert len({r["locator"] for r in got if r["input"].endswith("m.pdf")}) == 2, case


def _cut_to(path, fmt, n):
    """Keep the first n rows, as a run stopped after them leaves the file."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(pq.read_table(path).slice(0, n), path)
    elif fmt == "csv":
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(lines[:n + 1]), encoding="utf-8")
    else:
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(lines[:n]))


def test_a_csv_row_cut_in_its_last_field_is_not_kept(tmp_path, tiny_model_dir):
    """A stop in the middle of a CSV row's last field leaves as many fields as a whole row: the row is still cut
    off (no line end), so it goes, and the input is read again."""
    b1, _ = _batches(tmp_path)
    out = tmp_path / "r.csv"
    _classify(tiny_model_dir, b1, "-o", out)
    whole = out.read_bytes()
    out.write_bytes(whole[:-3])  # "0.6\r\n" -> "0."
    _classify(tiny_model_dir, b1, "-o", out, "--resume")
    assert out.read_bytes() == whole


@pytest.mark.parametrize("value", ["nan", "inf", "0.3"])
def test_a_threshold_that_is_not_a_number_from_half_to_one_says_so(tmp_path, tiny_model_dir, value):
    _png(tmp_path / "a.png", (220, 10, 10))
    for command in (["classify", str(tmp_path / "a.png")], ["evaluate", str(tmp_path)]):
        res = runner.invoke(app, [*command, "--model", str(tiny_model_dir), "-t", value])
        assert res.exit_code == 2
        said = flat(res.output)
        assert "must be a number between 0.5 and 1" in said and f"not {value}" in said, said
        assert "less than or equal" not in said


@pytest.mark.parametrize("name", ["rows.csv", "rows.jsonl"])
def test_evaluate_predictions_name_their_model_and_threshold(tmp_path, tiny_model_dir, name):
    """Two files written at -t 0.6 and -t 0.95 differed only in some verdicts, and nothing named the model."""
    for label, rgb in (("xray", (220, 10, 10)), ("photo", (10, 220, 10))):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(2):
            _png(tmp_path / "data" / label / f"{i}.png", rgb)
    out = tmp_path / name
    res = runner.invoke(app, ["evaluate", str(tmp_path / "data"), "--model", str(tiny_model_dir), "--json",
                              "-t", "0.95", "--predictions", str(out), "--workers", "1"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    rows = _rows(out)
    assert len(rows) == rep["n"] == 4
    model = f"{rep['model']['name']} {rep['model']['version']}"
    for row in rows:
        assert list(row)[-2:] == ["model", "threshold"]
        assert row["model"] == model and float(row["threshold"]) == 0.95 == rep["threshold"]
    classified = _rows(_write_classify(tmp_path, tiny_model_dir))
    assert {r["model"] for r in classified} == {model}  # as classify names it


def _write_classify(tmp_path, tiny_model_dir):
    out = tmp_path / "c.jsonl"
    _classify(tiny_model_dir, tmp_path / "data", "-o", out)
    return out
