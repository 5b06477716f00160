"""A second reading of session 47's change (s47_diffread2): cut PDFs, `_orphans` on large damaged files, and
warnings of the program's own callbacks."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import builders as b
import numpy as np
import pymupdf
from PIL import Image

from medimg.sources import pdf
from medimg.sources.base import Blob, Context, ImageItem, Limits


def test_a_damaged_pdf_naming_a_high_object_number_is_not_walked_object_by_object(monkeypatch):
    # `_orphans` looked at every number up to the highest object's: a 10 KB file naming object 8,000,000 took 60 s
    # (and gave up, its image not read); only the objects written in the file are looked at now
    data = (b"%PDF-1.4\n1 0 obj <</Type/Catalog>> endobj\n300000 0 obj <</Type/XObject/Subtype/Image/Width 100"
            b"/Height 100/BitsPerComponent 8/ColorSpace/DeviceGray/Length 10000>> stream\n" + bytes(range(100)) * 100
            + b"\nendstream endobj\ntrailer <</Root 1 0 R>>")
    looked = []
    real = pymupdf.Document.xref_get_key
    monkeypatch.setattr(pymupdf.Document, "xref_get_key", lambda d, x, k: looked.append(x) or real(d, x, k))
    items = list(pdf.open_pdf(Blob("x.pdf", data), Context(Limits())))
    assert len(set(looked)) <= 2, len(set(looked))
    assert [i.locator for i in items if isinstance(i, ImageItem)] == ["image 1 (object 300000, its page lost)"]


def test_reading_the_objects_of_a_pdf_cut_before_its_pages_lets_other_pdfs_take_turns():
    # the images found were read (each one's data hashed) in one turn of the MuPDF lock: 20,000 icons held it 2 s
    doc = pymupdf.open()
    doc.new_page()
    for i in range(250):
        xref = doc.get_new_xref()
        doc.update_object(xref, "<</Type/XObject/Subtype/Image/Width 8/Height 8/BitsPerComponent 8"
                                "/ColorSpace/DeviceGray>>")
        doc.update_stream(xref, i.to_bytes(2, "big") * 32)
    data = doc.tobytes(use_objstms=1)
    cut = data[:data.index(b"/Type/ObjStm") - 20]
    assert pymupdf.open(stream=cut, filetype="pdf").page_count == 0
    steps = list(pdf._open_pdf(Blob("x.pdf", cut), Context(Limits()), pdf._Clock()))
    assert steps.count(pdf._PAUSE) >= 2, steps.count(pdf._PAUSE)
    assert [i.error for i in steps if i is not pdf._PAUSE][-1] == "skipped 250 images smaller than 64 px (decoration)"


def _photo() -> bytes:
    a = np.zeros((300, 300, 3), np.uint8)
    a[..., 0] = np.linspace(0, 255, 300, dtype=np.uint8)[None]
    out = io.BytesIO()
    Image.fromarray(a).save(out, "JPEG")
    return out.getvalue()


def test_a_pdf_cut_inside_a_dictionary_that_says_endobj_is_read_up_to_an_earlier_object():
    # the last "endobj" was a word in the dictionary the cut is in (a title's): the file was cut there, which MuPDF
    # cannot open either, and the whole PDF was "could not be repaired"
    doc = pymupdf.open()
    doc.new_page(width=595, height=842).insert_image(pymupdf.Rect(100, 100, 400, 400), stream=_photo())
    xref = doc.get_new_xref()
    doc.update_object(xref, "<</Type/Metadata/Title (the endobj word) /Author (" + "t" * 100 + ")>>")
    data = doc.tobytes()
    cut = data[:data.index(b"ttttt")]
    items = list(pdf.open_pdf(Blob("cut.pdf", cut), Context(Limits())))
    assert [(i.locator, getattr(i, "error", "")) for i in items] == [
        ("page 1, image 1", ""), ("", "damaged PDF, repaired by MuPDF: parts of it may be missing")]


def test_library_warnings_in_the_programs_own_callbacks_are_not_hidden(tmp_path):
    # medimg hides nibabel's (pydicom's, Pillow's ...) warnings while it reads, found by its code on the stack: the
    # program's own `on_item` and `skip`, called from medimg's code, had theirs hidden too. In a process of its own:
    # pytest puts back the warning filters set while it collects
    (tmp_path / "a.png").write_bytes(b.image_bytes("PNG", (300, 300)))
    code = textwrap.dedent("""
        import warnings, medimg
        from medimg.sources import nifti  # its filters

        def on_item(rec):
            warnings.warn_explicit("in on_item", UserWarning, "x.py", 1, module="nibabel.x")

        def skip(origin):
            warnings.warn_explicit("in skip", UserWarning, "x.py", 2, module="nibabel.x")
            return False

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.filters.append(warnings.filters.pop(0))  # after medimg's filters
            print(len(list(medimg.classify(["a.png"], on_item=on_item, skip=skip))))
        print(sorted(str(w.message) for w in caught))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.splitlines() == ["1", "['in on_item', 'in skip']"], out.stdout
