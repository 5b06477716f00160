"""The API's one error shape (a string `detail` always, `errors` on a 422), malformed uploads said as they
are, the page's routes left with Gradio's answers, and a threshold of 1 taken by the page as by the API."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from medimg.model.classifier import ASSETS
from medimg.server import ServerConfig, Worker, create_app


def png(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (120, 90), ((seed * 70) % 256, (seed * 130) % 256, 40)).save(buf, "PNG")
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


# ------------------------------------------------------------------ one error shape


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


# ------------------------------------------------------------------ malformed uploads


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


# ------------------------------------------------------------------ the threshold's range


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
