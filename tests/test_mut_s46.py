"""Mutation testing of session 46's changes: tests for behaviours that no test pinned (each fails on a mutant of
the code it names, see docs of the review: s46_mut)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from medimg.cli import app
from medimg.sources import Blob, ItemError, open_input
from medimg.sources.web_fetch import decode_data_uri
from medimg.sources.web_page import extract

PAGE = "http://127.0.0.1:9/p/page.html"


def test_an_http_refresh_header_is_resolved_against_the_page_not_its_base_element():
    """The header is read when the document is made, before any <base href> is parsed (as Chromium does)."""
    found = extract(b'<html><head><base href="/other/"></head><body></body></html>', PAGE, "text/html",
                    refresh="0; url=case.html")
    assert found.refresh == "http://127.0.0.1:9/p/case.html"


def test_only_the_first_refresh_that_parses_counts():
    # a <meta> reload (no URL) first: a later <meta> to elsewhere is not followed
    found = extract(b'<meta http-equiv="refresh" content="30"><meta http-equiv="refresh" content="0; url=/next">',
                    PAGE, "text/html")
    assert found.refreshed and found.refresh is None
    # a header that does not parse is no refresh: the page's <meta> one counts
    found = extract(b'<meta http-equiv="refresh" content="0; url=/next">', PAGE, "text/html", refresh="soon")
    assert found.refresh == "http://127.0.0.1:9/next"


@pytest.mark.parametrize("content", ["0; url=page.html", "0; url=page.html#top", "0; url=data:text/html,<p>hi"])
def test_a_refresh_to_the_page_itself_or_to_a_data_url_goes_nowhere(content):
    assert extract(f'<meta http-equiv="refresh" content="{content}">'.encode(), PAGE, "text/html").refresh is None
    assert extract(b"<p>moved</p>", PAGE, "text/html", refresh=content).refresh is None


def test_forgiving_base64_of_a_data_url():
    """White space anywhere is dropped, padding is optional, a `=` padding an incomplete group fails, and a
    length no base64 has is said to be cut off (as the WHATWG's forgiving-base64)."""
    assert decode_data_uri("data:text/plain;base64,QUJD REVG", 100)[0] == b"ABCDEF"
    assert decode_data_uri("data:text/plain;base64,QU%0AJD%09REVG", 100)[0] == b"ABCDEF"
    assert decode_data_uri("data:text/plain;base64,QQ==", 100)[0] == b"A"
    assert decode_data_uri("data:text/plain;base64,QUI=", 100)[0] == b"AB"
    assert decode_data_uri("data:text/plain;base64,QQ", 100)[0] == b"A"
    with pytest.raises(ValueError, match="'=' at character 3, outside the alphabet"):
        decode_data_uri("data:text/plain;base64,QQ=", 100)
    with pytest.raises(ValueError, match="its base64 is cut off"):
        decode_data_uri("data:text/plain;base64,QUJDR", 100)


def test_zeros_named_as_a_tar_but_not_whole_blocks_are_not_an_empty_archive():
    for data in (b"\0" * 1000, b""):
        (item,) = open_input(Blob("x.tar", data, name="x.tar"))
        assert isinstance(item, ItemError) and item.error != "archive holds no files", item


def test_zip_methods_named_as_7_zip_and_winzip_name_them():
    from medimg.sources.archive import _method

    assert _method(98) == "PPMd (method 98)" and _method(99) == "AES (method 99)"
    assert _method(9) == "Deflate64 (method 9)" and _method(77) == "an unknown method (method 77)"  # mid-sentence: lower case


def test_evaluate_takes_the_archive_caps_options(tmp_path, tiny_model_dir, monkeypatch):
    import medimg.cli as cli

    told = {}

    def caught(*args, **kwargs):
        told.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(cli, "make_limits", caught)
    (tmp_path / "xray" / "s").mkdir(parents=True)
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path), "--model", str(tiny_model_dir), "--max-archive-mb", "7",
                                   "--max-depth", "0"])
    assert isinstance(res.exception, RuntimeError), res.output
    assert told["max_archive_mb"] == 7 and told["max_depth"] == 0


def test_an_epub_picture_named_percent_encoded_in_three_chapters_is_placed_in_each():
    """`src="my%20scan.png"` names the member `my scan.png`; three chapters are named, not "and 0 more"."""
    from test_office_s43 import items, rows
    from test_office_s46 import epub_of

    book = epub_of(3, "../my%20scan.png", "my scan.png", (60, 40), name="text/ch{i}.xhtml")
    assert rows(items(book, "atlas.epub"))[1:] == [
        ("atlas.epub:my scan.png", "ch1.xhtml, ch2.xhtml, ch3.xhtml", "image")]
