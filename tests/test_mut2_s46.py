"""Mutants of session 46's changes that no test saw (review s46_mut2): each test here fails on one of them."""
import json
import os
import subprocess
import sys

import pytest

resource = pytest.importorskip("resource")  # POSIX: a file-size limit makes a write stop part-way, as a full disk does

# rows written unlimited, then the file may grow `room` bytes more while one more row (or close) is written
_FILL = """
import os, resource, sys
from medimg.output import RecordWriter
from medimg.pipeline import Record
path, rows, room, at_close = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
f = open(path, "w", encoding="utf-8")
w = RecordWriter(f, "json")
for i in range(rows):
    w.write(Record(input=f"/x/{i}.png", locator="", label="xray"))
resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path) + room, resource.RLIM_INFINITY))
try:
    w.close() if at_close else w.write(Record(input="/x/last.png", locator="", label="xray"))
    said = "written"
except OSError:
    said = "no room"
print(said)  # to a pipe: no file-size limit; the limit stays, as a full disk would, till the end
"""


def _fill(tmp_path, rows: int, room: int, at_close: bool = False) -> tuple[str, str]:
    out = tmp_path / "r.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", _FILL, str(out), str(rows), str(room), str(int(at_close))],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), out.read_bytes().decode("utf-8")


@pytest.mark.parametrize("room", [2, 5])
def test_a_json_file_whose_first_row_does_not_fit_is_an_empty_list(tmp_path, room):
    """U5: no row written yet, the cut leaves `[]` (was it `\\n]\\n`, not JSON)."""
    said, text = _fill(tmp_path, 0, room)
    assert said == "no room" and json.loads(text) == []


@pytest.mark.parametrize("room", [1, 2])
def test_a_json_file_with_room_for_less_than_its_closing_line_ends_in_a_bare_bracket(tmp_path, room):
    """U6: a full disk leaving 1 or 2 bytes after the last whole row: `\\n]\\n` does not fit; the file had been
    cut back to the row, so not JSON; now `]` alone is written and the rows read."""
    said, text = _fill(tmp_path, 2, room)
    assert said == "no room"
    assert [r["input"] for r in json.loads(text)] == ["/x/0.png", "/x/1.png"]


def test_a_json_close_that_does_not_fit_is_cut_back_to_its_rows(tmp_path):
    """U11: the close's own `\\n]\\n` meeting a full disk: cut back and `]` written (without the cut the file
    ended in the `\\n` that fitted)."""
    said, text = _fill(tmp_path, 2, 1, at_close=True)
    assert said == "no room"
    assert [r["input"] for r in json.loads(text)] == ["/x/0.png", "/x/1.png"]


def test_records_to_dev_null_are_written_once(monkeypatch):
    """U9: /dev/null is not a regular file (its position is always 0): a writer that took it for one wrote
    every row a second time through os.write."""
    from medimg.output import RecordWriter
    from medimg.pipeline import Record

    calls = []
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: calls.append(fd) or real(fd, data))
    with open(os.devnull, "w", encoding="utf-8") as f:
        writer = RecordWriter(f, "jsonl")
        for i in range(3):
            writer.write(Record(input=f"/x/{i}.png", locator="", label="xray"))
        writer.close()
    assert calls == []


# --- office.py (O1, O3, O4, O12, O15/O22)

def _visio(*more) -> bytes:
    import io
    import zipfile

    import builders as b
    from test_office_s46 import visio

    with zipfile.ZipFile(io.BytesIO(visio())) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members.update(more)
    return b.zip_bytes(members)


def test_a_visio_picture_no_page_points_at_and_a_pdf_in_a_page_are_read():
    """O1: visio/media/ is a picture folder as word/media/ is (one no relationship names is read too); O4: a PDF
    put in a page (visio/embeddings/) is opened, its picture read."""
    import builders as b
    import pymupdf
    from test_office_s43 import items, rows
    from test_office_s46 import R, vrels

    doc = pymupdf.open()
    doc.new_page().insert_image(pymupdf.Rect(0, 0, 200, 200), stream=b.image_bytes("PNG", (90, 70)))
    got = rows(items(_visio(("visio/media/image2.png", b.image_bytes("PNG", (50, 30))),
                            ("visio/embeddings/report.pdf", doc.tobytes()),
                            ("visio/pages/_rels/page1.xml.rels", vrels(("rId1", f"{R}/image", "../media/image1.jpeg"),
                                                                      ("rId2", f"{R}/package",
                                                                       "../embeddings/report.pdf")))),
                     "ward.vsdx"))
    origins = [r[0] for r in got if r[2] == "image"]
    assert "ward.vsdx:visio/media/image2.png" in origins, got
    assert any(o.startswith("ward.vsdx:visio/embeddings/report.pdf") for o in origins), got


def test_an_epub_picture_under_meta_inf_is_not_read():
    """O3: META-INF/ holds the container's own files (a reader's thumbnail), not the book's pictures."""
    import io
    import zipfile

    import builders as b
    from test_office_s43 import items, rows

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr("META-INF/thumbnail.png", b.image_bytes("PNG", (40, 40)))
        z.writestr("OEBPS/fig.png", b.image_bytes("PNG", (60, 40)))
    assert [r[0] for r in rows(items(out.getvalue(), "a.epub")) if r[2] == "image"] == ["a.epub:OEBPS/fig.png"]


def test_an_odp_picture_shown_on_a_slide_keeps_that_place_though_an_object_holds_it():
    """O12: a picture of an embedded object's folder that a slide also shows itself is placed where it is shown,
    not overwritten by the object's slide."""
    import builders as b
    from test_office_s37 import jpeg
    from test_office_s43 import items, rows

    content = (b'<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
               b'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
               b'xmlns:xlink="http://www.w3.org/1999/xlink"><office:body><office:presentation>'
               b'<draw:page><draw:frame><draw:image xlink:href="Object 1/Pictures/2.png"/></draw:frame></draw:page>'
               b'<draw:page><draw:frame><draw:object xlink:href="./Object 1"/></draw:frame></draw:page>'
               b'</office:presentation></office:body></office:document-content>')
    data = b.zip_bytes([("mimetype", b"application/vnd.oasis.opendocument.presentation"), ("content.xml", content),
                        ("Pictures/1.jpg", jpeg(5)), ("Object 1/content.xml", b"<x/>"),
                        ("Object 1/Pictures/2.png", b.image_bytes("PNG", (70, 50)))])
    assert ("talk.odp:Object 1/Pictures/2.png", "slide 1", "image") in rows(items(data, "talk.odp"))


def test_epub_chapters_past_the_total_cap_place_no_pictures():
    """O15/O22: chapters are read to place pictures up to 32 MB in all: a third chapter of 12 MB is not read."""
    import io
    import zipfile

    import builders as b
    from test_office_s43 import items, rows

    filler = b" " * (12 * 2**20)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr("ch1.xhtml", b'<img src="a.png"/>' + filler)
        z.writestr("ch2.xhtml", b'<img src="a.png"/>' + filler)
        z.writestr("ch3.xhtml", b'<img src="b.png"/>' + filler)
        z.writestr("a.png", b.image_bytes("PNG", (60, 40)))
        z.writestr("b.png", b.image_bytes("PNG", (50, 40)))
    got = rows(items(out.getvalue(), "big.epub"))
    assert ("big.epub:a.png", "ch1.xhtml, ch2.xhtml", "image") in got, got
    assert ("big.epub:b.png", "", "image") in got, got


def test_a_voi_function_with_a_leading_space_is_applied():
    """D4: a CS value's leading spaces are not significant (PS3.5 6.2), and pydicom keeps them when it reads a
    file: ` LINEAR_EXACT` is LINEAR_EXACT (without the strip, the ADC map's window below 1 was ignored)."""
    import numpy as np
    from test_dicom_s46 import adc_map, items

    from medimg.sources import ImageItem

    data, adc = adc_map(0.002, " LINEAR_EXACT")
    got = items(data)
    assert len(got) == 1 and isinstance(got[0], ImageItem), got
    expected = np.rint(np.clip((adc - 0.001) / 0.002 + 0.5, 0, 1) * 255)
    assert np.abs(np.asarray(got[0].image, float) - expected).max() <= 1
