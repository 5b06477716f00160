"""`train` as a team with its own small labelled folder would use it (review s48)."""

from __future__ import annotations

import builtins

import pytest

torch = pytest.importorskip("torch", reason="train needs the train extra (torch)")


class _StoppedFile:
    """A file whose writes past `after` bytes raise `stop`, as the CLI's SIGTERM handler (SystemExit 143) or
    Ctrl-C (KeyboardInterrupt) does when the signal comes while torch writes a checkpoint."""

    def __init__(self, f, stop: BaseException, after: int = 65536):
        self.f, self.stop, self.left = f, stop, after

    def write(self, b):
        self.left -= len(b)
        if self.left < 0:
            raise self.stop
        return self.f.write(b)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


@pytest.mark.parametrize("stop", [SystemExit(143), KeyboardInterrupt()])
def test_a_stop_while_a_checkpoint_is_written_ends_the_run_as_that_stop(tmp_path, monkeypatch, stop):
    """torch turns an exception raised in a Python file's write into its own RuntimeError (`unexpected pos …`),
    which the CLI does not take for a stop: a traceback and exit 1, not exit 143 and how to carry on."""
    from medimg.training import train as train_mod

    path = tmp_path / "checkpoint.pt"
    old = {"epoch": 3, "w": torch.zeros(8)}
    train_mod._save(old, path)
    monkeypatch.setattr(train_mod, "open", lambda p, mode: _StoppedFile(builtins.open(p, mode), stop), raising=False)
    with pytest.raises(type(stop)):
        train_mod._save({"epoch": 4, "w": torch.randn(512, 512)}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no part-file left
    assert torch.load(path, weights_only=True)["epoch"] == 3  # the previous one whole


def _corpus(root, n=2):
    import numpy as np
    from PIL import Image

    for lab, srcs in {"ct": ("a", "b"), "photo": ("c", "d")}.items():
        for s in srcs:
            (root / lab / s).mkdir(parents=True)
            for i in range(n):
                v = 40 if lab == "ct" else 200
                Image.fromarray(np.full((64, 64, 3), v + 10 * i, np.uint8)).save(root / lab / s / f"{i}.png")


def test_an_exclude_list_with_a_quote_not_closed_is_refused_naming_its_line(tmp_path):
    """An unclosed quote made csv read every later row into one path that names no file: the files those rows
    list were trained on (and scored by evaluate), with at most a note showing the rows run together."""
    from medimg.training.dataset import CorpusError, scan

    _corpus(tmp_path)
    (tmp_path / "exclude.csv").write_text('path,reason\nct/a/1.png,blurred\n"ct/a/0.png,typo\nct/b/0.png,wrong\n')
    with pytest.raises(CorpusError, match=r"exclude.csv, line 3: a quote"):
        scan(tmp_path)


def test_an_exclude_list_s_quoted_paths_and_rows_that_name_no_file_still_read(tmp_path):
    from medimg.training.dataset import own_excluded, scan

    _corpus(tmp_path)
    (tmp_path / "exclude.csv").write_text('path,reason\n"ct/a/1.png","blurred, cropped"\nct/gone/x.png,gone\n'
                                          'photo/c/0.png,a,b,c\n\n')
    assert own_excluded(tmp_path)[0] == {"ct/a/1.png": "blurred, cropped", "ct/gone/x.png": "gone",
                                         "photo/c/0.png": "a"}
    notes = []
    corpus = scan(tmp_path, log=notes.append)
    assert "ct/a/1.png" not in corpus.paths and "photo/c/0.png" not in corpus.paths and len(corpus.paths) == 6
    assert any("rows that name no image file" in n and "ct/gone/x.png" in n for n in notes)
