"""Items earlier reviews noticed and left (review s38_left2): a <picture>'s media queries and an <img>'s srcset
read as headless Chromium reads them; a header whose data file has another stem; 4-D volumes."""

from __future__ import annotations

import pytest
from test_browser import RENDER, colours, png, requires_browser
from webserver import WebServer

from medimg.sources import Limits, media, open_input, web

# --- 1. <picture> media and srcset as Chromium reads them ------------------------------------------------------

# each measured with window.matchMedia in /usr/bin/chromium 156 at media.VIEWPORT (1280 x 1800, 1 dppx)
CHROMIUM = [
    ("(unknown-feature)", False), ("not (unknown-feature)", False), ("(unknown-feature: 3)", False),
    ("screen and (foo)", False), ("(foo), (min-width: 600px)", True), ("(min-width: 600px) and (foo)", False),
    ("not print and (foo)", True), ("(foo >= 3)", False), ("(min-width: foo)", False), ("(min-width: 10)", False),
    ("(hover: banana)", False), ("not (hover: banana)", False), ("(prefers-reduced-data: no-preference)", False),
    ("(color-gamut: p3)", False), ("(color-gamut: srgb)", True), ("(display-mode: standalone)", False),
    ("(display-mode: browser)", True), ("(scripting: none)", False), ("(update: fast)", True),
    ("(dynamic-range: high)", False), ("(overflow-block: paged)", False), ("(color-index)", False),
    ("(min-device-pixel-ratio: 1)", False), ("(-webkit-min-device-pixel-ratio: 1)", True),
    ("(-webkit-transform-3d)", True), ("(-ms-high-contrast: active)", False), ("(min-width: 10cm)", True),
    ("(min-width: 2000q)", False), ("(min-width: 60vh)", True), ("(min-width: 0)", True), ("(grid: 1)", False),
    ("(min-color: 7)", True), ("(color: 24)", False), ("(min-orientation: portrait)", False),
    ("(resolution: infinite)", False), ("(min-width: .)", False), ("(min-width: calc(500px + 1px))", True),
]


@pytest.mark.parametrize("query, holds", CHROMIUM)
def test_a_media_query_holds_as_chromium_says_it_does(query, holds):
    """An unknown feature, or a value a feature does not take, was taken to hold (`(some-new-feature)`, `not
    (hover: banana)`, `(min-width: 10)`): Media Queries 4 reads it as unknown, which never holds."""
    assert media.media_matches(query) is holds


def test_an_img_src_is_the_1x_candidate_its_srcset_lacks():
    """The HTML spec adds `src` as 1x when no candidate has a width or says 1x: `srcset="small 0.5x"` was
    read as the picture where a browser shows `src`."""
    page = ('<img src="full.png" srcset="half.png 0.5x"><img src="a.png" srcset="b.png 2x">'
            '<img src="c.png" srcset="d.png"><img src="e.png" srcset="f.png 300w">')
    assert [c.url for c in web.extract(page, "http://h/")] == [
        "http://h/full.png", "http://h/b.png", "http://h/d.png", "http://h/f.png"]
    assert media.largest("half.png 0.5x", "full.png") == "full.png"
    assert media.largest("half.png 0.5x") == "half.png"


PAGE = """<!doctype html><html><body>
<picture><source media="(unknown-feature)" srcset="p1.png"><img src="f1.png" alt="1"></picture>
<picture><source media="not (hover: banana)" srcset="p2.png"><img src="f2.png" alt="2"></picture>
<picture><source media="(min-width: 10)" srcset="p3.png"><img src="f3.png" alt="3"></picture>
<picture><source media="(color-gamut: srgb)" srcset="p4.png"><img src="f4.png" alt="4"></picture>
<img src="f5.png" srcset="p5.png 0.5x" alt="5">
</body></html>"""


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(90)
def test_the_static_reader_picks_what_chromium_loads():
    """The same page read without and with --render (Chromium at the same viewport) gives the same pictures:
    the fallback <img> of the sources Chromium passes over, p4 (a known feature that holds), and an img's src."""
    with WebServer() as srv:
        shades = {}
        for i in range(1, 6):
            for kind in "pf":
                shades[f"{kind}{i}"] = (40 * i, 120 if kind == "p" else 20, 200)
                srv.add(f"/{kind}{i}.png", png(shades[f"{kind}{i}"], (150, 130)), "image/png")
        srv.add("/page.html", PAGE)
        want = [shades[n] for n in ("f1", "f2", "f3", "p4", "f5")]
        static = colours(open_input(srv.url("/page.html"), Limits(allow_private=True)))
        rendered = colours(open_input(srv.url("/page.html"), Limits(**RENDER)))
        loaded = sorted(p.strip("/").removesuffix(".png") for p in srv.hits if p.endswith(".png"))
    assert static == want
    assert sorted(rendered) == sorted(want)
    assert loaded == ["f1", "f2", "f3", "f5", "p4"]  # what the browser (and the static reader) asked for


# --- 2. a header whose data file has another stem, in a folder, zip, tar and 7z --------------------------------

def _other_stem_files() -> dict[str, bytes]:
    """h.mhd names a.raw, n.nhdr names b.raw: each header's data file has another stem."""
    import numpy as np

    vol = (np.indices((4, 40, 48)).sum(0) % 50 * 5).astype(np.uint8).tobytes()
    return {"h.mhd": b"ObjectType = Image\nNDims = 3\nDimSize = 48 40 4\nElementType = MET_UCHAR\n"
                     b"ElementDataFile = a.raw\n",
            "n.nhdr": b"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 48 40 4\nencoding: raw\ndata file: b.raw\n\n",
            "a.raw": vol, "b.raw": vol}


def _outcome(items) -> list[tuple[str, str]]:
    from medimg.sources import ImageItem

    return sorted(("image", str(i.image.size)) if isinstance(i, ImageItem) else ("row", i.error) for i in items)


@pytest.mark.parametrize("kind", ["zip", "tar", "tgz", "7z"])
def test_a_header_of_another_stem_is_read_alike_in_a_folder_and_every_archive(tmp_path, kind):
    """In a tar or 7z, a.raw named by h.mhd was the note `the data file of h.mhd`; in a folder or zip it was a row
    of its own ("not an image"), and a zip inflated it twice. Now all say what docs/formats.md says."""
    import builders as b

    files = _other_stem_files()
    folder = tmp_path / "folder"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    if kind == "7z":
        py7zr = pytest.importorskip("py7zr", reason="skipped: py7zr is not installed")
        packed = tmp_path / "p.7z"
        with py7zr.SevenZipFile(packed, "w") as z:
            for name, data in files.items():
                z.writestr(data, name)
    else:
        packed = tmp_path / f"p.{kind}"
        members = list(files.items())
        packed.write_bytes({"zip": b.zip_bytes, "tar": b.tar_bytes, "tgz": b.tgz_bytes}[kind](members))
    want = [("image", "(48, 40)")] * 2 + [("row", "skipped: the data file of h.mhd, read with it"),
                                          ("row", "skipped: the data file of n.nhdr, read with it")]
    assert _outcome(open_input(str(packed), Limits())) == want
    assert _outcome(open_input(str(folder), Limits())) == want
    assert _outcome(open_input(str(folder / "a.raw"), Limits())) == want[2:3]  # given alone, as `find` lists it


def test_a_raw_no_header_names_stays_a_file_of_its_own(tmp_path):
    files = _other_stem_files()
    for name in ("h.mhd", "a.raw", "b.raw"):
        (tmp_path / name).write_bytes(files[name])
    got = _outcome(open_input(str(tmp_path), Limits()))
    assert got[0] == ("image", "(48, 40)") and got[1][0] == "row" and "h.mhd" not in got[1][1]


# --- 3. a 4-D series shows the middle slice of its middle volume, in every format --------------------------------

T, Z = 6, 10  # time points, slices: a volume shows slice 6 of 10 of volume 4 of 6 (the middle ones, 0-based 5, 3)


def _enhanced_mr(order: list[tuple[int, int]], bvalues: list[float] | None = None) -> bytes:
    """An Enhanced MR of one frame per (time, slice) in `order`, each frame's FrameContentSequence saying which."""
    import numpy as np
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian

    import builders as b

    ds = b.dicom_dataset(ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.4.1", "MR")
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.NumberOfFrames = len(order)
    groups = []
    for i, (t, z) in enumerate(order):
        content = Dataset()
        content.StackID, content.InStackPositionNumber, content.TemporalPositionIndex = "1", z + 1, t + 1
        group = Dataset()
        group.FrameContentSequence = Sequence([content])
        if bvalues is not None:
            diffusion = Dataset()
            diffusion.DiffusionBValue = bvalues[i]
            group.MRDiffusionSequence = Sequence([diffusion])
        groups.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(groups)
    ds.PixelData = np.concatenate([np.full(256, 100 * t + z, np.uint16) for t, z in order]).tobytes()
    return b.dicom_bytes(ds)


def _frame_shown(data: bytes) -> int:
    from medimg.sources import Blob, ImageItem

    got = [i for i in open_input(Blob("e.dcm", data, name="e.dcm"), Limits()) if isinstance(i, ImageItem)]
    assert len(got) == 1
    return int(got[0].locator.removeprefix("frame "))


@pytest.mark.parametrize("time_first", [True, False])
def test_an_enhanced_4d_dicom_shows_the_middle_slice_of_its_middle_time_point(time_first):
    """Its middle frame was shown: stored time point by time point, that is slice 1 (the top of the head) of
    volume 4; slice by slice, slice 6 of volume 1. A NIfTI of the same series shows slice 6 of volume 4."""
    pairs = [(t, z) for t in range(T) for z in range(Z)] if time_first else [(t, z) for z in range(Z) for t in range(T)]
    assert pairs[_frame_shown(_enhanced_mr(pairs)) - 1] == (T // 2, Z // 2)


def test_an_enhanced_diffusion_dicom_shows_the_middle_slice_of_its_first_b0():
    """As a NIfTI with its .bval is shown: the first volume of the lowest b-value."""
    bs = [1000, 0, 1000, 0, 1000, 1000]
    pairs = [(t, z) for t in range(T) for z in range(Z)]
    assert pairs[_frame_shown(_enhanced_mr(pairs, [bs[t] for t, _ in pairs])) - 1] == (1, Z // 2)


def test_a_multi_frame_dicom_without_positions_still_shows_its_middle_frame():
    pairs = [(0, z) for z in range(7)]
    assert _frame_shown(_enhanced_mr(pairs)) == 4  # one time point: frames 1-7 are slices, the 4th the middle


def test_the_volumes_show_the_same_middle_slice_of_the_middle_volume(tmp_path):
    """NIfTI, NRRD and MetaImage (MINC: nibabel's test files in test_volumes) name the same slice and volume."""
    import nibabel as nib
    import numpy as np
    import nrrd

    vol = np.zeros((16, 16, Z, T), np.int16)
    for t in range(T):
        for z in range(Z):
            vol[:, :, z, t] = 100 * t + z
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "v.nii.gz")
    nrrd.write(str(tmp_path / "v.nrrd"), vol, {"space": "left-posterior-superior", "kinds": ["space"] * 3 + ["time"],
                                               "space directions": np.vstack([np.eye(3), [np.nan] * 3])})
    (tmp_path / "v.mha").write_bytes(b"ObjectType = Image\nNDims = 4\nDimSize = 16 16 %d %d\nElementType = MET_SHORT\n"
                                     b"ElementDataFile = LOCAL\n" % (Z, T) + vol.transpose(3, 2, 1, 0).tobytes())
    for name in ("v.nii.gz", "v.nrrd", "v.mha"):
        got = [i.locator for i in open_input(str(tmp_path / name), Limits())]
        assert got == [f"slice {Z // 2 + 1} of {Z}, volume {T // 2 + 1} of {T}"], name
