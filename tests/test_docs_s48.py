"""What the docs say is what the program does (session 48): a data: URI on an --offline server is read as the
CLI's --offline reads it, and cli.md says what a list's comment lines are."""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from builders import image_bytes
from medimg.cli import app
from medimg.server import ServerConfig, Worker, create_app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _data_uri() -> str:
    return "data:image/png;base64," + base64.b64encode(image_bytes("PNG", size=(64, 48))).decode()


def test_a_data_uri_is_read_by_an_offline_server_as_by_the_offline_cli(tiny_classifier, tiny_model_dir):
    """formats.md: data: URIs are read, also on /api/classify-url, and fetch nothing. `classify --offline` read
    one, but an --offline server refused it (400, "this server does not fetch web addresses")."""
    res = runner.invoke(app, ["classify", _data_uri(), "-f", "jsonl", "--offline", "--model", str(tiny_model_dir)])
    assert res.exit_code == 0, res.output
    cfg = ServerConfig(offline=True)
    client = TestClient(create_app(cfg, Worker(cfg, tiny_classifier), ui=False), raise_server_exceptions=False)
    for body in ({"url": _data_uri()}, {"urls": [_data_uri()]}):
        r = client.post("/api/classify-url", json=body)
        assert r.status_code == 200, r.text[:300]
        assert [row.get("error") for row in r.json()["results"]] == [None]
    # an address to fetch is still refused, also after a data: URI in the list
    for body in ({"url": "http://127.0.0.1:9/a.png"}, {"urls": [_data_uri(), "http://127.0.0.1:9/a.png"]}):
        r = client.post("/api/classify-url", json=body)
        assert r.status_code == 400 and "--offline" in r.json()["error"], r.text[:300]


def test_cli_md_says_a_lists_blank_and_comment_lines_are_passed_over(tmp_path, tiny_model_dir):
    """--help says "blank lines and # comments ignored; … write a file named #… as ./#…"; cli.md's lists section
    did not say it, though it says a --null list takes "a leading `#` too"."""
    (tmp_path / "#a.png").write_bytes(image_bytes("PNG", size=(64, 48)))
    listed = tmp_path / "list.txt"
    listed.write_text(f"# scans\n\n  # {tmp_path}/#a.png\n{tmp_path}/./#a.png\n", encoding="utf-8")
    res = runner.invoke(app, ["classify", "--inputs-from", str(listed), "-f", "jsonl",
                              "--model", str(tiny_model_dir)])
    assert res.exit_code == 0 and res.stdout.count('"input"') == 1, res.output
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    lists = text[text.index("## Lists of inputs"):text.index("## Limits and fetching")]
    assert "blank lines" in lists and "`./#" in lists


def test_the_long_name_cut_cli_md_states_is_the_codes(tmp_path, tiny_model_dir):
    """Names over 400 characters are cut in the middle on the terminal (session 48); cli.md did not say so, and a
    user seeing `…` in an error line could take the name for a wrong one."""
    from medimg import cli

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    said = re.search(r"A name of more than ([\d,]+) characters \(a list's `data:` URI\) is cut in its middle", text)
    assert said and int(said.group(1).replace(",", "")) == cli.LONG_NAME
    name = str(tmp_path / ("x" * 600 + ".png"))
    res = runner.invoke(app, ["classify", name, "-f", "jsonl", "-o", str(tmp_path / "r.jsonl"),
                              "--model", str(tiny_model_dir)])
    assert f"({len(name):,} characters)" in res.stderr and "…" in res.stderr, res.stderr


# what quiet.py is asked to quiet (a logger, a warning's module, libtiff's handler), by the name the README uses
QUIETED = {"PIL": "Pillow", "imagecodecs": "imagecodecs", "olefile": "olefile", "tifffile": "tifffile",
           "nibabel": "nibabel", "nrrd": "pynrrd", "pydicom": "pydicom", "readlif": "readlif", "mrcfile": "mrcfile",
           "quiet_libtiff": "libtiff"}


def test_every_library_medimg_quiets_is_named_in_the_readme():
    """The README lists what medimg keeps off the console while it reads; session 48 added libtiff's error
    handler (quiet_libtiff, whose errors are now kept per thread) and the README did not name libtiff."""
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "src" / "medimg" / "sources").glob("*.py"))
    found = set(re.findall(r'quiet_logger\("(\w+)"\)', code))
    found |= set(re.findall(r'for _name in \(([^)]*)\):\n\s+quiet_logger', code)[0].replace('"', "").replace(
        " ", "").split(","))
    found |= {m for m in re.findall(r'hide_warnings\((?:module=)?r"(\w+)', code)}
    found |= {"nibabel"} if "nib.imageglobals.logger.addFilter(WhileReading())" in code else set()
    found |= {"quiet_libtiff"} if re.search(r"^quiet_libtiff\(\)", code, re.M) else set()
    assert "quiet_libtiff" in found and "PIL" in found and "olefile" in found, found
    assert found <= set(QUIETED), f"name these in QUIETED and the README: {found - set(QUIETED)}"
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    said = text[text.index("- **Settings of the whole process.**"):text.index("- **Forked processes.**")]
    assert [QUIETED[n] for n in sorted(found) if QUIETED[n] not in said] == []


def test_every_key_evaluate_json_gives_is_named_in_cli_md(tmp_path, tiny_model_dir):
    """cli.md lists `--json`'s metrics; `n`, `labels_present` and `model` were not named (`n` only as a
    reliability bin's count)."""
    for label, size in (("ct", (96, 80)), ("photo", (80, 96))):
        (tmp_path / "set" / label / "s1").mkdir(parents=True)
        (tmp_path / "set" / label / "s1" / "a.png").write_bytes(image_bytes("PNG", size=size))
    res = runner.invoke(app, ["evaluate", str(tmp_path / "set"), "--json", "--model", str(tiny_model_dir)])
    assert res.exit_code == 0, res.output
    keys = json.loads(res.stdout)
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    metrics = text[text.index("- **Metrics**"):text.index("- **Text report.**")]
    metrics = metrics.replace("(`lo`, `hi`, `n`,", "")  # a reliability bin's n is another n
    assert [k for k in keys if f"`{k}`" not in metrics] == []


def test_a_data_uri_past_the_url_requests_cap_is_the_413_server_md_says(tiny_classifier):
    """server.md says data: URIs are read on /api/classify-url; its body cap (64 KB) makes a picture's of more
    than about 48 KB a 413, which the docs said nowhere next to it."""
    from medimg.server.limits import URL_BODY_BYTES

    text = (ROOT / "docs" / "server.md").read_text(encoding="utf-8")
    said = re.search(r"`data:` URI \(a picture's bytes in[^)]*the request\s+may be (\d+) KB, so a larger picture is a "
                     r"413: upload it as a file to `/api/classify`\)", text)
    assert said and int(said.group(1)) * 1024 == URL_BODY_BYTES
    cfg = ServerConfig()
    client = TestClient(create_app(cfg, Worker(cfg, tiny_classifier), ui=False), raise_server_exceptions=False)
    uri = "data:image/png;base64," + base64.b64encode(b"\x89PNG" + bytes(URL_BODY_BYTES)).decode()
    r = client.post("/api/classify-url", json={"url": uri})
    assert r.status_code == 413, r.text[:300]


def test_a_data_uri_too_long_for_an_argument_is_read_from_a_list_as_cli_md_says(tmp_path, tiny_model_dir):
    """Linux takes no argument over 128 KB (MAX_ARG_STRLEN): `medimg classify data:…` of a 100 KB picture fails in
    the shell. cli.md now says to give it in a list, where it is read."""
    import os

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert "over 128 KB cannot be a command-line argument on Linux" in text
    picture = image_bytes("PNG", size=(64, 48)) + os.urandom(110_000)  # bytes after IEND: still a PNG
    uri = "data:image/png;base64," + base64.b64encode(picture).decode()
    assert 128 * 1024 < len(uri) < 1 << 20
    listed = tmp_path / "list.txt"
    listed.write_text(uri + "\n", encoding="utf-8")
    res = runner.invoke(app, ["classify", "--inputs-from", str(listed), "-f", "jsonl", "--model", str(tiny_model_dir)])
    assert res.exit_code == 0 and '"error": null' in res.stdout, res.output[-500:]


def test_the_largest_value_each_option_takes_is_in_its_cli_md_row():
    """`--max-depth 51` is a usage error ([0<=x<=50] in --help), but cli.md's row gave no upper bound; the others
    (--workers, scale's --batch-size, train's --size) have theirs. A port's 65535 goes without saying."""
    import typer.main

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    options = text[text.index("## Options and their defaults"):text.index("## Speed")]
    missing = []
    for name, command in typer.main.get_command(app).commands.items():
        for param in command.params:
            top = getattr(param, "max", None)
            if top is None or isinstance(top, float) or param.opts == ["--port"]:
                continue
            rows = [line for line in options.splitlines() if line.startswith(f"| `{param.opts[0]}`")]
            if not any(f"{top}" in row.replace(",", "") for row in rows):
                missing.append(f"{name} {param.opts[0]} ≤ {top}")
    assert missing == []


def _slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation but - and _ dropped, spaces as -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_relative_link_and_anchor_between_the_docs_leads_somewhere():
    """A guard (every link held when written): README, MODEL_CARD and docs/*.md link to files and headings of
    one another (`formats.md#the-limits`); a heading renamed would leave a link that opens the page's top."""
    pages = [ROOT / "README.md", ROOT / "MODEL_CARD.md", *sorted((ROOT / "docs").glob("*.md"))]

    def prose(page: Path) -> str:
        return re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)

    anchors = {page.resolve(): {_slug(h) for h in re.findall(r"^#+ (.*)$", prose(page), re.M)} for page in pages}
    broken, checked = [], 0
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", prose(page)):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page.resolve()
            checked += 1
            if not dest.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors.get(dest, set()):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert checked > 30 and broken == []


def test_the_readme_names_every_flat_opendocument_kind_read():
    """flat_odf.py reads `.fods` spreadsheets and `.fodg` drawings too (tests/test_mail_s44.py); the README's list
    named `.fodt`/`.fodp` only."""
    from medimg.sources import flat_odf

    kinds = re.findall(r"`(\.fod\w)`", flat_odf.__doc__)
    assert sorted(kinds) == [".fodg", ".fodp", ".fods", ".fodt"]
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = text[:text.index("— and says for each one")]
    assert [k for k in kinds if k not in listed] == []
