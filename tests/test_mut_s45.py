"""Tests that kill mutants of session 45's changes that the session's own tests let live (session 45, mutation
testing): each pins a behaviour a user would notice."""

from __future__ import annotations

import collections
import io
import json
import os
from pathlib import Path

import builders as b
from PIL import Image
from webserver import WebServer

from medimg.sources import ImageItem, ItemError, Limits, open_input, open_inputs

OPEN = dict(allow_private=True, connect_timeout=2, read_timeout=2, total_timeout=8)  # loopback: the opt-in


def _images(inputs) -> collections.Counter:
    return collections.Counter(i.origin for i in open_inputs([str(p) for p in inputs]) if isinstance(i, ImageItem))


def jpeg(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), colour).save(buf, "JPEG")
    return buf.getvalue()


# --- a DICOMDIR given with its export (dicomdir.Given, _tasks) -------------------------------------------------

def test_a_dicomdir_given_with_a_link_to_it_reads_each_file_once(tmp_path):
    """The DICOMDIR and a link to it on the desktop: the second reads none of the files the first read."""
    root = b.dicom_export(tmp_path)
    link = tmp_path / "DICOMDIR-on-desktop"
    link.symlink_to(root / "DICOMDIR")
    for inputs in ([root / "DICOMDIR", link], [link, root / "DICOMDIR"]):
        got = _images(inputs)
        assert len(got) == 31 and set(got.values()) == {1}, inputs


def test_an_export_reached_through_a_link_given_with_its_folders_reads_each_file_once(tmp_path):
    """`medimg classify cd/*` where cd is a link to the mounted disc: the folders given are kept by their real
    paths, and the DICOMDIR's files (under the link) are matched by theirs."""
    real = b.dicom_export(tmp_path / "media")
    cd = tmp_path / "cdlink"
    cd.symlink_to(real)
    folders = sorted(p for p in cd.iterdir() if p.is_dir())
    for inputs in ([*folders, cd / "DICOMDIR"], [cd / "DICOMDIR", *folders]):
        got = _images(inputs)
        assert len(got) == 31 and set(got.values()) == {1}, inputs


def test_a_file_a_dicomdir_lists_that_is_missing_is_one_error_row(tmp_path):
    from medimg.sources.base import Context
    from medimg.sources.dicomdir import _tasks
    from medimg.sources.files import file_tasks

    root = b.dicom_export(tmp_path)
    names = [("98892001", "CT2N", "NOPE"), ("98892001", "CT2N", "6293")]
    items = [i for task in _tasks(root / "DICOMDIR", names, Context(), None, file_tasks) for i in task()]
    assert [type(i).__name__ for i in items] == ["ItemError", "ImageItem", "ItemError"]
    assert items[0].origin == str(root / "98892001" / "CT2N" / "NOPE") and not items[0].skipped
    assert "the 2 files it lists were read" in items[-1].error


def test_a_resumed_extract_given_relative_paths_reads_the_dicomdirs_files_once(tmp_path, monkeypatch):
    """`medimg extract cd/98892001 … cd/DICOMDIR --resume` from the export's parent: the folders done are kept by
    their real paths, as the DICOMDIR's files are looked up."""
    from medimg.extract import extract, prepare

    b.dicom_export(tmp_path)
    monkeypatch.chdir(tmp_path)
    folders = sorted(str(p) for p in Path("cd").iterdir() if p.is_dir())

    def run(inputs, resume):
        return [row for row, _ in extract(inputs, Path("out"), workers=2, folder=prepare(Path("out"), resume))]

    assert sum("file" in row for row in run(folders, False)) == 31
    run([*folders, os.path.join("cd", "DICOMDIR")], True)
    rows = [json.loads(line) for line in Path("out/manifest.jsonl").read_text().splitlines()]
    pngs = [row["input"] for row in rows if "file" in row]
    assert len(pngs) == 31 and len(set(pngs)) == 31


# --- meta refresh (web_page._refresh_url, web._open_url) -------------------------------------------------------

def test_the_forms_sites_write_a_meta_refresh_in_name_the_url():
    from medimg.sources.web_page import _refresh_url

    assert _refresh_url("0; URL = '/moved.html'") == "/moved.html"
    assert _refresh_url("0;url='/a.html' (old)") == "/a.html"  # a quoted URL ends at its quote
    assert _refresh_url("0.5; url=/b.html") == "/b.html"
    assert _refresh_url("5, /c.html") == "/c.html"
    assert _refresh_url("30") is None


def test_a_page_refreshing_to_its_own_address_is_read_once_not_a_loop():
    with WebServer() as srv:
        srv.add("/live.html", '<meta http-equiv="refresh" content="60; url=/live.html"><p>no pictures yet</p>')
        srv.add("/top%20news.html", '<meta http-equiv="refresh" content="60; url=top news.html"><p>none yet</p>')
        for name in ("/live.html", "/top%20news.html"):  # the second as the browser writes it
            items = list(open_input(srv.url(name), Limits(**OPEN)))
            assert [(type(i), i.error) for i in items] == [(ItemError, "no images found on the page")]
            assert srv.hits[name] == 1


def test_a_moved_page_linking_its_sites_stylesheet_is_followed():
    """"This page has moved" with the site's stylesheet (none of whose backgrounds it shows) was read as a page
    with no images, and the page it sends the browser to never was. A page whose stylesheets give it an image is
    read itself."""
    with WebServer() as srv:
        srv.add("/new/a.jpg", jpeg((200, 30, 30)), "image/jpeg")
        srv.add("/bg.jpg", jpeg((30, 30, 200)), "image/jpeg")
        srv.add("/new/case.html", '<html><body><img src="a.jpg"></body></html>')
        srv.add("/site.css", "body { color: #333 } .nav { background: url(/nav.png) }", "text/css")
        srv.add("/bg.css", "body { background: url(/bg.jpg) }", "text/css")
        srv.add("/old.html", '<html><head><link rel="stylesheet" href="/site.css"><meta http-equiv="refresh" '
                             'content="0; url=/new/case.html"></head><body>This page has moved.</body></html>')
        srv.add("/shown.html", '<html><head><link rel="stylesheet" href="/bg.css"><meta http-equiv="refresh" '
                               'content="300; url=/new/case.html"></head><body>a slide</body></html>')
        items = list(open_input(srv.url("/old.html"), Limits(**OPEN)))
        assert [(type(i), getattr(i, "metadata", {}).get("url")) for i in items] == [(ImageItem, srv.url("/new/a.jpg"))]
        items = list(open_input(srv.url("/shown.html"), Limits(**OPEN)))
        assert [(type(i), getattr(i, "metadata", {}).get("url")) for i in items] == [(ImageItem, srv.url("/bg.jpg"))]
        assert srv.hits["/new/case.html"] == 1


# --- a rendered thumbnail's link (browser._linked_image) ------------------------------------------------------

def test_a_rendered_pictures_link_is_its_full_image_only_when_it_names_another_image():
    from medimg.sources.browser import _candidates

    found = [{"url": "http://h/t1.jpg", "link": "http://h/case/12"},  # a link to an article: not an image
             {"url": "http://h/t2.jpg", "link": "http://h/t2.jpg"},  # a link to itself
             {"url": "http://h/t3.jpg", "link": "http://h/full/3.JPG"}]
    fulls = [c.full for c in _candidates(found, {})]
    assert fulls == [None, None, "http://h/full/3.JPG"]


# --- the command line (cli.py) --------------------------------------------------------------------------------

def test_a_file_named_like_an_option_after_a_flag_is_said_to_be_one(tmp_path, monkeypatch, tiny_model_dir):
    """`medimg classify --full *`: a flag takes no value, so the `-scan.png` after it is still a file so named."""
    from typer.testing import CliRunner
    from builders import image_bytes
    from words import flat

    from medimg.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "-scan.png").write_bytes(image_bytes("PNG"))
    res = CliRunner().invoke(app, ["classify", "--full", "-scan.png", "--model", str(tiny_model_dir)])
    assert res.exit_code == 2 and "'-scan.png' is a file: give it as ./-scan.png" in flat(res.output)


def test_a_run_that_classified_nothing_names_its_first_five_errors(tmp_path, tiny_model_dir):
    from typer.testing import CliRunner
    from words import flat

    from medimg.cli import app

    missing = [tmp_path / f"no{i}.png" for i in range(7)]
    res = CliRunner().invoke(app, ["classify", *map(str, missing), "-o", str(tmp_path / "r.jsonl"), "--model",
                                   str(tiny_model_dir)])
    said = flat(res.stderr)
    assert res.exit_code == 1 and all(f"{m}: file not found" in said for m in missing[:5]), said


def test_classify_removes_the_work_folders_a_killed_run_left(tmp_path, monkeypatch, tiny_model_dir):
    """As extract does: a killed run's copy of a zipped slide (its folder no longer locked) goes at the next run."""
    from typer.testing import CliRunner
    from builders import image_bytes

    from medimg.cli import app

    tmp = tmp_path / "tmp"
    left = tmp / "medimg-work-k1ll3d"
    left.mkdir(parents=True)
    (left / "slide.svs").write_bytes(b"a patient's slide")
    monkeypatch.setattr("tempfile.tempdir", str(tmp))
    (tmp_path / "a.png").write_bytes(image_bytes("PNG"))
    res = CliRunner().invoke(app, ["classify", str(tmp_path / "a.png"), "-f", "jsonl", "--model", str(tiny_model_dir)])
    assert res.exit_code == 0, res.output
    assert not left.exists()


# --- the page: a run the time limit stopped (ui._unread) -------------------------------------------------------

def test_the_page_lists_what_a_time_limited_run_never_came_to():
    from medimg.server.ui import _unread

    rows = _unread(["a.png", "b.png", "http://h/c"], {"a.png"}, False, "the time limit of 60 s was reached")
    assert [(r.input, r.error) for r in rows] == [("b.png", "not read: the time limit was reached before it"),
                                                  ("http://h/c", "not read: the time limit was reached before it")]
    assert _unread(["a.png", "b.png"], {"a.png"}, False, None) == []


# --- scratch.work_folder -------------------------------------------------------------------------------------

def test_a_work_folder_goes_when_its_file_has_been_read(tmp_path, monkeypatch):
    """A slide copied out of a zip for OpenSlide, a render's browser profile: gone once read, not left in TMPDIR
    (with the patient's slide) until the next run."""
    from medimg.scratch import work_folder

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with work_folder() as folder:
        Path(folder, "slide.svs").write_bytes(b"a patient's slide")
        assert Path(folder).parent == tmp_path
    assert list(tmp_path.iterdir()) == []


def test_two_rendered_thumbnails_linking_to_one_full_image_read_it_once(monkeypatch):
    """A gallery a script built whose two thumbnails link to the same full image: it is read once, each thumbnail a
    note naming it (the browser's own reading, stood in for here: only the links matter)."""
    from medimg.sources import browser
    from medimg.sources.web import Candidate

    with WebServer() as srv:
        srv.add("/full.jpg", jpeg((200, 10, 10)), "image/jpeg")
        srv.add("/gallery.html", "<div id=app></div><script>/* builds the gallery */</script>")
        shown = [Candidate(srv.url(f"/t{n}.jpg"), "img", f"case {n}", jpeg((10, 200 - n, 10)), "image/jpeg",
                           full=srv.url("/full.jpg")) for n in (1, 2)]
        monkeypatch.setattr(browser, "collect", lambda url, limits, cancel=None: shown)
        monkeypatch.setattr(browser, "available", lambda: None)
        items = list(open_input(srv.url("/gallery.html"), Limits(**OPEN, render=True)))
        assert [(type(i), i.locator.split(" ")[:2], getattr(i, "error", None)) for i in items] == [
            (ItemError, ["img", "#1"], "thumbnail of a #2"), (ImageItem, ["a", "#2"], None),
            (ItemError, ["img", "#3"], "thumbnail of a #2")]
        assert srv.hits["/full.jpg"] == 1
