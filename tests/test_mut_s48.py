"""Session 48 (mut): tests that kill hand-made mutants of the session's new code which its own tests let live."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import tifffile

from builders import image_bytes
from medimg.output import Record
from medimg.server.ui import _counts
from medimg.sources import Blob, ImageItem, ItemError, open_input, open_inputs


def test_a_data_uri_in_capitals_is_read_as_one():
    """`DATA:image/png;base64,…` (the scheme is case-blind) is read as the lower-case one is."""
    uri = "DATA:image/png;base64," + base64.b64encode(image_bytes("PNG", size=(64, 48))).decode()
    items = list(open_inputs([uri]))
    assert [type(it) for it in items] == [ImageItem], items


def test_a_data_uri_without_a_comma_says_how_to_give_a_file_of_that_name():
    said = [it.error for it in open_inputs(["data:scan.png"])]
    assert said == ["malformed data: URI (no comma); a file of that name is given as ./data:scan.png"], said


def test_litter_given_is_not_called_a_list_of_inputs():
    """A desktop.ini whose lines name image files is Windows' litter, not a list given by mistake."""
    data = b"[.ShellClassInfo]\r\nIconFile=scan.png\r\nInfoTip=knee.png\r\n"
    got = list(open_input(Blob("desktop.ini", data, name="desktop.ini")))
    assert len(got) == 1 and got[0].skipped, got
    assert got[0].error == "skipped: Windows folder settings (desktop.ini), not an image", got


def _jpeg_tiff(damaged: bool) -> bytes:
    y, x = np.mgrid[0:300, 0:400]
    out = io.BytesIO()
    tifffile.imwrite(out, np.dstack([(x + y) % 256, x % 256, y % 256]).astype(np.uint8), photometric="rgb",
                     compression="jpeg", metadata=None)
    data = bytearray(out.getvalue())
    if damaged:
        with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
            offset, count = tif.pages[0].dataoffsets[0], tif.pages[0].databytecounts[0]
        for i in range(offset + count // 3, offset + count // 3 + 200):
            data[i] ^= 0x5A
    return bytes(data)


def test_libtiff_errors_of_one_file_are_not_held_against_the_next():
    """The errors kept for a thread are cleared before each page: a good TIFF read after a damaged one in the same
    thread is an image, not "corrupt TIFF image" for the last file's error."""
    from medimg.sources.quiet import libtiff_errors

    if libtiff_errors() is None:
        pytest.skip("no libtiff handler installed (not Linux)")
    bad = list(open_input(Blob("bad.tif", _jpeg_tiff(True))))
    assert len(bad) == 1 and isinstance(bad[0], ItemError) and bad[0].error.startswith("corrupt TIFF"), bad
    good = list(open_input(Blob("good.tif", _jpeg_tiff(False))))
    assert [type(i) for i in good] == [ImageItem], good


def test_an_error_mentioning_a_cap_is_not_counted_as_not_read_to_the_end():
    """Only skipped notes count as "not read to the end"; an error is an error (its own count), whatever it says."""
    ok = Record(input="a.png", locator="", label="photo", confidence=0.9, p_medical=0.05, verdict="non-medical",
                width=10, height=10)
    failed = Record(input="clip.mp4", locator="", error="gave no frame: out of time (video_timeout)")
    empty = Record(input="notes.txt", locator="", error="skipped: not an image or a supported container",
                   skipped=True)
    text = _counts([ok, failed, empty], 0.6)
    assert "not read to the end" not in text and "1 passed over (no image in it" in text, text


def test_an_exclude_list_with_old_mac_line_ends_and_an_open_quote_is_refused(tmp_path):
    """Lines ending in a bare CR (a classic-Mac or some spreadsheets' CSV): the rows run into one path all the same."""
    from medimg.training.dataset import CorpusError, excluded

    path = tmp_path / "exclude.csv"
    path.write_bytes(b'path,reason\rct/a/1.png,blurred\r"ct/a/0.png,typo\rct/b/0.png,wrong\r')
    with pytest.raises(CorpusError, match=r"exclude.csv, line 3: a quote"):
        excluded(path)


def test_a_list_line_with_no_end_is_read_a_cap_at_a_time(tmp_path):
    """The line with no end is refused after FIELD_LIMIT characters, not read whole first (/dev/zero: all memory):
    what Python holds while refusing a 32 MB one stays near the cap."""
    import tracemalloc

    from medimg.lists import FIELD_LIMIT, open_list

    listed = tmp_path / "list.txt"
    with open(listed, "w") as f:
        f.write("a.png\n")
        for _ in range(32):
            f.write("y" * FIELD_LIMIT)
    tracemalloc.start()
    try:
        entries = open_list(str(listed))
        assert list(entries) == ["a.png"] and "line 2 is over" in entries.failed, entries.failed
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12 * FIELD_LIMIT, peak


def test_a_cancelled_stream_closes_without_waiting_for_its_threads(tiny_classifier, monkeypatch):
    """A run cancelled (the server's request timed out) ends at once: its caller waits for its threads itself
    (run_threads), so closing it does not wait STOP_WAIT for them."""
    import threading

    from medimg import pipeline
    from medimg.pipeline import classify

    waited: list = []
    monkeypatch.setattr(pipeline, "_join", lambda threads, wait: waited.append(list(threads)))
    cancel = threading.Event()
    blobs = [Blob(f"{i}.png", image_bytes("PNG", size=(64, 48))) for i in range(4)]
    records = classify(blobs, tiny_classifier, workers=2, batch_size=1, cancel=cancel)
    next(records)
    cancel.set()
    records.close()
    assert waited == []
    waited.clear()
    records = classify(blobs, tiny_classifier, workers=2, batch_size=1)
    next(records)
    records.close()  # not cancelled: its threads are waited for
    assert len(waited) == 1 and waited[0], waited


def test_an_offline_server_reads_a_data_uri_and_refuses_an_address(tiny_classifier):
    """--offline: a data: URI has nothing to fetch, so it is read; an http address beside it is still refused."""
    from fastapi.testclient import TestClient

    from medimg.server import ServerConfig, Worker, create_app

    uri = "data:image/png;base64," + base64.b64encode(image_bytes("PNG", size=(64, 48))).decode()
    cfg = ServerConfig(offline=True)
    client = TestClient(create_app(cfg, Worker(cfg, tiny_classifier), ui=False), raise_server_exceptions=False)
    for body in ({"url": uri}, {"urls": [uri]}):
        r = client.post("/api/classify-url", json=body)
        assert r.status_code == 200, r.text[:300]
        assert [x.get("error") for x in r.json()["results"]] == [None]
    r = client.post("/api/classify-url", json={"urls": [uri, "http://127.0.0.1:1/a.png"]})
    assert r.status_code == 400, r.text[:300]
