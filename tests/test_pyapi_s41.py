"""The Python API as a data scientist uses it in a notebook (s41_pyapi)."""

from __future__ import annotations

import inspect
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import medimg
from medimg import Blob, Prediction, classify

ROOT = Path(__file__).resolve().parents[1]


def _png(side: int = 96) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (side, side, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_an_array_given_to_predict_is_one_item_that_says_image_fromarray(tiny_classifier):
    # classify sends an array to predict ("an image in memory goes to Classifier.predict"); predict took an array
    # given alone for a list of its rows, each refused with "give paths ... to classify": 64 errors for one image
    pixels = np.random.default_rng(1).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    got = tiny_classifier.predict(pixels, errors="return")
    assert len(got) == 1 and isinstance(got[0], TypeError)
    assert "PIL.Image.fromarray(a)" in str(got[0]) and "(64, 80, 3)" in str(got[0])
    with pytest.raises(TypeError, match=r"not an array of pixels .*Image\.fromarray") as raised:
        tiny_classifier.predict(pixels)
    assert "to medimg.pipeline.classify" not in str(raised.value)
    # in a list, an array is refused in its place and the PIL images around it are classified
    both = tiny_classifier.predict([Image.fromarray(pixels), pixels], errors="return")
    assert isinstance(both[0], Prediction) and "Image.fromarray" in str(both[1])


def test_an_open_file_given_to_classify_says_to_give_its_path_or_a_blob(tmp_path, tiny_classifier):
    path = tmp_path / "scan.png"
    path.write_bytes(_png())
    with open(path, "rb") as f:
        with pytest.raises(TypeError, match=r"not an open file; give its path \(f\.name\), or its bytes as "
                                            r"Blob\(origin=name, data=f\.read\(\)\)"):
            classify(f, classifier=tiny_classifier)
        records = list(classify([f, io.BytesIO(path.read_bytes()), str(path)], classifier=tiny_classifier))
    assert [r.ok for r in records] == [False, False, True]
    for rec in records[:2]:  # said only "not a path, URL or Blob: <_io.Buffered... name='…'> (BufferedReader)"
        assert rec.error.endswith("an open file: give its path (f.name), or its bytes as "
                                  "Blob(origin=name, data=f.read())"), rec.error
    with open(path, "rb") as f:  # what the message says works
        assert [r.ok for r in classify([Blob(origin=path.name, data=f.read())], classifier=tiny_classifier)] == [True]


def test_the_readme_names_the_settings_medimg_changes_for_the_whole_process(tmp_path):
    # a notebook that set pydicom to RAISE on invalid values had it turned to IGNORE by its first classify, unsaid
    (tmp_path / "a.png").write_bytes(_png())
    code = ("import pydicom, warnings; from PIL import Image\n"
            "pydicom.config.settings.reading_validation_mode = pydicom.config.RAISE\n"
            "from medimg import open_input\n"
            f"list(open_input({str(tmp_path / 'a.png')!r}))\n"
            "print(pydicom.config.settings.reading_validation_mode == pydicom.config.IGNORE, Image.MAX_IMAGE_PIXELS)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "89478485"]  # Pillow's own: the default cap needs no more (s47)
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert "pydicom's `config.settings.reading_validation_mode` is IGNORE (one set to RAISE is overridden)" in readme
    assert "`Image.MAX_IMAGE_PIXELS` is raised to half of `max_pixels` when that is more than twice it" in readme


def test_every_public_method_and_property_has_a_docstring():
    # help(Record) showed `ok` with no word on what it means (a skipped note is not ok), and so on
    bare = []
    for name in medimg.__all__:
        obj = getattr(medimg, name)
        if not inspect.isclass(obj):
            continue
        for attr, value in vars(obj).items():
            if not attr.startswith("_") and (callable(value) or isinstance(value, property)) \
                    and not inspect.getdoc(value):
                bare.append(f"{name}.{attr}")
    assert bare == []
