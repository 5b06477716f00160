"""E-mail and Outlook messages as users hand them over (review s47): a transfer encoding written with a space after
it, where each picture was in the message (the cid: it is shown by, the forward it came in), a nameless attached
Outlook message, and the data: pictures of an Outlook message's HTML body."""

from __future__ import annotations

import base64
from email.message import EmailMessage

import pytest

import builders as b
from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input

HEAD = ("From: a@example.org\r\nTo: b@example.org\r\nSubject: scans\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n")


def items_of(data: bytes, name: str = "letter.eml", **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def found(items: list) -> list[tuple[str, str, tuple[int, int]]]:
    return [(i.origin, i.locator, i.image.size) for i in items if isinstance(i, ImageItem)]


def message(subject: str = "scans") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "gp@example.org", "radiology@example.org", subject
    msg.set_content("see attached")
    return msg


@pytest.mark.parametrize("cte", ["base64 ", " base64\t", "BASE64  "])
def test_a_transfer_encoding_with_spaces_around_it_is_decoded(cte):
    """`Content-Transfer-Encoding: base64 ` (a space after it, as some scripts write it) left the picture
    base64 text: an error, `not readable as one`."""
    png = base64.encodebytes(b.image_bytes("PNG", size=(90, 70))).decode().replace("\n", "\r\n")
    raw = (HEAD + 'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\nContent-Type: image/png; name=scan.png\r\n'
           f"Content-Transfer-Encoding:{cte}\r\n\r\n{png}\r\n--B--\r\n").encode()
    assert found(items_of(raw)) == [("letter.eml:scan.png", "", (90, 70))]


def test_an_inline_picture_says_the_cid_it_is_shown_by_and_a_nameless_one_gets_its_type_s_suffix():
    msg = message()
    msg.add_alternative('<p>Scan</p><img src="cid:Scan1@x"><img src="cid:scan1@x">', subtype="html")
    msg.get_payload()[1].add_related(b.image_bytes("PNG", size=(200, 150)), "image", "png", cid="<Scan1@x>")
    assert found(items_of(msg.as_bytes())) == [("letter.eml:part-3.png", "HTML body, cid:Scan1@x", (200, 150))]


def test_the_files_of_forwarded_messages_say_which_forward_they_came_in():
    inner = message("third")
    inner.add_attachment(b.image_bytes("PNG", size=(70, 70)), "image", "png", filename="deep.png")
    for k in (2, 1):
        outer = message(f"forward {k}")
        outer.add_attachment(b.image_bytes("PNG", size=(80 + k, 80)), "image", "png", filename=f"f{k}.png")
        outer.add_attachment(inner)
        inner = outer
    top = message()
    top.add_attachment(b.image_bytes("PNG", size=(90, 90)), "image", "png", filename="own.png")
    top.add_attachment(inner)
    assert found(items_of(top.as_bytes())) == [
        ("letter.eml:own.png", "", (90, 90)), ("letter.eml:f1.png", "forwarded message 1", (81, 80)),
        ("letter.eml:f2.png", "forwarded message 2", (82, 80)),
        ("letter.eml:deep.png", "forwarded message 3", (70, 70))]


def test_an_outlook_message_attached_without_a_name_is_opened():
    """An Outlook message is opened only when named .msg: one sent without a name was `part-2`, not read."""
    msg = message()
    msg.add_attachment(b.outlook_msg([("knee.png", b.image_bytes("PNG", size=(90, 60)))]), "application",
                       "vnd.ms-outlook")
    assert found(items_of(msg.as_bytes())) == [("letter.eml:part-2.msg:knee.png", "", (90, 60))]


def _att(i: int, name: str, data: bytes, cid: str = "") -> tuple[str, dict]:
    storage = {"__properties_version1.0": bytes(8), "__substg1.0_3707001F": name.encode("utf-16-le"),
               "__substg1.0_37010102": data}
    if cid:
        storage["__substg1.0_3712001F"] = cid.encode("utf-16-le")
    return f"__attach_version1.0_#{i:08X}", storage


def test_an_outlook_message_s_body_pictures_and_attached_messages_are_placed():
    """The data: pictures of a .msg's HTML body were never read (an .eml's are); an attached message's files and a
    picture shown by cid: now say where they were."""
    pasted = b.image_bytes("PNG", size=(120, 100))
    uri = "data:image/png;base64," + base64.b64encode(pasted).decode()
    inner = b._msg_tree([("inner.png", b.image_bytes("PNG", size=(75, 70)))], "forwarded")
    inner["__substg1.0_10130102"] = f'<img src="{uri}">'.encode()  # the same picture again: given once
    tree = b._msg_tree([], "referral")
    tree["__substg1.0_10130102"] = f'<p>Scan</p><img src="cid:logo@x"><img src="{uri}"><img src="{uri}">'.encode()
    for i, (name, data, cid) in enumerate([("image001.png", b.image_bytes("PNG", size=(130, 90)), "logo@x"),
                                           ("ct.png", b.image_bytes("PNG", size=(95, 95)), "")]):
        key, storage = _att(i, name, data, cid)
        tree[key] = storage
    tree["__attach_version1.0_#00000002"] = {"__properties_version1.0": bytes(8), "__substg1.0_3701000D": inner,
                                             "__substg1.0_3707001F": "fwd.msg".encode("utf-16-le")}
    items = items_of(b.compound_file(tree), "referral.msg")
    assert found(items) == [("referral.msg:body-image-1.png", "HTML body, img #1", (120, 100)),
                            ("referral.msg:image001.png", "HTML body, cid:logo@x", (130, 90)),
                            ("referral.msg:ct.png", "", (95, 95)),
                            ("referral.msg:inner.png", "attached message 1", (75, 70))]
    assert not [i for i in items if isinstance(i, ItemError) and not i.skipped]
    small = items_of(b.compound_file(tree), "referral.msg", min_side=95)  # shown in the text: decoration
    assert [(i.origin, i.locator) for i in small if isinstance(i, ItemError) and "decoration" in i.error] == [
        ("referral.msg:image001.png", "HTML body, cid:logo@x")]


def test_an_outlook_body_picture_that_cannot_be_decoded_is_an_error_and_the_rest_are_read():
    tree = b._msg_tree([("ct.png", b.image_bytes("PNG", size=(95, 95)))], "referral")
    tree["__substg1.0_10130102"] = b'<img src="data:image/png;base64,A">'
    items = items_of(b.compound_file(tree), "referral.msg")
    assert found(items) == [("referral.msg:ct.png", "", (95, 95))]
    (error,) = [i for i in items if isinstance(i, ItemError) and not i.skipped]
    assert (error.origin, error.locator) == ("referral.msg", "HTML body, img #1")
    assert error.error.startswith("bad data: URI")


def test_an_outlook_body_picture_draws_from_the_message_s_byte_budget():
    tree = b._msg_tree([], "referral")
    uri = "data:image/png;base64," + base64.b64encode(b.image_bytes("PNG", size=(300, 200))).decode()
    tree["__substg1.0_10130102"] = f'<img src="{uri}">'.encode()
    items = items_of(b.compound_file(tree), "referral.msg", zip_max_bytes=1000)
    assert not found(items) and any("zip_max_bytes" in i.error for i in items if isinstance(i, ItemError))



@pytest.mark.parametrize("disposition, name", [
    ("filename*=x-unknown''%E9t%E9.png", "été.png"),  # a charset Python does not know
    ("\r\n filename*0*=utf-8''M%FCller%20;\r\n filename*1*=Thorax.png", "Müller Thorax.png"),  # Latin-1 sent as UTF-8
    ("filename*=utf-8''R%C3%B6ntgen.png", "Röntgen.png"),  # as it should be: as before
])
def test_an_rfc2231_file_name_in_another_charset_than_it_says_keeps_its_letters(disposition, name):
    """Such a name came out with U+FFFD for each letter past ASCII (`M�ller Thorax.png`)."""
    png = base64.encodebytes(b.image_bytes("PNG", size=(90, 70))).decode().replace("\n", "\r\n")
    raw = (HEAD + 'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\nContent-Type: image/png\r\n'
           f"Content-Disposition: attachment; {disposition}\r\nContent-Transfer-Encoding: base64\r\n\r\n{png}\r\n"
           "--B--\r\n").encode()
    assert found(items_of(raw)) == [(f"letter.eml:{name}", "", (90, 70))]
