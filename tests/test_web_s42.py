"""Real-world page shapes, served on 127.0.0.1 (with the private-address opt-in), read as a browser reads them:
pages in the East Asian charsets their sites label them with (`shift_jis`, `gb2312`, `euc-kr`, which browsers read as
windows-31J, GBK and windows-949), and a web component's declarative shadow root (`<template shadowrootmode>`)."""

from __future__ import annotations

import io
from urllib.parse import quote

import pytest
from PIL import Image
from test_browser import RENDER, requires_browser
from webserver import WebServer

from medimg.sources import ImageItem, ItemError, Limits, open_input
from medimg.sources.charset import known_codec

OPEN = {"allow_private": True, "connect_timeout": 2, "read_timeout": 2, "total_timeout": 8}  # loopback: the opt-in


def png(shift: int) -> bytes:
    """A 200 x 150 picture of its own (`shift` makes another one)."""
    buf = io.BytesIO()
    Image.effect_mandelbrot((200, 150), (-2 + shift / 10, -1.2, 1, 1.2), 60).convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def read(url: str, **limits) -> tuple[list[str], list[str]]:
    """(the paths of the images read, the errors) of the page."""
    items = list(open_input(url, Limits(**{**OPEN, **limits})))
    shown = [i.metadata["url"].split("/", 3)[3] for i in items if isinstance(i, ImageItem)]
    return shown, [i.error for i in items if isinstance(i, ItemError) and not i.skipped]


def test_browser_charset_labels_are_read_with_the_codec_browsers_use():
    assert known_codec("Shift_JIS") == known_codec("x-sjis") == known_codec("windows-31j") == "cp932"
    assert known_codec("gb2312") == known_codec("GBK") == known_codec("x-gbk") == "gb18030"
    assert known_codec("euc-kr") == known_codec("ks_c_5601-1987") == "cp949"
    assert known_codec("big5") == "big5hkscs" and known_codec("iso-8859-9") == known_codec("x-cp1254") == "cp1254"
    assert known_codec("tis-620") == "cp874" and known_codec("x-cp1251") == "cp1251"
    assert known_codec("iso-8859-1") == "windows-1252" and known_codec("windows-1251") == "windows-1251"
    assert known_codec("base64") is None and known_codec("no-such-charset") is None


# (the page's label, the codec its site wrote it in, the file name: characters the strict codec Python names so lacks)
EAST_ASIAN = [("shift_jis", "cp932", "画像①～2.png"), ("gb2312", "gbk", "张喆.png"), ("euc-kr", "cp949", "똠방.png")]


def _encoded(name: str) -> str:
    return quote(name)  # a path goes as UTF-8


@pytest.mark.parametrize("label,codec,name", EAST_ASIAN)
def test_a_page_in_an_east_asian_charset_names_the_files_a_browser_fetches(label, codec, name):
    with WebServer() as srv:
        srv.add("/i/" + _encoded(name), png(1), "image/png")
        query = "①" if codec == "cp932" else name[:1]
        sent = "q.png?n=" + quote(query, safe="", encoding=codec)  # a query goes in the page's own charset
        srv.add("/i/" + sent, png(2), "image/png")
        page = (f'<html><head><meta charset="{label}"><title>{name}</title></head><body>'
                f'<img src="/i/{name}" alt="{name}"><img src="/i/q.png?n={query}"></body></html>').encode(codec)
        shown, errors = read(srv.add("/page.html", page, "text/html"))
    # before: the strict codec read the characters as U+FFFD, and both were a 404
    assert shown == ["i/" + name, "i/" + sent], errors
    assert errors == []


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_a_rendered_shift_jis_page_gives_each_picture_once_and_no_404():
    name = "画像①～2.png"
    with WebServer() as srv:
        srv.add("/i/" + _encoded(name), png(1), "image/png")
        page = f'<html><head><meta charset="shift_jis"></head><body><img src="/i/{name}"></body></html>'
        url = srv.add("/page.html", page.encode("cp932"), "text/html")
        shown, errors = read(url, **RENDER)
    # before: the browser's image, then the static reading's own URL for it as a 404 error row
    assert shown == ["i/" + _encoded(name)] and errors == []  # the browser writes the URL so


def test_a_declarative_shadow_roots_images_are_read_and_an_inert_templates_are_not():
    with WebServer() as srv:
        for n in range(4):
            srv.add(f"/i/{n}.png", png(n), "image/png")
        page = ("<html><body><p-card><template shadowrootmode=open><img src=/i/0.png alt=open>"
                "<x-inner><template shadowrootmode=closed><div style='background:url(/i/1.png)'></div></template>"
                "</x-inner></template><span>light</span></p-card>"
                "<template id=row><img src=/i/2.png></template><img src=/i/3.png></body></html>")
        shown, errors = read(srv.add("/page.html", page))
        inert = srv.hits["/i/2.png"]
    # before: only i/3.png (a template's content is no part of the parsed tree)
    assert shown == ["i/0.png", "i/1.png", "i/3.png"] and errors == []
    assert inert == 0  # a plain <template> is content for scripts: a browser loads none of it


def _pixel_page(srv: WebServer) -> str:
    srv.add("/i/0.png", png(0), "image/png")
    srv.add("/tr", b"", "image/gif", status=204)  # a beacon that answers "No Content"
    srv.add("/big.png", png(5), "image/png")
    return srv.add("/page.html", "<html><body><img src=/i/0.png>"
                   "<img src='/tr?id=1&ev=PageView' width=1 height=1 style='display:none'>"
                   "<noscript><img height='1' width='1px' src='/tr?id=2&noscript=1'></noscript>"
                   "<img src=/gone.png width=1 height=1><img src=/big.png width=1 height=1>"
                   "<img src=/missing.png width=1 height=20></body></html>")


def _notes(url: str, **limits) -> tuple[list[str], list[str], list[str]]:
    items = list(open_input(url, Limits(**{**OPEN, **limits})))
    return ([i.metadata["url"].split("/", 3)[3] for i in items if isinstance(i, ImageItem)],
            [i.error for i in items if isinstance(i, ItemError) and not i.skipped],
            [i.error for i in items if isinstance(i, ItemError) and i.skipped])


def test_a_tracking_pixel_that_answers_no_image_is_a_note_not_an_error():
    with WebServer() as srv:
        shown, errors, notes = _notes(_pixel_page(srv))
    # before: three error rows (two "not an image: got image/gif (0 bytes)", a 404) for beacons no one sees
    assert shown == ["i/0.png", "big.png"]  # a picture sized 1x1 by its page is still read when it is one
    assert len(errors) == 1 and "missing.png" in errors[0]  # 1 x 20 is no beacon
    assert sum(n.startswith("a tracking pixel (1x1 in the page)") for n in notes) == 3, notes


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_a_rendered_pages_tracking_pixel_is_a_note_too():
    with WebServer() as srv:
        shown, errors, notes = _notes(_pixel_page(srv), **RENDER)
    assert "i/0.png" in shown and len(errors) == 1 and "missing.png" in errors[0], errors
    assert sum(n.startswith("a tracking pixel (1x1 in the page)") for n in notes) == 3, notes
