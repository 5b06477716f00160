"""Real test inputs made on the spot: images of every format, crafted bombs, zips, DICOM files.

Other test modules import these; keep the names and signatures stable.
"""

from __future__ import annotations

import io
import random
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = [(220, 30, 30), (30, 180, 40), (40, 60, 220), (240, 200, 20), (200, 40, 200)]


def pattern(size: tuple[int, int] = (64, 48), mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A picture with structure (gradient plus noise), so truncation and rotation are visible."""
    w, h = size
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, w)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h)[:, None].repeat(w, 1)
    rgb = np.stack([x, y, 255 - x], -1) + rng.integers(0, 40, (h, w, 3))
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    if mode == "RGBA":
        img.putalpha(Image.fromarray(y.astype(np.uint8), "L"))
    elif mode != "RGB":
        img = img.convert(mode)
    return img


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48), mode: str = "RGB", **params) -> bytes:
    """One image in `fmt` (any format Pillow or pillow-heif can write: PNG, JPEG, GIF, BMP, TIFF, WEBP,
    ICO, AVIF, HEIF, JPEG2000)."""
    if fmt == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
    return encode(pattern(size, mode), fmt, **params)


def blocks_jpeg(seed: int, size: tuple[int, int] = (300, 200)) -> bytes:
    """A picture of its own per seed (random colour blocks, smoothed), at `size`."""
    rnd = random.Random(seed)
    small = Image.new("RGB", (16, 12))
    small.putdata([(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)) for _ in range(16 * 12)])
    buf = io.BytesIO()
    small.resize(size, Image.BILINEAR).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def animated_gif(frames: int = 3, size: tuple[int, int] = (32, 24)) -> bytes:
    """Each frame one flat colour from COLOURS, in order."""
    imgs = [Image.new("RGB", size, COLOURS[i % len(COLOURS)]) for i in range(frames)]
    return encode(imgs[0], "GIF", save_all=True, append_images=imgs[1:], duration=100, loop=0)


def multipage_tiff(sizes: list[tuple[int, int]] = ((40, 30), (50, 20), (16, 16))) -> bytes:
    """One page per size, each a flat colour from COLOURS."""
    imgs = [Image.new("RGB", s, COLOURS[i % len(COLOURS)]) for i, s in enumerate(sizes)]
    return encode(imgs[0], "TIFF", save_all=True, append_images=imgs[1:])


def jpeg_with_orientation(size: tuple[int, int] = (60, 40), orientation: int = 6) -> bytes:
    """A JPEG stored `size` wide whose EXIF says to show it rotated."""
    img = pattern(size)
    exif = img.getexif()
    exif[0x0112] = orientation
    return encode(img, "JPEG", exif=exif.tobytes())


def png_declaring(width: int, height: int) -> bytes:
    """A tiny real PNG whose IHDR is patched to declare width × height (CRC fixed): a pixel bomb."""
    data = bytearray(image_bytes("PNG", (4, 4)))
    ihdr = 8  # after the signature: length(4) type(4) data(13) crc(4)
    data[ihdr + 8:ihdr + 16] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr + 4:ihdr + 21])) & 0xFFFFFFFF
    data[ihdr + 21:ihdr + 25] = struct.pack(">I", crc)
    return bytes(data)


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]


def damaged(clean: bytes, seed: int, n: int, start: int = 8, cut_every: int = 2, flips=(1, 10, 100)):
    """`n` damaged copies of `clean`: every `cut_every`-th one cut short, the others with random bytes
    overwritten, never before offset `start` (so the format's magic survives and its reader is the one tried)."""
    rng = random.Random(seed)
    for k in range(n):
        data = bytearray(clean)
        if k % cut_every == 0:
            data = data[:rng.randrange(start, len(data))]
        else:
            for _ in range(rng.choice(flips)):
                data[rng.randrange(start, len(data))] = rng.randrange(256)
        yield k, bytes(data)


def assert_clear(items) -> None:
    """What a damaged input must give: at least one item, each an image or an error that says something."""
    from medimg.sources import ImageItem, ItemError
    assert items and all(isinstance(i, (ImageItem, ItemError)) for i in items), items
    assert all(i.error for i in items if isinstance(i, ItemError))


SVG = b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">' \
      b'<rect width="10" height="10" fill="red"/></svg>\n'


# ---------------------------------------------------------------- zips


def zip_bytes(members, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of (name, bytes) pairs or a {name: bytes} dict; names are kept as given, unsafe ones too."""
    items = members.items() if isinstance(members, dict) else members
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in items:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = compression
            zf.writestr(info, data)
    return buf.getvalue()


def tgz_bytes(members) -> bytes:
    """A gzipped tar of (name, bytes) pairs or a {name: bytes} dict, in that order."""
    return tar_bytes(members, "w:gz")


def tar_bytes(members, mode: str = "w") -> bytes:
    """A tar (mode "w", "w:gz", …) of (name, bytes) pairs or a {name: bytes} dict, in that order."""
    items = members.items() if isinstance(members, dict) else members
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in items:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zero_bomb(n_bytes: int = 200 * 1024 * 1024, name: str = "zeros.bin", extra: dict | None = None) -> bytes:
    """A zip whose one big member is n_bytes of zeros, deflated (200 MB → about 200 KB), streamed in."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as f:
            chunk = bytes(1024 * 1024)
            for _ in range(n_bytes // len(chunk)):
                f.write(chunk)
            f.write(bytes(n_bytes % len(chunk)))
        for k, v in (extra or {}).items():
            zf.writestr(k, v)
    return buf.getvalue()


def set_declared_size(data: bytes, name: str, size: int) -> bytes:
    """Rewrite a stored member's declared uncompressed size (local header and central directory)."""
    out = bytearray(data)
    raw = name.encode()
    for sig, size_at, name_len_at, name_at in ((b"PK\x03\x04", 22, 26, 30), (b"PK\x01\x02", 24, 28, 46)):
        pos = 0
        while (pos := out.find(sig, pos)) >= 0:
            n = struct.unpack("<H", out[pos + name_len_at:pos + name_len_at + 2])[0]
            if bytes(out[pos + name_at:pos + name_at + n]) == raw:
                out[pos + size_at:pos + size_at + 4] = struct.pack("<I", size)
            pos += 4
    return bytes(out)


def mark_encrypted(data: bytes) -> bytes:
    """Set the 'encrypted' flag bit on every member, as a password-protected zip has it."""
    out = bytearray(data)
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = 0
        while (pos := out.find(sig, pos)) >= 0:
            out[pos + flag_at] |= 0x01
            pos += 4
    return bytes(out)


# ---------------------------------------------------------------- DICOM


def dicom_dir() -> Path:
    """pydicom's bundled test files (never fetched: get_testdata_file would try to download)."""
    import pydicom

    return Path(pydicom.__file__).parent / "data" / "test_files"


def dicom_export(tmp_path: Path) -> Path:
    """A real CD export made of pydicom's test DICOMDIR: the DICOMDIR listing 31 files in three patient folders, and
    nothing else, in tmp_path / "cd"."""
    import shutil

    root = tmp_path / "cd"
    shutil.copytree(dicom_dir() / "dicomdirtests", root)
    shutil.rmtree(root / "TINY_ALPHA")
    for extra in [*root.glob("DICOMDIR-*"), root / "README.txt"]:
        extra.unlink()
    return root


def dicom_file(name: str) -> Path:
    path = dicom_dir() / name
    if not path.exists():
        import pytest

        pytest.skip(f"pydicom test file {name} is not installed")
    return path


def dicom_dataset(syntax: str, sop_class: str, modality: str):
    """A dataset with its file meta: transfer syntax, SOP class and a new instance UID, Modality set."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import generate_uid

    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.Modality = modality
    return ds


def dicom_bytes(ds) -> bytes:
    """A dataset written as a DICOM file (with preamble and meta when it has file_meta)."""
    import pydicom

    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=hasattr(ds, "file_meta") and "TransferSyntaxUID" in ds.file_meta)
    return buf.getvalue()


def jpeg_slide_dicom(frames: list[bytes], across: int, tile: int, spacing_mm: float | None = None) -> bytes:
    """A VL Whole Slide Microscopy file (TILED_FULL) of baseline-JPEG YCbCr tiles, `across` per row."""
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    ds = dicom_dataset(JPEGBaseline8Bit, "1.2.840.10008.5.1.4.1.1.77.1.6", "SM")
    ds.Rows, ds.Columns, ds.NumberOfFrames = tile, tile, len(frames)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "YBR_FULL_422", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.DimensionOrganizationType = "TILED_FULL"
    ds.TotalPixelMatrixColumns, ds.TotalPixelMatrixRows = across * tile, -(-len(frames) // across) * tile
    if spacing_mm is not None:
        measures, shared = pydicom.Dataset(), pydicom.Dataset()
        measures.PixelSpacing = [spacing_mm, spacing_mm]
        shared.PixelMeasuresSequence = [measures]
        ds.SharedFunctionalGroupsSequence = [shared]
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].VR = "OB"
    return dicom_bytes(ds)


def bare_dicom(name: str = "MR_small.dcm") -> bytes:
    """A bundled file rewritten with no preamble and no file meta (implicit VR little endian)."""
    import pydicom

    ds = pydicom.dcmread(dicom_file(name))
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.preamble = None
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, implicit_vr=True, little_endian=True, enforce_file_format=False)
    return buf.getvalue()


def encapsulated_pdf_dicom(pdf: bytes = b"%PDF-1.4\n%%EOF\n", mime: str = "application/pdf") -> bytes:
    """An Encapsulated PDF Storage object holding `pdf` (by default a PDF with no pages), and a patient name."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DOC"
    ds.PatientName = "Testpatient^Secret"
    ds.MIMETypeOfEncapsulatedDocument = mime
    ds.EncapsulatedDocument = pdf
    return dicom_bytes(ds)


def compound_file(tree: dict) -> bytes:
    """A Microsoft compound file (OLE2/CFB version 3, as Outlook .msg and old Office files are) holding `tree`:
    {name: bytes (a stream) | dict (a storage)}. Streams under 4096 bytes live in the mini stream, as the
    format requires; each storage's children are chained as a right-leaning tree in the format's order."""
    sector, mini, cutoff = 512, 64, 4096
    end, free, fat_mark, nostream = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
    entries = [{"name": "Root Entry", "type": 5, "kids": [], "data": b""}]

    def add(node: dict, parent: int) -> None:
        for name in sorted(node, key=lambda n: (len(n), n.upper())):
            value = node[name]
            entries.append({"name": name, "type": 1 if isinstance(value, dict) else 2, "kids": [],
                            "data": value if isinstance(value, bytes) else b""})
            index = len(entries) - 1
            entries[parent]["kids"].append(index)
            if isinstance(value, dict):
                add(value, index)

    add(tree, 0)
    ministream = bytearray()
    minifat: list[int] = []
    for e in entries[1:]:
        if e["type"] == 2 and len(e["data"]) < cutoff:
            n = max(1, -(-len(e["data"]) // mini)) if e["data"] else 0
            e["start"] = len(minifat) if n else end
            minifat += [len(minifat) + i + 1 for i in range(n - 1)] + ([end] if n else [])
            ministream += e["data"].ljust(n * mini, b"\x00")
    sectors: list[bytes] = []
    fat: list[int] = []

    def place(data: bytes, mark: int | None = None) -> int:
        n = max(1, -(-len(data) // sector))
        first = len(sectors)
        for i in range(n):
            sectors.append(data[i * sector:(i + 1) * sector].ljust(sector, b"\x00"))
            fat.append(mark if mark is not None else (first + i + 1 if i < n - 1 else end))
        return first

    for e in entries[1:]:
        if e["type"] == 2 and len(e["data"]) >= cutoff:
            e["start"] = place(e["data"])
    entries[0]["data"] = bytes(ministream)
    entries[0]["start"] = place(bytes(ministream)) if ministream else end
    minifat_start = place(b"".join(x.to_bytes(4, "little") for x in minifat)) if minifat else end
    dirs = bytearray()
    for e in entries:
        kids = e["kids"]
        for a, b_ in zip(kids, kids[1:]):
            entries[a]["right"] = b_
        name = e["name"].encode("utf-16-le") + b"\x00\x00"
        size = len(e["data"]) if e["type"] != 1 else 0
        dirs += (name.ljust(64, b"\x00") + len(name).to_bytes(2, "little") + bytes([e["type"], 1])
                 + nostream.to_bytes(4, "little") + e.get("right", nostream).to_bytes(4, "little")
                 + (kids[0] if kids else nostream).to_bytes(4, "little") + bytes(16 + 4 + 16)
                 + e.get("start", end if e["type"] != 1 else 0).to_bytes(4, "little") + size.to_bytes(8, "little"))
    dir_start = place(bytes(dirs))
    n_fat = 1
    while (len(fat) + n_fat) > n_fat * (sector // 4):
        n_fat += 1
    fat_start = len(sectors)
    fat += [fat_mark] * n_fat
    table = b"".join(x.to_bytes(4, "little") for x in fat).ljust(n_fat * sector, b"\xff")
    for i in range(n_fat):
        sectors.append(table[i * sector:(i + 1) * sector])
    difat = [fat_start + i for i in range(n_fat)] + [free] * (109 - n_fat)
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(16) + (0x3E).to_bytes(2, "little")
              + (3).to_bytes(2, "little") + b"\xfe\xff" + (9).to_bytes(2, "little") + (6).to_bytes(2, "little")
              + bytes(6) + (0).to_bytes(4, "little") + n_fat.to_bytes(4, "little") + dir_start.to_bytes(4, "little")
              + bytes(4) + cutoff.to_bytes(4, "little") + minifat_start.to_bytes(4, "little")
              + (-(-len(minifat) * 4 // sector) if minifat else 0).to_bytes(4, "little")
              + end.to_bytes(4, "little") + (0).to_bytes(4, "little")
              + b"".join(x.to_bytes(4, "little") for x in difat))
    return header + b"".join(sectors)


def outlook_msg(attachments: list[tuple[str, bytes]], body: str = "Please see the images attached.",
                embedded: dict | None = None) -> bytes:
    """An Outlook .msg (MS-OXMSG): a plain-text body and one attachment storage per (file name, bytes);
    `embedded` adds an attached message (a storage as outlook_msg's tree builds it)."""
    tree = _msg_tree(attachments, body)
    if embedded is not None:
        tree[f"__attach_version1.0_#{len(attachments):08X}"] = {
            "__substg1.0_3707001F": "forwarded.msg".encode("utf-16-le"), "__substg1.0_3701000D": embedded}
    return compound_file(tree)


def _msg_tree(attachments: list[tuple[str, bytes]], body: str) -> dict:
    tree: dict = {"__properties_version1.0": bytes(32), "__substg1.0_0037001F": "Referral".encode("utf-16-le"),
                  "__substg1.0_1000001F": body.encode("utf-16-le"), "__nameid_version1.0": {}}
    for i, (name, data) in enumerate(attachments):
        tree[f"__attach_version1.0_#{i:08X}"] = {
            "__properties_version1.0": bytes(8), "__substg1.0_3707001F": name.encode("utf-16-le"),
            "__substg1.0_37010102": data}
    return tree


def office_blip(picture: bytes, kind: str) -> bytes:
    """An OfficeArt BLIP record (MS-ODRAW) holding `picture`: 8-byte header, one 16-byte UID, a tag byte."""
    rec_type, instance = {"jpg": (0xF01D, 0x46A), "png": (0xF01E, 0x6E0), "dib": (0xF01F, 0x7A8),
                          "emf": (0xF01A, 0x3D4)}[kind]
    body = bytes(range(16)) + b"\xff" + picture
    return (instance << 4).to_bytes(2, "little") + rec_type.to_bytes(2, "little") + len(body).to_bytes(4, "little") + body


def biff_records(data: bytes, first: int = 0x00EB, chunk: int = 8224) -> bytes:
    """`data` as BIFF8 records: the first of type `first`, the rest CONTINUE records, each at most `chunk` bytes."""
    out = b""
    for i in range(0, len(data), chunk):
        rec = first if i == 0 else 0x003C
        part = data[i:i + chunk]
        out += rec.to_bytes(2, "little") + len(part).to_bytes(2, "little") + part
    return out


def zip64_end(data: bytes, classic: tuple[int, int] | None = None, entries: int | None = None) -> bytes:
    """The zip with a ZIP64 end record and its locator put before the end record, as zip tools write them for
    big archives. `classic` makes the classic end record say (entries, directory size) instead of the truth
    (zipfile then reads the ZIP64 one anyway); `entries` makes the ZIP64 record lie about the count."""
    end = data.rfind(b"PK\x05\x06")
    count, cd_size, cd_offset = struct.unpack("<HLL", data[end + 10:end + 20])
    count = entries if entries is not None else count
    record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, cd_size, cd_offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, end, 1)
    tail = bytearray(data[end:])
    if classic is not None:
        tail[8:16] = struct.pack("<HHL", classic[0], classic[0], classic[1])
    return data[:end] + record + locator + bytes(tail)


def pdf_stream(dict_body: str, data: bytes, compress: bool = False) -> bytes:
    """A PDF stream object's body: `<< dict_body /Length n >> stream ... endstream`, Flate-compressed if asked."""
    if compress:
        data = zlib.compress(data, 9)
        dict_body += " /Filter /FlateDecode"
    return f"<< {dict_body} /Length {len(data)} >>\nstream\n".encode() + data + b"\nendstream"


def pdf_objects(objects: list) -> bytes:
    """A PDF of these objects (numbered from 1; the first is the catalog) with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + (body.encode() if isinstance(body, str) else body) + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{off:010d} 00000 n \n".encode() for off in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def raw_pdf(content: bytes, resources: str = "<< >>", extra: list | None = None, mediabox: str = "[0 0 612 792]",
            compress: bool = False, page: str = "") -> bytes:
    """A one-page PDF drawn by `content`, written by hand (for crafted files PyMuPDF would not write): objects 1
    catalog, 2 pages, 3 page (`page` adds keys), 4 content, then `extra` from 5 on, for `resources` to name."""
    return pdf_objects([
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox {mediabox} /Resources {resources} /Contents 4 0 R {page}>>",
        pdf_stream("", content, compress),
        *(extra or []),
    ])


def tiff_chain(n: int, loop: bool = False) -> bytes:
    """A little-endian TIFF of `n` 1×1 grey pages sharing one 1-byte strip (cheap to write, unlike Pillow's
    save_all); with `loop` the last page points back at the first."""
    out = bytearray(b"II*\x00" + struct.pack("<I", 9) + b"\x80")
    tags = [(256, 3, 1, 1), (257, 3, 1, 1), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
            (273, 4, 1, 8), (278, 3, 1, 1), (279, 4, 1, 1)]
    size = 2 + len(tags) * 12 + 4
    for k in range(n):
        at = 9 + k * size
        out += struct.pack("<H", len(tags))
        for tag, typ, count, value in tags:
            out += struct.pack("<HHII", tag, typ, count, value)
        out += struct.pack("<I", (9 if loop else 0) if k == n - 1 else at + size)
    return bytes(out)


def wide_gamut_icc() -> bytes:
    """An ICC v2 RGB display profile with ProPhoto-like primaries and gamma 1.8: its numbers mean much more
    saturated colours than the same numbers in sRGB (Pillow can only build sRGB, LAB and XYZ profiles)."""
    import struct

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + bytes(4) + s15(x) + s15(y) + s15(z)

    gamma = b"curv" + bytes(4) + struct.pack(">IH", 1, round(1.8 * 256)) + bytes(2)
    text = b"wide gamut test\0"
    tags = [(b"desc", b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(81)),
            (b"wtpt", xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", xyz(0.7977, 0.2880, 0.0)),
            (b"gXYZ", xyz(0.1352, 0.7119, 0.0)), (b"bXYZ", xyz(0.0313, 0.0001, 0.8249)),
            (b"rTRC", gamma), (b"gTRC", gamma), (b"bTRC", gamma), (b"cprt", b"text" + bytes(4) + b"none\0")]
    table, body, start = b"", b"", 128 + 4 + 12 * len(tags)
    for sig, data in tags:
        body += bytes(-len(body) % 4)
        table += sig + struct.pack(">II", start + len(body), len(data))
        body += data
    size = start + len(body)
    header = (struct.pack(">I", size) + b"none" + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + bytes(12) + b"acsp"
              + bytes(28) + s15(0.9642) + s15(1.0) + s15(0.8249) + bytes(48))
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body
