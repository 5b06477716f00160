"""MEDIMG_MODEL_DIR names the model for every command that classifies, as it did for `serve` only: a team that
deploys its own model sets it once, and `medimg classify` on the same machine no longer answers with the shipped
default without a word. `--model` still wins."""

from __future__ import annotations

import json

from PIL import Image
from typer.testing import CliRunner

from medimg import cli


def _png(tmp_path):
    path = tmp_path / "a.png"
    Image.effect_mandelbrot((96, 96), (-2, -1.2, 1, 1.2), 60).convert("RGB").save(path)
    return path


def _models(result) -> set[str]:
    return {json.loads(line)["model"] for line in result.stdout.splitlines() if line.startswith("{")}


def test_classify_takes_its_model_from_medimg_model_dir_and_model_overrides_it(tmp_path):
    img = _png(tmp_path)
    runner = CliRunner()
    plain = runner.invoke(cli.app, ["classify", str(img), "--format", "jsonl"], env={"MEDIMG_MODEL_DIR": ""})
    fast = runner.invoke(cli.app, ["classify", str(img), "--format", "jsonl"], env={"MEDIMG_MODEL_DIR": "fast"})
    named = runner.invoke(cli.app, ["classify", str(img), "--format", "jsonl", "--model", "default"],
                          env={"MEDIMG_MODEL_DIR": "fast"})
    assert plain.exit_code == fast.exit_code == named.exit_code == 0, (plain.output, fast.output, named.output)
    assert _models(plain) == _models(named) != _models(fast), (_models(plain), _models(fast))
    bad = runner.invoke(cli.app, ["classify", str(img)], env={"MEDIMG_MODEL_DIR": str(tmp_path / "none")})
    assert bad.exit_code == 2 and "none" in bad.output, bad.output
