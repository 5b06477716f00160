"""Security review (s39): fetching untrusted addresses. A silent name server must not hold up other visitors'
lookups, and a rendered page's requests keep a site's cookies and credentials with that site across redirects."""

from __future__ import annotations

import io
import socket
import threading
import time

import pytest
from PIL import Image

from medimg.sources import Limits, net, open_input
from medimg.sources import browser
from webserver import WebServer

UNAVAILABLE = browser.available()
requires_browser = pytest.mark.skipif(UNAVAILABLE is not None, reason=f"skipped: {UNAVAILABLE}")


def png(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (80, 70), colour).save(buf, "PNG")
    return buf.getvalue()


def test_lookups_a_silent_name_server_holds_do_not_hold_up_other_lookups(monkeypatch):
    """A page naming images under a zone whose name servers never answer: each lookup holds a thread until the
    system resolver gives up (10 s and more), well after its fetch gave up. Before, 4 threads served every lookup
    of the process and those given up stayed queued, so another visitor's lookup of any name timed out behind them."""
    real = socket.getaddrinfo
    release = threading.Event()

    def resolver(host, *args, **kwargs):
        if host.endswith(".silent.test"):
            release.wait(10)  # the resolver's own timeout
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(net.socket, "getaddrinfo", resolver)
    try:
        def one_image(i: int) -> None:
            with pytest.raises(net.FetchError, match="timed out"):
                net.resolve(f"img{i}.silent.test", 80, True, 0.3)

        page = [threading.Thread(target=one_image, args=(i,)) for i in range(8)]  # max_concurrency images at once
        for th in page:
            th.start()
        for th in page:
            th.join()
        start = time.monotonic()
        assert net.resolve("localhost", 80, True, 2.0)  # another visitor's lookup, right after
        assert time.monotonic() - start < 1.0
    finally:
        release.set()


@requires_browser
@pytest.mark.browser
@pytest.mark.timeout(90)
def test_a_redirect_to_another_site_does_not_carry_the_first_sites_cookies_or_credentials(monkeypatch):
    """The guard makes a rendered page's requests itself, following redirects: it sent the first site's Cookie
    and Authorization headers on to the site a redirect named, and filed that site's Set-Cookie under the first
    site's URL (where the browser sent it back on later requests)."""
    real = net.blocked_reason  # both play public sites
    monkeypatch.setattr(net, "blocked_reason", lambda ip: None if str(ip) in ("127.0.0.1", "127.0.0.2") else real(ip))
    with WebServer() as site, WebServer("127.0.0.2") as other:
        other.add("/img.png", png((0, 0, 200)), "image/png", headers={"Set-Cookie": "planted=OTHER; Path=/"})
        other.add("/data.png", png((0, 0, 100)), "image/png")
        site.add("/own.png", png((0, 200, 0)), "image/png")
        site.add("/later.png", png((0, 100, 0)), "image/png")
        site.redirect("/go.png", other.url("/img.png"))
        site.redirect("/go-data", other.url("/data.png"))
        site.add("/page.html", """<html><body><img src="own.png">
            <img src="go.png" onload="new Image().src = 'later.png'">
            <script>fetch("go-data", {headers: {"Authorization": "Bearer page-secret"}}).catch(() => {});</script>
            </body></html>""", headers={"Set-Cookie": "session=SITE; Path=/"})
        list(open_input(site.url("/page.html"), Limits(allow_private=False, render=True, connect_timeout=5,
                                                        read_timeout=5, total_timeout=20)))
        assert site.hits["/later.png"] >= 1 and other.hits["/data.png"] >= 1
        mine = {k.lower(): v for k, v in site.headers["/go.png"].items()}
        assert mine.get("cookie") == "session=SITE"  # the site itself still gets its own cookie
        for path in ("/img.png", "/data.png"):  # the other site's own cookie (planted) may come back to it
            got = {k.lower(): v for k, v in other.headers[path].items()}
            assert "session" not in got.get("cookie", "") and "authorization" not in got, (path, got)
        later = {k.lower(): v for k, v in site.headers["/later.png"].items()}
        assert "planted" not in later.get("cookie", ""), later
