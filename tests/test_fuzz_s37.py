"""Fuzzing session 37's parsers (review s37_fuzz): each test is a minimised input that failed before its fix."""

from __future__ import annotations

import base64

import pytest

import builders as b
from medimg.sources import Blob, ImageItem, ItemError, open_input
from medimg.sources.media import media_matches


def rows(data: bytes, name: str, **limits) -> list:
    from medimg.sources import Limits

    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


@pytest.mark.parametrize("query", ["(min-width: .)", "(width > .)", "(min-width: 1.2.3px)", "(aspect-ratio: ./2)"])
def test_a_media_query_with_a_number_float_cannot_read_does_not_fail_the_page(query):
    """`[\\d.]+` took `.` and `1.2.3` for numbers, and float() raised: the whole page was one error
    ("html: could not read: could not convert string to float"). Such a query is one no browser reads: its
    value is unknown, which holds for nothing (s38: Chromium's matchMedia says false), and the <img> shows."""
    assert media_matches(query) is False
    png = base64.b64encode(b.image_bytes("PNG", (300, 200))).decode()
    page = (f'<html><body><style media="{query}">p {{ color: red }}</style><picture><source media="{query}" '
            f'srcset="data:image/png;base64,{png}"><img src="data:image/png;base64,{png}"></picture></body></html>')
    got = rows(page.encode(), "page.html")
    assert [type(i) for i in got] == [ImageItem], [getattr(i, "error", "") for i in got]


@pytest.mark.parametrize("value", ["Sun, 06 Dec 1099511627776 00:00:00 GMT", "\xb2"])
def test_a_retry_after_python_cannot_read_is_no_wait_and_the_answer_its_error(value):
    """A date in the year 2**40 raised OverflowError out of open_input (not one of the errors retry_after caught),
    and `²` (latin-1 B2, which str.isdigit() takes) a ValueError from float(), told as "could not fetch". Both
    are a Retry-After that asks for nothing: the row is the server's 503."""
    import http.server
    import threading

    from medimg.sources import Limits

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(503)
            self.send_header("Retry-After", value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        got = list(open_input(f"http://127.0.0.1:{server.server_port}/scan.png", Limits(allow_private=True)))
    finally:
        server.shutdown()
    assert [(type(i), i.error) for i in got] == [
        (ItemError, f"HTTP 503 Service Unavailable for http://127.0.0.1:{server.server_port}/scan.png")]


@pytest.mark.parametrize("tail", [b"\xff\xd1\xff\xd1", b"\xff\xd7"])
def test_a_progressive_jpeg_cut_mid_scan_and_ended_by_stray_markers_stays_an_error(tail):
    """The end-marker repair tells a whole scan from a cut one by bytes put before the end marker, which a cut scan
    would read. A marker after the cut (here restart markers in a file without restart intervals) stops the decoder
    before those bytes: both versions were the same half-grey picture, and it was accepted. The bytes now go where
    the last scan's data stops."""
    from PIL import Image

    data = b.encode(b.pattern((400, 300), seed=1), "JPEG", quality=90, progressive=True)
    second_scan = data.index(b"\xff\xda", data.index(b"\xff\xda") + 2)
    cut = data[:second_scan // 2 + 200] + tail  # inside the first scan
    (item,) = rows(cut, "IMG_0002.jpg")
    assert isinstance(item, ItemError) and "truncated" in item.error, item
    (item,) = rows(data[:second_scan] + tail, "IMG_0002.jpg")  # its first scan whole: read, as a viewer shows it
    assert isinstance(item, ImageItem), item
    assert item.image.size == Image.open(__import__("io").BytesIO(data)).size


def test_many_parts_each_showing_many_pictures_are_placed_under_a_cap():
    """Each picture's places were found by walking up to the parts showing it, through every path: 320 slides each
    showing the same 320 charts, each showing the same 320 pictures (a 1.5 MB .pptx), took 320³ steps, ~10 s of CPU.
    Past 2,000,000 steps the rest of the pictures are read without places, as past the module's other caps."""
    import time

    from test_office_s37 import rels

    k = 320
    m = {"[Content_Types].xml": b"<Types/>", "_rels/.rels": rels(("rId1", "officeDocument", "ppt/presentation.xml")),
         "ppt/presentation.xml": b"<p/>"}
    for s in range(k):
        m[f"ppt/slides/slide{s}.xml"] = b"<s/>"
        m[f"ppt/slides/_rels/slide{s}.xml.rels"] = rels(*[(f"r{c}", "chart", f"../charts/c{c}.xml") for c in range(k)])
        m[f"ppt/charts/c{s}.xml"] = b"<c/>"
        m[f"ppt/charts/_rels/c{s}.xml.rels"] = rels(*[(f"r{i}", "image", f"../media/i{i}.png") for i in range(k)])
        m[f"ppt/media/i{s}.png"] = b.image_bytes("PNG", (8, 8))
    data = b.zip_bytes(m)
    started = time.process_time()
    got = rows(data, "deck.pptx")
    assert time.process_time() - started < 5
    assert sum(isinstance(i, ImageItem) for i in got) == k


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_a_second_header_of_another_kind_reads_the_data_file_of_its_turn_in_a_tar(kind, tmp_path):
    """a.raw, a.nhdr, a.mhd (naming b.raw), a.nhdr, a.raw again, a.mhd: the second a.mhd reads the second a.raw in a
    zip (the k-th header of a name the k-th data file). In a plain tar the second a.nhdr had taken it, and the second
    a.mhd fell back to the first a.raw: another series' voxels, without a word."""
    import numpy as np
    from test_pairs_s37 import mhd, nhdr, pixels, voxels
    from test_pairs_s37 import rows as pair_rows

    raw = {seed: voxels(seed).tobytes() for seed in (1, 3)}
    members = [("a.raw", raw[1]), ("a.nhdr", nhdr("a.raw")), ("a.mhd", mhd("b.raw")), ("a.nhdr", nhdr("a.raw")),
               ("a.raw", raw[3]), ("a.mhd", mhd("a.raw"))]
    got = pair_rows(kind, members, tmp_path)
    assert np.array_equal(pixels(got["a (2).nhdr"]), pixels(got["a (2).mhd"]))
    assert not np.array_equal(pixels(got["a.nhdr"]), pixels(got["a (2).mhd"]))
