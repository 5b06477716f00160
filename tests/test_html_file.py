"""Saved web pages given as files: relative images from the page's folder, never outside it."""

import base64

from builders import image_bytes, zip_bytes
from medimg.sources import ImageItem, ItemError, Limits, open_input
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


def test_html_inside_a_folder_walk_and_zip(tmp_path):
    data_uri = "data:image/png;base64," + base64.b64encode(image_bytes("PNG", (90, 80))).decode()
    html = page(f'<img src="{data_uri}"><img src="rel.png">').encode()
    (tmp_path / "p.html").write_bytes(html)
    (tmp_path / "rel.png").write_bytes(image_bytes("PNG", (100, 64)))
    got = [i for i in open_input(tmp_path) if isinstance(i, ImageItem)]
    # the page shows both, and rel.png is also a file of the folder in its own right
    assert sorted((i.width, i.height) for i in got) == [(90, 80), (100, 64), (100, 64)]

    (tmp_path / "z.zip").write_bytes(zip_bytes({"site/p.html": html}))
    items = list(open_input(tmp_path / "z.zip"))
    assert [(i.width, i.height) for i in items if isinstance(i, ImageItem)] == [(90, 80)]
    assert any(isinstance(i, ItemError) and "cannot be resolved" in i.error for i in items)


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
