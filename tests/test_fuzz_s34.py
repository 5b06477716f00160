"""Hostile inputs found by fuzzing session 34's new parsing code (review s34_fuzz): a PDF's dashed line that MuPDF
would cut into billions of dashes, and DICOM segmented palettes whose few bytes name millions of entries. Each
file is built here; each case took seconds and hundreds of MB (or never ended, in GB) before."""

from __future__ import annotations

import time
import tracemalloc
import zlib

import numpy as np
import pydicom
import pymupdf
import pytest
from pydicom.uid import ExplicitVRLittleEndian

import builders as b
from medimg.sources import Blob, Context, ImageItem, ItemError, Limits
from medimg.sources import dicom_segments
from test_pdf_s30 import _images, _page_with_xray, _run, _xray


def _xray_page(content: bytes) -> bytes:
    """The 400 × 400 X-ray drawn at 100-300 × 100-300 (top-down) on a page, then `content`."""
    xray = b.pdf_stream("/Type /XObject /Subtype /Image /Width 400 /Height 400 /ColorSpace /DeviceGray "
                        "/BitsPerComponent 8 /Filter /FlateDecode", zlib.compress(_xray().tobytes()))
    return b.raw_pdf(b"q 200 0 0 200 100 492 cm /Im Do Q\n" + content, "<< /XObject << /Im 5 0 R >> >>", [xray])


def _undrawn(content: bytes, why: str) -> None:
    """The X-ray page with `content` drawn over it: the page is not drawn and says `why`; the X-ray comes out as it
    is, in well under the seconds it took before."""
    start = time.process_time()
    items = _run(_xray_page(content))
    assert time.process_time() - start < 3
    note = next(i for i in items if isinstance(i, ItemError))
    assert note.locator == "page 1" and note.skipped
    assert note.error == f"{why}: figures not looked for, images listed without their place"
    (item,) = _images(items)
    assert np.array_equal(np.asarray(item.image), np.asarray(_xray()))


def test_a_wide_line_dashed_into_millions_of_dashes_leaves_the_page_undrawn():
    """A line 70,000 points wide zigzagging 30 times across 180,000 points, dashed every 2 points: MuPDF cuts it into
    2.7 million dashes, each over the whole image, to draw it (a fuzzed page of such lines never ended). Before,
    its cover was drawn dash by dash and the page rendered: 7.7 s and 550 MB here."""
    zigzag = " ".join(f"{90000 if k % 2 else -90000} {150 + k} l" for k in range(1, 31))
    _undrawn(f"70000 w [1 1] 0 d -90000 150 m {zigzag} S".encode(),
             "dashed lines of more than 1,000,000 dashes")


WIDE = {"1e14 points wide": f"{10**14} w 1 j 100 150.5 200 200 re S",
        "1e30 points wide": f"{10**30} w 1 j 100 150.5 200 200 re S",
        # 1,000 wide through a singular matrix stretching by 1e18 (its expansion, the root of its determinant, is 0);
        # in a fuzzed page such a stroke never ended
        "through a singular matrix": f"q {10**18} 0 {10**18} 0 0 500 cm 1 J 1 j 1000 w 0 0 m 1 0 l S Q"}


@pytest.mark.parametrize("content", list(WIDE))
def test_a_line_wider_than_any_page_leaves_the_page_undrawn(content):
    """A square stroked 1e14 points wide with round joins: MuPDF draws each join in millions of pieces (4 s before,
    here); 1e16 and wider, it never ends. The page is not drawn."""
    _undrawn(WIDE[content].encode(), "a line over 100,000 points wide")


def test_a_dashed_circle_over_an_image_is_still_a_cover():
    """The dashes of a plain dashed line are a few hundred: the circle is drawn over the image as before."""
    doc = pymupdf.open()
    page = _page_with_xray(doc)
    page.draw_circle((200, 200), 40, color=(1, 0, 0), width=3, dashes="[4 2] 0")
    (item,) = _images(_run(doc.tobytes()))
    assert item.locator == "page 1, image 1 (covered, rendered)"


def _palette_dicom(words: list[int], bits: int) -> bytes:
    """An 8-bit PALETTE COLOR image (values 0-255) whose three segmented tables are `words` (16-bit), the
    descriptor naming 256 entries of `bits` bits."""
    ds = b.dicom_dataset(ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.6.1", "US")
    ds.Rows, ds.Columns = 64, 96
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "PALETTE COLOR"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = (np.arange(64 * 96) % 256).astype(np.uint8).tobytes()
    for colour in ("Red", "Green", "Blue"):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, bits])
        key = f"Segmented{colour}PaletteColorLookupTableData"
        ds[key] = pydicom.DataElement(key, "OW", np.asarray(words, "<u2").tobytes())
    return b.dicom_bytes(ds)


def _peak(data: bytes) -> tuple[list, int]:
    list(Context(Limits()).open_blob(Blob("x.dcm", _palette_dicom([0, 256, *range(256)], 16), name="x.dcm")))
    tracemalloc.start()
    try:
        items = list(Context(Limits()).open_blob(Blob("x.dcm", data, name="x.dcm")))
        return items, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# a ramp of 256 entries (one discrete, 255 linear), then linear segments naming 65,535 entries each in three words
RAMP = [0, 1, 0, 1, 255, 65535]
BOMBS = {"linear segments": RAMP + [1, 65535, 0] * 100,
         # indirect segments each repeating every segment since the ramp's: 2**11 times 65,535 entries
         "indirect segments": RAMP + [w for k in range(1, 13) for w in (2, k, 3, 0)]}


@pytest.mark.parametrize("bomb", list(BOMBS))
def test_a_segmented_palette_naming_millions_of_entries_is_expanded_only_as_far_as_its_descriptor(bomb):
    """A segmented palette of a few hundred words naming 6.5 (134) million entries: pydicom expands them all into a
    Python list, again for every strip of rows (200 MB a table; the indirect one never ended). Its first 256
    entries, which the descriptor names, are read: the image comes out in its colours, within a few MB."""
    items, peak = _peak(_palette_dicom(BOMBS[bomb], 16))
    assert peak < 30_000_000, peak
    (item,) = items
    assert isinstance(item, ImageItem) and item.image.mode == "RGB", item
    ramp = np.r_[0, np.around(np.linspace(65535 / 255, 65535, 255))]
    want = np.rint(ramp / 65535 * 255).astype(np.uint8)[np.arange(64 * 96).reshape(64, 96) % 256]
    assert np.array_equal(np.asarray(item.image)[..., 0], want)


def test_8_bit_entries_in_words_naming_more_than_the_descriptor_stay_an_invalid_palette_within_a_few_mb():
    """8-bit entries written as words (read so only when they expand to exactly the descriptor's entries, review
    s34_dcm): linear segments naming 6.5 million are no such palette, as before, but found so within a few MB
    (before: 600 MB)."""
    items, peak = _peak(_palette_dicom([0, 1, 5] + [1, 65535, 200] * 100, 8))
    assert peak < 30_000_000, peak
    (item,) = items
    assert isinstance(item, ItemError) and "palette colour lookup table is invalid" in item.error


def test_indirect_segments_nested_past_the_bound_are_not_expanded():
    """Each indirect segment naming a linear one and the next indirect one, 12 deep: past MAX_DEPTH, not expanded
    (None); 8 deep, expanded as pydicom expands it (offsets from the start of the segments being expanded)."""
    from pydicom.pixels.processing import _expand_segmented_lut

    def chain(n: int) -> tuple:  # 5 discrete entries in 7 words, then n blocks of 7: a linear entry; an indirect
        return tuple([0, 5, 5, 5, 5, 5, 5] + [1, 1, 5, 2, 2, 7, 0] * n)  # segment of the next block's two
    assert dicom_segments.expand(np.asarray(chain(12), "<u2").tobytes(), "<H", 256) is None
    got = dicom_segments.expand(np.asarray(chain(7), "<u2").tobytes(), "<H", 256)  # 8 deep: each block repeats
    assert got == _expand_segmented_lut(chain(7), "<H") == [5] * 61  # itself first


def test_a_small_lerc_tile_in_zstandard_takes_memory_for_what_it_holds_not_for_its_tile():
    """A 16 × 16 page of four float samples, in LERC wrapped in Zstandard, with tiles said to be 4096 × 4096 (its
    blob names the 16 × 16 part inside the image, which is allowed). Its wrapping was undone into a buffer of twice
    the tile's 268 MB, zero-filled: 537 MB for a 4 kB file. Now the output grows as it comes."""
    import io
    import struct

    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, np.ones((16, 16, 4), np.float32), tile=(16, 16), photometric="rgb", extrasamples=[2],
                     compression="lerc", compressionargs={"compression": "zstd"})
    data = bytearray(buf.getvalue())
    page = tifffile.TiffFile(io.BytesIO(bytes(data))).pages[0]
    for code in (322, 323):  # TileWidth, TileLength
        tag = page.tags[code]
        struct.pack_into("<H" if tag.dtype == 3 else "<I", data, tag.valueoffset, 4096)
    list(Context(Limits()).open_blob(Blob("y.tif", b.image_bytes("TIFF"), name="y.tif")))  # imports, unmeasured
    tracemalloc.start()
    try:
        items = list(Context(Limits()).open_blob(Blob("x.tif", bytes(data), name="x.tif")))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    (item,) = items
    assert isinstance(item, ImageItem) and item.image.size == (16, 16), item
    assert peak < 50_000_000, peak
