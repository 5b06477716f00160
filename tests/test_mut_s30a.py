"""Mutation-testing round s30a: behaviours of the stylesheet reading (css.py), the page and sheet charsets and the
NUL/UTF-16 lists that no earlier test pinned down. Each test here failed on a hand mutant of the code and passes
on the code as it is."""

from __future__ import annotations

import pytest
from test_web_duplicates import images, notes, picture, run
from webserver import WebServer

from medimg.sources import css, web


@pytest.fixture
def srv():
    with WebServer() as server:
        yield server


def screen(media: str) -> bool:
    return web.media_matches(media)


def styled(srv, rules: str, body: str, names: list[str]) -> list[str]:
    """The images (paths) a page with `body` and one linked stylesheet of `rules` gives; each of `names` is a
    picture of its own at /<name>."""
    for i, name in enumerate(names):
        srv.add(f"/{name}", picture((20 + 23 * i, 200 - 17 * i, 90)), "image/png")
    srv.add("/s.css", rules, "text/css")
    url = srv.add("/page.html", f'<!doctype html><html><head><link rel="stylesheet" href="s.css"></head>'
                                f"<body>{body}</body></html>")
    return [u.removeprefix(srv.url("/")) for u in images(run(url))]


# --- the scanner -------------------------------------------------------------------------------------------------


def test_a_sheet_cut_short_inside_its_last_rule_still_gives_that_rule():
    """Browsers close a block left open at the end of a sheet (a truncated download, a missing brace)."""
    assert css.read_sheet(".a { color: red } .b { background: url(b.png)", screen).rules == [(".b", ["b.png"])]


def test_a_rule_with_several_declarations_is_one_rule():
    """Inside a block only the braces count: a ";" between declarations ends no statement of the sheet."""
    sheet = ".a { color: red; background: url(a.png); margin: 0 }\n@media screen { .b { color: red; background: url(b.png) } }"
    assert css.read_sheet(sheet, screen).rules == [(".a", ["a.png"]), (".b", ["b.png"])]


def test_a_stray_closing_brace_ends_nothing_before_the_next_rule():
    assert css.read_sheet("} .a { background: url(a.png) }", screen).rules == [(".a", ["a.png"])]
    assert css.read_sheet(".a { background: url(a.png) } } .b { background: url(b.png) }", screen).rules == [
        (".a", ["a.png"]), (".b", ["b.png"])]


def test_group_rules_are_read_four_deep_and_no_deeper():
    def nested(depth: int) -> str:
        return "@supports (display: grid) {" * depth + ".a { background: url(a.png) }" + "}" * depth

    assert css.read_sheet(nested(4), screen).rules == [(".a", ["a.png"])]
    assert css.read_sheet(nested(5), screen).rules == []


def test_a_comment_never_closed_hides_the_rest_of_the_sheet():
    """CSS ends an unclosed comment at the end of the sheet: what follows "/*" is no rule."""
    assert css.read_sheet(".a { background: url(a.png) } /* .b { background: url(b.png) }", screen).rules == [
        (".a", ["a.png"])]


def test_an_import_with_layer_and_supports_keeps_its_media_query():
    sheet = ('@import url(a.css) layer(base) supports(display: grid) print;\n'
             '@import "b.css" layer(base) supports(display: grid) screen;\n.x { color: red }')
    assert css.imports(css.strip_comments(sheet), screen) == ["b.css"]


def test_an_import_after_the_first_rule_is_ignored():
    assert css.imports('@import "a.css"; .x { color: red } @import "b.css";', screen) == ["a.css"]


def test_a_vendor_prefixed_image_property_counts():
    rules = css.read_sheet(".a { -webkit-border-image: url(a.png) 30 round } .b { -moz-cursor: url(b.png) }", screen)
    assert rules.rules == [(".a", ["a.png"])]


def test_image_set_gives_its_last_and_largest_image():
    rules = css.read_sheet('.a { background-image: image-set("s.png" 1x, "l.png" 2x) }', screen).rules
    assert rules == [(".a", ["l.png"])]


def test_a_font_with_a_query_or_fragment_is_no_image():
    found = []
    css.css_urls("url(f.woff2?v=4.7) url('g.ttf#iefix') url(h.png?v=1)", lambda url, *_: found.append(url))
    assert found == ["h.png?v=1"]


# --- selectors, on a page --------------------------------------------------------------------------------------


def test_an_attribute_selector_holding_a_comma_is_one_selector(srv):
    rules = 'a[title="x,y"] { background: url(a.png) }'
    assert styled(srv, rules, '<a title="x,y">link</a>', ["a.png"]) == ["a.png"]
    assert css.selectors('a[title="x,y"], b') == ['a[title="x,y"]', "b"]


def test_a_descendants_pseudo_element_needs_a_descendant(srv):
    """`.x ::after` is `.x *::after`: an empty .x shows nothing."""
    rules = ".x ::after { content: url(a.png) } .y ::before { content: url(b.png) }"
    assert styled(srv, rules, '<div class="x"></div><div class="y"><span>b</span></div>', ["a.png", "b.png"]) == [
        "b.png"]


def test_a_class_needed_only_inside_nested_parentheses_is_not_required(srv):
    rules = ".card:not(:is(.a) .gone) { background: url(a.png) }"
    assert styled(srv, rules, '<p class="card">x</p>', ["a.png"]) == ["a.png"]


def test_a_class_written_with_an_escape_matches(srv):
    rules = r".md\:flex { background: url(a.png) } .\31 0up { background: url(b.png) }"
    assert styled(srv, rules, '<p class="md:flex">x</p><p class="10up">y</p>', ["a.png", "b.png"]) == [
        "a.png", "b.png"]


def test_a_class_with_capitals_matches(srv):
    assert styled(srv, ".Hero { background: url(a.png) }", '<div class="Hero"></div>', ["a.png"]) == ["a.png"]


# --- fetching the sheets -----------------------------------------------------------------------------------------


def test_a_sheet_served_as_something_else_is_not_applied(srv):
    """An error page (text/html) where a sheet was linked: browsers apply only text/css."""
    srv.add("/a.png", picture((10, 200, 30)), "image/png")
    srv.add("/s.css", ".hero { background: url(a.png) }", "text/html")
    url = srv.add("/page.html", '<link rel="stylesheet" href="s.css"><div class="hero"></div>')
    items = run(url)
    assert images(items) == [] and srv.hits["/a.png"] == 0
    assert notes(items)[-1][1].startswith(f"1 external stylesheet not read (not a stylesheet: {srv.url('/s.css')} "
                                          "is text/html)")


def test_an_alternate_stylesheet_or_a_styles_import_for_print_is_not_applied(srv):
    srv.add("/a.png", picture((10, 200, 30)), "image/png")
    srv.add("/alt.css", ".hero { background: url(a.png) }", "text/css")
    srv.add("/print.css", ".hero { background: url(a.png) }", "text/css")
    url = srv.add("/page.html", '<link rel="alternate stylesheet" href="alt.css" title="High contrast">'
                                '<style media="print">@import "print.css";</style><div class="hero"></div>')
    assert images(run(url)) == []
    assert srv.hits["/alt.css"] == srv.hits["/print.css"] == 0


def test_a_sheets_images_keep_to_the_images_cap(srv):
    srv.add("/a.png", picture((10, 200, 30)), "image/png")
    srv.add("/b.png", picture((200, 10, 30)), "image/png")
    srv.add("/s.css", ".hero { background: url(b.png) }", "text/css")
    url = srv.add("/page.html", '<link rel="stylesheet" href="s.css"><img src="a.png"><div class="hero"></div>')
    items = run(url, max_images_per_input=1)
    assert images(items) == [srv.url("/a.png")] and srv.hits["/b.png"] == 0
    assert notes(items) == [("", "1 more image on the page was not fetched (max_images_per_input = 1)")]


def test_a_page_whose_sheets_give_no_image_still_says_so(srv):
    srv.add("/s.css", ".gone { background: url(b.png) }", "text/css")
    items = run(srv.add("/page.html", '<link rel="stylesheet" href="s.css"><p>text</p>'))
    assert notes(items) == [("", "no images found on the page")]


def test_a_rule_naming_only_the_pages_own_images_costs_no_match(srv, monkeypatch):
    """The matcher's cap counts the rules it must ask about: one whose images the page has already is not one."""
    monkeypatch.setattr("medimg.sources.css.MAX_RULES", 1)
    srv.add("/a.png", picture((10, 200, 30)), "image/png")
    srv.add("/b.png", picture((200, 10, 30)), "image/png")
    srv.add("/s.css", ".x { background: url(a.png) } .y { background: url(b.png) }", "text/css")
    url = srv.add("/page.html", '<link rel="stylesheet" href="s.css"><img src="a.png" class="x"><p class="y">t</p>')
    items = run(url)
    assert images(items) == [srv.url("/a.png"), srv.url("/b.png")] and notes(items) == []


# --- charsets ----------------------------------------------------------------------------------------------------

CAFE = ".caf\u00e9 { background: url(\u00e9.png) }"


def test_a_sheet_naming_no_charset_is_read_in_the_pages(srv):
    srv.add("/%C3%A9.png", picture((200, 40, 40)), "image/png")
    srv.add("/s.css", CAFE.encode("cp1252"), "text/css")
    url = srv.add("/page.html", '<meta charset="windows-1252"><link rel="stylesheet" href="s.css">'
                                '<p class="caf\u00e9">x</p>'.encode("cp1252"))
    assert images(run(url)) == [srv.url("/\u00e9.png")]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be"])
def test_a_unicode_pages_query_goes_as_utf8(encoding):
    """A page with a byte-order mark: its URLs' non-ASCII characters are sent in UTF-8, never with a BOM or in
    UTF-16."""
    html = '<img src="a.png?q=\u00e9">'.encode(encoding)
    if encoding == "utf-16-be":
        html = b"\xfe\xff" + html
    (cand,) = web.extract(html, "http://h/")
    assert cand.url == "http://h/a.png?q=\u00e9"


def test_the_rendered_page_is_told_utf8_only_when_it_names_no_charset_browsers_know():
    from medimg.sources.browser import _charset_told

    body = "<p>caf\u00e9</p>".encode()
    told = {"Content-Type": "text/html; charset=windows-1252"}
    assert _charset_told(told, body) == told  # the page's own word stands, as the static reading has it
    assert _charset_told({"Content-Type": "text/html"}, body) == {"Content-Type": "text/html; charset=utf-8"}
    assert _charset_told({"content-type": "text/plain"}, body) == {"content-type": "text/plain"}


# --- lists: NUL-separated and UTF-16 -----------------------------------------------------------------------------


def test_a_text_list_with_as_many_nuls_as_line_ends_is_refused_as_a_whole(tmp_path):
    """One name holding a newline, ended by a NUL (find -print0): the hint names the list, before any entry."""
    from medimg.lists import open_list

    (tmp_path / "l.txt").write_bytes(b"scans/a\nb.png\0")
    with pytest.raises(ValueError, match=f"^{tmp_path / 'l.txt'} holds NUL bytes"):
        open_list(str(tmp_path / "l.txt"))


@pytest.mark.parametrize("line", [b"a.png\0b.png\0c.png", b"a.png\0"])
def test_nul_separated_names_further_down_a_text_list_are_refused_at_their_line(tmp_path, line):
    from medimg.lists import open_list

    (tmp_path / "l.txt").write_bytes(b"".join(b"%d.png\n" % i for i in range(10)) + line + b"\n")
    entries = open_list(str(tmp_path / "l.txt"))
    assert list(entries) == [f"{i}.png" for i in range(10)]  # the list ends there, and says why
    assert "(line 11 holds NUL bytes" in entries.failed


def test_a_list_of_one_name_without_a_line_end_is_read(tmp_path):
    """`printf a.png > list.txt`: no line end and no NUL is one name, not a NUL-separated list."""
    from medimg.lists import open_list

    (tmp_path / "l.txt").write_bytes(b"a.png")
    assert list(open_list(str(tmp_path / "l.txt"))) == ["a.png"]
    (tmp_path / "empty.txt").write_bytes(b"")
    assert list(open_list(str(tmp_path / "empty.txt"))) == []


def test_a_null_list_takes_no_column(tmp_path):
    from medimg.lists import open_list

    (tmp_path / "l").write_bytes(b"a.png\0")
    with pytest.raises(ValueError, match="--column is for tables"):
        open_list(str(tmp_path / "l"), column="url", null=True)


def test_a_path_under_a_file_given_is_not_inside_it(tmp_path, monkeypatch):
    """`notes.txt` and `notes.txt/x.png`: a file holds nothing, so the second is no path inside the first (it is
    kept, and fails as the missing file it is)."""
    from medimg.keyset import KeySet
    from medimg.lists import inside_given, once_many

    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "scans").mkdir()
    entries = ["notes.txt", "notes.txt/x.png", "scans", "scans/a.png"]
    seen = KeySet()
    assert list(once_many(entries, seen=seen)) == [entries]
    assert inside_given(entries, seen) == [False, False, False, True]


def test_a_file_at_the_root_is_inside_the_root_given():
    """(The root itself comes out as inside itself, so `scale` drops every entry of such a list: reported apart,
    not pinned here.)"""
    from medimg.keyset import KeySet
    from medimg.lists import inside_given, once_many

    entries = ["/", "/etc/hostname", "/x.png"]
    seen = KeySet()
    list(once_many(entries, seen=seen))
    assert inside_given(entries, seen)[1:] == [True, True]


def test_entry_keys_at_the_root_folder(monkeypatch):
    from medimg.lists import entry_key

    monkeypatch.chdir("/")
    assert entry_key("a.png") == "/a.png" and entry_key("a/.") == "/a"


# --- the matcher's cost guard ------------------------------------------------------------------------------------


def test_a_has_counts_as_a_step_down_the_page():
    """`:has(…)` walks below each element it is tried on: on a page 50 elements deep, `:has()` and four descendant
    combinators cost as much as five of them (C(53, 6) steps, over the cap) and are not asked; four alone are."""
    from selectolax.lexbor import LexborHTMLParser

    matcher = css.Matcher(LexborHTMLParser("<div>" * 50 + "<p>x</p>" + "</div>" * 50), set(), set())
    assert matcher.matches("div:has(span) div div div p") is None  # not asked: counted as not matched
    assert matcher.matches("div div div div p") is True


def test_sibling_combinators_on_a_long_list_are_not_asked():
    """`span ~ p ~ p ~ p` among 150 siblings: lexbor tries every choice of earlier siblings (it took 8 s among
    400); counted as not matched instead."""
    from selectolax.lexbor import LexborHTMLParser

    matcher = css.Matcher(LexborHTMLParser("<body>" + "<p>x</p>" * 150), set(), set())
    assert matcher.matches("span ~ p ~ p ~ p") is None
    assert matcher.matches("p ~ p") is True


# --- deferred thumbnails -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("between, waits", [(7, True), (8, False)])
def test_a_thumbnail_waits_for_a_full_image_up_to_read_ahead_places_later(srv, between, waits):
    """The full image its link leads to comes `between` + 1 places later (the img's own backgrounds come first):
    within READ_AHEAD (8) the thumbnail waits for it and, that image read, is a note never downloaded; further on
    it is read as it is."""
    assert web.READ_AHEAD == 8
    srv.add("/full.jpg", picture((160, 80, 60), "JPEG", (800, 600)), "image/jpeg")
    srv.add("/thumb.jpg", picture((10, 20, 200), "JPEG"), "image/jpeg")
    for i in range(between):
        srv.add(f"/b{i}.png", picture((30 * i, 200, 30)), "image/png")
    style = ", ".join(f"url(b{i}.png)" for i in range(between))
    url = srv.add("/page.html", f'<a href="full.jpg"><img src="thumb.jpg" style="background-image: {style}"></a>')
    items = run(url, max_concurrency=1)
    assert (srv.url("/thumb.jpg") in images(items)) is not waits and srv.url("/full.jpg") in images(items)
    assert srv.hits["/thumb.jpg"] == (0 if waits else 1)
