"""`train` reads its own checkpoints and models as tensors and plain data: a file that carries code (a
pickled object, as a planted or foreign `.pt` can) is refused, and its code never runs."""
import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="needs the train extra (torch)")

from medimg.training.train import _checkpoint, load_model  # noqa: E402


class Planted:
    """Unpickling this runs `os.system`: what `torch.load(weights_only=False)` would do with such a file."""

    def __init__(self, flag: Path):
        self.flag = flag

    def __reduce__(self):
        return (os.system, (f"touch {self.flag}",))


def test_a_checkpoint_carrying_code_is_set_aside_without_running_it(tmp_path):
    flag = tmp_path / "ran"
    ck = tmp_path / "checkpoint.pt"
    torch.save({"config": {}, "model": {}, "x": Planted(flag)}, ck)
    said = []
    assert _checkpoint(ck, said.append) is None
    assert not flag.exists(), "the checkpoint's code ran"
    assert (tmp_path / "checkpoint.pt.broken").exists() and not ck.exists()
    assert "cannot be read" in said[0]


def test_a_plain_checkpoint_still_resumes(tmp_path):
    ck = tmp_path / "checkpoint.pt"
    state = {"config": {"seed": 1}, "model": {"w": torch.ones(2)}, "history": [{"epoch": 1, "loss": 0.5}],
             "files": ["a.png"], "torch_rng": torch.get_rng_state()}
    torch.save(state, ck)
    got = _checkpoint(ck, print)
    assert got is not None and got["history"] == state["history"] and torch.equal(got["model"]["w"], torch.ones(2))


def test_a_model_file_carrying_code_is_refused(tmp_path):
    flag = tmp_path / "ran"
    torch.save({"model": {}, "meta": {"x": Planted(flag)}}, tmp_path / "model.pt")
    with pytest.raises(Exception):
        load_model(tmp_path)
    assert not flag.exists(), "the model file's code ran"
