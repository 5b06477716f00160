"""classify's --out as a data team uses it (session 43's output review): a second classify writing the same
--out while the first still runs (a --resume started too soon, the first under nohup) is refused before it cuts
or appends to the file; the two had interleaved, duplicated and lost rows."""

import csv
import io
import json
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image
from typer.testing import CliRunner

from medimg.cli import app
from webserver import WebServer


def _medimg(*args):
    return [sys.executable, "-m", "medimg", *args]


def _png(colour=(200, 0, 0)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(buf, "PNG")
    return buf.getvalue()


def _inputs(out):
    if out.suffix == ".parquet":
        import pyarrow.parquet as pq

        return [r["input"] for r in pq.read_table(out).to_pylist()]
    if out.suffix == ".csv":
        return [r["input"] for r in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"), newline=""))]
    return [json.loads(line)["input"] for line in out.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])  # CSV is written as JSONL is
def test_a_second_classify_into_the_same_out_is_refused_while_the_first_runs(tmp_path, tiny_model_dir, suffix):
    """`nohup medimg classify … -o r.jsonl &`, then `medimg classify … -o r.jsonl --resume` thinking it died: both
    wrote into the file (measured on 20,000 images: 21,005 rows, 2 broken lines, 1,090 images missing). Now the
    second, with --resume or without (which would replace the file), is a usage error and the file is untouched;
    once the first has stopped, --resume carries it on."""
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(_png((200, 10 * i, 0)))
    out = tmp_path / f"r{suffix}"
    common = ["--model", str(tiny_model_dir), "--allow-private", "--batch-size", "1", "--out", str(out)]
    with WebServer() as srv:
        srv.slow("/slow.png", _png((0, 0, 200)), interval=0.5)
        inputs = [str(tmp_path / "0.png"), str(tmp_path / "1.png"), srv.url("/slow.png"), str(tmp_path / "2.png")]
        first = subprocess.Popen(_medimg("classify", *inputs, *common), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while not srv.sent["/slow.png"] and time.monotonic() < deadline:  # in the middle of the slow fetch
                time.sleep(0.05)
            assert srv.sent["/slow.png"], "the first run never reached the slow image"
            time.sleep(1)
            before = out.read_bytes()
            for again in (["--resume"], []):
                second = subprocess.run(_medimg("classify", *inputs, *common, *again), capture_output=True,
                                        text=True, timeout=300)
                said = " ".join(second.stderr.split())
                assert second.returncode == 2, said
                assert "being written by another medimg classify" in said, said
                assert out.read_bytes() == before  # neither cut, appended to nor replaced
            assert first.poll() is None  # still going: the refusals were made while it ran
        finally:
            first.send_signal(signal.SIGTERM)
            err = first.communicate(timeout=120)[1].decode()
    assert first.returncode == 143, err
    assert _inputs(out) == inputs[:2]
    # the first has stopped: the lock went with it, and --resume carries the file on
    done = subprocess.run(_medimg("classify", *inputs[:2], inputs[3], *common, "--resume"), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _inputs(out) == [inputs[0], inputs[1], inputs[3]]


def test_runs_into_dev_null_are_not_locked_against_each_other(tmp_path, tiny_model_dir):
    """A path that is not a regular file (/dev/null, /dev/stdout, a pipe) is not locked: two runs may write there."""
    (tmp_path / "a.png").write_bytes(_png())
    with WebServer() as srv:
        srv.slow("/slow.png", _png((0, 0, 200)), interval=0.5)
        first = subprocess.Popen(_medimg("classify", str(tmp_path / "a.png"), srv.url("/slow.png"), "--model",
                                         str(tiny_model_dir), "--allow-private", "-f", "jsonl", "-o", "/dev/null"),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while not srv.sent["/slow.png"] and time.monotonic() < deadline:
                time.sleep(0.05)
            second = subprocess.run(_medimg("classify", str(tmp_path / "a.png"), "--model", str(tiny_model_dir),
                                            "-f", "jsonl", "-o", "/dev/null"), capture_output=True, text=True,
                                    timeout=300)
            assert second.returncode == 0, second.stderr
        finally:
            first.send_signal(signal.SIGTERM)
            first.communicate(timeout=120)


def test_the_lock_ends_with_an_in_process_run(tmp_path, tiny_model_dir):
    """classify called in-process (CliRunner, a notebook) releases its lock when it returns, or fails: the next
    call into the same --out is not refused as if another run held it."""
    (tmp_path / "a.png").write_bytes(_png())
    (tmp_path / "b.png").write_bytes(_png((0, 200, 0)))
    out = tmp_path / "r.jsonl"
    runner = CliRunner()
    base = ["classify", "--model", str(tiny_model_dir), "--out", str(out)]
    assert runner.invoke(app, [*base, str(tmp_path / "a.png")]).exit_code == 0
    refused = runner.invoke(app, [*base, str(tmp_path / "b.png"), "--resume", "--full"])
    assert refused.exit_code == 2  # a usage error after the lock was taken
    res = runner.invoke(app, [*base, str(tmp_path / "b.png"), "--resume"])
    assert res.exit_code == 0, res.output
    assert _inputs(out) == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
