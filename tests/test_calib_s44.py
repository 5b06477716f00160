"""The model's outputs as a user reads them (s44 review): a model whose scores for an image are NaN gives that
image an error, not the first label with a confidence of NaN (NaN in the CLI's JSONL, null in the API's)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medimg.model import Classifier, Prediction
from medimg.pipeline import classify


def _log_model(folder: Path, shift: list[float]) -> Path:
    """A model whose logits are log(mean of the input + shift): NaN where the mean is under −shift (a black image,
    −1 once normalised, for shifts under 1), finite for a white one."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=0),
         helper.make_node("Unsqueeze", ["m", "one"], ["m1"]),
         helper.make_node("Add", ["m1", "shift"], ["s"]),
         helper.make_node("Log", ["s"], ["logits"])],
        "log",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 3])],
        initializer=[numpy_helper.from_array(np.array([1, 2, 3], np.int64), "axes"),
                     numpy_helper.from_array(np.array([1], np.int64), "one"),
                     numpy_helper.from_array(np.array(shift, np.float32), "shift")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, folder / "model.onnx")
    (folder / "labels.json").write_text(json.dumps({"labels": ["xray", "photo", "graphic"],
                                                    "medical_labels": ["xray"], "input_size": 16}))
    return folder


def _strict(line: str) -> dict:
    def refuse(name):
        raise ValueError(f"{name} is not JSON")
    return json.loads(line, parse_constant=refuse)


@pytest.fixture
def nan_model(tmp_path) -> Classifier:
    return Classifier.load(_log_model(tmp_path / "model", [0.5, 0.6, 0.7]))


def test_nan_scores_are_an_error_row_not_a_label(tmp_path, nan_model):
    """A black image's scores are NaN: it was label xray (the first), medical true, confidence and p_medical NaN,
    verdict uncertain, with no error; the white image beside it is classified as before."""
    Image.new("L", (20, 20), 0).save(tmp_path / "black.png")
    Image.new("L", (20, 20), 255).save(tmp_path / "white.png")
    black, white = classify([str(tmp_path / "black.png"), str(tmp_path / "white.png")], classifier=nan_model)
    assert black.label is None and black.confidence is None and black.verdict is None
    assert "not numbers" in black.error and not black.skipped
    assert white.ok and white.label == "graphic" and 0 < white.confidence < 1
    for rec in (black, white):
        _strict(json.dumps(rec.to_dict(full=True)))  # no NaN written


def test_nan_scores_through_the_cli_are_valid_jsonl(tmp_path, nan_model):
    from typer.testing import CliRunner

    from medimg.cli import app

    Image.new("L", (20, 20), 0).save(tmp_path / "black.png")
    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(app, ["classify", str(tmp_path / "black.png"), "--model", str(nan_model.path.parent),
                                   "-o", str(out)])
    rows = [_strict(line) for line in out.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["label"] is None and "not numbers" in rows[0]["error"], res.output


def test_predict_raises_or_returns_the_error_for_nan_scores(nan_model):
    black, white = Image.new("RGB", (20, 20)), Image.new("RGB", (20, 20), "white")
    got = nan_model.predict([white, black, white], errors="return")
    assert isinstance(got[0], Prediction) and isinstance(got[2], Prediction)
    assert isinstance(got[1], ValueError) and "not numbers" in str(got[1])
    with pytest.raises(ValueError, match="not numbers") as info:
        nan_model.predict([white, black])
    assert "index 1" in " ".join(getattr(info.value, "__notes__", []))


def test_a_model_with_nan_scores_for_a_blank_image_is_refused_when_loaded(tmp_path):
    """NaN weights give NaN for every image: refused at load, as a model of the wrong shape is, not an image
    at a time."""
    folder = _log_model(tmp_path / "broken", [-0.5, 0.6, 0.7])  # log(−0.5) for the blank (all-zero) input
    with pytest.raises(ValueError, match="not numbers"):
        Classifier.load(folder)
