"""The server under an integration client's use (s35): a body refused before it has all come still gets its
answer, for a client that keeps sending (httpx's async client), and the rest is read for a bounded time only; a
request whose client left while it waited for a job slot gives up its place in the queue."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from medimg.server import Worker, limits
from medimg.server.api import WAITING_PER_JOB
from test_api import png
from test_server_limits import classifier, live  # noqa: F401  (the module's classifier fixture)


@pytest.fixture(scope="module")
def small(classifier):  # noqa: F811
    """The API with a 1 MB upload cap; other caps as shipped (64 KB for /api/classify-url, 1 MB elsewhere)."""
    server = live(classifier, max_upload_bytes=2**20)
    yield server
    server.close()


def _posts(url: str, tries: int, chunked: bool, path: str, size: int) -> list:
    """`tries` POSTs of `size` bytes with httpx's async client, each on its own connection: each answer's
    (status, error) or the exception's name."""

    async def body():
        if path == "/api/classify":
            yield b'--B\r\nContent-Disposition: form-data; name="files"; filename="big.bin"\r\n\r\n'
        for i in range(0, size, 64 * 1024):
            yield b"a" * min(64 * 1024, size - i)

    async def one():
        async with httpx.AsyncClient(timeout=30) as c:
            try:
                if path == "/api/classify":
                    if chunked:
                        r = await c.post(url + path, content=body(),
                                         headers={"content-type": "multipart/form-data; boundary=B"})
                    else:
                        r = await c.post(url + path, files=[("files", ("big.bin", b"\0" * size))])
                else:
                    r = await c.post(url + path, content=body() if chunked else b"a" * size,
                                     headers={"content-type": "application/json"})
                return r.status_code, r.json()["error"]
            except httpx.HTTPError as exc:
                return type(exc).__name__

    async def main():
        return [await one() for _ in range(tries)]

    return asyncio.run(main())


@pytest.mark.parametrize("path,chunked,cap", [("/api/classify", False, "1 MB"), ("/api/classify", True, "1 MB"),
                                              ("/api/classify-url", False, "64 KB"),
                                              ("/api/classify-url", True, "64 KB"),
                                              ("/api/nothing-here", False, "1 MB")])
def test_an_async_client_still_sending_gets_the_413_not_a_reset(small, path, chunked, cap):
    """The 413 came at once and the connection was closed with the rest of the body unread: the kernel reset
    it, and httpx's async client, still sending, lost the answer (ReadError on most tries of 16 MB)."""
    answers = _posts(small.url, 4, chunked, path, 16 * 2**20)
    assert all(isinstance(a, tuple) and a[0] == 413 and f"at most {cap} per request" in a[1] for a in answers), \
        answers


def test_a_body_past_the_held_uploads_gets_its_503_too(classifier, monkeypatch):  # noqa: F811
    """The 503 of the upload bytes held at once is sent early as the 413 is: it reaches a client still sending."""
    server = live(classifier, max_upload_bytes=64 * 2**20)
    try:
        limit = next(m for m in _middlewares(server) if isinstance(m, limits.BodyLimit))
        limit.max_held = 2**20  # as if the server held its whole budget of uploads but 1 MB
        answers = _posts(server.url, 3, False, "/api/classify", 16 * 2**20)
        assert all(isinstance(a, tuple) and a[0] == 503 and "try again shortly" in a[1] for a in answers), answers
    finally:
        server.close()


def _middlewares(server):
    """The app's middleware instances, outermost first (built on the first request)."""
    httpx.get(server.url + "/api/health")
    app = server.server.config.loaded_app
    while app is not None:
        yield app
        app = getattr(app, "middleware_stack", None) or getattr(app, "app", None)


def test_the_rest_of_a_refused_body_is_read_for_a_bounded_time_only(small, monkeypatch):
    """A client that keeps sending after its 413 (or stalls) is let go: at LINGER_SECONDS, or after
    LINGER_IDLE_SECONDS without a byte."""
    monkeypatch.setattr(limits, "LINGER_SECONDS", 1.5)
    monkeypatch.setattr(limits, "LINGER_IDLE_SECONDS", 0.5)
    port = int(small.url.rsplit(":", 1)[1])
    for stall in (False, True):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST /api/classify-url HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000000000\r\n\r\n")
            start, answer, closed = time.monotonic(), b"", None
            s.setblocking(False)
            while time.monotonic() - start < 8 and closed is None:
                try:
                    if not stall:
                        s.send(b"a" * 4096)
                except (BlockingIOError, ConnectionError):
                    pass
                try:
                    data = s.recv(65536)
                    if not data:
                        closed = time.monotonic() - start
                    answer += data
                except BlockingIOError:
                    time.sleep(0.01)
                except ConnectionError:
                    closed = time.monotonic() - start
            assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
            assert closed is not None and closed < (1.2 if stall else 3), (stall, closed)


class GatedWorker(Worker):
    """Holds its job slot until `gate` is set (or its request is stopped)."""

    gate, running = threading.Event(), threading.Event()

    def run(self, *args, stop=None, **kwargs):
        self.running.set()
        while not self.gate.wait(0.05):
            if stop is not None and stop.is_set():
                break
        return super().run(*args, stop=stop, **kwargs)


def test_a_request_whose_client_left_while_waiting_for_a_slot_gives_up_its_place(classifier,  # noqa: F811
                                                                                    monkeypatch):
    """Clients that gave up (a client-side timeout) kept their places in the queue until a slot came: a few
    of them and every later request was told the server was busy (503), with the server idle but for one job."""
    from medimg.server import api

    entered, left = [], []  # requests that began and ended waiting for a slot (fixed sleeps ordered them before)
    slot = api._slot

    async def counted_slot(*args):
        entered.append(1)
        try:
            return await slot(*args)
        finally:
            left.append(1)

    def until(done, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            time.sleep(0.05)

    monkeypatch.setattr(api, "_slot", counted_slot)
    GatedWorker.gate.clear()
    GatedWorker.running.clear()
    server = live(classifier, worker_class=GatedWorker, max_jobs=1, request_timeout=60)
    port = int(server.url.rsplit(":", 1)[1])
    body = (b'--B\r\nContent-Disposition: form-data; name="files"; filename="q.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + png() + b"\r\n--B--\r\n")
    request = (b"POST /api/classify HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body)) + body
    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(httpx.post, server.url + "/api/classify", files=[("files", ("a.png", png()))],
                                timeout=60)  # holds the one slot
            assert GatedWorker.running.wait(30)
            quitters = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(WAITING_PER_JOB)]
            for s in quitters:
                s.sendall(request)
            until(lambda: len(entered) == WAITING_PER_JOB)
            assert len(entered) == WAITING_PER_JOB and not left
            for s in quitters:  # they give up, waiting
                s.close()
            until(lambda: len(left) == WAITING_PER_JOB, 10)  # they leave the queue (they kept their places before)
            later = pool.submit(httpx.post, server.url + "/api/classify", files=[("files", ("b.png", png()))],
                                timeout=60)
            until(lambda: len(entered) == WAITING_PER_JOB + 1)  # it waits for the slot too
            GatedWorker.gate.set()
            assert first.result().status_code == 200
            r = later.result()
            assert r.status_code == 200, r.text
            assert [x["input"] for x in r.json()["results"]] == ["b.png"]
    finally:
        GatedWorker.gate.set()
        server.close()


@pytest.mark.parametrize("body,why", [(b'{"url": "http://example.org/R\xf6ntgen.png"}', "it is not UTF-8 text"),
                                      (b"[" * 30000 + b"]" * 30000, "it is nested too deeply")])
def test_a_json_body_that_cannot_be_read_is_the_422_of_bad_json(small, body, why):
    """A Latin-1 body (a legacy system's ö) or one nested past the parser's depth was FastAPI's bare 400 "There
    was an error parsing the body", the status the route's schema keeps for a refused URL."""
    r = httpx.post(small.url + "/api/classify-url", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    doc = r.json()
    assert doc["error"] == f"the request body is not valid JSON ({why})" == doc["detail"]
    assert doc["errors"][0]["type"] == "json_invalid" and doc["errors"][0]["loc"] == ["body"]
