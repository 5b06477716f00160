"""An SVG drawing's embedded raster pictures (a figure exported as SVG wraps a PNG) are read, as files, zip members,
URLs and a page's images; nothing the drawing links to is fetched, and its entities are never expanded."""

from __future__ import annotations

import base64
import gzip
import io
import time

from PIL import Image

import builders as b
from medimg.sources import ImageItem, ItemError, Limits, open_input
from medimg.sources.base import Blob
from webserver import WebServer

W = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
OPEN = dict(allow_private=True, connect_timeout=2, read_timeout=2, total_timeout=10)


def png(size=(120, 100), colour=(200, 40, 60)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def figure(picture: bytes, extra: str = "", head: str = '<?xml version="1.0" encoding="UTF-8"?>\n') -> bytes:
    """A figure as Illustrator or Inkscape export it: a caption, and the picture as a base64 data: URI (wrapped)."""
    text = base64.encodebytes(picture).decode()  # 76 characters a line, as exporters write it
    return (f'{head}<!-- Generator: Adobe Illustrator 27.0 -->\n<svg {W} width="300" height="300">{extra}'
            f'<text x="5" y="20">Figure 2</text><image x="0" y="40" width="120" height="100" '
            f'xlink:href="data:image/png;base64,{text}"/></svg>').encode()


def items(src, **limits) -> list:
    return list(open_input(src, Limits(**limits)))


def test_an_svg_figure_gives_the_picture_it_embeds(tmp_path):
    path = tmp_path / "fig.svg"
    path.write_bytes(figure(png()))
    got = items(path)
    assert len(got) == 1 and isinstance(got[0], ImageItem), got
    assert got[0].locator == "image #1" and (got[0].width, got[0].height) == (120, 100)
    assert got[0].image.convert("RGB").getpixel((5, 5)) == (200, 40, 60)


def test_an_svg_in_a_zip_and_a_compressed_svgz(tmp_path):
    zipped = tmp_path / "figs.zip"
    zipped.write_bytes(b.zip_bytes([("fig/a.svg", figure(png()))]))
    svgz = tmp_path / "b.svgz"
    svgz.write_bytes(gzip.compress(figure(png(colour=(1, 2, 3)))))
    for path in (zipped, svgz):
        got = items(path)
        assert [type(i) for i in got] == [ImageItem] and got[0].locator == "image #1", (path, got)


def test_a_drawing_with_no_picture_is_still_a_note():
    plain = f'<svg {W} width="9" height="9"><rect width="9" height="9"/><text>data: none</text></svg>'.encode()
    got = items(Blob(origin="plain.svg", data=plain))
    assert len(got) == 1 and got[0].skipped and got[0].error == "SVG is not rasterised (vector drawing skipped)"


def test_icons_are_decoration_and_a_drawing_within_is_not_opened():
    icon = base64.b64encode(png((16, 16))).decode()
    inner = base64.b64encode(figure(png())).decode()
    data = (f'<svg {W}><image href="data:image/png;base64,{icon}"/>'
            f'<image href="data:image/svg+xml;base64,{inner}"/></svg>').encode()
    got = items(Blob(origin="icons.svg", data=data))
    assert all(isinstance(i, ItemError) and i.skipped for i in got), got
    assert "decoration: 16x16" in got[0].error and got[0].locator == "image #1"
    assert "an SVG drawing embedded" in got[1].error


def test_nothing_it_links_to_is_fetched_and_no_entity_is_expanded():
    """XXE, a billion laughs, external images (a local server, cloud metadata, a file), <use> and a stylesheet's
    @import: none is read, even with private addresses allowed; the embedded picture still is."""
    with WebServer() as srv:
        ext = srv.url("/leak")
        laughs = '<!ENTITY a "aaaaaaaaaa">' + "".join(
            f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
        head = (f'<?xml version="1.0"?>\n<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">'
                f'<!ENTITY e SYSTEM "{ext}/entity">{laughs}]>\n')
        extra = (f'<text>&x;&e;&j;</text><image href="{ext}/image.png" width="9" height="9"/>'
                 f'<image xlink:href="file:///etc/passwd"/><image href="http://169.254.169.254/latest/meta-data/"/>'
                 f'<use href="{ext}/use.svg#a"/><style>@import url({ext}/import.css);</style>'
                 f'<feImage href="{ext}/fe.png"/><script>fetch("{ext}/script")</script>')
        started = time.monotonic()
        got = items(Blob(origin="bad.svg", data=figure(png(), extra, head)), **OPEN)
        assert time.monotonic() - started < 5
        assert sum(srv.hits.values()) == 0, dict(srv.hits)
    assert [type(i) for i in got] == [ImageItem] and got[0].locator == "image #1", got


def test_a_deeply_nested_drawing_is_a_note_in_time():
    deep = f'<svg {W}>{"<g>" * 100_000}<image href="data:image/png;base64,AAAA"/>{"</g>" * 100_000}</svg>'
    started = time.monotonic()
    got = items(Blob(origin="deep.svg", data=deep.encode()))
    assert time.monotonic() - started < 5
    assert len(got) == 1 and got[0].skipped and "not looked for" in got[0].error, got


def test_pictures_past_max_images_are_a_note():
    icon = base64.b64encode(png((80, 80))).decode()
    data = (f'<svg {W}>' + f'<image href="data:image/png;base64,{icon}"/>' * 5 + "</svg>").encode()
    got = items(Blob(origin="many.svg", data=data), max_images_per_input=2)
    assert [type(i) for i in got[:2]] == [ImageItem, ImageItem]
    assert any(isinstance(i, ItemError) and "3 more embedded pictures" in i.error for i in got), got


def test_an_svg_url_and_a_page_image_served_as_svg():
    with WebServer() as srv:
        drawing = figure(png(), f'<image href="{srv.url("/leak.png")}"/>')
        srv.add("/figure", drawing, "image/svg+xml")
        srv.add("/fig.php", drawing, "image/svg+xml")
        page = srv.add("/p.html", '<p>Figure 1</p><img src="fig.php" alt="CT">')
        direct = items(srv.url("/figure"), **OPEN)
        on_page = items(page, **OPEN)
        assert srv.hits["/leak.png"] == 0
    assert [type(i) for i in direct] == [ImageItem] and direct[0].locator == "image #1", direct
    assert [type(i) for i in on_page] == [ImageItem], on_page
    assert on_page[0].locator.endswith("/fig.php, image #1") and on_page[0].metadata["alt"] == "CT"


def test_a_saved_page_s_svg_beside_it(tmp_path):
    (tmp_path / "fig.svg").write_bytes(figure(png()))
    (tmp_path / "page.html").write_text('<!doctype html><img src="fig.svg">')
    got = items(tmp_path / "page.html")
    assert [type(i) for i in got] == [ImageItem] and got[0].locator == "img #1 fig.svg, image #1", got


def test_an_svg_url_named_on_a_page_is_still_not_fetched():
    """`<img src="….svg">` on a page stays an unfetched note (logos and icons are SVG): unchanged."""
    with WebServer() as srv:
        srv.add("/a.svg", figure(png()), "image/svg+xml")
        got = items(srv.add("/p.html", '<img src="a.svg">'), **OPEN)
        assert srv.hits["/a.svg"] == 0
    assert len(got) == 1 and got[0].skipped and "SVG" in got[0].error
