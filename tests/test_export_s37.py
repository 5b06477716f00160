"""The page's CSV marks formula starts where the rule says (s37_perf review: the faster safe_cell, which no longer
reads every character of every cell in Python, against the rule written plainly; its speed is measured in
benchmarks, docs/benchmarks.md)."""

from __future__ import annotations

import random

from medimg.server.export import safe_cell


def _marked(cell: str) -> str:
    """safe_cell as its docstring says it, character by character (quadratic, for short cells)."""
    def formula_ahead(i: int) -> bool:
        rest = cell[i:].lstrip()
        while rest[:1] in ('"', "'") and rest:
            rest = rest[1:].lstrip()
        return rest[:1] in tuple("=+-@\uff1d\uff0b\uff0d\uff20") and rest != ""

    out = "".join(ch + "'" if ch in ",;\t\r\n" and formula_ahead(i + 1) else ch for i, ch in enumerate(cell))
    return "'" + out if cell[:1] in ("\t", "\r", "\n") or formula_ahead(0) else out


def test_the_marks_are_where_the_rule_puts_them():
    rng = random.Random(37)
    alphabet = list("=+-@\uff1d,;\t\r\n \"'a.\u00a0\u3000\x1c")
    for _ in range(20_000):
        cell = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert safe_cell(cell) == _marked(cell), repr(cell)
    assert safe_cell("/data/site-1/scan-1.png") == "/data/site-1/scan-1.png"
    assert safe_cell('x, "\n =1') == "x,' \"\n' =1"
    assert safe_cell(3.5) == 3.5
