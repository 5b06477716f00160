"""E-mail as hospital staff send it, built here with the standard library's email package: mailboxes, Apple Mail
.emlx, Outlook's winmail.dat, S/MIME, uuencoded files pasted into the text, and Outlook .msg forwards."""

from __future__ import annotations

import base64
import binascii
from email.message import EmailMessage
from email.mime.base import MIMEBase
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest

import builders as b
from medimg.sources import Blob, ImageItem, ItemError, Limits, input_tasks, open_input
from webserver import WebServer


def message(subject: str = "Referral") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "gp@example.org", "radiology@example.org", subject
    msg.set_content("Please see the scans attached.")
    return msg


def items_of(data: bytes, name: str = "letter.eml", **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def found(items: list) -> list[tuple[str, tuple[int, int]]]:
    return [(i.origin, i.image.size) for i in items if isinstance(i, ImageItem)]


def problems(items: list) -> list[tuple[str, str, bool]]:
    return [(i.origin, i.error, i.skipped) for i in items if isinstance(i, ItemError)]


def mailbox(count: int) -> bytes:
    """An mbox as mail clients keep one: each message after a `From ` line, a body line starting with `From`
    quoted as `>From`."""
    out = b""
    for k in range(count):
        msg = message(f"scan {k}")
        msg.set_content("From the ward: see attached.")
        msg.add_attachment(b.image_bytes("PNG", size=(40 + k, 30)), maintype="image", subtype="png",
                           filename=f"img{k}.png")
        out += b"From gp@example.org Thu Dec  3 10:00:00 2026\n" + msg.as_bytes().replace(b"\nFrom ", b"\n>From ")
        out += b"\n"
    return out


def test_each_message_of_a_mailbox_is_read(tmp_path):
    """An mbox (or one saved as .eml) gave the first message's images only: the others were lost silently."""
    got = items_of(mailbox(3), "inbox.mbox")
    assert found(got) == [("inbox.mbox:message-1:img0.png", (40, 30)), ("inbox.mbox:message-2:img1.png", (41, 30)),
                          ("inbox.mbox:message-3:img2.png", (42, 30))]
    assert [e for e in problems(got) if not e[2]] == []
    path = tmp_path / "inbox.eml"
    path.write_bytes(mailbox(3))
    origins = [t.origin for t in input_tasks([path])]
    assert f"{path}:message-3:img2.png" in origins and len(origins) == 6  # an image and a text note each
    one = [i for t in input_tasks([f"{path}:message-2:img1.png"]) for i in t()]
    assert found(one) == [(f"{path}:message-2:img1.png", (41, 30))]


def test_a_mailbox_stopped_by_a_cap_says_which_messages_were_not_read():
    got = problems(items_of(mailbox(5), "in.mbox", zip_max_bytes=1000))
    assert got[-1] == ("in.mbox", "mailbox: messages 2 to 5 not read (a cap above)", False)
    assert len(got) == 2 and "zip_max_bytes" in got[0][1]


def test_a_single_message_with_an_envelope_line_is_not_a_mailbox():
    """A `From ` line in the body not after a blank line and before headers does not split the message."""
    msg = message()
    msg.set_content("Dear colleague,\nFrom our side: see attached.\n\nFrom now on: x\nmore text\n")
    msg.add_attachment(b.image_bytes("PNG"), maintype="image", subtype="png", filename="x.png")
    data = b"From gp@example.org Thu Dec  3 10:00:00 2026\n" + msg.as_bytes()
    assert [o for o, _ in found(items_of(data))] == ["letter.eml:x.png"]


def test_an_apple_mail_emlx_is_read():
    """Apple Mail keeps each message as its length in bytes, the message, then a property list: it was
    'unrecognised content'."""
    msg = message()
    msg.add_attachment(b.image_bytes("PNG", size=(70, 50)), maintype="image", subtype="png", filename="e.png")
    raw = msg.as_bytes()
    plist = (b'<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict><key>flags</key>'
             b"<integer>8590195713</integer></dict></plist>\n")
    got = items_of(str(len(raw)).encode() + b"        \n" + raw + plist, "12345.emlx")
    assert found(got) == [("12345.emlx:e.png", (70, 50))]


def test_winmail_dat_is_an_error_that_says_what_it_is():
    """Outlook's rich-text attachment packs the files in it: a clear error, not 'not an image'."""
    tnef = b"\x78\x9f\x3e\x22" + bytes(60)
    msg = message()
    msg.add_attachment(tnef, maintype="application", subtype="ms-tnef", filename="winmail.dat")
    msg.add_attachment(tnef, maintype="application", subtype="octet-stream", filename="att00001.dat")
    got = problems(items_of(msg.as_bytes()))
    for origin, (where, error, skipped) in zip(("letter.eml:winmail.dat", "letter.eml:att00001.dat"), got):
        assert where == origin and not skipped and "TNEF, winmail.dat" in error and "not read" in error


def smime_signed() -> bytes:
    outer = MIMEMultipart("signed", protocol="application/pkcs7-signature", micalg="sha-256")
    inner = MIMEMultipart("mixed")
    inner.attach(MIMEText("see attached"))
    img = MIMEImage(b.image_bytes("PNG", size=(90, 60)), "png")
    img.add_header("Content-Disposition", "attachment", filename="x.png")
    inner.attach(img)
    outer.attach(inner)
    sig = MIMEBase("application", "pkcs7-signature", name="smime.p7s")
    sig.set_payload(base64.b64encode(b"0\x82\x01\x00" + bytes(60)).decode())
    sig["Content-Transfer-Encoding"] = "base64"
    sig.add_header("Content-Disposition", "attachment", filename="smime.p7s")
    outer.attach(sig)
    outer["From"], outer["To"], outer["Subject"] = "gp@example.org", "radiology@example.org", "signed"
    return outer.as_bytes()


def smime_opaque(kind: str) -> bytes:
    part = MIMEBase("application", "pkcs7-mime", name="smime.p7m", **{"smime-type": kind})
    part.set_payload(base64.b64encode(b"0\x80\x06\x09*\x86H\x86\xf7\r\x01\x07\x03" + bytes(300)).decode())
    part["Content-Transfer-Encoding"] = "base64"
    part.add_header("Content-Disposition", "attachment", filename="smime.p7m")
    part["From"], part["To"], part["Subject"] = "gp@example.org", "radiology@example.org", "secure"
    return part.as_bytes()


def test_smime_signed_encrypted_and_opaque_signed():
    got = items_of(smime_signed())
    assert found(got) == [("letter.eml:x.png", (90, 60))]
    assert problems(got)[0] == ("letter.eml:smime.p7s", "S/MIME signature: not an image", True)
    (where, error, skipped), = problems(items_of(smime_opaque("enveloped-data")))
    assert where == "letter.eml:smime.p7m" and not skipped and error.startswith("S/MIME encrypted message")
    (where, error, skipped), = problems(items_of(smime_opaque("signed-data")))
    assert not skipped and error.startswith("S/MIME opaque-signed message")


def test_a_file_uuencoded_in_the_text_is_read():
    """Old mailers and scripts paste files into the text as `begin 644 name` … `end`: it was left out with
    the text."""
    png = b.image_bytes("PNG", size=(100, 80))
    uu = b"begin 644 scan.png\n" + b"".join(binascii.b2a_uu(png[i:i + 45]) for i in range(0, len(png), 45))
    data = (b"From: a@example.org\nTo: b@example.org\nSubject: scan\nMIME-Version: 1.0\nContent-Type: text/plain\n\n"
            b"Here is the scan\n\n" + uu + b"`\nend\n\nbegin 644 cut.png\nM\n")  # a second one never ended
    got = items_of(data)
    assert found(got) == [("letter.eml:scan.png", (100, 80))]
    assert problems(got) == [("letter.eml", "e-mail: 1 text part (the message itself) left out; remote images in "
                                            "it are not fetched", True)]


def test_an_outlook_forward_holding_a_file_of_the_same_name_gets_its_own_name():
    """Both were `referral.msg:a.png`: one row's input named two images, and --resume lost the second."""
    pytest.importorskip("olefile")
    inner = b._msg_tree([("a.png", b.image_bytes("PNG", size=(20, 10)))], "forwarded")
    data = b.outlook_msg([("a.png", b.image_bytes("PNG", size=(30, 10)))], embedded=inner)
    assert found(items_of(data, "referral.msg")) == [("referral.msg:a.png", (30, 10)),
                                                     ("referral.msg:a (2).png", (20, 10))]


def test_inline_pictures_are_found_once_and_remote_ones_are_never_fetched():
    """Already so before this review (kept as a guard): a `cid:` picture is one input, and an <img> pointing at
    a server is not fetched even where private addresses are allowed."""
    with WebServer() as srv:
        srv.add("/pixel.png", b.image_bytes("PNG"), "image/png")
        msg = message()
        msg.add_alternative(f'<p>Scan</p><img src="cid:scan1"><img src="{srv.url("/pixel.png")}">', subtype="html")
        msg.get_payload()[1].add_related(b.image_bytes("JPEG", size=(120, 90)), "image", "jpeg", cid="<scan1>",
                                         filename="image001.jpg", disposition="inline")
        got = items_of(msg.as_bytes(), allow_private=True)
        assert found(got) == [("letter.eml:image001.jpg", (120, 90))]
        assert srv.hits["/pixel.png"] == 0
        assert "remote images in it are not fetched" in problems(got)[-1][1]
