"""Office files as a clinician or curator has them: a teaching .pptx (slides in show order, a logo on the master,
an SVG with its PNG copy, an EMF, a linked picture, a chart), a report .docx (header logo, key images, a .docx
embedded in it), an .xlsx with pictures on a named sheet, an .odp, password-protected files, a zipped .pages.
The packages are written part by part here (python-docx and python-pptx are not installed)."""

from __future__ import annotations

import http.server
import threading

import pytest

import builders as b
from medimg.sources import Blob, Context, ImageItem, Limits, open_input

R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
NS = (f'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:r="{R}" '
      'xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"')
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><rect width="9"/></svg>'
EMF = b"\x01\x00\x00\x00\x6c\x00\x00\x00" + bytes(32) + b" EMF" + bytes(64)


def rels(*rs) -> bytes:
    """A .rels part: (id, type, target) or (id, type, target, "External")."""
    external = ' TargetMode="External"'
    out = "".join(f'<Relationship Id="{rid}" Type="{R}/{kind}" Target="{target}"{external if ext else ""}/>'
                  for rid, kind, target, *ext in rs)
    return (f'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            f'relationships">{out}</Relationships>').encode()


def pic(rid: str, link: bool = False, svg: str | None = None) -> str:
    ext = (f'<a:extLst><a:ext uri="{{96DAC541-7B7A-43D3-8B79-37D633B846F1}}"><asvg:svgBlip xmlns:asvg='
           f'"http://schemas.microsoft.com/office/drawing/2016/SVG/main" r:embed="{svg}"/></a:ext></a:extLst>'
           if svg else "")
    return (f'<p:pic><p:blipFill><a:blip {"r:link" if link else "r:embed"}="{rid}">{ext}</a:blip>'
            '<a:srcRect l="25000" r="25000"/></p:blipFill></p:pic>')


def slide(body: str) -> bytes:
    return f'<?xml version="1.0"?><p:sld {NS}><p:cSld><p:spTree>{body}</p:spTree></p:cSld></p:sld>'.encode()


def jpeg(seed: int) -> bytes:
    return b.encode(b.pattern((96, 96), "L", seed), "JPEG")


def pptx(linked: str = "file:///C:/Users/dr/ct.png") -> bytes:
    """Three slides shown in the order slide3.xml, slide1.xml, slide2.xml (files keep their names when slides are
    moved); a logo on the slide master; one picture on two slides; an SVG with its PNG copy; an EMF; a linked
    picture; a chart whose own workbook is an embedded .xlsx."""
    files = {
        "slide1.xml": ([("rId2", "image", "../media/image2.jpeg"), ("rId3", "image", "../media/image7.jpeg")],
                       pic("rId2") + pic("rId3")),
        "slide2.xml": ([("rId2", "image", "../media/image3.png"), ("rId3", "image", "../media/image4.svg")],
                       pic("rId2", svg="rId3")),
        "slide3.xml": ([("rId2", "image", linked, "External"), ("rId3", "image", "../media/image5.emf"),
                        ("rId4", "chart", "../charts/chart1.xml"), ("rId6", "image", "../media/image6.jpeg"),
                        ("rId7", "image", "../media/image7.jpeg")],
                       pic("rId2", link=True) + pic("rId3") + pic("rId6") + pic("rId7")),
    }
    shown = ["slide3.xml", "slide1.xml", "slide2.xml"]
    m = {"[Content_Types].xml": b"<Types/>",
         "_rels/.rels": rels(("rId1", "officeDocument", "ppt/presentation.xml"),
                             ("rId2", "metadata/thumbnail", "docProps/thumbnail.jpeg")),
         "docProps/thumbnail.jpeg": jpeg(9),
         "ppt/presentation.xml": (f'<p:presentation {NS}><p:sldIdLst>'
                                  + "".join(f'<p:sldId id="{256 + i}" r:id="rId{10 + list(files).index(s)}"/>'
                                            for i, s in enumerate(shown))
                                  + "</p:sldIdLst></p:presentation>").encode(),
         "ppt/_rels/presentation.xml.rels": rels(("rId1", "slideMaster", "slideMasters/slideMaster1.xml"),
                                                 *[(f"rId{10 + i}", "slide", f"slides/{s}") for i, s in
                                                   enumerate(files)]),
         "ppt/slideMasters/slideMaster1.xml": slide(pic("rId2")),
         "ppt/slideMasters/_rels/slideMaster1.xml.rels": rels(("rId2", "image", "../media/image1.png")),
         "ppt/charts/chart1.xml": b"<c:chartSpace/>",
         "ppt/charts/_rels/chart1.xml.rels": rels(("rId1", "package", "../embeddings/Microsoft_Excel_Worksheet.xlsx")),
         "ppt/embeddings/Microsoft_Excel_Worksheet.xlsx": b.zip_bytes({"[Content_Types].xml": b"<Types/>",
                                                                       "xl/workbook.xml": b"<workbook/>"}),
         "ppt/media/image1.png": b.image_bytes("PNG", (120, 40)),
         "ppt/media/image2.jpeg": jpeg(1), "ppt/media/image3.png": b.image_bytes("PNG", (90, 90)),
         "ppt/media/image4.svg": SVG, "ppt/media/image5.emf": EMF, "ppt/media/image6.jpeg": jpeg(2),
         "ppt/media/image7.jpeg": jpeg(3)}
    for name, (rs, body) in files.items():
        m[f"ppt/slides/{name}"] = slide(body)
        m[f"ppt/slides/_rels/{name}.rels"] = rels(("rId1", "slideLayout", "../slideLayouts/slideLayout1.xml"), *rs)
    return b.zip_bytes(m)


def docx(embedded: bytes | None = None) -> bytes:
    blip = ('<w:p><w:r><w:drawing><pic:pic xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture">'
            '<pic:blipFill><a:blip r:embed="{}"/></pic:blipFill></pic:pic></w:drawing></w:r></w:p>')
    w = f'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" {NS}'
    rs = [("rId2", "header", "header1.xml"), ("rId5", "image", "media/image2.jpeg")]
    m = {"[Content_Types].xml": b"<Types/>", "_rels/.rels": rels(("rId1", "officeDocument", "word/document.xml")),
         "word/document.xml": f'<w:document {w}><w:body>{blip.format("rId5")}</w:body></w:document>'.encode(),
         "word/header1.xml": f'<w:hdr {w}>{blip.format("rId1")}</w:hdr>'.encode(),
         "word/_rels/header1.xml.rels": rels(("rId1", "image", "media/image1.png")),
         "word/media/image1.png": b.image_bytes("PNG", (120, 40)), "word/media/image2.jpeg": jpeg(4)}
    if embedded:
        rs.append(("rId7", "package", "embeddings/Microsoft_Word_Document.docx"))
        m["word/embeddings/Microsoft_Word_Document.docx"] = embedded
    m["word/_rels/document.xml.rels"] = rels(*rs)
    return b.zip_bytes(m)


def items(data: bytes, name: str, **limits) -> list:
    return list(Context(Limits(**limits)).open_blob(Blob(name, data, name=name)))


def rows(got) -> list[tuple[str, str, str]]:
    return [(i.origin, i.locator, "image" if isinstance(i, ImageItem) else i.error) for i in got]


def test_pictures_are_placed_by_slide_in_the_order_of_the_show():
    got = {origin: (where, what) for origin, where, what in rows(items(pptx(), "talk.pptx"))}
    place = {k.split(":", 1)[1]: v[0] for k, v in got.items() if ":" in k}
    assert place == {"ppt/media/image1.png": "slide master", "ppt/media/image2.jpeg": "slide 2",
                     "ppt/media/image3.png": "slide 3", "ppt/media/image4.svg": "slide 3",
                     "ppt/media/image5.emf": "slide 1", "ppt/media/image6.jpeg": "slide 1",
                     "ppt/media/image7.jpeg": "slides 1, 2"}
    # the chart's own workbook and the thumbnail (a picture of slide 1) are not read
    assert not any("embeddings" in k or "thumbnail" in k for k in got)


def two_slide_odp(second_frame: bytes, *members) -> bytes:
    """An OpenDocument presentation: slide 1 shows Pictures/1.jpg, slide 2 a frame holding `second_frame`."""
    return b.zip_bytes([
        ("mimetype", b"application/vnd.oasis.opendocument.presentation"),
        ("content.xml", b'<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
                        b'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
                        b'xmlns:xlink="http://www.w3.org/1999/xlink"><office:body><office:presentation>'
                        b'<draw:page><draw:frame><draw:image xlink:href="Pictures/1.jpg"/></draw:frame></draw:page>'
                        b'<draw:page><draw:frame>' + second_frame + b'</draw:frame></draw:page>'
                        b'</office:presentation></office:body></office:document-content>'),
        ("Pictures/1.jpg", jpeg(5)), *members])


def test_an_svg_with_its_png_copy_is_one_picture_and_a_note_that_says_so():
    got = rows(items(pptx(), "talk.pptx"))
    svg = next(r for r in got if r[0].endswith("image4.svg"))
    assert "raster copy ppt/media/image3.png, which is read instead" in svg[2]
    assert ("talk.pptx:ppt/media/image3.png", "slide 3", "image") in got
    odp = two_slide_odp(b'<draw:image xlink:href="Pictures/2.svg"/><draw:image xlink:href="Pictures/2.png"/>',
                        ("Pictures/2.svg", SVG), ("Pictures/2.png", b.image_bytes("PNG", (80, 80))),
                        ("Thumbnails/thumbnail.png", b.image_bytes("PNG", (128, 96))))
    got = rows(items(odp, "talk.odp"))
    assert got[1:] == [("talk.odp:Pictures/1.jpg", "slide 1", "image"),
                       ("talk.odp:Pictures/2.svg", "slide 2", "skipped: an SVG picture, shown through its raster copy "
                                                              "Pictures/2.png, which is read instead"),
                       ("talk.odp:Pictures/2.png", "slide 2", "image")]


def test_an_emf_picture_is_a_note_that_names_it(tmp_path):
    emf = next(r for r in rows(items(pptx(), "talk.pptx")) if r[0].endswith("image5.emf"))
    assert emf[2] == "EMF is not drawn (a Windows metafile: vector drawing skipped)"
    (tmp_path / "logo.wmf").write_bytes(b"\xd7\xcd\xc6\x9a" + bytes(18) + b"\x01\x00\x09\x00\x00\x03" + bytes(30))
    (note,) = open_input(tmp_path)  # found in a folder, as Office's clip art is kept
    assert note.skipped and note.error == "WMF is not drawn (a Windows metafile: vector drawing skipped)"


def test_a_linked_picture_is_counted_in_the_note_and_never_fetched():
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b.image_bytes("PNG"))

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/ct.png"
        got = items(pptx(linked=url), "talk.pptx", allow_private=True)
    finally:
        server.shutdown()
    note = got[0]
    assert note.origin == "talk.pptx" and note.skipped
    assert "1 picture linked from outside the file (slide 1), not in it: not fetched" in note.error
    assert hits == []


def test_a_report_places_header_and_body_and_reads_a_document_embedded_in_it():
    got = rows(items(docx(embedded=docx()), "report.docx"))
    inner = "report.docx:word/embeddings/Microsoft_Word_Document.docx"
    assert [r for r in got if r[2] == "image"] == [  # in the zip's order
        ("report.docx:word/media/image1.png", "header", "image"),
        ("report.docx:word/media/image2.jpeg", "document body", "image"),
        (f"{inner}:word/media/image1.png", "document body, header", "image"),  # where the outer file shows it first
        (f"{inner}:word/media/image2.jpeg", "document body", "image")]


def test_pictures_on_a_sheet_are_placed_by_its_name():
    xlsx = b.zip_bytes({
        "[Content_Types].xml": b"<Types/>", "_rels/.rels": rels(("rId1", "officeDocument", "xl/workbook.xml")),
        "xl/workbook.xml": f'<workbook xmlns:r="{R}"><sheets><sheet name="Summary" sheetId="1" r:id="rId1"/>'
                           f'<sheet name="CT images" sheetId="2" r:id="rId2"/></sheets></workbook>'.encode(),
        "xl/_rels/workbook.xml.rels": rels(("rId1", "worksheet", "worksheets/sheet1.xml"),
                                           ("rId2", "worksheet", "worksheets/sheet2.xml")),
        "xl/worksheets/sheet2.xml": b"<worksheet/>",
        "xl/worksheets/_rels/sheet2.xml.rels": rels(("rId1", "drawing", "../drawings/drawing1.xml")),
        "xl/drawings/drawing1.xml": b"<xdr:wsDr/>",
        "xl/drawings/_rels/drawing1.xml.rels": rels(("rId1", "image", "../media/image1.jpeg")),
        "xl/media/image1.jpeg": jpeg(6)})
    assert rows(items(xlsx, "trial.xlsx"))[1] == ("trial.xlsx:xl/media/image1.jpeg", "sheet CT images", "image")


def test_a_picture_given_by_its_member_name_keeps_its_place(tmp_path):
    (tmp_path / "talk.pptx").write_bytes(pptx())
    got = rows(open_input(f"{tmp_path}/talk.pptx:ppt/media/image2.jpeg"))
    assert got == [(f"{tmp_path}/talk.pptx:ppt/media/image2.jpeg", "slide 2", "image")]


def test_an_entity_bomb_in_the_relationships_leaves_the_pictures_read_without_places():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b'<Relationships><Relationship Id="rId1" Type="x/image" Target="media/image1.png"/></Relationships>')
    data = b.zip_bytes({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>",
                        "word/_rels/document.xml.rels": bomb, "word/media/image1.png": b.image_bytes("PNG")})
    assert rows(items(data, "x.docx"))[1] == ("x.docx:word/media/image1.png", "", "image")


pytest.importorskip("olefile")


@pytest.mark.parametrize("name, tree", [
    ("locked.docx", {"EncryptionInfo": b"\x04\x00\x04\x00\x40\x00\x00\x00" + bytes(200),
                     "EncryptedPackage": bytes(5000), "\x06DataSpaces": {"Version": bytes(60)}}),
    ("locked.xlsx", {"EncryptionInfo": bytes(200), "EncryptedPackage": bytes(300)}),
    ("locked.doc", {"WordDocument": bytes(10) + b"\x00\x01" + bytes(600), "Data": b.office_blip(jpeg(1), "jpg")}),
    ("locked.xls", {"Workbook": b"\x09\x08\x04\x00" + bytes(4) + b"\x2f\x00\x02\x00\x00\x00"
                                + b"\x0a\x00\x00\x00"}),
    ("locked.ppt", {"PowerPoint Document": bytes(100), "EncryptedSummary": bytes(50), "Pictures": bytes(40)}),
])
def test_a_password_protected_file_is_an_error_saying_so(tmp_path, name, tree):
    (err,) = items(b.compound_file(tree), name)
    assert "password-protected (encrypted)" in err.error and not err.skipped
    (tmp_path / name).write_bytes(b.compound_file(tree))
    (err,) = open_input(tmp_path)  # found in a folder: an error too, as an encrypted zip member is
    assert "password-protected" in err.error and not err.skipped


def test_an_unprotected_doc_still_gives_its_pictures():
    got = items(b.compound_file({"WordDocument": bytes(600), "Data": b.office_blip(jpeg(1), "jpg")}), "letter.doc")
    assert [type(i).__name__ for i in got] == ["ImageItem", "ItemError"]


def test_a_zipped_pages_document_gives_its_pictures_not_its_previews():
    pages = b.zip_bytes({"Index/Document.iwa": b"\x00\x10\x00\x00" + bytes(16), "Index/Metadata.iwa": bytes(20),
                         "Metadata/Properties.plist": b"bplist00", "preview.jpg": jpeg(7),
                         "preview-micro.jpg": jpeg(8), "Data/ct-axial-12.jpg": jpeg(9)})
    got = rows(items(pages, "report.pages"))
    assert got == [("report.pages", "", "Apple iWork document: 5 parts that are not its pictures (text, styles, "
                                        "page thumbnail, charts, embedded objects) left out"),
                   ("report.pages:Data/ct-axial-12.jpg", "", "image")]
