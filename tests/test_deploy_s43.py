"""`medimg serve` read through its logs as an operator reads them (s43): a client's malformed page events are a
4xx, not a traceback; the start's line gives an IPv6 address as a URL; the source archive's manifest builds
without warnings."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import httpx
import pytest

from medimg.model.classifier import ASSETS
from test_api import free_port
from test_deploy_s40 import serving
from test_diffread2_s43 import _ipv6 as _ipv6_loopback

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory, request):
    """`medimg serve` as a process of its own, on ::1 where this machine has it (else 127.0.0.1):
    (base URL, host, the other log's file: stderr)."""
    tmp = tmp_path_factory.mktemp("deploy43")
    (tmp / "tmp").mkdir()
    host = "::1" if _ipv6_loopback() else "127.0.0.1"
    port = free_port()
    cmd = [sys.executable, "-m", "medimg.cli", "serve", "--host", host, "--port", str(port)]
    if not (ASSETS / "labels.json").exists():
        cmd += ["--model", str(request.getfixturevalue("tiny_model_dir"))]
    env = {k: v for k, v in os.environ.items() if k not in ("GRADIO_TEMP_DIR", "MPLCONFIGDIR", "MEDIMG_TOKEN")}
    env.update(TMPDIR=str(tmp / "tmp"), HOME="/nonexistent")
    err = tmp / "stderr.log"
    base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    with serving(cmd, env, base, tmp / "stdout.log", err):
        yield base, host, port, err


def test_malformed_page_events_are_a_4xx_and_leave_no_traceback_in_the_log(served):
    """Gradio raised on a page event naming no handler (a 500), on one with too few input values (a 200, then a
    failed run) and on a stream for an unknown session (a 200 cut off): each put a traceback in the log, for a
    client's mistake. They are now a 422 or 404, and the log holds no traceback."""
    base, _, _, err = served
    deps = httpx.get(base + "/config", timeout=30).json()["dependencies"]
    fn = max(deps, key=lambda d: len(d["inputs"]))
    assert fn["inputs"], "the page has an event with inputs"
    join = base + "/gradio_api/queue/join"
    sent = [
        httpx.post(join, json={"fn_index": 999, "data": [], "session_hash": "s43unknownfn"}, timeout=30),
        httpx.post(join, json={"fn_index": "999", "data": [], "session_hash": "s43unknownfn2"}, timeout=30),
        httpx.post(join, json={"fn_index": fn["id"], "data": [None] * (len(fn["inputs"]) - 1),
                               "session_hash": "s43short"}, timeout=30),
    ]
    assert [r.status_code for r in sent] == [422, 422, 422], [r.text for r in sent]
    assert "no event of this page" in sent[0].json()["detail"]
    assert f"takes {len(fn['inputs'])} input values" in sent[2].json()["detail"]
    stream = httpx.get(base + "/gradio_api/queue/data", params={"session_hash": "s43nobody"}, timeout=30)
    assert stream.status_code == 404, stream.text
    time.sleep(1.5)  # a failed run is logged by Gradio's queue, after its answer
    said = err.read_text()
    assert "Traceback" not in said and "Exception in ASGI application" not in said, said[-3000:]


def test_the_start_line_gives_the_page_s_address_as_a_url(served):
    """With --host ::1 (or ::) the start's line said `web page at http://::1:7860/`, which no browser or curl
    takes; an IPv6 address is now in brackets, as in a URL."""
    base, _, _, err = served
    start = next(line for line in err.read_text().splitlines() if "web page at" in line)
    url = start.split("web page at ", 1)[1].split(" ", 1)[0]
    assert url == f"{base}/", start
    assert httpx.get(url + "api/health", timeout=10).status_code == 200
    from medimg.server.app import page_url

    assert page_url("::", 7860, "/medimg") == "http://[::]:7860/medimg/"
    assert page_url("127.0.0.1", 7860) == "http://127.0.0.1:7860/"


def test_every_pattern_of_manifest_in_matches_a_file():
    """MANIFEST.in asked for `*.md` under benchmarks/, which has none: every sdist build (and `python -m build`,
    twice) warned "no files found matching '*.md' under directory 'benchmarks'"."""
    unmatched = []
    for line in (ROOT / "MANIFEST.in").read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "include":
            unmatched += [p for p in words[1:] if not list(ROOT.glob(p))]
        elif words[0] == "recursive-include":
            unmatched += [f"{words[1]}/**/{p}" for p in words[2:] if not list((ROOT / words[1]).rglob(p))]
    assert not unmatched, unmatched
