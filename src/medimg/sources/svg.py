"""The raster pictures an SVG drawing holds.

The drawing itself is not rasterised. What is read of it are the pictures it embeds as `data:` URIs in `<image>`
(or `<feImage>`, or a foreignObject's `<img>`) elements, as figure exporters and vector editors wrap a PNG or
JPEG: each is an image at `image #N` (one with a side under `min_side` a decoration note, as in PDFs; bytes that
are no picture though their type says `image/…` an error, as in a page; at most `max_images_per_input` are looked
at, the others counted). Nothing the drawing links to (a file, a URL, another drawing) is read or fetched, and
its scripts never run. It is parsed with lexbor, as a page's inline SVG is: a DOCTYPE's entities are never
expanded, and a drawing too deeply nested to parse in time (`html_cost`) is a note; one of more than MAX_TAGS tags
has only its picture tags parsed. A drawing with no such picture is a note.
"""

from __future__ import annotations

import re
from typing import Iterator

from .base import Blob, Context, ImageItem, Item, ItemError, more

NOTE = "SVG is not rasterised (vector drawing skipped)"
# lexbor parses as HTML: an <image> after markup HTML breaks out of SVG on (<p>, <br>, <span>, <div/> in a
# foreignObject: as an XML reader sees them, still in the drawing) is renamed <img>, and a foreignObject's XHTML
# shows its pictures by <img src>
_TAGS = ("image", "feimage", "img")
# lexbor's tree takes about 1 KB an element (a scatter plot of 2.5 million <use>: 2.7 GB and 34 s); past this
# many tags only the picture tags holding a `data:` URI are parsed, found by a scan of the text
MAX_TAGS = 250_000
_PICTURE_TAG = re.compile(r"""<(?:[\w.-]+:)?(?:image|feimage|img)(?=[\s/>])(?:"[^"]*"|'[^']*'|[^"'<>])*>""", re.I)


def data_uris(data: bytes, keep: int) -> tuple[list[str], int]:
    """The first `keep` `data:` URIs of a drawing's `<image>` and `<feImage>` elements, in document order, and how
    many it has in all (the others are counted, not kept: a copy of each would double a large drawing's memory).
    Raises html_cost.PageTooDeep when the drawing would take too long to parse."""
    from selectolax.lexbor import LexborHTMLParser

    from .html_cost import PageTooDeep, nesting_problem

    text = data.decode("utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8", errors="replace")
    scanned = 0
    if text.count("<") > MAX_TAGS:  # a drawing of many elements: its picture tags alone (the first `keep` parsed)
        tags = [tag for tag in (m.group() for m in _PICTURE_TAG.finditer(text)) if "data:" in tag.lower()]
        scanned, text = len(tags), "<svg>" + "".join(tags[:keep]) + "</svg>"
        del tags
    problem = nesting_problem(text)
    if problem:
        raise PageTooDeep(problem)
    root = LexborHTMLParser(text).root
    del text  # lexbor has its own copy
    found, total = [], 0
    for node in root.traverse(include_text=False) if root is not None else ():
        if (node.tag or "").rsplit(":", 1)[-1].lower() not in _TAGS:
            continue
        attrs = {k.lower(): v or "" for k, v in node.attributes.items()}  # xlink bound to any prefix: its href
        href = (attrs.get("href") or attrs.get("xlink:href") or attrs.get("src")
                or next((v for k, v in attrs.items() if k.endswith(":href")), "")).strip()
        if href[:5].lower() == "data:":
            total += 1
            if len(found) < keep:
                found.append(href)
    return found, max(total, scanned)


def open_svg(blob: Blob, ctx: Context) -> Iterator[Item]:
    """The raster pictures a drawing embeds, each placed at `image #N`; else the SVG note."""
    from .files import with_place, image_kind, open_image
    from .html_cost import PageTooDeep
    from .web_fetch import decode_data_uri

    origin, floor = blob.origin, ctx.limits.min_side
    wide = blob.data[:2] in (b"\xff\xfe", b"\xfe\xff")  # UTF-16: its `data:` is not these bytes
    if not wide and b"data:" not in blob.data.lower():  # no embedded picture: not parsed (5x faster than re.I)
        yield ItemError(origin, "", NOTE, skipped=True)
        return
    try:
        uris, total = data_uris(blob.data, ctx.limits.max_images_per_input)
    except PageTooDeep as exc:
        yield ItemError(origin, "", f"{NOTE}; its embedded pictures are not looked for: {exc}", skipped=True)
        return
    opened, cap = 0, ctx.limits.max_images_per_input
    for n, uri in enumerate(uris, 1):
        where = f"image #{n}"
        try:
            data, ctype = decode_data_uri(uri, ctx.limits.max_input_bytes, "max_input_bytes")
        except ValueError as exc:
            yield ItemError(origin, where, str(exc))
            continue
        kind = image_kind(data[:4096])
        if kind is None and ctype.startswith("image/") and "svg" not in ctype:  # a picture, damaged: as in pages
            opened += 1
            yield ItemError(origin, where, f"not an image: got {ctype} ({len(data):,} bytes)")
            continue
        if kind in (None, "SVG", "EMF", "WMF"):  # a drawing within the drawing is not opened in turn
            what = "an SVG drawing" if kind == "SVG" else f"not a raster image ({ctype})"
            yield ItemError(origin, where, f"skipped: {what} embedded in the SVG", skipped=True)
            continue
        opened += 1
        for item in with_place(open_image(Blob(origin=origin, data=data, content_type=ctype, depth=blob.depth), ctx),
                            where):
            if isinstance(item, ImageItem) and min(item.width, item.height) < floor:  # as in PDFs: an icon
                item = ItemError(origin, item.locator, f"decoration: {item.width}x{item.height} is below min_side "
                                                       f"{floor}", skipped=True)
            yield item
    if total > cap:  # icons below min_side count too: each is decoded
        yield ItemError(origin, "", f"{more(total - cap, 'embedded picture')} not read "
                                    f"(max_images_per_input = {cap})", skipped=True)
    if not opened:
        yield ItemError(origin, "", NOTE, skipped=True)
