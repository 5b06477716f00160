"""Session 45's changes fuzzed with seeded random and hand-made inputs (session 45, fuzz): meta refreshes, RFC 2047
upload names, a DICOMDIR given with its folders through links."""

from __future__ import annotations

import base64
import collections
import glob
import os
import random
from pathlib import Path

from medimg.sources import ImageItem, ItemError, Limits, open_input, open_inputs
from medimg.sources.web_page import _refresh_url, extract

WS = "\t\n\f\r "


def refresh_as_the_spec_reads_it(content: str) -> str | None:
    """The HTML standard's shared declarative refresh steps, step by step: the URL named, or None (no refresh, or a
    reload of the page itself)."""
    i, n = 0, len(content)
    while i < n and content[i] in WS:
        i += 1
    start = i
    while i < n and content[i] in "0123456789":
        i += 1
    if i == start and (i >= n or content[i] != "."):
        return None
    while i < n and content[i] in "0123456789.":
        i += 1
    if i < n:
        if content[i] not in ";," + WS:
            return None
        while i < n and content[i] in WS:
            i += 1
        if i < n and content[i] in ";,":
            i += 1
        while i < n and content[i] in WS:
            i += 1
    if i >= n:
        return None
    url = content[i:]
    if content[i:i + 3].lower() == "url":
        k = i + 3
        while k < n and content[k] in WS:
            k += 1
        if k >= n or content[k] != "=":
            return url.strip() or None  # "url" and no "=": the URL is all of it
        k += 1
        while k < n and content[k] in WS:
            k += 1
        i = k
    quote = content[i] if i < n and content[i] in "'\"" else ""
    url = content[i + len(quote):]
    if quote and quote in url:
        url = url[:url.index(quote)]
    return url.strip() or None


def test_a_refresh_content_is_read_as_the_html_standard_reads_it_seeded():
    """`5x; url=/a` and `1e3; url=/a` were read as going to `x; url=/a` and `e3; url=/a` (a 404 for a page that
    sends a browser nowhere); `0\\xa0url=/a` and an Arabic-Indic digit as a delay were taken too."""
    rnd = random.Random(4545)
    parts = ["0", "5", "12", ".", "-", "x", "e3", ";", ",", " ", "\t", "\n", "\xa0", "\u2003", "٣", "url", "URL", "u",
             "=", "'", '"', "/a", "b.html", "#f", "?q=1", "é"]
    for _ in range(5000):
        content = "".join(rnd.choice(parts) for _ in range(rnd.randint(0, 9)))
        assert _refresh_url(content) == refresh_as_the_spec_reads_it(content), repr(content)
    for content in ("5x; url=/a", "1e3; url=/a", "0\xa0url=/a", "٣; url=/a", "-1; url=/a"):
        assert _refresh_url(content) is None, content
    assert _refresh_url("0 ; URL = '/a b'c") == "/a b" and _refresh_url(".5,/b") == "/b"
    assert _refresh_url("0" * 200_000 + "x; url=/a") is None  # long: no slow backtracking
    assert extract(b'<meta http-equiv=refresh content="5x; url=/a">', "http://127.0.0.1:1/p.html").refresh is None


def test_a_page_whose_refresh_has_a_bad_delay_is_not_sent_on_to_a_made_up_address():
    from webserver import WebServer

    with WebServer() as srv:
        srv.add("/bad.html", '<meta http-equiv="refresh" content="5x; url=/img.html">')
        srv.add("/exp.html", '<meta http-equiv="refresh" content="1e3; url=/img.html">')
        for path in ("/bad.html", "/exp.html"):
            items = list(open_input(srv.url(path), Limits(allow_private=True, connect_timeout=2, read_timeout=2,
                                                          total_timeout=8)))
            assert [(type(i).__name__, i.error) for i in items] == [("ItemError", "no images found on the page")], \
                (path, items)
        assert sum(srv.hits.values()) == 2  # each page once, nothing else asked for


def test_encoded_word_names_of_random_charsets_and_payloads_never_fail_seeded():
    """Random encoded words (charsets that are no mail's: `rot13`, `unicode_escape`, `idna`; base64 cut short, bad
    Q escapes, mixed) give a name, never an exception (a 500): `=?utf-8?B?A?=` raised HeaderParseError."""
    from medimg.server.api import _display_name

    rnd = random.Random(2047)
    charsets = ["utf-8", "UTF-8", "iso-8859-1", "koi8-r", "shift_jis", "utf-16", "utf-7", "idna", "punycode",
                "unicode_escape", "rot13", "base64", "no-such", "utf-8*en", ""]
    for _ in range(3000):
        words = []
        for _ in range(rnd.randint(1, 3)):
            raw = bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 9)))
            if rnd.random() < 0.5:
                payload, kind = base64.b64encode(raw).decode()[:rnd.randint(0, 16)], "B"
            else:
                payload, kind = "".join(rnd.choice(["=00", "=2F", "_", "a", "=ZZ", "=", ".", "/"])
                                        for _ in range(rnd.randint(0, 6))), "Q"
            words.append(f"=?{rnd.choice(charsets)}?{kind}?{payload}?=")
        name = rnd.choice([" ", ""]).join(words)
        shown = _display_name(name, 3)
        assert shown and "/" not in shown and shown not in (".", ".."), (name, shown)
    assert _display_name("=?utf-8?B?A?=", 1) == "=?utf-8?B?A?="


def _export(root: Path) -> list[Path]:
    """A real DICOMDIR export made with pydicom's FileSet from pydicom's own test files; the files it lists."""
    import warnings

    import pydicom
    from pydicom.fileset import FileSet

    fs = FileSet()
    data = Path(pydicom.__file__).parent / "data" / "test_files"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("CT_small.dcm", "MR_small.dcm"):
            fs.add(pydicom.dcmread(glob.glob(str(data / name))[0]))
        fs.write(root)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "DICOMDIR")


def test_a_dicomdir_given_after_a_folder_that_links_to_part_of_its_export_reads_each_file_once(tmp_path):
    """A folder given first that holds a link to one of the export's patient folders read that folder's files
    through the link, and the DICOMDIR given after read them again (the other order read each once)."""
    cd = tmp_path / "cd"
    listed = _export(cd)
    holder = tmp_path / "holder"
    holder.mkdir()
    (holder / "patient").symlink_to(listed[0].parents[2], target_is_directory=True)
    for inputs in ([holder, cd / "DICOMDIR"], [cd / "DICOMDIR", holder]):
        items = list(open_inputs([str(p) for p in inputs]))
        got = collections.Counter(os.path.realpath(i.origin) for i in items if isinstance(i, ImageItem))
        assert sorted(got) == sorted(map(str, listed)) and set(got.values()) == {1}, (inputs, got)
        assert not [i for i in items if isinstance(i, ItemError) and not i.skipped]
