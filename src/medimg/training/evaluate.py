"""Metrics for labelled predictions: binary accuracy, per-label P/R/F1, macro-F1, ECE, confusion."""

from __future__ import annotations

import os
import unicodedata

import numpy as np


def ece(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> tuple[float, list[dict]]:
    """Expected calibration error of the top-label confidence, equal-width bins."""
    conf = probs.max(1)
    hit = probs.argmax(1) == y
    edges = np.linspace(0, 1, bins + 1)
    total, table = 0.0, []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.sum() / len(y) * abs(hit[m].mean() - conf[m].mean())
            table.append({"lo": float(lo), "hi": float(hi), "n": int(m.sum()),
                          "accuracy": float(hit[m].mean()), "confidence": float(conf[m].mean())})
    return float(total), table


def metrics(probs: np.ndarray, y: np.ndarray, labels: list[str], medical: set[str],
            threshold: float = 0.5, sources: list[str] | None = None, names: list[str] | None = None,
            max_errors: int = 200) -> dict:
    """All metrics for calibrated probs (n, len(labels)) against true label indices y.

    Macro-F1 averages over the labels present in y; binary accuracy decides medical by p_medical ≥ 0.5;
    verdict counts use the given threshold (uncertain in between).
    """
    from ..model.classifier import verdict_for

    n = len(y)
    k = len(labels)
    pred = probs.argmax(1) if n else np.zeros(0, int)
    mask = np.array([lb in medical for lb in labels])
    p_med = probs[:, mask].sum(1) if n else np.zeros(0)
    true_med = mask[y] if n else np.zeros(0, bool)
    conf = np.zeros((k, k), int)
    np.add.at(conf, (y, pred), 1)
    per, f1 = {}, {}
    for i, lb in enumerate(labels):
        tp, fp, fn = conf[i, i], conf[:, i].sum() - conf[i, i], conf[i, :].sum() - conf[i, i]
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        f1[lb] = float(2 * p * r / (p + r)) if p + r else 0.0
        per[lb] = {"precision": round(float(p), 4), "recall": round(float(r), 4), "f1": round(f1[lb], 4),
                   "support": int(conf[i].sum())}
    present = [lb for lb in labels if per[lb]["support"] > 0]
    verdicts = [verdict_for(float(v), threshold) for v in p_med]
    dec = np.array([v != "uncertain" for v in verdicts], bool)
    ver_ok = np.array([(v == "medical") == t for v, t in zip(verdicts, true_med)], bool)
    e, table = ece(probs, y) if n else (0.0, [])
    out = {
        "n": int(n),
        "binary_accuracy": round(float(((p_med >= 0.5) == true_med).mean()), 4) if n else None,
        "label_accuracy": round(float((pred == y).mean()), 4) if n else None,
        "modality_macro_f1": round(float(np.mean([f1[lb] for lb in present])), 4) if present else None,
        "ece": round(e, 4) if n else None,
        "threshold": threshold,
        "verdicts": {"decided": int(dec.sum()), "uncertain": int((~dec).sum()),
                     "decided_accuracy": round(float(ver_ok[dec].mean()), 4) if dec.any() else None},
        "per_label": per,
        "labels": labels,
        "confusion": conf.tolist(),
        "reliability": table,
    }
    if sources is not None:
        src = np.array(sources)
        per_src = {}
        for s in sorted(set(sources)):
            m = src == s
            per_src[s] = {"n": int(m.sum()), "label_accuracy": round(float((pred[m] == y[m]).mean()), 4),
                          "binary_accuracy": round(float(((p_med[m] >= 0.5) == true_med[m]).mean()), 4)}
        out["per_source"] = per_src
        worst = min(per_src, key=lambda s: (per_src[s]["label_accuracy"], per_src[s]["binary_accuracy"]))
        out["worst_source"] = {"source": worst, **per_src[worst]}
        worst_b = min(per_src, key=lambda s: (per_src[s]["binary_accuracy"], per_src[s]["label_accuracy"]))
        out["worst_source_binary"] = {"source": worst_b, **per_src[worst_b]}
    errs = []
    for i in np.flatnonzero(pred != y)[:max_errors]:
        errs.append({"item": names[i] if names is not None else int(i), "true": labels[y[i]],
                     "predicted": labels[pred[i]], "confidence": round(float(probs[i, pred[i]]), 4),
                     "p_medical": round(float(p_med[i]), 4)})
    out["errors"] = errs
    out["n_errors"] = int((pred != y).sum())
    return out


def evaluate_dir(root, classifier=None, threshold: float | None = None, batch_size: int = 32, limits=None,
                 progress=None, workers: int | None = None, per_image: bool = False) -> dict:
    """Classify every image under root/<label>/… through the pipeline; label = first folder under root.

    DICOM files, PDFs, zips inside count as the images they contain. Read errors are listed, not scored, and
    so are the files `train` leaves out (the shipped exclude list and the folder's own exclude.csv).
    Nothing is fetched unless `limits` says so: the remote images of a saved page are read errors.
    `per_image` adds `predictions`, one row per image scored (`prediction_rows`).
    """
    from pathlib import Path

    from ..pipeline import classify, default_classifier
    from ..sources import Limits
    from .dataset import OWN_GROUPS, corpus_excluded, corpus_groups, settings_files

    root = Path(root)
    if limits is None:  # score the files in the folder, not what they link to on the web
        limits = Limits(offline=True)
    clf = classifier or default_classifier()
    t = clf.threshold if threshold is None else threshold
    labels = list(clf.labels)
    groups = corpus_groups(root)
    medical = set(clf.medical_labels)
    known = {_key(lb): lb for lb in [*labels, *groups]}
    folders, twins = _read_once(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not folders:
        raise ValueError(f"{root} has no <label>/ folders{_itself_a_label(root, known, folders)}")
    label_of = {d: known.get(_key(d.name), d.name) for d in folders}  # CT/, MRI/, Xray/ as ct, mri, xray
    for d in folders:
        name = label_of[d]
        if name not in labels:
            if name not in groups:
                raise ValueError(f"folder {d.name!r} is not a label; the folders under {root} must be named "
                                 f"after labels: {', '.join(sorted(clf.labels))} (or a label listed in "
                                 f"{root / OWN_GROUPS}, rows label,group){_itself_a_label(root, known, folders)}")
            labels.append(name)  # scored as always wrong: the model cannot predict it
            if groups[name]:
                medical.add(name)
    left_out = corpus_excluded(root)  # as train leaves them out: mislabelled files (path,reason)
    excluded: dict[str, str] = {}

    def leave_out(origin: str) -> bool:
        rel = os.path.relpath(origin, root).replace(os.sep, "/")
        if rel in left_out:
            excluded[rel] = left_out[rel]
            return True
        return False

    rows, ys, names, sources = [], [], [], []
    failures, skipped = _dead_links(root), twins  # the entries no run reads, so none goes missing unseen
    folder_of = {str(d): d for d in folders}  # each record's input as given (`source`) is its label folder
    once = _Once(folders)
    # one run over every label folder, so its threads are never idle between two
    for rec in classify(list(folder_of), classifier=clf, limits=limits, batch_size=batch_size, threshold=t,
                        skip=leave_out if left_out else None, workers=workers):
        if progress:
            progress(rec)
        where = f"{rec.input} [{rec.locator}]" if rec.locator else rec.input
        again = once.again(rec, folder_of[rec.source])
        if again:  # a file reached through a link too: scored once, where it lies
            skipped.append({"item": where, "why": again})
            continue
        if rec.skipped:  # not images (a readme), decorations, a header's data file: listed, not scored
            skipped.append({"item": where, "why": rec.error.removeprefix("skipped: ")})  # listed as skipped already
            continue
        if rec.error is not None:
            failures.append({"item": where, "error": rec.error})
            continue
        d = folder_of[rec.source]
        rows.append([rec.probs.get(lb, 0.0) for lb in labels])
        ys.append(labels.index(label_of[d]))
        names.append(where)
        sources.append(_source_of(rec.input, d, label_of[d]))
    probs = np.array(rows, np.float64).reshape(-1, len(labels))
    out = metrics(probs, np.array(ys, np.int64), labels, medical, t, sources=sources if rows else None, names=names)
    present = sorted({labels[i] for i in ys})
    out["labels_present"] = present
    out["labels_unknown_to_model"] = [lb for lb in present if lb not in clf.labels]  # scored as always wrong
    out["read_errors"] = failures
    out["skipped"] = skipped
    # files beside the label folders have no label: not scored, but counted so none goes missing unseen
    own = settings_files(root)  # the corpus's settings: not data
    out["unlabelled_files"] = sorted(p.name for p in root.iterdir()
                                     if p.is_file() and not p.name.startswith(".") and p.name not in own)
    out["excluded"] = [{"item": k, "why": v} for k, v in sorted(excluded.items())]
    out["model"] = clf.info()
    if per_image:
        out["predictions"] = prediction_rows(probs, ys, labels, medical, t, names, sources, clf.release)
    return out


def prediction_rows(probs: np.ndarray, ys: list[int], labels: list[str], medical: set[str], threshold: float,
                    names: list[str], sources: list[str], model: str | None = None) -> list[dict]:
    """One row per image scored, the numbers `metrics` counts: its true and predicted label, the confidence,
    p_medical and the verdict at the threshold, and every label's probability; then, as classify's rows
    (`output.stamp_fields`), the `model` (its name and release) and the `threshold` the verdict was made at."""
    from ..model.classifier import verdict_for

    mask = np.array([lb in medical for lb in labels])
    rows = []
    for i, (p, y) in enumerate(zip(probs, ys)):
        k, p_med = int(p.argmax()), float(p[mask].sum())
        rows.append({"item": names[i], "source": sources[i], "true": labels[y], "predicted": labels[k],
                     "correct": k == y, "confidence": round(float(p[k]), 6), "p_medical": round(p_med, 6),
                     "verdict": verdict_for(p_med, threshold),
                     **{f"prob_{lb}": round(float(v), 6) for lb, v in zip(labels, p)},
                     "model": model, "threshold": float(threshold)})
    return rows


def _read_once(found) -> tuple[list, list[dict]]:
    """The label folders, each real folder once (CT/ a link to ct/ is not scored twice), real ones before
    links; and a skipped note for each link to a folder read already."""
    folders, notes, seen = [], [], {}
    for d in sorted(found, key=lambda d: (d.is_symlink(), d.name)):
        real = os.path.realpath(d)
        if real in seen:
            notes.append({"item": str(d), "why": f"link to the folder {seen[real].name} read already; not read again"})
        else:
            seen[real] = d
            folders.append(d)
    return sorted(folders), notes


class _Once:
    """Each image once, though links below the label folders reach a file twice (ct/s1 a link to xray/s1, or
    to a folder of the same label): an image reached through a link into another label folder is scored
    there, where it lies; a second way to one image is passed over, with a note either way."""

    def __init__(self, folders):
        self.real = {d: os.path.realpath(d) + os.sep for d in folders}
        self.seen: dict[tuple[str, str], str] = {}

    def again(self, rec, folder) -> str:
        real = _real(rec.input)
        if real is None:
            return ""
        home = max((d for d, r in self.real.items() if real.startswith(r)), key=lambda d: len(self.real[d]),
                   default=None)  # the innermost, should one label folder be a link into another
        if home is not None and home != folder:
            return f"a link into {home.name}/; scored there"
        key = (real, rec.locator)
        if key in self.seen:
            return f"the same file as {self.seen[key]}; scored once"
        self.seen[key] = rec.input
        return ""


def _real(name: str) -> str | None:
    """The real path of a record's file, with an archive member's part kept (a.zip:x/1.png), or None."""
    from ..sources.files import archive_member

    if os.path.lexists(name):
        return os.path.realpath(name)
    member = archive_member(name)
    return f"{os.path.realpath(member[0])}:{member[1]}" if member else None


def _dead_links(root) -> list[dict]:
    """Links beside the label folders that lead nowhere (a label folder on a drive not mounted), as read
    errors: they are neither folders nor files, so would go unseen."""
    return [{"item": str(p), "error": f"link to {os.readlink(p)}, which does not exist"}
            for p in sorted(root.iterdir()) if p.is_symlink() and not p.exists() and not p.name.startswith(".")]


def _itself_a_label(root, known: dict[str, str], folders) -> str:
    """A hint when the folder given is a label folder itself (xray/ rather than the folder holding it): it is
    named after a label, and none of the folders in it is."""
    label = known.get(_key(root.resolve().name))
    if label is None or any(_key(d.name) in known for d in folders):
        return ""
    parent = root.resolve().parent
    return f"; {root} is itself named after the label {label}: evaluate the folder that holds it ({parent})"


def _key(name: str) -> str:
    """A folder's name as it is matched to a label: in any case, and in Unicode's composed form (a folder copied from
    a Mac spells `Röntgen` decomposed)."""
    return unicodedata.normalize("NFC", name).lower()


def _source_of(name: str, label_dir, label: str) -> str:
    """label/source, the first folder under the label folder (as the corpus lays sources out), named by its
    label (CT/covid is ct/covid); the label alone for a file right in the label folder."""
    first = os.path.relpath(name, label_dir).replace(os.sep, "/").split("/")[0]
    return f"{label}/{first}" if first != ".." and (label_dir / first).is_dir() else label
