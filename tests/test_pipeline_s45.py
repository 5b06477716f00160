"""The pipeline as a data-curation script drives it from Python (s45_pipeline)."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image

from medimg import Blob, classify
from medimg.sources import ImageItem, registry
from medimg.sources.base import SourcePlugin


def _png(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def exiting_source(monkeypatch):
    """A source that gives one image, then raises SystemExit (a library calling sys.exit, say)."""
    monkeypatch.setattr(registry, "_PLUGINS", list(registry.plugins()))

    def open_exiting(blob, ctx):
        yield ImageItem(origin=blob.origin, locator="image 1", image=Image.new("RGB", (40, 40), "red"), format="PNG")
        raise SystemExit(3)

    registry.register(SourcePlugin("exiting", lambda head, blob: head.startswith(b"EXIT"), open_exiting, priority=0))


def _outcome(run, seconds: float = 60.0):
    """What `run()` returned or raised, or "hung" when it took longer than `seconds`."""
    out: list = []

    def go():
        try:
            out.append(run())
        except BaseException as exc:
            out.append(exc)

    th = threading.Thread(target=go, daemon=True)
    th.start()
    th.join(seconds)
    return out[0] if out else "hung"


def test_a_systemexit_in_a_reader_is_an_error_for_its_input_with_one_worker(tiny_classifier, exiting_source):
    # it ended the reader's thread: with one worker the inputs after it were never read and the run hung forever
    # (input_timeout or not). A reader's exit is one bad input's doing, as any other exception it raises
    def run():
        ins = [Blob("a.png", _png(1)), Blob("x.bin", b"EXIT"), Blob("b.png", _png(2))]
        return [(r.input, r.error) for r in classify(ins, classifier=tiny_classifier, workers=1)]

    got = _outcome(run)
    assert got == [("a.png", None), ("x.bin", None), ("x.bin", "internal error: SystemExit: 3"), ("b.png", None)]


def test_a_systemexit_in_a_reader_is_an_error_with_several_workers(tiny_classifier, exiting_source):
    # before: the input's image came out and nothing said it was cut short (and a thread was gone for the run)
    def run():
        ins = [Blob("x.bin", b"EXIT")] + [Blob(f"{i}.png", _png(i)) for i in range(3)]
        return [(r.input, r.error) for r in classify(ins, classifier=tiny_classifier, workers=2)]

    got = _outcome(run)
    assert got == [("x.bin", None), ("x.bin", "internal error: SystemExit: 3"),
                   ("0.png", None), ("1.png", None), ("2.png", None)]


def test_a_systemexit_splitting_an_input_is_an_error_for_it_not_a_run_ended_as_done(tiny_classifier, monkeypatch):
    # before: the inputs' thread ended and the stream stopped after the records before it, as if all were done
    import medimg.pipeline as pipeline

    real = pipeline.one_input_tasks

    def tasks(given, *args, **kwargs):
        if getattr(given, "origin", "") == "b.png":
            raise SystemExit(5)
        return real(given, *args, **kwargs)

    monkeypatch.setattr(pipeline, "one_input_tasks", tasks)

    def run():
        ins = [Blob(f"{n}.png", _png(i)) for i, n in enumerate("abc")]
        return [(r.input, r.error) for r in classify(ins, classifier=tiny_classifier, workers=1)]

    got = _outcome(run)
    assert got == [("a.png", None), ("b.png", "internal error: SystemExit: 5"), ("c.png", None)]


def test_a_thread_that_cannot_start_stops_the_ones_started_before_it(tiny_classifier, monkeypatch):
    # "can't start new thread" (the process's thread limit, many runs at once) came out of the stream, but the
    # threads started before it read the inputs on with no one to stop them: they never ended
    import time

    start = threading.Thread.start

    def start_or_fail(self):
        if self.name == "medimg-extract-1":
            raise RuntimeError("can't start new thread")
        start(self)

    monkeypatch.setattr(threading.Thread, "start", start_or_fail)

    def inputs():
        for i in range(1000):
            yield Blob(f"{i}.png", _png(i))

    before = set(threading.enumerate())  # other tests' threads are not this run's
    with pytest.raises(RuntimeError, match="can't start new thread"):
        next(classify(inputs(), classifier=tiny_classifier, workers=2))
    monkeypatch.undo()

    def left():
        return [t.name for t in set(threading.enumerate()) - before if t.name.startswith("medimg-")]
    end = time.monotonic() + 30  # they stop within 0.1 s; a wide margin for a slow machine
    while time.monotonic() < end and left():
        time.sleep(0.1)
    assert left() == []
