"""`medimg scale` when an input kills the worker process reading it (helper s39_scale): as an out-of-memory kill or
a crash in a native reader would. Ray restarts the actor and retries the block without end, so the job never
finished and none of the block's rows were written. Now the batch is read again one entry at a time, alone in
its process, and the entry under way at the second death is an error row."""

import http.server
import json
import os
import signal
import threading

import pytest
from PIL import Image

ray = pytest.importorskip("ray", reason="the scale extra (ray[data]) is not installed")
psutil = pytest.importorskip("psutil", reason="psutil finds the process that asks the server")

from medimg.scale import ray_job  # noqa: E402
from test_scale_s37 import ray_local  # noqa: E402,F401  (Ray for this module, as there)

KILLS = 4  # then the server answers 404: the old code's endless retries end, and the test fails instead of hanging


@pytest.fixture
def killer():
    """A 127.0.0.1 server that SIGKILLs the process asking for /kill (the first KILLS times)."""
    kills = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            port, me = self.client_address[1], self.server.server_address[1]
            if self.path == "/kill" and len(kills) < KILLS:
                for c in psutil.net_connections("tcp"):
                    if c.laddr and c.laddr.port == port and c.raddr and c.raddr.port == me and c.pid not in (
                            None, os.getpid()):
                        kills.append(c.pid)
                        os.kill(c.pid, signal.SIGKILL)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/kill", kills
    server.shutdown()


@pytest.mark.usefixtures("ray_local")
def test_an_input_that_kills_its_worker_is_an_error_row_and_the_job_ends(tmp_path, tiny_model_dir, killer):
    url, kills = killer
    (tmp_path / "in").mkdir()
    files = []
    for i in range(6):
        Image.new("RGB", (48, 40), (30 * i, 0, 0)).save(tmp_path / "in" / f"{i}.png")
        files.append(str(tmp_path / "in" / f"{i}.png"))
    inputs = files[:3] + [url] + files[3:]
    out, plan = tmp_path / "out", {}
    n = ray_job.run(inputs, out, model_dir=str(tiny_model_dir), concurrency=1, inputs_per_batch=4, plan=plan,
                    limits=ray_job.Limits(allow_private=True, total_timeout=10))
    rows = [json.loads(line) for p in sorted(out.glob("*.json")) for line in p.read_text().splitlines()]
    assert len(kills) == 2, kills  # read with its batch, then alone: not a third time
    assert n == len(rows) == 7 and sorted(r["source"] for r in rows) == sorted(inputs)
    died = next(r for r in rows if r["source"] == url)
    assert died["error"] == ray_job.DIED and died["input"] == url and died["skipped"] is False
    assert died["source_rows"] == 1 and died["probs"] is None
    assert all(r["error"] is None for r in rows if r["source"] != url)  # its batch's others: read one at a time
    assert (plan["images"], plan["errors"]) == (6, 1)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # the marks go with the entries' file
