"""Temperature scaling and the default verdict threshold, both chosen on source-held-out predictions."""

from __future__ import annotations

import inspect

import numpy as np


def softmax(logits: np.ndarray, t: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / t
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, y: np.ndarray, t: float) -> float:
    p = softmax(logits, t)
    return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1)).mean())


def fit_temperature(logits: np.ndarray, y: np.ndarray, lo: float = 0.05, hi: float = 20.0) -> float:
    """T minimising held-out NLL (golden-section search on log T; NLL is unimodal in log T)."""
    if len(y) == 0:
        return 1.0
    a, b = np.log(lo), np.log(hi)
    g = (np.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    for _ in range(60):
        if nll(logits, y, np.exp(c)) < nll(logits, y, np.exp(d)):
            b, d = d, c
            c = b - g * (b - a)
        else:
            a, c = c, d
            d = a + g * (b - a)
    return float(np.exp((a + b) / 2))


def choose_threshold(p_medical: np.ndarray, is_medical: np.ndarray, uncertain_cost: float = 0.3,
                     grid: np.ndarray | None = None) -> tuple[float, dict]:
    """Threshold t ∈ [0.5, 0.99] minimising errors + uncertain_cost × abstentions (verdict rule of verdict_for)."""
    grid = np.round(np.arange(0.5, 0.991, 0.01), 2) if grid is None else grid
    best, table = None, []
    for t in grid:
        med = p_medical >= t
        non = p_medical + t <= 1  # as verdict_for decides
        unc = ~(med | non)
        err = (med & ~is_medical) | (non & is_medical)
        cost = err.sum() + uncertain_cost * unc.sum()
        row = {"threshold": float(t), "errors": int(err.sum()), "uncertain": int(unc.sum()), "cost": float(cost)}
        table.append(row)
        if best is None or cost < best["cost"] - 1e-9:
            best = row
    return best["threshold"], {"chosen": best, "uncertain_cost": uncertain_cost, "n": int(len(p_medical))}


def fit_temperature_ece(logits: np.ndarray, y: np.ndarray, lo: float = 0.25, hi: float = 4.0) -> float:
    """T minimising the held-out expected calibration error (grid on log T).

    Under source shift a few confidently wrong images (an unseen source) dominate the NLL and push
    its optimal T up until everything else is underconfident; ECE weighs every image alike.
    """
    from .evaluate import ece

    if len(y) == 0:
        return 1.0
    grid = np.exp(np.linspace(np.log(lo), np.log(hi), 121))
    return float(min(grid, key=lambda t: ece(softmax(logits, t), y)[0]))


def at_bound(t: float, fit) -> bool:
    """Whether a temperature `fit` chose sits at the edge of its search range: the held-out predictions
    then say little about calibration (e.g. every held-out label unseen in its fold's training)."""
    params = inspect.signature(fit).parameters
    lo, hi = params["lo"].default, params["hi"].default
    return t <= lo * 1.02 or t >= hi / 1.02
