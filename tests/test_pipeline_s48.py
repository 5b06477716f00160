"""Closing a stream early, and a program's exit, as a script drives the pipeline from Python (s48_pipeline)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from medimg import Blob, classify

NIB = Path(__import__("nibabel").__file__).parent / "tests" / "data"


def _mincs(n: int) -> list[Blob]:
    """MINC volumes as uploads: each is copied to a private work folder (h5py reads files only) while it is read."""
    data = (NIB / "minc2_1_scale.mnc").read_bytes()
    return [Blob(origin=f"v{i}.mnc", data=data) for i in range(n)]


@pytest.fixture
def tmpdir_here(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.mark.skipif(not (NIB / "minc2_1_scale.mnc").exists(), reason="no nibabel test data")
def test_a_break_returns_once_the_runs_threads_and_work_folders_are_gone(tiny_classifier, tmpdir_here):
    # the break returned while the readers went on, with their work folders: a script ending there hung in
    # Python's exit 7 times in 8 (a daemon thread stopped holding h5py's lock) and left the folders in /tmp
    before = set(threading.enumerate())
    for _ in classify(_mincs(6), tiny_classifier, workers=2, batch_size=1):
        break
    assert [t.name for t in threading.enumerate() if t not in before and t.is_alive()] == []
    assert list(tmpdir_here.iterdir()) == []


@pytest.mark.skipif(not (NIB / "minc2_1_scale.mnc").exists(), reason="no nibabel test data")
@pytest.mark.parametrize("how", ["closed", "unclosed"])
def test_a_script_ending_mid_stream_exits_and_leaves_no_work_folder(tiny_model_dir, tmp_path, how):
    # "unclosed": a stream kept in a variable, never closed, when the program ends: its readers were stopped by
    # Python wherever they were (the folder of the file each read left behind, or the exit hung)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    code = f"""
import sys
from medimg import Blob, classify
data = open({str(NIB / "minc2_1_scale.mnc")!r}, "rb").read()
records = classify([Blob(origin=f"v{{i}}.mnc", data=data) for i in range(6)], {str(tiny_model_dir)!r},
                   workers=2, batch_size=1)
print(next(records).input)
if {how!r} == "closed":
    records.close()
"""
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": os.pathsep.join(sys.path)}
    try:
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("the program did not exit")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "v0.mnc"
    assert list(tmp.iterdir()) == []


def test_a_close_does_not_wait_for_an_inputs_iterator_that_blocks(tiny_classifier, monkeypatch):
    # the thread reading the caller's iterator (a queue's get) may wait for good: closing must not wait for it
    import queue
    import time

    from medimg import pipeline

    monkeypatch.setattr(pipeline, "STOP_WAIT", 60.0)
    q: queue.Queue = queue.Queue()
    q.put(_mincs(1)[0])
    records = classify(iter(q.get, None), tiny_classifier, workers=2)
    assert next(records).input == "v0.mnc"
    start = time.monotonic()
    records.close()
    assert time.monotonic() - start < 20
    q.put(None)  # its iterator ends, and so does the thread reading it
