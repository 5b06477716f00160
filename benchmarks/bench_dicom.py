"""Speed of the DICOM source on a CT series against pydicom's bare pixel_array of the same files.

    .venv/bin/python benchmarks/bench_dicom.py [--slices N] [--repeat R]

A folder of N (200) synthetic 512 × 512 int16 CT slices written with pydicom (rescale slope and intercept, a
window on every other slice, PixelPaddingValue outside the field of view on every third) read through
`open_input` as the pipeline does, each slice to an 8-bit image, against a baseline that only reads each file
with `dcmread(...).pixel_array` (no modality LUT, window or 8 bits). The source runs twice: with `to_image`'s
per-value lookup (the default) and with its general strip path (`by_value=False`); the conversion is also timed
alone on the decoded frames. Median CPU time of R runs after one not counted (timing.clocks; the fastest wall
clock in brackets); ratios are of CPU times, > 1 means the source is slower than the baseline.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from pathlib import Path

import numpy as np
import pydicom

from medimg.sources import ImageItem, dicom, open_input
from timing import clocks

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


def ct_series(folder: Path, n: int, side: int = 512) -> list[Path]:
    """n slices of a body in HU (air, soft tissue with noise, a bone ring), stored as HU + 1024."""
    from builders import dicom_dataset
    from pydicom.uid import ExplicitVRLittleEndian

    rng = np.random.default_rng(0)
    y, x = np.mgrid[-1:1:side * 1j, -1:1:side * 1j]
    fov = x ** 2 + y ** 2 > 0.98
    paths = []
    for k in range(n):
        s = 0.75 + 0.1 * np.sin(k / 30)
        body = (x / s) ** 2 + (y / (0.8 * s)) ** 2
        hu = np.where(body < 1, 40 + 30 * np.sin(9 * x + k / 20) * np.cos(7 * y), -1000.0)
        hu[(body > 0.7) & (body < 0.8)] = 900
        stored = (hu + 1024 + rng.normal(0, 25, hu.shape)).astype(np.int16)
        ds = dicom_dataset(ExplicitVRLittleEndian, CT_IMAGE, "CT")
        ds.Rows = ds.Columns = side
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept, ds.InstanceNumber = 1, -1024, k + 1
        if k % 2 == 0:
            ds.WindowCenter, ds.WindowWidth = 40, 400
        if k % 3 == 0:
            stored[fov] = -2000
            ds.PixelPaddingValue = -2000
        ds.PixelData = stored.tobytes()
        paths.append(folder / f"IM{k + 1:04d}.dcm")
        pydicom.dcmwrite(paths[-1], ds, enforce_file_format=True)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="medimg-bench-") as tmp:
        paths = ct_series(Path(tmp), args.slices)
        n, size = len(paths), sum(p.stat().st_size for p in paths)

        def source() -> None:
            images = [item for item in open_input(tmp) if isinstance(item, ImageItem)]
            assert len(images) == n, len(images)

        def bare() -> None:
            for path in paths:
                pydicom.dcmread(path).pixel_array

        by_value = clocks(source, args.repeat)  # its first pass imports the sources and warms the file cache
        original = dicom.to_image
        dicom.to_image = functools.partial(original, by_value=False)  # open_dicom's general strip path
        try:
            by_strips = clocks(source, args.repeat)
        finally:
            dicom.to_image = original
        base = clocks(bare, args.repeat)
        frames = [(ds, ds.pixel_array) for ds in map(pydicom.dcmread, paths)]
        alone = {flag: clocks(lambda: [dicom.to_image(arr, ds, by_value=flag) for ds, arr in frames], args.repeat).cpu
                 for flag in (True, False)}

    ms = 1000 / n
    print(f"CT series: {n} slices 512×512 int16 ({size / 1e6:.0f} MB; rescale, window on 1/2, PixelPaddingValue "
          f"on 1/3); CPU ms per slice, median of {args.repeat} (fastest wall clock)")
    for name, t in (("open_input (folder), per-value lookup", by_value), ("open_input (folder), strip path", by_strips),
                    ("baseline dcmread + pixel_array", base)):
        print(f"  {name:37s} {t.cpu * ms:6.2f} ms ({t.wall * ms:6.2f}; slowest {t.spread:.2f}×)  "
              f"ratio {t.cpu / base.cpu:5.2f}")
    print(f"  to_image alone: per-value {alone[True] * ms:5.2f} ms, strips {alone[False] * ms:5.2f} ms "
          f"({alone[False] / alone[True]:.1f}× faster); whole source {by_strips.cpu / by_value.cpu:.2f}× faster")


if __name__ == "__main__":
    main()
