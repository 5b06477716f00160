"""`medimg serve` run as an operator runs it: a real server process behind a token and a path prefix, read
through its logs (stdout: the access log; stderr: the rest), and the systemd unit docs/server.md gives."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from medimg.model.classifier import ASSETS
from test_api import free_port, png

TOKEN = "s40-deploy-token-7Qx"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "server.md"

# installed in the server process: every connection it opens, and every name it looks up, to a file
WATCH = '''import os, sys
_out = open(os.environ["MEDIMG_TEST_SOCKETS"], "a", buffering=1)
def _hook(event, args):
    if event == "socket.connect":
        _out.write(f"connect {args[1]!r}\\n")
    elif event == "socket.getaddrinfo":
        _out.write(f"lookup {args[0]!r}\\n")
sys.addaudithook(_hook)
'''


@pytest.fixture(scope="module")
def served(tmp_path_factory, request):
    """`medimg serve --offline --token-file … --root-path /medimg` as a process of its own, its connections and
    name lookups watched: (base URL, the access log's file, the other log's file, the watched file)."""
    tmp = tmp_path_factory.mktemp("deploy")
    (tmp / "token").write_text(TOKEN + "\n")
    (tmp / "tmp").mkdir()
    (tmp / "hook").mkdir()
    (tmp / "hook" / "sitecustomize.py").write_text(WATCH)
    port = free_port()
    cmd = [sys.executable, "-m", "medimg.cli", "serve", "--port", str(port), "--offline", "--token-file",
           str(tmp / "token"), "--root-path", "/medimg"]
    if not (ASSETS / "labels.json").exists():
        cmd += ["--model", str(request.getfixturevalue("tiny_model_dir"))]
    env = {k: v for k, v in os.environ.items() if k not in ("GRADIO_TEMP_DIR", "MPLCONFIGDIR", "MEDIMG_TOKEN")}
    env.update(TMPDIR=str(tmp / "tmp"), HOME="/nonexistent", MEDIMG_TEST_SOCKETS=str(tmp / "sockets"),
               PYTHONPATH=os.pathsep.join([str(tmp / "hook"), env.get("PYTHONPATH", "")]))
    env.pop("GRADIO_ANALYTICS_ENABLED", None)  # as an operator starts it: the server sets it itself
    out, err = tmp / "stdout.log", tmp / "stderr.log"
    base = f"http://127.0.0.1:{port}/medimg"
    with serving(cmd, env, base, out, err):
        yield base, out, err, tmp / "sockets"


@contextlib.contextmanager
def serving(cmd: list[str], env: dict, base: str, out: Path, err: Path):
    """`cmd` (a `medimg serve`) running, its output in `out` and `err`, once `base`/api/health answers (at most
    120 s); stopped with SIGTERM (then killed) at the end."""
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen(cmd, env=env, stdout=o, stderr=e)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, err.read_text()[-3000:]
            try:
                if httpx.get(base + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def lines_of(path: Path, pattern: str, wait: float = 5.0) -> list[str]:
    """The lines of a log file that match `pattern`, once there is one (logs are written as they come)."""
    deadline = time.monotonic() + wait
    while True:
        found = [line for line in path.read_text().splitlines() if re.search(pattern, line)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_each_access_log_line_says_how_long_the_answer_took(served):
    """The access log named the client, the request and its status, but not how long the answer took: an
    operator could not tell a slow upload or a long queue from a fast answer. Each line now ends with the
    milliseconds from the request reaching the app to its answer starting (upload and work included)."""
    base, out, _, _ = served
    boundary = "s40boundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"slow.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode()

    def slowly():  # an upload that takes at least 0.8 s to arrive, as over a slow link
        yield head
        time.sleep(0.4)
        yield png(1)
        time.sleep(0.4)
        yield f"\r\n--{boundary}--\r\n".encode()

    r = httpx.post(base + "/api/classify", content=slowly(), auth=("any", TOKEN), timeout=60,
                   headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 200 and r.json()["results"][0]["error"] is None, r.text
    (line,) = lines_of(out, r'"POST /medimg/api/classify HTTP/1.1" 200')
    took = re.search(r'" 200 (\d+) ms$', line)
    assert took and int(took.group(1)) >= 800, line
    health = lines_of(out, r'"GET /medimg/api/health HTTP/1.1" 200 \d+ ms$')
    assert health, out.read_text()[-2000:]


def test_a_wrong_token_is_a_warning_naming_the_client_and_a_missing_one_is_not(served):
    """A wrong token was only an access-log line with 401, like a browser's first request, which carries none:
    at --log-level warning nothing at all was left of a guessing client, and at info it could not be told from
    any page load. A wrong token is now a warning naming the client's address (never the token given)."""
    base, out, err, _ = served
    assert httpx.get(base + "/", timeout=10).status_code == 401  # a browser's first request: no warning
    for auth in (("any", "guess-1"), ("guess-2", "")):
        assert httpx.get(base + "/", auth=auth, timeout=10).status_code == 401
    r = httpx.get(base + "/openapi.json", headers={"Authorization": "Bearer guess-3"}, timeout=10)
    assert r.status_code == 401
    assert httpx.get(base + "/", auth=("any", TOKEN), timeout=10).status_code == 200
    warned = lines_of(err, r"wrong access token")
    deadline = time.monotonic() + 5
    while len(warned) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
        warned = lines_of(err, r"wrong access token")
    assert len(warned) == 3, err.read_text()[-2000:]
    assert all(" WARNING medimg.server: a wrong access token from 127.0.0.1 was refused" in w for w in warned)
    logs = out.read_text() + err.read_text()
    assert "guess-" not in logs and TOKEN not in logs


def test_an_offline_server_opens_no_connection_out(served, tmp_path):
    """--offline, started without GRADIO_ANALYTICS_ENABLED: from its start through the page, an uploaded web
    page with remote images and a web address asked for, the server connects to nothing and looks up no name
    but its own address (Gradio's analytics, a version check or a fetch would)."""
    base, _, _, sockets = served
    auth = ("any", TOKEN)
    page = (b'<html><body><img src="http://93.184.216.34/a.png"><img src="https://example.org/b.jpg">'
            b'<link rel=stylesheet href="https://fonts.example.net/x.css"></body></html>')
    r = httpx.post(base + "/api/classify", files={"files": ("page.html", page, "text/html")}, auth=auth, timeout=60)
    assert r.status_code == 200
    assert all("offline" in rec["error"] for rec in r.json()["results"]), r.text
    r = httpx.post(base + "/api/classify-url", json={"url": "https://example.org/"}, auth=auth, timeout=60)
    assert r.status_code == 400 and "--offline" in r.json()["error"]
    for path in ("/", "/config", "/docs", "/openapi.json", "/gradio_api/info"):
        assert httpx.get(base + path, auth=auth, timeout=30).status_code == 200, path
    seen = sockets.read_text().splitlines() if sockets.exists() else []
    outside = [s for s in seen if not re.search(r"'127\.0\.0\.1'|'localhost'|'::1'|^connect '/|^connect b'", s)]
    assert outside == [], outside


def test_the_systemd_unit_in_the_docs_is_valid(tmp_path):
    """docs/server.md's unit, checked by systemd itself (its ExecStart pointed at this Python, which exists)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    text = DOCS.read_text()
    unit = re.search(r"# /etc/systemd/system/medimg.service\n(.*?)```", text, re.S).group(1)
    assert "SuccessExitStatus=143" in unit and "RestartPreventExitStatus=2" in unit
    path = tmp_path / "medimg.service"
    path.write_text(unit.replace("/opt/medimg/venv/bin/medimg", sys.executable))
    done = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Unknown" not in done.stderr and "ignoring" not in done.stderr.lower(), done.stderr
