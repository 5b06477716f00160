"""browser.py (s37 review): a page that fetches its gallery a while after load, infinite scroll, a script swapping
a picture for a larger one, a page going on to a refused address, and the memory check's pace."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time

import pytest
from PIL import Image, ImageFilter

from medimg.sources import ImageItem, ItemError, Limits, net, open_input
from medimg.sources import browser
from test_browser import RENDER, colours, png, requires_browser
from webserver import WebServer


def gradient(size, blur=0) -> bytes:
    w, h = size
    im = Image.new("RGB", size)
    im.putdata([(x * 255 // w, y * 255 // h, 128) for y in range(h) for x in range(w)])
    if blur:
        im = im.filter(ImageFilter.GaussianBlur(blur))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_an_app_that_fetches_its_gallery_a_second_after_load_is_read():
    """The page was read once the network had been quiet 0.5 s: an app that waits 1.2 s after load (a splash, a
    deferred mount) gave "no images found". The page's short timers now count as work still to come."""
    page = """<html><body><div id="root">Loading…</div><script>
      addEventListener("load", () => setTimeout(() => fetch("api/gallery.json").then(r => r.json()).then(list => {
        for (const u of list) { const i = document.createElement("img"); i.src = u; root.appendChild(i); } }), 1200));
      </script></body></html>"""
    with WebServer() as srv:
        srv.add("/api/gallery.json", '["a.png", "b.png"]', "application/json")
        srv.add("/a.png", png((255, 0, 0)), "image/png")
        srv.add("/b.png", png((0, 255, 0)), "image/png")
        srv.add("/page.html", page)
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
    assert colours(items) == [(255, 0, 0), (0, 255, 0)], items
    assert [i.locator.split(" ")[0] for i in items] == ["img", "img"]


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_infinite_scroll_is_followed_while_each_part_takes_time_to_come():
    """Each part of the list came 0.3 s after the bottom was reached: the page was taken as ended 0.1 s after,
    and only the first part was read. At the bottom the page now settles, and is scrolled on when it grew."""
    page = """<html><body><div id="list"></div><div id="end">…</div><script>
      let n = 0, busy = false;
      new IntersectionObserver(es => { if (!es[0].isIntersecting || busy || n >= 4) return; busy = true;
        fetch("api/part" + n).then(r => r.json()).then(list => { for (const u of list) {
          const d = document.createElement("div"); d.style.height = "2500px"; const i = document.createElement("img");
          i.src = u; d.appendChild(i); document.getElementById("list").appendChild(d); } n++; busy = false; });
      }).observe(document.getElementById("end"));</script></body></html>"""
    with WebServer() as srv:
        for n in range(4):
            srv.add(f"/api/part{n}", f'["p{n}.png"]', "application/json", delay=0.3)
            srv.add(f"/p{n}.png", png((60 * n, 0, 200)), "image/png")
        srv.add("/page.html", page)
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
    assert colours(items) == [(60 * n, 0, 200) for n in range(4)], items


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_a_picture_a_script_swaps_for_a_larger_one_is_one_image():
    """A blur-up: the page shows a small blurred picture, and its script then puts the full one in its place.
    Both came out as images (the small one as `response #2`). The earlier one is now a note naming the one the
    element shows; a slideshow's earlier slides (other pictures) stay images of their own."""
    page = """<html><body><img id="p" src="small.png" alt="chest"><img id="s" src="s0.png" alt="slide"><script>
      addEventListener("load", () => setTimeout(() => { p.src = "large.png"; s.src = "s1.png"; }, 200));
      </script></body></html>"""
    with WebServer() as srv:
        srv.add("/small.png", gradient((120, 105), blur=3), "image/png")
        srv.add("/large.png", gradient((480, 420)), "image/png")
        srv.add("/s0.png", png((255, 0, 0)), "image/png")
        srv.add("/s1.png", png((0, 0, 255)), "image/png")
        srv.add("/page.html", page)
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
    shown = [i for i in items if isinstance(i, ImageItem)]
    assert [i.locator.rsplit("/", 1)[-1] for i in shown] == ["large.png", "s1.png", "s0.png"], items
    assert shown[0].locator.startswith("img #1 ") and shown[0].metadata["alt"] == "chest"
    notes = [i for i in items if isinstance(i, ItemError)]
    assert len(notes) == 1 and notes[0].skipped and "small.png" in notes[0].locator, notes
    assert "same picture as img #1" in notes[0].error, notes


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_a_page_that_goes_on_to_a_private_address_says_so(monkeypatch):
    """The page's script sends it to an internal address: the guard refused it (nothing reached it), but the
    result held only the image shown before, as if nothing had happened. Now an error row says where it went."""
    real = net.blocked_reason  # 127.0.0.1 plays a public site; 127.0.0.2 stays private
    monkeypatch.setattr(net, "blocked_reason", lambda ip: None if str(ip) == "127.0.0.1" else real(ip))
    with WebServer() as site, WebServer("127.0.0.2") as inner:
        inner.add("/dash.html", "<html><body>internal</body></html>")
        site.add("/ok.png", png((0, 200, 0)), "image/png")
        site.add("/page.html", f"""<html><body><img src="ok.png"><script>
            setTimeout(() => {{ location.href = "{inner.url('/dash.html')}"; }}, 300);</script></body></html>""")
        items = list(open_input(site.url("/page.html"), Limits(**{**RENDER, "allow_private": False})))
        assert sum(inner.hits.values()) == 0, inner.hits
    assert colours(items) == [(0, 200, 0)]
    errors = [i for i in items if isinstance(i, ItemError)]
    assert len(errors) == 1 and not errors[0].skipped, errors
    assert f"the page went on to {inner.url('/dash.html')}: refused" in errors[0].error
    assert "loopback" in errors[0].error


def test_memory_is_read_often_enough_to_catch_a_short_burst(tmp_path):
    """A render's memory was read every 0.5 s, so a page could take ~1 GB past the cap between two readings (a
    script fills typed arrays at 1-3 GB/s). Here a process of the render (named by its profile folder, as
    Chromium's are) holds 300 MB for the first 0.3 s of the watch, then lets it go: before the first reading at the
    old pace (never earlier than 0.5 s). Caught now."""
    profile = str(tmp_path / "profile")
    code = ("import sys, time\nheld = b'x' * (300 << 20)\nsys.stdout.write('ready\\n'); sys.stdout.flush()\n"
            "t0 = float(sys.stdin.readline()); time.sleep(max(0, t0 + 0.3 - time.monotonic())); del held\n"
            "time.sleep(5)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, f"--user-data-dir={profile}"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        fired, done, hog = threading.Event(), threading.Event(), threading.Event()
        proc.stdin.write(f"{time.monotonic()}\n")
        proc.stdin.flush()
        browser._watch(profile, fired, done, 1.0, None, hog, 150 << 20)
        assert hog.is_set()  # (not only killed at the end of its 1 s)
        assert proc.wait(timeout=5) == -9  # killed
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_pictures_shown_from_blob_urls_are_read():
    """A script made a picture from bytes it holds (URL.createObjectURL of a Blob): its blob: URL was passed over
    and the picture never found. One it fetched and showed so came out as `response #N`, fetched a second time
    (without the headers the script sent: a protected gallery answers that with 401) and without its alt. Both
    are now read from the page, in page order; the fetched one under the URL it came from."""
    import base64

    made = base64.b64encode(png((10, 20, 30))).decode()
    page = f"""<html><body><div id="root"></div><script>
      const bytes = Uint8Array.from(atob("{made}"), c => c.charCodeAt(0));
      const made = new Image(); made.alt = "made";
      made.src = URL.createObjectURL(new Blob([bytes], {{type: "image/png"}}));
      root.appendChild(made);
      fetch("pic.png", {{headers: {{"X-Token": "t"}}}}).then(r => r.blob()).then(b => {{
        const i = new Image(); i.alt = "fetched"; i.src = URL.createObjectURL(b); root.appendChild(i); }});
      </script></body></html>"""
    with WebServer() as srv:
        srv.add("/pic.png", png((200, 100, 0)), "image/png")
        srv.add("/page.html", page)
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
        assert srv.hits["/pic.png"] == 1  # the page's own fetch only
    assert colours(items) == [(10, 20, 30), (200, 100, 0)], items
    assert items[0].locator.startswith("img #1 blob:http://") and items[0].metadata["alt"] == "made"
    assert items[1].locator == f"img #2 {srv.url('/pic.png')}" and items[1].metadata["alt"] == "fetched"


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_a_chart_a_script_draws_on_a_canvas_is_found():
    """A <canvas> drawn from shapes (a chart, an ECG trace drawn from numbers) is a picture the reader sees, found
    nowhere else: the page gave "no images found". It is read as it shows; a canvas showing a fetched picture (a
    viewer's) is not read again, and a blank or WebGL canvas is passed over."""
    page = """<html><body><canvas id="c" width="400" height="300" aria-label="Heart rate"></canvas>
      <canvas id="v" width="200" height="200"></canvas><canvas id="blank" width="200" height="200"></canvas>
      <canvas id="gl" width="100" height="100"></canvas><script>
      const g = c.getContext("2d"); g.fillStyle = "#fff"; g.fillRect(0, 0, 400, 300); g.strokeStyle = "#c00";
      g.beginPath(); for (let x = 0; x < 400; x += 4) g.lineTo(x, 150 + (x % 80 < 8 ? -100 : 0)); g.stroke();
      blank.getContext("2d"); gl.getContext("webgl");
      fetch("pic.png").then(r => r.blob()).then(createImageBitmap).then(bm => v.getContext("2d").drawImage(bm, 0, 0));
      </script></body></html>"""
    with WebServer() as srv:
        srv.add("/pic.png", png((0, 0, 255)), "image/png")
        srv.add("/page.html", page)
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
    assert [i.locator.split(" ")[0] for i in items] == ["canvas", "response"], items
    chart = items[0]
    assert chart.image.size == (400, 300) and chart.metadata["alt"] == "Heart rate"
    drawn = {colour for _, colour in chart.image.convert("RGB").getcolors(400 * 300)}
    assert {(255, 255, 255), (204, 0, 0)} <= drawn and colours(items[1:]) == [(0, 0, 255)]


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_an_image_behind_a_redirect_is_read_once_with_the_browsers_bytes():
    """An <img> whose URL redirects (a CDN, `/image?id=3` to a signed URL): the browser's bytes were kept under
    the URL it ended at, so the element's was fetched again (a signed URL may have expired by then) and the end URL
    came out as a second row, `response #2 … same image as img #1`. Now it is one image, from the browser's bytes."""
    with WebServer() as srv:
        srv.add("/store/scan-7.png", png((0, 0, 200)), "image/png")
        srv.redirect("/image", "/store/scan-7.png")
        srv.add("/page.html", '<html><body><img src="image" alt="scan"></body></html>')
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
        assert srv.hits["/image"] == 1 and srv.hits["/store/scan-7.png"] == 1, srv.hits
    assert len(items) == 1 and colours(items) == [(0, 0, 200)], items
    assert items[0].locator == f"img #1 {srv.url('/image')}" and items[0].metadata["alt"] == "scan"
