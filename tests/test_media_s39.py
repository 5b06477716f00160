"""Media query lists read by Media Queries 4's grammar (and/or/not nested in parentheses, commas outside them,
calc()/min()/max()/clamp() values), each answer as /usr/bin/chromium's matchMedia gave it at media.VIEWPORT
(1280×1800): the static reader picks the <picture> source a browser would."""

import json
import shutil

import pytest

from medimg.sources.media import VIEWPORT, media_matches

CHROMIUM = [  # (query, what Chromium 156's matchMedia said)
    ('(min-width: 600px) and (hover) or (pointer: fine)', False),
    ('(hover) or (pointer: fine) and (min-width: 600px)', False),
    ('not (hover) and (pointer: fine)', False),
    ('not ((hover) and (pointer: coarse))', True),
    ('not (not (hover))', True),
    ('((width))', True),
    ('((min-width: 2000px) or (hover))', True),
    ('screen and (max-width: 600px) or (hover)', False),
    ('screen and not (max-width: 600px)', True),
    ('(any-hover, hover)', False),
    ('print, (foo, bar), screen', True),
    ('"(", screen', True),
    ('not \\, screen', False),
    ('(hover) or "("', False),
    ('(min-width: calc(2000px))', False),
    ('(max-width: calc(768px - 0.02px))', False),
    ('(min-width: calc(40em + 1px))', True),
    ('(min-width: min(100px, 2000px))', True),
    ('(min-width: clamp(100px, 2000px, 3000px))', False),
    ('(min-width: calc((100px + 1px) * 2))', True),
    ('(min-width: calc(100px-1px))', False),
    ('(min-width: calc(1px * 2px))', False),
    ('(width > calc(1px))', True),
    ('(color-gamut: calc(1))', False),
    ('(min-resolution: calc(1dppx))', True),
    ('(grid: 2)', False),
    ('not (grid: 2)', False),
    ('(min-horizontal-viewport-segments: 1)', False),
    ('(horizontal-viewport-segments > 0)', True),
    ('not (0 > width <= -)', False),
    ('(2pc < height >= 0vw)', False),
    ('(100px < width < 2000px)', True),
    ('(resolution > -1x)', False),
    ('(max-aspect-ratio: 3/0)', True),
    ('(min-aspect-ratio: -1)', False),
    ('(\xa0hover)', False),
    ('(any-hover:\xa0 hover)', False),
    ('screen and (hover) {', False),
    ('screen;', False),
    ('(update: no;ne) or (hover)', True),
    ('(min-width: 1px', True),
    ('screen and (not {)', False),
    ('foo(x) or (hover)', True),
    ('not foo(x)', False),
    ('(hover) and foo(x)', False),
    ('only (hover)', False),
    ('(hover) and', False),
    ('(hover)and (pointer: fine)', True),
    ('screen and(hover)', False),
]


@pytest.mark.parametrize("query, holds", CHROMIUM)
def test_a_media_query_holds_as_chromium_says(query, holds):
    assert media_matches(query) is holds


@pytest.mark.parametrize("media, shown", [
    ("(max-width: calc(768px - 0.02px))", "desk.png"),  # for phones: was taken to hold
    ("(min-width: 600px) and (hover) or (pointer: coarse)", "desk.png"),  # and with or: "not all"; was split
    ("not ((hover) and (pointer: coarse))", "wide.png"),  # was not read
])
def test_a_picture_gives_the_source_a_desktop_browser_shows(media, shown):
    from medimg.sources.web_page import extract
    html = f'''<picture><source media="{media}" srcset="wide.png"><img src="desk.png"></picture>'''
    (found,) = extract(html, "http://example.org/")
    assert found.url == "http://example.org/" + shown


def test_deep_or_long_queries_stay_cheap():
    import time
    for query in ("(" * 1000 + ")" * 1000, "(" * 1999, "not (" * 300 + "(hover)" + ")" * 300,
                  "(min-width: " + "calc(" * 600 + "1px" + ")" * 600 + ")", " or ".join(["(hover)"] * 180)):
        start = time.process_time()
        media_matches(query)
        assert time.process_time() - start < 0.5, query[:40]


@pytest.mark.skipif(not shutil.which("chromium") and not shutil.os.path.exists("/usr/bin/chromium"),
                    reason="no Chromium at /usr/bin/chromium to ask")
def test_the_recorded_answers_are_chromiums_own():
    """Re-asks the browser, so the table above cannot drift from what Chromium does."""
    sync_api = pytest.importorskip("playwright.sync_api")
    queries = [q for q, _ in CHROMIUM]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": VIEWPORT[0], "height": VIEWPORT[1]})
            got = page.evaluate("qs => qs.map(q => matchMedia(q).matches)", queries)
        finally:
            browser.close()
    assert [(q, g) for q, g in zip(queries, got)] == [(q, h) for q, h in CHROMIUM], json.dumps(queries)
