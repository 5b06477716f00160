"""The Python API as a data scientist uses it in a notebook (s44_pyapi)."""

from __future__ import annotations

import io
import os
import typing

import numpy as np
import pytest
from PIL import Image

from medimg import Blob, Classifier, classify, open_input


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (80, 90, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_a_blob_of_a_buffer_the_caller_clears_after_yielding_it_is_still_read(tiny_classifier):
    # uploads gathered into one bytearray, cleared for the next: classify reads ahead on its threads, so the
    # Blob kept the caller's buffer and found it empty (every record "the file is empty"); open_inputs read it
    def uploads():
        buf = bytearray()
        for i in range(6):
            buf += _png(i)
            yield Blob(origin=f"{i}.png", data=buf)
            buf.clear()

    records = list(classify(uploads(), classifier=tiny_classifier, workers=2))
    assert [r.input for r in records] == [f"{i}.png" for i in range(6)]
    assert all(r.ok for r in records), [r.error for r in records]


def test_a_blob_keeps_its_own_bytes_of_a_bytearray():
    buf = bytearray(_png(0))
    blob = Blob(origin="a.png", data=buf)
    buf[:] = b"\0" * len(buf)
    assert type(blob.data) is bytes and blob.data == _png(0)
    view = memoryview(np.frombuffer(_png(1), np.uint8))  # a memoryview of any buffer: its bytes
    assert Blob(origin="b.png", data=view).data == _png(1)


def test_a_path_starting_with_a_tilde_says_it_is_not_expanded(tmp_path):
    # a notebook's classify("~/data/scan.dcm"): "file not found", with no word of why (Python's open() does not
    # expand ~ either, the shell does)
    [item] = open_input("~/no-such-folder-medimg-s44/scan.dcm")
    assert item.error.startswith("file not found; a ~ is not expanded here")
    assert "os.path.expanduser" in item.error
    [item] = open_input(str(tmp_path / "x~.png"))  # a ~ elsewhere in the name says nothing of it
    assert item.error == "file not found"


def test_a_pattern_not_found_says_how_to_expand_it_in_python(tmp_path):
    [item] = open_input(str(tmp_path / "*.dcm"))
    assert "a pattern (* or ?) is not expanded here" in item.error and "glob.glob" in item.error


def test_classifier_load_is_typed_to_take_any_path_like():
    # Classifier.load(PathLike) works, but its hint said str | Path: a type checker refused an os.DirEntry or
    # another path class (classify's own `classifier` takes os.PathLike)
    hint = typing.get_type_hints(Classifier.load)["model_dir"]
    assert os.PathLike[str] in typing.get_args(hint), hint


def test_a_run_checks_its_limits_once_not_once_an_input(tiny_classifier, tmp_path, monkeypatch):
    # the limits' 27 fields were checked again for every input: a run resumed over 100,000 inputs done spent
    # 10-16 s passing over them, 2.5 s once checked once
    from medimg.extract import extract, prepare
    from medimg.sources import base

    calls = []
    check = base.check_limits
    monkeypatch.setattr(base, "check_limits", lambda limits: (calls.append(1), check(limits))[1])
    (tmp_path / "a.png").write_bytes(_png(0))
    inputs = [str(tmp_path / "a.png")] * 200
    assert sum(1 for _ in classify(inputs, classifier=tiny_classifier, skip=lambda origin: True)) == 0
    assert len(calls) <= 3, len(calls)
    calls.clear()
    out = tmp_path / "out"
    folder = prepare(out, False)
    assert sum(1 for _ in extract(inputs, out, folder=folder, passed_over=lambda origin: True)) == 0
    folder.lock.release()
    assert len(calls) <= 3, len(calls)


def test_a_thumbnail_makes_no_full_size_rgb_copy(tiny_classifier, tmp_path, monkeypatch):
    # classify(thumbnails=N) made each thumbnail from to_rgb(image): an RGB copy at full size (310 MB more for
    # one 81 Mpx greyscale PNG, on every reading thread at once)
    ramp = (np.add.outer(np.arange(1500), np.arange(2000)) % 251).astype(np.uint8)
    Image.fromarray(ramp).save(tmp_path / "big.png")
    Image.fromarray(ramp).convert("P").save(tmp_path / "big-palette.png", transparency=0)
    largest = [0]
    convert = Image.Image.convert

    def watched(self, mode=None, *args, **kwargs):
        out = convert(self, mode, *args, **kwargs)
        if out.mode in ("RGB", "RGBA"):
            largest[0] = max(largest[0], out.width * out.height)
        return out

    monkeypatch.setattr(Image.Image, "convert", watched)
    records = list(classify([str(tmp_path / "big.png"), str(tmp_path / "big-palette.png")],
                            classifier=tiny_classifier, thumbnails=64, workers=1))
    assert [r.thumbnail.size for r in records] == [(64, 48), (64, 48)]
    assert largest[0] < 2000 * 1500 // 2, largest[0]  # strips of about levels.STRIP pixels at most


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "1", "LA", "CMYK", "I;16", "F", "P-keyed"])
@pytest.mark.parametrize("size", [(1900, 1300), (50, 3001), (4001, 33), (997, 1013), (40, 30)])
def test_a_thumbnail_has_the_pixels_of_a_full_size_ones(mode, size):
    from medimg.model.preprocess import thumbnail, to_rgb

    grey = Image.fromarray((np.add.outer(np.arange(size[1]) * 3, np.arange(size[0]) * 7) % 256).astype(np.uint8))
    if mode == "I;16":
        im = Image.fromarray(np.asarray(grey).astype(np.uint16) * 200)
    elif mode == "F":
        im = Image.fromarray(np.asarray(grey).astype(np.float32) / 7)
    elif mode == "P-keyed":
        im = grey.convert("P")
        im.info["transparency"] = 0
    else:
        im = grey.convert(mode)
    for side in (16, 128, 400, 5000):
        old = to_rgb(im)
        old.thumbnail((side, side))
        new = thumbnail(im, side)
        assert new.mode == "RGB" and new.size == old.size
        assert np.array_equal(np.asarray(new), np.asarray(old)), (mode, size, side)
