"""The server under load (session 44): a URL request whose downloads wait for their host's slots, held by other
requests, still ends at its time limit with what it found and a note, not a bare 504."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from medimg.server import ServerConfig, Worker, create_app
from medimg.server.work import server_words
from medimg.sources import net
from test_api import model_dir, worker  # noqa: F401  (fixtures)


def test_a_url_waiting_for_its_hosts_slots_ends_at_the_time_limit_with_a_note(worker):  # noqa: F811
    cfg = ServerConfig(model_dir=worker.config.model_dir, allow_private=True, request_timeout=3)
    client = TestClient(create_app(cfg, Worker(cfg, worker.classifier), ui=False))
    host, cap = "127.0.0.1", cfg.limits().max_per_host
    for _ in range(cap):  # other requests' downloads hold every slot of the host for longer than the time limit
        net._slots.take(host, cap, lambda: False, "http://127.0.0.1/other")
    try:
        start = time.monotonic()
        r = client.post("/api/classify-url", json={"url": "http://127.0.0.1:9/page.html"})
        took = time.monotonic() - start
    finally:
        for _ in range(cap):
            net._slots.give(host)
    assert r.status_code == 200, r.text  # was a 504 ("took longer than its time limit") with nothing in it
    body = r.json()
    assert "time limit of 3 s" in body["note"]
    [rec] = body["results"]
    assert rec["input"] == "http://127.0.0.1:9/page.html"
    assert rec["error"].startswith("reading it took longer than the time this request had left (3 s)"), rec
    assert "input_timeout" not in rec["error"]
    assert took < 3 + 2, took


def test_the_input_time_limit_is_said_in_the_servers_words():
    said = "reading it took longer than the input_timeout of 15.6277 s: stopped there (1 image found before it kept)"
    assert server_words(said) == ("reading it took longer than the time this request had left (15.6 s): stopped "
                                  "there (1 image found before it kept)")
    assert server_words("within the input_timeout of 1800 s (every one …)") == \
        "within the time this request had left (1800 s) (every one …)"
