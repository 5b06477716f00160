"""Session 38's speed check against its base (s38_perf2): a PDF's images are told apart by colour space, colour key
and decoding parameters only when their bytes are the same, so the answers must be those of comparing all of them.
Behaviour only; the speed is in benchmarks/bench_containers.py."""

from __future__ import annotations

import numpy as np
import pytest

from medimg.sources import Blob, ImageItem, open_input

pymupdf = pytest.importorskip("pymupdf")

P1, P2 = "000000ff0000" + "00ff00" * 2, "ffffff00ff00" + "0000ff" * 2  # 4-colour palettes (RGB, hex)


def _page_of(bodies: list[str], data: bytes, then: bytes | None = None) -> bytes:
    """One page drawing an image object for each dictionary in `bodies`, all holding `data` (120 × 80 indices), in
    a row of three a line; `then`: one more object of other bytes (DeviceGray) after them. A second page draws the
    first object again."""
    doc = pymupdf.open()
    spaces = {}
    for name, palette in (("A", P1), ("B", P1)):  # the same palette twice, each an object of its own
        spaces[name] = doc.get_new_xref()
        doc.update_object(spaces[name], f"[/Indexed/DeviceRGB 3 <{palette}>]")
    xrefs = []
    objects = [(b.format(**spaces), data) for b in bodies] + ([("/ColorSpace/DeviceGray", then)] if then else [])
    for body, stream in objects:
        xref = doc.get_new_xref()
        doc.update_object(xref, "<</Type/XObject/Subtype/Image/Width 120/Height 80/BitsPerComponent 8" + body + ">>")
        doc.update_stream(xref, stream)
        xrefs.append(xref)
    for number in range(2):
        page = doc.new_page(width=500, height=800)
        drawn = range(len(xrefs)) if number == 0 else range(1)
        content = doc.get_new_xref()
        doc.update_object(content, "<<>>")
        doc.update_stream(content, "".join(f"q 120 0 0 80 {20 + 160 * (k % 3)} {680 - 120 * (k // 3)} cm /I{k} Do Q "
                                           for k in drawn).encode())
        doc.xref_set_key(page.xref, "Resources", "<</XObject<<" + "".join(f"/I{k} {x} 0 R" for k, x in enumerate(xrefs))
                         + ">>>>")
        doc.xref_set_key(page.xref, "Contents", f"{content} 0 R")
    return doc.tobytes()


def _images(data: bytes) -> list[ImageItem]:
    return [i for i in open_input(Blob("doc.pdf", data, name="doc.pdf")) if isinstance(i, ImageItem)]


def test_the_same_bytes_are_one_image_per_palette_however_the_palettes_are_written():
    index = np.random.default_rng(3).integers(0, 4, (80, 120), np.uint8).tobytes()
    other = np.random.default_rng(4).integers(0, 255, (80, 120), np.uint8).tobytes()
    bodies = [f"/ColorSpace[/Indexed/DeviceRGB 3 <{P1}>]", f"/ColorSpace[/Indexed/DeviceRGB 3 <{P2}>]",
              "/ColorSpace {A} 0 R", "/ColorSpace {B} 0 R", f"/ColorSpace[/Indexed/DeviceRGB 3 <{P2}>]",
              f"/ColorSpace[/Indexed/DeviceRGB 3 <{P1}>]/Mask[0 0]"]
    images = _images(_page_of(bodies, index, other))
    # P1 (inline, and as either object), P2 (twice), P1 with a colour key, and the grey image of other bytes
    assert len(images) == 4, [i.metadata for i in images]
    first = images[[i.metadata["bbox"][:2] for i in images].index([20.0, 40.0])]
    assert first.metadata["pages"] == [1, 2]
    assert len({(i.image.mode, i.image.tobytes()) for i in images}) == 4  # each shown as it looks


def test_an_image_alone_with_its_bytes_needs_no_colour_space_read_and_is_still_itself():
    grey = [np.random.default_rng(k).integers(0, 255, (80, 120), np.uint8).tobytes() for k in range(5)]
    doc = pymupdf.open()
    page = doc.new_page(width=500, height=800)
    for k, data in enumerate(grey):  # five different pictures, each drawn once
        page.insert_image(pymupdf.Rect(20 + 160 * (k % 3), 20 + 120 * (k // 3), 140 + 160 * (k % 3),
                                       100 + 120 * (k // 3)), pixmap=pymupdf.Pixmap(pymupdf.csGRAY, 120, 80, data, 0))
    images = _images(doc.tobytes())
    assert sorted(np.asarray(i.image).tobytes() for i in images) == sorted(grey)


def test_a_data_file_named_without_its_folder_finds_its_header_of_another_stem(tmp_path, monkeypatch):
    """`medimg classify d.raw` run in the folder (find . -name '*.raw' gives ./d.raw): the folder's headers are
    read for the one naming it, as for a path with its folder."""
    (tmp_path / "h.mhd").write_bytes(b"ObjectType = Image\nNDims = 2\nDimSize = 8 8\nElementType = MET_UCHAR\n"
                                     b"ElementDataFile = d.raw\n")
    (tmp_path / "d.raw").write_bytes(bytes(range(64)))
    monkeypatch.chdir(tmp_path)
    for given in ("d.raw", "./d.raw", str(tmp_path / "d.raw")):
        (note,) = list(open_input(given))
        assert "the data file of h.mhd" in note.error, (given, note)
