"""Responsive images as a desktop browser picks them: `srcset` candidates and `media` query lists, read for one
viewport (browser.py renders at the same size)."""

from __future__ import annotations

import math
import re
from functools import lru_cache

VIEWPORT = (1280, 1800)  # CSS px: the desktop screen a <picture>'s media queries are read for (browser.py's)
_MEDIA_FEATURE = re.compile(r"\( *([a-z0-9-]+) *(?:: *(.*))?\)")  # (spaces only: U+00A0 is none)
_MEDIA_RANGE = re.compile(r"\([^<>=:]*[<>=].*\)")
_SRCSET_GAP = re.compile(r"[\s,]*")
_SRCSET_URL = re.compile(r"\S+")
_SRCSET_DESC = re.compile(r"(?:[^,(]+|\([^)]*\)?)*")
_DESCRIPTOR = re.compile(r"(?:[^\s(]++|\([^)]*+\)?)++")  # the spec's tokens: white space ends one, not in parentheses
_INTEGER = re.compile(r"[0-9]+")  # a valid non-negative integer
_FLOAT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")  # a valid floating-point number
_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"  # `1.` is no CSS number
_RATIO = re.compile(rf"{_NUMBER}\s*/\s*{_NUMBER}")
_LENGTH = re.compile(r"([-+]?(?:\d+(?:\.\d+)?|\.\d+)(?:e[-+]?\d+)?)([a-z]+)?")  # a number, its unit (`1 px`: two)
_CSS_SPACE = re.compile(r"[ \t\n\r\f]+")  # CSS white space (not U+00A0, which str.split() takes)
_IDENT = re.compile(r"-?(?:[a-z_]|[^\x00-\x7f])(?:[a-z0-9_-]|[^\x00-\x7f])*")  # a media type's name (escapes made ¤)
_RESERVED = ("not", "and", "only", "or", "layer")  # never a media type
MAX_MEDIA = 2000  # characters of a media query list read; a longer one is no real query, and holds for nothing


def media_matches(media: str, width: int = VIEWPORT[0], height: int = VIEWPORT[1]) -> bool:
    """Whether a media query list holds for a desktop screen of width × height CSS px as headless Chromium is
    (light colour scheme, no reduced motion, a mouse, 8-bit sRGB colour, 1 dppx), read by Media Queries 4's
    grammar: commas between queries (not inside parentheses), media types with `not`/`only`, and conditions of
    `not`, `and` and `or` nested in parentheses (`and` and `or` mixed at one level, `not (a) and (b)`: "not all").
    The features it knows are `DISCRETE` and `_media_have`'s. A feature it does not know, a value it cannot take
    (`(hover: banana)`, `(min-width: 10)`), or other text in parentheses (`(ho ver)`, `foo(x)`) is unknown: `not`
    leaves it unknown, `and` with false is false, `or` with true is true, and a query left unknown does not hold
    (a browser passes over such a <source>). A query that breaks the grammar (an empty one, `not and`,
    `only (x)`, `(x) and screen`, a stray `)`) is "not all". A value may be `calc()`, `min()`, `max()` or
    `clamp()` (`_math`); a length compared with `<=`, `>=` or `=` may be 1/64 px off (`_compare`). A list longer
    than MAX_MEDIA characters (CSS white space runs counted as one; U+00A0 is none) holds for nothing, as a
    browser reads a query it cannot parse ("not all")."""
    if len(media) > 4 * MAX_MEDIA:  # no query, however much white space: not kept in the cache
        return _matches(media, width, height)
    return _cached(media, width, height)


def _matches(media: str, width: int, height: int) -> bool:
    media = _CSS_SPACE.sub(" ", media).strip(" ")  # runs of white space as one
    if not media:
        return True
    if len(media) > MAX_MEDIA:
        return False
    media = _STRING_OR_ESCAPE.sub(_neutral, media.lower())  # parentheses and commas in them are none
    return any(_query_holds(q, width, height) for q in _queries(media) if not _BREAKS.search(q))


_BREAKS = re.compile(r"[{}]")  # a rule's brackets: never in a query (one with them is "not all")


_cached = lru_cache(maxsize=4096)(_matches)  # a page or sheet asks the same few queries again and again


_STRING_OR_ESCAPE = re.compile(r'"[^"]*"?|\'[^\']*\'?|\\.?')


def _neutral(m: re.Match) -> str:
    """A string as `""` (never a name or a bracket), an escaped character as a letter no keyword has."""
    return '""' if m.group()[0] in "\"'" else "\u00a4"


def _queries(media: str) -> list[str]:
    """The list cut at its commas outside brackets (`(a, b)` and `{a, b` are one block each)."""
    out, depth, start = [], 0, 0
    for m in _QUERY_MARKS.finditer(media):  # only the brackets and commas, not every character
        c = m.group()
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(depth - 1, 0)
        elif not depth:
            out.append(media[start:m.start()])
            start = m.end()
    return [*out, media[start:]]


_QUERY_MARKS = re.compile(r"[()\[\]{},]")


class _NotAll(Exception):
    """The query breaks the grammar."""


_WORD = re.compile(r"[^ ()]+")
MAX_NESTING = 32  # parentheses in parentheses read; deeper text is unknown


def _tokens(text: str) -> list[tuple[str, str]]:
    """("word", w), ("block", what is inside a pair of parentheses) and ("function", its inside) for `name(…)`;
    an unclosed parenthesis closes at the end, as CSS's parser does; a stray `)` breaks the grammar."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == " ":
            i += 1
        elif c == ")":
            raise _NotAll
        elif c == "(":
            end = _closing(text, i)
            out.append(("block", text[i + 1:end]))
            i = end + 1
        else:
            start, i = i, _WORD.match(text, i).end()
            if i < len(text) and text[i] == "(":
                if not _IDENT.fullmatch(text[start:i]):
                    raise _NotAll  # `"(`: no function's name
                end = _closing(text, i)
                out.append(("function", text[i + 1:end]))
                i = end + 1
            else:
                out.append(("word", text[start:i]))
    return out


def _closing(text: str, i: int) -> int:
    """The index of the `)` closing the `(` at i, or len(text) when none does."""
    depth = 0
    for m in _PARENS.finditer(text, i):
        if m.group() == "(":
            depth += 1
        else:
            depth -= 1
            if not depth:
                return m.start()
    return len(text)


_PARENS = re.compile(r"[()]")


def _query_holds(query: str, width: int, height: int) -> bool:
    try:
        tokens = _tokens(query)
        if not tokens or any(";" in text for kind, text in tokens if kind == "word"):
            return False  # `screen, ,`: an empty query is "not all", as is one with a `;` outside parentheses
        kind, first = tokens[0]
        if kind != "word" or first == "not" and len(tokens) > 1 and tokens[1][0] != "word":
            held = _condition(tokens, width, height, 0)
            return held is True
        negate, only = first == "not", first == "only"
        if negate or only:
            tokens = tokens[1:]
        if not tokens or tokens[0][0] != "word":
            return False  # `only (x)`, `not`
        media_type = tokens[0][1]
        if not _IDENT.fullmatch(media_type) or media_type in _RESERVED:
            return False
        held = media_type in ("all", "screen")
        if len(tokens) > 1:
            if tokens[1] != ("word", "and") or len(tokens) < 3:
                return False  # `screen (x)`, `screen and`
            held = _and(held, _condition(tokens[2:], width, height, 0, with_or=False))
        return held is not None and held != negate
    except _NotAll:
        return False


def _condition(tokens: list, width: int, height: int, depth: int, with_or: bool = True) -> bool | None:
    """A media condition's value: True, False or None (unknown); raises _NotAll when it breaks the grammar."""
    if tokens[0] == ("word", "not"):
        if len(tokens) != 2:
            raise _NotAll  # `not (a) and (b)`, `not`
        value = _in_parens(tokens[1], width, height, depth)
        return None if value is None else not value
    joins = {t for t in tokens[1::2]}
    if len(tokens) % 2 == 0 or joins - {("word", "and")} and joins - {("word", "or")} \
            or not with_or and ("word", "or") in joins:
        raise _NotAll  # `(a) (b)`, `(a) and`, `(a) and (b) or (c)`; `screen and (a) or (b)`
    values = [_in_parens(t, width, height, depth) for t in tokens[0::2]]
    if ("word", "or") in joins:
        return True if True in values else None if None in values else False
    held: bool | None = True
    for value in values:
        held = _and(held, value)
    return held


def _and(a: bool | None, b: bool | None) -> bool | None:
    return False if a is False or b is False else None if a is None or b is None else True


def _in_parens(token: tuple[str, str], width: int, height: int, depth: int) -> bool | None:
    kind, text = token
    if kind != "block" or depth >= MAX_NESTING:
        if kind == "word":
            raise _NotAll  # `(a) and screen`, `not and`
        return None  # `foo(x)`: general-enclosed, unknown
    try:
        inner = _tokens(text)
        if inner and (inner[0][0] == "block" or inner[0] == ("word", "not")):
            return _condition(inner, width, height, depth + 1)  # `((a) or (b))`, `(not (a))`
    except _NotAll:
        return None  # not a condition: general-enclosed, unknown
    part = f"({text.strip(' ')})"
    if m := _MEDIA_FEATURE.fullmatch(part):
        return _feature_holds(m.group(1), m.group(2), width, height)
    if _MEDIA_RANGE.fullmatch(part):
        return _range_holds(part[1:-1], width, height)
    return None  # `(ho ver)`: Media Queries 4's general-enclosed, unknown


# discrete features: the values a browser knows, and the one a desktop Chromium has (`(x)` alone: not `none`)
DISCRETE = {
    "prefers-color-scheme": ("light dark", "light"),
    "prefers-reduced-motion": ("no-preference reduce", "no-preference"),
    "prefers-reduced-transparency": ("no-preference reduce", "no-preference"),
    "prefers-contrast": ("no-preference more less custom", "no-preference"),
    "forced-colors": ("none active", "none"),
    "hover": ("none hover", "hover"), "any-hover": ("none hover", "hover"),
    "pointer": ("none coarse fine", "fine"), "any-pointer": ("none coarse fine", "fine"),
    "color-gamut": ("srgb p3 rec2020", "srgb"),
    "display-mode": ("browser minimal-ui standalone fullscreen picture-in-picture window-controls-overlay "
                     "borderless tabbed", "browser"),
    "scripting": ("none initial-only enabled", "enabled"),
    "update": ("none slow fast", "fast"),
    "dynamic-range": ("standard high", "standard"),
    "overflow-block": ("none scroll paged", "scroll"), "overflow-inline": ("none scroll", "scroll"),
    "device-posture": ("continuous folded", "continuous"),
}
_LENGTHS = ("width", "height", "device-width", "device-height")
_INTEGERS = ("color", "color-index", "monochrome", "grid", "horizontal-viewport-segments",
             "vertical-viewport-segments", "device-pixel-ratio", "transform-3d")
_NO_RANGE = ("grid", "transform-3d")  # discrete numbers: no min-/max-
_NO_PREFIX = (*_NO_RANGE, "horizontal-viewport-segments", "vertical-viewport-segments")  # no min-/max- either
_NOT_RANGES = (*_NO_RANGE, "device-pixel-ratio")  # nor `(x >= 1)`
_WHOLE = ("color", "color-index", "monochrome", "horizontal-viewport-segments", "vertical-viewport-segments")
_WHOLE_NUMBER = re.compile(r"[-+]?[0-9]+")  # what those take: `(min-color: 1.5)`, `(color > .5)` hold for nothing


def _feature_holds(name: str, value: str | None, width: int, height: int) -> bool | None:
    if value is not None and not value.strip(" "):
        return None  # `(hover:)`: no value after the colon
    value = (value or "").strip(" ")
    if name == "orientation":
        have = "landscape" if width > height else "portrait"
        return True if not value else value == have if value in ("portrait", "landscape") else None
    if name in DISCRETE:
        known, have = DISCRETE[name]
        if not value:
            return have not in ("none", "no-preference")
        return value == have if value in known.split() else None
    if name.startswith("-webkit-"):  # Chromium knows these two only with the prefix
        name = name.removeprefix("-webkit-")
        if not name.endswith(("device-pixel-ratio", "transform-3d")):
            return None
    elif name.endswith(("device-pixel-ratio", "transform-3d")):
        return None
    prefix, base = name.split("-", 1) if name.startswith(("min-", "max-")) else ("", name)
    have = _media_have(base, width, height)
    if have is None or (prefix and (not value or base in _NO_PREFIX)):
        return None
    if not value:
        return have != 0
    want = _media_number(value, base)
    if want is None or base == "grid" and want not in (0, 1):  # `(grid: 2)`: a value it does not take
        return None
    return _compare(have, ">=" if prefix == "min" else "<=" if prefix == "max" else "=", want, base)


def _range_holds(text: str, width: int, height: int) -> bool | None:
    """Level-4 ranges: (width >= 600px), (600px <= width), (400px < width <= 700px); unknown (None) when a value
    or the form is not one a browser takes (`(2pc < height >= 0)`: both comparisons must point one way)."""
    parts = [p.strip(" ") for p in re.split(r"(<=|>=|<|>|=)", text)]
    flip = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "="}
    if len(parts) == 3:
        if _media_have(parts[0], width, height) is None:  # `600px < width`: read as `width > 600px`
            parts = [parts[2], flip[parts[1]], parts[0]]
        pairs = [parts]
    elif len(parts) == 5 and parts[1][0] == parts[3][0] and "=" not in (parts[1], parts[3]):
        pairs = [[parts[2], flip[parts[1]], parts[0]], parts[2:]]
    else:
        return None
    held = True
    for name, op, value in pairs:
        have, want = _media_have(name, width, height), _media_number(value, name)
        if have is None or want is None or name in _NOT_RANGES:
            return None
        held = held and _compare(have, op, want, name)
    return held


def _media_have(name: str, width: int, height: int) -> float | None:
    """A range feature's value for the desktop screen (8 bits a colour, no palette, 1 dppx), None when unknown."""
    return {"width": width, "height": height, "aspect-ratio": width / height, "resolution": 1.0,
            "device-pixel-ratio": 1.0, "device-width": width, "device-height": height,
            "device-aspect-ratio": width / height, "color": 8, "color-index": 0, "monochrome": 0, "grid": 0,
            "horizontal-viewport-segments": 1, "vertical-viewport-segments": 1, "transform-3d": 1}.get(name)


def _compare(have: float, op: str, want: float, name: str = "") -> bool:
    """`<` and `>` exactly; `<=`, `>=` and `=` of a length give 1/64 px (Chromium's layout unit) either way, as
    Chromium does (`(max-width: 1279.99px)` holds at 1280 px, `(max-width: 1279.98px)` does not)."""
    slack = 1 / 64 if name in _LENGTHS else 1e-9
    return {"<": have < want, ">": have > want, "<=": have <= want + slack, ">=": have >= want - slack,
            "=": abs(have - want) <= max(slack, 1e-6)}[op]


_UNITS = {"px": 1, "em": 16, "rem": 16, "ch": 8, "ex": 8, "in": 96, "cm": 96 / 2.54, "mm": 96 / 25.4,
          "q": 96 / 101.6, "pt": 96 / 72, "pc": 16, "vw": VIEWPORT[0] / 100, "vh": VIEWPORT[1] / 100,
          "vmin": min(VIEWPORT) / 100, "vmax": max(VIEWPORT) / 100}
_RESOLUTIONS = {"dppx": 1, "x": 1, "dpi": 1 / 96, "dpcm": 2.54 / 96}


def _media_number(value: str, base: str) -> float | None:
    """A length (px, em, cm, vw, …; 0 alone), a ratio (`16/9`, or one number), a resolution (dppx, x, dpi, dpcm)
    or a plain number, as the feature takes it; None for a value it does not take (`10` for a width, `foo`)."""
    if "(" in value:
        return _math(value, base)
    m = _RATIO.fullmatch(value) if "aspect-ratio" in base else None
    if m:
        top, bottom = float(m.group(1)), float(m.group(2))  # `3/0` is infinitely wide, as in Chromium
        return top / bottom if bottom else math.inf if top else None
    m = _LENGTH.fullmatch(value)  # a number float() reads: not `.` or `1.2.3` (the query would fail the page)
    if not m:
        return None
    if base in _WHOLE and not _WHOLE_NUMBER.fullmatch(m.group(1)):
        return None
    n, unit = float(m.group(1)), m.group(2) or ""
    if base in _LENGTHS:
        return n * _UNITS[unit] if unit in _UNITS else 0.0 if not unit and n == 0 else None
    if base == "resolution":  # (none below 0)
        return n * _RESOLUTIONS[unit] if unit in _RESOLUTIONS and n >= 0 else None
    return None if unit or n < 0 and "aspect-ratio" in base else n


# a function, a number with its unit (`-1px`), `+`/`-` between spaces (`1px-1px` is one odd unit), * / ( ) ,
_MATH_TOKEN = re.compile(r"( [-+] )| *(?:(calc|min|max|clamp)\(|([-+]?(?:\d+(?:\.\d+)?|\.\d+)(?:e[-+]?\d+)?)"
                         r"([a-z%]*)|([*/(),]))")
MAX_MATH = 32  # parentheses in a calc() read; deeper is a value not taken


def _math(value: str, base: str) -> float | None:
    """A `calc()`, `min()`, `max()` or `clamp()` value of numbers and the feature's units, with + - * / and
    parentheses, as a number in px (or dppx, or plain); None for one a browser would not take (`calc(1px * 2px)`,
    a length for a plain number, another function)."""
    tokens, pos = [], 0
    while pos < len(value.rstrip(" ")):
        m = _MATH_TOKEN.match(value, pos)
        if not m:
            return None
        tokens.append((m.group(1) or "").strip(" ") or m.group(2) or m.group(5) or (m.group(3), m.group(4)))
        pos = m.end()
    units = _UNITS if base in _LENGTHS else _RESOLUTIONS if base == "resolution" else {}
    try:
        if not tokens or tokens[0] not in ("calc", "min", "max", "clamp"):
            raise ValueError  # `1px + calc(2px)`: one function, the whole value
        (n, dimension), end = _math_atom(tokens, 0, units, 0)
    except (ValueError, IndexError, ZeroDivisionError, OverflowError):
        return None
    if end != len(tokens) or dimension != bool(units) or not math.isfinite(n):
        return None
    return None if base in _WHOLE and n != int(n) else n


def _math_sum(tokens: list, i: int, units: dict, depth: int) -> tuple[tuple[float, bool], int]:
    (n, dim), i = _math_product(tokens, i, units, depth)
    while i < len(tokens) and tokens[i] in ("+", "-"):
        (m, dim2), j = _math_product(tokens, i + 1, units, depth)
        if dim2 != dim:
            raise ValueError  # `1px + 2`
        n, i = (n + m if tokens[i] == "+" else n - m), j
    return (n, dim), i


def _math_product(tokens: list, i: int, units: dict, depth: int) -> tuple[tuple[float, bool], int]:
    (n, dim), i = _math_atom(tokens, i, units, depth)
    while i < len(tokens) and tokens[i] in ("*", "/"):
        (m, dim2), j = _math_atom(tokens, i + 1, units, depth)
        if dim2 and (dim or tokens[i] == "/"):
            raise ValueError  # `1px * 2px`, `1 / 2px`
        n, dim, i = (n * m if tokens[i] == "*" else n / m), dim or dim2, j
    return (n, dim), i


def _math_atom(tokens: list, i: int, units: dict, depth: int) -> tuple[tuple[float, bool], int]:
    if depth > MAX_MATH:
        raise ValueError
    token = tokens[i]
    if isinstance(token, tuple):
        number, unit = token
        if unit and unit not in units:
            raise ValueError
        return (float(number) * units.get(unit, 1), bool(unit)), i + 1
    if token not in ("(", "calc", "min", "max", "clamp"):
        raise ValueError
    args = []
    while True:
        value, i = _math_sum(tokens, i + 1, units, depth + 1)
        args.append(value)
        if tokens[i] == ")":
            break
        if tokens[i] != "," or token in ("(", "calc"):
            raise ValueError
    if len({dim for _, dim in args}) > 1 or token == "clamp" and len(args) != 3:
        raise ValueError
    numbers = [n for n, _ in args]
    n = (min(numbers) if token == "min" else max(numbers) if token == "max"
         else max(numbers[0], min(numbers[1], numbers[2])) if token == "clamp" else numbers[0])
    return (n, args[0][1]), i + 1


def parse_srcset(text: str) -> list[tuple[str, float | None, float | None]]:
    """(url, width, density) for each candidate, following the HTML spec's parsing: a URL is a run of
    non-space characters (commas inside it are kept), descriptors run to the next comma outside parentheses.
    A candidate whose descriptors the spec finds invalid (`400W`, `1e3w`, `2x 300w`, `0w`, an unknown one) is
    dropped, as a browser drops it."""
    out = []
    pos, n = 0, len(text)
    while True:
        pos = _SRCSET_GAP.match(text, pos).end()
        if pos >= n:
            return out
        url = _SRCSET_URL.match(text, pos).group()
        pos += len(url)
        descriptors = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            descriptors = _SRCSET_DESC.match(text, pos).group()
            pos += len(descriptors) + 1
        read = _descriptors(descriptors)
        if url and read is not None:
            out.append((url, *read))


def _descriptors(text: str) -> tuple[float | None, float | None] | None:
    """(width, density) of one candidate's descriptors, or None when the spec finds them invalid: one `Nw` (a
    positive integer), or one `Nx` (a non-negative floating-point number), and an `Nh` only with a width."""
    width = density = height = None
    for token in _DESCRIPTOR.findall(text):
        kind, number = token[-1], token[:-1]
        if kind == "w" and width is None and density is None and _INTEGER.fullmatch(number):
            width = float(number)  # not int(): thousands of digits are no error here, only too large
            if not 0 < width < math.inf:
                return None
        elif kind == "x" and width is None and density is None and height is None and _FLOAT.fullmatch(number):
            density = float(number)
            if not 0 <= density < math.inf:
                return None
        elif kind == "h" and height is None and density is None and _INTEGER.fullmatch(number):
            height = float(number)
            if not 0 < height < math.inf:
                return None
        else:
            return None
    if height is not None and width is None:
        return None
    return width, density


def largest(srcset: str | None, src: str | None = None) -> str | None:
    """The srcset candidate with the largest width descriptor, else the largest density (1x default). An <img>'s
    `src` is one more candidate, of 1x, when no candidate has a width or says 1x (the HTML spec's source set):
    `srcset="thumb.jpg 0.5x" src="full.jpg"` shows full.jpg."""
    candidates = parse_srcset(srcset or "")
    if src and src.strip() and not any(w is not None or d == 1 for _, w, d in candidates):
        candidates.append((src.strip(), None, 1.0))
    if not candidates:
        return None
    if any(w is not None for _, w, _ in candidates):
        return max((c for c in candidates if c[1] is not None), key=lambda c: c[1])[0]
    return max(candidates, key=lambda c: c[2] if c[2] is not None else 1.0)[0]
