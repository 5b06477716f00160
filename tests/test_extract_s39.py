"""`medimg extract` (session 39): one run at a time writes into an output folder."""

import io
import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from medimg.cli import app

runner = CliRunner()
fcntl = pytest.importorskip("fcntl", reason="folders are locked with flock, which Windows lacks")


def pngs(folder, n) -> list[str]:
    folder.mkdir()
    for i in range(n):
        buf = io.BytesIO()
        Image.new("RGB", (90, 70), (i * 20, 100, 200 - i * 20)).save(buf, "PNG")
        (folder / f"{i}.png").write_bytes(buf.getvalue())
    return [str(folder / f"{i}.png") for i in range(n)]


def test_a_second_run_into_a_folder_being_written_is_refused_and_changes_nothing(tmp_path):
    """A --resume started while the first run still writes (cron starting it again too soon) trimmed the
    manifest under the running one, removed its temporary PNGs and wrote the same numbers: the first crashed
    (FileNotFoundError renaming its PNG) and the manifest held a run of NULs. Now it is refused (exit 2)."""
    from medimg.extract import extract, prepare

    names = pngs(tmp_path / "in", 6)
    out = tmp_path / "out"
    stream = extract(names, out, workers=2, folder=prepare(out, False))
    first = [next(stream) for _ in range(2)]
    before = (out / "manifest.jsonl").read_bytes()
    for extra in (["--resume"], []):
        res = runner.invoke(app, ["extract", *names, "--out", str(out), *extra])
        assert res.exit_code == 2, res.output
        assert "being written by another medimg run" in " ".join(res.output.replace("│", " ").split())
    assert (out / "manifest.jsonl").read_bytes() == before
    rest = list(stream)  # the first run ends as if alone
    rows = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert rows == [r for r, _ in first + rest]
    assert [r["file"] for r in rows] == [f"{i:06d}.png" for i in range(1, 7)]
    assert sorted(p.name for p in out.iterdir()) == sorted(["manifest.jsonl", *(r["file"] for r in rows)])
    res = runner.invoke(app, ["extract", *names, "--out", str(out), "--resume"])  # its lock went with it
    assert res.exit_code == 0, res.output


def test_resume_with_new_inputs_keeps_the_last_image_of_a_finished_run(tmp_path):
    """--resume removed the last input's rows and PNG to read it again, but a run carried on with new inputs
    (extract b1, then b2 --resume) was never given it: b1's last image was lost, its number given to b2's.
    Its rows go only when it is the first input written; else they stay (a cut-off line still goes)."""
    first, second = pngs(tmp_path / "b1", 3), pngs(tmp_path / "b2", 2)
    out = tmp_path / "out"
    assert runner.invoke(app, ["extract", str(tmp_path / "b1"), "--out", str(out)]).exit_code == 0
    with open(out / "manifest.jsonl", "ab") as f:
        f.write(b'{"input": "cut off')
    res = runner.invoke(app, ["extract", str(tmp_path / "b2"), "--out", str(out), "--resume"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert [(r["input"], r["file"]) for r in rows] == [(n, f"{i:06d}.png") for i, n in enumerate(first + second, 1)]
    assert sorted(p.name for p in out.iterdir()) == sorted(["manifest.jsonl", *(r["file"] for r in rows)])
    # given again, b1 is passed over whole and b2, the last input now, is read again: the same output
    res = runner.invoke(app, ["extract", str(tmp_path / "b1"), str(tmp_path / "b2"), "--out", str(out), "--resume"])
    assert res.exit_code == 0, res.output
    assert [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()] == rows
