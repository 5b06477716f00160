"""Pictures a page names outside its elements' src: schema.org's `image` in JSON-LD and microdata (an article's or
a case report's picture), and the page an `<iframe srcdoc>` writes in its attribute. Served on 127.0.0.1."""

from __future__ import annotations

import html
import io
import json

from PIL import Image
from webserver import WebServer

from medimg.sources import ImageItem, ItemError, Limits, open_input
from medimg.sources.web_page import LD_IMAGES, _ld_images, extract

OPEN = {"allow_private": True, "connect_timeout": 2, "read_timeout": 2, "total_timeout": 8}  # loopback: the opt-in


def png(shift: int, size: tuple[int, int] = (200, 150)) -> bytes:
    buf = io.BytesIO()
    Image.effect_mandelbrot(size, (-2 + shift / 10, -1.2, 1, 1.2), 60).convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def read(url: str) -> tuple[list[tuple[str, str]], list[ItemError]]:
    items = list(open_input(url, Limits(**OPEN)))
    shown = [(i.locator.split(" ")[0], i.metadata["url"].rsplit("/", 1)[1]) for i in items if isinstance(i, ImageItem)]
    return shown, [i for i in items if isinstance(i, ItemError)]


def test_json_ld_and_microdata_pictures_are_read_and_logos_are_not():
    article = {"@context": "https://schema.org", "@graph": [
        {"@type": "MedicalScholarlyArticle", "headline": "A case", "image": ["/f/hero.png", "/f/hero.png"],
         "publisher": {"@type": "Organization", "logo": {"@type": "ImageObject", "url": "/f/logo.png"}},
         "author": {"@type": "Person", "name": "A. Author", "image": {"@type": "ImageObject", "url": "/f/avatar.png"}},
         "associatedMedia": {"@type": ["ImageObject", "MediaObject"], "contentUrl": "/f/ct.png",
                             "thumbnail": {"@type": "ImageObject", "url": "/f/ct-thumb.png"}}}]}
    with WebServer() as srv:
        for n, name in enumerate(("hero", "logo", "ct", "ct-thumb", "micro", "shown", "avatar")):
            srv.add(f"/f/{name}.png", png(n), "image/png")
        page = (f'<html><head><script type="application/ld+json">{json.dumps(article)}</script>'
                '<script type="application/ld+json">{not json</script></head><body>'
                '<div itemscope itemtype="https://schema.org/ImageObject"><meta itemprop="image" '
                'content="/f/micro.png"></div><img src="/f/shown.png" alt="shown"><img src="/f/ct.png" alt="CT">'
                '</body></html>')
        srv.add("/case.html", page, "text/html")
        shown, errors = read(srv.url("/case.html"))
    # after the page's elements: the <img> showing one keeps its place and alt; no author's avatar, no logo
    assert shown == [("img", "shown.png"), ("img", "ct.png"), ("json-ld", "hero.png"), ("itemprop", "micro.png")]
    assert not [e for e in errors if not e.skipped]


def test_a_json_ld_picture_shown_again_at_another_size_is_one_picture():
    pic = Image.open(io.BytesIO(png(3, (400, 300))))
    small = io.BytesIO()
    pic.resize((200, 150)).save(small, "PNG")
    ld = {"@type": "Article", "image": {"@type": "ImageObject", "url": "/big.png"}}
    with WebServer() as srv:
        srv.add("/big.png", png(3, (400, 300)), "image/png")
        srv.add("/small.png", small.getvalue(), "image/png")
        srv.add("/a.html", f'<script type="application/ld+json">{json.dumps(ld)}</script><img src="/small.png">',
                "text/html")
        shown, errors = read(srv.url("/a.html"))
    assert shown == [("img", "small.png")]
    assert [e.error for e in errors if e.skipped] == ["same picture as img #1 (another size: 400x300, not 200x150)"]


def test_an_iframe_srcdoc_page_is_read_in_its_place_and_its_src_is_not():
    inner = ('<base href="/inner/"><img src="in.png" alt="inside"><iframe src="/deeper.html"></iframe>'
             '<iframe srcdoc="&lt;img src=/nested.png&gt;"></iframe>')
    with WebServer() as srv:
        for n, name in enumerate(("before.png", "inner/in.png", "after.png", "nested.png", "src.png")):
            srv.add("/" + name, png(n), "image/png")
        srv.add("/deeper.html", '<img src="/src.png">', "text/html")
        srv.add("/src.html", '<img src="/src.png">', "text/html")
        srv.add("/p.html", f'<img src="/before.png"><iframe src="/src.html" srcdoc="{html.escape(inner)}"></iframe>'
                           '<img src="/after.png">', "text/html")
        shown, errors = read(srv.url("/p.html"))
    # the srcdoc's page is read (its <base> too), not the src a browser ignores beside it; its own frames are not
    assert shown == [("img", "before.png"), ("img", "in.png"), ("img", "after.png")]
    assert not [e for e in errors if not e.skipped]


def test_json_ld_is_bounded():
    many = json.dumps({"@type": "ItemList", "itemListElement": [{"image": f"/{n}.png"} for n in range(100)]})
    assert len(_ld_images(many, LD_IMAGES)) == LD_IMAGES
    deep = '{"image": "/deep.png", "a": ' * 2000 + "1" + "}" * 2000  # too deep for json: nothing, no crash
    assert _ld_images(deep, LD_IMAGES) == []
    assert _ld_images('{"image": 7, "name": "/x.png"}', LD_IMAGES) == []
    page = "".join(f'<script type="application/ld+json">{many}</script>' for _ in range(3))
    assert len([c for c in extract(page, "https://example.org/") if c.tag == "json-ld"]) == LD_IMAGES
