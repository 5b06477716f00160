"""Office-style documents (session 46): a Word document embedded in a slide says which slide, a Visio drawing's
pictures are placed by page, and an EPUB gives its pictures (not a note per chapter, nor a fetch of a picture a
chapter names by URL). The packages are written part by part (python-docx and python-pptx are not installed)."""

from __future__ import annotations

import io
import time
import zipfile

import builders as b
from medimg.sources import open_input
from test_office_s37 import NS, docx, jpeg, pic, rels, slide, two_slide_odp
from test_office_s43 import items, rows


def deck_with_a_report() -> bytes:
    """Slide 1: a cropped picture; slide 2: a Word report embedded as an object (its preview a PNG), the report's
    own body picture cropped too."""
    inner = zipfile.ZipFile(io.BytesIO(docx()))
    report = {n: inner.read(n) for n in inner.namelist()}
    report["word/document.xml"] = report["word/document.xml"].replace(
        b'<a:blip r:embed="rId5"/>', b'<a:blip r:embed="rId5"/><a:srcRect t="50000"/>')
    ole = ('<p:graphicFrame><a:graphic><a:graphicData><p:oleObj r:id="rId3"><p:embed/><p:pic><p:blipFill>'
           '<a:blip r:embed="rId4"/></p:blipFill></p:pic></p:oleObj></a:graphicData></a:graphic></p:graphicFrame>')
    return b.zip_bytes({
        "[Content_Types].xml": b"<Types/>", "_rels/.rels": rels(("rId1", "officeDocument", "ppt/presentation.xml")),
        "ppt/presentation.xml": f'<p:presentation {NS}><p:sldIdLst><p:sldId id="256" r:id="rId10"/><p:sldId '
                                f'id="257" r:id="rId11"/></p:sldIdLst></p:presentation>'.encode(),
        "ppt/_rels/presentation.xml.rels": rels(("rId10", "slide", "slides/slide1.xml"),
                                                ("rId11", "slide", "slides/slide2.xml")),
        "ppt/slides/slide1.xml": slide(pic("rId2")),
        "ppt/slides/_rels/slide1.xml.rels": rels(("rId2", "image", "../media/image1.jpeg")),
        "ppt/slides/slide2.xml": slide(ole),
        "ppt/slides/_rels/slide2.xml.rels": rels(("rId3", "package", "../embeddings/Microsoft_Word_Document.docx"),
                                                 ("rId4", "image", "../media/image2.png")),
        "ppt/embeddings/Microsoft_Word_Document.docx": b.zip_bytes(report),
        "ppt/media/image1.jpeg": jpeg(1), "ppt/media/image2.png": b.image_bytes("PNG", (80, 60))})


def test_the_pictures_of_a_document_embedded_in_a_slide_say_which_slide(tmp_path):
    inner = "talk.pptx:ppt/embeddings/Microsoft_Word_Document.docx"
    got = [r for r in rows(items(deck_with_a_report(), "talk.pptx")) if r[2] == "image"]
    assert got == [(f"{inner}:word/media/image1.png", "slide 2, header", "image"),
                   (f"{inner}:word/media/image2.jpeg", "slide 2, document body", "image"),
                   ("talk.pptx:ppt/media/image1.jpeg", "slide 1", "image"),
                   ("talk.pptx:ppt/media/image2.png", "slide 2", "image")]
    (tmp_path / "talk.pptx").write_bytes(deck_with_a_report())  # given by its member name, as the rows name it
    assert rows(open_input(f"{tmp_path}/{inner}:word/media/image2.jpeg")) == [
        (f"{tmp_path}/{inner}:word/media/image2.jpeg", "slide 2, document body", "image")]


V = "http://schemas.microsoft.com/visio/2010/relationships"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
VX = f'xmlns="http://schemas.microsoft.com/office/visio/2012/main" xmlns:r="{R}"'


def vrels(*rs) -> bytes:
    out = "".join(f'<Relationship Id="{rid}" Type="{kind}" Target="{target}"/>' for rid, kind, target in rs)
    return (f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{out}'
            '</Relationships>').encode()


def visio() -> bytes:
    """Two pages listed Ward, Scans; the picture is on page1.xml, which is the second page shown."""
    bitmap = '<Shapes><Shape ID="1" Type="Foreign"><ForeignData><Rel r:id="rId1"/></ForeignData></Shape></Shapes>'
    return b.zip_bytes({
        "[Content_Types].xml": b"<Types/>", "_rels/.rels": vrels(("rId1", f"{V}/document", "visio/document.xml")),
        "visio/document.xml": f"<VisioDocument {VX}/>".encode(),
        "visio/_rels/document.xml.rels": vrels(("rId1", f"{V}/pages", "pages/pages.xml")),
        "visio/pages/pages.xml": f'<Pages {VX}><Page ID="4" Name="Ward"><Rel r:id="rId2"/></Page><Page ID="0" '
                                 f'Name="Scans"><Rel r:id="rId1"/></Page></Pages>'.encode(),
        "visio/pages/_rels/pages.xml.rels": vrels(("rId1", f"{V}/page", "page1.xml"),
                                                  ("rId2", f"{V}/page", "page2.xml")),
        "visio/pages/page1.xml": f"<PageContents {VX}>{bitmap}</PageContents>".encode(),
        "visio/pages/_rels/page1.xml.rels": vrels(("rId1", f"{R}/image", "../media/image1.jpeg")),
        "visio/pages/page2.xml": f"<PageContents {VX}/>".encode(),
        "visio/media/image1.jpeg": jpeg(1)})


def test_a_visio_drawing_gives_its_pictures_by_page_and_one_note():
    got = rows(items(visio(), "ward.vsdx"))
    assert got[1:] == [("ward.vsdx:visio/media/image1.jpeg", "page 2", "image")]
    assert got[0][2].startswith("office document: 9 parts that are not its pictures")


def epub(chapter: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/container.xml", '<container><rootfiles><rootfile full-path="OEBPS/content.opf"/>'
                                             '</rootfiles></container>', compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("OEBPS/content.opf", "<package/>")
        z.writestr("OEBPS/text/ch1.xhtml", chapter)
        z.writestr("OEBPS/text/ch2.xhtml", b'<!DOCTYPE html><html><body><svg><image xlink:href="../images/'
                                           b'fig1.png"/></svg><p>&nbsp;</p></body></html>')
        z.writestr("OEBPS/images/fig1.png", b.image_bytes("PNG", (100, 80)))
        z.writestr("OEBPS/images/cover.jpg", jpeg(3))
        z.writestr("OEBPS/styles.css", "body{}")
    return out.getvalue()


def test_an_epub_gives_its_pictures_placed_by_chapter_and_fetches_nothing():
    chapter = (b'<?xml version="1.0"?><!DOCTYPE html><html xmlns="http://www.w3.org/1999/xhtml"><body>&nbsp;'
               b'<img alt="CT" src="../images/fig1.png"/><img src="http://127.0.0.1:9/tracker.png"/></body></html>')
    got = rows(items(epub(chapter), "atlas.epub"))
    assert got == [("atlas.epub", "", "EPUB e-book: 6 parts that are not its pictures (chapters, styles, fonts) left "
                                     "out; 1 picture linked from outside the file "
                                     "(ch1.xhtml), not in it: not fetched"),
                   ("atlas.epub:OEBPS/images/fig1.png", "ch1.xhtml, ch2.xhtml", "image"),
                   ("atlas.epub:OEBPS/images/cover.jpg", "", "image")]


def test_an_epub_chapter_of_unclosed_img_tags_is_matched_in_linear_time():
    start = time.monotonic()
    got = rows(items(epub(b"<img " * 800_000), "atlas.epub"))  # 4 MB: each tag's attributes end at the next `<`
    assert time.monotonic() - start < 20
    assert ("atlas.epub:OEBPS/images/fig1.png", "ch2.xhtml", "image") in got


def test_an_epub_picture_its_drm_encrypts_is_an_error_saying_so():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr("META-INF/encryption.xml", '<encryption xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:Encrypted'
                                              'Data><enc:CipherData><enc:CipherReference URI="OEBPS/fig%201.png"/>'
                                              '</enc:CipherData></enc:EncryptedData></encryption>')
        z.writestr("OEBPS/fig 1.png", bytes(range(256)) * 20)
        z.writestr("OEBPS/fig2.jpg", jpeg(2))
    assert rows(items(out.getvalue(), "drm.epub"))[1:] == [
        ("drm.epub:OEBPS/fig 1.png", "", "encrypted by the e-book's DRM (META-INF/encryption.xml); not read"),
        ("drm.epub:OEBPS/fig2.jpg", "", "image")]


def test_the_pictures_of_a_document_embedded_in_an_odp_are_read_on_its_slide():
    inner = (b'<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:draw='
             b'"urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:xlink="http://www.w3.org/1999/xlink">'
             b'<office:body><office:text><draw:frame><draw:image xlink:href="Pictures/2.png"/></draw:frame>'
             b'</office:text></office:body></office:document-content>')
    data = two_slide_odp(b'<draw:object xlink:href="./Object 1"/><draw:image xlink:href="./ObjectReplacements/'
                         b'Object 1"/>', ("Object 1/content.xml", inner),
                         ("Object 1/Pictures/2.png", b.image_bytes("PNG", (70, 50))),
                         ("ObjectReplacements/Object 1", b"VCLMTF" + bytes(50)))
    assert rows(items(data, "talk.odp"))[1:] == [("talk.odp:Pictures/1.jpg", "slide 1", "image"),
                                                  ("talk.odp:Object 1/Pictures/2.png", "slide 2", "image")]


def epub_of(chapters: int, src: str, picture: str, size: tuple[int, int], name: str = "text/ch{i:02}.xhtml") -> bytes:
    """An EPUB whose `chapters` chapters each show `src`, the picture stored as `picture`."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        for i in range(1, chapters + 1):
            z.writestr(name.format(i=i), f'<html><body><img src="{src}"/></body></html>')
        z.writestr(picture, b.image_bytes("PNG", size))
    return out.getvalue()


def test_an_epub_logo_in_every_chapter_names_three_of_them():
    assert rows(items(epub_of(40, "../logo.png", "logo.png", (60, 20)), "atlas.epub"))[1:] == [
        ("atlas.epub:logo.png", "ch01.xhtml, ch02.xhtml, ch03.xhtml and 37 more", "image")]
