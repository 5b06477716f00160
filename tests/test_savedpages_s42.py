"""Web pages saved as one file (MHTML from Chrome, Edge or Word; Safari's .webarchive): the page's images are read
from the copies the file holds, in page order, and nothing is fetched."""

import base64
import io
import plistlib
import random

from PIL import Image

from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input
from webserver import WebServer


def picture(size: tuple[int, int], seed: int, fmt: str = "JPEG") -> bytes:
    rng = random.Random(seed)
    im = Image.frombytes("L", size, bytes(rng.randrange(256) for _ in range(size[0] * size[1]))).convert("RGB")
    out = io.BytesIO()
    im.save(out, fmt)
    return out.getvalue()


def items(data: bytes, name: str, **limits) -> list:
    return list(open_input(Blob(origin=name, data=data, name=name), Limits(**limits)))


def shown(got: list) -> list[tuple[str, tuple[int, int]]]:
    return [(" ".join(i.locator.split()[:2]), (i.width, i.height)) for i in got if isinstance(i, ImageItem)]


def notes(got: list) -> list[str]:
    return [i.error for i in got if isinstance(i, ItemError)]


def part(headers: dict, body: bytes) -> str:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"{head}Content-Transfer-Encoding: base64\r\n\r\n{base64.encodebytes(body).decode()}"


def mhtml(page_url: str, html: str, resources: list[tuple[str, str, bytes]], blink: bool = True) -> bytes:
    """An MHTML file as Chrome's "Webpage, Single File" writes it (or, without `blink`, as Word does)."""
    b = "----MultipartBoundary--x"
    top = ("From: <Saved by Blink>\r\nSnapshot-Content-Location: " + page_url + "\r\nSubject: Case\r\n"
           "Date: Sun, 6 Dec 2026 10:00:00 GMT\r\n") if blink else ""
    out = [f"{top}MIME-Version: 1.0\r\nContent-Type: multipart/related;\r\n\ttype=\"text/html\";\r\n"
           f"\tboundary=\"{b}\"\r\n\r\n",
           f"--{b}\r\n" + part({"Content-Type": "text/html", "Content-Location": page_url}, html.encode())]
    for url, ctype, body in resources:
        key = "Content-ID" if url.startswith("<") else "Content-Location"
        out.append(f"--{b}\r\n" + part({"Content-Type": ctype, key: url}, body))
    return ("".join(out) + f"--{b}--\r\n").encode()


def webarchive(page_url: str, html: str, resources: list[tuple[str, str, bytes]], frames=()) -> bytes:
    def res(url, ctype, body):
        return {"WebResourceData": body, "WebResourceMIMEType": ctype, "WebResourceURL": url}

    def archive(url, markup, subs, subframes=()):
        return {"WebMainResource": {**res(url, "text/html", markup.encode()), "WebResourceTextEncodingName": "UTF-8",
                                    "WebResourceFrameName": ""},
                "WebSubresources": [res(*r) for r in subs], "WebSubframeArchives": list(subframes)}

    return plistlib.dumps(archive(page_url, html, resources, [archive(*f) for f in frames]), fmt=plistlib.FMT_BINARY)


PAGE = ('<!DOCTYPE html><html><head><meta property="og:image" content="{u}/fig/f1-large.jpg">'
        '<link rel="stylesheet" href="{u}/css/site.css"></head><body>'
        '<img src="{u}/logo.png" alt="Journal">'
        '<figure><a href="{u}/fig/f1-large.jpg"><img src="/fig/f1.jpg" alt="Figure 1"></a></figure>'
        '<figure><img src="fig/f2-300.jpg" srcset="fig/f2-300.jpg 300w, fig/f2-900.jpg 900w" alt="Figure 2">'
        '</figure><figure><img src="{u}/fig/f3.jpg#zoom" alt="Figure 3"></figure>'
        '<div class="hero"></div></body></html>')


def saved_resources(u: str) -> list[tuple[str, str, bytes]]:
    return [(f"{u}/logo.png", "image/png", picture((10, 10), 1, "PNG")),
            (f"{u}/fig/f1.jpg", "image/jpeg", picture((150, 120), 2)),
            (f"{u}/fig/f2-300.jpg", "image/jpeg", picture((300, 200), 3)),  # the size the browser loaded
            (f"{u}/fig/f3.jpg", "image/jpeg", picture((200, 180), 4)),
            (f"{u}/css/site.css", "text/css", b".hero{background:url(../img/hero.jpg)}"),
            (f"{u}/img/hero.jpg", "image/jpeg", picture((640, 200), 5))]  # the largest file


EXPECTED = [("img #2", (150, 120)), ("img #3", (300, 200)), ("img #4", (200, 180)), ("resource #5", (640, 200))]


def test_a_page_chrome_saved_as_mhtml_gives_each_picture_once_from_the_file_and_fetches_nothing():
    with WebServer() as srv:  # the site the page came from: every image there too, so a fetch would be seen
        u = srv.url("").rstrip("/")
        for url, ctype, body in saved_resources(u):
            srv.add(url[len(u):], body, ctype)
        srv.add("/fig/f1-large.jpg", picture((600, 480), 2), "image/jpeg")
        srv.add("/fig/f2-900.jpg", picture((900, 600), 3), "image/jpeg")
        got = items(mhtml(f"{u}/case.html", PAGE.format(u=u), saved_resources(u)), "Case report.mhtml",
                    allow_private=True)
        assert sum(srv.hits.values()) == 0, srv.hits
    assert shown(got) == EXPECTED
    img = [i for i in got if isinstance(i, ImageItem)]
    assert img[0].locator == f"img #2 {u}/fig/f1.jpg" and img[0].metadata["alt"] == "Figure 1"
    assert img[3].locator == f"resource #5 {u}/img/hero.jpg"  # a stylesheet's background, not named by the HTML
    said = notes(got)
    assert "decoration: 10x10 is below min_side 64" in said
    assert "1 image the page names is not in the MHTML file and not fetched (a saved page is read as saved)" in said
    assert not any("e-mail" in n or "text part" in n for n in said)


def test_a_safari_webarchive_gives_its_pictures_and_its_frames_ones():
    with WebServer() as srv:
        u = srv.url("").rstrip("/")
        frame = (f"{u}/viewer.html", f'<img src="{u}/fig/f6.png">', [(f"{u}/fig/f6.png", "image/png",
                                                                       picture((140, 140), 6, "PNG"))])
        page = PAGE.format(u=u).replace("</body>", f'<iframe src="{u}/viewer.html"></iframe></body>')
        got = items(webarchive(f"{u}/case.html", page, saved_resources(u), [frame]), "Case report.webarchive",
                    allow_private=True)
        assert sum(srv.hits.values()) == 0, srv.hits
    # the frame is #5 (a note), so the file's other images follow it
    assert shown(got) == EXPECTED[:3] + [("resource #6", (640, 200)), ("resource #7", (140, 140))]
    assert any(n.startswith("an embedded page, not read: its images are read from the Safari web archive")
               for n in notes(got))


def test_a_word_or_explorer_mht_with_file_urls_and_content_ids_is_read():
    html = ('<html><body><p>Findings</p><img src="Report_files/image001.jpg" alt="scan">'
            '<img src="cid:image002@01DA"></body></html>')
    data = mhtml("file:///C:/Users/dr/Report.htm", html,
                 [("file:///C:/Users/dr/Report_files/image001.jpg", "image/jpeg", picture((256, 200), 7)),
                  ("<image002@01DA>", "image/jpeg", picture((180, 160), 8))], blink=False)
    got = items(data, "Report.mht")
    assert shown(got) == [("img #1", (256, 200)), ("img #2", (180, 160))]  # in its place (session 44)
    assert [i.locator for i in got if isinstance(i, ImageItem)][0] == \
        "img #1 file:///C:/Users/dr/Report_files/image001.jpg"


def test_damaged_or_oversized_saved_pages_are_one_error_each_not_a_crash():
    u = "https://journal.example"
    whole = webarchive(f"{u}/case.html", PAGE.format(u=u), saved_resources(u))
    cut = items(whole[: len(whole) // 2], "cut.webarchive")
    assert [type(i) for i in cut] == [ItemError] and "could not read this Safari web archive" in cut[0].error
    cap = len(saved_resources(u)[-1][2]) - 1  # the background is the largest file
    big = items(whole, "case.webarchive", max_download_bytes=cap)
    assert [e.locator for e in big if isinstance(e, ItemError) and f"over the cap of {cap}" in e.error] == \
        [f"resource #5 {u}/img/hero.jpg"]
    assert len(shown(big)) == 3
    capped = items(mhtml(f"{u}/case.html", PAGE.format(u=u), saved_resources(u)), "c.mhtml", max_images_per_input=2)
    assert len([i for i in capped if isinstance(i, ImageItem)]) == 1  # #1 is the logo (a decoration note)
    assert any("more images were not read (max_images_per_input = 2)" in n for n in notes(capped))


def test_an_email_with_an_html_body_is_still_an_email():
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.org", "b@example.org", "scan"
    msg.set_content("see")
    msg.add_alternative('<p>see</p><img src="cid:scan@x">', subtype="html")
    msg.get_payload()[1].add_related(picture((120, 100), 9), "image", "jpeg", cid="<scan@x>", filename="scan.jpg")
    got = items(msg.as_bytes(), "letter.eml")
    assert [i.origin for i in got if isinstance(i, ImageItem)] == ["letter.eml:scan.jpg"]
