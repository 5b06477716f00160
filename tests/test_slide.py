"""Whole-slide images: pyramidal tiled TIFFs written here by tifffile, read by OpenSlide as an Aperio scanner's."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import builders as b
from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input

tifffile = pytest.importorskip("tifffile")


def write_slide(path: Path, mpp: float | None = 0.5, size=(6144, 4096), label: bool = False,
                compression: str = "zlib") -> Path:
    """A 3-level slide: white glass, one pink tissue ellipse with purple nuclei left of centre, a black
    scanner margin on the right; Aperio's description (with its MPP) unless mpp is None."""
    w, h = size
    rng = np.random.default_rng(0)
    img = np.full((h, w, 3), 244, np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    tissue = ((yy - h * 0.5) / (h * 0.3)) ** 2 + ((xx - w * 0.35) / (w * 0.2)) ** 2 < 1
    img[tissue] = (226, 150, 198)
    img[(rng.random((h, w)) < 0.02) & tissue] = (92, 42, 140)
    img[:, int(w * 0.9):] = 0
    desc = (f"Aperio Image Library v12.0.15 \r\n{w}x{h} [0,0 {w}x{h}] (256x256) JPEG/RGB Q=70|AppMag = 20"
            + (f"|MPP = {mpp}" if mpp else "") + "|Date = 01/02/26|User = jane.doe")
    with tifffile.TiffWriter(path) as tw:
        tw.write(img, tile=(256, 256), compression=compression, description=desc if mpp else None,
                 photometric="rgb", metadata=None)
        for d in (4, 16):
            tw.write(img[::d, ::d].copy(), tile=(256, 256), compression="zlib", photometric="rgb", subfiletype=1,
                     metadata=None)
        if label:  # the slide label: names the patient, must never be read
            tw.write(np.full((300, 300, 3), 30, np.uint8), compression="zlib", photometric="rgb",
                     subfiletype=1, description="label 300x300", metadata=None)
    return path


def saturation(item: ImageItem) -> float:
    px = np.asarray(item.image.convert("RGB"), np.int16)
    return float((px.max(axis=2) - px.min(axis=2)).mean())


def test_an_aperio_slide_gives_one_tissue_field_at_about_10x(tmp_path):
    path = write_slide(tmp_path / "case.svs", label=True)
    (item,) = open_input(path, Limits(max_input_bytes=10_000))  # far bigger than that: read by path, lazily
    assert isinstance(item, ImageItem), getattr(item, "error", item)
    assert item.format == "WSI (aperio)" and item.image.size == (512, 512)
    assert item.full_size == (6144, 4096) and (item.width, item.height) == (6144, 4096)
    meta = item.metadata
    assert meta["mpp"] == 0.5 and meta["objective_power"] == 20 and meta["levels"] == 3
    assert meta["field"]["size"] == 1024 and meta["field"]["downsample"] == 2  # 512 px at 1 µm
    assert meta["tissue_fraction"] > 0.9 and saturation(item) > 40  # tissue, not glass or margin
    x, y = meta["field"]["x"] + 512, meta["field"]["y"] + 512
    assert ((y - 2048) / 1228.8) ** 2 + ((x - 2150.4) / 1228.8) ** 2 < 1  # the field's centre is on the tissue
    assert item.locator == f"tissue field 512 µm wide at x {meta['field']['x']}, y {meta['field']['y']}"
    assert "jane" not in str(meta) and "Date" not in str(meta)  # technical properties only


def test_slide_without_pixel_size_and_slide_bytes_cap(tmp_path):
    path = write_slide(tmp_path / "plain.svs", mpp=None)
    (item,) = open_input(path)
    assert isinstance(item, ImageItem), getattr(item, "error", item)
    assert item.metadata["mpp"] is None and item.metadata["field"]["downsample"] == 4
    assert item.locator.startswith("tissue field at 1/4 scale, at x ") and saturation(item) > 40
    (err,) = open_input(path, Limits(max_slide_bytes=1000))
    assert isinstance(err, ItemError) and "max_slide_bytes" in err.error


def test_slides_in_folders_zips_and_uploads(tmp_path):
    folder = tmp_path / "cases"
    folder.mkdir()
    data = write_slide(folder / "a.svs").read_bytes()
    (folder / "note.png").write_bytes(b.image_bytes("PNG"))
    got = list(open_input(folder))
    assert [(Path(i.origin).name, i.format) for i in got] == [("a.svs", "WSI (aperio)"), ("note.png", "PNG")]
    (up,) = open_input(Blob("upload.svs", data, name="upload.svs"))
    assert isinstance(up, ImageItem) and up.origin == "upload.svs" and up.format == "WSI (aperio)"
    assert np.array_equal(np.asarray(up.image), np.asarray(got[0].image))
    (member,) = open_input(Blob("s.zip", b.zip_bytes({"slides/b.svs": data}), name="s.zip"))
    assert isinstance(member, ImageItem) and member.origin == "s.zip:slides/b.svs"


def test_broken_slides_give_clear_errors(tmp_path):
    bad = tmp_path / "bad.svs"
    bad.write_bytes(b"II*\x00" + bytes(5000))
    (err,) = open_input(bad)
    assert isinstance(err, ItemError) and "whole-slide" in err.error
    cut = tmp_path / "cut.svs"
    cut.write_bytes(write_slide(tmp_path / "whole.svs").read_bytes()[:40_000])
    (err,) = open_input(cut)
    assert isinstance(err, ItemError) and err.origin == str(cut)
    # an ordinary TIFF (no .svs name, no Aperio description) stays with the image source
    plain = tmp_path / "photo.tif"
    plain.write_bytes(b.image_bytes("TIFF"))
    (item,) = open_input(plain)
    assert isinstance(item, ImageItem) and item.format == "TIFF"


def _set_tag(data: bytearray, tag: int, value: int) -> None:
    """Overwrite the first value of `tag` in a little-endian TIFF's first IFD (LONG or SHORT, in place or at its
    offset)."""
    ifd = struct.unpack_from("<I", data, 4)[0]
    for i in range(struct.unpack_from("<H", data, ifd)[0]):
        at = ifd + 2 + 12 * i
        found, kind, count, field = struct.unpack_from("<HHII", data, at)
        if found == tag:
            where = at + 8 if count * (4 if kind == 4 else 2) <= 4 else field
            struct.pack_into("<I" if kind == 4 else "<H", data, where, value)
            return
    raise KeyError(tag)


@pytest.mark.parametrize("tag,value,said", [
    (325, 0xFFFFFF00, "damaged slide: image 1 claims a tile of 4,294,967,040 bytes in a file of"),
    (322, 67_109_120, "tiles of 67,109,120×256 pixels in image 1 of the slide, over the max_pixels cap"),
])
def test_slides_whose_tiles_would_end_the_process_are_refused(tmp_path, tag, value, said):
    """OpenSlide allocates a tile's bytes and pixels as the file says, through GLib, which aborts the whole process
    when it cannot (found by fuzzing): such files are refused from their tags first. In a child process, so that
    a regression shows as a failed test rather than a dead test run."""
    data = bytearray(write_slide(tmp_path / "whole.svs", size=(1024, 768), compression="jpeg").read_bytes())
    _set_tag(data, tag, value)
    (tmp_path / "bad.svs").write_bytes(data)
    child = "import sys; from medimg.sources import open_input; print([getattr(i, 'error', None) for i in open_input(sys.argv[1])])"
    run = subprocess.run([sys.executable, "-c", child, str(tmp_path / "bad.svs")], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and said in run.stdout, (run.returncode, run.stdout, run.stderr[-500:])


def test_a_tiff_of_more_images_than_a_slide_has_is_refused(tmp_path, monkeypatch):
    """Every TIFF image is checked before OpenSlide opens the file; a chain of thousands is no slide."""
    from medimg.sources import slide

    monkeypatch.setattr(slide, "MAX_IFDS", 2)
    (err,) = open_input(write_slide(tmp_path / "levels.svs", size=(1024, 768)))  # three levels
    assert err.error == "more than 2 images in one TIFF: not a whole-slide image; not read"


def margin_slide(path: Path, size=(1536, 1024), margin: float = 0.1) -> Path:
    """A 2-level Aperio slide at 1 µm per pixel: white glass, a pink tissue ellipse right of centre, and a black
    scanner margin down the left side, `margin` of its width."""
    w, h = size
    img = np.full((h, w, 3), 244, np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    img[((yy - h * 0.5) / (h * 0.4)) ** 2 + ((xx - w * 0.7) / (w * 0.25)) ** 2 < 1] = (226, 150, 198)
    img[:, : int(w * margin)] = 0
    desc = f"Aperio Image Library v12.0.15 \r\n{w}x{h} [0,0 {w}x{h}] (256x256) JPEG/RGB Q=70|AppMag = 10|MPP = 1.0"
    with tifffile.TiffWriter(path) as tw:
        tw.write(img, tile=(256, 256), compression="zlib", description=desc, photometric="rgb", metadata=None)
        tw.write(img[::4, ::4].copy(), tile=(256, 256), compression="zlib", photometric="rgb", subfiletype=1,
                 metadata=None)
    return path


def pinkness(item: ImageItem) -> float:
    px = np.asarray(item.image.convert("RGB"), np.int16)
    return float((px.max(axis=2) - px.min(axis=2)).mean())


def test_an_aperio_slide_named_tif_is_read_as_a_slide(tmp_path):
    """An Aperio slide saved as .tif (not .svs) is known by its description and gives one tissue field."""
    (item,) = open_input(margin_slide(tmp_path / "case.tif"))
    assert isinstance(item, ImageItem), getattr(item, "error", item)
    assert item.format == "WSI (aperio)" and item.image.size == (512, 512)


def test_the_field_is_taken_from_tissue_not_from_a_wide_black_scanner_margin(tmp_path):
    """Black scanner padding is not tissue: a margin wider than the field does not draw the field onto it."""
    (item,) = open_input(margin_slide(tmp_path / "case.svs", margin=0.4))
    assert isinstance(item, ImageItem), getattr(item, "error", item)
    field = item.metadata["field"]
    assert field["x"] > 0.4 * 1536 and item.metadata["tissue_fraction"] > 0.8 and pinkness(item) > 40


def test_parts_of_a_slide_the_scanner_did_not_store_come_out_white_as_glass(tmp_path):
    """Tiles holding no data are transparent in OpenSlide: the field shows them white like glass, not black."""
    path = margin_slide(tmp_path / "sparse.svs")
    with tifffile.TiffFile(path) as tif:
        counts = tif.pages[0].tags["TileByteCounts"]
        at, n = counts.valueoffset, counts.count
    data = bytearray(path.read_bytes())
    data[at:at + 4 * n] = bytes(4 * n)  # no full-resolution tile stored
    path.write_bytes(bytes(data))
    (item,) = open_input(path)
    assert isinstance(item, ImageItem), getattr(item, "error", item)
    assert np.asarray(item.image).min() > 240


def jumping_slide(path: Path, mpp: float) -> Path:
    """An 8192 px Aperio slide whose levels are 4× and 64× smaller: tissue-pink tiles on glass, written a tile at
    a time (the same tile each time)."""
    tile = np.full((256, 256, 3), 244, np.uint8)
    tile[64:192, 64:192] = (226, 150, 198)
    desc = f"Aperio Image Library v12.0.15 \r\n8192x8192 [0,0 8192x8192] (256x256) JPEG/RGB Q=70|MPP = {mpp}"
    with tifffile.TiffWriter(path) as tw:
        for side, more in ((8192, {"description": desc}), (2048, {"subfiletype": 1}), (128, {"subfiletype": 1})):
            tw.write((tile for _ in range(((side + 255) // 256) ** 2)), shape=(side, side, 3), dtype=np.uint8,
                     tile=(256, 256), compression="zlib", photometric="rgb", metadata=None, **more)
    return path


@pytest.mark.parametrize("mpp", [0.5, 0.001])
def test_a_slide_is_read_within_max_pixels_when_its_levels_jump(tmp_path, monkeypatch, mpp):
    """The smallest level is within max_pixels, but OpenSlide's thumbnail reads the level nearest its scale whole
    (here the 4× one: 4.2 million pixels; a 52 MB slide of this shape took 2.2 GB), and an odd MPP makes the field
    span the slide: both are read from a level within the cap."""
    import openslide

    read, real = [], openslide.OpenSlide.read_region
    monkeypatch.setattr(openslide.OpenSlide, "read_region",
                        lambda self, at, level, size: (read.append(size[0] * size[1]), real(self, at, level, size))[1])
    (item,) = open_input(jumping_slide(tmp_path / "jump.svs", mpp), Limits(max_pixels=2_000_000))
    assert isinstance(item, ImageItem), getattr(item, "error", item)
    assert read and max(read) <= 2_000_000, read


def test_an_overview_is_read_from_a_level_two_steps_past_the_one_nearest_its_scale(tmp_path, monkeypatch):
    """Levels of 8192, 2048, 480 and 128 px: the overview's scale is nearest the 2048 level, and the 480 one is
    over max_pixels too; the overview steps on until a level is within it, not one level only (mutation round
    s32_mut2)."""
    import openslide

    tile = np.full((256, 256, 3), 244, np.uint8)
    tile[64:192, 64:192] = (226, 150, 198)
    desc = "Aperio Image Library v12.0.15 \r\n8192x8192 [0,0 8192x8192] (256x256) JPEG/RGB Q=70|MPP = 0.5"
    path = tmp_path / "steps.svs"
    with tifffile.TiffWriter(path) as tw:
        for side, more in ((8192, {"description": desc}), (2048, {"subfiletype": 1}), (480, {"subfiletype": 1}),
                           (128, {"subfiletype": 1})):
            tw.write((tile for _ in range(((side + 255) // 256) ** 2)), shape=(side, side, 3), dtype=np.uint8,
                     tile=(256, 256), compression="zlib", photometric="rgb", metadata=None, **more)
    read, real = [], openslide.OpenSlide.read_region
    monkeypatch.setattr(openslide.OpenSlide, "read_region",
                        lambda self, at, level, size: (read.append(size[0] * size[1]), real(self, at, level, size))[1])
    (item,) = open_input(path, Limits(max_pixels=200_000))
    assert isinstance(item, ImageItem), getattr(item, "error", item)
    assert read and max(read) <= 200_000, read
