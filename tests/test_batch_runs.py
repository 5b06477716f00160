"""Long batch runs: records stream out whatever they are, resuming never loses or repeats rows (also for
containers fetched by URL or with notes), odd inputs and stops are handled, and nothing is cut that is
not ours."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from medimg.cli import app
from medimg.pipeline import classify
from medimg.sources import input_tasks
from webserver import WebServer, settled
from medimg.sources import browser, web

runner = CliRunner()


def flat(output: str) -> str:
    return " ".join(re.sub(r"[│╭╮╰╯─┃]", " ", output).split())


def png(colour=(200, 0, 0), size=(40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def rows(path: Path) -> list[tuple[str, str]]:
    return [(r["input"], r["locator"]) for r in map(json.loads, path.read_text().splitlines())]


# ---------------------------------------------------------------- resume never destroys or repeats


def test_resume_refuses_a_file_that_is_not_its_own_output_and_leaves_it_whole(tmp_path, tiny_model_dir):
    (tmp_path / "a.png").write_bytes(png())
    base = ["classify", str(tmp_path / "a.png"), "--model", str(tiny_model_dir), "--resume"]
    notes = tmp_path / "notes.jsonl"
    notes.write_text("".join(json.dumps({"id": i, "text": "someone's notes"}) + "\n" for i in range(50)))
    table = tmp_path / "results.csv"
    table.write_text("input,locator,label\n" + "x.png,,photo\n" * 20)
    for out, extra in ((notes, []), (table, ["--format", "jsonl"])):
        before = out.read_bytes()
        res = runner.invoke(app, [*base, "--out", str(out), *extra])
        assert res.exit_code == 2 and "not a medimg JSONL record" in flat(res.output), res.output
        assert out.read_bytes() == before


def test_resume_knows_a_path_however_it_is_spelled(tmp_path, tiny_model_dir, monkeypatch):
    """A run started as `classify scans/` and carried on as `classify /abs/scans/ --resume` (or ./scans): the
    files already written are passed over, not written twice."""
    import zipfile

    monkeypatch.chdir(tmp_path)
    (tmp_path / "scans").mkdir()
    for i in range(3):
        (tmp_path / "scans" / f"{i}.png").write_bytes(png((60 * i, 0, 0)))
    with zipfile.ZipFile(tmp_path / "scans" / "more.zip", "w") as z:
        z.writestr("inner/x.png", png((0, 90, 0)))
    out = tmp_path / "r.jsonl"
    first = runner.invoke(app, ["classify", "scans", "--model", str(tiny_model_dir), "--out", str(out)])
    assert first.exit_code == 0, first.output
    before = out.read_text().splitlines()
    assert len(before) == 4
    for spelled in (str(tmp_path / "scans"), "./scans/"):
        again = runner.invoke(app, ["classify", spelled, "--model", str(tiny_model_dir), "--out", str(out),
                                    "--resume"])
        assert again.exit_code == 0, again.output
        lines = out.read_text().splitlines()
        # the last input written is done again (it may have stopped part-way); nothing else is
        assert len(lines) == 4 and lines[:3] == before[:3], lines


def test_resume_spellings_never_join_two_different_files(tmp_path, monkeypatch):
    """`..` is kept: beside a link it leads elsewhere, and in a zip member's name it is no folder at all."""
    from medimg.output import Spellings as _spellings

    monkeypatch.chdir(tmp_path)
    done = _spellings([str(tmp_path / "scans" / "a.png"), "evil.zip:sub/../x.png", "https://h/p?a=1"])
    assert "scans/a.png" in done and "./scans//a.png" in done
    assert "x.png" not in done and "evil.zip:x.png" not in done and "link/../scans/a.png" not in done
    assert "https://h/p?a=1" in done and "HTTPS://H:443/./p?a=1" in done  # one URL, as httpx would fetch it
    assert "https://h/p?a=2" not in done and "https://h/p" not in done and "https://h/P?a=1" not in done
    assert "scans/a.png" not in _spellings(["file:scans/a.png"]) and "https://h/p?a=1" not in _spellings(["h/p?a=1"])


def test_resume_tells_pages_apart_by_their_fragment_only_when_rendering():
    """`--render` reads page#a and page#b as two inputs (a script may show each its own images): resuming
    passes over only the one written; read statically they are one page."""
    from medimg.output import Spellings as _spellings

    static, rendered = _spellings(["https://h/app#a"]), _spellings(["https://h/app#a"], fragments=True)
    assert "https://h/app#b" in static and "https://H/app" in static
    assert "https://h/app#b" not in rendered and "https://H/app#a" in rendered


def test_resume_with_other_fields_than_the_file_was_written_with_is_refused(tmp_path, tiny_model_dir):
    (tmp_path / "a.png").write_bytes(png())
    out = tmp_path / "r.jsonl"
    base = ["classify", str(tmp_path / "a.png"), "--model", str(tiny_model_dir), "--out", str(out)]
    assert runner.invoke(app, [*base, "--full"]).exit_code == 0
    res = runner.invoke(app, [*base, "--resume"])
    assert res.exit_code == 2 and "written with --full" in flat(res.output)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_resume_at_another_threshold_than_the_rows_were_written_with_is_refused(tmp_path, tiny_model_dir, suffix):
    """Rows whose verdicts another threshold would change are never joined by rows made at that threshold."""
    # the tiny model's p_medical: 0.920, 0.040, 0.649, 0.333 — at 0.7 medical, non-medical, uncertain, uncertain
    colours = [(140, 120, 120), (120, 140, 120), (135, 128, 125), (128, 128, 128)]
    files = []
    for i, colour in enumerate(colours):
        (tmp_path / f"{i}.png").write_bytes(png(colour))
        files.append(str(tmp_path / f"{i}.png"))
    out = tmp_path / f"r{suffix}"
    base = ["classify", *files, "--model", str(tiny_model_dir), "--out", str(out)]
    assert runner.invoke(app, [*base, "--threshold", "0.7"]).exit_code == 0
    whole = out.read_bytes()
    for threshold, ok in ((0.7, True), (0.67, True), (0.92, True), (0.66, False), (0.93, False), (None, True)):
        out.write_bytes(whole)
        res = runner.invoke(app, [*base, "--resume", *(["--threshold", str(threshold)] if threshold else [])])
        if ok:  # None: the model's own threshold, 0.8
            assert res.exit_code == 0, (threshold, res.output)
        else:
            assert res.exit_code == 2, res.output
            assert ("written at a threshold over 0.666666 and at most 0.920131 (as far as their p_medical tells), "
                    f"and {threshold:g} would change some") in flat(res.output), res.output
            assert out.read_bytes() == whole  # refused before anything is cut


def test_thresholds_that_rows_agree_with():
    from medimg.output import Thresholds

    bounds = Thresholds()
    for p, verdict in ((0.95, "medical"), (0.1, "non-medical"), (0.7, "uncertain"), ("", ""), (None, None)):
        bounds.add({"p_medical": p, "verdict": verdict})
    assert [bounds.allow(t) for t in (0.6999, 0.7, 0.75, 0.9, 0.9001, 0.95)] == [False, True, True, True, False, False]
    assert bounds.allow(0.25) and str(bounds) == "over 0.699999 and at most 0.900001"
    bounds.add({"p_medical": "0.2", "verdict": "uncertain"})  # uncertain at 0.2 needs t > 0.8
    assert bounds.allow(0.85) and not bounds.allow(0.7999)
    bounds.add({"p_medical": "0.75", "verdict": "medical"})  # medical at 0.75 needs t ≤ 0.75
    assert not any(bounds.allow(t / 100) for t in range(50, 101)) and "changed part-way" in str(bounds)


def test_resuming_a_zip_fetched_by_url_writes_each_member_once(tmp_path, tiny_model_dir):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, colour in enumerate([(200, 0, 0), (0, 200, 0), (0, 0, 200)]):
            zf.writestr(f"{i}.png", png(colour))
    with WebServer() as srv:
        srv.add("/z.zip", buf.getvalue(), "application/zip")
        base = ["classify", srv.url("/z.zip"), "--model", str(tiny_model_dir), "--allow-private"]
        whole = tmp_path / "whole.jsonl"
        assert runner.invoke(app, [*base, "--out", str(whole)]).exit_code == 0
        lines = whole.read_text().splitlines(keepends=True)
        assert len(lines) == 3
        for cut in range(len(lines) + 1):  # stopped after `cut` rows, the next one half written
            out = tmp_path / f"cut{cut}.jsonl"
            out.write_text("".join(lines[:cut]) + (lines[cut][:20] if cut < len(lines) else ""))
            res = runner.invoke(app, [*base, "--out", str(out), "--resume"])
            assert res.exit_code in (0, 1), res.output
            assert rows(out) == rows(whole), cut


def test_resuming_a_container_with_a_note_before_its_members_loses_none(tmp_path, tiny_model_dir):
    """An office document's note ("parts left out") has the document as its input, its pictures have
    doc.docx:word/media/…: a stop after the first picture must not count the whole document as done."""
    doc = tmp_path / "doc.docx"
    with zipfile.ZipFile(doc, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document/>")
        for i in range(3):
            zf.writestr(f"word/media/image{i}.png", png((60 * i, 90, 0)))
    base = ["classify", str(doc), "--model", str(tiny_model_dir), "--show-skipped"]
    whole = tmp_path / "whole.jsonl"
    assert runner.invoke(app, [*base, "--out", str(whole)]).exit_code == 0
    lines = whole.read_text().splitlines(keepends=True)
    assert len(lines) == 4 and json.loads(lines[0])["input"] == str(doc)  # the note, then three pictures
    for cut in range(1, len(lines) + 1):
        out = tmp_path / f"cut{cut}.jsonl"
        out.write_text("".join(lines[:cut]))
        assert runner.invoke(app, [*base, "--out", str(out), "--resume"]).exit_code in (0, 1)
        assert rows(out) == rows(whole), cut


def test_skip_is_asked_once_about_each_file_and_member(tmp_path):
    """A caller's `skip` may be a database lookup: a file or zip member is asked about once, not as it is found
    and again as a unit of work."""
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr("x.png", png())
        zf.writestr("y.png", png((0, 200, 0)))
    (tmp_path / "b.png").write_bytes(png())
    asked: list[str] = []
    tasks = list(input_tasks([tmp_path], skip=lambda origin: asked.append(Path(origin).name) or origin.endswith("y.png")))
    assert sorted(asked) == ["a.zip", "a.zip:x.png", "a.zip:y.png", "b.png"]
    assert sorted(Path(t.origin).name for t in tasks) == ["a.zip:x.png", "b.png"]


def test_a_folder_that_cannot_be_listed_is_one_unit_a_resumed_run_passes_over(tmp_path, monkeypatch):
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.png").write_bytes(png())
    locked = str(tmp_path / "locked")
    from medimg.sources import files

    real_walk = files.walk

    def walk(top, onerror):
        onerror(PermissionError(13, "Permission denied", locked))
        yield from real_walk(top, onerror)

    monkeypatch.setattr(files, "walk", walk)
    origins = [t.origin for t in input_tasks([str(tmp_path)])]
    assert origins == [locked, str(tmp_path / "ok" / "a.png")]
    assert [t.origin for t in input_tasks([str(tmp_path)], skip={locked}.__contains__)] == origins[1:]


# ---------------------------------------------------------------- the stream of records


def test_errors_come_out_at_once_not_after_a_batch_of_images(tiny_classifier, tmp_path):
    """A long run of inputs without images (missing files, 404s) is written as it goes: the first error is
    out while the caller's list of inputs is still being read, not held back until 32 images arrived."""
    read = []

    def inputs():
        for i in range(300):
            read.append(i)
            yield str(tmp_path / f"missing-{i}.png")

    stream = classify(inputs(), classifier=tiny_classifier, batch_size=32)
    first = next(stream)
    assert first.error and "missing-0.png" in first.input
    assert len(read) < 300
    stream.close()


def test_an_input_that_is_not_a_path_is_one_error_and_the_rest_go_on(tiny_classifier, tmp_path):
    for name, colour in (("a.png", (200, 0, 0)), ("b.png", (0, 200, 0))):
        (tmp_path / name).write_bytes(png(colour))
    recs = list(classify([str(tmp_path / "a.png"), float("nan"), None, str(tmp_path / "b.png")],
                         classifier=tiny_classifier))
    assert [r.label for r in recs] == ["xray", None, None, "photo"]
    assert "not a path, URL or Blob: nan (float)" in recs[1].error and "None" in recs[2].error
    with pytest.raises(TypeError, match="Blob"):
        list(classify(png(), classifier=tiny_classifier))
    with open(tmp_path / "a.png", "rb") as f, pytest.raises(TypeError):
        list(classify(f, classifier=tiny_classifier))


def test_bytes_in_the_list_of_inputs_are_one_short_error_naming_blob(tiny_classifier, tmp_path):
    """A file's bytes given as an input: the record says how big, and to wrap them as a Blob; it never prints
    them (a 60 KB PNG used to make a 177,000-character record)."""
    from medimg.sources import open_input

    data = png() * 50
    (rec,) = classify([data], classifier=tiny_classifier)
    assert rec.input == f"<{len(data):,} bytes>" and "Blob(origin=name, data=...)" in rec.error
    assert len(rec.error) < 200
    with pytest.raises(TypeError, match=r"wrap a file's bytes as Blob\(origin=name, data=\.\.\.\)") as raised:
        open_input(data)  # the one input given, not an item of a list: a bad argument
    assert len(str(raised.value)) < 300
    (rec,) = classify([b"/data/scan.png"], classifier=tiny_classifier)  # a path given as bytes: named as it is
    assert rec.input == "b'/data/scan.png'" and "give a path as str" in rec.error


def test_inputs_from_keeps_names_as_they_are(tmp_path, tiny_model_dir):
    (tmp_path / "spaced.png ").write_bytes(png())  # a trailing space is part of this name
    (tmp_path / "#hash.png").write_bytes(png())
    listing = tmp_path / "list.txt"
    listing.write_text(f"# a comment\r\n\r\n{tmp_path}/spaced.png \r\n{tmp_path}/#hash.png\n")
    res = runner.invoke(app, ["classify", "--inputs-from", str(listing), "--model", str(tiny_model_dir),
                              "--format", "jsonl"])
    got = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert [(Path(r["input"]).name, r["error"]) for r in got] == [("spaced.png ", None), ("#hash.png", None)]


def test_out_that_is_a_folder_is_refused_before_any_work(tmp_path, tiny_model_dir):
    (tmp_path / "a.png").write_bytes(png())
    res = runner.invoke(app, ["classify", str(tmp_path / "a.png"), "--model", str(tiny_model_dir), "--out",
                              str(tmp_path)])
    assert res.exit_code == 2 and "is a folder" in flat(res.output)


def test_scale_refuses_a_missing_list_or_a_file_as_out_folder_before_starting(tmp_path):
    pytest.importorskip("ray", reason="needs the scale extra (ray)")
    listing = tmp_path / "list.txt"
    listing.write_text("a.png\n")
    (tmp_path / "afile").write_text("x")
    res = runner.invoke(app, ["scale", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "no such file" in flat(res.output)
    res = runner.invoke(app, ["scale", str(listing), "--out", str(tmp_path / "afile")])
    assert res.exit_code == 2 and "is a file" in flat(res.output)
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "x_000000.json").write_text("{}\n")
    res = runner.invoke(app, ["scale", str(listing), "--out", str(earlier)])  # rows would pile onto the old ones
    assert res.exit_code == 2 and "--resume" in flat(res.output)


@pytest.mark.parametrize("sig,suffix,code", [(signal.SIGTERM, ".json", 143), (signal.SIGINT, ".jsonl", 130)])
def test_sigterm_ends_a_run_as_ctrl_c_does_with_valid_json(tmp_path, tiny_model_dir, sig, suffix, code):
    """Either stop closes the output and says what was done and how to carry on."""
    (tmp_path / "a.png").write_bytes(png())
    out = tmp_path / f"r{suffix}"
    with WebServer() as srv:
        srv.slow("/slow.png", png(), interval=0.5)
        proc = subprocess.Popen([sys.executable, "-m", "medimg.cli", "classify", str(tmp_path / "a.png"),
                                 srv.url("/slow.png"), "--model", str(tiny_model_dir), "--allow-private",
                                 "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not srv.hits["/slow.png"] and time.monotonic() < deadline:  # in the middle of the slow fetch
            time.sleep(0.1)
        proc.send_signal(sig)
        rc = proc.wait(timeout=20)
    said = flat(proc.stderr.read().decode())
    assert rc == code, said
    done = re.search(rf"stopped: (\d) images? classified, 0 errors in {re.escape(str(out))}", said)
    assert done, said
    if suffix == ".json":
        assert len(json.loads(out.read_text())) == int(done[1]) and "--resume" not in said
    else:
        assert len(rows(out)) == int(done[1]) and "--resume with the same --out carries it on" in said


def test_a_run_given_up_stops_its_downloads(tiny_classifier, tmp_path):
    """Closing the stream of records (a request that timed out, a caller that broke off) stops a download in
    progress at its next chunk, instead of letting it run to its own timeout."""
    from medimg.sources import Limits

    (tmp_path / "a.png").write_bytes(png())
    with WebServer() as srv:
        srv.slow("/slow.png", b"x" * 400, interval=0.05)  # 20 s if read to the end
        stream = classify([str(tmp_path / "a.png"), srv.url("/slow.png")], classifier=tiny_classifier,
                          limits=Limits(allow_private=True), batch_size=1)
        assert next(stream).label == "xray"
        deadline = time.monotonic() + 10
        while srv.sent["/slow.png"] < 5 and time.monotonic() < deadline:  # the download is under way
            time.sleep(0.05)
        stream.close()
        assert settled(lambda: srv.sent["/slow.png"], within=5) < 100  # stopped, long before the end


@pytest.mark.parametrize("command, module, extra", [
    (["scale", "LIST", "--out", "OUT"], "ray", "scale"),
    (["train", "--data", "DATA", "--out", "OUT", "--no-cv"], "torch", "train")])
def test_a_missing_extra_is_named_with_how_to_install_it(tmp_path, monkeypatch, command, module, extra):
    """Without ray or torch, `scale` and `train` say which extra to install (they used to end in a traceback)."""
    import sys

    (tmp_path / "list.txt").write_text("a.png\n")
    for label in ("xray", "photo"):
        (tmp_path / "data" / label / "s1").mkdir(parents=True)
    monkeypatch.setitem(sys.modules, module, None)  # import fails, as where the extra is not installed
    for name in [m for m in sys.modules if m.startswith(("medimg.training", "medimg.scale"))]:
        monkeypatch.delitem(sys.modules, name)
    args = [{"LIST": str(tmp_path / "list.txt"), "OUT": str(tmp_path / "out"), "DATA": str(tmp_path / "data")}
            .get(a, a) for a in command]
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert f"medimg[{extra}]" in flat(res.output)


def test_serve_refuses_a_root_path_that_is_not_a_path():
    from medimg.cli import _root_path

    assert _root_path("medimg/") == _root_path("/medimg") == "/medimg" and _root_path("/") == ""
    for bad in ("https://example.org/medimg", "/a/../b", "/a b", "/a?x=1"):
        with pytest.raises(typer.BadParameter):
            _root_path(bad)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_rows_with_every_field_name_their_model_and_resume_keeps_to_it(tmp_path, tiny_model_dir, suffix):
    """--full rows say which model release made them; carrying them on with another model is refused (its
    labels would sit beside the first model's), before anything in the file is cut."""
    import shutil

    other = tmp_path / "other-model"
    shutil.copytree(tiny_model_dir, other)
    meta = json.loads((other / "labels.json").read_text())
    (other / "labels.json").write_text(json.dumps({**meta, "version": "tiny-2"}))
    (tmp_path / "a.png").write_bytes(png())
    (tmp_path / "bad.png").write_bytes(b"not an image")
    out = tmp_path / f"r{suffix}"
    base = ["classify", str(tmp_path / "a.png"), str(tmp_path / "bad.png"), "--full", "--out", str(out)]
    assert runner.invoke(app, [*base, "--model", str(tiny_model_dir)]).exit_code == 0
    written = [json.loads(line) for line in out.read_text().splitlines()] if suffix == ".jsonl" else \
        list(__import__("csv").DictReader(io.StringIO(out.read_text())))
    assert [r["model"] or None for r in written] == ["tiny-test-model 0", None], written  # the error's row: no model
    whole = out.read_bytes()
    res = runner.invoke(app, [*base, "--model", str(other), "--resume"])
    said = flat(res.output)
    assert res.exit_code == 2 and "holds rows of model tiny-test-model 0, not tiny-test-model tiny-2" in said, said
    assert out.read_bytes() == whole
    assert runner.invoke(app, [*base, "--model", str(tiny_model_dir), "--resume"]).exit_code == 0


def _full_disk_after(n: int, original, code: int = errno.ENOSPC):
    """A stand-in for a writer's method that fails as a full disk (or another failing disk) does once it has
    been called `n` times."""
    calls = [0]

    def write(*args, **kwargs):
        calls[0] += 1
        if calls[0] > n:
            raise OSError(code, os.strerror(code))
        return original(*args, **kwargs)
    return write


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_full_disk_stops_classify_with_its_rows_whole_and_resume_finishes(tmp_path, tiny_model_dir, monkeypatch,
                                                                            suffix):
    """Out of space mid-run, classify said nothing useful (a traceback, exit 1, which means "nothing could be
    classified"): now it stops with its rows whole, says how to carry on, and exits 74. --resume then cuts in
    place (it copied the whole file first, so a nearly full disk could not be resumed, and the file became 0600)."""
    from medimg.output import RecordWriter

    files = []
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(png((60 * i, 20, 20)))
        files.append(str(tmp_path / f"{i}.png"))
    out = tmp_path / f"r{suffix}"
    base = ["classify", *files, "--model", str(tiny_model_dir), "--out", str(out)]
    with monkeypatch.context() as m:
        m.setattr(RecordWriter, "write", _full_disk_after(1, RecordWriter.write))
        res = runner.invoke(app, base)
    assert res.exit_code == 74, res.output
    said = flat(res.output)
    assert "stopped: no room to write: 1 image classified" in said and "--resume" in said
    assert "No space left on device" in said and "Traceback" not in said
    out.chmod(0o664)
    again = runner.invoke(app, [*base, "--resume"])
    assert again.exit_code == 0, again.output
    assert out.stat().st_mode & 0o777 == 0o664
    written = [json.loads(line)["input"] for line in out.read_text().splitlines()] if suffix == ".jsonl" else \
        [r["input"] for r in __import__("csv").DictReader(io.StringIO(out.read_text()))]
    assert written == files


def test_an_output_that_fails_to_write_stops_classify_in_words(tmp_path, tiny_model_dir):
    """An output whose writes fail (here /proc/version: it opens, and every write is an I/O error; a failing
    disk or a stale share does the same) ended in a traceback; an output that cannot be opened is a usage
    error."""
    if not os.path.exists("/proc/version"):
        pytest.skip("no /proc/version to fail writes on")
    (tmp_path / "a.png").write_bytes(png((200, 20, 20)))
    res = runner.invoke(app, ["classify", str(tmp_path / "a.png"), "--model", str(tiny_model_dir), "--format",
                              "jsonl", "--out", "/proc/version"])
    said = flat(res.output)
    assert res.exit_code == 74 and "stopped: could not write" in said and "check the disk or share" in said, said
    assert "Traceback" not in said
    if os.path.exists("/dev/full"):  # the table, written at the end, to a device that is always full
        res = runner.invoke(app, ["classify", str(tmp_path / "a.png"), "--model", str(tiny_model_dir), "--out",
                                  "/dev/full"])
        assert res.exit_code == 74 and "stopped: no room to write" in flat(res.output), flat(res.output)
    res = runner.invoke(app, ["classify", str(tmp_path / "a.png"), "--model", str(tiny_model_dir), "--out",
                              "/proc/medimg.jsonl"])  # a folder that takes no new file, even from root
    assert res.exit_code == 2 and "/proc/medimg.jsonl cannot be written: No such file" in flat(res.output)


@pytest.mark.parametrize("code, said", [(errno.ENOSPC, "stopped: no room to write"),
                                        (errno.EIO, "stopped: could not write")])
def test_a_full_disk_stops_extract_and_resume_writes_the_png_it_could_not(tmp_path, monkeypatch, code, said):
    """A PNG that could not be written for want of space (or on a failing disk) was an image row ("could not
    write PNG"), counted as done: the run went on failing, exited 0, and --resume never wrote it. Now the run
    stops there (exit 74) and --resume writes it."""
    from PIL import Image as PILImage

    files = []
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(png((60 * i, 20, 20)))
        files.append(str(tmp_path / f"{i}.png"))
    out = tmp_path / "pngs"
    base = ["extract", *files, "--out", str(out), "--workers", "1"]
    with monkeypatch.context() as m:
        m.setattr(PILImage.Image, "save", _full_disk_after(1, PILImage.Image.save, code))
        res = runner.invoke(app, base)
    assert res.exit_code == 74, res.output
    assert said in flat(res.output) and "--resume" in flat(res.output)
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r.get("file") for r in rows] == ["000001.png"] and "error" not in rows[0]
    assert sorted(p.name for p in out.iterdir()) == ["000001.png", "manifest.jsonl"]
    again = runner.invoke(app, [*base, "--resume"])
    assert again.exit_code == 0, again.output
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [(r["input"], r.get("file")) for r in rows] == [(f, f"{i + 1:06d}.png") for i, f in enumerate(files)]
    assert all((out / r["file"]).is_file() for r in rows)


@pytest.mark.parametrize("code", [errno.EDQUOT, errno.EFBIG])
def test_a_full_quota_or_a_file_too_large_stops_classify_as_a_full_disk_does(tmp_path, tiny_model_dir, monkeypatch,
                                                                             code):
    """A disk quota exceeded (EDQUOT) or a file past the file-size limit (EFBIG) is no room to write, as
    ENOSPC is: exit 74, rows whole, "free some space", no traceback."""
    from medimg.output import RecordWriter

    files = []
    for i in range(2):
        (tmp_path / f"{i}.png").write_bytes(png((60 * i, 20, 20)))
        files.append(str(tmp_path / f"{i}.png"))
    out = tmp_path / "r.jsonl"
    with monkeypatch.context() as m:
        m.setattr(RecordWriter, "write", _full_disk_after(1, RecordWriter.write, code))
        res = runner.invoke(app, ["classify", *files, "--model", str(tiny_model_dir), "--out", str(out)])
    said = flat(res.output)
    assert res.exit_code == 74, res.output
    assert "stopped: no room to write: 1 image classified" in said and "free some space" in said
    assert len(out.read_text().splitlines()) == 1


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full to write on")
@pytest.mark.parametrize("fmt", ["jsonl", "table"])
def test_a_standard_output_with_no_room_stops_classify_in_words(tmp_path, tiny_model_dir, fmt):
    """`classify … > /dev/full`: one line on stderr and exit 74, as with --out on a full disk (a traceback and
    exit 1 before), records and the table alike."""
    (tmp_path / "a.png").write_bytes(png((200, 20, 20)))
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "medimg", "classify", str(tmp_path / "a.png"), "--model",
                               str(tiny_model_dir), "--format", fmt], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=300)
    said = flat(done.stderr)
    assert done.returncode == 74 and "stopped: no room to write" in said and "free some space" in said, said
    assert "Traceback" not in said and "Exception ignored" not in said


def test_a_reader_that_closes_the_pipe_ends_classify_quietly(tmp_path, tiny_model_dir):
    """`classify … | head -1`: the run ends when the reader has gone, exit 141 as for SIGPIPE, with no traceback."""
    for i in range(40):
        (tmp_path / f"{i:02d}.png").write_bytes(png((200, i * 5, 20)))
    proc = subprocess.Popen([sys.executable, "-m", "medimg", "classify", str(tmp_path), "--model",
                             str(tiny_model_dir), "--format", "jsonl", "--batch-size", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()  # as head does once it has its line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141, err
    assert json.loads(first)["input"].endswith("00.png")
    assert "Traceback" not in err and "Exception ignored" not in err and "Broken pipe" not in err, err


def test_resume_refuses_a_jsonl_of_inputs_that_are_not_records_and_leaves_it_whole(tmp_path, tiny_model_dir):
    """A JSONL whose lines name an "input" but are not medimg records (a list of inputs, say) is refused, not cut."""
    (tmp_path / "a.png").write_bytes(png())
    listing = tmp_path / "todo.jsonl"
    listing.write_text("".join(json.dumps({"input": f"scan{i}.png", "priority": i}) + "\n" for i in range(20)))
    before = listing.read_bytes()
    res = runner.invoke(app, ["classify", str(tmp_path / "a.png"), "--model", str(tiny_model_dir), "--resume",
                              "--out", str(listing)])
    assert res.exit_code == 2 and "not a medimg JSONL record" in flat(res.output), res.output
    assert listing.read_bytes() == before


def test_resume_cuts_a_csv_row_that_spans_lines_whole(tmp_path, tiny_model_dir):
    """A CSV row may span lines (a file name holding a newline): resuming cuts the last input's rows at a row's end,
    so the resumed file is the uninterrupted one."""
    (tmp_path / "two\nlines.png").write_bytes(png((200, 0, 0)))
    (tmp_path / "last.png").write_bytes(png((0, 0, 200)))
    out = tmp_path / "r.csv"
    base = ["classify", str(tmp_path / "two\nlines.png"), str(tmp_path / "last.png"), "--model", str(tiny_model_dir),
            "--format", "csv", "--out", str(out)]
    assert runner.invoke(app, base).exit_code == 0
    whole = out.read_bytes()
    assert whole.count(b"\n") == 4  # the header, a row on two lines, a row
    res = runner.invoke(app, [*base, "--resume"])  # the last input is cut and written again
    assert res.exit_code == 0, res.output
    assert out.read_bytes() == whole


def test_resume_at_threshold_one_half_is_allowed_when_the_rows_were_written_at_it(tmp_path, tiny_model_dir):
    """At threshold 0.5 every verdict is medical or non-medical; resuming a file written at 0.5 at 0.5 again works."""
    files = []
    for i, colour in enumerate([(140, 120, 120), (120, 140, 120)]):  # p_medical 0.920 and 0.040 (tiny model)
        (tmp_path / f"{i}.png").write_bytes(png(colour))
        files.append(str(tmp_path / f"{i}.png"))
    out = tmp_path / "r.jsonl"
    base = ["classify", *files, "--model", str(tiny_model_dir), "--out", str(out), "--threshold", "0.5"]
    assert runner.invoke(app, base).exit_code == 0
    whole = out.read_bytes()
    res = runner.invoke(app, [*base, "--resume"])
    assert res.exit_code == 0, res.output
    assert out.read_bytes() == whole


def test_resume_into_an_empty_csv_file_is_a_fresh_start(tmp_path, tiny_model_dir):
    """An empty output file (made by touch, or a run stopped before its header) is a fresh start with --resume."""
    (tmp_path / "a.png").write_bytes(png())
    out = tmp_path / "r.csv"
    out.write_bytes(b"")
    res = runner.invoke(app, ["classify", str(tmp_path / "a.png"), "--model", str(tiny_model_dir), "--format", "csv",
                              "--out", str(out), "--resume"])
    assert res.exit_code == 0, res.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("input,locator") and len(lines) == 2 and str(tmp_path / "a.png") in lines[1]


def test_a_reader_that_is_gone_before_the_table_ends_classify_as_for_records(tmp_path, tiny_model_dir):
    """The table is printed at the end: a reader gone by then (`| head -0`, a closed pipe) is exit 141 too, not
    rich's own exit 1."""
    (tmp_path / "a.png").write_bytes(png((200, 20, 20)))
    proc = subprocess.Popen([sys.executable, "-m", "medimg", "classify", str(tmp_path / "a.png"), "--model",
                             str(tiny_model_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141, err
    assert "Traceback" not in err and "Exception ignored" not in err and "Broken pipe" not in err, err


def test_a_reader_that_goes_part_way_through_a_long_table_ends_classify_with_141(tmp_path, tiny_model_dir):
    """`classify folder | head -1` with a table longer than the pipe holds: the reader goes in the middle of the
    one write that prints it, which Python's buffer reported whole (exit 0, the rest lost without a word)."""
    one = png((200, 20, 20))
    for i in range(700):
        (tmp_path / f"scan_with_a_long_name_{i:04d}.png").write_bytes(one)
    proc = subprocess.Popen([sys.executable, "-m", "medimg", "classify", str(tmp_path), "--model",
                             str(tiny_model_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141, err
    assert first.strip() and "Traceback" not in err and "Broken pipe" not in err, err


def _png(colour) -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("RGB", (80, 80), colour).save(buf, "PNG")
    return buf.getvalue()


def test_a_rendered_run_resumed_keeps_the_fragments_of_its_pages_apart(tmp_path, tiny_model_dir, monkeypatch):
    """with --render, app#/a and app#/b are two pages (a single-page app's views); resuming after #/a was
    done must still read #/b, not take it for #/a. (No browser: it is stood in for, as loading one image. The
    last input of a file is read again on --resume, so #/c comes after #/a.)"""
    monkeypatch.setattr(browser, "available", lambda: None)
    with WebServer() as srv:
        srv.add("/a.png", _png((200, 30, 30)), "image/png")
        srv.add("/app.html", '<html><body><img src="a.png"></body></html>')
        shown = [web.Candidate(srv.url("/a.png"), "img", data=_png((200, 30, 30)), content_type="image/png")]
        monkeypatch.setattr(browser, "collect", lambda *args, **kwargs: list(shown))
        a, b, c = (srv.url(f"/app.html#/{view}") for view in "abc")
        out = tmp_path / "out.jsonl"
        base = ["classify", "--model", str(tiny_model_dir), "--allow-private", "--render", "--format", "jsonl",
                "--out", str(out)]
        res = runner.invoke(app, [*base, a, c])
        assert res.exit_code == 0, res.output
        res = runner.invoke(app, [*base, a, c, b, "--resume"])
        assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["input"] for r in rows] == [a, c, b], rows
