"""Speed of the volume and whole-slide sources against the bare libraries in the same run.

    .venv/bin/python benchmarks/bench_volumes.py [--repeat R]

Volumes: one 256 × 256 × 160 int16 head-like volume written as NIfTI (.nii and .nii.gz), MGH, NRRD (gzip)
and MetaImage (zlib); each source's time to the middle axial slice as an 8-bit image, against a baseline
that only reads the bytes into an array with the format's own library (nibabel, pynrrd; numpy for
MetaImage), slices it and scales it to 8 bits. Slides: a 16k × 12k three-level pyramidal TIFF (Aperio
description, zlib tiles, written by tifffile) read by path; the source's time to its tissue field against
OpenSlide's bare `get_thumbnail` and `read_region` of the same field. A detached .mhd/.raw pair against numpy
reading the .raw.
A DICOM whole-slide file's field against Pillow decoding and pasting the same tiles. Ratios > 1 mean the
source is slower than the baseline. Times are CPU ms, the median of R runs after one not counted
(timing.clocks), the fastest wall clock in brackets; ratios are of CPU times.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import zlib
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np

from medimg.sources import Blob, Context, ImageItem, Limits, open_input
from timing import clocks, ms

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def head(shape=(256, 256, 160)) -> np.ndarray:
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, s, dtype=np.float32) for s in shape), indexing="ij")
    vol = ((x ** 2 + y ** 2 + z ** 2) < 0.8) * (400 + 300 * np.sin(8 * x) * np.cos(6 * y))
    return vol.astype(np.int16)


def to8(plane: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(plane, (0.5, 99.5))
    return (np.clip((plane - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)


def volumes(tmp: Path, repeat: int) -> None:
    from test_volumes import mha  # the MetaImage layout the tests write

    vol = head()
    nii = nib.Nifti1Image(vol, np.eye(4)).to_bytes()
    mgh = nib.MGHImage(vol, np.eye(4)).to_bytes()
    nrrd_path = tmp / "v.nrrd"
    nrrd.write(str(nrrd_path), vol, {"space": "RAS", "space directions": np.eye(3), "encoding": "gzip"})
    files = {"v.nii": nii, "v.nii.gz": gzip.compress(nii, 6), "v.mgh": mgh, "v.nrrd": nrrd_path.read_bytes(),
             "v.mha": mha(vol[::-1, ::-1].copy(), compressed=True)}

    def bare(name: str, data: bytes) -> None:
        if name.startswith("v.nii"):
            img = nib.Nifti1Image.from_bytes(gzip.decompress(data) if name.endswith(".gz") else data)
            plane = np.asarray(img.dataobj[:, :, img.shape[2] // 2])
        elif name == "v.mgh":
            img = nib.MGHImage.from_bytes(data)
            plane = np.asarray(img.dataobj[:, :, img.shape[2] // 2])
        elif name == "v.nrrd":
            arr, _ = nrrd.read(str(nrrd_path))
            plane = arr[:, :, arr.shape[2] // 2]
        else:
            start = data.index(b"ElementDataFile = LOCAL\n") + len(b"ElementDataFile = LOCAL\n")
            arr = np.frombuffer(zlib.decompress(data[start:]), "<i2").reshape(vol.shape[::-1])
            plane = arr[arr.shape[0] // 2]
        to8(plane)

    ctx = Context(Limits())
    print(f"volume {vol.shape[0]}×{vol.shape[1]}×{vol.shape[2]} int16; CPU ms, median of {repeat} (fastest wall clock)")
    for name, data in files.items():
        def source() -> None:
            (item,) = list(ctx.open_blob(Blob(name, data, name=name)))
            assert isinstance(item, ImageItem), item
        s, b = clocks(source, repeat), clocks(lambda: bare(name, data), repeat)
        print(f"  {name:9s} {len(data) / 1e6:6.1f} MB  source {ms(s)}  bare library {ms(b)}  "
              f"ratio {s.cpu / b.cpu:5.2f}")


def slides(tmp: Path, repeat: int) -> None:
    import openslide
    import tifffile

    w, h = 16384, 12288
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h // 16, 0:w // 16]
    small = np.full((h // 16, w // 16, 3), 244, np.uint8)
    small[((yy - h / 32) / (h / 64)) ** 2 + ((xx - w / 40) / (w / 64)) ** 2 < 1] = (226, 150, 198)
    img = np.repeat(np.repeat(small, 16, axis=0), 16, axis=1)
    img[rng.random((h, w)) < 0.002] = (92, 42, 140)
    path = tmp / "slide.svs"
    desc = f"Aperio Image Library v12\r\n{w}x{h} (256x256) JPEG/RGB Q=70|AppMag = 20|MPP = 0.5"
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        tw.write(img, tile=(256, 256), compression="zlib", description=desc, photometric="rgb", metadata=None)
        for d in (4, 16, 64):
            tw.write(img[::d, ::d].copy(), tile=(256, 256), compression="zlib", photometric="rgb", subfiletype=1,
                     metadata=None)
    del img

    def source() -> ImageItem:
        (item,) = list(open_input(path))
        assert isinstance(item, ImageItem), item
        return item

    field = source().metadata["field"]

    def bare() -> None:  # the same two reads by OpenSlide alone: the overview, then the field the source found
        with openslide.OpenSlide(str(path)) as slide:
            slide.get_thumbnail((512, 512))
            level = slide.get_best_level_for_downsample(max(field["size"] / 512, 1.0))
            side = round(field["size"] / slide.level_downsamples[level])
            slide.read_region((field["x"], field["y"]), level, (side, side))

    s, b = clocks(source, repeat), clocks(bare, repeat)
    print(f"slide {w}×{h}, {path.stat().st_size / 1e6:.0f} MB on disk; CPU ms, median of {repeat} (fastest wall clock)")
    print(f"  tissue field (source) {ms(s)}  OpenSlide's thumbnail + read_region of that field {ms(b)}  "
          f"ratio {s.cpu / b.cpu:5.2f}")


def detached(tmp: Path, repeat: int) -> None:
    """A LUNA16-style .mhd/.raw pair read by path, against numpy reading the .raw and slicing it."""
    from test_volumes import detached_mha

    vol = head()[::-1, ::-1].copy()
    header = detached_mha(tmp, vol)
    raw = tmp / "v.raw"

    def source() -> None:
        (item,) = list(open_input(header))
        assert isinstance(item, ImageItem), item

    def bare() -> None:
        arr = np.fromfile(raw, "<i2").reshape(vol.shape[::-1])
        to8(arr[arr.shape[0] // 2])

    s, b = clocks(source, repeat), clocks(bare, repeat)
    print(f"detached MetaImage v.mhd + v.raw ({raw.stat().st_size / 1e6:.1f} MB); CPU ms, median of {repeat} "
          f"(fastest wall clock)")
    print(f"  source {ms(s)}  bare numpy {ms(b)}  ratio {s.cpu / b.cpu:5.2f}")


def dicom_slide(repeat: int) -> None:
    """A DICOM whole-slide file (TILED_FULL, 32 × 24 JPEG tiles of 256 px at 0.25 µm/px): the source's field
    (tiles pasted around the one with most tissue, about 1 µm/px) against Pillow decoding just the tiles
    that field needs, and against the single tile the source gave before."""
    import io

    from builders import jpeg_slide_dicom
    from PIL import Image

    across, down, tile = 32, 24, 256
    rng = np.random.default_rng(0)
    frames = []
    for i in range(across * down):
        r, c = divmod(i, across)
        arr = np.full((tile, tile, 3), 242, np.uint8)
        if ((r - down / 2) / (down / 3)) ** 2 + ((c - across / 2) / (across / 3)) ** 2 < 1:
            arr[:] = (224, 150, 196)
            arr[rng.random((tile, tile)) < 0.01] = (90, 40, 140)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=80)
        frames.append(buf.getvalue())
    data = jpeg_slide_dicom(frames, across, tile, spacing_mm=0.00025)
    ctx = Context(Limits())
    field: dict = {}

    def source() -> None:
        (item,) = list(ctx.open_blob(Blob("slide.dcm", data, name="slide.dcm")))
        assert isinstance(item, ImageItem) and "field" in item.metadata, item
        field.update(item.metadata["field"], frame=item.locator)

    s = clocks(source, repeat)
    x0, y0, side = field["left"], field["top"], field["side"]
    needed = [i for i in range(len(frames)) if (i % across) * tile + tile > x0 and (i % across) * tile < x0 + side
              and (i // across) * tile + tile > y0 and (i // across) * tile < y0 + side]

    def bare() -> None:
        canvas = Image.new("RGB", (side, side))
        for i in needed:
            canvas.paste(Image.open(io.BytesIO(frames[i])).convert("RGB"),
                         ((i % across) * tile - x0, (i // across) * tile - y0))
        canvas.resize((512, 512), Image.Resampling.BOX)

    def one_tile() -> None:
        Image.open(io.BytesIO(frames[len(frames) // 2])).convert("RGB")

    b, t = clocks(bare, repeat), clocks(one_tile, repeat)
    print(f"DICOM whole-slide {across * tile}×{down * tile} ({len(data) / 1e6:.1f} MB, {len(frames)} JPEG tiles); "
          f"CPU ms, median of {repeat} (fastest wall clock)")
    print(f"  field of {field['tiles']} tiles ({field['frame']}, {field['um_per_pixel']} µm/px) {ms(s)}  "
          f"Pillow decoding and pasting those tiles {ms(b)}  ratio {s.cpu / b.cpu:5.2f}  "
          f"(one tile alone {t.cpu * 1000:.1f} ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="medimg-bench-") as tmp:
        volumes(Path(tmp), args.repeat)
        detached(Path(tmp), args.repeat)
        dicom_slide(args.repeat)
        slides(Path(tmp), args.repeat)


if __name__ == "__main__":
    main()
