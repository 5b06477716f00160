"""Speed of the camera and scanner formats session 43 added, against decoding them bare in the same run.

    .venv/bin/python benchmarks/bench_media.py [--side 4000] [--repeat 3]

- JPEG 2000 (sources/jpeg2000.py): a photo-like RGB image of side × 3/4 side (4000 × 3000 by default; lossy, 6
  resolutions, as Pillow and most cameras write it) read through open_input at the pipeline's decode_side (256:
  OpenJPEG stops at a lower resolution level), against the baseline without that: Pillow decoding it in full and
  resizing to the same size. Also against Pillow's bare decode at the same level (the floor), and the source
  decoding in full (decode_side 0) against Pillow's bare full decode.
- A 12-bit grey JPEG (sources/deep_jpeg.py, as DICOM pixel data saved as .jpg) of side × 3/4 side: the source
  against imagecodecs' bare `jpeg8_decode` of the same bytes. The source decodes it a second time to tell a cut
  file from a whole one, and has no reduced decode.

Median CPU time of R runs after one not counted (timing.clocks; the fastest wall clock in brackets); ratios are of
CPU times, < 1 means the source is faster than the baseline.
"""

from __future__ import annotations

import argparse
import io

import numpy as np
from PIL import Image

from medimg.sources import Blob, ImageItem, Limits, open_input
from timing import clocks, ms


def photo(w: int, h: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    waves = (np.sin(x * rng.uniform(4, 12) + y * rng.uniform(4, 12) + rng.uniform(0, 6, 3)) + 1) * 110
    return np.clip(waves + rng.normal(0, 10, (h, w, 3)).astype(np.float32), 0, 255).astype(np.uint8)


def item(data: bytes, name: str, decode_side: int) -> ImageItem:
    [got] = open_input(Blob(name, data, name=name), Limits(decode_side=decode_side))
    assert isinstance(got, ImageItem), got
    return got


def jpeg2000(side: int, repeat: int) -> None:
    w, h = side, side * 3 // 4
    buf = io.BytesIO()
    Image.fromarray(photo(w, h)).save(buf, "JPEG2000", irreversible=True, quality_mode="rates",
                                      quality_layers=[20])
    data = buf.getvalue()
    small = item(data, "photo.jp2", 256)
    size, level = small.image.size, 0
    while (w + (1 << level) - 1) >> level > size[0]:
        level += 1

    def bare(reduce: int = 0):
        with Image.open(io.BytesIO(data)) as im:
            im.reduce = reduce  # Pillow's JPEG 2000 option: OpenJPEG stops 2**reduce smaller
            im.load()
            return im

    reduced = clocks(lambda: item(data, "photo.jp2", 256), repeat)
    resized = clocks(lambda: bare().resize(size, Image.BILINEAR), repeat)
    floor = clocks(lambda: bare(level), repeat)
    full = clocks(lambda: item(data, "photo.jp2", 0), repeat)
    whole = clocks(lambda: bare(), repeat)
    print(f"JPEG 2000 {w}×{h} ({len(data) / 1e6:.1f} MB), decode_side 256 → {size[0]}×{size[1]} (level {level})")
    print(f"  baseline, Pillow full decode + resize  {ms(resized)}")
    print(f"  medimg, reduced decode                 {ms(reduced)}  {reduced.cpu / resized.cpu:.3g}x the baseline")
    print(f"  Pillow bare decode at that level       {ms(floor)}  medimg {reduced.cpu / floor.cpu:5.2f}x it")
    print(f"  medimg, decode_side 0 (in full)        {ms(full)}  {full.cpu / whole.cpu:5.2f}x Pillow's bare "
          f"full decode {ms(whole)}")


def deep_jpeg(side: int, repeat: int) -> None:
    import imagecodecs

    w, h = side, side * 3 // 4
    grey = (photo(w, h)[..., 0].astype(np.uint16) * 16 + np.arange(w, dtype=np.uint16) % 16)  # 12 bits
    data = imagecodecs.jpeg8_encode(grey, bitspersample=12, level=90)
    assert item(data, "ct.jpg", 256).image.size == (w, h)  # no reduced decode
    ours = clocks(lambda: item(data, "ct.jpg", 256), repeat)
    bare = clocks(lambda: imagecodecs.jpeg8_decode(data), repeat)
    print(f"12-bit grey JPEG {w}×{h} ({len(data) / 1e6:.1f} MB), decoded in full")
    print(f"  baseline, imagecodecs jpeg8_decode      {ms(bare)}")
    print(f"  medimg                                  {ms(ours)}  {ours.cpu / bare.cpu:5.2f}x the baseline")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=4000, help="width of the images (height 3/4 of it)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    jpeg2000(args.side, args.repeat)
    deep_jpeg(args.side, args.repeat)


if __name__ == "__main__":
    main()
