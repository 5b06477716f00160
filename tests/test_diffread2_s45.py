"""A second read of session 45's API and CLI changes: encoded upload names, files named like options, a closed
standard input."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import medimg
from builders import image_bytes
from medimg.cli import app
from medimg.server import ServerConfig, Worker, create_app
from test_openapi_s33 import classifier, conforms  # noqa: F401 (a fixture)
from words import flat

runner = CliRunner()


@pytest.fixture(scope="module")
def client(classifier):  # noqa: F811
    cfg = ServerConfig()
    return TestClient(create_app(cfg, Worker(cfg, classifier), ui=False), raise_server_exceptions=False)


def upload(client, filename: str):
    body = (f'--b0undary\r\nContent-Disposition: form-data; name=files; filename="{filename}"\r\n'
            "Content-Type: image/png\r\n\r\n").encode() + image_bytes("PNG") + b"\r\n--b0undary--\r\n"
    return client.post("/api/classify", content=body,
                       headers={"content-type": "multipart/form-data; boundary=b0undary"})


def test_an_encoded_name_whose_base64_does_not_decode_is_kept_not_a_500(client):
    """`filename="=?utf-8?B?AAAAA?="` (base64 of a wrong length) raised email's HeaderParseError, which is not a
    ValueError: the upload was a 500 "the server failed on this request"."""
    from medimg.server.api import _display_name

    assert _display_name("=?utf-8?B?AAAAA?=", 1) == "=?utf-8?B?AAAAA?="
    r = upload(client, "=?utf-8?B?AAAAA?=")
    assert r.status_code == 200, r.text[:300]
    spec = client.get("/openapi.json").json()
    body = conforms(spec, "POST", "/api/classify", 200, r.headers, r.content)
    assert [x["input"] for x in body["results"]] == ["=?utf-8?B?AAAAA?="]


def test_an_encoded_line_break_comes_back_as_a_browser_sends_one(client):
    """A line break decoded from encoded words (`=0A`) came back as a raw line break, where the docs say a name's
    line break comes back as %0A (as browsers send it; a header cannot hold one)."""
    r = upload(client, "=?utf-8?Q?a=0Ab=0D.png?=")
    assert r.status_code == 200 and [x["input"] for x in r.json()["results"]] == ["a%0Ab%0D.png"], r.text[:300]


@pytest.mark.parametrize("name", ["-0scan.png", "-odd.jsonl", "-fscan.png"])
def test_a_file_named_like_options_that_exist_is_said_to_be_a_file(tmp_path, monkeypatch, tiny_model_dir, name):
    """`medimg classify *` with `-0scan.png` said "No such option: -s" (after the flag -0) without naming the file;
    `-odd.jsonl` wrote the records to `dd.jsonl` (-o) and left the file out; `-fscan.png` was a bad --format."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.png").write_bytes(image_bytes("PNG"))
    (tmp_path / name).write_bytes(image_bytes("PNG"))
    res = runner.invoke(app, ["classify", "a.png", name, "--model", str(tiny_model_dir)])
    assert res.exit_code == 2, res.output
    assert f"'{name}' is a file: give it as ./{name}, or after --" in flat(res.output)
    assert not (tmp_path / "dd.jsonl").exists()


def test_an_options_value_named_with_a_dash_is_still_its_value(tmp_path, monkeypatch, tiny_model_dir):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.png").write_bytes(image_bytes("PNG"))
    (tmp_path / "-out.jsonl").write_text("")  # an output given again: --out's value, not a file to classify
    res = runner.invoke(app, ["classify", "a.png", "-o", "-out.jsonl", "--model", str(tiny_model_dir)])
    assert res.exit_code == 0, res.output
    assert '"input": "a.png"' in (tmp_path / "-out.jsonl").read_text()
    res = runner.invoke(app, ["classify", "-f", "jsonl", "--model", str(tiny_model_dir), "--", "-out.jsonl", "a.png"])
    assert res.exit_code == 0 and '"input": "a.png"' in res.stdout
    (tmp_path / "-o").write_text("")  # a stray file named as an option: the option is meant
    (tmp_path / "--help").write_text("")
    res = runner.invoke(app, ["classify", "a.png", "-o", "b.jsonl", "--model", str(tiny_model_dir)])
    assert res.exit_code == 0 and '"input": "a.png"' in (tmp_path / "b.jsonl").read_text(), res.output
    assert runner.invoke(app, ["classify", "--help"]).exit_code == 0


def test_a_list_on_a_closed_standard_input_is_a_usage_error_not_a_traceback(tmp_path, tiny_model_dir):
    """`medimg classify --inputs-from - <&-`: Python has no sys.stdin then, and the run crashed with
    "AttributeError: 'NoneType' object has no attribute 'isatty'"."""
    env = {**os.environ, "PYTHONPATH": str(Path(medimg.__file__).parents[1])}
    p = subprocess.run([sys.executable, "-m", "medimg", "classify", "--inputs-from", "-", "--model",
                        str(tiny_model_dir)], preexec_fn=lambda: os.close(0), capture_output=True, cwd=tmp_path,
                       env=env, timeout=120)
    err = p.stderr.decode()
    assert p.returncode == 2, err
    assert "standard input is closed" in flat(err) and "Traceback" not in err


def test_reading_a_list_from_a_closed_standard_input_in_python_is_an_oserror(monkeypatch):
    from medimg.lists import open_list

    monkeypatch.setattr(sys, "stdin", None)
    with pytest.raises(OSError, match="standard input is closed"):
        list(open_list("-"))
