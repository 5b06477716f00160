"""Microscopy and slide files as a lab writes them (session 38): OME-TIFFs of several images (a plate's wells,
a slide converted by bfconvert with its label and macro pictures)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input

tifffile = pytest.importorskip("tifffile")


def items_of(data: bytes, name: str = "plate.ome.tif", **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def ome(images: list[tuple[np.ndarray, dict]], compression: str | None = None) -> bytes:
    """One OME-TIFF holding each (array, metadata) as an OME Image of its own, as tifffile and bfconvert write them."""
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf, ome=True) as tw:
        for array, meta in images:
            tw.write(array, photometric="rgb" if array.ndim == 3 and array.shape[-1] == 3 else "minisblack",
                     metadata=meta, compression=compression)
    return buf.getvalue()


def well(n: int, channels: int = 2) -> np.ndarray:
    """uint16 channels of a dark field; the well's number of bright squares in channel 0."""
    a = np.random.default_rng(n).integers(90, 110, (channels, 96, 128), dtype=np.uint16)
    for k in range(n):
        a[0, 10:30, 10 + 25 * k:30 + 25 * k] = 3000
    return a


def test_every_image_of_a_multi_image_ome_tiff_is_an_item():
    data = ome([(well(n + 1), {"axes": "CYX", "Name": f"Well A{n + 1}"}) for n in range(4)])
    items = items_of(data)
    assert [type(i) for i in items] == [ImageItem] * 4  # the first well alone came out, the others were dropped
    assert [i.locator for i in items] == ["Well A1", "Well A2", "Well A3", "Well A4"]
    for n, item in enumerate(items):
        red = np.asarray(item.image)[20, :, 0]
        assert item.format == "OME-TIFF" and item.image.mode == "RGB"
        assert sum(1 for x in range(10, 128, 25) if red[x + 5] > 200) == n + 1  # that well's own pixels


def test_an_ome_slide_s_label_and_macro_images_are_notes_not_shown():
    """bfconvert names a slide's extra pictures "label image" and "macro image"; the label shows the patient's
    name, so it is never shown (as slide.py and DICOM leave them out)."""
    rng = np.random.default_rng(0)
    tissue = rng.integers(120, 230, (256, 320, 3), dtype=np.uint8)
    label = np.full((120, 300, 3), 255, np.uint8)
    label[40:60, 20:280] = 0  # the printed name
    data = ome([(tissue, {"Name": ""}), (label, {"Name": "label image"}), (label[:80], {"Name": "macro image"})])
    items = items_of(data, "slide.ome.tif")
    shown = [i for i in items if isinstance(i, ImageItem)]
    assert len(shown) == 1 and shown[0].image.size == (320, 256) and shown[0].locator == "image 1"
    notes = [i for i in items if isinstance(i, ItemError)]
    assert [(n.locator, n.skipped) for n in notes] == [("label image", True), ("macro image", True)]
    assert "patient" in notes[0].error


def test_ome_images_with_their_own_channel_colours_and_a_damaged_one_alone_an_error():
    blue_green = {"axes": "CYX", "Name": "a", "Channel": {"Color": [0x0000FFFF, 0x00FF00FF]}}
    red = {"axes": "CYX", "Name": "b", "Channel": {"Color": [-16776961, 0x00FF00FF]}}  # 0xFF0000FF
    data = bytearray(ome([(well(1), blue_green), (well(1), red), (well(2), {"axes": "CYX", "Name": "c"})], "zlib"))
    a, b, c = items_of(bytes(data))
    (ar, _, ab), (br, _, bb) = np.asarray(a.image)[20, 20], np.asarray(b.image)[20, 20]  # green: the noise channel
    assert (ar, ab) == (0, 255) and (br, bb) == (255, 0)  # each image's channel 0 in its own colour
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        page = tif.series[1].pages[0]
        offset, count = page.dataoffsets[0], page.databytecounts[0]
    data[offset:offset + count] = b"\x13" * count  # the second image's first strip damaged
    items = items_of(bytes(data))
    assert [type(i) for i in items] == [ImageItem, ItemError, ImageItem]
    assert items[1].locator == "b" and not items[1].skipped


def test_a_single_image_ome_tiff_is_unchanged():
    item, = items_of(ome([(well(2), {"axes": "CYX", "Name": "only"})]))
    assert isinstance(item, ImageItem) and item.locator == ""


def test_every_scene_of_a_czi_is_an_item(tmp_path):
    """A CZI of several scenes (a plate's wells, the tissue sections of one slide) far apart: each scene is an item,
    not one overview of mostly empty space showing a corner of the first."""
    pyczi = pytest.importorskip("pylibCZIrw.czi")
    path = str(tmp_path / "plate.czi")
    with pyczi.create_czi(path, exist_ok=True) as w:
        for scene, (x, y) in enumerate([(0, 0), (20000, 0), (0, 15000)]):
            for c in range(2):
                a = np.random.default_rng(c).integers(0, 40, (300, 400), dtype=np.uint16)
                if c == 0:
                    a[50:100, 20 + 100 * scene:80 + 100 * scene] = 3000  # the scene's own square, in red
                w.write(a[..., None], plane={"C": c}, scene=scene, location=(x, y))
        w.write_metadata("plate")
    items = list(open_input(path))
    assert [i.locator for i in items] == ["scene 1 of 3", "scene 2 of 3", "scene 3 of 3"]
    for scene, item in enumerate(items):
        assert isinstance(item, ImageItem) and item.image.size == (400, 300)
        red = np.asarray(item.image)[75, :, 0]
        assert [x for x in range(50, 400, 100) if red[x] > 200] == [50 + 100 * scene]
