"""Every answer the API sends is what its published /openapi.json says: each route driven through successful and
failing requests, each status listed in that operation's `responses`, each body valid against the schema given
there for that status and content type ($refs resolved), each header it documents sent. A client generated from
the schema (openapi-generator) or a schema-checking proxy in front of the server relies on all of it."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import jsonschema  # the dev extra's (pyproject.toml)
import pytest
from fastapi.testclient import TestClient

from medimg.model.classifier import ASSETS
from medimg.pipeline import Record
from medimg.server import ServerConfig, Worker, create_app
from medimg.server.work import Outcome
from test_api import DICOM_DIR, LiveServer, jpeg, pdf, png, zipped

SEEN: set[tuple[str, str, str]] = set()  # (path, method, status) answered, for the last test
TOKEN = "s33-token"


@pytest.fixture(scope="module")
def classifier(request):
    from medimg.model import Classifier
    from medimg.pipeline import default_classifier

    if (ASSETS / "labels.json").exists():
        return default_classifier()
    return Classifier.load(request.getfixturevalue("tiny_model_dir"))


def app(classifier, worker_class=Worker, **settings):
    cfg = ServerConfig(**settings)
    return create_app(cfg, worker_class(cfg, classifier), ui=False)


@pytest.fixture(scope="module")
def client(classifier):
    return TestClient(app(classifier, max_files=4, max_upload_bytes=1 << 20), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def spec(client) -> dict:
    return client.get("/openapi.json").json()


def conforms(spec: dict, method: str, path: str, status: int, headers, body: bytes, template: str | None = None):
    """The answer is one the operation documents: its status listed, its content type listed for that status,
    its body valid against that schema, the headers documented for that status sent."""
    template = template or path
    op = spec["paths"][template][method.lower()]
    SEEN.add((template, method.lower(), str(status)))
    listed = op["responses"]
    assert str(status) in listed, f"{method} {path}: {status} is sent but not listed (listed: {sorted(listed)})"
    documented = listed[str(status)]
    for name in documented.get("headers", {}):
        assert name.lower() in {k.lower() for k in headers}, f"{method} {path} {status}: no {name} header"
    content = documented.get("content", {})
    ctype = headers.get("content-type", "").split(";")[0].strip()
    if not body and not content:
        return None
    assert ctype in content, f"{method} {path} {status}: sent as {ctype!r}, documented as {sorted(content)}"
    doc = json.loads(body)
    schema = {"allOf": [content[ctype]["schema"]], "components": spec["components"]}  # its $refs resolve here
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, f"{method} {path} {status}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in errors[:5])
    return doc


def check(spec, r: httpx.Response, status: int, template: str | None = None):
    assert r.status_code == status, (r.status_code, r.text[:500])
    return conforms(spec, r.request.method, r.request.url.path, r.status_code, r.headers, r.content, template)


def files(*named) -> list:
    return [("files", item) for item in named]


# ------------------------------------------------------------------ the schema itself


def test_the_schema_is_valid_openapi_and_its_schemas_valid_json_schema(spec):
    assert spec["openapi"].startswith("3.1")
    for name, schema in spec["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op["responses"], (path, method)
            assert "default" not in op["responses"]  # each status named, so a client knows each shape


def test_every_operation_documents_its_answers_in_full(spec):
    """Field types a generated client can rely on: a verdict is one of three words, the health check and the
    summary name their fields, every error status has the one error shape."""
    schemas = spec["components"]["schemas"]
    verdict = schemas["RecordOut"]["properties"]["verdict"]
    assert {"enum": ["medical", "non-medical", "uncertain"], "type": "string"} in verdict["anyOf"], verdict
    health = spec["paths"]["/api/health"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert health == {"$ref": "#/components/schemas/HealthOut"}, health
    assert set(schemas["HealthOut"]["required"]) == {"status", "model", "render"}
    summary = schemas["ClassifyResponse"]["properties"]["summary"]
    assert summary.get("$ref") == "#/components/schemas/SummaryOut", summary
    assert set(schemas["SummaryOut"]["required"]) == {"images", "errors", "skipped", "verdicts", "labels"}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for status, answer in op["responses"].items():
                if status.startswith(("4", "5")):
                    assert answer["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorOut"}, (path, method, status)


def test_each_route_lists_the_statuses_and_headers_it_sends(spec, locked):
    """A 501 only where `render` is asked (uploads never render), a 408 where a body may stall, the Retry-After
    of a 503 and the WWW-Authenticate of a 401 (with a token) documented as sent."""
    ops = {path: op["post" if "post" in op else "get"] for path, op in spec["paths"].items()}
    expected = {"/api/health": {"200", "500"},
                "/api/classify": {"200", "400", "408", "413", "415", "422", "500", "503", "504"},
                "/api/classify-url": {"200", "400", "408", "413", "415", "422", "500", "501", "503", "504"}}
    assert {path: set(op["responses"]) for path, op in ops.items()} == expected
    for path in ("/api/classify", "/api/classify-url"):
        assert "Retry-After" in ops[path]["responses"]["503"]["headers"], path
        answers = locked[1]["paths"][path]["post"]["responses"]
        assert set(answers) == expected[path] | {"401"}
        assert "WWW-Authenticate" in answers["401"]["headers"], path


# ------------------------------------------------------------------ /api/health


def test_health(client, spec, classifier):
    body = check(spec, client.get("/api/health"), 200)
    assert body["model"]["labels"] == classifier.labels
    r = client.head("/api/health")  # load balancers probe with HEAD: the GET's answer without its body
    assert r.status_code == 200 and not r.content


def test_health_of_a_model_whose_labels_json_gives_numbers_as_name_and_version(tmp_path, tiny_model_dir, spec):
    """As /api/classify names such a model ("3"), so does /api/health: the schema says strings."""
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    meta = json.loads((folder / "labels.json").read_text())
    (folder / "labels.json").write_text(json.dumps({**meta, "name": 7, "version": 3}))
    cfg = ServerConfig(model_dir=folder)
    c = TestClient(create_app(cfg, Worker(cfg), ui=False), raise_server_exceptions=False)
    assert check(spec, c.get("/api/health"), 200)["model"]["version"] == "3"
    r = c.post("/api/classify", files=files(("one.png", png(1))))
    assert check(spec, r, 200)["model"] == {"name": "7", "version": "3"}


class BrokenWorker(Worker):
    def model_info(self) -> dict:
        raise RuntimeError("the model went away")

    def run(self, *args, **kwargs):
        raise RuntimeError("the pipeline failed")


def test_a_failing_server_answers_each_route_with_a_documented_500(classifier, spec):
    c = TestClient(app(classifier, BrokenWorker, allow_private=True), raise_server_exceptions=False)
    check(spec, c.get("/api/health"), 500)
    check(spec, c.post("/api/classify", files=files(("a.png", png(1)))), 500)
    check(spec, c.post("/api/classify-url", json={"url": "http://127.0.0.1:9/"}), 500)


# ------------------------------------------------------------------ /api/classify


def test_classify_answers_of_every_kind(client, spec):
    many = files(("one.png", png(1), "image/png"), ("two.jpg", jpeg(2), "image/jpeg"),
                 ("scans.zip", zipped({"a/x.png": png(3), "a/notes.txt": b"hello"}), "application/zip"),
                 ("broken.png", png(5)[:60], "image/png"))
    body = check(spec, client.post("/api/classify", files=many), 200)
    assert any(r["error"] for r in body["results"]) and any(r["error"] is None for r in body["results"])
    errors = [r for r in body["results"] if r["error"]]
    assert all(r["width"] is None and r["height"] is None and r["verdict"] is None for r in errors), errors
    dicoms = files(*[(p.name, p.read_bytes(), "application/dicom") for p in
                     (DICOM_DIR / "CT_small.dcm", DICOM_DIR / "MR_small.dcm")], ("report.pdf", pdf(2)))
    body = check(spec, client.post("/api/classify?full=true&show_skipped=true", files=dicoms), 200)
    assert all("probs" in r and "metadata" in r for r in body["results"])
    body = check(spec, client.post("/api/classify", files=files(("a.png", png(1))),
                                   data={"threshold": "0.95", "full": "true"}), 200)
    assert body["threshold"] == 0.95
    check(spec, client.post("/api/classify", files=files(("nothing.txt", b""))), 200)


def test_results_cut_short_by_the_time_limit_are_a_documented_200_with_its_note(classifier, spec):
    c = TestClient(app(classifier, request_timeout=1e-6), raise_server_exceptions=False)
    r = c.post("/api/classify", files=files(*[(f"{i}.png", png(i)) for i in range(3)]))
    assert "time limit" in check(spec, r, 200)["note"]


@pytest.mark.parametrize("how", ["no files", "json body", "threshold 2", "threshold twice", "misspelt",
                                 "unknown form field", "a field, not a file"])
def test_classify_refuses_bad_fields_with_a_documented_422(client, spec, how):
    one = files(("a.png", png(1)))
    r = {"no files": lambda: client.post("/api/classify"),
         "json body": lambda: client.post("/api/classify", json={"files": ["a.png"]}),
         "threshold 2": lambda: client.post("/api/classify?threshold=2", files=one),
         "threshold twice": lambda: client.post("/api/classify?threshold=0.6", files=one, data={"threshold": "0.7"}),
         "misspelt": lambda: client.post("/api/classify?treshold=0.6", files=one),
         "unknown form field": lambda: client.post("/api/classify", files=one, data={"workers": "4"}),
         "a field, not a file": lambda: client.post("/api/classify", data={"files": "a.png"}),
         }[how]()
    assert check(spec, r, 422)["errors"]


def multipart(parts: bytes, boundary: str = "b0undary") -> dict:
    return {"content": parts, "headers": {"content-type": f"multipart/form-data; boundary={boundary}"}}


@pytest.mark.parametrize("how", ["cut short", "not multipart", "no boundary", "too many files", "long header"])
def test_classify_refuses_a_malformed_upload_with_a_documented_400(client, spec, how):
    part = (b'--b0undary\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + png(1) + b"\r\n")
    if how == "cut short":
        r = client.post("/api/classify", **multipart(part))
    elif how == "not multipart":
        r = client.post("/api/classify", **multipart(b"this is not multipart"))
    elif how == "no boundary":
        r = client.post("/api/classify", content=part, headers={"content-type": "multipart/form-data"})
    elif how == "too many files":
        r = client.post("/api/classify", files=files(*[(f"{i}.png", png(i)) for i in range(5)]))
    else:
        r = client.post("/api/classify", files=files(("x" * 5000 + ".png", png(1))))
    check(spec, r, 400)


def test_classify_refuses_a_body_past_its_cap_with_a_documented_413(client, spec):
    r = client.post("/api/classify", files=files(("big.bin", b"\0" * (2 << 20))))
    check(spec, r, 413)
    r = client.post("/api/classify-url", content=b'{"url": "' + b"a" * 70_000 + b'"}',
                    headers={"content-type": "application/json"})
    check(spec, r, 413)


def test_uploads_past_what_the_server_holds_at_once_get_a_documented_503(spec):
    """BodyLimit's own 503 (the bytes of uploads held at once), as the route sends it."""
    from medimg.server.limits import BodyLimit

    async def echo(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    c = TestClient(BodyLimit(echo, max_upload_bytes=1000, max_body_bytes=100, max_held_bytes=500))
    check(spec, c.post("/api/classify", content=b"x" * 501), 503)


# ------------------------------------------------------------------ /api/classify-url


def test_classify_url_answers_of_every_kind(classifier, spec):
    from webserver import WebServer

    c = TestClient(app(classifier, allow_private=True), raise_server_exceptions=False)
    with WebServer() as srv:
        srv.add("/a.png", png(1, (200, 150)), "image/png")
        srv.add("/b.jpg", jpeg(2), "image/jpeg")
        srv.add("/dot.png", png(3, (8, 8)), "image/png")
        srv.add("/page.html", '<html><body><img src="a.png"><img src="b.jpg"><img src="gone.png">'
                              '<img src="dot.png"></body></html>')
        body = check(spec, c.post("/api/classify-url", json={"url": srv.url("/page.html")}), 200)
        assert len(body["results"]) == 3 and sum(r["error"] is not None for r in body["results"]) == 1
        r = c.post("/api/classify-url", json={"url": srv.url("/page.html"), "full": True, "show_skipped": True})
        assert any(x["skipped"] for x in check(spec, r, 200)["results"])
        r = c.post("/api/classify-url?full=true", json={"urls": [srv.url("/a.png"), srv.url("/missing.png")],
                                                        "threshold": 0.9, "show_skipped": True})
        check(spec, r, 200)
    closed = TestClient(app(classifier), raise_server_exceptions=False)
    r = closed.post("/api/classify-url", json={"urls": ["http://no-such-host.invalid/", "http://127.0.0.1/"]})
    assert [x["error"] is not None for x in check(spec, r, 200)["results"]] == [True, True]
    check(spec, closed.post("/api/classify-url", json={"url": "http://no-such-host.invalid/a.png"}), 200)


@pytest.mark.parametrize("body", [{"url": "http://127.0.0.1/"}, {"url": "ftp://example.org/"},
                                  {"url": "no scheme"}, {"urls": ["https://example.org/", "file:///etc/passwd"]}])
def test_classify_url_refuses_a_url_with_a_documented_400(client, spec, body):
    check(spec, client.post("/api/classify-url", json=body), 400)


def test_an_offline_server_refuses_urls_with_a_documented_400(classifier, spec):
    c = TestClient(app(classifier, offline=True), raise_server_exceptions=False)
    check(spec, c.post("/api/classify-url", json={"url": "https://example.org/"}), 400)


@pytest.mark.parametrize("how", ["form", "no body", "bad json", "a list", "neither", "both", "misspelt field",
                                 "threshold true", "too many urls", "query and body differ", "unknown query"])
def test_classify_url_refuses_bad_fields_with_a_documented_422(client, spec, how):
    url = "https://example.org/"
    post = lambda **kw: client.post("/api/classify-url", **kw)  # noqa: E731
    r = {"form": lambda: post(data={"url": url}),
         "no body": lambda: post(),
         "bad json": lambda: post(content=b"{", headers={"content-type": "application/json"}),
         "a list": lambda: post(json=[url]),
         "neither": lambda: post(json={}),
         "both": lambda: post(json={"url": url, "urls": [url]}),
         "misspelt field": lambda: post(json={"url": url, "treshold": 0.6}),
         "threshold true": lambda: post(json={"url": url, "threshold": True}),
         "too many urls": lambda: post(json={"urls": [url] * 21}),
         "query and body differ": lambda: client.post("/api/classify-url?full=false", json={"url": url, "full": True}),
         "unknown query": lambda: client.post("/api/classify-url?offline=1", json={"url": url}),
         }[how]()
    assert check(spec, r, 422)["errors"]


def test_render_on_a_server_that_cannot_is_a_documented_501(classifier, spec, monkeypatch):
    import medimg.server.api as api

    monkeypatch.setattr(api, "available", lambda: "no Chromium here")
    c = TestClient(app(classifier, allow_private=True), raise_server_exceptions=False)
    check(spec, c.post("/api/classify-url", json={"url": "http://127.0.0.1:9/", "render": True}), 501)


# ------------------------------------------------------------------ busy, time limits, slow bodies: a real server


class StubbornWorker(Worker):
    """Each run ignores every limit for 3.5 s (a slow decode, say)."""

    def run(self, *args, **kwargs):
        time.sleep(3.5)
        return Outcome([Record(input="late.png", locator="")])


@pytest.mark.parametrize("path", ["/api/classify", "/api/classify-url"])
def test_past_the_time_limit_and_when_busy_the_answers_are_documented(classifier, spec, path):
    """One slot, held past the time limit (a 504); a request waiting for it past the wait it may have (a 503,
    with its Retry-After)."""
    server = LiveServer(app(classifier, StubbornWorker, max_jobs=1, request_timeout=1.0, allow_private=True))

    def post(i: int) -> httpx.Response:
        if path == "/api/classify":
            return httpx.post(server.url + path, files=files((f"{i}.png", png(i))), timeout=10)
        return httpx.post(server.url + path, json={"url": f"http://127.0.0.1:9/{i}.png"}, timeout=10)

    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(post, 1)
            time.sleep(0.3)
            second = pool.submit(post, 2)
            check(spec, second.result(), 503)
            check(spec, first.result(), 504)
    finally:
        server.close()


@pytest.mark.parametrize("path, ctype, start", ids=["files", "url"], argvalues=[
    ("/api/classify", "multipart/form-data; boundary=b", b'--b\r\nContent-Disposition: form-data; name="files"; '
                                                         b'filename="a.png"\r\n\r\n'),
    ("/api/classify-url", "application/json", b'{"url": '),
])
def test_a_body_that_stops_arriving_gets_a_documented_408(classifier, spec, monkeypatch, path, ctype, start):
    from medimg.server import limits

    monkeypatch.setattr(limits, "BODY_IDLE_SECONDS", 1.0)
    server = LiveServer(app(classifier))
    try:
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: 1000\r\n"
                      f"\r\n".encode() + start)
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = httpx.Headers([tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:]])
        status = int(lines[0].split()[1])
        assert status == 408, answer
        conforms(spec, "POST", path, status, headers, body)
    finally:
        server.close()


# ------------------------------------------------------------------ the token


@pytest.fixture(scope="module")
def locked(classifier):
    c = TestClient(app(classifier, token=TOKEN), raise_server_exceptions=False)
    return c, c.get("/openapi.json", headers={"authorization": f"Bearer {TOKEN}"}).json()


def test_without_the_token_the_routes_answer_a_documented_401(locked):
    c, spec = locked
    check(spec, c.get("/api/health"), 200)  # open to load balancers
    check(spec, c.post("/api/classify", files=files(("a.png", png(1)))), 401)
    check(spec, c.post("/api/classify-url", json={"url": "https://example.org/"}), 401)
    check(spec, c.post("/api/classify", files=files(("a.png", png(1))), headers={"authorization": "Bearer no"}), 401)
    r = c.post("/api/classify", files=files(("a.png", png(1))), headers={"authorization": f"Bearer {TOKEN}"})
    check(spec, r, 200)


def test_the_token_is_in_the_schema_as_its_two_security_schemes(locked, spec):
    """A generated client knows to send the token (Bearer, or the Basic password), and that health needs none;
    a server without a token says nothing of one."""
    _, secured = locked
    schemes = secured["components"]["securitySchemes"]
    assert {(s["type"], s["scheme"]) for s in schemes.values()} == {("http", "bearer"), ("http", "basic")}
    for path, ops in secured["paths"].items():
        for op in ops.values():
            needs = [next(iter(s)) for s in op.get("security", secured.get("security", [])) if s]
            assert sorted(needs) == ([] if path == "/api/health" else sorted(schemes)), (path, op.get("security"))
    assert "securitySchemes" not in spec["components"] and "security" not in spec
    assert not any("401" in op["responses"] for ops in spec["paths"].values() for op in ops.values())


@pytest.mark.parametrize("path", ["/api/classify", "/api/classify-url"])
def test_a_compressed_body_is_a_415(client, spec, path):
    r = client.post(path, content=b"\x1f\x8b", headers={"content-type": "application/json", "content-encoding": "gzip"})
    check(spec, r, 415)


# ------------------------------------------------------------------ what is not in the schema


@pytest.mark.parametrize("method, path", [("POST", "/api/health"), ("GET", "/api/classify"),
                                          ("PUT", "/api/classify-url"), ("DELETE", "/api/classify")])
def test_a_method_a_route_does_not_take_is_a_405_of_the_error_shape_allowing_the_documented_ones(
        client, spec, method, path):
    """Not an operation, so no `responses` to list it in: its body is the schema's ErrorOut all the same, and its
    Allow header names the methods the schema documents for that path (and HEAD beside a GET)."""
    r = client.request(method, path)
    assert r.status_code == 405
    documented = {m.upper() for m in spec["paths"][path]}
    assert set(r.headers["allow"].split(", ")) == documented | ({"HEAD"} if "GET" in documented else set())
    error_out = {"$ref": "#/components/schemas/ErrorOut", "components": spec["components"]}
    jsonschema.validate(r.json(), error_out, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("path", ["/api", "/api/classify/", "/api/nothing", "/api/health/x"])
def test_a_path_the_api_does_not_have_is_a_404_of_the_error_shape(client, spec, path):
    r = client.post(path)
    assert r.status_code == 404 and path not in spec["paths"]
    error_out = {"$ref": "#/components/schemas/ErrorOut", "components": spec["components"]}
    jsonschema.validate(r.json(), error_out, cls=jsonschema.Draft202012Validator)


# ------------------------------------------------------------------ last: every documented answer was seen


def test_every_documented_status_was_sent_by_some_test_above(spec, request):
    """A status listed but never sent (a 501 on uploads, which never render) misleads a client as much as one
    sent but not listed. Meaningful only when the whole module ran."""
    mine = {item.originalname for item in request.session.items if item.module is request.module}
    defined = {name for name in dir(request.module) if name.startswith("test_")}
    if mine != defined or request.session.testsfailed:
        pytest.skip("only with the whole module run, and passing")
    documented = {(path, method, status) for path, ops in spec["paths"].items() for method, op in ops.items()
                  for status in op["responses"]}
    assert documented - SEEN == set()
