"""`medimg scale` on a full disk: Ray hands the write task's OSError back wrapped, and the job stopped with Ray's
traceback and exit 1 ("nothing classified"); now it stops as classify does (exit 74, how to carry on)."""

import errno

import pytest
from PIL import Image

ray = pytest.importorskip("ray", reason="the scale extra (ray[data]) is not installed")

from typer.testing import CliRunner  # noqa: E402

from medimg.cli import app  # noqa: E402
from medimg.scale import ray_job  # noqa: E402
from words import flat  # noqa: E402


def wrapped(exc: BaseException) -> BaseException:
    """The error as Ray's driver raises it when a task raised `exc`: RayTaskError(OSError), with no errno."""
    from ray.exceptions import RayTaskError

    return RayTaskError("Write", "Traceback (in the write task) …", exc).as_instanceof_cause()


def test_write_failure_finds_the_oserror_inside_rays_wrapper():
    full = OSError(errno.ENOSPC, "No space left on device")
    outer = wrapped(full)
    assert isinstance(outer, OSError) and outer.errno is None  # why the wrapper itself is not enough
    assert ray_job.write_failure(outer) is full
    try:  # as Ray Data re-raises it from its executor
        raise RuntimeError("Dataset execution failed") from outer
    except RuntimeError as chained:
        assert ray_job.write_failure(chained) is full
    assert ray_job.write_failure(wrapped(OSError(errno.EIO, "Input/output error"))).errno == errno.EIO
    assert ray_job.write_failure(wrapped(OSError(errno.ECONNRESET, "reset"))) is None  # not the output's
    assert ray_job.write_failure(wrapped(ValueError("a bug"))) is None


def _scale(tmp_path, tiny_model_dir, monkeypatch, raised):
    Image.new("RGB", (48, 40), (200, 0, 0)).save(tmp_path / "a.png")
    (tmp_path / "list.txt").write_text(f"{tmp_path / 'a.png'}\n")

    def run(inputs, out, plan=None, **kw):  # the job up to its write: the list read, a row written
        list(inputs)
        plan.update(run=1, passed_over=0, images=0, errors=0, skipped=0)
        raise raised

    monkeypatch.setattr(ray_job, "run", run)
    return CliRunner().invoke(app, ["scale", str(tmp_path / "list.txt"), "--out", str(tmp_path / "out"),
                                    "--model", str(tiny_model_dir)])


@pytest.mark.parametrize("code, said, advice", [(errno.ENOSPC, "stopped: no room to write", "free some space"),
                                                (errno.EIO, "stopped: could not write", "check the disk or share")])
def test_a_full_disk_stops_scale_with_exit_74_and_says_how_to_carry_on(tmp_path, tiny_model_dir, monkeypatch,
                                                                       code, said, advice):
    res = _scale(tmp_path, tiny_model_dir, monkeypatch, wrapped(OSError(code, "Error writing bytes to file")))
    text = flat(res.output)
    assert res.exit_code == 74, text
    assert f"{said}: the rows of the inputs finished are in {tmp_path / 'out'}; --resume with the same --out" in text
    assert advice in text and "Traceback" not in text


def test_any_other_failure_of_the_job_is_still_raised(tmp_path, tiny_model_dir, monkeypatch):
    res = _scale(tmp_path, tiny_model_dir, monkeypatch, wrapped(RuntimeError("an actor died")))
    assert res.exit_code == 1 and isinstance(res.exception, RuntimeError)
