"""A second read of session 46's changes: EPUB fonts obfuscated (not DRM), the memory of a chapter naming a
million pictures, and the record writer's output cut back on a full disk only where it writes."""
from __future__ import annotations

import io
import json
import tracemalloc
import zipfile

import builders as b
from medimg.sources import office
from test_office_s43 import items, rows

ENCRYPTION = ('<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" xmlns:enc="http://www.w3.org/2001/'
              '04/xmlenc#">{}</encryption>')
ENTRY = ('<enc:EncryptedData><enc:EncryptionMethod Algorithm="{}"/><enc:CipherData><enc:CipherReference URI="{}"/>'
         '</enc:CipherData></enc:EncryptedData>')


def test_an_epub_font_obfuscated_is_no_drm_and_no_picture():
    """IDPF's and Adobe's font obfuscation (encryption.xml, every e-book with embedded fonts) named an SVG font a
    picture "encrypted by the e-book's DRM": an error record for a book with no DRM. Obfuscated members are fonts,
    left out with the other parts; a picture truly encrypted (AES) is still the DRM error."""
    svg_font = b'<svg xmlns="http://www.w3.org/2000/svg"><defs><font id="f"><glyph unicode="a"/></font></defs></svg>'
    entries = (ENTRY.format("http://www.idpf.org/2008/embedding", "OEBPS/fonts/serif.svg") +
               ENTRY.format("http://ns.adobe.com/pdf/enc#RC", "OEBPS/fonts/sans.otf") +
               ENTRY.format("http://www.w3.org/2001/04/xmlenc#aes128-cbc", "OEBPS/images/locked.png"))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr("META-INF/encryption.xml", ENCRYPTION.format(entries))
        z.writestr("OEBPS/fonts/serif.svg", bytes(x ^ 0x5A for x in svg_font))  # XORed, as obfuscation does
        z.writestr("OEBPS/fonts/sans.otf", b"OTTO" + bytes(60))
        z.writestr("OEBPS/images/locked.png", bytes(range(256)) * 4)
        z.writestr("OEBPS/images/fig.png", b.image_bytes("PNG", (90, 70)))
        z.writestr("OEBPS/ch1.xhtml", b'<html><body><img src="images/fig.png"/></body></html>')
    assert rows(items(out.getvalue(), "book.epub")) == [
        ("book.epub", "", "EPUB e-book: 5 parts that are not its pictures (chapters, styles, fonts) left out"),
        ("book.epub:OEBPS/images/locked.png", "", "encrypted by the e-book's DRM (META-INF/encryption.xml); not read"),
        ("book.epub:OEBPS/images/fig.png", "ch1.xhtml", "image")]


def _survey_peak(chapter: bytes) -> tuple[office.Office, int]:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr("ch1.xhtml", chapter)
        z.writestr("fig.png", b.image_bytes("PNG", (60, 40)))
    zf = zipfile.ZipFile(out)
    tracemalloc.start()
    try:
        found = office.survey(zf, zf.infolist(), lambda zf, info, limit: zf.read(info))
        return found, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_an_epub_chapter_naming_a_million_pictures_costs_no_set_each():
    """A 50 KB e-book whose chapter is 300,000 `<img src="http://…">` (or names of pictures it lacks) took a
    set, or a name and a set, for each: 75 MB (350 MB for 32 MB of chapters) for one upload. Remote pictures of a
    chapter share its set, names the book lacks are not kept, and a book's matches stop at the cap on an Office
    file's XML elements."""
    remote, peak = _survey_peak(b'<img src="fig.png">' + b'<img src="http://a/b">' * 300_000)
    assert len(remote.linked) == 300_000 and peak < 40_000_000, peak
    lacking, peak = _survey_peak(b'<img src="fig.png">' +
                                 b"".join(b'<img src="i%06d.png">' % i for i in range(300_000)))
    assert lacking.places == {"fig.png": "ch1.xhtml"} and peak < 40_000_000, peak


def test_a_visio_picture_on_several_pages_names_them_in_order():
    """A Visio picture on pages 2 and 10 to 12 said `page 10, page 11, page 12, page 2` (sorted as text); its
    pages now read as slides do: `pages 2, 10–12`."""
    from test_office_s46 import R, V, VX, vrels

    bitmap = '<Shapes><Shape ID="1" Type="Foreign"><ForeignData><Rel r:id="rId1"/></ForeignData></Shape></Shapes>'
    parts = {"[Content_Types].xml": b"<Types/>", "_rels/.rels": vrels(("rId1", f"{V}/document", "visio/document.xml")),
             "visio/document.xml": f"<VisioDocument {VX}/>".encode(),
             "visio/_rels/document.xml.rels": vrels(("rId1", f"{V}/pages", "pages/pages.xml")),
             "visio/media/image1.jpeg": b.image_bytes("JPEG", (80, 60))}
    listed = "".join(f'<Page ID="{i}" Name="P{i}"><Rel r:id="rId{i}"/></Page>' for i in range(1, 13))
    parts["visio/pages/pages.xml"] = f"<Pages {VX}>{listed}</Pages>".encode()
    parts["visio/pages/_rels/pages.xml.rels"] = vrels(*((f"rId{i}", f"{V}/page", f"page{i}.xml") for i in range(1, 13)))
    for i in range(1, 13):
        shows = i in (2, 10, 11, 12)
        parts[f"visio/pages/page{i}.xml"] = f"<PageContents {VX}>{bitmap if shows else ''}</PageContents>".encode()
        if shows:
            parts[f"visio/pages/_rels/page{i}.xml.rels"] = vrels(("rId1", f"{R}/image", "../media/image1.jpeg"))
    assert rows(items(b.zip_bytes(parts), "ward.vsdx"))[1:] == [
        ("ward.vsdx:visio/media/image1.jpeg", "pages 2, 10–12", "image")]


class _Elsewhere(io.TextIOBase):
    """A standard output that writes elsewhere but names a file's descriptor as its own, as Jupyter's does (its
    `fileno()` is a copy of the kernel's first standard output: the server's log, when that is a file)."""

    encoding, errors = "utf-8", "strict"

    def __init__(self, fd: int):
        self.fd, self.text = fd, []

    def fileno(self) -> int:
        return self.fd

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.text.append(text)
        return len(text)


def test_records_for_a_stream_that_does_not_write_to_its_descriptor_are_not_written_there(tmp_path):
    """The writer checked its rows reached a regular file by the descriptor's position, and wrote again what
    seemed missing: into the log file of a Jupyter server (whose copy `fileno()` gives) every row, and on a
    full disk it would cut that file and point the descriptor at /dev/null. Only a file the stream itself writes
    through is checked."""
    from medimg.output import RecordWriter
    from medimg.pipeline import Record

    log = tmp_path / "server.log"
    log.write_text("started\n")
    with open(log, "a") as f:
        stream = _Elsewhere(f.fileno())
        writer = RecordWriter(stream, "jsonl")
        writer.write(Record(input="a.png", locator="", label="ct", confidence=0.9, p_medical=0.95,
                            verdict="medical"))
        writer.close()
    assert log.read_text() == "started\n"
    assert [json.loads(line)["input"] for line in "".join(stream.text).splitlines()] == ["a.png"]


def test_a_bom_writing_stream_gets_its_rows_once(tmp_path):
    """A file opened with a BOM-writing encoding (`utf-8-sig`, `utf-16`): the writer encoded each row again to
    count its bytes, BOM included, found that many "missing" and wrote them a second time, mid-row."""
    from medimg.output import RecordWriter
    from medimg.pipeline import Record

    for encoding in ("utf-8-sig", "utf-16"):
        path = tmp_path / f"r-{encoding}.jsonl"
        with open(path, "w", encoding=encoding) as f:
            writer = RecordWriter(f, "jsonl")
            for name in ("a.png", "b.png"):
                writer.write(Record(input=name, locator="", label="ct", confidence=0.9, p_medical=0.95,
                                    verdict="medical"))
            writer.close()
        text = path.read_text(encoding=encoding)
        assert [json.loads(line)["input"] for line in text.splitlines()] == ["a.png", "b.png"], text
