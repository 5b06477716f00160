"""A team retraining on its own data (review s32): a stop by SIGTERM, settings files saved by Excel, DICOM named
as PACS exports name it, small input sizes, and a run folder trained again another way."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import signal

import numpy as np
import pytest
from builders import dicom_file
from test_training_inputs import _tiny, corpus, flat
from typer.testing import CliRunner

from medimg import cli
from medimg.cli import app
from medimg.training.dataset import load, scan


def test_sigterm_ends_a_train_as_ctrl_c_does_and_the_same_command_carries_it_on(tmp_path, monkeypatch):
    """SIGTERM (a scheduler, `timeout`) killed the run where it was: no word, and the decoding processes were
    left behind, orphaned, for good. Now it stops as Ctrl-C does (exit 143), they with it."""
    pytest.importorskip("torch", reason="needs the train extra (torch)")
    root = corpus(tmp_path / "data", {"xray": {"a": 6, "c": 6}, "photo": {"b": 6, "d": 6}})
    args = ["train", "--data", str(root), "--out", str(tmp_path / "runs"), "--cache", "", "--route", "cnn",
            "--size", "32", "--epochs", "1", "--samples-per-epoch", "32", "--no-cv"]
    plain = cli._plain

    def term_while_decoding(message):
        plain(message)
        if str(message).startswith("decoded "):  # the decoding processes are at work
            signal.raise_signal(signal.SIGTERM)

    def unhandled(signum, frame):  # in place of the default, which would end pytest itself
        raise RuntimeError("SIGTERM not handled by train")

    monkeypatch.setattr(cli, "_plain", term_while_decoding)
    children = set(multiprocessing.active_children())  # another test's, if any
    before = signal.signal(signal.SIGTERM, unhandled)
    try:
        res = CliRunner().invoke(app, args)
    finally:
        signal.signal(signal.SIGTERM, before)
    assert res.exit_code == 143, (res.exit_code, res.output, res.exception)
    assert "the same command carries the run in" in flat(res.output)
    assert set(multiprocessing.active_children()) <= children  # no decoder left running
    assert not (tmp_path / "runs" / "final" / "model.pt").exists()
    monkeypatch.setattr(cli, "_plain", plain)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "runs" / "final" / "assets" / "model.onnx").exists()


def test_settings_files_saved_by_excel_with_a_byte_order_mark_are_read(tmp_path):
    """Excel's "CSV UTF-8" starts the file with a BOM: the header was then not `label,group`, so the corpus's own
    label_groups.csv and exclude.csv were passed over as data, silently, and the label refused as unknown."""
    root = corpus(tmp_path / "data", {"xray": {"a": 2, "c": 2}, "photo": {"b": 2, "d": 2}, "thermal": {"e": 2}})
    (root / "label_groups.csv").write_bytes("\ufefflabel,group\r\nthermal,medical\r\n".encode("utf-8"))
    (root / "exclude.csv").write_bytes("\ufeffpath,reason\r\nphoto/b/0.png,a drawing\r\n".encode("utf-8"))
    c = scan(root)
    assert c.medical["thermal"] is True
    assert "photo/b/0.png" not in c.paths and "photo/b/1.png" in c.paths


def test_dicom_files_named_as_pacs_exports_name_them_are_trained_on(tmp_path):
    """`IM000001`, or a UID whose last part looks like an extension: read by `classify` and `evaluate` by their
    first bytes, but passed over by `train` as not images."""
    root = corpus(tmp_path / "data", {"xray": {"a": 1}, "photo": {"b": 1}})
    for name in ("IM000001", "1.2.840.113619.2.55.3.320"):
        shutil.copyfile(dicom_file("CT_small.dcm"), root / "xray" / "a" / name)
    (root / "xray" / "a" / "notes.txt").write_text("not an image")
    said: list[str] = []
    c = scan(root, log=said.append)
    assert {"xray/a/IM000001", "xray/a/1.2.840.113619.2.55.3.320"} <= set(c.paths)
    assert "xray/a/notes.txt" not in c.paths and any("(.txt)" in m for m in said), said
    kept, x, _ = load(c, 32, None, log=lambda *_: None)
    assert len(kept.paths) == len(c.paths) and x[kept.paths.index("xray/a/IM000001")].std() > 0


def test_early_epochs_are_never_drawn_larger_than_the_input_size(tmp_path):
    """Progressive resizing draws early epochs at 96 px to be cheaper; at --size 32 (the cnn route) it blew them
    up to 96 px from the 32 px cache: dearer, and another scale than the model is used at."""
    pytest.importorskip("torch", reason="needs the train extra (torch)")
    from medimg.training.train import train

    root = corpus(tmp_path / "data", {"xray": {"a": 4, "c": 4}, "photo": {"b": 4, "d": 4}})
    said: list[str] = []
    cfg = _tiny(root, tmp_path / "run")
    cfg.low_frac = 0.5  # epoch 1 of 2 at low_size (96)
    train(cfg, log=said.append)
    steps = [m for m in said if m.startswith("epoch ") and " step " in m]
    assert steps and all(m.endswith("at 32 px") for m in steps), steps


def test_a_run_trained_again_without_folds_leaves_no_earlier_held_out_report(tmp_path):
    """heldout_report.json in final/ is the shipped model's held-out numbers; a --no-cv run into a folder that a
    run with folds had used left that run's report there, for another model."""
    pytest.importorskip("torch", reason="needs the train extra (torch)")
    root = corpus(tmp_path / "data", {"xray": {"a": 3}, "photo": {"b": 3}})
    report = tmp_path / "runs" / "final" / "heldout_report.json"
    report.parent.mkdir(parents=True)
    report.write_text(json.dumps({"binary_accuracy": 0.99}))  # as an earlier run with folds left it
    res = CliRunner().invoke(app, ["train", "--data", str(root), "--out", str(tmp_path / "runs"), "--cache", "",
                                   "--route", "cnn", "--size", "32", "--epochs", "1", "--samples-per-epoch", "32",
                                   "--no-cv"])
    assert res.exit_code == 0, res.output
    assert not report.exists()
    labels = json.loads((tmp_path / "runs" / "final" / "assets" / "labels.json").read_text())
    assert labels["source_heldout"] == {}


def test_an_output_folder_inside_the_corpus_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    """`cd corpus && medimg train --data .` wrote the default --out runs/ beside the label folders: once the checks
    had passed, the first fold's scan took it for a label and asked for a label_groups.csv row for 'runs' (and
    --docs' PNGs there would have been trained on)."""
    pytest.importorskip("torch", reason="needs the train extra (torch)")
    root = corpus(tmp_path / "data", {"xray": {"a": 2, "c": 2}, "photo": {"b": 2, "d": 2}})
    monkeypatch.chdir(root)
    base = ["train", "--data", ".", "--route", "cnn", "--size", "32", "--epochs", "1", "--samples-per-epoch", "32"]
    for args, option in ((["--cache", ""], "--out"),
                         (["--out", str(tmp_path / "runs"), "--cache", "xray/cache"], "--cache"),
                         (["--out", str(tmp_path / "runs"), "--cache", "", "--docs", "."], "--docs")):
        res = CliRunner().invoke(app, [*base, *args])
        said = flat(res.output)
        assert res.exit_code == 2 and option in said and "inside the corpus" in said, (args, res.output)
    assert sorted(p.name for p in root.iterdir()) == ["photo", "xray"]
    assert sorted(p.name for p in (root / "xray").iterdir()) == ["a", "c"]
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "runs"), "--cache", ".cache", "--no-cv"])
    assert res.exit_code == 0, res.output  # a hidden folder in it is not read as a label


def test_an_output_folder_given_by_its_full_path_inside_a_corpus_given_as_dot_is_refused(tmp_path, monkeypatch):
    """`cd corpus && medimg train --data . --out $PWD/runs`: the folder is compared by where it really is, not
    by how the two paths are written (mutation round s32_mut2)."""
    pytest.importorskip("torch", reason="needs the train extra (torch)")
    root = corpus(tmp_path / "data", {"xray": {"a": 2, "c": 2}, "photo": {"b": 2, "d": 2}})
    monkeypatch.chdir(root)
    res = CliRunner().invoke(app, ["train", "--data", ".", "--route", "cnn", "--out", str(root / "runs"),
                                   "--cache", ""])
    assert res.exit_code == 2 and "inside the corpus" in flat(res.output), res.output
    assert sorted(p.name for p in root.iterdir()) == ["photo", "xray"]


def test_files_added_while_the_folds_trained_stop_the_int8_report_clearly(tmp_path):
    """int8 shipping predicts each fold's held-out files again from the corpus as it is then: one added meanwhile
    was a traceback after every model had trained (shapes that do not broadcast), and with as many removed as
    added, scores paired with other files' labels. Now it is said, and the same command trains what it must."""
    pytest.importorskip("torch", reason="needs the train extra (torch)")
    from medimg.training.dataset import CorpusError
    from medimg.training.ship import ship
    from medimg.training.train import train

    root = corpus(tmp_path / "data", {"xray": {"a": 3, "c": 3}, "photo": {"b": 3, "d": 3}})
    dirs = []
    for f in (0, 1):
        cfg = _tiny(root, tmp_path / f"cv{f}")
        cfg.holdout, cfg.folds = f, 2
        train(cfg, log=lambda *_: None)
        dirs.append(tmp_path / f"cv{f}")
    train(_tiny(root, tmp_path / "final"), log=lambda *_: None)
    shutil.copyfile(root / "photo" / "b" / "0.png", root / "photo" / "b" / "added.png")
    shutil.copyfile(root / "xray" / "a" / "0.png", root / "xray" / "c" / "added.png")
    with pytest.raises(CorpusError, match="the corpus changed while it trained"):
        ship(tmp_path / "final", dirs, tmp_path / "assets", weights="int8", log=lambda *_: None)
    assert not (tmp_path / "assets" / "model.onnx").exists()


def test_a_stop_while_the_cache_is_written_leaves_no_half_written_copy(tmp_path, monkeypatch):
    """The decoded corpus is written beside its name first; a stop in the middle left that copy (as big as the
    corpus decoded: 0.7 GB for the shared one) for good, as the cache's clean-up passes over copies in writing."""
    from medimg.training import dataset

    root = corpus(tmp_path / "data", {"xray": {"a": 2}, "photo": {"b": 2}})
    real = np.savez

    def stop_while_writing(path, **arrays):
        real(path, **arrays)
        raise KeyboardInterrupt

    monkeypatch.setattr(dataset.np, "savez", stop_while_writing)
    with pytest.raises(KeyboardInterrupt):
        dataset.load_images(scan(root), 32, tmp_path / "cache", log=lambda *_: None)
    monkeypatch.setattr(dataset.np, "savez", real)
    assert not list((tmp_path / "cache").glob("*.npz"))  # the corpus's list of its source caches stays
    dataset.load_images(scan(root), 32, tmp_path / "cache", log=lambda *_: None)
    assert sorted(".tmp" not in p.name and p.suffix for p in (tmp_path / "cache").iterdir()) == [".json", ".npz", ".npz"]


def test_exclude_rows_are_read_however_the_path_is_written_and_those_naming_nothing_are_said(tmp_path):
    """Rows written `./photo/b/0.png` or `photo\\b\\1.png` left nothing out, without a word, and train never
    said how many files the lists left out."""
    root = corpus(tmp_path / "data", {"xray": {"a": 3, "c": 3}, "photo": {"b": 3, "d": 3}})
    (root / "exclude.csv").write_text("path,reason\n./photo/b/0.png,a drawing\nphoto\\b\\1.png,a drawing\n"
                                      "xray/a/0.png,cropped\nphoto/x/9.png,gone\n")
    said = []
    c = scan(root, log=said.append)
    assert {"photo/b/0.png", "photo/b/1.png", "xray/a/0.png"}.isdisjoint(c.paths) and len(c.paths) == 9
    assert "3 files left out as listed (exclude.csv or the shipped list)" in said
    assert ("exclude.csv: rows that name no image file under the label folders: 1 (e.g. photo/x/9.png); give "
            "paths from the corpus folder, as label/source/file") in said


def test_exclude_rows_with_spaces_around_the_path_and_preamble_less_dicom_files_are_read(tmp_path):
    """A spreadsheet's cell " xray/a/1.png " leaves that file out; a DICOM file without preamble or file meta
    (no DICM at all) named IM000002 is trained on as `classify` reads it (mutation round s32_mut2)."""
    from builders import bare_dicom

    root = corpus(tmp_path / "data", {"xray": {"a": 3}, "photo": {"b": 3}})
    (root / "exclude.csv").write_text("path,reason\n xray/a/1.png ,cropped\n")
    (root / "xray" / "a" / "IM000002").write_bytes(bare_dicom("MR_small.dcm"))
    c = scan(root, log=lambda *_: None)
    assert "xray/a/1.png" not in c.paths and "xray/a/0.png" in c.paths
    assert "xray/a/IM000002" in c.paths


def test_each_corpus_note_is_said_once_though_every_fold_scans_the_corpus(tmp_path):
    """A readme beside the images and a broken PNG were named 4 times (the checks, two folds, the final model)."""
    pytest.importorskip("torch", reason="needs the train extra (torch)")
    root = corpus(tmp_path / "data", {"xray": {"a": 6, "c": 6}, "photo": {"b": 6, "d": 6}})
    (root / "xray" / "a" / "readme.txt").write_text("notes")
    (root / "photo" / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    res = CliRunner().invoke(app, ["train", "--data", str(root), "--out", str(tmp_path / "runs"), "--cache", "",
                                   "--route", "cnn", "--size", "32", "--epochs", "1", "--samples-per-epoch", "32",
                                   "--folds", "2", "--weights", "fp32"])
    assert res.exit_code == 0, res.output
    said = flat(res.output)
    assert said.count("xray/a: 1 files that are not") == 1
    assert said.count("1 files cannot be read and are left out") == 1 and said.count("photo/b/broken.png:") == 1
    assert said.count("done in") == 3  # two folds and the final model: lines that are no corpus note all come


def _slow_load(args):
    """dataset._load a moment slower, each decode counted in $DECODED."""
    import os
    import time

    from medimg.training import dataset

    time.sleep(0.05)
    got = dataset._real_load(args)
    with open(os.environ["DECODED"], "a") as f:
        f.write(".")
    return got


def test_a_stop_while_decoding_stops_the_decoding_processes_at_once(tmp_path, monkeypatch):
    """SIGTERM reaches the run's own process only: leaving the pool waited for every chunk of files already
    handed to its processes to be decoded (a worker took the same handler, and went on with the next chunk)."""
    from medimg.training import dataset

    root = corpus(tmp_path / "data", {"xray": {"a": 200}, "photo": {"b": 200}})
    c = scan(root)
    monkeypatch.setenv("DECODED", str(tmp_path / "decoded"))
    monkeypatch.setattr(dataset, "_real_load", dataset._load, raising=False)
    monkeypatch.setattr(dataset, "_load", _slow_load)

    def term_at_first_news(message):
        if message.startswith("decoded "):
            signal.raise_signal(signal.SIGTERM)

    children = set(multiprocessing.active_children())  # another test's, if any
    with pytest.raises(SystemExit) as stopped:
        with cli._stopped_cleanly():
            dataset.load_images(c, 32, None, workers=2, log=term_at_first_news)
    assert stopped.value.code == 143
    # two chunks of 64 decoded side by side when the first one's news came; the chunks queued behind them (384
    # files of the 400 here, up to 2 × workers + 1 chunks in all) were decoded too before the stop took effect
    assert len((tmp_path / "decoded").read_text()) < 3 * 64
    assert set(multiprocessing.active_children()) <= children
