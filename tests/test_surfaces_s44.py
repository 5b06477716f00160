"""Session 44's new inputs through every surface (CLI, Python API, HTTP API): the same rows, and clear words where
a surface cannot do what another does."""

from __future__ import annotations

import shutil
from pathlib import Path

import builders as b
from test_api import client, model_dir, worker  # noqa: F401  (its fixtures)

from medimg.sources import Blob, ImageItem, ItemError, open_input

TESTS = b.dicom_dir() / "dicomdirtests"


def _export(tmp_path: Path) -> Path:
    root = tmp_path / "cd"
    shutil.copytree(TESTS, root, ignore=shutil.ignore_patterns("TINY_ALPHA", "DICOMDIR-*"))
    return root


def test_a_dicomdir_given_without_its_files_is_an_error_saying_to_send_the_folder(tmp_path, client):  # noqa: F811
    """Uploaded alone (or given as a Blob, or a URL) a DICOMDIR gave 0 results and a skipped note saying its files'
    images "are read from those files": nothing was read, and without show_skipped the user saw an empty answer."""
    data = (_export(tmp_path) / "DICOMDIR").read_bytes()
    (only,) = open_input(Blob("DICOMDIR", data, name="DICOMDIR"))
    assert isinstance(only, ItemError) and not only.skipped
    assert "given without the 31 files it lists" in only.error and "as a zip" in only.error
    r = client.post("/api/classify", files=[("files", ("DICOMDIR", data))])
    assert r.status_code == 200
    (row,) = r.json()["results"]
    assert row["error"] == only.error and r.json()["summary"]["errors"] == 1


def test_a_dicomdir_uploaded_with_its_files_or_in_a_zip_stays_a_note(tmp_path, client):  # noqa: F811
    root = _export(tmp_path)
    listed = [root / "77654033" / "CR1" / "6154", root / "77654033" / "CR2" / "6247"]
    files = [("files", ("DICOMDIR", (root / "DICOMDIR").read_bytes()))] + \
        [("files", (p.name, p.read_bytes())) for p in listed]
    got = client.post("/api/classify", files=files, data={"show_skipped": "true"}).json()
    assert got["summary"]["images"] == 2 and got["summary"]["errors"] == 0
    assert [r["input"] for r in got["results"] if r["input"] == "DICOMDIR"] == ["DICOMDIR"]
    folder = list(open_input(root))  # in a folder: its files are read as the folder's
    assert sum(isinstance(i, ImageItem) for i in folder) == 31
    assert not any(isinstance(i, ItemError) and not i.skipped for i in folder)


def test_a_saved_page_uploaded_alone_names_the_stylesheets_it_could_not_read(client):  # noqa: F811
    """Uploaded without its `_files` folder, a page whose pictures its stylesheet sets said "no images referenced in
    this HTML file" (and one with an <img> too named only that): its stylesheets were dropped unsaid."""
    html = ('<html><head><link rel="stylesheet" href="case_files/site.css"><link rel="stylesheet" '
            'href="case_files/more.css"></head><body><div class="hero">Case 12</div></body></html>').encode()
    got = list(open_input(Blob("case.html", html, name="case.html")))
    (note,) = [i.error for i in got]
    assert note.startswith("2 stylesheets beside the page not read (case_files/site.css, case_files/more.css): the "
                           "HTML file is not in a folder on disk"), note
    r = client.post("/api/classify", files=[("files", ("case.html", html))], data={"show_skipped": "true"})
    assert [row["error"] for row in r.json()["results"]] == [note]


def test_a_camera_raw_cut_short_says_so_not_to_convert_it(tmp_path):
    """A DNG or NEF copied in part (its IFDs or its preview past the end) said "camera RAW with no embedded preview:
    convert it to DNG/JPEG/TIFF": a DNG told to become a DNG, and nothing saying the file is cut short."""
    from test_raw_s43 import dng, nef

    folder = tmp_path / "card"
    folder.mkdir()
    whole = dng((400, 300))
    (folder / "a.dng").write_bytes(whole[:len(whole) // 2])  # its IFDs at the end: none left
    (folder / "b.NEF").write_bytes(nef()[:-200])
    import struct

    from test_raw_s43 import jpeg

    preview = jpeg((320, 240))  # IFD0 first, pointing to a preview the copy stops inside
    ifd = struct.pack("<H", 2) + struct.pack("<HHII", 513, 4, 1, 38) + struct.pack("<HHII", 514, 4, 1, len(preview))
    (folder / "c.dng").write_bytes((b"II*\0" + struct.pack("<I", 8) + ifd + b"\0" * 4 + preview)[:38 + 400])
    got = {Path(i.origin).name: i for i in open_input(folder)}
    assert not any(isinstance(i, ImageItem) for i in got.values())
    for name in ("a.dng", "b.NEF", "c.dng"):
        assert got[name].error.startswith(f"{name.split('.')[1].upper()} RAW file is cut off"), got[name].error
        assert "convert it" not in got[name].error
