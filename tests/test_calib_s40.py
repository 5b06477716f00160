"""The model's outputs as a user reads them (s40 review): the verdict rule at its boundary, a model folder's
temperature and threshold, the Ray job's threshold, and one image's numbers across batch sizes and surfaces."""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

from medimg.model import Classifier, verdict_for
from medimg.model.classifier import ASSETS, p_text
from medimg.pipeline import Record, classify
from medimg.training.calibrate import choose_threshold

def _decimals(places: int):
    """(t, p) typed with `places` decimals, t from 0.5 to 1 and p = 1 − t exactly as decimals."""
    n = 10 ** places
    return [(t / n, (n - t) / n) for t in range(n // 2, n + 1)]


def test_p_medical_at_one_minus_the_threshold_is_non_medical_as_the_docs_say():
    """`non-medical when p_medical ≤ 1 − t`: at t = 0.66, 0.67, 0.68 and 0.93 (and 42 three-decimal thresholds)
    a p_medical of exactly 1 − t came out uncertain, as 1 − 0.34 < 0.66 in floating point."""
    assert verdict_for(0.34, 0.66) == verdict_for(0.07, 0.93) == verdict_for(0.467, 0.533) == "non-medical"
    for places in (2, 3):
        wrong = [(t, p) for t, p in _decimals(places) if t > 0.5 and verdict_for(p, t) != "non-medical"]
        assert wrong == [], wrong[:5]
    assert verdict_for(0.5, 0.5) == "medical"  # both hold at 0.5: p ≥ 0.5 is medical, as README says
    # one step inside either side is uncertain, and p = t is medical
    for t, p in _decimals(3):
        if 0.5 < t < 1:
            assert verdict_for(p + 0.001, t) == verdict_for(t - 0.001, t) == "uncertain", (t, p)
            assert verdict_for(t, t) == "medical"


def test_a_record_relabelled_and_its_caption_agree_with_the_rule():
    """Record.relabel (the page's slider, the CSV download) and the page's caption say non-medical for
    p_medical 0.34 at 0.66; the chosen-threshold table counts it as decided too."""
    from medimg.server.ui import _caption

    rec = Record(input="a.png", locator="", label="photo", medical=False, confidence=0.6, p_medical=0.34,
                 verdict="uncertain")
    assert rec.relabel(0.66) == "non-medical"
    rec.verdict = rec.relabel(0.66)
    assert _caption(rec, 0.66).startswith("non-medical 66%")
    assert p_text(0.34, 0.66) == "0.340"
    _, info = choose_threshold(np.array([0.34, 0.66]), np.array([False, True]), grid=np.array([0.66]))
    assert info["chosen"] == {"threshold": 0.66, "errors": 0, "uncertain": 0, "cost": 0.0}


@pytest.fixture()
def model_folder(tmp_path: Path) -> Path:
    import tinymodel

    return tinymodel.build(tmp_path / "model")


def _with(folder: Path, **meta) -> Path:
    path = folder / "labels.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **meta}))
    return folder


@pytest.mark.parametrize("key, value", [
    ("threshold", math.nan), ("threshold", 1.5), ("threshold", 0.3), ("threshold", math.inf),
    ("threshold", None), ("threshold", "high"), ("threshold", True),
    ("temperature", 0), ("temperature", -1.0), ("temperature", math.nan), ("temperature", math.inf),
    ("temperature", None),
])
def test_a_model_folder_with_a_bad_temperature_or_threshold_is_refused(model_folder, key, value):
    """A temperature of 0 or NaN gave NaN probabilities (written as NaN, not JSON), -1 turned them around (a
    red image read as not red), and a threshold of NaN or 1.5 made every verdict uncertain: all without a word."""
    _with(model_folder, **{key: value})
    with pytest.raises(ValueError, match=f"labels.json is not a model's labels.json: its {key} must be"):
        Classifier.load(model_folder)
    with pytest.raises(ValueError, match=f"its {key} must be"):
        classify(["x.png"], classifier=model_folder)


def test_a_model_folder_without_temperature_or_threshold_still_loads(model_folder):
    meta = json.loads((model_folder / "labels.json").read_text())
    for key in ("temperature", "threshold"):
        meta.pop(key, None)
    (model_folder / "labels.json").write_text(json.dumps(meta))
    clf = Classifier.load(model_folder)
    assert (clf.temperature, clf.threshold) == (1.0, 0.8)
    _with(model_folder, temperature=2, threshold=1)  # whole numbers are numbers
    clf = Classifier.load(model_folder)
    assert (clf.temperature, clf.threshold) == (2.0, 1.0)


def test_the_ray_job_refuses_a_bad_threshold_before_ray_starts(tmp_path):
    """scale's Python run() took a NaN threshold, started Ray and its actors, and failed in each of them."""
    pytest.importorskip("ray")
    pytest.importorskip("pyarrow")
    from medimg.scale import ray_job

    out = tmp_path / "out"
    for bad, kind in ((math.nan, ValueError), (1.5, ValueError), ("0.9", TypeError)):
        start = time.monotonic()
        with pytest.raises(kind, match="threshold must be"):
            ray_job.run(["a.png"], out, threshold=bad, concurrency=1)
        assert time.monotonic() - start < 5
        assert not out.exists()


def _corpus_sample(shared: Path, per_label: int = 4) -> list[str]:
    """`per_label` images of each label, spread over its MANIFEST.csv rows."""
    by: dict[str, list[str]] = {}
    with open(shared / "MANIFEST.csv", newline="") as f:
        for row in csv.DictReader(f):
            by.setdefault(row["label"], []).append(str(shared / row["path"]))
    return [p for label in sorted(by) for p in by[label][::max(1, len(by[label]) // per_label)][:per_label]]


@pytest.mark.skipif(not (ASSETS / "labels.json").exists(), reason="needs the shipped model")
def test_corpus_images_get_the_same_numbers_at_any_batch_size_and_from_predict(shared_data):
    """Measured on corpus images: each record's probabilities add up to 1, p_medical is the sum of the medical
    labels', the verdict follows the rule, and batch size 1 or 32, a second run and predict() agree bit for bit."""
    from PIL import Image

    files = _corpus_sample(shared_data)
    clf = Classifier.load()
    runs = [{r.input: r for r in classify(files, classifier=clf, batch_size=bs)} for bs in (1, 32, 32)]
    for f in files:
        r = runs[0][f]
        assert r.ok, r.error
        assert abs(sum(r.probs.values()) - 1) < 1e-9
        assert abs(sum(r.probs[lb] for lb in clf.medical_labels) - r.p_medical) < 1e-12
        assert r.verdict == verdict_for(r.p_medical, clf.threshold)
        assert r.label == max(r.probs, key=r.probs.get) and r.confidence == r.probs[r.label]
        assert runs[1][f].probs == runs[2][f].probs == r.probs
    for f, p in zip(files, clf.predict([Image.open(f) for f in files], batch_size=5)):
        assert p.probs == runs[0][f].probs and p.verdict == runs[0][f].verdict
