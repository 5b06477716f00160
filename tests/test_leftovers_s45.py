"""Items left by session 44 (session 45): a DICOMDIR given with its export's folders or files reads each file once,
and its listed files are opened once while its units are made."""

from __future__ import annotations

import builtins
import collections
import os
import shutil
from pathlib import Path

import builders as b
from medimg.sources import ImageItem, ItemError, input_tasks, open_inputs

def _export(tmp_path: Path) -> Path:
    return b.dicom_export(tmp_path)


def _images(inputs) -> collections.Counter:
    return collections.Counter(i.origin for i in open_inputs([str(p) for p in inputs]) if isinstance(i, ImageItem))


def test_a_dicomdir_given_with_its_folders_reads_each_file_once_in_either_order(tmp_path):
    root = _export(tmp_path)
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    for inputs in ([root / "DICOMDIR", *folders], [*folders, root / "DICOMDIR"], [root, root / "DICOMDIR"]):
        got = _images(inputs)
        assert len(got) == 31 and set(got.values()) == {1}, inputs


def test_a_dicomdir_given_with_its_files_one_by_one_reads_each_once(tmp_path):
    root = _export(tmp_path)  # find cd -type f | medimg classify -: the DICOMDIR first or last
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    for inputs in ([root / "DICOMDIR", *files], [*files, root / "DICOMDIR"]):
        got = _images(inputs)
        assert len(got) == 31 and set(got.values()) == {1}, inputs


def test_a_dicomdir_given_with_part_of_its_export_still_reads_the_rest(tmp_path):
    root = _export(tmp_path)
    one = root / "98892001"
    items = list(open_inputs([str(one), str(root / "DICOMDIR")]))
    got = collections.Counter(i.origin for i in items if isinstance(i, ImageItem))
    assert len(got) == 31 and set(got.values()) == {1}
    assert "the 31 files it lists were read" in items[-1].error and items[-1].skipped


def test_the_files_a_dicomdir_lists_are_opened_once_each_while_its_units_are_made(tmp_path, monkeypatch):
    root = _export(tmp_path)
    listed = {str(p) for p in root.rglob("*") if p.is_file() and p.name != "DICOMDIR"}
    opened: collections.Counter = collections.Counter()

    def counting(real):  # a file's head is opened by os.open (files.open_regular), other reads by open
        def count(file, *args, **kwargs):
            if str(file) in listed:
                opened[str(file)] += 1
            return real(file, *args, **kwargs)
        return count

    monkeypatch.setattr(builtins, "open", counting(builtins.open))
    monkeypatch.setattr(os, "open", counting(os.open))
    tasks = list(input_tasks([str(root / "DICOMDIR")]))
    assert len(tasks) == 32 and len(opened) == 31 and set(opened.values()) == {1}  # its head, read once


def test_a_dicomdir_listing_itself_or_another_one_is_not_followed(tmp_path):
    from medimg.sources.dicomdir import _tasks
    from medimg.sources.files import file_tasks

    root = _export(tmp_path)
    shutil.copy(root / "DICOMDIR", root / "OTHER")
    names = [("DICOMDIR",), ("OTHER",), ("98892001", "CT2N", "6293")]
    from medimg.sources.base import Context

    items = [i for task in _tasks(root / "DICOMDIR", names, Context(), None, file_tasks) for i in task()]
    assert [type(i).__name__ for i in items] == ["ItemError", "ImageItem", "ItemError"]
    assert items[0].origin == str(root / "OTHER") and items[0].skipped  # the note it gives in a folder
    assert items[-1].origin == str(root / "DICOMDIR") and "the 3 files it lists were read" in items[-1].error
    assert isinstance(items[0], ItemError)


def test_classify_and_extract_read_a_dicomdir_given_with_its_folders_once(tmp_path, tiny_classifier):
    from medimg.extract import extract, prepare
    from medimg.pipeline import classify

    root = _export(tmp_path)
    inputs = [str(root / "DICOMDIR"), *sorted(str(p) for p in root.iterdir() if p.is_dir())]  # cd/* in a shell
    records = [r for r in classify(inputs, classifier=tiny_classifier, workers=2) if r.error is None]
    assert len(records) == 31 and len({(r.input, r.locator) for r in records}) == 31
    out = tmp_path / "out"
    rows = [row for row, image in extract(inputs[::-1], out, workers=2, folder=prepare(out, False)) if image]
    assert len(rows) == 31 and len({row["input"] for row in rows}) == 31


def test_a_page_file_fetches_its_stylesheets_and_images_through_one_client(tmp_path):
    """The stylesheets of an HTML file on disk had a client of their own: a second connection to the same host."""
    import io

    from PIL import Image
    from webserver import WebServer

    from medimg.sources import Limits, open_input

    buf = io.BytesIO()
    Image.new("RGB", (160, 120), (200, 30, 30)).save(buf, "PNG")
    with WebServer() as srv:
        srv.add("/site.css", "p { color: red }", "text/css")
        srv.add("/a.png", buf.getvalue(), "image/png")
        connections = []
        accept = srv._httpd.process_request
        srv._httpd.process_request = lambda request, address: (connections.append(address), accept(request, address))
        page = tmp_path / "case.html"
        page.write_text(f'<html><head><link rel="stylesheet" href="{srv.url("/site.css")}"></head>'
                        f'<body><p>x</p><img src="{srv.url("/a.png")}"></body></html>')
        items = list(open_input(str(page), Limits(allow_private=True)))
        assert [type(i).__name__ for i in items] == ["ImageItem"], items
        assert srv.hits["/site.css"] == 1 and srv.hits["/a.png"] == 1
        assert len(connections) == 1  # the sheet's connection kept for the image


def _dismantle(top: Path, base: Path) -> None:
    """Take a chain of folders `top/d/d/…` apart into `base` without recursion (rmtree recurses: a RecursionError)."""
    n = 0
    while (top / "d").is_dir():
        (top / "d").rename(base / f"d{n}")
        top, n = base / f"d{n}", n + 1


def test_training_scan_reads_a_corpus_folder_1000_deep(tmp_path):
    from PIL import Image

    from medimg.training.dataset import scan

    root = tmp_path / "corpus"
    for label in ("ct", "document"):
        (root / label / "s1").mkdir(parents=True)
        Image.new("RGB", (80, 80), (9, 9, 9)).save(root / label / "s1" / "a.png")
    deep = root / "ct" / "s1"
    for _ in range(1000):
        deep = deep / "d"
        deep.mkdir()  # os.makedirs recurses too
    Image.new("RGB", (80, 80), (9, 9, 9)).save(deep / "deep.png")
    (root / "document" / "s1" / "loop").symlink_to(root / "document")  # a link back up: read once
    try:
        corpus = scan(root)
        assert len(corpus.paths) == 3 and corpus.paths[1].endswith("/d/deep.png")
        assert corpus.paths[2] == "document/s1/a.png"
    finally:
        _dismantle(root / "ct" / "s1", tmp_path)


def test_a_dicomdir_in_a_hidden_folder_of_a_folder_given_still_reads_its_files(tmp_path):
    root = _export(tmp_path)
    hidden = tmp_path / "all" / ".cd"
    hidden.parent.mkdir()
    root.rename(hidden)  # the walk of all/ leaves .cd out: its files come only through the DICOMDIR
    got = _images([tmp_path / "all", hidden / "DICOMDIR"])
    assert len(got) == 31 and set(got.values()) == {1}
