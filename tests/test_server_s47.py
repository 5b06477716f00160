"""The HTTP API under real clients (session 47): a live server on 127.0.0.1, bodies as clients get them wrong."""

from __future__ import annotations

import gzip

import httpx
import pytest

from test_api import LiveServer, png
from test_openapi_s33 import app, classifier, conforms  # noqa: F401 (a fixture)


@pytest.fixture(scope="module")
def live(classifier):  # noqa: F811
    server = LiveServer(app(classifier, max_upload_bytes=8 << 20))
    yield server.url
    server.close()


@pytest.fixture(scope="module")
def spec(live) -> dict:
    return httpx.get(live + "/openapi.json", timeout=60).json()


def upload_body(*named: tuple[str, bytes]) -> tuple[bytes, str]:
    """A multipart body as httpx writes it, and its Content-Type (with the boundary)."""
    request = httpx.Request("POST", "http://127.0.0.1/", files=[("files", item) for item in named])
    return request.read(), request.headers["content-type"]


def test_a_content_type_set_by_hand_without_its_boundary_says_to_leave_it_out(live, spec):
    """`requests.post(url, files=…, headers={"Content-Type": "multipart/form-data"})` (or fetch with FormData and
    that header): the header hides the one with the boundary the client would write. The answer was Starlette's
    "Missing boundary in multipart.", which does not say what to change."""
    r = httpx.post(live + "/api/classify", files=[("files", ("a.png", png(1)))],
                   headers={"content-type": "multipart/form-data"}, timeout=60)
    assert r.status_code == 400, r.text
    body = conforms(spec, "POST", "/api/classify", 400, r.headers, r.content)
    assert "names no boundary" in body["error"] and "do not set Content-Type yourself" in body["error"], body
    r = httpx.post(live + "/api/classify", files=[("files", ("a.png", png(1)))], timeout=60)  # as the client sets it
    assert r.status_code == 200 and r.json()["summary"]["images"] == 1, r.text


def test_a_compressed_body_is_a_415_saying_to_send_it_uncompressed(live, spec):
    """A gzipped upload was a 400 "expected boundary character 45, got 31 at index 2", a gzipped JSON body a 422
    "not UTF-8 text", and an upload labelled gzip but sent plain was classified as if the label were not there."""
    body, ctype = upload_body(("a.png", png(2)), ("b.png", png(3)))
    for content in (gzip.compress(body), body):
        r = httpx.post(live + "/api/classify", content=content, timeout=60,
                       headers={"content-type": ctype, "content-encoding": "gzip"})
        assert r.status_code == 415, (r.status_code, r.text[:300])
        said = conforms(spec, "POST", "/api/classify", 415, r.headers, r.content)
        assert "Content-Encoding 'gzip'" in said["error"] and "uncompressed" in said["error"], said
    r = httpx.post(live + "/api/classify-url", timeout=60,
                   content=gzip.compress(b'{"url": "http://127.0.0.1:1/a.png"}'),
                   headers={"content-type": "application/json", "content-encoding": "gzip"})
    assert r.status_code == 415, (r.status_code, r.text[:300])
    conforms(spec, "POST", "/api/classify-url", 415, r.headers, r.content)
    # a body of several MB still arriving when the answer goes: the client reads the 415, not a reset
    big, big_type = upload_body(("noise.bin", bytes(range(256)) * (5 << 12)))
    r = httpx.post(live + "/api/classify", content=gzip.compress(big, 1) + bytes(4 << 20), timeout=60,
                   headers={"content-type": big_type, "content-encoding": "gzip"})
    assert r.status_code == 415, (r.status_code, r.text[:300])
    # as sent, or named identity: read as before
    r = httpx.post(live + "/api/classify", content=body, timeout=60,
                   headers={"content-type": ctype, "content-encoding": "identity"})
    assert r.status_code == 200 and r.json()["summary"]["images"] == 2, r.text
    r = httpx.get(live + "/api/classify", headers={"content-encoding": "gzip"}, timeout=60)  # not a body's route
    assert r.status_code == 405, r.text


def test_a_decode_still_running_after_its_client_left_holds_the_job_slot(classifier, monkeypatch):  # noqa: F811
    """The slot was let go as soon as the run's stream ended on the client's leaving, while its reader, inside a
    decoder (which cannot be stopped), went on: each next request started its own decodes beside it (8 requests
    of four 100-MP PNGs, each client gone after 0.8 s: 4.8 GB of RSS and 24 threads on a server of 2 slots). Now
    the next request waits for that reader to end."""
    import socket
    import threading
    import time

    from medimg.sources import ItemError, registry
    from medimg.sources.registry import SourcePlugin

    active, starts, ends = [0], [], []
    most = [0]
    lock = threading.Lock()
    began = threading.Event()

    def open_stuck(blob, ctx):  # a decoder that neither looks at the cancel nor returns soon
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
            starts.append(time.monotonic())
        began.set()
        time.sleep(4)
        with lock:
            active[0] -= 1
            ends.append(time.monotonic())
        yield ItemError(blob.name, "", "stuck: done")

    monkeypatch.setattr(registry, "_PLUGINS", list(registry.plugins()))
    registry.register(SourcePlugin("stuck", lambda head, blob: head.startswith(b"STUCK"), open_stuck, priority=0))
    server = LiveServer(app(classifier, max_jobs=1))
    try:
        body, ctype = upload_body(("a.bin", b"STUCK"))
        request = (f"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        host, port = server.url.rsplit("/", 1)[1].split(":")
        with socket.create_connection((host, int(port))) as first:  # leaves once its decode has begun
            first.sendall(request)
            assert began.wait(60), "the first decode never began"
        r = httpx.post(server.url + "/api/classify", content=body, headers={"content-type": ctype}, timeout=120)
        assert r.status_code == 200 and r.json()["results"][0]["error"] == "stuck: done", r.text
        assert len(starts) == 2 and len(ends) == 2, (starts, ends)
        assert most[0] == 1 and starts[1] >= ends[0], (starts, ends)  # before: the second began beside the first
    finally:
        server.close()
