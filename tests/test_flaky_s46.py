"""The waiting helpers the timing tests share (session 46): `settled` must fail for a download that goes on, or the
tests that use it to show a download stopped could not fail."""
import time

import httpx
import pytest

from webserver import WebServer, settled


def test_settled_fails_while_a_download_goes_on_and_gives_the_count_once_it_stops():
    with WebServer() as web:
        url = web.slow("/slow.png", b"x" * 200, interval=0.1)
        with httpx.stream("GET", url, timeout=10) as r:
            got = r.iter_bytes()
            next(got)
            started = time.monotonic()
            with pytest.raises(AssertionError, match="still going after 2 s"):
                settled(lambda: web.sent["/slow.png"], within=2)
            assert time.monotonic() - started >= 2
        # the client gone, the server's next write fails and the trickle stops
        assert settled(lambda: web.sent["/slow.png"], within=10) < 200


def test_a_slow_body_can_come_in_pieces():
    with WebServer() as web:
        url = web.slow("/p.bin", bytes(range(100)), interval=0.01, piece=30)
        assert httpx.get(url, timeout=10).content == bytes(range(100))
        assert web.sent["/p.bin"] == 100
