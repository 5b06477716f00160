"""The access token: the API answers 401 without it, and the page works in Chromium once the browser has it."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from medimg.model.classifier import ASSETS
from medimg.server import ServerConfig, Worker, create_app
from medimg.server.auth import read_token

TOKEN = "c0rrect-horse-battery"


def basic(user: str, password: str) -> dict:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def client(request):
    model_dir = None if (ASSETS / "labels.json").exists() else request.getfixturevalue("tiny_model_dir")
    cfg = ServerConfig(model_dir=model_dir, token=TOKEN)
    return TestClient(create_app(cfg, Worker(cfg)))


def png() -> bytes:
    from test_ui_browser import picture

    return picture(1)


def test_without_the_token_everything_but_health_is_refused(client):
    assert client.get("/api/health").status_code == 200  # load balancers may look
    for method, path in [("get", "/"), ("get", "/docs"), ("get", "/openapi.json"), ("post", "/api/classify"),
                         ("post", "/api/classify-url"), ("get", "/config")]:
        r = getattr(client, method)(path)
        assert r.status_code == 401, (path, r.status_code)
        assert r.headers["www-authenticate"].startswith("Basic realm=") and "access token" in r.json()["error"]
    # only GET and HEAD of /api/health are open, as docs/server.md says: any other method needs the token too
    assert client.head("/api/health").status_code == 200
    for method in ("post", "put", "delete", "options"):
        assert client.request(method, "/api/health").status_code == 401, method
        r = client.request(method, "/api/health", headers={"authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD", (method, r.status_code)


@pytest.mark.parametrize("headers,ok", [
    ({"authorization": f"Bearer {TOKEN}"}, True),
    (basic("anyone", TOKEN), True),
    (basic("anyone", TOKEN + "x"), False),
    ({"authorization": "Bearer wrong"}, False),
    ({"authorization": "Basic not-base64!"}, False),
    ({"authorization": TOKEN}, False),
])
def test_bearer_or_basic_password(client, headers, ok):
    r = client.post("/api/classify", files=[("files", ("a.png", png(), "image/png"))], headers=headers)
    assert (r.status_code == 200) is ok, r.text
    if ok:
        assert r.json()["results"][0]["error"] is None


def test_token_file_and_environment(tmp_path, monkeypatch):
    path = tmp_path / "token"
    path.write_text(" s3cret \nsecond line ignored\n")
    assert read_token(path) == "s3cret"
    path.write_bytes(b"\xef\xbb\xbfs3cret\r\n")  # saved by Notepad as UTF-8 with BOM
    assert read_token(path) == "s3cret"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError):
        read_token(tmp_path / "empty")
    monkeypatch.setenv("MEDIMG_TOKEN", "from-env\n")  # a trailing newline (echo > file; export) is not part of it
    assert ServerConfig().token == "from-env"
    monkeypatch.delenv("MEDIMG_TOKEN")
    assert ServerConfig().token is None


@pytest.mark.parametrize("blank", ["", " ", "\n"])
def test_a_blank_token_in_the_environment_is_refused_not_taken_for_none(monkeypatch, blank):
    """MEDIMG_TOKEN set but blank (a secret that failed to fill in) stops `serve` with exit 2, not an open server."""
    from typer.testing import CliRunner

    from medimg.cli import app

    monkeypatch.setenv("MEDIMG_TOKEN", blank)
    with pytest.raises(ValueError, match="MEDIMG_TOKEN is set but empty"):
        ServerConfig()
    res = CliRunner().invoke(app, ["serve", "--port", "1"])
    assert res.exit_code == 2 and "MEDIMG_TOKEN is set but empty" in " ".join(res.output.split())
    assert ServerConfig(token="given").token == "given"  # a token given (--token-file) stands in for it


def test_an_open_server_beyond_this_machine_is_a_warning_in_the_log():
    import logging

    from medimg.server.app import access_note

    for host, token, level, words in [("127.0.0.1", None, logging.INFO, "open to anyone on this machine"),
                                      ("0.0.0.0", TOKEN, logging.INFO, "the token is needed"),
                                      ("0.0.0.0", None, logging.WARNING, "open to anyone who can reach 0.0.0.0"),
                                      ("10.1.2.3", None, logging.WARNING, "give --token-file")]:
        config = ServerConfig(host=host)
        config.token = token
        assert access_note(config)[0] == level and words in access_note(config)[1], host


@pytest.mark.browser
def test_the_page_works_in_chromium_with_the_token(tmp_path, request):
    """The browser is refused without credentials; with them (as after the login prompt) it classifies."""
    from test_ui_browser import ARGS, CHROMIUM, captions, free_port, picture, run_and_wait, upload

    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    (tmp_path / "token").write_text(TOKEN)
    port = free_port()
    cmd = [sys.executable, "-m", "medimg.cli", "serve", "--port", str(port), "--token-file", str(tmp_path / "token")]
    if not (ASSETS / "labels.json").exists():
        cmd += ["--model", str(request.getfixturevalue("tiny_model_dir"))]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    env.pop("MEDIMG_TOKEN", None)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            try:
                anon = browser.new_context()
                with pytest.raises(sync_api.Error, match="ERR_INVALID_AUTH_CREDENTIALS"):  # no login: refused
                    anon.new_page().goto(base + "/")
                assert anon.request.get(base + "/").status == 401
                anon.close()
                ctx = browser.new_context(http_credentials={"username": "radiology", "password": TOKEN})
                page = ctx.new_page()
                page.goto(base + "/")
                page.wait_for_selector("#run", timeout=30_000)
                (tmp_path / "knee.png").write_bytes(picture(2))
                upload(page, [tmp_path / "knee.png"])
                run_and_wait(page)
                assert len(captions(page)) == 1
                ctx.close()
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _token_client(request, token: str, **settings) -> TestClient:
    model_dir = None if (ASSETS / "labels.json").exists() else request.getfixturevalue("tiny_model_dir")
    cfg = ServerConfig(model_dir=model_dir, token=token, **settings)
    return TestClient(create_app(cfg, Worker(cfg), ui=False))


def test_a_token_with_a_colon_works_as_the_basic_password(request):
    """Basic auth splits user and password at the first colon: a password (the token) may hold colons."""
    c = _token_client(request, "s3cret:with:colons")
    given = base64.b64encode(b"anyone:s3cret:with:colons").decode()
    assert c.get("/openapi.json", headers={"authorization": f"Basic {given}"}).status_code == 200
    wrong = base64.b64encode(b"anyone:with:colons").decode()
    assert c.get("/openapi.json", headers={"authorization": f"Basic {wrong}"}).status_code == 401


def test_a_non_ascii_token_works_as_a_bearer_token_sent_in_utf8(request):
    """curl sends a header's bytes as they are (UTF-8): a token with non-ASCII letters matches as a Bearer token."""
    c = _token_client(request, "pässwört-ß")
    r = c.get("/openapi.json", headers={"authorization": b"Bearer " + "pässwört-ß".encode()})
    assert r.status_code == 200, r.text
    assert c.get("/openapi.json", headers={"authorization": b"Bearer " + "passwort-ss".encode()}).status_code == 401


def test_a_request_without_the_token_is_refused_before_any_other_check(request):
    """No body cap, page guard or other answer is given to a request without the token: an oversized upload
    gets the 401, not the 413 (which would also charge its bytes to the server's upload budget)."""
    c = _token_client(request, TOKEN, max_upload_bytes=1024)
    r = c.post("/api/classify", content=b"\0" * 4096, headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 401 and "access token" in r.json()["error"], (r.status_code, r.text)
    r = c.post("/gradio_api/queue/join", json={"data": [[{"path": "/etc/passwd"}]]})
    assert r.status_code == 401, (r.status_code, r.text)


def test_an_empty_token_given_to_the_config_is_refused_not_an_open_server():
    """ServerConfig(token="") (a secret that failed to fill in, given in code) started a server open to anyone:
    create_app adds the token check only for a token that is not empty. Like a blank MEDIMG_TOKEN, it is refused."""
    for blank in ("", "  "):
        with pytest.raises(ValueError, match="token is empty"):
            ServerConfig(token=blank)
    cfg = ServerConfig(token="given")
    cfg.token = ""
    with pytest.raises(ValueError, match="token is empty"):
        create_app(cfg, Worker(cfg), ui=False)


def test_a_websocket_without_the_token_is_closed_as_a_policy_violation(request):
    from starlette.websockets import WebSocketDisconnect

    c = _token_client(request, TOKEN)
    with pytest.raises(WebSocketDisconnect) as closed:
        with c.websocket_connect("/gradio_api/queue/data"):
            pass
    assert closed.value.code == 1008


def test_odd_spellings_of_the_authorization_header(request):
    """Spaces after the scheme are not part of the token; a Basic value that is not ASCII is a 401, not a 500."""
    c = _token_client(request, TOKEN)
    assert c.get("/openapi.json", headers={"authorization": f"Bearer   {TOKEN}"}).status_code == 200
    r = c.get("/openapi.json", headers={"authorization": "Basic ä".encode("latin-1")})
    assert r.status_code == 401, r.status_code


def test_the_configs_time_limits_are_finite_and_its_limits_carry_every_switch(monkeypatch):
    """An endless --request-timeout or --graceful-timeout is refused like a negative one; an empty
    MEDIMG_MODEL_DIR is no model folder (not the current one); render, allow_private and offline reach the
    sources' Limits; the README's numbers of files and megabytes a request may carry are the defaults."""
    import re

    from pathlib import Path

    for name in ("request_timeout", "graceful_timeout"):
        with pytest.raises(ValueError, match=name):
            ServerConfig(**{name: float("inf")})
    monkeypatch.setenv("MEDIMG_MODEL_DIR", "")
    assert ServerConfig().model_dir is None
    lim = ServerConfig(allow_private=True, offline=True).limits(render=True)
    assert lim.render and lim.allow_private and lim.offline
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    files, mb = map(int, re.search(r"A request may carry (\d+) files and (\d+) MB", readme).groups())
    assert (ServerConfig().max_files, ServerConfig().max_upload_bytes) == (files, mb * 1024 * 1024)


def test_serve_takes_its_model_from_medimg_model_dir(monkeypatch):
    """`medimg serve` without --model uses MEDIMG_MODEL_DIR, which ServerConfig reads too (the CLI passed its
    own None over it); a folder there that is no model is a usage error, as for --model."""
    from typer.testing import CliRunner

    from medimg import cli

    from test_api import free_port

    got = []
    monkeypatch.setattr(cli, "_serve", lambda *args: got.append(args[3]))
    runner = CliRunner()
    port = ["--port", str(free_port())]  # not the default 7860: a server running there made it exit 3 (a CI run)
    r = runner.invoke(cli.app, ["serve", *port], env={"MEDIMG_MODEL_DIR": "fast"})
    assert r.exit_code == 0, r.output
    assert got == [Path("fast")]
    r = runner.invoke(cli.app, ["serve", *port], env={"MEDIMG_MODEL_DIR": "/no/such/model"})
    assert r.exit_code == 2 and "--model" in r.output
    r = runner.invoke(cli.app, ["serve", "--model", "default", *port], env={"MEDIMG_MODEL_DIR": "/no/such/model"})
    assert r.exit_code == 0 and got[-1] == Path("default")
