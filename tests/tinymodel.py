"""A tiny, transparent ONNX model for testing the pipeline's mechanics (not the shipped model).

It averages each colour channel and scores labels linearly, so a red image is `xray`, a green
one `photo` and a blue one `graphic` — tests can check that answers reach the right records.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LABELS = ["xray", "photo", "graphic"]
MEDICAL = ["xray"]


def build(folder: Path, size: int = 32, threshold: float = 0.8) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    weights = np.eye(3, dtype=np.float32) * 20.0  # channel mean in [-1, 1] → logits
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=0),
            helper.make_node("MatMul", ["m", "w"], ["logits"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 3])],
        initializer=[numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
                     numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, folder / "model.onnx")
    (folder / "labels.json").write_text(json.dumps({
        "name": "tiny-test-model", "version": "0", "labels": LABELS, "medical_labels": MEDICAL,
        "input_size": size, "temperature": 1.0, "threshold": threshold,
    }))
    return folder
