"""Office documents as generators and users write them (session 43): a report the Open XML SDK wrote (its pictures
in a `media/` folder at the package's root), pictures both linked and saved in the file ("Insert and Link"), and a
password-protected binary workbook (.xlsb). The packages are written part by part (python-docx, python-pptx and
openpyxl are not installed)."""

from __future__ import annotations

import builders as b
from medimg.sources import Blob, Context, ImageItem, Limits, open_input
from test_office_s37 import NS, jpeg, rels, slide

W = f'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" {NS}'
BLIP = ('<w:p><w:r><w:drawing><pic:pic xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture">'
        '<pic:blipFill><a:blip {}/></pic:blipFill></pic:pic></w:drawing></w:r></w:p>')


def items(data: bytes, name: str, **limits) -> list:
    return list(Context(Limits(**limits)).open_blob(Blob(name, data, name=name)))


def rows(got) -> list[tuple[str, str, str]]:
    return [(i.origin, i.locator, "image" if isinstance(i, ImageItem) else i.error) for i in got]


def sdk_report() -> bytes:
    """A report as the Open XML SDK's AddImagePart writes it (dotnet/Open-XML-SDK#1730): the body's picture at
    `/media/…`, the header's beside it, relationship ids of its own making."""
    vml = '<w:pict><v:shape xmlns:v="urn:schemas-microsoft-com:vml"><v:imagedata r:id="R9c"/></v:shape></w:pict>'
    EMBED = 'r:embed="R3f"'
    return b.zip_bytes({
        "[Content_Types].xml": b"<Types/>", "_rels/.rels": rels(("R1", "officeDocument", "/word/document.xml")),
        "word/document.xml": f'<w:document {W}><w:body>{BLIP.format(EMBED)}</w:body></w:document>'.encode(),
        "word/_rels/document.xml.rels": rels(("R2", "header", "/word/header1.xml"), ("R3f", "image", "/media/image.png")),
        "word/header1.xml": f'<w:hdr {W}><w:p><w:r>{vml}</w:r></w:p></w:hdr>'.encode(),
        "word/_rels/header1.xml.rels": rels(("R9c", "image", "/media/image2.jpeg")),
        "media/image.png": b.image_bytes("PNG", (120, 90)), "media/image2.jpeg": jpeg(1),
        "docProps/app.xml": b"<Properties/>"})


def test_pictures_the_open_xml_sdk_keeps_at_the_package_root_are_read(tmp_path):
    got = rows(items(sdk_report(), "report.docx"))
    assert got[1:] == [("report.docx:media/image.png", "document body", "image"),
                       ("report.docx:media/image2.jpeg", "header", "image")]
    assert got[0][2].startswith("office document: 7 parts that are not its pictures")
    (tmp_path / "report.docx").write_bytes(sdk_report())  # given by its member name, as the rows name it
    assert rows(open_input(f"{tmp_path}/report.docx:media/image2.jpeg")) == [
        (f"{tmp_path}/report.docx:media/image2.jpeg", "header", "image")]


def deck() -> bytes:
    """Slide 1: a picture inserted and linked (its blip gives both r:embed and r:link); slide 2: one only linked."""
    both = '<p:pic><p:blipFill><a:blip r:embed="rId2" r:link="rId3"/></p:blipFill></p:pic>'
    only = '<p:pic><p:blipFill><a:blip r:link="rId2"/></p:blipFill></p:pic>'
    return b.zip_bytes({
        "[Content_Types].xml": b"<Types/>",
        "_rels/.rels": rels(("rId1", "officeDocument", "ppt/presentation.xml")),
        "ppt/presentation.xml": f'<p:presentation {NS}><p:sldIdLst><p:sldId id="256" r:id="rId10"/><p:sldId '
                                f'id="257" r:id="rId11"/></p:sldIdLst></p:presentation>'.encode(),
        "ppt/_rels/presentation.xml.rels": rels(("rId10", "slide", "slides/slide1.xml"),
                                                ("rId11", "slide", "slides/slide2.xml")),
        "ppt/slides/slide1.xml": slide(both),
        "ppt/slides/_rels/slide1.xml.rels": rels(("rId2", "image", "../media/image1.jpeg"),
                                                 ("rId3", "image", "file:///C:/PACS/export/ct-12.jpg", "External")),
        "ppt/slides/slide2.xml": slide(only),
        "ppt/slides/_rels/slide2.xml.rels": rels(("rId2", "image", "file:///C:/PACS/export/mr-3.jpg", "External")),
        "ppt/media/image1.jpeg": jpeg(2)})


def test_a_picture_linked_and_saved_in_the_file_is_read_and_not_called_linked():
    got = rows(items(deck(), "talk.pptx"))
    assert ("talk.pptx:ppt/media/image1.jpeg", "slide 1", "image") in got
    assert got[0][2].endswith("; 1 picture linked from outside the file (slide 2), not in it: not fetched")


def test_a_vml_picture_linked_and_saved_in_the_file_is_not_called_linked():
    """Word's VML picture (an old document, a header): r:id the copy saved in the file, r:href the link."""
    vml = ('<w:pict><v:shape xmlns:v="urn:schemas-microsoft-com:vml"><v:imagedata r:id="rId1" r:href="rId2" '
           'o:href="file:///C:/logo.png" xmlns:o="urn:schemas-microsoft-com:office:office"/></v:shape></w:pict>')
    data = b.zip_bytes({
        "[Content_Types].xml": b"<Types/>", "_rels/.rels": rels(("rId1", "officeDocument", "word/document.xml")),
        "word/document.xml": f'<w:document {W}><w:body/></w:document>'.encode(),
        "word/_rels/document.xml.rels": rels(("rId2", "header", "header1.xml")),
        "word/header1.xml": f'<w:hdr {W}><w:p><w:r>{vml}</w:r></w:p></w:hdr>'.encode(),
        "word/_rels/header1.xml.rels": rels(("rId1", "image", "media/image1.png"),
                                            ("rId2", "image", "file:///C:/logo.png", "External")),
        "word/media/image1.png": b.image_bytes("PNG", (120, 40))})
    got = rows(items(data, "letter.docx"))
    assert got[1] == ("letter.docx:word/media/image1.png", "header", "image")
    assert "linked" not in got[0][2]


def test_a_password_protected_binary_workbook_is_an_error_saying_so():
    (err,) = items(b.compound_file({"EncryptionInfo": bytes(200), "EncryptedPackage": bytes(300)}), "trial.xlsb")
    assert "password-protected (encrypted)" in err.error and not err.skipped
