"""Review of session 39's change (helper s39_diffread): e-mail forwards sent quoted-printable-encoded, and a mailbox
message refused for a long header."""

from __future__ import annotations

import quopri
from email.message import EmailMessage

import builders as b
from medimg.sources import Blob, ImageItem, ItemError, open_input


def _forward() -> bytes:
    """A message as Python's mailer writes it: its boundary header is over 76 characters once encoded."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "gp@example.org", "radiology@example.org", "first"
    msg.set_content("see attached")
    msg.add_attachment(b.image_bytes("PNG", size=(69, 40)), maintype="image", subtype="png", filename="xray.png")
    return msg.as_bytes()


def test_a_forward_sent_quoted_printable_encoded_is_read():
    """The parser reads the encoded text as a message's headers; `as_bytes()` wrote them again folded, and a header
    line the encoder had cut with a soft line break (`=` at its end) was cut in two: the forward's boundary was
    lost and its picture with it ("part 1 is multipart/mixed but its boundary is missing")."""
    encoded = quopri.encodestring(_forward()).decode()
    assert "=\n=3D" in encoded  # the Content-Type line is cut by a soft line break
    data = ("From: Dr A <a@example.org>\r\nTo: b@example.org\r\nSubject: Fwd: first\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="out"\r\n\r\n--out\r\nContent-Type: text/plain\r\n\r\nsee below\r\n'
            '--out\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename="first.eml"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + encoded + "\r\n--out--\r\n")
    got = list(open_input(Blob("letter.eml", data.encode(), name="letter.eml")))
    assert [(i.origin, i.image.size) for i in got if isinstance(i, ImageItem)] == [
        ("letter.eml:first.eml:xray.png", (69, 40))]
    assert [i.error for i in got if isinstance(i, ItemError) and not i.skipped] == []


def test_a_mailbox_message_with_a_long_header_does_not_stop_the_messages_after_it():
    """A header over 8 KB refuses its message; it stopped the whole mailbox ("messages 3 to 3 not read"), where a
    message too slow to parse (as long headers are) no longer does."""
    def one(k: int) -> bytes:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "gp@example.org", "radiology@example.org", f"scan {k}"
        msg.set_content("see attached")
        msg.add_attachment(b.image_bytes("PNG", size=(40 + k, 30)), maintype="image", subtype="png",
                           filename=f"i{k}.png")
        return msg.as_bytes()

    long = (b"From: a@example.org\nTo: b@example.org\nSubject: long\nMIME-Version: 1.0\n"
            b"Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: image/png; name=" + b"a" * 9000
            + b"\n\nAAAA\n--B--\n")
    data = b"".join(b"From gp@example.org Thu Dec  3 10:00:00 2026\n" + m + b"\n" for m in (one(1), long, one(3)))
    got = list(open_input(Blob("in.mbox", data, name="in.mbox")))
    assert sorted(i.origin for i in got if isinstance(i, ImageItem)) == ["in.mbox:message-1:i1.png",
                                                                         "in.mbox:message-3:i3.png"]
    assert [(i.origin, i.error) for i in got if isinstance(i, ItemError) and not i.skipped] == [
        ("in.mbox:message-2", "Content-Type header is 9,016 characters, over 8,192; not opened")]
