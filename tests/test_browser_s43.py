"""browser.py (s43 review): popups a page opens on its own are blocked, as a user's browser blocks them; Chromium
starts under a long TMPDIR; a CSS background shown from a blob: URL is read; an image refused at a redirect is one
row when the page went on elsewhere."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from medimg.sources import ItemError, Limits, net, open_input
from test_browser import RENDER, colours, png, requires_browser
from webserver import WebServer


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_popups_a_page_opens_without_a_click_are_blocked():
    """Playwright turns Chromium's popup blocker off, so every window.open of a page ran: 30 popups, each loading
    and running its page (not read), took the render past max_browser_memory and its own images were lost to the
    static reading. A user's browser blocks a popup no click opened."""
    with WebServer() as srv:
        srv.add("/a.png", png((255, 0, 0)), "image/png")
        srv.add("/pop.html", '<img src="a.png">')
        srv.add("/page.html", '<div id="r"></div><script>for (let i = 0; i < 5; i++) window.open("pop.html?" + i);'
                              'const i = new Image(); i.src = "a.png"; r.appendChild(i);</script>')
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
        popups = sum(n for path, n in srv.hits.items() if path.startswith("/pop.html"))
    assert popups == 0
    assert colours(items) == [(255, 0, 0)] and not [i for i in items if isinstance(i, ItemError)], items


@pytest.fixture
def long_tmp(monkeypatch):
    """A temporary directory whose path is 90 characters long (pytest's own, a build agent's can be)."""
    top = tempfile.mkdtemp(prefix="s43-", dir="/tmp")
    folder = os.path.join(top, "t" * (89 - len(top)))
    os.makedirs(folder)
    assert len(folder) == 90
    monkeypatch.setenv("TMPDIR", folder)
    monkeypatch.setattr(tempfile, "tempdir", folder)
    yield folder
    shutil.rmtree(top, ignore_errors=True)


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_chromium_starts_under_a_long_temporary_directory(long_tmp):
    """Chromium makes its SingletonSocket in TMPDIR; a path over a Unix socket's 108 bytes stops it from starting,
    and every render failed with "launch_persistent_context: Target page, context or browser has been closed",
    leaving its org.chromium.Chromium.* folder behind."""
    with WebServer() as srv:
        srv.add("/a.png", png((0, 0, 255)), "image/png")
        srv.add("/page.html", '<div id="r"></div><script>const i = new Image(); i.src = ["a", "png"].join(".");'
                              'r.appendChild(i);</script>')
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
    assert colours(items) == [(0, 0, 255)], items
    assert os.listdir(long_tmp) == []


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_a_css_background_a_script_shows_from_a_blob_url_is_read():
    """A background a script sets from a blob: URL was left out (made from bytes it holds: found nowhere), or came
    as `response` and was downloaded a second time (fetched, then handed over as a blob)."""
    with WebServer() as srv:
        srv.add("/a.png", png((255, 0, 0)), "image/png")
        srv.add("/page.html", """<div id="d" style="width:120px;height:100px"></div>
          <div id="e" style="width:120px;height:100px"></div><script>
          fetch("a.png").then(r => r.blob()).then(b => { d.style.backgroundImage = `url(${URL.createObjectURL(b)})`; });
          const c = document.createElement("canvas"); c.width = 90; c.height = 80; const g = c.getContext("2d");
          g.fillStyle = "#00ff00"; g.fillRect(0, 0, 90, 80);
          c.toBlob(b => { e.style.backgroundImage = `url(${URL.createObjectURL(b)})`; });</script>""")
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
        assert srv.hits["/a.png"] == 1
    assert colours(items) == [(255, 0, 0), (0, 255, 0)], items
    assert [i.locator.split()[0] for i in items] == ["style", "style"]
    assert items[0].locator.endswith("/a.png") and items[1].locator.split()[2].startswith("blob:")


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_an_image_refused_at_a_redirect_is_one_row_when_the_page_went_on(monkeypatch):
    """A page whose <img> redirects to a private address, and which then goes on to another address: the refusal
    came twice, once under the private URL (the guard's) and once under the page's URL (the static reading's)."""
    real = net.blocked_reason  # 127.0.0.1 plays a public site; 127.0.0.2 stays private
    monkeypatch.setattr(net, "blocked_reason", lambda ip: None if str(ip) == "127.0.0.1" else real(ip))
    with WebServer() as site, WebServer("127.0.0.2") as inner:
        inner.add("/p.png", png((9, 9, 9)), "image/png")
        site.add("/a.png", png((0, 200, 0)), "image/png")
        site.redirect("/r.png", inner.url("/p.png"))
        site.add("/page.html", f"""<img src="a.png"><img src="r.png">
            <script>addEventListener("load", () => location.href = "{inner.url('/next.html')}")</script>""")
        items = list(open_input(site.url("/page.html"), Limits(**{**RENDER, "allow_private": False})))
        assert sum(inner.hits.values()) == 0, inner.hits
    assert colours(items) == [(0, 200, 0)]
    refused = [i for i in items if isinstance(i, ItemError) and "p.png" in i.error]
    assert len(refused) == 1 and refused[0].locator.endswith("/r.png"), items
