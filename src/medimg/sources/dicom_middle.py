"""Which frame of a DICOM multi-frame object stands for it: the middle one, unless its per-frame functional groups
(an enhanced MR, CT or PET) say the frames are the slices of several time points or diffusion weightings. Then,
as a 4-D volume is shown (`nifti.axial_slices`), the middle slice (InStackPositionNumber) of the middle time
point (TemporalPositionIndex), or of the first b0 volume (the lowest DiffusionBValue) of a diffusion series."""

from __future__ import annotations

import math

import pydicom

MAX_FRAMES_READ = 20000  # per-frame groups looked at; past that, the middle frame


def middle_frame(ds: pydicom.Dataset, n: int) -> int:
    """The index of the frame to show of the first `n`; n // 2 when the file says nothing more."""
    try:
        found = _positions(ds, n)
    except Exception:  # groups that do not read as the standard has them: the middle frame
        return n // 2
    if found is None:
        return n // 2
    frames = list(range(n))
    bvalues, times, places = found
    b0 = bvalues is not None and len(set(bvalues)) > 1
    if b0:
        lowest = min(bvalues)
        frames = [i for i in frames if bvalues[i] == lowest]
    elif times is not None and len(set(times)) > 1:
        seen = sorted(set(times))
        middle = seen[len(seen) // 2]
        frames = [i for i in frames if times[i] == middle]
    if places is not None and len({places[i] for i in frames}) > 1:
        here = sorted({places[i] for i in frames})
        frames = [i for i in frames if places[i] == here[len(here) // 2]]
    return frames[0] if b0 else frames[len(frames) // 2]


def _positions(ds: pydicom.Dataset, n: int) -> tuple[list | None, list | None, list | None] | None:
    """Each frame's b-value, temporal position and in-stack position (a list None when a frame lacks it), or None
    when the file has no per-frame groups for all its frames, or too many frames to look at."""
    groups = ds.get("PerFrameFunctionalGroupsSequence")
    if groups is None or n < 2 or n > MAX_FRAMES_READ or len(groups) < n:
        return None
    bvalues, times, places = [], [], []
    for group in groups[:n]:
        content = _first(group, "FrameContentSequence")
        diffusion = _first(group, "MRDiffusionSequence")
        bvalues.append(_number(diffusion, "DiffusionBValue"))
        times.append(_number(content, "TemporalPositionIndex"))
        places.append(_number(content, "InStackPositionNumber"))
    return tuple(None if None in values else values for values in (bvalues, times, places))


def _first(group: pydicom.Dataset, keyword: str) -> pydicom.Dataset | None:
    seq = group.get(keyword)
    return seq[0] if seq else None


def _number(item: pydicom.Dataset | None, keyword: str) -> float | None:
    """A finite number, else None (a NaN b-value equals no frame's, and no frame would be left to show)."""
    value = item.get(keyword) if item is not None else None
    try:
        number = float(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None
    return number if number is not None and math.isfinite(number) else None
