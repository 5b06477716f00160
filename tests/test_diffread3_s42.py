"""A second read of session 42's late changes (polite fetching, the pydicom log filter, the server's render hint):
real servers on 127.0.0.x, real DICOM files, real Chromium where a render is needed."""
from __future__ import annotations

import io
import logging
import socket
import threading

import pytest
from fastapi.testclient import TestClient
from PIL import Image

import medimg.sources.dicom  # noqa: F401  (its pydicom log filter is on before the test files are built)
from medimg.pipeline import classify
from medimg.server import ServerConfig, Worker, create_app
from medimg.sources import Blob, ImageItem, ItemError, net, open_input
from medimg.sources.base import Limits
from webserver import WebServer

OPEN = dict(allow_private=True, connect_timeout=5, read_timeout=10, total_timeout=20)
MARKER = "ZQXDOE"


def _png(n: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (80, 80), (n * 37 % 256, n * 91 % 256, 200)).save(buf, "PNG")
    return buf.getvalue()


# --- X-Robots-Tag -----------------------------------------------------------------------------

def test_a_valued_directive_first_names_no_robot():
    """`max-image-preview: large, noai` was read as a rule for a robot called max-image-preview: noai passed."""
    for value in ("max-image-preview: large, noai", "unavailable_after: 25 Jun 2030, noimageai"):
        assert net.robots_refusal(net.httpx.Headers({"X-Robots-Tag": value}), "medimg/0.1.0") in ("noai", "noimageai")
    assert net.robots_refusal(net.httpx.Headers({"X-Robots-Tag": "max-image-preview: large"}), "medimg/0.1.0") is None


@pytest.mark.browser
@pytest.mark.timeout(90)
def test_a_second_robots_header_holds_for_a_rendered_page(monkeypatch):
    """An image answered with `X-Robots-Tag: googlebot: noindex` and `X-Robots-Tag: noai`: fetched as the URL it
    is refused, but in a render the guard's route joined the two (and Playwright's response.headers does too) into
    `googlebot: noindex, noai`, googlebot's only, so the image was read."""
    from test_browser import RENDER, requires_browser  # noqa: F401  (skips without Chromium)
    from medimg.sources.browser import available

    if available():
        pytest.skip(available())
    real = net.blocked_reason  # 127.0.0.2 plays a public site, so the guard's route fetches every request
    monkeypatch.setattr(net, "blocked_reason", lambda ip: None if str(ip) == "127.0.0.2" else real(ip))
    with WebServer("127.0.0.2") as site:
        site.add("/free.png", _png(1), "image/png")
        site.add("/two.png", _png(2), "image/png",
                 headers=[("X-Robots-Tag", "googlebot: noindex"), ("X-Robots-Tag", "noai")])
        page = site.add("/p.html", '<html><body><img src="/free.png"><img src="/two.png"></body></html>')
        items = list(open_input(page, Limits(**{**RENDER, "allow_private": False}, respect_robots_tag=True)))
        alone = list(open_input(site.url("/two.png"), Limits(**OPEN, respect_robots_tag=True)))
    assert [(i.skipped, i.error) for i in alone] == [(True, "not read: its X-Robots-Tag says noai (respect_robots_tag)")]
    notes = [i for i in items if isinstance(i, ItemError) and "two.png" in i.locator]
    assert notes and notes[0].skipped and "X-Robots-Tag says noai" in notes[0].error, items
    assert sum(isinstance(i, ImageItem) for i in items) == 1


# --- per-host slots -----------------------------------------------------------------------------

def test_a_host_with_a_trailing_dot_shares_its_slots(monkeypatch, tiny_classifier):
    """`site.test.` is `site.test` (the root's dot): it was counted as another host, so max_per_host=1 let two
    requests at once reach the one server."""
    real = socket.getaddrinfo

    def local(host, port=None, *args, **kwargs):
        return real("127.0.0.1" if host in ("site.test", "site.test.") else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local)
    with WebServer() as srv:
        srv.add("/a.png", _png(1), "image/png", delay=0.4)
        srv.add("/b.png", _png(2), "image/png", delay=0.4)
        urls = [f"http://site.test:{srv.port}/a.png", f"http://site.test.:{srv.port}/b.png"]
        recs = list(classify(urls, tiny_classifier, Limits(**OPEN, max_per_host=1), workers=2))
        assert [r.error for r in recs] == [None, None]
        assert srv.peak_waiting == 1


# --- pydicom's log ------------------------------------------------------------------------------

def _dicom(charset) -> bytes:
    from test_phi_s42 import dicom_with_charset

    return dicom_with_charset(charset)


@pytest.mark.parametrize("charset", [f"O'{MARKER}^JOHN", ["ISO 2022 IR 100", f"D'{MARKER}"],
                                     ["ISO_IR 192", f"X\n{MARKER}"]])
def test_a_name_with_a_quote_or_a_line_break_is_not_quoted_in_pydicoms_log(caplog, charset):
    """The filter took a value to end at its next quote and an `ignoring: …` list at its line's end: O'ZQXDOE^JOHN
    was logged as '[…]'ZQXDOE^JOHN', and `ignoring: X` + a new line + the name kept the name."""
    data = _dicom(charset)
    caplog.clear()
    caplog.set_level(logging.WARNING, logger="pydicom")
    items = list(open_input(Blob("scan.dcm", data)))
    assert items and isinstance(items[0], ImageItem), items
    assert "encoding" in caplog.text or "Character Set" in caplog.text, caplog.text
    assert MARKER not in caplog.text, caplog.text


def test_pydicoms_log_still_quotes_a_charset_like_value(caplog):
    data = _dicom(["ISO_IR 192", "ISO 2022 IR 100"])
    caplog.clear()
    caplog.set_level(logging.WARNING, logger="pydicom")
    list(open_input(Blob("scan.dcm", data)))
    assert "Value 'ISO_IR 192' for Specific Character Set does not allow code extensions, ignoring: " \
           "ISO 2022 IR 100" in caplog.text, caplog.text


# --- the server's words -------------------------------------------------------------------------

def test_a_url_holding_render_is_not_rewritten(tiny_classifier):
    """The server turns the CLI's `--render` into its own words; it rewrote a URL holding the letters too
    (`HTTP 404 Not Found for …/scan render=true (on the page: …).png`)."""
    cfg = ServerConfig(allow_private=True)
    client = TestClient(create_app(cfg, Worker(cfg, tiny_classifier), ui=False), raise_server_exceptions=False)
    with WebServer() as web:
        url = web.url("/scan--render.png")
        r = client.post("/api/classify-url", json={"url": url, "show_skipped": True})
    assert r.json()["results"][0]["error"] == f"HTTP 404 Not Found for {url}"


def test_the_hint_itself_is_still_rewritten():
    from medimg.server.work import server_words

    assert server_words("x (the page runs scripts: --render may find images they add)") == (
        "x (the page runs scripts: render=true (on the page: “Run the page's JavaScript before looking”) may find "
        "images they add)")
    assert server_words("found only with --render", can_render=False) == (
        "found only with rendering (which this server cannot do)")


def test_slots_are_given_back_when_the_fetch_fails_or_is_interrupted():
    """Every way out of a request gives its host's slot back (a refused connection, a KeyboardInterrupt while the
    answer is read)."""
    with WebServer() as srv:
        url = srv.add("/a.png", _png(1), "image/png")
        host = net.httpx.URL(url).host
        fetcher = net.Fetcher(Limits(**OPEN, max_per_host=1))

        def interrupt(headers, first):
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            fetcher.fetch(url, peek=interrupt, peek_at=16)
        assert net._slots.busy(host) == 0
        port = srv.port
    with pytest.raises(net.FetchError):
        fetcher.fetch(f"http://127.0.0.1:{port}/gone.png")
    assert net._slots.busy(host) == 0
    done = threading.Event()
    threading.Thread(target=lambda: (net._slots.take(host, 1, lambda: False, "u"), done.set())).start()
    assert done.wait(5)
    net._slots.give(host)
