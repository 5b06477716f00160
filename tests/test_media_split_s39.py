"""Media query lists cut at their commas and parentheses closed as before s39_perf's faster scan (regex over the
brackets and commas only, not every character): the same pieces on nested, stray and unclosed brackets."""
import pytest

from medimg.sources.media import _closing, _queries, media_matches


@pytest.mark.parametrize("media, pieces", [
    ("", [""]),
    ("screen", ["screen"]),
    ("(min-width: 1px), print", ["(min-width: 1px)", " print"]),
    ("(a, b), c", ["(a, b)", " c"]),
    ("{a, b}, c", ["{a, b}", " c"]),
    ("[a,b],c,", ["[a,b]", "c", ""]),
    ("a), b, (c", ["a)", " b", " (c"]),  # a stray `)` does not go below no depth
    ("((a), b", ["((a), b"]),  # unclosed: one piece to the end
    ("(a]), b", ["(a])", " b"]),  # any closing bracket closes one level
])
def test_queries(media, pieces):
    assert _queries(media) == pieces


@pytest.mark.parametrize("text, at, end", [
    ("(a)", 0, 2), ("x((a) b) c", 1, 7), ("x((a) b) c", 2, 4), ("((a)", 0, 4), ("(a))", 0, 2), ("a (b [c) d", 2, 7),
])
def test_closing(text, at, end):
    assert _closing(text, at) == end


def test_lists():
    assert media_matches("(max-width: 100px), (min-width: 1000px)")
    assert not media_matches("(max-width: 100px), print")
    assert media_matches("(min-width: 1px) and ((hover: hover) or (x: y)), print")
    assert not media_matches("(min-width: 1px) and (hover: hover))")  # a stray `)`: "not all"
