"""Costs of session 42's additions (review s42_perf): `training.dataset.scan` resolves links folder by folder, not
by an os.path.realpath of every file (which walks every part of every path: on ../shared/data it doubled the
scan's CPU time and took 4x its wall time), with the same files kept through links as before; and --all-frames
hashes a frame of a few MB from one copy of its pixels, not two."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from medimg.training import dataset
from medimg.training.dataset import scan


def _corpus(root, layout, n):
    for label, source in layout:
        folder = root / label / source
        folder.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((8, 8, 3), (i % 250, 60, 90), np.uint8)).save(folder / f"{i}.png")
    return root


def test_scan_resolves_each_folder_once_not_each_file(tmp_path, monkeypatch):
    root = _corpus(tmp_path / "c", [("ct", "a"), ("ct", "b"), ("photo", "c"), ("photo", "d")], n=40)
    os.symlink("a", root / "ct" / "a-copy")  # a linked folder: its 40 files are the same files
    os.symlink(root / "photo" / "c" / "0.png", root / "ct" / "b" / "zz.png")  # a linked file
    calls = []
    real = os.path.realpath
    monkeypatch.setattr(dataset.os.path, "realpath", lambda p, *a, **k: calls.append(p) or real(p, *a, **k))
    said: list[str] = []
    corpus = scan(root, exclude={}, log=said.append)
    assert len(corpus.paths) == 160  # a-copy's 40 and zz.png are the files they lead to, kept where they lie
    assert "ct/a-copy/0.png" not in corpus.paths and "ct/b/zz.png" not in corpus.paths
    assert any("41 files reached a second way" in s for s in said), said
    # the root, the 5 source folders (the walk's tops, whose real paths the files' folders take since session 46)
    # and the one linked file: not 201 (one a file found). Only the corpus's own paths: a library imported during
    # the scan (nibabel, when no test before has) resolves its own
    ours = [p for p in calls if str(tmp_path) in str(p)]
    assert len(ours) <= 7, ours
    monkeypatch.setattr(dataset.os.path, "realpath", real)
    assert [os.path.realpath(root / p) for p in corpus.paths] == [str((root / p).resolve()) for p in corpus.paths]


def test_real_paths_match_realpath_through_linked_folders_and_files(tmp_path):
    (tmp_path / "x" / "y").mkdir(parents=True)
    (tmp_path / "x" / "y" / "f.png").write_bytes(b"a")
    os.symlink(tmp_path / "x", tmp_path / "lx")
    os.symlink("y/f.png", tmp_path / "x" / "g.png")
    os.symlink(tmp_path / "nowhere.png", tmp_path / "x" / "dead.png")
    paths = [tmp_path / "lx" / "y" / "f.png", tmp_path / "x" / "g.png", tmp_path / "lx" / "g.png",
             tmp_path / "x" / "y" / "f.png", tmp_path / "x" / "dead.png"]
    real, here = dataset._real_paths(paths, tmp_path, os.path.realpath(tmp_path))
    assert real == {p: os.path.realpath(p) for p in paths}
    assert here == {p: os.path.join(os.path.realpath(tmp_path), p.relative_to(tmp_path)) for p in paths}


def _reference(img: Image.Image, as_mode: str) -> bytes:
    import hashlib

    return hashlib.sha256(f"{as_mode} {img.size}".encode() + img.convert(as_mode).tobytes()).digest()


def test_a_frame_of_a_few_mb_is_hashed_whole_without_cutting_strips(monkeypatch):
    """repeats.digest, run on every frame with --all-frames, cut a copy of each frame (crop) before copying it
    again (tobytes): a frame under STRIP_BYTES is hashed from one copy. The digest is the same."""
    from medimg.sources import repeats

    rng = np.random.default_rng(0)
    small = Image.fromarray(rng.integers(0, 255, (300, 400, 3), np.uint8))
    palette = small.quantize(32)
    cut = []
    crop = Image.Image.crop
    monkeypatch.setattr(Image.Image, "crop", lambda self, *a, **k: cut.append(self.size) or crop(self, *a, **k))
    assert repeats.digest(small) == _reference(small, "RGB")
    assert repeats.digest(palette) == _reference(palette, "RGB")
    assert cut == []
    big = Image.fromarray(rng.integers(0, 255, (1200, 1100, 3), np.uint8))  # 5.3 MB as RGBA: hashed in strips
    assert 4 * big.width * big.height > repeats.STRIP_BYTES
    assert repeats.digest(big) == _reference(big, "RGB") and len(cut) > 1
