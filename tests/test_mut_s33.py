"""Gaps found by mutating session 33's changes (review s33_mut): which links are taken on a hint (an IIS listing, a
listing's program links, words and keys inside other words, data: links), what a hinted link's headers and bytes
refuse (an archive sent as octet-stream, a sound, a DICOM UID as the file's name), the name a server gives a
download, and the count of links past the cap on a saved page."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import test_web_sizes as sizes
from builders import dicom_file
from PIL import Image
from test_openapi_s33 import classifier, client  # noqa: F401  (fixtures)
from test_web_duplicates import images, notes, picture, run
from test_web_links_s33 import errors
from webserver import WebServer

from medimg.sources import ImageItem, Limits, open_input, web


@pytest.fixture
def srv():
    with WebServer() as server:
        yield server


def taken(html: str, page: str = "http://h/x/") -> dict[str, bool]:
    return {c.url.removeprefix("http://h/"): c.guess for c in web.extract(html, page)}


# --- which links are taken on a hint ----------------------------------------------------------------------------


def test_an_iis_listing_is_a_listing_by_its_parent_directory_link():
    """IIS titles its listing with the host ("pacs.example.org - /study1/") and starts it with "[To Parent
    Directory]": its files without a type are read as a listing's, as Apache's and nginx's are."""
    iis = ('<html><head><title>pacs.example.org - /x/</title></head><body><H1>pacs.example.org - /x/</H1><hr>'
           '<pre><A HREF="/">[To Parent Directory]</A><br><br> 5/5/2026 10:01 AM 174752 <A HREF="/x/IM1">IM1</A>'
           '<br> 5/5/2026 10:01 AM 174752 <A HREF="/x/IM2">IM2</A><br></pre><hr></body></html>')
    assert taken(iis) == {"x/IM1": True, "x/IM2": True}
    plain = iis.replace("[To Parent Directory]", "Home")  # the same page without it: a site's links
    assert taken(plain) == {}


def test_a_listing_s_links_with_a_query_are_not_its_files():
    """A listing's file is a path in its folder: a link there with a query is a program's (a viewer, a sort)."""
    listing = ('<html><head><title>Index of /x/</title></head><body><a href="IM1">IM1</a> '
               '<a href="viewer?study=1">view</a> <a href="IM2?raw">IM2 raw</a></body></html>')
    assert taken(listing) == {"x/IM1": True}


def test_download_words_and_file_keys_count_only_as_words():
    """`dl` inside `handler`, `bundles` or `middle`, `file=` inside `profile=`: no hint that a link is a file."""
    links = ["handler.ashx?id=4", "bundles/7", "middle", "member.php?u=2&profile=full", "x.php?mode=dl",
             "y.php?a=1;file=scan1", "a/dl/5"]
    page = "".join(f'<a href="{link}">{link}</a>' for link in links)
    assert taken(page, "http://h/") == {"x.php?mode=dl": True, "y.php?a=1;file=scan1": True, "a/dl/5": True}


def test_a_data_uri_link_is_never_taken_on_a_hint():
    """`<a download href="data:…">` (a chart's "save" button) holds its bytes in the page: it is no file the link
    leads to, neither alone nor as a thumbnail's full image."""
    uri = "data:application/octet-stream;base64,iVBORw0KGgo"
    page = f'<a download href="{uri}">save</a> <a download href="{uri}A"><img src="t.png"></a>'
    assert taken(page, "http://h/") == {"t.png": False}
    (thumb,) = web.extract(page, "http://h/")
    assert thumb.full is None


# --- what a hinted link's headers and bytes refuse ------------------------------------------------------------


def test_an_archive_sent_as_octet_stream_behind_a_download_link_is_a_note(srv):
    """Headers that say nothing (application/octet-stream, no name): the bytes are a zip, a file of its own, not
    a picture of the page; its images are not read as the page's."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("scan.png", picture((1, 2, 3), size=(200, 150)))
    data = srv.add("/dl/9", buf.getvalue()) and buf.getvalue()  # application/octet-stream
    items = run(srv.add("/p.html", '<html><body><a href="/dl/9">dataset</a></body></html>'))
    assert images(items) == [] and errors(items) == []
    ((locator, note),) = notes(items)
    assert locator == f"a #1 {srv.url('/dl/9')}"
    assert note == (f"a link to a zip file (9: application/octet-stream, {len(data)} bytes), not an image: not read "
                    "(give its URL to read it)")


def test_a_sound_behind_a_download_link_is_refused_by_its_headers(srv):
    """An audio/* answer is no picture: given up before its body is read, as a video's is."""
    big = 200 * 2**20
    srv.huge("/download/3", big, declare_length=True, content_type="audio/mpeg")
    items = run(srv.add("/p.html", '<html><body><a href="/download/3">the recording</a></body></html>'))
    assert images(items) == []
    assert notes(items) == [(f"a #1 {srv.url('/download/3')}", f"a link to a audio file (3: audio/mpeg, {big} "
                                                               "bytes), not an image: not read")]
    assert srv.sent["/download/3"] < 8 * 2**20, srv.sent


def test_a_dicom_uid_as_the_download_s_name_is_no_type(srv):
    """A PACS's download endpoint names the file by its SOP Instance UID (`1.2.840.113619.2.55.3.604688`): its
    last numbers are no type to refuse it by, as a listing's UID-named link is none either."""
    srv.add("/wado?id=3", dicom_file("CT_small.dcm").read_bytes(), "application/octet-stream",
            headers={"Content-Disposition": 'attachment; filename="1.2.840.113619.2.55.3.604688"'})
    items = run(srv.add("/p.html", '<html><body><a href="/wado?id=3" download>instance</a></body></html>'))
    assert images(items) == [srv.url("/wado?id=3")], items
    assert [i.format for i in items if isinstance(i, ImageItem)] == ["DICOM"]


def test_the_name_the_server_gives_a_download_chooses_its_reader(srv, tmp_path):
    """`attachment.php?id=3` sending `case.svs` (a tiled TIFF without Aperio's description): the slide reader
    takes it by that name, as it would the file saved under it."""
    from test_slide import write_slide

    data = write_slide(tmp_path / "case.svs", mpp=None, size=(1024, 768)).read_bytes()
    srv.add("/forum/attachment.php?id=3", data, "application/octet-stream",
            headers={"Content-Disposition": 'attachment; filename="case.svs"'})
    items = run(srv.add("/forum/t.html", '<html><body><a href="attachment.php?id=3">slide</a></body></html>'),
                max_download_bytes=len(data) + 1)
    assert images(items) == [srv.url("/forum/attachment.php?id=3")], items
    assert [i.format for i in items if isinstance(i, ImageItem)][0].startswith("WSI")


# --- a saved page -------------------------------------------------------------------------------------------------


def test_a_saved_page_s_links_beside_it_are_not_counted_as_links_past_the_cap(tmp_path):
    """A saved listing with more untyped files than MAX_GUESSES and a picture of its own: the files beside it are
    one note; none of them is counted again as a web link past the cap."""
    (tmp_path / "logo.png").write_bytes(picture((30, 90, 150), size=(200, 150)))
    many = "".join(f'<a href="IM{n}">IM{n}</a>' for n in range(web.MAX_GUESSES + 5))
    page = tmp_path / "index.html"
    page.write_text(f'<html><head><title>Index of /s/</title></head><body><img src="logo.png">{many}</body></html>')
    items = list(open_input(str(page), Limits()))
    assert [i.origin for i in items if isinstance(i, ImageItem)] == [str(page)]
    assert [e for _, e in notes(items)] == [f"{web.MAX_GUESSES + 5} links to files beside the page without an "
                                            "image's name not read: give their folder to read them"]


# --- one picture at several sizes ---------------------------------------------------------------------------------


def vignetted(seed: int) -> Image.Image:
    """Dim cells under a microscope's vignetting (a bright centre, dark corners): a spread of about 7.5 grey levels
    at 16×16, of which the cells, different in each field, are under one level."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:480, 0:640]
    img = 30 - 18 * (((x - 320) / 320) ** 2 + ((y - 240) / 240) ** 2)
    for _ in range(25):
        cx, cy = rng.uniform(0, 640), rng.uniform(0, 480)
        img = img + 20 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 60)
    return Image.fromarray(np.clip(img + rng.normal(0, 1, img.shape), 0, 255).astype(np.uint8))


def test_two_fields_alike_within_a_grey_level_but_not_within_their_spread_stay_two(srv):
    """Two fields of different cells under the same vignetting: 0.6 grey levels apart at 16×16, under SAME_PICTURE,
    but 8 % of their spread (SAME_SPREAD is 4 %): two pictures. The first field's own thumbnail (0.1 apart) is its
    picture again."""
    srv.add("/field1.png", sizes.encode(vignetted(1), "PNG"), "image/png")
    srv.add("/field2.jpg", sizes.encode(vignetted(2), size=(320, 240)), "image/jpeg")
    srv.add("/field1-small.jpg", sizes.encode(vignetted(1), size=(320, 240)), "image/jpeg")
    u = srv.url
    items = sizes.run(srv.add("/page.html", '<meta property="og:image" content="/field1.png"><img src="/field2.jpg">'
                                            '<img src="/field1-small.jpg">'))
    assert sizes.images(items) == [f"og:image #1 {u('/field1.png')}", f"img #2 {u('/field2.jpg')}"]
    assert sizes.notes(items) == [(f"img #3 {u('/field1-small.jpg')}", "same picture as og:image #1 (another size: "
                                                                       "320x240, not 640x480)")]


def test_a_link_rel_image_src_is_a_second_reference_to_the_picture_shown(srv):
    """`<link rel="image_src">` names a page's picture for sharing, as og:image does: the <img> showing it at
    another size is a note, not a second image."""
    picture_ = sizes.scene(21)
    srv.add("/share.jpg", sizes.encode(picture_), "image/jpeg")
    srv.add("/shown.webp", sizes.encode(picture_, "WEBP", size=(800, 450)), "image/webp")
    u = srv.url
    items = sizes.run(srv.add("/page.html", '<html><head><link rel="image_src" href="/share.jpg"></head>'
                                            '<body><img src="/shown.webp"></body></html>'))
    assert sizes.images(items) == [f"link #1 {u('/share.jpg')}"]
    assert sizes.notes(items) == [(f"img #2 {u('/shown.webp')}", "same picture as link #1 (another size: 800x450, "
                                                                 "not 1200x675)")]


def test_a_thumbnail_whose_full_image_was_another_size_of_a_picture_read_is_not_fetched(srv):
    """An og:image, then a thumbnail linking to its full image, all one picture: the full image is a note naming
    the og:image, and the thumbnail one naming its full image, never downloaded (it waited for that link)."""
    picture_ = sizes.scene(22)
    srv.add("/og.jpg", sizes.encode(picture_), "image/jpeg")
    srv.add("/full.png", sizes.encode(picture_, "PNG", size=(800, 450)), "image/png")
    srv.add("/thumb.jpg", sizes.encode(picture_, size=(240, 135)), "image/jpeg")
    u = srv.url
    items = sizes.run(srv.add("/page.html", '<meta property="og:image" content="/og.jpg">'
                                            '<a href="/full.png"><img src="/thumb.jpg"></a>'))
    assert sizes.images(items) == [f"og:image #1 {u('/og.jpg')}"]
    assert sorted(sizes.notes(items)) == [
        (f"a #3 {u('/full.png')}", "same picture as og:image #1 (another size: 800x450, not 1200x675)"),
        (f"img #2 {u('/thumb.jpg')}", "thumbnail of a #3")]
    assert srv.hits["/thumb.jpg"] == 0


def twelve_bit_slice(seed: int) -> bytes:
    """A CT-like slice exported as a 16-bit PNG of 12-bit values: air 0, a body of 700-1300 with its own texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:256, 0:256] / 256 - 0.5
    body = (x / 0.42) ** 2 + (y / 0.32) ** 2 < 1
    values = (1000 + 300 * np.sin(rng.uniform(5, 30) * x + rng.uniform(0, 6)) * np.cos(rng.uniform(5, 30) * y)) * body
    buf = io.BytesIO()
    Image.fromarray(values.astype(np.uint16)).save(buf, "PNG")
    return buf.getvalue()


def test_two_16_bit_pictures_are_never_one_picture_by_a_grey_print(srv):
    """A 16-bit picture has no 8-bit grey print: cut to 8 bits, two slices of one body are the same white outline.
    An og:image of one slice and an <img> of another stay two images."""
    srv.add("/s1.png", twelve_bit_slice(1), "image/png")
    srv.add("/s2.png", twelve_bit_slice(2), "image/png")
    u = srv.url
    items = sizes.run(srv.add("/page.html", '<meta property="og:image" content="/s1.png"><img src="/s2.png">'))
    assert sizes.images(items) == [f"og:image #1 {u('/s1.png')}", f"img #2 {u('/s2.png')}"], items
    assert [i.image.mode for i in items if isinstance(i, ImageItem)] == ["I;16", "I;16"]


# --- PNG gAMA ----------------------------------------------------------------------------------------------------


def _png_with_gamma(img: Image.Image, gamma: float, **save) -> bytes:
    import struct
    import zlib

    buf = io.BytesIO()
    img.save(buf, "PNG", **save)
    png = buf.getvalue()
    at = png.index(b"IDAT") - 4
    data = struct.pack(">I", round(gamma * 100000))
    return png[:at] + struct.pack(">I", 4) + b"gAMA" + data + struct.pack(">I", zlib.crc32(b"gAMA" + data)) + png[at:]


@pytest.mark.parametrize("mode, key", [("RGB", (120, 60, 200)), ("L", 100)])
def test_a_mid_colour_key_stays_transparent_when_gama_changes_the_colours(mode, key):
    """A colour key names stored numbers: gAMA 1.0 turns (120, 60, 200) into another colour, so the key becomes
    alpha first, or the keyed block would show (a key of 0 or 255, unchanged by any gamma, never showed it)."""
    from medimg.model.preprocess import to_rgb
    from medimg.sources import Blob, files
    from medimg.sources.base import Context

    img = Image.new(mode, (64, 48), (30, 140, 90) if mode == "RGB" else 180)
    img.paste(key, (8, 8, 32, 24))
    (item,) = files.open_image(Blob("k.png", _png_with_gamma(img, 1.0, transparency=key)), Context(Limits()))
    ours = np.asarray(to_rgb(item.image), dtype=int)
    assert (ours[8:24, 8:32] == 255).all()  # keyed: shown on white
    assert (ours[40, 50] > (30, 140, 90) if mode == "RGB" else ours[40, 50] > 180).all()  # lighter than its numbers


# --- DICOM colour ------------------------------------------------------------------------------------------------


def _supplemental_ct(grey: np.ndarray, descriptor: list[int], palette: np.ndarray) -> bytes:
    """A 12-bit CT frame with a Supplemental Palette Color LUT (Pixel Presentation COLOR): `palette` (n×3, 16-bit
    entries) mapped from the descriptor's first value."""
    import builders as b
    from pydicom.uid import ExplicitVRLittleEndian

    ds = b.dicom_dataset(ExplicitVRLittleEndian, "1.2.840.10008.5.1.4.1.1.2.1", "CT")
    ds.Rows, ds.Columns = grey.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelPresentation = 1, "MONOCHROME2", "COLOR"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = grey.astype("<u2").tobytes()
    for i, colour in enumerate(("Red", "Green", "Blue")):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", descriptor)
        setattr(ds, f"{colour}PaletteColorLookupTableData", palette[:, i].astype("<u2").tobytes())
        ds[f"{colour}PaletteColorLookupTableData"].VR = "OW"
    return b.dicom_bytes(ds)


def _dicom_rgb(data: bytes) -> np.ndarray:
    from medimg.sources import Blob
    from medimg.sources.base import Context

    (item,) = Context(Limits()).open_blob(Blob("x.dcm", data, name="x.dcm"))
    assert isinstance(item, ImageItem), item
    return np.asarray(item.image).astype(int)


def test_a_supplemental_palette_ends_where_its_entries_end():
    """A 512-entry palette from 3072 colours 3072…3583; 3584 and above are past its end, grey as below it (the
    palette's last colour, which a lookup clamps to, would paint them)."""
    grey = np.tile(np.arange(3000, 3700, 8, dtype=np.uint16), (8, 1))  # 3000…3696, 3584 among them
    palette = np.zeros((512, 3), np.uint16)
    palette[:, 0] = 65535  # all red
    got = _dicom_rgb(_supplemental_ct(grey, [512, 3072, 16], palette))
    inside = (grey >= 3072) & (grey < 3584)
    assert (got[inside] == (255, 0, 0)).all()
    outside = got[~inside]
    assert (outside[:, 0] == outside[:, 1]).all() and (outside[:, 1] == outside[:, 2]).all()
    assert 3584 in grey and (grey < 3072).any()


def test_a_supplemental_palette_of_65536_entries_is_described_by_a_count_of_0():
    """PS3.3 C.7.6.3.1.5: 65536 entries are described as 0 (the count does not fit in 16 bits): every stored value
    of a 16-bit frame is in the palette's range."""
    grey = np.tile(np.arange(0, 65536, 512, dtype=np.uint16), (8, 1))
    ramp = np.arange(65536, dtype=np.uint16)
    palette = np.stack([ramp, np.zeros(65536, np.uint16), 65535 - ramp], -1)
    got = _dicom_rgb(_supplemental_ct(grey, [0, 0, 16], palette))
    assert np.abs(got[..., 0] - np.rint(grey / 65535 * 255)).max() <= 1
    assert (got[..., 1] == 0).all()


def test_an_icc_profile_element_of_the_wrong_type_leaves_the_image_as_stored():
    """A damaged file whose ICC Profile element was written as text (VR LO): no profile, and the image is read."""
    import pydicom
    from test_dicom_colour_s33 import photo, rgb_dicom

    stored = photo()
    ds = pydicom.dcmread(io.BytesIO(rgb_dicom(stored)))
    ds.add_new(0x00282000, "LO", "sRGB IEC61966-2.1")
    import builders as b

    assert np.array_equal(_dicom_rgb(b.dicom_bytes(ds)), stored)


# --- the API's OpenAPI schema --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec(client) -> dict:  # noqa: F811  (test_openapi_s33's client)
    return client.get("/openapi.json").json()


def test_the_schema_pins_health_s_status_the_verdict_counts_and_retry_after(spec):
    """What a generated client relies on: /api/health's status is "ok" and nothing else, the summary counts
    verdicts by the three verdicts only, and a 503 always sends Retry-After, in whole seconds."""
    schemas = spec["components"]["schemas"]
    health = spec["paths"]["/api/health"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    status = schemas[health["$ref"].rpartition("/")[2]]["properties"]["status"]
    assert status.get("const", (status.get("enum") or [None])[0]) == "ok" and len(status.get("enum", ["ok"])) == 1
    verdicts = schemas["SummaryOut"]["properties"]["verdicts"]
    assert verdicts["propertyNames"] == {"enum": ["medical", "non-medical", "uncertain"]}
    for path in ("/api/classify", "/api/classify-url"):
        retry = spec["paths"][path]["post"]["responses"]["503"]["headers"]["Retry-After"]
        assert retry["required"] is True and retry["schema"] == {"type": "integer"}, (path, retry)


# --- train's cache clean-up -----------------------------------------------------------------------------------------


def test_a_temporary_corpus_whose_pid_is_no_process_number_stays(tmp_path):
    """`corpus-….<n>.tmp.npz` whose number no process can have (past the platform's pid range): nothing says its
    writer is gone, so it stays, as one of another user's live run does."""
    import os

    from medimg.training import dataset

    odd = tmp_path / f"corpus-8-e.{2 ** 70}.tmp.npz"
    odd.write_bytes(b"x")
    os.utime(odd, (1_000_000, 1_000_000))
    assert dataset._abandoned(odd) is False
    dataset._let_go(tmp_path, keep=3)
    assert odd.exists()
