"""Web pages as sites write them in 2026, served on 127.0.0.1 (session 45)."""

from __future__ import annotations

import pytest
from builders import blocks_jpeg as jpeg
from webserver import WebServer, read

from medimg.sources import ImageItem, ItemError, Limits, browser, open_input

UNAVAILABLE = browser.available()  # None, or why rendering cannot work here
requires_browser = pytest.mark.skipif(UNAVAILABLE is not None, reason=f"skipped: {UNAVAILABLE}")
RENDER = dict(allow_private=True, render=True, connect_timeout=5, read_timeout=5, total_timeout=30)


# a gallery a script builds: thumbnails, each in a link to its full image, as the static page would write them
JS_GALLERY = """<!doctype html><html><body><div id="app"></div><script>
for (let n = 0; n < 3; n++) {
  const a = document.createElement("a"); a.href = "/g/" + n + ".jpg";
  const img = document.createElement("img"); img.src = "/g/" + n + "-thumb.jpg"; img.alt = "case " + n;
  a.appendChild(img); document.getElementById("app").appendChild(a);
}
</script></body></html>"""


@requires_browser
def test_a_gallery_a_script_builds_gives_the_full_images_its_thumbnails_link_to():
    with WebServer() as srv:
        for n in range(3):
            srv.add(f"/g/{n}.jpg", jpeg(n, (400, 300)), "image/jpeg")
            srv.add(f"/g/{n}-thumb.jpg", jpeg(n, (200, 150)), "image/jpeg")
        srv.add("/gallery.html", JS_GALLERY)
        items = list(open_input(srv.url("/gallery.html"), Limits(**RENDER)))
    shown = [(i.locator.split(" ")[0], i.metadata["url"].rsplit("/", 1)[1], i.metadata["alt"])
             for i in items if isinstance(i, ImageItem)]
    # as the static reading of the same markup: each full image once, its thumbnail a note naming it
    assert shown == [("a", "0.jpg", "case 0"), ("a", "1.jpg", "case 1"), ("a", "2.jpg", "case 2")]
    notes = [(e.locator.split(" ")[0:2], e.error) for e in items if isinstance(e, ItemError)]
    assert notes == [(["img", "#1"], "thumbnail of a #2"), (["img", "#3"], "thumbnail of a #4"),
                     (["img", "#5"], "thumbnail of a #6")]


def test_a_page_that_only_sends_the_browser_on_by_a_meta_refresh_gives_the_images_of_the_page_it_sends_to():
    with WebServer() as srv:
        srv.add("/new/a.jpg", jpeg(1, (300, 200)), "image/jpeg")
        srv.add("/new/b.jpg", jpeg(2, (300, 200)), "image/jpeg")
        srv.add("/new/case.html", '<html><body><img src="a.jpg"><img src="b.jpg"></body></html>')
        srv.add("/scan.jpg", jpeg(3, (300, 200)), "image/jpeg")
        # an old address: "this page has moved", in the forms sites write it
        srv.add("/old.html", '<html><head><meta http-equiv="Refresh" content="0; URL=\'/new/case.html\'">'
                             '</head><body>This page has moved.</body></html>')
        srv.add("/hop.html", '<meta http-equiv="refresh" content="3;url=old.html">')
        srv.add("/to-image", '<meta http-equiv="refresh" content="0, /scan.jpg">')
        shown, errors = read(srv.url("/hop.html"))
        assert shown == [("img", "a.jpg"), ("img", "b.jpg")]
        assert not errors
        shown, errors = read(srv.url("/to-image"))  # a refresh to the file itself: read as that file
        assert shown == [("", "")] and not errors  # the file itself: no locator, no page


def test_meta_refreshes_in_a_loop_end_in_one_clear_error_and_a_page_with_images_is_read_itself():
    with WebServer() as srv:
        srv.add("/a.jpg", jpeg(4, (300, 200)), "image/jpeg")
        srv.add("/b.jpg", jpeg(5, (300, 200)), "image/jpeg")
        srv.add("/p1", '<meta http-equiv="refresh" content="0; url=/p2">')
        srv.add("/p2", '<meta http-equiv="refresh" content="0; url=/p1">')
        srv.add("/self", '<meta http-equiv="refresh" content="30">')  # reloads itself: nothing to follow
        srv.add("/news", '<meta http-equiv="refresh" content="300; url=/other"><img src="/a.jpg">')
        shown, errors = read(srv.url("/p1"), max_redirects=3)
        assert shown == [] and [e.error for e in errors] == [
            f"too many meta refreshes (more than 3) starting at {srv.url('/p1')}"]
        assert not errors[0].skipped
        assert srv.hits["/p1"] + srv.hits["/p2"] == 4
        shown, errors = read(srv.url("/self"))
        assert [e.error for e in errors] == ["no images found on the page"]
        shown, errors = read(srv.url("/news"))  # its own images: the page is read, not the one it goes on to
        assert shown == [("img", "a.jpg")] and srv.hits["/other"] == 0


# a tall page whose last picture a script adds only when its bottom scrolls into view, and an ad at its top whose
# server sends the headers and then nothing: the page's `load` never comes
STALLED_AD_PAGE = """<!doctype html><html><body><img src="/ad.gif" width="300" height="250">
<div style="height: 4000px">a tall page</div><div id="end">end</div><script>
new IntersectionObserver((seen, watch) => seen.forEach(e => { if (e.isIntersecting) {
  const img = document.createElement("img"); img.src = "/late.jpg"; img.alt = "late";
  document.getElementById("end").appendChild(img); watch.disconnect(); } })).observe(document.getElementById("end"));
</script></body></html>"""


@requires_browser
def test_an_image_that_never_finishes_does_not_keep_rendering_from_scrolling_to_what_only_scrolling_shows():
    with WebServer() as srv:
        srv.add("/late.jpg", jpeg(7, (300, 200)), "image/jpeg")
        srv.slow("/ad.gif", b"GIF89a" + bytes(100), interval=120, content_type="image/gif")
        srv.add("/page.html", STALLED_AD_PAGE)
        items = list(open_input(srv.url("/page.html"), Limits(**{**RENDER, "total_timeout": 20})))
        shown = [i.metadata["url"].rsplit("/", 1)[1] for i in items if isinstance(i, ImageItem)]
        assert shown == ["late.jpg"]
        # the ad: one clear error of its own (fetched again after the render, it times out)
        assert [e.locator.split(" ")[0] for e in items if isinstance(e, ItemError)] == ["img"]
