"""PDFs as a data-curation team gets them (s38): real files built in each test with PyMuPDF, Pillow or by hand."""

from __future__ import annotations

import io
import tarfile
import zipfile

import numpy as np
import pymupdf
from PIL import Image

from medimg.sources import pdf
from medimg.sources.base import Blob, Context, ImageItem, Limits


def _png(width: int, height: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), "RGB").save(buf, "PNG")
    return buf.getvalue()


def _run(data: bytes, **limits) -> list:
    return list(pdf.open_pdf(Blob("study.pdf", data), Context(Limits(**limits))))


def test_files_inside_an_attached_archive_keep_their_paths_in_the_locator():
    # a PDF carrying a zip (and a tar) of scans: each image's row must say which member it is, as the
    # archive's own rows do (`pack.zip:a/ct.png`); before, every member was `attachment pack.zip`
    report = pymupdf.open()
    report.new_page().insert_image(pymupdf.Rect(50, 50, 290, 210), stream=_png(240, 160, 3))
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as z:
        z.writestr("a/ct.png", _png(200, 150, 1))
        z.writestr("b/ct.png", _png(210, 150, 2))
        z.writestr("c/report.pdf", report.tobytes())
    tarred = io.BytesIO()
    with tarfile.open(fileobj=tarred, mode="w") as t:
        data = _png(220, 150, 4)
        info = tarfile.TarInfo("x.png")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    doc = pymupdf.open()
    doc.new_page().insert_text((50, 60), "Scans attached.")
    doc.embfile_add("pack.zip", packed.getvalue(), filename="pack.zip")
    doc.embfile_add("pack.tar", tarred.getvalue(), filename="pack.tar")
    doc.embfile_add("ct.png", _png(230, 150, 5), filename="ct.png")
    items = _run(doc.tobytes())
    assert {i.origin for i in items} == {"study.pdf"}
    assert [(i.locator, i.image.width) for i in items if isinstance(i, ImageItem)] == [
        ("attachment pack.zip:a/ct.png", 200), ("attachment pack.zip:b/ct.png", 210),
        ("attachment pack.zip:c/report.pdf, page 1, image 1", 240), ("attachment pack.tar:x.png", 220),
        ("attachment ct.png", 230)]


def test_a_big_jpeg_under_a_raised_max_pixels_still_decodes_small_through_pillow(monkeypatch):
    # `--max-pixels` raised past Pillow's own bomb limit: Pillow refused the embedded JPEG, so MuPDF decoded it
    # whole (a 20000 x 20000 scan: 2.5 s, 1.4 GB, at full size though the model wanted 512 px); plain image
    # files already let Pillow's limit follow the cap. Pillow's limit is lowered here to keep the test small.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)
    ramp = np.tile(np.linspace(0, 255, 1600).astype(np.uint8), (1600, 1))
    buf = io.BytesIO()
    Image.fromarray(ramp, "L").save(buf, "JPEG", quality=90)
    doc = pymupdf.open()
    doc.new_page().insert_image(pymupdf.Rect(50, 50, 450, 450), stream=buf.getvalue())
    [item] = _run(doc.tobytes(), max_pixels=5_000_000, decode_side=200)
    assert (item.image.size, item.full_size) == ((200, 200), (1600, 1600))


def test_image_numbers_count_the_images_reported_from_a_page_in_drawing_order():
    # as docs/formats.md says: an image reported from an earlier page takes no number on a later one
    doc = pymupdf.open()
    first = doc.new_page(width=400, height=800)
    for seed, top in ((0, 550), (1, 50), (2, 300)):  # drawn bottom, top, middle
        first.insert_image(pymupdf.Rect(50, top, 290, top + 160), stream=_png(240, 160, seed))
    second = doc.new_page(width=400, height=800)
    second.insert_image(pymupdf.Rect(50, 50, 290, 210), stream=_png(240, 160, 1))  # again
    second.insert_image(pymupdf.Rect(50, 300, 290, 460), stream=_png(240, 160, 3))
    got = [(i.locator, i.metadata["bbox"][1], i.metadata["pages"]) for i in _run(doc.tobytes())]
    assert got == [("page 1, image 1", 550, [1]), ("page 1, image 2", 50, [1, 2]), ("page 1, image 3", 300, [1]),
                   ("page 2, image 1", 300, [2])]


def _twins(first: str, second: str, data: bytes) -> bytes:
    """A page drawing two image objects holding the same bytes under different dictionaries: the first at the
    top (y 40-200 on the page as shown), the second below it (290-450)."""
    doc = pymupdf.open()
    page = doc.new_page(width=400, height=500)
    xrefs = []
    for body in (first, second):
        xref = doc.get_new_xref()
        doc.update_object(xref, "<</Type/XObject/Subtype/Image/Width 120/Height 80/BitsPerComponent 8" + body + ">>")
        doc.update_stream(xref, data)
        xrefs.append(xref)
    content = doc.get_new_xref()
    doc.update_object(content, "<<>>")
    doc.update_stream(content, b"q 240 0 0 160 50 300 cm /A Do Q q 240 0 0 160 50 50 cm /B Do Q")
    doc.xref_set_key(page.xref, "Resources", f"<</XObject<</A {xrefs[0]} 0 R/B {xrefs[1]} 0 R>>>>")
    doc.xref_set_key(page.xref, "Contents", f"{content} 0 R")
    return doc.tobytes()


def _as_shown(data: bytes, bbox: list, size: tuple) -> np.ndarray:
    page = pymupdf.open(stream=data, filetype="pdf")[0]
    rect = pymupdf.Rect(bbox)
    pix = page.get_pixmap(matrix=pymupdf.Matrix(size[0] / rect.width, size[1] / rect.height), clip=rect, alpha=False)
    return np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width, 3)


def _on_white(image: Image.Image) -> np.ndarray:
    if image.mode in ("RGBA", "LA"):
        white = Image.new("RGBA", image.size, "white")
        white.alpha_composite(image.convert("RGBA"))
        image = white
    return np.asarray(image.convert("RGB"))


def test_the_same_bytes_under_another_palette_colour_key_or_ink_are_two_images_each_where_it_is_drawn():
    # before, the second image of each pair was taken for a copy of the first (dropped unseen: the other palette,
    # the transparent colour key), or the two were matched to the wrong places (a grey image and the same
    # samples printed in a red spot ink: the red one came out where the grey one is drawn, the grey one not at all)
    rng = np.random.default_rng(7)
    index = rng.integers(0, 4, (80, 120), dtype=np.uint8)
    palette, other = "00000000ff00ffffff0000ff", "ff00ff00ffff0000ffffff00"
    rgb = np.repeat(np.repeat(rng.integers(0, 255, (8, 12, 3), dtype=np.uint8), 10, 0), 10, 1)
    rgb[:40, :60] = (255, 0, 0)
    grey = np.repeat(np.repeat(rng.integers(0, 255, (8, 12), dtype=np.uint8), 10, 0), 10, 1)
    spot = "[/Separation/Spot/DeviceRGB<</FunctionType 2/Domain[0 1]/C0[1 1 1]/C1[1 0 0]/N 1>>]"
    cases = {
        "palettes": _twins(f"/ColorSpace[/Indexed/DeviceRGB 3 <{palette}>]", f"/ColorSpace[/Indexed/DeviceRGB 3 <{other}>]",
                           index.tobytes()),
        "colour key": _twins("/ColorSpace/DeviceRGB", "/ColorSpace/DeviceRGB/Mask[250 255 0 5 0 5]", rgb.tobytes()),
        "spot ink": _twins("/ColorSpace/DeviceGray", f"/ColorSpace{spot}", grey.tobytes()),
    }
    for case, data in cases.items():
        images = [i for i in _run(data) if isinstance(i, ImageItem)]
        assert [i.metadata["bbox"][1] for i in images] == [40, 290], case
        for item in images:
            seen = _as_shown(data, item.metadata["bbox"], item.image.size).astype(int)
            assert np.abs(seen - _on_white(item.image)).mean() < 2, case
    # two copies of one image whose colour spaces are objects of their own, alike, are still one image
    copies = pymupdf.open(stream=_twins("/ColorSpace/DeviceGray", "/ColorSpace/DeviceGray", index.tobytes()),
                          filetype="pdf")
    for xref in [x for x, *_ in copies[0].get_images(full=True)]:
        space = copies.get_new_xref()
        copies.update_object(space, f"[/Indexed/DeviceRGB 3 <{palette}>]")
        copies.xref_set_key(xref, "ColorSpace", f"{space} 0 R")
    [one] = [i for i in _run(copies.tobytes()) if isinstance(i, ImageItem)]
    assert one.metadata["pages"] == [1]
