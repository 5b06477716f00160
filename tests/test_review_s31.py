"""Review of session 31's diff: defects found and fixed."""

from medimg.model.classifier import verdict_for
from medimg.pipeline import Record
from medimg.server.ui import _addresses, _caption, _web_address


def _rec(p: float, t: float) -> Record:
    return Record(input="a.png", locator="", label="xray", confidence=0.9, p_medical=p, verdict=verdict_for(p, t))


def test_an_uncertain_caption_is_not_rounded_onto_the_non_medical_boundary():
    # p = 0.2 is non-medical at 0.8 (verdict_for: 1 − 0.2 ≥ 0.8), so an uncertain 0.2000001 is not "20%"
    assert verdict_for(0.2, 0.8) == "non-medical" and _rec(0.2000001, 0.8).verdict == "uncertain"
    shown = _caption(_rec(0.2000001, 0.8), 0.8).split(" · ")[0]
    assert shown != "uncertain (medical 20%)", shown
    assert _caption(_rec(0.968, 0.97), 0.97).startswith("uncertain (medical 96.8%)")


def test_a_www_address_with_a_space_in_its_path_is_a_web_address():
    # docs/server.md: several on a line, each with its https:// or www.; any other space is part of the address
    for typed in ("www.example.org/my cases.html", "example.org/my cases.html"):
        [one] = _addresses(typed)
        assert _web_address(one) == ("https://" + typed, None)
    assert _web_address("not a url")[1] is not None
