"""Sanity check outside the corpus: sample images that ship inside PyPI wheels, labelled by hand.

    .venv/bin/python benchmarks/wild_check.py [--out DIR] [--model fast|DIR] [--json] [--pages]

Builds DIR/<label>/<source>/<file> from the sample images inside the scikit-image and scikit-learn wheels
and three slices of the MNI152 T1 brain template in nilearn's (the wheels are fetched with `pip download
--no-deps` into DIR, nothing is installed), the sample images of matplotlib and Gradio and the clinical
images among pydicom's test DICOM files (those importable here), then scores the model on it with
`medimg evaluate`'s code and lists every miss. About 45 images from sources the corpus does not have: too
few for a precise number, enough to see which kinds of image fool the model. Never used to train.

--pages also lays out every one of those images as the figure of a journal page with PyMuPDF (real fonts, a
caption, two columns of text), renders the page at 72 dpi and scores the renders: the product counts a page
screenshot as a graphic, whatever its figure shows, so all should come out graphic (non-medical).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

# scikit-image/data/<file> → label. Left out: phantom.png (a simulated CT phantom: a drawing of a CT),
# text.png (ambiguous: text photographed), the chessboards' duplicates and non-image files.
SKIMAGE = {
    "astronaut.png": "photo", "brick.png": "photo", "camera.png": "photo", "chelsea.png": "photo",
    "clock_motion.png": "photo", "coffee.png": "photo", "coins.png": "photo", "grass.png": "photo",
    "gravel.png": "photo", "hubble_deep_field.jpg": "photo", "moon.png": "photo", "rocket.jpg": "photo",
    "motorcycle_left.png": "photo", "chessboard_RGB.png": "graphic", "color.png": "graphic",
    "horse.png": "graphic", "logo.png": "graphic", "page.png": "document",
    "cell.png": "histology",  # light microscopy of a cell (the corpus' microscopy label)
    "ihc.png": "histology", "microaneurysms.png": "fundus", "retina.jpg": "fundus",
}
# wheel → {path inside it: label}; .nii.gz volumes give three orthogonal middle slices
WHEELS = {
    "scikit-image": {f"skimage/data/{name}": label for name, label in SKIMAGE.items()},
    "scikit-learn": {"sklearn/datasets/images/china.jpg": "photo", "sklearn/datasets/images/flower.jpg": "photo"},
    "nilearn": {"nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz": "mri"},
}
# installed package → [(path inside it, label)]
PACKAGES = {
    "matplotlib": [("mpl-data/sample_data/grace_hopper.jpg", "photo"), ("mpl-data/sample_data/logo2.png", "graphic"),
                   ("mpl-data/sample_data/Minduka_Present_Blue_Pack.png", "photo"),
                   ("mpl-data/sample_data/s1045.ima.gz", "mri")],
    "gradio": [("media_assets/images/cheetah.jpg", "photo"), ("media_assets/images/lion.jpg", "photo"),
               ("media_assets/images/tower.jpg", "photo"), ("media_assets/images/hf-logo_transpng.png", "graphic")],
    # distinct clinical images only (pydicom stores one MR slice in many encodings)
    "pydicom": [("data/test_files/693_J2KI.dcm", "ct"), ("data/test_files/CT_small.dcm", "ct"),
                ("data/test_files/J2K_pixelrep_mismatch.dcm", "ct"), ("data/test_files/MR_small.dcm", "mri"),
                ("data/test_files/examples_overlay.dcm", "mri"), ("data/test_files/examples_jpeg2k.dcm", "ultrasound"),
                ("data/test_files/examples_palette.dcm", "ultrasound"),
                ("data/test_files/examples_rgb_color.dcm", "ultrasound")],
}


def fetch_wheel(dist: str, files: dict[str, str], dest: Path, work: Path) -> int:
    """Copy labelled files out of a wheel (downloaded, not installed)."""
    pattern = dist.replace("-", "_") + "-*.whl"
    if not sorted(work.glob(pattern)):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                        "-d", str(work), dist], check=True)
    n = 0
    with zipfile.ZipFile(sorted(work.glob(pattern))[-1]) as z:
        for rel, label in files.items():
            target = dest / label / dist / Path(rel).name
            target.parent.mkdir(parents=True, exist_ok=True)
            if rel.endswith(".nii.gz"):
                for axis, img in enumerate(nifti_slices(gzip.decompress(z.read(rel)))):
                    img.save(target.parent / f"{Path(rel).name[:-7]}-axis{axis}.png")
                    n += 1
            else:
                target.write_bytes(z.read(rel))
                n += 1
    return n


def to_8bit(arr: np.ndarray) -> Image.Image:
    arr = arr.astype(np.float64)
    hi = np.percentile(arr, 99.5)
    return Image.fromarray((np.clip(arr / max(hi, 1e-6), 0, 1) * 255).astype(np.uint8))


def nifti_slices(raw: bytes) -> list[Image.Image]:
    """The middle slice along each axis of a 3-D NIfTI-1 volume, as radiology viewers show them."""
    dims = np.frombuffer(raw, "<i2", 8, 40)
    codes = {2: "u1", 4: "<i2", 8: "<i4", 16: "<f4", 64: "<f8", 512: "<u2"}
    dtype = codes[int(np.frombuffer(raw, "<i2", 1, 70)[0])]
    offset = int(np.frombuffer(raw, "<f4", 1, 108)[0])
    shape = tuple(int(d) for d in dims[1:4])
    vol = np.frombuffer(raw, dtype, int(np.prod(shape)), offset).reshape(shape, order="F")
    x, y, z = (s // 2 for s in shape)
    return [to_8bit(np.rot90(s)) for s in (vol[:, :, z], vol[:, y, :], vol[x, :, :])]


def mri_from_ima(raw: bytes) -> Image.Image:
    """matplotlib's s1045.ima: a 256×256 big-endian uint16 MR slice."""
    return to_8bit(np.frombuffer(raw, ">u2").reshape(256, 256))


def copy_package_files(dest: Path) -> tuple[int, list[str]]:
    n, missing = 0, []
    for pkg, files in PACKAGES.items():
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            missing.append(pkg)
            continue
        root = Path(list(spec.submodule_search_locations)[0])
        for rel, label in files:
            src = root / rel
            if not src.is_file():
                missing.append(f"{pkg}/{rel}")
                continue
            target = dest / label / pkg / src.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if src.suffix == ".gz":
                mri_from_ima(gzip.decompress(src.read_bytes())).save(target.with_suffix(".png"))
            else:
                shutil.copyfile(src, target)
            n += 1
    return n, missing


WORDS = ("the of and patient imaging results figure method study clinical were with shown in analysis data model "
         "cohort baseline follow-up lesion contrast protocol scanner reader agreement sensitivity").split()


def figure_pages(images: Path, dest: Path, seed: int = 7) -> int:
    """Each image of the set as the figure of a rendered journal page, in dest/graphic/figure-pages/."""
    import io
    import random

    import pymupdf as fitz

    from medimg.sources import ImageItem, open_input

    rng = random.Random(seed)
    out = dest / "graphic" / "figure-pages"
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for path in sorted(p for p in images.rglob("*") if p.is_file()):
        item = next(iter(open_input(path)), None)  # DICOM too, as the classifier sees it
        if not isinstance(item, ImageItem):
            continue
        im = item.image.convert("RGB") if item.image.mode not in ("L", "RGB") else item.image
        w, h = im.size
        png = io.BytesIO()
        im.save(png, "PNG")
        doc = fitz.open()
        page = doc.new_page(width=595, height=842)  # A4 in points
        text = lambda k: " ".join(rng.choice(WORDS) for _ in range(k)).capitalize() + "."
        page.insert_textbox(fitz.Rect(50, 40, 545, 70), text(8), fontsize=14, fontname="hebo")
        fw = rng.uniform(0.45, 0.9) * 495
        fh = min(fw * h / w, 330)
        fw = fh * w / h
        top = rng.uniform(90, 400)
        box = fitz.Rect(50 + (495 - fw) / 2, top, 50 + (495 + fw) / 2, top + fh)
        page.insert_image(box, stream=png.getvalue())
        page.insert_textbox(fitz.Rect(50, box.y1 + 6, 545, box.y1 + 40), "Figure 2. " + text(16), fontsize=8,
                            fontname="helv")
        for col in range(2):  # two columns of body text above and below the figure, as much as fits
            x0 = 50 + col * 255
            for rect in (fitz.Rect(x0, 75, x0 + 240, top - 8), fitz.Rect(x0, box.y1 + 44, x0 + 240, 800)):
                k = 40
                while k > 0 and page.insert_textbox(rect, " ".join(text(12) for _ in range(k)), fontsize=8,
                                                    fontname="tiro") < 0:  # nothing is written when it overflows
                    k -= 2
        page.get_pixmap(dpi=72).save(out / f"{path.parent.parent.name}-{path.stem}.png")
        doc.close()
        n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="Folder to build the set in (default: a temp folder).")
    ap.add_argument("--model", default=None, help="fast, or a model folder (default: the shipped model).")
    ap.add_argument("--json", action="store_true", help="Print the evaluation as one JSON object.")
    ap.add_argument("--pages", action="store_true", help="Also score every image laid out on a rendered journal page.")
    args = ap.parse_args()

    from medimg.model import Classifier
    from medimg.training.evaluate import evaluate_dir

    root = args.out or Path(tempfile.mkdtemp(prefix="medimg-wild-"))
    images = root / "images"
    if images.exists():
        shutil.rmtree(images)
    images.mkdir(parents=True)
    n_wheels = sum(fetch_wheel(dist, files, images, root) for dist, files in WHEELS.items())
    n_pkg, missing = copy_package_files(images)
    clf = Classifier.load(args.model) if args.model else None
    rep = evaluate_dir(images, clf)
    pages = None
    if args.pages:
        if (root / "pages").exists():
            shutil.rmtree(root / "pages")
        figure_pages(images, root / "pages")
        pages = evaluate_dir(root / "pages", clf)
    if args.json:
        print(json.dumps(rep | ({"figure_pages": pages} if pages else {})))
        return
    print(f"{n_wheels + n_pkg} images ({n_wheels} from downloaded wheels, {n_pkg} from installed packages); "
          f"missing: {missing or 'none'}")
    print(f"model {rep['model'].get('name')} {rep['model'].get('version')}: n={rep['n']} binary accuracy "
          f"{rep['binary_accuracy']} label accuracy {rep['label_accuracy']} ECE {rep['ece']} "
          f"uncertain {rep['verdicts']['uncertain']} read errors {len(rep['read_errors'])}")
    for e in rep["errors"]:
        item = Path(e["item"].split(" [")[0])
        print(f"  {item.parent.parent.name}/{item.parent.name}/{item.name}: {e['true']} → {e['predicted']} "
              f"(confidence {e['confidence']}, p_medical {e['p_medical']})")
    for e in rep["read_errors"]:
        print("  read error:", e)
    if pages:
        print(f"figure pages: n={pages['n']} non-medical {pages['binary_accuracy']} graphic {pages['label_accuracy']} "
              f"uncertain {pages['verdicts']['uncertain']}")
        for e in pages["errors"]:
            print(f"  {Path(e['item'].split(' [')[0]).name}: {e['predicted']} (p_medical {e['p_medical']})")


if __name__ == "__main__":
    main()
