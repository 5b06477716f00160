"""The pipeline: streaming, batching, order, errors, thresholds — on a tiny transparent model."""

import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medimg.model import Classifier, verdict_for
from medimg.pipeline import RECORD_FIELDS, Record, classify, summarize
from medimg.sources import Blob, Limits
from webserver import WebServer
from medimg.model.preprocess import STRIP, resize_rgb, to_rgb
from medimg.model.priors import VOLUME_SIDE, format_prior


def png(color, size=(40, 30), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, "PNG")
    return buf.getvalue()


RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def test_records_come_in_input_order_across_batches(tiny_classifier):
    blobs = [
        Blob("a.png", png(RED)),
        Blob("b.png", png(GREEN)),
        Blob("broken.png", png(BLUE)[:40]),
        Blob("c.png", png(BLUE)),
        Blob("notes.txt", b"just some text, not an image"),
        Blob("d.png", png(RED, (10, 70))),
    ]
    recs = list(classify(blobs, classifier=tiny_classifier, batch_size=2))
    assert [r.input for r in recs] == ["a.png", "b.png", "broken.png", "c.png", "notes.txt", "d.png"]
    assert [r.label for r in recs] == ["xray", "photo", None, "graphic", None, "xray"]
    assert recs[2].error and recs[4].error
    assert recs[5].width == 10 and recs[5].height == 70
    assert recs[0].medical is True and recs[1].medical is False
    assert recs[0].verdict == "medical" and recs[1].verdict == "non-medical"
    assert abs(sum(recs[0].probs.values()) - 1) < 1e-5
    assert recs[0].p_medical == pytest.approx(recs[0].probs["xray"], abs=1e-5)


def test_confidence_is_the_probability_of_the_label(tiny_classifier):
    (rec,) = classify([Blob("g.png", png((40, 200, 40)))], classifier=tiny_classifier)
    assert rec.label == "photo"
    assert rec.confidence == pytest.approx(max(rec.probs.values()), abs=1e-6)
    assert 0.5 < rec.confidence <= 1.0


def test_threshold_makes_uncertain_and_relabel_needs_no_model(tiny_classifier):
    # equal red and green: p_medical near 0.5 → uncertain at the default threshold
    (rec,) = classify([Blob("mix.png", png((200, 200, 0)))], classifier=tiny_classifier, threshold=0.8)
    assert rec.verdict == "uncertain"
    assert rec.relabel(0.5) in ("medical", "non-medical")
    assert Record(input="x", locator="").relabel(0.7) is None


def test_verdict_for_is_symmetric():
    assert verdict_for(0.95, 0.9) == "medical"
    assert verdict_for(0.05, 0.9) == "non-medical"
    assert verdict_for(0.5, 0.9) == "uncertain"
    assert verdict_for(0.3, 0.3) == "non-medical"  # a threshold below 0.5 is read as 1 − t


def test_alpha_is_composited_on_white(tiny_classifier):
    # fully transparent red is white on screen: equal channels, so never confidently "xray"
    (rec,) = classify([Blob("clear.png", png((255, 0, 0, 0), mode="RGBA"))], classifier=tiny_classifier)
    assert rec.verdict == "uncertain"


def test_to_dict_has_the_public_fields(tiny_classifier):
    (rec,) = classify([Blob("a.png", png(RED))], classifier=tiny_classifier)
    d = rec.to_dict()
    assert list(d) == RECORD_FIELDS
    full = rec.to_dict(full=True)
    assert full["format"] == "PNG" and "probs" in full


def test_thumbnails_are_bounded(tiny_classifier):
    (rec,) = classify([Blob("big.png", png(RED, (900, 300)))], classifier=tiny_classifier, thumbnails=128)
    assert rec.thumbnail is not None and max(rec.thumbnail.size) == 128


def test_summary_counts(tiny_classifier):
    recs = list(classify([Blob("a.png", png(RED)), Blob("b.png", png(GREEN)), Blob("x", b"")],
                         classifier=tiny_classifier))
    s = summarize(recs)
    assert s["images"] == 2 and s["errors"] == 1
    assert s["verdicts"] == {"medical": 1, "non-medical": 1}


def test_stopping_early_does_not_hang(tiny_classifier):
    blobs = (Blob(f"{i}.png", png(RED)) for i in range(500))
    before = threading.active_count()
    gen = classify(blobs, classifier=tiny_classifier, batch_size=4)
    first = next(gen)
    gen.close()
    assert first.label == "xray"
    for t in threading.enumerate():
        if t.name.startswith(("medimg-extract", "medimg-inputs")):  # this pipeline's threads
            t.join(5)
            assert not t.is_alive(), t.name
    assert threading.active_count() <= before  # (threads of earlier tests may have ended meanwhile)


def test_on_item_sees_every_record(tiny_classifier):
    seen = []
    recs = list(classify([Blob("a.png", png(RED)), Blob("b", b"??")], classifier=tiny_classifier,
                         on_item=seen.append))
    assert seen == recs


def test_pixel_cap_reaches_the_record(tiny_classifier):
    (rec,) = classify([Blob("big.png", png(RED, (300, 300)))], classifier=tiny_classifier,
                      limits=Limits(max_pixels=10_000))
    assert rec.error and "pixel" in rec.error.lower()


def test_dicom_modality_tag_is_evidence(tiny_classifier):
    from medimg.model.priors import apply_prior, dicom_prior

    labels, med = tiny_classifier.labels, tiny_classifier.medical_labels
    assert dicom_prior({"Modality": "SC"}, labels, med) is None
    assert dicom_prior({}, labels, med) is None
    prior = dicom_prior({"Modality": "CR"}, labels, med)
    post = apply_prior(np.array([0.1, 0.6, 0.3]), prior)
    assert post.argmax() == labels.index("xray") and abs(post.sum() - 1) < 1e-9
    # a tag for a label this model lacks still says "medical"
    pet = dicom_prior({"Modality": "PT"}, labels, med)
    assert pet is not None and pet[labels.index("xray")] > pet[labels.index("photo")]
    ct = dicom_prior({"Modality": "CT"}, labels, med)  # no ct label in the tiny model: still medical
    assert ct[labels.index("xray")] > ct[labels.index("photo")]



def test_dicom_modality_codes_new_and_retired_name_their_label():
    """Dermoscopy (DMS) and bone densitometry ultrasound (BDUS) are current codes; old archives hold retired
    ones (EC echocardiography, MA MR angiography, CF cinefluorography, DM digital microscopy); SPECT (ST) and
    OCT are medical without a label of their own; external-camera photos (XC) may show anything."""
    from medimg.model.priors import dicom_evidence

    labels = ["xray", "ct", "mri", "ultrasound", "histology", "dermoscopy", "photo", "graphic"]
    med = set(labels[:6])
    for code, label in (("DMS", "dermoscopy"), ("BDUS", "ultrasound"), ("EC", "ultrasound"), ("MA", "mri"),
                        ("CF", "xray"), ("DM", "histology")):
        prior, said = dicom_evidence({"Modality": code}, labels, med)
        assert labels[prior.argmax()] == label and said == f"DICOM Modality {code}", code
    for code in ("ST", "OCT"):
        prior, _ = dicom_evidence({"Modality": code}, labels, med)
        assert all(prior[labels.index(lb)] > 1 for lb in med) and prior[labels.index("photo")] == 1, code
    assert dicom_evidence({"Modality": "XC"}, labels, med) == (None, "")


@pytest.mark.parametrize("code, label", [("CF", "xray"), ("VF", "xray"), ("DS", "xray"), ("EC", "ultrasound"),
                                         ("CD", "ultrasound"), ("DD", "ultrasound"), ("MA", "mri"), ("MS", "mri"),
                                         ("DM", "histology")])
def test_every_retired_modality_code_names_its_label(code, label):
    """Each retired code the s32 change added, not only a sample of them (mutation round s32_mut2)."""
    from medimg.model.priors import dicom_evidence

    labels = ["xray", "ct", "mri", "ultrasound", "histology", "dermoscopy", "photo", "graphic"]
    prior, said = dicom_evidence({"Modality": code}, labels, set(labels[:6]))
    assert labels[prior.argmax()] == label and said == f"DICOM Modality {code}"


def test_a_storage_class_for_one_kind_of_image_outweighs_the_pixels(tiny_classifier):
    """An MR Image Storage object holds an MR image whatever its pixels look like (a 16 px test slice the
    model calls a photo); a secondary capture tagged MR gets the Modality's smaller weight; a DICOS (luggage
    CT) object tagged CT gets none."""
    from medimg.model.priors import SECONDARY_WEIGHT, SOP_WEIGHT, WEIGHT, apply_prior, dicom_evidence

    labels, med = tiny_classifier.labels, tiny_classifier.medical_labels
    looks_like_photo = np.full(len(labels), 0.001)
    looks_like_photo[labels.index("photo")] = 1.0
    looks_like_photo /= looks_like_photo.sum()
    cr_storage = {"Modality": "CR", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.1", "SOPClass": "CR Image Storage"}
    prior, said = dicom_evidence(cr_storage, labels, med)
    post = apply_prior(looks_like_photo, prior)
    assert said == "DICOM CR Image Storage" and prior.max() == SOP_WEIGHT
    assert labels[post.argmax()] == "xray" and post.max() > 0.9
    secondary = {"Modality": "CR", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.7"}
    prior, said = dicom_evidence(secondary, labels, med)
    assert said == "DICOM Modality CR" and prior.max() == SECONDARY_WEIGHT < WEIGHT
    assert labels[apply_prior(looks_like_photo, prior).argmax()] == "photo"  # 10x does not beat 1000:1
    prior, said = dicom_evidence({"Modality": "CR"}, labels, med)  # no storage class (an old ACR-NEMA file)
    assert said == "DICOM Modality CR" and prior.max() == WEIGHT
    luggage = {"Modality": "CT", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.501.1"}
    assert dicom_evidence(luggage, labels, med) == (None, "")
    pet = {"Modality": "PT", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.128"}  # medical, no label of its own
    prior, _ = dicom_evidence(pet, labels, med)
    assert all(prior[labels.index(lb)] == SOP_WEIGHT for lb in med)


def test_microscope_formats_are_evidence(tiny_classifier, tmp_path):
    """An MRC map is written only by electron microscopes: the record says medical, and why; a plain TIFF
    of the same pixels gets no such help."""
    mrcfile = pytest.importorskip("mrcfile")
    from medimg.model.priors import format_prior

    labels, med = tiny_classifier.labels, tiny_classifier.medical_labels
    assert format_prior("TIFF", labels, med) is None and format_prior(None, labels, med) is None
    assert format_prior("WSI (aperio)", labels, med) is not None and format_prior("OME-TIFF", labels, med) is not None
    assert format_prior("ImageJ TIFF", labels, med) is None  # ImageJ saves any scientific image
    for volume in ("NIfTI", "MINC", "NRRD", "MetaImage"):  # medical volumes: every medical label weighted up
        prior = format_prior(volume, labels, med, {"dims": [64, 64, 20]})
        assert prior is not None and all(prior[labels.index(lb)] > 1 for lb in med)
        assert all(prior[labels.index(lb)] == 1 for lb in labels if lb not in med)
    for flat in ([640, 480], [640, 480, 3], [640, 480, 1]):  # a 2-D NRRD or MetaImage file may hold anything
        assert format_prior("NRRD", labels, med, {"dims": flat}) is None
        assert format_prior("MetaImage", labels, med, {"dims": flat}) is None
    assert format_prior("NIfTI", labels, med, {"dims": [64, 64]}) is not None  # NIfTI is medical imaging's own
    grey = (np.random.default_rng(0).normal(size=(64, 64)) * 20 + 128).astype(np.float32)
    with mrcfile.new(tmp_path / "em.mrc") as m:
        m.set_data(grey)
    Image.fromarray(grey.astype(np.uint8)).save(tmp_path / "em.tif")
    em, tif = classify([str(tmp_path / "em.mrc"), str(tmp_path / "em.tif")], classifier=tiny_classifier)
    assert em.metadata["evidence"] == "image + file format MRC" and em.medical and em.verdict == "medical"
    assert "evidence" not in (tif.metadata or {}) and tif.verdict != "medical"


def test_a_record_comes_out_while_the_next_input_is_awaited(tiny_classifier, tmp_path):
    """A part batch does not wait for more images while the inputs are slow to come: a caller that sends the
    next input only after the answer to the last (a queue consumer, a chat) is not stuck."""
    import threading
    import time

    for i in range(2):
        Image.new("RGB", (80, 60), (200, 40 * i, 0)).save(tmp_path / f"{i}.png")
    answered = threading.Event()

    def inputs():
        yield str(tmp_path / "0.png")
        answered.wait(20)  # the next input only after the first answer
        yield str(tmp_path / "1.png")

    records = classify(inputs(), classifier=tiny_classifier)
    start = time.monotonic()
    first = next(records)
    assert first.input.endswith("0.png") and first.ok and time.monotonic() - start < 5
    answered.set()
    assert [r.input[-5:] for r in records] == ["1.png"]


def test_a_nifti_volume_is_medical_evidence(tiny_classifier, tmp_path):
    """A NIfTI slice of grey noise: medical because of the format; the same pixels as a PNG are not."""
    import nibabel as nib

    grey = (np.random.default_rng(1).normal(size=(64, 64, 5)) * 20 + 128).astype(np.int16)
    nib.save(nib.Nifti1Image(grey, np.eye(4)), tmp_path / "head.nii.gz")
    Image.fromarray(grey[:, :, 2].astype(np.uint8)).save(tmp_path / "head.png")
    vol, png = classify([str(tmp_path / "head.nii.gz"), str(tmp_path / "head.png")], classifier=tiny_classifier)
    assert vol.metadata["evidence"] == "image + file format NIfTI" and vol.verdict == "medical"
    assert "evidence" not in (png.metadata or {}) and png.verdict != "medical"


def test_dicom_files_get_the_modality_prior(tiny_classifier, tmp_path):
    import pydicom
    from builders import dicom_file

    ds = pydicom.dcmread(dicom_file("CT_small.dcm"))
    results = {}
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # a secondary capture
    for modality in ("CR", "SC"):
        ds.Modality = modality
        path = tmp_path / f"{modality}.dcm"
        ds.save_as(path)
        (rec,) = classify([str(path)], classifier=tiny_classifier)
        results[modality] = rec
    # grey pixels: the image alone is uncertain; the CR tag makes it an X-ray
    assert results["SC"].verdict == "uncertain" and "evidence" not in results["SC"].metadata
    assert results["CR"].label == "xray" and results["CR"].verdict == "medical"
    assert "DICOM Modality CR" in results["CR"].metadata["evidence"]
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # CR Image Storage
    ds.Modality = "SC"  # a wrong tag: the storage class still says what the pixels are
    ds.save_as(tmp_path / "cr.dcm")
    (rec,) = classify([str(tmp_path / "cr.dcm")], classifier=tiny_classifier)
    assert rec.label == "xray" and rec.confidence > 0.99
    assert rec.metadata["evidence"] == "image + DICOM Computed Radiography Image Storage"


def test_classify_decodes_big_jpegs_small_but_reports_their_size(tiny_classifier):
    from builders import image_bytes

    data = image_bytes("JPEG", (3000, 2000), quality=90)
    fast, = classify([Blob("big.jpg", data)], classifier=tiny_classifier)
    full, = classify([Blob("big.jpg", data)], classifier=tiny_classifier, limits=Limits(decode_side=0))
    assert (fast.width, fast.height) == (full.width, full.height) == (3000, 2000)
    assert fast.label == full.label
    assert max(abs(fast.probs[k] - full.probs[k]) for k in full.probs) < 0.02


def test_the_models_idle_threads_sleep_and_leave_the_cores_to_decoding(tiny_classifier):
    from medimg.model import Classifier

    for clf in (tiny_classifier, Classifier.load(None)):
        entry = clf.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")
        assert entry == "0"


# ---------------------------------------------------------------- several inputs at once

@pytest.fixture
def test_plugins(monkeypatch):
    """Register sources for one test only."""
    from medimg.sources import registry

    monkeypatch.setattr(registry, "_PLUGINS", list(registry.plugins()))
    return registry.register


def test_a_folder_comes_back_in_order_whatever_the_workers(tiny_classifier, tmp_path):
    colours = [RED, GREEN, BLUE]
    for i in range(40):  # sizes vary, so files finish decoding out of order
        sub = tmp_path / f"d{i % 3}"
        sub.mkdir(exist_ok=True)
        (sub / f"{i:02d}.png").write_bytes(png(colours[i % 3], (20 + 37 * (i % 7), 30 + 11 * (i % 5))))
    (tmp_path / "d1" / "notes.txt").write_text("not an image")
    runs = {w: [(r.input, r.label, r.width, r.error) for r in
                classify([str(tmp_path), Blob("x.png", png(GREEN))], classifier=tiny_classifier,
                         batch_size=4, workers=w)]
            for w in (1, 3)}
    assert runs[1] == runs[3]
    names = [Path(i).name for i, *_ in runs[1]]
    assert names == sorted(names[:-1], key=lambda n: (int(n[:2]) % 3 if n[0].isdigit() else 1, n)) + ["x.png"]
    assert len(runs[1]) == 42 and sum(e is not None for *_, e in runs[1]) == 1


def test_each_record_names_the_input_it_came_from(tiny_classifier, tmp_path):
    """`source` is what the caller gave: the folder for its files, the zip for its members, the blob's origin."""
    (tmp_path / "d").mkdir()
    for name in ("a.png", "b.png"):
        (tmp_path / "d" / name).write_bytes(png(RED))
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as zf:
        zf.writestr("in/c.png", png(BLUE))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    given = [str(tmp_path / "d"), str(tmp_path / "z.zip"), Blob("upload.png", png(GREEN)), tmp_path / "broken.png"]
    got = [(r.input.rsplit("/", 1)[-1], r.source) for r in classify(given, classifier=tiny_classifier, workers=3)]
    assert got == [("a.png", str(tmp_path / "d")), ("b.png", str(tmp_path / "d")),
                   ("c.png", str(tmp_path / "z.zip")), ("upload.png", "upload.png"),
                   ("broken.png", str(tmp_path / "broken.png"))]


def test_inputs_are_opened_concurrently(tiny_classifier, test_plugins):
    """Two inputs must be open at the same moment for either to pass the barrier."""
    from medimg.sources import ImageItem, ItemError, SourcePlugin

    barrier = threading.Barrier(2, timeout=5)

    def open_meeting(blob, ctx):
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            yield ItemError(blob.origin, "", "opened alone")
            return
        yield ImageItem(blob.origin, "", Image.new("RGB", (8, 8), RED))

    test_plugins(SourcePlugin("meet", lambda head, blob: head.startswith(b"MEET"), open_meeting, priority=0))
    recs = list(classify([Blob("a", b"MEET"), Blob("b", b"MEET")], classifier=tiny_classifier, workers=2))
    assert [(r.input, r.label, r.error) for r in recs] == [("a", "xray", None), ("b", "xray", None)]


@pytest.mark.timeout(60)
def test_a_source_raising_past_exception_fails_its_input_alone(tiny_classifier, test_plugins):
    """A decoder written in Rust panics with pyo3's PanicException, a BaseException: the item (a zip member, or
    the file) gets an error, the rest of the input and the run go on, and no worker thread is lost."""
    from medimg.sources import ImageItem, SourcePlugin

    class Panic(BaseException):
        pass

    def open_panicking(blob, ctx):
        yield ImageItem(blob.origin, "first", Image.new("RGB", (8, 8), RED))
        raise Panic("index out of bounds")

    test_plugins(SourcePlugin("panics", lambda head, blob: head.startswith(b"PANIC"), open_panicking, priority=0))
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("p.bin", b"PANIC")
        zf.writestr("ok.png", png(GREEN))
    blobs = [Blob("a", b"PANIC"), Blob("b", b"PANIC"), Blob("c", b"PANIC"), Blob("z.zip", zipped.getvalue()),
             Blob("g.png", png(GREEN))]
    recs = [(r.input, r.locator, r.ok, r.error) for r in classify(blobs, classifier=tiny_classifier, workers=2)]
    assert [(i, loc, ok) for i, loc, ok, _ in recs] == [
        ("a", "first", True), ("a", "", False), ("b", "first", True), ("b", "", False), ("c", "first", True),
        ("c", "", False), ("z.zip:p.bin", "first", True), ("z.zip:p.bin", "", False), ("z.zip:ok.png", "", True),
        ("g.png", "", True)]
    assert all("could not read: index out of bounds" in e for *_, ok, e in recs if not ok)


def test_inputs_in_flight_are_bounded(tiny_classifier, test_plugins):
    """While the first input's results wait to be read, the threads run ahead at most LOOKAHEAD inputs, and
    the inputs ahead hold at most 4 × batch_size prepared images (plus one each thread has in hand)."""
    from medimg.pipeline import LOOKAHEAD
    from medimg.sources import ImageItem, SourcePlugin

    pulled, opened = [], []

    def open_many(blob, ctx):
        for i in range(3):
            opened.append(blob.origin)
            yield ImageItem(blob.origin, f"#{i}", Image.new("RGB", (8, 8), RED))

    test_plugins(SourcePlugin("many", lambda head, blob: head.startswith(b"MANY"), open_many, priority=0))

    def blobs():
        for i in range(500):
            pulled.append(i)
            yield Blob(f"{i}", b"MANY")

    gen = classify(blobs(), classifier=tiny_classifier, batch_size=2, workers=3)
    first = next(gen)
    deadline = time.monotonic() + 20
    while len(opened) - 3 < 4 * 2 and time.monotonic() < deadline:  # let the threads run ahead as far as they may
        time.sleep(0.05)
    time.sleep(0.5)  # and then some: they must stop there
    ahead, held = len(pulled), len(opened) - 3  # the first input's own are not held back
    gen.close()
    assert first.input == "0"
    assert ahead <= max(LOOKAHEAD, 8 * 3) + 2  # the lanes' window, the one being read and the one being queued
    assert 4 * 2 <= held <= 4 * 2 + 3, held


def test_archive_members_read_ahead_are_bounded_in_bytes(tiny_classifier, monkeypatch):
    """Splitting a zip reads its members; the units read ahead of the one being written and not yet done hold
    at most AHEAD_BYTES between them (here 1 MB: two members of 400 KB), not LOOKAHEAD members. Done ones hold
    their prepared image only (4 × batch_size of them)."""
    import medimg.pipeline as pipeline

    monkeypatch.setattr(pipeline, "AHEAD_BYTES", 2**20, raising=False)
    rng = np.random.default_rng(0)
    member = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (360, 370, 3), dtype=np.uint8)).save(member, "PNG")
    assert 350_000 < len(member.getvalue()) < 450_000
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("m.png", member.getvalue())
    pulled = []

    def blobs():
        for i in range(40):
            pulled.append(i)
            yield Blob(f"{i}.zip", bytes(bytearray(zipped.getvalue())))

    gen = classify(blobs(), classifier=tiny_classifier, batch_size=1, workers=4)
    assert next(gen).input == "0.zip:m.png"
    time.sleep(1.0)
    ahead = len(pulled)
    gen.close()
    assert ahead <= 1 + 4 * 1 + 2 + 2, ahead  # the one written, prepared images, members held, one in hand


def test_a_small_member_counts_the_archive_it_keeps_alive(tiny_classifier, monkeypatch):
    """A Word file's small picture keeps the whole file alive (the member can read a header's data file
    beside it): the look-ahead counts the file once, not the picture's few bytes."""
    import medimg.pipeline as pipeline

    monkeypatch.setattr(pipeline, "AHEAD_BYTES", 2**20)
    rng = np.random.default_rng(0)
    docx = io.BytesIO()
    with zipfile.ZipFile(docx, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document/>")
        zf.writestr("word/embeddings/big.bin", rng.integers(0, 256, 400_000, dtype=np.uint8).tobytes())
        zf.writestr("word/media/image1.png", png(RED))
    pulled = []

    def blobs():
        for i in range(40):
            pulled.append(i)
            yield Blob(f"{i}.docx", bytes(bytearray(docx.getvalue())))  # a copy each (getvalue shares one)

    gen = classify(blobs(), classifier=tiny_classifier, batch_size=1, workers=4)
    first = next(gen)
    assert first.input.startswith("0.docx"), first
    time.sleep(1.0)
    ahead = len(pulled)
    gen.close()
    assert ahead <= 1 + 4 * 1 + 2 + 2, ahead  # the one written, prepared images, files held, one in hand


def test_a_dead_host_does_not_hold_up_the_inputs_after_it(tiny_classifier, test_plugins):
    """Ten inputs that each wait (as a download from a dead host does), five apart: with ten workers all ten
    wait at the same time: the forty images read in between fit in the room ahead (4 × batch_size)."""
    from medimg.sources import ImageItem, ItemError, SourcePlugin

    barrier = threading.Barrier(10, timeout=8)

    def open_waiting(blob, ctx):
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            yield ItemError(blob.origin, "", "waited alone")
            return
        yield ImageItem(blob.origin, "", Image.new("RGB", (8, 8), RED))

    def open_quick(blob, ctx):
        yield ImageItem(blob.origin, "", Image.new("RGB", (8, 8), GREEN))

    test_plugins(SourcePlugin("wait", lambda head, blob: head.startswith(b"WAIT"), open_waiting, priority=0))
    test_plugins(SourcePlugin("quick", lambda head, blob: head.startswith(b"QUICK"), open_quick, priority=0))
    blobs = [Blob(str(i), b"WAIT" if i % 5 == 0 else b"QUICK") for i in range(50)]
    recs = list(classify(blobs, classifier=tiny_classifier, batch_size=16, workers=10))
    assert [r.input for r in recs] == [str(i) for i in range(50)]
    assert [r.error for r in recs] == [None] * 50


def test_the_registry_fills_once_under_concurrent_first_use():
    """Threads that ask for the sources while the first one is still importing them see all of them."""
    import subprocess
    import sys

    code = (
        "import threading\n"
        "from medimg.sources import registry\n"
        "seen = []\n"
        "ts = [threading.Thread(target=lambda: seen.append(len(registry.plugins()))) for _ in range(8)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "print(sorted(set(seen)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    counts = eval(out.stdout)
    assert len(counts) == 1 and counts[0] >= 5, out.stdout


def test_one_path_alone_is_one_input(tiny_classifier, tmp_path):
    p = tmp_path / "xy.png"
    p.write_bytes(png(RED))
    for given in (str(p), p, Blob("up.png", png(RED))):
        (rec,) = classify(given, classifier=tiny_classifier)
        assert rec.ok and rec.label == "xray"


def test_an_input_that_fails_to_split_fails_alone(tiny_classifier, monkeypatch):
    import medimg.pipeline as pipeline

    real = pipeline.one_input_tasks

    def flaky(given, *args, **kwargs):
        if given.origin == "bad.png":
            raise RuntimeError("cannot split")
        return real(given, *args, **kwargs)

    monkeypatch.setattr(pipeline, "one_input_tasks", flaky)
    got = list(classify([Blob("a.png", png(RED)), Blob("bad.png", png(RED)), Blob("c.png", png(BLUE))],
                        classifier=tiny_classifier))
    assert [(r.input, r.ok) for r in got] == [("a.png", True), ("bad.png", False), ("c.png", True)]
    assert "cannot split" in got[1].error


def test_the_callers_own_code_raising_reaches_the_caller(tiny_classifier, tmp_path):
    """An exception in `skip` or in the caller's iterable of inputs is the caller's bug: it comes out of the
    stream where it happened, as raised, after the records before it (it was an "internal error" record
    blamed on the input, and the rest of that folder or zip was silently never read)."""
    (tmp_path / "scans").mkdir()
    for name in ("a.png", "b.png"):
        (tmp_path / "scans" / name).write_bytes(png(RED))
    with zipfile.ZipFile(tmp_path / "set.zip", "w") as z:
        z.writestr("inner.zip", _zip_of({"x.png": png(RED), "y.png": png(BLUE)}))  # split by a worker
        z.writestr("z.png", png(BLUE))
    first = str(tmp_path / "first.png")
    Path(first).write_bytes(png(BLUE))
    before = set(threading.enumerate())  # other tests' threads may still be ending

    for bad in (str(tmp_path / "scans" / "b.png"), f"{tmp_path / 'set.zip'}:inner.zip:y.png"):
        def skip(origin, bad=bad):
            if origin == bad:
                raise KeyError(origin)
            return False
        got = []
        with pytest.raises(KeyError) as raised:
            for rec in classify([first, str(tmp_path / "scans"), str(tmp_path / "set.zip")], skip=skip,
                                classifier=tiny_classifier):
                got.append(rec.input)
        assert raised.value.args == (bad,)
        assert got[0] == first and bad not in got

    def rows():
        yield first
        raise LookupError("no 'path' in row 2")
    got = []
    with pytest.raises(LookupError, match="no 'path' in row 2"):
        for rec in classify(rows(), classifier=tiny_classifier):
            got.append(rec.input)
    assert got == [first] and _threads_end(before)

    from medimg.sources import input_tasks  # without classify, the caller's exception as it is (not wrapped)
    with pytest.raises(ZeroDivisionError):
        list(input_tasks([str(tmp_path / "scans")], skip=lambda origin: 1 / 0))


def _zip_of(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _threads_end(before: set) -> bool:
    """Whether the medimg threads started since `before` end within 5 s."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not [t for t in threading.enumerate() if t.name.startswith("medimg-") and t not in before]:
            return True
        time.sleep(0.05)
    return False


def test_onnxruntime_telemetry_stays_off(tmp_path):
    """onnxruntime 1.32 queues usage events in ~/.cache/Microsoft and sends them to Microsoft's collector (DNS
    lookups even with --offline); medimg turns that off before onnxruntime loads."""
    import subprocess
    import sys

    from medimg.model.classifier import ASSETS

    if not (ASSETS / "labels.json").exists():
        pytest.skip("no shipped model")
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"} | {"HOME": str(tmp_path)}
    code = ("from PIL import Image; from medimg.model import Classifier; "
            "print(Classifier.load().predict([Image.new('RGB', (64, 64))])[0].label)")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / ".cache" / "Microsoft").exists()


def test_a_closed_stream_ends_its_worker_threads_even_while_its_inputs_block(tiny_classifier):
    """A service feeding classify from a queue and closing the stream early: only the thread reading the
    caller's iterator can be left waiting on it; the workers end."""
    import queue as queue_module

    before = {t.ident for t in threading.enumerate()}
    feeds = []
    for _ in range(3):
        q: queue_module.Queue = queue_module.Queue()
        q.put(Blob("a.png", png(RED)))
        feeds.append(q)
        gen = classify(iter(q.get, None), classifier=tiny_classifier, workers=3)
        assert next(gen).input == "a.png"
        gen.close()
    time.sleep(1.0)
    left = [t for t in threading.enumerate() if t.ident not in before]
    assert sorted(t.name for t in left) == ["medimg-inputs"] * 3, [t.name for t in left]
    for q in feeds:
        q.put(None)  # their iterators end, and so do the threads reading them


def test_bad_arguments_raise_before_the_first_record_and_relabel_checks_its_threshold(tiny_classifier):
    with pytest.raises(TypeError):
        classify(b"abc", classifier=tiny_classifier)  # no next(): raised when called
    with pytest.raises(ValueError):
        classify([Blob("a.png", png(RED))], classifier=tiny_classifier, threshold=0.2)
    (rec,) = classify([Blob("a.png", memoryview(png(RED)))], classifier=tiny_classifier)
    assert rec.ok, rec.error  # a memoryview is bytes too
    with pytest.raises(ValueError):
        rec.relabel(0.3)
    assert rec.relabel(0.5) in ("medical", "non-medical")


def test_the_package_says_it_is_typed():
    from importlib.resources import files

    assert files("medimg").joinpath("py.typed").is_file()


def test_the_public_types_name_what_they_hold():
    """No bare dict or os.PathLike in the public signatures and records: a strict type checker (pyright)
    reads those as partly unknown and flags every use (six errors on a ten-line script before)."""
    import typing
    from collections import abc

    from medimg.model import Classifier, Prediction
    from medimg.sources import ImageItem, ItemError, Limits, open_input, open_inputs

    def bare(hint) -> list:
        if hint in (dict, list, tuple, set, os.PathLike, typing.Iterable, typing.Iterator, typing.Callable,
                    abc.Iterable, abc.Iterator, abc.Callable, abc.Mapping):
            return [hint]
        return [b for arg in typing.get_args(hint) for b in bare(arg)]

    for public in (classify, summarize, Record, Record.to_dict, Record.relabel, open_input, open_inputs, ImageItem,
                   ItemError, Limits, Prediction, Classifier.predict, Classifier.info, Classifier.load, Blob):
        hints = typing.get_type_hints(public)
        assert hints, public
        assert {name: bare(h) for name, h in hints.items() if bare(h)} == {}, public


# ---------------------------------------------------------------- arguments checked when called

def test_a_model_name_or_folder_is_loaded_when_called(tiny_classifier, tiny_model_dir):
    for given in (str(tiny_model_dir), tiny_model_dir):
        (rec,) = classify(Blob("a.png", png(RED)), classifier=given)
        assert rec.ok and rec.label == "xray" and set(rec.probs) == set(tiny_classifier.labels)
    with pytest.raises(ValueError, match=r"no model named 'no-such-model', and no folder of that name: give a shipped one \(fast, or the default"):
        classify([Blob("a.png", png(RED))], classifier="no-such-model")
    with pytest.raises(TypeError, match=r"Classifier\.load"):
        classify([Blob("a.png", png(RED))], classifier=3)


def test_limits_may_be_a_dict_of_their_fields(tiny_classifier):
    (rec,) = classify([Blob("big.png", png(RED, (300, 300)))], classifier=tiny_classifier,
                      limits={"max_pixels": 10_000})
    assert rec.error and "pixel" in rec.error.lower()
    with pytest.raises(TypeError, match="no field 'max_pixel'; its fields are .*max_pixels"):
        classify([Blob("a.png", png(RED))], classifier=tiny_classifier, limits={"max_pixel": 10_000})
    with pytest.raises(TypeError, match="a Limits, a dict of its fields"):
        classify([Blob("a.png", png(RED))], classifier=tiny_classifier, limits=[("max_pixels", 10_000)])


@pytest.mark.parametrize("limits, error", [
    ({"max_pixels": "50000000"}, TypeError), ({"total_timeout": None}, TypeError),  # (Limits(...) raises sooner:
    ({"max_pixels": -1}, ValueError), ({"total_timeout": float("nan")}, ValueError),  # test_limits_s39)
    ({"allow_private": "no"}, TypeError), ({"user_agent": 5}, TypeError),
    ({"max_images_per_input": 0.5}, TypeError), ({"max_pdf_pages": 2.7}, TypeError),  # a fraction of a page
    ({"max_pdf_pages": 0}, ValueError), ({"max_images_per_input": 0}, ValueError),  # nothing could be read
])
def test_a_limit_of_the_wrong_kind_raises_when_called(tiny_classifier, limits, error):
    """A whole-number cap takes whole numbers (NumPy's too), and a cap at which nothing is read is refused, as
    the CLI's options refuse them; a float cap (seconds) takes any number from 0."""
    assert classify([], classifier=tiny_classifier, limits={"max_pdf_pages": np.int64(3), "min_side": 0,
                                                            "total_timeout": 2.5, "max_redirects": 0}) is not None
    with pytest.raises(error, match=r"limits\.\w+ must be"):
        classify([Blob("a.png", png(RED))], classifier=tiny_classifier, limits=limits)
    assert classify([], classifier=tiny_classifier, limits=Limits(decode_side=None, total_timeout=5)) is not None


@pytest.mark.parametrize("arguments, error, says", [
    (dict(workers=0), ValueError, "workers must be a whole number ≥ 1"),
    (dict(workers=-1), ValueError, "workers must be a whole number ≥ 1"),
    (dict(workers=1.5), TypeError, "workers must be a whole number ≥ 1"),
    (dict(batch_size=0), ValueError, "batch_size must be a whole number ≥ 1"),
    (dict(batch_size=True), TypeError, "batch_size must be a whole number ≥ 1"),
    (dict(thumbnails=-1), ValueError, "thumbnails must be a whole number ≥ 0"),
    (dict(skip="x"), TypeError, "skip must be a function"),
    (dict(on_item=1), TypeError, "on_item must be a function"),
    (dict(cancel=True), TypeError, "cancel must be a threading.Event"),
    (dict(threshold="0.9"), TypeError, "threshold must be a number between 0.5 and 1"),
])
def test_each_argument_is_checked_when_called(tiny_classifier, arguments, error, says):
    with pytest.raises(error, match=says):
        classify([Blob("a.png", png(RED))], classifier=tiny_classifier, **arguments)  # no next()


def test_inputs_that_are_not_iterable_raise_when_called(tiny_classifier):
    with pytest.raises(TypeError, match="an iterable of them"):
        classify(5, classifier=tiny_classifier)
    with pytest.raises(TypeError, match="not an array of pixels; an image in memory goes to Classifier.predict"):
        classify(np.zeros((48, 64, 3), np.uint8), classifier=tiny_classifier)  # was one error record a row
    (rec,) = classify(np.array(["missing.png"]), classifier=tiny_classifier)  # an array of paths is inputs
    assert rec.input == "missing.png" and rec.error
    with pytest.raises(TypeError, match=r"an array of byte strings: give paths as str \(inputs.astype\(str\)"):
        classify(np.array([b"scans/a.png"]), classifier=tiny_classifier)  # was "not an array of pixels"


def test_the_sources_check_their_arguments_when_called_too(tmp_path):
    """open_input and open_inputs take what classify takes: one path alone is one input (not its characters,
    the first of them "/", the root folder), limits may be a dict, and a bad argument raises at once."""
    from medimg.sources import open_input, open_inputs

    (tmp_path / "a.png").write_bytes(png(RED))
    path = str(tmp_path / "a.png")
    for items in (open_inputs(path), open_inputs(tmp_path / "a.png"), open_input(path, {"max_pixels": 10_000})):
        assert [(type(i).__name__, i.origin) for i in items] == [("ImageItem", path)]
    (over,) = open_inputs([path], {"max_pixels": 100})
    assert "max_pixels" in over.error
    for call, says in [(lambda: open_input(path, {"max_pixel": 1}), "no field 'max_pixel'"),
                       (lambda: open_inputs([path], [("max_pixels", 1)]), "a Limits, a dict of its fields"),
                       (lambda: open_input(None), "one path, URL or Blob: not a path, URL or Blob: None"),
                       (lambda: open_input([path]), "one path, URL or Blob: open_inputs takes several"),
                       (lambda: open_inputs(None), "an iterable of them"),
                       (lambda: open_inputs(b"a.png"), "wrap bytes as Blob")]:
        with pytest.raises(TypeError, match=says):
            call()  # no next()
    (empty,) = open_inputs([""])
    assert empty.error == "an empty path: give a file, folder or URL"


@pytest.mark.parametrize("arguments, says", [
    (dict(origin="a.png", data="text"), "data must be bytes, bytearray or memoryview, not str"),
    (dict(origin="a.png", data=None), "data must be bytes, bytearray or memoryview, not NoneType"),
    (dict(origin=None, data=b"x"), "origin must be a str"),
    (dict(origin=Path("a.png"), data=b"x"), "origin must be a str"),
])
def test_a_blob_checks_its_fields_when_made(arguments, says):
    with pytest.raises(TypeError, match=says):
        Blob(**arguments)
    assert Blob("a.png", bytearray(b"x")).data == b"x"


def test_a_blobs_repr_gives_its_size_not_its_bytes(tiny_classifier):
    """A 2 MB Blob's repr was 5.7 M characters, and so was the TypeError of a mistaken second argument."""
    a, b = Blob("a.dcm", os.urandom(2_000_000)), Blob("b.dcm", os.urandom(2_000_000), name="b.dcm")
    assert repr(a) == "Blob(origin='a.dcm', data=<2,000,000 bytes>)"
    assert repr(b) == "Blob(origin='b.dcm', data=<2,000,000 bytes>, name='b.dcm')"
    with pytest.raises(TypeError, match="Blob.origin='b.dcm', data=<2,000,000 bytes>") as raised:
        classify(a, b)
    assert len(str(raised.value)) < 300


def test_record_methods_check_their_arguments():
    rec = Record(input="x", locator="", p_medical=0.7)
    with pytest.raises(TypeError, match="threshold must be a number"):
        rec.relabel("0.9")
    with pytest.raises(TypeError, match="full must be True or False"):
        rec.to_dict(full="no")
    assert rec.relabel(0.6) == "medical" and "probs" in rec.to_dict(full=True)


def test_predict_runs_the_model_a_batch_at_a_time_and_names_an_image_it_cannot_read(tiny_classifier, monkeypatch):
    """A notebook's 10,000 images: `predict` reads its iterable `batch_size` at a time (memory stays flat; all at
    once took 1.3 GB for 1,000), with the same answers; an image that cannot be read is named by its place."""
    import io

    imgs = [Image.new("RGB", (40 + i, 50), (i * 3, 90, 200 - i)) for i in range(70)]
    whole = tiny_classifier.predict(imgs, batch_size=100)
    sizes, taken = [], []
    real = tiny_classifier.probabilities_from_array
    monkeypatch.setattr(tiny_classifier, "probabilities_from_array", lambda x: sizes.append(len(x)) or real(x))

    def given():
        for i, im in enumerate(imgs):
            taken.append(i)
            yield im
            assert len(taken) - sum(sizes) <= 32  # never more than a batch read ahead of the model

    assert tiny_classifier.predict(given()) == whole and sizes == [32, 32, 6]
    buf = io.BytesIO()
    imgs[0].resize((400, 400)).save(buf, "JPEG")
    broken = Image.open(io.BytesIO(buf.getvalue()[:len(buf.getvalue()) // 2]))  # fails when its pixels are read
    with pytest.raises(OSError) as caught:
        tiny_classifier.predict([imgs[1], imgs[2], broken])
    assert "medimg: the image at index 2 of those given to predict" in caught.value.__notes__
    with pytest.raises(ValueError, match="batch_size must be a whole number of at least 1"):
        tiny_classifier.predict(imgs[:1], batch_size=0)


def test_predict_takes_pil_images_in_hand_one_alone_or_several(tiny_classifier):
    """`Classifier.predict` is the way for images already open (a notebook's): one image alone is one
    prediction, any iterable of them works, and anything else is refused at the call with where to send it."""
    img = Image.new("RGBA", (90, 60), (200, 10, 10, 0))  # transparent: laid on white
    one = tiny_classifier.predict(img)
    many = tiny_classifier.predict(iter([img, Image.new("I;16", (64, 64))]))
    assert len(one) == 1 and len(many) == 2 and one[0] == many[0]
    assert one[0].label in tiny_classifier.labels and 0 <= one[0].p_medical <= 1
    assert 0 < one[0].p_medical < 1 and tiny_classifier.predict(img, threshold=1.0)[0].verdict == "uncertain"
    with pytest.raises(TypeError, match="predict takes PIL images, not str; give paths, URLs and Blob"):
        tiny_classifier.predict(["scan.png"])
    with pytest.raises(ValueError, match="threshold must be a number between 0.5 and 1"):
        tiny_classifier.predict(img, threshold=0.2)
    assert tiny_classifier.predict([]) == []
    for wrong, name in [(None, "NoneType"), (b"\x89PNG", "bytes"), ("scan.png", "str")]:  # None and bytes said
        with pytest.raises(TypeError, match=f"predict takes PIL images, not {name}; give paths, URLs and Blob"):
            tiny_classifier.predict(wrong)  # "'NoneType' object is not iterable" and "not int" before
    with pytest.raises(ValueError, match="an image of 0×50 pixels has nothing to classify"):
        tiny_classifier.predict(Image.new("RGB", (0, 50)))  # was a verdict: document, non-medical
    la = Image.new("LA", (64, 64), (90, 255)).convert("La")  # premultiplied grey: Pillow converts it only to LA
    assert tiny_classifier.predict(la) == tiny_classifier.predict(Image.new("L", (64, 64), 90))


def _label_in_a_process(clf, color):
    return clf.predict(Image.new("RGB", (40, 30), color))[0].label


def test_a_classifier_goes_to_another_process(tiny_model_dir):
    """Pickled (a spawn pool's argument), a Classifier makes its session again from its file (onnxruntime's
    session cannot be pickled: "cannot pickle ... InferenceSession" before), with its threshold as set."""
    import multiprocessing
    import pickle

    from medimg.model import Classifier

    clf = Classifier.load(tiny_model_dir, threads=1)
    clf.threshold = 0.95
    copy = pickle.loads(pickle.dumps(clf))
    assert copy.threshold == 0.95 and copy.threads == 1 and copy.session is not clf.session
    assert copy.predict(Image.new("RGB", (8, 8), RED)) == clf.predict(Image.new("RGB", (8, 8), RED))
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_label_in_a_process, (clf, BLUE)) == "graphic"


def test_a_model_loads_by_the_names_version_gives_and_checks_its_threads(tiny_model_dir):
    from medimg.model import Classifier
    from medimg.model.classifier import ASSETS

    if (ASSETS / "labels.json").exists():
        assert Classifier.load("default").path == Classifier.load().path  # `medimg --version` calls it default
    for threads, error, says in [("2", TypeError, "threads must be a whole number or None, not '2'"),
                                 (2.5, TypeError, "not 2.5"), (-3, ValueError, "at least 1 .or None., not -3")]:
        with pytest.raises(error, match=says):  # onnxruntime's "incompatible function arguments", or taken
            Classifier.load(tiny_model_dir, threads=threads)
    assert Classifier.load(tiny_model_dir, threads=np.int64(1)).labels


def _variant(tiny_model_dir, folder, **meta_changes):
    """The tiny model with other labels.json fields (the same ONNX file)."""
    shutil.copytree(tiny_model_dir, folder)
    meta = json.loads((folder / "labels.json").read_text())
    meta.update(meta_changes)
    (folder / "labels.json").write_text(json.dumps(meta))
    return Classifier.load(folder)


def test_the_models_temperature_softens_its_probabilities(tiny_classifier, tiny_model_dir, tmp_path):
    warm = _variant(tiny_model_dir, tmp_path / "warm", temperature=4.0)
    img = Image.new("RGB", (16, 16), (200, 60, 60))
    z = tiny_classifier.logits(tiny_classifier.prepare(img)[None])[0] / 4.0
    expected = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert warm.probabilities([img])[0] == pytest.approx(expected, abs=1e-6)
    assert warm.predict(img)[0].confidence < tiny_classifier.predict(img)[0].confidence


def test_p_medical_is_the_sum_over_every_medical_label(tiny_model_dir, tmp_path):
    two = _variant(tiny_model_dir, tmp_path / "two", medical_labels=["xray", "photo"])
    (rec,) = classify([Blob("y.png", png((200, 200, 0)))], classifier=two)  # as much xray as photo
    assert rec.p_medical == pytest.approx(rec.probs["xray"] + rec.probs["photo"], abs=1e-6)
    assert rec.p_medical > 0.99 and rec.verdict == "medical"


def test_a_p_medical_exactly_at_the_threshold_is_decided():
    assert verdict_for(0.75, 0.75) == "medical"  # medical at p ≥ t (0.75 and 0.25 are exact in binary)
    assert verdict_for(0.25, 0.75) == "non-medical"  # non-medical at p ≤ 1 − t
    # 1 − t is not exact in floating point (1 − 0.8 < 0.2): these were uncertain
    assert [verdict_for(p, t) for p, t in ((0.2, 0.8), (0.1, 0.9), (0.3, 0.7), (0.4, 0.6))] == ["non-medical"] * 4
    assert [verdict_for(p, t) for p, t in ((0.8, 0.8), (0.9, 0.9), (0.7, 0.7), (0.6, 0.6))] == ["medical"] * 4
    assert verdict_for(0.2000001, 0.8) == verdict_for(0.7999999, 0.8) == "uncertain"


def test_an_image_with_alpha_reaches_the_model_as_the_same_image_without_it_does():
    """A big image that needs flattening is reduced a strip at a time: the model must still see the pixels that
    the plain image gives (wide and tall ones, whose two reduce factors differ)."""
    from medimg.model.preprocess import resize_rgb, to_rgb

    rng = np.random.default_rng(0)
    for shape in ((300, 2000), (2000, 300)):
        arr = rng.integers(0, 256, (*shape, 4), dtype=np.uint8)
        arr[..., 3] = 255
        rgba = Image.fromarray(arr, "RGBA")
        assert np.array_equal(resize_rgb(rgba, 64), resize_rgb(to_rgb(rgba), 64)), shape


def test_an_image_that_cannot_be_prepared_fails_alone_and_its_input_goes_on(tiny_classifier, test_plugins):
    from medimg.sources import ImageItem, SourcePlugin

    noise = Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    buf = io.BytesIO()
    noise.save(buf, "PNG")

    def open_two(blob, ctx):  # the first image's pixels are cut short: they fail when the model's input is made
        yield ImageItem(blob.origin, "first", Image.open(io.BytesIO(buf.getvalue()[:len(buf.getvalue()) // 2])))
        yield ImageItem(blob.origin, "second", Image.new("RGB", (8, 8), GREEN))

    test_plugins(SourcePlugin("two", lambda head, blob: head.startswith(b"TWO"), open_two, priority=0))
    recs = list(classify([Blob("a", b"TWO"), Blob("b.png", png(BLUE))], classifier=tiny_classifier))
    assert [(r.input, r.locator, r.label) for r in recs] == [("a", "first", None), ("a", "second", "photo"),
                                                             ("b.png", "", "graphic")]
    assert recs[0].error.startswith("could not prepare image:")


RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def test_a_big_jpeg_is_decoded_large_enough_for_the_thumbnail_asked(tiny_classifier):
    """A JPEG decoded at a reduced scale (for a 32 px model) still gives the thumbnail size asked for."""
    arr = np.random.default_rng(0).integers(0, 256, (900, 1200, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=85)
    (rec,) = classify([Blob("photo.jpg", buf.getvalue())], classifier=tiny_classifier, thumbnails=256)
    assert (rec.width, rec.height) == (1200, 900)
    assert rec.thumbnail.size == (256, 192)


def test_a_thumbnail_of_an_image_with_alpha_is_rgb_on_white(tiny_classifier):
    """Thumbnails are RGB with transparency laid on white (as the model sees it), so they save as JPEG."""
    rgba = Image.new("RGBA", (80, 60), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 40, 60))
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    (rec,) = classify([Blob("a.png", buf.getvalue())], classifier=tiny_classifier, thumbnails=64)
    assert rec.thumbnail.mode == "RGB"
    assert rec.thumbnail.getpixel((60, 20)) == (255, 255, 255) and rec.thumbnail.getpixel((5, 20)) == (0, 0, 255)


def test_the_summary_counts_passed_over_notes_apart_from_errors(tiny_classifier):
    """summarize: a deliberate skip (a page without images) is counted as skipped, an unreadable file as an error."""
    empty_page = b"<!DOCTYPE html><html><body><p>no pictures</p></body></html>"
    recs = list(classify([Blob("ok.png", png(RED, (80, 80))), Blob("empty.html", empty_page),
                          Blob("bad.png", b"not an image at all")], classifier=tiny_classifier))
    assert [(r.input, r.skipped, r.error is None) for r in recs] == [
        ("ok.png", False, True), ("empty.html", True, False), ("bad.png", False, False)]
    s = summarize(recs)
    assert (s["images"], s["errors"], s["skipped"]) == (1, 1, 1)


def test_closing_the_stream_stops_a_download_in_progress(tiny_classifier):
    """Closing the stream of records (a caller that has what it wants) stops the page's downloads at once: the
    thread reading the page is not left waiting ~100 s on a slow image."""
    before = {t.ident for t in threading.enumerate()}
    with WebServer() as srv:
        srv.add("/first.png", png(RED, (80, 80)), "image/png")
        srv.slow("/slow.png", b"x" * 10_000, interval=0.01)  # ~100 s if read to the end
        url = srv.add("/p.html", '<img src="first.png"><img src="slow.png">')
        gen = classify([url], classifier=tiny_classifier, workers=1,
                       limits=Limits(allow_private=True, read_timeout=60, total_timeout=60))
        first = next(gen)
        deadline = time.monotonic() + 10
        while srv.hits["/slow.png"] < 1 and time.monotonic() < deadline:  # the slow download under way
            time.sleep(0.02)
        assert first.label == "xray" and srv.hits["/slow.png"] == 1
        gen.close()
        for t in [t for t in threading.enumerate() if t.ident not in before and t.name.startswith("medimg-extract")]:
            t.join(5)  # the download stops within STOP_POLL (0.5 s)
            assert not t.is_alive(), "the download went on after the stream was closed"


def test_medical_says_whether_the_label_is_medical_even_when_p_medical_says_otherwise(tiny_model_dir, tmp_path):
    """`medical` goes with the label (docs/cli.md): a photo at 0.41 is not medical though xray + graphic hold 0.59."""
    two = _variant(tiny_model_dir, tmp_path / "two", medical_labels=["xray", "graphic"])
    (pred,) = two.predict(Image.new("RGB", (16, 16), (200, 202, 200)))
    assert pred.label == "photo" and pred.p_medical > 0.5
    assert pred.medical is False


def test_a_very_sharp_temperature_still_gives_probabilities(tiny_model_dir, tmp_path):
    """Logits divided by a tiny temperature run into the thousands: the softmax must not overflow into NaN."""
    sharp = _variant(tiny_model_dir, tmp_path / "sharp", temperature=0.01)
    probs = sharp.probabilities([Image.new("RGB", (16, 16), (255, 0, 0)), Image.new("RGB", (16, 16), (0, 0, 255))])
    assert np.isfinite(probs).all() and np.allclose(probs.sum(axis=1), 1.0)
    assert [sharp.labels[i] for i in probs.argmax(axis=1)] == ["xray", "graphic"]
    (pred,) = sharp.predict(Image.new("RGB", (16, 16), (255, 0, 0)))
    assert pred.verdict == "medical" and pred.confidence > 0.999


def test_the_models_own_threshold_comes_from_its_labels_json(tiny_model_dir, tmp_path):
    """A model shipped with threshold 0.6 decides at 0.6 when no threshold is given (0.706 is medical there)."""
    lenient = _variant(tiny_model_dir, tmp_path / "lenient", threshold=0.6)
    assert lenient.threshold == 0.6 and lenient.info()["threshold"] == 0.6
    (pred,) = lenient.predict(Image.new("RGB", (16, 16), (200, 190, 190)))
    assert round(pred.p_medical, 3) == 0.706 and pred.verdict == "medical"


def test_predict_decides_at_the_threshold_it_is_given(tiny_classifier):
    """predict(threshold=…) overrides the model's own threshold (0.8 for the tiny model)."""
    img = Image.new("RGB", (16, 16), (200, 190, 190))  # p_medical 0.706
    assert tiny_classifier.predict(img)[0].verdict == "uncertain"
    assert tiny_classifier.predict(img, threshold=0.7)[0].verdict == "medical"
    assert tiny_classifier.predict(img, threshold=0.7)[0].p_medical == tiny_classifier.predict(img)[0].p_medical


def test_grey_with_alpha_is_laid_on_white_like_colour_with_alpha():
    """An LA image (a grey PNG with transparency) is composited on white: its see-through black is white."""
    la = Image.new("LA", (64, 64), (0, 0))  # black, fully transparent
    la.paste((90, 255), (0, 0, 32, 64))  # the left half: opaque grey 90
    rgb = to_rgb(la)
    assert rgb.mode == "RGB" and rgb.getpixel((10, 10)) == (90, 90, 90) and rgb.getpixel((50, 10)) == (255, 255, 255)
    small = resize_rgb(la, 32)
    assert (small[:, 20:] == 255).all() and (small[:, :12] == 90).all()


def test_a_big_image_flattened_in_strips_gives_the_pixels_of_the_whole_image():
    """An RGBA image of more than STRIP pixels is flattened and reduced a strip at a time; the model still sees
    the pixels the plain RGB image gives (the strips are a whole number of the reduce factor's rows)."""
    side = 1100
    assert side * side > STRIP and (STRIP // side) % int(side / 64 / 2) != 0  # strips that a factor-8 reduce cuts
    arr = np.random.default_rng(0).integers(0, 256, (side, side, 4), dtype=np.uint8)
    arr[..., 3] = 255
    rgba = Image.fromarray(arr, "RGBA")
    assert np.array_equal(resize_rgb(rgba, 64), resize_rgb(to_rgb(rgba), 64))


def test_a_16bit_grey_image_is_scaled_by_its_percentiles_so_one_hot_pixel_does_not_darken_it():
    """16-bit grey goes to 8 bits between its 0.5 and 99.5 percentiles: one saturated pixel (a marker, a dead
    detector element) does not squeeze the rest of the image into near-black."""
    arr = np.tile(np.linspace(1000, 2000, 200).astype(np.uint16), (200, 1))
    arr[0, 0] = 65535
    grey = Image.fromarray(arr)
    assert grey.mode == "I;16"
    rgb = to_rgb(grey)
    assert rgb.getpixel((0, 100))[0] == 0 and rgb.getpixel((199, 100))[0] == 255
    assert 110 <= rgb.getpixel((100, 100))[0] <= 145


def test_a_volume_of_exactly_volume_side_slices_counts_as_a_volume(tiny_classifier):
    """An NRRD or MetaImage file counts as a medical volume when three axes have at least VOLUME_SIDE samples."""
    labels, med = tiny_classifier.labels, tiny_classifier.medical_labels
    for fmt in ("NRRD", "MetaImage"):
        assert format_prior(fmt, labels, med, {"dims": [64, 64, VOLUME_SIDE]}) is not None, fmt
        assert format_prior(fmt, labels, med, {"dims": [64, 64, VOLUME_SIDE - 1]}) is None, fmt


def test_a_urls_password_is_not_repeated_in_its_error(tiny_classifier):
    """A URL with user:password@ is fetched with them, but its error text shows `***` for the password (it went
    into every output file and onto the page); the input keeps the URL as given, to join results on."""
    with WebServer() as srv:
        url = srv.url("/gone.png").replace("http://", "http://alice:S3cret@")
        (rec,) = classify([url], classifier=tiny_classifier, limits=Limits(allow_private=True))
    assert rec.input == url and rec.error and "S3cret" not in rec.error
    assert "http://alice:***@127.0.0.1" in rec.error, rec.error
    assert Record(input="x", locator="", error="see https://bob:pw@h.org/a and http://h.org/b@c").error == \
        "see https://bob:***@h.org/a and http://h.org/b@c"


def test_a_password_in_a_locator_or_in_any_schemes_url_is_not_repeated():
    """A page's image named with user:password@ keeps `***` in its locator too, and so does any scheme's URL."""
    rec = Record(input="p.html", locator="img #2 http://bob:pw@h.org/x.png", error="ftp://eve:s3@h.org/f gone")
    assert rec.locator == "img #2 http://bob:***@h.org/x.png" and rec.error == "ftp://eve:***@h.org/f gone"


def test_the_public_names_come_from_the_package_itself_and_importing_it_stays_light():
    """`import medimg; medimg.classify(...)` works (the package exposed nothing before), and importing it loads
    no model runtime nor any decoder until a name is used."""
    code = ("import sys, medimg\n"
            "light = not {'onnxruntime', 'PIL', 'numpy', 'medimg.pipeline'} & set(sys.modules)\n"
            "import medimg.pipeline as p, medimg.model as m, medimg.sources as s\n"
            "same = [medimg.classify is p.classify, medimg.Record is p.Record, medimg.Classifier is m.Classifier,\n"
            "        medimg.Prediction is m.Prediction, medimg.Blob is s.Blob, medimg.Limits is s.Limits,\n"
            "        medimg.open_input is s.open_input, medimg.RECORD_FIELDS is p.RECORD_FIELDS]\n"
            "print(light, all(same), 'classify' in dir(medimg), sorted(medimg.__all__) == sorted(\n"
            "    ['__version__', 'classify', 'Record', 'RECORD_FIELDS', 'Classifier', 'Prediction', 'open_input',\n"
            "     'open_inputs', 'Blob', 'Limits', 'ImageItem', 'ItemError']))\n"
            "try:\n    medimg.nothing\nexcept AttributeError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split("\n")[:2] == ["True True True True", "module 'medimg' has no attribute 'nothing'"], \
        done.stdout + done.stderr


def test_predict_names_an_image_it_cannot_read_by_its_place_among_all_given_not_in_its_batch(tiny_classifier):
    """with batch_size 2, the broken image 5 (the third batch's second) is "image 5", as the caller counts;
    a zero-size or non-image is named the same way."""
    imgs = [Image.new("RGB", (40 + i, 50), (i * 3, 90, 200 - i)) for i in range(5)]
    buf = io.BytesIO()
    imgs[0].resize((400, 400)).save(buf, "JPEG")
    broken = Image.open(io.BytesIO(buf.getvalue()[:len(buf.getvalue()) // 2]))  # fails when its pixels are read
    with pytest.raises(OSError) as caught:
        tiny_classifier.predict([*imgs, broken], batch_size=2)
    assert "medimg: the image at index 5 of those given to predict" in caught.value.__notes__
    with pytest.raises(TypeError, match=r"\(image at index 3\)"):
        tiny_classifier.predict([*imgs[:3], "scan.png"], batch_size=2)
    with pytest.raises(ValueError, match=r"\(image at index 4\)"):
        tiny_classifier.predict([*imgs[:4], Image.new("RGB", (0, 5))], batch_size=3)


def test_dicom_modality_codes_and_storage_classes_point_to_their_own_label():
    """Each modality the shipped labels name is reached from its DICOM Modality code (also written in lower
    case, as some exporters do) and from a storage class the standard names for it."""
    from pydicom.uid import UID

    from medimg.model.priors import SOP_WEIGHT, WEIGHT, dicom_evidence

    meta = json.loads((Path(__file__).resolve().parents[1] / "src/medimg/model/assets/labels.json").read_text())
    labels, med = meta["labels"], set(meta["medical_labels"])
    for code, label in [("MG", "xray"), ("DX", "xray"), ("CT", "ct"), ("MR", "mri"), ("US", "ultrasound"),
                        ("SM", "histology"), ("OP", "fundus"), ("ES", "endoscopy"), ("ct", "ct"), (" mr ", "mri")]:
        prior, said = dicom_evidence({"Modality": code}, labels, med)
        assert labels[prior.argmax()] == label and prior.max() == WEIGHT, code
        assert said == f"DICOM Modality {code.strip().upper()}"
    for suffix, words, label in [("1.2", "Mammography", "xray"), ("2", "CT Image", "ct"), ("4", "MR Image", "mri"),
                                 ("6.1", "Ultrasound Image", "ultrasound"), ("77.1.1", "Endoscopic", "endoscopy"),
                                 ("77.1.6", "Whole Slide", "histology"), ("77.1.7", "Dermoscopic", "dermoscopy")]:
        uid = "1.2.840.10008.5.1.4.1.1." + suffix
        assert words in UID(uid).name, (uid, UID(uid).name)
        prior, _ = dicom_evidence({"SOPClassUID": uid, "Modality": "OT"}, labels, med)
        assert labels[prior.argmax()] == label and prior.max() == SOP_WEIGHT, uid


def test_to_rgb_always_gives_a_new_image():
    """The pipeline shrinks to_rgb's result in place for the thumbnail: a plain RGB image must not be handed back
    itself."""
    rgb = Image.new("RGB", (8, 8), (1, 2, 3))
    out = to_rgb(rgb)
    out.paste((9, 9, 9), (0, 0, 8, 8))
    assert out is not rgb and rgb.getpixel((0, 0)) == (1, 2, 3)


def test_16bit_grey_without_spread_is_shown_by_its_extremes_or_the_types_range():
    """A grey page (50000) with a few lines of ink (10000, under 0.5 %): the percentiles meet, so the extremes
    scale it (white page, black ink), not the type's range; a uniform dark 16-bit frame stays dark."""
    arr = np.full((200, 200), 50000, np.uint16)
    arr[100, :100] = 10000
    shown = np.asarray(to_rgb(Image.fromarray(arr)))[..., 0]
    assert shown[0, 0] == 255 and shown[100, 0] == 0
    dark = np.asarray(to_rgb(Image.fromarray(np.full((32, 32), 300, np.uint16))))
    assert dark.max() < 5


def test_a_16bit_colour_key_is_left_out_of_the_grey_scaling():
    """The keyed pixels (value 0, transparent, drawn white) do not pull the 0.5th percentile down to 0: the rest
    (30000..40000) still spans black to white."""
    arr = np.tile(np.linspace(30000, 40000, 100).astype(np.uint16), (100, 1))
    arr[:, :20] = 0
    img = Image.fromarray(arr)
    img.info["transparency"] = 0
    shown = np.asarray(to_rgb(img))[..., 0]
    assert (shown[:, :20] == 255).all() and shown[:, 20:].min() <= 3 and shown[:, 20:].max() == 255


def test_the_model_input_is_normalised_as_the_shipped_models_say():
    """Black is (0 − mean)/std and white (1 − mean)/std for the mean and std the shipped labels.json gives,
    channels first."""
    from medimg.model.preprocess import prepare

    for folder in ("", "fast"):
        meta = json.loads((Path(__file__).resolve().parents[1] / "src/medimg/model/assets" / folder /
                           "labels.json").read_text())
        mean, std = np.array(meta["mean"]), np.array(meta["std"])
        img = Image.new("RGB", (16, 8), (0, 0, 0))
        img.paste((255, 255, 255), (0, 0, 16, 4))  # the top half white
        x = prepare(img, 16)
        assert x.shape == (3, 16, 16)
        assert np.allclose(x[:, 0, 0], (1 - mean) / std) and np.allclose(x[:, -1, -1], (0 - mean) / std)


def test_premultiplied_grey_and_a_palette_with_alpha_are_laid_on_white():
    """An La image (premultiplied grey, as a notebook may hand predict) and a P image whose palette has alpha (an
    RGBA image quantised) are composited on white like the same pixels in LA or RGBA."""
    la = Image.new("LA", (4, 4), (200, 128))
    assert to_rgb(la.convert("La")).getpixel((0, 0)) == to_rgb(la).getpixel((0, 0))
    clear = Image.new("RGBA", (8, 8), (255, 0, 0, 0)).quantize()
    assert clear.mode == "P" and "transparency" not in clear.info
    assert to_rgb(clear).getpixel((0, 0)) == (255, 255, 255)
    assert (resize_rgb(clear, 4) == 255).all()


def test_a_16bit_images_percentiles_come_from_at_most_sample_pixels(monkeypatch):
    """Past SAMPLE pixels the percentiles come from an even grid of at most SAMPLE of them (a float copy of a
    100 Mpx image's every pixel would take 400 MB)."""
    from medimg.model import preprocess

    sizes = []
    real = np.percentile

    def counting(a, *args, **kwargs):
        sizes.append(np.size(a))
        return real(a, *args, **kwargs)

    monkeypatch.setattr(np, "percentile", counting)
    side = 4200  # 17.6 Mpx, just over SAMPLE (16.8 Mpx)
    preprocess._percentiles(Image.new("I;16", (side, side)))
    assert sizes and max(sizes) <= preprocess.SAMPLE


def test_limits_take_no_true_for_a_number_and_numpys_bools_for_a_switch():
    from medimg.sources import as_limits

    with pytest.raises(TypeError, match="limits.max_pixels must be a whole number"):
        as_limits({"max_pixels": True})
    assert as_limits({"allow_private": np.bool_(True)}).allow_private


def test_a_source_plugin_needs_open_or_split():
    from medimg.sources import SourcePlugin

    with pytest.raises(ValueError, match="needs open or split"):
        SourcePlugin("nothing", lambda head, blob: False)


def test_the_documented_limits_are_the_defaults():
    """docs/formats.md's table of limits gives each field's default as Limits has it."""
    import re

    text = (Path(__file__).resolve().parents[1] / "docs/formats.md").read_text()
    table = text[text.index("| field | default | caps |"):]
    table = table[:table.index("\n\n")]
    units = {"MB": 2**20, "GB": 2**30, "px": 1, "s": 1, "": 1}
    seen = set()
    for row in table.splitlines()[2:]:
        names_cell, default_cell = row.split("|")[1:3]
        names = re.findall(r"`(\w+)`", names_cell)
        m = re.fullmatch(r"\s*([\d, ]+?)\s*(MB|GB|px|s|)\s*", default_cell)
        if not m:
            continue  # decode_side: set by classify
        values = [int(v.replace(",", "")) for v in re.split(r",\s(?=\d)", m.group(1))]
        values = values * len(names) if len(values) == 1 else values
        for name, value in zip(names, values):
            assert getattr(Limits(), name) == value * units[m.group(2)], name
            seen.add(name)
    assert {"max_images_per_input", "min_side", "max_depth", "max_input_bytes", "total_timeout"} <= seen


def test_skip_raising_about_a_member_of_a_zip_fetched_by_url_reaches_the_caller(tiny_classifier):
    """A zip fetched by URL is split inside the web source (through the registry, which turns an input's
    exceptions into its errors): the caller's own `skip` raising there still comes out as raised."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.png", png(RED))
        zf.writestr("b.png", png(BLUE))
    with WebServer() as srv:
        srv.add("/z.zip", buf.getvalue(), "application/zip")
        bad = srv.url("/z.zip") + ":b.png"

        def skip(origin):
            if origin == bad:
                raise KeyError(origin)
            return False
        with pytest.raises(KeyError) as raised:
            list(classify([srv.url("/z.zip")], skip=skip, classifier=tiny_classifier,
                          limits=Limits(allow_private=True)))
    assert raised.value.args == (bad,)


def test_a_full_record_with_a_non_finite_number_in_its_metadata_is_strict_json():
    """A NaN or infinity in a header (a damaged pixel spacing) went into `metadata` as it was: the API's JSON
    (allow_nan=False) failed with a 500, and the CLI wrote `NaN`, which strict JSON readers refuse."""
    from medimg.pipeline import Record

    rec = Record("scan.nii", "slice 1 of 3", metadata={"spacing": float("nan"), "zooms": [1.0, float("inf")],
                                                       "frame": {"rate": float("-inf"), "n": 3}})
    d = rec.to_dict(full=True)
    assert d["metadata"] == {"spacing": None, "zooms": [1.0, None], "frame": {"rate": None, "n": 3}}
    json.dumps(d, allow_nan=False)
