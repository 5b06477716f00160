"""A time limit on each input (Limits.input_timeout): an input whose reading goes on past it is given up on with an
error naming the limit, and the inputs after it are read as usual (a reader that hangs no longer holds a run, a
Ray block or a server request for good). Real downloads from a server on 127.0.0.1 that sends a byte at a time."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from medimg import classify
from medimg.sources import Limits
from webserver import WebServer


def _png(colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (96, 80), colour).save(buf, "PNG")
    return buf.getvalue()


def _limits(**kw) -> Limits:  # downloads themselves would take 200 s: only input_timeout ends the slow one
    return Limits(allow_private=True, total_timeout=300, read_timeout=300, **kw)


def test_an_input_past_its_time_is_an_error_and_the_rest_are_read(tiny_classifier, tmp_path):
    before = tmp_path / "before.png"
    before.write_bytes(_png((10, 200, 10)))
    with WebServer() as web:
        slow = web.slow("/slow.png", b"x" * 2000, interval=0.1)
        fine = web.add("/fine.png", _png(), "image/png")
        t0 = time.monotonic()
        recs = list(classify([str(before), slow, fine], classifier=tiny_classifier,
                             limits=_limits(input_timeout=2.0)))
        took = time.monotonic() - t0
    assert [r.input for r in recs] == [str(before), slow, fine], recs
    by = {r.input: r for r in recs}
    assert by[str(before)].ok and by[fine].ok, recs
    err = by[slow].error
    assert err and "input_timeout of 2 s" in err and "stopped there" in err, recs
    assert took < 15, took  # not the 200 s the download would take


def test_no_limit_waits_for_the_reader(tiny_classifier):
    """None (or 0) means no limit: a slow download ends at its own (download) timeout, not input_timeout's."""
    with WebServer() as web:
        slow = web.slow("/slow.png", b"x" * 30, interval=0.05)
        for no_limit in (None, 0):
            (rec,) = classify([slow], classifier=tiny_classifier, limits=_limits(input_timeout=no_limit))
            assert "input_timeout" not in (rec.error or ""), rec  # read to its end (not a PNG: its own error)


def test_a_timed_out_input_does_not_stall_the_ones_after_it(tiny_classifier):
    """More slow inputs than reading threads: each is given up on in turn and the last, quick one still comes."""
    with WebServer() as web:
        slows = [web.slow(f"/slow{i}.png", b"x" * 2000, interval=0.1) for i in range(3)]
        fine = web.add("/fine.png", _png(), "image/png")
        recs = list(classify(slows + [fine], classifier=tiny_classifier, workers=1,
                             limits=_limits(input_timeout=1.0)))
    assert [r.input for r in recs] == slows + [fine]
    assert all("input_timeout of 1 s" in r.error for r in recs[:3]), recs
    assert recs[3].ok, recs[3]


@pytest.mark.parametrize("bad,kind", [(-1, ValueError), (float("nan"), ValueError), ("10", TypeError)])
def test_the_limit_is_checked_when_made(bad, kind):
    with pytest.raises(kind, match="input_timeout"):
        Limits(input_timeout=bad)


def test_the_command_line_sets_it_and_names_the_option(tiny_model_dir):
    import json

    from typer.testing import CliRunner

    from medimg.cli import app

    with WebServer() as web:
        slow = web.slow("/slow.png", b"x" * 2000, interval=0.1)
        fine = web.add("/fine.png", _png(), "image/png")
        res = CliRunner().invoke(app, ["classify", slow, fine, "--allow-private", "--timeout", "300",
                                       "--input-timeout", "1", "--model", str(tiny_model_dir), "--format", "jsonl"])
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert [r["input"] for r in rows] == [slow, fine], res.output
    assert "input_timeout of 1 s" in rows[0]["error"] and rows[1]["verdict"], rows
    assert "--input-timeout" in res.output, res.output


def test_extract_gives_up_on_an_input_past_its_time(tmp_path):
    import json

    from typer.testing import CliRunner

    from medimg.cli import app

    out = tmp_path / "out"
    with WebServer() as web:
        slows = [web.slow(f"/slow{i}.png", b"x" * 2000, interval=0.1) for i in range(2)]
        fine = web.add("/fine.png", _png(), "image/png")
        t0 = time.monotonic()
        res = CliRunner().invoke(app, ["extract", *slows, fine, "--out", str(out), "--allow-private", "--timeout",
                                       "300", "--input-timeout", "1", "--workers", "1"])
        took = time.monotonic() - t0
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["input"] for r in rows] == slows + [fine], (rows, res.output)
    assert all("input_timeout of 1 s" in r["error"] for r in rows[:2]), rows
    assert rows[2].get("file") and (out / rows[2]["file"]).is_file(), rows
    assert not list(out.glob(".part-*")) and took < 20, (list(out.iterdir()), took)
