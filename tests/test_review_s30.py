"""Review of the s30 changes: defects found by trying them on real inputs (each test failed before its fix)."""

from __future__ import annotations


import pytest
from test_web_duplicates import RENDER, images, picture, requires_browser, run
from webserver import WebServer

from medimg.sources import ItemError, charset, web


@pytest.fixture
def srv():
    with WebServer() as server:
        yield server


# --- charset labels no browser knows -----------------------------------------------------------------------------

@pytest.mark.parametrize("label", ["idna", "undefined", "utf-32", "utf-7", "cp037", "punycode", "unicode_escape"])
def test_a_charset_label_no_browser_knows_is_passed_over(srv, label):
    """`page_charset` says a label no browser knows is passed over, but any codec Python has was taken: `idna`
    and `undefined` raised (the whole page was lost: "could not read"), and UTF-32, UTF-7 or EBCDIC read the
    page's ASCII markup as garbage (no images found). Browsers ignore such a label and fall back."""
    assert charset.page_charset(b"<img src=a.png>", f"text/html; charset={label}") == "windows-1252"
    assert charset.page_charset(f"<meta charset={label}><img src=a.png>".encode()) == "windows-1252"
    srv.add("/a.png", picture((200, 40, 40)), "image/png")
    page = srv.add("/p.html", b"<html><body><img src='a.png'></body></html>", f"text/html; charset={label}")
    items = run(page)
    assert images(items) == [srv.url("/a.png")], items
    assert not [i for i in items if isinstance(i, ItemError) and not i.skipped], items


def test_utf16_named_by_the_http_header_is_still_read():
    page = "<html><img src='caf\u00e9.png'></html>"
    assert charset.page_charset(page.encode("utf-16-le"), "text/html; charset=utf-16le") == "utf-16le"
    (cand,) = web.extract(page.encode("utf-16-le"), "http://h/", "text/html; charset=UTF-16LE")
    assert cand.url == "http://h/caf\u00e9.png"


# --- a page-wide picture under thousands of boxes --------------------------------------------------------------

def test_an_image_under_thousands_of_boxes_is_keyed_with_them_moved_at_once():
    """A page-wide picture with a table of 150 x 100 cells filled white over it (a brochure, a form on a
    letterhead) is covered by 15,000 boxes: its key inverted the image's matrix and moved a pymupdf.Rect once
    per box, about 1.4 s of a 3.5 s page (the cover check itself is numpy). Now the boxes move at once."""
    import pymupdf

    from medimg.sources import pdf as pdf_source

    info = {"transform": (612, 0, 0, 792, 0, 0), "width": 400, "height": 400}
    covers = [((3.6 * c + 36, 4.7 * r + 50, 3.6 * c + 39.6, 4.7 * r + 54.7), "1.000,1.000,1.000")
              for r in range(150) for c in range(100)]
    figures: dict = {}
    pdf_source._cropped(info, (5,), pymupdf.Rect(0, 0, 612, 792), 0, pymupdf.Identity, figures, {}, {},
                        lambda *a: None, 10**8, covers)
    (fig,) = figures[0]
    assert fig.covered and fig.native == (400, 400)
    # the boxes moved all at once land where pymupdf moves each one (a turned, scaled, shifted image too); the
    # cost is benchmarks' business, not a timed test's
    for transform in (info["transform"], (300, 200, -100, 400, 50, 60)):
        m = ~pymupdf.Matrix(transform)
        moved = pdf_source._in_image(covers[:500], m)
        each = [v for c, _ in covers[:500] for v in pymupdf.Rect(c) * m]
        assert [v for box in moved for v in box] == pytest.approx(each, abs=1e-6)


# --- a charset label Chromium ignores, on a rendered page ------------------------------------------------------

@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(120)
@pytest.mark.parametrize("label", ["none", "utf-32"])
def test_a_rendered_utf8_page_whose_header_names_an_unknown_charset_gives_its_image_once(srv, label):
    """`Content-Type: text/html; charset=none` (misconfigured servers send it): the static reading passes the
    label over and reads the UTF-8 bytes as UTF-8, but Chromium was told nothing (the header "has a charset"), so
    read the page as windows-1252: "é.png" was two rows, one a 404 of "Ã©.png"."""
    srv.add("/%C3%A9.png", picture((200, 40, 40)), "image/png")
    page = srv.add("/p.html", '<html><body><p>Caf\u00e9</p><img src="\u00e9.png"></body></html>'.encode(),
                   f"text/html; charset={label}")
    items = run(page, **{**RENDER, "allow_private": True})
    assert len(images(items)) == 1, items
    assert not [i for i in items if isinstance(i, ItemError)], items
    assert srv.hits["/%C3%83%C2%A9.png"] == 0
