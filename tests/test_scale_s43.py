"""`medimg scale` run for days (helper s43_scale): a second run into a --out folder a job is writing was let in. Before
any output file, a second run (no --resume) deleted the first one's list file, whose actors then failed (exit 1, a
traceback); with --resume it read, and deleted as cut off, the files the first was writing. The driver now holds a
lock on the folder for the job, as extract does, and a second run is a usage error that touches nothing."""

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from PIL import Image

pytest.importorskip("ray", reason="the scale extra (ray[data]) is not installed")
pytest.importorskip("fcntl", reason="folders are locked with flock, which Windows lacks")

from typer.testing import CliRunner  # noqa: E402

from medimg.cli import app  # noqa: E402
from medimg.output import FolderLock  # noqa: E402
from medimg.scale import ray_job  # noqa: E402
from words import flat  # noqa: E402

HELD = "is being written by another medimg run"


def test_the_job_refuses_a_folder_another_scale_holds(tmp_path, tiny_model_dir):
    """ray_job.run (the Python API too): it neither deletes the other run's list file nor reads its rows."""
    out = tmp_path / "out"
    out.mkdir()
    theirs = out / ".medimg-inputs-other.list"  # the list file of the run that holds the folder
    theirs.write_text('"/data/a.png"\n')
    held = FolderLock(out, "scale")
    try:
        with pytest.raises(ValueError, match=HELD):
            ray_job.run([], out, model_dir=str(tiny_model_dir))  # was: its list file deleted, 0 rows, no error
        assert theirs.read_text() == '"/data/a.png"\n'
    finally:
        held.release()
    assert ray_job.run([], out, model_dir=str(tiny_model_dir)) == 0  # the folder is free once the other run ends


class Gate(http.server.BaseHTTPRequestHandler):
    """Serves one PNG once the test opens the gate (at most 15 s): the job is still running until then."""

    opened = threading.Event()
    png = b""

    def do_GET(self):
        self.opened.wait(15)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.png)))
        self.end_headers()
        self.wfile.write(self.png)

    def log_message(self, *args):
        pass


def test_a_second_scale_into_a_folder_being_written_is_refused(tmp_path, tiny_model_dir):
    """A job runs (a subprocess, its last input held back by a 127.0.0.1 server); a second `scale` into its --out,
    without --resume while the first has only its list file there and with --resume once it has written a file,
    is exit 2 and changes nothing; the first ends with every input's rows once."""
    images = tmp_path / "in"
    images.mkdir()
    entries = []
    for i in range(23):  # a batch of 16 files (a file of rows soon), then 7 and the held-back URL
        Image.new("RGB", (48, 40), (10 * i, 40, 0)).save(images / f"img{i}.png")
        entries.append(str(images / f"img{i}.png"))
    Gate.png = (images / "img0.png").read_bytes()
    Gate.opened.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gate)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    entries.append(f"http://127.0.0.1:{server.server_address[1]}/last.png")
    (tmp_path / "list.txt").write_text("".join(e + "\n" for e in entries))
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), GRADIO_ANALYTICS_ENABLED="False", COLUMNS="300")
    first = subprocess.Popen([sys.executable, "-m", "medimg", "scale", str(tmp_path / "list.txt"), "--out", str(out),
                              "--model", str(tiny_model_dir), "--allow-private", "--concurrency", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    second = ["scale", str(tmp_path / "list.txt"), "--out", str(out), "--model", str(tiny_model_dir),
              "--allow-private"]
    try:
        def wait_for(pattern: str) -> list:
            deadline = time.monotonic() + 240
            while not (found := sorted(out.glob(pattern))) and first.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert found, f"no {pattern} in {out}: {first.poll()}"
            return found

        spill = wait_for(".medimg-inputs-*.list")
        res = CliRunner().invoke(app, second)
        assert res.exit_code == 2, res.output  # was 0: it deleted the first's list file and ran the job itself
        assert HELD in flat(res.output)
        assert all(p.exists() for p in spill)
        rows = wait_for("*.json")
        before = {p: p.read_bytes() for p in rows}
        res = CliRunner().invoke(app, second + ["--resume"])
        assert res.exit_code == 2, res.output  # was 0, reading (and deleting as cut off) the files being written
        assert HELD in flat(res.output)
        assert all(p.read_bytes() == b for p, b in before.items())
    finally:
        Gate.opened.set()
        try:
            _, stderr = first.communicate(timeout=300)
        finally:
            server.shutdown()
    assert first.returncode == 0, stderr[-3000:]
    assert "24 rows from 24 inputs: 24 images classified, 0 errors" in flat(stderr)  # the summary, on stderr
    sources = Counter(json.loads(line)["source"] for p in out.glob("*.json") for line in p.read_text().splitlines())
    assert sources == Counter(entries)  # every input once
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # its list file removed at its end
