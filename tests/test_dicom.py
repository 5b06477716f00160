"""DICOM: transfer syntaxes, windowing, MONOCHROME1, colour, frames, caps, and no patient identifiers."""

from __future__ import annotations

import io
import logging
import random
import warnings

import numpy as np
import pydicom
import pytest

import builders as b
from medimg.sources import Blob, Context, ImageItem, ItemError, Limits, open_input
from medimg.sources.dicom import _scrub, accepts


def items(data: bytes, name: str = "x.dcm", **limits):
    return list(Context(Limits(**limits)).open_blob(Blob(name, data, name=name)))


def open_name(name: str, **limits):
    return items(b.dicom_file(name).read_bytes(), name, **limits)


def one_image(name: str, **limits) -> ImageItem:
    got = open_name(name, **limits)
    assert len(got) == 1 and isinstance(got[0], ImageItem), got
    return got[0]


def modified(name: str, **changes) -> bytes:
    ds = pydicom.dcmread(b.dicom_file(name))
    for key, value in changes.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    return b.dicom_bytes(ds)


@pytest.mark.parametrize("name, size, mode, syntax", [
    ("CT_small.dcm", (128, 128), "L", "Explicit VR Little Endian"),
    ("MR_small_bigendian.dcm", (64, 64), "L", "Explicit VR Big Endian"),
    ("MR_small_implicit.dcm", (64, 64), "L", "Implicit VR Little Endian"),
    ("image_dfl.dcm", (512, 512), "L", "Deflated Explicit VR Little Endian"),
    ("MR_small_RLE.dcm", (64, 64), "L", "RLE Lossless"),
    ("SC_rgb_rle.dcm", (100, 100), "RGB", "RLE Lossless"),
    ("SC_rgb_jpeg_dcmtk.dcm", (100, 100), "RGB", "JPEG Baseline (Process 1)"),
    ("JPGExtended.dcm", (256, 1024), "L", "JPEG Extended (Process 2 and 4)"),
    ("SC_rgb_jpeg_gdcm.dcm", (100, 100), "RGB", "JPEG Lossless, Non-Hierarchical, First-Order Prediction"),
    ("MR_small_jpeg_ls_lossless.dcm", (64, 64), "L", "JPEG-LS Lossless Image Compression"),
    ("JPEGLSNearLossless_16.dcm", (10, 50), "L", "JPEG-LS Lossy (Near-Lossless) Image Compression"),
    ("MR_small_jp2klossless.dcm", (64, 64), "L", "JPEG 2000 Image Compression (Lossless Only)"),
    ("693_J2KI.dcm", (512, 512), "L", "JPEG 2000 Image Compression"),
])
def test_transfer_syntaxes_decode(name, size, mode, syntax):
    item = one_image(name)
    assert item.format == "DICOM"
    assert item.image.size == size and item.image.mode == mode
    assert item.metadata["TransferSyntax"].startswith(syntax)
    assert np.asarray(item.image).std() > 5, "a real picture, not a flat frame"


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
                                  "MR_small_bigendian.dcm", "MR_small_implicit.dcm"])
def test_lossless_encodings_give_the_same_pixels(name):
    reference = np.asarray(one_image("MR_small.dcm").image)
    assert np.array_equal(np.asarray(one_image(name).image), reference)


def test_window_from_the_file_is_applied():
    # MR_small: WindowCenter 600, WidthWidth 1600, no rescale
    ds = pydicom.dcmread(b.dicom_file("MR_small.dcm"))
    x = ds.pixel_array.astype(float)
    expected = np.rint(np.clip((x - 599.5) / 1599 + 0.5, 0, 1) * 255)
    got = np.asarray(one_image("MR_small.dcm").image).astype(float)
    assert np.abs(got - expected).max() <= 1
    # without the window the full range is used instead: a different picture
    plain = np.asarray(items(modified("MR_small.dcm", WindowCenter=None, WindowWidth=None))[0].image, float)
    assert np.abs(plain - got).mean() > 10
    assert plain.min() == 0 and plain.max() == 255


def test_modality_lut_then_window_in_hounsfield_units():
    # CT_small stores raw values with intercept -1024; a soft-tissue window of 40/400 HU
    data = modified("CT_small.dcm", WindowCenter=40, WindowWidth=400)
    ds = pydicom.dcmread(b.dicom_file("CT_small.dcm"))
    hu = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    expected = np.rint(np.clip((hu - 39.5) / 399 + 0.5, 0, 1) * 255)
    got = np.asarray(items(data)[0].image, float)
    assert np.abs(got - expected).max() <= 1


def test_voi_lut_sequence_is_used():
    ds = pydicom.dcmread(b.dicom_file("CT_small.dcm"))
    raw = ds.pixel_array
    item = pydicom.Dataset()
    first = int(raw.min())
    n = int(raw.max()) - first + 1
    item.add_new(0x00283002, "US", [n, first, 16])  # LUTDescriptor
    item.add_new(0x00283006, "US", list(range(n - 1, -1, -1)))  # LUTData: a reversing LUT
    ds.VOILUTSequence = [item]
    del ds.RescaleSlope, ds.RescaleIntercept
    got = np.asarray(items(b.dicom_bytes(ds))[0].image, float)
    assert np.corrcoef(got.ravel(), raw.ravel())[0, 1] < -0.99


def test_monochrome1_is_inverted():
    name = "dicomdirtests/77654033/CR1/6154"
    item = one_image(name)
    assert item.metadata["PhotometricInterpretation"] == "MONOCHROME1"
    as_m2 = items(modified(name, PhotometricInterpretation="MONOCHROME2"))[0]
    m1, m2 = np.asarray(item.image, int), np.asarray(as_m2.image, int)
    assert m1.std() > 5
    assert np.array_equal(m1, 255 - m2)


def test_an_inverse_presentation_lut_inverts_monochrome2_once_and_monochrome1_not_twice():
    name = "dicomdirtests/77654033/CR1/6154"  # MONOCHROME1
    m1 = np.asarray(one_image(name).image, int)
    m2 = items(modified(name, PhotometricInterpretation="MONOCHROME2"))[0]
    m2_inverse = items(modified(name, PhotometricInterpretation="MONOCHROME2", PresentationLUTShape="INVERSE"))[0]
    m1_inverse = items(modified(name, PresentationLUTShape="INVERSE"))[0]
    assert np.array_equal(np.asarray(m2_inverse.image, int), 255 - np.asarray(m2.image, int))
    assert np.array_equal(np.asarray(m1_inverse.image, int), m1)


def test_ybr_is_converted_to_rgb():
    # the same stripes (red, light red, green, …) stored as RGB and as YBR_FULL_422
    rgb = np.asarray(one_image("SC_rgb_dcmtk_+eb+cr.dcm").image, float)
    for name in ("SC_rgb_dcmtk_+eb+cy+np.dcm", "SC_ybr_full_422_uncompressed.dcm", "SC_rgb_dcmtk_+eb+cy+n1.dcm"):
        got = np.asarray(one_image(name).image, float)
        assert np.abs(got - rgb).mean() < 6, name
    top_stripe = np.asarray(one_image("SC_ybr_full_422_uncompressed.dcm").image)[3, 50]
    assert top_stripe[0] > 240 and top_stripe[1] < 15 and top_stripe[2] < 15


def test_palette_colour():
    item = one_image("examples_palette.dcm")
    assert item.image.mode == "RGB"
    arr = np.asarray(item.image, int)
    assert np.abs(arr[..., 0] - arr[..., 2]).max() > 20, "palette colours, not grey"


def test_multiframe_middle_frame_by_default():
    got = open_name("examples_ybr_color.dcm")
    assert len(got) == 1 and got[0].locator == "frame 16"
    assert got[0].metadata["NumberOfFrames"] == 30


def test_multiframe_all_frames():
    got = open_name("examples_ybr_color.dcm", all_frames=True)
    assert [i.locator for i in got] == [f"frame {n}" for n in range(1, 31)]
    # frames 12 and 29 repeat frames 11 and 28 exactly (a frozen cine): notes, not classified again (repeats.py)
    assert all(isinstance(i, ImageItem) for n, i in enumerate(got, 1) if n not in (12, 29))
    assert [(i.locator, i.error) for i in got if isinstance(i, ItemError)] == [
        ("frame 12", "the same picture as frame 11; not classified again"),
        ("frame 29", "the same picture as frame 28; not classified again")]
    assert not np.array_equal(np.asarray(got[0].image), np.asarray(got[15].image))


def test_multiframe_cap_per_input(tmp_path):
    path = tmp_path / "cine.dcm"
    path.write_bytes(b.dicom_file("examples_ybr_color.dcm").read_bytes())
    got = list(open_input(path, Limits(all_frames=True, max_images_per_input=4)))
    assert [type(i).__name__ for i in got] == ["ImageItem"] * 4 + ["ItemError"]


def test_pixel_cap_from_header():
    got = open_name("CT_small.dcm", max_pixels=128 * 128 - 1)
    assert len(got) == 1 and isinstance(got[0], ItemError) and "max_pixels" in got[0].error
    # a header declaring a huge frame is refused before any decode is tried
    got = items(modified("CT_small.dcm", Rows=60000, Columns=60000))
    assert isinstance(got[0], ItemError) and "3,600,000,000" in got[0].error


def test_encapsulated_pdf_is_opened_like_any_pdf():
    """A scanned report stored as DICOM Encapsulated PDF: its images are found, with the DICOM file as origin;
    other encapsulated documents are a clear skipped note, and no patient name leaks either way."""
    import pymupdf
    from PIL import Image

    doc = pymupdf.open()
    for colour in ((200, 30, 30), (30, 30, 200)):
        page = doc.new_page()
        buf = io.BytesIO()
        Image.new("RGB", (160, 120), colour).save(buf, "PNG")
        page.insert_image(pymupdf.Rect(72, 72, 312, 252), stream=buf.getvalue())
    pdf = doc.tobytes()
    got = items(b.encapsulated_pdf_dicom(pdf + b"\x00"), name="report.dcm")  # padded to even length
    assert [i.locator for i in got] == ["page 1, image 1", "page 2, image 1"]
    assert all(isinstance(i, ImageItem) and i.origin == "report.dcm" for i in got)
    assert got[0].image.getpixel((5, 5)) == (200, 30, 30)
    assert "Testpatient" not in str([i.metadata for i in got])

    (empty,) = items(b.encapsulated_pdf_dicom())  # a PDF without pages: the PDF source says so
    assert isinstance(empty, ItemError) and "Testpatient" not in empty.error
    (cda,) = items(b.encapsulated_pdf_dicom(b"<ClinicalDocument/>", mime="text/XML"))
    assert isinstance(cda, ItemError) and cda.skipped and "encapsulated document" in cda.error
    assert "Testpatient" not in cda.error


def test_no_pixel_data_is_skipped_clearly():
    got = open_name("rtplan.dcm")
    assert len(got) == 1 and got[0].skipped and "without pixel data" in got[0].error


def test_dose_grids_and_segmentations_are_notes():
    """Pixels that are not a picture of the patient: RT Dose grids and SEG masks are skipped, saying what they are."""
    for name in ("rtdose.dcm", "rtdose_1frame.dcm"):
        got = open_name(name)
        assert len(got) == 1 and got[0].skipped and "radiotherapy dose grid, not an image" in got[0].error
    ds = pydicom.dcmread(b.dicom_file("MR_small.dcm"))
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"
    ds.Modality = "SEG"
    (seg,) = items(b.dicom_bytes(ds))
    assert seg.skipped and seg.error == "DICOM Segmentation Storage: segmentation masks, not an image (skipped)"


def test_truncated_pixel_data_is_an_error():
    got = open_name("MR_truncated.dcm")
    assert len(got) == 1 and isinstance(got[0], ItemError) and not got[0].skipped
    assert "pixel data" in got[0].error


def test_dataset_without_preamble_is_read():
    data = b.bare_dicom("MR_small.dcm")
    assert data[128:132] != b"DICM"
    got = items(data)
    assert len(got) == 1 and isinstance(got[0], ImageItem)
    assert np.array_equal(np.asarray(got[0].image), np.asarray(one_image("MR_small.dcm").image))


def test_sniffer_refuses_random_bytes_and_text():
    rng = random.Random(7)
    for _ in range(2000):
        head = bytes(rng.getrandbits(8) for _ in range(256))
        assert not accepts(head, Blob("r", head))
    for text in (b"hello world", b"(0008,0005) CS ISO_IR 100", b"\x08\x00" + b"\x00" * 300, b"\x00" * 4096):
        assert not accepts(text, Blob("t", text))


def test_metadata_keeps_only_technical_tags():
    item = one_image("CT_small.dcm")
    assert set(item.metadata) <= {"Modality", "BodyPartExamined", "PhotometricInterpretation", "Rows", "Columns",
                                  "NumberOfFrames", "BitsStored", "Manufacturer", "TransferSyntax", "SOPClass",
                                  "SOPClassUID"}
    assert item.metadata["Modality"] == "CT" and item.metadata["SOPClass"] == "CT Image Storage"
    assert item.metadata["SOPClassUID"] == "1.2.840.10008.5.1.4.1.1.2"  # the class, not the instance


IDENTIFYING = ["PatientName", "PatientID", "PatientBirthDate", "OtherPatientIDs", "ReferringPhysicianName",
               "AccessionNumber", "PatientAddress"]


def test_no_patient_identifiers_anywhere(caplog):
    """Every bundled file: no identifying value in metadata, errors, warnings or logs."""
    caplog.set_level(logging.DEBUG)
    checked = 0
    for path in sorted(b.dicom_dir().rglob("*")):
        if not path.is_file():
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:
            continue
        values = (str(ds.get(k, "")) for k in IDENTIFYING)
        secrets = {v for v in values if sum(c.isalnum() for c in v) >= 4}
        if not secrets:
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = list(open_input(path))
        text = " ".join(repr(i.metadata) if isinstance(i, ImageItem) else i.error for i in got)
        text += " ".join(str(w.message) for w in caught) + caplog.text
        for secret in secrets:
            assert secret not in text, (path.name, secret)
        checked += 1
    assert checked > 30


def test_error_text_is_scrubbed_of_header_values():
    ds = pydicom.dcmread(b.dicom_file("CT_small.dcm"))
    name = str(ds.PatientName)
    text = _scrub(ValueError(f"bad value {name!r} in element"), ds)
    assert name not in text and "bad value" in text


def test_a_header_that_cannot_be_walked_still_gives_the_decoding_error():
    """Found by fuzzing: with Pixel Representation gone, walking the header to scrub the error raised pydicom's
    'Failed to resolve ambiguous VR' from inside the error path, and the real reason was lost."""
    data = b.bare_dicom("MR_small.dcm").replace(b"\x28\x00\x03\x01", b"\x28\x00\x05\x01", 1)  # (0028,0103) renamed
    (err,) = items(data)
    assert err.error == ("could not decode DICOM pixel data (Implicit VR Little Endian): AttributeError: Missing "
                         "required element: (0028,0103) 'Pixel Representation'")


def test_all_plugins_failing_is_one_readable_line():
    ds = pydicom.dcmread(b.dicom_file("CT_small.dcm"))
    exc = RuntimeError("Unable to decode as exceptions were raised by all available plugins:\n  pylibjpeg: Error "
                       "decoding the J2K data: failed to read the header\n  pillow: cannot identify image file "
                       "<_io.BytesIO object at 0x7f3ec9e33f10>")
    assert _scrub(exc, ds) == ("no decoder could read it (pylibjpeg: Error decoding the J2K data: failed to read the "
                               "header; pillow: cannot identify image file)")


def test_dicom_is_found_by_content_not_name(tmp_path):
    path = tmp_path / "scan.jpg"
    path.write_bytes(b.dicom_file("CT_small.dcm").read_bytes())
    got = list(open_input(path))
    assert len(got) == 1 and got[0].format == "DICOM"


@pytest.mark.timeout(30)
def test_lying_frame_count_is_capped_at_the_frames_held():
    # found before decoding (s36): one note, then the 15 frames the pixel data holds; frames that fail to decode
    # are given up after 3 (test_dicom_s36.py)
    data = modified("rtdose.dcm", NumberOfFrames=1_000_000, Modality="CT",  # a multi-frame CT for the test
                    SOPClassUID="1.2.840.10008.5.1.4.1.1.2.1")
    got = items(data, all_frames=True)
    assert [type(i).__name__ for i in got] == ["ItemError"] + ["ImageItem"] * 15
    assert "holds 15 whole frames, but the file declares 1,000,000 frames" in got[0].error
    assert got[-1].locator == "frame 15"


def test_enhanced_functional_groups_rescale_and_window():
    """Enhanced CT/MR keep rescale and window in functional groups, not at the top level."""
    plain = modified("CT_small.dcm", WindowCenter=40, WindowWidth=400)
    ds = pydicom.dcmread(b.dicom_file("CT_small.dcm"))
    transform, voi, shared, frame = pydicom.Dataset(), pydicom.Dataset(), pydicom.Dataset(), pydicom.Dataset()
    transform.RescaleSlope, transform.RescaleIntercept = ds.RescaleSlope, ds.RescaleIntercept
    voi.WindowCenter, voi.WindowWidth = 40, 400
    shared.PixelValueTransformationSequence = [transform]
    frame.FrameVOILUTSequence = [voi]
    ds.SharedFunctionalGroupsSequence = [shared]
    ds.PerFrameFunctionalGroupsSequence = [frame]
    del ds.RescaleSlope, ds.RescaleIntercept
    got = np.asarray(items(b.dicom_bytes(ds))[0].image)
    assert np.array_equal(got, np.asarray(items(plain)[0].image))


def slide_tiles(n: int = 40, tissue: int = 26, slide: bool = True, spacing_mm: float | None = None,
                sparse: bool = False, grid: bool = True, tile: int = 64) -> bytes:
    """A VL Whole Slide Microscopy file of n `tile`-px square RGB tiles, 8 across: glass everywhere but tile `tissue`.
    `sparse` stores the tiles in reverse order with per-frame positions (TILED_SPARSE); `grid=False` leaves
    out the total pixel matrix, so where the tiles lie is unknown."""
    from pydicom.uid import ExplicitVRLittleEndian

    rng = np.random.default_rng(1)
    tiles = np.full((n, tile, tile, 3), 240, np.uint8) + rng.integers(0, 8, (n, tile, tile, 3), dtype=np.uint8)
    tiles[tissue] = (215, 140, 190)
    tiles[tissue, ::5, ::7] = (90, 40, 140)  # nuclei
    # VL Whole Slide Microscopy, or Multi-frame True Color Secondary Capture
    ds = b.dicom_dataset(ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.77.1.6" if slide else
                         "1.2.840.10008.5.1.4.1.1.7.4", "SM" if slide else "OT")
    ds.PatientName = "Doe^Jane"
    ds.Rows = ds.Columns = tile
    ds.NumberOfFrames = n
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if grid:
        ds.DimensionOrganizationType = "TILED_SPARSE" if sparse else "TILED_FULL"
        ds.TotalPixelMatrixColumns, ds.TotalPixelMatrixRows = tile * 8, tile * -(-n // 8)
    if spacing_mm is not None:
        measures = pydicom.Dataset()
        measures.PixelSpacing = [spacing_mm, spacing_mm]
        shared = pydicom.Dataset()
        shared.PixelMeasuresSequence = [measures]
        ds.SharedFunctionalGroupsSequence = [shared]
    if sparse:
        order = list(range(n))[::-1]
        tiles = tiles[order]
        groups = []
        for i in order:
            pos, group = pydicom.Dataset(), pydicom.Dataset()
            pos.ColumnPositionInTotalImagePixelMatrix = i % 8 * tile + 1
            pos.RowPositionInTotalImagePixelMatrix = i // 8 * tile + 1
            group.PlanePositionSlideSequence = [pos]
            groups.append(group)
        ds.PerFrameFunctionalGroupsSequence = groups
    ds.PixelData = tiles.tobytes()
    return b.dicom_bytes(ds)


def colourful(px: np.ndarray) -> float:
    px = px.astype(np.int16)
    return float((px.max(axis=-1) - px.min(axis=-1)).mean())


def test_whole_slide_dicom_gives_a_field_around_the_tile_with_tissue():
    """A slide's middle tile is usually glass: the field is pasted from the tiles around the one with the most
    tissue (at a quarter of full resolution when the file gives no pixel spacing, as the OpenSlide source,
    but never more than 8 tile widths across: these tiles are small)."""
    (item,) = items(slide_tiles())
    assert isinstance(item, ImageItem) and item.locator == "field around frame 27"
    assert item.metadata["tile_choice"] == {"sampled": 32, "tissue_fraction": 1.0}
    # 8 × 5 tiles of 64 px: a 320 px square (the slide's height) at the left edge, 5 × 5 tiles
    assert item.metadata["field"] == {"tiles": 25, "left": 0, "top": 0, "side": 320, "um_per_pixel": None}
    assert item.image.size == (320, 320)
    px = np.asarray(item.image)
    assert colourful(px[192:256, 128:192]) > 40  # tile 27 (column 3, row 4) is pink tissue
    assert colourful(px[:192]) < 10 and colourful(px[:, 192:]) < 10  # the rest is glass
    assert "Doe" not in str(item.metadata)


def test_whole_slide_dicom_field_follows_pixel_spacing_and_sparse_tiles():
    (full,) = items(slide_tiles(spacing_mm=0.001))  # 1 µm/px: the field is shown at full resolution
    assert full.image.size == (320, 320) and full.metadata["field"]["um_per_pixel"] == 1.0
    (sparse,) = items(slide_tiles(spacing_mm=0.001, sparse=True))  # same tiles, reverse order, positions given
    assert sparse.locator == "field around frame 14"  # 40 - 27 + 1
    assert np.array_equal(np.asarray(sparse.image), np.asarray(full.image))
    (fine,) = items(slide_tiles(spacing_mm=0.0005, tile=128))  # 0.5 µm/px: shown at half size, as 1 µm/px
    assert fine.metadata["field"] == {"tiles": 25, "left": 0, "top": 0, "side": 640, "um_per_pixel": 1.0}
    assert fine.image.size == (320, 320) and colourful(np.asarray(fine.image)[192:256, 128:192]) > 40
    (coarse,) = items(slide_tiles(spacing_mm=0.004))  # 4 µm/px, a low level: one tile already shows enough
    assert coarse.locator == "frame 27" and coarse.image.size == (64, 64) and "field" not in coarse.metadata
    (unplaced,) = items(slide_tiles(grid=False))  # no total pixel matrix: where tiles lie is unknown
    assert unplaced.locator == "frame 27" and unplaced.image.size == (64, 64)


def test_dicom_field_is_capped_in_tiles_and_pixels():
    slide = slide_tiles(n=160, tissue=82, spacing_mm=0.0001)  # 0.1 µm/px would need 80 tiles across
    (item,) = items(slide)
    # 8 tiles' width (512 px) instead, shown unscaled; unaligned with the grid, it touches 8 × 9 tiles
    assert item.metadata["field"] == {"tiles": 72, "left": 0, "top": 416, "side": 512, "um_per_pixel": 0.1}
    assert item.image.size == (512, 512) and colourful(np.asarray(item.image)[224:288, 128:192]) > 40
    (item,) = items(slide, max_pixels=100_000)  # 512² is over the pixel cap: the tile alone
    assert item.locator == "frame 83" and item.image.size == (64, 64)


def test_multiframe_that_is_not_a_slide_gives_the_middle_frame():
    (other,) = items(slide_tiles(slide=False))
    assert other.locator == "frame 21"
    assert len(items(slide_tiles(), all_frames=True)) == 40


@pytest.mark.parametrize("tile, spacing_mm, shrink", [(64, None, 1), (128, 0.00025, 2)])
def test_jpeg_slide_tiles_decode_as_pydicom_decodes_them(monkeypatch, tile, spacing_mm, shrink):
    """Baseline-JPEG YCbCr tiles (most DICOM slides) take a faster path through Pillow, decoding at reduced
    size (DCT scaling) when the field is shown smaller: the field matches the tiles as pydicom decodes them,
    box-averaged to the field's scale."""
    from pydicom.pixels import pixel_array as decode
    from PIL import Image

    rng = np.random.default_rng(2)
    frames = []
    for i in range(24):  # 6 × 4 tiles; tissue in the middle two rows
        arr = np.full((tile, tile, 3), 240, np.uint8)
        if 6 <= i < 18:
            arr[:] = (215, 140, 190)
            arr[rng.random((tile, tile)) < 0.05] = (90, 40, 140)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=85)
        frames.append(buf.getvalue())
    data = b.jpeg_slide_dicom(frames, across=6, tile=tile, spacing_mm=spacing_mm)
    import medimg.sources.dicom_frames as source  # where frames are decoded

    with monkeypatch.context() as m:  # the fast path never asks pydicom to decode a tile
        m.setattr(source, "pixel_array", lambda *a, **k: pytest.fail("decoded through pydicom"))
        (item,) = items(data)
    field = item.metadata["field"]
    assert item.locator.startswith("field around frame") and field["tiles"] == 16
    got = np.asarray(item.image, np.int16)
    back = pydicom.dcmread(io.BytesIO(data))
    want = np.zeros((4 * tile, 6 * tile, 3), np.uint8)
    for i in range(len(frames)):
        r, c = divmod(i, 6)
        want[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = decode(back, index=i)
    want = want[field["top"]:field["top"] + field["side"], field["left"]:field["left"] + field["side"]]
    want = np.asarray(Image.fromarray(want).reduce(shrink), np.int16)
    assert got.shape == want.shape and np.abs(got - want).mean() < 3


def jxl_dicom(ds, syntax: str) -> bytes:
    """Written under an encapsulated syntax pydicom knows (same UID length), then named as JPEG XL: pydicom
    refuses to write a transfer syntax it does not know yet."""
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"
    return b.dicom_bytes(ds).replace(b"1.2.840.10008.1.2.4.100", syntax.encode(), 1)


def test_jpeg_xl_transfer_syntaxes_decode():
    """JPEG XL in DICOM (2024): lossless frames give the very pixels; a lossy colour multi-frame decodes too."""
    imagecodecs = pytest.importorskip("imagecodecs")
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(b.dicom_file("MR_small.dcm"))
    plain = one_image("MR_small.dcm")
    frame = imagecodecs.jpegxl_encode(ds.pixel_array.view(np.uint16), lossless=True)
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    (item,) = items(jxl_dicom(ds, "1.2.840.10008.1.2.4.110"))
    assert isinstance(item, ImageItem), item
    assert np.array_equal(np.asarray(item.image), np.asarray(plain.image))
    rgb = np.zeros((3, 40, 60, 3), np.uint8)
    for k in range(3):
        rgb[k, :, 20 * k:20 * k + 20] = (220, 40, 40)
    ds = pydicom.dcmread(b.dicom_file("MR_small.dcm"))
    ds.Rows, ds.Columns, ds.NumberOfFrames, ds.SamplesPerPixel = 40, 60, 3, 3
    ds.PhotometricInterpretation, ds.PlanarConfiguration = "RGB", 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    for tag in ("WindowCenter", "WindowWidth", "RescaleSlope", "RescaleIntercept"):
        if tag in ds:
            delattr(ds, tag)
    ds.PixelData = encapsulate([imagecodecs.jpegxl_encode(f, level=90) for f in rgb])
    ds["PixelData"].VR = "OB"
    (item,) = items(jxl_dicom(ds, "1.2.840.10008.1.2.4.112"))
    px = np.asarray(item.image)
    assert item.locator == "frame 2" and item.image.mode == "RGB" and px[20, 30, 0] > 180 and px[20, 5, 0] < 60


def peak_bytes(fn):
    """What fn returns, and the most Python and numpy memory it held at once."""
    import tracemalloc

    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def deflated_dicom(inflated: int) -> bytes:
    """A Deflated Explicit VR Little Endian file whose dataset (one private OB element of zeros) inflates to
    about `inflated` bytes, made in steps so the test never holds it."""
    import struct
    import zlib

    def elem(group, el, vr, value):
        if vr == b"OB":
            return struct.pack("<HH2sHI", group, el, vr, 0, len(value)) + value
        return struct.pack("<HH2sH", group, el, vr, len(value)) + value

    body = (elem(2, 1, b"OB", b"\x00\x01") + elem(2, 2, b"UI", b"1.2.840.10008.5.1.4.1.1.7\x00")
            + elem(2, 3, b"UI", b"1.2.3.4\x00") + elem(2, 0x10, b"UI", b"1.2.840.10008.1.2.1.99"))
    meta = elem(2, 0, b"UL", struct.pack("<I", len(body))) + body
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    step = 1 << 20
    parts = [co.compress(elem(8, 0x60, b"CS", b"OT") + struct.pack("<HH2sHI", 9, 0x1010, b"OB", 0, inflated))]
    parts += [co.compress(bytes(step)) for _ in range(inflated // step)]
    return bytes(128) + b"DICM" + meta + b"".join(parts) + co.flush()


def test_deflated_dataset_is_inflated_under_the_byte_cap():
    """pydicom inflates a deflated dataset whole; here it is inflated in steps and refused past max_input_bytes
    (a 32 KB file inflating to 32 MB, under a 4 MB cap), while real deflated files still read."""
    data = deflated_dicom(32 << 20)
    assert len(data) < 64 << 10
    got, peak = peak_bytes(lambda: items(data, max_input_bytes=4 << 20))
    assert len(got) == 1 and isinstance(got[0], ItemError) and not got[0].skipped
    assert "max_input_bytes" in got[0].error and "4,194,304" in got[0].error
    assert peak < 16 << 20, f"{peak:,} bytes held"
    dfl = b.dicom_file("image_dfl.dcm").read_bytes()  # 512×512 8-bit: inflates to about 270 KB
    (item,) = items(dfl, max_input_bytes=1 << 20)
    assert isinstance(item, ImageItem) and item.image.size == (512, 512)
    assert item.metadata["TransferSyntax"] == "Deflated Explicit VR Little Endian"
    (small,) = items(dfl, max_input_bytes=200_000)
    assert isinstance(small, ItemError) and "max_input_bytes" in small.error


def with_changes(data: bytes, **changes) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    for key, value in changes.items():
        setattr(ds, key, value)
    return b.dicom_bytes(ds)


@pytest.mark.timeout(30)
def test_slide_frame_count_beyond_its_pixel_data_or_grid_is_refused():
    """A slide whose NumberOfFrames is more than its pixel data or its TILED_FULL grid can hold is refused
    at once: no list of a position per declared frame."""
    lying = with_changes(slide_tiles(), NumberOfFrames=1_000_000)  # 40 native tiles
    got, peak = peak_bytes(lambda: items(lying))
    assert len(got) == 1 and isinstance(got[0], ItemError)
    assert "declares 1,000,000 frames" in got[0].error and "pixel data holds (40)" in got[0].error
    assert peak < 20 << 20, f"{peak:,} bytes held"
    from PIL import Image

    frames = [b.encode(Image.new("RGB", (16, 16), (240, 240, 240)), "JPEG") for _ in range(4)]
    jpeg = with_changes(b.jpeg_slide_dicom(frames, across=2, tile=16), NumberOfFrames=10_000_000)
    (err,) = items(jpeg)  # encapsulated: a frame is at least one fragment
    assert isinstance(err, ItemError) and "pixel data holds (4)" in err.error
    # 40 tiles, but a TILED_FULL grid of 8 × 2 places
    (err,) = items(with_changes(slide_tiles(), TotalPixelMatrixRows=128))
    assert isinstance(err, ItemError) and "TILED_FULL grid of 8×2 tiles holds" in err.error


def test_tiled_full_field_comes_from_the_centre_frames_plane():
    """Two focal planes of 8 × 5 tiles: tissue only in the second. The field is pasted, by index arithmetic,
    from the tiles of the plane the chosen frame is in."""
    data = with_changes(slide_tiles(n=80, tissue=66), TotalPixelMatrixRows=320, TotalPixelMatrixFocalPlanes=2)
    (item,) = items(data)
    assert item.locator == "field around frame 67"  # tile 26 (column 2, row 3) of the second plane
    assert item.metadata["field"] == {"tiles": 25, "left": 0, "top": 0, "side": 320, "um_per_pixel": None}
    assert colourful(np.asarray(item.image)[192:256, 128:192]) > 40


def compressed_dicom(frame: bytes, syntax: str, rows: int = 64, cols: int = 64) -> bytes:
    """One 8-bit grey frame, already compressed, behind a header saying rows × cols."""
    from pydicom.encaps import encapsulate

    ds = b.dicom_dataset(syntax, "1.2.840.10008.5.1.4.1.1.7", "OT")
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    return b.dicom_bytes(ds)


def frame_declaring(codec: str, side: int) -> tuple[bytes, str]:
    """A 64 × 64 compressed frame whose own header (J2K SIZ, JPEG SOF0, JPEG-LS SOF55) says side × side."""
    import struct

    from PIL import Image
    from pydicom.encaps import get_frame

    if codec == "jpeg-ls":
        ds = pydicom.dcmread(b.dicom_file("MR_small_jpeg_ls_lossless.dcm"))
        frame = bytearray(get_frame(ds.PixelData, 0, number_of_frames=1))
        struct.pack_into(">HH", frame, frame.find(b"\xff\xf7") + 5, side, side)
        return bytes(frame), "1.2.840.10008.1.2.4.80"
    img = Image.new("L", (64, 64), 100)
    if codec == "j2k":
        frame = bytearray(b.encode(img, "JPEG2000", irreversible=False, no_jp2=True))
        struct.pack_into(">8I", frame, frame.find(b"\xff\x51") + 6, side, side, 0, 0, side, side, 0, 0)
        return bytes(frame), "1.2.840.10008.1.2.4.90"
    frame = bytearray(b.encode(img, "JPEG"))
    struct.pack_into(">HH", frame, frame.find(b"\xff\xc0") + 5, side, side)
    return bytes(frame), "1.2.840.10008.1.2.4.50"


@pytest.mark.parametrize("codec", ["j2k", "jpeg", "jpeg-ls"])
def test_compressed_frame_declaring_another_size_is_not_decoded(codec):
    """Rows × Columns say 64 × 64, the codestream says 4000 × 4000: decoders allocate what the codestream
    says, so the frame's own header is read first and the frame refused before any decoding."""
    frame, syntax = frame_declaring(codec, 4000)
    got, peak = peak_bytes(lambda: items(compressed_dicom(frame, syntax)))
    assert len(got) == 1 and isinstance(got[0], ItemError), got
    assert "frame says it is 4000×4000 pixels, not the 64×64 of Rows/Columns" in got[0].error
    assert peak < 8 << 20, f"{peak:,} bytes held"
    (over,) = items(compressed_dicom(frame, syntax), max_pixels=1_000_000)
    assert "over the max_pixels cap of 1,000,000" in over.error


def jp2_frame(box: bytes, length: int) -> bytes:
    """A 64 × 64 grey JPEG 2000 frame in a JP2 wrapper, the length of its `box` box set to `length`."""
    import struct

    from PIL import Image

    img = Image.new("L", (64, 64), 100)
    img.paste(200, (16, 16, 48, 48))
    frame = bytearray(b.encode(img, "JPEG2000", irreversible=False))
    struct.pack_into(">I", frame, frame.index(box) - 4, length)
    return bytes(frame)


@pytest.mark.timeout(60)
def test_jp2_wrapped_frame_with_a_box_of_length_0_before_the_codestream_is_not_decoded():
    """pydicom walks a JP2 wrapper's boxes to the codestream and, on a box of length 0 ("to the end") before
    it, never ends: the batch hung for good. Found by mutating files."""
    frame = jp2_frame(b"jp2h", 0)
    (item,) = items(compressed_dicom(frame, "1.2.840.10008.1.2.4.90"))
    assert isinstance(item, ItemError), item
    assert "JPEG 2000 frame in a JP2 wrapper with a box b'jp2h' at byte 32 of length 0 before the codestream, " \
           "where pydicom's walk of the boxes never ends; not decoded" in item.error


@pytest.mark.timeout(60)
def test_jp2_wrapped_frame_with_an_extended_length_box_before_the_codestream_is_not_decoded():
    """A box with an 8-byte length (LBox 1): pydicom steps one byte on and then never ends either."""
    import struct

    frame = jp2_frame(b"jp2c", 0)
    at = frame.index(b"jp2c") - 4
    payload = bytes(16) + b"x" * 300
    frame = frame[:at] + struct.pack(">I4sQ", 1, b"uuid", 16 + len(payload)) + payload + frame[at:]
    (item,) = items(compressed_dicom(frame, "1.2.840.10008.1.2.4.90"))
    assert isinstance(item, ItemError) and f"with an extended-length box b'uuid' at byte {at} before the " \
                                           "codestream" in item.error, item


def test_jp2_wrapped_frames_still_decode():
    """A JP2 wrapper is not DICOM's form, but seen: it decodes, the codestream box's length 0 (to the end,
    where it always is) too."""
    import struct

    whole = jp2_frame(b"jp2c", 0)
    good = bytearray(whole)
    struct.pack_into(">I", good, good.index(b"jp2c") - 4, len(good) - good.index(b"jp2c") + 4)
    for frame in (bytes(good), whole):
        (item,) = items(compressed_dicom(frame, "1.2.840.10008.1.2.4.90"))
        assert isinstance(item, ImageItem), item
        pixels = np.asarray(item.image.convert("L"))
        assert item.image.size == (64, 64) and pixels[32, 32] > pixels[4, 4] + 50


def test_jpeg_xl_frame_declaring_another_size_is_not_decoded():
    imagecodecs = pytest.importorskip("imagecodecs")
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(b.dicom_file("MR_small.dcm"))
    ds.PixelData = encapsulate([imagecodecs.jpegxl_encode(ds.pixel_array.view(np.uint16), lossless=True)])
    ds["PixelData"].VR = "OB"
    ds.Rows = ds.Columns = 16  # the codestream's SizeHeader says 64 × 64
    (item,) = items(jxl_dicom(ds, "1.2.840.10008.1.2.4.110"))
    assert isinstance(item, ItemError) and "JPEG XL frame says it is 64×64 pixels, not the 16×16" in item.error


def test_jpeg_slide_tiles_declaring_another_size_are_not_decoded():
    """Slide tiles decoded by Pillow are checked as well: each JPEG says 128 × 128, Rows/Columns 64 × 64."""
    from PIL import Image

    frames = [b.encode(Image.new("RGB", (128, 128), (215, 140, 190)), "JPEG") for _ in range(24)]
    (item,) = items(b.jpeg_slide_dicom(frames, across=6, tile=64))
    assert isinstance(item, ItemError), item
    assert "JPEG frame says it is 128×128 pixels, not the 64×64 of Rows/Columns" in item.error


@pytest.mark.parametrize("bits", [32, 64])
def test_float_pixels_with_nan_or_infinity_keep_their_picture(bits):
    """Float pixel data (parametric maps) with a NaN, +inf and -inf pixel: the range comes from the finite
    values, so the picture is the same as without them (it used to come out all black)."""
    from pydicom.uid import ExplicitVRLittleEndian

    grad = np.linspace(0, 1000, 64 * 64).reshape(64, 64).astype(np.float32 if bits == 32 else np.float64)

    def float_dicom(arr):
        ds = b.dicom_dataset(ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.30", "MR")  # Parametric Map
        ds.Rows, ds.Columns = 64, 64
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.BitsAllocated = 1, "MONOCHROME2", bits
        setattr(ds, "FloatPixelData" if bits == 32 else "DoubleFloatPixelData", arr.tobytes())
        (item,) = items(b.dicom_bytes(ds))
        assert isinstance(item, ImageItem), item
        return np.asarray(item.image, int)

    clean = float_dicom(grad)
    bad = grad.copy()
    bad[10, 10], bad[20, 20], bad[30, 30] = np.nan, np.inf, -np.inf
    got = float_dicom(bad)
    assert clean.max() == 255 and got.max() == 255
    keep = np.isfinite(bad)
    assert np.abs(got[keep] - clean[keep]).max() <= 1
    assert got[20, 20] == 255 and got[30, 30] == 0


def rle_ct(rows: int = 96) -> pydicom.Dataset:
    from pydicom.uid import RLELossless

    ds = b.dicom_dataset(pydicom.uid.ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.2", "CT")
    ds.Rows = ds.Columns = rows
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    y, x = np.mgrid[:rows, :rows]
    ds.PixelData = np.where(np.hypot(x - rows / 2, y - rows / 2) < rows / 3, 1064, 24).astype(np.uint16).tobytes()
    ds.compress(RLELossless)
    return ds


def panicking_rle() -> bytes:
    """An RLE CT with one byte of its compressed data changed so that pylibjpeg-rle's Rust decoder panics
    (pyo3's PanicException derives from BaseException, which `except Exception` does not catch)."""
    data = bytearray(b.dicom_bytes(rle_ct()))
    start = data.index(b"\xe0\x7f\x10\x00")
    for pos in range(start + 100, len(data)):
        if not 0x81 < data[pos] < 0xFF:
            continue
        trial = bytearray(data)
        trial[pos] = 0x81  # a long replicate run that overruns its segment
        try:
            pydicom.dcmread(io.BytesIO(bytes(trial))).pixel_array
        except BaseException as exc:  # noqa: BLE001 - looking for the panic
            if type(exc).__name__ == "PanicException":
                return bytes(trial)
        except Exception:
            continue
    pytest.fail("no changed byte makes the RLE decoder panic: the test needs another way to reach a panic")


@pytest.mark.timeout(60)
def test_a_decoder_panic_is_an_error_for_its_file_alone(tiny_classifier):
    """Two damaged files (as many as the workers) and the good ones around them: each damaged file gets its
    error record, every good one its result, and the run ends."""
    from medimg.pipeline import classify

    bad, good = panicking_rle(), b.dicom_bytes(rle_ct())
    blobs = [Blob(n, d) for n, d in (("a.dcm", good), ("b.dcm", bad), ("c.dcm", bad), ("d.dcm", good),
                                     ("e.dcm", good))]
    recs = list(classify(blobs, classifier=tiny_classifier, workers=2))
    assert [r.input for r in recs] == ["a.dcm", "b.dcm", "c.dcm", "d.dcm", "e.dcm"]
    assert [r.ok for r in recs] == [True, False, False, True, True]
    for r in recs[1:3]:
        assert "could not decode DICOM pixel data (RLE Lossless)" in r.error and "PanicException" in r.error


def stretched(data: bytes, tag: bytes, through: bytes) -> bytes:
    """`data` with the 16-bit length of the element `tag` (group, element, VR as written) stretched to the end
    of the element `through`: pydicom then reads the elements between into its value."""
    import struct

    data = bytearray(data)
    at = data.index(tag, 132 + 12 + 60)  # in the dataset, not the file meta
    last = data.index(through)
    end = last + 8 + struct.unpack_from("<H", data, last + 6)[0]
    struct.pack_into("<H", data, at + 6, end - (at + 8))
    return bytes(data)


@pytest.mark.parametrize("pixels", [True, False])
def test_a_damaged_length_never_carries_identifiers_into_metadata_or_notes(pixels):
    """A SOP class or Modality whose length swallows the patient's name, ID and birth date: those values are
    left out (the file meta's SOP class is used instead), never passed on."""
    ds = b.dicom_dataset(pydicom.uid.ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.2", "CT")
    ds.AccessionNumber, ds.InstitutionName = "ACC55512399", "Saint Elsewhere General Hospital"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "DOE^JOHNATHAN", "PID7788123", "19610203"
    if pixels:
        ds.Rows = ds.Columns = 64
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = np.arange(64 * 64, dtype=np.uint16).tobytes()
    data = b.dicom_bytes(ds)
    secrets = ["ACC55512399", "Elsewhere", "DOE^JOHNATHAN", "PID7788123", "19610203"]
    for tag in (b"\x08\x00\x16\x00UI", b"\x08\x00\x60\x00CS"):  # SOPClassUID, Modality
        damaged = stretched(data, tag, b"\x10\x000\x00DA")
        assert "DOE^JOHNATHAN" in str(pydicom.dcmread(io.BytesIO(damaged)).get(tag[4:6] == b"UI" and "SOPClassUID"
                                                                                   or "Modality"))
        got = items(damaged)
        assert len(got) == 1
        text = repr(got[0].metadata) if pixels else got[0].error
        assert not [s for s in secrets if s in text], text
        if pixels:
            assert isinstance(got[0], ImageItem) and got[0].metadata["SOPClass"] == "CT Image Storage"
            assert "Modality" not in got[0].metadata  # swallowed (after the SOP class) or damaged itself
        else:
            assert got[0].skipped and "CT Image Storage" in got[0].error


@pytest.mark.parametrize("image_type, read", [
    (["ORIGINAL", "PRIMARY", "VOLUME", "NONE"], True), (["DERIVED", "PRIMARY", "THUMBNAIL", "RESAMPLED"], True),
    (["ORIGINAL", "PRIMARY", "LABEL", "NONE"], False), (["ORIGINAL", "PRIMARY", "OVERVIEW", "NONE"], False)])
def test_slide_label_and_overview_images_are_not_read(image_type, read):
    """A DICOM slide export holds label and overview (macro) pictures beside the tissue; they show the slide's
    paper label, with the patient's name, so they are left out as OpenSlide's are."""
    ds = pydicom.dcmread(io.BytesIO(slide_tiles(n=1, tissue=0)))
    ds.ImageType = image_type
    ds.BurnedInAnnotation = "NO" if read else "YES"
    got = items(b.dicom_bytes(ds))
    assert len(got) == 1
    if read:
        assert isinstance(got[0], ImageItem)
    else:
        assert got[0].skipped and f"slide {image_type[2].lower()} image not read" in got[0].error


@pytest.mark.parametrize("limit", [None, -2000])
def test_padding_outside_the_field_of_view_is_left_out_of_the_range(limit):
    """A CT without a window, padded with -3000 outside its round field of view: air (-1000 HU) is black,
    as it would be without the padding, not mid-grey."""
    ds = b.dicom_dataset(pydicom.uid.ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.2", "CT")
    ds.Rows = ds.Columns = 64
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    y, x = np.mgrid[:64, :64]
    hu = np.where(np.hypot(x - 32, y - 32) < 30, -1000, -3000 if limit is None else -2500).astype(np.int16)
    hu[20:44, 20:44] = 40  # soft tissue
    ds.PixelPaddingValue = -3000
    if limit is not None:
        ds.PixelPaddingRangeLimit = limit
    ds.PixelData = hu.tobytes()
    px = np.asarray(items(b.dicom_bytes(ds))[0].image)
    assert px[32, 32] == 255 and px[32, 5] == 0  # tissue white, air black
    assert px[0, 0] == 0  # padding drawn at the bottom


def test_an_invalid_palette_or_voi_lut_is_said_plainly():
    """A lookup table whose descriptor does not match its data: one plain error, not numpy's or struct's."""
    ds = pydicom.dcmread(b.dicom_file("examples_palette.dcm"))
    ds.RedPaletteColorLookupTableDescriptor = [0, 0, 16]
    (got,) = items(b.dicom_bytes(ds))
    assert got.error == ("could not decode DICOM pixel data: the file's palette colour lookup table is invalid "
                         "(its descriptor does not match its data)")
    ds = pydicom.dcmread(b.dicom_file("CT_small.dcm"))
    item = pydicom.Dataset()
    item.add_new(0x00283002, "US", [0, 0, 16])  # LUTDescriptor: 65,536 entries
    item.add_new(0x00283006, "US", [0, 1, 2, 3])  # LUTData: four
    ds.VOILUTSequence = [item]
    (got,) = items(b.dicom_bytes(ds))
    assert got.error == ("could not decode DICOM pixel data: the file's VOI lookup table is invalid "
                         "(its descriptor does not match its data)")


def test_twelve_bit_frames_decode_without_a_warning(caplog):
    """CT_small.dcm stores 16 bits; with BitsStored 12 the unused high bits are cleared by a copy, which pydicom
    warns about when asked for a view."""
    caplog.set_level(logging.WARNING)
    ds = pydicom.dcmread(b.dicom_file("CT_small.dcm"))
    ds.BitsStored, ds.HighBit = 12, 11
    (got,) = items(b.dicom_bytes(ds))
    assert isinstance(got, ImageItem)
    assert not [r for r in caplog.records if "view" in r.getMessage()], caplog.text


def _ct_slice(case: str) -> pydicom.Dataset:
    """A signed 16-bit CT slice, 96 × 96: noisy tissue in a round field of view padded with -3000."""
    ds = b.dicom_dataset(pydicom.uid.ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.2", "CT")
    ds.Rows = ds.Columns = 96
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    y, x = np.mgrid[:96, :96]
    rng = np.random.default_rng(7)
    stored = (1024 + 1500 * np.sin(x / 9.0) * np.cos(y / 13.0) + rng.normal(0, 40, (96, 96))).astype(np.int16)
    stored[np.hypot(x - 48, y - 48) >= 44] = -3000
    ds.PixelPaddingValue = -3000
    if case == "window":
        ds.WindowCenter, ds.WindowWidth = 40, 400
    elif case == "padding range":
        ds.PixelPaddingRangeLimit = -2000
        stored[:3] = -2500
    elif case == "monochrome1 fractional slope":
        ds.PhotometricInterpretation = "MONOCHROME1"
        ds.RescaleSlope, ds.RescaleIntercept = -0.37, 12.5
    elif case == "sigmoid":
        ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = 300, 900, "SIGMOID"
    elif case == "modality lut":  # not monotone: the values absent from the frame must not widen the range
        del ds.RescaleSlope, ds.RescaleIntercept
        item = pydicom.Dataset()
        item.LUTDescriptor = [4096, 0, 16]
        item.ModalityLUTType = "HU"
        item.add_new(0x00283006, "US", [(v * 37) % 4001 for v in range(4096)])
        ds.ModalityLUTSequence = [item]
    elif case == "voi lut":
        item = pydicom.Dataset()
        item.add_new(0x00283002, "SS", [2048, -1024, 16])
        item.add_new(0x00283006, "US", [(v * v) % 65536 for v in range(2048)])
        ds.VOILUTSequence = [item]
    ds.PixelData = stored.tobytes()
    return pydicom.dcmread(io.BytesIO(b.dicom_bytes(ds)))


@pytest.mark.parametrize("source", ["CT_small.dcm", "MR_small.dcm", "MR_small_bigendian.dcm", "MR_small_padded.dcm",
                                    "JPGExtended.dcm", "693_J2KI.dcm", "image_dfl.dcm", "padding", "window",
                                    "padding range", "monochrome1 fractional slope", "sigmoid", "modality lut",
                                    "voi lut"])
def test_per_value_path_gives_the_pixels_of_the_strip_path(source, monkeypatch):
    """An integer greyscale frame worked out once per stored value present, then looked up, is drawn exactly as
    the float strip-by-strip path draws it: pydicom's files (CT_small and 693_J2KI carry PixelPaddingValue) and
    a synthetic signed CT slice with rescale, window, padding, LUTs and MONOCHROME1."""
    from medimg.sources import dicom, dicom_levels

    ds = _ct_slice(source) if not source.endswith(".dcm") else \
        dicom.read(b.dicom_file(source).read_bytes(), 1 << 30)[0]
    arr = dicom.read_frame(ds, 0, 1, 1 << 30)
    assert arr.ndim == 2 and arr.dtype.kind in "iu" and arr.size >= dicom.BY_VALUE_MIN
    calls = []
    real = dicom_levels._by_value
    monkeypatch.setattr(dicom_levels, "_by_value", lambda *args: calls.append(1) or real(*args))  # as to_image calls it
    fast = np.asarray(dicom.to_image(arr, ds))
    assert calls == [1]  # the per-value path was taken…
    strip = np.asarray(dicom.to_image(arr, ds, by_value=False))
    assert calls == [1]  # …and this time not
    assert fast.shape == strip.shape == arr.shape and fast.dtype == strip.dtype == np.uint8
    assert len(np.unique(strip)) > 2  # a picture, not a constant
    assert np.array_equal(fast, strip), f"{int((fast != strip).sum())} pixels differ"


def test_jpeg_slide_tiles_smaller_than_rows_columns_are_not_decoded_either():
    """A frame's own header must give the Rows × Columns size exactly: smaller frames are refused as larger are."""
    from PIL import Image

    frames = [b.encode(Image.new("RGB", (32, 32), (215, 140, 190)), "JPEG") for _ in range(24)]
    (item,) = items(b.jpeg_slide_dicom(frames, across=6, tile=64))
    assert isinstance(item, ItemError), item
    assert "JPEG frame says it is 32×32 pixels, not the 64×64 of Rows/Columns" in item.error


def test_an_encapsulated_pdf_counts_as_a_level_of_nesting():
    import pymupdf
    from PIL import Image

    doc = pymupdf.open()
    buf = io.BytesIO()
    Image.new("RGB", (160, 120), (200, 30, 30)).save(buf, "PNG")
    doc.new_page().insert_image(pymupdf.Rect(72, 72, 312, 252), stream=buf.getvalue())
    data = b.encapsulated_pdf_dicom(doc.tobytes() + b"\x00")
    (err,) = items(data, name="report.dcm", max_depth=0)
    assert isinstance(err, ItemError) and err.error == "encapsulated PDF nested deeper than max_depth (0)"
    assert [i.locator for i in items(data, name="report.dcm", max_depth=1)] == ["page 1, image 1"]


def test_a_narrow_window_follows_the_standards_linear_function_exactly():
    """PS3.3 C.11.2.1.2.1 maps x to ((x − (c − 0.5)) / (w − 1) + 0.5): with a width of 2, the centre value
    itself is white and the value below it black. (A wide window, as the other window tests use, cannot tell
    this from the naive (x − c) / w + 0.5, which draws the centre mid-grey.)"""
    ds = pydicom.dcmread(b.dicom_file("CT_small.dcm"))
    hu = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    centre = float(np.median(hu))
    got = np.asarray(items(modified("CT_small.dcm", WindowCenter=centre, WindowWidth=2))[0].image, float)
    expected = np.rint(np.clip((hu - (centre - 0.5)) / 1 + 0.5, 0, 1) * 255)
    assert (hu == centre).any() and set(np.unique(expected)) == {0.0, 255.0}
    assert np.abs(got - expected).max() <= 1


def test_a_sigmoid_window_follows_the_standards_function():
    """PS3.3 C.11.2.1.3.1: SIGMOID maps x to 1 / (1 + exp(−4 (x − c) / w)). A value a quarter width above the
    centre is drawn at 1 / (1 + e⁻¹) ≈ 0.73 of white, not at the 0.62 a slope of 2 would give."""
    ds = pydicom.dcmread(b.dicom_file("CT_small.dcm"))
    hu = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    centre, width = float(np.median(hu)), float(hu.max() - hu.min())
    got = np.asarray(items(modified("CT_small.dcm", WindowCenter=centre, WindowWidth=width,
                                    VOILUTFunction="SIGMOID"))[0].image, float)
    expected = np.rint(255 / (1 + np.exp(-4 * (hu - centre) / width)))
    assert expected.max() - expected.min() > 150  # the curve's steep part is used
    assert np.abs(got - expected).max() <= 1


def test_a_frame_that_is_all_padding_is_a_flat_picture_not_an_error():
    """A CT slice lying wholly outside the field of view: every pixel holds PixelPaddingValue. Padding counts
    only when some pixels are padding and some are not, so this is a flat frame like any other, not a range
    of no values."""
    ds = b.dicom_dataset(pydicom.uid.ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.2", "CT")
    ds.Rows = ds.Columns = 64
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    ds.PixelPaddingValue = -3000
    ds.PixelData = np.full((64, 64), -3000, np.int16).tobytes()
    (got,) = items(b.dicom_bytes(ds))
    assert isinstance(got, ImageItem), got
    px = np.asarray(got.image)
    assert px.shape == (64, 64) and (px == px[0, 0]).all()


def dcm_items(data: bytes, name: str = "x.dcm", **limits):
    return list(Context(Limits(**limits)).open_blob(Blob(name, data, name=name)))


def dcm_image(data: bytes) -> np.ndarray:
    got = dcm_items(data)
    assert len(got) == 1 and isinstance(got[0], ImageItem), got
    return np.asarray(got[0].image, int)


def dcm_ct(**changes) -> pydicom.Dataset:
    ds = pydicom.dcmread(b.dicom_file("CT_small.dcm"))
    for key, value in changes.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    return ds


def dcm_group(**values) -> pydicom.Dataset:
    item = pydicom.Dataset()
    for key, value in values.items():
        setattr(item, key, value)
    return item


def test_enhanced_rescale_applies_the_slope_before_adding_the_intercept():
    """A functional-group rescale of slope 2 gives the same picture as the same rescale at the top level."""
    top = dcm_ct(RescaleSlope=2, RescaleIntercept=-1024, WindowCenter=1000, WindowWidth=2000)
    enhanced = dcm_ct(RescaleSlope=None, RescaleIntercept=None, WindowCenter=1000, WindowWidth=2000)
    shared = dcm_group(PixelValueTransformationSequence=[dcm_group(RescaleSlope=2, RescaleIntercept=-1024)])
    enhanced.SharedFunctionalGroupsSequence = [shared]
    want = dcm_image(b.dicom_bytes(top))
    assert want.std() > 5
    assert np.array_equal(dcm_image(b.dicom_bytes(enhanced)), want)


def test_a_top_level_rescale_is_not_applied_again_from_the_functional_groups():
    """A file with both a top-level rescale and the same one in its functional groups is rescaled once."""
    plain = dcm_ct(WindowCenter=40, WindowWidth=400)
    both = dcm_ct(WindowCenter=40, WindowWidth=400)
    transform = dcm_group(RescaleSlope=both.RescaleSlope, RescaleIntercept=both.RescaleIntercept)
    both.SharedFunctionalGroupsSequence = [dcm_group(PixelValueTransformationSequence=[transform])]
    want = dcm_image(b.dicom_bytes(plain))
    assert want.std() > 5
    assert np.array_equal(dcm_image(b.dicom_bytes(both)), want)


def test_a_window_of_width_one_is_a_threshold_at_its_centre():
    """WindowWidth 1 (allowed by PS3.3) draws values below the centre black and the rest white."""
    ds = dcm_ct()
    hu = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    centre = float(np.median(hu))
    got = dcm_image(b.dicom_bytes(dcm_ct(WindowCenter=centre, WindowWidth=1)))
    assert set(np.unique(got)) == {0, 255}
    assert np.array_equal(got == 255, hu >= centre)


def test_a_voi_lut_whose_values_do_not_start_at_zero_still_spans_black_to_white():
    """A VOI LUT's output range is its own lowest to highest entry, not 0 to its highest."""
    ds = dcm_ct(RescaleSlope=None, RescaleIntercept=None)
    raw = ds.pixel_array
    first, n = int(raw.min()), int(raw.max()) - int(raw.min()) + 1
    item = pydicom.Dataset()
    item.add_new(0x00283002, "US", [n, first, 16])  # LUTDescriptor
    item.add_new(0x00283006, "US", [10000 + i for i in range(n)])  # LUTData: identity, offset by 10000
    ds.VOILUTSequence = [item]
    got = dcm_image(b.dicom_bytes(ds))
    assert got.min() == 0 and got.max() == 255
    expected = np.rint((raw.astype(float) - first) / (n - 1) * 255)
    assert np.abs(got - expected).max() <= 1


def test_a_voi_lut_is_indexed_by_the_nearest_whole_modality_value():
    """Fractional modality values (slope 0.4) look up the VOI LUT entry of the nearest whole value, not the one
    below."""
    ds = dcm_ct(RescaleSlope=0.4, RescaleIntercept=0)
    values = ds.pixel_array.astype(float) * 0.4
    first = int(np.floor(values.min()))
    n = int(np.ceil(values.max())) - first + 1
    lut = [(i % 2) * 4095 for i in range(n)]  # odd and even whole values apart
    item = pydicom.Dataset()
    item.add_new(0x00283002, "US", [n, first, 12])
    item.add_new(0x00283006, "US", lut)
    ds.VOILUTSequence = [item]
    got = dcm_image(b.dicom_bytes(ds))
    expected = np.asarray(lut)[np.rint(values).astype(int) - first] / 4095 * 255
    assert np.abs(got - expected).max() <= 1


def test_a_frames_own_window_wins_over_the_shared_one():
    """Enhanced files: the per-frame FrameVOILUTSequence is used, not the shared functional group's window."""
    plain = dcm_ct(WindowCenter=40, WindowWidth=400)
    ds = dcm_ct()
    ds.SharedFunctionalGroupsSequence = [dcm_group(FrameVOILUTSequence=[dcm_group(WindowCenter=1500, WindowWidth=3000)])]
    ds.PerFrameFunctionalGroupsSequence = [dcm_group(FrameVOILUTSequence=[dcm_group(WindowCenter=40, WindowWidth=400)])]
    for key in ("WindowCenter", "WindowWidth"):
        if key in ds:
            delattr(ds, key)
    assert np.array_equal(dcm_image(b.dicom_bytes(ds)), dcm_image(b.dicom_bytes(plain)))


def test_sixteen_bit_rgb_is_scaled_by_its_bits_stored():
    """RGB samples of 12 bits in 16 are scaled by 4095, so their brightest value is white."""
    from pydicom.uid import ExplicitVRLittleEndian

    ds = b.dicom_dataset(ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.7", "OT")
    ds.Rows, ds.Columns = 16, 32
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    rgb = np.zeros((16, 32, 3), np.uint16)
    rgb[..., 0] = np.linspace(0, 4095, 32).round().astype(np.uint16)[None, :]
    rgb[8:, :, 1] = 4095
    ds.PixelData = rgb.tobytes()
    got = dcm_image(b.dicom_bytes(ds))
    assert got[..., 0].max() == 255 and got[..., 0].min() == 0
    assert (got[8:, :, 1] == 255).all() and (got[:8, :, 1] == 0).all()


def test_a_palette_of_8_bit_entries_is_as_bright_as_the_same_palette_in_16_bits():
    """PALETTE COLOR with 8-bit LUT entries is scaled by 255, not 65535 (which would draw it black)."""
    ds = pydicom.dcmread(b.dicom_file("examples_palette.dcm"))
    want = dcm_image(b.dicom_bytes(ds))
    for c in ("Red", "Green", "Blue"):
        d16 = np.frombuffer(getattr(ds, c + "PaletteColorLookupTableData"), "<u2")
        setattr(ds, c + "PaletteColorLookupTableDescriptor", [256, 0, 8])
        setattr(ds, c + "PaletteColorLookupTableData", (d16 >> 8).astype(np.uint8).tobytes())
    got = dcm_image(b.dicom_bytes(ds))
    assert want.max() > 200
    assert np.abs(got - want).max() <= 1


def test_a_bare_big_endian_dataset_is_found_by_its_content():
    """A dataset without preamble or file meta in explicit VR big endian is sniffed and read as DICOM."""
    ds = pydicom.dcmread(b.dicom_file("MR_small_bigendian.dcm"))
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.preamble = None
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, implicit_vr=False, little_endian=False, enforce_file_format=False)
    data = buf.getvalue()
    assert data[128:132] != b"DICM" and data[:2] == b"\x00\x08"
    assert np.array_equal(dcm_image(data), dcm_image(b.dicom_file("MR_small.dcm").read_bytes()))


def test_error_text_loses_a_whole_name_even_when_a_shorter_value_is_part_of_it():
    """Longer header values are scrubbed before shorter ones, so no piece of a name (its given name) is left."""
    ds = dcm_ct(PatientName="Janetta^Doe", PatientID="Doe")
    text = _scrub(ValueError("bad value 'Janetta^Doe' in element"), ds)
    assert "Janetta" not in text and "Doe" not in text and "bad value" in text


def dcm_bare_with_long_image_type(values: int) -> bytes:
    """MR_small without preamble or file meta, its group 0008 cut to four elements, the second (ImageType) holding
    `values` 14-character values (about 15 bytes each), so that it ends near the 4 KB a sniffer looks at."""
    ds = pydicom.dcmread(b.dicom_file("MR_small.dcm"))
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.preamble = None
    for elem in list(ds):
        if elem.tag.group == 0x0008 and elem.tag not in (0x00080005, 0x00080016, 0x00080060):
            del ds[elem.tag]
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.add_new(0x00080012, "DA", "20240101")
    ds.add_new(0x00080008, "CS", ["ORIGINAL", "PRIMARY"] + ["X" * 14] * values)
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, implicit_vr=True, little_endian=True, enforce_file_format=False)
    return buf.getvalue()


@pytest.mark.parametrize("values", [268, 269, 270, 271])
def test_a_bare_dataset_is_found_wherever_its_third_element_starts_near_the_end_of_the_sniffed_head(values):
    """A bare dataset is sniffed whether its third element starts before, across or after the 4 KB boundary
    (at 271 values the first two elements fill the head)."""
    data = dcm_bare_with_long_image_type(values)
    third = 26 + int.from_bytes(data[22:26], "little")  # (0008,0005) of 10 bytes, then ImageType's header
    assert 4000 < third < 4200
    got = list(Context(Limits()).open_blob(Blob("x.dcm", data, name="x.dcm")))
    assert len(got) == 1 and isinstance(got[0], ImageItem), (third, got)
