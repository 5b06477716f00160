"""A newcomer's first hour: what `--help` shows, what a run that finds nothing says, and the docs' examples run."""
import json
import os
import re
import shutil
from pathlib import Path

import typer
from typer.testing import CliRunner

from builders import dicom_file, image_bytes
from medimg.cli import ROUTES, app
from words import flat

runner = CliRunner()
DOCS = Path(__file__).resolve().parents[1] / "docs"
COMMANDS = ("classify", "extract", "evaluate", "serve", "scale", "train")


def wide_help(*args: str) -> str:
    res = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    return res.output


def test_flags_show_no_value_and_types_are_plain_words():
    """typer 0.29 showed `--full <bool>`, read as `--full true` (and `true` then became an input, a missing file);
    INPUTS was `<list[str]>`, --model `<path>` though it takes `fast`, and values `<str>` or `<float range>`."""
    for args in [(), *((c,) for c in COMMANDS)]:
        text = wide_help(*args)
        assert not re.search(r"<(bool|str|int|float)\b| range>|list\[", text), args  # Python's names for types
        for flag in ("--help", "--version", "--full", "--resume", "--offline", "--json", "--null", "--no-cv"):
            assert not re.search(rf"(^|\s){flag}(\s+-\w+)?\s+<", text), (args, flag)  # no type after the flag
    for command in ("classify", "evaluate", "scale", "serve"):
        assert re.search(r"--model\s+<folder\|fast>", wide_help(command)), command


def test_a_command_description_is_not_broken_where_its_source_line_ended():
    """The second paragraph of classify's and scale's --help kept the docstring's line breaks, so it broke
    mid-sentence ("…in memory and a" / "stopped one…") whatever the terminal's width."""
    group = typer.main.get_command(app)
    for name in COMMANDS:
        text = wide_help(name)
        doc = group.commands[name].callback.__doc__
        for paragraph in doc.split("\n\n"):
            words = " ".join(paragraph.split())
            assert any(words in " ".join(line.split()) for line in text.splitlines()), (name, words)
    assert "whether each is a medical image" in wide_help()  # what medimg does, not "The `medimg` command: …"


def test_train_help_states_each_default_per_route():
    text = flat(wide_help("train"))
    for option, key in (("--threads", "threads"), ("--samples-per-epoch", "samples_per_epoch"), ("--pages", "pages")):
        said = text.split(option, 1)[1].split(" --", 1)[0]
        assert f"finetune {ROUTES['finetune'][key]}" in said, (option, said)
        assert f"cnn {ROUTES['cnn'].get(key, 0)}" in said, (option, said)
    assert "The random seed" in text


def test_a_folder_with_nothing_to_classify_says_why(tmp_path, tiny_model_dir):
    """`classify empty/` printed only "0 images classified, 0 errors, 1 skipped (--show-skipped lists them)"."""
    (tmp_path / "empty").mkdir()
    notes = tmp_path / "notes"
    notes.mkdir()
    for i in range(7):
        (notes / f"{i}.txt").write_text("hello")
    res = runner.invoke(app, ["classify", str(tmp_path / "empty"), "--model", str(tiny_model_dir)])
    assert res.exit_code == 1
    assert "folder holds no files" in flat(res.output)
    res = runner.invoke(app, ["classify", str(notes), "--model", str(tiny_model_dir), "-f", "jsonl"])
    assert res.exit_code == 1
    said = flat(res.output)
    assert "0 images classified, 0 errors, 7 skipped (--show-skipped lists them)" in said
    assert f"{notes / '0.txt'}: skipped: not an image" in said and "and 2 more (--show-skipped lists them)" in said
    # once an image is classified, the notes stay behind --show-skipped as before
    (notes / "a.png").write_bytes(image_bytes("PNG"))
    res = runner.invoke(app, ["classify", str(notes), "--model", str(tiny_model_dir)])
    assert res.exit_code == 0 and "not an image" not in res.output


def test_extract_names_its_first_errors_and_why_it_found_nothing(tmp_path):
    """extract said "0 images, 1 error, 0 skipped → out": why was only in out/manifest.jsonl."""
    (tmp_path / "a.png").write_bytes(image_bytes("PNG"))
    missing = tmp_path / "nosuch.png"
    res = runner.invoke(app, ["extract", str(missing), str(tmp_path / "a.png"), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0
    assert f"1 image, 1 error, 0 skipped → {tmp_path / 'out'} {missing}: file not found" in flat(res.output)
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["extract", str(tmp_path / "empty"), "-o", str(tmp_path / "out2")])
    assert res.exit_code == 1 and "folder holds no files" in flat(res.output)
    res = runner.invoke(app, ["extract", *(str(tmp_path / f"no{i}.png") for i in range(7)), "-o", str(tmp_path / "o3")])
    assert f"and 2 more ({tmp_path / 'o3' / 'manifest.jsonl'} has every error)" in flat(res.output)


def test_evaluate_report_keeps_long_paths_on_one_line(tmp_path, tiny_model_dir):
    """The report is 120 columns wide: a long path of a read error or a misread image was cut into two lines, so a
    saved report's paths could not be used (or grepped)."""
    src = tmp_path / "labelled" / "ct" / "site-a"
    src.mkdir(parents=True)
    (src / "scan.png").write_bytes(image_bytes("PNG"))
    broken = src / ("a-very-long-file-name-" * 6 + ".png")
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    res = runner.invoke(app, ["evaluate", str(tmp_path / "labelled"), "--model", str(tiny_model_dir)])
    assert res.exit_code == 0, res.output
    assert any(str(broken) in line for line in res.stdout.splitlines()), res.stdout


def _snippet(doc: Path, marker: str) -> str:
    block = re.search(r"```python\n(.*?)```", doc.read_text().split(marker, 1)[1], re.S).group(1)
    return "\n".join(line.removeprefix("  ") for line in block.splitlines())


def test_keeping_the_medical_images_example_of_cli_md_runs(tmp_path, monkeypatch):
    """docs/cli.md's join of classify's rows and extract's manifest copied to "medical/" without making it:
    FileNotFoundError on the first medical image."""
    ct = dicom_file("CT_small.dcm")
    monkeypatch.chdir(tmp_path)
    shutil.copy(ct, "ct.dcm")
    Path("photo.png").write_bytes(image_bytes("PNG", size=(96, 96)))
    res = runner.invoke(app, ["classify", "ct.dcm", "photo.png", "-f", "jsonl", "-o", "results.jsonl"])
    assert res.exit_code == 0, res.output
    assert [json.loads(line)["verdict"] for line in open("results.jsonl")][0] == "medical"
    assert runner.invoke(app, ["extract", "ct.dcm", "photo.png", "--out", "extracted/"]).exit_code == 0
    exec(_snippet(DOCS / "cli.md", "**Keeping the medical images.**"), {})
    assert os.listdir("medical") == ["000001.png"]
