"""Export a trained torch model to one self-contained ONNX file and check it against torch."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn


def to_onnx(model: nn.Module, path: str | Path, size: int, opset: int = 17) -> Path:
    """Dynamic batch/height/width, float32 NCHW input `image`, output `logits`; weights inside the file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().to(memory_format=torch.contiguous_format)
    dummy = torch.zeros(2, 3, size, size)
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated but exact and dependency-free
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (dummy,), str(path), input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}},
                          opset_version=opset, dynamo=False, external_data=False)
    return path


def parity(model: nn.Module, path: str | Path, x: np.ndarray) -> float:
    """Max |torch − onnxruntime| over the logits of batch x."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(x)).numpy()
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    return float(np.abs(ref - got).max())


def write_assets(onnx_path: str | Path, meta: dict, dest: str | Path) -> Path:
    """model.onnx + labels.json into dest (e.g. the package's model/assets)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if Path(onnx_path).resolve() != (dest / "model.onnx").resolve():
        shutil.copyfile(onnx_path, dest / "model.onnx")
    (dest / "labels.json").write_text(json.dumps(meta, indent=1) + "\n")
    return dest
