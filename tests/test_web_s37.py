"""Pages as curators give them, served on 127.0.0.1 (with the private-address opt-in): a background set twice in one
block is the last one, a media attribute of 100 KB costs nothing and holds for nothing, a huge or dated Retry-After
reads as words, srcset descriptors are read as the HTML spec reads them; and Wikimedia Commons file pages, Next.js
resizes, AMP images, a <picture> inside <noscript>, WordPress lazy-load galleries and PubMed Central figures give
each picture once."""

from __future__ import annotations

import io
import time
from email.utils import formatdate

import numpy as np
import pytest
from PIL import Image
from test_web_s36 import errors, shown  # the same helpers
from webserver import WebServer

from medimg.sources import ItemError, Limits, media, net, open_input
from medimg.sources.web_page import extract

OPEN = {"allow_private": True, "connect_timeout": 2, "read_timeout": 2, "total_timeout": 8}  # loopback: the opt-in


def photo(size=(800, 600), shift: int = 0, fmt: str = "PNG") -> bytes:
    """A picture with structure (gradients), so another size of it prints alike and `shift` makes another one."""
    y, x = np.mgrid[0:600, 0:800]
    pixels = np.stack([x * 255 // 800, (y * 255 // 600 + shift) % 256, (x + y + shift) % 256], -1).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(pixels).resize(size, Image.LANCZOS).save(buf, fmt)
    return buf.getvalue()


def run(url, **limits) -> list:
    return list(open_input(url, Limits(**{**OPEN, **limits})))


def notes(items) -> list[str]:
    return [i.error for i in items if isinstance(i, ItemError) and i.skipped]


def names(found) -> list[str]:
    return [c.url.rsplit("/", 1)[1] for c in found]


@pytest.fixture
def srv():
    with WebServer() as server:
        yield server


# --- one background a block: the last valid declaration ---------------------------------------------------------

def test_a_background_declared_twice_in_a_block_is_the_last_valid_one_as_a_browser_shows(srv):
    for n, path in enumerate(("fb.png", "a.png", "b.png", "old.png", "new.png", "sheet-fb.png", "sheet.png",
                              "keep.png", "lose.png", "z.png", "li.png", "v.png", "shorthand.png", "gone.png")):
        srv.add(f"/{path}", photo((200, 150), n * 17), "image/png")
    srv.add("/site.css", ".hero{background-image:url(sheet-fb.png);background-image:image-set(url(sheet.png) 1x)}",
            "text/css")
    srv.add("/page.html", """<html><head><link rel=stylesheet href=site.css><style>
      /* .retired { background: url(gone.png) } */
      .x { background-image: url(old.png); background-image: -webkit-image-set(url(new.png) 1x) }
      .y { background: url(keep.png) !important; background-image: url(lose.png) }
      .z { background-image: url(z.png); background-image: no-such-function(1) }
      .w { background: url(shorthand.png); list-style-image: url(li.png); background: #fff }
      @media screen { .v { background-image: url(gone.png); background-image: url(v.png) } }
    </style></head><body>
      <div style="background-image: url(fb.png); background-image: image-set(url(a.png) 1x, url(b.png) 2x)"></div>
      <div class="hero x y z w v"></div></body></html>""")
    items = run(srv.url("/page.html"))
    assert shown(items) == ["style /new.png", "style /keep.png", "style /z.png", "style /li.png", "style /v.png",
                            "style /b.png", "css /sheet.png"], (shown(items), notes(items), errors(items))
    for unused in ("fb.png", "a.png", "old.png", "lose.png", "gone.png", "shorthand.png", "sheet-fb.png"):
        assert srv.hits[f"/{unused}"] == 0, unused


# --- media attributes: a long one is cheap and holds for nothing -------------------------------------------------

def test_an_over_long_media_attribute_is_read_at_once_and_holds_for_nothing():
    page = ('<picture><source media="{}" srcset="phone.png"><img src="desk.png"></picture>'
            '<picture><source media="(min-width: 1px){}and (min-width: 2px)" srcset="wide.png"><img src="n.png">'
            '</picture><link rel=stylesheet href=print.css media="{}">'
            '<picture><source media="screen{}(min-width: 1px)" srcset="bad.png"><img src="fallback.png"></picture>')
    long_list = "(max-width: 1px) or (min-width: 1px), " * 2500  # 95 KB: no real query is so long
    started = time.perf_counter()
    found = extract(page.format(long_list, " " * 100_000, "screen, " * 20_000, " " * 30_000), "http://h/")
    took = time.perf_counter() - started  # a run of white space not followed by `and` took 2.5 s before
    assert names(found) == ["desk.png", "wide.png", "fallback.png"] and found.sheets == [] and took < 0.5, (names(found), took)
    assert media.media_matches("(min-width: 600px)\n\t  and   (max-width: 4000px)")  # white space as one
    assert not media.media_matches("(min-width: 100px), " * 200)  # 4,000 characters
    assert media.media_matches("(min-width: 100px), " * 90)


# --- Retry-After in words ---------------------------------------------------------------------------------------

def test_a_huge_or_dated_retry_after_is_said_in_words(srv):
    srv.add("/huge.png", b"", "text/plain", status=503, headers={"Retry-After": "9" * 400})
    srv.add("/day.png", b"", "text/plain", status=429, headers={"Retry-After": str(3 * 86400)})
    later = formatdate(time.time() + 3 * 3600, usegmt=True)
    srv.add("/dated.png", b"", "text/plain", status=503, headers={"Retry-After": later})
    for path, said in [("/huge.png", r"\(it asks to wait over a year: Retry-After\)$"),
                       ("/day.png", r"\(it asks to wait about 3 days: Retry-After\)$"),
                       ("/dated.png", rf"\(it asks to wait until {later}, about 3 h from now: Retry-After\)$")]:
        with pytest.raises(net.FetchError, match=said) as caught:
            net.fetch(srv.url(path), Limits(**OPEN))
        assert "inf" not in str(caught.value) and "e+" not in str(caught.value)


# --- srcset descriptors as the HTML spec reads them -------------------------------------------------------------

@pytest.mark.parametrize("srcset, chosen", [
    ("big.png 4000W, mid.png 1e3w, small.png 300w", "small.png"),  # `W` and `1e3w` are no width: dropped
    ("both.png 2x 300w, one.png 200w", "one.png"),  # a width and a density: invalid
    ("zero.png 0w, neg.png -1x, odd.png 2q, ok.png 1x", "ok.png"),
    ("tall.png 900h, wide.png 1x", "wide.png"),  # a height only with a width
    ("hi.png 1e1x, lo.png 1.5x", "hi.png"),  # a density is a floating-point number: 1e1 is 10
])
def test_srcset_candidates_with_invalid_descriptors_are_dropped(srcset, chosen):
    assert names(extract(f'<img srcset="{srcset}" src="src.png">', "http://h/")) == [chosen]


def test_an_img_whose_srcset_has_no_valid_candidate_shows_its_src():
    assert names(extract('<img srcset="a.png 400W, b.png 1e3w" src="src.png">', "http://h/")) == ["src.png"]


# --- real page shapes -------------------------------------------------------------------------------------------

W = "/wikipedia/commons"


def test_a_commons_file_page_is_its_original_once_not_each_of_its_other_resolutions(srv):
    """A Wikimedia Commons file page: the preview (a thumbnail linking to the original), "Other resolutions" links
    to smaller thumbnails of it, "Original file", and the file history's thumbnails; an older version is its own."""
    srv.add(f"{W}/a/ab/Chest.png", photo(), "image/png")
    for w in (120, 320, 400, 640):
        srv.add(f"{W}/thumb/a/ab/Chest.png/{w}px-Chest.png", photo((w, w * 3 // 4)), "image/png")
    srv.add(f"{W}/archive/a/ab/20200101000000%21Chest.png", photo(shift=120), "image/png")
    srv.add(f"{W}/thumb/archive/a/ab/20200101000000%21Chest.png/120px-Chest.png", photo((120, 90), 120), "image/png")
    srv.add("/wiki/File:Chest.png", f"""<html><body>
      <div class="fullImageLink" id="file"><a href="{W}/a/ab/Chest.png"><img alt="File:Chest.png"
        src="{W}/thumb/a/ab/Chest.png/400px-Chest.png" width="400" height="300"></a>
      <div class="mw-filepage-other-resolutions">Other resolutions:
        <a href="{W}/thumb/a/ab/Chest.png/320px-Chest.png" class="mw-thumbnail-link">320 × 240 pixels</a> |
        <a href="{W}/thumb/a/ab/Chest.png/640px-Chest.png" class="mw-thumbnail-link">640 × 480 pixels</a></div></div>
      <div class="fullMedia"><a href="{W}/a/ab/Chest.png" class="internal">Original file</a></div>
      <table class="wikitable filehistory">
      <tr><td><a href="{W}/a/ab/Chest.png"><img src="{W}/thumb/a/ab/Chest.png/120px-Chest.png"></a></td></tr>
      <tr><td><a href="{W}/archive/a/ab/20200101000000%21Chest.png"><img
        src="{W}/thumb/archive/a/ab/20200101000000%21Chest.png/120px-Chest.png"></a></td></tr></table></body></html>""")
    items = run(srv.url("/wiki/File:Chest.png"))
    assert shown(items) == [f"a {W}/a/ab/Chest.png", f"a {W}/archive/a/ab/20200101000000%21Chest.png"], (
        shown(items), notes(items), errors(items))
    said = notes(items)
    assert "same picture as a #2 (another size: 320x240, not 800x600)" in said
    assert "same picture as a #2 (another size: 640x480, not 800x600)" in said


def test_next_js_resizes_of_one_picture_are_one_image(srv):
    """Next.js serves one picture at several widths through /_next/image: a hero and a card of it are one record;
    another picture, resized the same way, stays its own."""
    for w in (384, 640, 1080):
        srv.add(f"/_next/image?url=%2Fimg%2Fscan.png&w={w}&q=75", photo((min(w, 800), min(w, 800) * 3 // 4), 40, "WEBP"),
                "image/webp")
    srv.add("/_next/image?url=%2Fimg%2Fother.png&w=384&q=75", photo((384, 288), 200, "WEBP"), "image/webp")
    hero = "/_next/image?url=%2Fimg%2Fscan.png&amp;w="
    srv.add("/post.html", f"""<html><body>
      <img alt="scan" srcset="{hero}640&amp;q=75 1x, {hero}1080&amp;q=75 2x" src="{hero}1080&amp;q=75">
      <div class="card"><img alt="scan" sizes="200px" srcset="{hero}384&amp;q=75 384w" src="{hero}384&amp;q=75"></div>
      <div class="card"><img alt="other" src="/_next/image?url=%2Fimg%2Fother.png&amp;w=384&amp;q=75"></div>
      </body></html>""")
    items = run(srv.url("/post.html"))
    assert shown(items) == ["img /_next/image?url=%2Fimg%2Fscan.png&w=1080&q=75",
                            "img /_next/image?url=%2Fimg%2Fother.png&w=384&q=75"], (shown(items), notes(items))
    assert "same picture as img #1 (another size: 384x288, not 800x600)" in notes(items)


def test_amp_images_are_read_and_their_noscript_fallback_is_the_same_picture(srv):
    srv.add("/amp/xray.png", photo(shift=80), "image/png")
    srv.add("/amp/xray-400.png", photo((400, 300), 80), "image/png")
    srv.add("/amp/fundus.png", photo((300, 300), 160), "image/png")
    srv.add("/amp.html", """<html amp><body>
      <amp-img src="/amp/xray-400.png" srcset="/amp/xray-400.png 400w, /amp/xray.png 800w" width="800" height="600"
        layout="responsive" alt="X-ray"><noscript><img src="/amp/xray-400.png" width="800" height="600"></noscript>
      </amp-img>
      <amp-img src="/amp/fundus.png" width="300" height="300" alt="fundus"></amp-img></body></html>""")
    items = run(srv.url("/amp.html"))
    assert shown(items) == ["img /amp/xray.png", "img /amp/fundus.png"], (shown(items), notes(items))
    assert "same picture as img #1 (another size: 400x300, not 800x600)" in notes(items)


def test_a_picture_inside_noscript_is_the_fallback_of_the_lazy_image_beside_it(srv):
    srv.add("/p/us.jpg", photo(shift=200, fmt="JPEG"), "image/jpeg")
    srv.add("/p/us.webp", photo(shift=200, fmt="WEBP"), "image/webp")
    srv.add("/lazy.html", """<html><body>
      <img class="lazyload" data-src="/p/us.jpg" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="ultrasound">
      <noscript><picture><source type="image/webp" srcset="/p/us.webp"><img src="/p/us.jpg"></picture></noscript>
      </body></html>""")
    items = run(srv.url("/lazy.html"))
    assert shown(items) == ["img /p/us.jpg"], (shown(items), notes(items))
    assert "same picture as img #1 (another encoding: WEBP, not JPEG)" in notes(items)


U = "/wp-content/uploads/2024/01"


def test_a_wordpress_gallery_with_lazy_load_plugins_gives_each_picture_once_at_full_size(srv):
    """WP Rocket (data-lazy-src, a <noscript> copy), lazysizes (data-src, data-srcset, and a bgset background),
    Jetpack's carousel (data-orig-file beside a medium-size src)."""
    for n, (name, shift) in enumerate((("mri", 20), ("ct", 60), ("fundus", 100), ("us", 140))):
        srv.add(f"{U}/{name}.jpg", photo(shift=shift, fmt="JPEG"), "image/jpeg")
        for w, h in ((150, 150), (300, 225), (1024, 768)):
            srv.add(f"{U}/{name}-{w}x{h}.jpg", photo((min(w, 800), min(h, 600)), shift, "JPEG"), "image/jpeg")
    blank = "data:image/gif;base64,R0lGODlhAQABAAAAACw="
    srv.add("/gallery.html", f"""<html><body><div class="gallery">
      <figure><a href="{U}/mri.jpg"><img width="150" height="150" src="data:image/svg+xml,%3Csvg%3E%3C/svg%3E"
        data-lazy-src="{U}/mri-150x150.jpg" data-lazy-srcset="{U}/mri-150x150.jpg 150w, {U}/mri-300x225.jpg 300w">
        <noscript><img width="150" height="150" src="{U}/mri-150x150.jpg"></noscript></a></figure>
      <figure><a href="{U}/ct.jpg"><img class="lazyload" data-src="{U}/ct-150x150.jpg"
        data-srcset="{U}/ct-300x225.jpg 300w, {U}/ct-1024x768.jpg 1024w" src="{blank}"></a></figure>
      <div class="lazyload hero" data-bgset="{U}/fundus-300x225.jpg 300w, {U}/fundus-1024x768.jpg 1024w"></div>
      <img data-attachment-id="12" data-orig-file="{U}/us.jpg" data-medium-file="{U}/us-300x225.jpg"
        data-large-file="{U}/us-1024x768.jpg" src="{U}/us-300x225.jpg">
      </div></body></html>""")
    items = run(srv.url("/gallery.html"))
    assert shown(items) == [f"a {U}/mri.jpg", f"a {U}/ct.jpg", f"style {U}/fundus-1024x768.jpg",
                            f"img {U}/us.jpg"], (shown(items), notes(items), errors(items))
    assert srv.hits[f"{U}/us-300x225.jpg"] == 0 and not errors(items)


def test_a_pubmed_central_figure_is_its_large_image_not_its_thumbnail(srv):
    """PMC's figure: a small GIF thumbnail (src-large names the figure) linking to the figure's page, and an "Open in
    a new tab" link to the large image."""
    srv.add("/pmc/articles/PMC1/bin/f1.gif", photo((150, 112), 220, "GIF"), "image/gif")
    srv.add("/pmc/articles/PMC1/bin/f1.jpg", photo(shift=220, fmt="JPEG"), "image/jpeg")
    srv.add("/pmc/articles/PMC1/bin/f2.gif", photo((150, 112), 30, "GIF"), "image/gif")
    srv.add("/pmc/articles/PMC1/bin/f2.jpg", photo(shift=30, fmt="JPEG"), "image/jpeg")
    srv.add("/pmc/articles/PMC1/figure/F1/", "<html><body><img src='../../bin/f1.jpg'></body></html>")
    figure = """<div class="fig iconblock" id="F{n}"><a class="icnblk_img figpopup" href="/pmc/articles/PMC1/figure/F{n}/"
        target="figure"><img src="/pmc/articles/PMC1/bin/f{n}.gif" alt="Figure {n}" class="small-thumb"
        src-large="/pmc/articles/PMC1/bin/f{n}.jpg"></a><div class="icnblk_cntnt"><a
        href="/pmc/articles/PMC1/figure/F{n}/">Figure {n}</a> <a href="/pmc/articles/PMC1/bin/f{n}.jpg"
        target="_blank">Open in a new tab</a></div></div>"""
    srv.add("/pmc/articles/PMC1/", f"<html><body>{figure.format(n=1)}<p>text</p>{figure.format(n=2)}</body></html>")
    items = run(srv.url("/pmc/articles/PMC1/"))
    assert shown(items) == ["img /pmc/articles/PMC1/bin/f1.jpg", "img /pmc/articles/PMC1/bin/f2.jpg"], (
        shown(items), notes(items), errors(items))
    assert srv.hits["/pmc/articles/PMC1/bin/f1.gif"] == srv.hits["/pmc/articles/PMC1/bin/f2.gif"] == 0


def test_a_page_builders_phone_background_and_a_print_style_are_not_read(srv):
    """Elementor and kin write each section's background into the page, with the phone's crop in an @media block;
    a desktop screen shows the first only. A <style media=print> is shown on no screen."""
    for n, path in enumerate(("desk.jpg", "phone.jpg", "print.jpg", "wide.jpg")):
        srv.add(f"/{path}", photo((400, 300), n * 50, "JPEG"), "image/jpeg")
    srv.add("/builder.html", """<html><head><style>
      .elementor-element-3f2 { background-image: url(desk.jpg) }
      @media (max-width: 767px) { .elementor-element-3f2 { background-image: url(phone.jpg) } }
      @media (min-width: 1025px) { .banner { background-image: url(wide.jpg) } }
    </style><style media="print">.logo { background: url(print.jpg) }</style></head>
    <body><section class="elementor-element-3f2 banner logo"></section></body></html>""")
    items = run(srv.url("/builder.html"))
    assert shown(items) == ["style /desk.jpg", "style /wide.jpg"], (shown(items), notes(items))
    assert srv.hits["/phone.jpg"] == srv.hits["/print.jpg"] == 0
