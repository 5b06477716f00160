"""Session 43's new code under mutation testing (s43_mut): tests that kill the mutants its own tests let live.
Each builds its real input (a JSON-LD block, a page, a file) and checks what the code makes of it."""

from __future__ import annotations

import html
import json

from medimg.sources.web_page import LD_IMAGES, MAX_GUESSES, _ld_images, extract


def test_an_image_object_typed_by_a_list_is_a_picture_of_its_own():
    """`"@type": ["ImageObject", "MediaObject"]` (the case's own figure) names a picture, as "ImageObject" does."""
    block = json.dumps({"@type": "MedicalScholarlyArticle",
                        "associatedMedia": {"@type": ["ImageObject", "MediaObject"], "contentUrl": "/ct.png"}})
    assert _ld_images(block, LD_IMAGES) == ["/ct.png"]


def test_a_publishers_picture_is_not_the_things():
    block = json.dumps({"@type": "Article", "image": "/case.png",
                        "publisher": {"@type": "Organization", "image": "/publisher.png"}})
    assert _ld_images(block, LD_IMAGES) == ["/case.png"]


def test_json_ld_urls_are_stripped_and_empty_ones_dropped():
    assert _ld_images(json.dumps({"image": [" /a.png\n", "   ", ""]}), LD_IMAGES) == ["/a.png"]


def test_the_json_ld_cap_holds_across_a_pages_blocks():
    """LD_IMAGES for the whole page, not for each block (blocks naming different pictures: no duplicates to drop)."""
    page = "".join('<script type="application/ld+json">' + json.dumps(
        {"@type": "ItemList", "itemListElement": [{"image": f"/b{k}/{n}.png"} for n in range(LD_IMAGES)]}) +
        "</script>" for k in range(3))
    found = [c.url for c in extract(page, "https://example.org/") if c.tag == "json-ld"]
    assert len(found) == LD_IMAGES and all("/b0/" in u for u in found), found[-3:]


def test_links_past_the_cap_inside_one_srcdoc_page_are_named_as_passed_over():
    """A frame's page over the guessed-links cap on its own: those past it are in the page's note (found.passed)."""
    links = "".join(f'<a href="/attachment.php?id={n}">file</a>' for n in range(MAX_GUESSES + 2))
    found = extract(f'<iframe srcdoc="{html.escape(links)}"></iframe>', "http://127.0.0.1/case.html")
    assert found.guesses == MAX_GUESSES and len(found.passed) == 2, (found.guesses, found.passed)


def test_an_input_waiting_while_a_thread_may_come_free_is_not_out_of_time():
    """Not stalled: an input not begun waits on, a second at a time (0 would give it up at once, as not read);
    stalled: input_timeout from the stall, for every input waiting."""
    import time

    from medimg.pipeline import waiting_left

    assert waiting_left(0.0, 5.0) == 1.0
    left = waiting_left(time.monotonic() - 2.0, 5.0)
    assert 2.5 < left <= 3.0, left


def test_a_host_name_that_does_not_resolve_is_said_to_be_no_name_of_this_machine():
    from medimg.listening import cannot_listen

    said = cannot_listen("no-such-host.invalid", 7860)  # .invalid never resolves (RFC 2606)
    assert said and "no-such-host.invalid is not a name or address of this machine: give --host 127.0.0.1" in said


def test_a_port_just_left_by_a_closed_server_is_free_as_uvicorn_would_find_it():
    """A server just stopped whose side closed a connection first leaves its port in TIME_WAIT: uvicorn (SO_REUSEADDR)
    listens there again at once, so the probe must not call it taken."""
    import socket
    import time

    from medimg.listening import cannot_listen

    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the earlier server (uvicorn) had it
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        conn.close()  # the server's end closes first: its port waits in TIME_WAIT
        client.recv(1)
        client.close()
    time.sleep(0.2)  # the last ACK: the server's end is in TIME_WAIT now
    assert cannot_listen("127.0.0.1", port) is None


def test_the_hints_for_a_low_port_and_the_last_port():
    import errno

    from medimg.listening import _hint

    assert "needs root" in _hint(OSError(errno.EACCES, "Permission denied"), "127.0.0.1", 443)
    assert _hint(OSError(errno.EACCES, "Permission denied"), "127.0.0.1", 1024) == ""
    assert "--port 8080" in _hint(OSError(errno.EADDRINUSE, "Address already in use"), "127.0.0.1", 65535)


def test_one_bare_jp2_file_not_in_items_is_read_as_the_frame():
    """A JPEG 2000 stored bare may be a .jp2 file (boxes before its codestream), not only a raw J2K codestream."""
    import numpy as np
    import pytest

    imagecodecs = pytest.importorskip("imagecodecs", reason="imagecodecs (a dependency) encodes the codestream")
    from pydicom.uid import JPEG2000Lossless
    from test_dicom_s43 import ct, grey, hounsfield, items, labelled

    import builders as b
    from medimg.sources import ImageItem

    hu = hounsfield()
    ds = ct(imagecodecs.jpeg2k_encode(hu, level=0, codecformat="JP2"))
    ds["PixelData"].VR = "OB"
    (got,) = items(labelled(ds, JPEG2000Lossless))
    assert isinstance(got, ImageItem), got
    assert np.array_equal(grey(got), grey(items(b.dicom_bytes(ct(hu.tobytes())))[0]))
    assert "codestream not in items" in got.metadata["note"]


def test_encapsulated_pixel_data_written_with_a_defined_length_is_read_as_items():
    """Items under a compressed syntax whose Pixel Data has a length (not 0xFFFFFFFF, as some writers leave it) are
    still its items, not uncompressed pixels."""
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import RLELossless
    from test_dicom_s43 import ct, hounsfield, items

    import builders as b
    from medimg.sources import ImageItem

    ds = ct(b"")
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.PixelData = encapsulate([pydicom.pixels.encoders.RLELosslessEncoder.encode(
        hounsfield(), rows=64, columns=64, samples_per_pixel=1, bits_allocated=16, bits_stored=16,
        photometric_interpretation="MONOCHROME2", pixel_representation=1, number_of_frames=1, byteorder="<")])
    ds["PixelData"].VR = "OB"
    data = b.dicom_bytes(ds)
    at = data.find(b"\xe0\x7f\x10\x00OB")
    assert data.endswith(b"\xfe\xff\xdd\xe0\x00\x00\x00\x00")  # the items' end: dropped with a defined length
    value = data[at + 12:-8]
    (got,) = items(data[:at + 8] + len(value).to_bytes(4, "little") + value)
    assert isinstance(got, ImageItem) and "note" not in got.metadata, got


def test_an_uncompressed_cine_starting_as_a_jpeg_would_is_still_read_as_its_frames():
    """A frame's first pixel may be the bytes FF D8 (-9985 little-endian): under a JPEG syntax, only one frame can be a
    bare codestream; three frames of uncompressed pixels stay three frames."""
    import numpy as np
    from pydicom.uid import JPEGLosslessSV1
    from test_dicom_s43 import ct, hounsfield, items, labelled

    from medimg.sources import ImageItem

    frames = np.stack([hounsfield(shift) for shift in (-8, 0, 8)])
    frames[:, 0, 0] = -9985
    data = frames.tobytes()
    assert data[:2] == b"\xff\xd8"
    got = items(labelled(ct(data, frames=3), JPEGLosslessSV1), all_frames=True)
    assert [g.locator for g in got] == ["frame 1", "frame 2", "frame 3"], got
    assert all(isinstance(g, ImageItem) for g in got)


def test_an_8_bit_jpeg_is_not_taken_for_a_deep_one():
    """Only more than 8 bits a sample goes to libjpeg through imagecodecs; an 8-bit grey JPEG stays Pillow's L."""
    import io

    from PIL import Image

    from medimg.sources import Blob, ImageItem, Limits, open_input
    from medimg.sources.deep_jpeg import frame_header, is_deep

    buf = io.BytesIO()
    Image.linear_gradient("L").resize((128, 96)).save(buf, "JPEG", quality=90)
    assert frame_header(buf.getvalue())[1:] == (8, 96, 128, 1) and not is_deep(buf.getvalue())
    [item] = list(open_input(Blob("grey.jpg", buf.getvalue(), name="grey.jpg"), Limits()))
    assert isinstance(item, ImageItem) and item.image.mode == "L" and "bits" not in item.metadata, item


def test_a_12_bit_colour_jpeg_is_scaled_by_its_depth_at_mid_grey_too():
    """4095 >> 4 is 255 and so is (4095 >> 3) cut to 8 bits: a mid value (2048 → 128) tells the right shift."""
    import numpy as np
    import pytest

    imagecodecs = pytest.importorskip("imagecodecs", reason="imagecodecs (a dependency) writes 12-bit JPEGs")
    from medimg.sources import Blob, ImageItem, Limits, open_input

    rgb = np.zeros((96, 128, 3), np.uint16)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 2048, 1024, 3072
    data = imagecodecs.jpeg8_encode(rgb, bitspersample=12, level=95)
    [item] = list(open_input(Blob("scope.jpg", data, name="scope.jpg"), Limits()))
    assert isinstance(item, ImageItem) and item.image.mode == "RGB", item
    means = np.asarray(item.image).reshape(-1, 3).mean(0)
    assert np.allclose(means, (128, 64, 192), atol=3), means


def _segments(jpeg: bytes) -> tuple[list[bytes], bytes]:
    """A JPEG's marker segments before its scan, and the rest (SOS on)."""
    out, pos = [], 2
    while jpeg[pos + 1] != 0xDA:
        end = pos + 2 + int.from_bytes(jpeg[pos + 2:pos + 4], "big")
        out.append(jpeg[pos:end])
        pos = end
    return out, jpeg[pos:]


def test_a_12_bit_jpeg_whose_huffman_tables_come_before_its_frame_header_is_read():
    """DHT (FFC4) lies in the SOF range of markers: a writer that puts its tables first must not have them taken
    for the frame header."""
    import numpy as np
    import pytest

    imagecodecs = pytest.importorskip("imagecodecs", reason="imagecodecs (a dependency) writes 12-bit JPEGs")
    from medimg.sources import Blob, ImageItem, Limits, open_input

    y, x = np.mgrid[0:96, 0:128]
    a = ((x * 30 + y * 3) % 4096).astype(np.uint16)
    segs, scan = _segments(imagecodecs.jpeg8_encode(a, bitspersample=12, level=95))
    tables = [s for s in segs if s[1] == 0xC4]
    assert tables, [hex(s[1]) for s in segs]
    data = b"\xff\xd8" + b"".join(tables + [s for s in segs if s[1] != 0xC4]) + scan
    [item] = list(open_input(Blob("tables_first.jpg", data, name="tables_first.jpg"), Limits()))
    assert isinstance(item, ImageItem) and item.image.mode == "I;16" and item.metadata["bits"] == 12, item
    assert np.abs(np.asarray(item.image).astype(int) - a).max() <= 8


def _j2k(size: tuple[int, int]) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 90)], -1).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(a).save(out, "JPEG2000", no_jp2=True)  # a bare codestream, 6 resolutions (5 levels)
    return out.getvalue()


def test_a_component_with_fewer_levels_limits_the_reduction():
    """A COC segment giving component 1 two decomposition levels (COD: five for all): OpenJPEG cannot drop more than
    two, so main_header says two and the picture decodes at 1/4, not 1/8."""
    import io

    from PIL import Image

    from medimg.sources import ImageItem, Limits, open_input
    from medimg.sources import Blob
    from medimg.sources.jpeg2000 import main_header

    data = _j2k((1600, 1200))
    cod = data.index(b"\xff\x52")
    end = cod + 2 + int.from_bytes(data[cod + 2:cod + 4], "big")
    assert main_header(data) == (1600, 1200, 0, 0, data[cod + 9])
    coc = b"\xff\x53" + (9).to_bytes(2, "big") + bytes([1, 0, 2]) + data[cod + 10:cod + 14]  # Ccoc Scoc levels …
    fewer = data[:end] + coc + data[end:]
    assert main_header(fewer) == (1600, 1200, 0, 0, 2)
    with Image.open(io.BytesIO(fewer)) as im:
        assert im.size == (1600, 1200)
    [item] = list(open_input(Blob("fewer.j2k", fewer, name="fewer.j2k"), Limits(decode_side=64)))
    assert isinstance(item, ImageItem) and item.image.size == (400, 300), item


def test_an_image_offset_in_the_siz_segment_is_taken_off_the_size():
    """SIZ's Xsiz/Ysiz count from the reference grid's origin: the picture is Xsiz - XOsiz wide."""
    from medimg.sources.jpeg2000 import main_header

    data = bytearray(_j2k((64, 48)))
    siz = data.index(b"\xff\x51")
    for at, value in ((siz + 6, 64 + 16), (siz + 10, 48 + 8), (siz + 14, 16), (siz + 18, 8)):  # Xsiz Ysiz XOsiz YOsiz
        data[at:at + 4] = value.to_bytes(4, "big")
    assert main_header(bytes(data))[:4] == (64, 48, 16, 8)


# ---------------------------------------------------------------- metafiles (built by test_emf_s43's helpers)

def test_abutting_bitmaps_that_do_not_fill_a_rectangle_are_read_one_by_one():
    """Three tiles in an L abut but leave a corner empty: not one picture."""
    from test_emf_s43 import SCAN, dib, emf, images, items, stretchdibits

    tiles = [(0, 0), (45, 0), (0, 60)]
    data = emf(*(stretchdibits(dib(SCAN.crop((x, y, x + 45, y + 60))), x * 10, y * 10, 450, 600) for x, y in tiles))
    got = images(items(data, "ell.emf", min_side=16))
    assert [(i.locator, i.image.size) for i in got] == [(f"emf, bitmap #{n}", (45, 60)) for n in (1, 2, 3)]


def test_bitmaps_abutting_under_different_mapping_modes_are_not_joined():
    """Where y grows the other way the same numbers are another place: rectangles that meet only as numbers."""
    from test_emf_s43 import SCAN, dib, emf, images, items, map_mode, stretchdibits

    top, bottom = SCAN.crop((0, 0, 90, 60)), SCAN.crop((0, 60, 90, 120))
    data = emf(stretchdibits(dib(top), 0, 0, 900, 600), map_mode(2), stretchdibits(dib(bottom), 0, 600, 900, 600))
    got = images(items(data, "two_modes.emf", min_side=16))
    assert [i.locator for i in got] == ["emf, bitmap #1", "emf, bitmap #2"], got


def test_the_record_cap_ends_the_reading_with_a_note(monkeypatch):
    from test_emf_s43 import SCAN, dib, emf, images, items, rectangle, stretchdibits

    import medimg.sources.metafile as metafile

    monkeypatch.setattr(metafile, "MAX_RECORDS", 4)  # the cap lowered: a million records take seconds to build
    data = emf(stretchdibits(dib(SCAN), 0, 0, 900, 1200), *(rectangle(0, 0, 9, 9) for _ in range(6)),
               stretchdibits(dib(SCAN.rotate(90, expand=True)), 1000, 0, 1200, 900))
    got = items(data, "many.emf")
    assert [i.locator for i in images(got)] == ["emf, bitmap #1"]
    assert got[-1].error == "EMF read in part: more than 4 records; the records after it are not read"


def test_one_bitmap_over_the_images_cap_is_counted():
    from test_emf_s43 import SCAN, dib, emf, images, items, stretchdibits

    data = emf(*(stretchdibits(dib(SCAN.rotate(k * 90, expand=True)), 2000 * k, 0, 900, 900) for k in range(3)))
    got = items(data, "three.emf", max_images_per_input=2)
    assert len(images(got)) == 2
    assert got[-1].skipped and got[-1].error == "1 more bitmap was not read (max_images_per_input = 2)"


def test_setdibitstodevice_holding_some_scan_lines_reads_those():
    """SetDIBitsToDevice may carry `cScans` rows of a taller bitmap (its header says the whole height): the rows
    there are read, not an error for the rows that are not."""
    import struct

    from test_emf_s43 import SCAN, dib, emf, images, items, record, same

    bmi, bits = dib(SCAN)  # bottom-up, 90 × 120: 272 bytes a row
    scans = 40
    part = bits[:272 * scans]  # the bottom 40 rows
    fixed = struct.pack("<4i", 0, 0, 90, scans) + struct.pack("<6i7I", 0, 0, 0, 0, 90, scans, 76, len(bmi),
                                                              76 + len(bmi), len(part), 0, 0, scans)
    (item,) = images(items(emf(record(80, fixed + bmi + part)), "band.emf", min_side=16))
    assert same(item.image, SCAN.crop((0, 120 - scans, 90, 120)))


def test_a_wmf_record_running_past_the_end_is_said_to_be_damaged():
    import struct

    from test_emf_s43 import SCAN, dib, images, items, stretchdib, wmf

    whole = wmf(stretchdib(dib(SCAN), 0, 0, 900, 1200))
    cut = whole[:-6] + struct.pack("<IH", 5000, 0x041B) + bytes(8)  # a rectangle record said 10,000 bytes long
    got = items(cut, "cut.wmf")
    assert len(images(got)) == 1
    assert got[-1].error.startswith("WMF read in part: a record at byte ") and "10,000 bytes long" in got[-1].error


# ---------------------------------------------------------------- archives

def _zip(members: dict, stored: bool = False) -> bytes:
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def _ends_as_zip(data: bytes, name: str) -> bool:
    from medimg.sources.archive import TAIL, at_the_end

    return at_the_end(data[:64], name, data[-TAIL:], len(data))


def test_only_a_program_or_script_with_a_zip_after_it_ends_as_one():
    from test_archive_s43 import PNG, STUB

    whole = _zip({"x.png": PNG})
    assert _ends_as_zip(STUB + whole, "setup.exe") and _ends_as_zip(b"#!/bin/sh\nexit 0\n" + whole, "install.sh")
    assert not _ends_as_zip(PNG + whole, "photo.zip")  # a picture with a zip appended: not a self-extracting zip
    assert not _ends_as_zip(b"MZ" + whole[40:], "setup.exe")  # its start cut off: the directory is not where it says
    end = b"PK\x05\x06" + bytes(4) + (1).to_bytes(2, "little") * 2 + (46).to_bytes(4, "little") + bytes(6)
    assert not _ends_as_zip(STUB + b"x" * 46 + end, "setup.exe")  # no directory before the end record
    assert not _ends_as_zip(STUB + b"PK\x05\x06" + bytes(6), "setup.exe")  # an end record cut off: no crash


def test_a_split_zips_last_part_is_one_only_by_its_zip_name():
    from test_archive_s43 import PNG, split_zip

    _, last = split_zip({"a.png": PNG, "b.png": PNG}, 300)
    assert _ends_as_zip(last, "set.zip") and not _ends_as_zip(last, "set.bin")


def test_a_self_extracting_zip_holding_an_end_record_signature_in_a_member_is_read():
    """The last end record is the archive's: a stored member may hold the bytes PK\\5\\6 too."""
    from test_archive_s43 import PNG, STUB, items, rows

    data = STUB + _zip({"notes.txt": b"PK\x05\x06" + bytes(40), "x.png": PNG}, stored=True)
    assert ("setup.exe:x.png", "image") in rows(items(data, "setup.exe"))


def _v7(members: list, ) -> bytes:
    """A pre-POSIX tar of (TarInfo, data) pairs: no magic, the checksum made again."""
    import io
    import tarfile

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    data = bytearray(out.getvalue())
    at = 0
    for info, body in members:
        head = data[at:at + 512]
        head[257:512] = bytes(255)
        head[148:156] = b" " * 8
        head[148:156] = b"%06o\0 " % sum(head)
        data[at:at + 512] = head
        at += 512 + (info.size + 511) // 512 * 512
    return bytes(data)


def test_a_v7_tar_of_a_folder_starting_with_its_directory_entry_is_read():
    import tarfile

    from test_archive_s43 import PNG, items, rows

    folder = tarfile.TarInfo("scans")
    folder.type = tarfile.DIRTYPE
    info = tarfile.TarInfo("scans/a.png")
    info.size = len(PNG)
    assert rows(items(_v7([(folder, None), (info, PNG)]), "old.tar")) == [("old.tar:scans/a.png", "image")]


def test_a_v7_header_is_told_by_its_checksum():
    import tarfile

    from test_archive_s43 import PNG

    from medimg.sources.tar import is_tar

    info = tarfile.TarInfo("a.png")
    info.size = len(PNG)
    head = bytearray(_v7([(info, PNG)])[:512])
    assert is_tar(bytes(head))
    wrong = bytearray(head)
    wrong[0] ^= 1  # the name changed, the checksum not
    assert not is_tar(bytes(wrong))
    for field in (b"000819\0 ", b"0009\0   "):  # not octal: no tar, and no ValueError
        odd = bytearray(head)
        odd[148:156] = field
        assert not is_tar(bytes(odd))
    empty = bytearray(512)  # no name (the end-of-archive block), its checksum right
    empty[148:156] = b"%06o\0 " % (8 * 32)
    assert not is_tar(bytes(empty))


def test_a_hard_link_named_from_the_current_folder_names_its_file_plainly():
    import io
    import tarfile

    from test_archive_s43 import PNG, items

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        info = tarfile.TarInfo("./scans/a.png")
        info.size = len(PNG)
        tf.addfile(info, io.BytesIO(PNG))
        link = tarfile.TarInfo("./scans/b.png")
        link.type, link.linkname = tarfile.LNKTYPE, "./scans/a.png"
        tf.addfile(link)
    got = items(out.getvalue(), "s.tar")
    assert got[-1].error == "a hard link to scans/a.png (the same file, read under that name), not read again"


# ---------------------------------------------------------------- TIFF files cut short, or damaged and whole

def test_a_whole_tiff_with_a_damaged_strip_is_not_called_truncated():
    """Its strip ends at the file's last byte, not past it: damaged data, not a file cut short."""
    import io

    import numpy as np
    import tifffile
    from test_tiff_s43 import _items, _tif

    from medimg.sources import ItemError

    yy, xx = np.mgrid[0:64, 0:80]
    data = bytearray(_tif((xx * 3 + yy).astype(np.uint8), compression="zlib", rowsperstrip=64))
    page = tifffile.TiffFile(io.BytesIO(bytes(data))).pages[0]
    at, count = page.dataoffsets[0], page.databytecounts[0]
    assert at + count == len(data)
    data[at + 2:at + count] = bytes(7 * i % 256 for i in range(count - 2))
    (item,) = _items(bytes(data))
    assert isinstance(item, ItemError) and "truncated" not in item.error.replace("corrupt or truncated", ""), item


def test_a_tiff_one_byte_short_names_its_strip():
    import numpy as np
    from test_tiff_s43 import _items, _tif

    yy, xx = np.mgrid[0:64, 0:80]
    data = _tif((xx * 3 + yy).astype(np.uint8), rowsperstrip=64)
    (item,) = _items(data[:-1])
    assert item.error == (f"corrupt or truncated TIFF image: its strip 1 ends at byte {len(data):,}, past the end of "
                          f"the file ({len(data) - 1:,} bytes): the file is truncated"), item


def test_a_tiff_cut_right_where_the_next_ifd_starts_says_so():
    import io

    import tifffile
    from test_tiff_s43 import _items, _pages

    data = _pages(2)
    second = tifffile.TiffFile(io.BytesIO(data)).pages[1].offset
    got = _items(data[:second])
    assert [i.locator for i in got] == ["page 1", "page 2"]
    assert got[1].error.startswith(f"the file ends before page 2: its IFD would be at byte {second:,}"), got[1]


def test_only_slices_three_times_as_thick_as_both_other_sides_make_a_2d_series():
    from medimg.sources.nifti import THICK, _thick_axis

    assert THICK == 3.0
    assert _thick_axis([0.5, 0.5, 3.0]) == 2 and _thick_axis([0.5, 4.0, 0.5]) == 1 and _thick_axis([5.0, 1.0, 1.0]) == 0
    assert _thick_axis([3.0, 1.0, 1.0]) == 0  # exactly three times
    assert _thick_axis([2.0, 0.5, 1.0]) is None  # four times one side, twice the other: a 3D volume's voxels
    assert _thick_axis([1.2, 1.0, 1.0]) is None and _thick_axis([1.0, 1.0, 1.0]) is None


def test_chromiums_temporary_folder_is_the_renders_own_unless_its_socket_path_would_be_too_long():
    from medimg.sources.browser import SOCKET_PATH_MAX, _chromium_tmp

    short = "/tmp/medimg-render-abc"
    assert _chromium_tmp(short) == short
    long = "/tmp/" + "d" * (SOCKET_PATH_MAX - 40)  # with org.chromium.Chromium.XXXXXX/SingletonSocket: over 108
    assert _chromium_tmp(long) == "/tmp"
    edge = "/" + "e" * (SOCKET_PATH_MAX - 1 - len("/org.chromium.Chromium.XXXXXX/SingletonSocket") - 1)
    assert len(f"{edge}/org.chromium.Chromium.XXXXXX/SingletonSocket") == SOCKET_PATH_MAX - 1
    assert _chromium_tmp(edge) == edge  # 107 bytes and the final NUL: it fits


def test_medimg_chromium_may_start_with_a_tilde(monkeypatch, tmp_path):
    import os

    from medimg.sources.browser import CHROMIUM_PLACES, _chromium

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MEDIMG_CHROMIUM", " ~/bin/chrome ")
    assert _chromium() == os.path.join(str(tmp_path), "bin/chrome")
    monkeypatch.setenv("MEDIMG_CHROMIUM", "")
    assert _chromium() == next((p for p in CHROMIUM_PLACES if os.access(p, os.X_OK)), CHROMIUM_PLACES[0])
