"""Limits checks its fields when it is made, and its docstring explains every field (`help(Limits)`)."""

import dataclasses
import math

import pytest

from medimg.sources.base import Limits, as_limits


@pytest.mark.parametrize("fields, error, words", [
    (dict(allow_private="no"), TypeError, "limits.allow_private must be True or False, not 'no'"),
    (dict(max_pixels=0), ValueError, "limits.max_pixels must be a whole number ≥ 1, not 0"),
    (dict(total_timeout=math.nan), ValueError, "limits.total_timeout must be a number ≥ 0"),
    (dict(max_pdf_pages=2.5), TypeError, "limits.max_pdf_pages must be a whole number ≥ 1"),
    (dict(user_agent=None), TypeError, "limits.user_agent must be a string"),
])
def test_a_wrong_field_fails_where_it_is_made(fields, error, words):
    with pytest.raises(error) as got:
        Limits(**fields)
    assert words in str(got.value)
    with pytest.raises(error):  # and when replaced in a good one
        dataclasses.replace(Limits(), **fields)


def test_good_fields_pass_and_a_field_set_later_is_still_checked_on_use():
    lim = Limits(decode_side=None, min_side=0, max_depth=0, allow_private=True, read_timeout=0.5)
    assert as_limits(lim) is lim
    lim.offline = "yes"  # set after it was made: caught where it is used
    with pytest.raises(TypeError, match="limits.offline must be True or False"):
        as_limits(lim)


def test_the_docstring_explains_every_field():
    doc = Limits.__doc__
    missing = [f.name for f in dataclasses.fields(Limits) if f.name not in doc]
    assert not missing, missing
