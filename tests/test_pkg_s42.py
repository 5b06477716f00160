"""Packaging (s42): floors of pymupdf and the browser extra's Playwright that the code really runs on, and what
classifying one image imports."""
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _floor(name):
    from packaging.requirements import Requirement

    listed = PROJECT["dependencies"] + [r for extra in PROJECT["optional-dependencies"].values() for r in extra]
    return next(r.specifier for r in map(Requirement, listed) if r.name == name)


@pytest.mark.parametrize("name, too_old, why", [
    ("pymupdf", "1.25.5", "no mupdf.ll_fz_path_is_rect: a page with a filled path is 'could not read page'"),
    ("pymupdf", "1.26.7", "a page tree claiming 10^9 pages gives 501 error rows in ~30 s, not one clear error"),
    ("playwright", "1.47.0", "no BrowserContext.route_web_socket: every --render is 'rendering failed'"),
])
def test_floors_exclude_releases_the_code_fails_on(name, too_old, why):
    pytest.importorskip("packaging")
    assert too_old not in _floor(name), why


def test_classifying_a_png_loads_no_server_training_or_browser_library(tmp_path):
    """Guard: `import medimg` and classifying one image stay free of torch, gradio, ray, fastapi and playwright."""
    from PIL import Image

    Image.new("RGB", (64, 64), (200, 30, 30)).save(tmp_path / "red.png")
    heavy = ["torch", "gradio", "ray", "fastapi", "uvicorn", "playwright", "pandas", "pyarrow", "matplotlib"]
    code = (f"import sys, medimg; rows = list(medimg.classify([{str(tmp_path / 'red.png')!r}])); "
            f"assert rows and rows[0].error is None, rows; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"loaded to classify one PNG: {out.stdout.strip()}"
