"""The command line as a data-curation user runs it (session 48): the names and paths it says on the terminal."""
from typer.testing import CliRunner

from builders import image_bytes
from medimg.cli import app
from words import flat, unspaced

runner = CliRunner()


def test_a_failed_name_with_a_newline_is_said_on_one_line(tmp_path, tiny_model_dir):
    """`printf 'a.png\\nb.png\\n' | medimg classify --null --inputs-from -` (a list of lines read as one NUL-separated
    name): the errors named after the summary printed the name's newlines as they are, so the name read as
    three lines of the terminal, `b.png` looking like a message of its own."""
    names = f"{tmp_path}/a.png\n{tmp_path}/b\tc.png\n"
    res = runner.invoke(app, ["classify", "--null", "--inputs-from", "-", "-f", "jsonl", "--model",
                              str(tiny_model_dir)], input=names)
    assert res.exit_code == 1
    said = res.stderr.splitlines()
    line = f"  {tmp_path}/a.png\\n{tmp_path}/b\\tc.png\\n: file not found"
    assert any(s.startswith(line) for s in said), said  # then the hint on the newline around it
    # extract names its first errors the same way; a name without them as it is
    res = runner.invoke(app, ["extract", f"{tmp_path}/x\ny.png", str(tmp_path / "plain.png"), "-o",
                              str(tmp_path / "ex")])
    assert res.exit_code == 1
    said = res.stderr.splitlines()
    assert f"  {tmp_path}/x\\ny.png: file not found" in said, said
    assert f"  {tmp_path / 'plain.png'}: file not found" in said, said


def test_an_out_inside_a_file_is_said_to_be_one(tmp_path, tiny_model_dir):
    """`-o scans/a.png/r.csv` (a slip of the shell's completion) said "folder scans/a.png does not exist", of a
    file that does exist."""
    (tmp_path / "a.png").write_bytes(image_bytes("PNG"))
    res = runner.invoke(app, ["classify", str(tmp_path / "a.png"), "-o", str(tmp_path / "a.png" / "r.csv"),
                              "--model", str(tiny_model_dir)])
    assert res.exit_code == 2
    assert f"{tmp_path / 'a.png'} is a file, not a folder" in flat(res.output)
    res = runner.invoke(app, ["classify", str(tmp_path / "a.png"), "-o", str(tmp_path / "no" / "r.csv"),
                              "--model", str(tiny_model_dir)])
    assert res.exit_code == 2 and f"folder {tmp_path / 'no'} does not exist" in flat(res.output)


def test_serve_help_says_which_addresses_every_interface_takes():
    """`serve --help` said "0.0.0.0 for every interface", while 0.0.0.0 listens on IPv4 alone and `::` on IPv6
    alone (measured: with --host :: a request to 127.0.0.1 is refused), as server.md and cli.md say."""
    res = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "250"})
    assert "0.0.0.0foreveryIPv4interface,::foreveryIPv6one" in unspaced(res.output)


def test_a_very_long_failed_name_is_said_cut_and_at_once(tmp_path, tiny_model_dir):
    """A list of data: URIs (img srcs copied from pages), none readable: the errors named after the summary printed
    each name whole, and rich took minutes to wrap a name of 100,000 characters (60,000: 39 s; 200,000: 7 min,
    measured) after the run itself had ended. The records keep the name whole."""
    import time

    name = "data:image/png;base64," + "A" * 100_000
    (tmp_path / "list.txt").write_text(name + "\n")
    started = time.monotonic()
    res = runner.invoke(app, ["classify", "--inputs-from", str(tmp_path / "list.txt"), "-f", "jsonl", "--model",
                              str(tiny_model_dir)])
    assert time.monotonic() - started < 60  # about 1 s now; the whole name was minutes on a fast machine
    assert res.exit_code == 1
    assert name in res.stdout  # the record: whole
    line = next(line for line in res.stderr.splitlines() if line.startswith("  data:"))
    assert len(line) < 600 and "(100,022 characters)" in line and line.endswith(": unrecognised content: not an "
                                                                                 "image, document or archive medimg "
                                                                                 "reads (75,000 bytes, starting 00 00 "
                                                                                 "00 00 00 00 00 00)")
