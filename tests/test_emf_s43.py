"""The bitmaps inside EMF and WMF metafiles: a scan pasted into Word or an RTF report, kept as a metafile whose
records paint a DIB (or, in EMF+, an Image object). Every metafile here is built byte by byte (Pillow writes
neither format off Windows), and so are the .docx, .doc and .rtf around them."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

import builders as b
from medimg.sources import Blob, Context, ImageItem, ItemError, Limits

RNG = np.random.default_rng(43)
SCAN = Image.fromarray(RNG.integers(0, 256, (120, 90, 3), dtype=np.uint8))  # 90 wide, 120 high


def items(data: bytes, name: str, **limits) -> list:
    return list(Context(Limits(**limits)).open_blob(Blob(name, data, name=name)))


def images(got) -> list[ImageItem]:
    return [i for i in got if isinstance(i, ImageItem)]


def same(a: Image.Image, b_: Image.Image) -> bool:
    return a.size == b_.size and np.array_equal(np.asarray(a.convert("RGB")), np.asarray(b_.convert("RGB")))


# ---------------------------------------------------------------- DIBs, by hand

def dib(im: Image.Image, bpp: int = 24, top_down: bool = False, compression: int = 0,
        masks: tuple[int, ...] = ()) -> tuple[bytes, bytes]:
    """A DIB of `im`: (BITMAPINFOHEADER + masks + colours, bits). 1/4/8 bpp use a grey palette of that many
    levels (im is quantised to it); 16 bpp is 5-5-5 (or the masks' 5-6-5); 24 is BGR; 32 is BGRX."""
    w, h = im.size
    if bpp <= 8:
        levels = 1 << bpp
        grey = np.asarray(im.convert("L"), dtype=np.int32) * (levels - 1) // 255
        palette = b"".join(bytes((v * 255 // (levels - 1),) * 3 + (0,)) for v in range(levels))
        rows = []
        for row in grey:
            bits = "".join(format(int(v), f"0{bpp}b") for v in row)
            bits += "0" * (-len(bits) % 32)
            rows.append(int(bits, 2).to_bytes(len(bits) // 8, "big"))
    else:
        palette = b""
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint32)
        r, g, bl = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        if bpp == 16:
            px = ((r >> 3) << 11 | (g >> 2) << 5 | bl >> 3) if masks == (0xF800, 0x7E0, 0x1F) else \
                ((r >> 3) << 10 | (g >> 3) << 5 | bl >> 3)
            raw = px.astype("<u2")
        elif bpp == 24:
            raw = np.stack([bl, g, r], -1).astype(np.uint8)
        else:
            raw = (r << 16 | g << 8 | bl).astype("<u4")
        rows = []
        for row in raw:
            data = row.tobytes()
            rows.append(data + bytes(-len(data) % 4))
    if not top_down:
        rows = rows[::-1]
    header = struct.pack("<IiiHHIIiiII", 40, w, -h if top_down else h, 1, bpp, compression, 0, 2835, 2835,
                         len(palette) // 4, 0)
    return header + b"".join(struct.pack("<I", m) for m in masks) + palette, b"".join(rows)


def dib_of(encoded: bytes, size: tuple[int, int], compression: int) -> tuple[bytes, bytes]:
    """A BI_JPEG (4) or BI_PNG (5) DIB: its header, and the whole file as its bits."""
    return struct.pack("<IiiHHIIiiII", 40, size[0], size[1], 1, 0, compression, len(encoded), 0, 0, 0, 0), encoded


def expected(im: Image.Image, bpp: int) -> Image.Image:
    """What a DIB of `im` at `bpp` holds."""
    if bpp <= 8:
        levels = (1 << bpp) - 1
        return Image.fromarray((np.asarray(im.convert("L"), dtype=np.int32) * levels // 255 * 255 // levels)
                               .astype(np.uint8))
    if bpp == 16:
        return Image.fromarray((np.asarray(im, dtype=np.uint8) >> 3 << 3))
    return im


# ---------------------------------------------------------------- EMF, by hand

def record(rtype: int, body: bytes) -> bytes:
    return struct.pack("<II", rtype, 8 + len(body)) + body


def emf(*records: bytes, eof: bool = True) -> bytes:
    body = b"".join(records) + (record(14, struct.pack("<III", 0, 16, 20)) if eof else b"")
    head = struct.pack("<II4i4i", 1, 108, 0, 0, 1000, 1000, 0, 0, 26458, 26458) + b" EMF" + \
        struct.pack("<IIIHHIIIiiii", 0x10000, 108 + len(body), len(records) + 2, 1, 0, 0, 0, 0, 1024, 768, 320, 240)
    return head + bytes(108 - len(head)) + body


def stretchdibits(bmi_bits: tuple[bytes, bytes], x: int, y: int, w: int, h: int, src=None) -> bytes:
    bmi, bits = bmi_bits
    width, height = struct.unpack_from("<ii", bmi, 4)
    sx, sy, sw, sh = src or (0, 0, width, abs(height))
    fixed = struct.pack("<4i", x, y, x + w, y + h) + struct.pack("<6i6I2i", x, y, sx, sy, sw, sh, 80, len(bmi),
                                                                  80 + len(bmi), len(bits), 0, 0xCC0020, w, h)
    return record(81, fixed + bmi + bits)


def bitblt(bmi_bits: tuple[bytes, bytes], x: int, y: int, w: int, h: int, rtype: int = 76) -> bytes:
    """EMR_BITBLT (76), or with rtype 77 EMR_STRETCHBLT (its source: the whole bitmap)."""
    bmi, bits = bmi_bits
    width, height = struct.unpack_from("<ii", bmi, 4)
    off = 100 if rtype == 76 else 108
    body = struct.pack("<4i", x, y, x + w, y + h) + struct.pack("<4iIii", x, y, w, h, 0xCC0020, 0, 0) + \
        struct.pack("<6f", 1, 0, 0, 1, 0, 0) + struct.pack("<6I", 0xFFFFFF, 0, off, len(bmi), off + len(bmi), len(bits))
    if rtype == 77:
        body += struct.pack("<ii", width, abs(height))
    return record(rtype, body + bmi + bits)


def setdibitstodevice(bmi_bits: tuple[bytes, bytes], x: int, y: int) -> bytes:
    bmi, bits = bmi_bits
    width, height = struct.unpack_from("<ii", bmi, 4)
    fixed = struct.pack("<4i", x, y, x + width, y + abs(height)) + \
        struct.pack("<6i7I", x, y, 0, 0, width, abs(height), 76, len(bmi), 76 + len(bmi), len(bits), 0, 0, abs(height))
    return record(80, fixed + bmi + bits)


def rectangle(x0: int, y0: int, x1: int, y1: int) -> bytes:
    return record(43, struct.pack("<4i", x0, y0, x1, y1))  # EMR_RECTANGLE: a vector record


def map_mode(mode: int) -> bytes:
    return record(17, struct.pack("<I", mode))  # EMR_SETMAPMODE


def emf_plus_image(ident: int, payload: bytes, parts: int = 1) -> list[bytes]:
    """EMF comment records holding an EmfPlusObject of type Image (a compressed bitmap: a PNG or JPEG stream),
    in `parts` continued records."""
    image = struct.pack("<II", 0xDBC01002, 1) + struct.pack("<iiiII", 0, 0, 0, 0, 1) + payload
    step, out = -(-len(image) // parts), []
    for k in range(parts):
        chunk = image[k * step:(k + 1) * step]
        flags = ident | 5 << 8 | (0x8000 if parts > 1 else 0)
        data = (struct.pack("<I", len(image)) if parts > 1 else b"") + chunk
        plus = struct.pack("<HHII", 0x4008, flags, 12 + len(data) + (-len(data) % 4), len(data)) + data
        plus += bytes(-len(data) % 4)
        if k == 0:
            header = struct.pack("<HHIII", 0x4001, 1, 28, 16, 0xDBC01002) + struct.pack("<III", 1, 96, 96)
            plus = header + plus
        out.append(record(70, struct.pack("<I", 4 + len(plus)) + b"EMF+" + plus))
    return out


# ---------------------------------------------------------------- WMF, by hand

def wmf(*records: bytes, placeable: bool = True) -> bytes:
    body = b"".join(records) + struct.pack("<IH", 3, 0)
    head = struct.pack("<HHHIHIH", 1, 9, 0x300, (18 + len(body)) // 2, 0, 0, 0)
    pre = struct.pack("<IH4hHIH", 0x9AC6CDD7, 0, 0, 0, 1000, 1000, 1440, 0, 0) if placeable else b""
    return pre + head + body


def wmf_record(func: int, params: bytes) -> bytes:
    params += bytes(len(params) % 2)
    return struct.pack("<IH", (6 + len(params)) // 2, func) + params


def stretchdib(bmi_bits: tuple[bytes, bytes], x: int, y: int, w: int, h: int) -> bytes:
    bmi, bits = bmi_bits
    width, height = struct.unpack_from("<ii", bmi, 4)
    return wmf_record(0x0F43, struct.pack("<IH8h", 0xCC0020, 0, abs(height), width, 0, 0, h, w, y, x) + bmi + bits)


def dibstretchblt(bmi_bits: tuple[bytes, bytes], x: int, y: int, w: int, h: int) -> bytes:
    bmi, bits = bmi_bits
    width, height = struct.unpack_from("<ii", bmi, 4)
    return wmf_record(0x0B41, struct.pack("<I8h", 0xCC0020, abs(height), width, 0, 0, h, w, y, x) + bmi + bits)


def dibbitblt(bmi_bits: tuple[bytes, bytes], x: int, y: int) -> bytes:
    bmi, bits = bmi_bits
    width, height = struct.unpack_from("<ii", bmi, 4)
    return wmf_record(0x0940, struct.pack("<I6h", 0xCC0020, 0, 0, abs(height), width, y, x) + bmi + bits)


# ---------------------------------------------------------------- tests

def test_an_emf_holding_a_pasted_scan_gives_the_scan_not_a_note():
    data = emf(map_mode(8), rectangle(0, 0, 50, 50), stretchdibits(dib(SCAN), 100, 100, 900, 1200))
    got = items(data, "scan.emf")
    assert len(got) == 1 and isinstance(got[0], ImageItem)
    assert got[0].locator == "emf, bitmap #1" and got[0].format == "EMF/BMP" and same(got[0].image, SCAN)


@pytest.mark.parametrize("bpp,top_down,compression,masks", [
    (1, False, 0, ()), (4, False, 0, ()), (8, False, 0, ()), (8, True, 0, ()), (16, False, 0, ()),
    (16, False, 3, (0xF800, 0x7E0, 0x1F)), (24, True, 0, ()), (32, False, 0, ()),
    (32, False, 3, (0xFF0000, 0xFF00, 0xFF))])
def test_dibs_of_every_depth_and_row_order_are_decoded(bpp, top_down, compression, masks):
    data = emf(stretchdibits(dib(SCAN, bpp, top_down, compression, masks), 0, 0, 90, 120))
    (item,) = items(data, "scan.emf")
    want = expected(SCAN, bpp)
    if masks == (0xF800, 0x7E0, 0x1F):  # 5-6-5: green keeps six bits
        arr = np.asarray(SCAN, dtype=np.uint8)
        want = Image.fromarray(np.stack([arr[..., 0] >> 3 << 3, arr[..., 1] >> 2 << 2, arr[..., 2] >> 3 << 3], -1))
    got = np.asarray(item.image.convert("RGB"), dtype=np.int32)
    assert item.image.size == (90, 120) and np.abs(got - np.asarray(want.convert("RGB"), dtype=np.int32)).max() <= 8


def test_bi_png_and_bi_jpeg_dibs_are_read_as_their_png_and_jpeg():
    png = dib_of(b.encode(SCAN, "PNG"), SCAN.size, 5)
    jpg = dib_of(b.encode(SCAN, "JPEG"), SCAN.size, 4)
    got = items(emf(stretchdibits(png, 0, 0, 90, 120), stretchdibits(jpg, 500, 0, 90, 120)), "two.emf")
    assert [(i.locator, i.format) for i in got] == [("emf, bitmap #1", "EMF/PNG"), ("emf, bitmap #2", "EMF/JPEG")]
    assert same(got[0].image, SCAN)


def test_bitblt_stretchblt_and_setdibitstodevice_records_are_read():
    got = items(emf(bitblt(dib(SCAN), 0, 0, 90, 120), bitblt(dib(SCAN.rotate(90, expand=True)), 500, 0, 120, 90, 77),
                    setdibitstodevice(dib(SCAN.transpose(Image.Transpose.FLIP_LEFT_RIGHT)), 0, 500)), "three.emf")
    assert [i.image.size for i in images(got)] == [(90, 120), (120, 90), (90, 120)]
    assert same(got[2].image, SCAN.transpose(Image.Transpose.FLIP_LEFT_RIGHT))


def test_strips_painted_one_under_another_are_joined_into_one_picture():
    """Windows paints a big pasted picture as bands: three STRETCHDIBITS records whose rectangles abut."""
    strips = [SCAN.crop((0, y, 90, y + 40)) for y in (0, 40, 80)]
    data = emf(*(stretchdibits(dib(s), 10, 10 + 400 * k, 900, 400) for k, s in enumerate(strips)))
    (item,) = items(data, "bands.emf")
    assert item.locator == "emf, bitmap #1" and item.metadata["pieces"] == 3 and same(item.image, SCAN)


def test_tiles_are_joined_and_a_picture_beside_them_is_another():
    tiles = [(x, y, SCAN.crop((x, y, x + 45, y + 60))) for y in (0, 60) for x in (0, 45)]
    other = Image.fromarray(RNG.integers(0, 256, (100, 100, 3), dtype=np.uint8))
    data = emf(*(stretchdibits(dib(t), x * 10, y * 10, 450, 600) for x, y, t in tiles),
               stretchdibits(dib(other), 2000, 0, 1000, 1000))
    first, second = items(data, "tiles.emf")
    assert first.locator == "emf, bitmap #1" and first.metadata["pieces"] == 4 and same(first.image, SCAN)
    assert second.locator == "emf, bitmap #2" and same(second.image, other)


def test_strips_where_y_grows_upwards_are_stacked_the_right_way():
    """In MM_LOMETRIC logical y grows upwards: the first band (the picture's top) has the largest y."""
    strips = [SCAN.crop((0, y, 90, y + 60)) for y in (0, 60)]
    data = emf(map_mode(2), stretchdibits(dib(strips[0]), 0, 600, 900, -600),
               stretchdibits(dib(strips[1]), 0, 0, 900, -600))
    (item,) = items(data, "lometric.emf")
    assert same(item.image, SCAN)


def test_a_part_of_the_bitmap_is_read_as_its_record_shows_it():
    """StretchDIBits may show part of its bitmap: a bottom-up DIB's source y counts from its bottom row."""
    data = emf(stretchdibits(dib(SCAN), 0, 0, 300, 400, src=(30, 0, 30, 40)))
    (item,) = items(data, "part.emf", min_side=16)
    assert same(item.image, SCAN.crop((30, 80, 60, 120)))


def test_small_bitmaps_are_decorations_and_a_join_over_max_pixels_is_read_piece_by_piece():
    logo = SCAN.resize((30, 20))
    got = items(emf(stretchdibits(dib(logo), 0, 0, 300, 200)), "logo.emf")
    assert len(got) == 1 and got[0].skipped and got[0].error == "decoration: 30x20 is below min_side 64"
    strips = [SCAN.crop((0, y, 90, y + 60)) for y in (0, 60)]
    data = emf(*(stretchdibits(dib(s), 0, 600 * k, 900, 600) for k, s in enumerate(strips)))
    got = items(data, "bands.emf", max_pixels=9000, min_side=32)
    assert got[0].skipped and "2 bitmaps painted side by side would join to 90×120 pixels, over" in got[0].error
    assert [(i.locator, i.image.size) for i in images(got)] == [("emf, bitmap #1, piece 1", (90, 60)),
                                                               ("emf, bitmap #1, piece 2", (90, 60))]


def test_a_metafile_with_only_vector_records_stays_a_note():
    for data, kind in ((emf(map_mode(8), rectangle(0, 0, 90, 90)), "EMF"),
                       (wmf(wmf_record(0x041B, struct.pack("<4h", 0, 0, 90, 90))), "WMF")):
        (note,) = items(data, "chart." + kind.lower())
        assert note.skipped and note.error == f"{kind} is not drawn (a Windows metafile: vector drawing skipped)"


def test_wmf_records_holding_a_dib_are_read():
    data = wmf(stretchdib(dib(SCAN), 0, 0, 900, 1200), dibstretchblt(dib(SCAN, 8), 1000, 0, 900, 1200),
               dibbitblt(dib(SCAN, 4), 2000, 0))
    got = items(data, "scan.wmf")
    assert [(i.locator, i.format) for i in got] == [("wmf, bitmap #1", "WMF/BMP"), ("wmf, bitmap #2", "WMF/BMP"),
                                                   ("wmf, bitmap #3", "WMF/BMP")]
    assert same(got[0].image, SCAN) and same(got[1].image, expected(SCAN, 8))
    bare = wmf(stretchdib(dib(SCAN), 0, 0, 900, 1200), placeable=False)  # as `\wmetafile8` keeps it
    assert same(items(bare, "scan.wmf")[0].image, SCAN)


def test_emf_plus_images_are_read_and_the_gdi_copy_is_left_out():
    png = b.encode(SCAN, "PNG")
    data = emf(*emf_plus_image(0, png, parts=3), stretchdibits(dib(SCAN.resize((45, 60))), 0, 0, 450, 600))
    (item,) = items(data, "plus.emf")
    assert item.locator == "emf+, bitmap #1" and item.format == "EMF+/PNG" and same(item.image, SCAN)


@pytest.mark.parametrize("damage", ["zero", "past the end", "huge"])
def test_records_of_a_wrong_size_end_the_reading_without_a_hang(damage):
    size = {"zero": 0, "past the end": 1 << 20, "huge": 0xFFFFFFF0}[damage]
    bad = struct.pack("<II", 43, size) + bytes(16)
    data = emf(stretchdibits(dib(SCAN), 0, 0, 900, 1200), bad, stretchdibits(dib(SCAN), 1000, 0, 900, 1200),
               eof=False)
    start = time.monotonic()
    got = items(data, "cut.emf")
    assert time.monotonic() - start < 5
    assert [i.locator for i in images(got)] == ["emf, bitmap #1"]
    assert got[-1].error.startswith("EMF read in part: a record at byte ") and not got[-1].skipped
    wmf_bad = wmf(stretchdib(dib(SCAN), 0, 0, 900, 1200)) [:-6] + struct.pack("<IH", 0, 0x0F43)
    assert len(images(items(wmf_bad, "cut.wmf"))) == 1
    assert items(emf(bad, eof=False), "vector.emf")[0].skipped  # no bitmap before the damage: the note


def test_a_bitmap_past_its_record_or_over_max_pixels_is_an_error_not_a_crash():
    bmi, bits = dib(SCAN)
    rec = bytearray(stretchdibits((bmi, bits), 0, 0, 90, 120))
    struct.pack_into("<I", rec, 60, len(bits) + 4096)  # cbBitsSrc past the record's end
    (err,) = items(emf(bytes(rec)), "bad.emf")
    assert isinstance(err, ItemError) and err.locator == "emf, bitmap #1" and "past the end" in err.error
    (err,) = items(emf(stretchdibits((bmi, bits), 0, 0, 90, 120)), "big.emf", max_pixels=5000)
    assert isinstance(err, ItemError) and "max_pixels" in err.error and not err.skipped


# ---------------------------------------------------------------- in documents

R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def rels(*rs) -> bytes:
    out = "".join(f'<Relationship Id="{rid}" Type="{R}/{kind}" Target="{target}"/>' for rid, kind, target in rs)
    return (f'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            f'relationships">{out}</Relationships>').encode()


def test_a_docx_with_a_scan_pasted_as_emf_gives_the_scan():
    w = (f'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:r="{R}" '
         'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"')
    blip = ('<w:p><w:r><w:drawing><pic:pic xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture">'
            '<pic:blipFill><a:blip r:embed="rId5"/></pic:blipFill></pic:pic></w:drawing></w:r></w:p>')
    strips = [SCAN.crop((0, y, 90, y + 40)) for y in (0, 40, 80)]
    parts = {"[Content_Types].xml": b"<Types/>", "_rels/.rels": rels(("rId1", "officeDocument", "word/document.xml")),
             "word/document.xml": f"<w:document {w}><w:body>{blip}</w:body></w:document>".encode(),
             "word/_rels/document.xml.rels": rels(("rId5", "image", "media/image1.emf")),
             "word/media/image1.emf": emf(*(stretchdibits(dib(s), 0, 400 * k, 900, 400) for k, s in enumerate(strips)))}
    got = items(b.zip_bytes(parts), "report.docx")
    (item,) = images(got)
    assert (item.origin, item.locator) == ("report.docx:word/media/image1.emf", "document body, emf, bitmap #1")
    assert same(item.image, SCAN)


def test_an_rtf_report_with_a_scan_kept_as_a_wmf_gives_the_scan():
    """`\\wmetafile8` alone (no `\\shppict` PNG beside it), as report generators write; Word's copy for older
    readers (`\\nonshppict`) is still left out."""
    scan = wmf(stretchdib(dib(SCAN), 0, 0, 900, 1200), placeable=False).hex().encode()
    copy = wmf(stretchdib(dib(SCAN.resize((45, 60))), 0, 0, 900, 1200), placeable=False).hex().encode()
    vector = wmf(wmf_record(0x041B, struct.pack("<4h", 0, 0, 90, 90)), placeable=False).hex().encode()
    rtf = (b"{\\rtf1\\ansi Findings\\par {\\pict\\wmetafile8\\picw3175\\pich2381 " + scan + b"}\\par "
           b"{\\nonshppict{\\pict\\wmetafile8 " + copy + b"}}{\\pict\\wmetafile8 " + vector + b"}}")
    got = items(rtf, "report.rtf")
    (item,) = images(got)
    assert (item.origin, item.locator) == ("report.rtf:picture-1.wmf", "wmf, bitmap #1") and same(item.image, SCAN)
    assert got[-1].error == ("RTF document: its text left out; 1 WMF copy of its pictures for older readers left "
                             "out; 1 drawing (EMF/WMF/PICT) not drawn")


def test_an_rtf_dib_with_bitfields_is_read_in_its_colours():
    """A 16-bit 5-6-5 DIB (`\\dibitmap`): its three masks lie between header and bits, which the file header
    made for it must count (they were read as pixels, the picture shifted by six)."""
    bmi, bits = dib(SCAN, 16, compression=3, masks=(0xF800, 0x7E0, 0x1F))
    got = items(b"{\\rtf1 {\\pict\\dibitmap0 " + (bmi + bits).hex().encode() + b"}}", "report.rtf")
    arr = np.asarray(SCAN, dtype=np.uint8)
    want = np.stack([arr[..., 0] >> 3 << 3, arr[..., 1] >> 2 << 2, arr[..., 2] >> 3 << 3], -1)
    (item,) = images(got)
    assert np.abs(np.asarray(item.image, dtype=np.int32) - want).max() <= 8


def metafile_blip(drawing: bytes, kind: str) -> bytes:
    """An OfficeArt metafile BLIP (MS-ODRAW OfficeArtBlipEMF/WMF): one UID, the 34-byte metafile header, the
    drawing deflated."""
    rec_type, instance = {"emf": (0xF01A, 0x3D4), "wmf": (0xF01B, 0x216)}[kind]
    packed = zlib.compress(drawing)
    body = bytes(range(16)) + struct.pack("<I4i2iIBB", len(drawing), 0, 0, 100, 100, 100, 100, len(packed), 0,
                                          0xFE) + packed
    return (instance << 4).to_bytes(2, "little") + rec_type.to_bytes(2, "little") + len(body).to_bytes(4, "little") + body


def test_a_word_97_document_with_a_scan_kept_as_a_metafile_gives_the_scan():
    data = b"\x44\x00\x00\x00" + bytes(60) + metafile_blip(emf(stretchdibits(dib(SCAN), 0, 0, 900, 1200)), "emf") + \
        metafile_blip(wmf(wmf_record(0x041B, struct.pack("<4h", 0, 0, 9, 9)), placeable=False), "wmf") + bytes(30)
    doc = b.compound_file({"WordDocument": b"\x00" * 600, "1Table": b"\x00" * 100, "Data": data})
    got = items(doc, "letter.doc")
    (item,) = images(got)
    assert (item.origin, item.locator) == ("letter.doc:picture-1.emf", "emf, bitmap #1") and same(item.image, SCAN)
    assert got[-1].error == "Word 97–2003 document: its text left out; 1 drawing (EMF/WMF/PICT) not drawn"


def test_a_bmp_made_by_the_dib_helper_is_what_pillow_reads():
    """dib() here writes what Windows writes: Pillow's own BMP of the same picture has the same bits."""
    buf = io.BytesIO()
    SCAN.save(buf, "BMP")
    assert buf.getvalue()[54:] == dib(SCAN)[1]


def test_emf_plus_raw_pixels_are_read_and_an_image_defined_again_is_one_picture():
    argb = SCAN.convert("RGBA")
    r, g, b_, a = argb.split()
    raw = Image.merge("RGBA", (b_, g, r, a)).tobytes()  # PixelFormat32bppARGB: B, G, R, A in memory
    image = struct.pack("<II", 0xDBC01002, 1) + struct.pack("<iiiII", 90, 120, 360, 0x0026200A, 0) + raw
    plus = struct.pack("<HHII", 0x4008, 1 | 5 << 8, 12 + len(image), len(image)) + image
    comment = record(70, struct.pack("<I", 4 + len(plus)) + b"EMF+" + plus)
    (item,) = items(emf(comment, comment), "pixels.emf")
    assert item.locator == "emf+, bitmap #1" and same(item.image, SCAN)


def test_a_drawing_inside_a_bitmap_record_is_not_opened_in_turn():
    """A BI_PNG DIB whose bits are another metafile (nested without end in a crafted file) is not recursed into."""
    inner = emf(stretchdibits(dib(SCAN), 0, 0, 900, 1200))
    for _ in range(3):
        inner = emf(stretchdibits(dib_of(inner, (90, 120), 5), 0, 0, 900, 1200))
    (note,) = items(inner, "nested.emf")
    assert note.skipped and note.error == "skipped: a drawing within the drawing"


def test_a_grey_strip_then_a_colour_one_join_in_colour():
    top, bottom = SCAN.crop((0, 0, 90, 60)).convert("L").convert("RGB"), SCAN.crop((0, 60, 90, 120))
    data = emf(stretchdibits(dib(top, 8), 0, 0, 900, 600), stretchdibits(dib(bottom), 0, 600, 900, 600))
    (item,) = items(data, "mixed.emf")
    assert item.image.mode == "RGB" and same(item.image.crop((0, 60, 90, 120)), bottom)


def test_abutting_bitmaps_of_far_apart_resolutions_are_read_one_by_one():
    sharp, coarse = SCAN.crop((0, 0, 90, 60)), SCAN.crop((0, 60, 90, 120)).resize((30, 20))
    data = emf(stretchdibits(dib(sharp), 0, 0, 900, 600), stretchdibits(dib(coarse), 0, 600, 900, 600))
    got = items(data, "two.emf", min_side=16)
    assert got[0].skipped and got[0].error == "2 bitmaps painted side by side are not of one resolution; read one by one"
    assert [(i.locator, i.image.size) for i in images(got)] == [("emf, bitmap #1, piece 1", (90, 60)),
                                                               ("emf, bitmap #1, piece 2", (30, 20))]
