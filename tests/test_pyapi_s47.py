"""The Python API in a program's own process: what medimg leaves of the process's settings (s47_pyapi)."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import textwrap

import builders as b
import numpy as np
from PIL import Image

from medimg import Blob, ImageItem, open_input


def _run(code: str, cwd) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                         cwd=cwd)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_the_programs_own_library_warnings_and_nibabel_log_still_show_after_medimg_read(tmp_path):
    """nibabel's, pydicom's, mrcfile's, readlif's and Pillow's warnings, and nibabel's log, were hidden for the
    whole process from medimg's first read of such a file on: a notebook's own `nib.load` said nothing more."""
    import nibabel as nib

    img = nib.Nifti1Image(np.random.default_rng(0).normal(size=(32, 32, 8)).astype(np.float32), np.eye(4))
    img.header["pixdim"][0] = 5  # nibabel repairs it, and logs so (at INFO)
    nib.save(img, tmp_path / "v.nii.gz")
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (300, 300), dtype=np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "c.dcm").write_bytes(b.dicom_file("CT_small.dcm").read_bytes())
    out = _run("""
        import warnings, nibabel as nib
        from PIL import Image
        import medimg
        nib.imageglobals.logger.setLevel(1)  # the program wants nibabel's repairs said
        Image.MAX_IMAGE_PIXELS = 60_000  # and Pillow's warning over 60,000 pixels
        with warnings.catch_warnings(record=True) as caught:
            for path, limits in (("v.nii.gz", None), ("c.dcm", None), ("a.png", {"max_pixels": 100_000})):
                assert all(isinstance(i, medimg.ImageItem) for i in medimg.open_input(path, limits)), path
            print("medimg", len(caught))
            nib.load("v.nii.gz").get_fdata()  # logs the qfac repair on stderr
            Image.open("a.png")
            for module in ("nibabel.nifti1", "pydicom.valuerep", "mrcfile.validator", "readlif.reader", "PIL.Image"):
                warnings.warn_explicit("the program's own", UserWarning, module + ".py", 1, module=module)
            print("own", sorted(w.category.__name__ for w in caught))
    """, tmp_path)
    lines = out.stdout.splitlines()
    assert lines[0] == "medimg 0"  # medimg's own reads stay quiet
    assert lines[1] == "own " + str(["DecompressionBombWarning"] + ["UserWarning"] * 5)
    assert out.stderr.count("pixdim[0] (qfac) should be 1") == 1, out.stderr  # the program's nib.load only


def test_medimg_keeps_nibabels_log_quiet_though_the_program_set_its_level(tmp_path):
    # nibabel's log was kept off the console by its level: a program setting the level made medimg's reads print
    # nibabel's repairs of a damaged header on stderr
    import nibabel as nib

    img = nib.Nifti1Image(np.random.default_rng(0).normal(size=(32, 32, 8)).astype(np.float32), np.eye(4))
    img.header["pixdim"][0] = 5
    path = tmp_path / "v.nii.gz"
    nib.save(img, path)
    list(open_input(path))  # imports the NIfTI reader first
    logger, said = nib.imageglobals.logger, []
    handler, before = logging.Handler(), logger.level
    handler.emit = said.append
    logger.addHandler(handler)
    logger.setLevel(1)
    try:
        assert all(isinstance(i, ImageItem) for i in open_input(path))
        assert said == []
        nib.load(path)  # the program's own read is told
        assert any("qfac" in r.getMessage() for r in said)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)


def test_pillows_pixel_limit_is_left_as_it_is_unless_the_cap_needs_more(tmp_path, monkeypatch):
    # the default cap (100,000,000) raised Pillow's MAX_IMAGE_PIXELS for the whole process, though Pillow refuses
    # only at twice it (178,956,970): a program's own Image.open lost its bomb warning between the two
    (tmp_path / "a.png").write_bytes(b.image_bytes("PNG", (64, 64)))
    out = _run("""
        from PIL import Image
        import medimg
        list(medimg.classify(["a.png"]))
        print(Image.MAX_IMAGE_PIXELS)
        list(medimg.open_input("a.png", {"max_pixels": 400_000_000}))
        print(Image.MAX_IMAGE_PIXELS)
    """, tmp_path)
    assert out.stdout.split() == ["89478485", "200000000"]
    # a cap raised past Pillow's errors still lets a picture under it through Pillow's own check (to its decoder,
    # which finds the 4 x 4 PNG's data short)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # put back after the test
    (item,) = open_input(Blob("big.png", b.png_declaring(15_000, 15_000)), {"max_pixels": 400_000_000})
    assert "truncated" in item.error, item


def test_pydicoms_log_of_a_programs_own_read_is_pydicoms_own(caplog):
    # medimg leaves an odd Specific Character Set's value out of what pydicom logs while medimg reads; the
    # program's own pydicom reads had their log lines rewritten too
    import pydicom

    ds = b.dicom_dataset(pydicom.uid.ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.2", "CT")
    ds.SpecificCharacterSet = "DOEJOHN"
    ds.PatientName = "Doe^John"
    data = b.dicom_bytes(ds)
    caplog.set_level(logging.WARNING, logger="pydicom")
    caplog.clear()  # what writing the file logged
    list(open_input(Blob("scan.dcm", data)))
    assert "encoding" in caplog.text and "DOEJOHN" not in caplog.text
    caplog.clear()
    pydicom.dcmread(io.BytesIO(data)).PatientName
    assert "Unknown encoding 'DOEJOHN'" in caplog.text, caplog.text


def test_a_program_without_logging_set_up_still_sees_its_own_tifffile_and_pillow_warnings(tmp_path):
    # medimg put a NullHandler on tifffile's, Pillow's, imagecodecs' and olefile's loggers to keep its reads quiet:
    # a program that set no logging up no longer saw those libraries' warnings of its own calls (Python's last
    # resort prints them on stderr)
    (tmp_path / "a.png").write_bytes(b.image_bytes("PNG", (64, 64)))
    out = _run("""
        import logging, sys
        import medimg
        list(medimg.classify(["a.png"]))
        from medimg.sources import compound, microscopy  # noqa: F401  (their loggers too)
        for name in ("tifffile", "PIL.TiffImagePlugin", "imagecodecs", "olefile"):
            logging.getLogger(name).warning("the program's own %s", name)
        logging.getLogger("tifffile").info("below the last resort's level")
        sys.stderr.flush()
        logging.basicConfig(format="set up: %(message)s")  # a handler of the program's: once, through it
        logging.getLogger("tifffile").warning("after basicConfig")
    """, tmp_path)
    assert out.stderr.splitlines() == ["the program's own tifffile", "the program's own PIL.TiffImagePlugin",
                                       "the program's own imagecodecs", "the program's own olefile",
                                       "set up: after basicConfig"], out.stderr


def test_what_a_library_logs_while_medimg_reads_is_not_printed(tmp_path):
    # a damaged TIFF: tifffile logs its broken page offsets (a warning) while medimg reads, which the last resort
    # would print on stderr of a program with no logging set up
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, np.zeros((3, 64, 64), np.uint8), photometric="minisblack")  # three pages
    data = bytearray(buf.getvalue())
    data[-40:] = b"\xff" * 40  # the last page's entries point nowhere
    (tmp_path / "bad.tif").write_bytes(bytes(data))
    out = _run("""
        import logging, medimg
        logging.getLogger("tifffile").warning("before")
        print(len(list(medimg.open_input("bad.tif"))))
        logging.getLogger("tifffile").warning("after")
        logging.getLogger("tifffile").handlers.clear()  # without medimg's handler, the last resort prints it
        import tifffile; tifffile.TiffFile("bad.tif").pages[2]
    """, tmp_path)
    assert out.stdout.split() == ["3"]
    said = out.stderr.splitlines()
    assert said[:2] == ["before", "after"] and said[2:] and all("Tiff" in line for line in said[2:]), out.stderr


def test_help_of_classify_and_blob_explains_what_a_user_passes():
    # help(classify) never said what `threshold` does, and help(Blob) was one line naming none of its fields
    import inspect

    from medimg import classify

    doc = inspect.getdoc(classify)
    assert "`threshold`" in doc and "uncertain" in doc and "Classifier.threshold" in doc
    doc = inspect.getdoc(Blob)
    assert all(f"`{field}`" in doc for field in ("origin", "data", "name", "content_type", "depth")), doc


def test_the_programs_own_warnings_do_not_make_medimg_look_at_the_stack(tmp_path):
    # medimg's filters look at the stack only for a warning from a library they quiet: a first version (gated on
    # the message) looked for every warning of the process, and 20,000 of the program's own took 2.5 s, not 0.15 s
    (tmp_path / "a.png").write_bytes(b.image_bytes("PNG", (64, 64)))
    out = _run("""
        import sys, types, warnings, medimg
        from medimg.sources import quiet
        list(medimg.open_input("a.png"))
        looked = []
        quiet.sys = types.SimpleNamespace(_getframe=lambda n: looked.append(1) or sys._getframe(n + 1))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.filters.append(warnings.filters.pop(0))  # after medimg's filters
            for i in range(100):
                warnings.warn(f"the program's own {i}", UserWarning)
            warnings.warn_explicit("pydicom's", UserWarning, "x.py", 1, module="pydicom.x")
        print(len(caught), len(looked))
    """, tmp_path)
    assert out.stdout.split() == ["101", "1"]
