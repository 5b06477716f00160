"""The `medimg` command: extract and classify over mixed inputs, every output format, exit codes."""

import csv
import io
import json
import os
import re
from pathlib import Path

import pytest

import pymupdf
from PIL import Image
from typer.testing import CliRunner

from builders import image_bytes, zip_bytes
from medimg.cli import app
from medimg.pipeline import RECORD_FIELDS
from webserver import WebServer
from words import flat

runner = CliRunner()


def make_pdf(path, colors):
    doc = pymupdf.open()
    for c in colors:
        page = doc.new_page()
        buf = io.BytesIO()
        Image.new("RGB", (120, 90), c).save(buf, "PNG")
        page.insert_image(pymupdf.Rect(72, 72, 312, 252), stream=buf.getvalue())
    doc.save(path)
    return path


def inputs(tmp_path):
    (tmp_path / "red.png").write_bytes(_png((255, 0, 0)))
    make_pdf(tmp_path / "doc.pdf", [(0, 255, 0), (0, 0, 255)])
    (tmp_path / "set.zip").write_bytes(zip_bytes({"scans/a.png": _png((250, 5, 5)), "notes.txt": b"hi"}))
    (tmp_path / "broken.png").write_bytes(_png((1, 2, 3))[:30])
    return [str(tmp_path / n) for n in ("red.png", "doc.pdf", "set.zip", "broken.png")]


def _png(color, size=(100, 80)):
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def test_version_names_the_package_and_each_shipped_model():
    import json as json_
    from importlib.metadata import version

    from medimg.model.classifier import ASSETS

    res = runner.invoke(app, ["--version"])
    lines = res.output.splitlines()
    assert res.exit_code == 0 and lines[0] == f"medimg {version('medimg')}"
    meta = json_.loads((ASSETS / "labels.json").read_text())
    assert lines[1] == f"model default: {meta['name']} release {meta['version']}, threshold {meta['threshold']}"
    assert any(line.startswith("model fast: ") for line in lines[2:])


def test_python_dash_m_medimg_is_the_command(tmp_path):
    """Where the `medimg` script is not on PATH (a venv not activated, a notebook's `!`), `python -m medimg`
    is the same command ("No module named medimg.__main__" before)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "medimg", "classify", "--help"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Usage: medimg classify" in " ".join(done.stdout.split())


def test_classify_jsonl_records(tmp_path, tiny_model_dir):
    out = tmp_path / "r.jsonl"
    res = runner.invoke(app, ["classify", *inputs(tmp_path), "--model", str(tiny_model_dir),
                              "--format", "jsonl", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(list(r) == RECORD_FIELDS + ["model", "threshold"] for r in rows)  # how each verdict was made
    ok = [r for r in rows if r["error"] is None]
    assert [(r["label"], r["locator"]) for r in ok][:3] == [("xray", ""), ("photo", "page 1, image 1"),
                                                          ("graphic", "page 2, image 1")]
    zipped = [r for r in ok if r["input"].endswith("set.zip:scans/a.png")]
    assert zipped and zipped[0]["label"] == "xray" and zipped[0]["verdict"] == "medical"
    assert any(r["input"].endswith("broken.png") and r["error"] for r in rows)


def test_classify_workers_change_nothing_but_speed(tmp_path, tiny_model_dir):
    ins = inputs(tmp_path)
    outs = {}
    for w in ("1", "3"):
        res = runner.invoke(app, ["classify", *ins, "--model", str(tiny_model_dir), "--format", "jsonl",
                                  "--workers", w])
        assert res.exit_code == 0, res.output
        outs[w] = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert len(outs["1"]) == 5 and outs["1"] == outs["3"]
    assert runner.invoke(app, ["classify", *ins, "--workers", "0"]).exit_code != 0


def test_classify_csv_and_json_agree(tmp_path, tiny_model_dir):
    ins = inputs(tmp_path)
    c, j = tmp_path / "r.csv", tmp_path / "r.json"
    for fmt, path in (("csv", c), ("json", j)):
        res = runner.invoke(app, ["classify", *ins, "--model", str(tiny_model_dir), "-f", fmt, "-o", str(path)])
        assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(c.open()))
    data = json.loads(j.read_text())
    assert list(rows[0]) == list(data[0]) == RECORD_FIELDS + ["model", "threshold"]
    assert [r["label"] or None for r in rows] == [d["label"] for d in data]
    assert len(rows) == len(data) >= 5


def test_threshold_option_changes_verdicts(tmp_path, tiny_model_dir):
    p = tmp_path / "mix.png"
    p.write_bytes(_png((200, 180, 0)))  # mostly red with some green: p_medical between 0.5 and 0.99
    verdicts = {}
    for t in ("0.51", "0.999"):
        res = runner.invoke(app, ["classify", str(p), "--model", str(tiny_model_dir), "-f", "jsonl", "-t", t])
        assert res.exit_code == 0, res.output
        verdicts[t] = json.loads(res.stdout.strip().splitlines()[-1])["verdict"]
    assert verdicts == {"0.51": "medical", "0.999": "uncertain"}


def test_table_output_and_exit_code_when_nothing_readable(tmp_path, tiny_model_dir):
    good = tmp_path / "ok.png"
    good.write_bytes(_png((255, 0, 0)))
    res = runner.invoke(app, ["classify", str(good), "--model", str(tiny_model_dir)])
    assert res.exit_code == 0 and "xray" in res.stdout and "medical" in res.stdout
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    res = runner.invoke(app, ["classify", str(bad), str(tmp_path / "missing.jpg"), "--model", str(tiny_model_dir)])
    assert res.exit_code == 1


def test_names_that_look_like_rich_markup_are_printed_as_they_are(tmp_path, tiny_model_dir, monkeypatch):
    """`[/b]` in a zip member, a URL or a folder name is a name, not a closing tag the table would choke on."""
    monkeypatch.chdir(tmp_path)  # short names: the table folds long ones
    folder = Path("[bold]scans")
    folder.mkdir()
    (folder / "z.zip").write_bytes(zip_bytes({"[/b].png": _png((255, 0, 0)), "[red]x.png": _png((0, 255, 0))}))
    (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    res = runner.invoke(app, ["classify", str(folder), "--model", str(tiny_model_dir)])
    assert res.exit_code == 0, res.output
    said = flat(res.stdout)
    assert "z.zip:[/b].png" in said and "z.zip:[red]x.png" in said and "[bold]scans" in said
    assert re.search(r"bad\.png error ", said), said  # an error row says so in the verdict column
    out = folder / "r.jsonl"
    assert runner.invoke(app, ["classify", str(folder), "--model", str(tiny_model_dir), "--out", str(out)]).exit_code == 0
    res = runner.invoke(app, ["classify", str(folder), "--model", str(tiny_model_dir), "--out", str(out), "--resume"])
    assert res.exit_code == 0 and f"already in {out} passed over" in flat(res.output), res.output


def test_bad_format_is_refused(tmp_path, tiny_model_dir):
    res = runner.invoke(app, ["classify", "x.png", "--model", str(tiny_model_dir), "-f", "xml"])
    assert res.exit_code != 0


def test_extract_writes_pngs_and_manifest(tmp_path):
    ins = inputs(tmp_path)
    out = tmp_path / "out"
    res = runner.invoke(app, ["extract", *ins, "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    files = [r for r in rows if "file" in r]
    assert len(files) == 4  # red.png, two PDF images, the PNG inside the zip
    for r in files:
        with Image.open(out / r["file"]) as im:
            assert (im.width, im.height) == (r["width"], r["height"])
    pdf_rows = [r for r in files if r["input"].endswith("doc.pdf")]
    assert [r["locator"] for r in pdf_rows] == ["page 1, image 1", "page 2, image 1"]
    assert any("error" in r and r["input"].endswith("broken.png") for r in rows)


def test_extract_from_a_page_on_loopback_needs_opt_in(tmp_path):
    with WebServer() as srv:
        srv.add("/a.png", image_bytes("PNG", (120, 100)), "image/png")
        srv.add("/page.html", '<html><body><img src="a.png" alt="x"></body></html>')
        refused = runner.invoke(app, ["extract", srv.url("/page.html"), "--out", str(tmp_path / "no")])
        assert refused.exit_code == 1
        row = json.loads((tmp_path / "no" / "manifest.jsonl").read_text().splitlines()[0])
        assert "private" in row["error"].lower() or "loopback" in row["error"].lower()
        ok = runner.invoke(app, ["extract", srv.url("/page.html"), "--allow-private", "--out", str(tmp_path / "yes")])
        assert ok.exit_code == 0, ok.output
        rows = [json.loads(x) for x in (tmp_path / "yes" / "manifest.jsonl").read_text().splitlines()]
        assert [r.get("file") for r in rows] == ["000001.png"]


def test_resume_carries_on_a_stopped_run(tmp_path, tiny_model_dir):
    """A run stopped part-way (in a PDF, mid-line) is carried on with --resume: the inputs already written
    are passed over, not opened again; the one that may be incomplete is removed and done again, whole."""
    folder = tmp_path / "in"
    folder.mkdir()
    ins = inputs(folder)
    for fmt in ("jsonl", "csv"):
        full = tmp_path / f"full.{fmt}"
        base = ["classify", *ins, "--model", str(tiny_model_dir), "-f", fmt]
        assert runner.invoke(app, [*base, "-o", str(full)]).exit_code == 0
        lines = full.read_text().splitlines(keepends=True)
        head = 1 if fmt == "csv" else 0
        # red.png and the first of doc.pdf's two images were written, then a cut-off line
        stopped = tmp_path / f"stopped.{fmt}"
        stopped.write_text("".join(lines[:head + 2]) + lines[head + 2][:25])
        (folder / "red.png").write_bytes(b"not read again")
        res = runner.invoke(app, [*base, "-o", str(stopped), "--resume"])
        assert res.exit_code == 0, res.output
        assert "(1 input passed over)" in res.output
        assert stopped.read_text() == full.read_text()  # red.png's row is the first run's
        res = runner.invoke(app, [*base, "-o", str(stopped), "--resume"])  # all done: only the last input again
        assert "(3 inputs passed over)" in res.output and stopped.read_text() == full.read_text()
        (folder / "red.png").write_bytes(_png((255, 0, 0)))

    # a folder: its files already written are passed over one by one
    out = tmp_path / "folder.jsonl"
    args = ["classify", str(folder), "--model", str(tiny_model_dir), "-f", "jsonl", "-o", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    rows = out.read_text().splitlines(keepends=True)
    out.write_text("".join(rows[:2]))
    res = runner.invoke(app, [*args, "--resume"])
    assert res.exit_code == 0 and out.read_text() == "".join(rows)


def test_resume_needs_an_appendable_out_file(tmp_path, tiny_model_dir):
    png = tmp_path / "a.png"
    png.write_bytes(_png((9, 9, 9)))
    for extra in (["-f", "jsonl"], ["-f", "json", "-o", str(tmp_path / "r.json")], ["-o", str(tmp_path / "r.txt")]):
        res = runner.invoke(app, ["classify", str(png), "--model", str(tiny_model_dir), "--resume", *extra])
        assert res.exit_code != 0
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    res = runner.invoke(app, ["classify", str(png), "--model", str(tiny_model_dir), "--resume", "-f", "csv",
                              "-o", str(tmp_path / "other.csv")])
    assert res.exit_code != 0 and "not a medimg CSV" in flat(res.output)
    fresh = tmp_path / "new.csv"  # nothing to resume: a fresh start
    res = runner.invoke(app, ["classify", str(png), "--model", str(tiny_model_dir), "--resume", "-f", "csv",
                              "-o", str(fresh)])
    assert res.exit_code == 0 and len(list(csv.DictReader(fresh.open()))) == 1


def test_full_records_carry_every_label_probability(tmp_path, tiny_model_dir):
    """--full adds each label's probability, the source format and its metadata: nested in JSONL, as
    prob_<label> columns and a JSON metadata cell in CSV; resuming keeps the columns the file was written with."""
    ins = inputs(tmp_path)
    base = ["classify", *ins, "--model", str(tiny_model_dir), "--full"]
    res = runner.invoke(app, [*base, "-f", "jsonl"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    ok = [r for r in rows if r["error"] is None]
    labels = json.loads((tiny_model_dir / "labels.json").read_text())["labels"]
    for r in ok:
        assert set(r["probs"]) == set(labels) and abs(sum(r["probs"].values()) - 1) < 1e-3
        assert r["probs"][r["label"]] == max(r["probs"].values())
    assert {r["format"] for r in ok} >= {"PNG"} and any(r["metadata"].get("page") == 1 for r in ok)

    out = tmp_path / "full.csv"
    assert runner.invoke(app, [*base, "-f", "csv", "-o", str(out)]).exit_code == 0
    table = list(csv.DictReader(out.open()))
    assert list(table[0])[:len(RECORD_FIELDS)] == RECORD_FIELDS
    assert [c for c in table[0] if c.startswith("prob_")] == [f"prob_{lb}" for lb in labels]
    first = next(r for r in table if not r["error"])
    assert abs(float(first[f"prob_{first['label']}"]) - max(float(first[f"prob_{lb}"]) for lb in labels)) < 1e-9
    res = runner.invoke(app, ["classify", *ins, "--model", str(tiny_model_dir), "-f", "csv", "-o", str(out),
                              "--resume"])
    assert res.exit_code != 0 and "with --full" in flat(res.output)  # its columns are --full's
    assert runner.invoke(app, [*base, "-f", "csv", "-o", str(out), "--resume"]).exit_code == 0


def test_offline_classify_fetches_nothing(tmp_path, tiny_model_dir):
    with WebServer() as srv:
        url = srv.add("/a.png", _png((200, 0, 0)), "image/png")
        png = tmp_path / "local.png"
        png.write_bytes(_png((0, 0, 200)))
        res = runner.invoke(app, ["classify", url, str(png), "--model", str(tiny_model_dir), "-f", "jsonl",
                                  "--allow-private", "--offline"])
        assert res.exit_code == 0, res.output
        rows = {r["input"]: r for r in (json.loads(x) for x in res.stdout.splitlines() if x.startswith("{"))}
        assert "network access is off" in rows[url]["error"] and rows[str(png)]["error"] is None
        assert srv.hits["/a.png"] == 0


def test_inputs_from_a_file_or_standard_input(tmp_path, tiny_model_dir):
    """Lists longer than a command line: one input per line, # comments and blank lines ignored."""
    paths = inputs(tmp_path)
    listing = tmp_path / "list.txt"
    listing.write_text("# scans to check\n" + paths[1] + "\n\n" + paths[2] + "\n")
    out = tmp_path / "a.jsonl"
    r = runner.invoke(app, ["classify", paths[0], "--inputs-from", str(listing), "--model", str(tiny_model_dir),
                            "--format", "jsonl", "--out", str(out)])
    assert r.exit_code == 0, r.output
    got = [json.loads(line)["input"] for line in out.read_text().splitlines()]
    assert got[0] == paths[0] and paths[1] in got and any(g.startswith(paths[2]) for g in got)
    r = runner.invoke(app, ["classify", "--inputs-from", "-", "--model", str(tiny_model_dir), "--format", "csv"],
                      input=paths[0] + "\n")
    assert r.exit_code == 0 and paths[0] in r.stdout
    r = runner.invoke(app, ["extract", "--inputs-from", str(listing), "--out", str(tmp_path / "x")])
    assert r.exit_code == 0 and (tmp_path / "x" / "000001.png").exists()
    r = runner.invoke(app, ["classify", "--model", str(tiny_model_dir)])
    assert r.exit_code != 0 and "--inputs-from" in flat(r.output)
    import os
    read, write = os.pipe()  # as bash's <(find …) gives: /dev/fd/N, not a regular file
    os.write(write, (paths[0] + "\n").encode())
    os.close(write)
    r = runner.invoke(app, ["classify", "--inputs-from", f"/dev/fd/{read}", "--model", str(tiny_model_dir),
                            "--format", "csv"])
    os.close(read)
    assert r.exit_code == 0 and paths[0] in r.stdout, r.output
    row = next(csv.DictReader(io.StringIO(r.stdout)))
    assert row["medical"] in ("true", "false"), row  # as JSON and scale's Arrow write booleans
    r = runner.invoke(app, ["classify", "--inputs-from", str(tmp_path / "missing.txt")])
    assert r.exit_code != 0 and "no such file" in flat(r.output)


def test_threshold_outside_half_to_one_is_refused(tmp_path, tiny_model_dir):
    p = tmp_path / "a.png"
    p.write_bytes(_png((200, 0, 0)))
    for t in ("1.5", "0.3", "-1"):
        res = runner.invoke(app, ["classify", str(p), "--model", str(tiny_model_dir), "-t", t])
        assert res.exit_code == 2 and "--threshold" in flat(res.output)
    from medimg.pipeline import classify
    with pytest.raises(ValueError, match="between 0.5 and 1"):
        list(classify([str(p)], threshold=0.3))


def test_format_follows_the_out_extension(tmp_path, tiny_model_dir):
    p = tmp_path / "a.png"
    p.write_bytes(_png((200, 0, 0)))
    for name, check in [("r.jsonl", lambda t: json.loads(t.splitlines()[0])["input"]),
                        ("r.json", lambda t: json.loads(t)[0]["input"]),
                        ("r.csv", lambda t: next(csv.DictReader(io.StringIO(t)))["input"])]:
        res = runner.invoke(app, ["classify", str(p), "--model", str(tiny_model_dir), "--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        assert check((tmp_path / name).read_text()) == str(p)


def test_user_mistakes_are_clear_errors_not_tracebacks(tmp_path, tiny_model_dir):
    p = tmp_path / "a.png"
    p.write_bytes(_png((200, 0, 0)))
    res = runner.invoke(app, ["classify", str(p), "--model", str(tmp_path / "nosuch")])
    assert res.exit_code == 2 and "there is no such folder" in flat(res.output) and res.exception is not None
    assert isinstance(res.exception, SystemExit)
    res = runner.invoke(app, ["classify", str(p), "--model", "fastest"])  # a shipped one's name, misspelt
    assert res.exit_code == 2 and "no model named 'fastest', and no folder of that name: give a shipped one (fast, " \
        "or the default when none is named)" in flat(res.output)
    res = runner.invoke(app, ["classify", str(p), "--model", str(tmp_path)])  # a folder, but not a model's
    assert res.exit_code == 2 and "expected labels.json" in flat(res.output)
    res = runner.invoke(app, ["classify", str(p), "--model", str(tiny_model_dir), "--out", str(tmp_path / "no/x.jsonl")])
    assert res.exit_code == 2 and "does not exist" in flat(res.output) and isinstance(res.exception, SystemExit)


def test_nothing_classified_is_a_failure_and_skips_are_counted(tmp_path, tiny_model_dir):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("hello")
    for folder in ("empty", "notes"):
        res = runner.invoke(app, ["classify", str(tmp_path / folder), "--model", str(tiny_model_dir)])
        assert res.exit_code == 1, res.output
    res = runner.invoke(app, ["classify", str(tmp_path / "notes"), "--model", str(tiny_model_dir)])
    assert "0 images classified, 0 errors, 1 skipped (--show-skipped lists them)" in flat(res.output)


def test_names_that_are_not_utf8_survive_jsonl_csv_and_resume(tmp_path, tiny_model_dir):
    folder = tmp_path / "odd"
    folder.mkdir()
    odd = os.fsdecode(b"caf\xe9.png")
    (folder / odd).write_bytes(_png((200, 0, 0)))
    (folder / "plain.png").write_bytes(_png((0, 200, 0)))
    for fmt in ("jsonl", "csv"):
        out = tmp_path / f"r.{fmt}"
        res = runner.invoke(app, ["classify", str(folder), "--model", str(tiny_model_dir), "--out", str(out)])
        assert res.exit_code == 0, res.output
        again = runner.invoke(app, ["classify", str(folder), "--model", str(tiny_model_dir), "--out", str(out),
                                    "--resume"])
        assert again.exit_code == 0 and "1 input passed over" in flat(again.output), again.output
        text = out.read_bytes().decode("utf-8")  # valid UTF-8, whatever the names (it was raw 0xE9 in CSV)
        assert text.count("plain.png") == 1
        assert ("caf\\udce9.png" if fmt == "jsonl" else "caf\ufffd.png") in text
    rows = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert rows[0]["input"] == str(folder / odd)  # reads back as the very same name
    for fmt in ("csv", "table"):
        res = runner.invoke(app, ["classify", str(folder), "--model", str(tiny_model_dir), "-f", fmt])
        assert "\ufffd" in res.stdout and not re.search("[\ud800-\udfff]", res.stdout), res.stdout
    assert runner.invoke(app, ["extract", str(folder), "-o", str(tmp_path / "x")]).exit_code == 0
    rows = [json.loads(x) for x in (tmp_path / "x" / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(r["input"] for r in rows) == sorted([str(folder / odd), str(folder / "plain.png")])


def test_extract_never_overwrites_or_reads_its_own_output(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.png").write_bytes(_png((200, 0, 0)))
    out = src / "out"
    res = runner.invoke(app, ["extract", str(src), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["000001.png", "manifest.jsonl"]
    again = runner.invoke(app, ["extract", str(src), "--out", str(out)])
    assert again.exit_code == 2 and "not an empty folder" in flat(again.output)


def test_evaluate_names_the_labels_and_the_place_of_each_miss(tmp_path, tiny_model_dir):
    (tmp_path / "cats").mkdir()
    (tmp_path / "cats" / "a.png").write_bytes(_png((200, 0, 0)))
    res = runner.invoke(app, ["evaluate", str(tmp_path), "--model", str(tiny_model_dir)])
    assert res.exit_code == 2 and "xray" in flat(res.output) and "photo" in flat(res.output)
    lab = tmp_path / "lab"
    (lab / "photo").mkdir(parents=True)
    make_pdf(lab / "photo" / "doc.pdf", [(250, 0, 0)])  # red: the tiny model says xray, a miss
    res = runner.invoke(app, ["evaluate", str(lab), "--model", str(tiny_model_dir)])
    assert res.exit_code == 0, res.output
    assert "[page 1, image 1]" in flat(res.output)
    assert "not among the model's labels" not in flat(res.output)
    (lab / "ct").mkdir()  # a label the tiny model does not have: always wrong, and said so
    (lab / "ct" / "a.png").write_bytes(_png((200, 0, 0)))
    res = runner.invoke(app, ["evaluate", str(lab), "--model", str(tiny_model_dir)])
    assert res.exit_code == 0 and "ct: not among the model's labels, so never predicted" in flat(res.output)
    res = runner.invoke(app, ["evaluate", str(lab), "--model", str(tiny_model_dir), "--json"])
    assert json.loads(res.stdout)["labels_unknown_to_model"] == ["ct"]


def test_max_input_mb_sets_the_per_file_cap(tmp_path, tiny_model_dir):
    """A file over --max-input-mb is an error naming the cap; a zip holding it is not refused as a whole."""
    rng = __import__("numpy").random.default_rng(0)
    big = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 256, (800, 1000, 3), dtype="uint8")).save(big)  # ~2.4 MB, incompressible
    assert big.stat().st_size > 2**21
    rows = {}
    for cap in (None, "1", "3"):
        args = ["classify", str(big), "--model", str(tiny_model_dir), "-f", "jsonl"]
        res = runner.invoke(app, args + (["--max-input-mb", cap] if cap else []))
        (rows[cap],) = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    assert rows[None]["error"] is None and rows["3"]["error"] is None
    assert "over the max_input_bytes cap of 1.0 MB" in rows["1"]["error"]
    assert runner.invoke(app, ["classify", str(big), "--max-input-mb", "0"]).exit_code != 0


def test_the_server_reads_a_file_as_big_as_its_upload_cap():
    from medimg.server.config import ServerConfig

    assert ServerConfig().limits().max_input_bytes == 200 * 2**20
    lim = ServerConfig(max_upload_bytes=300 * 2**20).limits()
    assert lim.max_input_bytes == 300 * 2**20 and lim.zip_max_bytes >= lim.max_input_bytes


def test_out_naming_an_input_or_the_list_is_refused_before_anything_is_written(tmp_path, tiny_model_dir):
    """`classify victim.pdf -o victim.pdf` emptied the PDF before reading it; `--inputs-from list -o list` lost
    the list."""
    pdf = make_pdf(tmp_path / "victim.pdf", [(0, 255, 0)])
    before = pdf.read_bytes()
    res = runner.invoke(app, ["classify", str(pdf), "--model", str(tiny_model_dir), "-o", str(pdf), "-f", "jsonl"])
    assert res.exit_code == 2 and "is one of the inputs: writing the records there would destroy it" in flat(res.output)
    listed = tmp_path / "list.csv"
    listed.write_text(f"path\n{pdf}\n")
    res = runner.invoke(app, ["classify", "--inputs-from", str(listed), "--model", str(tiny_model_dir), "-o",
                              str(tmp_path / "." / "list.csv")])
    assert res.exit_code == 2 and "is one of the inputs (the list)" in flat(res.output)
    assert pdf.read_bytes() == before and listed.read_text() == f"path\n{pdf}\n"
    # the output inside a folder being read is not read as an input
    res = runner.invoke(app, ["classify", str(tmp_path), "--model", str(tiny_model_dir), "-o", str(tmp_path / "r.jsonl"),
                              "--show-skipped"])
    assert res.exit_code == 0 and "r.jsonl" not in (tmp_path / "r.jsonl").read_text()


def test_out_naming_an_image_or_pdf_inside_a_folder_given_is_refused_and_ours_replaced(tmp_path, tiny_model_dir):
    """`classify scans -f jsonl -o scans/a.dcm` emptied the DICOM file (a slip of the tab key), saying it was
    "written before"; a file medimg reads is never overwritten by records, while its own output files are."""
    scans = tmp_path / "scans"
    scans.mkdir()
    (scans / "a.png").write_bytes(_png((200, 0, 0)))
    pdf = make_pdf(scans / "b.pdf", [(0, 255, 0)])
    kept = {p: p.read_bytes() for p in (scans / "a.png", pdf)}
    args = ["classify", str(scans), "--model", str(tiny_model_dir), "-f", "jsonl"]
    for victim, kind in ((scans / "a.png", "image"), (pdf, "pdf")):
        res = runner.invoke(app, [*args, "-o", str(victim)])
        assert res.exit_code == 2, res.output
        assert f"is a file medimg reads ({kind}), not records written before" in flat(res.output), res.output
    assert {p: p.read_bytes() for p in kept} == kept
    for name, fmt in (("r.jsonl", "jsonl"), ("r.json", "json"), ("r.csv", "csv"), ("r.txt", "table")):
        for _ in range(2):  # the second run replaces the first's records
            res = runner.invoke(app, [*args[:-1], fmt, "-o", str(scans / name)])
            assert res.exit_code == 0, res.output
    assert {p: p.read_bytes() for p in kept} == kept


def test_out_format_comes_from_a_known_extension_or_is_asked_for(tmp_path, tiny_model_dir):
    (tmp_path / "a.png").write_bytes(_png((200, 0, 0)))
    args = ["classify", str(tmp_path / "a.png"), "--model", str(tiny_model_dir)]
    for name in ("r.tsv", "r.parq", "r.jsonl.gz"):  # .parquet is written (tests/test_cli_parquet_s30.py)
        res = runner.invoke(app, [*args, "-o", str(tmp_path / name)])
        assert res.exit_code == 2 and "name the file .jsonl, .json, .csv, .parquet or .txt" in flat(res.output), \
            res.output
        assert not (tmp_path / name).exists()
    res = runner.invoke(app, [*args, "-o", "-", "-f", "JSONL"])  # - is stdout; formats in any case
    assert res.exit_code == 0 and json.loads(res.stdout.splitlines()[0])["label"] and not os.path.exists("-")
    res = runner.invoke(app, [*args, "-o", str(tmp_path / "r.txt")])
    assert res.exit_code == 0 and "┃ input" in (tmp_path / "r.txt").read_text()


def test_inputs_cut_short_at_a_cap_are_named_after_the_summary(tmp_path, tiny_model_dir):
    """A PDF past --max-pages, a GIF past --max-images: skipped notes (not errors), but named after the summary
    with the option that raises the cap; 520 pages of a patient record must not go quietly."""
    pdf = make_pdf(tmp_path / "long.pdf", [(250, 0, 0), (0, 250, 0), (0, 0, 250)])
    frames = [Image.new("RGB", (100, 80), c) for c in [(250, 0, 0), (0, 250, 0), (0, 0, 250), (9, 9, 9)]]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    res = runner.invoke(app, ["classify", str(pdf), str(tmp_path / "anim.gif"), "--all-frames", "--model",
                              str(tiny_model_dir), "--max-pages", "2", "--max-images", "3", "-f", "jsonl"])
    assert res.exit_code == 0, res.output
    said = flat(res.stderr)
    assert "2 inputs not read to the end:" in said
    assert f"{pdf}: read only the first 2 of 3 pages (max_pdf_pages) — raise it with --max-pages" in said
    assert "anim.gif: stopped after 3 images (max_images_per_input) — raise it with --max-images" in said
    assert len(res.stdout.splitlines()) == 5
    res = runner.invoke(app, ["classify", str(pdf), "--model", str(tiny_model_dir), "--max-pages", "2",
                              "--max-images", "2"])  # both caps stop it at its second image: one input, two notes
    said = flat(res.stderr)
    assert res.exit_code == 0 and "1 input not read to the end:" in said
    assert "--max-pages" in said and "--max-images" in said
    res = runner.invoke(app, ["classify", str(pdf), "--model", str(tiny_model_dir), "--max-pages", "0"])
    assert res.exit_code == 2


def test_errors_over_a_cap_name_the_option_that_raises_it(tmp_path, tiny_model_dir):
    """Errors name a cap by its Limits field (max_pixels, shared with the Python API); after the summary the CLI
    counts them by cap with the option to raise it, in classify and extract. Other errors add no such line."""
    for name, side in (("big.png", 300), ("bigger.png", 400), ("small.png", 100)):
        Image.new("RGB", (side, side), (200, 30, 30)).save(tmp_path / name)
    (tmp_path / "broken.png").write_bytes(_png((1, 2, 3))[:30])
    names = [str(tmp_path / n) for n in ("big.png", "bigger.png", "small.png", "broken.png")]
    res = runner.invoke(app, ["classify", *names, "--model", str(tiny_model_dir), "--max-pixels", "50000",
                              "-f", "jsonl"])
    assert res.exit_code == 0, res.output
    errors = [r["error"] for r in map(json.loads, res.stdout.splitlines()) if r["error"]]
    assert len(errors) == 3 and sum("max_pixels" in e for e in errors) == 2
    assert "2 errors over the max_pixels cap (raise it with --max-pixels)" in flat(res.stderr)
    res = runner.invoke(app, ["extract", *names, "--out", str(tmp_path / "ex"), "--max-pixels", "50000",
                              "--max-input-mb", "1"])
    assert res.exit_code == 0 and "2 errors over the max_pixels cap (raise it with --max-pixels)" in flat(res.stderr)
    res = runner.invoke(app, ["classify", *names[2:], "--model", str(tiny_model_dir), "-f", "jsonl"])
    assert res.exit_code == 0 and "cap" not in res.stderr


def test_a_download_over_its_cap_names_the_option_that_raises_it(tmp_path, tiny_model_dir):
    """A download refused by size named no Limits field, so the summary gave no hint; now it names
    max_download_bytes, which --max-input-mb sets. The declared size and the bytes sent are both checked."""
    from webserver import WebServer

    big = io.BytesIO()
    Image.effect_noise((900, 900), 80).convert("RGB").save(big, "PNG")  # noise: ~2.4 MB as PNG
    assert big.tell() > 2**20
    with WebServer() as srv:
        srv.add("/big.png", big.getvalue(), "image/png")
        srv.huge("/stream.png", 3 * 2**20, declare_length=False)
        res = runner.invoke(app, ["classify", srv.url("/big.png"), srv.url("/stream.png"), "--allow-private",
                                  "--model", str(tiny_model_dir), "--max-input-mb", "1", "-f", "jsonl"])
    assert res.exit_code == 1, res.output
    errors = [r["error"] for r in map(json.loads, res.stdout.splitlines())]
    assert "declares" in errors[0] and "sent more than" in errors[1], errors
    assert all("(max_download_bytes)" in e for e in errors), errors
    assert "2 errors over the max_download_bytes cap (raise it with --max-input-mb)" in flat(res.stderr)


def test_limits_options_are_checked_and_govern_downloads_too():
    from medimg.cli import make_limits

    lim = make_limits(timeout=120, max_input_mb=500)
    assert lim.total_timeout == lim.read_timeout == 120  # a server silent for 40 s was given up at 20 s
    assert lim.max_download_bytes == lim.max_input_bytes == 500 * 2**20  # downloads stayed capped at 50 MB
    for option, value in (("--max-pixels", "-1"), ("--timeout", "0"), ("--min-side", "-5"), ("--max-images", "0")):
        res = runner.invoke(app, ["classify", "x.png", option, value])
        assert res.exit_code == 2 and option in flat(res.output), (option, res.output)
    for option, value in (("--max-upload-mb", "0"), ("--request-timeout", "-5"), ("--port", "70000")):
        res = runner.invoke(app, ["serve", option, value])
        assert res.exit_code == 2 and option in flat(res.output), (option, res.output)


def test_render_where_it_cannot_work_is_a_usage_error(monkeypatch, tiny_model_dir):
    """Without Chromium or Playwright, --render fetched every URL and then gave each an error row (exit 1)."""
    from medimg.sources import browser

    monkeypatch.setattr(browser, "CHROMIUM", "/nonexistent/chromium")
    for command in (["classify", "--model", str(tiny_model_dir)], ["extract", "--out", "unused"]):
        res = runner.invoke(app, [*command, "--render", "--allow-private", "http://127.0.0.1:9/"])
        assert res.exit_code == 2 and "rendering needs Chromium at /nonexistent/chromium" in flat(res.output)
    res = runner.invoke(app, ["classify", "--model", str(tiny_model_dir), "--render", "--offline",
                              "http://127.0.0.1:9/"])  # fetches nothing: rendering is never needed
    assert res.exit_code == 1 and "network access is off (offline)" in flat(res.output)


def test_serve_with_no_writable_temporary_folder_says_so(monkeypatch, tmp_path, tiny_model_dir):
    """No usable temporary folder (TMPDIR missing and /tmp read-only, as in a locked-down container; here
    tempfile is pointed at a folder that does not exist) was a 95-line traceback."""
    import tempfile

    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
    res = runner.invoke(app, ["serve", "--model", str(tiny_model_dir), "--port", "1"])  # never reached
    said = flat(res.output)
    assert res.exit_code == 1 and "medimg serve needs a writable temporary folder for uploads" in said, said
    assert "set TMPDIR, or GRADIO_TEMP_DIR, to one" in said and "Traceback" not in said
    assert "GRADIO_TEMP_DIR" not in os.environ


def test_serve_on_a_port_in_use_is_exit_code_3_before_anything_starts(caplog, monkeypatch, tmp_path):
    import socket

    for name in ("GRADIO_TEMP_DIR", "MPLCONFIGDIR"):  # so serve makes no scratch folders of this process's
        monkeypatch.setenv(name, str(tmp_path))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        res = runner.invoke(app, ["serve", "--port", str(taken.getsockname()[1])])
    assert res.exit_code == 3 and "cannot listen on 127.0.0.1 port" in caplog.text


def test_resume_refuses_a_csv_whose_row_before_the_last_is_not_whole(tmp_path, tiny_model_dir):
    """Only the last CSV row may be cut off (a stopped run); a short row before it means the file is not (or
    no longer) what medimg wrote: --resume refuses it and changes nothing, instead of passing that row over and
    cutting the file at a place counted without it."""
    names = []
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        (tmp_path / f"{i}.png").write_bytes(_png(colour))
        names.append(str(tmp_path / f"{i}.png"))
    out = tmp_path / "r.csv"
    args = ["classify", *names, "--model", str(tiny_model_dir), "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    lines = out.read_text().splitlines(keepends=True)
    assert len(lines) == 4
    lines[1] = lines[1].split(",", 1)[0] + "\r\n"  # the first row: its input only
    out.write_text("".join(lines), newline="")
    before = out.read_bytes()
    res = runner.invoke(app, [*args, "--resume"])
    assert res.exit_code == 2 and "not a whole medimg row" in flat(res.output), res.output
    assert out.read_bytes() == before


def test_a_pdf_that_ran_out_of_time_is_named_after_the_summary(tmp_path, tiny_model_dir, monkeypatch):
    """A PDF given up on at its time limit (a skipped note "out of time", not an error) is named after the
    summary among the inputs not read to the end, as one stopped by a cap is."""
    from medimg.sources import pdf

    monkeypatch.setattr(pdf, "PDF_SECONDS", 1e-9)  # out of time after its first page
    long = make_pdf(tmp_path / "long.pdf", [(250, 0, 0), (0, 250, 0), (0, 0, 250)])
    res = runner.invoke(app, ["classify", str(long), "--model", str(tiny_model_dir), "-f", "jsonl"])
    said = flat(res.stderr)
    assert "1 input not read to the end:" in said and f"{long}: " in said and "out of time" in said, said


def test_an_out_file_written_before_is_replaced_with_a_word(tmp_path, tiny_model_dir):
    """Without --resume, an --out that holds an earlier run's results is replaced, as before, but said on stderr
    (a forgotten --resume lost a night's results without a word)."""
    out = tmp_path / "r.jsonl"
    args = ["classify", *inputs(tmp_path), "--model", str(tiny_model_dir), "--out", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "replacing" not in res.output
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and f"replacing {out} (written before); --resume would carry it on instead" in \
        " ".join(res.output.split())
    res = runner.invoke(app, [*args, "--resume"])
    assert res.exit_code == 0 and "replacing" not in res.output
    table = tmp_path / "r.txt"  # a table cannot be resumed: the warning does not offer it
    for _ in range(2):
        res = runner.invoke(app, ["classify", *inputs(tmp_path), "--model", str(tiny_model_dir), "--out", str(table)])
    assert res.exit_code == 0 and f"replacing {table} (written before)" in " ".join(res.output.split())
    assert "--resume" not in res.output


@pytest.mark.parametrize("columns", [45, 60, 80, 200])
def test_the_table_fits_a_narrow_terminal_without_breaking_words(monkeypatch, columns):
    """In an 80-column terminal the table puts p_medical beside the verdict and the confidence beside the label,
    never wraps them, and leaves out columns empty in every row: every line fits ("non-med / ical" before)."""
    import io
    import re
    import sys

    from medimg.cli import _print_table
    from medimg.pipeline import Record

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    recs = [Record(input="folder/sub/BCCD__JPEGImages__BloodImage_00000.webp", locator="", label="histology",
                   verdict="medical", confidence=0.903, p_medical=0.95, width=640, height=480),
            Record(input="paper.pdf", locator="page 2, figure 1", label="graphic", verdict="non-medical",
                   confidence=0.81, p_medical=0.1, width=800, height=600)]
    if columns != 80:
        recs.append(Record(input="http://127.0.0.1:1/x.png", locator="", error="refused: host 127.0.0.1 is a "
                           "loopback address (private addresses are blocked unless allowed: --allow-private)"))
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.setattr(sys, "stdout", Terminal())
    _print_table(recs, None, 0.6)
    lines = re.sub(r"\x1b\[[0-9;]*m", "", sys.stdout.getvalue()).splitlines()
    assert lines and all(len(line) <= columns and line[-1] in "┓┃┩│┘" for line in lines), "\n".join(lines)
    cells = [line.split("│")[1:-1] for line in lines if line.startswith("│")]
    first, last = ("".join(c[i].replace(" ", "") for c in cells) for i in (0, -1))  # a column read down
    if columns != 80:  # folded, no letter lost
        assert "http://127.0.0.1:1/x.png" in first and "blockedunlessallowed:--allow-private" in last
    header = lines[1]
    if columns == 80:
        assert "error" not in header  # no row has one
        assert "verdict (p)" in header and "label (conf.)" in header and "confidence" not in header
        assert any("non-medical 0.100" in line and "graphic 0.810" in line for line in lines)
    elif columns == 200:
        assert "confidence" in header and "p_medical" in header and "error" in header
        assert any("folder/sub/BCCD__JPEGImages__BloodImage_00000.webp" in line for line in lines)
