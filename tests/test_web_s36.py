"""Pages as sites ship them today, served on 127.0.0.1 (with the private-address opt-in): an image-set() is one
picture (its best option, url() options too), a 429 or 503 whose Retry-After is short is fetched once more, an
error page sent as image/png is said to be one, and a <noscript> fallback of a lazy image at another size is that
image again."""

from __future__ import annotations

import io
import threading
import time
from email.utils import formatdate

import numpy as np
import pytest
from PIL import Image
from webserver import WebServer

from medimg.sources import ImageItem, ItemError, Limits, css, net, open_input

OPEN = {"allow_private": True, "connect_timeout": 2, "read_timeout": 2, "total_timeout": 5}  # loopback: the opt-in


def photo(size=(120, 96), shift: int = 0) -> bytes:
    """A picture with structure (gradients), so another size of it prints alike and `shift` makes another one."""
    y, x = np.mgrid[0:600, 0:900]
    pixels = np.stack([x * 255 // 900, (y * 255 // 600 + shift) % 256, (x + y + shift) % 256], -1).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(pixels).resize(size, Image.LANCZOS).save(buf, "PNG")
    return buf.getvalue()


def run(url, **limits) -> list:
    return list(open_input(url, Limits(**{**OPEN, **limits})))


def shown(items) -> list[str]:
    """The path of each image that came out, with its tag: ["style /hi.png", …]."""
    return [f"{i.metadata['tag']} /{i.metadata['url'].split('/', 3)[3]}" for i in items if isinstance(i, ImageItem)]


def errors(items) -> list[str]:
    return [i.error for i in items if isinstance(i, ItemError) and not i.skipped]


@pytest.fixture
def srv():
    with WebServer() as server:
        yield server


# --- image-set(): one picture, its best option ----------------------------------------------------------------

@pytest.mark.parametrize("text, chosen", [
    ("background-image: image-set(url(lo.png) 1x, url(hi.png) 2x)", ["hi.png"]),
    ("background-image: -webkit-image-set(url('lo.png') 1x, url(\"hi.png\") 2x)", ["hi.png"]),
    ('background-image: image-set("hi.png" 2x, "lo.png" 1x)', ["hi.png"]),  # not the last: the largest
    ('background-image: image-set("a.avif" type("image/avif"), "a.jpg" type("image/jpeg"))', ["a.avif"]),
    ('background: image-set("r.png" 1x, "v.svg" type("image/svg+xml") 2x)', ["r.png"]),  # SVG is not read
    ('background: image-set("hi.png" 1.5dppx, "lo.png" 96dpi)', ["hi.png"]),
    ('background: image-set(linear-gradient(red, blue) 2x, "a.png")', ["a.png"]),
    ('background: url(x.png), image-set("a,1.png" 1x, "a,2.png" 2x), url(y.png)', ["x.png", "a,2.png", "y.png"]),
])
def test_an_image_set_gives_one_url_its_best_option(text, chosen):
    found = []
    css.css_urls(text, lambda url, *_: found.append(url))
    assert found == chosen


def test_a_page_s_image_sets_are_one_image_each_wherever_they_are_written(srv):
    """In a style attribute, a <style> block and a linked stylesheet: the 2x option only, fetched once; the 1x ones
    are never requested (before, every url() option was an image of its own, and a set of type()s none)."""
    for n in range(3):
        srv.add(f"/i/lo{n}.png", photo((120, 96), 40 * n), "image/png")
        srv.add(f"/i/hi{n}.png", photo((240, 192), 40 * n), "image/png")
    srv.add("/i/t.avif", b"not read", "image/avif")
    srv.add("/i/t.png", photo((200, 160), 150), "image/png")
    srv.add("/site.css", ".hero { background-image: image-set(url(i/lo2.png) 1x, url(i/hi2.png) 2x) }", "text/css")
    srv.add("/page.html", """<html><head><link rel=stylesheet href="site.css"><style>
        .banner { background: image-set(url('/i/lo1.png') 1x, url('/i/hi1.png') 2x) no-repeat }
        .typed { background-image: image-set("/i/t.png" type("image/png"), "/i/t.avif" type("image/avif")) }
        </style></head><body>
        <div style="background-image: -webkit-image-set(url(/i/lo0.png) 1x, url(/i/hi0.png) 2x)">a</div>
        <div class="banner">b</div><div class="typed">c</div><div class="hero">d</div></body></html>""")
    items = run(srv.url("/page.html"))
    assert shown(items) == ["style /i/hi1.png", "style /i/t.png", "style /i/hi0.png", "css /i/hi2.png"]
    assert not errors(items)
    assert all(srv.hits[f"/i/lo{n}.png"] == 0 for n in range(3)) and srv.hits["/i/t.avif"] == 0


# --- 429 and 503 with Retry-After -------------------------------------------------------------------------------

def test_a_429_with_a_short_retry_after_is_fetched_again_once_after_that_wait(srv):
    image = photo()
    srv.answers("/busy.png", [(429, b"slow down", "text/plain", {"Retry-After": "1"}), (200, image, "image/png", {})])
    srv.answers("/down.png", [(503, b"", "text/plain", {"Retry-After": formatdate(time.time() + 1, usegmt=True)}),
                              (200, photo((120, 96), 90), "image/png", {})])
    srv.redirect("/moved.png", "/busy.png", 302)
    srv.add("/page.html", '<html><body><img src="down.png"><img src="busy.png"></body></html>')
    started = time.monotonic()
    items = run(srv.url("/page.html"))
    took = time.monotonic() - started
    assert shown(items) == ["img /down.png", "img /busy.png"] and not errors(items)
    assert srv.hits["/busy.png"] == 2 and srv.hits["/down.png"] == 2
    assert 0.9 < took < 4  # fetched concurrently: each waited about its second once
    got = net.fetch(srv.url("/moved.png"), Limits(**OPEN))  # after a redirect too: the hop's own answer is retried
    assert got.data == image and srv.hits["/busy.png"] == 3


def test_a_retry_after_too_long_or_past_the_deadline_is_said_not_waited(srv):
    srv.add("/later.png", b"", "text/plain", status=503, headers={"Retry-After": "120"})
    srv.add("/soon.png", b"", "text/plain", status=429, headers={"Retry-After": "3"})
    srv.add("/none.png", b"", "text/plain", status=429)
    srv.answers("/again.png", [(429, b"", "text/plain", {"Retry-After": "0"})])
    for path, said in [("/later.png", r"HTTP 503 Service Unavailable for \S+ \(it asks to wait 120 s: Retry-After\)"),
                       ("/soon.png", r"HTTP 429 Too Many Requests for \S+ \(it asks to wait 3 s: Retry-After\)"),
                       ("/none.png", r"HTTP 429 Too Many Requests for \S+/none.png$"),
                       ("/again.png", r"HTTP 429 .* \(tried again 0 s later, as its Retry-After asked\)")]:
        started = time.monotonic()
        with pytest.raises(net.FetchError, match=said):
            net.fetch(srv.url(path), Limits(**{**OPEN, "total_timeout": 3}))
        assert time.monotonic() - started < 1  # 3 s of wait would not leave a second of the 3 s deadline
    assert srv.hits["/later.png"] == srv.hits["/soon.png"] == srv.hits["/none.png"] == 1
    assert srv.hits["/again.png"] == 2


def test_a_cancelled_fetch_stops_waiting_out_a_retry_after(srv):
    srv.add("/busy.png", b"", "text/plain", status=429, headers={"Retry-After": "4"})
    fetcher = net.Fetcher(Limits(**{**OPEN, "total_timeout": 10}))
    threading.Timer(0.5, fetcher.close).start()
    started = time.monotonic()
    with pytest.raises(net.FetchError, match="cancelled"):
        fetcher.fetch(srv.url("/busy.png"))
    assert time.monotonic() - started < 1.5 and srv.hits["/busy.png"] == 1


# --- content-type lies ------------------------------------------------------------------------------------------

def test_an_error_page_sent_as_image_png_is_said_to_be_an_html_page(srv):
    srv.add("/gone.png", "<!doctype html><html><body>Not found</body></html>", "image/png")
    srv.add("/real.jpg", photo(), "text/html")  # and the other lie: an image sent as text/html is read
    srv.add("/page.html", '<html><body><img src="gone.png"><img src="real.jpg"></body></html>')
    items = run(srv.url("/page.html"))
    assert errors(items) == ["not an image: got an HTML page sent as image/png (50 bytes)"]
    assert shown(items) == ["img /real.jpg"]


# --- <noscript> fallbacks ---------------------------------------------------------------------------------------

def test_a_noscript_fallback_at_another_size_is_the_lazy_image_again(srv):
    """WordPress-style lazy loading: the lazy <img> names a 300 px size, its <noscript> twin the full one. A
    visitor sees one picture; a <noscript> picture that is no other image's stays an image."""
    srv.add("/a-300x200.png", photo((300, 200)), "image/png")
    srv.add("/a.png", photo((900, 600)), "image/png")
    srv.add("/b.png", photo((900, 600), 120), "image/png")
    srv.add("/page.html", """<html><body>
        <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-src="/a-300x200.png" loading="lazy">
        <noscript><img src="/a.png"></noscript><noscript><p><img src="/b.png"></p></noscript></body></html>""")
    items = run(srv.url("/page.html"))
    assert shown(items) == ["img /a-300x200.png", "noscript /b.png"]
    notes = [(i.locator.split(" http")[0], i.error) for i in items if isinstance(i, ItemError) and i.skipped]
    assert notes == [("noscript #2", "same picture as img #1 (another size: 900x600, not 300x200)")]
