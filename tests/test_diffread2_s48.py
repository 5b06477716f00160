"""Second read of session 48's later changes (diffread2)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import medimg.sources as sources
from medimg import classify
from medimg.server import ServerConfig, Worker
from medimg.sources.base import ItemError
from medimg.training.dataset import CorpusError, excluded


def test_an_unclosed_quote_in_the_reason_column_is_refused_not_swallowing_the_rows_after(tmp_path):
    ex = tmp_path / "exclude.csv"
    ex.write_text('path,reason\na.png,"bad reason\nb.png,dup\nc.png,x\n')
    with pytest.raises(CorpusError, match="line 2: a quote"):
        excluded(ex)  # b.png and c.png were read into a.png's reason: not left out, unsaid


def test_a_path_object_naming_a_file_data_colon_is_that_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.fromarray((np.random.default_rng(0).random((96, 96, 3)) * 255).astype("uint8")).save("data:x.png")
    recs = list(classify(Path("./data:x.png")))  # Path drops the ./ the hint says to give
    assert [r.error for r in recs] == [None]


def test_the_time_limit_answer_does_not_wait_for_a_busy_reader(monkeypatch):
    release = threading.Event()

    def slow(url, ctx):  # a decode that checks nothing (a large image, say) for longer than the request's time
        release.wait(12)
        yield ItemError(url, "", "late")

    monkeypatch.setattr(sources, "_open_url", slow)

    def inputs():
        yield "http://127.0.0.1:9/a"
        time.sleep(1.0)  # b begins a second later: still busy when a's time runs out
        yield "http://127.0.0.1:9/b"

    worker = Worker(ServerConfig(request_timeout=2.0))
    seen = []
    try:
        out = worker.run(inputs(), on_record=lambda rec: seen.append(time.monotonic()))
        back = time.monotonic()
    finally:
        release.set()
    assert out.note and "time limit" in out.note
    # answered at the record past the deadline, not up to STOP_WAIT (2 s: the API's whole grace) after it
    assert back - seen[-1] < 1.0
