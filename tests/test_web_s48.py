"""Web pages as a source, served on 127.0.0.1 (session 48)."""

from __future__ import annotations

import pytest
from builders import blocks_jpeg as jpeg
from webserver import WebServer, read

from medimg.sources import ImageItem, Limits, browser, open_input

UNAVAILABLE = browser.available()  # None, or why rendering cannot work here
requires_browser = pytest.mark.skipif(UNAVAILABLE is not None, reason=f"skipped: {UNAVAILABLE}")
RENDER = dict(allow_private=True, render=True, connect_timeout=5, read_timeout=5, total_timeout=30)


# stylesheets loaded without blocking the page, as speed plugins and loadCSS write them: applied once loaded
ASYNC_SHEETS = """<html><head>
<link rel="stylesheet" href="/c1.css" media="print" onload="this.media='all'">
<link rel="stylesheet" href="/c2.css" media="none" onload="if(media!='all')media='all'">
<link rel="preload" href="/c3.css" as="style" onload="this.onload=null;this.rel='stylesheet'">
<link rel="stylesheet" href="/c4.css" media="print">
<link rel="preload" href="/c5.css" as="style">
</head><body><div class=h1>1</div><div class=h2>2</div><div class=h3>3</div><div class=h4>4</div>
<div class=h5>5</div></body></html>"""


def test_a_stylesheet_loaded_without_blocking_the_page_gives_its_backgrounds():
    with WebServer() as srv:
        for n in range(1, 6):
            srv.add(f"/i/{n}.jpg", jpeg(n), "image/jpeg")
            srv.add(f"/c{n}.css", f".h{n} {{ background-image: url(/i/{n}.jpg) }}", "text/css")
        srv.add("/p.html", ASYNC_SHEETS)
        shown, errors = read(srv.url("/p.html"))
        # a print stylesheet and a preload nothing applies stay unread, as a browser leaves them
        assert shown == [("css", "1.jpg"), ("css", "2.jpg"), ("css", "3.jpg")]
        assert [e.error for e in errors] == []
        assert srv.hits["/c4.css"] == srv.hits["/c5.css"] == 0


def test_a_page_sent_as_html_that_starts_with_an_inline_svg_is_read_as_a_page():
    # a page without <!doctype> or <html> whose first element is an inline SVG (an icon sprite, a logo): a browser
    # reads it as HTML, as its Content-Type says; it was taken for an SVG file ("SVG is not rasterised")
    with WebServer() as srv:
        srv.add("/i/1.jpg", jpeg(1), "image/jpeg")
        srv.add("/i/2.jpg", jpeg(2), "image/jpeg")
        srv.add("/p.html", '<svg style="display:none"><symbol id="logo"><circle r="4"/></symbol></svg>\n'
                           '<h1>Case 12</h1><img src="/i/1.jpg" alt="chest">'
                           '<svg width="300" height="200"><image href="/i/2.jpg" width="300" height="200"/></svg>')
        shown, errors = read(srv.url("/p.html"))
        assert shown == [("img", "1.jpg"), ("svg", "2.jpg")]
        assert errors == []
        # an SVG file is still one, under its own type or none
        srv.add("/d.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>', "image/svg+xml")
        shown, errors = read(srv.url("/d.svg"))
        assert shown == [] and [e.error for e in errors] == ["SVG is not rasterised (vector drawing skipped)"]
        # and an <img> of one sent as text/html stays the note it was (a browser shows no such <img>)
        srv.add("/logo", b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>', "text/html")
        srv.add("/q.html", '<html><body><img src="/logo"><img src="/i/1.jpg"></body></html>')
        shown, errors = read(srv.url("/q.html"))
        assert shown == [("img", "1.jpg")]
        assert [(e.locator.split(" ")[0], e.error, e.skipped) for e in errors] == [
            ("img", "SVG is not rasterised (vector drawing skipped)", True)]


@requires_browser
def test_an_inline_svgs_image_and_an_image_input_keep_their_place_and_tag_when_rendered():
    # they were images the browser loaded for no element ("response #N", after the page's other pictures)
    page = ('<html><body><svg width="300" height="200"><image href="/i/1.jpg" width="300" height="200"/></svg>'
            '<img src="/i/2.jpg" alt="two"><form><input type="image" src="/i/3.jpg" alt="send"></form></body></html>')
    with WebServer() as srv:
        for n in range(1, 4):
            srv.add(f"/i/{n}.jpg", jpeg(n), "image/jpeg")
        srv.add("/p.html", page)
        static, _ = read(srv.url("/p.html"))
        rendered, errors = read(srv.url("/p.html"), **RENDER)
    assert static == rendered == [("svg", "1.jpg"), ("img", "2.jpg"), ("input", "3.jpg")]
    assert errors == []


# an old XHTML page (XML prolog, the XHTML namespace); with a picture a script adds and one in a thumbnail's link
XHTML = ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
         '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n<html xmlns="http://www.w3.org/1999/xhtml"><body>'
         '<p><img src="/i/1.jpg" alt="chest" /></p><p><a href="/i/3.jpg"><img src="/i/3-thumb.jpg" alt="knee" /></a></p>'
         '<div id="more"></div><script>//<![CDATA[\nvar i = document.createElement("img"); i.src = "/i/2.jpg"; '
         'i.alt = "hand"; document.getElementById("more").appendChild(i);\n//]]></script></body></html>')


def xhtml_site(srv: WebServer) -> None:
    for n in (1, 2, 3):
        srv.add(f"/i/{n}.jpg", jpeg(n, (400, 300)), "image/jpeg")
    srv.add("/i/3-thumb.jpg", jpeg(3, (200, 150)), "image/jpeg")
    for path, ctype in (("/x.xhtml", "application/xhtml+xml"), ("/x.xml", "text/xml"), ("/a.xml", "application/xml")):
        srv.add(path, XHTML.encode(), ctype)


def test_an_xhtml_page_sent_as_xml_is_read_as_a_page():
    # browsers show an XML document in the XHTML namespace as the page it is; it was "not a web page or an image"
    with WebServer() as srv:
        xhtml_site(srv)
        for path in ("/x.xhtml", "/x.xml", "/a.xml"):
            shown, errors = read(srv.url(path))
            assert shown == [("img", "1.jpg"), ("a", "3.jpg")], path
            assert [e.error for e in errors] == ["thumbnail of a #3"], path
        # other XML is still no page
        srv.add("/feed.xml", b'<?xml version="1.0"?><rss><channel><title>x</title></channel></rss>', "text/xml")
        shown, errors = read(srv.url("/feed.xml"))
        assert shown == [] and errors[0].error.startswith("not a web page or an image: text/xml")


@requires_browser
def test_an_xhtml_page_rendered_gives_its_pictures_with_their_tags_and_alt():
    # the collecting script asked for tagName "IMG", which an XHTML page's elements do not have ("img"): every
    # picture was an image the browser loaded for no element (`response #N`, no alt, no thumbnail's link)
    with WebServer() as srv:
        xhtml_site(srv)
        items = list(open_input(srv.url("/x.xhtml"), Limits(**RENDER)))
    shown = [(i.locator.split(" ")[0], i.metadata["url"].rsplit("/", 1)[1], i.metadata["alt"])
             for i in items if isinstance(i, ImageItem)]
    assert shown == [("img", "1.jpg", "chest"), ("a", "3.jpg", "knee"), ("img", "2.jpg", "hand")]
