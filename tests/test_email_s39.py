"""E-mail as mail clients write it, built here as raw MIME text: pictures written into an HTML body as data: URIs,
forwards sent base64-encoded, damaged boundaries, very long headers, deep nesting, big messages, raw 8-bit names."""

from __future__ import annotations

import base64
import os
import time
import tracemalloc
from email.message import EmailMessage

import builders as b
from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input
from medimg.sources.email_file import _parse, _Reading, accepts

HEAD = ("From: Dr A <a@example.org>\r\nTo: b@example.org\r\nSubject: {}\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n")


def b64(data: bytes) -> str:
    return base64.encodebytes(data).decode().replace("\n", "\r\n")


def items_of(data: bytes | str, name: str = "letter.eml", **limits) -> list:
    if isinstance(data, str):
        data = data.encode("latin-1")
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def found(items: list) -> list[tuple[str, str, tuple[int, int]]]:
    return [(i.origin, i.locator, i.image.size) for i in items if isinstance(i, ImageItem)]


def errors(items: list) -> list[tuple[str, str, str]]:
    return [(i.origin, i.locator, i.error) for i in items if isinstance(i, ItemError) and not i.skipped]


def data_uri(data: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def thunderbird(html: str, watch_html: str | None = None) -> str:
    """Thunderbird's shape (Apple Mail adds a text/watch-html alternative): plain text, then the HTML with the
    picture it shows by cid: beside it."""
    watch = "--alt\r\nContent-Type: text/watch-html; charset=UTF-8\r\n\r\n" + watch_html + "\r\n" if watch_html else ""
    return HEAD.format("scan") + f"""Content-Type: multipart/alternative; boundary="alt"\r
\r
--alt\r
Content-Type: text/plain; charset=UTF-8; format=flowed\r
\r
See the scan\r
{watch}--alt\r
Content-Type: multipart/related; boundary="rel"\r
\r
--rel\r
Content-Type: text/html; charset=UTF-8\r
\r
{html}\r
--rel\r
Content-Type: image/png; name="scan.png"\r
Content-Disposition: inline; filename="scan.png"\r
Content-Id: <part1.AbCdEf@example.org>\r
Content-Transfer-Encoding: base64\r
\r
{b64(b.image_bytes("PNG", size=(120, 90)))}\r
--rel--\r
\r
--alt--\r
"""


def test_pictures_written_into_an_html_body_as_data_uris_are_read():
    """A picture pasted into the HTML as a data: URI (scripts' reports, web mailers, Apple Mail's watch
    alternative) was left out with the text: the person reading the mail sees it, the run said nothing of it."""
    pasted = data_uri(b.image_bytes("PNG", size=(66, 64)))
    html = (f'<html><body><p>See</p><img src="cid:part1.AbCdEf@example.org"><img src="{pasted}">'
            '<img src="https://tracker.example/pixel.gif"></body></html>')
    got = items_of(thunderbird(html, watch_html=f'<img src="{pasted}">'))  # the same picture in two alternatives
    assert found(got) == [("letter.eml:body-image-1.png", "HTML body, img #1", (66, 64)),
                          ("letter.eml:scan.png", "HTML body, cid:part1.AbCdEf@example.org", (120, 90))]  # once
    assert errors(got) == []
    assert "remote images in it are not fetched" in got[-1].error

    report = b64(f'<h1>Report</h1><img src="{data_uri(b.image_bytes("JPEG", size=(125, 95)), "image/jpeg")}">'
                 '<img src="data:image/png;base64,A">'.encode())
    got = items_of(HEAD.format("report") + "Content-Type: text/html; charset=utf-8\r\n"
                   "Content-Transfer-Encoding: base64\r\n\r\n" + report)
    assert found(got) == [("letter.eml:body-image-1.jpg", "HTML body, img #1", (125, 95))]
    (where, locator, error), = errors(got)
    assert where == "letter.eml" and locator == "HTML body, img #2" and error.startswith("bad data: URI")


def test_an_attached_message_sent_base64_encoded_is_read():
    """Some mailers send a forward as message/rfc822 with base64 transfer encoding: the parser read the base64 as
    the text of a message without headers, and the picture in the forward was lost without a word."""
    forward = (HEAD.format("first") + 'Content-Type: multipart/mixed; boundary="in"\r\n\r\n--in\r\n'
               'Content-Type: image/png; name="xray.png"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
               + b64(b.image_bytes("PNG", size=(69, 40))) + "\r\n--in--\r\n")
    data = (HEAD.format("Fwd: first") + 'Content-Type: multipart/mixed; boundary="out"\r\n\r\n'
            "--out\r\nContent-Type: text/plain\r\n\r\nsee the forward\r\n"
            '--out\r\nContent-Type: message/rfc822; name="first.eml"\r\nContent-Disposition: attachment; '
            'filename="first.eml"\r\nContent-Transfer-Encoding: base64\r\n\r\n' + b64(forward.encode())
            + "\r\n--out--\r\n")
    got = items_of(data)
    assert found(got) == [("letter.eml:first.eml:xray.png", "", (69, 40))]


def test_a_multipart_whose_boundary_never_appears_is_an_error():
    """A damaged message (its boundary changed on the way, or never given) was one skipped note, 'not an image',
    hidden from the results: the files in it were lost silently."""
    body = ('--XX\r\nContent-Type: image/png; name="a.png"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            + b64(b.image_bytes("PNG")) + "\r\n--XX--\r\n")
    for ctype in ('multipart/mixed; boundary="YY"', "multipart/mixed"):
        got = items_of(HEAD.format("broken") + f"Content-Type: {ctype}\r\n\r\n" + body)
        assert errors(got) == [("letter.eml", "", "part 1 is multipart/mixed but its boundary is missing or never "
                                                  "appears (a damaged message): the files in it are not read")]


def test_a_message_whose_headers_run_past_what_is_sniffed_is_read():
    """MIME-Version after 64 KB of relay lines (or a To list of thousands): 'unrecognised content'."""
    relays = "".join(f"Received: from relay{k}.example.org by mx.example.org; Thu, 3 Dec 2026\r\n" for k in range(2000))
    data = ("From: a@example.org\r\nTo: b@example.org\r\nSubject: scan\r\n" + relays + "MIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\nContent-Type: image/png; name="a.png"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n" + b64(b.image_bytes("PNG")) + "\r\n--B--\r\n")
    assert len(data) > 128 * 1024
    assert found(items_of(data)) == [("letter.eml:a.png", "", (64, 48))]
    lines = ("".join(f"Key{k}: value\r\n" for k in range(5000))).encode()  # header-shaped, but no message
    assert not accepts(lines[:4096], Blob("x", lines))


def test_a_message_nested_too_deep_says_so():
    """A multipart thousands of levels deep: 'not a readable e-mail message: maximum recursion depth exceeded
    while getting the str of an object'."""
    data = HEAD.format("deep")
    for k in range(3000):
        data += f'Content-Type: multipart/mixed; boundary="D{k}"\r\n\r\n--D{k}\r\n'
    data += "Content-Type: text/plain\r\n\r\nhi\r\n" + "".join(f"--D{k}--\r\n" for k in reversed(range(3000)))
    started = time.monotonic()
    assert errors(items_of(data)) == [("letter.eml", "", "message nested too deep to read (parts inside parts, "
                                                         "hundreds of levels); not opened")]
    assert time.monotonic() - started < 20


def test_a_big_message_is_parsed_in_a_few_times_its_size():
    """Parsed whole, a message was held as text and as a list of its lines at once: a 143 MB message took 1.3 GB
    (7.8 times its size here); fed to the parser a megabyte at a time, under 3 times."""
    body = b64(os.urandom(6 << 20)).encode()
    data = (HEAD.format("big") + 'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n'
            'Content-Type: application/octet-stream; name="x.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            ).encode() + body + b"\r\n--B--\r\n"
    tracemalloc.start()
    try:
        msg = _parse(data, _Reading(100))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(msg.get_payload()[0].get_payload(decode=True)) == 6 << 20
    assert peak < 4 * len(data), f"{peak / len(data):.1f} times the message"


def test_a_file_name_sent_as_raw_latin1_keeps_its_letters():
    """Older Western mailers put the name in the header unencoded, in Latin-1: `R�ntgen.png`."""
    part = ('Content-Type: image/png; name="R\xf6ntgen.png"\r\nContent-Disposition: attachment; '
            'filename="R\xf6ntgen.png"\r\nContent-Transfer-Encoding: base64\r\n\r\n')
    data = (HEAD.format("raw") + 'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n' + part
            + b64(b.image_bytes("PNG")) + "\r\n--B--\r\n")
    assert found(items_of(data)) == [("letter.eml:Röntgen.png", "", (64, 48))]
    utf8 = data.encode("latin-1").replace(b"R\xf6ntgen", "Röntgen ä".encode())  # raw UTF-8, as newer ones do
    assert found(items_of(utf8)) == [("letter.eml:Röntgen ä.png", "", (64, 48))]


def test_data_uri_pictures_count_against_the_parts_cap():
    pictures = "".join(f'<img src="{data_uri(b.image_bytes("PNG", size=(64 + k, 64)))}">' for k in range(30))
    got = items_of(HEAD.format("many") + "Content-Type: text/html\r\n\r\n" + pictures, zip_max_entries=10)
    assert len(found(got)) == 9  # the message itself is the first part
    assert errors(got)[-1][2].startswith("message has more than 10 parts, the zip_max_entries cap; the rest is not")


def test_a_from_line_in_a_message_s_own_text_does_not_split_it():
    """A message saved with its envelope line (`From - date`, as mail programs keep them) whose text has a line
    starting `From ` after a blank line and before a `Word: …` line was cut in two there: its attachment was lost
    without a word."""
    text = "Dear colleague,\r\n\r\nFrom tomorrow on\r\nNote: the ward is closed.\r\nThanks\r\n"
    data = ("From - Thu Dec  3 10:00:00 2026\r\n" + HEAD.format("ward") + 'Content-Type: multipart/mixed; '
            'boundary="B"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n' + text + '--B\r\nContent-Type: image/png; '
            'name="x.png"\r\nContent-Transfer-Encoding: base64\r\n\r\n' + b64(b.image_bytes("PNG")) + "\r\n--B--\r\n")
    assert found(items_of(data)) == [("letter.eml:x.png", "", (64, 48))]
    two = data + "\r\nFrom b@example.org Thu Dec  3 11:00:00 2026\r\n" + data.split("\r\n", 1)[1]  # a mailbox of two
    assert [o for o, _, _ in found(items_of(two, "in.mbox"))] == ["in.mbox:message-1:x.png", "in.mbox:message-2:x.png"]


def _slow_message(parts: int) -> bytes:
    """A message whose part headers are slow to parse (runs of `;`: ~0.2 s a part with the standard parser)."""
    body = b"".join(b"--B\nContent-Type: image/png" + b";" * 4000 + b"\n\nAAAA\n" for _ in range(parts))
    return (b"From: a@example.org\nTo: b@example.org\nSubject: slow\nMIME-Version: 1.0\n"
            b"Content-Type: multipart/mixed; boundary=B\n\n" + body + b"--B--\n")


def _one(k: int) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "gp@example.org", "radiology@example.org", f"scan {k}"
    msg.set_content("see attached")
    msg.add_attachment(b.image_bytes("PNG", size=(40 + k, 30)), maintype="image", subtype="png", filename=f"i{k}.png")
    return msg.as_bytes()


def _mbox(*messages: bytes) -> bytes:
    return b"".join(b"From gp@example.org Thu Dec  3 10:00:00 2026\n" + m + b"\n" for m in messages)


def test_each_message_of_a_mailbox_has_its_own_parse_time(monkeypatch):
    """The 10 s parse cap was shared by a whole mailbox: an ordinary mailbox of a few thousand messages could pass
    it on a slow machine, and every later message was lost with an error blaming long headers."""
    from medimg.sources import email_file

    monkeypatch.setattr(email_file, "PARSE_SECONDS", 0.3)
    data = _mbox(_one(1), _slow_message(10), _one(3))
    got = list(open_input(Blob("in.mbox", data, name="in.mbox")))
    images = sorted(i.origin for i in got if isinstance(i, ImageItem))
    assert images == ["in.mbox:message-1:i1.png", "in.mbox:message-3:i3.png"]
    errors = [(i.origin, i.error) for i in got if isinstance(i, ItemError) and not i.skipped]
    assert errors == [("in.mbox:message-2", "message took over 0.3 s of CPU to parse (the standard parser is slow "
                                            "on long header parameter lists); not opened")]


def test_a_mailbox_still_has_a_cap_for_all_its_messages(monkeypatch):
    from medimg.sources import email_file

    monkeypatch.setattr(email_file, "MAILBOX_SECONDS", 0.3)
    data = _mbox(_one(1), _slow_message(4), _one(3))
    got = list(open_input(Blob("in.mbox", data, name="in.mbox")))
    errors = [(i.origin, i.error) for i in got if isinstance(i, ItemError) and not i.skipped]
    assert [i.origin for i in got if isinstance(i, ImageItem)] == ["in.mbox:message-1:i1.png"]
    assert errors[-1] == ("in.mbox", "mailbox: messages 3 to 3 not read (a cap above)")
    assert any(e.startswith("mailbox took over 0.3 s of CPU to parse") for _, e in errors)
