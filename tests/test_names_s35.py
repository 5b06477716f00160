"""Names from hospitals' file systems and archives: zip names a tool wrote in UTF-8 without saying so, names with
control characters in the table and messages, and a damaged DICOM code that holds a name kept out of errors."""

from __future__ import annotations

import io
import json
import struct
import sys
import unicodedata
import zipfile
import zlib

from typer.testing import CliRunner

from medimg.cli import app

runner = CliRunner()


def _red() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (255, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


RED = _red()


def unflagged_zip(names: list[bytes], extra: dict[int, bytes] | None = None) -> bytes:
    """A zip whose member names are the given bytes with no UTF-8 flag (as macOS Archive Utility, Linux `zip` and
    Windows' legacy code pages write them); `extra` gives a member's extra field by its index."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, raw in enumerate(names):
            info = zipfile.ZipInfo(f"N{i:0{len(raw) - 1}d}", date_time=(2024, 1, 1, 0, 0, 0))
            info.extra = (extra or {}).get(i, b"")
            zf.writestr(info, RED)
    data = buf.getvalue()
    for i, raw in enumerate(names):  # same length: offsets stay right
        data = data.replace(f"N{i:0{len(raw) - 1}d}".encode(), raw)
    return data


def names_in(path, model) -> list[str]:
    res = runner.invoke(app, ["classify", str(path), "--model", str(model), "-f", "jsonl"])
    assert res.exit_code == 0, res.output
    return [json.loads(line)["input"] for line in res.stdout.splitlines() if line.startswith("{")]


def test_zip_names_in_utf8_without_the_flag_are_read_as_utf8(tmp_path, tiny_model_dir):
    """A Mac's zip of `レントゲン/胸部.png` (NFD, no UTF-8 flag) was named `πâ¼πâ│…/Φâ╕Θâ¿.png` (CP437)."""
    mac = unicodedata.normalize("NFD", "レントゲン/胸部.png")
    path = tmp_path / "mac.zip"
    path.write_bytes(unflagged_zip([mac.encode(), "Röntgen.png".encode("cp437"), b"plain.png"]))
    assert names_in(path, tiny_model_dir) == [f"{path}:{mac}", f"{path}:Röntgen.png", f"{path}:plain.png"]
    # that name given as an input opens that member alone
    assert names_in(f"{path}:{mac}", tiny_model_dir) == [f"{path}:{mac}"]


def test_zip_names_take_info_zips_unicode_path_when_it_matches(tmp_path, tiny_model_dir):
    """Info-ZIP and 7-Zip keep the name in a code page and its UTF-8 in the 0x7075 field, with the checksum of
    the name it stands for; a field whose checksum is another name's (the name was changed since) is ignored."""
    sjis = "写真.png".encode("cp932")

    def field(name: str, crc_of: bytes) -> bytes:
        data = b"\x01" + struct.pack("<I", zlib.crc32(crc_of)) + name.encode()
        return struct.pack("<HH", 0x7075, len(data)) + data

    path = tmp_path / "infozip.zip"
    path.write_bytes(unflagged_zip([sjis, b"b\x82.png"], {0: field("写真.png", sjis), 1: field("old.png", b"x")}))
    assert names_in(path, tiny_model_dir) == [f"{path}:写真.png", f"{path}:b\u00e9.png"]  # the other is CP437


def test_control_characters_in_names_cannot_drive_the_terminal(tmp_path, tiny_model_dir, monkeypatch):
    """A file named with ESC (`\\x1b]0;…` retitles a terminal, `\\x1b[2J` clears it), a C1 CSI or a bidi override
    is shown with escapes in the table and in messages; JSON escapes C1 too. Data keep the name as it is."""
    from medimg.cli import console

    monkeypatch.chdir(tmp_path)
    odd = ["a\x1b[2Jb.png", "t\x1b]0;owned\x07.png", "c\x9b31m.png", "x\u202egnp.exe.png", "n\nl.png"]
    for name in odd:
        (tmp_path / name).write_bytes(RED)
    (tmp_path / "bad\x1b[31m.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    res = runner.invoke(app, ["classify", *odd, "bad\x1b[31m.png", "--model", str(tiny_model_dir)])
    assert res.exit_code == 0, res.output
    for bad in ("\x1b", "\x9b", "\x07", "\u202e"):
        assert bad not in res.stdout, repr(res.stdout)
    table = "".join(res.stdout.split())
    for shown in (r"a\x1b[2Jb.png", r"t\x1b]0;owned\x07.png", r"c\x9b31m.png", r"x\u202egnp.exe.png", r"n\nl.png",
                  r"bad\x1b[31m.png"):
        assert shown in table, res.stdout

    with console.capture() as said:
        console.print("a.zip:\x1b[2J\x9b31m.png\u202e not read to the end:\nnext line", markup=False)
    assert said.get() == "a.zip:\\x1b[2J\\x9b31m.png\\u202e not read to the end:\nnext line\n"

    res = runner.invoke(app, ["classify", *odd, "--model", str(tiny_model_dir), "-f", "jsonl"])
    assert "\x9b" not in res.stdout and "\x1b" not in res.stdout
    assert [json.loads(line)["input"] for line in res.stdout.splitlines()] == odd  # the names as they are


def test_a_damaged_dicom_code_holding_a_name_is_left_out_of_errors(tmp_path, tiny_model_dir):
    """A CS value that is no code (a damaged header can read a name into it) is scrubbed from the error pydicom
    raises quoting it; a real code stays, as it says what was wrong."""
    import numpy as np
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    def dicom(pi: str) -> Dataset:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID = SecondaryCaptureImageStorage, ExplicitVRLittleEndian
        meta.MediaStorageSOPInstanceUID = generate_uid()
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
        ds.PatientName, ds.Modality, ds.Rows, ds.Columns, ds.SamplesPerPixel = "Doe^Jane", "CR", 16, 16, 1
        ds.PhotometricInterpretation, ds.BitsAllocated, ds.BitsStored, ds.HighBit = pi, 8, 8, 7
        ds.PixelRepresentation, ds.PixelData = 0, np.arange(256, dtype=np.uint8).tobytes()
        return ds

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns of the value that is no code
        dicom("Mu^ller Hans (Dr. K) 1961").save_as(tmp_path / "named.dcm", enforce_file_format=True)
        dicom("MONOCHROME7").save_as(tmp_path / "code.dcm", enforce_file_format=True)
    assert pydicom.dcmread(tmp_path / "named.dcm").PhotometricInterpretation.startswith("Mu^ller")
    res = runner.invoke(app, ["classify", str(tmp_path / "named.dcm"), str(tmp_path / "code.dcm"),
                              "--model", str(tiny_model_dir), "-f", "jsonl"])
    rows = {json.loads(line)["input"].rsplit("/", 1)[-1]: json.loads(line) for line in res.stdout.splitlines()}
    assert "Mu^ller" not in rows["named.dcm"]["error"] and "Hans" not in rows["named.dcm"]["error"]
    assert "'[…]'" in rows["named.dcm"]["error"], rows["named.dcm"]["error"]
    assert "MONOCHROME7" in rows["code.dcm"]["error"], rows["code.dcm"]["error"]


def test_shown_escapes_controls_and_keeps_text(monkeypatch):
    from medimg.output import json_line, shown

    assert shown("Röntgen 🩻 צילום レントゲン\udce9.png") == "Röntgen 🩻 צילום レントゲン\ufffd.png"
    assert shown("a\tb\nc\x7f\x85") == "a\\tb\\nc\\x7f\\x85"
    assert shown("a\tb\nc", keep="\n\t") == "a\tb\nc"
    line = json_line({"input": "c\x9b31m\x85.png"})
    assert line == '{"input": "c\\u009b31m\\u0085.png"}' and json.loads(line)["input"] == "c\x9b31m\x85.png"
    assert sys.getdefaultencoding() == "utf-8"


def test_resume_keeps_names_apart_that_differ_only_in_bytes_that_are_not_utf8(tmp_path, tiny_model_dir):
    """Latin-1 names Möller.png and Müller.png are both `M�ller.png` once made readable: a JSONL resume passed
    over Müller.png (its row cut off as the last input's) as if done, so it was never written."""
    import os

    folder = tmp_path / "lat"
    folder.mkdir()
    for raw in (b"M\xf6ller.png", b"M\xfcller.png", b"Z.png"):
        with open(os.path.join(os.fsencode(folder), raw), "wb") as f:
            f.write(RED)
    out = tmp_path / "r.jsonl"
    run = ["classify", str(folder), "--model", str(tiny_model_dir), "-o", str(out)]
    assert runner.invoke(app, run).exit_code == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    out.write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")  # stopped after Müller.png's row
    res = runner.invoke(app, [*run, "--resume"])
    assert res.exit_code == 0, res.output
    names = [json.loads(line)["input"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert names == [f"{folder}/M\udcf6ller.png", f"{folder}/M\udcfcller.png", f"{folder}/Z.png"]
