"""`evaluate` and `train` for a team checking a retrained model (review s36): evaluate writes one row per image
scored (`--predictions`), from which its headline numbers can be worked out again by hand; the held-out tables
`train --docs` writes name the model, the data and the seed they are of."""

from __future__ import annotations

import csv
import json
import math
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from medimg.cli import app


def _by_hand(rows: list[dict], medical: set[str]) -> dict:
    """Binary accuracy, label accuracy, macro-F1 over the labels present and 15-bin ECE, from the rows alone."""
    labels = [k[5:] for k in rows[0] if k.startswith("prob_")]
    n = len(rows)
    probs = [{lb: float(r[f"prob_{lb}"]) for lb in labels} for r in rows]
    pred = [max(p, key=p.get) for p in probs]
    true = [r["true"] for r in rows]
    p_med = [sum(v for lb, v in p.items() if lb in medical) for p in probs]
    f1 = []
    for lb in sorted(set(true)):
        tp = sum(t == lb == q for t, q in zip(true, pred))
        fp = sum(t != lb and q == lb for t, q in zip(true, pred))
        fn = sum(t == lb != q for t, q in zip(true, pred))
        prec, rec = (tp / (tp + fp) if tp + fp else 0), (tp / (tp + fn) if tp + fn else 0)
        f1.append(2 * prec * rec / (prec + rec) if prec + rec else 0)
    bins: dict[int, list] = {}
    for p, q, t in zip(probs, pred, true):
        bins.setdefault(max(0, math.ceil(p[q] * 15) - 1), []).append((p[q], q == t))
    ece = sum(len(b) / n * abs(np.mean([h for _, h in b]) - np.mean([c for c, _ in b])) for b in bins.values())
    return {"n": n, "binary_accuracy": np.mean([(pm >= 0.5) == (t in medical) for pm, t in zip(p_med, true)]),
            "label_accuracy": np.mean([q == t for q, t in zip(pred, true)]), "modality_macro_f1": np.mean(f1),
            "ece": ece}


def _labelled(root):
    """xray/a, xray/b, photo/c, graphic/d: images of mixed colours, so the tiny model (red → xray, green → photo,
    blue → graphic) is sure of some, unsure of others and wrong about a few; one file that cannot be decoded."""
    rng = np.random.default_rng(3)
    colour = {"xray": 0, "photo": 1, "graphic": 2}
    for label, source in (("xray", "a"), ("xray", "b"), ("photo", "c"), ("graphic", "d")):
        folder = root / label / source
        folder.mkdir(parents=True)
        for i in range(8):
            rgb = rng.integers(40, 120, 3)
            rgb[colour[label] if i % 4 else rng.integers(0, 3)] += rng.integers(0, 130)  # every 4th: any colour
            Image.fromarray(np.full((40, 40, 3), rgb, np.uint8)).save(folder / f"{i}.png")
    (root / "photo" / "c" / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(30))
    return root


@pytest.mark.parametrize("name", ["rows.csv", "rows.jsonl"])
def test_evaluate_writes_a_row_per_image_that_gives_its_numbers_again(tmp_path, tiny_model_dir, name):
    """Before, evaluate said its numbers and listed only the first 200 images it misread: nobody could check
    them, or look at the images it was right about but unsure of, without running classify again and mapping
    folders to labels and the exclude lists by hand."""
    root = _labelled(tmp_path / "data")
    out = tmp_path / name
    res = CliRunner().invoke(app, ["evaluate", str(root), "--model", str(tiny_model_dir), "--json",
                                   "--predictions", str(out), "--workers", "1"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert "predictions" not in rep  # the rows go to the file, not into the printed report
    if name.endswith(".csv"):
        rows = list(csv.DictReader(out.open(encoding="utf-8")))
    else:
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == rep["n"] == 32 and len(rep["read_errors"]) == 1
    assert not any("cut.png" in r["item"] for r in rows)  # a read error is listed, not scored
    assert {r["source"] for r in rows} == {"xray/a", "xray/b", "photo/c", "graphic/d"}
    hand = _by_hand(rows, {"xray"})
    for key in ("binary_accuracy", "label_accuracy", "modality_macro_f1", "ece"):
        assert hand[key] == pytest.approx(rep[key], abs=1e-4), key
    assert 0 < rep["binary_accuracy"] < 1 and 0 < rep["ece"]  # a folder the model is not perfect on
    assert sum(str(r["correct"]).lower() == "true" for r in rows) == rep["n"] - rep["n_errors"]
    assert sum(r["verdict"] == "uncertain" for r in rows) == rep["verdicts"]["uncertain"]


def test_evaluate_refuses_a_predictions_file_it_cannot_write_before_reading_the_folder(tmp_path, tiny_model_dir):
    root = _labelled(tmp_path / "data")
    res = CliRunner().invoke(app, ["evaluate", str(root), "--model", str(tiny_model_dir),
                                   "--predictions", str(tmp_path / "no" / "such" / "rows.csv")])
    assert res.exit_code == 2 and "cannot be written" in res.output


def test_evaluate_rows_on_corpus_images_give_its_numbers_with_the_shipped_model(tmp_path, shared_data):
    """The same on real images: 3 labels × 2 sources × 6 corpus images, scored by the shipped model."""
    picks = {"xray": ["medical-mnist-hand", "actualmed-covid-cxr"], "photo": ["imagenet-sample-images", "cifar10-images"],
             "document": ["sroie-receipt-scans", "tesseract-test-images"]}
    root = tmp_path / "data"
    for label, sources in picks.items():
        for s in sources:
            (root / label / s).mkdir(parents=True)
            for f in sorted((shared_data / label / s).iterdir())[:6]:
                shutil.copy(f, root / label / s / f.name)
    out = tmp_path / "rows.csv"
    res = CliRunner().invoke(app, ["evaluate", str(root), "--json", "--predictions", str(out), "--workers", "1"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == rep["n"] > 0
    hand = _by_hand(rows, set(rep["model"]["medical_labels"]))
    for key in ("binary_accuracy", "label_accuracy", "modality_macro_f1", "ece"):
        assert hand[key] == pytest.approx(rep[key], abs=1e-4), key


def test_the_held_out_tables_name_the_model_the_data_and_the_seed(tmp_path):
    """heldout.md, the card's tables `train --docs` writes, gave the numbers and not what they were of: a team
    comparing two retrained models could not tell from it which corpus, seed or budget each came from."""
    torch = pytest.importorskip("torch", reason="needs the train extra (torch)")
    from test_training import _fold_runs

    from medimg.model.preprocess import MEAN, STD
    from medimg.training.net import build
    from medimg.training.ship import ship

    labels = ["ct", "photo", "xray"]
    final = tmp_path / "final"
    final.mkdir()
    config = {"data": "/data/hospital", "seed": 4242, "epochs": 3, "samples_per_epoch": 256, "per_source": 50}
    meta = {"labels": labels, "medical_labels": ["ct", "xray"], "arch": "r8xs", "input_size": 64, "mean": list(MEAN),
            "std": list(STD), "config": config, "train_sources": {"ct/a": 50, "photo/b": 40, "xray/c": 7},
            "train_seconds": 1.0}
    torch.save({"meta": meta, "model": build("r8xs", len(labels), pretrained=False).state_dict()}, final / "model.pt")
    ship(final, _fold_runs(tmp_path, tuple(labels)), tmp_path / "assets", tmp_path / "docs", version="v1",
         log=lambda *_: None)
    card = (tmp_path / "docs" / "heldout.md").read_text(encoding="utf-8")
    head = card.splitlines()[0]
    assert head.startswith("Model medimg-r8xs v1 (r8xs, 64 px, fp32 weights), seed 4242: trained on /data/hospital")
    assert "97 files from 3 sources, at most 50 a source; labels ct, photo, xray" in head
    assert "3 epochs of 256 draws" in head
    assert "| metric (source-held-out, 2 folds, n = 600) | value |" in card  # the tables follow as before
