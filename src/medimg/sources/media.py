"""Responsive images as a desktop browser picks them: `srcset` candidates and `media` query lists, read for one
viewport (browser.py renders at the same size)."""

from __future__ import annotations

import math
import re
from functools import lru_cache

VIEWPORT = (1280, 1800)  # CSS px: the desktop screen a <picture>'s media queries are read for (browser.py's)
_MEDIA_FEATURE = re.compile(r"\(\s*([a-z0-9-]+)\s*(?::\s*([^)]*))?\)")
_MEDIA_RANGE = re.compile(r"\([^()]*[<>=][^()]*\)")
_SRCSET_GAP = re.compile(r"[\s,]*")
_SRCSET_URL = re.compile(r"\S+")
_SRCSET_DESC = re.compile(r"(?:[^,(]+|\([^)]*\)?)*")
_DESCRIPTOR = re.compile(r"(?:[^\s(]++|\([^)]*+\)?)++")  # the spec's tokens: white space ends one, not in parentheses
_INTEGER = re.compile(r"[0-9]+")  # a valid non-negative integer
_FLOAT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")  # a valid floating-point number
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_RATIO = re.compile(rf"{_NUMBER}\s*/\s*{_NUMBER}")
_LENGTH = re.compile(r"([-+]?(?:\d+(?:\.\d+)?|\.\d+)(?:e[-+]?\d+)?)\s*([a-z]+)?")  # a number, its unit
_CSS_SPACE = re.compile(r"[ \t\n\r\f]+")  # CSS white space (not U+00A0, which str.split() takes)
_IDENT = re.compile(r"-?(?:[a-z_]|[^\x00-\x7f])(?:[a-z0-9_-]|[^\x00-\x7f])*")  # a media type's name
_RESERVED = ("not", "and", "only", "or", "layer")  # never a media type
MAX_MEDIA = 2000  # characters of a media query list read; a longer one is no real query, and holds for nothing


def media_matches(media: str, width: int = VIEWPORT[0], height: int = VIEWPORT[1]) -> bool:
    """Whether a media query list holds for a desktop screen of width × height CSS px as headless Chromium is
    (light colour scheme, no reduced motion, a mouse, 8-bit sRGB colour, 1 dppx): the features it knows
    (`DISCRETE`, `_media_have`), media types, `not`, `only`, `and`, commas. A feature it does not know, or a
    value it cannot take (`(hover: banana)`, `(min-width: 10)`), is unknown, which Media Queries 4 reads as
    false, `not` or not: the query does not hold (a browser passes over such a <source>), as does other text in
    parentheses (`(ho ver)`). A query that breaks the grammar (an empty one, `(hover:)`, `not and`, `only (x)`,
    `(x) and screen`) is "not all". A part with parentheses inside (`calc()`, nesting) is taken to hold. A list
    longer than MAX_MEDIA characters (CSS white space runs counted as one; U+00A0 is none) holds for nothing, as a
    browser reads a query it cannot parse ("not all")."""
    if len(media) > 4 * MAX_MEDIA:  # no query, however much white space: not kept in the cache
        return _matches(media, width, height)
    return _cached(media, width, height)


def _matches(media: str, width: int, height: int) -> bool:
    media = _CSS_SPACE.sub(" ", media).strip(" ")  # runs of white space as one: the splits below stay linear
    if not media:
        return True
    if len(media) > MAX_MEDIA:
        return False
    queries = re.split(r",|\)\s+or\s+\(", media.lower())  # level 4 writes `(a) or (b)` for `(a), (b)`
    return any(_query_holds(_paired(q.strip(" ")), width, height) for q in queries)


_cached = lru_cache(maxsize=4096)(_matches)  # a page or sheet asks the same few queries again and again


def _paired(query: str) -> str:
    """A query cut out of `(a) or (b)` with its parentheses made whole again."""
    if query.count("(") > query.count(")"):
        query += ")"
    if query.count(")") > query.count("("):
        query = "(" + query
    return query


def _query_holds(query: str, width: int, height: int) -> bool:
    """True, false or unknown (None) for each part, joined by `and` as Media Queries 4's three values are: false
    and unknown is false (`not print and (foo)` holds), true and unknown unknown; unknown never holds."""
    negate = query.startswith("not ")
    only = query.startswith("only ")
    query = query[4:] if negate else query[5:] if only else query
    held: bool | None = True
    for n, part in enumerate(re.split(r"\s+and\s+", query)):
        if not part.startswith("("):  # a media type: first, and a name (`not and`, `(x) and screen`: not all)
            if n or not _IDENT.fullmatch(part) or part in _RESERVED:
                return False
            value: bool | None = part in ("all", "screen")
        elif only and n == 0 or not part.endswith(")"):  # `only (x)`, `(x) and`: not all
            return False
        elif m := _MEDIA_FEATURE.fullmatch(part):
            value = _feature_holds(m.group(1), m.group(2), width, height)
        elif _MEDIA_RANGE.fullmatch(part):
            value = _range_holds(part[1:-1], width, height)
        elif "(" not in part[1:]:
            value = None  # `(ho ver)`: Media Queries 4's general-enclosed, unknown
        else:
            value = True  # not read here (`calc()`, nesting): taken to hold
        held = False if held is False or value is False else None if held is None or value is None else True
    return held is not None and held != negate


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
_NOT_RANGES = (*_NO_RANGE, "device-pixel-ratio")  # nor `(x >= 1)`
_WHOLE = ("color", "color-index", "monochrome", "horizontal-viewport-segments", "vertical-viewport-segments")
_WHOLE_NUMBER = re.compile(r"[-+]?[0-9]+")  # what those take: `(min-color: 1.5)`, `(color > .5)` hold for nothing


def _feature_holds(name: str, value: str | None, width: int, height: int) -> bool | None:
    if value is not None and not value.strip():
        return None  # `(hover:)`: no value after the colon
    value = (value or "").strip()
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
    if have is None or (prefix and (not value or base in _NO_RANGE)):
        return None
    if not value:
        return have != 0
    want = _media_number(value, base)
    if want is None:
        return None
    return _compare(have, ">=" if prefix == "min" else "<=" if prefix == "max" else "=", want)


def _range_holds(text: str, width: int, height: int) -> bool | None:
    """Level-4 ranges: (width >= 600px), (400px < width <= 700px)."""
    parts = [p.strip() for p in re.split(r"(<=|>=|<|>|=)", text)]
    flip = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "="}
    held: bool | None = True
    for i in range(1, len(parts) - 1, 2):
        left, op, right = parts[i - 1], parts[i], parts[i + 1]
        if _media_have(left, width, height) is None:  # `600px < width`: read as `width > 600px`
            left, op, right = right, flip[op], left
        have, want = _media_have(left, width, height), _media_number(right, left)
        if have is None or want is None or left in _NOT_RANGES:
            held = None
        elif not _compare(have, op, want):
            return False
    return held


def _media_have(name: str, width: int, height: int) -> float | None:
    """A range feature's value for the desktop screen (8 bits a colour, no palette, 1 dppx), None when unknown."""
    return {"width": width, "height": height, "aspect-ratio": width / height, "resolution": 1.0,
            "device-pixel-ratio": 1.0, "device-width": width, "device-height": height,
            "device-aspect-ratio": width / height, "color": 8, "color-index": 0, "monochrome": 0, "grid": 0,
            "horizontal-viewport-segments": 1, "vertical-viewport-segments": 1, "transform-3d": 1}.get(name)


def _compare(have: float, op: str, want: float) -> bool:
    return {"<": have < want, ">": have > want, "<=": have <= want + 1e-9, ">=": have >= want - 1e-9,
            "=": abs(have - want) < 1e-6}[op]


_UNITS = {"px": 1, "em": 16, "rem": 16, "ch": 8, "ex": 8, "in": 96, "cm": 96 / 2.54, "mm": 96 / 25.4,
          "q": 96 / 101.6, "pt": 96 / 72, "pc": 16, "vw": VIEWPORT[0] / 100, "vh": VIEWPORT[1] / 100,
          "vmin": min(VIEWPORT) / 100, "vmax": max(VIEWPORT) / 100}
_RESOLUTIONS = {"dppx": 1, "x": 1, "dpi": 1 / 96, "dpcm": 2.54 / 96}


def _media_number(value: str, base: str) -> float | None:
    """A length (px, em, cm, vw, …; 0 alone), a ratio (`16/9`, or one number), a resolution (dppx, x, dpi, dpcm)
    or a plain number, as the feature takes it; None for a value it does not take (`10` for a width, `foo`)."""
    m = _RATIO.fullmatch(value) if "aspect-ratio" in base else None
    if m:
        return float(m.group(1)) / float(m.group(2)) if float(m.group(2)) else None
    m = _LENGTH.fullmatch(value)  # a number float() reads: not `.` or `1.2.3` (the query would fail the page)
    if not m:
        return None
    if base in _WHOLE and not _WHOLE_NUMBER.fullmatch(m.group(1)):
        return None
    n, unit = float(m.group(1)), m.group(2) or ""
    if base in _LENGTHS:
        return n * _UNITS[unit] if unit in _UNITS else 0.0 if not unit and n == 0 else None
    if base == "resolution":
        return n * _RESOLUTIONS[unit] if unit in _RESOLUTIONS else None
    return None if unit else n


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
