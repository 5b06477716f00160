"""`train` on a team's own corpus (review s34): the decoded corpus cached per source, an exclude.csv with a path
column only, and a run folder's own assets once a rerun ships elsewhere. Tiny corpora of real PNGs."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image
from test_training_inputs import corpus

from medimg.training import dataset
from medimg.training.dataset import load_images, scan

LAYOUT = {"xray": {"a": 3, "c": 3}, "photo": {"b": 3, "d": 3}}


def _load(root, cache):
    """load_images of the corpus as it is now, and how many files it decoded (0: all read from the cache)."""
    said: list[str] = []
    x, wh, bad = load_images(scan(root, exclude={}), 16, cache, workers=1, log=said.append)
    done = [m for m in said if m.startswith("decoded ")]
    return x, wh, bad, int(done[-1].split("/")[1]) if done else 0


def _same_as_decoded_afresh(root, x, wh, bad):
    fresh = load_images(scan(root, exclude={}), 16, None, workers=1, log=lambda *_: None)
    assert np.array_equal(x, fresh[0]) and np.array_equal(wh, fresh[1]) and bad == fresh[2]


def test_a_file_changed_added_or_removed_decodes_only_its_source_again(tmp_path, monkeypatch):
    """The cache was one file for the whole corpus, keyed by every file: one file touched decoded all ~14,700
    again. Now each source is cached on its own; the arrays are those of a fresh decode, in the same order."""
    root = corpus(tmp_path / "data", LAYOUT)
    (root / "xray" / "c" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))  # unreadable, also when cached
    cache = tmp_path / "cache"
    assert _load(root, cache)[3] == 12
    x, wh, bad, n = _load(root, cache)
    assert n == 0 and list(bad) == [scan(root, exclude={}).paths.index("xray/c/2.png")]
    _same_as_decoded_afresh(root, x, wh, bad)

    path = root / "photo" / "b" / "0.png"
    Image.new("RGB", (24, 24), (0, 0, 255)).save(path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    x, wh, bad, n = _load(root, cache)
    assert n == 3 and tuple(x[scan(root, exclude={}).paths.index("photo/b/0.png"), 4, 4]) == (0, 0, 255)
    shutil.copyfile(root / "xray" / "a" / "0.png", root / "xray" / "a" / "9.png")  # added
    assert _load(root, cache)[3] == 4
    (root / "photo" / "d" / "1.png").unlink()  # removed
    x, wh, bad, n = _load(root, cache)
    assert n == 2 and len(x) == 12
    _same_as_decoded_afresh(root, x, wh, bad)
    monkeypatch.setattr(dataset, "DECODER", dataset.DECODER + "-next")  # files decoded another way: all again
    assert _load(root, cache)[3] == 12 and _load(root, cache)[3] == 0


def test_a_stop_while_decoding_keeps_the_sources_already_done(tmp_path):
    """A Ctrl-C during the first decode (minutes for the shared corpus) threw all of it away."""
    root = corpus(tmp_path / "data", {"xray": {"a": 20}, "photo": {"b": 20}})
    cache = tmp_path / "cache"

    def stop_late(message):
        if message == "decoded 24/40":  # the first source's 20 files are decoded, and cached, by then
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        load_images(scan(root), 16, cache, log=stop_late)
    assert not list(cache.glob("*.tmp.*"))
    assert _load(root, cache)[3] == 20


def _age(cache, run: int) -> None:
    """Files the last load wrote or used, dated long ago (this load's number of seconds after 1,000,000)."""
    for p in cache.iterdir():
        if p.stat().st_mtime > 2_000_000:
            os.utime(p, (1_000_000 + run, 1_000_000 + run))


def test_the_cache_keeps_the_sources_of_the_latest_corpora_and_lets_the_rest_go(tmp_path):
    """Each corpus used names the source caches it reads; the sources of the three most recently used corpora are
    kept (a source shared by them once), older ones go, and so do whole-corpus caches of earlier versions. A
    cache used within the hour stays whatever: a run going on may be reading it."""
    root = corpus(tmp_path / "data", LAYOUT)
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in ("corpus-16-0123456789abcdef.npz", "source-16-stale.npz", "notes.txt"):
        (cache / name).write_bytes(b"x")
        os.utime(cache / name, (1_000_000, 1_000_000))  # long ago; corpus-…npz: an earlier version's whole corpus
    path = root / "photo" / "b" / "0.png"
    photo_b = []  # the cache of photo/b in each corpus
    for run in range(1, 6):  # photo/b edited before each load after the first: five corpora, 5 photo/b caches
        if run > 1:
            Image.new("RGB", (24, 24), (run, 0, 0)).save(path)
            os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + run * 10**9))
        if run == 5:
            (cache / "source-16-fresh.npz").write_bytes(b"x")  # another run's, written a moment ago
        assert _load(root, cache)[3] == (12 if run == 1 else 3)
        c = scan(root, exclude={})
        photo_b += [name for idx, name in dataset._parts(c, 16) if c.source[idx[0]] == "photo/b"]
        if run < 5:
            _age(cache, run)
    left = sorted(p.name for p in cache.iterdir())
    assert "source-16-fresh.npz" in left and "notes.txt" in left
    assert "source-16-stale.npz" not in left and "corpus-16-0123456789abcdef.npz" not in left
    assert len([n for n in left if n.endswith(".json")]) == dataset.KEEP_CACHES == 3
    assert len(set(photo_b)) == 5 and [n in left for n in photo_b] == [False, False, True, True, True]
    assert len([n for n in left if n.startswith("source-")]) == 3 + 3 + 1  # the other sources once


def test_two_corpora_sharing_a_cache_folder_keep_each_others_caches(tmp_path, monkeypatch):
    """One run's clean-up, at the end of its decode, deleted the cache another corpus had just written (with one
    corpus kept here, as with three when four are used at once): that run decoded everything again next time."""
    monkeypatch.setattr(dataset, "KEEP_CACHES", 1)
    one = corpus(tmp_path / "one", LAYOUT)
    two = corpus(tmp_path / "two", {"xray": {"e": 20}, "photo": {"f": 20}})
    cache = tmp_path / "cache"
    assert _load(one, cache)[3] == 12

    def one_meanwhile(message):
        if message == "decoded 24/40":
            assert _load(one, cache)[3] == 0  # read while two is decoding: its clean-up runs then

    load_images(scan(two), 16, cache, log=one_meanwhile)
    assert _load(two, cache)[3] == 0 and _load(one, cache)[3] == 0


def test_a_shared_cache_that_cannot_be_written_is_read_and_the_rest_decoded(tmp_path, monkeypatch):
    """A cache folder another user wrote: marking a cache as used and writing one fail. The caches there are
    read, the changed source decoded and not cached, with a word, and the run goes on."""
    root = corpus(tmp_path / "data", LAYOUT)
    cache = tmp_path / "cache"
    expected = _load(root, cache)[:3]

    def refused(*args, **kw):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(dataset.os, "utime", refused)
    monkeypatch.setattr(dataset.os, "replace", refused)
    x, wh, bad, n = _load(root, cache)
    assert n == 0 and np.array_equal(x, expected[0])
    shutil.copyfile(root / "xray" / "a" / "1.png", root / "xray" / "a" / "0.png")
    said: list[str] = []
    x, _, _ = load_images(scan(root, exclude={}), 16, cache, log=said.append)
    assert "decoded 3/3" in said and any(m.startswith("decoded sources are not cached") for m in said), said
    paths = scan(root, exclude={}).paths
    assert np.array_equal(x[paths.index("xray/a/0.png")], x[paths.index("xray/a/1.png")])
    assert not list(cache.glob("*.tmp.*"))


# --- exclude.csv -----------------------------------------------------------------------------------------------------


def test_an_exclude_file_with_a_path_column_only_leaves_its_files_out_and_says_so(tmp_path):
    """A list of paths under the header `path` was passed over, silently, as the data's own file."""
    root = corpus(tmp_path / "data", LAYOUT)
    (root / "exclude.csv").write_text("path\nphoto/b/0.png\nxray/a/1.png\n\n")
    said: list[str] = []
    c = scan(root, log=said.append)
    assert "photo/b/0.png" not in c.paths and "xray/a/1.png" not in c.paths and len(c.paths) == 10
    assert ("exclude.csv has a path column and no reason: its 2 rows are read as files to leave out (reason "
            "'listed in exclude.csv')") in said, said
    assert dataset.corpus_excluded(root)["photo/b/0.png"] == "listed in exclude.csv"


@pytest.mark.parametrize("header", ["path, reason", "Path,Reason", " PATH , reason "])
def test_an_exclude_header_with_spaces_or_capitals_is_read_with_its_reasons(tmp_path, header):
    root = corpus(tmp_path / "data", LAYOUT)
    (root / "exclude.csv").write_text(f"{header}\nphoto/b/0.png,a drawing\nxray/a/1.png,\n")
    c = scan(root, log=lambda *_: None)
    assert "photo/b/0.png" not in c.paths and "xray/a/1.png" not in c.paths
    assert {"photo/b/0.png": "a drawing", "xray/a/1.png": "listed in exclude.csv"}.items() <= \
        dataset.corpus_excluded(root).items()


def test_an_exclude_file_that_is_a_data_list_is_passed_over_with_a_word(tmp_path):
    """A file named exclude.csv with the columns of a data list (MANIFEST.csv's path,label,source,license) lists
    every file: read, it would leave the corpus out. It is passed over, as before, and now the log says so."""
    root = corpus(tmp_path / "data", LAYOUT)
    (root / "exclude.csv").write_text("path,label,source,license\nphoto/b/0.png,photo,b,CC0\n")
    said: list[str] = []
    c = scan(root, log=said.append)
    assert len(c.paths) == 12
    assert ("exclude.csv is not read as files to leave out: its header (label, license, path, source) is not "
            "path,reason or path alone, so it reads as the data's own list; nothing is left out by it (to leave files "
            "out, give it a first row path or path,reason)") in said, said


def test_evaluate_leaves_out_a_path_only_exclude_files_paths_and_reads_it_as_settings(tmp_path, tiny_classifier):
    """evaluate leaves out what train leaves out: the files a path-only exclude.csv names, with its reason, and the
    file is the corpus's settings, not an unlabelled file; a data list of that name is listed as one."""
    from medimg.training.evaluate import evaluate_dir

    root = corpus(tmp_path / "data", {"xray": {"a": 2}, "photo": {"b": 2}})
    (root / "exclude.csv").write_text("Path\nxray/a/1.png\n")
    rep = evaluate_dir(root, tiny_classifier)
    assert rep["excluded"] == [{"item": "xray/a/1.png", "why": "listed in exclude.csv"}] and rep["n"] == 3
    assert rep["unlabelled_files"] == []
    (root / "exclude.csv").write_text("path,label,source,license\nxray/a/1.png,xray,a,CC0\n")
    rep = evaluate_dir(root, tiny_classifier)
    assert rep["excluded"] == [] and rep["n"] == 4 and rep["unlabelled_files"] == ["exclude.csv"]


# --- final/assets -----------------------------------------------------------------------------------------------------


def test_a_run_shipped_elsewhere_leaves_no_earlier_model_in_its_own_assets(tmp_path):
    """`medimg train` ships to <out>/final/assets unless --ship says where; a rerun with --ship elsewhere left the
    previous run's model.onnx and labels.json there, beside the new final model, and `--model <out>` named that
    folder as the model this run shipped."""
    torch = pytest.importorskip("torch", reason="needs the train extra (torch)")
    from medimg.model.preprocess import MEAN, STD
    from medimg.training.net import build
    from medimg.training.ship import ship

    final = tmp_path / "runs" / "final"
    final.mkdir(parents=True)
    model = build("r8xs", 2, pretrained=False)
    meta = {"labels": ["photo", "xray"], "medical_labels": ["xray"], "arch": "r8xs", "input_size": 32,
            "mean": list(MEAN), "std": list(STD), "config": {"seed": 2}, "train_sources": {}, "train_seconds": 1.0}
    torch.save({"meta": meta, "model": model.state_dict()}, final / "model.pt")
    own = final / "assets"
    own.mkdir()
    (own / "labels.json").write_text(json.dumps({"name": "medimg-r8xs", "train_config": {"seed": 1}}))
    (own / "model.onnx").write_bytes(b"an earlier run's model")
    (own / "README.txt").write_text("mine")  # the user's: stays
    ship(final, [], tmp_path / "elsewhere", log=lambda *_: None)
    assert json.loads((tmp_path / "elsewhere" / "labels.json").read_text())["train_config"] == {"seed": 2}
    assert sorted(p.name for p in own.iterdir()) == ["README.txt"]
    ship(final, [], own, log=lambda *_: None)  # shipped there: written again
    assert json.loads((own / "labels.json").read_text())["train_config"] == {"seed": 2}
