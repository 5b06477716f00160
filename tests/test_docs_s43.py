"""What the docs say of session 43's changes is what the code does: a zip's first volume says to join the parts
(also when no member of it is whole), split parts in a folder, a model named by MEDIMG_MODEL_DIR named so in the
error, the port message server.md quotes, the Chromium places, the scale extra's floors, JSON-LD/microdata/srcdoc
on a real page, the volume formats not read, and the new modules architecture.md names with what they take and give."""

from __future__ import annotations

import importlib
import io
import json
import os
import socket
import subprocess
import sys
import tomllib

import pytest
from PIL import Image
from webserver import WebServer

from medimg.sources import Blob, ImageItem, Limits, open_input, open_inputs

from test_archive_s43 import split_zip, zip_of
from test_docs_s40 import ROOT, _doc, _said


def noise_png(seed: int, side: int = 300) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((side, side), 60 + seed).convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def test_a_zips_first_volume_says_to_join_the_parts_also_when_none_of_its_members_is_whole():
    """formats.md: a zip's first volume (`a.zip.001`) gives its whole members and its error says to join the parts.
    Cut inside its first member, it said only 'not a readable zip archive'."""
    data = zip_of({"a.png": noise_png(1), "b.png": noise_png(2)})
    for cut, whole in ((len(data) // 4, []), (len(data) * 3 // 4, ["set.zip.001:a.png"])):
        got = list(open_input(Blob(origin="set.zip.001", data=data[:cut]), Limits()))
        assert [i.origin for i in got if isinstance(i, ImageItem)] == whole
        assert "first part of a split archive" in got[0].error and "join its parts" in got[0].error, got[0].error
    _said("docs/formats.md", r"A zip's first volume \(`a\.zip\.001`\) still gives the members whose bytes are all in "
                             r"it, and its error says to join the parts")


def test_split_zip_parts_in_a_folder_are_the_errors_and_notes_formats_md_says(tmp_path):
    first, last = split_zip({"a.png": noise_png(3, 100), "b.png": noise_png(4, 100)}, 300)
    (tmp_path / "set.z01").write_bytes(first)
    (tmp_path / "set.z02").write_bytes(b"\x8a" * 100)
    (tmp_path / "set.zip").write_bytes(last)
    got = {os.path.basename(i.origin): i for i in open_inputs([tmp_path])}
    assert not got["set.z01"].skipped and not got["set.zip"].skipped and got["set.z02"].skipped
    _said("docs/formats.md", r"the numbered parts after the first \(`a\.z02`, `a\.7z\.002`, …\) are notes, while a "
                             r"split zip's `\.z01` and its last part, `a\.zip`, are an error each")


def test_a_bad_model_named_by_medimg_model_dir_is_said_to_come_from_it(tmp_path):
    png = tmp_path / "a.png"
    png.write_bytes(noise_png(5, 80))
    env = {**os.environ, "MEDIMG_MODEL_DIR": str(tmp_path), "COLUMNS": "400", "GRADIO_ANALYTICS_ENABLED": "False"}
    out = subprocess.run([sys.executable, "-m", "medimg", "classify", str(png)], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 2
    assert "Invalid value for --model (here MEDIMG_MODEL_DIR): no model in" in out.stderr, out.stderr
    env.pop("MEDIMG_MODEL_DIR")
    out = subprocess.run([sys.executable, "-m", "medimg", "classify", "--model", str(tmp_path), str(png)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 2 and "Invalid value for --model: no model in" in out.stderr, out.stderr
    assert "`MEDIMG_MODEL_DIR`" in _doc("docs/cli.md").split("| `--model` | classify, evaluate, scale |")[1][:80]


def test_a_port_in_use_is_said_in_the_words_server_md_quotes():
    from medimg.listening import cannot_listen

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        said = cannot_listen("127.0.0.1", port)
    quoted = _said("docs/server.md", r"`cannot listen on 127\.0\.0\.1 port 7860: ([^`]*)`").group(1)
    assert said == quoted.replace("7861", str(port + 1)), said


def test_the_chromium_places_formats_md_lists_are_the_codes():
    from medimg.sources import browser

    text = _doc("docs/formats.md")
    places = [p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/snap/bin/chromium")
              if f"`{p}`" in text]
    assert tuple(places) == browser.CHROMIUM_PLACES
    assert "`MEDIMG_CHROMIUM`" in text and "`MEDIMG_CHROMIUM`" in _doc("README.md")


def test_the_scale_floors_readme_names_are_the_extras():
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["scale"]
    assert "ray[data]>=2.59" in extra and "numpy>=2" in extra
    _said("README.md", r"`'\.\[scale\]'` \(`medimg scale`; Ray ≥ 2\.59, NumPy 2\)")


def test_json_ld_microdata_and_srcdoc_are_read_as_formats_md_says():
    ld = {"@context": "https://schema.org", "@type": "Article", "image": {"@type": "ImageObject", "contentUrl": "/ld.png"},
          "publisher": {"@type": "Organization", "logo": "/logo.png"}}
    inner = ('<base href="/in/"><link rel="stylesheet" href="/in/style.css"><img src="pic.png" alt="inner">'
             '<iframe src="/nested.html"></iframe>')
    page = (f'<html><head><script type="application/ld+json">{json.dumps(ld)}</script></head><body>'
            '<div itemscope><meta itemprop="image" content="/meta.png"><link itemprop="image" href="/link.png"></div>'
            f'<iframe src="/framed.html" srcdoc="{inner.replace(chr(34), "&quot;")}"></iframe></body></html>')
    with WebServer() as srv:
        for n, path in enumerate(("/ld.png", "/logo.png", "/meta.png", "/link.png", "/in/pic.png", "/framed.png")):
            srv.add(path, noise_png(n, 120), "image/png")
        srv.add("/framed.html", '<img src="/framed.png">', "text/html")
        srv.add("/nested.html", '<img src="/framed.png">', "text/html")
        srv.add("/in/style.css", "body{}", "text/css")
        srv.add("/p.html", page, "text/html")
        items = list(open_input(srv.url("/p.html"), Limits(allow_private=True, total_timeout=8)))
        hits = dict(srv.hits)
    shown = [(i.locator.split(" http")[0], i.metadata["url"].rsplit("/", 1)[1]) for i in items
             if isinstance(i, ImageItem)]
    # numbered in the page's order, as every locator is; after the page's elements
    assert shown == [("img #1", "pic.png"), ("json-ld #2", "ld.png"), ("itemprop #3", "meta.png"),
                     ("itemprop #4", "link.png")], shown
    # the srcdoc page in place of the src; its own frames and stylesheets not read; no logo
    assert not any(hits.get(p) for p in ("/framed.html", "/nested.html", "/in/style.css", "/logo.png")), hits
    text = _doc("docs/formats.md")
    assert "located `itemprop #N` and `json-ld #N`" in text and "not a `logo`" in text
    assert "its own frames and external stylesheets not read" in text


def test_volume_formats_not_read_are_errors_and_their_data_files_notes(tmp_path):
    (tmp_path / "s.PAR").write_bytes(b"# === DATA DESCRIPTION FILE ======\n# CLINICAL TRYOUT\n")
    (tmp_path / "s.REC").write_bytes(os.urandom(512))
    (tmp_path / "a+orig.HEAD").write_bytes(b"type = string-attribute\nname = HISTORY_NOTE\ncount = 3\n")
    (tmp_path / "p.v").write_bytes(b"MATRIX72v" + bytes(600))
    got = {os.path.basename(i.origin): i for i in open_inputs([tmp_path])}
    for name, fmt in (("s.PAR", "Philips PAR/REC"), ("a+orig.HEAD", "AFNI BRIK/HEAD"), ("p.v", "ECAT 7 PET")):
        assert not got[name].skipped and got[name].error.startswith(f"{fmt} file: ") and "convert it to NIfTI" in \
            got[name].error, got[name].error
    assert got["s.REC"].skipped
    _said("docs/formats.md", r"Philips `\.PAR` \(its first line\), AFNI `\.HEAD` .*ECAT 7 `\.v` \(`MATRIX7`\)\. "
                             r"Their data files \(`\.REC`, `\.BRIK`\) are the usual note")


NEW_MODULES = {"sources.dicom_syntax": ("stored_otherwise",), "sources.deep_jpeg": ("read",),
               "sources.jpeg2000": ("reduce",), "sources.metafile": ("open_metafile", "has_bitmaps"),
               "sources.camera_raw": ("open_raw",), "listening": ("cannot_listen",), "server.events": ("KnownEvents",),
               "output": ("OutputLock",), "pipeline": ("waiting_left",), "sources.registry": ("split_part",)}


@pytest.mark.parametrize("module", sorted(NEW_MODULES))
def test_the_new_modules_are_named_in_architecture_md_with_what_they_take_and_give(module):
    text = _doc("docs/architecture.md")
    mod = importlib.import_module(f"medimg.{module}")
    assert f"**`{module.rsplit('.', 1)[-1]}.py`**" in text or f"`{module.rsplit('.', 1)[-1]}.py`" in text
    for name in NEW_MODULES[module]:
        assert hasattr(mod, name), (module, name)
        assert f"`{name}`" in text, (module, name)


def test_every_module_is_named_in_architecture_md():
    text = _doc("docs/architecture.md")
    missing = [str(p.relative_to(ROOT / "src")) for p in (ROOT / "src" / "medimg").rglob("*.py")
               if p.name != "__init__.py" and f"{p.name}`" not in text and f"`{p.stem}`" not in text]
    assert not missing, missing


def test_camera_raw_is_asked_where_formats_md_says_in_the_order():
    from medimg.sources import registry

    order = [p.name for p in registry.plugins()]  # in the order they are asked
    assert order.index("rtf") < order.index("camera-raw") < order.index("slide"), order
    _said("docs/formats.md", r"tar, RTF, camera RAW, whole slide, CZI")
