"""Session 41, real-world images and the model: a model folder's own input normalisation (labels.json's mean and
std) is the one its inputs get, and the shipped model's answers do not depend on the batch an image is in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medimg.model import Classifier

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def _tiny(folder: Path, **meta) -> Path:
    """tinymodel (logits = 20 × each channel's mean input) with `meta` added to its labels.json."""
    import tinymodel

    tinymodel.build(folder, size=16)
    labels = json.loads((folder / "labels.json").read_text())
    (folder / "labels.json").write_text(json.dumps({**labels, **meta}))
    return folder


def test_labels_json_mean_and_std_are_the_ones_the_model_is_fed(tmp_path):
    """A model exported for inputs in 0–1 normalised by its own mean and std (here R − 0.25, G − 0.5, B − 0.75)
    gets them: a mid-grey picture is then red-leaning, and its probabilities are the network's on those inputs.
    medimg fed every model (x − 0.5) / 0.5 whatever its labels.json said: all three logits near 0, a third each."""
    mean, std = [0.25, 0.5, 0.75], [0.5, 0.5, 0.5]
    clf = Classifier.load(_tiny(tmp_path / "m", mean=mean, std=std))
    grey = Image.new("RGB", (40, 30), (128, 128, 128))
    x = (128 / 255 - np.array(mean)) / np.array(std)
    z = 20 * x
    want = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    got = clf.predict(grey)[0]
    assert got.label == "xray"
    assert np.allclose([got.probs[lb] for lb in clf.labels], want, atol=1e-5)
    assert np.allclose(clf.prepare(grey)[:, 0, 0], x, atol=1e-6)


def test_without_mean_and_std_the_input_is_medimgs_own(tmp_path):
    """A labels.json with neither (tinymodel's, older exports) keeps (x − 0.5) / 0.5."""
    clf = Classifier.load(_tiny(tmp_path / "m"))
    x = clf.prepare(Image.new("RGB", (8, 8), (255, 0, 128)))
    assert np.allclose(x[:, 0, 0], [1.0, -1.0, 128 / 255 * 2 - 1], atol=1e-6)


@pytest.mark.parametrize("key, value", [("std", [0.5, 0.0, 0.5]), ("std", [0.5, -1, 0.5]), ("mean", [0.5, 0.5]),
                                        ("mean", "0.5"), ("mean", [0.5, None, 0.5]), ("std", [1, 1, float("nan")]),
                                        ("mean", [True, 0.5, 0.5])])
def test_a_mean_or_std_that_is_not_three_numbers_is_refused(tmp_path, key, value):
    """A std of 0 would make every input inf or NaN, a short list would raise deep in NumPy (json writes and reads
    NaN, so a NaN std can be in a labels.json)."""
    folder = tmp_path / "m"
    _tiny(folder, **{key: value})
    with pytest.raises(ValueError, match=f"its {key} must be three numbers"):
        Classifier.load(folder)


def test_the_shipped_models_say_the_normalisation_they_get():
    """The shipped labels.json files give mean and std, and the classifier uses them (0.5 each)."""
    for name in (None, "fast"):
        clf = Classifier.load(name)
        assert clf.mean == (0.5, 0.5, 0.5) and clf.std == (0.5, 0.5, 0.5)


def test_batching_never_changes_the_shipped_models_answers():
    """Corpus images predicted alone, in batches of 7 and all at once: the same probabilities to the bit, for both
    shipped models (int8 ONNX Runtime kernels could in principle differ with the batch's shape)."""
    files = sorted(DATA.glob("*/*/*.webp"))[::300][:40] if DATA.is_dir() else []
    if len(files) < 20:
        pytest.skip("../shared/data (the corpus) is not here")
    images = [Image.open(f) for f in files]
    for name in (None, "fast"):
        clf = Classifier.load(name)
        x = np.stack([clf.prepare(im) for im in images])
        whole = clf.probabilities_from_array(x)
        for size in (1, 7):
            parts = np.concatenate([clf.probabilities_from_array(x[i:i + size]) for i in range(0, len(x), size)])
            assert np.array_equal(parts, whole), (name, size)
        assert [p.probs for p in clf.predict(images, batch_size=3)] == [p.probs for p in clf.predict(images)]
