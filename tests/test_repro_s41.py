"""`train` and `evaluate` as a data-curation team retrains on its own data (review s41): a source's folders
under several labels (`ct/hospital-a`, `xray/hospital-a`) are held out together, a fold model's record names
only the sources it trained on, and evaluate says in words when it scored nothing."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from medimg.cli import app
from medimg.training.dataset import Corpus, source_folds


def _flat(output: str) -> str:
    return " ".join(re.sub(r"[│╭╮╰╯─┃]", " ", output).split())


def _names_only(sizes: dict[str, int]) -> Corpus:
    """A corpus of `sizes` files per "label/source" (source_folds reads only the names)."""
    source = [s for s, n in sizes.items() for _ in range(n)]
    labels = sorted({s.split("/")[0] for s in sizes})
    return Corpus(Path("."), [f"{s}/{i}.png" for i, s in enumerate(source)], labels,
                  np.array([labels.index(s.split("/")[0]) for s in source]), source, {lb: True for lb in labels})


def _images(root: Path, layout: dict[str, list[str]], n: int = 3) -> Path:
    """root/<label>/<source>/<i>.png, a colour per label."""
    colours = {"xray": (200, 200, 200), "photo": (30, 160, 40), "ct": (90, 90, 90)}
    for label, sources in layout.items():
        for source in sources:
            (root / label / source).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (24, 24), tuple(c - 10 * i for c in colours[label])).save(root / label / source / f"{i}.png")
    return root


def test_a_sources_folders_under_several_labels_are_held_out_together():
    """Three hospitals, each with CT, X-ray and photo folders: each fold holds out whole hospitals, so no file of
    a held-out hospital is trained on (before, each label's folders were spread alone: fold 0 held out
    ct/hospital-c while training on xray/hospital-c)."""
    sizes = {f"{lb}/{h}": n for lb, n in (("ct", 12), ("photo", 9), ("xray", 10))
             for h in ("hospital-a", "hospital-b", "hospital-c")}
    sizes["xray/Hospital-B"] = sizes.pop("xray/hospital-b")  # the same hospital written in capitals
    c = _names_only(sizes)
    for k in (2, 3):
        for seed in range(8):
            fold = source_folds(c, k, seed)
            for f in range(k):
                held = {c.source[i].split("/")[1].lower() for i in np.flatnonzero(fold == f)}
                trained = {c.source[i].split("/")[1].lower() for i in np.flatnonzero(fold != f)}
                assert held and not held & trained, (k, seed, f, held, trained)


def test_a_fold_models_record_names_only_the_sources_it_trained_on(tmp_path):
    pytest.importorskip("torch", reason="needs the train extra (torch)")
    from medimg.training.train import Config, train

    root = _images(tmp_path / "data", {"xray": ["h1", "h2"], "photo": ["h1", "h2"]})
    meta = train(Config(data=str(root), out=str(tmp_path / "cv0"), arch="r8xs", size=32, low_frac=0.0, epochs=1,
                        samples_per_epoch=16, batch_size=8, folds=2, holdout=0, cache="", workers=0, seed=3),
                 log=lambda *_: None)
    held = set(meta["heldout_sources"])
    assert held and not held & set(meta["train_sources"]), meta["train_sources"]
    assert sum(meta["train_sources"].values()) == 12 - 3 * len(held)
    assert {s.split("/")[1] for s in held} | {s.split("/")[1] for s in meta["train_sources"]} == {"h1", "h2"}
    assert not {s.split("/")[1] for s in held} & {s.split("/")[1] for s in meta["train_sources"]}


def test_train_counts_a_source_under_two_labels_once_before_it_trains(tmp_path):
    pytest.importorskip("torch", reason="needs the train extra (torch)")
    root = _images(tmp_path / "data", {"xray": ["h1", "h2"], "photo": ["h1", "h2"]})
    res = CliRunner().invoke(app, ["train", "--data", str(root), "--out", str(tmp_path / "runs"), "--cache", "",
                                   "--route", "cnn", "--size", "32", "--epochs", "1", "--samples-per-epoch", "8",
                                   "--folds", "3"])
    assert res.exit_code == 2 and "3 folds need at least 3 sources" in _flat(res.output), res.output
    assert "has 2" in _flat(res.output)
    assert not (tmp_path / "runs" / "cv0").exists()


def test_evaluate_with_nothing_scored_says_so_in_words(tmp_path, tiny_model_dir):
    """An empty label folder and one whose only file cannot be read: no metric is printed as Python's None,
    nor an empty table; the run says nothing was scored and why, and exits 1."""
    (tmp_path / "data" / "photo").mkdir(parents=True)
    (tmp_path / "data" / "xray" / "s").mkdir(parents=True)
    (tmp_path / "data" / "xray" / "s" / "a.png").write_bytes(b"not a picture")
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path / "data"), "--model", str(tiny_model_dir)])
    assert res.exit_code == 1, res.output
    assert "no image was scored" in res.output and "None" not in res.output and "precision" not in res.output
    assert "xray/s/a.png" in res.output and "folder holds no files" in res.output


def test_a_checkpoint_that_held_out_other_sources_is_not_resumed(tmp_path):
    """A fold's checkpoint made when its sources were spread otherwise (before a source's folders under several
    labels went to one fold) would carry on a model that trained on files the fold now holds out."""
    torch = pytest.importorskip("torch", reason="needs the train extra (torch)")
    from medimg.training.train import Config, train

    root = _images(tmp_path / "data", {"xray": ["h1", "h2"], "photo": ["h1", "h2"]})
    cfg = Config(data=str(root), out=str(tmp_path / "cv0"), arch="r8xs", size=32, low_frac=0.0, epochs=1,
                 samples_per_epoch=16, batch_size=8, folds=2, holdout=0, cache="", workers=0, seed=3)
    held = train(cfg, log=lambda *_: None)["heldout_sources"]
    ck = tmp_path / "cv0" / "checkpoint.pt"
    state = torch.load(ck, weights_only=True)
    assert state["heldout"] == held
    said: list[str] = []
    train(cfg, log=said.append)
    assert "resumed from epoch 1" in said  # the same folds: carried on
    for made in ({**state, "heldout": ["photo/h2", "xray/h1"]}, {k: v for k, v in state.items() if k != "heldout"}):
        torch.save(made, ck)
        said.clear()
        train(cfg, log=said.append)
        assert any("was made holding out other sources: starting again" in m for m in said), said
        assert "resumed from epoch 1" not in said
