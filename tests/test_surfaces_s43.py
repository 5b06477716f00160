"""This session's new inputs through every surface (s43 review): camera RAW (DNG, CR3, NEF), an EMF holding a
bitmap, a 12-bit JPEG, a JPEG 2000, a self-extracting zip (a shell script with a zip appended), a v7 tar and a page
whose picture is only in its JSON-LD give the same rows through the Python API, the CLI, the HTTP API and the page;
the page's file input refuses none of their names (no `accept` filter)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

import builders as b
from medimg import Limits, classify
from medimg.cli import app as cli_app
from medimg.server import ServerConfig, Worker, create_app
from test_archive_s43 import PNG, appended
from test_emf_s43 import dib, emf, stretchdibits
from test_raw_s43 import cr3, dng, nef
from test_ui_browser import CHROMIUM, browser, server, upload  # noqa: F401  (the page's fixtures: one serve)
from webserver import WebServer

runner = CliRunner()


def v7_tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        info = tarfile.TarInfo("d/a.png")
        info.size = len(PNG)
        tf.addfile(info, io.BytesIO(PNG))
    data = bytearray(out.getvalue())
    head = data[:512]
    head[257:512] = bytes(255)  # no "ustar" magic: the pre-POSIX format, its checksum made again
    head[148:156] = b" " * 8
    head[148:156] = b"%06o\0 " % sum(head)
    data[:512] = head
    return bytes(data)


def jp2() -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.asarray(b.pattern((128, 96), seed=2))).save(out, "JPEG2000")
    return out.getvalue()


def inputs(folder: Path) -> list[str]:
    """The new inputs as files (also under the other names a user may give them), sorted by name."""
    files = {
        "photo.dng": dng((200, 120)), "IMG_0001.cr3": cr3(), "shot.nef": nef(),
        "figure.emf": emf(stretchdibits(dib(b.pattern((128, 96), seed=3), 24), 0, 0, 128, 96)),
        "slide.jp2": jp2(), "setup.sh": appended(b"#!/bin/sh\nexec unzip \"$0\"\n", {"in/a.png": PNG}),
        "old.tar": v7_tar(),
    }
    files.update({"copy.cr2": files["photo.dng"], "copy.wmf": files["figure.emf"], "copy.run": files["setup.sh"],
                  "copy.exe": files["setup.sh"]})
    try:
        import imagecodecs

        ramp = (np.mgrid[0:96, 0:128][1] * 4095 // 128).astype(np.uint16)
        files["ct12.jpg"] = imagecodecs.jpeg8_encode(ramp, bitspersample=12, level=95)
    except ImportError:  # no 12-bit JPEG without imagecodecs; the rest still goes through
        pass
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return sorted(files)


def row(r: dict) -> tuple:
    """What a user compares: where the image is, what it was read as, its label, its verdict, its error, its note."""
    name = r["input"].rsplit("/", 1)[-1] if r["input"].startswith("http") else r["input"]
    return name, r["locator"], r.get("format"), r["label"], r["verdict"], r["error"], r["metadata"].get("note") \
        if r.get("metadata") else None


WANT = {"photo.dng": ("DNG", ""), "IMG_0001.cr3": ("CR3", ""), "shot.nef": ("NEF", ""), "copy.cr2": ("DNG", ""),
        "figure.emf": ("EMF/BMP", "emf, bitmap #1"), "copy.wmf": ("EMF/BMP", "emf, bitmap #1"),
        "slide.jp2": ("JPEG2000", ""), "ct12.jpg": ("JPEG", ""), "setup.sh:in/a.png": ("PNG", ""),
        "copy.run:in/a.png": ("PNG", ""), "copy.exe:in/a.png": ("PNG", ""), "old.tar:d/a.png": ("PNG", "")}


def check_found(rows: list[tuple], names: list[str]) -> None:
    got = {r[0]: (r[2], r[1]) for r in rows}
    assert got == {k: v for k, v in WANT.items() if k.split(":")[0] in names}, rows
    assert all(r[5] is None for r in rows), rows
    assert all("embedded preview" in r[6] for r in rows if r[2] in ("DNG", "CR3", "NEF")), rows


def page_with_json_ld(web: WebServer, folder: Path) -> str:
    for name in ("photo.dng", "figure.emf", "slide.jp2"):
        web.add("/f/" + name, (folder / name).read_bytes(), "application/octet-stream")
    ld = {"@context": "https://schema.org", "@type": "Photograph",
          "image": {"@type": "ImageObject", "contentUrl": "f/photo.dng"}}
    return web.add("/page.html", f'<html><head><script type="application/ld+json">{json.dumps(ld)}</script></head>'
                                 '<body><img src="f/figure.emf"><img src="f/slide.jp2"></body></html>')


def test_the_new_inputs_give_the_same_rows_through_the_api_the_cli_and_http(tmp_path, tiny_model_dir,
                                                                             tiny_classifier, monkeypatch):
    names = inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    cfg = ServerConfig(allow_private=True)
    client = TestClient(create_app(cfg, Worker(cfg, tiny_classifier), ui=False), raise_server_exceptions=False)
    with WebServer() as web:
        page = page_with_json_ld(web, tmp_path)
        py = [row(r.to_dict(full=True)) for r in classify([*names, page], classifier=tiny_classifier,
                                                           limits=Limits(allow_private=True))]
        res = runner.invoke(cli_app, ["classify", *names, page, "--allow-private", "--show-skipped", "--full",
                                      "--model", str(tiny_model_dir), "-f", "jsonl", "-o", "out.jsonl"])
        assert res.exit_code == 0, res.output
        cli = [row(json.loads(line)) for line in open("out.jsonl", encoding="utf-8")]
        files = [("files", (n, (tmp_path / n).read_bytes())) for n in names]
        api = client.post("/api/classify?full=true&show_skipped=true", files=files).json()["results"]
        api += client.post("/api/classify-url?full=true&show_skipped=true", json={"url": page}).json()["results"]
        api = [row(r) for r in api]
        res = runner.invoke(cli_app, ["extract", *names, page, "--allow-private", "-o", "out"])
        assert res.exit_code == 0, res.output
    on_page = [r for r in py if r[0] == "page.html"]
    check_found([r for r in py if r[0] != "page.html"], names)
    assert [(r[1].split(" ")[0], r[2]) for r in on_page] == [("img", "EMF/BMP"), ("img", "JPEG2000"),
                                                              ("json-ld", "DNG")], on_page
    assert cli == py and api == py
    got = [json.loads(line) for line in open("out/manifest.jsonl", encoding="utf-8")]
    assert [(row({**r, "label": None, "verdict": None, "error": None})[:3]) for r in got] == [r[:3] for r in py]


# ---------------------------------------------------------------- the page, in Chromium

@pytest.mark.browser
def test_the_page_takes_every_new_kind_of_file_and_gives_the_apis_rows(tmp_path, request):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium); .ci/run installs it")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    served = request.getfixturevalue("server")
    chrome = request.getfixturevalue("browser")
    base = served[0]
    names = inputs(tmp_path)
    ctx = chrome.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    try:
        pg = ctx.new_page()
        pg.goto(base + "/")
        pg.wait_for_selector("#run", timeout=30_000)
        field = pg.locator("#files input[type=file]")
        assert field.get_attribute("accept") is None  # a filter would grey out .dng, .emf, .sh, .exe, … in the chooser
        with pg.expect_file_chooser() as chooser:
            pg.locator("#files button").first.click()
        assert chooser.value.is_multiple() and chooser.value.element.get_attribute("accept") is None
        upload(pg, [tmp_path / n for n in names])
        pg.click("#run")
        pg.wait_for_function(f"document.querySelectorAll('#gallery .thumbnail-item').length == {len(names)}",
                             timeout=90_000)  # one picture in each file
        with pg.expect_download() as dl:
            pg.click("#json")
        shown = [row(r) for r in json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))["results"]]
    finally:
        ctx.close()
    files = [("files", (n, (tmp_path / n).read_bytes())) for n in names]
    api = httpx.post(base + "/api/classify?full=true&show_skipped=true", files=files, timeout=120).json()["results"]
    check_found(shown, names)
    assert sorted(shown) == sorted(row(r) for r in api)
