"""browser.py (s35 review): images a script is still loading or only fetches are found; a page that allocates
without end is stopped."""

from __future__ import annotations

import pytest

import builders as b
from medimg.sources import ImageItem, ItemError, Limits, open_input
from medimg.sources import browser
from test_browser import RENDER, colours, png, requires_browser
from webserver import WebServer

# a web component (its picture in a shadow root), then a gallery built from a fetch of JSON: one picture from a
# slow server, one fetched and drawn to a <canvas>, and a DICOM a viewer's script reads with XHR (for its canvas)
GALLERY = """<!doctype html><html><body><x-case></x-case><div id="root">Loading…</div>
<canvas id="cv" width="80" height="70"></canvas>
<script>
  customElements.define("x-case", class extends HTMLElement { connectedCallback() {
    this.attachShadow({mode: "open"}).innerHTML = '<figure><img src="shadow.png" alt="case 7"></figure>'; } });
  fetch("api/gallery.json").then(r => r.json()).then(list => {
    for (const u of list) { const i = document.createElement("img"); i.src = u; root.appendChild(i); } });
  fetch("drawn.png").then(r => r.blob()).then(createImageBitmap)
    .then(bm => document.getElementById("cv").getContext("2d").drawImage(bm, 0, 0));
  const x = new XMLHttpRequest(); x.open("GET", "scan.dcm"); x.responseType = "arraybuffer"; x.send();
</script></body></html>"""


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_images_in_a_web_component_still_loading_or_only_fetched_are_found(monkeypatch):
    """The slow picture was still coming when the page was read (it was dropped), and what a script fetches
    and draws to a canvas never was an element's: neither was found. Each is found once now. The web
    component's picture was `response #N` (in the order responses came), without its alt; now it is in page order."""
    monkeypatch.setattr(browser, "SETTLE_MS", 1000, raising=False)  # the page is read before the slow one ends
    with WebServer() as srv:
        srv.add("/api/gallery.json", '["slow.png"]', "application/json")
        srv.add("/slow.png", png((255, 0, 0)), "image/png", delay=4.5)
        srv.add("/drawn.png", png((0, 0, 255)), "image/png")
        srv.add("/shadow.png", png((0, 255, 0)), "image/png")
        srv.add("/scan.dcm", b.bare_dicom(), "application/dicom")
        srv.add("/page.html", GALLERY)
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER)))
        assert srv.hits["/api/gallery.json"] == 1 and srv.hits["/scan.dcm"] >= 1
    shown = [i for i in items if isinstance(i, ImageItem)]
    names = [i.locator.rsplit("/", 1)[-1] for i in shown]  # the fetched ones in the order they came
    assert names[:2] == ["shadow.png", "slow.png"] and sorted(names[2:]) == ["drawn.png", "scan.dcm"], items
    assert colours(shown[:2]) == [(0, 255, 0), (255, 0, 0)] and colours([shown[names.index("drawn.png")]]) == [
        (0, 0, 255)]
    assert shown[0].locator.startswith("img #1 ") and shown[0].metadata["alt"] == "case 7"
    assert not [i for i in items if isinstance(i, ItemError)], items


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_a_page_that_allocates_without_end_is_stopped(monkeypatch):
    """Nothing bounded a page's memory: this one took 1.5 GB here (another, 6 GB in 4 s). Past the cap its
    Chromium is killed, and what the HTML names is still read."""
    killed = []
    real_kill = browser._kill_browser
    monkeypatch.setattr(browser, "_kill_browser", lambda profile, fired: (killed.append(profile),
                                                                          real_kill(profile, fired)))
    page = """<html><body><img src="ok.png"><script>fetch("poll"); const keep = [];
      (function more() { keep.push(new Uint8Array(256 << 20).fill(1)); if (keep.length < 6) setTimeout(more, 50); })();
      </script></body></html>"""
    with WebServer() as srv:
        srv.add("/ok.png", png((0, 255, 0)), "image/png")
        srv.slow("/poll", b"x" * 40, interval=0.25, content_type="application/json")  # keeps the page busy
        srv.add("/page.html", page)
        items = list(open_input(srv.url("/page.html"), Limits(**RENDER, max_browser_memory=400 * 2**20)))
    assert "the page took over 400 MB of memory" in items[0].error, items
    assert colours(items) == [(0, 255, 0)]
    assert len(killed) == 1 and browser._browser_pids(killed[0]) == []
