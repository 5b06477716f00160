"""The HTTP API as a client developer integrating it calls it (session 45): URLs that are not valid ones."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from medimg.server import ServerConfig, Worker, create_app
from medimg.sources import net
from test_openapi_s33 import classifier, conforms  # noqa: F401 (a fixture)


@pytest.fixture(scope="module")
def client(classifier):  # noqa: F811
    cfg = ServerConfig()
    return TestClient(create_app(cfg, Worker(cfg, classifier), ui=False), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def spec(client) -> dict:
    return client.get("/openapi.json").json()


def refused(spec, r, *words: str) -> dict:
    """A 400 in the errors' documented shape whose sentence holds `words`."""
    assert r.status_code == 400, (r.status_code, r.text[:300])
    body = conforms(spec, "POST", "/api/classify-url", 400, r.headers, r.content)
    for word in words:
        assert word in body["error"], body
    return body


def test_an_empty_address_after_a_good_one_in_urls_says_so(client, spec):
    """`{"urls": ["http://…/a.png", ""]}` was a 400 saying only "Bad Request": the empty address is falsy, so the
    first (good) one was checked for the refusal's words, and it had none."""
    r = client.post("/api/classify-url", json={"urls": ["http://127.0.0.1:1/a.png", ""]})
    refused(spec, r, "the URL is empty")
    r = client.post("/api/classify-url", json={"urls": ["http://127.0.0.1:1/a.png", "   "]})
    refused(spec, r, "the URL is empty")


@pytest.mark.parametrize("url", ["http://xn--/", "https://xn--a/a.png"])
def test_a_host_that_is_not_a_valid_idna_name_is_a_400_not_a_500(client, spec, url):
    """httpx parses `http://xn--/` and raises only when its host is read (IDNAError): the single address and the
    list both failed with a 500 and a traceback in the log."""
    refused(spec, client.post("/api/classify-url", json={"url": url}), "invalid URL")
    refused(spec, client.post("/api/classify-url", json={"urls": ["http://127.0.0.1:1/a.png", url]}), "invalid URL")
    with pytest.raises(net.FetchError, match="invalid URL"):
        net.check_url(url, allow_private=False)


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/a.png", "http://127.0.0.1:0/", "http://127.0.0.1:-1/"])
def test_a_port_out_of_range_is_a_400_not_a_connection_refused(client, spec, url):
    """httpx takes any number as the port: :99999 came back as "connection refused (nothing listens at that
    address and port)", :-1 as "[Errno -8] Servname not supported for ai_socktype", both 200s."""
    body = refused(spec, client.post("/api/classify-url", json={"url": url}), "port", "not from 1 to 65535")
    assert "connection refused" not in body["error"]
    refused(spec, client.post("/api/classify-url", json={"urls": [url]}), "not from 1 to 65535")
    assert net.port_ok(65535) and net.port_ok(None) and not net.port_ok(65536)


def png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 90, 200)).save(buf, "PNG")
    return buf.getvalue()


def dotnet_upload(client, *names: str):
    """A multipart body as .NET's HttpClient (and PowerShell's Invoke-RestMethod) send a file name that is not
    ASCII: `filename` as RFC 2047 encoded words, the name itself in `filename*`, which the parser does not read."""
    import base64
    from urllib.parse import quote

    body = b""
    for name in names:
        word = "=?utf-8?B?" + base64.b64encode(name.encode()).decode() + "?="
        body += (f'--b0undary\r\nContent-Disposition: form-data; name=files; filename="{word}"; '
                 f"filename*=utf-8''{quote(name)}\r\nContent-Type: image/png\r\n\r\n").encode() + png() + b"\r\n"
    return client.post("/api/classify", content=body + b"--b0undary--\r\n",
                       headers={"content-type": "multipart/form-data; boundary=b0undary"})


def test_a_name_sent_as_encoded_words_by_a_dotnet_client_comes_back_as_its_name(client, spec):
    """An upload named `снимок.png` by a .NET client came back as `=?utf-8?B?0YHQvdC40LzQvtC6LnBuZw==?=`: a name
    the client cannot map back to its file, without its extension."""
    r = dotnet_upload(client, "снимок.png", "新建文本文档 1.png", "../../etc/x.png")
    assert r.status_code == 200, r.text[:300]
    body = conforms(spec, "POST", "/api/classify", 200, r.headers, r.content)
    assert [x["input"] for x in body["results"]] == ["снимок.png", "新建文本文档 1.png", "x.png"], body["results"]
    assert body["summary"]["images"] == 3


def test_a_name_that_only_looks_like_encoded_words_is_kept_as_sent():
    from medimg.server.api import _display_name

    assert _display_name("=?UTF-8?Q?caf=C3=A9_x.png?=", 1) == "café x.png"
    assert _display_name("=?iso-8859-1?Q?caf=E9.png?=", 1) == "café.png"
    for name in ("=?no-such-charset?B?YQ==?=", "=?utf-8?B?!!!?=", "=?x.png", "a =?utf-8?B?YQ==?= b.png", "a.png"):
        assert _display_name(name, 1) == name


def test_the_docs_answer_head_as_they_answer_get(client):
    """HEAD /docs (an uptime monitor's probe) was a 405, or with the page mounted at / a 404 (it fell through to
    the page), though GET /docs is a 200; the Swagger files too."""
    for path in ("/docs", "/docs-static/swagger-ui.css", "/openapi.json", "/api/health"):
        got, head = client.get(path), client.head(path)
        assert got.status_code == 200 and head.status_code == 200, (path, got.status_code, head.status_code)
        assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"], path
    assert client.head("/docs-static/no-such-file.js").status_code == 404


def test_with_show_skipped_a_skipped_note_is_told_from_an_error_without_full(client, spec):
    """With show_skipped (and not full) a decoration's note came as a record with `error` set and no `skipped`:
    a client counted it as an error, though the summary said 0 errors and 1 skipped."""
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 0, 0)).save(buf, "PNG")  # a page's icon: a decoration, skipped
    page = f'<html><img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"></html>'
    upload = [("files", ("page.html", page.encode(), "text/html")), ("files", ("bad.png", b"not a png")),
              ("files", ("a.png", png()))]
    r = client.post("/api/classify", params={"show_skipped": "true"}, files=upload)
    body = conforms(spec, "POST", "/api/classify", r.status_code, r.headers, r.content)
    assert r.status_code == 200 and body["summary"]["skipped"] == 1 and body["summary"]["errors"] == 1, body
    rows = {x["input"]: x for x in body["results"]}
    assert rows["page.html"]["skipped"] is True and "decoration" in rows["page.html"]["error"]
    assert rows["bad.png"]["skipped"] is False and rows["bad.png"]["error"]
    assert rows["a.png"]["skipped"] is False and rows["a.png"]["error"] is None
    assert "probs" not in rows["a.png"]  # not the full record
    assert sum(x["error"] is not None and not x["skipped"] for x in body["results"]) == body["summary"]["errors"]
    r = client.post("/api/classify", files=upload)  # without show_skipped: as before, no `skipped` field
    assert [set(x) for x in r.json()["results"]] == [set(rows["a.png"]) - {"skipped"}] * 2, r.json()["results"]


@pytest.mark.parametrize("field", ["file", "files[]", "upload"])
def test_files_sent_under_another_name_are_named_in_the_422(client, spec, field):
    """`-F file=@scan.dcm` (or `files[]`, as some clients name a list) was "no files were sent", which left the
    client looking for what it had sent; it now names the field the files came in."""
    r = client.post("/api/classify", files=[(field, ("a.png", png())), (field, ("b.png", png()))])
    assert r.status_code == 422, r.text[:300]
    body = conforms(spec, "POST", "/api/classify", 422, r.headers, r.content)
    assert body["error"].startswith("no files were sent") and repr(field) in body["error"], body
    assert body["errors"] == [{"loc": ["body", "files"], "msg": body["error"], "type": "missing"}]
    r = client.post("/api/classify", data={"threshold": "0.7"})  # no file at all: as before
    assert r.status_code == 422 and r.json()["error"] == ("no files were sent: upload one or more files in the "
                                                          "multipart field 'files'"), r.text[:300]


def test_a_file_sent_without_a_file_name_over_1_mb_is_not_told_of_a_1_mb_cap(client, spec):
    """A `files` part without filename= is a form field: under 1 MB it is the 422 "every 'files' part must be a file
    upload with a file name", over 1 MB it was a 400 "Part exceeded maximum size of 1024KB." (Starlette's cap on a
    field's value), which read as a cap of 1 MB on each file on a server that takes 200 MB. A url-encoded form
    with a field that big was "Field exceeded maximum size of 1024KB."."""
    data = b"\x00" * (1024 * 1024 + 10)
    body = (b'--XyZ\r\nContent-Disposition: form-data; name="files"\r\nContent-Type: application/dicom\r\n\r\n'
            + data + b"\r\n--XyZ--\r\n")
    r = client.post("/api/classify", content=body, headers={"content-type": "multipart/form-data; boundary=XyZ"})
    said = conforms(spec, "POST", "/api/classify", r.status_code, r.headers, r.content)["error"]
    assert r.status_code == 400 and "a part without a file name" in said and "1024KB" not in said, said
    r = client.post("/api/classify", data={"files": "a" * (1024 * 1024 + 10)})  # url-encoded
    said = conforms(spec, "POST", "/api/classify", r.status_code, r.headers, r.content)["error"]
    assert r.status_code == 400 and said.startswith("no files were sent") and "url-encoded" in said, said


def test_behind_a_proxy_that_keeps_its_prefix_a_wrong_method_is_a_405_not_a_404(classifier):  # noqa: F811
    """With --root-path /medimg and a proxy that passes the prefix on, `GET /medimg/api/classify` was a 404 "there
    is no /medimg/api/classify" (the path was matched with its prefix), where without it it is a 405 naming
    POST; a 404 listed the routes without the prefix the client has to use."""
    cfg = ServerConfig(root_path="/medimg")
    prefixed = TestClient(create_app(cfg, Worker(cfg, classifier), ui=False), raise_server_exceptions=False)
    spec = prefixed.get("/medimg/openapi.json").json()
    for path in ("/medimg/api/classify", "/api/classify"):  # the prefix kept, or stripped by the proxy
        r = prefixed.get(path)
        assert r.status_code == 405 and r.headers["allow"] == "POST", (path, r.status_code, r.text[:200])
        assert r.json()["error"] == f"{path} does not take GET; use POST"
    r = prefixed.delete("/medimg/api/health")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD", r.text[:200]
    r = prefixed.get("/medimg/api/nope")
    assert r.status_code == 404 and "the API has /medimg/api/health, /medimg/api/classify" in r.json()["error"]
    assert set(r.json()) == set(spec["components"]["schemas"]["ErrorOut"]["required"])
