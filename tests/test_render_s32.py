"""s32 review of --render: pages that never finish loading, and images still coming when the render ends."""

from __future__ import annotations

import time

import pytest

from medimg.sources import ImageItem, ItemError, Limits, open_input
from medimg.sources import browser
from test_browser import png, requires_browser
from webserver import WebServer

RENDER = dict(allow_private=True, render=True, connect_timeout=5, read_timeout=5, total_timeout=4)


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_a_page_whose_image_never_finishes_still_gives_what_it_loaded(monkeypatch):
    """An image that never finishes coming (a slow server, a camera's endless stream) holds the page's `load`
    back past the page budget: the images it did load are still read (the page was one error), and the one
    still coming is not waited for in the browser (its body() waited until the watchdog killed Chromium), but
    fetched again under the download limits, as one error."""
    killed = []
    real_kill = browser._kill_browser
    monkeypatch.setattr(browser, "_kill_browser", lambda profile, fired: (killed.append(profile),
                                                                          real_kill(profile, fired)))
    with WebServer() as srv:
        srv.add("/ok.png", png((0, 200, 0)), "image/png")
        srv.slow("/coming.png", png((9, 9, 9), size=(400, 400))[:100] + bytes(100_000), interval=0.2)
        srv.add("/page.html", '<html><body><img src="ok.png"><img src="coming.png"></body></html>')
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
    shown = [i for i in items if isinstance(i, ImageItem)]
    errors = [i for i in items if isinstance(i, ItemError)]
    assert [i.image.convert("RGB").getpixel((1, 1)) for i in shown] == [(0, 200, 0)], items
    assert len(errors) == 1 and "coming.png" in errors[0].locator and "timeout" in errors[0].error, errors
    assert killed == [], "the render waited for an image still coming until the watchdog killed the browser"


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_a_render_given_up_ends_at_once_even_when_its_page_never_yields(monkeypatch, tiny_classifier):
    """A run given up (Ctrl-C, SIGTERM, a server request out of time: the run's cancel) while a page's script
    loops forever: the render's Chromium is killed then, not only when the watchdog's time comes (the process
    could not exit until then: 68 s with the default limits)."""
    import threading

    from medimg import classify

    monkeypatch.setattr(browser, "WATCHDOG_GRACE", 600.0)  # the watchdog's own time never comes in this test
    killed = []
    real_kill = browser._kill_browser
    monkeypatch.setattr(browser, "_kill_browser", lambda profile, fired: (killed.append(profile),
                                                                          real_kill(profile, fired)))
    cancel = threading.Event()
    with WebServer() as srv:
        srv.add("/busy.png", png((0, 0, 200)), "image/png")
        srv.add("/busy.html", "<html><body><script>addEventListener('load', () => { new Image().src = 'busy.png'; "
                              "setTimeout(() => { while (true) {} }, 50); });</script></body></html>")

        def give_up_once_busy():
            while not srv.hits["/busy.png"]:
                if cancel.wait(0.05):
                    return
            cancel.set()

        threading.Thread(target=give_up_once_busy, daemon=True).start()
        records = list(classify([srv.url("/busy.html")], classifier=tiny_classifier, cancel=cancel,
                                limits=Limits(**{**RENDER, "total_timeout": 60})))
        deadline = time.monotonic() + 10  # the stream ends at once; the render's own thread kills its browser
        while not killed and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(killed) == 1
    assert records == []  # a cancelled run yields nothing more (the render's "cancelled" error included)


MORE_AT_THE_BOTTOM = """<!doctype html><html><body><img src="i0.png"><div style="height: 3000px"></div><div id="more"></div>
<script>
  let done = false;
  addEventListener("scroll", () => {
    if (done || innerHeight + scrollY < document.documentElement.scrollHeight - 10) return;
    done = true;  // the bottom reached: four more cases come in, each a screen tall, their pictures lazy
    for (let k = 1; k <= 4; k++) {
      const d = document.createElement("div"), im = document.createElement("img");
      d.style.height = "2000px"; im.loading = "lazy"; im.src = "i" + k + ".png";
      d.appendChild(im); document.getElementById("more").appendChild(d);
    }
  });
</script></body></html>"""


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_a_page_that_grows_when_its_bottom_is_reached_is_scrolled_on():
    """The bottom was looked for in the same step that scrolled to it, before the page could answer the scroll:
    a page that adds content there (more results, related cases) stopped the scrolling, and the lazy pictures
    of what it added were never loaded (nor named in the HTML)."""
    with WebServer() as srv:
        for k in range(5):
            srv.add(f"/i{k}.png", png((40 * k, 100, 50)), "image/png")
        srv.add("/page.html", MORE_AT_THE_BOTTOM)
        items = list(open_input(srv.url("/page.html"), Limits(**{**RENDER, "total_timeout": 20})))
    assert [i.locator.rsplit("/", 1)[-1] for i in items if isinstance(i, ImageItem)] == [f"i{k}.png" for k in range(5)]


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_a_page_that_goes_on_to_an_address_that_fails_gives_its_own_images_not_the_error_pages():
    """A page whose script then goes to an address that fails (a host that is down; one the guard refuses) ends
    on Chromium's error page, whose pictures (the dinosaur game's sprites, as data: URIs) were read as the page's."""
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with WebServer() as srv:
        srv.add("/ok.png", png((0, 200, 0)), "image/png")
        srv.add("/page.html", '<html><body><img src="ok.png"><script>addEventListener("load", () => setTimeout(() => '
                              f'location.href = "http://127.0.0.1:{dead}/login.html", 100));</script></body></html>')
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
    assert [i.locator for i in items] == [f"img #1 {srv.url('/ok.png')}"], items


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
@pytest.mark.parametrize("going_on", ['<meta http-equiv="refresh" content="0; url=next.html">',
                                      '<script>addEventListener("load", () => setTimeout(() => '
                                      'location.href = "next.html", 0));</script>'])
def test_a_page_that_goes_on_to_another_as_it_loads_is_read(going_on):
    """A meta refresh or a script's redirect at load destroyed the document the scrolling ran in: the whole page
    was one error ("Execution context was destroyed"). The page it went on to is read, then the first's images."""
    with WebServer() as srv:
        srv.add("/ok.png", png((0, 200, 0)), "image/png")
        srv.add("/next.png", png((0, 0, 200)), "image/png")
        srv.add("/next.html", '<html><body><img src="next.png"></body></html>')
        srv.add("/page.html", f'<html><head>{going_on}</head><body><img src="ok.png"></body></html>')
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
    assert [i.locator.rsplit("/", 1)[-1] for i in items] == ["next.png", "ok.png"], items


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_a_render_that_breaks_down_still_gives_the_images_its_html_names(monkeypatch):
    """A page whose script never yields is stopped by the watchdog: that was one error and nothing else, though
    the HTML names an image a run without --render reads. The error says so, and the image is read."""
    monkeypatch.setattr(browser, "WATCHDOG_GRACE", 2.0)
    with WebServer() as srv:
        srv.add("/a.png", png((0, 150, 0)), "image/png")
        srv.add("/busy.html", "<html><body><img src='a.png'><script>addEventListener('load', () => "
                              "setTimeout(() => { while (true) {} }, 50));</script></body></html>")
        items = list(open_input(srv.url("/busy.html"), Limits(**{**RENDER, "total_timeout": 3})))
    assert isinstance(items[0], ItemError) and not items[0].skipped
    assert items[0].error == ("rendering stopped: the page was still busy after 5s; the images its HTML names are "
                              "read without rendering")
    assert [i.metadata["url"] for i in items[1:] if isinstance(i, ImageItem)] == [srv.url("/a.png")]


def test_a_render_that_breaks_down_reads_the_pages_stylesheets_too_as_without_render(monkeypatch):
    """The fallback was handed a plain list of the page's candidates, which drops its stylesheets: a background
    a run without --render reads was missing (and a page whose only images are in its stylesheets read nothing)."""
    def broke_down(url, limits, cancel=None):
        raise browser.BrowserError("rendering stopped: the page was still busy after 5s")

    monkeypatch.setattr(browser, "collect", broke_down)
    monkeypatch.setattr(browser, "available", lambda: None)
    with WebServer() as srv:
        srv.add("/a.png", png((0, 150, 0)), "image/png")
        srv.add("/bg.png", png((150, 0, 0)), "image/png")
        srv.add("/s.css", "body { background-image: url(bg.png) }", "text/css")
        srv.add("/p.html", "<html><head><link rel=stylesheet href=s.css></head><body><img src=a.png></body></html>")
        srv.add("/css-only.html", "<html><head><link rel=stylesheet href=s.css></head><body></body></html>")
        plain = list(open_input(srv.url("/p.html"), Limits(allow_private=True)))
        rendered = list(open_input(srv.url("/p.html"), Limits(allow_private=True, render=True)))
        css_only = list(open_input(srv.url("/css-only.html"), Limits(allow_private=True, render=True)))
    urls = [i.metadata["url"] for i in plain if isinstance(i, ImageItem)]
    assert urls == [srv.url("/a.png"), srv.url("/bg.png")], plain
    assert rendered[0].error.endswith("; the images its HTML names are read without rendering"), rendered
    assert [i.metadata["url"] for i in rendered[1:] if isinstance(i, ImageItem)] == urls, rendered
    assert [i.metadata["url"] for i in css_only[1:] if isinstance(i, ImageItem)] == [srv.url("/bg.png")], css_only
