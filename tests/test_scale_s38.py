"""`medimg scale` counts empty files in its summary as `classify` does: a 0-byte file is a failed transfer, not
a decoration, and was only one more "skipped"."""

import pytest
from PIL import Image

ray = pytest.importorskip("ray", reason="the scale extra (ray[data]) is not installed")

from typer.testing import CliRunner  # noqa: E402

from medimg.cli import app  # noqa: E402
from medimg.scale import ray_job  # noqa: E402
from test_scale_s37 import ray_local  # noqa: E402,F401  (Ray for this module, as there)
from words import flat  # noqa: E402


@pytest.mark.usefixtures("ray_local")
def test_the_summary_counts_empty_files(tmp_path, tiny_model_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (48, 40), (90, 0, 0)).save(folder / "a.png")
    (folder / "b.png").write_bytes(b"")
    (folder / "c.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image")  # a skipped note of another kind
    (tmp_path / "list.txt").write_text(f"{folder}\n")
    res = CliRunner().invoke(app, ["scale", str(tmp_path / "list.txt"), "--out", str(tmp_path / "out"),
                                   "--model", str(tiny_model_dir), "--concurrency", "1", "--format", "csv"])
    text = flat(res.output)
    assert res.exit_code == 0, text
    assert "1 image classified, 0 errors, 3 skipped (2 empty files)" in text, text

    plan = {}  # the same count on resume's reading of the rows (CSV text: skipped is "True")
    ray_job.run([str(folder)], tmp_path / "out2", model_dir=str(tiny_model_dir), concurrency=1, fmt="csv",
                plan=plan)
    assert (plan["images"], plan["errors"], plan["skipped"], plan["empty"]) == (1, 0, 3, 2)


def test_a_row_kind():
    assert ray_job._kind("skipped: empty file", "True") == "empty"
    assert ray_job._kind("skipped: empty file", True) == "empty"
    assert ray_job._kind("skipped: not an image", True) == "skipped"
    assert ray_job._kind("skipped: empty file", False) == "error"  # not a note: as it is
    assert ray_job._kind(None, None) == "image"
