"""Links to DICOM files under names other files use too (Siemens's `.ima`, `.dic`), read when the page says they
are DICOM; a detached MetaImage header (`v.mhd`) read with the data file the page links beside it (`v.raw`); and a
link taken on a hint whose first bytes show no image the sources read, given up before the rest of its body."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from builders import dicom_file
from test_volumes import mha
from test_web_duplicates import notes, run
from test_web_links_s33 import errors
from test_web_sizes import images
from webserver import WebServer

from medimg.sources import ImageItem, Limits, open_input, web


@pytest.fixture
def srv():
    with WebServer() as server:
        yield server


CT, MR, RLE, US = (dicom_file(name).read_bytes() for name in ("CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm",
                                                                "examples_palette.dcm"))
WORDS = ("\n".join(f"word{n}/S" for n in range(40_000)) + "\n").encode()  # a spell checker's 400 kB .dic


def test_ima_and_dic_links_are_read_when_the_page_says_dicom(srv):
    """`.ima` and `.dic` are DICOM's names and others' too: a link so named is read when the words around it, its
    title, the page's title, a listing or a download hint say DICOM or a file; a dictionary `.dic` on such a page
    is a note (given up after its first bytes), and the same links on a page that says none of it are not
    fetched. A download whose Content-Disposition names `scan.IMA` is read too."""
    srv.add("/s/IM0001.ima", CT)
    srv.add("/s/IM0002.IMA", MR)
    srv.add("/s/mr.dic", RLE)
    srv.add("/s/en_US.dic", WORDS, "text/plain")
    srv.add("/download?id=5", US, headers={"Content-Disposition": 'attachment; filename="scan.IMA"'})
    srv.add("/study.html", '<html><head><title>Study 12</title></head><body>'
                           '<p>DICOM images of the study: <a href="/s/IM0001.ima">first</a></p>'
                           '<p><a href="/s/IM0002.IMA" title="DICOM, 2 of 2">second</a></p>'
                           '<a href="/s/mr.dic" download>MR</a> <a href="/download?id=5">scan</a></body></html>')
    srv.add("/blog.html", '<html><head><title>Spelling</title></head><body><p>Our word list: '
                          '<a href="/s/en_US.dic">en_US.dic</a>, and a scan: <a href="/s/IM0001.ima">IM0001.ima</a>'
                          '</p></body></html>')
    srv.add("/samples.html", '<html><head><title>DICOM sample files</title></head><body>'
                             '<a href="/s/mr.dic">MR</a><a href="/s/en_US.dic">words</a></body></html>')
    srv.add("/s/", '<html><head><title>Index of /s</title></head><body><h1>Index of /s</h1>'
                   '<a href="IM0002.IMA">IM0002.IMA</a></body></html>')
    u = srv.url
    items = run(u("/study.html"))
    assert images(items) == [f"a #{n} {u(path)}" for n, path in
                             enumerate(("/s/IM0001.ima", "/s/IM0002.IMA", "/s/mr.dic", "/download?id=5"), 1)]
    assert {i.format for i in items if isinstance(i, ImageItem)} == {"DICOM"} and not errors(items)
    hits = srv.hits["/s/en_US.dic"]
    assert images(run(u("/blog.html"))) == [] and srv.hits["/s/en_US.dic"] == hits and srv.hits["/s/IM0001.ima"] == 1
    items = run(u("/samples.html"))
    assert images(items) == [f"a #1 {u('/s/mr.dic')}"]
    assert notes(items) == [(f"a #2 {u('/s/en_US.dic')}", f"a link to a file that is not an image (text/plain, "
                                                           f"{len(WORDS)} bytes)")]
    assert images(run(u("/s/"))) == [f"a #1 {u('/s/IM0002.IMA')}"]


def test_a_hinted_link_that_is_no_image_is_given_up_after_its_first_bytes(srv):
    """An attachment served as application/octet-stream without a name was downloaded whole (up to the 50 MB
    cap) before it was seen to be a zip, or no image at all. Its first bytes now decide, and the rest is not
    read; a picture sent the same way is read whole."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("data.bin", np.random.default_rng(1).bytes(20_000_000))
    archive = buf.getvalue()
    srv.add("/dl/9", archive)  # application/octet-stream, no Content-Disposition
    srv.huge("/dl/10", 200 * 2**20, content_type="application/octet-stream")  # zeros, no length given
    photo = np.random.default_rng(2).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    png = io.BytesIO()
    from PIL import Image
    Image.fromarray(photo).save(png, "PNG")
    srv.add("/dl/11", png.getvalue())
    srv.add("/files.html", '<a href="/dl/9">data</a> <a href="/dl/10">more</a> <a href="/dl/11">photo</a>')
    u = srv.url
    items = run(u("/files.html"))
    assert images(items) == [f"a #3 {u('/dl/11')}"] and len(png.getvalue()) > web.PEEK_BYTES
    assert notes(items) == [
        (f"a #1 {u('/dl/9')}", f"a link to a zip file (9: application/octet-stream, {len(archive)} bytes), not an "
                               "image: not read (give its URL to read it)"),
        (f"a #2 {u('/dl/10')}", "a link to a file that is not an image (application/octet-stream, not read past its "
                                f"first {web.PEEK_BYTES} bytes)")]
    assert srv.sent["/dl/9"] < len(archive) // 4 and srv.sent["/dl/10"] < 20 * 2**20


def _pair(vol: np.ndarray, data_file: str) -> tuple[bytes, bytes]:
    whole = mha(vol, data_file=data_file)
    end = whole.index(b"\n", whole.index(b"ElementDataFile")) + 1
    return whole[:end], whole[end:]


def test_a_metaimage_header_is_read_with_the_data_file_the_page_links_beside_it(srv, tmp_path):
    """`v.mhd` and `v.raw` linked on one page are one volume, its data fetched as the header names it; a `.raw`
    alone, or a header whose data file the page does not link, is not fetched. A saved page reads the pair from
    its folder."""
    vol = np.zeros((128, 96, 12), np.int16)
    vol[20:100, 16:80, :] = 800
    header, data = _pair(vol, "v.raw")
    srv.add("/vol/v.mhd", header, "text/plain")
    srv.add("/vol/v.raw", data)
    srv.add("/vol/w.raw", data)
    srv.add("/vol/u.mhd", _pair(vol, "u.raw")[0], "text/plain")
    srv.add("/vol/u.raw", data)
    srv.add("/vol/t.mhd", _pair(vol, "secret.raw")[0], "text/plain")  # names a file the page does not link
    srv.add("/vol/t.raw", data)
    srv.add("/vol/secret.raw", data)
    srv.add("/vols.html", '<a href="/vol/v.mhd">header</a> <a href="/vol/v.raw">data</a> '
                          '<a href="/vol/w.raw">other data</a> <a href="/vol/u.mhd">lone header</a> '
                          '<a href="/vol/t.mhd">t</a> <a href="/vol/t.raw">t data</a>')
    u = srv.url
    items = run(u("/vols.html"))
    assert images(items) == [f"a #1 {u('/vol/v.mhd')}, slice 7 of 12"] and items[0].format == "MetaImage"
    assert srv.hits["/vol/v.raw"] == 1 and srv.hits["/vol/w.raw"] == 0 and srv.hits["/vol/u.mhd"] == 0
    assert errors(items) == [(f"a #2 {u('/vol/t.mhd')}", "not a readable MetaImage file: its data file secret.raw: "
                                                         "the page does not link it beside the header")]
    assert srv.hits["/vol/secret.raw"] == 0
    (tmp_path / "v.mhd").write_bytes(header)
    (tmp_path / "v.raw").write_bytes(data)
    (tmp_path / "page.html").write_text('<a href="v.mhd">header</a> <a href="v.raw">data</a>')
    saved = list(open_input(str(tmp_path / "page.html"), Limits()))
    assert [i.locator for i in saved if isinstance(i, ImageItem)] == ["a #1 v.mhd, slice 7 of 12"], saved


def test_a_saved_mirror_read_as_a_folder_gives_each_file_once(tmp_path):
    """`wget -r` keeps a page beside the files it shows and links. Read as a folder, each named picture came twice:
    as a file of the folder and through the page. Now the folder's files are read as files only, and the page
    says so; a picture in a hidden folder (which a walk leaves out) is still read through the page, and the page
    given alone still shows all of them."""
    from PIL import Image

    site = tmp_path / "mirror"
    (site / "img").mkdir(parents=True)
    (site / ".thumbs").mkdir()
    for n, where in enumerate(("img/x0.png", "img/x1.png", ".thumbs/t.png")):
        noise = np.random.default_rng(n).integers(0, 255, (120, 160, 3), dtype=np.uint8)
        Image.fromarray(noise).save(site / where)
    (site / "index.html").write_text('<html><body><img src="img/x0.png"><a href="img/x1.png">x1</a>'
                                     '<img src=".thumbs/t.png"></body></html>')
    items = list(open_input(str(site), Limits()))
    read = sorted(f"{i.origin.rsplit('/', 1)[-1]} {i.locator}".strip() for i in items if isinstance(i, ImageItem))
    assert read == ["index.html img #1 .thumbs/t.png", "x0.png", "x1.png"]
    assert notes(items) == [("", "2 files beside the page not read through it: each is read as a file of the folder "
                                 "given")]
    assert images(open_input(str(site / "index.html"))) == ["img #1 img/x0.png", "a #2 img/x1.png",
                                                            "img #3 .thumbs/t.png"]


def test_a_data_link_is_known_however_its_href_is_written():
    """Only links that may name a data file are resolved in looking for them (resolving all of a big page's links
    cost 15 % of its reading): one in capitals with a newline inside (browsers drop it) is found, and so is a
    query alone on a page whose own URL names a data file."""
    header, = web.extract('<a href="v.mhd">h</a> <a href="V/../v.R\naw?x=1">d</a>', "http://h/vol/")
    assert header.url == "http://h/vol/v.mhd" and header.beside == ("http://h/vol/v.Raw?x=1",)
    header, = web.extract('<a href="v.mhd">h</a> <a href="?x=1">d</a>', "http://h/vol/v.raw")
    assert header.beside == ("http://h/vol/v.raw?x=1",)
