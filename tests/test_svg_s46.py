"""An SVG's embedded pictures as an XML reader sees them: after markup lexbor's HTML parser breaks out of SVG on,
in a foreignObject's XHTML, under any xlink prefix, and in a drawing written in UTF-16."""

from __future__ import annotations

import base64
import io
import time

import pytest
from PIL import Image

from medimg.sources import ImageItem, Limits, open_input
from medimg.sources.base import Blob

W = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'


def png_uri() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (120, 100), (200, 40, 60)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def pictures(data: bytes) -> list:
    got = list(open_input(Blob(origin="fig.svg", data=data), Limits()))
    return [(type(i).__name__, i.locator, i.width, i.height) if isinstance(i, ImageItem) else i.error for i in got]


@pytest.mark.parametrize("before", [
    "<text>A<br/>B</text>",  # a line break an exporter put in a label
    "<p>caption</p>",
    '<g><span class="x">1</span></g>',
    '<font color="red"/>',
    '<foreignObject width="9" height="9"><div xmlns="http://www.w3.org/1999/xhtml"/></foreignObject>',
])
def test_a_picture_after_markup_html_breaks_out_on_is_read(before):
    """lexbor renames the <image> after these <img>: an XML reader (a browser opening the file) still draws it."""
    data = f'<svg {W}>{before}<image width="120" height="100" xlink:href="{png_uri()}"/></svg>'.encode()
    assert pictures(data) == [("ImageItem", "image #1", 120, 100)]


def test_a_foreign_object_s_img_and_an_xlink_prefix_of_its_own():
    """draw.io's HTML labels show a pasted picture by <img src>; xlink may be bound to any prefix."""
    data = (f'<svg {W} xmlns:l="http://www.w3.org/1999/xlink"><foreignObject width="9" height="9">'
            f'<div xmlns="http://www.w3.org/1999/xhtml"><img src="{png_uri()}"/></div></foreignObject>'
            f'<image l:href="{png_uri()}"/></svg>').encode()
    assert pictures(data) == [("ImageItem", "image #1", 120, 100), ("ImageItem", "image #2", 120, 100)]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be"])
def test_an_svg_written_in_utf16_is_read(codec):
    text = f'<?xml version="1.0" encoding="UTF-16"?>\n<svg {W}><image xlink:href="{png_uri()}"/></svg>'
    data = text.encode(codec) if codec == "utf-16" else b"\xfe\xff" + text.encode(codec)
    assert pictures(data) == [("ImageItem", "image #1", 120, 100)]


def test_a_drawing_of_many_elements_has_its_pictures_read_without_its_tree(monkeypatch):
    """Past MAX_TAGS tags only the picture tags are parsed: a scatter plot of 2.5 million <use> (90 MB) had taken
    34 s and 2.7 GB. Here past a lowered cap: a tag with a '>' in a value, an
    image in a nested group, a link that is no data: URI (left out), and the count past max_images_per_input."""
    from medimg.sources import svg

    monkeypatch.setattr(svg, "MAX_TAGS", 50, raising=False)
    pic = png_uri()
    data = (f'<svg {W}>' + '<use xlink:href="#m" x="1"/>' * 60 + f'<image aria-label="a > b" xlink:href="{pic}"/>'
            + '<g>' * 30 + f'<svg:image href="{pic}"/><image href="far.png"/>' + '</g>' * 30
            + f'<feImage href="{pic}"/></svg>').encode()
    got = list(open_input(Blob(origin="fig.svg", data=data), Limits(max_images_per_input=2)))
    assert [(type(i).__name__, i.locator) for i in got[:2]] == [("ImageItem", "image #1"), ("ImageItem", "image #2")]
    assert len(got) == 3 and "1 more embedded picture was not read" in got[2].error, got


def test_a_drawing_nested_200000_deep_has_its_picture_read_in_time():
    """Its 400,000 tags are past MAX_TAGS: the picture tag is found by the scan (it was a note: too deep to parse)."""
    deep = f'<svg {W}>{"<g>" * 200_000}<image href="{png_uri()}"/>{"</g>" * 200_000}</svg>'.encode()
    started = time.monotonic()
    got = pictures(deep)
    assert time.monotonic() - started < 5
    assert got == [("ImageItem", "image #1", 120, 100)]
