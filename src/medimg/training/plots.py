"""Confusion matrix and reliability diagram as PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_png(conf: list[list[int]], labels: list[str], path: str | Path, title: str) -> Path:
    plt = _plt()
    c = np.asarray(conf, float)
    rows = c / np.maximum(c.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7.5, 6.5), dpi=110)
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if c[i, j]:
                ax.text(j, i, int(c[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if rows[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (row-normalised colour, counts in cells)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def reliability_png(table: list[dict], ece: float, path: str | Path, title: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=110)
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
    mids = [(r["lo"] + r["hi"]) / 2 for r in table]
    ax.bar(mids, [r["accuracy"] for r in table], width=1 / 15 * 0.9, alpha=0.7, label="accuracy")
    ax.plot([r["confidence"] for r in table], [r["accuracy"] for r in table], "o-", color="C3", ms=3,
            label="mean confidence → accuracy")
    for m, r in zip(mids, table):
        ax.text(m, 0.02, str(r["n"]), ha="center", fontsize=6, rotation=90)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence of predicted label")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title}\nECE = {ece:.4f}", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def report_files(rep: dict, docs: str | Path, model: dict | None = None) -> None:
    """The confusion matrix and reliability diagram of a held-out report, and its tables for the model card
    (heldout.md, headed by the model's data and seed when `model`, its labels.json, is given), into `docs`."""
    from .card import tables

    docs = Path(docs)
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "heldout.md").write_text(tables(rep, model), encoding="utf-8")
    confusion_png(rep["confusion"], rep["labels"], docs / "confusion_matrix.png",
                  f"source-held-out confusion ({len(rep['folds'])} folds, n={rep['n']})")
    reliability_png(rep["reliability"], rep["ece"], docs / "reliability.png",
                    "source-held-out reliability (temperature-scaled, cross-fitted)")
