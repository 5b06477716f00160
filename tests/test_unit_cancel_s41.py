"""An input given up on (past Limits.input_timeout) stops its downloads at once: the server sees the connection
closed within a moment, rather than the download going on to its own total_timeout while the run reads the
inputs after it. Real downloads from a server on 127.0.0.1 that sends a byte every 0.05 s."""

from __future__ import annotations

import io
import threading
import time

from PIL import Image

from medimg import classify
from medimg.sources import Limits
from webserver import WebServer, settled


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (96, 80), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def _limits(**kw) -> Limits:  # the downloads themselves would take 100 s: only input_timeout ends them
    return Limits(allow_private=True, total_timeout=300, read_timeout=300, **kw)


def test_classify_stops_the_download_of_an_input_it_gave_up_on(tiny_classifier):
    with WebServer() as web:
        slow = web.slow("/slow.png", b"x" * 2000, interval=0.05)
        fine = web.add("/fine.png", _png(), "image/png")
        stream = classify([slow, fine], classifier=tiny_classifier, limits=_limits(input_timeout=1.0))
        first = next(stream)  # the run goes on (the stream is open) while the given-up download would go on too
        assert first.input == slow and "input_timeout of 1 s" in first.error, first
        # the download stops within STOP_POLL (0.5 s) of being given up on: 20 bytes a second if it went on
        sent = settled(lambda: web.sent["/slow.png"], within=5)
        rest = list(stream)
    assert sent < 200, f"the given-up download went on: {sent} bytes"
    assert [r.input for r in rest] == [fine] and rest[0].ok, rest


def test_extract_stops_the_download_of_an_input_it_gave_up_on(tmp_path):
    from typer.testing import CliRunner

    from medimg.cli import app

    with WebServer() as web:
        slows = [web.slow(f"/slow{i}.png", b"x" * 2000, interval=0.05) for i in range(4)]
        last_growth: dict[str, float] = {}
        done = threading.Event()

        def watch() -> None:  # when each download last got a byte from the server
            seen: dict[str, int] = {}
            while not done.wait(0.05):
                for i in range(4):
                    n = web.sent[f"/slow{i}.png"]
                    if n != seen.get(i):
                        seen[i], last_growth[f"/slow{i}.png"] = n, time.monotonic()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        res = CliRunner().invoke(app, ["extract", *slows, "--out", str(tmp_path / "out"), "--allow-private",
                                       "--timeout", "300", "--input-timeout", "1", "--workers", "1"])
        ended = time.monotonic()
        done.set()
        watcher.join()
    assert res.exit_code in (0, 1), res.output
    assert "input_timeout of 1 s" in (tmp_path / "out" / "manifest.jsonl").read_text(), res.output
    # the first is given up on ~1 s in; three more inputs (≥ 3 s) follow while its download would go on
    assert ended - last_growth["/slow0.png"] > 1.5, (ended - last_growth["/slow0.png"], res.output)
