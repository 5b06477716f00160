"""Session 38's change read line by line: a zip misflagging a name behind a long comment, a CZI plate's metadata
parsed once, and an arithmetic-coded JPEG whose last block is mid-grey."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import zipfile

import numpy as np
import pytest
from PIL import Image

from medimg.sources import ImageItem, open_input


def png(color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (80, 80), color).save(buf, "PNG")
    return buf.getvalue()


def misflagged(zipped: bytes) -> bytearray:
    """A zip with its member cafX.png renamed caf\\xe9.png (Latin-1) and flagged UTF-8, which that name is not (in
    its local header and its directory entry)."""
    data = bytearray(zipped.replace(b"cafX", b"caf\xe9"))
    for sig, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(sig)
        while at >= 0:
            if b"caf\xe9" in data[at:at + 60]:
                data[at + flags_at + 1] |= 0x08
            at = data.find(sig, at + 4)
    return data


def misflagged_behind_comment(aligned_on: int) -> bytes:
    """good.png, caf\\xe9.png (flagged UTF-8, which it is not) and é.png, with a comment as long as makes
    zipfile's search for the end record (the file's last 64 KB + 22 bytes) start at directory entry `aligned_on`."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, colour in (("good.png", (200, 0, 0)), ("cafX.png", (0, 0, 200)), ("é.png", (0, 200, 0))):
            zf.writestr(name, png(colour))
    data = misflagged(buf.getvalue())
    end = data.rfind(b"PK\x05\x06")
    _, start = struct.unpack_from("<II", data, end + 12)
    entries = []
    while data[start:start + 4] == b"PK\x01\x02":
        entries.append(start)
        n, m, k = struct.unpack_from("<HHH", data, start + 28)
        start += 46 + n + m + k
    length = entries[aligned_on] + 65558 - end - 22
    return bytes(data[:end + 20]) + struct.pack("<H", length) + b"c" * length


@pytest.mark.parametrize("aligned_on", [1, 2])
def test_a_misflagged_zip_with_a_long_comment_reads_every_member(tmp_path, aligned_on):
    """zipfile's search for the end record behind a comment may start in the directory. The flag was cleared only
    by what the first read starting with an entry found, entries counted from there: the misflagged member was an
    error (`could not read member: 'utf-8' codec can't decode`), or the whole archive was (when the search started
    after its entry)."""
    path = tmp_path / "commented.zip"
    path.write_bytes(misflagged_behind_comment(aligned_on))
    items = list(open_input(str(path)))
    assert [(i.origin, getattr(i, "error", None)) for i in items] == [
        (f"{path}:good.png", None), (f"{path}:cafΘ.png", None), (f"{path}:é.png", None)]
    assert [i.image.getpixel((5, 5)) for i in items] == [(200, 0, 0), (0, 0, 200), (0, 200, 0)]


def test_a_czi_plate_s_metadata_is_parsed_once(tmp_path, monkeypatch):
    """Each scene parsed the file's whole XML metadata again (a plate's names every well): 200 scenes with 1.4 MB
    of it took 58 s, 4 s now."""
    pyczi = pytest.importorskip("pylibCZIrw.czi")
    import xmltodict

    path = str(tmp_path / "plate.czi")
    with pyczi.create_czi(path, exist_ok=True) as w:
        for scene in range(12):
            for c in range(2):
                w.write(np.full((32, 32, 1), 100 + 10 * scene, np.uint16), plane={"C": c}, scene=scene,
                        location=(scene * 40, 0))
        w.write_metadata("plate", custom_attributes={f"Well{k}": f"well {k}" for k in range(200)})
    real, calls = xmltodict.parse, []
    monkeypatch.setattr(xmltodict, "parse", lambda *a, **k: calls.append(1) or real(*a, **k))
    items = list(open_input(path))
    assert [i.locator for i in items] == [f"scene {n} of 12" for n in range(1, 13)]
    assert all(isinstance(i, ImageItem) for i in items)
    assert len(calls) <= 2, f"metadata parsed {len(calls)} times"


@pytest.mark.skipif(not shutil.which("cjpeg"), reason="needs cjpeg (libjpeg-turbo-progs) to write arithmetic JPEGs")
def test_whole_arithmetic_jpegs_with_a_grey_corner_are_read(tmp_path):
    """An arithmetic-coded JPEG's decoder reads on into bytes put before the marker after its last scan, so the
    check for a cut scan (run when the last block is flat mid-grey) called whole files cut: `corrupt or truncated
    JPEG image: its data stops before the picture ends` (2 of these 10). They decode whole and are read."""
    errors, read = [], 0
    for seed in range(6):
        a = np.random.default_rng(seed).integers(0, 255, (200 + seed * 37, 300 + seed * 11, 3), dtype=np.uint8)
        a[-48:, -48:] = 128
        Image.fromarray(a).save(tmp_path / "src.ppm")
        for progressive in ([], ["-progressive"]):
            out = tmp_path / f"a{seed}{len(progressive)}.jpg"
            subprocess.run(["cjpeg", "-arithmetic", *progressive, "-outfile", str(out), str(tmp_path / "src.ppm")],
                           check=True)
            try:
                Image.open(out).load()
            except OSError:  # Pillow's own "broken data stream" on one of them (djpeg reads it): not this check's
                continue
            read += 1
            errors += [(out.name, i.error) for i in open_input(str(out)) if not isinstance(i, ImageItem)]
    assert read >= 8 and errors == []


W = ('xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
     'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" '
     'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
     'xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture"')
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def report(paragraphs: int) -> bytes:
    """A Word document: one picture shown whole, then cropped by a tenth on the left, then `paragraphs` of text."""
    picture = ('<w:p><w:r><w:drawing><a:graphic><a:graphicData><pic:pic><pic:blipFill><a:blip r:embed="rId5"/>'
               '<a:srcRect l="{}"/></pic:blipFill></pic:pic></a:graphicData></a:graphic></w:drawing></w:r></w:p>')
    text = "<w:p><w:pPr/><w:r><w:rPr/><w:t>finding</w:t></w:r></w:p>" * paragraphs
    body = f'<?xml version="1.0"?><w:document {W}><w:body>{picture.format(0)}{picture.format(10000)}{text}' \
           '</w:body></w:document>'
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/content-types"><Default Extension="png" ContentType="image/png"/><Override '
                   'PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
                   'wordprocessingml.document.main+xml"/></Types>')
        z.writestr("_rels/.rels", f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                   f'relationships"><Relationship Id="rId1" Type="{REL}/officeDocument" Target="word/document.xml"/>'
                   '</Relationships>')
        z.writestr("word/_rels/document.xml.rels", f'<Relationships xmlns="http://schemas.openxmlformats.org/'
                   f'package/2006/relationships"><Relationship Id="rId5" Type="{REL}/image" '
                   'Target="media/image1.png"/></Relationships>')
        z.writestr("word/document.xml", body)
        pic = io.BytesIO()
        Image.new("RGB", (200, 150), (10, 120, 200)).save(pic, "PNG")
        z.writestr("word/media/image1.png", pic.getvalue())
    return buf.getvalue()


@pytest.mark.parametrize("paragraphs", [10, 60_000])
def test_a_long_word_document_s_cropped_picture_is_read_as_shown(tmp_path, paragraphs):
    """The body of a Word document was parsed once for nothing (the slide and sheet lists are read from a show's
    or workbook's main part), spending the caps its crops are then read under: past about 50,000 paragraphs, a
    report's cropped picture was read once, uncropped."""
    path = tmp_path / "report.docx"
    path.write_bytes(report(paragraphs))
    shown = [(i.locator, i.image.size) for i in open_input(str(path)) if isinstance(i, ImageItem)]
    assert shown == [("document body", (200, 150)), ("document body (cropped)", (180, 150))]


@pytest.mark.parametrize("values", [(0, 4096), (0, 256), (0, 256, 512, 768)])
def test_a_sixteen_bit_mask_or_label_image_is_still_stretched(tmp_path, values):
    """A 16-bit mask (0 and 4096) or label image (labels × 256) has all its values multiples of 256, so it was read
    as 8-bit levels widened and reached the model near black (its mask 16 of 255, or 1). So few levels cannot be
    told from a dim 16-bit picture: it is stretched, as before."""
    from medimg.model.preprocess import to_rgb

    a = np.zeros((120, 120), np.uint16)
    for k, v in enumerate(values):
        a[:, k * 120 // len(values):] = v
    Image.fromarray(a).save(tmp_path / "mask.png")
    item = next(iter(open_input(str(tmp_path / "mask.png"))))
    shown = np.asarray(to_rgb(item.image))[60, :, 0]
    assert shown[0] == 0 and shown[-1] == 255
