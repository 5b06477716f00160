"""E-mail messages built here with the standard library: attachments and inline pictures are inputs."""

from __future__ import annotations

import base64
import time
from email.message import EmailMessage

import pytest

import builders as b
from medimg.sources import Blob, ImageItem, ItemError, Limits, input_tasks, open_input
from medimg.sources.email_file import accepts


def message(subject="Referral", body="Please see the scans attached.") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "gp@example.org", "radiology@example.org", subject
    msg["Date"] = "Thu, 03 Dec 2026 10:00:00 +0000"
    msg.set_content(body)
    return msg


def pdf_with_image() -> bytes:
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_image(pymupdf.Rect(50, 50, 300, 250), stream=b.image_bytes("PNG", size=(200, 150)))
    data = doc.tobytes()
    doc.close()
    return data


def items_of(data: bytes, name="letter.eml", **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def test_attachments_and_inline_pictures_are_read():
    msg = message()
    msg.add_alternative('<p>Scan below</p><img src="cid:scan1"><img src="https://tracker.example/pixel.gif">',
                        subtype="html")
    msg.get_payload()[1].add_related(b.image_bytes("JPEG", size=(120, 90)), "image", "jpeg", cid="<scan1>",
                                     filename="inline.jpg")
    msg.add_attachment(b.image_bytes("PNG", size=(100, 80)), maintype="image", subtype="png", filename="xray.png")
    msg.add_attachment(pdf_with_image(), maintype="application", subtype="pdf", filename="report.pdf")
    msg.add_attachment((b.dicom_dir() / "CT_small.dcm").read_bytes(), maintype="application", subtype="dicom",
                       filename="../../etc/ct.dcm")
    msg.add_attachment(b.zip_bytes([("a/one.png", b.image_bytes("PNG"))]), maintype="application",
                       subtype="zip", filename="more.zip")
    items = items_of(msg.as_bytes())
    got = [(i.origin, i.locator, type(i).__name__) for i in items]
    assert got[:4] == [("letter.eml:inline.jpg", "", "ImageItem"), ("letter.eml:xray.png", "", "ImageItem"),
                       ("letter.eml:report.pdf", "page 1, image 1", "ImageItem"),
                       ("letter.eml:ct.dcm", "", "ImageItem")]
    assert got[4] == ("letter.eml:more.zip:a/one.png", "", "ImageItem")
    note = items[-1]
    assert isinstance(note, ItemError) and note.skipped and "2 text parts" in note.error
    assert "not fetched" in note.error and len(items) == 6


def test_a_forwarded_message_is_opened_too():
    inner = message("Fwd scan")
    inner.add_attachment(b.image_bytes("PNG"), maintype="image", subtype="png", filename="inner.png")
    outer = message("FW: Fwd scan")
    outer.add_attachment(inner)
    items = [i for i in items_of(outer.as_bytes()) if isinstance(i, ImageItem)]
    assert [i.origin for i in items] == ["letter.eml:inner.png"]


def test_each_attachment_is_a_unit_of_work(tmp_path):
    msg = message()
    for k in range(3):
        msg.add_attachment(b.image_bytes("PNG", size=(40 + k, 30)), maintype="image", subtype="png",
                           filename="scan.png")  # the same name thrice: each still its own input
    path = tmp_path / "m.eml"
    path.write_bytes(msg.as_bytes())
    origins = [t.origin for t in input_tasks([path])]
    assert origins == [f"{path}:scan.png", f"{path}:scan (2).png", f"{path}:scan (3).png", str(path)]
    sizes = [i.image.size for i in open_input(path) if isinstance(i, ImageItem)]
    assert sizes == [(40, 30), (41, 30), (42, 30)]


def test_caps_and_damage():
    msg = message()
    msg.add_attachment(b.image_bytes("PNG", size=(300, 300)), maintype="image", subtype="png", filename="big.png")
    msg.add_attachment(b"\x00" * 10, maintype="application", subtype="octet-stream", filename="x.bin")
    items = items_of(msg.as_bytes(), max_input_bytes=1000)
    assert "over the max_input_bytes cap" in items[0].error and items[1].skipped
    err = items_of(msg.as_bytes(), zip_max_bytes=100)[0]
    assert "zip_max_bytes" in err.error
    broken = msg.as_bytes().replace(b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: base64\n"
                                    b"X-Broken: 1", 1)[:-200]
    items = items_of(broken)
    assert items and all(isinstance(i, (ImageItem, ItemError)) for i in items)


def multipart(parts: list[bytes]) -> bytes:
    """A message of raw MIME parts (header lines, a blank line, a body), boundary `b`."""
    return (b"From: a@b.c\nTo: d@e.f\nSubject: scan\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
            + b"".join(b"--b\n" + p + b"\n" for p in parts) + b"--b--\n")


@pytest.mark.timeout(60)
def test_a_header_too_long_to_parse_in_time_is_refused():
    # the standard library parses parameter lists in quadratic time: this 80 KB header took over 20 s
    data = (b"From: a@b.c\nTo: d@e.f\nSubject: scan\nMIME-Version: 1.0\nContent-Type: " + b"a/b;" * 20_000
            + b"\nContent-Transfer-Encoding: base64\n\nAAAA\n")
    start = time.monotonic()
    got = items_of(data)
    assert time.monotonic() - start < 10
    assert len(got) == 1 and "Content-Type header is 80,000 characters" in got[0].error


def test_header_parsing_time_adds_up_across_parts(monkeypatch):
    """Headers under the length cap, slow to parse, in many parts: the parsing time is what is bounded."""
    from medimg.sources import email_file

    monkeypatch.setattr(email_file, "PARSE_SECONDS", 0.5)
    part = b"Content-Type: image/png" + b";" * 4000 + b"\n\nAAAA"  # ~0.2 s each
    started = time.thread_time()  # CPU time, as the cap counts it: a loaded machine stretched wall time to 10 s
    got = items_of(multipart([part] * 100))
    assert time.thread_time() - started < 5  # all 100 parts would take 20 s
    assert len(got) == 1 and got[0].error == ("message took over 0.5 s of CPU to parse (the standard parser is "
                                              "slow on long header parameter lists); not opened")


def test_many_ordinary_attachments_and_long_encoded_names_are_read():
    """A cost model refused 800 Outlook-style attachments, or 60 with 150-character Japanese names."""
    msg = message()
    png = b.image_bytes("PNG")
    for i in range(60):
        msg.add_attachment(png, maintype="image", subtype="png", filename="\u6587" * 150 + f"{i}.png")
    for i in range(800):
        msg.add_attachment(png, maintype="image", subtype="png", filename=f"image{i:03d}.png",
                           params={"size": str(len(png)), "creation-date": "Thu, 03 Dec 2026 10:00:00 +0000",
                                   "modification-date": "Thu, 03 Dec 2026 10:00:00 +0000"})
    got = items_of(msg.as_bytes())
    assert sum(isinstance(i, ImageItem) for i in got) == 860, [i.error for i in got if isinstance(i, ItemError)]


def test_too_many_parts_are_refused_while_reading(monkeypatch):
    import email.message

    made, init = [0], email.message.Message.__init__

    def counted(self, *args, **kwargs):
        made[0] += 1
        init(self, *args, **kwargs)

    monkeypatch.setattr(email.message.Message, "__init__", counted)
    got = items_of(multipart([b""] * 20_000), zip_max_entries=100)
    assert len(got) == 1 and "zip_max_entries" in got[0].error
    assert made[0] < 200  # not all 20,000 parts made first and counted after


@pytest.mark.parametrize("text,expected", [
    (b"From: a@b.c\nTo: d@e.f\nSubject: x\nMIME-Version: 1.0\nContent-Type: text/plain\n\nhi", True),
    (b"From gp@example.org Thu Dec  3 10:00:00 2026\nReceived: by x\nFrom: a@b\nMIME-Version: 1.0\nSubject: y\n\n", True),
    (b"From: a@b.c\nTo: d@e.f\nSubject: no mime\n\nhello", False),
    (b"Name: value\nOther: thing\nMIME-Version: 1.0\n\n", False),
    (b"<html><head></head></html>", False),
    (b"key: value\nnot a header line\nMIME-Version: 1.0\nFrom: x\nTo: y\n\n", False),
])
def test_sniffing(text, expected):
    assert accepts(text, Blob("x", text)) is expected


def test_an_attached_text_file_is_an_input_not_the_message_text():
    """Only the message's own text parts are left out; a text/html file attached (a saved report page with
    its picture inside as a data: URI) is read like any attachment."""
    picture = base64.b64encode(b.image_bytes("PNG", size=(120, 90))).decode()
    msg = message()
    msg.add_attachment(f'<html><body><p>Report</p><img src="data:image/png;base64,{picture}"></body></html>',
                       subtype="html", filename="report.html")
    got = items_of(msg.as_bytes(), offline=True)
    images = [i for i in got if isinstance(i, ImageItem)]
    assert len(images) == 1 and images[0].origin.startswith("letter.eml:report.html"), got
    notes = [i.error for i in got if isinstance(i, ItemError)]
    assert any("1 text part (the message itself)" in n for n in notes), notes


def _mail_with_trace_headers(hops: int) -> bytes:
    msg = EmailMessage()
    for i in range(hops):  # each relay adds its Received line at the top, before the sender's MIME headers
        msg["Received"] = (f"from mx{i}.example.org (mx{i}.example.org [192.0.2.{i}]) by relay.example.net "
                           f"with ESMTPS id abc{i:04d}; Mon, 1 Jan 2024 10:00:{i:02d} +0000")
    msg["From"], msg["To"], msg["Subject"] = "gp@example.org", "radiology@example.org", "scan"
    msg.set_content("see attached")
    msg.add_attachment(b.image_bytes("PNG", (80, 60)), maintype="image", subtype="png", filename="x.png")
    return bytes(msg)


@pytest.mark.parametrize("hops, after", [(20, 2048), (40, 5000)])
def test_a_message_whose_mime_headers_come_after_kilobytes_of_trace_headers_is_read(tmp_path, hops, after):
    """An e-mail whose MIME-Version line lies past the first kilobytes, even past the registry's 4 KB head
    (relays' Received, ARC and DKIM lines), is read, as bytes and from disk."""
    data = _mail_with_trace_headers(hops)
    assert after < data.find(b"MIME-Version") < 2 * after
    got = list(open_input(Blob("msg.eml", data, name="msg.eml")))
    assert [i.origin for i in got if isinstance(i, ImageItem)] == ["msg.eml:x.png"]
    (tmp_path / "msg.eml").write_bytes(data)
    got = list(open_input(tmp_path / "msg.eml"))
    assert [i.origin for i in got if isinstance(i, ImageItem)] == [f"{tmp_path / 'msg.eml'}:x.png"]


def _message_of() -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "gp@example.org", "radiology@example.org", "Referral"
    msg["Date"] = "Thu, 03 Dec 2026 10:00:00 +0000"
    msg.set_content("Please see the scans attached.")
    return msg


def test_once_a_message_decodes_past_zip_max_bytes_its_later_attachments_are_not_read():
    """The part that goes past zip_max_bytes ends the message ("the rest is not read"): a smaller part after it
    that would still fit is not read either."""
    small, big = b.image_bytes("PNG", size=(60, 40)), b.image_bytes("PNG", size=(300, 300))
    assert len(small) < len(big)
    msg = _message_of()
    for name, data in (("first.png", small), ("big.png", big), ("last.png", small)):
        msg.add_attachment(data, maintype="image", subtype="png", filename=name)
    items = list(open_input(Blob("letter.eml", msg.as_bytes(), name="letter.eml"),
                            Limits(zip_max_bytes=len(small) + len(big) - 1)))
    assert isinstance(items[0], ImageItem) and items[0].origin == "letter.eml:first.png"
    assert isinstance(items[1], ItemError) and "the rest is not read" in items[1].error
    assert [i.origin for i in items if isinstance(i, ImageItem)] == ["letter.eml:first.png"]


def test_the_parse_cap_counts_the_parsers_own_time_not_time_spent_waiting(monkeypatch):
    """Under load (the pipeline's workers decoding, other requests) the parsing thread waits for the CPU and the
    GIL: by the wall clock an ordinary message of 860 attachments passed the 10 s cap on a busy machine. Here each
    header waits 20 ms, as a thread waiting its turn would."""
    from medimg.sources import email_file

    charge = email_file._Reading.charge

    def waiting(self, name, value):
        time.sleep(0.02)
        charge(self, name, value)

    monkeypatch.setattr(email_file._Reading, "charge", waiting)
    monkeypatch.setattr(email_file, "PARSE_SECONDS", 1.0)
    msg = message()
    for i in range(20):
        msg.add_attachment(b.image_bytes("PNG"), maintype="image", subtype="png", filename=f"image{i:02d}.png")
    got = items_of(msg.as_bytes())
    assert sum(isinstance(i, ImageItem) for i in got) == 20, [i.error for i in got if isinstance(i, ItemError)]
