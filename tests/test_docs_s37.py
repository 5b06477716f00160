"""What the docs show of this session's changes is what the code does: the summary line's count of empty files
(cli.md), the page's CSV marking of a formula (server.md), the srcset candidates a browser drops, the Office
locators, the caps formats.md states in words, and which data file a tar's `.hdr` reads (formats.md)."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builders import image_bytes
from medimg.cli import app
from words import flat

ROOT = Path(__file__).resolve().parents[1]


def _doc(name: str) -> str:
    return " ".join((ROOT / name).read_text(encoding="utf-8").split())  # lines joined: a phrase may wrap anywhere


def test_the_summary_line_cli_md_shows_is_the_one_classify_prints(tmp_path, tiny_model_dir):
    skipped, empty = map(int, re.search(r"`(\d+) skipped \((\d+) empty files; …\)`", _doc("docs/cli.md")).groups())
    folder = tmp_path / "delivery"
    folder.mkdir()
    (folder / "scan.png").write_bytes(image_bytes("PNG"))
    for k in range(empty):
        (folder / f"lost{k}.dcm").write_bytes(b"")
    for k in range(skipped - empty):
        (folder / f"notes{k}.txt").write_text("not an image")
    res = CliRunner().invoke(app, ["classify", str(folder), "--model", str(tiny_model_dir)])
    assert res.exit_code == 0, res.output
    assert f", {skipped} skipped ({empty} empty files; --show-skipped lists them)" in flat(res.output)


def test_the_csv_example_in_server_md_is_what_the_page_writes():
    from medimg.server.export import safe_cell

    pairs = re.findall(r"`([^`]+)` is written `([^`]+)`", _doc("docs/server.md"))
    assert pairs
    for name, written in pairs:
        assert safe_cell(name) == written


def test_the_srcset_candidates_formats_md_calls_invalid_are_dropped():
    from medimg.sources.media import parse_srcset

    said = re.search(r"a candidate whose descriptors are invalid \((.*?)\) is dropped", _doc("docs/formats.md"))
    tokens = re.findall(r"`([^`]+)`", said.group(1))
    assert len(tokens) >= 3 and "a width and a density" in said.group(1)
    for descriptors in [*tokens, "300w 2x"]:
        assert [url for url, _, _ in parse_srcset(f"a.png {descriptors}, b.png 300w")] == ["b.png"], descriptors
    assert [url for url, _, _ in parse_srcset("a.png 400w, b.png 2x")] == ["a.png", "b.png"]


def test_the_office_locators_the_docs_show_are_the_ones_written():
    from medimg.sources.office import places

    formats, cli = _doc("docs/formats.md"), _doc("docs/cli.md")
    assert "`slides 1, 2` or `slides 2–5`" in formats and "`slides 2–5`" in cli
    assert places({"slide 2", "slide 1"}) == "slides 1, 2"
    assert places({f"slide {k}" for k in range(2, 6)}) == "slides 2–5"


@pytest.mark.parametrize("doc, pattern, module, name, unit", [
    ("docs/formats.md", r"longer than ([\d,]+) characters holds for nothing", "media", "MAX_MEDIA", 1),
    ("docs/formats.md", r"the slice's brightest voxel is under (\d+)", "nifti", "DIM_UINT8", 1),
    ("docs/formats.md", r"headers waiting take at most (\d+) MB", "tar_pairs", "HEADERS_HELD", 2**20),
    ("docs/formats.md", r"A file of more than ([\d,]+) boxes on the way", "heif", "MAX_BOXES", 1),
])
def test_the_caps_formats_md_states_in_words_are_the_codes(doc, pattern, module, name, unit):
    import importlib

    said = re.search(pattern, _doc(doc))
    assert said, pattern
    value = getattr(importlib.import_module(f"medimg.sources.{module}"), name)
    assert int(said.group(1).replace(",", "")) * unit == value


def _analyze_pair(tmp_path: Path) -> dict[str, bytes]:
    """A NIfTI pair `a.hdr` + `a.img`, and an `a.img.gz` of other data: which one the header read is in its rows."""
    nib = pytest.importorskip("nibabel")
    import gzip

    import numpy as np

    nib.save(nib.Nifti1Pair(np.arange(32 * 32 * 5, dtype=np.int16).reshape(32, 32, 5), np.eye(4)), tmp_path / "a.img")
    files = {name: (tmp_path / name).read_bytes() for name in ("a.hdr", "a.img")}
    files["a.img.gz"] = gzip.compress(files["a.img"][: len(files["a.img"]) // 2])  # cut short: its header says so
    return files


def _tar(files: dict[str, bytes], order: list[str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in order:
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            tar.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


@pytest.mark.parametrize("order, read", [
    (["a.img", "a.img.gz", "a.hdr"], "a.img"),  # both came before it: the .img
    (["a.img.gz", "a.img", "a.hdr"], "a.img"),
    (["a.img.gz", "a.hdr", "a.img"], "a.img.gz"),  # only the .img.gz came before it
    (["a.hdr", "a.img.gz", "a.img"], "a.img.gz"),  # neither: the first to come after it
    (["a.hdr", "a.img", "a.img.gz"], "a.img"),
])
def test_a_tar_hdr_reads_the_data_file_formats_md_says(tmp_path, order, read):
    from medimg.sources import Blob, ImageItem, open_input

    assert "its `.img` if that came before it, else its `.img.gz` if that did, else whichever of the two comes " \
           "first after it" in _doc("docs/formats.md")
    items = list(open_input(Blob(origin="t.tar", data=_tar(_analyze_pair(tmp_path), order))))
    noted = [i.origin.split(":")[-1] for i in items if not isinstance(i, ImageItem) and "data file of a.hdr" in i.error]
    assert noted == [read]
    header = [i for i in items if i.origin == "t.tar:a.hdr"]
    assert header and isinstance(header[0], ImageItem) == (read == "a.img"), header


@pytest.mark.parametrize("container", ["none", "zip", "tar", "7z"])
def test_a_diffusion_series_is_shown_at_its_b0_where_formats_md_says(tmp_path, container):
    """The `.bval` beside a NIfTI is read beside a file and in a zip, not in a tar or 7z (no sibling there)."""
    nib = pytest.importorskip("nibabel")
    import zipfile

    import numpy as np

    from medimg.sources import ImageItem, open_input

    assert "read beside a file, in a zip or among uploads, not in a tar or 7z" in _doc("docs/formats.md")
    voxels = np.random.default_rng(1).integers(0, 500, (24, 24, 6, 5), dtype=np.int16)
    nib.save(nib.Nifti1Image(voxels, np.eye(4)), tmp_path / "dwi.nii.gz")
    files = {"dwi.nii.gz": (tmp_path / "dwi.nii.gz").read_bytes(), "dwi.bval": b"1000 1000 1000 0 1000\n"}
    if container == "none":
        (tmp_path / "dwi.bval").write_bytes(files["dwi.bval"])
        given = tmp_path / "dwi.nii.gz"
    elif container == "zip":
        given = tmp_path / "d.zip"
        with zipfile.ZipFile(given, "w") as z:
            for name, data in files.items():
                z.writestr(name, data)
    elif container == "tar":
        given = tmp_path / "d.tar"
        given.write_bytes(_tar(files, list(files)))
    else:
        py7zr = pytest.importorskip("py7zr")
        given = tmp_path / "d.7z"
        with py7zr.SevenZipFile(given, "w") as z:
            for name, data in files.items():
                z.writestr(data, name)
    [item] = [i for i in open_input(str(given)) if isinstance(i, ImageItem)]
    b0 = container in ("none", "zip")
    assert item.locator.endswith("volume 4 of 5" if b0 else "volume 3 of 5"), item.locator
    assert item.metadata.get("b_value") == (0.0 if b0 else None)
