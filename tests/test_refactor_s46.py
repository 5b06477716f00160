"""Session 46's code-quality pass (review s46_refactor): the Ray job's actors run `classify` itself, with keywords
(a DICOMDIR's files other entries read handed over as `seen`), not the pipeline's private stream with 11 positional
arguments and a batch size of 32 written in; `scale --batch-size` sets the batch, at most 256; the DICOMDIR helpers
other modules use are public; the corpus scan takes each folder's real path from its walk, not a second realpath."""

from __future__ import annotations

import os

import builders as b
import numpy as np
import pytest
from PIL import Image

from medimg.pipeline import classify
from medimg.sources import dicomdir
from medimg.training import dataset

ray = pytest.importorskip("ray", reason="the scale extra (ray[data]) is not installed")

from medimg.scale import ray_job  # noqa: E402
from test_scale import pngs  # noqa: E402
from test_scale_s37 import ray_local  # noqa: E402,F401  (Ray for this module, as there)


def _pngs(folder, n: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    return pngs(folder, n)


def _actor_rows(tmp_path, model_dir, entries, batch_size, covered=None):
    """An actor of the job, run here as Ray runs it (one call, a batch of places), and the sizes of the model's
    calls it made."""
    spill = ray_job.Spill(tmp_path, 16)
    for entry in entries:
        spill.add(entry)
    spill.close()
    from medimg.model import Classifier

    labels = Classifier.load(str(model_dir)).labels
    actor = ray_job.ClassifyInputs(str(spill.path), labels, fmt="jsonl", model_dir=str(model_dir),
                                   batch_size=batch_size, covered=covered)
    calls = []
    run = actor.clf.probabilities_from_array
    actor.clf.probabilities_from_array = lambda a: calls.append(len(a)) or run(a)
    table = actor({"start": np.array(spill.starts), "size": np.array(spill.sizes)})
    return table.to_pylist(), calls


def test_an_actor_gives_the_model_the_batch_size_it_was_given(tmp_path, tiny_model_dir):
    """It gave the model up to 32 images a call whatever was asked (written into its call of the pipeline)."""
    folder = tmp_path / "scans"
    _pngs(folder, 10)
    rows, calls = _actor_rows(tmp_path, tiny_model_dir, [str(folder)], batch_size=3)
    assert len(rows) == 10 and all(r["label"] for r in rows)
    assert sum(calls) == 10 and max(calls) <= 3, calls


def test_an_actor_with_a_dicomdirs_files_read_elsewhere_keeps_the_batch_size_and_passes_them_over(tmp_path,
                                                                                                  tiny_model_dir):
    """The DICOMDIR path (files another entry of the list reads: `dicomdirs`): the same batch size, and those
    files not read again."""
    root = b.dicom_export(tmp_path)
    listed = dicomdir.listed((root / "DICOMDIR").read_bytes(), 2**30)
    files = [str(dicomdir.find(root, parts)) for parts in listed]
    entry = str(root / "DICOMDIR")
    rows, calls = _actor_rows(tmp_path, tiny_model_dir, [entry], batch_size=4, covered={entry: files[:5]})
    read = {r["input"] for r in rows if not r["error"]}
    assert read and not read & set(files[:5])
    assert len(read) == len(files) - 5
    assert max(calls) <= 4, calls


def test_classify_takes_a_given_begun_by_its_caller(tmp_path, tiny_model_dir):
    """`seen`, classify's keyword the Ray job's actors use: a DICOMDIR's files in it are passed over; anything
    but a Given is refused before the run."""
    root, model = b.dicom_export(tmp_path), tiny_model_dir
    files = [dicomdir.find(root, parts) for parts in dicomdir.listed((root / "DICOMDIR").read_bytes(), 2**30)]
    given = dicomdir.Given()
    given.files.update(dicomdir.file_key(p) for p in files[:3])
    recs = list(classify([root / "DICOMDIR"], classifier=str(model), seen=given))
    done = {r.input for r in recs if r.ok}
    assert len(done) == len(files) - 3 and not done & {str(p) for p in files[:3]}
    with pytest.raises(TypeError, match="seen must be a sources.dicomdir.Given"):
        classify([root / "DICOMDIR"], seen=set())


def test_a_batch_size_out_of_range_is_refused_before_ray_starts(tmp_path, monkeypatch):
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray started"))
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    for bad in (0, 257, 2.5, True):
        with pytest.raises(ValueError, match="batch_size must be a whole number from 1 to 256"):
            ray_job.run(["a.png"], tmp_path / "out", batch_size=bad)
    from typer.testing import CliRunner

    from medimg.cli import app

    (tmp_path / "list.txt").write_text("a.png\n")
    res = CliRunner().invoke(app, ["scale", str(tmp_path / "list.txt"), "--out", str(tmp_path / "o"),
                                   "--batch-size", "257"])
    assert res.exit_code == 2 and "--batch-size" in res.output, res.output


def test_scale_hands_its_batch_size_to_the_job(tmp_path, monkeypatch):
    """`medimg scale --batch-size 8` reaches `run` (which hands it to each actor)."""
    from typer.testing import CliRunner

    from medimg.cli import app

    got = {}

    def fake_run(inputs, out, **kw):
        got.update(kw)
        list(inputs)
        kw["plan"].update(run=1, passed_over=0, images=1, errors=0, skipped=0)
        return 1

    monkeypatch.setattr(ray_job, "run", fake_run)
    (tmp_path / "list.txt").write_text("a.png\n")
    res = CliRunner().invoke(app, ["scale", str(tmp_path / "list.txt"), "--out", str(tmp_path / "o"),
                                   "--batch-size", "8"])
    assert res.exit_code == 0, res.output
    assert got["batch_size"] == 8


def test_the_job_runs_its_actors_with_the_batch_size_given(tmp_path, tiny_model_dir, ray_local, monkeypatch):  # noqa: F811
    from ray.data import Dataset

    given = []
    map_batches = Dataset.map_batches

    def spy(self, fn, *a, **kw):
        given.append(kw.get("fn_constructor_kwargs", {}).get("batch_size"))
        return map_batches(self, fn, *a, **kw)

    monkeypatch.setattr(Dataset, "map_batches", spy)
    folder = tmp_path / "scans"
    _pngs(folder, 5)
    out = tmp_path / "out"
    n = ray_job.run([str(folder)], out, fmt="jsonl", model_dir=str(tiny_model_dir), concurrency=1, batch_size=2)
    assert n == 5
    assert given == [2]


def test_the_corpus_scan_resolves_no_folder_its_walk_resolved(tmp_path, monkeypatch):
    """A folder's real path comes from the walk (which resolves only the source folder and links): a corpus of
    nested folders took one realpath a folder more; the paths kept are the same."""
    root = tmp_path / "c"
    for label, source in [("ct", "a"), ("photo", "b")]:
        for depth in range(4):
            folder = root / label / source / "/".join(f"d{j}" for j in range(depth + 1))
            folder.mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (8, 8), (depth * 40 + i, 9, 9)).save(folder / f"{i}.png")
    os.symlink(root / "ct" / "a" / "d0", root / "photo" / "b" / "link")  # a folder reached twice: kept where it lies
    calls = []
    real = os.path.realpath
    monkeypatch.setattr(dataset.os.path, "realpath", lambda p, *a, **k: calls.append(p) or real(p, *a, **k))
    corpus = dataset.scan(root, exclude={})
    monkeypatch.setattr(dataset.os.path, "realpath", real)
    assert len(corpus.paths) == 24 and not any("/link/" in p for p in corpus.paths)
    ours = [p for p in calls if str(tmp_path) in str(p)]
    # the root, each source folder (the walk's top) and the linked folder: not each of the 8 folders again
    assert len(ours) <= 4, ours


# --- cross-module helpers made public (were imported by other modules under a private name) ----------------------

def test_the_corpus_settings_files_are_ours_only_by_their_headers(tmp_path):
    """`evaluate_dir` counts the files beside the label folders but these (it used three private helpers)."""
    (tmp_path / "label_groups.csv").write_text("label,group\nmyxray,medical\n")
    (tmp_path / "exclude.csv").write_text("path,label,source,license\nct/a/1.png,ct,a,cc0\n")  # the data's own list
    assert dataset.settings_files(tmp_path) == {"label_groups.csv"}
    (tmp_path / "exclude.csv").write_text("path,reason\nct/a/1.png,blurred\n")
    assert dataset.settings_files(tmp_path) == {"label_groups.csv", "exclude.csv"}
    assert dataset.settings_files(tmp_path / "none") == set()


def test_scan_rows_reads_what_a_stopped_run_wrote_and_cuts_its_last_line(tmp_path):
    """What `resume` and `extract --resume` read (they called three private helpers of output in turn)."""
    import json

    from medimg.output import scan_rows

    path = tmp_path / "r.jsonl"
    rows = [{"input": "a.png", "locator": "", "label": "ct"}, {"input": "b.pdf", "locator": "page 1", "label": "ct"}]
    whole = "".join(json.dumps(r) + "\n" for r in rows)
    path.write_text(whole + '{"input": "b.pdf", "loc')
    found = scan_rows(path, "jsonl")
    assert dict(found.done) == {"a.png": 1} and found.last == "b.pdf" and (found.keep, found.rows) == (1, 2)
    assert path.read_text() == whole


def test_file_head_gives_a_files_first_bytes_and_nothing_for_a_fifo(tmp_path):
    from medimg.sources.files import SNIFF_BYTES, file_head

    (tmp_path / "a.bin").write_bytes(bytes(range(256)) * 1000)
    assert file_head(tmp_path / "a.bin") == (bytes(range(256)) * 1000)[:SNIFF_BYTES]
    os.mkfifo(tmp_path / "fifo")
    assert file_head(tmp_path / "fifo") == b""  # never blocks


def test_jsonable_makes_metadata_plain_for_json():
    import json

    from medimg.pipeline import jsonable

    from pathlib import Path

    value = jsonable({"n": float("nan"), "x": 0.5, "t": (1, Path("a/b")), 4: "k"})
    assert json.loads(json.dumps(value, allow_nan=False)) == {"n": None, "x": 0.5, "t": [1, "a/b"], "4": "k"}
