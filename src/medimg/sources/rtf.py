r"""Rich Text Format documents (`.rtf`: reports that dictation and radiology systems export, WordPad files): the
pictures they hold.

An RTF keeps each picture in a `{\pict …}` group: control words saying its kind (`\pngblip`, `\jpegblip`,
`\dibitmap`, `\emfblip`, `\wmetafile`, …), then its bytes in hex (or raw after `\bin N`). Like a zip, the document
is a container: each PNG, JPEG or DIB picture is an input of its own (`report.rtf:picture-1.png`), opened by
whichever source reads it; an EMF or WMF drawing is one too when it paints a bitmap (a pasted scan:
metafile.py reads it, `report.rtf:picture-2.wmf`), the other drawings (and PICT) are counted in the note, as in
Office 97–2003 files. Word writes a
picture twice, as it is (`\shppict`) and as a WMF copy for older readers (`\nonshppict`): the copy is left out.
Text is left out with one note. Pictures are read under `max_input_bytes` each, `zip_max_bytes` in all and
`zip_max_entries` in count; the picture groups of one document are read in at most MAX_TOKENS steps.
"""

from __future__ import annotations

import re
from typing import Callable, Iterator, Union

from .base import Blob, Budget, Context, Item, ItemError, SourcePlugin
from .registry import register

_PICT = re.compile(rb"\\pict(?![a-zA-Z])")
# a control word (with its number and the one space ending it), a control symbol, a brace, a run of hex digits
_TOKEN = re.compile(rb"\\([a-zA-Z]{1,32})(-?[0-9]{1,10})? ?|\\.|[{}]|[0-9A-Fa-f\s]+|[^\\{}0-9A-Fa-f\s]+", re.S)
_OLD_READERS = re.compile(rb"\\nonshppict\s*\{\s*$")  # the group holding Word's WMF copy of a picture
KINDS = {b"pngblip": "png", b"jpegblip": "jpg", b"dibitmap": "bmp", b"emfblip": "EMF", b"wmetafile": "WMF",
         b"macpict": "PICT", b"pmmetafile": "WMF"}
_BLANKS = re.compile(rb"\s+")  # line breaks may fall anywhere in a picture's hex, between a byte's two digits too
_HEX_DIGITS = tuple(bytes([c]) for c in b"0123456789abcdefABCDEF")
MAX_TOKENS = 1_000_000  # steps through picture groups in one document (each group found, brace and word, hex run)


def accepts(head: bytes, blob: Blob) -> bool:
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{\\rtf")


def split_rtf(blob: Blob, ctx: Context) -> Iterator[Callable[[], Iterator[Item]]]:
    from .files import member_units

    yield from member_units(_pictures(blob, ctx), ctx)


def _pictures(blob: Blob, ctx: Context) -> Iterator[Union[Item, Blob]]:
    from .compound import bmp_file
    from .files import image_kind

    origin, limits, data = blob.origin, ctx.limits, blob.data
    budget = blob.budget or Budget(limits.zip_max_bytes)
    found, drawings, copies, steps, at = 0, 0, 0, [0], 0
    over = (f"RTF picture groups take over {MAX_TOKENS:,} steps to read (damaged or crafted); the rest of the "
            "document is not read")
    while (m := _PICT.search(data, at)) is not None:
        steps[0] += 1
        if steps[0] > MAX_TOKENS:
            yield ItemError(origin, "", over)
            found = -1
            break
        if _OLD_READERS.search(data, max(0, m.start() - 64), m.start()):
            copies += 1
            at = _group_end(data, m.end(), steps)
            continue
        kind, hexes, raw, at = _picture(data, m.end(), steps, 2 * limits.max_input_bytes + (1 << 20))
        if steps[0] > MAX_TOKENS:
            yield ItemError(origin, "", over)
            found = -1
            break
        if kind in ("EMF", "WMF", "PICT"):  # a drawing: read when it paints a bitmap (a pasted scan)
            drawing = _drawing(hexes, raw, limits.max_input_bytes) if kind != "PICT" else None
            if drawing is None:
                drawings += 1
                continue
            kind, hexes, raw = kind.lower(), None, drawing
        found += 1
        if found > limits.zip_max_entries:
            yield ItemError(origin, "", f"document holds more than the zip_max_entries cap of "
                                        f"{limits.zip_max_entries:,} pictures; the rest are not read")
            break
        where = f"{origin}:picture-{found}.{kind or 'bin'}"
        try:
            picture = raw if hexes is None else bytes.fromhex(_BLANKS.sub(b"", b"".join(hexes)).decode("ascii"))
            if kind is None and picture:  # no kind said: named by its first bytes
                where = f"{origin}:picture-{found}.{(image_kind(picture[:64]) or 'bin').lower()}"
        except ValueError:
            yield ItemError(where, "", "damaged picture: its hex digits do not make whole bytes; not read")
            continue
        if picture is None or len(picture) > limits.max_input_bytes:
            yield ItemError(where, "", f"picture is over the max_input_bytes cap of {limits.max_input_bytes:,}; "
                                       "not read")
            continue
        if len(picture) > budget.left:
            yield ItemError(where, "", f"pictures add up past the zip_max_bytes cap of {limits.zip_max_bytes:,}; "
                                       "the rest are not read")
            break
        budget.left -= len(picture)
        if kind == "bmp":
            picture = bmp_file(picture) or picture
        if not picture:
            yield ItemError(where, "", "empty picture", skipped=True)
            continue
        yield Blob(where, picture, name=where.rsplit(":", 1)[1], depth=blob.depth + 1, budget=budget)
    notes = ["RTF document: its text left out"]
    if copies:
        notes.append(f"{copies} WMF cop{'ies' if copies > 1 else 'y'} of its pictures for older readers left out")
    if drawings:
        notes.append(f"{drawings} drawing{'s' * (drawings > 1)} (EMF/WMF/PICT) not drawn")
    if found == 0 and not drawings:
        notes.append("no pictures found")
    yield ItemError(origin, "", "; ".join(notes), skipped=True)


def _picture(data: bytes, at: int, steps: list[int], cap: int):
    """The `\\pict` group from `at` (just past its word): (kind, hex runs or None, raw bytes or None, its end).
    Hex runs past `cap` characters are not kept (None, None: too big); nested groups (`\\*\\picprop`) are passed
    over."""
    kind, hexes, raw, size, depth = None, [], None, 0, 0
    while at < len(data) and steps[0] <= MAX_TOKENS:
        t = _TOKEN.match(data, at)
        if t is None:  # a lone backslash at the very end
            break
        tok, at = t.group(0), t.end()
        steps[0] += 1
        if tok == b"{":
            depth += 1
        elif tok == b"}":
            if depth == 0:
                break
            depth -= 1
        elif depth:
            continue
        elif t.group(1) == b"bin":  # raw bytes follow
            n = max(0, int(t.group(2) or 0))
            raw, hexes = (data[at:at + n] if n <= cap // 2 else None), None
            at += n
        elif t.group(1) in KINDS:
            kind = KINDS[t.group(1)]
        elif hexes is not None and tok.lstrip()[:1] in _HEX_DIGITS and tok[:1] != b"\\":  # hex digits, line breaks
            size += len(tok)
            if size > cap:
                hexes = None
            else:
                hexes.append(tok)
    if hexes is None and raw is None:
        return kind, None, None, at
    return kind, hexes, raw, at


def _drawing(hexes, raw, cap: int) -> bytes | None:
    """A metafile picture's bytes when it paints a bitmap (metafile.py reads those), else None."""
    from .metafile import has_bitmaps

    try:
        drawing = raw if hexes is None else bytes.fromhex(_BLANKS.sub(b"", b"".join(hexes)).decode("ascii"))
    except ValueError:
        return None
    return drawing if drawing is not None and len(drawing) <= cap and has_bitmaps(drawing) else None


def _group_end(data: bytes, at: int, steps: list[int]) -> int:
    """Just past the end of the group `at` is in."""
    return _picture(data, at, steps, 0)[3]


register(SourcePlugin("rtf", accepts, priority=25, split=split_rtf))
