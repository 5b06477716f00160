"""Each cap at its edge: an input with exactly N images (pages, …) under a cap of N is read whole and said so;
one more and a note names the cap."""

import io

import numpy as np
import pymupdf
import pytest
from PIL import Image
from typer.testing import CliRunner

from medimg.cli import app
from medimg.sources import Blob, ImageItem, ItemError, Limits, open_inputs
from medimg.sources import pdf as pdf_source

runner = CliRunner()


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _pdf(n: int, per_page: int, attach: bytes | None = None) -> bytes:
    doc = pymupdf.open()
    for i in range(n):
        if i % per_page == 0:
            page = doc.new_page(width=600, height=800)
        k = i % per_page
        page.insert_image(pymupdf.Rect(20 + k * 140, 20, 140 + k * 140, 140), stream=_png(i))
    if attach is not None:
        doc.embfile_add("scan.png", attach, filename="scan.png")
    return doc.tobytes()


def _read(data: bytes, name: str, **limits):
    items = list(open_inputs([Blob(origin=name, data=data)], limits=Limits(**limits)))
    return (sum(isinstance(i, ImageItem) for i in items),
            [i.error for i in items if isinstance(i, ItemError)])


@pytest.mark.parametrize("per_page", [1, 4])
def test_a_pdf_with_exactly_the_cap_of_images_is_not_said_cut(per_page):
    assert _read(_pdf(3, per_page), "a.pdf", max_images_per_input=3) == (3, [])
    assert _read(_pdf(2, per_page), "a.pdf", max_images_per_input=3) == (2, [])
    assert _read(_pdf(4, per_page), "a.pdf", max_images_per_input=3) == (
        3, ["stopped after 3 images (max_images_per_input)"])


def test_a_pdf_at_its_cap_does_not_decode_the_image_past_it(monkeypatch):
    decoded = []
    real = pdf_source._image_item
    monkeypatch.setattr(pdf_source, "_image_item", lambda *a, **k: decoded.append(a[3]) or real(*a, **k))
    assert _read(_pdf(5, 5), "a.pdf", max_images_per_input=3)[0] == 3
    assert decoded == ["page 1, image 1", "page 1, image 2", "page 1, image 3"]


def test_a_pdf_with_the_cap_of_images_and_a_file_attached_says_the_file_was_not_read():
    assert _read(_pdf(3, 4, attach=_png(9)), "a.pdf", max_images_per_input=3) == (
        3, ["stopped after 3 images (max_images_per_input)"])
    assert _read(_pdf(2, 4, attach=_png(9)), "a.pdf", max_images_per_input=3)[0] == 3


def test_the_cli_says_nothing_cut_for_a_pdf_with_exactly_max_images(tmp_path):
    (tmp_path / "exact.pdf").write_bytes(_pdf(3, 1))
    (tmp_path / "over.pdf").write_bytes(_pdf(4, 1))
    res = runner.invoke(app, ["classify", str(tmp_path / "exact.pdf"), "--max-images", "3"])
    assert res.exit_code == 0, res.output
    assert "3 images classified, 0 errors\n" in res.output and "not read to the end" not in res.output
    res = runner.invoke(app, ["classify", str(tmp_path / "over.pdf"), "--max-images", "3"])
    assert "1 input not read to the end" in res.output
    assert "stopped after 3 images (max_images_per_input) — raise it with --max-images" in res.output


def _data_uri(seed: int) -> str:
    import base64

    buf = io.BytesIO()  # a gradient: small, as a request to /api/classify-url takes at most 64 KB
    Image.fromarray(np.add.outer(np.arange(96), np.arange(96) * seed).astype(np.uint8)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_the_page_url_box_takes_a_data_uri_and_quotes_a_long_non_address_short():
    from medimg.server.ui import _web_address

    uri = _data_uri(1)
    assert _web_address(uri) == (uri, None)
    assert _web_address("DATA:" + uri[5:]) == ("DATA:" + uri[5:], None)
    text = "iVBORw0KGgo" + "A" * 5000  # base64 pasted without its data: prefix
    url, problem = _web_address(text)
    assert url == text and problem.startswith("“iVBORw0KGgoAAAA") and len(problem) < 160, problem
    assert "is not a web address" in problem


def test_a_data_uri_input_at_and_over_max_download_bytes_names_the_cap():
    import base64

    data = _png(3)
    uri = "data:image/png;base64," + base64.b64encode(data).decode()

    def read(cap):
        return list(open_inputs([uri], limits=Limits(max_download_bytes=cap)))

    assert [type(i) for i in read(len(data))] == [ImageItem]
    (err,) = read(len(data) - 1)
    assert err.error == f"data: URI too large ({len(data):,} bytes, over the max_download_bytes cap of " \
                        f"{len(data) - 1:,} bytes)"
    (err,) = read(100)  # refused from its length, before it is decoded
    assert "over the max_download_bytes cap of 100 bytes" in err.error


@pytest.mark.parametrize("name, body", [
    ("a.html", lambda uris: "<html><body>" + "".join(f'<img src="{u}">' for u in uris) + "</body></html>"),
    ("a.svg", lambda uris: '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
                           'width="900" height="100">' + "".join(
                               f'<image x="{k * 100}" width="96" height="96" xlink:href="{u}"/>'
                               for k, u in enumerate(uris)) + "</svg>"),
])
def test_one_image_past_the_cap_is_said_in_the_singular(name, body):
    import base64

    uris = ["data:image/png;base64," + base64.b64encode(_png(k)).decode() for k in range(5)]
    what = "image" if name == "a.html" else "embedded picture"
    assert _read(body(uris[:3]).encode(), name, max_images_per_input=3) == (3, [])
    assert _read(body(uris[:4]).encode(), name, max_images_per_input=3) == (
        3, [f"1 more {what} was not read (max_images_per_input = 3)"])
    assert _read(body(uris).encode(), name, max_images_per_input=3)[1] == [
        f"2 more {what}s were not read (max_images_per_input = 3)"]
