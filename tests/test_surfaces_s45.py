"""Session 45's changes on every surface (session 45, surfaces): `scale` reads a DICOMDIR given with its export's
folders or files each file once, as `classify` does, whatever batches they fall in; its actors remove the work
folders a killed process left, as `classify`, `extract` and `serve` do."""

from __future__ import annotations

import collections
import tempfile
from pathlib import Path

import numpy as np
import pytest

import builders as b

pytest.importorskip("ray", reason="the scale extra (ray[data]) is not installed")

from medimg.keyset import KeySet  # noqa: E402
from medimg.scale.ray_job import ClassifyInputs, Spill, spill_new  # noqa: E402

def _export(tmp_path: Path) -> Path:
    return b.dicom_export(tmp_path)


def _job(entries: list[str], out: Path, model: Path) -> list[dict]:
    """The rows `scale` writes for `entries`, one entry a batch (each its own pipeline, as on several actors)."""
    out.mkdir()
    spill = Spill(out, 1)
    try:
        spill_new(spill, entries, KeySet())
        actor = ClassifyInputs(str(spill.path), labels=_labels(model), model_dir=str(model), workers=2,
                               covered=spill.covered)
        rows = []
        for place in spill.places():
            rows += actor({"start": np.array([place["start"]]), "size": np.array([place["size"]])}).to_pylist()
        return rows
    finally:
        spill.remove()


def _labels(model: Path) -> list[str]:
    from medimg.model import Classifier

    return Classifier.load(model).labels


def _images(rows: list[dict]) -> collections.Counter:
    return collections.Counter(r["input"] for r in rows if not r["error"])


def test_scale_reads_a_dicomdir_given_with_its_folders_or_files_once_in_other_batches(tmp_path, tiny_model_dir):
    root = _export(tmp_path)
    folders = sorted(str(p) for p in root.iterdir() if p.is_dir())
    files = sorted(str(p) for p in root.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    index = str(root / "DICOMDIR")
    for n, entries in enumerate(([index, *folders], [*folders, index], [index, *files], [*files, index])):
        got = _images(_job(entries, tmp_path / f"out{n}", tiny_model_dir))
        assert len(got) == 31 and set(got.values()) == {1}, entries  # was 55 or 61 rows for 31 images


def test_scale_reads_the_rest_of_a_dicomdir_given_with_part_of_its_export(tmp_path, tiny_model_dir):
    root = _export(tmp_path)
    rows = _job([str(root / "DICOMDIR"), str(root / "98892001")], tmp_path / "out", tiny_model_dir)
    got = _images(rows)
    assert len(got) == 31 and set(got.values()) == {1}
    inside = [r for r in rows if "/98892001/" in r["input"] and not r["error"]]
    assert inside and {r["source"] for r in inside} == {str(root / "98892001")}  # read by the folder given


def test_a_scale_actor_removes_the_work_folders_a_killed_process_left(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    left = tmp_path / "medimg-work-dead1234"  # a zipped slide's copy, its process killed (no lock held)
    left.mkdir()
    (left / "slide.svs").write_bytes(b"x" * 100)
    other = tmp_path / "medimg-workshop"  # not one of medimg's folders
    other.mkdir()
    ClassifyInputs(str(tmp_path / "entries.list"), labels=_labels(tiny_model_dir), model_dir=str(tiny_model_dir))
    assert not left.exists() and other.exists()


def test_the_page_reads_an_address_spelt_twice_once_as_the_api_does(tmp_path, tiny_classifier):
    """The page read `http://h/a.html`, `HTTP://h/a.html` and `http://h/./a.html#x` as three addresses (three rows of
    one image), where /api/classify-url and the CLI read it once."""
    import gradio as gr

    from medimg.server import ServerConfig, Worker
    from medimg.server.ui import build_ui
    from webserver import WebServer

    worker = Worker(ServerConfig(allow_private=True), tiny_classifier)
    read, run = [], worker.run

    def spy(inputs, *args, **kwargs):
        inputs = list(inputs)
        read.append(inputs)
        return run(iter(inputs), *args, **kwargs)

    worker.run = spy
    (tmp_path / "pages").mkdir()
    demo = build_ui(worker, None, tmp_path / "pages")
    classify = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "classify")
    request = gr.Request.__new__(gr.Request)
    request.__dict__.update(session_hash="s45-surfaces")
    with WebServer() as web:
        web.add("/a.png", _png())
        page = web.add("/a.html", "<html><body><img src=a.png width=64></body></html>")
        spelt = [page, page.replace("http://", "HTTP://"), page.replace("/a.html", "/./a.html#x")]
        out = classify(None, "\n".join(spelt), False, 0.6, "all", None, request, lambda *a, **k: None)
    assert read == [[page]]
    assert out[0].startswith("**1 image**"), out[0]


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()
