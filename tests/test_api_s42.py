"""The HTTP API as another program calls it: a parameter given twice, and what the schema says of `urls`."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from medimg.server import ServerConfig, Worker, create_app
from test_openapi_s33 import classifier, conforms  # noqa: F401 (a fixture)


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 90, 200)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def client(classifier):  # noqa: F811
    cfg = ServerConfig()
    return TestClient(create_app(cfg, Worker(cfg, classifier), ui=False), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def spec(client) -> dict:
    return client.get("/openapi.json").json()


def refused_twice(spec, r, name: str, where: str) -> None:
    """A 422 in the errors' documented shape that names the parameter and where it was given twice."""
    assert r.status_code == 422, (r.status_code, r.text[:300])
    body = conforms(spec, "POST", r.request.url.path, 422, r.headers, r.content)
    assert body["error"].startswith(f"{name} is given") and "different values" in body["error"], body
    assert body["errors"][0]["loc"] == [where, name]


def test_a_parameter_given_twice_with_different_values_is_a_422_not_the_last_one_unseen(client, spec):
    """`?threshold=0.9&threshold=0.7` ran at 0.7, and so did the form's two `threshold` fields and a JSON body
    with the key twice: the first value was dropped unseen, where the same value given in the query and the form
    is already a 422 when they differ."""
    files = [("files", ("a.png", png()))]
    r = client.post("/api/classify", params=[("threshold", "0.9"), ("threshold", "0.7")], files=files)
    refused_twice(spec, r, "threshold", "query")
    r = client.post("/api/classify", data={"threshold": ["0.9", "0.7"]}, files=files)
    refused_twice(spec, r, "threshold", "body")
    r = client.post("/api/classify", params=[("full", "true"), ("full", "false")], files=files)
    refused_twice(spec, r, "full", "query")
    r = client.post("/api/classify", data={"show_skipped": ["false", "true"]}, files=files)
    refused_twice(spec, r, "show_skipped", "body")
    r = client.post("/api/classify", params=[("threshold", "abc"), ("threshold", "0.9")], files=files)
    refused_twice(spec, r, "threshold", "query")  # FastAPI read the last alone, and passed it

    url = {"url": "http://no-such-host.invalid/a.png"}
    r = client.post("/api/classify-url", params=[("threshold", "0.9"), ("threshold", "0.7")], json=url)
    refused_twice(spec, r, "threshold", "query")
    r = client.post("/api/classify-url", params=[("render", "false"), ("render", "true")], json=url)
    refused_twice(spec, r, "render", "query")
    r = client.post("/api/classify-url", content=b'{"url": "http://no-such-host.invalid/", "threshold": 0.9, '
                    b'"threshold": 0.7}', headers={"content-type": "application/json"})
    refused_twice(spec, r, "threshold", "body")
    assert "0.9 and 0.7" in r.json()["error"]

    # the same value given twice, however written, is that value
    r = client.post("/api/classify", params=[("threshold", "0.9"), ("threshold", "0.90")],
                    data={"threshold": ["0.9", " 0.9"], "full": ["true", "1"]}, files=files)
    assert r.status_code == 200, r.text[:300]
    assert r.json()["threshold"] == 0.9 and "probs" in r.json()["results"][0]
    r = client.post("/api/classify-url", content=b'{"url": "http://no-such-host.invalid/", "full": true, '
                    b'"full": true, "threshold": 0.9, "threshold": 0.90}', headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["threshold"] == 0.9, r.text[:300]


def test_the_schema_says_which_refused_address_in_urls_is_a_400_and_which_a_result(client, spec):
    """The schema said any refused address in `urls` is a result with its error; one that is not http(s) makes
    the whole request a 400 (a path there would name a file of the server's)."""
    said = spec["components"]["schemas"]["UrlRequest"]["properties"]["urls"]["description"]
    r = client.post("/api/classify-url", json={"urls": ["http://127.0.0.1/a.png"]})
    assert r.status_code == 200 and "refused" in r.json()["results"][0]["error"]
    assert "private address" in said and "is a result with its error" in said
    r = client.post("/api/classify-url", json={"urls": ["http://no-such-host.invalid/", "ftp://example.org/a"]})
    assert r.status_code == 400
    assert "not http(s)" in said and "400" in said
