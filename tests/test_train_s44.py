"""`train` on a disk that fills up (review s44): a checkpoint torch cannot write is an OSError, not torch's
RuntimeError (`unexpected pos …`), its part-file deleted; the run stops with exit 74 and says how to carry on, as
classify does, and the same command then carries it on; the assets' part-files are not left beside the model.
A full disk is simulated with RLIMIT_FSIZE (writes past it fail with EFBIG, as past a quota)."""

from __future__ import annotations

import contextlib
import errno
import json
import resource
import signal

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from medimg.cli import app

torch = pytest.importorskip("torch", reason="train needs the train extra (torch)")


@contextlib.contextmanager
def _disk_holds(nbytes: int):
    """Writes past nbytes in one file fail (EFBIG) in this process, as on a full disk."""
    before = resource.getrlimit(resource.RLIMIT_FSIZE)
    xfsz = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the signal kills the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, before)
        signal.signal(signal.SIGXFSZ, xfsz)


def test_a_checkpoint_that_cannot_be_written_is_an_oserror_and_leaves_no_part_file(tmp_path):
    from medimg.training.train import _save

    path = tmp_path / "checkpoint.pt"
    _save({"w": torch.zeros(10)}, path)
    with _disk_holds(64 * 1024), pytest.raises(OSError) as got:
        _save({"w": torch.zeros(100_000)}, path)  # 400 kB
    assert got.value.errno == errno.EFBIG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no .part filling the disk
    assert torch.load(path, weights_only=True)["w"].shape == (10,)  # the earlier one whole


def test_assets_that_cannot_be_written_leave_the_old_pair_and_no_part_files(tmp_path):
    from medimg.training.export import write_assets

    dest = tmp_path / "assets"
    old = tmp_path / "old.onnx"
    old.write_bytes(b"old")
    write_assets(old, {"labels": ["a", "b"]}, dest)
    big = tmp_path / "new.onnx"
    big.write_bytes(b"\0" * 200_000)
    with _disk_holds(64 * 1024), pytest.raises(OSError):
        write_assets(big, {"labels": ["a", "c"]}, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["labels.json", "model.onnx"]
    assert (dest / "model.onnx").read_bytes() == b"old"
    assert json.loads((dest / "labels.json").read_text())["labels"] == ["a", "b"]


def test_train_on_a_full_disk_exits_74_and_the_same_command_carries_on(tmp_path):
    root = tmp_path / "c"
    for label, source, rgb in [("ct", "a", (200, 0, 0)), ("ct", "b", (180, 20, 0)),
                               ("photo", "c", (0, 0, 200)), ("photo", "d", (0, 20, 180))]:
        (root / label / source).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((40, 40, 3), rgb, np.uint8)).save(root / label / source / f"{i}.png")
    args = ["train", "--route", "cnn", "--data", str(root), "--out", str(tmp_path / "runs"), "--no-cv",
            "--size", "32", "--epochs", "1", "--samples-per-epoch", "32", "--cache", ""]
    with _disk_holds(1024 * 1024):  # a fold's checkpoint is some MB
        res = CliRunner().invoke(app, args)
    assert res.exit_code == 74, res.output
    assert "stopped: no room to write" in res.output and "the same command carries the run" in res.output
    assert "free some space" in res.output
    assert not list((tmp_path / "runs").rglob("*.part"))
    res = CliRunner().invoke(app, args)  # room again
    assert res.exit_code == 0, res.output
    assert (tmp_path / "runs" / "final" / "assets" / "model.onnx").is_file()
