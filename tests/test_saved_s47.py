"""Saved web pages (s47): a reference going up past every folder is named as written and refused as leaving the
page's folder, not cut at the root into a path from the site's root; an MHTML file cut off says so."""

import base64
import io

from PIL import Image

from medimg.sources import Blob, ImageItem, ItemError, open_input


def _png(colour=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (200, 160), colour).save(out, "PNG")
    return out.getvalue()


def _rows(items):
    return [(i.locator, None if isinstance(i, ImageItem) else i.error) for i in items]


def test_a_reference_up_past_every_folder_is_named_as_written_and_refused_as_outside(tmp_path):
    page = tmp_path / "page.html"
    up = "../" * (len(tmp_path.parts) + 2)  # more "../" than the page's folder has: the file system stops at "/"
    page.write_text(f'<html><body><img src="{up}etc/x.png"><img src="/img/a.png"></body></html>')
    rows = _rows(open_input(str(page)))
    assert rows[0] == (f"img #1 {up}etc/x.png", f"refused '{up}etc/x.png': it points outside the HTML file's folder")
    # a path from the site's root is still one
    assert rows[1][0] == "img #2 /img/a.png" and "starts at the web site's root" in rows[1][1]


def test_a_stylesheet_up_past_every_folder_is_refused_as_outside(tmp_path):
    page = tmp_path / "page.html"
    up = "../" * (len(tmp_path.parts) + 2)
    page.write_text(f'<html><head><link rel=stylesheet href="{up}etc/site.css"></head><body><p class=a>x</p>'
                    '</body></html>')
    notes = [i.error for i in open_input(str(page)) if isinstance(i, ItemError)]
    assert any(f"refused '{up}etc/site.css': it points outside the HTML file's folder" in n for n in notes), notes


def test_an_uploaded_page_names_a_reference_up_past_its_folder_as_written():
    data = b'<html><body><img src="../../../../../x.png"></body></html>'
    (item,) = open_input(Blob(origin="page.html", data=data, name="page.html"))
    assert item.locator == "img #1 ../../../../../x.png" and item.skipped


def test_a_reference_inside_the_folder_is_still_read(tmp_path):
    (tmp_path / "p_files").mkdir()
    (tmp_path / "p_files" / "a.png").write_bytes(_png())
    page = tmp_path / "sub" / "p.html"
    page.parent.mkdir()
    page.write_text('<html><body><img src="../p_files/a.png"><img src="./x/../../p_files/a.png"></body></html>')
    rows = _rows(open_input(str(page)))
    assert rows[0] == ("img #1 ../p_files/a.png",
                       "refused '../p_files/a.png': it points outside the HTML file's folder")
    (tmp_path / "sub" / "p_files").mkdir()
    (tmp_path / "sub" / "p_files" / "a.png").write_bytes(_png())
    page.write_text('<html><body><img src="p_files/a.png"></body></html>')
    (item,) = open_input(str(page))
    assert isinstance(item, ImageItem) and item.locator == "img #1 p_files/a.png"


def _mhtml(cut: bool) -> bytes:
    body = base64.encodebytes(_png()).decode()  # base64, as Chrome writes it
    text = ("From: <Saved by Blink>\r\nSnapshot-Content-Location: https://example.org/case.html\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/related; type=\"text/html\"; boundary=\"B\"\r\n\r\n"
            "--B\r\nContent-Type: text/html\r\nContent-Location: https://example.org/case.html\r\n\r\n"
            '<html><body><img src="a.png"><img src="b.png"></body></html>\r\n'
            "--B\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
            f"Content-Location: https://example.org/a.png\r\n\r\n{body}\r\n"
            "--B\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
            f"Content-Location: https://example.org/b.png\r\n\r\n{body}\r\n--B--\r\n")
    data = text.encode()
    return data[:data.index(b"Content-Location: https://example.org/b.png") + 20] if cut else data


def test_an_mhtml_file_cut_off_says_so():
    items = list(open_input(Blob(origin="case.mhtml", data=_mhtml(cut=True))))
    errors = [i.error for i in items if isinstance(i, ItemError) and not i.skipped]
    assert errors[0] == ("this MHTML file is cut off: it ends inside a part, without its closing boundary (the "
                         "resources after the cut are lost)")
    assert [i.locator for i in items if isinstance(i, ImageItem)] == ["img #1 https://example.org/a.png"]
    assert errors[1:] == ["not an image: got image/png (0 bytes)"]  # the part the cut is in: img #2


def test_a_whole_mhtml_file_is_no_error():
    items = list(open_input(Blob(origin="case.mhtml", data=_mhtml(cut=False))))
    assert not [i for i in items if isinstance(i, ItemError) and not i.skipped]
    assert [i.locator for i in items] == ["img #1 https://example.org/a.png", "img #2 https://example.org/b.png"]
