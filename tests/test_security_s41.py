"""A deployed server as a security review tests it, over real sockets on 127.0.0.1: the page, /docs and the API
could be shown in another site's frame (clickjacking: a page of any origin laying medimg's page out under its
own buttons), and a JSON body to the page nested a few thousand deep was a 500 with a traceback in the log."""

from __future__ import annotations

import logging

import httpx
import pytest

from test_server_limits import classifier, live  # noqa: F401  (the module's classifier fixture)

TOKEN = "s41-security-token"


@pytest.fixture(scope="module")
def server(classifier, tmp_path_factory):  # noqa: F811
    mp = pytest.MonkeyPatch()
    mp.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
    running = live(classifier, ui=True, token=TOKEN)
    yield running
    running.close()
    mp.undo()


def _framing_refused(r: httpx.Response) -> bool:
    return (r.headers.get("x-frame-options") == "DENY"
            and "frame-ancestors 'none'" in r.headers.get("content-security-policy", "")
            and r.headers.get("x-content-type-options") == "nosniff")


def test_no_answer_may_be_shown_in_another_sites_frame(server):
    auth = ("any", TOKEN)
    for path in ("/", "/docs", "/api/health", "/gradio_api/info", "/openapi.json"):
        r = httpx.get(server.url + path, auth=auth, timeout=30)
        assert r.status_code == 200, (path, r.status_code)
        assert _framing_refused(r), (path, dict(r.headers))
        assert r.headers.get("referrer-policy") == "same-origin", path
        assert len(r.headers.get_list("x-content-type-options")) == 1, path  # NoStore's and ours: one header
    refused = httpx.get(server.url + "/", timeout=30)  # no token: the login prompt's 401 too
    assert refused.status_code == 401 and _framing_refused(refused), dict(refused.headers)


def test_a_page_event_nested_thousands_deep_is_refused_not_a_server_error(server, caplog):
    body = "[" * 200_000  # 200 KB; Python's JSON parser gives up at about 1,000 levels
    with caplog.at_level(logging.ERROR):
        r = httpx.post(server.url + "/gradio_api/queue/join", content=body, auth=("any", TOKEN),
                       headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 400, (r.status_code, r.text[:200])
    assert "nested" in r.json()["error"]
    assert not [rec for rec in caplog.records if rec.exc_info], [rec.getMessage() for rec in caplog.records]
