"""A team's own corpus and models: what `train`, `evaluate` and `--model` do with bad files, odd layouts
and interrupted runs. Tiny synthetic corpora of real PNGs; no shared data needed."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from medimg.cli import app
from medimg.training.dataset import label_groups, load, scan

def flat(output: str) -> str:
    """CLI output without Rich's box drawing and line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─┃]", " ", output).split())


COLOURS = {"xray": (200, 200, 200), "photo": (30, 160, 40), "graphic": (20, 40, 220)}


def corpus(root: Path, layout: dict[str, dict[str, int]]) -> Path:
    """root/<label>/<source>/<i>.png, each image a noisy patch of its label's colour."""
    rng = np.random.default_rng(0)
    for label, sources in layout.items():
        for source, n in sources.items():
            folder = root / label / source
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                base = np.array(COLOURS.get(label, (90, 90, 90)), np.int16)
                arr = np.clip(base + rng.integers(-20, 20, (24, 24, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(arr).save(folder / f"{i}.png")
    return root


def test_scan_leaves_out_hidden_folders_and_says_what_it_does_not_read(tmp_path):
    root = corpus(tmp_path, {"xray": {"a": 2}, "photo": {"b": 2}})
    for hidden in ("xray/.ipynb_checkpoints/0.png", "xray/a/.thumbs/t.png", "photo/b/._0.png"):
        (root / hidden).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(root / hidden, "PNG")
    (root / "xray" / "a" / "readme.txt").write_text("notes")
    Image.new("RGB", (8, 8)).save(root / "photo" / "loose.png")
    said: list[str] = []
    c = scan(root, exclude={}, log=said.append)
    assert sorted(c.paths) == ["photo/b/0.png", "photo/b/1.png", "xray/a/0.png", "xray/a/1.png"]
    assert c.sources == ["photo/b", "xray/a"]
    assert any("xray/a" in m and ".txt" in m for m in said), said
    assert any("photo/" in m and "loose.png" in m and "<source>/" in m for m in said), said


@pytest.mark.parametrize("how", ["empty", "only text", "images loose in the label folder"])
def test_a_label_without_images_is_refused_not_trained_as_a_class(tmp_path, how):
    root = corpus(tmp_path, {"xray": {"a": 2}, "photo": {"b": 2}})
    if how == "empty":
        (root / "graphic").mkdir()
    elif how == "only text":
        (root / "graphic" / "s").mkdir(parents=True)
        (root / "graphic" / "s" / "readme.txt").write_text("x")
    else:
        (root / "graphic").mkdir()
        Image.new("RGB", (8, 8)).save(root / "graphic" / "0.png")
    with pytest.raises(ValueError, match="graphic/ has no images"):
        scan(root, exclude={})


def test_label_groups_accept_any_case_and_refuse_a_typo(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("label,group\nxray,Medical\nphoto,NON-MEDICAL\n")
    assert label_groups(good) == {"xray": True, "photo": False}
    bad = tmp_path / "bad.csv"
    bad.write_text("label,group\nmammo,medcial\n")
    with pytest.raises(ValueError, match="mammo.*medical or non-medical"):
        label_groups(bad)


def test_a_label_folder_in_the_wrong_case_gets_a_hint(tmp_path):
    root = corpus(tmp_path, {"Xray": {"a": 1}, "photo": {"b": 1}})
    with pytest.raises(ValueError, match="did you mean 'xray'"):
        scan(root, exclude={})


def test_unreadable_files_are_left_out_and_named_also_from_the_cache(tmp_path):
    root = corpus(tmp_path / "data", {"xray": {"a": 3}, "photo": {"b": 2}})
    good = (root / "xray" / "a" / "0.png").read_bytes()
    (root / "xray" / "a" / "1.png").write_bytes(good[:60])  # truncated
    (root / "photo" / "b" / "1.png").write_bytes(b"")  # empty
    for attempt in ("decoded", "cached"):
        said: list[str] = []
        c, x, wh = load(scan(root, exclude={}), 16, tmp_path / "cache", log=said.append)
        assert sorted(c.paths) == ["photo/b/0.png", "xray/a/0.png", "xray/a/2.png"], attempt
        assert x.shape == (3, 16, 16, 3) and len(wh) == 3 and list(c.y) == [c.labels.index(p.split("/")[0]) for p in c.paths]
        assert any("xray/a/1.png" in m for m in said) and any("photo/b/1.png" in m for m in said), said
    (root / "photo" / "b" / "0.png").write_bytes(b"junk")  # now photo has nothing readable
    with pytest.raises(ValueError, match="no readable images left for label.*photo"):
        load(scan(root, exclude={}), 16, None, log=lambda *_: None)


def test_the_cache_sees_a_file_changed_in_place(tmp_path):
    root = corpus(tmp_path / "data", {"xray": {"a": 1}, "photo": {"b": 1}})
    cache = tmp_path / "cache"
    _, x1, _ = load(scan(root, exclude={}), 8, cache, log=lambda *_: None)
    path = root / "photo" / "b" / "0.png"
    Image.new("RGB", (24, 24), (0, 0, 255)).save(path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    c, x2, _ = load(scan(root, exclude={}), 8, cache, log=lambda *_: None)
    i = c.paths.index("photo/b/0.png")
    assert tuple(x2[i, 4, 4]) == (0, 0, 255) and not np.array_equal(x1[i], x2[i])


def test_the_cache_sees_a_file_copied_over_with_its_old_time(tmp_path):
    """`cp -p`, `rsync -a`, `tar x`: same size, same mtime, other pixels (the change time still moves)."""
    root = corpus(tmp_path / "data", {"xray": {"a": 1}, "photo": {"b": 1}})
    cache = tmp_path / "cache"
    path = root / "photo" / "b" / "0.png"
    Image.new("RGB", (24, 24), (200, 30, 30)).save(path, "BMP")
    before = path.stat()
    load(scan(root, exclude={}), 8, cache, log=lambda *_: None)
    Image.new("RGB", (24, 24), (0, 0, 0)).save(path, "BMP")  # a BMP's size is its pixel count's
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
    c, x, _ = load(scan(root, exclude={}), 8, cache, log=lambda *_: None)
    assert tuple(x[c.paths.index("photo/b/0.png"), 4, 4]) == (0, 0, 0)


def test_the_cache_folder_keeps_only_the_latest_decoded_corpora(tmp_path):
    """Each change of files, --size or --per-source decodes a new corpus (0.7 GB for the shared one): the folder
    keeps the decoded sources of the three most recently used corpora, not every one ever made, and lets whole-
    corpus caches of earlier versions go (each source is cached on its own now)."""
    from medimg.training import dataset

    root = corpus(tmp_path / "data", {"xray": {"a": 1}, "photo": {"b": 1}})
    cache = tmp_path / "cache"
    cache.mkdir()
    for i in range(5):
        old = cache / f"corpus-8-old{i}.npz"
        old.write_bytes(b"x")
        os.utime(old, (1_000_000 + i, 1_000_000 + i))
    (cache / "notes.txt").write_text("mine")

    stamps = iter(range(1_000_100, 1_000_200))  # long ago, each load later than the one before

    def used(size: int) -> None:  # loaded, then dated long ago (a cache used within the hour is never let go)
        load(scan(root, exclude={}), size, cache, log=lambda *_: None)
        when = next(stamps)
        for p in cache.iterdir():
            if p.name != "notes.txt" and p.stat().st_mtime > 2_000_000:
                os.utime(p, (when, when))

    used(8)
    assert sorted(p.name for p in cache.iterdir() if not p.name.startswith("source-")) == [
        *[p.name for p in cache.glob("corpus-8-*.json")], "notes.txt"]
    used(9)
    used(8)  # a hit marks its caches as used
    used(10)
    used(11)
    left = {p.name for p in cache.iterdir()}
    assert len([n for n in left if n.endswith(".json")]) == dataset.KEEP_CACHES == 3
    for size, kept in ((8, True), (9, False), (10, True), (11, True)):
        assert all((name in left) == kept for _, name in dataset._parts(scan(root, exclude={}), size)), size
    assert len([n for n in left if n.startswith("source-")]) == 3 * 2 and "notes.txt" in left


def test_a_killed_runs_temporary_corpus_is_removed_but_a_live_ones_stays(tmp_path):
    """A run killed while writing its decoded corpus left `corpus-….<pid>.tmp.npz` (0.7 GB) for good: the
    clean-up passed over every temporary file, since another run may be writing it. Now one untouched for an
    hour whose process is gone is removed; a live process's, or a fresh one, stays."""
    import subprocess
    import sys

    root = corpus(tmp_path / "data", {"xray": {"a": 1}, "photo": {"b": 1}})
    cache = tmp_path / "cache"
    cache.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(gone.stdout)
    old = 1_000_000  # long ago
    files = {"dead_old": f"corpus-8-a.{dead}.tmp.npz", "dead_fresh": f"corpus-8-b.{dead}.tmp.npz",
             "alive_old": f"corpus-8-c.{os.getpid()}.tmp.npz", "no_pid": "corpus-8-d.tmp.npz"}
    for key, name in files.items():
        (cache / name).write_bytes(b"x")
        if key != "dead_fresh":
            os.utime(cache / name, (old, old))
    load(scan(root, exclude={}), 8, cache, log=lambda *_: None)
    left = {p.name for p in cache.iterdir()}
    assert files["dead_old"] not in left
    assert {files["dead_fresh"], files["alive_old"], files["no_pid"]} <= left


def test_training_sees_the_pixels_classify_sees(tmp_path):
    """The model learns from what it will be shown: an EXIF-turned phone photo upright, a wide-gamut profile
    applied, a 16-bit MinIsWhite TIFF as a positive, a DICOM windowed; the same pixels as classify's."""
    import io
    import shutil

    import builders as b

    from medimg.model.preprocess import resize_rgb
    from medimg.sources import Limits, open_input

    folder = tmp_path / "data" / "xray" / "a"
    folder.mkdir(parents=True)
    (folder / "turned.jpg").write_bytes(b.jpeg_with_orientation((60, 40), 6))
    wide = np.zeros((40, 60, 3), np.uint8)
    wide[:, :30] = (40, 200, 60)
    (folder / "wide.png").write_bytes(b.encode(Image.fromarray(wide), "PNG", icc_profile=b.wide_gamut_icc()))
    shown = np.zeros((48, 64))
    shown[:24, :32] = 0.9
    buf = io.BytesIO()
    Image.fromarray((65535 * (1 - shown)).astype(np.uint16)).save(buf, "TIFF", tiffinfo={262: 0})
    (folder / "negative.tif").write_bytes(buf.getvalue())
    shutil.copy(b.dicom_file("CT_small.dcm"), folder / "ct.dcm")
    Image.new("RGB", (24, 24), (30, 160, 40)).save(tmp_path / "data" / "xray" / "a" / "plain.png")
    c, x, wh = load(scan(tmp_path / "data", exclude={}), 32, None, log=lambda *_: None)
    assert sorted(c.paths) == ["xray/a/ct.dcm", "xray/a/negative.tif", "xray/a/plain.png", "xray/a/turned.jpg",
                               "xray/a/wide.png"]
    for i, p in enumerate(c.paths):
        item = next(iter(open_input(str(tmp_path / "data" / p), Limits(decode_side=64))))
        assert np.array_equal(x[i], resize_rgb(item.image, 32)), p
        assert tuple(wh[i]) == (item.width, item.height), p
    # what is not one image is not trained on, whatever its name: a zip, a PDF or a saved page (which would
    # have been read, its remote images fetched)
    (folder / "zip.png").write_bytes(b.zip_bytes([("a.png", b.image_bytes("PNG"))]))
    (folder / "page.jpg").write_text('<html><body><img src="http://192.0.2.1/a.png"></body></html>')
    (folder / "doc.png").write_bytes(b"%PDF-1.4\n%%EOF\n")
    said: list[str] = []
    c2, _, _ = load(scan(tmp_path / "data", exclude={}), 32, None, log=said.append)
    assert sorted(c2.paths) == sorted(c.paths)
    for name, kind in (("zip.png", "zip"), ("page.jpg", "html"), ("doc.png", "pdf")):
        assert any(f"xray/a/{name}: not an image file ({kind})" in m for m in said), said
    turned = x[c.paths.index("xray/a/turned.jpg")]
    assert wh[c.paths.index("xray/a/turned.jpg")].tolist() == [40, 60]  # upright: portrait
    negative = x[c.paths.index("xray/a/negative.tif")].astype(int)
    assert negative[:16, :16].mean() > 200 and negative[16:].mean() < 50  # bright corner on black, not inverted
    plain = Image.fromarray(wide).resize((32, 32))
    assert np.abs(x[c.paths.index("xray/a/wide.png")].astype(int) - np.asarray(plain, int)).max() > 10  # converted
    assert turned.std() > 0


# ---------------------------------------------------------------- training runs (need torch)


def _tiny(root: Path, out: Path, **kw):
    from medimg.training.train import Config

    return Config(data=str(root), out=str(out), arch="r8xs", size=32, low_frac=0.0, epochs=2,
                  samples_per_epoch=64, batch_size=32, cache="", workers=0, seed=5, **kw)


def test_an_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch", reason="needs the train extra (torch)")
    from medimg.training import train as train_mod

    root = corpus(tmp_path / "data", {"xray": {"a": 4, "c": 4}, "photo": {"b": 4, "d": 4}})
    train_mod.train(_tiny(root, tmp_path / "whole"), log=lambda *_: None)

    real_save = train_mod._save

    def save_then_stop(obj, path):
        real_save(obj, path)
        if path.name == "checkpoint.pt":
            raise KeyboardInterrupt  # killed right after epoch 1's checkpoint

    monkeypatch.setattr(train_mod, "_save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train_mod.train(_tiny(root, tmp_path / "cut"), log=lambda *_: None)
    monkeypatch.setattr(train_mod, "_save", real_save)
    said: list[str] = []
    train_mod.train(_tiny(root, tmp_path / "cut"), log=said.append)
    assert "resumed from epoch 1" in said
    whole = torch.load(tmp_path / "whole" / "model.pt", weights_only=False)["model"]
    cut = torch.load(tmp_path / "cut" / "model.pt", weights_only=False)["model"]
    assert all(torch.equal(whole[k], cut[k]) for k in whole)

    # the same command after a file changed trains again instead of resuming the finished run
    Image.new("RGB", (24, 24), (255, 0, 0)).save(root / "photo" / "b" / "0.png")
    said.clear()
    train_mod.train(_tiny(root, tmp_path / "cut"), log=said.append)
    assert any("other files" in m and "starting again" in m for m in said), said
    assert "resumed from epoch 1" not in said and not any(m.startswith("resumed") for m in said)


def test_a_stop_while_saving_keeps_the_last_checkpoint_and_a_broken_one_is_set_aside(tmp_path, monkeypatch):
    """Ctrl-C inside torch.save (epoch 2's checkpoint half written) leaves epoch 1's whole, and the same command
    resumes from it; a checkpoint cut off otherwise (a full disk, kill -9 before this fix) is set aside and the run
    starts again, where it was a traceback on every later run."""
    torch = pytest.importorskip("torch", reason="needs the train extra (torch)")
    from medimg.training import train as train_mod

    root = corpus(tmp_path / "data", {"xray": {"a": 4, "c": 4}, "photo": {"b": 4, "d": 4}})
    real_save, calls = torch.save, []

    def stop_while_writing(obj, f, *a, **k):  # f: the open part-file _save writes through
        calls.append(str(getattr(f, "name", f)))
        if len([c for c in calls if "checkpoint" in c]) == 2:
            f.write(b"PK\x03\x04 half a file")
            raise KeyboardInterrupt
        real_save(obj, f, *a, **k)

    monkeypatch.setattr(train_mod.torch, "save", stop_while_writing)
    with pytest.raises(KeyboardInterrupt):
        train_mod.train(_tiny(root, tmp_path / "run"), log=lambda *_: None)
    monkeypatch.setattr(train_mod.torch, "save", real_save)
    said: list[str] = []
    train_mod.train(_tiny(root, tmp_path / "run"), log=said.append)
    assert "resumed from epoch 1" in said

    ck = tmp_path / "run" / "checkpoint.pt"
    ck.write_bytes(ck.read_bytes()[:1000])
    said.clear()
    train_mod.train(_tiny(root, tmp_path / "run"), log=said.append)
    assert any("cannot be read" in m and "starting again" in m for m in said), said
    assert (tmp_path / "run" / "checkpoint.pt.broken").exists() and not any(m.startswith("resumed") for m in said)
    assert torch.load(ck, weights_only=False)["epoch"] == 2


def test_train_refuses_what_it_cannot_use_before_training(tmp_path):
    pytest.importorskip("torch", reason="needs the train extra (torch)")
    run = CliRunner().invoke
    one_each = corpus(tmp_path / "one", {"xray": {"a": 2}, "photo": {"b": 2}})
    cases = [
        (["--data", str(tmp_path / "missing")], "is not a folder"),
        (["--data", str(one_each), "--folds", "1"], "greater than or equal to 2"),
        (["--data", str(one_each), "--folds", "5"], "5 folds need at least 5 sources"),
        (["--data", str(one_each), "--folds", "2"], "single source"),
        (["--data", str(one_each), "--no-cv", "--docs", str(tmp_path / "plots")],  # finished with no plots
         "the plots are of held-out predictions, which --no-cv does not make"),
    ]
    two_each = corpus(tmp_path / "two", {"xray": {"a": 2, "c": 2}, "photo": {"b": 2, "d": 2}})
    (tmp_path / "a-file").write_text("")
    bad_options = [  # each refused as it is read, not after training (or never: --epochs 0 shipped a random net)
        (["--epochs", "0"], "--epochs"), (["--samples-per-epoch", "0"], "--samples-per-epoch"),
        (["--size", "20"], "--size"), (["--threads", "0"], "--threads"), (["--per-source", "-5"], "--per-source"),
        (["--arch", "bogus"], "'bogus': the finetune route trains effl0, effl1, effl2"),
        (["--arch", "r8xs"], "'r8xs': the finetune route trains"),
        (["--weights", "bogus"], "'bogus': use fp32, fp16 or int8"),
        (["--route", "backbone", "--epochs", "3", "--no-cv"],
         "--epochs, --no-cv, --cache do not apply to the backbone route"),
        (["--ship", str(tmp_path / "a-file")], "a-file cannot be written"),
        (["--cache", "/proc/medimg-cache"], "/proc/medimg-cache cannot be written"),
        (["--out", str(tmp_path / "a-file" / "runs")], "cannot be written"),
    ]
    for args, says in cases + [(["--data", str(two_each), *a], s) for a, s in bad_options]:
        res = run(app, ["train", "--out", str(tmp_path / "runs"), "--cache", "", *args])
        assert res.exit_code == 2 and says in flat(res.output), (args, res.output)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing was started


def test_train_says_what_only_the_decoded_files_show_before_any_fold_trains(tmp_path):
    """A label, or a fold's only source, whose files all turn out unreadable: a usage error before training (a
    traceback, or a crash at shipping after every fold had trained); one kind of label only: a warning."""
    pytest.importorskip("torch", reason="needs the train extra (torch)")
    run = CliRunner().invoke
    root = corpus(tmp_path / "data", {"xray": {"a": 3, "c": 3}, "photo": {"b": 3, "d": 3}})
    for p in (root / "photo" / "d").iterdir():
        p.write_bytes(b"not a picture")
    args = ["train", "--data", str(root), "--out", str(tmp_path / "runs"), "--cache", "", "--route", "cnn",
            "--size", "32", "--epochs", "1", "--samples-per-epoch", "32"]
    res = run(app, [*args, "--folds", "4"])
    assert res.exit_code == 2 and "3 sources have images that can be read, so fold" in flat(res.output), res.output
    assert not list((tmp_path / "runs").glob("*/model.pt"))
    for p in (root / "photo" / "b").iterdir():
        p.write_bytes(b"not a picture")
    res = run(app, [*args, "--folds", "2"])
    assert res.exit_code == 2 and "no readable images left for label(s) photo" in flat(res.output), res.output
    assert "Traceback" not in res.output

    only = corpus(tmp_path / "only", {"xray": {"a": 3}, "ct": {"b": 3}})
    res = run(app, [*args[:2], str(only), *args[3:], "--no-cv", "--ship", str(tmp_path / "ship")])
    assert res.exit_code == 0, res.output
    said = flat(res.output)
    assert "every label of" in said and "will call every image medical (p_medical 1)" in said
    assert "with --no-cv no source is held out" in said
    res = run(app, ["classify", str(tmp_path / "runs"), "--model", str(tmp_path / "runs" / "final")])
    assert res.exit_code == 2, res.output
    res = run(app, ["classify", str(root), "--model", str(tmp_path / "runs")])
    assert res.exit_code == 2 and "the model this run shipped is in" not in flat(res.output)
    assert "give the folder `medimg train --ship` wrote" in flat(res.output)
    (tmp_path / "runs" / "final" / "assets").mkdir(parents=True)  # as a run without --ship leaves it
    for name in ("labels.json", "model.onnx"):
        (tmp_path / "runs" / "final" / "assets" / name).write_bytes((tmp_path / "ship" / name).read_bytes())
    res = run(app, ["classify", str(root), "--model", str(tmp_path / "runs" / "final")])
    said = flat(res.output)
    assert res.exit_code == 2 and "the model this run shipped is in" in said, said
    assert str(tmp_path / "runs" / "final" / "assets") in said.replace(" ", "")  # Rich may break the path


# ---------------------------------------------------------------- models and evaluate


def test_a_model_whose_parts_do_not_match_is_refused_clearly(tmp_path, tiny_model_dir):
    import shutil

    from medimg.model import Classifier

    mixed = tmp_path / "mixed"
    shutil.copytree(tiny_model_dir, mixed)
    meta = json.loads((mixed / "labels.json").read_text())
    (mixed / "labels.json").write_text(json.dumps(meta | {"labels": meta["labels"][:2]}))
    with pytest.raises(ValueError, match="2 labels but model.onnx has 3 outputs"):
        Classifier.load(mixed)
    cut = tmp_path / "cut"
    shutil.copytree(tiny_model_dir, cut)
    (cut / "model.onnx").write_bytes((cut / "model.onnx").read_bytes()[:50])
    with pytest.raises(ValueError, match="cannot be loaded by ONNX Runtime"):
        Classifier.load(cut)
    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    for folder, says in ((mixed, "different models"), (cut, "ONNX Runtime")):
        res = CliRunner().invoke(app, ["classify", str(tmp_path / "a.png"), "--model", str(folder)])
        assert res.exit_code == 2 and says in flat(res.output), res.output


def test_evaluate_with_nothing_scored_fails_and_accounts_for_every_file(tmp_path, tiny_model_dir):
    root = tmp_path / "eval"
    (root / "xray" / "s").mkdir(parents=True)
    (root / "xray" / "s" / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    (root / "xray" / "s" / "readme.txt").write_text("notes")
    Image.new("RGB", (16, 16)).save(root / "stray.png")
    res = CliRunner().invoke(app, ["evaluate", str(root), "--json", "--model", str(tiny_model_dir)])
    assert res.exit_code == 1, res.output
    rep = json.loads(res.stdout)
    assert rep["n"] == 0 and rep["ece"] is None and rep["binary_accuracy"] is None
    assert len(rep["read_errors"]) == 1 and "cut.png" in rep["read_errors"][0]["item"]
    assert any("readme.txt" in s["item"] for s in rep["skipped"])
    assert rep["unlabelled_files"] == ["stray.png"]


def test_evaluate_json_stays_valid_with_file_names_that_are_not_utf8(tmp_path, tiny_model_dir):
    root = tmp_path / "eval"
    folder = root / "photo" / os.fsdecode(b"s\xf6urce")
    folder.mkdir(parents=True)
    Image.new("RGB", (16, 16), (0, 255, 0)).save(folder / os.fsdecode(b"caf\xe9.png"))
    res = CliRunner().invoke(app, ["evaluate", str(root), "--json", "--model", str(tiny_model_dir)])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout_bytes.decode("utf-8"))
    assert rep["n"] == 1 and rep["per_label"]["photo"]["support"] == 1


def test_a_temperature_at_the_edge_of_its_search_is_flagged():
    from medimg.training.calibrate import at_bound, fit_temperature, fit_temperature_ece

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    unseen = np.eye(3)[(y + 1) % 3] * 8.0  # confidently wrong on every row: a label the fold never saw
    t = fit_temperature(unseen, y)
    assert at_bound(t, fit_temperature)
    fair = np.eye(3)[y] * 2.0 + rng.normal(0, 1, (300, 3))
    assert not at_bound(fit_temperature(fair, y), fit_temperature)
    assert at_bound(4.0, fit_temperature_ece) and not at_bound(1.0, fit_temperature_ece)


def test_per_source_keeps_at_most_that_many_files_of_each_source(tmp_path):
    """per_source=2: a source of three files gives two (chosen by the seed), one of two or one gives all."""
    root = corpus(tmp_path, {"xray": {"a": 3, "b": 2}, "photo": {"c": 1, "d": 5}})
    c = scan(root, exclude={}, per_source=2)
    count = {s: c.source.count(s) for s in c.sources}
    assert count == {"photo/c": 1, "photo/d": 2, "xray/a": 2, "xray/b": 2}
    assert set(c.paths) >= {"xray/b/0.png", "xray/b/1.png", "photo/c/0.png"}
    assert scan(root, exclude={}, per_source=2).paths == c.paths  # the same seed, the same files
