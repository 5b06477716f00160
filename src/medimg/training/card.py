"""Markdown tables for MODEL_CARD.md from a held-out report (numbers never typed by hand)."""

from __future__ import annotations

import json
from pathlib import Path


def tables(report: dict, model: dict | None = None) -> str:
    """The held-out metrics, per label and per source, as the card's Markdown tables; first, given the model's
    labels.json, which model, data and seed they are of (`about`)."""
    r = report
    lines = [*([about(model), ""] if model else []),
        f"| metric (source-held-out, {len(r['folds'])} folds, n = {r['n']}) | value |",
        "|---|---|",
        f"| binary accuracy (medical vs non-medical, p_medical ≥ 0.5) | {r['binary_accuracy']:.4f} |",
        f"| label accuracy ({len(r['labels'])}-way) | {r['label_accuracy']:.4f} |",
        f"| modality macro-F1 (all labels) | {r['modality_macro_f1']:.4f} |",
        f"| expected calibration error (15 bins, cross-fitted temperature) | {r['ece']:.4f} |",
        f"| ECE before temperature scaling | {r['ece_uncalibrated']:.4f} |",
        *([f"| ECE within each held-out fold (cross-fitted) | {' / '.join(f'{v:.3f}' for v in r['ece_per_fold'])} |"]
          if "ece_per_fold" in r else []),
        f"| temperature (fitted on all held-out logits, shipped) | {r['temperature']:.3f} |",
        f"| default threshold (chosen on held-out) | {r['threshold']} |",
        f"| at that threshold: decided / uncertain / accuracy of decided | {r['verdicts']['decided']} / "
        f"{r['verdicts']['uncertain']} / {_or_none(r['verdicts']['decided_accuracy'])} |",
        f"| worst source (label accuracy) | {r['worst_source']['source']}: {r['worst_source']['label_accuracy']:.3f} "
        f"(binary {r['worst_source']['binary_accuracy']:.3f}) |",
        f"| worst source (binary accuracy) | {r['worst_source_binary']['source']}: "
        f"{r['worst_source_binary']['binary_accuracy']:.3f} |",
        "",
        "| label | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for lb in r["labels"]:
        m = r["per_label"][lb]
        lines.append(f"| {lb} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")
    lines += ["", "| held-out source | n | label accuracy | binary accuracy |", "|---|---|---|---|"]
    for s, m in r["per_source"].items():
        lines.append(f"| {s} | {m['n']} | {m['label_accuracy']:.3f} | {m['binary_accuracy']:.3f} |")
    return "\n".join(lines) + "\n"


def _or_none(v) -> str:
    """A share, or "none" where there was nothing to count (no image decided at the threshold)."""
    return "none" if v is None else str(v)


def about(lab: dict) -> str:
    """One line naming the run a held-out report is of, from the labels.json `ship` writes: the model, the
    data it was trained on, the seed and the budget."""
    cfg, files = lab.get("train_config", {}), lab.get("trained_on", {})
    cap = f", at most {cfg['per_source']} a source" if cfg.get("per_source") else ""
    budget = (f", {cfg['epochs']} epoch{'s' * (cfg['epochs'] != 1)} of {cfg['samples_per_epoch']} draws"
              if "epochs" in cfg else "")
    kind = ", ".join([str(lab.get("arch") or lab.get("kind")), f"{lab.get('input_size')} px",
                      *([f"{lab['weights']} weights"] if "weights" in lab else [])])
    return (f"Model {lab.get('name')} {lab.get('version')} ({kind}), seed {cfg.get('seed')}: trained on {cfg.get('data')} "
            f"({_count(sum(files.values()), 'file')} from {_sources(files)}{cap}; "
            f"labels {', '.join(lab.get('labels', []))})"
            f"{budget}. The numbers below are of fold models, each scored on the sources it never saw.")


def _sources(files: dict[str, int]) -> str:
    """How many sources the files are from, as the folds count them: `ct/hosp-a` and `xray/hosp-a` are one."""
    from .dataset import source_name

    n = len({source_name(s) for s in files})
    return _count(n, "source") + (f" in {len(files)} label/source folders" if n != len(files) else "")


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' * (n != 1)}"


if __name__ == "__main__":  # python -m medimg.training.card runs/final/heldout_report.json [its labels.json]
    import sys

    if len(sys.argv) < 2:
        sys.exit("usage: python -m medimg.training.card RUN/final/heldout_report.json [its labels.json]")
    model = json.loads(Path(sys.argv[2]).read_text()) if len(sys.argv) > 2 else None
    print(tables(json.loads(Path(sys.argv[1]).read_text()), model), end="")
