"""Gaps found by mutating session 33's later changes (review s34_mut): TIFF pages read with tifffile (orientations,
damaged page chains, caps at their edge, the layouts refused and their reasons, MinIsWhite and premultiplied
pixels, float colour beside alpha, a blank page, an ICC tag of the wrong type), the shared percentile stretch,
DICOM colour, links taken on a hint and one picture at several sizes."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import tifffile
from PIL import Image
from test_tiff_s33 import GREY8, GREY16, RAMP, H, W, items, one, pages, shown, tif

from medimg.sources import ImageItem, ItemError


def patched(data: bytes, **tags: list[int]) -> bytes:
    """`data` with the first page's SHORT or LONG tags (`t262=[2]`: Photometric RGB) rewritten in place."""
    out = bytearray(data)
    page = tifffile.TiffFile(io.BytesIO(data)).pages[0]
    for code, values in tags.items():
        tag = page.tags[int(code[1:])]
        assert tag.count == len(values)
        struct.pack_into("<" + {3: "H", 4: "I"}[int(tag.dtype)] * len(values), out, tag.valueoffset, *values)
    return bytes(out)


def errors_of(got: list) -> list[tuple[str, str]]:
    return [(i.locator, i.error) for i in got if isinstance(i, ItemError)]


# --- TIFF pages read with tifffile (sources/tiff.py) -------------------------------------------------------------


def test_every_orientation_turns_a_tifffile_page_as_pillow_turns_its_own():
    """The Orientation tag's eight values, not only the turns (3, 6, 8): the mirrored ones (2, 4, 5, 7) too."""
    arr = np.zeros((20, 40), np.float32)
    arr[:5, :5], arr[:3, -2:] = 1, 0.5  # a corner block and a mark, so every mirror and turn differs
    for orientation in range(1, 9):
        ours = one(tif(arr.astype(np.float16), extratags=[(274, "H", 1, orientation, True)])).image
        pillows = one(tif(arr, extratags=[(274, "H", 1, orientation, True)])).image
        assert ours.size == pillows.size and np.array_equal(np.asarray(ours), np.asarray(pillows)), orientation


def test_a_damaged_page_in_the_chain_is_an_error_and_the_pages_it_would_lead_to_are_not_read():
    """Page 2's IFD says 65535 tags: page 1 is read, page 2 is an error naming the page, and the chain ends there
    (page 3's place is in the damaged IFD)."""
    data = bytearray(pages(*[(RAMP + k).astype(np.float16) for k in range(3)]))
    at = tifffile.TiffFile(io.BytesIO(bytes(data))).pages[1].offset
    struct.pack_into("<H", data, at, 0xFFFF)
    got = items(bytes(data))
    assert [i.locator for i in got] == ["page 1", "page 2"], got
    assert isinstance(got[0], ImageItem)
    assert isinstance(got[1], ItemError) and "suspicious number of tags 65535" in got[1].error


def test_a_page_at_the_pixel_cap_with_a_tile_at_the_cap_and_4_bytes_a_pixel_is_read():
    """The caps are limits, not bounds: 16×16 pixels of 16-bit grey and alpha (4 bytes each) in one 16×16 tile,
    under max_pixels 256, is read."""
    arr = np.stack([GREY16[:16, :16], np.full((16, 16), 65535, np.uint16)], -1)
    item = one(tif(arr, photometric="minisblack", extrasamples=[2], tile=(16, 16)), max_pixels=256)
    assert isinstance(item, ImageItem) and item.image.size == (16, 16), item
    assert isinstance(one(tif(arr, photometric="minisblack", extrasamples=[2], tile=(16, 16)), max_pixels=255),
                      ItemError)


@pytest.mark.parametrize("compression", ["packbits", "lzma", "zstd", "zlib", "lzw", "deflate"])
def test_every_compression_decoded_into_a_tile_sized_buffer_is_read(compression):
    item = one(tif(RAMP.astype(np.float16), compression=compression))
    assert isinstance(item, ImageItem) and item.image.mode == "F", item
    assert np.array_equal(np.asarray(item.image), RAMP.astype(np.float32))


# (layout, bytes, the error): each said why, from the header, before anything is decoded
REFUSED = [
    ("float 8-bit: no dtype", lambda: patched(tif(GREY8.astype(np.int8)), t339=[3]),
     "TIFF layout not supported: samples of SampleFormat 3, 8-bit"),
    ("RGB of 2 samples", lambda: patched(tif(np.stack([GREY8, GREY8], -1), photometric="minisblack",
                                             extrasamples=[0]), t262=[2]),
     "TIFF layout not supported: RGB with 2 sample(s)"),
    ("a volume", lambda: tif(np.stack([RAMP.astype(np.float16)] * 16), volumetric=True, tile=(16, 16, 16)),
     "TIFF layout not supported: pages of axes ZYX (a volume)"),
    ("no rows", lambda: patched(tif(RAMP.astype(np.float16)), t257=[0]), "image has no pixels (64×0)"),
]


@pytest.mark.parametrize("layout, build, error", REFUSED, ids=[layout for layout, _, _ in REFUSED])
def test_a_layout_tifffile_does_not_decode_here_says_why(layout, build, error):
    assert errors_of(items(build())) == [("", error)]


def test_associated_alpha_is_divided_back_out_and_unassociated_is_not():
    """16-bit grey whose alpha grows down the rows: stored premultiplied (ExtraSamples 1) or not (2), the same
    picture is shown. The binary alpha of the other tests hides which one is divided."""
    alpha = np.repeat(np.linspace(16384, 65535, H), W).reshape(H, W).astype(np.uint16)
    premultiplied = np.round(GREY16 * (alpha / 65535)).astype(np.uint16)
    straight = shown(one(tif(np.stack([GREY16, alpha], -1), photometric="minisblack", extrasamples=[2])))
    associated = shown(one(tif(np.stack([premultiplied, alpha], -1), photometric="minisblack", extrasamples=[1])))
    assert np.abs(straight.astype(int) - associated).max() <= 3
    assert straight[-1, 0, 0] <= 2 and straight[-1, -1, 0] >= 253  # the opaque row: the ramp's ends


def test_signed_8bit_min_is_white_grey_is_inverted_without_wrapping():
    """-128, the lowest signed value, is white under MinIsWhite: -(-128) wraps to -128 in 8 bits, -1 - p does not."""
    arr = np.tile(np.arange(-128, 128, 4, dtype=np.int8), (4, 1))
    item = one(tif(arr, photometric="miniswhite"))
    values = np.asarray(item.image)[0]
    assert values.tolist() == (-1 - arr[0].astype(int)).tolist()
    row = shown(item)[0, :, 0].astype(int)
    assert row[0] == 255 and (np.diff(row) <= 0).all()


def test_10bit_min_is_white_grey_is_inverted_within_its_own_range():
    """A 10-bit MinIsWhite ramp over its whole range: each value v is 1023 - v (Pillow cannot read 10 bits)."""
    arr = np.tile(np.arange(0, 1024, 16, dtype=np.uint16), (4, 1))
    item = one(tif(arr, photometric="miniswhite", bitspersample=10))
    assert item.image.mode == "I;16"
    assert np.asarray(item.image)[0].tolist() == (1023 - arr[0]).tolist()


def test_float_rgb_beside_alpha_is_stretched_over_its_opaque_pixels_only():
    """The transparent quarter holds 1e6 (no picture there): the opaque ramp still spans black to white."""
    rgb = np.stack([RAMP] * 3, -1).astype(np.float32)
    rgb[:, :16] = 1e6
    alpha = (RAMP >= 16).astype(np.float32)
    got = shown(one(tif(np.dstack([rgb, alpha]), photometric="rgb", extrasamples=[2])))[0, :, 0]
    assert (got[:16] == 255).all() and got[16] <= 2 and got[-1] >= 253


def test_a_blank_16bit_page_beside_alpha_keeps_its_grey_level():
    """All opaque pixels 32768: no spread to stretch, so the type's range (0–65535) decides: mid grey, not white."""
    arr = np.stack([np.full((H, W), 32768, np.uint16), np.full((H, W), 65535, np.uint16)], -1)
    got = shown(one(tif(arr, photometric="minisblack", extrasamples=[2])))
    assert np.abs(got.astype(int) - 127).max() <= 1


def test_an_icc_tag_of_the_wrong_type_leaves_the_page_as_stored():
    """InterColorProfile written as LONGs (not bytes): no profile, the page still read (it was a decode error)."""
    arr = RAMP.astype(np.float16)
    item = one(tif(arr, extratags=[(34675, "I", 4, (1, 2, 3, 70000), True)]))
    assert isinstance(item, ImageItem), item
    assert np.array_equal(np.asarray(item.image), RAMP.astype(np.float32))


def test_8bit_min_is_white_grey_beside_alpha_keeps_its_levels():
    """8-bit grey (MinIsWhite with alpha, which Pillow cannot read) is shown as stored, inverted: not stretched
    as 16-bit grey is."""
    grey = (40 + RAMP * 2).astype(np.uint8)
    item = one(tif(np.stack([grey, np.full((H, W), 255, np.uint8)], -1), photometric="miniswhite",
                   extrasamples=[2]))
    assert item.image.mode == "LA" and np.array_equal(np.asarray(item.image)[..., 0], 255 - grey)


def test_signed_16bit_rgb_is_stretched_low_to_high():
    """int16 RGB (Pillow cannot read it): the lowest values black, the highest white, in order. Since session 44
    stretched by its percentiles, as float RGB is (read from -32768, a real picture's values were flat grey)."""
    values = np.tile(np.linspace(-32768, 32767, W).astype(np.int16), (H, 1))
    item = one(tif(np.stack([values] * 3, -1), photometric="rgb"))
    row = np.asarray(item.image)[0, :, 1].astype(int)
    assert row[0] == 0 and row[-1] == 255 and (np.diff(row) >= 0).all()


def test_4bit_rgb_is_spread_over_0_to_255():
    item = one(tif(np.stack([RAMP // 4] * 3, -1).astype(np.uint8), photometric="rgb", bitspersample=4))
    assert item.metadata.get("dtype") == "uint8"  # read by tifffile
    assert np.asarray(item.image)[0, :, 0].tolist() == (RAMP[0] // 4 * 17).tolist()


def test_a_signed_16bit_alpha_at_its_top_is_opaque():
    """int16 grey with int16 alpha: 32767, the largest, is opaque (its 15 value bits are the range)."""
    arr = np.stack([(RAMP * 100 - 3000), np.full((H, W), 32767)], -1).astype(np.int16)
    item = one(tif(arr, photometric="minisblack", extrasamples=[2]))
    assert item.image.mode == "LA" and (np.asarray(item.image)[..., 1] == 255).all()


def ycbcr_tiff(rgb: np.ndarray, coefficients, ref) -> bytes:
    """`rgb` stored as YCbCr by the given YCbCrCoefficients and ReferenceBlackWhite (TIFF 6.0, section 21)."""
    kr, kg, kb = coefficients
    r, g, b = (rgb[..., k].astype(np.float64) for k in range(3))
    y = kr * r + kg * g + kb * b
    cb, cr = (b - y) / (2 - 2 * kb), (r - y) / (2 - 2 * kr)
    scale = [(ref[1] - ref[0]) / 255, (ref[3] - ref[2]) / 127, (ref[5] - ref[4]) / 127]
    planes = [y * scale[0] + ref[0], cb * scale[1] + ref[2], cr * scale[2] + ref[4]]
    ycc = np.clip(np.round(np.stack(planes, -1)), 0, 255).astype(np.uint8)

    def rationals(values):
        return [int(round(v * 10000)) if k == 0 else 10000 for v in values for k in (0, 1)]

    return tif(ycc, photometric="ycbcr", subsampling=(1, 1),
               extratags=[(529, "2I", 3, rationals(coefficients), True), (532, "2I", 6, rationals(ref), True)])


def test_ycbcr_is_decoded_by_its_own_coefficients_and_reference_black_and_white():
    """BT.709 coefficients and studio range (16–235, 128 ± 112) written in the file: the RGB they encode."""
    rgb = np.random.default_rng(2).integers(0, 256, (H, W, 3), dtype=np.uint8)
    item = one(ycbcr_tiff(rgb, (0.2126, 0.7152, 0.0722), (16, 235, 128, 240, 128, 240)))
    assert item.image.mode == "RGB"
    assert np.abs(np.asarray(item.image).astype(int) - rgb).max() <= 4


# --- the percentile stretch (levels.py) ------------------------------------------------------------------------


def test_nan_and_infinities_in_float_grey_are_the_ends_not_the_scale():
    """One NaN, +inf and -inf in a float ramp: NaN black, +inf white, -inf black, the ramp still black to white."""
    from medimg.model.preprocess import to_rgb

    arr = RAMP.astype(np.float32) * 10
    arr[0, :3] = np.nan, np.inf, -np.inf
    got = np.asarray(to_rgb(Image.fromarray(arr)))[..., 0]
    assert got[0, :3].tolist() == [0, 255, 0]
    assert got[1, 0] == 0 and got[1, -1] == 255


def test_float_rgb_with_a_nan_is_still_stretched_by_its_finite_samples():
    rgb = np.stack([RAMP] * 3, -1).astype(np.float32)
    rgb[5, 5] = np.nan
    got = np.asarray(one(tif(rgb, photometric="rgb")).image)[0, :, 0]
    assert got[0] == 0 and got[-1] == 255 and (np.diff(got.astype(int)) >= 0).all()


def test_the_percentiles_of_several_planes_come_from_at_most_sample_values(monkeypatch):
    """Three planes stretched together: the grid is thinned for all of them, not for one."""
    from medimg import levels

    sizes = []
    real = np.percentile
    monkeypatch.setattr(levels, "SAMPLE", 1000)
    monkeypatch.setattr(np, "percentile", lambda a, *args, **kw: sizes.append(a.size) or real(a, *args, **kw))
    planes = [np.random.default_rng(k).random((64, 64)).astype(np.float32) for k in range(3)]
    out = levels.stretch_levels(planes, (0.0, 1.0))
    assert sizes and max(sizes) <= 1000 and [o.shape for o in out] == [(64, 64)] * 3


# --- files.py ----------------------------------------------------------------------------------------------------


def test_a_grey_png_with_alpha_gets_its_gama_applied_and_keeps_its_alpha():
    """LA, as L and RGBA are: gamma 1.0 (linear) stored numbers shown in sRGB, alpha as stored."""
    import zlib

    from medimg.sources import Blob, Context, Limits, files

    grey = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (8, 1))
    alpha = np.full(grey.shape, 200, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.dstack([grey, alpha]), "LA").save(buf, "PNG")
    png = buf.getvalue()
    at = png.index(b"IDAT") - 4
    chunk = b"gAMA" + struct.pack(">I", 100000)
    data = png[:at] + struct.pack(">I", 4) + chunk + struct.pack(">I", zlib.crc32(chunk)) + png[at:]
    (item,) = files.open_image(Blob("x.png", data), Context(Limits()))
    linear = grey / 255
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)
    got = np.asarray(item.image)
    assert item.image.mode == "LA" and (got[..., 1] == 200).all()
    assert np.abs(got[..., 0].astype(int) - np.round(255 * srgb)).max() <= 1


# --- DICOM colour (dicom.py) -------------------------------------------------------------------------------------


def test_a_slide_s_first_optical_path_with_a_profile_gives_it_even_when_a_later_one_has_none():
    """Two optical paths, the first with the scanner's profile, the second (a fluorescence channel, say) without:
    the first one's profile is applied, as for one path."""
    import builders as b
    import pydicom
    from test_dicom_colour_s33 import _slide, image, in_srgb

    wide = b.wide_gamut_icc()
    ds = pydicom.dcmread(io.BytesIO(_slide(wide)))
    other = pydicom.Dataset()
    other.OpticalPathIdentifier = "2"
    ds.OpticalPathSequence = [ds.OpticalPathSequence[0], other]
    plain = image(_slide(None)).astype(np.uint8)
    assert np.abs(image(b.dicom_bytes(ds)) - in_srgb(plain, wide)).max() <= 1


def test_a_palette_with_an_alpha_table_is_shown_in_its_colours():
    """An Enhanced Palette's Alpha Palette Color LUT (0028,1204) gives pydicom four channels: the colours are the
    first three (an RGBA array as RGB was an error)."""
    import builders as b
    import pydicom
    from test_dicom_colour_s33 import image, palette_dicom

    idx = (np.arange(96 * 64).reshape(64, 96) % 256).astype(np.uint8)
    lut = np.stack([np.arange(256), 255 - np.arange(256), np.arange(256) * 7 % 256], -1).astype(np.uint16)
    ds = pydicom.dcmread(io.BytesIO(palette_dicom(idx, lut * 257, 16, "<u2")))
    ds.AlphaPaletteColorLookupTableData = np.full(256, 65535, "<u2").tobytes()
    ds["AlphaPaletteColorLookupTableData"].VR = "OW"
    assert np.array_equal(image(b.dicom_bytes(ds)), lut[idx])


def _supplemental(segmented: bool, alpha: bool = False) -> tuple[bytes, np.ndarray]:
    """A 12-bit CT frame with a supplemental palette over its values 3072-4095 (red rising, blue falling); the
    palette given as plain or segmented tables."""
    import builders as b
    from pydicom.uid import ExplicitVRLittleEndian

    grey = (np.arange(96 * 64).reshape(64, 96) % 4096).astype(np.uint16)
    ds = b.dicom_dataset(ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.2.1", "CT")
    ds.Rows, ds.Columns = grey.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelPresentation = 1, "MONOCHROME2", "COLOR"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = grey.tobytes()
    ramp = np.rint(np.linspace(0, 65535, 1024)).astype("<u2")
    tables = {"Red": ramp, "Green": np.zeros(1024, "<u2"), "Blue": ramp[::-1]}
    if alpha:
        tables["Alpha"] = np.full(1024, 65535, "<u2")
    for colour, values in tables.items():
        if colour != "Alpha":
            setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [1024, 3072, 16])
        if segmented:  # one discrete segment (PS3.3 C.7.9.2): opcode 0, its length, its values
            key = f"Segmented{colour}PaletteColorLookupTableData"
            setattr(ds, key, np.concatenate([[0, 1024], values]).astype("<u2").tobytes())
        else:
            key = f"{colour}PaletteColorLookupTableData"
            setattr(ds, key, values.tobytes())
        ds[key].VR = "OW"
    expected = np.rint(np.stack([ramp, np.zeros(1024), ramp[::-1]], -1) / 65535 * 255)[np.clip(grey - 3072, 0, 1023)]
    return b.dicom_bytes(ds), expected


@pytest.mark.parametrize("segmented, alpha", [(True, False), (False, True)], ids=["segmented", "with alpha"])
def test_a_supplemental_palette_segmented_or_with_alpha_colours_its_range(segmented, alpha):
    from test_dicom_colour_s33 import image

    data, expected = _supplemental(segmented, alpha)
    got = image(data)
    inside = (np.arange(96 * 64).reshape(64, 96) % 4096) >= 3072
    assert got.shape == (64, 96, 3) and np.array_equal(got[inside], expected[inside])


def test_a_palette_colour_image_saying_pixel_presentation_color_is_its_palette_s_colours():
    """PALETTE COLOR with Pixel Presentation COLOR (as enhanced objects say): the palette is the image's own, not
    a supplemental one over grey (the RGB frame was taken for grey)."""
    import builders as b
    import pydicom
    from test_dicom_colour_s33 import image, palette_dicom

    idx = (np.arange(96 * 64).reshape(64, 96) % 256).astype(np.uint8)
    lut = np.stack([np.arange(256), 255 - np.arange(256), np.arange(256) * 7 % 256], -1).astype(np.uint16)
    ds = pydicom.dcmread(io.BytesIO(palette_dicom(idx, lut * 257, 16, "<u2")))
    ds.PixelPresentation = "COLOR"
    assert np.array_equal(image(b.dicom_bytes(ds)), lut[idx])


# --- links taken on a hint (web.py) ------------------------------------------------------------------------------


def taken(html: str, page: str = "http://h/x/") -> dict[str, bool]:
    from medimg.sources import web

    return {c.url.removeprefix("http://h/"): c.guess for c in web.extract(html, page)}


def test_download_words_count_in_any_case():
    """`?Download=1`, `/files/12/Download`: a server's words are matched as written, in any case."""
    page = '<a href="/file.php?ID=3&Download=1">a</a> <a href="/files/12/Download">b</a> <a href="/about">c</a>'
    assert taken(page) == {"file.php?ID=3&Download=1": True, "files/12/Download": True}


def test_a_listing_known_by_its_heading_alone_gives_its_untyped_files():
    """A listing whose title is the site's own but whose <h1> says "Index of /scans/": its IM000003 is a file."""
    page = ("<html><head><title>Hospital file server</title></head><body><h1>Index of /scans/</h1>"
            '<a href="IM000003">IM000003</a></body></html>')
    assert taken(page, "http://h/scans/") == {"scans/IM000003": True}
    assert taken(page.replace("<h1>Index of /scans/</h1>", ""), "http://h/scans/") == {}


def test_python_s_directory_listing_gives_its_untyped_files():
    """`python -m http.server`'s "Directory listing for /scans/" is a listing as Apache's "Index of" is."""
    page = ("<html><head><title>Directory listing for /scans/</title></head><body><ul>"
            '<li><a href="IM000003">IM000003</a></li></ul></body></html>')
    assert taken(page, "http://h/scans/") == {"scans/IM000003": True}


@pytest.fixture
def srv():
    from webserver import WebServer

    with WebServer() as server:
        yield server


@pytest.mark.parametrize("ctype, kind", [("application/x-zip-compressed", "zip"), ("message/rfc822", "e-mail"),
                                         ("application/vnd.ms-outlook", "Outlook"),
                                         ("application/x-7z-compressed", "7z"), ("application/x-tar", "tar")])
def test_archives_and_messages_behind_a_download_link_are_refused_by_their_type(srv, ctype, kind):
    """Windows' zip type, an e-mail, an Outlook message, 7z and tar: given up from the headers, before 200 MB."""
    from test_web_duplicates import images, notes, run

    big = 200 * 2**20
    srv.huge("/download/3", big, declare_length=True, content_type=ctype)
    items = run(srv.add("/p.html", '<html><body><a href="/download/3">the data</a></body></html>'))
    assert images(items) == []
    assert notes(items) == [(f"a #1 {srv.url('/download/3')}", f"a link to a {kind} file (3: {ctype}, {big} bytes), "
                                                               "not an image: not read (give its URL to read it)")]
    assert srv.sent["/download/3"] < 8 * 2**20, srv.sent


def test_a_video_sent_as_octet_stream_behind_a_download_link_is_a_note(srv):
    from test_web_duplicates import images, notes, run
    from test_web_links_s33 import errors

    clip = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(200)
    srv.add("/dl/9", clip)  # application/octet-stream, no name
    items = run(srv.add("/p.html", '<html><body><a href="/dl/9">the cine loop</a></body></html>'))
    assert images(items) == [] and errors(items) == []
    assert notes(items) == [(f"a #1 {srv.url('/dl/9')}", f"a link to a video file (9: application/octet-stream, "
                                                         f"{len(clip)} bytes), not an image: not read (give its URL "
                                                         "to read it)")]


def test_an_img_whose_address_gives_text_is_an_error_not_a_note(srv):
    """Only a link taken on a hint is a note when it gives no image; an <img> that gives text lost a picture."""
    from test_web_duplicates import run
    from test_web_links_s33 import errors

    srv.add("/a.png", b"hello", "text/plain")
    items = run(srv.add("/p.html", '<html><body><img src="/a.png"></body></html>'))
    assert errors(items) == [(f"img #1 {srv.url('/a.png')}", "not an image: got text/plain (5 bytes)")]


def test_a_server_program_named_in_capitals_is_a_download_endpoint():
    """IIS sites write `Download.ASPX?id=3`: the program's type is matched in any case."""
    assert taken('<a href="/Download.ASPX?id=3">scan</a> <a href="/GetFile.PHP?f=2">x</a>') == {
        "Download.ASPX?id=3": True, "GetFile.PHP?f=2": True}


def test_a_download_named_in_capitals_is_refused_by_its_type_in_any_case(srv):
    from test_web_duplicates import notes, run

    data = b"PK\x03\x04" + bytes(100)
    srv.add("/download/4", data, "application/octet-stream",
            headers={"Content-Disposition": 'attachment; filename="SCANS.ZIP"'})
    items = run(srv.add("/p.html", '<html><body><a href="/download/4">the data</a></body></html>'))
    assert notes(items) == [(f"a #1 {srv.url('/download/4')}", f"a link to a zip file (SCANS.ZIP: application/"
                                                               f"octet-stream, {len(data)} bytes), not an image: not "
                                                               "read (give its URL to read it)")]


def test_one_link_past_the_cap_is_named_in_the_singular():
    from medimg.sources import web

    (note,) = web.guesses_note("p", 1)
    assert note.error.startswith("1 more link that may lead to files")
    (note,) = web.guesses_note("p", 2)
    assert note.error.startswith("2 more links that may lead to files")


# --- one picture at several sizes (web.py) -----------------------------------------------------------------------


SECOND = [("twitter:image", '<meta name="twitter:image" content="/share.jpg">'),
          ("style", '<div style="background-image:url(/share.jpg)"></div>'),
          ("background", '<body background="/share.jpg"></body>'),
          ("css", '<link rel="stylesheet" href="/s.css">')]


@pytest.mark.parametrize("tag, markup", SECOND, ids=[tag for tag, _ in SECOND])
def test_a_twitter_image_or_a_background_is_a_second_reference_to_the_picture_shown(srv, tag, markup):
    """A picture shown by an <img> and named again at another size by a twitter:image, an inline style, a
    background attribute or a stylesheet: one image and a note."""
    import test_web_sizes as sizes

    picture_ = sizes.scene(23)
    srv.add("/share.jpg", sizes.encode(picture_), "image/jpeg")
    srv.add("/shown.webp", sizes.encode(picture_, "WEBP", size=(800, 450)), "image/webp")
    srv.add("/s.css", "body { background: url(/share.jpg) }", "text/css")
    items = sizes.run(srv.add("/page.html", f'<html><head></head>{markup}<img src="/shown.webp"></html>'))
    got, notes = sizes.images(items), sizes.notes(items)
    assert len(got) == 1 and len(notes) == 1, (got, notes)
    assert "same picture as" in notes[0][1] and "(another size: " in notes[0][1]
    assert tag in got[0] or tag in notes[0][0], (got, notes)


def test_a_16_bit_picture_read_first_leaves_later_pictures_to_their_prints(srv):
    """A 16-bit picture has no print: a later og:image and <img> of one 8-bit picture are still one image."""
    import test_web_sizes as sizes
    from test_mut_s33 import twelve_bit_slice

    picture_ = sizes.scene(24)
    srv.add("/ct.png", twelve_bit_slice(1), "image/png")
    srv.add("/og.jpg", sizes.encode(picture_), "image/jpeg")
    srv.add("/shown.jpg", sizes.encode(picture_, size=(800, 450)), "image/jpeg")
    u = srv.url
    items = sizes.run(srv.add("/page.html", '<img src="/ct.png"><meta property="og:image" content="/og.jpg">'
                                            '<img src="/shown.jpg">'))
    assert len(sizes.images(items)) == 2 and len(sizes.notes(items)) == 1, items
    assert u("/ct.png") in sizes.images(items)[0]


def test_the_sizes_a_note_names_are_the_stored_ones_when_jpegs_decode_smaller(srv):
    """With decode_side (as classify sets it), JPEGs decode at 1/2 scale: the note still names their stored sizes."""
    import test_web_sizes as sizes

    picture_ = sizes.scene(25)
    srv.add("/og.jpg", sizes.encode(picture_), "image/jpeg")
    srv.add("/shown.jpg", sizes.encode(picture_, size=(800, 450)), "image/jpeg")
    u = srv.url
    items = sizes.run(srv.add("/page.html", '<meta property="og:image" content="/og.jpg"><img src="/shown.jpg">'),
                      decode_side=224)
    assert [i.image.size for i in items if isinstance(i, ImageItem)] == [(600, 338)]  # decoded at 1/2
    assert sizes.notes(items) == [(f"img #2 {u('/shown.jpg')}", "same picture as og:image #1 (another size: "
                                                                "800x450, not 1200x675)")]


def test_a_second_reference_names_the_closest_of_the_pictures_it_matches(srv):
    """Two <img>s of nearly one picture (0.7 grey levels apart: two images, as two <img>s always are), then a
    background of the first at another size: its note names the first, the closer, not the last that matched."""
    import test_web_sizes as sizes

    a = np.asarray(sizes.scene(26).convert("L"), dtype=np.int16)
    b = a + (np.random.default_rng(3).random(a.shape) < 0.7)
    first, second = (Image.fromarray(np.clip(v, 0, 255).astype(np.uint8)) for v in (a, b))
    srv.add("/one.png", sizes.encode(first, "PNG"), "image/png")
    srv.add("/two.png", sizes.encode(second, "PNG"), "image/png")
    srv.add("/bg.png", sizes.encode(first, "PNG", size=(800, 450)), "image/png")
    u = srv.url
    items = sizes.run(srv.add("/page.html", '<img src="/one.png"><img src="/two.png">'
                                            '<div style="background-image:url(/bg.png)"></div>'))
    assert sizes.images(items) == [f"img #1 {u('/one.png')}", f"img #2 {u('/two.png')}"]
    assert sizes.notes(items) == [(f"style #3 {u('/bg.png')}", "same picture as img #1 (another size: 800x450, "
                                                               "not 1200x675)")]
