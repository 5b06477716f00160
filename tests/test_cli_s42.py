"""The command line as a curation engineer drives it (session 42): a second --inputs-from is refused, not
silently put in the first one's place, and `evaluate --predictions` leaves a file already there as it is until
it has rows to write (a usage error used to empty it before anything was scored)."""
import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from medimg.cli import app
from words import flat

runner = CliRunner()


def _png(path, colour=(220, 10, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 40), colour).save(path)
    return path


@pytest.mark.parametrize("command", ["classify", "extract"])
def test_a_second_inputs_from_is_refused_not_put_in_the_first_ones_place(tmp_path, tiny_model_dir, command):
    # Before: click kept the last --inputs-from, so a.png (the first list's) was never read, and nothing said so.
    a, b = _png(tmp_path / "a.png"), _png(tmp_path / "b.png", (10, 220, 10))
    (tmp_path / "one.txt").write_text(f"{a}\n")
    (tmp_path / "two.txt").write_text(f"{b}\n")
    out = tmp_path / ("r.jsonl" if command == "classify" else "png")
    model = ["--model", str(tiny_model_dir)] if command == "classify" else []
    res = runner.invoke(app, [command, "--inputs-from", str(tmp_path / "one.txt"), "--inputs-from",
                              str(tmp_path / "two.txt"), "-o", str(out), *model])
    assert res.exit_code == 2, res.output
    assert "give one list, not 2" in flat(res.output) and "--inputs-from -" in flat(res.output)
    assert not out.exists()  # nothing run, nothing written


def test_one_inputs_from_still_reads_its_list(tmp_path, tiny_model_dir):
    a = _png(tmp_path / "a.png")
    (tmp_path / "one.txt").write_text(f"{a}\n")
    out = tmp_path / "r.jsonl"
    res = runner.invoke(app, ["classify", "--inputs-from", str(tmp_path / "one.txt"), "-o", str(out),
                              "--model", str(tiny_model_dir)])
    assert res.exit_code == 0, res.output
    assert [json.loads(line)["input"] for line in out.read_text().splitlines()] == [str(a)]


def _labelled(tmp_path, tiny_model_dir):
    labels = json.loads((tiny_model_dir / "labels.json").read_text())["labels"]
    root = tmp_path / "lab"
    for i, label in enumerate(labels[:2]):
        _png(root / label / f"src{i}" / "x.png", (200, 40 * i, 10))
    return root


@pytest.mark.parametrize("how", ["a label folder that is not a label", "a model that does not load"])
def test_evaluate_leaves_the_predictions_file_there_as_it_is_on_a_usage_error(tmp_path, tiny_model_dir, how):
    # Before: --predictions was opened for writing (emptied) first, so last week's rows were gone on exit 2.
    root = _labelled(tmp_path, tiny_model_dir)
    model = str(tiny_model_dir)
    if how == "a model that does not load":
        model = str(tmp_path / "no-such-model")
    else:
        _png(root / "not-a-label" / "s" / "y.png")
    kept = tmp_path / "preds.csv"
    kept.write_text("item,source,true,predicted\nold,row,ct,ct\n")
    res = runner.invoke(app, ["evaluate", str(root), "--model", model, "--predictions", str(kept)])
    assert res.exit_code == 2, res.output
    assert kept.read_text() == "item,source,true,predicted\nold,row,ct,ct\n"
    fresh = tmp_path / "fresh.jsonl"  # nor is a new one left behind, empty
    res = runner.invoke(app, ["evaluate", str(root), "--model", model, "--predictions", str(fresh)])
    assert res.exit_code == 2 and not fresh.exists(), res.output


def test_evaluate_writes_its_predictions_over_the_old_ones_when_it_has_rows(tmp_path, tiny_model_dir):
    root = _labelled(tmp_path, tiny_model_dir)
    kept = tmp_path / "preds.jsonl"
    kept.write_text('{"old": 1}\n')
    res = runner.invoke(app, ["evaluate", str(root), "--model", str(tiny_model_dir), "--predictions", str(kept)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in kept.read_text().splitlines()]
    assert len(rows) == 2 and all("verdict" in r for r in rows)
    bad = runner.invoke(app, ["evaluate", str(root), "--model", str(tiny_model_dir), "--predictions",
                              str(tmp_path / "no-dir" / "p.csv")])
    assert bad.exit_code == 2 and "cannot be written" in flat(bad.output)


def test_evaluate_predictions_dash_is_refused_not_a_file_named_dash(tmp_path, tiny_model_dir, monkeypatch):
    # Before: `--predictions -` (classify's `--out -` is standard output) wrote a file named '-'.
    root = _labelled(tmp_path, tiny_model_dir)
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["evaluate", str(root), "--model", str(tiny_model_dir), "--predictions", "-"])
    assert res.exit_code == 2, res.output
    assert "give a file name" in flat(res.output) and not (tmp_path / "-").exists()


def test_evaluate_counts_one_unlabelled_file_in_the_singular(tmp_path, tiny_model_dir):
    root = _labelled(tmp_path, tiny_model_dir)
    (root / "README.txt").write_text("notes")
    res = runner.invoke(app, ["evaluate", str(root), "--model", str(tiny_model_dir)])
    assert res.exit_code == 0, res.output
    assert "1 file beside the label folders is not scored (no label): README.txt" in flat(res.output)
