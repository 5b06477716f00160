"""What parsing a web page would cost, worked out before web_page.py hands it to lexbor.

lexbor's tree builder takes quadratic time (and memory) on some small pages. It walks the stack of open elements
at most tags, so deep nesting is slow; and it re-opens the formatting elements (b, font, …) that an earlier
paragraph left open in each new one ("reconstruct the active formatting elements"), so a few kilobytes of
unclosed `<b id=N>` can make millions of elements. `nesting_problem(text)` follows the parser's stack of open
elements and its list of active formatting elements in one linear pass over the tags, and returns why the page
must not be parsed (a message) or None; `web_page.extract` raises `PageTooDeep` with that message.
"""

from __future__ import annotations

import re
from bisect import bisect_right


class PageTooDeep(ValueError):
    """A page that `nesting_problem` refuses: its message says why, for an ItemError."""


# The cost is the sum over tags of the depth they are read at, plus the list entries lexbor looks through at
# formatting tags (Noah's Ark, the adoption agency).
PARSE_BUDGET = 1_000_000_000  # about 2 s of parsing (2 ns a unit); real pages are under 10^7
# Re-opened formatting elements: 10^6 took lexbor about 1 s and 370 MB (extract 1-2 s); 5,000 old-style
# paragraphs, each leaving a font, a b and a link open, re-open about 10^5.
REOPEN_BUDGET = 1_000_000  # elements re-opened: about 1–2 s and 370 MB of parsing
_VOID = frozenset("area base basefont bgsound br col embed frame hr image img input keygen link meta param source "
                  "track wbr".split())
_TABLE_PARTS = frozenset("td th tr thead tbody tfoot caption colgroup".split())  # ignored outside a table
_RUBY_PARTS = frozenset("rb rt rp rtc".split())
_RAW_TEXT = frozenset("script style textarea title xmp iframe".split())  # their content has no tags
_SCOPE = frozenset("applet caption html table td th marquee object template svg math".split())
_SPECIAL = _SCOPE | frozenset(
    "address area article aside base basefont bgsound blockquote body br button center col colgroup dd details "
    "dialog dir div dl dt embed fieldset figcaption figure footer form frame frameset h1 h2 h3 h4 h5 h6 head "
    "header hgroup hr iframe img input keygen li link listing main menu meta nav noembed noframes noscript ol p "
    "param plaintext pre script search section select source style summary tbody textarea tfoot thead title tr "
    "track ul wbr xmp".split())
_LI_STOP = _SPECIAL - {"address", "div", "p"}
_FORMATTING = frozenset("a b big code em font i nobr s small strike strong tt u".split())
_MARKER = frozenset("applet caption marquee object td th template".split())  # they put a marker in the list
# start tags before which the parser does not re-open formatting elements (text and other start tags do)
_NO_REOPEN = frozenset(
    "address article aside blockquote center details dialog dir div dl fieldset figcaption figure footer header "
    "hgroup main menu nav ol p search section summary ul h1 h2 h3 h4 h5 h6 pre listing form li dd dt plaintext "
    "table hr textarea iframe noembed frameset head body html rb rtc rp rt caption col colgroup frame tbody td "
    "tfoot th thead tr param source track base basefont bgsound link meta noframes script style template "
    "title".split())
# start tags that end SVG or MathML content (font only with color, face or size), and where HTML goes on inside it
_BREAKOUT = frozenset("b big blockquote body br center code dd div dl dt em embed h1 h2 h3 h4 h5 h6 head hr i img li "
                      "listing menu meta nobr ol p pre ruby s small span strong strike sub sup table tt u ul "
                      "var".split())
_FONT_BREAKS = {"color", "face", "size"}
_HTML_INSIDE = ("foreignobject", "desc", "title", "mi", "mo", "mn", "ms", "mtext", "annotation-xml")
_TABLE_CONTEXT = frozenset("table tbody thead tfoot tr".split())  # white space here is not text of the page
# a comment (`<!-->` and `<!--->` are whole ones, and `--!>` ends one too), or a tag
_TAG = re.compile(r"<!--(?:-?>|.*?--!?>|.*)|<(/?)([A-Za-z][^\s/>]*)([^>]*)>", re.S)
_ATTR = re.compile(r"""([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]*)))?""")
_NO_ATTRIBUTES: frozenset = frozenset()
_RAW_END = {name: re.compile(f"</{name}", re.I) for name in _RAW_TEXT}
_KIND = {**{n: "void" for n in _VOID}, **{n: "raw" for n in _RAW_TEXT | {"plaintext"}},
         **{n: "closes" for n in _TABLE_PARTS | _RUBY_PARTS | {"p", "li", "dd", "dt", "option", "optgroup"}}}
# which position lists (special, li_stop, scope, button) an element's position goes in
_MARKS = {name: tuple(i for i, kind in enumerate((_SPECIAL, _LI_STOP, _SCOPE, {"button"})) if name in kind)
          for name in _SPECIAL | {"button"}}


class _Entry:
    """An entry in the list of active formatting elements."""

    __slots__ = ("name", "key", "pos")

    def __init__(self, name: str, key: tuple, pos: int):
        self.name, self.key = name, key
        self.pos = pos  # its element's stack position; -1 when off the stack, -2 once out of the list


def _attributes(rest: str) -> frozenset:
    """A start tag's attributes, the first of each name, as Noah's Ark compares them."""
    found: dict[str, str] = {}
    for m in _ATTR.finditer(rest):
        found.setdefault(m.group(1).lower(), next((v for v in m.group(2, 3, 4) if v is not None), ""))
    return frozenset(found.items())


def nesting_problem(text: str, budget: int = PARSE_BUDGET, reopen_budget: int = REOPEN_BUDGET) -> str | None:
    """Why the page must not be parsed, or None. Follows the parser's stack of open elements closely enough
    never to hold fewer than it does (but for a small factor): elements that sloppy HTML leaves open (p, li,
    dd, dt, option, table cells and rows, ruby text) are closed where the parser closes them, and an end tag
    closes only an element it reaches. Follows the list of active formatting elements too, and counts the
    elements the parser re-opens from it. Linear time; skipped when a page has too few tags to reach a budget."""
    n = text.count("<")
    if 3 * n * n <= min(budget, reopen_budget) and len(text) <= 65536:  # (a long page may hold long tags)
        return None
    stack: list[str] = []
    at: dict[str, list[int]] = {}  # each open name's stack positions
    # stack positions of: special elements (an end tag's search for a non-special one stops there), those but
    # address, div and p (where a new li's search for the last stops), scope boundaries, buttons
    marks = ([], [], [], [])
    active: list[_Entry | None] = []  # the list of active formatting elements; None is a marker
    markers: list[tuple[int, int]] = []  # (stack position of the element that put it there, index in `active`)
    # for the entries after the last marker (and one for the start): name -> entries, key -> the last three
    groups: list[dict] = [{}]
    held: dict[int, _Entry] = {}  # stack position -> the entry of the formatting element there

    def push(name: str) -> None:
        for i in _MARKS.get(name, ()):
            marks[i].append(len(stack))
        at.setdefault(name, []).append(len(stack))
        stack.append(name)

    def pop_to(pos: int) -> None:  # pops the element at pos and all above it
        while len(stack) > pos:
            name = stack.pop()
            if not name:  # a slot whose element the parser has moved away
                continue
            at[name].pop()
            for i in _MARKS.get(name, ()):
                marks[i].pop()
            if name in _FORMATTING:
                entry = held.pop(len(stack), None)
                if entry is not None and entry.pos == len(stack):
                    entry.pos = -1
            if markers and markers[-1][0] == len(stack):  # a cell or object closes: its entries go
                while (entry := active.pop()) is not None:
                    entry.pos = -2
                markers.pop()
                groups.pop()

    def last(names: tuple, above: int) -> int:  # position of the last open one of names, if above `above`
        pos = max((at[n][-1] for n in names if at.get(n)), default=-1)
        return pos if pos > above else -1

    def top(i: int) -> int:
        return marks[i][-1] if marks[i] else -1

    def since_marker() -> int:  # entries after the last marker, which lexbor looks through
        return len(active) - (markers[-1][1] + 1 if markers else 0)

    def last_entry(name: str) -> _Entry | None:
        named = groups[-1].get(name)
        while named and named[-1].pos == -2:
            named.pop()
        return named[-1] if named else None

    def drop(entry: _Entry) -> None:  # takes an entry out of the list
        i = len(active) - 1
        while active[i] is not entry:
            i -= 1
        del active[i]
        groups[-1][entry.key].remove(entry)
        named = groups[-1][entry.name]
        if named[-1] is entry:
            named.pop()
        entry.pos = -2

    def moved(entry: _Entry) -> None:  # the parser took its element off the stack, from below others
        stack[entry.pos] = ""
        at[entry.name].remove(entry.pos)
        held.pop(entry.pos, None)
        entry.pos = -1

    def adopt(entry: _Entry) -> None:  # the adoption agency, roughly
        if entry.pos < 0:
            drop(entry)
        elif top(2) < entry.pos:  # in scope
            blocks = len(marks[0]) - bisect_right(marks[0], entry.pos)  # special elements above it
            if not blocks:
                pop_to(entry.pos)
                drop(entry)
            elif blocks < 8:  # moved into them and closed in the last, with all above it
                moved(entry)
                drop(entry)
                pop_to(top(0) + 1)
            else:  # its copy stays open under the 8th: counted as off the stack, to be re-opened
                moved(entry)

    def reopen() -> int:  # re-opens the entries after the last marker or open one; returns how many
        i = len(active)
        while i and active[i - 1] is not None and active[i - 1].pos == -1:
            i -= 1
        for entry in active[i:]:
            entry.pos = len(stack)
            held[len(stack)] = entry
            push(entry.name)
        return len(active) - i

    def in_foreign() -> bool:  # in SVG or MathML, and not in an element of theirs that holds HTML
        return bool(at.get("svg") or at.get("math")) and last(("svg", "math"), -1) > last(_HTML_INSIDE, -1)

    def pending() -> bool:
        return bool(active) and active[-1] is not None and active[-1].pos == -1

    cost = depth = skip_to = reopened = text_from = options = 0
    too_many = (f"page leaves formatting elements (b, font, …) open that the parser would copy into later text "
                f"over {reopen_budget:,} times; not parsed (it would take too long)")
    # up to the last ">": a tag needs one, and each "<a" after it would otherwise be read to the end (quadratic)
    for m in _TAG.finditer(text, 0, text.rfind(">") + 1):
        if m.start() < skip_to:
            continue
        if m.start() > text_from and active and active[-1] is not None and active[-1].pos == -1:
            # text: the parser re-opens formatting elements first
            if not (stack and stack[-1] in _TABLE_CONTEXT and text[text_from:m.start()].isspace()):
                reopened += reopen()
                if reopened > reopen_budget:
                    return too_many
                depth = max(depth, len(stack))
        text_from = m.end()
        cost += len(stack)
        if cost > budget:
            return f"page nests elements at least {depth:,} deep; not parsed (it would take too long)"
        end, name, rest = m.groups()
        if name is None:  # a comment
            continue
        if len(rest) > 256:  # lexbor checks each attribute's name against the tag's others
            cost += len({a[0].lower() for a in _ATTR.findall(rest)}) ** 2  # distinct names: each against the rest
            if cost > budget:
                return "page has a tag with too many attributes to parse in time; not parsed"
        name = name.lower()
        if name in ("option", "optgroup") and at.get("select"):  # and each option against the select's others
            cost += 4 * options
            options += not end
        formatting = name in _FORMATTING
        if formatting:
            cost += since_marker()
        if end:  # closes the last open one in scope (a non-special one: if no special element is above it)
            if not at.get(name):
                entry = last_entry(name) if formatting else None
                if entry is not None:
                    drop(entry)
                continue
            if stack[-1] == name and (not formatting or held.get(len(stack) - 1) is None
                                      or held[len(stack) - 1].pos < 0):  # not in the list: just closed
                pop_to(len(stack) - 1)
                continue
            entry = last_entry(name) if formatting else None
            if entry is not None:
                adopt(entry)
                continue
            if name == "p":
                found = last(("p",), max(top(2), top(3)))
            else:
                found = last((name,), top(2) - 1 if name in _SPECIAL else top(0))
            if found >= 0:
                pop_to(found)
            continue
        kind = _KIND.get(name)
        foreign = in_foreign()
        if foreign and (name in _BREAKOUT or name == "font" and _FONT_BREAKS & dict(_attributes(rest)).keys()):
            pop_to(last(("svg", "math"), -1))  # HTML breaks out of SVG and MathML
            foreign = in_foreign()
        formatting = formatting and not foreign
        if name == "a" and formatting:  # a new link closes one still open
            entry = last_entry("a")
            if entry is not None:
                adopt(entry)
                if entry.pos >= 0:
                    moved(entry)
                if entry.pos != -2:
                    drop(entry)
        reopens = name not in _NO_REOPEN and not foreign and kind != "closes"
        if kind == "void" or (rest.endswith("/") and (foreign or name in ("svg", "math"))):
            if reopens and pending():
                reopened += reopen()
                if reopened > reopen_budget:
                    return too_many
            continue
        if name == "select":
            options = 0
        if name in ("select", "input", "textarea") and not foreign and last(("select",), top(2)) >= 0:
            pop_to(last(("select",), top(2)))  # they close an open select (a second select only closes it)
            if name == "select":
                continue
        if kind is None:
            if name == "table" and not foreign:  # a table in a table (not in its cell) closes that one first
                outer = last(("table",), max(at.get("template") or [-1]))
                if outer >= 0 and last(("td", "th", "caption"), outer) < 0:
                    pop_to(outer)
        elif name == "p":
            found = last(("p",), max(top(2), top(3)))
            if found >= 0:
                pop_to(found)
        elif name in ("li", "dd", "dt"):
            found = last(("li",) if name == "li" else ("dd", "dt"), top(1) - 1)
            if found >= 0:
                pop_to(found)
        elif name in ("option", "optgroup"):
            if stack and stack[-1] == "option":
                pop_to(len(stack) - 1)
            if name == "optgroup" and stack and stack[-1] == "optgroup" and at.get("select"):
                pop_to(len(stack) - 1)
            reopens = not foreign
        elif name in _TABLE_PARTS:
            table = last(("table",), max(at.get("template") or [-1]))
            if table < 0:
                continue  # ignored outside a table
            inner = last(("tr",) if name in ("td", "th") else ("tbody", "thead", "tfoot") if name == "tr" else (),
                         table)
            pop_to((inner if inner >= 0 else table) + 1)
        elif name in _RUBY_PARTS and last(("ruby",), top(2)) >= 0:
            while stack and stack[-1] in (_RUBY_PARTS if name in ("rb", "rtc") else _RUBY_PARTS - {"rtc"}):
                pop_to(len(stack) - 1)
        elif name == "plaintext" and not foreign:
            return None  # the rest is text
        if reopens and pending():
            reopened += reopen()
            if reopened > reopen_budget:
                return too_many
        if name == "nobr" and formatting:  # a nobr still open is closed, and the rest re-opened again
            entry = last_entry("nobr")
            if entry is not None and entry.pos >= 0 and top(2) < entry.pos:
                adopt(entry)
                reopened += reopen()
                depth = max(depth, len(stack))
        for i in _MARKS.get(name, ()):
            marks[i].append(len(stack))
        at.setdefault(name, []).append(len(stack))
        stack.append(name)
        depth = max(depth, len(stack))
        if formatting:  # Noah's Ark: at most three alike after the last marker
            entry = _Entry(name, (name, _attributes(rest) if rest.strip() else _NO_ATTRIBUTES), len(stack) - 1)
            alike = groups[-1].setdefault(entry.key, [])
            if len(alike) >= 3:
                drop(alike[0])
            alike.append(entry)
            groups[-1].setdefault(name, []).append(entry)
            active.append(entry)
            held[entry.pos] = entry
        elif name in _MARKER and not foreign:
            markers.append((len(stack) - 1, len(active)))
            active.append(None)
            groups.append({})
        if kind == "raw" and not foreign:
            close = _RAW_END[name].search(text, m.end())
            if close is None:
                return None
            skip_to = text_from = close.start()
    if len(text) > text_from and pending() and reopened + reopen() > reopen_budget:
        return too_many
    return None
