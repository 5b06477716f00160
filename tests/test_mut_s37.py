"""Tests for the session-37 mutants that survived the tests of the day's change (s37_mut): each fails with its
mutant applied and passes as the code is (see /work/review/s37_mut/NOTES.md for the table)."""
from __future__ import annotations

import numpy as np

from medimg.levels import looks_like_hu


def _ct_like(n: int = 65536, seed: int = 3) -> np.ndarray:
    """A CT slice's modality values in the shape of counts: 5 % air (-1000 ± 30), the rest soft tissue and bone
    (-100..1500), every level a whole number (so thousands of levels)."""
    rng = np.random.default_rng(seed)
    values = rng.integers(-100, 1500, n).astype(float)
    values[rng.permutation(n)[:n // 20]] = rng.integers(-1030, -970, n // 20)
    return values


# --- levels.looks_like_hu: its counting shortcuts ---------------------------------------------------------------

def test_values_exactly_at_minus_700_count_as_air():
    """The 1st percentile falls on a run of values of exactly -700: air, as np.percentile says (mutant: air counted
    as values below -700, which put the count under the percentile's index)."""
    n = 10_000
    values = np.linspace(-600, 1500, n)
    i = int(np.floor((n - 1) * 0.01))
    values[:i - 1] = np.linspace(-1100, -701, i - 1)
    values[i - 1:i + 20] = -700.0
    assert looks_like_hu(np.random.default_rng(1).permutation(values))


def test_levels_the_even_probe_misses_are_still_counted():
    """300 levels, of which the evenly spaced probe sees only 200 (one sample in 16 is air): more than 8 bits hold,
    so a CT (mutant: the probe's count taken as the answer)."""
    n = 65536
    values = 100.0 + np.arange(n) % 100  # 100 levels of tissue
    values[::16] = -1000.0 + np.arange(n // 16) % 200  # and 200 of air, exactly where the probe looks
    assert looks_like_hu(values)


def test_values_exactly_at_minus_1900_are_padding_not_the_gap():
    """3 % of the field at exactly -1900 (padding some scanners write) is not in the gap (-1900, -1200): still a CT
    (mutant: -1900 counted in the gap, over its 2 %)."""
    values = _ct_like()
    values[: values.size * 3 // 100] = -1900.0
    assert looks_like_hu(values)


# --- dicom_frames: High Bit one above Bits Stored - 1 -------------------------------------------------------------

def test_values_above_their_usual_place_are_read_where_high_bit_says():
    """12 bits stored with High Bit 12 (one unused bit below the value, set): the smallest shift PS3.5 8.1.1
    allows, read as the same ramp stored the usual way (mutant: High Bit had to be above Bits Stored)."""
    from pydicom.uid import ExplicitVRLittleEndian

    import builders as b
    from medimg.sources import Blob, Context, ImageItem, Limits

    def shown(cells: np.ndarray, high: int, **tags) -> np.ndarray:
        ds = b.dicom_dataset(ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.1", "CR")
        ds.Rows, ds.Columns = cells.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, high, 0
        ds.PixelData = cells.astype(np.uint16).tobytes()
        for key, value in tags.items():
            setattr(ds, key, value)
        (got,) = Context(Limits()).open_blob(Blob("x.dcm", b.dicom_bytes(ds), name="x.dcm"))
        assert isinstance(got, ImageItem), got
        return np.asarray(got.image).astype(int)

    values = np.repeat(np.linspace(0, 4095, 64).round().astype(np.int32)[:, None], 64, axis=1)
    assert (shown((values << 1) | 1, 12) == shown(values, 11)).all()
    # through a window, where a value read twice as large would show (mutant: shifted down one bit too few)
    window = {"WindowCenter": 2048, "WindowWidth": 4096}
    assert (shown((values << 4) | 15, 15, **window) == shown(values, 11, **window)).all()


# --- server/export.safe_cell ---------------------------------------------------------------------------------------

def test_safe_cell_marks_a_formula_after_each_separator_and_only_there():
    """Each rule of safe_cell, cell by cell (mutants: the mark put before the separator's own position, quotes not
    passed over, a leading tab or line end not marked, a formula after leading spaces missed, LF and comma not
    separators, the full-width signs not formula starts)."""
    from medimg.server.export import safe_cell

    cases = {"scan\n=1+1": "scan\n'=1+1", 'a, "=cmd': 'a,\' "=cmd', "a;=1": "a;'=1", "a,b": "a,b", "a=b": "a=b",
             " =1": "' =1", '"=1': '\'"=1', "\tx": "'\tx", "\rx": "'\rx", "\nx": "'\nx", "x": "x",
             "\uff1d1": "'\uff1d1", "a,\uff201": "a,'\uff201", "a,,=1": "a,,'=1", "a,=1": "a,'=1", "=": "'=", "": ""}
    assert {k: safe_cell(k) for k in cases} == cases
    assert safe_cell(-3.5) == -3.5 and safe_cell(None) is None


# --- files.blobs_together: a data file two uploaded headers read -------------------------------------------------

def test_a_data_file_two_uploaded_headers_read_is_the_note_of_the_first():
    """a.mhd and b.mhd both read c.raw: c.raw's note names the first of them, as the docstring says (mutant: the
    last header claimed it)."""
    from medimg.sources import Context, Limits
    from medimg.sources.files import blobs_together

    voxels = bytes(range(256))
    header = b"ObjectType = Image\nNDims = 2\nDimSize = 16 16\nElementType = MET_UCHAR\nElementDataFile = c.raw\n"
    given = [("a.mhd", header), ("b.mhd", header), ("c.raw", voxels)]
    files = [(name, (lambda data: lambda n: data if n < 0 else data[:n])(data), None) for name, data in given]
    blobs = {blob.name: blob for blob in blobs_together(files, Limits().max_input_bytes)}
    assert blobs["c.raw"].data_of == "a.mhd"
    (note,) = Context(Limits()).open_blob(blobs["c.raw"])
    assert note.error == "skipped: the data file of a.mhd, read with it"


# --- heif.largest_size: the largest item, wherever it comes ------------------------------------------------------

def test_a_heif_item_stored_larger_after_a_smaller_one_is_the_size_checked():
    """The primary image's ispe comes first, a thumbnail's after it: a thumbnail declaring 20000×20000 is what the
    cap is checked against (mutant: the first ispe kept, whatever came after)."""
    import struct

    import pillow_heif

    import builders as b
    from medimg.sources import Blob, ItemError, Limits, open_input

    pillow_heif.register_heif_opener()
    data = bytearray(b.encode(b.pattern((96, 64)), "HEIF", quality=50, thumbnails=[32]))
    last = data.rfind(b"ispe")
    assert data.find(b"ispe") < last  # the thumbnail's is the second
    data[last + 8:last + 16] = struct.pack(">II", 20_000, 20_000)
    (item,) = open_input(Blob("photo.heic", bytes(data), name="photo.heic"), Limits())
    assert isinstance(item, ItemError) and "20000×20000" in item.error, item


# --- files._first_not_blank: each frame looked at once ----------------------------------------------------------

def test_a_blank_first_frame_is_passed_over_within_two_looks():
    """A GIF whose first frame is black, with max_pixels for two frames: the second is shown (mutant: the first
    frame looked at twice, so the second never)."""
    import io

    from PIL import Image

    from medimg.sources import Blob, ImageItem, Limits, open_input

    black = Image.new("L", (64, 64), 0)
    shown = Image.linear_gradient("L").resize((64, 64))
    out = io.BytesIO()
    black.save(out, "GIF", save_all=True, append_images=[shown], duration=100)
    (item,) = open_input(Blob("a.gif", out.getvalue(), name="a.gif"), Limits(max_pixels=2 * 64 * 64))
    assert isinstance(item, ImageItem) and item.locator == "frame 2", item


# --- office.py ----------------------------------------------------------------------------------------------------

def _office_rows(data: bytes, name: str) -> list[tuple[str, str, str]]:
    from medimg.sources import Blob, Context, ImageItem, Limits

    got = Context(Limits()).open_blob(Blob(name, data, name=name))
    return [(i.origin, i.locator, "image" if isinstance(i, ImageItem) else i.error) for i in got]


def test_a_plain_zip_with_an_xl_folder_is_not_an_office_file():
    """A zip of a study's files, one folder named xl (no [Content_Types].xml): every file is read (mutant: any
    word/, ppt/ or xl/ member made it an Office file, and only xl/media/ was read)."""
    import builders as b

    data = b.zip_bytes({"xl/scan.png": b.image_bytes("PNG"), "xl/notes.txt": b"seen"})
    assert ("e.zip:xl/scan.png", "", "image") in _office_rows(data, "e.zip")


def _report(targets: dict[str, str], more: tuple = ()) -> bytes:
    """A .docx with a header picture and a body picture, its relationships' targets as given."""
    import test_office_s37 as off

    import builders as b

    blip = ('<w:p><w:r><w:drawing><pic:pic xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture">'
            '<pic:blipFill><a:blip r:embed="{}"/></pic:blipFill></pic:pic></w:drawing></w:r></w:p>')
    w = f'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" {off.NS}'
    return b.zip_bytes({
        "[Content_Types].xml": b"<Types/>",
        "_rels/.rels": off.rels(("rId1", "officeDocument", targets["document"])),
        "word/document.xml": f'<w:document {w}><w:body>{blip.format("rId5")}</w:body></w:document>'.encode(),
        "word/_rels/document.xml.rels": off.rels(("rId2", "header", targets["header"]),
                                                 ("rId5", "image", targets["body image"]), *more),
        "word/header1.xml": f'<w:hdr {w}>{blip.format("rId1")}</w:hdr>'.encode(),
        "word/_rels/header1.xml.rels": off.rels(("rId1", "image", targets["header image"])),
        "word/media/image1.png": b.image_bytes("PNG", (120, 40)), "word/media/image2.jpeg": off.jpeg(4)})


RELATIVE = {"document": "word/document.xml", "header": "header1.xml", "body image": "media/image2.jpeg",
            "header image": "media/image1.png"}


def test_relationship_targets_given_from_the_package_root_are_placed():
    """Targets written as absolute part names (`/word/media/image2.jpeg`, as some writers do) place their pictures
    as relative ones do (mutant: the leading / kept and joined to the part's folder)."""
    absolute = {"document": "/word/document.xml", "header": "/word/header1.xml",
                "body image": "/word/media/image2.jpeg", "header image": "/word/media/image1.png"}
    got = [r for r in _office_rows(_report(absolute), "r.docx") if r[2] == "image"]
    assert got == [("r.docx:word/media/image1.png", "header", "image"),
                   ("r.docx:word/media/image2.jpeg", "document body", "image")]


def test_an_external_hyperlink_is_not_a_linked_picture():
    """A report's web link (an external hyperlink relationship) is no picture linked from outside the file
    (mutant: every external relationship counted as one)."""
    data = _report(RELATIVE, more=(("rId9", "hyperlink", "https://example.org/guide", "External"),))
    note = _office_rows(data, "r.docx")[0]
    assert note[0] == "r.docx" and "linked" not in note[2], note


def test_past_the_xml_cap_for_all_parts_pictures_are_read_without_places(monkeypatch):
    """The parts' XML is read within _ALL_CAP bytes in all; past it the pictures are still read, unplaced (mutant:
    only each part's own cap held). The cap is set to 0 here rather than writing 32 MB of XML."""
    from medimg.sources import office

    monkeypatch.setattr(office, "_ALL_CAP", 0)
    got = [r for r in _office_rows(_report(RELATIVE), "r.docx") if r[2] == "image"]
    assert got == [("r.docx:word/media/image1.png", "", "image"), ("r.docx:word/media/image2.jpeg", "", "image")]


def test_slide_numbers_in_a_run_of_three_are_a_range():
    """(mutant: a run never continued, so no range was ever written)"""
    from medimg.sources.office import places

    assert places({"slide 3", "slide 1", "slide 2", "slide 5", "slide master"}) == "slides 1–3, 5, slide master"
    assert places({"slide 7", "slide 8"}) == "slides 7, 8" and places({"slide 4"}) == "slide 4"


def test_an_odf_frame_holding_only_an_svg_keeps_the_documents_places():
    """A frame with an SVG and no raster copy (mutant: taken for SVG + copy, an IndexError that lost every place)."""
    import test_office_s37 as off

    odp = off.two_slide_odp(b'<draw:image xlink:href="Pictures/2.svg"/>', ("Pictures/2.svg", off.SVG))
    got = _office_rows(odp, "talk.odp")
    assert ("talk.odp:Pictures/1.jpg", "slide 1", "image") in got
    assert ("talk.odp:Pictures/2.svg", "slide 2", "SVG is not rasterised (vector drawing skipped)") in got


def test_an_svg_whose_raster_copy_is_missing_is_not_said_to_be_read_through_it():
    """The PNG an svgBlip falls back to is not in the package: no note naming a copy that is not there (mutant)."""
    import io
    import zipfile

    import builders as b
    import test_office_s37 as off

    with zipfile.ZipFile(io.BytesIO(off.pptx())) as z:
        members = {i.filename: z.read(i) for i in z.infolist() if i.filename != "ppt/media/image3.png"}
    svg = next(r for r in _office_rows(b.zip_bytes(members), "talk.pptx") if r[0].endswith("image4.svg"))
    assert svg == ("talk.pptx:ppt/media/image4.svg", "slide 3", "SVG is not rasterised (vector drawing skipped)")


# --- media._descriptors ---------------------------------------------------------------------------------------------

def test_a_zero_density_candidate_is_valid_as_the_spec_has_it():
    """`0x` is a valid (non-negative) density (mutant: dropped like `0w`); a width is a whole number (mutant: `1.5w`
    taken)."""
    from medimg.sources.media import parse_srcset

    assert parse_srcset("a.png 0x, b.png 0w, c.png 1.5w") == [("a.png", None, 0.0)]


def test_a_density_after_a_width_or_height_makes_the_candidate_invalid():
    """`300w 2x` and `300w 200h 2x` are dropped, as `2x 300w` is (mutant: a density after a width taken)."""
    from medimg.sources.media import parse_srcset

    assert parse_srcset("a.png 300w 2x, c.png 300w 200h 2x, b.png 1x") == [("b.png", None, 1.0)]


# --- css: the cascade within a block ------------------------------------------------------------------------------

def test_of_two_important_declarations_the_last_is_shown():
    """(mutant: an !important declaration after another !important one was ignored)"""
    from medimg.sources.css import image_urls, shown

    block = ["background-image: url(a.png) !important", "background-image: url(b.png) ! IMPORTANT", "color: red"]
    assert shown(block) == block[1:]
    assert image_urls(";".join(block)) == ["b.png"]


# --- dicom_levels: the PET floor ----------------------------------------------------------------------------------

def test_a_pet_slice_with_no_activity_and_a_little_noise_below_zero_is_black():
    """A slice outside the body: all 0 (no activity) but for one value of -5. Before, its range was -5..0, and the
    whole slice was drawn white; its range starts at 0 as any PET's with values below zero does, so it is black."""
    from pydicom.uid import ExplicitVRLittleEndian

    import builders as b
    from medimg.sources import Blob, Context, ImageItem, Limits

    ds = b.dicom_dataset(ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.128", "PT")
    ds.Rows = ds.Columns = 32
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    cells = np.zeros((32, 32), np.int16)
    cells[5, 5] = -5
    ds.PixelData = cells.tobytes()
    (got,) = Context(Limits()).open_blob(Blob("pet.dcm", b.dicom_bytes(ds), name="pet.dcm"))
    assert isinstance(got, ImageItem), got
    assert np.asarray(got.image).max() == 0


def test_a_phone_only_background_set_once_is_not_read():
    """An @media block for a phone that sets one background (nothing set twice): still passed over (mutant: a
    sheet was weighed only when it set an image twice, so its @media blocks were read as they were)."""
    from medimg.sources.web_page import extract

    page = ("<html><head><style>@media (max-width: 600px) { .a { background: url(phone.png) } }</style></head>"
            "<body><div class=a></div><img src=x.png></body></html>")
    assert [c.url for c in extract(page, "http://h/")] == ["http://h/x.png"]


def test_the_cascade_leaves_a_blocks_other_declarations_as_they_were():
    """Weighing a block that sets its background twice leaves out only the overridden one: a mask-image and a custom
    property's url() are read as in any other block (mutant: only the winning image declarations kept)."""
    from medimg.sources.web_page import extract

    page = ("<html><head><style>.a { background: url(a.png); background-image: url(b.png); mask-image: url(m.png);"
            " --hero: url(c.png) }</style></head><body><div class=a></div></body></html>")
    assert [c.url for c in extract(page, "http://h/")] == ["http://h/b.png", "http://h/m.png", "http://h/c.png"]


# --- tar_pairs: a gzipped copy between a header and its data file -------------------------------------------------

def test_an_mhd_waits_past_a_gzipped_copy_for_the_data_file_it_names(tmp_path):
    """v.mhd, v.raw.gz, v.raw in a tar: the .mhd reads v.raw, which came after the copy it does not read (mutant: the
    header was given with v.raw.gz on its turn, and failed)."""
    import gzip
    import io
    import tarfile

    from medimg.sources import ImageItem, input_tasks

    voxels = bytes(range(256))
    header = b"ObjectType = Image\nNDims = 2\nDimSize = 16 16\nElementType = MET_UCHAR\nElementDataFile = v.raw\n"
    where = tmp_path / "e.tar"
    with tarfile.open(where, "w") as t:
        for name, data in (("v.mhd", header), ("v.raw.gz", gzip.compress(bytes(256))), ("v.raw", voxels)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    by = {i.origin.removeprefix(f"{where}:"): i for task in input_tasks([where]) for i in task()}
    assert isinstance(by["v.mhd"], ImageItem), by["v.mhd"]
    assert np.array_equal(np.asarray(by["v.mhd"].image.convert("L")).ravel(), np.arange(256))
    assert by["v.raw"].error == "skipped: the data file of v.mhd, read with it"
    assert "data file" not in by["v.raw.gz"].error


def test_a_third_header_with_no_data_file_of_its_turn_reads_the_first_in_a_tgz(tmp_path):
    """a.mhd three times, then two a.raw, gzipped: the third header reads the first a.raw, as the rule says (mutant:
    the second a.raw was kept for it too, in the first one's place)."""
    import io
    import tarfile

    from medimg.sources import ImageItem, input_tasks

    header = b"ObjectType = Image\nNDims = 2\nDimSize = 16 16\nElementType = MET_UCHAR\nElementDataFile = a.raw\n"
    first, second = bytes(range(256)), bytes(range(255, -1, -1))
    where = tmp_path / "e.tgz"
    with tarfile.open(where, "w:gz") as t:
        for name, data in (("a.mhd", header),) * 3 + (("a.raw", first), ("a.raw", second)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    by = {i.origin.removeprefix(f"{where}:"): i for task in input_tasks([where]) for i in task()}

    def voxels(item) -> bytes:
        assert isinstance(item, ImageItem), item
        return np.asarray(item.image.convert("L")).tobytes()

    assert [voxels(by[n]) for n in ("a.mhd", "a (2).mhd", "a (3).mhd")] == [first, second, first]


def test_an_office_pictures_own_locator_follows_its_place():
    """A GIF in a report's body whose first frame is blank: shown as `document body, frame 2` (mutant: the place
    replaced the picture's own locator)."""
    import io
    import zipfile

    from PIL import Image

    import builders as b

    out = io.BytesIO()
    Image.new("L", (64, 64), 0).save(out, "GIF", save_all=True, duration=100,
                                     append_images=[Image.linear_gradient("L").resize((64, 64))])
    with zipfile.ZipFile(io.BytesIO(_report(RELATIVE))) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    members["word/media/image2.jpeg"] = out.getvalue()  # named as Word names it; read by its bytes
    got = [r for r in _office_rows(b.zip_bytes(members), "r.docx") if r[2] == "image"]
    assert ("r.docx:word/media/image2.jpeg", "document body, frame 2", "image") in got, got


def test_waits_are_said_in_words():
    """(mutants: from 100 s on, said in minutes; a unit from one of it, `about 1 days`; a date passed said as a
    wait of 0 s)"""
    import httpx

    from medimg.sources.net import _seconds, _wait_asked

    assert [_seconds(s) for s in (0.5, 120, 999, 1000, 5000, 7200, 90_000, 200_000, 4e7)] == [
        "0.5 s", "120 s", "999 s", "about 17 min", "about 83 min", "about 2 h", "about 25 h", "about 2 days",
        "over a year"]
    past = httpx.Headers({"retry-after": "Sun, 06 Dec 2020 09:00:00 GMT"})
    assert _wait_asked(past, 0.0) == "until Sun, 06 Dec 2020 09:00:00 GMT, a moment ago"


def test_a_wordpress_size_variant_is_its_original_picture():
    """(mutant: `x-300x225.jpg` not taken for a size of x.jpg)"""
    from medimg.sources.web_fetch import picture_url

    assert picture_url("http://h/wp-content/uploads/x-300x225.jpg") == "http://h/wp-content/uploads/x.jpg"


def test_a_heif_meta_box_running_to_the_end_of_the_file_is_read():
    """A box of size 0 runs to the end of its file (ISO BMFF): its ispe is still checked against the cap (mutant:
    such a box ended the walk, and the stored size went unchecked)."""
    import struct

    import pillow_heif

    import builders as b
    from medimg.sources import heif

    pillow_heif.register_heif_opener()
    data = bytearray(b.encode(b.pattern((96, 64)), "HEIF", quality=50))
    at = data.find(b"ispe")
    data[at + 8:at + 16] = struct.pack(">II", 20_000, 20_000)
    meta = data.find(b"meta") - 4
    data[meta:meta + 4] = bytes(4)  # size 0: to the end of the file
    assert heif.largest_size(bytes(data)) == (20_000, 20_000)


def _odf(kind: str, body: str, pictures: dict[str, bytes]) -> bytes:
    import builders as b

    content = ('<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
               'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
               'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
               f'xmlns:xlink="http://www.w3.org/1999/xlink"><office:body>{body}</office:body></office:document-content>')
    return b.zip_bytes([("mimetype", f"application/vnd.oasis.opendocument.{kind}".encode()),
                        ("content.xml", content.encode()), *pictures.items()])


def test_odf_places_a_drawings_pages_and_no_sheet_in_a_text_table():
    """A drawing's pages are `page N` (mutant: `slide N`); a table in a text document is no sheet (mutant: its
    pictures placed on `sheet Table1`); a picture given as `../scan.png`, beside the document, is linked (mutant:
    only URLs counted)."""
    import test_office_s37 as off

    frame = '<draw:frame><draw:image xlink:href="{}"/></draw:frame>'
    odg = _odf("graphics", "<office:drawing><draw:page>" + frame.format("Pictures/1.jpg") + "</draw:page>"
               "</office:drawing>", {"Pictures/1.jpg": off.jpeg(1)})
    assert ("d.odg:Pictures/1.jpg", "page 1", "image") in _office_rows(odg, "d.odg")
    odt = _odf("text", '<office:text><table:table table:name="Table1"><table:table-row><table:table-cell>'
               + frame.format("Pictures/2.jpg") + frame.format("../scan.png")
               + "</table:table-cell></table:table-row></table:table></office:text>", {"Pictures/2.jpg": off.jpeg(2)})
    got = _office_rows(odt, "r.odt")
    assert ("r.odt:Pictures/2.jpg", "", "image") in got
    assert "1 picture linked from outside the file, not in it: not fetched" in got[0][2], got[0]


def test_one_part_past_the_element_cap_is_read_only_up_to_it(monkeypatch):
    """The elements cap holds inside one part too, a chunk at a time: a presentation.xml whose slide list comes
    after the cap's worth of elements gives no slide numbers (mutant: only checked before each part). The cap is
    set to 2,000 elements here rather than writing 500,000."""
    import io
    import zipfile

    import builders as b
    import test_office_s37 as off
    from medimg.sources import office

    monkeypatch.setattr(office, "_MAX_ELEMENTS", 2_000)
    with zipfile.ZipFile(io.BytesIO(off.pptx())) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    members["ppt/presentation.xml"] = members["ppt/presentation.xml"].replace(
        b"<p:sldIdLst>", b"<p:extLst>" + b"<p:ext/>" * 20_000 + b"</p:extLst><p:sldIdLst>")
    got = {r[0].split(":", 1)[1]: r[1] for r in _office_rows(b.zip_bytes(members), "talk.pptx") if ":" in r[0]}
    assert got["ppt/media/image2.jpeg"] == "slide" and got["ppt/media/image1.png"] == "slide master"


def test_an_important_none_hides_the_background_before_it():
    """`background-image: none !important` is a valid value that overrides (mutant: `!important` left on the value,
    which then matched no image value and was dropped, so the url() before it was read)."""
    from medimg.sources.css import image_urls

    assert image_urls("background-image: url(a.png); background-image: none !important") == []


def test_a_data_file_of_exactly_max_input_bytes_waits_for_its_header_in_a_tgz(tmp_path):
    """At most max_input_bytes of data files wait: one of exactly that size is kept (mutant: given up at the cap)."""
    import io
    import tarfile

    from medimg.sources import ImageItem, Limits, input_tasks

    header = b"ObjectType = Image\nNDims = 2\nDimSize = 64 64\nElementType = MET_UCHAR\nElementDataFile = a.raw\n"
    where = tmp_path / "e.tgz"  # well under the cap itself: the data file compresses
    with tarfile.open(where, "w:gz") as t:
        for name, data in (("a.raw", bytes(range(64)) * 64), ("a.mhd", header)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    by = {i.origin.removeprefix(f"{where}:"): i for task in input_tasks([where], limits=Limits(max_input_bytes=4096))
          for i in task()}
    assert isinstance(by["a.mhd"], ImageItem), by["a.mhd"]


def test_one_part_left_out_of_an_office_file_is_said():
    """(mutant: a single part left out went unsaid)"""
    import builders as b

    data = b.zip_bytes({"[Content_Types].xml": b"<Types/>", "word/media/image1.png": b.image_bytes("PNG")})
    note = _office_rows(data, "x.docx")[0]
    assert note[0] == "x.docx" and "1 part that is not its pictures" in note[2], note


def test_a_bgset_is_read_for_the_desktop_screen():
    """lazysizes' data-bgset: the first set whose [media] holds, its largest candidate (mutants: the media not
    looked at; the [media] left on the candidates, which made them invalid)."""
    from medimg.sources.web_page import _bgset_choice

    assert _bgset_choice("phone.jpg 400w [(max-width: 600px)] | desk-s.jpg 600w, desk.jpg 1200w") == "desk.jpg"
    assert _bgset_choice("a.jpg 1000w [(min-width: 600px)] | c.jpg") == "a.jpg"


def test_linked_pictures_on_two_slides_name_both():
    """(mutant: the note named the slides of the first linked picture only)"""
    import io
    import zipfile

    import builders as b
    import test_office_s37 as off

    with zipfile.ZipFile(io.BytesIO(off.pptx())) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    rels = "ppt/slides/_rels/slide1.xml.rels"  # slide1.xml is shown second
    members[rels] = members[rels].replace(b"</Relationships>", f'<Relationship Id="rId9" Type="{off.R}/image" '
                                          'Target="file:///C:/x.png" TargetMode="External"/></Relationships>'.encode())
    note = _office_rows(b.zip_bytes(members), "talk.pptx")[0]
    assert "2 pictures linked from outside the file (slides 1, 2), not in it" in note[2], note
