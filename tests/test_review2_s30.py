"""Review of the second half of the s30 changes: hostile stylesheets must not hang a run (quadratic regexes,
lexbor's backtracking, one rule with thousands of selectors), a sheet's `@charset "UTF-16"` in ASCII bytes, and a
nested archive named as an input."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image
from selectolax.lexbor import LexborHTMLParser

from builders import zip_bytes

from medimg.sources import css, web


def _quick(fn, *args, seconds: float = 1.5):
    start = time.monotonic()
    out = fn(*args)
    took = time.monotonic() - start
    assert took < seconds, f"{fn.__name__} took {took:.1f} s"
    return out


# --- quadratic regexes on a sheet's text (each of these took minutes to hours on a 2 MB sheet, holding the GIL) -----


@pytest.mark.parametrize("text", [
    '"' + '\\"' * 30_000,  # a string never closed, full of escaped quotes
    "url(" * 30_000,  # url( never closed
    "a{background:url(" + "(" * 30_000,
])
def test_strip_comments_is_linear(text):
    _quick(css.strip_comments, text)


def test_a_url_with_a_long_run_of_spaces_never_closed_is_read_in_linear_time():
    found = []
    _quick(css.css_urls, "url(" + " " * 100_000, lambda url, *_: found.append(url))
    assert found == []
    _quick(css.imports, "@import url(" + " " * 100_000 + ";", lambda media: True)
    _quick(css.read_sheet, "a{background:url(" + " " * 100_000, lambda media: True)


def test_comments_strings_and_urls_still_read_as_before():
    text = 'a{content:"/* no comment */"}/* gone */b{background:url(/*x*/a.png)} "unclosed /* kept\nc{}'
    assert css.strip_comments(text) == ('a{content:"/* no comment */"} b{background:url(/*x*/a.png)} '
                                        '"unclosed /* kept\nc{}')
    assert css.read_sheet("a { background: url( 'x.png' ) }", lambda m: True).rules == [("a", ["x.png"])]
    assert css.imports('@import url(  "s.css"  ) screen;', lambda m: True) == ["s.css"]


# --- lexbor: a selector it backtracks on for minutes, and a rule with thousands of selectors -------------------------


def test_a_selector_lexbor_would_backtrack_on_for_minutes_is_not_asked():
    """lexbor tries every choice of ancestors for descendant combinators: on a page 50 elements deep this selector
    takes it seconds to minutes (C(50, 8) steps), holding the GIL; the matcher's time cap is looked at only
    between selectors."""
    tree = LexborHTMLParser("<div>" * 50 + "<p>x</p>" + "</div>" * 50)
    matcher = css.Matcher(tree, set(), set())
    assert _quick(matcher.matches, "span " + "div " * 7 + "p") is None  # not matched: counted as such
    assert matcher.matches("body div div div p") is True  # cheap ones still are
    assert matcher.matches("span div p, div > p") is True


def test_a_typical_page_still_has_its_long_selectors_matched():
    html = "<body>" + "<div class=a><div class=b><ul><li><a><span>x</span></a></li></ul></div></div>" * 500
    matcher = css.Matcher(LexborHTMLParser(html), {"a", "b"}, set())
    assert matcher.matches("html body .a .b ul li a span") is True
    assert matcher.matches("html body .a .b ol li a span") is False


def test_one_rule_with_thousands_of_selectors_keeps_to_the_time_cap(monkeypatch):
    """The time is looked at before each selector of a rule, not only between rules: a clock that moves 1 ms
    a look stops 30,000 selectors after about MATCH_SECONDS of them (not by the machine's speed)."""
    clock = iter(range(10**6))
    monkeypatch.setattr(css.time, "monotonic", lambda: next(clock) / 1000)
    asked = []
    monkeypatch.setattr(css, "_found", lambda tree, selector: asked.append(selector) or False)
    tree = LexborHTMLParser("<body>" + "<div><span>x</span></div>" * 30)
    matcher = css.Matcher(tree, set(), set())
    prelude = ",".join(f"div > p:nth-child({i})" for i in range(30_000))
    assert matcher.matches(prelude) is None  # given up at the cap, and counted
    assert 0 < len(asked) <= css.MATCH_SECONDS * 1000


# --- a sheet's encoding ------------------------------------------------------------------------------------------


def test_a_sheet_that_says_charset_utf16_in_ascii_bytes_is_read_as_utf8():
    """CSS Syntax: an @charset of UTF-16 is read as UTF-8 (the rule could not be read in ASCII bytes otherwise)."""
    data = '@charset "UTF-16";\n.x{background:url(caf\u00e9.png)}'.encode()
    assert web._sheet_charset(data, None, "windows-1252") == "utf-8"
    assert web._sheet_charset(data, "text/css; charset=utf-16", "windows-1252") == "utf-16"  # HTTP's: as it says
    assert web._sheet_charset(b'@charset "windows-1252";', None, "utf-8") == "windows-1252"


# --- a nested archive named as an input ----------------------------------------------------------------------------


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


def test_an_archive_inside_an_archive_named_as_an_input_gives_its_members(tmp_path):
    """`a.zip:x/in.zip` gave nothing at all (no item, no error): its members were all passed over."""
    from medimg.sources import open_input

    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_bytes({"x/in.zip": zip_bytes({"c.png": _png(), "d/e.png": _png()}), "x/1.png": _png()}))
    got = [(i.origin, getattr(i, "error", None)) for i in open_input(f"{archive}:x/in.zip")]
    assert got == [(f"{archive}:x/in.zip:c.png", None), (f"{archive}:x/in.zip:d/e.png", None)]
    got = [(i.origin, getattr(i, "error", None)) for i in open_input(f"{archive}:x/in.zip:d")]
    assert got == [(f"{archive}:x/in.zip:d/e.png", None)]


def test_an_inline_style_of_unclosed_font_faces_is_read_in_linear_time():
    """An unclosed `@font-face {` was looked for its `}` from every one of thousands of them (quadratic: 17 s
    for 50,000, holding the GIL); like a browser, an unclosed block now runs to the end of the style."""
    page = b"<style>" + b"@font-face{" * 50_000 + b"</style><img src=a.png>"
    found = _quick(web.extract, page, "http://example.org/", seconds=5.0)
    assert [c.url for c in found] == ["http://example.org/a.png"]
    # what follows an unclosed @font-face block is inside it: no rule of the page (as a browser reads it)
    found = web.extract(b"<style>@font-face{src:url(f.woff) .x{background:url(b.png)}</style>", "http://example.org/")
    assert [c.url for c in found] == []


def test_a_bracket_or_comma_inside_a_quoted_attribute_value_does_not_split_a_selector_list():
    """`[title="a(b"], .x` was one selector (the quoted bracket left the list unbalanced), so `.x` was never
    matched and the rule's image was missed; a quoted comma is no separator either."""
    assert css.selectors('[title="a(b"], .x') == ['[title="a(b"]', ".x"]
    assert css.selectors('a[title="x,y"]::before, .y:not(.a,.b), p') == ['a[title="x,y"]', ".y:not(.a,.b)", "p"]
