"""DICOM grey levels (review s37): the Hounsfield-unit test counts instead of sorting and gives the answers it gave
before; the retired layout with High Bit above Bits Stored - 1 (the value in the top bits of its cell, PS3.5 8.1.1)
is read as the standard says; a PET frame's values below zero are drawn black."""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian

import builders as b
from medimg.levels import looks_like_hu
from medimg.sources import Blob, Context, ImageItem, Limits
from medimg.sources import dicom_levels

CR_IMAGE, PET_IMAGE = "1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.128"


def sorted_looks_like_hu(sample: np.ndarray) -> bool:
    """levels.looks_like_hu as it was before s37 (np.unique and np.percentile over the body): the reference."""
    values = sample.ravel()
    body = values[values >= -1200]
    if body.size == 0 or np.count_nonzero((values > -1900) & (values < -1200)) > 0.02 * values.size:
        return False
    if np.unique(body[::max(1, body.size // 65536)]).size <= 256:
        return False
    return bool(-1200 <= np.percentile(body, 1) <= -700)


def image(ds: pydicom.Dataset) -> np.ndarray:
    data = b.dicom_bytes(ds)
    (got,) = Context(Limits()).open_blob(Blob("x.dcm", data, name="x.dcm"))
    assert isinstance(got, ImageItem), got
    return np.asarray(got.image).astype(int)


def grey(sop: str, modality: str, cells: np.ndarray, stored: int, high: int, signed: bool, **tags) -> pydicom.Dataset:
    ds = b.dicom_dataset(ExplicitVRLittleEndian, sop, modality)
    ds.Rows, ds.Columns = cells.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8 * cells.itemsize, stored, high
    ds.PixelRepresentation = int(signed)
    for key, value in tags.items():
        setattr(ds, key, value)
    ds.PixelData = cells.tobytes()
    return ds


# ------------------------------------------------------------------ the HU test, counted


def hu_cases() -> list[tuple[str, np.ndarray]]:
    """Slices (as modality values) at and around every edge of the test: padding, air, metal, too few levels,
    values in the gap, MR, PET and radiographs, and samples whose 1st percentile falls on -700."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[-1:1:128j, -1:1:128j]
    r = np.hypot(x, y)
    body = np.where(r < 0.8, 40.0, -1000.0)
    body[(np.hypot(x - 0.3, y) < 0.2) | (np.hypot(x + 0.3, y) < 0.2)] = -850
    body[(r > 0.6) & (r < 0.65)] = 900
    noisy = np.rint(body + rng.normal(0, 20, r.shape))
    cases = [("ct", noisy), ("ct without noise", body), ("all air", np.rint(-1000 + rng.normal(0, 5, r.shape))),
             ("all padding", np.full(r.shape, -2000.0)), ("metal", np.where(r < 0.1, 3071.0, noisy)),
             ("gap 3 %", np.where(r > 0.97, -1500.0, noisy)), ("gap 1 %", np.where(r > 0.995, -1500.0, noisy)),
             ("mr", np.rint(np.where(r < 0.8, 600.0, 0.0) + np.abs(rng.normal(0, 30, r.shape)))),
             ("mr phase", np.rint(rng.uniform(-4096, 4095, r.shape))),
             ("pet", np.where(r < 0.7, 300.0, 2.0) * rng.gamma(2, 1, r.shape)),
             ("cr", np.rint(2000 + 1500 * np.sin(5 * x) + rng.normal(0, 50, r.shape))),
             ("8 bits in 16", np.rint(rng.uniform(0, 255, r.shape)) * 4 - 1024),
             ("257 levels", (np.arange(r.size) % 257).reshape(r.shape) * 2.0 - 1000)]
    for pad in (-2000, -3024, -2048, -1024):
        cases.append((f"ct padded {pad}", np.where(r > 0.95, float(pad), noisy)))
    n = r.size
    i = int(np.floor((n - 1) * 0.01))  # np.percentile's index of the 1st percentile
    for offset in range(-3, 4):  # as many values at most -700 as that index, and around it
        values = np.linspace(-600, 1500, n)
        values[:i + 1 + offset] = np.linspace(-1100, -700, i + 1 + offset)
        cases.append((f"percentile on -700, {offset:+d}", rng.permutation(values).reshape(r.shape)))
        near = values.copy()
        near[i + 1 + offset:] = np.linspace(-699.5, 1500, n - i - 1 - offset)
        cases.append((f"percentile just past -700, {offset:+d}", rng.permutation(near).reshape(r.shape)))
    return cases


def test_the_hu_test_gives_the_answers_it_gave_before_on_made_up_slices():
    answers = set()
    for name, values in hu_cases():
        for kind in (np.float64, np.float32):
            sample = values.astype(kind)
            want = sorted_looks_like_hu(sample.copy())
            assert looks_like_hu(sample.copy()) == want, (name, kind)
            for extra in (np.nan, np.inf):  # callers pass finite values; the answer is the same with others
                odd = sample.copy()
                odd.flat[::97] = extra
                assert looks_like_hu(odd.copy()) == sorted_looks_like_hu(odd), (name, kind, extra)
            answers.add(want)
    assert answers == {True, False}
    rng = np.random.default_rng(3)
    for k in range(400):  # small samples of values right on the edges
        size = int(rng.integers(1, 300))
        values = rng.choice([-3024, -2000, -1900, -1500, -1200, -1100, -700, -699, 0, 1000], size).astype(float)
        values += rng.integers(0, 3, size) * rng.choice([0, 0.5], size)
        assert looks_like_hu(values.copy()) == sorted_looks_like_hu(values), values


def test_the_hu_test_gives_the_answers_it_gave_before_on_pydicoms_files():
    """Every frame pydicom's bundled files decode (first, middle, last of a multi-frame), as its modality values
    and as a CT without a window would sample them."""
    folder = b.dicom_dir()
    if not folder.is_dir():
        pytest.skip("pydicom's bundled test files are not installed")
    checked = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            try:
                ds = pydicom.dcmread(path, force=True)
                pixels = ds.pixel_array
            except Exception:
                continue
            n = int(ds.get("NumberOfFrames", 1) or 1)
            frames = [(i, pixels[i]) for i in sorted({0, n // 2, n - 1})] if n > 1 and len(pixels) == n \
                else [(0, pixels)]
            for index, frame in frames:
                if frame.ndim != 2 or frame.dtype.kind not in "iuf":
                    continue
                values = dicom_levels._modality(frame, ds, index)
                values = values[np.isfinite(values)]
                assert looks_like_hu(values.copy()) == sorted_looks_like_hu(values), (path.name, index)
                checked += 1
    assert checked >= 30, checked


def test_a_ct_without_a_window_is_still_told_apart_from_an_mr():
    """Through the whole source: the CT in the CT window, the same values as an MR over their range."""
    hu = dict(hu_cases())["ct padded -3024"].astype(np.int16)
    cells = (hu.astype(np.int32) + 1024).astype(np.int16)
    ct = image(grey("1.2.840.10008.5.1.4.1.1.2", "CT", cells, 16, 15, True, RescaleSlope=1, RescaleIntercept=-1024))
    assert (ct == np.rint(np.clip((hu + 1100.0) / 1500, 0, 1) * 255)).all()
    mr = image(grey("1.2.840.10008.5.1.4.1.1.4", "MR", cells, 16, 15, True, RescaleSlope=1, RescaleIntercept=-1024))
    assert mr.min() == 0 and mr.max() == 255 and not (mr == ct).all()


# ------------------------------------------------------------------ High Bit above Bits Stored - 1


def ramp(lo: int, hi: int) -> np.ndarray:
    """A 64 × 64 ramp from lo to hi: each row a level, so a misread value shows as bands."""
    return np.repeat(np.linspace(lo, hi, 64).round().astype(np.int32)[:, None], 64, axis=1)


@pytest.mark.parametrize("stored, high, signed", [(12, 15, False), (12, 13, False), (12, 15, True), (10, 14, True)])
def test_values_in_the_top_bits_of_their_cell_are_read_where_high_bit_says(stored, high, signed):
    """PS3.5 8.1.1's own example (16 bits allocated, 12 stored, high bit 15: the 4 lowest bits are not pixel data)
    and its kin, the unused low bits set (as an overlay in them would): shown as the same values stored the usual
    way (high bit stored - 1), not as pydicom's low Bits Stored bits, which band the ramp."""
    values = ramp(-(1 << (stored - 1)), (1 << (stored - 1)) - 1) if signed else ramp(0, (1 << stored) - 1)
    kind = np.int16 if signed else np.uint16
    usual = image(grey(CR_IMAGE, "CR", values.astype(kind), stored, stored - 1, signed))
    low = (1 << (high + 1 - stored)) - 1  # the unused bits below the value, all set
    cells = ((values << (high + 1 - stored)) | low).astype(np.int32)
    shown = image(grey(CR_IMAGE, "CR", cells.astype(np.uint16).view(kind), stored, high, signed))
    assert (shown == usual).all()
    assert (np.diff(shown[:, 0]) >= 0).all() and shown[0, 0] == 0 and shown[-1, 0] == 255


def test_a_high_bit_it_cannot_place_is_left_as_pydicom_reads_it():
    """High Bit below Bits Stored - 1, or past the cell: not a layout the standard has; the low bits, as before."""
    values = ramp(0, 4095).astype(np.uint16)
    usual = image(grey(CR_IMAGE, "CR", values, 12, 11, False))
    for high in (5, 16):
        assert (image(grey(CR_IMAGE, "CR", values, 12, high, False)) == usual).all()


# ------------------------------------------------------------------ PET below zero


def pet(extreme: int | None) -> tuple[np.ndarray, pydicom.Dataset]:
    """A PET slice (activity × 2 stored, intercept 0): a body, a hot lesion, a little background; `extreme` at
    the centre pixel (-32768 as some scanners write for no value)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[-1:1:96j, -1:1:96j]
    r = np.hypot(x, y)
    activity = np.where(r < 0.7, 300.0, 5.0) * rng.gamma(4, 0.25, r.shape)
    activity[np.hypot(x - 0.2, y + 0.1) < 0.08] = 3000
    cells = np.rint(activity * 2).astype(np.int16)
    if extreme is not None:
        cells[48, 48] = extreme
    return r, grey(PET_IMAGE, "PT", cells, 16, 15, True, RescaleSlope=0.5, RescaleIntercept=0)


def test_one_pixel_far_below_zero_does_not_turn_a_pet_background_grey():
    r, clean = pet(0)  # no activity there: the same range, from 0
    r, broken = pet(-32768)
    want, got = image(clean), image(broken)
    assert np.median(got[r > 0.9]) == 0  # it was 216: light grey
    outside = np.ones(got.shape, bool)
    outside[48, 48] = False
    assert (got[outside] == want[outside]).all() and got[48, 48] == 0


def test_a_pet_without_values_below_zero_is_drawn_over_its_range_as_before():
    r, ds = pet(None)
    activity = ds.pixel_array * 0.5
    want = np.rint((activity - activity.min()) / (activity.max() - activity.min()) * 255)
    assert (image(ds) == want).all()
    mr = grey(PET_IMAGE, "MR", pet(-32768)[1].pixel_array, 16, 15, True)  # other modalities keep their whole range
    assert np.median(image(mr)[r > 0.9]) > 200
