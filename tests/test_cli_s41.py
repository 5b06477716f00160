"""`medimg --help` (and any command's start) no longer imports every reader: the file formats' libraries (pydicom,
nibabel, PyMuPDF, onnxruntime) load when a source or the model is first used, which halved `--help`'s time."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_cli_loads_no_reader_library():
    heavy = ["pydicom", "nibabel", "pymupdf", "fitz", "onnxruntime", "medimg.sources.files"]
    code = f"import sys, medimg.cli; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"imported by medimg.cli: {out.stdout.strip()}"
