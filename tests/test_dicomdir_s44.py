"""A DICOMDIR given alone (session 44): the files it lists are read, from beside it; before, it was only a note."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import builders as b
from medimg.sources import ImageItem, ItemError, open_input
from medimg.sources.dicomdir import is_dicomdir

TESTS = b.dicom_dir() / "dicomdirtests"


def _export(tmp_path: Path) -> Path:
    root = tmp_path / "cd"
    shutil.copytree(TESTS, root)
    return root


def test_a_dicomdir_given_alone_reads_the_files_it_lists_then_notes_itself(tmp_path):
    root = _export(tmp_path)
    got = list(open_input(root / "DICOMDIR"))
    images = [i for i in got if isinstance(i, ImageItem)]
    assert len(images) == 31 and all(i.format == "DICOM" for i in images)
    assert images[0].origin == str(root / "77654033" / "CR1" / "6154")  # its records' order
    assert got[-1].origin == str(root / "DICOMDIR") and got[-1].skipped
    assert "the 31 files it lists were read" in got[-1].error
    assert not any(i.origin.startswith(str(root / "TINY_ALPHA")) for i in got)  # only what it lists


def test_implicit_and_big_endian_dicomdirs_and_an_empty_one(tmp_path):
    root = _export(tmp_path)
    for name in ("DICOMDIR-implicit", "DICOMDIR-bigEnd"):
        assert sum(isinstance(i, ImageItem) for i in open_input(root / name)) == 31, name
    (only,) = open_input(root / "DICOMDIR-empty.dcm")
    assert only.skipped and "listing no files" in only.error


def test_missing_files_lower_case_mounts_and_links_out_of_the_folder(tmp_path):
    root = _export(tmp_path)
    (root / "77654033" / "CR2" / "6247").unlink()  # copied in part
    os.rename(root / "77654033" / "CR3", root / "77654033" / "cr3")  # mounted in lower case
    outside = tmp_path / "secret"
    outside.mkdir()
    shutil.copy(root / "77654033" / "CR1" / "6154", outside / "x")
    (root / "77654033" / "CR1" / "6154").unlink()
    (root / "77654033" / "CR1" / "6154").symlink_to(outside / "x")
    got = {i.origin: i for i in open_input(root / "DICOMDIR")}
    assert "not found beside it" in got[str(root / "77654033" / "CR2" / "6247")].error
    assert isinstance(got[str(root / "77654033" / "cr3" / "6278")], ImageItem)
    assert "outside the DICOMDIR's folder" in got[str(root / "77654033" / "CR1" / "6154")].error
    assert sum(isinstance(i, ImageItem) for i in got.values()) == 29


def test_in_a_folder_it_stays_a_note_and_its_files_are_read_once(tmp_path):
    root = _export(tmp_path)
    shutil.rmtree(root / "TINY_ALPHA")
    for extra in root.glob("DICOMDIR-*"):
        extra.unlink()
    got = list(open_input(root))
    notes = [i for i in got if isinstance(i, ItemError) and i.origin == str(root / "DICOMDIR")]
    assert len(notes) == 1 and "whose images are read from those files" in notes[0].error
    assert sum(isinstance(i, ImageItem) for i in got) == 31


def test_only_a_dicomdir_head_is_taken_for_one():
    assert is_dicomdir((TESTS / "DICOMDIR").read_bytes()[:4096])
    assert not is_dicomdir((b.dicom_dir() / "CT_small.dcm").read_bytes()[:4096])
    assert not is_dicomdir(b"\0" * 128 + b"DICM" + b"\x02\x00\x02\x00UI\x16\x001.2.840.10008.1.3.10.1\0")


def test_classify_a_dicomdir_and_resume_passes_over_the_files_done(tmp_path):
    root = _export(tmp_path)
    out = tmp_path / "r.jsonl"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    run = [sys.executable, "-m", "medimg", "classify", str(root / "DICOMDIR"), "--model", "fast", "-o", str(out)]
    done = subprocess.run(run, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(r.get("error") is None for r in rows) == 31
    assert len(rows) == 31  # the DICOMDIR's own note is a skipped one, not written
    kept = rows[:10]  # a run stopped after ten files
    out.write_text("".join(json.dumps(r) + "\n" for r in kept))
    again = subprocess.run(run + ["--resume"], capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 31 and len({r["input"] for r in rows}) == 31  # none read twice, none lost
