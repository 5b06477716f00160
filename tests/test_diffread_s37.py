"""Session 37's change read line by line: hostile inputs that cost minutes or hundreds of MB in the new code
(an Office package whose parts point at each other many times over, a UTF-16 part declaring a DOCTYPE, a HEIF of
millions of boxes, a long lazysizes bgset, a long /thumb/ URL), each made here and read through the real sources."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from PIL import Image
from webserver import WebServer

import builders as b
from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input
from medimg.sources.web_page import extract

RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
IMAGE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/image"


def png(size=(96, 96)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, "PNG")
    return buf.getvalue()


def rels(targets=(), external=0) -> str:
    out = "".join(f'<Relationship Id="r{i}" Type="{IMAGE}" Target="{t}"/>' for i, t in enumerate(targets))
    out += "".join(f'<Relationship Id="e{i}" Type="{IMAGE}" Target="http://example.org/{i}.png" '
                   'TargetMode="External"/>' for i in range(external))
    return f'<?xml version="1.0"?><Relationships xmlns="{RELS}">{out}</Relationships>'


def package(parts: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        for name, data in parts.items():
            z.writestr(name, data)
    return buf.getvalue()


def deck(k: int, links: int) -> bytes:
    """A drawing d.xml shows the picture and links `links` pictures from outside; k parts a* show d.xml, k parts b*
    each show every a*, k parts c* every b*."""
    parts = {"ppt/media/image1.png": png(), "ppt/_rels/d.xml.rels": rels(["media/image1.png"], external=links)}
    for i in range(k):
        parts[f"ppt/_rels/a{i}.xml.rels"] = rels(["d.xml"])
        parts[f"ppt/_rels/b{i}.xml.rels"] = rels([f"a{j}.xml" for j in range(k)])
        parts[f"ppt/_rels/c{i}.xml.rels"] = rels([f"b{j}.xml" for j in range(k)])
    return package(parts)


def test_an_office_package_whose_parts_point_at_each_other_many_times_over_is_placed_at_once():
    """Each picture and each linked one was placed by walking every path up to the slides, k³ steps a walk here (34 s
    for k = 160 and 10 links, a 387 KB file; for this one 10 s, against 6 s without the links, on a busy machine).
    Each part and depth is now worked out once, so 30 links cost next to nothing beside reading the 10,000
    relationships (timed against the same package without them, as the machine may be busy)."""
    took = []
    for links in (0, 30):
        data = deck(70, links)
        start = time.monotonic()
        items = list(open_input(Blob("deck.pptx", data, name="deck.pptx")))
        took.append(time.monotonic() - start)
        assert [type(i) for i in items] == [ItemError, ImageItem], items
    assert "30 pictures linked from outside the file" in items[0].error
    assert took[1] < 1.5 * took[0] + 1, took


def test_the_places_through_a_chart_and_a_layout_are_as_before():
    """The walk kept its answers: a picture in a chart on slide 2 and on a slide layout, another on two slides."""
    parts = {"ppt/media/image1.png": png(), "ppt/media/image2.png": png((80, 80)),
             **{f"ppt/{name}.xml": "<x/>" for name in ("slides/slide1", "slides/slide2", "charts/chart1",
                                                        "drawings/drawing1", "slideLayouts/slideLayout1")},
             "ppt/slides/_rels/slide1.xml.rels": rels(["../media/image2.png"]),
             "ppt/slides/_rels/slide2.xml.rels": rels(["../charts/chart1.xml", "../media/image2.png"]),
             "ppt/charts/_rels/chart1.xml.rels": rels(["../drawings/drawing1.xml"]),
             "ppt/drawings/_rels/drawing1.xml.rels": rels(["../media/image1.png"]),
             "ppt/slideLayouts/_rels/slideLayout1.xml.rels": rels(["../media/image1.png"])}
    items = [i for i in open_input(Blob("deck.pptx", package(parts), name="deck.pptx")) if isinstance(i, ImageItem)]
    assert sorted(i.locator for i in items) == ["slide", "slide, slide layout"], [i.locator for i in items]


@pytest.mark.parametrize("code", ["utf-16", "utf-16-be"])
def test_a_utf16_part_declaring_a_doctype_is_not_parsed(code):
    """The parts are read with no DOCTYPE (an entity could expand into a million elements between two element
    counts: 721 bytes of .pptx took 7 s and 380 MB). The check looked for `<!DOCTYPE` in UTF-8 bytes only, so a
    UTF-16 part was parsed, entities and all: here its entity is the relationship placing the picture."""
    entity = f"<Relationship Id='r1' Type='{IMAGE}' Target='../media/image1.png'/>"
    body = (f'<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE R [<!ENTITY e "{entity}">]>'
            f'<Relationships xmlns="{RELS}">&e;</Relationships>')
    data = body.encode(code) if code == "utf-16" else "\ufeff".encode(code) + body.encode(code)
    parts = {"ppt/media/image1.png": png(), "ppt/slides/slide1.xml": "<x/>", "ppt/slides/_rels/slide1.xml.rels": data}
    items = [i for i in open_input(Blob("deck.pptx", package(parts), name="deck.pptx")) if isinstance(i, ImageItem)]
    assert [i.locator for i in items] == [""]
    # without the DOCTYPE, a UTF-16 part is read as before
    plain = rels(["../media/image1.png"]).replace('version="1.0"', 'version="1.0" encoding="UTF-16"').encode(code)
    parts["ppt/slides/_rels/slide1.xml.rels"] = plain if code == "utf-16" else "\ufeff".encode(code) + plain
    items = [i for i in open_input(Blob("deck.pptx", package(parts), name="deck.pptx")) if isinstance(i, ImageItem)]
    assert [i.locator for i in items] == ["slide"]


def test_a_heif_of_millions_of_boxes_is_refused_at_once():
    """The stored-size reader walked every top-level box in Python: 2 million 8-byte `free` boxes after a real
    HEIC's mdat (16 MB) took 5 s before libheif read the photo (200 MB: a minute). Past 100,000 boxes the file is
    an error, said at once."""
    photo = b.encode(b.pattern((64, 48)), "HEIF", quality=80)
    data = photo + b"\x00\x00\x00\x08free" * 2_000_000
    start = time.monotonic()
    (item,) = list(open_input(Blob("photo.heic", data, name="photo.heic")))
    assert time.monotonic() - start < 2
    assert isinstance(item, ItemError) and "more than 100,000 boxes" in item.error, item
    (item,) = list(open_input(Blob("photo.heic", photo + b"\x00\x00\x00\x08free" * 1000, name="photo.heic")))
    assert isinstance(item, ImageItem) and item.image.size == (64, 48)


def test_a_long_lazysizes_bgset_is_read_in_linear_time():
    """`_BGSET_MEDIA` (`\\s*\\[([^\\]]*)\\]\\s*$`, searched) ran from every `[` to the attribute's end: 30,000 of them
    took 41 s (a busy machine). The media at a set's end is still read."""
    html = (f'<html><body><div data-bgset="a.jpg {"[" * 30_000}"></div>'
            '<div data-bgset="s.jpg 300w, m.jpg 900w [(max-width: 600px)] | w.jpg 1200w, x.jpg 2400w"></div>'
            f'<div data-bgset="p.jpg 300w{" " * 30_000}"></div></body></html>')
    start = time.monotonic()
    found = extract(html, "http://example.org/page.html")
    assert time.monotonic() - start < 2
    assert [c.url.rsplit("/", 1)[1] for c in found] == ["x.jpg", "p.jpg"]


def test_an_image_at_a_long_thumb_url_is_read_at_once():
    """`picture_url` matched `^(.*)/thumb(/.+)/…px-…$`, which tries every `/thumb` with every `/` after it: an image
    at a 30,000-character URL of `/thumb` folders took 31 s (a busy machine) to note. A real wiki thumbnail is
    still its original."""
    from medimg.sources.web_fetch import picture_url

    path = "/w" + "/thumb" * 5000 + "/a.png"  # no thumbnail: the regex tried every way before failing
    with WebServer() as srv:
        srv.add(path, png((200, 150)), "image/png")
        srv.add("/page.html", f'<html><body><img src="{path}"></body></html>')
        start = time.monotonic()
        items = list(open_input(srv.url("/page.html"), Limits(allow_private=True, total_timeout=8)))
        took = time.monotonic() - start
    assert [type(i) for i in items] == [ImageItem], items
    assert took < 5, took
    assert picture_url("https://upload.wikimedia.org/wikipedia/commons/thumb/a/ab/X.png/320px-X.png") == \
        "https://upload.wikimedia.org/wikipedia/commons/a/ab/X.png"
    assert picture_url("https://e.org/thumb/a/thumb/b.png/lossy-page1-120px-b.png") == "https://e.org/thumb/a/b.png"
    assert picture_url("https://e.org/a/thumb//320px-X.png") == "https://e.org/a/thumb//320px-X.png"


def test_a_retry_after_of_other_digits_leaves_the_http_status_as_the_error():
    """`²` is a digit to str.isdigit() but not to float(): the row said "ValueError: could not convert string to
    float: '²'" instead of the 429. A Retry-After of seconds is ASCII digits (RFC 9110)."""
    with WebServer() as srv:
        srv.add("/busy.png", b"", "text/plain", status=429, headers={"Retry-After": "\xb2"})
        srv.add("/ok.png", png((200, 150)), "image/png")
        srv.add("/page.html", '<html><body><img src="/busy.png"><img src="/ok.png"></body></html>')
        items = list(open_input(srv.url("/page.html"), Limits(allow_private=True, total_timeout=8)))
    assert [type(i) for i in items] == [ItemError, ImageItem], items
    assert "HTTP 429" in items[0].error and "ValueError" not in items[0].error, items[0].error


MEASURE = """
import json, sys
from medimg.sources import ImageItem, open_input

def rss(field):  # VmRSS: now; VmHWM: the peak
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

list(open_input(sys.argv[1]))  # the small file first: lazy imports and decoder set-up are not counted
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass
start = rss("VmRSS")
items = list(open_input(sys.argv[2]))
print(json.dumps({"grew": rss("VmHWM") - start, "read": [isinstance(i, ImageItem) for i in items]}))
"""


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="peak RSS is read from /proc")
def test_a_truncated_jpeg_is_tried_again_within_the_memory_of_one_decode(tmp_path):
    """A JPEG that Pillow calls truncated is decoded twice more to tell a missing end marker from a cut scan; both
    decodes were kept as bytes beside the failed one: a 36 Mpx photo cut mid-scan grew the peak by over 4 × its
    pixels (81 Mpx: 1.3 GB, 309 MB before session 37). One decode at a time now, the failed one freed first."""
    import json
    import subprocess
    import sys

    import numpy as np

    side = 6000
    noise = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).resize((side, side)).save(buf, "JPEG", quality=30)
    whole = buf.getvalue()
    small, cut = tmp_path / "small.jpg", tmp_path / "cut.jpg"
    small.write_bytes(whole[:2000])  # truncated too: the retry's path warmed up
    cut.write_bytes(whole[:len(whole) // 2])
    done = subprocess.run([sys.executable, "-c", MEASURE, str(small), str(cut)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["read"] == [False]
    assert found["grew"] < 2.5 * side * side * 3, found["grew"] / 1e6


@pytest.mark.parametrize("named", ["sub/a.raw", "../a.raw", "."])
def test_a_header_naming_a_data_file_in_another_folder_does_not_end_the_folders_walk(tmp_path, named):
    """MetaIO lets an .mhd name `sub/a.raw`; finding the header beside a.raw asked Path.with_name for that name,
    whose ValueError escaped: a.raw given alone raised out of open_input, and the folder's walk ended there
    ("internal error: Invalid name 'sub/a.raw'"), its other files never read."""
    folder = tmp_path / "case"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.mhd").write_text("ObjectType = Image\nNDims = 2\nDimSize = 4 4\nElementType = MET_UCHAR\n"
                                  f"ElementDataFile = {named}\n")
    (folder / "a.raw").write_bytes(bytes(range(16)))
    (folder / "sub" / "a.raw").write_bytes(bytes(range(16)))
    (folder / "z.png").write_bytes(png())
    alone = list(open_input(str(folder / "a.raw")))
    assert [i.origin for i in alone] == [str(folder / "a.raw")], alone
    items = list(open_input(str(folder)))
    assert [i.origin.rsplit("case/", 1)[1] for i in items] == ["a.mhd", "a.raw", "z.png", "sub/a.raw"], items
    assert isinstance(items[2], ImageItem)
