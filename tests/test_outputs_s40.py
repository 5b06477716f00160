"""Where classify's records go when that is not a plain file or the terminal, and how a run ends (session 40's
output review): an --out that is a pipe whose reader goes away (`-o /dev/stdout | head -1`, a named pipe) ends the
run as a closed standard output does, exit 141 and no traceback (it was exit 1, silently); a standard output the
shell closed (`>&-`) is refused before the run (it was a traceback); SIGHUP (a dropped ssh session) closes the
output as SIGTERM does (it killed the run: JSON without its `]`, Parquet without its footer, unreadable)."""

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from webserver import WebServer

# enough records that the writer is still writing once the reader has its line and has gone: more than a pipe's
# buffer (64 KB) and the file's (8 KB)
N_FILES = 300


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    folder = tmp_path_factory.mktemp("many")
    for i in range(N_FILES):
        Image.new("RGB", (24, 24), (200, i % 250, 20)).save(folder / f"{i:04d}-{'x' * 150}.png")
    return folder


def _medimg(*args):
    return [sys.executable, "-m", "medimg", *args]


def _quiet(err: str) -> None:
    assert "Traceback" not in err and "Exception ignored" not in err and "Broken pipe" not in err, err


@pytest.mark.skipif(not os.path.exists("/dev/stdout"), reason="no /dev/stdout here")
@pytest.mark.parametrize("fmt", ["jsonl", "table"])
def test_out_dev_stdout_whose_reader_goes_is_exit_141(many, tiny_model_dir, fmt):
    """`classify … -o /dev/stdout | head -1` (or /dev/stderr, a shell's >(…)): the reader gone ended the run with
    exit 1 and no word (click's handler for the BrokenPipeError; rich's for the table), not the documented 141."""
    proc = subprocess.Popen(_medimg("classify", str(many), "--model", str(tiny_model_dir), "-o", "/dev/stdout",
                                    "-f", fmt), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()  # as head does once it has its line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141, err
    if fmt == "jsonl":
        assert json.loads(first)["input"].endswith(f"0000-{'x' * 150}.png")
    else:
        assert first.strip()  # the table's top border
    _quiet(err)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_out_a_named_pipe_whose_reader_goes_is_exit_141(many, tiny_model_dir, tmp_path):
    """`mkfifo r.jsonl; medimg classify … -o r.jsonl & head -1 r.jsonl`: as a closed standard output, exit 141."""
    fifo = tmp_path / "r.jsonl"
    os.mkfifo(fifo)
    proc = subprocess.Popen(_medimg("classify", str(many), "--model", str(tiny_model_dir), "-o", str(fifo)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        head = subprocess.run(["head", "-n", "1", str(fifo)], capture_output=True, timeout=120)
    finally:
        err = proc.communicate(timeout=300)[1].decode()
    assert proc.returncode == 141, err
    assert json.loads(head.stdout)["input"].endswith(f"0000-{'x' * 150}.png")
    _quiet(err)


@pytest.mark.parametrize("args", [["-f", "jsonl"], [], ["-o", "-", "-f", "csv"]])
def test_a_closed_standard_output_is_refused_before_the_run(tmp_path, tiny_model_dir, args):
    """`medimg classify scans/ -f jsonl >&-` (a cron line, a daemon): Python has no sys.stdout, and the run
    crashed with AttributeError's traceback (exit 1) once it wrote; now a usage error that says to give --out."""
    Image.new("RGB", (24, 24), (200, 10, 20)).save(tmp_path / "a.png")
    done = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh",
                           *_medimg("classify", str(tmp_path / "a.png"), "--model", str(tiny_model_dir), *args)],
                          capture_output=True, text=True, timeout=300)
    said = " ".join(done.stderr.split())
    assert done.returncode == 2, said
    assert "standard output is closed" in said and "--out" in said, said
    assert "Traceback" not in said


def test_a_closed_standard_output_does_not_stop_a_run_with_out(tmp_path, tiny_model_dir):
    """With --out, the standard output is not used: the run goes on as ever."""
    Image.new("RGB", (24, 24), (200, 10, 20)).save(tmp_path / "a.png")
    out = tmp_path / "r.csv"
    done = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh",
                           *_medimg("classify", str(tmp_path / "a.png"), "--model", str(tiny_model_dir), "-o",
                                    str(out))], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8").count("a.png") == 1


def test_evaluate_with_a_closed_standard_output_is_refused_before_scoring(tmp_path, tiny_model_dir):
    """evaluate prints its report on the standard output: closed, it scored the whole folder, then crashed."""
    (tmp_path / "ct" / "s1").mkdir(parents=True)
    Image.new("RGB", (24, 24), (200, 10, 20)).save(tmp_path / "ct" / "s1" / "a.png")
    done = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh",
                           *_medimg("evaluate", str(tmp_path), "--model", str(tiny_model_dir))],
                          capture_output=True, text=True, timeout=300)
    said = " ".join(done.stderr.split())
    assert done.returncode == 2 and "standard output is closed" in said, said
    assert "Traceback" not in said


def _png(colour=(200, 0, 0)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(buf, "PNG")
    return buf.getvalue()


def _rows(out):
    if out.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(out).to_pylist()
    return json.loads(out.read_text(encoding="utf-8"))


def _stopped_in_a_slow_fetch(tmp_path, tiny_model_dir, out, interval, sig, preexec=None):
    """classify a.png and a slow URL to `out`, `sig` sent while the URL trickles in; (exit code, stderr)."""
    (tmp_path / "a.png").write_bytes(_png())
    with WebServer() as srv:
        srv.slow("/slow.png", _png((0, 0, 200)), interval=interval)
        proc = subprocess.Popen(_medimg("classify", str(tmp_path / "a.png"), srv.url("/slow.png"), "--model",
                                        str(tiny_model_dir), "--allow-private", "--batch-size", "1", "--out",
                                        str(out)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                preexec_fn=preexec)
        deadline = time.monotonic() + 60
        while not srv.sent["/slow.png"] and time.monotonic() < deadline:  # in the middle of the slow fetch
            time.sleep(0.05)
        time.sleep(1)  # a.png's row is written (or waits in the Parquet row group) by now
        proc.send_signal(sig)
        err = proc.communicate(timeout=120)[1].decode()
    return proc.returncode, " ".join(err.split())


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP here")
@pytest.mark.parametrize("suffix", [".json", ".parquet"])
def test_a_hang_up_closes_the_output_as_sigterm_does(tmp_path, tiny_model_dir, suffix):
    """`ssh host medimg classify … -o r.parquet` and the connection drops: SIGHUP killed the run, leaving JSON
    without its `]` and a Parquet file without its footer (no row of it readable, and --resume refuses it). Now
    it ends as SIGTERM does: exit 129, the file whole with the rows so far, and --resume's hint."""
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / f"r{suffix}"
    rc, said = _stopped_in_a_slow_fetch(tmp_path, tiny_model_dir, out, 0.5, signal.SIGHUP)
    assert rc == 129, said
    assert "stopped: 1 image classified, 0 errors in" in said, said
    assert [r["input"] for r in _rows(out)] == [str(tmp_path / "a.png")]


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP here")
def test_a_hang_up_ends_extract_with_its_manifest_whole(tmp_path, tiny_model_dir):
    """extract too: exit 129, the PNGs and manifest rows so far kept, and --resume's hint."""
    (tmp_path / "a.png").write_bytes(_png())
    out = tmp_path / "pngs"
    with WebServer() as srv:
        srv.slow("/slow.png", _png((0, 0, 200)), interval=0.5)
        proc = subprocess.Popen(_medimg("extract", str(tmp_path / "a.png"), srv.url("/slow.png"), "--allow-private",
                                        "--out", str(out)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not srv.sent["/slow.png"] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1)
        proc.send_signal(signal.SIGHUP)
        said = " ".join(proc.communicate(timeout=120)[1].decode().split())
    assert proc.returncode == 129, said
    assert "extract --resume" in said, said
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["input"] for r in rows] == [str(tmp_path / "a.png")] and (out / "000001.png").exists()


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP here")
def test_a_run_under_nohup_goes_on_after_a_hang_up(tmp_path, tiny_model_dir):
    """`nohup medimg classify … &` ignores SIGHUP so that the run outlives the session: it still does."""
    out = tmp_path / "r.json"
    rc, said = _stopped_in_a_slow_fetch(tmp_path, tiny_model_dir, out, 0.02, signal.SIGHUP,
                                        preexec=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    assert rc == 0, said
    assert len(_rows(out)) == 2 and "2 images classified" in said, said


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".json", "stdout"])
def test_each_row_reaches_the_file_as_it_is_written(tmp_path, tiny_model_dir, suffix):
    """`tail -f r.jsonl`, `… -f jsonl | jq`: a row written waited in an 8 KB buffer (about 25 rows) until more
    came or the run ended, so a reader saw nothing for minutes on a slow list, and a run killed (the OOM killer,
    kill -9) lost those rows. Now each row is flushed as it is written."""
    (tmp_path / "a.png").write_bytes(_png())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as a plain shell runs it
    out = tmp_path / f"r{suffix}"
    where = ["-f", "jsonl"] if suffix == "stdout" else ["-o", str(out)]
    body = _png((0, 0, 200))
    with WebServer() as srv:
        srv.slow("/slow.png", body, interval=0.5)  # about a minute
        proc = subprocess.Popen(_medimg("classify", str(tmp_path / "a.png"), srv.url("/slow.png"), "--model",
                                        str(tiny_model_dir), "--allow-private", "--batch-size", "1", *where),
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        try:
            if suffix == "stdout":
                first = proc.stdout.readline().decode()  # blocks until the row is written, or the run ends
            else:
                deadline = time.monotonic() + 120
                while "a.png" not in (first := out.read_text(encoding="utf-8") if out.exists() else "") \
                        and time.monotonic() < deadline and proc.poll() is None:
                    time.sleep(0.1)
            sent = srv.sent["/slow.png"]
            assert "a.png" in first
            assert sent < len(body) - 10, f"a.png's row was seen only once the slow image was in ({sent} bytes)"
        finally:
            proc.kill()
            proc.wait(timeout=30)
