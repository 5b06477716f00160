"""A page's external stylesheets are read for the background images of its elements: a rule's images count only
when its selector matches an element of this page, its url()s resolve against the sheet, @media for print (or a
phone) is passed over, @imports are read one level deep, and a sheet that cannot be read (too large, refused,
missing) is one note saying why. Rendering finds them once, as the browser loaded them."""

from __future__ import annotations

import threading

import pytest
from test_web_duplicates import OPEN, RENDER, images, notes, picture, requires_browser, run
from webserver import WebServer

from medimg.sources import ImageItem, Limits, web
from medimg.sources.base import Context

SHEET_BYTES = 2 * 1024 * 1024  # css.SHEET_BYTES (named here, so these tests run, and fail, without it)


@pytest.fixture
def srv():
    with WebServer() as server:
        yield server


def page(srv, path: str, head: str, body: str) -> str:
    return srv.add(path, f"<!doctype html><html><head>{head}</head><body>{body}</body></html>")


def sheet(srv, path: str, text: str) -> str:
    return srv.add(path, text, "text/css")


def test_a_background_an_element_of_the_page_uses_is_found_after_the_pages_own_images(srv):
    srv.add("/a.png", picture((10, 20, 30)), "image/png")
    srv.add("/img/hero.jpg", picture((200, 30, 30), "JPEG"), "image/jpeg")
    srv.add("/img/banner.jpg", picture((30, 200, 30), "JPEG"), "image/jpeg")
    sheet(srv, "/site.css", "body { margin: 0 } .hero { background: #fff url('/img/hero.jpg') center / cover }\n"
                            ".banner { background-image: url(/img/banner.jpg) }")
    url = page(srv, "/page.html", '<link rel="stylesheet" href="site.css">', '<div class="hero big"></div>'
                                                                             '<img src="a.png">')
    items = run(url)
    assert images(items) == [srv.url("/a.png"), srv.url("/img/hero.jpg")]
    assert [i.locator for i in items if isinstance(i, ImageItem)][1] == f"css #2 {srv.url('/img/hero.jpg')}"
    assert notes(items) == []  # every sheet was read
    assert srv.hits["/site.css"] == 1 and srv.hits["/img/banner.jpg"] == 0
    # the hero is sometimes a page's only picture
    only = page(srv, "/only.html", '<link rel="stylesheet" href="site.css">', '<section id="top" class="hero">')
    assert images(run(only)) == [srv.url("/img/hero.jpg")]


def test_a_rule_whose_selector_matches_no_element_gives_nothing(srv):
    for name in ("gone", "id", "hover", "child", "lang", "before"):
        srv.add(f"/{name}.png", picture((len(name) * 20, 90, 90)), "image/png")
    sheet(srv, "/site.css", ".gone { background: url(gone.png) } #other { background: url(id.png) }\n"
                            ".card:hover { background: url(hover.png) } .card > span { background: url(child.png) }\n"
                            ".card:lang(en) { background: url(lang.png) }\n"  # lexbor cannot read it: no match
                            ".card::before { content: url(before.png) }")  # shown where its element is
    items = run(page(srv, "/page.html", '<link rel="stylesheet" href="site.css">', '<p class="card" id="c">text</p>'))
    assert images(items) == [srv.url("/before.png")]
    assert all(srv.hits[f"/{n}.png"] == 0 for n in ("gone", "id", "hover", "child", "lang"))


def test_a_sheets_urls_resolve_against_the_sheet_not_the_page(srv):
    srv.add("/styles/v2/pics/x.png", picture((200, 200, 0)), "image/png")
    srv.add("/pics/x.png", picture((0, 0, 200)), "image/png")  # where the page's own folder would lead
    srv.add("/styles/pics/up.png", picture((0, 200, 200)), "image/png")
    sheet(srv, "/styles/v2/site.css", ".x { background: url(pics/x.png) } .up { list-style-image: url(../pics/up.png) }")
    items = run(page(srv, "/page.html", '<link rel="stylesheet" href="styles/v2/site.css">',
                     '<div class="x"></div><ul class="up"><li>a</li></ul>'))
    assert images(items) == [srv.url("/styles/v2/pics/x.png"), srv.url("/styles/pics/up.png")]
    assert srv.hits["/pics/x.png"] == 0


def test_media_for_print_or_a_phone_is_passed_over(srv):
    for name in ("print", "phone", "wide", "linked"):
        srv.add(f"/{name}.png", picture((len(name) * 30, 40, 40)), "image/png")
    sheet(srv, "/site.css", "@media print { .hero { background: url(print.png) } }\n"
                            "@media (max-width: 600px) { .hero { background: url(phone.png) } }\n"
                            "@media screen and (min-width: 800px) { @supports (display: grid) { .hero { "
                            "background: url(wide.png) } } }\n@font-face { font-family: X; src: url(x.woff2) }\n"
                            "@keyframes k { from { background: url(linked.png) } }")
    sheet(srv, "/print.css", ".hero { background: url(linked.png) }")
    items = run(page(srv, "/page.html", '<link rel="stylesheet" href="site.css"><link rel="stylesheet" '
                     'href="print.css" media="print">', '<div class="hero"></div>'))
    assert images(items) == [srv.url("/wide.png")]
    assert srv.hits["/print.css"] == 0 and srv.hits["/print.png"] == srv.hits["/phone.png"] == 0
    assert srv.hits["/linked.png"] == 0 and notes(items) == []


def test_imports_are_read_one_level_deep(srv):
    for name in ("x", "y", "z", "s"):
        srv.add(f"/img/{name}.png", picture((ord(name) * 2 % 255, 60, 60)), "image/png")
    sheet(srv, "/css/a.css", '@charset "utf-8"; @import "sub/b.css"; @import url(p.css) print;\n'
                             ".x { background: url(../img/x.png) }")
    sheet(srv, "/css/sub/b.css", "@import 'c.css'; .y { background: url(../../img/y.png) }")
    sheet(srv, "/css/sub/c.css", ".z { background: url(/img/z.png) }")
    sheet(srv, "/css/s.css", ".s { background: url(../img/s.png) }")
    items = run(page(srv, "/page.html", '<style>@import url(css/a.css); @import "css/s.css";</style>',
                     '<i class="x"></i><i class="y"></i><i class="z"></i><i class="s"></i>'))
    # an imported sheet's rules come before those of the sheet importing it, as the cascade reads them
    assert images(items) == [srv.url("/img/y.png"), srv.url("/img/x.png"), srv.url("/img/s.png")]
    assert notes(items) == [("", "1 external stylesheet not read (1 imported by an imported sheet): a background "
                                 "image set there is found only with --render")]
    assert srv.hits["/css/sub/c.css"] == srv.hits["/css/p.css"] == 0


def test_a_sheet_over_the_byte_cap_is_a_note(srv):
    srv.add("/a.png", picture((10, 200, 30)), "image/png")
    big = ".hero { background: url(a.png) }\n" + "/* padding */\n" * (SHEET_BYTES // 14 + 10)
    sheet(srv, "/big.css", big)
    sheet(srv, "/small.css", ".hero { background: url(a.png) }" + " " * 3000)
    url = page(srv, "/page.html", '<link rel="stylesheet" href="big.css">', '<div class="hero"></div><img src="a.png">')
    items = run(url)
    assert images(items) == [srv.url("/a.png")]
    assert notes(items) == [("", f"1 external stylesheet not read (too large: {srv.url('/big.css')} declares "
                                 f"{len(big)} bytes, over the cap of {SHEET_BYTES} bytes): a background image "
                                 "set there is found only with --render")]
    # the cap is the smaller of the two
    items = run(page(srv, "/small.html", '<link rel="stylesheet" href="small.css">', '<div class="hero"></div>'),
                max_download_bytes=2000)
    assert notes(items)[-1][1].startswith(f"1 external stylesheet not read (too large: {srv.url('/small.css')}")


def test_at_most_eight_sheets_a_page_are_read(srv):
    srv.add("/a.png", picture((10, 200, 30)), "image/png")
    for i in range(10):
        sheet(srv, f"/s{i}.css", f".c{i} {{ background: url(a.png?{i}) }}")
    links = "".join(f'<link rel="stylesheet" href="s{i}.css">' for i in range(10)) + '<link rel="stylesheet" href=s0.css>'
    items = run(page(srv, "/page.html", links, '<b class="c9">x</b><b class="c1">y</b>'))
    assert images(items) == [srv.url("/a.png?1")]  # ?9 is in a sheet past the cap
    assert notes(items) == [("", "2 external stylesheets not read (2 over the cap of 8 a page): a background image "
                                 "set there is found only with --render")]
    assert sum(srv.hits[f"/s{i}.css"] for i in range(10)) == 8


def read(html: str, page_url: str, **limits) -> list:
    """A page's items as web.open_url gives them, for a page that is not fetched (its address is any)."""
    ctx = Context(Limits(**limits))
    fetcher = web.net.Fetcher(ctx.limits, ctx.cancel)
    return list(web.fetch_images(page_url, page_url, web.extract(html, page_url), ctx, fetcher))


def test_a_sheet_at_a_private_address_is_refused_unless_allowed(srv):
    srv.add("/a.png", picture((200, 10, 200)), "image/png")
    sheet(srv, "/s.css", ".hero { background: url(a.png) }")
    html = f'<link rel="stylesheet" href="{srv.url("/s.css")}"><div class="hero"></div>'
    items = read(html, "http://public.example/page.html", connect_timeout=2, total_timeout=5)
    assert images(items) == [] and srv.hits["/s.css"] == 0
    (note,) = [n for _, n in notes(items) if "stylesheet" in n]
    assert note.startswith(f"1 external stylesheet not read ({srv.url('/s.css')}: refused: host 127.0.0.1 is a "
                           "loopback address"), note
    items = read(html, "http://public.example/page.html", **OPEN)
    assert images(items) == [srv.url("/a.png")] and srv.hits["/s.css"] == 1


def test_rules_matched_are_capped_and_the_note_says_so(srv, monkeypatch):
    monkeypatch.setattr("medimg.sources.css.MAX_RULES", 2)
    for i in range(5):
        srv.add(f"/{i}.png", picture((10, 40 * i, 30)), "image/png")
    sheet(srv, "/s.css", "".join(f".c{i} {{ background: url({i}.png) }}\n" for i in range(5)))
    items = run(page(srv, "/page.html", '<link rel="stylesheet" href="s.css">',
                     "".join(f'<b class="c{i}">x</b>' for i in range(5))))
    assert images(items) == [srv.url("/0.png"), srv.url("/1.png")]
    assert notes(items) == [("", "3 stylesheet rules that name an image were not matched against the page (at most "
                                 "2 are, within 2 s): a background image they set is found only with --render")]


def test_a_cancelled_run_stops_reading_sheets(srv):
    srv.slow("/slow.css", b".hero { background: url(a.png) }" * 10, interval=0.2, content_type="text/css")
    cancel = threading.Event()
    ctx = Context(Limits(**OPEN), cancel=cancel)
    html = f'<link rel="stylesheet" href="{srv.url("/slow.css")}"><div class="hero"></div>'
    url = srv.url("/page.html")
    threading.Timer(0.3, cancel.set).start()
    items = list(web.fetch_images(url, url, web.extract(html, url), ctx, web.net.Fetcher(ctx.limits, ctx.cancel)))
    (note,) = [n for _, n in notes(items) if "stylesheet" in n]
    assert note.startswith("1 external stylesheet not read (cancelled"), note


@requires_browser
def test_rendering_finds_a_sheets_background_once(srv):
    srv.add("/a.png", picture((10, 20, 30)), "image/png")
    srv.add("/img/hero.jpg", picture((200, 30, 30), "JPEG"), "image/jpeg")
    sheet(srv, "/css/site.css", ".hero { width: 300px; height: 200px; background: url(../img/hero.jpg) }")
    url = page(srv, "/page.html", '<link rel="stylesheet" href="css/site.css">', '<div class="hero"></div>'
                                                                                 '<img src="a.png">')
    items = run(url, **RENDER)
    assert sorted(images(items)) == [srv.url("/a.png"), srv.url("/img/hero.jpg")], items
    assert not [n for n in notes(items) if "same image" in n[1] or "stylesheet" in n[1]]
    assert srv.hits["/css/site.css"] == 1  # the browser's reading only
