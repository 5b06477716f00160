"""Adversarial inputs for session 42's new code paths (s42_fuzz)."""

from __future__ import annotations

import time

from medimg.sources.web_page import extract


def test_an_img_size_attribute_of_many_spaces_is_read_in_linear_time():
    # `width="1<40,000 spaces>x"`: the old pattern's two \s* around an optional `px` backtracked quadratically
    # (16,000 spaces took 5.4 s, 40,000 about half a minute) on one attribute of a fetched page
    junk = "1" + " " * 40_000 + "x"
    page = (f'<html><body><img src="a.png"><img src="b.png" width="{junk}" height="{junk}">'
            '<img src="c.png" width=" 1px " height="1">').encode()
    start = time.process_time()
    found = extract(page, "http://127.0.0.1/p.html")
    assert time.process_time() - start < 2.0
    pixels = {c.url.rsplit("/", 1)[-1]: c.pixel for c in found}
    assert pixels == {"a.png": False, "b.png": False, "c.png": True}, pixels


def test_an_svgs_embedded_picture_whose_bytes_are_damaged_is_an_error_not_a_hidden_note():
    from medimg.sources import open_inputs
    from medimg.sources.base import Blob, ItemError

    svg = (b'<svg xmlns="http://www.w3.org/2000/svg"><image href="data:image/png;base64,AAAAAAAAAAAA"/>'
           b'<image href="data:text/plain,hello"/></svg>')
    items = list(open_inputs([Blob(origin="fig.svg", data=svg)]))
    assert all(isinstance(i, ItemError) for i in items)
    said = {(i.locator, i.skipped): i.error for i in items}
    # before: 'skipped: not a raster image (image/png) embedded in the SVG', a note shown only with show_skipped,
    # where a page's <img src="data:image/png;base64,…"> of the same bytes is an error
    assert said == {("image #1", False): "not an image: got image/png (9 bytes)",
                    ("image #2", True): "skipped: not a raster image (text/plain) embedded in the SVG"}, said


def _traced_peak(svg: bytes) -> tuple[int, list]:
    import tracemalloc

    from medimg.sources import open_inputs
    from medimg.sources.base import Blob

    tracemalloc.start()
    try:
        items = list(open_inputs([Blob(origin="many.svg", data=svg)], {"max_images_per_input": 5}))
        return tracemalloc.get_traced_memory()[1], items
    finally:
        tracemalloc.stop()


def test_an_svg_of_many_embedded_pictures_keeps_no_copy_of_those_past_the_cap():
    import base64
    import io

    from PIL import Image

    from medimg.sources import open_inputs
    from medimg.sources.base import Blob, ImageItem, ItemError

    buf = io.BytesIO()
    Image.new("RGB", (80, 80), (9, 90, 200)).save(buf, "PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue() + b"\0" * 400).decode()
    svg = ('<svg xmlns="http://www.w3.org/2000/svg">' + f'<image href="{uri}"/>' * 2_000 + "</svg>").encode()
    # the same drawing, parsed alike, whose links are not data: URIs (the comment has it parsed all the same)
    plain = b"<!-- data: -->" + svg.replace(b'href="data:', b'href="xxxx:')
    list(open_inputs([Blob(origin="one.svg", data=svg[:2000] + b"</svg>")]))  # imports first, untraced
    peak, items = _traced_peak(svg)
    plain_peak, _ = _traced_peak(plain)
    assert sum(isinstance(i, ImageItem) for i in items) == 5
    assert [i.error for i in items if isinstance(i, ItemError)] == [
        "1995 more embedded pictures were not read (max_images_per_input = 5)"]
    # before: every URI kept as a str until the pictures were read (the drawing's size again)
    assert peak - plain_peak < 0.25 * len(svg), (peak, plain_peak, len(svg))
