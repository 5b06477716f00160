"""Cases that kill mutants of session 39's new code no other test noticed (review s39_mut): media queries (each
answer as /usr/bin/chromium's matchMedia gave it at 1280×1800), Outlook winmail.dat, e-mail, TIFF tiles and the
extract lock."""

import json
import struct

import pytest

import builders as b
from medimg.sources.media import media_matches

CHROMIUM = [  # (query, Chromium's matchMedia)
    ("(min-width: calc(10))", False),  # a plain number for a length
    ("(min-width: calc(10px) 5px)", False),  # text after the function
    ("(max-width: calc(2000px) + 1px)", False),
    ("(max-width: calc(2000px))", True),
    ("(max-width: calc(2000foo))", False),  # a unit no length has
    ("(max-resolution: calc(2px))", False),  # a length for a resolution
    ("(max-resolution: calc(2dppx))", True),
    ("not 1abc", False),  # no media type's name
    ("not -1x", False),
    ("not layer", False),  # reserved words
    ("not or", False),
    ("not only", False),
    ("only and", False),
    ("layer", False),
    ("not foo", True),
    ("(max-width: clamp(100px, 2000px, 3000px))", True),  # clamp() takes three values, no fewer
    ("(max-width: clamp(100px, 2000px))", False),
    ("(width: 1280.015625px)", True),  # `=` of a length: 1/64 px either way, inclusive
    ("(width: 1279.984375px)", True),
    ("(width = 1280.015625px)", True),
    ("(width: 1280.03125px)", False),
]


@pytest.mark.parametrize("query, chromium", CHROMIUM)
def test_media_queries_as_chromium_reads_them(query, chromium):
    assert media_matches(query) is chromium


def _prop(ptype: int, pid: int, value: bytes, named: bytes = b"") -> bytes:
    """One MAPI property as Outlook writes it: type, id, (a named one's GUID and id or name), the value."""
    return struct.pack("<HH", ptype, pid) + named + value


def test_winmail_dat_reads_past_every_fixed_size_property_type():
    """Outlook's attAttachment holds times (PT_SYSTIME), flags (PT_BOOLEAN), sizes and named properties before
    the file's name: each fixed type's size must be right, or the name after it is lost (or the list damaged)."""
    from test_email_tnef_s39 import errors, found, items_of, record, tnef

    png = b.image_bytes("PNG", size=(70, 50))
    fill = {0x0001: 4, 0x0002: 4, 0x000B: 4, 0x0003: 4, 0x0004: 4, 0x000A: 4, 0x0005: 8, 0x0006: 8, 0x0007: 8,
            0x0014: 8, 0x0040: 8, 0x0048: 16}
    props = [_prop(t, 0x0FF0 + k, bytes([0x41 + k]) * size) for k, (t, size) in enumerate(fill.items())]
    props.append(_prop(0x1003, 0x0FE0, struct.pack("<I", 2) + b"\x07" * 8))  # multi-valued: a count, the values
    props.append(_prop(0x1048, 0x0FE1, struct.pack("<I", 1) + b"\x08" * 16))
    guid = bytes(range(16))
    props.append(_prop(0x0003, 0x8001, b"\x09" * 4, guid + struct.pack("<II", 0, 0x8530)))  # named by number
    name = "Pos\0".encode("utf-16-le")
    props.append(_prop(0x000B, 0x8002, b"\x01\0\0\0", guid + struct.pack("<II", 1, len(name)) + name
                       + bytes(-len(name) % 4)))  # named by a name
    wrong = b"wrong.png\0"  # a multi-valued string (no real file name): passed over
    props.append(_prop(0x101E, 0x3707, struct.pack("<II", 1, len(wrong)) + wrong + bytes(-len(wrong) % 4)))
    short = b"scan.png\0"
    props.append(_prop(0x001E, 0x3704, struct.pack("<II", 1, len(short)) + short + bytes(-len(short) % 4)))
    plist = struct.pack("<I", len(props)) + b"".join(props)
    att = [record(2, 0x00069002, struct.pack("<HIHHI", 1, 0xFFFFFFFF, 0, 0, 0)),
           record(2, 0x00018010, b"TITLE.PNG\0"), record(2, 0x0006800F, png), record(2, 0x00069005, plist)]
    got = items_of(tnef(att), "winmail.dat")
    assert errors(got) == []
    assert found(got) == [("winmail.dat:scan.png", (70, 50))]  # PR_ATTACH_FILENAME before the title


def test_a_resumed_winmail_dat_that_used_the_byte_cap_exactly_still_says_the_rest_is_not_read(tmp_path):
    """Files passed over as done are charged to zip_max_bytes; when they use it up exactly, the next file is the
    same 'add up past the cap' error the whole run gave (it was silently dropped at `left <= 0`)."""
    from test_email_tnef_s39 import attachment, tnef

    from medimg.sources import Limits, input_tasks

    png = b.image_bytes("PNG", size=(70, 50))
    path = tmp_path / "winmail.dat"
    path.write_bytes(tnef(*[attachment(f"{k}.png", png) for k in "abc"]))
    limits = Limits(zip_max_bytes=2 * len(png))
    whole = [i for task in input_tasks([str(path)], limits) for i in task()]
    assert [i.origin.rsplit(":", 1)[1] for i in whole] == ["a.png", "b.png", "c.png"]
    assert "add up past the zip_max_bytes cap" in whole[-1].error
    done = {f"{path}:a.png", f"{path}:b.png"}  # a run stopped after b.png
    again = [i for task in input_tasks([str(path)], limits, skip=done.__contains__) for i in task()]
    assert [(i.origin, i.error) for i in again] == [(whole[-1].origin, whole[-1].error)]


def test_a_pyramid_region_keeps_every_channel():
    """pyramid.read of several pages (a fluorescence slide's channels) stacks each page's region, not the first's
    alone."""
    import io

    import numpy as np
    import tifffile

    from medimg.sources import pyramid

    rng = np.random.default_rng(3)
    data = rng.integers(0, 255, (2, 1024, 1024), dtype=np.uint8)
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf, ome=True) as tw:
        tw.write(data, subifds=1, tile=(256, 256), compression="zlib", metadata={"axes": "CYX"})
        tw.write(np.ascontiguousarray(data[:, ::2, ::2]), subfiletype=1, tile=(256, 256), compression="zlib")
    with tifffile.TiffFile(io.BytesIO(buf.getvalue())) as tif:
        series = tif.series[0]
        assert len(series.levels) == 2
        planes, level, size = pyramid.read(series, [0, 1], (100, 200, 300, 300), 1.0, 2 * 300 * 300)  # just fits
    assert level == 0 and size == (300, 300) and planes.shape[0] == 2
    assert np.array_equal(planes[1].reshape(300, 300), data[1, 200:500, 100:400])


def test_a_pyramid_region_damaged_at_every_level_is_an_error_naming_the_tile():
    import io

    import tifffile
    from test_tiff_s39 import damaged, pyramid, slide

    from medimg.sources.pyramid import read

    data = pyramid(slide(1024, 768), 2)
    data = damaged(damaged(data, 0, 0), 1, 0)  # the top-left tile of both levels
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        with pytest.raises(ValueError, match=r"level 0 \(1,024×768\), tile 1 \(column 1, row 1\): .*; no other "
                                             r"level holds the region and decodes"):
            read(tif.series[0], [0], (0, 0, 300, 300), 1.0, 10**8)


def test_a_resumed_extract_stopped_after_redoing_its_last_input_leaves_no_nul_bytes(tmp_path):
    """--resume reads the last input again after cutting its rows off the manifest; a stop (Ctrl-C) right after
    must cut back to the last whole row, not to the manifest's length before the cut (zero bytes)."""
    from test_extract_s39 import pngs

    from medimg.extract import extract, prepare

    pngs(tmp_path / "a", 2), pngs(tmp_path / "b", 3)
    out = tmp_path / "out"
    sources = [str(tmp_path / "a"), str(tmp_path / "b")]
    assert len(list(extract(sources, out, folder=prepare(out, False)))) == 5
    stream = extract(sources, out, folder=prepare(out, True))
    assert next(stream)[0]["input"].endswith("2.png")  # b's last file (the run's last input) again
    stream.close()
    text = (out / "manifest.jsonl").read_bytes()
    assert b"\0" not in text
    rows = [json.loads(x) for x in text.decode().splitlines()]
    assert [r["file"] for r in rows] == [f"{i:06d}.png" for i in range(1, 6)]


def test_the_extract_lock_is_a_no_op_where_folders_cannot_be_locked(tmp_path, monkeypatch):
    """Without fcntl (Windows) the folder is used unlocked: made and released without an error."""
    import errno
    import sys
    import types

    from medimg.extract import _Lock

    monkeypatch.setitem(sys.modules, "fcntl", None)  # `import fcntl` raises ImportError
    lock = _Lock(tmp_path)
    assert lock.fd is None
    lock.release()
    lock.release()

    def no_locks(fd, how):  # a share that takes no locks (NFS without lockd)
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setitem(sys.modules, "fcntl", types.SimpleNamespace(LOCK_EX=2, LOCK_NB=4, flock=no_locks))
    lock = _Lock(tmp_path)
    assert lock.fd is None  # its descriptor closed and forgotten: never closed twice


def test_a_last_input_read_again_by_resume_leaves_none_of_its_old_pngs(tmp_path):
    """The last input's rows are cut and it is read again: its earlier PNGs go too (a zip now holding one picture
    fewer left 000003.png without a row)."""
    import zipfile

    from medimg.extract import extract, prepare

    first = pngs_in(tmp_path, "a.png")
    z = tmp_path / "b.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for k in range(2):
            zf.writestr(f"{k}.png", b.image_bytes("PNG", size=(90, 70 + k)))
    out = tmp_path / "out"
    assert len(list(extract([first, str(z)], out, folder=prepare(out, False)))) == 3
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("0.png", b.image_bytes("PNG", size=(90, 70)))
    assert list(extract([first, str(z)], out, folder=prepare(out, True))) == []  # its last member, 1.png, is gone
    rows = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(p.name for p in out.iterdir()) == sorted(["manifest.jsonl", *(r["file"] for r in rows)])
    assert len(rows) == 2


def pngs_in(folder, name: str) -> str:
    (folder / name).write_bytes(b.image_bytes("PNG", size=(90, 70)))
    return str(folder / name)


def test_a_message_with_just_three_usual_headers_is_a_message():
    """At least three of the usual headers, MIME-Version among them, make a message (without its name saying so)."""
    import base64

    from medimg.sources import Blob, ImageItem, Limits, open_input

    png = base64.encodebytes(b.image_bytes("PNG", size=(80, 60))).decode()
    text = ('MIME-Version: 1.0\r\nFrom: gp@example.org\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
            '--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename="scan.png"\r\n'
            f'Content-Transfer-Encoding: base64\r\n\r\n{png}\r\n--b--\r\n')
    got = list(open_input(Blob("saved", text.encode(), name="saved"), Limits()))
    assert [(i.origin, i.image.size) for i in got if isinstance(i, ImageItem)] == [("saved:scan.png", (80, 60))]


def test_winmail_dat_edges_of_records_and_attachments(monkeypatch):
    """A record of no data ending the file, a link (an attachment without bytes), the record cap exactly, and the
    bytes a record claims beyond the end named exactly."""
    from test_email_tnef_s39 import attachment, errors, found, items_of, notes, record, tnef

    from medimg.sources import tnef as reader

    png = b.image_bytes("PNG", size=(70, 50))
    data = tnef(attachment("a.png", png), attachment("link.png", None)) + record(1, 0x00068003, b"")
    got = items_of(data, "winmail.dat")
    assert found(got) == [("winmail.dat:a.png", (70, 50))] and errors(got) == []
    assert notes(got) == [("winmail.dat:link.png", "", "empty attachment (or a link to a file)")]
    records = 3 + 4 + 3 + 1  # tnef()'s own three, a.png's four, link.png's three, the empty one
    monkeypatch.setattr(reader, "MAX_RECORDS", records)
    assert errors(items_of(data, "winmail.dat")) == []
    monkeypatch.setattr(reader, "MAX_RECORDS", records - 1)
    assert "damaged: more than 10 records" in errors(items_of(data, "winmail.dat"))[-1][1]
    monkeypatch.undo()
    cut = tnef(attachment("a.png", png)) + record(2, 0x0006800F, b"x" * 40, length=100)
    assert "says 100 bytes, but 40 are left" in errors(items_of(cut, "winmail.dat"))[-1][1]


def test_the_extract_lock_closes_its_descriptor_once_and_a_refused_one_at_once(tmp_path):
    """Released twice (release(), then when dropped) it must not close the descriptor number a later file got; a
    lock refused because another run holds the folder keeps no descriptor open."""
    import gc
    import os

    pytest.importorskip("fcntl", reason="folders are locked with flock, which Windows lacks")
    from medimg.extract import _Lock

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to count open descriptors")
    lock = _Lock(tmp_path)
    assert lock.fd is not None
    number = lock.fd
    lock.release()
    other = os.open(tmp_path, os.O_RDONLY)  # most likely the number just freed
    try:
        lock.release()
        os.fstat(other)  # still open
    finally:
        os.close(other)
    assert number is not None
    held = _Lock(tmp_path)
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(ValueError, match="being written by another medimg run"):
        _Lock(tmp_path)
    assert len(os.listdir("/proc/self/fd")) == before
    del held  # a lock dropped without release() (a Folder prepared, never extracted into) frees the folder
    gc.collect()
    _Lock(tmp_path).release()


MBOX_ONE = ("From gp@example.org Mon Jan  1 00:00:00 2024\nFrom: gp@example.org\nTo: radiology@example.org\n"
            "Subject: one\nMIME-Version: 1.0\nContent-Type: text/plain\n\n{body}\n")
MBOX_TWO = ("From gp@example.org Tue Jan  2 00:00:00 2024\nFrom: gp@example.org\nTo: radiology@example.org\n"
            "Subject: two\nMIME-Version: 1.0\nContent-Type: image/png\nContent-Disposition: attachment; "
            "filename=\"scan.png\"\nContent-Transfer-Encoding: base64\n\n{png}\n")


def test_a_forward_quoted_in_a_mailbox_message_s_text_does_not_start_a_message():
    """`From the desk` then `Note: …` and a quoted Outlook header block (`-----Original Message-----`, From:, To:,
    Subject:): a line that is no header ends the look, so it is still the first message's text."""
    import base64

    from medimg.sources.email_file import _starts

    text = ("Please see the scan.\n\nFrom the radiology desk\nNote: scans below\n-----Original Message-----\n"
            "From: x@example.org\nTo: y@example.org\nSubject: old\n\nolder text")
    png = base64.encodebytes(b.image_bytes("PNG", size=(80, 60))).decode()
    data = (MBOX_ONE.format(body=text) + "\n" + MBOX_TWO.format(png=png)).encode()
    assert len(_starts(data)) == 2


def test_a_mailbox_message_over_the_parts_cap_in_its_uuencoded_text_stops_the_mailbox():
    """The parts cap holds for the whole file: files pasted into one message's text past it stop the mailbox's
    later messages too, as parts do."""
    import base64
    import binascii

    from medimg.sources import Blob, Limits, open_input

    uu = "".join(f"begin 644 f{k}.bin\n{binascii.b2a_uu(b'file %d' % k).decode()}`\nend\n" for k in range(8))
    png = base64.encodebytes(b.image_bytes("PNG", size=(80, 60))).decode()
    data = (MBOX_ONE.format(body="Files:\n" + uu) + "\n" + MBOX_TWO.format(png=png)).encode()
    got = list(open_input(Blob("inbox.mbox", data, name="inbox.mbox"), Limits(zip_max_entries=4)))
    assert not any(i.origin.endswith("scan.png") for i in got)
    assert "messages 2 to 2 not read (a cap above)" in got[-1].error
