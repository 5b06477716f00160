"""Examples to try, made at startup from files that ship with installed packages (nothing downloaded)."""

from __future__ import annotations

import io
import logging
import shutil
from pathlib import Path

log = logging.getLogger("medimg.server")


def dicom_test_files() -> Path:
    import pydicom

    return Path(pydicom.__file__).parent / "data" / "test_files"


def photo_files() -> Path:
    import gradio

    return Path(gradio.__file__).parent / "media_assets" / "images"


def make_examples(folder: Path) -> dict[str, list[Path]]:
    """{button name: files}. Missing ingredients leave an example out rather than failing startup."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[Path]] = {}
    scans = [p for p in (dicom_test_files() / "CT_small.dcm", dicom_test_files() / "MR_small.dcm",
                         photo_files() / "lion.jpg", photo_files() / "bus.png") if p.exists()]
    if scans:
        copies = []
        for p in scans:
            shutil.copyfile(p, folder / p.name)
            copies.append(folder / p.name)
        out["scans and photos"] = copies
    try:
        pdf = folder / "report.pdf"
        pdf.write_bytes(_report_pdf())
        out["a PDF report"] = [pdf]
    except Exception as exc:  # an example is a nicety; the server runs without it
        log.warning("could not build the PDF example: %s", exc)
    return out


def _report_pdf() -> bytes:
    """A two-page report with a CT slice, an MR slice and a photo, laid out like a case report."""
    import pymupdf

    from ..sources import ImageItem, open_input

    def png_of(path: Path) -> bytes:
        for item in open_input(path):
            if isinstance(item, ImageItem):
                img = item.image
                if img.mode not in ("L", "RGB"):
                    from ..model.preprocess import to_rgb

                    img = to_rgb(img)
                buf = io.BytesIO()
                img.save(buf, "PNG")
                return buf.getvalue()
        raise ValueError(f"no image in {path.name}")

    ct, mr = png_of(dicom_test_files() / "CT_small.dcm"), png_of(dicom_test_files() / "MR_small.dcm")
    photo = (photo_files() / "tower.jpg").read_bytes()
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((50, 60), "Case report (example)", fontsize=20)
    page.insert_text((50, 90), "Figure 1: CT slice.   Figure 2: the hospital building.", fontsize=11)
    page.insert_image(pymupdf.Rect(50, 110, 290, 350), stream=ct)
    page.insert_image(pymupdf.Rect(310, 110, 550, 350), stream=photo)
    page = doc.new_page(width=595, height=842)
    page.insert_text((50, 60), "Follow-up", fontsize=16)
    page.insert_image(pymupdf.Rect(50, 90, 330, 370), stream=mr)
    data = doc.tobytes()
    doc.close()
    return data
