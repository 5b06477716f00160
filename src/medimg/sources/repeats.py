"""The frames of one file that show a picture an earlier frame of it showed (a GIF's slide held for several
frames, a frozen or looped cine): with `all_frames` each picture is classified once, and a run of frames that
repeat earlier ones is one note naming them (`frames 5–9: the same picture as frame 4; not classified again`).
The pictures are compared exactly, as decoded and composited, by a digest of their pixels."""

from __future__ import annotations

import hashlib
from typing import Iterator

from PIL import Image

from .base import ImageItem, Item, ItemError

STRIP_BYTES = 1 << 22  # pixels hashed a strip of rows at a time: no copy of a whole large frame


def digest(img: Image.Image) -> bytes:
    """A digest of what `img` shows: a palette image hashes as the RGB (or, with transparency, RGBA) image showing
    the same colours (a GIF's first frame is a palette image, the frames Pillow draws over it RGB or RGBA)."""
    as_mode = img.mode
    if img.mode in ("P", "PA"):
        as_mode = "RGBA" if img.mode == "PA" or img.has_transparency_data else "RGB"
    h = hashlib.sha256(f"{as_mode} {img.size}".encode())
    w, height = img.size
    if 4 * w * height <= STRIP_BYTES:  # a frame of a few MB at most: hashed whole, no strip cut out first
        h.update((img if img.mode == as_mode else img.convert(as_mode)).tobytes())
        return h.digest()
    step = max(1, STRIP_BYTES // max(1, 4 * w))
    for y in range(0, height, step):
        strip = img.crop((0, y, w, min(height, y + step)))
        h.update((strip if strip.mode == as_mode else strip.convert(as_mode)).tobytes())
    return h.digest()


def distinct(items: Iterator[Item], origin: str, label: str, cap: int) -> Iterator[Item]:
    """`items` (one a frame, its locator `{label} N`), each picture once: a run of frames repeating pictures
    given before is one skipped note. At most `cap` frames are read, repeats counted too, as they cost what an
    image does to decode; past it, a note says so (the images alone are capped by the caller)."""
    seen: dict[bytes, str] = {}
    run: list[tuple[str, str]] = []  # (frame, the earlier frame it repeats)
    frames = repeats = 0
    try:
        for item in items:
            if not isinstance(item, ImageItem):
                yield from _run_note(origin, label, run)
                run = []
                yield item
                continue
            if frames >= cap:
                yield from _run_note(origin, label, run)
                if repeats:
                    yield ItemError(origin, "", f"stopped after reading {cap:,} frame{'s' * (cap != 1)}, {repeats:,} "
                                                f"of them repeats (max_images_per_input)", skipped=True)
                else:  # every frame an image: the caller's cap stops at this one, with its own note
                    yield item
                return
            frames += 1
            key = digest(item.image)
            first = seen.setdefault(key, item.locator)
            if first != item.locator:
                repeats += 1
                run.append((item.locator, first))
                continue
            yield from _run_note(origin, label, run)
            run = []
            yield item
        yield from _run_note(origin, label, run)
    finally:
        close = getattr(items, "close", None)
        if close:
            close()


def _run_note(origin: str, label: str, run: list[tuple[str, str]]) -> Iterator[ItemError]:
    if not run:
        return
    firsts = {first for _, first in run}
    if len(run) == 1:
        where, what = run[0][0], f"the same picture as {run[0][1]}"
    else:
        start, end = run[0][0].removeprefix(f"{label} "), run[-1][0].removeprefix(f"{label} ")
        where = f"{label}s {start}–{end}"
        what = (f"the same picture as {run[0][1]}" if len(firsts) == 1
                else f"each the same picture as an earlier {label} ({run[0][0]} as {run[0][1]})")
    yield ItemError(origin, where, f"{what}; not classified again", skipped=True)
