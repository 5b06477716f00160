"""Outlook's winmail.dat (TNEF) unpacked, pages attached to mail fetching nothing, and the small pictures a message's
text shows (logos, icons, spacers) told as decoration.

The TNEF files are written here record by record, as MS-OXTNEF lays them out (all little-endian):
    signature 0x223E9F78 (4 bytes), legacy key (2 bytes), then records:
    level (1 byte: 1 message, 2 attachment), attribute id (4 bytes: type << 16 | id), length (4 bytes),
    data (length bytes), checksum (2 bytes: the sum of the data's bytes, mod 65536).
An attachment is attAttachRendData (0x00069002, 14 bytes: type 2, position 4, width 2, height 2, flags 4), then
attAttachTitle (0x00018010, the 8.3 name, NUL-ended), attAttachData (0x0006800F, the bytes) and attAttachment
(0x00069005): a MAPI property list, a count (4 bytes) then each property's type (2), id (2) and value (fixed
types padded to 4 bytes; strings and binaries: a value count (4, = 1), a length (4), the bytes, zero padding to 4).
"""

from __future__ import annotations

import base64
import io
import struct
from email.message import EmailMessage

import pytest
from PIL import Image

import builders as b
from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input
from webserver import WebServer

SIG = b"\x78\x9f\x3e\x22"
PT_LONG, PT_STRING8, PT_UNICODE, PT_BINARY, PT_OBJECT = 0x0003, 0x001E, 0x001F, 0x0102, 0x000D
IID_IMESSAGE = bytes.fromhex("0703020000000000c000000000000046")


def record(level: int, attribute: int, data: bytes, length: int | None = None, checksum: int | None = None) -> bytes:
    return (struct.pack("<BII", level, attribute, len(data) if length is None else length) + data
            + struct.pack("<H", sum(data) & 0xFFFF if checksum is None else checksum))


def properties(*props: tuple[int, int, bytes]) -> bytes:
    out = struct.pack("<I", len(props))
    for ptype, pid, value in props:
        out += struct.pack("<HH", ptype, pid)
        if ptype in (PT_STRING8, PT_UNICODE, PT_BINARY, PT_OBJECT):
            out += struct.pack("<II", 1, len(value)) + value + bytes(-len(value) % 4)
        else:
            out += value + bytes(-len(value) % 4)
    return out


def attachment(name: str, data: bytes | None, short: str = "", in_props: bool = False,
               unicode: bool = True) -> list[bytes]:
    """One attachment's records: its data in attAttachData (or PR_ATTACH_DATA_BIN when `in_props`), its long
    name as PR_ATTACH_LONG_FILENAME (UTF-16, or in the code page when not `unicode`)."""
    long = (name.encode("utf-16-le") + b"\0\0") if unicode else name.encode("cp1252") + b"\0"
    props = [(PT_LONG, 0x3705, struct.pack("<I", 1))]  # PR_ATTACH_METHOD: by value
    if name:
        props.append((PT_UNICODE if unicode else PT_STRING8, 0x3707, long))
    if in_props and data is not None:
        props.append((PT_BINARY, 0x3701, data))
    out = [record(2, 0x00069002, struct.pack("<HIHHI", 1, 0xFFFFFFFF, 0, 0, 0)),
           record(2, 0x00018010, (short or name[:8]).encode("cp1252") + b"\0")]
    if data is not None and not in_props:
        out.append(record(2, 0x0006800F, data))
    out.append(record(2, 0x00069005, properties(*props)))
    return out


def tnef(*attachments: list[bytes]) -> bytes:
    head = (SIG + struct.pack("<H", 0x1234) + record(1, 0x00089006, struct.pack("<I", 0x10000))  # attTnefVersion
            + record(1, 0x00069007, struct.pack("<II", 1252, 0))  # attOemCodepage
            + record(1, 0x00078008, b"IPM.Microsoft Mail.Note\0"))  # attMessageClass
    return head + b"".join(r for a in attachments for r in a)


def black_bmp() -> bytes:
    """A picture whose file ends in zero bytes (tnefparse strips them: the file would come out damaged)."""
    out = io.BytesIO()
    Image.new("RGB", (80, 60)).save(out, "BMP")
    assert out.getvalue().endswith(b"\0" * 16)
    return out.getvalue()


def message(*parts: tuple[bytes, str, str, str]) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "gp@example.org", "radiology@example.org", "Referral"
    msg.set_content("Please see the scans attached.")
    for data, maintype, subtype, filename in parts:
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def items_of(data: bytes, name: str = "letter.eml", **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def found(items: list) -> list[tuple[str, tuple[int, int]]]:
    return [(i.origin, i.image.size) for i in items if isinstance(i, ImageItem)]


def errors(items: list) -> list[tuple[str, str]]:
    return [(i.origin, i.error) for i in items if isinstance(i, ItemError) and not i.skipped]


def notes(items: list) -> list[tuple[str, str, str]]:
    return [(i.origin, i.locator, i.error) for i in items if isinstance(i, ItemError) and i.skipped]


def test_files_packed_in_an_outlook_winmail_dat_are_read():
    """Outlook's rich-text mail packs its attachments in winmail.dat: they were one error, 'not read'."""
    jpeg, bmp = b.image_bytes("JPEG", size=(120, 90)), black_bmp()
    winmail = tnef(attachment("scan.jpg", jpeg, short="SCAN.JPG"),
                   attachment("Röntgen black.bmp", bmp, short="RNTGEN~1.BMP", unicode=False),
                   attachment("", b.image_bytes("PNG", size=(70, 50)), short="KNEE.PNG"),  # 8.3 name only
                   attachment("report.png", b.image_bytes("PNG", size=(90, 66)), in_props=True))
    got = items_of(message((winmail, "application", "ms-tnef", "winmail.dat")))
    assert found(got) == [("letter.eml:winmail.dat:scan.jpg", (120, 90)),
                          ("letter.eml:winmail.dat:Röntgen black.bmp", (80, 60)),
                          ("letter.eml:winmail.dat:KNEE.PNG", (70, 50)),
                          ("letter.eml:winmail.dat:report.png", (90, 66))]
    assert errors(got) == []
    # saved from a web mailer that shows it as a file, given on its own (sent as octet-stream too)
    assert found(items_of(winmail, "winmail.dat"))[1] == ("winmail.dat:Röntgen black.bmp", (80, 60))
    got = items_of(message((winmail, "application", "octet-stream", "att00001.dat")))
    assert [o for o, _ in found(got)][0] == "letter.eml:att00001.dat:scan.jpg"


def test_a_message_attached_in_winmail_dat_is_opened_in_turn():
    inner = tnef(attachment("xray.png", b.image_bytes("PNG", size=(66, 77))))
    forward = [record(2, 0x00069002, struct.pack("<HIHHI", 1, 0xFFFFFFFF, 0, 0, 0)),
               record(2, 0x00069005, properties((PT_UNICODE, 0x3001, "first scan\0".encode("utf-16-le")),
                                                (PT_OBJECT, 0x3701, IID_IMESSAGE + inner)))]
    got = items_of(tnef(forward), "winmail.dat")
    assert found(got) == [("winmail.dat:first scan:xray.png", (66, 77))]
    deep = tnef(forward)
    for _ in range(4):
        deep = tnef([forward[0], record(2, 0x00069005, properties((PT_OBJECT, 0x3701, IID_IMESSAGE + deep)))])
    got = items_of(deep, "winmail.dat", max_depth=3)
    assert found(got) == [] and any("max_depth" in e for _, e in errors(got))


def test_a_damaged_winmail_dat_gives_what_it_can_and_says_what_is_wrong():
    good = attachment("a.png", b.image_bytes("PNG", size=(70, 50)))
    second = attachment("b.png", b.image_bytes("PNG", size=(80, 60)))
    whole = tnef(good, second)
    cut = whole[:len(whole) - 200]  # cut off in b.png's record
    got = items_of(message((cut, "application", "ms-tnef", "winmail.dat")))
    assert found(got) == [("letter.eml:winmail.dat:a.png", (70, 50))]
    (where, error), = errors(got)
    assert where == "letter.eml:winmail.dat" and "TNEF, winmail.dat) damaged: the record at byte" in error
    assert "are left (cut off, or a wrong length); the rest is not read" in error

    lying = [second[0], second[1], record(2, 0x0006800F, b.image_bytes("PNG", size=(80, 60)), length=10)]
    got = items_of(tnef(good, lying), "winmail.dat")  # a length shorter than the data: the next record is garbage
    assert [o for o, _ in found(got)] == ["winmail.dat:a.png"]
    assert errors(got)[-1][0] == "winmail.dat" and "not 1 or 2" in errors(got)[-1][1]
    huge = [second[0], record(2, 0x0006800F, b"x" * 40, length=2**31)]
    assert "says 2,147,483,648 bytes" in errors(items_of(tnef(good, huge), "winmail.dat"))[-1][1]

    png = b.image_bytes("PNG", size=(80, 60))
    bad_sum = [second[0], second[1], record(2, 0x0006800F, png, checksum=(sum(png) + 1) & 0xFFFF), second[-1]]
    got = items_of(tnef(bad_sum, good), "winmail.dat")
    assert found(got) == [("winmail.dat:a.png", (70, 50))]  # the next one is still read
    assert errors(got) == [("winmail.dat:b.png", "damaged attachment in Outlook rich-text attachment (TNEF, "
                                                 "winmail.dat): its data fails TNEF's checksum; not read")]

    lie = struct.pack("<I", 1) + struct.pack("<HHII", PT_BINARY, 0x3701, 1, 10**9) + b"abc"
    got = items_of(tnef([second[0], record(2, 0x00069005, lie)]), "winmail.dat")
    (where, error), = errors(got)
    assert where == "winmail.dat:attachment-1"
    assert "its property list is damaged (a property says 1,000,000,000" in error

    for junk in (SIG + bytes(60), SIG + b"\x12\x34\x01\x06\x90", SIG + b"\x12\x34" + b"\x02" * 4000):
        got = items_of(message((junk, "application", "ms-tnef", "winmail.dat")))
        assert [w for w, _ in errors(got)] == ["letter.eml:winmail.dat"], got
        assert "TNEF, winmail.dat) damaged" in errors(got)[0][1]
    got = items_of(message((b"not tnef at all", "application", "ms-tnef", "winmail.dat")))
    assert errors(got) == [("letter.eml:winmail.dat", "Outlook rich-text attachment (TNEF, winmail.dat) without "
                                                      "TNEF's signature: damaged; not read")]


def test_winmail_dat_keeps_the_caps():
    png = b.image_bytes("PNG", size=(70, 50))
    many = tnef(*[attachment(f"i{k}.png", png) for k in range(6)])
    got = items_of(many, "winmail.dat", zip_max_entries=4)
    assert len(found(got)) == 4 and "more than 4 attachments, the zip_max_entries cap" in errors(got)[-1][1]
    got = items_of(many, "winmail.dat", max_input_bytes=len(png) + 10, zip_max_bytes=3 * len(png) + 20)
    assert len(found(got)) == 3 and "zip_max_bytes" in errors(got)[-1][1]
    big = tnef(attachment("big.png", b.image_bytes("PNG", size=(300, 300))), attachment("a.png", png))
    got = items_of(big, "winmail.dat", max_input_bytes=len(png) + 100)
    assert found(got) == [("winmail.dat:a.png", (70, 50))] and "max_input_bytes" in errors(got)[0][1]


def test_a_page_attached_to_a_message_fetches_no_remote_image():
    """An .html attached to a message was read as a saved page: its remote images were fetched, so a tracker in
    it learnt the message was read (the message's own HTML body never fetches)."""
    pasted = base64.b64encode(b.image_bytes("PNG", size=(120, 90))).decode()
    with WebServer() as srv:
        srv.add("/pixel.png", b.image_bytes("PNG", size=(100, 100)), "image/png")
        page = (f'<html><body><img src="{srv.url("/pixel.png")}"><img src="data:image/png;base64,{pasted}">'
                '</body></html>').encode()
        got = items_of(message((page, "text", "html", "report.html")), allow_private=True)
        assert srv.hits["/pixel.png"] == 0
        assert found(got) == [("letter.eml:report.html", (120, 90))]  # its data: picture is still read
        assert ("letter.eml:report.html", "", "1 remote image not fetched: it came in an e-mail, and a page in a "
                "message fetches nothing (remote images there are often trackers); give the page as a file of "
                "its own to read them") in notes(got)
        winmail = tnef(attachment("page.html", page))  # in a winmail.dat, or in an Outlook .msg
        assert found(items_of(winmail, "winmail.dat", allow_private=True)) == [("winmail.dat:page.html", (120, 90))]
        msg = b.outlook_msg([("page.html", page)])
        assert found(items_of(msg, "referral.msg", allow_private=True)) == [("referral.msg:page.html", (120, 90))]
        assert srv.hits["/pixel.png"] == 0
        alone = items_of(page, "report.html", allow_private=True)  # given as a file: a saved page, fetched
        assert srv.hits["/pixel.png"] == 1 and len(found(alone)) == 2


def gif(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("P", size).save(out, "GIF")
    return out.getvalue()


def test_small_pictures_a_message_s_text_shows_are_decoration():
    """A signature's 16 px icons and a 1x1 spacer shown by the HTML body were classified as images; on a web page
    or in a PDF they are decoration. A small file attached is still read."""
    icon, spacer = b.image_bytes("PNG", size=(16, 16)), gif((1, 1))
    dot = base64.b64encode(gif((1, 1))[:-1] + b";").decode()  # another 1x1 GIF, as a data: URI
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "gp@example.org", "radiology@example.org", "Referral"
    msg.set_content("see below")
    msg.add_alternative('<p>Scan:</p><img src="cid:scan@x"><img src="cid:icon@x"><img src="cid:Spacer%40x">'
                        f'<img src="data:image/gif;base64,{dot}">', subtype="html")
    html = msg.get_payload()[1]
    html.add_related(b.image_bytes("JPEG", size=(120, 90)), "image", "jpeg", cid="<scan@x>", filename="scan.jpg",
                     disposition="inline")
    html.add_related(icon, "image", "png", cid="<icon@x>", filename="linkedin.png",
                     disposition="inline")
    html.add_related(spacer, "image", "gif", cid="<spacer@x>")
    msg.add_attachment(icon, maintype="image", subtype="png", filename="thumb.png")  # a file sent: read
    got = items_of(msg.as_bytes())
    assert found(got) == [("letter.eml:scan.jpg", (120, 90)), ("letter.eml:thumb.png", (16, 16))]
    assert [n for n in notes(got) if "decoration" in n[2]] == [
        ("letter.eml:body-image-1.gif", "HTML body, img #1", "decoration: 1x1 is below min_side 64 (a picture in "
                                                              "the message's text)"),
        ("letter.eml:linkedin.png", "HTML body, cid:icon@x", "decoration: 16x16 is below min_side 64 (a picture in "
                                                             "the message's text)"),
        ("letter.eml:part-5.gif", "HTML body, cid:spacer@x", "decoration: 1x1 is below min_side 64 (a picture in the "
                                                             "message's text)")]
    assert len(found(items_of(msg.as_bytes(), min_side=1))) == 5


@pytest.mark.parametrize("extra", [0, 1, 2, 3])
def test_bmp_ending_in_zeros_survives(extra):
    """The attachment's bytes are given as sent, trailing zero bytes and odd lengths too (values padded to 4)."""
    data = black_bmp() + bytes(extra)
    got = items_of(tnef(attachment("a.bmp", data, in_props=True)), "winmail.dat")
    assert found(got) == [("winmail.dat:a.bmp", (80, 60))]


def test_a_file_in_a_winmail_dat_is_named_as_its_rows_name_it(tmp_path):
    """`letter.eml:winmail.dat:b.png` (as the rows say it) reads that file alone, as in a zip in a message."""
    winmail = tnef(attachment("a.png", b.image_bytes("PNG", size=(70, 50))),
                   attachment("b.png", b.image_bytes("PNG", size=(80, 60))))
    (tmp_path / "letter.eml").write_bytes(message((winmail, "application", "ms-tnef", "winmail.dat")))
    got = list(open_input(f"{tmp_path}/letter.eml:winmail.dat:b.png"))
    assert found(got) == [(f"{tmp_path}/letter.eml:winmail.dat:b.png", (80, 60))] and errors(got) == []


def test_a_winmail_dat_cut_after_a_file_s_data_still_gives_that_file():
    """Outlook writes a file's name (its property list) after its data: a cut there loses only the long name."""
    png = b.image_bytes("PNG", size=(80, 60))
    whole = tnef(attachment("a.png", b.image_bytes("PNG", size=(70, 50))), attachment("knee scan.png", png,
                                                                                     short="KNEESC~1.PNG"))
    got = items_of(whole[:-20], "winmail.dat")
    assert found(got) == [("winmail.dat:a.png", (70, 50)), ("winmail.dat:KNEESC~1.PNG", (80, 60))]
    assert [w for w, _ in errors(got)] == ["winmail.dat"]
