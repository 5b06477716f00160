"""Session 41, round 2: a second read of the session's later commits (--resume from CSV and Parquet, whose names
have U+FFFD for bytes that are not UTF-8)."""
from __future__ import annotations

import csv
import os
import sys

import pytest
from PIL import Image
from typer.testing import CliRunner

from medimg.cli import app

runner = CliRunner()


@pytest.mark.skipif(sys.platform != "linux", reason="a file name that is not UTF-8 is a Linux one")
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("again", [[], ["first"]], ids=["new-input-alone", "last-input-given-again"])
def test_resume_keeps_the_last_inputs_rows_when_another_written_alike_comes_first(tmp_path, tiny_model_dir, fmt,
                                                                                  again):
    """caf\\xe9.tif and caf\\xe8.tif (3 pages) are both caf\\ufffd.tif in CSV and Parquet. A run over caf\\xe9.tif
    carried on with caf\\xe8.tif took caf\\xe8.tif's first record for the earlier run's last input read again:
    caf\\xe9.tif's row was dropped and never written again. Now a record that only reads like that name is from it
    only when it says what its first row says; then the earlier rows stay, and caf\\xe8.tif's pages are all
    written (not passed over as 'already in the file')."""
    if fmt == "parquet":
        pytest.importorskip("pyarrow", reason="Parquet output needs pyarrow")
    folder = tmp_path / "latin1"
    folder.mkdir()
    pages, first = (os.fsdecode(b"caf" + bytes([c]) + b".tif") for c in (0xE8, 0xE9))
    Image.new("RGB", (64, 48), "white").save(folder / first)
    frames = [Image.new("RGB", (80, 80), c) for c in ("red", "green", "blue")]
    frames[0].save(folder / pages, save_all=True, append_images=frames[1:])
    out = tmp_path / f"r.{fmt}"

    def rows() -> list[tuple[str, str, str]]:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            t = pq.read_table(out)
            got = zip(*(t.column(c).to_pylist() for c in ("input", "locator", "width")))
        else:
            got = ((r["input"], r["locator"], r["width"]) for r in csv.DictReader(out.open(newline="", encoding="utf-8")))
        return sorted((name, locator, str(width)) for name, locator, width in got)

    res = runner.invoke(app, ["classify", str(folder / first), "--model", str(tiny_model_dir), "-o", str(out)])
    assert res.exit_code == 0, res.output
    given = [str(folder / pages)] + [str(folder / first) for _ in again]
    res = runner.invoke(app, ["classify", *given, "--model", str(tiny_model_dir), "-o", str(out), "--resume"])
    assert res.exit_code == 0, res.output
    shown = f"{folder}/caf\ufffd.tif"
    assert rows() == sorted([(shown, "", "64"), (shown, "page 1", "80"), (shown, "page 2", "80"),
                             (shown, "page 3", "80")]), rows()


@pytest.mark.skipif(sys.platform != "linux", reason="a file name that is not UTF-8 is a Linux one")
def test_resume_reads_again_the_last_input_that_stopped_part_way_under_a_name_csv_wrote_alike(tmp_path,
                                                                                              tiny_model_dir):
    """The same input, given first again, is still read again (its rows go, then come back once)."""
    folder = tmp_path / "latin1"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe8.tif")
    frames = [Image.new("RGB", (80, 80), c) for c in ("red", "green", "blue")]
    frames[0].save(folder / name, save_all=True, append_images=frames[1:])
    out = tmp_path / "r.csv"
    res = runner.invoke(app, ["classify", str(folder / name), "--model", str(tiny_model_dir), "-o", str(out)])
    assert res.exit_code == 0, res.output
    lines = out.read_text(encoding="utf-8").splitlines()
    out.write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")  # stopped after page 2
    res = runner.invoke(app, ["classify", str(folder / name), "--model", str(tiny_model_dir), "-o", str(out),
                              "--resume"])
    assert res.exit_code == 0, res.output
    got = [r["locator"] for r in csv.DictReader(out.open(newline="", encoding="utf-8"))]
    assert got == ["page 1", "page 2", "page 3"], got
