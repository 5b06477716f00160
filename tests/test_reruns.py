"""The test suite's own rule for stalls: a test in a module that reads a clock runs again when it fails, and
only such a test; a test failing every time still fails."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

CLOCKED = '''
import time
from pathlib import Path

def test_stalled_once(tmp_path_factory):
    mark = Path(__file__).with_name("ran")
    first = not mark.exists()
    mark.touch()
    started = time.perf_counter()
    assert not first, "a stall"
    assert time.perf_counter() - started < 60

def test_always_too_slow():
    assert False, "slow every time"
'''

PLAIN = '''
from pathlib import Path

def test_fails_once():
    mark = Path(__file__).with_name("ran_plain")
    first = not mark.exists()
    mark.touch()
    assert not first
'''


def test_a_clocked_test_is_run_again_and_others_are_not(tmp_path: Path):
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_clocked.py").write_text(CLOCKED)
    (tmp_path / "test_plain.py").write_text(PLAIN)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out = run.stdout
    assert run.returncode == 1, out
    assert "PASSED test_clocked.py::test_stalled_once" in out, out
    assert "FAILED test_clocked.py::test_always_too_slow" in out, out
    assert "FAILED test_plain.py::test_fails_once" in out, out
    # the stalled test ran twice, the always-failing one three times, the plain one once
    assert "3 rerun" in out.splitlines()[-1], out.splitlines()[-1]
