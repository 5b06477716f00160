"""PDF source: how images and figures are laid out on the page (pictures stored in pieces, cropped and stretched
images, labels set beside a chart). PDFs built with PyMuPDF in each test."""

from __future__ import annotations

import io

import numpy as np
import pymupdf
from PIL import Image, ImageDraw

from medimg.sources import pdf
from medimg.sources.base import Blob, Context, ImageItem, ItemError


def _run(data: bytes) -> list:
    return list(pdf.open_pdf(Blob("test.pdf", data), Context()))


def _images(items: list) -> list[ImageItem]:
    return [i for i in items if isinstance(i, ImageItem)]


def _errors(items: list) -> list[ItemError]:
    return [i for i in items if isinstance(i, ItemError)]


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _mean(img: Image.Image, box: tuple) -> np.ndarray:
    return np.asarray(img.convert("RGB").crop(box), dtype=float).reshape(-1, 3).mean(axis=0)


def _quadrants(size: int = 512) -> Image.Image:
    """Red, green / blue, yellow quadrants (top row first)."""
    img = Image.new("RGB", (size, size), (220, 20, 20))
    draw = ImageDraw.Draw(img)
    half = size // 2
    draw.rectangle([half, 0, size - 1, half - 1], fill=(20, 200, 20))
    draw.rectangle([0, half, half - 1, size - 1], fill=(20, 20, 220))
    draw.rectangle([half, half, size - 1, size - 1], fill=(230, 230, 20))
    return img


def _scan(seed: int, size: tuple = (1240, 1600)) -> Image.Image:
    """A grey page of text-like bars, different for each seed."""
    img = Image.new("L", size, 250)
    draw = ImageDraw.Draw(img)
    for y in range(120 + 7 * seed, size[1] - 120, 30 + seed):
        draw.rectangle([100, y, size[0] - 100 - (y * (seed + 3)) % 300, y + 12], fill=40)
    return img


def _strips(page: pymupdf.Page, scan: Image.Image, rows: int) -> None:
    """The scan drawn over the whole page as horizontal strips of `rows` pixel rows, edge to edge."""
    w, h = scan.size
    for top in range(0, h, rows):
        bottom = min(h, top + rows)
        rect = pymupdf.Rect(0, top * page.rect.height / h, page.rect.width, bottom * page.rect.height / h)
        page.insert_image(rect, stream=_jpeg(scan.crop((0, top, w, bottom))), keep_proportion=False)


def test_a_scan_stored_as_strips_too_big_to_be_decorations_is_one_page_without_a_hole():
    """A scanner that writes a page as 10 strips of 160 rows: the user sees one page scan, not 10 slivers. Two
    strips with the same bytes (the same bar pattern) are both on it: the copy was merged into the first and
    left a hole where it was drawn."""
    scan = _scan(1)
    band = scan.crop((0, 0, 1240, 160))
    ImageDraw.Draw(band).rectangle([0, 40, 1239, 120], fill=0)  # a black band, in strips 3 and 7
    scan.paste(band, (0, 480))
    scan.paste(band, (0, 1120))
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    _strips(page, scan, 160)
    items = _run(doc.tobytes())
    assert not _errors(items)
    (fig,) = _images(items)
    assert fig.locator == "page 1, figure 1 (rendered)" and fig.metadata["pages"] == [1]
    assert np.allclose(fig.metadata["bbox"], [0, 0, 612, 792], atol=1)
    h = fig.image.height
    for top in (480, 1120):  # both copies of the band are drawn, dark
        y = round((top + 80) / 1600 * h)
        assert _mean(fig.image, (10, y - 3, fig.image.width - 10, y + 3)).max() < 60


def test_each_page_of_a_scan_stored_as_strips_is_a_figure_of_its_own():
    """Three scanned pages, each stored as 50-row strips laid out the same way: three pages, not page 1 alone
    (their figures were taken for one drawing repeated on every page)."""
    doc = pymupdf.open()
    for seed in range(3):
        _strips(doc.new_page(width=612, height=792), _scan(seed, (620, 800)), 50)
    figs = _images(_run(doc.tobytes()))
    assert [(f.locator, f.metadata["pages"]) for f in figs] == [
        (f"page {n}, figure 1 (rendered)", [n]) for n in (1, 2, 3)]
    assert len({f.image.tobytes() for f in figs}) == 3


def test_a_picture_cut_into_tiles_is_one_figure_and_a_tile_drawn_alone_elsewhere_is_reported_once():
    """A 512 px picture stored as four 256 px tiles drawn edge to edge: one picture, as on the page. The top-left
    tile is also drawn alone on page 2: there it is an image of its own (once, with both pages)."""
    photo = _quadrants()
    tiles = [_jpeg(photo.crop((x, y, x + 256, y + 256))) for y in (0, 256) for x in (0, 256)]
    doc = pymupdf.open()
    page = doc.new_page()
    for k, data in enumerate(tiles):
        x, y = 100 + 150 * (k % 2), 200 + 150 * (k // 2)
        page.insert_image(pymupdf.Rect(x, y, x + 150, y + 150), stream=data)
    doc.new_page().insert_image(pymupdf.Rect(100, 100, 300, 300), stream=tiles[0])
    items = _run(doc.tobytes())
    assert not _errors(items)
    fig, alone = _images(items)
    assert fig.locator == "page 1, figure 1 (rendered)"
    assert np.allclose(fig.metadata["bbox"], [100, 200, 400, 500], atol=1)
    w, h = fig.image.size
    quarter = {(0, 0): (220, 20, 20), (1, 0): (20, 200, 20), (0, 1): (20, 20, 220), (1, 1): (230, 230, 20)}
    for (i, j), colour in quarter.items():
        box = (i * w // 2 + 20, j * h // 2 + 20, (i + 1) * w // 2 - 20, (j + 1) * h // 2 - 20)
        assert np.abs(_mean(fig.image, box) - colour).max() < 30
    assert alone.locator == "page 2, image 1" and alone.image.size == (256, 256)
    assert alone.metadata["pages"] == [1, 2] and np.allclose(alone.metadata["bbox"], [100, 100, 300, 300], atol=1)


def test_only_images_that_meet_edge_to_edge_and_fill_a_rectangle_are_joined():
    """Two photos side by side with a 6 pt gap, and three tiles in an L, stay images of their own; so do two (or
    three) that meet edge to edge, as a two-panel figure does with no white space (they were joined into one
    figure, each panel losing its resolution); four that meet (overlapping by 0.3 pt, as some producers draw
    tiles to hide the seam) and fill a rectangle are one picture."""
    left, right = _jpeg(_quadrants().crop((0, 0, 256, 512))), _jpeg(_quadrants().crop((256, 0, 512, 512)))
    doc = pymupdf.open()
    gap = doc.new_page()
    gap.insert_image(pymupdf.Rect(50, 100, 200, 400), stream=left)
    gap.insert_image(pymupdf.Rect(206, 100, 356, 400), stream=right)
    ell = doc.new_page()
    for k, (x, y) in enumerate([(100, 100), (250, 100), (100, 250)]):
        ell.insert_image(pymupdf.Rect(x, y, x + 150, y + 150), stream=_jpeg(_quadrants(256).rotate(90 * k)))
    panels = doc.new_page()  # other pictures than page 1's (those would be reported once, there)
    turned = _quadrants().rotate(180)
    panels.insert_image(pymupdf.Rect(50, 100, 200, 400), stream=_jpeg(turned.crop((0, 0, 256, 512))))
    panels.insert_image(pymupdf.Rect(200, 100, 350, 400), stream=_jpeg(turned.crop((256, 0, 512, 512))))
    meet = doc.new_page()
    for k, (x, y) in enumerate([(100, 100), (250, 100), (100, 250), (250, 250)]):
        meet.insert_image(pymupdf.Rect(x, y, x + 150.3, y + 150.3), stream=_jpeg(_quadrants(256).rotate(90 * k)))
    found = [(f.metadata["page"], f.locator.split(", ")[1]) for f in _images(_run(doc.tobytes()))]
    assert found == [(1, "image 1"), (1, "image 2"), (2, "image 1"), (2, "image 2"), (2, "image 3"),
                     (3, "image 1"), (3, "image 2"), (4, "figure 1 (rendered)")]


def test_a_cropped_stretched_image_keeps_the_detail_of_its_denser_side():
    """A 400x100 px image stretched over 200x200 pt, half of it off the page: the part seen has 200 px across
    100 pt, and is rendered with them (it was rendered at the dpi of the image's longer side over the box's
    longer side, 100 px wide). Turned a quarter, the same holds along the page's other axis."""
    img = Image.new("RGB", (400, 100), (250, 250, 250))
    draw = ImageDraw.Draw(img)
    for x in range(0, 400, 4):  # 2 px lines: visible only at the image's own resolution
        draw.line([(x, 0), (x, 99)], fill=(0, 0, 0), width=2)
    data = _jpeg(img)
    doc = pymupdf.open()
    doc.new_page(width=500, height=400).insert_image(pymupdf.Rect(400, 100, 600, 300), stream=data,
                                                     keep_proportion=False)
    doc.new_page(width=400, height=500).insert_image(pymupdf.Rect(100, 400, 300, 600), stream=data,
                                                     keep_proportion=False, rotate=90)
    flat, turned = _images(_run(doc.tobytes()))
    assert flat.locator == "page 1, image 1 (cropped, rendered)"
    assert np.allclose(flat.metadata["bbox"], [400, 100, 500, 300], atol=1)
    assert flat.image.width >= 195 and flat.image.height >= 390
    assert turned.locator == "page 2, image 1 (cropped, rendered)"
    assert turned.image.height >= 195 and turned.image.width >= 390


def test_tick_labels_set_a_little_further_out_stay_with_their_chart_and_body_text_stays_out():
    """A bar chart whose y tick labels (7 pt) end 9 pt left of the tick marks, with its axis title turned up the
    side: all of it is in the figure (the labels were cut off). A paragraph ending in a short line 12 pt above
    the chart, and a heading 12 pt below its x tick labels, are not."""
    doc = pymupdf.open()
    page = doc.new_page()
    words = "Patients were followed for two years and the counts of each group are shown below in"
    for k in range(4):  # a paragraph in 9 pt, the body text's size; its short last line ends 12 pt above the chart
        page.insert_text((50, 92 + 13 * k), words if k < 3 else "Figure 1.", fontsize=9)
    ox, oy = 100, 400
    page.draw_line((ox, oy), (ox + 300, oy), width=1)
    page.draw_line((ox, oy), (ox, oy - 250), width=1)
    for i, v in enumerate([120, 200, 80, 230, 160]):
        page.draw_rect(pymupdf.Rect(ox + 20 + 55 * i, oy - v, ox + 60 + 55 * i, oy), color=None, fill=(0.2, 0.4, 0.8))
        page.insert_text((ox + 28 + 55 * i, oy + 12), f"G{i + 1}", fontsize=7)
    for t in range(0, 260, 50):
        page.draw_line((ox - 4, oy - t), (ox, oy - t), width=0.8)
        page.insert_text((ox - 25, oy - t + 3), str(t), fontsize=7)  # ends about 9 pt left of the tick
    page.insert_text((ox - 40, oy - 100), "Count", fontsize=9, rotate=90)
    page.insert_text((ox + 100, oy + 39), "Discussion", fontsize=12)  # a heading, 12 pt below the tick labels
    (fig,) = _images(_run(doc.tobytes()))
    x0, y0, _, y1 = fig.metadata["bbox"]
    assert x0 < 55  # the tick labels (from x 75) and the turned "Count" (from x 50)
    assert 140 < y0 < 146  # the top tick label, not the paragraph's last line above it
    assert y1 < 420  # the x tick labels, not the heading


def test_a_step_plot_drawn_with_level_and_upright_lines_is_a_figure():
    """A Kaplan-Meier curve is one path of level and upright lines that run on from one another, as are its axes;
    with 8 pt tick marks every part of it looked like a rule (a table's lines drawn as one path), and the plot
    vanished ("no images found")."""
    doc = pymupdf.open()
    page = doc.new_page()
    x0, y0, w, h = 100, 120, 300, 200
    shape = page.new_shape()
    shape.draw_polyline([(x0, y0), (x0, y0 + h), (x0 + w, y0 + h)])
    for k in range(6):
        shape.draw_line((x0 + k * w / 5, y0 + h), (x0 + k * w / 5, y0 + h + 8))
        shape.draw_line((x0 - 8, y0 + k * h / 5), (x0, y0 + k * h / 5))
    shape.finish(color=(0, 0, 0), width=0.8, closePath=False)
    for colour, drop in (((0.8, 0, 0), 20), ((0, 0, 0.8), 12)):
        steps, x, y = [(x0, y0)], x0, y0
        for _ in range(8):
            x += 30
            steps += [(x, y), (x, y + drop)]
            y += drop
        shape.draw_polyline([*steps, (x0 + w, y)])
        shape.finish(color=colour, width=1.0, closePath=False)
    shape.commit()
    (fig,) = _images(_run(doc.tobytes()))
    assert fig.locator == "page 1, figure 1 (rendered)"
    assert fig.metadata["bbox"][0] < x0 - 7 and fig.metadata["bbox"][2] > x0 + w - 1


def test_overlapping_regions_merge_however_they_chain_and_keep_their_order():
    """Regions that overlap, directly or through others, become one (in the place of the first); regions apart
    stay apart. A sweep along x finds the overlaps (it restarted from the start after each merge: 1,000 regions
    took 6.9 s)."""
    from medimg.sources.pdf_figures import _merged

    apart = [(x * 100.0, 0.0, x * 100.0 + 64, 64.0) for x in range(5)]
    chain = [(x * 60.0, 1000.0, x * 60.0 + 64, 1064.0) for x in range(6)]  # each overlaps the next by 4 pt
    touching = [(0.0, 2000.0, 50.0, 2050.0), (50.0, 2000.0, 100.0, 2050.0)]  # edges touch: not merged
    late = [(600.0, 2500.0, 700.0, 2600.0), (0.0, 2500.0, 610.0, 2510.0)]  # the second overlaps the first
    assert _merged([chain[3], *apart, *chain[:3], *chain[4:], *touching, *late]) == [
        (0.0, 1000.0, 364.0, 1064.0), *apart, *touching, (0.0, 2500.0, 700.0, 2600.0)]
    assert len(_merged([*apart, *((x * 60.0, 1000.0, x * 60.0 + 64, 1064.0) for x in range(1000))])) == 6


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_a_small_image_shown_large_with_a_label_on_it_is_still_a_figure():
    """one box with text on it is page furniture (a header band, a "key points" box) only when no image
    piece is under it: a 50×50 px photograph drawn over 200 pt (a piece: too small to count alone) with its
    panel letter "A" on it is a figure, not a skipped decoration."""
    img = Image.new("RGB", (50, 50), (200, 30, 30))
    for x in range(50):
        for y in range(0, 50, 7):
            img.putpixel((x, y), (20, 20, 200))
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 80), "Figure 1. A low-resolution photograph of a lesion.", fontsize=10)
    page.insert_image(pymupdf.Rect(150, 200, 350, 400), stream=_png(img), keep_proportion=False)
    page.insert_text((160, 215), "A", fontsize=12, color=(1, 1, 1))
    items = _run(doc.tobytes())
    figs = _images(items)
    assert [f.locator for f in figs] == ["page 1, figure 1 (rendered)"], items
    x0, y0, x1, y1 = figs[0].metadata["bbox"]
    assert abs(x0 - 150) < 5 and abs(y0 - 200) < 5 and abs(x1 - 350) < 5 and abs(y1 - 400) < 5
    assert not [i for i in items if isinstance(i, ItemError)], items


def test_regions_that_only_touch_are_not_merged():
    """regions merge when their areas overlap, not when they only touch, along x or along y (two figures
    one right under the other, the first's labels ending where the second's begin, are two)."""
    from medimg.sources import pdf_figures

    above, below, beside = (0.0, 0.0, 10.0, 10.0), (0.0, 10.0, 10.0, 20.0), (10.0, 0.0, 20.0, 10.0)
    assert pdf_figures._merged([above, below]) == [above, below]
    assert pdf_figures._merged([above, beside]) == [above, beside]
    assert len(pdf_figures._merged([above, (0.0, 9.5, 10.0, 20.0)])) == 1  # overlapping by half a point: one
