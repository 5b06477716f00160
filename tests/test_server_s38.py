"""`medimg serve` as deployed, in a process of its own: open files. Each uploaded file over 1 MB is spooled to a
temporary file of its own, so many-file uploads hold many open files at once; under the soft limit systemd and
most shells give (1024), seven requests of 180 such files used them all up."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from medimg.model.classifier import ASSETS
from test_api import free_port
from test_server_limits import wait_until_up

resource = pytest.importorskip("resource", reason="open-file limits are a Unix thing")

SPOOLED = b"\0" * (2**20 + 1)  # one byte past Starlette's 1 MB: this upload goes to a temporary file


@contextlib.contextmanager
def serve_limited(tmp_path: Path, soft: int, hard: int, *args: str):
    """`medimg serve` started with this open-file limit (as systemd's LimitNOFILE=soft:hard would), its stderr
    in `tmp_path/err.log`; yields (process, base URL)."""
    if not (ASSETS / "labels.json").exists():
        pytest.skip("no shipped model")
    if not Path("/proc/self/limits").exists():
        pytest.skip("reads the server's limit from /proc (Linux)")
    (tmp_path / "tmp").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("GRADIO_TEMP_DIR", "MPLCONFIGDIR")}
    env.update(TMPDIR=str(tmp_path / "tmp"), GRADIO_ANALYTICS_ENABLED="False")
    port = free_port()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    proc = subprocess.Popen([sys.executable, "-m", "medimg.cli", "serve", "--port", str(port), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=limit)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(proc, base)
        yield proc, base
    finally:
        proc.kill()
        (tmp_path / "err.log").write_text(proc.communicate(timeout=10)[1])


def soft_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-file limit in /proc")


@pytest.mark.timeout(120)
def test_the_server_raises_a_low_open_file_limit_so_many_file_uploads_are_read(tmp_path):
    """Started with a soft limit of 64 (hard 4096), 80 files over 1 MB in one request were a 400 "There was an
    error parsing the body" (and new connections were refused while they were open): the server now raises its
    soft limit to what full queues of such uploads can hold, as far as the hard limit allows."""
    with serve_limited(tmp_path, 64, 4096) as (proc, base):
        files = [("files", (f"part{i}.bin", SPOOLED)) for i in range(80)]
        r = httpx.post(base + "/api/classify", files=files, timeout=60)
        assert r.status_code == 200, r.text[:300]
        assert len(r.json()["results"]) == 80
        assert soft_limit(proc.pid) > 64


@pytest.mark.timeout(120)
def test_an_upload_the_server_has_no_files_left_for_is_a_503_to_try_again(tmp_path):
    """With a hard limit it cannot raise, the server says so as it starts, and an upload it has no open files for
    is a 503 with Retry-After in the API's error shape (it was a 400 blaming the body: "There was an error parsing
    the body"). Its files are let go: the server answers as before once the request has ended."""
    with serve_limited(tmp_path, 64, 64) as (proc, base):
        files = [("files", (f"part{i}.bin", SPOOLED)) for i in range(80)]
        r = httpx.post(base + "/api/classify", files=files, timeout=60)
        assert r.status_code == 503, r.text[:300]
        assert r.headers["retry-after"] == "5"
        body = r.json()
        assert body["error"] == body["detail"] and "could not store the upload" in body["error"]
        assert "too many open files" in body["error"]
        small = httpx.post(base + "/api/classify", files=[("files", ("one.bin", SPOOLED))], timeout=60)
        assert small.status_code == 200, small.text[:300]
    assert "the open-file limit is 64" in (tmp_path / "err.log").read_text()


def test_health_answers_while_every_worker_thread_is_taken(tiny_model_dir):
    """/api/health needs no worker thread: with all of the thread pool's tokens taken (slow address lookups of
    URL requests, long reads of uploads), a probe still answers at once. It waited for a free thread."""
    import anyio
    from anyio.to_thread import current_default_thread_limiter

    from medimg.server import ServerConfig, Worker, create_app

    cfg = ServerConfig(model_dir=str(tiny_model_dir))
    app = create_app(cfg, Worker(cfg), ui=False)

    async def probe() -> list[int]:
        limiter = current_default_thread_limiter()
        holders = [object() for _ in range(int(limiter.total_tokens))]
        for h in holders:
            await limiter.acquire_on_behalf_of(h)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                with anyio.fail_after(10):
                    got = [(await client.get("/api/health")).status_code,
                           (await client.head("/api/health")).status_code]
        finally:
            for h in holders:
                limiter.release_on_behalf_of(h)
        return got

    assert anyio.run(probe) == [200, 200]


def test_an_exception_chain_that_loops_is_walked_once():
    """_not_stored follows an error's causes to an OSError; a chain that loops back (an exception whose cause is
    one it caused) ended the walk never (it spun forever on a request's 400)."""
    from medimg.server.api import _not_stored

    a, b = ValueError("a"), ValueError("b")
    a.__cause__, b.__cause__ = b, a
    assert _not_stored(a) is None
    full = OSError(28, "No space left on device")
    c = ValueError("c")
    c.__context__ = full
    assert _not_stored(c) == "the server could not store the upload now (no space left on device); try again shortly"
