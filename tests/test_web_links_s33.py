"""Links that lead to files without an image's name: a web server's folder listing of DICOM files without an
extension (`IM000003`), a `.nii.gz` volume, a forum's `attachment.php?id=3`, an `<a download>` link. Each was
missed: only a link whose path ended in a few image extensions was read. Now a link named as any image format the
sources read is read, and one with a hint that it is a file (the `download` attribute, a listing's file without a
type, a download endpoint) is fetched as a candidate, at most web.MAX_GUESSES a page, and read when it gives an
image; what else it gives (a page, a text, a PDF, an archive, a 404) is a note."""

from __future__ import annotations

import gzip
import io
import zipfile

import numpy as np
import pytest
from builders import dicom_file
from test_web_duplicates import RENDER, images, notes, picture, requires_browser, run
from webserver import WebServer

from medimg.sources import ImageItem, ItemError, Limits, open_input, registry, web


@pytest.fixture
def srv():
    with WebServer() as server:
        yield server


def errors(items) -> list[tuple[str, str]]:
    return [(i.locator, i.error) for i in items if isinstance(i, ItemError) and not i.skipped]


APACHE = ('<html><head><title>Index of /pacs/study1</title></head><body><h1>Index of /pacs/study1</h1><table>'
          '<tr><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th></tr>'
          '<tr><td><a href="/pacs/">Parent Directory</a></td></tr>'
          '<tr><td><a href="IM000001"><img src="/icons/image2.gif" alt="[IMG]"></a></td>'
          '<td><a href="IM000001">IM000001</a></td></tr>'
          '<tr><td><a href="IM000002">IM000002</a></td></tr><tr><td><a href="IM000003">IM000003</a></td></tr>'
          '<tr><td><a href="README">README</a></td></tr><tr><td><a href="report.pdf">report.pdf</a></td></tr>'
          '<tr><td><a href="series2/">series2/</a></td></tr></table></body></html>')


def apache(srv) -> str:
    for n, name in enumerate(("CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm"), 1):
        srv.add(f"/pacs/study1/IM00000{n}", dicom_file(name).read_bytes())  # application/octet-stream
    srv.add("/pacs/study1/README", "Study exported from the PACS on 5 May.\n", "text/plain")
    srv.add("/pacs/study1/report.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")
    srv.add("/icons/image2.gif", picture((200, 200, 200), "GIF", (20, 22)), "image/gif")
    return srv.add("/pacs/study1/", APACHE)


def test_a_folder_listing_gives_its_dicom_files_without_an_extension(srv):
    """A PACS export's listing: `IM000001`… are DICOM files without an extension, and gave nothing. Each is read
    (in page order, the link's text as alt); the README is a note; the PDF, the folder, the parent and the sort
    links are not fetched. The listing's icon inside the file's link is a thumbnail note, as for named files."""
    items = run(apache(srv))
    u = srv.url
    assert images(items) == [u(f"/pacs/study1/IM00000{n}") for n in (1, 2, 3)], items
    read = [i for i in items if isinstance(i, ImageItem)]
    assert [i.format for i in read] == ["DICOM"] * 3 and read[0].metadata["Modality"] == "CT"
    assert [i.metadata["alt"] for i in read] == ["[IMG]", "IM000002", "IM000003"]  # the first: its icon's alt
    assert notes(items) == [(f"img #1 {u('/icons/image2.gif')}", "thumbnail of a #2"),
                            (f"a #5 {u('/pacs/study1/README')}", "a link to a file that is not an image "
                                                                 "(text/plain, 39 bytes)")]
    assert errors(items) == []
    assert srv.hits["/pacs/study1/report.pdf"] == srv.hits["/pacs/study1/series2/"] == srv.hits["/pacs/"] == 0
    assert srv.hits["/pacs/study1/IM000001"] == 1


def test_only_a_listing_reads_its_files_without_an_extension(srv):
    """The same links on a page that is no folder listing are not fetched: a site's `/about` is a page."""
    srv.add("/site/IM000001", dicom_file("CT_small.dcm").read_bytes())
    items = run(srv.add("/site/index.html", '<html><head><title>Our clinic</title></head><body>'
                                            '<a href="IM000001">IM000001</a> <a href="about">About</a></body></html>'))
    assert images(items) == [] and srv.hits["/site/IM000001"] == srv.hits["/site/about"] == 0
    assert notes(items) == [("", "no images found on the page")]


def test_links_named_as_any_format_the_sources_read_are_read_in_any_case(srv):
    """`scan.nii.gz` (a double extension), `T1.MHA`-style upper case: every name registry.IMAGE_NAMES promises
    an image by is a link to follow, not a PDF (a document of its own, not followed)."""
    import nibabel as nib

    volume = np.arange(64 * 64 * 5, dtype=np.int16).reshape(64, 64, 5)
    nifti = gzip.compress(nib.Nifti1Image(volume, np.eye(4)).to_bytes())
    srv.add("/data/scan.nii.gz", nifti, "application/gzip")
    srv.add("/data/XRAY.JFIF", picture((90, 90, 90), "JPEG", (200, 160)), "image/jpeg")
    srv.add("/data/paper.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")
    items = run(srv.add("/data/list.html", '<html><body><a href="scan.nii.gz">volume</a> <a href="XRAY.JFIF">x</a> '
                                           '<a href="paper.pdf">paper</a></body></html>'))
    assert images(items) == [srv.url("/data/scan.nii.gz"), srv.url("/data/XRAY.JFIF")], items
    assert [i.format for i in items if isinstance(i, ImageItem)][0] == "NIfTI"
    assert srv.hits["/data/paper.pdf"] == 0
    assert set(web.LINK_NAMES) == set(registry.IMAGE_NAMES) - {".pdf"}


FORUM = ('<html><body><div class="post">See the X-ray and the ultrasound.</div>'
         '<a href="attachment.php?attachmentid=3"><img src="attachment.php?attachmentid=3&amp;thumb=1" alt="x"></a>'
         '<ul><li><a href="attachment.php?attachmentid=4">us-liver.jpg</a></li>'
         '<li><a href="attachment.php?attachmentid=5">deleted.jpg</a></li></ul>'
         '<a download href="/export/77">Save the chart</a> <a href="/files/12/download">the protocol</a> '
         '<a href="/get?dl=1&amp;id=8">a page</a></body></html>')


def test_download_endpoints_and_download_links_are_read_by_what_they_give(srv):
    """A forum's attachments (`attachment.php?attachmentid=4`, the image's name only in the link's text and the
    Content-Disposition) and an `<a download>` link to a path without a name: read by their bytes. The thumbnail
    inside the link to its attachment is a note naming the full image, and never downloaded. What else such a link
    gives is a note, not an error: a page (`/get?dl=1`), a PDF (a document of its own: read when its URL is given),
    a 404 (nothing said an image was there)."""
    at = "/forum/attachment.php"
    srv.add(f"{at}?attachmentid=3", picture((200, 190, 180), "JPEG", (640, 480)), "image/jpeg",
            headers={"Content-Disposition": 'inline; filename="chest-pa.jpg"'})
    srv.add(f"{at}?attachmentid=3&thumb=1", picture((201, 191, 181), "JPEG", (160, 120)), "image/jpeg")
    srv.add(f"{at}?attachmentid=4", picture((60, 70, 80), "JPEG", (400, 300)), "image/jpeg",
            headers={"Content-Disposition": "attachment; filename*=UTF-8''us-liver.jpg"})
    srv.add("/export/77", picture((30, 160, 30), size=(300, 200)), "application/octet-stream",
            headers={"Content-Disposition": "attachment"})
    srv.add("/files/12/download", b"%PDF-1.4\n%%EOF\n", "application/pdf",
            headers={"Content-Disposition": 'attachment; filename="protocol.pdf"'})
    srv.add("/get", "<html><body>Choose a mirror</body></html>")
    u = srv.url
    items = run(srv.add("/forum/showthread.php", FORUM))
    assert images(items) == [u(f"{at}?attachmentid=3"), u(f"{at}?attachmentid=4"), u("/export/77")], items
    read = [i for i in items if isinstance(i, ImageItem)]
    assert [i.metadata["alt"] for i in read] == ["x", "us-liver.jpg", "Save the chart"]
    assert notes(items) == [
        (f"img #1 {u(f'{at}?attachmentid=3&thumb=1')}", "thumbnail of a #2"),
        (f"a #4 {u(f'{at}?attachmentid=5')}", f"a link that may lead to a file, not read: HTTP 404 Not Found for "
                                               f"{u(f'{at}?attachmentid=5')}"),
        (f"a #6 {u('/files/12/download')}", "a link to a pdf file (protocol.pdf: application/pdf, 15 bytes), not "
                                            "an image: not read (give its URL to read it)"),
        (f"a #7 {u('/get?dl=1&id=8')}", "a link to a page, not an image (41 bytes of HTML)")]
    assert errors(items) == []
    assert srv.hits[f"{at}?attachmentid=3&thumb=1"] == 0  # it waited for its attachment, which gave an image


def test_an_archive_behind_a_download_link_is_a_note_and_named_files_are_not_fetched(srv):
    """A zip (a .docx is one) is a file of its own, not read from a page's link; `report.docx` or `data.zip`
    with a download attribute names another type: never fetched."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("scan.png", picture((1, 2, 3)))
    srv.add("/dl/9", buf.getvalue(), "application/zip")
    items = run(srv.add("/p.html", '<html><body><a href="/dl/9">dataset</a> <a download href="report.docx">r</a> '
                                   '<a download href="data.zip">d</a></body></html>'))
    assert images(items) == []
    ((locator, note),) = notes(items)
    assert locator == f"a #1 {srv.url('/dl/9')}" and note.startswith("a link to a zip file (9: application/zip")
    assert srv.hits["/report.docx"] == srv.hits["/data.zip"] == 0


def test_links_that_may_be_files_are_capped_per_page_and_fetched_once(srv):
    """An article with many "download" links makes at most MAX_GUESSES downloads, with a note for the rest; the
    same URL twice is one candidate; a named image's link is not counted against that cap."""
    n = web.MAX_GUESSES + 5
    for i in range(n):
        srv.add(f"/d/{i}", "<html><body>a download page</body></html>")
    srv.add("/img/full.jpg", picture((120, 130, 140), "JPEG", (300, 200)), "image/jpeg")
    links = "".join(f'<a download href="/d/{i}">file {i}</a> <a download href="/d/{i}">again</a> ' for i in range(n))
    items = run(srv.add("/article.html", f'<html><body>{links}<a href="/img/full.jpg">full</a></body></html>'))
    assert images(items) == [srv.url("/img/full.jpg")]
    assert sum(srv.hits[f"/d/{i}"] for i in range(n)) == web.MAX_GUESSES
    assert all(srv.hits[f"/d/{i}"] == 1 for i in range(web.MAX_GUESSES))
    assert notes(items)[-1] == ("", f"5 more links that may lead to files (a download, a listing's file without a "
                                    f"type) not fetched: at most {web.MAX_GUESSES} a page")


def test_a_frame_s_links_that_may_be_files_are_not_fetched(srv):
    """An embedded page's images are read, not its download links: a page of frames cannot fan out."""
    srv.add("/f/IM1", dicom_file("CT_small.dcm").read_bytes())
    srv.add("/f/index.html", '<html><body><a download href="/f/IM1">IM1</a></body></html>')
    items = run(srv.add("/outer.html", '<html><body><iframe src="/f/index.html"></iframe></body></html>'))
    assert images(items) == [] and srv.hits["/f/IM1"] == 0


def test_which_links_are_taken_as_files():
    """By name (False: an image's name) or on a hint (True); None: not taken."""
    listing = ('<html><head><title>Index of /x/</title></head><body><a href="?C=N;O=D">Name</a> <a href="../">up</a> '
               '<a href="sub/">sub/</a> <a href="IM1">IM1</a> <a href="1.2.840.113619.2.55">uid</a> '
               '<a href="index.php">index.php</a> <a href="notes.txt">notes</a> <a href="/y/IM2">elsewhere</a> '
               '<a href="scan.NRRD">scan</a></body></html>')
    taken = {c.url.removeprefix("http://h/"): c.guess for c in web.extract(listing, "http://h/x/")}
    assert taken == {"x/IM1": True, "x/1.2.840.113619.2.55": True, "x/scan.NRRD": False}
    links = ["attachment.php?id=3", "getfile.aspx?id=4", "files/12/download", "get?dl=1", "fetch?file=a1",
             "x.php?action=download", "view.php?f=scan.png", "page.html?download=1", "downloads/", "data.zip?dl=1",
             "index.php?title=File:X.png", "about", "profile.php?id=2"]
    page = "".join(f'<a href="{link}">{link}</a>' for link in links) + '<a download href="IM9">IM9</a>'
    taken = {c.url.removeprefix("http://h/"): c.guess for c in web.extract(page, "http://h/")}
    assert taken == {"attachment.php?id=3": True, "getfile.aspx?id=4": True, "files/12/download": True,
                     "get?dl=1": True, "fetch?file=a1": True, "x.php?action=download": True, "IM9": True}


def test_a_content_disposition_names_the_download():
    assert web._disposition_name({"Content-Disposition": 'attachment; filename="a b.jpg"'}) == "a b.jpg"
    assert web._disposition_name({"content-disposition": "attachment; filename*=UTF-8''scan%201.svs; "
                                                         'filename="fallback.svs"'}) == "scan 1.svs"
    assert web._disposition_name({"Content-Disposition": r'attachment; filename="C:\x\..\IM1.dcm"'}) == "IM1.dcm"
    assert web._disposition_name({"Content-Disposition": "inline"}) == web._disposition_name({}) == ""


def test_a_saved_listing_leaves_its_files_without_an_extension_to_the_folder(tmp_path):
    """A wget mirror of a listing keeps `index.html` beside the files: the folder gives each file once (read as
    a file), and the page says it left them to the folder; the page alone says so too, naming the folder to
    give."""
    folder = tmp_path / "study1"
    folder.mkdir()
    (folder / "IM000001").write_bytes(dicom_file("CT_small.dcm").read_bytes())
    (folder / "IM000002").write_bytes(dicom_file("MR_small.dcm").read_bytes())
    (folder / "index.html").write_text('<html><head><title>Index of /study1</title></head><body><pre>'
                                       '<a href="../">../</a> <a href="IM000001">IM000001</a> '
                                       '<a href="IM000002">IM000002</a></pre></body></html>')
    said = "2 links to files beside the page without an image's name not read: give their folder to read them"
    items = list(open_input(str(folder), Limits()))
    assert sorted(i.origin.rsplit("/", 1)[-1] for i in items if isinstance(i, ImageItem)) == ["IM000001", "IM000002"]
    page = [(i.error, i.skipped) for i in items if i.origin.endswith("index.html")]
    assert page == [("2 files beside the page not read through it: each is read as a file of the folder given", True)]
    alone = [(said, True), ("no images referenced in this HTML file", True)]
    assert [(i.error, i.skipped) for i in open_input(str(folder / "index.html"))] == alone
    many = "".join(f'<a href="IM{n}">IM{n}</a>' for n in range(web.MAX_GUESSES + 5))  # the cap is the web's
    (folder / "index.html").write_text(f"<html><head><title>Index of /study1</title></head><body>{many}</body></html>")
    said = said.replace("2 links", f"{web.MAX_GUESSES + 5} links")
    assert [i.error for i in open_input(str(folder / "index.html"))] == [said, "no images referenced in this HTML file"]


@requires_browser
def test_a_rendered_listing_and_forum_read_the_same_links(srv):
    """The browser loads no link: the static reading's are read after what it loaded, as without --render."""
    items = list(open_input(apache(srv), Limits(**RENDER)))
    u = srv.url
    assert [x for x in images(items) if "IM" in x] == [u(f"/pacs/study1/IM00000{n}") for n in (1, 2, 3)], items
    assert ("a link to a file that is not an image (text/plain, 39 bytes)" in [e for _, e in notes(items)])
    assert errors(items) == []


@requires_browser
def test_a_rendered_page_notes_the_links_past_the_cap(srv):
    n = web.MAX_GUESSES + 2
    for i in range(n):
        srv.add(f"/d/{i}", picture((i, 100, 100)), "image/png")
    links = "".join(f'<a download href="/d/{i}">file {i}</a> ' for i in range(n))
    items = list(open_input(srv.add("/article.html", f"<html><body>{links}</body></html>"), Limits(**RENDER)))
    assert len(images(items)) == web.MAX_GUESSES
    assert notes(items)[-1][1].startswith("2 more links that may lead to files")


def test_a_hinted_link_whose_headers_say_no_picture_is_not_downloaded(srv):
    """A link taken on a hint was downloaded whole (up to the 50 MB cap) before its archive, video or PDF was
    passed over: 20 such links could cost a page 1 GB. Its headers now decide first: the body is never read."""
    big = 200 * 2**20
    srv.huge("/download/1", big, declare_length=True, content_type="application/zip")
    srv.huge("/download/2", big, declare_length=False, content_type="video/mp4")
    srv.add("/download/4", picture((9, 80, 9), size=(200, 150)), "application/octet-stream",
            headers={"Content-Disposition": 'attachment; filename="scan-4.jpg"'})
    page = '<html><body>' + "".join(f'<a href="/download/{n}">file {n}</a>' for n in (1, 2, 4)) + '</body></html>'
    items = run(srv.add("/p.html", page))
    assert images(items) == [srv.url("/download/4")]
    u = srv.url
    assert notes(items) == [
        (f"a #1 {u('/download/1')}", f"a link to a zip file (1: application/zip, {big} bytes), not an image: not "
                                     "read (give its URL to read it)"),
        (f"a #2 {u('/download/2')}", "a link to a video file (2: video/mp4), not an image: not read (give its URL "
                                     "to read it)")]
    assert srv.sent["/download/1"] < 8 * 2**20 and srv.sent["/download/2"] < 8 * 2**20, srv.sent


def test_a_file_name_of_another_type_from_content_disposition_refuses_a_hinted_link(srv):
    """`download?id=7` answering `application/octet-stream` named `dataset.zip` or `notes.txt`: not read."""
    srv.add("/get?id=7", b"PK\x03\x04" + b"\0" * 5000, "application/octet-stream",
            headers={"Content-Disposition": 'attachment; filename="dataset.zip"'})
    srv.add("/get?id=8", b"plain words", "application/octet-stream",
            headers={"Content-Disposition": "attachment; filename=notes.txt"})
    items = run(srv.add("/p.html", '<a download href="/get?id=7">a</a> <a download href="/get?id=8">b</a>'))
    assert images(items) == []
    assert [n for _, n in notes(items)] == [
        "a link to a zip file (dataset.zip: application/octet-stream, 5004 bytes), not an image: not read (give "
        "its URL to read it)",
        "a link to a txt file (notes.txt: application/octet-stream, 11 bytes), not an image: not read"]
