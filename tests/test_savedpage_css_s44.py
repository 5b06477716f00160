"""A page saved with its files ("Web page, complete"): the backgrounds its stylesheets set are read (session 44;
before, a saved page's stylesheets were never read, on disk or on the web)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

import builders as b
from medimg.sources import ImageItem, ItemError, Limits, open_input
from webserver import WebServer

PAGE = """<html><head><link rel="stylesheet" href="case_files/site.css">{more}</head>
<body><div class="hero">Case 12</div><p id="m">MRI</p><img src="case_files/fig1.png" alt="Figure 1"></body></html>"""


def noise(seed: int) -> bytes:  # pictures unlike each other (not one picture at another size)
    rng = np.random.default_rng(seed)
    return b.encode(Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)), "PNG")


def saved(tmp_path: Path, more: str = "") -> Path:
    files = tmp_path / "site" / "case_files"
    files.mkdir(parents=True)
    for seed, name in enumerate(("fig1", "hero", "more", "unused")):
        (files / f"{name}.png").write_bytes(noise(seed))
    (files / "site.css").write_text('@import url("more.css");\n.hero { background: url(hero.png) no-repeat }\n'
                                    ".unused { background-image: url('unused.png') }\n")
    (files / "more.css").write_text('#m{background:url("more.png")}')
    page = tmp_path / "site" / "case.html"
    page.write_text(PAGE.format(more=more))
    return page


def rows(got: list) -> list[tuple[str, str]]:
    return [(type(i).__name__, i.locator or i.error) for i in got]


def test_a_saved_pages_stylesheets_on_disk_give_the_backgrounds_its_elements_show(tmp_path):
    got = list(open_input(saved(tmp_path)))
    assert rows(got) == [("ImageItem", "img #1 case_files/fig1.png"), ("ImageItem", "css #2 case_files/more.png"),
                         ("ImageItem", "css #3 case_files/hero.png")]  # imported first, as the cascade reads them


def test_a_sheet_outside_the_pages_folder_is_refused_with_a_note(tmp_path):
    (tmp_path / "evil.css").write_text("body { background: url(secret.png) }")
    (tmp_path / "secret.png").write_bytes(noise(9))
    got = list(open_input(saved(tmp_path, '<link rel="stylesheet" href="../evil.css">')))
    assert not any("secret" in (i.locator if isinstance(i, ImageItem) else "") for i in got)
    (note,) = [i.error for i in got if isinstance(i, ItemError)]
    assert "refused '../evil.css': it points outside the HTML file's folder" in note and note.endswith("is not read")


def test_a_remote_sheet_of_a_saved_page_is_fetched_as_its_remote_images_are(tmp_path):
    with WebServer() as srv:
        srv.add("/s/remote.css", ".hero { background: url(bg.png) }", "text/css")
        srv.add("/s/bg.png", noise(5), "image/png")
        page = saved(tmp_path, f'<link rel="stylesheet" href="{srv.url("/s/remote.css")}">')
        got = list(open_input(page, Limits(allow_private=True)))
    assert rows(got)[-1] == ("ImageItem", f"css #4 {srv.url('/s/bg.png')}")


def test_in_a_folder_or_an_archive_the_files_beside_it_are_read_once_as_their_own(tmp_path):
    page = saved(tmp_path)
    got = list(open_input(page.parent))
    images = sorted(Path(i.origin).name for i in got if isinstance(i, ImageItem))
    assert images == ["fig1.png", "hero.png", "more.png", "unused.png"]  # each once, as a file of the folder
    archive = tmp_path / "site.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(page.parent.rglob("*")):
            z.write(f, f.relative_to(page.parent).as_posix())
    got = list(open_input(archive))
    assert sum(isinstance(i, ImageItem) for i in got) == 4
    assert not any("stylesheet" in i.error for i in got if isinstance(i, ItemError))  # no note for what is read
