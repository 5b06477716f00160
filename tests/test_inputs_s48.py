"""Inputs as users paste them (session 48): data: URIs, file: URIs, spaces, quotes, other systems' paths."""
from __future__ import annotations

import base64
import os

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from builders import image_bytes
from medimg.cli import app
from medimg.lists import entry_key
from medimg.pipeline import classify
from medimg.server import ServerConfig, Worker, create_app
from medimg.sources import ImageItem, open_inputs

runner = CliRunner()


def data_uri() -> str:
    return "data:image/png;base64," + base64.b64encode(image_bytes("PNG", size=(64, 48))).decode()


def errors(name: str) -> list[str]:
    return [it.error for it in open_inputs([name])]


def test_a_data_uri_is_read_by_the_python_api(tiny_classifier):
    """A data: URI (an img src copied from a page) was taken for a file's name: "file not found", or "File name
    too long" past 4 KB, while the same URI inside a page is read. It is read as a picture, its record named by it."""
    uri = data_uri()
    items = list(open_inputs([uri]))
    assert [type(it) for it in items] == [ImageItem] and items[0].image.size == (64, 48)
    records = list(classify([uri], tiny_classifier))
    assert len(records) == 1 and records[0].error is None and records[0].input == uri
    bad = errors("data:image/png;base64,!!!!")
    assert len(bad) == 1 and "outside the alphabet" in bad[0]


def test_a_data_uri_is_read_by_the_command_line(tiny_model_dir):
    res = runner.invoke(app, ["classify", data_uri(), "-f", "jsonl", "--model", str(tiny_model_dir)])
    assert res.exit_code == 0, res.output
    assert '"error": null' in res.stdout or '"error":null' in res.stdout


def test_a_data_uri_is_read_by_the_http_api(tiny_classifier):
    """/api/classify-url refused it (only http and https are fetched), quoting all of it."""
    cfg = ServerConfig()
    client = TestClient(create_app(cfg, Worker(cfg, tiny_classifier), ui=False), raise_server_exceptions=False)
    for body in ({"url": data_uri()}, {"urls": [data_uri()]}):
        r = client.post("/api/classify-url", json=body)
        assert r.status_code == 200, r.text[:300]
        results = r.json()["results"]
        assert len(results) == 1 and results[0].get("error") is None, results


def test_data_uris_differing_by_a_double_slash_are_two_inputs():
    """Their base64 may hold `//`: as paths, `…A//B` and `…A/B` were one input, the second left out."""
    assert entry_key("data:text/plain,a//b") != entry_key("data:text/plain,a/b")


def test_a_file_uri_with_one_slash_names_the_file(tmp_path):
    """`file:/tmp/a.png` (as Java's File.toURI writes it) was "file not found"; file:///… was read."""
    (tmp_path / "a.png").write_bytes(image_bytes("PNG"))
    items = list(open_inputs([f"file:{tmp_path}/a.png"]))
    assert [type(it) for it in items] == [ImageItem]


@pytest.mark.parametrize("name, words", [
    (" {p}", "white space or quotes around it: without them it is '{p}'"),
    ("{p}\n", "white space or quotes around it"),
    ('"{p}"', "white space or quotes around it"),
    ("http:/127.0.0.1:1/a.png", "with two slashes"),
    ("https//127.0.0.1:1/a.png", "with two slashes"),
    ("C:\\scans\\a.dcm", "a Windows path"),
    ("\\\\server\\share\\a.dcm", "a Windows path"),
    ("   ", "an empty path (only white space)"),
])
def test_a_pasted_name_not_found_says_why(tmp_path, name, words):
    """Each was a bare "file not found"."""
    if "Windows" in words and os.name == "nt":
        pytest.skip("a Windows path on Windows")
    p = str(tmp_path / "a.png")
    said = errors(name.format(p=p))
    assert len(said) == 1 and words.format(p=p) in said[0], said


def test_a_url_with_a_space_around_it_is_the_url():
    """` http://…` was a file (`file not found`, named ` http:/…`): the HTTP API strips an address, so do the others."""
    said = errors(" http://127.0.0.1:1/a.png\n")
    assert len(said) == 1 and "refused: host 127.0.0.1" in said[0], said
