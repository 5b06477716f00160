"""A name given twice inside one container (a zip or tar appended to, a 7z, an e-mail or Outlook message with two
attachments of one file name, a PDF with two such attachments): every member is read and has an origin of its
own, the second of a name `a (2).png` as uploads are named, so rows join on (input, locator) and --resume
neither skips the second because the first was done nor reads one twice."""

import io
import json
import shutil
import subprocess
import tarfile
import warnings
import zipfile
from email.message import EmailMessage
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import builders
from medimg.cli import app
from medimg.sources import input_tasks
from medimg.sources.base import Blob, Context, Limits

runner = CliRunner()


def png(size: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, 30), (size * 3 % 256, 90, 20)).save(buf, "PNG")
    return buf.getvalue()


MEMBERS = [("a.png", png(40)), ("b.png", png(41)), ("a.png", png(42))]  # the second a.png another image


def _zip(path: Path, members=MEMBERS) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile's "Duplicate name"
        with zipfile.ZipFile(path, "w") as z:
            for name, data in members[:-1]:
                z.writestr(name, data)
        with zipfile.ZipFile(path, "a") as z:  # appended later, as `zip` or zipfile's "a" mode does
            z.writestr(*members[-1])


def _tar(path: Path, members=MEMBERS, mode: str = "w") -> None:
    with tarfile.open(path, mode) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


def _tar_appended(path: Path, members=MEMBERS) -> None:
    """Built with the tar tool where there is one: `tar -r` adds the second a.png after the first."""
    if shutil.which("tar") is None:
        _tar(path, members)
        return
    work = path.parent / "tar-work"
    work.mkdir()
    for k, (name, data) in enumerate(members):
        (work / name).write_bytes(data)
        subprocess.run(["tar", "-rf" if k else "-cf", str(path), name], cwd=work, check=True)


def _7z(path: Path, members=MEMBERS) -> None:
    import py7zr

    with py7zr.SevenZipFile(path, "w") as s:
        for name, data in members:
            s.writestr(data, name)


def _eml(path: Path, members=MEMBERS) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.org", "b@example.org", "scans"
    msg.set_content("see attached")
    for name, data in members:
        msg.add_attachment(data, maintype="image", subtype="png", filename=name)
    path.write_bytes(msg.as_bytes())


def _msg(path: Path, members=MEMBERS) -> None:
    path.write_bytes(builders.outlook_msg(members))


BUILT = {"zip": _zip, "tar": _tar, "tar -r": _tar_appended, "tar.gz": lambda p: _tar(p, mode="w:gz"), "7z": _7z,
         "eml": _eml, "msg": _msg}


def _suffix(kind: str) -> str:
    return {"tar -r": "tar"}.get(kind, kind)


@pytest.mark.parametrize("kind", BUILT)
def test_every_member_of_a_name_given_twice_is_read_with_an_origin_of_its_own(tmp_path, kind):
    path = tmp_path / f"set.{_suffix(kind)}"
    BUILT[kind](path)
    images = [i for t in input_tasks([path]) for i in t() if getattr(i, "image", None) is not None]
    assert [(i.origin, i.locator, i.image.width) for i in images] == [
        (f"{path}:a.png", "", 40), (f"{path}:b.png", "", 41), (f"{path}:a (2).png", "", 42)]


def test_two_attachments_of_one_name_in_a_pdf_keep_their_extension_apart():
    import pymupdf

    doc = pymupdf.open()
    doc.new_page()
    for k, (name, data) in enumerate(MEMBERS):
        doc.embfile_add(f"file{k}", data, filename=name, ufilename=name)
    items = list(Context(Limits()).open_blob(Blob("d.pdf", doc.tobytes(), name="d.pdf")))
    assert [(i.origin, i.locator, i.image.width) for i in items if getattr(i, "image", None) is not None] == [
        ("d.pdf", "attachment a.png", 40), ("d.pdf", "attachment b.png", 41), ("d.pdf", "attachment a (2).png", 42)]


def test_a_later_member_really_named_like_a_renamed_one(tmp_path):
    """A zip's and a 7z's names are all known first: a real `a (2).png` keeps its name, as uploads do. A tar is
    read in one pass: the real one, coming after, is the one renamed. Every origin is unique either way."""
    members = [("a.png", png(40)), ("a.png", png(41)), ("a (2).png", png(42))]
    for kind, build, names in [("zip", _zip, ["a.png", "a (3).png", "a (2).png"]),
                               ("7z", _7z, ["a.png", "a (3).png", "a (2).png"]),
                               ("tar", _tar, ["a.png", "a (2).png", "a (2) (2).png"])]:
        build(tmp_path / f"s.{kind}", members)
        blob = Blob(f"s.{kind}", (tmp_path / f"s.{kind}").read_bytes(), name=f"s.{kind}")
        images = [i for i in Context(Limits()).open_blob(blob) if getattr(i, "image", None) is not None]
        assert [(i.origin, i.image.width) for i in images] == [
            (f"s.{kind}:{n}", w) for n, w in zip(names, (40, 41, 42))], kind


def test_unique_names_in_a_folder_and_as_uploads_name_them():
    from medimg.sources.files import UniqueNames

    names = UniqueNames()
    assert [names(n) for n in ["s/a.nii.gz", "s/a.nii.gz", "v1.2/x", "v1.2/x", ".h", ".h"]] == [
        "s/a.nii.gz", "s/a (2).nii.gz", "v1.2/x", "v1.2/x (2)", ".h", ".h (2)"]


def _mhd_pairs_zip(second_raw: bool = True) -> tuple[bytes, list[bytes]]:
    """Two series' a.mhd + a.raw in one zip folder (appended, as two exports joined), each its own voxels."""
    raws = [np.random.default_rng(k).integers(0, 255, (8, 8), dtype=np.uint8).tobytes() for k in range(2)]
    header = b"ObjectType = Image\nNDims = 2\nDimSize = 8 8\nElementType = MET_UCHAR\nElementDataFile = a.raw\n"
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buf, "w") as z:
            for k in range(2):
                z.writestr("s/a.mhd", header)
                if k == 0 or second_raw:
                    z.writestr("s/a.raw", raws[k])
    return buf.getvalue(), raws


def test_the_kth_header_of_a_name_in_a_zip_reads_the_kth_data_file_of_its_name():
    data, raws = _mhd_pairs_zip()
    items = list(Context(Limits()).open_blob(Blob("p.zip", data, name="p.zip")))
    by = {i.origin: i for i in items}
    assert sorted(by) == ["p.zip:s/a (2).mhd", "p.zip:s/a (2).raw", "p.zip:s/a.mhd", "p.zip:s/a.raw"]
    for origin, raw in [("p.zip:s/a.mhd", raws[0]), ("p.zip:s/a (2).mhd", raws[1])]:
        assert np.array_equal(np.asarray(by[origin].image.convert("L")), np.frombuffer(raw, np.uint8).reshape(8, 8))
    for origin in ("p.zip:s/a.raw", "p.zip:s/a (2).raw"):
        assert by[origin].skipped and by[origin].error == "skipped: the data file of a.mhd, read with it"


def test_a_header_given_twice_with_one_data_file_reads_it_both_times():
    data, raws = _mhd_pairs_zip(second_raw=False)
    items = list(Context(Limits()).open_blob(Blob("p.zip", data, name="p.zip")))
    images = [i for i in items if getattr(i, "image", None) is not None]
    assert [i.origin for i in images] == ["p.zip:s/a.mhd", "p.zip:s/a (2).mhd"]
    for i in images:
        assert np.asarray(i.image.convert("L")).tobytes() == raws[0]


def test_a_resumed_run_passes_over_only_the_member_it_did(tmp_path):
    path = tmp_path / "set.zip"
    _zip(path)
    tasks = list(input_tasks([path], skip=lambda origin: origin == f"{path}:a.png"))
    assert [t.origin for t in tasks] == [f"{path}:b.png", f"{path}:a (2).png"]


@pytest.mark.parametrize("kind", ["zip", "tar", "7z", "eml"])
def test_classify_resumed_after_any_row_gives_the_rows_of_a_whole_run(tmp_path, tiny_model_dir, kind):
    path = tmp_path / f"set.{kind}"
    BUILT[kind](path, [*MEMBERS, ("c.png", png(43))])  # a, b, a again, c: stop after b, the second a is to do
    base = ["classify", str(path), "--model", str(tiny_model_dir), "--show-skipped"]
    whole = tmp_path / "whole.jsonl"
    assert runner.invoke(app, [*base, "--out", str(whole)]).exit_code == 0
    lines = whole.read_text().splitlines(keepends=True)
    rows = [json.loads(x) for x in lines]
    assert [(r["input"].rsplit(":", 1)[-1], r.get("width")) for r in rows if r.get("width")] == [
        ("a.png", 40), ("b.png", 41), ("a (2).png", 42), ("c.png", 43)]
    for cut in range(1, len(lines)):
        out = tmp_path / f"cut{cut}.jsonl"
        out.write_text("".join(lines[:cut]) + lines[cut][:20])  # stopped after `cut` rows, the next half written
        res = runner.invoke(app, [*base, "--out", str(out), "--resume"])
        assert res.exit_code == 0, res.output
        assert [json.loads(x) for x in out.read_text().splitlines()] == rows, cut


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_extract_resumed_after_any_row_gives_the_files_of_a_whole_run(tmp_path, kind):
    path = tmp_path / f"set.{kind}"
    BUILT[kind](path, [*MEMBERS, ("c.png", png(43))])
    whole = tmp_path / "whole"
    assert runner.invoke(app, ["extract", str(path), "--out", str(whole)]).exit_code == 0
    lines = (whole / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(x)["input"].rsplit(":", 1)[-1] for x in lines] == ["a.png", "b.png", "a (2).png", "c.png"]
    files = {p.name: p.read_bytes() for p in whole.iterdir()}
    for cut in range(1, len(lines)):
        out = tmp_path / f"cut{cut}"
        shutil.copytree(whole, out)
        for row in lines[cut:]:  # the PNGs of the rows not written yet are not there either
            (out / json.loads(row)["file"]).unlink()
        (out / "manifest.jsonl").write_text("".join(x + "\n" for x in lines[:cut]) + lines[cut][:25])
        res = runner.invoke(app, ["extract", str(path), "--out", str(out), "--resume"])
        assert res.exit_code == 0, res.output
        assert {p.name: p.read_bytes() for p in out.iterdir()} == files, cut


@pytest.mark.parametrize("kind", ["zip", "tar", "7z"])
def test_the_name_a_row_gives_opens_that_member_alone(tmp_path, kind):
    """`set.zip:a (2).png`, as an input, is the second a.png; `set.zip:a.png` the first alone (it was both)."""
    path = tmp_path / f"set.{kind}"
    BUILT[kind](path)
    for name, width in [("a.png", 40), ("a (2).png", 42)]:
        images = [i for t in input_tasks([f"{path}:{name}"]) for i in t() if getattr(i, "image", None) is not None]
        assert [(i.origin, i.image.width) for i in images] == [(f"{path}:{name}", width)]


@pytest.mark.parametrize("mode", ["w", "w:gz"])
@pytest.mark.parametrize("raw_first", [False, True])
def test_two_series_of_one_name_in_a_tar_pair_in_archive_order(mode, raw_first):
    """With tar pairing (s36_tarpairs): each a.mhd reads the a.raw of its own series, as in a zip."""
    raws = [np.random.default_rng(k).integers(0, 255, (8, 8), dtype=np.uint8).tobytes() for k in range(2)]
    header = b"ObjectType = Image\nNDims = 2\nDimSize = 8 8\nElementType = MET_UCHAR\nElementDataFile = a.raw\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:
        for k in range(2):
            pair = [("s/a.mhd", header), ("s/a.raw", raws[k])]
            for name, data in pair[::-1] if raw_first else pair:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    items = list(Context(Limits()).open_blob(Blob("p.tar", buf.getvalue(), name="p.tar")))
    by = {i.origin: i for i in items}
    for origin, raw in [("p.tar:s/a.mhd", raws[0]), ("p.tar:s/a (2).mhd", raws[1])]:
        assert np.asarray(by[origin].image.convert("L")).tobytes() == raw
    for origin in ("p.tar:s/a.raw", "p.tar:s/a (2).raw"):
        assert by[origin].skipped and by[origin].error == "skipped: the data file of a.mhd, read with it"
