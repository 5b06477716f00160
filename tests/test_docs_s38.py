"""What the docs say of session 38's changes is what the code does: the numbers formats.md and server.md state in
words are the code's constants, the examples they quote (media queries, a srcset, a zip's `./` member, a saved
page's %-escaped name, a multi-image OME-TIFF's locators, a cut JPEG's error, a slide scan's locator words, a PIL
image given to classify) come out as shown, and every benchmark script is named in the docs."""

from __future__ import annotations

import importlib
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from builders import image_bytes

ROOT = Path(__file__).resolve().parents[1]


def _doc(name: str) -> str:
    return " ".join((ROOT / name).read_text(encoding="utf-8").split())  # lines joined: a phrase may wrap anywhere


@pytest.mark.parametrize("doc, pattern, module, name", [
    ("docs/formats.md", r"A slide scan\*\* \(a pyramid, generic or OME, over ([\d,]+) px a side", "sources.slide",
     "SCAN_SIDE"),
    ("docs/formats.md", r"An image up to ([\d,]+) px a side is shown whole", "sources.slide", "SCAN_SIDE"),
    ("docs/formats.md", r"around the window of a ([\d,]+) px overview with the most tissue", "sources.czi",
     "OVERVIEW"),
    ("docs/formats.md", r"up to (\d+) µm/px \(72–600 dpi", "sources.pyramid", "MAX_TAG_UM"),
    ("docs/formats.md", r"first ([\d,]+) `\.mhd` and `\.nhdr` headers", "sources.files", "MAX_FOLDER_HEADERS"),
    ("docs/formats.md", r"past (\d+) different crops of one picture", "sources.office", "_MAX_VIEWS"),
    ("docs/formats.md", r"stored in \(for up to ([\d,]+) frames\)", "sources.dicom_middle", "MAX_FRAMES_READ"),
    ("docs/formats.md", r"With fewer than (\d+) levels", "levels", "WIDENED_LEVELS"),
    ("docs/formats.md", r"PET, NM, SPECT, OCT → medical\): weight (\d+);", "model.priors", "WEIGHT"),
    ("docs/formats.md", r"weight \d+; (\d+) in a Secondary Capture object", "model.priors", "SECONDARY_WEIGHT"),
    ("docs/server.md", r"and ([\d,]+) more are kept for connections", "server.app", "SPARE_FILES"),
])
def test_the_numbers_the_docs_state_in_words_are_the_codes(doc, pattern, module, name):
    said = re.search(pattern, _doc(doc))
    assert said, pattern
    assert float(said.group(1).replace(",", "")) == getattr(importlib.import_module(f"medimg.{module}"), name)


def test_the_secondary_capture_classes_formats_md_names_are_the_ones_weighed_less():
    from medimg.model.priors import SECONDARY_CAPTURE

    said = re.search(r"storage class ([\d.]+), and its multi-frame kinds \.7\.1–\.7\.4\)", _doc("docs/formats.md"))
    assert said
    assert SECONDARY_CAPTURE == {said.group(1), *(f"{said.group(1)}.{k}" for k in range(1, 5))}


def test_the_open_files_server_md_counts_are_what_serve_raises_its_limit_to():
    from medimg.server.api import WAITING_PER_JOB
    from medimg.server.app import SPARE_FILES, open_files_needed
    from medimg.server.config import ServerConfig

    said = re.search(r"\((\d+) requests of (\d+) files per job slot: ([\d,]+) for the (\d+) slots, and ([\d,]+) more",
                     _doc("docs/server.md"))
    per_slot, files, total, slots, spare = (int(g.replace(",", "")) for g in said.groups())
    config = ServerConfig()
    assert (per_slot, files, slots, spare) == (WAITING_PER_JOB + 2, config.max_files, config.max_jobs, SPARE_FILES)
    assert total == per_slot * files * slots and open_files_needed(config) == total + spare


def test_the_media_queries_formats_md_calls_unknown_hold_for_nothing():
    from medimg.sources.media import media_matches

    said = re.search(r"a feature Chromium does not know \((.*?)\) or a value a feature does not take \((.*?)\) is "
                     r"unknown, which holds for nothing, `not` or not", _doc("docs/formats.md"))
    queries = re.findall(r"`([^`]+)`", said.group(1) + said.group(2))
    assert len(queries) == 4
    for query in queries:
        assert not media_matches(query) and not media_matches(f"not {query}"), query
    assert media_matches("(hover: hover)") and not media_matches("not (hover: hover)")  # known ones still work


def test_a_srcset_of_half_density_shows_src_as_formats_md_says(tmp_path):
    from medimg.sources import ImageItem, open_input

    said = re.search(r"\(`srcset=\"(\S+) (\S+)\"` shows `src`\)", _doc("docs/formats.md"))
    thumb, density = said.groups()
    (tmp_path / thumb).write_bytes(image_bytes("JPEG", size=(32, 24)))
    (tmp_path / "full.png").write_bytes(image_bytes("PNG", size=(96, 80)))
    (tmp_path / "p.html").write_text(f'<img srcset="{thumb} {density}" src="full.png">')
    [item] = list(open_input(str(tmp_path / "p.html")))
    assert isinstance(item, ImageItem) and item.locator == "img #1 full.png", item


def test_a_zip_member_under_a_dot_folder_is_named_as_formats_md_says(tmp_path):
    from medimg.sources import ImageItem, open_input

    member, named = re.search(r"\(`(\./[\w.]+)`, as bsdtar and Windows' `tar\.exe` write a zip of `\.`, is `(a\.zip:"
                              r"[\w.]+)`\)", _doc("docs/formats.md")).groups()
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as z:
        z.writestr(member, image_bytes("PNG"))
    [item] = list(open_input(str(tmp_path / "a.zip")))
    assert isinstance(item, ImageItem) and item.origin == str(tmp_path / named), item.origin


def test_a_percent_escaped_latin1_name_reads_as_formats_md_says(tmp_path):
    from medimg.sources import ImageItem, open_input

    ref, on_disk, locator = re.search(r"`(caf%E9\.png)` reads the Latin-1 file `(caf\\xe9\.png)` \(its locator `(img "
                                      r"#1 caf\\udce9\.png)` in JSON", _doc("docs/formats.md")).groups()
    with open(bytes(tmp_path) + b"/" + on_disk.encode().decode("unicode_escape").encode("latin-1"), "wb") as f:
        f.write(image_bytes("PNG", size=(96, 80)))
    (tmp_path / "p.html").write_text(f'<img src="{ref}">')
    [item] = list(open_input(str(tmp_path / "p.html")))
    assert isinstance(item, ImageItem), item
    assert json.dumps(item.locator) == f'"{locator}"'


def test_the_multi_image_ome_tiff_locators_formats_md_shows(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    from medimg.sources import ImageItem, open_input

    text = _doc("docs/formats.md")
    locator = re.search(r"its locator starting with the image's name \(`([^`]+)`", text).group(1)
    name, z, nz = re.fullmatch(r"(.+), z (\d+) of (\d+)", locator).groups()
    assert "(`label image`, `macro image`" in text
    rng = np.random.default_rng(0)
    path = tmp_path / "plate.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as tw:
        for well in ("Well A1", name):
            tw.write(rng.integers(0, 4000, (int(nz), 2, 32, 32), dtype=np.uint16), metadata={"axes": "ZCYX",
                                                                                           "Name": well})
        tw.write(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8), photometric="rgb",
                 metadata={"axes": "YXS", "Name": "label image"})
    items = list(open_input(str(path)))
    assert [i.locator for i in items if isinstance(i, ImageItem)] == [f"Well A1, z {z} of {nz}", locator]
    [label] = [i for i in items if not isinstance(i, ImageItem)]
    assert label.skipped and label.locator == "label image", label


def test_a_slide_scan_s_locator_words_are_the_ones_formats_md_shows():
    from medimg.sources.slide import FIELD, field_words

    text = _doc("docs/formats.md")
    assert f"a {FIELD} px field at about 1 µm/px around the window of a 1024 px overview" in text
    assert "(`tissue field 512 µm wide`; `tissue field at 1/4 scale` when the file does not say its pixel size" in text
    assert field_words(1024, 0.5) == "tissue field 512 µm wide"
    assert field_words(2048, None) == "tissue field at 1/4 scale"


def test_a_jpeg_cut_before_a_marker_is_the_error_formats_md_quotes():
    from medimg.sources import ItemError, open_input
    from medimg.sources import Blob

    quoted = re.search(r"is that error too \(`([^`]+)`\)", _doc("docs/formats.md")).group(1)
    pixels = np.random.default_rng(1).integers(0, 255, (192, 256, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    cut = data[: len(data) * 6 // 10] + b"\xff\xd9"  # an end marker written after the cut
    [item] = list(open_input(Blob("c.jpg", cut, name="c.jpg")))
    assert isinstance(item, ItemError) and quoted in item.error, item


def test_an_image_in_memory_given_to_classify_says_it_goes_to_predict_as_the_readme_says():
    from medimg import classify

    assert "An image in memory (a PIL image, an array) goes to `predict`: given alone it raises, and in a list its " \
           "record's error says so" in _doc("README.md")
    with pytest.raises(TypeError, match="Classifier.predict"):
        classify(Image.new("RGB", (8, 8)))
    [record] = list(classify([Image.new("RGB", (8, 8))]))
    assert "Classifier.predict" in record.error


def test_every_benchmark_is_named_in_the_docs():
    text = "".join((ROOT / name).read_text(encoding="utf-8") for name in ("README.md", "docs/benchmarks.md",
                                                                           "docs/cli.md"))
    missing = [p.name for p in sorted((ROOT / "benchmarks").glob("bench_*.py")) if p.name not in text]
    assert not missing


@pytest.mark.parametrize("module, names", [
    ("sources.slide", ["tissue_field"]),
    ("sources.pyramid", ["is_scan", "um_per_px", "read"]),
    ("sources.files", ["headers_naming", "data_file_names", "open_capped"]),
    ("server.app", ["more_open_files"]),
])
def test_the_functions_architecture_md_names_exist(module, names):
    text = _doc("docs/architecture.md")
    found = importlib.import_module(f"medimg.{module}")
    for name in names:
        assert f"`{name}`" in text or f"`files.{name}`" in text, name
        assert callable(getattr(found, name, None)), f"{module}.{name}"
