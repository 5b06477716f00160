"""The user docs agree with the code and with each other: architecture.md names no module that is gone, cli.md's
option tables give the defaults `--help` gives and list exactly the commands that take each option, the train
table gives each route's defaults, the exit codes and the default thresholds read the same everywhere, and every
option in the README's and cli.md's command lines exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer.main

from medimg.cli import ROUTES, app

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "medimg"
SHARED = "classify, extract, evaluate and scale"


def _section(text: str, heading: str) -> str:
    start = text.index(heading + "\n")
    end = text.find("\n## ", start + len(heading))
    return text[start:] if end < 0 else text[start:end]


def _tables() -> dict[str, list[list[str]]]:
    """cli.md's option tables by title, each row's cells (header and rule left out)."""
    section = _section((ROOT / "docs" / "cli.md").read_text(encoding="utf-8"), "## Options and their defaults")
    tables = {}
    for part in section.split("\n### ")[1:]:
        title, _, body = part.partition("\n")
        rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in body.splitlines()
                if line.startswith("|") and not line.startswith("|---")]
        tables[title.strip()] = [r for r in rows if r[0] != "option"]
    return tables


def _commands():
    return typer.main.get_command(app).commands


def _flags(param) -> list[str]:
    return [o for o in param.opts + param.secondary_opts if o.startswith("--")]


def _numbers(text: str) -> set[float]:
    text = re.sub(r"(\d+(?:\.\d+)?)M\b", lambda m: str(int(float(m.group(1)) * 1_000_000)), text.replace(",", ""))
    return {float(n) for n in re.findall(r"(?<![\w.])\d+(?:\.\d+)?", text)}


def _row(table: list[list[str]], flag: str) -> list[str]:
    return next(r for r in table if f"`{flag}`" in r[0])


def test_architecture_names_only_modules_that_exist():
    """A module split, renamed or removed leaves no paragraph behind (the s34 test checks the other way)."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    files = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")}
    names = {Path(f).name for f in files}
    gone = []
    for named in sorted(set(re.findall(r"`((?:medimg/)?[\w/]+\.py)`", text))):
        rel = named.removeprefix("medimg/")
        if not (rel in files if "/" in rel else rel in names):
            gone.append(named)
    assert not gone


def test_each_default_the_help_states_is_in_cli_md():
    """`--help` says `(default 64)` for the options whose default the code works out; cli.md's cell says the same."""
    tables = _tables()
    checked, wrong = 0, []
    for name, command in _commands().items():
        table = tables.get(name) or tables[SHARED]
        for param in command.params:
            said = re.search(r"default[^)]*", param.help or "", re.I)
            if param.param_type_name != "option" or not said or not _numbers(said.group(0)):
                continue
            row = _row(table, _flags(param)[0])
            cell = row[1] if name in tables else row[2]
            checked += 1
            if not _numbers(said.group(0)) <= _numbers(cell):
                wrong.append(f"{name} {param.opts[0]}: help {said.group(0)!r}, cli.md {cell!r}")
    assert checked >= 30
    assert not wrong


def test_the_shared_table_lists_exactly_the_commands_that_take_each_option():
    tables, commands = _tables(), _commands()
    wrong = []
    for row in tables[SHARED]:
        flag = re.findall(r"`(--[\w-]+)`", row[0])[0]
        listed = set(re.findall(r"[a-z]+", row[1]))
        have = {name for name, command in commands.items() if name not in tables
                and any(flag in _flags(p) for p in command.params)}
        if listed != have:
            wrong.append(f"{flag}: cli.md {sorted(listed)}, the code {sorted(have)}")
    assert not wrong


def test_the_train_table_gives_each_routes_defaults():
    """`--epochs 16 (cnn: 20)` and the like come from cli.ROUTES (and Config's own default where cnn sets none)."""
    pytest.importorskip("torch")  # the train extra
    from medimg.training.train import Config

    table = _tables()["train"]
    wrong = []
    for key in ("arch", "epochs", "samples_per_epoch", "icons", "pages", "threads"):
        cell = _row(table, "--" + key.replace("_", "-"))[1]
        for route in ("finetune", "cnn"):
            value = ROUTES[route].get(key, getattr(Config, key))
            if str(value) not in cell and (not isinstance(value, (int, float)) or float(value) not in _numbers(cell)):
                wrong.append(f"--{key} {route}: {value} not in {cell!r}")
    assert not wrong


def _codes(text: str) -> set[int]:
    return {int(c) for c in re.findall(r"(?<![\d.])(0|1|2|74|129|130|141|143)(?![\d.])", text)}


def test_exit_codes_read_the_same_in_help_cli_md_and_readme():
    help_codes = _codes(_commands()["classify"].epilog or "")
    table = _section((ROOT / "docs" / "cli.md").read_text(encoding="utf-8"), "## Exit codes")
    table_codes = {int(c) for row in re.findall(r"^\| ([\d /]+) \|", table, re.M) for c in re.findall(r"\d+", row)}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    bullet = re.search(r"\*\*Exit codes\.\*\*(.*?)\n- \*\*", readme, re.S).group(1)
    assert help_codes == {0, 1, 2, 74, 129, 130, 141, 143}
    assert table_codes == help_codes
    assert _codes(bullet) == help_codes


def test_the_default_thresholds_in_the_docs_are_the_shipped_models():
    assets = PACKAGE / "model" / "assets"
    default = json.loads((assets / "labels.json").read_text())["threshold"]
    fast = json.loads((assets / "fast" / "labels.json").read_text())["threshold"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    cli = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert f"is {default:g} for the default model ({fast:g} for `fast`)" in readme
    assert f"{default:g} for the\n  default model, {fast:g} for `fast`" in cli
    assert f"the model's: {default:g} (`fast`: {fast:g})" in cli


def _command_lines(text: str) -> list[str]:
    """`medimg <command> …` lines of the ```bash blocks, continuation lines joined."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("   #")[0].split("  #")[0]
            if re.search(r"\bmedimg (classify|extract|evaluate|scale|train|serve)\b", line):
                lines.append(line)
    return lines


def test_every_option_in_the_docs_command_lines_exists():
    """The README's, cli.md's and the model card's example commands use only options their command has."""
    commands = _commands()
    wrong, seen = [], 0
    for doc in ("README.md", "docs/cli.md", "docs/server.md", "MODEL_CARD.md"):
        for line in _command_lines((ROOT / doc).read_text(encoding="utf-8")):
            name = re.search(r"\bmedimg (\w+)", line).group(1)
            have = {o for p in commands[name].params for o in p.opts + p.secondary_opts}
            args = line.split(f"medimg {name}", 1)[1].split(" | ")[0]  # not a pipe's next command
            for flag in re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*|-\d)", args):
                seen += 1
                if flag not in have:
                    wrong.append(f"{doc}: {flag} in {line.strip()!r}")
    assert seen >= 20
    assert not wrong


def test_the_limits_table_gives_the_limits_defaults():
    """formats.md's table of limits: each field's default as `Limits()` has it (MB and GB as 2**20 and 2**30)."""
    from medimg.sources import Limits

    text = _section((ROOT / "docs" / "formats.md").read_text(encoding="utf-8"), "### The limits")
    units = {"MB": 2**20, "GB": 2**30}
    lim, checked, wrong = Limits(), 0, []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 3 or not re.match(r"[\d,. ]+", cells[1]):
            continue
        fields = re.findall(r"`(\w+)`", cells[0])
        unit = units.get(cells[1].split()[-1], 1)
        values = [float(n) * unit for n in re.findall(r"\d+(?:\.\d+)?", cells[1].replace(",", ""))]
        values = values * len(fields) if len(values) == 1 else values
        for field, value in zip(fields, values, strict=True):
            checked += 1
            if getattr(lim, field) != value:
                wrong.append(f"{field}: formats.md {cells[1]!r}, Limits {getattr(lim, field)}")
    assert checked >= 15
    assert not wrong
