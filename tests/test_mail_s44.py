"""Documents that carry images (session 44): flat OpenDocument files (.fodt/.fodp/.fods/.fodg, LibreOffice's
"Flat XML": the pictures base64 in <office:binary-data>), built here as LibreOffice writes them."""

from __future__ import annotations

import base64
import io

from PIL import Image

from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input

NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
      'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
      'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
      'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
      'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"')
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'


def picture(kind: str = "PNG", size: tuple[int, int] = (200, 150)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (180, 40, 40)).save(out, kind)
    return out.getvalue()


def frame(*pictures: tuple[bytes, str]) -> str:
    images = "".join(f'<draw:image draw:mime-type="{mime}"><office:binary-data>{base64.encodebytes(data).decode()}'
                     f'</office:binary-data></draw:image>' for data, mime in pictures)
    return f'<draw:frame draw:name="Image" svg:width="5cm" svg:height="4cm">{images}</draw:frame>'


def flat(kind: str, body: str, styles: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document {NS} office:version="1.3" '
            f'office:mimetype="application/vnd.oasis.opendocument.{kind}">{styles}<office:body>{body}</office:body>'
            '</office:document>').encode()


def items_of(data: bytes, name: str, **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def found(items: list) -> list[tuple[str, str, tuple[int, int]]]:
    return [(i.origin, i.locator, i.image.size) for i in items if isinstance(i, ImageItem)]


def errors(items: list) -> list[tuple[str, str, str]]:
    return [(i.origin, i.locator, i.error) for i in items if isinstance(i, ItemError) and not i.skipped]


def test_a_flat_text_document_gives_each_picture_once_in_order():
    body = (f'<office:text><text:p>Befund</text:p><text:p>{frame((picture(), "image/png"))}</text:p>'
            f'<text:p>{frame((picture("JPEG", (300, 200)), "image/jpeg"))}</text:p></office:text>')
    items = items_of(flat("text", body), "Befund Röntgen.fodt")
    assert found(items) == [("Befund Röntgen.fodt:picture-1.png", "", (200, 150)),
                            ("Befund Röntgen.fodt:picture-2.jpeg", "", (300, 200))]
    assert errors(items) == []
    assert any("flat OpenDocument text document: its text left out" in i.error for i in items
               if isinstance(i, ItemError) and i.skipped)


def test_a_flat_presentation_places_each_picture_on_its_slide():
    pages = "".join(f'<draw:page draw:name="p{n}">{frame((picture(size=(100 + n, 100)), "image/png"))}</draw:page>'
                    for n in (1, 2, 3))
    items = items_of(flat("presentation", f"<office:presentation>{pages}</office:presentation>"), "talk.fodp")
    assert found(items) == [(f"talk.fodp:picture-{n}.png", f"slide {n}", (100 + n, 100)) for n in (1, 2, 3)]


def test_a_flat_spreadsheet_reads_an_svg_through_its_raster_copy_placed_on_its_sheet():
    shapes = frame((SVG, "image/svg+xml"), (picture(), "image/png"))
    body = (f'<office:spreadsheet><table:table table:name="Befunde Ü"><table:shapes>{shapes}</table:shapes>'
            '</table:table></office:spreadsheet>')
    items = items_of(flat("spreadsheet", body), "lab.fods")
    assert found(items) == [("lab.fods:picture-2.png", "sheet Befunde Ü", (200, 150))]
    skipped = [i for i in items if isinstance(i, ItemError) and i.origin == "lab.fods:picture-1.svg"]
    assert skipped and "raster copy picture-2.png" in skipped[0].error and skipped[0].skipped


def test_a_picture_in_the_styles_is_read_too():
    styles = (f'<office:styles><draw:fill-image draw:name="bg"><office:binary-data>'
              f'{base64.encodebytes(picture("JPEG")).decode()}</office:binary-data></draw:fill-image></office:styles>')
    items = items_of(flat("graphics", "<office:drawing><draw:page/></office:drawing>", styles), "a.fodg")
    assert found(items) == [("a.fodg:picture-1.jpeg", "", (200, 150))]


def test_a_cut_off_flat_document_gives_the_pictures_before_the_cut_and_says_so():
    body = f'<office:text>{frame((picture(), "image/png"))}{frame((picture("JPEG"), "image/jpeg"))}</office:text>'
    data = flat("text", body)
    items = items_of(data[:len(data) * 3 // 4], "cut.fodt")
    assert found(items) == [("cut.fodt:picture-1.png", "", (200, 150))]
    assert [e for e in errors(items) if "cut off or damaged" in e[2] and "the rest is not read" in e[2]]


def test_a_doctype_is_refused_with_a_clear_error():
    data = flat("text", f'<office:text>{frame((picture(), "image/png"))}</office:text>')
    data = data.replace(b"<office:document ", b'<!DOCTYPE d [<!ENTITY a "aaaa">]>\n<office:document ', 1)
    items = items_of(data, "entities.fodt")
    assert found(items) == []
    assert [e for e in errors(items) if "declares a DOCTYPE" in e[2]]


def test_flat_documents_obey_the_container_caps():
    body = f'<office:text>{frame((picture(), "image/png"))}{frame((picture("JPEG"), "image/jpeg"))}</office:text>'
    data = flat("text", body)
    items = items_of(data, "a.fodt", zip_max_entries=1)
    assert len(found(items)) == 1 and [e for e in errors(items) if "zip_max_entries cap of 1 pictures" in e[2]]
    first = picture()
    items = items_of(data, "a.fodt", zip_max_bytes=len(first) + 10)
    assert found(items) == [("a.fodt:picture-1.png", "", (200, 150))]
    assert [e for e in errors(items) if e[0] == "a.fodt:picture-2.jpeg" and "zip_max_bytes cap" in e[2]]


def test_other_xml_is_not_taken_for_a_flat_document():
    content = flat("text", "<office:text/>").replace(b"<office:document ", b"<office:document-content ")
    content = content.replace(b"</office:document>", b"</office:document-content>")
    items = items_of(content, "content.xml")
    assert not any("flat OpenDocument" in i.error for i in items if isinstance(i, ItemError))


def test_a_flat_drawing_with_an_svg_element_early_is_not_taken_for_an_svg():
    pages = f'<draw:page><draw:frame><svg:title>Thorax</svg:title></draw:frame>{frame((picture(), "image/png"))}' \
            '</draw:page>'
    items = items_of(flat("graphics", f"<office:drawing>{pages}</office:drawing>"), "short.fodg")
    assert found(items) == [("short.fodg:picture-1.png", "page 1", (200, 150))]
