"""PDF source on damaged files: what survives comes out, what is lost is said (PDFs built with PyMuPDF, then
cut short or broken on purpose)."""

from __future__ import annotations

import pymupdf
import pytest
from PIL import ImageCms

from builders import encode, pattern
from medimg.sources import pdf
from medimg.sources.base import Blob, Context, ImageItem, ItemError

REPAIRED = "damaged PDF, repaired by MuPDF: parts of it may be missing"


def _run(data: bytes) -> list:
    return list(pdf.open_pdf(Blob("test.pdf", data), Context()))


def _photos(sizes: list[tuple[int, int]]) -> tuple[pymupdf.Document, list[int]]:
    """One page with a JPEG of each size in a 2×2 grid, each a picture of its own; their xrefs, in drawing order."""
    doc = pymupdf.open()
    page = doc.new_page()
    xrefs = []
    for k, size in enumerate(sizes):
        x, y = 50 + (k % 2) * 260, 60 + (k // 2) * 260
        xrefs.append(page.insert_image(pymupdf.Rect(x, y, x + 240, y + 240), stream=encode(pattern(size, seed=k),
                                                                                             "JPEG")))
    return doc, xrefs


def _cut_in_colour_space(sizes: list[tuple[int, int]], bad: int = 2) -> tuple[bytes, bytes, int]:
    """The four photos, the third (or the `bad`-th, from 0) in an sRGB ICC colour space written last in the file;
    then that file cut short inside the colour space's object (the xref table lost too), as a download cut off
    near its end. Returns the intact file, the cut one and the damaged image's xref."""
    doc, xrefs = _photos(sizes)
    # stored with Flate: a JPEG whose colour space is lost comes out in its own colours (s47), raw samples do not
    doc.update_stream(xrefs[bad], pattern(sizes[bad], seed=bad).convert("RGB").tobytes())
    profile = doc.get_new_xref()
    doc.update_object(profile, "<< /N 3 >>")
    doc.update_stream(profile, ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    space = doc.get_new_xref()
    doc.update_object(space, f"[/ICCBased {profile} 0 R]")
    doc.xref_set_key(xrefs[bad], "ColorSpace", f"{space} 0 R")
    data = doc.tobytes()
    at = data.index(f"\n{profile} 0 obj".encode())
    assert at > data.index(f"\n{xrefs[3]} 0 obj".encode())  # every image object comes before the cut
    return data, data[: at + 200], xrefs[bad]


def _misplaced(data: bytes, xref: int, shift: int = 3) -> bytes:
    """`data` with the xref table's offset of object `xref` moved by `shift` bytes: the file opens as sound, and
    MuPDF repairs it only when it looks that object up."""
    start = data.index(b"\nxref\n") + len(b"\nxref\n")
    lines = data[start:].split(b"\n")
    first, _ = (int(v) for v in lines[0].split())
    entry = lines[1 + xref - first]
    lines[1 + xref - first] = b"%010d" % (int(entry[:10]) + shift) + entry[10:]
    return data[:start] + b"\n".join(lines)


@pytest.mark.parametrize("sizes", [[(200, 160)] * 4, [(200, 160), (210, 160), (220, 160), (230, 160)]],
                         ids=["same size", "sizes differ"])
def test_a_cut_short_pdf_keeps_the_intact_images_of_a_page_with_one_damaged_image(sizes):
    """A file cut off in one image's colour space: the page's three intact photos come out as in the whole file,
    the damaged one is an error of its own, and one note says the PDF was repaired. (Same-size photos lost the
    whole page to one "could not read page" error; photos of different sizes lost the damaged one silently.)"""
    intact, cut, bad = _cut_in_colour_space(sizes)
    whole = _run(intact)
    items = _run(cut)
    images = [i for i in items if isinstance(i, ImageItem)]
    assert [i.metadata["xref"] for i in images] == [i.metadata["xref"] for i in whole if i.metadata["xref"] != bad]
    for got in images:
        (want,) = [i for i in whole if i.metadata["xref"] == got.metadata["xref"]]
        assert got.image.tobytes() == want.image.tobytes() and got.metadata == want.metadata
    errors = [(e.locator, e.error.split(":")[0], e.skipped) for e in items if isinstance(e, ItemError)]
    assert errors == [("page 1, image 3", f"could not decode embedded image (xref {bad})", False),
                      ("", REPAIRED.split(":")[0], True)]
    assert items[-1].error == REPAIRED


@pytest.mark.parametrize("sizes", [[(200, 160)] * 4, [(200, 160), (210, 160), (220, 160), (230, 160)]],
                         ids=["same size", "sizes differ"])
def test_an_image_whose_colour_space_is_not_one_is_an_error_of_its_own_and_the_others_come_out(sizes):
    """One photo's /ColorSpace names an object that is no colour space (the file is otherwise sound, so no repair
    note): the three others come out, and that one is an error naming its xref and MuPDF's reason."""
    doc, xrefs = _photos(sizes)
    bogus = doc.get_new_xref()
    doc.update_object(bogus, "<< /Not /AColourSpace >>")
    doc.xref_set_key(xrefs[1], "ColorSpace", f"{bogus} 0 R")
    items = _run(doc.tobytes())
    images = [i for i in items if isinstance(i, ImageItem)]
    assert [i.metadata["xref"] for i in images] == [xrefs[0], xrefs[2], xrefs[3]]
    assert [i.image.size for i in images] == [sizes[0], sizes[2], sizes[3]]
    (error,) = [e for e in items if isinstance(e, ItemError)]
    assert error.locator == "page 1, image 2" and not error.skipped
    assert error.error == f"could not decode embedded image (xref {xrefs[1]}): invalid ICC colorspace"


@pytest.mark.parametrize("damage", ["xref table cut off", "an object's offset wrong"])
def test_a_pdf_mupdf_had_to_repair_says_so_once_and_a_sound_one_does_not(damage):
    """Images lost in a damaged PDF are not always errors (MuPDF repairs and draws what it can find), so a result
    that looks whole must say the file was damaged: one skipped note per PDF, whether MuPDF repaired it on
    opening or when reading an object; never for the same file intact, however PyMuPDF wrote it."""
    doc, xrefs = _photos([(200, 160), (210, 160), (220, 160), (230, 160)])
    for sound in (doc.tobytes(), doc.tobytes(garbage=4, deflate=True), doc.tobytes(garbage=3, use_objstms=1)):
        assert not any(isinstance(i, ItemError) for i in _run(sound))
    data = doc.tobytes()
    if damage == "xref table cut off":
        damaged = data[: data.index(b"\nxref\n")]
        assert pymupdf.open(stream=damaged).is_repaired
    else:
        damaged = _misplaced(data, xrefs[3])
        assert not pymupdf.open(stream=damaged).is_repaired  # sound on opening: repaired while being read
    items = _run(damaged)
    assert len([i for i in items if isinstance(i, ImageItem)]) == 4
    notes = [(e.locator, e.error, e.skipped) for e in items if isinstance(e, ItemError)]
    assert notes == [("", REPAIRED, True)]


def test_a_page_whose_images_cannot_be_placed_still_gives_its_images(monkeypatch):
    """When matching a page's images to their places fails (MuPDF stumbling on a damaged one), its images are
    listed without their place, each decoded on its own, with one error saying why, instead of the whole page
    being one "could not read page" error."""
    doc, xrefs = _photos([(200, 160)] * 4)
    last = doc.new_page().insert_image(pymupdf.Rect(72, 72, 312, 272), stream=encode(pattern((180, 150), seed=9),
                                                                                     "JPEG"))

    def stumbles(doc, page, *args, **kwargs):
        if page.number == 0:
            raise RuntimeError("code=8: could not parse color space (24 0 R)")
        return place(doc, page, *args, **kwargs)

    place = pdf._place_images
    monkeypatch.setattr(pdf, "_place_images", stumbles)
    items = _run(doc.tobytes())
    images = [i for i in items if isinstance(i, ImageItem)]
    want = [(f"page 1, image {k + 1}", xref) for k, xref in enumerate(xrefs)] + [("page 2, image 1", last)]
    assert [(i.locator, i.metadata["xref"]) for i in images] == want
    assert [i.metadata["bbox"] for i in images] == [None] * 4 + [[72, 72, 312, 272]]  # page 2 as ever
    (error,) = [e for e in items if isinstance(e, ItemError)]
    assert error.locator == "page 1" and not error.skipped
    assert error.error == ("could not place its images (could not parse color space (24 0 R)): figures not looked "
                           "for, images listed without their place")


def test_a_jpeg_2000_whose_colour_space_is_lost_is_an_error_of_its_own_too():
    """A JPEG 2000 (whose colour space alone is tried, as loading one decodes it) naming a colour space object the
    file does not hold: an error of its own, the other photos come out."""
    doc, xrefs = _photos([(200, 160), (210, 160), (220, 160)])
    jpx = doc[0].insert_image(pymupdf.Rect(310, 320, 550, 560), stream=encode(pattern((230, 160), seed=3),
                                                                               "JPEG2000"))
    assert doc.xref_get_key(jpx, "Filter")[1] == "/JPXDecode"
    doc.xref_set_key(jpx, "ColorSpace", f"{doc.xref_length() + 50} 0 R")
    items = _run(doc.tobytes())
    assert [i.metadata["xref"] for i in items if isinstance(i, ImageItem)] == xrefs
    (error,) = [e for e in items if isinstance(e, ItemError)]
    assert error.locator == "page 1, image 4" and error.error.startswith(
        f"could not decode embedded image (xref {jpx}): could not parse color space")


def test_classify_names_a_repaired_pdf_after_its_summary(tmp_path, tiny_model_dir):
    """The repair note is a skipped note, which the CLI lists only when asked; as with an input cut short by a
    cap, it is named after the summary, so a result that looks whole is not taken for the whole file."""
    from typer.testing import CliRunner

    from medimg.cli import app
    from words import flat

    doc, _ = _photos([(200, 160), (210, 160)])
    data = doc.tobytes()
    (tmp_path / "cut.pdf").write_bytes(data[: data.index(b"\nxref\n")])
    res = CliRunner().invoke(app, ["classify", str(tmp_path / "cut.pdf"), "--model", str(tiny_model_dir),
                                   "--format", "jsonl"])
    assert res.exit_code == 0, res.output
    said = flat(res.stderr)
    assert "1 input not read to the end:" in said and f"{tmp_path / 'cut.pdf'}: {REPAIRED}" in said, said
