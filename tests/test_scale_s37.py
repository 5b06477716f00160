"""`medimg scale` when the job ends early (helper s37_scale): an actor that refuses to run says why in one line, a
full disk says so in one line (Ray Data's tracebacks go to its log file), and a file whose write failed at once
is deleted on --resume."""

import json
import os
import shutil
import subprocess

import pytest
from PIL import Image

ray = pytest.importorskip("ray", reason="the scale extra (ray[data]) is not installed")

from typer.testing import CliRunner  # noqa: E402

from medimg.cli import app  # noqa: E402
from medimg.model import Classifier  # noqa: E402
from medimg.scale import ray_job  # noqa: E402
from words import flat  # noqa: E402

RAY_TEXT = ("Traceback", "RayTaskError", "Failed to apply", "retried_map_errors", "Exception occurred in Ray Data")


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def pngs(folder, n: int) -> list[str]:
    folder.mkdir(exist_ok=True)
    out = []
    for i in range(n):
        Image.new("RGB", (48, 40), (20 * i, 0, 0)).save(folder / f"img{i}.png")
        out.append(str(folder / f"img{i}.png"))
    return out


def test_a_model_missing_on_an_actors_machine_is_said_in_a_line(tmp_path, tiny_model_dir, ray_local):
    """The driver loaded the model; the actors' machine has no such folder (here: removed once Ray is up).
    The actor's start failed, Ray restarted it and raised ActorDiedError, its message a traceback."""
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    with pytest.raises(ValueError) as caught:
        ray_job.run(pngs(tmp_path / "in", 2), tmp_path / "out", model_dir=str(model), concurrency=1,
                    on_start=lambda: shutil.rmtree(model))
    said = ray_job.refusal(caught.value)
    assert said == (f"{model}: cannot load the model on this machine (no model in {model}: there is no such "
                    "folder); every machine needs the same --model")
    assert ray_job.refusal(ValueError("a\nb")) == "a\nb"  # the driver's own, as it is
    assert ray_job.refusal(RuntimeError("a bug")) is None


def test_an_actor_with_another_model_is_one_usage_line(tmp_path, tiny_model_dir, ray_local, monkeypatch):
    """A cluster machine with another model in the --model folder: here the driver's model names the labels in
    another order (the actors, in their own processes, load the folder as it is). It was exit 1 and Ray's
    traceback; a ValueError from an actor's call was a usage error holding Ray's wrapped traceback."""
    real = Classifier.load.__func__

    def other(cls, *args, **kw):
        clf = real(cls, *args, **kw)
        clf.labels = clf.labels[::-1]
        return clf

    monkeypatch.setattr(Classifier, "load", classmethod(other))
    (tmp_path / "list.txt").write_text("\n".join(pngs(tmp_path / "in", 2)) + "\n")
    res = CliRunner().invoke(app, ["scale", str(tmp_path / "list.txt"), "--out", str(tmp_path / "out"),
                                   "--model", str(tiny_model_dir), "--concurrency", "1"])
    text = flat(res.output)
    assert res.exit_code == 2, text
    assert "Invalid value: the model here has labels ['xray', 'photo', 'graphic'], the job's ['graphic', " \
           "'photo', 'xray']: every machine needs the same --model" in text
    assert not any(t in text for t in RAY_TEXT), text


@pytest.fixture
def small_disk(tmp_path):
    """A 4 KiB tmpfs (a full disk for a block of rows); skipped where this user cannot mount one."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(disk)], capture_output=True)
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_is_one_line_and_resume_deletes_the_empty_file(tmp_path, tiny_model_dir, ray_local,
                                                                   small_disk, capfd):
    """Ray Data logged the write task's traceback twice (~270 lines, 'please open an issue') before the line;
    the file its write task had opened stayed empty, and --resume kept it as a file of no rows."""
    inputs = pngs(tmp_path / "in", 12)  # 12 rows: more than 4 KiB, in one block
    (tmp_path / "list.txt").write_text("\n".join(inputs) + "\n")
    out = small_disk / "out"
    args = ["scale", str(tmp_path / "list.txt"), "--out", str(out), "--model", str(tiny_model_dir),
            "--concurrency", "1"]
    res = CliRunner().invoke(app, args)
    text = flat(res.output + capfd.readouterr().err)
    assert res.exit_code == 74, text
    assert f"stopped: no room to write: the rows of the inputs finished are in {out}" in text
    assert not any(t in text for t in RAY_TEXT), text
    (empty,) = out.glob("*.json")
    assert empty.stat().st_size == 0  # the write failed at once

    subprocess.run(["mount", "-o", "remount,size=1m", str(small_disk)], check=True)
    res = CliRunner().invoke(app, args + ["--resume"])
    assert res.exit_code == 0, res.output
    assert "12 rows from 12 inputs: 12 images classified, 0 errors, 0 skipped" in flat(res.output)
    assert not empty.exists()
    rows = [json.loads(line) for f in out.glob("*.json") for line in f.read_text().splitlines()]
    assert sorted(r["source"] for r in rows) == sorted(inputs)


def test_resume_deletes_an_empty_jsonl_file(tmp_path):
    """Ray opens a block's file before it writes: a write that failed at once (a full disk) leaves it empty.
    Ray writes no file for an empty block, so it is cut off (deleted, as an empty CSV or Parquet file is); it
    was kept as a file of no rows."""
    out = tmp_path / "out"
    out.mkdir()
    row = {"input": "x.png", "error": None, "skipped": False, "source": "x.png", "source_rows": 1}
    (out / "a_000000.json").write_text(json.dumps(row) + "\n")
    (out / "b_000000.json").write_text("")
    done = ray_job.done_inputs(out, "jsonl")
    assert "x.png" in done
    assert sorted(p.name for p in out.iterdir()) == ["a_000000.json"]
