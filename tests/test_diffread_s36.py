"""Edge cases found reading session 36's change as a whole: headers naming one data file in a tar or 7z read it
past zip_max_bytes, a data file given twice before its header lost its row, a compressed tar's later header was
told its data file is not in the archive, and files uuencoded into a message's text passed the parts cap."""
from __future__ import annotations

import binascii
import io
import zipfile

import pytest
from test_7z_pairs_s36 import seven
from test_email_s36 import message
from test_tar_pairs_s36 import mhd, tar_bytes, voxels

from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input

SIDE = 128


def items_of(data: bytes, name: str, **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def images(items: list) -> list[str]:
    return [i.origin for i in items if isinstance(i, ImageItem)]


def archive(kind: str, members: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    if kind == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members:
                zf.writestr(name, data)
        return buf.getvalue(), "e.zip"
    if kind == "7z":
        return seven(members), "e.7z"
    return tar_bytes(members, {"tar": "w", "tgz": "w:gz"}[kind]), f"e.{kind}"


@pytest.mark.parametrize("kind", ["zip", "tar", "tgz", "7z"])
@pytest.mark.parametrize("first", ["headers", "data"])
def test_headers_naming_one_data_file_read_it_within_zip_max_bytes(kind, first):
    """Each header's read of a data file is charged, as a zip's are: a tar or 7z gave all 8 headers the 16 KB of
    voxels under a 48 KB budget (a 4 MB tgz of 1,000 headers naming one 4 MiB file gave 1,000 images in 207 s;
    under the default 1 GiB, 255 in 57 s now)."""
    raw = voxels(3, SIDE).tobytes()
    headers = [(f"s/h{k}.mhd", mhd("x", SIDE, "a.raw")) for k in range(8)]
    members = [*headers, ("s/a.raw", raw)] if first == "headers" else [("s/a.raw", raw), *headers]
    data, name = archive(kind, members)
    items = items_of(data, name, zip_max_bytes=3 * len(raw))
    assert 1 <= len(images(items)) <= 3, images(items)
    spent = [i for i in items if isinstance(i, ItemError) and "zip_max_bytes" in i.error]
    if first == "headers" or kind in ("zip", "tar"):  # (a compressed one keeps no data file for later headers)
        assert spent, items


@pytest.mark.parametrize("kind", ["tar", "tgz", "7z"])
def test_a_data_file_given_twice_before_its_header_keeps_both_rows(kind):
    """`tar -r` can add a path again: the first a.raw, waiting for a header, was replaced by the second and
    vanished from the output (no row, no note)."""
    members = [("s/a.raw", voxels(1).tobytes()), ("s/a.raw", voxels(2).tobytes()), ("s/a.mhd", mhd("a"))]
    data, name = archive(kind, members)
    items = items_of(data, name)
    assert sorted(i.origin for i in items) == [f"{name}:s/a (2).raw", f"{name}:s/a.mhd", f"{name}:s/a.raw"]
    assert images(items) == [f"{name}:s/a.mhd"]


@pytest.mark.parametrize("kind", ["tgz", "7z"])
def test_a_header_after_its_data_file_was_read_with_another_says_so(kind):
    """In a compressed archive a data file is not kept once a header has read it: the next header naming it was
    told it is 'not in the same folder of the archive', which is false."""
    members = [("s/a.mhd", mhd("a")), ("s/a.raw", voxels(1).tobytes()), ("s/b.mhd", mhd("b", data_file="a.raw"))]
    data, name = archive(kind, members)
    by = {i.origin: i for i in items_of(data, name)}
    assert isinstance(by[f"{name}:s/a.mhd"], ImageItem)
    error = by[f"{name}:s/b.mhd"].error
    assert "not in the same folder" not in error and "read with a.mhd" in error, error


def test_files_uuencoded_in_the_text_count_against_the_parts_cap():
    """Each uuencoded file is an input of its own, as an attachment is: thirty of them gave thirty inputs under a
    cap of ten parts (a 200 MB text of tiny files, millions)."""
    msg = message()
    msg.set_content("See below.\n" + "".join(f"begin 644 f{k}.bin\n{binascii.b2a_uu(b'file %d' % k).decode()}`\n"
                                             "end\n" for k in range(30)))
    items = items_of(msg.as_bytes(), "letter.eml", zip_max_entries=10)
    members = [i.origin for i in items if i.origin != "letter.eml"]
    assert members == [f"letter.eml:f{k}.bin" for k in range(9)]  # the message itself is the first part
    assert items[-1].origin == "letter.eml" and "zip_max_entries" in items[-1].error
    assert len(items_of(msg.as_bytes(), "letter.eml", zip_max_entries=40)) == 31  # 30 files and the text's note


def test_headers_reading_a_plain_tar_member_given_before_them_are_charged():
    """A data file whose name does not wait for a header (a.bin) is a member of its own; headers after it read it
    again from a plain tar's bytes, each read charged (the eight headers were all read under a 48 KB budget)."""
    raw = voxels(3, SIDE).tobytes()
    members = [("s/a.bin", raw)] + [(f"s/h{k}.mhd", mhd("x", SIDE, "a.bin")) for k in range(8)]
    items = items_of(tar_bytes(members, "w"), "e.tar", zip_max_bytes=3 * len(raw))
    assert images(items) == ["e.tar:s/h0.mhd", "e.tar:s/h1.mhd"]
    assert all("zip_max_bytes" in i.error for i in items[3:]), items
