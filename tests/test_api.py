"""The HTTP API: uploads of every kind, URL checks, size caps, time limits, errors, concurrency, exports."""

from __future__ import annotations

import csv
import io
import json
import socket
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from medimg.model.classifier import ASSETS
from medimg.pipeline import Record
from medimg.server import ServerConfig, Worker, create_app
from medimg.server.export import relabeled, safe_cell, to_csv, to_json
from medimg.server.ui import _caption, _in_range, _keep_uploads, _mine, _row, _web_address
from medimg.sources import Blob

DICOM_DIR = Path(__import__("pydicom").__file__).parent / "data" / "test_files"
VERDICTS = {"medical", "non-medical", "uncertain"}


def picture(seed: int, size=(120, 90)) -> Image.Image:
    img = Image.new("RGB", size, ((seed * 70) % 256, (seed * 130) % 256, (seed * 40) % 256))
    draw = ImageDraw.Draw(img)
    for i in range(6):
        draw.ellipse([i * 15, i * 9, i * 15 + 40, i * 9 + 30], outline=(255, 255, 255), width=3)
    return img


def png(seed: int = 0, size=(120, 90)) -> bytes:
    buf = io.BytesIO()
    picture(seed, size).save(buf, "PNG")
    return buf.getvalue()


def jpeg(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    picture(seed).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def pdf(n_images: int, per_page: int = 2) -> bytes:
    import pymupdf

    doc = pymupdf.open()
    for i in range(n_images):
        if i % per_page == 0:
            page = doc.new_page(width=595, height=842)
        y = 60 + (i % per_page) * 300
        page.insert_text((50, y - 10), f"Figure {i + 1}", fontsize=11)
        page.insert_image(pymupdf.Rect(50, y, 330, y + 210), stream=png(i + 1, (160, 120)))
    data = doc.tobytes()
    doc.close()
    return data


def zipped(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def model_dir(request):
    """The shipped model when it is in the package, else the tiny test model (mechanics only)."""
    if (ASSETS / "labels.json").exists():
        return None
    return request.getfixturevalue("tiny_model_dir")


@pytest.fixture(scope="module")
def worker(model_dir):
    return Worker(ServerConfig(model_dir=model_dir))


@pytest.fixture(scope="module")
def client(worker):
    cfg = ServerConfig(model_dir=worker.config.model_dir, max_upload_bytes=3 * 1024 * 1024)
    return TestClient(create_app(cfg, Worker(cfg, worker.classifier)))


@pytest.fixture(scope="module")
def private_client(worker):
    cfg = ServerConfig(model_dir=worker.config.model_dir, allow_private=True)
    return TestClient(create_app(cfg, Worker(cfg, worker.classifier), ui=False))


def check_image_record(rec: dict, labels: list[str]) -> None:
    assert rec["error"] is None, rec
    assert rec["label"] in labels
    assert rec["verdict"] in VERDICTS
    assert 0.0 <= rec["confidence"] <= 1.0 and 0.0 <= rec["p_medical"] <= 1.0
    assert rec["width"] > 0 and rec["height"] > 0


def test_a_server_that_cannot_render_says_so_before_any_fetch(worker, monkeypatch):
    """Without Chromium (or Playwright) render was taken, and each URL came back as an error row after its
    fetch; the page offered the box. Now /api/health says render is off, asking for it is a 501 naming what
    is missing, and the page does not show the box."""
    from medimg.sources import browser

    monkeypatch.setattr(browser, "CHROMIUM", "/nonexistent/chromium")
    cfg = ServerConfig(model_dir=worker.config.model_dir, allow_private=True)
    c = TestClient(create_app(cfg, Worker(cfg, worker.classifier)))
    assert c.get("/api/health").json()["render"] is False
    r = c.post("/api/classify-url", json={"url": "http://127.0.0.1:9/", "render": True})
    assert r.status_code == 501
    assert r.json()["error"] == ("this server cannot render pages: rendering needs Chromium at /nonexistent/chromium: "
                                 "install it with `apt-get install -y chromium`, or name another with the "
                                 "MEDIMG_CHROMIUM environment variable")
    boxes = [comp["props"] for comp in c.get("/config").json()["components"]
             if comp.get("props", {}).get("label", "").startswith("Run the page's JavaScript")]
    assert boxes and boxes[0]["visible"] is False


def test_health_names_the_model(client, worker):
    r = client.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["model"]["labels"] == worker.classifier.labels
    assert body["model"]["input_size"] == worker.classifier.input_size
    assert body["model"]["name"] and body["model"]["version"]
    assert body["model"]["threshold"] == worker.classifier.threshold
    assert body["render"] is (__import__("medimg.sources.browser").sources.browser.available() is None)
    assert client.head("/api/health").status_code == 200


def test_the_openapi_schema_builds_without_warnings(client):
    """Every operation once in the schema (a GET+HEAD route used to warn of a duplicate operation id)."""
    import warnings

    client.app.openapi_schema = None  # built afresh
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        schema = client.get("/openapi.json").json()
    assert list(schema["paths"]["/api/health"]) == ["get"]


def test_classify_images_zip_pdf_and_a_broken_file(client, worker):
    files = [
        ("files", ("one.png", png(1), "image/png")),
        ("files", ("two.jpg", jpeg(2), "image/jpeg")),
        ("files", ("scans.zip", zipped({"a/x.png": png(3), "a/y.png": png(4)}), "application/zip")),
        ("files", ("report.pdf", pdf(3), "application/pdf")),
        ("files", ("broken.png", png(5)[:60], "image/png")),
    ]
    r = client.post("/api/classify", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    results = body["results"]
    images = [x for x in results if x["error"] is None]
    assert len(images) == 2 + 2 + 3
    for rec in images:
        check_image_record(rec, worker.classifier.labels)
    assert [x["input"] for x in images[:2]] == ["one.png", "two.jpg"]
    assert {x["input"] for x in images[2:4]} == {"scans.zip:a/x.png", "scans.zip:a/y.png"}
    pdf_recs = [x for x in images if x["input"] == "report.pdf"]
    assert [x["locator"].split(",")[0] for x in pdf_recs] == ["page 1", "page 1", "page 2"]
    broken = [x for x in results if x["input"] == "broken.png"]
    assert len(broken) == 1 and broken[0]["error"] and broken[0]["label"] is None
    assert set(results[0]) == {"input", "locator", "label", "medical", "confidence", "p_medical", "verdict",
                               "width", "height", "error"}  # the same fields as `medimg classify --format json`
    s = body["summary"]
    assert s["images"] == 7 and s["errors"] == 1
    assert sum(s["verdicts"].values()) == 7


def test_dicom_tags_come_back_with_full(client):
    data = (DICOM_DIR / "CT_small.dcm").read_bytes()
    r = client.post("/api/classify?full=true", files=[("files", ("ct.dcm", data, "application/dicom"))])
    assert r.status_code == 200, r.text
    (rec,) = r.json()["results"]
    assert rec["format"] == "DICOM" and rec["source"] == "ct.dcm"  # as the CLI's --full (it was left out)
    model = client.get("/api/health").json()["model"]
    assert rec["model"] == f"{model['name']} {model['version']}"  # which model release made it
    assert rec["metadata"]["Modality"] == "CT"
    assert abs(sum(rec["probs"].values()) - 1.0) < 1e-3


def test_a_detached_header_uploaded_with_its_data_file(client, tmp_path):
    """An .mhd and the .raw it names, uploaded in one request, give the volume's slice; the .mhd alone gives
    an error that says what is missing."""
    from test_volumes import detached_mha, head_volume

    header = detached_mha(tmp_path, head_volume())
    pair = [("files", ("v.mhd", header.read_bytes(), "application/octet-stream")),
            ("files", ("v.raw", (tmp_path / "v.raw").read_bytes(), "application/octet-stream"))]
    r = client.post("/api/classify?full=true", files=pair)
    assert r.status_code == 200, r.text
    (res,) = r.json()["results"]  # the .raw itself is a skipped note, not shown
    assert res["input"] == "v.mhd" and res["error"] is None and res["format"] == "MetaImage"
    r = client.post("/api/classify", files=pair[:1])
    (alone,) = r.json()["results"]
    assert "v.raw: not among the files given with it" in alone["error"]


def test_two_series_pairs_with_the_same_names_each_read_their_own_data(client, tmp_path):
    """Two exports' v.mhd + v.raw uploaded together: the second header reads the second data file (it used to
    read the first one's under a new name), and both data files are notes, not errors."""
    from test_volumes import detached_mha, head_volume

    files = []
    for k, vol in enumerate((head_volume(), head_volume()[:, :, :6] * 0 + 700)):  # the second: flat, 6 slices
        folder = tmp_path / str(k)
        folder.mkdir()
        header = detached_mha(folder, vol)
        files += [("files", ("v.mhd", header.read_bytes())), ("files", ("v.raw", (folder / "v.raw").read_bytes()))]
    r = client.post("/api/classify?full=true&show_skipped=true", files=files)
    assert r.status_code == 200, r.text
    res = {x["input"]: x for x in r.json()["results"]}
    assert set(res) == {"v.mhd", "v.raw", "v (2).mhd", "v (2).raw"}
    assert res["v.mhd"]["metadata"]["dims"] != res["v (2).mhd"]["metadata"]["dims"]
    assert res["v.raw"]["error"] == "skipped: the data file of v.mhd, read with it"
    assert res["v (2).raw"]["error"] == "skipped: the data file of v (2).mhd, read with it"


def test_uploaded_videos(client):
    """An MP4 clip and a DICOM video endoscopy file, uploaded: one frame each, the DICOM one named by index."""
    pytest.importorskip("av")
    from pydicom.uid import MPEG4HP41
    from test_video import video_bytes, video_dicom

    files = [("files", ("clip.mp4", video_bytes(frames=30, rate=10), "video/mp4")),
             ("files", ("scope.dcm", video_dicom(MPEG4HP41, "libx264", frames=12), "application/dicom"))]
    r = client.post("/api/classify?full=true", files=files)
    assert r.status_code == 200, r.text
    clip, scope = r.json()["results"]
    assert (clip["input"], clip["locator"], clip["error"]) == ("clip.mp4", "frame 16 at 0:01.5", None)
    assert clip["format"] == "video (mp4, h264)" and clip["metadata"]["fps"] == 10
    assert (scope["locator"], scope["format"], scope["metadata"]["Modality"]) == ("frame 7", "DICOM", "ES")


def test_threshold_parameter_changes_verdicts_only(client):
    files = [("files", ("one.png", png(1), "image/png"))]
    strict = client.post("/api/classify?threshold=0.999", files=files).json()["results"][0]
    loose = client.post("/api/classify?threshold=0.5", files=files).json()["results"][0]
    assert strict["p_medical"] == loose["p_medical"] and strict["label"] == loose["label"]
    assert loose["verdict"] in ("medical", "non-medical")
    assert strict["verdict"] == ("uncertain" if 0.001 < strict["p_medical"] < 0.999 else loose["verdict"])
    assert client.post("/api/classify?threshold=2", files=files).status_code == 422
    # the same as a form field beside the files, as `curl -F threshold=…` sends it
    assert client.post("/api/classify", files=files, data={"threshold": "0.999"}).json()["results"][0] == strict
    assert client.post("/api/classify", files=files, data={"threshold": "1.5"}).status_code == 422


def test_every_upload_parameter_comes_as_a_query_parameter_or_a_form_field(client, tmp_path):
    """full, show_skipped and threshold as form fields beside the files (curl -F), in the query, or in both
    alike give the same answer (full and show_skipped were read from the query alone); given twice with
    different values, they are a 422 rather than one of them winning unseen."""
    from test_volumes import detached_mha, head_volume

    header = detached_mha(tmp_path, head_volume())
    files = [("files", ("v.mhd", header.read_bytes())), ("files", ("v.raw", (tmp_path / "v.raw").read_bytes()))]
    by_query = client.post("/api/classify?full=true&show_skipped=true&threshold=0.9", files=files)
    by_form = client.post("/api/classify", files=files,
                          data={"full": "true", "show_skipped": "true", "threshold": "0.9"})
    both = client.post("/api/classify?full=1&show_skipped=true&threshold=0.90", files=files,
                       data={"full": "true", "show_skipped": "yes", "threshold": "0.9"})
    assert by_query.status_code == by_form.status_code == both.status_code == 200, by_form.text
    assert by_form.json() == by_query.json() == both.json()
    header_rec, data_rec = by_form.json()["results"]
    assert header_rec["format"] == "MetaImage" and header_rec["probs"] and data_rec["skipped"] is True
    for query, form in (("threshold=0.9", {"threshold": "0.8"}), ("full=true", {"full": "false"}),
                        ("show_skipped=0", {"show_skipped": "1"})):
        r = client.post(f"/api/classify?{query}", files=files, data=form)
        name = query.split("=")[0]
        assert r.status_code == 422, (query, r.text)
        assert r.json()["error"].startswith(f"{name} is given twice with different values"), r.text
    assert client.post("/api/classify", files=files, data={"full": "maybe"}).status_code == 422


def test_every_url_parameter_comes_in_the_json_body_or_the_query(private_client):
    """threshold, render, full and show_skipped in the JSON body, in the query, or in both alike (a threshold in
    the query was ignored); different values are a 422, before anything is fetched."""
    from webserver import WebServer

    with WebServer() as srv:
        url = srv.add("/a.png", png(1), "image/png")
        options = {"threshold": 1, "full": True, "show_skipped": True, "render": False}
        by_body = private_client.post("/api/classify-url", json={"url": url, **options})
        by_query = private_client.post("/api/classify-url?threshold=1&full=true&show_skipped=true&render=false",
                                       json={"url": url})
        both = private_client.post("/api/classify-url?threshold=1.0&full=1", json={"url": url, **options})
        assert by_body.status_code == by_query.status_code == both.status_code == 200, by_query.text
        assert by_body.json() == by_query.json() == both.json()
        (rec,) = by_query.json()["results"]
        assert rec["probs"] and rec["format"]
        if 0 < rec["p_medical"] < 1:
            assert rec["verdict"] == "uncertain"  # at threshold 1
        fetched = srv.hits["/a.png"]
        for query, body in (("threshold=0.9", {"threshold": 0.6}), ("full=false", {"full": True}),
                            ("show_skipped=true", {"show_skipped": False}), ("render=true", {"render": False})):
            r = private_client.post(f"/api/classify-url?{query}", json={"url": url, **body})
            name = query.split("=")[0]
            assert r.status_code == 422, (query, r.text)
            assert r.json()["error"] == (f"{name} is given twice with different values, {query.split('=')[1]} in "
                                         f"the query and {_json_text(body[name])} in the JSON body: give it once")
        assert srv.hits["/a.png"] == fetched
        r = private_client.post("/api/classify-url?threshold=0.2", json={"url": url})
        assert r.status_code == 422 and "from 0.5 to 1" in r.json()["error"]


def _json_text(value) -> str:
    return json.dumps(value) if isinstance(value, bool) else f"{value:g}"


def test_no_files_is_a_readable_422(client):
    r = client.post("/api/classify")
    assert r.status_code == 422
    assert "no files were sent" in r.json()["error"]
    r = client.post("/api/classify", data={"other": "x"})
    assert r.status_code == 422 and "files" in r.json()["error"]


def test_too_many_files_and_non_file_parts_are_refused(worker):
    cfg = ServerConfig(model_dir=worker.config.model_dir, max_files=2)
    c = TestClient(create_app(cfg, Worker(cfg, worker.classifier), ui=False))
    r = c.post("/api/classify", files=[("files", (f"{i}.png", png(i), "image/png")) for i in range(3)])
    assert r.status_code == 400 and "Too many files" in r.json()["error"]
    r = c.post("/api/classify", files=[("files", ("", b"just text"))])
    assert r.status_code == 422 and "file upload" in r.json()["error"]
    r = c.post("/api/classify", content=b"junk", headers={"content-type": "multipart/form-data"})
    assert r.status_code == 400 and r.json()["error"]


def test_uploads_with_the_same_name_are_told_apart(client):
    """DICOM exports name files IM0001 in every series folder: each upload gets a name of its own."""
    files = [("files", ("IM0001", png(1), "image/png")), ("files", ("series2/IM0001", png(2), "image/png")),
             ("files", ("scan.v2.png", png(3), "image/png")), ("files", ("scan.v2.png", png(4), "image/png"))]
    r = client.post("/api/classify", files=files)
    assert r.status_code == 200, r.text
    assert [x["input"] for x in r.json()["results"]] == ["IM0001", "IM0001 (2)", "scan.v2.png", "scan (2).v2.png"]


def test_unique_names_never_takes_a_name_already_sent():
    from medimg.sources.files import unique_names

    assert unique_names(["a.dcm", "a.dcm", "a (2).dcm", ".h", ".h"]) == ["a.dcm", "a (3).dcm", "a (2).dcm", ".h",
                                                                          ".h (2)"]


def test_oversized_upload_is_413_before_the_body_is_read(client):
    big = b"\0" * (4 * 1024 * 1024)
    r = client.post("/api/classify", files=[("files", ("big.bin", big, "application/octet-stream"))])
    assert r.status_code == 413
    assert "at most 3 MB" in r.json()["error"]

    def chunks():  # no Content-Length: counted while streaming
        for _ in range(50):
            yield b"\0" * 100_000

    r = client.post("/api/classify", content=chunks(),
                    headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413 and "too large" in r.json()["error"]


def test_url_requests_are_checked(client):
    r = client.post("/api/classify-url", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["error"]
    r = client.post("/api/classify-url", json={"render": False})
    assert r.status_code == 422 and "url" in r.json()["error"]
    r = client.post("/api/classify-url", json={"url": "ftp://example.org/a.png"})
    assert r.status_code == 400 and "http" in r.json()["error"]
    r = client.post("/api/classify-url", json={"url": "file:///etc/passwd"})
    assert r.status_code == 400
    r = client.post("/api/classify-url")  # no body at all
    assert r.status_code == 422 and r.json()["error"].startswith("send a JSON object, e.g. {\"url\"")
    r = client.post("/api/classify-url", json={"url": "https://example.org/", "threshold": True})  # not 1.0
    assert r.status_code == 422 and r.json()["error"].startswith("threshold must be a number from 0.5 to 1")
    r = client.post("/api/classify-url", json={"url": "ftp://example.org/a.png", "threshold": 1})
    assert r.status_code == 400  # a whole number is a number


def test_private_url_refused_by_default_and_allowed_on_request(client, private_client, worker):
    from webserver import WebServer

    with WebServer() as srv:
        srv.add("/a.png", png(1), "image/png")
        srv.add("/b.jpg", jpeg(2), "image/jpeg")
        page = srv.add("/page.html", '<html><body><h1>Case</h1><img src="a.png" alt="first">'
                                     '<p>text</p><img src="/b.jpg"></body></html>')
        r = client.post("/api/classify-url", json={"url": page})
        assert r.status_code == 400
        assert "loopback" in r.json()["error"] and "--allow-private" in r.json()["error"]
        assert srv.hits["/page.html"] == 0  # refused before anything was fetched

        r = private_client.post("/api/classify-url", json={"url": page})
        assert r.status_code == 200, r.text
        images = [x for x in r.json()["results"] if x["error"] is None]
        assert len(images) == 2
        for rec in images:
            check_image_record(rec, worker.classifier.labels)
        assert all(x["input"] == page for x in images)


def test_a_url_that_cannot_be_fetched_is_its_error_record_whatever_the_failure(client, private_client, monkeypatch):
    """A host that does not resolve was a 400 while a refused connection or a 404 were a result with `error`:
    every failed fetch is now the URL's error record (200); 400 stays for requests the server refuses."""
    from webserver import WebServer

    real = socket.getaddrinfo

    def lookup(host, *args, **kwargs):
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)

    def check(c, url, why):
        r = c.post("/api/classify-url?full=true", json={"url": url})
        assert r.status_code == 200, (url, r.text)
        (rec,) = r.json()["results"]
        assert rec["input"] == url and rec["locator"] == "" and why in rec["error"] and rec["probs"] == {}, rec
        assert r.json()["summary"]["errors"] == 1

    check(client, "http://no-such-host.invalid/a.png", "cannot resolve host no-such-host.invalid")
    check(private_client, "https://no-such-host.invalid/", "cannot resolve host no-such-host.invalid")
    with WebServer() as srv:
        check(private_client, srv.url("/missing.png"), "404")
        gone = srv.url("/a.png")
    check(private_client, gone, "refused")  # nothing listens there any more
    r = client.post("/api/classify-url", json={"url": "http://no-such-host.invalid/a.png"})
    assert set(r.json()["results"][0]) == {"input", "locator", "label", "medical", "confidence", "p_medical",
                                           "verdict", "width", "height", "error"}


def test_refusals_name_the_servers_option_not_the_command_lines_or_pythons(client):
    """A private address is refused in the server's words, the option its operator can give, whether the URL
    is the request's (a 400) or an image of an uploaded page (the record's error)."""
    r = client.post("/api/classify-url", json={"url": "http://127.0.0.1:9/a.png"})
    assert r.status_code == 400
    page = b'<html><body><img src="http://127.0.0.1:9/a.png"></body></html>'
    r2 = client.post("/api/classify", files=[("files", ("page.html", page, "text/html"))])
    assert r2.status_code == 200, r2.text
    (rec,) = r2.json()["results"]
    for error in (r.json()["error"], rec["error"]):
        assert "loopback address (this server does not fetch private addresses; its operator can allow them by " \
               "starting it with medimg serve --allow-private)" in error, error
        assert "Limits(" not in error and "blocked unless allowed" not in error


def test_the_command_line_and_python_keep_their_own_words():
    from medimg.sources.net import BlockedAddress, resolve

    with pytest.raises(BlockedAddress, match=r"--allow-private, or Limits\(allow_private=True\)"):
        resolve("127.0.0.1", 80, False, 1.0)


@pytest.mark.parametrize("settings, words", [
    ({"max_upload_bytes": 0}, "max_upload_bytes (serve --max-upload-mb) must be at least 1, not 0"),
    ({"max_upload_bytes": -5 * 2**20}, "must be at least 1"),
    ({"request_timeout": -5}, "request_timeout (serve --request-timeout) must be a finite number of seconds above 0, not -5"),
    ({"request_timeout": 0}, "above 0"), ({"request_timeout": float("nan")}, "above 0"),
    ({"max_files": 0}, "max_files must be at least 1"), ({"max_jobs": 0}, "max_jobs must be at least 1"),
    ({"max_body_bytes": 0}, "max_body_bytes must be at least 1"),
    ({"graceful_timeout": -1}, "graceful_timeout (serve --graceful-timeout)"),
])
def test_settings_no_request_could_meet_stop_the_server_from_starting(worker, settings, words):
    """--max-upload-mb 0 started a server that answered 413 to every upload, --request-timeout -5 one that
    answered 504 to everything: such settings are a ValueError that says which and why."""
    with pytest.raises(ValueError) as refused:
        ServerConfig(**settings)
    assert words in str(refused.value)
    cfg = ServerConfig(model_dir=worker.config.model_dir)
    for name, value in settings.items():  # changed after the config was made: create_app checks again
        setattr(cfg, name, value)
    with pytest.raises(ValueError, match="must be"):
        create_app(cfg, Worker(cfg, worker.classifier), ui=False)


def test_time_limit_stops_a_request_with_a_clear_note(worker):
    """At the time limit the answer holds what was found, and a top-level note says why it stops short (it was a
    result row with an empty `input`, counted as an error)."""
    cfg = ServerConfig(model_dir=worker.config.model_dir, request_timeout=1e-6)
    from medimg.sources import Blob

    out = Worker(cfg, worker.classifier).run([Blob("a.png", png(1)), Blob("b.png", png(2)), Blob("c.png", png(3))])
    assert [r.input for r in out.records] == ["a.png"] and out.records[0].ok
    assert out.note == "stopped: the time limit of 1e-06 s per request was reached after 1 image; the results are " \
                       "those found by then"
    c = TestClient(create_app(cfg, Worker(cfg, worker.classifier), ui=False))
    r = c.post("/api/classify", files=[("files", (f"{i}.png", png(i))) for i in range(3)])
    assert r.status_code == 200, r.text
    body = r.json()
    # the files it never came to: a row each, saying so (the note alone left the client to find them)
    assert [(x["input"], x.get("error")) for x in body["results"]] == [
        ("0.png", None), ("1.png", "not read: the time limit was reached before it"),
        ("2.png", "not read: the time limit was reached before it")]
    assert body["summary"]["errors"] == 2 and body["summary"]["images"] == 1
    assert "time limit of 1e-06 s" in body["note"]
    schema = c.get("/openapi.json").json()["components"]["schemas"]["ClassifyResponse"]
    assert "note" in schema["properties"] and schema["required"] == ["results", "summary", "model", "threshold"]


def test_the_note_is_left_out_of_a_whole_answer(client):
    r = client.post("/api/classify", files=[("files", ("one.png", png(1)))])
    assert r.status_code == 200 and set(r.json()) == {"results", "summary", "model", "threshold"}


def test_openapi_docs_are_served_without_a_cdn(client):
    r = client.get("/docs")
    assert r.status_code == 200
    assert "/docs-static/swagger-ui-bundle.js" in r.text and "cdn." not in r.text
    assert client.get("/docs-static/swagger-ui-bundle.js").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/api/health", "/api/classify", "/api/classify-url"} <= set(spec["paths"])


def test_the_page_is_mounted_at_root(client):
    r = client.get("/")
    assert r.status_code == 200 and "<html" in r.text.lower()


# ------------------------------------------------------------------ a real server, several clients


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """The API app under uvicorn in a thread, on a free 127.0.0.1 port."""

    def __init__(self, app):
        import uvicorn

        self.url = f"http://127.0.0.1:{free_port()}"
        port = int(self.url.rsplit(":", 1)[1])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 120  # a loaded CI machine may take long; one that never starts fails here
        while not self.server.started:  # (it returned after 10 s, and the test failed later, in a confusing way)
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {self.url}")
            time.sleep(0.05)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def live_url(worker):
    cfg = ServerConfig(model_dir=worker.config.model_dir, max_upload_bytes=2 * 1024 * 1024)
    live = LiveServer(create_app(cfg, Worker(cfg, worker.classifier), ui=False))
    yield live.url
    live.close()


class SlowWorker(Worker):
    def run(self, *args, **kwargs):
        time.sleep(1.5)
        return super().run(*args, **kwargs)


def test_a_request_waiting_too_long_for_a_free_slot_gets_503(worker):
    cfg = ServerConfig(model_dir=worker.config.model_dir, max_jobs=1, request_timeout=0.4)
    live = LiveServer(create_app(cfg, SlowWorker(cfg, worker.classifier), ui=False))
    try:
        first, second = two_uploads(live.url)
        assert sorted([first.status_code, second.status_code]) == [200, 503]
        assert "busy" in (second.json().get("error") or "") and second.headers["retry-after"] == "5"
    finally:
        live.close()


class SlowerWorker(Worker):
    def run(self, *args, **kwargs):
        time.sleep(7.0)
        return super().run(*args, **kwargs)


def test_a_request_that_would_find_a_slot_with_almost_no_time_left_gets_503(worker):
    """A request waits for a slot only while a quarter of its time limit (at most 10 s) would be left: past that
    it is busy (503), not run for a fraction of a second with every download timed out unread."""
    cfg = ServerConfig(model_dir=worker.config.model_dir, max_jobs=1, request_timeout=8.0)
    live = LiveServer(create_app(cfg, SlowerWorker(cfg, worker.classifier), ui=False))
    try:  # the slot frees 7 s in: the second, 0.3 s behind, would have under 2 s (a quarter) of its 8 left
        first, second = two_uploads(live.url)
        assert first.status_code == 200 and second.status_code == 503
        assert "busy" in second.json()["error"] and second.headers["retry-after"] == "5"
    finally:
        live.close()


def two_uploads(url: str) -> tuple[httpx.Response, httpx.Response]:
    """Two uploads to /api/classify, the second 0.3 s after the first: their answers."""
    def post(i):
        return httpx.post(url + "/api/classify", files=[("files", (f"{i}.png", png(i)))], timeout=30)

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(post, 1)
        time.sleep(0.3)
        second = pool.submit(post, 2)
        return first.result(), second.result()


class TimedWorker(Worker):
    """Works 1 s before classifying, and keeps the time each request was given."""

    def __init__(self, *args):
        super().__init__(*args)
        self.given = []

    def run(self, *args, **kwargs):
        self.given.append(kwargs.get("seconds"))
        time.sleep(1.0)
        return super().run(*args, **kwargs)


def test_time_waited_for_a_slot_counts_against_the_request_time_limit(worker):
    """A queued request gets what is left of --request-timeout, not all of it again (twice the limit could pass a
    proxy's timeout set just above it)."""
    from medimg.sources import Blob

    cfg = ServerConfig(model_dir=worker.config.model_dir, max_jobs=1, request_timeout=3)
    timed = TimedWorker(cfg, worker.classifier)
    live = LiveServer(create_app(cfg, timed, ui=False))
    try:
        assert [r.status_code for r in two_uploads(live.url)] == [200, 200]
        assert timed.given[0] > 2.9 and 1.0 < timed.given[1] < 2.6, timed.given  # it waited ~0.7 s
    finally:
        live.close()
    out = Worker(cfg, worker.classifier).run([Blob("a.png", png(1)), Blob("b.png", png(2))], seconds=1e-6)
    assert len(out.records) == 1 and "time limit of 3 s per request was reached" in out.note


def test_parallel_requests_each_get_their_own_answer(live_url):
    def one(i: int) -> tuple[int, dict]:
        files = [("files", (f"req{i}-{k}.png", png(i * 10 + k), "image/png")) for k in range(i + 1)]
        r = httpx.post(live_url + "/api/classify", files=files, timeout=60)
        return i, r.json()

    health_during = []
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(one, i) for i in range(4)]
        health_during.append(httpx.get(live_url + "/api/health", timeout=10).status_code)
        answers = [f.result() for f in futures]
    assert health_during == [200]
    for i, body in answers:
        names = [x["input"] for x in body["results"]]
        assert names == [f"req{i}-{k}.png" for k in range(i + 1)]
        assert body["summary"]["images"] == i + 1


def test_oversized_upload_over_a_socket_gets_a_json_413(live_url):
    r = httpx.post(live_url + "/api/classify", files=[("files", ("big.bin", b"\0" * (3 * 1024 * 1024)))],
                   timeout=30)
    assert r.status_code == 413
    assert "at most 2 MB" in r.json()["error"]


# ------------------------------------------------------------------ exports and re-labelling


def rec(name: str, p_med: float | None, error: str | None = None) -> Record:
    if error:
        return Record(input=name, locator="", error=error)
    return Record(input=name, locator="page 1, image 1", label="xray" if p_med >= 0.5 else "photo",
                  medical=p_med >= 0.5, confidence=max(p_med, 1 - p_med), p_medical=p_med,
                  verdict="uncertain", width=10, height=20, metadata={"Modality": "CR"})


def test_csv_neutralises_formulas_and_keeps_every_row():
    records = [rec("=HYPERLINK(\"http://x\")", 0.9), rec("+1.png", 0.15), rec("-2.png", 0.6),
               rec("@sum.png", 0.95), rec("\tTab.png", 0.1), rec("\rcr.png", 0.1), rec("plain.png", 0.5),
               rec("bad.png", None, error="-not an image")]
    text = to_csv(relabeled(records, 0.8), 0.8)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(records)
    assert [r["input"] for r in rows] == ["'=HYPERLINK(\"http://x\")", "'+1.png", "'-2.png", "'@sum.png",
                                          "'\tTab.png", "'\rcr.png", "plain.png", "bad.png"]
    assert rows[-1]["error"] == "'-not an image"
    assert [r["verdict"] for r in rows[:4]] == ["medical", "non-medical", "uncertain", "medical"]
    assert rows[0]["confidence"] == "0.9"
    assert [r["medical"] for r in rows[:2]] == ["true", "false"]  # as JSON and scale's Arrow write them
    assert safe_cell(-3.5) == -3.5  # numbers are left alone


def test_relabel_changes_verdicts_without_touching_the_originals():
    records = [rec("a", 0.85), rec("b", 0.12), rec("c", None, error="boom")]
    at_08 = relabeled(records, 0.8)
    at_09 = relabeled(records, 0.9)
    assert [r.verdict for r in at_08] == ["medical", "non-medical", None]
    assert [r.verdict for r in at_09] == ["uncertain", "uncertain", None]
    assert [r.verdict for r in records] == ["uncertain", "uncertain", None]
    doc = json.loads(to_json(at_09, 0.9, {"name": "m", "version": "1"}))
    assert doc["threshold"] == 0.9 and doc["summary"]["verdicts"] == {"uncertain": 2}
    assert doc["results"][0]["metadata"] == {"Modality": "CR"} and "note" not in doc
    doc = json.loads(to_json(at_09, 0.9, {"name": "m", "version": "1"}, note="stopped with Stop"))
    assert doc["note"] == "stopped with Stop" and list(doc)[:3] == ["model", "threshold", "note"]


def test_uploads_are_kept_in_the_session_folder_and_only_this_pages_files_are_read(tmp_path):
    root, home = tmp_path / "uploads", tmp_path / "pages" / "session"
    for name in ("abc", "def"):
        (root / name).mkdir(parents=True)
        (root / name / "scan.png").write_bytes(name.encode())  # two uploads of one name
    (tmp_path / "pages" / "other").mkdir(parents=True)
    other = tmp_path / "pages" / "other" / "x.png"
    other.write_bytes(b"x")
    uploads = [root / "abc" / "scan.png", root / "def" / "scan.png"]
    assert all(_mine(p, root.resolve(), home) for p in uploads)
    assert not _mine(other, root.resolve(), home) and not _mine(tmp_path / "example.png", root.resolve(), home)
    with open(uploads[0], "rb") as held:  # a link into the upload area is not an upload (an upload being written)
        assert not _mine(Path(f"/proc/self/fd/{held.fileno()}"), root.resolve(), home)
    assert not _mine(root / "abc", root.resolve(), home)  # a folder
    (root / "loop").symlink_to(root / "loop")  # a link in a loop: not an upload, and no traceback
    assert not _mine(root / "loop" / "scan.png", root.resolve(), home)
    folder, kept = _keep_uploads(uploads, home, root.resolve())
    assert [p.read_bytes() for p in kept] == [b"abc", b"def"] and {p.name for p in kept} == {"scan.png"}
    for p in kept:
        assert p.stat().st_mode & 0o777 == 0o600
        assert all(d.stat().st_mode & 0o777 == 0o700 for d in p.parents if home in d.parents or d == home)
    # linked, not moved: the shared upload area keeps them for another page that uploaded the same file
    assert (root / "abc" / "scan.png").read_bytes() == b"abc"
    assert all(_mine(p, root.resolve(), home) for p in kept)  # a re-run reads them from the session folder
    # a re-run with one of them: it moves to a new uploads folder, the one no longer listed is deleted
    folder_again, again = _keep_uploads(kept[1:], home, root.resolve())
    assert [p.read_bytes() for p in again] == [b"def"] and not kept[0].exists()
    assert list(home.glob("uploads-*")) == [folder_again] and folder_again in again[0].parents


def test_kept_uploads_keep_the_names_their_results_had(tmp_path):
    """Of two scan.png, the second is "scan (2).png"; with the first removed it stays so on the next run. A name
    too long for "as <name>" as a folder is still kept, under its own name."""
    from medimg.server.ui import _names

    root, home = tmp_path / "uploads", tmp_path / "pages" / "session"
    long = "x" * 250 + ".png"
    for name, file in (("abc", "scan.png"), ("def", "scan.png"), ("ghi", long)):
        (root / name).mkdir(parents=True)
        (root / name / file).write_bytes(name.encode())
    home.mkdir(parents=True)
    uploads = [root / "abc" / "scan.png", root / "def" / "scan.png", root / "ghi" / long]
    names = _names(uploads, home)
    assert names == ["scan.png", "scan (2).png", long]
    folder, kept = _keep_uploads(uploads, home, root.resolve(), names)
    assert [p.read_bytes() for p in kept] == [b"abc", b"def", b"ghi"]
    assert _names(kept[1:], home) == ["scan (2).png", long]
    (root / "jkl").mkdir()
    (root / "jkl" / "scan.png").write_bytes(b"jkl")  # a new one of that name: not the kept one's
    assert _names(kept[1:] + [root / "jkl" / "scan.png"], home) == ["scan (2).png", long, "scan.png"]


def test_ui_uploads_read_a_detached_header_with_its_data_file(tmp_path):
    """The web page's uploads go through the same pairing: the .mhd finds its .raw among them, and the .raw
    itself is a skipped note naming its header."""
    from medimg.server.ui import _blobs
    from medimg.sources import ImageItem, ItemError, open_inputs
    from test_volumes import detached_mha, head_volume

    header = detached_mha(tmp_path, head_volume())
    got = list(open_inputs(_blobs([header, tmp_path / "v.raw"], 10_000_000)))
    assert isinstance(got[0], ImageItem) and got[0].origin == "v.mhd" and got[0].metadata["data_file"] == "v.raw"
    assert isinstance(got[1], ItemError) and got[1].skipped and "data file of v.mhd" in got[1].error


def test_offline_server_refuses_web_addresses_and_fetches_nothing(worker, tmp_path):
    """--offline: a URL request is a clear 400 and an uploaded saved page's remote image is not fetched,
    even from an address the server would otherwise be allowed to reach."""
    from webserver import WebServer

    cfg = ServerConfig(model_dir=worker.config.model_dir, allow_private=True, offline=True)
    offline = TestClient(create_app(cfg, Worker(cfg, worker.classifier), ui=False))
    with WebServer() as srv:
        image = srv.add("/a.png", png(1), "image/png")
        page = srv.add("/page.html", f'<html><body><img src="{image}"></body></html>')
        r = offline.post("/api/classify-url", json={"url": page})
        assert r.status_code == 400 and "--offline" in r.json()["error"]
        saved = f'<html><body><p>report</p><img src="{image}"></body></html>'.encode()
        r = offline.post("/api/classify", files=[("files", ("page.html", saved, "text/html"))])
        assert r.status_code == 200, r.text
        (rec,) = r.json()["results"]
        assert "network access is off" in rec["error"]
        assert srv.hits["/page.html"] == 0 and srv.hits["/a.png"] == 0


def test_offline_page_offers_no_web_address(worker):
    """On an --offline server the page shows only the file drop: no web-address box, no render option."""
    from medimg.server.ui import build_ui

    def shown(cfg) -> dict:
        demo = build_ui(Worker(cfg, worker.classifier))
        props = {c["props"].get("elem_id") or c["props"].get("label"): c["props"].get("visible", True)
                 for c in demo.config["components"]}
        return {k: props[k] for k in ("url", "files", "Run the page's JavaScript before looking (slower)")}

    from medimg.sources.browser import available

    base = dict(model_dir=worker.config.model_dir)
    can_render = available() is None  # the render option shows only where playwright and Chromium are
    assert shown(ServerConfig(**base)) == {
        "url": True, "files": True, "Run the page's JavaScript before looking (slower)": can_render}
    assert shown(ServerConfig(**base, offline=True)) == {
        "url": False, "files": True, "Run the page's JavaScript before looking (slower)": False}


def test_uploads_of_the_same_name_are_each_classified(client):
    r = client.post("/api/classify", files=[("files", ("scan.png", png(1), "image/png")),
                                            ("files", ("scan.png", png(2), "image/png"))])
    assert r.status_code == 200 and [x["input"] for x in r.json()["results"]] == ["scan.png", "scan (2).png"]


def test_ui_uploads_with_the_same_name_are_told_apart(tmp_path):
    from medimg.server.ui import _blobs

    paths = []
    for i in range(2):  # Gradio keeps each upload in a folder of its own, under its own name
        (tmp_path / str(i)).mkdir()
        (tmp_path / str(i) / "IM0001").write_bytes(png(i))
        paths.append(tmp_path / str(i) / "IM0001")
    assert [b.origin for b in _blobs(paths, 10**6)] == ["IM0001", "IM0001 (2)"]


def test_ui_uploads_read_an_analyze_pair_with_a_gzipped_image(tmp_path):
    import gzip

    import nibabel as nib
    import numpy as np

    from medimg.server.ui import _blobs
    from medimg.sources import ImageItem, ItemError, open_inputs
    from test_volumes import head_volume

    nib.AnalyzeImage(head_volume().astype(np.float32), np.eye(4)).to_filename(str(tmp_path / "a.img"))
    (tmp_path / "a.img.gz").write_bytes(gzip.compress((tmp_path / "a.img").read_bytes()))
    got = list(open_inputs(_blobs([tmp_path / "a.hdr", tmp_path / "a.img.gz"], 10_000_000)))
    assert isinstance(got[0], ImageItem) and got[0].origin == "a.hdr"
    assert isinstance(got[1], ItemError) and got[1].skipped and "data file of a.hdr" in got[1].error


# ------------------------------------------------------------------ errors, thresholds, the page's wording


def test_unknown_paths_and_wrong_methods_under_api_get_the_error_shape(client, private_client):
    """With the page mounted at / (client) or not: 404 and 405 are JSON with `error`, like every API error."""
    for c in (client, private_client):
        for method in ("get", "put", "delete"):
            r = c.request(method, "/api/classify")
            assert r.status_code == 405 and r.headers["allow"] == "POST", r.text
            assert "POST" in r.json()["error"] and r.json()["detail"]
        r = c.post("/api/health")
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
        for path in ("/api/nope", "/api/", "/api", "/api/classify/x"):
            r = c.get(path)
            assert r.status_code == 404 and "/api/classify" in r.json()["error"], (path, r.text)
        assert c.get("/api/health").status_code == 200
        r = c.head("/api/health")  # monitors probe with HEAD
        assert r.status_code == 200 and not r.content
    assert client.get("/").status_code == 200  # the page is still at /


@pytest.mark.parametrize("threshold", ["0", "0.2", "0.4999", "1.01", "-1", "nan"])
def test_thresholds_outside_half_to_one_are_refused(client, threshold):
    files = [("files", ("one.png", png(1), "image/png"))]
    r = client.post(f"/api/classify?threshold={threshold}", files=files)
    assert r.status_code == 422, r.text
    assert "threshold must be a number from 0.5 to 1" in r.json()["error"]


def test_thresholds_at_the_ends_are_taken_and_a_bad_json_threshold_is_refused(client):
    files = [("files", ("one.png", png(1), "image/png"))]
    for t in ("0.5", "1"):
        assert client.post(f"/api/classify?threshold={t}", files=files).status_code == 200
    r = client.post("/api/classify-url", json={"url": "https://example.org/", "threshold": 0.2})
    assert r.status_code == 422 and "from 0.5 to 1" in r.json()["error"]


def test_a_form_or_non_object_body_for_a_url_asks_for_json(client):
    for kwargs in (dict(data={"url": "https://example.org/"}),
                   dict(content=b'["https://example.org/"]', headers={"content-type": "application/json"})):
        r = client.post("/api/classify-url", **kwargs)
        assert r.status_code == 422
        assert 'send a JSON object, e.g. {"url": ' in r.json()["error"], r.text


def test_captions_show_how_sure_the_verdict_is_and_rows_read_alike():
    recs = relabeled([rec("a.png", 0.991), rec("b.png", 0.03), rec("c.png", 0.62)], 0.9)
    assert [_caption(r).split(" · ")[0] for r in recs] == ["medical 99%", "non-medical 97%",
                                                           "uncertain (medical 62%)"]
    assert _caption(recs[0]) == "medical 99% · xray 99% · a.png · page 1, image 1"
    assert _row(3, rec("d.png", 0.82), 0.9)[:1] + _row(3, rec("d.png", 0.82), 0.9)[4:6] == [3, "0.820", "0.820"]


def test_a_web_address_without_its_scheme(tmp_path):
    assert _web_address("example.org/case.html") == ("https://example.org/case.html", None)
    assert _web_address("localhost:8080/a") == ("https://localhost:8080/a", None)
    assert _web_address("http://example.org/") == ("http://example.org/", None)
    url, problem = _web_address("not a url")
    assert url == "not a url" and "is not a web address" in problem and "https://" in problem


def test_the_page_brings_a_typed_threshold_back_into_range():
    assert _in_range(0.7, 0.6) == (0.7, {"__type__": "update"})  # unchanged: the slider is left alone
    with pytest.warns(UserWarning, match="1 is used instead of 1.5"):
        assert _in_range(1.5, 0.6) == (1.0, {"__type__": "update", "value": 1.0})
    with pytest.warns(UserWarning, match="0.5 is used instead of 0.2"):
        assert _in_range(0.2, 0.6)[0] == 0.5
    with pytest.warns(UserWarning, match="0.6 is used instead of an empty box"):
        assert _in_range(None, 0.6)[0] == 0.6
    with pytest.warns(UserWarning, match="0.6 is used instead of “abc”"):  # never Python's None or a repr
        assert _in_range("abc", 0.6)[0] == 0.6


def test_a_stopped_app_removes_its_temporary_folders(worker, monkeypatch, tmp_path):
    """The examples and the pages' folders are private (0700) and gone when the app shuts down."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    cfg = ServerConfig(model_dir=worker.config.model_dir)
    app = create_app(cfg, Worker(cfg, worker.classifier))
    folders = list(app.state.scratch)
    assert {f.name.split("-")[1] for f in folders} == {"examples", "pages"}
    assert all(f.parent == tmp_path and f.stat().st_mode & 0o777 == 0o700 for f in folders)
    with TestClient(app) as c:
        assert c.get("/api/health").status_code == 200
    assert not any(f.exists() for f in folders)


def test_the_page_says_in_its_counts_that_the_time_limit_stopped_a_run(tiny_classifier, tmp_path):
    """The page's counts line carries the time limit's note; no problem row with an empty file name."""
    import gradio as gr

    import medimg.server.ui as ui

    files = []
    for i in range(3):
        files.append(tmp_path / f"{i}.png")
        files[-1].write_bytes(png(i))
    pages = tmp_path / "pages"
    pages.mkdir()
    demo = ui.build_ui(Worker(ServerConfig(request_timeout=1e-6), tiny_classifier), {"three": files}, pages)
    fns = {bf.fn.__name__: bf.fn for bf in demo.fns.values() if bf.fn}
    req = gr.Request()
    req.session_hash = "s1"
    got = fns["go"](0.6, "all", None, req, lambda *a, **k: None)
    counts, problems, results = got[0], got[3], got[10]
    assert counts.startswith("**1 image**") and counts.endswith(
        " — stopped: the time limit of 1e-06 s per request was reached after 1 image; the results are those found by "
        "then"), counts
    assert not problems.get("value") and [r.input for r in results.records] == ["0.png"]


def test_stop_pressed_while_a_run_is_starting_stops_it(tiny_classifier, tmp_path, monkeypatch):
    """Stop in the moment between the button and the run's first download (here a slow address check) still
    stops the run, and its counts say so."""
    import gradio as gr

    import medimg.server.ui as ui
    from webserver import WebServer

    real = ui.url_problem

    def slow_check(*args, **kwargs):  # what a slow DNS answer does
        time.sleep(1.0)
        return real(*args, **kwargs)

    monkeypatch.setattr(ui, "url_problem", slow_check)
    said: list[str] = []
    monkeypatch.setattr(gr, "Info", lambda msg, *a, **k: said.append(msg))
    demo = ui.build_ui(Worker(ServerConfig(allow_private=True), tiny_classifier), None, tmp_path)
    fns = {bf.fn.__name__: bf.fn for bf in demo.fns.values() if bf.fn}
    req = gr.Request()
    req.session_hash = "s1"
    with WebServer() as web:
        url = web.slow("/slow.png", b"x" * 2000, interval=0.1)  # 200 s if read to the end
        out: dict = {}
        runner = threading.Thread(target=lambda: out.update(
            got=fns["classify"](None, url, False, 0.6, "all", None, req, lambda *a, **k: None)))
        started = time.monotonic()
        runner.start()
        time.sleep(0.3)
        fns["stop_run"](req)
        runner.join(30)
    assert said == ["Stopping: the images found so far are shown."]
    assert time.monotonic() - started < 10 and out["got"][0].startswith("Stopped"), out


def latin1_tar(data: bytes, name: str = "M\u00dcLLER_HANS_1960-01-01_CT.png") -> bytes:
    """A tar whose member name is Latin-1, as Windows tools write them: not UTF-8."""
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT, encoding="latin-1") as t:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("full", ["false", "true"])
def test_a_member_name_that_is_not_utf8_comes_back_readable(client, full):
    """The name's undecodable bytes come back as U+FFFD (the answer was a 500: pydantic refuses surrogates)."""
    r = client.post(f"/api/classify?full={full}", files={"files": ("export.tar", latin1_tar(png(4)))})
    assert r.status_code == 200, r.text
    (got,) = r.json()["results"]
    assert got["input"] == "export.tar:M\ufffdLLER_HANS_1960-01-01_CT.png" and got["error"] is None, got


def test_a_closed_pages_downloads_are_never_written_again(tiny_classifier, tmp_path):
    """An event of a page whose folder has gone (the page was closed) writes no downloads: the session's
    folder is not made again (it was, with the results' CSV and JSON in it)."""
    import shutil

    import medimg.server.ui as ui

    demo = ui.build_ui(Worker(ServerConfig(), tiny_classifier), None, tmp_path)
    fns = {bf.fn.__name__: bf.fn for bf in demo.fns.values() if bf.fn}
    session = tmp_path / "session"
    results = ui._keep([rec("DOE_JOHN.dcm", 0.97)], ui._new_folder(session))
    csv_button = fns["refresh"](results, 0.8, "all")[6]
    assert Path(csv_button["value"]).read_text().count("DOE_JOHN") == 1
    shutil.rmtree(session)
    csv_button = fns["refresh"](results, 0.7, "all")[6]
    assert csv_button["value"] is None and not csv_button["interactive"]
    assert not session.exists()


def test_changing_the_threshold_again_and_again_keeps_two_downloads_on_disk(tmp_path):
    """Each change of the threshold or filter writes the downloads anew; the earlier ones went only at the next
    run, so a page (or a script sending its events) could fill the disk with them."""
    from medimg.server.ui import EXPORTS_KEPT, _write_exports

    records = [rec(f"{i}.png", 0.9) for i in range(50)]
    made = [_write_exports(records, 0.6 + i / 100, {"name": "m"}, tmp_path) for i in range(6)]
    left = sorted(tmp_path.glob("export-*"))
    assert len(left) == EXPORTS_KEPT == 2
    assert {p.parent for p in made[-1]} | {p.parent for p in made[-2]} == set(left)
    assert all(p.is_file() for p in made[-1])


def test_several_addresses_in_one_request(client, private_client):
    """`urls` reads each address in turn, as the page's box of several does; one that fails or is refused is a
    result with its error, the rest are read. Not a path (a file of the server's), not with `url`, at most 20."""
    from webserver import WebServer

    with WebServer() as srv:
        srv.add("/a.png", png(1), "image/png")
        page = srv.add("/page.html", '<html><body><img src="a.png"><img src="b.jpg"></body></html>')
        srv.add("/b.jpg", jpeg(2), "image/jpeg")
        urls = [page, srv.url("/a.png"), srv.url("/gone.png"), " " + page]  # the last: the first again
        r = private_client.post("/api/classify-url", json={"urls": urls})
        assert r.status_code == 200, r.text
        got = [(x["input"], x["error"] is None) for x in r.json()["results"]]
        assert got == [(page, True), (page, True), (srv.url("/a.png"), True), (srv.url("/gone.png"), False)]
        r = client.post("/api/classify-url", json={"urls": [srv.url("/a.png")]})  # private: refused, as a result
        assert r.status_code == 200 and "does not fetch private addresses" in r.json()["results"][0]["error"]
    for body, status, says in [
        ({"urls": ["/etc/passwd"]}, 400, "only http and https URLs are fetched"),
        ({"urls": ["https://example.org/", "scan.png"]}, 400, "only http and https URLs are fetched"),
        ({"url": "https://example.org/", "urls": ["https://example.org/"]}, 422, 'give "url" (one address) or'),
        ({}, 422, "not neither"), ({"urls": []}, 422, "urls"),
        ({"urls": [f"https://example.org/{i}" for i in range(21)]}, 422, "urls")]:
        r = client.post("/api/classify-url", json=body)
        assert r.status_code == status and says in r.json()["error"], (body, r.status_code, r.text)


def test_a_list_of_urls_keeps_its_fragments_apart_only_when_rendering(private_client):
    """Read statically, `…#/a` and `…#/b` are one resource, fetched once; rendered, a page's script may route on
    the fragment, so each is its own input, as the CLI's --render has them."""
    from webserver import WebServer

    from medimg.sources.browser import available

    with WebServer() as srv:
        url = srv.add("/a.png", png(1), "image/png")
        urls = [url + "#/a", url + "#/b", url + "#/a"]
        r = private_client.post("/api/classify-url", json={"urls": urls})
        assert r.status_code == 200 and [x["input"] for x in r.json()["results"]] == [url + "#/a"]
        if available() is not None:
            pytest.skip(f"rendering: {available()}")
        r = private_client.post("/api/classify-url", json={"urls": urls, "render": True})
        assert r.status_code == 200, r.text
        assert [x["input"] for x in r.json()["results"]] == [url + "#/a", url + "#/b"]


def test_a_download_gives_up_at_the_request_time_limit_not_at_its_own_timeout(worker):
    """A URL whose server trickles its body (each byte in time for the read timeout) is given up on when the
    request's time is up (--request-timeout 1), not after the download's own 60 s: the time limit is checked
    only between records, so the download itself must stop. Measured: ~1.1 s; the body takes 8 s to send."""
    from webserver import WebServer

    cfg = ServerConfig(model_dir=worker.config.model_dir, allow_private=True, request_timeout=1.0)
    with WebServer() as srv:
        url = srv.slow("/slow.png", b"x" * 40, interval=0.2)
        for _ in range(3):  # a loaded machine: up to three tries
            start = time.monotonic()
            out = Worker(cfg, worker.classifier).run([url])
            took = time.monotonic() - start
            if took < 4.0:
                break
    assert took < 4.0, took
    assert len(out.records) == 1 and out.records[0].error and "time" in out.records[0].error.lower(), out.records


def test_the_page_takes_a_typed_threshold_up_to_one():
    """The slider ends at 1, as the API and the CLI take it: a typed 1 (or 0.995) is left alone, and 1.005 is set
    back to 1 with a warning, as 1.5 is."""
    for typed in (0.99, "0.995", 1.0, "1"):
        assert _in_range(typed, 0.6) == (float(typed), {"__type__": "update"})
    with pytest.warns(UserWarning, match="1 is used instead of 1.005"):
        assert _in_range("1.005", 0.6) == (1.0, {"__type__": "update", "value": 1.0})

def solid_png(i: int) -> bytes:
    """An 80 × 80 PNG of one colour, (200, i, i)."""
    buf = io.BytesIO()
    Image.new("RGB", (80, 80), (200, i, i)).save(buf, "PNG")
    return buf.getvalue()



def test_a_stopped_run_ends_at_the_next_record(tiny_classifier):
    """Stop (the page's button, or the page closing) ends a run at the next record with what was found so far,
    files of its own included: not only its downloads stop."""
    stop = threading.Event()
    out = Worker(ServerConfig(), tiny_classifier).run([Blob(f"{i}.png", solid_png(i)) for i in range(40)],
                                                      on_record=lambda rec: stop.set(), stop=stop)
    assert [r.input for r in out.records] == ["0.png"] and out.note is None


def test_the_time_limits_note_counts_images_not_rows_that_could_not_be_read(tiny_classifier):
    """A run cut short by the time limit says how many images it classified: a file it could not read is none."""
    out = Worker(ServerConfig(request_timeout=1e-6), tiny_classifier).run(
        [Blob("broken.png", b"not an image at all"), Blob("a.png", solid_png(1))])
    assert [(r.input, r.ok) for r in out.records] == [("broken.png", False)]
    assert out.note == ("stopped: the time limit of 1e-06 s per request was reached after 0 images; the results "
                        "are those found by then")


def image(name: str, p_med: float) -> Record:
    probs = {"graphic": (1 - p_med) * 0.25, "xray": p_med, "photo": (1 - p_med) * 0.75}
    label = max(probs, key=probs.get)
    return Record(input=name, locator="", label=label, medical=label == "xray", confidence=probs[label],
                  p_medical=p_med, verdict="uncertain", width=90, height=80, probs=probs)


@pytest.fixture
def page(tiny_classifier, tmp_path):
    """The page's handlers by name, and its results for records (as a run leaves them)."""
    import medimg.server.ui as ui

    (tmp_path / "pages").mkdir()
    demo = ui.build_ui(Worker(ServerConfig(allow_private=True), tiny_classifier), None, tmp_path / "pages")
    fns = {bf.fn.__name__: bf.fn for bf in demo.fns.values() if bf.fn}
    fns["results"] = lambda records: ui._keep(records, ui._new_folder(tmp_path / "pages" / "session"))
    return fns


def rows(update: dict) -> list:
    return (update.get("value") or {}).get("data") or []


RECORDS = [Record(input="empty.html", locator="", error="no images referenced in this HTML file", skipped=True),
           image("a.png", 0.85),
           Record(input="bad.png", locator="", error="cannot identify image file"),
           image("b.png", 0.05)]


def test_the_tables_numbers_count_images_only_and_problems_list_errors_before_notes(page):
    """The table's # counts images (1, 2), not the rows that could not be read; in the problems table what could
    not be read comes before what was passed over."""
    counts, _, table, problems = page["refresh"](page["results"](RECORDS), 0.8, "all")[:4]
    assert [(r[0], r[1]) for r in rows(table)] == [(1, "a.png"), (2, "b.png")]
    assert [r[0] for r in rows(problems)] == ["bad.png", "empty.html"]
    assert counts.startswith("**2 images**")


def test_the_slider_relabels_the_results_and_the_filter_shows_one_verdict(page):
    """At 0.8, p(medical) 0.85 is medical; at 0.9 it is uncertain. Show “medical” lists only the medical ones."""
    results = page["results"](RECORDS)
    table = page["refresh"](results, 0.8, "all")[2]
    assert [(r[1], r[2]) for r in rows(table)] == [("a.png", "medical"), ("b.png", "non-medical")]
    table = page["refresh"](results, 0.9, "all")[2]
    assert [(r[1], r[2]) for r in rows(table)] == [("a.png", "uncertain"), ("b.png", "non-medical")]
    counts, _, table = page["refresh"](results, 0.8, "medical")[:3]
    assert [r[1] for r in rows(table)] == ["a.png"] and counts.endswith("— showing the 1 medical")


def test_an_images_details_list_its_likeliest_labels_first():
    """The details' “top labels” are the three likeliest, most likely first."""
    from medimg.server.ui import _details

    assert dict(_details(image("c.png", 0.8), 0.6))["top labels"] == "xray 0.80, photo 0.15, graphic 0.05"
    assert dict(_details(image("b.png", 0.05), 0.6))["top labels"] == "photo 0.71, graphic 0.24, xray 0.05"


def test_at_most_max_addresses_are_read_from_the_box(page):
    """Past MAX_ADDRESSES web addresses in the box, the first ones are read, with a warning; the rest are not
    fetched."""
    import gradio as gr

    from medimg.server.ui import MAX_ADDRESSES
    from webserver import WebServer

    req = gr.Request()
    req.session_hash = "s1"
    with WebServer() as srv:
        urls = [srv.add(f"/{k}.png", solid_png(k), "image/png") for k in range(MAX_ADDRESSES + 2)]
        with pytest.warns(UserWarning, match=f"At most {MAX_ADDRESSES} web addresses at once"):
            got = page["classify"](None, "\n".join(urls), False, 0.8, "all", None, req, lambda *a, **k: None)
        assert [r.input for r in got[10].records] == urls[:MAX_ADDRESSES]
        assert srv.hits[f"/{MAX_ADDRESSES}.png"] == srv.hits[f"/{MAX_ADDRESSES + 1}.png"] == 0


def test_every_answer_names_the_model_and_the_threshold_of_its_verdicts(client, worker):
    """An answer says which model and threshold gave its verdicts (the asked one, or the model's default), as
    the page's JSON download does: stored results can be audited without the request that made them."""
    info = worker.classifier.info()
    r = client.post("/api/classify", files=[("files", ("one.png", png(1)))])
    assert r.json()["model"] == {"name": info["name"], "version": info["version"]}
    assert r.json()["threshold"] == info["threshold"]
    r = client.post("/api/classify?threshold=0.9", files=[("files", ("one.png", png(1)))])
    assert r.json()["threshold"] == 0.9 and r.json()["results"][0]["verdict"] in ("medical", "non-medical",
                                                                                  "uncertain")
    r = client.post("/api/classify-url", json={"url": "http://no-such-host.invalid/x.png", "threshold": 0.75})
    assert r.status_code == 200 and r.json()["threshold"] == 0.75 and r.json()["model"]["name"] == info["name"]


def test_a_misspelt_or_unknown_parameter_is_a_422_naming_what_the_route_takes(client):
    """`treshold` (or an option the API does not have) in the query, the form or the JSON body is refused with
    a 422 that names it and the parameters the route takes; it was ignored, and the default threshold used."""
    one = [("files", ("one.png", png(1)))]
    for kwargs, says in [({"params": {"treshold": "0.97"}}, "unknown query parameter 'treshold'"),
                         ({"data": {"treshold": "0.97"}}, "unknown form field 'treshold'"),
                         ({"data": {"all_frames": "true", "thresh": "1"}}, "unknown form fields 'all_frames', 'thresh'")]:
        r = client.post("/api/classify", files=one, **kwargs)
        assert r.status_code == 422 and r.json()["error"].startswith(says), r.text
        assert "this route takes " in r.json()["error"] and "threshold, full, show_skipped" in r.json()["error"]
    r = client.post("/api/classify", files=one, data={"threshold": "0.9"}, params={"full": "true"})
    assert r.status_code == 200 and r.json()["threshold"] == 0.9
    url = "http://no-such-host.invalid/x.png"
    r = client.post("/api/classify-url", json={"url": url, "treshold": 0.97})
    assert r.status_code == 422 and r.json()["error"].startswith("unknown field 'treshold': the body takes url")
    r = client.post("/api/classify-url?thresh=0.9", json={"url": url})
    assert r.status_code == 422 and "unknown query parameter 'thresh'" in r.json()["error"]
    assert "render" in r.json()["error"]


def test_an_upload_exactly_at_the_cap_is_read_and_one_byte_more_is_refused(worker):
    """max_upload_bytes is the most a request may carry: a body of exactly that many bytes is read, one more is 413."""
    request = httpx.Request("POST", "http://x/api/classify", files=[("files", ("a.png", png(1), "image/png"))])
    body, ctype = request.read(), request.headers["content-type"]
    cfg = ServerConfig(model_dir=worker.config.model_dir, max_upload_bytes=len(body))
    c = TestClient(create_app(cfg, Worker(cfg, worker.classifier), ui=False))
    r = c.post("/api/classify", content=body, headers={"content-type": ctype})
    assert r.status_code == 200 and r.json()["results"][0]["error"] is None, (r.status_code, r.text)
    r = c.post("/api/classify", content=body + b"\r\n", headers={"content-type": ctype})  # an epilogue byte more
    assert r.status_code == 413, (r.status_code, r.text)


def test_an_upload_named_by_a_windows_path_is_reported_by_its_base_name(client):
    """A client that sends a file name with backslash folders (series2\\IM0001) is reported by the base name."""
    body = (b'--b\r\nContent-Disposition: form-data; name="files"; filename="series2\\IM0001"\r\n'
            b"Content-Type: image/png\r\n\r\n" + png(2) + b"\r\n--b--\r\n")
    r = client.post("/api/classify", content=body, headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 200, r.text
    assert [x["input"] for x in r.json()["results"]] == ["IM0001"]


def test_the_summary_counts_skipped_items_even_when_they_are_not_listed(client):
    """Without show_skipped the skipped notes are left out of `results`, but the summary still counts them."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("scan.png", png(3))
        zf.writestr("readme.txt", b"just some words")
    files = [("files", ("case.zip", buf.getvalue(), "application/zip"))]
    shown = client.post("/api/classify?show_skipped=true", files=files).json()
    assert [x["input"] for x in shown["results"]] == ["case.zip:scan.png", "case.zip:readme.txt"], shown
    hidden = client.post("/api/classify", files=files).json()
    assert [x["input"] for x in hidden["results"]] == ["case.zip:scan.png"]
    assert hidden["summary"] == shown["summary"] and hidden["summary"]["skipped"] == 1, hidden["summary"]


class _HeldSlotWorker(Worker):
    """Holds each run until `release` is set (at most 3 s), and says when the first has begun."""

    def __init__(self, *args):
        super().__init__(*args)
        self.began, self.release = threading.Event(), threading.Event()

    def run(self, *args, **kwargs):
        self.began.set()
        self.release.wait(3.0)
        return super().run(*args, **kwargs)


def test_a_request_waits_for_a_slot_no_longer_than_the_request_time_limit(worker):
    """With every slot taken, a waiting request is told the server is busy within --request-timeout (1 s here), not
    later: the slot freed after that (at 3 s) is not given to it."""
    cfg = ServerConfig(model_dir=worker.config.model_dir, max_jobs=1, request_timeout=1.0)
    held = _HeldSlotWorker(cfg, worker.classifier)
    live = LiveServer(create_app(cfg, held, ui=False))
    post = lambda i: httpx.post(live.url + "/api/classify", files=[("files", (f"{i}.png", png(i)))],  # noqa: E731
                                timeout=30)
    try:
        first = threading.Thread(target=post, args=(1,))
        first.start()
        assert held.began.wait(20)  # the one slot is taken
        second = post(2)
        held.release.set()
        first.join(30)
        assert second.status_code == 503 and "busy" in second.json()["error"], (second.status_code, second.text)
    finally:
        held.release.set()
        live.close()


def test_a_graceful_timeout_of_zero_is_a_valid_setting(worker):
    """--graceful-timeout 0 (stop at once, requests in flight are cut) is allowed: only negative or not finite is not."""
    cfg = ServerConfig(model_dir=worker.config.model_dir, graceful_timeout=0)
    assert create_app(cfg, Worker(cfg, worker.classifier), ui=False) is not None


def test_a_file_as_large_as_the_upload_cap_allows_is_not_refused_by_the_per_file_or_archive_cap():
    """serve --max-upload-mb above the default per-file cap: a single upload of that size is read, not refused."""
    from medimg.sources import Limits

    default = Limits()
    big = ServerConfig(max_upload_bytes=default.zip_max_bytes * 2).limits()
    assert big.max_input_bytes == default.zip_max_bytes * 2 and big.zip_max_bytes >= big.max_input_bytes
    small = ServerConfig(max_upload_bytes=1 << 20).limits()
    assert (small.max_input_bytes, small.zip_max_bytes) == (default.max_input_bytes, default.zip_max_bytes)


def test_missing_packaged_example_files_leave_only_their_example_out(tmp_path, monkeypatch):
    """Examples are made from files installed packages ship: one that is missing leaves its example out, and the
    rest are still made."""
    from medimg.server import examples

    monkeypatch.setattr(examples, "photo_files", lambda: tmp_path / "no-such-folder")
    made = examples.make_examples(tmp_path / "examples")
    assert [p.name for p in made["scans and photos"]] == ["CT_small.dcm", "MR_small.dcm"], made
    assert "a PDF report" not in made  # it needs a photo too


def test_an_offline_server_refuses_a_list_of_addresses_as_it_refuses_one(worker):
    """--offline: `urls` is a 400 naming the option, as `url` is, not a 200 with an error per address."""
    cfg = ServerConfig(model_dir=worker.config.model_dir, offline=True)
    c = TestClient(create_app(cfg, Worker(cfg, worker.classifier), ui=False))
    for body in ({"url": "https://example.org/a.png"}, {"urls": ["https://example.org/a.png", "https://example.org/"]}):
        r = c.post("/api/classify-url", json=body)
        assert r.status_code == 400 and "--offline" in r.json()["error"], (body, r.status_code, r.text)


def test_a_single_address_pasted_with_spaces_around_it_is_read(private_client):
    """`url` is trimmed as each of `urls` is: an address pasted with a space or newline around it is fetched."""
    from webserver import WebServer

    with WebServer() as srv:
        url = srv.add("/a.png", png(1), "image/png")
        r = private_client.post("/api/classify-url", json={"url": f"  {url}\n"})
        assert r.status_code == 200, r.text
        assert [(x["input"], x["error"]) for x in r.json()["results"]] == [(url, None)]


def test_a_model_whose_labels_json_gives_a_numeric_version_still_answers(tmp_path, tiny_model_dir):
    """A team's model with `"version": 3` in labels.json: answers name it as "3" (every classify was a 500)."""
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    meta = json.loads((folder / "labels.json").read_text())
    (folder / "labels.json").write_text(json.dumps({**meta, "version": 3}))
    cfg = ServerConfig(model_dir=folder)
    c = TestClient(create_app(cfg, Worker(cfg), ui=False))
    r = c.post("/api/classify", files=[("files", ("one.png", png(1)))])
    assert r.status_code == 200 and r.json()["model"]["version"] == "3", r.text


def one_shape(r, status: int) -> dict:
    """The body of an API error: `error` and `detail` the same sentence, `errors` on a 422 only."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert isinstance(body["detail"], str) and body["detail"] == body["error"] and body["error"], body
    assert ("errors" in body) == (status == 422), body
    assert set(body) <= {"error", "detail", "errors"}, body
    return body


def multipart(*parts: tuple[str, bytes], close: bool = True) -> tuple[bytes, dict]:
    body = b"".join(b'--b\r\nContent-Disposition: form-data; name="files"; filename="' + name.encode() +
                    b'"\r\nContent-Type: image/png\r\n\r\n' + data + b"\r\n" for name, data in parts)
    return body + (b"--b--\r\n" if close else b""), {"content-type": "multipart/form-data; boundary=b"}


def test_a_validation_422_has_a_readable_detail_and_its_fields_in_errors(client):
    """FastAPI's list of field problems was `detail` on a 422 and a string on every other error: clients had to
    handle both. `detail` is now always the sentence, and the fields at fault are in `errors`."""
    one = [("files", ("one.png", png(1), "image/png"))]
    body = one_shape(client.post("/api/classify?threshold=1.01", files=one), 422)
    assert "threshold must be a number from 0.5 to 1" in body["detail"]
    assert [(e["loc"], e["type"]) for e in body["errors"]] == [(["query", "threshold"], "less_than_equal")]
    assert all(isinstance(e["msg"], str) and "input" not in e for e in body["errors"])
    body = one_shape(client.post("/api/classify"), 422)
    assert body["detail"].startswith("no files were sent") and body["errors"][0]["loc"] == ["body", "files"]
    body = one_shape(client.post("/api/classify-url", content=b"{not json",
                                 headers={"content-type": "application/json"}), 422)
    assert "not valid JSON" in body["detail"] and body["errors"][0]["type"] == "json_invalid"


def test_the_apis_own_422s_name_their_fields_in_errors_too(client):
    one = [("files", ("one.png", png(1), "image/png"))]
    body = one_shape(client.post("/api/classify", files=one, data={"treshold": "0.9", "all_frames": "1"}), 422)
    assert [(e["loc"], e["type"]) for e in body["errors"]] == [(["body", "all_frames"], "extra_forbidden"),
                                                               (["body", "treshold"], "extra_forbidden")]
    body = one_shape(client.post("/api/classify?thresh=0.9", files=one), 422)
    assert [e["loc"] for e in body["errors"]] == [["query", "thresh"]]
    url = "http://no-such-host.invalid/x.png"
    body = one_shape(client.post("/api/classify-url?full=true", json={"url": url, "full": False}), 422)
    assert [e["loc"] for e in body["errors"]] == [["query", "full"], ["body", "full"]]
    body = one_shape(client.post("/api/classify-url", json={}), 422)
    assert [e["loc"] for e in body["errors"]] == [["body", "url"], ["body", "urls"]]


def test_every_other_api_error_has_the_same_shape_without_errors(client, worker):
    one_shape(client.get("/api/nope"), 404)
    one_shape(client.get("/api/classify"), 405)
    one_shape(client.post("/api/classify", files=[("files", ("big.bin", b"\0" * (4 * 2**20)))]), 413)
    one_shape(client.post("/api/classify-url", json={"url": "file:///etc/passwd"}), 400)
    cfg = ServerConfig(model_dir=worker.config.model_dir, token="s3cret")
    guarded = TestClient(create_app(cfg, Worker(cfg, worker.classifier), ui=False))
    body = one_shape(guarded.get("/api/classify"), 401)  # its detail was "unauthorized", not the sentence
    assert "access token" in body["detail"]


def test_a_server_failure_under_api_is_json_in_the_same_shape(worker, monkeypatch):
    """A bug in the server was Starlette's plain-text 500 "Internal Server Error", which a client reading JSON
    could not parse."""
    cfg = ServerConfig(model_dir=worker.config.model_dir)
    broken = Worker(cfg, worker.classifier)
    monkeypatch.setattr(broken, "run", lambda *a, **k: 1 / 0)
    c = TestClient(create_app(cfg, broken), raise_server_exceptions=False)
    body = one_shape(c.post("/api/classify", files=[("files", ("one.png", png(1), "image/png"))]), 500)
    assert "the server failed" in body["detail"] and "ZeroDivision" not in body["detail"]
    assert c.get("/").status_code == 200  # the page is still there


def test_the_pages_own_routes_keep_gradios_error_answers(client):
    """The handlers are the API's (and /docs'): Gradio's routes, mounted in the same app, answer as Gradio does
    (its page and its Python client read FastAPI's list `detail` of its 422s)."""
    r = client.post("/gradio_api/queue/join", json={})
    assert r.status_code == 422 and isinstance(r.json()["detail"], list) and "error" not in r.json(), r.text
    r = client.get("/gradio_api/file=/etc/passwd")
    assert r.status_code == 403 and set(r.json()) == {"detail"}, r.text
    r = client.get("/gradio_api/no-such-route")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}
    assert client.get("/gradio_api/info").status_code == 200
    one_shape(client.post("/api/classify"), 422)  # the API beside it keeps its own


def test_a_multipart_body_cut_before_its_closing_boundary_says_so(client):
    """A body that ends before its closing boundary was "no files were sent" (the only file cut off), or a 200
    for the files before the cut, the cut one missing unseen. It is a 400 that says the upload was cut short."""
    body, headers = multipart(("a.png", png(1)), close=False)
    r = client.post("/api/classify", content=body[:-2], headers=headers)  # cut inside the only file
    assert "cut short" in one_shape(r, 400)["detail"]
    body, headers = multipart(("a.png", png(1)), ("b.png", png(2)), close=False)
    r = client.post("/api/classify", content=body[:-200], headers=headers)  # a.png whole, b.png cut
    assert "cut short" in one_shape(r, 400)["detail"]
    body, headers = multipart(("a.png", png(1)), ("b.png", png(2)))
    r = client.post("/api/classify", content=body, headers=headers)  # whole: both read
    assert r.status_code == 200 and [x["input"] for x in r.json()["results"]] == ["a.png", "b.png"], r.text
    r = client.post("/api/classify", content=b"--b--\r\n", headers=headers)  # whole, with no parts at all
    assert one_shape(r, 422)["detail"].startswith("no files were sent")


def test_a_file_name_too_long_for_the_multipart_parser_is_a_clear_400(client):
    """python-multipart refuses a part header past 4 KB; Starlette said only "Invalid multipart data."."""
    r = client.post("/api/classify", files=[("files", ("x" * 5000 + ".png", png(1), "image/png"))])
    body = one_shape(r, 400)
    assert "too long" in body["detail"] and "shorter name" in body["detail"], body
    r = client.post("/api/classify", files=[("files", ("x" * 900 + ".png", png(1), "image/png"))])
    assert r.status_code == 200 and r.json()["results"][0]["input"] == "x" * 900 + ".png"


def test_the_pages_slider_goes_to_one_as_the_api_and_the_cli_take_it(client):
    """The slider stopped at 0.99 (a typed 1 was set back, with a warning) while the API and the CLI take 1."""
    from medimg.server.ui import _in_range

    config = client.get("/config").json()
    slider = next(c["props"] for c in config["components"] if c["props"].get("elem_id") == "threshold")
    assert (slider["minimum"], slider["maximum"]) == (0.5, 1.0)
    assert _in_range(1.0, 0.6) == (1.0, {"__type__": "update"})
    assert _in_range("1", 0.6)[0] == 1.0
    one = [("files", ("one.png", png(1), "image/png"))]
    r = client.post("/api/classify?threshold=1", files=one)
    assert r.status_code == 200 and r.json()["threshold"] == 1.0


def test_addresses_a_time_limited_request_never_came_to_get_a_row_each(worker):
    """As files do: each address of `urls` after the time limit is a row saying it was not read; a name given
    twice in an upload keeps the name its result has (`scan (2).png`)."""
    with socket.socket() as s:  # a port nothing listens on: refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = ServerConfig(model_dir=worker.config.model_dir, request_timeout=1e-6, allow_private=True)
    c = TestClient(create_app(cfg, Worker(cfg, worker.classifier), ui=False))
    urls = [f"http://127.0.0.1:{port}/{n}.png" for n in "abc"]
    body = c.post("/api/classify-url", json={"urls": urls}).json()
    assert [x["input"] for x in body["results"]] == urls and "time limit" in body["note"]
    assert [x["error"] for x in body["results"][1:]] == ["not read: the time limit was reached before it"] * 2
    r = c.post("/api/classify", files=[("files", ("scan.png", png(1))), ("files", ("scan.png", png(2)))])
    assert [x["input"] for x in r.json()["results"]] == ["scan.png", "scan (2).png"]
