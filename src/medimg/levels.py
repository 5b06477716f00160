"""Grey levels: wide values (16-bit, 32-bit, float) as 8-bit levels, stretched by their percentiles. Shared by the
model's preprocessing (model/preprocess.py) and the sources that must stretch such values themselves
(sources/tiff.py), so neither layer imports the other. Also the window a CT in Hounsfield units without one of
its own is shown in (sources/dicom_levels.py, sources/nifti.py)."""

from __future__ import annotations

import numpy as np

CT_WINDOW = (-1100.0, 400.0)  # width 1500, level -350: air black, lung to soft tissue in grey, bone white
STRIP = 1 << 20  # pixels converted at a time: whole-image float or RGBA copies of a 100 Mpx image take GBs
SAMPLE = 1 << 24  # pixels a 16-bit image's percentiles come from: every one up to 4096 × 4096, else an even grid


def bounds(sample: np.ndarray, floating: bool, whole: tuple[float, float], key=None):
    """The 0.5 and 99.5 percentiles of a sample of values (overwritten), a float's non-finite values and the colour
    `key` left out; the extremes where they meet, and `whole` (the type's range) where those meet too. 16-bit
    values that are 8-bit levels widened (all multiples of 257 or 256) are not stretched: they give those levels."""
    finite = sample.ravel()
    if floating:
        mask = np.isfinite(finite)
        finite = finite if mask.all() else finite[mask]  # a copy only when some value is not finite
    if key is not None:
        finite = finite[finite != key]
    widened = _widened_eight_bits(finite, whole)
    if widened is not None:
        return widened
    lo, hi = np.percentile(finite, (0.5, 99.5), overwrite_input=True) if finite.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = finite.min(), finite.max()
    if hi <= lo:
        lo, hi = whole
    return lo, hi


WIDENED_LEVELS = 16  # levels a 16-bit picture needs to be read as 8-bit levels widened; fewer are ambiguous


def _widened_eight_bits(values: np.ndarray, whole: tuple[float, float]) -> tuple[float, float] | None:
    """The range that gives 16-bit values back as the 8-bit levels they were widened from (every one a multiple
    of 257, as ImageMagick and im2uint16 write 8-bit pictures in 16 bits, or of 256, v << 8), else None: such a
    file is the 8-bit picture, and stretching it would show the model another picture than the 8-bit file. Not
    with fewer than WIDENED_LEVELS levels: a mask or label image (0 and 4096, say) would come out black."""
    if whole != (0.0, 65535.0) or values.size == 0 or not values.any() or values.min() < 0:
        return None
    few = values[::max(1, values.size // 4096)]  # most 16-bit images fail on these, before all are looked at
    for step in (257.0, 256.0):
        if values.max() <= 255 * step and _levels_of(few, step) and _levels_of(values, step) >= WIDENED_LEVELS:
            return 0.0, 255.0 * step
    return None


def _levels_of(values: np.ndarray, step: float) -> int:
    """How many levels the values are when every one is a whole multiple of `step` (exact: a multiple's quotient
    is a whole number) up to 255 of them, else 0."""
    q = values / np.float32(step)
    if not np.array_equal(q, np.floor(q)):
        return 0
    seen = np.zeros(256, bool)
    seen[q.astype(np.uint8)] = True
    return int(seen.sum())


def levels(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Float32 values as 8-bit levels, `lo` black and `hi` white (NaN as `lo`, infinities as the ends)."""
    arr = np.nan_to_num(arr, nan=lo, posinf=hi, neginf=lo)
    return np.clip((arr - lo) / max(hi - lo, 1e-6) * 255.0, 0, 255).astype(np.uint8)


def stretch_levels(planes: list[np.ndarray], whole: tuple[float, float],
                   keep: np.ndarray | None = None) -> list[np.ndarray]:
    """Planes of values (16-bit, 32-bit, float) as 8-bit levels, stretched together as the model stretches
    16-bit and float grey: by the percentiles of about SAMPLE of their values (`keep`'s pixels only: the opaque
    ones), a strip of rows at a time. `whole` is their type's range. For sources that show such values beside
    alpha or in colour (sources/tiff.py)."""
    step = max(1, int(np.ceil(np.sqrt(planes[0].size * len(planes) / SAMPLE))))
    kept = keep[::step, ::step] if keep is not None else None
    shape = planes[0][::step, ::step].shape
    sample = np.empty((len(planes), int(np.count_nonzero(kept)) if kept is not None else shape[0] * shape[1]),
                      np.float32)  # filled in place: not a float copy of each plane's sample, then of them all
    for k, p in enumerate(planes):
        if kept is None:
            sample[k].reshape(shape)[...] = p[::step, ::step]
        else:
            sample[k] = p[::step, ::step][kept]
    lo, hi = bounds(sample, True, whole)
    del sample
    rows = max(1, STRIP // max(planes[0].shape[1], 1))
    out = [np.empty(p.shape, np.uint8) for p in planes]
    for p, o in zip(planes, out):
        for top in range(0, p.shape[0], rows):
            o[top:top + rows] = levels(p[top:top + rows].astype(np.float32), lo, hi)
    return out


def looks_like_hu(sample: np.ndarray) -> bool:
    """Whether finite values (a slice, or an even sample of one) look like a CT's Hounsfield units: the lowest
    1 % of the body's values (all above -1200) is air or lung (-1200..-700), hardly any value lies between that and
    the padding outside the field of view (-2000, -2048, -3024…), and there are more levels than 8 bits hold.
    MR and PET have no air below zero, MR phase maps spread evenly through the gap, and an 8-bit picture
    stored in a wider type has 256 levels at most. Worked out by counting, without sorting the body in the
    common cases (the same answer as its percentile and unique levels, `_more_levels` and `_air_percentile`)."""
    values = sample.ravel()
    body = values if values.min(initial=0.0) >= -1200 else values[values >= -1200]  # a copy only with padding
    gap = np.count_nonzero(values > -1900) - body.size  # values in -1900..-1200 (NaN in neither count)
    if body.size == 0 or gap > 0.02 * values.size:
        return False
    if not _more_levels(body[::max(1, body.size // 65536)], 256):
        return False
    return _air_percentile(body)


def _more_levels(values: np.ndarray, n: int) -> bool:
    """Whether `values` hold more than n distinct values: an even subset of them is looked at first (what it
    holds, they hold), all of them only when it holds n or fewer."""
    probe = values[::max(1, values.size // (16 * n))]
    return np.unique(probe).size > n or (probe.size < values.size and np.unique(values).size > n)


def _air_percentile(body: np.ndarray) -> bool:
    """Whether the 1st percentile of `body` (values of at least -1200) is at most -700, as np.percentile's
    (linear) gives it: between the i-th and (i+1)-th smallest values, i = floor(0.01 (n-1)), so counting the
    values at most -700 tells, unless that count falls at i, i+1 or i+2 (a margin of one for the index)."""
    i = int(np.floor((body.size - 1) * 0.01))
    air = np.count_nonzero(body <= -700)
    if air >= i + 3:  # the (i+1)-th smallest is at most -700, and the i-th at least -1200
        return True
    if air <= i - 1:  # the i-th smallest is above -700
        return False
    return bool(-1200 <= np.percentile(body, 1) <= -700)
