"""browser.py (s46 review): a page that goes on to an image or a PDF (a meta refresh, a script) gives its pictures
when rendered, as it does without rendering; a page that sends itself on without end says so."""

from __future__ import annotations

import pymupdf
import pytest

from medimg.sources import ItemError, Limits, open_input
from test_browser import RENDER, colours, png, requires_browser
from webserver import WebServer


def pdf_of(colour) -> bytes:
    doc = pymupdf.open()
    doc.new_page().insert_image(pymupdf.Rect(0, 0, 200, 200), stream=png(colour))
    return doc.tobytes()


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(120)
def test_a_page_that_goes_on_to_an_image_or_a_pdf_gives_its_pictures_when_rendered():
    """The browser shows such a file in a document of its own: the collecting script skipped an <img> whose URL is
    the document's, and the file's response is no image's. "no images found on the page" came out, where the
    static reading followed the meta refresh and read the file."""
    with WebServer() as srv:
        srv.add("/b.png", png((0, 0, 255)), "image/png")
        srv.add("/doc.pdf", pdf_of((0, 255, 0)), "application/pdf")
        srv.add("/refresh.html", '<meta http-equiv="refresh" content="0;url=b.png">')
        srv.add("/script.html", '<script>location.href = ["doc", "pdf"].join(".");</script>')
        by_refresh = list(open_input(srv.url("/refresh.html"), Limits(**RENDER)))
        by_script = list(open_input(srv.url("/script.html"), Limits(**RENDER)))
    assert colours(by_refresh) == [(0, 0, 255)], by_refresh
    assert colours(by_script) == [(0, 255, 0)], by_script
    assert not [i for i in by_refresh + by_script if isinstance(i, ItemError) and not i.skipped]


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(120)
def test_a_page_that_sends_itself_on_without_end_says_so():
    """Each document lived a few milliseconds: the error was Playwright's "Page.evaluate: Execution context was
    destroyed, most likely because of a navigation"."""
    with WebServer() as srv:
        srv.add("/a.png", png((255, 0, 0)), "image/png")
        srv.add("/loop.html", '<img src="a.png"><script>location.replace("loop.html?" + Math.random());</script>')
        items = list(open_input(srv.url("/loop.html"), Limits(**{**RENDER, "total_timeout": 8})))
    errors = [i.error for i in items if isinstance(i, ItemError)]
    assert len(errors) == 1 and "the page kept going on to other pages" in errors[0], errors
    assert "Execution context" not in errors[0]
    assert colours(items) == [(255, 0, 0)]  # what its HTML names, read without rendering


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(120)
def test_a_lazy_image_below_a_frames_fold_is_read_as_without_rendering():
    """Rendering scrolls the page, not its frames, and reads a frame's images from what the browser loaded (the
    frame is not read again): a lazy one below the frame's own fold was lost, which the static reading of the
    frame finds."""
    with WebServer() as site, WebServer("127.0.0.2") as other:
        other.add("/c.png", png((0, 255, 0)), "image/png")
        other.add("/d.png", png((0, 0, 255)), "image/png")
        other.add("/frame.html", '<img src="c.png"><div style="height:3000px"></div><img loading="lazy" src="d.png">')
        site.add("/a.png", png((255, 0, 0)), "image/png")
        site.add("/page.html", f'<img src="a.png"><iframe src="{other.url("/frame.html")}" height="300"></iframe>')
        rendered = list(open_input(site.url("/page.html"), Limits(**RENDER)))
        static = list(open_input(site.url("/page.html"), Limits(**{**RENDER, "render": False})))
    assert sorted(colours(static)) == [(0, 0, 255), (0, 255, 0), (255, 0, 0)]
    assert sorted(colours(rendered)) == sorted(colours(static)), rendered
    assert not [i for i in rendered if isinstance(i, ItemError) and not i.skipped]
