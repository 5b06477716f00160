"""Pool source-held-out predictions, calibrate, export the final model and write its assets and report."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np

from .calibrate import choose_threshold, fit_temperature, softmax
from .evaluate import metrics


def pooled_heldout(run_dirs: list[str | Path]) -> dict:
    """Concatenate heldout.npz of several fold runs (out-of-fold predictions, each from a model that never saw the source)."""
    parts = [np.load(Path(d) / "heldout.npz") for d in run_dirs]
    labels = [str(v) for v in parts[0]["labels"]]
    for p in parts[1:]:
        if [str(v) for v in p["labels"]] != labels:
            raise ValueError("fold runs disagree on the label set")
    cat = {k: np.concatenate([p[k] for p in parts]) for k in ("logits", "y", "source", "path")}
    cat["fold"] = np.concatenate([np.full(len(p["y"]), i) for i, p in enumerate(parts)])
    cat["labels"] = labels
    return cat


def heldout_report(run_dirs: list[str | Path], medical: set[str], fit=fit_temperature) -> dict:
    """Temperature, threshold and metrics from the pooled held-out folds.

    The reported ECE is cross-fitted: each fold's probabilities use a temperature fitted on the other
    folds only, so the calibration number is not fitted on the data it is measured on.
    """
    h = pooled_heldout(run_dirs)
    labels, y, logits, fold = h["labels"], h["y"], h["logits"], h["fold"]
    probs = np.zeros_like(logits, dtype=np.float64)
    fold_t = []
    for f in np.unique(fold):
        m = fold == f
        t = fit(logits[~m], y[~m]) if (~m).any() else fit(logits[m], y[m])
        fold_t.append(t)
        probs[m] = softmax(logits[m], t)
    temperature = fit(logits, y)
    mask = np.array([lb in medical for lb in labels])
    threshold, thr_info = choose_threshold(probs[:, mask].sum(1), mask[y])
    rep = metrics(probs, y, labels, medical, threshold, sources=[str(s) for s in h["source"]],
                  names=[str(p) for p in h["path"]])
    raw = metrics(softmax(logits, 1.0), y, labels, medical, threshold)
    rep.update(temperature=temperature, fold_temperatures=fold_t, threshold_choice=thr_info,
               ece_uncalibrated=raw["ece"], folds=[str(d) for d in run_dirs])
    return rep


def ship(final_dir: str | Path, cv_dirs: list[str | Path], dest: str | Path, docs: str | Path | None = None,
         name: str = "medimg-r8xs", version: str | None = None, fp16: bool = False, fit=fit_temperature,
         log=print) -> dict:
    """Export final_dir's model to dest/model.onnx with a labels.json calibrated on cv_dirs.

    `fit` chooses the temperature from held-out logits (NLL or, under source shift, ECE: see calibrate).
    With `fp16` the file stores its weights as float16 (see export.store_fp16); parity is checked on
    the float32 export (≤ 1e-4) and the float16 file's difference is measured and recorded.
    """
    import shutil

    from .export import parity, store_fp16, to_onnx, write_assets
    from .plots import report_pngs
    from .train import load_model

    model, meta = load_model(final_dir)
    medical = set(meta["medical_labels"])
    rep = heldout_report(cv_dirs, medical, fit=fit) if cv_dirs else None
    if rep and rep["labels"] != meta["labels"]:
        raise ValueError("held-out runs and the final model disagree on labels")
    dest = Path(dest)
    onnx_path = to_onnx(model, Path(final_dir) / "model.onnx", meta["input_size"])
    x = np.random.default_rng(0).standard_normal((8, 3, meta["input_size"], meta["input_size"])).astype(np.float32)
    diff = parity(model, onnx_path, x)
    if diff > 1e-4:
        raise RuntimeError(f"ONNX differs from torch by {diff}")
    diff16 = None
    if fp16:
        half = shutil.copyfile(onnx_path, Path(final_dir) / "model-fp16.onnx")
        store_fp16(half)
        diff16 = parity(model, half, x)
        onnx_path = half
    summary = {}
    if rep:
        summary = {k: rep[k] for k in ("n", "binary_accuracy", "label_accuracy", "modality_macro_f1", "ece",
                                       "ece_uncalibrated", "worst_source", "worst_source_binary")}
    labels_json = {
        "name": name,
        "version": version or dt.datetime.now(dt.timezone.utc).strftime("%Y.%m.%d-%H%M"),
        "labels": meta["labels"],
        "medical_labels": meta["medical_labels"],
        "input_size": meta["input_size"],
        "temperature": round(rep["temperature"], 4) if rep else 1.0,
        "threshold": rep["threshold"] if rep else 0.8,
        "mean": meta["mean"], "std": meta["std"],
        "arch": meta["arch"],
        "input": "float32 NCHW RGB, squashed to input_size × input_size (medimg.model.preprocess.prepare)",
        "onnx_parity_max_abs_diff": diff,
        "weights": "float16 (float32 compute)" if fp16 else "float32",
        "fp16_max_abs_diff": diff16,
        "trained_on": meta["train_sources"],
        "train_config": meta["config"],
        "train_seconds": meta["train_seconds"],
        "source_heldout": summary,
    }
    write_assets(onnx_path, labels_json, dest)
    log(f"shipped {dest / 'model.onnx'} ({(dest / 'model.onnx').stat().st_size / 1e6:.2f} MB), parity {diff:.2e}"
        + (f", float16 weights {diff16:.2e}" if fp16 else ""))
    if rep:
        (Path(final_dir) / "heldout_report.json").write_text(json.dumps(rep, indent=1))
        if docs:
            report_pngs(rep, docs)
    return {"labels": labels_json, "report": rep}
