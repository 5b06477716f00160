"""benchmarks/robustness.py: picks across sources, makes each variant, runs them through classify, and says so
when there is no corpus."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from test_bench_s40 import BENCH, ENV, benchmarks_importable  # noqa: F401 (an autouse fixture)


def corpus(root: Path, files: dict[str, dict[str, int]]) -> Path:
    """A corpus of label/source/N.webp noise images and its MANIFEST.csv."""
    rng = np.random.default_rng(0)
    rows = []
    for label, sources in files.items():
        for source, n in sources.items():
            (root / label / source).mkdir(parents=True)
            for i in range(n):
                path = f"{label}/{source}/{i}.webp"
                Image.fromarray(rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)).save(root / path)
                rows.append({"path": path, "label": label, "source": source, "license": "test"})
    with open(root / "MANIFEST.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "label", "source", "license"])
        w.writeheader()
        w.writerows(rows)
    return root


def test_pick_takes_each_source_in_turn(tmp_path):
    from robustness import pick

    data = corpus(tmp_path, {"xray": {"a": 6, "b": 1, "c": 3}, "photo": {"p": 2}})
    chosen = pick(data, 4)
    assert [p.parent.name for lb, p in chosen if lb == "xray"] == ["a", "b", "c", "a"]
    assert [p.parent.name for lb, p in chosen if lb == "photo"] == ["p", "p"]


def test_variants_of_each_label(tmp_path):
    from robustness import variants

    img = Image.new("RGBA", (90, 70), (0, 0, 0, 0))  # transparent: on white, as the plain file is shown
    xray = variants("xray", img, [])
    assert {"pdf_image", "pdf_figure", "screenshot", "jpeg_q30", "down128_up", "rot90", "border20", "dicom",
            "dicom_sc", "inverted_png", "dicom_mono1"} <= set(xray)
    assert "greyscale" not in xray and "dicom" not in variants("photo", img, [])
    assert "greyscale" in variants("histology", img, [])
    assert xray["pdf_image"][1][:5] == b"%PDF-" and xray["dicom"][1][128:132] == b"DICM"
    import io
    border = Image.open(io.BytesIO(xray["border20"][1]))
    assert border.size == (90 + 2 * 18, 70 + 2 * 14) and border.getpixel((45, 35)) == (255, 255, 255)


def test_runs_on_a_small_corpus(tmp_path):
    data = corpus(tmp_path / "data", {"xray": {"a": 2}, "histology": {"h": 2}, "photo": {"p": 2}})
    rows = tmp_path / "rows.csv"
    done = subprocess.run([sys.executable, "robustness.py", "--data", str(data), "--per-label", "2", "--pixels",
                           "--rows", str(rows)], cwd=BENCH, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    table = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines() if line.strip()}
    assert table["plain"][:2] == ["6", "100%"]
    assert table["dicom_mono1"][0] == "2" and table["greyscale"][0] == "2" and table["rot90"][0] == "6"
    written = list(csv.DictReader(open(rows)))
    assert {r["variant"] for r in written} >= {"pdf_panels", "pdf_one_bitmap", "dicom_sc"}
    assert all(r["pred"] for r in written if r["variant"] != "pdf_panels")
    # a PDF page with the image alone gives the plain picture back
    line = next(line for line in done.stdout.splitlines() if line.startswith("pixels pdf_image"))
    assert "mean |diff| 0.00" in line and "not read 0" in line


def test_without_a_corpus_it_says_so(tmp_path):
    done = subprocess.run([sys.executable, "robustness.py", "--data", str(tmp_path / "none")], cwd=BENCH, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "no corpus" in done.stdout
