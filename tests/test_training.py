"""Training machinery: tiny real training run → ONNX that loads in Classifier; parity; shipped model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch", reason="needs the train extra (torch)")

from medimg.model import Classifier  # noqa: E402
from medimg.training.augment import augment  # noqa: E402
from medimg.training.calibrate import choose_threshold, fit_temperature, fit_temperature_ece, softmax  # noqa: E402
from medimg.training.dataset import Corpus, label_groups, scan, source_folds  # noqa: E402
from medimg.training.export import parity, to_onnx  # noqa: E402
from medimg.training.net import build  # noqa: E402
from medimg.training.train import Config, same_run, sample_weights, train  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ASSETS = Path(__file__).resolve().parents[1] / "src" / "medimg" / "model" / "assets"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"corpus {DATA} absent")


def _corpus_labels() -> list[str]:
    return sorted(d.name for d in DATA.iterdir() if d.is_dir() and not d.name.startswith("."))


@needs_data
def test_tiny_training_exports_a_model_the_classifier_loads(tmp_path):
    from PIL import Image

    from medimg.training.ship import ship

    base = dict(data=str(DATA), epochs=2, samples_per_epoch=64, batch_size=32, per_source=2, cache="",
                workers=0, seed=7)
    train(Config(out=str(tmp_path / "cv0"), holdout=0, **dict(base, epochs=1)), log=lambda *_: None)
    meta = train(Config(out=str(tmp_path / "final"), **base), log=lambda *_: None)
    assert meta["labels"] == _corpus_labels()
    assert len(meta["history"]) == 2 and np.isfinite(meta["history"][-1]["loss"])
    res = ship(tmp_path / "final", [tmp_path / "cv0"], tmp_path / "assets", tmp_path / "docs", log=lambda *_: None)
    assert (tmp_path / "docs" / "confusion_matrix.png").stat().st_size > 1000
    assert (tmp_path / "docs" / "reliability.png").stat().st_size > 1000
    card = (tmp_path / "docs" / "heldout.md").read_text()
    assert f"label accuracy ({len(_corpus_labels())}-way)" in card and "| held-out source |" in card
    lab = json.loads((tmp_path / "assets" / "labels.json").read_text())
    assert lab["labels"] == _corpus_labels() and lab["temperature"] > 0 and 0.5 <= lab["threshold"] < 1
    assert res["labels"]["onnx_parity_max_abs_diff"] <= 1e-4
    assert res["report"]["n"] > 0 and 0 <= res["report"]["binary_accuracy"] <= 1
    clf = Classifier.load(tmp_path / "assets")
    assert clf.labels == _corpus_labels()
    preds = clf.predict([Image.new("RGB", (300, 200), (200, 30, 30)), Image.new("L", (64, 64), 128)])
    assert len(preds) == 2 and all(abs(sum(p.probs.values()) - 1) < 1e-5 for p in preds)
    assert all(p.label in clf.labels and p.verdict in ("medical", "non-medical", "uncertain") for p in preds)


def test_onnx_matches_torch(tmp_path):
    torch.manual_seed(0)
    model = build("r8xs", 11).eval()
    with torch.no_grad():  # non-trivial BN statistics so the check means something
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0), m.weight.uniform_(0.5, 1.5)
    path = to_onnx(model, tmp_path / "m.onnx", 128)
    rng = np.random.default_rng(0)
    assert parity(model, path, rng.standard_normal((6, 3, 128, 128)).astype(np.float32)) <= 1e-4
    assert parity(model, path, rng.standard_normal((2, 3, 96, 160)).astype(np.float32)) <= 1e-4  # dynamic H, W


def test_temperature_recovers_known_scale():
    rng = np.random.default_rng(1)
    true_logits = rng.standard_normal((4000, 5)) * 2.0
    y = np.array([rng.choice(5, p=p) for p in softmax(true_logits)])
    t = fit_temperature(true_logits * 3.0, y)  # logits three times too sharp
    assert 2.6 < t < 3.4


def test_threshold_prefers_abstaining_over_errors():
    p = np.array([0.99, 0.95, 0.7, 0.6, 0.3, 0.02, 0.01])
    truth = np.array([1, 1, 0, 1, 0, 0, 0], bool)
    t, info = choose_threshold(p, truth, uncertain_cost=0.3)
    assert t > 0.7 and info["chosen"]["errors"] == 0


def test_unknown_label_needs_a_group(tmp_path):
    for lb in ("xray", "thermal"):
        (tmp_path / lb / "s1").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / lb / "s1" / "a.png")
    with pytest.raises(ValueError, match=f"thermal.*{tmp_path / 'label_groups.csv'}"):
        scan(tmp_path, exclude={})
    c = scan(tmp_path, exclude={}, groups={**label_groups(), "thermal": True})
    assert c.labels == ["thermal", "xray"] and c.medical["thermal"]
    # a corpus says what its own labels are beside them, not in the installed package
    (tmp_path / "label_groups.csv").write_text("label,group\nthermal,Medical\n")
    c = scan(tmp_path, exclude={})
    assert c.labels == ["thermal", "xray"] and c.medical["thermal"] and c.medical["xray"]
    (tmp_path / "label_groups.csv").write_text("label,group\nthermal,maybe\n")
    with pytest.raises(ValueError, match="thermal.*maybe"):
        scan(tmp_path, exclude={})
    # a file of that name with other columns is the data's own (filename,label): passed over, as before
    (tmp_path / "label_groups.csv").write_text("filename,label\nxray/s1/a.png,xray\n")
    with pytest.raises(ValueError, match="thermal"):
        scan(tmp_path, exclude={})
    (tmp_path / "exclude.csv").write_text("file,why\nxray/s1/a.png,no\n")
    assert scan(tmp_path, groups={**label_groups(), "thermal": True}).paths == ["thermal/s1/a.png", "xray/s1/a.png"]


def test_a_corpus_leaves_out_its_own_files_and_reads_through_linked_folders(tmp_path):
    """exclude.csv beside the label folders; a linked folder inside a source is read (as evaluate reads it), a
    link back up is read once, and a link that leads nowhere is named."""
    for lb, src in (("xray", "s1"), ("photo", "s2")):
        (tmp_path / lb / src).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8)).save(tmp_path / lb / src / f"{i}.png")
    elsewhere = tmp_path.parent / (tmp_path.name + "-more")
    elsewhere.mkdir()
    Image.new("RGB", (8, 8)).save(elsewhere / "more.png")
    (tmp_path / "photo" / "s2" / "linked").symlink_to(elsewhere, target_is_directory=True)
    (tmp_path / "photo" / "s2" / "up").symlink_to(tmp_path / "photo" / "s2", target_is_directory=True)
    (tmp_path / "photo" / "s2" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "exclude.csv").write_text("path,reason\nxray/s1/1.png,a photo of the screen\n")
    said: list[str] = []
    c = scan(tmp_path, log=said.append)
    assert c.paths == ["photo/s2/0.png", "photo/s2/1.png", "photo/s2/linked/more.png", "xray/s1/0.png"]
    assert any("links that lead nowhere are not read: 1 (e.g. gone.png)" in m for m in said), said


@needs_data
def test_folds_hold_out_whole_sources_and_sampling_balances_labels():
    c = scan(DATA, per_source=5)
    fold = source_folds(c, 3, seed=3)
    for s in c.sources:
        assert len({int(f) for f, t in zip(fold, c.source) if t == s}) == 1
    w = sample_weights(c, np.arange(len(c.y)), 0.5)
    per_label = [w[c.y == i].sum() for i in range(len(c.labels))]
    assert np.allclose(per_label, 1 / len(c.labels))


def test_augment_keeps_shape_and_varies():
    rng = np.random.default_rng(0)
    x = (np.indices((128, 128)).sum(0) % 256).astype(np.uint8)[..., None].repeat(3, 2)
    outs = [augment(x, rng) for _ in range(20)]
    assert all(o.shape == x.shape and o.dtype == np.uint8 for o in outs)
    assert sum(not np.array_equal(o, x) for o in outs) >= 15


@pytest.mark.parametrize("name", [None, "fast"])
def test_shipped_models_are_small_and_match_the_corpus(name):
    folder = ASSETS / name if name else ASSETS
    meta = folder / "labels.json"
    assert meta.is_file(), f"no shipped model in {folder}"
    lab = json.loads(meta.read_text())
    model = folder / ("head.npz" if lab.get("kind") == "backbone-head" else "model.onnx")
    assert model.is_file()
    assert model.stat().st_size <= 10 * 1024 * 1024
    groups = label_groups()
    assert set(lab["medical_labels"]) == {lb for lb in lab["labels"] if groups[lb]}
    for key in ("name", "version", "input_size", "temperature", "threshold"):
        assert key in lab
    if DATA.is_dir():
        assert lab["labels"] == _corpus_labels()
    clf = Classifier.load(name)
    assert clf.labels == lab["labels"] and 128 <= clf.input_size <= 224
    if model.suffix == ".onnx":  # int8 with no float Pad between Dequantize and Quantize (3× slower: export.fold_pads)
        import onnx

        ops = {n.op_type for n in onnx.load(str(model)).graph.node}
        assert "Pad" not in ops and (lab.get("weights") != "int8" or "QuantizeLinear" in ops)


def test_heldout_report_gives_each_folds_calibration_error(tmp_path):
    """Two folds, one over- and one under-confident: pooled ECE looks fine, per-fold ECE does not."""
    from medimg.training.ship import heldout_report

    rng = np.random.default_rng(0)
    labels = np.array(["ct", "photo"])
    for f, acc in enumerate((0.6, 1.0)):  # both predict with confidence ~0.8
        y = rng.integers(0, 2, 2000)
        right = rng.random(2000) < acc
        pred = np.where(right, y, 1 - y)
        logits = np.zeros((2000, 2), np.float32)
        logits[np.arange(2000), pred] = np.log(4.0)  # softmax → 0.8 on the predicted label
        (tmp_path / f"cv{f}").mkdir()
        np.savez(tmp_path / f"cv{f}" / "heldout.npz", logits=logits, y=y, source=np.array([f"s{f}"] * 2000),
                 path=np.array([f"{f}/{i}" for i in range(2000)]), labels=labels)
    rep = heldout_report([tmp_path / "cv0", tmp_path / "cv1"], {"ct"}, fit=lambda lg, y: 1.0)
    assert len(rep["ece_per_fold"]) == 2
    assert min(rep["ece_per_fold"]) > 0.15 and rep["ece"] < 0.05


def test_resume_ignores_settings_that_do_not_change_the_weights(tmp_path):
    from dataclasses import asdict, replace

    cfg = Config(data=str(tmp_path / "data"), out="runs/a", lr=1e-4)
    saved = asdict(cfg)
    assert same_run(saved, replace(cfg, out="elsewhere", workers=3, threads=2, cache="", eval_every=5))
    assert same_run(saved, replace(cfg, data=str(tmp_path / "x" / ".." / "data")))  # same folder, other spelling
    assert not same_run(saved, replace(cfg, lr=2e-4))
    assert not same_run(saved, replace(cfg, data=str(tmp_path / "other")))
    # a checkpoint older than a Config field counts that field at its default; a dropped field is ignored
    old = {k: v for k, v in saved.items() if k != "freeze_bn"} | {"retired_option": 1}
    assert same_run(old, cfg)
    assert not same_run(old, replace(cfg, freeze_bn=not Config().freeze_bn))


@needs_data
def test_weight_averaging_ships_the_mean_of_the_last_steps(tmp_path):
    """average_from=0.5: model.pt holds the mean of the second half's weights, checkpoint.pt the last ones;
    a finished run resumed reports the same history."""
    from dataclasses import replace

    from medimg.training import train as T

    seen: list[dict] = []
    real = T._accumulate

    def spy(avg, n, model):
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return real(avg, n, model)

    cfg = Config(data=str(DATA), out=str(tmp_path / "run"), epochs=2, samples_per_epoch=64, batch_size=16,
                 per_source=2, cache="", workers=0, seed=5, holdout=1, average_from=0.5)
    T._accumulate = spy
    try:
        meta = train(cfg, log=lambda *_: None)
    finally:
        T._accumulate = real
    assert len(seen) == 5  # 8 steps: the weights after steps 4 to 8 averaged
    shipped = torch.load(tmp_path / "run" / "model.pt", weights_only=False)["model"]
    last = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["model"]
    key = next(k for k, v in last.items() if v.is_floating_point() and v.ndim == 4)
    assert torch.allclose(shipped[key], torch.stack([s[key] for s in seen]).mean(0), atol=1e-6)
    assert not torch.allclose(shipped[key], last[key])
    assert meta["history"][-1]["stage"] == "mean of the last 5 steps' weights"
    again = train(replace(cfg, threads=2), log=lambda *_: None)
    assert again["history"] == meta["history"]
    held = np.load(tmp_path / "run" / "heldout.npz")  # the held-out logits are the averaged model's
    assert np.isclose((held["logits"].argmax(1) == held["y"]).mean(), meta["history"][-1]["val_acc"])


def test_made_up_icons_vary_and_come_labelled_as_configured():
    from medimg.training.augment import icon
    from medimg.training.train import Views

    a, b = icon(np.random.default_rng(1), 96), icon(np.random.default_rng(2), 96)
    assert a.shape == (96, 96, 3) and a.dtype == np.uint8 and not np.array_equal(a, b)
    assert np.array_equal(a, icon(np.random.default_rng(1), 96))  # seeded: the same draw, the same icon
    x = np.zeros((2, 64, 64, 3), np.uint8)
    views = Views(x, np.array([0, 1]), np.array([1, -1, 0]), seed=5, icon_y=2)
    (_, y1), (t2, y2), (_, y3) = views[0], views[1], views[2]
    assert (y1, y2, y3) == (1, 2, 0)
    assert t2.shape == (3, 64, 64) and float(t2.std()) > 0.05  # an icon, not the blank corpus image


def test_figure_pages_show_corpus_images_small_among_text_and_come_labelled_as_configured():
    from medimg.training.augment import page
    from medimg.training.train import Views

    fig = np.zeros((64, 64, 3), np.uint8)
    fig[..., 0] = fig[..., 2] = 255  # magenta: easy to find on the page
    a = page([fig], np.random.default_rng(1), 96)
    assert a.shape == (96, 96, 3) and a.dtype == np.uint8
    assert np.array_equal(a, page([fig], np.random.default_rng(1), 96))  # seeded
    for k in range(20):
        for n in (1, 3):  # the figures are there, but never most of the page: text, chrome, margins
            pg = page([fig] * n, np.random.default_rng(k), 128).astype(int)
            shown = (pg[..., 0] > 200) & (pg[..., 2] > 200) & (pg[..., 1] < 60)
            assert 0.02 < shown.mean() <= 0.35
    x = np.stack([fig, np.full((64, 64, 3), 128, np.uint8)])
    views = Views(x, np.array([0, 1]), np.array([-2, 1]), seed=5, icon_y=3, pool=np.array([0, 1]))
    (t1, y1), (_, y2) = views[0], views[1]
    assert (y1, y2) == (3, 1) and float(t1.std()) > 0.1


def test_icons_are_left_out_when_the_corpus_lacks_their_label(tmp_path):
    from PIL import Image

    for label, colour in (("xray", (90, 90, 90)), ("photo", (30, 160, 40))):
        (tmp_path / "data" / label / "s1").mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40, 40), colour).save(tmp_path / "data" / label / "s1" / f"{i}.png")
    said: list[str] = []
    meta = train(Config(data=str(tmp_path / "data"), out=str(tmp_path / "run"), icons=0.5, size=32, epochs=1,
                        samples_per_epoch=8, batch_size=4, cache="", workers=0), log=said.append)
    assert "no made-up icons or pages: this corpus has no 'graphic' label" in said
    assert meta["labels"] == ["photo", "xray"] and np.isfinite(meta["history"][-1]["loss"])


def test_fewer_samples_than_a_batch_still_train_a_step(tmp_path):
    """--samples-per-epoch below --batch-size used to run no step at all and ship the untrained network."""
    for label, colour in (("xray", (90, 90, 90)), ("photo", (30, 160, 40))):
        (tmp_path / "data" / label / "s1").mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40, 40), colour).save(tmp_path / "data" / label / "s1" / f"{i}.png")
    said = []
    meta = train(Config(data=str(tmp_path / "data"), out=str(tmp_path / "run"), size=32, epochs=1,
                        samples_per_epoch=4, batch_size=8, cache="", workers=0, icons=0, pages=0),
                 log=said.append)
    assert meta["history"][0]["loss"] > 0 and meta["history"][0]["train_acc"] > 0
    assert "4 draws an epoch are 1 batch of 8 (8 draws)" in said  # rounded to whole batches, and said so


def test_the_corpus_cache_defaults_to_the_users_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert Config().cache == str(tmp_path / "medimg")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Config().cache == str(tmp_path / "home" / ".cache" / "medimg")


def test_binary_loss_is_the_cross_entropy_of_p_medical():
    from medimg.training.train import binary_loss

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 5, generator=g)
    is_med = torch.tensor([True, False, True, False, False])
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    p_med = logits.softmax(1)[:, is_med].sum(1)
    want = -torch.where(is_med[y], p_med, 1 - p_med).log().mean()
    assert torch.allclose(binary_loss(logits, is_med, y), want, atol=1e-6)
    # Moving mass between two medical labels leaves it unchanged; moving it out of the group does not.
    swapped = logits.clone()
    swapped[:, [0, 2]] = swapped[:, [2, 0]]
    assert torch.allclose(binary_loss(swapped, is_med, y), binary_loss(logits, is_med, y), atol=1e-6)
    moved = logits.clone()
    moved[:, 1] += 3
    assert binary_loss(moved, is_med, torch.zeros(6, dtype=torch.long)) > binary_loss(logits, is_med, torch.zeros(6, dtype=torch.long))


def test_training_with_the_binary_loss_adds_it_to_the_label_loss(tmp_path):
    from PIL import Image

    for label, colour in (("xray", (90, 90, 90)), ("ct", (140, 140, 140)), ("photo", (30, 160, 40))):
        (tmp_path / "data" / label / "s1").mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40, 40), colour).save(tmp_path / "data" / label / "s1" / f"{i}.png")
    base = dict(data=str(tmp_path / "data"), size=32, epochs=1, samples_per_epoch=4, batch_size=4, cache="",
                workers=0)  # one step
    plain = train(Config(out=str(tmp_path / "a"), **base), log=lambda *_: None)
    both = train(Config(out=str(tmp_path / "b"), binary_weight=1.0, **base), log=lambda *_: None)
    # Same seed, same draws, same starting weights: the loss differs only by the added binary term (> 0).
    assert both["history"][-1]["loss"] > plain["history"][-1]["loss"]
    assert both["config"]["binary_weight"] == 1.0 and np.isfinite(both["history"][-1]["loss"])


def test_mixup_blends_each_image_with_another_and_trains(tmp_path):
    from PIL import Image

    from medimg.training.train import mix_batch

    x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    y = torch.arange(8)
    mixed, y2, lam = mix_batch(x, y, 0.2, np.random.default_rng(1))
    assert 0 <= lam <= 1 and sorted(y2.tolist()) == y.tolist()
    assert torch.allclose(mixed, lam * x + (1 - lam) * x[y2])  # y == index, so y2 is the permutation
    for label, colour in (("xray", (90, 90, 90)), ("photo", (30, 160, 40))):
        (tmp_path / "data" / label / "s1").mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40, 40), colour).save(tmp_path / "data" / label / "s1" / f"{i}.png")
    base = dict(data=str(tmp_path / "data"), size=32, epochs=1, samples_per_epoch=8, batch_size=4, cache="",
                workers=0, low_frac=0.0)
    plain = train(Config(out=str(tmp_path / "a"), **base), log=lambda *_: None)
    mixed_run = train(Config(out=str(tmp_path / "b"), mixup=0.2, **base), log=lambda *_: None)
    assert mixed_run["config"]["mixup"] == 0.2
    assert mixed_run["history"][-1]["loss"] != plain["history"][-1]["loss"]


def test_shipping_leaves_the_old_pair_or_the_new_one(tmp_path, monkeypatch):
    """A stop while the new model.onnx is copied leaves the shipped model and its labels.json as they were
    (before, the model was replaced first and labels.json after: a stop between paired them wrongly)."""
    from medimg.training import export

    dest = tmp_path / "assets"
    export.write_assets(_file(tmp_path / "old.onnx", b"old model"), {"version": "old"}, dest)

    def copy_half(src, dst):
        Path(dst).write_bytes(b"new mo")
        raise KeyboardInterrupt

    monkeypatch.setattr(export.shutil, "copyfile", copy_half)
    with pytest.raises(KeyboardInterrupt):
        export.write_assets(_file(tmp_path / "new.onnx", b"new model"), {"version": "new"}, dest)
    assert (dest / "model.onnx").read_bytes() == b"old model"
    assert json.loads((dest / "labels.json").read_text()) == {"version": "old"}
    monkeypatch.undo()
    export.write_assets(tmp_path / "new.onnx", {"version": "new"}, dest)
    assert (dest / "model.onnx").read_bytes() == b"new model" and "new" in (dest / "labels.json").read_text()


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _corpus(sizes: dict[str, int]) -> Corpus:
    """A corpus of `sizes` files per "label/source" (nothing is read: source_folds needs only the names)."""
    source = [s for s, n in sizes.items() for _ in range(n)]
    labels = sorted({s.split("/")[0] for s in sizes})
    return Corpus(Path("."), [f"{s}/{i}.png" for i, s in enumerate(source)], labels,
                  np.array([labels.index(s.split("/")[0]) for s in source]), source, {lb: True for lb in labels})


def test_folds_spread_each_labels_sources_even_when_another_label_fills_one_fold():
    """A label with k sources has one in every fold, so every fold's held-out set has it, however the other
    labels' sources weigh on the folds (one big source of another label fills a fold first)."""
    c = _corpus({"ct/big": 30, "ct/small": 2, "mri/a": 3, "mri/b": 3, "mri/c": 3})
    for seed in range(5):
        fold = source_folds(c, 3, seed=seed)
        held = {f: {s for s, g in zip(c.source, fold) if g == f} for f in range(3)}
        assert all(any(s.startswith("mri/") for s in held[f]) for f in range(3)), (seed, held)


def test_folds_place_a_labels_largest_sources_first():
    """Sources go largest first onto the fold with least of their label (greedy LPT), which keeps the folds'
    shares of a label close: 5, 4, 3, 3, 3 files over two folds give 8 and 10, where taking them in name order
    (3, 3, 3, 4, 5) gives 7 and 11."""
    c = _corpus({"ct/a": 3, "ct/b": 3, "ct/c": 3, "ct/d": 4, "ct/e": 5, "mri/x": 1, "mri/y": 1})
    for seed in range(5):
        fold = source_folds(c, 2, seed=seed)
        per_fold = [sum(1 for s, f in zip(c.source, fold) if f == k and s.startswith("ct/")) for k in range(2)]
        assert max(per_fold) <= 10, (seed, per_fold)


def test_heldout_ece_is_cross_fitted_each_fold_at_the_temperature_of_the_others(tmp_path):
    """The reported ECE is measured on probabilities whose temperature was fitted on the other folds only
    (ship.heldout_report's docstring). Fold 0 is over-confident (right 60 % at 0.8), fold 1 under-confident
    (right always at 0.8): pooled, T = 1 fits and the in-sample ECE is near 0; cross-fitted, each fold gets the
    other's temperature and is badly calibrated."""
    from medimg.training.calibrate import fit_temperature, softmax
    from medimg.training.evaluate import ece
    from medimg.training.ship import heldout_report

    rng = np.random.default_rng(0)
    labels = np.array(["ct", "photo"])
    parts = []
    for f, acc in enumerate((0.6, 1.0)):
        y = rng.integers(0, 2, 2000)
        pred = np.where(rng.random(2000) < acc, y, 1 - y)
        logits = np.zeros((2000, 2), np.float32)
        logits[np.arange(2000), pred] = np.log(4.0)
        (tmp_path / f"cv{f}").mkdir()
        np.savez(tmp_path / f"cv{f}" / "heldout.npz", logits=logits, y=y, source=np.array([f"s{f}"] * 2000),
                 path=np.array([f"{f}/{i}" for i in range(2000)]), labels=labels)
        parts.append((logits, y))
    rep = heldout_report([tmp_path / "cv0", tmp_path / "cv1"], {"ct"}, fit=fit_temperature)
    crossed = np.concatenate([softmax(parts[0][0], fit_temperature(*parts[1])), softmax(parts[1][0], fit_temperature(*parts[0]))])
    y_all = np.concatenate([parts[0][1], parts[1][1]])
    assert rep["ece"] == pytest.approx(ece(crossed, y_all)[0], abs=1e-4)
    assert rep["ece"] > 0.15


def test_ece_temperature_recovers_known_scale_both_ways():
    """The ECE fit, like the NLL one, finds the temperature that undoes logits three times too sharp or
    twice too flat (a fit that ignored T would return the grid's first value, 0.25, either way)."""
    rng = np.random.default_rng(1)
    true_logits = rng.standard_normal((4000, 5)) * 2.0
    y = np.array([rng.choice(5, p=p) for p in softmax(true_logits)])
    assert 2.6 < fit_temperature_ece(true_logits * 3.0, y) < 3.4
    assert 0.4 < fit_temperature_ece(true_logits / 2.0, y) < 0.6


def test_a_corpus_with_its_own_exclude_file_still_leaves_out_the_shipped_list(tmp_path):
    """The corpus's own exclude.csv adds to the files the shipped list leaves out; it does not replace it."""
    shipped = "photo/clinic-site-hospital-management-website/assets__img__departments__departments-1.webp"
    src = tmp_path / "photo" / "clinic-site-hospital-management-website"
    src.mkdir(parents=True)
    for name in ("assets__img__departments__departments-1.webp", "keep.png", "mine.png"):
        Image.new("RGB", (8, 8)).save(src / name, "PNG")
    (tmp_path / "exclude.csv").write_text(
        "path,reason\nphoto/clinic-site-hospital-management-website/mine.png,a screenshot\n")
    c = scan(tmp_path)
    assert shipped not in c.paths
    assert c.paths == ["photo/clinic-site-hospital-management-website/keep.png"]


def test_the_threshold_may_be_as_high_as_099():
    """choose_threshold searches t in [0.5, 0.99]: the top of the range is chosen when only it avoids an error."""
    t, info = choose_threshold(np.array([0.995, 0.985]), np.array([True, False]))
    assert t == 0.99 and info["chosen"]["errors"] == 0 and info["chosen"]["uncertain"] == 1


def test_fold_runs_with_other_labels_are_not_pooled(tmp_path):
    """Held-out predictions of fold runs trained on different label sets cannot be pooled: an error, not a
    report whose label indices mean different things."""
    from medimg.training.ship import pooled_heldout

    for f, labels in enumerate((["ct", "photo"], ["photo", "xray"])):
        (tmp_path / f"cv{f}").mkdir()
        np.savez(tmp_path / f"cv{f}" / "heldout.npz", logits=np.zeros((2, 2), np.float32), y=np.array([0, 1]),
                 source=np.array(["s", "s"]), path=np.array(["a", "b"]), labels=np.array(labels))
    with pytest.raises(ValueError, match="disagree on the label set"):
        pooled_heldout([tmp_path / "cv0", tmp_path / "cv1"])


def test_the_threshold_is_chosen_on_the_calibrated_probabilities(tmp_path):
    """The shipped threshold applies to probabilities after the temperature, so it is chosen on those: here
    it falls between the calibrated p_medical of the wrong images (0.755) and the right ones (0.881)."""
    from medimg.training.ship import heldout_report

    labels = np.array(["ct", "photo"])
    # ct right (logit gap +8), photo right (−8), photo wrong (+4.5): raw p_medical .9997 / .0003 / .989
    gaps = np.array([8.0] * 10 + [-8.0] * 10 + [4.5] * 2)
    y = np.array([0] * 10 + [1] * 12)
    for f in range(2):
        logits = np.stack([gaps / 2, -gaps / 2], 1).astype(np.float32)
        (tmp_path / f"cv{f}").mkdir()
        np.savez(tmp_path / f"cv{f}" / "heldout.npz", logits=logits, y=y, source=np.array([f"s{f}"] * len(y)),
                 path=np.array([f"{f}/{i}" for i in range(len(y))]), labels=labels)
    rep = heldout_report([tmp_path / "cv0", tmp_path / "cv1"], {"ct"}, fit=lambda lg, yy: 4.0)
    assert rep["temperature"] == 4.0
    assert 0.755 < rep["threshold"] <= 0.881
    assert rep["threshold_choice"]["chosen"]["errors"] == 0


def test_training_draws_nothing_from_the_held_out_sources(tmp_path, monkeypatch):
    """With a fold held out, every image a training step sees comes from the other folds' sources."""
    from medimg.training import train as T

    data = tmp_path / "data"
    for k, (lb, src) in enumerate((("xray", "s1"), ("xray", "s2"), ("photo", "s3"), ("photo", "s4"))):
        (data / lb / src).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (24, 24), (60 * k, 20 * i, 100)).save(data / lb / src / f"{i}.png")
    drawn: list[int] = []

    class SpyViews(T.Views):
        def __init__(self, x, y, order, *a, **kw):
            drawn.extend(int(i) for i in order)
            super().__init__(x, y, order, *a, **kw)

    monkeypatch.setattr(T, "Views", SpyViews)
    cfg = Config(data=str(data), out=str(tmp_path / "run"), size=32, low_size=32, epochs=1, samples_per_epoch=16,
                 batch_size=8, folds=2, holdout=0, cache="", workers=0, seed=1)
    meta = train(cfg, log=lambda *_: None)
    corpus = scan(data)
    held = set(meta["heldout_sources"])
    assert held and len(drawn) == 16
    assert not {corpus.source[i] for i in drawn} & held


def test_each_epoch_draws_new_random_views_of_an_image(tmp_path, monkeypatch):
    """Augmentation is drawn anew every epoch: an image drawn at the same place of two epochs' orders is
    seen as two different views, not the same crop and colours again."""
    from medimg.training import train as T

    data = tmp_path / "data"
    for k, (lb, src) in enumerate((("xray", "s1"), ("photo", "s2"))):
        (data / lb / src).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (24, 24), (60 * k + 30 * i, 90, 40 * i)).save(data / lb / src / f"{i}.png")
    epochs: list = []

    class SpyViews(T.Views):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            epochs.append(self)

    monkeypatch.setattr(T, "Views", SpyViews)
    cfg = Config(data=str(data), out=str(tmp_path / "run"), size=32, low_size=32, epochs=2, samples_per_epoch=16,
                 batch_size=8, cache="", workers=0, seed=1)
    train(cfg, log=lambda *_: None)
    first, second = epochs
    same = [k for k in range(len(first)) if first.order[k] == second.order[k]]
    assert same  # 4 images, 16 draws an epoch: some image sits at the same place in both
    assert any(not torch.equal(first[k][0], second[k][0]) for k in same)


def test_an_r_net_reduces_its_input_32_times_as_its_docstring_says():
    """The r-nets go to 1/4 in the stem, then 1/4, 1/8, 1/16, 1/32 in their stages: 128 px give a 4 × 4 map
    (weights saved by one layout compute something else in another)."""
    from medimg.training.net import build

    for arch in ("r8xs", "r10s", "r12"):
        model = build(arch, 3).eval()
        with torch.no_grad():
            assert model.stages(model.stem(torch.zeros(1, 3, 128, 128))).shape[-2:] == (4, 4), arch


def _fold_runs(tmp_path, labels=("ct", "photo"), seed=0) -> list[Path]:
    """Two fold runs' heldout.npz: noisy logits over `labels`, sources s0..s3."""
    rng = np.random.default_rng(seed)
    runs = []
    for f in range(2):
        n = 300
        y = rng.integers(0, len(labels), n)
        logits = rng.normal(size=(n, len(labels))).astype(np.float32)
        logits[np.arange(n), y] += rng.normal(2.0, 1.5, n).astype(np.float32)  # mostly right
        d = tmp_path / f"cv{f}"
        d.mkdir()
        np.savez(d / "heldout.npz", logits=logits * 2.5, y=y, source=np.array([f"s{f * 2 + i % 2}" for i in range(n)]),
                 path=np.array([f"{f}/{i}.png" for i in range(n)]), labels=np.array(labels))
        runs.append(d)
    return runs


def test_ship_writes_the_held_out_calibration_and_the_cards_tables(tmp_path):
    """ship() without training: an untrained small network as the final run and two fold runs' held-out logits.
    labels.json carries the temperature fitted on all held-out logits, the threshold chosen on them and the
    summary; the card's tables give the report's own numbers in their own columns."""
    from medimg.model.preprocess import MEAN, STD
    from medimg.training.ship import ship

    labels = ["ct", "photo", "xray"]  # three: label and binary accuracy differ, as do labels and folds
    final = tmp_path / "final"
    final.mkdir()
    model = build("r8xs", len(labels), pretrained=False)
    meta = {"labels": labels, "medical_labels": ["ct", "xray"], "arch": "r8xs", "input_size": 64, "mean": list(MEAN),
            "std": list(STD), "config": {"seed": 0}, "train_sources": {}, "train_seconds": 1.0}
    torch.save({"meta": meta, "model": model.state_dict()}, final / "model.pt")
    runs = _fold_runs(tmp_path, tuple(labels), seed=4)
    with pytest.raises(ValueError, match="weights must be"):
        ship(final, runs, tmp_path / "x", weights="bf16", log=lambda *_: None)
    res = ship(final, runs, tmp_path / "assets", tmp_path / "docs", version="t", log=lambda *_: None)
    rep = res["report"]
    lab = json.loads((tmp_path / "assets" / "labels.json").read_text())
    assert rep["temperature"] == pytest.approx(fit_temperature(np.concatenate(
        [np.load(d / "heldout.npz")["logits"] for d in runs]), np.concatenate([np.load(d / "heldout.npz")["y"] for d in runs])))
    assert lab["temperature"] == round(rep["temperature"], 4) and lab["threshold"] == rep["threshold"] >= 0.5
    assert lab["source_heldout"]["n"] == 600 and lab["source_heldout"]["ece"] == rep["ece"]
    assert lab["onnx_parity_max_abs_diff"] <= 1e-4 and lab["weights"] == "fp32"
    assert Classifier.load(tmp_path / "assets").labels == labels
    card = (tmp_path / "docs" / "heldout.md").read_text()
    assert "| metric (source-held-out, 2 folds, n = 600) | value |" in card
    assert f"| ECE before temperature scaling | {rep['ece_uncalibrated']:.4f} |" in card
    assert " / ".join(f"{v:.3f}" for v in rep["ece_per_fold"]) in card
    v = rep["verdicts"]
    assert f"| {v['decided']} / {v['uncertain']} / {v['decided_accuracy']} |" in card
    wb = rep["worst_source_binary"]
    assert wb["source"] != rep["worst_source"]["source"]
    assert f"| worst source (binary accuracy) | {wb['source']}: {wb['binary_accuracy']:.3f} |" in card
    for lb in labels:
        m = rep["per_label"][lb]
        assert f"| {lb} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |" in card
    for s, m in rep["per_source"].items():
        assert f"| {s} | {m['n']} | {m['label_accuracy']:.3f} | {m['binary_accuracy']:.3f} |" in card
    other = tmp_path / "other"
    other.mkdir()
    torch.save({"meta": {**meta, "labels": ["photo", "ct", "xray"]}, "model": model.state_dict()}, other / "model.pt")
    with pytest.raises(ValueError, match="disagree on labels"):
        ship(other, runs, tmp_path / "y", log=lambda *_: None)


def test_the_uncalibrated_ece_is_of_the_raw_probabilities(tmp_path):
    from medimg.training.evaluate import ece
    from medimg.training.ship import heldout_report

    runs = _fold_runs(tmp_path)
    rep = heldout_report(runs, {"ct"})
    parts = [np.load(d / "heldout.npz") for d in runs]
    raw = softmax(np.concatenate([p["logits"] for p in parts]), 1.0)
    assert rep["ece_uncalibrated"] == pytest.approx(ece(raw, np.concatenate([p["y"] for p in parts]))[0], abs=1e-4)
    assert abs(rep["ece_uncalibrated"] - rep["ece"]) > 0.01


def test_calibration_images_are_n_spread_over_the_labels():
    """n inputs, as many per label as n allows (7 labels, n = 10: two of the first labels' images and one of the
    rest, never fewer than n)."""
    from types import SimpleNamespace

    from medimg.training.ship import calibration_images

    y = np.repeat(np.arange(7), 5)
    x = np.zeros((len(y), 4, 4, 3), np.uint8)
    corpus = SimpleNamespace(y=y)
    out = calibration_images(corpus, x, np.arange(len(y)), n=10)
    assert out.shape == (10, 3, 4, 4) and out.dtype == np.float32
    assert calibration_images(corpus, x, np.arange(len(y)), n=64).shape[0] == 35  # all there are


def test_calibration_is_sound_at_the_edges():
    """Huge logits do not overflow, a label given probability 0 costs a finite NLL, no predictions give T = 1,
    and the fit is precise; at_bound judges each fit by its own search range."""
    from medimg.training.calibrate import at_bound, nll

    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert np.allclose(softmax(np.array([[1000.0, 0.0]])), [[1, 0]])
        assert np.isfinite(nll(np.array([[0.0, 1000.0]]), np.array([0]), 1.0))
    empty = np.zeros((0, 3))
    assert fit_temperature(empty, np.zeros(0, int)) == 1.0 == fit_temperature_ece(empty, np.zeros(0, int))
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((3000, 4)) * 2
    y = np.array([rng.choice(4, p=p) for p in softmax(logits)])
    t = fit_temperature(logits * 2.0, y)
    grid = np.exp(np.linspace(np.log(t) - 0.01, np.log(t) + 0.01, 41))
    assert nll(logits * 2.0, y, t) <= min(nll(logits * 2.0, y, g) for g in grid) + 1e-9
    assert at_bound(0.05, fit_temperature) and at_bound(20.0 / 1.01, fit_temperature) and not at_bound(1.0, fit_temperature)
    assert at_bound(0.25 * 1.01, fit_temperature_ece) and at_bound(4.0, fit_temperature_ece)
    assert not at_bound(0.3, fit_temperature_ece) and not at_bound(0.06, fit_temperature)


def test_the_threshold_counts_abstentions_decides_exactly_at_it_and_prefers_the_lower_on_a_tie():
    """At t = 0.7 a p_medical of exactly 0.3 is non-medical (1 − p ≥ t, as verdict_for decides); abstaining costs
    uncertain_cost each; of equal costs the lowest threshold is kept."""
    t, info = choose_threshold(np.array([0.3]), np.array([False]), grid=np.array([0.7]))
    assert info["chosen"]["uncertain"] == 0 and info["chosen"]["errors"] == 0
    p = np.array([0.9, 0.1, 0.6])
    truth = np.array([True, False, False])
    t, info = choose_threshold(p, truth, uncertain_cost=0.3)
    assert t == 0.61 and info["chosen"] == {"threshold": 0.61, "errors": 0, "uncertain": 1, "cost": 0.3}
    t, _ = choose_threshold(np.array([0.95, 0.05]), np.array([True, False]))
    assert t == 0.5
