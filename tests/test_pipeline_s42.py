"""The pipeline under adversarial mixes: readers stuck inside a decoder past input_timeout start at most MAX_SPARES
threads in their place (they were uncapped: one thread, and the memory its reader holds, per stuck input), and a
run whose threads are all stuck still ends, one record per input, in order. Sources registered for the test only
(a decoder that blocks until the test lets it go)."""

from __future__ import annotations

import io
import threading
import time

import pytest
from PIL import Image

import medimg.pipeline as pipeline
from medimg.pipeline import classify
from medimg.sources import Blob, ImageItem, SourcePlugin, registry


def _png(colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def hanging(monkeypatch):
    """A source whose decoder blocks until the event it returns is set (set again when the test ends)."""
    deadline = time.monotonic() + 30  # spares an earlier test's stuck readers hold end first: a clean count
    while (_spares() or pipeline._spares[0]) and time.monotonic() < deadline:
        time.sleep(0.1)
    monkeypatch.setattr(registry, "_PLUGINS", list(registry.plugins()))
    let_go = threading.Event()

    def open_hanging(blob, ctx):
        let_go.wait(60)
        yield ImageItem(blob.origin, "", Image.new("RGB", (8, 8), (0, 0, 255)))

    registry.register(SourcePlugin("hangs", lambda head, blob: head.startswith(b"HANG"), open_hanging, priority=0))
    yield let_go
    let_go.set()
    deadline = time.monotonic() + 10
    while _spares() and time.monotonic() < deadline:  # their readers return, and their threads end
        time.sleep(0.05)


def _spares() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "medimg-extract-spare"]


def _readers(before=()) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("medimg-extract") and t not in before]


@pytest.mark.timeout(60)
def test_readers_stuck_in_a_decoder_start_at_most_max_spares_threads(tiny_classifier, hanging, monkeypatch):
    monkeypatch.setattr(pipeline, "MAX_SPARES", 2, raising=False)
    before, given = set(_readers()), []
    for i in range(8):
        given += [Blob(f"hang{i}", b"HANG"), Blob(f"ok{i}.png", _png())]
    recs = list(classify(given, classifier=tiny_classifier, workers=2, limits={"input_timeout": 0.2}))
    stuck = _readers(before)  # the run has ended: what is left is blocked in the decoder
    assert [r.input for r in recs] == [b.origin for b in given], [(r.input, r.error) for r in recs]
    assert len(stuck) <= 2 + 2, f"{len(stuck)} threads left for 8 stuck readers ({len(_spares())} spares)"
    assert all("input_timeout of 0.2 s" in r.error for r in recs if r.input.startswith("hang")), recs
    # two spares and the run's two threads took the first four stuck inputs; then no thread was free for the rest
    assert recs[0].error.startswith("reading it took longer") and recs[1].ok, recs[:2]
    assert any(r.error and r.error.startswith("not read: no thread was free") for r in recs), recs
    hanging.set()
    deadline = time.monotonic() + 10
    while _spares() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _spares() and pipeline._spares[0] == 0


@pytest.mark.timeout(60)
def test_a_stuck_reader_with_no_spare_takes_up_its_run_again_once_its_decoder_returns(tiny_classifier, hanging,
                                                                                       monkeypatch):
    """With no spare left, the run's one thread is stuck: the input after the stuck one is given up on (not
    waited for without end); once the decoder returns, the same thread reads the inputs after it."""
    monkeypatch.setattr(pipeline, "MAX_SPARES", 0, raising=False)
    given = [Blob("hang", b"HANG")] + [Blob(f"ok{i}.png", _png()) for i in range(6)]
    recs = []
    for rec in classify(given, classifier=tiny_classifier, workers=1, limits={"input_timeout": 0.3}):
        recs.append(rec)
        if rec.error and rec.error.startswith("not read") and not hanging.is_set():
            hanging.set()  # the decoder returns now, and its thread is free before the run goes on
            time.sleep(1)
    assert [r.input for r in recs] == [b.origin for b in given], [(r.input, r.error) for r in recs]
    assert "took longer than the input_timeout of 0.3 s" in recs[0].error, recs[0]
    assert (recs[1].error or "").startswith("not read: no thread was free to read it within the input_timeout"), recs[1]
    assert recs[-1].ok, [(r.input, r.error) for r in recs]
    assert not _spares()


@pytest.mark.timeout(60)
def test_below_the_cap_a_spare_takes_each_stuck_readers_place(tiny_classifier, hanging):
    """A few stuck decoders do not cost the inputs after them anything: each gets a thread in its place."""
    before = set(_readers())
    given = [Blob("hang0", b"HANG"), Blob("a.png", _png()), Blob("hang1", b"HANG"), Blob("hang2", b"HANG"),
             Blob("b.png", _png())]
    recs = list(classify(given, classifier=tiny_classifier, workers=1, limits={"input_timeout": 0.2}))
    assert [(r.input, r.ok) for r in recs] == [("hang0", False), ("a.png", True), ("hang1", False),
                                               ("hang2", False), ("b.png", True)], recs
    assert len(_readers(before)) == 3  # the run's own and two spares, stuck; the third spare read b.png and ended


@pytest.mark.timeout(60)
def test_a_run_whose_threads_are_all_stuck_waits_one_input_timeout_for_all_its_inputs_not_one_each(
        tiny_classifier, hanging, monkeypatch):
    """Every thread stuck with no spare: the inputs waiting share one input_timeout (they waited one each in turn, N
    inputs N times as long), and each still gets its record, in order."""
    monkeypatch.setattr(pipeline, "MAX_SPARES", 0, raising=False)
    given = [Blob("hang", b"HANG")] + [Blob(f"ok{i}.png", _png()) for i in range(30)]
    began = time.monotonic()
    recs = list(classify(given, classifier=tiny_classifier, workers=1, limits={"input_timeout": 0.5}))
    took = time.monotonic() - began
    assert [r.input for r in recs] == [b.origin for b in given]
    assert all((r.error or "").startswith("not read: no thread was free") for r in recs[1:]), recs[1:3]
    assert took < 10, f"{took:.1f} s for 30 inputs waiting behind a stuck thread (one input_timeout is 0.5 s)"
