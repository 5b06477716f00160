"""Pages as curators give them, served on 127.0.0.1 (with the private-address opt-in): a CSS url() or image-set()
written with CSS escapes (`url(scan\\(1\\).png)`, `url("\\66 ig.png")`) names the file a browser fetches, in a
<style>, a style attribute, a linked stylesheet and an @import."""

from __future__ import annotations

import io

from PIL import Image
from webserver import WebServer

from medimg.sources import ImageItem, Limits, open_input

OPEN = {"allow_private": True, "connect_timeout": 2, "read_timeout": 2, "total_timeout": 8}  # loopback: the opt-in


def png(shift: int) -> bytes:
    """A 200 x 150 picture of its own (`shift` makes another one)."""
    buf = io.BytesIO()
    Image.effect_mandelbrot((200, 150), (-2 + shift / 10, -1.2, 1, 1.2), 60).convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def images(url: str) -> list[str]:
    """The paths of the images read from the page (as their locators show them)."""
    return [i.metadata["url"].split("/", 3)[3] for i in open_input(url, Limits(**OPEN)) if isinstance(i, ImageItem)]


def test_unescaped_reads_css_escapes():
    from medimg.sources.css import unescaped

    assert unescaped(r"scan\(1\).png") == "scan(1).png"
    assert unescaped(r"image\ 1.png") == "image 1.png"
    assert unescaped(r"\66 ig.png") == "fig.png"  # a hex escape and the one space that ends it
    assert unescaped(r"\000066ig.png") == "fig.png"  # six digits need no space
    assert unescaped('a\\\nb.png') == "ab.png"  # an escaped line end in a string is nothing
    assert unescaped(r"\D800.png") == "\ufffd.png" and unescaped(r"\0.png") == "\ufffd.png"
    assert unescaped("plain.png") == "plain.png" and unescaped(None) is None


def test_css_escapes_in_page_styles_name_the_file_a_browser_fetches():
    with WebServer() as srv:
        srv.add("/p/scan(1).png", png(0), "image/png")
        srv.add("/p/image%202.png", png(3), "image/png")
        srv.add("/p/fig.png", png(6), "image/png")  # a route is the path as requested
        srv.add("/p/q'x.png", png(9), "image/png")
        page = ("<!doctype html><style>.a{background:url(scan\\(1\\).png)}"
                ".c{background-image:image-set('q\\'x.png' 1x)}</style>"
                "<div class=a></div><div class=c></div>"
                "<div style='background:url(image\\ 2.png)'></div>"
                "<div style='background-image:url(\"\\66 ig.png\")'></div>")
        got = images(srv.add("/p/page.html", page))
    # before: the first three were not found at all and the fourth was fetched as /66 ig.png (the backslash read as
    # a slash)
    assert got == ["p/scan(1).png", "p/q'x.png", "p/image 2.png", "p/fig.png"]


def test_css_escapes_in_linked_and_imported_sheets():
    with WebServer() as srv:
        srv.add("/p/hero%20(1).png", png(0), "image/png")
        srv.add("/css/fig.png", png(4), "image/png")
        srv.add("/css/main.css", "@import url(\"imp\\6f rted.css\");\n.hero{background:url(\"../p/hero\\ (1).png\")}",
                "text/css")
        srv.add("/css/imported.css", ".b{background-image:url(\\66 ig.png)}", "text/css")
        page = "<!doctype html><link rel=stylesheet href='/css/main.css'><div class=hero></div><p class=b>x</p>"
        got = images(srv.add("/p/page.html", page))
        assert srv.hits["/css/imported.css"] == 1  # before: the @import's escape was read as a slash
    assert got == ["css/fig.png", "p/hero (1).png"]  # an imported sheet's images come before its importer's
