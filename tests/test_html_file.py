"""Saved web pages given as files: relative images from the page's folder, never outside it."""

import base64
import os
import threading

import pytest

from builders import image_bytes, zip_bytes
from medimg.sources import ImageItem, ItemError, Limits, open_input
from medimg.sources.files import blobs_together
from webserver import WebServer


def page(body: str) -> str:
    return f"<!DOCTYPE html><html><head><title>t</title></head><body>{body}</body></html>"


def test_local_page_finds_its_images(tmp_path):
    site = tmp_path / "my site #1 ?"
    (site / "img").mkdir(parents=True)
    (site / "img" / "a.png").write_bytes(image_bytes("PNG", (120, 90)))
    (site / "img" / "b-800.jpg").write_bytes(image_bytes("JPEG", (200, 150)))
    (site / "img" / "b-200.jpg").write_bytes(image_bytes("JPEG", (80, 70)))
    (site / "bg.webp").write_bytes(image_bytes("WEBP", (100, 100)))
    (tmp_path / "secret.png").write_bytes(image_bytes("PNG", (100, 100)))
    data_uri = "data:image/png;base64," + base64.b64encode(image_bytes("PNG", (70, 70))).decode()
    (site / "index.html").write_text(page(
        '<img src="img/a.png" alt="first">'
        '<img src="img/b-200.jpg" srcset="img/b-200.jpg 200w, img/b-800.jpg 800w">'
        '<div style="background-image: url(bg.webp)"></div>'
        f'<img src="{data_uri}">'
        '<img src="../secret.png"><img src="img/missing.png">'))
    items = list(open_input(site / "index.html"))
    images = [i for i in items if isinstance(i, ImageItem)]
    errors = [i for i in items if isinstance(i, ItemError)]
    assert [(i.width, i.height) for i in images] == [(120, 90), (200, 150), (100, 100), (70, 70)]
    assert images[0].metadata["alt"] == "first" and images[0].locator.startswith("img #1 img/a.png")
    assert all(i.origin == str(site / "index.html") for i in items)
    reasons = " | ".join(e.error for e in errors)
    assert "refused '../secret.png'" in reasons and "not found" in reasons
    assert len(errors) == 2


def test_a_fragment_named_html_is_read_as_a_page(tmp_path):
    """No doctype, no <html>: a figure saved on its own is still a page when its name says so."""
    (tmp_path / "a.png").write_bytes(image_bytes("PNG", (120, 90)))
    for name, text in [("figure.html", '<img src="a.png" alt="fig 1">'),
                       ("part.htm", '\n<div class="fig"><p>Figure 2</p><img src="a.png"></div>')]:
        (tmp_path / name).write_text(text)
        (item,) = open_input(tmp_path / name)
        assert isinstance(item, ImageItem) and (item.width, item.height) == (120, 90), name
    xhtml = '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml">'
    (tmp_path / "page.xhtml").write_text(xhtml + '<body><img src="a.png"/></body></html>')
    (item,) = open_input(tmp_path / "page.xhtml")
    assert isinstance(item, ImageItem) and (item.width, item.height) == (120, 90)
    (tmp_path / "notes.txt").write_text('<img src="a.png">')  # not named as a page: not one
    (item,) = open_input(tmp_path / "notes.txt")
    assert isinstance(item, ItemError) and "unrecognised" in item.error


def test_html_inside_a_folder_walk_and_zip(tmp_path):
    data_uri = "data:image/png;base64," + base64.b64encode(image_bytes("PNG", (90, 80))).decode()
    html = page(f'<img src="{data_uri}"><img src="rel.png">').encode()
    (tmp_path / "p.html").write_bytes(html)
    (tmp_path / "rel.png").write_bytes(image_bytes("PNG", (100, 64)))
    items = list(open_input(tmp_path))
    got = [i for i in items if isinstance(i, ImageItem)]
    # the page shows both, but rel.png is a file of the folder walked: read once, as that file (a wget mirror)
    assert sorted((i.width, i.height) for i in got) == [(90, 80), (100, 64)]
    assert [i.origin for i in got if i.width == 100] == [str(tmp_path / "rel.png")]
    assert [i.error for i in items if isinstance(i, ItemError)] == [
        "1 file beside the page not read through it: each is read as a file of the folder given"]
    # the page given alone still shows both
    assert len([i for i in open_input(tmp_path / "p.html") if isinstance(i, ImageItem)]) == 2

    (tmp_path / "z.zip").write_bytes(zip_bytes({"site/p.html": html}))
    items = list(open_input(tmp_path / "z.zip"))
    assert [(i.width, i.height) for i in items if isinstance(i, ImageItem)] == [(90, 80)]
    assert any(isinstance(i, ItemError) and i.skipped and "not in a folder on disk" in i.error for i in items)


def test_remote_images_of_a_local_page_go_through_the_guard(tmp_path):
    with WebServer() as srv:
        srv.add("/r.png", image_bytes("PNG", (110, 100)), "image/png")
        (tmp_path / "p.html").write_text(page(f'<img src="{srv.url("/r.png")}">'))
        refused = list(open_input(tmp_path / "p.html"))
        assert isinstance(refused[0], ItemError) and srv.hits["/r.png"] == 0
        ok = list(open_input(tmp_path / "p.html", Limits(allow_private=True)))
        assert isinstance(ok[0], ImageItem) and ok[0].width == 110


def test_html_without_images_is_a_note_not_an_error(tmp_path):
    (tmp_path / "empty.html").write_text(page("<p>no pictures here</p>"))
    (item,) = list(open_input(tmp_path / "empty.html"))
    assert isinstance(item, ItemError) and item.skipped


@pytest.mark.timeout(20)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_beside_the_page_is_refused_not_waited_on(tmp_path):
    """Reading a FIFO named by <img src> would block until some writer came; only regular files are read."""
    os.mkfifo(tmp_path / "scan.png")
    (tmp_path / "page.html").write_text(page('<img src="scan.png">'))
    got = []
    reader = threading.Thread(target=lambda: got.extend(open_input(tmp_path / "page.html")), daemon=True)
    reader.start()
    reader.join(5)
    if reader.is_alive():  # blocked in open(): a writer lets it go before failing
        os.close(os.open(tmp_path / "scan.png", os.O_WRONLY | os.O_NONBLOCK))
        reader.join(5)
        pytest.fail("the FIFO was opened for reading")
    (err,) = got
    assert isinstance(err, ItemError) and "not a regular file" in err.error


def test_an_uploaded_page_never_reads_the_working_folder(tmp_path, monkeypatch):
    """An upload's origin is only its name: a file of that name and size in the server's working folder does
    not make the page a file on disk, so its relative images are not read from there."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "secret.png").write_bytes(image_bytes("PNG", (80, 70)))
    html = page('<img src="private/secret.png">').encode()
    (tmp_path / "index.html").write_bytes(html)  # the same name and size as the upload
    (upload,) = blobs_together([("index.html", lambda n: html if n < 0 else html[:n], "text/html")], 10**8)
    (err,) = list(open_input(upload))
    assert isinstance(err, ItemError) and err.skipped and "not in a folder on disk" in err.error
    (item,) = list(open_input(tmp_path / "index.html"))  # the same page read from disk shows it
    assert isinstance(item, ImageItem) and item.image.size == (80, 70)


def test_saved_page_nested_too_deep_is_one_clear_error(tmp_path):
    data_uri = "data:image/png;base64," + base64.b64encode(image_bytes("PNG", (70, 70))).decode()
    (tmp_path / "deep.html").write_text(page("<div>" * 60000 + f'<img src="{data_uri}">'))
    (err,) = list(open_input(tmp_path / "deep.html"))
    assert isinstance(err, ItemError) and err.error.startswith("page nests elements at least")
    assert "not parsed" in err.error


def test_saved_page_reopening_formatting_elements_is_one_clear_error(tmp_path):
    bomb = "<p>" + "".join(f"<b id={i}>" for i in range(2000)) + "<p>x" * 2000
    (tmp_path / "bold.html").write_text(page(bomb + '<img src="a.png">'))
    (err,) = list(open_input(tmp_path / "bold.html"))
    assert isinstance(err, ItemError) and "formatting elements" in err.error and "not parsed" in err.error


def test_a_local_image_of_exactly_the_byte_cap_is_read_and_one_byte_more_is_not(tmp_path):
    """The byte cap holds a saved page's own images to max_download_bytes: at the cap read, past it refused."""
    data = image_bytes("PNG", (120, 90))
    (tmp_path / "a.png").write_bytes(data)
    (tmp_path / "p.html").write_text(page('<img src="a.png">'))
    (item,) = open_input(tmp_path / "p.html", Limits(max_download_bytes=len(data)))
    assert isinstance(item, ImageItem) and (item.width, item.height) == (120, 90)
    (err,) = open_input(tmp_path / "p.html", Limits(max_download_bytes=len(data) - 1))
    assert isinstance(err, ItemError) and f"is {len(data)} bytes, over the cap of {len(data) - 1}" in err.error


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_a_link_beside_the_page_that_leads_outside_its_folder_is_refused(tmp_path):
    """A symbolic link in the page's folder to a file outside it is refused as "../" is: where it leads counts."""
    site = tmp_path / "site"
    site.mkdir()
    (tmp_path / "secret.png").write_bytes(image_bytes("PNG", (100, 100)))
    os.symlink(tmp_path / "secret.png", site / "inside.png")
    (site / "p.html").write_text(page('<img src="inside.png">'))
    (err,) = open_input(site / "p.html")
    assert isinstance(err, ItemError) and "refused 'inside.png': it points outside the HTML file's folder" in err.error


def test_a_saved_page_reads_at_most_max_images_per_input_and_says_how_many_it_left(tmp_path):
    """max_images_per_input holds for a page on disk as for one on the web: the rest are a note, not read."""
    for i in range(5):
        (tmp_path / f"{i}.png").write_bytes(image_bytes("PNG", (100 + i, 80)))
    (tmp_path / "p.html").write_text(page("".join(f'<img src="{i}.png">' for i in range(5))))
    items = list(open_input(tmp_path / "p.html", Limits(max_images_per_input=2)))
    assert [i.width for i in items if isinstance(i, ImageItem)] == [100, 101]
    assert len(items) == 3 and items[2].skipped and items[2].error == (
        "3 more images were not read (max_images_per_input = 2)")


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_a_symlink_loop_beside_the_page_costs_that_image_only(tmp_path):
    """A link that leads round in a loop is one image's error: the page's other images are still read.
    (Fails on the original code: Path.resolve() raises RuntimeError, and the whole page becomes one error.)"""
    os.symlink("loop.png", tmp_path / "loop.png")
    (tmp_path / "ok.png").write_bytes(image_bytes("PNG", (90, 80)))
    (tmp_path / "p.html").write_text(page('<img src="loop.png"><img src="ok.png">'))
    items = list(open_input(tmp_path / "p.html"))
    assert [type(i).__name__ for i in items] == ["ItemError", "ImageItem"], items
    assert items[0].locator.startswith("img #1 loop.png") and "loop.png" in items[0].error
    assert (items[1].width, items[1].height) == (90, 80)


def test_a_root_path_on_a_page_in_no_folder_on_disk_is_the_same_note_as_a_relative_one(tmp_path):
    """a page inside a zip (or an upload) reads no image beside it, relative or from the site's root: both
    are the skipped note that says the page is in no folder on disk, not an error about the site's root."""
    html = page('<img src="/img/ct.png"><img src="img/ct.png">').encode()
    (tmp_path / "z.zip").write_bytes(zip_bytes({"site/p.html": html, "img/ct.png": b"not read"}))
    items = [i for i in open_input(tmp_path / "z.zip") if i.origin.endswith("p.html")]
    assert [(i.locator, isinstance(i, ItemError) and i.skipped) for i in items] == [
        ("img #1 /img/ct.png", True), ("img #2 img/ct.png", True)], items
    assert all("not in a folder on disk" in i.error for i in items), items
