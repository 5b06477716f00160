"""Session 40's change read line by line (round 2): a real hang-up of the terminal ends classify and extract with
exit 129 (the progress bar's last write to the gone terminal failed with EIO, taken for a failed disk: exit 1 and
a traceback), and an empty run with --show-skipped no longer says 'and 2 more' of notes it never named."""

import io
import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from webserver import WebServer

try:
    import fcntl
    import pty
    import termios
except ImportError:  # not on Windows: the hang-up tests skip, the rest run
    fcntl = pty = termios = None
NO_TERMINALS = termios is None or not hasattr(termios, "TIOCSCTTY") or not hasattr(signal, "SIGHUP")


def _png(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(buf, "PNG")
    return buf.getvalue()


def _hung_up(args: list[str], started) -> int:
    """Run `medimg *args` on a terminal of its own (a pty it controls, its progress bar drawn there), and hang that
    terminal up once `started()` (the slow URL trickling in), as a dropped ssh session does: its exit code."""
    master, slave = pty.openpty()

    def own_terminal():
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([sys.executable, "-m", "medimg", *args], stdin=slave, stdout=slave, stderr=slave,
                            preexec_fn=own_terminal, close_fds=True)
    os.close(slave)
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end and proc.poll() is None and not started():  # what it draws is read
            if select.select([master], [], [], 0.05)[0]:
                os.read(master, 65536)
        time.sleep(1.5)  # the first input is written by now
        while select.select([master], [], [], 0)[0]:
            os.read(master, 65536)
    finally:
        os.close(master)  # the terminal hangs up: SIGHUP, then every write to it fails with EIO
    return proc.wait(timeout=120)


@pytest.fixture
def slow_url(tmp_path):
    """(a slow URL, whether its image has begun to be sent); tmp_path/a.png beside it."""
    (tmp_path / "a.png").write_bytes(_png((200, 0, 0)))
    with WebServer() as srv:
        srv.slow("/slow.png", _png((0, 0, 200)), interval=0.5)
        yield srv.url("/slow.png"), lambda: bool(srv.sent["/slow.png"])


@pytest.mark.skipif(NO_TERMINALS, reason="no pty terminals or SIGHUP here")
def test_a_terminal_hang_up_ends_classify_with_129_and_its_output_whole(tmp_path, tiny_model_dir, slow_url):
    out = tmp_path / "r.json"
    url, started = slow_url
    rc = _hung_up(["classify", str(tmp_path / "a.png"), url, "--allow-private", "--model", str(tiny_model_dir),
                   "--batch-size", "1", "--out", str(out)], started)
    assert rc == 129
    assert [r["input"] for r in json.loads(out.read_text())] == [str(tmp_path / "a.png")]


@pytest.mark.skipif(NO_TERMINALS, reason="no pty terminals or SIGHUP here")
def test_a_terminal_hang_up_ends_extract_with_129_and_its_manifest_whole(tmp_path, slow_url):
    out = tmp_path / "pngs"
    url, started = slow_url
    rc = _hung_up(["extract", str(tmp_path / "a.png"), url, "--allow-private", "--out", str(out)], started)
    assert rc == 129
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["input"] for r in rows] == [str(tmp_path / "a.png")] and (out / "000001.png").exists()


def test_an_empty_run_with_show_skipped_names_no_notes_it_did_not_list(tmp_path, tiny_model_dir):
    """Seven text files, --show-skipped: the notes are in the output; stderr said only '  and 2 more
    (--show-skipped lists them)', with --show-skipped given and no note before it."""
    for i in range(7):
        (tmp_path / f"t{i}.txt").write_text(f"hello {i}")
    done = subprocess.run([sys.executable, "-m", "medimg", "classify", str(tmp_path), "--show-skipped", "--model",
                           str(tiny_model_dir), "-o", str(tmp_path / "r.jsonl")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1
    assert "more" not in done.stderr, done.stderr
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 7
