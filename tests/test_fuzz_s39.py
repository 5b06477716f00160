"""Cases found by fuzzing session 39's media query reader against Chromium's matchMedia (s39_fuzz), each a
fixed input with Chromium's answer at 1280 × 1800."""

from __future__ import annotations

import pytest

from medimg.sources.media import media_matches


@pytest.mark.parametrize("query, chromium", [
    ("(max-width: 1279.99px)", True),  # within 1/64 px of the width: Chromium's layout unit
    ("(max-width: 1279.984375px)", True),
    ("(max-width: 1279.98px)", False),
    ("(min-width: 1280.01px)", True),
    ("(min-width: 1280.02px)", False),
    ("(width: calc(1280px + 0.01px))", True),
    ("(width = 1280.01px)", True),
    ("(width >= calc(100vw + 0.02px * 0.5))", True),
    ("(min-height: 1800.015px)", True),
    ("(max-device-height: 1799.99px)", True),
    ("(min-width: 80.0009rem)", True),
    ("(width > 1279.999px)", True),  # `<` and `>` exactly
    ("(width < 1280px)", False),
    ("(min-resolution: 1.0001dppx)", False),  # not for resolutions
    ("(min-aspect-ratio: 1280.01/1800)", False),  # nor ratios
])
def test_lengths_compare_as_chromium_does_within_a_layout_unit(query, chromium):
    assert media_matches(query) is chromium


@pytest.mark.parametrize("query", ["(min-width: 576 px)", "(height > 6 em)", "(max-width: 1799\npx)",
                                   "(min-resolution: 1 dppx)", "(min-aspect-ratio: 1. / 9)",
                                   "(calc(40.em + 5vw) <= width)", "(max-width: clamp(75em, 1799px, 112.em))"])
def test_a_space_between_number_and_unit_or_a_bare_point_is_no_value(query):
    assert media_matches(query) is False  # Chromium: no match (the value is not one it takes)
