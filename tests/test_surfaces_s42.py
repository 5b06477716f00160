"""One mixed set through every surface (s42 review): the Python API, the CLI's JSONL and CSV, the HTTP API and the
page's downloads give the same records; the page starts at the model's own threshold; the web notes name the
server's way to render, not the CLI's option."""

from __future__ import annotations

import csv
import io
import json
import zipfile

from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from medimg import Limits, classify
from medimg.cli import app as cli_app
from medimg.server import ServerConfig, Worker, create_app
from medimg.server.export import to_csv, to_json
from medimg.sources import Blob
from webserver import WebServer

runner = CliRunner()


def _png(colour, size=(80, 80)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def _mixed(tmp_path):
    """A PNG, an animated GIF, a zip with two pictures, a bad PNG and a text file, and a PDF with one image."""
    import pymupdf

    (tmp_path / "red.png").write_bytes(_png((220, 20, 20)))
    frames = [Image.new("RGB", (90, 90), (20, 20 + 60 * i, 220)) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    with zipfile.ZipFile(tmp_path / "bundle.zip", "w") as z:
        z.writestr("imgs/green.png", _png((20, 220, 20)))
        z.writestr("imgs/broken.png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
        z.writestr("readme.txt", "hello")
        z.writestr("imgs/blue.png", _png((20, 20, 220)))
    doc = pymupdf.open()
    doc.new_page().insert_image(pymupdf.Rect(50, 50, 250, 250), stream=_png((200, 40, 40), (150, 150)))
    doc.save(tmp_path / "paper.pdf")
    return ["anim.gif", "bundle.zip", "paper.pdf", "red.png"]


def _typed(row: dict) -> dict:
    """A CSV row's cells as the JSON record's values (null for an empty cell)."""
    out = {}
    for k, v in row.items():
        if v == "":
            out[k] = "" if k == "locator" else None
        elif k in ("medical", "skipped"):
            out[k] = v == "true"
        elif k in ("confidence", "p_medical", "threshold") or k.startswith("prob_"):
            out[k] = float(v)
        elif k in ("width", "height"):
            out[k] = int(v)
        else:
            out[k] = v
    return out


def test_one_mixed_set_gives_the_same_records_through_every_surface(tmp_path, tiny_model_dir, tiny_classifier,
                                                                    monkeypatch):
    names = _mixed(tmp_path)
    monkeypatch.chdir(tmp_path)
    cfg = ServerConfig(allow_private=True)
    worker = Worker(cfg, tiny_classifier)
    client = TestClient(create_app(cfg, worker, ui=False), raise_server_exceptions=False)
    with WebServer() as web:
        web.add("/a.png", _png((210, 30, 30)), "image/png")
        page = web.add("/page.html", '<html><body><img src="a.png"><img src="gone.png">'
                                     '<img src="a.png" width=1></body></html>')
        inputs = [*names, page]

        py = [r.to_dict(full=True) for r in classify(inputs, classifier=tiny_classifier,
                                                       limits=Limits(allow_private=True))]
        model = f"{tiny_classifier.info()['name']} {tiny_classifier.info()['version']}"
        threshold = tiny_classifier.threshold
        for fmt in ("jsonl", "csv"):
            res = runner.invoke(cli_app, ["classify", *inputs, "--allow-private", "--show-skipped", "--full",
                                          "--model", str(tiny_model_dir), "-f", fmt, "-o", f"out.{fmt}"])
            assert res.exit_code == 0, res.output
        cli = [json.loads(line) for line in open("out.jsonl", encoding="utf-8")]
        cli_csv = [_typed(r) for r in csv.DictReader(open("out.csv", encoding="utf-8", newline=""))]

        files = [("files", (n, (tmp_path / n).read_bytes())) for n in names]
        a = client.post("/api/classify?full=true&show_skipped=true", files=files).json()
        b = client.post("/api/classify-url?full=true&show_skipped=true", json={"url": page}).json()
        api = a["results"] + b["results"]

        blobs = [Blob(origin=n, data=(tmp_path / n).read_bytes()) for n in names]
        records = worker.run([*blobs, page], cfg.limits()).records  # as the page runs them
        page_json = json.loads(to_json(records, threshold, tiny_classifier.info()))
        page_csv = [_typed(r) for r in csv.DictReader(io.StringIO(to_csv(records, threshold)))]

    found = [(r["input"], r["locator"]) for r in py]
    assert ("bundle.zip:imgs/broken.png", "") in found and (page, f"img #1 {web.url('/a.png')}") in found
    assert any(r["skipped"] for r in py) and any(r["error"] and not r["skipped"] for r in py)
    for name, rows in [("cli jsonl", cli), ("api", api), ("page json", page_json["results"])]:
        assert [{k: v for k, v in r.items() if k != "threshold"} for r in rows] == py, name
    assert all(r["threshold"] == threshold for r in cli)
    for name, rows in [("cli csv", cli_csv), ("page csv", page_csv)]:
        assert [(r["input"], r["locator"]) for r in rows] == found, name
        for r, want in zip(rows, py):
            assert {k: r[k] for k in ("label", "medical", "confidence", "p_medical", "verdict", "width", "height",
                                      "error")} == {k: want[k] for k in ("label", "medical", "confidence", "p_medical",
                                                                          "verdict", "width", "height", "error")}
            assert r["model"] == (model if want["error"] is None else None) and r["threshold"] == threshold
    summary = {k: a["summary"][k] + b["summary"][k] for k in ("images", "errors", "skipped")}
    assert summary == {k: page_json["summary"][k] for k in summary}
    assert a["model"] == page_json["model"] == {k: tiny_classifier.info()[k] for k in ("name", "version")}
    assert a["threshold"] == b["threshold"] == page_json["threshold"] == threshold


def test_the_page_starts_at_the_models_own_threshold_not_a_rounded_one(tmp_path):
    """A model folder may give any threshold from 0.5 to 1 (a labels.json edited to 0.625): the API and the CLI gave
    verdicts at 0.625, the page at 0.62 (Python's round), so one image could be medical on the page and uncertain
    in the API's answer. The slider now starts at 0.625, its step fine enough to hold it."""
    from medimg.model import Classifier
    from medimg.server.ui import build_ui
    from tinymodel import build

    model = Classifier.load(build(tmp_path / "m", threshold=0.625))
    demo = build_ui(Worker(ServerConfig(), model), None, tmp_path / "pages")
    slider = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "threshold")
    assert slider.value == 0.625 and slider.step == 0.001
    from medimg.server.ui import slider_step

    assert slider_step(0.6) == 0.01 and slider_step(0.65) == 0.01 and slider_step(0.6125) == 0.0001


def test_the_server_names_its_own_way_to_render_not_the_clis_option(tiny_model_dir, tiny_classifier):
    """A page whose images its scripts add: the note said "--render may find images they add" to the API's clients
    and on the page, an option neither has (the API's is render=true; the page's a check box). The CLI's note is
    as it was."""
    from medimg.server.work import server_words

    cfg = ServerConfig(allow_private=True)
    client = TestClient(create_app(cfg, Worker(cfg, tiny_classifier), ui=False), raise_server_exceptions=False)
    with WebServer() as web:
        page = web.add("/page.html", "<html><body><script>document.write('<img src=a.png>')</script></body></html>")
        r = client.post("/api/classify-url", json={"url": page, "show_skipped": True})
        cli = runner.invoke(cli_app, ["classify", page, "--allow-private", "--show-skipped", "-f", "jsonl",
                                      "--model", str(tiny_model_dir)])
    note = r.json()["results"][0]["error"]
    assert "--render" not in note and "render=true" in note, note
    assert "Run the page's JavaScript before looking" in note
    assert "--render may find images they add" in json.loads(cli.stdout.splitlines()[0])["error"]
    text = "a background image set there is found only with --render"
    assert server_words(text, can_render=False) == ("a background image set there is found only with rendering "
                                                    "(which this server cannot do)")
