"""Stylesheets, read cheaply: the rules that name an image, and whether a rule's selector matches this page.

A small scanner (no CSS library) walks a sheet's text once: comments are dropped, strings and url()s are
skipped whole, and each top-level statement or block comes out as (prelude, body). `@media` blocks whose query
holds for a desktop screen, and `@supports`, `@layer` and `@container` blocks, are read for their rules;
`@font-face`, `@keyframes`, `@page` and the other at-rules are passed over. Only the images of `background`,
`background-image`, `content`, `list-style(-image)` and `border-image(-source)` count, and a rule's images are
the page's only when its selector matches one of the page's elements (lexbor's selector engine), and of a block
that sets one image twice, only the declaration a browser's cascade keeps (`shown`).
Nothing here touches the network: web_fetch.py fetches the sheets.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from itertools import islice
from typing import Callable, Iterator

MAX_SHEETS = 8  # external stylesheets read per page, @imports included
SHEET_BYTES = 2 * 1024 * 1024  # per stylesheet
MAX_RULES = 5000  # rules naming an image whose selectors are matched against one page
MATCH_SECONDS = 2.0  # and the time that matching may take (lexbor walks the whole page for a selector it misses)
MATCH_COST = 20_000_000  # lexbor's steps (about 65 ns each) one selector may need at worst (_costly)
IMAGE_SET_OPTIONS = 32  # options of one image-set() looked at (a browser's have a few)
NESTING = 4  # @media (or @supports…) blocks read inside each other
IMAGE_PROPERTIES = {"background", "background-image", "content", "list-style", "list-style-image", "border-image",
                    "border-image-source"}
GROUPS = {"media", "supports", "layer", "container"}  # at-rules whose block holds ordinary rules

# An unquoted url() cannot hold "(" (CSS syntax); excluding it also keeps the scan linear on "url(url(url(…".
# Possessive spaces: "url(" and a long run of spaces, unclosed, is not tried at every split of the run (quadratic).
# A backslash escapes the next character (or a hex code point) in strings and unquoted url()s: `url(a\(1\).jpg)`,
# `url("\66 ig.jpg")`; `unescaped` reads the escapes.
_Q2, _Q1 = r'"((?:[^"\\\n]|\\[\s\S])*+)"', r"'((?:[^'\\\n]|\\[\s\S])*+)'"  # a string's text, escapes kept
_BARE = r"""((?:[^()'"\s\\]|\\[0-9a-fA-F]{1,6}[ \t\n\r\f]?|\\[^\n])*+)"""  # an unquoted url()'s text
_URL = re.compile(rf"""url\(\s*+(?:{_Q2}|{_Q1}|{_BARE})\s*+\)""", re.I)
# image-set(…) (also -webkit-): its options hold strings, url()s and type()s, one level of parentheses deep
_S2, _S1 = r'"(?:[^"\\]|\\[\s\S])*+"', r"'(?:[^'\\]|\\[\s\S])*+'"  # strings, whole
_IMAGE_SET = re.compile(rf"""image-set\(((?:{_S2}|{_S1}|\((?:{_S2}|{_S1}|[^()"'])*+\)|[^()"'])*+)\)""", re.I)
_OPTION = re.compile(rf"""\s*+(?:url\(\s*+(?:{_Q2}|{_Q1}|{_BARE})\s*+\)|{_Q2}|{_Q1})(.*)""", re.I | re.S)
_RESOLUTION = re.compile(r"(?<![\w.-])(\d*\.?\d+)(x|dppx|dpi|dpcm)(?![\w-])", re.I)
_TYPE = re.compile(r"""type\(\s*+["']([^"']*)["']""", re.I)
_TOP_COMMA = re.compile(rf"""{_S2}|{_S1}|\([^()]*+\)|(,)""")
_NOT_IMAGE_FILE = re.compile(r"\.(?:woff2?|ttf|otf|eot|css|cur|htc|js)$", re.I)  # fonts, stylesheets, cursors
# A string ends at its line's end and an unclosed url( at the end of the text, as CSS's tokenizer has them (so
# every string or url( matches where it starts: '"' and many '\\"', or "url(url(url(…", cost no quadratic time).
_COMMENT = re.compile(r"""("(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?|url\([^)"']*\)?)|/\*[\s\S]*?(?:\*/|\Z)""", re.I)
_STOP_TOP = re.compile(r"""[{};"']|url\(""", re.I)  # at the top level a ";" ends a statement
_STOP_INSIDE = re.compile(r"""[{}"']|url\(""", re.I)  # inside a block only the braces count
_SKIP = {'"': re.compile(r'"(?:[^"\\\n]|\\.)*"?'), "'": re.compile(r"'(?:[^'\\\n]|\\.)*'?"),
         "u": re.compile(r"""url\(\s*(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|[^)]*)\s*\)?""", re.I)}
# A block's body with no block inside it, and its "}": strings and url()s skipped whole as `_SKIP` skips them (atomic
# groups: each the match _SKIP's would make). Most blocks are such; `parts` takes one in a single match. Cases spelled
# out, not re.I (which is slower; only u, r and l themselves and U, R and L match those letters under re.I).
_FLAT_BODY = re.compile(r"""(?:[^{}"'uU]++|[uU](?![rR][lL]\()|(?>%s)|(?>%s)|(?>[uU][rR][lL]%s))*+\}"""
                        % (_SKIP['"'].pattern, _SKIP["'"].pattern, _SKIP["u"].pattern[3:]))
_VENDOR = re.compile(r"^-(?:webkit|moz|ms|o)-")
_AT_NAME = re.compile(r"@(-?[\w-]+)\s*")
_IMPORT = re.compile(rf"""@import\s*+(?:url\(\s*+(?:{_Q2}|{_Q1}|{_BARE})\s*+\)|{_Q2}|{_Q1})\s*(.*)""", re.I | re.S)
_IMPORT_EXTRAS = re.compile(r"^(?:layer(?:\([^)]*\))?|supports\((?:[^()]|\([^()]*\))*\))\s*", re.I)
# pseudo-elements (::before, and the four legacy :before forms): their element is matched instead
_PSEUDO_ELEMENT = re.compile(r"::[\w-]+(?:\([^()]*\))?|:(?:before|after|first-line|first-letter)(?![\w-])", re.I)
_NAMES = re.compile(r"([.#])((?:[\w-]|\\[0-9a-fA-F]{1,6}\s?|\\[^\n0-9a-fA-F])+)")
_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6}\s?|[^\n0-9a-fA-F])")
_INNER_TEXT = re.compile(r"""\[[^\]]*\]|"[^"]*"|'[^']*'""")
# a descendant combinator: white space between two compounds (not beside >, +, ~, a comma or a parenthesis)
_DESCENDANT = re.compile(r"(?<=[^\s>+~,(])\s+(?=[^\s>+~,)])")
_INNER = re.compile(r"\([^()]*\)|\[[^\]]*\]")  # :not(.x), [class~=y]: what need not be on the page


@dataclass
class Sheet:
    """What a stylesheet holds for us: its rules that name an image (selector, URLs as written) and the sheets it
    imports (URLs as written, for a screen)."""

    rules: list[tuple[str, list[str]]] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)


def strip_comments(css: str) -> str:
    """The CSS without its comments (a "/*" inside a string or url() is no comment)."""
    return _COMMENT.sub(lambda m: m.group(1) or " ", css) if "/*" in css else css


def parts(css: str) -> Iterator[tuple[str, str | None]]:
    """The top-level statements and blocks of comment-free CSS, in order: (prelude, body) for a block,
    (statement, None) for one ended by ";". An unclosed block at the end is closed, as browsers do."""
    start = open_at = pos = depth = 0
    while True:
        m = (_STOP_TOP if depth == 0 else _STOP_INSIDE).search(css, pos)
        if m is None:
            break
        mark = m.group()
        if mark in ('"', "'") or len(mark) > 1:  # a string or url(…): skipped whole, whatever it holds
            pos = _SKIP[mark[0].lower()].match(css, m.start()).end()
            continue
        pos = m.end()
        if mark == "{" and depth == 0 and (flat := _FLAT_BODY.match(css, pos)):  # the whole block at once
            yield css[start:m.start()].strip(), css[pos:flat.end() - 1]
            start = pos = flat.end()
        elif mark == "{":
            open_at = m.start() if depth == 0 else open_at
            depth += 1
        elif mark == ";":
            yield css[start:m.start()].strip(), None
            start = pos
        elif depth:  # "}"
            depth -= 1
            if depth == 0:
                yield css[start:open_at].strip(), css[open_at + 1:m.start()]
                start = pos
        else:  # a stray "}" ends nothing
            start = pos
    if depth:
        yield css[start:open_at].strip(), css[open_at + 1:]
    elif css[start:].strip():
        yield css[start:].strip(), None


def read_sheet(css: str, media_ok: Callable[[str], bool]) -> Sheet:
    """The rules that name an image and the @imports of one stylesheet's text (`media_ok` says whether a media
    query holds for the screen the page is read for)."""
    css = strip_comments(css)
    sheet = Sheet(imports=imports(css, media_ok))
    for prelude, body in parts(css):
        if body is not None:
            _add_rules(sheet.rules, prelude, body, media_ok, 0)
    return sheet


def imports(css: str, media_ok: Callable[[str], bool]) -> list[str]:
    """The URLs of comment-free CSS's @imports whose media query holds; those after its first rule are ignored,
    as browsers do."""
    urls = []
    for prelude, body in parts(css):
        if body is not None or not prelude.lower().startswith(("@import", "@charset", "@layer", "@namespace")):
            break
        m = _IMPORT.match(prelude)
        if m is None:
            continue
        url = unescaped(next((g for g in m.groups()[:5] if g is not None), "")).strip()
        media = _IMPORT_EXTRAS.sub("", _IMPORT_EXTRAS.sub("", m.group(6).strip()))
        if url and media_ok(media):
            urls.append(url)
    return urls


def _add_rules(rules: list, prelude: str, body: str, media_ok: Callable[[str], bool], depth: int) -> None:
    if prelude.startswith("@"):
        m = _AT_NAME.match(prelude)
        name = m.group(1).lower() if m else ""
        if name in GROUPS and depth < NESTING and (name != "media" or media_ok(prelude[m.end():])):
            for inner, inner_body in parts(body):
                if inner_body is not None:
                    _add_rules(rules, inner, inner_body, media_ok, depth + 1)
        return  # @font-face, @keyframes, @page, @property …: no picture of an element
    lowered = body.lower()
    if "url(" not in lowered and "image-set(" not in lowered:
        return
    urls = image_urls(body)
    if urls and prelude:
        rules.append((prelude, urls))


def image_urls(body: str) -> list[str]:
    """The url()s and image-set()s of a rule's image properties, as written (nested rules are passed over; an image
    declaration another one overrides, `shown`, too)."""
    urls: list[str] = []
    images = [d for d, nested in parts(body) if nested is None and _sets_image(d)]
    for declaration in shown(images) if len(images) > 1 else images:  # one image: nothing overrides it
        css_urls(declaration.partition(":")[2], lambda url, *_: urls.append(url))
    return urls


def _sets_image(declaration: str) -> bool:
    name, colon, _ = declaration.partition(":")
    return bool(colon) and _property(name) in IMAGE_PROPERTIES


# the image a property sets: a shorthand sets its longhand's, so of the two the last one in a block is shown
_SETS = {"background": "background-image", "list-style": "list-style-image", "border-image": "border-image-source"}
_IMPORTANT = re.compile(r"!\s*important\s*$", re.I)
# a longhand's values a browser takes (an image, `none`, a CSS-wide keyword, a var()): another value is dropped, and
# the declaration before it stays
_IMAGE_VALUE = re.compile(r"\s*(?:(?:-[a-z]+-)?(?:image-set|image|cross-fade|element|paint|url|var|"
                          r"(?:repeating-)?(?:linear|radial|conic)-gradient|gradient)\(|"
                          r"(?:none|inherit|initial|unset|revert|revert-layer)\s*(?:[;,]|$))", re.I)
CASCADE_DEPTH = 8  # blocks inside blocks whose declarations are weighed (`cascaded`); deeper ones are read as written


def _property(name: str) -> str:
    name = name.strip().lower()
    return _VENDOR.sub("", name) if name[:1] == "-" else name


def shown(declarations: list[str]) -> list[str]:
    """The declarations of one block, less the image ones (`IMAGE_PROPERTIES`) whose image another one in the block
    overrides, as a browser's cascade keeps one value of a property: the last valid one, an `!important` one over
    those without. `background-image: url(old.jpg); background-image: image-set(…)` shows only the image-set();
    `background: url(a.png); background-image: url(b.png)` only b.png. A value a browser would drop (`foo(x)`)
    overrides nothing."""
    kept = _kept(declarations)
    return [d for n, d in enumerate(declarations) if n in kept]


def _kept(declarations: list[str]) -> set[int]:
    """The indexes of the declarations `shown` keeps."""
    winners: dict[str, tuple[bool, int]] = {}  # image set by a property -> (important, index of its declaration)
    sets: dict[int, str] = {}
    for n, declaration in enumerate(declarations):
        name, colon, value = declaration.partition(":")
        name = _property(name)
        if not colon or name not in IMAGE_PROPERTIES:
            continue
        important = bool(_IMPORTANT.search(value))
        value = _IMPORTANT.sub("", value).strip()
        if not value or (name in _SETS.values() and not _IMAGE_VALUE.match(value)):
            continue  # a browser drops it: the one before stays
        sets[n] = _SETS.get(name, name)
        if important or not winners.get(sets[n], (False, 0))[0]:
            winners[sets[n]] = (important, n)
    return {n for n in range(len(declarations)) if n not in sets or winners[sets[n]][1] == n}


def cascaded(css: str, media_ok: Callable[[str], bool] | None = None, depth: int = 0) -> str:
    """Comment-free CSS (a sheet, or a block's declarations) with the image declarations each block overrides
    (`shown`) left out, and with `media_ok`, the `@media` blocks whose query does not hold (a phone's background);
    the rest as it was, blocks inside blocks too (CASCADE_DEPTH deep)."""
    if depth >= CASCADE_DEPTH or not _to_weigh(css, media_ok):
        return css
    pieces = list(parts(css))
    kept = _kept([prelude for prelude, body in pieces if body is None])
    out: list[str] = []
    n = 0
    for prelude, body in pieces:
        if body is None:
            if n in kept:
                out.append(prelude)
            n += 1
            continue
        m = _AT_NAME.match(prelude) if media_ok and prelude[:1] == "@" else None
        if m is None or m.group(1).lower() != "media" or media_ok(prelude[m.end():]):
            out.append(f"{prelude}{{{cascaded(body, media_ok, depth + 1) if _to_weigh(body, media_ok) else body}}}")
    return ";".join(out)


def _to_weigh(css: str, media_ok: Callable[[str], bool] | None) -> bool:
    """Whether `cascaded` may leave out something of this CSS (asked before the call: a sheet has many blocks)."""
    low = css.lower()  # it may set one image twice in a block (an image, and two image properties' names)
    sets_twice = ("url(" in low or "image-set(" in low) and (
        low.count("background") + low.count("list-style") + low.count("border-image") + low.count("content") >= 2)
    return sets_twice or bool(media_ok and "@media" in low)


def css_urls(css: str, add) -> None:
    """The images a piece of CSS names, in order: each url(…), and one option of each image-set()
    (`image_set_choice`); not fonts, stylesheets or cursors."""
    sets = [(m.start(), m.end(), image_set_choice(m.group(1))) for m in _IMAGE_SET.finditer(css)]
    found = [(start, url) for start, _, url in sets if url]
    spans = iter(sets)
    span = next(spans, None)
    for m in _URL.finditer(css):
        while span is not None and span[1] <= m.start():
            span = next(spans, None)
        if span is None or m.start() < span[0]:  # a url() inside an image-set() is one of its options
            found.append((m.start(), unescaped(m.group(1) or m.group(2) or m.group(3))))
    for _, url in sorted(found, key=lambda f: f[0]):
        if not _NOT_IMAGE_FILE.search((url or "").strip().partition("#")[0].partition("?")[0]):  # its path
            add(url, "style")


_URL_ESCAPE = re.compile(r"\\(?:([0-9a-fA-F]{1,6})[ \t\n\r\f]?|(\r\n|[\n\r\f])|([\s\S]))")


def unescaped(text: str | None) -> str | None:
    """A CSS string's or url()'s text as CSS reads it: `\\(` is `(`, `\\66 ` is `f`, an escaped line end is
    nothing (a code point that cannot be is U+FFFD)."""
    if not text or "\\" not in text:
        return text

    def one(m: re.Match) -> str:
        if m.group(1):
            code = int(m.group(1), 16)
            return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"
        return "" if m.group(2) else m.group(3)

    return _URL_ESCAPE.sub(one, text)


def image_set_choice(options: str) -> str | None:
    """The option of an image-set()'s text a desktop browser at 1 dppx shows at its best: the highest resolution
    (1x when none is given; the first of equals), an SVG type only when every option is one (medimg does not
    rasterise SVG); None when it names no image. Only its first IMAGE_SET_OPTIONS options are looked at."""
    commas = [m.start() for m in islice((m for m in _TOP_COMMA.finditer(options) if m.group(1)), IMAGE_SET_OPTIONS)]
    ends = [*commas, len(options)][:IMAGE_SET_OPTIONS]
    best = None  # (not svg, resolution, -position), url
    for n, (start, end) in enumerate(zip([0, *(c + 1 for c in commas)], ends)):
        m = _OPTION.match(options, start, end)
        if m is None:
            continue
        url = unescaped(next((g for g in m.groups()[:5] if g is not None), ""))
        rest = m.group(6)
        kind = _TYPE.search(rest)
        res = _RESOLUTION.search(_TYPE.sub("", rest))
        scale = {"x": 1, "dppx": 1, "dpi": 1 / 96, "dpcm": 2.54 / 96}[res.group(2).lower()] if res else 1
        key = (not (kind and "svg" in kind.group(1).lower()), float(res.group(1)) * scale if res else 1.0, -n)
        if url.strip() and (best is None or key > best[0]):
            best = (key, url)
    return best[1] if best else None


# --- selectors ------------------------------------------------------------------------------------------------


def selectors(prelude: str) -> list[str]:
    """A rule's selector list, split at its top-level commas, each with its pseudo-elements taken off."""
    if "(" not in prelude and "[" not in prelude:
        pieces = prelude.split(",")
    else:
        pieces, level, start, quote = [], 0, 0, ""
        for i, ch in enumerate(prelude):
            if quote:  # inside an attribute's quoted value: brackets and commas are text
                quote = "" if ch == quote and prelude[i - 1] != "\\" else quote
                continue
            if ch in "\"'":
                quote = ch
                continue
            level += ch in "([" and 1 or ch in ")]" and -1 or 0
            if ch == "," and level == 0:
                pieces.append(prelude[start:i])
                start = i + 1
        pieces.append(prelude[start:])
    return [s for s in (_element_of(p.strip()) for p in pieces) if s]


def _element_of(selector: str) -> str:
    """`a::before` → `a`, `.x ::after` → `.x *`: a pseudo-element is shown when its element is."""
    if ":" not in selector:
        return selector
    def swap(m: re.Match) -> str:
        before = selector[m.start() - 1] if m.start() else " "
        return "*" if before in " \t\n>+~," else ""
    return _PSEUDO_ELEMENT.sub(swap, selector).strip()


def possible(selector: str, classes: set[str], ids: set[str]) -> bool:
    """False when a class or id the selector requires is on no element of the page (a cheap test before lexbor's,
    which walks the whole page); those inside :not(…), :is(…) or [attributes] are not required."""
    outer = selector
    for _ in range(8):  # nested parentheses, innermost first
        inner = _INNER.sub(" ", outer)
        if inner == outer:
            break
        outer = inner
    for kind, name in _NAMES.findall(outer):
        name = _ESCAPE.sub(_unescape, name).lower() if "\\" in name else name.lower()
        if name not in (classes if kind == "." else ids):
            return False
    return True


def _unescape(m: re.Match) -> str:
    text = m.group(1).strip()
    if len(text) == 1 and not text.isalnum():
        return text
    try:
        return chr(int(text, 16))
    except ValueError:
        return text


class Matcher:
    """Whether a rule's selectors match an element of one page (lexbor), each selector asked once. A selector
    lexbor cannot read matches nothing; so do the states a page is not in when it loads (`:hover`, `:focus`), as in
    a browser that has only loaded it. Lexbor walks the whole page for a selector it misses, so at most MAX_RULES
    rules go to it, within MATCH_SECONDS; a class or id on no element turns a selector down before (`possible`)."""

    def __init__(self, tree, classes: set[str], ids: set[str]) -> None:
        self.tree, self.classes, self.ids = tree, classes, ids
        self.memo: dict[str, bool] = {}
        self.asked = 0  # rules that went to lexbor
        self.deadline = time.monotonic() + MATCH_SECONDS
        self.shape: tuple[dict[int, int], int] | None = None  # the page's elements by depth, and most siblings

    def matches(self, prelude: str) -> bool | None:
        """True or False; None when the rule would need lexbor past the cap or the time budget, or on a selector
        that could take it longer than that (`_costly`)."""
        todo = []
        for selector in selectors(prelude):
            if self.memo.get(selector):
                return True
            if selector not in self.memo and possible(selector, self.classes, self.ids):
                todo.append(selector)
        if not todo:
            return False
        if self.asked >= MAX_RULES:
            return None
        self.asked += 1
        costly = False
        for selector in todo:  # the time is looked at before each: one rule may list thousands of selectors
            if time.monotonic() > self.deadline:
                return None
            if self._costly(selector):  # not asked: counted as a rule not matched
                costly = True
                continue
            self.memo[selector] = _found(self.tree, selector)
            if self.memo[selector]:
                return True
        return None if costly else False

    def ruled_out(self, prelude: str) -> bool:
        """Whether `matches` would say False at once, without lexbor: each selector asked before and not found, or
        requiring a class or id on no element."""
        return all(not self.memo[s] if s in self.memo else not possible(s, self.classes, self.ids)
                   for s in selectors(prelude))

    def _costly(self, selector: str) -> bool:
        """Whether lexbor might take longer than the matching's whole budget on this one selector (it holds the
        GIL, and cannot be stopped): it backtracks over every choice of ancestors for descendant combinators (and
        of earlier siblings for `~`), so `span div div div div div div div p` on a page 60 elements deep takes
        minutes. Bounded by the sum over the page's elements of C(depth, descendant combinators) times
        C(most siblings, `~` combinators)."""
        bare = _INNER_TEXT.sub("", selector.lower())  # attribute values and strings: no combinators
        down = len(_DESCENDANT.findall(bare)) + bare.count(":has(")
        sideways = bare.count("~")
        if not down and not sideways:
            return False
        if self.shape is None:
            self.shape = _shape(self.tree)
        depths, siblings = self.shape
        cost = sum(count * math.comb(depth, down) for depth, count in depths.items()) * math.comb(siblings, sideways)
        return cost > MATCH_COST


def _shape(tree) -> tuple[dict[int, int], int]:
    """How many of the page's elements are at each depth, and the most children one element has."""
    depth: dict[int, int] = {}
    children: dict[int, int] = {}
    by_depth: dict[int, int] = {}
    for node in tree.root.traverse(include_text=False) if tree.root is not None else ():
        parent = node.parent
        up = parent.mem_id if parent is not None else 0
        d = depth[node.mem_id] = depth.get(up, 0) + 1
        by_depth[d] = by_depth.get(d, 0) + 1
        children[up] = children.get(up, 0) + 1
    return by_depth, max(children.values(), default=0)


def _found(tree, selector: str) -> bool:
    try:
        return tree.css_first(selector) is not None
    except Exception:  # a selector lexbor cannot parse (:lang(), a browser's own -webkit- ones)
        return False
