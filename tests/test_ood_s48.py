"""The model layer's answers at their edges (s48 review): p_medical stays a probability, at most 1, when every
label but the medical ones is near 0 (their rounded sum came to 1.0000000000000002)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from medimg.model import Classifier
from medimg.pipeline import classify

LABELS = ["xray", "ct", "mri", "photo"]
LOGITS = [-3.0, 2.0, 0.0, -100.0]  # softmax: the three medical labels' probabilities add up to 1 + 2.2e-16


def _constant_model(folder: Path) -> Classifier:
    """A model giving LOGITS for every image."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=0),
         helper.make_node("Unsqueeze", ["m", "one"], ["m1"]),
         helper.make_node("Mul", ["m1", "zero"], ["m0"]),
         helper.make_node("Add", ["m0", "bias"], ["logits"])],
        "constant",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 4])],
        initializer=[numpy_helper.from_array(np.array([1, 2, 3], np.int64), "axes"),
                     numpy_helper.from_array(np.array([1], np.int64), "one"),
                     numpy_helper.from_array(np.zeros(1, np.float32), "zero"),
                     numpy_helper.from_array(np.array(LOGITS, np.float32), "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, folder / "model.onnx")
    (folder / "labels.json").write_text(json.dumps({"labels": LABELS, "medical_labels": LABELS[:3],
                                                    "input_size": 16, "temperature": 1.0}))
    return Classifier.load(folder)


def test_p_medical_is_at_most_one_when_all_the_mass_is_medical(tmp_path):
    clf = _constant_model(tmp_path / "model")
    row = clf.probabilities_from_array(np.zeros((1, 3, 16, 16), np.float32))[0]
    assert row[:3].sum() > 1.0  # what made it pass 1: the model's answer is as the test needs it
    Image.new("RGB", (20, 20), "white").save(tmp_path / "a.png")
    [pred] = clf.predict(Image.open(tmp_path / "a.png"))
    [rec] = classify([str(tmp_path / "a.png")], classifier=clf)
    for p in (pred.p_medical, rec.p_medical):
        assert 0.0 <= p <= 1.0
        assert abs(p - sum(pred.probs[lb] for lb in LABELS[:3])) < 1e-12  # still the medical labels' sum
    assert pred.verdict == rec.verdict == "medical"
    assert clf.predict(Image.open(tmp_path / "a.png"), threshold=1)[0].verdict == "medical"
    assert rec.relabel(1) == "medical"
