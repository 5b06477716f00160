"""Compound files written here (builders.compound_file): Outlook .msg and Office 97–2003 files, read through olefile.

The Office files are built to the documented layouts (MS-PPT, MS-DOC, MS-XLS with MS-ODRAW BLIP records),
not saved by Office itself, which cannot run here."""

from __future__ import annotations


import pytest

import builders as b
from medimg.sources import Blob, ImageItem, ItemError, Limits, input_tasks, open_input

pytest.importorskip("olefile")


def items_of(data: bytes, name="referral.msg", **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def test_attachments_are_read_and_the_text_is_a_note():
    ct = (b.dicom_dir() / "CT_small.dcm").read_bytes()
    big_png = b.image_bytes("PNG", size=(300, 200))  # over 4096 bytes: in regular sectors, not the mini stream
    data = b.outlook_msg([("knee.jpg", b.image_bytes("JPEG", size=(90, 60))), ("C:\\scans\\ct.dcm", ct),
                          ("wide.png", big_png), ("notes.txt", b"see you")])
    items = items_of(data)
    got = [(i.origin, type(i).__name__, getattr(i, "format", None)) for i in items]
    assert got[:3] == [("referral.msg:knee.jpg", "ImageItem", "JPEG"), ("referral.msg:ct.dcm", "ImageItem", "DICOM"),
                       ("referral.msg:wide.png", "ImageItem", "PNG")]
    assert items[2].image.size == (300, 200)
    assert items[3].skipped and items[3].origin == "referral.msg:notes.txt"
    assert items[-1].skipped and "text left out" in items[-1].error and len(items) == 5


def test_an_attached_message_is_walked():
    inner = b._msg_tree([("inner.png", b.image_bytes("PNG"))], "forwarded")
    items = items_of(b.outlook_msg([("outer.png", b.image_bytes("PNG"))], embedded=inner))
    assert [i.origin for i in items if isinstance(i, ImageItem)] == ["referral.msg:outer.png", "referral.msg:inner.png"]
    items = items_of(b.outlook_msg([], embedded=inner), max_depth=0)
    assert any("max_depth" in i.error for i in items if isinstance(i, ItemError))


def test_each_attachment_is_a_unit_of_work(tmp_path):
    path = tmp_path / "m.msg"
    path.write_bytes(b.outlook_msg([("a.png", b.image_bytes("PNG")), ("a.png", b.image_bytes("PNG", size=(20, 10)))]))
    assert [t.origin for t in input_tasks([path])] == [f"{path}:a.png", f"{path}:a (2).png", str(path)]


def test_caps():
    data = b.outlook_msg([("big.png", b.image_bytes("PNG", size=(300, 200))), ("small.png", b.image_bytes("PNG"))])
    items = items_of(data, max_input_bytes=20_000)
    assert "max_input_bytes" in items[0].error and isinstance(items[1], ImageItem)
    items = items_of(data, zip_max_bytes=1000)
    assert "zip_max_bytes" in items[0].error


def test_attachments_past_the_entries_cap_are_refused():
    """As a zip with too many members: attachments of attached messages count too, and nothing is read."""
    inner = b._msg_tree([("inner.png", b.image_bytes("PNG"))], "forwarded")
    data = b.outlook_msg([(f"{i}.png", b.image_bytes("PNG")) for i in range(3)], embedded=inner)
    assert sum(isinstance(i, ImageItem) for i in items_of(data, zip_max_entries=5)) == 4
    items = items_of(data, zip_max_entries=4)
    assert len(items) == 1 and "5 attachments, over the zip_max_entries cap of 4" in items[0].error


def dib() -> bytes:
    """A bitmap without its 14-byte file header, as Office stores one."""
    return b.image_bytes("BMP", size=(40, 30))[14:]


def test_powerpoint_pictures_stream():
    jpg, png = b.image_bytes("JPEG", size=(120, 80)), b.image_bytes("PNG", size=(300, 200))
    pictures = b.office_blip(jpg, "jpg") + b.office_blip(b"\x01\x00\x00\x00" + bytes(80), "emf") + \
        b.office_blip(png, "png") + b.office_blip(dib(), "dib")
    ppt = b.compound_file({"PowerPoint Document": b"\x00" * 100, "Current User": b"\x00" * 40, "Pictures": pictures})
    items = items_of(ppt, "talk.ppt")
    got = [(i.origin, getattr(i, "format", None), getattr(i, "image", None) and i.image.size) for i in items[:3]]
    assert got == [("talk.ppt:picture-1.jpg", "JPEG", (120, 80)), ("talk.ppt:picture-2.png", "PNG", (300, 200)),
                   ("talk.ppt:picture-3.bmp", "BMP", (40, 30))]
    note = items[3]
    assert note.skipped and note.error == "PowerPoint 97–2003 presentation: its text left out; 1 drawing (EMF/WMF/PICT) not drawn"
    assert len(items) == 4


def test_word_data_stream_and_excel_drawing_group():
    png = b.image_bytes("PNG", size=(300, 200))
    data = b"\x44\x00\x00\x00" + bytes(60) + b"\x0f\x00\x04\xf0" + bytes(40) + b.office_blip(png, "png") + bytes(30)
    doc = b.compound_file({"WordDocument": b"\x00" * 600, "1Table": b"\x00" * 100, "Data": data})
    item, note = items_of(doc, "letter.doc")
    assert item.origin == "letter.doc:picture-1.png" and item.image.size == (300, 200)
    assert note.error == "Word 97–2003 document: its text left out"
    blip = b.office_blip(png, "png")  # longer than one BIFF record: split by CONTINUE records
    workbook = b"\x09\x08\x10\x00" + bytes(16) + b.biff_records(bytes(24) + blip) + b"\x0a\x00\x00\x00"
    xls = b.compound_file({"Workbook": workbook})
    item = items_of(xls, "sheet.xls")[0]
    assert item.origin == "sheet.xls:picture-1.png" and item.image.size == (300, 200)


def test_office_files_without_pictures_and_other_compound_files():
    note, = items_of(b.compound_file({"WordDocument": b"\x00" * 600}), "letter.doc")
    assert note.skipped and note.error == "Word 97–2003 document without pictures"
    note, = items_of(b.compound_file({"Something": b"\x00" * 10}), "odd.doc")
    assert note.skipped and "neither an Outlook message nor an Office" in note.error


@pytest.mark.parametrize("kind", ["msg", "ppt"])
def test_damaged_files_give_clear_errors(kind):
    png = b.image_bytes("PNG", size=(300, 200))
    clean = (b.outlook_msg([("a.png", png), ("b.png", b.image_bytes("PNG"))]) if kind == "msg" else
             b.compound_file({"PowerPoint Document": bytes(100), "Pictures": b.office_blip(png, "png") * 2}))
    for _, data in b.damaged(clean, seed=4, n=80):
        b.assert_clear(items_of(data, f"x.{kind}"))


def test_other_compound_files_are_not_opened(tmp_path):
    """An installer or thumbnail cache is a compound file too: left alone, as before, without being read whole."""
    (tmp_path / "setup.msi").write_bytes(b.compound_file({"x": b"\x00" * 10}))
    note, = list(open_input(tmp_path))
    assert note.skipped and note.error == "skipped: not an image or a supported container"


def test_compound_files_with_too_many_directory_entries_are_refused(monkeypatch):
    """olefile makes an object of every directory entry before anything can be checked (1.5 million, 192 MB: 20 s,
    2.1 GB), so the directory's sector chain is followed first and the file refused past MAX_ENTRIES (lowered
    here); a file under it still opens."""
    from medimg.sources import compound

    monkeypatch.setattr(compound, "MAX_ENTRIES", 200)
    png = b.image_bytes("PNG")

    def msg(empty_attachments: int) -> bytes:
        tree = b._msg_tree([("scan.png", png)], "x")
        tree.update({f"__attach_version1.0_#{i + 1:08X}": {} for i in range(empty_attachments)})
        return b.compound_file(tree)

    refused = "compound (OLE) file has more than 200 directory entries (streams and storages); not opened"
    (err,) = items_of(msg(250))
    assert isinstance(err, ItemError) and err.error == refused
    (err,) = items_of(b.compound_file({"WordDocument": bytes(600), **{f"s{i}": {} for i in range(250)}}), "letter.doc")
    assert isinstance(err, ItemError) and err.error == refused
    image, note = items_of(msg(150))
    assert isinstance(image, ImageItem) and image.origin == "referral.msg:scan.png" and "text left out" in note.error


def test_a_blip_header_inside_a_picture_is_not_a_second_picture():
    """A PNG carrying bytes after its end that look like a whole JPEG BLIP record (a tool's copy of its
    source, say): the PNG record's inside is not searched again, so there is one picture, not two."""
    png, jpg = b.image_bytes("PNG", size=(300, 200)), b.image_bytes("JPEG", size=(120, 80))
    pictures = b.office_blip(png + b.office_blip(jpg, "jpg"), "png")
    ppt = b.compound_file({"PowerPoint Document": b"\x00" * 100, "Current User": b"\x00" * 40, "Pictures": pictures})
    items = items_of(ppt, "talk.ppt")
    got = [(i.origin, getattr(i, "format", None), getattr(i, "image", None) and i.image.size) for i in items[:-1]]
    assert got == [("talk.ppt:picture-1.png", "PNG", (300, 200))], got
    assert items[-1].skipped and items[-1].error == "PowerPoint 97–2003 presentation: its text left out"


pytest.importorskip("olefile")


def _items_with(data: bytes, name: str, **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def _blip_two_uids(picture: bytes) -> bytes:
    """A PNG BLIP record of instance 0x6E1 (MS-ODRAW): two 16-byte UIDs before the tag byte."""
    body = bytes(range(16)) + bytes(range(16, 32)) + b"\xff" + picture
    return (0x6E1 << 4).to_bytes(2, "little") + (0xF01E).to_bytes(2, "little") + len(body).to_bytes(4, "little") + body


def test_a_picture_whose_record_carries_two_uids_is_read():
    """A BLIP of the instance that stores two UIDs (the picture's and its original's) is found past both."""
    png = b.image_bytes("PNG", size=(300, 200))
    ppt = b.compound_file({"PowerPoint Document": b"\x00" * 100, "Current User": b"\x00" * 40,
                           "Pictures": _blip_two_uids(png)})
    item, note = _items_with(ppt, "talk.ppt")
    assert isinstance(item, ImageItem) and item.origin == "talk.ppt:picture-1.png" and item.image.size == (300, 200)
    assert note.error == "PowerPoint 97–2003 presentation: its text left out"


def test_office_pictures_draw_from_the_zip_max_bytes_budget():
    """The pictures of a .ppt add up against zip_max_bytes as a zip's members do: past it, the rest are not read."""
    jpg, png = b.image_bytes("JPEG", size=(120, 80)), b.image_bytes("PNG", size=(300, 200))
    ppt = b.compound_file({"PowerPoint Document": b"\x00" * 100, "Current User": b"\x00" * 40,
                           "Pictures": b.office_blip(jpg, "jpg") + b.office_blip(png, "png")})
    items = _items_with(ppt, "talk.ppt", zip_max_bytes=len(jpg) + len(png) - 1)
    assert isinstance(items[0], ImageItem) and items[0].origin == "talk.ppt:picture-1.jpg"
    assert isinstance(items[1], ItemError) and items[1].origin == "talk.ppt:picture-2.png"
    assert "add up past the zip_max_bytes cap" in items[1].error
    assert not any(isinstance(i, ImageItem) for i in items[2:])
