"""`medimg serve` behind nginx as docs/server.md sets it up (location /medimg/, --root-path /medimg), and the Host
check a token-less server makes of the name the proxy passes on. The nginx test runs the docs' own block and
skips when nginx is not installed."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from medimg.model.classifier import ASSETS
from medimg.server import ServerConfig, Worker, create_app
from test_api import LiveServer, free_port, png

DOCS = Path(__file__).resolve().parents[1] / "docs" / "server.md"


def _config(request, **settings) -> ServerConfig:
    model_dir = None if (ASSETS / "labels.json").exists() else request.getfixturevalue("tiny_model_dir")
    return ServerConfig(model_dir=model_dir, **settings)


def _client(request, **settings) -> TestClient:
    cfg = _config(request, **settings)
    return TestClient(create_app(cfg, Worker(cfg), ui=False))


def test_a_name_beyond_ascii_is_answered_as_browsers_send_it(request):
    """`--allowed-host klinikum-fürth.de` was never matched: browsers (and nginx passing their Host on) send
    the name in punycode, so every request got the 403 that told to give the name already given."""
    client = _client(request, allowed_hosts=("Klinikum-Fürth.de",))
    for host in ("xn--klinikum-frth-5ob.de", "xn--klinikum-frth-5ob.de:8443"):
        assert client.get("/api/classify", headers={"host": host}).status_code == 405, host  # answered: POST only
    assert client.get("/api/classify", headers={"host": "xn--klinikum-frth-5ob.de.evil.example"}).status_code == 403
    punycode = _client(request, allowed_hosts=("xn--klinikum-frth-5ob.de",))
    assert punycode.get("/api/classify", headers={"host": "xn--klinikum-frth-5ob.de"}).status_code == 405


def test_the_403_says_which_names_are_answered_and_what_a_proxy_passes(request):
    """Given --allowed-host medimg.example.org but reached as another name (the proxy's Host is not the name
    given), the 403 said the server answers "to localhost and IP addresses" only: the name given was not
    there to compare with. It now lists the names given and says which name a reverse proxy's is."""
    client = _client(request, allowed_hosts=("medimg.example.org",))
    text = client.get("/api/classify", headers={"host": "medimg.hospital.example:443"}).json()["error"]
    assert "localhost, IP addresses, medimg.example.org" in text
    assert "--allowed-host medimg.hospital.example" in text and "reverse proxy" in text


def _docs_block() -> str:
    """The nginx block of docs/server.md's *Behind a reverse proxy*."""
    section = DOCS.read_text(encoding="utf-8").split("### Behind a reverse proxy", 1)[1]
    return re.search(r"```nginx\n(.*?)```", section, re.S).group(1)


def _raw_post(port: int, path: str, length: int) -> tuple[str, dict[str, str], bytes]:
    """A POST whose headers announce `length` bytes, none of them sent: nginx answers from Content-Length."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall((f"POST {path} HTTP/1.1\r\nHost: medimg.test\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                   f"Content-Length: {length}\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        while len(body) < int(headers.get("content-length", 0)):
            body += s.recv(65536)
        return lines[0], headers, body


@pytest.fixture(scope="module")
def nginx_front(tmp_path_factory, request):
    """nginx running the docs' block before a token-less API server given --allowed-host medimg.test:
    the base URL of nginx's /medimg/."""
    nginx = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if nginx is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    cfg = _config(request, root_path="/medimg", allowed_hosts=("medimg.test",))
    live = LiveServer(create_app(cfg, Worker(cfg), ui=False))
    tmp = tmp_path_factory.mktemp("nginx")
    port = free_port()
    block = _docs_block().replace("127.0.0.1:7860", live.url.removeprefix("http://"))
    (tmp / "nginx.conf").write_text(f"""daemon off; worker_processes 1; pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fcgi;
    uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
{block}
    }}
}}
""")
    proc = subprocess.Popen([nginx, "-e", str(tmp / "error.log"), "-p", str(tmp), "-c", str(tmp / "nginx.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}/medimg"
    try:
        for _ in range(100):
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                httpx.get(base + "/api/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        live.close()


def test_the_docs_nginx_block_passes_the_api_and_its_name(nginx_front):
    base = nginx_front
    host = {"host": f"medimg.test:{base.split(':')[2].split('/')[0]}"}
    assert httpx.get(base + "/api/health", headers=host, timeout=10).status_code == 200
    r = httpx.post(base + "/api/classify", files={"files": ("a.png", png(3), "image/png")}, headers=host, timeout=60)
    assert r.status_code == 200 and r.json()["results"][0]["error"] is None, r.text
    schema = httpx.get(base + "/openapi.json", headers=host, timeout=10).json()
    assert schema["servers"] == [{"url": "/medimg"}]
    refused = httpx.get(base + "/api/classify", headers={"host": "other.test"}, timeout=10)
    assert refused.status_code == 403 and "--allowed-host other.test" in refused.json()["error"]


def test_the_docs_nginx_block_refuses_a_large_upload_in_the_api_s_json_and_the_page_s_words(nginx_front):
    """The docs' nginx answered every upload over client_max_body_size with plain text, under /api too, where
    the docs promise the API's JSON shape for a 413 (a script's `r.json()["error"]` failed on it)."""
    port = int(nginx_front.split(":")[2].split("/")[0])
    status, headers, body = _raw_post(port, "/medimg/api/classify", 201 * 1024 * 1024)
    assert " 413 " in status and headers["content-type"] == "application/json", (status, headers, body)
    answer = json.loads(body)
    assert answer["error"] == answer["detail"] and "200 MB" in answer["error"]
    status, headers, body = _raw_post(port, "/medimg/gradio_api/upload?upload_id=s42", 201 * 1024 * 1024)
    assert " 413 " in status and headers["content-type"] == "text/plain", (status, headers)
    assert body.decode().startswith("the request is too large: uploads may add up to at most 200 MB")

