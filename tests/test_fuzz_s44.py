"""Inputs found by fuzzing session 44's new parsers (flat OpenDocument, a DICOMDIR given alone, a saved page's
stylesheets, MHTML Content-IDs): each must come out as items, never as an exception or a hang."""

from __future__ import annotations

import io
import os
import shutil
import warnings
from pathlib import Path

import pydicom

import builders as b
from medimg.sources import ImageItem, ItemError, open_input


def _export(tmp_path: Path, *names) -> Path:
    """pydicom's DICOMDIR test export with its first records' ReferencedFileID set to `names`."""
    root = tmp_path / "cd"
    shutil.copytree(b.dicom_dir() / "dicomdirtests", root)
    ds = pydicom.dcmread(root / "DICOMDIR")
    records = [r for r in ds.DirectoryRecordSequence if "ReferencedFileID" in r]
    with warnings.catch_warnings():  # names no CD would hold
        warnings.simplefilter("ignore")
        for record, name in zip(records, names):
            record.ReferencedFileID = name
        out = io.BytesIO()
        ds.save_as(out)
    (root / "DICOMDIR").write_bytes(out.getvalue())
    return root


def test_a_dicomdir_listing_itself_or_another_listing_it_back_ends(tmp_path):
    # before: each listed DICOMDIR was expanded again, without end: RecursionError after ~40 s
    root = _export(tmp_path, "DICOMDIR", "OTHER")
    other = pydicom.dcmread(b.dicom_dir() / "dicomdirtests" / "DICOMDIR")
    next(r for r in other.DirectoryRecordSequence if "ReferencedFileID" in r).ReferencedFileID = "DICOMDIR"
    other.save_as(root / "OTHER")
    got = list(open_input(root / "DICOMDIR"))
    assert sum(isinstance(i, ImageItem) for i in got) == 29  # the 31 files, but for the two records changed
    (note,) = [i for i in got if i.origin == str(root / "OTHER")]
    assert note.skipped and "A DICOMDIR" in note.error
    assert got[-1].origin == str(root / "DICOMDIR") and "the 31 files it lists were read" in got[-1].error


def test_odd_referenced_file_ids_are_error_rows(tmp_path):
    root = _export(tmp_path, "X" * 300, "FIFO", "TINY_ALPHA")
    os.mkfifo(root / "FIFO")
    got = {i.origin: i for i in open_input(root / "DICOMDIR")}  # before: OSError (File name too long) raised
    assert "cannot be looked up: File name too long" in got[str(root / ("X" * 300))].error
    assert "not a regular file" in got[str(root / "FIFO")].error
    assert "it is a folder" in got[str(root / "TINY_ALPHA")].error
    assert sum(isinstance(i, ImageItem) for i in got.values()) == 28
    assert all(isinstance(i, (ImageItem, ItemError)) for i in got.values())


def test_a_flat_document_in_an_encoding_python_does_not_read_says_it_is_damaged():
    from test_mail_s44 import flat, frame, items_of, picture

    data = flat("text", f'<office:text>{frame((picture(), "image/png"))}</office:text>')
    for encoding in (b"x-unknown", b"EUC-JP"):  # before: "flat-odf: could not read: …", the library's words
        got = items_of(data.replace(b'encoding="UTF-8"', b'encoding="' + encoding + b'"', 1), "a.fodt")
        errors = [i.error for i in got if isinstance(i, ItemError) and not i.skipped]
        assert len(errors) == 1 and errors[0].startswith("flat OpenDocument text document is cut off or damaged ("), \
            errors


def test_stylesheet_rules_for_elements_the_page_lacks_are_passed_over_cheaply(tmp_path, monkeypatch):
    # a saved page with 3,000 rules naming images for classes on none of its elements: each rule's URLs were
    # written out as a browser would (~0.4 ms each; 470,000 rules in 8 sheets took 197 s) before being matched
    from medimg.sources import web_fetch

    site = tmp_path / "site"
    site.mkdir()
    (site / "s.css").write_text("".join(f".icon-{i} {{ background: url(icons/{i}.png) }}\n" for i in range(3000)))
    (site / "page.html").write_text('<html><head><link rel="stylesheet" href="s.css"></head><body>'
                                    '<p class="icon-7">x</p></body></html>')
    calls = []
    same = web_fetch._same
    monkeypatch.setattr(web_fetch, "_same", lambda url: calls.append(url) or same(url))
    got = list(open_input(site / "page.html"))
    assert [i.error for i in got if isinstance(i, ItemError) and not i.skipped] == [
        "'icons/7.png' not found next to the HTML file"]  # the one rule that matches is still read
    assert len(calls) < 10


def test_a_flat_document_given_up_on_stops_reading():
    # a flat document of millions of tiny elements reads at ~2 MB/s: once the run gives up on it (input_timeout),
    # the rest is not parsed (before: read to the end, every megabyte, on a thread no one waits for)
    import threading

    from medimg.sources import Blob, Context, Limits
    from test_mail_s44 import flat, frame, picture

    pictures = frame((picture(), "image/png"))
    data = flat("text", f"<office:text>{'<text:s/>' * 150_000}{pictures}</office:text>")
    assert len(data) > 1 << 20  # the picture after the first megabyte fed
    given_up = threading.Event()
    given_up.set()
    got = list(open_input(Blob("a.fodt", data, name="a.fodt"), ctx=Context(Limits(), given_up)))
    assert not any(isinstance(i, ImageItem) for i in got)
    assert sum(isinstance(i, ImageItem) for i in open_input(Blob("a.fodt", data, name="a.fodt"))) == 1
