"""Mail and video as a hospital's users send them (session 41): a clip whose track header mirrors it (QuickTime's
Flip Horizontal) is shown as players show it, and the pictures an Outlook .msg's text shows (signature logos,
icons) are decoration under min_side, as in an .eml.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest

import builders as b
from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input

T = 0x10000  # 1.0 in the track header's 16.16 fixed-point matrix


def items_of(data: bytes, name: str, **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def marked_clip(matrix: tuple[int, ...]) -> bytes:
    """A 160×96 MP4 whose frames are grey with a white block at the top left as stored, its track header's
    display matrix set to `matrix` (a, b, c, d: the 2×2 part; FFmpeg reads the track header's matrix)."""
    av = pytest.importorskip("av")
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 160, 96, "yuv420p"
        frame = np.full((96, 160, 3), 90, np.uint8)
        frame[:24, :40] = 255
        for _ in range(10):
            for p in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    data = bytearray(buf.getvalue())
    at = data.index(b"tkhd") + 44  # version 0: the matrix follows 40 bytes of fields
    a, b_, c_, d = matrix
    data[at:at + 36] = struct.pack(">9i", a, b_, 0, c_, d, 0, 0, 0, 0x40000000)
    return bytes(data)


def corner(item: ImageItem) -> str:
    """Which corner the white block is in, as shown."""
    px = np.asarray(item.image.convert("L"))
    h, w = px.shape
    spots = {"top left": px[:10, :10], "top right": px[:10, w - 10:], "bottom left": px[h - 10:, :10],
             "bottom right": px[h - 10:, w - 10:]}
    return max(spots, key=lambda k: spots[k].mean())


@pytest.mark.parametrize("matrix,size,where,mirrored", [
    ((T, 0, 0, T), (160, 96), "top left", False),
    ((-T, 0, 0, -T), (160, 96), "bottom right", False),  # turned 180°: both flips
    ((-T, 0, 0, T), (160, 96), "top right", True),  # mirrored left to right (QuickTime's Flip Horizontal)
    ((T, 0, 0, -T), (160, 96), "bottom left", True),  # mirrored top to bottom (Flip Vertical)
    ((0, T, -T, 0), (96, 160), "top right", False),  # a phone held upright: 90° clockwise
    ((0, -T, T, 0), (96, 160), "bottom left", False),  # 90° counter-clockwise
    ((0, T, T, 0), (96, 160), "top left", True),  # turned and mirrored: the picture transposed
    ((0, -T, -T, 0), (96, 160), "bottom right", True),
])
def test_a_clip_whose_matrix_mirrors_it_is_shown_as_players_show_it(matrix, size, where, mirrored):
    """FFmpeg's players (ffplay, ffmpeg's autorotate) flip a mirrored clip; it was turned 180° instead (upside
    down), and a turned-and-mirrored one was turned the wrong way."""
    item, = items_of(marked_clip(matrix), "endoscopy.mov")
    assert isinstance(item, ImageItem), item
    assert item.image.size == size and corner(item) == where
    assert item.metadata.get("mirrored", False) is mirrored


# An Outlook .msg: its attachments are storages of streams (MS-OXMSG). The fixed-size properties of each are in
# `__properties_version1.0`: an 8-byte header, then 16 bytes each (tag, flags, an 8-byte value).
HIDDEN, ATTACH_FLAGS = 0x7FFE000B, 0x37140003


def attachment(name: str, data: bytes, cid: str | None = None, hidden: bool = False, flags: int = 0) -> dict:
    props = bytes(8)
    if hidden:
        props += struct.pack("<IIQ", HIDDEN, 6, 1)
    if flags:
        props += struct.pack("<IIQ", ATTACH_FLAGS, 6, flags)
    out = {"__properties_version1.0": props, "__substg1.0_3707001F": name.encode("utf-16-le"),
           "__substg1.0_37010102": data}
    if cid is not None:
        out["__substg1.0_3712001F"] = cid.encode("utf-16-le")
    return out


def outlook(attachments: list[dict], html: bytes | None = None) -> bytes:
    tree: dict = {"__properties_version1.0": bytes(32), "__substg1.0_0037001F": "Referral".encode("utf-16-le"),
                  "__substg1.0_1000001F": "Please see below.".encode("utf-16-le"), "__nameid_version1.0": {}}
    if html is not None:
        tree["__substg1.0_10130102"] = html
    for i, a in enumerate(attachments):
        tree[f"__attach_version1.0_#{i:08X}"] = a
    return b.compound_file(tree)


def test_pictures_an_outlook_message_s_text_shows_are_decoration_under_min_side():
    """A signature's logo and icons in a saved .msg were classified as images (the same message as an .eml gives
    decoration notes). Outlook marks them hidden, or rendered by the HTML body, or the HTML body names them."""
    icon, logo = b.image_bytes("PNG", size=(16, 16)), b.image_bytes("PNG", size=(200, 48))
    scan = b.image_bytes("JPEG", size=(120, 90))
    msg = outlook([attachment("scan.jpg", scan, cid="scan@x", hidden=True),  # pasted into the text, big: read
                   attachment("image001.png", logo, cid="image001.png@01DA"),  # named by the HTML body
                   attachment("image002.png", icon, cid="image002.png@01DA", hidden=True),
                   attachment("image003.png", icon, cid="image003.png@01DA", flags=4),  # ATT_MHTML_REF
                   attachment("thumb.png", icon, cid="thumb@x"),  # a content ID alone (Exchange gives them): a file
                   attachment("small.png", icon)],  # a small file attached: read
                  html=b'<p>See</p><img src="cid:scan@x"><img src="CID:image001.png@01DA">')
    got = items_of(msg, "referral.msg")
    shown = sorted((i.origin, i.image.size) for i in got if isinstance(i, ImageItem))
    assert shown == [("referral.msg:scan.jpg", (120, 90)), ("referral.msg:small.png", (16, 16)),
                     ("referral.msg:thumb.png", (16, 16))]
    notes = sorted((i.origin, i.error) for i in got if isinstance(i, ItemError) and "decoration" in i.error)
    assert notes == [(f"referral.msg:{n}", f"decoration: {s} is below min_side 64 (a picture in the message's text)")
                     for n, s in (("image001.png", "200x48"), ("image002.png", "16x16"), ("image003.png", "16x16"))]
    assert all(i.skipped for i in got if isinstance(i, ItemError))
    assert len([i for i in items_of(msg, "referral.msg", min_side=1) if isinstance(i, ImageItem)]) == 6


def test_a_picture_an_attached_message_s_text_shows_is_decoration_too():
    icon = b.image_bytes("PNG", size=(16, 16))
    inner = {"__properties_version1.0": bytes(24), "__substg1.0_10130102": b'<img src="cid:logo@x">',
             "__attach_version1.0_#00000000": attachment("logo.png", icon, cid="logo@x")}
    outer = outlook([attachment("xray.png", b.image_bytes("PNG", size=(100, 80))),
                     {"__properties_version1.0": bytes(8), "__substg1.0_3707001F": "fwd.msg".encode("utf-16-le"),
                      "__substg1.0_3701000D": inner}])
    got = items_of(outer, "referral.msg")
    assert [i.origin for i in got if isinstance(i, ImageItem)] == ["referral.msg:xray.png"]
    assert [i.origin for i in got if isinstance(i, ItemError) and "decoration" in i.error] == ["referral.msg:logo.png"]


def referral_eml() -> bytes:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "gp@example.org", "radiology@example.org", "Referral"
    msg["Date"] = "Mon, 1 Jan 2024 10:00:00 +0000"
    msg.set_content("Scan attached.")
    msg.add_attachment(b.image_bytes("PNG", size=(100, 80)), maintype="image", subtype="png", filename="xray.png")
    return msg.as_bytes()


def test_a_message_saved_with_a_byte_order_mark_is_read():
    """Windows tools that save a message as UTF-8 text (PowerShell's Set-Content -Encoding UTF8, .NET's
    Encoding.UTF8) put EF BB BF first: it was 'unrecognised content'."""
    got = items_of(b"\xef\xbb\xbf" + referral_eml(), "saved.eml")
    assert [(i.origin, i.image.size) for i in got if isinstance(i, ImageItem)] == [("saved.eml:xray.png", (100, 80))]


def test_a_message_from_before_mime_with_a_file_uuencoded_in_it_is_read():
    """`uuencode scan.png scan.png | mail`, as old Unix mailers sent it: no MIME-Version header, the file in the
    text. It was 'unrecognised content'; a message from before MIME with no such file is still not one."""
    import binascii

    png = b.image_bytes("PNG", size=(100, 80))
    uu = b"".join(binascii.b2a_uu(png[i:i + 45]) for i in range(0, len(png), 45))
    head = b"From: lab@example.org\nTo: dr@example.org\nSubject: slide\nDate: Tue, 3 Mar 1998 10:00:00 -0500\n\n"
    got = items_of(head + b"Here it is.\n\nbegin 644 slide.png\n" + uu + b"`\nend\n", "old.eml")
    assert [(i.origin, i.image.size) for i in got if isinstance(i, ImageItem)] == [("old.eml:slide.png", (100, 80))]
    plain, = items_of(head + b"Hello.\n", "old.eml")
    assert isinstance(plain, ItemError) and "unrecognised" in plain.error
