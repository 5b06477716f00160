"""What the docs say of session 42's changes is what the code does: the new options in --help and in cli.md's
tables with the code's defaults, the new modules architecture.md names with what they take and give, the notes
formats.md quotes (repeated frames, archives of hidden files only, a decoder's internal error), an SVG's embedded
pictures, the model folder's `kind`, MAX_SPARES, and server.md's Host check (its 403, /api/health, punycode)."""

from __future__ import annotations

import base64
import importlib
import io
import os
import re
import subprocess
import sys
import zipfile

import pytest
from PIL import Image, PngImagePlugin

from medimg.sources import Blob, ImageItem, Limits, open_input

from test_docs_s40 import ROOT, _doc, _said  # (a doc's text with its lines joined; a phrase in it)

FETCHING = ("classify", "extract", "scale")
NEW_OPTIONS = {"--max-per-host": FETCHING, "--respect-robots-tag": FETCHING, "--user-agent": FETCHING,
               "--allowed-host": ("serve",)}


def _help(cmd: str) -> str:
    env = {**os.environ, "COLUMNS": "400", "GRADIO_ANALYTICS_ENABLED": "False"}  # each option's help on one line
    out = subprocess.run([sys.executable, "-m", "medimg", cmd, "--help"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", out.stdout).split())


@pytest.fixture(scope="module")
def helps() -> dict[str, str]:
    return {cmd: _help(cmd) for cmd in ("classify", "extract", "scale", "serve")}


def _row(option: str) -> list[str]:
    """The cells of cli.md's table row for `option` (the classify/extract/scale table, or serve's)."""
    rows = [line for line in (ROOT / "docs" / "cli.md").read_text(encoding="utf-8").splitlines()
            if line.startswith(f"| `{option}` |")]
    assert rows, f"cli.md has no row for {option}"
    return [c.strip() for c in rows[0].strip("|").split("|")]


@pytest.mark.parametrize("option", sorted(NEW_OPTIONS))
def test_each_new_option_is_in_the_help_of_its_commands_and_in_cli_md(option, helps):
    for cmd in NEW_OPTIONS[option]:
        assert f" {option} " in helps[cmd], (cmd, option)
    if option != "--allowed-host":
        assert [c.strip() for c in _row(option)[1].split(",")] == list(NEW_OPTIONS[option])


def test_the_polite_defaults_in_cli_md_and_help_are_the_codes(helps):
    lim = Limits()
    assert _row("--max-per-host")[2] == str(lim.max_per_host)
    assert f"(default {lim.max_per_host})" in helps["classify"]
    assert _row("--respect-robots-tag")[2] == "off" and lim.respect_robots_tag is False
    from medimg import __version__
    assert _row("--user-agent")[2] == "`medimg/<version>`" and lim.user_agent == f"medimg/{__version__}"
    assert "default medimg/VERSION" in helps["classify"]
    said = _said("README.md", r"At most (\d+) requests go to one host at once \(`--max-per-host`\)")
    assert int(said.group(1)) == lim.max_per_host
    _said("docs/formats.md", rf"\| `max_per_host` \| {lim.max_per_host} \|")


def test_all_frames_help_and_cli_md_say_repeated_frames_are_a_note(helps):
    for cmd in ("classify", "extract", "scale"):
        assert "a frame showing an earlier frame's picture again is a note" in helps[cmd], cmd
    assert "repeating an earlier frame's picture: a note" in _row("--all-frames")[3]


def test_the_new_modules_are_named_in_architecture_md_with_what_they_take_and_give():
    text = _doc("docs/architecture.md")
    for module, names in {"sources.repeats": ("distinct", "digest"), "sources.svg": ("open_svg",),
                          "sources.saved_page": (), "sources.mupdf_import": ("pymupdf",),
                          "server.hosts": ("OwnHostsOnly",)}.items():
        assert f"`{module.rsplit('.', 1)[1]}.py`" in text, module
        mod = importlib.import_module(f"medimg.{module}")
        for name in names:
            assert f"`{name}`" in text, (module, name)
            assert hasattr(mod, name), (module, name)
    _said("docs/architecture.md", r"`OwnHostsOnly`.{0,250}but `GET\|HEAD /api/health`")


def _apng(colours: list[tuple[int, int, int, int]]) -> bytes:
    """An APNG whose frames are drawn over the ones before: a clear frame shows the earlier picture again (two
    clear frames differ in their hidden colour, so Pillow keeps both rather than merging them)."""
    frames = [Image.new("RGBA", (80, 80), c) for c in colours]
    out = io.BytesIO()
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:], duration=100,
                   blend=PngImagePlugin.Blend.OP_OVER, disposal=PngImagePlugin.Disposal.OP_NONE)
    return out.getvalue()


def test_the_repeated_frames_notes_formats_md_quotes_are_the_codes():
    red, blue, clear, clear2 = (200, 10, 10, 255), (10, 10, 200, 255), (0, 0, 0, 0), (1, 1, 1, 0)
    items = list(open_input(Blob("a.png", _apng([red, clear, clear2, clear, blue])), Limits(all_frames=True)))
    assert [i.locator for i in items] == ["frame 1", "frames 2–4", "frame 5"]
    assert items[1].error == "the same picture as frame 1; not classified again" and items[1].skipped
    _said("docs/formats.md", r"\(`frames 5–9: the same picture as frame 4; not classified again`\)")
    capped = list(open_input(Blob("a.png", _apng([red, clear, clear2, blue, red])),
                             Limits(all_frames=True, max_images_per_input=3)))
    assert capped[-1].error == "stopped after reading 3 frames, 2 of them repeats (max_images_per_input)"
    _said("docs/formats.md", r"`stopped after reading N frames, M of them repeats \(max_images_per_input\)`")


def test_an_archive_of_hidden_files_only_gives_the_note_formats_md_quotes():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(".DS_Store", b"x")
        z.writestr("__MACOSX/._scan.png", b"x")
    items = list(open_input(Blob("h.zip", out.getvalue())))
    assert [(i.error, i.skipped) for i in items] == [("archive holds no files (hidden ones are left out)", True)]
    _said("docs/formats.md", r"an archive of only those, or of folders only, is a note saying it holds no files: "
                             r"`archive holds no files \(hidden ones are left out\)` when some were passed over")


def test_a_decoders_internal_error_is_said_in_the_words_formats_md_quotes():
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (9, 99, 200)).save(out, "QOI")
    items = list(open_input(Blob("x.qoi", out.getvalue()[:30])))
    assert [i.error for i in items] == ["corrupt or truncated QOI image: Pillow cannot decode it"]
    _said("docs/formats.md", r"\(`corrupt or truncated QOI image: Pillow cannot decode it`, `its data is damaged or "
                             r"cut short`\), and a mistake in medimg's own code is `internal error: TypeError: …`")
    from medimg.sources.base import reason
    assert reason(IndexError("index out of range")) == "its data is damaged or cut short"


def test_an_svgs_embedded_picture_is_read_as_readme_says():
    png = io.BytesIO()
    Image.new("RGB", (100, 100), (1, 2, 3)).save(png, "PNG")
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg"><image href="data:image/png;base64,'
           f'{base64.b64encode(png.getvalue()).decode()}"/></svg>').encode()
    items = list(open_input(Blob("a.svg", svg)))
    assert [(type(i), i.locator) for i in items] == [(ImageItem, "image #1")]
    _said("README.md", r"image files: [^;]*DDS; the raster pictures an SVG embeds \(the drawing itself is not "
                       r"rasterised\);")


def test_the_model_kinds_cli_md_names_are_the_codes():
    from medimg.model.classifier import KINDS
    said = _said("docs/cli.md", r"a `kind` other than `(\w+)` or `([\w-]+)`")
    assert set(said.groups()) == set(KINDS)


def test_max_spares_formats_md_states_is_the_codes():
    from medimg.pipeline import MAX_SPARES
    assert int(_said("docs/formats.md", r"`pipeline\.MAX_SPARES` = (\d+)").group(1)) == MAX_SPARES


def test_the_host_check_answers_as_server_md_says():
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from medimg.server.hosts import OwnHostsOnly, ascii_name

    async def ok(request):
        return PlainTextResponse("ok")

    routes = [Route("/api/health", ok, methods=["GET", "HEAD"]), Route("/api/classify", ok, methods=["POST"])]
    app = OwnHostsOnly(Starlette(routes=routes), names=["klinikum-fürth.de"])
    client = TestClient(app)
    assert client.get("/api/health", headers={"Host": "medimg.example.org"}).status_code == 200
    refused = client.post("/api/classify", headers={"Host": "medimg.example.org"})
    assert refused.status_code == 403
    assert refused.json()["error"].startswith("this server does not answer to the name 'medimg.example.org': ")
    assert "Start it with --allowed-host medimg.example.org " in refused.json()["error"]
    _said("docs/server.md", r"\(`this server does not answer to the name 'medimg\.example\.org': … Start it with "
                            r"--allowed-host medimg\.example\.org …`\); "
                            r"`GET\|HEAD /api/health` is answered by any name")
    said = _said("docs/server.md", r"\(`(klinikum-fürth\.de)` or `(xn--[\w-]+\.de)`, as browsers send it\)")
    assert ascii_name(said.group(1)) == said.group(2)
    assert client.post("/api/classify", headers={"Host": said.group(2)}).status_code == 200
