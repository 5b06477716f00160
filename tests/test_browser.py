"""browser.py: rendering finds images only JavaScript or scrolling brings in; the guard holds in the browser."""

from __future__ import annotations

import io
import os
import socket
import sys
import time

import pymupdf
import pytest
from PIL import Image

from medimg.sources import ImageItem, ItemError, Limits, net, open_input
from medimg.sources import browser
from webserver import WebServer

UNAVAILABLE = browser.available()  # None, or why rendering cannot work here
requires_browser = pytest.mark.skipif(UNAVAILABLE is not None, reason=f"skipped: {UNAVAILABLE}")
RENDER = dict(allow_private=True, render=True, connect_timeout=5, read_timeout=5, total_timeout=20)


def png(colour, size=(80, 70)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


# Nothing in the HTML names the images: one is added by a script at load, one only when the
# bottom of a tall page scrolls into view.
JS_PAGE = """<!doctype html><html><body>
<div id="top"></div>
<div style="height: 4000px">a tall page</div>
<div id="sentinel">bottom</div>
<script>
  const name = (p) => ["im", "ages/", p, ".png"].join("");
  const add = (where, p) => { const i = document.createElement("img"); i.src = name(p); i.alt = p;
                              document.getElementById(where).appendChild(i); };
  add("top", "scripted");
  new IntersectionObserver((entries, obs) => entries.forEach(e => {
    if (e.isIntersecting) { add("sentinel", "on-scroll"); obs.disconnect(); }
  })).observe(document.getElementById("sentinel"));
</script></body></html>"""


@pytest.fixture
def js_site():
    with WebServer() as srv:
        srv.add("/images/scripted.png", png((255, 0, 0)), "image/png")
        srv.add("/images/on-scroll.png", png((0, 0, 255)), "image/png")
        srv.add("/page.html", JS_PAGE)
        yield srv


def colours(items):
    return [i.image.convert("RGB").getpixel((1, 1)) for i in items if isinstance(i, ImageItem)]


def one_shown_one_refused(items, colour, name: str, says: str) -> None:
    """One image of `colour` came out, and one error row for the image called `name`, saying `says`."""
    assert colours(items) == [colour]
    errors = [i for i in items if isinstance(i, ItemError)]
    assert len(errors) == 1 and name in errors[0].locator and says in errors[0].error, errors


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_rendered_page_reports_a_missing_image_as_without_rendering():
    """An image the browser could not load (HTTP 404) is a row with its error, as the static path gives."""
    page = '<html><body><img src="ok.png" alt="ok"><script>const i = document.createElement("img"); ' \
           'i.src = "gone.png"; document.body.appendChild(i);</script></body></html>'
    with WebServer() as srv:
        srv.add("/ok.png", png((0, 255, 0)), "image/png")
        srv.add("/page.html", page)
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
    one_shown_one_refused(items, (0, 255, 0), "gone.png", "404")


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_rendering_finds_at_least_what_the_html_names():
    """A lazy image no script loads (data-src) and the page's og:image are still found when rendering."""
    page = ('<html><head><meta property="og:image" content="/og.png"></head><body>'
            '<img src="/placeholder.png" data-src="/real.png"></body></html>')
    with WebServer() as srv:
        srv.add("/og.png", png((0, 0, 255)), "image/png")
        srv.add("/real.png", png((0, 255, 0)), "image/png")
        srv.add("/placeholder.png", png((255, 255, 255), size=(1, 1)), "image/png")
        srv.add("/page.html", page)
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
    assert sorted(colours(items)) == [(0, 0, 255), (0, 255, 0)]


@pytest.mark.parametrize("render", [False, pytest.param(True, marks=[pytest.mark.browser, requires_browser])])
@pytest.mark.timeout(90)
def test_a_pages_video_gives_its_poster_and_its_clips_middle_frame(render):
    """An ultrasound or endoscopy clip on a page is read as a video file is (its middle frame), after its
    poster; a streaming playlist (HLS) is no file and is passed over, for the next <source>."""
    from test_video import square_index, video_bytes

    page = ('<html><body><h1>Case 12</h1><video controls poster="/poster.png">'
            '<source src="/live.m3u8" type="application/x-mpegURL"><source src="/clip.mp4" type="video/mp4">'
            '</video></body></html>')
    with WebServer() as srv:
        srv.add("/poster.png", png((0, 0, 255)), "image/png")
        srv.add("/clip.mp4", video_bytes(frames=90), "video/mp4")
        srv.add("/live.m3u8", "#EXTM3U\n", "application/x-mpegURL")
        srv.add("/page.html", page)
        items = list(open_input(srv.url("/page.html"), Limits(**{**RENDER, "render": render})))
        assert render or srv.hits["/live.m3u8"] == 0  # (Chromium itself may ask for it)
    assert [type(i).__name__ for i in items] == ["ImageItem", "ImageItem"], items
    poster, clip = items
    assert colours([poster]) == [(0, 0, 255)] and poster.metadata["tag"] == "video"
    assert clip.locator.startswith(f"video #2 {srv.url('/clip.mp4')}, ") and clip.format == "video (mp4, h264)"
    assert square_index(clip) == 45  # the middle of 90 frames


@pytest.mark.parametrize("render", [False, pytest.param(True, marks=[pytest.mark.browser, requires_browser])])
@pytest.mark.timeout(90)
def test_script_and_scroll_images_found_only_when_rendering(js_site, render):
    items = list(open_input(js_site.url("/page.html"), Limits(**{**RENDER, "render": render})))
    if render:
        assert colours(items) == [(255, 0, 0), (0, 0, 255)]
        tags = [i.metadata["tag"] for i in items]
        assert tags == ["img", "img"] and items[1].metadata["alt"] == "on-scroll"
        assert items[0].locator == f"img #1 {js_site.url('/images/scripted.png')}"
        assert js_site.hits["/images/on-scroll.png"] == 1  # the browser's copy was used, not a second fetch
    else:
        assert [(i.error, i.skipped) for i in items] == [
            ("no images found on the page (the page runs scripts: --render may find images they add)", True)]
        assert js_site.hits["/images/scripted.png"] == 0


def test_route_guard_decisions():
    guard = browser.RouteGuard(allow_private=False, timeout=2)
    for url in ["http://127.0.0.1:8000/x.png", "http://localhost/x.png", "http://10.0.0.1/x.png",
                "https://[::1]/x", "http://[::ffff:169.254.169.254]/latest", "http://0.0.0.0/"]:
        reason = guard.decide(url)
        assert reason and "refused" in reason, url
    assert "scheme file" in guard.decide("file:///etc/passwd")
    assert "scheme ws" in guard.decide("ws://example.org/")
    assert guard.decide("data:image/png;base64,AAAA") is None
    assert guard.decide("http://93.184.216.34/x.png") is None  # a public literal: allowed, nothing contacted
    opened = browser.RouteGuard(allow_private=True)
    assert opened.decide("http://10.0.0.1/x.png") is None
    assert opened.decide("file:///etc/passwd") is not None


class _FakeRoute:
    class request:  # noqa: N801 (mimics playwright's Route.request)
        url = "http://127.0.0.1/secret.png"
        resource_type = "image"

    def __init__(self):
        self.calls = []

    def continue_(self):
        self.calls.append("continue")

    def abort(self, code):
        self.calls.append(f"abort:{code}")


def test_route_guard_handle_aborts_blocked_requests():
    route = _FakeRoute()
    guard = browser.RouteGuard(allow_private=False)
    guard.handle(route)
    assert route.calls == ["abort:blockedbyclient"]
    assert guard.blocked[0][:2] == ("http://127.0.0.1/secret.png", "image")
    route = _FakeRoute()
    browser.RouteGuard(allow_private=True).handle(route)
    assert route.calls == ["continue"]


def test_a_render_given_up_fetches_nothing_more_and_stops_scrolling():
    import threading

    cancel = threading.Event()
    cancel.set()
    for allow_private in (True, False):  # with the guard or without it
        route = _FakeRoute()
        browser.RouteGuard(allow_private=allow_private, cancel=cancel).handle(route)
        assert route.calls == ["abort:aborted"]

    class Page:
        calls = 0

        def evaluate(self, js):
            Page.calls += 1
            return False

        def wait_for_timeout(self, ms):
            pass

        def wait_for_load_state(self, *args, **kwargs):
            Page.calls += 1

    browser._scroll(Page(), time.monotonic() + 60, cancel)
    assert Page.calls == 0


class _RedirectingRoute(_FakeRoute):
    """A public image whose server answers with a redirect to a private address."""

    class request:  # noqa: N801
        url = "http://93.184.216.34/img.png"
        resource_type = "image"
        method = "GET"
        headers = {"accept": "image/*"}
        post_data_buffer = None

    def fulfill(self, **kwargs):
        self.calls.append("fulfill")


def test_route_guard_checks_every_redirect_hop(monkeypatch):
    route = _RedirectingRoute()
    guard = browser.RouteGuard(allow_private=False)
    asked = []

    def exchange(method, url, headers, body):
        asked.append(f"{method} {url}")
        return net.Fetched(url, b"", None, 302, {"Location": "http://10.0.0.1/internal.png"})

    monkeypatch.setattr(guard, "exchange", exchange)
    guard.handle(route)
    assert asked == ["GET http://93.184.216.34/img.png"] and route.calls == ["abort:blockedbyclient"]
    assert guard.blocked[0][0] == "http://10.0.0.1/internal.png" and "private" in guard.blocked[0][2]


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_a_dns_answer_that_turns_private_after_the_check_is_refused_in_the_browser(monkeypatch):
    """DNS rebinding: a name answers a public address to the guard's check and a private one afterwards.
    Here the name is `localhost`: medimg's lookups first get 127.0.0.3 (playing a public address), then
    127.0.0.1, while Chromium resolves it to 127.0.0.1 itself. The guard's fetcher makes the request and
    connects only to an address it checked, so the private server (on 127.0.0.1) is never reached."""
    import socket

    real_getaddrinfo, calls = socket.getaddrinfo, []

    def rebinding(host, port=None, *args, **kwargs):
        if host == "localhost":
            calls.append(host)
            address = "127.0.0.3" if len(calls) == 1 else "127.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 80))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    real = net.blocked_reason  # 127.0.0.2 (the page's site) and 127.0.0.3 play public; 127.0.0.1 stays private
    monkeypatch.setattr(net, "blocked_reason", lambda ip: None if str(ip) in ("127.0.0.2", "127.0.0.3") else real(ip))
    with WebServer("127.0.0.2") as site, WebServer() as inner:
        inner.add("/secret.png", png((9, 9, 9)), "image/png")
        site.add("/ok.png", png((0, 200, 0)), "image/png")
        site.add("/page.html", f'<html><body><img src="ok.png"><img src="http://localhost:{inner.port}/secret.png">'
                               '</body></html>')
        items = list(open_input(site.url("/page.html"), Limits(**{**RENDER, "allow_private": False})))
        assert calls and sum(inner.hits.values()) == 0, inner.hits
    one_shown_one_refused(items, (0, 200, 0), "secret.png", "loopback")


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_rendering_reports_each_image_once_however_its_url_is_written():
    """Chromium percent-encodes and tidies URLs (a space, an é, `./`); the HTML's own spelling of the same image
    is not fetched again, and `<img src="">` (the page's own URL to a browser) is no image."""
    page = '<html><body><img src="a b.png"><img src="é.png"><img src="./c.png"><img src=""></body></html>'
    with WebServer() as srv:
        for name, colour in (("/a%20b.png", (255, 0, 0)), ("/%C3%A9.png", (0, 255, 0)), ("/c.png", (0, 0, 255))):
            srv.add(name, png(colour), "image/png")
        srv.add("/page.html", page)
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
    assert colours(items) == [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    assert not [i for i in items if isinstance(i, ItemError)], items


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_rendering_still_reads_embedded_pdfs_and_odd_spellings_once():
    """Headless Chromium shows no PDF in an <embed> or iframe: the PDF is still read. A backslash path and a
    quote in a query are the same image however they are spelled."""
    doc = pymupdf.open()
    doc.new_page().insert_image(pymupdf.Rect(72, 72, 372, 272), stream=png((0, 0, 255), size=(300, 200)))
    page = ('<html><body><embed src="doc.pdf"><iframe src="frame.html"></iframe><img src="sub\\a.png">'
            '<img src="b.png?x=\'q\'"></body></html>')
    with WebServer() as srv:
        srv.add("/doc.pdf", doc.tobytes(), "application/pdf")
        srv.add("/frame.html", '<img src="f.png">')
        srv.add("/f.png", png((0, 255, 0)), "image/png")
        srv.add("/sub/a.png", png((255, 0, 0)), "image/png")
        srv.add("/b.png", png((255, 255, 0)), "image/png")
        srv.add("/page.html", page)
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
    assert sorted(colours(items)) == [(0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 0)], items
    assert all(i.skipped for i in items if isinstance(i, ItemError)), items


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_the_guard_makes_the_pages_requests_side_by_side(monkeypatch):
    """The guard makes each request itself; the page's requests must still go out several at once, not one
    after another (12 images that each take 1 s to answer would take 12 s)."""
    real = net.blocked_reason  # 127.0.0.1 plays a public site
    monkeypatch.setattr(net, "blocked_reason", lambda ip: None if str(ip) == "127.0.0.1" else real(ip))
    with WebServer() as site:
        for i in range(12):
            site.add(f"/i{i}.png", png((20 * i, 0, 0)), "image/png", delay=1.0)
        site.add("/page.html", "<html><body>" + "".join(f'<img src="i{i}.png">' for i in range(12)) + "</body></html>")
        start = time.monotonic()
        items = list(open_input(site.url("/page.html"), Limits(**{**RENDER, "allow_private": False})))
        took = time.monotonic() - start
        assert site.peak_waiting >= 3, site.peak_waiting
    assert len(colours(items)) == 12 and took < 10, took


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_the_guard_passes_every_cookie_a_page_sets_to_the_browser(monkeypatch):
    """A page that sets two cookies (one with an Expires date, which holds a comma): both reach Chromium, so
    the images it then asks for carry both (the guard joined them into one broken header before)."""
    real = net.blocked_reason  # 127.0.0.1 plays a public site
    monkeypatch.setattr(net, "blocked_reason", lambda ip: None if str(ip) == "127.0.0.1" else real(ip))
    with WebServer() as site:
        site.add("/i.png", png((200, 0, 0)), "image/png")
        site.add("/page.html", '<html><body><img src="i.png"></body></html>',
                 headers=[("Set-Cookie", "a=1; Path=/; Expires=Thu, 01 Jan 2037 00:00:00 GMT"),
                          ("Set-Cookie", "b=2; Path=/")])
        items = list(open_input(site.url("/page.html"), Limits(**{**RENDER, "allow_private": False})))
        cookie = {k.lower(): v for k, v in site.headers["/i.png"].items()}.get("cookie", "")
    assert len(colours(items)) == 1
    assert sorted(c.strip() for c in cookie.split(";")) == ["a=1", "b=2"], cookie


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_what_routing_never_sees_reaches_no_private_address(monkeypatch):
    """Speculation rules make Chromium prefetch and prerender outside Playwright's routing: a public page could
    have it GET internal pages, then navigate to the prefetched one and be read as the page (its images and
    their URLs came back). A page cannot make WebRTC connections either (its STUN packets went out)."""
    real = net.blocked_reason  # 127.0.0.1 plays a public site; 127.0.0.2 stays private
    monkeypatch.setattr(net, "blocked_reason", lambda ip: None if str(ip) == "127.0.0.1" else real(ip))
    with WebServer() as site, WebServer("127.0.0.2") as inner:
        inner.add("/dashboard.html", f'<html><body><img src="{inner.url("/chart.png")}"></body></html>')
        inner.add("/chart.png", png((9, 9, 9)), "image/png")
        inner.add("/prerender.html", "<html><body>internal</body></html>")
        site.add("/ok.png", png((0, 200, 0)), "image/png")
        rules = ('{"prefetch": [{"source": "list", "urls": ["%s"]}], "prerender": [{"source": "list", "urls": '
                 '["%s"]}]}' % (inner.url("/dashboard.html"), inner.url("/prerender.html")))
        site.add("/page.html", f"""<html><body><img src="ok.png">
            <script type="speculationrules">{rules}</script>
            <script>new Image().src = typeof RTCPeerConnection === "undefined" ? "no-rtc.png" : "rtc.png";
              setTimeout(() => {{ location.href = "{inner.url('/dashboard.html')}"; }}, 300);</script>
            </body></html>""")
        stun = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a STUN server on a private address
        stun.bind(("127.0.0.2", 0))
        stun.settimeout(3)
        rtc = ("<script>const pc = new RTCPeerConnection({iceServers: [{urls: 'stun:127.0.0.2:%d'}]}); "
               "pc.createDataChannel('d'); pc.createOffer().then(o => pc.setLocalDescription(o));</script>"
               % stun.getsockname()[1])
        site.add("/frame.html", f'<html><body><iframe sandbox="allow-scripts" srcdoc="{rtc}"></iframe></body></html>')
        site.add("/no-rtc.png", png((0, 0, 200)), "image/png")
        site.add("/rtc.png", png((200, 0, 0)), "image/png")
        items = list(open_input(site.url("/page.html"), Limits(**{**RENDER, "allow_private": False})))
        time.sleep(1)
        assert sum(inner.hits.values()) == 0, inner.hits
        assert site.hits["/no-rtc.png"] == 1 and site.hits["/rtc.png"] == 0
        list(open_input(site.url("/frame.html"), Limits(**{**RENDER, "allow_private": False})))
        with pytest.raises(socket.timeout):  # a frame the init script does not reach: no packet either
            stun.recvfrom(100)
        stun.close()
    assert (9, 9, 9) not in colours(items)


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_guard_blocks_a_private_subresource_in_the_browser(monkeypatch):
    real = net.blocked_reason  # 127.0.0.1 plays a public site; 127.0.0.2 stays private
    monkeypatch.setattr(net, "blocked_reason", lambda ip: None if str(ip) == "127.0.0.1" else real(ip))
    with WebServer() as site, WebServer("127.0.0.2") as inner:
        inner.add("/secret.png", png((9, 9, 9)), "image/png")
        inner.add("/js-secret.png", png((8, 8, 8)), "image/png")
        inner.add("/beacon", b"ok", "text/plain")
        site.add("/ok.png", png((0, 200, 0)), "image/png")
        site.add("/moved.png", png((0, 0, 200)), "image/png")
        site.redirect("/old.png", "/moved.png")  # a redirect the guard allows
        site.redirect("/sneaky.png", inner.url("/redirected-secret.png"))  # one it must refuse
        inner.add("/redirected-secret.png", png((7, 7, 7)), "image/png")
        site.add("/page.html", f"""<html><body><img src="ok.png"><img src="old.png"><img src="sneaky.png">
            <img src="{inner.url('/secret.png')}">
            <script>fetch("{inner.url('/beacon')}").catch(() => {{}});
              const i = new Image(); i.src = "{inner.url('/js-secret.png')}";</script></body></html>""")
        items = list(open_input(site.url("/page.html"),
                                Limits(**{**RENDER, "allow_private": False})))
        assert sum(inner.hits.values()) == 0, inner.hits
    assert colours(items) == [(0, 200, 0), (0, 0, 200)]
    errors = [i for i in items if isinstance(i, ItemError)]
    refused = [e.locator.rsplit("/", 1)[-1] for e in errors if "127.0.0.2" in e.error and "loopback" in e.error]
    # as without rendering: the page's sneaky.png is refused at its redirect, under its own URL, once
    assert sorted(refused) == ["js-secret.png", "secret.png", "sneaky.png"], errors


def test_missing_chromium_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(browser, "CHROMIUM", "/nonexistent/chromium")
    with WebServer() as srv:
        srv.add("/page.html", '<img src="a.png">')
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
        assert srv.hits["/a.png"] == 0
    assert len(items) == 1 and isinstance(items[0], ItemError)
    assert "apt-get install -y chromium" in items[0].error


def test_missing_playwright_is_one_clear_error(monkeypatch):
    if not os.access(browser.CHROMIUM, os.X_OK):
        monkeypatch.setattr(browser, "CHROMIUM", sys.executable)  # any executable: the import fails first
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)  # makes `import` raise ImportError
    with WebServer() as srv:
        srv.add("/page.html", '<img src="a.png">')
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
    assert len(items) == 1 and "pip install 'medimg[browser]'" in items[0].error


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_page_whose_script_never_yields_is_stopped(monkeypatch):
    monkeypatch.setattr(browser, "WATCHDOG_GRACE", 2.0)
    killed = []
    real_kill = browser._kill_browser
    monkeypatch.setattr(browser, "_kill_browser", lambda profile, fired: (killed.append(profile),
                                                                          real_kill(profile, fired)))
    with WebServer() as srv:
        srv.add("/busy.html", "<html><body><script>addEventListener('load', () => "
                              "setTimeout(() => { while (true) {} }, 50));</script></body></html>")
        started = time.monotonic()
        items = list(open_input(srv.url("/busy.html"), Limits(**{**RENDER, "total_timeout": 3})))
    assert time.monotonic() - started < 20
    assert len(items) == 1 and "still busy after 5s" in items[0].error
    assert len(killed) == 1
    marker = f"--user-data-dir={killed[0]}".encode()
    leftovers = []
    for entry in os.scandir("/proc"):
        try:
            if entry.name.isdigit() and marker in open(f"/proc/{entry.name}/cmdline", "rb").read():
                leftovers.append(entry.name)
        except OSError:
            pass
    assert leftovers == [], "the killed render left Chromium processes behind"
