"""Tests that kill the surviving mutants of the s35 mutation round: each pins a behaviour of code added in
session 35 that no earlier test checked (one section per module)."""

from __future__ import annotations

import errno
import io
import struct
import zlib
import time
import tracemalloc

import anyio
import numpy as np
import pytest
from PIL import Image
from starlette.requests import Request

import builders as b
from builders import pdf_objects, pdf_stream
from medimg.scale import ray_job
from medimg.server import api, limits as server_limits
from medimg.sources import video
from medimg.sources import ImageItem, ItemError, Limits, input_tasks, open_input
from test_media_s35 import bar_of, items_of, marked, recorded_clip
from test_microscopy import items_of as tiff_items, sparse_field, tiff
from test_archive import items as zip_items, summary
from test_mrc import items_of as mrc_items, mrc_bytes
from test_nifti import items as nifti_items, nifti
from test_pdf_attached_s35 import _jpeg, _portfolio, _run as pdf_run, bomb_pdf
from test_tar import sparse_tar
from test_png_grey_alpha import _chunk, _image, _png16, _twelve_bits
from test_volumes import write_nrrd


# --- nifti.py: _square_pixels ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,zooms,size", [((2, 64, 10), (0.5, 20.0, 20.0), (1, 512)),
                                              ((64, 2, 10), (20.0, 0.5, 20.0), (512, 1))])
def test_a_slice_one_or_two_voxels_across_is_never_shrunk_to_nothing(shape, zooms, size):
    """Past MAX_STRETCH the fine axis shrinks; two fine voxels against 40 times coarser ones would round to 0 px
    (Pillow refuses an empty size): at least 1 px is kept. (The slices are as thick as the coarse axis, s43: one
    axis far thicker than both others would be a 2D series, shown in its own plane.)"""
    vol = np.zeros(shape, np.int16)
    vol[:, 20:40] = vol[20:40] = 100
    (item,) = nifti_items(nifti(vol, zooms=zooms))
    assert isinstance(item, ImageItem) and item.image.size == size


# --- nrrd_volume.py: _segmentation ----------------------------------------------------------------------------

@pytest.mark.parametrize("keys", [{"Segment0_ID": "Segment_1"},
                                  {"Segmentation_MasterRepresentation": "Binary labelmap"}])
def test_either_kind_of_slicer_segmentation_line_makes_a_note(tmp_path, keys):
    """Slicer's per-segment lines (Segment0_ID) and its segmentation-wide lines (an empty segmentation has only
    these) each tell a .seg.nrrd."""
    masks = np.zeros((40, 30, 20), np.uint8)
    masks[10:20, 10:20] = 1
    (note,) = open_input(write_nrrd(tmp_path, masks, "s.seg.nrrd", space="left-posterior-superior",
                                    **{"space directions": np.eye(3)}, **keys))
    assert isinstance(note, ItemError) and note.skipped and "3D Slicer segmentation" in note.error


# --- files.py: _first_not_blank, is_blank, _wide_grey_alpha --------------------------------------------------------

def _gif(frames: list[Image.Image]) -> bytes:
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:], duration=40, loop=0)
    return buf.getvalue()


def test_a_fade_in_of_several_black_frames_gives_way_to_the_first_with_content():
    """BLANK_FRAMES (32) frames are looked at, not just the next one: a fade-in's first 10 frames are black (0..9:
    one colour each, so that the writer keeps them apart)."""
    frames = [Image.new("RGB", (64, 48), (k, k, k)) for k in range(10)] + [Image.fromarray(marked(i)) for i in range(10, 14)]
    (item,) = items_of(_gif(frames), "fade.png")
    assert isinstance(item, ImageItem) and item.locator == "frame 11" and bar_of(item) == 10


def test_a_first_frame_with_a_clear_background_is_not_blank():
    """Only a frame clear all over is blank: a sprite on a transparent background (its alpha's minimum 0) is the
    frame shown."""
    first = Image.fromarray(marked(0)).convert("RGBA")
    first.putalpha(Image.fromarray(np.where(np.arange(64) < 32, 255, 0).astype(np.uint8)[None, :].repeat(48, 0)))
    frames = [first] + [Image.fromarray(marked(i)).convert("RGBA") for i in range(1, 4)]
    (item,) = items_of(_gif(frames), "sprite.png")
    assert item.locator == "frame 1" and bar_of(item) == 0


def test_a_16_bit_alpha_keeps_its_top_8_bits():
    """Half-transparent 16-bit alpha (32896) is alpha 128 in the 8-bit image, not wrapped."""
    g = _twelve_bits()
    image = _image(_png16(np.dstack([g, np.full_like(g, 32896)])))
    assert image.mode == "LA" and set(np.asarray(image.getchannel("A")).ravel()) == {128}



def _apng16(frames: list[np.ndarray]) -> bytes:
    """An animated PNG of 16-bit grey and alpha frames (H×W×2), as _png16 writes a still one."""
    h, w = frames[0].shape[:2]

    def pixels(a):
        return zlib.compress(b"".join(b"\x00" + a[y].astype(">u2").tobytes() for y in range(h)))

    def control(seq):
        return _chunk(b"fcTL", struct.pack(">IIIIIHHBB", seq, w, h, 0, 0, 1, 10, 0, 0))

    out = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 4, 0, 0, 0))
           + _chunk(b"acTL", struct.pack(">II", len(frames), 0)) + control(0) + _chunk(b"IDAT", pixels(frames[0])))
    for k, a in enumerate(frames[1:]):
        out += control(2 * k + 1) + _chunk(b"fdAT", struct.pack(">I", 2 * k + 2) + pixels(a))
    return out + _chunk(b"IEND", b"")


def test_each_frame_of_a_16_bit_grey_and_alpha_animation_is_its_own():
    """libpng reads a PNG's first frame only: an animation's frames are left to Pillow, each its own picture
    (not the first frame's pixels again)."""
    g = _twelve_bits()
    opaque = np.full_like(g, 65535)
    data = _apng16([np.dstack([g, opaque]), np.dstack([g[:, ::-1], opaque])])
    first, second = (np.asarray(i.image.convert("L")).astype(int) for i in items_of(data, "a.png", all_frames=True))
    assert first[:, :5].mean() < first[:, -5:].mean() and second[:, :5].mean() > second[:, -5:].mean()


# --- tar.py: sparse members -------------------------------------------------------------------------------------

def test_a_resumed_run_past_the_budget_adds_no_row_the_whole_run_did_not_give(tmp_path):
    """The whole run says at disk/1.png that the holes pass zip_max_bytes, and stops; a run resumed after it (both
    done) stops there too, silently, rather than saying so again at disk/2.png."""
    png = b.image_bytes("PNG")
    path = tmp_path / "e.tgz"
    path.write_bytes(sparse_tar([(f"disk/{i}.png", [(0, png)], 3_000_000) for i in range(3)], "w:gz"))
    whole = [item for task in input_tasks([path], Limits(zip_max_bytes=5_000_000)) for item in task()]
    assert [(i.origin, type(i).__name__) for i in whole] == [(f"{path}:disk/0.png", "ImageItem"),
                                                             (f"{path}:disk/1.png", "ItemError")]
    done = {i.origin for i in whole}
    tasks = input_tasks([path], Limits(zip_max_bytes=5_000_000), skip=done.__contains__)
    assert [item for task in tasks for item in task()] == []


# --- server/api.py: _slot ---------------------------------------------------------------------------------------

def _client(gone_after: float | None) -> Request:
    """A request whose client hangs up at once (0), after `gone_after` seconds, or never (None)."""
    async def receive():
        if gone_after is None:
            await anyio.sleep_forever()
        if gone_after:
            await anyio.sleep(gone_after)
        return {"type": "http.disconnect"}

    return Request({"type": "http", "method": "POST", "path": "/api/classify", "headers": []}, receive)


@pytest.mark.parametrize("free,gone_after,seconds,said,left", [
    (1, 0, 5, None, 1),  # the slot taken as the client went: given back, not held by a request no one waits for
    (0, 0.1, 5, None, 0),  # gone while waiting: None (no 503 for a client that is not there)
    (0, None, 0.1, False, 0),  # no slot in time: False (503)
    (1, None, 5, True, 0)])  # a slot, held
def test_a_job_slot_is_held_only_for_a_client_still_there(free, gone_after, seconds, said, left):
    async def main():
        jobs = anyio.Semaphore(free)
        got = await api._slot(jobs, _client(gone_after), seconds)
        return got, jobs.value

    assert anyio.run(main) == (said, left)


# --- scale/ray_job.py: write_failure ----------------------------------------------------------------------------

@pytest.mark.timeout(30)
def test_write_failure_follows_an_implicit_context_and_ends_on_a_loop():
    full = OSError(errno.ENOSPC, "No space left on device")
    try:
        try:
            raise full
        except OSError:
            raise RuntimeError("the writer gave up")  # no `from`: the OSError is its __context__
    except RuntimeError as exc:
        assert ray_job.write_failure(exc) is full
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__cause__, b.__cause__ = b, a  # a loop of causes, which nothing stops code from making
    assert ray_job.write_failure(a) is None


# --- microscopy.py: _bounds, _brightest_structure ---------------------------------------------------------------

def _two_channels(a: np.ndarray) -> np.ndarray:
    """The first channel of a two-channel ImageJ composite of `a` and a second dark field, as 0..255."""
    item, = tiff_items(tiff(np.stack([a, sparse_field(6)[0]]), imagej=True, metadata={"axes": "CYX"}))
    return np.asarray(item.image).astype(int)[..., 0]


def test_a_hot_streak_two_pixels_tall_is_no_structure():
    """A structure is a whole 3 × 3 neighbourhood: a cosmic ray's 2 × 3 streak at the 12-bit top does not set
    white (the cells would go mid-grey under it)."""
    a, cells = sparse_field()
    a[200:202, 200:203] = 4095
    px = _two_channels(a)
    assert px[60:78, 80:89].min() > 200 and 80 < px[60:78, 89:98].mean() < 160


def test_a_field_whose_median_is_a_fifth_of_the_way_up_is_not_dark_field():
    """DARK_FIELD is 0.1: a grey field (median 500 of 0..1000) with a small bright block (3000, under 0.5 % of the
    pixels) keeps its percentile stretch, its field mid-grey, not a dark one under the block."""
    rng = np.random.default_rng(3)
    a = rng.integers(0, 1000, (512, 512)).astype(np.uint16)
    a[100:120, 100:120] = 3000
    px = _two_channels(a)
    assert 100 < np.median(px) < 156


def test_a_spectral_stack_of_dark_fields_is_shown_up_to_its_cells():
    """Over MAX_COLOUR_CHANNELS (7) channels are averaged into grey, each dark-field one up to its cells, as a few
    channels are: the field stays dark (noise stretched to mid-grey in each before)."""
    planes = [sparse_field(seed)[0] for seed in range(8)]  # the same three cells, noise and hot pixels of each
    item, = tiff_items(tiff(np.stack(planes), imagej=True, metadata={"axes": "CYX"}))
    cells = sparse_field()[1]
    px = np.asarray(item.image).astype(int)
    assert item.image.mode == "L" and np.median(px[~cells]) < 30 and px[60:78, 80:89].min() > 200


def test_thin_filaments_brighter_than_any_structure_keep_the_percentile_top():
    """A dark field's top is raised to its brightest structure, never lowered: filaments one pixel wide (2.5 % of
    the pixels, past the 99.5th percentile) over a dim cell stay told apart, not all saturated at the cell's level."""
    rng = np.random.default_rng(4)
    a = rng.poisson(100, (512, 512)).astype(np.uint16)
    a[200:230, 200:230] = 500  # a dim cell: the brightest 3 x 3 structure
    a[:256, ::40], a[256:, ::40] = 1000, 2000  # filaments, dimmer above than below
    px = _two_channels(a)
    assert px[300, 40] > 240 and 90 < px[100, 40] < 150 and px[215, 215] < 100


def test_planes_two_pixels_tall_are_shown():
    """A plane too small for a 3 x 3 neighbourhood takes its brightest pixel as its top."""
    rng = np.random.default_rng(5)
    a = rng.poisson(100, (2, 2, 64)).astype(np.uint16)
    a[0, :, 10:14] = 3000
    item, = tiff_items(tiff(a, imagej=True, metadata={"axes": "CYX"}))
    assert isinstance(item, ImageItem) and item.image.size == (64, 2)
    assert np.asarray(item.image)[:, 11, 0].min() > 200


# --- microscopy.py: _ome_colour -----------------------------------------------------------------------------------

def test_an_ome_colour_wins_over_the_wavelength_and_deep_red_is_red():
    """A channel's own Color is used even when it names an emission wavelength too (DAPI at 461 nm drawn green
    here); Cy5 (670 nm) is red, as Bio-Formats makes 560-700 nm."""
    import tifffile

    from test_microscopy import colour_at, stack

    meta = {"axes": "CYX", "Channel": {"Name": ["DAPI", "Cy5"], "EmissionWavelength": [461, 670]}}
    desc = tifffile.TiffFile(io.BytesIO(tiff(stack((2, 96, 128)), ome=True, metadata=meta))).pages[0].description
    desc = desc.replace('EmissionWavelength="461', 'Color="16711935" EmissionWavelength="461')  # 0x00FF00FF: green
    assert desc.count('Color="') == 1
    data = tiff(stack((2, 96, 128)), photometric="minisblack", metadata=None, description=desc)
    item, = tiff_items(data, "cells.ome.tif")
    dapi, cy5 = colour_at(item, 0), colour_at(item, 1)
    assert dapi[1] > 200 and dapi[0] < 60 and dapi[2] < 60
    assert cy5[0] > 200 and cy5[1] < 60 and cy5[2] < 60


# --- mrc.py: _imod_signed, _smoother_unsigned -------------------------------------------------------------------

def test_imods_signed_flag_is_kept_even_when_unsigned_would_look_smoother(tmp_path):
    """IMOD says its bytes are signed (flags bit 0): its word stands; the smoothness guess is only for headers
    without IMOD's stamp."""
    import struct

    rng = np.random.default_rng(7)
    grey = np.clip(130 + 30 * np.sin(np.arange(96) / 8)[None, :] + rng.normal(0, 4, (80, 96)), 0, 255).astype(np.uint8)
    data = bytearray(mrc_bytes(grey.view(np.int8), tmp_path))
    struct.pack_into("<ii", data, 152, 1146047817, 1)  # "IMOD", flags: signed
    (item,) = mrc_items(bytes(data))
    assert item.metadata["dtype"] == "int8"
    data[156] = 0  # IMOD: unsigned
    assert mrc_items(bytes(data))[0].metadata["dtype"] == "uint8"


# --- server/limits.py: _answer_early ------------------------------------------------------------------------------

def test_an_early_answer_ends_as_soon_as_the_rest_of_the_body_is_in():
    """The rest is read until its last piece (more_body false), then the answer ends: the connection is not held
    LINGER_IDLE_SECONDS (5 s) longer by a client that sent all and waits."""
    sent, pieces = [], [{"type": "http.request", "body": b"a" * 10, "more_body": True},
                        {"type": "http.request", "body": b"a" * 10, "more_body": False}]

    async def rest():
        if pieces:
            return pieces.pop(0)
        await anyio.sleep_forever()  # a client that sent it all: nothing more comes until it hangs up

    async def send(message):
        sent.append(message)

    start = time.monotonic()
    anyio.run(server_limits._answer_early, send, 413, [], b"{}", rest)
    assert time.monotonic() - start < 2 and not pieces
    assert [m.get("status") or m.get("body") for m in sent] == [413, b"{}", b""]


# --- archive.py: _sibling -----------------------------------------------------------------------------------------

_MHD = b"ObjectType = Image\nNDims = 2\nDimSize = 8 8\nElementType = MET_UCHAR\nElementDataFile = ct.raw\n"


def test_a_header_reads_only_the_data_file_in_its_own_folder():
    """`ct.raw` beside `a/ct.mhd` is `a/ct.raw`: one of that name in another folder (or at the top) is not it."""
    got = zip_items(b.zip_bytes([("a/ct.mhd", _MHD), ("b/ct.raw", bytes(64)), ("ct.raw", bytes(64))]))
    (err,) = [i for i in got if i.origin == "a.zip:a/ct.mhd"]
    assert isinstance(err, ItemError) and "not in the same folder" in err.error, err


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_a_data_file_named_twice_in_a_zip_is_read_by_turn_as_uploads_are():
    """The k-th header of a name reads the k-th data file of the name it gives (s36: it was zipfile's last, which
    gave the first of two series the second one's voxels); the second ct.raw, no header's, is a note."""
    flat, ramp = bytes(64), bytes(range(0, 256, 4))
    got = zip_items(b.zip_bytes([("s/ct.mhd", _MHD), ("s/ct.raw", flat), ("s/ct.raw", ramp)]))
    assert summary(got)[0] == ("a.zip:s/ct.mhd", "", "ImageItem")
    assert np.asarray(got[0].image).std() == 0  # the first, flat
    assert [i.origin for i in got] == ["a.zip:s/ct.mhd", "a.zip:s/ct.raw", "a.zip:s/ct (2).raw"]


# --- pdf_attached.py ----------------------------------------------------------------------------------------------

def _attached(*filespecs: str, streams: list[bytes]) -> bytes:
    """A one-page PDF whose EmbeddedFiles name tree lists `filespecs` (objects 5…), with `streams` after them."""
    names = " ".join(f"(f{i}) {5 + i} 0 R" for i in range(len(filespecs)))
    return pdf_objects([
        f"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [{names}] >> >> >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        pdf_stream("", b""), *filespecs, *(pdf_stream("/Type /EmbeddedFile", d) for d in streams)])


def test_an_attachment_stored_under_uf_only_and_one_without_a_name_are_read():
    """The file's stream under /EF /UF (no /F) is read; a file spec naming no file gets `attachment-N`; the
    Unicode name (/UF) is the one shown, rather than /F's (an ASCII stand-in written
    for old readers)."""
    data = _attached("<< /Type /Filespec /UF (ct.jpg) /EF << /UF 8 0 R >> >>",
                     "<< /Type /Filespec /EF << /F 9 0 R >> >>",
                     "<< /Type /Filespec /F (R_ntgen.jpg) /UF <FEFF005200F6006E007400670065006E002E006A00700067> "
                     "/EF << /F 10 0 R >> >>", streams=[_jpeg(1), _jpeg(2), _jpeg(3)])
    images = [i for i in pdf_run(data) if isinstance(i, ImageItem)]
    assert [i.locator for i in images] == ["attachment ct.jpg", "attachment attachment-2", "attachment Röntgen.jpg"]


def test_attachments_stop_past_zip_max_entries_and_draw_from_one_budget():
    files = {f"{k}.jpg": _jpeg(k) for k in range(3)}
    got = pdf_run(_portfolio(**files).tobytes(), zip_max_entries=2)
    assert [i.locator for i in got if isinstance(i, ImageItem)] == ["attachment 0.jpg", "attachment 1.jpg"]
    assert [i.error for i in got if isinstance(i, ItemError) and not i.skipped] == [
        "more than 2 attached files (zip_max_entries): the rest are not opened"]
    size = len(_jpeg(0))
    got = pdf_run(_portfolio(**files).tobytes(), zip_max_bytes=2 * size + size // 2)
    assert [i.locator for i in got if isinstance(i, ImageItem)] == ["attachment 0.jpg", "attachment 1.jpg"]
    assert [i.error for i in got if isinstance(i, ItemError) and not i.skipped] == [
        f"attached files inflate past the zip_max_bytes cap of {2 * size + size // 2:,}; the rest are not opened"]


def test_a_file_attached_to_a_page_past_max_pdf_pages_is_not_read():
    import pymupdf

    doc = pymupdf.open()
    doc.new_page()
    doc.new_page().add_file_annot(pymupdf.Point(50, 50), _jpeg(3), "xray.jpg")
    assert [i.locator for i in pdf_run(doc.tobytes()) if isinstance(i, ImageItem)] == ["attachment xray.jpg"]
    assert not [i for i in pdf_run(doc.tobytes(), max_pdf_pages=1) if isinstance(i, ImageItem)]



def test_two_attachments_of_one_name_are_told_apart():
    import pymupdf

    doc = pymupdf.open()
    for k in range(2):
        doc.new_page().add_file_annot(pymupdf.Point(50, 50), _jpeg(k), "xray.jpg")
    assert [i.locator for i in pdf_run(doc.tobytes()) if isinstance(i, ImageItem)] == [
        "attachment xray.jpg", "attachment xray (2).jpg"]


@pytest.mark.timeout(60)
def test_a_name_tree_whose_kids_loop_back_is_read_once():
    data = pdf_objects([
        "<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles 5 0 R >> >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        pdf_stream("", b""),
        "<< /Kids [6 0 R] >>",
        "<< /Kids [5 0 R] /Names [(a.jpg) << /Type /Filespec /F (a.jpg) /EF << /F 7 0 R >> >>] >>",  # back up
        pdf_stream("/Type /EmbeddedFile", _jpeg(4)),
    ])
    assert [i.locator for i in pdf_run(data) if isinstance(i, ImageItem)] == ["attachment a.jpg"]


def test_an_attachment_bomb_is_never_inflated_whole_in_memory():
    """50 MB of zeros in 50 KB of Flate, under a 1 MB max_input_bytes: inflated no further than the cap."""
    data = bomb_pdf()
    tracemalloc.start()
    try:
        got = pdf_run(data, max_input_bytes=1_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert any(isinstance(i, ItemError) and "max_input_bytes" in i.error for i in got)
    assert peak < 10_000_000, peak


# --- video.py: _missing_index -------------------------------------------------------------------------------------

def test_a_whole_index_ending_the_file_is_not_missing():
    """A recording's moov box is the last box and ends exactly at the end of the file: it is whole."""
    pytest.importorskip("av")
    assert video._missing_index(io.BytesIO(recorded_clip())) is None


def test_a_recording_cut_in_a_64_bit_or_open_ended_frames_box_misses_its_index():
    """Recordings past 4 GB give the frames box (mdat) a 64-bit size (size field 1), and a recorder still
    writing leaves it 0 (to the end of the file): cut short, both are missing their index, not 'not boxes'."""
    ftyp = b"\x00\x00\x00\x10ftypisom\x00\x00\x02\x00"
    large = b"\x00\x00\x00\x01mdat" + (5 * 2**30).to_bytes(8, "big") + bytes(1000)
    open_ended = b"\x00\x00\x00\x00mdat" + bytes(1000)
    for data in (ftyp + large, ftyp + open_ended):
        assert video._missing_index(io.BytesIO(data)) == \
            "the file ends early (truncated): its index (moov box), written last, is missing"
    assert video._missing_index(io.BytesIO(ftyp + b"\x00\x00\x00\x04junk" + bytes(100))) is None  # not boxes
