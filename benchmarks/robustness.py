"""How the shipped model's answers hold up when corpus images reach it as users deliver them.

    .venv/bin/python benchmarks/robustness.py [--data ../shared/data] [--per-label 20] [--model default] [--keep DIR]

Takes `--per-label` images of each label of the corpus (round robin over its sources, MANIFEST.csv's order) and
writes each as variants: alone on a PDF page; on a PDF figure page (caption, arrows and letters over it); as the
first of three panels of its label side by side in a PDF figure, and the three as one bitmap on a page; in a
screenshot of a grey viewer; as a JPEG at quality 30; downscaled to 128 px and back; rotated 90°; with a 20 % white
border; for the greyscale modalities as a DICOM (with its Modality tag, and as a secondary capture with none, so
the pixels alone decide); for the colour modalities as greyscale; and for X-rays inverted (a negative PNG, and a
MONOCHROME1 DICOM, which a viewer shows as the plain image). All go through `medimg.classify`; per variant it
prints the share whose label stays the plain file's (a PDF: its first image), the share uncertain, and the
medical/non-medical flips (the verdict turned to the other side). `--pixels` also compares the picture the sources
give with the plain file's for the variants that should give it back (DICOMs, PDF pages). The shipped models were
trained on every corpus image, so this measures the change, not unseen sources.

Without the corpus it says so and exits 0.
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from medimg.model.preprocess import to_rgb

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
GREY_LABELS = {"ct", "mri", "xray", "ultrasound"}
COLOUR_LABELS = {"dermoscopy", "endoscopy", "fundus", "histology"}
MODALITY = {"ct": "CT", "mri": "MR", "xray": "DX", "ultrasound": "US"}


def pick(data: Path, per_label: int) -> list[tuple[str, Path]]:
    """(label, path): `per_label` files of each label, taken in turn from each of its sources."""
    by = defaultdict(lambda: defaultdict(list))
    with open(data / "MANIFEST.csv", newline="") as f:
        for row in csv.DictReader(f):
            by[row["label"]][row["path"].split("/")[1]].append(data / row["path"])
    out = []
    for label in sorted(by):
        sources = [files[:: max(1, len(files) // per_label)] for _, files in sorted(by[label].items())]
        chosen = []
        while len(chosen) < per_label and any(sources):
            for files in sources:
                if files and len(chosen) < per_label:
                    chosen.append(files.pop(0))
        out += [(label, p) for p in chosen]
    return out


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def pdf_figure(panels: list[Image.Image], overlay: bool, width: float = 180.0) -> bytes:
    """One page: the panels side by side (each `width` pt wide, at most 540 in all), letters A, B, … and arrows drawn over them when
    `overlay`, and a caption under them."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    width = min(width, 540.0 / len(panels))
    x = 36.0
    bottom = 0.0
    for i, img in enumerate(panels):
        h = width * img.height / img.width
        rect = pymupdf.Rect(x, 72, x + width, 72 + h)
        page.insert_image(rect, stream=png(img))
        if overlay:
            page.insert_text((x + 4, 88), "ABCDEFGH"[i], fontsize=14, color=(1, 1, 0))
            start, end = pymupdf.Point(x + width * 0.8, 72 + h * 0.2), pymupdf.Point(x + width * 0.55, 72 + h * 0.45)
            page.draw_line(start, end, color=(1, 1, 1), width=2)
            page.draw_polyline([end + (8, 0), end, end + (0, -8)], color=(1, 1, 1), width=2)
        bottom = max(bottom, 72 + h)
        x += width + 6
    page.insert_textbox(pymupdf.Rect(36, bottom + 8, 576, bottom + 80),
                        "Figure 2. (A) Representative image of the cohort. Arrow: the finding discussed in the text. "
                        "(B, C) Further cases.", fontsize=9)
    page.insert_textbox(pymupdf.Rect(36, bottom + 90, 576, 760), "Results. " + "The findings were consistent " * 60,
                        fontsize=10)
    out = doc.tobytes()
    doc.close()
    return out


def grid(panels: list[Image.Image], cell: int = 256) -> Image.Image:
    """The panels in one bitmap, each fitted into a `cell` px square side by side, white gutters and a letter on
    each, as a journal's multi-panel figure is often one picture."""
    out = Image.new("RGB", (len(panels) * (cell + 8) + 8, cell + 16), "white")
    d = ImageDraw.Draw(out)
    for i, p in enumerate(panels):
        scale = cell / max(p.size)
        p = p.resize((max(1, round(p.width * scale)), max(1, round(p.height * scale))))
        x, y = 8 + i * (cell + 8) + (cell - p.width) // 2, 8 + (cell - p.height) // 2
        out.paste(p, (x, y))
        d.text((x + 4, y + 2), "ABCDEFGH"[i], fill=(255, 255, 0))
    return out


def screenshot(img: Image.Image) -> Image.Image:
    """The image in a grey viewer window: title bar, toolbar of buttons, a side panel of text, a status line."""
    scale = min(1.0, 700 / max(img.size))
    shown = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))))
    w, h = shown.width + 260, shown.height + 120
    shot = Image.new("RGB", (w, h), (60, 63, 65))
    d = ImageDraw.Draw(shot)
    d.rectangle((0, 0, w, 28), fill=(40, 40, 42))
    d.text((10, 8), "Viewer - study 1234 - series 2", fill=(220, 220, 220))
    d.rectangle((0, 28, w, 64), fill=(80, 83, 86))
    for i in range(10):
        d.rectangle((8 + 34 * i, 34, 36 + 34 * i, 60), fill=(110, 113, 118), outline=(150, 150, 150))
    d.rectangle((w - 240, 64, w, h - 24), fill=(70, 72, 75))
    for i, line in enumerate(["Patient: ANON", "Series: 2", "W: 400 L: 40", "Zoom: 100%", "Slice 12/40",
                              "Notes:", "to be reviewed"]):
        d.text((w - 230, 74 + 18 * i), line, fill=(230, 230, 230))
    shot.paste(shown, (10, 72))
    d.rectangle((0, h - 24, w, h), fill=(40, 40, 42))
    d.text((10, h - 18), "Ready", fill=(200, 200, 200))
    return shot


def dicom(grey: np.ndarray, modality: str | None, invert: bool = False) -> bytes:
    """A DICOM of 8-bit grey pixels: an X-ray/CT/MR/US storage class with `modality`, or a secondary capture
    with no Modality; `invert`: the pixels stored inverted, as MONOCHROME1, which shows them as they were."""
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    sop = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4", "US": "1.2.840.10008.5.1.4.1.1.6.1",
           "DX": "1.2.840.10008.5.1.4.1.1.1.1"}.get(modality or "", "1.2.840.10008.5.1.4.1.1.7")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("x.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    if modality:
        ds.Modality = modality
    ds.Rows, ds.Columns = grey.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if invert else "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = (255 - grey if invert else grey).astype(np.uint8).tobytes()
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def variants(label: str, img: Image.Image, others: list[Image.Image]) -> dict[str, tuple[str, bytes]]:
    """name → (file suffix, bytes) of each variant that applies to an image of `label`."""
    rgb = to_rgb(img)  # transparency on white, as the plain file reaches the model (convert() drops it)
    out = {"pdf_image": (".pdf", pdf_figure([rgb], False)),
           "pdf_figure": (".pdf", pdf_figure([rgb], True)),
           "pdf_panels": (".pdf", pdf_figure([rgb] + others, True)),
           "pdf_one_bitmap": (".pdf", pdf_figure([grid([rgb] + others)], False, 468.0)),
           "screenshot": (".png", png(screenshot(rgb)))}
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=30)
    out["jpeg_q30"] = (".jpg", buf.getvalue())
    small = rgb.copy()
    small.thumbnail((128, 128))
    out["down128_up"] = (".png", png(small.resize(rgb.size, Image.BICUBIC)))
    out["rot90"] = (".png", png(rgb.transpose(Image.Transpose.ROTATE_90)))
    out["border20"] = (".png", png(ImageOps.expand(rgb, (int(rgb.width * 0.2), int(rgb.height * 0.2)),
                                                   fill="white")))
    if label in GREY_LABELS:
        grey = np.asarray(rgb.convert("L"))
        out["dicom"] = (".dcm", dicom(grey, MODALITY[label]))
        out["dicom_sc"] = (".dcm", dicom(grey, None))
    if label in COLOUR_LABELS:
        out["greyscale"] = (".png", png(rgb.convert("L")))
    if label == "xray":
        out["inverted_png"] = (".png", png(ImageOps.invert(rgb.convert("L"))))
        out["dicom_mono1"] = (".dcm", dicom(np.asarray(rgb.convert("L")), None, invert=True))
    return out


def pixels_check(work: Path, chosen, limits) -> dict[str, list[float]]:
    """variant → per image, the mean absolute difference (0–255) between the picture the sources give for it and
    the plain file's picture as it should come back (DICOMs: the grey image; the figure: the first image the PDF
    gives, scaled to the plain file's size)."""
    from medimg import open_input

    def first(path: Path):
        for item in open_input(str(path), limits):
            if getattr(item, "image", None) is not None:
                return item.image
        return None

    diffs = defaultdict(list)
    for i, (label, _) in enumerate(chosen):
        plain = first(work / f"{i:04d}_plain.webp")
        if plain is None:
            continue
        for name in ("dicom", "dicom_sc", "dicom_mono1", "pdf_image", "pdf_figure"):
            path = next(iter(work.glob(f"{i:04d}_{name}.*")), None)
            got = first(path) if path else None
            if path is None:
                continue
            if got is None:
                diffs[name].append(float("nan"))
                continue
            mode = "RGB" if name.startswith("pdf") else "L"
            want = np.asarray(to_rgb(plain).convert(mode), np.float32)
            have = np.asarray(to_rgb(got).convert(mode).resize(plain.size), np.float32)
            diffs[name].append(float(np.abs(want - have).mean()))
    return diffs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--per-label", type=int, default=20)
    ap.add_argument("--model", default=None)
    ap.add_argument("--keep", type=Path, default=None, help="write the variants here and keep them")
    ap.add_argument("--pixels", action="store_true", help="also compare the pictures the sources give")
    ap.add_argument("--rows", type=Path, default=None, help="write every variant's label and verdict as CSV")
    a = ap.parse_args()
    if not (a.data / "MANIFEST.csv").is_file():
        print(f"no corpus at {a.data} (its MANIFEST.csv): nothing to measure")
        return 0
    from medimg import Classifier, Limits, classify

    chosen = pick(a.data, a.per_label)
    work = a.keep or Path(tempfile.mkdtemp(prefix="medimg-robust-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        files = []  # (index, variant, path)
        for i, (label, path) in enumerate(chosen):
            img = Image.open(path)
            img.load()
            same = [p for lb, p in chosen if lb == label and p != path]
            others = [to_rgb(Image.open(same[(i + k) % len(same)])) for k in (1, 2)] if same else []
            plain = work / f"{i:04d}_plain{path.suffix}"
            shutil.copyfile(path, plain)
            files.append((i, "plain", plain))
            for name, (suffix, data) in variants(label, img, others).items():
                out = work / f"{i:04d}_{name}{suffix}"
                out.write_bytes(data)
                files.append((i, name, out))
        clf = Classifier.load(a.model or "default")
        limits = Limits()
        got = defaultdict(list)  # path → records that are images
        for rec in classify([str(p) for _, _, p in files], classifier=clf, limits=limits):
            if rec.ok:
                got[rec.input].append(rec)
        rows = []
        for i, name, path in files:
            recs = got.get(str(path), [])
            # a PDF's first image is its figure's (first) panel; the rest are the other panels
            rec = recs[0] if recs else None
            rows.append({"i": i, "label": chosen[i][0], "source": chosen[i][1].parent.name, "variant": name,
                         "images": len(recs), "pred": rec.label if rec else "", "verdict": rec.verdict if rec else "",
                         "p_medical": round(rec.p_medical, 4) if rec else "",
                         "locator": rec.locator if rec else ""})
        if a.rows:
            with open(a.rows, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
        report(rows)
        if a.pixels:
            for name, vals in pixels_check(work, chosen, limits).items():
                arr = np.asarray(vals)
                print(f"pixels {name}: n={len(arr)} mean |diff| {np.nanmean(arr):.2f}, max {np.nanmax(arr):.2f}, "
                      f"not read {int(np.isnan(arr).sum())}")
    finally:
        if a.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def report(rows: list[dict]) -> None:
    plain = {r["i"]: r for r in rows if r["variant"] == "plain"}
    names = list(dict.fromkeys(r["variant"] for r in rows))
    print(f"{'variant':14} {'n':>4} {'same label':>10} {'uncertain':>9} {'flips':>6} {'no image':>8}")
    for name in names:
        sel = [r for r in rows if r["variant"] == name]
        n = len(sel)
        read = [r for r in sel if r["pred"]]
        same = sum(r["pred"] == plain[r["i"]]["pred"] for r in read)
        unc = sum(r["verdict"] == "uncertain" for r in read)
        flips = sum({r["verdict"], plain[r["i"]]["verdict"]} == {"medical", "non-medical"} for r in read)
        print(f"{name:14} {n:4d} {same / n:10.0%} {unc / n:9.0%} {flips / n:6.0%} {n - len(read):8d}")
    correct = sum(r["pred"] == r["label"] for r in plain.values())
    print(f"labelled as the corpus labels them: {correct} of {len(plain)} plain images")


if __name__ == "__main__":
    sys.exit(main())
