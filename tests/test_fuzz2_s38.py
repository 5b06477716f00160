"""Fuzzing the session's late code (review s38_fuzz2): enhanced multi-frame DICOM whose per-frame groups hold NaN,
and media queries that break the grammar, read as headless Chromium reads them."""

from __future__ import annotations

import pytest
from test_left2_s38 import T, Z, _enhanced_mr, _frame_shown

from medimg.sources import media


@pytest.mark.parametrize("where", ["b-value", "in-stack position"])
def test_an_enhanced_dicom_with_a_nan_in_its_frame_groups_still_shows_a_frame(where):
    """A NaN equals nothing, not even itself: the frames of the lowest b-value (NaN) or of the middle place were
    none, and `frames[0]` lost the whole file ("dicom: could not read: list index out of range")."""
    from pydicom import dcmread
    from pydicom.filebase import DicomBytesIO

    import builders as b

    pairs = [(t, z) for t in range(T) for z in range(Z)]
    bs = [float("nan") if t == 0 else 0 if t == 2 else 1000 for t, _ in pairs] if where == "b-value" else None
    data = _enhanced_mr(pairs, bs)
    if where == "in-stack position":  # the middle time point's slices say NaN as their place
        ds = dcmread(DicomBytesIO(data))
        for group, (t, _) in zip(ds.PerFrameFunctionalGroupsSequence, pairs):
            if t == T // 2:
                group.FrameContentSequence[0].add_new(0x00209057, "DS", "NaN")
        data = b.dicom_bytes(ds)
    # a value that is not a number tells nothing: the middle frame of the middle time point, as without it
    assert pairs[_frame_shown(data) - 1] == (T // 2, Z // 2)


# each measured with window.matchMedia in /usr/bin/chromium at media.VIEWPORT (1280 x 1800, 1 dppx)
CHROMIUM = [
    (",", False), (", print", False), ("print, ", False), ("(min-width: 600px),", True),  # an empty query: not all
    ("(hover:)", False), ("(width: )", False), ("(hover)", True),  # a colon with no value
    ("not not", False), ("not only", False), ("not and", False), ("not t<v", False), ("not foo", True),
    ("(width) and", False), ("(width) and screen", False), ("only (width)", False), ("only screen", True),
    ("(ho ver)", False), ("(g/rid)", False), ("not (ho ver)", False),  # other text in parentheses: unknown
    ("(min-color: +5)", True), ("(min-width: +600px)", True), ("(width > +5px)", True),  # a + sign
    ("(min-width: 1e3px)", True), ("(min-width: 1E3px)", True), ("(min-width: 1e3em)", False),  # an exponent
    ("(min-resolution: 1e0dppx)", True), ("(min-width: 1.px)", False),
    ("(min-color: 1.5)", False), ("(color > .5)", False), ("(max-color: 8.0)", False), ("(min-color: +8)", True),
    ("(monochrome: 0)", True), ("(grid: 0.0)", True), ("(-webkit-device-pixel-ratio: 1.0)", True),  # integers
    ("\u00a0all", False), ("not \u00a0all", True), ("\u00a0", False),  # U+00A0 is no CSS white space
    ("(min-width: calc(500px + 1px))", True), ("not screen and (max-width: 600px)", True),
]


@pytest.mark.parametrize(("query", "holds"), CHROMIUM)
def test_a_media_query_breaking_the_grammar_holds_as_in_chromium(query, holds):
    assert media.media_matches(query) is holds


def test_a_pyramid_level_of_another_shape_is_passed_over_not_the_slide_lost():
    """An OME-TIFF whose SubIFD level is 2100 × 10 under a 4200 × 1400 image (tifffile takes any SubIFD as a level):
    the field's region at half scale began at row 188 of a 10-row level, "negative dimensions are not allowed"."""
    import io

    import numpy as np
    tifffile = pytest.importorskip("tifffile")
    from medimg.sources import Blob, ImageItem, Limits, open_input

    base = np.full((1400, 4200, 3), 243, np.uint8)
    base[1000:, 2100:] = (200, 100, 150)  # the tissue: bottom right
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf, ome=True) as tw:
        meta = {"axes": "YXS", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5}
        tw.write(base, tile=(256, 256), photometric="rgb", compression="zlib", metadata=meta, subifds=1)
        tw.write(base[::140, ::2], tile=(256, 256), photometric="rgb", compression="zlib", subfiletype=1, metadata=None)
    (item,) = open_input(Blob("s.ome.tif", buf.getvalue(), name="s.ome.tif"), Limits())
    assert isinstance(item, ImageItem), item
    assert item.locator == "tissue field 512 µm wide" and item.image.size == (512, 512)
    assert item.metadata["level"] == 0 and item.metadata["field"]["y"] > 300  # on the tissue
    assert (np.asarray(item.image)[-100:, -100:] == (200, 100, 150)).all()


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_a_header_naming_a_data_file_with_a_non_ascii_name_reads_it(tmp_path, kind):
    """ITK and pynrrd write the name as the file system spells it, UTF-8 on Linux and macOS; it was read as Latin-1
    (`its data file Ã©.raw: file not found`), whatever stem the header had."""
    import zipfile

    import numpy as np

    from medimg.sources import ImageItem, Limits, open_input

    vol = (np.indices((4, 6, 5)).sum(0) * 20).astype(np.uint8).tobytes()
    files = {"é.mhd": "ObjectType = Image\nNDims = 3\nDimSize = 5 6 4\nElementType = MET_UCHAR\nElementDataFile = é.raw\n",
             "n.nhdr": "NRRD0004\ntype: uint8\ndimension: 3\nsizes: 5 6 4\nencoding: raw\ndata file: ö.raw\n\n"}
    folder = tmp_path / "f"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_bytes(text.encode())
    for name in ("é.raw", "ö.raw"):
        (folder / name).write_bytes(vol)
    path = folder
    if kind == "zip":
        path = tmp_path / "p.zip"
        with zipfile.ZipFile(path, "w") as z:
            for f in sorted(folder.iterdir()):
                z.write(f, f.name)
    got = list(open_input(str(path), Limits()))
    assert sum(isinstance(i, ImageItem) for i in got) == 2, got
    assert sorted(i.error for i in got if not isinstance(i, ImageItem)) == [
        "skipped: the data file of n.nhdr, read with it", "skipped: the data file of é.mhd, read with it"]
