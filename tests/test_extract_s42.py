"""`medimg extract` (session 42): readers stuck inside a decoder past input_timeout start at most
pipeline.MAX_SPARES threads in their place, the same budget as classify's (they were uncapped: one thread, and the
memory its reader holds, per stuck input), and a run whose threads are all stuck still ends, one row per input, in
order. A source registered for the test only (a decoder that blocks until the test lets it go)."""

from __future__ import annotations

import io
import json
import time

import pytest
from PIL import Image

import medimg.pipeline as pipeline
from medimg.extract import extract, prepare


from test_pipeline_s42 import _readers, _spares, hanging  # noqa: F401 (a fixture: a decoder that blocks)


def _inputs(folder, names) -> list[str]:
    """Files named as given: hang* hold what the hanging source reads, the rest are PNGs."""
    folder.mkdir()
    for name in names:
        if name.startswith("hang"):
            data = b"HANG"
        else:
            buf = io.BytesIO()
            Image.new("RGB", (40, 30), (200, 30, 30)).save(buf, "PNG")
            data = buf.getvalue()
        (folder / name).write_bytes(data)
    return [str(folder / name) for name in names]


def _run(given, out, workers, timeout, on_row=None) -> list[dict]:
    rows = []
    for row, _ in extract(given, out, workers=workers, folder=prepare(out, False),
                          limits=_limits(timeout)):
        rows.append(row)
        if on_row:
            on_row(row)
    return rows


def _limits(timeout):
    from medimg.sources import Limits

    return Limits(input_timeout=timeout)


@pytest.mark.timeout(60)
def test_readers_stuck_in_a_decoder_start_at_most_max_spares_threads(tmp_path, hanging, monkeypatch):  # noqa: F811
    monkeypatch.setattr(pipeline, "MAX_SPARES", 2)
    names = [n for i in range(8) for n in (f"hang{i}", f"ok{i}.png")]
    given = _inputs(tmp_path / "in", names)
    before = set(_readers())
    rows = _run(given, tmp_path / "out", workers=2, timeout=0.2)
    stuck = _readers(before)  # the run has ended: what is left is blocked in the decoder
    assert [r["input"] for r in rows] == given, [(r["input"], r.get("error")) for r in rows]
    assert len(stuck) <= 2 + 2, f"{len(stuck)} threads left for 8 stuck readers ({len(_spares())} spares)"
    hangs = [r for r in rows if "/hang" in r["input"]]
    assert all("input_timeout of 0.2 s" in r.get("error", "") for r in hangs), hangs
    assert all("file" in r or r["error"].startswith("not read") for r in rows if r not in hangs), rows
    # two spares and the run's two threads took the first four stuck inputs; then no thread was free for the rest
    assert rows[0]["error"].startswith("reading it took longer") and "file" in rows[1], rows[:2]
    assert any(r.get("error", "").startswith("not read: no thread was free") for r in rows), rows
    written = [json.loads(x) for x in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert written == rows
    hanging.set()
    deadline = time.monotonic() + 10
    while (_readers(before) or pipeline._spares[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _readers(before) and pipeline._spares[0] == 0
    # what the stuck readers read once let go is not written: only the run's own PNGs and its manifest
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == sorted(["manifest.jsonl", *(r["file"] for r in rows if "file" in r)])


@pytest.mark.timeout(60)
def test_a_stuck_reader_with_no_spare_takes_up_its_run_again_once_its_decoder_returns(tmp_path, hanging,  # noqa: F811
                                                                                       monkeypatch):
    """With no spare left, the run's one thread is stuck: the input after the stuck one is given up on (not
    waited for without end); once the decoder returns, the same thread reads the inputs after it."""
    monkeypatch.setattr(pipeline, "MAX_SPARES", 0)
    given = _inputs(tmp_path / "in", ["hang", *(f"ok{i}.png" for i in range(6))])
    before = set(_readers())

    def let_go(row):
        if row.get("error", "").startswith("not read") and not hanging.is_set():
            hanging.set()  # the decoder returns now, and its thread is free before the run goes on
            time.sleep(1)

    rows = _run(given, tmp_path / "out", workers=1, timeout=0.3, on_row=let_go)
    assert [r["input"] for r in rows] == given, [(r["input"], r.get("error")) for r in rows]
    assert "took longer than the input_timeout of 0.3 s" in rows[0]["error"], rows[0]
    assert rows[1].get("error", "").startswith("not read: no thread was free to read it within the input_timeout"), \
        rows[1]
    assert "file" in rows[-1], rows
    assert not _spares() and pipeline._spares[0] == 0
    deadline = time.monotonic() + 10
    while _readers(before) and time.monotonic() < deadline:  # the run's thread ends with the run
        time.sleep(0.05)
    assert not _readers(before)


@pytest.mark.timeout(60)
def test_below_the_cap_a_spare_takes_each_stuck_readers_place(tmp_path, hanging):  # noqa: F811
    """A few stuck decoders do not cost the inputs after them anything: each gets a thread in its place."""
    given = _inputs(tmp_path / "in", ["hang0", "a.png", "hang1", "hang2", "b.png"])
    before = set(_readers())
    rows = _run(given, tmp_path / "out", workers=1, timeout=0.2)
    assert [("file" in r) for r in rows] == [False, True, False, False, True], rows
    assert [r["file"] for r in rows if "file" in r] == ["000001.png", "000002.png"]
    deadline = time.monotonic() + 10
    while len(_readers(before)) > 3 and time.monotonic() < deadline:  # the third spare's end
        time.sleep(0.05)
    assert len(_readers(before)) == 3  # the run's own and two spares, stuck; the third spare read b.png and ended
    assert pipeline._spares[0] == 3  # one for each stuck reader, till its decoder returns


@pytest.mark.timeout(60)
def test_a_run_whose_threads_are_all_stuck_waits_one_input_timeout_for_all_its_inputs_not_one_each(
        tmp_path, hanging, monkeypatch):  # noqa: F811
    """Every thread stuck with no spare: the units waiting share one input_timeout (they waited one each in turn),
    and each still gets its row, in order."""
    monkeypatch.setattr(pipeline, "MAX_SPARES", 0)
    given = _inputs(tmp_path / "in", ["hang", *(f"ok{i}.png" for i in range(30))])
    began = time.monotonic()
    rows = _run(given, tmp_path / "out", workers=1, timeout=0.5)
    took = time.monotonic() - began
    assert [r["input"] for r in rows] == given
    assert all(r.get("error", "").startswith("not read: no thread was free") for r in rows[1:]), rows[1:3]
    assert took < 10, f"{took:.1f} s for 30 inputs waiting behind a stuck thread (one input_timeout is 0.5 s)"
