"""The docs name what the code has: every module has its paragraph in docs/architecture.md, a constant the docs
cite as `module.NAME` exists in that module, and `medimg scale --help` shows only options scale has."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from typer.testing import CliRunner

from medimg.cli import app

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "medimg"
DOCS = [ROOT / "README.md", ROOT / "MODEL_CARD.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_module_is_named_in_the_architecture():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        names = {f"`{rel.name}`", f"`{rel.as_posix()}`", f"`medimg/{rel.as_posix()}`"}
        if not any(name in text for name in names):
            missing.append(rel.as_posix())
    assert not missing


def test_constants_the_docs_cite_exist():
    """`web.PEEK_BYTES`, `prints.CROP_KEEPS`, …: the module of that name under medimg has the constant (the docs
    named `web.CROP_KEEPS` after it moved to prints.py)."""
    modules = {p.stem: p for p in PACKAGE.rglob("*.py") if p.stem != "__init__"}
    cited = set()
    for doc in DOCS:
        cited |= set(re.findall(r"`([a-z_]+)\.([A-Z][A-Z0-9_]+)`", doc.read_text(encoding="utf-8")))
    assert cited  # the pattern finds them
    missing = []
    for module, name in sorted(cited):
        if module in modules:
            dotted = ".".join(("medimg", *modules[module].relative_to(PACKAGE).with_suffix("").parts))
            if not hasattr(importlib.import_module(dotted), name):
                missing.append(f"{module}.{name}")
    assert not missing


def test_scale_help_names_no_option_scale_lacks():
    """`--null`'s help said `--inputs-from -`, which scale does not take (its list is its argument)."""
    out = " ".join(CliRunner().invoke(app, ["scale", "--help"], env={"COLUMNS": "200"}).output.split())
    assert "--null" in out and "--inputs-from" not in out
