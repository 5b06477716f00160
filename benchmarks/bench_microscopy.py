"""Speed of the microscopy sources against their bare libraries in the same run.

    .venv/bin/python benchmarks/bench_microscopy.py [--repeat R]

Each case times the source's item (file on disk → composite image) against a baseline that only reads the
same planes with the format's own library and does nothing else:
  - ImageJ hyperstack (ZCYX 9 × 3 × 1024 × 1024, uint16, LZW): the middle slice's 3 channels merged,
    against tifffile reading those 3 pages;
  - OME-TIFF brightfield pyramid (4096 × 3072 RGB, JPEG tiles, 3 levels): the level that fits, against
    tifffile reading that level;
  - the same of a slide scan (8192 × 6144): its tissue field, against tifffile reading the whole level the field
    and the overview it is found on are read from (2048 px; until session 43 the 4096 px level, which the source
    no longer reads);
  - MRC tomogram (64 × 1024 × 1024 float32): the middle plane, against mrcfile memory-mapping it and
    copying that plane;
  - Zeiss CZI (3 channels × 5 z × 2048 × 2048 uint16; needs the czi extra): against pylibCZIrw reading
    the 3 planes;
  - JPEG XL (2048 × 1536 RGB): against imagecodecs decoding it.
Times are CPU ms, the median of R runs after one not counted (timing.clocks), the fastest wall clock in
brackets; ratios are of CPU times, > 1 means the source is slower than the baseline.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from medimg.sources import ImageItem, Limits, open_input
from timing import Clocks, clocks, ms


def item(path) -> ImageItem:
    items = list(open_input(path, Limits()))
    assert len(items) == 1 and isinstance(items[0], ImageItem), items
    return items[0]


def report(name: str, t_src: Clocks, t_base: Clocks, base: str) -> None:
    print(f"{name}: source {ms(t_src).strip()}; {base} {ms(t_base).strip()} (ratio {t_src.cpu / t_base.cpu:.2f})")


def cells(shape) -> np.ndarray:
    rng = np.random.default_rng(0)
    a = rng.integers(100, 300, shape, dtype=np.uint16)
    yy, xx = np.mgrid[0:shape[-2], 0:shape[-1]]
    for k in range(40):
        cy, cx = rng.integers(0, shape[-2]), rng.integers(0, shape[-1])
        a[..., (yy - cy) ** 2 + (xx - cx) ** 2 < 400] += np.uint16(2000)
    return a


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    import imagecodecs
    import mrcfile
    import tifffile

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        stack = tmp / "stack.tif"
        tifffile.imwrite(stack, cells((9, 3, 1024, 1024)), imagej=True, metadata={"axes": "ZCYX"}, compression="lzw")
        item(stack)
        report("ImageJ ZCYX stack, middle slice merged", clocks(lambda: item(stack), args.repeat),
               clocks(lambda: tifffile.imread(stack, key=[12, 13, 14]), args.repeat), "tifffile reading its 3 pages")

        for side in (4096, 8192):
            pyr = tmp / f"slide{side}.ome.tif"
            base = np.full((side * 3 // 4, side, 3), 235, np.uint8)
            base[side // 8:side * 5 // 8, side // 6:side * 6 // 7] = (200, 120, 180)
            with tifffile.TiffWriter(pyr, ome=True, bigtiff=True) as w:
                opts = {"tile": (256, 256), "photometric": "rgb", "compression": "jpeg"}
                w.write(base, subifds=2, metadata={"axes": "YXS"}, **opts)
                w.write(base[::2, ::2], subfiletype=1, **opts)
                w.write(base[::4, ::4], subfiletype=1, **opts)
            got = item(pyr)
            if "field" in got.metadata:
                level = got.metadata["level"]  # the overview is read from it too (both 1/4 scale or coarser)
                report(f"OME-TIFF slide scan, tissue field from level {level}",
                       clocks(lambda: item(pyr), args.repeat),
                       clocks(lambda: tifffile.imread(pyr, level=level), args.repeat),
                       f"tifffile reading that whole level ({side >> level} px)")
            else:
                report(f"OME-TIFF pyramid, level {got.metadata['level']} ({got.image.width} px)",
                       clocks(lambda: item(pyr), args.repeat),
                       clocks(lambda: tifffile.imread(pyr, level=got.metadata["level"]), args.repeat),
                       "tifffile reading that level")

        tomo = tmp / "tomo.rec"
        with mrcfile.new(tomo) as m:
            m.set_data(np.random.default_rng(1).normal(size=(64, 1024, 1024)).astype(np.float32))

        def bare_mrc():
            with mrcfile.mmap(tomo, mode="r") as m:
                return np.array(m.data[32])

        item(tomo)
        report("MRC tomogram, middle plane", clocks(lambda: item(tomo), args.repeat), clocks(bare_mrc, args.repeat),
               "mrcfile mmap + copy of the plane")

        try:
            from pylibCZIrw import czi as pyczi
        except ImportError:
            print("Zeiss CZI: skipped (pip install -e '.[czi]')")
        else:
            czi = tmp / "cells.czi"
            planes = cells((3, 2048, 2048))
            with pyczi.create_czi(str(czi)) as w:
                for z in range(5):
                    for c in range(3):
                        w.write(planes[c][..., None], plane={"C": c, "Z": z, "T": 0})

            def bare_czi():
                with pyczi.open_czi(str(czi)) as r:
                    return [r.read(plane={"C": c, "Z": 2, "T": 0}) for c in range(3)]

            item(czi)
            report("Zeiss CZI, middle slice merged", clocks(lambda: item(czi), args.repeat),
                   clocks(bare_czi, args.repeat), "pylibCZIrw reading its 3 planes")

        jxl = tmp / "photo.jxl"
        rgb = (np.random.default_rng(2).integers(0, 40, (1536, 2048, 3)) + np.linspace(0, 200, 2048)[None, :, None])
        jxl.write_bytes(imagecodecs.jpegxl_encode(rgb.astype(np.uint8), level=90))
        data = jxl.read_bytes()
        item(jxl)
        report("JPEG XL 2048 × 1536", clocks(lambda: item(jxl), args.repeat),
               clocks(lambda: imagecodecs.jpegxl_decode(data), args.repeat), "imagecodecs decoding it")


if __name__ == "__main__":
    main()
