"""What a reader of a page counts: a gallery thumbnail and the full image its link leads to are one picture; a
rendered lazy image's placeholder is no picture; a page that a static reading cannot see into (scripts, external
stylesheets it could not read) says so; a saved page's path from the site's root is shown as written."""

from __future__ import annotations

import pytest
from test_web_duplicates import RENDER, images, notes, picture, requires_browser, run
from webserver import WebServer

from medimg.sources import ImageItem, ItemError, Limits, browser, open_input, web


@pytest.fixture
def srv():
    with WebServer() as server:
        yield server


GALLERY = ('<html><body><img src="img/xray.png">'
           '<a href="img/big_derm.jpg"><img src="img/thumb_derm.jpg" alt="derm"></a>'  # the full image: one picture
           '<a href="img/gone.jpg"><img src="img/thumb_gone.jpg"></a>'  # a 404 behind the link: the thumbnail stays
           '<a href="img/tiny.png"><img src="img/thumb_tiny.png"></a>'  # a decoration behind it: stays
           '<a href="img/page.jpg"><img src="img/thumb_page.png"></a>'  # a page behind it: stays
           '<img src="img/ct.png"><a href="img/ct.png"><span><img src="img/thumb_ct.png"></span></a>'  # shown above
           '</body></html>')


def gallery(srv) -> str:
    srv.add("/img/xray.png", picture((200, 200, 200)), "image/png")
    srv.add("/img/big_derm.jpg", picture((160, 80, 60), "JPEG", (800, 600)), "image/jpeg")
    srv.add("/img/thumb_derm.jpg", picture((161, 81, 61), "JPEG", (120, 90)), "image/jpeg")
    srv.add("/img/thumb_gone.jpg", picture((10, 20, 30), "JPEG"), "image/jpeg")
    srv.add("/img/tiny.png", picture((255, 255, 255), size=(8, 8)), "image/png")
    srv.add("/img/thumb_tiny.png", picture((30, 20, 10)), "image/png")
    srv.add("/img/page.jpg", "<html><body>a viewer page</body></html>")
    srv.add("/img/thumb_page.png", picture((40, 140, 40)), "image/png")
    srv.add("/img/ct.png", picture((90, 90, 90), size=(400, 300)), "image/png")
    srv.add("/img/thumb_ct.png", picture((91, 91, 91)), "image/png")
    return srv.add("/gallery.html", GALLERY)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_gallery_thumbnail_is_a_note_naming_the_full_image_it_links_to(srv, concurrency):
    """The full image is the one classified; a thumbnail whose link led nowhere useful (a 404, a decoration, a page)
    is kept. Numbers are as before: only the thumbnail's row changes."""
    url = gallery(srv)
    u = srv.url
    items = run(url, max_concurrency=concurrency)
    assert images(items) == [u("/img/xray.png"), u("/img/big_derm.jpg"), u("/img/thumb_gone.jpg"),
                             u("/img/thumb_tiny.png"), u("/img/thumb_page.png"), u("/img/ct.png")]
    assert [i.locator.split(" ")[:2] for i in items] == [["img", "#1"], ["img", "#2"], ["a", "#3"], ["img", "#4"],
                                                         ["a", "#5"], ["img", "#6"], ["a", "#7"], ["img", "#8"],
                                                         ["a", "#9"], ["img", "#10"], ["img", "#11"]]
    assert notes(items) == [(f"img #2 {u('/img/thumb_derm.jpg')}", "thumbnail of a #3"),
                            (f"a #7 {u('/img/tiny.png')}", "decoration: 8x8 is below min_side 64"),
                            (f"a #9 {u('/img/page.jpg')}", "a link to a page, not an image (39 bytes of HTML)"),
                            (f"img #11 {u('/img/thumb_ct.png')}", "thumbnail of img #10")]
    assert srv.hits["/img/big_derm.jpg"] == 1


def test_a_thumbnail_inside_an_iframe_names_its_full_image_with_the_frame(srv):
    gallery(srv)
    srv.add("/outer.html", '<html><body><iframe src="gallery.html"></iframe></body></html>')
    items = run(srv.url("/outer.html"))
    assert (f"iframe #1 {srv.url('/gallery.html')}, img #2 {srv.url('/img/thumb_derm.jpg')}",
            "thumbnail of iframe #1, a #3") in notes(items)


def test_a_saved_gallery_and_a_path_from_the_sites_root(tmp_path):
    """A saved page's thumbnail of a full image beside it is a note too; `/img/ct.png` is shown as written and said
    to need the site's root, which a file on disk does not know (before: `../../../img/ct.png`, "outside")."""
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "big.png").write_bytes(picture((160, 80, 60), size=(400, 300)))
    (tmp_path / "img" / "thumb.png").write_bytes(picture((161, 81, 61)))
    (tmp_path / "img" / "ct.png").write_bytes(picture((90, 90, 90)))
    (tmp_path / "page.html").write_text('<!DOCTYPE html><html><body><a href="img/big.png"><img src="img/thumb.png">'
                                        '</a><img src="/img/ct.png"><img src="img/ct.png"></body></html>')
    items = list(open_input(tmp_path / "page.html"))
    assert images(items) == ["img/big.png", "img/ct.png"]
    assert notes(items) == [("img #1 img/thumb.png", "thumbnail of a #2")]
    (error,) = [i for i in items if isinstance(i, ItemError) and not i.skipped]
    assert error.locator == "img #3 /img/ct.png"
    assert error.error == ("'/img/ct.png' not read: it starts at the web site's root, which is not known for a "
                           "saved page")
    (tmp_path / "page" / "img").mkdir(parents=True)  # a root path whose first folder is named "page" is one too
    (tmp_path / "page" / "img" / "ct.png").write_bytes(picture((90, 90, 91)))
    (tmp_path / "two.html").write_text('<html><body><img src="/page/img/ct.png"></body></html>')
    (error,) = list(open_input(tmp_path / "two.html"))
    assert error.locator == "img #1 /page/img/ct.png" and "starts at the web site's root" in error.error, error


def test_a_page_without_images_that_runs_scripts_says_rendering_may_find_some(srv):
    srv.add("/js.html", '<html><body><div id="g"></div><script>const i = new Image(); i.src = "x.png";'
                        'document.getElementById("g").appendChild(i);</script></body></html>')
    srv.add("/data.html", '<html><body><p>No pictures.</p><script type="application/ld+json">{"@type": "Article"}'
                          '</script></body></html>')
    (note,) = run(srv.url("/js.html"))
    assert note.skipped and note.error == ("no images found on the page (the page runs scripts: --render may find "
                                           "images they add)")
    (note,) = run(srv.url("/data.html"))  # JSON-LD runs nothing
    assert note.skipped and note.error == "no images found on the page"


def test_external_stylesheets_a_static_reading_could_not_read_are_one_note(srv):
    """Stylesheets are read (tests/test_web_css_s30.py); one that could not be is one note saying why."""
    srv.add("/a.png", picture((1, 2, 3)), "image/png")
    srv.add("/style.css", ".hero { background: url(hero.jpg) }", "text/css")  # no .hero on the page
    srv.add("/page.html", '<html><head><link rel="stylesheet" href="style.css"><link rel="Stylesheet preload" '
                          'href="/more.css"><link rel="icon" href="/favicon.ico"></head><body><img src="a.png">'
                          '</body></html>')
    srv.add("/plain.html", '<html><head><style>.x { color: red }</style></head><body><img src="a.png"></body></html>')
    items = run(srv.url("/page.html"))
    assert images(items) == [srv.url("/a.png")]
    assert notes(items) == [("", f"1 external stylesheet not read (HTTP 404 Not Found for {srv.url('/more.css')}): "
                                 "a background image set there is found only with --render")]
    assert srv.hits["/style.css"] == 1 and srv.hits["/hero.jpg"] == 0
    assert [type(i) for i in run(srv.url("/plain.html"))] == [ImageItem]  # no stylesheet, no note


LAZY = ('<html><body><img src="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7" '
        'data-src="img/endo.png"><img src="img/ph.gif" data-lazy-src="img/us.png"><img src="img/ph.gif" '
        'data-srcset="img/fundus.png 1x"><img src="img/blur.png" data-src="img/xray.png"><img src="img/blur.png">'
        '</body></html>')


def lazy_site(srv) -> str:
    srv.add("/img/endo.png", picture((180, 60, 60)), "image/png")
    srv.add("/img/us.png", picture((60, 60, 60)), "image/png")
    srv.add("/img/fundus.png", picture((200, 120, 40)), "image/png")
    srv.add("/img/xray.png", picture((200, 200, 200)), "image/png")
    srv.add("/img/ph.gif", picture((255, 255, 255), "GIF", (1, 1)), "image/gif")
    srv.add("/img/blur.png", picture((120, 120, 120)), "image/png")  # a placeholder, but also a picture of its own
    return srv.add("/lazy.html", LAZY)


def test_a_rendered_lazy_images_placeholder_is_no_picture(srv, monkeypatch):
    """Without a browser: it loaded the placeholders (no script swapped the lazy URLs in). They are not rows; the
    lazy images are fetched as the static reading has them; a placeholder another element shows is kept."""
    url = lazy_site(srv)
    u = srv.url
    gif = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
    loaded = [web.Candidate(gif, "img"),
              web.Candidate(u("/img/ph.gif"), "img", data=picture((255, 255, 255), "GIF", (1, 1)),
                            content_type="image/gif"),
              web.Candidate(u("/img/blur.png"), "img", data=picture((120, 120, 120)), content_type="image/png")]
    monkeypatch.setattr(browser, "collect", lambda *args, **kwargs: list(loaded))
    items = run(url, render=True)
    assert images(items) == [u("/img/blur.png"), u("/img/endo.png"), u("/img/us.png"), u("/img/fundus.png"),
                             u("/img/xray.png")]
    assert not [i for i in items if isinstance(i, ItemError)], items
    assert srv.hits["/img/ph.gif"] == 0


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(120)
def test_rendering_gives_neither_placeholders_nor_a_thumbnail_beside_its_full_image(srv):
    """Chromium shows the placeholders of lazy images no script brings in, and a gallery's thumbnails: the rows are
    the lazy images themselves and the full images, with one note per thumbnail."""
    lazy_site(srv)
    gallery(srv)
    u = srv.url
    items = list(open_input(u("/lazy.html"), Limits(**RENDER)))
    assert sorted(images(items)) == sorted([u("/img/blur.png"), u("/img/endo.png"), u("/img/us.png"),
                                            u("/img/fundus.png"), u("/img/xray.png")])
    assert not [i for i in items if isinstance(i, ItemError)], items
    items = list(open_input(u("/gallery.html"), Limits(**RENDER)))
    shown = images(items)
    assert u("/img/big_derm.jpg") in shown and u("/img/thumb_derm.jpg") not in shown, items
    assert u("/img/thumb_gone.jpg") in shown and u("/img/thumb_page.png") in shown
    assert u("/img/thumb_ct.png") not in shown
    thumbs = [(where.split(" ")[2], note) for where, note in notes(items) if note.startswith("thumbnail of ")]
    assert [where for where, _ in thumbs] == [u("/img/thumb_derm.jpg"), u("/img/thumb_ct.png")], items


def test_a_rendered_gallery_reads_each_full_image_just_after_its_thumbnail():
    """The browser never loads the full images a gallery's thumbnails link to, so they came last: each
    thumbnail then read its full image ahead and held it to the end of the page (40 of 2000×2000 px: 1.56 GB).
    Each full image now follows its thumbnail; one that stays far later is not read ahead (the thumbnail is
    then an image of its own)."""
    thumbs = [web.Candidate(f"http://h/t{i}.jpg", "img", full=f"http://h/big{i}.jpg") for i in range(40)]
    fulls = [web.Candidate(f"http://h/big{i}.jpg", "a") for i in range(40)]
    other = web.Candidate("http://h/logo.png", "img")
    order = web._fulls_after_thumbnails([*thumbs, other, *fulls])
    assert [c.url for c in order[:4]] == ["http://h/t0.jpg", "http://h/big0.jpg", "http://h/t1.jpg",
                                          "http://h/big1.jpg"]
    assert len(order) == 81 and order[-1] is other
    at = web.places([*thumbs, *fulls])
    seen, ahead = web.Seen(), {}
    read = []
    assert web.thumbnail(1, thumbs[0], at, seen, "", ahead, lambda j: read.append(j) or iter(())) is None
    assert read == [] and ahead == {}  # its full image is 40 places on: not read ahead, not held


def test_a_full_image_a_few_places_after_its_thumbnail_is_read_with_one_worker(srv):
    """a thumbnail whose style sets three backgrounds: the link's candidate (the full image) comes 4 places
    on, within READ_AHEAD but beyond the downloads one worker keeps queued. The full image must be started with
    its thumbnail, or it is asked for before anyone fetched it."""
    srv.add("/img/big.jpg", picture((160, 80, 60), "JPEG", (800, 600)), "image/jpeg")
    srv.add("/img/t.png", picture((30, 60, 90)), "image/png")
    for i in range(3):
        srv.add(f"/img/bg{i}.png", picture((70 + 50 * i, 200, 20)), "image/png")
    style = ", ".join(f"url(img/bg{i}.png)" for i in range(3))
    url = srv.add("/g.html", f'<html><body><a href="img/big.jpg"><img src="img/t.png" style="background-image: '
                             f'{style}"></a></body></html>')
    u = srv.url
    items = run(url, max_concurrency=1)
    assert not [i for i in items if isinstance(i, ItemError) and not i.skipped], items
    assert images(items) == [u("/img/bg0.png"), u("/img/bg1.png"), u("/img/bg2.png"), u("/img/big.jpg")], items
    assert notes(items) == [(f"img #1 {u('/img/t.png')}", "thumbnail of a #5")], items
    assert srv.hits["/img/big.jpg"] == 1


@pytest.mark.parametrize("gap, read_ahead", [(web.READ_AHEAD, True), (web.READ_AHEAD + 1, False)])
def test_a_full_image_exactly_read_ahead_places_on_is_still_read_ahead(gap, read_ahead):
    """READ_AHEAD places on is the last place a thumbnail's full image is read ahead of its turn."""
    thumb = web.Candidate("http://h/t.jpg", "img", full="http://h/big.jpg")
    between = [web.Candidate(f"http://h/o{i}.png", "img") for i in range(gap - 1)]
    found = [thumb, *between, web.Candidate("http://h/big.jpg", "a")]
    at = web.places(found)
    assert at[web._same("http://h/big.jpg")][0] == 1 + gap
    read, ahead = [], {}
    image = ImageItem(origin="http://h/", locator="a", image=None, format="JPEG")
    web.thumbnail(1, thumb, at, web.Seen(), "", ahead, lambda j: read.append(j) or iter([image]))
    assert read == ([1 + gap] if read_ahead else []) and (1 + gap in ahead) == read_ahead


def test_a_thumbnails_full_image_is_read_ahead_only_up_to_its_first_image():
    """the full image read ahead for its thumbnail is pulled up to its first image only (enough to know it
    gave one); the rest (more frames, pages) waits in `ahead`, read in its turn, not held in memory."""
    thumb = web.Candidate("http://h/t.jpg", "img", full="http://h/big.tif")
    at = web.places([thumb, web.Candidate("http://h/big.tif", "a")])
    pulled = []

    def full_image(j):
        for k, item in enumerate([ItemError("http://h/big.tif", "", "a note", skipped=True),
                                  *(ImageItem("http://h/big.tif", f"frame {n}", None, "TIFF") for n in range(3))]):
            pulled.append(k)
            yield item

    ahead = {}
    web.thumbnail(1, thumb, at, web.Seen(), "", ahead, full_image)
    assert pulled == [0, 1]  # the note and the first frame
    assert [getattr(i, "locator", None) for i in ahead[2]] == ["", "frame 0", "frame 1", "frame 2"]
    assert pulled == [0, 1, 2, 3]


def test_a_page_without_images_that_runs_a_module_script_says_rendering_may_find_some(srv):
    """a <script type="module"> runs as much as a plain one does."""
    srv.add("/mod.html", '<html><body><div id="g"></div><script type="module">import("./gallery.js");</script>'
                         '</body></html>')
    (note,) = run(srv.url("/mod.html"))
    assert note.skipped and note.error == ("no images found on the page (the page runs scripts: --render may find "
                                           "images they add)")


def test_a_rendered_pictures_placeholder_is_no_picture_when_only_its_source_is_lazy(srv, monkeypatch):
    """a <picture> whose <source> holds the lazy URLs (data-srcset) and whose <img> shows a placeholder: that
    placeholder, loaded by a browser no script brought the picture into, is no row."""
    from medimg.sources import browser

    u = srv.url
    srv.add("/img/derm.png", picture((180, 90, 60)), "image/png")
    srv.add("/img/ph.gif", picture((255, 255, 255), "GIF", (1, 1)), "image/gif")
    page = ('<html><body><picture><source type="image/png" data-srcset="img/derm.png 1x"><img src="img/ph.gif">'
            '</picture></body></html>')
    url = srv.add("/pic.html", page)
    found = web.extract(page, u("/pic.html"), alternatives=True)
    assert [c.placeholders for c in found] == [(u("/img/ph.gif"),)], found
    loaded = [web.Candidate(u("/img/ph.gif"), "img", data=picture((255, 255, 255), "GIF", (1, 1)),
                            content_type="image/gif")]
    monkeypatch.setattr(browser, "collect", lambda *args, **kwargs: list(loaded))
    items = run(url, render=True)
    assert images(items) == [u("/img/derm.png")], items
    assert not [i for i in items if isinstance(i, ItemError)], items


def test_a_linked_img_with_no_picture_of_its_own_makes_no_thumbnail_of_its_background(srv):
    """only the <img> (or <picture>) itself is a thumbnail: an <img> with no src whose style sets a
    background, inside a link to a full image, gives the background as an image of its own, not a note."""
    u = srv.url
    srv.add("/img/big.jpg", picture((160, 80, 60), "JPEG", (800, 600)), "image/jpeg")
    srv.add("/img/bg.png", picture((20, 120, 220)), "image/png")
    url = srv.add("/bg.html", '<html><body><a href="img/big.jpg"><img alt="x" style="background-image: '
                              'url(img/bg.png)"></a></body></html>')
    items = run(url)
    assert images(items) == [u("/img/bg.png"), u("/img/big.jpg")], items
    assert not [i for i in items if isinstance(i, ItemError)], items


LISTING = ('<html><head><title>Index of /pacs/</title></head><body><h1>Index of /pacs/</h1><pre>'
           '<a href="../">../</a>\n<a href="series1/">series1/</a>\n<a href="CT_small.dcm">CT_small.dcm</a>\n'
           '<a href="scan-2.png">scan 2.png</a>\n<a href="readme.txt">readme.txt</a>\n'
           '<a href="gone.jpg">gone.jpg</a>\n</pre><a href="big.jpg"><img src="thumb.jpg"></a> '
           '<a href="big.jpg">full size</a></body></html>')


def listing(srv) -> str:
    from builders import dicom_file

    srv.add("/pacs/CT_small.dcm", dicom_file("CT_small.dcm").read_bytes(), "application/dicom")
    srv.add("/pacs/scan-2.png", picture((200, 200, 200)), "image/png")
    srv.add("/pacs/readme.txt", "not an image", "text/plain")
    srv.add("/pacs/big.jpg", picture((160, 80, 60), "JPEG", (800, 600)), "image/jpeg")
    srv.add("/pacs/thumb.jpg", picture((161, 81, 61), "JPEG", (120, 90)), "image/jpeg")
    return srv.add("/pacs/", LISTING)


def test_a_folder_listing_gives_the_image_files_it_links_to(srv):
    """A web server's folder listing (and a "full size" text link) shows no image itself: it gave "no images
    found on the page". The files a link names as images are read, in page order, with the link's text; links to
    other files and folders are not followed; a thumbnail's link is still taken after it (one picture)."""
    items = run(listing(srv))
    u = srv.url
    assert images(items) == [u("/pacs/CT_small.dcm"), u("/pacs/scan-2.png"), u("/pacs/big.jpg")]
    read = [i for i in items if isinstance(i, ImageItem)]
    assert [i.locator.split(" ")[:2] for i in read] == [["a", "#1"], ["a", "#2"], ["a", "#5"]]
    assert [i.metadata["alt"] for i in read] == ["CT_small.dcm", "scan 2.png", ""]
    assert read[0].format == "DICOM" and read[0].metadata["Modality"] == "CT"
    errors = [(i.locator, i.error) for i in items if isinstance(i, ItemError) and not i.skipped]
    assert errors == [(f"a #3 {u('/pacs/gone.jpg')}", f"HTTP 404 Not Found for {u('/pacs/gone.jpg')}")]
    assert notes(items) == [(f"img #4 {u('/pacs/thumb.jpg')}", "thumbnail of a #5")]
    assert srv.hits["/pacs/readme.txt"] == 0 and srv.hits["/pacs/big.jpg"] == 1


@requires_browser
def test_a_rendered_folder_listing_gives_the_same_images(srv):
    items = list(open_input(listing(srv), Limits(**RENDER)))
    assert sorted(images(items)) == sorted([srv.url("/pacs/CT_small.dcm"), srv.url("/pacs/scan-2.png"),
                                            srv.url("/pacs/big.jpg")])


WIKI = ('<html><body><figure><a href="/wiki/File:Chest.jpg" class="mw-file-description"><img src="/up/220px-Chest.jpg" '
        'srcset="/up/440px-Chest.jpg 2x"></a><figcaption>A chest X-ray</figcaption></figure>'
        '<p>See <a href="/wiki/File:Head_CT.png" title="File:Head CT.png">the head CT</a> and '
        '<a href="/forum/lightbox/knee.jpg">knee.jpg</a> (a viewer page); <a href="/up/gone.jpg">the original</a>.</p>'
        '</body></html>')


def test_links_named_like_images_that_lead_to_pages_are_notes(srv):
    """A wiki's thumbnails and text links go to its `File:X.jpg` pages, a forum's `.jpg` links to a viewer page:
    pages whose names end like an image's. Each gave an error row, "not an image: got an HTML page", one per
    picture of a Wikipedia article, though nothing on the page was missed; now a note. A link to a file that is not
    there (a 404) is still an error, and an <img> whose URL gives a page still is too."""
    viewer = "<html><body><img src='/up/440px-Chest.jpg'></body></html>"
    for path in ("/wiki/File:Chest.jpg", "/wiki/File:Head_CT.png", "/forum/lightbox/knee.jpg"):
        srv.add(path, viewer)
    srv.add("/up/440px-Chest.jpg", picture((200, 200, 200), "JPEG", (440, 500)), "image/jpeg")
    items = run(srv.add("/wiki/Chest_radiograph", WIKI))
    u = srv.url
    assert images(items) == [u("/up/440px-Chest.jpg")]
    note = f"a link to a page, not an image ({len(viewer)} bytes of HTML)"
    assert notes(items) == [(f"a #2 {u('/wiki/File:Chest.jpg')}", note), (f"a #3 {u('/wiki/File:Head_CT.png')}", note),
                            (f"a #4 {u('/forum/lightbox/knee.jpg')}", note)]
    errors = [(i.locator, i.error) for i in items if isinstance(i, ItemError) and not i.skipped]
    assert errors == [(f"a #5 {u('/up/gone.jpg')}", f"HTTP 404 Not Found for {u('/up/gone.jpg')}")]


PRELOADED = ('<html><head><link rel="preload" as="image" imagesrcset="/h/400.png 400w, /h/1200.png 1200w" '
             'imagesizes="100vw"></head><body><img src="/h/400.png" srcset="/h/400.png 400w, /h/1200.png 1200w" '
             'sizes="300px" alt="hero"></body></html>')


@requires_browser
def test_a_rendered_preload_of_another_size_of_a_shown_picture_is_not_a_second_image(srv):
    """A news page preloads its hero with imagesizes unlike the <img>'s sizes: the browser loaded the 1200w
    candidate for the preload and showed the 400w one. The preload's, loaded for no element, came out as a second
    image ("response #2") of the one picture."""
    srv.add("/h/400.png", picture((120, 60, 30), size=(400, 225)), "image/png")
    srv.add("/h/1200.png", picture((121, 61, 31), size=(1200, 675)), "image/png")
    items = list(open_input(srv.add("/news.html", PRELOADED), Limits(**RENDER)))
    assert images(items) == [srv.url("/h/400.png")], items


def test_a_links_file_name_is_read_from_its_path_with_the_links_whole_text(srv):
    """A link is read for the file its path names, whatever its query (a download link); a viewer whose query
    names a file is not followed; the link's text is all its words, through nested tags, on one line. An <img>
    whose URL gives a page is still an error: only a link may lead to a page; a link that gives neither a page
    nor an image (an expired link's JSON) is an error too (mutation round s32_mut2)."""
    u = srv.url
    srv.add("/f/big.jpg", picture((160, 80, 60), "JPEG", (800, 600)), "image/jpeg")
    srv.add("/f/view.php", "<html><body>a viewer</body></html>")
    srv.add("/f/page.png", "<html><body>not a picture</body></html>")
    srv.add("/f/odd.png", '{"error": "link expired"}', "application/json")
    url = srv.add("/f/list.html", '<html><body><a href="big.jpg?download=1"><b>Chest</b>\n   PA, 5 December.jpg</a> '
                                  '<a href="view.php?f=scan.png">scan.png</a> <img src="page.png"> '
                                  '<a href="odd.png">odd.png</a></body></html>')
    items = run(url)
    read = [i for i in items if isinstance(i, ImageItem)]
    assert images(items) == [u("/f/big.jpg?download=1")], items
    assert read[0].metadata["alt"] == "Chest PA, 5 December.jpg"
    assert srv.hits["/f/view.php"] == 0
    errors = [(i.locator, i.error) for i in items if isinstance(i, ItemError) and not i.skipped]
    assert [e[1].split(" (")[0] for e in errors] == ["not an image: got an HTML page",
                                                     "not an image: got application/json"], items


@pytest.mark.parametrize("why", ["cancelled", "no browser"])
def test_a_render_that_fails_after_a_stop_or_without_a_browser_reads_nothing_more(srv, monkeypatch, why):
    """The fallback to the images the HTML names is for a render that broke down: not when the run was given
    up (it would fetch on after the stop), nor when the browser cannot start here (mutation round s32_mut2)."""
    import threading

    from medimg.sources import Context

    stop = threading.Event()
    missing = "rendering needs Chromium at /nowhere" if why == "no browser" else None

    def fails(url, limits, cancel=None):
        if why == "cancelled":
            stop.set()
            raise browser.BrowserError("rendering stopped: the run was stopped")
        raise browser.BrowserError(missing)

    monkeypatch.setattr(browser, "collect", fails)
    monkeypatch.setattr(browser, "available", lambda: missing)
    srv.add("/a.png", picture((0, 150, 0)), "image/png")
    url = srv.add("/p.html", "<html><body><img src=a.png></body></html>")
    limits = Limits(allow_private=True, render=True)
    items = list(open_input(url, limits, ctx=Context(limits, cancel=stop)))
    assert len(items) == 1 and isinstance(items[0], ItemError), items
    assert "read without rendering" not in items[0].error and srv.hits["/a.png"] == 0
