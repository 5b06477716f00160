"""Train the classifier from scratch on `<label>/<source>/<file>`, optionally holding out one source fold."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ..model.preprocess import MEAN, STD
from .augment import augment, icon, page
from .dataset import Corpus, checked_folds, default_cache, fingerprint, load, scan, source_folds, source_names
from .net import LITE, build


@dataclass
class Config:
    data: str = "../shared/data"
    out: str = "runs/model"
    arch: str = "r8xs"
    size: int = 128
    epochs: int = 20
    samples_per_epoch: int = 6000
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    seed: int = 20261123
    folds: int = 3
    holdout: int = -1  # fold held out for validation; -1 trains on everything
    threads: int = 1
    workers: int = 1
    cache: str = field(default_factory=lambda: default_cache())
    per_source: int = 0  # cap files per source (tiny runs and tests)
    source_power: float = 0.5  # source weight within a label ∝ n_files ** power
    low_size: int = 96  # progressive resizing: early epochs at this size (cheaper), the rest at `size`
    low_frac: float = 0.6  # fraction of epochs at low_size (0 = always `size`)
    eval_every: int = 1  # epochs between held-out evaluations (the last epoch is always evaluated)
    lp_init: bool = False  # LP-FT: fit the classifier on frozen pretrained features before fine-tuning
    lp_views: int = 2  # augmented views per image (besides the clean one) for that linear probe
    lp_l2: float = 0.1  # its L2 penalty (on standardised features)
    freeze_bn: bool = False  # keep BatchNorm running statistics at their pretrained values while fine-tuning
    min_crop: float = 0.45  # random crops keep at least this fraction of the image area
    average_from: float = 1.0  # average the weights of every step from this fraction of training on (1 = off)
    mix_style: float = 0.0  # probability per batch of MixStyle in the early stages (EfficientNet only; 0 = off)
    icons: float = 0.0  # fraction of fine-tuning draws replaced by made-up icons/emoji (augment.icon) ...
    icon_label: str = "graphic"  # ... labelled this (none are drawn, with a note, if the corpus lacks it)
    pages: float = 0.0  # fraction of draws replaced by figure pages/screenshots (augment.page), same label
    binary_weight: float = 0.0  # weight of an extra medical-vs-not loss on p_medical (sum over medical labels)
    distill: float = 0.0  # weight of keeping the ImageNet predictions of the features (LwF; EfficientNet only)
    distill_t: float = 2.0  # softmax temperature of that loss
    mixup: float = 0.0  # α of Mixup: each batch blended with itself shuffled, λ ~ Beta(α, α) (0 = off)


# Settings a checkpoint made under other values still resumes with. Only torch's thread count changes the weights
# (the order of its float sums: the same --seed and --threads give the same model, other --threads another).
NOT_WEIGHTS = {"out", "workers", "cache", "threads", "eval_every"}


def same_run(saved: dict, cfg: Config) -> bool:
    """Whether a checkpoint's config trains the same model as cfg.

    Fields added to Config since the checkpoint was written count at their defaults, fields since removed are
    ignored, and the corpus folder compares by its resolved path.
    """
    now = asdict(cfg)
    old = asdict(Config()) | {k: v for k, v in saved.items() if k in now}
    for conf in (now, old):
        conf["data"] = os.path.realpath(conf["data"])
    return all(old[k] == now[k] for k in now if k not in NOT_WEIGHTS)


def sample_weights(corpus: Corpus, idx: np.ndarray, power: float) -> np.ndarray:
    """Each label equally likely; within a label, source s ∝ n_s**power; uniform within a source."""
    src = np.array(corpus.source)[idx]
    lab = corpus.y[idx]
    w = np.zeros(len(idx))
    for lb in np.unique(lab):
        m = lab == lb
        names, counts = np.unique(src[m], return_counts=True)
        share = counts.astype(float) ** power
        share /= share.sum()
        for s, n, sh in zip(names, counts, share):
            w[m & (src == s)] = sh / n
    return w / w.sum()


class Views(Dataset):
    """Augmented views of cached uint8 images, as normalised float CHW tensors."""

    def __init__(self, x: np.ndarray, y: np.ndarray, order: np.ndarray, seed: int, train: bool = True,
                 size: int | None = None, min_crop: float = Config.min_crop, icon_y: int = -1,
                 pool: np.ndarray | None = None):
        self.x, self.y, self.order, self.seed, self.train, self.size = x, y, order, seed, train, size
        self.min_crop, self.icon_y = min_crop, icon_y  # order entries of -1 are made-up icons of class icon_y,
        self.pool = pool  # of -2 pages around 1–4 images drawn from pool, also of class icon_y
        self.mean = np.asarray(MEAN, np.float32) * 255
        self.std = np.asarray(STD, np.float32) * 255

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, k: int):
        i = int(self.order[k])
        if i >= 0:
            arr = self.x[i]
        elif i == -1:
            arr = icon(np.random.default_rng([self.seed, k, 1]), self.x.shape[1])
        else:
            rng = np.random.default_rng([self.seed, k, 2])
            figs = self.x[rng.choice(self.pool, int(rng.choice([1, 1, 1, 2, 3, 4])))]
            arr = page([augment(f, rng, self.min_crop) for f in figs], rng, self.x.shape[1])
        if self.train:
            arr = augment(arr, np.random.default_rng([self.seed, k]), self.min_crop)
        if self.size and self.size != arr.shape[0]:
            arr = np.asarray(Image.fromarray(arr).resize((self.size, self.size), Image.BILINEAR))
        t = (arr.astype(np.float32) - self.mean) / self.std
        return torch.from_numpy(t.transpose(2, 0, 1).copy()), int(self.y[i] if i >= 0 else self.icon_y)


def _to_tensor(x: np.ndarray) -> torch.Tensor:
    t = (x.astype(np.float32) - np.asarray(MEAN, np.float32) * 255) / (np.asarray(STD, np.float32) * 255)
    return torch.from_numpy(t).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def logits_of(model: nn.Module, x: np.ndarray, batch: int = 64) -> np.ndarray:
    model.eval()
    out = [model(_to_tensor(x[i:i + batch])).numpy() for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


@torch.no_grad()
def linear_probe(model: nn.Module, x: np.ndarray, corpus: Corpus, idx: np.ndarray, cfg: Config, log=print) -> None:
    """Set model._fc to a balanced logistic regression on the frozen network's pooled features.

    Fine-tuning then starts from a head that already fits, so the early large gradients of a random
    head do not distort the pretrained features (LP-FT, Kumar et al. 2022).
    """
    from .backbone_head import balanced_weights, fit_head

    if not hasattr(model, "features"):
        raise ValueError(f"{cfg.arch} has no pretrained features to probe (use lp_init with effl0/effl1/effl2)")
    model.eval()
    views = cfg.lp_views + 1
    feats = []
    for v in range(views):
        arrs = x[idx] if v == 0 else np.stack(
            [augment(x[i], np.random.default_rng([cfg.seed, 7, v, int(i)]), cfg.min_crop) for i in idx])
        feats.append(np.concatenate([model.features(_to_tensor(arrs[i:i + 64])).numpy()
                                     for i in range(0, len(arrs), 64)]))
    w = balanced_weights(corpus.y[idx], np.array(corpus.source)[idx])
    head = fit_head(np.concatenate(feats), np.tile(corpus.y[idx], views), np.tile(w, views), len(corpus.labels),
                    l2=cfg.lp_l2)
    W = torch.tensor(head.W / head.sd[:, None], dtype=torch.float32)  # fold the standardisation in
    model._fc.weight.copy_(W.T)
    model._fc.bias.copy_(torch.tensor(head.b - (head.mu / head.sd) @ head.W, dtype=torch.float32))
    log(f"linear probe on {len(idx)} images × {views} views")


def train(cfg: Config, log=print) -> dict:
    """Train one model; returns a summary. Writes checkpoint.pt, model.pt, heldout.npz (if holdout) to cfg.out."""
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = scan(cfg.data, per_source=cfg.per_source or None, seed=cfg.seed, log=log)
    corpus, x, wh = load(corpus, cfg.size, cfg.cache or None, log=log)
    files = fingerprint(corpus)
    # every fold checked, not just this one: found before the first fold trains, not after
    folds_of = checked_folds if cfg.holdout >= 0 else source_folds
    fold = folds_of(corpus, cfg.folds, cfg.seed)
    tr = np.flatnonzero(fold != cfg.holdout) if cfg.holdout >= 0 else np.arange(len(x))
    va = np.flatnonzero(fold == cfg.holdout) if cfg.holdout >= 0 else np.zeros(0, np.int64)
    held = sorted({corpus.source[i] for i in va})
    log(f"{len(corpus.paths)} files, {len(corpus.labels)} labels, {len(source_names(corpus))} sources; "
        f"train {len(tr)}, held out {len(va)} from {len(held)} sources")
    w = sample_weights(corpus, tr, cfg.source_power)
    icon_y = corpus.labels.index(cfg.icon_label) if (cfg.icons or cfg.pages) and cfg.icon_label in corpus.labels else -1
    if (cfg.icons or cfg.pages) and icon_y < 0:
        log(f"no made-up icons or pages: this corpus has no '{cfg.icon_label}' label")
    model = build(cfg.arch, len(corpus.labels)).to(memory_format=torch.channels_last)
    if cfg.mix_style:
        if not hasattr(model, "mix_style"):
            raise ValueError(f"mix_style needs an EfficientNet arch, not {cfg.arch}")
        model.mix_style = cfg.mix_style
    med = np.array([corpus.medical[lb] for lb in corpus.labels])
    teacher = _imagenet_teacher(cfg.arch) if cfg.distill else None

    def held_out_scores(rec: dict) -> np.ndarray:
        lg = logits_of(model, x[va])
        pred = lg.argmax(1)
        rec["val_acc"] = float((pred == corpus.y[va]).mean())
        rec["val_binary_acc"] = float((med[pred] == med[corpus.y[va]]).mean())
        return lg

    ck = out / "checkpoint.pt"
    state = _checkpoint(ck, log)
    if state is not None and not same_run(state["config"], cfg):
        log(f"{ck} was made with other settings: starting again")
        state = None
    elif state is not None and state.get("files", files) != files:
        log(f"{ck} was made from other files (added, removed or changed since): starting again")
        state = None
    elif state is not None and state.get("heldout", held if len(source_names(corpus)) == len(corpus.sources)
                                         else None) != held:  # one made before a source's folders went together
        log(f"{ck} was made holding out other sources: starting again")
        state = None
    history: list[dict] = []
    lg = None
    if cfg.lp_init and state is None:  # a resumed run restores the fine-tuned weights instead
        linear_probe(model, x, corpus, tr, cfg, log)
        if len(va):
            rec = {"epoch": 0, "stage": "linear probe"}
            lg = held_out_scores(rec)
            history.append(rec)
            log(json.dumps(rec))
            torch.save({"model": model.state_dict()}, out / "lp_model.pt")
            np.savez(out / "heldout_lp.npz", logits=lg, y=corpus.y[va], source=np.array(corpus.source)[va],
                     path=np.array(corpus.paths)[va], labels=np.array(corpus.labels))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, cfg.samples_per_epoch // cfg.batch_size)  # a tiny run still trains
    if steps_per_epoch * cfg.batch_size != cfg.samples_per_epoch:  # whole batches only: said, not silent
        batches = f"{steps_per_epoch} batch{'es' * (steps_per_epoch > 1)}"
        log(f"{cfg.samples_per_epoch} draws an epoch are {batches} of {cfg.batch_size} "
            f"({steps_per_epoch * cfg.batch_size} draws)")
    total = steps_per_epoch * cfg.epochs
    warm = min(steps_per_epoch, total // 5)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    is_med = torch.tensor(med)
    start = 0
    avg_start = int(cfg.average_from * total) if cfg.average_from < 1 else total + 1
    avg, n_avg = None, 0  # running mean of the weights from step avg_start on
    if state is not None:
        model.load_state_dict(state["model"]), opt.load_state_dict(state["opt"]), sched.load_state_dict(state["sched"])
        start, history = state["epoch"], state["history"]
        if "torch_rng" in state:  # dropout and the loader's workers draw from it: resumed runs end as whole ones
            torch.set_rng_state(state["torch_rng"])
        avg, n_avg = state.get("average"), state.get("n_average", 0)
        log(f"resumed from epoch {start}")
    for epoch in range(start, cfg.epochs):
        model.train()
        if cfg.freeze_bn:
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        rng = np.random.default_rng([cfg.seed, epoch])
        order = tr[rng.choice(len(tr), steps_per_epoch * cfg.batch_size, p=w)]
        if icon_y >= 0:
            order[rng.random(len(order)) < cfg.icons] = -1
            if cfg.pages:
                order[rng.random(len(order)) < cfg.pages] = -2
        # early epochs smaller, never larger: a run at --size 32 would draw them at 96 px, blown up from its cache
        size = min(cfg.low_size, cfg.size) if epoch < int(cfg.low_frac * cfg.epochs) else cfg.size
        views = Views(x, corpus.y, order, cfg.seed * 1000 + epoch, size=size, min_crop=cfg.min_crop, icon_y=icon_y,
                      pool=tr)
        dl = DataLoader(views, batch_size=cfg.batch_size,
                        num_workers=cfg.workers, persistent_workers=False, drop_last=True)
        te, seen, loss_sum, correct = time.time(), 0, 0.0, 0
        for step, (xb, yb) in enumerate(dl):
            xb = xb.contiguous(memory_format=torch.channels_last)
            if cfg.mixup:
                xb, yb2, lam = mix_batch(xb, yb, cfg.mixup, rng)
                logits = model(xb)
                loss = lam * loss_fn(logits, yb) + (1 - lam) * loss_fn(logits, yb2)
            elif teacher is None:
                logits = model(xb)
                loss = loss_fn(logits, yb)
            else:
                feats = model.features(xb)
                logits = model._fc(model._dropout(feats))
                loss = loss_fn(logits, yb) + cfg.distill * _distill_loss(feats, xb, teacher, cfg.distill_t)
            if cfg.binary_weight:
                loss = loss + cfg.binary_weight * binary_loss(logits, is_med, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if epoch * steps_per_epoch + step + 1 >= avg_start:
                avg, n_avg = _accumulate(avg, n_avg, model)
            seen += len(yb)
            loss_sum += loss.item() * len(yb)
            correct += int((logits.argmax(1) == yb).sum())
            if (step + 1) % max(1, steps_per_epoch // 4) == 0:
                el = time.time() - te
                log(f"epoch {epoch + 1}/{cfg.epochs} step {step + 1}/{steps_per_epoch} loss {loss_sum / seen:.3f} "
                    f"acc {correct / seen:.3f} {seen / el:.0f} img/s at {size} px")
        rec = {"epoch": epoch + 1, "loss": loss_sum / max(1, seen), "train_acc": correct / max(1, seen),
               "seconds": time.time() - te}
        if len(va) and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs):
            lg = held_out_scores(rec)
        history.append(rec)
        log(json.dumps(rec))
        _save({"config": asdict(cfg), "model": model.state_dict(), "opt": opt.state_dict(),
               "sched": sched.state_dict(), "epoch": epoch + 1, "history": history,
               "average": avg, "n_average": n_avg, "files": files, "heldout": held,
               "torch_rng": torch.get_rng_state()}, ck)
    if avg is not None:  # the averaged weights are the model
        model.load_state_dict(avg)
        if len(va):
            rec = {"epoch": cfg.epochs, "stage": f"mean of the last {n_avg} steps' weights"}
            lg = held_out_scores(rec)
            if history[-1].get("stage") != rec["stage"]:  # not again when a finished run resumes
                history.append(rec)
            log(json.dumps(rec))
    meta = {"labels": corpus.labels, "medical_labels": [lb for lb in corpus.labels if corpus.medical[lb]],
            "arch": cfg.arch, "input_size": cfg.size, "mean": list(MEAN), "std": list(STD),
            "config": asdict(cfg), "history": history, "train_sources": _part(corpus, tr).summary(),
            "heldout_sources": held, "train_seconds": round(time.time() - t0, 1)}
    _save({"model": model.state_dict(), "meta": meta}, out / "model.pt")
    if len(va):
        if lg is None or history[-1]["epoch"] != cfg.epochs:
            lg = logits_of(model, x[va])
        np.savez(out / "heldout.npz", logits=lg, y=corpus.y[va],
                 source=np.array(corpus.source)[va], path=np.array(corpus.paths)[va], labels=np.array(corpus.labels))
    (out / "train_meta.json").write_text(json.dumps(meta, indent=1))
    log(f"done in {time.time() - t0:.0f} s")
    return meta


def _part(corpus: Corpus, idx: np.ndarray) -> Corpus:
    """The files of `idx` only (a fold model's training files, not its held-out ones)."""
    return Corpus(corpus.root, [corpus.paths[i] for i in idx], corpus.labels, corpus.y[idx],
                  [corpus.source[i] for i in idx], corpus.medical)


def _save(obj: dict, path: Path) -> None:
    """torch.save to a temporary file, then renamed: a stop while saving leaves the previous file whole. A full
    disk is an OSError (ENOSPC), not torch's RuntimeError, and its part-file is deleted, not left filling it; so is
    a stop (Ctrl-C, SIGTERM's SystemExit) that came while torch wrote: the run ends as that stop."""
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "wb") as f:  # a Python file: torch's own writer loses the OSError
            torch.save(obj, f)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, RuntimeError) and isinstance(exc.__context__, (OSError, KeyboardInterrupt, SystemExit)):
            raise exc.__context__ from None  # a write torch saw fail, or a stop raised in one
        raise
    os.replace(tmp, path)


def _checkpoint(path: Path, log) -> dict | None:
    """The run's checkpoint, or None: none yet, or one that cannot be read (cut off by a crash, a full disk,
    or saved by an older version: set aside as `.broken`, and the run starts again)."""
    path.with_name(path.name + ".part").unlink(missing_ok=True)  # a save a stop cut short
    if not path.exists():
        return None
    try:
        state = torch.load(path, weights_only=True)  # tensors and plain data only: no code runs
        if not isinstance(state, dict) or "config" not in state:
            raise ValueError("not a training checkpoint")
        return state
    except MemoryError:  # not the file's fault: a long run is not thrown away for it
        raise
    except Exception as exc:  # an unreadable file: the run can always start again
        os.replace(path, path.with_name(path.name + ".broken"))
        log(f"{path} cannot be read ({type(exc).__name__}), set aside as {path.name}.broken: starting again")
        return None


def mix_batch(xb: torch.Tensor, yb: torch.Tensor, alpha: float, rng: np.random.Generator):
    """Mixup: the batch blended with a shuffled copy of itself. Returns the images, the copy's labels, λ."""
    lam = float(rng.beta(alpha, alpha))
    perm = torch.from_numpy(rng.permutation(len(yb)))
    return lam * xb + (1 - lam) * xb[perm], yb[perm], lam


def binary_loss(logits: torch.Tensor, is_med: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of medical vs non-medical, where p_medical is the softmax mass on the medical labels."""
    logp = torch.log_softmax(logits, 1)
    two = torch.stack([torch.logsumexp(logp[:, ~is_med], 1), torch.logsumexp(logp[:, is_med], 1)], 1)
    return nn.functional.nll_loss(two, is_med[y].long())


def _imagenet_teacher(arch: str) -> nn.Module:
    """The frozen ImageNet network; its classifier also reads the student's features."""
    from .effnet import imagenet_model

    if arch not in LITE:
        raise ValueError(f"distill needs an ImageNet-initialised EfficientNet arch, not {arch}")
    teacher = imagenet_model(LITE[arch]).to(memory_format=torch.channels_last)
    return teacher.requires_grad_(False)


def _distill_loss(feats: torch.Tensor, xb: torch.Tensor, teacher: nn.Module, t: float) -> torch.Tensor:
    """Learning without Forgetting (Li & Hoiem 2016): the fine-tuned features, read by the ImageNet classifier,
    should still give the ImageNet network's own soft predictions on the same view."""
    with torch.no_grad():
        target = torch.softmax(teacher(xb) / t, 1)
    logp = torch.log_softmax(teacher._fc(feats) / t, 1)
    return nn.functional.kl_div(logp, target, reduction="batchmean") * t * t


def _accumulate(avg: dict | None, n: int, model: nn.Module) -> tuple[dict, int]:
    """Add the model's current float weights to a running mean (integer buffers: the latest)."""
    cur = model.state_dict()
    if avg is None:
        return {k: v.detach().clone() for k, v in cur.items()}, 1
    for k, v in cur.items():
        if v.is_floating_point():
            avg[k].add_(v.detach() - avg[k], alpha=1 / (n + 1))
        else:
            avg[k].copy_(v)
    return avg, n + 1


def load_model(run_dir: str | Path) -> tuple[nn.Module, dict]:
    state = torch.load(Path(run_dir) / "model.pt", weights_only=True)
    meta = state["meta"]
    model = build(meta["arch"], len(meta["labels"]), pretrained=False)
    model.load_state_dict(state["model"])
    return model.eval(), meta
