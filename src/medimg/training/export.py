"""Export a trained torch model to one self-contained ONNX file and check it against torch."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn


def to_onnx(model: nn.Module, path: str | Path, size: int, opset: int = 17) -> Path:
    """Dynamic batch/height/width, float32 NCHW input `image`, output `logits`; weights inside the file.
    Constants are folded and zero Pads merged into the Convs they feed (`fold_pads`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().to(memory_format=torch.contiguous_format)
    dummy = torch.zeros(2, 3, size, size)
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated but exact and dependency-free
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (dummy,), str(path), input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}},
                          opset_version=opset, dynamo=False, external_data=False)
    return fold_pads(path)


def fold_pads(path: str | Path) -> Path:
    """Merge every zero Pad (height/width only) that feeds a single Conv into that Conv's own, possibly
    uneven, pads; constants are folded first (ONNX Runtime, basic level: standard ONNX ops only).

    EfficientNet-Lite's TF-SAME convs export as Pad + Conv. In an int8 model each Pad then runs in
    float between a Dequantize and a Quantize: two thirds of the inference time before this fold.
    """
    import tempfile
    from collections import defaultdict

    import onnx
    from onnx import helper, numpy_helper

    from ..model.classifier import runtime

    ort = runtime()

    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.optimized_model_filepath = str(Path(tmp) / "folded.onnx")
        opts.log_severity_level = 3
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        model = onnx.load(opts.optimized_model_filepath)
    g = model.graph
    consts = {i.name: i for i in g.initializer}
    outputs = {o.name for o in g.output}
    users = defaultdict(list)
    for n in g.node:
        for name in n.input:
            users[name].append(n)
    merged = []
    for n in g.node:
        if n.op_type != "Pad" or n.input[1] not in consts or (len(n.input) > 2 and n.input[2]):
            continue
        mode = next((a.s for a in n.attribute if a.name == "mode"), b"constant")
        pads = numpy_helper.to_array(consts[n.input[1]])  # N, C, H, W begins, then ends
        after = users[n.output[0]]
        if mode != b"constant" or len(pads) != 8 or pads[[0, 1, 4, 5]].any() or (pads < 0).any() \
                or len(after) != 1 or after[0].op_type != "Conv" or n.output[0] in outputs:
            continue
        conv = after[0]
        if any(a.name == "auto_pad" and a.s not in (b"", b"NOTSET") for a in conv.attribute):
            continue
        old = next((a for a in conv.attribute if a.name == "pads"), None)
        new = [int(v) for v in pads[[2, 3, 6, 7]]]  # H, W begins, then ends — the Conv's order
        if old is not None:
            new = [a + b for a, b in zip(old.ints, new)]
            conv.attribute.remove(old)
        conv.attribute.append(helper.make_attribute("pads", new))
        conv.input[0] = n.input[0]
        merged.append(n)
    for n in merged:
        g.node.remove(n)
    used = {name for n in g.node for name in n.input}
    for init in [i for i in g.initializer if i.name not in used]:
        g.initializer.remove(init)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def store_fp16(path: str | Path, min_size: int = 256) -> Path:
    """Store the file's large float32 weights as float16, each behind a Cast back to float32.

    Halves the file; ONNX Runtime folds the Casts when it loads the model, so inference still runs
    in float32 (on weights rounded to float16 — `parity` measures what that costs).
    """
    import onnx
    from onnx import helper, numpy_helper

    path = Path(path)
    model = onnx.load(str(path))
    g = model.graph
    casts, keep = [], []
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.size >= min_size:
            keep.append(numpy_helper.from_array(arr.astype(np.float16), init.name + "_fp16"))
            casts.append(helper.make_node("Cast", [init.name + "_fp16"], [init.name], to=onnx.TensorProto.FLOAT))
        else:
            keep.append(init)
    del g.initializer[:]
    g.initializer.extend(keep)
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def quantize_int8(src: str | Path, dst: str | Path, calib: np.ndarray, batch: int = 16) -> Path:
    """Static int8 quantisation (QDQ, per-channel weights) of an ONNX file, calibrated on `calib`
    (float32 NCHW inputs, e.g. 128 training images), the nodes reading the input left in float32
    (`first_layers`). About 2× faster on CPU, a quarter of the size."""
    import tempfile

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.i = 0

        def get_next(self):
            if self.i >= len(calib):
                return None
            self.i += batch
            return {"image": np.ascontiguousarray(calib[self.i - batch:self.i], np.float32)}

    dst = Path(dst)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre))
        quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=first_layers(pre))
    return dst


def first_layers(path: str | Path) -> list[str]:
    """Names of the nodes that read the model's input. Kept in float32 by quantize_int8: in int8 the
    stem convolution alone cost some fine-tuned models 10 points of held-out agreement with float32."""
    import onnx

    g = onnx.load(str(path)).graph
    inputs = {i.name for i in g.input}
    return [n.name for n in g.node if inputs & set(n.input)]


def onnx_logits(path: str | Path, x: np.ndarray, batch: int = 64, threads: int = 2) -> np.ndarray:
    """The ONNX file's outputs for inputs x (float32 NCHW), in batches."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i:i + batch]})[0] for i in range(0, len(x), batch)])


def parity(model: nn.Module, path: str | Path, x: np.ndarray) -> float:
    """Max |torch − onnxruntime| over the logits of batch x."""
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(x)).numpy()
    return float(np.abs(ref - onnx_logits(path, x, batch=len(x))).max())


def write_assets(onnx_path: str | Path, meta: dict, dest: str | Path) -> Path:
    """model.onnx + labels.json into dest (e.g. the package's model/assets). Both are written whole beside
    the old ones first, then renamed over them one after the other, so a stop while writing (the long part)
    leaves the old pair; only the instant between the two renames could pair a new model with old labels."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    labels, model = dest / "labels.json.part", dest / "model.onnx.part"
    try:
        labels.write_text(json.dumps(meta, indent=1) + "\n")
        if Path(onnx_path).resolve() != (dest / "model.onnx").resolve():
            shutil.copyfile(onnx_path, model)
            os.replace(model, dest / "model.onnx")
        os.replace(labels, dest / "labels.json")
    except BaseException:  # a full disk or a stop: no part-files left beside the model
        labels.unlink(missing_ok=True)
        model.unlink(missing_ok=True)
        raise
    return dest
