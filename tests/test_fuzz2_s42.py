"""Hostile inputs to session 42's later code: saved pages whose stored types or URLs are odd, a labels.json with
numbers past a float's range or nested thousands deep, or thousands of labels, a corpus with a file that cannot
be read (review s42_fuzz2)."""
import io
import json
import os
import plistlib
import shutil
import time

import pytest
from PIL import Image
from typer.testing import CliRunner

from medimg.cli import app
from medimg.model import Classifier
from medimg.sources import open_inputs
from medimg.sources.base import Blob
from medimg.training.dataset import scan

runner = CliRunner()


def _png(colour=(200, 10, 10)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (100, 100), colour).save(out, "PNG")
    return out.getvalue()


def _webarchive(**top) -> bytes:
    page = {"WebResourceData": b'<html><body><img src="a.png"></body></html>', "WebResourceURL": "http://x.org/",
            "WebResourceMIMEType": "text/html"}
    shown = {"WebResourceData": _png(), "WebResourceURL": "http://x.org/a.png", "WebResourceMIMEType": "image/png"}
    archive = {"WebMainResource": page, "WebSubresources": [shown], **top}
    return plistlib.dumps(archive, fmt=plistlib.FMT_BINARY)


def _read(name, data):
    return [(type(i).__name__, i.locator, getattr(i, "error", "")) for i in open_inputs([Blob(name, data)])]


@pytest.mark.parametrize("mime", [1, ["image/png"], b"image/png"])
def test_a_webarchive_resource_with_a_mime_type_not_a_string_costs_nothing(mime):
    # Before: (ctype or "").startswith raised out of the reader: "saved-page: could not read: internal error:
    # AttributeError", and the page's own picture was lost with the whole file.
    other = {"WebResourceData": _png((0, 0, 200)), "WebResourceURL": "http://x.org/bg.png",
             "WebResourceMIMEType": mime}
    data = _webarchive(WebSubresources=[
        {"WebResourceData": _png(), "WebResourceURL": "http://x.org/a.png", "WebResourceMIMEType": "image/png"},
        other])
    got = _read("x.webarchive", data)
    assert ("ImageItem", "img #1 http://x.org/a.png", "") in got, got
    assert not any("internal" in e for _, _, e in got), got


def test_a_webarchive_picture_with_a_mime_type_not_a_string_is_read():
    # Before: "could not fetch: TypeError: Blob's content_type must be a str", for a picture stored whole.
    data = _webarchive(WebSubresources=[{"WebResourceData": _png(), "WebResourceURL": "http://x.org/a.png",
                                         "WebResourceMIMEType": 7}])
    assert _read("x.webarchive", data) == [("ImageItem", "img #1 http://x.org/a.png", "")]


def test_a_webarchive_frame_list_of_another_type_keeps_the_pages_pictures():
    # Before: "could not read this Safari web archive: 'datetime.datetime' object is not iterable".
    import datetime

    for frames in (datetime.datetime(2000, 1, 1), 5):
        data = _webarchive(WebSubframeArchives=frames)
        assert _read("x.webarchive", data) == [("ImageItem", "img #1 http://x.org/a.png", "")]


def test_an_mhtml_picture_stored_by_a_url_urlsplit_refuses_is_read():
    # Before: "could not fetch: ValueError: Invalid IPv6 URL" for a picture whose bytes are in the file (and,
    # with that fixed alone, the whole file was lost when the picture was compared with the others).
    body = __import__("base64").encodebytes(_png()).decode()
    mht = ("From: <Saved by Blink>\r\nSnapshot-Content-Location: http://x.org/\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/related; type=\"text/html\"; boundary=\"B\"\r\n\r\n"
           "--B\r\nContent-Type: text/html\r\nContent-Location: http://x.org/\r\n\r\n<p>hi</p>\r\n"
           "--B\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\nContent-Location: http://[::1/a.png"
           f"\r\n\r\n{body}\r\n--B--\r\n").encode()
    assert _read("x.mhtml", mht) == [("ImageItem", "resource #1 http://[::1/a.png", "")]


def _edited(tiny_model_dir, folder, text):
    shutil.copytree(tiny_model_dir, folder)
    (folder / "labels.json").write_text(text)
    return folder


def _with(tiny_model_dir, key, raw):
    meta = json.loads((tiny_model_dir / "labels.json").read_text())
    meta.pop(key, None)
    return json.dumps(meta)[:-1] + f', "{key}": {raw}}}'


@pytest.mark.parametrize("key,raw", [("temperature", "1" + "0" * 400), ("threshold", "1" + "0" * 400),
                                     ("mean", "[1" + "0" * 400 + ", 0, 0]"), ("std", "[1, 1, 1" + "0" * 400 + "]")])
def test_a_labels_json_number_past_a_floats_range_is_refused(tiny_model_dir, tmp_path, key, raw):
    # Before: float() raised OverflowError (temperature), np.isfinite TypeError (mean): a traceback from the CLI.
    folder = _edited(tiny_model_dir, tmp_path / "m", _with(tiny_model_dir, key, raw))
    with pytest.raises(ValueError, match=f"its {key} must be"):
        Classifier.load(folder)
    Image.new("RGB", (80, 80), (9, 9, 9)).save(tmp_path / "a.png")
    res = runner.invoke(app, ["classify", str(tmp_path / "a.png"), "--model", str(folder)])
    assert res.exit_code == 2 and "Traceback" not in res.output and not isinstance(res.exception, OverflowError), \
        (res.output, res.exception)


def test_a_labels_json_nested_thousands_deep_is_refused(tiny_model_dir, tmp_path):
    # Before: RecursionError out of json.loads.
    folder = _edited(tiny_model_dir, tmp_path / "m", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nested too deep"):
        Classifier.load(folder)


def test_thousands_of_medical_labels_are_checked_at_once(tiny_model_dir, tmp_path):
    # Before: each medical label looked up in the list of labels: 40,000 took ~9 s CPU (20,000: 2.2 s).
    names = [f"l{i}" for i in range(40_000)]
    folder = _edited(tiny_model_dir, tmp_path / "m",
                     json.dumps({"labels": names, "medical_labels": names, "input_size": 32}))
    start = time.process_time()
    with pytest.raises(ValueError, match="labels"):
        Classifier.load(folder)
    assert time.process_time() - start < 1.5


def _unreadable_link() -> str | None:
    """A path whose stat fails with PermissionError here, if any (root in a container: /proc/1/cwd)."""
    try:
        os.stat("/proc/1/cwd")
    except PermissionError:
        return "/proc/1"
    except OSError:
        return None
    return None


def test_a_corpus_file_that_cannot_be_read_is_a_note_not_a_traceback(tmp_path):
    # Before: Path.is_file's PermissionError stopped the scan (medimg train printed a traceback); an unreadable
    # folder was passed over without a word.
    for label in ("xray", "ct"):
        (tmp_path / label / "s1").mkdir(parents=True)
        Image.new("L", (64, 64), 90).save(tmp_path / label / "s1" / "a.png")
    target = _unreadable_link()
    if os.geteuid() != 0:
        locked = tmp_path / "xray" / "s1" / "locked"
        locked.mkdir()
        Image.new("L", (64, 64), 9).save(locked / "b.png")
        locked.chmod(0)
    elif target:
        os.symlink(target, tmp_path / "xray" / "s1" / "p1")
    else:
        pytest.skip("no file or folder this user cannot read (root, and /proc/1/cwd readable)")
    notes = []
    try:
        corpus = scan(tmp_path, log=notes.append)
    finally:
        if os.geteuid() != 0:
            (tmp_path / "xray" / "s1" / "locked").chmod(0o755)
    assert corpus.paths == ["ct/s1/a.png", "xray/s1/a.png"]
    assert any("could not be read are left out" in n for n in notes), notes
