"""browser.py (s40 review): with allow_private, a page may reach its other private origins (an API or a frame on
another port); a render that is killed or stopped leaves nothing in the temporary directory."""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
import threading
import time

import pytest

from medimg.sources import Limits, open_input
from medimg.sources import browser
from test_browser import RENDER, colours, png, requires_browser
from webserver import WebServer


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_a_page_reaches_its_api_and_frames_on_another_private_port():
    """An app on one port fetching its gallery from an API on another (a dev server and its backend, an intranet
    viewer), and a frame from that other port: Chromium took the page (handed over by the guard) for a public one,
    and its Local Network Access checks blocked both ("no images found"; the frame's image missing, while the
    frame's row said its images were among those the browser loaded)."""
    with WebServer() as site, WebServer() as api:
        api.add("/gallery.json", f'["{site.url("/scan.png")}"]', "application/json",
                headers={"Access-Control-Allow-Origin": "*"})
        api.add("/frame.html", '<img src="inner.png" alt="in the frame">')
        api.add("/inner.png", png((0, 255, 0)), "image/png")
        site.add("/scan.png", png((255, 0, 0)), "image/png")
        site.add("/page.html", f"""<div id="root"></div><iframe src="{api.url('/frame.html')}"></iframe><script>
          fetch("{api.url('/gallery.json')}").then(r => r.json()).then(list => list.forEach(u => {{
            const i = document.createElement("img"); i.src = u; root.appendChild(i); }}));</script>""")
        items = list(open_input(site.url("/page.html"), Limits(**RENDER)))
        assert api.hits["/gallery.json"] == 1 and api.hits["/inner.png"] == 1
    assert sorted(colours(items)) == [(0, 255, 0), (255, 0, 0)], items


def _leftovers(folder) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.fixture
def own_tmp(monkeypatch):
    """A temporary directory of the test's own, for medimg, the Playwright driver and Chromium. A short one:
    Chromium cannot start when its SingletonSocket's path in it would be over ~100 characters (pytest's tmp_path)."""
    folder = tempfile.mkdtemp(prefix="s40-", dir="/tmp")
    monkeypatch.setenv("TMPDIR", folder)
    monkeypatch.setattr(tempfile, "tempdir", folder)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_a_render_killed_past_its_time_leaves_no_folder_behind(own_tmp, monkeypatch):
    """Chromium keeps its SingletonSocket in a folder of the temporary directory (org.chromium.Chromium.XXXXXX),
    which it removes when it closes; killed by the watchdog (time or memory), it left one behind per render."""
    monkeypatch.setattr(browser, "WATCHDOG_GRACE", 2.0)
    with WebServer() as srv:
        srv.add("/busy.html", "<script>addEventListener('load', () => setTimeout(() => { while (true) {} }, 50))"
                              "</script>")
        items = list(open_input(srv.url("/busy.html"), Limits(**{**RENDER, "total_timeout": 2})))
    assert len(items) == 1 and "still busy" in items[0].error, items
    time.sleep(0.5)
    assert _leftovers(own_tmp) == []


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_a_render_stopped_by_the_run_leaves_no_folder_behind(own_tmp):
    """A run stopped while a page was being rendered (Ctrl-C, a closed stream, the server's Stop): Playwright's
    driver ended before removing its playwright-artifacts-XXXXXX folder, left behind in the temporary directory
    (the process going on, as a server does, or not). It is now a folder of the render's own."""
    cancel = threading.Event()
    out: list = []
    with WebServer() as srv:
        srv.add("/a.png", png((255, 0, 0)), "image/png")
        srv.add("/busy.html", '<img src="a.png"><script>addEventListener("load", () => '
                              "setTimeout(() => { while (true) {} }, 50))</script>")

        def render():
            try:
                out.append(browser.collect(srv.url("/busy.html"), Limits(**{**RENDER, "total_timeout": 30}), cancel))
            except browser.BrowserError as exc:
                out.append(exc)

        worker = threading.Thread(target=render)
        worker.start()
        for _ in range(300):  # until the page has loaded its image
            if srv.hits["/a.png"]:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        started = time.monotonic()
        cancel.set()
        worker.join(30)
    assert time.monotonic() - started < 10 and not worker.is_alive()
    assert isinstance(out[0], browser.BrowserError) and "cancelled" in str(out[0]), out
    time.sleep(0.5)
    assert _leftovers(own_tmp) == []


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_a_picture_whose_blob_url_the_script_revoked_after_load_is_read():
    """`img.onload = () => URL.revokeObjectURL(url)` (what the docs of createObjectURL advise): the picture a script
    made from bytes it holds (decrypted, converted) could no longer be read from its URL and was left out without
    a word. It is now read as the page shows it."""
    made = base64.b64encode(png((200, 30, 30), (90, 90))).decode()
    with WebServer() as srv:
        srv.add("/page.html", f"""<div id="root"></div><script>
          const bytes = Uint8Array.from(atob("{made}"), c => c.charCodeAt(0));
          const url = URL.createObjectURL(new Blob([bytes], {{type: "image/png"}}));
          const img = new Image(); img.onload = () => URL.revokeObjectURL(url); img.src = url;
          root.appendChild(img);</script>""")
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
    assert colours(items) == [(200, 30, 30)], items
    assert items[0].locator.startswith("img #1 blob:http://127.0.0.1") and items[0].image.size == (90, 90)


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_an_app_whose_panel_scrolls_rather_than_the_page_is_scrolled():
    """An app's layout: the page fills the window and does not scroll (overflow hidden); its main panel does, and
    each part of its list comes when the panel's end is reached. Only the window was scrolled: 1 part of 4."""
    page = """<style>html, body { height: 100%; margin: 0; overflow: hidden } #main { height: 100%; overflow: auto }
      </style><div id="main"><div id="list"></div><div id="end">…</div></div><script>
      let n = 0, busy = false;
      new IntersectionObserver(es => { if (!es[0].isIntersecting || busy || n >= 4) return; busy = true;
        fetch("part" + n).then(r => r.json()).then(list => { for (const u of list) {
          const d = document.createElement("div"); d.style.height = "2500px"; const i = document.createElement("img");
          i.src = u; d.appendChild(i); list_.appendChild(d); } n++; busy = false; });
      }, {root: main}).observe(end); const list_ = document.getElementById("list");</script>"""
    with WebServer() as srv:
        for n in range(4):
            srv.add(f"/part{n}", f'["p{n}.png"]', "application/json", delay=0.2)
            srv.add(f"/p{n}.png", png((60 * n, 0, 200)), "image/png")
        srv.add("/page.html", page)
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
    assert colours(items) == [(60 * n, 0, 200) for n in range(4)], items


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_a_page_its_server_says_to_save_is_rendered():
    """A report page served with `Content-Disposition: attachment` (a file server, a storage link made to save):
    the static reading reads it as a page, but Chromium downloaded it instead of showing it, so the render failed
    ("Page.goto: Download is starting") and only what the HTML names was read."""
    with WebServer() as srv:
        srv.add("/a.png", png((255, 0, 0)), "image/png")
        srv.add("/b.png", png((0, 255, 0)), "image/png")
        srv.add("/report.html", b'<img src="a.png"><script>document.write(\'<img src="b.png">\')</script>',
                "text/html", headers={"Content-Disposition": 'attachment; filename="report.html"'})
        items = list(open_input(srv.url("/report.html"), Limits(**RENDER)))
    assert colours(items) == [(255, 0, 0), (0, 255, 0)], items
    assert [i.locator.split(" ")[0] for i in items] == ["img", "img"]


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_a_data_url_on_many_elements_is_handed_back_once(monkeypatch):
    """A script's data: URL (a picture it made, an inlined icon) on 100 <img>s and 100 backgrounds was handed back
    from the page 200 times, each copy whole: 900 KB on 300 elements took 1.5 GB in this process for one image."""
    lists = []
    real = browser._candidates

    def spied(found, *args, **kwargs):  # the real one, after noting what the page handed back
        lists.append(list(found))
        return real(found, *args, **kwargs)

    monkeypatch.setattr(browser, "_candidates", spied)
    with WebServer() as srv:
        srv.add("/page.html", """<div id="root"></div><script>
          const c = document.createElement("canvas"); c.width = c.height = 300; const g = c.getContext("2d");
          const d = g.createImageData(300, 300);
          for (let k = 0; k < d.data.length; k++) d.data[k] = k % 4 == 3 ? 255 : (k * 2654435761 >>> 13) & 255;
          g.putImageData(d, 0, 0); const url = c.toDataURL();
          for (let k = 0; k < 100; k++) {
            const i = new Image(); i.src = url; i.width = 10; root.appendChild(i);
            const s = document.createElement("div"); s.style.backgroundImage = `url(${url})`; root.appendChild(s); }
          </script>""")
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
    assert len(items) == 1 and items[0].image.size == (300, 300), items
    assert len(lists) == 1 and [entry["tag"] for entry in lists[0]] == ["img"], [e["tag"] for e in lists[0]]


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_a_page_whose_open_dialog_holds_its_scrolling_is_still_scrolled():
    """The other side of the panel rule: a cookie dialog sets `body { overflow: hidden }` while it is open; a script
    still scrolls such a window, so it is scrolled as before (not taken for a page that cannot scroll)."""
    with WebServer() as srv:
        srv.add("/a.png", png((255, 0, 0)), "image/png")
        srv.add("/b.png", png((0, 255, 0)), "image/png")
        srv.add("/page.html", """<style>body { overflow: hidden }</style>
          <div style="position: fixed; inset: 0; background: #fff8">Accept cookies?</div>
          <img src="a.png"><div style="height: 6000px"></div><div id="end"></div><script>
          new IntersectionObserver(es => { if (es[0].isIntersecting) { const i = new Image(); i.src = "b.png";
            end.appendChild(i); } }).observe(end);</script>""")
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
    assert colours(items) == [(255, 0, 0), (0, 255, 0)], items
