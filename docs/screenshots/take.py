"""Retake docs/screenshots/ui.png: serve the shipped model, run the first example in headless Chromium.

    .venv/bin/python docs/screenshots/take.py [--port 7871]
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from medimg.sources.browser import _chromium

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=7871)
    port = ap.parse_args().port
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    server = subprocess.Popen([sys.executable, "-m", "medimg", "serve", "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(240):
            try:
                if httpx.get(url + "api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            sys.exit("the server did not start")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            page.get_by_role("button", name="Example: scans and photos").click()
            page.get_by_text("All images").wait_for(timeout=60_000)
            page.wait_for_timeout(1500)  # thumbnails load
            page.screenshot(path=str(HERE / "ui.png"), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print("wrote", HERE / "ui.png")


if __name__ == "__main__":
    main()
