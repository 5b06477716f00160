"""Office documents as a hospital user hands them in (session 40): a password-protected OpenDocument file, a picture
with artistic effects (Office keeps its original as an HD Photo), the speaker notes of a slide, a picture too big to
read on a slide, and RTF reports with pictures. The documents are written part by part (python-docx, python-pptx and
odfpy are not installed)."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import builders as b
from medimg.sources import Blob, Context, ImageItem, Limits, open_input
from test_office_s37 import EMF, NS, jpeg, rels, slide

A14 = "http://schemas.microsoft.com/office/drawing/2010/main"
HD_PHOTO = b"II\xbc\x01" + bytes(200)  # the start of a JPEG XR (HD Photo) file, as Office writes .wdp


def items(data: bytes, name: str, **limits) -> list:
    return list(Context(Limits(**limits)).open_blob(Blob(name, data, name=name)))


def rows(got) -> list[tuple[str, str, str]]:
    return [(i.origin, i.locator, "image" if isinstance(i, ImageItem) else i.error) for i in got]


def deck() -> bytes:
    """Two slides: slide 1 a picture with an artistic effect (its original an HD Photo), slide 2 a JPEG with a
    picture in its speaker notes."""
    effect = (f'<p:pic><p:blipFill><a:blip r:embed="rId2"><a:extLst><a:ext uri="{{BEBA8EAE-BF5A-486C-A8C5-'
              f'ECC9F3942E4B}}"><a14:imgProps xmlns:a14="{A14}"><a14:imgLayer r:embed="rId3"><a14:imgEffect>'
              '<a14:artisticPencilSketch/></a14:imgEffect></a14:imgLayer></a14:imgProps></a:ext></a:extLst></a:blip>'
              '</p:blipFill></p:pic>')
    plain = '<p:pic><p:blipFill><a:blip r:embed="rId2"/></p:blipFill></p:pic>'
    return b.zip_bytes({
        "[Content_Types].xml": b"<Types/>",
        "_rels/.rels": rels(("rId1", "officeDocument", "ppt/presentation.xml")),
        "ppt/presentation.xml": f'<p:presentation {NS}><p:sldIdLst><p:sldId id="256" r:id="rId10"/><p:sldId '
                                f'id="257" r:id="rId11"/></p:sldIdLst></p:presentation>'.encode(),
        "ppt/_rels/presentation.xml.rels": rels(("rId10", "slide", "slides/slide1.xml"),
                                                ("rId11", "slide", "slides/slide2.xml")),
        "ppt/slides/slide1.xml": slide(effect),
        "ppt/slides/_rels/slide1.xml.rels": rels(("rId2", "image", "../media/image1.png"),
                                                 ("rId3", "hdphoto", "../media/hdphoto1.wdp")),
        "ppt/slides/slide2.xml": slide(plain),
        "ppt/slides/_rels/slide2.xml.rels": rels(("rId2", "image", "../media/image2.jpeg"),
                                                 ("rId3", "notesSlide", "../notesSlides/notesSlide1.xml")),
        "ppt/notesSlides/notesSlide1.xml": slide(plain),
        "ppt/notesSlides/_rels/notesSlide1.xml.rels": rels(("rId1", "slide", "../slides/slide2.xml"),
                                                           ("rId2", "image", "../media/image3.jpeg")),
        "ppt/media/image1.png": b.image_bytes("PNG", (160, 120)), "ppt/media/hdphoto1.wdp": HD_PHOTO,
        "ppt/media/image2.jpeg": jpeg(2), "ppt/media/image3.jpeg": jpeg(3)})


def test_the_original_kept_under_an_artistic_effect_is_a_note_naming_the_picture_shown(tmp_path):
    got = rows(items(deck(), "talk.pptx"))
    assert ("talk.pptx:ppt/media/image1.png", "slide 1", "image") in got
    assert ("talk.pptx:ppt/media/hdphoto1.wdp", "slide 1", "skipped: the original of a picture shown with effects "
            "applied, as ppt/media/image1.png, which is read instead") in got
    (tmp_path / "photo.wdp").write_bytes(HD_PHOTO)  # found alone: a note that names the format
    (note,) = open_input(tmp_path)
    assert note.skipped and note.error == "JPEG XR (HD Photo) is not decoded: skipped"


def test_a_picture_in_the_speaker_notes_says_which_slide():
    got = rows(items(deck(), "talk.pptx"))
    assert ("talk.pptx:ppt/media/image3.jpeg", "speaker notes of slide 2", "image") in got


def test_a_picture_too_big_to_read_still_says_where_it_is_shown():
    got = rows(items(deck(), "talk.pptx", max_input_bytes=30_000))
    (err,) = [r for r in got if r[0].endswith("image1.png")]
    assert err[1] == "slide 1" and "over the max_input_bytes cap of 30,000" in err[2]
    assert ("talk.pptx:ppt/media/image2.jpeg", "slide 2", "image") in got  # the rest carry on


def odt(manifest: bytes | None, *extra) -> bytes:
    members = [("mimetype", b"application/vnd.oasis.opendocument.text"),
               ("content.xml", b"<office:document-content/>"), *extra]
    if manifest is not None:
        members.append(("META-INF/manifest.xml", manifest))
    return b.zip_bytes(members, zipfile.ZIP_STORED)


MANIFEST = (b'<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
            b'<manifest:file-entry manifest:full-path="Pictures/1.png" manifest:media-type="image/png">{}'
            b'</manifest:file-entry></manifest:manifest>')


def test_a_password_protected_opendocument_file_is_an_error_saying_so(tmp_path):
    encrypted = MANIFEST.replace(b"{}", b'<manifest:encryption-data manifest:checksum-type="SHA1/1K" '
                                        b'manifest:checksum="AAAA"><manifest:algorithm manifest:algorithm-name='
                                        b'"Blowfish CFB" manifest:initialisation-vector="AAAA"/>'
                                        b'</manifest:encryption-data>')
    locked = odt(encrypted, ("Pictures/1.png", bytes(range(256)) * 12))  # its bytes encrypted
    whole = odt(None, ("encrypted-package", bytes(3000)))  # LibreOffice 7.5+: the whole package encrypted
    for name, data in (("letter.odt", locked), ("letter2.odt", whole)):
        (err,) = items(data, name)
        assert err.origin == name and not err.skipped
        assert err.error.startswith("password-protected (encrypted) OpenDocument file")
    (tmp_path / "in.zip").write_bytes(b.zip_bytes({"letter.odt": locked}))
    (err,) = open_input(tmp_path / "in.zip")  # in an archive: an error too
    assert "password-protected" in err.error and not err.skipped
    plain = odt(MANIFEST.replace(b"{}", b""), ("Pictures/1.png", b.image_bytes("PNG", (80, 80))))
    assert [type(i).__name__ for i in items(plain, "letter.odt")] == ["ItemError", "ImageItem"]


def rtf_report() -> bytes:
    """An RTF report as Word writes it: a PNG twice (as it is, and a WMF copy for older readers), a JPEG after
    `\\bin`, a DIB, an EMF, and the text around them."""
    png = b.image_bytes("PNG", (120, 90)).hex()
    lines = "\r\n".join(png[i:i + 128] for i in range(0, len(png), 128)).encode()
    picture = jpeg(5)
    return (b"{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0 Calibri;}}\\pard CT thorax: no findings\\par "
            b"{\\*\\shppict{\\pict{\\*\\picprop\\shplid1025{\\sp{\\sn shapeType}{\\sv 75}}}\\picscalex100"
            b"\\picw3175\\pich2381\\pngblip{\\*\\blipuid 0123456789abcdef0123456789abcdef}\r\n" + lines + b"}}"
            b"{\\nonshppict{\\pict\\wmetafile8\\picw3175\\pich2381 " + (b"0100090000030000" * 8) + b"}}\\par "
            b"{\\pict\\jpegblip\\bin" + str(len(picture)).encode() + b" " + picture + b"}\\par "
            b"{\\pict\\dibitmap0 " + b.image_bytes("BMP", (80, 70))[14:].hex().encode() + b"}\\par "
            b"{\\pict\\emfblip " + EMF.hex().encode() + b"}\\par Dr. M\\'fcller\\par}")


def test_an_rtf_report_gives_its_pictures_once_each(tmp_path):
    got = items(rtf_report(), "report.rtf")
    assert [(r[0], r[2]) for r in rows(got)] == [
        ("report.rtf:picture-1.png", "image"), ("report.rtf:picture-2.jpg", "image"),
        ("report.rtf:picture-3.bmp", "image"),
        ("report.rtf", "RTF document: its text left out; 1 WMF copy of its pictures for older readers left out; "
                       "1 drawing (EMF/WMF/PICT) not drawn")]
    assert [i.image.size for i in got[:3]] == [(120, 90), (96, 96), (80, 70)]
    (tmp_path / "report.rtf").write_bytes(rtf_report())  # a picture by its name, as its row gives it
    (one,) = open_input(f"{tmp_path}/report.rtf:picture-2.jpg")
    assert isinstance(one, ImageItem) and one.origin.endswith("report.rtf:picture-2.jpg")


def test_bad_rtf_pictures_are_errors_of_their_own_and_caps_hold():
    png = b.image_bytes("PNG", (100, 100))
    data = (b"{\\rtf1 {\\pict\\pngblip abc}{\\pict\\pngblip " + png.hex().encode() + b"}"
            b"{\\pict\\pngblip " + png[:300].hex().encode() + b"}}")
    got = rows(items(data, "x.rtf"))
    assert got[0] == ("x.rtf:picture-1.png", "", "damaged picture: its hex digits do not make whole bytes; not read")
    assert got[1] == ("x.rtf:picture-2.png", "", "image")
    assert got[2][0] == "x.rtf:picture-3.png" and "truncated" in got[2][2]
    capped = rows(items(data, "x.rtf", max_input_bytes=1000))
    assert capped[1] == ("x.rtf:picture-2.png", "", "picture is over the max_input_bytes cap of 1,000; not read")
    many = b"{\\rtf1 " + (b"{\\pict\\pngblip " + png.hex().encode() + b"}") * 5 + b"}"
    got = rows(items(many, "x.rtf", zip_max_entries=3))
    assert sum(r[2] == "image" for r in got) == 3 and "zip_max_entries cap of 3" in got[3][2]
    flood = b"{\\rtf1 {\\pict " + b"{}" * 3_000_000 + b"}}"  # 6 MB of empty groups in one picture
    got = rows(items(flood, "x.rtf"))
    assert "take over 1,000,000 steps to read" in got[0][2] and got[-1][2] == "RTF document: its text left out"


def test_the_command_line_reads_an_rtf_report(tmp_path):
    (tmp_path / "report.rtf").write_bytes(rtf_report())
    out = tmp_path / "rows.jsonl"
    done = subprocess.run([sys.executable, "-m", "medimg", "classify", str(tmp_path / "report.rtf"), "--model",
                           "fast", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.read_text().count('"input"') == 3


def test_an_rtf_ending_in_a_lone_backslash_inside_a_picture_is_read_to_its_end():
    from medimg.sources import Blob, Context
    from medimg.sources.rtf import _pictures

    got = list(_pictures(Blob("a.rtf", b"{\\rtf1 {\\pict\\pngblip 89504e\\"), Context()))
    assert got[-1].error.startswith("RTF document")
