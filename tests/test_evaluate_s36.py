"""`medimg evaluate` whose report cannot be written (a full disk, a reader gone) ends as classify does: exit 74
or 141 with one line, not a traceback and exit 1."""

import os
import subprocess
import sys

import pytest

from builders import image_bytes
from words import flat


def _folder(tmp_path):
    for label in ("xray", "photo"):
        (tmp_path / "eval" / label / "src").mkdir(parents=True)
        (tmp_path / "eval" / label / "src" / "a.png").write_bytes(image_bytes())
    return tmp_path / "eval"


def _run(args, stdout, unbuffered):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"} if unbuffered else \
        {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run([sys.executable, "-m", "medimg", "evaluate", *args], stdout=stdout, stderr=subprocess.PIPE,
                          text=True, timeout=300, env=env)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full to write on")
@pytest.mark.parametrize("report", [["--json"], []], ids=["json", "text"])
@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
def test_a_report_to_a_full_disk_is_exit_74(tmp_path, tiny_model_dir, report, unbuffered):
    with open("/dev/full", "w") as full:
        done = _run([str(_folder(tmp_path)), "--model", str(tiny_model_dir), *report], full, unbuffered)
    said = flat(done.stderr)
    assert done.returncode == 74 and "evaluate stopped: no room to write" in said, said
    assert "Traceback" not in said and "Exception ignored" not in said


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full to write on")
def test_predictions_to_a_full_disk_is_exit_74(tmp_path, tiny_model_dir):
    done = _run([str(_folder(tmp_path)), "--model", str(tiny_model_dir), "--predictions", "/dev/full"],
                subprocess.DEVNULL, False)
    said = flat(done.stderr)
    assert done.returncode == 74 and "/dev/full was not written whole" in said, said
    assert "Traceback" not in said


@pytest.mark.parametrize("report", [["--json"], []], ids=["json", "text"])
def test_a_report_whose_reader_has_gone_is_exit_141(tmp_path, tiny_model_dir, report):
    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "w") as gone:
        done = _run([str(_folder(tmp_path)), "--model", str(tiny_model_dir), *report], gone, False)
    assert done.returncode == 141, done.stderr
    assert "Traceback" not in done.stderr and "Broken pipe" not in done.stderr
