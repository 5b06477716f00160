"""A secondary capture's Modality tag is weaker evidence than another object's: it carries its study's modality
whatever it shows. A CT study's dose report (a page of text saved as a secondary capture tagged CT) is not a CT
image; at the Modality's full weight most such pages were uncertain."""

import io
import random

import numpy as np
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medimg import Blob, classify
from medimg.model.classifier import ASSETS

WORDS = ("dose report exam series scan length mGy cm DLP CTDIvol total protocol head body phantom patient "
         "acquisition kV mAs pitch rotation time event description helical axial scout localizer study "
         "accession number date operator station manufacturer model software version comment").split()


def dose_page(i: int, rng: random.Random) -> np.ndarray:
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 60), f"Dose Report {i}", fontsize=18)
    text = "\n\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 120))).capitalize() + "."
                       for _ in range(rng.randint(3, 7)))
    page.insert_textbox(pymupdf.Rect(72, 90, 540, 770), text, fontsize=rng.choice([9, 10, 11, 12]),
                        fontname=rng.choice(["helv", "tiro", "cour"]))
    pix = page.get_pixmap(dpi=rng.choice([50, 72, 100]), colorspace=pymupdf.csGRAY)
    return np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width).copy()


def secondary_capture(pixels: np.ndarray, modality: str, sop: str = "1.2.840.10008.5.1.4.1.1.7") -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("x.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = sop, meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = pixels.tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.skipif(not (ASSETS / "labels.json").exists(), reason="the shipped model is not in the package")
def test_a_dose_report_saved_as_a_secondary_capture_tagged_ct_is_not_medical():
    rng = random.Random(5)
    pages = [dose_page(i, rng) for i in range(8)]
    blobs = [Blob(f"dose{i}.dcm", secondary_capture(p, "CT")) for i, p in enumerate(pages)]
    recs = list(classify(blobs, workers=1))
    assert all(r.ok for r in recs), [r.error for r in recs]
    assert all(r.metadata["evidence"].endswith("DICOM Modality CT") for r in recs)
    assert [r.verdict for r in recs] == ["non-medical"] * 8, [(r.input, r.verdict, r.p_medical) for r in recs]
    # the same page in a CT Image Storage object: that storage class holds CT images, near-certain evidence
    (ct,) = classify([Blob("ct.dcm", secondary_capture(pages[0], "CT", "1.2.840.10008.5.1.4.1.1.2"))])
    assert ct.label == "ct" and ct.verdict == "medical"
