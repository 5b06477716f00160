"""Session 47: a long run keeps nothing per record (the inputs cut short were kept whole, one Record each)."""
import gc
import re

from PIL import Image
from typer.testing import CliRunner

import medimg.cli as cli
from medimg.cli import app
from medimg.pipeline import Record

runner = CliRunner()


def test_inputs_cut_short_are_counted_not_kept(tmp_path, tiny_model_dir, monkeypatch):
    """A folder of animations each stopped at --max-images: the summary names 5 and counts the rest, while the
    run holds no record of them (a night's run over 100,000 such files held every one until its end)."""
    frames = [Image.new("RGB", (40, 30), c) for c in [(250, 0, 0), (0, 250, 0), (0, 0, 250)]]
    for i in range(40):
        frames[0].save(tmp_path / f"a{i:02d}.gif", save_all=True, append_images=frames[1:])
    alive: list[int] = []
    warn = cli._warn_cut

    def counted(notes):
        gc.collect()
        alive.append(sum(isinstance(o, Record) for o in gc.get_objects()))
        return warn(notes)

    monkeypatch.setattr(cli, "_warn_cut", counted)
    res = runner.invoke(app, ["classify", str(tmp_path), "--all-frames", "--max-images", "1", "--model",
                              str(tiny_model_dir), "-o", str(tmp_path / "r.jsonl")])
    assert res.exit_code == 0, res.output
    said = re.sub(r"\s+", " ", res.stderr)
    assert "40 inputs not read to the end:" in said and "and 35 more (--show-skipped lists them)" in said
    assert "a00.gif: stopped after 1 image (max_images_per_input) — raise it with --max-images" in said
    assert alive and alive[0] < 10, alive  # was 40: every cut-short note's Record
