"""Where each image came from (session 44): two different images of one input never share their input and
locator, which is how rows are joined to `extract`'s manifest and how a person finds the image again."""

from __future__ import annotations

import numpy as np
import tifffile

from medimg.sources import Blob, ImageItem, Limits, open_input
from test_left_s38 import crop_attrs, deck, images, screenshot
from test_lif import lif_bytes, stack


def places(items) -> list[tuple[str, str]]:
    return [(i.origin, i.locator) for i in items if isinstance(i, ImageItem)]


def test_one_picture_shown_whole_and_cropped_on_one_slide_gives_each_its_own_locator():
    """A teaching slide showing a screenshot whole and, beside it, cropped to its X-ray (and again otherwise
    cropped): the two crops were both `slide 1`, so their rows could not be told apart nor joined to the manifest;
    in a Word report every picture is `document body`, so one shown whole and cropped gave two such rows."""
    shot, box = screenshot()
    corner = crop_attrs((0, 0, 200, 150))
    data = deck([[("rId2", "image1.png", ""), ("rId3", "image1.png", crop_attrs(box)), ("rId4", "image1.png", corner)],
                 [("rId2", "image1.png", "")]], {"image1.png": shot})
    got = {i.locator: (i.image.size, i.metadata.get("crop")) for i in images(data, "talk.pptx")}
    assert got == {"slides 1, 2": ((400, 300), None),
                   "slide 1 (crop 1)": ((200, 180), {"left": 0.25, "top": 0.2, "right": 0.25, "bottom": 0.2}),
                   "slide 1 (crop 2)": ((200, 150), {"left": 0.0, "top": 0.0, "right": 0.5, "bottom": 0.5})}
    # one crop beside the whole picture says so; a crop alone on its slides is named as before
    data = deck([[("rId2", "image1.png", ""), ("rId3", "image1.png", crop_attrs(box))],
                 [("rId2", "image1.png", corner)]], {"image1.png": shot})
    assert [i.locator for i in images(data, "talk.pptx")] == ["slide 1", "slide 1 (cropped)", "slide 2"]


def ome(names: list[str | None]) -> bytes:
    import io

    buf = io.BytesIO()
    a = (np.random.default_rng(0).random((2, 48, 64)) * 60000).astype(np.uint16)
    with tifffile.TiffWriter(buf, ome=True) as tw:
        for name in names:
            tw.write(a, metadata={"axes": "CYX", **({"Name": name} if name is not None else {})})
    return buf.getvalue()


def test_ome_images_of_one_name_are_told_apart_by_their_number():
    """A plate whose fields all bear their well's name (`Well A1` twice) gave two rows `Well A1`; now the images
    sharing a name add their number, as an unnamed one is called."""
    got = places(open_input(Blob("plate.ome.tif", ome(["Well A1", "Well A1", "", "Well B1"]), name="plate.ome.tif")))
    assert [loc for _, loc in got] == ["Well A1 (image 1)", "Well A1 (image 2)", "image 3", "Well B1"]


def test_lif_series_of_one_name_or_none_are_told_apart():
    """Two series named alike gave one locator; a series with an empty name gave none at all."""
    data = lif_bytes([("Position 1", stack(z=1)), ("Position 1", stack(z=1)), ("", stack(z=1))])
    got = places(open_input(Blob("p.lif", data, name="p.lif"), Limits()))
    assert [loc for _, loc in got] == ["Position 1 (image 1)", "Position 1 (image 2)", "image 3"]


def test_a_member_of_a_message_or_document_inside_an_archive_given_back_is_read_alone(tmp_path):
    """`set.zip:d/letter.eml:xray.png`, the name a row gave, read every part of the message (and the RTF's and the
    Outlook message's other pictures) and then said `no member …`; an Office file's picture came after its note
    and the same error. Now such a name gives that member's rows, as it does for a zip in a zip."""
    import builders as b
    from test_email import message
    from test_office_s37 import docx

    msg = message()
    msg.add_attachment(b.image_bytes("PNG", (100, 80)), maintype="image", subtype="png", filename="xray.png")
    msg.add_attachment(b.image_bytes("JPEG", (90, 90)), maintype="image", subtype="jpeg", filename="ct.jpg")
    pict = "{\\pict\\pngblip " + b.image_bytes("PNG", (80, 80)).hex() + "}"
    path = tmp_path / "set.zip"
    path.write_bytes(b.zip_bytes({"d/letter.eml": msg.as_bytes(), "d/r.rtf": ("{\\rtf1 " + pict * 2 + "}").encode(),
                                  "d/mail.msg": b.outlook_msg([("a.png", b.image_bytes("PNG", (70, 70))),
                                                               ("b.png", b.image_bytes("PNG", (75, 75)))]),
                                  "d/report.docx": docx()}))
    rows = places(open_input(str(path)))
    assert len(rows) == 8 and len(set(rows)) == 8
    for origin, locator in rows:
        got = [(i.origin, i.locator, getattr(i, "error", None)) for i in open_input(origin)]
        assert got == [(origin, locator, None)], origin
    missing = f"{path}:d/letter.eml:none.png"
    assert [(i.origin, i.error[:9]) for i in open_input(missing)] == [(missing, "no member")]
