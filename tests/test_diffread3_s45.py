"""A second read of session 45's changes: the server's work folder as TMPDIR (session 45)."""

from __future__ import annotations

import os
import tempfile


def test_a_second_server_in_the_same_process_has_a_tmpdir_that_exists(tmp_path, monkeypatch):
    """`server.run` makes a work folder the process's TMPDIR, and the server's lifespan removes it when it stops.
    TMPDIR still named the removed folder: a second `run` in the same process (a notebook, after Ctrl-C) made no
    new one, and every upload over 1 MB (spooled to a temporary file) got a 503, "could not store the upload"."""
    from medimg import scratch

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    for name in ("GRADIO_TEMP_DIR", "MPLCONFIGDIR"):
        monkeypatch.delenv(name, raising=False)
    made = []
    try:
        first = scratch.server_scratch()
        made += first
        assert os.environ["TMPDIR"] != str(tmp_path)
        for folder in first:  # as the lifespan does when the server stops
            scratch.remove(folder)
        assert tempfile.gettempdir() == os.environ["TMPDIR"] == str(tmp_path)
        made += scratch.server_scratch()  # the second server
        assert os.path.isdir(tempfile.gettempdir()) and tempfile.gettempdir() != str(tmp_path)
        with tempfile.SpooledTemporaryFile(max_size=1) as spooled:  # an upload body over the spool's size
            spooled.write(b"an upload")
            spooled.seek(0)
            assert spooled.read() == b"an upload"
    finally:
        for folder in made:
            scratch.remove(folder)
    assert tempfile.gettempdir() == str(tmp_path) and list(tmp_path.iterdir()) == []


def _mhd_pair() -> list[tuple[str, bytes]]:
    """A small MetaImage volume as a header and its detached data file (four 32 × 32 slices)."""
    import numpy as np

    header = ("ObjectType = Image\nNDims = 3\nDimSize = 32 32 4\nElementType = MET_UCHAR\nElementSpacing = 1 1 1\n"
              "ElementDataFile = a.raw\n").encode()
    return [("a.mhd", header), ("a.raw", (np.arange(4 * 32 * 32) % 251).astype(np.uint8).tobytes())]


def test_a_time_limited_request_does_not_call_a_data_file_read_with_its_header_unread(tiny_classifier):
    """a.mhd + a.raw + x.png, the time limit reached at a.mhd's first record: a.raw, whose bytes a.mhd had read,
    got the row "not read: the time limit was reached before it", counted among the errors. It now gets the note
    a whole run gives it (a skipped row, shown with show_skipped)."""
    import io

    from fastapi.testclient import TestClient
    from PIL import Image

    from medimg.server import ServerConfig, Worker, create_app

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(buf, "PNG")
    cfg = ServerConfig(request_timeout=1e-6)
    c = TestClient(create_app(cfg, Worker(cfg, tiny_classifier), ui=False))
    files = [("files", (name, data)) for name, data in [*_mhd_pair(), ("x.png", buf.getvalue())]]
    body = c.post("/api/classify?show_skipped=true", files=files).json()
    assert "time limit" in body["note"]
    rows = {x["input"]: x for x in body["results"]}
    assert rows["a.raw"]["error"] == "skipped: the data file of a.mhd, read with it" and rows["a.raw"]["skipped"]
    assert rows["x.png"]["error"] == "not read: the time limit was reached before it"
    assert body["summary"]["errors"] == 1 and body["summary"]["skipped"] == 1
    shown = c.post("/api/classify", files=files).json()["results"]
    assert [x["input"] for x in shown] == [x["input"] for x in body["results"] if x["input"] != "a.raw"]


def test_the_pages_unread_rows_give_a_data_file_read_with_its_header_its_note(tmp_path):
    """The page's uploads the same way, after Stop too; each by the name the page gives it."""
    from medimg.server.ui import _blobs, _unread

    paths = []
    for name, data in _mhd_pair():
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    data_of: dict = {}
    blobs = _blobs(paths, 10**6, ["scan.mhd", "a.raw"], data_of)
    assert next(blobs).origin == "scan.mhd" and data_of == {"a.raw": "scan.mhd"}
    for stopped, note in ((True, None), (False, "stopped: the time limit")):
        rows = _unread(["scan.mhd", "a.raw", "x.png"], {"scan.mhd"}, stopped, note, data_of)
        assert [(r.input, r.skipped, r.error) for r in rows] == [
            ("a.raw", True, "skipped: the data file of scan.mhd, read with it"),
            ("x.png", False, "not read: the run was stopped before it" if stopped
             else "not read: the time limit was reached before it")]
