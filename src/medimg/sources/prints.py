"""A picture's print: a tiny grey copy of a decoded image, to know one picture at another size, in another
encoding or cropped to another shape (web_fetch.py's `Seen.resized` compares a page's images by them)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .base import ImageItem

PRINT_SIDE = 16  # a picture's print: this many grey cells a side, each the mean of its area
# the mean difference (grey levels) two prints of one picture stay under: re-encoding at the same size gives
# ≤ 0.2, most 96-160 px thumbnails of X-rays, fundus or ultrasound images < 1; adjacent MRI slices 2.2 mm apart ≥ 2.2
SAME_PICTURE = 1.0
SAME_SPREAD = 0.04  # and this share of the flatter print's spread: about 0.4 for a spread of 10 levels
SAME_SHAPE = 0.02  # the two aspect ratios differ by at most this fraction
# a thumbnail cropped to another shape (a square of a tall X-ray, a news site's 1.91:1 og:image) is compared with
# the same crop of the other picture, printed from its grey copy (COPY_SIDE px a side at most): the crop that keeps
# its centre, or, for a band of a taller picture, its top too; a crop keeps at least CROP_KEEPS of the picture
COPY_SIDE = 128
CROP_KEEPS = 0.5
# comparing crops works out new crop prints (40,000 pairs of 200 square thumbnails and 200 pictures of other
# shapes: 112 s and 94 MiB of prints kept, on a busy machine): each picture is compared crop by crop with at most
# CROPS_PER_PICTURE of those of another shape read before it, the latest first (a thumbnail and the picture it
# links to are neighbours; og:image and twitter:image always, but within the page's cap), and a page makes at most
# CROP_PAIRS such comparisons
CROPS_PER_PICTURE = 16
CROP_PAIRS = 4000
_GREY_MODES = ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr")


@dataclass
class Print:
    """A tiny grey copy of an image, to know its picture at another size, in another encoding or cropped."""

    cells: np.ndarray  # PRINT_SIDE × PRINT_SIDE grey levels, uint8
    spread: float  # their standard deviation
    width: int
    height: int
    format: str | None
    copy: np.ndarray | None = None  # the picture in grey, COPY_SIDE px a side at most: its crops are printed
    _crops: dict = field(default_factory=dict, repr=False)  # the prints of its crops, by the shape cropped to

    def gap(self, other: Print) -> float | None:
        """The mean difference of the two prints, or None when their shapes differ or it is too large for
        the flatter of the two (over SAME_SPREAD of its spread)."""
        shape, theirs = self.width / self.height, other.width / other.height
        if abs(shape - theirs) > SAME_SHAPE * max(shape, theirs):
            return None
        return _gap(self.cells, self.spread, other.cells, other.spread)

    def likeness(self, other: Print) -> tuple[float, str] | None:
        """(gap, crop) when the other is this picture (their prints under SAME_PICTURE apart): of the same shape
        (crop ""), a crop of it ("new centre", "new top") or it a crop of the other's picture ("centre", "top");
        None when none of these is close."""
        gap = self.gap(other)
        if gap is not None:
            return (gap, "") if gap < SAME_PICTURE else None
        found = [(gap, f"new {where}") for gap, where in self.crops(other)] + other.crops(self)
        found = [one for one in found if one[0] < SAME_PICTURE]
        return min(found) if found else None

    def reshaped(self, other: Print) -> bool:
        """Whether the other picture is of another shape that a crop of one of the two may have (`likeness`
        then compares them crop by crop, the costly part)."""
        shape, theirs = self.width / self.height, other.width / other.height
        return (abs(shape - theirs) > SAME_SHAPE * max(shape, theirs)
                and min(shape, theirs) / max(shape, theirs) >= CROP_KEEPS
                and (self.copy is not None or other.copy is not None))

    def crops(self, other: Print) -> list[tuple[float, str]]:
        """(gap, where) for each crop of this picture to the other's shape that the other's print matches."""
        shape, theirs = self.width / self.height, other.width / other.height
        keeps = min(shape, theirs) / max(shape, theirs)
        # a crop that leaves out less than a pixel of the copy is the whole picture, which gap() has judged
        if self.copy is None or keeps < CROP_KEEPS or keeps > 1 - 1 / COPY_SIDE:
            return []
        out = []
        for where, cells, spread, level in self._cropped(theirs):
            if abs(level - other.level) >= SAME_PICTURE:  # the mean difference is at least that of the means
                continue
            gap = _gap(cells, spread, other.cells, other.spread)
            if gap is not None:
                out.append((gap, where))
        return out

    @functools.cached_property
    def level(self) -> float:
        """The mean grey level of the print."""
        return float(self.cells.mean())

    def _cropped(self, theirs: float) -> list[tuple[str, np.ndarray, float, float]]:
        """(where, print, spread, level) of each crop of this picture to a shape (width / height), worked out
        once."""
        if theirs in self._crops:
            return self._crops[theirs]
        if theirs < self.width / self.height:  # narrower: the full height, its middle
            side = self.height * theirs
            boxes = [("centre", ((self.width - side) / 2, 0, (self.width + side) / 2, self.height))]
        else:  # a band of this taller picture: its middle, or its top
            side = self.width / theirs
            boxes = [("centre", (0, (self.height - side) / 2, self.width, (self.height + side) / 2)),
                     ("top", (0, 0, self.width, side))]
        rows, cols = self.copy.shape
        sx, sy = cols / self.width, rows / self.height
        grey = self.copy.astype(np.float32)
        out = []
        for where, (x0, y0, x1, y1) in boxes:  # each cell the mean of its area, parts of pixels weighed in
            cells = (_shares(y0 * sy, y1 * sy, rows) @ grey @ _shares(x0 * sx, x1 * sx, cols).T).astype(np.float32)
            out.append((where, cells, float(cells.std()), float(cells.mean())))
        self._crops[theirs] = out
        return out


def _shares(start: float, end: float, count: int) -> np.ndarray:
    """PRINT_SIDE × count weights: how much of each of `count` pixels falls in each of PRINT_SIDE equal cells
    from `start` to `end` (pixels), each row summing to 1."""
    edges = np.linspace(start, end, PRINT_SIDE + 1)[:, None]
    at = np.arange(count)
    weights = np.clip(np.minimum(at + 1, edges[1:]) - np.maximum(at, edges[:-1]), 0, None)
    return weights / weights.sum(axis=1, keepdims=True)


def _gap(cells: np.ndarray, spread: float, other: np.ndarray, other_spread: float) -> float | None:
    """The mean difference of two prints, or None when it is too large for the flatter of the two (over
    SAME_SPREAD of its spread)."""
    limit = SAME_SPREAD * min(spread, other_spread)
    if limit <= 0:  # a flat picture matches nothing
        return None
    diff = np.abs(cells.astype(np.float32) - other)
    gap = float(np.add.reduce(diff, axis=None)) / diff.size  # the mean, without np.mean's cost per call
    return gap if gap < limit else None


def picture_print(item: ImageItem) -> Print | None:
    """The item's print (its stored size, its decoded picture), or None for an image that is not 8-bit (a 16-bit
    or float one, whose grey levels mean nothing here)."""
    image = item.image
    if image.mode not in _GREY_MODES or min(item.width, item.height) < 1:
        return None
    try:
        grey = image.convert("L")
        cells = np.asarray(grey.resize((PRINT_SIDE, PRINT_SIDE), Image.BOX), dtype=np.uint8)
        scale = COPY_SIDE / max(grey.size)
        if scale < 1:
            grey = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))), Image.BOX)
        copy = np.asarray(grey, dtype=np.uint8)  # 16 kB at most
    except Exception:  # an odd image is kept as an image of its own
        return None
    return Print(cells, float(cells.std()), item.width, item.height, item.format, copy)
