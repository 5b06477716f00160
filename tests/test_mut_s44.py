"""Mutation testing of session 44's code (s44_mut): behaviours its own tests left unpinned, each a test that a
hand-made mutant of the code survived."""

from __future__ import annotations

import base64

from test_mail_s44 import SVG, errors, flat, found, frame, items_of, picture

from medimg.sources import ItemError


def _notes(items: list) -> list[str]:
    return [i.error for i in items if isinstance(i, ItemError) and i.skipped]


# --- flat OpenDocument -------------------------------------------------------------------------------------------

def test_a_document_root_of_another_namespace_is_not_a_flat_document():
    data = (b'<?xml version="1.0"?><d:document xmlns:d="urn:example:other">'
            + b"<d:binary-data>" + base64.b64encode(picture()) + b"</d:binary-data></d:document>")
    items = items_of(data, "other.xml")
    assert not any("flat OpenDocument" in i.error for i in items if isinstance(i, ItemError)), items


def test_a_flat_document_without_pictures_says_so():
    items = items_of(flat("text", "<office:text><text:p>Befund ohne Bild</text:p></office:text>"), "plain.fodt")
    assert found(items) == [] and errors(items) == []
    assert _notes(items) == ["flat OpenDocument text document: its text left out; no pictures found"]


def test_damage_early_in_a_long_flat_document_is_named_where_it_is():
    # damage on the first line, then over a megabyte more (fed later): the error names the damage, once
    body = (f'<office:text>{frame((picture(), "image/png"))}<text:p>a &amp b</text:p>'
            f'<text:p>{"x" * (3 << 20)}</text:p>{frame((picture("JPEG"), "image/jpeg"))}</office:text>')
    items = items_of(flat("text", body), "long.fodt")
    assert found(items) == [("long.fodt:picture-1.png", "", (200, 150))]
    (err,) = errors(items)
    assert "is cut off or damaged (not well-formed (invalid token): line 11, column 61)" in err[2], err


def test_svg_and_raster_pictures_outside_any_frame_are_each_read():
    # pictures in the styles (a page's fill) have no frame: an SVG there is not replaced by the next picture
    fills = "".join(f'<draw:fill-image draw:name="f{n}"><office:binary-data>{base64.encodebytes(data).decode()}'
                    f'</office:binary-data></draw:fill-image>' for n, data in enumerate((SVG, picture())))
    items = items_of(flat("graphics", "<office:drawing><draw:page/></office:drawing>",
                          f"<office:styles>{fills}</office:styles>"), "fills.fodg")
    assert [i.origin for i in items][:2] == ["fills.fodg:picture-1.svg", "fills.fodg:picture-2.png"], items
    assert not any("raster copy" in note for note in _notes(items))


def test_a_picture_over_max_input_bytes_is_an_error_and_the_next_is_read():
    import io

    import numpy as np
    from PIL import Image

    out = io.BytesIO()  # noise: a PNG of 120 KB
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(out, "PNG")
    big, small = out.getvalue(), picture("JPEG", (40, 30))
    body = f'<office:text>{frame((big, "image/png"))}{frame((small, "image/jpeg"))}</office:text>'
    items = items_of(flat("text", body), "big.fodt", max_input_bytes=len(big) // 2)
    assert found(items) == [("big.fodt:picture-2.jpeg", "", (40, 30))]
    assert errors(items) == [("big.fodt:picture-1", "", f"picture is over the max_input_bytes cap of "
                                                         f"{len(big) // 2:,}; not read")]


# --- a saved page's stylesheets ----------------------------------------------------------------------------------

def _sheet_reader(tmp_path, ctx):
    from medimg.sources.html_file import UP, _SheetReader

    folder = tmp_path.resolve()
    return _SheetReader(folder, UP + folder.as_posix().strip("/") + "/", ctx, fetcher=None)


def test_a_page_in_a_message_fetches_no_remote_stylesheet(tmp_path):
    from medimg.sources import net
    from medimg.sources.base import Context

    reader = _sheet_reader(tmp_path, Context().no_fetching("it came in a message"))
    try:  # the fetcher (None here) is never reached
        reader.fetch("https://tracker.example/mail.css")
    except net.FetchError as exc:
        assert "not fetched: it came in a message" in str(exc)
    else:
        raise AssertionError("fetched")


def test_a_stylesheet_on_disk_is_read_under_the_cap_it_is_given(tmp_path):
    from urllib.parse import quote

    from medimg.sources import net
    from medimg.sources.base import Context
    from medimg.sources.html_file import FOLDER, LOCAL, UP

    (tmp_path / "site.css").write_text("body { background: url(a.png) }\n" * 10)
    reader = _sheet_reader(tmp_path, Context())
    url = LOCAL + FOLDER + quote(UP + tmp_path.resolve().as_posix().strip("/") + "/") + "site.css"
    assert reader.fetch(url).data.startswith(b"body")
    try:
        reader.fetch(url, max_bytes=100)
    except net.FetchError as exc:
        assert "over the cap of 100" in str(exc)
    else:
        raise AssertionError("read past its cap")


def test_a_background_that_is_also_an_img_of_the_page_is_read_once(tmp_path):
    from test_savedpage_css_s44 import rows, saved

    from medimg.sources import open_input

    page = saved(tmp_path)
    (page.parent / "case_files" / "more.css").write_text('#m{background:url("fig1.png")}')  # the page's own img
    assert rows(list(open_input(page))) == [("ImageItem", "img #1 case_files/fig1.png"),
                                            ("ImageItem", "css #2 case_files/hero.png")]


def test_an_svg_replaced_by_its_raster_copy_gives_its_bytes_back_to_the_zip_max_bytes_cap():
    png, png2 = picture(), picture("JPEG", (60, 40))
    assert len(SVG) > 50
    one = flat("spreadsheet", f"<office:spreadsheet><table:table table:name='S'><table:shapes>"
                              f"{frame((SVG, 'image/svg+xml'), (png, 'image/png'))}</table:shapes></table:table>"
                              f"</office:spreadsheet>")
    # room for the copy only: the SVG, counted first, is not read beside it
    items = items_of(one, "a.fods", zip_max_bytes=len(png) + 10)
    assert found(items) == [("a.fods:picture-2.png", "sheet S", (200, 150))] and errors(items) == []
    # room for the copy and the picture after it: the SVG's bytes are given back
    two = one.replace(b"</table:shapes>", frame((png2, "image/jpeg")).encode() + b"</table:shapes>")
    items = items_of(two, "a.fods", zip_max_bytes=len(png) + len(png2) + 10)
    assert found(items) == [("a.fods:picture-2.png", "sheet S", (200, 150)),
                            ("a.fods:picture-3.jpeg", "sheet S", (60, 40))] and errors(items) == []


# --- folders -----------------------------------------------------------------------------------------------------

def test_a_link_to_a_folder_whose_name_begins_the_given_ones_is_read(tmp_path):
    """`scans2/prev` → `scans` is not a link to a folder above (`scans` is not `scans2`'s parent)."""
    import os

    from PIL import Image

    from medimg.sources import ImageItem, open_input

    (tmp_path / "scans").mkdir()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(tmp_path / "scans" / "a.png")
    given = tmp_path / "scans2"
    given.mkdir()
    os.symlink(tmp_path / "scans", given / "prev")
    got = list(open_input(str(given)))
    assert [(type(i), i.origin) for i in got] == [(ImageItem, str(given / "prev" / "a.png"))], got


# --- DICOMDIR ----------------------------------------------------------------------------------------------------

def test_a_dicomdir_head_without_the_dicm_mark_is_not_one():
    import builders as b

    from medimg.sources.dicomdir import is_dicomdir

    head = (b.dicom_dir() / "dicomdirtests" / "DICOMDIR").read_bytes()[:1024]
    assert is_dicomdir(head)
    assert not is_dicomdir(head[:128] + b"DICX" + head[132:])


def test_a_sheet_from_the_sites_root_is_named_so(tmp_path):
    from test_savedpage_css_s44 import saved

    from medimg.sources import open_input

    notes = _notes(list(open_input(saved(tmp_path, more='<link rel="stylesheet" href="/theme.css">'))))
    assert any("'/theme.css' not read: it starts at the web site's root" in n for n in notes), notes


def test_a_cid_picture_named_by_a_table_cells_background_is_read_in_its_place():
    from test_savedpages_s42 import items, mhtml
    from test_savedpages_s42 import picture as jpeg

    from medimg.sources import ImageItem

    html = '<html><body><table><tr><td background="cid:logo@01DA">Befund</td></tr></table></body></html>'
    data = mhtml("file:///C:/Users/dr/Report.htm", html, [("<logo@01DA>", "image/jpeg", jpeg((300, 200), 1))],
                 blink=False)
    (image,) = [i for i in items(data, "Report.mht") if isinstance(i, ImageItem)]
    assert not image.locator.startswith("resource"), image.locator


# --- RAW names, a PDF's notes ------------------------------------------------------------------------------------

def test_each_raw_name_says_image_when_its_content_is_not_one():
    from medimg.sources import Blob, open_input

    for ext in ("dng", "cr2", "cr3", "nef", "nrw", "arw", "orf", "rw2", "raf", "pef", "srw"):
        (err,) = open_input(Blob(f"IMG_1.{ext}", b"not a picture at all " * 20, name=f"IMG_1.{ext}"))
        assert isinstance(err, ItemError) and f"named {ext.upper()} but not readable" in err.error, (ext, err)


def test_only_skipped_notes_on_consecutive_pages_are_folded():
    from medimg.sources.pdf import _fold

    notes = [ItemError("a.pdf", f"page {n}", "too many images; listed from its resources", skipped=True)
             for n in (3, 4, 5)]
    other = [ItemError("a.pdf", "page 6", "too many dashes; listed from its resources", skipped=True)]
    errs = [ItemError("a.pdf", f"page {n}", "damaged content stream") for n in (7, 8)]
    assert [(e.locator, e.error) for e in _fold(notes + other + errs)] == [
        ("pages 3–5", "too many images; listed from its resources"),
        ("page 6", "too many dashes; listed from its resources"),
        ("page 7", "damaged content stream"), ("page 8", "damaged content stream")]


# --- the model's scores ------------------------------------------------------------------------------------------

def test_a_row_with_one_nan_or_an_infinity_is_refused_not_only_an_all_nan_one(tmp_path):
    import numpy as np
    import pytest
    from test_calib_s44 import _log_model

    from medimg.model import Classifier

    clf = Classifier.load(_log_model(tmp_path / "m", [2.0, 2.0, 2.0]))
    assert clf.prediction(np.array([0.7, 0.2, 0.1]), 0.5).label == "xray"
    for row in ([0.7, np.nan, 0.1], [np.inf, 0.0, 0.0]):
        with pytest.raises(ValueError, match="not numbers"):
            clf.prediction(np.array(row), 0.5)


# --- evaluate --predictions --------------------------------------------------------------------------------------

def test_predictions_to_dev_stdout_redirected_to_a_file_write_that_file_not_a_new_one(tmp_path):
    """`--predictions /dev/stdout > out.jsonl`: written through standard output, not a new file put in the place of
    the one the shell opened (the rest of the run's output would go to a file no longer there)."""
    import os
    import subprocess
    import sys

    out = tmp_path / "out.jsonl"
    code = ("import os, sys; from pathlib import Path; from medimg.cli import _write_predictions\n"
            "_write_predictions([{'item': 'a.png', 'predicted': 'xray'}], Path('/dev/stdout'))\n"
            "sys.stderr.write(str(os.fstat(1).st_ino))\n")
    with open(out, "w") as f:
        done = subprocess.run([sys.executable, "-c", code], stdout=f, stderr=subprocess.PIPE, text=True,
                              env={**os.environ}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().endswith(str(out.stat().st_ino)), "standard output's file was replaced"
    assert '"item": "a.png"' in out.read_text()
