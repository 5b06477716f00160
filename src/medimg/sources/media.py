"""Responsive images as a desktop browser picks them: `srcset` candidates and `media` query lists, read for one
viewport (browser.py renders at the same size)."""

from __future__ import annotations

import math
import re

VIEWPORT = (1280, 1800)  # CSS px: the desktop screen a <picture>'s media queries are read for (browser.py's)
_MEDIA_FEATURE = re.compile(r"\(\s*([a-z-]+)\s*(?::\s*([^)]*))?\)")
_MEDIA_RANGE = re.compile(r"\([^()]*[<>=][^()]*\)")
_SRCSET_GAP = re.compile(r"[\s,]*")
_SRCSET_URL = re.compile(r"\S+")
_SRCSET_DESC = re.compile(r"(?:[^,(]+|\([^)]*\)?)*")
_DESCRIPTOR = re.compile(r"(?:[^\s(]++|\([^)]*+\)?)++")  # the spec's tokens: white space ends one, not in parentheses
_INTEGER = re.compile(r"[0-9]+")  # a valid non-negative integer
_FLOAT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")  # a valid floating-point number
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_RATIO = re.compile(rf"{_NUMBER}\s*/\s*{_NUMBER}")
_LENGTH = re.compile(rf"{_NUMBER}\s*(px|em|rem|dppx|x|dpi|dpcm)?")
MAX_MEDIA = 2000  # characters of a media query list read; a longer one is no real query, and holds for nothing


def media_matches(media: str, width: int = VIEWPORT[0], height: int = VIEWPORT[1]) -> bool:
    """Whether a media query list holds for a desktop screen of width × height CSS px (light colour scheme,
    no reduced motion, a mouse): width, height, aspect ratio, orientation, resolution up to 1 dppx, media
    types, `not`, `only`, `and`, commas. Anything else is taken to hold, as the first usable source is.
    A list longer than MAX_MEDIA characters (white space runs counted as one) holds for nothing, as a browser
    reads a query it cannot parse ("not all")."""
    if not media.strip():
        return True
    media = " ".join(media.split())  # runs of white space as one: the splits below stay linear
    if len(media) > MAX_MEDIA:
        return False
    queries = re.split(r",|\)\s+or\s+\(", media.lower())  # level 4 writes `(a) or (b)` for `(a), (b)`
    return any(_query_holds(_paired(q.strip()), width, height) for q in queries)


def _paired(query: str) -> str:
    """A query cut out of `(a) or (b)` with its parentheses made whole again."""
    if query.count("(") > query.count(")"):
        query += ")"
    if query.count(")") > query.count("("):
        query = "(" + query
    return query


def _query_holds(query: str, width: int, height: int) -> bool:
    negate = query.startswith("not ")
    query = query[4:] if negate else query.removeprefix("only ")
    held = True
    for part in re.split(r"\s+and\s+", query):
        part = part.strip()
        if not part:
            continue
        if not part.startswith("("):
            held &= part in ("all", "screen")
            continue
        m = _MEDIA_FEATURE.fullmatch(part)
        if m:
            held &= _feature_holds(m.group(1), m.group(2), width, height)
        elif _MEDIA_RANGE.fullmatch(part):
            held &= _range_holds(part[1:-1], width, height)
    return held != negate


def _feature_holds(name: str, value: str | None, width: int, height: int) -> bool:
    value = (value or "").strip()
    if name in ("prefers-color-scheme",):
        return value in ("", "light")
    if name in ("prefers-reduced-motion", "prefers-reduced-data", "prefers-contrast", "forced-colors"):
        return value in ("no-preference", "none")
    if name in ("monochrome", "grid", "min-monochrome"):  # a colour screen, not a grid (text) one
        return value.strip() in ("0",)
    if name in ("hover", "any-hover"):
        return value in ("", "hover")
    if name in ("pointer", "any-pointer"):
        return value in ("", "fine")
    if name == "orientation":
        return value == ("landscape" if width > height else "portrait")
    name = name.removeprefix("-webkit-")
    prefix, base = name.split("-", 1) if name.startswith(("min-", "max-")) else ("", name)
    have = _media_have(base, width, height)
    if have is None or not value:
        return True
    want = _media_number(value, base)
    if want is None:
        return True
    return _compare(have, ">=" if prefix == "min" else "<=" if prefix == "max" else "=", want)


def _range_holds(text: str, width: int, height: int) -> bool:
    """Level-4 ranges: (width >= 600px), (400px < width <= 700px)."""
    parts = [p.strip() for p in re.split(r"(<=|>=|<|>|=)", text)]
    flip = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "="}
    for i in range(1, len(parts) - 1, 2):
        left, op, right = parts[i - 1], parts[i], parts[i + 1]
        if _media_have(left, width, height) is None:  # `600px < width`: read as `width > 600px`
            left, op, right = right, flip[op], left
        have, want = _media_have(left, width, height), _media_number(right, left)
        if have is not None and want is not None and not _compare(have, op, want):
            return False
    return True


def _media_have(name: str, width: int, height: int) -> float | None:
    return {"width": width, "height": height, "aspect-ratio": width / height, "resolution": 1.0,
            "device-pixel-ratio": 1.0, "device-width": width, "device-height": height,
            "device-aspect-ratio": width / height}.get(name)


def _compare(have: float, op: str, want: float) -> bool:
    return {"<": have < want, ">": have > want, "<=": have <= want + 1e-9, ">=": have >= want - 1e-9,
            "=": abs(have - want) < 1e-6}[op]


def _media_number(value: str, base: str) -> float | None:
    """px, em/rem (16 px), a ratio, or a resolution in dppx/x/dpi/dpcm."""
    m = _RATIO.fullmatch(value) if "aspect-ratio" in base else None
    if m:
        return float(m.group(1)) / float(m.group(2)) if float(m.group(2)) else None
    m = _LENGTH.fullmatch(value)  # a number float() reads: not `.` or `1.2.3` (the query would fail the page)
    if not m:
        return None
    n, unit = float(m.group(1)), m.group(2) or ""
    return n * {"em": 16, "rem": 16, "dpi": 1 / 96, "dpcm": 2.54 / 96}.get(unit, 1)


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


def largest(srcset: str | None) -> str | None:
    """The srcset candidate with the largest width descriptor, else the largest density (1x default)."""
    candidates = parse_srcset(srcset or "")
    if not candidates:
        return None
    if any(w is not None for _, w, _ in candidates):
        return max((c for c in candidates if c[1] is not None), key=lambda c: c[1])[0]
    return max(candidates, key=lambda c: c[2] if c[2] is not None else 1.0)[0]
