"""Gaps found by mutating session 31's changes: a UTF-16 list with a lone surrogate on standard input, archive
members given by relative names, evaluate's link handling and its "give the folder that holds it" hint, 16-bit
boundaries in extract, an --out folder that cannot be entered, and a labels.json that is not text."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from builders import encode, pattern, zip_bytes
from medimg.cli import app
from medimg.training.evaluate import evaluate_dir
from words import flat

runner = CliRunner()


def _png(seed: int) -> bytes:
    return encode(pattern(seed=seed), "PNG")


def _inputs(out: Path) -> list[str]:
    return [json.loads(line)["input"] for line in out.read_text().splitlines()]


def _image(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (48, 40), (seed * 70 % 256, 30, 90)).save(path)


# ---------------------------------------------------------------- lists


def test_a_lone_surrogate_in_a_utf16_list_on_standard_input_is_that_entry_alone(tmp_path):
    """As from a file: `Get-ChildItem | medimg classify --inputs-from -` read the entries up to the odd name and
    stopped there."""
    bad = b"\x00\xd8"  # a high surrogate with no low one after it, little-endian
    data = "\ufeffa.png\r\nb.png\r\n".encode("utf-16-le") + bad + "x.png\r\nc.png\r\n".encode("utf-16-le")
    code = "import sys; from medimg.lists import open_list; print(ascii(list(open_list('-'))))"
    out = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, cwd=tmp_path, timeout=60,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().strip() == ascii(["a.png", "b.png", "\ufffdx.png", "c.png"])


def test_a_member_given_by_a_relative_name_after_its_folder_in_the_archive_is_done_once(tmp_path, tiny_model_dir,
                                                                                         monkeypatch):
    """`set.zip:x/ set.zip:x/1.png` run in the archive's folder: the holders are compared as the entries' keys
    (absolute paths), in `classify` and in `scale`'s `inside_given`."""
    from medimg.keyset import KeySet
    from medimg.lists import entry_key, inside_given

    inner = zip_bytes({"c.png": _png(3)})
    (tmp_path / "set.zip").write_bytes(zip_bytes({"x/1.png": _png(1), "x/2.png": _png(2), "in.zip": inner}))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "r.jsonl"
    for given in (["set.zip:x/", "set.zip:x/1.png"], ["set.zip:in.zip", "set.zip:in.zip:c.png"]):
        r = runner.invoke(app, ["classify", *given, "--model", str(tiny_model_dir), "--out", str(out)])
        assert r.exit_code == 0, r.output
        got = _inputs(out)
        assert sorted(got) == sorted(set(got)) and len(got) == (2 if "x/" in given[0] else 1), (given, got)
        seen = KeySet()
        seen.add_new([entry_key(e) for e in given])
        assert inside_given(given, seen) == [False, True], given


def test_out_naming_a_page_fragment_that_is_read_by_its_name_is_refused(tmp_path, tiny_model_dir):
    """A figure saved alone (`<figure>…`, no <html>) is a page medimg reads because it is named .html: its name,
    not its first bytes alone, says so, and it is not emptied by `-f jsonl -o scans/figure.html`."""
    scans = tmp_path / "scans"
    scans.mkdir()
    (scans / "a.png").write_bytes(_png(1))
    page = scans / "figure.html"
    page.write_text('<figure><img src="a.png"><figcaption>chest</figcaption></figure>')
    kept = page.read_bytes()
    res = runner.invoke(app, ["classify", str(scans), "--model", str(tiny_model_dir), "-f", "jsonl", "-o", str(page)])
    assert res.exit_code == 2 and "is a file medimg reads (" in flat(res.output), res.output
    assert page.read_bytes() == kept


# ---------------------------------------------------------------- evaluate


def test_a_label_folder_linked_from_elsewhere_is_read_in_name_order_and_is_no_read_error(tmp_path, tiny_classifier):
    """ct/ a link to a folder on another drive is a label folder as any other: read where its name sorts (the
    report lists it before photo/, as when it is a real folder), and not a link "which does not exist"."""
    root = tmp_path / "data"
    for label in ("ct", "photo"):
        _image((root if label == "photo" else tmp_path / "elsewhere") / label / "a.png")
        ((root if label == "photo" else tmp_path / "elsewhere") / label / "notes.txt").write_text("who made this")
    (root / "ct").symlink_to(tmp_path / "elsewhere" / "ct")
    (root / "Photo").symlink_to("photo")  # a twin: noted as skipped, not a read error either
    rep = evaluate_dir(root, tiny_classifier)
    assert rep["n"] == 2 and rep["read_errors"] == []
    assert [s["item"] for s in rep["skipped"]] == [str(root / "Photo"), str(root / "ct" / "notes.txt"),
                                                   str(root / "photo" / "notes.txt")]


def test_a_hidden_link_that_leads_nowhere_is_passed_over_as_hidden_folders_are(tmp_path, tiny_classifier):
    _image(tmp_path / "photo" / "a.png")
    (tmp_path / ".snapshot").symlink_to(tmp_path / "unmounted")
    (tmp_path / "xray").symlink_to(tmp_path / "unmounted" / "xray")
    rep = evaluate_dir(tmp_path, tiny_classifier)
    assert [e["item"] for e in rep["read_errors"]] == [str(tmp_path / "xray")]


def test_a_label_folder_given_as_dot_or_in_another_case_is_told_to_give_the_folder_that_holds_it(
        tmp_path, tiny_classifier, monkeypatch):
    """`cd data/xray; medimg evaluate .` is a label folder given itself as much as data/xray is, and so is
    data/XRay; the folder to give is named whole (data, not `.`'s parent `.`)."""
    _image(tmp_path / "XRay" / "s1" / "a.png")
    hint = f"is itself named after the label xray: evaluate the folder that holds it ({tmp_path})"
    with pytest.raises(ValueError, match="folder 's1' is not a label") as err:
        evaluate_dir(tmp_path / "XRay", tiny_classifier)
    assert hint in str(err.value)
    monkeypatch.chdir(tmp_path / "XRay")
    with pytest.raises(ValueError, match="folder 's1' is not a label") as err:
        evaluate_dir(Path("."), tiny_classifier)
    assert hint in str(err.value)


def test_a_folder_named_after_a_label_that_holds_label_folders_in_another_case_gets_no_hint(tmp_path,
                                                                                             tiny_classifier):
    """photo/ holding CT/ (a label folder, read whatever its case) and Scans/: the folder given is no label
    folder itself, so the error names Scans alone."""
    (tmp_path / "photo" / "CT").mkdir(parents=True)
    (tmp_path / "photo" / "Scans").mkdir()
    with pytest.raises(ValueError, match="folder 'Scans' is not a label") as err:
        evaluate_dir(tmp_path / "photo", tiny_classifier)
    assert "itself named" not in str(err.value)


# ---------------------------------------------------------------- extract


def test_32_bit_integers_reaching_65535_are_kept_as_16_bit(tmp_path):
    """0–65535 is what a 16-bit PNG holds: the brightest value of a 16-bit scan stored as 32-bit is kept, not
    the image made 8-bit grey."""
    ramp = (np.arange(60 * 80).reshape(60, 80) * 13 % 60000).astype(np.int32)
    ramp[0, 0] = 65535
    (tmp_path / "in").mkdir()
    Image.fromarray(ramp).save(tmp_path / "in" / "a.tif")
    out = tmp_path / "out"
    r = runner.invoke(app, ["extract", str(tmp_path / "in"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    with Image.open(out / "000001.png") as got:
        assert got.mode == "I;16" and (np.asarray(got) == ramp).all()


def test_little_endian_16_bit_grey_named_so_is_kept_as_16_bit(tmp_path):
    """Pillow names little-endian 16-bit grey I;16 when it reads it, but a decoder may say I;16L."""
    from medimg.extract import _storable

    ramp = (np.arange(30 * 40).reshape(30, 40) * 41 % 65536).astype("<u2")
    _storable(Image.frombytes("I;16L", (40, 30), ramp.tobytes())).save(tmp_path / "a.png", "PNG")
    with Image.open(tmp_path / "a.png") as got:
        assert got.mode == "I;16" and (np.asarray(got) == ramp).all()


def test_an_image_with_alpha_in_a_mode_png_does_not_store_keeps_its_alpha():
    from medimg.extract import _storable

    img = Image.new("PA", (8, 6))
    img.putpalette([0, 0, 0, 255, 0, 0] * 128)
    img.putdata([(1, 128)] * 48)
    got = _storable(img)
    assert got.mode == "RGBA" and got.getpixel((0, 0)) == (255, 0, 0, 128)


# ---------------------------------------------------------------- the model folder


def test_a_labels_json_that_is_not_text_is_a_clear_value_error(tiny_model_dir, tmp_path):
    """A labels.json overwritten with binary (a PNG saved under that name) raised UnicodeDecodeError."""
    import shutil

    from medimg.model import Classifier

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "labels.json").write_bytes(_png(1))
    with pytest.raises(ValueError, match="is not a model's labels.json: it is not JSON"):
        Classifier.load(folder)
