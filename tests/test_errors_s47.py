"""Error messages and exit codes as a user meets them (session 47 review)."""

import pytest
from PIL import Image
from typer.testing import CliRunner

from medimg.cli import app
from words import flat, unspaced

runner = CliRunner()


def _classify(tiny_model_dir, *args):
    return runner.invoke(app, ["classify", *map(str, args), "--model", str(tiny_model_dir)])


@pytest.mark.parametrize("was, given", [("jsonl", "csv"), ("csv", "jsonl"), ("parquet", "jsonl"),
                                        ("jsonl", "parquet")])
def test_resume_of_a_file_written_in_another_format_names_its_format(tmp_path, tiny_model_dir, was, given):
    """`classify … -o run.csv --resume` of a JSONL file saved as .csv said it "is not a medimg CSV (its header is
    ['{"input": …', …])"; a Parquet file named .jsonl showed its bytes ('PAR1\\x15…'); a JSONL file given
    `-f parquet` was called a Parquet file a crash cut off, to be run again without --resume (losing its rows)."""
    image = tmp_path / "a.png"
    Image.new("RGB", (64, 64), (120, 30, 200)).save(image)
    first = tmp_path / f"first.{was}"
    assert _classify(tiny_model_dir, image, "-o", first).exit_code == 0
    out = tmp_path / f"run.{given}"
    out.write_bytes(first.read_bytes())
    res = _classify(tiny_model_dir, image, "-o", out, "--resume")
    assert res.exit_code == 2
    names = {"jsonl": "JSONL", "csv": "CSV", "parquet": "Parquet"}
    said = unspaced(res.output)
    want = f"{out} holds medimg {names[was]} rows, not {names[given]}: resume it with --format {was}"
    assert "".join(want.split()) in said
    assert "Traceback" not in res.output and out.read_bytes() == first.read_bytes()  # nothing in it lost
    # so told, it carries on
    res = _classify(tiny_model_dir, image, "-o", out, "--resume", "--format", was)
    assert res.exit_code == 0, res.output


def test_resume_of_a_file_in_its_own_format_or_someone_elses_is_as_before(tmp_path, tiny_model_dir):
    image = tmp_path / "a.png"
    Image.new("RGB", (64, 64), (120, 30, 200)).save(image)
    out = tmp_path / "r.csv"
    out.write_text("a,b\n1,2\n")
    res = _classify(tiny_model_dir, image, "-o", out, "--resume")
    assert res.exit_code == 2 and "is not a medimg CSV" in flat(res.output)
    out = tmp_path / "r.jsonl"
    assert _classify(tiny_model_dir, image, "-o", out).exit_code == 0
    assert _classify(tiny_model_dir, image, "-o", out, "--resume").exit_code == 0


def test_extract_into_a_folder_that_cannot_be_made_says_so_plainly(tmp_path):
    """`extract a.png -o notes.txt/pngs` (a file on the way) or `-o /sys/x` (read-only) said only
    "[Errno 20] Not a directory: '…'", Python's wording, with nothing on what to give instead."""
    image = tmp_path / "a.png"
    Image.new("RGB", (64, 64), (120, 30, 200)).save(image)
    (tmp_path / "notes.txt").write_text("x")
    out = tmp_path / "notes.txt" / "pngs"
    res = runner.invoke(app, ["extract", str(image), "-o", str(out)])
    assert res.exit_code == 2
    said = unspaced(res.output)
    assert "".join(f"{out} cannot be made: Not a directory; give a new or empty folder".split()) in said
    assert "Errno" not in said


def test_evaluate_stopped_says_what_it_scored(tmp_path, tiny_model_dir, monkeypatch):
    """Ctrl-C (or SIGTERM) in `medimg evaluate` ended it with exit 130 and nothing said, after maybe an hour of
    scoring, where classify and extract say what they did."""
    from types import SimpleNamespace

    import importlib

    # the module `evaluate` imports from (sys.modules'): a test that re-imports medimg.training leaves the
    # package's attribute on another copy, which `import medimg.training.evaluate as ev` would give
    ev = importlib.import_module("medimg.training.evaluate")

    def stopped_part_way(folder, clf, threshold, batch_size, progress=None, **kw):
        for error in (None, None, "file not found"):
            progress(SimpleNamespace(error=error))
        raise KeyboardInterrupt

    monkeypatch.setattr(ev, "evaluate_dir", stopped_part_way)
    (tmp_path / "ct" / "a").mkdir(parents=True)
    res = runner.invoke(app, ["evaluate", str(tmp_path), "--model", str(tiny_model_dir)])
    assert res.exit_code == 130
    assert "evaluate stopped: 2 images scored, no report written" in flat(res.stderr)


def test_a_folder_given_as_the_list_is_called_a_folder(tmp_path, tiny_model_dir):
    """`classify --inputs-from scans/` (a folder where a list was meant) said "scans: no such file", of a folder
    that is there."""
    scans = tmp_path / "scans"
    scans.mkdir()
    for command in (["classify", "--model", str(tiny_model_dir)], ["extract", "-o", str(tmp_path / "pngs")]):
        res = runner.invoke(app, [*command, "--inputs-from", str(scans)])
        assert res.exit_code == 2
        assert "".join(f"{scans} is a folder, not a list".split()) in unspaced(res.output), command
    res = runner.invoke(app, ["classify", "--inputs-from", str(tmp_path / "nope.txt")])
    assert res.exit_code == 2 and "no such file" in flat(res.output)


def test_scale_given_a_folder_as_its_list_calls_it_a_folder(tmp_path):
    pytest.importorskip("ray", reason="needs the scale extra (ray)")
    scans = tmp_path / "scans"
    scans.mkdir()
    res = runner.invoke(app, ["scale", str(scans), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "".join(f"{scans} is a folder, not a list".split()) in unspaced(res.output)


def test_a_model_file_given_for_its_folder_names_the_folder(tmp_path, tiny_model_dir):
    """`--model mymodel/model.onnx` said "no model in mymodel/model.onnx (expected labels.json)", of a file
    whose folder holds labels.json: the folder is what --model takes."""
    from medimg.model import Classifier

    for name in ("model.onnx", "labels.json"):
        res = runner.invoke(app, ["classify", str(tmp_path), "--model", str(tiny_model_dir / name)])
        assert res.exit_code == 2
        want = f"{tiny_model_dir / name} is a file, not a model folder: give the folder that holds it, {tiny_model_dir}"
        assert "".join(want.split()) in unspaced(res.output)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="is a file, not a model folder: give the folder with labels.json"):
        Classifier.load(tmp_path / "notes.txt")
