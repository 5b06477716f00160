"""Session 36 security review: regular expressions run on text a visitor, a web page or a PDF controls must take
time in proportion to it (each of these took from seconds to minutes, holding the GIL, so the whole server
stalled)."""

from __future__ import annotations

import time
import zlib

from builders import raw_pdf
from medimg.pipeline import Record
from medimg.server.ui import _addresses
from medimg.sources import pdf
from medimg.sources.base import Blob, Context, ItemError, Limits
from medimg.sources.html_cost import nesting_problem


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def test_a_long_run_of_spaces_in_the_address_box_is_split_in_linear_time():
    # 20,000 spaces took about 10 s before (each space was a new start for the whole run), 1 MB hours
    out, took = timed(_addresses, "example.org/a" + " " * 20_000 + "b")
    assert out == ["example.org/a" + " " * 20_000 + "b"] and took < 1
    assert _addresses("http://a/x y.html https://b/ www.c.org\tz") == ["http://a/x y.html", "https://b/", "www.c.org\tz"]


def test_a_page_of_unclosed_tags_is_costed_in_linear_time():
    # 64 KB of "<a " with no ">" took 28 s before: each "<a" was read to the end of the page
    problem, took = timed(nesting_problem, "<html><body>" + "<a " * 22_000)
    assert problem is None and took < 1
    # tags before the last ">" are still costed: a deep page stays refused, with unclosed text after it
    deep = "<div>" * 200_000 + "<a " * 1000
    assert "nests elements" in nesting_problem(deep)


def test_password_in_a_long_error_is_hidden_in_linear_time():
    # "a.a.a…" (32 KB) took 4.8 s before: every "a" after a dot was a new start of a scheme
    rec, took = timed(lambda: Record(input="x", locator="img #1 " + "a." * 16_000 + "@", error="a." * 16_000 + "@"))
    assert took < 0.5
    rec = Record(input="x", locator="img #2 https://u:pw@h/x.png",
                 error="http://bob:s3cr3t@host/a failed; 1a.ftp://u:p:q@h; mailto:a@b")
    assert rec.locator == "img #2 https://u:***@h/x.png"
    assert rec.error == "http://bob:***@host/a failed; 1a.ftp://u:***@h; mailto:a@b"


def test_a_content_stream_of_many_inline_image_starts_is_read_in_linear_time():
    # 300 KB of "BI " before an inline image over max_pixels: each BI was read 4,096 bytes on (about 10 s)
    raw = zlib.compress(b"\x80" * (1200 * 1200), 9)
    content = (b"BI " * 100_000 + b"\nq 300 0 0 300 100 100 cm\nBI /W 1200 /H 1200 /CS /G /BPC 8 /F /Fl /L %d\nID\n"
               % len(raw) + raw + b"\nEI\nQ\n")
    t = time.perf_counter()
    items = list(pdf.open_pdf(Blob(origin="x.pdf", data=raw_pdf(content)), Context(Limits(max_pixels=1_000_000))))
    took = time.perf_counter() - t
    errors = [i.error for i in items if isinstance(i, ItemError)]
    assert errors and errors[0].startswith("an inline image of 1200x1200 pixels, over the max_pixels"), errors
    assert took < 3
    # the same pairs as the expression found: a BI with its first ID at most 4,096 bytes on, the next BI after that ID
    stream = b"BI /W 1 ID x BI BI /W 2 /H 3 ID y BI " + b"z" * 5000 + b" ID BIx ID"
    assert list(pdf._inline_heads(stream)) == [b" /W 1 ", b" BI /W 2 /H 3 "]



def test_a_request_cut_at_stop_is_logged_on_one_line(caplog):
    import asyncio
    import logging

    from medimg.server.app import CutAtStop

    async def cancelled(scope, receive, send):
        raise asyncio.CancelledError

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    sent = []

    async def send(message):
        sent.append(message)

    # the path as uvicorn gives it, decoded: /x%0A…%1B[2J sent as the request's target
    scope = {"type": "http", "method": "GET", "path": "/x\n2026-12-06 INFO medimg: token accepted\x1b[2J",
             "raw_path": b"/x%0A2026-12-06%20INFO%20medimg:%20token%20accepted%1B[2J", "root_path": "",
             "query_string": b"", "headers": []}
    with caplog.at_level(logging.WARNING, logger="medimg"):
        asyncio.run(CutAtStop(cancelled)(scope, receive, send))
    (line,) = [r.getMessage() for r in caplog.records if "graceful-timeout" in r.getMessage()]
    assert "\n" not in line and "\x1b" not in line and "/x%0A2026-12-06%20INFO" in line
    assert sent[0]["status"] == 503


def test_a_detached_nrrd_header_with_a_long_blank_run_in_its_data_file_line_is_read_in_linear_time():
    from medimg.sources import open_input

    # 20,000 spaces inside the data file's name took 17 s before (40,000: 57 s)
    header = (b"NRRD0004\ntype: short\ndimension: 2\nsizes: 2 2\nencoding: raw\n"
              b"data file: scan" + b" " * 20_000 + b"x.raw \r\n\n")
    items, took = timed(lambda: list(open_input(Blob(origin="a.nhdr", data=header))))
    assert took < 1 and len(items) == 1 and "x.raw" in items[0].error, items
    from medimg.sources.nrrd_volume import _attach, _data_file
    assert _data_file(b"NRRD0004\ndata file:\t a b.raw \t\r\n\n") == "a b.raw"
    assert _attach(b"NRRD0004\ntype: uint8\ndata file: a.raw\r\nsizes: 1\n\n", b"\x07") == \
        b"NRRD0004\ntype: uint8\nsizes: 1\n\n\x07"
