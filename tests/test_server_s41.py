"""The API under hostile clients, over real sockets: a body that trickles in (a byte now and then, never pausing
long enough to be cut off) held its connection for as long as the client liked, so a few hundred of them used up
the server's open files and it answered nothing, /api/health included; and a client that hung up left no line in
the access log, though its request had been read, queued or run."""

from __future__ import annotations

import os
import socket
import time

import httpx
import pytest

from medimg.model.classifier import ASSETS
from medimg.server import ServerConfig, Worker, create_app
from test_api import png
from test_server_limits import served_by_uvicorn

HEAD = (b"POST /api/classify HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\n"
        b"Content-Length: %d\r\n\r\n")
PART = b'--B\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'


@pytest.fixture(scope="module")
def classifier(request):
    from medimg.model import Classifier
    from medimg.pipeline import default_classifier

    if (ASSETS / "labels.json").exists():
        return default_classifier()
    return Classifier.load(request.getfixturevalue("tiny_model_dir"))


def _answer(sock: socket.socket) -> bytes:
    sock.setblocking(False)
    try:
        return sock.recv(4000)
    except BlockingIOError:
        return b""
    finally:
        sock.setblocking(True)


def _trickle(sock: socket.socket, body: bytes, piece: int, every: float, seconds: float) -> bytes:
    """Send `body` `piece` bytes at a time, one piece every `every` s, for at most `seconds`: the answer as soon
    as one comes (b"" if none came by then)."""
    end = time.monotonic() + seconds
    for at in range(0, len(body), piece):
        if time.monotonic() > end:
            return b""
        try:
            sock.sendall(body[at:at + piece])
        except OSError:  # closed by the server: its answer is there to read
            break
        if got := _answer(sock):
            return got
        time.sleep(every)
    sock.settimeout(max(0.1, end - time.monotonic()))
    try:
        return sock.recv(4000)
    except TimeoutError:
        return b""


def test_a_body_that_trickles_in_is_cut_off_and_a_slow_but_steady_upload_is_not(classifier, monkeypatch):
    """A body sent a byte every 0.25 s never paused for BODY_IDLE_SECONDS, so it was never cut off: 250 such
    connections to a server limited to 256 open files kept /api/health from answering for as long as they
    trickled. Now a body must come at MIN_BODY_RATE bytes a second on average, after BODY_IDLE_SECONDS of grace
    (a 408 otherwise), as Apache's mod_reqtimeout asks (body=20,MinRate=500); a slower upload that keeps above
    it is answered as before."""
    from medimg.server import limits

    monkeypatch.setattr(limits, "BODY_IDLE_SECONDS", 1.0)
    monkeypatch.setattr(limits, "MIN_BODY_RATE", 2000, raising=False)
    cfg = ServerConfig(max_upload_bytes=1 << 20)
    with served_by_uvicorn(create_app(cfg, Worker(cfg, classifier), ui=False)) as port:
        junk = os.urandom(40_000)  # a second file, an error of its own: the body's bulk
        body = (PART + png() + b'\r\n--B\r\nContent-Disposition: form-data; name="files"; filename="junk.bin"\r\n\r\n'
                + junk + b"\r\n--B--\r\n")
        slow = socket.create_connection(("127.0.0.1", port), timeout=5)
        slow.sendall(HEAD % 100_000 + PART)
        started = time.monotonic()
        answer = _trickle(slow, b"x" * 100, 1, 0.25, 4.0)  # 4 bytes a second, never a pause of 1 s
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"application/json" in answer and b"too slowly" in answer, answer
        assert time.monotonic() - started < 3.5
        assert httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 200

        steady = socket.create_connection(("127.0.0.1", port), timeout=5)
        steady.sendall(HEAD % len(body))  # about 17 KB a second, for over 2 s: above the rate, past the grace
        answer = _trickle(steady, body, max(1, len(body) // 20), 0.12, 6.0)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]


def test_a_request_whose_client_hung_up_has_its_line_in_the_access_log(classifier):
    """uvicorn writes a request's access-log line as its answer starts, and drops an answer to a client that has
    gone, line and all: a cut-off upload, or a download the server was making for a client that gave up, left no
    trace in the log. Such a request now has its line, with nginx's 499 ("client closed request") and its time."""
    from webserver import WebServer

    from test_server_limits import uvicorn_served

    cfg = ServerConfig(allow_private=True)
    app = create_app(cfg, Worker(cfg, classifier), ui=False)
    with uvicorn_served(app, "uvicorn.access") as (_, _, base, records), WebServer() as web:
        port = int(base.rsplit(":", 1)[1])
        cut = socket.create_connection(("127.0.0.1", port), timeout=5)
        cut.sendall(HEAD % 100_000 + PART + b"x" * 5000)  # then hangs up
        time.sleep(0.3)
        cut.close()
        web.slow("/slow.png", b"x" * 500, interval=0.2)
        with pytest.raises(httpx.TimeoutException):  # gives up while the server fetches the image
            httpx.post(base + "/api/classify-url?full=true", json={"url": web.url("/slow.png")}, timeout=1.0)
        httpx.get(base + "/api/health")
        lines = []
        for _ in range(200):  # the fetch stops when the client goes; its line comes then (20 s for a slow machine)
            lines = [r.getMessage() + " " + getattr(r, "took", "") for r in records]
            if sum(" 499 " in line for line in lines) >= 2:
                break
            time.sleep(0.1)
        gone = [line for line in lines if " 499 " in line]
        assert any('"POST /api/classify HTTP/1.1" 499' in line for line in gone), lines
        assert any('"POST /api/classify-url HTTP/1.1" 499' in line for line in gone), lines  # no query string
        assert all(line.endswith(" ms") for line in gone), gone
        assert sum("GET /api/health" in line for line in lines) >= 2 and len(gone) == 2, lines
