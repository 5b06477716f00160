"""The Python API as a script over millions of files uses it: one bad image in a list, a run given up, wrong
hints on a Blob, and the page's downloads that must say their threshold."""

import csv
import io
import json
import threading
import time
import typing

import pytest
from PIL import Image

from medimg.model import Prediction
from medimg.pipeline import RECORD_FIELDS, Record, classify
from medimg.sources import Blob, Limits, open_input, open_inputs
from webserver import WebServer


def png(color=(200, 30, 30), size=(80, 80)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def truncated_jpeg() -> Image.Image:
    """Opens (its header is whole), fails when its pixels are read."""
    buf = io.BytesIO()
    Image.new("RGB", (400, 400), (10, 120, 30)).save(buf, "JPEG")
    return Image.open(io.BytesIO(buf.getvalue()[:len(buf.getvalue()) // 2]))


# ---------------------------------------------------------------- predict: one bad image in a list


def test_predict_with_errors_return_gives_a_bad_images_exception_in_its_place(tiny_classifier):
    """predict raised at the first bad item and lost the whole list; errors="return" keeps the others."""
    good = [Image.new("RGB", (60, 50), (i * 40, 90, 200 - i * 30)) for i in range(4)]
    given = [good[0], truncated_jpeg(), None, Image.new("RGB", (0, 5)), good[1], good[2], truncated_jpeg(),
             good[3]]
    out = tiny_classifier.predict(given, errors="return", batch_size=2)  # the second batch has no image to run
    assert [type(p).__name__ for p in out] == ["Prediction", "OSError", "TypeError", "ValueError", "Prediction",
                                               "Prediction", "OSError", "Prediction"]
    assert [p for p in out if isinstance(p, Prediction)] == tiny_classifier.predict(good)
    assert out[1].__notes__ == ["medimg: the image at index 1 of those given to predict"]
    assert "(image at index 2)" in str(out[2]) and "(image at index 3)" in str(out[3])
    assert all(p.__traceback__ is None for p in out if isinstance(p, Exception))  # holds no frames alive
    with pytest.raises(OSError):  # the default is as before: the first bad image raises
        tiny_classifier.predict(given)
    with pytest.raises(ValueError, match='errors must be "raise"'):
        tiny_classifier.predict(good, errors="ignore")


# ---------------------------------------------------------------- cancel ends the run


def _ours(before: set) -> list[threading.Thread]:
    """The run's threads (not the shared DNS pool's) started since `before`."""
    return [t for t in threading.enumerate() if t.ident not in before
            and t.name.startswith(("medimg-inputs", "medimg-extract", "medimg-web"))]


def test_cancel_ends_the_run_at_once_while_a_page_trickles(tiny_classifier, tmp_path):
    """cancel stopped the downloads only: the trickling image came out as a "cancelled" record and every file
    after it was still read and yielded. Now nothing comes out after cancel is set, the stream ends within
    a moment, and its threads and the download end."""
    files = []
    for i in range(30):
        files.append(tmp_path / f"{i}.png")
        files[-1].write_bytes(png((i * 8, 60, 90)))
    before = {t.ident for t in threading.enumerate()}
    cancel, cancel_set = threading.Event(), []
    with WebServer() as srv:
        srv.slow("/slow.png", png(size=(300, 300)), interval=0.05)  # about a minute, a byte at a time
        srv.add("/page.html", '<html><body><img src="slow.png"></body></html>')

        def give_up_once_trickling():
            deadline = time.monotonic() + 30
            while srv.sent["/slow.png"] < 5 and time.monotonic() < deadline:
                time.sleep(0.02)
            cancel_set.append(time.monotonic())
            cancel.set()

        threading.Thread(target=give_up_once_trickling, daemon=True).start()
        after, got = [], []
        limits = Limits(allow_private=True, total_timeout=120, read_timeout=60)
        for rec in classify([srv.url("/page.html"), *map(str, files)], classifier=tiny_classifier, limits=limits,
                            cancel=cancel):
            (after if cancel.is_set() else got).append(rec)
        ended = time.monotonic()
        assert cancel.is_set() and got == [] and after == [], [r.input for r in after]
        assert ended - cancel_set[0] < 0.5  # the stream ended at once, its image still coming
        sent = srv.sent["/slow.png"]
        deadline = ended + 3
        while _ours(before) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _ours(before) == [], [t.name for t in _ours(before)]
        time.sleep(0.5)
        assert srv.sent["/slow.png"] <= sent + 2  # the download stopped (a byte may be in flight)


def test_cancel_set_by_the_loop_itself_stops_the_records_and_on_item_at_once(tiny_classifier):
    """A script that sets cancel on its third record (a quota reached) got every record of the batch."""
    cancel = threading.Event()
    seen, got = [], []
    for rec in classify([Blob(f"{i}.png", png((i * 10, 50, 50))) for i in range(20)], classifier=tiny_classifier,
                        on_item=seen.append, cancel=cancel):
        got.append(rec.input)
        if len(got) == 3:
            cancel.set()
    assert got == ["0.png", "1.png", "2.png"] and [r.input for r in seen] == got


# ---------------------------------------------------------------- Blob's hints


@pytest.mark.parametrize("hint, error, says", [
    (dict(name=b"a.png"), TypeError, "Blob's name must be a str"),
    (dict(content_type=b"image/png"), TypeError, "Blob's content_type must be a str"),
    (dict(depth="1"), TypeError, "Blob's depth must be a whole number ≥ 0"),  # a zip failed: "'>' not supported"
    (dict(depth=None), TypeError, "Blob's depth must be a whole number ≥ 0"),
    (dict(depth=True), TypeError, "Blob's depth must be a whole number ≥ 0"),
    (dict(depth=-1), ValueError, "Blob's depth must be a whole number ≥ 0"),
    (dict(sibling="x.raw"), TypeError, "Blob's sibling must be a function"),
    (dict(data_of=3), TypeError, "Blob's data_of must be a str"),
    (dict(budget=100), TypeError, "Blob's budget must be a Budget"),  # a zip failed: "no attribute 'left'"
])
def test_a_blobs_hints_are_checked_when_it_is_made(hint, error, says):
    with pytest.raises(error, match=says):
        Blob("a.zip", png(), **hint)


def test_a_blob_named_none_takes_its_origins_name_and_a_numpy_depth_is_an_int():
    np = pytest.importorskip("numpy")
    blob = Blob("a.png", png(), name=None, depth=np.int64(2))
    assert blob.name == "" and type(blob.depth) is int and blob.depth == 2


# ---------------------------------------------------------------- the page's downloads


def test_the_pages_csv_says_its_threshold_and_model_as_the_json_does(tmp_path):
    """A CSV saved at 0.7 could not be told from one saved at 0.5 once renamed: no column said it."""
    from medimg.server.export import relabeled
    from medimg.server.ui import _write_exports

    recs = [Record(input="a.png", locator="", label="xray", medical=True, confidence=0.66, p_medical=0.66,
                   verdict="uncertain", width=8, height=8, model="medimg 2"),
            Record(input="b.txt", locator="", error="not an image")]
    model = {"name": "medimg", "version": "2"}
    verdicts = {}
    for t in (0.5, 0.7):
        (tmp_path / str(t)).mkdir()
        csv_path, json_path = _write_exports(relabeled(recs, t), t, model, tmp_path / str(t))
        reader = csv.DictReader(io.StringIO(csv_path.read_bytes().decode("utf-8-sig")))
        rows = list(reader)
        assert reader.fieldnames[:len(RECORD_FIELDS)] == RECORD_FIELDS  # the CLI's columns first, as they were
        assert [(r["model"], r["threshold"]) for r in rows] == [("medimg 2", str(t)), ("", str(t))]
        verdicts[t] = rows[0]["verdict"]
        doc = json.loads(json_path.read_text())
        assert doc["threshold"] == t and doc["model"] == model and doc["results"][0]["model"] == "medimg 2"
    assert verdicts == {0.5: "medical", 0.7: "uncertain"}


# ---------------------------------------------------------------- typing


def test_the_streams_types_have_the_close_the_docs_tell_callers_to_use():
    """classify, open_input and open_inputs were typed as returning an Iterator, which has no close(): a type
    checker refused the README's `records.close()`."""
    for fn in (classify, open_input, open_inputs):
        returned = typing.get_origin(typing.get_type_hints(fn)["return"])
        assert hasattr(returned, "close"), (fn.__name__, returned)


def test_a_type_checker_sees_every_public_name_of_the_package():
    """`from medimg import classify` was Any to mypy (the names come from a module __getattr__), so none of the
    package's types reached a caller who imports as the README does."""
    import ast
    import importlib
    from pathlib import Path

    import medimg

    seen = {}
    for node in ast.parse(Path(medimg.__file__).read_text()).body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            seen.update({alias.name: imp.module for imp in node.body for alias in imp.names})
    assert set(seen) == set(medimg._PUBLIC)
    for name, module in seen.items():
        assert getattr(importlib.import_module(f"medimg.{module}"), name) is getattr(medimg, name)
