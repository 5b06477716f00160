"""extract, session 46: the start of its threads."""

from __future__ import annotations

import io
import threading
import time

import pytest
from PIL import Image

from medimg.extract import extract, prepare


def test_a_thread_that_cannot_start_stops_the_extract_threads_started_before_it(tmp_path, monkeypatch):
    """As classify's since session 45: "can't start new thread" (the process's thread limit) on the second worker
    left the first waiting for work for ever, and the folder's lock held until the process ended."""
    src = tmp_path / "in"
    src.mkdir()
    buf = io.BytesIO()
    Image.effect_noise((128, 96), 60).save(buf, "PNG")
    (src / "a.png").write_bytes(buf.getvalue())
    out = tmp_path / "out"
    start = threading.Thread.start

    def start_or_fail(self):
        if self.name == "medimg-extract-1":
            raise RuntimeError("can't start new thread")
        start(self)

    before = set(threading.enumerate())  # other tests' threads are not this run's
    monkeypatch.setattr(threading.Thread, "start", start_or_fail)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        list(extract([str(src)], out, workers=2, folder=prepare(out, resume=False)))
    monkeypatch.undo()

    def left():
        return [t.name for t in set(threading.enumerate()) - before if t.name.startswith("medimg-")]
    end = time.monotonic() + 30  # they stop at once; a wide margin for a slow machine
    while time.monotonic() < end and left():
        time.sleep(0.1)
    assert left() == []
    rows = [row for row, _ in extract([str(src)], out, workers=2, folder=prepare(out, resume=True))]  # the lock went
    assert [r.get("file") for r in rows] == ["000001.png"]
