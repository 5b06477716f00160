"""Mutation round s30b: behaviour the s30 tests left open, each pinned by a real file or request (PDFs built by
hand or with PyMuPDF, Parquet files written by pyarrow, zips on disk, requests through the app)."""

from __future__ import annotations

import io
import os
import zlib

import numpy as np
import pymupdf
import pytest
from builders import pdf_stream, raw_pdf, zip_bytes
from PIL import Image
from test_api import model_dir, worker  # noqa: F401  (fixtures)
from test_pdf_s30 import _images, _png, _run, _stencil, _turned_xray, _xray
from typer.testing import CliRunner
from words import flat

from medimg.cli import app

runner = CliRunner()


def _xray_stream() -> bytes:
    return pdf_stream("/Type /XObject /Subtype /Image /Width 400 /Height 400 /ColorSpace /DeviceGray "
                      "/BitsPerComponent 8 /Filter /FlateDecode", zlib.compress(_xray().tobytes()))


DRAW = b"q 200 0 0 200 100 492 cm /Im Do Q "  # the X-ray at (100, 100)-(300, 300), page y down
BAR = b"0 0 0 rg 105 662 90 25 re f "  # over its burnt-in name: (105, 105)-(195, 130)


def _xray_page(content: bytes, resources: str = "<< /XObject << /Im 5 0 R >> >>", extra: list = ()) -> bytes:
    return raw_pdf(content, resources, [_xray_stream(), *extra])


def _one(data: bytes):
    (item,) = _images(_run(data))
    return item


# --- covers -------------------------------------------------------------------------------------------------------

def test_an_image_drawn_again_over_the_box_that_covered_it_shows_whole():
    """The X-ray, a black bar over its name, then the X-ray again at the same place: the reader sees the whole
    X-ray (the last placement is on top), so it is the embedded image, not a render "as seen"."""
    item = _one(_xray_page(DRAW + BAR + DRAW))
    assert item.locator == "page 1, image 1" and item.image.size == (400, 400)
    assert "covered" not in item.metadata
    item = _one(_xray_page(DRAW + DRAW + BAR))  # drawn twice, then covered: covered
    assert item.locator == "page 1, image 1 (covered, rendered)"
    again = b"q 200 0 0 200 100.5 492 cm /Im Do Q "  # drawn again half a point off: the same place, on top
    item = _one(_xray_page(DRAW + BAR + again))
    assert item.locator == "page 1, image 1" and item.image.size == (400, 400)


def test_a_sheared_image_is_judged_by_the_parallelogram_it_fills():
    """An image sheared (not turned: a = 200, b = 0, c = 100) fills a parallelogram, leaving two triangles of
    its bounding box empty: a black box in one (2 % of the box) hides nothing of it; one over it still does."""
    draw = b"q 200 0 100 200 100 292 cm /Im Do Q "  # page y down: (100, 300)-(400, 500), top edge shifted right
    corner = b"0 0 0 rg 100 452 30 40 re f "  # (100, 300)-(130, 340): left of the top edge, which starts at 180
    item = _one(_xray_page(draw + corner))
    assert item.locator == "page 1, image 1" and item.image.size == (400, 400)
    over = b"0 0 0 rg 230 372 40 30 re f "  # (230, 390)-(270, 420): on the image
    assert _one(_xray_page(draw + corner + over)).locator == "page 1, image 1 (covered, rendered)"


def test_a_box_over_a_turned_images_corner_counts_only_where_it_is_on_the_image():
    """A black strip 100 x 5 pt across the turned X-ray's lowest corner: most of it lies on the empty page
    around the corner (0.67 % of the bounding box), only 0.07 % of the image is under it (under the 0.1 % that
    covers), so the embedded image comes out; 12 pt high (0.4 % of the image) it covers."""
    item = _one(_turned_xray(b"0 0 0 rg 150 300 100 5 re f "))
    assert item.locator == "page 1, image 1" and item.image.size == (400, 400)
    assert _one(_turned_xray(b"0 0 0 rg 150 300 100 12 re f ")).locator == "page 1, image 1 (covered, rendered)"


def test_a_solid_arrow_over_an_image_covers_as_a_box_does():
    """Since session 34 any opaque paint counts by what it paints, not rectangles only (session 30 let arrows
    through): a filled arrow head pointing at a lesion is seen by the reader, so the X-ray comes out as seen,
    as under a box of the same area."""
    arrow = b"1 1 0 rg 150 600 m 230 600 l 190 520 l h f "
    assert _one(_xray_page(DRAW + arrow)).locator == "page 1, image 1 (covered, rendered)"
    assert _one(_xray_page(DRAW + b"1 1 0 rg 150 520 80 80 re f ")).locator == "page 1, image 1 (covered, rendered)"


def test_a_colour_keyed_picture_laid_over_an_image_is_no_cover():
    """A picture with a colour-key /Mask (its key colour see-through) over the name hides only its marks, like
    one with an alpha channel: not a cover. The same picture without the key is one."""
    pixels = np.zeros((25, 90, 3), dtype=np.uint8)
    pixels[10:15, 40:50] = (0, 0, 255)  # a small blue mark on the key colour (black)
    extra = [pdf_stream("/Type /XObject /Subtype /Image /Width 90 /Height 25 /ColorSpace /DeviceRGB "
                        "/BitsPerComponent 8 /Mask [0 0 0 0 0 0]", pixels.tobytes(), compress=True)]
    res = "<< /XObject << /Im 5 0 R /Ov 6 0 R >> >>"
    over = b"q 90 0 0 25 105 662 cm /Ov Do Q "
    items = _images(_run(_xray_page(DRAW + over, res, extra)))
    assert [i.locator for i in items if i.image.size == (400, 400)] == ["page 1, image 1"]
    opaque = [pdf_stream("/Type /XObject /Subtype /Image /Width 90 /Height 25 /ColorSpace /DeviceRGB "
                         "/BitsPerComponent 8", pixels.tobytes(), compress=True)]
    items = _images(_run(_xray_page(DRAW + over, res, opaque)))
    assert items[0].locator == "page 1, image 1 (covered, rendered)"


def test_an_opaque_box_in_a_see_through_group_is_no_cover():
    """A black bar drawn inside a transparency group (a form XObject) shown at 40 % opacity: the name shows
    through, so the X-ray is the embedded image. The same group shown opaque covers it."""
    form = pdf_stream("/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Group << /S /Transparency >>", BAR)
    res = "<< /XObject << /Im 5 0 R /Fm 6 0 R >> /ExtGState << /See 7 0 R >> >>"
    extra = [form, "<< /ca 0.4 /CA 0.4 >>"]
    item = _one(_xray_page(DRAW + b"q /See gs /Fm Do Q ", res, extra))
    assert item.locator == "page 1, image 1" and item.image.size == (400, 400)
    assert _one(_xray_page(DRAW + b"q /Fm Do Q ", res, extra)).locator == "page 1, image 1 (covered, rendered)"


# --- tables drawn one box per cell --------------------------------------------------------------------------------

def _figures(doc: pymupdf.Document) -> list[str]:
    return [i.locator for i in _images(_run(doc.tobytes())) if "figure" in i.locator]


def test_an_annotated_heat_map_with_a_number_in_every_cell_is_a_figure():
    """A heat map with its value printed in each cell (as most papers show one) has words in every cell, but many
    colours: a figure, not a table."""
    doc = pymupdf.open()
    page = doc.new_page()
    for r in range(6):
        for c in range(6):
            v = ((r * 6 + c) * 7 % 36) / 35
            cell = pymupdf.Rect(150 + 40 * c, 200 + 25 * r, 190 + 40 * c, 225 + 25 * r)
            page.draw_rect(cell, color=None, fill=(v, 0.3, 1 - v))
            page.insert_text((cell.x0 + 10, cell.y1 - 8), f"{v:.2f}", fontsize=8)
    assert _figures(doc) == ["page 1, figure 1 (rendered)"]


def test_a_table_with_merged_header_cells_is_not_a_figure():
    """A table whose header row has two cells each spanning two columns (18 boxes, 16 of one cell) is a table."""
    doc = pymupdf.open()
    page = doc.new_page()
    for c in range(2):
        cell = pymupdf.Rect(72 + 220 * c, 100, 72 + 220 * (c + 1), 120)
        page.draw_rect(cell, color=(0, 0, 0), width=0.5, fill=(0.8, 0.8, 0.8))
        page.insert_text((cell.x0 + 4, cell.y1 - 6), f"Arm {c}", fontsize=9)
    for r in range(1, 5):
        for c in range(4):
            cell = pymupdf.Rect(72 + 110 * c, 100 + 20 * r, 72 + 110 * (c + 1), 100 + 20 * (r + 1))
            page.draw_rect(cell, color=(0, 0, 0), width=0.5)
            page.insert_text((cell.x0 + 4, cell.y1 - 6), f"{3.1 * r + c:.1f} mg", fontsize=9)
    assert _figures(doc) == []


def test_a_table_of_filled_cells_with_thin_gaps_between_them_is_not_a_figure():
    """Filled cells 1 pt apart (the white lines between them are gaps, as some exporters leave): one column or row
    line each side of a gap, so still a table."""
    doc = pymupdf.open()
    page = doc.new_page()
    for r in range(4):
        for c in range(3):
            cell = pymupdf.Rect(72 + 131 * c, 100 + 23 * r, 72 + 131 * c + 130, 100 + 23 * r + 22)
            page.draw_rect(cell, color=None, fill=(0.6, 0.7, 0.9) if r == 0 else (0.92, 0.94, 0.98))
            page.insert_text((cell.x0 + 6, cell.y1 - 7), f"row {r} col {c}", fontsize=9)
    assert _figures(doc) == []


# --- stencil masks in their ink -----------------------------------------------------------------------------------

def test_a_stencil_in_a_colour_whose_red_and_green_match_is_still_in_colour():
    """Ink (0.8, 0.8, 0.1), a yellow, has red equal to green but is no grey: RGB, in that colour."""
    item = _one(_stencil(b"0.8 0.8 0.1 rg"))
    assert item.image.mode == "RGB"
    assert {tuple(p) for p in np.unique(np.asarray(item.image).reshape(-1, 3), axis=0)} == {
        (204, 204, 26), (255, 255, 255)}


def test_a_stencil_in_grey_ink_comes_out_in_that_grey():
    item = _one(_stencil(b"0.5 g"))
    assert item.image.mode == "L" and set(np.unique(np.asarray(item.image)).tolist()) == {128, 255}


def test_a_stencil_painted_half_transparent_comes_out_as_light_as_the_page_shows_it():
    """Black ink at fill opacity 0.5 shows mid-grey on white: the item is that grey, as the page renders it."""
    w, h = 400, 300
    bits = np.zeros((h, w), dtype=bool)
    bits[:, : w // 2] = True
    mask = pdf_stream(f"/Type /XObject /Subtype /Image /Width {w} /Height {h} /ImageMask true /BitsPerComponent 1 "
                      "/Decode [1 0]", np.packbits(bits, axis=1).tobytes(), compress=True)
    data = raw_pdf(b"q /Half gs 0 g 400 0 0 300 100 300 cm /M1 Do Q",
                   "<< /XObject << /M1 5 0 R >> /ExtGState << /Half 6 0 R >> >>", [mask, "<< /ca 0.5 >>"])
    item = _one(data)
    assert item.image.mode == "L" and set(np.unique(np.asarray(item.image)).tolist()) == {128, 255}
    page = pymupdf.open(stream=data)[0]
    seen = page.get_pixmap(clip=pymupdf.Rect(100, 192, 500, 492), alpha=False, colorspace=pymupdf.csGRAY)
    seen = np.asarray(Image.frombytes("L", (seen.width, seen.height), seen.samples), dtype=float)
    assert abs(seen[:, : seen.shape[1] // 2 - 4].mean() - 128) < 8


def test_boxes_over_neighbouring_pictures_that_overlap_an_image_by_a_hair_do_not_cover_it():
    """Black bars over two pictures beside the X-ray (1 pt away) overlap the X-ray by 1.5 pt along two edges
    (1.4 % of it, in slivers thinner than a rule): they hide nothing a reader would miss, so the X-ray is the
    embedded image while the two pictures under the bars are rendered as seen."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_image(pymupdf.Rect(100, 100, 300, 300), stream=_png(_xray()))
    photo = _png(Image.new("RGB", (200, 200), (30, 160, 60)))
    page.insert_image(pymupdf.Rect(100, 301, 300, 500), stream=photo)
    page.insert_image(pymupdf.Rect(301, 100, 500, 300), stream=photo)
    page.draw_rect(pymupdf.Rect(105, 298.5, 295, 350), color=None, fill=(0, 0, 0))
    page.draw_rect(pymupdf.Rect(298.5, 105, 350, 295), color=None, fill=(0, 0, 0))
    items = _images(_run(doc.tobytes()))
    xray = [i for i in items if i.metadata.get("bbox") == [100, 100, 300, 300]]
    assert [i.locator for i in xray] == ["page 1, image 1"] and xray[0].image.size == (400, 400)
    assert sum(1 for i in items if i.metadata.get("covered")) == 2


def test_a_box_in_the_corner_beside_a_turned_images_lower_edge_hides_nothing_of_it():
    """The other empty corner of the turned X-ray's bounding box: below its lower edge at the right (within the
    image's width, outside its height). A black box there (1.6 % of the box) leaves the embedded image."""
    item = _one(_turned_xray(b"0 0 0 rg 330 300 40 30 re f "))
    assert item.locator == "page 1, image 1" and item.image.size == (400, 400)


# --- Parquet output and resume ------------------------------------------------------------------------------------

def _png_bytes(color=(200, 30, 30), size=(100, 80)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def test_a_resumed_parquet_out_that_is_a_link_stays_a_link(tmp_path, tiny_model_dir):
    """--out a link to the file (a results folder linked elsewhere): the file it names is carried on and the link
    stays a link, not replaced by a file of its own beside the old rows."""
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    for name in "ab":
        (tmp_path / f"{name}.png").write_bytes(_png_bytes())
    real = tmp_path / "store" / "r.parquet"
    real.parent.mkdir()
    link = tmp_path / "r.parquet"
    link.symlink_to(real)
    base = ["classify", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--model", str(tiny_model_dir),
            "--out", str(link)]
    assert runner.invoke(app, base).exit_code == 0
    whole = pq.read_table(real).to_pylist()
    pq.write_table(pq.read_table(real).slice(0, 1), real)  # stopped after a.png
    res = runner.invoke(app, [*base, "--resume"])
    assert res.exit_code == 0, res.output
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert pq.read_table(real).to_pylist() == whole
    assert not [p for p in os.listdir(real.parent) if p.endswith(".resuming")]


def test_parquet_row_groups_hold_exactly_the_rows_asked(tmp_path):
    """A row group is written each time `rows` records are held (PARQUET_ROWS in a run), not one later."""
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from medimg.output import ParquetRecordWriter
    from medimg.pipeline import Record

    path = tmp_path / "r.parquet"
    with open(path, "wb") as f:
        writer = ParquetRecordWriter(f, rows=3)
        for i in range(7):
            writer.write(Record(input=f"{i}.png", locator="", error="not an image"))
            if i == 2:
                assert writer.pending == []  # the first group is written as the third record comes
        writer.close()
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [3, 3, 1]


# --- archive members named as inputs ------------------------------------------------------------------------------

def test_a_real_file_named_like_an_archive_member_is_that_file(tmp_path):
    """`scans.zip:1.png` exists as a file of its own (a colon is allowed in a name) beside scans.zip, which has a
    member 1.png: the file is read, not the member."""
    from medimg.sources import open_input
    from medimg.sources.files import archive_member

    (tmp_path / "scans.zip").write_bytes(zip_bytes({"1.png": _png_bytes((0, 0, 250))}))
    named = tmp_path / "scans.zip:1.png"
    named.write_bytes(_png_bytes((250, 0, 0)))
    assert archive_member(str(named)) is None
    (item,) = list(open_input(str(named)))
    assert item.origin == str(named) and item.image.convert("RGB").getpixel((5, 5)) == (250, 0, 0)


def test_only_a_file_with_a_member_after_its_colon_names_an_archive_member(tmp_path):
    """`scans.zip:` names no member (nothing after the colon), and `folder:x.png` names none either (a folder
    is no archive file): neither is taken for one, so each is the plain "no such file"."""
    from medimg.sources import open_input
    from medimg.sources.files import archive_member

    (tmp_path / "scans.zip").write_bytes(zip_bytes({"1.png": _png_bytes()}))
    (tmp_path / "folder").mkdir()
    assert archive_member(f"{tmp_path}/scans.zip:") is None
    assert archive_member(f"{tmp_path}/folder:x.png") is None
    assert archive_member(f"{tmp_path}/scans.zip:1.png") == (f"{tmp_path}/scans.zip", "1.png")
    for name in (f"{tmp_path}/scans.zip:", f"{tmp_path}/folder:x.png"):
        (err,) = list(open_input(name))
        assert err.origin == name and "not an archive" not in err.error and "no member" not in err.error, err.error


# --- the API's multipart watch ------------------------------------------------------------------------------------

def test_a_closing_boundary_split_across_two_chunks_of_the_body_is_seen(worker):  # noqa: F811
    """A body arrives in pieces (a proxy, a slow client): its closing boundary split between two of them is still
    its closing boundary, so the upload is whole (a 200), not "cut short"."""
    import anyio
    import httpx

    from medimg.server import ServerConfig, Worker, create_app

    cfg = ServerConfig(model_dir=worker.config.model_dir)
    asgi = create_app(cfg, Worker(cfg, worker.classifier), ui=False)
    body = (b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\nContent-Type: image/png'
            b"\r\n\r\n" + _png_bytes() + b"\r\n--b--\r\n")
    headers = {"content-type": "multipart/form-data; boundary=b"}

    async def post(pieces: list[bytes]) -> httpx.Response:
        async def chunks():
            for piece in pieces:
                yield piece

        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await c.post("/api/classify", content=chunks(), headers=headers)

    cut = len(body) - 5  # "\r\n--b" | "--\r\n"
    for pieces in ([body], [body[:cut], body[cut:]], [body[:cut], body[cut:cut + 2], body[cut + 2:]]):
        r = anyio.run(post, pieces)
        assert r.status_code == 200 and [x["input"] for x in r.json()["results"]] == ["a.png"], r.text
    r = anyio.run(post, [body[:cut - 40], body[cut - 40:cut]])  # ends before the boundary closes: cut short
    assert r.status_code == 400 and "cut short" in r.json()["detail"], r.text


def test_a_box_drawn_under_a_soft_mask_is_no_cover():
    """A black bar painted through a luminosity soft mask of 30 % grey shows as a light veil: the name under it
    is still seen, so the X-ray is the embedded image (the same bar without the mask covers it)."""
    mask = pdf_stream("/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Group << /S /Transparency /CS /DeviceGray >>",
                      b"0.3 g 0 0 612 792 re f")
    res = "<< /XObject << /Im 5 0 R >> /ExtGState << /SM 7 0 R >> >>"
    extra = [mask, "<< /SMask << /S /Luminosity /G 6 0 R >> >>"]
    data = _xray_page(DRAW + b"q /SM gs " + BAR + b"Q ", res, extra)
    item = _one(data)
    assert item.locator == "page 1, image 1" and item.image.size == (400, 400)
    seen = pymupdf.open(stream=data)[0].get_pixmap(clip=pymupdf.Rect(110, 110, 140, 124), colorspace=pymupdf.csGRAY)
    assert min(seen.samples) > 120  # the name shows through the veil
    assert _one(_xray_page(DRAW + BAR, res, extra)).locator == "page 1, image 1 (covered, rendered)"




def test_a_flow_diagram_of_labelled_boxes_in_a_column_is_a_figure():
    """A CONSORT-style flow diagram: five labelled boxes one under another, apart, joined by arrows. Its boxes
    line up in one column, words in each, but the space between them is no row of a table: a figure."""
    doc = pymupdf.open()
    page = doc.new_page()
    for r in range(5):
        box = pymupdf.Rect(200, 120 + 90 * r, 400, 170 + 90 * r)
        page.draw_rect(box, color=(0, 0, 0), width=1)
        page.insert_text((box.x0 + 8, box.y0 + 20), f"Stage {r}: n = {500 - 60 * r}", fontsize=9)
        page.insert_text((box.x0 + 8, box.y0 + 36), "excluded" if r % 2 else "assessed", fontsize=9)
        if r < 4:
            page.draw_line((300, box.y1), (300, box.y1 + 40), width=1)
    assert _figures(doc) == ["page 1, figure 1 (rendered)"]


def test_a_parquet_file_whose_rows_cannot_be_copied_is_refused_without_a_temporary_file(tmp_path, tiny_model_dir):
    """A file whose `locator` column is damaged (its footer whole, the columns resume looks at readable): carrying
    its rows on fails while copying them, a clear error, the file left as it is and no `.resuming` file beside it."""
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    for name in "ab":
        (tmp_path / f"{name}.png").write_bytes(_png_bytes())
    out = tmp_path / "r.parquet"
    base = ["classify", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--model", str(tiny_model_dir),
            "--out", str(out)]
    assert runner.invoke(app, base).exit_code == 0
    table = pq.read_table(out)
    pq.write_table(table, out, compression="none")
    col = pq.ParquetFile(out).metadata.row_group(0).column(table.schema.names.index("locator"))
    data = bytearray(out.read_bytes())
    start = col.data_page_offset
    data[start:start + col.total_compressed_size] = b"\xff" * col.total_compressed_size
    out.write_bytes(bytes(data))
    res = runner.invoke(app, [*base, "--resume"])
    assert res.exit_code == 2 and "cannot be resumed: its row group 1 cannot be read" in flat(res.output), res.output
    assert out.read_bytes() == bytes(data)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".resuming")]
