"""Camera RAW files (session 43): each gives the largest JPEG preview the camera embedded, upright by the RAW's own
Orientation; the sensor data (CFA, lossless JPEG) is never taken for a picture. Files are built here byte by byte."""

from __future__ import annotations

import io
import struct
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

import builders as b
from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input
from medimg.sources.camera_raw import NO_DNG_PREVIEW, NO_PREVIEW


def items(data: bytes, name: str, **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def jpeg(size: tuple[int, int], seed: int = 0, **params) -> bytes:
    return b.encode(b.pattern(size, seed=seed), "JPEG", quality=90, **params)


class Tiff:
    """A little-endian TIFF-like file written piece by piece: data first, each IFD after what it points to."""

    def __init__(self, magic: bytes = b"II*\x00", head: bytes = b""):
        self.buf = bytearray(magic + b"\0\0\0\0" + head)

    def put(self, data: bytes) -> int:
        self.buf += b"\0" * (len(self.buf) % 2)
        at = len(self.buf)
        self.buf += data
        return at

    def ifd(self, entries: dict[int, tuple[int, object]], next_ifd: int = 0) -> int:
        """entries: tag → (type, ints or bytes, or (offset, count) of bytes put already). Values over 4 bytes are
        put before the IFD."""
        packed = []
        for tag in sorted(entries):
            typ, value = entries[tag]
            if isinstance(value, tuple):
                packed.append(struct.pack("<HHII", tag, typ, value[1], value[0]))
                continue
            raw = value if isinstance(value, bytes) else struct.pack(f"<{len(value)}{'H' if typ == 3 else 'I'}",
                                                                    *value)
            count = len(raw) // (2 if typ == 3 else 4 if typ in (4, 13) else 1)
            field = raw.ljust(4, b"\0") if len(raw) <= 4 else struct.pack("<I", self.put(raw))
            packed.append(struct.pack("<HHI", tag, typ, count) + field)
        return self.put(struct.pack("<H", len(packed)) + b"".join(packed) + struct.pack("<I", next_ifd))

    def done(self, first: int) -> bytes:
        self.buf[4:8] = struct.pack("<I", first)
        return bytes(self.buf)


def cfa(t: Tiff, more: dict | None = None, w: int = 32, h: int = 24) -> dict:
    """A raw CFA image's entries (16-bit Bayer samples)."""
    at = t.put(bytes(w * h * 2))
    return {254: (4, [0]), 256: (4, [w]), 257: (4, [h]), 258: (3, [16]), 259: (3, [1]), 262: (3, [32803]),
            273: (4, [at]), 277: (3, [1]), 278: (4, [h]), 279: (4, [w * h * 2]), 33421: (3, [2, 2]),
            33422: (1, bytes([0, 1, 1, 2])), **(more or {})}


def jpeg_ifd(t: Tiff, data: bytes, size: tuple[int, int], compression: int = 7) -> int:
    at = t.put(data)
    return t.ifd({254: (4, [1]), 256: (4, [size[0]]), 257: (4, [size[1]]), 258: (3, [8, 8, 8]),
                  259: (3, [compression]), 262: (3, [6]), 273: (4, [at]), 277: (3, [3]), 278: (4, [size[1]]),
                  279: (4, [len(data)])})


def dng(preview_size=(200, 120), orientation: int = 1, preview: bytes | None = None) -> bytes:
    """A DNG as cameras write one: IFD0 the raw CFA data, a SubIFD holding a JPEG preview."""
    t = Tiff()
    sub = jpeg_ifd(t, preview or jpeg(preview_size), preview_size) if preview_size else None
    extra = {330: (4, [sub])} if sub else {}
    ifd0 = t.ifd(cfa(t, {50706: (1, bytes([1, 4, 0, 0])), 271: (2, b"Leica\0"), 274: (3, [orientation]),
                           **extra}))
    return t.done(ifd0)


def test_a_dng_whose_first_image_is_raw_gives_its_preview_upright():
    """Before: `TIFF layout not supported: photometric CFA`. Now the SubIFD's JPEG preview, turned by IFD0's
    Orientation (6: 90° clockwise), the CFA data never decoded."""
    (item,) = items(dng((200, 120), orientation=6), "IMG_0001.DNG")
    assert isinstance(item, ImageItem), item
    assert item.format == "DNG" and item.image.size == (120, 200)
    assert "embedded preview" in item.metadata["note"]
    expected = b.pattern((200, 120)).transpose(Image.Transpose.ROTATE_270)
    assert np.abs(np.asarray(item.image, float) - np.asarray(expected, float)).mean() < 8


def test_the_raw_files_orientation_wins_over_the_previews_own_once():
    """A preview carrying its own EXIF Orientation (6, as the RAW's): turned once, not twice; and when they
    differ, the RAW's tag is the one applied."""
    exif = Image.Exif()
    exif[0x0112] = 6
    own = jpeg((200, 120), exif=exif.tobytes())
    (item,) = items(dng((200, 120), orientation=6, preview=own), "a.dng")
    assert isinstance(item, ImageItem) and item.image.size == (120, 200), item
    (item,) = items(dng((200, 120), orientation=1, preview=own), "a.dng")
    assert isinstance(item, ImageItem) and item.image.size == (200, 120), item


def test_a_raw_without_a_preview_says_so():
    (item,) = items(dng(None), "raw.dng")
    assert isinstance(item, ItemError) and not item.skipped
    assert item.error.startswith(NO_DNG_PREVIEW), item.error
    # a thumbnail under min_side is no preview either, and is named
    (item,) = items(dng((48, 32)), "raw.dng")
    assert isinstance(item, ItemError) and NO_DNG_PREVIEW in item.error and "48×32 thumbnail" in item.error, item


def test_a_preview_over_max_pixels_is_not_decoded():
    (item,) = items(dng((200, 120)), "a.dng", max_pixels=100 * 100)
    assert isinstance(item, ItemError) and "200×120" in item.error and "max_pixels" in item.error, item


def nef() -> bytes:
    """As a Nikon NEF: IFD0 a small uncompressed RGB thumbnail, SubIFD 0 the full preview by
    JPEGInterchangeFormat, SubIFD 1 the raw data (Nikon's compression)."""
    t = Tiff()
    full = jpeg((240, 160), seed=1)
    at = t.put(full)
    preview = t.ifd({254: (4, [1]), 259: (3, [6]), 513: (4, [at]), 514: (4, [len(full)])})
    raw = t.ifd(cfa(t, {259: (3, [34713])}))
    pixels = t.put(bytes(80 * 60 * 3))
    ifd0 = t.ifd({254: (4, [1]), 256: (4, [80]), 257: (4, [60]), 258: (3, [8, 8, 8]), 259: (3, [1]),
                  262: (3, [2]), 271: (2, b"NIKON CORPORATION\0"), 273: (4, [pixels]), 277: (3, [3]),
                  278: (4, [60]), 279: (4, [80 * 60 * 3]), 330: (4, [preview, raw])})
    return t.done(ifd0)


def test_a_nef_gives_its_largest_preview_not_its_thumbnail():
    """Before: Pillow read IFD0, the 80×60 thumbnail. Now the 240×160 preview of SubIFD 0; read without a
    name too (its SubIFD's CFA data says RAW)."""
    for name in ("DSC_0001.NEF", "upload"):
        (item,) = items(nef(), name)
        assert isinstance(item, ImageItem) and item.image.size == (240, 160), (name, item)
    assert item.format == "RAW"
    # with only the thumbnail over min_side, the thumbnail (uncompressed RGB) is what it shows
    t = Tiff()
    rgb = (np.arange(120 * 90 * 3) % 251).astype(np.uint8).tobytes()
    pixels = t.put(rgb)
    ifd0 = t.ifd({256: (4, [120]), 257: (4, [90]), 258: (3, [8, 8, 8]), 259: (3, [1]), 262: (3, [2]),
                  273: (4, [pixels]), 277: (3, [3]), 278: (4, [90]), 279: (4, [120 * 90 * 3]), 274: (3, [8]),
                  330: (4, [t.ifd(cfa(t))])})
    (item,) = items(t.done(ifd0), "b.nef")
    assert isinstance(item, ImageItem) and item.image.size == (90, 120) and item.format == "NEF", item
    expected = Image.frombytes("RGB", (120, 90), rgb)
    assert np.array_equal(np.asarray(item.image), np.asarray(expected.transpose(Image.Transpose.ROTATE_90)))


def lossless_jpeg(w: int, h: int) -> bytes:
    """The start of a lossless (SOF3) JPEG: how a CR2 or DNG stores its raw data."""
    return (b"\xff\xd8\xff\xc3" + struct.pack(">HBHHB", 14, 14, h, w, 2) + b"\x01\x11\x00\x02\x11\x00"
            + b"\xff\xda" + bytes(64))


def test_a_cr2_gives_its_ifd0_jpeg_and_never_its_lossless_raw_data():
    """As a Canon CR2: "CR" at byte 8, IFD0 the full JPEG as an old-style JPEG strip, IFD1 a thumbnail, IFD3
    the raw data as one lossless JPEG, larger than the preview: never decoded."""
    t = Tiff(head=b"CR\x02\x00\x00\x00\x00\x00")
    raw = lossless_jpeg(4000, 3000)
    at = t.put(raw)
    ifd3 = t.ifd({259: (3, [6]), 273: (4, [at]), 279: (4, [len(raw)])})
    thumb = jpeg((160, 120))
    at = t.put(thumb)
    ifd1 = t.ifd({259: (3, [6]), 513: (4, [at]), 514: (4, [len(thumb)])}, next_ifd=ifd3)
    full = jpeg((320, 200), seed=2)
    at = t.put(full)
    ifd0 = t.ifd({256: (3, [320]), 257: (3, [200]), 259: (3, [6]), 271: (2, b"Canon\0"), 273: (4, [at]),
                  274: (3, [3]), 279: (4, [len(full)])}, next_ifd=ifd1)
    (item,) = items(t.done(ifd0), "IMG_1.CR2")
    assert isinstance(item, ImageItem) and item.format == "CR2" and item.image.size == (320, 200), item
    expected = b.pattern((320, 200), seed=2).rotate(180)
    assert np.abs(np.asarray(item.image, float) - np.asarray(expected, float)).mean() < 8


def test_an_orf_preview_in_its_maker_note_and_an_rw2_jpeg_tag():
    """Olympus keeps its preview in the MakerNote's CameraSettings IFD (offsets from the note's start);
    Panasonic's RW2 ("IIU") its JpgFromRaw as the value of IFD0's tag 0x2E."""
    t = Tiff(magic=b"IIRO")
    full = jpeg((256, 192), seed=3)
    note = bytearray(b"OLYMPUS\x00II\x03\x00")  # its IFD at 12, offsets from the note's start
    settings_at = 12 + 2 + 12 + 4
    note += struct.pack("<HHHII", 1, 0x2020, 13, 1, settings_at) + b"\0\0\0\0"
    note += struct.pack("<H", 2)  # CameraSettings: PreviewImageStart, PreviewImageLength (from the note's start)
    after = settings_at + 2 + 24 + 4  # the JPEG right after the note
    note += struct.pack("<HHII", 0x0101, 4, 1, after) + struct.pack("<HHII", 0x0102, 4, 1, len(full)) + bytes(4)
    assert len(note) == after
    note_at = t.put(bytes(note))
    assert t.put(full) == note_at + after
    exif = t.ifd({37500: (7, (note_at, len(note)))})
    exif_ifd = t.ifd({34665: (4, [exif])})
    raw = t.ifd(cfa(t, {34665: (4, [exif_ifd])}))
    (item,) = items(t.done(raw), "P1.ORF")
    assert isinstance(item, ImageItem) and item.format == "ORF" and item.image.size == (256, 192), item

    t = Tiff(magic=b"IIU\x00")
    ifd0 = t.ifd({2: (4, [64]), 0x2E: (7, jpeg((300, 200), seed=4)), 274: (3, [1])})
    (item,) = items(t.done(ifd0), "P1.RW2")
    assert isinstance(item, ImageItem) and item.format == "RW2" and item.image.size == (300, 200), item


def test_a_nikon_maker_notes_preview_ifd_is_read_from_its_own_tiff_header():
    """A Nikon MakerNote holds a TIFF header of its own (after `Nikon\\0` and a version); its PreviewIFD (0x0011)
    and the preview's offset count from that header, not the file's."""
    inner = Tiff()
    full = jpeg((200, 150), seed=8)
    at = inner.put(full)
    preview = inner.ifd({513: (4, [at]), 514: (4, [len(full)])})
    note = b"Nikon\x00\x02\x10\x00\x00" + inner.done(inner.ifd({0x0011: (13, [preview])}))
    t = Tiff()
    exif = t.ifd({37500: (7, note)})
    (item,) = items(t.done(t.ifd(cfa(t, {34665: (4, [exif])}))), "DSC_0002.NEF")
    assert isinstance(item, ImageItem) and item.format == "NEF" and item.image.size == (200, 150), item


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


CANON_UUID = bytes.fromhex("85c0b687820f11e08111f4ce462b6a48")
PREVIEW_UUID = bytes.fromhex("eaf42b5e1c984b88b9fbb7dc406e4d16")


def cr3(track: bytes | None = None) -> bytes:
    """As a Canon CR3: ftyp `crx `, moov holding Canon's uuid box (CMT1: IFD0 with Orientation 8; THMB) and
    maybe a track whose first sample is a JPEG, a uuid box holding PRVW, then mdat."""
    cmt1 = Tiff()
    cmt1 = cmt1.done(cmt1.ifd({271: (2, b"Canon\0"), 274: (3, [8])}))
    thmb = box(b"THMB", struct.pack(">BBHHHIHH", 0, 0, 0, 160, 120, 0, 1, 0) + jpeg((160, 120)))
    prvw_jpeg = jpeg((320, 212), seed=5)
    prvw = box(b"PRVW", struct.pack(">IHHHHI", 0, 1, 320, 212, 1, len(prvw_jpeg)) + prvw_jpeg)
    ftyp = box(b"ftyp", b"crx \x00\x00\x00\x01crx isom")
    canon = box(b"uuid", CANON_UUID + box(b"CNCV", b"CanonCR3_001/00.09.00/00.00.00") + box(b"CMT1", cmt1) + thmb)

    def moov(mdat_at: int) -> bytes:
        traks = b""
        if track is not None:
            stbl = box(b"stbl", box(b"stsz", struct.pack(">IIII", 0, 0, 1, len(track)))
                       + box(b"co64", struct.pack(">IIQ", 0, 1, mdat_at + 8)))
            traks = box(b"trak", box(b"mdia", box(b"minf", stbl)))
        return box(b"moov", canon + traks)

    preview = box(b"uuid", PREVIEW_UUID + bytes(7) + b"\x01" + prvw)
    head = len(ftyp) + len(moov(0)) + len(preview)
    return ftyp + moov(head) + preview + box(b"mdat", track or b"")


def test_a_cr3_gives_its_prvw_preview_upright_not_a_video_error():
    """Before: a CR3 (ISO BMFF, brand `crx `) went to the video reader. Now its PRVW JPEG (the THMB thumbnail is
    smaller), turned by CMT1's Orientation 8 (90° anticlockwise); with a track whose first sample is a
    larger JPEG (the full-size one), that one."""
    (item,) = items(cr3(), "IMG_0001.CR3")
    assert isinstance(item, ImageItem) and item.format == "CR3" and item.image.size == (212, 320), item
    expected = b.pattern((320, 212), seed=5).transpose(Image.Transpose.ROTATE_90)
    assert np.abs(np.asarray(item.image, float) - np.asarray(expected, float)).mean() < 8
    (item,) = items(cr3(track=jpeg((480, 320), seed=6)), "IMG_0002.CR3")
    assert isinstance(item, ImageItem) and item.image.size == (320, 480), item


def raf(preview: bytes) -> bytes:
    """As a Fujifilm RAF: its header, then the JPEG at the offset (byte 84) and length (byte 88) it gives."""
    head = b"FUJIFILMCCD-RAW 0201FF383501" + b"X-T3".ljust(32, b"\0") + b"0100" + bytes(20)
    head += struct.pack(">IIIIII", 108, len(preview), 0, 0, 0, 0)
    return head + preview + bytes(256)


def test_a_raf_gives_the_jpeg_its_header_points_to_turned_by_its_exif():
    """Before: `unrecognised content`. Now the JPEG, upright by its own EXIF (a RAF's orientation is there)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    (item,) = items(raf(jpeg((300, 200), seed=7, exif=exif.tobytes())), "DSCF0001.RAF")
    assert isinstance(item, ImageItem) and item.format == "RAF" and item.image.size == (200, 300), item
    (item,) = items(raf(b"not a jpeg at all"), "DSCF0002.RAF")
    assert isinstance(item, ItemError) and item.error.startswith(NO_PREVIEW), item


def test_loops_and_lies_in_the_ifds_end_quickly():
    """An IFD chain that comes back to itself, SubIFDs naming their own IFD, offsets and lengths past the end of
    the file, and a preview cut short: each a bounded read and an item, never a hang or a crash."""
    t = Tiff()
    ifd0_at = len(t.buf)  # IFD0 will be written first: its next IFD and SubIFDs point at itself
    entries = {254: (4, [0]), 50706: (1, bytes([1, 4, 0, 0])), 513: (4, [10 ** 9]), 514: (4, [500]),
               330: (4, [ifd0_at]), 34665: (4, [0xFFFFFFF0])}
    assert t.ifd(entries, next_ifd=ifd0_at) == ifd0_at
    start = time.monotonic()
    (item,) = items(t.done(ifd0_at), "loop.dng")
    assert isinstance(item, ItemError) and item.error.startswith(NO_DNG_PREVIEW), item
    cut = dng((200, 120))
    sub = cut.find(b"\xff\xd8\xff")
    (item,) = items(cut[:sub + 600], "cut.dng")
    assert isinstance(item, ItemError), item
    assert time.monotonic() - start < 5


def test_plain_tiffs_and_heic_are_not_taken_for_raw():
    """A camera's ordinary TIFF (Make set, RGB) is still read as a TIFF, an MP4 as a video, not as RAW."""
    img = b.pattern((96, 64))
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[271] = "NIKON CORPORATION"
    img.save(buf, "TIFF", exif=exif)
    (item,) = items(buf.getvalue(), "scan.tif")
    assert isinstance(item, ImageItem) and item.format == "TIFF" and item.image.size == (96, 64), item
    upright = ImageOps.exif_transpose(img)
    assert np.array_equal(np.asarray(item.image), np.asarray(upright))


def test_raw_names_promise_an_image_in_a_folder_and_on_a_page(tmp_path):
    # session 44: a damaged .nef in a folder was a skipped note ("not an image"), and a page's links to RAW
    # files were not followed; a RAW name now says image, as .tif does
    from medimg.sources import web_page
    (tmp_path / "shoot").mkdir()
    (tmp_path / "shoot" / "broken.nef").write_bytes(b"cut off in a copy" * 4)
    (tmp_path / "shoot" / "good.dng").write_bytes(dng())
    (tmp_path / "shoot" / "notes.xyz").write_bytes(b"cut off in a copy" * 4)
    got = {Path(i.origin).name: i for i in open_input(tmp_path / "shoot")}
    assert isinstance(got["broken.nef"], ItemError) and not got["broken.nef"].skipped
    assert "named NEF" in got["broken.nef"].error
    assert isinstance(got["good.dng"], ImageItem)
    assert got["notes.xyz"].skipped
    page = '<a href="raw/IMG_0001.CR2">IMG_0001</a> <a href="raw/DSC_0002.nef">DSC_0002</a> <a href="a.srf">x</a>'
    urls = [c.url for c in web_page.extract(page, "https://example.org/shoot/")]
    assert urls == ["https://example.org/shoot/raw/IMG_0001.CR2", "https://example.org/shoot/raw/DSC_0002.nef"]
