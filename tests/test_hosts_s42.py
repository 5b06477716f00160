"""DNS rebinding: a token-less `medimg serve` on loopback answers only to localhost, IP addresses and the names
given with --allowed-host, so a page of another site that points its own name at 127.0.0.1 is refused."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from medimg.cli import app as cli_app
from medimg.model.classifier import ASSETS
from medimg.server import ServerConfig, Worker, create_app
from medimg.server.app import access_note
from medimg.server.config import answered_hosts
from medimg.server.hosts import host_name, local_name


def _client(request, **settings) -> TestClient:
    model_dir = None if (ASSETS / "labels.json").exists() else request.getfixturevalue("tiny_model_dir")
    cfg = ServerConfig(model_dir=model_dir, **settings)
    return TestClient(create_app(cfg, Worker(cfg), ui=False))


@pytest.mark.parametrize("header, name", [("127.0.0.1:7860", "127.0.0.1"), ("[::1]:7860", "::1"), ("[::1]", "::1"),
                                          ("LocalHost:80", "localhost"), ("evil.example.", "evil.example"),
                                          ("Evil.Example:8080", "evil.example"), ("::1", "::1")])
def test_the_name_in_a_host_header(header, name):
    assert host_name(header) == name


def test_local_names_are_addresses_and_localhost_only():
    for name in ("localhost", "app.localhost", "127.0.0.1", "10.0.0.7", "::1", "fe80::1%eth0"):
        assert local_name(name), name
    for name in ("evil.example", "localhost.evil.example", "127.0.0.1.nip.io", "", "testserver"):
        assert not local_name(name), name


def test_serve_checks_names_only_without_a_token_on_loopback():
    assert answered_hosts([], "127.0.0.1", None) == ()
    assert answered_hosts([], "localhost", None) == ()
    assert answered_hosts([], "127.0.0.1", "secret") is None  # the token stops a rebinding page
    assert answered_hosts([], "0.0.0.0", None) is None  # its names cannot be known
    assert answered_hosts(["medimg.example.org"], "0.0.0.0", "secret") == ("medimg.example.org",)
    assert answered_hosts(["a.example", "*"], "127.0.0.1", None) is None


def test_another_name_is_refused_and_local_names_are_answered(request):
    client = _client(request, allowed_hosts=())
    refused = client.get("/api/classify", headers={"host": "rebind.example:7860"})
    assert refused.status_code == 403
    assert "--allowed-host rebind.example" in refused.json()["error"]
    assert refused.headers["x-frame-options"] == "DENY"
    for host in ("127.0.0.1:7860", "localhost:7860", "[::1]:7860", "192.168.1.20"):
        assert client.get("/api/classify", headers={"host": host}).status_code == 405, host  # answered: POST only
    page = client.get("/", headers={"host": "rebind.example"})
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/plain")


def test_a_health_probe_is_answered_by_any_name(request):
    """As without the token: a load balancer's probe by the site's name says only that the model is up."""
    client = _client(request, allowed_hosts=())
    assert client.get("/api/health", headers={"host": "medimg.example.org"}).status_code == 200
    assert client.head("/api/health", headers={"host": "medimg.example.org"}).status_code == 200
    assert client.post("/api/health", headers={"host": "medimg.example.org"}).status_code == 403


def test_names_given_are_answered(request):
    client = _client(request, allowed_hosts=("medimg.example.org",))
    assert client.get("/api/classify", headers={"host": "MEDIMG.example.org:443"}).status_code == 405
    assert client.get("/api/classify", headers={"host": "other.example.org"}).status_code == 403


def test_the_python_apis_default_answers_any_name(request):
    assert _client(request).get("/api/classify", headers={"host": "any.example"}).status_code == 405


def test_the_log_says_which_names_are_answered():
    level, line = access_note(ServerConfig(host="127.0.0.1", token=None, allowed_hosts=("a.example",)))
    assert level == logging.INFO and "by localhost, IP addresses, a.example" in line


@pytest.mark.parametrize("name", ["a b", "http://x.example/", "", "*.example.org"])
def test_a_bad_allowed_host_is_a_usage_error(name, request):
    from typer.testing import CliRunner

    args = ["serve", "--port", "1", "--allowed-host", name]
    if not (ASSETS / "labels.json").exists():
        args += ["--model", str(request.getfixturevalue("tiny_model_dir"))]
    result = CliRunner().invoke(cli_app, args, env={"MEDIMG_TOKEN": None})
    assert result.exit_code == 2 and "--allowed-host" in result.output


def _serve(tmp_path, request, *extra) -> tuple[subprocess.Popen, int]:
    from test_ui_browser import free_port

    port = free_port()
    cmd = [sys.executable, "-m", "medimg.cli", "serve", "--port", str(port), *extra]
    if not (ASSETS / "labels.json").exists():
        cmd += ["--model", str(request.getfixturevalue("tiny_model_dir"))]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    env.pop("MEDIMG_TOKEN", None)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            time.sleep(0.3)
    _stop(proc)
    pytest.fail("medimg serve did not answer within 90 s")


def _stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_a_rebinding_page_in_chromium_is_refused_and_a_given_name_works(tmp_path, request):
    """Chromium resolves rebind.example and given.example to 127.0.0.1, as a rebinding site's DNS would: a serve
    without a token, given only given.example, refuses the first's page and its script's calls and answers the
    second and its own address."""
    from test_ui_browser import ARGS, CHROMIUM

    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    args = ARGS + ["--host-resolver-rules=MAP rebind.example 127.0.0.1, MAP given.example 127.0.0.1"]
    proc, port = _serve(tmp_path, request, "--allowed-host", "given.example")
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=args)
            try:
                page = browser.new_page()
                assert page.goto(f"http://rebind.example:{port}/").status == 403
                assert "does not answer to the name 'rebind.example'" in page.content()
                # what the rebinding page's own script would do: its fetch is refused too
                assert page.evaluate("fetch('/api/classify').then(r => r.status)") == 403
                assert page.goto(f"http://given.example:{port}/").status == 200
                page.wait_for_selector("#run", timeout=30_000)
                assert page.evaluate("fetch('/api/health').then(r => r.status)") == 200
                assert page.goto(f"http://127.0.0.1:{port}/").status == 200  # its own address: always answered
            finally:
                browser.close()
    finally:
        _stop(proc)
