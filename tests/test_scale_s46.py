"""`medimg scale` as a curation team runs it (helper s46_scale)."""

import pytest

pytest.importorskip("ray", reason="the scale extra (ray[data]) is not installed")

from typer.testing import CliRunner  # noqa: E402

from medimg.cli import app  # noqa: E402
from test_scale import pngs  # noqa: E402
from words import flat  # noqa: E402


@pytest.mark.parametrize("value", ["0", "-2"])
def test_no_actors_is_refused_before_the_output_folder_is_made(tmp_path, tiny_model_dir, value):
    """--concurrency 0 was refused only inside the job: after --out was made (an empty folder left behind), in a
    message naming `inputs_per_batch`, no option of the CLI."""
    (tmp_path / "list.txt").write_text("\n".join(pngs(tmp_path, 1)) + "\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["scale", str(tmp_path / "list.txt"), "--out", str(out), "--model",
                                   str(tiny_model_dir), "--concurrency", value])
    text = flat(res.output)
    assert res.exit_code == 2, text
    assert "Invalid value for '--concurrency'" in text and "inputs_per_batch" not in text, text
    assert not out.exists()


def test_a_relative_path_is_passed_over_on_resume_when_written_absolute(tmp_path, monkeypatch):
    """A list of absolute paths run, then resumed with the same files named from the folder the run is in
    (`find scans` after `find /data/scans`): they were all done again, each image's row written twice.
    classify --resume passes them over (`output.Spellings`). The other way (rows relative, entries absolute)
    stays done again: a relative row names a file only from the folder that run was in."""
    from medimg.keyset import KeySet
    from medimg.scale import ray_job

    monkeypatch.chdir(tmp_path)
    (tmp_path / "scans").mkdir()
    absolute = pngs(tmp_path / "scans", 2)
    done = KeySet([ray_job._spelled(absolute[0])])
    spill = ray_job.Spill(tmp_path, 16)
    try:
        given = ray_job.spill_new(spill, ["scans/img0.png", "./scans//img1.png", "scans/img0.png"], done)
        assert given == 2
        assert ray_job.read_entries(str(spill.path), 0, spill.path.stat().st_size) == ["./scans//img1.png"]
    finally:
        spill.remove()
