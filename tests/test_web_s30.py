"""A page that declares no charset is read as a browser reads it, its image URLs written as the browser writes
them (so rendering and the static reading agree); a thumbnail deep inside its link is still paired with the full
image, and is not downloaded when that image is read; a <style>'s @import is an external stylesheet too."""

from __future__ import annotations

import pytest
from test_web_duplicates import RENDER, images, notes, picture, requires_browser, run
from test_web_finding import gallery
from webserver import WebServer

from medimg.sources import ItemError, net, web


@pytest.fixture
def srv():
    with WebServer() as server:
        yield server


# an image named "é.png" (on disk, and so in its URL's path, in UTF-8), asked for with "é" in its query too
NAMED = '<html><body><p>Caf\u00e9 case</p><img src="\u00e9.png?n=\u00e9&amp;c=&#x4e2d;"></body></html>'


def undeclared(srv, encoding: str) -> str:
    """The page in `encoding`, served as text/html with no charset anywhere."""
    srv.add("/%C3%A9.png", picture((200, 40, 40)), "image/png")
    return srv.add(f"/{encoding}.html", NAMED.encode(encoding), "text/html")


@pytest.mark.parametrize("data, ctype, charset", [
    ("caf\u00e9".encode(), "text/html", "utf-8"),  # none declared: valid UTF-8 is UTF-8
    ("caf\u00e9".encode("cp1252"), "text/html", "windows-1252"),  # else a browser's fallback
    (b"cafe", None, "windows-1252"),  # ASCII only: the fallback too (it decides how a query is written)
    (b"<meta charset='us-ascii'>caf\xe9", None, "windows-1252"),  # browsers read ASCII and Latin-1 as windows-1252
    (b"<meta charset='iso-8859-2'>x", "text/html; charset=x-nobody-knows", "iso-8859-2"),  # an unknown label: next
    (b"<meta charset='base64'>caf\xc3\xa9", None, "utf-8"),  # no text encoding: none
])
def test_the_charset_a_page_is_read_in(data, ctype, charset):
    assert web.page_charset(data, ctype) == charset


def test_an_undeclared_windows_1252_page_names_its_non_ascii_image_as_a_browser_does(srv):
    """Read as UTF-8, its "é" was U+FFFD and the image a 404. The path goes as UTF-8, the query in the page's
    charset (%E9), a character the charset lacks as `&#N;` (Chromium sends exactly this URL)."""
    items = run(undeclared(srv, "cp1252"))
    assert images(items) == [srv.url("/\u00e9.png?n=%E9&c=%26%2320013%3B")], items
    assert not [i for i in items if isinstance(i, ItemError)], items
    assert srv.hits["/%C3%A9.png"] == 1
    (cand,) = web.extract(NAMED.encode("cp1252"), "http://h/", "text/html; charset=windows-1252")
    assert cand.url == "http://h/\u00e9.png?n=%E9&c=%26%2320013%3B"


def test_an_undeclared_utf8_page_is_read_as_utf8(srv):
    items = run(undeclared(srv, "utf-8"))
    assert images(items) == [srv.url("/\u00e9.png?n=\u00e9&c=\u4e2d")], items
    assert srv.hits["/%C3%A9.png"] == 1


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(120)
@pytest.mark.parametrize("guarded", [False, True])
@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_a_rendered_undeclared_page_gives_its_non_ascii_image_once(srv, monkeypatch, encoding, guarded):
    """Chromium read an undeclared UTF-8 page as windows-1252 ("Ã©.png", a 404) and the static reading a
    windows-1252 one as UTF-8 (U+FFFD, a 404): each such image was two rows, one of them an error. Now both
    readings take the same charset (the browser is told UTF-8 when the bytes are), with the guard making the
    page's requests (a public site) or not (--allow-private)."""
    if guarded:
        real = net.blocked_reason  # 127.0.0.1 plays a public site
        monkeypatch.setattr(net, "blocked_reason", lambda ip: None if str(ip) == "127.0.0.1" else real(ip))
    items = run(undeclared(srv, encoding), **{**RENDER, "allow_private": not guarded})
    assert len(images(items)) == 1, items
    assert not [i for i in items if isinstance(i, ItemError)], items
    assert srv.hits["/%C3%83%C2%A9.png"] == 0 and srv.hits["/%EF%BF%BD.png"] == 0


# --- a thumbnail deep inside its link ---------------------------------------------------------------------------

DEEP = ('<html><body><a href="img/full.jpg"><div class="card"><figure><picture><span>'
        '<img src="img/thumb.jpg" alt="case"></span></picture></figure></div></a></body></html>')


def test_a_thumbnail_deep_inside_its_link_is_paired_with_the_full_image(srv):
    """Five levels between the <a> and the <img> (a card, a figure, a picture, a span): the link was looked for
    only three levels up, so the thumbnail was an image of its own beside the full one."""
    srv.add("/img/full.jpg", picture((160, 80, 60), "JPEG", (800, 600)), "image/jpeg")
    srv.add("/img/thumb.jpg", picture((161, 81, 61), "JPEG", (120, 90)), "image/jpeg")
    items = run(srv.add("/deep.html", DEEP))
    assert images(items) == [srv.url("/img/full.jpg")], items
    assert notes(items) == [(f"img #1 {srv.url('/img/thumb.jpg')}", "thumbnail of a #2")]


def test_the_link_around_a_thumbnail_is_looked_for_only_so_far_up():
    """Past LINK_DEPTH levels (a whole page inside one link) an image is no thumbnail of what the link leads to."""
    def found(levels: int) -> list[tuple[str, str | None]]:
        html = ('<a href="full.jpg">' + "<div>" * (levels - 1) + '<img src="thumb.jpg">' + "</div>" * (levels - 1)
                + "</a>")
        return [(c.url.rsplit("/", 1)[-1], c.full) for c in web.extract(html, "http://h/")]

    assert found(web.LINK_DEPTH) == [("thumb.jpg", "http://h/full.jpg"), ("full.jpg", None)]
    assert found(web.LINK_DEPTH + 1) == [("thumb.jpg", None)]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_thumbnail_whose_full_image_is_read_is_never_downloaded(srv, concurrency):
    """A thumbnail was downloaded, then turned into a note once its full image gave an image. Now it waits for
    that image: never fetched when it gives one (the full image later on the page, or earlier), fetched and
    classified when it does not (a 404, a decoration, a page behind the link)."""
    url = gallery(srv)
    u = srv.url
    items = run(url, max_concurrency=concurrency)
    assert images(items) == [u("/img/xray.png"), u("/img/big_derm.jpg"), u("/img/thumb_gone.jpg"),
                             u("/img/thumb_tiny.png"), u("/img/thumb_page.png"), u("/img/ct.png")]
    assert notes(items) == [(f"img #2 {u('/img/thumb_derm.jpg')}", "thumbnail of a #3"),
                            (f"a #7 {u('/img/tiny.png')}", "decoration: 8x8 is below min_side 64"),
                            (f"a #9 {u('/img/page.jpg')}", "a link to a page, not an image (39 bytes of HTML)"),
                            (f"img #11 {u('/img/thumb_ct.png')}", "thumbnail of img #10")]
    assert srv.hits["/img/thumb_derm.jpg"] == srv.hits["/img/thumb_ct.png"] == 0
    assert all(srv.hits[f"/img/{name}"] == 1 for name in ("thumb_gone.jpg", "thumb_tiny.png", "thumb_page.png",
                                                           "big_derm.jpg", "gone.jpg", "tiny.png", "page.jpg"))


def test_a_thumbnail_whose_full_image_is_itself_a_thumbnail_is_read(srv):
    """b.jpg is a thumbnail of c.jpg, and a.jpg one of b.jpg: b is a note (so gave no image of its own), and a,
    its full image no image, is read."""
    for name, colour in (("a", (10, 200, 10)), ("b", (10, 10, 200)), ("c", (200, 10, 10))):
        srv.add(f"/{name}.jpg", picture(colour, "JPEG"), "image/jpeg")
    items = run(srv.add("/chain.html", '<a href="c.jpg"><img src="b.jpg"></a><a href="b.jpg"><img src="a.jpg"></a>'),
                max_concurrency=1)
    assert images(items) == [srv.url("/c.jpg"), srv.url("/a.jpg")], items
    assert notes(items) == [(f"img #1 {srv.url('/b.jpg')}", "thumbnail of a #2")]
    assert srv.hits["/b.jpg"] == 0


# --- @import in a <style> ---------------------------------------------------------------------------------------

def test_a_styles_imports_are_external_stylesheets(srv):
    """`@import url(…)` and `@import "…"` in a <style> load stylesheets as a <link> does (one for print does not
    apply to a screen): read, or counted in the note when they cannot be."""
    srv.add("/a.png", picture((1, 2, 3)), "image/png")
    srv.add("/page.html", '<html><head><link rel="stylesheet" href="main.css"><style>@import url("theme.css");\n'
                          "@IMPORT 'print.css' print; .x { background: url(a.png) }</style></head><body></body></html>")
    items = run(srv.url("/page.html"))
    assert images(items) == [srv.url("/a.png")]
    assert notes(items) == [("", f"2 external stylesheets not read (HTTP 404 Not Found for {srv.url('/main.css')}; "
                                 f"HTTP 404 Not Found for {srv.url('/theme.css')}): a background image set there is "
                                 "found only with --render")]
    assert srv.hits["/theme.css"] == 1 and srv.hits["/print.css"] == 0
    assert web.extract("<style>.x { color: red }</style><img src=a.png>", "http://h/").stylesheets == 0
