"""Deploying medimg serve as a hospital's IT would (session 47): settings of the service's environment."""

from __future__ import annotations

import os
import tempfile

from typer.testing import CliRunner

from medimg.cli import app
from words import flat

runner = CliRunner()


def test_serve_with_gradio_temp_dir_it_cannot_make_says_so(monkeypatch, tmp_path, tiny_model_dir):
    """A GRADIO_TEMP_DIR the service's user cannot make or write (a path under a read-only system, or through a
    file) was a 135-line traceback from inside Gradio, after the model's load; now one line naming it."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(blocker / "uploads"))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    res = runner.invoke(app, ["serve", "--model", str(tiny_model_dir), "--port", "1"])  # never reached
    said = flat(res.output)
    assert res.exit_code == 1 and "medimg serve needs a writable temporary folder for uploads" in said, said
    assert f"GRADIO_TEMP_DIR {blocker / 'uploads'} cannot be made" in said and "Traceback" not in said, said
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("medimg-")]  # nothing made before the check
    assert os.environ["GRADIO_TEMP_DIR"] == str(blocker / "uploads")


def test_scale_whose_ray_cannot_start_says_so_not_that_out_failed(monkeypatch, tmp_path, tiny_model_dir):
    """`medimg scale` run by a service user whose HOME it may not write in (`useradd --system` makes none): Ray
    2.60's init raised PermissionError on /home/medimg (its token goes to ~/.ray), and the job said "could not
    write: the rows of the inputs finished are in OUT … check the disk or share" (exit 74), blaming --out."""
    import errno

    import pytest
    from PIL import Image

    ray = pytest.importorskip("ray", reason="the scale extra (ray[data]) is not installed")

    def init(*args, **kwargs):  # what Ray 2.60 raised for that user
        raise PermissionError(errno.EACCES, "Permission denied", "/home/medimg")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    Image.new("RGB", (48, 40), (200, 0, 0)).save(tmp_path / "a.png")
    (tmp_path / "list.txt").write_text(f"{tmp_path / 'a.png'}\n")
    res = runner.invoke(app, ["scale", str(tmp_path / "list.txt"), "--out", str(tmp_path / "out"),
                              "--model", str(tiny_model_dir)])
    said = flat(res.output)
    assert res.exit_code == 2, (res.exit_code, said, res.exception)
    assert "Ray could not start (Permission denied: /home/medimg)" in said and "give the job a HOME" in said, said
    assert "could not write" not in said and "Traceback" not in said
    assert not list((tmp_path / "out").iterdir())  # the job's list of entries is gone with it
