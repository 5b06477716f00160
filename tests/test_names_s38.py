"""Names as other tools write them: zip members under `./` (bsdtar, Windows' tar.exe), a zip that flags a name
UTF-8 when it is not, and a saved page whose folder or image names are not UTF-8 on disk."""

from __future__ import annotations

import io
import json
import os
import sys
import zipfile

import pytest
from PIL import Image
from typer.testing import CliRunner

from medimg.cli import app
from medimg.sources import ImageItem, open_input

runner = CliRunner()


def png(color=(200, 30, 30), size=(80, 80)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def read(path) -> list[tuple[str, str, str | None]]:
    """(origin, locator, error) of every item an input gives."""
    return [(i.origin, i.locator, None if isinstance(i, ImageItem) else i.error) for i in open_input(str(path))]


def jsonl_inputs(args: list[str], model) -> list[str]:
    res = runner.invoke(app, ["classify", *args, "--model", str(model), "-f", "jsonl"])
    assert res.exit_code == 0, res.output
    return [json.loads(line)["input"] for line in res.stdout.splitlines() if line.startswith("{")]


def test_zip_members_under_dot_folders_are_read(tmp_path, tiny_model_dir):
    """`./scan.png` (a zip of `.` by bsdtar, as Windows' tar.exe makes one) was left out as a hidden member, with
    no row at all; so was `study/./ct.png`. Tar and 7z names already dropped the `.` folders."""
    path = tmp_path / "dot.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("./", b"")
        zf.writestr("./scan.png", png())
        zf.writestr("study/./ct.png", png((10, 200, 10)))
        zf.writestr("./.hidden.png", png())  # a dot-file stays left out
    assert read(path) == [(f"{path}:scan.png", "", None), (f"{path}:study/ct.png", "", None)]
    # the name a row gives opens that member alone
    assert jsonl_inputs([f"{path}:study/ct.png"], tiny_model_dir) == [f"{path}:study/ct.png"]


def flagged_but_not_utf8(raw: bytes) -> bytes:
    """A zip of good.png, a member named `raw` (bytes that are not UTF-8) with the UTF-8 flag set in its local
    header and the central directory, and é.png (properly flagged)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("good.png", png())
        zf.writestr("X" * len(raw) + ".png", png((0, 0, 255)))
        zf.writestr("é.png", png((0, 255, 0)))
    data = bytearray(buf.getvalue().replace(b"X" * len(raw), raw))
    for sig, flags_at, name_len_at, name_at in ((b"PK\x03\x04", 6, 26, 30), (b"PK\x01\x02", 8, 28, 46)):
        at = data.find(sig)
        while at >= 0:
            n = int.from_bytes(data[at + name_len_at:at + name_len_at + 2], "little")
            if data[at + name_at:at + name_at + n].startswith(raw):
                data[at + flags_at + 1] |= 0x08  # bit 11: the name is UTF-8
            at = data.find(sig, at + 4)
    return bytes(data)


def test_a_zip_flagging_a_name_utf8_that_is_not_reads_every_member(tmp_path, tiny_model_dir):
    """zipfile raises UnicodeDecodeError on such a name (CPython gh-153426), and the whole archive was one error
    (`not a readable zip archive: 'utf-8' codec can't decode byte 0xe9`). Now the name is read as an unflagged one
    is (CP437, as `unzip` does not refuse it either), and every member is read."""
    path = tmp_path / "flagged.zip"
    path.write_bytes(flagged_but_not_utf8(b"caf\xe9"))
    with pytest.raises(UnicodeDecodeError):  # what zipfile does with it
        zipfile.ZipFile(path)
    assert read(path) == [(f"{path}:good.png", "", None), (f"{path}:cafΘ.png", "", None),
                          (f"{path}:é.png", "", None)]
    assert jsonl_inputs([f"{path}:cafΘ.png"], tiny_model_dir) == [f"{path}:cafΘ.png"]


@pytest.mark.skipif(sys.platform != "linux", reason="file names of any bytes are a Linux file system's")
def test_a_saved_page_reads_images_whose_names_on_disk_are_not_utf8(tmp_path):
    """A page in a folder whose name is Latin-1 was one error (`html: could not read: 'utf-8' codec can't encode
    character '\\udce9'`), and `<img src="caf%E9.png">` (the file `caf\\xe9.png`, which a browser opens) was not
    found (`'caf\ufffd.png' not found`)."""
    folder = os.path.join(os.fsencode(tmp_path), b"d\xe9")
    os.mkdir(folder)
    with open(os.path.join(folder, b"caf\xe9.png"), "wb") as f:
        f.write(png())
    with open(os.path.join(folder, "naïve.png".encode()), "wb") as f:
        f.write(png((0, 0, 200)))
    page = os.path.join(folder, b"page.html")
    with open(page, "wb") as f:  # a Windows page: its own text in windows-1252, its references %-escaped
        f.write('<meta charset="windows-1252"><img src="caf%E9.png"><img src="naïve.png">'.encode("cp1252"))
    assert read(os.fsdecode(page)) == [(os.fsdecode(page), "img #1 caf\udce9.png", None),
                                       (os.fsdecode(page), "img #2 naïve.png", None)]
