"""Tests for the session-38 mutants that survived the tests of the day's change (s38_mut): each fails with its
mutant applied and passes as the code is (see /work/review/s38_mut/NOTES.md for the table)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from medimg.sources import ImageItem, ItemError, open_input


def _shown(tmp_path, arr: np.ndarray, name: str = "p.png") -> np.ndarray:
    """The grey levels the model is given for a 16-bit (or float) picture saved as `name`."""
    from medimg.model.preprocess import to_rgb

    path = tmp_path / name
    if name.endswith(".tif"):
        import tifffile
        tifffile.imwrite(path, arr)
    else:
        Image.fromarray(arr).save(path)
    items = list(open_input(str(path)))
    assert len(items) == 1 and isinstance(items[0], ImageItem), items
    return np.asarray(to_rgb(items[0].image))[..., 0]


# --- levels: 16-bit pictures widened from 8 bits ------------------------------------------------------------------

def _mid_grey_with_ends() -> np.ndarray:
    """Mostly mid greys (100..150) with a black and a white corner (levels 0 and 255), as an 8-bit picture."""
    g = (100 + np.arange(64 * 64).reshape(64, 64) % 51).astype(np.uint8)
    g[:2, :2], g[-2:, -2:] = 0, 255
    return g


@pytest.mark.parametrize("step", [257, 256])
def test_a_widened_picture_with_white_in_it_is_read_as_its_levels(tmp_path, step):
    """White (255 × 257 = 65535, 255 × 256 = 65280) is the largest value a widened picture may hold (mutant: the
    largest value had to be under it, so a picture with any white was stretched)."""
    g = _mid_grey_with_ends()
    assert np.array_equal(_shown(tmp_path, g.astype(np.uint16) * step), g)


def test_sixteen_levels_widened_are_read_as_levels(tmp_path):
    """Exactly WIDENED_LEVELS levels (100..115) are enough (mutants: more than 16 needed, the count one short)."""
    from medimg.levels import WIDENED_LEVELS

    g = (100 + np.arange(64 * 64).reshape(64, 64) % WIDENED_LEVELS).astype(np.uint8)
    assert np.array_equal(_shown(tmp_path, g.astype(np.uint16) * 257), g)


def test_values_one_off_a_multiple_are_not_widened_levels(tmp_path):
    """One value 1 over a multiple of 257: real 16-bit values, stretched (mutant: near multiples taken as exact)."""
    wide = _mid_grey_with_ends().astype(np.uint16) * 257
    wide[:2, :2], wide[-2:, -2:] = 100 * 257, 150 * 257  # no black or white: stretching shows
    wide[30, 30] += 1
    shown = _shown(tmp_path, wide)
    assert shown.min() == 0 and shown.max() == 255


def test_a_float_picture_of_multiples_of_257_is_stretched_as_floats_are(tmp_path):
    """A 32-bit float picture is stretched by its own percentiles whatever its values (mutant: float values that
    are multiples of 257 read as 8-bit levels widened)."""
    wide = (_mid_grey_with_ends().astype(np.float32) * 257)
    wide[:2, :2], wide[-2:, -2:] = 100 * 257, 150 * 257
    shown = _shown(tmp_path, wide, "f.tif")
    assert shown.min() == 0 and shown.max() == 255


# --- priors: every secondary capture storage class -----------------------------------------------------------------

def test_every_secondary_capture_class_has_the_weaker_modality_weight():
    """The multi-frame secondary captures (7.1-7.4) carry their study's Modality as the plain one (7) does: the same
    page tagged CT gets the same prior in each (mutants: one of the classes left out of SECONDARY_CAPTURE)."""
    import random

    from medimg import Blob, classify
    from medimg.model.classifier import ASSETS

    if not (ASSETS / "labels.json").exists():
        pytest.skip("the shipped model is not in the package")
    from test_priors_s38 import dose_page, secondary_capture

    page = dose_page(0, random.Random(5))
    blobs = [Blob(f"sc{k}.dcm", secondary_capture(page, "CT", "1.2.840.10008.5.1.4.1.1." + k))
             for k in ("7", "7.1", "7.2", "7.3", "7.4")]
    recs = list(classify(blobs, workers=1))
    assert all(r.ok for r in recs), [r.error for r in recs]
    assert len({round(r.p_medical, 6) for r in recs}) == 1, [(r.input, r.p_medical) for r in recs]


# --- server: the open-file limit it raises --------------------------------------------------------------------------

_RAISE = """
import logging, resource, sys
logging.basicConfig(level=logging.WARNING)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, int(sys.argv[1])))
from medimg.server.app import more_open_files
from medimg.server.config import ServerConfig
more_open_files(ServerConfig(max_jobs=2, max_files=200))
print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


@pytest.mark.parametrize("hard, soft, warned", [(20000, 2 * 6 * 200 + 1024, False), (1000, 1000, True)])
def test_the_open_file_limit_is_raised_to_full_queues_or_as_far_as_the_hard_limit_allows(hard, soft, warned):
    """2 jobs of 200 files: each job's request running, 4 waiting and one more arriving (as the byte budget counts)
    spool a file each, plus 1,024 spare: 3,424 (mutants: one fewer request a job, no spare files). Under a hard
    limit of 1,000 the soft limit goes up to it, with a warning (mutants: the whole need asked for, and refused;
    the limit never raised; a warning after a raise that was enough)."""
    import os
    import subprocess
    import sys

    resource = pytest.importorskip("resource", reason="open-file limits are a Unix thing")
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] not in (resource.RLIM_INFINITY,) and \
            resource.getrlimit(resource.RLIMIT_NOFILE)[1] < hard:
        pytest.skip("this shell's hard open-file limit is lower than the test's")
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    r = subprocess.run([sys.executable, "-c", _RAISE, str(hard)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout.split()[-1]) == soft
    assert ("the open-file limit is" in r.stderr) == warned, r.stderr[-2000:]


# --- archive: a name flagged UTF-8 that is not, after a member with a comment --------------------------------------

def _png(colour=(200, 30, 30), size=(80, 80)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def test_a_misflagged_name_after_a_member_comment_is_read(tmp_path):
    """Directory entries are stepped over by their name, extra field and comment: a member with a comment before
    the misflagged one (mutant: the comment's length left out, so the next entry was not found and zipfile refused
    the whole archive)."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("good.png")
        info.comment = b"scanned 2019"
        zf.writestr(info, _png())
        zf.writestr("cafX.png", _png((0, 0, 200)))
    from test_diffread_s38 import misflagged

    data = misflagged(buf.getvalue())
    path = tmp_path / "notes.zip"
    path.write_bytes(bytes(data))
    got = [(i.origin, isinstance(i, ImageItem)) for i in open_input(str(path))]
    assert got == [(f"{path}:good.png", True), (f"{path}:caf\u0398.png", True)], got


# --- headers naming a data file of another stem: which one, how many ------------------------------------------------

def _header(data_name: str) -> bytes:
    return (b"ObjectType = Image\nNDims = 3\nDimSize = 48 40 4\nElementType = MET_UCHAR\nElementDataFile = "
            + data_name.encode() + b"\n")


def _notes(items) -> list[str]:
    return sorted(i.error for i in items if isinstance(i, ItemError))


def _pair_files(first: str, second: str) -> dict[str, bytes]:
    vol = (np.indices((4, 40, 48)).sum(0) % 50 * 5).astype(np.uint8).tobytes()
    return {first: _header("a.raw"), second: _header("a.raw"), "a.raw": vol}


def _pair_notes(tmp_path, files: dict, packed: bool) -> list[str]:
    """The notes of reading `files` zipped (the zip) or in a folder (its a.raw)."""
    import builders as b

    from medimg.sources import Limits

    if packed:
        path = tmp_path / "p.zip"
        path.write_bytes(b.zip_bytes(list(files.items())))
        return _notes(open_input(str(path), Limits()))
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return _notes(open_input(str(tmp_path / "a.raw"), Limits()))


@pytest.mark.parametrize("packed", [False, True])
def test_of_two_headers_naming_one_data_file_the_first_by_name_is_its_header(tmp_path, packed):
    """h1.mhd and h2.mhd both name a.raw: a.raw is the data file of h1.mhd, the first in name order, in a folder and
    in a zip alike (mutants: the last header read won)."""
    files = _pair_files("h1.mhd", "h2.mhd")
    notes = _pair_notes(tmp_path, files, packed)
    assert notes == ["skipped: the data file of h1.mhd, read with it"], notes


@pytest.mark.parametrize("packed", [False, True])
def test_only_the_first_max_folder_headers_are_read_for_the_files_they_name(tmp_path, monkeypatch, packed):
    """With MAX_FOLDER_HEADERS at 1, z.mhd (after a0.mhd in name order) is not read: a.raw it names is a row of its
    own, not its data file (mutants: every header of the folder read, however many)."""
    from medimg.sources import files as files_mod

    monkeypatch.setattr(files_mod, "MAX_FOLDER_HEADERS", 1)
    files_mod.headers_naming.cache_clear()
    files = _pair_files("a0.mhd", "z.mhd")
    files["a0.mhd"] = _header("other.raw")
    notes = _pair_notes(tmp_path, files, packed)
    assert not any("data file of z.mhd" in n for n in notes), notes


def test_a_header_written_after_its_data_was_first_looked_at_is_found(tmp_path):
    """Headers are read again once their folder changes (mutant: the folder's headers kept from the first look)."""
    (tmp_path / "a.raw").write_bytes(bytes(48 * 40 * 4))
    list(open_input(str(tmp_path / "a.raw")))
    import os
    import time

    (tmp_path / "h.mhd").write_bytes(_header("a.raw"))
    later = time.time() + 5
    os.utime(tmp_path, (later, later))  # the folder's change seen even on a coarse clock
    notes = _notes(open_input(str(tmp_path / "a.raw")))
    assert notes == ["skipped: the data file of h.mhd, read with it"], notes



# --- media: more queries, each measured with window.matchMedia in /usr/bin/chromium at media.VIEWPORT ---------------

MORE_CHROMIUM = [
    ('print', False), ('(orientation)', True), ('not (orientation: foo)', False),
    ('(hover)', True), ('(forced-colors)', False), ('(prefers-reduced-motion)', False),
    ('(hover: hover)', True), ('(pointer: fine)', True), ('(prefers-reduced-transparency: no-preference)', True),
    ('(-webkit-min-width: 10px)', False), ('(min-grid: 0)', False), ('(min-width)', False),
    ('(monochrome)', False), ('(color)', True), ('not (min-width: 10)', False),
    ('(grid >= 0)', False), ('(device-pixel-ratio >= 1)', False), ('(monochrome: 0)', True),
    ('(min-width: 14in)', False), ('(min-width: 99vw)', True), ('(min-resolution: 95dpi)', True),
    ('(min-color: 7px)', False), ('(min-width: 81rem)', False), ('not (orientation)', False),
    ('(any-pointer: coarse)', False), ('(min-aspect-ratio: 1/2)', True), ('not all and (monochrome)', True),
    ('(color-index: 0)', True), ('(max-monochrome: 0)', True), ('(transform-3d)', False),
    ('(min-width: 0px) and (hover: banana)', False),
]


@pytest.mark.parametrize("query, holds", MORE_CHROMIUM)
def test_more_media_queries_hold_as_chromium_says(query, holds):
    """Media types, features alone, units (in, vw, rem, dpi), features that take no unit or no range, and `not`
    of an unknown: each as Chromium's matchMedia answered (the mutants each changed one of these answers)."""
    from medimg.sources import media

    assert media.media_matches(query) is holds


# --- dicom_middle: diffusion series with one b-value, groups missing or short ---------------------------------------

def _dwi(bvalues, drop_diffusion=(), groups=None):
    import pydicom

    from test_left2_s38 import T, Z, _enhanced_mr

    pairs = [(t, z) for t in range(T) for z in range(Z)]
    data = _enhanced_mr(pairs, [bvalues[t] for t, _ in pairs] if bvalues is not None else None)
    if not drop_diffusion and groups is None:
        return pairs, data
    ds = pydicom.dcmread(io.BytesIO(data))
    seq = ds.PerFrameFunctionalGroupsSequence
    for i in drop_diffusion:
        del seq[i].MRDiffusionSequence
    if groups is not None:
        ds.PerFrameFunctionalGroupsSequence = pydicom.sequence.Sequence(list(seq)[:groups])
    out = io.BytesIO()
    ds.save_as(out)
    return pairs, out.getvalue()


def _shown_pair(pairs, data):
    from test_left2_s38 import _frame_shown

    return pairs[_frame_shown(data) - 1]


def test_a_diffusion_series_of_one_b_value_shows_its_middle_time_point():
    """Every frame at b = 1000 (a trace series, one volume a direction): no b0 to prefer, so the middle slice of the
    middle volume (mutant: one b-value taken as the b0, so the first volume was shown)."""
    from test_left2_s38 import T, Z

    assert _shown_pair(*_dwi([1000] * T)) == (T // 2, Z // 2)


def test_a_diffusion_series_with_frames_missing_their_b_value_is_still_shown():
    """Two frames without their MRDiffusionSequence: the b-values say nothing, time points still do (mutant: the
    b-values with holes compared, which raised and lost the picture)."""
    from test_left2_s38 import T, Z

    assert _shown_pair(*_dwi([1000, 0, 1000, 0, 1000, 1000], drop_diffusion=(3, 17))) == (T // 2, Z // 2)


def test_per_frame_groups_for_fewer_frames_than_the_file_has_show_its_middle_frame():
    """Groups for 30 of 60 frames: they cannot say where every frame is, so the middle frame is shown (mutant: the
    short list read as if whole, which raised and lost the picture)."""
    pairs, data = _dwi(None, groups=30)
    from test_left2_s38 import _frame_shown

    assert _frame_shown(data) == len(pairs) // 2 + 1



# --- files: whole arithmetic-coded JPEGs whose last row of blocks is grey ------------------------------------------

@pytest.mark.parametrize("progressive, fill", [(False, False), (True, False), (False, True)])
def test_whole_arithmetic_jpegs_ending_in_a_grey_row_are_read(tmp_path, progressive, fill):
    """The cut check runs only when the whole last row of blocks is flat mid-grey (since 54a1bda), which the
    grey-corner files of test_diffread_s38 no longer reach: these reach it. An arithmetic-coded JPEG (SOF9, SOF10)
    cannot be checked so and is read, fill bytes (FF) before its markers or not (mutants: the arithmetic test dropped;
    SOF9 not counted as arithmetic; a marker's length or a fill byte stepped over wrong)."""
    import shutil
    import subprocess

    if not shutil.which("cjpeg"):
        pytest.skip("needs cjpeg (libjpeg-turbo-progs) to write arithmetic JPEGs")
    errors, read = [], 0
    for seed in range(4):
        a = np.random.default_rng(seed).integers(0, 255, (120 + seed * 37, 160 + seed * 11, 3), dtype=np.uint8)
        a[-24:, :] = 128
        Image.fromarray(a).save(tmp_path / "src.ppm")
        out = tmp_path / f"a{seed}.jpg"
        subprocess.run(["cjpeg", "-arithmetic", *(["-progressive"] if progressive else []), "-outfile", str(out),
                        str(tmp_path / "src.ppm")], check=True)
        if fill:  # a fill byte before the first marker after SOI, as some writers pad
            out.write_bytes(out.read_bytes()[:2] + b"\xff" + out.read_bytes()[2:])
        try:
            Image.open(out).load()
        except OSError:  # Pillow's own "broken data stream": not this check's
            continue
        read += 1
        errors += [(out.name, i.error) for i in open_input(str(out)) if not isinstance(i, ImageItem)]
    assert read >= 3 and errors == []


def _photo(mode: str = "RGB") -> bytes:
    import builders as b

    return b.encode(b.pattern((640, 480), "RGB", 4).convert(mode), "JPEG", quality=90)


def test_a_cmyk_jpeg_cut_mid_scan_is_an_error_not_half_grey():
    """An Adobe CMYK JPEG stores its inks inverted: libjpeg's grey fill reads back as 127, not 128 (mutant: only
    128 taken for the fill, so a cut CMYK file was read half blank)."""
    from medimg.sources import Blob

    data = _photo("CMYK")
    for keep in (0.3, 0.6):
        (item,) = list(open_input(Blob("cut.jpg", data[:int(len(data) * keep)] + b"\xff\xd9", name="cut.jpg")))
        assert isinstance(item, ItemError) and "grey" in item.error, (keep, item)


def test_a_jpeg_cut_just_after_a_stuffed_ff_is_an_error():
    """Data ending in FF stops between FF and its stuffed 00: cut mid-scan, never whole (mutant: an end marker added
    after it, and the file read)."""
    from medimg.sources import Blob

    data = _photo()
    sos = data.index(b"\xff\xda")
    cuts = [i + 1 for i in range(sos + 200, len(data) - 100) if data[i:i + 2] == b"\xff\x00"][:5]
    assert cuts
    for cut in cuts:
        items = list(open_input(Blob("cut.jpg", data[:cut], name="cut.jpg")))
        assert [type(i).__name__ for i in items] == ["ItemError"], (cut, items)


# --- Office crops (a:srcRect): the crop's edges, how many, and the pictures shown otherwise --------------------------

def _deck(bodies: list[tuple[str, list[tuple[str, str]]]], media: dict[str, bytes]) -> bytes:
    """A .pptx whose slide k has the shapes `bodies[k][0]` (XML) and the image relationships `bodies[k][1]`."""
    import builders as b
    from test_office_s37 import rels, slide

    m = {"[Content_Types].xml": b"<Types/>", "_rels/.rels": rels(("rId1", "officeDocument", "ppt/presentation.xml")),
         "ppt/presentation.xml": ('<p:presentation xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/'
                                  'main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
                                  '<p:sldIdLst>' + "".join(f'<p:sldId id="{256 + k}" r:id="rId{10 + k}"/>'
                                                           for k in range(len(bodies)))
                                  + "</p:sldIdLst></p:presentation>").encode(),
         "ppt/_rels/presentation.xml.rels": rels(*[(f"rId{10 + k}", "slide", f"slides/slide{k + 1}.xml")
                                                   for k in range(len(bodies))])}
    for k, (body, pictures) in enumerate(bodies, 1):
        m[f"ppt/slides/slide{k}.xml"] = slide(body)
        m[f"ppt/slides/_rels/slide{k}.xml.rels"] = rels(*[(rid, "image", f"../media/{name}") for rid, name in pictures])
    m.update({f"ppt/media/{name}": data for name, data in media.items()})
    return b.zip_bytes(m)


def _pic(rid: str, rect: str | None) -> str:
    fill = "" if rect is None else f"<a:srcRect {rect}/>"
    return f'<p:pic><p:blipFill><a:blip r:embed="{rid}"/>{fill}<a:stretch/></p:blipFill></p:pic>'


def _shown_items(data: bytes, **limits) -> list[tuple[str, tuple[int, int], dict | None]]:
    from medimg.sources import Blob, Context, Limits

    got = Context(Limits(**limits)).open_blob(Blob("talk.pptx", data, name="talk.pptx"))
    return [(i.locator, i.image.size, i.metadata.get("crop")) for i in got if isinstance(i, ImageItem)]


def _screen(size=(400, 300), fmt="PNG") -> bytes:
    import builders as b

    return b.encode(b.pattern(size, "RGB", 7), fmt)


@pytest.mark.parametrize("rect, size", [('l="-10000" r="-5000"', (400, 300)),  # space added: no crop
                                        ('l="50000" r="50000"', (400, 300)),  # all of it cut: not a crop
                                        ('t="60000" b="40000"', (400, 300)),
                                        ('l="49999" r="50000"', (1, 300))])  # a sliver: one pixel, never none
def test_a_crop_s_edges(rect, size):
    """Negative sides add space (nothing cut), sides that cut the whole width or height are no crop, and a sliver
    keeps a pixel (mutants: negatives taken as cuts, a sum of exactly 100 % taken as a crop, top + bottom not
    checked, a crop of no pixel)."""
    got = _shown_items(_deck([(_pic("rId2", rect), [("rId2", "a.png")])], {"a.png": _screen()}))
    assert [(loc, sz) for loc, sz, _ in got] == [("slide 1", size)], got


def test_a_picture_after_a_cropped_one_is_shown_whole():
    """Two pictures in one slide, the first cropped, the second with no a:srcRect at all (mutant: the first's crop
    carried over to the second)."""
    body = _pic("rId2", 'l="25000" r="25000"') + _pic("rId3", None)
    got = _shown_items(_deck([(body, [("rId2", "a.png"), ("rId3", "b.png")])],
                             {"a.png": _screen(), "b.png": _screen((90, 60))}))
    assert sorted(got, key=str) == sorted([("slide 1", (200, 300), {"left": 0.25, "top": 0.0, "right": 0.25,
                                                                     "bottom": 0.0}),
                                           ("slide 1", (90, 60), None)], key=str), got


def test_a_cropped_picture_also_pointed_at_without_a_blip_is_read_whole_there_in_slide_order():
    """Slide 1 crops a.png; slide 2 names it only in its relationships (VML, a damaged part): both views, slide 1's
    first (mutants: the part without a blip left out; the views in reverse order)."""
    got = _shown_items(_deck([(_pic("rId2", 'l="25000" r="25000"'), [("rId2", "a.png")]), ("", [("rId2", "a.png")])],
                             {"a.png": _screen()}))
    assert [(loc, sz) for loc, sz, _ in got] == [("slide 1", (200, 300)), ("slide 2", (400, 300))], got


@pytest.mark.parametrize("n, cropped", [(8, 8), (9, 0)])
def test_up_to_eight_crops_of_one_picture_are_read_past_them_as_stored(n, cropped):
    """_MAX_VIEWS: eight different crops are eight images; a ninth reads the picture as stored instead (mutants:
    the cap one lower; no cap)."""
    bodies = [(_pic("rId2", f'l="{1000 * (k + 1)}"'), [("rId2", "a.png")]) for k in range(n)]
    got = _shown_items(_deck(bodies, {"a.png": _screen()}))
    assert sum(c is not None for _, _, c in got) == cropped, got


def test_a_reduced_cropped_picture_gives_the_stored_size_of_the_part_shown():
    """A JPEG decoded reduced: its full_size is the part the crop shows, at stored size (mutants: the right or
    bottom cut left out of it)."""
    from medimg.sources import Blob, Context, Limits

    data = _deck([(_pic("rId2", 'l="10000" t="20000" r="30000" b="40000"'), [("rId2", "a.jpg")])],
                 {"a.jpg": _screen((2000, 1000), "JPEG")})
    (item,) = [i for i in Context(Limits(decode_side=256)).open_blob(Blob("talk.pptx", data, name="talk.pptx"))
               if isinstance(i, ImageItem)]
    assert item.full_size == (1200, 400), (item.full_size, item.image.size)


# --- css: which sheets are weighed for what a browser shows ------------------------------------------------------

@pytest.mark.parametrize("page, want", [
    ('<style>.x{background:url(a.png);background-image:url(b.png)}</style><div class=x>t</div>', ["b.png"]),
    ('<style>.x{background-image:image-set("a.png" 1x);background-image:image-set("b.png" 1x)}</style>'
     '<div class=x>t</div>', ["b.png"]),
    ('<style>@media print{.x{background:url(p.png)}}</style><div class=x>t</div>', []),
])
def test_an_image_set_twice_or_for_print_is_left_out_as_a_browser_leaves_it(page, want):
    """The cheap test for a sheet that may set one image twice or hold a media query (mutants: three image
    properties needed, image-set() alone not counted, an @media not weighed): the first image overridden in its
    block, and one for print only, are not what the page shows."""
    from medimg.sources import web

    assert [c.url for c in web.extract(page, "http://h/")] == ["http://h/" + u for u in want]


# --- pdf: the same bytes under another palette stream or DecodeParms ----------------------------------------------

def _pdf_images(data: bytes) -> list:
    from test_pdf_s38 import _run

    return [i for i in _run(data) if isinstance(i, ImageItem)]


@pytest.mark.parametrize("nested", [False, True])
def test_the_same_bytes_under_palettes_stored_as_streams_of_their_own_are_two_images(nested):
    """Indexed colour spaces whose palettes are stream objects (named by the image, or by a colour space object it
    names): the palettes' data tell the two images apart (mutants: the objects a colour space names not followed;
    their stream data left out of the digest)."""
    import pymupdf

    from test_pdf_s38 import _twins

    index = np.random.default_rng(7).integers(0, 4, (80, 120), dtype=np.uint8)
    doc = pymupdf.open(stream=_twins("/ColorSpace/DeviceGray", "/ColorSpace/DeviceGray", index.tobytes()),
                       filetype="pdf")
    for xref, palette in zip(sorted(x for x, *_ in doc[0].get_images(full=True)),
                             (bytes.fromhex("00000000ff00ffffff0000ff"), bytes.fromhex("ff00ff00ffff0000ffffff00"))):
        stream = doc.get_new_xref()
        doc.update_object(stream, "<<>>")
        doc.update_stream(stream, palette)
        space = f"[/Indexed/DeviceRGB 3 {stream} 0 R]"
        if nested:
            named = doc.get_new_xref()
            doc.update_object(named, space)
            space = f"{named} 0 R"
        doc.xref_set_key(xref, "ColorSpace", space)
    images = _pdf_images(doc.tobytes())
    assert [i.metadata["bbox"][1] for i in images] == [40, 290]
    assert not np.array_equal(np.asarray(images[0].image.convert("RGB")), np.asarray(images[1].image.convert("RGB")))


def test_the_same_flate_bytes_under_another_predictor_are_two_images():
    """One Flate stream read with a PNG predictor (a filter byte each row) and without: two pictures (mutant:
    DecodeParms left out of the digest, so the second was taken for a copy of the first)."""
    from test_pdf_s38 import _twins

    rows = np.repeat(np.repeat(np.random.default_rng(3).integers(0, 255, (8, 12), dtype=np.uint8), 10, 0), 10, 1)
    raw = b"".join(b"\0" + rows[y].tobytes() for y in range(80))  # filter None before each row
    data = _twins("/ColorSpace/DeviceGray/DecodeParms<</Predictor 15/Colors 1/Columns 120>>", "/ColorSpace/DeviceGray",
                  raw)  # PyMuPDF compresses both streams alike (FlateDecode)
    images = _pdf_images(data)
    assert [i.metadata["bbox"][1] for i in images] == [40, 290]


def test_a_misflagged_zip_s_header_reads_its_data_member():
    """A zip with one name flagged UTF-8 that is not, holding a MetaImage pair: the header reads its data file from
    the same archive opened again (mutant: that second opening without the flag fix, so the archive was refused)."""
    import zipfile

    vol = (np.indices((4, 40, 48)).sum(0) % 50 * 5).astype(np.uint8).tobytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("cafX.png", _png())
        zf.writestr("h.mhd", _header("h.raw"))
        zf.writestr("h.raw", vol)
    from test_diffread_s38 import misflagged

    data = misflagged(buf.getvalue())
    from medimg.sources import Blob

    items = list(open_input(Blob("p.zip", bytes(data), name="p.zip")))
    shown = sorted(i.origin for i in items if isinstance(i, ImageItem))
    assert shown == ["p.zip:caf\u0398.png", "p.zip:h.mhd"], [(i.origin, getattr(i, "error", "")) for i in items]


# --- slide.py: the tissue mask's thresholds, the field's clamps, zoom and overview ----------------------------------

def test_the_tissue_mask_s_thresholds():
    """Tissue: saturation over 20, or a grey level under 200 (a sum under 600), and not black (a sum over 75)
    (mutants: each threshold moved)."""
    from medimg.sources.slide import tissue_mask

    px = np.array([[(230, 210, 230), (230, 209, 230), (199, 200, 200), (200, 200, 200), (26, 25, 25), (25, 25, 25),
                    (60, 30, 30)]], np.uint8)
    # sat 20 at 230: glass; sat 21: tissue; sum 599: tissue; 600: glass; sum 76: tissue; 75: padding; dark red: tissue
    assert tissue_mask(px).tolist() == [[False, True, True, False, True, False, True]]


def _scan(w: int, h: int, at: tuple[float, float]) -> np.ndarray:
    """Glass with a square of pink tissue centred at the fractions `at` of its sides."""
    img = np.full((h, w, 3), 243, np.uint8)
    cx, cy, r = int(at[0] * w), int(at[1] * h), max(w, h) // 20
    img[max(0, cy - r):cy + r, max(0, cx - r):cx + r] = (232, 168, 205)
    return img


def _field(scan: np.ndarray, um, max_pixels: int = 10**8, overview: int = 1024):
    from medimg.sources.slide import tissue_field

    asked = []

    def read(rect, zoom):
        asked.append(zoom)
        x, y, w, h = rect
        part = Image.fromarray(scan[y:y + h, x:x + w])
        return part.resize((max(1, round(w * zoom)), max(1, round(h * zoom))))

    h, w = scan.shape[:2]
    return tissue_field(read, (0, 0, w, h), um, max_pixels, overview), asked


@pytest.mark.parametrize("at", [(0.0, 0.0), (1.0, 1.0)])
def test_a_field_at_a_corner_stays_inside_the_scan(at):
    """Tissue in a corner: the field is moved inside the scan, not past its edge (mutants: a clamp dropped)."""
    scan = _scan(6000, 4500, at)
    ((fx, fy, side, _), zoom), _ = _field(scan, 1.0)
    assert side == 512 and 0 <= fx <= 6000 - side and 0 <= fy <= 4500 - side, (fx, fy)


def test_a_scan_smaller_than_a_field_is_never_enlarged_and_its_overview_fits():
    """A 300 px wide scan region: its field is all of it at zoom 1, never enlarged (mutant: zoom over 1); the
    overview asked for fits `overview` on the longest side (mutant: scaled by the shortest side)."""
    ((_, _, side, _), zoom), _ = _field(_scan(300, 300, (0.5, 0.5)), 0.25)
    assert side == 300 and zoom == 1.0
    _, asked = _field(_scan(4000, 1000, (0.5, 0.5)), 1.0, overview=1000)
    assert asked[0] == pytest.approx(1000 / 4000)


# --- pyramid.py: the scan size, the OME pixel size's units and range ------------------------------------------------

def _pyramid_items(data: bytes, **limits):
    from test_pyramid_s38 import items

    return items(data, **limits)


def test_a_pyramid_of_exactly_scan_side_is_shown_whole():
    """SCAN_SIDE (4096) a side is not over it: shown whole, as a CZI of that size is (mutant: >=)."""
    from test_pyramid_s38 import pyramid, slide

    (item,) = _pyramid_items(pyramid(slide(4096, 1024), um=0.5))
    assert item.locator == "" and "field" not in item.metadata, item.locator


@pytest.mark.parametrize("size, unit, words", [(20, "µm", "tissue field 10240 µm wide"),
                                               (500, "nm", "tissue field 512 µm wide")])
def test_an_ome_pixel_size_in_its_unit_and_up_to_100_um(size, unit, words):
    """OME PhysicalSizeX up to 100 µm is a pixel size (a 20 µm/px overview scan), and nm are thousandths of a µm
    (mutants: OME sizes capped at 10 µm as resolution tags are; nm read as µm)."""
    import tifffile

    from test_pyramid_s38 import slide

    base = slide(5000, 1200)
    levels = [base]
    while max(levels[-1].shape[:2]) >= 1000:
        levels.append(np.ascontiguousarray(levels[-1][::2, ::2]))
    buf = io.BytesIO()
    kw = dict(tile=(256, 256), compression="jpeg", photometric="rgb")
    with tifffile.TiffWriter(buf, bigtiff=True, ome=True) as tw:
        tw.write(base, subifds=len(levels) - 1, metadata={"axes": "YXS", "Name": "slide", "PhysicalSizeX": size,
                                                          "PhysicalSizeXUnit": unit}, **kw)
        for level in levels[1:]:
            tw.write(level, subfiletype=1, metadata=None, **kw)
    (item,) = _pyramid_items(buf.getvalue())
    assert words in item.locator, item.locator


# --- microscopy / czi: a slide's "label", a CZI of one scene, scenes that are slide scans -------------------------

def test_an_ome_image_named_just_label_is_a_note():
    """QuPath and Bio-Formats also name the label picture plain "label" (mutant: only "label image" known)."""
    from test_micro_s38 import items_of, ome

    tissue = np.random.default_rng(0).integers(120, 230, (256, 320, 3), dtype=np.uint8)
    label = np.full((120, 300, 3), 255, np.uint8)
    items = items_of(ome([(tissue, {"Name": ""}), (label, {"Name": "label"})]), "slide.ome.tif")
    assert [(type(i).__name__, i.locator) for i in items] == [("ImageItem", "image 1"), ("ItemError", "label")]


def _czi(path: str, scenes: list[tuple[int, int]], size: tuple[int, int]) -> None:
    pyczi = pytest.importorskip("pylibCZIrw.czi")
    w_, h_ = size
    with pyczi.create_czi(path, exist_ok=True) as w:
        for scene, (x, y) in enumerate(scenes):
            a = np.random.default_rng(scene).integers(0, 40, (h_, w_), dtype=np.uint16)
            a[h_ // 3:2 * h_ // 3, w_ // 3:2 * w_ // 3] = 3000
            w.write(a[..., None], plane={"C": 0}, scene=scene, location=(x, y))
        w.write_metadata("czi")


def test_a_czi_of_one_scene_is_not_named_by_its_scene(tmp_path):
    """One scene: the image is the item, its locator empty as before scenes were read (mutant: `scene 1 of 1`)."""
    path = str(tmp_path / "one.czi")
    _czi(path, [(0, 0)], (400, 300))
    assert [(type(i).__name__, i.locator) for i in open_input(path)] == [("ImageItem", "")]


def test_each_scene_that_is_a_slide_scan_keeps_its_name_before_its_field(tmp_path):
    """Two scenes each over SCAN_SIDE wide: each a tissue field, its locator naming its scene first (mutant: the
    scene left out of a field's locator, so both rows read alike)."""
    path = str(tmp_path / "two.czi")
    _czi(path, [(0, 0), (0, 2000)], (4200, 300))
    locators = [i.locator for i in open_input(path)]
    assert [loc.split(", tissue field")[0] for loc in locators] == ["scene 1 of 2", "scene 2 of 2"], locators


def test_a_large_image_without_smaller_levels_is_not_taken_for_a_slide_scan():
    """An OME-TIFF of two channels, 4,200 px wide but with no pyramid: a microscope image shown whole (reduced), not
    a tissue field (mutant: one level counted as a pyramid)."""
    from test_micro_s38 import items_of, ome

    a = np.random.default_rng(1).integers(90, 110, (2, 600, 4200), dtype=np.uint16)
    a[0, 200:400, 1000:3000] = 3000
    (item,) = items_of(ome([(a, {"axes": "CYX", "Name": "wide"})]), "wide.ome.tif")
    assert isinstance(item, ImageItem) and "tissue field" not in item.locator and "field" not in item.metadata


def test_a_field_from_tiles_each_over_max_pixels_is_an_error_not_decoded():
    """1024 px tiles (3.1 M samples each) under a max_pixels of 2 M: not decoded, said (mutant: the segment size
    not checked, so each such tile was decoded whole whatever the cap)."""
    import tifffile

    from test_pyramid_s38 import slide

    levels = [slide(4200, 1100)]
    while max(levels[-1].shape[:2]) >= 1000:
        levels.append(np.ascontiguousarray(levels[-1][::2, ::2]))
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf, bigtiff=True) as tw:
        for k, level in enumerate(levels):
            tw.write(level, tile=(1024, 1024), compression="jpeg", photometric="rgb", subfiletype=1 if k else 0,
                     resolution=(1e4 / 0.5, 1e4 / 0.5), resolutionunit="CENTIMETER")
    got = _pyramid_items(buf.getvalue(), max_pixels=2_000_000)
    assert [type(i).__name__ for i in got] == ["ItemError"] and "over the max_pixels cap" in got[0].error, got


def test_only_the_tiles_asked_for_are_checked():
    """tiles_problem with `only`: the tiles a region covers, not the others (mutant: every tile but those). Tiles 4
    and 5 of this 3 × 3 level name an 8,000 px picture; the glass tiles are sound."""
    import imagecodecs
    import tifffile

    from medimg.sources.tiff_tiles import tiles_problem
    from test_pyramid_s38 import shared_tiles

    big = imagecodecs.jpeg8_encode(np.zeros((8000, 8000), np.uint8), level=10)
    page = tifffile.TiffFile(io.BytesIO(shared_tiles([1536], um=0.25, tissue_at={0: big}))).pages[0]
    assert tiles_problem(page, {0, 1, 2}) is None
    assert "not its tile's" in (tiles_problem(page, {4}) or "")


def test_ome_images_of_one_name_each_keep_their_own_channel_colours():
    """Two wells both named "Well" (a plate exported without well names): each series is its OME Image by place,
    so the second keeps its blue (mutant: found by name only, which two images share, so the second lost its
    colours for ImageJ's defaults, red first)."""
    from test_micro_s38 import items_of, ome, well

    blue = {"axes": "CYX", "Name": "Well", "Channel": {"Color": [0x0000FFFF, 0x00FF00FF]}}
    red = {"axes": "CYX", "Name": "Well", "Channel": {"Color": [-16776961, 0x00FF00FF]}}  # 0xFF0000FF
    a, b = items_of(ome([(well(1), red), (well(1), blue)]))
    (ar, _, ab), (br, _, bb) = np.asarray(a.image)[20, 20], np.asarray(b.image)[20, 20]
    assert (ar, ab) == (255, 0) and (br, bb) == (0, 255)
