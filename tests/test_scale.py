"""The Ray Data job runs the pipeline on many inputs and writes one row per image or error."""

import json
from pathlib import Path

import pytest
from PIL import Image

ray = pytest.importorskip("ray", reason="the scale extra (ray[data]) is not installed")

from medimg.scale.ray_job import COLUMNS, read_inputs, run  # noqa: E402
from medimg.sources import Limits  # noqa: E402
from webserver import WebServer  # noqa: E402
from words import flat  # noqa: E402


def pngs(folder: Path, n: int) -> list[str]:
    """n small PNGs of different reds, as paths."""
    out = []
    for i in range(n):
        p = folder / f"img{i}.png"
        Image.new("RGB", (48, 40), (40 * i, 0, 0)).save(p)
        out.append(str(p))
    return out


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_job_writes_a_row_per_image_and_error(tmp_path, tiny_model_dir, ray_local):
    inputs = []
    for i, color in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255), (250, 10, 10)]):
        p = tmp_path / f"img{i}.png"
        Image.new("RGB", (48, 40), color).save(p)
        inputs.append(str(p))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    inputs.append(str(bad))
    inputs.append(str(tmp_path / "missing.png"))
    listing = tmp_path / "inputs.txt"
    listing.write_text("# inputs\n" + "\n".join(inputs) + "\n\n")
    assert read_inputs(listing) == inputs

    out = tmp_path / "out"
    n = run(read_inputs(listing), out, fmt="jsonl", model_dir=str(tiny_model_dir), concurrency=1,
            inputs_per_batch=2)
    rows = [json.loads(line) for f in sorted(out.glob("*.json*")) for line in f.read_text().splitlines()]
    assert n == len(rows) == 6
    assert set(rows[0]) == set(COLUMNS)
    by_input = {Path(r["input"]).name: r for r in rows}
    assert by_input["img0.png"]["label"] == "xray" and by_input["img0.png"]["verdict"] == "medical"
    probs = by_input["img0.png"]["probs"]  # every label's probability, an object as in classify --full
    assert max(probs, key=probs.get) == "xray" and abs(sum(probs.values()) - 1) < 1e-3
    assert by_input["broken.jpg"]["probs"] is None
    assert by_input["img1.png"]["label"] == "photo"
    assert by_input["img2.png"]["label"] == "graphic"
    assert by_input["broken.jpg"]["error"] and by_input["broken.jpg"]["label"] is None
    assert by_input["missing.png"]["error"]


def _rows_of(f):
    return [json.loads(line) for line in f.read_text().splitlines()]


def _rows(out):
    return [r for f in sorted(out.glob("*.json")) for r in _rows_of(f)]


def test_resume_passes_over_inputs_already_written(tmp_path, tiny_model_dir, ray_local):
    """A stopped job carried on: entries with rows in complete files are passed over, a file the stop cut off
    is deleted and its entries done again, and every entry ends up with its rows exactly once."""
    inputs = pngs(tmp_path, 6)
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(2):
        Image.new("RGB", (48, 40), (0, 0, 90 * i)).save(folder / f"f{i}.png")
    inputs.append(str(folder))  # one entry, two rows: each row names the entry it came from
    out = tmp_path / "out"
    kw = dict(fmt="jsonl", model_dir=str(tiny_model_dir), concurrency=1, inputs_per_batch=2)
    assert run(inputs[:4], out, **kw) == 4

    files = sorted(out.glob("*.json"))
    assert len(files) == 2  # two batches of two inputs
    cut = files[-1]
    cut.write_text(cut.read_text()[:-30])  # the stop cut the second file off mid-line
    assert run(inputs, out, resume=True, **kw) == 6  # img2, img3 again; img4, img5; the folder's two files
    assert not cut.exists()
    rows = _rows(out)
    assert sorted(r["source"] for r in rows) == sorted(inputs[:6] + [str(folder)] * 2)
    assert {Path(r["input"]).name for r in rows if r["source"] == str(folder)} == {"f0.png", "f1.png"}
    assert run(inputs, out, resume=True, **kw) == 0 and len(_rows(out)) == 8  # all done: nothing runs

    # cut exactly at a row's end, inside the folder entry's two rows: each row says how many its entry gave
    (holder,) = [f for f in out.glob("*.json") if any(r["source"] == str(folder) for r in _rows_of(f))]
    lines = holder.read_text().splitlines(keepends=True)
    last_folder_row = max(i for i, line in enumerate(lines) if json.loads(line)["source"] == str(folder))
    holder.write_text("".join(lines[:last_folder_row] + lines[last_folder_row + 1:]))
    redone = run(inputs, out, resume=True, **kw)
    assert not holder.exists() and redone == len(lines)
    rows = _rows(out)
    assert sorted(r["source"] for r in rows) == sorted(inputs[:6] + [str(folder)] * 2)
    assert all(r["source_rows"] == (2 if r["source"] == str(folder) else 1) for r in rows)

    (out / "notes.json").write_text('{"hello": 1}\n')  # not this job's: resuming refuses, touches nothing
    with pytest.raises(ValueError, match="not an output file of this job"):
        run(inputs, out, resume=True, **kw)
    assert (out / "notes.json").exists()


@pytest.mark.parametrize("fmt, suffix", [("csv", ".csv"), ("parquet", ".parquet")])
def test_resume_reads_csv_and_parquet_output(tmp_path, tiny_model_dir, ray_local, fmt, suffix):
    inputs = []
    for i in range(3):
        p = tmp_path / f"img{i}.png"
        Image.new("RGB", (48, 40), (0, 80 * i, 0)).save(p)
        inputs.append(str(p))
    out = tmp_path / "out"
    kw = dict(fmt=fmt, model_dir=str(tiny_model_dir), concurrency=1, inputs_per_batch=2)
    assert run(inputs[:2], out, **kw) == 2
    assert run(inputs, out, resume=True, **kw) == 1
    written = sorted(out.glob(f"*{suffix}"))
    assert len(written) == 2
    written[0].write_bytes(written[0].read_bytes()[:-20])  # cut off: deleted, its inputs done again
    assert run(inputs, out, resume=True, **kw) == 2


def test_an_actor_fetches_several_inputs_at_once(tmp_path, tiny_model_dir, ray_local):
    """Far web pages are fetched side by side by one actor's worker threads, not one after another;
    each row still names its own entry, and an entry listed twice is done once."""
    png = tmp_path / "a.png"
    Image.new("RGB", (96, 80), (200, 0, 0)).save(png)
    with WebServer() as srv:
        srv.add("/a.png", png.read_bytes(), "image/png")
        pages = [srv.add(f"/p{i}.html", f"<p>case {i}</p><img src='/a.png?{i}'>", delay=0.5) for i in range(6)]
        inputs = pages + [pages[0], str(png)]
        out = tmp_path / "out"
        n = run(inputs, out, fmt="jsonl", model_dir=str(tiny_model_dir), concurrency=1, inputs_per_batch=8,
                workers=4, limits=Limits(allow_private=True))
        assert srv.peak_waiting >= 3  # one actor, yet at least three pages were being waited for together
        assert srv.hits["/p0.html"] == 1
    rows = _rows(out)
    assert n == len(rows) == 7
    assert sorted(r["source"] for r in rows) == sorted(pages + [str(png)])
    assert all(r["source_rows"] == 1 and r["label"] for r in rows)


def test_an_actor_works_on_several_batches_at_once(tmp_path, tiny_model_dir, ray_local):
    """Batches of one input, with one thread each: a batch waiting on a slow host does not hold up the next
    one, since one actor runs several batches side by side."""
    from medimg.scale.ray_job import CALLS_PER_ACTOR

    with WebServer() as srv:
        pages = [srv.add(f"/p{i}.html", f"<p>case {i}</p>", delay=1.0) for i in range(CALLS_PER_ACTOR)]
        out = tmp_path / "out"
        run(pages, out, fmt="jsonl", model_dir=str(tiny_model_dir), concurrency=1, inputs_per_batch=1,
            workers=1, limits=Limits(allow_private=True))
        assert srv.peak_waiting >= 2
    assert sorted(r["source"] for r in _rows(out)) == sorted(pages)


def test_a_file_name_that_is_not_utf8_is_read_written_escaped_and_resumed(tmp_path, tiny_model_dir, ray_local):
    import os

    odd = tmp_path / os.fsdecode(b"caf\xe9.png")
    Image.new("RGB", (48, 40), (255, 0, 0)).save(odd)
    plain = tmp_path / "plain.png"
    Image.new("RGB", (48, 40), (0, 255, 0)).save(plain)
    listing = tmp_path / "inputs.txt"
    listing.write_bytes(os.fsencode(str(odd)) + b"\n" + os.fsencode(str(plain)) + b"\n")
    out = tmp_path / "out"
    assert run(read_inputs(listing), out, fmt="jsonl", model_dir=str(tiny_model_dir), concurrency=1) == 2
    by_name = {Path(r["input"]).name: r for r in _rows(out)}
    assert by_name["caf\\xe9.png"]["label"] == "xray" and by_name["plain.png"]["label"] == "photo"
    assert run(read_inputs(listing), out, fmt="jsonl", model_dir=str(tiny_model_dir), concurrency=1,
               resume=True) == 0


def test_a_parquet_list_with_a_chosen_column_and_rows_naming_their_entry(tmp_path, tiny_model_dir, ray_local):
    """Curation teams keep URL lists as tables: the rows' `source` is the list's cell, to join back on."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from medimg.cli import app

    names = []
    for i, color in enumerate([(255, 0, 0), (0, 255, 0)]):
        p = tmp_path / f"img{i}.png"
        Image.new("RGB", (48, 40), color).save(p)
        names.append(str(p))
    pq.write_table(pa.table({"study": ["s0", "s1", "s2"], "scan": names + [None]}), tmp_path / "list.parquet")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".medimg-inputs-killed.list").write_text('"a.png"\n')  # a killed job's list file: no output
    r = CliRunner().invoke(app, ["scale", str(tmp_path / "list.parquet"), "--column", "scan", "--out", str(out),
                                 "--model", str(tiny_model_dir), "--concurrency", "1"])
    assert r.exit_code == 0, r.output
    assert sorted(row["source"] for row in _rows(out)) == names
    assert not list(out.glob(".medimg-inputs-*"))  # the job's own list file and the stale one are gone
    r = CliRunner().invoke(app, ["scale", str(tmp_path / "list.parquet"), "--column", "scan", "--out", str(out),
                                 "--model", str(tiny_model_dir), "--resume"])
    assert r.exit_code == 0 and "nothing left to do: all 2 inputs already have their rows" in flat(r.output)
    r = CliRunner().invoke(app, ["scale", str(tmp_path / "list.parquet"), "--out", str(tmp_path / "o2"),
                                 "--model", str(tiny_model_dir)])
    assert r.exit_code == 2 and "give --column" in flat(r.output) and "'scan'" in flat(r.output)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_the_summary_counts_images_errors_and_notes_and_nothing_classified_is_exit_1(tmp_path, tiny_model_dir,
                                                                                    ray_local, fmt):
    """As classify: a job where no image could be classified exits 1, so a script sees it; --offline fetches
    nothing (a saved page's remote image is an error, its own image is read)."""
    from typer.testing import CliRunner

    from medimg.cli import app

    (good,) = pngs(tmp_path, 1)
    Image.new("RGB", (100, 80), (0, 90, 0)).save(tmp_path / "shown.png")  # over min_side, as a page's image
    page = tmp_path / "page.html"
    srv = WebServer().__enter__()
    far = srv.add("/far.png", (tmp_path / "shown.png").read_bytes(), "image/png")  # fetched but for --offline
    page.write_text(f'<!doctype html><html><body><img src="shown.png"><img src="{far}">')
    (tmp_path / "blank.pdf").write_bytes(_blank_pdf())
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path / 'missing.png'}\n{tmp_path / 'blank.pdf'}\n")
    args = ["--model", str(tiny_model_dir), "--concurrency", "1", "--format", fmt]
    r = CliRunner().invoke(app, ["scale", str(listing), "--out", str(tmp_path / "bad"), *args])
    assert r.exit_code == 1 and "2 rows from 2 inputs: 0 images classified, 1 error, 1 skipped" in flat(r.output)
    listing.write_text(f"{page}\n{good}\n")
    try:
        r = CliRunner().invoke(app, ["scale", str(listing), "--out", str(tmp_path / "ok"), "--offline",
                                     "--allow-private", *args])
    finally:
        srv.__exit__(None, None, None)
    assert r.exit_code == 0 and "3 rows from 2 inputs: 2 images classified, 1 error, 0 skipped" in flat(r.output)
    (error,) = [row["error"] for row in _rows_any(tmp_path / "ok", fmt) if row["error"]]
    assert "offline" in error and srv.hits["/far.png"] == 0
    listing.write_text(f"{listing.read_text()}{tmp_path / 'missing.png'}\n")  # a resume that adds only an error
    r = CliRunner().invoke(app, ["scale", str(listing), "--out", str(tmp_path / "ok"), "--resume", *args])
    assert r.exit_code == 0 and "0 images classified, 1 error" in flat(r.output)  # images came before: as classify
    listing.write_text("")
    r = CliRunner().invoke(app, ["scale", str(listing), "--out", str(tmp_path / "none"), *args])
    assert r.exit_code == 1 and "list.txt held no inputs" in flat(r.output)  # as classify says it (s41)


def _rows_any(out: Path, fmt: str) -> list[dict]:
    import csv

    import pyarrow.parquet as pq

    if fmt == "jsonl":
        return _rows(out)
    if fmt == "csv":
        return [r for f in sorted(out.glob("*.csv")) for r in csv.DictReader(f.open(newline=""))]
    return [r for f in sorted(out.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_resume_keeps_the_files_of_an_entry_written_twice(tmp_path):
    """run() without resume adds rows to what is there: an entry written whole twice is done, not cut off."""
    from medimg.scale.ray_job import done_inputs

    def row(src):
        return json.dumps({"input": src, "locator": "", "error": None, "source": src, "source_rows": 1})

    (tmp_path / "run1_000000.json").write_text(row("a.png") + "\n" + row("b.png") + "\n")
    (tmp_path / "run2_000000.json").write_text(row("a.png") + "\n" + row("c.png") + "\n")
    done = done_inputs(tmp_path, "jsonl")
    assert done.contains(["a.png", "b.png", "c.png"]).all() and "d.png" not in done
    assert len(list(tmp_path.iterdir())) == 2


def _blank_pdf() -> bytes:
    import pymupdf

    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "text only")
    return doc.tobytes()


def test_resume_counts_what_it_passes_over_and_keeps_to_one_format(tmp_path, tiny_model_dir, ray_local):
    """A resumed job says how many entries it ran and how many it passed over; resuming a folder of CSV
    output as JSONL is refused rather than redoing every row in a second format."""
    names = pngs(tmp_path, 3)
    out = tmp_path / "out"
    kw = dict(model_dir=str(tiny_model_dir), concurrency=1, inputs_per_batch=2)
    plan: dict = {}
    assert run(names[:2], out, fmt="csv", plan=plan, **kw) == 2
    assert plan == {"run": 2, "passed_over": 0, "images": 2, "errors": 0, "skipped": 0, "empty": 0}
    assert run(names, out, fmt="csv", resume=True, plan=plan, **kw) == 1
    assert plan == {"run": 1, "passed_over": 2, "images": 1, "errors": 0, "skipped": 0, "empty": 0}
    with pytest.raises(ValueError, match="holds csv output: resume with --format csv"):
        run(names, out, fmt="jsonl", resume=True, **kw)
    assert not list(out.glob("*.json"))


def test_sigterm_ends_the_job_cleanly_for_a_resume(tmp_path, tiny_model_dir):
    """SIGTERM (a scheduler) ends `medimg scale` with exit code 143, as Ctrl-C does, not with Ray's abort."""
    import signal
    import subprocess
    import sys
    import time

    with WebServer() as srv:
        pages = [srv.add(f"/p{i}.html", f"<p>case {i}</p>", delay=2.0) for i in range(40)]
        (tmp_path / "list.txt").write_text("\n".join(pages) + "\n")
        proc = subprocess.Popen([sys.executable, "-m", "medimg.cli", "scale", str(tmp_path / "list.txt"), "--out",
                                 str(tmp_path / "out"), "--model", str(tiny_model_dir), "--allow-private",
                                 "--concurrency", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while srv.peak_waiting == 0 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)  # the job is under way once the first page is asked for
        assert srv.peak_waiting > 0, proc.communicate()[0][-2000:]
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0].decode(errors="replace")
    assert proc.returncode == 143, out[-3000:]
    assert "SIGTERM received" not in out
    said = " ".join(out.split())  # it said nothing of its own before, only Ray's "execution failed"
    assert f"stopped: the rows of the inputs finished are in {tmp_path / 'out'}; --resume with the same --out" in said
    assert "(40 inputs were to run)" in said
    assert not list((tmp_path / "out").glob(".medimg-inputs-*"))  # the job's list file goes with it


def test_bad_settings_are_refused_before_ray_starts(tmp_path, monkeypatch):
    """A zero --concurrency is said plainly, not as Ray's ('size must be >= 1', 0) once it is up; the
    format is taken in any case."""
    from medimg.scale import ray_job

    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray started"))
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    for bad in (dict(concurrency=0), dict(workers=0), dict(inputs_per_batch=0)):
        with pytest.raises(ValueError, match="must be at least 1"):
            ray_job.run(["a.png"], tmp_path / "out", **bad)
    with pytest.raises(ValueError, match="workers must be at most 256, not 257"):  # as classify() in each actor
        ray_job.run(["a.png"], tmp_path / "out", workers=257)
    with pytest.raises(ValueError, match="jsonl, parquet or csv"):
        ray_job.run(["a.png"], tmp_path / "out", fmt="json")
    assert ray_job.run([], tmp_path / "out", fmt="CSV") == 0
    import socket

    with socket.socket() as closed:  # a port nothing listens on: Ray retried it for minutes
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}", "no-port"):
        with pytest.raises(ValueError, match=f"cannot reach the Ray cluster at {address}"):
            ray_job.run(["a.png"], tmp_path / "out", address=address)


def test_resume_deletes_a_csv_file_stopped_before_its_header_ended(tmp_path):
    """Ray creates a file before it writes into it: a stop in between leaves it empty, or with part of the
    header. Resuming deletes it as cut off (as an empty Parquet file), not refuse it as another program's."""
    import csv

    from medimg.output import csv_fields
    from medimg.scale.ray_job import done_inputs

    out = tmp_path / "out"
    out.mkdir()
    header = csv_fields(["xray"]) + ["source_rows"]  # prob_<label> columns, as classify --full's CSV
    with open(out / "a_000000.csv", "w", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_NONNUMERIC)
        w.writerow(header)
        w.writerow({**dict.fromkeys(header, ""), "input": "x.png", "source": "x.png", "source_rows": 1}.values())
    (out / "b_000000.csv").write_text("")
    (out / "c_000000.csv").write_text('"input","locator","la')
    done = done_inputs(out, "csv")
    assert "x.png" in done and "y.png" not in done
    assert sorted(p.name for p in out.iterdir()) == ["a_000000.csv"]
    (out / "d.csv").write_text("name,size")  # another program's, without a newline: never touched
    with pytest.raises(ValueError, match="not an output file of this job"):
        done_inputs(out, "csv")
    assert (out / "d.csv").exists()


def test_write_tasks_are_few_at_once(tmp_path, tiny_model_dir, ray_local, monkeypatch):
    """Writes take no CPU, so Ray would run any number at once, each in a worker process of its own
    (~200 MB): 3000 inputs on 2 cores peaked at 4.8 GB instead of 2.5 GB."""
    from medimg.scale import ray_job

    seen = {}
    monkeypatch.setattr(ray.data.Dataset, "write_datasink", lambda self, sink, **kw: seen.update(kw))
    ray_job.run(pngs(tmp_path, 2), tmp_path / "out", model_dir=str(tiny_model_dir), concurrency=1)
    assert seen["ray_remote_args"] == {"num_cpus": 0} and 1 <= (seen.get("concurrency") or 10**6) <= 4


def test_resume_keeps_an_entry_whose_rows_ray_split_over_files(tmp_path):
    """A folder entry with many files can give more rows than one Ray block holds: Ray writes them to several
    files. Resuming counts an entry's rows over all files (each file alone was taken as cut off and deleted);
    an entry that lost part of its rows still has every file holding it deleted."""
    from medimg.scale.ray_job import done_inputs

    def row(source, n, i):
        return json.dumps({"input": f"{source}/{i}.png", "source": source, "source_rows": n}) + "\n"

    out = tmp_path / "out"
    out.mkdir()
    (out / "a_000000.json").write_text(row("big", 3, 0) + row("big", 3, 1))
    (out / "a_000001.json").write_text(row("big", 3, 2) + row("one", 1, 0))
    (out / "b_000000.json").write_text(row("lost", 3, 0) + row("other", 1, 0))
    (out / "c_000000.json").write_text(row("lost", 3, 1) + row("lost", 3, 2)[:-9])  # stopped mid-line
    done = done_inputs(out, "jsonl")  # "other" is done again with the file "lost" was in
    assert "big" in done and "one" in done and "other" not in done and "lost" not in done
    assert sorted(p.name for p in out.iterdir()) == ["a_000000.json", "a_000001.json"]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_rows_name_their_model_and_resume_keeps_to_its_model_and_threshold(tmp_path, tiny_model_dir, ray_local,
                                                                          fmt):
    """Every row says which model release made it; a resume with another model, or at a threshold that would
    change a written verdict, is refused before anything runs or is deleted (as classify --resume)."""
    import shutil

    other = tmp_path / "other-model"
    shutil.copytree(tiny_model_dir, other)
    meta = json.loads((other / "labels.json").read_text())
    (other / "labels.json").write_text(json.dumps({**meta, "version": "tiny-2"}))
    # the tiny model's p_medical: 0.920, 0.040, 0.649, 0.333 — at 0.7 medical, non-medical, uncertain, uncertain
    inputs = []
    for i, colour in enumerate([(140, 120, 120), (120, 140, 120), (135, 128, 125), (128, 128, 128)]):
        Image.new("RGB", (40, 40), colour).save(tmp_path / f"{i}.png")
        inputs.append(str(tmp_path / f"{i}.png"))
    inputs.append(str(tmp_path / "missing.png"))
    out = tmp_path / "out"
    kw = dict(fmt=fmt, concurrency=1, inputs_per_batch=5)
    assert run(inputs[:4], out, model_dir=str(tiny_model_dir), threshold=0.7, **kw) == 4
    assert {r["model"] for r in _rows_any(out, fmt)} == {"tiny-test-model 0"}
    cut = {"jsonl": ("cut.json", b'{"source": "x"'), "csv": ("cut.csv", ",".join(COLUMNS).encode() + b"\nx,"),
           "parquet": ("cut.parquet", b"PAR1 cut off")}[fmt]
    (out / cut[0]).write_bytes(cut[1])  # a stop's cut-off file: kept while resume is refused
    files = {p: p.read_bytes() for p in out.iterdir()}
    for model, threshold, says in ((other, 0.7, "holds rows of model tiny-test-model 0, not tiny-test-model tiny-2"),
                                   (tiny_model_dir, 0.66, "written at a threshold over 0.666666 and at most 0.920131"),
                                   (tiny_model_dir, 0.93, r"at most 0.920131 \(as far as their p_medical tells\), "
                                                          "and 0.93 would change some")):
        with pytest.raises(ValueError, match=says):
            run(inputs, out, model_dir=str(model), threshold=threshold, resume=True, **kw)
        assert {p: p.read_bytes() for p in out.iterdir()} == files
    assert run(inputs, out, model_dir=str(tiny_model_dir), threshold=0.9, resume=True, **kw) == 1
    assert not (out / cut[0]).exists()
    rows = _rows_any(out, fmt)
    assert sorted((Path(r["input"]).name, r["model"] or None) for r in rows) == [
        ("0.png", "tiny-test-model 0"), ("1.png", "tiny-test-model 0"), ("2.png", "tiny-test-model 0"),
        ("3.png", "tiny-test-model 0"), ("missing.png", None)]


def test_passed_over_counts_the_entries_of_this_list_not_every_entry_in_the_output(tmp_path, tiny_model_dir, ray_local):
    """Resuming with a list that holds only some of the entries already written passes over those, and says
    so; the output's other entries (of an earlier list) are not counted."""
    names = pngs(tmp_path, 3)
    out = tmp_path / "out"
    kw = dict(model_dir=str(tiny_model_dir), concurrency=1, inputs_per_batch=2)
    plan: dict = {}
    assert run(names[:2], out, plan=plan, **kw) == 2
    assert run([names[0], names[2]], out, resume=True, plan=plan, **kw) == 1
    assert plan == {"run": 1, "passed_over": 1, "images": 1, "errors": 0, "skipped": 0, "empty": 0}


def test_the_spill_hands_ray_every_batch_in_order(tmp_path):
    """The batches' places reach Ray as items: all of them, in order, each pointing at its entries."""
    from medimg.keyset import KeySet
    from medimg.scale.ray_job import Spill, read_entries, spill_new

    entries = [f"e{i}.png" for i in range(100)] + ["e5.png", "./e6.png"]
    done = KeySet([f"e{i}.png" for i in range(90, 95)])
    spill = Spill(tmp_path, 16)
    assert spill_new(spill, entries, done) == 100  # each entry counted once
    assert spill.count == 95 and len(spill.places()) == 6
    got = [e for p in spill.places() for e in read_entries(str(spill.path), p["start"], p["size"])]
    assert got == [f"e{i}.png" for i in range(100) if not 90 <= i < 95]
    spill.remove()
    assert not list(tmp_path.iterdir())


def test_resume_names_the_entry_that_lost_rows(tmp_path, caplog):
    """A file deleted because an entry in it lost rows says which entry, by name."""
    import logging

    from medimg.scale.ray_job import done_inputs

    def row(source, n, i):
        return json.dumps({"input": f"{source}/{i}.png", "source": source, "source_rows": n}) + "\n"

    (tmp_path / "a_000000.json").write_text(row("kept", 1, 0) + row("scans/lost", 3, 0) + row("scans/lost", 3, 1))
    with caplog.at_level(logging.WARNING, logger="medimg.scale.ray_job"):
        done = done_inputs(tmp_path, "jsonl")
    assert len(done) == 0 and not list(tmp_path.iterdir())
    assert "scans/lost has 2 of its rows" in caplog.text


pytest.importorskip("ray", reason="the scale extra (ray[data]) is not installed")


def test_resume_deletes_again_a_file_whose_entry_lost_rows_with_another_deleted_file(tmp_path):
    """An entry whose rows Ray split over two files, one of which is deleted for another entry cut short,
    is itself short then: the other file goes too, and neither entry is passed over."""
    from medimg.scale.ray_job import done_inputs

    def row(source, n, i):
        return json.dumps({"input": f"{source}/{i}.png", "source": source, "source_rows": n}) + "\n"

    out = tmp_path / "out"
    out.mkdir()
    (out / "a_000000.json").write_text(row("big", 3, 0) + row("big", 3, 1))
    (out / "a_000001.json").write_text(row("big", 3, 2) + row("lost", 2, 0))  # "lost" has 1 of its 2 rows
    done = done_inputs(out, "jsonl")
    assert len(done) == 0 and "big" not in done and "lost" not in done
    assert not list(out.iterdir())


def test_resume_passes_over_an_entry_written_under_another_spelling_of_the_same_input(tmp_path, monkeypatch):
    """The list is read once per input however it is spelled (the first spelling kept); resuming passes over
    an input an earlier run wrote under another spelling (./scans/a.png now, scans/a.png then; a URL's case
    and default port), instead of writing its rows a second time."""
    from medimg.keyset import KeySet
    from medimg.scale.ray_job import Spill, done_inputs, read_entries, spill_new

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_000000.json").write_text("".join(
        json.dumps({"input": s, "source": s, "source_rows": 1}) + "\n" for s in ("scans/a.png", "http://x.org/b.png")))
    done = done_inputs(out, "jsonl")
    assert "scans/a.png" in done and "http://x.org/b.png" in done and "scans/c.png" not in done
    spill = Spill(out, 4)
    given = ["./scans/a.png", "HTTP://x.org:80/b.png", "scans/a.png", "scans/c.png"]
    assert spill_new(spill, given, done) == 3  # ./scans/a.png and scans/a.png are one input
    assert [e for p in spill.places() for e in read_entries(str(spill.path), p["start"], p["size"])] == ["scans/c.png"]
    spill.remove()
    spill = Spill(out, 4)  # without a resume nothing is passed over
    assert spill_new(spill, given, KeySet()) == 3 and spill.count == 3
    spill.remove()


def test_resume_from_another_folder_does_not_take_a_relative_path_for_a_file_of_its_own(tmp_path, monkeypatch):
    """Rows written for `a.png` (relative, in folder A) do not pass over `/…/B/a.png` when a run is resumed
    from folder B: spellings are compared without the working folder."""
    from medimg.scale.ray_job import Spill, done_inputs, spill_new

    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_000000.json").write_text(json.dumps({"input": "a.png", "source": "a.png", "source_rows": 1}) + "\n")
    monkeypatch.chdir(tmp_path / "B")
    done = done_inputs(out, "jsonl")
    spill = Spill(out, 4)
    assert spill_new(spill, [str(tmp_path / "B" / "a.png"), "b.png"], done) == 2
    assert spill.count == 2  # B's own a.png is another input than the a.png written from A
    spill.remove()
    spill = Spill(out, 4)
    assert spill_new(spill, ["./a.png", "b.png"], done) == 2
    assert spill.count == 1  # ./a.png is a.png as written
    spill.remove()


def test_jsonl_rows_give_metadata_as_an_object_or_null_as_classify_full_does(tmp_path, tiny_model_dir, ray_local):
    """An image's metadata is a JSON object; an error's is null, not {} (classify --full writes null)."""
    good = tmp_path / "a.png"
    Image.new("RGB", (48, 40), (255, 0, 0)).save(good)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"
    run([str(good), str(bad)], out, fmt="jsonl", model_dir=str(tiny_model_dir), concurrency=1)
    rows = {Path(r["input"]).name: r for f in out.glob("*.json") for r in _rows_of(f)}
    assert isinstance(rows["a.png"]["metadata"], dict) and rows["broken.jpg"]["metadata"] is None
