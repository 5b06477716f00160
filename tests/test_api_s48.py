"""The HTTP API as a hospital's IT integrator tries it (session 48): the /docs page's "Try it out"."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

import test_ui_browser
from medimg.server import ServerConfig, Worker, create_app
from test_openapi_s33 import classifier  # noqa: F401 (a fixture)
from test_ui_browser import picture

server, browser = test_ui_browser.server, test_ui_browser.browser  # its fixtures: `medimg serve`, Chromium


@pytest.fixture(scope="module")
def client(classifier):  # noqa: F811
    cfg = ServerConfig(allow_private=True)
    return TestClient(create_app(cfg, Worker(cfg, classifier), ui=False), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def spec(client) -> dict:
    return client.get("/openapi.json").json()


def test_the_upload_field_is_a_file_for_swagger_ui(spec):
    """/docs (Swagger UI 5) shows an array's items as files only for `format: binary`; FastAPI now writes OpenAPI
    3.1's contentMediaType alone, so "Try it out" on /api/classify gave text boxes for `files`, no file picker."""
    ref = spec["paths"]["/api/classify"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    files = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]["files"]
    assert files["type"] == "array"
    assert files["items"]["format"] == "binary", files
    assert files["items"]["contentMediaType"] == "application/octet-stream"  # OpenAPI 3.1's way stays


def test_the_upload_form_fields_offer_the_defaults(spec, client):
    """Swagger UI fills a form's fields with a sample of their schema: threshold 0.5 (its minimum), full and
    show_skipped true, so a first try in /docs ran at 0.5, not the model's threshold, with every field."""
    ref = spec["paths"]["/api/classify"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    props = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
    own = client.get("/api/health").json()["model"]["threshold"]
    assert props["threshold"]["examples"] == [own]
    assert props["full"]["examples"] == [False] and props["show_skipped"]["examples"] == [False]


def test_each_example_body_of_classify_url_is_a_request_it_takes(spec, client):
    """Swagger UI's own sample body held both `url` and `urls` (every property of the schema): sent as it was,
    "Try it out" gave the 422 "give url or urls, not both". The examples it offers now are each one a client can
    send (here with the test's own closed address in place of example.org: nothing is fetched)."""
    body = spec["paths"]["/api/classify-url"]["post"]["requestBody"]["content"]["application/json"]
    assert body["examples"]
    for name, example in body["examples"].items():
        value = json.loads(json.dumps(example["value"]).replace("https://example.org", "http://127.0.0.1:9"))
        assert ("url" in value) != ("urls" in value), (name, value)
        r = client.post("/api/classify-url", json=value)
        assert r.status_code == 200, (name, r.status_code, r.text[:300])
        assert all("connection refused" in rec["error"] for rec in r.json()["results"]), r.text[:300]


@pytest.mark.browser
def test_try_it_out_uploads_a_file_from_the_docs_page(browser, server, tmp_path):
    """In Chromium: /docs' "Try it out" on /api/classify offers a file picker, and Execute with one file gives its
    result at the model's own threshold (the form's fields as their defaults); on /api/classify-url the body it
    offers has one of url and urls."""
    base, info, _ = server
    scan = tmp_path / "knee.png"
    scan.write_bytes(picture(3))
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = ctx.new_page()
    outside = []

    def guard(route):  # nothing leaves 127.0.0.1: /docs' scripts are served by the server itself
        if route.request.url.startswith(("http://127.0.0.1:", "data:", "blob:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    try:
        page.goto(base + "/docs")
        page.wait_for_selector(".opblock", timeout=30_000)
        op = page.locator(".opblock", has=page.locator(".opblock-summary-path", has_text="/api/classify")).filter(
            has_not=page.locator(".opblock-summary-path", has_text="classify-url")).first
        op.locator(".opblock-summary").click()
        op.get_by_text("Try it out").click()
        picker = op.locator(".opblock-section-request-body input[type=file]")
        picker.first.wait_for(timeout=10_000)  # was a text box ("Add string item")
        picker.first.set_input_files(str(scan))
        op.locator("button.execute").click()
        op.locator(".live-responses-table .microlight").first.wait_for(timeout=60_000)
        answer = json.loads(op.locator(".live-responses-table .microlight").first.inner_text())
        assert [r["input"] for r in answer["results"]] == ["knee.png"], answer
        assert answer["threshold"] == info["threshold"] and "format" not in answer["results"][0], answer

        url_op = page.locator(".opblock", has=page.locator(".opblock-summary-path", has_text="classify-url")).first
        url_op.locator(".opblock-summary").click()
        url_op.get_by_text("Try it out").click()
        offered = json.loads(url_op.locator("textarea.body-param__text").input_value())
        assert ("url" in offered) != ("urls" in offered), offered
        assert not outside, outside
    finally:
        ctx.close()
