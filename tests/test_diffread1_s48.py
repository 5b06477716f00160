"""Second read of session 48's changes: --resume's first line of a JSONL row over 1 MB."""

from __future__ import annotations

import io
import json
import re

from PIL import Image
from typer.testing import CliRunner

from medimg.cli import app

runner = CliRunner()


def flat(output: str) -> str:
    return " ".join(re.sub(r"[│╭╮╰╯─┃]", " ", output).split())


def test_resume_reads_a_first_jsonl_row_over_a_megabyte_whole(tmp_path, tiny_model_dir):
    """A row holds its input and source whole (a list's data: URI of 600 KB gave a 1.2 MB row): --resume still
    tells the file was written with --full from it, as before it read the first line once (it carried on
    without --full, rows of two shapes)."""
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 0, 0)).save(buf, "PNG")
    (tmp_path / "a.png").write_bytes(buf.getvalue())
    out = tmp_path / "r.jsonl"
    base = ["classify", str(tmp_path / "a.png"), "--model", str(tiny_model_dir), "--out", str(out)]
    assert runner.invoke(app, [*base, "--full"]).exit_code == 0
    row = json.loads(out.read_text(encoding="utf-8"))
    long = dict(row, input="data:image/png;base64," + "A" * 1_200_000, source=None)
    out.write_text(json.dumps(long) + "\n" + json.dumps(row) + "\n", encoding="utf-8")
    res = runner.invoke(app, [*base, "--resume"])
    assert res.exit_code == 2 and "written with --full" in flat(res.output)


def test_a_file_under_another_programs_lease_is_read_once_it_is_given_up(tmp_path):
    """Opened non-blocking (against a file swapped for a FIFO), a file another program held a write lease on (as
    Samba does for a client's open file) was "could not read file: Resource temporarily unavailable" at once; as
    open() does, the read now waits for the lease to be given up (the holder is told, and gives it up)."""
    import subprocess
    import sys

    import pytest

    from medimg.sources.base import Blob, Context, Limits
    from medimg.sources.files import read_file

    path = tmp_path / "leased.png"
    Image.new("RGB", (20, 20), (9, 9, 9)).save(path)
    holder = ("import fcntl, os, signal, sys, time\n"
              "fd = os.open(sys.argv[1], os.O_RDWR)\n"
              "signal.signal(signal.SIGIO, lambda *_: fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK))\n"
              "try:\n"
              "    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)\n"
              "except (OSError, AttributeError) as exc:\n"
              "    print('no lease', exc, flush=True); sys.exit()\n"
              "print('held', flush=True)\n"
              "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", holder, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        said = proc.stdout.readline()
        if not said.startswith("held"):
            pytest.skip(f"leases not available here: {said.strip()}")
        got = read_file(path, Context(Limits()))
    finally:
        proc.kill()
        proc.wait()
    assert isinstance(got, Blob), got


def test_fitting_elements_are_not_looked_up_in_the_dictionary(monkeypatch):
    """_fit_vrs runs on every DICOM read: a value that fits its explicit VR needs no dictionary VR (looking each up,
    a private tag's KeyError too, was 2.2 ms of a 258-element CT whose read took 2 ms); a misfit one still is."""
    import io as _io

    import pydicom
    from pydicom.data import get_testdata_file

    from medimg.sources import dicom

    ds = pydicom.dcmread(_io.BytesIO(open(get_testdata_file("CT_small.dcm"), "rb").read()), force=True)
    asked = []
    real = pydicom.datadict.dictionary_VR
    monkeypatch.setattr(pydicom.datadict, "dictionary_VR", lambda tag: asked.append(tag) or real(tag))
    dicom._fit_vrs(ds)
    assert asked == []
    elem = ds._dict[0x00080060]  # Modality written as UL (2 bytes): read as the dictionary's CS
    ds._dict[0x00080060] = elem._replace(VR="UL")
    dicom._fit_vrs(ds)
    assert asked == [0x00080060] and ds.Modality == "CT"
