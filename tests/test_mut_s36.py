"""Tests for the session-36 mutants that survived the tests of the day's change (s36_mut): each fails with its
mutant applied and passes as the code is (see /work/review/s36_mut/NOTES.md for the table)."""
from __future__ import annotations

import gzip
import io
import time
import warnings
import zipfile

import numpy as np

from builders import tar_bytes
from medimg.sources import Blob, ImageItem, Limits, open_input

NOTE = "skipped: the data file of {}, read with it"


def _voxels(seed: int, side: int = 16) -> bytes:
    return np.random.default_rng(seed).integers(0, 255, (side, side), dtype=np.uint8).tobytes()


def _mhd(data_file: str, side: int = 16) -> bytes:
    return (f"ObjectType = Image\nNDims = 2\nDimSize = {side} {side}\nElementType = MET_UCHAR\n"
            f"ElementDataFile = {data_file}\n").encode()


def _zip(members) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a name given twice, on purpose
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def _rows(data: bytes, name: str, **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def _by(items) -> dict:
    return {i.origin: i for i in items}


# --- archive.py: which zip member is a header's data file (_header_of) ------------------------------------------

def test_a_zip_member_is_a_note_only_for_the_header_that_names_it():
    """v.mhd names w.raw: v.raw beside it is a member of its own, not 'the data file of v.mhd' (mutant: any
    header of the same stem claimed it)."""
    by = _by(_rows(_zip([("s/v.mhd", _mhd("w.raw")), ("s/w.raw", _voxels(1)), ("s/v.raw", _voxels(2))]), "e.zip"))
    assert isinstance(by["e.zip:s/v.mhd"], ImageItem)
    assert by["e.zip:s/v.raw"].error != NOTE.format("v.mhd")


def test_a_gzipped_data_file_in_a_zip_is_the_note_of_its_nrrd_header():
    """A .nhdr's `v.raw.gz` in a zip is the note naming it, as in a tar (mutant: .gz not taken off the name, so
    it was inflated and read again as a member of its own)."""
    nhdr = b"NRRD0004\ntype: uint8\ndimension: 2\nsizes: 16 16\nencoding: gzip\ndata file: v.raw.gz\n\n"
    by = _by(_rows(_zip([("s/v.nhdr", nhdr), ("s/v.raw.gz", gzip.compress(_voxels(3)))]), "e.zip"))
    assert isinstance(by["e.zip:s/v.nhdr"], ImageItem)
    assert by["e.zip:s/v.raw.gz"].error == NOTE.format("v.nhdr")


def test_the_second_data_file_of_a_name_without_a_second_header_is_its_own_member():
    """Of a name given twice, the k-th data file is the k-th header's: a second v.raw with no second v.mhd is
    not the first header's note (mutant: looked up the first header whatever the turn)."""
    by = _by(_rows(_zip([("s/v.mhd", _mhd("v.raw")), ("s/v.raw", _voxels(4)), ("s/v.raw", _voxels(5))]), "e.zip"))
    assert by["e.zip:s/v.raw"].error == NOTE.format("v.mhd")
    assert by["e.zip:s/v (2).raw"].error != NOTE.format("v.mhd")


def test_a_data_file_without_a_data_extension_is_its_own_member_in_a_zip_as_in_atar_bytes():
    """A header may name a data file of any name (ElementDataFile = v.bin); only .raw, .zraw, .img, .dat (maybe
    .gz) are its notes, in a zip as in a tar (mutant: in a zip, v.bin beside v.bin.mhd became its note)."""
    members = [("s/v.bin.mhd", _mhd("v.bin")), ("s/v.bin", _voxels(6))]
    for data, name in ((_zip(members), "e.zip"), (tar_bytes(members), "e.tar")):
        by = _by(_rows(data, name))
        assert isinstance(by[f"{name}:s/v.bin.mhd"], ImageItem), name
        assert by[f"{name}:s/v.bin"].error != NOTE.format("v.bin.mhd"), name


# --- tar_pairs.py: data files waiting for their headers in a compressed tar -------------------------------------

def test_a_data_file_paired_with_its_header_no_longer_counts_as_waiting():
    """Data files before their headers are kept up to max_input_bytes at once; one paired leaves that room (mutant:
    it was still counted, so the next pair's data file was pushed out and its header failed)."""
    side = 224  # 50,176 bytes a data file: one waits within the cap of 80,000, two would not
    members = []
    for k in range(3):
        members += [(f"s/v{k}.raw", _voxels(k, side)), (f"s/v{k}.mhd", _mhd(f"v{k}.raw", side))]
    by = _by(_rows(tar_bytes(members, "w:gz"), "e.tgz", max_input_bytes=80_000))
    for k in range(3):
        assert isinstance(by[f"e.tgz:s/v{k}.mhd"], ImageItem), by[f"e.tgz:s/v{k}.mhd"]
        assert by[f"e.tgz:s/v{k}.raw"].error == NOTE.format(f"v{k}.mhd")


def test_an_analyze_header_before_its_gzipped_image_in_a_tgz_reads_it(tmp_path):
    """A .hdr names a.img; its data may be a.img.gz. The header that came first is paired with a.img.gz when that
    comes (mutant: only a data file of the very name was looked for, so the header said its data was missing)."""
    import nibabel as nib

    vox = np.frombuffer(_voxels(7), np.uint8).reshape(16, 16)
    nib.AnalyzeImage(vox[:, :, None].astype(np.int16), np.eye(4)).to_filename(tmp_path / "a.hdr")
    members = [("s/a.hdr", (tmp_path / "a.hdr").read_bytes()),
               ("s/a.img.gz", gzip.compress((tmp_path / "a.img").read_bytes()))]
    by = _by(_rows(tar_bytes(members, "w:gz"), "e.tgz"))
    assert isinstance(by["e.tgz:s/a.hdr"], ImageItem), by["e.tgz:s/a.hdr"]
    assert by["e.tgz:s/a.img.gz"].error == NOTE.format("a.hdr")


def test_a_header_waiting_for_its_data_file_frees_its_room_when_paired(monkeypatch):
    """Headers that come first wait within HEADERS_HELD bytes; one paired leaves that room (mutant: it was still
    counted, so the next header was given at once and said its data file was missing)."""
    from medimg.sources import tar_pairs

    monkeypatch.setattr(tar_pairs, "HEADERS_HELD", len(_mhd("v0.raw")) + 10)  # room for one
    members = []
    for k in range(3):
        members += [(f"s/v{k}.mhd", _mhd(f"v{k}.raw")), (f"s/v{k}.raw", _voxels(k))]
    by = _by(_rows(tar_bytes(members, "w:gz"), "e.tgz"))
    for k in range(3):
        assert isinstance(by[f"e.tgz:s/v{k}.mhd"], ImageItem), by[f"e.tgz:s/v{k}.mhd"]


def test_an_mhd_holding_its_own_voxels_is_given_in_its_place_in_a_tgz():
    """A MetaImage with its voxels inside (ElementDataFile = LOCAL) waits for nothing: its row comes in archive
    order (mutant: it was held as a data file waiting for a header, and came after the members behind it)."""
    local = _mhd("LOCAL") + _voxels(8)
    png = io.BytesIO()
    from PIL import Image

    Image.fromarray(np.full((64, 64), 90, np.uint8)).save(png, "PNG")
    items = _rows(tar_bytes([("s/x.mhd", local), ("s/z.png", png.getvalue())], "w:gz"), "e.tgz")
    assert [i.origin for i in items] == ["e.tgz:s/x.mhd", "e.tgz:s/z.png"]
    assert isinstance(items[0], ImageItem)


def test_what_still_waits_at_the_end_of_a_tar_comes_in_archive_order():
    """A data file no header named and a header whose data file never came are given at the end in the order
    they came (mutant: headers first, whatever their place)."""
    for mode, name in (("w:gz", "e.tgz"), ("w", "e.tar")):
        items = _rows(tar_bytes([("s/a.raw", _voxels(9)), ("s/b.mhd", _mhd("c.raw"))], mode), name)
        assert [i.origin for i in items] == [f"{name}:s/a.raw", f"{name}:s/b.mhd"], name


# --- css.py -------------------------------------------------------------------------------------------------------

def test_a_url_right_after_an_image_set_is_not_taken_for_one_of_its_options():
    """A url() that starts where an image-set() ends (minified CSS) is outside it (mutant: the end was counted
    inside, so the url() was dropped)."""
    from medimg.sources import css

    found = []
    css.css_urls('.a{background:image-set("a.png" 1x)url(b.png)}', lambda url, *_: found.append(url))
    assert found == ["a.png", "b.png"]



# --- net.py and web.py (pages served on 127.0.0.1, with the private-address opt-in) -----------------------------

OPEN = {"allow_private": True, "connect_timeout": 2, "read_timeout": 2}


def _photo(size=(120, 96), shift: int = 0) -> bytes:
    from PIL import Image

    y, x = np.mgrid[:size[1], :size[0]]
    rgb = np.stack([(x * 2 + shift) % 256, (y * 3) % 256, (x + y) % 256], -1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def test_a_retry_after_just_over_five_seconds_is_not_waited_even_with_time_left():
    """MAX_RETRY_WAIT (5 s) bounds the wait even when the deadline is far (mutant: any wait that fits before the
    deadline was waited out: 6 s here)."""
    import pytest
    from webserver import WebServer

    from medimg.sources import net

    with WebServer() as srv:
        srv.add("/busy.png", b"", "text/plain", status=503, headers={"Retry-After": "6"})
        started = time.monotonic()
        with pytest.raises(net.FetchError, match=r"it asks to wait 6 s: Retry-After"):
            net.fetch(srv.url("/busy.png"), Limits(**OPEN, total_timeout=60))
        assert time.monotonic() - started < 3 and srv.hits["/busy.png"] == 1


def test_an_error_page_with_a_byte_order_mark_sent_as_image_png_is_said_to_be_an_html_page():
    """Editors save pages with a BOM or a blank line first: still an HTML page (mutant: those were not taken off,
    and the note said only image/png)."""
    from webserver import WebServer

    with WebServer() as srv:
        srv.add("/gone.png", "\ufeff\n  <!doctype html><html><body>Not found</body></html>", "image/png")
        srv.add("/page.html", '<html><body><img src="gone.png"></body></html>')
        items = list(open_input(srv.url("/page.html"), Limits(**OPEN, total_timeout=5)))
    said = [i.error for i in items if getattr(i, "error", None) and not i.skipped]
    assert len(said) == 1 and said[0].startswith("not an image: got an HTML page sent as image/png"), said


def test_a_noscript_thumbnail_inside_a_link_to_the_full_image_is_its_note():
    """A <noscript> picture in a link to the full-size image is that image's thumbnail, as an <img> there is
    (mutant: only <img> and <picture> were, so the thumbnail was read as a second picture)."""
    from webserver import WebServer

    with WebServer() as srv:
        srv.add("/big.png", _photo((900, 600)), "image/png")
        srv.add("/thumb.png", _photo((150, 100), 40), "image/png")
        srv.add("/page.html", '<html><body><a href="/big.png"><noscript><img src="/thumb.png"></noscript></a>'
                              '</body></html>')
        items = list(open_input(srv.url("/page.html"), Limits(**OPEN, total_timeout=5)))
    assert [i.locator.split(" http")[0] for i in items if isinstance(i, ImageItem)] == ["a #2"]
    note, = [i for i in items if not isinstance(i, ImageItem)]
    assert note.skipped and note.locator.startswith("noscript #1") and note.error.startswith("thumbnail of a #2")


# --- microscopy.py: a TIFF pyramid without OME metadata ----------------------------------------------------------

def test_tiled_pages_each_with_a_thumbnail_are_read_page_by_page():
    """A tiled document whose every page has a reduced-resolution thumbnail after it is no pyramid: each page is
    read (mutant: the first two pages looked like a pyramid, so only its first page was)."""
    import tifffile

    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tw:
        for k in range(3):
            tw.write(np.full((512, 512), 40 * k + 20, np.uint8), photometric="minisblack", tile=(256, 256))
            tw.write(np.full((128, 128), 40 * k + 20, np.uint8), photometric="minisblack", tile=(128, 128),
                     subfiletype=1)
    got = _rows(buf.getvalue(), "d.tif")
    assert [i.locator for i in got] == [f"page {n}" for n in range(1, 7)], got


# --- server/app.py: a request cut by the stop ---------------------------------------------------------------------

def test_a_request_cut_after_its_answer_began_is_not_given_a_second_answer():
    """CutAtStop answers 503 only when nothing of the answer went yet; once its start went, the cancel goes on and
    the connection is closed as it was (mutant: a second http.response.start was sent after the first)."""
    import asyncio

    from medimg.server.app import CutAtStop

    async def begun(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise asyncio.CancelledError

    async def not_begun(scope, receive, send):
        raise asyncio.CancelledError

    async def call(app) -> list:
        sent = []

        async def send(message):
            sent.append(message)

        async def receive():
            return {"type": "http.disconnect"}

        scope = {"type": "http", "method": "GET", "path": "/api/classify", "root_path": "", "headers": []}
        try:
            await CutAtStop(app)(scope, receive, send)
        except asyncio.CancelledError:
            sent.append("cancelled")
        return sent

    got = asyncio.run(call(begun))
    assert [m if m == "cancelled" else m["type"] for m in got] == ["http.response.start", "cancelled"]
    got = asyncio.run(call(not_begun))
    assert got[0]["type"] == "http.response.start" and got[0]["status"] == 503
    assert "cancelled" not in got


# --- pdf_figures.py: clips of other shapes than rectangles --------------------------------------------------------

def test_past_max_clip_draws_an_image_under_an_ellipse_is_judged_by_the_clips_box(monkeypatch):
    """MAX_CLIP_DRAWS bounds the clips drawn on a page; past it an image is judged by its clip's box, as before
    (mutant: the bound was not kept, so the ellipse was still drawn and the image rendered as cropped)."""
    from test_pdf_clip_s36 import RESOURCES, FONT, SHAPES, _image, _run
    from builders import raw_pdf

    from medimg.sources import pdf_figures

    size, content, _, _ = SHAPES["ellipse filling the box"]
    data = raw_pdf(content.encode(), RESOURCES, [_image(*size), FONT])
    assert _run(data)[0].locator == "page 1, image 1 (cropped, rendered)"
    monkeypatch.setattr(pdf_figures, "MAX_CLIP_DRAWS", 0)
    (item,) = _run(data)
    assert item.locator == "page 1, image 1" and "xref" in item.metadata


def test_an_image_a_clip_trims_by_a_sliver_comes_out_whole_from_its_file():
    """A clip that leaves CROPPED of an image or more counts as none: the image comes out whole, its own pixels
    (mutant: the trimmed part was returned as seen, so it was rendered from the page as a cropped image)."""
    from test_pdf_clip_s36 import RESOURCES, FONT, WIDE, _image, _run
    from builders import raw_pdf

    data = raw_pdf(f"q 100 400 297 200 re W n {WIDE} Q".encode(), RESOURCES, [_image(300, 200), FONT])
    (item,) = _run(data)
    assert item.locator == "page 1, image 1" and "xref" in item.metadata and item.image.size == (300, 200)
