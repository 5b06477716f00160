"""`train` and `evaluate` as a user meets them (review s39): a corpus folder given wrongly is told how to give it,
a MANIFEST.csv beside the label folders is said not to be read, the model card's tables read well for a tiny run,
and evaluate's table shows the labels the model wrongly predicted though the folder has none of them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from medimg.cli import app
from medimg.training.card import tables
from medimg.training.dataset import CorpusError, scan
from medimg.training.evaluate import metrics


def _corpus(root, layout=(("ct", "a"), ("ct", "b"), ("photo", "c"), ("photo", "d")), n=3):
    for label, source in layout:
        folder = root / label / source
        folder.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((40, 40, 3), 40 * i + 20, np.uint8)).save(folder / f"{i}.png")
    return root


def test_a_label_folder_given_as_the_corpus_is_told_to_give_the_folder_that_holds_it(tmp_path):
    root = _corpus(tmp_path / "corpus")
    with pytest.raises(CorpusError, match="itself the label folder ct/") as err:
        scan(root / "ct")
    assert str(root) in str(err.value)


def test_a_folder_of_loose_images_is_told_the_layout(tmp_path):
    for i in range(3):
        Image.new("RGB", (20, 20), (i * 50, 0, 0)).save(tmp_path / f"{i}.png")
    with pytest.raises(CorpusError, match="its 3 images lie directly in it; lay them out as <label>/<source>/<image>"):
        scan(tmp_path)


def test_train_says_the_label_folder_hint_before_anything_trains(tmp_path):
    pytest.importorskip("torch", reason="train needs the train extra (torch)")
    root = _corpus(tmp_path / "corpus")
    res = CliRunner().invoke(app, ["train", "--route", "cnn", "--data", str(root / "photo"), "--out",
                                   str(tmp_path / "runs"), "--cache", ""])
    assert res.exit_code == 2
    assert "itself the label folder" in " ".join(res.output.split())
    assert not (tmp_path / "runs" / "cv0").exists()


def test_a_manifest_beside_the_label_folders_is_said_not_to_be_read(tmp_path):
    root = _corpus(tmp_path)
    # a MANIFEST naming a missing file, a wrong label and no licence column: the folders decide, as said
    (root / "MANIFEST.csv").write_text("path,label,source\nct/a/0.png,xray,x\nct/a/gone.png,ct,a\n")
    (root / "label_groups.csv").write_text("label,group\nthermal,medical\n")  # read: not named
    said: list[str] = []
    corpus = scan(root, log=said.append)
    assert any("1 files beside the label folders are not read (MANIFEST.csv)" in s for s in said), said
    assert not any("label_groups.csv" in s for s in said)
    assert corpus.labels == ["ct", "photo"] and len(corpus.paths) == 12


def _report(decided: bool) -> dict:
    probs = np.array([[0.55, 0.45], [0.45, 0.55], [0.9, 0.1]] if decided else [[0.55, 0.45], [0.45, 0.55]])
    y = np.array([0, 1, 0][:len(probs)])
    rep = metrics(probs, y, ["ct", "photo"], {"ct"}, threshold=0.8, sources=["ct/a", "photo/b", "ct/c"][:len(probs)])
    return rep | {"folds": ["cv0", "cv1"], "ece_uncalibrated": 0.1, "temperature": 1.0}


def test_the_cards_tables_say_none_decided_in_words_and_count_one_epoch_as_one():
    lab = {"name": "m", "version": "1", "arch": "r8xs", "input_size": 32, "labels": ["ct", "photo"],
           "train_config": {"seed": 1, "data": "d", "epochs": 1, "samples_per_epoch": 64}, "trained_on": {"ct/a": 2}}
    text = tables(_report(decided=False), lab)
    assert "| 0 / 2 / none |" in text and "None" not in text
    assert "1 epoch of 64 draws" in text
    assert "| 1 / 2 / 1.0 |" in tables(_report(decided=True))


def test_evaluate_lists_a_label_predicted_though_the_folder_has_none(tmp_path, tiny_model_dir):
    # the tiny model calls red xray, green photo, blue graphic: blue images in photo/ are called graphic
    for label, rgb in (("xray", (200, 0, 0)), ("photo", (0, 0, 200))):
        folder = tmp_path / "data" / label / "s"
        folder.mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (40, 40), rgb).save(folder / f"{i}.png")
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path / "data"), "--model", str(tiny_model_dir)])
    assert res.exit_code == 0, res.output
    rows = {line.split("│")[1].strip(): line for line in res.output.splitlines() if line.count("│") == 6}
    assert set(rows) == {"graphic", "photo", "xray"}, res.output
    assert rows["graphic"].split("│")[5].strip() == "0"  # no support: precision 0 shows the two misread
