"""What a damaged JPEG costs against the whole file, measured in the same run.

    .venv/bin/python benchmarks/bench_jpeg_errors.py [--side 4000] [--repeat 7]

A camera-size JPEG (4000 × 3000 by default) is read through open_input whole, cut mid-scan (an interrupted
download: an error) and missing only its end marker (read as the whole photo), at the pipeline's decode_side (256,
a reduced DCT scale) and in full. Pillow calls both damaged files truncated; telling them apart decodes the file twice
more in full (files._end_marker_added), whatever decode_side is. Prints the median CPU time of each and its ratio
to reading the whole file the same way (the baseline).
"""

from __future__ import annotations

import argparse
import io

import numpy as np
from PIL import Image

from timing import cpu

from medimg.sources import Blob, ImageItem, Limits, open_input


def photo(side: int) -> bytes:
    h = side * 3 // 4
    x = np.linspace(0, 1, side)[None, :, None]
    y = np.linspace(0, 1, h)[:, None, None]
    waves = (np.sin(x * 7 + y * 5 + np.array([0, 2, 4])) + 1) * 110
    pixels = np.clip(waves + np.random.default_rng(0).normal(0, 12, (h, side, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=4000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    data = photo(args.side)
    files = {"whole": data, "cut mid-scan": data[: len(data) * 6 // 10], "missing only FF D9": data[:-2]}
    for side in (256, 0):
        base = None
        for name, blob in files.items():
            limits = Limits(decode_side=side)
            items = list(open_input(Blob("photo.jpg", blob, name="photo.jpg"), limits))
            what = "image" if isinstance(items[0], ImageItem) else "error"
            t = cpu(lambda: list(open_input(Blob("photo.jpg", blob, name="photo.jpg"), limits)), args.repeat,
                    warm=True)
            base = base or t
            print(f"decode_side {side or 'none (full)'}, {name}: {what}, {t * 1000:.0f} ms CPU "
                  f"({t / base:.2f}x the whole file)")


if __name__ == "__main__":
    main()
