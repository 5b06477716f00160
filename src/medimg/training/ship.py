"""Pool source-held-out predictions, calibrate, export the final model and write its assets and report."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path

import numpy as np

from .calibrate import choose_threshold, fit_temperature, softmax
from .evaluate import ece, metrics

INT8_MIN_AGREEMENT = 0.98  # below this share of labels agreeing with torch, shipping int8 warns
UNFITTED_THRESHOLD = 0.8  # the verdict's threshold of a model trained with no source held out (--no-cv)


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
    # pooled ECE can hide folds that err in opposite directions (one under-, one over-confident)
    rep["ece_per_fold"] = [round(ece(probs[fold == f], y[fold == f])[0], 4) for f in np.unique(fold)]
    rep.update(temperature=temperature, fold_temperatures=fold_t, threshold_choice=thr_info,
               ece_uncalibrated=raw["ece"], folds=[str(d) for d in run_dirs])
    return rep


def _inputs(x: np.ndarray) -> np.ndarray:
    """Cached uint8 NHWC images → the float32 NCHW inputs the ONNX model takes."""
    from ..model.preprocess import normalize

    return np.ascontiguousarray(normalize(x).transpose(0, 3, 1, 2))


def calibration_images(corpus, x: np.ndarray, idx: np.ndarray, n: int = 128, seed: int = 0) -> np.ndarray:
    """n prepared inputs from `idx`, as many per label as possible (for int8 calibration)."""
    rng = np.random.default_rng(seed)
    labs = corpus.y[idx]
    per = -(-n // len(np.unique(labs)))
    pick = np.concatenate([rng.permutation(idx[labs == lb])[:per] for lb in np.unique(labs)])[:n]
    return _inputs(x[pick])


def corpus_of(cfg: dict, memo: dict) -> tuple:
    """(corpus, cached images) of a run's training config; runs sharing a corpus read it once via `memo`."""
    from .dataset import load, scan

    key = (cfg["data"], cfg["per_source"], cfg["seed"], cfg["size"], cfg["cache"])
    if key not in memo:
        corpus = scan(cfg["data"], per_source=cfg["per_source"] or None, seed=cfg["seed"])
        corpus, x, _ = load(corpus, cfg["size"], cfg["cache"] or None, log=lambda *_: None)
        memo[key] = (corpus, x)
    return memo[key]


def quantized_heldout(cv_dirs: list[Path], memo: dict, log=print) -> list[Path]:
    """Quantise every fold model (calibrated on its own training sources only) and predict its held-out
    images again, so the reported numbers are those of int8 models. Returns the folders of heldout.npz."""
    from .dataset import CorpusError, source_folds
    from .export import onnx_logits, quantize_int8, to_onnx
    from .train import load_model

    out = []
    for d in map(Path, cv_dirs):
        model, meta = load_model(d)
        cfg = meta["config"]
        corpus, x = corpus_of(cfg, memo)
        fold = source_folds(corpus, cfg["folds"], cfg["seed"])
        tr, va = np.flatnonzero(fold != cfg["holdout"]), np.flatnonzero(fold == cfg["holdout"])
        ref = np.load(d / "heldout.npz")
        if [corpus.paths[i] for i in va] != [str(p) for p in ref["path"]]:  # else scores paired with other files
            raise CorpusError(f"the corpus changed while it trained: {d.name} held out other files than it now "
                              "would; run the same command again (models of other files are trained again)")
        q = d / "int8"
        q.mkdir(exist_ok=True)
        to_onnx(model, q / "fp32.onnx", cfg["size"])
        quantize_int8(q / "fp32.onnx", q / "model.onnx", calibration_images(corpus, x, tr, seed=cfg["seed"]))
        lg = onnx_logits(q / "model.onnx", _inputs(x[va]))
        log(f"  {d.name}: int8 agrees with float32 on {np.mean(lg.argmax(1) == ref['logits'].argmax(1)):.3f} of held-out labels")
        np.savez(q / "heldout.npz", logits=lg, y=ref["y"], source=ref["source"], path=ref["path"], labels=ref["labels"])
        out.append(q)
    return out


def clear_assets(folder: Path) -> None:
    """Empty a run folder's own `assets/` of the model a previous run shipped there: this run ships anew, maybe
    elsewhere (--ship), and an older model must not sit in it looking like this run's. Other files stay."""
    for name in ("labels.json", "model.onnx", "head.npz"):  # labels first: no folder with labels and no model
        (folder / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty (the user's files), or not there
        folder.rmdir()


def ship(final_dir: str | Path, cv_dirs: list[str | Path], dest: str | Path, docs: str | Path | None = None,
         name: str = "medimg-r8xs", version: str | None = None, weights: str = "fp32", fit=fit_temperature,
         log=print) -> dict:
    """Export final_dir's model to dest/model.onnx with a labels.json calibrated on cv_dirs.

    `fit` chooses the temperature from held-out logits (NLL or, under source shift, ECE: see calibrate).
    `weights`: fp32; fp16 (weights stored as float16, computed in float32: half the file); int8 (static
    quantisation: faster; the fold models are quantised too, so the held-out report is of int8 models).
    Parity with torch is checked on the float32 export (≤ 1e-4); the stored file's difference from
    torch is measured and recorded.
    """
    import shutil

    from .export import onnx_logits, parity, quantize_int8, store_fp16, to_onnx, write_assets
    from .plots import report_files
    from .train import load_model

    if weights not in ("fp32", "fp16", "int8"):
        raise ValueError("weights must be fp32, fp16 or int8")
    model, meta = load_model(final_dir)
    clear_assets(Path(final_dir) / "assets")  # written again below when dest is that folder
    medical = set(meta["medical_labels"])
    memo: dict = {}  # the corpus, read once for the fold models and the final one
    held = quantized_heldout(list(map(Path, cv_dirs)), memo, log) if weights == "int8" and cv_dirs else cv_dirs
    rep = heldout_report(held, medical, fit=fit) if cv_dirs else None
    if rep and rep["labels"] != meta["labels"]:
        raise ValueError("held-out runs and the final model disagree on labels")
    dest = Path(dest)
    size = meta["input_size"]
    onnx_path = to_onnx(model, Path(final_dir) / "model.onnx", size)
    x = np.random.default_rng(0).standard_normal((8, 3, size, size)).astype(np.float32)
    diff = parity(model, onnx_path, x)
    if diff > 1e-4:
        raise RuntimeError(f"ONNX differs from torch by {diff}")
    stored = {"weights": weights}
    if weights == "fp16":
        onnx_path = store_fp16(shutil.copyfile(onnx_path, Path(final_dir) / "model-fp16.onnx"))
        stored["fp16_max_abs_diff"] = parity(model, onnx_path, x)
    elif weights == "int8":
        import torch

        cfg = meta["config"]
        corpus, imgs = corpus_of(cfg, memo)
        calib = calibration_images(corpus, imgs, np.arange(len(imgs)), seed=cfg["seed"])
        check = calibration_images(corpus, imgs, np.arange(len(imgs)), n=256, seed=cfg["seed"] + 1)
        onnx_path = quantize_int8(onnx_path, Path(final_dir) / "model-int8.onnx", calib)
        with torch.no_grad():
            ref = model.eval()(torch.from_numpy(check)).numpy()
        got = onnx_logits(onnx_path, check)
        stored["int8_label_agreement"] = float(np.mean(got.argmax(1) == ref.argmax(1)))
        stored["int8_max_abs_diff"] = float(np.abs(got - ref).max())
        if stored["int8_label_agreement"] < INT8_MIN_AGREEMENT:
            log(f"WARNING: the int8 file agrees with torch on only {stored['int8_label_agreement']:.1%} of "
                f"{len(check)} check images (shipped anyway); consider --weights fp16")
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
        "threshold": rep["threshold"] if rep else UNFITTED_THRESHOLD,
        "mean": meta["mean"], "std": meta["std"],
        "arch": meta["arch"],
        "input": "float32 NCHW RGB, squashed to input_size × input_size (medimg.model.preprocess.prepare)",
        "onnx_parity_max_abs_diff": diff,
        **stored,
        "trained_on": meta["train_sources"],
        "train_config": meta["config"],
        "train_seconds": meta["train_seconds"],
        "source_heldout": summary,
    }
    write_assets(onnx_path, labels_json, dest)
    log(f"shipped {dest / 'model.onnx'} ({(dest / 'model.onnx').stat().st_size / 1e6:.2f} MB, {weights}), "
        f"float32 parity {diff:.2e}; {stored}")
    if rep:
        (Path(final_dir) / "heldout_report.json").write_text(json.dumps(rep, indent=1))
        if docs:
            report_files(rep, docs, labels_json)
    else:  # an earlier run's report in this folder (with folds) is not this model's
        (Path(final_dir) / "heldout_report.json").unlink(missing_ok=True)
    return {"labels": labels_json, "report": rep}
