"""Microscopy TIFFs written here by tifffile: ImageJ hyperstacks and OME-TIFF come out as one colour
composite per shown plane, as Fiji shows them, not one grey item per channel page."""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest

import builders as b
from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input

tifffile = pytest.importorskip("tifffile")


def stack(shape=(5, 3, 96, 128), seed: int = 0) -> np.ndarray:
    """uint16 planes (leading axes …, C, Y, X): channel c lights square c; the z index is written into the
    top-left corner of every plane so a test can tell which slice came out."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 60, shape, dtype=np.uint16)
    c_axis = len(shape) - 3
    for c in range(shape[c_axis]):
        idx = [slice(None)] * len(shape)
        idx[c_axis] = c
        idx[-2], idx[-1] = slice(10 + 25 * c, 30 + 25 * c), slice(10 + 30 * c, 34 + 30 * c)
        a[tuple(idx)] = 3000 + 500 * c
    return a


def tiff(array, **kw) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, array, **kw)
    return buf.getvalue()


def items_of(data: bytes, name: str = "cells.tif", **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def colour_at(item: ImageItem, c: int) -> tuple:
    return tuple(int(v) for v in np.asarray(item.image)[20 + 25 * c, 22 + 30 * c])


def test_imagej_hyperstack_is_one_composite_of_the_middle_slice():
    item, = items_of(tiff(stack(), imagej=True, metadata={"axes": "ZCYX"}))
    assert isinstance(item, ImageItem) and item.format == "ImageJ TIFF" and item.locator == "z 3 of 5"
    assert item.image.mode == "RGB" and item.image.size == (128, 96)
    red, green, blue = (colour_at(item, c) for c in range(3))
    assert red[0] > 200 and red[1] < 60 and green[1] > 200 and green[0] < 60 and blue[2] > 200 and blue[0] < 60
    assert item.metadata["axes"] == "ZCYX" and item.metadata["channels"] == 3 and item.metadata["dtype"] == "uint16"


def test_all_frames_gives_every_z_slice_and_time_is_at_its_middle():
    a = stack((3, 4, 2, 64, 80))  # T, Z, C
    for t in range(3):
        for z in range(4):
            x = 5 * (4 * t + z)
            a[t, z, 0, 50:60, x:x + 4] = 4000  # a bar whose place says which plane this is

    def plane(item):
        return int(np.argmax(np.asarray(item.image)[55, :, 0] > 200)) // 5

    items = items_of(tiff(a, imagej=True, metadata={"axes": "TZCYX"}), all_frames=True)
    assert [i.locator for i in items] == [f"t 2 of 3, z {z} of 4" for z in (1, 2, 3, 4)]
    assert [plane(i) for i in items] == [4, 5, 6, 7]
    item, = items_of(tiff(a, imagej=True, metadata={"axes": "TZCYX"}))
    assert item.locator == "t 2 of 3, z 3 of 4" and plane(item) == 6


def test_imagej_luts_and_labels_are_used():
    lut = np.zeros((2, 3, 256), np.uint8)
    ramp = np.arange(256, dtype=np.uint8)
    lut[0, 0], lut[0, 2] = ramp, ramp  # magenta
    lut[1, 1], lut[1, 2] = ramp, ramp  # cyan
    data = tiff(stack((2, 96, 128)), imagej=True, metadata={"axes": "CYX", "LUTs": list(lut), "Labels": ["Hoechst", "Actin"]})
    item, = items_of(data)
    magenta, cyan = colour_at(item, 0), colour_at(item, 1)
    assert magenta[0] > 200 and magenta[2] > 200 and magenta[1] < 60
    assert cyan[1] > 200 and cyan[2] > 200 and cyan[0] < 60
    assert item.metadata["channel_names"] == ["Hoechst", "Actin"]


def test_ome_tiff_with_lzw_colours_and_names():
    meta = {"axes": "CYX", "Channel": {"Name": ["DAPI", "GFP"], "Color": [0x0000FFFF, 0x00FF00FF]}}  # RGBA: blue, green
    item, = items_of(tiff(stack((2, 96, 128)), ome=True, metadata=meta, compression="lzw"), "cells.ome.tif")
    assert item.format == "OME-TIFF" and item.locator == ""
    blue, green = colour_at(item, 0), colour_at(item, 1)
    assert blue[2] > 200 and blue[0] < 60 and green[1] > 200 and green[2] < 60
    assert item.metadata["channel_names"] == ["DAPI", "GFP"]


def test_ome_pyramid_reads_a_level_that_fits():
    """A brightfield OME-TIFF pyramid (JPEG tiles in SubIFDs) under the scan size (4096 px a side; a larger one is
    shown as a tissue field: test_pyramid_s38.py) is shown whole from the largest level within max_pixels."""
    rng = np.random.default_rng(1)
    base = np.full((3400, 4000, 3), 235, np.uint8)
    base[800:2400, 800:3000] = (200, 120, 180)
    base[rng.random(base.shape[:2]) < 0.01] = (80, 40, 120)
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf, ome=True) as w:
        opts = {"tile": (256, 256), "photometric": "rgb", "compression": "jpeg"}
        w.write(base, subifds=2, metadata={"axes": "YXS"}, **opts)
        w.write(base[::2, ::2], subfiletype=1, **opts)
        w.write(base[::4, ::4], subfiletype=1, **opts)
    item, = items_of(buf.getvalue(), "slide.ome.tif")
    assert item.image.size == (4000, 3400) and (item.width, item.height) == (4000, 3400)
    assert item.metadata["level"] == 0 and item.metadata["levels"] == 3
    px = np.asarray(item.image)
    assert abs(int(px[1000, 1300, 0]) - 200) < 25 and abs(int(px[100, 100, 1]) - 235) < 25
    half, = items_of(buf.getvalue(), "slide.ome.tif", max_pixels=4_000_000)
    assert half.image.size == (2000, 1700) and half.metadata["level"] == 1
    small, = items_of(buf.getvalue(), "slide.ome.tif", max_pixels=2_000_000)
    assert small.image.size == (1000, 850)
    err, = items_of(buf.getvalue(), "slide.ome.tif", max_pixels=1000)
    assert isinstance(err, ItemError) and "max_pixels" in err.error


def test_spectral_images_are_averaged_and_single_planes_left_to_pillow():
    item, = items_of(tiff(stack((9, 64, 80)), imagej=True, metadata={"axes": "CYX"}))
    assert item.image.mode == "L" and item.metadata["channels"] == 9
    one, = items_of(tiff(stack((1, 64, 80))[0], imagej=True))  # one plane: the plain image source
    assert one.format == "TIFF" and one.image.mode.startswith("I;16")
    pages = items_of(b.multipage_tiff())  # no ImageJ/OME description: every page, as before
    assert [i.locator for i in pages] == ["page 1", "page 2", "page 3"]


def test_stacks_in_folders_and_on_disk(tmp_path):
    (tmp_path / "a.tif").write_bytes(tiff(stack(), imagej=True, metadata={"axes": "ZCYX"}))
    (tmp_path / "b.ome.tiff").write_bytes(tiff(stack((2, 64, 80)), ome=True, metadata={"axes": "CYX"}))
    items = list(open_input(tmp_path))
    assert [(i.origin.rsplit("/", 1)[-1], i.format) for i in items] == [("a.tif", "ImageJ TIFF"), ("b.ome.tiff", "OME-TIFF")]


def test_damaged_stacks_give_clear_errors():
    clean = tiff(stack(), imagej=True, metadata={"axes": "ZCYX"})
    started = time.monotonic()
    for k, data in b.damaged(clean, seed=3, n=80, flips=(1, 20, 300)):
        b.assert_clear(items_of(data, all_frames=k % 4 == 1))
    assert time.monotonic() - started < 30


def test_big_ome_tiff_on_disk_is_read_in_place(tmp_path):
    """A pyramid over max_input_bytes is read by path (only the level shown); BigTIFF too."""
    path = tmp_path / "scan.ome.tif"
    path.write_bytes(tiff(stack((2, 512, 640)), ome=True, metadata={"axes": "CYX"}, bigtiff=True))
    item, = list(open_input(path, Limits(max_input_bytes=10_000)))
    assert isinstance(item, ImageItem) and item.format == "OME-TIFF" and item.origin == str(path)
    err, = list(open_input(path, Limits(max_slide_bytes=10_000)))
    assert isinstance(err, ItemError) and "max_slide_bytes" in err.error
    plain = tmp_path / "plain.ome.tif"  # named like one, but not: read whole as pages, under max_input_bytes
    plain.write_bytes(b.multipage_tiff())
    assert [i.locator for i in open_input(plain)] == ["page 1", "page 2", "page 3"]
    err, = list(open_input(plain, Limits(max_input_bytes=100)))
    assert isinstance(err, ItemError) and "max_input_bytes" in err.error


@pytest.mark.parametrize("where", ["absolute", "relative"])
def test_multi_file_ome_never_opens_the_files_it_names(tmp_path, where):
    """A multi-file OME-TIFF names other files for some planes; a crafted one could name any file on the
    machine (or a FIFO, which would hang). Those files are never opened: only this file's pixels show."""
    secret_dir, ome_dir = tmp_path / "secret", tmp_path / "ome"
    secret_dir.mkdir()
    ome_dir.mkdir()
    secret = np.zeros((64, 64), np.uint8)
    secret[:, :32] = 255
    tifffile.imwrite(secret_dir / "secret.tif", secret)
    target = str(secret_dir / "secret.tif") if where == "absolute" else "../secret/secret.tif"
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" UUID="urn:uuid:aaaa">
<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8" SizeX="64" SizeY="64" SizeC="2" SizeZ="1" SizeT="1">
<Channel ID="Channel:0:0" SamplesPerPixel="1"/><Channel ID="Channel:0:1" SamplesPerPixel="1"/>
<TiffData FirstC="0" IFD="0" PlaneCount="1"><UUID FileName="main.ome.tif">urn:uuid:aaaa</UUID></TiffData>
<TiffData FirstC="1" IFD="0" PlaneCount="1"><UUID FileName="{target}">urn:uuid:bbbb</UUID></TiffData>
</Pixels></Image></OME>"""
    tifffile.imwrite(ome_dir / "main.ome.tif", np.zeros((64, 64), np.uint8), description=xml, metadata=None)
    items = list(open_input(ome_dir / "main.ome.tif"))
    assert items and all(isinstance(i, ImageItem) for i in items)
    assert all(np.asarray(i.image).max() == 0 for i in items)  # the secret's white half never shows


def ome_with(edit) -> bytes:
    """A 2-page OME-TIFF (T, 48 × 48) whose OME-XML is changed by edit(text)."""
    a = np.arange(2 * 48 * 48, dtype=np.uint16).reshape(2, 48, 48)
    desc = tifffile.TiffFile(io.BytesIO(tiff(a, ome=True, metadata={"axes": "TYX"}))).pages[0].description
    return tiff(a, description=edit(desc), metadata=None)


@pytest.mark.parametrize("edit", [
    lambda d: d.replace('SizeT="2"', 'SizeT="5000000"'),  # over MAX_PLANES
    lambda d: d.replace('SizeT="2"', 'SizeT="100000"'),  # far more than the file's 2 pages
    lambda d: re.sub(r'PlaneCount="\d+"', 'PlaneCount="5000000"', d, count=1),
    lambda d: d.replace('SizeX="48"', 'SizeX="480000"'),  # 48 × 48 pages: 20,000 of them per declared plane
], ids=["sizet", "sizet-pages", "planecount", "sizex"])
def test_ome_declaring_far_more_planes_than_pages_is_refused(edit):
    """tifffile lists every plane the OME-XML declares: SizeT=3e8 in a 10 KB file took 4.8 GB. Such a file
    is refused before tifffile reads its series."""
    err, = items_of(ome_with(edit), "t.ome.tif")
    assert isinstance(err, ItemError) and "planes in a file of 2 pages" in err.error


def test_ome_xml_with_entities_or_too_long_is_refused(monkeypatch):
    """An entity expansion bomb in the OME-XML (5 GB from a few MB) is refused before any XML parser sees it;
    so is OME-XML over MAX_OME_XML characters."""
    from medimg.sources import microscopy

    def bomb(d):
        head, _, rest = d.partition("?>")
        return head + '?><!DOCTYPE OME [<!ENTITY e "x">]>' + rest.replace("</OME>", "<!-- &e; --></OME>")

    err, = items_of(ome_with(bomb), "t.ome.tif")
    assert isinstance(err, ItemError) and "DOCTYPE or entities" in err.error
    assert [i.locator for i in items_of(ome_with(lambda d: d), "t.ome.tif")] == ["t 2 of 2"]
    monkeypatch.setattr(microscopy, "MAX_OME_XML", 500)
    err, = items_of(ome_with(lambda d: d), "t.ome.tif")
    assert isinstance(err, ItemError) and "over the 500 read" in err.error


def test_multi_file_ome_declaring_planes_in_other_files_is_read():
    """The first file of a multi-file OME-TIFF declares every file's planes; only its own are checked."""
    xml = """<?xml version="1.0" encoding="UTF-8"?>
<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" UUID="urn:uuid:aaaa">
<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8" SizeX="64" SizeY="64" SizeC="1"
SizeZ="1" SizeT="100000"><Channel ID="Channel:0:0" SamplesPerPixel="1"/>
<TiffData FirstT="0" IFD="0" PlaneCount="1"><UUID FileName="main.ome.tif">urn:uuid:aaaa</UUID></TiffData>
<TiffData FirstT="1" IFD="0" PlaneCount="99999"><UUID FileName="rest.ome.tif">urn:uuid:bbbb</UUID></TiffData>
</Pixels></Image></OME>"""
    item, = items_of(tiff(np.zeros((64, 64), np.uint8), description=xml, metadata=None), "main.ome.tif")
    assert isinstance(item, ImageItem)


@pytest.mark.parametrize("page, tag", [(2, "ImageLength"), (3, "ImageWidth")])
def test_a_later_page_over_max_pixels_is_refused_before_decoding(page, tag):
    """Each page a stack read touches is checked, not just the first: a page of the middle z-slice claiming
    2³²−1 rows (or columns) was read and gave numpy's "Unable to allocate 1.00 TiB"."""
    data = bytearray(tiff(stack((3, 2, 48, 64)), imagej=True, metadata={"axes": "ZCYX"}))
    offset = tifffile.TiffFile(io.BytesIO(bytes(data))).pages[page].tags[tag].valueoffset
    data[offset:offset + 4] = b"\xff\xff\xff\xff"
    items = items_of(bytes(data), all_frames=True)
    assert [(type(i), i.locator) for i in items] == [(ImageItem, "z 1 of 3"), (ItemError, "z 2 of 3"),
                                                      (ImageItem, "z 3 of 3")]
    assert "claiming" in items[1].error and "4,294,967,295" in items[1].error
    assert "over the max_pixels cap of 100,000,000" in items[1].error


def test_spectral_channels_are_averaged_into_the_full_grey_range_without_overflow():
    """Nine channels alike (a ramp from dark to bright) average to that ramp, black on the left and white on
    the right, as one channel stretched on its own; a sum that is not divided by the channel count wraps round."""
    ramp = np.tile(np.linspace(0, 4000, 80).astype(np.uint16), (64, 1))
    item, = items_of(tiff(np.stack([ramp] * 9), imagej=True, metadata={"axes": "CYX"}))
    grey = np.asarray(item.image).astype(int)
    assert item.image.mode == "L" and item.metadata["channels"] == 9
    assert grey[:, 0].max() <= 5 and grey[:, -1].min() >= 250
    assert (np.diff(grey[0]) >= 0).all()  # brighter to the right all the way


def test_a_channel_colour_between_full_and_none_is_drawn_in_proportion():
    """OME Channel@Color orange (255, 128, 0) and a half-bright violet (128, 0, 255): a bright pixel of each
    channel carries those shares, not full red and green (or red and blue)."""
    meta = {"axes": "CYX", "Channel": {"Name": ["A", "B"], "Color": [0xFF8000FF, 0x8000FFFF]}}  # RGBA
    item, = items_of(tiff(stack((2, 96, 128)), ome=True, metadata=meta), "cells.ome.tif")
    orange, violet = colour_at(item, 0), colour_at(item, 1)
    assert orange[0] > 240 and 110 < orange[1] < 145 and orange[2] < 20, orange
    assert 110 < violet[0] < 145 and violet[1] < 20 and violet[2] > 240, violet


def test_a_pyramid_level_is_chosen_so_that_all_channels_fit_the_pixel_cap():
    """Three channels of 320×256 do not fit 100,000 pixels together: the next level (160×128) is shown, rather
    than the whole level being refused."""
    base = stack((3, 256, 320))
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf, ome=True) as w:
        opts = {"tile": (64, 64), "photometric": "minisblack"}
        w.write(base, subifds=2, metadata={"axes": "CYX"}, **opts)
        w.write(base[:, ::2, ::2], subfiletype=1, **opts)
        w.write(base[:, ::4, ::4], subfiletype=1, **opts)
    (item,) = items_of(buf.getvalue(), "cells.ome.tif", max_pixels=100_000)
    assert isinstance(item, ImageItem), item
    assert item.metadata["level"] == 1 and item.image.size == (160, 128)
    assert (item.width, item.height) == (320, 256)


def test_a_black_ome_channel_colour_falls_back_to_the_default_colours():
    """OME Channel@Color black (0x000000FF) would hide its channel: ImageJ's red, green… are used instead."""
    meta = {"axes": "CYX", "Channel": {"Name": ["A", "B"], "Color": [0x000000FF, 0x00FF00FF]}}  # RGBA
    item, = items_of(tiff(stack((2, 96, 128)), ome=True, metadata=meta), "cells.ome.tif")
    red, green = colour_at(item, 0), colour_at(item, 1)
    assert red[0] > 200 and red[1] < 60 and green[1] > 200 and green[0] < 60


def sparse_field(seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """A 16-bit fluorescence plane, 99.9 % dark: camera offset and shot noise, three 18 px cells whose left half
    is twice as bright as their right (structure to keep), and 20 lone hot pixels at the 12-bit top."""
    rng = np.random.default_rng(seed)
    a = rng.poisson(100, (512, 512)).astype(np.uint16)
    cells = np.zeros(a.shape, bool)
    for y, x in ((60, 80), (300, 400), (420, 150)):
        a[y:y + 18, x:x + 9], a[y:y + 18, x + 9:x + 18] = 2000, 1000
        cells[y:y + 18, x:x + 18] = True
    a.flat[rng.integers(0, a.size, 20)] = 4095
    return a, cells


@pytest.mark.parametrize("layout", ["one OME channel", "two ImageJ channels"])
def test_a_dark_field_is_shown_up_to_its_cells_not_its_noise(layout):
    a, cells = sparse_field()
    if layout == "one OME channel":
        item, = items_of(tiff(np.stack([a, a]), ome=True, metadata={"axes": "ZYX"}), "cells.ome.tif")
    else:
        item, = items_of(tiff(np.stack([a, sparse_field(6)[0]]), imagej=True, metadata={"axes": "CYX"}))
    px = np.asarray(item.image).astype(int)
    px = px[..., 0] if px.ndim == 3 else px  # the first channel: red
    assert np.median(px[~cells]) < 30  # the field stays dark (it was noise stretched to mid-grey, 128)
    bright, dim = px[60:78, 80:89], px[60:78, 89:98]
    assert bright.min() > 200 and 80 < dim.mean() < 160  # the cell's two halves told apart (both were 255)


def test_a_lone_imagej_channel_keeps_its_percentile_stretch():
    """An ImageJ stack of one channel may be CT: air (most of the slice, near black), tissue, and a small metal
    implant far brighter than bone. Shown up to the metal, the tissue would go dark; the percentiles stay."""
    rng = np.random.default_rng(9)
    a = rng.normal(-1000, 5, (2, 256, 256))
    a[:, 64:192, 64:192] = rng.normal(40, 20, (2, 128, 128))  # soft tissue: a quarter of the slice
    a[:, 120:126, 120:126] = 3000  # metal
    item, = items_of(tiff(a.astype(np.int16), imagej=True, metadata={"axes": "ZYX"}))
    px = np.asarray(item.image).astype(int)
    assert np.median(px[64:192, 64:192]) > 200  # tissue near the top of the percentile range, not 255 × 1/4


def test_a_plane_that_is_not_dark_field_keeps_its_percentile_stretch():
    rng = np.random.default_rng(6)
    a = rng.normal(20000, 3000, (2, 256, 256)).astype(np.uint16)  # an electron micrograph: grey throughout
    a[:, 100:114, 100:114] = 60000  # a bright hole in the film (0.3 %): saturated, not setting white
    item, = items_of(tiff(a, imagej=True, metadata={"axes": "ZYX"}))
    px = np.asarray(item.image).astype(int)
    assert 110 < np.median(px) < 150 and (px[:, :90] > 250).mean() < 0.01


def test_an_ome_channel_without_a_colour_takes_its_emission_wavelengths():
    """DAPI (emits at 461 nm) first, then GFP (510 nm), no Color: blue and green, as Fiji's Bio-Formats importer
    shows them, not ImageJ's red and green by position. A third channel with neither keeps its default (blue)."""
    meta = {"axes": "CYX", "Channel": {"Name": ["DAPI", "GFP", "x"], "EmissionWavelength": [461, 510, None]}}
    desc = tifffile.TiffFile(io.BytesIO(tiff(stack((3, 96, 128)), ome=True, metadata=meta))).pages[0].description
    desc = desc.replace(' EmissionWavelength="None"', "")  # tifffile writes what it is given
    assert 'EmissionWavelength="461' in desc and desc.count("EmissionWavelength") == 2
    data = tiff(stack((3, 96, 128)), photometric="minisblack", metadata=None, description=desc)  # as edited
    item, = items_of(data, "cells.ome.tif")
    dapi, gfp, third = colour_at(item, 0), colour_at(item, 1), colour_at(item, 2)
    assert dapi[2] > 200 and dapi[0] < 60 and dapi[1] < 60
    assert gfp[1] > 200 and gfp[0] < 60 and gfp[2] < 60
    assert third[2] > 200 and third[0] < 60
