"""What the docs say of session 41's changes is what the code does: the raster formats README and formats.md list
(PSD, TGA by its names, QOI, SGI, PCX, DDS; PSB an error), the microscopes' formats not read and the message
quoted, a 10–14-bit camera's colour TIFF, a PDF image its mask hides, labels.json's mean and std, what predict and
classify say of arrays and open files, the server's slow-body numbers and anti-framing headers, evaluate with
nothing scored, a too-long --out, e-mail with a byte order mark or a uuencoded file, and the names
architecture.md gives."""

from __future__ import annotations

import base64
import importlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medimg.sources import Blob, ImageItem, ItemError, open_input, open_inputs

from test_docs_s40 import ROOT, _doc, _said  # (a doc's text with its lines joined; a phrase in it)


def _picture() -> np.ndarray:
    y, x = np.mgrid[0:48, 0:64]
    return np.dstack([x * 4, y * 5, (x + y) * 2]).astype(np.uint8)


def _psd(composite: np.ndarray, version: int = 1) -> bytes:
    """A Photoshop file (8-bit RGB, raw, no layers) whose composite is `composite`."""
    h, w, _ = composite.shape
    out = b"8BPS" + struct.pack(">H6xHIIHH", version, 3, h, w, 8, 3) + struct.pack(">III", 0, 0, 0)
    return out + struct.pack(">H", 0) + b"".join(composite[:, :, c].tobytes() for c in range(3))


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "400", "GRADIO_ANALYTICS_ENABLED": "False"}  # a message on one line
    return subprocess.run([sys.executable, "-m", "medimg", *cmd], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env=env, **kw)


def test_the_new_raster_formats_readme_and_formats_md_list_are_read(tmp_path):
    readme = _said("README.md", r"image files: [^;]*PGM/PPM/PBM, Photoshop PSD, TGA, QOI, SGI, PCX, DDS;")
    assert readme
    _said("docs/formats.md", r"Photoshop PSD \(its composite image, as saved: the layers are not read one by one\), "
                             r"QOI, SGI, PCX, DDS and TGA")
    files = {"x.psd": _psd(_picture())}
    for fmt in ("QOI", "SGI", "PCX", "DDS", "TGA"):
        out = io.BytesIO()
        Image.fromarray(_picture()).save(out, fmt)
        files[f"x.{fmt.lower()}"] = out.getvalue()
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    items = list(open_inputs(sorted(str(tmp_path / n) for n in files)))
    assert all(isinstance(i, ImageItem) for i in items), items
    assert sorted(i.format for i in items) == ["DDS", "PCX", "PSD", "QOI", "SGI", "TGA"]
    for item in items:
        assert np.array_equal(np.asarray(item.image.convert("RGB")), _picture()), item.format


def test_a_tga_is_known_by_the_names_formats_md_gives_and_by_no_other():
    from medimg.sources.files import _TGA_NAMES

    names = _said("docs/formats.md", r"TGA \(known by its name, ((?:`\.\w+`(?:, )?)+), and a header that fits")
    assert tuple(re.findall(r"`(\.\w+)`", names.group(1))) == _TGA_NAMES
    out = io.BytesIO()
    Image.fromarray(_picture()).save(out, "TGA")
    (item,) = open_input(Blob("x.vst", out.getvalue()))
    assert isinstance(item, ImageItem) and item.format == "TGA"
    (item,) = open_input(Blob("x.bin", out.getvalue()))
    assert isinstance(item, ItemError) and "unrecognised content" in item.error


def test_a_psb_is_the_error_formats_md_says(tmp_path):
    _said("docs/formats.md", r"A Photoshop large document \(PSB\) is an error \(not decoded\)")
    path = tmp_path / "big.psb"
    path.write_bytes(_psd(_picture(), version=2))
    (item,) = open_input(str(path))
    assert isinstance(item, ItemError) and "Photoshop large document (PSB) is not decoded" in item.error


def test_the_microscope_formats_formats_md_lists_are_the_code_s_and_say_what_it_quotes(tmp_path):
    from medimg.sources.registry import UNREAD_MICROSCOPY

    said = _said("docs/formats.md", r"a microscope's own format that no source reads \(([^)]*)\) is an error naming "
                                    r"the format \(`([^`…]+) …`\)")
    assert re.findall(r"`(\.\w+)`", said.group(1)) == list(UNREAD_MICROSCOPY)
    (tmp_path / "cells.nd2").write_bytes(b"\xda\xce\xbe\x0a" + bytes(200))
    (tmp_path / "meeting.ics").write_bytes(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")
    (tmp_path / "cells.ics").write_bytes(b"ics_version\t1.0\nfilename\tcells\n")
    found = {Path(i.origin).name: i for i in open_input(str(tmp_path))}
    assert found["cells.nd2"].error.startswith(said.group(2)) and not found["cells.nd2"].skipped
    assert found["cells.ics"].error.startswith("Image Cytometry Standard ICS file: a microscopy format")
    assert found["meeting.ics"].skipped, found["meeting.ics"]  # a calendar invite: the usual note
    (alone,) = open_input(str(tmp_path / "cells.nd2"))
    assert alone.error.startswith(said.group(2))


def test_a_12_bit_camera_s_colour_tiff_is_shown_by_its_depth_and_a_15_bit_photo_as_stored():
    import tifffile

    _said("docs/formats.md", r"or by the depth their values reach when that is 14 bits or less")
    _said("docs/formats.md", r"a 16-bit photo only darker than that, reaching 15 bits, is shown as stored")
    ramp = np.linspace(0, 1, 64 * 48).reshape(48, 64, 1) * np.ones((1, 1, 3))
    for top, expect in ((4095, 255), (20000, 20000 >> 8)):
        out = io.BytesIO()
        tifffile.imwrite(out, (ramp * top).astype(np.uint16), photometric="rgb")
        (item,) = open_input(Blob("x.tif", out.getvalue()))
        assert abs(int(np.asarray(item.image.convert("RGB")).max()) - expect) <= 1, (top, item)


def test_an_image_its_mask_hides_everywhere_is_the_note_formats_md_quotes():
    pymupdf = pytest.importorskip("pymupdf")
    quoted = _said("docs/formats.md", r"a skipped note says `([^`]+)`").group(1)
    photo = np.random.default_rng(1).integers(0, 255, (300, 400, 3), dtype=np.uint8)  # a photo, drawn 1:1
    doc = pymupdf.open()
    page = doc.new_page(width=500, height=400)
    mask = doc.get_new_xref()
    doc.update_object(mask, "<</Type/XObject/Subtype/Image/Width 400/Height 300/BitsPerComponent 8"
                            "/ColorSpace/DeviceGray>>")
    doc.update_stream(mask, bytes(400 * 300))
    xref = doc.get_new_xref()
    doc.update_object(xref, f"<</Type/XObject/Subtype/Image/Width 400/Height 300/BitsPerComponent 8"
                            f"/ColorSpace/DeviceRGB/SMask {mask} 0 R>>")
    doc.update_stream(xref, photo.tobytes())
    content = doc.get_new_xref()
    doc.update_object(content, "<<>>")
    doc.update_stream(content, b"q 400 0 0 300 50 50 cm /I0 Do Q")
    doc.xref_set_key(page.xref, "Resources", f"<</XObject<</I0 {xref} 0 R>>>>")
    doc.xref_set_key(page.xref, "Contents", f"{content} 0 R")
    items = list(open_input(Blob("report.pdf", doc.tobytes())))
    assert not any(isinstance(i, ImageItem) for i in items), items
    assert any(i.skipped and quoted in i.error for i in items), items


def _model_with(tmp_path: Path, **fields) -> Path:
    """A copy of the shipped fast model whose labels.json has `fields` too (a new folder each call)."""
    folder = tmp_path / f"model{len(list(tmp_path.iterdir()))}"
    shutil.copytree(ROOT / "src" / "medimg" / "model" / "assets" / "fast", folder)
    meta = json.loads((folder / "labels.json").read_text())
    meta.update(fields)
    (folder / "labels.json").write_text(json.dumps(meta))
    return folder


def test_labels_json_s_mean_and_std_are_used_and_bad_ones_refused_as_the_docs_say(tmp_path):
    from medimg.model.classifier import Classifier
    from medimg.model.preprocess import MEAN, STD

    _said("docs/cli.md", r"the model is fed \(x − mean\) / std of pixel values in 0–1")
    _said("docs/cli.md", r"or a mean or std that is not three numbers \(a std over 0\), is refused when loaded")
    _said("docs/architecture.md", r"the input's per-channel mean and std \(0\.5 each when not given\)")
    assert MEAN == STD == (0.5, 0.5, 0.5)
    for bad in ({"std": [0.2, 0.0, 0.2]}, {"mean": [0.5, 0.5]}, {"std": "wide"}):
        with pytest.raises(ValueError):
            Classifier.load(str(_model_with(tmp_path, **bad)))
    grey = Image.new("RGB", (64, 64), (90, 90, 90))
    plain = Classifier.load(str(_model_with(tmp_path, mean=[0.5] * 3, std=[0.5] * 3))).predict(grey)[0]
    other = Classifier.load(str(_model_with(tmp_path, mean=[0.0] * 3, std=[0.1] * 3))).predict(grey)[0]
    assert plain.p_medical != other.p_medical  # used, not ignored


def test_predict_and_classify_say_what_readme_says_of_arrays_and_open_files():
    import medimg
    from medimg.model.classifier import Classifier

    _said("README.md", r"An open file raises too: give its path, or its bytes as a `Blob`")
    _said("README.md", r"an array of pixels goes in as `Image\.fromarray\(a\)` \(one given raises, saying so\)")
    with pytest.raises(TypeError, match=r"PIL\.Image\.fromarray\(a\)"):
        Classifier.load("fast").predict([np.zeros((20, 20, 3), np.uint8)])
    with open(ROOT / "README.md", "rb") as f:
        with pytest.raises(TypeError, match=r"give its path \(f\.name\), or its bytes as Blob"):
            medimg.classify(f)


def test_the_slow_body_numbers_server_md_gives_are_the_code_s():
    from medimg.server.limits import BODY_IDLE_SECONDS, MIN_BODY_RATE

    said = _said("docs/server.md", r"A request body may pause at most (\d+) s, and after its first (\d+) s it must "
                                   r"come at (\d+) bytes a second on average")
    assert [int(n) for n in said.groups()] == [BODY_IDLE_SECONDS, BODY_IDLE_SECONDS, MIN_BODY_RATE]
    # a byte a second is cut off when seen/MIN_BODY_RATE + idle = elapsed: about a minute, as the page says
    assert 60 <= BODY_IDLE_SECONDS / (1 - 1 / MIN_BODY_RATE) < 70
    _said("docs/server.md", r"a body sent a byte a second is cut off after about a minute")


def test_every_answer_carries_the_anti_framing_headers_server_md_lists():
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from medimg.server.app import NoFraming

    said = _said("docs/server.md", r"carries `X-Frame-Options: DENY` and `Content-Security-Policy: frame-ancestors "
                                   r"'none'` \(against clickjacking\), `X-Content-Type-Options: nosniff` and "
                                   r"`Referrer-Policy: same-origin`")
    named = dict(re.findall(r"`([\w-]+): ([^`]+)`", said.group(0)))
    answer = TestClient(NoFraming(Starlette())).get("/nowhere")  # a 404: every answer, not the page's alone
    assert answer.status_code == 404
    assert {k: answer.headers[k] for k in named} == named


def test_evaluate_with_nothing_scored_says_so_and_exits_1(tmp_path):
    _said("docs/cli.md", r"When no image was scored \(every file unreadable, every label folder empty\) it says so in "
                         r"place of the numbers and the table, then lists why, and exits 1")
    (tmp_path / "ct" / "a").mkdir(parents=True)
    (tmp_path / "ct" / "a" / "x.png").write_bytes(b"junk\n")
    (tmp_path / "photo" / "b").mkdir(parents=True)
    done = _run(["evaluate", str(tmp_path), "--model", "fast"])
    assert done.returncode == 1, done
    assert "n=0: no image was scored" in done.stdout and "x.png" in done.stdout, done.stdout
    assert "precision" not in done.stdout.lower()


def test_an_out_too_long_for_the_file_system_is_a_usage_error(tmp_path):
    _said("docs/cli.md", r"An `--out` or `--inputs-from` that long is a usage error \(exit 2\)")
    (tmp_path / "a.png").write_bytes(b"")
    done = _run(["classify", str(tmp_path / "a.png"), "--out", str(tmp_path / ("a" * 300 + ".csv"))])
    said = " ".join(re.sub("[│╭╮╰╯─]", " ", done.stderr).split())  # rich may wrap the long path's line anywhere
    assert done.returncode == 2 and "File name too long" in said, done


def _attached_png() -> bytes:
    out = io.BytesIO()
    Image.fromarray(_picture()).save(out, "PNG")
    return out.getvalue()


def test_a_message_with_a_byte_order_mark_and_a_pre_mime_uuencoded_one_are_read_as_formats_md_says():
    import binascii

    _said("docs/formats.md", r"A UTF-8 byte order mark before them \(some Windows tools save messages so\) is "
                             r"passed over")
    _said("docs/formats.md", r"in a message from before MIME, a file uuencoded in its text")
    png = base64.b64encode(_attached_png()).decode()
    mime = ("From: a@example.org\r\nTo: b@example.org\r\nSubject: scan\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
            "--XX\r\nContent-Type: image/png; name=scan.png\r\nContent-Disposition: attachment; filename=scan.png\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{png}\r\n--XX--\r\n")
    (item,) = [i for i in open_input(Blob("mail.eml", b"\xef\xbb\xbf" + mime.encode())) if isinstance(i, ImageItem)]
    assert item.origin == "mail.eml:scan.png", item
    data = _attached_png()
    lines = "".join(binascii.b2a_uu(data[i:i + 45]).decode() for i in range(0, len(data), 45))
    old = (f"From: a@example.org\nTo: b@example.org\nSubject: scan\nDate: Mon, 1 Jan 1990 00:00:00 GMT\n\n"
           f"here it is\n\nbegin 644 scan.png\n{lines}`\nend\n")
    images = [i for i in open_input(Blob("old.eml", old.encode())) if isinstance(i, ImageItem)]
    assert len(images) == 1 and np.array_equal(np.asarray(images[0].image.convert("RGB")), _picture()), images


@pytest.mark.parametrize("module, names", [
    ("sources.base", ["reading_unit", "Context"]),
    ("sources.registry", ["UNREAD_MICROSCOPY", "unknown"]),
    ("output", ["Claims", "Spellings"]),
    ("server.limits", ["MIN_BODY_RATE"]),
    ("server.app", ["NoFraming", "Timed"]),
])
def test_the_names_architecture_md_gives_exist(module, names):
    text = _doc("docs/architecture.md")
    found = importlib.import_module(f"medimg.{module}")
    for name in names:
        assert f"`{name}`" in text, name
        assert hasattr(found, name), f"{module}.{name}"
