"""One picture on a page is one image: the same URL again in an iframe, two URLs that redirect to one image,
the same bytes under two URLs (`?v=2`), a srcset the browser chose another candidate of, and a saved page naming
one file twice. Each repeat is a skipped note naming the first; pages without repeats are numbered as before."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image, ImageDraw
from webserver import WebServer

from medimg.sources import ImageItem, ItemError, Limits, browser, open_input, web

OPEN = {"allow_private": True, "connect_timeout": 2, "read_timeout": 2, "total_timeout": 5}  # loopback: the opt-in
RENDER = {**OPEN, "render": True, "connect_timeout": 5, "read_timeout": 5, "total_timeout": 20}
UNAVAILABLE = browser.available()  # None, or why rendering cannot work here (as test_browser.py skips)
requires_browser = pytest.mark.skipif(UNAVAILABLE is not None, reason=f"skipped: {UNAVAILABLE}")


def picture(colour, fmt: str = "PNG", size=(120, 96)) -> bytes:
    """A small real picture: a flat colour with a disc and a bar, so each one's bytes are its own."""
    img = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(img)
    if min(size) > 24:
        draw.ellipse((10, 10, size[0] // 2, size[1] // 2), fill=tuple(255 - c for c in colour))
    draw.rectangle((0, size[1] - 12, size[0], size[1]), fill=(20, 20, 20))
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def images(items) -> list[str]:
    """The URL (a saved page: the path as written) of each image that came out, in order."""
    return [i.metadata["url"] for i in items if isinstance(i, ImageItem)]


def notes(items) -> list[tuple[str, str]]:
    return [(i.locator, i.error) for i in items if isinstance(i, ItemError) and i.skipped]


def run(url, **limits) -> list:
    return list(open_input(url, Limits(**{**OPEN, **limits})))


@pytest.fixture
def srv():
    with WebServer() as server:
        yield server


def test_an_image_an_iframe_shows_again_is_a_note_and_not_fetched_again(srv):
    """The page's own x-ray, shown again by the page it embeds (one level deep), is one image; and the other
    way round, an image the frame gave first is named with the frame."""
    srv.add("/img/xray.png", picture((200, 200, 200)), "image/png")
    srv.add("/img/ct.png", picture((90, 90, 90)), "image/png")
    srv.add("/img/us.png", picture((40, 40, 40)), "image/png")
    srv.add("/inner.html", '<html><body><img src="img/xray.png"><img src="img/us.png"></body></html>')
    srv.add("/page.html", '<html><body><img src="img/xray.png"><iframe src="inner.html"></iframe>'
                          '<img src="img/ct.png"></body></html>')
    srv.add("/first.html", '<html><body><iframe src="inner.html"></iframe><img src="/img/xray.png"></body></html>')
    u = srv.url
    items = run(u("/page.html"))
    assert images(items) == [u("/img/xray.png"), u("/img/us.png"), u("/img/ct.png")]
    assert notes(items) == [(f"iframe #2 {u('/inner.html')}, img #1 {u('/img/xray.png')}",
                             "same image as img #1 (the same URL)")]
    assert items[-1].locator == f"img #3 {u('/img/ct.png')}"  # numbering as without the repeat
    assert srv.hits["/img/xray.png"] == 1  # the frame's copy was not downloaded again

    items = run(u("/first.html"))
    assert images(items) == [u("/img/xray.png"), u("/img/us.png")]
    assert notes(items) == [(f"img #2 {u('/img/xray.png')}", "same image as iframe #1, img #1 (the same URL)")]

    # without repeats, the same page shape comes out whole and numbered as ever
    srv.add("/inner2.html", '<img src="img/us.png"><img src="img/ct.png">')
    srv.add("/plain.html", '<img src="img/xray.png"><iframe src="inner2.html"></iframe><img src="/img/other.png">')
    srv.add("/img/other.png", picture((10, 200, 10)), "image/png")
    items = run(u("/plain.html"))
    assert [i.locator for i in items] == [f"img #1 {u('/img/xray.png')}",
                                          f"iframe #2 {u('/inner2.html')}, img #1 {u('/img/us.png')}",
                                          f"iframe #2 {u('/inner2.html')}, img #2 {u('/img/ct.png')}",
                                          f"img #3 {u('/img/other.png')}"]


def test_two_urls_that_redirect_to_one_image_give_it_once(srv):
    srv.add("/img/xray.png", picture((200, 200, 200)), "image/png")
    srv.add("/img/ct.png", picture((90, 90, 90)), "image/png")
    srv.redirect("/r/xray", "/img/xray.png")
    srv.redirect("/old/xray.png", "/r/xray")  # two hops
    srv.add("/page.html", '<html><body><img src="/r/xray"><img src="/img/ct.png"><img src="/old/xray.png">'
                          '<img src="/img/xray.png"></body></html>')
    u = srv.url
    items = run(u("/page.html"))
    assert images(items) == [u("/r/xray"), u("/img/ct.png")]
    assert notes(items) == [(f"img #3 {u('/old/xray.png')}", "same image as img #1 (the same URL after redirects)"),
                            (f"img #4 {u('/img/xray.png')}", "same image as img #1 (the same URL after redirects)")]


def test_the_same_bytes_under_two_urls_are_one_image_but_repeated_errors_and_decorations_stay(srv):
    """Cache-busting (`?v=2`) and a copy under another name are one picture to a reader; a repeat of an image that
    gave no image (a decoration, an error) is reported as the first was."""
    xray = picture((200, 200, 200), "JPEG")
    srv.add("/img/xray.jpg", xray, "image/jpeg")
    srv.add("/img/xray_copy.jpg", xray, "image/jpeg")
    srv.add("/img/ct.png", picture((90, 90, 90)), "image/png")
    spacer = picture((255, 255, 255), "GIF", size=(1, 1))
    srv.add("/img/s1.gif", spacer, "image/gif")
    srv.add("/img/s2.gif", spacer, "image/gif")
    srv.redirect("/gone1", "/img/missing.png")
    srv.redirect("/gone2", "/img/missing.png")
    srv.add("/page.html", '<html><body><img src="img/s1.gif"><img src="/gone1"><img src="img/xray.jpg">'
                          '<img src="img/xray.jpg?v=2"><img src="img/ct.png"><img src="img/xray_copy.jpg">'
                          '<img src="img/s2.gif"><img src="/gone2"></body></html>')
    u = srv.url
    items = run(u("/page.html"))
    assert images(items) == [u("/img/xray.jpg"), u("/img/ct.png")]
    assert [i.locator for i in items if isinstance(i, ImageItem)] == [f"img #3 {u('/img/xray.jpg')}",
                                                                      f"img #5 {u('/img/ct.png')}"]
    assert [(i.locator.split(" ")[1], i.error, i.skipped) for i in items if isinstance(i, ItemError)] == [
        ("#1", "decoration: 1x1 is below min_side 64", True),
        ("#2", f"HTTP 404 Not Found for {u('/img/missing.png')}", False),
        ("#4", "same image as img #3 (the same bytes)", True),
        ("#6", "same image as img #3 (the same bytes)", True),
        ("#7", "decoration: 1x1 is below min_side 64", True),
        ("#8", f"HTTP 404 Not Found for {u('/img/missing.png')}", False)]


def test_each_candidate_knows_the_other_urls_of_its_element():
    """What the rendered reading compares: src and every srcset entry, a <picture>'s raster sources; only the
    lazy-load URLs when the element has them (its src is then a placeholder many elements share)."""
    html = ('<img src="s.jpg" srcset="s.jpg 300w, l.jpg 1000w">'
            '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-src="real.jpg">'
            '<img src="ph.gif" data-srcset="a.jpg 1x, b.jpg 2x">'
            '<picture><source media="(max-width: 600px)" srcset="m.jpg"><source type="image/svg+xml" srcset="v.svg">'
            '<source type="image/webp" srcset="p.webp 1x, p2.webp 2x"><img src="p.jpg"></picture>')
    got = {c.url.rsplit("/", 1)[-1]: sorted(a.rsplit("/", 1)[-1] for a in c.alternatives)
           for c in web.extract(html, "http://h/", alternatives=True)}
    assert got == {"l.jpg": ["s.jpg"], "real.jpg": [], "b.jpg": ["a.jpg"], "p2.webp": ["m.jpg", "p.jpg", "p.webp"]}
    assert not any(c.alternatives for c in web.extract(html, "http://h/"))  # only the rendered reading asks


def test_a_rendered_srcset_gives_the_browsers_choice_only(srv, monkeypatch):
    """Without a browser: the rendered page loaded the 300w candidate; the HTML's largest one is that same
    element, not an image the browser missed. A lazy image whose placeholder alone loaded is still fetched."""
    srv.add("/img/derm_large.jpg", picture((160, 80, 60), "JPEG"), "image/jpeg")
    srv.add("/img/endo.jpg", picture((180, 60, 60), "JPEG"), "image/jpeg")
    srv.add("/page.html", '<img src="img/derm_small.jpg" srcset="img/derm_small.jpg 300w, img/derm_large.jpg 1000w">'
                          '<img src="img/ph.gif" data-src="img/endo.jpg">')
    u = srv.url
    loaded = [web.Candidate(u("/img/derm_small.jpg"), "img", data=picture((160, 80, 61), "JPEG", (300, 300)),
                            content_type="image/jpeg"),
              web.Candidate(u("/img/ph.gif"), "img", data=picture((255, 255, 255), "GIF", (1, 1)),
                            content_type="image/gif")]
    monkeypatch.setattr(browser, "collect", lambda *args, **kwargs: list(loaded))
    items = run(u("/page.html"), render=True)
    assert images(items) == [u("/img/derm_small.jpg"), u("/img/endo.jpg")]
    assert srv.hits["/img/derm_large.jpg"] == 0


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_rendering_reports_an_img_srcset_and_a_picture_once(srv):
    """Chromium loads the 300w candidate (sizes 300px), the 1x one and the picture's 1x WebP; the HTML's largest
    candidates are the same elements and are not fetched as images the browser missed."""
    names = {"derm_small.jpg": (160, 80, 60), "derm_large.jpg": (161, 81, 61), "fundus.jpg": (200, 120, 40),
             "fundus2x.jpg": (201, 121, 41), "photo.jpg": (60, 160, 80)}
    for name, colour in names.items():
        srv.add(f"/img/{name}", picture(colour, "JPEG"), "image/jpeg")
    srv.add("/img/photo.webp", picture((60, 80, 160), "WEBP"), "image/webp")
    srv.add("/img/photo2x.webp", picture((61, 81, 161), "WEBP"), "image/webp")
    srv.add("/page.html", '<html><body>'
            '<img src="img/derm_small.jpg" srcset="img/derm_small.jpg 300w, img/derm_large.jpg 1000w" sizes="300px">'
            '<img srcset="img/fundus.jpg 1x, img/fundus2x.jpg 2x">'
            '<picture><source type="image/webp" srcset="img/photo.webp 1x, img/photo2x.webp 2x">'
            '<img src="img/photo.jpg"></picture></body></html>')
    u = srv.url
    items = list(open_input(u("/page.html"), Limits(**RENDER)))
    assert images(items) == [u("/img/derm_small.jpg"), u("/img/fundus.jpg"), u("/img/photo.webp")], items
    assert not [i for i in items if isinstance(i, ItemError)], items
    assert srv.hits["/img/derm_large.jpg"] == srv.hits["/img/fundus2x.jpg"] == srv.hits["/img/photo2x.webp"] == 0


def test_a_saved_page_reads_one_file_once(tmp_path):
    """`img/xray.png?v=2` is img/xray.png on disk (the query means nothing there), a link to it is the same file,
    and a copy has the same bytes: one image, and a note naming it for each of the others."""
    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    (site / "img" / "xray.png").write_bytes(picture((200, 200, 200)))
    (site / "img" / "xray_copy.png").write_bytes(picture((200, 200, 200)))
    (site / "img" / "ct.png").write_bytes(picture((90, 90, 90)))
    os.symlink("xray.png", site / "img" / "latest.png")
    (site / "index.html").write_text(
        '<!DOCTYPE html><html><body><img src="img/xray.png"><img src="img/ct.png"><img src="img/xray.png?v=2">'
        '<img src="img/latest.png"><img src="img/xray_copy.png"></body></html>')
    items = list(open_input(site / "index.html"))
    assert images(items) == ["img/xray.png", "img/ct.png"]
    assert notes(items) == [("img #3 img/xray.png", "same image as img #1 (the same file)"),
                            ("img #4 img/latest.png", "same image as img #1 (the same file)"),
                            ("img #5 img/xray_copy.png", "same image as img #1 (the same bytes)")]
