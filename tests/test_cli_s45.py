"""The command line as a data-curation user runs it (session 45): what a failed run says on the terminal."""
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from builders import image_bytes
import medimg
from medimg.cli import app
from words import flat

runner = CliRunner()


def test_a_run_that_classified_nothing_into_a_file_names_its_first_errors(tmp_path, tiny_model_dir):
    """`classify nosuch.png -o r.jsonl` said only "0 images classified, 1 error" and exit 1: why was in r.jsonl
    alone (a typo, a refused URL), where extract names its first errors after the summary."""
    missing = [tmp_path / f"no{i}.png" for i in range(7)]
    out = tmp_path / "r.jsonl"
    res = runner.invoke(app, ["classify", *map(str, missing), "-o", str(out), "--model", str(tiny_model_dir)])
    assert res.exit_code == 1
    said = flat(res.stderr)
    assert f"0 images classified, 7 errors {missing[0]}: file not found" in said
    assert f"and 2 more ({out} has every error)" in said
    assert str(missing[5]) not in said
    # records to a pipe: the same; one image classified: the errors stay in the records, as before
    res = runner.invoke(app, ["classify", str(missing[0]), "-f", "jsonl", "--model", str(tiny_model_dir)])
    assert res.exit_code == 1 and f"{missing[0]}: file not found" in flat(res.stderr)
    (tmp_path / "a.png").write_bytes(image_bytes("PNG"))
    res = runner.invoke(app, ["classify", str(tmp_path / "a.png"), str(missing[0]), "-o", str(tmp_path / "b.jsonl"),
                              "--model", str(tiny_model_dir)])
    assert res.exit_code == 0 and "file not found" not in res.stderr


def test_a_file_named_like_an_option_is_said_to_be_one(tmp_path, monkeypatch, tiny_model_dir):
    """`medimg classify *` in a folder holding `-scan.png` said only "No such option: -s"."""
    monkeypatch.chdir(tmp_path)
    for name in ("-scan.png", "--odd.png"):
        (tmp_path / name).write_bytes(image_bytes("PNG"))
        res = runner.invoke(app, ["classify", name, "--model", str(tiny_model_dir)])
        assert res.exit_code == 2
        assert f"'{name}' is a file: give it as ./{name}, or after --" in flat(res.output)
    res = runner.invoke(app, ["classify", "-nosuch", "--model", str(tiny_model_dir)])
    assert res.exit_code == 2 and "is a file" not in res.output  # an option mistyped: as before
    res = runner.invoke(app, ["classify", "-f", "jsonl", "--model", str(tiny_model_dir), "--", "-scan.png"])
    assert res.exit_code == 0 and '"input": "-scan.png"' in res.stdout


def test_batch_size_help_says_memory_grows_with_it():
    """--batch-size said only "Images per model call": 600 held 1.2 GB where 32 held 0.27 GB (measured, 2026-12-07),
    so a user raising it for speed on a big list could run out of memory without warning."""
    for command in ("classify", "evaluate"):
        res = runner.invoke(app, [command, "--help"], env={"COLUMNS": "250"})
        assert "memory grows with it" in flat(res.output), command


def test_a_run_stopped_while_its_list_on_standard_input_is_open_ends_with_its_own_code(tmp_path, tiny_model_dir):
    """`(echo a.png; sleep 60) | medimg classify --inputs-from - -f jsonl > /dev/full`: the run stopped (no room,
    exit 74; Ctrl-C: 130) while the inputs' thread waited on standard input, and Python aborted at exit
    ("could not acquire lock for <stdin> at interpreter shutdown"): exit 134, a core dump maybe."""
    (tmp_path / "a.png").write_bytes(image_bytes("PNG"))
    env = {**os.environ, "PYTHONPATH": str(Path(medimg.__file__).parents[1])}
    with open("/dev/full", "wb") as full:
        p = subprocess.Popen([sys.executable, "-m", "medimg", "classify", "--inputs-from", "-", "-f", "jsonl",
                              "--model", str(tiny_model_dir)], stdin=subprocess.PIPE, stdout=full,
                             stderr=subprocess.PIPE, cwd=tmp_path, env=env)
        p.stdin.write(b"a.png\n")
        p.stdin.flush()  # and the list stays open
        try:
            p.wait(timeout=120)  # not communicate(), which would close the list
        finally:
            p.kill()
            p.stdin.close()
        err = p.stderr.read().decode()
    assert p.returncode == 74, err
    assert "no room to write" in err and "Fatal Python error" not in err
