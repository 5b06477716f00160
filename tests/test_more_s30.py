"""Left-overs: `classify --format parquet --resume`, a folder inside an archive given as an input, and a grey
TIFF with premultiplied alpha."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from builders import tgz_bytes, zip_bytes
from PIL import Image
from typer.testing import CliRunner
from webserver import WebServer
from words import flat

from medimg.cli import app

runner = CliRunner()


def png(color=(200, 30, 30), size=(100, 80)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


# --- classify --format parquet --resume ---------------------------------------------------------------------------


def parquet_rows(path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def stopped_parquet(whole, path, n: int) -> None:
    """What a run stopped (Ctrl-C) after `n` rows of `whole` leaves: a whole file holding those rows."""
    import pyarrow.parquet as pq

    table = pq.read_table(whole)
    pq.write_table(table.slice(0, n), path)


def no_temporary_files(folder) -> bool:
    return not [p for p in os.listdir(folder) if p.endswith(".resuming")]


@pytest.fixture
def inputs(tmp_path) -> list[str]:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "red.png").write_bytes(png())
    (folder / "set.zip").write_bytes(zip_bytes({"scans/a.png": png((250, 5, 5)), "b.png": png((5, 5, 250))}))
    (folder / "broken.png").write_bytes(png((1, 2, 3))[:30])
    return [str(folder / n) for n in ("red.png", "set.zip", "broken.png")]


@pytest.mark.parametrize("full", [False, True])
def test_parquet_resume_carries_on_a_stopped_run(tmp_path, tiny_model_dir, inputs, full):
    """The inputs whose rows are in are passed over, the last one's rows (maybe partial) are done again, and
    the file ends as an uninterrupted run's would, with the same schema."""
    pytest.importorskip("pyarrow")
    base = ["classify", *inputs, "--model", str(tiny_model_dir), *(["--full"] if full else [])]
    whole = tmp_path / "whole.parquet"
    assert runner.invoke(app, [*base, "-o", str(whole)]).exit_code == 0
    want = parquet_rows(whole)
    assert [os.path.relpath(r["input"], tmp_path / "in") for r in want] == [
        "red.png", "set.zip:scans/a.png", "set.zip:b.png", "broken.png"]
    for n in range(len(want) + 1):
        out = tmp_path / f"stopped{n}.parquet"
        stopped_parquet(whole, out, n)
        os.chmod(out, 0o640)
        shutil.copy(inputs[0], tmp_path / "red.bak")
        (tmp_path / "in" / "red.png").write_bytes(b"not read again")
        res = runner.invoke(app, [*base, "-o", str(out), "--resume"])
        shutil.copy(tmp_path / "red.bak", inputs[0])
        assert res.exit_code == 0, res.output
        got = parquet_rows(out)
        if n < 2:  # red.png was the last input in the file (or none was): read again, now not an image
            assert got[0]["error"] and got[1:] == want[1:], n
        else:
            assert got == want, n
            assert f"({n - 1} input{'s' * (n > 2)} passed over)" in flat(res.output), res.output
        import pyarrow.parquet as pq
        assert pq.read_schema(out).equals(pq.read_schema(whole), check_metadata=False)
        assert os.stat(out).st_mode & 0o777 == 0o640  # the file keeps its mode
        assert no_temporary_files(tmp_path)


def test_parquet_resume_copies_the_rows_kept_a_row_group_at_a_time(tmp_path, tiny_model_dir, monkeypatch):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from medimg import output

    monkeypatch.setattr(output, "PARQUET_ROWS", 2)
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(7):
        (folder / f"{i}.png").write_bytes(png((200, i * 30, 10)))
    base = ["classify", str(folder), "--model", str(tiny_model_dir)]
    whole = tmp_path / "whole.parquet"
    assert runner.invoke(app, [*base, "-o", str(whole)]).exit_code == 0
    out = tmp_path / "r.parquet"
    writer = pq.ParquetWriter(out, pq.read_schema(whole))
    for part in (slice(0, 3), slice(3, 5)):  # row groups of 3 and 2, as a stopped run's may be
        writer.write_table(pq.read_table(whole).slice(part.start, part.stop - part.start))
    writer.close()
    read = []
    real = pq.ParquetFile.read_row_group
    monkeypatch.setattr(pq.ParquetFile, "read_row_group",
                        lambda self, i, *a, **k: read.append(i) or real(self, i, *a, **k))
    res = runner.invoke(app, [*base, "-o", str(out), "--resume"])
    assert res.exit_code == 0 and "(4 inputs passed over)" in flat(res.output), res.output
    assert parquet_rows(out) == parquet_rows(whole)
    assert sorted(set(read)) == [0, 1]  # the file was read by row groups
    meta = pq.ParquetFile(out).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [3, 1, 2, 1]


def test_parquet_resume_refuses_other_columns_and_leaves_the_file(tmp_path, tiny_model_dir):
    pytest.importorskip("pyarrow")
    (tmp_path / "a.png").write_bytes(png())
    out = tmp_path / "r.parquet"
    base = ["classify", str(tmp_path / "a.png"), "--out", str(out), "--resume"]
    other = tmp_path / "other-model"  # the same name and release, other labels
    shutil.copytree(tiny_model_dir, other)
    meta = json.loads((other / "labels.json").read_text())
    (other / "labels.json").write_text(json.dumps({**meta, "labels": ["ct", "photo", "graphic"],
                                                   "medical_labels": ["ct"]}))
    cases = [([], ["--full"], "written without --full"), (["--full"], [], "written with --full"),
             (["--full"], ["--full", "--model", str(other)],
              "holds the probabilities of the labels xray, photo, graphic, not this model's ct, photo, graphic")]
    for first, then, said in cases:
        out.unlink(missing_ok=True)
        assert runner.invoke(app, ["classify", str(tmp_path / "a.png"), "--out", str(out), "--model",
                                   str(tiny_model_dir), *first]).exit_code == 0
        before = out.read_bytes()
        res = runner.invoke(app, [*base, "--model", str(tiny_model_dir), *then])
        assert res.exit_code == 2 and said in flat(res.output), (said, res.output)
        assert out.read_bytes() == before and no_temporary_files(tmp_path)
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"url": ["x"]}), out)  # someone else's table
    res = runner.invoke(app, [*base, "--model", str(tiny_model_dir)])
    assert res.exit_code == 2 and "is not a medimg Parquet file (its columns are url)" in flat(res.output)


def test_parquet_resume_keeps_to_the_threshold_the_rows_were_written_at(tmp_path, tiny_model_dir):
    pytest.importorskip("pyarrow")
    (tmp_path / "a.png").write_bytes(png((135, 128, 125)))  # p_medical 0.649: uncertain at 0.7
    out = tmp_path / "r.parquet"
    base = ["classify", str(tmp_path / "a.png"), "--model", str(tiny_model_dir), "--out", str(out)]
    assert runner.invoke(app, [*base, "--threshold", "0.7"]).exit_code == 0
    before = out.read_bytes()
    res = runner.invoke(app, [*base, "--threshold", "0.6", "--resume"])
    assert res.exit_code == 2 and "would change some" in flat(res.output), res.output
    assert out.read_bytes() == before


def test_a_parquet_file_without_its_footer_is_not_resumed_and_left_as_it_is(tmp_path, tiny_model_dir):
    """kill -9 leaves a file without the footer: none of its rows can be found, so it is refused, untouched."""
    pytest.importorskip("pyarrow")
    (tmp_path / "a.png").write_bytes(png())
    out = tmp_path / "r.parquet"
    base = ["classify", str(tmp_path / "a.png"), "--model", str(tiny_model_dir), "--out", str(out)]
    assert runner.invoke(app, base).exit_code == 0
    for cut in (out.read_bytes()[:-12], b"PAR1"):
        out.write_bytes(cut)
        res = runner.invoke(app, [*base, "--resume"])
        said = flat(res.output)
        assert res.exit_code == 2 and "cannot be resumed: it is not a whole Parquet file" in said, said
        assert "footer" in said and out.read_bytes() == cut and no_temporary_files(tmp_path)
    out.write_bytes(b"")  # an empty file: a fresh start, as for JSONL and CSV
    assert runner.invoke(app, [*base, "--resume"]).exit_code == 0 and len(parquet_rows(out)) == 1


def test_a_full_disk_in_a_resumed_parquet_run_leaves_the_old_file(tmp_path, tiny_model_dir, monkeypatch):
    pytest.importorskip("pyarrow")
    from medimg import output

    for name in "ab":
        (tmp_path / f"{name}.png").write_bytes(png())
    out = tmp_path / "r.parquet"
    base = ["classify", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--model", str(tiny_model_dir),
            "--out", str(out)]
    assert runner.invoke(app, base).exit_code == 0
    before = out.read_bytes()

    def full(self):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(output.ParquetRecordWriter, "_flush", full)
    res = runner.invoke(app, [*base, "--resume"])
    assert res.exit_code == 74 and "no room to write" in flat(res.output), res.output
    assert out.read_bytes() == before and no_temporary_files(tmp_path)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_resumed_parquet_run_stopped_leaves_a_readable_file_with_every_row(tmp_path, tiny_model_dir, sig, code):
    """Ctrl-C or SIGTERM in a resumed run: the rows kept and the new ones are in the file put in its place."""
    pytest.importorskip("pyarrow")
    for name, colour in (("a", (200, 0, 0)), ("b", (0, 200, 0)), ("c", (0, 0, 200))):
        (tmp_path / f"{name}.png").write_bytes(png(colour))
    out = tmp_path / "r.parquet"
    files = [str(tmp_path / f"{n}.png") for n in "abc"]
    assert runner.invoke(app, ["classify", *files[:2], "--model", str(tiny_model_dir), "-o", str(out)]).exit_code == 0
    with WebServer() as srv:
        srv.slow("/slow.png", png(), interval=0.5)
        proc = subprocess.Popen([sys.executable, "-m", "medimg.cli", "classify", *files, srv.url("/slow.png"),
                                 "--model", str(tiny_model_dir), "--allow-private", "--batch-size", "1",
                                 "--out", str(out), "--resume"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not srv.hits["/slow.png"] and time.monotonic() < deadline:  # in the middle of the slow fetch
            time.sleep(0.1)
        # the files before it are classified by now, on a busy machine too (the slow image takes ~100 s: one
        # byte each 0.5 s); their rows wait in the writer's row group
        time.sleep(5)
        proc.send_signal(sig)
        rc = proc.wait(timeout=30)
    said = flat(proc.stderr.read().decode())
    assert rc == code and "--resume with the same --out carries it on" in said, said
    assert [r["input"] for r in parquet_rows(out)] == files  # a.png kept, b.png done again, c.png new
    assert no_temporary_files(tmp_path)


# --- a folder inside an archive as an input -------------------------------------------------------------------------


def folder_archives(tmp_path) -> dict:
    inner = zip_bytes({"dir/c.png": png((0, 0, 210)), "dir/d.png": png((0, 210, 0)), "other.png": png()})
    members = {"x/1.png": png(), "x/y/2.png": png((0, 200, 0)), "x/in.zip": inner, "x2.png": png((0, 0, 200)),
               "z.png": png((9, 9, 9))}
    z = tmp_path / "set.zip"
    z.write_bytes(zip_bytes(members))
    t = tmp_path / "set.tgz"
    t.write_bytes(tgz_bytes(members))
    return {"zip": z, "tar": t}


def origins(source, limits=None) -> list[tuple[str, str | None]]:
    from medimg.sources import open_input

    return [(i.origin, getattr(i, "error", None)) for i in open_input(source, limits)]


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_a_folder_inside_an_archive_gives_every_member_under_it(tmp_path, kind):
    archive = folder_archives(tmp_path)[kind]
    under = [f"{archive}:x/1.png", f"{archive}:x/y/2.png", f"{archive}:x/in.zip:dir/c.png",
             f"{archive}:x/in.zip:dir/d.png", f"{archive}:x/in.zip:other.png"]
    for given in (f"{archive}:x/", f"{archive}:x", f"{archive}:x//"):
        assert origins(given) == [(o, None) for o in under], given  # not x2.png, nor z.png
    assert origins(f"{archive}:x/y") == [(under[1], None)]
    assert origins(f"{archive}:x/in.zip:dir/") == [(under[2], None), (under[3], None)]  # in a nested archive
    assert origins(f"{archive}:x/in.zip:dir") == [(under[2], None), (under[3], None)]


def test_a_folder_inside_an_archive_with_nothing_under_it_is_an_error(tmp_path):
    archive = folder_archives(tmp_path)["zip"]
    for given, member in ((f"{archive}:nothing/", "nothing/"), (f"{archive}:x/1", "x/1"),
                          (f"{archive}:x/in.zip:none", "x/in.zip:none")):
        (origin, error), = origins(given)
        assert origin == given and f"no member {member!r} in {archive}, nor any under it as a folder" in error


def test_a_folder_inside_an_archive_keeps_the_archives_caps(tmp_path):
    from medimg.sources import Limits

    big = tmp_path / "big.zip"  # the first member takes the archive's whole budget: d/ is never read
    big.write_bytes(zip_bytes({"a.bin": bytes(300_000), "d/b.png": png(), "d/c.png": png()}))
    (origin, error), = origins(f"{big}:d/", Limits(zip_max_bytes=200_000))
    assert origin == f"{big}:d/" and "caps stop" in error
    few = tmp_path / "few.zip"  # the budget stops part-way in the folder, as when the archive is given whole
    few.write_bytes(zip_bytes({"d/a.png": png(), "d/b.bin": bytes(150_000), "d/c.png": png()}))
    limits = Limits(zip_max_bytes=120_000)
    assert origins(f"{few}:d", limits) == origins(str(few), limits)
    assert origins(f"{few}:d", limits)[0] == (f"{few}:d/a.png", None) and not any(
        o.endswith("c.png") for o, _ in origins(f"{few}:d", limits))
    many = tmp_path / "many.zip"  # over zip_max_entries: not opened, as when it is given whole
    many.write_bytes(zip_bytes({f"d/{i}.png": png() for i in range(5)}))
    (note, why), (origin, error) = origins(f"{many}:d", Limits(zip_max_entries=3))
    assert note == str(many) and "zip_max_entries" in why and origin == f"{many}:d" and "caps stop" in error


def test_a_folder_inside_an_archive_is_classified_and_resumed(tmp_path, tiny_model_dir, monkeypatch):
    """Each member under it is an input of its own: a resumed run passes over those done, without inflating
    them again."""
    from medimg.sources import archive

    zipped = folder_archives(tmp_path)["zip"]
    out = tmp_path / "r.jsonl"
    base = ["classify", f"{zipped}:x/", "--model", str(tiny_model_dir), "--full", "--out", str(out)]
    res = runner.invoke(app, base)
    assert res.exit_code == 0, res.output
    whole = out.read_text().splitlines(keepends=True)
    rows = [json.loads(line) for line in whole]
    assert [r["input"] for r in rows] == [f"{zipped}:x/1.png", f"{zipped}:x/y/2.png", f"{zipped}:x/in.zip:dir/c.png",
                                          f"{zipped}:x/in.zip:dir/d.png", f"{zipped}:x/in.zip:other.png"]
    assert {r["source"] for r in rows} == {f"{zipped}:x/"} and not any(r["error"] for r in rows)
    out.write_text("".join(whole[:3]))  # stopped after three rows: the third input is done again
    inflated = []
    real = archive._read
    monkeypatch.setattr(archive, "_read", lambda zf, info, limit: inflated.append(info.filename) or
                        real(zf, info, limit))
    res = runner.invoke(app, [*base, "--resume"])
    assert res.exit_code == 0 and "(2 inputs passed over)" in flat(res.output), res.output
    assert out.read_text().splitlines(keepends=True) == whole
    assert "x/in.zip" in inflated and "x/1.png" not in inflated and "x/y/2.png" not in inflated, inflated


# --- a grey TIFF with premultiplied alpha ----------------------------------------------------------------------------


def grey_alpha_tiff(extra: str, byteorder: str = "<", compression=None, grey: int = 100) -> bytes:
    """60×40 grey TIFF with an alpha sample: the left half transparent, the right half `grey` at alpha 128 as
    stored (premultiplied when `extra` is assocalpha)."""
    import numpy as np
    tifffile = pytest.importorskip("tifffile")

    g = np.full((40, 60), grey, np.uint8)
    a = np.full((40, 60), 128, np.uint8)
    g[:, :30] = a[:, :30] = 0
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.dstack([g, a]), photometric="minisblack", extrasamples=[extra],
                     byteorder=byteorder, compression=compression)
    return buf.getvalue()


@pytest.mark.parametrize("byteorder, compression", [("<", None), (">", None), ("<", "zlib"), (">", "lzw")])
def test_a_grey_tiff_with_premultiplied_alpha_decodes_and_is_composited_on_white(byteorder, compression):
    from medimg.model.preprocess import to_rgb
    from medimg.sources import Blob, ImageItem, open_input

    data = grey_alpha_tiff("assocalpha", byteorder, compression)
    item, = open_input(Blob("g.tif", data))
    assert isinstance(item, ImageItem), item.error
    assert item.format == "TIFF" and item.image.mode == "LA" and item.image.size == (60, 40)
    assert item.image.getpixel((50, 5)) == (199, 128)  # 100 at alpha 128, un-premultiplied
    assert item.image.getpixel((5, 5))[1] == 0
    straight, = open_input(Blob("s.tif", grey_alpha_tiff("unassalpha", grey=199)))  # the same picture, as LA
    assert straight.image.getpixel((50, 5)) == (199, 128)
    shown = to_rgb(item.image)
    assert shown.getpixel((5, 5)) == (255, 255, 255)  # transparent: white
    assert shown.getpixel((50, 5)) == to_rgb(straight.image).getpixel((50, 5)) == (227, 227, 227)


def test_a_grey_tiff_with_premultiplied_alpha_is_classified_and_extracted(tmp_path, tiny_model_dir):
    (tmp_path / "g.tif").write_bytes(grey_alpha_tiff("assocalpha"))
    out = tmp_path / "r.jsonl"
    res = runner.invoke(app, ["classify", str(tmp_path / "g.tif"), "--model", str(tiny_model_dir), "-o", str(out)])
    assert res.exit_code == 0, res.output
    row, = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["error"] is None and (row["width"], row["height"]) == (60, 40)
    res = runner.invoke(app, ["extract", str(tmp_path / "g.tif"), "--out", str(tmp_path / "x")])
    assert res.exit_code == 0, res.output
    with Image.open(tmp_path / "x" / "000001.png") as saved:
        assert saved.size == (60, 40)
