"""The CLI's summary counts empty files among the skipped notes: a 0-byte `.png` or `.dcm` in a delivery
is usually a failed transfer, and a curator reading "3 skipped" would not know to look."""
import re

from typer.testing import CliRunner

from builders import image_bytes, zip_bytes
from medimg.cli import app
from words import flat

runner = CliRunner()


def test_empty_files_are_counted_in_the_summary(tmp_path, tiny_model_dir):
    folder = tmp_path / "delivery"
    folder.mkdir()
    (folder / "scan.png").write_bytes(image_bytes("PNG"))
    (folder / "lost.png").write_bytes(b"")
    (folder / "IM0001.dcm").write_bytes(b"")
    (folder / "readme.txt").write_text("notes")
    (tmp_path / "more.zip").write_bytes(zip_bytes({"a.png": image_bytes("PNG"), "cut.jpg": b""}))
    res = runner.invoke(app, ["classify", str(folder), str(tmp_path / "more.zip"), "--model", str(tiny_model_dir)])
    assert res.exit_code == 0, res.output
    assert "2 images classified, 0 errors, 4 skipped (3 empty files; --show-skipped lists them)" in flat(res.output)
    res = runner.invoke(app, ["classify", str(folder), "--model", str(tiny_model_dir), "--show-skipped"])
    assert "1 image classified, 0 errors, 3 skipped (2 empty files)" in flat(res.output), res.output


def test_no_empty_files_no_count(tmp_path, tiny_model_dir):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("hello")
    res = runner.invoke(app, ["classify", str(tmp_path / "notes"), "--model", str(tiny_model_dir)])
    assert "0 images classified, 0 errors, 1 skipped (--show-skipped lists them)" in flat(res.output)
    res = runner.invoke(app, ["classify", str(tmp_path / "notes"), "--model", str(tiny_model_dir), "--show-skipped"])
    assert re.search(r"0 images classified, 0 errors, 1 skipped(.*)$", res.output, re.M).group(1) == ""
