"""PDF source: real PDFs built with PyMuPDF in each test."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pymupdf
import pytest
from PIL import Image, ImageDraw

from builders import pattern, pdf_objects, pdf_stream, raw_pdf
from medimg.sources import pdf
from medimg.sources.base import Blob, Context, ImageItem, ItemError, Limits
import math


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95)
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _photo(w: int, h: int, seed: int = 0) -> Image.Image:
    """Left half red, right half blue, with a seed-dependent mark so images differ."""
    img = Image.new("RGB", (w, h), (220, 20, 20))
    draw = ImageDraw.Draw(img)
    draw.rectangle([w // 2, 0, w - 1, h - 1], fill=(20, 30, 220))
    draw.rectangle([2, 2, 6 + seed % 50, 6], fill=(seed % 256, 255, 0))
    return img


def _run(data: bytes, **limits) -> list:
    return list(pdf.open_pdf(Blob("test.pdf", data), Context(Limits(**limits))))


def _images(items: list) -> list[ImageItem]:
    return [i for i in items if isinstance(i, ImageItem)]


def _errors(items: list) -> list[ItemError]:
    return [i for i in items if isinstance(i, ItemError)]


def _mean(img: Image.Image, box: tuple) -> np.ndarray:
    return np.asarray(img.crop(box), dtype=float).reshape(-1, len(img.getbands())).mean(axis=0)


def _render(data: bytes, page: int, bbox, size: tuple) -> Image.Image:
    doc = pymupdf.open(stream=data, filetype="pdf")
    pix = doc[page - 1].get_pixmap(clip=pymupdf.Rect(bbox), dpi=144)
    img = Image.frombytes("RGB", (pix.width, pix.height), pix.samples).resize(size)
    doc.close()
    return img


def test_accepts_sniffs_content_not_name():
    doc = pymupdf.open()
    doc.new_page()
    data = doc.tobytes()
    assert pdf.accepts(data[:4096], Blob("scan.txt", data))
    assert pdf.accepts(b"\xef\xbb\xbf junk\n" + data[:4000], Blob("x", data))
    png = _png(Image.new("RGB", (8, 8)))
    assert not pdf.accepts(png, Blob("report.pdf", png))
    html = b"<html><body>a page about the %PDF header</body></html>"
    assert not pdf.accepts(html, Blob("page.html", html))


def test_plugin_is_registered():
    from medimg.sources import registry

    plugin = [p for p in registry._PLUGINS if p.name == "pdf"]
    assert plugin and plugin[0].open is pdf.open_pdf


def test_jpeg_image_page_position_format_and_colours():
    doc = pymupdf.open()
    doc.new_page()
    page = doc.new_page()
    page.insert_image(pymupdf.Rect(100, 150, 400, 300), stream=_jpeg(_photo(300, 150)))
    items = _run(doc.tobytes())
    (item,) = _images(items)
    assert not _errors(items)
    assert item.locator == "page 2, image 1"
    assert item.format == "PDF/JPEG"
    assert item.metadata["page"] == 2 and item.metadata["pages"] == [2]
    assert item.metadata["bbox"] == pytest.approx([100, 150, 400, 300], abs=0.5)
    assert isinstance(item.metadata["xref"], int) and item.metadata["xref"] > 0
    assert item.image.size == (300, 150)
    assert np.abs(_mean(item.image, (20, 20, 130, 140)) - (220, 20, 20)).max() < 12
    assert np.abs(_mean(item.image, (170, 20, 280, 140)) - (20, 30, 220)).max() < 12


def test_png_alpha_keeps_transparency_and_composites_like_the_page():
    rgba = Image.new("RGBA", (120, 120), (0, 0, 0, 0))
    draw = ImageDraw.Draw(rgba)
    draw.rectangle([0, 0, 59, 119], fill=(10, 200, 10, 255))  # left: opaque green
    draw.rectangle([60, 60, 119, 119], fill=(255, 0, 0, 128))  # bottom right: half-transparent red
    doc = pymupdf.open()
    doc.new_page().insert_image(pymupdf.Rect(50, 50, 290, 290), stream=_png(rgba))
    data = doc.tobytes()
    (item,) = _images(_run(data))
    img = item.image
    assert img.mode == "RGBA" and item.metadata["smask"] is True
    assert img.getpixel((90, 20))[3] == 0  # transparent stays transparent
    assert img.getpixel((20, 20)) == pytest.approx((10, 200, 10, 255), abs=3)
    r, g, b, a = img.getpixel((90, 90))
    assert abs(a - 128) <= 2 and r >= 250 and g <= 3  # straight (not premultiplied) colour
    on_white = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img).convert("RGB")
    page = _render(data, 1, item.metadata["bbox"], img.size)
    for box in [(5, 5, 50, 110), (70, 5, 115, 50), (70, 70, 115, 115)]:
        assert np.abs(_mean(on_white, box) - _mean(page, box)).max() < 8


def test_cmyk_jpeg_colours_match_the_page():
    cmyk = Image.new("CMYK", (160, 160), (0, 255, 255, 0))  # red
    ImageDraw.Draw(cmyk).rectangle([80, 0, 159, 159], fill=(255, 0, 0, 0))  # cyan
    raw = _jpeg(cmyk)
    assert b"Adobe" in raw[:200]  # Pillow writes an Adobe APP14 (inverted CMYK) JPEG
    doc = pymupdf.open()
    doc.new_page().insert_image(pymupdf.Rect(100, 100, 260, 260), stream=raw)
    data = doc.tobytes()
    (item,) = _images(_run(data))
    img = item.image
    assert img.mode == "RGB" and item.format == "PDF/JPEG"
    red, cyan = _mean(img, (10, 10, 70, 150)), _mean(img, (90, 10, 150, 150))
    assert red[0] > 200 and red[1] < 60 and red[2] < 60, red
    assert cyan[0] < 60 and cyan[1] > 150 and cyan[2] > 200, cyan
    page = _render(data, 1, item.metadata["bbox"], img.size)
    assert np.abs(red - _mean(page, (10, 10, 70, 150))).max() < 10
    assert np.abs(cyan - _mean(page, (90, 10, 150, 150))).max() < 10


def test_logo_on_three_pages_is_reported_once_with_all_pages():
    logo = _jpeg(_photo(200, 100, seed=7))
    doc = pymupdf.open()
    for _ in range(3):
        page = doc.new_page()
        page.insert_image(pymupdf.Rect(400, 20, 560, 100), stream=logo)
        page.insert_image(pymupdf.Rect(72, 200, 372, 400), stream=_jpeg(_photo(300, 200, seed=page.number + 1)))
    items = _run(doc.tobytes())
    logos = [i for i in _images(items) if i.image.size == (200, 100)]
    assert len(logos) == 1
    assert logos[0].metadata["pages"] == [1, 2, 3]
    assert logos[0].locator == "page 1, image 1"
    photos = [i for i in _images(items) if i.image.size == (300, 200)]
    assert sorted(i.metadata["page"] for i in photos) == [1, 2, 3]


def test_identical_image_under_different_xrefs_is_reported_once():
    logo = _jpeg(_photo(200, 100, seed=3))
    doc = pymupdf.open()
    for _ in range(2):  # two separate documents, so the image is stored twice
        part = pymupdf.open()
        part.new_page().insert_image(pymupdf.Rect(100, 100, 300, 200), stream=logo)
        doc.insert_pdf(part)
    data = doc.tobytes()
    check = pymupdf.open(stream=data, filetype="pdf")
    assert check[0].get_images()[0][0] != check[1].get_images()[0][0]
    (item,) = _images(_run(data))
    assert item.metadata["pages"] == [1, 2]


def test_small_decoration_is_skipped_and_counted():
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_image(pymupdf.Rect(72, 300, 372, 500), stream=_jpeg(_photo(300, 200, seed=1)))
    for k in range(4):  # bullets: 16 px
        page.insert_image(pymupdf.Rect(60, 100 + 20 * k, 68, 108 + 20 * k), stream=_png(_photo(16, 16, seed=10 + k)))
    page.insert_image(pymupdf.Rect(72, 250, 520, 260), stream=_png(_photo(1000, 20, seed=20)))  # a rule
    page.insert_image(pymupdf.Rect(500, 20, 520, 40), stream=_jpeg(_photo(300, 300, seed=21)))  # big bitmap, tiny icon
    items = _run(doc.tobytes())
    assert [i.image.size for i in _images(items)] == [(300, 200)]
    notes = [e for e in _errors(items) if e.skipped]
    assert len(notes) == 1
    assert notes[0].error == "skipped 6 images smaller than 64 px (decoration)"
    assert len(_run(doc.tobytes(), min_side=10)) == 7  # a lower floor (5 pt drawn) keeps them all


def test_vector_figure_is_rendered_with_its_labels():
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 80), "Results of the study are shown in the figure below.", fontsize=11)
    page.draw_rect(pymupdf.Rect(150, 200, 450, 400), color=(0, 0, 0), width=1)  # axes box
    for k in range(5):
        x = 150 + 60 * k
        page.draw_line((x, 400), (x, 405))  # ticks
        page.insert_text((x - 3, 416), str(k), fontsize=8)  # tick labels below the box
        page.draw_rect(pymupdf.Rect(x + 15, 380 - 30 * k, x + 45, 400), color=None, fill=(0.2, 0.4, 0.8))
    page.draw_circle((400, 250), 20, color=(1, 0, 0), fill=(1, 0, 0))
    page.draw_line((150, 400), (450, 200), color=(0, 0.6, 0), width=2)
    page.insert_text((72, 500), "Body text after the figure, a normal paragraph.", fontsize=11)
    page.draw_line((72, 520), (520, 520))  # a rule: not a figure
    items = _run(doc.tobytes())
    assert not _errors(items)
    (fig,) = _images(items)
    assert fig.locator == "page 1, figure 1 (rendered)"
    assert fig.format == "PDF/rendered" and fig.metadata["rendered"] is True
    x0, y0, x1, y1 = fig.metadata["bbox"]
    assert abs(x0 - 149) < 5 and abs(y0 - 199) < 5 and abs(x1 - 451) < 5
    assert 414 < y1 < 425  # grown to take in the tick labels, not the body text at 500
    arr = np.asarray(fig.image)
    assert fig.image.width > 500  # rendered at 150 dpi, not 72
    red = (arr[..., 0] > 200) & (arr[..., 1] < 60) & (arr[..., 2] < 60)
    assert red.sum() > 500  # the circle is in the picture


def test_a_table_drawn_as_one_path_a_header_band_and_a_shaded_box_are_not_figures():
    """Page furniture a reader would not call a picture: a table whose rules are one path (as many producers
    draw them: it was one box, not rules), a coloured header band with the running title, and a shaded box
    with a few words; a chart on the same page still is a figure."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.draw_rect(pymupdf.Rect(0, 0, 595, 45), color=None, fill=(0.1, 0.3, 0.6))
    page.insert_text((40, 28), "Journal of Imaging  Vol 3", fontsize=11, color=(1, 1, 1))
    rules = page.new_shape()
    for r in range(5):
        rules.draw_line((72, 100 + 18 * r), (512, 100 + 18 * r))
        for c in range(4):
            page.insert_text((80 + 110 * c, 113 + 18 * r), f"{r}.{c}", fontsize=9)
    rules.finish(width=0.5, color=(0, 0, 0))
    rules.commit()
    page.draw_rect(pymupdf.Rect(72, 220, 520, 330), color=(0.4, 0.4, 0.4), fill=(0.9, 0.9, 0.8))
    page.insert_text((84, 240), "Key points", fontsize=11)
    page.draw_rect(pymupdf.Rect(150, 420, 450, 620), color=(0, 0, 0), width=1)  # a bar chart
    for k in range(5):
        page.draw_rect(pymupdf.Rect(165 + 60 * k, 600 - 30 * k, 195 + 60 * k, 620), color=None, fill=(0.2, 0.4, 0.8))
    figs = _images(_run(doc.tobytes()))
    assert [f.locator for f in figs] == ["page 1, figure 1 (rendered)"]
    x0, y0, x1, y1 = figs[0].metadata["bbox"]
    assert abs(x0 - 149) < 5 and abs(y0 - 419) < 5 and abs(x1 - 451) < 5


def test_the_panels_of_one_figure_whose_labels_reach_each_other_are_one_figure():
    """A 2×2 grid of panels, each with its title above and tick labels below, that the labels join: one figure,
    not four crops that each show part of a neighbour (two of them overlapped by 42 pt)."""
    doc = pymupdf.open()
    page = doc.new_page()
    for row in range(2):
        for col in range(2):
            x, y = 80 + 215 * col, 120 + 175 * row  # as tight_layout packs them: labels reach the neighbour
            page.insert_text((x + 60, y - 4), f"Panel {'ABCD'[2 * row + col]}", fontsize=9)
            for i in range(3):
                page.insert_text((x - 14, y + 150 - 60 * i), f"{5 * i}", fontsize=8)  # y tick labels
            page.draw_rect(pymupdf.Rect(x, y, x + 200, y + 150), color=(0, 0, 0), width=0.8)
            page.draw_polyline([(x + 10 + 36 * i, y + 140 - (20 + 17 * i + 9 * row * col) % 130) for i in range(6)],
                               color=(0.8, 0.1, 0.1), width=1.5)
            for i in range(5):
                page.insert_text((x + 40 * i, y + 162), f"{10 * i}", fontsize=8)
    figs = _images(_run(doc.tobytes()))
    assert [f.locator for f in figs] == ["page 1, figure 1 (rendered)"], [f.metadata["bbox"] for f in figs]
    x0, y0, x1, y1 = figs[0].metadata["bbox"]
    assert x0 < 67 and y0 < 116 and x1 > 494 and y1 > 455  # all four panels, titles and ticks


def test_plots_of_one_layout_with_other_data_are_each_a_figure():
    """Three plots with the same axes, size and tick labels but other curves (two on page 1, one on page 2) are
    three figures: the figures' fingerprint held only the boxes of their marks, so the second and third were
    taken for the first (`pages: [1, 2]`) and vanished. The same plot on two pages is still one."""
    import math

    def plot(page, x, y, phase):
        page.draw_rect(pymupdf.Rect(x, y, x + 200, y + 150), color=(0, 0, 0), width=1)
        for k in range(5):
            page.insert_text((x + 50 * k - 3, y + 162), str(k), fontsize=8)
        page.draw_polyline([(x + 2 * i, y + 75 - 60 * math.sin(i / 12 + phase)) for i in range(101)],
                           color=(0.8, 0.1, 0.1), width=1.5)

    doc = pymupdf.open()
    page = doc.new_page()
    plot(page, 60, 120, 0.0)
    plot(page, 60, 450, 2.0)
    plot(doc.new_page(), 60, 120, 4.0)
    plot(doc.new_page(), 60, 120, 4.0)  # page 3 repeats page 2's plot
    figs = _images(_run(doc.tobytes()))
    assert [(f.locator, f.metadata["pages"]) for f in figs] == [
        ("page 1, figure 1 (rendered)", [1]), ("page 1, figure 2 (rendered)", [1]),
        ("page 2, figure 1 (rendered)", [2, 3])]


def test_vector_figures_are_numbered_in_reading_order():
    """Figure 1 is the one a reader meets first: top to bottom, and left to right at one height (they were
    numbered by their left edge, so a chart low on the left came before one at the top right)."""
    doc = pymupdf.open()
    page = doc.new_page()
    charts = {"top right": (330, 80), "low left": (60, 500), "middle left": (60, 300), "middle right": (330, 303)}
    for k, (x, y) in enumerate(charts.values()):
        page.draw_rect(pymupdf.Rect(x, y, x + 200, y + 150), color=(0, 0, 0), width=1)
        for b in range(4):
            page.draw_rect(pymupdf.Rect(x + 20 + 45 * b, y + 130 - 25 * b - 10 * k, x + 50 + 45 * b, y + 150),
                           color=None, fill=(0.2, 0.4 + 0.1 * k, 0.8))  # each its own shape
    figs = _images(_run(doc.tobytes()))
    tops = [(round(f.metadata["bbox"][0]), round(f.metadata["bbox"][1])) for f in figs]
    assert [f.locator for f in figs] == [f"page 1, figure {n} (rendered)" for n in (1, 2, 3, 4)]
    assert [min(charts, key=lambda c: abs(charts[c][0] - x) + abs(charts[c][1] - y)) for x, y in tops] == \
        ["top right", "middle left", "middle right", "low left"], tops


def test_table_lines_and_text_boxes_are_not_figures():
    doc = pymupdf.open()
    page = doc.new_page()
    for r in range(6):  # a ruled grid table with short entries
        page.draw_line((72, 100 + 25 * r), (512, 100 + 25 * r), width=0.5)
        for c in range(4):
            page.insert_text((80 + 110 * c, 118 + 25 * r), f"{r}.{c}", fontsize=10)
    for c in range(5):
        page.draw_line((72 + 110 * c, 100), (72 + 110 * c, 225), width=0.5)
    box = pymupdf.Rect(72, 400, 520, 480)  # a shaded note box full of text
    page.draw_rect(box, color=(0.5, 0.5, 0.5), fill=(0.93, 0.93, 0.93))
    page.insert_textbox(box + (6, 6, -6, -6), "Note: " + "this box holds plain text. " * 12, fontsize=11)
    items = _run(doc.tobytes())
    assert [(e.error, e.skipped) for e in items] == [("no images found in the PDF", True)]


def test_same_vector_logo_on_every_page_is_rendered_once():
    doc = pymupdf.open()
    for _ in range(3):
        page = doc.new_page()
        page.draw_circle((500, 60), 35, color=(0, 0, 0.5), fill=(0.3, 0.3, 0.9))
        page.draw_rect(pymupdf.Rect(470, 30, 530, 90), color=(0, 0, 0.5), width=2)
    (fig,) = _images(_run(doc.tobytes()))
    assert fig.metadata["pages"] == [1, 2, 3]


def test_scanned_page_comes_out_as_the_one_image():
    scan = Image.new("L", (1240, 1754), 235)
    draw = ImageDraw.Draw(scan)
    for k in range(40):
        draw.rectangle([120, 150 + 35 * k, 1100, 165 + 35 * k], fill=40)  # lines of "text"
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_image(page.rect, stream=_jpeg(scan))
    page.insert_text((72, 100), "OCR text layer", fontsize=11, render_mode=3)  # invisible
    items = _run(doc.tobytes())
    assert not _errors(items)
    (item,) = _images(items)
    assert item.image.size == (1240, 1754) and item.image.mode == "L"
    assert item.locator == "page 1, image 1" and not item.metadata.get("rendered")


def test_one_bit_stencil_scan_with_ocr_layer_comes_out_as_an_image():
    w, h = 400, 300
    rows = bytearray()
    for y in range(h):
        row = bytearray(w // 8)
        for x in range(w):
            if (x // 40 + y // 40) % 2:
                row[x // 8] |= 0x80 >> (x % 8)
        rows += row
    doc = pymupdf.open()
    page = doc.new_page()
    mask = doc.get_new_xref()
    doc.update_object(mask, f"<</Type/XObject/Subtype/Image/Width {w}/Height {h}/ImageMask true"
                            f"/BitsPerComponent 1/Decode[1 0]>>")
    doc.update_stream(mask, bytes(rows))
    doc.xref_set_key(page.xref, "Resources", f"<</XObject<</M1 {mask} 0 R>>>>")
    content = doc.get_new_xref()
    doc.update_object(content, "<<>>")
    doc.update_stream(content, b"q 0 0 0 rg 400 0 0 300 100 300 cm /M1 Do Q")
    doc.xref_set_key(page.xref, "Contents", f"{content} 0 R")
    for k in range(12):  # invisible OCR text over the scan
        page.insert_text((105, 260 + 22 * k), "recognised words of the scanned page " * 2, fontsize=9,
                         render_mode=3)
    data = doc.tobytes()
    items = _run(data)
    (item,) = _images(items)
    assert item.locator == "page 1, image 1" and item.image.size == (w, h) and item.image.mode == "L"
    seen = _render(data, 1, item.metadata["bbox"], (w, h)).convert("L")
    ours = np.asarray(item.image, float)
    assert ours.min() < 20 and ours.max() > 235  # black squares on white
    assert np.abs(np.asarray(seen, float) - ours).mean() < 25


def test_two_same_size_images_on_a_page_keep_their_own_positions():
    rgba = Image.new("RGBA", (200, 100), (0, 200, 0, 255))
    ImageDraw.Draw(rgba).rectangle([100, 0, 199, 99], fill=(0, 0, 0, 0))
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_image(pymupdf.Rect(300, 600, 500, 700), stream=_png(rgba))  # green, half transparent
    page.insert_image(pymupdf.Rect(72, 72, 272, 172), stream=_jpeg(_photo(200, 100, seed=4)))  # red/blue
    items = _images(_run(doc.tobytes()))
    assert len(items) == 2
    by_mode = {i.image.mode: i for i in items}
    assert by_mode["RGBA"].metadata["bbox"] == pytest.approx([300, 600, 500, 700], abs=0.5)
    assert by_mode["RGB"].metadata["bbox"] == pytest.approx([72, 72, 272, 172], abs=0.5)


def test_same_size_twins_and_an_inline_image_are_told_apart_without_hashing_pixels(monkeypatch):
    # twins are matched to their xrefs by a digest of their compressed data: no page-wide pixel hashing
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_image(pymupdf.Rect(72, 72, 272, 172), stream=_jpeg(_photo(200, 100, seed=4)))  # red/blue
    page.insert_image(pymupdf.Rect(300, 600, 500, 700), stream=_jpeg(Image.new("RGB", (200, 100), (0, 200, 0))))
    samples = bytes([200, 30, 30] * 3200 + [30, 30, 200] * 3200)  # 80x80, red over blue
    inline = b"\nq 200 0 0 200 350 450 cm BI /W 80 /H 80 /CS /RGB /BPC 8 ID " + samples + b"\nEI Q"
    _raw_page_contents(doc, page, page.read_contents() + inline)
    hashed = []
    get_image_info = pymupdf.Page.get_image_info
    monkeypatch.setattr(pymupdf.Page, "get_image_info", lambda self, hashes=False, xrefs=False: (
        hashed.append(hashes or xrefs), get_image_info(self, hashes=hashes, xrefs=xrefs))[1])
    items = _images(_run(doc.tobytes()))
    assert not any(hashed)
    assert len(items) == 3
    for item in items:
        w, h = item.image.size
        r, g, b = _mean(item.image.convert("RGB"), (0, 0, w, h))
        if item.metadata.get("inline"):
            assert item.metadata["bbox"] == pytest.approx([350, 192, 550, 392], abs=1)
        elif g > 150:  # the green one
            assert item.metadata["bbox"] == pytest.approx([300, 600, 500, 700], abs=0.5)
        else:
            assert r > 80 and b > 80 and item.metadata["bbox"] == pytest.approx([72, 72, 272, 172], abs=0.5)


def test_rotated_placements_come_out_as_seen():
    doc = pymupdf.open()
    for k, rot in enumerate((0, 90, 180, 270)):
        doc.new_page().insert_image(pymupdf.Rect(100, 100, 400, 400), stream=_jpeg(_photo(200, 100, seed=k)),
                                    rotate=rot)
    turned = doc.new_page()
    turned.set_rotation(90)  # a landscape page
    turned.insert_image(pymupdf.Rect(100, 100, 400, 400), stream=_jpeg(_photo(200, 100, seed=9)))
    data = doc.tobytes()
    items = _images(_run(data))
    assert len(items) == 5
    for item in items:
        seen = _render(data, item.metadata["page"], item.metadata["bbox"], (40, 40))
        ours = item.image.convert("RGB").resize((40, 40))
        diff = np.abs(np.asarray(seen, float) - np.asarray(ours, float)).mean()
        assert diff < 10, (item.locator, diff)


def test_big_jpeg_decodes_at_a_reduced_scale_when_allowed_and_keeps_its_size():
    doc = pymupdf.open()
    doc.new_page().insert_image(pymupdf.Rect(50, 50, 550, 350), stream=_jpeg(_photo(2000, 1200)))
    doc.new_page().insert_image(pymupdf.Rect(50, 50, 350, 550), stream=_jpeg(_photo(2000, 1200, seed=3)), rotate=90)
    data = doc.tobytes()
    full = _images(_run(data))
    small = _images(_run(data, decode_side=256))
    assert [i.image.size for i in full] == [(2000, 1200), (1200, 2000)]
    assert [i.image.size for i in small] == [(500, 300), (300, 500)]  # 1/4 scale, turned as placed
    assert [(i.width, i.height) for i in small] == [(2000, 1200), (1200, 2000)]
    for a, b in zip(full, small):
        diff = np.abs(np.asarray(a.image.resize((64, 64)), float) - np.asarray(b.image.resize((64, 64)), float))
        assert diff.mean() < 3


def test_inline_image_is_rendered_from_its_region():
    doc = pymupdf.open()
    w = h = 80
    samples = bytes([200, 30, 30] * (w * h // 2) + [30, 30, 200] * (w * h // 2))
    for y in (400, 300):  # the same inline image on two pages
        page = doc.new_page()
        stream = (f"q 200 0 0 200 100 {y} cm BI /W {w} /H {h} /CS /RGB /BPC 8 ID ".encode()
                  + samples + b"\nEI Q")
        xref = doc.get_new_xref()
        doc.update_object(xref, "<<>>")
        doc.update_stream(xref, stream)
        doc.xref_set_key(page.xref, "Contents", f"{xref} 0 R")
    items = _run(doc.tobytes())
    (item,) = _images(items)
    assert item.locator == "page 1, image 1 (inline, rendered)"
    assert item.metadata["pages"] == [1, 2]
    assert item.metadata["inline"] is True and item.metadata["rendered"] is True
    w, h = item.image.size
    top = _mean(item.image, (w // 8, h // 16, w * 7 // 8, h * 3 // 8))
    bottom = _mean(item.image, (w // 8, h * 5 // 8, w * 7 // 8, h * 15 // 16))
    assert top[0] > 150 and top[2] < 80 and bottom[2] > 150 and bottom[0] < 80


def _encrypted(user_pw: str) -> bytes:
    doc = pymupdf.open()
    doc.new_page().insert_image(pymupdf.Rect(72, 72, 372, 272), stream=_jpeg(_photo(300, 200)))
    return doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner-secret", user_pw=user_pw)


def test_encrypted_with_user_password_is_one_clear_error():
    items = _run(_encrypted("patient-secret"))
    assert len(items) == 1 and isinstance(items[0], ItemError)
    assert items[0].error == "encrypted PDF, password required" and not items[0].skipped


def test_encrypted_with_empty_user_password_opens():
    items = _run(_encrypted(""))
    assert [i.image.size for i in _images(items)] == [(300, 200)] and not _errors(items)


def test_garbage_pdf_is_one_clear_error_and_quiet(capfd):
    items = _run(b"%PDF-1.7\n" + bytes(range(256)) * 20)
    assert len(items) == 1 and isinstance(items[0], ItemError)
    assert "broken PDF" in items[0].error
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_truncated_pdf_is_repaired_or_one_clear_error(capfd):
    doc = pymupdf.open()
    for k in range(4):
        doc.new_page().insert_image(pymupdf.Rect(72, 72, 372, 272), stream=_jpeg(_photo(300, 200, seed=k)))
    data = doc.tobytes()
    items = _run(data[: int(len(data) * 0.7)])  # no xref table, last image cut
    images = _images(items)
    assert 2 <= len(images) <= 4  # MuPDF repairs: the complete images come out
    assert all(i.image.size == (300, 200) for i in images)
    for e in _errors(items):  # the one PDF-wide note says it was repaired (test_pdf_damaged.py)
        assert (e.locator.startswith("page ") and e.error) or (e.skipped and "repaired by MuPDF" in e.error)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_mupdf_messages_never_reach_stdout_or_stderr(tmp_path):
    doc = pymupdf.open()
    for k in range(3):
        doc.new_page().insert_image(pymupdf.Rect(72, 72, 372, 272), stream=_jpeg(_photo(300, 200, seed=k)))
    data = doc.tobytes()
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(data[: int(len(data) * 0.7)])  # repair warnings, then a broken colour space
    script = (
        "import sys; from pathlib import Path\n"
        "from medimg.sources import pdf\n"
        "from medimg.sources.base import Blob, Context\n"
        "items = list(pdf.open_pdf(Blob('bad.pdf', Path(sys.argv[1]).read_bytes()), Context()))\n"
        "assert items\n"
    )
    run = subprocess.run([sys.executable, "-c", script, str(bad)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "" and run.stderr == ""


def test_broken_image_is_one_item_error_and_the_rest_continue():
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_image(pymupdf.Rect(72, 72, 372, 272), stream=_jpeg(_photo(300, 200, seed=1)))
    page.insert_image(pymupdf.Rect(72, 400, 372, 600), stream=_jpeg(_photo(300, 200, seed=2)))
    first = page.get_images()[0][0]
    doc.update_stream(first, b"\xff\xd8 not a jpeg at all", compress=False)
    doc.xref_set_key(first, "Filter", "/DCTDecode")
    items = _run(doc.tobytes())
    assert len(_images(items)) == 1
    (err,) = _errors(items)
    assert err.locator.startswith("page 1, image ") and "could not decode" in err.error


def test_jpeg_cut_off_after_its_header_falls_back_to_mupdf_and_is_one_error():
    """Pillow reads the header of a JPEG whose data is cut off, then fails to decode it outside MuPDF's lock:
    MuPDF then decides, under the lock, and its padded-with-black result is reported as an error."""
    doc = pymupdf.open()
    page = doc.new_page()
    good, cut = _jpeg(_photo(300, 200, seed=3)), _jpeg(_photo(300, 200, seed=4))
    page.insert_image(pymupdf.Rect(72, 72, 372, 272), stream=good)
    page.insert_image(pymupdf.Rect(72, 400, 372, 600), stream=cut)
    second = page.get_images()[1][0]
    doc.update_stream(second, cut[: len(cut) // 2], compress=False)
    doc.xref_set_key(second, "Filter", "/DCTDecode")
    items = _run(doc.tobytes())
    assert len(_images(items)) == 1
    (err,) = _errors(items)
    assert err.locator == "page 1, image 2" and "could not decode embedded image" in err.error


def test_page_cap_reads_first_pages_and_says_so():
    doc = pymupdf.open()
    for k in range(5):
        doc.new_page().insert_image(pymupdf.Rect(72, 72, 372, 272), stream=_jpeg(_photo(300, 200, seed=k)))
    items = _run(doc.tobytes(), max_pdf_pages=3)
    assert [i.metadata["page"] for i in _images(items)] == [1, 2, 3]
    (note,) = _errors(items)
    assert note.skipped and note.error == "read only the first 3 of 5 pages (max_pdf_pages)"


def test_image_cap_stops_with_a_note():
    doc = pymupdf.open()
    for k in range(5):
        doc.new_page().insert_image(pymupdf.Rect(72, 72, 372, 272), stream=_jpeg(_photo(300, 200, seed=k)))
    items = _run(doc.tobytes(), max_images_per_input=2)
    assert len(_images(items)) == 2
    assert _errors(items)[-1].error == "stopped after 2 images (max_images_per_input)"
    # both caps stop it at the same image: both are said, so that raising one is not a surprise
    items = _run(doc.tobytes(), max_images_per_input=2, max_pdf_pages=2)
    assert [e.error for e in _errors(items)] == ["stopped after 2 images (max_images_per_input)",
                                                 "read only the first 2 of 5 pages (max_pdf_pages)"]
    items = _run(doc.tobytes(), max_images_per_input=2, max_pdf_pages=3)  # the images cap alone stopped it
    assert [e.error for e in _errors(items)] == ["stopped after 2 images (max_images_per_input)"]


def test_oversized_image_is_refused_before_decoding():
    doc = pymupdf.open()
    doc.new_page().insert_image(pymupdf.Rect(72, 72, 372, 272), stream=_jpeg(_photo(600, 400)))
    items = _run(doc.tobytes(), max_pixels=100_000)
    (err,) = items
    assert "too large: 600x400" in err.error and err.locator == "page 1, image 1"


def test_document_is_closed_when_the_generator_is_closed(monkeypatch):
    opened = []
    real_open = pymupdf.open

    def spy(*args, **kwargs):
        doc = real_open(*args, **kwargs)
        opened.append(doc)
        return doc

    monkeypatch.setattr(pdf.pymupdf, "open", spy)
    doc = real_open()
    for k in range(3):
        doc.new_page().insert_image(pymupdf.Rect(72, 72, 372, 272), stream=_jpeg(_photo(300, 200, seed=k)))
    gen = pdf.open_pdf(Blob("t.pdf", doc.tobytes()), Context())
    assert isinstance(next(gen), ImageItem)
    assert not opened[0].is_closed
    gen.close()
    assert opened[0].is_closed


def test_smooth_shading_is_part_of_a_figure_not_an_image():
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_image(pymupdf.Rect(72, 500, 372, 700), stream=_jpeg(_photo(300, 200, seed=5)))
    shading = doc.get_new_xref()
    doc.update_object(shading, "<</ShadingType 2/ColorSpace/DeviceRGB/Coords[100 0 400 0]"
                               "/Function<</FunctionType 2/Domain[0 1]/C0[1 0 0]/C1[0 0 1]/N 1>>/Extend[false false]>>")
    content = doc.get_new_xref()
    doc.update_object(content, "<<>>")
    doc.update_stream(content, b"q 100 450 250 150 re W n /Sh1 sh Q")  # a clipped gradient panel
    kind, res = doc.xref_get_key(page.xref, "Resources")
    if kind == "xref":
        doc.xref_set_key(int(res.split()[0]), "Shading", f"<</Sh1 {shading} 0 R>>")
    else:
        doc.xref_set_key(page.xref, "Resources/Shading", f"<</Sh1 {shading} 0 R>>")
    parts = " ".join(f"{x} 0 R" for x in page.get_contents() + [content])
    doc.xref_set_key(page.xref, "Contents", f"[{parts}]")
    data = doc.tobytes()
    check = pymupdf.open(stream=data, filetype="pdf")[0]
    assert len(check.get_image_info()) == 2  # MuPDF's text device sees the shading as an image
    items = _run(data)
    assert [i.locator for i in _images(items)] == ["page 1, image 1"]
    assert not _errors(items)


def test_fast_jpeg_path_gives_the_same_pixels_as_mupdf():
    yy, xx = np.mgrid[0:120, 0:160]
    photo = Image.fromarray(np.stack([xx * 1.5, yy * 2, 255 - xx], axis=-1).astype(np.uint8))  # smooth
    gray = _photo(160, 120, seed=2).convert("L")
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_image(pymupdf.Rect(72, 72, 232, 192), stream=_jpeg(photo))
    page.insert_image(pymupdf.Rect(72, 300, 232, 420), stream=_jpeg(gray))
    data = doc.tobytes()
    items = _images(_run(data))
    assert [i.image.mode for i in items] == ["RGB", "L"]
    check = pymupdf.open(stream=data, filetype="pdf")
    for item in items:
        pix = pymupdf.Pixmap(check, item.metadata["xref"])
        mupdf_img = Image.frombytes("RGB" if pix.n == 3 else "L", (pix.width, pix.height), pix.samples)
        diff = np.abs(np.asarray(mupdf_img, float) - np.asarray(item.image, float))
        assert diff.mean() < 2 and diff.max() < 40


def _raw_page(doc: pymupdf.Document, content: bytes) -> None:
    page = doc.new_page()
    xref = doc.get_new_xref()
    doc.update_object(xref, "<<>>")
    doc.update_stream(xref, content)
    doc.xref_set_key(page.xref, "Contents", f"{xref} 0 R")


def test_dense_pages_stay_fast_rules_are_not_figures_and_dots_are():
    rng = np.random.default_rng(0)
    doc = pymupdf.open()
    lines = b"".join(b"20 %.2f m 575 %.2f l S\n" % (y, y) for y in np.arange(20, 820, 0.04))
    _raw_page(doc, b"0.1 w\n" + lines)  # 20,000 separate hairlines
    dots = b"".join(b"%.1f %.1f 0.8 0.8 re f\n" % (x, y) for x, y in rng.uniform(100, 400, (25_000, 2)))
    _raw_page(doc, dots)  # a scatter plot of 25,000 dots, no axes
    few = b"".join(b"%.1f %.1f 0.8 0.8 re f\n" % (x, y) for x, y in rng.uniform(100, 400, (2_000, 2)))
    _raw_page(doc, few)  # and one of 2,000 dots (clustered dot by dot, no grid)
    data = doc.tobytes()
    start = time.process_time()
    items = _run(data)
    assert time.process_time() - start < 20
    fig, small = _images(items)
    assert small.locator == "page 3, figure 1 (rendered)"
    assert fig.locator == "page 2, figure 1 (rendered)"
    x0, y0, x1, y1 = fig.metadata["bbox"]
    assert abs(x0 - 100) < 5 and abs(x1 - 400) < 5 and abs((y1 - y0) - 300) < 8  # dense pages snap to 4 pt


def test_soft_mask_of_another_size_is_scaled_to_the_image():
    w, h = 120, 80
    doc = pymupdf.open()
    page = doc.new_page()
    mask = doc.get_new_xref()  # 60x40 mask: left half opaque, right half transparent
    doc.update_object(mask, "<</Type/XObject/Subtype/Image/Width 60/Height 40/ColorSpace/DeviceGray"
                            "/BitsPerComponent 8>>")
    doc.update_stream(mask, bytes(([255] * 30 + [0] * 30) * 40))
    image = doc.get_new_xref()
    doc.update_object(image, f"<</Type/XObject/Subtype/Image/Width {w}/Height {h}/ColorSpace/DeviceRGB"
                             f"/BitsPerComponent 8/SMask {mask} 0 R>>")
    doc.update_stream(image, bytes([30, 160, 30] * (w * h)))
    doc.xref_set_key(page.xref, "Resources", f"<</XObject<</I1 {image} 0 R>>>>")
    _raw_page_contents(doc, page, b"q 240 0 0 160 100 400 cm /I1 Do Q")
    (item,) = _images(_run(doc.tobytes()))
    img = item.image
    assert img.size == (w, h) and img.mode == "RGBA" and item.metadata["smask"] is True
    assert img.getpixel((20, 40)) == pytest.approx((30, 160, 30, 255), abs=3)
    assert img.getpixel((100, 40))[3] == 0


def _raw_page_contents(doc: pymupdf.Document, page: pymupdf.Page, content: bytes) -> None:
    xref = doc.get_new_xref()
    doc.update_object(xref, "<<>>")
    doc.update_stream(xref, content)
    doc.xref_set_key(page.xref, "Contents", f"{xref} 0 R")


def test_registry_routes_pdf_bytes_here_whatever_the_name():
    from medimg.sources import registry

    doc = pymupdf.open()
    doc.new_page().insert_image(pymupdf.Rect(72, 72, 372, 272), stream=_jpeg(_photo(300, 200)))
    blob = Blob("upload.bin", doc.tobytes())
    assert registry.find(blob).name == "pdf"
    items = list(registry.open_blob(blob, Context()))
    assert [i.locator for i in items] == ["page 1, image 1"]


def test_pdfs_in_many_threads_take_turns_and_all_complete():
    """MuPDF and its warning log are process-wide; the source serialises each step, so a broken
    image in one thread's PDF never marks another thread's good image as broken."""
    from concurrent.futures import ThreadPoolExecutor

    docs = []
    for k in range(4):
        doc = pymupdf.open()
        for p in range(3):
            page = doc.new_page()
            page.insert_image(pymupdf.Rect(50, 50, 300, 250), stream=_png(_photo(160, 120, seed=10 * k + p)))
            page.insert_image(pymupdf.Rect(50, 300, 300, 500), stream=_jpeg(_photo(160, 120, seed=7 + k + p)))
            if k % 2:  # every other document has a broken image on each page
                bad = page.get_images()[-1][0]
                doc.update_stream(bad, b"\xff\xd8 not a jpeg at all", compress=False)
                doc.xref_set_key(bad, "Filter", "/DCTDecode")
        docs.append(doc.tobytes())

    def work(i):
        got = []
        for item in pdf.open_pdf(Blob(f"{i % 4}.pdf", docs[i % 4]), Context(Limits())):
            got.append(item)
            time.sleep(0.0005)  # let other threads step their generators in between
        return [(type(x).__name__, x.locator) for x in got]

    expected = [work(k) for k in range(4)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(24)))
    assert all(r == expected[i % 4] for i, r in enumerate(results))
    assert [kind for kind, _ in expected[0]].count("ImageItem") == 6
    assert [kind for kind, _ in expected[1]].count("ImageItem") == 3 and ("ItemError", "page 1, image 2") in expected[1]


def test_pymupdf_layout_models_are_not_loaded():
    """PyMuPDF 2 loads layout-analysis ONNX models on import (~60 MB, threads) that the PDF source never uses."""
    import subprocess
    import sys

    code = ("import sys, medimg.sources.pdf as p, pymupdf; doc = pymupdf.open(); doc.new_page(); "
            "print(sys.modules.get('pymupdf.layout'), pymupdf._get_layout)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None", "None"]


# Hostile PDFs: each is refused or cut short with a clear note, in bounded time and memory, the rest kept.


def _fanout(depth: int, photo: bytes = b"") -> bytes:
    """A page drawing form T, each form drawing the one below 10 times: 10^depth squares from ~3 KB; with
    a photo (an image XObject) drawn first."""
    extra = [pdf_stream("/Type /XObject /Subtype /Form /BBox [0 0 10 10]", b"0 0 1 1 re f")]
    for k in range(1, depth + 1):
        body = b"".join(b"q 1 0 0 1 %d 0 cm /F Do Q " % (i * 2) for i in range(10))
        extra.append(pdf_stream(f"/Type /XObject /Subtype /Form /BBox [-1e6 -1e6 1e6 1e6] "
                                f"/Resources << /XObject << /F {4 + k} 0 R >> >>", body))
    if photo:
        return raw_pdf(b"q 300 0 0 200 72 400 cm /P Do Q /T Do", extra=[*extra, photo],
                       resources=f"<< /XObject << /T {5 + depth} 0 R /P {6 + depth} 0 R >> >>")
    return raw_pdf(b"/T Do", resources=f"<< /XObject << /T {5 + depth} 0 R >> >>", extra=extra)


def _jpeg_xobject(img: Image.Image) -> bytes:
    w, h = img.size
    return pdf_stream(f"/Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceRGB "
                      "/BitsPerComponent 8 /Filter /DCTDecode", _jpeg(img))


def test_nested_forms_drawn_a_million_times_stop_early_and_the_photo_still_comes_out():
    # form XObjects fanning out 10x per level: MuPDF would draw 10^6 squares (11 s, 400 MB) on every read
    data = _fanout(6, photo=_jpeg_xobject(_photo(300, 200)))
    start = time.process_time()
    items = _run(data)
    assert time.process_time() - start < 5
    (note,) = _errors(items)
    assert note.skipped and note.locator == "page 1" and "more than 200,000 drawing steps" in note.error
    (photo_item,) = _images(items)  # listed from the page's resources, without its place
    assert photo_item.image.size == (300, 200) and photo_item.metadata["bbox"] is None
    assert photo_item.metadata["pages"] == [1]


def test_one_image_drawn_thousands_of_times_is_matched_to_its_place_once():
    """Matching each drawing of an image to its place compared every pair (a 194 KB fuzzed PDF drawing one image
    5,001 times: 54 s). One place drawn often is one entry now, and past PAGE_MAX_IMAGES the page's images are
    listed without their places, as past PAGE_MAX_STEPS."""
    photo = _jpeg_xobject(_photo(120, 80))
    for times, placed in ((pdf.PAGE_MAX_IMAGES, True), (pdf.PAGE_MAX_IMAGES + 1, False)):
        data = raw_pdf(b"q 120 0 0 80 72 400 cm /P Do Q " * times, extra=[photo],
                       resources="<< /XObject << /P 5 0 R >> >>")
        start = time.process_time()
        items = _run(data)
        assert time.process_time() - start < 3  # 0.1 s here; 6.5 s for 2,000 drawings before
        (photo_item,) = _images(items)
        assert photo_item.image.size == (120, 80) and (photo_item.metadata["bbox"] is not None) == placed
        notes = [e.error for e in _errors(items)]
        assert notes == ([] if placed else ["more than 2,000 images drawn: figures not looked for, images listed "
                                            "without their place"])


def test_forms_nested_past_mupdfs_stack_say_so_in_one_line():
    """Found by fuzzing: 300 form XObjects each drawing the next overflow MuPDF's exception stack inside our
    device, and SWIG wrapped the reason in a traceback that became the error text."""
    depth = 300
    forms = [pdf_stream("/Type /XObject /Subtype /Form /BBox [0 0 1 1] "
                        f"/Resources << /XObject << /F {6 + k} 0 R >> >>", b"q 1 0 0 1 0 0 cm /F Do Q")
             for k in range(depth)]
    forms.append(pdf_stream("/Type /XObject /Subtype /Form /BBox [0 0 1 1]", b"0 0 1 1 re f"))
    data = raw_pdf(b"q 200 0 0 200 50 50 cm /F Do Q", resources="<< /XObject << /F 5 0 R >> >>", extra=forms)
    errors = [e.error for e in _errors(_run(data))]
    assert errors == ["could not read page: drawings nested too deep for MuPDF (exception stack overflow)"], errors


def test_a_slow_pdf_lets_go_of_mupdf_between_pages():
    from concurrent.futures import ThreadPoolExecutor

    doc = pymupdf.open()
    page_bytes = _fanout(4)  # 10,000 squares per page: a fraction of a second each
    for _ in range(10):
        doc.insert_pdf(pymupdf.open(stream=page_bytes, filetype="pdf"))
    slow = doc.tobytes()
    small = pymupdf.open()
    small.new_page().insert_image(pymupdf.Rect(72, 72, 372, 272), stream=_jpeg(_photo(300, 200)))
    small = small.tobytes()

    def timed(data: bytes, wait: float) -> float:
        time.sleep(wait)
        start = time.perf_counter()
        _run(data)
        return time.perf_counter() - start

    with ThreadPoolExecutor(2) as pool:
        slow_run = pool.submit(timed, slow, 0)
        small_run = pool.submit(timed, small, 0.2)
        slow_s, small_s = slow_run.result(), small_run.result()
    assert slow_s > 1.0
    assert small_s < slow_s / 2  # each of its few steps waited for one page of the slow PDF, not for all


def test_pdf_time_limit_stops_reading_pages_with_a_note(monkeypatch):
    doc = pymupdf.open()
    bars = b"".join(b"%d %d 18 3 re f\n" % (72 + i % 20 * 20, 100 + i // 20 * 4) for i in range(3000))
    for k in range(40):  # tens of ms a page: some 6 of them in half a second, far from 40
        page = doc.new_page()
        page.insert_image(pymupdf.Rect(72, 72, 372, 272), stream=_jpeg(_photo(300, 200, seed=k)))
        xref = doc.get_new_xref()
        doc.update_object(xref, "<<>>")
        doc.update_stream(xref, bars)
        doc.xref_set_key(page.xref, "Contents", f"[{page.get_contents()[0]} 0 R {xref} 0 R]")
    data = doc.tobytes()
    start = time.monotonic()
    whole = len(_images(_run(data)))  # the 40 photos, and the bars drawn as a figure
    assert whole >= 40
    budget = round(max(time.monotonic() - start, 0.4) / 3, 3)  # a third of the whole work, whatever the load
    monkeypatch.setattr(pdf, "PDF_SECONDS", budget)  # half of it for pass 1: some pages, far from 40
    items = _run(data)
    note = _errors(items)[-1]
    assert note.skipped and f"out of time ({budget:g} s of work per PDF)" in note.error
    assert 0 < len(_images(items)) < whole
    assert not [e for e in _errors(items) if not e.skipped]


def test_column_of_dots_is_clustered_in_linear_time():
    # 12,000 separate dots in one column of a tall page: the sweep used to compare each with all before it
    content = b"".join(b"0 %d 2 2 re f\n" % (y * 20) for y in range(12_000))
    data = raw_pdf(content, mediabox="[0 0 612 240100]", compress=True)
    start = time.process_time()
    items = _run(data)
    assert time.process_time() - start < 3
    assert [e.error for e in items] == ["no images found in the PDF"]  # dots 20 pt apart: no figure


def test_coverage_grid_is_bounded_by_the_page_and_its_resolution():
    # drawings running far off the page under a stretched image: the coverage grid was one byte per point
    # of their box (30000 x 30000 pt: 900 MB); on a page 14,400 pt square it is still far from that
    import tracemalloc

    gray = pdf_stream("/Type /XObject /Subtype /Image /Width 2 /Height 2 /ColorSpace /DeviceGray "
                      "/BitsPerComponent 8", b"\x00\x40\x80\xc0")
    for span, mediabox in ((12_000, "[0 0 612 792]"), (14_000, "[0 0 14400 14400]")):
        content = b"".join(b"%d %d 8 8 re f\n" % (x, x) for x in range(0, span, 8))
        content += b"q %d 0 0 %d 0 0 cm /Im Do Q\n" % (span, span)
        data = raw_pdf(content, resources="<< /XObject << /Im 5 0 R >> >>", extra=[gray], mediabox=mediabox,
                       compress=True)
        tracemalloc.start()
        items = _run(data)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 40e6, (span, peak)
        assert not _images(items)  # the image covers the drawings: no figure; itself a 2x2 decoration


def test_figures_outside_the_visible_page_are_not_reported():
    doc = pymupdf.open()
    page = doc.new_page(width=1224, height=792)  # a two-up sheet cropped to its left half
    page.insert_image(pymupdf.Rect(72, 72, 372, 272), stream=_png(_photo(300, 200)))
    for i in range(12):  # a bar chart on the right half, which the CropBox cuts away
        page.draw_rect(pymupdf.Rect(700 + 24 * i, 500 - 20 * i, 720 + 24 * i, 500), color=(0, 0, 0),
                       fill=(0.2, 0.3, 0.8))
    page.draw_rect(pymupdf.Rect(600, 600, 660, 700), color=(0, 0, 0), fill=(0.8, 0.3, 0.2))  # 12 pt of it shown
    page.set_cropbox(pymupdf.Rect(0, 0, 612, 792))
    items = _run(doc.tobytes())
    assert [(i.locator, i.image.size) for i in items] == [("page 1, image 1", (300, 200))]
    # 2,500 chart-sized squares in a row, nearly all off the page: not 1,000 empty figures
    data = raw_pdf(b"".join(b"%d 100 40 70 re f\n" % (i * 100) for i in range(2500)), compress=True)
    items = _run(data)
    assert [i.locator for i in items] == ["page 1, figure 1 (rendered)"]
    assert all(min(i.image.size) > 0 for i in _images(items))


def test_soft_mask_larger_than_max_pixels_is_refused_before_decoding():
    base = bytes(range(256)) * (100 * 100 * 3 // 256) + bytes(100 * 100 * 3 % 256)
    data = raw_pdf(b"q 300 0 0 300 100 100 cm /Im Do Q", resources="<< /XObject << /Im 5 0 R >> >>", extra=[
        pdf_stream("/Type /XObject /Subtype /Image /Width 100 /Height 100 /ColorSpace /DeviceRGB "
                   "/BitsPerComponent 8 /SMask 6 0 R", base, compress=True),
        pdf_stream("/Type /XObject /Subtype /Image /Width 2000 /Height 2000 /ColorSpace /DeviceGray "
                   "/BitsPerComponent 8", b"\xff" * 4_000_000, compress=True)])
    (err,) = _run(data, max_pixels=1_000_000)
    assert err.locator == "page 1, image 1"
    assert err.error == "embedded image's mask too large: 2000x2000 pixels (max_pixels 1000000)"
    (item,) = _run(data)  # within the cap it is the image with its mask
    assert item.image.mode == "RGBA" and item.image.size == (100, 100)


def _jpx_pdf(size: tuple[int, int], declared: tuple[int, int] = (100, 100)) -> bytes:
    buf = io.BytesIO()
    Image.new("L", size, 128).save(buf, "JPEG2000", irreversible=True, num_resolutions=1)
    return raw_pdf(b"q 300 0 0 300 100 100 cm /Im Do Q", resources="<< /XObject << /Im 5 0 R >> >>", extra=[
        pdf_stream(f"/Type /XObject /Subtype /Image /Width {declared[0]} /Height {declared[1]} "
                   "/ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /JPXDecode", buf.getvalue())])


def test_jpeg2000_larger_than_its_dictionary_is_checked_at_its_own_size():
    # MuPDF decodes a JPX at its codestream's size: this one was taken for an inline image and rendered uncapped
    (err,) = _run(_jpx_pdf((1500, 1500)), max_pixels=1_000_000)
    assert err.locator == "page 1, image 1"
    assert "too large: 1500x1500 pixels in its JPEG 2000 data, 100x100 in the PDF" in err.error
    (item,) = _run(_jpx_pdf((300, 300)))  # within the cap: the embedded image at its real size
    assert item.locator == "page 1, image 1" and item.format == "PDF/JPEG2000" and item.image.size == (300, 300)


def test_inline_image_larger_than_max_pixels_is_not_rendered():
    raw = zlib.compress(b"\x80" * (1200 * 1200), 9)
    data = raw_pdf(b"q 300 0 0 300 100 100 cm\nBI /W 1200 /H 1200 /CS /G /BPC 8 /F /Fl /L %d\nID\n" % len(raw)
                   + raw + b"\nEI\nQ\n")
    (err,) = _run(data, max_pixels=1_000_000)
    # found in the content stream before MuPDF runs the page, which would decode it to find its end (a fuzzed
    # 30,000² inline JPEG: 10 s and 1 GB for each run of the page)
    assert err.locator == "page 1" and not err.skipped
    assert err.error == ("an inline image of 1200x1200 pixels, over the max_pixels cap of 1,000,000: figures not "
                         "looked for, images listed without their place")
    (item,) = _run(data)
    assert item.metadata["inline"] is True
    # the same inline image inside a form XObject the page draws
    form = pdf_stream("/Type /XObject /Subtype /Form /BBox [0 0 1 1]",
                      b"BI /W 1200 /H 1200 /CS /G /BPC 8 /F /Fl /L %d\nID\n" % len(raw) + raw + b"\nEI\n")
    data = raw_pdf(b"q 300 0 0 300 100 100 cm /F Do Q", resources="<< /XObject << /F 5 0 R >> >>", extra=[form])
    (err,) = _run(data, max_pixels=1_000_000)
    assert err.locator == "page 1" and err.error.startswith("an inline image of 1200x1200 pixels, over the max_pixels")
    # and inside a tiling pattern the page paints with, named directly or through a dictionary of its own
    pattern = pdf_stream("/Type /Pattern /PatternType 1 /PaintType 1 /TilingType 1 /BBox [0 0 1 1] /XStep 1 "
                         "/YStep 1 /Resources << >>",
                         b"BI /W 1200 /H 1200 /CS /G /BPC 8 /F /Fl /L %d\nID\n" % len(raw) + raw + b"\nEI\n")
    for resources, extra in (("<< /Pattern << /P 5 0 R >> >>", [pattern]),
                             ("<< /Pattern 6 0 R >>", [pattern, "<< /P 5 0 R >>"])):
        data = raw_pdf(b"/Pattern cs /P scn 0 0 300 300 re f", resources=resources, extra=extra)
        errors = [e.error for e in _errors(_run(data, max_pixels=1_000_000))]
        assert errors[0].startswith("an inline image of 1200x1200 pixels, over the max_pixels"), errors



def test_inline_image_over_max_pixels_in_a_pattern_named_by_a_form_is_found_before_running_the_page():
    """A tiling pattern named only by a form XObject's resources (or a pattern's): found too, each stream once."""
    raw = zlib.compress(b"\x80" * (1200 * 1200), 9)
    inline = b"BI /W 1200 /H 1200 /CS /G /BPC 8 /F /Fl /L %d\nID\n" % len(raw) + raw + b"\nEI\n"
    tiling = "/Type /Pattern /PatternType 1 /PaintType 1 /TilingType 1 /BBox [0 0 1 1] /XStep 1 /YStep 1"
    paint = b"/Pattern cs /P scn 0 0 1 1 re f"
    form = "/Type /XObject /Subtype /Form /BBox [0 0 1 1] /Resources "
    cases = {  # page draws form 5; the pattern with the inline image is object 6
        "in the form's resources": [pdf_stream(form + "<< /Pattern << /P 6 0 R >> >>", paint),
                                    pdf_stream(tiling + " /Resources << >>", inline)],
        "in the form's resources, an object of its own": [pdf_stream(form + "7 0 R", paint),
                                                          pdf_stream(tiling + " /Resources << >>", inline),
                                                          "<< /Pattern 8 0 R >>", "<< /P 6 0 R >>"],
        "in a pattern of a pattern of the form": [pdf_stream(form + "<< /Pattern << /P 7 0 R >> >>", paint),
                                                  pdf_stream(tiling + " /Resources << >>", inline),
                                                  pdf_stream(tiling + " /Resources << /Pattern << /P 6 0 R >> >>",
                                                             paint)],
    }
    for case, extra in cases.items():
        data = raw_pdf(b"q 300 0 0 300 100 100 cm /F Do Q", resources="<< /XObject << /F 5 0 R >> >>",
                       extra=extra)
        errors = [e.error for e in _errors(_run(data, max_pixels=1_000_000))]
        assert errors and errors[0].startswith("an inline image of 1200x1200 pixels, over the max_pixels"), case
    # a form that names itself, and a pattern that names itself, are looked at once
    data = raw_pdf(b"/F Do", resources="<< /XObject << /F 5 0 R >> >>", extra=[
        pdf_stream(form + "<< /XObject << /F 5 0 R >> /Pattern << /P 6 0 R >> >>", b"/F Do " + paint),
        pdf_stream(tiling + " /Resources << /Pattern << /P 6 0 R >> >>", paint)])
    forms: dict = {}
    doc = pymupdf.open(stream=data, filetype="pdf")
    assert pdf._inline_over_cap(doc, doc[0], 1_000_000, forms) == "" and sorted(forms) == [5, 6]

def _jbig2_pdf(page: tuple[int, int], declared: int = 200) -> bytes:
    def segment(number: int, kind: int, data: bytes) -> bytes:
        return struct.pack(">IBBBI", number, kind, 0, 1, len(data)) + data

    jbig2 = segment(0, 48, struct.pack(">IIIIBH", *page, 0, 0, 0, 0)) + segment(1, 49, b"")
    return raw_pdf(b"q 300 0 0 300 100 100 cm /Im Do Q", resources="<< /XObject << /Im 5 0 R >> >>", extra=[
        pdf_stream(f"/Type /XObject /Subtype /Image /Width {declared} /Height {declared} /ColorSpace /DeviceGray "
                   "/BitsPerComponent 1 /Filter /JBIG2Decode", jbig2)])


def test_jbig2_page_larger_than_max_pixels_is_refused_before_decoding():
    # the page information segment says 30000 x 30000 while the PDF says 200 x 200: jbig2dec would allocate it
    (err,) = _run(_jbig2_pdf((30_000, 30_000)))
    assert err.locator == "page 1, image 1"
    assert "its JBIG2 data asks for 30000x30000 pixels, 200x200 in the PDF (max_pixels 100000000)" in err.error
    assert pdf._jbig2_size(b"") == (0, 0)
    striped = struct.pack(">IBBBI", 0, 48, 0, 1, 19) + struct.pack(">IIIIBH", 500, 0xFFFFFFFF, 0, 0, 0, 0x8000 | 64)
    stripe_end = struct.pack(">IBBBI", 1, 50, 0, 1, 4) + struct.pack(">I", 999_999)
    assert pdf._jbig2_size(striped + stripe_end) == (500, 1_000_000)  # a page of unknown height grows


def test_same_size_images_never_make_an_oversized_one_decode(monkeypatch):
    # two same-size images on a page made PyMuPDF decode every image of it (for pixel digests), even one
    # that max_pixels refuses
    decoded = []
    real = pymupdf.Pixmap

    class Spy(real):
        def __init__(self, *args):
            super().__init__(*args)
            decoded.append(self.width * self.height)

    small = [pdf_stream("/Type /XObject /Subtype /Image /Width 80 /Height 80 /ColorSpace /DeviceGray "
                        "/BitsPerComponent 8", bytes([v]) * 6400, compress=True) for v in (10, 200)]
    big = pdf_stream("/Type /XObject /Subtype /Image /Width 1500 /Height 1500 /ColorSpace /DeviceRGB "
                     "/BitsPerComponent 8", b"\x80" * (1500 * 1500 * 3), compress=True)
    data = raw_pdf(b"q 300 0 0 300 100 100 cm /Big Do Q q 80 0 0 80 100 500 cm /A Do Q",
                   resources="<< /XObject << /Big 5 0 R /A 6 0 R /B 7 0 R >> >>", extra=[big, *small])
    monkeypatch.setattr(pymupdf, "Pixmap", Spy)
    items = _run(data, max_pixels=1_000_000)
    assert max(decoded, default=0) <= 1_000_000  # the small plain Flate image needs no Pixmap
    assert [(type(i).__name__, i.locator) for i in items] == [("ItemError", "page 1, image 1"),
                                                            ("ImageItem", "page 1, image 2")]
    assert _images(items)[0].metadata["xref"] == 6


def test_figure_over_an_image_too_large_to_decode_is_not_rendered():
    big = pdf_stream("/Type /XObject /Subtype /Image /Width 1500 /Height 1500 /ColorSpace /DeviceGray "
                     "/BitsPerComponent 8", b"\x80" * (1500 * 1500), compress=True)
    bars = b"".join(b"%d 300 26 %d re f " % (100 + 30 * i, 20 + 15 * i) for i in range(10))
    data = raw_pdf(b"q 130 0 0 200 0 250 cm /Big Do Q " + bars, resources="<< /XObject << /Big 5 0 R >> >>",
                   extra=[big])
    items = _run(data, max_pixels=1_000_000)
    # the first bar is drawn over the image: it is rendered as seen (so not at all, being too large to decode)
    assert [(type(i).__name__, i.locator) for i in items] == [("ItemError", "page 1, image 1 (covered, rendered)"),
                                                            ("ItemError", "page 1, figure 1 (rendered)")]
    assert items[1].error == "not rendered: it overlaps an image too large to decode"
    assert [i.locator for i in _images(_run(data))] == ["page 1, image 1 (covered, rendered)",
                                                        "page 1, figure 1 (rendered)"]


def test_region_drawn_over_too_many_times_renders_at_lower_dpi_or_not_at_all(monkeypatch):
    bars = b"".join(b"%d 300 26 %d re f " % (100 + 30 * i, 20 + 15 * i) for i in range(10))
    data = raw_pdf(bars * 50 + b"100 300 300 160 re f " * 50)
    (item,) = _run(data)
    assert item.metadata["dpi"] == 150
    monkeypatch.setattr(pdf, "RENDER_MAX_PAINT", 4e6)
    (item,) = _run(data)
    assert 24 <= item.metadata["dpi"] < 150
    monkeypatch.setattr(pdf, "RENDER_MAX_PAINT", 1e5)
    (err,) = _run(data)
    assert err.locator == "page 1, figure 1 (rendered)" and err.error.startswith("not rendered: drawn over about")


def test_page_tree_claiming_a_billion_pages_is_a_clear_pdf_error():
    from medimg.sources import registry

    data = pdf_objects(["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1000000000 >>",
                        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 100 100] >>"])
    (err,) = registry.open_blob(Blob("pages.pdf", data), Context())
    assert err.error.startswith("broken PDF: unreadable page tree") and not err.skipped


def test_a_scan_stored_as_strips_and_a_picture_cut_into_tiles_come_out_whole():
    """Each piece is below the decoration floor alone; together they are one picture, rendered as a figure.
    A lone icon stays a decoration."""
    scan = _photo(1275, 1650, seed=3)
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    for k in range(50):  # strips 1275 x 33 px
        strip = scan.crop((0, 33 * k, 1275, 33 * k + 33))
        page.insert_image(pymupdf.Rect(0, k * 792 / 50, 612, (k + 1) * 792 / 50), stream=_png(strip),
                          keep_proportion=False)
    page = doc.new_page()
    photo = _photo(400, 400, seed=4)
    for i in range(8):  # tiles 50 x 50 px over 320 x 320 pt
        for j in range(8):
            tile = photo.crop((50 * i, 50 * j, 50 * i + 50, 50 * j + 50))
            page.insert_image(pymupdf.Rect(100 + 40 * i, 200 + 40 * j, 140 + 40 * i, 240 + 40 * j), stream=_png(tile))
    page.insert_image(pymupdf.Rect(500, 40, 516, 56), stream=_png(_photo(16, 16, seed=9)))  # an icon
    items = _run(doc.tobytes())
    figs = _images(items)
    assert [(f.metadata["page"], f.locator.split(", ")[1]) for f in figs] == [(1, "figure 1 (rendered)"),
                                                                              (2, "figure 1 (rendered)")]
    # the pieces are shown in their figures: only the icon is a skipped decoration
    assert [e.error for e in _errors(items)] == ["skipped 1 image smaller than 64 px (decoration)"]
    x0, y0, x1, y1 = figs[0].metadata["bbox"]
    assert x0 < 2 and y0 < 2 and x1 > 610 and y1 > 790
    x0, y0, x1, y1 = figs[1].metadata["bbox"]
    assert abs(x0 - 100) < 3 and abs(y0 - 200) < 3 and abs(x1 - 420) < 3 and abs(y1 - 520) < 3
    left, right = _mean(figs[1].image, (5, 5, 40, 40)), _mean(figs[1].image, (figs[1].image.width - 40, 5,
                                                                            figs[1].image.width - 5, 40))
    assert left[0] > 150 > left[2] and right[2] > 150 > right[0]  # red left half, blue right half, as pasted


def test_an_image_placed_off_the_page_is_not_reported():
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_image(pymupdf.Rect(72, 100, 372, 300), stream=_jpeg(_photo(300, 200, seed=5)))
    page.insert_image(pymupdf.Rect(700, 392, 1100, 692), stream=_jpeg(_photo(400, 300, seed=6)))  # right of the page
    assert [i.image.size for i in _images(_run(doc.tobytes()))] == [(300, 200)]


def test_a_pdf_without_images_says_so():
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 100), "Only text here.", fontsize=11)
    assert [(e.error, e.skipped) for e in _run(doc.tobytes())] == [("no images found in the PDF", True)]


def test_a_vector_figure_keeps_its_axis_title_beyond_the_tick_labels():
    doc = pymupdf.open()
    page = doc.new_page()
    page.draw_rect(pymupdf.Rect(150, 200, 450, 400), color=(0, 0, 0), width=1)
    for k in range(5):
        x = 150 + 60 * k
        page.draw_line((x, 400), (x, 405))
        page.insert_text((x - 3, 416), str(k), fontsize=8)  # tick labels
        page.draw_rect(pymupdf.Rect(x + 15, 380 - 30 * k, x + 45, 400), color=None, fill=(0.2, 0.4, 0.8))
    page.insert_text((280, 432), "time (s)", fontsize=9)  # the axis title, beyond the tick labels
    page.insert_text((72, 480), "Figure 1. A caption that runs the whole width of the text column, as "
                                "captions do.", fontsize=10)
    (fig,) = _images(_run(doc.tobytes()))
    assert 430 < fig.metadata["bbox"][3] < 445  # the title is in, the caption is not


def _quadrants() -> tuple[bytes, dict]:
    """A 200x200 image: red, green / blue, yellow quadrants (top row first), as a raw PDF image XObject."""
    img = Image.new("RGB", (200, 200), (220, 20, 20))
    draw = ImageDraw.Draw(img)
    draw.rectangle([100, 0, 199, 99], fill=(20, 200, 20))
    draw.rectangle([0, 100, 99, 199], fill=(20, 20, 220))
    draw.rectangle([100, 100, 199, 199], fill=(230, 230, 20))
    xobject = pdf_stream("/Type /XObject /Subtype /Image /Width 200 /Height 200 /ColorSpace /DeviceRGB "
                         "/BitsPerComponent 8", img.tobytes(), compress=True)
    return xobject, {"red": (220, 20, 20), "green": (20, 200, 20)}


def test_an_image_cropped_by_a_clip_or_the_page_edge_comes_out_as_seen():
    """What a reader sees, not the whole embedded image: cropping is sometimes how a name is hidden."""
    xobject, colour = _quadrants()
    resources = "<< /XObject << /Im 5 0 R >> >>"
    # drawn 300 x 300 pt at (100, 300); clipped to its top-left quarter (page y grows upwards)
    cropped = raw_pdf(b"q 100 450 150 150 re W n 300 0 0 300 100 300 cm /Im Do Q", resources, [xobject])
    (item,) = _images(_run(cropped))
    assert item.locator == "page 1, image 1 (cropped, rendered)" and item.metadata["rendered"]
    assert np.allclose(item.metadata["bbox"], [100, 192, 250, 342], atol=1)
    assert np.abs(_mean(item.image, (5, 5, item.image.width - 5, item.image.height - 5)) - colour["red"]).max() < 20
    # the right half off the page (a 612 pt wide page): the left half, as seen
    off_edge = raw_pdf(b"q 300 0 0 300 462 300 cm /Im Do Q", resources, [xobject])
    (item,) = _images(_run(off_edge))
    assert "cropped" in item.locator and np.allclose(item.metadata["bbox"][::2], [462, 612], atol=1)
    # a clip that leaves the image whole (the usual "re W n" around a placement): the embedded image itself
    whole = raw_pdf(b"q 100 300 300 300 re W n 300 0 0 300 100 300 cm /Im Do Q", resources, [xobject])
    (item,) = _images(_run(whole))
    assert item.locator == "page 1, image 1" and item.image.size == (200, 200)


def test_cropping_meets_the_other_rules():
    """Strips that bleed off the page still make one figure; an image drawn twice is judged by its most visible
    placement; the same crop of one image on several pages is one item; an uneven crop keeps its own pixels."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    scan = _photo(1700, 1600, seed=7)
    for k in range(40):  # strips 1700 x 40 px, 704 pt wide: 46 pt off each side
        page.insert_image(pymupdf.Rect(-46, 19.8 * k, 658, 19.8 * (k + 1)), stream=_png(scan.crop((0, 40 * k, 1700, 40 * k + 40))),
                          keep_proportion=False)
    items = _run(doc.tobytes())
    assert [(i.locator, [round(v) for v in i.metadata["bbox"]]) for i in _images(items)] == [
        ("page 1, figure 1 (rendered)", [0, 0, 612, 792])]

    xobject, _ = _quadrants()
    resources = "<< /XObject << /Im 5 0 R >> >>"
    twice = raw_pdf(b"q 0 0 0 0 re W n 300 0 0 300 100 300 cm /Im Do Q q 300 0 0 300 100 300 cm /Im Do Q",
                    resources, [xobject])
    assert [(i.locator, i.image.size) for i in _images(_run(twice))] == [("page 1, image 1", (200, 200))]

    letterhead = Image.new("RGB", (1000, 300), (200, 30, 30))
    doc = pymupdf.open()
    for _ in range(3):  # a letterhead whose top 30 % sits above the page, on every page
        page = doc.new_page(width=612, height=792)
        page.insert_image(pymupdf.Rect(100, -36, 500, 84), stream=_png(letterhead), keep_proportion=False)
    (item,) = _images(_run(doc.tobytes()))
    assert "cropped" in item.locator and item.metadata["pages"] == [1, 2, 3]
    assert 850 < item.image.width < 1150 and 190 < item.image.height < 230  # 70 % of its 300 px rows
    banner = Image.new("RGB", (1000, 100), (200, 30, 30))

    uneven = raw_pdf(b"q 100 100 50 50 re W n 500 0 0 50 100 100 cm /Im Do Q", "<< /XObject << /Im 5 0 R >> >>",
                     [pdf_stream("/Type /XObject /Subtype /Image /Width 1000 /Height 100 /ColorSpace /DeviceRGB "
                                 "/BitsPerComponent 8", banner.tobytes(), compress=True)])
    (item,) = _images(_run(uneven))  # 100 x 100 px of the banner show: not a decoration
    assert "cropped" in item.locator and min(item.image.size) >= 90


def test_figure_on_a_huge_page_is_rendered_within_the_side_and_pixel_caps():
    """A 300,000 pt page: 150 dpi would be millions of pixels a side, and even 1 dpi is over RENDER_MAX_SIDE;
    a fractional zoom keeps the render within it, and within max_pixels."""
    lines = b"".join(b"%d 0 m %d 270000 l S " % (750 * i, 150000 + 750 * i) for i in range(200))
    data = raw_pdf(b"1 0 0 RG 300 w " + lines, mediabox="[0 0 300000 300000]")
    t0 = time.monotonic()
    (item,) = _run(data)
    assert isinstance(item, ImageItem) and item.metadata["rendered"]
    assert max(item.image.size) <= pdf.RENDER_MAX_SIDE and max(item.image.size) >= pdf.RENDER_MAX_SIDE - 10
    assert 0 < item.metadata["dpi"] < 1 and time.monotonic() - t0 < 10
    assert np.asarray(item.image.convert("L")).min() < 200  # the lines are drawn
    (item,) = _run(data, max_pixels=500_000)
    assert item.image.size[0] * item.image.size[1] <= 500_000
    bars = b"".join(b"%d 300 26 %d re f " % (100 + 30 * i, 20 + 15 * i) for i in range(10))
    (item,) = _run(raw_pdf(bars), max_pixels=100_000)
    assert item.image.size[0] * item.image.size[1] <= 100_000 and item.metadata["dpi"] < 150


@pytest.mark.parametrize("encoding", ["flate", "jpeg"])
def test_an_image_in_an_icc_colour_space_is_shown_in_srgb_as_the_page_shows_it(encoding):
    """The same numbers mean more saturated colours under a wide-gamut profile: the image comes out as MuPDF
    draws it on the page, not with its raw numbers; under an sRGB profile the numbers are kept."""
    import builders

    colours = Image.new("RGB", (96, 64), (200, 140, 120))
    ImageDraw.Draw(colours).rectangle([48, 0, 95, 63], fill=(90, 140, 200))
    if encoding == "flate":
        body, data = "/BitsPerComponent 8", colours.tobytes()
    else:
        body, data = "/BitsPerComponent 8 /Filter /DCTDecode", _jpeg(colours)

    def pdf_with(profile: bytes) -> bytes:
        image = pdf_stream(f"/Type /XObject /Subtype /Image /Width 96 /Height 64 /ColorSpace [/ICCBased 6 0 R] "
                           f"{body}", data)
        return raw_pdf(b"q 192 0 0 128 100 100 cm /Im1 Do Q", resources="<< /XObject << /Im1 5 0 R >> >>",
                       extra=[image, pdf_stream("/N 3 /Alternate /DeviceRGB", profile)])

    wide = pdf_with(builders.wide_gamut_icc())
    (item,) = _images(_run(wide))
    shown = _render(wide, 0, item.metadata["bbox"], item.image.size)
    for box in ((8, 8, 40, 56), (56, 8, 88, 56)):
        assert np.abs(_mean(item.image, box) - _mean(shown, box)).max() < 6, (box, _mean(item.image, box))
    assert _mean(item.image, (56, 8, 88, 56))[0] < 30  # sky blue under the wide profile is drawn without red
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    (item,) = _images(_run(pdf_with(srgb)))
    assert np.abs(_mean(item.image, (56, 8, 88, 56)) - (90, 140, 200)).max() < 4
    if encoding == "jpeg":  # still Pillow's quick decoding
        assert item.image.format == "JPEG"


def _flate_pdf(pixels: np.ndarray, colorspace: str, data: bytes | None = None, extra_keys: str = "",
               extra: list | None = None) -> bytes:
    """One Flate image (`data` as its stream, else the pixels compressed) drawn at 1 pt a pixel."""
    h, w = pixels.shape[:2]
    data = zlib.compress(pixels.tobytes()) if data is None else data
    image = pdf_stream(f"/Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace {colorspace} "
                       f"/BitsPerComponent 8 /Filter /FlateDecode {extra_keys}", data)
    return raw_pdf(f"q {w} 0 0 {h} 100 100 cm /Im1 Do Q".encode(), resources="<< /XObject << /Im1 5 0 R >> >>",
                   extra=[image, *(extra or [])])


def _spy_decoders(monkeypatch) -> dict:
    """Counts calls of the zlib path and of MuPDF's decode (which builds the Pixmap)."""
    calls = {"inflate": 0, "mupdf": 0}

    def spy(name, real):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(pdf, "_inflate", spy("inflate", pdf._inflate))
    monkeypatch.setattr(pdf, "_decode", spy("mupdf", pdf._decode))
    return calls


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_a_plain_flate_image_is_inflated_without_mupdf_to_its_raw_pixels(monkeypatch, mode):
    shape = (150, 200, 3) if mode == "RGB" else (150, 200)
    pixels = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    calls = _spy_decoders(monkeypatch)
    (item,) = _run(_flate_pdf(pixels, "/DeviceRGB" if mode == "RGB" else "/DeviceGray"))
    assert item.image.mode == mode and np.array_equal(np.asarray(item.image), pixels)
    assert item.format == "PDF/FLATE"
    assert calls == {"inflate": 1, "mupdf": 0}
    (error,) = _run(_flate_pdf(pixels, "/DeviceGray"), max_pixels=20_000)  # max_pixels still checked first
    assert "too large" in error.error and calls["inflate"] == 1


@pytest.mark.parametrize("change", ["short", "long", "cut", "damaged"])
def test_a_flate_stream_that_does_not_hold_its_image_exactly_goes_to_mupdf(monkeypatch, change):
    pixels = np.random.default_rng(2).integers(0, 256, (150, 200, 3), dtype=np.uint8)
    raw = pixels.tobytes()
    good = zlib.compress(raw)
    data = {"short": zlib.compress(raw[:-600]), "long": zlib.compress(raw + bytes(900)), "cut": good[:-40],
            "damaged": good[:-1] + bytes([good[-1] ^ 1])}[change]
    calls = _spy_decoders(monkeypatch)
    (item,) = _run(_flate_pdf(pixels, "/DeviceRGB", data))
    assert calls == {"inflate": 1, "mupdf": 1}  # tried, refused, then MuPDF's decode
    if change == "long":  # MuPDF reads the bytes the image takes
        assert np.array_equal(np.asarray(item.image), pixels)
    else:  # MuPDF pads with black or stops: reported, never shown
        assert isinstance(item, ItemError) and "could not decode embedded image" in item.error, item


def test_a_flate_image_in_a_wide_gamut_icc_space_is_still_decoded_by_mupdf(monkeypatch):
    import builders
    from PIL import ImageCms

    pixels = np.zeros((64, 96, 3), dtype=np.uint8)
    pixels[:, 48:] = (90, 140, 200)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    calls = _spy_decoders(monkeypatch)
    for profile, path in ((builders.wide_gamut_icc(), "mupdf"), (srgb, "inflate")):
        for k in calls:
            calls[k] = 0
        (item,) = _run(_flate_pdf(pixels, "[/ICCBased 6 0 R]", extra=[pdf_stream("/N 3", profile)]))
        assert calls == {"inflate": 0, "mupdf": 1} if path == "mupdf" else {"inflate": 1, "mupdf": 0}
        right = _mean(item.image, (56, 8, 88, 56))
        if path == "mupdf":  # converted to sRGB as the page shows it
            assert right[0] < 30
        else:
            assert np.array_equal(np.asarray(item.image), pixels)


@pytest.mark.parametrize("keys", ["/Decode [1 0 1 0 1 0]", "/DecodeParms << /Predictor 15 /Colors 3 /Columns 200 >>",
                                  "/Mask [0 10 0 10 0 10]"])
def test_a_flate_image_with_anything_on_top_is_left_to_mupdf(monkeypatch, keys):
    pixels = np.random.default_rng(3).integers(0, 256, (150, 200, 3), dtype=np.uint8)
    calls = _spy_decoders(monkeypatch)
    _run(_flate_pdf(pixels, "/DeviceRGB", extra_keys=keys))
    assert calls == {"inflate": 0, "mupdf": 1}


def test_pdf_time_limit_also_stops_decoding_and_rendering_with_a_note(monkeypatch):
    """Pages quick to look through but slow to render (a radial shading under each page's bar chart): the pages
    are all looked through within half the budget, and the rendering stops once the whole budget is spent."""
    doc = pymupdf.open()
    shading = doc.get_new_xref()
    doc.update_object(shading, "<< /ShadingType 3 /ColorSpace /DeviceRGB /Coords [300 400 0 300 400 250] /Function "
                               "<< /FunctionType 2 /Domain [0 1] /C0 [1 0 0] /C1 [0 0 1] /N 1 >> >>")
    for k in range(30):
        page = doc.new_page()
        bars = b"".join(b"%d 120 4 %d re f\n" % (100 + 10 * i, 10 + i * (k + 3) % 50) for i in range(40))  # unlike
        xref = doc.get_new_xref()
        doc.update_object(xref, "<<>>")
        doc.update_stream(xref, b"q 50 150 500 600 re W n /Sh sh Q\n" * 16 + bars)
        doc.xref_set_key(page.xref, "Contents", f"{xref} 0 R")
        doc.xref_set_key(page.xref, "Resources", f"<< /Shading << /Sh {shading} 0 R >> >>")
    data = doc.tobytes()
    for _ in range(3):  # a load that changes between the two runs can end the second too early or too late
        start = time.monotonic()
        assert len(_images(_run(data))) == 30  # one figure a page
        budget = round(max(time.monotonic() - start, 0.2) / 2, 3)  # half the whole work, whatever the load
        monkeypatch.setattr(pdf, "PDF_SECONDS", budget)
        items = _run(data)
        if 0 < len(_images(items)) < 30:
            break
    note = _errors(items)[-1]
    assert note.skipped and note.error.startswith("stopped on page ")
    assert note.error.endswith(f"out of time ({budget:g} s of work per PDF)")
    assert 0 < len(_images(items)) < 30


def test_a_scan_stored_as_strips_under_its_ocr_text_is_still_one_figure():
    """A page of text words over a region is a shaded text box, not a figure, unless the region is mostly
    image pieces: a scan stored as strips with its invisible OCR text over it (as scanners write) is one figure."""
    scan = _photo(1275, 1650, seed=3)
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    for k in range(50):  # strips 1275 x 33 px, each below the decoration floor alone
        page.insert_image(pymupdf.Rect(0, k * 792 / 50, 612, (k + 1) * 792 / 50),
                          stream=_png(scan.crop((0, 33 * k, 1275, 33 * k + 33))), keep_proportion=False)
    for k in range(55):  # the OCR layer: a line of words every 14 pt, invisible
        page.insert_text((20, 20 + 14 * k), "Patient history and findings reported " * 3, fontsize=11,
                         render_mode=3)
    figs = _images(_run(doc.tobytes()))
    assert [f.locator for f in figs] == ["page 1, figure 1 (rendered)"], [f.locator for f in figs]
    x0, y0, x1, y1 = figs[0].metadata["bbox"]
    assert x0 < 2 and y0 < 2 and x1 > 610 and y1 > 790


def test_an_image_with_a_short_pixel_side_under_the_floor_is_decoration_however_large_it_is_drawn():
    """A 1000×20 px gradient stretched over a 400×100 pt box is skipped as decoration (its shorter side is 20 px)."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_image(pymupdf.Rect(72, 300, 372, 500), stream=_png(_photo(300, 200, seed=1)))
    page.insert_image(pymupdf.Rect(72, 100, 472, 200), stream=_png(_photo(1000, 20, seed=2)), keep_proportion=False)
    items = _run(doc.tobytes())
    assert [i.image.size for i in _images(items)] == [(300, 200)]
    assert [e.error for e in items if isinstance(e, ItemError)] == ["skipped 1 image smaller than 64 px (decoration)"]


def test_an_image_drawn_large_once_is_kept_though_also_drawn_as_a_thumbnail():
    """Decoration is judged by an image's largest placement: drawn large on page 1 and tiny on page 2, it is kept."""
    doc = pymupdf.open()
    data = _png(_photo(300, 200, seed=3))
    doc.new_page().insert_image(pymupdf.Rect(72, 300, 372, 500), stream=data)
    doc.new_page().insert_image(pymupdf.Rect(72, 72, 87, 82), stream=data)  # 15 × 10 pt: a thumbnail
    doc = pymupdf.open(stream=doc.tobytes(garbage=4, deflate=True), filetype="pdf")  # one xref for both
    items = _run(doc.tobytes())
    (image,) = _images(items)
    assert image.image.size == (300, 200) and image.metadata["pages"] == [1, 2]
    assert not [i for i in items if isinstance(i, ItemError)]


def test_an_image_drawn_twice_on_a_page_lists_that_page_once():
    """metadata["pages"] names each page an image is drawn on once, however often it is drawn there."""
    doc = pymupdf.open()
    page = doc.new_page()
    xref = page.insert_image(pymupdf.Rect(72, 72, 272, 205), stream=_png(_photo(300, 200, seed=4)))
    page.insert_image(pymupdf.Rect(72, 400, 272, 533), xref=xref)
    doc.new_page().insert_image(pymupdf.Rect(72, 72, 272, 205), xref=xref)
    (image,) = _images(_run(doc.tobytes()))
    assert image.metadata["pages"] == [1, 2] and image.metadata["page"] == 1


def test_an_image_on_pages_too_busy_to_place_it_is_reported_on_the_first_of_them():
    """An image listed without its place (pages drawing it past PAGE_MAX_IMAGES) comes out on its first page."""
    buf = io.BytesIO()
    _photo(120, 80, seed=5).save(buf, "JPEG", quality=90)
    photo = pdf_stream("/Type /XObject /Subtype /Image /Width 120 /Height 80 /ColorSpace /DeviceRGB "
                       "/BitsPerComponent 8 /Filter /DCTDecode", buf.getvalue())
    page = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /P 6 0 R >> >> " \
           "/Contents 5 0 R >>"
    data = pdf_objects(["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>",
                        page, page, pdf_stream("", b"q 120 0 0 80 72 400 cm /P Do Q " * (pdf.PAGE_MAX_IMAGES + 1)),
                        photo])
    items = _run(data)
    assert [(e.locator, e.skipped) for e in items if isinstance(e, ItemError)] == [("pages 1–2", True)]  # one note (s44)
    (image,) = _images(items)
    assert image.locator == "page 1, image 1" and image.metadata["page"] == 1 and image.metadata["pages"] == [1, 2]


def test_a_jpeg_with_an_inverting_decode_array_comes_out_inverted_as_the_page_shows_it():
    """An embedded JPEG with /Decode [1 0 1 0 1 0] comes out with its colours inverted, as drawn on the page."""
    buf = io.BytesIO()
    _photo(120, 80, seed=6).save(buf, "JPEG", quality=95)
    photo = pdf_stream("/Type /XObject /Subtype /Image /Width 120 /Height 80 /ColorSpace /DeviceRGB "
                       "/BitsPerComponent 8 /Decode [1 0 1 0 1 0] /Filter /DCTDecode", buf.getvalue())
    data = raw_pdf(b"q 240 0 0 160 72 400 cm /P Do Q", resources="<< /XObject << /P 5 0 R >> >>", extra=[photo])
    (image,) = _images(_run(data))
    left = np.asarray(image.image.convert("RGB").crop((10, 20, 50, 70)), dtype=float).mean(axis=(0, 1))
    right = np.asarray(image.image.convert("RGB").crop((70, 20, 110, 70)), dtype=float).mean(axis=(0, 1))
    assert np.abs(left - (35, 235, 235)).max() < 12 and np.abs(right - (235, 225, 35)).max() < 12


def test_the_same_data_under_an_inverting_decode_array_is_another_image():
    """Two image objects with the same bytes, one drawn inverted by its /Decode array, are two images, not one."""
    raw = np.asarray(_photo(120, 80, seed=7)).tobytes()
    keys = "/Type /XObject /Subtype /Image /Width 120 /Height 80 /ColorSpace /DeviceRGB /BitsPerComponent 8"
    data = raw_pdf(b"q 240 0 0 160 72 400 cm /A Do Q q 240 0 0 160 72 100 cm /B Do Q",
                   resources="<< /XObject << /A 5 0 R /B 6 0 R >> >>",
                   extra=[pdf_stream(keys, raw, compress=True),
                          pdf_stream(keys + " /Decode [1 0 1 0 1 0]", raw, compress=True)])
    plain, inverted = _images(_run(data))
    assert np.abs(np.asarray(plain.image, dtype=int) + np.asarray(inverted.image, dtype=int) - 255).max() <= 1


def test_the_same_pixels_under_another_soft_mask_are_another_image():
    """Two image objects with the same bytes but different soft masks (what shows of them differs) are two images."""
    raw = np.asarray(_photo(120, 80, seed=8)).tobytes()
    keys = "/Type /XObject /Subtype /Image /Width 120 /Height 80 /BitsPerComponent 8"
    left, right = np.zeros((80, 120), np.uint8), np.zeros((80, 120), np.uint8)
    left[:, :60], right[:, 60:] = 255, 255
    page = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /I {} 0 R >> >> " \
           "/Contents 5 0 R >>"
    data = pdf_objects(["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>",
                        page.format(6), page.format(7), pdf_stream("", b"q 240 0 0 160 72 400 cm /I Do Q"),
                        pdf_stream(keys + " /ColorSpace /DeviceRGB /SMask 8 0 R", raw, compress=True),
                        pdf_stream(keys + " /ColorSpace /DeviceRGB /SMask 9 0 R", raw, compress=True),
                        pdf_stream(keys + " /ColorSpace /DeviceGray", left.tobytes(), compress=True),
                        pdf_stream(keys + " /ColorSpace /DeviceGray", right.tobytes(), compress=True)])
    first, second = _images(_run(data))
    assert (first.metadata["pages"], second.metadata["pages"]) == ([1], [2])
    assert first.image.mode == second.image.mode == "RGBA"
    assert tuple(np.asarray(first.image)[40, [20, 100], 3]) == (255, 0)
    assert tuple(np.asarray(second.image)[40, [20, 100], 3]) == (0, 255)


def _bar_chart(page: pymupdf.Page) -> None:
    page.draw_rect(pymupdf.Rect(150, 200, 450, 400), color=(0, 0, 0), width=1)  # axes box
    for k in range(5):
        x = 150 + 60 * k
        page.draw_rect(pymupdf.Rect(x + 15, 380 - 30 * k, x + 45, 400), color=None, fill=(0.2, 0.4, 0.8))


def test_white_filled_boxes_are_not_ink_and_make_no_figure():
    """Boxes filled white (invisible on paper, as behind a text block) are no figure: the page has no images."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.draw_rect(pymupdf.Rect(100, 100, 400, 300), color=None, fill=(1, 1, 1))
    page.draw_rect(pymupdf.Rect(100, 400, 300, 550), color=None, fill=(0.99, 0.99, 0.99))
    items = _run(doc.tobytes())
    assert [(type(i).__name__, i.error) for i in items] == [("ItemError", "no images found in the PDF")]


def test_a_caption_line_wider_than_the_figure_right_below_it_stays_out_of_the_region():
    """Text lines as wide as most of the figure (a caption, body text) do not join it, even when they touch it."""
    doc = pymupdf.open()
    page = doc.new_page()
    _bar_chart(page)
    page.insert_text((72, 411), "Figure 1. Counts per group over five years, from the registry of 2020 cases.",
                     fontsize=11)
    (fig,) = [i for i in _run(doc.tobytes()) if isinstance(i, ImageItem)]
    x0, y0, x1, y1 = fig.metadata["bbox"]
    assert abs(x0 - 149) < 5 and abs(x1 - 451) < 5 and abs(y1 - 401) < 5, fig.metadata["bbox"]


def test_a_pdf_jpeg_wrapped_in_flate_is_reported_as_a_jpeg():
    """An embedded image filtered [/FlateDecode /DCTDecode] is a JPEG: its format names the last filter, PDF/JPEG."""
    buf = io.BytesIO()
    pattern((200, 100)).save(buf, "JPEG", quality=90)
    image = pdf_stream("/Type /XObject /Subtype /Image /Width 200 /Height 100 /ColorSpace /DeviceRGB "
                       "/BitsPerComponent 8 /Filter [/FlateDecode /DCTDecode]", zlib.compress(buf.getvalue()))
    data = raw_pdf(b"q 200 0 0 100 50 500 cm /Im Do Q", resources="<< /XObject << /Im 5 0 R >> >>", extra=[image])
    (item,) = pdf.open_pdf(Blob("t.pdf", data), Context(Limits()))
    assert isinstance(item, ImageItem) and item.image.size == (200, 100)
    assert item.format == "PDF/JPEG"


def test_same_data_twins_under_different_soft_masks_on_one_page_are_each_reported_with_their_own_mask():
    """Two images of one page with the same bytes and size but different soft masks come out as two, each masked as
    drawn (the twin matching by data and by unmasked pixels took both placements for one of them)."""
    pixels = np.zeros((80, 120, 3), np.uint8)
    pixels[:, :60], pixels[:, 60:] = (220, 20, 20), (20, 30, 220)
    keys = "/Type /XObject /Subtype /Image /Width 120 /Height 80 /BitsPerComponent 8"
    left, right = np.zeros((80, 120), np.uint8), np.zeros((80, 120), np.uint8)
    left[:, :60], right[:, 60:] = 255, 255
    data = raw_pdf(b"q 240 0 0 160 72 400 cm /A Do Q q 240 0 0 160 72 100 cm /B Do Q",
                   resources="<< /XObject << /A 5 0 R /B 6 0 R >> >>",
                   extra=[pdf_stream(keys + " /ColorSpace /DeviceRGB /SMask 7 0 R", pixels.tobytes(), compress=True),
                          pdf_stream(keys + " /ColorSpace /DeviceRGB /SMask 8 0 R", pixels.tobytes(), compress=True),
                          pdf_stream(keys + " /ColorSpace /DeviceGray", left.tobytes(), compress=True),
                          pdf_stream(keys + " /ColorSpace /DeviceGray", right.tobytes(), compress=True)])
    got = [i for i in pdf.open_pdf(Blob("t.pdf", data), Context(Limits())) if isinstance(i, ImageItem)]
    shown = sorted((i.metadata["bbox"][1], tuple(np.asarray(i.image)[40, [20, 100], 3])) for i in got)
    assert shown == [(232.0, (255, 0)), (532.0, (0, 255))]  # A (left half seen) lower on the page, B above it


@pytest.mark.parametrize("filters, compress, want", [("[/FlateDecode /DCTDecode]", True, "PDF/JPEG"),
                                                     ("/FlateDecode", False, "PDF/FLATE")])
def test_an_images_filter_given_as_an_object_of_its_own_still_names_its_format(filters, compress, want):
    """`/Filter 6 0 R`: the format is read from the object it points to (a Flate image was `PDF/uncompressed`)."""
    buf = io.BytesIO()
    pattern((200, 100)).save(buf, "JPEG", quality=90)
    raw = np.asarray(pattern((200, 100)).convert("RGB")).tobytes()
    body = zlib.compress(buf.getvalue()) if compress else zlib.compress(raw)
    image = pdf_stream("/Type /XObject /Subtype /Image /Width 200 /Height 100 /ColorSpace /DeviceRGB "
                       "/BitsPerComponent 8 /Filter 6 0 R", body)
    data = raw_pdf(b"q 200 0 0 100 50 500 cm /Im Do Q", resources="<< /XObject << /Im 5 0 R >> >>",
                   extra=[image, filters])
    (item,) = pdf.open_pdf(Blob("t.pdf", data), Context(Limits()))
    assert isinstance(item, ImageItem) and item.image.size == (200, 100) and item.format == want


def test_plots_of_one_layout_and_curve_with_other_tick_labels_are_each_a_figure():
    """the fingerprint holds the figure's words too: two plots drawn alike whose axes are labelled the other
    way round (0.10 … 0.90 and 0.90 … 0.10: every label's marks have one box, so the boxes alone are equal) are
    two figures, not the second taken for the first."""
    ticks = ["0.10", "0.30", "0.50", "0.70", "0.90"]

    def plot(page, labels):
        x, y = 60, 120
        page.draw_rect(pymupdf.Rect(x, y, x + 200, y + 150), color=(0, 0, 0), width=1)
        for k in range(5):
            page.insert_text((x + 50 * k - 3, y + 162), labels[k], fontsize=8)
        page.draw_polyline([(x + 2 * i, y + 75 - 60 * math.sin(i / 12)) for i in range(101)],
                           color=(0.8, 0.1, 0.1), width=1.5)

    doc = pymupdf.open()
    plot(doc.new_page(), ticks)
    plot(doc.new_page(), ticks[::-1])
    plot(doc.new_page(), ticks[::-1])  # page 3 repeats page 2's plot: one figure
    figs = _images(_run(doc.tobytes()))
    assert [(f.locator, f.metadata["pages"]) for f in figs] == [
        ("page 1, figure 1 (rendered)", [1]), ("page 2, figure 1 (rendered)", [2, 3])]
