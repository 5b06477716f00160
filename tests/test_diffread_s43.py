"""Session 43's change read critically: limits that must hold for what it added."""

from __future__ import annotations

import html

from medimg.sources.web_page import MAX_GUESSES, extract


def test_the_guesses_cap_holds_for_links_in_srcdoc_frames_too():
    """Links taken on a hint (`attachment.php?id=N`) are capped at MAX_GUESSES a page; an `<iframe srcdoc>`'s page
    is read in its place, and its links count against the page's cap (each frame had a cap of its own: 5 frames,
    5 × MAX_GUESSES fetches)."""
    def links(k: int) -> str:
        return "".join(f'<a href="/attachment.php?id={k}_{n}">file</a>' for n in range(MAX_GUESSES))

    page = "".join(f'<iframe srcdoc="{html.escape(links(k))}"></iframe>' for k in range(5))
    found = extract(page, "http://127.0.0.1/case.html")
    assert found.guesses == MAX_GUESSES and len(found) == MAX_GUESSES, (found.guesses, len(found))
    assert len(found.passed) == 4 * MAX_GUESSES  # named in the page's note, as those past the cap on the page itself
    mixed = extract(links(9) + f'<iframe srcdoc="{html.escape(links(0))}"></iframe>', "http://127.0.0.1/a.html")
    assert mixed.guesses == MAX_GUESSES and len(mixed.passed) == MAX_GUESSES
