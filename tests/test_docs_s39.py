"""What the docs say of session 39's changes is what the code does: the caps formats.md states in words (e-mail
parsing time, TNEF records, pyramid tiles, plain-page pyramids, blank video frames, DNS threads) are the code's
constants, the media queries it quotes hold or not as it says, classify's CSV has the columns cli.md lists, and
the files the README says a wheel installs under share/doc/medimg are the ones pyproject installs."""

from __future__ import annotations

import csv
import glob
import importlib
import re
import tomllib
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]


def _doc(name: str) -> str:
    return " ".join((ROOT / name).read_text(encoding="utf-8").split())  # lines joined: a phrase may wrap anywhere


@pytest.mark.parametrize("doc, pattern, module, name", [
    ("docs/formats.md", r"or (\d+) s spent parsing it", "sources.email_file", "PARSE_SECONDS"),
    ("docs/formats.md", r"In a mailbox each message has its own (\d+) s", "sources.email_file", "PARSE_SECONDS"),
    ("docs/formats.md", r"its own \d+ s, and all of them together (\d+) s", "sources.email_file", "MAILBOX_SECONDS"),
    ("docs/formats.md", r"Content-Transfer-Encoding header over (\d+) KB", "sources.email_file", "_MAX_HEADER"),
    ("docs/formats.md", r"it holds at most ([\d,]+) records", "sources.tnef", "MAX_RECORDS"),
    ("docs/formats.md", r"fits `max_pixels` and covers at most ([\d,]+) tiles", "sources.pyramid", "MAX_SEGMENTS"),
    ("docs/formats.md", r"whose every page \((\d+) to \d+ of them, tiled\)", "sources.microscopy", "MIN_LEVELS"),
    ("docs/formats.md", r"whose every page \(\d+ to (\d+) of them, tiled\)", "sources.microscopy", "MAX_LEVEL_PAGES"),
    ("docs/formats.md", r"no SubIFDs: (\d+) or more OME images at the start", "sources.microscopy", "MIN_LEVELS"),
    ("docs/formats.md", r"the one nearest the middle, of (\d+) spread over the clip", "sources.video", "BLANK_LOOKS"),
    ("docs/formats.md", r"the lookups of a process share (\d+) threads", "sources.net", "DNS_THREADS"),
])
def test_the_caps_the_docs_state_in_words_are_the_codes(doc, pattern, module, name):
    said = re.search(pattern, _doc(doc))
    assert said, pattern
    number = float(said.group(1).replace(",", "")) * (1024 if pattern.endswith("KB") else 1)
    assert number == getattr(importlib.import_module(f"medimg.{module}"), name)


def test_architecture_md_names_the_dns_pool_net_py_has():
    from medimg.sources import net

    assert "lookups share a pool of `DNS_THREADS`" in _doc("docs/architecture.md")
    assert net.DNS_THREADS > 0


def _quoted(pattern: str) -> list[str]:
    said = re.search(pattern, _doc("docs/formats.md"))
    assert said, pattern
    return re.findall(r"`([^`]+)`", said.group(1))


def test_the_media_queries_formats_md_quotes_hold_as_it_says():
    from medimg.sources.media import media_matches

    assert _quoted(r"with `\+ - \* /` \((`[^`]+`) holds for no desktop\)") == ["(max-width: calc(768px - 0.02px))"]
    assert not media_matches("(max-width: calc(768px - 0.02px))")
    held, not_held = _quoted(r"Chromium's layout unit \((`[^`]+` holds at 1280 px, `[^`]+`) does not\)")
    assert (held, not_held) == ("(max-width: 1279.99px)", "1279.98px")
    assert media_matches(held) and not media_matches(f"(max-width: {not_held})")


def test_the_queries_formats_md_says_break_the_grammar_hold_for_nothing():
    from medimg.sources.media import media_matches

    broken = _quoted(r"a query breaking the grammar \((.*?)\) holds for nothing")
    assert broken == ["not and", "only (x)", "(x) and screen", "and", "or", "not (a) and (b)", "{", ";"]
    for query in broken[:3] + broken[5:6] + ["(hover) and (pointer: fine) or (color)", "(hover) { x", "(hover); x"]:
        assert not media_matches(query) and not media_matches(f"not {query}"), query
    assert media_matches("(hover) and (pointer: fine)") and media_matches("(hover), (pointer: coarse)")
    assert media_matches("not (pointer: coarse), , (pointer: coarse)")  # the empty one holds for nothing, not the list
    assert not media_matches("(pointer: coarse), , (pointer: coarse)")


def test_text_formats_md_calls_no_value_is_unknown():
    from medimg.sources.media import media_matches

    other = _quoted(r"as does other text in parentheses \((.*?)\);")
    assert other == ["(ho ver)", "foo(x)"]
    no_values = _quoted(r"`1279\.98px` does not\); (`576 px` \(a space before the unit\) and `1\.`) are no values")
    assert no_values == ["576 px", "1."]
    for query in other + [f"(min-width: {v})" for v in no_values]:
        assert not media_matches(query) and not media_matches(f"not {query}"), query
    assert media_matches("(min-width: 576px)") and media_matches("(min-width: 1)") is False  # a bare 1 is no length


def test_the_numbers_and_nesting_formats_md_quotes_read_as_it_says():
    from medimg.sources.media import media_matches

    assert _quoted(r"numbers may have a sign and an exponent \((.*?)\)") == ["+5", "1e3px"]
    assert media_matches("(min-width: 1e3px)") and not media_matches("(min-width: 1e4px)")
    assert media_matches("(min-color: +5)") and not media_matches("(min-color: +9)")  # 8-bit colour
    assert "nested in parentheses (`not ((hover) and (pointer: coarse))`)" in _doc("docs/formats.md")
    assert media_matches("not ((hover) and (pointer: coarse))")  # a mouse: hover, a fine pointer
    assert "(`3/0` is infinitely wide)" in _doc("docs/formats.md")
    assert not media_matches("(min-aspect-ratio: 3/0)") and media_matches("(max-aspect-ratio: 3/0)")


def test_classify_s_csv_has_the_columns_cli_md_lists(tmp_path, tiny_model_dir):
    from medimg.cli import app
    from medimg.output import stamp_fields

    said = re.search(r"one record per image: `([^`]+)`, then how its verdict was made: `(\w+)` \(.*?\) and `(\w+)` "
                     r"\(on every row\)", _doc("docs/cli.md"))
    assert said
    listed = [*(f.strip() for f in said.group(1).split(",")), said.group(2), said.group(3)]
    assert listed[-2:] == stamp_fields()
    Image.new("RGB", (40, 40), (220, 10, 10)).save(tmp_path / "a.png")
    out = tmp_path / "r.csv"
    res = CliRunner().invoke(app, ["classify", str(tmp_path / "a.png"), "-o", str(out), "--model",
                                   str(tiny_model_dir)])
    assert res.exit_code == 0, res.output
    [row] = list(csv.DictReader(out.open(encoding="utf-8")))
    assert list(row) == listed
    assert row["model"] and float(row["threshold"]) == 0.8  # the tiny model's own threshold


def test_the_full_columns_put_model_after_source_and_threshold_last(tmp_path, tiny_model_dir):
    from medimg.cli import app

    assert "`model` among these, after `source` (`threshold` stays last)" in _doc("docs/cli.md")
    Image.new("RGB", (40, 40), (10, 220, 10)).save(tmp_path / "a.png")
    out = tmp_path / "r.csv"
    res = CliRunner().invoke(app, ["classify", str(tmp_path / "a.png"), "-o", str(out), "--full", "--model",
                                   str(tiny_model_dir)])
    assert res.exit_code == 0, res.output
    header = out.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[-1] == "threshold" and header.index("model") > header.index("source")


def test_the_docs_the_readme_says_a_wheel_installs_are_in_pyproject_s_data_files():
    assert "README, MODEL_CARD.md and the docs it links to are installed with the package, in the venv's " \
           "`share/doc/medimg/`" in _doc("README.md").replace("This README", "README")
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["data-files"]
    installed = {}  # file in the repository -> where it goes
    for target, patterns in data.items():
        assert target.startswith("share/doc/medimg"), target
        for pattern in patterns:
            for found in glob.glob(str(ROOT / pattern)):
                rel = Path(found).relative_to(ROOT)
                installed[rel.as_posix()] = target
                assert Path(target, rel.name).as_posix() == Path("share/doc/medimg", rel).as_posix(), rel  # links
    assert {"README.md", "MODEL_CARD.md"} <= set(installed)
    linked = set()
    for doc in ["README.md", "MODEL_CARD.md", *(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)", (ROOT / doc).read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            path = (ROOT / doc).parent / target
            if path.is_file() and path.resolve().is_relative_to(ROOT):
                rel = path.resolve().relative_to(ROOT).as_posix()
                if rel.endswith((".md", ".png")):
                    linked.add(rel)
    missing = sorted(linked - set(installed))
    assert not missing, missing
