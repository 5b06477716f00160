"""The raster pictures an SVG drawing holds.

The drawing itself is not rasterised. What is read of it are the pictures it embeds as `data:` URIs in `<image>`
(or `<feImage>`) elements, as figure exporters and vector editors wrap a PNG or JPEG: each is an image at
`image #N` (one with a side under `min_side` a decoration note, as in PDFs; bytes that are no picture though
their type says `image/…` an error, as in a page; at most `max_images_per_input` are looked at, the others
counted). Nothing the drawing links to (a file, a URL, another drawing) is read or fetched, and its scripts
never run. It is parsed with lexbor, as a page's inline SVG is: a DOCTYPE's entities are never expanded, and a
drawing too deeply nested to parse in time (`html_cost`) is a note. A drawing with no such picture is a note.
"""

from __future__ import annotations

from typing import Iterator

from .base import Blob, Context, ImageItem, Item, ItemError

NOTE = "SVG is not rasterised (vector drawing skipped)"
_TAGS = ("image", "feimage")


def data_uris(data: bytes, keep: int) -> tuple[list[str], int]:
    """The first `keep` `data:` URIs of a drawing's `<image>` and `<feImage>` elements, in document order, and how
    many it has in all (the others are counted, not kept: a copy of each would double a large drawing's memory).
    Raises html_cost.PageTooDeep when the drawing would take too long to parse."""
    from selectolax.lexbor import LexborHTMLParser

    from .html_cost import PageTooDeep, nesting_problem

    text = data.decode("utf-8", errors="replace")
    problem = nesting_problem(text)
    if problem:
        raise PageTooDeep(problem)
    root = LexborHTMLParser(text).root
    del text  # lexbor has its own copy
    found, total = [], 0
    for node in root.traverse(include_text=False) if root is not None else ():
        if (node.tag or "").rsplit(":", 1)[-1].lower() not in _TAGS:
            continue
        attrs = {k.lower(): v or "" for k, v in node.attributes.items()}
        href = (attrs.get("href") or attrs.get("xlink:href") or "").strip()
        if href[:5].lower() == "data:":
            total += 1
            if len(found) < keep:
                found.append(href)
    return found, total


def open_svg(blob: Blob, ctx: Context) -> Iterator[Item]:
    """The raster pictures a drawing embeds, each placed at `image #N`; else the SVG note."""
    from .files import _placed, image_kind, open_image
    from .html_cost import PageTooDeep
    from .web_fetch import decode_data_uri

    origin, floor = blob.origin, ctx.limits.min_side
    if b"data:" not in blob.data.lower():  # no embedded picture: not parsed (5x faster than re.I)
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
            data, ctype = decode_data_uri(uri, ctx.limits.max_input_bytes)
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
        for item in _placed(open_image(Blob(origin=origin, data=data, content_type=ctype, depth=blob.depth), ctx),
                            where):
            if isinstance(item, ImageItem) and min(item.width, item.height) < floor:  # as in PDFs: an icon
                item = ItemError(origin, item.locator, f"decoration: {item.width}x{item.height} is below min_side "
                                                       f"{floor}", skipped=True)
            yield item
    if total > cap:  # icons below min_side count too: each is decoded
        yield ItemError(origin, "", f"{total - cap} more embedded pictures were not read "
                                    f"(max_images_per_input = {cap})", skipped=True)
    if not opened:
        yield ItemError(origin, "", NOTE, skipped=True)
