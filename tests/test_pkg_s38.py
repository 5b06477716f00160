"""Packaging: the wheel's contents, one version, dependency floors that work, a half-made venv made again."""
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_version_is_written_once():
    """pyproject takes the version from medimg.__version__, so a release changes one line."""
    assert "version" not in PROJECT["project"] and "version" in PROJECT["project"]["dynamic"]
    assert PROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "medimg.__version__"}


def _floor(name):
    from packaging.requirements import Requirement

    reqs = [Requirement(r) for r in PROJECT["project"]["dependencies"]]
    return next(r.specifier for r in reqs if r.name == name)


@pytest.mark.parametrize("name, too_old", [
    ("pymupdf", "1.24.0"),  # has `fitz` only; medimg imports pymupdf
    ("typer", "0.15.1"),  # `medimg classify --help` raises TypeError under click 8.2+
])
def test_dependency_floors_exclude_releases_that_do_not_work(name, too_old):
    pytest.importorskip("packaging")
    assert too_old not in _floor(name)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_venv_left_without_pip_is_made_again(tmp_path):
    """A make killed while making .venv (kill -9, a reboot) left bin/python without pip: every later make failed."""
    shutil.copy(ROOT / "Makefile", tmp_path)
    (tmp_path / "pyproject.toml").write_text("")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / ".venv")], check=True)
    plan = subprocess.run(["make", "-n", ".venv/.app", f"PY={sys.executable}"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert plan.returncode == 0, plan.stderr
    assert "-m venv .venv" in plan.stdout, plan.stdout


def test_the_wheel_holds_the_models_and_typing_but_no_tests(tmp_path):
    """What an installation without the checkout gets (built without isolation: no network needed)."""
    pytest.importorskip("setuptools", minversion="77")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    if built.returncode != 0 and "No module named pip" in built.stderr:
        pytest.skip("this venv has no pip")
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("medimg-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("medimg/py.typed", "medimg/model/assets/model.onnx", "medimg/model/assets/labels.json",
                 "medimg/model/assets/fast/model.onnx", "medimg/model/assets/fast/labels.json",
                 "medimg/training/label_groups.csv", "medimg/training/exclude.csv", "medimg/__main__.py"):
        assert name in names, name
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "docs/"))]
    sys.path.insert(0, str(ROOT / "src"))
    from medimg import __version__

    assert wheel.name.startswith(f"medimg-{__version__}-")
    assert wheel.stat().st_size < 12e6  # two int8 models (~9 MB) and the code
