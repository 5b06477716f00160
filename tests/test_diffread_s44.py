"""A second read of session 44's changes (diffread1): the bugs found in them, each pinned."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import builders as b
import pydicom

from medimg.sources import ImageItem, open_input
from medimg.sources import dicomdir

TESTS = b.dicom_dir() / "dicomdirtests"


def _export(tmp_path: Path) -> Path:
    root = tmp_path / "cd"
    shutil.copytree(TESTS, root)
    return root


def _relist(path: Path, first: str) -> None:
    """The DICOMDIR at `path` with its first file record naming `first` instead."""
    ds = pydicom.dcmread(path)
    next(r for r in ds.DirectoryRecordSequence if r.get("ReferencedFileID")).ReferencedFileID = first
    ds.save_as(path)


def test_a_dicomdir_listing_itself_or_another_that_lists_it_back_ends(tmp_path):
    root = _export(tmp_path)
    _relist(root / "DICOMDIR", "DICOMDIR")  # was a RecursionError after 12 s, and no image read
    got = list(open_input(root / "DICOMDIR"))
    assert sum(isinstance(i, ImageItem) for i in got) == 30
    assert [i.origin for i in got].count(str(root / "DICOMDIR")) == 1  # its own note, once, last
    _relist(root / "DICOMDIR", "DICOMDIR-IMPLICIT")  # any case; that one lists this one back
    _relist(root / "DICOMDIR-implicit", "DICOMDIR")
    got = list(open_input(root / "DICOMDIR"))
    assert sum(isinstance(i, ImageItem) for i in got) == 30
    (other,) = [i for i in got if i.origin == str(root / "DICOMDIR-implicit")]
    assert other.skipped and "DICOMDIR" in other.error  # the note it gets in a folder


def test_a_lower_case_mount_lists_each_folder_once(tmp_path, monkeypatch):
    root = _export(tmp_path)
    for path in sorted(root.rglob("*"), key=lambda p: -len(p.parts)):  # a CD mounted with lower-case names
        if path.name != "DICOMDIR":
            path.rename(path.with_name(path.name.lower()))
    calls = []
    listdir = os.listdir
    monkeypatch.setattr(dicomdir.os, "listdir", lambda p: calls.append(p) or listdir(p))
    got = list(open_input(root / "DICOMDIR"))
    assert sum(isinstance(i, ImageItem) for i in got) == 31
    assert len(calls) == len(set(calls))  # 10,000 files in one folder took 230 s listed for each


def test_a_flat_documents_svg_is_read_when_its_copy_is_not():
    import base64

    from test_mail_s44 import flat, frame, items_of, picture

    png = base64.b64encode(picture(size=(120, 100))).decode()
    SVG = (f'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="100"><image width="120" height="100" '
           f'href="data:image/png;base64,{png}"/></svg>').encode()  # a drawing wrapping a picture: read

    def svgs(items):
        return [i.origin for i in items if isinstance(i, ImageItem) and i.origin.endswith(".svg")]

    one = f'<text:p>{frame((SVG, "image/svg+xml"))}</text:p><text:p>{frame((picture(), "image/png"))}</text:p>'
    assert svgs(items_of(flat("text", f"<office:text>{one}</office:text>"), "a.fodt", zip_max_entries=1)) == \
        ["a.fodt:picture-1.svg"]  # the one picture within the cap: it was dropped unsaid
    for copy in (b"", b"not a picture"):  # an empty or unknown copy shows nothing
        body = f'<office:text><text:p>{frame((SVG, "image/svg+xml"), (copy, "image/png"))}</text:p></office:text>'
        assert svgs(items_of(flat("text", body), "b.fodt")) == ["b.fodt:picture-1.svg"]
    body = (f'<office:text><text:p>{frame((SVG, "image/svg+xml"), (picture(size=(900, 900)), "image/png"))}'
            '</text:p></office:text>')
    items = items_of(flat("text", body), "c.fodt", zip_max_bytes=2000)  # the copy past the cap: not "read instead"
    assert svgs(items) == ["c.fodt:picture-1.svg"]
    assert not any(isinstance(i, ImageItem) and i.origin.endswith(".png") for i in items)


def test_predictions_are_written_in_place_when_no_file_can_be_made_beside(tmp_path, monkeypatch):
    import errno
    import tempfile

    from medimg import cli

    path = tmp_path / "p.jsonl"
    path.write_text("last week's rows\n")
    cli._predictions_writable(path)  # passes: the file can be written

    def refused(*args, **kwargs):  # a folder one may not write, holding a file one may (root cannot be refused here)
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    cli._write_predictions([{"item": "a.png", "true": "ct", "predicted": "ct"}], path)  # was EACCES, rows lost
    assert '"item": "a.png"' in path.read_text().replace('":"', '": "')
    monkeypatch.undo()
    long = tmp_path / ("r" * 240 + ".csv")  # a long name: its part file's name was too long for the disk
    cli._write_predictions([{"item": "a.png", "true": "ct"}], long)
    assert long.read_text().splitlines()[1].startswith("a.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, long.name])


def test_predictions_over_another_users_file_in_a_sticky_folder(tmp_path, monkeypatch):
    from medimg import cli

    path = tmp_path / "p.jsonl"
    path.write_text("last week's rows\n")

    def refused(src, dst):  # /tmp: another's file there may be written (mode 666), not replaced by a rename
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "replace", refused)
    cli._write_predictions([{"item": "a.png", "true": "ct"}], path)  # was EPERM after the whole run
    assert "a.png" in path.read_text() and "last week" not in path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["p.jsonl"]


def test_predict_returns_nan_scores_errors_as_its_others(tmp_path):
    """errors="return": "its traceback dropped, its note kept", as for an image that cannot be prepared."""
    from PIL import Image
    from test_calib_s44 import _log_model

    from medimg.model import Classifier

    clf = Classifier.load(_log_model(tmp_path / "m", [0.5, 0.6, 0.7]))  # NaN for a black image (test_calib_s44)
    black, white = Image.new("RGB", (20, 20)), Image.new("RGB", (20, 20), "white")
    got = clf.predict([white, black], errors="return")
    assert isinstance(got[1], ValueError) and got[1].__traceback__ is None  # its frames hold the batch's arrays
    assert "index 1" in " ".join(getattr(got[1], "__notes__", []))


def test_a_link_to_a_dicomdir_reads_the_files_beside_the_dicomdir(tmp_path):
    root = _export(tmp_path)
    (tmp_path / "desk").mkdir()
    (tmp_path / "desk" / "DICOMDIR").symlink_to(root / "DICOMDIR")  # were 31 "not found beside it" errors
    got = list(open_input(tmp_path / "desk" / "DICOMDIR"))
    images = [i for i in got if isinstance(i, ImageItem)]
    assert len(images) == 31 and images[0].origin == str(root / "77654033" / "CR1" / "6154")
    assert got[-1].origin == str(tmp_path / "desk" / "DICOMDIR")  # its note under the name given


def test_predictions_through_a_link_to_a_file_not_there_yet(tmp_path):
    from medimg import cli

    (tmp_path / "runs").mkdir()
    link = tmp_path / "latest.jsonl"
    link.symlink_to(tmp_path / "runs" / "p.jsonl")  # dangling until written
    cli._predictions_writable(link)  # it removed the link, leaving an empty runs/p.jsonl
    assert link.is_symlink() and not (tmp_path / "runs" / "p.jsonl").exists()
    cli._write_predictions([{"item": "a.png", "true": "ct"}], link)
    assert link.is_symlink() and "a.png" in (tmp_path / "runs" / "p.jsonl").read_text()
