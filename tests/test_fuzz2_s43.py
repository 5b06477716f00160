"""What the second fuzzing of session 43 found (s43_fuzz2): a camera RAW's RGB preview whose strips claim huge
lengths, malformed page events that were a 500 or a traceback after their 200 (NaN in a body, a handler that runs in
the browser only, input values of the wrong type, an empty session hash, /run/ and /call/ names no event has, a
stream of no event), and a table --out that cannot be opened (a link to itself, /proc) said after the run as a
traceback. Each input is built here."""

from __future__ import annotations

import logging
import os
import re
import struct
import time
import tracemalloc

import httpx
import pytest

from medimg.sources import Blob, ImageItem, Limits, open_input
from test_raw_s43 import Tiff
from test_server_limits import classifier, live  # noqa: F401  (the module's classifier fixture)


def test_a_raw_rgb_preview_whose_strips_claim_huge_lengths_is_read_with_little_memory():
    """A DNG's 100×100 RGB thumbnail in 3,000 strips, each at the pixels and each claiming 4 GB: every strip was
    sliced to the end of the file and joined (3,000 × 64 KB here; 2.7 GB, then "not enough memory", for 20,000
    strips in a 190 KB file). Now only the 30,000 bytes the picture needs are taken."""
    n = 3000
    t = Tiff()
    pixels = t.put(bytes(range(256)) * 118)
    strips = t.put(struct.pack(f"<{n}I", *[pixels] * n))
    counts = t.put(struct.pack(f"<{n}I", *[0xFFFFFFFF] * n))
    ifd0 = t.ifd({256: (4, [100]), 257: (4, [100]), 258: (3, [8, 8, 8]), 259: (3, [1]), 262: (3, [2]),
                  273: (4, (strips, n)), 277: (3, [3]), 279: (4, (counts, n)), 50706: (1, bytes([1, 4, 0, 0]))})
    data = t.done(ifd0)
    tracemalloc.start()
    try:
        (item,) = open_input(Blob("x.dng", data, name="x.dng"), Limits())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(item, ImageItem) and item.image.size == (100, 100), item
    assert item.image.tobytes() == (bytes(range(256)) * 118)[:30000]
    assert peak < 30 * 2**20, f"{peak / 2**20:.0f} MB"


@pytest.fixture(scope="module")
def page(classifier, tmp_path_factory):  # noqa: F811
    mp = pytest.MonkeyPatch()
    mp.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
    running = live(classifier, ui=True)
    deps = httpx.get(running.url + "/config", timeout=30).json()["dependencies"]
    yield running.url, deps
    running.close()
    mp.undo()


def _no_traceback(caplog):
    time.sleep(1.5)  # an event's run, after its 200, is where Gradio logged its traceback
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage()[:300] for r in caplog.records]


def test_nan_or_infinity_in_a_page_body_is_a_422_not_a_500(page, caplog):
    """Python's JSON reader takes NaN, Infinity and 1e400; Gradio's 422 about them could not be written back
    as JSON: a 500 and a traceback. Now a 422 that says why."""
    url, _ = page
    with caplog.at_level(logging.ERROR):
        for path, body in [("/gradio_api/queue/join", b'{"fn_index": NaN, "data": [], "session_hash": "n1"}'),
                           ("/gradio_api/queue/join", b'{"fn_index": 0, "data": {"x": Infinity}, "session_hash": "n2"}'),
                           ("/gradio_api/queue/join", b'{"fn_index": 1e400, "data": []}'),
                           ("/gradio_api/run/predict", b'{"fn_index": 0, "data": {"x": NaN}}'),
                           ("/gradio_api/cancel", b'{"fn_index": NaN, "session_hash": "x", "event_id": "y"}')]:
            r = httpx.post(url + path, content=body, headers={"content-type": "application/json"}, timeout=30)
            assert r.status_code == 422 and "JSON does not allow" in r.json()["detail"], (path, body, r.text)
    _no_traceback(caplog)


def test_events_gradio_would_fail_after_their_200_are_refused(page, caplog):
    """A handler that runs in the browser only, input values of the wrong type (a number for a file list, a dict
    for a text box) and an empty session hash were each a 200, then a traceback in the log as the run failed."""
    url, deps = page
    browser_only = next(i for i, d in enumerate(deps) if not d.get("backend_fn"))
    files = next(i for i, d in enumerate(deps) if len(d["inputs"]) == 6)  # the page's classify event
    sent = [({"fn_index": browser_only, "data": [], "session_hash": "b1"}, 422),
            ({"fn_index": files, "data": [1, 2, 3, 4, 5, 6], "session_hash": "b2"}, 422),
            ({"fn_index": files, "data": [[], {"a": 1}, True, 0.5, "x", None], "session_hash": "b3"}, 422),
            ({"fn_index": files, "data": [None] * 6, "session_hash": ""}, 400)]
    with caplog.at_level(logging.ERROR):
        for body, code in sent:
            r = httpx.post(url + "/gradio_api/queue/join", json=body, timeout=30)
            assert r.status_code == code, (body, r.status_code, r.text)
    _no_traceback(caplog)


def test_api_names_and_streams_of_nothing_are_a_4xx(page, caplog):
    """/run/ and /call/ with a name no event has, an unknown fn_index or too few values at /run/, the stream of
    an event that does not exist and a stream with an empty session hash: 500s or a stream cut off after its 200,
    each with a traceback. A real call still runs."""
    url, _ = page
    with caplog.at_level(logging.ERROR):
        for path, body, code in [("/gradio_api/run/predict", {"data": []}, 404),
                                 ("/gradio_api/call/nosuch", {"data": []}, 404),
                                 ("/gradio_api/run/predict", {"fn_index": 2**31, "data": []}, 422),
                                 ("/gradio_api/call/classify", {"data": []}, 422)]:
            r = httpx.post(url + path, json=body, timeout=30)
            assert r.status_code == code, (path, body, r.status_code, r.text)
        for path in ("/gradio_api/call/classify/nosuchevent", "/gradio_api/queue/data?session_hash="):
            r = httpx.get(url + path, timeout=30)
            assert r.status_code == 404, (path, r.status_code, r.text)
        for path, body, code in [("/gradio_api/call/classify", {"fn_index": 8, "data": []}, 422),  # by name only
                                 ("/gradio_api/call/v2/classify", {"fn_index": 1}, 422),
                                 ("/gradio_api/call/v2/nosuch", {}, 404)]:
            r = httpx.post(url + path, json=body, timeout=30)
            assert r.status_code == code, (path, body, r.status_code, r.text)
        # the API's own inputs alone (without the page's State) are still taken at /call/
        r = httpx.post(url + "/gradio_api/call/select", json={"data": [0.5]}, timeout=30)
        assert r.status_code == 200, r.text
        r = httpx.post(url + "/gradio_api/call/stop_run", json={"data": []}, timeout=30)
        assert r.status_code == 200, r.text
        stream = httpx.get(url + f"/gradio_api/call/stop_run/{r.json()['event_id']}", timeout=30)
        assert stream.status_code == 200 and "event: complete" in stream.text, stream.text
    _no_traceback(caplog)


def test_a_table_out_that_cannot_be_opened_is_a_usage_error_before_the_run(tmp_path):
    """`classify --out NAME` with no known suffix writes the table at the end; a link to itself or a /proc file
    was a traceback after the whole run. Now it is said first (exit 2)."""
    from typer.testing import CliRunner

    from medimg.cli import app

    image = tmp_path / "a.png"
    from PIL import Image
    Image.new("RGB", (64, 64), "red").save(image)
    loop = tmp_path / "loop"
    os.symlink("loop", loop)
    for out in (loop, "/proc/self/status"):
        if str(out).startswith("/proc") and not os.path.exists(out):
            continue
        result = CliRunner().invoke(app, ["classify", str(image), "--out", str(out)])
        said = re.sub(r"[\s│╭╮╰╯─]+", " ", result.output)  # the error box's lines joined
        assert result.exit_code == 2 and "cannot be written" in said, (out, said[-800:])
