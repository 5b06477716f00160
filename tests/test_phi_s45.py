"""Patient data left behind or shown by a side door (session 45)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MARKER = "ZQXDOE"

# As `medimg serve` starts, then reads an uploaded slide: OpenSlide reads only files, so slide.py copies it to a
# temporary folder; the read is held there (the stand-in for a long read) until the test kills the process.
SERVER_READING_A_SLIDE = f"""
import os, sys, time
from medimg.scratch import server_scratch
server_scratch()
import medimg.sources.slide as slide
def held(path, ctx):
    print(path, flush=True)
    time.sleep(60)
    yield from ()
slide.open_slide_path = held
from medimg.sources import Blob, open_input
list(open_input(Blob("upload.svs", b"II*\\0{MARKER} label", name="upload.svs")))
"""


def _env(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("GRADIO_TEMP_DIR", "MPLCONFIGDIR")}
    return {**env, "TMPDIR": str(tmp)}


def test_a_killed_servers_copy_of_an_uploaded_slide_is_removed_by_the_next_server(tmp_path):
    """An uploaded slide (its label picture shows the patient's name), CZI or MINC file is copied to a temporary
    folder for a library that reads only files. A server killed while reading it (the out-of-memory killer, a
    GLib abort in OpenSlide) left that copy in TMPDIR for good: the next server removed only its own kind of
    folders. The server's temporary files now live in a folder of those kinds."""
    child = subprocess.Popen([sys.executable, "-c", SERVER_READING_A_SLIDE], stdout=subprocess.PIPE, text=True,
                             env=_env(tmp_path))
    try:
        copy = Path(child.stdout.readline().strip())
        assert copy.is_file() and MARKER.encode() in copy.read_bytes(), copy
        assert tmp_path in copy.parents
    finally:
        child.kill()
        child.wait(timeout=30)
    assert copy.exists()  # killed: nothing of its own removed it
    nxt = subprocess.run([sys.executable, "-c", "from medimg.scratch import server_scratch, remove\n"
                          "for f in server_scratch(): remove(f)"], env=_env(tmp_path), timeout=120,
                         capture_output=True, text=True)
    assert nxt.returncode == 0, nxt.stderr
    left = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not copy.exists() and left == [], left
    assert list(tmp_path.iterdir()) == []


def test_the_servers_temporary_files_go_to_its_own_folder_and_go_with_it(tmp_path, monkeypatch):
    """server_scratch points the process's TMPDIR at a private folder it holds (so a child process, such as the
    browser that renders pages, writes there too), and the server folders made afterwards still sit beside it."""
    import tempfile

    from medimg import scratch

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    for name in ("GRADIO_TEMP_DIR", "MPLCONFIGDIR"):
        monkeypatch.delenv(name, raising=False)
    made = scratch.server_scratch()
    try:
        (work,) = [f for f in made if f.name.startswith("medimg-work-")]
        assert tempfile.gettempdir() == os.environ["TMPDIR"] == str(work) and work.parent == tmp_path
        assert (work.stat().st_mode & 0o777) == 0o700
        again = scratch.server_scratch()  # `run` calls it again when the CLI called it first: no second one
        made += again
        assert not [f for f in again if f.name.startswith("medimg-work-")]
        pages = scratch.private_folder("medimg-pages-")
        made.append(pages)
        assert pages.parent == tmp_path
    finally:
        for folder in made:
            scratch.remove(folder)
    assert list(tmp_path.iterdir()) == []


def _ct_whose_photometric_runs_on_over_a_name(name: str) -> bytes:
    """A CT whose Photometric Interpretation's length was damaged to take in the element after it, a name: its
    value then holds that element's tag, VR, length (a byte of len(name)) and the name."""
    import struct

    import pydicom

    import builders as b

    ds = b.dicom_dataset(pydicom.uid.ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.2", "CT")
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = bytes(512)
    ds.add_new(0x00280005, "LO", name)
    data = bytearray(b.dicom_bytes(ds))
    at = data.find(b"\x28\x00\x04\x00CS")
    (length,) = struct.unpack("<H", data[at + 6:at + 8])
    struct.pack_into("<H", data, at + 6, length + 8 + len(name) + len(name) % 2)
    return bytes(data)



@pytest.mark.parametrize("name", [f"{MARKER}^JO", f"{MARKER}^JOHN"])  # lengths 10 and 12: a line feed, a form feed
def test_a_damaged_value_that_took_in_a_name_is_left_out_of_the_error(name):
    """pydicom's error quotes the Photometric Interpretation it cannot use; the value was removed from the text
    only after the text was cut into lines and joined with spaces, and the length byte of the element taken in
    (10 or 12: a line end to str.splitlines) had cut the value in two first: the name stayed in the error."""
    from medimg.sources import Blob, ItemError, open_input

    (item,) = open_input(Blob("scan.dcm", _ct_whose_photometric_runs_on_over_a_name(name), name="scan.dcm"))
    assert isinstance(item, ItemError) and "Photometric Interpretation" in item.error, item
    assert MARKER not in item.error and "[…]" in item.error, item.error


# A run (`medimg classify`, `extract`, a Ray actor) reading a zipped slide: its copy is held until it is killed.
RUN_READING_A_SLIDE = SERVER_READING_A_SLIDE.replace("from medimg.scratch import server_scratch\nserver_scratch()\n", "")


def test_a_killed_runs_copy_of_a_zipped_slide_is_removed_by_the_next_run(tmp_path):
    """`medimg classify` (or a Ray actor, out of memory) killed while OpenSlide read a slide from a zip left the
    slide's copy in TMPDIR for good, and no later run or server removed it. Its folder is now locked while in use,
    and the next run removes the ones no live process holds."""
    child = subprocess.Popen([sys.executable, "-c", RUN_READING_A_SLIDE], stdout=subprocess.PIPE, text=True,
                             env=_env(tmp_path))
    try:
        copy = Path(child.stdout.readline().strip())
        assert copy.is_file() and MARKER.encode() in copy.read_bytes(), copy
        assert copy.parent.parent == tmp_path
        beside = subprocess.run([sys.executable, "-m", "medimg", "extract", str(tmp_path / "none.png"), "--out",
                                 str(tmp_path.parent / f"{tmp_path.name}-out1")], env=_env(tmp_path), timeout=120,
                                capture_output=True, text=True)
        assert copy.exists(), beside.stderr  # a run beside it leaves a live one's folder alone
    finally:
        child.kill()
        child.wait(timeout=30)
    assert copy.exists()
    nxt = subprocess.run([sys.executable, "-m", "medimg", "extract", str(tmp_path / "none.png"), "--out",
                          str(tmp_path.parent / f"{tmp_path.name}-out2")], env=_env(tmp_path), timeout=120,
                         capture_output=True, text=True)
    assert "none.png" in nxt.stdout + nxt.stderr, (nxt.stdout, nxt.stderr)
    assert not copy.exists() and list(tmp_path.iterdir()) == []
