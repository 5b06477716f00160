"""`medimg classify` as a script uses it: unbuffered standard output, --help's names and exit codes, quoted
patterns, and an empty list of inputs (session 36's first-time and power-user review)."""

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from builders import image_bytes
from medimg.cli import app
from words import flat

runner = CliRunner()


def _run(args, stdout, env=None):
    return subprocess.run([sys.executable, "-m", "medimg", "classify", *args], stdout=stdout, stderr=subprocess.PIPE,
                          text=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full to write on")
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_unbuffered_standard_output_with_no_room_is_exit_74_for_json_and_csv(tmp_path, tiny_model_dir, fmt):
    """With PYTHONUNBUFFERED=1 (common in containers) or `python -u`, JSON's `[` and CSV's header reach the standard
    output at once, before the run: a full one was a traceback and exit 1 there, not the documented 74."""
    (tmp_path / "a.png").write_bytes(image_bytes())
    with open("/dev/full", "w") as full:
        done = _run([str(tmp_path / "a.png"), "--model", str(tiny_model_dir), "--format", fmt], full)
    said = flat(done.stderr)
    assert done.returncode == 74 and "stopped: no room to write" in said, said
    assert "Traceback" not in said


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_unbuffered_standard_output_whose_reader_has_gone_is_exit_141(tmp_path, tiny_model_dir, fmt):
    """A reader gone before the first write (`… | true`): exit 141 as the docs say, where click's own handler
    exited 1 (JSON's `[`, CSV's header, written before the run when unbuffered)."""
    (tmp_path / "a.png").write_bytes(image_bytes())
    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "w") as gone:
        done = _run([str(tmp_path / "a.png"), "--model", str(tiny_model_dir), "--format", fmt], gone)
    assert done.returncode == 141, done.stderr
    assert "Traceback" not in done.stderr and "Broken pipe" not in done.stderr


def test_help_names_the_arguments_as_the_messages_do_and_lists_the_exit_codes():
    """Usage lines said `[inputs]...`, `{input_list}`, `{folder}`, while the help texts and errors say INPUTS,
    INPUT_LIST and FOLDER; classify --help now lists its exit codes, for scripts."""
    said = flat(runner.invoke(app, ["classify", "--help"]).output)
    assert "[INPUTS]..." in said and "[inputs]" not in said
    for code in ("0 when an image was classified", "1 when none was", "2 for a usage error", "74 when the output",
                 "141 when the reader", "130/143"):
        assert code in said, code
    assert "under this many pixels" in said  # --min-side's unit
    assert "{INPUT_LIST}" in flat(runner.invoke(app, ["scale", "--help"]).output)
    assert "{FOLDER}" in flat(runner.invoke(app, ["evaluate", "--help"]).output)


def test_each_command_takes_one_line_in_the_command_list():
    """`medimg --help` listed scale's and evaluate's whole docstrings, broken where the source lines break
    ("as they are done,\\n in classify …"); each now has a one-sentence summary."""
    res = runner.invoke(app, ["--help"], env={"COLUMNS": "200"}, terminal_width=200)
    box = [line for line in res.output.split("Commands")[1].splitlines()[1:] if line.startswith("│")]
    names = [line.strip("│ ").split(" ")[0] for line in box]
    assert names == ["extract", "classify", "serve", "scale", "train", "evaluate"], res.output


def test_a_quoted_pattern_says_it_is_not_expanded(tmp_path, tiny_model_dir):
    """`medimg classify 'scans/*.png'` (quoted, so the shell left it) was a bare "file not found"."""
    (tmp_path / "a.png").write_bytes(image_bytes())
    res = runner.invoke(app, ["classify", str(tmp_path / "*.png"), "--model", str(tiny_model_dir), "-f", "jsonl"])
    assert res.exit_code == 1
    assert "a pattern (* or ?) is not expanded here" in res.stdout
    res = runner.invoke(app, ["classify", str(tmp_path / "b.png"), "--model", str(tiny_model_dir), "-f", "jsonl"])
    assert '"error": "file not found"' in res.stdout  # a plain name that is not there: no word about patterns


@pytest.mark.parametrize("given", ["-", "list.txt"])
def test_an_empty_list_of_inputs_says_so(tmp_path, tiny_model_dir, given, monkeypatch):
    """`find … | medimg classify --inputs-from -` that finds nothing was exit 1 with "0 images classified, 0
    errors" and nothing to say why; now the run says the list held no inputs."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "list.txt").write_text("# nothing yet\n\n")
    res = runner.invoke(app, ["classify", "--inputs-from", given, "--model", str(tiny_model_dir), "-f", "jsonl"],
                        input="")
    assert res.exit_code == 1
    assert f"{'standard input' if given == '-' else 'list.txt'} held no inputs" in flat(res.stderr)
    (tmp_path / "a.png").write_bytes(image_bytes())
    res = runner.invoke(app, ["classify", "--inputs-from", given, "--model", str(tiny_model_dir), "-f", "jsonl"],
                        input="a.png\n")
    if given == "-":  # a list with an input in it: no such word
        assert res.exit_code == 0 and "held no inputs" not in flat(res.stderr)


def test_a_list_read_from_the_terminal_says_how_to_end_it(tmp_path, tiny_model_dir):
    """`medimg classify --inputs-from -` with no pipe waited on the keyboard without a word, which looks like a
    hang; now it says the list is read from the terminal and how to end it. A pipe gets no such line."""
    import pty

    (tmp_path / "a.png").write_bytes(image_bytes())
    args = [sys.executable, "-m", "medimg", "classify", "--inputs-from", "-", "--model", str(tiny_model_dir), "-f",
            "jsonl"]
    main, side = pty.openpty()
    proc = subprocess.Popen(args, stdin=side, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    os.close(side)
    os.write(main, b"a.png\n\x04")  # a line, then the end of the list as Ctrl-D gives it
    out, err = proc.communicate(timeout=300)
    os.close(main)
    assert proc.returncode == 0, err
    assert '"input": "a.png"' in out
    assert "reading inputs from the terminal" in flat(err) and "Ctrl-D" in err
    piped = subprocess.run(args, input="a.png\n", capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert piped.returncode == 0 and "reading inputs from the terminal" not in piped.stderr
