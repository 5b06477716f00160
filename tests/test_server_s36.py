"""The server as a hospital's IT would deploy it (s36): no other origin may read its answers in a browser (CORS
closed, Gradio's own CORS included), the log's first line names medimg's release beside the model's, and a request
cut off by the stop's graceful timeout is a 503, not a 500 and a traceback."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

import pytest
from fastapi.testclient import TestClient

from medimg import __version__
from medimg.server import ServerConfig, Worker, create_app
from medimg.server.work import Outcome
from test_api import free_port, png
from test_server_limits import classifier, uvicorn_served  # noqa: F401  (the module's classifier fixture)

TOKEN = "s36-token"


@pytest.fixture(scope="module")
def clients(classifier, tmp_path_factory):  # noqa: F811
    """The page and the API, open and with a token."""
    out = {}
    for name, token in (("open", None), ("token", TOKEN)):
        cfg = ServerConfig(token=token)
        out[name] = TestClient(create_app(cfg, Worker(cfg, classifier)), raise_server_exceptions=False)
    return out


# a deployed server (reached by its own name) and one on a workstation (localhost), each asked by another origin
ASKED = [("medimg.hospital.example", "https://evil.example"), ("localhost:7860", "http://localhost:9999"),
         ("127.0.0.1:7860", "http://127.0.0.1:8888")]
PATHS = ["/config", "/gradio_api/info", "/", "/api/health"]


@pytest.mark.parametrize("host,origin", ASKED)
@pytest.mark.parametrize("path", PATHS)
def test_another_origin_cannot_read_the_page_or_the_api(clients, host, origin, path):
    """Gradio's CORS, mounted under medimg, sent `Access-Control-Allow-Origin: <any origin>` with
    `Allow-Credentials: true` on the page's routes whenever the Host was not localhost, so any web page a
    hospital's staff opened could read (and drive) a server on their network; on localhost, any other local
    origin could. Now no origin is allowed; the same-origin page still loads."""
    for name, client in clients.items():
        auth = ("any", TOKEN) if name == "token" else None
        r = client.get(path, headers={"host": host, "origin": origin}, auth=auth)
        assert r.status_code == 200, (name, r.status_code, r.text[:200])
        assert not [k for k in r.headers if k.lower().startswith("access-control-")], (name, dict(r.headers))


@pytest.mark.parametrize("host,origin", ASKED)
@pytest.mark.parametrize("path", ["/gradio_api/upload", "/gradio_api/queue/join", "/api/classify"])
def test_a_browsers_preflight_from_another_origin_is_refused(clients, host, origin, path):
    headers = {"host": host, "origin": origin, "access-control-request-method": "POST",
               "access-control-request-headers": "content-type"}
    r = clients["open"].options(path, headers=headers)
    assert r.status_code >= 400 and "access-control-allow-origin" not in r.headers, (r.status_code, dict(r.headers))
    assert "access-control-allow-credentials" not in r.headers


def test_the_first_log_line_names_medimgs_release_and_the_models(classifier, monkeypatch, caplog, tmp_path):  # noqa: F811
    """An operator reading the journal sees which medimg is running, not only which model."""
    from medimg.server import app as server_app
    from medimg.server.app import run

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # run() makes a work folder its TMPDIR: not the suite's /tmp
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))

    class Started:  # uvicorn's Server, as far as run() uses it, without serving
        def __init__(self, config):
            self.started = False

        def run(self):
            self.started = True

    monkeypatch.setattr(server_app, "_server_class", lambda: Started)
    monkeypatch.setattr(server_app, "Worker", lambda config: Worker(config, classifier))
    with caplog.at_level(logging.INFO, logger="medimg.server"):
        run(ServerConfig(port=free_port()))
    first = next(r.getMessage() for r in caplog.records if r.name == "medimg.server")
    info = Worker(ServerConfig(), classifier).model_info()
    assert first.startswith(f"medimg {__version__}, model {info['name']} {info['version']};"), first


class UntilStopped(Worker):
    """A run that goes on until it is told to stop (a long page fetch, say)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.running, self.stopped = threading.Event(), threading.Event()

    def run(self, inputs, limits=None, threshold=None, stop=None, seconds=None):
        self.running.set()
        if stop.wait(30):
            self.stopped.set()
        return Outcome([])


def test_a_request_cut_by_the_stops_graceful_timeout_gets_a_503_and_one_log_line(classifier, caplog):  # noqa: F811
    """On SIGTERM, a request still running after --graceful-timeout was cancelled by uvicorn: its client got a
    bare 500 ("Internal Server Error") and the log a 90-line traceback, at every stop that cut one. Now its
    client gets the API's 503 with Retry-After, the log one warning, and the work is told to stop."""
    cfg = ServerConfig()
    worker = UntilStopped(cfg, classifier)
    app = create_app(cfg, worker, ui=False)
    with uvicorn_served(app, "uvicorn.error", log_level="warning", graceful=0.5) as (server, thread, base, said), \
            ThreadPoolExecutor(1) as pool, caplog.at_level(logging.WARNING, logger="medimg.server"):
        answer = pool.submit(httpx.post, base + "/api/classify", files=[("files", ("a.png", png(1)))], timeout=20)
        assert worker.running.wait(10)
        server.should_exit = True  # what uvicorn's SIGTERM handler does
        r = answer.result()
        thread.join(10)
    assert r.status_code == 503 and r.headers["retry-after"] == "5", (r.status_code, r.text)
    assert "the server stopped before this request ended" in r.json()["error"]
    assert worker.stopped.wait(5)
    assert not [x for x in said if x.exc_info], [x.getMessage() for x in said]
    assert 'the server stopped before "POST /api/classify" ended' in caplog.text
