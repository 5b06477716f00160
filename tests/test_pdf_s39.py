"""PDF pages found by fuzzing (s39): the same samples under several image dictionaries on one page."""

from __future__ import annotations

import numpy as np
import pymupdf

from medimg.sources import pdf
from medimg.sources.base import Blob, Context, ImageItem, Limits

SPOT = "[/Separation/Spot/DeviceRGB<</FunctionType 2/Domain[0 1]/C0[1 1 1]/C1[1 0 0]/N 1>>]"


def _run(data: bytes) -> list:
    return [i for i in pdf.open_pdf(Blob("study.pdf", data), Context(Limits())) if isinstance(i, ImageItem)]


def _page(bodies: list, data: bytes, width: int, height: int, box: tuple = (120, 90)) -> bytes:
    """A page drawing one image object per dictionary body, all holding `data`, each in a box of its own (tops 40,
    190, 340, 490 on the page as shown; none touching)."""
    doc = pymupdf.open()
    page = doc.new_page(width=400, height=650)
    names, content = [], b""
    for k, body in enumerate(bodies):
        xref = doc.get_new_xref()
        doc.update_object(xref, f"<</Type/XObject/Subtype/Image/Width {width}/Height {height}/BitsPerComponent 8{body}>>")
        doc.update_stream(xref, data)
        names.append(f"/I{k} {xref} 0 R")
        content += f"q {box[0]} 0 0 {box[1]} {50 + 150 * (k % 2)} {610 - box[1] - 150 * k} cm /I{k} Do Q\n".encode()
    xref = doc.get_new_xref()
    doc.update_object(xref, "<<>>")
    doc.update_stream(xref, content)
    doc.xref_set_key(page.xref, "Resources", f"<</XObject<<{''.join(names)}>>>>")
    doc.xref_set_key(page.xref, "Contents", f"{xref} 0 R")
    return doc.tobytes()


def _as_shown(data: bytes, bbox: list, size: tuple) -> np.ndarray:
    page = pymupdf.open(stream=data, filetype="pdf")[0]
    rect = pymupdf.Rect(bbox)
    pix = page.get_pixmap(matrix=pymupdf.Matrix(size[0] / rect.width, size[1] / rect.height), clip=rect, alpha=False)
    return np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width, 3).astype(int)


def _grey(width: int, height: int) -> bytes:
    rng = np.random.default_rng(39)
    return np.repeat(np.repeat(rng.integers(0, 255, (height // 8, width // 8), dtype=np.uint8), 8, 0), 8, 1).tobytes()


# two copies of one grey image (identical dictionaries, two objects), and the same samples drawn inverted by a
# Decode array and printed in a red spot ink: four pictures, three different ones
BODIES = ["/ColorSpace/DeviceGray", "/ColorSpace/DeviceGray", "/ColorSpace/DeviceGray/Decode[1 0]", f"/ColorSpace{SPOT}"]


def test_copies_of_an_image_beside_the_same_samples_under_another_decode_or_ink_are_each_reported_where_drawn():
    # before, the two copies sent the page's twin matching to pixel digests, which are of the samples alone (a spot
    # ink's digest as grey ones): places were matched to the wrong objects and the red picture was lost. Fuzzing
    # shrank it to two grey copies and the spot-ink one: one image came out, the red one at the grey one's place
    data = _page(BODIES, _grey(128, 96), 128, 96, (128, 96))
    images = _run(data)
    assert [i.metadata["bbox"][1] for i in images] == [40, 340, 490]  # the second copy is the first image
    for item in images:
        seen = _as_shown(data, item.metadata["bbox"], item.image.size)
        assert np.abs(seen - np.asarray(item.image.convert("RGB")).astype(int)).mean() < 2


def test_small_copies_and_their_twins_drawn_large_are_each_rendered_once_where_drawn():
    # 80 x 60-pixel images drawn in 120 x 90-point boxes are pieces of drawing: each place is a rendered figure.
    # Before, all four places were matched to one object, so the four figures were one figure drawn four times
    # (rendered once, at the first place); the two copies must still be one figure, as they are one image
    data = _page(BODIES, _grey(80, 60), 80, 60)
    figures = _run(data)
    assert [(i.locator, i.metadata["bbox"][1]) for i in figures] == [
        ("page 1, figure 1 (rendered)", 40), ("page 1, figure 2 (rendered)", 340), ("page 1, figure 3 (rendered)", 490)]
    grey, inverted, red = (np.asarray(i.image.convert("RGB")).astype(int) for i in figures)
    assert np.abs(grey + inverted - 255).mean() < 8  # the Decode array's picture is the grey one inverted
    assert (red[..., 0] - red[..., 2]).mean() > 50  # the spot ink's is red


def test_the_same_indices_under_three_palettes_and_a_copy_of_one_are_three_images_each_where_drawn():
    rng = np.random.default_rng(5)
    index = np.repeat(np.repeat(rng.integers(0, 4, (12, 16), dtype=np.uint8), 8, 0), 8, 1)
    palettes = ["00000000ff00ffffff0000ff", "ff00ff00ffff0000ffffff00", "808080ffffff000000ff0000"]
    bodies = [f"/ColorSpace[/Indexed/DeviceRGB 3 <{p}>]" for p in palettes + palettes[:1]]
    data = _page(bodies, index.tobytes(), 128, 96, (128, 96))
    images = _run(data)
    assert [i.metadata["bbox"][1] for i in images] == [40, 190, 340]
    for item in images:
        seen = _as_shown(data, item.metadata["bbox"], item.image.size)
        assert np.abs(seen - np.asarray(item.image.convert("RGB")).astype(int)).mean() < 2


def test_two_copies_of_a_grey_image_and_its_samples_in_a_spot_ink_are_two_images_each_as_shown():
    # the smallest page fuzzing found: before, the spot-ink picture came out alone, at the grey copies' place
    data = _page([BODIES[0], BODIES[0], BODIES[3]], _grey(128, 96), 128, 96, (128, 96))
    images = _run(data)
    assert [i.metadata["bbox"][1] for i in images] == [40, 340]
    for item in images:
        seen = _as_shown(data, item.metadata["bbox"], item.image.size)
        assert np.abs(seen - np.asarray(item.image.convert("RGB")).astype(int)).mean() < 2
