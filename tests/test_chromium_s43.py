"""The Chromium that renders pages is found where other systems install it, or named by MEDIMG_CHROMIUM (it was
looked for at Debian's /usr/bin/chromium only: on RHEL's `chromium-browser` or Ubuntu's snap, rendering failed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from test_browser import RENDER, requires_browser
from test_web_s43 import png
from webserver import WebServer

CHILD = """
import json, sys
from medimg.sources import browser, ImageItem, Limits, open_input
out = {"chromium": browser.CHROMIUM, "why": browser.available()}
if len(sys.argv) > 1:
    out["read"] = [i.locator.split(" ")[0] for i in open_input(sys.argv[1], Limits(**json.loads(sys.argv[2])))
                   if isinstance(i, ImageItem)]
print(json.dumps(out))
"""


def child(env: dict, *args: str) -> dict:
    run = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=180,
                         env={**os.environ, **env})
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.splitlines()[-1])


def test_medimg_chromium_names_a_missing_browser_in_the_error(tmp_path):
    got = child({"MEDIMG_CHROMIUM": str(tmp_path / "no-chromium")})
    assert got["chromium"] == str(tmp_path / "no-chromium")
    assert "(MEDIMG_CHROMIUM), which is not an executable file" in got["why"], got


@requires_browser
@pytest.mark.timeout(240)
def test_a_chromium_elsewhere_named_by_medimg_chromium_renders(tmp_path):
    from medimg.sources import browser

    elsewhere = tmp_path / "opt" / "chromium-browser"
    elsewhere.parent.mkdir()
    elsewhere.symlink_to(browser.CHROMIUM)
    with WebServer() as srv:
        srv.add("/a.png", png(1), "image/png")
        srv.add("/p.html", '<div id=x></div><script>const i = new Image(); i.src = "/a.png"; '
                           'document.getElementById("x").append(i)</script>', "text/html")
        got = child({"MEDIMG_CHROMIUM": str(elsewhere)}, srv.url("/p.html"), json.dumps(RENDER))
    assert got["chromium"] == str(elsewhere) and got["why"] is None, got
    assert got["read"] == ["img"], got  # made by the script: only a render finds it
