"""Web pages, session 46: the HTTP `Refresh` header, served on 127.0.0.1."""

from __future__ import annotations

from test_web_s45 import jpeg, read
from webserver import WebServer


def test_a_page_sent_on_by_an_http_refresh_header_gives_the_images_of_the_page_it_sends_to():
    """Browsers follow a `Refresh: 0; url=…` response header as they follow a `<meta http-equiv=refresh>`; it was
    read as a page with no images ("this page has moved", sent by servers and frameworks as a header)."""
    with WebServer() as srv:
        srv.add("/new/a.jpg", jpeg(1, (300, 200)), "image/jpeg")
        srv.add("/new/case.html", '<html><body><img src="a.jpg"></body></html>')
        srv.add("/old", "<html><body>This page has moved.</body></html>", "text/html",
                headers={"Refresh": "0; url=/new/case.html"})
        # the header goes before the page's own <meta> (as in browsers), and one to the page itself is a reload
        srv.add("/both", '<meta http-equiv="refresh" content="0; url=/nowhere">', "text/html",
                headers={"Refresh": "1;URL='new/case.html'"})
        srv.add("/reload", '<meta http-equiv="refresh" content="0; url=/nowhere">', "text/html",
                headers={"Refresh": "30"})
        shown, errors = read(srv.url("/old"))
        assert shown == [("img", "a.jpg")] and not errors
        shown, errors = read(srv.url("/both"))
        assert shown == [("img", "a.jpg")] and not errors and srv.hits.get("/nowhere", 0) == 0
        shown, errors = read(srv.url("/reload"))
        assert [e.error for e in errors] == ["no images found on the page"] and srv.hits.get("/nowhere", 0) == 0


def test_a_data_url_with_characters_outside_base64_is_a_clear_error_not_an_image_of_0_bytes():
    """Python's base64 skips characters outside its alphabet, so `base64,!!!!` was "not an image: … (0 bytes)" and
    URL-safe `-_` ones decoded to other bytes; browsers' forgiving base64 fails them, and white space and missing
    padding pass, as before."""
    import base64

    good = base64.b64encode(jpeg(7, (300, 200))).decode()
    spaced = "\n".join(good[i:i + 60] for i in range(0, len(good), 60)).rstrip("=")
    with WebServer() as srv:
        srv.add("/p.html", f'<img src="data:image/jpeg;base64,!!!!"><img src="data:image/jpeg;base64,{spaced}">'
                           f'<img src="data:image/jpeg;base64,{good[:-8]}-_{good[-6:]}">')
        shown, errors = read(srv.url("/p.html"))
    assert [s[0] for s in shown] == ["img"]  # the spaced one, without its padding
    assert [e.error for e in errors] == [
        "bad data: URI: its base64 has '!' at character 1, outside the alphabet",
        f"bad data: URI: its base64 has '-' at character {len(good) - 7}, outside the alphabet"]
