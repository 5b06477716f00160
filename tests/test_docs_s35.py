"""The user docs cover what the code has: every option of every command is in docs/cli.md's tables with its
default, every `Limits` field is in docs/formats.md's limits, every route and status of /openapi.json is in
docs/server.md, and the README's example record is what `classify` gives for that file."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import typer.main

from medimg.cli import app
from medimg.sources import Limits

ROOT = Path(__file__).resolve().parents[1]


def _section(path: Path, heading: str) -> str:
    text = path.read_text(encoding="utf-8")
    start = text.index(heading + "\n")
    end = text.find("\n## ", start + len(heading))
    return text[start:] if end < 0 else text[start:end]


def _rows(text: str) -> list[list[str]]:
    """The cells of each table row (header and rule left out)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return [row for row in rows if row[0] not in ("option", "field")]


def _options_by_table() -> dict[str, list[list[str]]]:
    """cli.md's option tables, by the commands each covers."""
    section = _section(ROOT / "docs" / "cli.md", "## Options and their defaults")
    tables = {}
    for part in section.split("\n### ")[1:]:
        title, _, body = part.partition("\n")
        tables[title.strip()] = _rows(body)
    return tables


def _shown(default) -> str | None:
    """A default as the docs write it: None for one the help leaves to the code (None, False)."""
    if default is None or isinstance(default, bool):
        return None
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def test_every_option_of_every_command_is_in_cli_md_with_its_default():
    tables = _options_by_table()
    assert {"classify, extract, evaluate and scale", "serve", "train"} <= set(tables)
    missing, wrong = [], []
    for name, command in typer.main.get_command(app).commands.items():
        table = tables.get(name) or tables["classify, extract, evaluate and scale"]
        for param in command.params:
            if param.param_type_name != "option":
                continue
            for flag in [o for o in param.opts + param.secondary_opts if o.startswith("--")]:
                row = next((r for r in table if f"`{flag}`" in r[0]
                            and (name in tables or re.search(rf"\b{name}\b", r[1]))), None)
                if row is None:
                    missing.append(f"{name} {flag}")
                    continue
                default = _shown(param.default)
                cell = row[1] if name in tables else row[2]
                if default is not None and default not in cell.replace(",", ""):
                    wrong.append(f"{name} {flag}: {default} not in {cell!r}")
    assert not missing
    assert not wrong


def test_the_limit_options_defaults_in_cli_md_are_the_limits():
    table = _options_by_table()["classify, extract, evaluate and scale"]
    rows = {re.findall(r"`(--[\w-]+)`", r[0])[0]: r[2] for r in table}
    lim = Limits()

    def numbers(cell: str) -> list[float]:
        return [float(n) for n in re.findall(r"\d+(?:\.\d+)?", cell.replace(",", ""))]

    assert numbers(rows["--min-side"])[0] == lim.min_side
    assert numbers(rows["--max-pixels"])[0] == lim.max_pixels
    assert numbers(rows["--max-pages"])[0] == lim.max_pdf_pages
    assert numbers(rows["--max-images"])[0] == lim.max_images_per_input
    assert numbers(rows["--max-input-mb"])[:2] == [lim.max_input_bytes / 2**20, lim.max_download_bytes / 2**20]
    assert numbers(rows["--timeout"])[:2] == [lim.total_timeout, lim.read_timeout]


def test_every_limits_field_is_in_formats_md():
    """The table of limits (or the line on the switches under it) names every field of Limits: the table had no
    row for a new cap until one was added by hand."""
    section = _section(ROOT / "docs" / "formats.md", "### The limits")
    named = set(re.findall(r"`(\w+)`", section))
    missing = [f.name for f in dataclasses.fields(Limits) if f.name not in named]
    assert not missing


def test_every_route_and_status_of_the_api_is_in_server_md():
    from medimg.server import ServerConfig, create_app

    spec = create_app(ServerConfig(token="x"), ui=False).openapi()
    text = (ROOT / "docs" / "server.md").read_text(encoding="utf-8") + (ROOT / "README.md").read_text(encoding="utf-8")
    missing = []
    for path, ops in spec["paths"].items():
        if path not in text:
            missing.append(path)
        for op in ops.values():
            missing += [f"{path} {code}" for code in op["responses"] if not re.search(rf"\b{code}\b", text)]
    assert not missing


def test_the_readme_record_is_what_classify_gives(tmp_path, monkeypatch):
    """The README's example record, for pydicom's CT_small.dcm: the same fields and values (to 2 decimals)."""
    from pydicom.data import get_testdata_file
    from typer.testing import CliRunner

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = json.loads(re.search(r"```json\n(.*?)\n```", readme, re.S).group(1))
    (tmp_path / "scans").mkdir()
    (tmp_path / "scans" / "CT_small.dcm").write_bytes(Path(get_testdata_file("CT_small.dcm")).read_bytes())
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["classify", "scans/CT_small.dcm", "-f", "jsonl"])
    got = json.loads(result.stdout.splitlines()[0])
    assert list(got) == list(shown) + ["model", "threshold"]  # the CLI's rows say how the verdict was made
    assert got["threshold"] == 0.6 and got["model"].startswith("medimg-effl2 ")
    for key, value in shown.items():
        if isinstance(value, float):
            assert round(got[key], 2) == round(value, 2), key
        else:
            assert got[key] == value, key
