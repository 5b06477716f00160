"""The corpus `<label>/<source>/<file>`: scan it, split it by source, and cache it decoded as uint8."""

from __future__ import annotations

import csv
import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..model.preprocess import resize_rgb

HERE = Path(__file__).parent
GROUPS_CSV = HERE / "label_groups.csv"
EXCLUDE_CSV = HERE / "exclude.csv"
IMAGE_EXT = {".webp", ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff"}


def label_groups(path: Path = GROUPS_CSV) -> dict[str, bool]:
    """label → is medical, from the label config (a new corpus label needs a row there)."""
    with open(path, newline="", encoding="utf-8") as f:
        return {r["label"]: r["group"].strip() == "medical" for r in csv.DictReader(f)}


def excluded(path: Path = EXCLUDE_CSV) -> dict[str, str]:
    if not path.exists():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {r["path"]: r["reason"] for r in csv.DictReader(f)}


@dataclass
class Corpus:
    root: Path
    paths: list[str]  # relative to root
    labels: list[str]  # ordered label set
    y: np.ndarray  # label index per file
    source: list[str]  # "label/source" per file
    medical: dict[str, bool]

    @property
    def sources(self) -> list[str]:
        return sorted(set(self.source))

    def summary(self) -> dict:
        out: dict = {}
        for s in self.source:
            out[s] = out.get(s, 0) + 1
        return dict(sorted(out.items()))


def scan(root: str | Path, exclude: dict[str, str] | None = None, groups: dict[str, bool] | None = None,
         per_source: int | None = None, seed: int = 0) -> Corpus:
    """Every image under root/<label>/<source>/…; labels are the folder names."""
    root = Path(root)
    exclude = excluded() if exclude is None else exclude
    groups = label_groups() if groups is None else groups
    labels = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    unknown = [lb for lb in labels if lb not in groups]
    if unknown:
        raise ValueError(f"labels {unknown} are not in {GROUPS_CSV.name}: add a row saying medical or non-medical")
    if not labels:
        raise ValueError(f"no label folders in {root}")
    rng = np.random.default_rng(seed)
    paths, ys, srcs = [], [], []
    for i, lb in enumerate(labels):
        for src in sorted(d for d in (root / lb).iterdir() if d.is_dir()):
            files = sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_EXT)
            files = [p for p in files if p.relative_to(root).as_posix() not in exclude]
            if per_source and len(files) > per_source:
                files = [files[j] for j in sorted(rng.choice(len(files), per_source, replace=False))]
            for p in files:
                paths.append(p.relative_to(root).as_posix())
                ys.append(i)
                srcs.append(f"{lb}/{src.name}")
    return Corpus(root, paths, labels, np.array(ys, np.int64), srcs, {lb: groups[lb] for lb in labels})


def _load(args: tuple[str, int]) -> tuple[np.ndarray, tuple[int, int]]:
    path, size = args
    with Image.open(path) as im:
        im.load()
        return resize_rgb(im, size), im.size


def load_images(corpus: Corpus, size: int, cache_dir: str | Path | None = None, workers: int = 2,
                log=print) -> tuple[np.ndarray, np.ndarray]:
    """(N, size, size, 3) uint8 pixels exactly as preprocess.prepare sees them, plus original (w, h)."""
    key = hashlib.sha1(json.dumps([str(corpus.root.resolve()), corpus.paths, size]).encode()).hexdigest()[:16]
    cache = Path(cache_dir) / f"corpus-{size}-{key}.npz" if cache_dir else None
    if cache and cache.exists():
        z = np.load(cache)
        return z["x"], z["wh"]
    args = [(str(corpus.root / p), size) for p in corpus.paths]
    x = np.zeros((len(args), size, size, 3), np.uint8)
    wh = np.zeros((len(args), 2), np.int32)
    chunk = max(1, len(args) // 10)
    with ProcessPoolExecutor(workers) as ex:
        for i, (arr, s) in enumerate(ex.map(_load, args, chunksize=64)):
            x[i], wh[i] = arr, s
            if (i + 1) % chunk == 0 or i + 1 == len(args):
                log(f"decoded {i + 1}/{len(args)}")
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, x=x, wh=wh)
        tmp.rename(cache)
    return x, wh


def source_folds(corpus: Corpus, k: int = 3, seed: int = 0) -> np.ndarray:
    """Fold id per file: whole sources go to one fold; each label's sources spread over folds.

    A label with fewer sources than k is absent from the held-out set of some folds, and a label
    with a single source is unseen in training for the fold that holds it out.
    """
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    load = np.zeros(k)
    for lb in corpus.labels:
        srcs = sorted({s for s in corpus.source if s.split("/")[0] == lb})
        sizes = {s: sum(1 for t in corpus.source if t == s) for s in srcs}
        srcs.sort(key=lambda s: -sizes[s])
        order = list(rng.permutation(k))
        lab_load = np.zeros(k)
        for s in srcs:  # largest first, onto the fold with least of this label (ties: least overall)
            f = min(order, key=lambda j: (lab_load[j], load[j]))
            fold_of[s] = int(f)
            lab_load[f] += sizes[s]
            load[f] += sizes[s]
    return np.array([fold_of[s] for s in corpus.source], np.int64)
