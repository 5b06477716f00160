"""Speed of the shipped model on this machine: batched ONNX inference vs decode+resize in the same run.

    .venv/bin/python benchmarks/bench_model.py [--model DIR] [--threads 2] [--batch 64] [--n 512]

Prints images/s for (1) decode + resize alone (the baseline), (2) model inference on
prepared batches, (3) both, and the ratio of (2) to (1); also decoding alone, and the preparation of decoded images
alone (resize, normalise, channels first; on 64 of them). Inputs are real JPEG/PNG files of mixed
sizes made here (photos from the corpus re-encoded when ../shared/data exists, else synthetic).
"""

from __future__ import annotations

import argparse
import io
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from medimg.model import Classifier
from timing import timed
from medimg.model.preprocess import prepare

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def make_inputs(n: int, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    files = sorted(DATA.glob("*/*/*.webp")) if DATA.is_dir() else []
    out = []
    for i in range(n):
        if files:
            img = Image.open(files[int(rng.integers(len(files)))]).convert("RGB")
        else:
            img = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
        side = int(rng.choice([256, 512, 1024]))
        img = img.resize((side, int(side * rng.uniform(0.6, 1.0))))
        buf = io.BytesIO()
        img.save(buf, "JPEG" if i % 3 else "PNG", quality=85)
        out.append(buf.getvalue())
    return out


def rate(fn, n: int, repeat: int = 3) -> float:
    return n / timed(fn, repeat)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--n", type=int, default=512)
    a = ap.parse_args()
    clf = Classifier.load(a.model, threads=a.threads)
    size = clf.input_size
    blobs = make_inputs(a.n)

    def decode_resize() -> np.ndarray:  # the baseline every model pays: decode + resize to its input size
        return np.stack([prepare(Image.open(io.BytesIO(b)), size) for b in blobs])

    def decode_prepare() -> np.ndarray:  # the model's own preprocessing (the backbone's adds a JPEG round trip)
        return np.stack([clf.prepare(Image.open(io.BytesIO(b))) for b in blobs])

    def decode_alone() -> None:
        for b in blobs:
            Image.open(io.BytesIO(b)).load()

    decoded = [Image.open(io.BytesIO(b)) for b in blobs[:64]]  # 64 kept decoded (all of them could take a GB)
    for im in decoded:
        im.load()

    def prepare_alone() -> list:  # resize, normalise, channels first: what the model's input costs past decoding
        return [clf.prepare(im) for im in decoded]

    x = decode_prepare()
    clf.probabilities_from_array(x[: a.batch])  # warm-up

    def infer() -> None:
        for i in range(0, len(x), a.batch):
            clf.probabilities_from_array(x[i:i + a.batch])

    def both() -> None:
        xx = decode_prepare()
        for i in range(0, len(xx), a.batch):
            clf.probabilities_from_array(xx[i:i + a.batch])

    r_base, r_model, r_both = rate(decode_resize, a.n), rate(infer, a.n), rate(both, a.n, 2)
    r_decode, r_prepare = rate(decode_alone, a.n), rate(prepare_alone, len(decoded))
    res = {"input_size": size, "batch": a.batch, "threads": a.threads, "n": a.n, "cpus": os.cpu_count(),
           "model_mb": round(clf.path.stat().st_size / 1e6, 2),
           "kind": clf.kind, "decode_resize_img_s": round(r_base, 1), "model_img_s": round(r_model, 1),
           "end_to_end_img_s": round(r_both, 1), "model_vs_decode_ratio": round(r_model / r_base, 2),
           "end_to_end_vs_decode_ratio": round(r_both / r_base, 3),
           "decode_alone_img_s": round(r_decode, 1), "prepare_alone_img_s": round(r_prepare, 1),
           "load_average": os.getloadavg()[0]}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
