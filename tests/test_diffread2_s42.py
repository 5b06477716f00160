"""Second read of session 42's later commits: saved pages (sources/saved_page.py)."""

import plistlib
import re
import time

from medimg.sources import ImageItem, ItemError
from test_savedpages_s42 import PAGE, items, mhtml, picture, saved_resources, shown


def _archive(page: str, frames) -> dict:
    return {"WebMainResource": {"WebResourceData": page.encode(), "WebResourceURL": "https://j.example/case.html",
                                "WebResourceMIMEType": "text/html"},
            "WebSubresources": [{"WebResourceData": picture((120, 100), 1), "WebResourceMIMEType": "image/jpeg",
                                 "WebResourceURL": "https://j.example/f1.jpg"}],
            "WebSubframeArchives": frames}


def test_a_webarchive_naming_one_frame_archive_many_times_is_read_at_once():
    # plistlib gives one object for a reference repeated: 12 references a level, 7 levels, in 8 kB
    level = _archive("<p>frame", [])
    for _ in range(7):
        level = _archive("<p>frame", [level] * 12)
    data = plistlib.dumps(level, fmt=plistlib.FMT_BINARY)
    assert len(data) < 10_000
    t = time.process_time()
    got = items(data, "deep.webarchive")
    assert time.process_time() - t < 3  # 12**7 walks of the same archive took 25 s of CPU
    assert shown(got) == [("resource #1", (120, 100))]


def _cyclic() -> bytes:
    """A web archive whose one frame archive is the archive itself, as a hand-made binary plist can say."""
    data = plistlib.dumps(_archive('<img src="f1.jpg">', [{"X": 1}]), fmt=plistlib.FMT_BINARY)
    for m in re.finditer(rb"\xa1", data):  # a one-element array: its one-byte reference made 0, the top object
        patched = data[:m.start() + 1] + b"\x00" + data[m.start() + 2:]
        try:
            top = plistlib.loads(patched)
        except Exception:
            continue
        if isinstance(top, dict) and top.get("WebSubframeArchives") == [top]:
            return patched
    raise AssertionError("no frame array found")


def test_a_webarchive_whose_frame_is_itself_ends():
    data = _cyclic()
    top = plistlib.loads(data)
    assert top["WebSubframeArchives"][0] is top  # a cycle, as plistlib reads it
    got = items(data, "loop.webarchive")  # looped for ever
    assert shown(got) == [("img #1", (120, 100))]


def test_chrome_mhtml_with_a_long_title_is_still_a_page():
    u = "https://journal.example"
    title = "=?utf-8?Q?" + "=E8=83=B8=E9=83=A8" * 300 + "?="  # a long CJK title, as Chrome encodes it
    data = mhtml(f"{u}/case.html", PAGE.format(u=u), saved_resources(u))
    data = data.replace(b"Subject: Case", b"Subject: " + "\r\n ".join(
        title[i:i + 70] for i in range(0, len(title), 70)).encode())
    assert data.lower().find(b"multipart/related") > 4096
    got = items(data, "case")  # no .mhtml name: as an upload or a part without one
    assert shown(got) == [("img #2", (150, 120)), ("img #3", (300, 200)), ("img #4", (200, 180)),
                          ("resource #5", (640, 200))]
    assert not any(isinstance(i, ItemError) and "e-mail" in i.error for i in got)
    assert all(isinstance(i, (ImageItem, ItemError)) for i in got)
