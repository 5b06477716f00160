"""Model folders as users bring them (session 42): an ONNX file that takes other inputs than labels.json says, or
a labels.json whose labels, medical labels, input size or kind cannot work, is refused when loaded (a usage
error, exit 2), not on every image later; a model exported for batches of one runs; a labels.json with a BOM
loads; `~/…` is looked for in the home folder."""
import json
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import tinymodel
from medimg.cli import app
from medimg.model import Classifier
from medimg.pipeline import classify
from words import flat

runner = CliRunner()


def _images(tmp_path):
    paths = []
    for name, colour in [("red.png", (220, 10, 10)), ("green.png", (10, 220, 10)), ("blue.png", (10, 10, 220))]:
        Image.new("RGB", (40, 30), colour).save(tmp_path / name)
        paths.append(str(tmp_path / name))
    return paths


def _onnx(folder, shape, inputs=("x",), dtype=None, size=32):
    """tinymodel's network (channel means → logits) with the input(s) declared as `shape`."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True)
    nodes = [helper.make_node("ReduceMean", [inputs[0], "axes"], ["m"], keepdims=0),
             helper.make_node("MatMul", ["m", "w"], ["logits"])]
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info(n, dtype or TensorProto.FLOAT, shape) for n in inputs],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 3])],
        initializer=[numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
                     numpy_helper.from_array(np.eye(3, dtype=np.float32) * 20, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, folder / "model.onnx")
    (folder / "labels.json").write_text(json.dumps({"name": folder.name, "version": "1", "labels": tinymodel.LABELS,
                                                    "medical_labels": tinymodel.MEDICAL, "input_size": size}))
    return folder


def _edited(tiny_model_dir, folder, drop=(), **changes):
    shutil.copytree(tiny_model_dir, folder)
    meta = json.loads((folder / "labels.json").read_text())
    meta = {k: v for k, v in {**meta, **changes}.items() if k not in drop}
    (folder / "labels.json").write_text(json.dumps(meta))
    return folder


def test_an_onnx_of_another_input_size_is_refused_when_loaded_not_on_every_image(tmp_path):
    # Before: it loaded, then the first batch raised onnxruntime's InvalidArgument out of the stream (the CLI printed
    # a traceback and exited 1 once every image had failed; serve started and failed every request).
    images = _images(tmp_path)
    folder = _onnx(tmp_path / "fixed64", ["n", 3, 64, 64])
    with pytest.raises(ValueError, match=r"takes float32 inputs of N × 3 × 64 × 64, not one float32 input of "
                                         r"N × 3 × 32 × 32 \(labels.json's input_size\)"):
        classify(images, classifier=str(folder))
    res = runner.invoke(app, ["classify", *images, "--model", str(folder), "--format", "jsonl"])
    assert res.exit_code == 2, res.output
    assert "N × 3 × 64 × 64" in flat(res.output) and "Traceback" not in res.output


@pytest.mark.parametrize("shape, inputs, fp16, said", [
    (["n", "h", "w", 3], ("x",), False, "takes float32 inputs of N × any × any × 3"),  # channels last
    (["n", 3, "h", "w"], ("x",), True, "takes float16 inputs of N × 3 × any × any"),
    (["n", 3, "h", "w"], ("x", "mask"), False, "takes 2 inputs (x, mask)"),
])
def test_an_onnx_taking_other_inputs_is_refused_when_loaded(tmp_path, shape, inputs, fp16, said):
    from onnx import TensorProto

    folder = _onnx(tmp_path / "m", shape, inputs, TensorProto.FLOAT16 if fp16 else None)
    if fp16:  # a float16 graph throughout: its weights and output too
        import onnx
        from onnx import helper, numpy_helper

        model = onnx.load(folder / "model.onnx")
        model.graph.initializer[1].CopyFrom(numpy_helper.from_array(np.eye(3, dtype=np.float16) * 20, "w"))
        model.graph.output[0].CopyFrom(helper.make_tensor_value_info("logits", TensorProto.FLOAT16, ["n", 3]))
        onnx.save(model, folder / "model.onnx")
    with pytest.raises(ValueError, match=said.replace("(", r"\(").replace(")", r"\)")):
        Classifier.load(folder)


def test_a_model_exported_for_batches_of_one_classifies_every_image(tmp_path, tiny_model_dir):
    # torch.onnx.export without dynamic axes fixes the batch at the example's (1). Before: a batch of 3 failed
    # with a traceback ("index: 0 Got: 3 Expected: 1").
    images = _images(tmp_path)
    folder = _onnx(tmp_path / "batch1", [1, 3, 32, 32])
    got = [(r.label, r.error) for r in classify(images, classifier=str(folder), batch_size=2)]
    assert got == [(r.label, None) for r in classify(images, classifier=tiny_model_dir)]
    assert [lb for lb, _ in got] == ["xray", "photo", "graphic"]
    for label, image in [("xray", images[0]), ("photo", images[1]), ("graphic", images[2])]:
        (tmp_path / "lab" / label).mkdir(parents=True)
        shutil.copy(image, tmp_path / "lab" / label)
    res = runner.invoke(app, ["evaluate", str(tmp_path / "lab"), "--model", str(folder), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["label_accuracy"] == 1.0


@pytest.mark.parametrize("changes, said", [
    ({"medical_labels": "xray"}, "its medical_labels must be a list of the labels that are medical"),
    ({"medical_labels": ["ct"]}, "not ['ct']"),
    ({"labels": ["xray", "xray", "photo"]}, "its labels must be a list of two or more different names"),
    ({"input_size": 0}, "its input_size must be a whole number of pixels from 8 to 1024, not 0"),
    ({"input_size": 100000}, "not 100000"),
    ({"input_size": "32"}, "not '32'"),
    ({"kind": "pytorch"}, "its kind must be onnx or backbone-head"),
])
def test_a_labels_json_that_cannot_work_is_refused_when_loaded(tmp_path, tiny_model_dir, changes, said):
    # Before: medical_labels "xray" (its letters) or ["ct"] made every verdict non-medical; twice "xray" lost a
    # probability; input_size 0 failed every image ("division by zero"), 100000 took the memory; "32" and an unknown
    # kind were taken.
    folder = _edited(tiny_model_dir, tmp_path / "m", **changes)
    with pytest.raises(ValueError, match="is not a model's labels.json") as info:
        Classifier.load(folder)
    assert said in str(info.value)
    res = runner.invoke(app, ["classify", *_images(tmp_path), "--model", str(folder)])
    assert res.exit_code == 2 and said.split(",")[0] in flat(res.output), res.output


def test_a_misspelt_threshold_is_refused_not_left_at_the_default(tmp_path, tiny_model_dir):
    folder = _edited(tiny_model_dir, tmp_path / "m", drop=("threshold",), treshold=0.95)
    with pytest.raises(ValueError, match="medimg reads no 'treshold'; is it 'threshold'"):
        Classifier.load(folder)
    # the keys `medimg train` writes beside them are not mistaken for misspellings
    assert Classifier.load(_edited(tiny_model_dir, tmp_path / "n", arch="effl2", weights="int8", input="…",
                                   trained_on={}, train_config={}, source_heldout={})).threshold == 0.8


def test_a_labels_json_with_a_byte_order_mark_loads(tmp_path, tiny_model_dir):
    folder = shutil.copytree(tiny_model_dir, tmp_path / "m")
    (folder / "labels.json").write_bytes(b"\xef\xbb\xbf" + (folder / "labels.json").read_bytes())
    assert Classifier.load(folder).labels == tinymodel.LABELS


def test_a_folder_given_as_tilde_is_looked_for_in_the_home_folder(tmp_path, tiny_model_dir, monkeypatch):
    # --model=~/models/tiny is not expanded by the shell, nor is MEDIMG_MODEL_DIR=~/… in a service's settings.
    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copytree(tiny_model_dir, tmp_path / "models" / "tiny")
    assert Classifier.load("~/models/tiny").info()["name"] == "tiny-test-model"
    res = runner.invoke(app, ["classify", _images(tmp_path)[0], "--model=~/models/tiny", "--format", "jsonl"])
    assert res.exit_code == 0 and '"model": "tiny-test-model 0"' in res.output, res.output
    with pytest.raises(ValueError, match=f"no model in {tmp_path}/nothing: there is no such folder"):
        classify(["x.png"], classifier="~/nothing")


def test_train_refuses_an_input_size_a_model_cannot_load_with(tmp_path):
    res = runner.invoke(app, ["train", "--size", "2048", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--size" in flat(res.output) and "1024" in flat(res.output), res.output


def test_switching_models_in_one_process_uses_each(tmp_path, tiny_model_dir):
    images = _images(tmp_path)[:1]
    other = _edited(tiny_model_dir, tmp_path / "other", name="other", medical_labels=["photo"], threshold=0.9)
    for model, name, verdict in [(tiny_model_dir, "tiny-test-model 0", "medical"), (other, "other 0", "non-medical"),
                                 ("fast", "medimg-effl0", None), (str(tiny_model_dir), "tiny-test-model 0", "medical")]:
        rec = next(iter(classify(images, classifier=model)))
        assert rec.model.startswith(name) and (verdict is None or rec.verdict == verdict), (model, rec)
